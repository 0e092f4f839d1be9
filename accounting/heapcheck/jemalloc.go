package heapcheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"sync"

	"github.com/google/pprof/profile"
)

// jemalloc's prof.dump writes (jemalloc 4 and 5, prof_dump in prof.c):
//
//	heap_v2/<sample period: 2^lg_prof_sample>
//	  t*: <curobjs>: <curbytes> [<accumobjs>: <accumbytes>]
//	  t<thread>: ...                        (one line per thread)
//	@ 0x<return address> 0x<...> ...
//	  t*: <curobjs>: <curbytes> [<accumobjs>: <accumbytes>]
//	  t<thread>: ...
//	...
//
//	MAPPED_LIBRARIES:
//	<the process's /proc/self/maps>
//
// Each "@" stack is followed by its own t* line. The t* line after the
// header is meant as the total, but it is not the sum of the stacks in a
// sampled dump (Debian's jemalloc 5.3.0 wrote 49,901 bytes there above
// stacks summing to 9,780,294); jeprof skips it, and so does this reader. Counts are as sampled: jemalloc samples one allocation per 2^lg
// bytes on average (a Poisson process), so each stack is scaled by
// 1/(1-exp(-avg/period)) as jeprof does; accum values are zero unless
// prof_accum is on.
//
// pprof's parser does not read this format: its legacy heap parser expects
// the "heap profile: ... @ heap_v2/N" header that jemalloc 3 wrote, and it
// would take the per-thread lines for stacks. Hence this reader. Its
// expressions are compiled on first use, not at start-up.
var (
	jeHeaderRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^heap_v2/(\d+)$`) })
	jeCountsRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^t(\*|\d+): *(\d+): *(\d+) *\[ *(\d+): *(\d+) *\]$`) })
)

