package report

import (
	"cmp"
	"encoding/binary"
	"encoding/csv"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/hugepage"
	"github.com/qinsaudit/qinsaudit/internal/neutral"
	"github.com/qinsaudit/qinsaudit/internal/version"
)

// Diff compares two reports row by row: per role, layer, module or tensor,
// keyed by name, so re-sharding a model changes nothing. Sizes are stored
// bytes.
type Diff struct {
	SchemaVersion int       `json:"schema_version"`
	Tool          string    `json:"tool"`
	ToolVersion   string    `json:"tool_version,omitempty"`
	Kind          string    `json:"kind"` // "diff"
	By            DiffBy    `json:"by"`
	Old           []File    `json:"old_files"`
	New           []File    `json:"new_files"`
	Rows          []DiffRow `json:"rows"`
	Total         DiffRow   `json:"total"`
}

// DiffRow is one key's stored bytes in the old and the new report.
type DiffRow struct {
	Key         string    `json:"key"`
	Status      RowStatus `json:"status"`
	OldBytes    int64     `json:"old_bytes"`
	NewBytes    int64     `json:"new_bytes"`
	DeltaBytes  int64     `json:"delta_bytes"`
	DeltaPct    float64   `json:"delta_pct"` // 100*delta/old; 0 when old is 0
	OldParams   int64     `json:"old_params"`
	NewParams   int64     `json:"new_params"`
	OldBaseline int64     `json:"old_baseline_bytes"`
	NewBaseline int64     `json:"new_baseline_bytes"`
}

// RowStatus says how a diff row changed between the old and the new side.
type RowStatus string

// The statuses of a diff row.
const (
	RowChanged RowStatus = "changed"
	RowSame    RowStatus = "same"
	RowAdded   RowStatus = "added"   // only on the new side
	RowRemoved RowStatus = "removed" // only on the old side
)

// DiffBy is what a diff's rows are keyed by (diff --by).
type DiffBy string

// The keys of a diff's rows (see NewDiff).
const (
	DiffByRole        DiffBy = "role"
	DiffByRoleMatched DiffBy = "role-matched"
	DiffByLayer       DiffBy = "layer"
	DiffByModule      DiffBy = "module"
	DiffByDType       DiffBy = "dtype"
	DiffByTensor      DiffBy = "tensor"
)

// DiffByValues lists the keys a diff can be taken by, for flags.
var DiffByValues = values(DiffByRole, DiffByRoleMatched, DiffByLayer, DiffByModule, DiffByDType, DiffByTensor)

// NewDiff compares old and new by role, layer, module, dtype or tensor. Rows are
// sorted by the size of their change, largest first; unchanged rows last,
// in name order. A diff sums the reports' tensors: it panics on a summary
// report (Report.Summary).
//
// By role, each side's rows are its audit's roles, so their figures equal
// what audit says of each side. By "role-matched", the weight of a module
// that is an encoded linear in either report counts as one in both: an
// fp32 linear replaced by its encoded form is then the same linear,
// shrunk, rather than untouched bytes removed and encoded ones added.
func NewDiff(old, new *Report, by DiffBy) *Diff {
	d := diffRows(old, new, by)
	sortDiffRows(d.Rows)
	return d
}

// NewDiffChanges is NewDiff for a reader of the changes in stored bytes
// alone, such as a gate: the rows whose stored bytes changed come first,
// in NewDiff's order, and the rows whose stored bytes did not follow in no
// given order. A gate of a model of 100,000 modules against its saved
// report then sorts the few that changed, not the names of all.
func NewDiffChanges(old, new *Report, by DiffBy) *Diff {
	d := diffRows(old, new, by)
	changed := 0
	for i := range d.Rows {
		if d.Rows[i].DeltaBytes != 0 {
			d.Rows[changed], d.Rows[i] = d.Rows[i], d.Rows[changed]
			changed++
		}
	}
	sortDiffRows(d.Rows[:changed])
	return d
}

// compareRows orders diff rows by the size of their change, largest
// first, then by key.
func compareRows(a, b DiffRow) int {
	if c := cmp.Compare(accounting.Abs(b.DeltaBytes), accounting.Abs(a.DeltaBytes)); c != 0 {
		return c
	}
	return strings.Compare(a.Key, b.Key)
}

