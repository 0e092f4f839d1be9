// Package hugepage asks the kernel to back the large arrays of per-tensor
// records with transparent huge pages.
//
// An audit of 100,000 tensors fills about 100 MB of fresh heap once, and
// on Linux with transparent huge pages in "madvise" mode (the default of
// most distributions) each 4 KiB page of it costs a page fault: 27,000
// faults, a fifth of the run's CPU time on the 2-core VM of issue 11. One
// madvise(MADV_HUGEPAGE) per array, before it is first written, lets the
// kernel fault it in 2 MiB at a time; the arrays are written whole, so no
// memory is spent that the 4 KiB pages would not have used.
//
// The accounting package keeps its own copy of the few lines of advise
// (accounting/hugepage_linux.go), as it imports nothing outside the
// standard library.
package hugepage

import "unsafe"

// Min is the size, in bytes, below which Advise does nothing: an array
// smaller than two huge pages rarely holds a whole aligned one.
const Min = 4 << 20

// Advise asks that s's backing array (its capacity) be faulted in with
// huge pages where it holds whole ones, when it is first touched. It does
// nothing off Linux, for arrays under Min bytes, and where the kernel has
// no transparent huge pages; it never fails and never changes s.
func Advise[T any](s []T) {
	var t T
	if size := uintptr(cap(s)) * unsafe.Sizeof(t); size >= Min {
		advise(unsafe.Pointer(unsafe.SliceData(s)), size)
	}
}
