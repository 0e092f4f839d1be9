package report

import (
	"encoding/binary"
	"math/bits"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/hugepage"
)

// A saved report is read by hand first, as it is written (jsonwrite.go):
// go-json's reflective decode of a 100,000-tensor report (50 MB) took a
// third of a second and a million allocations, where this reader, which
// knows the document, takes its strings as substrings of the input and its
// shapes from one arena. It reads only what it is sure to read as go-json
// and encoding/json do: valid JSON, the fields of the schema spelled
// exactly, each at most once, null only where a nil slice, map or pointer
// reads as one, strings without surrogate escapes or invalid UTF-8, and
// integers that are integers. On anything else it gives up, and ParseJSON
// reads the document as it always did (go-json, then encoding/json for
// the message of an error); TestFastReaderAgrees holds the two to the same
// report on fixtures, random reports and hand-made edge cases.

// jsonReader is the state of one fast read: the document, the position,
// and whether it gave up.
type jsonReader struct {
	s     string
	i     int
	bad   bool
	arena []int64  // the tensors' shapes, sliced out of one allocation
	shape []int64  // scratch for one shape
	names []string // the modules' names, pointed to from one allocation
	last  struct{ file, dtype, role, part, module, layer, scheme string }
}

// same is s, or last when it has the same bytes; last becomes it. A
// tensor's file, dtype, role, module and layer are mostly its neighbour's:
// sharing their bytes lets the comparisons that Validate and a diff make
// of them stop at the pointer (four walks of a 100,000-tensor report, each
// reading every tensor's strings back from the 64 MB document, were a third
// of Validate), while here both are still in the cache.
func same(s string, last *string) string {
	if s == *last {
		return *last
	}
	*last = s
	return s
}

// readFast reads s, a saved report, or reports false. The report's strings
// are substrings of s. schema is the document's schema_version, nil when
// absent.
func readFast(s string) (rep *Report, schema *int, ok bool) {
	r := &jsonReader{s: s}
	rep = new(Report)
	var version int
	r.object(func(k string) uint64 {
		switch k {
		case "schema_version":
			version = int(r.int())
			schema = &version
			return 1 << 0
		case "tool":
			rep.Tool = r.str()
			return 1 << 1
		case "tool_version":
			rep.ToolVersion = r.str()
			return 1 << 2
		case "baseline":
			rep.Baseline = r.str()
			return 1 << 3
		case "files":
			rep.Files = r.files()
			return 1 << 4
		case "skipped_files":
			rep.SkippedFiles = array(r, func(f *SkippedFile) {
				r.object(func(k string) uint64 {
					switch k {
					case "path":
						f.Path = r.str()
						return 1
					case "size_bytes":
						f.SizeBytes = r.int()
						return 2
					case "reason":
						f.Reason = r.str()
						return 4
					}
					return 0
				})
			})
			return 1 << 5
		case "roles":
			rep.Roles = array(r, r.group)
			return 1 << 6
		case "totals":
			r.group(&rep.Totals)
			return 1 << 7
		case "layers":
			rep.Layers = array(r, r.group)
			return 1 << 8
		case "modules":
			// One module a line, as for tensors below; a group is at
			// least 100 bytes.
			rest := r.s[r.i:]
			rep.Modules = arrayCap(r, r.group, min(strings.Count(rest, "\n    {\"module\": "), len(rest)/100))
			return 1 << 9
		case "dtypes":
			rep.DTypes = array(r, r.group)
			return 1 << 10
		case "tensors":
			// One tensor a line, as WriteJSON writes them: the lines that
			// open with a tensor's name say how many to make room for.
			// (No string holds a raw line break; each tensor is at least
			// 200 bytes, whatever the lines say.)
			rep.Tensors = r.tensors()
			return 1 << 11
		case "findings":
			rep.Findings = array(r, r.finding)
			return 1 << 12
		case "phases":
			rep.Phases = array(r, r.phase)
			return 1 << 13
		case "comparisons":
			rep.Comparisons = array(r, r.comparison)
			return 1 << 14
		case "gate":
			if !r.null() {
				rep.Gate = new(Gate)
				r.gate(rep.Gate)
			}
			return 1 << 15
		case "remote":
			if !r.null() {
				rep.Remote = new(Remote)
				r.remote(rep.Remote)
			}
			return 1 << 16
		}
		return 0
	})
	r.ws()
	if r.bad || r.i != len(r.s) {
		return nil, nil, false
	}
	return rep, schema, true
}

