package pytorch

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/nlpodyssey/gopickle/types"
	"github.com/qinsaudit/qinsaudit/accounting"
)

// TestPersistentIDOfBytes: a legacy ('module', b'a') persistent id resolves
// to its second field. Used as an OrderedDict key, bytes would make
// gopickle hash a Go slice and panic.
func TestPersistentIDOfBytes(t *testing.T) {
	moduleID := func(p *pb) *pb { return p.mark().str("module").raw('C', 1, 'a').tuple().raw('Q') }
	for name, obj := range map[string][]byte{
		"OrderedDict key": moduleID(newPickle().odict()).raw('N', 's').stop(),
		"set member":      moduleID(newPickle().raw(0x8f, '(')).raw(0x90).stop(),
		"value":           moduleID(newPickle()).stop(),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadBytes(legacyCheckpoint(obj, nil, nil))
			var fe *accounting.FormatError
			if !errors.As(err, &fe) || !strings.Contains(fe.Msg, "object pickle: unpickling: persistent id resolves to bytes (unsupported)") {
				t.Fatalf("got %v, want bytes refused", err)
			}
		})
	}
	// A class, what torch.save(model) puts there, is fine.
	obj := newPickle().mark().str("module").global("__main__", "Net").str("net.py").str("source").tuple().raw('Q', ')', 0x81).stop()
	if _, err := loadBytes(legacyCheckpoint(obj, nil, nil)); err != nil {
		t.Fatal(err)
	}
}

// TestCallRefusesBytes: an allow-listed call's result goes back to
// gopickle, so it must not be bytes either, whatever the function.
func TestCallRefusesBytes(t *testing.T) {
	c := &callable{name: "f", u: &unpickler{}, fn: func(*unpickler, []any) (any, error) { return []byte("a"), nil }}
	if v, err := c.Call(); err == nil || err.Error() != "f: returns bytes (unsupported)" {
		t.Fatalf("got %v, %v; want bytes refused", v, err)
	}
	// Through _rebuild_from_type_v2, whose function is the one above.
	f := &callable{name: "_rebuild_from_type_v2", fn: rebuildFromType, u: c.u}
	if v, err := f.Call(c, nil, &types.Tuple{}, nil); err == nil || err.Error() != "f: returns bytes (unsupported)" {
		t.Fatalf("got %v, %v; want bytes refused", v, err)
	}
}

// TestMemoBound: each memo entry costs gopickle and the scan about 200
// bytes for 5 bytes of pickle; the scan caps their number.
func TestMemoBound(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("\x80\x02N")
	for i := range maxMemo + 1 {
		b.WriteByte('r') // LONG_BINPUT
		b.Write(binary.LittleEndian.AppendUint32(nil, uint32(i)))
	}
	b.WriteByte('.')
	before := heapAllocs()
	_, err := loadBytes(onePickle(t, b.Bytes()))
	allocated := heapAllocs() - before
	var fe *accounting.FormatError
	if !errors.As(err, &fe) || !strings.Contains(fe.Msg, fmt.Sprintf("opcode LONG_BINPUT at pickle byte %d: more than %d memo entries", 3+5*maxMemo, maxMemo)) {
		t.Fatalf("got %v, want the memo bounded", err)
	}
	if want := dataPklOffset(t) + 3 + 5*maxMemo; fe.Offset != want {
		t.Errorf("offset %d, want %d", fe.Offset, want)
	}
	if allocated > 300<<20 { // 400 MiB without the bound
		t.Errorf("allocated %d MiB", allocated>>20)
	}

	// Putting one key again and again adds no entry.
	p := newPickle().raw('N')
	for range 1000 {
		p.raw('q', 7)
	}
	if _, err := loadBytes(onePickle(t, p.stop())); err != nil {
		t.Fatal(err)
	}
}

// guardedReader fails reads that touch any of its forbidden ranges and
// counts the bytes read.
type guardedReader struct {
	r         io.ReaderAt
	forbidden [][2]int64
	read      int64
}

func (g *guardedReader) ReadAt(p []byte, off int64) (int, error) {
	for _, f := range g.forbidden {
		if off < f[1] && off+int64(len(p)) > f[0] {
			return 0, fmt.Errorf("read [%d, %d) touches storage data [%d, %d)", off, off+int64(len(p)), f[0], f[1])
		}
	}
	n, err := g.r.ReadAt(p, off)
	g.read += int64(n)
	return n, err
}

