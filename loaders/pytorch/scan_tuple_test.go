package pytorch

import (
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
