package gate

import (
	"fmt"
	"time"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/report"
)

// Heap is a heap profile's measurement, for the gate: the bytes in use and
// the comparisons made of them (qinsaudit check --heap).
type Heap struct {
	InUseBytes  int64
	StoredBytes int64
	Comparisons []report.Comparison
}

// Evaluate applies cfg to rep. base is the report named by cfg.Against, or
// nil; heap is a heap measurement, or nil; now decides which waivers have
// expired.
func Evaluate(rep *report.Report, cfg *Config, base *report.Report, heap *Heap, now time.Time) *report.Gate {
	e := &evaluator{cfg: cfg, now: now}
	for _, b := range cfg.Budgets {
		e.budget(rep, b)
	}
	e.forbidden(rep)
	e.errorFindings(rep, len(cfg.Budgets) == 0 && len(cfg.ForbidFindings) == 0 && cfg.Against == nil && heap == nil)
	if base != nil && cfg.Against != nil {
		e.against(rep, base, cfg.Against)
	}
	if heap != nil {
		e.heap(heap)
	}
	e.expired()
	g := &report.Gate{Passed: true, Outcomes: e.out}
	if g.Outcomes == nil {
		g.Outcomes = []report.Outcome{}
	}
	for _, o := range g.Outcomes {
		if o.Status == report.StatusFail {
			g.Passed = false
		}
	}
	if cfg.Against != nil {
		g.Against = cfg.Against.Report
	}
	return g
}

type evaluator struct {
	cfg *Config
	now time.Time
	out []report.Outcome
}

// add records an outcome; a failure a live waiver covers becomes waived.
func (e *evaluator) add(o report.Outcome, module string, failed bool) {
	o.Status = report.StatusPass
	if failed {
		o.Status = report.StatusFail
		for _, w := range e.cfg.Waivers {
			if w.Check == o.Check && (w.Module == nil || w.Module.Match(module)) && !e.isExpired(w) {
				o.Status, o.Waiver = report.StatusWaived, w.Reason
				break
			}
		}
	}
	e.out = append(e.out, o)
}

func (e *evaluator) isExpired(w Waiver) bool {
	return w.Expires != nil && !e.now.Before(w.Expires.AddDate(0, 0, 1))
}

func (e *evaluator) expired() {
	for _, w := range e.cfg.Waivers {
		if e.isExpired(w) {
			subject := "waiver " + w.Check
			if w.Module != nil {
				subject += " on " + w.Module.Pattern
			}
			e.out = append(e.out, report.Outcome{Check: "waiver_expired", Subject: subject, Unit: "count", Status: report.StatusFail,
				Message: fmt.Sprintf("waiver for %s (%q) expired on %s: fix the cause or renew the waiver", w.Check, w.Reason, w.Expires.Format(time.DateOnly))})
		}
	}
}

