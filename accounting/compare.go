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
	// Attributed names the allocator the measured bytes were attributed
	// to by default ("libc10", PyTorch's CPU allocator), "" when every
	// stack (or the --focus) counts.
	Attributed string
	// InUseBytes is the un-sampled estimate of the bytes in use: the
	// profile minus the base, restricted to the focus or attribution.
	InUseBytes int64
	// OtherBytes is the estimate of the bytes in use outside the focus or
	// attribution (the interpreter's and libraries' allocations); 0 when
	// every stack counts.
	OtherBytes int64
	// SampleRate is the mean number of bytes allocated between two
	// samples; 1 when every allocation was recorded.
	SampleRate int64
	// SigmaBytes is one standard deviation of InUseBytes due to sampling,
	// estimated from the profile's stacks; 0 for an exact profile.
	SigmaBytes int64
	// UnlistedBytes are bytes a truncated profile counts in its totals but
	// lists under no stack, so a focus or an attribution cannot tell whether
	// they are its own: the truth may be up to that much more than
	// InUseBytes, never less. UnlistedBaseBytes are the same of the base
	// profile, which was subtracted: the truth may be up to that much less.
	// Both widen the window an explanation must fall in on their side only.
	UnlistedBytes     int64
	UnlistedBaseBytes int64
	// Slot, when set, is what the profile records for one allocation of
	// n bytes: the allocator's size class (jemalloc records usable sizes).
	// Nil records the size asked for (gperftools, Go's profile.proto).
	Slot func(n int64) int64
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
	// the process's own allocations and allocator rounding not predicted
	// (default 0.03, or 0.01 when the measurement is attributed to the
	// tensor allocator or restricted to a focus).
	RelTolerance float64
	// MinToleranceBytes is the least tolerance: a process allocates some
	// memory whatever the model's size. Default 128 KiB, or 32 KiB when
	// the measurement is attributed to the tensor allocator or restricted
	// to a focus (only stray tensors then count).
	MinToleranceBytes int64
	// MaxHeapOverStored fails the check when the heap in use exceeds this
	// multiple of the stored bytes; 0 sets no budget.
	MaxHeapOverStored float64
	// Widen counts float16 and bfloat16 weights as decoded to the baseline
	// dtype (a runtime that widens them); by default a runtime keeps them
	// as stored.
	Widen bool
	// MayBeEmpty allows the explanation that no weights are in use yet (a
	// phase of a profiled process before the model is loaded): its verdict
	// is NotApplicable rather than an unexplained difference.
	MayBeEmpty bool
}

// Defaults of CompareOptions.
const (
	DefaultRelTolerance      = 0.03
	DefaultMinToleranceBytes = 128 << 10
	// AttributedRelTolerance and AttributedMinToleranceBytes are the
	// defaults for a measurement attributed to the tensor allocator: only
	// the script's own stray tensors are then counted besides the model's.
	AttributedRelTolerance      = 0.01
	AttributedMinToleranceBytes = 32 << 10
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
	widened  int64  // the model with its float16/bfloat16 tensors at the baseline dtype
	optim    int64  // stored bytes of optimizer state

	// The allocations each figure is made of, one per storage or tensor:
	// what the sampling variance and the allocator's size classes depend on.
	storedSizes, decodedSizes, largestSizes, layerSizes, widenedSizes, optimSizes []int64
}

