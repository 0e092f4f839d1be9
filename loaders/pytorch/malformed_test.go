package pytorch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
)

func le64(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }
func le32(n uint32) []byte { return binary.LittleEndian.AppendUint32(nil, n) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// onePickle wraps raw pickle bytes as the data.pkl of a zip checkpoint.
func onePickle(t testing.TB, pkl []byte) []byte {
	return buildZip(t, record{"archive/data.pkl", pkl}, record{"archive/version", []byte("3\n")})
}

// stateDict is a checkpoint {name: tensor} whose one tensor is built by
// tensor; storages lists the records present.
func stateDict(t testing.TB, name string, tensor func(*pb), storages map[string]int) []byte {
	p := newPickle().odict().str(name)
	tensor(p)
	return checkpoint(t, p.raw('s').stop(), storages)
}

// legacyOne is a legacy checkpoint {"w": float32 tensor over storage "k"
// of numel elements} with the given key list and storage records.
func legacyOne(numel int, size []int, keys []string, storages []legacyStorage) []byte {
	stride := make([]int, len(size))
	for i := range stride {
		stride[i] = 1
	}
	main := newPickle().odict().str("w").
		tensorOn(func(p *pb) { p.storage("FloatStorage", "k", numel, true) }, 0, size, stride).
		raw('s').stop()
	return legacyCheckpoint(main, keys, storages)
}

func TestMalformed(t *testing.T) {
	pickleAt := int64(-1) // data.pkl's data offset in onePickle files, found below
	tests := []struct {
		name   string
		data   []byte
		want   string // in the message
		tensor string // FormatError.Tensor
		// pickleOff, when >= 0, is the offset within data.pkl the error
		// must point at.
		pickleOff int64
	}{
		{"unknown opcode", onePickle(t, []byte("\x80\x02N\xff.")), "opcode 0xff at pickle byte 3: unknown opcode", "", 3},
		{"unknown opcode 0x99", onePickle(t, []byte("\x80\x02\x99.")), "unknown opcode", "", 2},
		{"BINBYTES8 huge", onePickle(t, cat([]byte("\x80\x04\x8e"), le64(1<<62), []byte("."))), "opcode BINBYTES8 at pickle byte 2: length 4611686018427387904 runs past the end", "", 2},
		{"BINUNICODE8 huge", onePickle(t, cat([]byte("\x80\x04\x8d"), le64(1<<63+5), []byte("."))), "BINUNICODE8", "", 2},
		{"BINBYTES past end", onePickle(t, cat([]byte("\x80\x03B"), le32(100), []byte("abc."))), "runs past the end", "", 2},
		{"BINSTRING negative", onePickle(t, cat([]byte("\x80\x02T"), le32(0xffffff00), []byte("."))), "negative length", "", 2},
		{"FRAME huge", onePickle(t, cat([]byte("\x80\x04\x95"), le64(1<<40), []byte("N."))), "frame of 1099511627776 bytes", "", 2},
		{"FRAME past STOP", onePickle(t, cat([]byte("\x80\x04\x95"), le64(5), []byte("N.xyz"))), "after STOP", "", 12},
		{"FRAME in frame", onePickle(t, cat([]byte("\x80\x04\x95"), le64(12), []byte("\x95"), le64(1), []byte("N.x"))), "frame starts inside", "", 11},
		{"LONG1 empty", onePickle(t, []byte("\x80\x02\x8a\x00.")), "empty long", "", 2},
		{"LONG4 huge", onePickle(t, cat([]byte("\x80\x02\x8b"), le32(1<<30), []byte("."))), "long of 1073741824 bytes", "", 2},
		{"INT line too long", onePickle(t, []byte("\x80\x02I"+strings.Repeat("9", 5000)+"\n.")), "longer than", "", 2},
		{"GLOBAL without newline", onePickle(t, []byte("\x80\x02ctorch")), "no newline", "", 2},
		{"DICT odd", onePickle(t, []byte("\x80\x02(K\x01d.")), "odd number of items", "", 5},
		{"SETITEMS odd", onePickle(t, []byte("\x80\x02}(K\x01u.")), "odd number of items", "", 6},
		{"bytes key in OrderedDict", onePickle(t, newPickle().odict().raw('C', 1, 'a', 'N', 's').stop()), "bytes value used as a key", "", -1},
		{"OrderedDict of a non-pair", onePickle(t, newPickle().global("collections", "OrderedDict").mark().raw(']').int(1).raw('a').tuple().raw('R').stop()),
			"OrderedDict: item 0 is int, not a (key, value) pair", "", -1},
		{"OrderedDict pair with a bytes key", onePickle(t, newPickle().global("collections", "OrderedDict").mark().raw(']').
			mark().raw('C', 1, 'a', 'N').tuple().raw('a').tuple().raw('R').stop()), "OrderedDict: item 0: key is bytes", "", -1},
		{"OrderedDict of two arguments", onePickle(t, newPickle().global("collections", "OrderedDict").mark().raw('N', 'N').tuple().raw('R').stop()),
			"OrderedDict: 2 arguments", "", -1},
		{"zip storage id with view metadata", stateDict(t, "w", func(p *pb) {
			p.tensorOn(func(p *pb) { p.storage("FloatStorage", "0", 4, true, "v", 0, 4) }, 0, []int{4}, []int{1})
		}, map[string]int{"0": 16}), "a zip archive's can only be None", "", -1},
		{"bytes in FROZENSET", onePickle(t, []byte("\x80\x04(C\x01a\x91.")), "bytes value", "", 6},
		{"bytes in ADDITEMS", onePickle(t, []byte("\x80\x04\x8f(C\x01a\x90.")), "bytes value", "", 7},
		{"no STOP", onePickle(t, []byte("\x80\x02N")), "without STOP", "", 3},
		{"empty data.pkl", onePickle(t, nil), "empty pickle", "", 0},
		{"stack underflow", onePickle(t, []byte("\x80\x02NR.")), "needs 2 stack values, has 1", "", 3},
		{"STOP on empty stack", onePickle(t, []byte("\x80\x02.")), "needs 1 stack values", "", 2},
		{"POP_MARK without MARK", onePickle(t, []byte("\x80\x021.")), "no MARK", "", 2},
		{"memo key undefined", onePickle(t, []byte("\x80\x02h\x05.")), "memo key 5 is not defined", "", 2},
		{"EXT1", onePickle(t, []byte("\x80\x02\x82\x01.")), "unsupported", "", 2},
		{"protocol 9", onePickle(t, []byte("\x80\x09N.")), "unsupported protocol 9", "", 0},
		{"deep MARKs", onePickle(t, []byte("\x80\x02"+strings.Repeat("(", maxMarks+1))), "nested MARKs", "", 2 + maxMarks},
		{"REDUCE of a non-callable", onePickle(t, []byte("\x80\x02K\x01)R.")), "unpickling: REDUCE of int, which is not callable", "", -1},
		{"text persistent id", onePickle(t, []byte("\x80\x02Pfoo\n.")), "persistent id is str, not a tuple", "", -1},
		{"persistent id not a storage", onePickle(t, newPickle().mark().str("module").raw('N').tuple().raw('Q').stop()), "want 'storage'", "", -1},
		{"persistent id of unknown class", onePickle(t, newPickle().mark().str("storage").global("torch", "FooStorage").str("0").str("cpu").int(1).tuple().raw('Q').stop()),
			"storage type is class torch.FooStorage, not a torch storage class", "", -1},
		{"persistent id naming a missing record",
			stateDict(t, "w", func(p *pb) { p.tensor("FloatStorage", "7", 4) }, map[string]int{"0": 16}),
			`storage "7": the archive has no record "archive/data/7"`, "", -1},
		{"negative numel", stateDict(t, "w", func(p *pb) {
			p.tensorOn(func(p *pb) { p.storage("FloatStorage", "0", -1, false) }, 0, []int{1}, []int{1})
		}, map[string]int{"0": 4}), "element count is int, not a non-negative int", "", -1},
		{"rebuild with 3 arguments", onePickle(t, newPickle().global("torch._utils", "_rebuild_tensor_v2").ints(1, 2, 3).raw('R').stop()),
			"_rebuild_tensor_v2: 3 arguments, want 6 to 7", "", -1},
		{"rebuild without a storage", onePickle(t, newPickle().global("torch._utils", "_rebuild_tensor_v2").ints(1, 2, 3, 4, 5, 6).raw('R').stop()),
			"argument 0 is int, not a storage", "", -1},
		{"size and stride differ", stateDict(t, "w", func(p *pb) {
			p.tensorOn(func(p *pb) { p.storage("FloatStorage", "0", 4, false) }, 0, []int{2, 2}, []int{1})
		}, map[string]int{"0": 16}), "size has 2 dimensions, stride 1", "", -1},
		{"view past the storage", stateDict(t, "w", func(p *pb) {
			p.tensorOn(func(p *pb) { p.storage("FloatStorage", "0", 4, false) }, 0, []int{4, 4}, []int{4, 1})
		}, map[string]int{"0": 16}), `runs past the end of storage "data/0" (16 bytes)`, "w", -1},
		// torch.load would make a storage of 16 floats over a 16-byte
		// record: the id and the record disagree on the storage's size.
		{"persistent id larger than its record", stateDict(t, "w", func(p *pb) { p.tensor("FloatStorage", "0", 4, 4) }, map[string]int{"0": 16}),
			`storage "0": the persistent id says 16 elements of 4 bytes (64 bytes), record "archive/data/0" holds 16`, "", -1},
		{"persistent id smaller than its record", stateDict(t, "w", func(p *pb) { p.tensor("FloatStorage", "0", 2) }, map[string]int{"0": 16}),
			`the persistent id says 2 elements of 4 bytes (8 bytes), record "archive/data/0" holds 16`, "", -1},
		{"two persistent ids of one storage disagree", checkpoint(t, newPickle().odict().str("a").tensor("FloatStorage", "0", 4).
			str("b").tensor("FloatStorage", "0", 2).raw('u').stop(), map[string]int{"0": 16}),
			`the persistent id says 2 elements of 4 bytes (8 bytes), where an earlier persistent id gave it 16`, "", -1},
		{"offset past the storage", stateDict(t, "w", func(p *pb) {
			p.tensorOn(func(p *pb) { p.storage("FloatStorage", "0", 4, false) }, 9, []int{0}, []int{1})
		}, map[string]int{"0": 16}), "storage offset 9 is past the end", "w", -1},
		{"strided view past the storage", stateDict(t, "w", func(p *pb) {
			p.tensorOn(func(p *pb) { p.storage("FloatStorage", "0", 4, false) }, 0, []int{2, 2}, []int{3, 1})
		}, map[string]int{"0": 16}), "runs past the end", "w", -1},
		{"numel overflow", stateDict(t, "w", func(p *pb) {
			p.tensorOn(func(p *pb) { p.storage("FloatStorage", "0", 4, false) }, 0, []int{1 << 30, 1 << 30, 1 << 30}, []int{0, 0, 0})
		}, map[string]int{"0": 16}), "element count overflows int64", "w", -1},
		{"negative dimension", stateDict(t, "w", func(p *pb) {
			p.tensorOn(func(p *pb) { p.storage("FloatStorage", "0", 4, false) }, 0, []int{-2}, []int{1})
		}, map[string]int{"0": 16}), "negative dimension", "w", -1},
		{"negative stride", stateDict(t, "w", func(p *pb) {
			p.tensorOn(func(p *pb) { p.storage("FloatStorage", "0", 4, false) }, 0, []int{2}, []int{-1})
		}, map[string]int{"0": 16}), "negative stride", "w", -1},
		{"stride overflow", stateDict(t, "w", func(p *pb) {
			p.tensorOn(func(p *pb) { p.storage("FloatStorage", "0", 4, false) }, 0, []int{1 << 30, 2}, []int{1 << 30, 1 << 30})
		}, map[string]int{"0": 16}), "runs past the end", "w", -1},
		{"per-channel parameters too few", stateDict(t, "w", func(p *pb) {
			p.global("torch._utils", "_rebuild_qtensor").mark().
				storage("QInt8Storage", "0", 4, false).int(0).ints(4).ints(1).
				mark().global("torch", "per_channel_affine").tensor("DoubleStorage", "1", 4).tuple().
				raw(0x89).odict().tuple().raw('R')
		}, map[string]int{"0": 4, "1": 32}), "_rebuild_qtensor: per_channel_affine parameters have 2 elements, want at least 3", "", -1},
		{"parameter of bytes used as a key", onePickle(t, newPickle().odict().
			global("torch._utils", "_rebuild_parameter").mark().raw('C', 1, 'a').raw(0x89).odict().tuple().raw('R').
			raw('N', 's').stop()), "_rebuild_parameter: data is bytes, not a tensor", "", -1},
		{"Parameter of bytes", onePickle(t, newPickle().global("torch.nn.parameter", "Parameter").mark().raw('C', 1, 'a').tuple().raw('R', '.').b.Bytes()),
			"data is bytes, not a tensor", "", -1},
		{"rebuild calls nested too deep", onePickle(t, nestedRebuilds(40)), "calls nested more than 32 deep", "", -1},
		{"nesting too deep", onePickle(t, []byte("\x80\x02"+strings.Repeat("]", 1100)+strings.Repeat("a", 1099)+".")),
			"nested deeper than 1000 levels", "", -1},

		{"record past the end of the file", patchCentral(t, goodZip(t), "archive/data/0", 20, 0x7fffffff),
			`storage "0": record "archive/data/0" (2147483647 bytes at offset`, "", -1},
		{"record's local header outside the file", patchCentral(t, goodZip(t), "archive/data/0", 42, 0x7fffff00),
			`storage "0": record "archive/data/0": local header`, "", -1},
		{"data.pkl's local header outside the file", patchCentral(t, goodZip(t), "archive/data.pkl", 42, 0x7fffff00),
			`record "archive/data.pkl": local header`, "", -1},
		{"data.pkl larger than the file", patchCentral(t, patchCentral(t, goodZip(t), "archive/data.pkl", 20, 1<<30), "archive/data.pkl", 24, 1<<30),
			"more than the file size", "", -1},
		{"zip end record smashed", bytes.Replace(goodZip(t), []byte("PK\x05\x06"), []byte("PK\x00\x00"), 1),
			"reading zip central directory", "", -1},
		{"zip directory count wrong", patchEnd(t, goodZip(t), 10, 9), "reading zip central directory", "", -1},
		{"no data.pkl", buildZip(t, record{"archive/version", []byte("3\n")}, record{"archive/data/0", make([]byte, 4)}),
			"zip archive has no data.pkl: not a torch.save checkpoint", "", -1},
		{"TorchScript of PyTorch 1.0-1.2", buildZip(t, record{"m/model.json", []byte("{}")}, record{"m/attributes.pkl", []byte("\x80\x02).")}),
			"TorchScript archive of PyTorch 1.0-1.2 (m/model.json, no data.pkl): unsupported", "", -1},
		{"empty zip", buildZip(t), "no data.pkl", "", -1},
		{"not a checkpoint", []byte("hello, world"), "not a torch.save checkpoint", "", -1},
		{"tar", cat([]byte("sys_info"), make([]byte, 249), []byte("ustar\x0000"), make([]byte, 250)), "tar-based checkpoint", "", -1},

		{"legacy bad magic", cat(newPickle().int(12345).stop(), newPickle().stop()), "not a torch.save checkpoint", "", -1},
		{"legacy wrong magic value", cat(newPickle().raw(0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x18).stop()), "not a torch.save checkpoint", "", -1},
		{"legacy count past EOF", legacyOne(4, []int{4}, []string{"k"}, []legacyStorage{{4, 3}}),
			`storage "k": 16 bytes at offset`, "", -1},
		{"legacy huge count", legacyOne(4, []int{4}, []string{"k"}, []legacyStorage{{1 << 62, 0}}),
			`storage "k": 4611686018427387904 elements in the file, 4 in the pickle`, "", -1},
		{"legacy count missing", legacyOne(4, []int{4}, []string{"k"}, nil), "element count runs past the end of the file", "", -1},
		{"legacy unused key", legacyOne(4, []int{4}, []string{"k", "zzz"}, []legacyStorage{{4, 16}}), `storage key "zzz" is listed but no tensor uses it`, "", -1},
		{"legacy key listed twice", legacyOne(4, []int{4}, []string{"k", "k"}, []legacyStorage{{4, 16}, {4, 16}}), "listed twice", "", -1},
		{"legacy key not listed", legacyOne(4, []int{4}, nil, nil), `storage "k" is missing from the storage key list`, "", -1},
		{"legacy view past storage", legacyCheckpoint(newPickle().
			tensorOn(func(p *pb) { p.storage("FloatStorage", "k", 4, true, "v", 2, 10) }, 0, []int{2}, []int{1}).stop(),
			[]string{"k"}, []legacyStorage{{4, 16}}), `view "v" (offset 2, 10 elements) runs past its 4 elements`, "", -1},
		{"legacy object pickle without STOP", cat(legacyHeader(), newPickle().odict().str("w").raw('N').b.Bytes()), "object pickle: pickle ends at byte", "", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := loadBytes(tc.data)
			var fe *accounting.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("got model %v, error %v; want a FormatError", m, err)
			}
			if !strings.Contains(fe.Msg, tc.want) {
				t.Errorf("message %q does not contain %q", fe.Msg, tc.want)
			}
			if fe.Tensor != tc.tensor {
				t.Errorf("tensor %q, want %q", fe.Tensor, tc.tensor)
			}
			if tc.pickleOff >= 0 {
				if pickleAt < 0 {
					pickleAt = dataPklOffset(t)
				}
				if fe.Offset != pickleAt+tc.pickleOff {
					t.Errorf("offset %d, want %d (data.pkl at %d + %d)", fe.Offset, pickleAt+tc.pickleOff, pickleAt, tc.pickleOff)
				}
			}
		})
	}
}

