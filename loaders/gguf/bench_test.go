package gguf

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/qinsaudit/qinsaudit/loaders/gguf/gguftest"
)

// BenchmarkLoad loads the vocab files of shared/realworld (100k-string
// arrays, no tensors), gguftest.ManyTensors' file of 1,152 tensors and the
// files of 9,999 and 100,000 small float32 tensors that bench/gguf's
// cmd/ggufwrite writes, from memory. ns/tensor is the time of a load over
// its tensors.
//
//	go test -run '^$' -bench Load -benchmem ./loaders/gguf
func BenchmarkLoad(b *testing.B) {
	files := map[string][]byte{"many-tensors-1152": gguftest.ManyTensors(128)}
	for _, n := range []int{9_999, 100_000} {
		g := gguftest.New().KV("general.architecture", "llama")
		for i := range n {
			g.Tensor("blk."+strconv.Itoa(i/9)+".t"+strconv.Itoa(i%9)+".weight", gguftest.F32, 16)
		}
		files["tensors-"+strconv.Itoa(n)] = g.Bytes()
	}
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
			tensors := 0
			for b.Loop() {
				m, err := (Loader{}).Load(r, int64(len(data)))
				if err != nil {
					b.Fatal(err)
				}
				tensors = len(m.Tensors)
			}
			if tensors > 0 {
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(tensors), "ns/tensor")
			}
		})
	}
}