// sortDiffRows sorts rows by compareRows. Keys are unique, so the order is
// total and the sort need not be stable. Past a few thousand rows it
// sorts their positions by the change and by the eight bytes of the key
// after the prefix all keys share, so that most comparisons read no key:
// sorting 100,000 tensor names, which lie all over a 64 MB report, took
// a third of a diff by tensor, in cache misses.
func sortDiffRows(rows []DiffRow) {
	if len(rows) < 4096 {
		slices.SortFunc(rows, compareRows)
		return
	}
	skip := len(rows[0].Key)
	for i := range rows {
		k := rows[i].Key
		skip = min(skip, len(k))
		for skip > 0 && k[:skip] != rows[0].Key[:skip] {
			skip--
		}
	}
	type pos struct {
		abs int64  // the change, for the order largest first
		pre uint64 // the eight bytes after skip, big endian, zeros past the end
		i   int
	}
	ps := make([]pos, len(rows))
	for i := range rows {
		var b [8]byte
		copy(b[:], rows[i].Key[skip:])
		ps[i] = pos{accounting.Abs(rows[i].DeltaBytes), binary.BigEndian.Uint64(b[:]), i}
	}
	slices.SortFunc(ps, func(a, b pos) int {
		switch {
		case a.abs != b.abs:
			return cmp.Compare(b.abs, a.abs)
		case a.pre != b.pre:
			return cmp.Compare(a.pre, b.pre)
		}
		return strings.Compare(rows[a.i].Key[skip:], rows[b.i].Key[skip:])
	})
	sorted := make([]DiffRow, len(rows))
	hugepage.Advise(sorted)
	for k, p := range ps {
		sorted[k] = rows[p.i]
	}
	copy(rows, sorted)
}

// indexOf maps each key of order to its position, with room for n keys.
func indexOf(order []string, n int) map[string]int {
	idx := make(map[string]int, max(n, len(order)))
	for i, k := range order {
		idx[k] = i
	}
	return idx
}

// keysAtMost is the room to make in the index of r's keys by by, from
// its i-th tensor on, with n keys seen before it: each tensor's own name
// by tensor (a map grown from nothing, rehashing as it goes, was a third
// of a 100,000-tensor diff's rows), the group list's length where there is
// one, and twice what is seen otherwise.
func keysAtMost(r *Report, by DiffBy, hint []Group, i, n int) int {
	if by == DiffByTensor {
		return n + len(r.Tensors) - i
	}
	return max(len(hint), 2*n)
}

