package hugepage

import (
	"syscall"
	"unsafe"
)

// advise marks the whole pages inside [p, p+size) MADV_HUGEPAGE. The
// kernel gives a huge page only to an aligned 2 MiB (on arm64 with 64 KiB
// pages, 512 MiB) range that lies wholly inside the marked pages, and
// faults the pages around it in one at a time as before.
func advise(p unsafe.Pointer, size uintptr) {
	page := uintptr(syscall.Getpagesize())
	skip := -uintptr(p) & (page - 1) // to the first whole page
	if size < skip+page {
		return
	}
	// The advice only tunes how the pages are faulted in: an error (a
	// kernel built without transparent huge pages says EINVAL) changes
	// nothing the caller could act on.
	_ = syscall.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, skip)), (size-skip)&^(page-1)), syscall.MADV_HUGEPAGE)
}
