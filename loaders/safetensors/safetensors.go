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
// implementation rejects them); the accounting reports them as overhead.
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

// tensor is a checked entry with the file offset of its header object.
type tensor struct {
	t          accounting.Tensor
	begin, end int64 // relative to the data buffer
	at         int64 // file offset of the entry, for errors
}

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
	dataStart := 8 + int64(n)
	tensors, err := parseHeader(header, size-dataStart)
	if err != nil {
		return nil, err
	}
	m := &accounting.Model{
		Files:   []accounting.File{{Format: format}},
		Tensors: make([]accounting.Tensor, len(tensors)),
	}
	for i, t := range tensors {
		t.t.DataOffset = dataStart + t.begin
		m.Tensors[i] = t.t
	}
	return m, nil
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

// parseHeader checks the JSON header (which starts at file offset 8) against
// a data buffer of dataLen bytes and returns its tensors in data order.
func parseHeader(header []byte, dataLen int64) ([]tensor, error) {
	if !utf8.Valid(header) {
		return nil, accounting.Errorf(format, 8+int64(firstInvalidUTF8(header)), "", "header: invalid utf-8")
	}
	if !json.Valid(header) {
		return nil, syntaxError(header)
	}
	// The header is valid JSON; decode it as a stream to keep each key's
	// offset for errors and to see duplicate keys.
	dec := json.NewDecoder(bytes.NewReader(header))
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError(err, 0)
	}
	if tok != json.Delim('{') {
		return nil, accounting.Errorf(format, 8, "", "header: not a json object")
	}
	var tensors []tensor
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonError(err, 0)
		}
		name, ok := tok.(string) // the decoder allows only strings as keys
		if !ok {
			return nil, accounting.Errorf(format, 8+dec.InputOffset(), "", "header: invalid json key")
		}
		at := valueStart(header, dec.InputOffset())
		if seen[name] {
			return nil, accounting.Errorf(format, 8+at, name, "duplicate key in header")
		}
		seen[name] = true
		if name == metadataKey {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, jsonError(err, at)
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
				return nil, accounting.Errorf(format, 8+at, name, "entry: want an object, got a json %s", typ.Value)
			}
			return nil, jsonError(err, at)
		}
		t, err := checkEntry(name, fields, dataLen)
		if err != nil {
			return nil, accounting.Errorf(format, 8+at, name, "%s", err)
		}
		t.at = 8 + at
		tensors = append(tensors, t)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, jsonError(err, 0)
	}
	sort.SliceStable(tensors, func(i, j int) bool {
		a, b := tensors[i], tensors[j]
		return a.begin < b.begin || a.begin == b.begin && a.end < b.end
	})
	// Tensors sorted by begin overlap when one starts before the furthest
	// end so far. Empty tensors share no bytes with anything.
	last := -1
	for i, t := range tensors {
		if t.begin == t.end {
			continue
		}
		if last >= 0 && t.begin < tensors[last].end {
			p := tensors[last]
			return nil, accounting.Errorf(format, t.at, t.t.Name, "data_offsets [%d, %d] overlap those of tensor %q [%d, %d]",
				t.begin, t.end, p.t.Name, p.begin, p.end)
		}
		if last < 0 || t.end > tensors[last].end {
			last = i
		}
	}
	return tensors, nil
}

