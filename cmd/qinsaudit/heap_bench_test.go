package main

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// heapAtOutput is an output that, at its first write, collects garbage and
// records the live heap: what the command holds when its report is ready
// (the model, the accounting and the report, whichever are still
// reachable), the "final heap" that issue 11 holds peak RSS to.
type heapAtOutput struct {
	heap  uint64
	wrote bool
}

func (h *heapAtOutput) Write(p []byte) (int, error) {
	if !h.wrote {
		h.wrote = true
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.heap = ms.HeapAlloc
	}
	return len(p), nil
}

// BenchmarkFinalHeap runs `qinsaudit audit` (text, then --format json) on
// each file of QINSAUDIT_BENCH_PATHS in this process and reports the live
// heap at its first write, in MiB: bench/audit/rss.sh sets it beside the
// peak RSS of the same command run as a process.
//
//	QINSAUDIT_BENCH_PATHS=a.safetensors:b.pt go test -run '^$' -bench FinalHeap ./cmd/qinsaudit
func BenchmarkFinalHeap(b *testing.B) {
	list := os.Getenv("QINSAUDIT_BENCH_PATHS")
	if list == "" {
		b.Skip("QINSAUDIT_BENCH_PATHS is not set")
	}
	for _, p := range filepath.SplitList(list) {
		for _, format := range []string{"text", "json"} {
			b.Run(strings.ReplaceAll(filepath.Base(p), "/", "_")+"/"+format, func(b *testing.B) {
				var heap uint64
				for b.Loop() {
					out := &heapAtOutput{}
					if code := run([]string{"audit", "--format", format, p}, out, io.Discard); code != 0 {
						b.Fatalf("exit code %d", code)
					}
					heap = out.heap
				}
				b.ReportMetric(float64(heap)/(1<<20), "final-heap-MiB")
			})
		}
	}
}
