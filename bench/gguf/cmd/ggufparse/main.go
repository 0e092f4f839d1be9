// Command ggufparse is gguf-parser-go as a whole process, for
// bench/gguf/process.sh: it parses each file with ParseGGUFFile, in its
// fastest setting (SkipLargeMetadata, UseMMap), and prints its tensor count.
package main

import (
	"fmt"
	"os"

	parser "github.com/gpustack/gguf-parser-go"
)

func main() {
	for _, p := range os.Args[1:] {
		f, err := parser.ParseGGUFFile(p, parser.SkipLargeMetadata(), parser.UseMMap())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(p, len(f.TensorInfos))
	}
}