func figures(res *Result, widen bool) modelFigures {
	f := modelFigures{stored: res.Total.StoredBytes, baseline: res.Total.BaselineBytes, dtype: res.Baseline}
	perModule, perLayer := map[string][]int64{}, map[string][]int64{}
	var modules, layers []string
	for i := range res.Rows {
		r := &res.Rows[i]
		if !r.Role.InModel() {
			if r.StoredBytes > 0 {
				f.optim += r.StoredBytes
				f.optimSizes = append(f.optimSizes, r.StoredBytes)
			}
			continue
		}
		if r.StoredBytes > 0 {
			f.storedSizes = append(f.storedSizes, r.StoredBytes)
			w := r.StoredBytes
			if (r.DType == "float16" || r.DType == "bfloat16") && r.DType != res.Baseline && !r.Tied && r.BaselineBytes > r.StoredBytes {
				w = r.BaselineBytes
			}
			f.widened += w
			f.widenedSizes = append(f.widenedSizes, w)
		}
		if r.Role == EncodedLinear {
			f.unshown += r.StoredBytes
		}
		if r.BaselineBytes == 0 || !Decoded(r, res.Baseline, widen) {
			continue
		}
		f.decoded += r.BaselineBytes
		f.decodedSizes = append(f.decodedSizes, r.BaselineBytes)
		if _, ok := perModule[r.Module]; !ok {
			modules = append(modules, r.Module)
		}
		perModule[r.Module] = append(perModule[r.Module], r.BaselineBytes)
		l := DecodeLayer(r)
		if _, ok := perLayer[l]; !ok {
			layers = append(layers, l)
		}
		perLayer[l] = append(perLayer[l], r.BaselineBytes)
	}
	for _, m := range modules {
		if n := sum(perModule[m]); n > f.largest {
			f.largest, f.largestM, f.largestSizes = n, m, perModule[m]
		}
	}
	for _, l := range layers {
		if n := sum(perLayer[l]); n > f.layer {
			f.layer, f.layerL = n, l
			// A streaming runtime decodes a layer into one buffer.
			f.layerSizes = []int64{n}
		}
	}
	return f
}

func sum(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}

// maxPlausibleBytes bounds the figures of a heap measurement: no machine
// holds an exbibyte, and sums of figures below it cannot overflow.
const maxPlausibleBytes = 1 << 60

// explanation is one account of what the heap holds.
type explanation struct {
	verdict Verdict
	subject string
	bytes   int64 // the accounting's figure
	slots   int64 // the same in the allocator's size classes: what the profile records
	// variance is the sampling variance of the profile's estimate were
	// this the truth.
	variance float64
	atRest   int64   // the stored weights in it
	what     string  // what it says the heap holds
	tol      int64   // the tolerance it allows
	sizes    []int64 // its allocations in the allocator's size classes
}

// stats is how one measurement is held against the explanations.
type stats struct {
	m    HeapMeasurement
	opts CompareOptions
	slot func(int64) int64
}

func (st *stats) explain(v Verdict, subject, what string, atRest int64, sizes ...[]int64) explanation {
	e := explanation{verdict: v, subject: subject, what: what, atRest: atRest}
	for _, group := range sizes {
		for _, n := range group {
			e.bytes += n
			s := st.slot(n)
			e.slots += s
			e.sizes = append(e.sizes, s)
			e.variance += sampleVariance(s, st.m.SampleRate)
		}
	}
	e.tol = st.tolerance(e.slots, e.variance, st.m.SampleRate)
	return e
}

// sampleVariance is the variance of the un-sampled estimate of one
// allocation of n bytes at a mean sampling interval of rate bytes. Go,
// tcmalloc and jemalloc sample as a Poisson process over the bytes
// allocated: the allocation is sampled with probability q = 1-exp(-n/rate)
// and then counts n/q. The estimate is unbiased, with variance
// n²(1-q)/q = n²/(exp(n/rate)-1): nearly n·rate for a small allocation,
// nearly 0 for one far above the rate.
func sampleVariance(n, rate int64) float64 {
	if rate <= 1 || n <= 0 {
		return 0
	}
	x := float64(n) / float64(rate)
	if x > 700 {
		return 0
	}
	return float64(n) * float64(n) / math.Expm1(x)
}

// tolerance is what a figure of expected bytes made of allocations whose
// sampling variance sums to variance may differ by: SamplingSigmas standard
// deviations of the sampling estimate (the larger of the explanation's own
// and the profile's, so that neither an unlikely measurement nor stray
// allocations narrow it), plus RelTolerance of the figure (at least
// MinToleranceBytes) for the process's own allocations. What a truncated
// profile leaves unlisted is one-sided, and is added by fits and within.
func (st *stats) tolerance(expected int64, variance float64, rate int64) int64 {
	sys := max(int64(math.Ceil(st.opts.RelTolerance*float64(Abs(expected)))), st.opts.MinToleranceBytes)
	measured := float64(st.m.SigmaBytes) * float64(st.m.SigmaBytes)
	if st.m.SampleRate > 1 {
		measured *= float64(rate) / float64(st.m.SampleRate) // the profile's variance at another rate
	} else if rate > 1 {
		measured = 0
	}
	sigma := math.Sqrt(max(variance, measured))
	return sys + int64(math.Ceil(SamplingSigmas*sigma))
}

