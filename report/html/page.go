// Package html renders a report, or a diff of two, as one self-contained
// HTML page: plain tables that read without script, an SVG treemap laid
// out here (role > layer > module > tensor, sized by a domain the reader
// picks, coloured by bits per weight), bar charts of the headline figures,
// findings, phases and gate outcomes. Styles and the small interaction
// script are inline and the page loads nothing, so it opens from disk or as
// a CI artifact. The report JSON the page was drawn from is embedded in it,
// and every figure shown carries the path of its JSON value (data-j), so a
// test can check each one against it.
//
// Tensor names are untrusted: everything goes through html/template, and
// the JSON is embedded as json.Marshal writes it, which escapes <, > and &.
package html

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/qinsaudit/qinsaudit/report"
)

//go:embed page.tmpl
var pageTmpl string

//go:embed page.css
var pageCSS string

//go:embed page.js
var pageJS string

// tmpl is parsed on first use, not at package init: every qinsaudit command
// links this package, and only the HTML format needs the page.
var tmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("page").Funcs(template.FuncMap{"split": strings.Fields}).Parse(pageTmpl))
})

// cell is one figure: its text, exact bytes beside it for sizes, and the
// path of the JSON value it shows.
type cell struct {
	J, Main, Sub string
	Pre          string // a label before the figure, outside it
}

func bytesCell(j string, v int64) cell { return cell{J: j, Main: iec(v), Sub: exact(v)} }
func countCell(j string, v int64) cell { return cell{J: j, Main: comma(v)} }
func textCell(j string, s string) cell { return cell{J: j, Main: s} }
func deltaCell(j string, v int64) cell { return cell{J: j, Main: signedIEC(v), Sub: signedExact(v)} }
func at(prefix string, i int) string   { return prefix + "." + strconv.Itoa(i) }
func field(prefix, name string) string { return prefix + "." + name }
func plain(s string) cell              { return cell{Main: s} }
func fileCells(j string, f report.File) []cell {
	return []cell{plain(f.Path), plain(f.Format), countCell(field(j, "tensors"), f.Tensors), bytesCell(field(j, "size_bytes"), f.SizeBytes),
		bytesCell(field(j, "stored_bytes"), f.StoredBytes), bytesCell(field(j, "overhead_bytes"), f.OverheadBytes), plain(f.Label)}
}

// keyName names a group: the empty module is the top level.
func keyName(s, empty string) string {
	if s == "" {
		return empty
	}
	return s
}

// table is a plain HTML table; Fold puts it in a closed <details>.
type table struct {
	ID, Title, Caption string
	Fold               bool
	Header             []string
	Rows               []row
	Foot               *row
	Notes              []string
}

type row struct {
	Class string
	Cells []cell
	// Module names the row's module: a button selects it on the treemap.
	Module string
	HasMod bool
}

// page is what the template renders.
type page struct {
	Title    string
	Subtitle string
	CSS      template.CSS
	Script   template.JS
	JSON     template.JS
	Levels   template.JS
	Verdict  string
	Pass     bool
	Tables   []table
	Treemap  *treemapView
	Charts   []chart
	Findings *table
	IsDiff   bool
}

