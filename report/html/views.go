package html

import (
	"fmt"
	"html/template"
	"strings"
	"unicode"

	"github.com/qinsaudit/qinsaudit/report"
)

// treemapView is the treemap with one SVG group per size domain.
type treemapView struct {
	W, H     string
	Domains  []domainView
	Legend   []swatch
	LegTitle string
	Notes    []string
}

type domainView struct {
	Key, Label string
	Keys       string // the domains this drawing shows: "theoretical stored"
	Checked    bool
	Note       string
	Total      cell
	SVG        template.HTML
}

type swatch struct {
	X, TX string
	Fill  string
	Text  string
}

const (
	dBaseline = iota
	dTheoretical
	dStored
	dMeasured
)

func tensorTitle(t report.Tensor) string {
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = fmt.Sprint(d)
	}
	scheme := t.Scheme
	if scheme == "" {
		scheme = "no scheme"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%s [%s] · %s · %s/%s\n", t.Name, t.DType, strings.Join(dims, ","), scheme, t.Role, t.Part)
	sizes(&b, t.BaselineBytes, t.TheoreticalBytes, t.StoredBytes, t.Params)
	return b.String()
}

func sizes(b *strings.Builder, base, theo, stored, params int64) {
	fmt.Fprintf(b, "baseline: %s (%s)\ntheoretical: %s (%s)\nstored: %s (%s)\nparams: %s · bits/weight: %s",
		iec(base), exact(base), iec(theo), exact(theo), iec(stored), exact(stored), comma(params), bpw(bitsPerWeight(stored, params)))
}

// reportTreemap builds the treemap of an audit: role > layer > module >
// tensor, in the baseline, theoretical and stored domains, and the heap
// measured by decode or crosscheck in a fourth.
func reportTreemap(rep *report.Report) *treemapView {
	measured := len(rep.Phases) > 0 || len(rep.Comparisons) > 0
	ids := 0
	root := &node{kind: "root", tensor: -1}
	flagged := map[string]string{}
	for _, f := range rep.Findings {
		if f.Severity == "error" || (f.Severity == "warning" && flagged[f.Module] == "") {
			flagged[f.Module] = f.Severity
		}
	}
	roleRef := map[string]string{}
	for i, g := range rep.Roles {
		roleRef[g.Role] = at("report.roles", i)
	}
	excluded := 0
	for i, t := range rep.Tensors {
		if t.Role == "optimizer_state" {
			excluded++
			continue
		}
		role := root.child("role", t.Role, t.Role, &ids)
		role.ref = roleRef[t.Role]
		layer := role.child("layer", t.Layer, keyName(t.Layer, "(no layer)"), &ids)
		mod := layer.child("module", t.Module, keyName(t.Module, "(top level)"), &ids)
		mod.module, mod.finding = t.Module, flagged[t.Module]
		ids++
		leaf := &node{id: ids, kind: "tensor", label: short(t.Name, t.Module), tensor: i, stored: t.StoredBytes, params: t.Params, module: t.Module}
		leaf.size[dBaseline], leaf.size[dTheoretical], leaf.size[dStored] = t.BaselineBytes, t.TheoreticalBytes, t.StoredBytes
		if t.Tied {
			leaf.size[dTheoretical] = 0 // drawn once, under the first name
		}
		mod.children = append(mod.children, leaf)
		leaf.ref = at("report.tensors", i)
		add([]*node{root, role, layer, mod}, leaf)
	}
	titles := make([]string, len(rep.Tensors)) // the same in every domain
	title := func(n *node, d int) string {
		switch n.kind {
		case "tensor":
			if titles[n.tensor] == "" {
				titles[n.tensor] = tensorTitle(rep.Tensors[n.tensor])
			}
			return titles[n.tensor]
		case "heap":
			return n.label + "\nmeasured: " + iec(n.size[dMeasured]) + " (" + exact(n.size[dMeasured]) + ")"
		}
		var b strings.Builder
		if n.kind == "merged" {
			fmt.Fprintf(&b, "%s (merged: too small to draw at this size; zoom in)\n", n.label)
		} else {
			fmt.Fprintf(&b, "%s %s\n", n.kind, n.label)
		}
		sizes(&b, n.size[dBaseline], n.size[dTheoretical], n.size[dStored], n.params)
		return b.String()
	}
	ref := func(n *node) string { return n.ref }
	sums := func(n *node) string {
		return fmt.Sprintf("%d %d %d %d", n.size[dBaseline], n.size[dTheoretical], n.size[dStored], n.params)
	}
	color := func(n *node) string { return bpwColor(n.stored, n.params) }
	tm := &treemapView{W: coord(canvasW), H: coord(canvasH), LegTitle: "bits per weight (stored bytes × 8 / params)"}
	labels := []string{rep.Baseline + " baseline", "theoretical", "stored"}
	keys := []string{"baseline", "theoretical", "stored"}
	totals := []cell{bytesCell("report.totals.baseline_bytes", rep.Totals.BaselineBytes),
		bytesCell("report.totals.theoretical_bytes", rep.Totals.TheoreticalBytes), bytesCell("report.totals.stored_bytes", rep.Totals.StoredBytes)}
	// Domains in which every tensor has the same size share one drawing:
	// theoretical and stored bytes are often equal tensor for tensor.
	field := func(t report.Tensor, d int) int64 {
		return [3]int64{t.BaselineBytes, t.TheoreticalBytes, t.StoredBytes}[d]
	}
	same := func(d, e int) bool {
		for _, t := range rep.Tensors {
			if t.Role != "optimizer_state" && field(t, d) != field(t, e) {
				return false
			}
		}
		return true
	}
	for d := range 3 {
		dv := domainView{Key: keys[d], Label: labels[d], Checked: d == dStored, Total: totals[d], Keys: keys[d]}
		shared := false
		for e := range d {
			if tm.Domains[e].SVG != "" && same(d, e) {
				tm.Domains[e].Keys += " " + keys[d]
				shared = true
				break
			}
		}
		if !shared {
			dv.SVG = svgItems(layoutDomain(root, d, color, title, ref, sums))
		}
		tm.Domains = append(tm.Domains, dv)
	}
	if measured {
		hroot, note, total := heapTree(rep, &ids)
		tm.Domains = append(tm.Domains, domainView{Key: "measured", Keys: "measured", Label: "measured heap", Note: note, Total: total,
			SVG: svgItems(layoutDomain(hroot, dMeasured, func(*node) string { return "#b9c3d6" }, title, ref, sums))})
	}
	for i, b := range []float64{1, 2, 4, 8, 16, 32} {
		tm.Legend = append(tm.Legend, swatch{X: fmt.Sprint(i * 64), TX: fmt.Sprint(i*64 + 26), Fill: bpwColor(int64(b), 8), Text: fmt.Sprint(b)})
	}
	tm.Legend = append(tm.Legend, swatch{X: fmt.Sprint(6 * 64), TX: fmt.Sprint(6*64 + 26), Fill: noWeights, Text: "no params"})
	if excluded > 0 {
		tm.Notes = append(tm.Notes, fmt.Sprintf("%d optimizer-state tensors are not part of the model and are not drawn.", excluded))
	}
	return tm
}