// sided is the tolerance a comparison reports: tol plus what truncated
// dumps may hide on the side of the measurement the expected figure lies,
// so that |measured - expected| <= it is exactly within.
func (st *stats) sided(expected, tol int64) int64 {
	if expected >= st.m.InUseBytes {
		return tol + st.m.UnlistedBytes
	}
	return tol + st.m.UnlistedBaseBytes
}

func (st *stats) fits(e explanation) bool { return st.within(e.slots, e.tol) }

// within reports whether a figure of expected bytes with tolerance tol can
// be what the measurement saw: the truth lies between InUseBytes less what
// the base profile left unlisted and InUseBytes plus what the profile left
// unlisted, each side widened by tol.
func (st *stats) within(expected, tol int64) bool {
	d := st.m.InUseBytes - expected
	return d <= tol+st.m.UnlistedBaseBytes && -d <= tol+st.m.UnlistedBytes
}

// Compare holds a heap measurement against the accounting of res and against
// the user's claims.
//
// The measurement is held against every explanation the accounting gives:
// the stored weights (consistent); the stored weights plus decoded copies of
// every weight a runtime decodes (Decoded), of the largest module's, or of
// the largest layer's (runtime-holds-decoded-copies); the stored weights
// twice (runtime-holds-second-copy: a state dict kept alive beside the
// model); the model with its float16/bfloat16 tensors at the baseline dtype
// (runtime-holds-widened-weights); the stored weights plus the checkpoint's
// optimizer state (runtime-holds-optimizer-state); and, with
// opts.MayBeEmpty, nothing (not-applicable). An explanation fits when the
// measurement lies within its tolerance of it. Exactly one fitting gives its
// verdict; more than one is inconclusive, and the message names the
// sampling rate that would tell them apart; none is unexplained.
//
// Each explanation's figure is taken in the allocator's size classes
// (m.Slot) and its tolerance is SamplingSigmas standard deviations of the
// sampling estimate were it the truth (see sampleVariance; the profile's
// own estimate when that is larger), plus opts.RelTolerance of the figure
// (at least opts.MinToleranceBytes), plus any bytes a truncated profile
// leaves unlisted. Each claim is then held against the same explanations
// and the measurement (consistent, claim-disagrees or inconclusive); a
// claim's tolerance adds the precision it was given to. A measurement
// beyond any real heap (more than 2^60 bytes) is unexplained outright.
func Compare(res *Result, m HeapMeasurement, claims []Claim, opts CompareOptions) *Crosscheck {
	restricted := m.Attributed != "" || m.Focus != ""
	if opts.RelTolerance <= 0 {
		opts.RelTolerance = DefaultRelTolerance
		if restricted {
			opts.RelTolerance = AttributedRelTolerance
		}
	}
	if opts.MinToleranceBytes <= 0 {
		opts.MinToleranceBytes = DefaultMinToleranceBytes
		if restricted {
			opts.MinToleranceBytes = AttributedMinToleranceBytes
		}
	}
	f := figures(res, opts.Widen)
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
	st := &stats{m: m, opts: opts, slot: m.Slot}
	if st.slot == nil {
		st.slot = func(n int64) int64 { return n }
	}
	measured := m.InUseBytes
	how := measurementNote(m)
	all := st.explanations(f)

	var fit []explanation
	for _, e := range all {
		if st.fits(e) {
			fit = append(fit, e)
		}
	}
	stored := all[0] // explanations() puts the stored weights first
	var heap Comparison
	switch len(fit) {
	case 1:
		e := fit[0]
		heap = Comparison{Subject: e.subject, MeasuredBytes: measured, ExpectedBytes: e.slots, ToleranceBytes: st.sided(e.slots, e.tol), Verdict: e.verdict}
		heap.Message = e.what + inSlots(e) + "; " + how
	case 0:
		heap = Comparison{Subject: stored.subject, MeasuredBytes: measured, ExpectedBytes: stored.slots, ToleranceBytes: st.sided(stored.slots, stored.tol), Verdict: Unexplained}
		if measured < f.stored {
			heap.Message = fmt.Sprintf("%s less in use than the file stores: the profile may have started after the weights were allocated, "+
				"the runtime may map the file instead of allocating, or --focus drops the weights' allocations; %s", ByteSize(f.stored-measured), how)
			cc.Findings = append(cc.Findings, Finding{Kind: HeapProfileLate, Severity: Warning, Bytes: f.stored - measured,
				Message: fmt.Sprintf("%s is in use where the file stores %s: start the profiler before the weights are loaded (and pass a dump taken before loading as --heap-base)",
					ByteSize(measured), ByteSize(f.stored))})
		} else {
			heap.Message = fmt.Sprintf("%s more in use than the stored weights, and none of the known causes (decoded copies, %s; a second copy; widened or optimizer state) fits",
				ByteSize(measured-f.stored), ByteSize(f.decoded))
			if m.Base == "" && m.Attributed == "" && m.Focus == "" {
				heap.Message += ": without --heap-base the profile counts everything the process holds, interpreter and libraries included"
				cc.Findings = append(cc.Findings, Finding{Kind: HeapProfileNoBase, Severity: Warning, Bytes: measured - f.stored,
					Message: "no base profile: pass a dump taken before the weights were loaded (e.g. right after import torch) as --heap-base"})
			}
			heap.Message += "; " + how
		}
	default:
		heap = Comparison{Subject: stored.subject, MeasuredBytes: measured, ExpectedBytes: stored.slots, ToleranceBytes: st.sided(stored.slots, stored.tol), Verdict: Inconclusive}
		heap.Message = fmt.Sprintf("the measurement fits %s; %s", fitList(fit), how) + "; " + st.decider(fit)
	}
	cc.Comparisons = append(cc.Comparisons, heap)

	for _, c := range claims {
		cc.Comparisons = append(cc.Comparisons, st.compareClaim(c, fit, f))
	}

	if over := HeapBudget("heap in use", measured, f.stored, opts.MaxHeapOverStored); over != nil {
		cc.OverBudget = over.Message
		cc.Findings = append(cc.Findings, *over)
	}
	return cc
}