func (e *evaluator) budget(rep *report.Report, b Budget) {
	var groups []report.Group
	var what string
	switch {
	case b.Role != nil:
		what = "role " + b.Role.Name
		if b.Role.Name == "total" {
			groups = []report.Group{rep.Totals}
			what = "total"
		}
		for _, g := range rep.Roles {
			if g.Role == b.Role.Name {
				groups = append(groups, g)
			}
		}
	case b.Module != nil:
		what = "module " + b.Module.Pattern
		for _, g := range rep.Modules {
			if b.Module.Match(g.Key()) {
				groups = append(groups, g)
			}
		}
	case b.Layer != nil:
		what = "layer " + b.Layer.Pattern
		for _, g := range rep.Layers {
			if g.Layer != report.NoLayer && b.Layer.Match(g.Layer) {
				groups = append(groups, g)
			}
		}
	}
	if len(groups) == 0 {
		// A budget for something that is not there fails: a model that
		// lost its encoded layers must not pass an encoded-layer budget.
		e.add(report.Outcome{Check: "budget", Subject: what, Unit: "count",
			Message: what + " matches no tensors"}, "", true)
		return
	}
	for _, g := range groups {
		subject := what
		if b.Module != nil {
			subject = "module " + g.Key()
		} else if b.Layer != nil {
			subject = "layer " + g.Layer
		}
		module := ""
		if g.Module != nil {
			module = *g.Module
		}
		if b.MaxBitsPerWeight != nil {
			e.add(report.Outcome{Check: "max_bits_per_weight", Subject: subject, Limit: *b.MaxBitsPerWeight, Actual: g.BitsPerWeight, Unit: "bits_per_weight",
				Message: fmt.Sprintf("%.2f bits per weight (at most %g)", g.BitsPerWeight, *b.MaxBitsPerWeight)}, module, g.BitsPerWeight > *b.MaxBitsPerWeight)
		}
		if b.MinRatio != nil {
			e.add(report.Outcome{Check: "min_ratio", Subject: subject, Limit: *b.MinRatio, Actual: g.Ratio, Unit: "ratio",
				Message: fmt.Sprintf("ratio %.2fx (at least %gx)", g.Ratio, *b.MinRatio)}, module, g.Ratio < *b.MinRatio)
		}
		if b.MaxStoredBytes != nil {
			e.add(report.Outcome{Check: "max_stored_bytes", Subject: subject, Limit: float64(b.MaxStoredBytes.Bytes), Actual: float64(g.StoredBytes), Unit: "bytes",
				Message: fmt.Sprintf("%d bytes stored (at most %d)", g.StoredBytes, b.MaxStoredBytes.Bytes)}, module, g.StoredBytes > b.MaxStoredBytes.Bytes)
		}
	}
}

func (e *evaluator) forbidden(rep *report.Report) {
	for _, k := range e.cfg.ForbidFindings {
		n := 0
		for _, f := range rep.Findings {
			if f.Kind != k.Kind {
				continue
			}
			n++
			e.add(report.Outcome{Check: k.Kind, Subject: "module " + f.Module, Limit: 0, Actual: float64(f.Bytes), Unit: "bytes",
				Message: "forbidden finding: " + f.Message}, f.Module, true)
		}
		if n == 0 {
			e.add(report.Outcome{Check: k.Kind, Subject: "model", Unit: "count", Message: "no " + k.Kind + " findings"}, "", false)
		}
	}
}

// errorFindings fails every error finding, whatever the budgets say: an
// audit that found an encoded layer still in float32 must not pass a gate
// that only checks the total. A kind named in forbid_findings is judged
// there; a kind in allow_findings (or --allow-finding) and a waiver let it
// pass, with the reason shown.
// When it is the only check (check with no budgets), a pass says so.
func (e *evaluator) errorFindings(rep *report.Report, only bool) {
	forbidden := map[string]bool{}
	for _, k := range e.cfg.ForbidFindings {
		forbidden[k.Kind] = true
	}
	allowed := map[string]string{}
	for _, a := range e.cfg.AllowFindings {
		allowed[a.Kind.Kind] = a.Reason
	}
	n := 0
	for _, f := range rep.Findings {
		if f.Severity != "error" || forbidden[f.Kind] {
			continue
		}
		n++
		o := report.Outcome{Check: f.Kind, Subject: subjectOf(f.Module), Actual: float64(f.Bytes), Unit: "bytes",
			Message: "error finding: " + f.Message}
		if reason, ok := allowed[f.Kind]; ok {
			o.Status, o.Waiver = report.StatusWaived, reason
			e.out = append(e.out, o)
			continue
		}
		e.add(o, f.Module, true)
	}
	if n == 0 && only {
		e.add(report.Outcome{Check: "error_findings", Subject: "model", Unit: "count", Message: "no error findings"}, "", false)
	}
}

func subjectOf(module string) string {
	if module == "" {
		return "model"
	}
	return "module " + module
}