// heapTree is the measured domain: the heap in use by role at the decode
// pass's peak phase, or crosscheck's one measured figure. A heap profile
// measures allocation sites, not tensors, so these rectangles are not
// divided further.
func heapTree(rep *report.Report, ids *int) (*node, string, cell) {
	root := &node{kind: "root", tensor: -1}
	leaf := func(label, ref string, v int64) {
		if v <= 0 {
			return
		}
		*ids++
		n := &node{id: *ids, kind: "heap", label: label, tensor: -1}
		n.size[dMeasured] = v
		root.children = append(root.children, n)
		n.ref = ref
		add([]*node{root}, n)
	}
	if len(rep.Phases) > 0 {
		peak := 0
		for i, p := range rep.Phases {
			if p.InUseBytes > rep.Phases[peak].InUseBytes {
				peak = i
			}
		}
		p := rep.Phases[peak]
		j := at("report.phases", peak)
		for _, k := range phaseKeys(rep.Phases) {
			leaf(k, field(field(j, "by_role"), k), p.ByRole[k])
		}
		return root, fmt.Sprintf("heap in use by role at the peak phase, %q; the profile measures roles, not single tensors", p.Phase),
			bytesCell(field(j, "in_use_bytes"), p.InUseBytes)
	}
	c := rep.Comparisons[0]
	leaf(c.Subject, "report.comparisons.0.measured_bytes", c.MeasuredBytes)
	return root, "the heap profile measures one figure: " + c.Subject, bytesCell("report.comparisons.0.measured_bytes", c.MeasuredBytes)
}