// checkEntry validates the fields of one tensor entry against a data buffer
// of dataLen bytes. Its errors name the field and are wrapped by the caller.
func checkEntry(name string, fields map[string]json.RawMessage, dataLen int64) (tensor, error) {
	rawDType, ok := fields["dtype"]
	if !ok {
		return tensor{}, errors.New("dtype: missing")
	}
	dtype, ok := jsonString(rawDType)
	if !ok {
		return tensor{}, fmt.Errorf("dtype: want a string, got %s", short(rawDType))
	}
	dims, err := array(fields, "shape")
	if err != nil {
		return tensor{}, err
	}
	offsets, err := array(fields, "data_offsets")
	if err != nil {
		return tensor{}, err
	}

	canon, ok := dtypeNames[dtype]
	if !ok {
		return tensor{}, fmt.Errorf("dtype: unknown dtype %q", dtype)
	}
	dt, ok := accounting.LookupDType(canon)
	if !ok {
		return tensor{}, fmt.Errorf("dtype: %q maps to %q, which the dtype table lacks", dtype, canon)
	}

	shape := make([]int64, len(dims))
	for i, raw := range dims {
		s, ok := jsonInt(raw)
		if !ok {
			return tensor{}, fmt.Errorf("shape[%d]: %s is not an integer", i, short(raw))
		}
		d, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return tensor{}, fmt.Errorf("shape[%d]: %s is out of range", i, short(raw))
		}
		shape[i] = d
	}
	numel, err := accounting.Numel(shape)
	if err != nil {
		return tensor{}, fmt.Errorf("shape: %v", err)
	}
	want, err := dt.Bytes(numel)
	if err != nil {
		return tensor{}, fmt.Errorf("shape: %v", err)
	}

	if len(offsets) != 2 {
		return tensor{}, fmt.Errorf("data_offsets: want [begin, end], got %d values", len(offsets))
	}
	var off [2]uint64
	for i, raw := range offsets {
		s, ok := jsonInt(raw)
		if !ok || s[0] == '-' {
			return tensor{}, fmt.Errorf("data_offsets[%d]: %s is not a non-negative integer", i, short(raw))
		}
		if off[i], err = strconv.ParseUint(s, 10, 64); err != nil {
			return tensor{}, fmt.Errorf("data_offsets[%d]: %s is out of range", i, short(raw))
		}
	}
	begin, end := off[0], off[1]
	switch {
	case begin > end:
		return tensor{}, fmt.Errorf("data_offsets: begin %d is after end %d", begin, end)
	case end > uint64(dataLen):
		return tensor{}, fmt.Errorf("data_offsets: end %d is past the %d-byte data buffer", end, dataLen)
	case int64(end-begin) != want:
		return tensor{}, fmt.Errorf("data_offsets: [%d, %d] holds %d bytes, but shape %v of %s needs %d",
			begin, end, end-begin, shape, dtype, want)
	}
	return tensor{
		t: accounting.Tensor{
			Name:         name,
			DType:        canon,
			Shape:        shape,
			Storage:      name,
			StorageBytes: want,
		},
		begin: int64(begin),
		end:   int64(end),
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

// jsonError reports a decoder error on a header that passed json.Valid,
// which should not happen; at is the header offset of the value.
func jsonError(err error, at int64) error {
	return accounting.Errorf(format, 8+at, "", "header: invalid json: %v", err)
}

// array returns the JSON array fields[key] as raw elements.
func array(fields map[string]json.RawMessage, key string) ([]json.RawMessage, error) {
	raw, ok := fields[key]
	if !ok {
		return nil, fmt.Errorf("%s: missing", key)
	}
	if len(raw) == 0 || raw[0] != '[' {
		return nil, fmt.Errorf("%s: want an array, got %s", key, short(raw))
	}
	// Fast path: an array of bare numbers, the usual case, splits at its
	// commas. Anything else (strings, nested values) goes through the
	// decoder so that error messages show the elements as written.
	inner := bytes.TrimSpace(raw[1 : len(raw)-1])
	if len(inner) == 0 {
		return []json.RawMessage{}, nil
	}
	if bytes.IndexFunc(inner, func(r rune) bool { return !strings.ContainsRune("0123456789-+.eE, \t\r\n", r) }) < 0 {
		a := make([]json.RawMessage, 0, bytes.Count(inner, []byte(","))+1)
		for v := range bytes.SplitSeq(inner, []byte(",")) {
			a = append(a, bytes.TrimSpace(v))
		}
		return a, nil
	}
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("%s: want an array, got %s", key, short(raw))
	}
	return a, nil
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
