package accounting

import (
	"fmt"
	"math/bits"
)

// DType describes how elements of one storage type are laid out: BlockElems
// elements take BlockBytes bytes. Plain types have BlockElems 1; block
// quantized types (GGML's q4_0: 32 elements in 18 bytes, scale included)
// have larger blocks.
type DType struct {
	Name       string
	BlockElems int64
	BlockBytes int64
	// Float is true for floating-point element types, the ones a weight
	// stored "uncompressed" would use.
	Float bool
	// RowPacked is set for a type whose blocks do not straddle rows: each
	// row (the last dimension) takes whole blocks, as torch packs its 4-
	// and 2-bit quantized types (a quint4x2 [3, 3] takes 3 x 2 bytes, not
	// 5). See ShapeBytes.
	RowPacked bool
	// Complex is set for complex types: an element is two floats, and its
	// baseline is two baseline floats.
	Complex bool
}

// dtypes lists every storage type qinsaudit knows: the plain element types
// here, GGML's block types in dtype_ggml.go. Names follow PyTorch
// (torch.float32 is "float32"); loaders map their format's names to these.
// New type: one line here, one case in TestDTypeBytes.
var dtypes = append(plainDTypes, ggmlDTypes...)

var plainDTypes = []DType{
	{Name: "float64", BlockElems: 1, BlockBytes: 8, Float: true},
	{Name: "float32", BlockElems: 1, BlockBytes: 4, Float: true},
	{Name: "float16", BlockElems: 1, BlockBytes: 2, Float: true},
	{Name: "bfloat16", BlockElems: 1, BlockBytes: 2, Float: true},
	{Name: "float8_e4m3fn", BlockElems: 1, BlockBytes: 1, Float: true},
	{Name: "float8_e4m3fnuz", BlockElems: 1, BlockBytes: 1, Float: true},
	{Name: "float8_e5m2", BlockElems: 1, BlockBytes: 1, Float: true},
	{Name: "float8_e5m2fnuz", BlockElems: 1, BlockBytes: 1, Float: true},
	// OCP microscaling element types: an e8m0 shared scale, 4-bit and
	// 6-bit floats packed without padding (safetensors F8_E8M0, F4, F6_*).
	{Name: "float8_e8m0fnu", BlockElems: 1, BlockBytes: 1, Float: true},
	{Name: "float4_e2m1fn", BlockElems: 2, BlockBytes: 1, Float: true},
	{Name: "float6_e2m3fn", BlockElems: 4, BlockBytes: 3, Float: true},
	{Name: "float6_e3m2fn", BlockElems: 4, BlockBytes: 3, Float: true},
	{Name: "complex128", BlockElems: 1, BlockBytes: 16, Float: true, Complex: true},
	{Name: "complex64", BlockElems: 1, BlockBytes: 8, Float: true, Complex: true},
	{Name: "complex32", BlockElems: 1, BlockBytes: 4, Float: true, Complex: true},
	{Name: "int64", BlockElems: 1, BlockBytes: 8},
	{Name: "int32", BlockElems: 1, BlockBytes: 4},
	{Name: "int16", BlockElems: 1, BlockBytes: 2},
	{Name: "int8", BlockElems: 1, BlockBytes: 1},
	{Name: "uint64", BlockElems: 1, BlockBytes: 8},
	{Name: "uint32", BlockElems: 1, BlockBytes: 4},
	{Name: "uint16", BlockElems: 1, BlockBytes: 2},
	{Name: "uint8", BlockElems: 1, BlockBytes: 1},
	{Name: "bool", BlockElems: 1, BlockBytes: 1},
	// PyTorch quantized tensors: one integer per element; scale and zero
	// point travel in the pickle, not in the storage.
	{Name: "qint8", BlockElems: 1, BlockBytes: 1},
	{Name: "quint8", BlockElems: 1, BlockBytes: 1},
	{Name: "qint32", BlockElems: 1, BlockBytes: 4},
	// The sub-byte ones pack each row into whole bytes (torch's
	// get_sub_byte_tensor_size).
	{Name: "quint4x2", BlockElems: 2, BlockBytes: 1, RowPacked: true},
	{Name: "quint2x4", BlockElems: 4, BlockBytes: 1, RowPacked: true},
}

var dtypeIndex = func() map[string]int {
	m := make(map[string]int, len(dtypes))
	for i, d := range dtypes {
		m[d.Name] = i
	}
	return m
}()

// LookupDType returns the named dtype.
func LookupDType(name string) (DType, bool) {
	i, ok := dtypeIndex[name]
	if !ok {
		return DType{}, false
	}
	return dtypes[i], true
}

// Bytes returns the bytes n elements of d take: whole blocks, the last one
// rounded up. It fails on a negative n or on overflow.
func (d DType) Bytes(n int64) (int64, error) {
	if n < 0 {
		return 0, fmt.Errorf("%s: negative element count %d", d.Name, n)
	}
	blocks := n / d.BlockElems
	if n%d.BlockElems != 0 {
		blocks++
	}
	hi, lo := bits.Mul64(uint64(blocks), uint64(d.BlockBytes))
	if hi != 0 || lo > 1<<63-1 {
		return 0, fmt.Errorf("%s: %d elements overflow int64 bytes", d.Name, n)
	}
	return int64(lo), nil
}

// ShapeBytes returns the bytes a tensor of shape takes: its element count in
// whole blocks, or for a RowPacked type its rows (the last dimension) each
// in whole blocks.
func (d DType) ShapeBytes(shape []int64) (int64, error) {
	n, err := Numel(shape)
	if err != nil {
		return 0, err
	}
	if !d.RowPacked || len(shape) == 0 || n == 0 {
		return d.Bytes(n)
	}
	last := shape[len(shape)-1]
	row, err := d.Bytes(last)
	if err != nil {
		return 0, err
	}
	hi, lo := bits.Mul64(uint64(n/last), uint64(row))
	if hi != 0 || lo > 1<<63-1 {
		return 0, fmt.Errorf("%s: shape %v overflows int64 bytes", d.Name, shape)
	}
	return int64(lo), nil
}

// Bits returns the storage bits per element, as a ratio of integers
// (bits*BlockBytes*8 / BlockElems).
func (d DType) Bits() float64 {
	return float64(d.BlockBytes*8) / float64(d.BlockElems)
}

// Numel returns the product of shape, failing on a negative dimension or on
// overflow of int64. A zero dimension makes zero elements, whatever the
// other dimensions and their order.
func Numel(shape []int64) (int64, error) {
	zero := false
	for _, s := range shape {
		if s < 0 {
			return 0, fmt.Errorf("negative dimension %d in shape %s", s, ShapeString(shape))
		}
		zero = zero || s == 0
	}
	if zero {
		return 0, nil
	}
	n := int64(1)
	for _, s := range shape {
		hi, lo := bits.Mul64(uint64(n), uint64(s))
		if hi != 0 || lo > 1<<63-1 {
			return 0, fmt.Errorf("shape %s: element count overflows int64", ShapeString(shape))
		}
		n = int64(lo)
	}
	return n, nil
}

// maxShownDims is how many dimensions a shape shows in a message: a
// hostile header can give a million.
const maxShownDims = 8

// ShapeString formats a shape for messages, "[2 3 4]", eliding dimensions
// past the eighth: "[1 1 1 1 1 1 1 1 ... (1000000 dims)]".
func ShapeString(shape []int64) string {
	if len(shape) <= maxShownDims {
		return fmt.Sprint(shape)
	}
	s := fmt.Sprint(shape[:maxShownDims])
	return fmt.Sprintf("%s ... (%d dims)]", s[:len(s)-1], len(shape))
}
