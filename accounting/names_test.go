package accounting

import (
	"math"
	"testing"
)

// TestContiguous: torch's rule, as the pytorch loader keeps strides and the
// decode pass refuses views by it.
func TestContiguous(t *testing.T) {
	for _, c := range []struct {
		shape, strides []int64
		want           bool
	}{
		{[]int64{2, 3}, nil, true},
		{[]int64{2, 3}, []int64{3, 1}, true},
		{[]int64{2, 3}, []int64{1, 2}, false}, // a transpose
		{[]int64{1, 3}, []int64{99, 1}, true}, // a size-1 dimension's stride is free
		{[]int64{2, 3}, []int64{3}, false},
		{[]int64{}, []int64{}, true},
		{[]int64{0, 3}, []int64{7, 7}, true}, // empty
		{[]int64{1 << 40, 1 << 40}, []int64{1 << 40, 1}, false},
	} {
		if got := Contiguous(c.shape, c.strides); got != c.want {
			t.Errorf("Contiguous(%v, %v) = %v", c.shape, c.strides, got)
		}
	}
}

func TestJoinNameAbs(t *testing.T) {
	if got := JoinName("blocks.0.attn.q", "stored"); got != "blocks.0.attn.q.stored" {
		t.Errorf("JoinName = %q", got)
	}
	if got := JoinName("", "stored"); got != "stored" {
		t.Errorf("JoinName of no prefix = %q", got)
	}
	for x, want := range map[int64]int64{-5: 5, 5: 5, 0: 0, math.MinInt64: math.MaxInt64} {
		if got := Abs(x); got != want {
			t.Errorf("Abs(%d) = %d", x, got)
		}
	}
}
