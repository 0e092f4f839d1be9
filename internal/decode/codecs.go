package decode

import (
	"math"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// unit is one weight the pass decodes to float32, as a [rows, cols] matrix
// (a PyTorch Linear's [out, in]), with what its kernel reads.
type unit struct {
	module string
	layer  string // the layer it is decoded with
	scheme string // codec name, or the dtype of a widened float weight
	tensor string // the main tensor
	rows   int
	cols   int
	// expected is the accounting's float32 size of the weight: params × 4.
	expected int64

	kernel kernel
	src    []byte        // the main tensor's data
	signs  []byte        // QINS log signs
	dtype  string        // element type of src for kRational and kWiden
	alpha  float32       // QINS rational alpha
	sgn    *[256]float32 // QINS log sign values, for signs other than ±1
	table  [512]float32  // code tables (256 entries, 512 for kQINSLogUnit)
	gptq   *gptqLayout   // kGPTQ

	out []float32 // the decoded weight, while the pass holds it
	y   []float32 // its forward outputs, while they are computed
}

// kernel selects the loop that decodes a unit.
type kernel int

const (
	kQINSLogUnit kernel = iota // QINS log, ±1 signs: one signed table
	kQINSLog                   // QINS log, any signs
	kLookup                    // one-byte codes through a 256-entry table
	kRational                  // QINS rational codes stored as floats
	kWiden                     // float16 or bfloat16 to float32
	kGPTQ                      // GPTQ int4 unpacking
)

func (u *unit) numel() int64 { return int64(u.rows) * int64(u.cols) }

// decode writes rows [r0, r1) of the weight into dst, the whole weight.
func (u *unit) decode(dst []float32, r0, r1 int) {
	lo, hi := r0*u.cols, r1*u.cols
	switch u.kernel {
	case kQINSLogUnit:
		qinsLogUnit(dst[lo:hi], u.src[lo:hi], u.signs[lo:hi], &u.table)
	case kQINSLog:
		qinsLog(dst[lo:hi], u.src[lo:hi], u.signs[lo:hi], (*[256]float32)(u.table[:256]), u.sgn)
	case kLookup:
		lookup(dst[lo:hi], u.src[lo:hi], (*[256]float32)(u.table[:256]))
	case kRational:
		w := 2
		if u.dtype == "float32" {
			w = 4
		}
		rationalFloat(dst[lo:hi], u.src[w*lo:w*hi], u.dtype, u.alpha)
	case kWiden:
		widen(dst[lo:hi], u.src[2*lo:2*hi], u.dtype)
	case kGPTQ:
		u.gptq.rows(dst, r0, r1)
	}
}

// builder gathers what a codec needs to build one unit's decoder.
type builder struct {
	p      *Pass
	byName map[string]int
	module string
	main   tensorData
}

// side returns the tensor named leaf in the module; ok is false when the
// model has none.
func (b *builder) side(leaf string) (td tensorData, ok bool, err error) {
	j, ok := b.byName[accounting.JoinName(b.module, leaf)]
	if !ok {
		return tensorData{}, false, nil
	}
	td, err = b.p.tensor(j)
	return td, true, err
}

// need returns the side tensor named leaf, or an error naming the main
// tensor and the missing side.
func (b *builder) need(leaf, scheme string) (tensorData, error) {
	td, ok, err := b.side(leaf)
	if err != nil {
		return td, err
	}
	if !ok {
		return td, b.errorf("%s needs %q beside it, and the model has no such tensor", scheme, accounting.JoinName(b.module, leaf))
	}
	return td, nil
}

func (b *builder) errorf(msg string, args ...any) error {
	return tensorError(b.p.m, b.main.t, -1, msg, args...)
}

func (b *builder) sideErrorf(td tensorData, msg string, args ...any) error {
	return tensorError(b.p.m, td.t, -1, msg, args...)
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

// codecs builds, per scheme name of the accounting's scheme table, the
// decoder of one encoded linear. New scheme: one entry here, one case in
// TestDecodeFixtures.
var codecs = map[string]func(b *builder, u *unit) error{
	"qins-log":            qinsLogCodec,
	"qins-rational":       qinsRationalCodec,
	"torch-dynamic-qint8": qint8Codec,
	"torch-static-qint8":  qint8Codec,
	"torch-qint8":         qint8Codec,
	"gptq":                gptqCodec,
}

// qinsLogCodec: w = sign * exp(log_min + (255 - stored)/254 * (log_max - log_min)),
// through a 256-entry table per module, or a 512-entry signed one when
// every sign is ±1 (checked once here).
func qinsLogCodec(b *builder, u *unit) error {
	sign, err := b.need("sign", "qins-log")
	if err != nil {
		return err
	}
	if sign.numel != b.main.numel || sign.dtype.BlockBytes != 1 {
		return b.sideErrorf(sign, "sign has %d elements of %s; stored has %d one-byte codes", sign.numel, sign.dtype.Name, b.main.numel)
	}
	var rng [2]float32
	for k, leaf := range []string{"log_min", "log_max"} {
		td, err := b.need(leaf, "qins-log")
		if err != nil {
			return err
		}
		v, err := scalar(b.p.m, td)
		if err != nil {
			return err
		}
		rng[k] = float32(v)
	}
	u.rows, u.cols = matrix(b.main.t.Shape, b.main.numel)
	u.src, u.signs = b.main.data, sign.data
	mag := (*[256]float32)(u.table[:256])
	qinsLogTable(mag, rng[0], rng[1])
	if sign.dtype.Name == "int8" && unitSigns(sign.data) {
		u.kernel = kQINSLogUnit
		signedTable(&u.table)
		return nil
	}
	u.kernel, u.sgn = kQINSLog, signTable(sign.dtype.Name)
	return nil
}

// qinsRationalCodec: |w| = (1/|e| - 1)/alpha with the sign of e; e stored
// as a float, or as uint8 q with e = q/127.5 - 1. alpha is the module's
// alpha tensor when there is one, else Options.Alpha.
func qinsRationalCodec(b *builder, u *unit) error {
	alpha := b.p.opts.alpha()
	if td, ok, err := b.side("alpha"); err != nil {
		return err
	} else if ok {
		v, err := scalar(b.p.m, td)
		if err != nil {
			return err
		}
		if !(v > 0) || math.IsInf(v, 0) {
			return b.sideErrorf(td, "alpha is %v; the rational codec needs a positive finite alpha", v)
		}
		alpha = float32(v)
	}
	u.rows, u.cols = matrix(b.main.t.Shape, b.main.numel)
	u.src, u.dtype, u.alpha = b.main.data, b.main.dtype.Name, alpha
	switch u.dtype {
	case "uint8":
		u.kernel = kLookup
		rationalTable((*[256]float32)(u.table[:256]), alpha)
	case "float32", "float16", "bfloat16":
		u.kernel = kRational
	default:
		return b.errorf("qins-rational codes of dtype %s cannot be decoded", u.dtype)
	}
	return nil
}

// qint8Codec dequantizes a PyTorch per-tensor affine qint8 or quint8 weight
// with the scale and zero point its pickle carried.
func qint8Codec(b *builder, u *unit) error {
	t := b.main.t
	if !(t.QScale > 0) || math.IsInf(t.QScale, 0) {
		return b.errorf("quantized weight has scale %v; the loader found no valid per-tensor scale", t.QScale)
	}
	if t.QZeroPoint < -255 || t.QZeroPoint > 255 {
		return b.errorf("zero point %d is out of range for %s", t.QZeroPoint, t.DType)
	}
	if t.DType != "qint8" && t.DType != "quint8" {
		return b.errorf("dtype %s is not a per-tensor 8-bit quantized type", t.DType)
	}
	u.rows, u.cols = matrix(t.Shape, b.main.numel)
	u.kernel, u.src = kLookup, b.main.data
	quantTable((*[256]float32)(u.table[:256]), t.QScale, t.QZeroPoint, t.DType == "qint8")
	return nil
}

// gptqCodec unpacks the GPTQ int32 layout (see gptqLayout) with its zeros,
// scales and optional g_idx, checking every shape against the packing.
func gptqCodec(b *builder, u *unit) error {
	bits := 4
	if cfg := b.p.m.Quantization; cfg != nil && cfg.Bits > 0 {
		bits = cfg.Bits
	}
	if bits != 2 && bits != 4 && bits != 8 {
		return b.errorf("GPTQ with %d bits per weight is not decoded (2, 4 and 8 pack evenly into int32)", bits)
	}
	per := 32 / bits
	qs := b.main.t.Shape
	if len(qs) != 2 || b.main.dtype.Name != "int32" {
		return b.errorf("qweight must be a 2-D int32 tensor, have %s %v", b.main.dtype.Name, qs)
	}
	packed, out := int(qs[0]), int(qs[1])
	if _, err := accounting.Numel([]int64{qs[0], int64(per), qs[1]}); err != nil {
		return b.errorf("%v", err)
	}
	in := packed * per
	scales, err := b.need("scales", "gptq")
	if err != nil {
		return err
	}
	ss := scales.t.Shape
	if len(ss) != 2 || ss[1] != int64(out) || ss[0] < 1 || ss[0] > int64(max(in, 1)) {
		return b.sideErrorf(scales, "scales has shape %v; want [groups, %d] with 1 <= groups <= %d", ss, out, in)
	}
	if n := scales.dtype.Name; n != "float16" && n != "bfloat16" && n != "float32" {
		return b.sideErrorf(scales, "scales of dtype %s are not decoded", n)
	}
	groups := int(ss[0])
	zeros, err := b.need("qzeros", "gptq")
	if err != nil {
		return err
	}
	if out%per != 0 || zeros.dtype.Name != "int32" || len(zeros.t.Shape) != 2 ||
		zeros.t.Shape[0] != int64(groups) || zeros.t.Shape[1] != int64(out/per) {
		return b.sideErrorf(zeros, "qzeros is %s %v; want int32 [%d, %d/%d]", zeros.dtype.Name, zeros.t.Shape, groups, out, per)
	}
	l := &gptqLayout{bits: bits, per: per, in: in, out: out, qweight: b.main.data,
		qzeros: zeros.data, scales: scales.data, scaleType: scales.dtype.Name}
	gidx, ok, err := b.side("g_idx")
	if err != nil {
		return err
	}
	if ok {
		if gidx.numel != int64(in) || (gidx.dtype.Name != "int32" && gidx.dtype.Name != "int64") {
			return b.sideErrorf(gidx, "g_idx is %s %v; want int32 or int64 [%d]", gidx.dtype.Name, gidx.t.Shape, in)
		}
		l.gidx, l.gidxWidth = gidx.data, int(gidx.dtype.BlockBytes)
		for i := range in {
			if g := l.group(i); g < 0 || g >= groups {
				return b.sideErrorf(gidx, "g_idx[%d] = %d, outside the %d groups", i, g, groups)
			}
		}
	} else {
		if in%groups != 0 {
			return b.sideErrorf(scales, "%d inputs do not split into %d equal groups, and there is no g_idx", in, groups)
		}
		l.groupSize = in / groups
	}
	u.rows, u.cols, u.kernel, u.gptq = out, in, kGPTQ, l
	return nil
}

// widenCodec turns a float16 or bfloat16 weight into float32.
func widenCodec(b *builder, u *unit) error {
	u.rows, u.cols = matrix(b.main.t.Shape, b.main.numel)
	u.kernel, u.src, u.dtype = kWiden, b.main.data, b.main.dtype.Name
	return nil
}
