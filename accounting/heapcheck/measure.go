package heapcheck

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/google/pprof/profile"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// Measure returns the bytes in use in p, less those in use in base (a
// profile taken before the weights were loaded; nil for none), counting only
// stacks with a frame that focus matches (nil for all).
//
// A frame matches when focus matches its function's name or system name or
// the file of its mapping: symbolized profiles (Go's) match by function,
// address-only ones (gperftools, jemalloc) by library, e.g. "libc10" for
// every tensor storage PyTorch's CPU allocator makes.
//
// Stacks present in both profiles are subtracted stack by stack, like
// pprof's -diff_base, so the sampling error of what both hold cancels; the
// standard deviation is estimated from what is left.
//
// Without a focus, a truncated legacy profile is measured by its header
// totals (scaled as its listed stacks were), so nothing is under-counted;
// with a focus the unlisted bytes cannot be attributed and are reported as
// UnlistedBytes (the truth may be up to that much more), and a base's as
// UnlistedBaseBytes (up to that much less).
//
// With no focus, a profile of a PyTorch process (one that maps libc10) is
// attributed: InUseBytes counts the stacks through c10's CPU allocator,
// where every tensor storage comes from, and OtherBytes the rest (the
// interpreter's and libraries' allocations).
func Measure(p, base *Profile, focus *regexp.Regexp) (accounting.HeapMeasurement, error) {
	if focus != nil || !p.maps(tensorAllocator()) {
		return measure(p, base, focus)
	}
	m, err := measure(p, base, tensorAllocator())
	if err != nil {
		return m, err
	}
	all, err := measure(p, base, nil)
	if err != nil {
		return m, err
	}
	m.Focus, m.Attributed = "", "libc10"
	m.OtherBytes = all.InUseBytes - m.InUseBytes
	return m, nil
}

// tensorAllocator matches the library of PyTorch's CPU allocator; compiled
// on first use.
var tensorAllocator = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`libc10[.-]`) })

// maps reports whether the profile's memory map has a file matching re.
func (p *Profile) maps(re *regexp.Regexp) bool {
	for _, mp := range p.P.Mapping {
		if re.MatchString(mp.File) {
			return true
		}
	}
	return false
}

func measure(p, base *Profile, focus *regexp.Regexp) (accounting.HeapMeasurement, error) {
	m := accounting.HeapMeasurement{Profile: p.Path, Format: string(p.Format), SampleRate: p.SampleRate}
	if p.Format == Jemalloc {
		m.Slot = JemallocSlot
	}
	m.Notices = append(m.Notices, p.Notices...)
	if focus != nil {
		m.Focus = focus.String()
	}
	stacks := map[string][2]int64{} // key -> objects, bytes
	add := func(q *Profile, sign int64) (int64, error) {
		var sum int64
		for _, s := range q.P.Sample {
			if focus != nil && !matches(s, focus) {
				continue
			}
			k := stackKey(s)
			v := stacks[k]
			var err error
			if q.objects >= 0 {
				if v[0], err = addBytes(v[0], sign*s.Value[q.objects]); err != nil {
					return 0, err
				}
			}
			if v[1], err = addBytes(v[1], sign*s.Value[q.space]); err != nil {
				return 0, err
			}
			stacks[k] = v
			if sum, err = addBytes(sum, s.Value[q.space]); err != nil {
				return 0, err
			}
		}
		return sum, nil
	}
	if base != nil {
		if base.Format != p.Format {
			return m, fmt.Errorf("%s is a %s profile but the base %s is a %s profile: take both the same way", p.Path, p.Format, base.Path, base.Format)
		}
		if base.SampleRate != p.SampleRate {
			return m, fmt.Errorf("%s samples every %d bytes but the base %s every %d: take both the same way", p.Path, p.SampleRate, base.Path, base.SampleRate)
		}
		if a, b := p.program(), base.program(); a != "" && b != "" && a != b {
			return m, fmt.Errorf("%s is a profile of %s but the base %s is one of %s: take both from the same program", p.Path, a, base.Path, b)
		}
		m.Base = base.Path
		for _, n := range base.Notices {
			// A base with nothing in use is what a tcmalloc or jemalloc
			// profile started after the imports looks like.
			if n.Kind == accounting.HeapProfileNoInUse && base.Format != Proto && base.Format != GoLegacy {
				continue
			}
			m.Notices = append(m.Notices, n)
		}
	}
	total, err := add(p, 1)
	if err == nil && focus == nil {
		total, err = addBytes(total, p.unlisted())
	}
	if err == nil && base != nil {
		var b int64
		if b, err = add(base, -1); err == nil && focus == nil {
			b, err = addBytes(b, base.unlisted())
		}
		if err == nil {
			total, err = addBytes(total, -b)
		}
	}
	if err == nil && focus != nil {
		m.UnlistedBytes, m.UnlistedBaseBytes = unlistedBounds(p, base, focus)
	}
	if err != nil {
		return m, fmt.Errorf("%s: %v", p.Path, err)
	}
	m.InUseBytes = total

	var variance float64
	for _, v := range stacks {
		variance += stackVariance(v[0], v[1], p.SampleRate)
	}
	m.SigmaBytes = int64(math.Ceil(math.Sqrt(variance)))
	return m, nil
}

