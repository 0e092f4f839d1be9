package decode

import (
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// passRecords builds the phase records of a two-layer pass over 1,000
// stored bytes (16 of them rounding), each layer decoding to 400 bytes,
// with measured = slots unless changed.
func passRecords(policy Policy, change func(name string, measured map[string]int64)) *Stats {
	st := &Stats{Policy: policy, Layers: []Layer{{Name: "l0", ExpectedBytes: 400}, {Name: "l1", ExpectedBytes: 400}}}
	st.LargestLayer = st.Layers[0]
	rec := func(name string, decoded, expected int64) {
		live := map[string]int64{"encoded_linear": 1000, KeyDecoded: decoded}
		slots := map[string]int64{"encoded_linear": 1016, KeyDecoded: decoded}
		measured := map[string]int64{"encoded_linear": 1016, KeyDecoded: decoded}
		if change != nil {
			change(name, measured)
		}
		st.Phases = append(st.Phases, PhaseRecord{Name: name, Live: live, Slots: slots, Measured: measured, ExpectedDecoded: expected})
	}
	rec("after-load", 0, 0)
	if policy == Cache {
		rec("layer l0", 400, 400)
		rec("layer l1", 800, 800)
		rec("after-decode", 800, 800)
	} else {
		rec("layer l0", 400, 400)
		rec("layer l1", 400, 400)
		rec("after-decode", 400, 400)
	}
	rec("end", 0, 0)
	return st
}

func TestReconcile(t *testing.T) {
	res := &accounting.Result{Rows: []accounting.Row{{StoredBytes: 600}, {StoredBytes: 400}}}
	for _, c := range []struct {
		name   string
		policy Policy
		change func(string, map[string]int64)
		want   []accounting.Verdict
	}{
		{"stream", Stream, nil, []accounting.Verdict{accounting.Consistent, accounting.Consistent, accounting.Consistent, accounting.Consistent}},
		{"cache holds copies", Cache, nil, []accounting.Verdict{accounting.Consistent, accounting.Consistent, accounting.HoldsDecodedCopies, accounting.Consistent}},
		{"a stray buffer at a site", Stream, func(name string, m map[string]int64) { m["encoded_linear"] += 32 },
			[]accounting.Verdict{accounting.Unexplained, accounting.Consistent, accounting.Unexplained, accounting.Consistent}},
		{"a storage missing", Stream, func(name string, m map[string]int64) { m["encoded_linear"] -= 600 },
			[]accounting.Verdict{accounting.Unexplained, accounting.Consistent, accounting.Unexplained, accounting.Consistent}},
		{"decoded kept past the end", Stream, func(name string, m map[string]int64) {
			if name == "end" {
				m[KeyDecoded] = 400
			}
		}, []accounting.Verdict{accounting.Consistent, accounting.Consistent, accounting.Consistent, accounting.Unexplained}},
		{"a cache twice too big", Cache, func(name string, m map[string]int64) { m[KeyDecoded] *= 2 },
			[]accounting.Verdict{accounting.Consistent, accounting.Unexplained, accounting.Unexplained, accounting.Consistent}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := Reconcile(res, passRecords(c.policy, c.change), 0)
			phases, cmps := rec.Phases, rec.Comparisons
			if len(phases) != 5 || phases[0].ExpectedBytes != 1000 || phases[0].InUseBytes < 400 {
				t.Errorf("phases %+v", phases)
			}
			if len(cmps) != len(c.want) {
				t.Fatalf("%d comparisons: %+v", len(cmps), cmps)
			}
			for i, v := range c.want {
				if cmps[i].Verdict != v {
					t.Errorf("%s: %s (%s), want %s", cmps[i].Subject, cmps[i].Verdict, cmps[i].Message, v)
				}
			}
		})
	}
	cmps := Reconcile(res, passRecords(Cache, nil), 0).Comparisons
	if c := cmps[2]; c.MeasuredBytes != 1816 || c.ExpectedBytes != 1400 || c.ToleranceBytes != 16 ||
		!strings.Contains(c.Message, "its peak, 1,816 B (1.82 kB), is stored + every layer decoded to fp32, 416 B over") {
		t.Errorf("cache peak %+v", c)
	}
	if cmps := Reconcile(res, &Stats{Phases: []PhaseRecord{{Name: "after-load"}}}, 0).Comparisons; cmps != nil {
		t.Errorf("comparisons without measurements: %+v", cmps)
	}
}

