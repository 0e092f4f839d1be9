package accounting

import (
	"fmt"
	"math"
	"strings"
)

// Heap cross-check finding kinds: what a heap profile or its comparison with
// the accounting noticed that would otherwise mislead.
const (
	// HeapProfileTruncated: the profile's header counts more in-use bytes
	// than its listed stacks carry (gperftools writes at most 1 MiB per
	// dump and drops the smallest stacks).
	HeapProfileTruncated FindingKind = "heap-profile-truncated"
	// HeapProfileNoInUse: the profile has an in-use sample type but no
	// in-use bytes at all.
	HeapProfileNoInUse FindingKind = "heap-profile-no-inuse"
	// HeapProfileLate: far less is in use than the file stores: the
	// profile probably started after the weights were allocated.
	HeapProfileLate FindingKind = "heap-profile-late"
	// HeapProfileNoBase: far more is in use than the model explains and no
	// base profile was subtracted: the interpreter and libraries count too.
	HeapProfileNoBase FindingKind = "heap-profile-no-base"
	// HeapOverBudget: the heap holds more than the budget the user set
	// relative to the stored weights.
	HeapOverBudget FindingKind = "heap-over-budget"
)

// HeapMeasurement is what a heap profile says the process holds, reduced to
// the figures the comparison needs. Package heapcheck makes it from profile
// files.
type HeapMeasurement struct {
	Profile string // the profile's path
	Base    string // the subtracted base profile's path, "" if none
	Format  string // the profile's format, e.g. "jemalloc-heap_v2"
	Focus   string // the --focus regular expression, "" if none
	// InUseBytes is the un-sampled estimate of the bytes in use: the
	// profile minus the base, restricted to the focus.
	InUseBytes int64
	// SampleRate is the mean number of bytes allocated between two
	// samples; 1 when every allocation was recorded.
	SampleRate int64
	// SigmaBytes is one standard deviation of InUseBytes due to sampling;
	// 0 for an exact profile.
	SigmaBytes int64
	// UnlistedBytes are bytes a truncated profile counts in its totals but
	// lists under no stack, so a focus cannot tell whether they match. They
	// widen the tolerance.
	UnlistedBytes int64
	// Notices are what reading the profiles noticed.
	Notices []Finding
}

// Claim is a size a user's script reported, e.g. weights=0.41MB.
type Claim struct {
	Name  string // "weights"
	Text  string // the size as given: "0.41MB"
	Bytes int64
	// PrecisionBytes is half a unit in the last digit given: "0.41MB" is
	// 410,000 ± 5,000 bytes.
	PrecisionBytes int64
	// OtherUnitBytes is the size with the unit read the other way (MB as
	// MiB, MiB as MB), 0 when the text has no such unit.
	OtherUnitBytes int64
}

// CompareOptions tune Compare. The zero value uses the defaults.
type CompareOptions struct {
	// RelTolerance is the fraction of an expected figure allowed for
	// allocator rounding and interpreter noise (default 0.03).
	RelTolerance float64
	// MinToleranceBytes is the least tolerance (default 128 KiB): an
	// interpreter allocates some memory whatever the model's size.
	MinToleranceBytes int64
	// MaxHeapOverStored fails the check when the heap in use exceeds this
	// multiple of the stored bytes; 0 sets no budget.
	MaxHeapOverStored float64
}

// Defaults of CompareOptions.
const (
	DefaultRelTolerance      = 0.03
	DefaultMinToleranceBytes = 128 << 10
	// SamplingSigmas is how many standard deviations of the sampling
	// estimate a tolerance allows (99.7% of a normal distribution).
	SamplingSigmas = 3
)

// Crosscheck is the outcome of Compare.
type Crosscheck struct {
	Comparisons []Comparison
	// Findings are the profile's notices and what the comparison noticed.
	Findings []Finding
	// OverBudget says how the heap exceeds MaxHeapOverStored; "" if it
	// does not or no budget was set.
	OverBudget string
}

// Failures returns the comparisons whose verdict fails a gate.
func (c *Crosscheck) Failures() []Comparison {
	var out []Comparison
	for _, x := range c.Comparisons {
		if x.Verdict.Failing() {
			out = append(out, x)
		}
	}
	return out
}

// modelFigures are the accounting's figures a heap can be held against.
type modelFigures struct {
	stored   int64  // bytes the file stores for the model
	baseline int64  // the whole model in the baseline dtype
	decoded  int64  // baseline-dtype copies of every weight a runtime must convert
	largest  int64  // the same for the largest single module
	largestM string // that module
	layer    int64  // the same for the largest layer: a streaming runtime's buffer
	layerL   string // that layer
	unshown  int64  // stored bytes of encoded linears: what parameters() misses
	dtype    string // the baseline dtype
}

