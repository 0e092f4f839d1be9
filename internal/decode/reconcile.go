package decode

import (
	"fmt"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// Reconciliation is what Reconcile finds.
type Reconciliation struct {
	Phases      []accounting.Phase
	Comparisons []accounting.Comparison
	// Findings are a NotDecoded finding for each weight the pass could not
	// decode and, over the budget, a HeapOverBudget finding.
	Findings []accounting.Finding
	// OverBudget says how the peak exceeds the budget; "" when it does not
	// or no budget is set.
	OverBudget string
}

// Failures lists the comparisons that fail and the budget exceeded: what
// fails a decode command.
func (r *Reconciliation) Failures() []string {
	var out []string
	for _, c := range r.Comparisons {
		if c.Verdict.Failing() {
			out = append(out, fmt.Sprintf("%s: %s", c.Subject, c.Message))
		}
	}
	if r.OverBudget != "" {
		out = append(out, r.OverBudget+" (--max-heap-over-stored)")
	}
	return out
}

// Reconcile sets the heap measured at each phase of a pass against the
// accounting res, and returns the phases and the comparisons:
//
//   - stored tensors in use after load vs the accounting's stored bytes;
//   - decoded weights in use after decode vs their float32 baseline (every
//     decoded weight under Cache, the largest layer under Stream);
//   - the peak (stored plus decoded) vs stored plus the largest decoded
//     layer, what a streaming runtime needs; a peak that matches stored
//     plus every decoded weight is explained: the runtime holds decoded
//     copies;
//   - decoded weights and activations still in use at the end vs none.
//
// Measured bytes are allocator slots: each buffer rounded up to its Go size
// class (or to whole 8 KiB pages above 32 KiB, and to at least 16 bytes).
// The tolerance of each comparison is exactly that rounding for the buffers
// concerned, as the pass computed it, so a consistent verdict means equal
// to the byte. Phases without measurements give no comparisons.
//
// With maxOver > 0, the model's weights in use at their peak (stored and
// decoded, optimizer state left out) are held against maxOver times the
// model's stored bytes (res.Total), as accounting.Compare holds a heap
// profile. Every weight the pass did not decode is a NotDecoded finding.
func Reconcile(res *accounting.Result, st *Stats, maxOver float64) *Reconciliation {
	rec := &Reconciliation{Findings: notDecoded(st.Skipped)}
	var storedKeys, modelKeys []string
	for _, r := range accounting.Roles() {
		storedKeys = append(storedKeys, r.String())
		if r.InModel() {
			modelKeys = append(modelKeys, r.String())
		}
	}
	modelKeys = append(modelKeys, KeyDecoded)
	// The pass loads every storage, optimizer state included.
	var stored int64
	for _, r := range res.Rows {
		stored += r.StoredBytes
	}
	sum := func(m map[string]int64, keys ...string) int64 {
		var n int64
		for _, k := range keys {
			n += m[k]
		}
		return n
	}
	var records []PhaseRecord
	for _, r := range st.Phases {
		if r.Measured == nil {
			continue
		}
		by := make(map[string]int64, len(siteKeys))
		for _, k := range siteKeys {
			by[k] = r.Measured[k]
		}
		rec.Phases = append(rec.Phases, accounting.Phase{Name: r.Name, InUseBytes: sum(by, siteKeys...),
			ExpectedBytes: stored + r.ExpectedDecoded + r.Live[KeyActivations], ByRole: by})
		records = append(records, r)
	}
	if len(records) == 0 {
		return rec
	}
	rounding := func(r PhaseRecord, keys ...string) int64 { return sum(r.Slots, keys...) - sum(r.Live, keys...) }

	// Stored tensors after load.
	load := records[0]
	rec.Comparisons = append(rec.Comparisons, within(fmt.Sprintf("stored tensors in use vs stored bytes (%s)", load.Name),
		sum(load.Measured, storedKeys...), stored, rounding(load, storedKeys...),
		"the loaded storages take what the files store"))

	// Decoded weights, and the peak.
	after := records[len(records)-1]
	peak, modelPeak := records[0], records[0]
	weights := func(r PhaseRecord) int64 { return sum(r.Measured, storedKeys...) + r.Measured[KeyDecoded] }
	for _, r := range records {
		if r.Name == PhaseAfterDecode {
			after = r
		}
		if weights(r) > weights(peak) {
			peak = r
		}
		if sum(r.Measured, modelKeys...) > sum(modelPeak.Measured, modelKeys...) {
			modelPeak = r
		}
	}
	subject := "decoded weights vs fp32 baseline"
	if st.Policy == Stream && st.LargestLayer.Name != "" {
		subject = "decode buffer vs largest layer at fp32 (" + st.LargestLayer.Name + ")"
	}
	if len(st.Layers) == 0 {
		// Nothing was decoded: there is nothing to compare, and saying
		// "consistent" would claim a measurement that was not made.
		why := "no weight of the model is encoded"
		if !st.Widen {
			why += " (float16 and bfloat16 weights are held as stored; --widen decodes them to float32)"
		}
		rec.Comparisons = append(rec.Comparisons, accounting.Comparison{Subject: fmt.Sprintf("%s (%s)", subject, after.Name),
			MeasuredBytes: after.Measured[KeyDecoded], Verdict: accounting.NotApplicable, Message: "nothing decoded: " + why})
	} else {
		rec.Comparisons = append(rec.Comparisons, within(fmt.Sprintf("%s (%s)", subject, after.Name),
			after.Measured[KeyDecoded], after.ExpectedDecoded, rounding(after, KeyDecoded),
			"decoded weights take 4 bytes per parameter the accounting counts"))
	}

	// The peak says which policy it describes: what is decoded, and how
	// much of it is held at once.
	policy := "stream"
	if st.Policy == Cache {
		policy = "cache"
	}
	if st.Widen {
		policy += ", fp16/bf16 widened"
	} else {
		policy += ", fp16/bf16 as stored"
	}
	largest := stored + st.LargestLayer.ExpectedBytes
	tol := rounding(peak, append(storedKeys, KeyDecoded)...)
	c := within(fmt.Sprintf("peak vs stored + largest decoded layer (%s; %s)", peak.Name, policy),
		weights(peak), largest, tol, "the peak is what a streaming runtime needs")
	if c.Verdict != accounting.Consistent && st.Policy == Cache {
		var all int64
		for _, l := range st.Layers {
			all += l.ExpectedBytes
		}
		if d := weights(peak) - (stored + all); d >= -tol && d <= tol {
			c.Verdict = accounting.HoldsDecodedCopies
			c.Message = fmt.Sprintf("the pass keeps every decoded weight (--cache): its peak, %s (%s), is stored + every layer decoded to fp32, %s over stored + the largest layer",
				size(weights(peak)), accounting.ByteSizeSI(weights(peak)), size(weights(peak)-largest))
		}
	}
	rec.Comparisons = append(rec.Comparisons, c)

	// Nothing decoded is left at the end.
	end := records[len(records)-1]
	if end.Name == PhaseEnd {
		rec.Comparisons = append(rec.Comparisons, within("decoded weights and activations in use at end vs none",
			end.Measured[KeyDecoded]+end.Measured[KeyActivations], 0, 0, "the pass released every decoded weight and activation"))
	}

	// The budget.
	if over := accounting.HeapBudget(fmt.Sprintf("the peak of the weights in use (%s)", modelPeak.Name),
		sum(modelPeak.Measured, modelKeys...), res.Total.StoredBytes, maxOver); over != nil {
		rec.OverBudget = over.Message
		rec.Findings = append(rec.Findings, *over)
	}
	return rec
}

// notDecoded makes a finding of each weight the pass did not decode.
func notDecoded(skipped []Skipped) []accounting.Finding {
	var out []accounting.Finding
	for _, s := range skipped {
		out = append(out, accounting.Finding{Kind: accounting.NotDecoded, Severity: accounting.Warning, Module: s.Module,
			Tensors: []string{s.Tensor}, Bytes: s.Bytes,
			Message: fmt.Sprintf("%s weight not decoded (%s): the decoded figures leave out its %s float32 copy", s.Scheme, s.Reason, size(s.Bytes))})
	}
	return out
}

// within compares measured with expected: consistent when they differ by at
// most tol bytes, unexplained otherwise.
func within(subject string, measured, expected, tol int64, ok string) accounting.Comparison {
	c := accounting.Comparison{Subject: subject, MeasuredBytes: measured, ExpectedBytes: expected, ToleranceBytes: tol}
	d := measured - expected
	if d >= -tol && d <= tol {
		c.Verdict, c.Message = accounting.Consistent, ok
		if d != 0 {
			c.Message += fmt.Sprintf(" (%s of allocator rounding)", signed(d))
		}
		return c
	}
	c.Verdict = accounting.Unexplained
	c.Message = fmt.Sprintf("differs by %s, beyond the %s of allocator rounding; no known cause explains it", signed(d), size(tol))
	return c
}

// size formats a byte count for a message: exact below 1 MiB, where
// allocator rounding lives, else as accounting.ByteSize.
func size(n int64) string {
	if n > -1<<20 && n < 1<<20 {
		return accounting.ByteCount(n)
	}
	return accounting.ByteSize(n)
}

// signed is size with the sign always shown: "+432 B", "-432 B".
func signed(n int64) string {
	if n > 0 {
		return "+" + size(n)
	}
	return size(n)
}