// TestReconcileRoundingSign: a measurement under the expected bytes, within
// the rounding, says so with its sign.
func TestReconcileRoundingSign(t *testing.T) {
	res := &accounting.Result{Rows: []accounting.Row{{StoredBytes: 600}, {StoredBytes: 400}}}
	cmps := Reconcile(res, passRecords(Stream, func(name string, m map[string]int64) { m["encoded_linear"] -= 24 }), 0).Comparisons
	if c := cmps[0]; c.Verdict != accounting.Consistent || !strings.Contains(c.Message, "(-8 B of allocator rounding)") {
		t.Errorf("%s: %s", c.Verdict, c.Message)
	}
	cmps = Reconcile(res, passRecords(Stream, func(name string, m map[string]int64) { m["encoded_linear"] -= 600 }), 0).Comparisons
	if c := cmps[0]; c.Verdict != accounting.Unexplained || !strings.Contains(c.Message, "differs by -584 B, beyond the 16 B") {
		t.Errorf("%s: %s", c.Verdict, c.Message)
	}
}

// TestReconcileBudget: the peak of the model's weights is held against the
// model's stored bytes (optimizer state left out of both), and exceeding
// the budget is a finding the report carries.
func TestReconcileBudget(t *testing.T) {
	res := &accounting.Result{Rows: []accounting.Row{{StoredBytes: 600}, {StoredBytes: 400}, {StoredBytes: 5000, Class: accounting.Class{Role: accounting.OptimizerState}}},
		Total: accounting.Group{StoredBytes: 1000}}
	st := passRecords(Cache, func(name string, m map[string]int64) { m["optimizer_state"] = 5000 })
	if rec := Reconcile(res, st, 2); rec.OverBudget != "" || len(rec.Findings) != 0 {
		t.Errorf("1,816 B of weights under 2x 1,000 B stored: %q %v", rec.OverBudget, rec.Findings)
	}
	rec := Reconcile(res, st, 1.5)
	want := "the peak of the weights in use (layer l1) is 1.82x the stored weights (1.77 KiB of 1000 B), over the budget of 1.5x"
	if rec.OverBudget != want || len(rec.Findings) != 1 || rec.Findings[0].Kind != accounting.HeapOverBudget || rec.Findings[0].Bytes != 316 {
		t.Errorf("over budget: %q, findings %+v; want %q", rec.OverBudget, rec.Findings, want)
	}
	if f := rec.Failures(); len(f) != 1 || !strings.Contains(f[0], "--max-heap-over-stored") {
		t.Errorf("failures %q", f)
	}
}

func TestReconcileNotDecoded(t *testing.T) {
	st := &Stats{Skipped: []Skipped{{Module: "blk.0.attn_q", Tensor: "blk.0.attn_q.weight", Scheme: "Q4_K", Reason: "no decoder for this scheme", Bytes: 262144}}}
	rec := Reconcile(&accounting.Result{}, st, 0)
	if len(rec.Findings) != 1 {
		t.Fatalf("findings %+v", rec.Findings)
	}
	f := rec.Findings[0]
	if f.Kind != accounting.NotDecoded || f.Module != "blk.0.attn_q" || f.Bytes != 262144 || f.Tensors[0] != "blk.0.attn_q.weight" ||
		f.Message != "Q4_K weight not decoded (no decoder for this scheme): the decoded figures leave out its 262,144 B float32 copy" {
		t.Errorf("finding %+v", f)
	}
}

// TestReconcileNothingDecoded: a pass that decoded nothing (a float16 model
// held as stored) has no decoded figure to compare: not-applicable, never
// consistent.
func TestReconcileNothingDecoded(t *testing.T) {
	res := &accounting.Result{Rows: []accounting.Row{{StoredBytes: 1000}}}
	live := map[string]int64{"untouched": 1000}
	st := &Stats{Phases: []PhaseRecord{
		{Name: "after-load", Live: live, Slots: live, Measured: live},
		{Name: "after-decode", Live: live, Slots: live, Measured: live},
	}}
	rec := Reconcile(res, st, 0)
	c := rec.Comparisons[1]
	if c.Verdict != accounting.NotApplicable || !strings.Contains(c.Message, "--widen") {
		t.Errorf("%s: %s %q, want not-applicable naming --widen", c.Subject, c.Verdict, c.Message)
	}
	if p := rec.Comparisons[2]; !strings.Contains(p.Subject, "stream, fp16/bf16 as stored") || p.Verdict != accounting.Consistent {
		t.Errorf("peak %q: %s", p.Subject, p.Verdict)
	}
	if len(rec.Failures()) != 0 {
		t.Errorf("failures %v", rec.Failures())
	}
}