// diffTreemap is the new model's layer > module > tensor, sized by new
// (and, switched, old) stored bytes and coloured by growth.
func diffTreemap(old, new *report.Report, levels map[report.DiffBy]*report.Diff) *treemapView {
	rowIndex := func(by report.DiffBy) map[string]int {
		m := map[string]int{}
		for i, r := range levels[by].Rows {
			m[r.Key] = i
		}
		return m
	}
	ti, mi, li := rowIndex("tensor"), rowIndex("module"), rowIndex("layer")
	ids := 0
	root := &node{kind: "root", tensor: -1}
	leaves := map[string]*node{}
	for side, rep := range []*report.Report{new, old} {
		for _, t := range rep.Tensors {
			if t.Role == "optimizer_state" {
				continue
			}
			lk := keyName(t.Layer, "(no layer)")
			layer := root.child("layer", lk, lk, &ids)
			layer.ref = at("levels.layer.rows", li[lk])
			mod := layer.child("module", t.Module, keyName(t.Module, "(top level)"), &ids)
			mod.module = t.Module
			mod.ref = at("levels.module.rows", mi[t.Module])
			leaf := leaves[t.Name]
			if leaf == nil {
				ids++
				leaf = &node{id: ids, kind: "tensor", label: short(t.Name, t.Module), tensor: ti[t.Name], module: t.Module, parent: mod}
				leaves[t.Name] = leaf
				mod.children = append(mod.children, leaf)
				leaf.ref = at("levels.tensor.rows", ti[t.Name])
			}
			one := &node{}
			one.size[side] = t.StoredBytes
			if side == 0 {
				one.new = t.StoredBytes
			} else {
				one.old = t.StoredBytes
			}
			add([]*node{root, layer, mod, leaf}, one)
		}
	}
	title := func(n *node, d int) string {
		var b strings.Builder
		switch n.kind {
		case "tensor":
			b.WriteString(levels["tensor"].Rows[n.tensor].Key + "\n")
		case "merged":
			fmt.Fprintf(&b, "%s (merged: too small to draw at this size; zoom in)\n", n.label)
		default:
			fmt.Fprintf(&b, "%s %s\n", n.kind, n.label)
		}
		status := ""
		switch {
		case n.old == 0 && n.new != 0:
			status = " NEW"
		case n.new == 0 && n.old != 0:
			status = " DEL"
		}
		fmt.Fprintf(&b, "old: %s (%s)\nnew: %s (%s)\nchange: %s (%s)%s", iec(n.old), exact(n.old), iec(n.new), exact(n.new),
			signedIEC(n.new-n.old), signedExact(n.new-n.old), status)
		if n.old != 0 && n.new != 0 && n.new != n.old {
			fmt.Fprintf(&b, " %s", pct(100*float64(n.new-n.old)/float64(n.old)))
		}
		return b.String()
	}
	ref := func(n *node) string { return n.ref }
	sums := func(n *node) string { return fmt.Sprintf("%d %d", n.new, n.old) }
	// A tensor is coloured by its module's growth: an fp32 linear encoded
	// has all new tensor names, but it is the same module, shrunk.
	color := func(n *node) string {
		if n.kind == "tensor" && n.parent != nil {
			return growthColor(n.parent)
		}
		return growthColor(n)
	}
	tm := &treemapView{W: coord(canvasW), H: coord(canvasH), LegTitle: "change of each module's stored bytes, new vs old"}
	dv := levels["tensor"]
	tm.Domains = []domainView{
		{Key: "new", Keys: "new", Label: "new stored", Checked: true, Total: bytesCell("levels.tensor.total.new_bytes", dv.Total.NewBytes), SVG: svgItems(layoutDomain(root, 0, color, title, ref, sums))},
		{Key: "old", Keys: "old", Label: "old stored", Total: bytesCell("levels.tensor.total.old_bytes", dv.Total.OldBytes), SVG: svgItems(layoutDomain(root, 1, color, title, ref, sums))},
	}
	for i, s := range []struct {
		fill, text string
	}{{lerp(shrinkStops, 1), "−100%"}, {lerp(shrinkStops, 0.5), "−50%"}, {lerp(growStops, 0), "same"}, {lerp(growStops, 0.5), "+50%"},
		{lerp(growStops, 1), "≥ +100%"}, {addedColor, "NEW"}, {removedColor, "DEL"}} {
		tm.Legend = append(tm.Legend, swatch{X: fmt.Sprint(i * 88), TX: fmt.Sprint(i*88 + 26), Fill: s.fill, Text: s.text})
	}
	tm.Notes = append(tm.Notes, "Removed tensors (DEL) have no area in the new model: switch to old stored to see them.")
	return tm
}

// short is a tensor's name inside its module's rectangle: "sign" for
// "blocks.0.attn.q.sign"; the whole name when the rest says little ("1").
func short(name, module string) string {
	if s, ok := strings.CutPrefix(name, module+"."); ok && module != "" && strings.ContainsFunc(s, unicode.IsLetter) {
		return s
	}
	return name
}
