//go:build gc && !purego

package decode

import (
	"slices"
	"testing"
	"time"
)

// Paired benchmarks of the AVX2 kernels against the pure-Go ones: each
// round runs both, in alternating order, so that a machine shared with
// other jobs slows both alike, and the figures are medians over rounds.
// bench/decode/README.md has the numbers.
//
//	go test ./internal/decode -run '^$' -bench 'KernelsFromMemory|KernelsInCache' -count 3

// pairedKernels are the kernels timed by the paired benchmarks, each
// decoding the synthetic QINS log module's codes (and signs) into dst.
func pairedKernels(stored, sign []byte, mag *[256]float32) []struct {
	name string
	fn   func(dst []float32, lo, hi int)
} {
	t := unitTable(mag)
	return []struct {
		name string
		fn   func(dst []float32, lo, hi int)
	}{
		{"qinsLogUnit", func(dst []float32, lo, hi int) { qinsLogUnit(dst[lo:hi], stored[lo:hi], sign[lo:hi], t) }},
		{"lookup", func(dst []float32, lo, hi int) { lookup(dst[lo:hi], stored[lo:hi], mag) }},
	}
}

// median returns the median of v, which it sorts.
func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}

// BenchmarkKernelsFromMemory decodes the 4096x4096 module of
// BenchmarkQINSLogDecode on every core in the pass's chunks, once with each
// kernel per round, with a copy of the output bytes before and after. It
// reports each kernel's %copy (decode bandwidth over the mean of the two
// copies' bandwidth) and the AVX2 kernel's speed-up, medians over rounds.
func BenchmarkKernelsFromMemory(b *testing.B) {
	needAVX2(b)
	defer func() { useAVX2 = true }()
	const rows, cols = 4096, 4096
	stored, sign, mag := qinsLogModule(rows * cols)
	dst, src := make([]float32, len(stored)), make([]float32, len(stored))
	for i := range src { // write every page: untouched memory reads as the shared zero page
		src[i] = float32(i)
	}
	copyOut := func() time.Duration {
		t := time.Now()
		spread(rows, cols, func(lo, hi int) { copy(dst[lo*cols:hi*cols], src[lo*cols:hi*cols]) })
		return time.Since(t)
	}
	for _, k := range pairedKernels(stored, sign, mag) {
		b.Run(k.name, func(b *testing.B) {
			decode := func(avx2 bool) time.Duration {
				useAVX2 = avx2
				t := time.Now()
				spread(rows, cols, func(lo, hi int) { k.fn(dst, lo*cols, hi*cols) })
				return time.Since(t)
			}
			decode(false) // fault every page in before timing
			decode(true)
			copyOut()
			b.ResetTimer()
			var goPct, avxPct, speedup []float64
			for i := range b.N {
				c := copyOut()
				var g, a time.Duration
				if i%2 == 0 {
					g, a = decode(false), decode(true)
				} else {
					a, g = decode(true), decode(false)
				}
				c = (c + copyOut()) / 2
				goPct = append(goPct, 100*c.Seconds()/g.Seconds())
				avxPct = append(avxPct, 100*c.Seconds()/a.Seconds())
				speedup = append(speedup, g.Seconds()/a.Seconds())
			}
			b.ReportMetric(median(goPct), "go-%copy")
			b.ReportMetric(median(avxPct), "avx2-%copy")
			b.ReportMetric(median(speedup), "avx2-speedup")
		})
	}
}

// BenchmarkKernelsInCache times each kernel on one core over 32Ki weights
// (64 KiB of codes and signs, 128 KiB decoded: in L2), where the kernel's
// instructions and not memory set the pace: per round ten decodes with
// each kernel, in alternating order. It reports the AVX2 kernel's speed-up
// (median over rounds) and each kernel's weights/s over all rounds.
func BenchmarkKernelsInCache(b *testing.B) {
	needAVX2(b)
	defer func() { useAVX2 = true }()
	const n, reps = 32 << 10, 10
	stored, sign, mag := qinsLogModule(n)
	dst := make([]float32, n)
	for _, k := range pairedKernels(stored, sign, mag) {
		b.Run(k.name, func(b *testing.B) {
			decode := func(avx2 bool) time.Duration {
				useAVX2 = avx2
				t := time.Now()
				for range reps {
					k.fn(dst, 0, n)
				}
				return time.Since(t)
			}
			var speedup []float64
			var goAll, avxAll time.Duration
			for i := range b.N {
				var g, a time.Duration
				if i%2 == 0 {
					g, a = decode(false), decode(true)
				} else {
					a, g = decode(true), decode(false)
				}
				goAll += g
				avxAll += a
				speedup = append(speedup, g.Seconds()/a.Seconds())
			}
			weights := float64(b.N) * reps * n
			b.ReportMetric(weights/goAll.Seconds(), "go-weights/s")
			b.ReportMetric(weights/avxAll.Seconds(), "avx2-weights/s")
			b.ReportMetric(median(speedup), "avx2-speedup")
		})
	}
}
