// Package heapsnap takes exact heap profiles of the running process at named
// points and attributes their in-use bytes to allocation sites.
//
// A snapshot is what `go tool pprof -sample_index=inuse_space` shows of the
// profile written at that point: Take collects garbage first, so the
// profile holds exactly the objects still reachable, writes the standard
// gzipped profile if asked, and sums in-use bytes by the first frame of each
// stack that names a known site. Attribute does the same on a profile file,
// and the tests check that both agree.
package heapsnap

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"

	"github.com/google/pprof/profile"
)

// Exact prepares the process for exact heap snapshots and returns a
// function undoing it:
//
//   - runtime.MemProfileRate is set to 1, so every allocation made from then
//     on is in the heap profile with its exact size (earlier ones stay
//     sampled at the old rate);
//   - garbage is collected once, and automatic collection is turned off
//     (debug.SetGCPercent(-1)) until restore: Take collects at each phase
//     instead.
//
// Collections that start inside an allocation do runtime work on the
// allocating goroutine (starting the collector's workers, an assist taking a
// sudog), and the runtime's own allocations for it are profiled under that
// goroutine's stack, that is under whichever site happened to trigger it.
// With collection only at the phases, every byte profiled under a site is a
// buffer the site allocated.
func Exact() (restore func()) {
	prevRate := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	runtime.GC()
	prevGC := debug.SetGCPercent(-1)
	return func() {
		debug.SetGCPercent(prevGC)
		runtime.MemProfileRate = prevRate
	}
}

// Recorder takes a snapshot at each phase of a run.
type Recorder struct {
	// Dir, when set, receives each profile as NN-PHASE.pb.gz.
	Dir string
	// Site maps a function name to its site key; see decode.Site.
	Site func(function string) (key string, ok bool)
	// Files lists the profiles written to Dir, in order.
	Files []string
}

// Take collects garbage, writes the heap profile to Dir if set, and
// returns the in-use bytes per site key.
//
// The bytes come from the records the profile is written from
// (runtime.MemProfile, read right after the collection, as
// runtime/pprof does), attributed the way Attribute attributes the written
// file. While it reads them the profiling rate is 0, so its own allocations
// are neither slowed down by a stack walk each nor added to the profile.
func (r *Recorder) Take(phase string) (map[string]int64, error) {
	runtime.GC()
	if r.Dir != "" {
		var buf bytes.Buffer
		if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
			return nil, fmt.Errorf("heap profile at %s: %w", phase, err)
		}
		name := filepath.Join(r.Dir, fmt.Sprintf("%02d-%s.pb.gz", len(r.Files)+1, fileName(phase)))
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			return nil, err
		}
		r.Files = append(r.Files, name)
	}
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 0
	defer func() { runtime.MemProfileRate = rate }()
	var recs []runtime.MemProfileRecord
	for n := 256; ; {
		recs = make([]runtime.MemProfileRecord, n)
		k, ok := runtime.MemProfile(recs, false)
		if ok {
			recs = recs[:k]
			break
		}
		n = k + k/4
	}
	by := map[string]int64{}
	for i := range recs {
		if key, ok := stackSite(recs[i].Stack(), r.Site); ok {
			by[key] += recs[i].InUseBytes()
		}
	}
	return by, nil
}

// stackSite returns the key of the first function of stk, leaf first and
// inlined frames included, that site knows.
func stackSite(stk []uintptr, site func(string) (string, bool)) (string, bool) {
	frames := runtime.CallersFrames(stk)
	for {
		f, more := frames.Next()
		if key, ok := site(f.Function); ok {
			return key, true
		}
		if !more {
			return "", false
		}
	}
}

// Attribute sums the in-use bytes of p by site: each sample goes to the
// first function of its stack, leaf first and inlined frames included, that
// site knows. total is every in-use byte of the profile, attributed or not.
func Attribute(p *profile.Profile, site func(string) (string, bool)) (by map[string]int64, total int64, err error) {
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "inuse_space" && st.Unit == "bytes" {
			idx = i
		}
	}
	if idx < 0 {
		var have []string
		for _, st := range p.SampleType {
			have = append(have, st.Type+"/"+st.Unit)
		}
		return nil, 0, fmt.Errorf("heap profile has no inuse_space/bytes sample (have: %s)", strings.Join(have, ", "))
	}
	by = map[string]int64{}
	for _, s := range p.Sample {
		v := s.Value[idx]
		total += v
		if key, ok := siteOf(s, site); ok {
			by[key] += v
		}
	}
	return by, total, nil
}

func siteOf(s *profile.Sample, site func(string) (string, bool)) (string, bool) {
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function == nil {
				continue
			}
			if key, ok := site(line.Function.Name); ok {
				return key, true
			}
		}
	}
	return "", false
}

// fileName makes a phase name safe as part of a file name.
func fileName(phase string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '-'
	}, phase)
}
