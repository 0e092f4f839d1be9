package accounting

import (
	"os"
	"testing"
	"unsafe"

	"github.com/qinsaudit/qinsaudit/internal/hugepage"
)

// TestAdviseHuge holds accounting's copy of the advice to
// internal/hugepage's: the same pages of the same arrays.
func TestAdviseHuge(t *testing.T) {
	page := uintptr(os.Getpagesize())
	for _, n := range []int{1000, hugepage.Min/int(unsafe.Sizeof(Row{})) + 1, 100000} {
		ours, theirs := make([]Row, n), make([]Row, n)
		adviseHuge(ours)
		hugepage.Advise(theirs)
		for _, s := range [][]Row{ours, theirs} {
			p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
			end := p + uintptr(n)*unsafe.Sizeof(Row{})
			for _, a := range []uintptr{(p + page - 1) &^ (page - 1), (end &^ (page - 1)) - page} {
				got, err := hugepage.Advised(a)
				if err != nil {
					t.Fatal(err)
				}
				if want := uintptr(n)*unsafe.Sizeof(Row{}) >= hugepage.Min; got != want {
					t.Errorf("%d rows: page %#x advised %v, want %v", n, a, got, want)
				}
			}
		}
	}
}
