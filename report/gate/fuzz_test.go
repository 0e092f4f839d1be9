package gate

import (
	"math"
	"os"
	"runtime"
	"testing"
)

// FuzzConfig: go test ./report/gate -fuzz=FuzzConfig. Any input gives a
// config whose limits are all finite and positive, or an error; never a
// panic, and memory stays a small multiple of the input. Inputs that once
// failed are kept in testdata/fuzz and run with the ordinary tests.
func FuzzConfig(f *testing.F) {
	for _, p := range []string{"testdata/ok.yaml", "testdata/ok.toml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p[len("testdata/"):], b)
	}
	f.Add("a.yaml", []byte("budgets:\n  - role: total\n    min_ratio: .nan\n"))
	f.Add("a.toml", []byte("max_heap_over_stored = inf\n"))
	f.Add("a.yaml", []byte("a: &a [*a, *a]\nb: &b [*a, *a, *a]\n"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		ext := ".yaml"
		if len(name)%2 == 1 {
			ext = ".toml"
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c, err := Parse("fuzz"+ext, data)
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 200*uint64(len(data))+64<<20 {
			t.Fatalf("Parse allocated %d bytes for %d bytes of input", n, len(data))
		}
		if err != nil {
			return
		}
		ok := func(v *float64) {
			if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0) || *v <= 0) {
				t.Fatalf("accepted limit %v", *v)
			}
		}
		for _, b := range c.Budgets {
			ok(b.MinRatio)
			ok(b.MaxBitsPerWeight)
			if b.MaxStoredBytes != nil && b.MaxStoredBytes.Bytes < 0 {
				t.Fatalf("accepted size %d", b.MaxStoredBytes.Bytes)
			}
		}
		ok(c.MaxHeapOverStored)
		if a := c.Against; a != nil && a.MaxGrowth != nil && (math.IsNaN(a.MaxGrowth.Value) || math.IsInf(a.MaxGrowth.Value, 0) || a.MaxGrowth.Value < 0) {
			t.Fatalf("accepted growth %v", a.MaxGrowth.Value)
		}
	})
}