// goodZip is a valid one-tensor zip checkpoint.
func goodZip(t testing.TB) []byte {
	return stateDict(t, "w", func(p *pb) { p.tensor("FloatStorage", "0", 4) }, map[string]int{"0": 16})
}

// patchCentral overwrites the 4-byte field at off in the central directory
// header of the named record.
func patchCentral(t testing.TB, data []byte, name string, off int, v uint32) []byte {
	t.Helper()
	data = slices.Clone(data)
	for i := 0; ; i++ {
		j := bytes.Index(data[i:], []byte("PK\x01\x02"))
		if j < 0 {
			t.Fatalf("no central directory header for %q", name)
		}
		i += j
		n := int(binary.LittleEndian.Uint16(data[i+28:]))
		if string(data[i+46:i+46+n]) == name {
			binary.LittleEndian.PutUint32(data[i+off:], v)
			return data
		}
	}
}

// patchEnd overwrites the 2-byte field at off in the end of central
// directory record.
func patchEnd(t testing.TB, data []byte, off int, v uint16) []byte {
	t.Helper()
	data = slices.Clone(data)
	i := bytes.LastIndex(data, []byte("PK\x05\x06"))
	if i < 0 {
		t.Fatal("no end of central directory record")
	}
	binary.LittleEndian.PutUint16(data[i+off:], v)
	return data
}

