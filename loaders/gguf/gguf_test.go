package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unsafe"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/racetest"
	"github.com/qinsaudit/qinsaudit/internal/realworld"
	"github.com/qinsaudit/qinsaudit/loaders/gguf/gguftest"
)

// realworldDir is shared/realworld, beside the repository.
var realworldDir = realworld.Dir()

var newFile = gguftest.New

func load(t testing.TB, data []byte) (*accounting.Model, error) {
	t.Helper()
	return Loader{}.Load(bytes.NewReader(data), int64(len(data)))
}

func mustLoad(t testing.TB, data []byte) *accounting.Model {
	t.Helper()
	m, err := load(t, data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// theoretical is the bytes a tensor's shape and dtype take.
func theoretical(t testing.TB, x accounting.Tensor) int64 {
	t.Helper()
	d, ok := accounting.LookupDType(x.DType)
	if !ok {
		t.Fatalf("%s: unknown dtype %q", x.Name, x.DType)
	}
	n, err := accounting.Numel(x.Shape)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Bytes(n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRealWorld(t *testing.T) {
	answers := realworld.Answers(t)
	n := 0
	for name, want := range answers {
		if want.Format != "gguf" {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(realworldDir, name))
			if err != nil {
				t.Fatal(err)
			}
			if !(Loader{}).Sniff(data[:64]) {
				t.Error("Sniff = false")
			}
			if int64(len(data)) != want.SizeBytes {
				t.Errorf("size %d, want %d", len(data), want.SizeBytes)
			}
			m := mustLoad(t, data)
			if len(m.Files) != 1 || m.Files[0].Format != "gguf" {
				t.Errorf("Files = %+v", m.Files)
			}
			if len(m.Tensors) != want.Tensors {
				t.Errorf("%d tensors, want %d", len(m.Tensors), want.Tensors)
			}
			var stored, spans int64
			for _, x := range m.Tensors {
				stored += theoretical(t, x)
				spans += x.StorageBytes
			}
			if stored != want.StoredBytes || spans != want.StoredBytes {
				t.Errorf("theoretical bytes %d, spans %d; want %d", stored, spans, want.StoredBytes)
			}
		})
	}
	if n != 9 {
		t.Errorf("%d gguf files in answers.json, want 9", n)
	}
}

func TestTinyLlama(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(realworldDir, "ollama/llama-2-tiny-random.gguf"))
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("no shared/realworld")
	}
	if err != nil {
		t.Fatal(err)
	}
	h, err := ReadHeader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != 3 || h.KVCount != 18 || h.Alignment != 32 || h.Architecture != "llama" ||
		h.FileType != 1 || h.DataOffset != 724_416 || len(h.Tensors) != 12 {
		t.Errorf("header: version %d, %d kvs, alignment %d, %q, file type %d, data at %d, %d tensors",
			h.Version, h.KVCount, h.Alignment, h.Architecture, h.FileType, h.DataOffset, len(h.Tensors))
	}
	m := mustLoad(t, data)
	for _, x := range m.Tensors {
		switch x.Name {
		case "token_embd.weight", "output.weight":
			if x.StorageBytes != 512_000 || x.DType != "float16" || !slices.Equal(x.Shape, []int64{32000, 8}) {
				t.Errorf("%s: %d bytes of %s %v", x.Name, x.StorageBytes, x.DType, x.Shape)
			}
		}
		if x.Storage != x.Name || x.ViewOffset != 0 || x.Strides != nil || x.File != 0 {
			t.Errorf("%s: storage %q, view offset %d, strides %v, file %d", x.Name, x.Storage, x.ViewOffset, x.Strides, x.File)
		}
	}
	first, last := m.Tensors[0], m.Tensors[11]
	if first.Name != "token_embd.weight" || first.DataOffset != 724_416 ||
		last.Name != "output.weight" || last.DataOffset+last.StorageBytes != int64(len(data)) {
		t.Errorf("first %s at %d, last %s at %d+%d", first.Name, first.DataOffset, last.Name, last.DataOffset, last.StorageBytes)
	}
}

