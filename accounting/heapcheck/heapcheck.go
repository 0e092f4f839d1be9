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
package heapcheck

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/google/pprof/profile"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/safeio"
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
	maxLineBytes    = 16 << 20
	profileTypeHint = "a heap profile from Go's runtime/pprof, gperftools/tcmalloc (HEAPPROFILE) or jemalloc (prof.dump)"
	// maxBytes bounds every byte or object count a profile holds and every
	// sum of them: far above any real heap, far below where int64
	// arithmetic overflows.
	maxBytes = 1 << 62
	// sniffBytes is how much of a gzipped stream is decompressed to tell
	// whether it is a profile at all before the rest is.
	sniffBytes = 512
)

// maxUnzipBytes is the hard cap on what a gzipped profile decompresses to.
// The largest real heap profiles (jemalloc's, with every stack of a big
// process) are tens of MiB; a variable so that the tests can lower it.
var maxUnzipBytes int64 = 512 << 20

// Bounds derived from the size of the file as read (compressed or not), so
// that parsing memory follows the input: pprof's parsers take some 35 bytes
// of heap per byte of sample lines and a few hundred per sample, so a
// 254 KB gzip of 100 MiB of tcmalloc lines took 3.5 GB.
const (
	// unzipRatio: a gzipped profile may decompress to unzipRatio times its
	// size (real ones compress 3 to 25 times: hex addresses, maps), at
	// least minUnzipBytes, at most maxUnzipBytes.
	unzipRatio    = 64
	minUnzipBytes = 16 << 20
	// A profile may hold one stack (a sample; in a proto also a location)
	// per bytesPerRecord bytes of the file (per gzBytesPerRecord bytes of a
	// gzipped one), at least minRecords: a real stack takes 500 bytes of
	// text or more, 24 or more gzipped (the committed tcmalloc, jemalloc
	// and Go profiles), while pprof takes some 700 bytes of heap for a
	// one-frame sample.
	bytesPerRecord   = 64
	gzBytesPerRecord = 16
	minRecords       = 1 << 16
)

// unzipLimit is the decompressed size allowed a gzipped file of n bytes.
func unzipLimit(n int) int64 {
	return min(maxUnzipBytes, max(minUnzipBytes, unzipRatio*int64(n)))
}

// recordLimit is the number of stacks allowed a profile file of n bytes,
// gzipped or not.
func recordLimit(n int, gzipped bool) int {
	if gzipped {
		return max(minRecords, n/gzBytesPerRecord)
	}
	return max(minRecords, n/bytesPerRecord)
}

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
	// Only a regular file, never blocking on a FIFO, at most maxFileBytes.
	data, err := safeio.ReadFileLimit(path, maxFileBytes)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse reads a heap profile from data; name is used in errors. What it