// dataPklOffset is where onePickle puts data.pkl's bytes.
func dataPklOffset(t *testing.T) int64 {
	data := onePickle(t, []byte("MARKER"))
	return int64(bytes.Index(data, []byte("MARKER")))
}

// TestBuilt loads checkpoints built in memory that exercise what the
// fixtures do not.
func TestBuilt(t *testing.T) {
	type want struct {
		name    string
		dtype   string
		shape   []int64
		strides []int64
		storage string
		bytes   int64
		view    int64
	}
	float4 := func(p *pb) { p.storage("FloatStorage", "0", 4, false) }
	tests := []struct {
		name   string
		data   []byte
		format string
		want   []want
	}{
		{
			"same tensor object twice is listed under both names, as state_dict would",
			checkpoint(t, newPickle().odict().
				str("a").tensor("FloatStorage", "0", 4).raw('q', 9).raw('s').
				str("b").raw('h', 9).raw('s').
				str("c").tensorOn(float4, 2, []int{2}, []int{1}).raw('s').stop(), map[string]int{"0": 16}),
			formatZip,
			[]want{{"a", "float32", []int64{4}, nil, "data/0", 16, 0}, {"b", "float32", []int64{4}, nil, "data/0", 16, 0}, {"c", "float32", []int64{2}, nil, "data/0", 16, 8}},
		},
		{
			"non-contiguous strides, size-1 dims and empty tensors",
			checkpoint(t, newPickle().odict().
				str("t").tensorOn(float4, 0, []int{2, 2}, []int{1, 2}).raw('s').
				str("one").tensorOn(float4, 0, []int{4, 1}, []int{1, 7}).raw('s').
				str("empty").tensorOn(float4, 4, []int{0, 3}, []int{9, 9}).raw('s').stop(), map[string]int{"0": 16}),
			formatZip,
			[]want{
				{"t", "float32", []int64{2, 2}, []int64{1, 2}, "data/0", 16, 0},
				{"one", "float32", []int64{4, 1}, nil, "data/0", 16, 0},
				{"empty", "float32", []int64{0, 3}, nil, "data/0", 16, 16},
			},
		},
		{
			"untyped storage with _rebuild_tensor_v3 dtype",
			checkpoint(t, newPickle().odict().str("f8").
				global("torch._utils", "_rebuild_tensor_v3").mark().
				storage("UntypedStorage", "0", 8, false).int(2).ints(3).ints(1).raw(0x89).odict().global("torch", "float8_e4m3fn").
				tuple().raw('R', 's').stop(), map[string]int{"0": 8}),
			formatZip,
			[]want{{"f8", "float8_e4m3fn", []int64{3}, nil, "data/0", 8, 2}},
		},
		{
			"OrderedDict([[key, tensor], ...]) of 2018-2019 checkpoints, and TorchScript 1.3-1.5's 6-field storage ids",
			checkpoint(t, newPickle().global("collections", "OrderedDict").mark().raw(']').
				mark().str("a").tensorOn(func(p *pb) { p.storage("FloatStorage", "0", 4, true) }, 0, []int{4}, []int{1}).raw('l', 'a').
				mark().str("b").tensorOn(func(p *pb) { p.storage("FloatStorage", "1", 2, true) }, 0, []int{2}, []int{1}).tuple().raw('a').
				tuple().raw('R').stop(), map[string]int{"0": 16, "1": 8}),
			formatZip,
			[]want{{"a", "float32", []int64{4}, nil, "data/0", 16, 0}, {"b", "float32", []int64{2}, nil, "data/1", 8, 0}},
		},
		{
			"PyTorch 1.2 _rebuild_qtensor(storage, offset, size, stride, scale, zero_point, ...)",
			checkpoint(t, newPickle().odict().str("w").
				global("torch._utils", "_rebuild_qtensor").mark().
				storage("QInt8Storage", "0", 8, false).int(0).ints(4, 2).ints(2, 1).
				raw('G', 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a).int(3).raw(0x89).odict().
				tuple().raw('R', 's').stop(), map[string]int{"0": 8}),
			formatZip,
			[]want{{"w", "qint8", []int64{4, 2}, nil, "data/0", 8, 0}},
		},
		{
			"per-channel quantized tensor names its scales",
			checkpoint(t, newPickle().odict().str("w").
				global("torch._utils", "_rebuild_qtensor").mark().
				storage("QInt8Storage", "0", 8, false).int(0).ints(4, 2).ints(2, 1).
				mark().global("torch", "per_channel_affine").
				tensor("DoubleStorage", "1", 4).tensor("LongStorage", "2", 4).int(0).tuple().
				raw(0x89).odict().tuple().raw('R', 's').stop(), map[string]int{"0": 8, "1": 32, "2": 32}),
			formatZip,
			[]want{
				{"w", "qint8", []int64{4, 2}, nil, "data/0", 8, 0},
				{"w.q_scales", "float64", []int64{4}, nil, "data/1", 32, 0},
				{"w.q_zero_points", "int64", []int64{4}, nil, "data/2", 32, 0},
			},
		},
		{
			"pickled module: bookkeeping attributes are transparent",
			checkpoint(t, newPickle().
				global("__main__", "Net").raw(')', 0x81). // NEWOBJ
				raw('}').
				str("training").raw(0x88, 's').
				str("_parameters").odict().str("weight").
				global("torch._utils", "_rebuild_parameter").mark().tensor("FloatStorage", "0", 2, 2).raw(0x88).odict().tuple().raw('R', 's', 's').
				str("_buffers").odict().raw('s').
				str("_modules").odict().str("sub").
				global("torch.nn.modules.linear", "Linear").raw(')', 0x81).
				raw('}').str("_parameters").odict().str("bias").tensor("HalfStorage", "1", 3).raw('s', 's', 'b').
				raw('s', 's').
				str("cache").tensor("ByteStorage", "2", 5).raw('s').
				raw('b').stop(), map[string]int{"0": 16, "1": 6, "2": 5}),
			formatZip,
			[]want{
				{"weight", "float32", []int64{2, 2}, nil, "data/0", 16, 0},
				{"sub.bias", "float16", []int64{3}, nil, "data/1", 6, 0},
				{"cache", "uint8", []int64{5}, nil, "data/2", 5, 0},
			},
		},
		{
			"nested checkpoint, int keys, lists and a self-referencing list",
			checkpoint(t, newPickle().raw('}').
				str("optimizer").raw('}').str("state").raw('}').
				int(3).raw('}').str("exp_avg").tensor("FloatStorage", "0", 4).raw('s', 's', 's', 's').
				str("hist").raw(']').tensor("FloatStorage", "1", 1).raw('a').raw('s').
				str("loop").raw(']', 'q', 1, 'h', 1, 'a', 's').
				str("step").int(10).raw('s').stop(), map[string]int{"0": 16, "1": 4}),
			formatZip,
			[]want{
				{"optimizer.state.3.exp_avg", "float32", []int64{4}, nil, "data/0", 16, 0},
				{"hist.0", "float32", []int64{1}, nil, "data/1", 4, 0},
			},
		},
		{
			"a bare storage",
			checkpoint(t, newPickle().storage("HalfStorage", "0", 3, false).stop(), map[string]int{"0": 6}),
			formatZip,
			[]want{{"", "float16", []int64{3}, nil, "data/0", 6, 0}},
		},
		{
			"legacy storage views share their root storage",
			legacyCheckpoint(newPickle().odict().
				str("a").tensorOn(func(p *pb) { p.storage("FloatStorage", "root", 8, true, "v1", 0, 4) }, 0, []int{4}, []int{1}).raw('s').
				str("b").tensorOn(func(p *pb) { p.storage("FloatStorage", "root", 8, true, "v2", 4, 4) }, 1, []int{2}, []int{1}).raw('s').
				stop(), []string{"root"}, []legacyStorage{{8, 32}}),
			formatLegacy,
			[]want{
				{"a", "float32", []int64{4}, nil, "root", 32, 0},
				{"b", "float32", []int64{2}, nil, "root", 32, 20},
			},
		},
		{
			"protocol 4 with a set and bytes keys in a plain dict",
			checkpoint(t, []byte("\x80\x04}(C\x01aK\x01u\x8f(K\x01\x90\x85."), nil),
			formatZip,
			nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := loadBytes(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if m.Files[0].Format != tc.format {
				t.Errorf("format %q, want %q", m.Files[0].Format, tc.format)
			}
			var got []want
			for _, tt := range m.Tensors {
				got = append(got, want{tt.Name, tt.DType, tt.Shape, tt.Strides, tt.Storage, tt.StorageBytes, tt.ViewOffset})
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.name != w.name || g.dtype != w.dtype || !slices.Equal(g.shape, w.shape) || !slices.Equal(g.strides, w.strides) ||
					g.storage != w.storage || g.bytes != w.bytes || g.view != w.view {
					t.Errorf("tensor %d: got %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

// TestTruncated cuts real files at every length: each cut must give a
// FormatError, never a model or a panic.
func TestTruncated(t *testing.T) {
	files := map[string][]byte{
		"built legacy": legacyOne(4, []int{4}, []string{"k"}, []legacyStorage{{4, 16}}),
		"built zip":    stateDict(t, "w", func(p *pb) { p.tensor("FloatStorage", "0", 4) }, map[string]int{"0": 16}),
	}
	for _, name := range []string{
		"candle/test.pt",
		"gopickle_pytorch_testdata/tensor_float32_proto2.pt",
		"gopickle_pytorch_testdata/tensor_int64_proto5.pt",
		"gopickle_pytorch_testdata/tensor_bool_proto1.pt",
	} {
		if data, err := readShared(name); err == nil {
			files[name] = data
		}
	}
	for _, name := range []string{"slice_view.pt", "legacy_small.pt", "dynamic_qint8.pt"} {
		if data, err := os.ReadFile(filepath.Join(fixturesDir, name)); err == nil {
			files[name] = data
		}
	}
	for name, data := range files {
		if _, err := loadBytes(data); err != nil {
			t.Fatalf("%s: whole file: %v", name, err)
		}
		// Every length of small files; for large ones, every 257th plus
		// the first and last 4 KiB, where the headers and pickles are.
		for n := range len(data) {
			if len(data) > 1<<16 && n%257 != 0 && n > 4096 && n < len(data)-4096 {
				continue
			}
			_, err := loadBytes(data[:n])
			var fe *accounting.FormatError
			if !errors.As(err, &fe) {
				t.Errorf("%s cut at %d: got %v, want a FormatError", name, n, err)
			}
		}
	}
}

// TestCorruptBytes flips each byte of small files: any outcome but a panic
// or a tensor outside the file is fine.
func TestCorruptBytes(t *testing.T) {
	files := [][]byte{
		legacyOne(4, []int{4}, []string{"k"}, []legacyStorage{{4, 16}}),
		stateDict(t, "w", func(p *pb) { p.tensor("FloatStorage", "0", 4) }, map[string]int{"0": 16}),
	}
	if data, err := readShared("gopickle_pytorch_testdata/tensor_float32_proto5.pt"); err == nil {
		files = append(files, data)
	}
	for _, orig := range files {
		for i := range orig {
			for _, x := range []byte{0x01, 0x80, 0xff} {
				data := slices.Clone(orig)
				data[i] ^= x
				checkAnyOutcome(t, data)
			}
		}
	}
}

// checkAnyOutcome loads data and checks the result is an error or a model
// whose storages lie inside data. The storages of numpy arrays, which the
// pickle holds at no fixed offset, take no more than data's bytes in all.
func checkAnyOutcome(t *testing.T, data []byte) {
	t.Helper()
	m, err := loadBytes(data)
	if err != nil {
		return
	}
	if len(m.Files) != 1 {
		t.Fatalf("%d files", len(m.Files))
	}
	inPickle := map[string]int64{}
	var inPickleBytes int64
	for _, tt := range m.Tensors {
		if tt.DataOffset == -1 && strings.HasPrefix(tt.Storage, "(numpy ") {
			if b, seen := inPickle[tt.Storage]; seen && b != tt.StorageBytes {
				t.Fatalf("tensor %q: storage %q of %d bytes, %d before", tt.Name, tt.Storage, tt.StorageBytes, b)
			} else if !seen {
				inPickle[tt.Storage] = tt.StorageBytes
				if inPickleBytes += tt.StorageBytes; tt.StorageBytes < 0 || inPickleBytes > int64(len(data)) {
					t.Fatalf("numpy arrays of %d bytes in a %d-byte file", inPickleBytes, len(data))
				}
			}
			continue
		}
		if _, ok := accounting.LookupDType(tt.DType); !ok {
			t.Fatalf("tensor %q: unknown dtype %q", tt.Name, tt.DType)
		}
		if tt.DataOffset == accounting.NoDataOffset {
			// A meta tensor: no data, so nothing in the file to lie inside.
			if tt.StorageBytes != 0 {
				t.Fatalf("tensor %q: no data, but %d storage bytes", tt.Name, tt.StorageBytes)
			}
			continue
		}
		if tt.DataOffset < 0 || tt.StorageBytes < 0 || tt.DataOffset > int64(len(data)) || tt.StorageBytes > int64(len(data))-tt.DataOffset {
			t.Fatalf("tensor %q: storage %d bytes at %d, outside the %d-byte file", tt.Name, tt.StorageBytes, tt.DataOffset, len(data))
		}
	}
}

func readShared(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(sharedDir, name))
}

// nestedRebuilds is _rebuild_from_type_v2(f, None, (f, None, (..., ), {}), {})
// nested depth times: each level calls the next.
func nestedRebuilds(depth int) []byte {
	p := newPickle().global("torch._tensor", "_rebuild_from_type_v2").raw('q', 0)
	var build func(int)
	build = func(d int) {
		if d == 0 {
			p.raw(')')
			return
		}
		p.mark().raw('h', 0, 'N')
		build(d - 1)
		p.raw('}').tuple()
	}
	p.raw('0') // the GLOBAL stays in the memo
	p.raw('h', 0)
	build(depth)
	return p.raw('R').stop()
}