func TestTypeTable(t *testing.T) {
	for id, name := range ggmlTypes {
		if name == "" {
			if id != 37 && id != 38 {
				t.Errorf("id %d: no name", id)
			}
			continue
		}
		d, ok := accounting.LookupDType(name)
		if !ok {
			t.Errorf("id %d: %q not in the dtype table", id, name)
			continue
		}
		g, ok := gguftest.Types[uint32(id)]
		if !ok || d.BlockElems != g.Elems || d.BlockBytes != g.Bytes {
			t.Errorf("id %d %s: %d/%d, gguftest has %+v", id, name, d.BlockElems, d.BlockBytes, g)
		}
		if got := strings.ToLower(g.Name); got != name && !map[string]bool{"f32": true, "f16": true, "bf16": true,
			"f64": true, "i8": true, "i16": true, "i32": true, "i64": true}[got] {
			t.Errorf("id %d: %q, ggml calls it %s", id, name, g.Name)
		}
	}
	if len(gguftest.Types) != len(ggmlTypes)-2 {
		t.Errorf("gguftest knows %d types, the loader %d", len(gguftest.Types), len(ggmlTypes)-2)
	}
	for _, c := range []struct {
		id           uint32
		name         string
		elems, bytes int64
	}{
		{0, "float32", 1, 4},
		{1, "float16", 1, 2},
		{2, "q4_0", 32, 18},
		{8, "q8_0", 32, 34},
		{12, "q4_k", 256, 144},
		{14, "q6_k", 256, 210},
		{16, "iq2_xxs", 256, 66},
		{30, "bfloat16", 1, 2},
		{34, "tq1_0", 256, 54},
		{39, "mxfp4", 32, 17},
	} {
		d := layoutOf(c.id)
		if d == nil || d.Name != c.name || d.BlockElems != c.elems || d.BlockBytes != c.bytes {
			t.Errorf("id %d: %+v, want %s %d/%d", c.id, d, c.name, c.elems, c.bytes)
		}
	}
	for _, id := range []uint32{37, 38, 43, 1000, math.MaxUint32} {
		if layoutOf(id) != nil {
			t.Errorf("id %d has a layout", id)
		}
	}
	if got := DTypeName(99); got != "ggml_unknown_99" {
		t.Errorf("DTypeName(99) = %q", got)
	}
}

// TestEveryType loads a tensor of each ggml type, alone and all in one file.
func TestEveryType(t *testing.T) {
	ids := gguftest.IDs()
	all := newFile().KV("general.alignment", uint32(64))
	for _, id := range ids {
		name := ggmlTypes[id]
		all.Tensor("t."+name, id, 512, 3)
		m := mustLoad(t, newFile().Tensor("w", id, 512, 3).Bytes())
		x := m.Tensors[0]
		want := gguftest.Size(id, 512, 3)
		if x.DType != name || !slices.Equal(x.Shape, []int64{3, 512}) || theoretical(t, x) != want ||
			x.StorageBytes != want || x.DataOffset%32 != 0 || len(m.Files[0].Gaps) != 0 {
			t.Errorf("type %d: %+v, want %s of %d bytes", id, x, name, want)
		}
	}
	m := mustLoad(t, all.Bytes())
	if len(m.Tensors) != len(ids) {
		t.Fatalf("%d tensors, want %d", len(m.Tensors), len(ids))
	}
	if g := m.Files[0].Gaps; len(g) != 0 {
		t.Errorf("padding taken for gaps: %+v", g)
	}
	for i, x := range m.Tensors {
		if want := gguftest.Size(ids[i], 512, 3); x.DType != ggmlTypes[ids[i]] || x.StorageBytes != want || x.DataOffset%64 != 0 {
			t.Errorf("%s: %s, %d bytes at %d", x.Name, x.DType, x.StorageBytes, x.DataOffset)
		}
	}
}

func TestUnknownType(t *testing.T) {
	data := newFile().
		Tensor("a", 37, 64).
		Tensor("b", 1000, 10).
		Tensor("c", math.MaxUint32, 7).
		Bytes()
	m := mustLoad(t, data)
	for i, want := range []string{"ggml_unknown_37", "ggml_unknown_1000", "ggml_unknown_4294967295"} {
		if x := m.Tensors[i]; x.DType != want || x.StorageBytes != 64 && i == 0 {
			t.Errorf("%s: %s, %d bytes", x.Name, x.DType, x.StorageBytes)
		}
	}
	if x := m.Tensors[2]; x.StorageBytes != 32 || x.DataOffset+32 != int64(len(data)) {
		t.Errorf("last unknown tensor: %d bytes at %d of %d", x.StorageBytes, x.DataOffset, len(data))
	}
}

func TestBigEndian(t *testing.T) {
	build := func(b *gguftest.Builder) []byte {
		return b.KV("general.architecture", "llama").
			KV("general.alignment", uint32(16)).
			KV("general.file_type", uint32(7)).
			KV("tokenizer.ggml.tokens", []string{"a", "bc", ""}).
			KV("x.nested", [][]int16{{1, 2}, {3}}).
			KV("x.u16", uint16(1)).
			KV("split.no", uint16(1)).
			KV("split.count", uint16(2)).
			Tensor("w", gguftest.Q8_0, 64, 2).
			Tensor("n", gguftest.F32, 3).
			Bytes()
	}
	le, be := build(newFile()), build(newFile().BigEndian())
	if bytes.Equal(le, be) || len(le) != len(be) {
		t.Fatal("big-endian file equals the little-endian one")
	}
	if !(Loader{}).Sniff(be) {
		t.Error("Sniff(big-endian) = false")
	}
	hb, err := ReadHeader(bytes.NewReader(be), int64(len(be)))
	if err != nil {
		t.Fatal(err)
	}
	hl, err := ReadHeader(bytes.NewReader(le), int64(len(le)))
	if err != nil {
		t.Fatal(err)
	}
	if !hb.BigEndian || hl.BigEndian || hb.Version != 3 || hb.FileType != 7 || hb.Alignment != 16 || hb.SplitNo != 1 {
		t.Errorf("big-endian header %+v", hb)
	}
	hb.BigEndian = false
	if !reflect.DeepEqual(hb, hl) {
		t.Errorf("big-endian header\n%+v\nlittle-endian\n%+v", hb, hl)
	}
}

