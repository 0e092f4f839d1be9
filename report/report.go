// Package report turns an audit into the documents qinsaudit prints: the
// versioned JSON report (the contract dashboards and CI read), terminal
// tables, Markdown, CSV and a pprof profile of the stored bytes, and the
// diff of two reports as text, Markdown, CSV or JSON (report/html draws
// both as a page, report/gate judges them). Report holds figures as
// integers and the messages of findings and comparisons; each output
// format is one renderer over it, and every figure a renderer prints comes
// from the same fields the JSON carries.
package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"unsafe"

	gojson "github.com/goccy/go-json"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/hugepage"
	"github.com/qinsaudit/qinsaudit/internal/humane"
	"github.com/qinsaudit/qinsaudit/internal/safeio"
	"github.com/qinsaudit/qinsaudit/internal/version"
)

// SchemaVersion is the version of the JSON document. It changes only when a
// field changes meaning or goes away; new fields may appear in any version.
const SchemaVersion = 1

// Report is the JSON document `qinsaudit audit --format json` writes. See
// docs/json-schema.md for the meaning of every field.
type Report struct {
	SchemaVersion int    `json:"schema_version"`
	Tool          string `json:"tool"`
	ToolVersion   string `json:"tool_version,omitempty"` // absent in reports of before the field
	Baseline      string `json:"baseline"`               // dtype of the baseline: "float32", "float16", "bfloat16"
	Files         []File `json:"files"`
	// SkippedFiles are model files a directory held that were not read
	// (a pytorch_model.bin beside the model.safetensors that is); absent
	// when none were.
	SkippedFiles []SkippedFile `json:"skipped_files,omitempty"`
	Roles        []Group       `json:"roles"`
	Totals       Group         `json:"totals"`
	Layers       []Group       `json:"layers"`
	Modules      []Group       `json:"modules"`
	DTypes       []Group       `json:"dtypes"`
	Tensors      []Tensor      `json:"tensors"`
	Findings     []Finding     `json:"findings"`
	// Phases come from decode and profile, Comparisons from crosscheck,
	// decode, profile and check --heap.
	Phases      []Phase      `json:"phases,omitempty"`
	Comparisons []Comparison `json:"comparisons,omitempty"`
	// Gate comes from check.
	Gate *Gate `json:"gate,omitempty"`
	// Remote says where a model read over HTTP came from and what reading
	// it cost; absent for local files.
	Remote *Remote `json:"remote,omitempty"`

	// groupsListed says that each group list names each key once: true
	// of a report from New or one that passed Validate (which refuses a
	// key listed twice). NewDiff then follows a list, while the tensors'
	// keys come in its order, instead of looking every key up in a map;
	// out of order, it falls back to the map, so only the once matters.
	groupsListed bool
	// summary marks the report of a summary audit, built without its
	// lists by tensor and by module (see Summary).
	summary bool
}

// ErrSummary is the error of a renderer asked to write the tensors or
// modules of a summary report, which has neither.
var ErrSummary = errors.New("report: a summary report has no lists by tensor or module to write")

// Summary reports whether rep is the report of a summary audit
// (accounting.Options.Summary), for an output that shows neither tensors
// nor modules: the text and Markdown tables without a detail table by
// either (audit's default; see By.Lists). Building those lists was a tenth
// of a 10,000-tensor audit and its largest arrays at 100,000 (issue 11), so
// a summary report leaves them out, and the renderers that would show them
// refuse it (ErrSummary) rather than show empty lists.
func (r *Report) Summary() bool { return r.summary }

// Remote is the remote block: the sources as given, each pinned to a
// commit, and the cost of reading them. The costs never change a figure
// of the report; a header cache changes only them.
type Remote struct {
	Sources       []RemoteSource `json:"sources"`
	Requests      int64          `json:"requests"`       // HTTP requests sent, redirect hops and retries included
	BytesReceived int64          `json:"bytes_received"` // response body bytes
	CacheHits     int64          `json:"cache_hits"`     // files (and listings) read from the cache
	WallMillis    int64          `json:"wall_ms"`        // from the first request to the last byte
}

