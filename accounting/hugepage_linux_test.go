package accounting

import (
	"os"
	"testing"
	"unsafe"

	"github.com/qinsaudit/qinsaudit/internal/hugepage"
)

// TestAdviseHuge holds accounting's copy of the advice to
// internal/hugepage's: the same pages of the same arrays. Each array lies
// in memory mapped for it alone, 104 bytes past a page boundary, so that
// the advice seen is the advice just given.
func TestAdviseHuge(t *testing.T) {
	page := os.Getpagesize()
	const skip = 104
	rows := func(n int) []Row {
		b, unmap, err := hugepage.Fresh(skip + n*int(unsafe.Sizeof(Row{})) + page)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(unmap)
		// The rows are zero and stay so: no pointer is stored in memory
		// the collector does not scan.
		return unsafe.Slice((*Row)(unsafe.Pointer(&b[skip])), n)
	}
	for _, n := range []int{1000, hugepage.Min/int(unsafe.Sizeof(Row{})) + 1, 100000} {
		size := n * int(unsafe.Sizeof(Row{}))
		ours, theirs := rows(n), rows(n)
		adviseHuge(ours)
		hugepage.Advise(theirs)
		for _, s := range [][]Row{ours, theirs} {
			p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
			first := (p + uintptr(page) - 1) &^ uintptr(page-1)
			last := ((p + uintptr(size)) &^ uintptr(page-1)) - uintptr(page)
			want := size >= hugepage.Min
			for _, c := range []struct {
				a    uintptr
				want bool
			}{{first - 1, false}, {first, want}, {last, want}, {last + uintptr(page), false}} {
				got, err := hugepage.Advised(c.a)
				if err != nil {
					t.Fatal(err)
				}
				if got != c.want {
					t.Errorf("%d rows: page %#x advised %v, want %v", n, c.a, got, c.want)
				}
			}
		}
	}
}
