// Package heapcheck reads heap profiles of a process that loaded and decoded
// a model, and measures the bytes that process held, for accounting.Compare
// to hold against the model's accounting.
//
// Three families of profiles are read into one model, pprof's
// profile.Profile:
//
//   - profile.proto, gzipped or not (Go's runtime/pprof, pprof tools);
//   - gperftools/tcmalloc legacy heap profiles: HEAPPROFILE dumps ("@
//     heapprofile", every allocation recorded), tcmalloc's sampled heap
//     ("@ heap_v2/N") and Go's legacy text heap profile ("@ heap/N");
//   - jemalloc "heap_v2/N" profiles (prof.dump), which pprof's parser does
//     not recognise; this package has its own reader for them.
//
// In-use bytes are always taken from the sample type named inuse_space (unit
// bytes), never by position. Sampled profiles are un-sampled: a stack whose
// samples average s bytes at a mean sampling interval of R bytes stands for
// 1/(1-exp(-s/R)) times what was sampled (the Poisson model that Go,
// tcmalloc and jemalloc sample by); Go and pprof already apply it to proto
// and legacy profiles, and the jemalloc reader applies it here. Measure
// also estimates the standard deviation the sampling leaves.
//
// This is the only package of qinsaudit that imports
// github.com/google/pprof/profile.
package heapcheck

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/google/pprof/profile"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// Format names a heap profile format.
type Format string

// The formats Read recognises.
const (
	// Proto is profile.proto: Go's heap profiles, pprof's own output.
	Proto Format = "pprof-proto"
	// Gperftools is a gperftools heap-profiler dump (HEAPPROFILE,
	// HeapProfilerDump): every allocation is recorded.
	Gperftools Format = "gperftools-heapprofile"
	// TcmallocSample is tcmalloc's sampled heap (GetHeapSample).
	TcmallocSample Format = "tcmalloc-heap_v2"
	// GoLegacy is Go's legacy text heap profile (debug=1).
	GoLegacy Format = "go-legacy-heap"
	// Jemalloc is a jemalloc prof.dump heap profile.
	Jemalloc Format = "jemalloc-heap_v2"
)

// Size limits: a profile is read whole, so refuse what would not fit.
const (
	maxFileBytes    = 1 << 30
	maxUnzipBytes   = 4 << 30
	maxLineBytes    = 16 << 20
	profileTypeHint = "a heap profile from Go's runtime/pprof, gperftools/tcmalloc (HEAPPROFILE) or jemalloc (prof.dump)"
)

// Profile is one heap profile, read into pprof's model with its values
// un-sampled.
type Profile struct {
	Path   string
	Format Format
	P      *profile.Profile
	// SampleRate is the mean number of bytes allocated between samples: 1
	// when every allocation was recorded.
	SampleRate int64
	// HeaderInUseBytes is the in-use total a legacy text profile's header
	// states, as sampled (not un-sampled); -1 for other formats.
	HeaderInUseBytes int64
	// ListedInUseBytes is the sum of the listed stacks' in-use bytes, as
	// sampled, for comparison with HeaderInUseBytes; -1 with no header.
	ListedInUseBytes int64
	// Notices are what reading the profile noticed.
	Notices []accounting.Finding

	space   int // index of inuse_space in P.SampleType
	objects int // index of inuse_objects, -1 if none
	alloc   int // index of alloc_space, -1 if none
}

// Read reads the heap profile at path.
func Read(path string) (*Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxFileBytes {
		return nil, errorf(path, "", "larger than %d bytes: not read", maxFileBytes)
	}
	return Parse(path, data)
}

// Parse reads a heap profile from data; name is used in errors.
func Parse(name string, data []byte) (*Profile, error) {
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		var err error
		if data, err = gunzip(data); err != nil {
			return nil, errorf(name, "gzip", "%v", err)
		}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errorf(name, "", "empty file: not a heap profile")
	}
	var (
		p   *Profile
		err error
	)
	text := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case bytes.HasPrefix(text, []byte("heap_v2/")):
		p, err = parseJemalloc(text)
	case bytes.HasPrefix(text, []byte("heap profile:")):
		p, err = parseLegacy(text)
	default:
		p, err = parseProto(data)
	}
	if err != nil {
		format := ""
		if p != nil {
			format = string(p.Format)
		}
		return nil, errorf(name, format, "%v", err)
	}
	p.Path = name
	if err := p.selectTypes(); err != nil {
		return nil, errorf(name, string(p.Format), "%v", err)
	}
	p.notice()
	return p, nil
}

// errorf makes a FormatError naming the file and format.
func errorf(path, format, msg string, args ...any) error {
	e := accounting.Errorf(format, -1, "", msg, args...)
	e.Path = path
	return e
}

