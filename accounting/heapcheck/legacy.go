package heapcheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/google/pprof/profile"
)

// The legacy text heap profile, as gperftools, tcmalloc and Go write it:
//
//	heap profile: <inuse objs>: <inuse bytes> [<alloc objs>: <alloc bytes>] @ <kind>[/<rate>]
//	<inuse objs>: <inuse bytes> [<alloc objs>: <alloc bytes>] @ 0x... 0x...
//	...
//	MAPPED_LIBRARIES:
//	<the process's /proc/self/maps>
//
// pprof parses the stacks and un-samples them. This file adds what pprof
// drops: the header's totals, to catch gperftools' truncated dumps, and the
// check that a gperftools dump ends with its memory map, to catch a file cut
// short.
var (
	legacyHeaderRE = regexp.MustCompile(`^heap profile: *(\d+): *(\d+) *\[ *(\d+): *(\d+) *\] *@ *([a-z_0-9]+)(?:/(-?\d+))?`)
	legacySampleRE = regexp.MustCompile(`^\s*(-?\d+): *(-?\d+) *\[ *(\d+): *(\d+) *\] *@`)
)

// mapsSentinel starts the memory-map section of gperftools and jemalloc
// dumps.
const mapsSentinel = "MAPPED_LIBRARIES:"

func parseLegacy(data []byte) (*Profile, error) {
	p := &Profile{}
	first, _, _ := bytes.Cut(data, []byte("\n"))
	h := legacyHeaderRE.FindSubmatch(bytes.TrimSpace(first))
	if h == nil {
		return p, fmt.Errorf("line 1: malformed heap profile header %q", truncate(first))
	}
	switch kind := string(h[5]); kind {
	case "heapprofile":
		p.Format, p.SampleRate = Gperftools, 1
	case "heap_v2", "heapz_v2":
		p.Format = TcmallocSample
	case "heap":
		p.Format = GoLegacy
	case "growth", "growthz", "fragmentation", "fragmentationz":
		return p, fmt.Errorf("a tcmalloc %s profile, not a heap profile: it has no in-use values", kind)
	default:
		return p, fmt.Errorf("line 1: unknown heap profile kind %q", kind)
	}
	if p.Format == TcmallocSample || p.Format == GoLegacy {
		// A sampled profile states its mean sampling interval; 0 or less
		// would make pprof leave the values as sampled, and they would be
		// taken for exact.
		if r, err := strconv.ParseInt(string(h[6]), 10, 64); err != nil || r < 1 {
			period := string(h[6])
			if period == "" {
				period = "missing"
			}
			return p, fmt.Errorf("line 1: sample period %s: a sampled %s profile needs a positive sampling interval in bytes", period, h[5])
		}
	}
	header, err := strconv.ParseInt(string(h[2]), 10, 64)
	if err != nil || header > maxBytes {
		return p, fmt.Errorf("line 1: in-use bytes %s: out of range", h[2])
	}
	p.HeaderInUseBytes = header

	listed, maps, err := scanLegacy(data)
	if err != nil {
		return p, err
	}
	p.ListedInUseBytes = listed
	if !maps && p.Format != GoLegacy {
		return p, errors.New("no MAPPED_LIBRARIES section: the file is cut short (gperftools and tcmalloc end every dump with the process's memory map)")
	}

	pp, err := safely(func() (*profile.Profile, error) { return profile.ParseData(data) })
	if err != nil {
		return p, err
	}
	p.P = pp
	switch p.Format {
	case TcmallocSample, GoLegacy:
		// pprof has un-sampled the values at this rate (for Go's "heap/N",
		// N is twice runtime.MemProfileRate; pprof halves it).
		p.SampleRate = max(pp.Period, 1)
	}
	return p, nil
}

// scanLegacy sums the in-use bytes of the listed stacks, as written (before
// un-sampling), and reports whether the memory-map section is there.
func scanLegacy(data []byte) (listed int64, maps bool, err error) {
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(nil, maxLineBytes)
	s.Scan() // the header
	for line := 2; s.Scan(); line++ {
		b := s.Bytes()
		if bytes.Contains(b, []byte(mapsSentinel)) || bytes.Contains(b, []byte("--- Memory map:")) {
			return listed, true, nil
		}
		m := legacySampleRE.FindSubmatch(b)
		if m == nil {
			continue // comments and blank lines; pprof rejects anything else
		}
		v, err := strconv.ParseInt(string(m[2]), 10, 64)
		if err != nil || v < 0 {
			return 0, false, fmt.Errorf("line %d: in-use bytes %s: not a byte count", line, m[2])
		}
		if v > maxBytes || listed > maxBytes-v {
			return 0, false, fmt.Errorf("line %d: in-use bytes overflow", line)
		}
		listed += v
	}
	if err := s.Err(); err != nil {
		return 0, false, fmt.Errorf("reading lines: %v", err)
	}
	return listed, false, nil
}

// truncate shortens a line quoted in an error.
func truncate(b []byte) string {
	const n = 80
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
