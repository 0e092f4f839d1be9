package html_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/qinsaudit/qinsaudit/loaders/gguf/gguftest"
	"github.com/qinsaudit/qinsaudit/report"
	htmlreport "github.com/qinsaudit/qinsaudit/report/html"
)

// hundredThousand is a llama of 11,112 small blocks in two GGUF files (a
// file holds at most 65,536 tensors): 100,008 tensors (F32 norms, Q4_0
// matrices of 32 x 32) in 48 MB, audited once.
var hundredThousand = sync.OnceValues(func() (*report.Report, error) {
	dir, err := os.MkdirTemp("", "qinsaudit-html-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	l := gguftest.Llama{Embd: 32, KV: 32, FF: 32, Norm: gguftest.F32, Attn: gguftest.Q4_0, V: gguftest.Q4_0, FFN: gguftest.Q4_0, Down: gguftest.Q4_0}
	var paths []string
	for f, blocks := range [][2]int{{0, 5556}, {5556, 11112}} {
		b := gguftest.New().KV("general.architecture", "llama").KV("llama.block_count", uint32(11112))
		for i := blocks[0]; i < blocks[1]; i++ {
			b.Block(i, l)
		}
		path := filepath.Join(dir, fmt.Sprintf("part%d.gguf", f))
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return nil, err
		}
		paths = append(paths, path)
	}
	return auditPath(paths...)
})

// BenchmarkWrite100k writes the page of a model of 100,008 tensors; the
// issue asks for under a second.
func BenchmarkWrite100k(b *testing.B) {
	rep, err := hundredThousand()
	if err != nil {
		b.Fatal(err)
	}
	var n countWriter
	b.ResetTimer()
	for b.Loop() {
		if err := htmlreport.Write(&n, rep); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/float64(b.N)/(1<<20), "MiB/page")
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)

// BenchmarkWriteDiff100k writes the diff page of the model against itself:
// four diffs of 100,008 rows and a treemap of two domains.
func BenchmarkWriteDiff100k(b *testing.B) {
	rep, err := hundredThousand()
	if err != nil {
		b.Fatal(err)
	}
	var n countWriter
	b.ResetTimer()
	for b.Loop() {
		if err := htmlreport.WriteDiff(&n, report.NewDiff(rep, rep, "role"), rep, rep); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/float64(b.N)/(1<<20), "MiB/page")
}