func figures(res *Result) modelFigures {
	f := modelFigures{stored: res.Total.StoredBytes, baseline: res.Total.BaselineBytes, dtype: res.Baseline}
	perModule, perLayer := map[string]int64{}, map[string]int64{}
	var modules, layers []string
	for i := range res.Rows {
		r := &res.Rows[i]
		if !r.Role.InModel() {
			continue
		}
		if r.Role == EncodedLinear {
			f.unshown += r.StoredBytes
		}
		if r.BaselineBytes == 0 || !Decoded(r, res.Baseline) {
			continue
		}
		f.decoded += r.BaselineBytes
		if _, ok := perModule[r.Module]; !ok {
			modules = append(modules, r.Module)
		}
		perModule[r.Module] += r.BaselineBytes
		l := DecodeLayer(r)
		if _, ok := perLayer[l]; !ok {
			layers = append(layers, l)
		}
		perLayer[l] += r.BaselineBytes
	}
	for _, m := range modules {
		if perModule[m] > f.largest {
			f.largest, f.largestM = perModule[m], m
		}
	}
	for _, l := range layers {
		if perLayer[l] > f.layer {
			f.layer, f.layerL = perLayer[l], l
		}
	}
	return f
}

// maxPlausibleBytes bounds the figures of a heap measurement: no machine
// holds an exbibyte, and sums of figures below it cannot overflow.
const maxPlausibleBytes = 1 << 60

