package report

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/pkg/twwidth"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/qinsaudit/qinsaudit/internal/neutral"
)

// TextOptions are the choices of the text and Markdown renderers.
type TextOptions struct {
	// By adds a detail table: ByTensor, ByModule, ByLayer, ByDType; ByRole
	// or "" shows the role summary only.
	By By
	// Sort orders detail rows by a SortKey; "" keeps file order.
	Sort SortKey
	// Top keeps the first Top detail rows; 0 keeps all.
	Top int
	// Bytes prints exact byte counts instead of IEC-scaled ones.
	Bytes bool
	// Width is the widest line, in display columns, a text table may
	// take: long messages and headers wrap inside their cells to fit it.
	// 0 is no limit; Markdown is never wrapped.
	Width int
}

// By is what a detail table (audit --by) groups rows by.
type By string

// The detail tables.
const (
	ByRole   By = "role"
	ByModule By = "module"
	ByLayer  By = "layer"
	ByDType  By = "dtype"
	ByTensor By = "tensor"
)

// Lists reports whether the detail table by b is one of the lists a
// summary report leaves out (see Report.Summary).
func (b By) Lists() bool { return b == ByTensor || b == ByModule }

// SortKey orders detail rows (audit --sort).
type SortKey string

// The sort keys: the numbers largest first, names in order.
const (
	SortStored      SortKey = "stored"
	SortBaseline    SortKey = "baseline"
	SortTheoretical SortKey = "theoretical"
	SortParams      SortKey = "params"
	SortRatio       SortKey = "ratio"
	SortBits        SortKey = "bits"
	SortName        SortKey = "name"
)

// ByValues and SortValues list the accepted option values, for flags.
var (
	ByValues   = values(ByRole, ByModule, ByLayer, ByDType, ByTensor)
	SortValues = values(SortStored, SortBaseline, SortTheoretical, SortParams, SortRatio, SortBits, SortName)
)

