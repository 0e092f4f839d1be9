package decode

import (
	"math"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// unit is one weight the pass decodes to float32, as a [rows, cols] matrix
// (a PyTorch Linear's [out, in]).
type unit struct {
	module string
	layer  string // the layer it is decoded with
	scheme string // codec name, or the dtype of a widened float weight
	tensor string // the main tensor
	rows   int
	cols   int
	// expected is the accounting's float32 size of the weight: params × 4.
	expected int64
	// decode writes rows [lo, hi) of the weight into dst, the whole weight.
	decode func(dst []float32, lo, hi int)
	out    []float32 // the decoded weight, while the pass holds it
}

func (u *unit) numel() int64 { return int64(u.rows) * int64(u.cols) }

// builder gathers what a codec needs to build one unit's decoder.
type builder struct {
	m      *accounting.Model
	module string
	main   tensorData
	opts   *Options
	cfg    *accounting.QuantConfig
	// side returns the tensor named leaf in the module; ok is false when
	// the model has none.
	side func(leaf string) (td tensorData, ok bool, err error)
}

// need returns the side tensor named leaf, or an error naming the main
// tensor and the missing side.
func (b *builder) need(leaf, scheme string) (tensorData, error) {
	td, ok, err := b.side(leaf)
	if err != nil {
		return td, err
	}
	if !ok {
		return td, b.errorf("%s needs %q beside it, and the model has no such tensor", scheme, join(b.module, leaf))
	}
	return td, nil
}

func (b *builder) errorf(msg string, args ...any) error {
	return tensorError(b.m, b.main.t, -1, msg, args...)
}

func (b *builder) sideErrorf(td tensorData, msg string, args ...any) error {
	return tensorError(b.m, td.t, -1, msg, args...)
}

// matrix returns rows and cols of a weight of shape: [d0, product of the
// rest]; a scalar is [1, 1].
func matrix(shape []int64, numel int64) (rows, cols int) {
	if len(shape) == 0 {
		return 1, 1
	}
	if shape[0] == 0 {
		return 0, 0
	}
	return int(shape[0]), int(numel / shape[0])
}

// elementwise makes a unit decoder from a kernel over flat element ranges.
func elementwise(cols int, k func(dst []float32, lo, hi int)) func([]float32, int, int) {
	return func(dst []float32, r0, r1 int) { k(dst, r0*cols, r1*cols) }
}

// codecs builds, per scheme name of the accounting's scheme table, the
// decoder of one encoded linear. New scheme: one entry here, one case in
// TestDecodeFixtures.
var codecs = map[string]func(b *builder) (*unit, error){
	"qins-log":            qinsLogCodec,
	"qins-rational":       qinsRationalCodec,
	"torch-dynamic-qint8": qint8Codec,
	"gptq":                gptqCodec,
}

// qinsLogCodec: w = sign * exp(log_min + (255 - stored)/254 * (log_max - log_min)),
// through a 256-entry table per module.
func qinsLogCodec(b *builder) (*unit, error) {
	sign, err := b.need("sign", "qins-log")
	if err != nil {
		return nil, err
	}
	if sign.numel != b.main.numel || sign.dtype.BlockBytes != 1 {
		return nil, b.sideErrorf(sign, "sign has %d elements of %s; stored has %d one-byte codes", sign.numel, sign.dtype.Name, b.main.numel)
	}
	var rng [2]float32
	for k, leaf := range []string{"log_min", "log_max"} {
		td, err := b.need(leaf, "qins-log")
		if err != nil {
			return nil, err
		}
		v, err := scalar(b.m, td)
		if err != nil {
			return nil, err
		}
		rng[k] = float32(v)
	}
	mag, sgn := qinsLogTable(rng[0], rng[1]), signTable(sign.dtype.Name)
	stored, signs := b.main.data, sign.data
	rows, cols := matrix(b.main.t.Shape, b.main.numel)
	return &unit{rows: rows, cols: cols, decode: elementwise(cols, func(dst []float32, lo, hi int) {
		qinsLog(dst[lo:hi], stored[lo:hi], signs[lo:hi], mag, sgn)
	})}, nil
}

// qinsRationalCodec: |w| = (1/|e| - 1)/alpha with the sign of e; e stored
// as a float, or as uint8 q with e = q/127.5 - 1. alpha is the module's
// alpha tensor when there is one, else Options.Alpha.
func qinsRationalCodec(b *builder) (*unit, error) {
	alpha := b.opts.alpha()
	if td, ok, err := b.side("alpha"); err != nil {
		return nil, err
	} else if ok {
		v, err := scalar(b.m, td)
		if err != nil {
			return nil, err
		}
		if !(v > 0) || math.IsInf(v, 0) {
			return nil, b.sideErrorf(td, "alpha is %v; the rational codec needs a positive finite alpha", v)
		}
		alpha = float32(v)
	}
	rows, cols := matrix(b.main.t.Shape, b.main.numel)
	src, dtype := b.main.data, b.main.dtype
	u := &unit{rows: rows, cols: cols}
	switch dtype.Name {
	case "uint8":
		t := rationalTable(alpha)
		u.decode = elementwise(cols, func(dst []float32, lo, hi int) { lookup(dst[lo:hi], src[lo:hi], t) })
	case "float32", "float16", "bfloat16":
		w := int(dtype.BlockBytes)
		u.decode = elementwise(cols, func(dst []float32, lo, hi int) {
			rationalFloat(dst[lo:hi], src[w*lo:w*hi], dtype.Name, alpha)
		})
	default:
		return nil, b.errorf("qins-rational codes of dtype %s cannot be decoded", dtype.Name)
	}
	return u, nil
}

// qint8Codec dequantizes a PyTorch per-tensor affine qint8 or quint8 weight
// with the scale and zero point its pickle carried.
func qint8Codec(b *builder) (*unit, error) {
	t := b.main.t
	if !(t.QScale > 0) || math.IsInf(t.QScale, 0) {
		return nil, b.errorf("quantized weight has scale %v; the loader found no valid per-tensor scale", t.QScale)
	}
	if t.QZeroPoint < -255 || t.QZeroPoint > 255 {
		return nil, b.errorf("zero point %d is out of range for %s", t.QZeroPoint, t.DType)
	}
	var signed bool
	switch t.DType {
	case "qint8":
		signed = true
	case "quint8":
	default:
		return nil, b.errorf("dtype %s is not a per-tensor 8-bit quantized type", t.DType)
	}
	tab := quantTable(t.QScale, t.QZeroPoint, signed)
	src := b.main.data
	rows, cols := matrix(t.Shape, b.main.numel)
	return &unit{rows: rows, cols: cols, decode: elementwise(cols, func(dst []float32, lo, hi int) {
		lookup(dst[lo:hi], src[lo:hi], tab)
	})}, nil
}

// gptqCodec unpacks the GPTQ int32 layout (see gptqLayout) with its zeros,
// scales and optional g_idx, checking every shape against the packing.
func gptqCodec(b *builder) (*unit, error) {
	bits := 4
	if b.cfg != nil && b.cfg.Bits > 0 {
		bits = b.cfg.Bits
	}
	if bits != 2 && bits != 4 && bits != 8 {
		return nil, b.errorf("GPTQ with %d bits per weight is not decoded (2, 4 and 8 pack evenly into int32)", bits)
	}
	per := 32 / bits
	qs := b.main.t.Shape
	if len(qs) != 2 || b.main.dtype.Name != "int32" {
		return nil, b.errorf("qweight must be a 2-D int32 tensor, have %s %v", b.main.dtype.Name, qs)
	}
	packed, out := int(qs[0]), int(qs[1])
	if _, err := accounting.Numel([]int64{qs[0], int64(per), qs[1]}); err != nil {
		return nil, b.errorf("%v", err)
	}
	in := packed * per
	scales, err := b.need("scales", "gptq")
	if err != nil {
		return nil, err
	}
	ss := scales.t.Shape
	if len(ss) != 2 || ss[1] != int64(out) || ss[0] < 1 || ss[0] > int64(max(in, 1)) {
		return nil, b.sideErrorf(scales, "scales has shape %v; want [groups, %d] with 1 <= groups <= %d", ss, out, in)
	}
	if n := scales.dtype.Name; n != "float16" && n != "bfloat16" && n != "float32" {
		return nil, b.sideErrorf(scales, "scales of dtype %s are not decoded", n)
	}
	groups := int(ss[0])
	zeros, err := b.need("qzeros", "gptq")
	if err != nil {
		return nil, err
	}
	if out%per != 0 || zeros.dtype.Name != "int32" || len(zeros.t.Shape) != 2 ||
		zeros.t.Shape[0] != int64(groups) || zeros.t.Shape[1] != int64(out/per) {
		return nil, b.sideErrorf(zeros, "qzeros is %s %v; want int32 [%d, %d/%d]", zeros.dtype.Name, zeros.t.Shape, groups, out, per)
	}
	l := &gptqLayout{bits: bits, per: per, in: in, out: out, qweight: b.main.data,
		qzeros: zeros.data, scales: scales.data, scaleType: scales.dtype.Name}
	gidx, ok, err := b.side("g_idx")
	if err != nil {
		return nil, err
	}
	if ok {
		if gidx.numel != int64(in) || (gidx.dtype.Name != "int32" && gidx.dtype.Name != "int64") {
			return nil, b.sideErrorf(gidx, "g_idx is %s %v; want int32 or int64 [%d]", gidx.dtype.Name, gidx.t.Shape, in)
		}
		l.gidx, l.gidxWidth = gidx.data, int(gidx.dtype.BlockBytes)
		for i := range in {
			if g := l.group(i); g < 0 || g >= groups {
				return nil, b.sideErrorf(gidx, "g_idx[%d] = %d, outside the %d groups", i, g, groups)
			}
		}
	} else {
		if in%groups != 0 {
			return nil, b.sideErrorf(scales, "%d inputs do not split into %d equal groups, and there is no g_idx", in, groups)
		}
		l.groupSize = in / groups
	}
	return &unit{rows: out, cols: in, decode: l.rows}, nil
}

// widenCodec turns a float16 or bfloat16 weight into float32.
func widenCodec(b *builder) (*unit, error) {
	src, dtype := b.main.data, b.main.dtype.Name
	rows, cols := matrix(b.main.t.Shape, b.main.numel)
	return &unit{rows: rows, cols: cols, decode: elementwise(cols, func(dst []float32, lo, hi int) {
		widen(dst[lo:hi], src[2*lo:2*hi], dtype)
	})}, nil
}

func join(mod, leaf string) string {
	if mod == "" {
		return leaf
	}
	return mod + "." + leaf
}
