package decode

import (
	"sync"
	"sync/atomic"
)

// parallel calls fn on consecutive chunks of [0, n) of grain items (the last
// one shorter), on up to workers goroutines that take chunks in turn. Work
// that fits one chunk, or one worker, runs on the calling goroutine.
func parallel(n, grain, workers int, fn func(lo, hi int)) {
	chunks := (n + grain - 1) / grain
	if workers <= 1 || chunks <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, chunks) {
		wg.Go(func() {
			for {
				c := int(next.Add(1)) - 1
				if c >= chunks {
					return
				}
				lo := c * grain
				fn(lo, min(lo+grain, n))
			}
		})
	}
	wg.Wait()
}