// explanations lists what the heap may hold, the stored weights first.
func (st *stats) explanations(f modelFigures) []explanation {
	out := []explanation{st.explain(Consistent, "heap in use vs stored weights",
		fmt.Sprintf("the heap holds the stored weights, %s, and no decoded copies", ByteSize(f.stored)), f.stored, f.storedSizes)}
	if f.decoded > 0 {
		what := fmt.Sprintf("the runtime keeps a decoded %s copy of every encoded weight: %s stored + %s decoded", f.dtype, ByteSize(f.stored), ByteSize(f.decoded))
		if f.stored+f.decoded > f.baseline {
			what += fmt.Sprintf(", more than the %s model itself, %s", f.dtype, ByteSize(f.baseline))
		}
		out = append(out, st.explain(HoldsDecodedCopies, "heap in use vs stored + decoded "+f.dtype, what, f.stored, f.storedSizes, f.decodedSizes))
	}
	if f.largest > 0 && f.largest < f.decoded {
		out = append(out, st.explain(HoldsDecodedCopies, "heap in use vs stored + one decoded layer",
			fmt.Sprintf("the runtime holds one decoded %s layer at a time (the largest, %s, is %s): a streaming decode's working buffer", f.dtype, f.largestM, ByteSize(f.largest)),
			f.stored, f.storedSizes, f.largestSizes))
	}
	if f.layer > f.largest && f.layer < f.decoded {
		out = append(out, st.explain(HoldsDecodedCopies, "heap in use vs stored + the largest decoded layer",
			fmt.Sprintf("the runtime decodes a whole layer at a time into one buffer sized for the largest (%s, %s of %s): a streaming decode's working buffer, as qinsaudit decode --stream keeps",
				f.layerL, ByteSize(f.layer), f.dtype), f.stored, f.storedSizes, f.layerSizes))
	}
	if f.stored > 0 {
		out = append(out, st.explain(HoldsSecondCopy, "heap in use vs the stored weights twice",
			fmt.Sprintf("the heap holds the stored weights twice, 2 x %s: a second copy, such as the loaded state dict kept alive beside the model (del it after load_state_dict)", ByteSize(f.stored)),
			f.stored, f.storedSizes, f.storedSizes))
	}
	if f.widened > f.stored {
		out = append(out, st.explain(HoldsWidened, "heap in use vs the model widened to "+f.dtype,
			fmt.Sprintf("the runtime holds the float16/bfloat16 tensors widened to %s: %s where the file stores %s (widened at load, e.g. model.float() or an fp32 model loading the weights)",
				f.dtype, ByteSize(f.widened), ByteSize(f.stored)), f.stored, f.widenedSizes))
	}
	if f.optim > 0 {
		out = append(out, st.explain(HoldsOptimizerState, "heap in use vs stored weights + optimizer state",
			fmt.Sprintf("the heap holds the stored weights and the checkpoint's optimizer state, %s + %s: drop the optimizer state after loading if only inference runs",
				ByteSize(f.stored), ByteSize(f.optim)), f.stored, f.storedSizes, f.optimSizes))
	}
	if st.opts.MayBeEmpty {
		out = append(out, st.explain(NotApplicable, "heap in use vs no weights loaded",
			"no weights are in use at this point: nothing of the model to compare", 0))
	}
	// Drop an explanation with the verdict and figure of an earlier one (the
	// largest module is the largest layer). Two causes with the same figure
	// both stay: no profile tells them apart, and the verdict says so.
	var uniq []explanation
	for _, e := range out {
		dup := false
		for _, u := range uniq {
			dup = dup || u.slots == e.slots && u.verdict == e.verdict
		}
		if !dup {
			uniq = append(uniq, e)
		}
	}
	return uniq
}