// Write renders rep as an HTML page.
func Write(w io.Writer, rep *report.Report) error {
	if rep.Summary() {
		return report.ErrSummary
	}
	// The report JSON as report.WriteJSON writes it, less the line breaks
	// that lay it out for reading.
	js, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	if err := scriptSafe(js); err != nil {
		return err
	}
	p := &page{Title: "qinsaudit report", CSS: template.CSS(pageCSS), Script: template.JS(pageJS), JSON: template.JS(js)}
	var names []string
	for _, f := range rep.Files {
		names = append(names, f.Path)
	}
	p.Subtitle = strings.Join(names, ", ")
	if g := rep.Gate; g != nil {
		p.Verdict, p.Pass = "gate failed", g.Passed
		if g.Passed {
			p.Verdict = "gate passed"
		}
	}

	files := table{ID: "files", Title: "Files", Header: []string{"file", "format", "tensors", "size", "stored", "overhead", "declared"}}
	for i, f := range rep.Files {
		files.Rows = append(files.Rows, row{Cells: fileCells(at("report.files", i), f)})
	}
	if rep.Remote != nil {
		files.Notes = append(files.Notes, rep.Remote.Line(false))
	}
	p.Tables = append(p.Tables, files)
	p.Tables = append(p.Tables, groupTable("roles", "Bytes by role", "role", rep.Baseline, "report.roles", rep.Roles, &rep.Totals, false))
	if g := rep.Gate; g != nil {
		p.Tables = append(p.Tables, gateTable(g))
	}
	if len(rep.Comparisons) > 0 {
		p.Tables = append(p.Tables, comparisonsTable(rep.Comparisons))
	}
	if len(rep.Phases) > 0 {
		p.Tables = append(p.Tables, phasesTable(rep.Phases))
	}
	p.Findings = findingsTable(rep.Findings)
	p.Treemap = reportTreemap(rep)
	p.Charts = append(p.Charts, roleBars(rep))
	if c := phaseChart(rep.Phases); c != nil {
		p.Charts = append(p.Charts, *c)
	}
	if c := comparisonChart(rep.Comparisons); c != nil {
		p.Charts = append(p.Charts, *c)
	}
	p.Tables = append(p.Tables,
		groupTable("layers", "Bytes by layer", "layer", rep.Baseline, "report.layers", rep.Layers, nil, true),
		groupTable("modules", "Bytes by module", "module", rep.Baseline, "report.modules", rep.Modules, nil, true),
		groupTable("dtypes", "Bytes by dtype", "dtype", rep.Baseline, "report.dtypes", rep.DTypes, nil, true))
	return render(w, p)
}

// WriteDiff renders d, the diff of old and new, as an HTML page: d's rows,
// the diffs by role, layer and module beside them, and a treemap of the new
// model coloured by growth. Every diff shown is report.NewDiff's.
func WriteDiff(w io.Writer, d *report.Diff, old, new *report.Report) error {
	js, err := json.Marshal(d)
	if err != nil {
		return err
	}
	levels := map[report.DiffBy]*report.Diff{d.By: d}
	for _, by := range []report.DiffBy{report.DiffByRole, report.DiffByLayer, report.DiffByModule, report.DiffByTensor} {
		if levels[by] == nil {
			levels[by] = report.NewDiff(old, new, by)
		}
	}
	lj, err := json.Marshal(levels)
	if err != nil {
		return err
	}
	if err := scriptSafe(js, lj); err != nil {
		return err
	}
	p := &page{Title: "qinsaudit diff", CSS: template.CSS(pageCSS), Script: template.JS(pageJS),
		JSON: template.JS(js), Levels: template.JS(lj), IsDiff: true}
	var on, nn []string
	for _, f := range d.Old {
		on = append(on, f.Path)
	}
	for _, f := range d.New {
		nn = append(nn, f.Path)
	}
	p.Subtitle = strings.Join(on, ", ") + " → " + strings.Join(nn, ", ")
	files := table{ID: "files", Title: "Files", Header: []string{"side", "file", "format", "tensors", "size", "stored", "overhead", "declared"}}
	for i, f := range d.Old {
		files.Rows = append(files.Rows, row{Cells: append([]cell{plain("old")}, fileCells(at("report.old_files", i), f)...)})
	}
	for i, f := range d.New {
		files.Rows = append(files.Rows, row{Cells: append([]cell{plain("new")}, fileCells(at("report.new_files", i), f)...)})
	}
	p.Tables = append(p.Tables, files, diffTable("by-"+string(d.By), "Stored bytes by "+string(d.By), "report", d, false))
	for _, by := range []report.DiffBy{report.DiffByRole, report.DiffByLayer, report.DiffByModule} {
		if by != d.By {
			p.Tables = append(p.Tables, diffTable("by-"+string(by), "Stored bytes by "+string(by), "levels."+string(by), levels[by], true))
		}
	}
	p.Treemap = diffTreemap(old, new, levels)
	return render(w, p)
}

func render(w io.Writer, p *page) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	if err := tmpl().Execute(bw, p); err != nil {
		return err
	}
	return bw.Flush()
}