// tensorLine opens each tensor's line as WriteJSON writes them.
const tensorLine = "\n    {\"name\": "

// splitTensors is the number of tensors from which their array is read in
// two halves at once, a var for tests.
var splitTensors = parallelTensors

// tensors reads the tensors' array. One tensor a line, as WriteJSON writes
// them: the lines that open with a tensor's name say how many to make room
// for. (No string holds a raw line break; each tensor is at least 200
// bytes, whatever the lines say.) A large array is read in two halves at
// once, split where a tensor's line opens after a comma, the second half by
// a reader of its own: reading a saved report of 100,000 tensors is most of
// check --against, and the audit beside it leaves a core idle. The halves
// read as the whole would, or one of them gives up and the whole is read
// in one: a raw line break can only be white space, and a split anywhere
// but between two tensors leaves the first half's last tensor cut short or
// the second half's first value out of place (TestFastReaderSplit).
func (r *jsonReader) tensors() []Tensor {
	rest := r.s[r.i:]
	n := min(strings.Count(rest, tensorLine), len(rest)/200)
	if n < splitTensors || runtime.GOMAXPROCS(0) < 2 {
		return arrayCap(r, r.tensor, n)
	}
	lo, hi := strings.Index(rest, tensorLine), strings.LastIndex(rest, tensorLine)
	mid := lo + (hi-lo)/2
	at := strings.Index(rest[mid:], tensorLine)
	if at < 0 {
		return arrayCap(r, r.tensor, n)
	}
	at += r.i + mid // the line break before the second half's first tensor
	prev := strings.TrimRight(r.s[:at], " \t\r\n")
	if !strings.HasSuffix(prev, ",") || len(prev) <= r.i {
		return arrayCap(r, r.tensor, n)
	}
	// The first half is the array up to that comma, read to the end of its
	// text; the second, the tensors from the line on, to the closing
	// bracket. Both fill one slice when the lines count the tensors.
	k := strings.Count(r.s[r.i:at], tensorLine)
	if k > n {
		return arrayCap(r, r.tensor, n) // lines of less than 200 bytes: not tensors as written
	}
	all := make([]Tensor, 0, n)
	hugepage.Advise(all)
	head := &jsonReader{s: prev[:len(prev)-1], i: r.i}
	tail := &jsonReader{s: r.s, i: at}
	var first, second []Tensor
	var wg sync.WaitGroup
	wg.Go(func() { second = elems(tail, tail.tensor, all[k:k], false) })
	head.next('[')
	first = elems(head, head.tensor, all[:0:k], true)
	wg.Wait()
	if head.bad || tail.bad {
		return arrayCap(r, r.tensor, n)
	}
	r.i = tail.i
	if len(first) == k && len(second) <= n-k {
		return all[:k+len(second)]
	}
	return append(slices.Clip(first), second...)
}

// elems reads the elements of an array into out, elem reading each,
// separated by commas: to the closing bracket, or for the first half of a
// split array (toEnd) to the end of the reader's text.
func elems[T any](r *jsonReader, elem func(*T), out []T, toEnd bool) []T {
	for !r.bad {
		out = append(out, *new(T))
		elem(&out[len(out)-1])
		if r.peek(',') {
			continue
		}
		if toEnd {
			r.ws()
			r.bad = r.bad || r.i != len(r.s)
			break
		}
		r.next(']')
		break
	}
	return out
}