func TestHeaderFields(t *testing.T) {
	data := newFile().Version(2).
		KV("general.architecture", "qwen2").
		KV("general.file_type", int32(15)).
		KV("split.no", uint16(1)).
		KV("split.count", uint16(3)).
		KV("split.tensors.count", int32(40)).
		KV("general.alignment", uint32(128)).
		Tensor("x", gguftest.F16, 4).
		Bytes()
	h, err := ReadHeader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != 2 || h.Architecture != "qwen2" || h.FileType != 15 || h.SplitNo != 1 ||
		h.SplitCount != 3 || h.SplitTensors != 40 || h.Alignment != 128 || h.DataOffset%128 != 0 || h.KVCount != 6 {
		t.Errorf("%+v", h)
	}
	if ti := h.Tensors[0]; ti.Bytes != 8 || ti.Span != 128 || ti.Offset != 0 || ti.Type != gguftest.F16 || ti.DType != "float16" {
		t.Errorf("%+v", ti)
	}
	h, err = ReadHeader(bytes.NewReader(newFile().Bytes()), 24)
	if err != nil || h.FileType != -1 || h.SplitCount != 0 || h.SplitTensors != -1 || h.Alignment != 32 ||
		h.Architecture != "" || h.DataOffset != 32 || len(h.Tensors) != 0 {
		t.Errorf("empty file: %+v, %v", h, err)
	}
}

// TestIgnoredValues checks that the kept keys nothing reads do not fail the
// load: a value of another type, a negative count or a too long
// architecture reads as absent.
func TestIgnoredValues(t *testing.T) {
	data := newFile().
		KV("general.architecture", uint8(1)).
		KV("split.no", "one").
		KV("split.count", []int32{2}).
		KV("split.tensors.count", int8(-1)).
		KV("general.file_type", uint32(15)).
		Tensor("x", gguftest.F16, 4).
		Bytes()
	h, err := ReadHeader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if h.Architecture != "" || h.SplitNo != 0 || h.SplitCount != 0 || h.SplitTensors != -1 || h.FileType != 15 || len(h.Tensors) != 1 {
		t.Errorf("%+v", h)
	}
	for _, arch := range []string{strings.Repeat("a", maxKeyLen), strings.Repeat("a", maxKeyLen+1)} {
		data := newFile().KV("general.architecture", arch).KV("general.file_type", uint32(15)).Bytes()
		h, err := ReadHeader(bytes.NewReader(data), int64(len(data)))
		want := arch
		if len(arch) > maxKeyLen {
			want = ""
		}
		if err != nil || h.Architecture != want || h.FileType != 15 {
			t.Errorf("architecture of %d bytes: %d bytes read, file type %d, %v", len(arch), len(h.Architecture), h.FileType, err)
		}
	}
	if _, err := load(t, newFile().KV("general.architecture", "llama").KV("general.architecture", uint8(1)).Bytes()); err == nil ||
		!strings.Contains(err.Error(), `kv 1 "general.architecture": duplicate key`) {
		t.Errorf("duplicate architecture: %v", err)
	}
}

// zeroDim is a file of one empty tensor whose other dimensions multiply past
// int64.
func zeroDim() []byte {
	return newFile().Tensor("w", gguftest.F32, 65536, 0, 1<<32+1, 1<<32).Bytes()
}

