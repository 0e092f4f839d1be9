package accounting

import "math"

// JoinName is the dotted name of leaf under prefix (a module, or a path in
// a state_dict): "blocks.0.attn.q" and "stored" make
// "blocks.0.attn.q.stored"; an empty prefix leaves leaf alone.
func JoinName(prefix, leaf string) string {
	if prefix == "" {
		return leaf
	}
	return prefix + "." + leaf
}

// Contiguous reports whether strides (in elements) lay shape out in C
// (row-major) order, by torch's rule: dimensions of size 1 may have any
// stride, and an empty tensor is contiguous. Nil strides are contiguous
// (Tensor.Strides); strides of another rank than shape are not.
func Contiguous(shape, strides []int64) bool {
	if strides == nil {
		return true
	}
	if len(strides) != len(shape) {
		return false
	}
	for _, d := range shape {
		if d == 0 {
			return true
		}
	}
	want := int64(1)
	for k := len(shape) - 1; k >= 0; k-- {
		if shape[k] != 1 && strides[k] != want {
			return false
		}
		if want > math.MaxInt64/shape[k] {
			return false // more elements than an int64 counts: no tensor
		}
		want *= shape[k]
	}
	return true
}

// Abs returns |x| of a byte count or a difference of two, saturating:
// Abs(math.MinInt64) is math.MaxInt64, not negative.
func Abs(x int64) int64 {
	switch {
	case x == math.MinInt64:
		return math.MaxInt64
	case x < 0:
		return -x
	}
	return x
}