func (r *jsonReader) ws() {
	for r.i < len(r.s) {
		switch r.s[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
			continue
		}
		return
	}
}

// next skips white space and consumes c, or gives up.
func (r *jsonReader) next(c byte) {
	r.ws()
	if r.i < len(r.s) && r.s[r.i] == c {
		r.i++
		return
	}
	r.bad = true
}

// peek skips white space and reports whether c comes next; it consumes
// it if so.
func (r *jsonReader) peek(c byte) bool {
	r.ws()
	if r.i < len(r.s) && r.s[r.i] == c {
		r.i++
		return true
	}
	return false
}

// null consumes a null.
func (r *jsonReader) null() bool {
	r.ws()
	if len(r.s)-r.i >= 4 && r.s[r.i:r.i+4] == "null" {
		r.i += 4
		return true
	}
	return false
}

// object reads an object, calling field for each key with the reader on
// its value; field returns the key's bit, 0 for a key not in the schema.
// An unknown key or one given twice gives up.
func (r *jsonReader) object(field func(key string) uint64) {
	r.next('{')
	if r.bad || r.peek('}') {
		return
	}
	var seen uint64
	for !r.bad {
		k := r.str()
		r.next(':')
		if r.bad {
			return
		}
		bit := field(k)
		if bit == 0 || seen&bit != 0 {
			r.bad = true
			return
		}
		seen |= bit
		r.ws()
		if r.peek(',') {
			continue
		}
		r.next('}')
		return
	}
}

// array reads null (a nil slice) or an array, elem reading each element.
func array[T any](r *jsonReader, elem func(*T)) []T { return arrayCap(r, elem, 0) }

// arrayCap is array with room made for n elements.
func arrayCap[T any](r *jsonReader, elem func(*T), n int) []T {
	if r.null() {
		return nil
	}
	r.next('[')
	out := make([]T, 0, n)
	hugepage.Advise(out)
	if r.bad || r.peek(']') {
		return out
	}
	return elems(r, elem, out, false)
}

// plainIn marks the bytes a JSON string holds as they are, to the reader:
// printable ASCII but '"' and '\\'.
var plainIn = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// special8 marks, with its high bit, each of the eight bytes in x (little
// endian) that plainIn does not mark: a quote, a backslash, a control
// character or a byte of a multi-byte rune. Borrows may mark bytes after
// the first such byte, never before it, so the lowest mark is the first.
func special8(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote, backslash := x^(ones*'"'), x^(ones*'\\')
	return ((quote-ones)&^quote | (backslash-ones)&^backslash | (x-ones*' ')&^x | x) & highs
}

// str reads a string. One with escapes is built anew; one without is a
// substring of the document.
func (r *jsonReader) str() string {
	r.next('"')
	if r.bad {
		return ""
	}
	s, start := r.s, r.i
	i := start
	for i < len(s) {
		// Eight bytes at a time to the first that needs a look of its own.
		for i+8 <= len(s) {
			if m := special8(binary.LittleEndian.Uint64([]byte(s[i : i+8]))); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		for i < len(s) && plainIn[s[i]] {
			i++
		}
		if i == len(s) {
			break
		}
		c := s[i]
		switch {
		case c == '"':
			r.i = i + 1
			return s[start:i]
		case c == '\\':
			return r.escaped(start, i)
		case c < ' ':
			r.bad = true
			return ""
		case c >= utf8.RuneSelf:
			c, size := utf8.DecodeRuneInString(s[i:])
			if c == utf8.RuneError && size == 1 {
				r.bad = true
				return ""
			}
			i += size
		default:
			i++
		}
	}
	r.bad = true
	return ""
}

// escaped reads the rest of a string with escapes from i, the first
// backslash; start is where the string's bytes begin.
func (r *jsonReader) escaped(start, i int) string {
	s := r.s
	b := []byte(s[start:i])
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			r.i = i + 1
			return string(b)
		case c == '\\':
			if i+1 >= len(s) {
				r.bad = true
				return ""
			}
			i += 2
			switch s[i-1] {
			case '"', '\\', '/':
				b = append(b, s[i-1])
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				if i+4 > len(s) {
					r.bad = true
					return ""
				}
				v, err := strconv.ParseUint(s[i:i+4], 16, 16)
				// Surrogates are left to the decoders that pair them.
				if err != nil || v >= 0xd800 && v < 0xe000 {
					r.bad = true
					return ""
				}
				b = utf8.AppendRune(b, rune(v))
				i += 4
			default:
				r.bad = true
				return ""
			}
		case c < ' ':
			r.bad = true
			return ""
		case c >= utf8.RuneSelf:
			c, size := utf8.DecodeRuneInString(s[i:])
			if c == utf8.RuneError && size == 1 {
				r.bad = true
				return ""
			}
			b = append(b, s[i:i+size]...)
			i += size
		default:
			b = append(b, c)
			i++
		}
	}
	r.bad = true
	return ""
}

