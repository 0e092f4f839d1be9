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
		{"stream", Stream, nil, []accounting.Verdict{"consistent", "consistent", "consistent", "consistent"}},
		{"cache holds copies", Cache, nil, []accounting.Verdict{"consistent", "consistent", "runtime-holds-decoded-copies", "consistent"}},
		{"a stray buffer at a site", Stream, func(name string, m map[string]int64) { m["encoded_linear"] += 32 },
			[]accounting.Verdict{"unexplained-difference", "consistent", "unexplained-difference", "consistent"}},
		{"a storage missing", Stream, func(name string, m map[string]int64) { m["encoded_linear"] -= 600 },
			[]accounting.Verdict{"unexplained-difference", "consistent", "unexplained-difference", "consistent"}},
		{"decoded kept past the end", Stream, func(name string, m map[string]int64) {
			if name == "end" {
				m[KeyDecoded] = 400
			}
		}, []accounting.Verdict{"consistent", "consistent", "consistent", "unexplained-difference"}},
		{"a cache twice too big", Cache, func(name string, m map[string]int64) { m[KeyDecoded] *= 2 },
			[]accounting.Verdict{"consistent", "unexplained-difference", "unexplained-difference", "consistent"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			phases, cmps := Reconcile(res, passRecords(c.policy, c.change))
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
	_, cmps := Reconcile(res, passRecords(Cache, nil))
	if c := cmps[2]; c.MeasuredBytes != 1816 || c.ExpectedBytes != 1400 || c.ToleranceBytes != 16 ||
		!strings.Contains(c.Message, "its peak, 1,816 B (1.82 kB), is stored + every layer decoded to fp32, 416 B over") {
		t.Errorf("cache peak %+v", c)
	}
	if _, cmps := Reconcile(res, &Stats{Phases: []PhaseRecord{{Name: "after-load"}}}); cmps != nil {
		t.Errorf("comparisons without measurements: %+v", cmps)
	}
}
