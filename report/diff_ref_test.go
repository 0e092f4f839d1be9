package report

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/version"
)

// newDiffReference is NewDiff as it was before it summed into slices and
// sorted with slices.SortStableFunc: the oracle TestNewDiffAgrees holds it to.
func newDiffReference(old, new *Report, by DiffBy) *Diff {
	d := &Diff{SchemaVersion: SchemaVersion, Tool: "qinsaudit", ToolVersion: version.String(), Kind: "diff", By: by, Old: old.Files, New: new.Files}
	encoded := map[string]bool{}
	for _, r := range []*Report{old, new} {
		for _, t := range r.Tensors {
			if t.Role == "encoded_linear" {
				encoded[t.Module] = true
			}
		}
	}
	type acc struct{ bytes, params, baseline int64 }
	sum := func(r *Report) (map[string]acc, []string) {
		m := map[string]acc{}
		var order []string
		for _, t := range r.Tensors {
			if t.Role == "optimizer_state" {
				continue
			}
			var key string
			switch by {
			case "layer":
				key = cmp.Or(t.Layer, NoLayer)
			case "module":
				key = t.Module
			case "tensor":
				key = t.Name
			case "dtype":
				key = t.DType
			case "role-matched":
				key = t.Role
				if encoded[t.Module] && (t.Part == "weight" || t.Part == "leftover_weight") {
					key = "encoded_linear"
				}
			default:
				key = t.Role
			}
			a, ok := m[key]
			if !ok {
				order = append(order, key)
			}
			a.bytes += t.StoredBytes
			a.params += t.Params
			a.baseline += t.BaselineBytes
			m[key] = a
		}
		return m, order
	}
	om, oorder := sum(old)
	nm, norder := sum(new)
	seen := map[string]bool{}
	for _, k := range append(oorder, norder...) {
		if seen[k] {
			continue
		}
		seen[k] = true
		o, inOld := om[k]
		n, inNew := nm[k]
		row := DiffRow{Key: k, OldBytes: o.bytes, NewBytes: n.bytes, OldParams: o.params, NewParams: n.params,
			OldBaseline: o.baseline, NewBaseline: n.baseline}
		row.finish()
		switch {
		case !inOld:
			row.Status = RowAdded
		case !inNew:
			row.Status = RowRemoved
		}
		d.Rows = append(d.Rows, row)
		d.Total.OldBytes += row.OldBytes
		d.Total.NewBytes += row.NewBytes
		d.Total.OldParams += row.OldParams
		d.Total.NewParams += row.NewParams
		d.Total.OldBaseline += row.OldBaseline
		d.Total.NewBaseline += row.NewBaseline
	}
	d.Total.Key = "total"
	d.Total.finish()
	sort.SliceStable(d.Rows, func(i, j int) bool {
		a, b := d.Rows[i], d.Rows[j]
		if x, y := accounting.Abs(a.DeltaBytes), accounting.Abs(b.DeltaBytes); x != y {
			return x > y
		}
		return a.Key < b.Key
	})
	if d.Rows == nil {
		d.Rows = []DiffRow{}
	}
	return d
}

