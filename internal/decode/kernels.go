package decode

import (
	"encoding/binary"
	"math"
)

// The kernels below decode a run of elements into float32. They are plain
// loops over byte slices, re-sliced up front so the compiler drops the
// bounds checks, and they allocate nothing.

// qinsLogTable returns the 256 magnitudes of a QINS log module:
// exp(log_min + (255 - s)/254 * (log_max - log_min)) for each code s, in
// float32 arithmetic step by step as PyTorch evaluates the seed's
// QINSCodec.decode. The explicit float32 conversion keeps the compiler from
// fusing the multiply and add, which PyTorch does not do either; exp is
// computed in float64 and rounded, within an ulp of PyTorch's float32 exp.
func qinsLogTable(t *[256]float32, logMin, logMax float32) {
	span := logMax - logMin
	for s := range t {
		n := (255 - float32(s)) / 254
		t[s] = float32(math.Exp(float64(logMin + float32(n*span))))
	}
}

// signTable maps a sign byte to the float32 PyTorch's sign.to(float32)
// gives: int8 values for int8 signs, 0..255 for uint8, 0 or 1 for bool.
func signTable(dtype string) *[256]float32 {
	var t [256]float32
	for b := range t {
		if dtype == "int8" {
			t[b] = float32(int8(b))
		} else {
			t[b] = float32(b)
		}
	}
	return &t
}

// qinsLog decodes QINS log codes with any sign bytes:
// dst[i] = sgn[sign[i]] * mag[stored[i]]. Two table loads and a multiply
// per weight; no exp.
func qinsLog(dst []float32, stored, sign []byte, mag, sgn *[256]float32) {
	sign = sign[:len(stored)]
	dst = dst[:len(stored)]
	for i, s := range stored {
		dst[i] = sgn[sign[i]] * mag[s]
	}
}

// signedTable completes the 512 values of a QINS log module whose signs are
// all int8 ±1: t holds the magnitudes mag[s] at s, and gets -mag[s] at
// 256+s. Negation is exact, so t[(sign>>7)<<8 | s] equals
// float32(int8(sign)) * mag[s].
func signedTable(t *[512]float32) {
	for s := range 256 {
		t[256+s] = -t[s]
	}
}

// unitSigns reports whether every sign byte is int8 1 or -1 (0x01 or 0xff).
//
// It reads the signs eight at a time as words and has no data-dependent
// branch: random signs made a byte-by-byte test mispredict on every other
// byte (0.24 GB/s, most of a large model's load). In a word w, each byte's
// top bit t (0 or 1, in bit 0 of its lane after (w>>7)&lsb) picks the byte
// it must be: t*0xfe + 0x01 is 0x01 for t = 0 and 0xff for t = 1, per lane
// with no carry between lanes, so w is all ±1 exactly when it equals
// unitWord(w). Mismatches are OR-ed together and tested once at the end.
func unitSigns(sign []byte) bool {
	var bad uint64
	n := len(sign) &^ 31
	for i := 0; i < n; i += 32 {
		w := sign[i : i+32 : i+32]
		a := binary.LittleEndian.Uint64(w[0:])
		b := binary.LittleEndian.Uint64(w[8:])
		c := binary.LittleEndian.Uint64(w[16:])
		d := binary.LittleEndian.Uint64(w[24:])
		bad |= (a ^ unitWord(a)) | (b ^ unitWord(b)) | (c ^ unitWord(c)) | (d ^ unitWord(d))
	}
	for i := n; i < len(sign); i++ {
		v := uint64(sign[i])
		bad |= (v ^ unitWord(v)) & 0xff
	}
	return bad == 0
}

// unitWord is the word of ±1 bytes with the sign bits of w: each byte 0x01
// where w's byte is non-negative as an int8, 0xff where it is negative.
func unitWord(w uint64) uint64 {
	const lsb = 0x0101010101010101
	return (w>>7&lsb)*0xfe + lsb
}

// qinsLogUnitGo decodes QINS log codes whose signs are all ±1 with one load
// from the signed table per weight; qinsLogUnit calls it, or an AVX2 kernel
// with the same results where there is one. It reads eight codes and eight
// signs at a time as two uint64 words and forms the eight table indexes
// (sign bit << 8 | code) in two words of four 16-bit lanes: even bytes in
// lo, odd bytes in hi.
func qinsLogUnitGo(dst []float32, stored, sign []byte, t *[512]float32) {
	const (
		even = 0x00ff00ff00ff00ff
		neg  = 0x0080008000800080 // the sign bit of each even byte
	)
	sign = sign[:len(stored)]
	dst = dst[:len(stored)]
	// i+8 <= len(stored) in the loop's condition lets the compiler drop the
	// bounds checks of the three 8-element slices: 10% fewer instructions
	// than a precomputed bound.
	i := 0
	for ; i+8 <= len(stored); i += 8 {
		s := binary.LittleEndian.Uint64(stored[i : i+8])
		g := binary.LittleEndian.Uint64(sign[i : i+8])
		lo := s&even | (g&neg)<<1
		hi := s>>8&even | (g>>8&neg)<<1
		d := dst[i : i+8 : i+8]
		d[0] = t[lo&0x1ff]
		d[1] = t[hi&0x1ff]
		d[2] = t[lo>>16&0x1ff]
		d[3] = t[hi>>16&0x1ff]
		d[4] = t[lo>>32&0x1ff]
		d[5] = t[hi>>32&0x1ff]
		d[6] = t[lo>>48&0x1ff]
		d[7] = t[hi>>48&0x1ff]
	}
	for ; i < len(stored); i++ {
		dst[i] = t[uint(sign[i]>>7)<<8|uint(stored[i])]
	}
}

