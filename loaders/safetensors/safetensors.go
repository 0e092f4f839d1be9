// Package safetensors reads the tensor table of safetensors files.
//
// A safetensors file is an 8-byte little-endian header length N, N bytes of
// JSON header and a data buffer:
//
//	{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
//	 "__metadata__": {"key": "value"}}
//
// data_offsets are relative to the buffer, which starts at 8+N.
//
// The reader is hand-written rather than taken from a library because
// qinsaudit needs only the header, and needs it read defensively: one
// bounded read of at most MaxHeaderBytes, every header field checked before
// it is used, no tensor data read, and every defect reported as an
// *accounting.FormatError with the file offset of the entry at fault.
// Gaps between tensors and bytes after the last one are allowed (the reference
// implementation rejects them): the File's Gaps record them, the accounting
// counts them as overhead and reports them in a finding. Overlapping tensors
// are an error.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// format is the Format of the model's File and of every FormatError.
const format = "safetensors"

// MaxHeaderBytes caps the JSON header, as the reference implementation does
// (100,000,000 bytes).
const MaxHeaderBytes = 100_000_000

// metadataKey is the header key of the free-form string map that is not a
// tensor.
const metadataKey = "__metadata__"

// dtypeNames maps every safetensors dtype qinsaudit's dtype table holds to
// its canonical name.
var dtypeNames = map[string]string{
	"F64":         "float64",
	"F32":         "float32",
	"F16":         "float16",
	"BF16":        "bfloat16",
	"F8_E4M3":     "float8_e4m3fn",
	"F8_E5M2":     "float8_e5m2",
	"F8_E4M3FNUZ": "float8_e4m3fnuz",
	"F8_E5M2FNUZ": "float8_e5m2fnuz",
	"C64":         "complex64",
	"F8_E8M0":     "float8_e8m0fnu",
	"F4":          "float4_e2m1fn",
	"F6_E2M3":     "float6_e2m3fn",
	"F6_E3M2":     "float6_e3m2fn",
	"I64":         "int64",
	"I32":         "int32",
	"I16":         "int16",
	"I8":          "int8",
	"U64":         "uint64",
	"U32":         "uint32",
	"U16":         "uint16",
	"U8":          "uint8",
	"BOOL":        "bool",
}

// Loader reads safetensors files.
type Loader struct{}

// Name returns "safetensors".
func (Loader) Name() string { return format }

// Sniff reports whether head looks like a safetensors file: a header length
// of at least 2 and at most MaxHeaderBytes, followed by '{'.
func (Loader) Sniff(head []byte) bool {
	if len(head) < 9 {
		return false
	}
	n := binary.LittleEndian.Uint64(head)
	return n >= 2 && n <= MaxHeaderBytes && head[8] == '{'
}

// maxRank bounds the dimensions of a shape, as NumPy 2 does (NPY_MAXDIMS),
// so that a header cannot have the loader parse a shape of millions.
const maxRank = 64

// Load reads the header of the safetensors file r of size bytes. It reads
// the 8-byte length and the header and nothing else.
func (Loader) Load(r io.ReaderAt, size int64) (*accounting.Model, error) {
	var lenBuf [8]byte
	if size < int64(len(lenBuf)) {
		return nil, accounting.Errorf(format, 0, "", "header length: file of %d bytes is shorter than 8", size)
	}
	if err := readFull(r, lenBuf[:], 0); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderBytes {
		return nil, accounting.Errorf(format, 0, "", "header length %d is above the %d-byte cap", n, MaxHeaderBytes)
	}
	if int64(n) > size-8 {
		return nil, accounting.Errorf(format, 0, "", "header length %d runs past the end of the %d-byte file", n, size)
	}
	header := make([]byte, n)
	if err := readFull(r, header, 8); err != nil {
		return nil, err
	}
	tensors, err := parseHeader(header, 8+int64(n), size)
	if err != nil {
		return nil, err
	}
	f := accounting.File{Format: format, Gaps: gaps(tensors, 8+int64(n), size)}
	return &accounting.Model{Files: []accounting.File{f}, Tensors: tensors}, nil
}