// inSlots says how an explanation's figure grew in the allocator's size
// classes, "" when it did not.
func inSlots(e explanation) string {
	if e.slots == e.bytes {
		return ""
	}
	return fmt.Sprintf(" (%s in the allocator's size classes)", ByteCount(e.slots))
}

func fitList(fit []explanation) string {
	var parts []string
	for _, e := range fit {
		parts = append(parts, fmt.Sprintf("%s (%s, %s ± %s)", strings.TrimPrefix(e.subject, "heap in use vs "), e.verdict, ByteSize(e.slots), ByteSize(e.tol)))
	}
	return strings.Join(parts, " and ")
}

// decider says which sampling interval would tell the fitting explanations
// apart: the largest power of two at which every two of them lie further
// apart than their tolerances.
func (st *stats) decider(fit []explanation) string {
	apart := func(rate int64) bool {
		for i := range fit {
			for j := i + 1; j < len(fit); j++ {
				a, b := fit[i], fit[j]
				// Both fit some measurement when their windows overlap.
				if Abs(a.slots-b.slots) <= st.retol(a, rate)+st.retol(b, rate)+st.m.UnlistedBytes+st.m.UnlistedBaseBytes {
					return false
				}
			}
		}
		return true
	}
	for i := range fit {
		for j := i + 1; j < len(fit); j++ {
			if fit[i].slots == fit[j].slots {
				return fmt.Sprintf("%s and %s take the same bytes, %s: no profile tells them apart by size",
					fit[i].verdict, fit[j].verdict, ByteCount(fit[i].slots))
			}
		}
	}
	if !apart(1) {
		return "they lie closer together than the allocator rounding and stray allocations allowed for, so no profile tells them apart: compare a smaller phase or a larger model"
	}
	rate := int64(1)
	for lg := 1; lg < 62 && int64(1)<<lg < st.m.SampleRate; lg++ {
		if !apart(int64(1) << lg) {
			break
		}
		rate = int64(1) << lg
	}
	if rate == 1 {
		return "only an exact profile tells them apart: profile every allocation (qinsaudit profile's default; jemalloc lg_prof_sample:0)"
	}
	lg := 0
	for int64(1)<<(lg+1) <= rate {
		lg++
	}
	return fmt.Sprintf("a sampling interval of %s or less tells them apart (qinsaudit profile --sample-bytes %d; jemalloc lg_prof_sample:%d; tcmalloc TCMALLOC_SAMPLE_PARAMETER=%d)",
		ByteSize(rate), rate, lg, rate)
}

// retol is an explanation's tolerance at another sampling rate, were it
// the truth: its own allocations' variance computed anew at that rate (the
// profile's own estimate of its variance comes from a few samples and says
// nothing of another rate; stray allocations are the relative tolerance's
// part).
func (st *stats) retol(e explanation, rate int64) int64 {
	var variance float64
	for _, n := range e.sizes {
		variance += sampleVariance(n, rate)
	}
	sys := max(int64(math.Ceil(st.opts.RelTolerance*float64(Abs(e.slots)))), st.opts.MinToleranceBytes)
	return sys + int64(math.Ceil(SamplingSigmas*math.Sqrt(variance)))
}

