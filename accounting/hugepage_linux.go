package accounting

import (
	"syscall"
	"unsafe"
)

// adviseHuge asks that the whole pages of s's backing array be faulted in
// as transparent huge pages: the arrays of rows and groups are a large
// audit's most fresh memory. It is internal/hugepage.Advise, which
// explains the measurement, copied because accounting imports nothing
// outside the standard library.
func adviseHuge[T any](s []T) {
	var t T
	size := uintptr(cap(s)) * unsafe.Sizeof(t)
	p := unsafe.Pointer(unsafe.SliceData(s))
	page := uintptr(syscall.Getpagesize())
	skip := -uintptr(p) & (page - 1)
	if size < 4<<20 || size < skip+page {
		return
	}
	_ = syscall.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, skip)), (size-skip)&^(page-1)), syscall.MADV_HUGEPAGE)
}