// readFull reads len(buf) bytes at off. A short read is a FormatError: the
// caller's size promised those bytes.
func readFull(r io.ReaderAt, buf []byte, off int64) error {
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return accounting.Errorf(format, off+int64(n), "", "header: file ends after %d of %d bytes", n, len(buf))
	}
	return fmt.Errorf("safetensors: reading header: %w", err)
}

// parseHeader checks the JSON header (which starts at file offset 8)
// against the data buffer, from file offset dataStart to the end of the
// size-byte file, and returns its tensors in data order.
func parseHeader(header []byte, dataStart, size int64) ([]accounting.Tensor, error) {
	if !utf8.Valid(header) {
		return nil, accounting.Errorf(format, 8+int64(firstInvalidUTF8(header)), "", "header: invalid utf-8")
	}
	// Decode the header as a stream to keep each key's offset for errors
	// and to see duplicate keys. The decoder stops at the first syntax
	// error, which syntaxError then places.
	dec := json.NewDecoder(bytes.NewReader(header))
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError(header, err, 0)
	}
	if tok != json.Delim('{') {
		return nil, accounting.Errorf(format, 8, "", "header: not a json object")
	}
	var tensors []accounting.Tensor
	var at []int64 // file offset of each tensor's entry, for errors
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonError(header, err, 0)
		}
		name, ok := tok.(string) // the decoder allows only strings as keys
		if !ok {
			return nil, accounting.Errorf(format, 8+dec.InputOffset(), "", "header: invalid json key")
		}
		off := valueStart(header, dec.InputOffset())
		if seen[name] {
			return nil, accounting.Errorf(format, 8+off, name, "duplicate key in header")
		}
		seen[name] = true
		if name == metadataKey {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, jsonError(header, err, off)
			}
			continue
		}
		// Fields stay raw JSON so that every number is checked to be an
		// exact integer (a float64 would round offsets beyond 2^53), and
		// matched case-sensitively as the specification's keys are.
		var fields map[string]json.RawMessage
		if err := dec.Decode(&fields); err != nil {
			var typ *json.UnmarshalTypeError
			if errors.As(err, &typ) {
				return nil, accounting.Errorf(format, 8+off, name, "entry: want an object, got a json %s", typ.Value)
			}
			return nil, jsonError(header, err, off)
		}
		t, err := checkEntry(name, fields, dataStart, size)
		if err != nil {
			return nil, accounting.Errorf(format, 8+off, name, "%s", err)
		}
		tensors = append(tensors, t)
		at = append(at, 8+off)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, jsonError(header, err, 0)
	}
	if _, err := dec.Token(); err != io.EOF { // anything after it
		return nil, syntaxError(header)
	}
	sort.Stable(byData{tensors, at})
	// Tensors sorted by begin overlap when one starts before the furthest
	// end so far. Empty tensors share no bytes with anything.
	last := -1
	for i, t := range tensors {
		if t.StorageBytes == 0 {
			continue
		}
		if last >= 0 && t.DataOffset < endOf(tensors[last]) {
			p := tensors[last]
			return nil, accounting.Errorf(format, at[i], t.Name, "data_offsets [%d, %d] overlap those of tensor %q [%d, %d]",
				t.DataOffset-dataStart, endOf(t)-dataStart, p.Name, p.DataOffset-dataStart, endOf(p)-dataStart)
		}
		if last < 0 || endOf(t) > endOf(tensors[last]) {
			last = i
		}
	}
	return tensors, nil
}

// gaps returns the runs of the data buffer, from file offset dataStart to
// size, that no tensor holds: between tensors and after the last one. The
// tensors are in data order and do not overlap (parseHeader). The reference
// implementation wants the buffer packed, every byte held by one tensor.
func gaps(tensors []accounting.Tensor, dataStart, size int64) []accounting.Gap {
	var out []accounting.Gap
	pos, after := dataStart, ""
	for _, t := range tensors {
		if t.StorageBytes == 0 {
			continue
		}
		if t.DataOffset > pos {
			out = append(out, accounting.Gap{Offset: pos, Bytes: t.DataOffset - pos, After: after})
		}
		pos, after = endOf(t), t.Name
	}
	if size > pos {
		out = append(out, accounting.Gap{Offset: pos, Bytes: size - pos, After: after})
	}
	return out
}

