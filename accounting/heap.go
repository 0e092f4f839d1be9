package accounting

// Verdict is the outcome of comparing a measured figure with an expected
// one.
type Verdict string

// Verdicts. Consistent and HoldsDecodedCopies are explained outcomes; the
// others fail a command on their own.
const (
	// Consistent: measured and expected agree within the tolerance.
	Consistent Verdict = "consistent"
	// HoldsDecodedCopies: the measurement exceeds the stored bytes by about
	// the decoded fp32 size: the runtime keeps decoded weights.
	HoldsDecodedCopies Verdict = "runtime-holds-decoded-copies"
	// ClaimDisagrees: a figure the user's script claimed is not what was
	// measured.
	ClaimDisagrees Verdict = "claim-disagrees"
	// Unexplained: measured and expected differ and no known cause fits.
	Unexplained Verdict = "unexplained-difference"
)

// Failing reports whether the verdict should fail a CI gate by itself.
func (v Verdict) Failing() bool { return v == ClaimDisagrees || v == Unexplained }

// Comparison is one measured figure set against what was expected of it.
type Comparison struct {
	Subject        string // "weights in use vs stored", "claim weights=0.41MiB", ...
	MeasuredBytes  int64
	ExpectedBytes  int64
	ToleranceBytes int64
	Verdict        Verdict
	Message        string
}

// Phase is the heap measured at one named point of a decode pass.
type Phase struct {
	Name          string // "after-load", "peak", "after-decode", "end"
	InUseBytes    int64
	ExpectedBytes int64
	// ByRole splits InUseBytes by the role of the tensor the memory was
	// allocated for ("encoded_linear", "decoded", ...).
	ByRole map[string]int64
}
