package hugepage

import (
	"os"
	"runtime"
	"testing"
	"unsafe"
)

func advised(t *testing.T, a uintptr) bool {
	t.Helper()
	ok, err := Advised(a)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func fresh(t *testing.T, size int) []byte {
	t.Helper()
	b, unmap, err := Fresh(size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unmap)
	return b
}

func TestAdvise(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("advice is given on Linux only")
	}
	page := uintptr(os.Getpagesize())
	// An array that starts and ends inside a page: only the pages wholly
	// inside it are advised, never its neighbours' bytes.
	whole := fresh(t, Min+4*int(page))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(whole)))
	end := len(whole) - int(page) - 100
	s := whole[int(page)+100 : end : end]
	Advise(s)
	first, last := p+2*page, p+uintptr(len(whole))-3*page
	if !advised(t, first) || !advised(t, last) {
		t.Errorf("pages inside a %d-byte array are not advised", len(s))
	}
	if advised(t, first-1) || advised(t, last+page) {
		t.Errorf("advice reaches a page the array does not wholly hold")
	}
	type rec struct{ a, b, c int64 }
	mem := fresh(t, Min/2)
	small := unsafe.Slice((*rec)(unsafe.Pointer(unsafe.SliceData(mem))), len(mem)/int(unsafe.Sizeof(rec{})))[:0]
	Advise(small)
	if q := uintptr(unsafe.Pointer(unsafe.SliceData(small))); advised(t, q+page) {
		t.Errorf("a %d-byte array was advised", cap(small)*int(unsafe.Sizeof(rec{})))
	}
}

// TestAdviseEdges: no array, an array of no bytes, exactly Min bytes, and
// a slice whose capacity ends inside its first page neither panic nor fail.
func TestAdviseEdges(t *testing.T) {
	Advise([]int(nil))
	Advise(make([]struct{}, 1<<30))
	Advise(make([]byte, 0, Min))
	Advise(make([]byte, Min+1)[Min:])
}