// Compare holds a heap measurement against the accounting of res and against
// the user's claims. The measurement is first explained, if it can be, as the
// stored weights (consistent), or the stored weights plus decoded copies of
// every weight a runtime decodes (Decoded), or of the largest module's, or
// of the largest layer's (runtime-holds-decoded-copies); otherwise the
// difference is unexplained. Each claim is then held against the
// measurement (consistent or claim-disagrees). Every comparison carries the
// tolerance it used: SamplingSigmas standard deviations of the sampling
// estimate, plus opts.RelTolerance of the expected figure (at least
// opts.MinToleranceBytes), plus any bytes a truncated profile leaves
// unlisted, plus, for a claim, the precision it was given to. A measurement
// beyond any real heap (more than 2^60 bytes) is unexplained outright.
func Compare(res *Result, m HeapMeasurement, claims []Claim, opts CompareOptions) *Crosscheck {
	if opts.RelTolerance <= 0 {
		opts.RelTolerance = DefaultRelTolerance
	}
	if opts.MinToleranceBytes <= 0 {
		opts.MinToleranceBytes = DefaultMinToleranceBytes
	}
	f := figures(res)
	cc := &Crosscheck{Findings: append([]Finding(nil), m.Notices...)}
	if !plausible(m) {
		msg := fmt.Sprintf("the measurement (%d bytes in use, ± %d, %d unlisted) is beyond what any heap holds: the profile's counts are corrupt",
			m.InUseBytes, m.SigmaBytes, m.UnlistedBytes)
		cc.Comparisons = append(cc.Comparisons, Comparison{Subject: "heap in use vs stored weights", MeasuredBytes: m.InUseBytes,
			ExpectedBytes: f.stored, Verdict: Unexplained, Message: msg})
		for _, c := range claims {
			cc.Comparisons = append(cc.Comparisons, Comparison{Subject: "claim " + c.Name + "=" + c.Text, MeasuredBytes: m.InUseBytes,
				ExpectedBytes: c.Bytes, Verdict: Unexplained, Message: msg})
		}
		return cc
	}
	tol := func(expected int64) int64 {
		t := max(int64(math.Ceil(opts.RelTolerance*float64(abs(expected)))), opts.MinToleranceBytes)
		return t + SamplingSigmas*m.SigmaBytes + m.UnlistedBytes
	}
	within := func(measured, expected int64) bool { return abs(measured-expected) <= tol(expected) }
	measured := m.InUseBytes
	how := measurementNote(m)

	heap := Comparison{Subject: "heap in use vs stored weights", MeasuredBytes: measured,
		ExpectedBytes: f.stored, ToleranceBytes: tol(f.stored)}
	atRest := measured // the measurement less any decoded copies it is explained by
	switch {
	case within(measured, f.stored):
		heap.Verdict = Consistent
		heap.Message = fmt.Sprintf("the heap holds the stored weights, %s, and no decoded copies; %s", ByteSize(f.stored), how)
	case f.decoded > 0 && within(measured, f.stored+f.decoded):
		heap = Comparison{Subject: "heap in use vs stored + decoded " + f.dtype, MeasuredBytes: measured,
			ExpectedBytes: f.stored + f.decoded, ToleranceBytes: tol(f.stored + f.decoded), Verdict: HoldsDecodedCopies}
		heap.Message = fmt.Sprintf("the runtime keeps a decoded %s copy of every encoded weight: %s in use = %s stored + %s decoded",
			f.dtype, both(measured), ByteSize(f.stored), ByteSize(f.decoded))
		if measured > f.baseline {
			heap.Message += fmt.Sprintf(", more than the %s model itself, %s", f.dtype, ByteSize(f.baseline))
		}
		heap.Message += "; " + how
		atRest = measured - f.decoded
	case f.largest > 0 && f.largest < f.decoded && within(measured, f.stored+f.largest):
		heap = Comparison{Subject: "heap in use vs stored + one decoded layer", MeasuredBytes: measured,
			ExpectedBytes: f.stored + f.largest, ToleranceBytes: tol(f.stored + f.largest), Verdict: HoldsDecodedCopies}
		heap.Message = fmt.Sprintf("the runtime holds one decoded %s layer at a time (the largest, %s, is %s): a streaming decode's working buffer; %s",
			f.dtype, f.largestM, ByteSize(f.largest), how)
		atRest = measured - f.largest
	case f.layer > f.largest && f.layer < f.decoded && within(measured, f.stored+f.layer):
		heap = Comparison{Subject: "heap in use vs stored + the largest decoded layer", MeasuredBytes: measured,
			ExpectedBytes: f.stored + f.layer, ToleranceBytes: tol(f.stored + f.layer), Verdict: HoldsDecodedCopies}
		heap.Message = fmt.Sprintf("the runtime decodes a whole layer at a time into one buffer sized for the largest (%s, %s of %s): a streaming decode's working buffer, as qinsaudit decode --stream keeps; %s",
			f.layerL, ByteSize(f.layer), f.dtype, how)
		atRest = measured - f.layer
	case measured < f.stored:
		heap.Verdict = Unexplained
		heap.Message = fmt.Sprintf("%s less in use than the file stores: the profile may have started after the weights were allocated, "+
			"the runtime may map the file instead of allocating, or --focus drops the weights' allocations; %s", ByteSize(f.stored-measured), how)
		cc.Findings = append(cc.Findings, Finding{Kind: HeapProfileLate, Severity: Warning, Bytes: f.stored - measured,
			Message: fmt.Sprintf("%s is in use where the file stores %s: start the profiler before the weights are loaded (and pass a dump taken before loading as --base)",
				ByteSize(measured), ByteSize(f.stored))})
	default:
		heap.Verdict = Unexplained
		heap.Message = fmt.Sprintf("%s more in use than the stored weights, and not the size of their decoded copies, %s", ByteSize(measured-f.stored), ByteSize(f.decoded))
		if m.Base == "" {
			heap.Message += ": without --base the profile counts everything the process holds, interpreter and libraries included"
			cc.Findings = append(cc.Findings, Finding{Kind: HeapProfileNoBase, Severity: Warning, Bytes: measured - f.stored,
				Message: "no base profile: pass a dump taken before the weights were loaded (e.g. right after import torch) as --base"})
		}
		heap.Message += "; " + how
	}
	cc.Comparisons = append(cc.Comparisons, heap)

	for _, c := range claims {
		cc.Comparisons = append(cc.Comparisons, compareClaim(c, measured, atRest, f, tol))
	}

	if over := HeapBudget("heap in use", measured, f.stored, opts.MaxHeapOverStored); over != nil {
		cc.OverBudget = over.Message
		cc.Findings = append(cc.Findings, *over)
	}
	return cc
}

// plausible reports whether a measurement's figures are ones a heap can
// have.
func plausible(m HeapMeasurement) bool {
	return m.InUseBytes >= -maxPlausibleBytes && m.InUseBytes <= maxPlausibleBytes &&
		m.SigmaBytes >= 0 && m.SigmaBytes <= maxPlausibleBytes && m.UnlistedBytes >= 0 && m.UnlistedBytes <= maxPlausibleBytes
}

// HeapBudget holds inUse bytes against maxOver times the stored bytes
// (CompareOptions.MaxHeapOverStored, decode's and check's
// --max-heap-over-stored). It returns a HeapOverBudget finding saying by
// how much what ("heap in use") exceeds the budget, or nil when it does
// not, when no budget is set (maxOver 0) or when nothing is stored.
func HeapBudget(what string, inUse, stored int64, maxOver float64) *Finding {
	if maxOver <= 0 || stored <= 0 {
		return nil
	}
	r := float64(inUse) / float64(stored)
	if r <= maxOver {
		return nil
	}
	msg := fmt.Sprintf("%s is %.2fx the stored weights (%s of %s), over the budget of %gx", what, r, ByteSize(inUse), ByteSize(stored), maxOver)
	return &Finding{Kind: HeapOverBudget, Severity: Error, Tensors: []string{}, Bytes: inUse - int64(maxOver*float64(stored)), Message: msg}
}

