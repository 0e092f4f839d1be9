package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultFirstRange is the first ranged GET of a file nothing more is
// known of: most safetensors headers and the start of a GGUF fit.
const DefaultFirstRange = 64 << 10

// SeekRange is the read-ahead of a read away from the last range.
const SeekRange = 4 << 10

// maxGrow caps the geometric read-ahead.
const maxGrow = 64 << 20

// File is an io.ReaderAt over one remote file. A read of bytes not yet
// fetched sends one ranged GET for the missing bytes, extended to the
// read-ahead: the first range (a hint, else DefaultFirstRange); then, for
// a file read on in pieces (a GGUF header, a zip's central directory), a
// range twice the previous one each time the reads carry on where the
// last range ended (or up to SeekRange past it), so that a reader's many
// small reads cost a few requests; a read elsewhere (a seek: a zip
// record's local header) asks for SeekRange and starts growing again from
// there. A .safetensors file
// is read "exactly": its header arrives in one read, so after the first
// range only the bytes missing from it are asked for. Bytes are fetched
// once; a read never refetches what is held.
type File struct {
	c         *Client
	name, url string
	size      int64        // -1 until a plain URL's first answer
	first     atomic.Int64 // the first range's hint; see firstRange
	exact     bool
	repo, rev string

	mu      sync.Mutex
	segs    []seg // sorted, disjoint, not adjacent
	fetches int
	grow    int64
	lastEnd int64 // end of the last range fetched
	// direct is where the Hub's resolve redirected the last GET (a signed
	// CDN address of the content): later ranges go straight there.
	direct   string
	cacheKey string
	dirty    bool
}

type seg struct {
	off  int64
	data []byte
}

func (s seg) end() int64 { return s.off + int64(len(s.data)) }

// Name is the file's path in its listing.
func (f *File) Name() string { return f.name }

// Size is the file's size from the listing.
func (f *File) Size() int64 { return f.size }

// ReadAt reads len(p) bytes at off, fetching what is missing.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: read at negative offset %d", f.url, off)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if off >= f.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), f.size)
	if err := f.ensure(context.Background(), off, end); err != nil {
		return 0, err
	}
	n := f.copyOut(p[:end-off], off)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// ensure fetches whatever of [off, end) is not held.
func (f *File) ensure(ctx context.Context, off, end int64) error {
	pos := off
	for pos < end {
		i := sort.Search(len(f.segs), func(i int) bool { return f.segs[i].end() > pos })
		if i < len(f.segs) && f.segs[i].off <= pos {
			pos = f.segs[i].end()
			continue
		}
		gapEnd := f.size
		if i < len(f.segs) {
			gapEnd = f.segs[i].off
		}
		n := end - pos
		onward := f.carriesOn(pos)
		switch {
		case f.fetches == 0 && len(f.segs) == 0:
			n = max(n, f.firstRange())
		case f.exact:
		case onward:
			n = max(n, f.grow)
		default:
			n = max(n, SeekRange)
		}
		fe := min(pos+n, gapEnd)
		if err := f.fetch(ctx, pos, fe); err != nil {
			return err
		}
		pos = fe
	}
	return nil
}

// carriesOn reports whether a read at pos carries on from the last range:
// at its end, or a few bytes on (a reader skipping a small field).
func (f *File) carriesOn(pos int64) bool {
	return f.fetches > 0 && pos >= f.lastEnd && pos-f.lastEnd <= SeekRange
}

func (f *File) firstRange() int64 {
	if n := f.first.Load(); n > 0 {
		return n
	}
	return DefaultFirstRange
}

// raiseFirst raises the first range's hint to n; read when the first
// range is sent, it changes nothing after.
func (f *File) raiseFirst(n int64) {
	for {
		old := f.first.Load()
		if n <= old || f.first.CompareAndSwap(old, n) {
			return
		}
	}
}

// copyOut copies held bytes at off into p; it stops at the first byte not
// held.
func (f *File) copyOut(p []byte, off int64) int {
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		i := sort.Search(len(f.segs), func(i int) bool { return f.segs[i].end() > pos })
		if i == len(f.segs) || f.segs[i].off > pos {
			break
		}
		n += copy(p[n:], f.segs[i].data[pos-f.segs[i].off:])
	}
	return n
}

// prefetch fetches the first range unless bytes are held already.
func (f *File) prefetch(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.segs) > 0 || f.size == 0 {
		return nil
	}
	return f.ensure(ctx, 0, min(f.size, 1))
}