// TestZeroDim checks that a zero dimension among huge ones makes an empty
// tensor, which loads and audits as 0 elements.
func TestZeroDim(t *testing.T) {
	m := mustLoad(t, zeroDim())
	if x := m.Tensors[0]; !slices.Equal(x.Shape, []int64{1 << 32, 1<<32 + 1, 0, 65536}) || x.StorageBytes != 0 {
		t.Errorf("%+v", x)
	}
	res, err := accounting.Audit(m, accounting.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Rows[0]; r.Numel != 0 || r.TheoreticalBytes != 0 || r.StoredBytes != 0 || res.Total.Params != 0 {
		t.Errorf("row %+v, total %+v", r, res.Total)
	}
}

// TestMaxTensors loads a file of maxTensors tensors; one more is refused
// (see malformedFiles).
func TestMaxTensors(t *testing.T) {
	b := newFile()
	for i := range maxTensors {
		b.TensorAt(strconv.Itoa(i), gguftest.F32, 0, 0)
	}
	if m := mustLoad(t, b.Bytes()); len(m.Tensors) != maxTensors {
		t.Errorf("%d tensors", len(m.Tensors))
	}
}

// TestManyTensors loads a file of 100,000 small tensors, more than
// maxTensors: the limit grows with the file.
func TestManyTensors(t *testing.T) {
	const n = 100_000
	b := newFile()
	for i := range n {
		b.Tensor("blk."+strconv.Itoa(i)+".w", gguftest.F32, 16)
	}
	data := b.Bytes()
	if limit := tensorLimit(int64(len(data))); limit < n {
		t.Fatalf("a file of %d bytes may hold %d tensors", len(data), limit)
	}
	m := mustLoad(t, data)
	if len(m.Tensors) != n || m.Tensors[n-1].Name != "blk.99999.w" || m.Tensors[n-1].StorageBytes != 64 {
		t.Fatalf("%d tensors, last %+v", len(m.Tensors), m.Tensors[len(m.Tensors)-1])
	}
}

// TestLayout checks storages: tensor-info order kept, each tensor its own
// bytes, alignment padding not a gap, bytes beyond the padding a gap, empty
// tensors.
func TestLayout(t *testing.T) {
	data := newFile().
		TensorAt("c", gguftest.F32, 128, 8). // 32 bytes, then a gap of 32 to the end
		TensorAt("a", gguftest.F32, 0, 2).   // 8 bytes, 24 of padding, a gap of 32 to b
		TensorAt("b", gguftest.F16, 64, 8).  // 16 bytes, 16 of padding, a gap of 32 to c
		TensorAt("e", gguftest.F32, 64, 0).  // empty, at b's offset
		TensorAt("s", gguftest.F32, 192, 0). // empty, at the end
		Append(make([]byte, 192)).
		Bytes()
	m := mustLoad(t, data)
	h, _ := ReadHeader(bytes.NewReader(data), int64(len(data)))
	if int64(len(data)) != h.DataOffset+192 {
		t.Fatalf("file of %d bytes, data at %d", len(data), h.DataOffset)
	}
	want := map[string][2]int64{"c": {128, 32}, "a": {0, 8}, "b": {64, 16}, "e": {64, 0}, "s": {192, 0}}
	var names []string
	for _, x := range m.Tensors {
		names = append(names, x.Name)
		if w := want[x.Name]; x.DataOffset != h.DataOffset+w[0] || x.StorageBytes != w[1] {
			t.Errorf("%s: %d bytes at %d, want %d at %d", x.Name, x.StorageBytes, x.DataOffset-h.DataOffset, w[1], w[0])
		}
	}
	if strings.Join(names, "") != "cabes" {
		t.Errorf("order %v", names)
	}
	d := h.DataOffset
	wantGaps := []accounting.Gap{{Offset: d + 32, Bytes: 32, After: "a"}, {Offset: d + 96, Bytes: 32, After: "b"}, {Offset: d + 160, Bytes: 32, After: "c"}}
	if g := m.Files[0].Gaps; !slices.Equal(g, wantGaps) {
		t.Errorf("gaps %+v, want %+v", g, wantGaps)
	}
	lead := mustLoad(t, newFile().TensorAt("x", gguftest.F32, 64, 8).Append(make([]byte, 96)).Bytes())
	if g := lead.Files[0].Gaps; len(g) != 1 || g[0].Bytes != 64 || g[0].After != "" {
		t.Errorf("leading gap: %+v", g)
	}
	// The last tensor may end the file, or its padding may.
	for _, b := range []*gguftest.Builder{newFile().Tensor("x", gguftest.F32, 3), newFile().Tensor("x", gguftest.F32, 3).NoLastPadding()} {
		data := b.Bytes()
		h, _ := ReadHeader(bytes.NewReader(data), int64(len(data)))
		m := mustLoad(t, data)
		if x := h.Tensors[0]; x.Bytes != 12 || x.Padding != x.Span-12 || x.Gap != 0 || m.Tensors[0].StorageBytes != 12 || len(m.Files[0].Gaps) != 0 {
			t.Errorf("last tensor of a %d-byte file: %+v, gaps %+v", len(data), x, m.Files[0].Gaps)
		}
	}
	scalar := mustLoad(t, newFile().Tensor("s", gguftest.F32).Bytes()).Tensors[0]
	if len(scalar.Shape) != 0 || scalar.StorageBytes != 4 {
		t.Errorf("scalar: %+v", scalar)
	}
}

type malformed struct {
	name string
	data []byte
	want string // in the error
}

// malformedFiles are files with one defect each.
func malformedFiles() []malformed {
	le := binary.LittleEndian
	u32 := func(v uint32) []byte { return le.AppendUint32(nil, v) }
	u64 := func(v uint64) []byte { return le.AppendUint64(nil, v) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	header := func(version uint32, tensors, kvs uint64) []byte {
		return cat([]byte("GGUF"), u32(version), u64(tensors), u64(kvs))
	}
	deep := u32(typeString) // arrays nested 20 deep
	for range 20 {
		deep = cat(u32(typeArray), u64(1), deep)
	}
	deep = cat(deep, u64(0))
	good := newFile().Tensor("w", gguftest.F32, 4).Bytes()
	return []malformed{
		{"empty", nil, "file ends in magic"},
		{"magic", []byte("GGML\x03\x00\x00\x00"), `bad magic "GGML"`},
		{"no version", []byte("GGUF\x03\x00"), "file ends in version"},
		{"version 1", newFile().Version(1).Bytes(), "version 1 is not supported"},
		{"version 4", newFile().Version(4).Bytes(), "version 4 is not supported"},
		{"version 0", newFile().Version(0).Bytes(), "version 0 is not supported"},
		{"big-endian version 1", newFile().Version(1).BigEndian().Bytes(), "version 1 is not supported"},
		{"tensor count", header(3, 1<<40, 0), "tensor_count 1099511627776 exceeds remaining 8 bytes"},
		{"kv count", header(3, 0, math.MaxUint64), "kv_count 18446744073709551615 exceeds remaining 0 bytes"},
		{"tensor count limit", cat(header(3, 100_000, 0), make([]byte, 100_000*minTensorInfo)), "tensor_count 100000 exceeds 84286, the most a file of 2400024 bytes may hold (65536, and one more per 128 bytes of file)"},
		{"tensor count after kvs", newFile().KV("k", "v").Counts(1, 1).Bytes(), "tensor_count 1 exceeds the 0 bytes after the metadata"},
		{"key length", cat(header(3, 0, 1), u64(1<<62), make([]byte, 20)), "kv 0: key length 4611686018427387904 exceeds remaining 20 bytes"},
		{"long key", newFile().KV(strings.Repeat("k", 70000), uint8(1)).Bytes(), "key length 70000 exceeds 65535"},
		{"value type", newFile().RawKV("k", 13, nil).Bytes(), `kv 0 "k": unknown value type 13`},
		{"string length", newFile().KV("a", "b").RawKV("general.name", typeString, u64(1<<33)).Bytes(),
			`kv 1 "general.name": string length 8589934592 exceeds remaining 0 bytes`},
		{"array count", newFile().RawKV("tokenizer.ggml.tokens", typeArray, cat(u32(typeString), u64(math.MaxUint32), make([]byte, 1022))).Bytes(),
			`kv 0 "tokenizer.ggml.tokens": array length 4294967295 exceeds remaining 1022 bytes`},
		{"array of arrays count", newFile().RawKV("k", typeArray, cat(u32(typeArray), u64(10), make([]byte, 119))).Bytes(),
			`array length 10 exceeds remaining 119 bytes`},
		{"array of u64 count", newFile().RawKV("k", typeArray, cat(u32(typeUint64), u64(1<<61), make([]byte, 100))).Bytes(),
			`array length 2305843009213693952 exceeds remaining 100 bytes`},
		{"string in array", newFile().RawKV("k", typeArray, cat(u32(typeString), u64(2), u64(1), []byte("x"), u64(100), make([]byte, 9))).Bytes(),
			`kv 0 "k": string length 100 exceeds remaining 9 bytes`},
		{"array type", newFile().RawKV("k", typeArray, cat(u32(99), u64(0))).Bytes(), "unknown array type 99"},
		{"nesting", newFile().RawKV("k", typeArray, deep).Bytes(), "arrays nested deeper than 16"},
		{"truncated value", cat(header(3, 0, 1), u64(1), []byte("k"), u32(typeUint64), u32(0)), `kv 0 "k": file ends in value (4 bytes left)`},
		{"alignment 0", newFile().KV("general.alignment", uint32(0)).Align(32).Bytes(), "alignment 0 is not a power of two"},
		{"alignment 48", newFile().KV("general.alignment", uint32(48)).Bytes(), "alignment 48 is not a power of two"},
		{"alignment type", newFile().KV("general.alignment", uint64(32)).Bytes(), `kv 0 "general.alignment": type uint64, want uint32`},
		{"long architecture", newFile().RawKV("general.architecture", typeString, cat(u64(1<<16), make([]byte, 100))).Bytes(),
			`kv 0 "general.architecture": string length 65536 exceeds remaining 100 bytes`},
		{"split type", newFile().RawKV("split.count", typeArray, cat(u32(typeString), u64(1), u64(5))).Bytes(),
			`kv 0 "split.count": string length 5 exceeds remaining 0 bytes`},
		{"file type type", newFile().KV("general.file_type", "q4").Bytes(), "type string, want an integer"},
		{"file type negative", newFile().KV("general.file_type", int32(-1)).Bytes(), "int32 value is negative or too large"},
		{"duplicate key", newFile().KV("general.alignment", uint32(32)).KV("general.alignment", uint32(64)).Bytes(), `kv 1 "general.alignment": duplicate key`},
		{"n_dims", newFile().Tensor("w", gguftest.F32, 1, 1, 1, 1, 1).Bytes(), `tensor "w": n_dims 5 exceeds 4`},
		{"ne", newFile().TensorAt("w", gguftest.F32, 0, math.MinInt64).Bytes(), "ne[0] 9223372036854775808 overflows int64"},
		{"numel", newFile().TensorAt("w", gguftest.F32, 0, 1<<62, 4).Bytes(), "element count overflows int64"},
		{"bytes", newFile().TensorAt("w", gguftest.F32, 0, 1<<62).Bytes(), "overflow int64 bytes"},
		{"name length", newFile().Counts(1, 0).Append(u64(1 << 50)).Append(make([]byte, 30)).Bytes(), "tensor info 0: name length 1125899906842624 exceeds remaining 30 bytes"},
		{"row", newFile().Tensor("w", gguftest.Q4_0, 48, 2).Bytes(), "row of 48 elements is not a whole number of q4_0 blocks of 32"},
		{"scalar block", newFile().Tensor("w", gguftest.Q4_K).Bytes(), "row of 1 elements"},
		{"duplicate name", newFile().Tensor("w", gguftest.F32, 4).Tensor("w", gguftest.F32, 4).Bytes(), `tensor "w": duplicate tensor name`},
		{"overlap", newFile().Tensor("a", gguftest.F32, 16).TensorAt("b", gguftest.F32, 32, 8).Bytes(),
			`tensor "a": 64 bytes of data at offset 0 overlap tensor "b" at offset 32`},
		{"same offset", newFile().Tensor("a", gguftest.F32, 4).TensorAt("b", gguftest.F32, 0, 4).Bytes(), `overlap tensor`},
		{"unaligned", newFile().Tensor("a", gguftest.F32, 64).TensorAt("b", gguftest.F32, 4, 1).Bytes(),
			`tensor "b": offset 4 is not a multiple of the alignment 32`},
		{"unaligned 64", newFile().KV("general.alignment", uint32(64)).Tensor("a", gguftest.F32, 64).TensorAt("b", gguftest.F32, 32, 1).Bytes(),
			"offset 32 is not a multiple of the alignment 64"},
		{"offset past EOF", newFile().Tensor("a", gguftest.F32, 8).TensorAt("b", gguftest.F32, 1<<40, 8).Bytes(),
			`tensor "b": offset 1099511627776 (file offset 1099511627872) is past the end of the file (128 bytes)`},
		{"file offset past int64", newFile().TensorAt("b", gguftest.F32, math.MaxInt64-31, 8).Bytes(),
			`tensor "b": offset 9223372036854775776 (file offset 9223372036854775840) is past the end of the file (64 bytes)`},
		{"data offset past EOF", newFile().Tensor("a", gguftest.F32, 8).TensorAt("b", gguftest.F32, 128, 8).Bytes(),
			`tensor "b": offset 128 (file offset 224) is past the end of the file (128 bytes)`},
		{"offset past uint64", newFile().TensorAt("b", gguftest.F32, -32, 8).Bytes(), "offset 18446744073709551584 is past the end of the file"},
		{"data past EOF", good[:len(good)-17], `tensor "w": 16 bytes of data at offset 0 run 1 bytes past the end of the file`},
		{"data section past EOF", newFile().TensorAt("w", gguftest.F32, 0, 0).Bytes()[:60], "offset 0 (file offset 64) is past the end of the file (60 bytes)"},
	}
}

// TestMalformed checks that each defect gives a FormatError saying what.
func TestMalformed(t *testing.T) {
	for _, c := range malformedFiles() {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.data)
			var fe *accounting.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a FormatError", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want %q", err, c.want)
			}
			if fe.Format != "gguf" || fe.Msg == "" || unicode.IsUpper(rune(fe.Msg[0])) {
				t.Errorf("error %+v", fe)
			}
		})
	}
}