func parseJemalloc(data []byte) (*Profile, error) {
	p := &Profile{Format: Jemalloc}
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(nil, maxLineBytes)
	line := 0
	next := func() ([]byte, bool) {
		for s.Scan() {
			line++
			if b := bytes.TrimSpace(s.Bytes()); len(b) > 0 {
				return b, true
			}
		}
		return nil, false
	}

	b, _ := next()
	h := jeHeaderRE().FindSubmatch(b)
	if h == nil {
		return p, fmt.Errorf("line %d: malformed jemalloc header %q (want heap_v2/<sample period>)", line, truncate(b))
	}
	rate, err := strconv.ParseInt(string(h[1]), 10, 64)
	if err != nil || rate < 1 {
		return p, fmt.Errorf("line %d: sample period %s: want a positive integer", line, h[1])
	}
	p.SampleRate = rate

	pp := &profile.Profile{
		PeriodType: &profile.ValueType{Type: "space", Unit: "bytes"},
		Period:     rate,
	}
	locs := map[uint64]*profile.Location{}
	var (
		total    *counts // the header's t* line
		stack    []*profile.Location
		inStack  bool // after "@", before its t* line
		seenT    bool // a t* line has been read for the current block
		maps     bool
		accum    bool
		samples  []counts
		stackOf  [][]*profile.Location
		mapsData []byte
	)
	for {
		b, ok := next()
		if !ok {
			break
		}
		switch {
		case bytes.Equal(b, []byte(mapsSentinel)):
			maps = true
			// The rest of the file is the memory map.
			var rest bytes.Buffer
			for s.Scan() {
				rest.Write(s.Bytes())
				rest.WriteByte('\n')
			}
			mapsData = rest.Bytes()
		case b[0] == '@':
			if inStack {
				return p, fmt.Errorf("line %d: stack without counts before it", line)
			}
			if total == nil {
				return p, fmt.Errorf("line %d: stack before the total (t*) line", line)
			}
			addrs, err := jeAddrs(b[1:])
			if err != nil {
				return p, fmt.Errorf("line %d: %v", line, err)
			}
			stack = make([]*profile.Location, len(addrs))
			for i, a := range addrs {
				// Return addresses point after the call; step back onto it,
				// as pprof does for legacy heap profiles.
				if a > 0 {
					a--
				}
				loc := locs[a]
				if loc == nil {
					loc = &profile.Location{Address: a}
					locs[a] = loc
					pp.Location = append(pp.Location, loc)
				}
				stack[i] = loc
			}
			inStack, seenT = true, false
		case b[0] == 't':
			c, thread, err := jeCounts(b)
			if err != nil {
				return p, fmt.Errorf("line %d: %v", line, err)
			}
			if !thread {
				if seenT {
					return p, fmt.Errorf("line %d: a second t* line in one record", line)
				}
				seenT = true
				accum = accum || c.accumObjs > 0 || c.accumBytes > 0
				if total == nil {
					total = &c
					continue
				}
				if !inStack {
					return p, fmt.Errorf("line %d: counts without a stack (@ line) before them", line)
				}
				samples = append(samples, c)
				stackOf = append(stackOf, stack)
				inStack = false
			} else if !seenT {
				return p, fmt.Errorf("line %d: per-thread counts before the t* line", line)
			}
		default:
			return p, fmt.Errorf("line %d: unexpected %q", line, truncate(b))
		}
		if maps {
			break
		}
	}
	if err := s.Err(); err != nil {
		return p, fmt.Errorf("line %d: %v", line+1, err)
	}
	switch {
	case total == nil:
		return p, fmt.Errorf("no total (t*) line after the header: the file is cut short")
	case inStack:
		return p, fmt.Errorf("the last stack has no counts: the file is cut short")
	case !maps:
		return p, errors.New("no MAPPED_LIBRARIES section: the file is cut short (jemalloc ends every dump with the process's memory map)")
	}
	p.HeaderInUseBytes, p.ListedInUseBytes = -1, -1 // see above: no usable total

	if accum {
		pp.SampleType = []*profile.ValueType{
			{Type: "alloc_objects", Unit: "count"}, {Type: "alloc_space", Unit: "bytes"},
			{Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"},
		}
	} else {
		pp.SampleType = []*profile.ValueType{{Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"}}
	}
	for i, c := range samples {
		n, b := unsample(c.objs, c.bytes, rate)
		v := []int64{n, b}
		if accum {
			an, ab := unsample(c.accumObjs, c.accumBytes, rate)
			v = []int64{an, ab, n, b}
		}
		pp.Sample = append(pp.Sample, &profile.Sample{Location: stackOf[i], Value: v})
	}
	if _, err := safely(func() (*profile.Profile, error) { return pp, pp.ParseMemoryMap(bytes.NewReader(mapsData)) }); err != nil {
		return p, fmt.Errorf("%s: %v", mapsSentinel, err)
	}
	if err := pp.CheckValid(); err != nil {
		return p, fmt.Errorf("malformed profile: %v", err)
	}
	p.P = pp
	return p, nil
}

// counts are one t line's values, as sampled.
type counts struct {
	objs, bytes, accumObjs, accumBytes int64
}

// jeCounts parses "t*: 3: 96 [0: 0]" (thread false) or "t7: ..." (true).
func jeCounts(b []byte) (c counts, thread bool, err error) {
	m := jeCountsRE().FindSubmatch(b)
	if m == nil {
		return c, false, fmt.Errorf("malformed counts %q (want t*: <objects>: <bytes> [<objects>: <bytes>])", truncate(b))
	}
	var v [4]int64
	for i := range v {
		if v[i], err = strconv.ParseInt(string(m[2+i]), 10, 64); err != nil || v[i] > maxBytes {
			return c, false, fmt.Errorf("count %s: out of range", m[2+i])
		}
	}
	c = counts{v[0], v[1], v[2], v[3]}
	if c.objs == 0 && c.bytes != 0 || c.accumObjs == 0 && c.accumBytes != 0 {
		return c, false, fmt.Errorf("%q: bytes without objects", truncate(b))
	}
	return c, string(m[1]) != "*", nil
}

// jeAddrs parses the hex return addresses of an "@" line.
func jeAddrs(b []byte) ([]uint64, error) {
	fields := bytes.Fields(b)
	if len(fields) == 0 {
		return nil, fmt.Errorf("empty stack")
	}
	out := make([]uint64, len(fields))
	for i, f := range fields {
		if !bytes.HasPrefix(f, []byte("0x")) {
			return nil, fmt.Errorf("stack frame %q: not a hex address", truncate(f))
		}
		a, err := strconv.ParseUint(string(f[2:]), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("stack frame %q: not a hex address", truncate(f))
		}
		out[i] = a
	}
	return out, nil
}

// unsample scales a stack's sampled count and bytes by the inverse of the
// probability that an allocation of their average size is sampled at the
// given mean interval: 1 - exp(-avg/rate). Rate 1 means every allocation
// was recorded.
func unsample(objs, bytes, rate int64) (int64, int64) {
	if objs == 0 || bytes == 0 || rate <= 1 {
		return objs, bytes
	}
	scale := 1 / -math.Expm1(-float64(bytes)/float64(objs)/float64(rate))
	return sat(float64(objs) * scale), sat(float64(bytes) * scale)
}

// sat converts to int64, saturating instead of overflowing.
func sat(x float64) int64 {
	if x >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(math.Round(x))
}
