package report

import (
	"cmp"
	"fmt"
	"math"

	"github.com/qinsaudit/qinsaudit/internal/hugepage"
	"github.com/qinsaudit/qinsaudit/internal/neutral"
)

// maxCount bounds every byte and element count a saved report may hold,
// alone or summed: far above any real model, far below where int64 sums
// overflow.
const maxCount = 1 << 62

// Validate checks that a report read from a file (a baseline, a side of a
// diff) is one qinsaudit could have written: no negative or out-of-range
// counts, and figures that agree with each other. Each group (role,
// module, layer, dtype, file) is the sum of its tensors, and the total
// the sum of the roles in the model. A report whose figures contradict
// each other would make a gate or a diff decide on numbers that mean
// nothing, so it is refused, naming the first contradiction.
func (rep *Report) Validate() error {
	v := &validator{}
	// Each check runs on the figures first; the message (its map of
	// figures, its "where") is built only for the first that fails, so a
	// valid report of 100,000 tensors costs no allocation per tensor.
	for i := range rep.Tensors {
		t := &rep.Tensors[i]
		if !inRange(t.Numel, t.Params, t.BaselineBytes, t.TheoreticalBytes, t.StoredBytes, t.DeadBytes) || t.DeadBytes > t.StoredBytes || negative(t.Shape) {
			where := fmt.Sprintf("tensors[%d] (%s)", i, quote(t.Name))
			v.counts(where, map[string]int64{"numel": t.Numel, "params": t.Params, "baseline_bytes": t.BaselineBytes,
				"theoretical_bytes": t.TheoreticalBytes, "stored_bytes": t.StoredBytes, "dead_bytes": t.DeadBytes})
			for _, d := range t.Shape {
				if d < 0 {
					v.fail("%s: shape dimension %d is negative", where, d)
				}
			}
			if t.DeadBytes > t.StoredBytes {
				v.fail("%s: dead_bytes %d exceed stored_bytes %d", where, t.DeadBytes, t.StoredBytes)
			}
		}
	}
	for i, f := range rep.Files {
		if inRange(f.SizeBytes, f.Tensors, f.StoredBytes) && f.OverheadBytes == f.SizeBytes-f.StoredBytes {
			continue
		}
		where := fmt.Sprintf("files[%d] (%s)", i, quote(f.Path))
		v.counts(where, map[string]int64{"size_bytes": f.SizeBytes, "tensors": f.Tensors, "stored_bytes": f.StoredBytes})
		if v.err == nil && f.OverheadBytes != f.SizeBytes-f.StoredBytes {
			v.fail("%s: overhead_bytes %d is not size_bytes %d - stored_bytes %d", where, f.OverheadBytes, f.SizeBytes, f.StoredBytes)
		}
	}
	groups := [][]Group{rep.Roles, rep.Modules, rep.Layers, rep.DTypes, {rep.Totals}}
	for k, gs := range groups {
		for i := range gs {
			g := &gs[i]
			if inRange(g.Tensors, g.Params, g.BaselineBytes, g.TheoreticalBytes, g.StoredBytes) && finite(g.Ratio) && finite(g.BitsPerWeight) {
				continue
			}
			where := fmt.Sprintf("%s[%d] (%s)", []string{"roles", "modules", "layers", "dtypes", "totals"}[k], i, quote(g.Key()))
			v.counts(where, map[string]int64{"tensors": g.Tensors, "params": g.Params, "baseline_bytes": g.BaselineBytes,
				"theoretical_bytes": g.TheoreticalBytes, "stored_bytes": g.StoredBytes})
			for name, x := range map[string]float64{"ratio": g.Ratio, "bits_per_weight": g.BitsPerWeight} {
				if !finite(x) {
					v.fail("%s: %s %v is not a finite non-negative number", where, name, x)
				}
			}
		}
	}
	for i, f := range rep.Findings {
		v.counts(fmt.Sprintf("findings[%d]", i), map[string]int64{"bytes": f.Bytes})
	}
	for i, p := range rep.Phases {
		m := map[string]int64{"in_use_bytes": p.InUseBytes, "expected_bytes": p.ExpectedBytes}
		for k, x := range p.ByRole {
			m["by_role "+quote(k)] = x
		}
		v.counts(fmt.Sprintf("phases[%d]", i), m)
	}
	for i, c := range rep.Comparisons {
		v.counts(fmt.Sprintf("comparisons[%d]", i), map[string]int64{"measured_bytes": c.MeasuredBytes,
			"expected_bytes": c.ExpectedBytes, "tolerance_bytes": c.ToleranceBytes})
	}
	if v.err != nil {
		return v.err
	}
	v.sums(rep)
	rep.groupsListed = v.err == nil
	return v.err
}

// inRange reports whether every count is in 0 to maxCount.
func inRange(xs ...int64) bool {
	for _, x := range xs {
		if x < 0 || x > maxCount {
			return false
		}
	}
	return true
}

// negative reports whether a shape has a negative dimension.
func negative(shape []int64) bool {
	for _, d := range shape {
		if d < 0 {
			return true
		}
	}
	return false
}

