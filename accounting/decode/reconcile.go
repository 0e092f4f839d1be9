package decode

import (
	"fmt"

	"github.com/dustin/go-humanize"

	"github.com/qinsaudit/qinsaudit/accounting"
)

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
func Reconcile(res *accounting.Result, st *Stats) ([]accounting.Phase, []accounting.Comparison) {
	storedKeys := []string{accounting.EncodedLinear.String(), accounting.Embedding.String(),
		accounting.Untouched.String(), accounting.OptimizerState.String()}
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
	var phases []accounting.Phase
	var records []PhaseRecord
	for _, r := range st.Phases {
		if r.Measured == nil {
			continue
		}
		by := make(map[string]int64, len(siteKeys))
		for _, k := range siteKeys {
			by[k] = r.Measured[k]
		}
		phases = append(phases, accounting.Phase{Name: r.Name, InUseBytes: sum(by, siteKeys...),
			ExpectedBytes: stored + r.ExpectedDecoded + r.Live[KeyActivations], ByRole: by})
		records = append(records, r)
	}
	if len(records) == 0 {
		return phases, nil
	}
	rounding := func(r PhaseRecord, keys ...string) int64 { return sum(r.Slots, keys...) - sum(r.Live, keys...) }
	var cmps []accounting.Comparison

	// Stored tensors after load.
	load := records[0]
	cmps = append(cmps, within(fmt.Sprintf("stored tensors in use vs stored bytes (%s)", load.Name),
		sum(load.Measured, storedKeys...), stored, rounding(load, storedKeys...),
		"the loaded storages take what the files store"))

	// Decoded weights, and the peak.
	after := records[len(records)-1]
	peak := records[0]
	weights := func(r PhaseRecord) int64 { return sum(r.Measured, storedKeys...) + r.Measured[KeyDecoded] }
	for _, r := range records {
		if r.Name == "after-decode" {
			after = r
		}
		if weights(r) > weights(peak) {
			peak = r
		}
	}
	subject := "decoded weights vs fp32 baseline"
	if st.Policy == Stream && st.LargestLayer.Name != "" {
		subject = "decode buffer vs largest layer at fp32 (" + st.LargestLayer.Name + ")"
	}
	cmps = append(cmps, within(fmt.Sprintf("%s (%s)", subject, after.Name),
		after.Measured[KeyDecoded], after.ExpectedDecoded, rounding(after, KeyDecoded),
		"decoded weights take 4 bytes per parameter the accounting counts"))

	largest := stored + st.LargestLayer.ExpectedBytes
	tol := rounding(peak, append(storedKeys, KeyDecoded)...)
	c := within(fmt.Sprintf("peak vs stored + largest decoded layer (%s)", peak.Name),
		weights(peak), largest, tol, "the peak is what a streaming runtime needs")
	if c.Verdict != accounting.Consistent && st.Policy == Cache {
		var all int64
		for _, l := range st.Layers {
			all += l.ExpectedBytes
		}
		if d := weights(peak) - (stored + all); d >= -tol && d <= tol {
			c.Verdict = accounting.HoldsDecodedCopies
			c.Message = fmt.Sprintf("the pass keeps every decoded weight (--cache): its peak, %s (%s), is stored + every layer decoded to fp32, %s over stored + the largest layer",
				size(weights(peak)), humanize.BytesN(uint64(weights(peak)), 3), size(weights(peak)-largest))
		}
	}
	cmps = append(cmps, c)

	// Nothing decoded is left at the end.
	end := records[len(records)-1]
	if end.Name == "end" {
		cmps = append(cmps, within("decoded weights and activations in use at end vs none",
			end.Measured[KeyDecoded]+end.Measured[KeyActivations], 0, 0, "the pass released every decoded weight and activation"))
	}
	return phases, cmps
}

// within compares measured with expected: consistent when they differ by at
// most tol bytes, unexplained otherwise.
func within(subject string, measured, expected, tol int64, ok string) accounting.Comparison {
	c := accounting.Comparison{Subject: subject, MeasuredBytes: measured, ExpectedBytes: expected, ToleranceBytes: tol}
	if d := measured - expected; d >= -tol && d <= tol {
		c.Verdict, c.Message = accounting.Consistent, ok
		if d != 0 {
			c.Message += fmt.Sprintf(" (+%s of allocator rounding)", size(abs(d)))
		}
		return c
	}
	d, sign := measured-expected, "+"
	if d < 0 {
		sign = "-"
	}
	c.Verdict = accounting.Unexplained
	c.Message = fmt.Sprintf("differs by %s%s, beyond the %s of allocator rounding; no known cause explains it",
		sign, size(abs(d)), size(tol))
	return c
}

// size formats a byte count for a message: exact below 1 MiB, where
// allocator rounding lives, else three significant digits in IEC units.
func size(n int64) string {
	if n < 1<<20 {
		return humanize.Comma(n) + " B"
	}
	return humanize.IBytesN(uint64(n), 3)
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
