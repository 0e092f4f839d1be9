//go:build gc && !purego

package decode

import (
	"math"
	"math/rand/v2"
	"testing"
)

// needAVX2 skips a test of the AVX2 kernels on a CPU without AVX2.
func needAVX2(t testing.TB) {
	if !useAVX2 {
		t.Skip("no AVX2")
	}
}

// randomTable fills t with random bit patterns, NaNs and infinities among
// them: the kernels copy entries, so every pattern must come out as it is.
func randomTable(r *rand.Rand, t []float32) {
	for i := range t {
		t[i] = math.Float32frombits(r.Uint32())
	}
}

// checkKernels decodes stored (and sign) at dst[off:] with the dispatching
// kernels and with the pure-Go ones, and fails on any bit that differs or
// any element written outside dst[off : off+len(stored)].
func checkKernels(t *testing.T, stored, sign []byte, off int, t512 *[512]float32) {
	t.Helper()
	const guard = 0x7fc0dead // a NaN no table entry is compared against
	n := len(stored)
	for _, k := range []struct {
		name      string
		fast, go_ func(dst []float32)
	}{
		{"qinsLogUnit",
			func(d []float32) { qinsLogUnit(d, stored, sign, t512) },
			func(d []float32) { qinsLogUnitGo(d, stored, sign, t512) }},
		{"lookup",
			func(d []float32) { lookup(d, stored, (*[256]float32)(t512[:256])) },
			func(d []float32) { lookupGo(d, stored, (*[256]float32)(t512[:256])) }},
	} {
		got, want := make([]float32, off+n+40), make([]float32, n)
		for i := range got {
			got[i] = math.Float32frombits(guard)
		}
		k.fast(got[off : off+n])
		k.go_(want)
		for i := range got {
			b := math.Float32bits(got[i])
			switch {
			case i < off || i >= off+n:
				if b != guard {
					t.Fatalf("%s, %d weights at offset %d: element %d outside dst written", k.name, n, off, i-off)
				}
			case b != math.Float32bits(want[i-off]):
				t.Fatalf("%s, %d weights at offset %d: weight %d is %#08x, want %#08x", k.name, n, off, i-off, b, math.Float32bits(want[i-off]))
			}
		}
	}
}

// TestAVX2Kernels compares the AVX2 kernels with the pure-Go ones on random
// codes, signs of every byte value and random tables, for every length up
// to ten 16-weight blocks and some longer, with codes, signs and outputs
// each at its own offset from a 32-byte boundary.
func TestAVX2Kernels(t *testing.T) {
	needAVX2(t)
	r := rand.New(rand.NewPCG(11, 2))
	var t512 [512]float32
	lengths := []int{1000, 1023, 1024, 1025, 4096 + 31}
	for n := range 10*16 + 2 {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		randomTable(r, t512[:])
		buf := make([]byte, 2*(n+64))
		for i := range buf {
			buf[i] = byte(r.Uint32())
		}
		for off := range 16 {
			so, go_ := r.IntN(32), r.IntN(32)
			stored := buf[so : so+n]
			sign := buf[n+64+go_ : n+64+go_+n]
			checkKernels(t, stored, sign, off, &t512)
		}
	}
	// All ±1 signs, the case the pass uses the signed table for.
	_, sign, mag := qinsLogModule(4096 + 17)
	stored := make([]byte, len(sign))
	for i := range stored {
		stored[i] = byte(i)
	}
	checkKernels(t, stored, sign, 3, unitTable(mag))
}

// FuzzAVX2Kernels: codes and signs from the fuzzer, the table random, the
// output at an offset the fuzzer picks.
//
//	go test ./internal/decode -run '^$' -fuzz FuzzAVX2Kernels -fuzzminimizetime 3s -fuzztime 30s
func FuzzAVX2Kernels(f *testing.F) {
	needAVX2(f)
	f.Add([]byte{1, 2, 3, 0x80, 0xff, 0x7f}, uint8(0), uint64(1))
	f.Add(make([]byte, 200), uint8(5), uint64(2))
	f.Fuzz(func(t *testing.T, data []byte, off uint8, seed uint64) {
		var t512 [512]float32
		randomTable(rand.New(rand.NewPCG(seed, 3)), t512[:])
		n := len(data) / 2
		checkKernels(t, data[:n], data[n:2*n], int(off%64), &t512)
	})
}
