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
	var ar arena
	a := c.tuple(&ar, []any{4, 4})
	if b := c.tuple(&ar, []any{4, 4}); b != a {
		t.Error("equal tuples of ints not shared")
	}
	for _, items := range [][]any{{4, 1}, {4}, {4, 4, 4}, {4, true}, {4, "4"}, {4, 4.0}, {}} {
		u := c.tuple(&ar, items)
		if u == a || !slices.Equal(*u, items) {
			t.Errorf("%v: got %v (shared: %v)", items, *u, u == a)
		}
	}
	if b := c.tuple(&ar, []any{4, 4}); b != a {
		t.Error("recent tuple forgotten")
	}
	for i := range len(c.recent) {
		c.tuple(&ar, []any{100 + i})
	}
	if b := c.tuple(&ar, []any{4, 4}); b == a || !slices.Equal(*b, []any{4, 4}) {
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

// TestArenaAlloc: the arena's values are zero and distinct, across blocks,
// and a value set stays set while others are handed out.
func TestArenaAlloc(t *testing.T) {
	var a arena
	seen := map[*tensor]bool{}
	first := alloc(&a.tensors)
	first.offset = 7
	seen[first] = true
	for i := range 20 {
		p := alloc(&a.tensors)
		if seen[p] {
			t.Fatalf("value %d handed out twice", i)
		}
		if p.offset != 0 || p.ref != nil {
			t.Fatalf("value %d not zero: %+v", i, *p)
		}
		seen[p] = true
		p.offset = int64(i)
	}
	if first.offset != 7 {
		t.Errorf("first value changed to %d", first.offset)
	}
}