// allKinds is a file with a value of every kind.
func allKinds() []byte {
	return newFile().
		KV("general.architecture", "llama").
		KV("general.alignment", uint32(16)).
		KV("general.file_type", uint32(1)).
		KV("u8", uint8(1)).KV("i8", int8(-1)).KV("u16", uint16(2)).KV("i16", int16(-2)).
		KV("u32", uint32(3)).KV("i32", int32(-3)).KV("f32", float32(1.5)).KV("b", true).
		KV("u64", uint64(4)).KV("i64", int64(-4)).KV("f64", 2.5).
		KV("tokens", []string{"a", "bb", "ccc"}).
		KV("scores", []float32{1, 2, 3}).
		KV("nested", [][]string{{"x"}, {}, {"y", "z"}}).
		Tensor("a", gguftest.F16, 8, 2).
		Tensor("b", gguftest.Q8_0, 32).
		NoLastPadding().
		Bytes()
}

// TestTruncated cuts a file with every kind of value at every offset.
func TestTruncated(t *testing.T) {
	data := allKinds()
	if _, err := load(t, data); err != nil {
		t.Fatal(err)
	}
	for n := range len(data) {
		_, err := load(t, data[:n])
		var fe *accounting.FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("cut at %d: error %v, want a FormatError", n, err)
		}
		if fe.Offset < 0 || fe.Offset > int64(n) {
			t.Errorf("cut at %d: error offset %d: %v", n, fe.Offset, err)
		}
	}
}