// scriptSafe checks that JSON can be embedded in a script element as it
// is (template.JS). json.Marshal writes <, > and & as \u003c, \u003e and
// \u0026, so no "</script" or "<!--" can occur in it; refuse anything else.
func scriptSafe(b ...[]byte) error {
	for _, x := range b {
		if bytes.IndexByte(x, '<') >= 0 || bytes.IndexByte(x, '>') >= 0 {
			return fmt.Errorf("report/html: JSON with a raw < or >, not safe in a script element")
		}
	}
	return nil
}

// maxFolded bounds the rows of a detail table (and of a diff's tables): a
// model of 100,000 tensors has tens of thousands of modules.
const maxFolded = 500

func groupTable(id, title, keyTitle, baseline, prefix string, gs []report.Group, total *report.Group, fold bool) table {
	t := table{ID: id, Title: title, Fold: fold, Header: []string{keyTitle, "tensors", "params", baseline + " baseline", "theoretical", "stored", "ratio", "bits/weight"}}
	line := func(j, key string, g report.Group) row {
		return row{Cells: []cell{plain(key), countCell(field(j, "tensors"), g.Tensors), countCell(field(j, "params"), g.Params),
			bytesCell(field(j, "baseline_bytes"), g.BaselineBytes), bytesCell(field(j, "theoretical_bytes"), g.TheoreticalBytes),
			bytesCell(field(j, "stored_bytes"), g.StoredBytes), textCell(field(j, "ratio"), ratio(g.Ratio)), textCell(field(j, "bits_per_weight"), bpw(g.BitsPerWeight))}}
	}
	idx := make([]int, len(gs))
	for i := range idx {
		idx[i] = i
	}
	if fold && len(gs) > maxFolded {
		sort.SliceStable(idx, func(a, b int) bool { return gs[idx[a]].StoredBytes > gs[idx[b]].StoredBytes })
		idx = idx[:maxFolded]
		sort.Ints(idx)
		t.Notes = append(t.Notes, fmt.Sprintf("The %d largest of %s %ss by stored bytes, in file order; the JSON embedded in this page holds all.", maxFolded, comma(int64(len(gs))), keyTitle))
	}
	for _, i := range idx {
		g := gs[i]
		key := keyName(g.Key(), "(top level)")
		r := line(at(prefix, i), key, g)
		if g.Role == "optimizer_state" {
			r.Cells[0].Main += " *"
			t.Notes = []string{"* optimizer state is saved in the checkpoint but is not part of the model: not in the total"}
		}
		t.Rows = append(t.Rows, r)
	}
	if total != nil {
		f := line("report.totals", "total", *total)
		t.Foot = &f
	}
	return t
}

func gateTable(g *report.Gate) table {
	t := table{ID: "gate", Title: "Gate", Header: []string{"result", "check", "subject", "limit", "actual", "message"}}
	if g.Passed {
		t.Caption = "passed"
	} else {
		t.Caption = "FAILED"
	}
	for _, status := range []report.Status{report.StatusFail, report.StatusWaived, report.StatusPass} {
		for i, o := range g.Outcomes {
			if o.Status != status {
				continue
			}
			j := at("report.gate.outcomes", i)
			msg := o.Message
			if o.Waiver != "" {
				msg += " (waived: " + o.Waiver + ")"
			}
			t.Rows = append(t.Rows, row{Class: "s-" + string(status), Cells: []cell{textCell(field(j, "status"), string(o.Status)), plain(o.Check), plain(o.Subject),
				textCell(field(j, "limit"), limitValue(o.Limit, o.Unit)), textCell(field(j, "actual"), limitValue(o.Actual, o.Unit)), plain(msg)}})
		}
	}
	return t
}

// limitValue prints a gate's limit or actual value in its unit.
func limitValue(v float64, unit string) string {
	switch unit {
	case "bytes":
		return exact(int64(v))
	case "count":
		return comma(int64(v))
	case "ratio":
		return ratio(v)
	case "percent":
		return pct(v)
	}
	return bpw(v)
}

