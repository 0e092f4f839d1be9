package report

import (
	"slices"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// Parts are what a command adds to the report of an audit: the findings,
// phases and comparisons of a heap comparison, a decode pass or a profiled
// process, where a remote model came from, and the gate that judges the
// whole.
type Parts struct {
	// Findings join the audit's, in severity order (accounting.AddFindings).
	Findings    []accounting.Finding
	Phases      []accounting.Phase
	Comparisons []accounting.Comparison
	Remote      *Remote
	// Judge, when set, decides the gate over the report assembled from
	// everything else (qinsaudit check).
	Judge func(*Report) *Gate
}

// Build assembles the report of res and the parts a command adds to it;
// the report of a summary audit is a summary report (see Report.Summary).
// It is the one place a command's report is made; res is not changed.
func Build(res *accounting.Result, p Parts) *Report {
	if len(p.Findings) > 0 {
		r := *res
		r.Findings = slices.Clone(res.Findings)
		accounting.AddFindings(&r, p.Findings)
		res = &r
	}
	if res.Summary && p.Judge != nil {
		// A caller's mistake, not an input's: commands that gate audit
		// in whole.
		panic("report: a gate judges module sums, which a summary audit (accounting.Options.Summary) has not made")
	}
	rep := New(res)
	rep.Remote = p.Remote
	if p.Phases != nil {
		rep.Phases = NewPhases(p.Phases)
	}
	if p.Comparisons != nil {
		rep.Comparisons = NewComparisons(p.Comparisons)
	}
	if p.Judge != nil {
		rep.Gate = p.Judge(rep)
	}
	return rep
}
