package pytorch

import (
	"os"
	"path/filepath"
	"runtime/metrics"
	"testing"
)

// maxSeedBytes leaves the largest fixtures (toy models of several MB) out of
// the fuzz corpus: the fuzzer mutates whole inputs, and small ones cover the
// same structure faster.
const maxSeedBytes = 1 << 20

// heapAllocs is the total of bytes allocated so far.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// FuzzLoad feeds arbitrary bytes to Load: it must return an error or a
// model whose storages lie inside the input, never panic, and never
// allocate far out of proportion to the input.
func FuzzLoad(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{
		filepath.Join(sharedDir, "*", "*.pt"),
		filepath.Join(sharedDir, "*", "*.pth"),
		filepath.Join(fixturesDir, "*.pt"),
		filepath.Join(fixturesDir, "*.zip"),
	} {
		m, _ := filepath.Glob(pattern)
		seeds = append(seeds, m...)
	}
	for _, p := range seeds {
		if fi, err := os.Stat(p); err == nil && fi.Size() <= maxSeedBytes {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add(legacyOne(4, []int{4}, []string{"k"}, []legacyStorage{{4, 16}}))
	f.Add(stateDict(f, "w", func(p *pb) { p.tensor("FloatStorage", "0", 2, 2) }, map[string]int{"0": 16}))
	f.Add([]byte("\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}\x94N.x"))

	f.Fuzz(func(t *testing.T, data []byte) {
		before := heapAllocs()
		checkAnyOutcome(t, data)
		// Unpickling costs memory in proportion to the pickle (gopickle
		// allocates a 16-slot stack per MARK); a length taken from the
		// input and allocated unchecked costs far more.
		if got, limit := heapAllocs()-before, uint64(64<<20+1024*len(data)); got > limit {
			t.Fatalf("allocated %d bytes for a %d-byte input (limit %d)", got, len(data), limit)
		}
	})
}