func values[T ~string](vs ...T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// WriteText writes rep as terminal tables: the files, the role summary with
// a total row, an optional detail table, and the findings.
func WriteText(w io.Writer, rep *Report, opts TextOptions) error {
	return write(w, rep, opts, false)
}

// WriteMarkdown writes rep as GitHub-flavoured Markdown, for pull-request
// comments and job summaries.
func WriteMarkdown(w io.Writer, rep *Report, opts TextOptions) error {
	return write(w, rep, opts, true)
}

func write(w io.Writer, rep *Report, opts TextOptions, md bool) error {
	if rep.summary && opts.By.Lists() {
		return ErrSummary
	}
	return writeTables(w, "qinsaudit", md, opts.Width, filesTable(rep, opts), rolesTable(rep, opts), detailTable(rep, opts),
		phasesTable(rep, opts), comparisonsTable(rep, opts), findingsTable(rep, opts), skippedTable(rep, opts), gateTable(rep, md))
}

// writeTables renders tables one after another, skipping nil ones; in
// Markdown under a "## heading".
func writeTables(w io.Writer, heading string, md bool, width int, tables ...*table) error {
	bw := bufio.NewWriter(w)
	if md {
		fmt.Fprintf(bw, "## %s\n\n", heading)
	}
	sep := false
	for _, t := range tables {
		if t == nil {
			continue
		}
		if sep {
			fmt.Fprintln(bw)
		}
		sep = true
		if md && t.title != "" {
			fmt.Fprintf(bw, "### %s\n\n", neutral.Markdown(t.title))
		} else if t.title != "" {
			fmt.Fprintf(bw, "%s\n", neutral.Cell(t.title))
		}
		if err := t.render(bw, md, width); err != nil {
			return err
		}
		if md && len(t.notes) > 0 {
			fmt.Fprintln(bw)
		}
		for _, n := range t.notes { // the renderers' own text, never an input's
			if !md && width > 0 {
				n = wrap(n, width, splitWords, indent)
			}
			fmt.Fprintf(bw, "%s\n", n)
		}
	}
	return bw.Flush()
}

// tables keep made tablewriter tables for reuse, one pool per renderer
// (text, Markdown) so that no option of one leaks into the other: every
// render sets the same options on a table that Reset emptied.
// tablewriter.NewTable allocates a 10,240-entry cache for its
// reflection-based stringer (440 KB per table, more than an audit's whole
// report, and most of a small command's time), which no option turns off
// and which tables of strings never use; Reset purges a cache by making it
// again, so a made table gets noStringerCache instead and a process makes
// one table per renderer, not one per table rendered.
var tables [2]sync.Pool

// noWidthCache turns off tablewriter's process-wide cache of string widths
// (an 8,192-entry LRU behind a mutex) before the first table: a cell's width
// is a short scan of ASCII, cheaper than the cache's hashing and locking, and
// a table of more distinct cells than the cache holds (a diff by module of a
// large model) misses on every lookup and evicts on every insertion.
var noWidthCache = sync.OnceFunc(func() { twwidth.SetCacheCapacity(0) })

// noStringerCache is a tablewriter stringer cache that keeps nothing: the
// cells are strings already, so the stringer never runs.
type noStringerCache struct{}

func (noStringerCache) Add(reflect.Type, reflect.Value) bool        { return false }
func (noStringerCache) Get(reflect.Type) (v reflect.Value, ok bool) { return v, false }
func (noStringerCache) Purge()                                      {}

type pooledTable struct {
	buf *bytes.Buffer
	tab *tablewriter.Table
}

// table is a renderer-neutral table: strings only, made from the report's
// numbers by the functions below.
type table struct {
	title  string
	header []string
	right  []bool // right-align column i
	rows   [][]string
	footer []string
	notes  []string
}

// render writes t; a text table's lines fit width display columns (0: no
// limit), see fit.
func (t *table) render(w io.Writer, md bool, width int) error {
	return t.renderFit(w, md, width, true)
}

// renderFit is render; with under, a column too narrow to read in its
// row may move out of it (see fitMoving).
func (t *table) renderFit(w io.Writer, md bool, width int, under bool) error {
	// Every cell is neutralised here, whatever table it is in: names come
	// from strangers' files (see internal/neutral). A message column (ours,
	// not a name) keeps up to MessageBytes. Cells are neutralised first,
	// then wrapped to the width: a wrapped cell's line breaks are ours.
	cell, message := neutral.Cell, neutral.MessageCell
	if md {
		cell, message = neutral.Markdown, neutral.MarkdownMessage
	}
	clean := func(row []string) []string {
		if row == nil {
			return nil
		}
		out := make([]string, len(row))
		for i, c := range row {
			if i < len(t.header) && t.header[i] == "message" {
				out[i] = message(c)
			} else {
				out[i] = cell(c)
			}
		}
		return out
	}
	header := clean(t.header)
	rows := make([][]string, len(t.rows), len(t.rows)+1)
	for i, r := range t.rows {
		rows[i] = clean(r)
	}
	footer := clean(t.footer)
	right := t.right
	gap := 2
	var moved *movedCells // cells moved out of their rows to fit
	if !md && width > 0 {
		var l fitting
		header, rows, footer, right, moved, l = fitMoving(header, rows, footer, right, width, under)
		l.apply(header, rows, footer)
		gap = l.gap
	}
	align := make([]tw.Align, len(header))
	for i := range align {
		align[i] = tw.AlignLeft
		if right[i] {
			align[i] = tw.AlignRight
		}
	}
	opts := []tablewriter.Option{
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithFooterAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignmentConfig(tw.CellAlignment{PerColumn: align}),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}),
		tablewriter.WithFooterAlignmentConfig(tw.CellAlignment{PerColumn: align}),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
	}
	if md {
		opts = append(opts, tablewriter.WithRenderer(renderer.NewMarkdown()))
	} else {
		opts = append(opts,
			tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
				Borders: tw.BorderNone,
				Symbols: tw.NewSymbols(tw.StyleASCII),
				Settings: tw.Settings{
					Separators: tw.Separators{BetweenColumns: tw.Off, BetweenRows: tw.Off},
					Lines:      tw.Lines{ShowHeaderLine: tw.On, ShowFooterLine: tw.On},
				},
			})),
			tablewriter.WithPadding(tw.Padding{Left: "", Right: strings.Repeat(" ", gap), Overwrite: true}),
		)
	}
	kind := 0
	if md {
		kind = 1
	}
	noWidthCache()
	pt, _ := tables[kind].Get().(*pooledTable)
	if pt == nil {
		pt = &pooledTable{buf: new(bytes.Buffer)}
		pt.tab = tablewriter.NewTable(pt.buf, tablewriter.WithStringerCacheCustom(noStringerCache{}))
	}
	defer tables[kind].Put(pt)
	pt.buf.Reset()
	tab, buf := pt.tab, pt.buf
	tab.Reset()
	tab.Options(opts...)
	tab.Header(header)
	if md && t.footer != nil {
		// Markdown has no footer: the total is a last, bold row.
		for i, c := range footer {
			if c != "" {
				footer[i] = "**" + c + "**"
			}
		}
		rows = append(rows, footer)
	}
	if err := tab.Bulk(rows); err != nil {
		return err
	}
	if !md && t.footer != nil {
		tab.Footer(footer)
	}
	if err := tab.Render(); err != nil {
		return err
	}
	// Trailing blanks from padding make diffs and goldens noisy; a rule
	// ends where the last column does, not after its padding.
	out := buf.String()
	if moved != nil {
		var ok bool
		if out, ok = moved.splice(out, header, rows, footer, width); !ok {
			// Not the lines expected of tablewriter: the messages stay
			// in their column rather than be lost.
			return t.renderFit(w, md, width, false)
		}
	}
	for _, line := range strings.SplitAfter(out, "\n") {
		trimmed := strings.TrimRight(line, " \n")
		if line == "" {
			continue
		}
		if !md && len(trimmed) > gap && strings.Contains(trimmed, "-") && strings.Trim(trimmed, "- ") == "" {
			trimmed = trimmed[:len(trimmed)-gap]
		}
		if _, err := io.WriteString(w, trimmed+"\n"); err != nil {
			return err
		}
	}
	return nil
}

