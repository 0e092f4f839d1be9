package accounting

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestAuditLinearInFiles: auditing many small files takes time linear in
// their number. labelFindings once looped over every row for every file:
// 40,000 two-tensor shards took 14 s, 83% of it there. Eight times the
// files must take well under the 64 times a quadratic loop would.
func TestAuditLinearInFiles(t *testing.T) {
	model := func(files int) *Model {
		m := &Model{}
		for i := range files {
			m.Files = append(m.Files, File{Path: fmt.Sprintf("model-%05d.gguf", i), Format: "gguf", SizeBytes: 8,
				Label: "MOSTLY_F16", LabelDType: "float16"})
			for j := range 2 {
				m.Tensors = append(m.Tensors, Tensor{Name: fmt.Sprintf("layers.%d.w%d.weight", i, j), DType: "float32",
					Shape: []int64{1}, File: i, Storage: fmt.Sprintf("%d/%d", i, j), StorageBytes: 4})
			}
		}
		return m
	}
	// The collector stays off while timing, and the best of five runs
	// counts: the garbage of the larger model and the other jobs of a
	// shared machine must not pass for a quadratic loop.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	timed := func(files int) time.Duration {
		m := model(files)
		best := time.Duration(1 << 62)
		for range 5 {
			runtime.GC()
			start := time.Now()
			res, err := Audit(m, Options{})
			if err != nil {
				t.Fatal(err)
			}
			best = min(best, time.Since(start))
			if n := len(res.Findings); n < files {
				t.Fatalf("%d findings for %d mislabelled files", n, files)
			}
		}
		return best
	}
	small, large := timed(2_500), timed(20_000)
	t.Logf("2,500 files: %v; 20,000 files: %v (%.1fx)", small, large, float64(large)/float64(small))
	if large > 24*small {
		t.Errorf("8x the files took %.1fx the time: not linear", float64(large)/float64(small))
	}
}
