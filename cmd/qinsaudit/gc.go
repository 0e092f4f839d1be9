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
const gcFreeHeap = 256 << 20

// collectLate keeps the garbage collector off until the process's memory
// reaches gcFreeHeap, then hands it back to the default policy (GOGC=100).
// A run of qinsaudit is short, and collecting the loader's garbage while
// it is young is wasted work when the process ends milliseconds later: a
// header-only audit of 100,000 tensors allocates 100 to 150 MB, most of
// it live until the report is built. Measured whole-process on 100,000
// tensors (issue 11; CPU time, median of 5, and peak RSS), thresholds of
// 64, 128 and 256 MiB: a torch.save file 0.71, 0.69, 0.60 s (147, 159,
// 173 MiB); safetensors 0.64, 0.57, 0.45 s (119, 133, 133 MiB); GGUF
// 0.43, 0.43, 0.34 s (110, 137, 146 MiB). The default (GOGC=100, a 4 MiB
// first goal) took 362 M instructions where 64 MiB took 212 M at 10,000
// .pt tensors. Past the threshold the collector runs as it always did, so
// a large live heap (a decode holds a model's bytes) is bounded as
// before. GOGC or GOMEMLIMIT in the environment keep their meaning: then
// nothing changes.
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