func comparisonsTable(cs []report.Comparison) table {
	t := table{ID: "comparisons", Title: "Measured vs expected", Header: []string{"subject", "measured", "expected", "tolerance", "verdict", "message"}}
	for i, c := range cs {
		j := at("report.comparisons", i)
		t.Rows = append(t.Rows, row{Class: "v-" + c.Verdict.String(), Cells: []cell{plain(c.Subject), bytesCell(field(j, "measured_bytes"), c.MeasuredBytes),
			bytesCell(field(j, "expected_bytes"), c.ExpectedBytes), bytesCell(field(j, "tolerance_bytes"), c.ToleranceBytes),
			textCell(field(j, "verdict"), c.Verdict.String()), plain(c.Message)}})
	}
	return t
}

func phasesTable(ps []report.Phase) table {
	keys := phaseKeys(ps)
	t := table{ID: "phases", Title: "Decode phases", Header: append([]string{"phase", "in use", "expected"}, keys...),
		Notes: []string{"in use: bytes the heap profile holds at the pass's allocation sites; expected: the accounting's stored bytes, plus the decoded weights' fp32 size and the activations the pass holds"}}
	for i, p := range ps {
		j := at("report.phases", i)
		r := row{Cells: []cell{plain(p.Phase), bytesCell(field(j, "in_use_bytes"), p.InUseBytes), bytesCell(field(j, "expected_bytes"), p.ExpectedBytes)}}
		for _, k := range keys {
			r.Cells = append(r.Cells, bytesCell(field(field(j, "by_role"), k), p.ByRole[k]))
		}
		t.Rows = append(t.Rows, r)
	}
	return t
}

// phaseKeys lists the by-role keys that are nonzero in some phase, in the
// order the first phase that has them lists them, sorted.
func phaseKeys(ps []report.Phase) []string {
	seen := map[string]bool{}
	var keys []string
	for _, p := range ps {
		for k, v := range p.ByRole {
			if v != 0 && !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

func findingsTable(fs []report.Finding) *table {
	t := &table{ID: "findings", Title: "Findings", Header: []string{"severity", "finding", "module", "bytes", "message", ""}}
	if len(fs) == 0 {
		t.Caption = "none"
	}
	for i, f := range fs {
		j := at("report.findings", i)
		t.Rows = append(t.Rows, row{Class: "sev-" + f.Severity, Module: f.Module, HasMod: f.Severity != "info",
			Cells: []cell{plain(f.Severity), plain(f.Kind), plain(keyName(f.Module, "(top level)")), bytesCell(field(j, "bytes"), f.Bytes), plain(f.Message)}})
	}
	return t
}

func diffTable(id, title, prefix string, d *report.Diff, fold bool) table {
	t := table{ID: id, Title: title, Fold: fold, Header: []string{string(d.By), "", "old", "new", "change", "change %"}}
	line := func(j string, r report.DiffRow) row {
		mark := map[report.RowStatus]string{report.RowAdded: "NEW", report.RowRemoved: "DEL", report.RowSame: "~"}[r.Status]
		rel := cell{Main: "-"}
		switch {
		case r.Status == report.RowAdded:
			rel = plain("new")
		case r.Status == report.RowRemoved:
			rel = plain("removed")
		case r.DeltaBytes == 0:
			rel = plain("~")
		case r.OldBytes != 0:
			rel = textCell(field(j, "delta_pct"), pct(r.DeltaPct))
		}
		return row{Class: "st-" + string(r.Status), Cells: []cell{plain(keyName(r.Key, "(top level)")), textCell(field(j, "status"), mark),
			bytesCell(field(j, "old_bytes"), r.OldBytes), bytesCell(field(j, "new_bytes"), r.NewBytes), deltaCell(field(j, "delta_bytes"), r.DeltaBytes), rel}}
	}
	rows := d.Rows
	if len(rows) > maxFolded {
		// Rows come largest change first.
		rows = rows[:maxFolded]
		t.Notes = append(t.Notes, fmt.Sprintf("The %d largest changes of %s rows; the JSON embedded in this page holds all.", maxFolded, comma(int64(len(d.Rows)))))
	}
	for i, r := range rows {
		t.Rows = append(t.Rows, line(at(prefix+".rows", i), r))
	}
	f := line(prefix+".total", d.Total)
	f.Cells[1] = plain("")
	t.Foot = &f
	return t
}
