// Package heapsnap takes exact heap profiles of the running process at named
// points and attributes their in-use bytes to allocation sites.
//
// A snapshot is what `go tool pprof -sample_index=inuse_space` shows of the
// profile written at that point: Take collects garbage first, so the
// profile holds exactly the objects still reachable, writes the standard
// gzipped profile if asked, and sums in-use bytes by the first frame of each
// stack that names a known site. The tests attribute the written profile
// the same way and check that both agree.
package heapsnap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
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
	// Inputs are files the run reads (the model's); a profile is never
	// written over one of them.
	Inputs []os.FileInfo

	recs  []runtime.MemProfileRecord // reused by every Take
	sites map[uintptr]pcSite         // the site of each stack PC seen
}

// pcSite is the site of the frames at one PC, if any.
type pcSite struct {
	key string
	ok  bool
}

// Take collects garbage, writes the heap profile to Dir if set, and
// returns the in-use bytes per site key.
//
// The bytes come from the records the profile is written from
// (runtime.MemProfile, read right after the collection, as
// runtime/pprof does), attributed to the first function of each stack,
// leaf first and inlined frames included, that Site knows: the profile's
// samples attributed the same way sum to the same bytes. While it reads
// them the profiling rate is 0, so its own allocations are neither slowed
// down by a stack walk each nor added to the profile; the records' buffer
// and the site of each PC are kept from one phase to the next.
func (r *Recorder) Take(phase string) (map[string]int64, error) {
	runtime.GC()
	if r.Dir != "" {
		name := filepath.Join(r.Dir, fmt.Sprintf("%02d-%s.pb.gz", len(r.Files)+1, fileName(phase)))
		if err := r.writeProfile(name); err != nil {
			return nil, fmt.Errorf("heap profile at %s: %w", phase, err)
		}
		r.Files = append(r.Files, name)
	}
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 0
	defer func() { runtime.MemProfileRate = rate }()
	var recs []runtime.MemProfileRecord
	for {
		k, ok := runtime.MemProfile(r.recs, false)
		if ok {
			recs = r.recs[:k]
			break
		}
		r.recs = make([]runtime.MemProfileRecord, k+k/4)
	}
	if r.sites == nil {
		r.sites = map[uintptr]pcSite{}
	}
	by := map[string]int64{}
	for i := range recs {
		if key, ok := r.stackSite(recs[i].Stack()); ok {
			by[key] += recs[i].InUseBytes()
		}
	}
	return by, nil
}

// writeProfile writes the heap profile to the file name, which it creates:
// O_EXCL refuses a file that exists (an input, an earlier run's profile)
// and O_NOFOLLOW a symlink planted there, so nothing but the new file is
// ever written.
func (r *Recorder) writeProfile(name string) error {
	if fi, err := os.Lstat(name); err == nil {
		target, _ := os.Stat(name) // what a symlink there leads to
		for _, in := range r.Inputs {
			if os.SameFile(fi, in) || target != nil && os.SameFile(target, in) {
				return fmt.Errorf("%s is an input of this run: not writing over it; choose another -o directory", name)
			}
		}
		return fmt.Errorf("%s exists: not writing over it (profiles are only written to new files); remove it or choose another -o directory", name)
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	err = pprof.Lookup("heap").WriteTo(f, 0)
	return errors.Join(err, f.Close())
}

// stackSite returns the key of the first function of stk, leaf first and
// inlined frames included, that Site knows. Every stack of an allocation
// starts in the allocator, so the site is looked up per PC, each PC once.
func (r *Recorder) stackSite(stk []uintptr) (string, bool) {
	for _, pc := range stk {
		s, seen := r.sites[pc]
		if !seen {
			s = r.pcSite(pc)
			r.sites[pc] = s
		}
		if s.ok {
			return s.key, true
		}
	}
	return "", false
}

// pcSite returns the site of the first of the frames at pc (a return
// address, with the functions inlined there) that Site knows.
func (r *Recorder) pcSite(pc uintptr) pcSite {
	frames := runtime.CallersFrames([]uintptr{pc})
	for {
		f, more := frames.Next()
		if key, ok := r.Site(f.Function); ok {
			return pcSite{key, true}
		}
		if !more {
			return pcSite{}
		}
	}
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
