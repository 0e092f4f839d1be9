package report

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// The JSON report and the diff's JSON are documents qinsaudit owns, so it
// writes them by hand: encoding/json's reflective walk and the layout pass
// over its output were most of the cost of `audit --format json` on a
// model of 100,000 tensors (1.7 us a tensor in BenchmarkWriteJSON100k),
// where appending each field's bytes in place costs 0.33 us. The output is
// byte for byte what json.Marshal then layout write (TestJSONWriterAgrees
// holds it to that on every fixture and on random reports): the same
// field order and omitempty rules, null for a nil slice, encoding/json's
// string escaping (HTML characters, U+2028 and U+2029, invalid UTF-8 as
// \ufffd) and float formatting. A value encoding/json refuses (a NaN or
// infinite float, a verdict without a name) sends the whole document to
// the encoding/json path, which says why as it always did.

// marshalLayout is the reference writer: json.Marshal, then layout. It
// writes what the appender cannot, and the tests hold the appender to it.
func marshalLayout(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return layout(data), nil
}

// writeOut writes a document through the appender, a chunk at a time so
// that a large report is never whole in memory, unless it holds a value
// the appender does not write: then the reference writer says why.
func writeOut(w io.Writer, refused bool, v any, write func(*jsonAppender)) error {
	if refused {
		data, err := marshalLayout(v)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	e := &jsonAppender{w: w, b: make([]byte, 0, 2*flushAt)}
	write(e)
	if e.bad {
		// refused above missed a value: a bug, never half a document.
		return errors.New("internal error: a report value the JSON writer cannot write")
	}
	return e.flush()
}

// flushAt is how many bytes the appender gathers before writing them.
const flushAt = 64 << 10

// jsonAppender appends a document in layout's shape: the top-level
// object's fields one a line, the elements (or fields) of the containers
// directly in it one a line, everything deeper on that line with ", " and
// ": " between. bad records a value encoding/json refuses; err the first
// error writing to w.
type jsonAppender struct {
	w   io.Writer
	b   []byte
	bad bool
	err error
}

// flush writes what the appender holds.
func (e *jsonAppender) flush() error {
	if e.err == nil && len(e.b) > 0 {
		_, e.err = e.w.Write(e.b)
	}
	e.b = e.b[:0]
	return e.err
}

// float64Refused reports whether encoding/json refuses f.
func float64Refused(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }

// groupsRefused reports whether a group holds a float encoding/json
// refuses.
func groupsRefused(gs ...[]Group) bool {
	for _, g := range gs {
		for i := range g {
			if float64Refused(g[i].Ratio) || float64Refused(g[i].BitsPerWeight) {
				return true
			}
		}
	}
	return false
}

// reportRefused reports whether rep holds a value encoding/json refuses:
// a NaN or infinite float, a verdict without a name (accounting.Verdict's
// MarshalText refuses one; a phase's zero verdict is omitted).
func reportRefused(rep *Report) bool {
	if groupsRefused(rep.Roles, []Group{rep.Totals}, rep.Layers, rep.Modules, rep.DTypes) {
		return true
	}
	for i := range rep.Tensors {
		if float64Refused(rep.Tensors[i].ElementSize) {
			return true
		}
	}
	for _, p := range rep.Phases {
		if _, err := p.Verdict.MarshalText(); p.Verdict != 0 && err != nil {
			return true
		}
	}
	for _, c := range rep.Comparisons {
		if _, err := c.Verdict.MarshalText(); err != nil {
			return true
		}
	}
	if g := rep.Gate; g != nil {
		for _, o := range g.Outcomes {
			if float64Refused(o.Limit) || float64Refused(o.Actual) {
				return true
			}
		}
	}
	return false
}

// diffRefused is reportRefused of a diff.
func diffRefused(d *Diff) bool {
	for i := range d.Rows {
		if float64Refused(d.Rows[i].DeltaPct) {
			return true
		}
	}
	return float64Refused(d.Total.DeltaPct)
}

// The separators of layout's levels: a container that is a field of the
// top-level object ("block") has its elements on lines of their own; one
// deeper ("inline") has them on one line.
const (
	blockOpenObj  = "{\n    "
	blockOpenArr  = "[\n    "
	blockSep      = ",\n    "
	blockCloseObj = "\n  }"
	blockCloseArr = "\n  ]"
	topSep        = ",\n  "
)

// level is how an object's fields are separated: block or inline.
type level struct{ open, sep, close string }

var (
	blockObj  = level{blockOpenObj, blockSep, blockCloseObj}
	inlineObj = level{"{", ", ", "}"}
)

// report appends rep as WriteJSON writes it.
func (e *jsonAppender) report(rep *Report) {
	e.b = append(e.b, "{\n  \"schema_version\": "...)
	e.b = strconv.AppendInt(e.b, int64(rep.SchemaVersion), 10)
	e.key(topSep, "tool")
	e.str(rep.Tool)
	if rep.ToolVersion != "" {
		e.key(topSep, "tool_version")
		e.str(rep.ToolVersion)
	}
	e.key(topSep, "baseline")
	e.str(rep.Baseline)
	e.key(topSep, "files")
	blockArray(e, rep.Files, (*jsonAppender).file)
	if len(rep.SkippedFiles) > 0 {
		e.key(topSep, "skipped_files")
		blockArray(e, rep.SkippedFiles, (*jsonAppender).skipped)
	}
	e.key(topSep, "roles")
	blockArray(e, rep.Roles, (*jsonAppender).inlineGroup)
	e.key(topSep, "totals")
	e.group(&rep.Totals, blockObj)
	e.key(topSep, "layers")
	blockArray(e, rep.Layers, (*jsonAppender).inlineGroup)
	e.key(topSep, "modules")
	blockArray(e, rep.Modules, (*jsonAppender).inlineGroup)
	e.key(topSep, "dtypes")
	blockArray(e, rep.DTypes, (*jsonAppender).inlineGroup)
	e.key(topSep, "tensors")
	blockArray(e, rep.Tensors, (*jsonAppender).tensor)
	e.key(topSep, "findings")
	blockArray(e, rep.Findings, (*jsonAppender).finding)
	if len(rep.Phases) > 0 {
		e.key(topSep, "phases")
		blockArray(e, rep.Phases, (*jsonAppender).phase)
	}
	if len(rep.Comparisons) > 0 {
		e.key(topSep, "comparisons")
		blockArray(e, rep.Comparisons, (*jsonAppender).comparison)
	}
	if g := rep.Gate; g != nil {
		e.key(topSep, "gate")
		e.gate(g)
	}
	if r := rep.Remote; r != nil {
		e.key(topSep, "remote")
		e.remote(r)
	}
	e.b = append(e.b, "\n}\n"...)
}

// diff appends d as WriteDiffJSON writes it.
func (e *jsonAppender) diff(d *Diff) {
	e.b = append(e.b, "{\n  \"schema_version\": "...)
	e.b = strconv.AppendInt(e.b, int64(d.SchemaVersion), 10)
	e.key(topSep, "tool")
	e.str(d.Tool)
	if d.ToolVersion != "" {
		e.key(topSep, "tool_version")
		e.str(d.ToolVersion)
	}
	e.key(topSep, "kind")
	e.str(d.Kind)
	e.key(topSep, "by")
	e.str(string(d.By))
	e.key(topSep, "old_files")
	blockArray(e, d.Old, (*jsonAppender).file)
	e.key(topSep, "new_files")
	blockArray(e, d.New, (*jsonAppender).file)
	e.key(topSep, "rows")
	blockArray(e, d.Rows, func(e *jsonAppender, r *DiffRow) { e.diffRow(r, inlineObj) })
	e.key(topSep, "total")
	e.diffRow(&d.Total, blockObj)
	e.b = append(e.b, "\n}\n"...)
}

// blockArray appends a field of the top-level object that is an array:
// null when nil, [] when empty, else one element a line.
func blockArray[T any](e *jsonAppender, xs []T, elem func(*jsonAppender, *T)) {
	switch {
	case xs == nil:
		e.b = append(e.b, "null"...)
		return
	case len(xs) == 0:
		e.b = append(e.b, "[]"...)
		return
	}
	e.b = append(e.b, blockOpenArr...)
	for i := range xs {
		if i > 0 {
			e.b = append(e.b, blockSep...)
		}
		elem(e, &xs[i])
		if len(e.b) >= flushAt {
			e.flush()
		}
	}
	e.b = append(e.b, blockCloseArr...)
}

// key appends sep and a field name that needs no escaping.
func (e *jsonAppender) key(sep, name string) {
	e.b = append(e.b, sep...)
	e.b = append(e.b, '"')
	e.b = append(e.b, name...)
	e.b = append(e.b, "\": "...)
}

func (e *jsonAppender) int(v int64) { e.b = strconv.AppendInt(e.b, v, 10) }

func (e *jsonAppender) bool(v bool) { e.b = strconv.AppendBool(e.b, v) }

// float appends f as encoding/json writes a float64: the shortest
// representation that reads back, in exponent form below 1e-6 and from
// 1e21 on, with a one-digit negative exponent unpadded (1e-7, not 1e-07).
// NaN and infinities are not JSON: encoding/json refuses them.
func (e *jsonAppender) float(f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		e.bad = true
		return
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 && (f != 0 || !math.Signbit(f)) {
		// A whole number (an element size of 4, a ratio of 1, 32 bits
		// per weight: most floats of a report) has the digits of its
		// integer, which strconv makes at a tenth of the cost of the
		// shortest float.
		e.b = strconv.AppendInt(e.b, int64(f), 10)
		return
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	e.b = strconv.AppendFloat(e.b, f, format, -1, 64)
	if format == 'e' {
		n := len(e.b)
		if n >= 4 && e.b[n-4] == 'e' && e.b[n-3] == '-' && e.b[n-2] == '0' {
			e.b[n-2] = e.b[n-1]
			e.b = e.b[:n-1]
		}
	}
}

const hexDigits = "0123456789abcdef"

// plain marks the bytes a JSON string holds as they are: printable ASCII
// but '"', '\\' and the HTML characters encoding/json escapes.
var plain = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// escape8 marks, with its high bit, each of the eight bytes in x (little
// endian) that plain does not mark: as special8 does for the reader, with
// the HTML characters too. The lowest mark is the first such byte.
func escape8(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q, b, lt, gt, amp := x^(ones*'"'), x^(ones*'\\'), x^(ones*'<'), x^(ones*'>'), x^(ones*'&')
	return ((x-ones*' ')&^x | x | (q-ones)&^q | (b-ones)&^b | (lt-ones)&^lt | (gt-ones)&^gt | (amp-ones)&^amp) & highs
}

// str appends s as a JSON string, escaped as encoding/json escapes it.
func (e *jsonAppender) str(s string) {
	// Eight bytes at a time to the first that is not plain: a report's
	// strings are mostly names and paths of tens of bytes, all plain.
	i := 0
	for i+8 <= len(s) {
		if m := escape8(binary.LittleEndian.Uint64([]byte(s[i : i+8]))); m != 0 {
			i += bits.TrailingZeros64(m) >> 3
			break
		}
		i += 8
	}
	for i < len(s) && plain[s[i]] {
		i++
	}
	b := append(e.b, '"')
	if i == len(s) { // most strings: names, dtypes, roles
		b = append(b, s...)
		e.b = append(b, '"')
		return
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	e.b = append(b, '"')
}

// strs appends a []string inline: null, [] or ["a", "b"].
func (e *jsonAppender) strs(xs []string) {
	if xs == nil {
		e.b = append(e.b, "null"...)
		return
	}
	e.b = append(e.b, '[')
	for i, s := range xs {
		if i > 0 {
			e.b = append(e.b, ", "...)
		}
		e.str(s)
	}
	e.b = append(e.b, ']')
}

// ints appends a []int64 inline.
func (e *jsonAppender) ints(xs []int64) {
	if xs == nil {
		e.b = append(e.b, "null"...)
		return
	}
	e.b = append(e.b, '[')
	for i, x := range xs {
		if i > 0 {
			e.b = append(e.b, ", "...)
		}
		e.b = strconv.AppendInt(e.b, x, 10)
	}
	e.b = append(e.b, ']')
}

// verdict appends a verdict by its name (accounting.Verdict's
// MarshalText); one without a name is refused, as MarshalText refuses it.
func (e *jsonAppender) verdict(v accounting.Verdict) {
	name, err := v.MarshalText()
	if err != nil {
		e.bad = true
		return
	}
	e.str(string(name))
}

func (e *jsonAppender) file(f *File) {
	e.b = append(e.b, `{"path": `...)
	e.str(f.Path)
	e.key(", ", "format")
	e.str(f.Format)
	if f.Label != "" {
		e.key(", ", "label")
		e.str(f.Label)
	}
	e.key(", ", "size_bytes")
	e.int(f.SizeBytes)
	e.key(", ", "tensors")
	e.int(f.Tensors)
	e.key(", ", "stored_bytes")
	e.int(f.StoredBytes)
	e.key(", ", "overhead_bytes")
	e.int(f.OverheadBytes)
	e.b = append(e.b, '}')
}

func (e *jsonAppender) skipped(f *SkippedFile) {
	e.b = append(e.b, `{"path": `...)
	e.str(f.Path)
	e.key(", ", "size_bytes")
	e.int(f.SizeBytes)
	e.key(", ", "reason")
	e.str(f.Reason)
	e.b = append(e.b, '}')
}

func (e *jsonAppender) inlineGroup(g *Group) { e.group(g, inlineObj) }

// group appends a group; its key fields are each omitted when empty, so
// the first field written may be any of them or tensors.
func (e *jsonAppender) group(g *Group, l level) {
	e.b = append(e.b, l.open...)
	sep := ""
	if g.Role != "" {
		e.key(sep, "role")
		e.str(g.Role)
		sep = l.sep
	}
	if g.Layer != "" {
		e.key(sep, "layer")
		e.str(g.Layer)
		sep = l.sep
	}
	if g.Module != nil {
		e.key(sep, "module")
		e.str(*g.Module)
		sep = l.sep
	}
	if g.DType != "" {
		e.key(sep, "dtype")
		e.str(g.DType)
		sep = l.sep
	}
	e.key(sep, "tensors")
	e.int(g.Tensors)
	e.key(l.sep, "params")
	e.int(g.Params)
	e.key(l.sep, "baseline_bytes")
	e.int(g.BaselineBytes)
	e.key(l.sep, "theoretical_bytes")
	e.int(g.TheoreticalBytes)
	e.key(l.sep, "stored_bytes")
	e.int(g.StoredBytes)
	e.key(l.sep, "ratio")
	e.float(g.Ratio)
	e.key(l.sep, "bits_per_weight")
	e.float(g.BitsPerWeight)
	e.b = append(e.b, l.close...)
}

// tensor appends one tensor, the line a large report is made of: the
// field names are literal runs.
func (e *jsonAppender) tensor(t *Tensor) {
	e.b = append(e.b, `{"name": `...)
	e.str(t.Name)
	e.b = append(e.b, `, "file": `...)
	e.str(t.File)
	e.b = append(e.b, `, "dtype": `...)
	e.str(t.DType)
	e.b = append(e.b, `, "shape": `...)
	e.ints(t.Shape)
	e.b = append(e.b, `, "numel": `...)
	e.int(t.Numel)
	e.b = append(e.b, `, "element_size": `...)
	e.float(t.ElementSize)
	e.b = append(e.b, `, "role": `...)
	e.str(t.Role)
	e.b = append(e.b, `, "part": `...)
	e.str(t.Part)
	e.b = append(e.b, `, "module": `...)
	e.str(t.Module)
	e.b = append(e.b, `, "layer": `...)
	e.str(t.Layer)
	e.b = append(e.b, `, "scheme": `...)
	e.str(t.Scheme)
	e.b = append(e.b, `, "params": `...)
	e.int(t.Params)
	e.b = append(e.b, `, "theoretical_bytes": `...)
	e.int(t.TheoreticalBytes)
	e.b = append(e.b, `, "stored_bytes": `...)
	e.int(t.StoredBytes)
	e.b = append(e.b, `, "baseline_bytes": `...)
	e.int(t.BaselineBytes)
	e.b = append(e.b, `, "dead_bytes": `...)
	e.int(t.DeadBytes)
	e.b = append(e.b, `, "shares_storage_with": `...)
	e.strs(t.SharesStorageWith)
	if t.Tied {
		e.b = append(e.b, `, "tied": true`...)
	}
	e.b = append(e.b, '}')
}

func (e *jsonAppender) finding(f *Finding) {
	e.b = append(e.b, `{"kind": `...)
	e.str(f.Kind)
	e.key(", ", "severity")
	e.str(f.Severity)
	e.key(", ", "module")
	e.str(f.Module)
	e.key(", ", "tensors")
	e.strs(f.Tensors)
	e.key(", ", "bytes")
	e.int(f.Bytes)
	e.key(", ", "message")
	e.str(f.Message)
	e.b = append(e.b, '}')
}

// phase appends a phase; by_role is a map, written in key order as
// encoding/json writes maps.
func (e *jsonAppender) phase(p *Phase) {
	e.b = append(e.b, `{"phase": `...)
	e.str(p.Phase)
	e.key(", ", "in_use_bytes")
	e.int(p.InUseBytes)
	e.key(", ", "expected_bytes")
	e.int(p.ExpectedBytes)
	e.key(", ", "by_role")
	if p.ByRole == nil {
		e.b = append(e.b, "null"...)
	} else {
		keys := make([]string, 0, len(p.ByRole))
		for k := range p.ByRole {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		e.b = append(e.b, '{')
		for i, k := range keys {
			if i > 0 {
				e.b = append(e.b, ", "...)
			}
			e.str(k)
			e.b = append(e.b, ": "...)
			e.int(p.ByRole[k])
		}
		e.b = append(e.b, '}')
	}
	if p.Verdict != 0 {
		e.key(", ", "verdict")
		e.verdict(p.Verdict)
	}
	e.b = append(e.b, '}')
}

func (e *jsonAppender) comparison(c *Comparison) {
	e.b = append(e.b, `{"subject": `...)
	e.str(c.Subject)
	e.key(", ", "measured_bytes")
	e.int(c.MeasuredBytes)
	e.key(", ", "expected_bytes")
	e.int(c.ExpectedBytes)
	e.key(", ", "tolerance_bytes")
	e.int(c.ToleranceBytes)
	e.key(", ", "verdict")
	e.verdict(c.Verdict)
	e.key(", ", "message")
	e.str(c.Message)
	e.b = append(e.b, '}')
}

// gate appends the gate, a field of the top-level object: its fields one
// a line, its outcomes on one.
func (e *jsonAppender) gate(g *Gate) {
	e.b = append(e.b, blockOpenObj...)
	e.b = append(e.b, `"passed": `...)
	e.bool(g.Passed)
	if g.Config != "" {
		e.key(blockSep, "config")
		e.str(g.Config)
	}
	if g.Against != "" {
		e.key(blockSep, "against")
		e.str(g.Against)
	}
	e.key(blockSep, "outcomes")
	if g.Outcomes == nil {
		e.b = append(e.b, "null"...)
	} else {
		e.b = append(e.b, '[')
		for i := range g.Outcomes {
			if i > 0 {
				e.b = append(e.b, ", "...)
			}
			e.outcome(&g.Outcomes[i])
		}
		e.b = append(e.b, ']')
	}
	e.b = append(e.b, blockCloseObj...)
}

func (e *jsonAppender) outcome(o *Outcome) {
	e.b = append(e.b, `{"check": `...)
	e.str(o.Check)
	e.key(", ", "subject")
	e.str(o.Subject)
	e.key(", ", "limit")
	e.float(o.Limit)
	e.key(", ", "actual")
	e.float(o.Actual)
	e.key(", ", "unit")
	e.str(o.Unit)
	e.key(", ", "status")
	e.str(string(o.Status))
	if o.Waiver != "" {
		e.key(", ", "waiver")
		e.str(o.Waiver)
	}
	e.key(", ", "message")
	e.str(o.Message)
	e.b = append(e.b, '}')
}

// remote appends the remote block, a field of the top-level object.
func (e *jsonAppender) remote(r *Remote) {
	e.b = append(e.b, blockOpenObj...)
	e.b = append(e.b, `"sources": `...)
	if r.Sources == nil {
		e.b = append(e.b, "null"...)
	} else {
		e.b = append(e.b, '[')
		for i, s := range r.Sources {
			if i > 0 {
				e.b = append(e.b, ", "...)
			}
			e.b = append(e.b, `{"source": `...)
			e.str(s.Source)
			for _, f := range [...]struct{ name, v string }{{"endpoint", s.Endpoint}, {"repo", s.Repo}, {"revision", s.Revision}, {"commit", s.Commit}} {
				if f.v != "" {
					e.key(", ", f.name)
					e.str(f.v)
				}
			}
			e.b = append(e.b, '}')
		}
		e.b = append(e.b, ']')
	}
	e.key(blockSep, "requests")
	e.int(r.Requests)
	e.key(blockSep, "bytes_received")
	e.int(r.BytesReceived)
	e.key(blockSep, "cache_hits")
	e.int(r.CacheHits)
	e.key(blockSep, "wall_ms")
	e.int(r.WallMillis)
	e.b = append(e.b, blockCloseObj...)
}

func (e *jsonAppender) diffRow(r *DiffRow, l level) {
	e.b = append(e.b, l.open...)
	e.b = append(e.b, `"key": `...)
	e.str(r.Key)
	e.key(l.sep, "status")
	e.str(string(r.Status))
	e.key(l.sep, "old_bytes")
	e.int(r.OldBytes)
	e.key(l.sep, "new_bytes")
	e.int(r.NewBytes)
	e.key(l.sep, "delta_bytes")
	e.int(r.DeltaBytes)
	e.key(l.sep, "delta_pct")
	e.float(r.DeltaPct)
	e.key(l.sep, "old_params")
	e.int(r.OldParams)
	e.key(l.sep, "new_params")
	e.int(r.NewParams)
	e.key(l.sep, "old_baseline_bytes")
	e.int(r.OldBaseline)
	e.key(l.sep, "new_baseline_bytes")
	e.int(r.NewBaseline)
	e.b = append(e.b, l.close...)
}
