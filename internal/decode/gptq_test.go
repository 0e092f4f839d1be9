package decode

import (
	"encoding/binary"
	"math"
	"testing"
)

// gptqRowsRef is the straightforward GPTQ kernel, one packed word read per
// weight: the reference the kernel must match bit for bit.
func (l *gptqLayout) gptqRowsRef(dst []float32, lo, hi int) {
	mask := uint32(1)<<l.bits - 1
	for o := lo; o < hi; o++ {
		row := dst[o*l.in : (o+1)*l.in]
		zshift := uint(l.bits * (o % l.per))
		for i := range row {
			g := l.group(i)
			zword := binary.LittleEndian.Uint32(l.qzeros[4*(g*(l.out/l.per)+o/l.per):])
			zero := int32((zword>>zshift)&mask) + 1
			word := binary.LittleEndian.Uint32(l.qweight[4*((i/l.per)*l.out+o):])
			q := int32((word >> uint(l.bits*(i%l.per))) & mask)
			row[i] = l.scale(g, o) * float32(q-zero)
		}
	}
}

// gptqSynthetic makes a GPTQ layout of random codes, zeros and scales: with
// groups of groupSize consecutive inputs, or with a shuffled g_idx of
// gidxWidth bytes per entry.
func gptqSynthetic(bits, in, out, groupSize, gidxWidth int, scaleType string) *gptqLayout {
	per := 32 / bits
	groups := in / groupSize
	s := uint64(7)
	rnd := func() uint32 {
		s = s*6364136223846793005 + 1442695040888963407
		return uint32(s >> 32)
	}
	words := func(n int) []byte {
		b := make([]byte, 4*n)
		for i := range n {
			binary.LittleEndian.PutUint32(b[4*i:], rnd())
		}
		return b
	}
	l := &gptqLayout{bits: bits, per: per, in: in, out: out, groupSize: groupSize, scaleType: scaleType,
		qweight: words(in / per * out), qzeros: words(groups * out / per)}
	w := map[string]int{"float16": 2, "bfloat16": 2, "float32": 4}[scaleType]
	l.scales = make([]byte, w*groups*out)
	for k := range groups * out {
		v := float32(rnd()%1000+1) / 4096
		switch scaleType {
		case "float32":
			binary.LittleEndian.PutUint32(l.scales[4*k:], math.Float32bits(v))
		default:
			binary.LittleEndian.PutUint16(l.scales[2*k:], uint16(math.Float32bits(v)>>16)) // bfloat16 bits, read as either
		}
	}
	if gidxWidth > 0 {
		l.gidx, l.gidxWidth = make([]byte, gidxWidth*in), gidxWidth
		for i := range in {
			g := int(rnd()) % groups
			if gidxWidth == 8 {
				binary.LittleEndian.PutUint64(l.gidx[8*i:], uint64(g))
			} else {
				binary.LittleEndian.PutUint32(l.gidx[4*i:], uint32(g))
			}
		}
	}
	return l
}

// TestGPTQKernel: the kernel, one packed word per 32/bits weights, decodes
// what the reference decodes, bit for bit, for every bit width, group
// layout and scale type, over any range of rows.
func TestGPTQKernel(t *testing.T) {
	for _, c := range []struct {
		bits, in, out, group, gidx int
		scale                      string
	}{
		{4, 256, 64, 32, 0, "float16"},
		{4, 256, 64, 128, 4, "float16"},
		{4, 128, 40, 16, 8, "bfloat16"},
		{2, 256, 48, 64, 0, "float32"},
		{8, 64, 32, 16, 4, "float32"},
		{4, 64, 8, 64, 0, "float16"},
	} {
		l := gptqSynthetic(c.bits, c.in, c.out, c.group, c.gidx, c.scale)
		want, got := make([]float32, c.in*c.out), make([]float32, c.in*c.out)
		l.gptqRowsRef(want, 0, c.out)
		l.rows(got, 0, c.out/2)
		l.rows(got, c.out/2, c.out)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%+v: weight [%d, %d] = %g, want %g", c, i/c.in, i%c.in, got[i], want[i])
			}
		}
	}
}

// BenchmarkGPTQ decodes a 4096x4096 4-bit GPTQ layer with groups of 128 on
// one core: the kernel against the reference.
func BenchmarkGPTQ(b *testing.B) {
	const in, out = 4096, 4096
	l := gptqSynthetic(4, in, out, 128, 0, "float16")
	dst := make([]float32, in*out)
	b.Run("kernel", func(b *testing.B) {
		b.SetBytes(4 * in * out)
		for b.Loop() {
			l.rows(dst, 0, out)
		}
	})
	b.Run("reference", func(b *testing.B) {
		b.SetBytes(4 * in * out)
		for b.Loop() {
			l.gptqRowsRef(dst, 0, out)
		}
	})
}
