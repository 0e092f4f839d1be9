package decode

import (
	"math"
	"testing"
)

func TestHalfToFloat(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		want float32
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 0x1p-24}, {0x8200, -0x1p-15},
		{0x0000, 0}, {0x7c00, float32(math.Inf(1))}, {0xfc00, float32(math.Inf(-1))}, {0x3555, 0.333251953125},
	} {
		if got := halfToFloat(c.h); got != c.want {
			t.Errorf("halfToFloat(%#04x) = %g, want %g", c.h, got, c.want)
		}
	}
	if got := halfToFloat(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("halfToFloat(NaN) = %g", got)
	}
	if got := halfToFloat(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("halfToFloat(-0) = %g", got)
	}
	if got := bfloatToFloat(0x3fc0); got != 1.5 {
		t.Errorf("bfloatToFloat(0x3fc0) = %g", got)
	}
}

// TestQINSLogKernels: the one-table kernel for ±1 signs gives exactly what
// the general one gives, and the general one follows sign.to(float32).
func TestQINSLogKernels(t *testing.T) {
	stored, sign, mag := qinsLogModule(1003)
	if !unitSigns(sign) {
		t.Fatal("synthetic signs are not ±1")
	}
	a, b := make([]float32, len(stored)), make([]float32, len(stored))
	qinsLog(a, stored, sign, mag, signTable("int8"))
	qinsLogUnit(b, stored, sign, unitTable(mag))
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) || a[i] != float32(int8(sign[i]))*mag[stored[i]] {
			t.Fatalf("weight %d: %g and %g", i, a[i], b[i])
		}
	}
	odd := []byte{0, 2, 0xfe, 1}
	if unitSigns(odd) {
		t.Error("0, 2 and -2 taken for unit signs")
	}
	c := make([]float32, 4)
	qinsLog(c, []byte{10, 10, 10, 10}, odd, mag, signTable("int8"))
	if c[0] != 0 || c[1] != 2*mag[10] || c[2] != -2*mag[10] || c[3] != mag[10] {
		t.Errorf("signs 0, 2, -2, 1 decode to %v", c)
	}
}

// unitSignsBytewise is the definition unitSigns is checked against.
func unitSignsBytewise(sign []byte) bool {
	for _, b := range sign {
		if b != 1 && b != 0xff {
			return false
		}
	}
	return true
}

// TestUnitSignsExhaustive puts every byte value at every position of a
// 32-byte block (the unrolled loop), of the following word and of the
// bytewise tail, over backgrounds of +1, of -1 and of both, and compares
// with the bytewise definition.
func TestUnitSignsExhaustive(t *testing.T) {
	const n = 32 + 8 + 7 // one unrolled block, then tail bytes
	backgrounds := [][]byte{make([]byte, n), make([]byte, n), make([]byte, n)}
	for i := 0; i < n; i++ {
		backgrounds[0][i], backgrounds[1][i] = 0x01, 0xff
		backgrounds[2][i] = []byte{0x01, 0xff}[(i*7/3)%2]
	}
	for bi, bg := range backgrounds {
		if !unitSigns(bg) {
			t.Fatalf("background %d refused", bi)
		}
		buf := make([]byte, n)
		for length := 0; length <= n; length++ {
			for pos := 0; pos < length; pos++ {
				for v := 0; v < 256; v++ {
					copy(buf, bg)
					buf[pos] = byte(v)
					if got, want := unitSigns(buf[:length]), unitSignsBytewise(buf[:length]); got != want {
						t.Fatalf("background %d, length %d, byte %#02x at %d: %v, want %v", bi, length, v, pos, got, want)
					}
				}
			}
		}
	}
	// Two bad bytes in one word must not cancel out.
	for v := 0; v < 256; v++ {
		for w := 0; w < 256; w++ {
			buf := []byte{1, 1, 1, 1, 1, 1, 1, 1}
			buf[2], buf[5] = byte(v), byte(w)
			if got, want := unitSigns(buf), unitSignsBytewise(buf); got != want {
				t.Fatalf("bytes %#02x and %#02x: %v, want %v", v, w, got, want)
			}
		}
	}
}