// against fails modules and the total that grew beyond the thresholds, and
// error findings the baseline did not have.
func (e *evaluator) against(rep, base *report.Report, a *Against) {
	var floor int64
	if a.IgnoreBelow != nil {
		floor = a.IgnoreBelow.Bytes
	}
	grew := func(r report.DiffRow) bool {
		if r.DeltaBytes <= floor || r.DeltaBytes <= 0 {
			return false
		}
		over := true
		if a.MaxGrowth != nil {
			over = r.OldBytes == 0 || r.DeltaPct > a.MaxGrowth.Value
		}
		if a.MaxGrowthBytes != nil {
			over = over && r.DeltaBytes > a.MaxGrowthBytes.Bytes
		}
		return over
	}
	limit, unit := 0.0, "percent"
	if a.MaxGrowth != nil {
		limit = a.MaxGrowth.Value
	} else if a.MaxGrowthBytes != nil {
		limit, unit = float64(a.MaxGrowthBytes.Bytes), "bytes"
	}
	actual := func(r report.DiffRow) float64 {
		if unit == "bytes" {
			return float64(r.DeltaBytes)
		}
		return r.DeltaPct
	}
	d := report.NewDiffChanges(base, rep, "module") // only rows that grew count
	failed := 0
	for _, r := range d.Rows {
		if grew(r) {
			failed++
			e.add(report.Outcome{Check: "max_growth", Subject: "module " + r.Key, Limit: limit, Actual: actual(r), Unit: unit,
				Message: fmt.Sprintf("stored bytes %d -> %d (%+d, %s)", r.OldBytes, r.NewBytes, r.DeltaBytes, growthPct(r))}, r.Key, true)
		}
	}
	t := d.Total
	e.add(report.Outcome{Check: "max_growth", Subject: "total", Limit: limit, Actual: actual(t), Unit: unit,
		Message: fmt.Sprintf("stored bytes %d -> %d (%+d, %s); %d of %d modules grew beyond the threshold", t.OldBytes, t.NewBytes, t.DeltaBytes, growthPct(t), failed, len(d.Rows))},
		"", grew(t))
	had := map[string]bool{}
	for _, f := range base.Findings {
		had[f.Kind+"\x00"+f.Module] = true
	}
	for _, f := range rep.Findings {
		if f.Severity == "error" && !had[f.Kind+"\x00"+f.Module] {
			e.add(report.Outcome{Check: "new_finding", Subject: "module " + f.Module, Unit: "bytes", Actual: float64(f.Bytes),
				Message: "not in the baseline: " + f.Kind + ": " + f.Message}, f.Module, true)
		}
	}
}

// heap fails comparisons no known cause explains, and a heap over the
// max_heap_over_stored budget.
func (e *evaluator) heap(h *Heap) {
	for _, c := range h.Comparisons {
		failed := c.Verdict.Failing()
		e.add(report.Outcome{Check: "heap_verdict", Subject: c.Subject, Limit: float64(c.ExpectedBytes), Actual: float64(c.MeasuredBytes), Unit: "bytes",
			Message: c.Verdict.String() + ": " + c.Message}, "", failed)
	}
	if limit := e.cfg.MaxHeapOverStored; limit != nil && h.StoredBytes > 0 {
		r, over := accounting.OverBudget(h.InUseBytes, h.StoredBytes, *limit)
		e.add(report.Outcome{Check: "max_heap_over_stored", Subject: "heap in use", Limit: *limit, Actual: r, Unit: "ratio",
			Message: fmt.Sprintf("%d bytes in use over %d stored: %.2fx (at most %gx)", h.InUseBytes, h.StoredBytes, r, *limit)}, "", over)
	}
}

func growthPct(r report.DiffRow) string {
	if r.OldBytes == 0 {
		return "new"
	}
	return fmt.Sprintf("%+.2f%%", r.DeltaPct)
}

// Worse reports whether anything grew at all between base and rep (beyond
// the floor): the ratchet for --update-against.
func Worse(rep, base *report.Report, a *Against) bool {
	var floor int64
	if a != nil && a.IgnoreBelow != nil {
		floor = a.IgnoreBelow.Bytes
	}
	d := report.NewDiffChanges(base, rep, "module")
	for _, r := range append(d.Rows, d.Total) {
		if r.DeltaBytes > floor {
			return true
		}
	}
	return false
}