// decompresses to and the stacks it holds are bounded by len(data) (see
// unzipLimit and recordLimit): past a bound it returns an error naming the
// bound, before pprof parses anything.
func Parse(name string, data []byte) (*Profile, error) {
	gzipped := len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
	records, size := recordLimit(len(data), gzipped), len(data)
	if gzipped {
		var err error
		if data, err = gunzip(data, unzipLimit(len(data))); err != nil {
			if errors.Is(err, errNotProfile) {
				return nil, errorf(name, "", "unknown profile format: the file decompresses to something that is not %s", profileTypeHint)
			}
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
	if n := countRecords(data, isHeapText(text)); n > records {
		per := bytesPerRecord
		if gzipped {
			per = gzBytesPerRecord
		}
		return nil, errorf(name, "", "more than %d stacks (the limit for a file of %d bytes: one per %d bytes, at least %d): not read",
			records, size, per, minRecords)
	}
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
	if err := p.checkValues(); err != nil {
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

// errNotProfile: a gzipped stream whose first bytes are no profile format.
var errNotProfile = errors.New("not a profile")

// gunzip decompresses data. Its first sniffBytes are decompressed first and
// must look like a profile (see looksLikeProfile): a small gzip of zeros
// would otherwise make every byte of its expansion be allocated before the
// format is checked.
func gunzip(data []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	truncated := func(err error) error {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return errors.New("the compressed data ends early: the file is truncated")
		}
		return err
	}
	head := make([]byte, 0, sniffBytes)
	for len(head) < sniffBytes {
		n, err := zr.Read(head[len(head):sniffBytes])
		head = head[:len(head)+n]
		if err == io.EOF {
			return head, nil // the whole stream
		}
		if err != nil {
			return nil, truncated(err)
		}
	}
	if !looksLikeProfile(head) {
		return nil, errNotProfile
	}
	out, err := io.ReadAll(io.LimitReader(io.MultiReader(bytes.NewReader(head), zr), limit+1))
	if err != nil {
		return nil, truncated(err)
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("decompresses to more than %d bytes (the limit for %d compressed bytes: %d times, at least %d, at most %d): not read",
			limit, len(data), unzipRatio, minUnzipBytes, maxUnzipBytes)
	}
	return out, nil
}

// countRecords counts, without allocating, an upper bound of the stacks in
// an uncompressed profile: in text, the '@' that starts or ends each stack;
// in a proto, the top-level samples and locations. A proto it cannot walk
// counts what it walked; pprof refuses the rest.
func countRecords(data []byte, text bool) int {
	if text {
		return bytes.Count(data, []byte("@"))
	}
	n := 0
	for i := 0; i < len(data); {
		key, k := binary.Uvarint(data[i:])
		if k <= 0 {
			return n
		}
		i += k
		switch key & 7 {
		case 0:
			if _, k = binary.Uvarint(data[i:]); k <= 0 {
				return n
			}
			i += k
		case 1:
			i += 8
		case 5:
			i += 4
		case 2:
			l, k := binary.Uvarint(data[i:])
			if k <= 0 || l > uint64(len(data)-i-k) {
				return n
			}
			i += k + int(l)
			if f := key >> 3; f == 2 || f == 4 { // Profile.sample, Profile.location
				n++
			}
		default:
			return n
		}
	}
	return n
}

// looksLikeProfile reports whether head, the start of a file, can start a
// profile pprof or this package reads: a legacy text profile, a legacy
// binary CPU profile, or profile.proto, whose first byte is the key of one
// of its fields (1 to 15, varint or length-delimited).
func looksLikeProfile(head []byte) bool {
	if isHeapText(head) || isLegacy(head) {
		return true
	}
	if len(head) == 0 || head[0]&0x80 != 0 {
		return false
	}
	field, wire := head[0]>>3, head[0]&7
	return field >= 1 && field <= 15 && (wire == 0 || wire == 2)
}

// isHeapText reports whether data starts like a legacy heap profile or a
// jemalloc one.
func isHeapText(data []byte) bool {
	text := bytes.TrimLeft(data, " \t\r\n")
	return bytes.HasPrefix(text, []byte("heap_v2/")) || bytes.HasPrefix(text, []byte("heap profile:"))
}

// goCountRE is the header of Go's legacy goroutine and threadcreate
// profiles.
var goCountRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\A\S+ profile: total \d+`) })

// isLegacy reports whether data starts like one of the legacy profiles other
// than heap profiles that pprof reads (contention, mutex, thread, Java, Go
// counts, binary CPU), which it can name when they are not heap profiles.
func isLegacy(data []byte) bool {
	text := bytes.TrimLeft(data, " \t\r\n")
	if bytes.HasPrefix(text, []byte("---")) || bytes.HasPrefix(text, []byte("#")) || goCountRE().Match(text) {
		return true
	}
	// The binary CPU profile's header: the words 0, 3, 0 or 1, in 4 or 8
	// bytes, either byte order.
	for _, w := range []int{4, 8} {
		if len(data) < 3*w {
			continue
		}
		for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			word := func(i int) uint64 {
				if w == 4 {
					return uint64(order.Uint32(data[i*4:]))
				}
				return order.Uint64(data[i*8:])
			}
			if word(0) == 0 && word(1) == 3 && word(2) <= 1 {
				return true
			}
		}
	}
	return false
}

// parseProto reads profile.proto. Go writes heap values already un-sampled,
// with the sampling rate (runtime.MemProfileRate) as the period.
func parseProto(data []byte) (*Profile, error) {
	pp, err := safely(func() (*profile.Profile, error) { return profile.ParseUncompressed(data) })
	if err != nil || len(pp.SampleType) == 0 {
		// A legacy profile of another kind (CPU, contention, goroutine):
		// let pprof name it. Anything else is not a profile pprof reads,
		// and parsing it again would only fail again.
		if err != nil && isLegacy(data) {
			if other, err2 := safely(func() (*profile.Profile, error) { return profile.ParseData(data) }); err2 == nil && len(other.SampleType) > 0 {
				return nil, fmt.Errorf("not a heap profile: its sample types are %s; qinsaudit needs %s", types(other), profileTypeHint)
			}
		}
		return nil, fmt.Errorf("unknown profile format: not %s", profileTypeHint)
	}
	if err := pp.CheckValid(); err != nil {
		return &Profile{Format: Proto}, fmt.Errorf("malformed profile: %v", err)
	}
	if pp.Period < 0 {
		return &Profile{Format: Proto}, fmt.Errorf("sampling period %d: negative", pp.Period)
	}
	// A period of 0 or 1 is taken as exact: Go writes its values un-sampled
	// whatever the rate, and other tools write 0 for "not sampled".
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

// checkValues refuses byte and object counts beyond maxBytes, alone or
// summed over the stacks, so that no sum of them overflows: a profile whose
// stacks wrapped around int64 could add up to any figure at all.
func (p *Profile) checkValues() error {
	for _, idx := range []int{p.space, p.objects, p.alloc} {
		if idx < 0 {
			continue
		}
		st := p.P.SampleType[idx]
		var total int64
		for i, s := range p.P.Sample {
			v := s.Value[idx]
			if v > maxBytes || v < -maxBytes {
				return fmt.Errorf("sample %d: %s %d out of range (more than 2^62)", i+1, st.Type, v)
			}
			if total > maxBytes-accounting.Abs(v) {
				return fmt.Errorf("the stacks' %s sum to more than 2^62 %s: not a real heap", st.Type, st.Unit)
			}
			total += accounting.Abs(v)
		}
	}
	return nil
}

// notice records what would mislead: a truncated dump, no in-use values.
func (p *Profile) notice() {
	if p.HeaderInUseBytes >= 0 && p.HeaderInUseBytes > p.ListedInUseBytes {
		p.Notices = append(p.Notices, accounting.Finding{Kind: accounting.HeapProfileTruncated, Severity: accounting.Warning,
			Bytes: p.HeaderInUseBytes - p.ListedInUseBytes,
			Message: fmt.Sprintf("%s: the header counts %s bytes in use but the listed stacks only %s (gperftools writes at most 1 MiB per dump and drops the smallest stacks): "+
				"totals use the header; --focus sees only the listed stacks", p.Path, accounting.Comma(p.HeaderInUseBytes), accounting.Comma(p.ListedInUseBytes))})
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
			msg += fmt.Sprintf(" (only allocations: %s bytes)", accounting.Comma(alloc))
		}
		switch p.Format {
		case Proto, GoLegacy:
			msg += "; a Go heap profile shows the heap as of the last garbage collection: call runtime.GC() before writing it"
		case Jemalloc:
			msg += "; normal for a base taken when jemalloc's profiling had just been activated (prof.active); otherwise activate it (MALLOC_CONF=prof:true) before the weights are loaded"
		default:
			msg += "; normal for a base taken right after gperftools' HeapProfilerStart; otherwise start the profiler before the weights are loaded"
		}
		p.Notices = append(p.Notices, accounting.Finding{Kind: accounting.HeapProfileNoInUse, Severity: accounting.Warning, Message: msg})
	}
}
