//go:build !linux

package hugepage

import "errors"

// Advised reports whether the mapping holding address a is marked for
// huge pages; off Linux, it cannot tell.
func Advised(a uintptr) (bool, error) {
	return false, errors.New("huge page advice is given on Linux only")
}

// Fresh maps new memory for a test; off Linux, it does not.
func Fresh(size int) ([]byte, func(), error) {
	return nil, nil, errors.New("huge page advice is given on Linux only")
}