// RemoteSource is one remote model.
type RemoteSource struct {
	Source   string `json:"source"`             // as given
	Endpoint string `json:"endpoint,omitempty"` // the Hub (or mirror); absent for a plain URL
	Repo     string `json:"repo,omitempty"`
	Revision string `json:"revision,omitempty"` // as asked for
	Commit   string `json:"commit,omitempty"`   // the commit every file was read at
}

// File is one model file.
type File struct {
	Path   string `json:"path"`
	Format string `json:"format"`
	// Label is the quantization the file declares (GGUF general.file_type,
	// e.g. "MOSTLY_Q4_K_M"); absent when it declares none.
	Label         string `json:"label,omitempty"`
	SizeBytes     int64  `json:"size_bytes"`
	Tensors       int64  `json:"tensors"`
	StoredBytes   int64  `json:"stored_bytes"`
	OverheadBytes int64  `json:"overhead_bytes"`
}

// SkippedFile is a model file found but not read, and why.
type SkippedFile struct {
	Path      string `json:"path"`
	SizeBytes int64  `json:"size_bytes"`
	Reason    string `json:"reason"`
}

// Group sums tensors by role, layer, module or dtype; Totals sums the
// model. Exactly one of Role, Layer, Module, DType is set.
type Group struct {
	Role             string  `json:"role,omitempty"`
	Layer            string  `json:"layer,omitempty"`
	Module           *string `json:"module,omitempty"` // "" is the top-level module
	DType            string  `json:"dtype,omitempty"`
	Tensors          int64   `json:"tensors"`
	Params           int64   `json:"params"`
	BaselineBytes    int64   `json:"baseline_bytes"`
	TheoreticalBytes int64   `json:"theoretical_bytes"`
	StoredBytes      int64   `json:"stored_bytes"`
	Ratio            float64 `json:"ratio"`           // baseline_bytes / stored_bytes, 0 if nothing stored
	BitsPerWeight    float64 `json:"bits_per_weight"` // stored_bytes * 8 / params, 0 without params
}

// NoLayer is the layer key of the tensors outside any layer (embeddings,
// heads, final norms), in reports and diffs alike.
const NoLayer = "(no layer)"

// Key returns the group's role, layer or module name.
func (g Group) Key() string {
	switch {
	case g.Role != "":
		return g.Role
	case g.Layer != "":
		return g.Layer
	case g.Module != nil:
		return *g.Module
	case g.DType != "":
		return g.DType
	}
	return ""
}

// Tensor is one tensor's accounting.
type Tensor struct {
	Name              string   `json:"name"`
	File              string   `json:"file"`
	DType             string   `json:"dtype"`
	Shape             []int64  `json:"shape"`
	Numel             int64    `json:"numel"`
	ElementSize       float64  `json:"element_size"`
	Role              string   `json:"role"`
	Part              string   `json:"part"`
	Module            string   `json:"module"`
	Layer             string   `json:"layer"`
	Scheme            string   `json:"scheme"`
	Params            int64    `json:"params"`
	TheoreticalBytes  int64    `json:"theoretical_bytes"`
	StoredBytes       int64    `json:"stored_bytes"`
	BaselineBytes     int64    `json:"baseline_bytes"`
	DeadBytes         int64    `json:"dead_bytes"`
	SharesStorageWith []string `json:"shares_storage_with"`
	// Tied marks the very same view as an earlier tensor (a tied head):
	// one weight under two names, so group sums leave out its theoretical
	// bytes, as they do its params and baseline.
	Tied bool `json:"tied,omitempty"`
}

// Finding is something the audit noticed.
type Finding struct {
	Kind     string   `json:"kind"`
	Severity string   `json:"severity"` // "error", "warning", "info"
	Module   string   `json:"module"`
	Tensors  []string `json:"tensors"`
	Bytes    int64    `json:"bytes"`
	Message  string   `json:"message"`
}