// number reads a JSON number and returns its text and whether it has a
// fraction or an exponent.
func (r *jsonReader) number() (string, bool) {
	r.ws()
	s, start := r.s, r.i
	i := start
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > j
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case !digits():
		r.bad = true
		return "", false
	}
	float := false
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			r.bad = true
			return "", false
		}
		float = true
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			r.bad = true
			return "", false
		}
		float = true
	}
	r.i = i
	return s[start:i], float
}

// int reads an integer that fits an int64.
func (r *jsonReader) int() int64 {
	r.ws()
	// Most are short and positive: read them in one pass.
	s, i := r.s, r.i
	var v int64
	for ; i < len(s) && i-r.i < 18 && s[i] >= '0' && s[i] <= '9'; i++ {
		v = v*10 + int64(s[i]-'0')
	}
	if n := i - r.i; n > 0 && n < 18 && (n == 1 || s[r.i] != '0') && (i == len(s) || s[i] != '.' && s[i] != 'e' && s[i] != 'E') {
		r.i = i
		return v
	}
	text, float := r.number()
	if r.bad || float {
		r.bad = true
		return 0
	}
	if len(text) <= 18 && text[0] != '-' {
		var v int64
		for i := 0; i < len(text); i++ {
			v = v*10 + int64(text[i]-'0')
		}
		return v
	}
	v, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		r.bad = true
	}
	return v
}

// float reads a number as a float64.
func (r *jsonReader) float() float64 {
	text, _ := r.number()
	if r.bad {
		return 0
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		r.bad = true
	}
	return v
}

func (r *jsonReader) bool() bool {
	r.ws()
	switch {
	case len(r.s)-r.i >= 4 && r.s[r.i:r.i+4] == "true":
		r.i += 4
		return true
	case len(r.s)-r.i >= 5 && r.s[r.i:r.i+5] == "false":
		r.i += 5
		return false
	}
	r.bad = true
	return false
}

// strs reads null or an array of strings.
func (r *jsonReader) strs() []string {
	if r.null() {
		return nil
	}
	r.next('[')
	if r.bad || r.peek(']') {
		return []string{}
	}
	var out []string
	for !r.bad {
		out = append(out, r.str())
		if r.peek(',') {
			continue
		}
		r.next(']')
		break
	}
	return out
}

// ints reads null or an array of integers, sliced from the arena.
func (r *jsonReader) ints() []int64 {
	if r.null() {
		return nil
	}
	r.next('[')
	if r.bad || r.peek(']') {
		return []int64{}
	}
	r.shape = r.shape[:0]
	for !r.bad {
		r.shape = append(r.shape, r.int())
		if r.peek(',') {
			continue
		}
		r.next(']')
		break
	}
	n := len(r.shape)
	if cap(r.arena)-len(r.arena) < n {
		r.arena = make([]int64, 0, max(4096, n))
	}
	r.arena = append(r.arena, r.shape...)
	return r.arena[len(r.arena)-n : len(r.arena) : len(r.arena)]
}