// program is the file of the profile's main mapping (the executable), ""
// when the profile does not say.
func (p *Profile) program() string {
	if len(p.P.Mapping) == 0 {
		return ""
	}
	return p.P.Mapping[0].File
}

// errOverflow: byte counts beyond maxBytes, which no real heap reaches.
var errOverflow = errors.New("in-use bytes out of range: the stacks sum to more than 2^62 bytes")

// addBytes returns a+b, or errOverflow when either or the sum lies beyond
// ±maxBytes: no sum of counts within that range overflows int64.
func addBytes(a, b int64) (int64, error) {
	if a > maxBytes || a < -maxBytes || b > maxBytes || b < -maxBytes ||
		b > 0 && a > maxBytes-b || b < 0 && a < -maxBytes-b {
		return 0, errOverflow
	}
	return a + b, nil
}

// unlistedBounds bounds what truncated dumps may hide from a focused
// measurement: how much more (up) and how much less (down) than the listed
// stacks the focus may truly hold.
//
// Without a base, up is everything the profile leaves unlisted. With a
// base, a dump lists its largest stacks and drops the rest (gperftools),
// so a stack dropped from one dump held less than the smallest stack that
// dump lists. A focused stack listed in the profile but not in the base may
// have held up to the base's smallest listed stack before (down), one
// listed in the base but not in the profile may still hold up to the
// profile's smallest (up); each side is at most what its dump leaves
// unlisted in all. Stacks dropped from both dumps are taken to be the same
// in both: they are the smallest a process has, and a tensor storage's
// allocation site is not among them.
func unlistedBounds(p, base *Profile, focus *regexp.Regexp) (up, down int64) {
	if base == nil {
		return p.unlisted(), 0
	}
	pu, bu := p.unlisted(), base.unlisted()
	if pu == 0 && bu == 0 {
		return 0, 0
	}
	inP, inBase := p.focusedKeys(focus), base.focusedKeys(focus)
	var onlyP, onlyBase int64
	for k := range inP {
		if !inBase[k] {
			onlyP++
		}
	}
	for k := range inBase {
		if !inP[k] {
			onlyBase++
		}
	}
	bound := func(n, smallest, unlisted int64) int64 {
		if unlisted == 0 || n == 0 {
			return 0
		}
		if smallest > 0 && n <= unlisted/smallest {
			return n * smallest
		}
		return unlisted
	}
	return bound(onlyBase, p.smallestStack(), pu), bound(onlyP, base.smallestStack(), bu)
}

// focusedKeys are the stacks the profile lists that the focus matches.
func (p *Profile) focusedKeys(focus *regexp.Regexp) map[string]bool {
	keys := map[string]bool{}
	for _, s := range p.P.Sample {
		if s.Value[p.space] > 0 && matches(s, focus) {
			keys[stackKey(s)] = true
		}
	}
	return keys
}

