// Command loadonce loads one GGUF or safetensors file with its qinsaudit
// loader and prints the tensor count, for load.sh, which counts the
// instructions between markStart and markEnd: the loader's Load alone, on
// an *os.File, without start-up, accounting or a report.
//
//	loadonce FILE
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/loaders/gguf"
	"github.com/qinsaudit/qinsaudit/loaders/safetensors"
)

// markStart and markEnd are where load.sh's callgrind dumps its counts.
//
//go:noinline
func markStart() {}

//go:noinline
func markEnd() {}

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fi, err := f.Stat()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var l interface {
		Load(io.ReaderAt, int64) (*accounting.Model, error)
	} = gguf.Loader{}
	if strings.HasSuffix(os.Args[1], ".safetensors") {
		l = safetensors.Loader{}
	}
	markStart()
	m, err := l.Load(f, fi.Size())
	markEnd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(len(m.Tensors))
}
