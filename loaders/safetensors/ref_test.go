package safetensors

// The reader as it was before the hand-written scanner (encoding/json's
// token stream and a map per entry), kept as the reference that
// FuzzScannerEquivalence compares the scanner with: the same tensors, or
// the same error, for every input.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// refParseHeader checks the JSON header (which starts at file offset 8)
// against the data buffer, from file offset dataStart to the end of the
// size-byte file, and returns its tensors in data order.
func refParseHeader(header []byte, dataStart, size int64) ([]accounting.Tensor, error) {
	if !utf8.Valid(header) {
		return nil, accounting.Errorf(format, 8+int64(firstInvalidUTF8(header)), "", "header: invalid utf-8")
	}
	// Decode the header as a stream to keep each key's offset for errors
	// and to see duplicate keys. The decoder stops at the first syntax
	// error, which syntaxError then places.
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, refJSONError(header, err, 0)
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
			return nil, refJSONError(header, err, 0)
		}
		name, ok := tok.(string) // the decoder allows only strings as keys
		if !ok {
			return nil, accounting.Errorf(format, 8+dec.InputOffset(), "", "header: invalid json key")
		}
		off := refValueStart(header, dec.InputOffset())
		if seen[name] {
			return nil, accounting.Errorf(format, 8+off, name, "duplicate key in header")
		}
		seen[name] = true
		if name == metadataKey {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, refJSONError(header, err, off)
			}
			continue
		}
		// Fields stay raw JSON so that every number is checked to be an
		// exact integer (a float64 would round offsets beyond 2^53), and
		// matched case-sensitively as the specification's keys are.
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, refJSONError(header, err, off)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			var typ *json.UnmarshalTypeError
			if errors.As(err, &typ) {
				return nil, accounting.Errorf(format, 8+off, name, "entry: want an object, got a json %s", typ.Value)
			}
			return nil, refJSONError(header, err, off)
		}
		if key := refRepeated(raw); key != "" {
			return nil, accounting.Errorf(format, 8+off, name, "%s: given twice in one entry", key)
		}
		t, err := refCheckEntry(name, fields, dataStart, size)
		if err != nil {
			return nil, accounting.Errorf(format, 8+off, name, "%s", err)
		}
		tensors = append(tensors, t)
		at = append(at, 8+off)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, refJSONError(header, err, 0)
	}
	if _, err := dec.Token(); err != io.EOF { // anything after it
		return nil, syntaxError(header)
	}
	sort.Stable(refByData{tensors, at})
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

// refRepeated returns the first of an entry's fields (dtype, shape,
// data_offsets) that its object gives twice, or "": the safetensors
// library refuses such an entry, where a map keeps the last value.
func refRepeated(raw json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		key, _ := tok.(string)
		switch key {
		case "dtype", "shape", "data_offsets":
			if seen[key] {
				return key
			}
			seen[key] = true
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return ""
		}
	}
	return ""
}

// refCheckEntry validates the fields of one tensor entry against the data
// buffer, from file offset dataStart to the end of the size-byte file. Its
// errors name the field and are wrapped by the caller.
func refCheckEntry(name string, fields map[string]json.RawMessage, dataStart, size int64) (accounting.Tensor, error) {
	var none accounting.Tensor
	rawDType, ok := fields["dtype"]
	if !ok {
		return none, errors.New("dtype: missing")
	}
	dtype, ok := refJSONString(rawDType)
	if !ok {
		return none, fmt.Errorf("dtype: want a string, got %s", short(rawDType))
	}
	rawShape, err := refArray(fields, "shape")
	if err != nil {
		return none, err
	}
	rawOffsets, err := refArray(fields, "data_offsets")
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

	dims, rank := refElements(rawShape, maxRank)
	if rank > maxRank {
		return none, fmt.Errorf("shape: %d dimensions, more than %d", rank, maxRank)
	}
	shape := make([]int64, rank)
	for i, raw := range dims {
		s, ok := refJSONInt(raw)
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

	offsets, n := refElements(rawOffsets, 2)
	if n != 2 {
		return none, fmt.Errorf("data_offsets: want [begin, end], got %d values", n)
	}
	var off [2]uint64
	for i, raw := range offsets {
		s, ok := refJSONInt(raw)
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

// refJSONInt returns raw, a JSON value, as an integer literal: an optional
// minus sign and digits. JSON's grammar already excludes leading zeros.
func refJSONInt(raw json.RawMessage) (string, bool) {
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

// refValueStart returns the header offset of the value that follows the key
// ending at off: past whitespace and the colon.
func refValueStart(header []byte, off int64) int64 {
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

// refJSONError reports an error of the decoder; at is the header offset of
// the value it was decoding. The decoder stops at the header's first
// syntax error, but counts the offsets of its SyntaxErrors from the start
// of the value and says io.ErrUnexpectedEOF for a header that stops early:
// syntaxError places that error in the header.
func refJSONError(header []byte, err error, at int64) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		if !json.Valid(header) {
			return syntaxError(header)
		}
	}
	return accounting.Errorf(format, 8+at, "", "header: invalid json: %v", err)
}

// array returns the JSON array fields[key], raw.
func refArray(fields map[string]json.RawMessage, key string) ([]byte, error) {
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
func refElements(raw []byte, limit int) ([][]byte, int) {
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

// refJSONString returns the JSON string raw, unquoted.
func refJSONString(raw json.RawMessage) (string, bool) {
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

type refByData struct {
	t  []accounting.Tensor
	at []int64
}

func (b refByData) Len() int { return len(b.t) }
func (b refByData) Less(i, j int) bool {
	x, y := b.t[i], b.t[j]
	return x.DataOffset < y.DataOffset || x.DataOffset == y.DataOffset && x.StorageBytes < y.StorageBytes
}
func (b refByData) Swap(i, j int) {
	b.t[i], b.t[j] = b.t[j], b.t[i]
	b.at[i], b.at[j] = b.at[j], b.at[i]
}