// endOf is the file offset just past a tensor's bytes.
func endOf(t accounting.Tensor) int64 { return t.DataOffset + t.StorageBytes }

// byData sorts tensors, and the offsets of their entries with them, by
// where their bytes start and end.
type byData struct {
	t  []accounting.Tensor
	at []int64
}

func (b byData) Len() int { return len(b.t) }
func (b byData) Less(i, j int) bool {
	x, y := b.t[i], b.t[j]
	return x.DataOffset < y.DataOffset || x.DataOffset == y.DataOffset && x.StorageBytes < y.StorageBytes
}
func (b byData) Swap(i, j int) {
	b.t[i], b.t[j] = b.t[j], b.t[i]
	b.at[i], b.at[j] = b.at[j], b.at[i]
}

// checkEntry validates the fields of one tensor entry against the data
// buffer, from file offset dataStart to the end of the size-byte file. Its
// errors name the field and are wrapped by the caller.
func checkEntry(name string, fields map[string]json.RawMessage, dataStart, size int64) (accounting.Tensor, error) {
	var none accounting.Tensor
	rawDType, ok := fields["dtype"]
	if !ok {
		return none, errors.New("dtype: missing")
	}
	dtype, ok := jsonString(rawDType)
	if !ok {
		return none, fmt.Errorf("dtype: want a string, got %s", short(rawDType))
	}
	rawShape, err := array(fields, "shape")
	if err != nil {
		return none, err
	}
	rawOffsets, err := array(fields, "data_offsets")
	if err != nil {
		return none, err
	}

	canon, ok := dtypeNames[dtype]
	if !ok {
		return none, fmt.Errorf("dtype: unknown dtype %q", dtype)
	}
	dt, ok := accounting.LookupDType(canon)
	if !ok {
		return none, fmt.Errorf("dtype: %q maps to %q, which the dtype table lacks", dtype, canon)
	}

	dims, rank := elements(rawShape, maxRank)
	if rank > maxRank {
		return none, fmt.Errorf("shape: %d dimensions, more than %d", rank, maxRank)
	}
	shape := make([]int64, rank)
	for i, raw := range dims {
		s, ok := jsonInt(raw)
		if !ok {
			return none, fmt.Errorf("shape[%d]: %s is not an integer", i, short(raw))
		}
		if shape[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			return none, fmt.Errorf("shape[%d]: %s is out of range", i, short(raw))
		}
	}
	numel, err := accounting.Numel(shape)
	if err != nil {
		return none, fmt.Errorf("shape: %v", err)
	}
	want, err := dt.Bytes(numel)
	if err != nil {
		return none, fmt.Errorf("shape: %v", err)
	}

	offsets, n := elements(rawOffsets, 2)
	if n != 2 {
		return none, fmt.Errorf("data_offsets: want [begin, end], got %d values", n)
	}
	var off [2]uint64
	for i, raw := range offsets {
		s, ok := jsonInt(raw)
		if !ok || s[0] == '-' {
			return none, fmt.Errorf("data_offsets[%d]: %s is not a non-negative integer", i, short(raw))
		}
		if off[i], err = strconv.ParseUint(s, 10, 64); err != nil {
			return none, fmt.Errorf("data_offsets[%d]: %s is out of range", i, short(raw))
		}
	}
	begin, end := off[0], off[1]
	switch dataLen := uint64(size - dataStart); {
	case begin > end:
		return none, fmt.Errorf("data_offsets: begin %d is after end %d", begin, end)
	case end > dataLen:
		return none, fmt.Errorf("data_offsets: end %d is past the %d-byte data buffer", end, dataLen)
	case int64(end-begin) != want:
		return none, fmt.Errorf("data_offsets: [%d, %d] holds %d bytes, but shape %v of %s needs %d",
			begin, end, end-begin, shape, dtype, want)
	}
	return accounting.Tensor{
		Name:         name,
		DType:        canon,
		Shape:        shape,
		Storage:      name,
		StorageBytes: want,
		DataOffset:   dataStart + int64(begin),
	}, nil
}

