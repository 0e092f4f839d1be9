// Package bench compares qinsaudit's GGUF reader with gguf-parser-go on the
// same files; see README.md.
package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	parser "github.com/gpustack/gguf-parser-go"

	"github.com/qinsaudit/qinsaudit/loaders/gguf"
	"github.com/qinsaudit/qinsaudit/loaders/gguf/gguftest"
)

// realworld is shared/realworld seen from this directory.
const realworld = "../../../shared/realworld"

// files returns the benchmark's files: the vocab files of shared/realworld
// and gguftest.ManyTensors' file of 1,152 tensors, written to dir.
func files(tb testing.TB, dir string) []string {
	tb.Helper()
	paths, _ := filepath.Glob(filepath.Join(realworld, "llama_cpp_vocab", "*.gguf"))
	if len(paths) == 0 {
		tb.Log("no shared/realworld vocab files")
	}
	many := filepath.Join(dir, "many-tensors.gguf")
	if err := os.WriteFile(many, gguftest.ManyTensors(128), 0o644); err != nil {
		tb.Fatal(err)
	}
	return append(paths, many)
}

// readHeader is qinsaudit's side: open, stat, ReadHeader, close.
func readHeader(path string) (*gguf.Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return gguf.ReadHeader(f, fi.Size())
}

// parsers are the configurations compared. gguf-parser-go reads every
// metadata value by default; SkipLargeMetadata skips arrays (as we do);
// UseMMap is how its own benchmarks run.
var parsers = []struct {
	name string
	run  func(path string) error
}{
	{"qinsaudit", func(p string) error { _, err := readHeader(p); return err }},
	{"gguf-parser-go", func(p string) error { _, err := parser.ParseGGUFFile(p); return err }},
	{"gguf-parser-go-skip", func(p string) error { _, err := parser.ParseGGUFFile(p, parser.SkipLargeMetadata()); return err }},
	{"gguf-parser-go-skip-mmap", func(p string) error {
		_, err := parser.ParseGGUFFile(p, parser.SkipLargeMetadata(), parser.UseMMap())
		return err
	}},
}

func BenchmarkParse(b *testing.B) {
	for _, path := range files(b, b.TempDir()) {
		for _, p := range parsers {
			b.Run(filepath.Base(path)+"/"+p.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := p.run(path); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestSameTensors checks that both parsers see the same tensor infos and
// data offset, and agree on each tensor's size, on the benchmark's files and
// on a file with a tensor of every ggml type both know.
func TestSameTensors(t *testing.T) {
	dir := t.TempDir()
	paths := files(t, dir)
	paths = append(paths, filepath.Join(realworld, "ollama", "llama-2-tiny-random.gguf"),
		filepath.Join("..", "..", "fixtures", "gguf", "tiny-q4_k_m.gguf"))
	all := gguftest.New()
	for _, id := range gguftest.IDs() {
		if tt, ok := parser.GGMLType(id).Trait(); ok && tt.BlockSize > 0 {
			all.Tensor(fmt.Sprintf("t%d", id), id, 512, 2)
		}
	}
	allPath := filepath.Join(dir, "all-types.gguf")
	if err := os.WriteFile(allPath, all.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	paths = append(paths, allPath)
	for _, path := range paths {
		if _, err := os.Stat(path); err != nil {
			t.Log(err)
			continue
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			h, err := readHeader(path)
			if err != nil {
				t.Fatal(err)
			}
			g, err := parser.ParseGGUFFile(path, parser.SkipLargeMetadata())
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Tensors) != len(g.TensorInfos) || h.DataOffset != g.TensorDataStartOffset {
				t.Fatalf("%d tensors, data at %d; gguf-parser-go: %d, %d", len(h.Tensors), h.DataOffset, len(g.TensorInfos), g.TensorDataStartOffset)
			}
			var ours, theirs int64
			for i, x := range h.Tensors {
				y := g.TensorInfos[i]
				dims := make([]uint64, len(x.Dims))
				for j, d := range x.Dims {
					dims[j] = uint64(d)
				}
				if x.Name != y.Name || x.Type != uint32(y.Type) || x.Offset != int64(y.Offset) || !slices.Equal(dims, y.Dimensions) {
					t.Errorf("tensor %d: %+v; gguf-parser-go %+v", i, x, y)
				}
				if x.Bytes != int64(y.Bytes()) {
					t.Errorf("%s (%s): %d bytes; gguf-parser-go %d", x.Name, x.DType, x.Bytes, y.Bytes())
				}
				ours += x.Bytes
				theirs += int64(y.Bytes())
			}
			if ours != theirs {
				t.Errorf("%d tensor bytes; gguf-parser-go %d", ours, theirs)
			}
		})
	}
}

// TestSameMetadata checks the metadata qinsaudit keeps against
// gguf-parser-go's on the real-world files.
func TestSameMetadata(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(realworld, "*", "*.gguf"))
	sort.Strings(paths)
	for _, path := range paths {
		h, err := readHeader(path)
		if err != nil {
			t.Fatal(err)
		}
		g, err := parser.ParseGGUFFile(path)
		if err != nil {
			t.Fatal(err)
		}
		kv := g.Header.MetadataKV
		arch, _ := kv.Get("general.architecture")
		ft := int64(-1)
		if v, ok := kv.Get("general.file_type"); ok {
			ft = int64(v.ValueUint32())
		}
		if h.KVCount != g.Header.MetadataKVCount || h.Architecture != arch.ValueString() || h.FileType != ft {
			t.Errorf("%s: %d kvs, %q, file type %d; gguf-parser-go %d, %q, %d", path,
				h.KVCount, h.Architecture, h.FileType, g.Header.MetadataKVCount, arch.ValueString(), ft)
		}
	}
}
