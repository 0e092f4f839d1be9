package main

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
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
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a collection: GOGC %d, limit %d; want 100 and no limit", gogc, limit)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	// Once restored, a later call changes nothing: the decode pass's own
	// setting is not undone behind its back.
	debug.SetGCPercent(-1)
	collectNormally()
	if gogc, _ := read(); int64(gogc) != -1 {
		t.Errorf("collectNormally after the restore set GOGC %d", int64(gogc))
	}
	debug.SetGCPercent(100)
}

// TestCollectNormallyBeforeExact: collectNormally ends collectLate's
// setting at once, and the finalizer's later run leaves the collector as
// the decode pass set it.
func TestCollectNormallyBeforeExact(t *testing.T) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOGC or GOMEMLIMIT set: collectLate leaves the collector alone")
	}
	collectLate()
	collectNormally()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(s)
	if s[0].Value.Uint64() != 100 || s[1].Value.Uint64() != math.MaxInt64 {
		t.Fatalf("after collectNormally: GOGC %d, limit %d", int64(s[0].Value.Uint64()), s[1].Value.Uint64())
	}
	prev := debug.SetGCPercent(-1) // what heapsnap.Exact does
	defer debug.SetGCPercent(prev)
	runtime.GC() // the sentinel's finalizer runs now
	time.Sleep(20 * time.Millisecond)
	metrics.Read(s)
	if int64(s[0].Value.Uint64()) != -1 {
		t.Errorf("the finalizer turned the collector back on (GOGC %d) inside the pass", int64(s[0].Value.Uint64()))
	}
}