// smallestStack is the fewest bytes a listed stack holds, 0 when none is
// listed.
func (p *Profile) smallestStack() int64 {
	var least int64
	for _, s := range p.P.Sample {
		if v := s.Value[p.space]; v > 0 && (least == 0 || v < least) {
			least = v
		}
	}
	return least
}

// unlisted estimates the un-sampled bytes a truncated profile's header
// counts beyond its listed stacks.
func (p *Profile) unlisted() int64 {
	if p.HeaderInUseBytes < 0 || p.HeaderInUseBytes <= p.ListedInUseBytes {
		return 0
	}
	raw := p.HeaderInUseBytes - p.ListedInUseBytes
	if p.SampleRate <= 1 || p.ListedInUseBytes == 0 {
		return raw
	}
	// Scale the missing bytes as the listed ones were scaled.
	var scaled int64
	for _, s := range p.P.Sample {
		scaled += s.Value[p.space]
	}
	return sat(float64(raw) * float64(scaled) / float64(p.ListedInUseBytes))
}

// stackVariance is the variance of the un-sampled estimate of one stack's
// bytes: for objects of s bytes sampled with probability q = 1-exp(-s/R),
// the Horvitz-Thompson estimator over the n = objects*q that were sampled
// has variance n * s² * (1-q)/q², estimated here from the un-sampled counts.
func stackVariance(objects, bytes, rate int64) float64 {
	if rate <= 1 || bytes == 0 {
		return 0
	}
	o, b := math.Abs(float64(objects)), math.Abs(float64(bytes))
	if o < 1 {
		o = 1 // no object counts: take the bytes as one object
	}
	s := b / o
	q := -math.Expm1(-s / float64(rate))
	return o * s * s * (1 - q) / q
}

// stackKey identifies a stack across two profiles of one process: its
// addresses, or its function names where a location has no address.
func stackKey(s *profile.Sample) string {
	var b strings.Builder
	for _, l := range s.Location {
		if l.Address != 0 {
			b.WriteString(strconv.FormatUint(l.Address, 16))
		} else {
			for _, ln := range l.Line {
				if ln.Function != nil {
					b.WriteString(ln.Function.Name)
					b.WriteByte(':')
					b.WriteString(strconv.FormatInt(ln.Line, 10))
				}
			}
		}
		b.WriteByte(' ')
	}
	return b.String()
}

// matches reports whether a frame of s matches focus.
func matches(s *profile.Sample, focus *regexp.Regexp) bool {
	for _, l := range s.Location {
		if l.Mapping != nil && l.Mapping.File != "" && focus.MatchString(l.Mapping.File) {
			return true
		}
		for _, ln := range l.Line {
			if f := ln.Function; f != nil && (focus.MatchString(f.Name) || f.SystemName != f.Name && focus.MatchString(f.SystemName)) {
				return true
			}
		}
	}
	return false
}

// JemallocSlot is the bytes jemalloc (5.x, 16-byte quantum, 4 size classes
// per doubling) records for a 64-byte aligned allocation of n bytes, as
// PyTorch's CPU allocator makes them: its usable size. jemalloc profiles
// record usable sizes, so the accounting's figures are rounded the same way
// before they are compared.
func JemallocSlot(n int64) int64 {
	if n <= 0 {
		return 0
	}
	const smallMax = 14 << 10 // SC_SMALL_MAXCLASS: aligned small sizes round to 64 first
	if n <= smallMax {
		n = (n + 63) &^ 63
	}
	if n <= 128 {
		return (n + 15) &^ 15
	}
	lg := 63 - bits.LeadingZeros64(uint64(n-1)) // floor(log2(n-1))
	delta := int64(1) << (lg - 2)
	if n > math.MaxInt64-delta {
		return n
	}
	return (n + delta - 1) / delta * delta
}
