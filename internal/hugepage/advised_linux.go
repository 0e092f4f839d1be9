package hugepage

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
)

// Fresh maps size bytes of new anonymous memory and returns them with the
// function that unmaps them. It is for tests: the kernel keeps advice on a
// page for as long as the page is mapped, so heap memory that held an
// advised array once stays advised after the Go runtime reuses it for
// small objects, and only memory mapped afresh shows whose advice is whose.
func Fresh(size int) ([]byte, func(), error) {
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, nil, fmt.Errorf("mapping %d bytes: %w", size, err)
	}
	return b, func() { _ = syscall.Munmap(b) }, nil
}

// Advised reports whether the mapping holding address a is marked
// MADV_HUGEPAGE ("hg" among its VmFlags in /proc/self/smaps). It is for
// tests: reading smaps takes milliseconds.
func Advised(a uintptr) (bool, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 {
			in = lo <= a && a < hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return slices.Contains(strings.Fields(line[len("VmFlags:"):]), "hg"), nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, err
	}
	return false, fmt.Errorf("no mapping in /proc/self/smaps holds %#x", a)
}