// verdict reads a verdict by its name.
func (r *jsonReader) verdict() accounting.Verdict {
	v, err := accounting.ParseVerdict(r.str())
	if err != nil {
		r.bad = true
	}
	return v
}

func (r *jsonReader) files() []File {
	return array(r, func(f *File) {
		r.object(func(k string) uint64 {
			switch k {
			case "path":
				f.Path = r.str()
				return 1
			case "format":
				f.Format = r.str()
				return 2
			case "label":
				f.Label = r.str()
				return 4
			case "size_bytes":
				f.SizeBytes = r.int()
				return 8
			case "tensors":
				f.Tensors = r.int()
				return 16
			case "stored_bytes":
				f.StoredBytes = r.int()
				return 32
			case "overhead_bytes":
				f.OverheadBytes = r.int()
				return 64
			}
			return 0
		})
	})
}

func (r *jsonReader) group(g *Group) {
	r.object(func(k string) uint64 {
		switch k {
		case "role":
			g.Role = r.str()
			return 1
		case "layer":
			g.Layer = r.str()
			return 2
		case "module":
			if !r.null() {
				if len(r.names) == cap(r.names) {
					r.names = make([]string, 0, 1024)
				}
				r.names = append(r.names, r.str())
				g.Module = &r.names[len(r.names)-1]
			}
			return 4
		case "dtype":
			g.DType = r.str()
			return 8
		case "tensors":
			g.Tensors = r.int()
			return 16
		case "params":
			g.Params = r.int()
			return 32
		case "baseline_bytes":
			g.BaselineBytes = r.int()
			return 64
		case "theoretical_bytes":
			g.TheoreticalBytes = r.int()
			return 128
		case "stored_bytes":
			g.StoredBytes = r.int()
			return 256
		case "ratio":
			g.Ratio = r.float()
			return 512
		case "bits_per_weight":
			g.BitsPerWeight = r.float()
			return 1024
		}
		return 0
	})
}

func (r *jsonReader) tensor(t *Tensor) {
	r.object(func(k string) uint64 {
		switch k {
		case "name":
			t.Name = r.str()
			return 1 << 0
		case "file":
			t.File = same(r.str(), &r.last.file)
			return 1 << 1
		case "dtype":
			t.DType = same(r.str(), &r.last.dtype)
			return 1 << 2
		case "shape":
			t.Shape = r.ints()
			return 1 << 3
		case "numel":
			t.Numel = r.int()
			return 1 << 4
		case "element_size":
			t.ElementSize = r.float()
			return 1 << 5
		case "role":
			t.Role = same(r.str(), &r.last.role)
			return 1 << 6
		case "part":
			t.Part = same(r.str(), &r.last.part)
			return 1 << 7
		case "module":
			t.Module = same(r.str(), &r.last.module)
			return 1 << 8
		case "layer":
			t.Layer = same(r.str(), &r.last.layer)
			return 1 << 9
		case "scheme":
			t.Scheme = same(r.str(), &r.last.scheme)
			return 1 << 10
		case "params":
			t.Params = r.int()
			return 1 << 11
		case "theoretical_bytes":
			t.TheoreticalBytes = r.int()
			return 1 << 12
		case "stored_bytes":
			t.StoredBytes = r.int()
			return 1 << 13
		case "baseline_bytes":
			t.BaselineBytes = r.int()
			return 1 << 14
		case "dead_bytes":
			t.DeadBytes = r.int()
			return 1 << 15
		case "shares_storage_with":
			t.SharesStorageWith = r.strs()
			return 1 << 16
		case "tied":
			t.Tied = r.bool()
			return 1 << 17
		}
		return 0
	})
}