func filesTable(rep *Report, opts TextOptions) *table {
	var sizes []int64
	for _, f := range rep.Files {
		sizes = append(sizes, f.SizeBytes, f.StoredBytes, f.OverheadBytes)
	}
	s := columnScale(sizes, opts.Bytes)
	t := &table{
		header: []string{"file", "format", "tensors", s.header("size"), s.header("stored"), s.header("overhead")},
		right:  []bool{false, false, true, true, true, true},
	}
	labels := false
	for _, f := range rep.Files {
		labels = labels || f.Label != ""
	}
	if labels {
		t.header = append(t.header, "declared")
		t.right = append(t.right, false)
	}
	for _, f := range rep.Files {
		row := []string{f.Path, f.Format, count(f.Tensors), s.format(f.SizeBytes), s.format(f.StoredBytes), s.format(f.OverheadBytes)}
		if labels {
			row = append(row, f.Label)
		}
		t.rows = append(t.rows, row)
	}
	if rep.Remote != nil {
		t.notes = append(t.notes, rep.Remote.Line(opts.Bytes))
	}
	return t
}

// Line is the remote block in one line, as text, Markdown and HTML show
// it; exact prints bytes as integers.
func (r *Remote) Line(exact bool) string {
	var srcs []string
	for _, s := range r.Sources {
		// The source is typed by a user, the commit read from a server:
		// shown, never obeyed by the terminal.
		x := neutral.Clip(neutral.Escape(s.Source), 300)
		if s.Commit != "" {
			x += " at commit " + neutral.Escape(s.Commit)
		}
		srcs = append(srcs, x)
	}
	s := columnScale([]int64{r.BytesReceived}, exact)
	return fmt.Sprintf("remote: %s; %s requests, %s %s received, %s cache hits, %d ms",
		strings.Join(srcs, ", "), count(r.Requests), s.format(r.BytesReceived), s.unit, count(r.CacheHits), r.WallMillis)
}

