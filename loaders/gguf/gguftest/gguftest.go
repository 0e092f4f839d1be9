// Package gguftest writes GGUF files in memory, for tests and fixtures:
//
//	data := gguftest.New().
//		KV("general.alignment", uint32(64)).
//		Tensor("blk.0.attn_q.weight", gguftest.Q4_0, 64, 64).
//		Bytes()
//
// Tensor data is zeros. By default tensors are laid out as llama.cpp writes
// them: in order, each padded to the alignment. Other methods make the
// malformed files a reader must refuse. Block and Vocab add the tensors and
// tokenizer of a llama; Fixtures and ManyTensors are whole files built with
// them.
package gguftest

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
)

// GGML type ids (ggml's include/ggml.h).
const (
	F32     = 0
	F16     = 1
	Q4_0    = 2
	Q4_1    = 3
	Q4_2    = 4 // removed
	Q4_3    = 5 // removed
	Q5_0    = 6
	Q5_1    = 7
	Q8_0    = 8
	Q8_1    = 9
	Q2_K    = 10
	Q3_K    = 11
	Q4_K    = 12
	Q5_K    = 13
	Q6_K    = 14
	Q8_K    = 15
	IQ2_XXS = 16
	IQ2_XS  = 17
	IQ3_XXS = 18
	IQ1_S   = 19
	IQ4_NL  = 20
	IQ3_S   = 21
	IQ2_S   = 22
	IQ4_XS  = 23
	I8      = 24
	I16     = 25
	I32     = 26
	I64     = 27
	F64     = 28
	IQ1_M   = 29
	BF16    = 30
	// 31-33 Q4_0_4_4, Q4_0_4_8, Q4_0_8_8: removed
	TQ1_0 = 34
	TQ2_0 = 35
	// 36 IQ4_NL_4_4: removed; 37, 38: never used
	MXFP4 = 39
	NVFP4 = 40
	Q1_0  = 41
	Q2_0  = 42
)

// Type is a ggml type's layout: Elems elements in Bytes bytes.
type Type struct {
	Name         string // ggml's upper-case name
	Elems, Bytes int64
}

// half is sizeof(ggml_half); qk is QK_K.
const half, qk = 2, 256

// Types lists every ggml type id with a layout, written out from the block
// structs of ggml's src/ggml-common.h (removed ones from the ggml commit that
// last had them) rather than copied from a table.
var Types = map[uint32]Type{
	F32:     {"F32", 1, 4},
	F16:     {"F16", 1, 2},
	Q4_0:    {"Q4_0", 32, half + 32/2},
	Q4_1:    {"Q4_1", 32, 2*half + 32/2},
	Q4_2:    {"Q4_2", 16, half + 16/2},
	Q4_3:    {"Q4_3", 16, 2*half + 16/2},
	Q5_0:    {"Q5_0", 32, half + 4 + 32/2},
	Q5_1:    {"Q5_1", 32, 2*half + 4 + 32/2},
	Q8_0:    {"Q8_0", 32, half + 32},
	Q8_1:    {"Q8_1", 32, 2*half + 32},
	Q2_K:    {"Q2_K", qk, 2*half + qk/16 + qk/4},
	Q3_K:    {"Q3_K", qk, half + qk/4 + qk/8 + 12},
	Q4_K:    {"Q4_K", qk, 2*half + 12 + qk/2},
	Q5_K:    {"Q5_K", qk, 2*half + 12 + qk/2 + qk/8},
	Q6_K:    {"Q6_K", qk, half + qk/16 + 3*qk/4},
	Q8_K:    {"Q8_K", qk, 4 + qk + qk/16*2},
	IQ2_XXS: {"IQ2_XXS", qk, half + qk/8*2},
	IQ2_XS:  {"IQ2_XS", qk, half + qk/8*2 + qk/32},
	IQ3_XXS: {"IQ3_XXS", qk, half + 3*(qk/8)},
	IQ1_S:   {"IQ1_S", qk, half + qk/8 + qk/16},
	IQ4_NL:  {"IQ4_NL", 32, half + 32/2},
	IQ3_S:   {"IQ3_S", qk, half + 13*(qk/32) + qk/64},
	IQ2_S:   {"IQ2_S", qk, half + qk/4 + qk/16},
	IQ4_XS:  {"IQ4_XS", qk, half + 2 + qk/64 + qk/2},
	I8:      {"I8", 1, 1},
	I16:     {"I16", 1, 2},
	I32:     {"I32", 1, 4},
	I64:     {"I64", 1, 8},
	F64:     {"F64", 1, 8},
	IQ1_M:   {"IQ1_M", qk, qk/8 + qk/16 + qk/32},
	BF16:    {"BF16", 1, 2},
	31:      {"Q4_0_4_4", 32, half + 32/2},
	32:      {"Q4_0_4_8", 32, half + 32/2},
	33:      {"Q4_0_8_8", 32, half + 32/2},
	TQ1_0:   {"TQ1_0", qk, (qk-4*qk/64)/5 + qk/64 + half},
	TQ2_0:   {"TQ2_0", qk, qk/4 + half},
	36:      {"IQ4_NL_4_4", 32, half + 32/2},
	MXFP4:   {"MXFP4", 32, 1 + 32/2},
	NVFP4:   {"NVFP4", 64, 64/16 + 64/2},
	Q1_0:    {"Q1_0", 128, half + 128/8},
	Q2_0:    {"Q2_0", 64, half + 64/4},
}