// finite reports whether a ratio is a finite non-negative number.
func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) && x >= 0 }

// quote shortens a name quoted in an error.
func quote(s string) string { return neutral.Clip(s, 80) }

type validator struct{ err error }

func (v *validator) fail(format string, args ...any) {
	if v.err == nil {
		v.err = fmt.Errorf(format, args...)
	}
}

// counts refuses negative and out-of-range counts, the first in key order.
func (v *validator) counts(where string, m map[string]int64) {
	if v.err != nil {
		return
	}
	var bad []string
	for k, x := range m {
		if x < 0 || x > maxCount {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return
	}
	first := bad[0]
	for _, k := range bad {
		first = min(first, k)
	}
	v.fail("%s: %s %d out of range (want 0 to 2^62)", where, first, m[first])
}

// sums is a group's figures summed over its tensors, with checked adds.
type sums struct {
	tensors, params, baseline, theoretical, stored int64
	listed                                         bool // a group of the report has its key
}

func (s *sums) add(v *validator, t *Tensor) {
	s.tensors = v.plus(s.tensors, 1)
	s.params = v.plus(s.params, t.Params)
	s.baseline = v.plus(s.baseline, t.BaselineBytes)
	s.theoretical = v.plus(s.theoretical, t.TheoreticalBytes)
	s.stored = v.plus(s.stored, t.StoredBytes)
}

// sumsFast is off only in tests, which hold groupsSum to the full check.
var sumsFast = true

// The keys of the group lists: a tensor's key in each, and whether it
// counts there at all (optimizer state is in its role only).
func roleKey(t *Tensor) (string, bool)   { return t.Role, true }
func moduleKey(t *Tensor) (string, bool) { return t.Module, t.Role != "optimizer_state" }
func dtypeKey(t *Tensor) (string, bool)  { return t.DType, t.Role != "optimizer_state" }
func layerKey(t *Tensor) (string, bool) {
	return cmp.Or(t.Layer, NoLayer), t.Role != "optimizer_state"
}

// groupsSum reports whether gs lists each key of the tensors once, each
// group summing its tensors exactly as sums checks it, with no key
// listed that no tensor has and no sum past maxCount: then sums would
// find nothing wrong with the list. Groups come in the order of their
// tensors' first appearance (accounting's order), so a tensor's group is
// mostly the previous tensor's or the next one not yet seen; a map is
// consulted only out of that order, and built only to find keys listed
// twice.
func groupsSum(tensors []Tensor, gs []Group, key func(*Tensor) (string, bool)) bool {
	idx := make(map[string]int, len(gs))
	for i := range gs {
		k := gs[i].Key()
		if _, twice := idx[k]; twice {
			return false
		}
		idx[k] = i
	}
	acc := make([]sums, len(gs))
	hugepage.Advise(acc)
	v := &validator{}
	cur, next, curKey := -1, 0, ""
	for i := range tensors {
		t := &tensors[i]
		k, ok := key(t)
		switch {
		case !ok:
			continue
		case cur >= 0 && k == curKey:
		case next < len(gs) && k == gs[next].Key():
			cur, curKey = next, k
			next++
		default:
			j, listed := idx[k]
			if !listed {
				return false
			}
			cur, curKey = j, k
		}
		acc[cur].add(v, t)
	}
	if v.err != nil {
		return false
	}
	for i := range gs {
		g, s := &gs[i], &acc[i]
		if s.tensors == 0 || g.Tensors != s.tensors || g.Params != s.params || g.BaselineBytes != s.baseline ||
			g.StoredBytes != s.stored || g.TheoreticalBytes > s.theoretical {
			return false
		}
	}
	return true
}

// sumsBy sums tensors by a key. Neighbouring tensors mostly share their
// role, file, module, layer and dtype, so the last key's sums are kept at
// hand.
type sumsBy struct {
	m    map[string]*sums
	key  string
	last *sums
}

// newSumsBy makes room for the n keys the report lists.
func newSumsBy(n int) sumsBy { return sumsBy{m: make(map[string]*sums, n)} }

func (b *sumsBy) at(k string) *sums {
	if b.last != nil && k == b.key {
		return b.last
	}
	s := b.m[k]
	if s == nil {
		s = &sums{}
		b.m[k] = s
	}
	b.key, b.last = k, s
	return s
}

// plus adds two counts in range, refusing a sum past maxCount.
func (v *validator) plus(a, b int64) int64 {
	if a > maxCount-b {
		v.fail("figures sum to more than 2^62: not a real model")
		return 0
	}
	return a + b
}

// sums checks every group against the tensors it sums, and the total
// against the roles. Theoretical bytes of a group may be less than its
// tensors' (a tied weight counts once), never more.
func (v *validator) sums(rep *Report) {
	// The group lists of a report as qinsaudit writes it sum their
	// tensors exactly; groupsSum says so without a map per list (a model
	// of 100,000 modules made those maps most of the cost of reading its
	// report). When it cannot, every list is summed by key below, which
	// names the first group that is wrong.
	fast := sumsFast && groupsSum(rep.Tensors, rep.Roles, roleKey) && groupsSum(rep.Tensors, rep.Modules, moduleKey) &&
		groupsSum(rep.Tensors, rep.Layers, layerKey) && groupsSum(rep.Tensors, rep.DTypes, dtypeKey)
	// The maps by key are made only when they are used: room for 100,000
	// modules is 8 MB of table cleared, for nothing when fast.
	var role, module, layer, dtype sumsBy
	if !fast {
		role, module, layer, dtype = newSumsBy(len(rep.Roles)), newSumsBy(len(rep.Modules)), newSumsBy(len(rep.Layers)), newSumsBy(len(rep.DTypes))
	}
	file := newSumsBy(len(rep.Files))
	for i := range rep.Tensors {
		t := &rep.Tensors[i]
		file.at(t.File).add(v, t)
		if fast {
			continue
		}
		role.at(t.Role).add(v, t)
		if t.Role == "optimizer_state" {
			continue
		}
		module.at(t.Module).add(v, t)
		dtype.at(t.DType).add(v, t)
		layer.at(cmp.Or(t.Layer, NoLayer)).add(v, t) // reports before NoLayer list no such group
	}
	byRole, byModule, byLayer, byDType, byFile := role.m, module.m, layer.m, dtype.m, file.m
	check := func(where func() string, g *Group, s *sums) {
		if s == nil {
			s = &sums{}
		}
		if g.Tensors == s.tensors && g.Params == s.params && g.BaselineBytes == s.baseline && g.StoredBytes == s.stored && g.TheoreticalBytes <= s.theoretical {
			return
		}
		switch {
		case g.Tensors != s.tensors:
			v.fail("%s: tensors %d, but %d tensors are listed for it", where(), g.Tensors, s.tensors)
		case g.Params != s.params:
			v.fail("%s: params %d, but its tensors sum to %d", where(), g.Params, s.params)
		case g.BaselineBytes != s.baseline:
			v.fail("%s: baseline_bytes %d, but its tensors sum to %d", where(), g.BaselineBytes, s.baseline)
		case g.StoredBytes != s.stored:
			v.fail("%s: stored_bytes %d, but its tensors sum to %d", where(), g.StoredBytes, s.stored)
		case g.TheoreticalBytes > s.theoretical:
			v.fail("%s: theoretical_bytes %d, more than its tensors' %d", where(), g.TheoreticalBytes, s.theoretical)
		}
	}
	for _, gs := range []struct {
		name   string
		groups []Group
		sums   map[string]*sums
	}{{"roles", rep.Roles, byRole}, {"modules", rep.Modules, byModule}, {"layers", rep.Layers, byLayer}, {"dtypes", rep.DTypes, byDType}} {
		if fast {
			break
		}
		name := gs.name
		// A group's key is marked seen on its tensors' sums; keys no
		// tensor has are kept aside.
		listed, other := 0, map[string]bool{}
		for i := range gs.groups {
			g := &gs.groups[i]
			k := g.Key()
			where := func() string { return fmt.Sprintf("%s[%d] (%s)", name, i, quote(k)) }
			s := gs.sums[k]
			switch {
			case s != nil && s.listed, s == nil && other[k]:
				v.fail("%s: listed twice", where())
			case s != nil:
				s.listed = true
				listed++
			default:
				other[k] = true
			}
			check(where, g, s)
		}
		seen := listed + len(other)
		want := len(gs.sums)
		if s, ok := gs.sums[NoLayer]; ok && name == "layers" && !s.listed {
			want-- // a report from before the NoLayer group
		}
		if seen != want {
			v.fail("%s: %d listed, but the tensors have %d", name, seen, want)
		}
	}
	for i, f := range rep.Files {
		s := byFile[f.Path]
		if s == nil {
			s = &sums{}
		}
		where := fmt.Sprintf("files[%d] (%s)", i, quote(f.Path))
		if f.Tensors != s.tensors || f.StoredBytes != s.stored {
			v.fail("%s: %d tensors of %d stored bytes, but the tensors listed for it are %d of %d", where, f.Tensors, f.StoredBytes, s.tensors, s.stored)
		}
	}
	var total sums
	for _, g := range rep.Roles {
		if g.Role == "optimizer_state" {
			continue
		}
		total.tensors = v.plus(total.tensors, g.Tensors)
		total.params = v.plus(total.params, g.Params)
		total.baseline = v.plus(total.baseline, g.BaselineBytes)
		total.theoretical = v.plus(total.theoretical, g.TheoreticalBytes)
		total.stored = v.plus(total.stored, g.StoredBytes)
	}
	t := rep.Totals
	if t.Tensors != total.tensors || t.Params != total.params || t.BaselineBytes != total.baseline ||
		t.TheoreticalBytes != total.theoretical || t.StoredBytes != total.stored {
		v.fail("totals: %d tensors, %d params, %d baseline, %d theoretical, %d stored bytes, but the roles in the model sum to %d, %d, %d, %d, %d",
			t.Tensors, t.Params, t.BaselineBytes, t.TheoreticalBytes, t.StoredBytes,
			total.tensors, total.params, total.baseline, total.theoretical, total.stored)
	}
}