// jsonInt returns raw, a JSON value, as an integer literal: an optional
// minus sign and digits. JSON's grammar already excludes leading zeros.
func jsonInt(raw json.RawMessage) (string, bool) {
	s := string(bytes.TrimSpace(raw))
	digits := s
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if digits == "" {
		return "", false
	}
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	return s, true
}

// valueStart returns the header offset of the value that follows the key
// ending at off: past whitespace and the colon.
func valueStart(header []byte, off int64) int64 {
	for off < int64(len(header)) {
		switch header[off] {
		case ' ', '\t', '\r', '\n', ':':
			off++
		default:
			return off
		}
	}
	return off
}

// syntaxError reports the first syntax error of an invalid JSON header at
// the offending byte, or at the header's end when it stops early.
func syntaxError(header []byte) error {
	err := json.Unmarshal(header, new(any)) // checks the syntax before decoding
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		return accounting.Errorf(format, 8, "", "header: invalid json: %v", err)
	}
	// Offset counts the bytes read, the offending one included.
	pos := syn.Offset - 1
	if strings.HasPrefix(syn.Error(), "unexpected end") {
		pos = syn.Offset
	}
	pos = max(0, min(pos, int64(len(header))))
	return accounting.Errorf(format, 8+pos, "", "header: invalid json at header byte %d: %v", pos, syn)
}

// jsonError reports an error of the decoder; at is the header offset of
// the value it was decoding. The decoder stops at the header's first
// syntax error, but counts the offsets of its SyntaxErrors from the start
// of the value and says io.ErrUnexpectedEOF for a header that stops early:
// syntaxError places that error in the header.
func jsonError(header []byte, err error, at int64) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		if !json.Valid(header) {
			return syntaxError(header)
		}
	}
	return accounting.Errorf(format, 8+at, "", "header: invalid json: %v", err)
}

// array returns the JSON array fields[key], raw.
func array(fields map[string]json.RawMessage, key string) ([]byte, error) {
	raw, ok := fields[key]
	if !ok {
		return nil, fmt.Errorf("%s: missing", key)
	}
	if len(raw) == 0 || raw[0] != '[' {
		return nil, fmt.Errorf("%s: want an array, got %s", key, short(raw))
	}
	return raw, nil
}

// elements splits raw, a valid JSON array, into its elements as written,
// returning at most limit of them and the count of all: a long array costs
// a scan, not an element each.
func elements(raw []byte, limit int) ([][]byte, int) {
	var elems [][]byte
	n := 0
	add := func(e []byte) {
		if n < limit {
			elems = append(elems, bytes.TrimSpace(e))
		}
		n++
	}
	depth, start := 0, 1
	inString, escaped := false, false
	for i := 1; i < len(raw); i++ {
		c := raw[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
		case ']', '}':
			if depth > 0 {
				depth--
				continue
			}
			// The array's closing bracket: [] and [ ] hold nothing.
			if e := raw[start:i]; n > 0 || len(bytes.TrimSpace(e)) > 0 {
				add(e)
			}
			return elems, n
		case ',':
			if depth == 0 {
				add(raw[start:i])
				start = i + 1
			}
		}
	}
	return elems, n
}

// jsonString returns the JSON string raw, unquoted.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true // no escapes to undo
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err == nil
}

// short returns a JSON value for an error message, cut to 40 bytes.
func short(raw json.RawMessage) string {
	if len(raw) > 40 {
		n := 37
		for n > 0 && !utf8.RuneStart(raw[n]) {
			n--
		}
		return string(raw[:n]) + "..."
	}
	return string(raw)
}

// firstInvalidUTF8 returns the index of the first byte of b that does not
// start a valid UTF-8 sequence.
func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}