func TestSniff(t *testing.T) {
	for _, c := range []struct {
		head string
		want bool
	}{
		{"GGUF\x03\x00\x00\x00", true},
		{"GGUF\x00\x00\x00\x03", true},
		{"GGUF\x02\x00\x00\x00\x00", true},
		{"GGUF\x01\x00\x00\x00", true}, // Load explains the version
		{"GGUF", true},
		{"GGUF\x00\x00\x00\x00", false},
		{"GGUF is a file format", false},
		{"GGU", false},
		{"ggjt\x03\x00\x00\x00", false},
		{"", false},
	} {
		if got := (Loader{}).Sniff([]byte(c.head)); got != c.want {
			t.Errorf("Sniff(%q) = %v", c.head, got)
		}
	}
}

// TestFixtures loads fixtures/gguf and checks that each file is what
// gguftest.Fixtures builds (go run ./fixtures/gguf/gen writes them).
func TestFixtures(t *testing.T) {
	built := gguftest.Fixtures()
	committed, _ := filepath.Glob("../../fixtures/gguf/*.gguf")
	if len(committed) != len(built) {
		t.Errorf("fixtures/gguf has %d files, gguftest.Fixtures %d", len(committed), len(built))
	}
	for _, c := range []struct {
		file         string
		tensors      int
		stored, size int64
		split        int64
	}{
		{"tiny-q4_k_m.gguf", 12, 277_120, 280_000, 0},
		{"tiny-00001-of-00002.gguf", 10, 86_528, 88_320, 0},
		{"tiny-00002-of-00002.gguf", 11, 86_784, 87_584, 1},
	} {
		t.Run(c.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("../../fixtures/gguf", c.file))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, built[c.file]) {
				t.Errorf("differs from gguftest.Fixtures (%d bytes): run go run ./fixtures/gguf/gen", len(built[c.file]))
			}
			m := mustLoad(t, data)
			var stored, spans int64
			for _, x := range m.Tensors {
				stored += theoretical(t, x)
				spans += x.StorageBytes
			}
			h, err := ReadHeader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Tensors) != c.tensors || stored != c.stored || int64(len(data)) != c.size ||
				spans != c.size-h.DataOffset || h.SplitNo != c.split {
				t.Errorf("%d tensors, %d bytes (spans %d) in %d, split %d", len(m.Tensors), stored, spans, len(data), h.SplitNo)
			}
		})
	}
}