// skippedTable lists the model files found but not read, nil when none
// were.
func skippedTable(rep *Report, opts TextOptions) *table {
	if len(rep.SkippedFiles) == 0 {
		return nil
	}
	var sizes []int64
	for _, f := range rep.SkippedFiles {
		sizes = append(sizes, f.SizeBytes)
	}
	s := columnScale(sizes, opts.Bytes)
	t := &table{
		title:  "skipped files",
		header: []string{"file", s.header("size"), "why"},
		right:  []bool{false, true, false},
	}
	for _, f := range rep.SkippedFiles {
		t.rows = append(t.rows, []string{f.Path, s.format(f.SizeBytes), f.Reason})
	}
	return t
}

// groupTable lays out groups with one unit per size column.
func groupTable(title, keyTitle, baseline string, gs []Group, total *Group, opts TextOptions) *table {
	var base, theo, stored []int64
	all := gs
	if total != nil {
		all = append(all[:len(all):len(all)], *total)
	}
	for _, g := range all {
		base = append(base, g.BaselineBytes)
		theo = append(theo, g.TheoreticalBytes)
		stored = append(stored, g.StoredBytes)
	}
	sb, st, ss := columnScale(base, opts.Bytes), columnScale(theo, opts.Bytes), columnScale(stored, opts.Bytes)
	line := func(key string, g Group) []string {
		return []string{key, count(g.Tensors), count(g.Params), sb.format(g.BaselineBytes), st.format(g.TheoreticalBytes),
			ss.format(g.StoredBytes), Ratio(g.Ratio), BitsPerWeight(g.BitsPerWeight)}
	}
	t := &table{
		title:  title,
		header: []string{keyTitle, "tensors", "params", sb.header(baseline + " baseline"), st.header("theoretical"), ss.header("stored"), "ratio", "bits/weight"},
		right:  []bool{false, true, true, true, true, true, true, true},
	}
	for _, g := range gs {
		key := orTopLevel(g.Key())
		if g.Role == "optimizer_state" {
			key += " *"
			t.notes = append(t.notes, "* optimizer state is saved in the checkpoint but is not part of the model: not in the total")
		}
		t.rows = append(t.rows, line(key, g))
	}
	if total != nil {
		t.footer = line("total", *total)
	}
	return t
}

func rolesTable(rep *Report, opts TextOptions) *table {
	return groupTable("", "role", rep.Baseline, rep.Roles, &rep.Totals, opts)
}

func detailTable(rep *Report, opts TextOptions) *table {
	switch opts.By {
	case "module":
		return groupTable("by module", "module", rep.Baseline, top(sortGroups(rep.Modules, opts.Sort), opts.Top), nil, opts)
	case "layer":
		return groupTable("by layer", "layer", rep.Baseline, top(sortGroups(rep.Layers, opts.Sort), opts.Top), nil, opts)
	case "dtype":
		return groupTable("by dtype", "dtype", rep.Baseline, top(sortGroups(rep.DTypes, opts.Sort), opts.Top), nil, opts)
	case "tensor":
		return tensorTable(rep, opts)
	}
	return nil
}

func tensorTable(rep *Report, opts TextOptions) *table {
	ts := top(sortTensors(rep.Tensors, opts.Sort), opts.Top)
	var theo, stored, base []int64
	for _, x := range ts {
		theo, stored, base = append(theo, x.TheoreticalBytes), append(stored, x.StoredBytes), append(base, x.BaselineBytes)
	}
	sb, st, ss := columnScale(base, opts.Bytes), columnScale(theo, opts.Bytes), columnScale(stored, opts.Bytes)
	t := &table{
		title:  "by tensor",
		header: []string{"tensor", "dtype", "shape", "role", "part", "scheme", sb.header(rep.Baseline + " baseline"), st.header("theoretical"), ss.header("stored")},
		right:  []bool{false, false, false, false, false, false, true, true, true},
	}
	for _, x := range ts {
		scheme := x.Scheme
		if scheme == "" {
			scheme = "-"
		}
		dims := make([]string, len(x.Shape))
		for i, d := range x.Shape {
			dims[i] = fmt.Sprint(d)
		}
		t.rows = append(t.rows, []string{orTopLevel(x.Name), x.DType, "[" + strings.Join(dims, ",") + "]", x.Role, x.Part, scheme,
			sb.format(x.BaselineBytes), st.format(x.TheoreticalBytes), ss.format(x.StoredBytes)})
	}
	return t
}

