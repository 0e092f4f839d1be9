package report

import "github.com/qinsaudit/qinsaudit/accounting"

// NewComparisons converts comparisons of measured and expected bytes for the
// report.
func NewComparisons(cs []accounting.Comparison) []Comparison {
	out := make([]Comparison, 0, len(cs))
	for _, c := range cs {
		out = append(out, Comparison{Subject: c.Subject, MeasuredBytes: c.MeasuredBytes, ExpectedBytes: c.ExpectedBytes,
			ToleranceBytes: c.ToleranceBytes, Verdict: c.Verdict, Message: c.Message})
	}
	return out
}

// comparisonsTable renders the comparisons side by side: what was measured,
// what was expected of it, the tolerance allowed and the verdict, with the
// message saying why. Measured and expected share one unit, so they read
// against each other; the tolerance, often bytes of allocator rounding
// beside mebibytes of weights, has its own. Nil when the report has none.
func comparisonsTable(rep *Report, opts TextOptions) *table {
	if len(rep.Comparisons) == 0 {
		return nil
	}
	var vals, tols []int64
	for _, c := range rep.Comparisons {
		vals = append(vals, c.MeasuredBytes, c.ExpectedBytes)
		tols = append(tols, c.ToleranceBytes)
	}
	s, ts := columnScale(vals, opts.Bytes), columnScale(tols, opts.Bytes)
	t := &table{
		title:  "measured vs expected",
		header: []string{"subject", s.header("measured"), s.header("expected"), ts.header("tolerance"), "verdict", "message"},
		right:  []bool{false, true, true, true, false, false},
	}
	failing := false
	for _, c := range rep.Comparisons {
		t.rows = append(t.rows, []string{c.Subject, s.format(c.MeasuredBytes), s.format(c.ExpectedBytes),
			"±" + ts.format(c.ToleranceBytes), c.Verdict.String(), c.Message})
		failing = failing || c.Verdict.Failing()
	}
	if failing {
		t.notes = append(t.notes, "claim-disagrees and unexplained-difference fail the command (exit 3)")
	}
	return t
}