// lookupGo decodes one-byte codes through a 256-entry table, four per
// iteration: QINS rational uint8 codes, PyTorch qint8 and quint8. lookup
// calls it, or an AVX2 kernel with the same results where there is one.
func lookupGo(dst []float32, src []byte, t *[256]float32) {
	n := len(src) &^ 3
	dst = dst[:len(src)]
	for i := 0; i < n; i += 4 {
		s, d := src[i:i+4:i+4], dst[i:i+4:i+4]
		d[0], d[1], d[2], d[3] = t[s[0]], t[s[1]], t[s[2]], t[s[3]]
	}
	for i := n; i < len(src); i++ {
		dst[i] = t[src[i]]
	}
}

// rational inverts the QINS rational codec e = sign(w)/(1 + alpha|w|):
// |w| = (1/|e| - 1)/alpha, with the sign of e.
func rational(e, alpha float32) float32 {
	const signBit = 1 << 31
	eb := math.Float32bits(e)
	w := (1/math.Float32frombits(eb&^signBit) - 1) / alpha
	return math.Float32frombits(math.Float32bits(w)&^signBit | eb&signBit)
}

// rationalTable decodes uint8 rational codes q, stored as (e+1)*127.5
// rounded: e = q/127.5 - 1.
func rationalTable(t *[256]float32, alpha float32) {
	for q := range t {
		t[q] = rational(float32(q)/127.5-1, alpha)
	}
}

// rationalFloat decodes rational codes stored as floats of dtype; src holds
// len(dst) elements.
func rationalFloat(dst []float32, src []byte, dtype string, alpha float32) {
	widen(dst, src, dtype)
	for i, e := range dst {
		dst[i] = rational(e, alpha)
	}
}

// widen converts float32, float16 or bfloat16 elements to float32.
func widen(dst []float32, src []byte, dtype string) {
	switch dtype {
	case "float32":
		src = src[:4*len(dst)]
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case "float16":
		src = src[:2*len(dst)]
		for i := range dst {
			dst[i] = halfToFloat(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case "bfloat16":
		src = src[:2*len(dst)]
		for i := range dst {
			dst[i] = bfloatToFloat(binary.LittleEndian.Uint16(src[2*i:]))
		}
	}
}

// quantTable dequantizes PyTorch per-tensor affine codes the way ATen does:
// float(scale) * (q - zero_point). signed selects qint8 over quint8.
func quantTable(t *[256]float32, scale float64, zero int64, signed bool) {
	for b := range t {
		q := int64(b)
		if signed {
			q = int64(int8(b))
		}
		t[b] = float32(scale) * float32(q-zero)
	}
}

// gptqLayout is a GPTQ-packed weight (AutoGPTQ "v1" layout) of out
// outputs and in inputs: qweight is int32 [in/per, out], input row per*j+k
// in bits bits*k and up of qweight[j, o]; qzeros is int32 [groups, out/per],
// (zero-1) packed the same way along the outputs; scales is [groups, out];
// input i belongs to group gidx[i], or to i/groupSize without g_idx.
type gptqLayout struct {
	bits, per, in, out int
	groupSize          int
	qweight, qzeros    []byte
	scales             []byte // [groups, out] of scaleType
	scaleType          string
	gidx               []byte // int32 or int64 [in]; nil: groups of groupSize consecutive inputs
	gidxWidth          int    // 4 or 8
}

// group returns the group of input i.
func (l *gptqLayout) group(i int) int {
	switch {
	case l.gidx == nil:
		return i / l.groupSize
	case l.gidxWidth == 8:
		return int(int64(binary.LittleEndian.Uint64(l.gidx[8*i:])))
	}
	return int(int32(binary.LittleEndian.Uint32(l.gidx[4*i:])))
}

// scale returns scales[g, o] as float32.
func (l *gptqLayout) scale(g, o int) float32 {
	k := g*l.out + o
	switch l.scaleType {
	case "float16":
		return halfToFloat(binary.LittleEndian.Uint16(l.scales[2*k:]))
	case "bfloat16":
		return bfloatToFloat(binary.LittleEndian.Uint16(l.scales[2*k:]))
	}
	return math.Float32frombits(binary.LittleEndian.Uint32(l.scales[4*k:]))
}

// rows decodes output rows [lo, hi) of the [out, in] weight into dst:
// w[o, i] = scale[g, o] * (q[i, o] - zero[g, o]), zero being the stored
// value plus one. Each packed word of qweight is read once and its per
// values taken from it in turn.
func (l *gptqLayout) rows(dst []float32, lo, hi int) {
	mask := uint32(1)<<l.bits - 1
	bits := uint(l.bits)
	packed, zcols := l.in/l.per, l.out/l.per
	for o := lo; o < hi; o++ {
		row := dst[o*l.in : (o+1)*l.in]
		zshift := bits * uint(o%l.per)
		g, scale, zero := -1, float32(0), int32(0)
		for r := range packed {
			word := binary.LittleEndian.Uint32(l.qweight[4*(r*l.out+o):])
			out := row[r*l.per : (r+1)*l.per]
			for k := range out {
				if gi := l.group(r*l.per + k); gi != g {
					g, scale = gi, l.scale(gi, o)
					zword := binary.LittleEndian.Uint32(l.qzeros[4*(g*zcols+o/l.per):])
					zero = int32((zword>>zshift)&mask) + 1
				}
				out[k] = scale * float32(int32(word&mask)-zero)
				word >>= bits
			}
		}
	}
}
