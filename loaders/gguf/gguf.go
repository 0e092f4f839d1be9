// Package gguf reads the tensor table of GGUF files, the format of ggml and
// llama.cpp.
//
// A GGUF file (versions 2 and 3) is, in the file's byte order:
//
//	"GGUF" u32 version, u64 tensor_count, u64 kv_count
//	kv_count × (string key, u32 value type, value)
//	tensor_count × (string name, u32 n_dims, n_dims × u64 ne, u32 ggml type, u64 offset)
//	padding to the alignment, then the data section
//
// A string is a u64 length and that many bytes; an array value is a u32
// element type, a u64 count and the elements. Tensor offsets are relative to
// the data section, which starts at the first multiple of general.alignment
// (default 32) after the tensor infos. ne[0] is the innermost dimension.
// Specification:
// https://github.com/ggml-org/ggml/blob/d99724f2b141fed9e1a9f402213506c081433465/docs/gguf.md
//
// The reader walks the metadata without keeping it: of the key-value pairs
// it keeps general.alignment, general.architecture, general.file_type and the
// split.* counts, and skips every other value by its lengths, so a
// tokenizer's 100,000-string array costs no allocation. Every count and
// length is checked against the bytes left in the file before it is used.
//
// Unlike llama.cpp, which wants tensors packed in order, the loader accepts
// tensors in any order with gaps between them. A tensor's storage is its data
// in whole blocks; the alignment padding after it (up to the next multiple of
// general.alignment, or the end of the file) is file overhead, and so is any
// gap beyond the padding, which the File's Gaps record for a finding. Like llama.cpp it refuses a
// tensor whose rows (ne[0]) are not whole blocks of its type, and one whose
// data is misaligned, overlaps the next tensor or runs past the end of the
// file. A ggml type id it does not know is not an error: the tensor gets the
// dtype "ggml_unknown_<id>" and its span. Big-endian files (which version 3
// allows) are read too. A failed read is returned as is; every defect of the
// file is an *accounting.FormatError.
package gguf

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"slices"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/hugepage"
)

// format is the Format of the model's File and of every FormatError.
const format = "gguf"

const (
	magic            = "GGUF"
	defaultAlignment = 32
	maxDims          = 4       // GGML_MAX_DIMS
	maxKeyLen        = 65535   // the specification's limit
	maxTensors       = 1 << 16 // see ReadHeader and tensorLimit
	bytesPerTensor   = 128     // see tensorLimit
	maxArrayDepth    = 16      // nesting of arrays of arrays
	minKVBytes       = 8 + 4 + 1
	minTensorInfo    = 8 + 4 + 4 + 8 // empty name, no dims
)

// GGUF metadata value types.
const (
	typeUint8 = iota
	typeInt8
	typeUint16
	typeInt16
	typeUint32
	typeInt32
	typeFloat32
	typeBool
	typeString
	typeArray
	typeUint64
	typeInt64
	typeFloat64
	numValueTypes
)

var valueTypeNames = [numValueTypes]string{
	"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
	"bool", "string", "array", "uint64", "int64", "float64",
}

// valueSizes is the size of each fixed-size value type, 0 for string and
// array.
var valueSizes = [numValueTypes]int64{1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8}

