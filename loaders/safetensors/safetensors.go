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
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/hugepage"
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
	hugepage.Advise(header)
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
// size-byte file, and returns its tensors in data order. Their names may
// share header's bytes: the caller must not write header afterwards.
//
// The header is read by a hand-written scanner, not encoding/json: the
// header is the format (a flat object of flat objects whose fields are a
// string and two arrays of integers), and encoding/json's token stream and
// a map of raw fields per entry cost ~5 of the ~6 us per tensor a load
// took (issue 11), with a map entry, a key string and a raw slice per
// field. The scanner reads each entry's three fields in place and makes
// nothing per tensor but its name and shape. Whatever is not valid JSON is
// handed to encoding/json (syntaxError) to place and describe, so errors
// read as they did; FuzzScannerEquivalence checks the scanner against the
// encoding/json reader it replaced, result for result and error for error.
func parseHeader(header []byte, dataStart, size int64) ([]accounting.Tensor, error) {
	if !utf8.Valid(header) {
		return nil, accounting.Errorf(format, 8+int64(firstInvalidUTF8(header)), "", "header: invalid utf-8")
	}
	s := scanner{h: header}
	s.ws()
	if s.pos >= len(header) || header[s.pos] != '{' {
		return nil, notObject(header)
	}
	s.pos++
	// Every entry is an object, so counting the '{' sizes the tensors (an
	// entry takes at least 50 bytes: a count inflated by names or metadata
	// stays a fraction of the header). A byte is counted at memory speed,
	// where counting the "data_offsets" keys took a seventh of a load.
	n := min(bytes.Count(header, []byte{'{'}), len(header)/50+1)
	tensors := make([]accounting.Tensor, 0, n)
	hugepage.Advise(tensors)
	at := make([]int64, 0, n) // file offset of each tensor's entry, for errors
	// The keys must be unique. The safetensors library writes them sorted
	// (by dtype, then name), which a KeyIndex checks at a string
	// comparison a key, where a map took a third of a load.
	var names accounting.KeyIndex
	names.Grow(n)
	var hasMetadata bool
	sc := &shapes{n: n}
	// A header of many entries, most of it tensor entries, is the string
	// the names are cut from: no allocation a tensor (one a tensor was a
	// tenth of a load, and as many objects for the collector). It is the
	// header's own bytes, not a copy (10 MB at 100,000 tensors): header
	// belongs to this load, which reads it once and never writes it. A
	// header of a few tensors and much metadata is not kept whole for them.
	var text string
	if n >= 64 && len(header) <= 512*n {
		text = unsafe.String(unsafe.SliceData(header), len(header))
	}
	s.ws()
	if s.peek('}') {
		s.pos++
	} else {
		for {
			kStart, kEnd, esc, ok := s.str()
			if !ok {
				return nil, syntaxError(header)
			}
			var name string
			if text != "" && !esc {
				name = text[kStart:kEnd]
			} else if name, ok = stringAt(header, kStart, kEnd, esc); !ok {
				return nil, syntaxError(header)
			}
			off := valueStart(header, int64(s.pos))
			var dup bool
			if name == metadataKey {
				dup, hasMetadata = hasMetadata, true
			} else if _, dup = names.Index(name); !dup {
				names.Add(name)
			}
			if dup {
				return nil, accounting.Errorf(format, 8+off, name, "duplicate key in header")
			}
			s.ws()
			if !s.peek(':') {
				return nil, syntaxError(header)
			}
			s.pos++
			s.ws()
			if name == metadataKey {
				// encoding/json's decoder counted the depth of a
				// value from the value: so does the scanner.
				if !s.value(1) {
					return nil, syntaxError(header)
				}
			} else {
				vStart := s.pos
				e, ok := s.entry(&sc.dims)
				if !ok {
					return nil, syntaxError(header)
				}
				if !e.object {
					return nil, notEntryObject(header[vStart:s.pos], name, off)
				}
				t, err := checkEntry(name, &e, sc, dataStart, size)
				if err != nil {
					return nil, accounting.Errorf(format, 8+off, name, "%s", err)
				}
				tensors = append(tensors, t)
				at = append(at, 8+off)
			}
			s.ws()
			if s.peek(',') {
				s.pos++
				s.ws()
				continue
			}
			if s.peek('}') {
				s.pos++
				break
			}
			return nil, syntaxError(header)
		}
	}
	s.ws()
	if s.pos != len(header) { // anything after the object
		return nil, syntaxError(header)
	}
	names = accounting.KeyIndex{}
	if len(tensors) == 0 {
		return nil, nil // as encoding/json's reader did
	}
	at = sortByData(tensors, at)
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

// sortByData sorts tensors by where their bytes start and end, ties in
// header order (a stable sort), and returns the offsets of their entries
// in the new order. A header already in data order is left as it is.
func sortByData(tensors []accounting.Tensor, at []int64) []int64 {
	less := func(x, y *accounting.Tensor) bool {
		return x.DataOffset < y.DataOffset || x.DataOffset == y.DataOffset && x.StorageBytes < y.StorageBytes
	}
	sorted := true
	for i := 1; i < len(tensors) && sorted; i++ {
		sorted = !less(&tensors[i], &tensors[i-1])
	}
	if sorted {
		return at
	}
	// Sort a permutation (4 bytes a tensor, not 168), ties broken by
	// header order, then move the tensors along its cycles in place.
	perm := make([]int32, len(tensors))
	for i := range perm {
		perm[i] = int32(i)
	}
	slices.SortFunc(perm, func(a, b int32) int {
		x, y := &tensors[a], &tensors[b]
		switch {
		case less(x, y):
			return -1
		case less(y, x):
			return 1
		}
		return cmp.Compare(a, b)
	})
	out := make([]int64, len(at))
	for i, p := range perm {
		out[i] = at[p]
	}
	for i := range perm {
		if perm[i] < 0 {
			continue
		}
		tmp := tensors[i]
		j := i
		for {
			k := int(perm[j])
			perm[j] = -1
			if k == i {
				tensors[j] = tmp
				break
			}
			tensors[j] = tensors[k]
			j = k
		}
	}
	return out
}

// notObject is the error of a header that is not a JSON object, as
// encoding/json's decoder sees it.
func notObject(header []byte) error {
	// UseNumber: a top-level number is "not a json object", even one
	// beyond float64's range.
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		if !json.Valid(header) {
			return syntaxError(header)
		}
		return accounting.Errorf(format, 8, "", "header: invalid json: %v", err)
	}
	return accounting.Errorf(format, 8, "", "header: not a json object")
}

