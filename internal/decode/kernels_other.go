//go:build !amd64 || !gc || purego

package decode

// Without the AVX2 kernels of kernels_amd64.s the pure-Go ones decode.

func qinsLogUnit(dst []float32, stored, sign []byte, t *[512]float32) {
	qinsLogUnitGo(dst, stored, sign, t)
}

func lookup(dst []float32, src []byte, t *[256]float32) { lookupGo(dst, src, t) }