// TestLegacyReadsNoStorageData: the legacy loader reads its five pickles
// once each, in one pass, and no byte of storage data: only the element
// counts between storages.
func TestLegacyReadsNoStorageData(t *testing.T) {
	const n = 20
	p := newPickle().odict()
	var keys []string
	var storages []legacyStorage
	for i := range n {
		key := fmt.Sprint(i)
		p.str(fmt.Sprintf("model.layers.%d.self_attn.q_proj.weight", i)).
			tensorOn(func(p *pb) { p.storage("FloatStorage", key, 64, true) }, 0, []int{8, 8}, []int{8, 1}).raw('s')
		keys = append(keys, key)
		storages = append(storages, legacyStorage{64, 256})
	}
	data := legacyCheckpoint(p.stop(), keys, storages)
	pickles := int64(len(data) - n*(8+256))
	if pickles <= 512 {
		t.Fatalf("pickles of %d bytes: Load's first read of 512 bytes would reach storage data", pickles)
	}
	g := &guardedReader{r: bytes.NewReader(data)}
	for i := range int64(n) {
		start := pickles + i*(8+256) + 8
		g.forbidden = append(g.forbidden, [2]int64{start, start + 256})
	}
	m, err := Loader{}.Load(g, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tensors) != n {
		t.Errorf("%d tensors", len(m.Tensors))
	}
	if want := pickles + n*8; g.read != want {
		t.Errorf("read %d bytes, want %d: the pickles once and the counts", g.read, want)
	}
}

// eofReader says io.EOF with every read that reaches the end of its data,
// full or not, as io.ReaderAt allows.
type eofReader struct{ data []byte }

func (e eofReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(e.data)) {
		return 0, io.EOF
	}
	n := copy(p, e.data[off:])
	if off+int64(n) == int64(len(e.data)) {
		return n, io.EOF
	}
	return n, nil
}

// TestReadAtEOF: a full read with io.EOF is a full read; a short one with a
// size that promised more is not.
func TestReadAtEOF(t *testing.T) {
	// The last storage is empty: its element count ends the file.
	legacy := legacyOne(0, []int{0}, []string{"k"}, []legacyStorage{{0, 0}})
	files := map[string][]byte{
		"legacy, count at the end": legacy,
		"legacy":                   legacyOne(4, []int{4}, []string{"k"}, []legacyStorage{{4, 16}}),
		"zip":                      goodZip(t),
	}
	for name, data := range files {
		if _, err := (Loader{}).Load(eofReader{data}, int64(len(data))); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	// The head of a file shorter than its size is what the file holds
	// (and is not quoted).
	_, err := Loader{}.Load(eofReader{[]byte("hello")}, 100)
	var fe *accounting.FormatError
	if !errors.As(err, &fe) || !strings.Contains(fe.Msg, "not a torch.save checkpoint") || strings.Contains(fe.Msg, "68 65") {
		t.Errorf("short file: got %v", err)
	}
	// A count cut short by the end of the data.
	_, err = Loader{}.Load(eofReader{legacy[:len(legacy)-3]}, int64(len(legacy)))
	if !errors.As(err, &fe) || !strings.Contains(fe.Msg, `storage "k": reading element count: unexpected EOF`) {
		t.Errorf("short count: got %v", err)
	}
}

// TestIsCheckpoint: IsCheckpoint says yes exactly for the archives in
// which Load finds a data.pkl.
func TestIsCheckpoint(t *testing.T) {
	tests := []struct {
		names []string
		want  bool
	}{
		{[]string{"archive/data.pkl", "archive/data/0"}, true},
		{[]string{"model/version", "model/data.pkl"}, true},
		{[]string{"data.pkl"}, false},
		{[]string{"/data.pkl"}, false},
		{[]string{"a/b/data.pkl"}, false},
		{[]string{"archive/data.pkl.bak"}, false},
		{[]string{"archive/version"}, false},
		{nil, false},
	}
	for _, tc := range tests {
		var recs []record
		for _, n := range tc.names {
			recs = append(recs, record{n, []byte("x")})
		}
		data := buildZip(t, recs...)
		z, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
			t.Fatal(err)
		}
		if got := IsCheckpoint(z); got != tc.want {
			t.Errorf("%q: IsCheckpoint = %v, want %v", tc.names, got, tc.want)
		}
		_, err = loadBytes(data)
		if noPkl := err != nil && strings.Contains(err.Error(), "no data.pkl"); noPkl == tc.want {
			t.Errorf("%q: Load says %v", tc.names, err)
		}
	}
}