func (r *jsonReader) finding(f *Finding) {
	r.object(func(k string) uint64 {
		switch k {
		case "kind":
			f.Kind = r.str()
			return 1
		case "severity":
			f.Severity = r.str()
			return 2
		case "module":
			f.Module = r.str()
			return 4
		case "tensors":
			f.Tensors = r.strs()
			return 8
		case "bytes":
			f.Bytes = r.int()
			return 16
		case "message":
			f.Message = r.str()
			return 32
		}
		return 0
	})
}

func (r *jsonReader) phase(p *Phase) {
	r.object(func(k string) uint64 {
		switch k {
		case "phase":
			p.Phase = r.str()
			return 1
		case "in_use_bytes":
			p.InUseBytes = r.int()
			return 2
		case "expected_bytes":
			p.ExpectedBytes = r.int()
			return 4
		case "by_role":
			if r.null() {
				return 8
			}
			p.ByRole = map[string]int64{}
			r.next('{')
			if r.bad || r.peek('}') {
				return 8
			}
			for !r.bad {
				k := r.str()
				r.next(':')
				if _, twice := p.ByRole[k]; twice {
					r.bad = true
				}
				p.ByRole[k] = r.int()
				if r.peek(',') {
					continue
				}
				r.next('}')
				break
			}
			return 8
		case "verdict":
			p.Verdict = r.verdict()
			return 16
		}
		return 0
	})
}

func (r *jsonReader) comparison(c *Comparison) {
	r.object(func(k string) uint64 {
		switch k {
		case "subject":
			c.Subject = r.str()
			return 1
		case "measured_bytes":
			c.MeasuredBytes = r.int()
			return 2
		case "expected_bytes":
			c.ExpectedBytes = r.int()
			return 4
		case "tolerance_bytes":
			c.ToleranceBytes = r.int()
			return 8
		case "verdict":
			c.Verdict = r.verdict()
			return 16
		case "message":
			c.Message = r.str()
			return 32
		}
		return 0
	})
}

func (r *jsonReader) gate(g *Gate) {
	r.object(func(k string) uint64 {
		switch k {
		case "passed":
			g.Passed = r.bool()
			return 1
		case "config":
			g.Config = r.str()
			return 2
		case "against":
			g.Against = r.str()
			return 4
		case "outcomes":
			g.Outcomes = array(r, func(o *Outcome) {
				r.object(func(k string) uint64 {
					switch k {
					case "check":
						o.Check = r.str()
						return 1
					case "subject":
						o.Subject = r.str()
						return 2
					case "limit":
						o.Limit = r.float()
						return 4
					case "actual":
						o.Actual = r.float()
						return 8
					case "unit":
						o.Unit = r.str()
						return 16
					case "status":
						o.Status = Status(r.str())
						return 32
					case "waiver":
						o.Waiver = r.str()
						return 64
					case "message":
						o.Message = r.str()
						return 128
					}
					return 0
				})
			})
			return 8
		}
		return 0
	})
}

func (r *jsonReader) remote(rm *Remote) {
	r.object(func(k string) uint64 {
		switch k {
		case "sources":
			rm.Sources = array(r, func(s *RemoteSource) {
				r.object(func(k string) uint64 {
					switch k {
					case "source":
						s.Source = r.str()
						return 1
					case "endpoint":
						s.Endpoint = r.str()
						return 2
					case "repo":
						s.Repo = r.str()
						return 4
					case "revision":
						s.Revision = r.str()
						return 8
					case "commit":
						s.Commit = r.str()
						return 16
					}
					return 0
				})
			})
			return 1
		case "requests":
			rm.Requests = r.int()
			return 2
		case "bytes_received":
			rm.BytesReceived = r.int()
			return 4
		case "cache_hits":
			rm.CacheHits = r.int()
			return 8
		case "wall_ms":
			rm.WallMillis = r.int()
			return 16
		}
		return 0
	})
}