// TestNewDiffAgrees: NewDiff gives the reference's rows and total, by
// every key, on reports with tensors added, removed, renamed, regrouped
// and resized.
func TestNewDiffAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 40 {
		old, cur := largeReport(t, 200+r.IntN(200), 0), largeReport(t, 200+r.IntN(200), int64(r.IntN(3)))
		for range r.IntN(30) {
			x := &cur.Tensors[r.IntN(len(cur.Tensors))]
			switch r.IntN(4) {
			case 0:
				x.Name += "_renamed"
			case 1:
				x.Module = old.Tensors[r.IntN(len(old.Tensors))].Module
			case 2:
				x.StoredBytes = r.Int64N(1 << 20)
			case 3:
				x.Role = []string{"optimizer_state", "encoded_linear", "untouched"}[r.IntN(3)]
				x.Part = []string{"weight", "leftover_weight", "bias"}[r.IntN(3)]
			}
		}
		if i%2 == 1 {
			old, cur = cur, old
		}
		// The group lists NewDiff follows (the reports come from New) may
		// list their keys in another order, or be the same on both sides.
		switch i % 4 {
		case 0:
			r.Shuffle(len(cur.Modules), func(a, b int) { cur.Modules[a], cur.Modules[b] = cur.Modules[b], cur.Modules[a] })
		case 1:
			cur = old
		}
		if !old.groupsListed || !cur.groupsListed {
			t.Fatal("reports from New do not say their groups are listed")
		}
		for _, by := range []DiffBy{DiffByRole, DiffByRoleMatched, DiffByLayer, DiffByModule, DiffByDType, DiffByTensor} {
			want := newDiffReference(old, cur, by)
			if got := NewDiff(old, cur, by); !reflect.DeepEqual(got, want) {
				t.Fatalf("by %s: %+v\nwant %+v", by, got.Total, want.Total)
			}
			// NewDiffChanges: the same rows changed first in the same
			// order, the same rows unchanged after them in any order.
			got := NewDiffChanges(old, cur, by)
			changed := 0
			for changed < len(want.Rows) && want.Rows[changed].DeltaBytes != 0 {
				changed++
			}
			byKey := func(a, b DiffRow) int { return cmp.Compare(a.Key, b.Key) }
			rest := slices.SortedFunc(slices.Values(got.Rows[min(changed, len(got.Rows)):]), byKey)
			if len(got.Rows) != len(want.Rows) || !reflect.DeepEqual(got.Rows[:changed], want.Rows[:changed]) ||
				!reflect.DeepEqual(rest, slices.SortedFunc(slices.Values(want.Rows[changed:]), byKey)) || got.Total != want.Total {
				t.Fatalf("NewDiffChanges by %s: %d rows, %d changed, want %d", by, len(got.Rows), changed, len(want.Rows))
			}
		}
	}
	// Past 16,384 tensors a side, the sides are summed at once, and
	// past 4,096 rows they are sorted by position (sortDiffRows).
	old, cur := largeReport(t, 20_000, 0), largeReport(t, 21_000, 1)
	for range 500 {
		x := &cur.Tensors[r.IntN(len(cur.Tensors))]
		x.Name += "_renamed"
		x.StoredBytes = r.Int64N(1 << 20)
	}
	for _, by := range []DiffBy{DiffByModule, DiffByTensor} {
		if got, want := NewDiff(old, cur, by), newDiffReference(old, cur, by); !reflect.DeepEqual(got, want) {
			t.Fatalf("large, by %s: %+v\nwant %+v", by, got.Total, want.Total)
		}
	}
	empty := &Report{}
	if got, want := NewDiff(empty, empty, DiffByRole), newDiffReference(empty, empty, DiffByRole); !reflect.DeepEqual(got, want) {
		t.Fatalf("empty: %+v, want %+v", got, want)
	}
}

// sortDiffRows sorts as compareRows does, on keys chosen to trip its
// shortcut: a shared prefix, keys that are prefixes of others, zero bytes,
// keys alike in their first eight bytes after the prefix, and changes of
// either sign and of equal size.
func TestSortDiffRows(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tails := []string{"", "\x00", "\x00\x00", "a", "ab", "abcdefgh", "abcdefgh\x00", "abcdefghi", "abcdefghj", "\xff", "é"}
	for _, prefix := range []string{"", "model.layers.", "x"} {
		seen := map[string]bool{}
		var rows []DiffRow
		for len(rows) < 6000 {
			k := prefix + tails[r.IntN(len(tails))] + fmt.Sprint(r.IntN(500)) + tails[r.IntN(len(tails))]
			if r.IntN(50) == 0 {
				k = prefix
			}
			if seen[k] {
				continue
			}
			seen[k] = true
			rows = append(rows, DiffRow{Key: k, DeltaBytes: int64(r.IntN(7) - 3)})
		}
		want := slices.Clone(rows)
		slices.SortFunc(want, compareRows)
		sortDiffRows(rows)
		if !slices.Equal(rows, want) {
			t.Fatalf("prefix %q: sortDiffRows differs from compareRows", prefix)
		}
	}
}
