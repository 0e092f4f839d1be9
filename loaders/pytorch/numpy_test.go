package pytorch

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/realworld"
)

// TestNumpyFixtures checks the files gen_numpy.py made with torch.save
// against what torch.load gives back: every tensor and numeric numpy array
// listed in order with its dtype, shape and bytes, their distinct bytes the
// file's stored bytes (an array under two keys once, a numpy scalar not at
// all), and an unread-tensors warning exactly where an array could not be
// sized (string and object arrays). Before numpy arrays were read, the
// 16 KiB float32 array of numpy_p2.pt was overhead, with no word of it.
func TestNumpyFixtures(t *testing.T) {
	var exp struct {
		Files map[string]struct {
			SizeBytes   int64 `json:"size_bytes"`
			StoredBytes int64 `json:"stored_bytes"`
			Tensors     []struct {
				Name  string  `json:"name"`
				DType string  `json:"dtype"`
				Shape []int64 `json:"shape"`
				Bytes int64   `json:"bytes"`
			} `json:"tensors"`
			UnreadArrays []string `json:"unread_arrays"`
		} `json:"files"`
	}
	readTruth(t, "expected_numpy.json", &exp)
	if len(exp.Files) != 5 {
		t.Fatalf("expected_numpy.json lists %d files", len(exp.Files))
	}
	for name, want := range exp.Files {
		t.Run(name, func(t *testing.T) {
			data := readFile(t, filepath.Join(fixturesDir, name))
			if int64(len(data)) != want.SizeBytes {
				t.Fatalf("%d bytes, expected_numpy.json says %d: regenerate", len(data), want.SizeBytes)
			}
			m, err := loadBytes(data)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Tensors) != len(want.Tensors) {
				t.Errorf("%d tensors, torch: %d", len(m.Tensors), len(want.Tensors))
			}
			for i, wt := range want.Tensors {
				if i >= len(m.Tensors) {
					break
				}
				g := m.Tensors[i]
				if g.Name != wt.Name || g.DType != wt.DType || !slices.Equal(g.Shape, wt.Shape) || g.StorageBytes != wt.Bytes {
					t.Errorf("tensor %d: %s %s %v, %d bytes; torch: %s %s %v, %d bytes", i, g.Name, g.DType, g.Shape, g.StorageBytes,
						wt.Name, wt.DType, wt.Shape, wt.Bytes)
				}
			}
			if got := realworld.StoredBytes(m); got != want.StoredBytes {
				t.Errorf("%d stored bytes, torch: %d", got, want.StoredBytes)
			}
			m.Files[0].SizeBytes = int64(len(data))
			res, err := accounting.Audit(m, accounting.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if f := res.Files[0]; f.StoredBytes != want.StoredBytes || f.OverheadBytes != want.SizeBytes-want.StoredBytes {
				t.Errorf("file: %d stored, %d overhead; torch: %d stored of %d", f.StoredBytes, f.OverheadBytes, want.StoredBytes, want.SizeBytes)
			}
			unread := slices.ContainsFunc(res.Findings, func(f accounting.Finding) bool { return f.Kind == accounting.UnreadTensors })
			if unread != (len(want.UnreadArrays) > 0) {
				t.Errorf("unread-tensors finding: %v; arrays not sized: %v", unread, want.UnreadArrays)
			}
		})
	}
}

// numpyArrayPickle is a state_dict {"a": array, "b": array}, protocol 2,
// of two float32 [2] arrays whose data data writes (it pushes the data
// of the first, then of the second).
func numpyArrayPickle(data func(p *pb, second bool)) []byte {
	p := newPickle().raw('}')
	for i, key := range []string{"a", "b"} {
		p.str(key).global("numpy.core.multiarray", "_reconstruct").global("numpy", "ndarray").
			ints(0).str("b").raw(0x87, 'R') // TUPLE3, REDUCE
		p.mark().int(1).ints(2).
			global("numpy", "dtype").str("f4").raw(0x89, 0x88, 0x87, 'R').
			mark().int(3).str("<").raw('N', 'N', 'N').int(-1).int(-1).int(0).tuple().raw('b').
			raw(0x89) // is_fortran False
		data(p, i == 1)
		p.tuple().raw('b', 's')
	}
	return p.stop()
}

// latin1 pushes _codecs.encode(text, 'latin1').
func latin1(p *pb, text string) {
	p.global("_codecs", "encode").str(text).str("latin1").raw(0x86, 'R') // TUPLE2, REDUCE
}

// TestNumpyData: a numpy array's stored bytes are its data's, however the
// pickle writes them; data the array cannot have (text that is not
// latin-1, a length its shape does not give) leaves the array unread, with
// the warning; data the memo reuses is one storage.
func TestNumpyData(t *testing.T) {
	for _, c := range []struct {
		name    string
		data    func(p *pb, second bool)
		tensors int
		stored  int64
		unread  bool
	}{
		// Eight bytes as latin-1 text: 0x80 and 0xff take two bytes each
		// in the file, eight in memory.
		{"latin-1 text", func(p *pb, _ bool) { latin1(p, "\u0080\u00ff\x00\x01\x02\x03\x04\x05") }, 2, 16, false},
		{"bytes", func(p *pb, _ bool) { p.raw('C', 8).raw(make([]byte, 8)...) }, 2, 16, false},
		// The second array's data is the first's, from the memo.
		{"memo", func(p *pb, second bool) {
			if second {
				p.raw('h', 9)
				return
			}
			p.raw('C', 8).raw(make([]byte, 8)...).raw('q', 9)
		}, 2, 8, false},
		{"not latin-1", func(p *pb, _ bool) { latin1(p, "\u0100\x00\x01\x02\x03\x04\x05\x06") }, 0, 0, true},
		{"short", func(p *pb, _ bool) { p.raw('C', 7).raw(make([]byte, 7)...) }, 0, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := loadBytes(onePickle(t, numpyArrayPickle(c.data)))
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Tensors) != c.tensors || realworld.StoredBytes(m) != c.stored || (len(m.Files[0].UnreadTensors) > 0) != c.unread {
				t.Errorf("%d tensors, %d stored bytes, unread %v; want %d, %d, %v", len(m.Tensors), realworld.StoredBytes(m),
					m.Files[0].UnreadTensors, c.tensors, c.stored, c.unread)
			}
			for _, x := range m.Tensors {
				if x.DType != "float32" || !slices.Equal(x.Shape, []int64{2}) || x.StorageBytes != 8 || x.DataOffset != -1 {
					t.Errorf("tensor %s: %s %v, %d bytes at %d", x.Name, x.DType, x.Shape, x.StorageBytes, x.DataOffset)
				}
			}
		})
	}
}
