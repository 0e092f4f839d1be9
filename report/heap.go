package report

import "github.com/qinsaudit/qinsaudit/accounting"

// Phase is the heap in use at one named point of a decode pass.
type Phase struct {
	Phase         string           `json:"phase"`
	InUseBytes    int64            `json:"in_use_bytes"`
	ExpectedBytes int64            `json:"expected_bytes"`
	ByRole        map[string]int64 `json:"by_role"`
	// Verdict is the phase's heap verdict (profile); absent for decode's
	// phases and a profile's start.
	Verdict accounting.Verdict `json:"verdict,omitempty"`
}

// Comparison is one measured figure set against what was expected of it.
type Comparison struct {
	Subject        string             `json:"subject"`
	MeasuredBytes  int64              `json:"measured_bytes"`
	ExpectedBytes  int64              `json:"expected_bytes"`
	ToleranceBytes int64              `json:"tolerance_bytes"`
	Verdict        accounting.Verdict `json:"verdict"`
	Message        string             `json:"message"`
}
