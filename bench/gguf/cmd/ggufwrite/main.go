// Command ggufwrite writes the generated files of bench/gguf/process.sh to
// a directory: gguftest.ManyTensors of 128 blocks (1,152 tensors), and files
// of 9,999 and 100,000 small float32 tensors.
package main

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/qinsaudit/qinsaudit/loaders/gguf/gguftest"
)

func main() {
	dir := os.Args[1]
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			panic(err)
		}
	}
	write("many-tensors-1152.gguf", gguftest.ManyTensors(128))
	for _, n := range []int{9_999, 100_000} {
		b := gguftest.New().KV("general.architecture", "llama")
		for i := range n {
			b.Tensor("blk."+strconv.Itoa(i/9)+".t"+strconv.Itoa(i%9)+".weight", gguftest.F32, 16)
		}
		write("tensors-"+strconv.Itoa(n)+".gguf", b.Bytes())
	}
}