// IDs returns the ids of Types in increasing order.
func IDs() []uint32 {
	return slices.Sorted(maps.Keys(Types))
}

// Size returns the bytes of a tensor of type typ and dims ne: whole blocks
// per row. An id without a layout counts one byte per element.
func Size(typ uint32, ne ...int64) int64 {
	n := int64(1)
	for _, d := range ne {
		n *= d
	}
	t, ok := Types[typ]
	if !ok {
		return n
	}
	return (n + t.Elems - 1) / t.Elems * t.Bytes
}

// Builder collects a GGUF file's parts; Bytes writes it.
type Builder struct {
	version     uint32
	order       binary.AppendByteOrder
	kvs         []kv
	tensors     []tensor
	align       int64
	nTensors    *uint64
	nKVs        *uint64
	tail        []byte
	noLastAlign bool
}

type kv struct {
	key string
	typ uint32
	raw []byte
	val any // nil: typ and raw

}

type tensor struct {
	name   string
	typ    uint32
	ne     []int64
	placed bool // at offset, else after the previous tensor
	offset int64
}

// New starts a little-endian version 3 file.
func New() *Builder { return &Builder{version: 3, order: binary.LittleEndian} }

// Version sets the version field.
func (b *Builder) Version(v uint32) *Builder { b.version = v; return b }

// BigEndian writes every number big-endian.
func (b *Builder) BigEndian() *Builder { b.order = binary.BigEndian; return b }

// KV adds a key-value pair. v is a Go value of a GGUF type (uint8 ... float64,
// bool, string) or a slice of them, or a slice of such slices (an array of
// arrays). A uint32 general.alignment also sets the data alignment.
func (b *Builder) KV(key string, v any) *Builder {
	if a, ok := v.(uint32); ok && key == "general.alignment" && b.align == 0 {
		b.align = int64(a)
	}
	b.kvs = append(b.kvs, kv{key: key, val: v})
	return b
}

// RawKV adds a key-value pair whose value bytes, after the u32 type, are raw.
func (b *Builder) RawKV(key string, typ uint32, raw []byte) *Builder {
	b.kvs = append(b.kvs, kv{key: key, typ: typ, raw: raw})
	return b
}

// Tensor adds a tensor, ne innermost first, placed after the previous one.
func (b *Builder) Tensor(name string, typ uint32, ne ...int64) *Builder {
	b.tensors = append(b.tensors, tensor{name: name, typ: typ, ne: ne})
	return b
}

// TensorAt adds a tensor at a fixed offset in the data section. Unlike
// Tensor, it does not make the file longer.
func (b *Builder) TensorAt(name string, typ uint32, offset int64, ne ...int64) *Builder {
	b.tensors = append(b.tensors, tensor{name: name, typ: typ, ne: ne, placed: true, offset: offset})
	return b
}

// Align sets the alignment the data is laid out with, whatever
// general.alignment says (default 32).
func (b *Builder) Align(a int64) *Builder { b.align = a; return b }

// NoLastPadding ends the file right after the last tensor's data.
func (b *Builder) NoLastPadding() *Builder { b.noLastAlign = true; return b }