func gunzip(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxUnzipBytes+1))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("the compressed data ends early: the file is truncated")
		}
		return nil, err
	}
	if len(out) > maxUnzipBytes {
		return nil, fmt.Errorf("decompresses to more than %d bytes: not read", int64(maxUnzipBytes))
	}
	return out, nil
}

// parseProto reads profile.proto. Go writes heap values already un-sampled,
// with the sampling rate (runtime.MemProfileRate) as the period.
func parseProto(data []byte) (*Profile, error) {
	pp, err := safely(func() (*profile.Profile, error) { return profile.ParseUncompressed(data) })
	if err != nil || len(pp.SampleType) == 0 {
		// Some other text or binary: let pprof name it if it can (a CPU
		// or goroutine profile), else say what was expected.
		if other, err2 := safely(func() (*profile.Profile, error) { return profile.ParseData(data) }); err2 == nil && len(other.SampleType) > 0 {
			return nil, fmt.Errorf("not a heap profile: its sample types are %s; qinsaudit needs %s", types(other), profileTypeHint)
		}
		return nil, fmt.Errorf("unknown profile format: not %s", profileTypeHint)
	}
	if err := pp.CheckValid(); err != nil {
		return &Profile{Format: Proto}, fmt.Errorf("malformed profile: %v", err)
	}
	p := &Profile{Format: Proto, P: pp, SampleRate: 1, HeaderInUseBytes: -1, ListedInUseBytes: -1}
	if pt := pp.PeriodType; pt != nil && pt.Unit == "bytes" && pp.Period > 1 {
		p.SampleRate = pp.Period
	}
	return p, nil
}

// safely runs a pprof parser, turning a panic on malformed input into an
// error: a bad file must never crash qinsaudit.
func safely(parse func() (*profile.Profile, error)) (p *profile.Profile, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("malformed profile (the parser failed: %v)", r)
		}
	}()
	return parse()
}

// selectTypes finds the in-use sample types by name.
func (p *Profile) selectTypes() error {
	p.space, p.objects, p.alloc = -1, -1, -1
	for i, st := range p.P.SampleType {
		switch {
		case st.Type == "inuse_space" && st.Unit == "bytes":
			p.space = i
		case st.Type == "inuse_objects":
			p.objects = i
		case st.Type == "alloc_space" && st.Unit == "bytes":
			p.alloc = i
		}
	}
	if p.space < 0 && p.Format != Proto {
		// pprof names a legacy heap's columns objects/space when its
		// in-use and allocated totals are equal: nothing was freed, so
		// space is the in-use space.
		for i, st := range p.P.SampleType {
			switch st.Type {
			case "space":
				p.space = i
			case "objects":
				p.objects = i
			}
		}
	}
	if p.space < 0 {
		return fmt.Errorf("no in-use values: the profile has no inuse_space sample type in bytes (it has %s); qinsaudit needs %s", types(p.P), profileTypeHint)
	}
	return nil
}

func types(p *profile.Profile) string {
	var s []string
	for _, st := range p.SampleType {
		s = append(s, st.Type+"/"+st.Unit)
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// notice records what would mislead: a truncated dump, no in-use values.
func (p *Profile) notice() {
	if p.HeaderInUseBytes >= 0 && p.HeaderInUseBytes > p.ListedInUseBytes {
		p.Notices = append(p.Notices, accounting.Finding{Kind: accounting.HeapProfileTruncated, Severity: accounting.Warning,
			Bytes: p.HeaderInUseBytes - p.ListedInUseBytes,
			Message: fmt.Sprintf("%s: the header counts %s bytes in use but the listed stacks only %s (gperftools writes at most 1 MiB per dump and drops the smallest stacks): "+
				"totals use the header; --focus sees only the listed stacks", p.Path, humanize.Comma(p.HeaderInUseBytes), humanize.Comma(p.ListedInUseBytes))})
	}
	var inuse, alloc int64
	for _, s := range p.P.Sample {
		inuse += s.Value[p.space]
		if p.alloc >= 0 {
			alloc += s.Value[p.alloc]
		}
	}
	if inuse == 0 && p.HeaderInUseBytes <= 0 {
		msg := fmt.Sprintf("%s: the profile holds no in-use bytes", p.Path)
		if alloc > 0 {
			msg += fmt.Sprintf(" (only allocations: %s bytes)", humanize.Comma(alloc))
		}
		msg += "; a Go heap profile shows the heap as of the last garbage collection: call runtime.GC() before writing it"
		p.Notices = append(p.Notices, accounting.Finding{Kind: accounting.HeapProfileNoInUse, Severity: accounting.Warning, Message: msg})
	}
}