// diffRows is NewDiff before its sort: rows in order of first appearance.
func diffRows(old, new *Report, by DiffBy) *Diff {
	if old.summary || new.summary {
		panic(ErrSummary) // a diff sums tensors: a caller's mistake, not an input's
	}
	d := &Diff{SchemaVersion: SchemaVersion, Tool: "qinsaudit", ToolVersion: version.String(), Kind: "diff", By: by, Old: old.Files, New: new.Files}
	// By role-matched, the modules that are encoded linears on either side.
	var encoded map[string]bool
	if by == DiffByRoleMatched {
		encoded = map[string]bool{}
		for _, r := range []*Report{old, new} {
			for i := range r.Tensors {
				if t := &r.Tensors[i]; t.Role == "encoded_linear" {
					encoded[t.Module] = true
				}
			}
		}
	}
	type acc struct{ bytes, params, baseline int64 }
	// sum sums r's tensors by key: the sums in order of the keys' first
	// appearance, the keys in that order, and (unless nil) the index of
	// each key's sums. hint is r's own groups by the key when they list
	// each key once (see groupsListed): while the keys follow it, a key
	// unlike the last is hint's next, and no map is needed (a model of
	// 100,000 modules, diffed or gated by module, made a map lookup per
	// key most of the cost). From the first key that does not follow it,
	// or without hint, a map finds each key's sums.
	sum := func(r *Report, hint []Group) (map[string]int, []acc, []string) {
		var idx map[string]int
		// Room for the keys there will be, where that is known (by tensor,
		// a key a tensor; hint's), spares the appends' copies of 100,000
		// sums and keys.
		n := len(hint)
		if by == DiffByTensor {
			n = len(r.Tensors)
		}
		sums, order := make([]acc, 0, n), make([]string, 0, n)
		last, lastKey := -1, ""
		for i := range r.Tensors {
			t := &r.Tensors[i]
			if t.Role == "optimizer_state" {
				continue
			}
			var key string
			switch by {
			case "layer":
				key = cmp.Or(t.Layer, NoLayer)
			case "module":
				key = t.Module
			case "tensor":
				key = t.Name
			case "dtype":
				key = t.DType
			case "role-matched":
				key = t.Role
				if encoded[t.Module] && (t.Part == "weight" || t.Part == "leftover_weight") {
					key = "encoded_linear"
				}
			default:
				key = t.Role
			}
			if last < 0 || key != lastKey { // neighbours mostly share a key
				j, ok := len(sums), false
				switch {
				case idx == nil && j < len(hint) && key == hint[j].Key():
					// a new key: order is hint[:j], which lists each once
				case idx == nil:
					idx = indexOf(order, keysAtMost(r, by, hint, i, len(order)))
					fallthrough
				default:
					j, ok = idx[key]
				}
				if !ok {
					j = len(sums)
					if idx != nil {
						idx[key] = j
					}
					sums = append(sums, acc{})
					order = append(order, key)
				}
				last, lastKey = j, key
			}
			a := &sums[last]
			a.bytes += t.StoredBytes
			a.params += t.Params
			a.baseline += t.BaselineBytes
		}
		return idx, sums, order
	}
	hint := func(r *Report) []Group {
		if !r.groupsListed {
			return nil
		}
		switch by {
		case "module":
			return r.Modules
		case "layer":
			return r.Layers
		}
		return nil // roles and dtypes are few; tensors have no group list
	}
	// The two sides are summed at once when both are large (each sum of
	// 100,000 tensors is some 50 ms, mostly cache misses on the names).
	var osums, nsums []acc
	var oorder, norder []string
	var nidx map[string]int
	sumOld := func() { _, osums, oorder = sum(old, hint(old)) }
	if min(len(old.Tensors), len(new.Tensors)) >= parallelTensors && runtime.GOMAXPROCS(0) > 1 {
		var wg sync.WaitGroup
		wg.Go(sumOld)
		nidx, nsums, norder = sum(new, hint(new))
		wg.Wait()
	} else {
		sumOld()
		nidx, nsums, norder = sum(new, hint(new))
	}
	// Rows in order of first appearance: the old side's keys, then those
	// only the new side has.
	d.Rows = make([]DiffRow, 0, len(oorder)+len(norder))
	hugepage.Advise(d.Rows)
	add := func(k string, o, n acc, inOld, inNew bool) {
		row := DiffRow{Key: k, OldBytes: o.bytes, NewBytes: n.bytes, OldParams: o.params, NewParams: n.params,
			OldBaseline: o.baseline, NewBaseline: n.baseline}
		row.finish()
		switch {
		case !inOld:
			row.Status = RowAdded
		case !inNew:
			row.Status = RowRemoved
		}
		d.Rows = append(d.Rows, row)
		d.Total.OldBytes += row.OldBytes
		d.Total.NewBytes += row.NewBytes
		d.Total.OldParams += row.OldParams
		d.Total.NewParams += row.NewParams
		d.Total.OldBaseline += row.OldBaseline
		d.Total.NewBaseline += row.NewBaseline
	}
	// The sides' keys pair up in step, with no lookup, while they come in
	// the same order (a model against its own saved report, or one whose
	// sizes alone changed); a key out of step is looked up, and the walk
	// goes on from its partner. Each side lists each key once, so a key
	// pairs with at most one.
	paired := make([]bool, len(norder))
	next := 0 // the new side's key after the last one paired
	for i, k := range oorder {
		j, ok := next, next < len(norder) && norder[next] == k
		if !ok {
			if nidx == nil {
				nidx = indexOf(norder, 0)
			}
			j, ok = nidx[k]
		}
		if !ok {
			add(k, osums[i], acc{}, true, false)
			continue
		}
		paired[j] = true
		add(k, osums[i], nsums[j], true, true)
		next = j + 1
	}
	for j, k := range norder {
		if !paired[j] {
			add(k, acc{}, nsums[j], false, true)
		}
	}
	d.Total.Key = "total"
	d.Total.finish()
	return d
}

