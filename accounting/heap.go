package accounting

import "fmt"

// Verdict is the outcome of comparing a measured figure with what explains
// it. The set is closed: the constants below are the only verdicts, and a
// verdict is written and read by its name.
type Verdict uint8

// Verdicts. Consistent, NotApplicable, Inconclusive and the named causes are
// outcomes that do not fail a command by themselves; ClaimDisagrees and
// Unexplained do.
const (
	// Consistent: measured and expected agree within the tolerance.
	Consistent Verdict = iota + 1
	// HoldsDecodedCopies: the heap holds the stored weights plus decoded
	// copies (every encoded weight, one module or one layer).
	HoldsDecodedCopies
	// HoldsSecondCopy: the heap holds the stored weights twice, e.g. the
	// loaded state dict kept alive beside the model.
	HoldsSecondCopy
	// HoldsWidened: the float16/bfloat16 weights are held at the baseline
	// dtype, widened when they were loaded.
	HoldsWidened
	// HoldsOptimizerState: the heap holds the checkpoint's optimizer state
	// besides the model.
	HoldsOptimizerState
	// ClaimDisagrees: a figure the user's script claimed is not what was
	// measured.
	ClaimDisagrees
	// Unexplained: measured and expected differ and no known cause fits.
	Unexplained
	// Inconclusive: the measurement's uncertainty is wider than the
	// distance between two explanations; it cannot tell them apart.
	Inconclusive
	// NotApplicable: there was nothing to compare (nothing decoded, no
	// weights in use yet).
	NotApplicable
	numVerdicts
)

var verdictNames = [...]string{"", "consistent", "runtime-holds-decoded-copies", "runtime-holds-second-copy",
	"runtime-holds-widened-weights", "runtime-holds-optimizer-state", "claim-disagrees", "unexplained-difference",
	"inconclusive", "not-applicable"}

func (v Verdict) String() string {
	if v > 0 && v < numVerdicts {
		return verdictNames[v]
	}
	return fmt.Sprintf("Verdict(%d)", uint8(v))
}

// ParseVerdict returns the verdict named s.
func ParseVerdict(s string) (Verdict, error) {
	for i := Verdict(1); i < numVerdicts; i++ {
		if verdictNames[i] == s {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown verdict %q", s)
}

// Verdicts lists every verdict in order.
func Verdicts() []Verdict {
	out := make([]Verdict, 0, numVerdicts-1)
	for i := Verdict(1); i < numVerdicts; i++ {
		out = append(out, i)
	}
	return out
}

// MarshalText writes the verdict's name.
func (v Verdict) MarshalText() ([]byte, error) {
	if v == 0 || v >= numVerdicts {
		return nil, fmt.Errorf("invalid verdict %d", uint8(v))
	}
	return []byte(v.String()), nil
}

// UnmarshalText reads a verdict's name.
func (v *Verdict) UnmarshalText(b []byte) error {
	x, err := ParseVerdict(string(b))
	*v = x
	return err
}

// Failing reports whether the verdict should fail a CI gate by itself.
func (v Verdict) Failing() bool { return v == ClaimDisagrees || v == Unexplained }

// Explained reports whether the verdict names what the heap holds: the
// stored weights or one of the known causes on top of them.
func (v Verdict) Explained() bool {
	switch v {
	case Consistent, HoldsDecodedCopies, HoldsSecondCopy, HoldsWidened, HoldsOptimizerState:
		return true
	}
	return false
}

// Comparison is one measured figure set against what was expected of it.
type Comparison struct {
	Subject        string // "weights in use vs stored", "claim weights=0.41MiB", ...
	MeasuredBytes  int64
	ExpectedBytes  int64
	ToleranceBytes int64
	Verdict        Verdict
	Message        string
}

// Phase is the heap measured at one named point of a decode pass or of a
// profiled process.
type Phase struct {
	Name          string // "after-load", "peak", "after-decode", "end"
	InUseBytes    int64
	ExpectedBytes int64
	// ByRole splits InUseBytes by the role of the tensor the memory was
	// allocated for ("encoded_linear", "decoded", ...), or, for a profiled
	// process, into "tensors" (allocated by the tensor allocator) and
	// "other".
	ByRole map[string]int64
	// Verdict is the phase's heap verdict (qinsaudit profile); 0 when the
	// phase has none (decode's phases, a profile's start).
	Verdict Verdict
}
