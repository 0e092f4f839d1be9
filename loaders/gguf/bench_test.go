package gguf

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/qinsaudit/qinsaudit/loaders/gguf/gguftest"
)

// manyTensors is a llama-shaped file of 9 small tensors per block.
func manyTensors(blocks int) []byte {
	b := newFile().
		KV("general.architecture", "llama").
		KV("general.file_type", uint32(7)).
		KV("llama.block_count", uint32(blocks))
	for i := range blocks {
		p := fmt.Sprintf("blk.%d.", i)
		b.Tensor(p+"attn_norm.weight", gguftest.F32, 64).
			Tensor(p+"attn_q.weight", gguftest.Q8_0, 64, 64).
			Tensor(p+"attn_k.weight", gguftest.Q8_0, 64, 16).
			Tensor(p+"attn_v.weight", gguftest.Q8_0, 64, 16).
			Tensor(p+"attn_output.weight", gguftest.Q8_0, 64, 64).
			Tensor(p+"ffn_norm.weight", gguftest.F32, 64).
			Tensor(p+"ffn_gate.weight", gguftest.Q8_0, 64, 128).
			Tensor(p+"ffn_up.weight", gguftest.Q8_0, 64, 128).
			Tensor(p+"ffn_down.weight", gguftest.Q8_0, 128, 64)
	}
	return b.Bytes()
}

// BenchmarkLoad loads the vocab files of shared/realworld (100k-string
// arrays, no tensors) and a generated file of 1,152 tensors, from memory.
func BenchmarkLoad(b *testing.B) {
	files := map[string][]byte{"many-tensors-1152": manyTensors(128)}
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
