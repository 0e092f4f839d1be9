//go:build gc && !purego

package decode

// The AVX2 kernels of kernels_amd64.s. They copy the same table entries as
// qinsLogUnitGo and lookupGo, so their results are bit for bit the same;
// only the index arithmetic is done with vector instructions.

// useAVX2 selects the AVX2 kernels. It is set once from the CPU; the
// benchmarks clear it to time the pure-Go kernels in the same run.
var useAVX2 = hasAVX2()

//go:noescape
func qinsLogUnitAVX2(dst *float32, stored, sign *byte, t *[512]float32, n int)

//go:noescape
func lookupAVX2(dst *float32, src *byte, t *[256]float32, n int)

func cpuid(leaf, sub uint32) (a, b, c, d uint32)
func xgetbv0() (lo, hi uint32)

// hasAVX2 reports whether the CPU has AVX2 and the OS saves the YMM
// registers. It asks the CPU directly rather than importing
// golang.org/x/sys/cpu, whose init allocates and reads GODEBUG in every
// process (issue 11 wants nothing done at init that a command does not use).
func hasAVX2() bool {
	const (
		osxsave = 1 << 27 // CPUID.1:ECX
		avx     = 1 << 28 // CPUID.1:ECX
		avx2    = 1 << 5  // CPUID.(7,0):EBX
		ymm     = 0b110   // XCR0: the OS saves SSE and AVX state
	)
	if maxLeaf, _, _, _ := cpuid(0, 0); maxLeaf < 7 {
		return false
	}
	if _, _, c, _ := cpuid(1, 0); c&(osxsave|avx) != osxsave|avx {
		return false
	}
	if xcr0, _ := xgetbv0(); xcr0&ymm != ymm {
		return false
	}
	_, b, _, _ := cpuid(7, 0)
	return b&avx2 != 0
}

// qinsLogUnit decodes QINS log codes through the signed table t, as
// qinsLogUnitGo does: whole blocks of 16 weights with AVX2, the rest in Go.
func qinsLogUnit(dst []float32, stored, sign []byte, t *[512]float32) {
	sign = sign[:len(stored)] // the lengths the assembly relies on
	dst = dst[:len(stored)]
	n := 0
	if useAVX2 {
		n = len(stored) &^ 15
	}
	if n > 0 {
		qinsLogUnitAVX2(&dst[0], &stored[0], &sign[0], t, n)
	}
	qinsLogUnitGo(dst[n:], stored[n:], sign[n:], t)
}

// lookup decodes one-byte codes through t, as lookupGo does: whole blocks
// of 16 codes with AVX2, the rest in Go.
func lookup(dst []float32, src []byte, t *[256]float32) {
	dst = dst[:len(src)]
	n := 0
	if useAVX2 {
		n = len(src) &^ 15
	}
	if n > 0 {
		lookupAVX2(&dst[0], &src[0], t, n)
	}
	lookupGo(dst[n:], src[n:], t)
}
