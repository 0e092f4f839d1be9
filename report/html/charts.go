package html

import (
	"fmt"

	"github.com/qinsaudit/qinsaudit/report"
)

// chart is a horizontal bar chart laid out here, drawn as SVG: one row per
// role, phase or comparison, a few bars each, its figures beside the bars.
type chart struct {
	ID, Title, Desc string
	W, H            string
	Rows            []chartRow
	Legend          []swatch
}

type chartRow struct {
	Label  string
	LY, NY string
	Notes  []cell
	Bars   []bar
}

type bar struct {
	X, Y, W, H string
	Fill       string
	Name       string
	Text       cell
	TX, TY     string
}

type series struct {
	name, fill string
	vals       []int64
	refs       []string
}

const (
	chartLabelW = 220.0
	chartBarW   = 470.0
	barH        = 14.0
	barGap      = 3.0
	rowGap      = 14.0
)

// barChart lays out rows of bars, one per series, on one scale.
func barChart(id, title, desc string, labels []string, notes [][]cell, ss []series) chart {
	c := chart{ID: id, Title: title, Desc: desc, W: coord(chartLabelW + chartBarW + 260)}
	var hi int64 = 1
	for _, s := range ss {
		for _, v := range s.vals {
			hi = max(hi, v)
		}
	}
	for i, s := range ss {
		c.Legend = append(c.Legend, swatch{X: fmt.Sprint(i * 150), TX: fmt.Sprint(i*150 + 26), Fill: s.fill, Text: s.name})
	}
	y := 30.0
	for r, label := range labels {
		row := chartRow{Label: label, LY: coord(y + 11), NY: coord(y + 26)}
		if notes != nil {
			row.Notes = notes[r]
		}
		n := 0
		for _, s := range ss {
			if s.vals[r] < 0 {
				continue // not measured
			}
			w := chartBarW * float64(s.vals[r]) / float64(hi)
			by := y + float64(n)*(barH+barGap)
			row.Bars = append(row.Bars, bar{X: coord(chartLabelW), Y: coord(by), W: coord(w), H: coord(barH), Fill: s.fill, Name: s.name,
				Text: bytesCell(s.refs[r], s.vals[r]), TX: coord(chartLabelW + w + 6), TY: coord(by + 11)})
			n++
		}
		y += max(float64(n)*(barH+barGap), 32) + rowGap
		c.Rows = append(c.Rows, row)
	}
	c.H = coord(y)
	return c
}

// roleBars shows, per role and in total, the baseline, the stored bytes
// and, after decode or crosscheck, the measured heap, with ratio and bits
// per weight.
func roleBars(rep *report.Report) chart {
	var labels []string
	var notes [][]cell
	base := series{name: rep.Baseline + " baseline", fill: "#8c8c8c"}
	stored := series{name: "stored", fill: "#3b528b"}
	meas := series{name: "measured heap", fill: "#c8500a"}
	peak := -1
	for i, p := range rep.Phases {
		if peak < 0 || p.InUseBytes > rep.Phases[peak].InUseBytes {
			peak = i
		}
	}
	groups := append(rep.Roles[:len(rep.Roles):len(rep.Roles)], rep.Totals)
	for i, g := range groups {
		j := at("report.roles", i)
		if i == len(rep.Roles) {
			j = "report.totals"
		}
		labels = append(labels, g.Role)
		r, b := textCell(field(j, "ratio"), ratio(g.Ratio)), textCell(field(j, "bits_per_weight"), bpw(g.BitsPerWeight))
		r.Pre, b.Pre = "ratio ", " · bits/weight "
		notes = append(notes, []cell{r, b})
		base.vals, base.refs = append(base.vals, g.BaselineBytes), append(base.refs, field(j, "baseline_bytes"))
		stored.vals, stored.refs = append(stored.vals, g.StoredBytes), append(stored.refs, field(j, "stored_bytes"))
		mv, mr := int64(-1), ""
		switch {
		case peak >= 0 && g.Role == "total":
			mv, mr = rep.Phases[peak].InUseBytes, field(at("report.phases", peak), "in_use_bytes")
		case peak >= 0:
			if v, ok := rep.Phases[peak].ByRole[g.Role]; ok {
				mv, mr = v, field(field(at("report.phases", peak), "by_role"), g.Role)
			}
		case len(rep.Comparisons) > 0 && g.Role == "total":
			mv, mr = rep.Comparisons[0].MeasuredBytes, "report.comparisons.0.measured_bytes"
		}
		meas.vals, meas.refs = append(meas.vals, mv), append(meas.refs, mr)
	}
	ss := []series{base, stored}
	desc := "Per role and in total: the " + rep.Baseline + " baseline and the stored bytes, with the ratio and bits per weight; the table of roles above holds the same figures."
	if peak >= 0 || len(rep.Comparisons) > 0 {
		ss = append(ss, meas)
		if peak >= 0 {
			desc += fmt.Sprintf(" Measured: heap in use at the peak phase %q (the total includes decoded weights and activations).", rep.Phases[peak].Phase)
		} else {
			desc += " Measured: " + rep.Comparisons[0].Subject + "."
		}
	}
	return barChart("bars", "Baseline vs stored vs measured", desc, labels, notes, ss)
}

// phaseChart shows the heap in use at each phase of a decode pass beside
// what the accounting expects.
func phaseChart(ps []report.Phase) *chart {
	if len(ps) == 0 {
		return nil
	}
	in := series{name: "in use", fill: "#c8500a"}
	exp := series{name: "expected", fill: "#5b57a6"}
	var labels []string
	for i, p := range ps {
		j := at("report.phases", i)
		labels = append(labels, p.Phase)
		in.vals, in.refs = append(in.vals, p.InUseBytes), append(in.refs, field(j, "in_use_bytes"))
		exp.vals, exp.refs = append(exp.vals, p.ExpectedBytes), append(exp.refs, field(j, "expected_bytes"))
	}
	c := barChart("phase-chart", "Heap in use per phase", "Heap in use at each phase of the decode pass against what the accounting expects; the phase table holds the same figures.", labels, nil, []series{in, exp})
	return &c
}

// comparisonChart shows each measured figure against its expectation.
func comparisonChart(cs []report.Comparison) *chart {
	if len(cs) == 0 {
		return nil
	}
	m := series{name: "measured", fill: "#c8500a"}
	e := series{name: "expected", fill: "#5b57a6"}
	var labels []string
	var notes [][]cell
	for i, c := range cs {
		j := at("report.comparisons", i)
		labels = append(labels, truncate(c.Subject, 34))
		v := textCell(field(j, "verdict"), c.Verdict)
		v.Pre = "verdict: "
		notes = append(notes, []cell{v})
		m.vals, m.refs = append(m.vals, c.MeasuredBytes), append(m.refs, field(j, "measured_bytes"))
		e.vals, e.refs = append(e.vals, c.ExpectedBytes), append(e.refs, field(j, "expected_bytes"))
	}
	c := barChart("comparison-chart", "Measured vs expected", "Each measured figure against what the accounting expects, with its verdict; the table of comparisons holds the same figures and the tolerances.", labels, notes, []series{m, e})
	return &c
}
