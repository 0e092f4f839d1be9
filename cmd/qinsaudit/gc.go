package main

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"sync/atomic"
)

// gcFreeHeap is how large the heap grows before the collector first runs
// (see collectLate).
const gcFreeHeap = 64 << 20

// collectLate keeps the garbage collector off until the process's memory
// reaches gcFreeHeap, then hands it back to the default policy (GOGC=100):
// the default's minimum heap of 4 MiB, raised to 64 MiB. A run of
// qinsaudit is short, and collecting the loader's garbage while it is
// young is wasted work when the process ends milliseconds later. Measured
// on torch.save files of 1k, 10k and 100k tensors (bench/pytorch, whole
// process, callgrind): 10k tensors 362 M -> 212 M instructions (no
// collection at all), 100k 3.68 G -> 3.01 G, at the same peak RSS (208
// MiB); a 256 MiB threshold would save more at 100k (2.19 G) for 276 MiB.
// Past the threshold the collector runs as it always did, so a large live
// heap (a decode holds a model's bytes) is bounded as before. GOGC or
// GOMEMLIMIT in the environment keep their meaning: then nothing changes.
func collectLate() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	late.Store(true)
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(gcFreeHeap)
	// The first collection (at the limit) finds the sentinel unreachable
	// and runs its finalizer, which restores the defaults.
	sentinel := new([64]byte)
	runtime.SetFinalizer(sentinel, func(*[64]byte) { collectNormally() })
}

// late is set while collectLate's setting is in force.
var late atomic.Bool

// collectNormally ends collectLate's setting now, if it is in force: GOGC
// 100 and no memory limit. The decode pass calls it before it turns the
// collector off for exact heap profiles (heapsnap.Exact), so that neither
// the limit nor the finalizer's late restore starts a collection inside
// the pass, and the pass's own restore returns to the default.
func collectNormally() {
	if late.CompareAndSwap(true, false) {
		debug.SetMemoryLimit(math.MaxInt64)
		debug.SetGCPercent(100)
	}
}