func (r *DiffRow) finish() {
	r.DeltaBytes = r.NewBytes - r.OldBytes
	r.Status = RowSame
	if r.DeltaBytes != 0 || r.OldParams != r.NewParams {
		r.Status = RowChanged
	}
	if r.OldBytes != 0 {
		r.DeltaPct = 100 * float64(r.DeltaBytes) / float64(r.OldBytes)
	}
}

// WriteDiffJSON writes d as indented JSON.
func WriteDiffJSON(w io.Writer, d *Diff) error {
	return writeOut(w, diffRefused(d), d, func(e *jsonAppender) { e.diff(d) })
}

// WriteDiffText writes d as a side-by-side table: old, new, delta and
// delta %, with one unit for the three size columns so they compare at a
// glance.
func WriteDiffText(w io.Writer, d *Diff, opts TextOptions) error {
	return writeDiff(w, d, opts, false)
}

// WriteDiffMarkdown writes d as a Markdown table.
func WriteDiffMarkdown(w io.Writer, d *Diff, opts TextOptions) error {
	return writeDiff(w, d, opts, true)
}

func writeDiff(w io.Writer, d *Diff, opts TextOptions, md bool) error {
	return writeTables(w, "qinsaudit diff", md, opts.Width, diffTable(d, opts))
}

func diffTable(d *Diff, opts TextOptions) *table {
	rows := top(d.Rows, opts.Top)
	var vals []int64
	for _, r := range append(rows[:len(rows):len(rows)], d.Total) {
		vals = append(vals, r.OldBytes, r.NewBytes, r.DeltaBytes)
	}
	s := columnScale(vals, opts.Bytes)
	line := func(r DiffRow) []string {
		return []string{r.Key, s.format(r.OldBytes), s.format(r.NewBytes), signed(s, r.DeltaBytes), pct(r)}
	}
	t := &table{
		header: []string{string(d.By), s.header("old"), s.header("new"), s.header("delta"), "delta %"},
		right:  []bool{false, true, true, true, true},
	}
	for _, r := range rows {
		t.rows = append(t.rows, line(r))
	}
	t.footer = line(d.Total)
	return t
}

func signed(s scale, v int64) string {
	if v > 0 {
		return "+" + s.format(v)
	}
	return s.format(v)
}

// pct formats a row's relative change; rows that appear or disappear say
// so instead.
func pct(r DiffRow) string {
	switch r.Status {
	case RowAdded:
		return "new"
	case RowRemoved:
		return "removed"
	}
	if r.DeltaBytes == 0 {
		return "~"
	}
	if r.OldBytes == 0 {
		return "-"
	}
	return fmtPct(r.DeltaPct)
}

func fmtPct(p float64) string { return fmt.Sprintf("%+.1f%%", p) }

// WriteDiffCSV writes d's rows and total with exact values.
func WriteDiffCSV(w io.Writer, d *Diff) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{string(d.By), "status", "old_bytes", "new_bytes", "delta_bytes", "delta_pct", "old_params", "new_params", "old_baseline_bytes", "new_baseline_bytes"})
	for _, r := range append(d.Rows[:len(d.Rows):len(d.Rows)], d.Total) {
		cw.Write([]string{neutral.CSV(r.Key), string(r.Status), i64(r.OldBytes), i64(r.NewBytes), i64(r.DeltaBytes),
			strconv.FormatFloat(r.DeltaPct, 'g', -1, 64), i64(r.OldParams), i64(r.NewParams), i64(r.OldBaseline), i64(r.NewBaseline)})
	}
	cw.Flush()
	return cw.Error()
}

func i64(v int64) string { return strconv.FormatInt(v, 10) }