// notEntryObject is the error of a tensor entry that is valid JSON but not
// an object, worded as encoding/json words it.
func notEntryObject(raw []byte, name string, off int64) error {
	var typ *json.UnmarshalTypeError
	if err := json.Unmarshal(raw, new(map[string]json.RawMessage)); errors.As(err, &typ) {
		return accounting.Errorf(format, 8+off, name, "entry: want an object, got a json %s", typ.Value)
	}
	return accounting.Errorf(format, 8+off, name, "entry: want an object")
}

// maxDepth is encoding/json's limit on nesting, which the scanner keeps so
// that it accepts what encoding/json accepts.
const maxDepth = 10000

// scanner reads JSON from h at pos. Its methods report false on anything
// that is not valid JSON, leaving pos where they stopped.
type scanner struct {
	h   []byte
	pos int
}

func (s *scanner) peek(c byte) bool { return s.pos < len(s.h) && s.h[s.pos] == c }

// ws skips JSON whitespace. It is called a score of times per tensor, and
// most often there is none: that test is inlined.
func (s *scanner) ws() {
	if s.pos < len(s.h) && s.h[s.pos] > ' ' {
		return
	}
	s.wsRun()
}

func (s *scanner) wsRun() {
	for s.pos < len(s.h) {
		switch s.h[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// str scans a string and returns the bounds of its content, between the
// quotes, and whether it holds escapes.
func (s *scanner) str() (start, end int, esc, ok bool) {
	h := s.h
	if s.pos >= len(h) || h[s.pos] != '"' {
		return 0, 0, false, false
	}
	i := s.pos + 1
	start = i
	for i < len(h) {
		i = plainRun(h, i)
		if i >= len(h) {
			break
		}
		switch c := h[i]; {
		case c == '"':
			s.pos = i + 1
			return start, i, esc, true
		case c == '\\':
			esc = true
			if i+1 >= len(h) {
				return 0, 0, false, false
			}
			switch h[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(h) {
					return 0, 0, false, false
				}
				for _, x := range h[i+2 : i+6] {
					if !isHex(x) {
						return 0, 0, false, false
					}
				}
				i += 6
			default:
				return 0, 0, false, false
			}
		default: // a control character
			return 0, 0, false, false
		}
	}
	return 0, 0, false, false
}

// Bytes in a word, for plainRun.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainRun returns the index of the first quote, backslash or control
// character of h from i on, or len(h). It tests 8 bytes at a time, where
// the scanner took a switch per byte, some 40 for a tensor name. A byte b
// is one of the three when b^'"' or b^'\\' is zero or b is below 0x20:
// (v-ones)&^v&highs has the high bit of a byte of v set where it is zero,
// (v-0x20*ones)&^v&highs where it is below 0x20 (0x20 <= 0x80), and
// neither flags a byte below the first that is: the lowest bit set places
// it.
func plainRun(h []byte, i int) int {
	for ; i+8 <= len(h); i += 8 {
		v := binary.LittleEndian.Uint64(h[i:])
		q := v ^ ('"' * ones)
		b := v ^ ('\\' * ones)
		if m := ((q-ones)&^q | (b-ones)&^b | (v-0x20*ones)&^v) & highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for i < len(h) && h[i] >= 0x20 && h[i] != '"' && h[i] != '\\' {
		i++
	}
	return i
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// number scans a JSON number.
func (s *scanner) number() bool {
	h, i := s.h, s.pos
	if i < len(h) && h[i] == '-' {
		i++
	}
	switch {
	case i < len(h) && h[i] == '0':
		i++
	case i < len(h) && '1' <= h[i] && h[i] <= '9':
		for i < len(h) && isDigit(h[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(h) && h[i] == '.' {
		i++
		if i >= len(h) || !isDigit(h[i]) {
			return false
		}
		for i < len(h) && isDigit(h[i]) {
			i++
		}
	}
	if i < len(h) && (h[i] == 'e' || h[i] == 'E') {
		i++
		if i < len(h) && (h[i] == '+' || h[i] == '-') {
			i++
		}
		if i >= len(h) || !isDigit(h[i]) {
			return false
		}
		for i < len(h) && isDigit(h[i]) {
			i++
		}
	}
	s.pos = i
	return true
}

// value scans any JSON value; depth is the nesting an object or array here
// would have (the header's own object is 1).
func (s *scanner) value(depth int) bool {
	if s.pos >= len(s.h) {
		return false
	}
	switch c := s.h[s.pos]; c {
	case '{', '[':
		if depth > maxDepth {
			return false
		}
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		s.pos++
		s.ws()
		if s.peek(end) {
			s.pos++
			return true
		}
		for {
			if c == '{' {
				if _, _, _, ok := s.str(); !ok {
					return false
				}
				s.ws()
				if !s.peek(':') {
					return false
				}
				s.pos++
				s.ws()
			}
			if !s.value(depth + 1) {
				return false
			}
			s.ws()
			switch {
			case s.peek(','):
				s.pos++
				s.ws()
			case s.peek(end):
				s.pos++
				return true
			default:
				return false
			}
		}
	case '"':
		_, _, _, ok := s.str()
		return ok
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	return s.number()
}

func (s *scanner) literal(word string) bool {
	if !bytes.HasPrefix(s.h[s.pos:], []byte(word)) {
		return false
	}
	s.pos += len(word)
	return true
}

// fields are the raw values of a tensor entry's fields, as written (nil
// when the entry lacks one); object is false for an entry that is not a
// JSON object.
type fields struct {
	dtype, shape, offsets []byte
	object                bool
	// rank is the length of the shape when ints read it into the dims
	// entry was given, -1 when it did not; offs are the data_offsets when
	// ints read two, nOffs -1 when it did not.
	rank, nOffs int
	offs        [2]int64
	// twice names the first field the entry gives more than once: the
	// safetensors library refuses such an entry ("duplicate field"),
	// where a map would quietly keep the last value.
	twice string
}

// entry scans a tensor entry: any JSON value, whose fields are taken when
// it is an object (a repeated field is noted in twice). A
// shape or data_offsets that is a plain array of integers is read as it is
// scanned, the shape into dims (see ints).
func (s *scanner) entry(dims *[maxRank]int64) (fields, bool) {
	if f, ok := s.canonicalEntry(dims); ok {
		return f, true
	}
	f := fields{rank: -1, nOffs: -1}
	if !s.peek('{') {
		if s.peek('n') { // null decodes to an empty map
			f.object = true
			return f, s.literal("null")
		}
		return f, s.value(1)
	}
	f.object = true
	s.pos++
	s.ws()
	if s.peek('}') {
		s.pos++
		return f, true
	}
	for {
		kStart, kEnd, esc, ok := s.str()
		if !ok {
			return f, false
		}
		s.ws()
		if !s.peek(':') {
			return f, false
		}
		s.pos++
		s.ws()
		key := s.h[kStart:kEnd]
		if esc {
			k, ok := stringAt(s.h, kStart, kEnd, true)
			if !ok {
				return f, false
			}
			key = []byte(k)
		}
		vStart := s.pos
		switch string(key) {
		case "shape":
			if f.rank = -1; s.peek('[') {
				if n, end, ok := ints(s.h, s.pos, dims[:], true); ok {
					f.rank, s.pos = n, end
				}
			}
		case "data_offsets":
			if f.nOffs = -1; s.peek('[') {
				if n, end, ok := ints(s.h, s.pos, f.offs[:], false); ok {
					f.nOffs, s.pos = n, end
				}
			}
		}
		if s.pos == vStart && !s.value(2) {
			return f, false
		}
		v := s.h[vStart:s.pos]
		var had []byte
		switch string(key) {
		case "dtype":
			had, f.dtype = f.dtype, v
		case "shape":
			had, f.shape = f.shape, v
		case "data_offsets":
			had, f.offsets = f.offsets, v
		}
		if had != nil && f.twice == "" {
			f.twice = string(key)
		}
		s.ws()
		switch {
		case s.peek(','):
			s.pos++
			s.ws()
		case s.peek('}'):
			s.pos++
			return f, true
		default:
			return f, false
		}
	}
}

// The fields of an entry as the safetensors library writes them (serde's
// order, no whitespace): {"dtype":"F32","shape":[4,4],"data_offsets":[0,64]}.
const (
	canonDType   = `{"dtype":"`
	canonShape   = `","shape":`
	canonOffsets = `,"data_offsets":`
)

// canonicalEntry reads an entry written exactly as the safetensors library
// writes one, its dtype a plain name of letters and digits and its arrays
// ones ints reads, and leaves pos past it; for anything else it returns
// false and leaves pos where it was, for entry's general scan. The fields
// are those the general scan takes from such an entry (FuzzScannerEquivalence
// holds both to encoding/json), at about half its cost: three literal runs
// compared where the general scan takes each key and value apart.
func (s *scanner) canonicalEntry(dims *[maxRank]int64) (fields, bool) {
	h, i := s.h, s.pos
	if !bytes.HasPrefix(h[i:], []byte(canonDType)) {
		return fields{}, false
	}
	dStart := i + len(canonDType) - 1 // the dtype's opening quote
	i += len(canonDType)
	for i < len(h) && ('A' <= h[i] && h[i] <= 'Z' || '0' <= h[i] && h[i] <= '9' || 'a' <= h[i] && h[i] <= 'z' || h[i] == '_') {
		i++
	}
	dEnd := i + 1 // past the closing quote
	if !bytes.HasPrefix(h[i:], []byte(canonShape)) || !bytes.HasPrefix(h[i+len(canonShape):], []byte("[")) {
		return fields{}, false
	}
	i += len(canonShape)
	sStart := i
	rank, end, ok := ints(h, i, dims[:], true)
	if !ok || !bytes.HasPrefix(h[end:], []byte(canonOffsets)) {
		return fields{}, false
	}
	sEnd := end
	i = end + len(canonOffsets)
	oStart := i
	f := fields{object: true, rank: rank}
	if !bytes.HasPrefix(h[i:], []byte("[")) {
		return fields{}, false
	}
	n, end, ok := ints(h, i, f.offs[:], false)
	if !ok || n != 2 || end >= len(h) || h[end] != '}' {
		return fields{}, false
	}
	f.dtype, f.shape, f.offsets, f.nOffs = h[dStart:dEnd], h[sStart:sEnd], h[oStart:end], n
	s.pos = end + 1
	return f, true
}

// stringAt returns the content of the valid JSON string h[start-1:end+1],
// unescaped when esc says it has escapes.
func stringAt(h []byte, start, end int, esc bool) (string, bool) {
	if !esc {
		return string(h[start:end]), true
	}
	var v string
	err := json.Unmarshal(h[start-1:end+1], &v)
	return v, err == nil
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

// checkEntry validates the fields of one tensor entry against the data
// buffer, from file offset dataStart to the end of the size-byte file. Its
// errors name the field and are wrapped by the caller. The tensor's shape
// is cut from sc's slab.
func checkEntry(name string, f *fields, sc *shapes, dataStart, size int64) (accounting.Tensor, error) {
	var none accounting.Tensor
	if f.twice != "" {
		return none, fmt.Errorf("%s: given twice in one entry", f.twice)
	}
	if f.dtype == nil {
		return none, errors.New("dtype: missing")
	}
	dtype, ok := rawString(f.dtype)
	if !ok {
		return none, fmt.Errorf("dtype: want a string, got %s", short(f.dtype))
	}
	if err := isArray(f.shape, "shape"); err != nil {
		return none, err
	}
	if err := isArray(f.offsets, "data_offsets"); err != nil {
		return none, err
	}

	// Tensors of a file share a few dtypes: the last one is kept, and
	// compared, rather than looked up twice per tensor.
	if sc.canon == "" || string(dtype) != string(sc.dtype) {
		canon, ok := dtypeNames[string(dtype)] // no string made: a constant of the table
		if !ok {
			return none, fmt.Errorf("dtype: unknown dtype %q", dtype)
		}
		dt, ok := accounting.LookupDType(canon)
		if !ok {
			return none, fmt.Errorf("dtype: %q maps to %q, which the dtype table lacks", dtype, canon)
		}
		sc.dtype, sc.canon, sc.dt = dtype, canon, dt
	}
	canon, dt := sc.canon, &sc.dt

	dims := sc.dims[:]
	rank, bad, badElem, overflow := 0, -1, []byte(nil), false
	if f.rank >= 0 {
		rank = f.rank
	} else {
		rank, bad, badElem, overflow = shapeSlow(f.shape, dims)
	}
	if rank > maxRank {
		return none, fmt.Errorf("shape: %d dimensions, more than %d", rank, maxRank)
	}
	if bad >= 0 {
		if overflow {
			return none, fmt.Errorf("shape[%d]: %s is out of range", bad, short(badElem))
		}
		return none, fmt.Errorf("shape[%d]: %s is not an integer", bad, short(badElem))
	}
	numel, err := accounting.Numel(dims[:rank])
	if err != nil {
		return none, fmt.Errorf("shape: %v", err)
	}
	want, err := dt.Bytes(numel)
	if err != nil {
		return none, fmt.Errorf("shape: %v", err)
	}

	var off [2]uint64
	if f.nOffs == 2 {
		off = [2]uint64{uint64(f.offs[0]), uint64(f.offs[1])}
	} else if off, err = offsetsSlow(f.offsets); err != nil {
		return none, err
	}
	begin, end := off[0], off[1]
	switch dataLen := uint64(size - dataStart); {
	case begin > end:
		return none, fmt.Errorf("data_offsets: begin %d is after end %d", begin, end)
	case end > dataLen:
		return none, fmt.Errorf("data_offsets: end %d is past the %d-byte data buffer", end, dataLen)
	case int64(end-begin) != want:
		return none, fmt.Errorf("data_offsets: [%d, %d] holds %d bytes, but shape %v of %s needs %d",
			begin, end, end-begin, dims[:rank], dtype, want)
	}
	if sc.slab == nil || cap(sc.slab)-len(sc.slab) < rank {
		sc.slab = make([]int64, 0, max(rank, min(4096, 3*sc.n)))
	}
	k := len(sc.slab)
	sc.slab = append(sc.slab, dims[:rank]...)
	return accounting.Tensor{
		Name:         name,
		DType:        canon,
		Shape:        sc.slab[k : k+rank : k+rank],
		Storage:      name,
		StorageBytes: want,
		DataOffset:   dataStart + int64(begin),
	}, nil
}

// shapeSlow reads a shape that ints does not: its rank, and the index of
// the first element that is not an integer (bad, -1 for none) and whether
// it is one beyond int64 (overflow).
func shapeSlow(raw []byte, dims []int64) (rank, bad int, badElem []byte, overflow bool) {
	bad = -1
	for e := range elems(raw) {
		if rank < maxRank && bad < 0 {
			v, ok, inRange := parseInt(e)
			switch {
			case !ok || !inRange:
				bad, badElem, overflow = rank, e, ok
			default:
				dims[rank] = v
			}
		}
		rank++
	}
	return rank, bad, badElem, overflow
}

// offsetsSlow reads data_offsets that ints does not: two values, each a
// non-negative integer, which may exceed int64.
func offsetsSlow(raw []byte) ([2]uint64, error) {
	var off [2]uint64
	var pair [2][]byte
	n := 0
	for e := range elems(raw) {
		if n < 2 {
			pair[n] = e
		}
		n++
	}
	if n != 2 {
		return off, fmt.Errorf("data_offsets: want [begin, end], got %d values", n)
	}
	for i, e := range pair {
		v, ok, inRange := parseInt(e)
		switch {
		case !ok || e[0] == '-':
			return off, fmt.Errorf("data_offsets[%d]: %s is not a non-negative integer", i, short(e))
		case !inRange:
			u, ok := parseUint(e)
			if !ok {
				return off, fmt.Errorf("data_offsets[%d]: %s is out of range", i, short(e))
			}
			off[i] = u
		default:
			off[i] = uint64(v)
		}
	}
	return off, nil
}

// ints reads the JSON array at h[i] into dst when it is an array of at
// most len(dst) integers, each an optional minus sign (unless signed is
// false) and at most 18 digits, so within int64, the first not a 0 unless
// it is the only one (as JSON has it), and returns the index past it. For
// anything else (a fraction, an exponent, another value, a syntax error,
// too many elements or digits) ok is false: the caller then scans the
// value as JSON and reads it element by element with elems and parseInt,
// which words the errors. A shape or data_offsets array is read in one
// pass this way, where scanning it and then parsing its elements took
// three.
func ints(h []byte, i int, dst []int64, signed bool) (n, end int, ok bool) {
	i++ // past '['
	for {
		for i < len(h) && isSpace(h[i]) {
			i++
		}
		if n == 0 && i < len(h) && h[i] == ']' {
			return 0, i + 1, true
		}
		neg := i < len(h) && h[i] == '-'
		if neg {
			if !signed {
				return 0, 0, false
			}
			i++
		}
		start := i
		var v int64
		for i < len(h) && isDigit(h[i]) {
			v = v*10 + int64(h[i]-'0')
			i++
		}
		// 18 digits stay below 2^63.
		if i == start || i-start > 18 || h[start] == '0' && i-start > 1 || n == len(dst) {
			return 0, 0, false
		}
		if neg {
			v = -v
		}
		dst[n] = v
		n++
		for i < len(h) && isSpace(h[i]) {
			i++
		}
		switch {
		case i < len(h) && h[i] == ',':
			i++
		case i < len(h) && h[i] == ']':
			return n, i + 1, true
		default:
			return 0, 0, false
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// shapes is where checkEntry parses a shape (dims) and keeps the shapes
// that pass: slices of shared arrays (slab), each sized for about 3
// dimensions per tensor of the n expected, so that a file of a few tensors
// keeps no large array.
type shapes struct {
	dims [maxRank]int64
	slab []int64
	n    int
	// dtype is the dtype of the last entry checked, as written (in the
	// header, or unescaped), canon its canonical name ("" before the first
	// entry) and dt its layout.
	dtype []byte
	canon string
	dt    accounting.DType
}

// isArray checks that raw, a field's value, is a JSON array.
func isArray(raw []byte, key string) error {
	if raw == nil {
		return fmt.Errorf("%s: missing", key)
	}
	if raw[0] != '[' {
		return fmt.Errorf("%s: want an array, got %s", key, short(raw))
	}
	return nil
}

// rawString returns the JSON string raw, unquoted (escapes undone).
func rawString(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], true
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return nil, false
	}
	return []byte(v), true
}

// elems yields the elements of raw, a valid JSON array, as written
// (without surrounding whitespace): a long array costs a scan, not an
// element each.
func elems(raw []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		s := scanner{h: raw, pos: 1}
		s.ws()
		if s.peek(']') {
			return
		}
		for {
			start := s.pos
			if !s.value(2) {
				return
			}
			if !yield(raw[start:s.pos]) {
				return
			}
			s.ws()
			if !s.peek(',') {
				return
			}
			s.pos++
			s.ws()
		}
	}
}

// parseInt reads e, a JSON value, as an integer: ok is false when it is
// not an integer literal (an optional minus sign and digits; JSON's
// grammar already excludes leading zeros), inRange false when it is one
// beyond int64.
func parseInt(e []byte) (v int64, ok, inRange bool) {
	digits := e
	neg := len(e) > 0 && e[0] == '-'
	if neg {
		digits = e[1:]
	}
	if len(digits) == 0 {
		return 0, false, false
	}
	var u uint64
	inRange = true
	for _, c := range digits {
		if !isDigit(c) {
			return 0, false, false
		}
		if u > (1<<63)/10 || u*10+uint64(c-'0') > 1<<63 {
			inRange = false
			continue
		}
		u = u*10 + uint64(c-'0')
	}
	switch {
	case !inRange:
		return 0, true, false
	case neg:
		return -int64(u), true, true // -2^63 wraps to itself
	case u == 1<<63:
		return 0, true, false
	}
	return int64(u), true, true
}

// parseUint reads e, a string of digits, as a uint64.
func parseUint(e []byte) (uint64, bool) {
	var u uint64
	for _, c := range e {
		d := uint64(c - '0')
		if u > (math.MaxUint64-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	return u, true
}

// gaps returns the runs of the data buffer, from file offset dataStart to
// size, that no tensor holds: between tensors and after the last one. The
// tensors are in data order and do not overlap (parseHeader). The reference
// implementation wants the buffer packed, every byte held by one tensor.
func gaps(tensors []accounting.Tensor, dataStart, size int64) []accounting.Gap {
	var out []accounting.Gap
	pos, after := dataStart, ""
	for i := range tensors {
		t := &tensors[i] // not a copy of each 168-byte record
		if t.StorageBytes == 0 {
			continue
		}
		if t.DataOffset > pos {
			out = append(out, accounting.Gap{Offset: pos, Bytes: t.DataOffset - pos, After: after})
		}
		pos, after = endOf(*t), t.Name
	}
	if size > pos {
		out = append(out, accounting.Gap{Offset: pos, Bytes: size - pos, After: after})
	}
	return out
}

// endOf is the file offset just past a tensor's bytes.
func endOf(t accounting.Tensor) int64 { return t.DataOffset + t.StorageBytes }

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

// short returns a JSON value for an error message, cut to 40 bytes.
func short(raw []byte) string {
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