// Counts overrides the tensor and kv counts of the header.
func (b *Builder) Counts(tensors, kvs uint64) *Builder {
	b.nTensors, b.nKVs = &tensors, &kvs
	return b
}

// Append adds bytes at the end of the file.
func (b *Builder) Append(p []byte) *Builder { b.tail = append(b.tail, p...); return b }

// Bytes writes the file.
func (b *Builder) Bytes() []byte {
	w := &writer{order: b.order}
	w.buf = append(w.buf, "GGUF"...)
	w.u32(b.version)
	nt, nkv := uint64(len(b.tensors)), uint64(len(b.kvs))
	if b.nTensors != nil {
		nt, nkv = *b.nTensors, *b.nKVs
	}
	w.u64(nt)
	w.u64(nkv)
	for _, kv := range b.kvs {
		w.str(kv.key)
		if kv.val == nil {
			w.u32(kv.typ)
			w.buf = append(w.buf, kv.raw...)
			continue
		}
		w.value(reflect.ValueOf(kv.val), true)
	}
	align := b.align
	if align <= 0 {
		align = 32
	}
	offsets := make([]int64, len(b.tensors))
	var end int64
	for i, t := range b.tensors {
		if t.placed {
			offsets[i] = t.offset
			continue
		}
		offsets[i] = pad(end, align)
		end = offsets[i] + Size(t.typ, t.ne...)
	}
	if !b.noLastAlign {
		end = pad(end, align)
	}
	for i, t := range b.tensors {
		w.str(t.name)
		w.u32(uint32(len(t.ne)))
		for _, d := range t.ne {
			w.u64(uint64(d))
		}
		w.u32(t.typ)
		w.u64(uint64(offsets[i]))
	}
	if len(b.tensors) > 0 || end > 0 {
		w.buf = append(w.buf, make([]byte, pad(int64(len(w.buf)), align)-int64(len(w.buf))+end)...)
	}
	return append(w.buf, b.tail...)
}

func pad(n, a int64) int64 { return (n + a - 1) / a * a }

type writer struct {
	buf   []byte
	order binary.AppendByteOrder
}

func (w *writer) u32(v uint32) { w.buf = w.order.AppendUint32(w.buf, v) }
func (w *writer) u64(v uint64) { w.buf = w.order.AppendUint64(w.buf, v) }
func (w *writer) str(s string) { w.u64(uint64(len(s))); w.buf = append(w.buf, s...) }

// GGUF value types of Go kinds.
var kindTypes = map[reflect.Kind]uint32{
	reflect.Uint8: 0, reflect.Int8: 1, reflect.Uint16: 2, reflect.Int16: 3,
	reflect.Uint32: 4, reflect.Int32: 5, reflect.Float32: 6, reflect.Bool: 7,
	reflect.String: 8, reflect.Slice: 9, reflect.Uint64: 10, reflect.Int64: 11,
	reflect.Float64: 12,
}

// value writes v, preceded by its type if typed.
func (w *writer) value(v reflect.Value, typed bool) {
	typ, ok := kindTypes[v.Kind()]
	if !ok {
		panic(fmt.Sprintf("gguftest: no GGUF type for %s", v.Type()))
	}
	if typed {
		w.u32(typ)
	}
	switch v.Kind() {
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		w.uint(v.Uint(), v.Type().Size())
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		w.uint(uint64(v.Int()), v.Type().Size())
	case reflect.Float32:
		w.u32(math.Float32bits(float32(v.Float())))
	case reflect.Float64:
		w.u64(math.Float64bits(v.Float()))
	case reflect.Bool:
		if v.Bool() {
			w.buf = append(w.buf, 1)
		} else {
			w.buf = append(w.buf, 0)
		}
	case reflect.String:
		w.str(v.String())
	case reflect.Slice:
		elem, ok := kindTypes[v.Type().Elem().Kind()]
		if !ok {
			panic(fmt.Sprintf("gguftest: no GGUF type for %s", v.Type()))
		}
		w.u32(elem)
		w.u64(uint64(v.Len()))
		for i := range v.Len() {
			w.value(v.Index(i), false)
		}
	}
}

func (w *writer) uint(v uint64, size uintptr) {
	switch size {
	case 1:
		w.buf = append(w.buf, byte(v))
	case 2:
		w.buf = w.order.AppendUint16(w.buf, uint16(v))
	case 4:
		w.u32(uint32(v))
	default:
		w.u64(v)
	}
}