// TestVocabAllocs guards the promise that skipped strings cost nothing.
func TestVocabAllocs(t *testing.T) {
	racetest.SkipAllocs(t)
	data, err := os.ReadFile(filepath.Join(realworldDir, "llama_cpp_vocab/ggml-vocab-deepseek-llm.gguf"))
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("no shared/realworld")
	}
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(data)
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := ReadHeader(r, int64(len(data))); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 10 {
		t.Errorf("%v allocations to read a vocab file", allocs)
	}
}

// failingReader fails every read at or after off.
type failingReader struct {
	data []byte
	off  int64
}

var errDisk = errors.New("disk on fire")

func (r failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) <= r.off {
		return copy(p, r.data[off:]), nil
	}
	n := 0
	if off < r.off {
		n = copy(p, r.data[off:r.off])
	}
	return n, errDisk
}

// TestReadError checks that a failed read is reported as such, not as a
// malformed file, and that a file shorter than its stated size is.
func TestReadError(t *testing.T) {
	data := allKinds()
	for _, off := range []int64{0, 10, 100, int64(len(data)) - 10} {
		_, err := ReadHeader(failingReader{data, off}, int64(len(data)))
		var fe *accounting.FormatError
		if !errors.Is(err, errDisk) || errors.As(err, &fe) {
			t.Errorf("fail at %d: %v", off, err)
		}
	}
	if _, err := ReadHeader(bytes.NewReader(data), -1); err == nil {
		t.Error("negative size: no error")
	}
	_, err := ReadHeader(bytes.NewReader(data[:50]), int64(len(data)))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short reader: %v", err)
	}
}

func TestFileTypeLabel(t *testing.T) {
	for ft, want := range map[int64][2]string{15: {"MOSTLY_Q4_K_M", "q4_k"}, 1: {"MOSTLY_F16", "float16"}, -1: {"", ""}, 99: {"file_type 99", ""}} {
		label, dtype := FileTypeLabel(ft)
		if label != want[0] || dtype != want[1] {
			t.Errorf("FileTypeLabel(%d) = %q, %q", ft, label, dtype)
		}
		if _, ok := accounting.LookupDType(dtype); dtype != "" && !ok {
			t.Errorf("%d: %q not in the dtype table", ft, dtype)
		}
	}
	for ft, f := range fileTypes() {
		if _, ok := accounting.LookupDType(f.dtype); !ok {
			t.Errorf("file type %d (%s): dtype %q not in the dtype table", ft, f.label, f.dtype)
		}
	}
}