// compareClaim holds one claim against the measurement. atRest is the
// measurement less the decoded copies it was explained by.
func compareClaim(c Claim, measured, atRest int64, f modelFigures, tol func(int64) int64) Comparison {
	t := tol(measured) + c.PrecisionBytes
	x := Comparison{Subject: "claim " + c.Name + "=" + c.Text, MeasuredBytes: measured, ExpectedBytes: c.Bytes, ToleranceBytes: t}
	near := func(a, b int64) bool { return abs(a-b) <= tol(b)+c.PrecisionBytes }
	switch {
	case abs(measured-c.Bytes) <= t:
		x.Verdict = Consistent
		x.Message = fmt.Sprintf("the claim matches the %s measured", both(measured))
		return x
	case atRest != measured && near(c.Bytes, atRest):
		x.Verdict = Consistent
		x.Message = fmt.Sprintf("the claim matches the weights at rest, %s; the runtime holds %s of decoded copies on top", both(atRest), ByteSize(measured-atRest))
		x.ToleranceBytes = tol(atRest) + c.PrecisionBytes
		return x
	}
	x.Verdict = ClaimDisagrees
	claimed := c.Text + " = " + ByteCount(c.Bytes)
	if strings.Trim(c.Text, "0123456789,") == "" {
		claimed = ByteCount(c.Bytes)
	}
	x.Message = fmt.Sprintf("claimed %s, but the process holds %s of weights", claimed, both(atRest))
	if atRest != measured {
		x.Message += fmt.Sprintf(", %s with their decoded copies", ByteSize(measured))
	}
	if c.Bytes > 0 {
		x.Message += fmt.Sprintf(": %s the claim", times(atRest, c.Bytes))
	}
	switch {
	case c.OtherUnitBytes > 0 && near(c.OtherUnitBytes, atRest):
		x.Message += "; read with the other unit it would match: MB/GB are powers of 10, MiB/GiB powers of 2"
	case f.unshown > 0 && near(c.Bytes, f.stored-f.unshown):
		x.Message += fmt.Sprintf("; it is the model without its encoded linears, %s: summing model.parameters() skips registered buffers, where the encoded weights live", ByteSize(f.stored-f.unshown))
	case near(c.Bytes, f.baseline):
		x.Message += fmt.Sprintf("; it is the %s size of the whole model: the encoding does not show in it", f.dtype)
	case near(c.Bytes, f.stored) && !near(atRest, f.stored):
		x.Message += "; it is what the file stores, not what the process holds"
	}
	return x
}

// measurementNote says where the measurement comes from and how exact it is.
func measurementNote(m HeapMeasurement) string {
	s := "measured by " + m.Format
	if m.Base != "" {
		s += " minus a base profile"
	}
	if m.Focus != "" {
		s += fmt.Sprintf(", stacks matching %q", m.Focus)
	}
	switch {
	case m.SampleRate <= 1:
		s += ", every allocation recorded (exact)"
	default:
		s += fmt.Sprintf(", sampled every %s on average: ±%s (1σ)", ByteSize(m.SampleRate), ByteSize(m.SigmaBytes))
	}
	if m.UnlistedBytes > 0 {
		s += fmt.Sprintf("; %s the truncated profile does not list are added to the tolerance", ByteSize(m.UnlistedBytes))
	}
	return s
}

// AddFindings appends fs to res's findings, keeping them in severity order.
// A finding about no tensor gets an empty, not a nil, tensor list.
func AddFindings(res *Result, fs []Finding) {
	for _, f := range fs {
		if f.Tensors == nil {
			f.Tensors = []string{}
		}
		res.Findings = append(res.Findings, f)
	}
	sortFindings(res.Findings)
}

// abs returns |x|, saturating: abs(MinInt64) is MaxInt64, not negative.
func abs(x int64) int64 {
	switch {
	case x == math.MinInt64:
		return math.MaxInt64
	case x < 0:
		return -x
	}
	return x
}

// times says how far a is from b: "24x more than", "0.52x".
func times(a, b int64) string {
	r := float64(a) / float64(b)
	switch {
	case r >= 1.995:
		return fmt.Sprintf("%.0fx", r) + " more than"
	case r >= 1:
		return fmt.Sprintf("%.0f%% more than", (r-1)*100)
	}
	return fmt.Sprintf("%.0f%% less than", (1-r)*100)
}

// both formats a measured figure in IEC and decimal units, since claims are
// written in either: "9.44 MiB (9.9 MB)".
func both(n int64) string { return ByteSize(n) + " (" + ByteSizeSI(n) + ")" }
