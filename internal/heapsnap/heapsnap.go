// Package heapsnap takes exact heap profiles of the running process at named
// points and attributes their in-use bytes to allocation sites.
//
// A snapshot is what `go tool pprof -sample_index=inuse_space` would show of
// the same file: Take collects garbage first, so the profile holds exactly
// the objects still reachable, then writes the standard gzipped profile,
// parses it back and sums in-use bytes by the first frame of each stack that
// names a known site. Attribution reads the very profile it writes, so the
// numbers a report shows are the numbers of the file a user opens.
package heapsnap

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/google/pprof/profile"
)

// Exact sets runtime.MemProfileRate to 1, so that every allocation made from
// then on is in the heap profile with its exact size, and returns a function
// restoring the previous rate. Allocations made before are sampled at the
// old rate; only sites allocated after the call are measured exactly.
func Exact() (restore func()) {
	prev := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	return func() { runtime.MemProfileRate = prev }
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

// Take collects garbage, writes a heap profile and returns its in-use bytes
// per site key.
func (r *Recorder) Take(phase string) (map[string]int64, error) {
	runtime.GC()
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
		return nil, fmt.Errorf("heap profile at %s: %w", phase, err)
	}
	if r.Dir != "" {
		name := filepath.Join(r.Dir, fmt.Sprintf("%02d-%s.pb.gz", len(r.Files)+1, fileName(phase)))
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			return nil, err
		}
		r.Files = append(r.Files, name)
	}
	p, err := profile.ParseData(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("heap profile at %s: %w", phase, err)
	}
	by, _, err := Attribute(p, r.Site)
	return by, err
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