// plausible reports whether a measurement's figures are ones a heap can
// have.
func plausible(m HeapMeasurement) bool {
	return m.InUseBytes >= -maxPlausibleBytes && m.InUseBytes <= maxPlausibleBytes &&
		m.SigmaBytes >= 0 && m.SigmaBytes <= maxPlausibleBytes && m.UnlistedBytes >= 0 && m.UnlistedBytes <= maxPlausibleBytes &&
		m.UnlistedBaseBytes >= 0 && m.UnlistedBaseBytes <= maxPlausibleBytes
}

// HeapBudget holds inUse bytes against maxOver times the stored bytes
// (CompareOptions.MaxHeapOverStored, decode's and check's
// --max-heap-over-stored). It returns a HeapOverBudget finding saying by
// how much what ("heap in use") exceeds the budget, or nil when it does
// not, when no budget is set (maxOver 0) or when nothing is stored.
func HeapBudget(what string, inUse, stored int64, maxOver float64) *Finding {
	r, over := OverBudget(inUse, stored, maxOver)
	if !over {
		return nil
	}
	msg := fmt.Sprintf("%s is %.2fx the stored weights (%s of %s), over the budget of %gx", what, r, ByteSize(inUse), ByteSize(stored), maxOver)
	return &Finding{Kind: HeapOverBudget, Severity: Error, Tensors: []string{}, Bytes: inUse - int64(maxOver*float64(stored)), Message: msg}
}

// OverBudget is the one definition of the heap budget: the heap in use
// over the stored bytes, and whether that ratio exceeds maxOver. over is
// false when no budget is set (maxOver 0) or when nothing is stored
// (stored 0, ratio 0). HeapBudget and the gate's max_heap_over_stored
// check judge by it.
func OverBudget(inUse, stored int64, maxOver float64) (ratio float64, over bool) {
	if stored <= 0 {
		return 0, false
	}
	ratio = float64(inUse) / float64(stored)
	return ratio, maxOver > 0 && ratio > maxOver
}

// compareClaim holds one claim against the measurement. fit are the
// explanations the measurement fits. When exactly one fits, the process
// holds its figure (its stored weights at rest, its whole figure with the
// copies): the claim is consistent when it is either, and disagrees by the
// exact difference otherwise. When several fit, a claim that matches some
// but not all is inconclusive. When none fits, or the claim matches none,
// the claim is held against the measurement itself.
func (st *stats) compareClaim(c Claim, fit []explanation, f modelFigures) Comparison {
	measured := st.m.InUseBytes
	// The claim as an explanation of its own: its allocations are unknown,
	// so its sampling variance is bounded by claim x rate (n²/expm1(n/R) <= n·R
	// for every allocation n).
	variance := 0.0
	if st.m.SampleRate > 1 {
		variance = float64(Abs(c.Bytes)) * float64(st.m.SampleRate)
	}
	t := st.tolerance(c.Bytes, variance, st.m.SampleRate) + c.PrecisionBytes
	x := Comparison{Subject: "claim " + c.Name + "=" + c.Text, MeasuredBytes: measured, ExpectedBytes: c.Bytes, ToleranceBytes: st.sided(c.Bytes, t)}
	exactly := func(a, b int64) bool { // the claim vs an exact figure of the accounting
		return Abs(a-b) <= c.PrecisionBytes+int64(math.Ceil(st.opts.RelTolerance*float64(Abs(b))))
	}
	matches := func(e explanation) bool { return exactly(c.Bytes, e.atRest) || exactly(c.Bytes, e.bytes) }
	claimed := c.Text + " = " + ByteCount(c.Bytes)
	if strings.Trim(c.Text, "0123456789,") == "" {
		claimed = ByteCount(c.Bytes)
	}
	switch {
	case len(fit) == 1 && fit[0].verdict == NotApplicable:
		x.Verdict = NotApplicable
		x.Message = "no weights are in use at this point: nothing to hold the claim against"
		return x
	case len(fit) == 1 && matches(fit[0]):
		e := fit[0]
		x.Verdict, x.ExpectedBytes, x.MeasuredBytes = Consistent, c.Bytes, measured
		if exactly(c.Bytes, e.atRest) && e.atRest != e.bytes {
			x.Message = fmt.Sprintf("the claim matches the weights at rest, %s; the runtime holds %s on top", ByteCount(e.atRest), ByteSize(e.bytes-e.atRest))
		} else {
			x.Message = fmt.Sprintf("the claim matches what the process holds, %s", ByteCount(e.bytes))
		}
		return x
	case len(fit) == 1:
		e := fit[0]
		x.Verdict = ClaimDisagrees
		x.Message = fmt.Sprintf("claimed %s, but the process holds the stored weights, %s (measured %s): %s, %s the claim",
			claimed, ByteCount(e.atRest), both(measured), signedCount(e.atRest-c.Bytes), times(e.atRest, c.Bytes))
		if e.bytes != e.atRest {
			on := "what the runtime holds on top"
			if e.verdict == HoldsDecodedCopies {
				on = "their decoded copies"
			}
			x.Message += fmt.Sprintf("; %s with %s", ByteCount(e.bytes), on)
		}
		x.Message += because(c, e.atRest, f, exactly)
		return x
	case len(fit) > 1:
		var some, none []string
		for _, e := range fit {
			if matches(e) {
				some = append(some, e.verdict.String())
			} else {
				none = append(none, e.verdict.String())
			}
		}
		if len(none) == 0 {
			x.Verdict = Consistent
			x.Message = "the claim matches every explanation the measurement fits"
			return x
		}
		if len(some) > 0 {
			x.Verdict = Inconclusive
			x.Message = fmt.Sprintf("the claim matches %s but not %s, and the profile cannot tell them apart; %s",
				strings.Join(some, ", "), strings.Join(none, ", "), st.decider(fit))
			return x
		}
	}
	if st.within(c.Bytes, t) {
		if len(fit) > 1 {
			x.Verdict = Inconclusive
			x.Message = fmt.Sprintf("the claim is within the measurement's uncertainty, but matches none of %s; %s", fitList(fit), st.decider(fit))
			return x
		}
		x.Verdict = Consistent
		x.Message = fmt.Sprintf("the claim matches the %s measured", both(measured))
		return x
	}
	x.Verdict = ClaimDisagrees
	x.Message = fmt.Sprintf("claimed %s, but the process holds %s of weights (± %s)", claimed, both(measured), ByteSize(t))
	if c.Bytes > 0 {
		x.Message += fmt.Sprintf(": %s the claim", times(measured, c.Bytes))
	}
	x.Message += because(c, measured, f, exactly)
	return x
}

