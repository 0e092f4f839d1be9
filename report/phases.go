package report

import (
	"slices"
	"sort"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/decode"
)

// NewPhases converts the phases of a decode pass for the report.
func NewPhases(ps []accounting.Phase) []Phase {
	out := make([]Phase, 0, len(ps))
	for _, p := range ps {
		by := make(map[string]int64, len(p.ByRole))
		for k, v := range p.ByRole {
			by[k] = v
		}
		out = append(out, Phase{Phase: p.Name, InUseBytes: p.InUseBytes, ExpectedBytes: p.ExpectedBytes, ByRole: by, Verdict: p.Verdict})
	}
	return out
}

// phaseKeys lists the by-role keys of the phases in column order: the
// stored roles in role order, then the decode pass's own buffers
// (decode.SiteKeys); other keys follow, sorted. With nonzero, keys
// that are zero in every phase are left out.
func phaseKeys(ps []Phase, nonzero bool) []string {
	seen := map[string]bool{}
	for _, p := range ps {
		for k, v := range p.ByRole {
			seen[k] = seen[k] || v != 0 || !nonzero
		}
	}
	order := decode.SiteKeys()
	var keys, extra []string
	for _, k := range order {
		if seen[k] {
			keys = append(keys, k)
		}
	}
	for k, ok := range seen {
		if ok && !slices.Contains(order, k) {
			extra = append(extra, k)
		}
	}
	// "other" (a profiled process's allocations outside the tensor
	// allocator) reads last, after what it is other than.
	sort.Slice(extra, func(i, j int) bool {
		return (extra[i] == "other") == (extra[j] == "other") && extra[i] < extra[j] || extra[j] == "other" && extra[i] != "other"
	})
	return append(keys, extra...)
}

// phasesTable renders the decode phases, one row each: the heap in use,
// what the accounting expects, and the in-use bytes per role (columns that
// are zero in every phase are left out); nil when the report has none.
func phasesTable(rep *Report, opts TextOptions) *table {
	if len(rep.Phases) == 0 {
		return nil
	}
	keys := phaseKeys(rep.Phases, true)

	// In use and expected share one unit so they read side by side; each
	// role column has its own.
	var both []int64
	for _, p := range rep.Phases {
		both = append(both, p.InUseBytes, p.ExpectedBytes)
	}
	s := columnScale(both, opts.Bytes)
	scales := make([]scale, len(keys))
	t := &table{
		title:  "decode phases",
		header: []string{"phase", s.header("in use"), s.header("expected")},
		right:  []bool{false, true, true},
		notes: []string{
			"in use: bytes the heap profile holds at the pass's allocation sites (allocator slots: Go size classes, 8 KiB pages)",
			"expected: the accounting's stored bytes, plus the decoded weights' fp32 size and the activations the pass holds",
		},
	}
	if slices.Contains(phaseKeys(rep.Phases, false), "tensors") {
		// qinsaudit profile's phases: a profiled process, not a decode pass.
		t.title = "profile phases"
		t.notes = []string{
			"in use: bytes in use since the start profile; tensors: allocated through PyTorch's CPU allocator (libc10, or --focus); other: the rest",
			"expected: what the accounting explains the tensors by (the phase's verdict below), in the allocator's size classes",
		}
	}
	for i, k := range keys {
		var col []int64
		for _, p := range rep.Phases {
			col = append(col, p.ByRole[k])
		}
		scales[i] = columnScale(col, opts.Bytes)
		t.header = append(t.header, scales[i].header(k))
		t.right = append(t.right, true)
	}
	verdicts := phaseVerdicts(rep.Phases)
	if verdicts {
		t.header = append(t.header, "verdict")
		t.right = append(t.right, false)
	}
	for _, p := range rep.Phases {
		row := []string{p.Phase, s.format(p.InUseBytes), s.format(p.ExpectedBytes)}
		for i, k := range keys {
			row = append(row, scales[i].format(p.ByRole[k]))
		}
		if verdicts {
			v := ""
			if p.Verdict != 0 {
				v = p.Verdict.String()
			}
			row = append(row, v)
		}
		t.rows = append(t.rows, row)
	}
	return t
}

// phaseVerdicts reports whether any phase has a verdict: then the tables
// have a verdict column.
func phaseVerdicts(ps []Phase) bool {
	for _, p := range ps {
		if p.Verdict != 0 {
			return true
		}
	}
	return false
}
