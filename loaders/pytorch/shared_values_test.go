package pytorch

import (
	"fmt"
	"slices"
	"testing"
)

// TestIntTuplesShared: a tuple of ints equal to a recent one is that one;
// any other tuple is new, and every tuple holds its items.
func TestIntTuplesShared(t *testing.T) {
	var c intTuples
	a := c.tuple([]any{4, 4})
	if b := c.tuple([]any{4, 4}); b != a {
		t.Error("equal tuples of ints not shared")
	}
	for _, items := range [][]any{{4, 1}, {4}, {4, 4, 4}, {4, true}, {4, "4"}, {4, 4.0}, {}} {
		u := c.tuple(items)
		if u == a || !slices.Equal(*u, items) {
			t.Errorf("%v: got %v (shared: %v)", items, *u, u == a)
		}
	}
	if b := c.tuple([]any{4, 4}); b != a {
		t.Error("recent tuple forgotten")
	}
	for i := range len(c.recent) {
		c.tuple([]any{100 + i})
	}
	if b := c.tuple([]any{4, 4}); b == a || !slices.Equal(*b, []any{4, 4}) {
		t.Error("a tuple kept past the cache's size")
	}
}

// TestStrSet: every string added is reported as there when added again,
// across the set's growth, and no new one is (at 64 bits, a collision in
// 5,000 strings would be a broken hash).
func TestStrSet(t *testing.T) {
	var s strSet
	for i := range 5000 {
		if s.add(fmt.Sprint("model.layers.", i, ".weight")) {
			t.Fatalf("string %d reported as added before", i)
		}
	}
	for i := range 5000 {
		if !s.add(fmt.Sprint("model.layers.", i, ".weight")) {
			t.Fatalf("string %d not found", i)
		}
	}
	if s.n != 5000 || 2*s.n > len(s.slots) {
		t.Errorf("%d strings in %d slots", s.n, len(s.slots))
	}
}