// New builds the report of an audit: a summary report for a summary audit
// (see Report.Summary).
func New(r *accounting.Result) *Report {
	nModules, nTensors := len(r.Modules), len(r.Rows)
	if r.Summary {
		nTensors = 0 // and no modules: the audit made none
	}
	rep := &Report{
		SchemaVersion: SchemaVersion,
		Tool:          "qinsaudit",
		ToolVersion:   version.String(),
		Baseline:      r.Baseline,
		Files:         make([]File, 0, len(r.Files)),
		Roles:         make([]Group, 0, len(r.Roles)),
		Layers:        make([]Group, 0, len(r.Layers)),
		Modules:       make([]Group, 0, nModules),
		DTypes:        make([]Group, 0, len(r.DTypes)),
		Tensors:       make([]Tensor, 0, nTensors),
		Findings:      make([]Finding, 0, len(r.Findings)),
		groupsListed:  true,
		summary:       r.Summary,
	}
	hugepage.Advise(rep.Tensors)
	hugepage.Advise(rep.Modules)
	for _, f := range r.Files {
		rep.Files = append(rep.Files, File{Path: f.Path, Format: f.Format, Label: f.Label, SizeBytes: f.SizeBytes,
			Tensors: f.Tensors, StoredBytes: f.StoredBytes, OverheadBytes: f.OverheadBytes})
	}
	for _, f := range r.Skipped {
		rep.SkippedFiles = append(rep.SkippedFiles, SkippedFile{Path: f.Path, SizeBytes: f.SizeBytes, Reason: f.Reason})
	}
	for _, g := range r.Roles {
		x := group(g)
		x.Role = g.Key
		rep.Roles = append(rep.Roles, x)
	}
	rep.Totals = group(r.Total)
	rep.Totals.Role = "total"
	for _, g := range r.Layers {
		x := group(g)
		x.Layer = cmp.Or(g.Key, NoLayer)
		rep.Layers = append(rep.Layers, x)
	}
	keys := make([]string, nModules) // what Module points to: one allocation, not one a module
	for i, g := range r.Modules {
		keys[i] = g.Key
		x := group(g)
		x.Module = &keys[i]
		rep.Modules = append(rep.Modules, x)
	}
	for _, g := range r.DTypes {
		x := group(g)
		x.DType = g.Key
		rep.DTypes = append(rep.DTypes, x)
	}
	rep.Tensors = rep.Tensors[:nTensors]
	inChunks(nTensors, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			rep.Tensors[i] = newTensor(&r.Rows[i], r.Files)
		}
	})
	for _, f := range r.Findings {
		rep.Findings = append(rep.Findings, Finding{Kind: string(f.Kind), Severity: string(f.Severity),
			Module: f.Module, Tensors: f.Tensors, Bytes: f.Bytes, Message: f.Message})
	}
	return rep
}

func newTensor(row *accounting.Row, files []accounting.FileResult) Tensor {
	t := Tensor{
		Name: row.Name, DType: row.DType, Shape: row.Shape, Numel: row.Numel,
		ElementSize: row.ElementSize, Role: row.Role.String(), Part: string(row.Part),
		Module: row.Module, Layer: row.Layer, Scheme: row.Scheme, Params: row.Params,
		TheoreticalBytes: row.TheoreticalBytes, StoredBytes: row.StoredBytes,
		BaselineBytes: row.BaselineBytes, DeadBytes: row.DeadBytes,
		SharesStorageWith: row.SharesStorageWith, Tied: row.Tied,
	}
	if t.Shape == nil {
		t.Shape = []int64{}
	}
	if t.SharesStorageWith == nil {
		t.SharesStorageWith = []string{}
	}
	if row.File >= 0 && row.File < len(files) {
		t.File = files[row.File].Path
	}
	return t
}

// parallelTensors is the least number of tensors (or a chunk's, in
// inChunks) for which the report's work is shared among goroutines: below
// it, starting them costs about what they save.
const parallelTensors = 16384

// inChunks calls f on consecutive chunks of [0, n), on as many goroutines
// as the process may run at once when n is large enough to pay for them:
// a 100,000-tensor report's tensors are 24 MB of fresh memory, whose page
// faults and writes the cores share.
func inChunks(n int, f func(lo, hi int)) {
	k := min(runtime.GOMAXPROCS(0), n/parallelTensors)
	if k <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for c := range k {
		lo, hi := c*n/k, (c+1)*n/k
		if c == k-1 {
			f(lo, hi) // this goroutine takes the last chunk
			break
		}
		wg.Go(func() { f(lo, hi) })
	}
	wg.Wait()
}