// probe is a plain URL's first read: its ranged GET also tells the size.
func (f *File) probe(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetch(ctx, 0, DefaultFirstRange)
}

// fetch GETs bytes [start, end) and keeps them. The answer must be a 206
// for exactly that range of a file of the listed size; a 200 (the whole
// file) is cancelled unread.
func (f *File) fetch(ctx context.Context, start, end int64) error {
	rng := fmt.Sprintf("bytes=%d-%d", start, end-1)
	u := cmpOr(f.direct, f.url)
	resp, cancel, err := f.c.do(ctx, request{url: u, rng: rng, repo: f.repo, rev: f.rev, path: f.name})
	var he *HTTPError
	if f.direct != "" && errors.As(err, &he) && he.Status < 500 {
		// The signed address may have expired: resolve again.
		f.direct = ""
		u = f.url
		resp, cancel, err = f.c.do(ctx, request{url: u, rng: rng, repo: f.repo, rev: f.rev, path: f.name})
	}
	if err != nil {
		return err
	}
	if final := resp.Request.URL.String(); final != u {
		f.direct = final
	}
	defer cancel()
	defer resp.Body.Close()
	where := fmt.Sprintf("%s (bytes %d-%d)", f.url, start, end-1)
	if resp.StatusCode != http.StatusPartialContent {
		return fmt.Errorf("%s: the server answered HTTP %d, not 206, to a ranged GET: it does not serve byte ranges; the transfer was cancelled unread (qinsaudit reads headers only, never a whole model file)",
			where, resp.StatusCode)
	}
	a, b, total, err := parseContentRange(resp.Header.Get("Content-Range"))
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if f.size < 0 { // a plain URL's first answer: the size is the total
		f.size = total
		end = min(end, total)
	}
	if total != f.size {
		return fmt.Errorf("%s: Content-Range says the file has %d bytes; the listing says %d", where, total, f.size)
	}
	if a != start || b != end-1 {
		return fmt.Errorf("%s: the server sent bytes %d-%d instead", where, a, b)
	}
	buf := make([]byte, end-start)
	n, err := io.ReadFull(resp.Body, buf)
	f.c.bytes.Add(int64(n))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: short answer: %d of %d bytes received", where, n, end-start)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s: %d of %d bytes received, then nothing within %v", where, n, end-start, f.c.cfg.Timeout)
		}
		return fmt.Errorf("%s: %d of %d bytes received: %w", where, n, end-start, err)
	}
	if f.carriesOn(start) {
		f.grow = min(2*f.grow, maxGrow)
	} else {
		f.grow = 2 * (end - start)
	}
	f.lastEnd = end
	f.fetches++
	f.insert(seg{start, buf})
	f.dirty = true
	return nil
}

// insert adds s (disjoint from every held segment) and merges neighbours.
func (f *File) insert(s seg) {
	i := sort.Search(len(f.segs), func(i int) bool { return f.segs[i].off > s.off })
	f.segs = append(f.segs, seg{})
	copy(f.segs[i+1:], f.segs[i:])
	f.segs[i] = s
	if i+1 < len(f.segs) && f.segs[i].end() == f.segs[i+1].off {
		f.segs[i].data = append(f.segs[i].data, f.segs[i+1].data...)
		f.segs = append(f.segs[:i+1], f.segs[i+2:]...)
	}
	if i > 0 && f.segs[i-1].end() == f.segs[i].off {
		f.segs[i-1].data = append(f.segs[i-1].data, f.segs[i].data...)
		f.segs = append(f.segs[:i], f.segs[i+1:]...)
	}
}

// parseContentRange reads "bytes a-b/total".
func parseContentRange(v string) (a, b, total int64, err error) {
	bad := fmt.Errorf("bad or missing Content-Range %q", v)
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, 0, bad
	}
	r, t, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, bad
	}
	as, bs, ok := strings.Cut(r, "-")
	if !ok {
		return 0, 0, 0, bad
	}
	if a, err = strconv.ParseInt(as, 10, 64); err != nil {
		return 0, 0, 0, bad
	}
	if b, err = strconv.ParseInt(bs, 10, 64); err != nil {
		return 0, 0, 0, bad
	}
	if total, err = strconv.ParseInt(t, 10, 64); err != nil { // "*" (unknown) is refused too
		return 0, 0, 0, bad
	}
	if a < 0 || b < a || b >= total {
		return 0, 0, 0, bad
	}
	return a, b, total, nil
}
