package gguf

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/qinsaudit/qinsaudit/loaders/gguf/gguftest"
)

// BenchmarkLoad loads the vocab files of shared/realworld (100k-string
// arrays, no tensors) and gguftest.ManyTensors' file of 1,152 tensors, from
// memory.
func BenchmarkLoad(b *testing.B) {
	files := map[string][]byte{"many-tensors-1152": gguftest.ManyTensors(128)}
	vocab, _ := filepath.Glob(filepath.Join(realworldDir, "llama_cpp_vocab", "*.gguf"))
	for _, p := range vocab {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		files[filepath.Base(p)] = data
	}
	for name, data := range files {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			r := bytes.NewReader(data)
			for b.Loop() {
				if _, err := (Loader{}).Load(r, int64(len(data))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
