// Package racetest tells tests whether the race detector is on, so that a
// test asserting how much a piece of code allocates, or how little memory
// it runs in, can step aside under -race: the detector's instrumentation
// allocates for its own bookkeeping, and those bytes land in the counts
// (testing.AllocsPerRun, runtime.MemStats.TotalAlloc) the test bounds; its
// shadow memory does not fit under a ulimit -v.
package racetest

import "testing"

// SkipAllocs skips a test that bounds allocations or memory when the race
// detector is on. The suite without -race (README's go test ./...) runs it.
func SkipAllocs(t testing.TB) {
	t.Helper()
	if Enabled {
		t.Skip("allocation bounds do not hold under -race: the detector allocates too")
	}
}
