package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// seedFiles returns the fixtures and the real-world safetensors files.
func seedFiles(tb testing.TB) [][]byte {
	tb.Helper()
	var paths []string
	for _, pattern := range []string{
		filepath.Join(fixtureDir, "*.safetensors"),
		filepath.Join(fixtureDir, "*", "*.safetensors"),
		filepath.Join(realworldDir, "*", "*.safetensors"),
	} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			tb.Fatal(err)
		}
		paths = append(paths, m...)
	}
	var files [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		files = append(files, b)
	}
	return files
}

// paddedReader is a file of size bytes whose first bytes are b and the rest
// zeros: a header-only input stands for a whole file, which keeps fuzz inputs
// small (the loader never reads the data).
type paddedReader struct {
	b    []byte
	size int64
}

func (p paddedReader) ReadAt(buf []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	n := 0
	for n < len(buf) && off+int64(n) < p.size {
		if i := off + int64(n); i < int64(len(p.b)) {
			buf[n] = p.b[i]
		} else {
			buf[n] = 0
		}
		n++
	}
	if n < len(buf) {
		return n, io.EOF
	}
	return n, nil
}

// fuzzSeed splits a file into its length field and header, and the number
// of bytes after them.
func fuzzSeed(file []byte) ([]byte, uint32) {
	if len(file) < 8 {
		return file, 0
	}
	end := 8 + binary.LittleEndian.Uint64(file)
	if end > uint64(len(file)) {
		return file, 0
	}
	return file[:end], uint32(uint64(len(file)) - end)
}

// FuzzLoad checks that Load never panics, fails only with a FormatError
// whose offset lies in the file, and returns only models that satisfy the
// invariants. An input is a file's first bytes and the count of zero bytes
// that follow them.
func FuzzLoad(f *testing.F) {
	for _, b := range seedFiles(f) {
		head, pad := fuzzSeed(b)
		f.Add(head, pad)
	}
	for _, h := range []string{
		`{}`,
		`{"__metadata__":{"a":"b"},"x":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]}}`,
		`{"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},"b":{"dtype":"BOOL","shape":[],"data_offsets":[0,1]}}`,
		`{"a":{"dtype":"F64","shape":[0],"data_offsets":[3,3]},"b":{"dtype":"I16","shape":[1,1],"data_offsets":[2,4]}}`,
		`{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,9007199254740993]}}`,
		`{"a\u00e9":{"dtype":"F8_E4M3FNUZ","shape":[ 2 , 3 ],"data_offsets":[0,6],"x":[{}]}}`,
	} {
		head, pad := fuzzSeed(build(h, 16))
		f.Add(head, pad)
	}
	f.Fuzz(func(t *testing.T, head []byte, pad uint32) {
		size := int64(len(head)) + int64(pad)
		m, err := Loader{}.Load(paddedReader{head, size}, size)
		if err != nil {
			var fe *accounting.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a FormatError", err, err)
			}
			if fe.Offset < 0 || fe.Offset > size || fe.Format != "safetensors" || fe.Msg == "" {
				t.Fatalf("error %+v: bad offset, format or message for a %d-byte file", fe, size)
			}
			return
		}
		dataStart := 8 + int64(binary.LittleEndian.Uint64(head))
		checkInvariantsSize(t, m, dataStart, size)
		names := map[string]bool{}
		for _, tn := range m.Tensors {
			if names[tn.Name] || tn.Name == metadataKey {
				t.Fatalf("tensor name %q repeated or reserved", tn.Name)
			}
			names[tn.Name] = true
		}
	})
}

// llamaHeader returns the header of a Llama-2-7B-shaped bfloat16 checkpoint
// (291 tensors, 13.5 GB of data) and the size of the whole file.
func llamaHeader() ([]byte, int64) {
	const d, ff, vocab, layers = 4096, 11008, 32000, 32
	type spec struct {
		name  string
		shape []int64
	}
	specs := []spec{{"model.embed_tokens.weight", []int64{vocab, d}}}
	for l := range layers {
		p := fmt.Sprintf("model.layers.%d.", l)
		for _, m := range []string{"q", "k", "v", "o"} {
			specs = append(specs, spec{p + "self_attn." + m + "_proj.weight", []int64{d, d}})
		}
		specs = append(specs,
			spec{p + "mlp.gate_proj.weight", []int64{ff, d}},
			spec{p + "mlp.up_proj.weight", []int64{ff, d}},
			spec{p + "mlp.down_proj.weight", []int64{d, ff}},
			spec{p + "input_layernorm.weight", []int64{d}},
			spec{p + "post_attention_layernorm.weight", []int64{d}})
	}
	specs = append(specs, spec{"model.norm.weight", []int64{d}}, spec{"lm_head.weight", []int64{vocab, d}})
	var entries []string
	var off int64
	for _, s := range specs {
		n := int64(2)
		for _, x := range s.shape {
			n *= x
		}
		dims := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(s.shape)), ","), "[]")
		entries = append(entries, tensorJSON(s.name, "BF16", "["+dims+"]", off, off+n))
		off += n
	}
	h := `{"__metadata__":{"format":"pt"},` + strings.Join(entries, ",") + "}"
	file := append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...)
	return file, int64(len(file)) + off
}

// manyHeader returns a file of n small float32 tensors.
func manyHeader(n int) []byte {
	entries := make([]string, n)
	for i := range entries {
		entries[i] = tensorJSON(fmt.Sprintf("layers.%d.weight", i), "F32", "[4,4]", 64*i, 64*i+64)
	}
	return build("{"+strings.Join(entries, ",")+"}", 64*n)
}

// BenchmarkLoad measures header parsing. The Llama case claims 13.5 GB
// but holds only the header: Load must not read past it. ns/tensor is the
// time of a load over its tensors.
//
//	go test -run '^$' -bench Load -benchmem ./loaders/safetensors
func BenchmarkLoad(b *testing.B) {
	small, err := os.ReadFile(filepath.Join(fixtureDir, "small_f32.safetensors"))
	if err != nil {
		b.Fatal(err)
	}
	llama, llamaSize := llamaHeader()
	many := manyHeader(2048)
	many100k := manyHeader(100_000)
	cases := []struct {
		name    string
		r       *bytes.Reader
		size    int64
		tensors int
	}{
		{"small_f32-13", bytes.NewReader(small), int64(len(small)), 13},
		{"synthetic-2048", bytes.NewReader(many), int64(len(many)), 2048},
		{"llama2-7b-291", bytes.NewReader(llama), llamaSize, 291},
		{"synthetic-100000", bytes.NewReader(many100k), int64(len(many100k)), 100_000},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var n [8]byte
			if _, err := c.r.ReadAt(n[:], 0); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(8 + int64(binary.LittleEndian.Uint64(n[:]))) // header bytes per op
			for b.Loop() {
				m, err := Loader{}.Load(c.r, c.size)
				if err != nil {
					b.Fatal(err)
				}
				if len(m.Tensors) != c.tensors {
					b.Fatalf("%d tensors, want %d", len(m.Tensors), c.tensors)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(c.tensors), "ns/tensor")
		})
	}
}
