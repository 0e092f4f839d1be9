package main

import (
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

// TestCollectLate: the collector is off, with the memory limit as its
// trigger, until the first collection; then GOGC is 100 and there is no
// limit, as in any Go process.
func TestCollectLate(t *testing.T) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOGC or GOMEMLIMIT set: collectLate leaves the collector alone")
	}
	read := func() (gogc, limit uint64) {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64(), s[1].Value.Uint64()
	}
	collectLate()
	if gogc, limit := read(); int64(gogc) != -1 || limit != gcFreeHeap {
		t.Fatalf("after collectLate: GOGC %d, limit %d; want off (-1) and %d", int64(gogc), limit, gcFreeHeap)
	}
	runtime.GC() // what reaching the limit does
	deadline := time.Now().Add(5 * time.Second)
	for {
		gogc, limit := read()
		if gogc == 100 && limit == math.MaxInt64 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a collection: GOGC %d, limit %d; want 100 and no limit", gogc, limit)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}
