package hugepage

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
)

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