// TestFieldByField reads files whose tensor infos cross the reader's
// buffer, and every cut of one, with and without reader.tensorInfo: the
// headers and errors must agree, and both paths must have been taken.
func TestFieldByField(t *testing.T) {
	b := newFile()
	for i := range 5000 { // 150 KB of infos: they cross the 64 KB buffer
		b.Tensor("blk."+strconv.Itoa(i)+".attn_q.weight", []uint32{gguftest.F32, gguftest.Q8_0}[i%2], 32, int64(1+i%3))
	}
	many := b.Bytes()
	files := [][]byte{many, gguftest.ManyTensors(128), allKinds()}
	for n := 0; n < 200_000; n += 997 { // cuts through every part of many
		files = append(files, many[:n])
	}
	for _, data := range files {
		size := int64(len(data))
		fast, errFast := readHeader(bytes.NewReader(data), size, false)
		slow, errSlow := readHeader(bytes.NewReader(data), size, true)
		if fmt.Sprint(errFast) != fmt.Sprint(errSlow) {
			t.Fatalf("%d bytes: error %v, field by field %v", size, errFast, errSlow)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%d bytes: headers differ", size)
		}
	}
	// Both paths on the whole file: decoded in place, all infos but those
	// across a buffer boundary.
	r := newReader(bytes.NewReader(many), int64(len(many)))
	p := &parser{r: r}
	h := &Header{Alignment: defaultAlignment}
	if err := p.header(h); err != nil {
		t.Fatal(err)
	}
	if err := p.metadata(h); err != nil {
		t.Fatal(err)
	}
	fast, slow := 0, 0
	for range p.nTensors {
		if _, _, _, _, _, ok := r.tensorInfo(true); ok {
			fast++
			continue
		}
		var err error
		if _, _, _, _, err = p.tensorInfo(nil, nil); err != nil {
			t.Fatal(err)
		}
		slow++
	}
	if fast < 4900 || slow == 0 {
		t.Errorf("%d infos decoded in place, %d field by field", fast, slow)
	}
}

// TestFirstDuplicate compares firstDuplicate with a map of names, on tables
// with no duplicate and with one placed anywhere, names that share long
// prefixes, and the empty name.
func TestFirstDuplicate(t *testing.T) {
	want := func(ts []TensorInfo) int {
		seen := map[string]bool{}
		for i, x := range ts {
			if seen[x.Name] {
				return i
			}
			seen[x.Name] = true
		}
		return -1
	}
	for _, n := range []int{0, 1, 2, 3, 17, 1000, 4097} {
		ts := make([]TensorInfo, n)
		for i := range ts {
			ts[i].Name = strings.Repeat("blk.", i%5) + strconv.Itoa(i)
		}
		if i := firstDuplicate(ts); i != -1 {
			t.Fatalf("%d names: duplicate at %d", n, i)
		}
		for _, c := range [][2]int{{0, 1}, {0, n - 1}, {n / 2, n / 2}, {n - 2, n - 1}, {1, n / 3}} {
			from, to := c[0], c[1]
			if from < 0 || to <= from || to >= n {
				continue
			}
			dup := slices.Clone(ts)
			dup[to].Name = dup[from].Name
			if e := to/2 + to/4; e != from && e != to {
				dup[e].Name = "" // one empty name, unique
			}
			if got, w := firstDuplicate(dup), want(dup); got != w || w < 0 {
				t.Errorf("%d names, %d copied to %d: duplicate at %d, want %d", n, from, to, got, w)
			}
		}
	}
}

// TestManyTensorsGarbage: reading the infos of 100,000 tensors leaves
// little garbage. Doubling the infos' array from 16,384 left three of them
// behind (issue 11: a seventh of the audit's peak RSS); upTo grows it
// eightfold.
func TestManyTensorsGarbage(t *testing.T) {
	racetest.SkipAllocs(t)
	const n = 100_000
	b := newFile()
	for i := range n {
		b.Tensor("blk."+strconv.Itoa(i/9)+".t"+strconv.Itoa(i%9)+".weight", gguftest.F32, 16)
	}
	data := b.Bytes()
	r := bytes.NewReader(data)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	h, err := ReadHeader(r, int64(len(data)))
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	kept := uint64(len(h.Tensors)) * uint64(unsafe.Sizeof(TensorInfo{}))
	// Besides the infos: their names and dims, the first 16,384 infos, and
	// the doubling of names and dims (2.0x in all; doubling the infos made
	// it 3.1x).
	if got := after.TotalAlloc - before.TotalAlloc; got > kept*9/4 {
		t.Errorf("reading %d tensor infos (%d bytes) allocated %d bytes", n, kept, got)
	}
}
