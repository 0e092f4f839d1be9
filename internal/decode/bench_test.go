package decode

import (
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks of the decode pass; bench/decode/README.md has the numbers of
// one run and the PyTorch comparison.
//
//	go test ./internal/decode -run '^$' -bench . -benchtime 3s

// qinsLogModule makes n synthetic QINS log codes and ±1 signs.
func qinsLogModule(n int) (stored, sign []byte, mag *[256]float32) {
	stored, sign = make([]byte, n), make([]byte, n)
	s := uint64(1)
	for i := range stored {
		s = s*6364136223846793005 + 1442695040888963407
		stored[i] = byte(1 + (s>>33)%255)
		sign[i] = byte(1 | (s>>20)&0xfe) // 1 or -1 (0xff)
		if sign[i] != 1 {
			sign[i] = 0xff
		}
	}
	mag = new([256]float32)
	qinsLogTable(mag, -15.4, -2.77)
	return stored, sign, mag
}

// spread runs fn over rows of perRow elements in the chunks the pass uses,
// on every core.
func spread(rows, perRow int, fn func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	size, n := chunks(rows, perRow, workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for c := int(next.Add(1)) - 1; c < n; c = int(next.Add(1)) - 1 {
				fn(c*size, min(c*size+size, rows))
			}
		})
	}
	wg.Wait()
}

// BenchmarkQINSLogDecode decodes a synthetic 4096x4096 QINS log module on
// every core (with the AVX2 kernel where the CPU has AVX2; -tags purego
// times the pure-Go one) and, between iterations and off the clock, copies the same
// number of float32 output bytes on every core in the same chunks. It
// reports decode weights/s and decode bandwidth (float32 bytes written per
// second) as a percentage of the copy's.
func BenchmarkQINSLogDecode(b *testing.B) {
	// 16.8M weights, 32 MiB of codes and signs, 64 MiB decoded: far larger
	// than the caches, so decode and copy both run from memory.
	const rows, cols = 4096, 4096
	stored, sign, mag := qinsLogModule(rows * cols)
	t := unitTable(mag) // the pass's kernel for ±1 signs
	dst, src := make([]float32, len(stored)), make([]float32, len(stored))
	for i := range src { // write every page: untouched memory reads as the shared zero page
		src[i] = float32(i)
	}
	decode := func() {
		spread(rows, cols, func(lo, hi int) {
			qinsLogUnit(dst[lo*cols:hi*cols], stored[lo*cols:hi*cols], sign[lo*cols:hi*cols], t)
		})
	}
	copyOut := func() {
		spread(rows, cols, func(lo, hi int) { copy(dst[lo*cols:hi*cols], src[lo*cols:hi*cols]) })
	}
	decode() // fault every page in before timing
	copyOut()
	b.SetBytes(4 * int64(len(dst)))
	b.ResetTimer()
	var dec, cp time.Duration
	for range b.N {
		t := time.Now()
		decode()
		dec += time.Since(t)
		b.StopTimer()
		t = time.Now()
		copyOut()
		cp += time.Since(t)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N)*float64(len(dst))/dec.Seconds(), "weights/s")
	b.ReportMetric(100*cp.Seconds()/dec.Seconds(), "%copy")
	b.ReportMetric(float64(b.N)*float64(4*len(dst))/cp.Seconds()/1e6, "copy-MB/s")
}

// quiet turns automatic garbage collection off for a benchmark, as
// qinsaudit decode does for its pass (see heapsnap.Exact), and returns a
// function collecting garbage between iterations, off the clock.
func quiet(b *testing.B) (between func()) {
	prev := debug.SetGCPercent(-1)
	b.Cleanup(func() { debug.SetGCPercent(prev) })
	return func() {
		b.StopTimer()
		runtime.GC()
		b.StartTimer()
	}
}

// BenchmarkToyDecode decodes every QINS log linear of the seed's toy model
// (fixtures/torch/toy_qins_log.pt, 2,359,296 weights, loaded once) into
// newly allocated float32 weights, as PyTorch's QINSCodec.decode does; its
// weights/s (decoded weights over the time spent decoding) is what
// bench/decode/torch_decode.py compares with.
func BenchmarkToyDecode(b *testing.B) {
	p := load(b, "toy_qins_log.pt", Options{Policy: Cache})
	between := quiet(b)
	var weights int64
	var took time.Duration
	for b.Loop() {
		st, err := p.Run()
		if err != nil {
			b.Fatal(err)
		}
		weights += st.Weights
		took += st.Decode
		between()
	}
	b.ReportMetric(float64(weights)/took.Seconds(), "weights/s")
}

// BenchmarkToyPassProfiled measures what exact heap profiling costs a whole
// pass (load, decode under Cache, forward with a batch of 8) on the toy
// model: each iteration runs the pass with runtime.MemProfileRate 0 and then
// 1, and the overhead is the difference in their total times.
func BenchmarkToyPassProfiled(b *testing.B) {
	m, res := torchModel(b, "toy_qins_log.pt")
	prev := runtime.MemProfileRate
	defer func() { runtime.MemProfileRate = prev }()
	between := quiet(b)
	pass := func(rate int) time.Duration {
		runtime.MemProfileRate = rate
		t := time.Now()
		p, err := Load(m, res, Options{Policy: Cache, Batch: 8})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Run(); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t)
		between()
		return d
	}
	var off, on time.Duration
	for b.Loop() {
		off += pass(0)
		on += pass(1)
	}
	b.ReportMetric(float64(off.Microseconds())/float64(b.N), "µs/pass-unprofiled")
	b.ReportMetric(float64(on.Microseconds())/float64(b.N), "µs/pass-profiled")
	b.ReportMetric(100*(on.Seconds()-off.Seconds())/off.Seconds(), "%overhead")
}

// unitTable returns the signed table of the magnitudes mag.
func unitTable(mag *[256]float32) *[512]float32 {
	var t [512]float32
	copy(t[:], mag[:])
	signedTable(&t)
	return &t
}

// BenchmarkUnitSigns checks 32 MiB of random ±1 signs, one large module's,
// as Load does before picking the one-table kernel.
func BenchmarkUnitSigns(b *testing.B) {
	sign := make([]byte, 32<<20)
	r := rand.New(rand.NewPCG(11, 1))
	for i := range sign {
		sign[i] = []byte{0x01, 0xff}[r.IntN(2)]
	}
	b.SetBytes(int64(len(sign)))
	for b.Loop() {
		if !unitSigns(sign) {
			b.Fatal("signs refused")
		}
	}
}