// group is g's sums as a report group, its key left for the caller to set.
// (A function setting the key, passed in, made each group escape to the
// heap: 12 MB of garbage at 100,000 modules.)
func group(g accounting.Group) Group {
	return Group{Tensors: g.Tensors, Params: g.Params, BaselineBytes: g.BaselineBytes,
		TheoreticalBytes: g.TheoreticalBytes, StoredBytes: g.StoredBytes,
		Ratio: g.Ratio(), BitsPerWeight: g.BitsPerWeight()}
}

// WriteJSON writes rep as indented JSON: one line per field of the
// top-level object and per element of its arrays, each element on one
// line, so a 2,000-tensor report stays readable (and greppable, one tensor
// a line). See jsonwrite.go for how. A summary report is refused:
// ErrSummary.
func WriteJSON(w io.Writer, rep *Report) error {
	if rep.summary {
		return ErrSummary
	}
	return writeOut(w, reportRefused(rep), rep, func(e *jsonAppender) { e.report(rep) })
}

// layout spaces out compact JSON from json.Marshal: line breaks inside the
// top-level object and the containers directly in it, a space after every
// ':' and ',' deeper down. It relies on its input being valid JSON. It
// copies strings and other runs without structure whole (a byte-at-a-time
// copy was most of the time of writing a large report).
func layout(data []byte) []byte {
	out := make([]byte, 0, len(data)+len(data)/4)
	depth := 0
	newline := func(d int) {
		out = append(out, '\n')
		for range d {
			out = append(out, ' ', ' ')
		}
	}
	for i := 0; i < len(data); {
		j := i
		for j < len(data) && !structural[data[j]] {
			j++
		}
		out = append(out, data[i:j]...)
		if j == len(data) {
			break
		}
		i = j
		c := data[i]
		switch c {
		case '"':
			end := stringEnd(data, i)
			out = append(out, data[i:end]...)
			i = end
			continue
		case '{', '[':
			out = append(out, c)
			depth++
			if depth <= 2 && i+1 < len(data) && data[i+1] != '}' && data[i+1] != ']' {
				newline(depth)
			}
		case '}', ']':
			depth--
			if depth < 2 && data[i-1] != '{' && data[i-1] != '[' {
				newline(depth)
			}
			out = append(out, c)
		case ',':
			out = append(out, c)
			if depth <= 2 {
				newline(depth)
			} else {
				out = append(out, ' ')
			}
		case ':':
			out = append(out, ':', ' ')
		}
		i++
	}
	return append(out, '\n')
}

// MaxReportBytes is the hard cap on a saved report ReadJSON reads: a report
// lists every tensor, and a million-tensor model gives a few hundred MiB.
const MaxReportBytes = safeio.ReportLimit

