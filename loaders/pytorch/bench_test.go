package pytorch

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// manyTensors is a zip checkpoint of n small float32 tensors, named like a
// deep model's state_dict.
func manyTensors(b *testing.B, n int) []byte {
	p := newPickle().odict()
	storages := map[string]int{}
	for i := range n {
		key := fmt.Sprint(i)
		p.str(fmt.Sprintf("model.layers.%d.mlp.proj_%d.weight", i/8, i%8)).tensor("FloatStorage", key, 4, 4).raw('s')
		storages[key] = 64
	}
	return checkpoint(b, p.stop(), storages)
}

func BenchmarkLoad(b *testing.B) {
	inputs := []struct {
		name string
		data func(b *testing.B) []byte
	}{
		{"toy_fp32.pt", fixture("toy_fp32.pt")},
		{"legacy_qins_log.pt", fixture("legacy_qins_log.pt")},
		{"whole_module.pt", fixture("whole_module.pt")},
		{"built_2000_tensors", func(b *testing.B) []byte { return manyTensors(b, 2000) }},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			data := in.data(b)
			b.ReportAllocs()
			var tensors int
			for b.Loop() {
				m, err := loadBytes(data)
				if err != nil {
					b.Fatal(err)
				}
				tensors = len(m.Tensors)
			}
			b.ReportMetric(float64(tensors), "tensors")
		})
	}
}

func fixture(name string) func(b *testing.B) []byte {
	return func(b *testing.B) []byte {
		data, err := os.ReadFile(filepath.Join(fixturesDir, name))
		if err != nil {
			b.Fatalf("fixture (committed) missing: %v", err)
		}
		return data
	}
}

// BenchmarkLoadPaths loads each file of QINSAUDIT_BENCH_PATHS (separated
// by the OS path-list separator) from disk, as the command does: reads go
// to the file, not to a copy in memory. bench/pytorch/run.sh generates
// 1,000, 10,000 and 100,000-tensor checkpoints for it.
func BenchmarkLoadPaths(b *testing.B) {
	list := os.Getenv("QINSAUDIT_BENCH_PATHS")
	if list == "" {
		b.Skip("QINSAUDIT_BENCH_PATHS not set")
	}
	for _, p := range filepath.SplitList(list) {
		b.Run(filepath.Base(p), func(b *testing.B) {
			f, err := os.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var tensors int
			cpu0 := cpuTime(b)
			for b.Loop() {
				m, err := Loader{}.Load(f, fi.Size())
				if err != nil {
					b.Fatal(err)
				}
				tensors = len(m.Tensors)
			}
			// CPU time (user + system, both cores: the collector's too)
			// moves less than wall time on a shared machine.
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N*max(tensors, 1)), "cpu-ns/tensor")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*max(tensors, 1)), "ns/tensor")
			b.ReportMetric(float64(tensors), "tensors")
		})
	}
}

// cpuTime is the user + system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