func valueTypeName(t uint32) string {
	if t < numValueTypes {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("type %d", t)
}

// Header is what ReadHeader keeps of a GGUF file.
type Header struct {
	Version   uint32
	BigEndian bool
	KVCount   uint64
	// Alignment is general.alignment, or 32 when the file has none.
	Alignment int64
	// Architecture is general.architecture, "" when absent. Nothing reads
	// it, so neither it nor the split counts below fail the load: a value of
	// another type, a negative count, or an architecture longer than 65,535
	// bytes is skipped and reads as absent.
	Architecture string
	// FileType is general.file_type (llama.cpp's LLAMA_FTYPE_*, e.g. 15 for
	// "mostly Q4_K_M"), or -1 when absent.
	FileType int64
	// SplitNo and SplitCount are split.no and split.count of a file that
	// gguf-split cut into parts (SplitNo counts from 0); SplitCount is 0 for
	// a file that is not a part. SplitTensors is split.tensors.count, the
	// tensors of all parts, or -1 when absent.
	SplitNo, SplitCount, SplitTensors int64
	// Tensors are the tensor infos in file order.
	Tensors []TensorInfo
	// DataOffset is the file offset of the data section: the end of the
	// tensor infos rounded up to Alignment. It may lie past the end of a
	// file without tensors.
	DataOffset int64
	// LeadingGap is the bytes of the data section before the first tensor
	// (by offset): 0 in files llama.cpp and ggml write.
	LeadingGap int64
}

// TensorInfo is one tensor info of a GGUF file, checked against the file.
type TensorInfo struct {
	Name string
	// Dims are ggml's ne, innermost first: the reverse of a PyTorch shape.
	Dims []int64
	// Type is the ggml type id; DType its canonical name (see DTypeName).
	Type  uint32
	DType string
	// Offset is the tensor's data offset relative to Header.DataOffset.
	Offset int64
	// Bytes is the size its dims and type give, -1 for an unknown type.
	Bytes int64
	// Span is the bytes from its data to the next tensor's data (by offset)
	// or to the end of the file: Bytes plus Padding plus Gap.
	Span int64
	// Padding is the part of Span after the data up to the next multiple
	// of the alignment (or the end of the file, if that comes first): what
	// a writer that aligns every tensor adds. Gap is the rest of Span, bytes
	// that neither the tensor nor the alignment explains. Both are 0 for a
	// tensor of an unknown type, whose size is its Span.
	Padding, Gap int64
	// InfoOffset is the file offset of the tensor info.
	InfoOffset int64
}

// Loader reads GGUF files.
type Loader struct{}

// Name returns "gguf".
func (Loader) Name() string { return format }

// Sniff reports whether head starts with the GGUF magic and a plausible
// version in either byte order.
func (Loader) Sniff(head []byte) bool {
	if !bytes.HasPrefix(head, []byte(magic)) {
		return false
	}
	if len(head) < 8 {
		return true
	}
	v, _ := decodeVersion(binary.LittleEndian.Uint32(head[4:]))
	return v != 0 && v <= 0xffff
}

// Load reads the tensor table: one File and its tensors in tensor-info
// order. A tensor's storage is named after it and is its data, whole blocks
// (TensorInfo.Bytes): the alignment padding after it is the file's overhead,
// and bytes beyond the padding that no tensor holds are the File's Gaps. A
// tensor of an unknown ggml type gets the dtype UnknownDTypePrefix+id, which
// the dtype table does not hold, and its whole span as its storage.
func (Loader) Load(r io.ReaderAt, size int64) (*accounting.Model, error) {
	h, err := ReadHeader(r, size)
	if err != nil {
		return nil, err
	}
	nDims := 0
	for i := range h.Tensors {
		nDims += len(h.Tensors[i].Dims)
	}
	shapes := make([]int64, nDims)
	label, labelDType := FileTypeLabel(h.FileType)
	m := &accounting.Model{
		Files:   []accounting.File{{Format: format, Label: label, LabelDType: labelDType}},
		Tensors: make([]accounting.Tensor, len(h.Tensors)),
	}
	hugepage.Advise(m.Tensors)
	f := &m.Files[0]
	if h.SplitCount > 0 {
		f.Split = &accounting.Split{No: h.SplitNo, Count: h.SplitCount, Tensors: h.SplitTensors}
	}
	if h.LeadingGap > 0 {
		f.Gaps = append(f.Gaps, accounting.Gap{Offset: h.DataOffset, Bytes: h.LeadingGap})
	}
	for i := range h.Tensors {
		if t := &h.Tensors[i]; t.Gap > 0 {
			f.Gaps = append(f.Gaps, accounting.Gap{Offset: h.DataOffset + t.Offset + t.Bytes + t.Padding, Bytes: t.Gap, After: t.Name})
		}
	}
	slices.SortFunc(f.Gaps, func(a, b accounting.Gap) int { return cmp.Compare(a.Offset, b.Offset) })
	for i := range h.Tensors {
		t := &h.Tensors[i]
		storage := t.Span
		if t.Bytes >= 0 {
			storage = t.Bytes
		}
		shape := shapes[:len(t.Dims):len(t.Dims)]
		shapes = shapes[len(t.Dims):]
		for j, d := range t.Dims {
			shape[len(shape)-1-j] = d
		}
		m.Tensors[i] = accounting.Tensor{
			Name:         t.Name,
			DType:        t.DType,
			Shape:        shape,
			Storage:      t.Name,
			StorageBytes: storage,
			DataOffset:   h.DataOffset + t.Offset,
		}
	}
	return m, nil
}

// ReadHeader reads and checks a GGUF file's header, metadata and tensor
// infos, and checks each tensor's data against the file: aligned, within the
// file, and not overlapping the next tensor. Malformed input gives an
// *accounting.FormatError; a failed read its own error.
//
// The file's size bounds the tensor count: a tensor info of 24 bytes costs
// some 800 bytes of allocation here and in Load, so a file may list 65,536
// tensors and one more per 128 bytes of its size (a real tensor has a name
// and data too); more are refused. llama.cpp sets no limit; real models have
// a few thousand tensors, and 100,000 tensors of 16 float32s each are read.
func ReadHeader(r io.ReaderAt, size int64) (*Header, error) {
	return readHeader(r, size, false)
}

// readHeader is ReadHeader, reading every tensor info field by field when
// fieldByField is set (see reader.tensorInfo).
func readHeader(r io.ReaderAt, size int64, fieldByField bool) (*Header, error) {
	if size < 0 {
		return nil, accounting.Errorf(format, -1, "", "negative file size %d", size)
	}
	p := &parser{r: newReader(r, size), fieldByField: fieldByField}
	h := &Header{Alignment: defaultAlignment, FileType: -1, SplitTensors: -1}
	if err := p.header(h); err != nil {
		return nil, err
	}
	if err := p.metadata(h); err != nil {
		return nil, err
	}
	if err := p.tensorInfos(h); err != nil {
		return nil, err
	}
	if err := checkLayout(h, size); err != nil {
		return nil, err
	}
	return h, nil
}