// ReadFile reads the saved report at path: a regular file of at most
// MaxReportBytes (never more than its stated size + 1 read), checked by
// ReadJSON. Errors name the file.
func ReadFile(path string) (*Report, error) {
	data, err := safeio.ReadFileLimit(path, MaxReportBytes)
	if err != nil {
		return nil, err
	}
	rep, err := parseJSON(data, owned(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rep, nil
}

// ReadJSON reads a report written by WriteJSON (at most MaxReportBytes),
// refusing one of a schema version this build does not know and one whose
// figures are out of range or contradict each other (see Validate).
func ReadJSON(r io.Reader) (*Report, error) {
	data, err := safeio.ReadLimit(r, "report", -1, MaxReportBytes)
	if err != nil {
		return nil, err
	}
	return parseJSON(data, owned(data))
}

// owned is data as a string without a copy, for a buffer read here and
// never written again: the report's strings are substrings of it (see
// readFast), and copying 50 MB of a large report would cost as much as
// reading it.
func owned(data []byte) string { return unsafe.String(unsafe.SliceData(data), len(data)) }

// ParseJSON is ReadJSON of data in memory.
func ParseJSON(data []byte) (*Report, error) { return parseJSON(data, string(data)) }

// parseJSON reads data, a saved report, also given as the string s.
func parseJSON(data []byte, s string) (*Report, error) {
	if humane.Empty(data) {
		return nil, errors.New("empty file: not a qinsaudit JSON report (save one with qinsaudit audit --format json)")
	}
	var err error
	// The document's own schema_version (a pointer, to tell a missing one
	// from 0) shadows the embedded Report's.
	var doc struct {
		*Report
		SchemaVersion *int   `json:"schema_version"`
		Kind          string `json:"kind"` // "diff" in a diff's JSON, absent in a report
	}
	var fast bool
	doc.Report, doc.SchemaVersion, fast = readFast(s)
	// What the fast reader does not read, github.com/goccy/go-json does:
	// encoding/json reads at about 80 MB/s here (a validating scan, then
	// a reflective decode) and go-json 3.5 times as fast. Only when that
	// parse fails is the head read again, to say which error comes first:
	// not a report, a schema version this build does not read, or a bad
	// field.
	if !fast {
		doc.Report, doc.SchemaVersion = new(Report), nil
		if gojson.Unmarshal(data, &doc) != nil {
			// encoding/json says what is wrong, as it always did, and keeps
			// the last word on what a report is.
			doc.Report, doc.SchemaVersion = new(Report), nil
			err = json.Unmarshal(data, &doc)
		}
	}
	if err != nil {
		var head struct {
			SchemaVersion *int   `json:"schema_version"`
			Tool          string `json:"tool"`
			Kind          string `json:"kind"`
		}
		if herr := json.Unmarshal(data, &head); herr != nil {
			return nil, fmt.Errorf("not a qinsaudit JSON report: %w", jsonErr(data, herr))
		}
		doc.SchemaVersion, doc.Tool, doc.Kind = head.SchemaVersion, head.Tool, head.Kind
	}
	if doc.Kind == "diff" {
		return nil, errors.New("a diff (qinsaudit diff --format json), not a report: save a report with qinsaudit audit --format json")
	}
	if doc.SchemaVersion == nil || doc.Tool != "qinsaudit" {
		return nil, fmt.Errorf("not a qinsaudit JSON report: no \"tool\": \"qinsaudit\" and \"schema_version\"")
	}
	if v := *doc.SchemaVersion; v < 1 || v > SchemaVersion {
		return nil, fmt.Errorf("report schema_version %d is not supported (this qinsaudit reads 1 to %d)", v, SchemaVersion)
	}
	if err != nil {
		return nil, fmt.Errorf("reading report: %w", jsonErr(data, err))
	}
	doc.Report.SchemaVersion = *doc.SchemaVersion
	if err := doc.Report.Validate(); err != nil {
		return nil, fmt.Errorf("report refused: %w", err)
	}
	return doc.Report, nil
}

// jsonErr adds a line number to a JSON syntax or type error.
func jsonErr(data []byte, err error) error {
	var off int64 = -1
	switch e := err.(type) {
	case *json.SyntaxError:
		off = e.Offset
	case *json.UnmarshalTypeError:
		off = e.Offset
	}
	if off < 0 {
		return err
	}
	line := 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n"))
	return fmt.Errorf("line %d: %s", line, humane.JSON(err))
}

// structural marks the bytes layout acts on outside strings.
var structural = [256]bool{'"': true, '{': true, '[': true, '}': true, ']': true, ',': true, ':': true}

// stringEnd returns the index after the JSON string that starts at
// data[start] ('"'): the first quote after it not escaped by an odd run of
// backslashes.
func stringEnd(data []byte, start int) int {
	i := start + 1
	for {
		k := bytes.IndexByte(data[i:], '"')
		if k < 0 {
			return len(data)
		}
		q := i + k
		bs := 0
		for b := q - 1; b > start && data[b] == '\\'; b-- {
			bs++
		}
		if bs%2 == 0 {
			return q + 1
		}
		i = q + 1
	}
}