// findingsTable shows findings grouped by kind and message: one line for
// the 18 modules that all keep an int8 sign, not 18 lines.
func findingsTable(rep *Report, opts TextOptions) *table {
	if len(rep.Findings) == 0 {
		return &table{title: "findings", header: []string{"none"}, right: []bool{false}}
	}
	type agg struct {
		f       Finding
		modules []string
		bytes   int64
	}
	var aggs []*agg
	idx := map[[3]string]*agg{}
	for _, f := range rep.Findings {
		k := [3]string{f.Severity, f.Kind, f.Message}
		a := idx[k]
		if a == nil {
			a = &agg{f: f}
			idx[k] = a
			aggs = append(aggs, a)
		}
		a.modules = append(a.modules, f.Module)
		a.bytes += f.Bytes
	}
	var vals []int64
	for _, a := range aggs {
		vals = append(vals, a.bytes)
	}
	s := columnScale(vals, opts.Bytes)
	t := &table{
		title:  "findings",
		header: []string{"severity", "finding", "where", s.header("bytes"), "message"},
		right:  []bool{false, false, false, true, false},
	}
	for _, a := range aggs {
		where := orTopLevel(a.modules[0])
		if n := len(a.modules); n > 1 {
			where = fmt.Sprintf("%s (+%d more)", where, n-1)
		}
		t.rows = append(t.rows, []string{a.f.Severity, a.f.Kind, where, s.format(a.bytes), a.f.Message})
	}
	return t
}

func top[T any](xs []T, n int) []T {
	if n > 0 && n < len(xs) {
		return xs[:n]
	}
	return xs
}

func sortGroups(gs []Group, by SortKey) []Group {
	return sortRows(gs, by, Group.Key, func(g Group) Group { return g })
}

func sortTensors(ts []Tensor, by SortKey) []Tensor {
	return sortRows(ts, by, func(t Tensor) string { return t.Name }, func(t Tensor) Group {
		g := Group{Params: t.Params, BaselineBytes: t.BaselineBytes, TheoreticalBytes: t.TheoreticalBytes, StoredBytes: t.StoredBytes}
		if t.StoredBytes != 0 {
			g.Ratio = float64(t.BaselineBytes) / float64(t.StoredBytes)
		}
		if t.Params != 0 {
			g.BitsPerWeight = float64(t.StoredBytes) * 8 / float64(t.Params)
		}
		return g
	})
}

// sortRows returns a copy of rows ordered by a SortValues key: "name" by
// name, the numbers largest first, "" in the given order.
func sortRows[T any](rows []T, by SortKey, name func(T) string, sums func(T) Group) []T {
	rows = append([]T(nil), rows...)
	key := func(x T) float64 {
		g := sums(x)
		switch by {
		case "stored":
			return float64(g.StoredBytes)
		case "baseline":
			return float64(g.BaselineBytes)
		case "theoretical":
			return float64(g.TheoreticalBytes)
		case "params":
			return float64(g.Params)
		case "ratio":
			return g.Ratio
		case "bits":
			return g.BitsPerWeight
		}
		return 0
	}
	switch by {
	case "":
	case "name":
		sort.SliceStable(rows, func(i, j int) bool { return name(rows[i]) < name(rows[j]) })
	default:
		sort.SliceStable(rows, func(i, j int) bool { return key(rows[i]) > key(rows[j]) })
	}
	return rows
}

// orTopLevel is how tables show an empty module or tensor name: the
// file's top level (a tensor named "" is a bare torch.save(t)).
func orTopLevel(name string) string {
	if name == "" {
		return "(top level)"
	}
	return name
}
