package report

// Gate is the outcome of `qinsaudit check`: every budget, threshold and
// forbidden finding it applied, and whether each passed.
type Gate struct {
	Passed   bool      `json:"passed"`
	Config   string    `json:"config,omitempty"`  // the config file, if any
	Against  string    `json:"against,omitempty"` // the baseline report, if any
	Outcomes []Outcome `json:"outcomes"`
}

// Outcome is one check of a gate.
type Outcome struct {
	// Check names the rule: "min_ratio", "max_bits_per_weight",
	// "max_stored_bytes", "forbid_findings", "max_growth", "new_finding",
	// "waiver_expired".
	Check string `json:"check"`
	// Subject is what was checked: "role encoded_linear", "module
	// blocks.0.attn.v", "total".
	Subject string `json:"subject"`
	// Limit and Actual are in Unit: "bytes", "ratio", "bits_per_weight",
	// "percent", "count".
	Limit  float64 `json:"limit"`
	Actual float64 `json:"actual"`
	Unit   string  `json:"unit"`
	Status Status  `json:"status"`
	// Waiver is the reason of the waiver that excused a failure.
	Waiver  string `json:"waiver,omitempty"`
	Message string `json:"message"`
}

// Status is the result of one check of a gate.
type Status string

// The results of a check.
const (
	StatusPass   Status = "pass"
	StatusFail   Status = "fail"
	StatusWaived Status = "waived" // failed, excused by a live waiver
)

// gateTable renders the gate's outcomes, failures first.
func gateTable(rep *Report, md bool) *table {
	g := rep.Gate
	if g == nil {
		return nil
	}
	verdict := "passed"
	if !g.Passed {
		verdict = "FAILED"
	}
	t := &table{
		title:  "gate: " + verdict,
		header: []string{"result", "check", "subject", "limit", "actual", "message"},
		right:  []bool{false, false, false, true, true, false},
	}
	for _, status := range []Status{StatusFail, StatusWaived, StatusPass} {
		for _, o := range g.Outcomes {
			if o.Status != status {
				continue
			}
			mark := map[Status]string{StatusFail: "FAIL", StatusWaived: "waived", StatusPass: "ok"}[status]
			if md {
				mark = map[Status]string{StatusFail: "❌ fail", StatusWaived: "⚠️ waived", StatusPass: "✅ pass"}[status]
			}
			msg := o.Message
			if o.Waiver != "" {
				msg += " (waived: " + o.Waiver + ")"
			}
			t.rows = append(t.rows, []string{mark, o.Check, o.Subject, limitValue(o.Limit, o.Unit), limitValue(o.Actual, o.Unit), msg})
		}
	}
	return t
}

// limitValue prints a limit or actual value in its unit, exactly for
// bytes so that it agrees with the JSON.
func limitValue(v float64, unit string) string {
	switch unit {
	case "bytes", "count":
		return i64(int64(v))
	case "ratio":
		return Ratio(v)
	case "percent":
		return fmtPct(v)
	}
	return BitsPerWeight(v)
}
