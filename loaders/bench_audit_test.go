package loaders_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/loaders"
)

// The in-process cost of an audit: format detection, the header-only load
// and the accounting, as `qinsaudit audit` does them before rendering.
// bench/audit/run.sh times the whole command on multi-GB files; these
// benchmarks isolate what the process spends besides start-up and output.
//
//	go test -run '^$' -bench BenchmarkOpenAudit -benchmem ./loaders
//
// QINSAUDIT_BENCH_PATHS (a list separated by the OS path-list separator,
// ':' here) adds one sub-benchmark per model file or directory, e.g. the
// generated files of bench/audit/run.sh.

// benchSafetensorsTensors is how many tensors the generated safetensors file
// holds.
const benchSafetensorsTensors = 2000

// writeManySafetensors writes a safetensors file of n float32 [4, 4]
// tensors named like a deep model's state_dict, and returns its path.
func writeManySafetensors(b *testing.B, dir string, n int) string {
	b.Helper()
	type entry struct {
		DType   string   `json:"dtype"`
		Shape   []int64  `json:"shape"`
		Offsets [2]int64 `json:"data_offsets"`
	}
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	const size = 4 * 4 * 4
	for i := range n {
		name := fmt.Sprintf("model.layers.%d.mlp.proj_%d.weight", i/8, i%8)
		header[name] = entry{DType: "F32", Shape: []int64{4, 4}, Offsets: [2]int64{int64(i) * size, int64(i+1) * size}}
	}
	js, err := json.Marshal(header)
	if err != nil {
		b.Fatal(err)
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, uint64(len(js))); err != nil {
		b.Fatal(err)
	}
	buf.Write(js)
	buf.Write(make([]byte, n*size))
	path := filepath.Join(dir, fmt.Sprintf("many_%d.safetensors", n))
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// benchOpenAudit opens paths as `qinsaudit audit` does and audits the model,
// b.N times.
func benchOpenAudit(b *testing.B, paths ...string) {
	b.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			b.Skipf("not available: %v", err)
		}
	}
	b.ReportAllocs()
	var tensors int64
	cpu0 := cpuTime(b)
	for b.Loop() {
		m, err := loaders.Open(paths...)
		if err != nil {
			b.Fatal(err)
		}
		res, err := accounting.Audit(m, accounting.Options{})
		if err != nil {
			b.Fatal(err)
		}
		tensors = res.Total.Tensors
	}
	// CPU time of the whole process (GC workers included) per audit: on a
	// busy machine it moves far less than ns/op, which is wall time.
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(tensors), "tensors")
}

// cpuTime is the user + system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkOpenAuditToyQinsLog(b *testing.B) {
	benchOpenAudit(b, filepath.Join("..", "fixtures", "torch", "toy_qins_log.pt"))
}

func BenchmarkOpenAuditSafetensors2000(b *testing.B) {
	benchOpenAudit(b, writeManySafetensors(b, b.TempDir(), benchSafetensorsTensors))
}

// BenchmarkOpenSafetensors is the per-tensor cost of loading (Open) and of
// loading and auditing (OpenAudit) safetensors files of 1k, 10k and 100k
// tensors (issue 11: at most 1.5 us per tensor).
func BenchmarkOpenSafetensors(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		path := writeManySafetensors(b, b.TempDir(), n)
		b.Run(fmt.Sprintf("Open/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				if _, err := loaders.Open(path); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N)/float64(n), "cpu-ns/tensor")
		})
		b.Run(fmt.Sprintf("OpenAudit/%d", n), func(b *testing.B) {
			cpu0 := cpuTime(b)
			benchOpenAudit(b, path)
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N)/float64(n), "cpu-ns/tensor")
		})
	}
}

// BenchmarkOpenAuditPaths audits each path of QINSAUDIT_BENCH_PATHS.
func BenchmarkOpenAuditPaths(b *testing.B) {
	list := os.Getenv("QINSAUDIT_BENCH_PATHS")
	if list == "" {
		b.Skip("QINSAUDIT_BENCH_PATHS is not set")
	}
	for _, p := range filepath.SplitList(list) {
		if p == "" {
			continue
		}
		b.Run(strings.ReplaceAll(filepath.Base(p), "/", "_"), func(b *testing.B) {
			benchOpenAudit(b, p)
		})
	}
}
