package report

import (
	"encoding/csv"
	"io"
	"strconv"

	"github.com/qinsaudit/qinsaudit/internal/neutral"
)

// WriteCSV writes the rows of the table `--by` selects (roles with the
// total by default; modules, layers or tensors) with exact values: bytes
// as integers, ratios and bits per weight unrounded. A report with decode
// phases or comparisons (decode, crosscheck, check --heap) has them, and a
// check's gate its outcomes, in sections of their own after those rows,
// each after a blank line and with its own header row.
//
// Text cells go through neutral.CSV (control characters escaped, a leading
// formula character made inert); encoding/csv quotes them per RFC 4180.
func WriteCSV(w io.Writer, rep *Report, opts TextOptions) error {
	if rep.summary && opts.By.Lists() {
		return ErrSummary
	}
	c := neutral.CSV
	cw := csv.NewWriter(w)
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	if opts.By == "tensor" {
		cw.Write([]string{"tensor", "file", "dtype", "numel", "role", "part", "module", "layer", "scheme", "params",
			"baseline_bytes", "theoretical_bytes", "stored_bytes", "dead_bytes"})
		for _, t := range top(sortTensors(rep.Tensors, opts.Sort), opts.Top) {
			cw.Write([]string{c(t.Name), c(t.File), c(t.DType), i64(t.Numel), c(t.Role), c(t.Part), c(t.Module), c(t.Layer), c(t.Scheme), i64(t.Params),
				i64(t.BaselineBytes), i64(t.TheoreticalBytes), i64(t.StoredBytes), i64(t.DeadBytes)})
		}
		writeHeapCSV(cw, rep)
		cw.Flush()
		return cw.Error()
	}
	key, groups := "role", append(rep.Roles[:len(rep.Roles):len(rep.Roles)], rep.Totals)
	switch opts.By {
	case "module":
		key, groups = "module", top(sortGroups(rep.Modules, opts.Sort), opts.Top)
	case "layer":
		key, groups = "layer", top(sortGroups(rep.Layers, opts.Sort), opts.Top)
	case "dtype":
		key, groups = "dtype", top(sortGroups(rep.DTypes, opts.Sort), opts.Top)
	}
	cw.Write([]string{key, "tensors", "params", "baseline_bytes", "theoretical_bytes", "stored_bytes", "ratio", "bits_per_weight"})
	for _, g := range groups {
		cw.Write([]string{c(g.Key()), i64(g.Tensors), i64(g.Params), i64(g.BaselineBytes), i64(g.TheoreticalBytes),
			i64(g.StoredBytes), f(g.Ratio), f(g.BitsPerWeight)})
	}
	writeHeapCSV(cw, rep)
	cw.Flush()
	return cw.Error()
}

// writeHeapCSV writes the phases and the comparisons, when the report has
// them, each as a section after a blank line: every by-role key a phase has
// as a column, zeros included.
func writeHeapCSV(cw *csv.Writer, rep *Report) {
	c := neutral.CSV
	if len(rep.Phases) > 0 {
		keys := phaseKeys(rep.Phases, false)
		header := []string{"phase", "in_use_bytes", "expected_bytes"}
		for _, k := range keys {
			header = append(header, c(k)+"_bytes")
		}
		verdicts := phaseVerdicts(rep.Phases)
		if verdicts {
			header = append(header, "verdict")
		}
		cw.Write(nil)
		cw.Write(header)
		for _, p := range rep.Phases {
			row := []string{c(p.Phase), i64(p.InUseBytes), i64(p.ExpectedBytes)}
			for _, k := range keys {
				row = append(row, i64(p.ByRole[k]))
			}
			if verdicts {
				v := ""
				if p.Verdict != 0 {
					v = p.Verdict.String()
				}
				row = append(row, v)
			}
			cw.Write(row)
		}
	}
	if len(rep.Comparisons) > 0 {
		cw.Write(nil)
		cw.Write([]string{"subject", "measured_bytes", "expected_bytes", "tolerance_bytes", "verdict", "message"})
		for _, x := range rep.Comparisons {
			cw.Write([]string{c(x.Subject), i64(x.MeasuredBytes), i64(x.ExpectedBytes), i64(x.ToleranceBytes), c(x.Verdict.String()), c(x.Message)})
		}
	}
	if g := rep.Gate; g != nil {
		f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
		cw.Write(nil)
		cw.Write([]string{"status", "check", "subject", "limit", "actual", "unit", "waiver", "message"})
		for _, o := range g.Outcomes {
			cw.Write([]string{string(o.Status), o.Check, neutral.CSV(o.Subject), f(o.Limit), f(o.Actual), o.Unit, neutral.CSV(o.Waiver), neutral.CSV(o.Message)})
		}
	}
}