// because says why a claim may be wrong, when it can tell: another unit, a
// sum over parameters(), the baseline size, the file's size.
func because(c Claim, held int64, f modelFigures, exactly func(a, b int64) bool) string {
	switch {
	case c.OtherUnitBytes > 0 && exactly(c.OtherUnitBytes, held):
		return "; read with the other unit it would match: MB/GB are powers of 10, MiB/GiB powers of 2"
	case f.unshown > 0 && exactly(c.Bytes, f.stored-f.unshown):
		return fmt.Sprintf("; it is the model without its encoded linears, %s: summing model.parameters() skips registered buffers, where the encoded weights live", ByteSize(f.stored-f.unshown))
	case exactly(c.Bytes, f.baseline):
		return fmt.Sprintf("; it is the %s size of the whole model: the encoding does not show in it", f.dtype)
	case exactly(c.Bytes, f.stored) && !exactly(held, f.stored):
		return "; it is what the file stores, not what the process holds"
	}
	return ""
}

// signedCount is ByteCount with the sign always shown.
func signedCount(n int64) string {
	if n > 0 {
		return "+" + ByteCount(n)
	}
	return ByteCount(n)
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
	if m.Attributed != "" {
		s += fmt.Sprintf(", tensors allocated through %s (%s outside it not compared)", m.Attributed, ByteSize(m.OtherBytes))
	}
	switch {
	case m.SampleRate <= 1:
		s += ", every allocation recorded (exact)"
	default:
		s += fmt.Sprintf(", sampled every %s on average: ±%s (1σ)", ByteSize(m.SampleRate), ByteSize(m.SigmaBytes))
	}
	if m.UnlistedBytes > 0 {
		s += fmt.Sprintf("; the truncated profile lists no stack for %s, so up to that much more may be in use", ByteSize(m.UnlistedBytes))
	}
	if m.UnlistedBaseBytes > 0 {
		s += fmt.Sprintf("; the truncated base profile lists no stack for %s, so up to that much less may be in use", ByteSize(m.UnlistedBaseBytes))
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
