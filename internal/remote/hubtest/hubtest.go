// Package hubtest is a loopback imitation of the Hugging Face Hub for
// tests: the revision and tree listing APIs, /resolve/ with its 302 to a
// second "CDN" server for LFS files, 206 answers with Content-Range, the
// Hub's X-Error-Code errors, and injectable faults (429 with Retry-After,
// 5xx, a server that ignores Range, a short body, a stalled connection, a
// wrong Content-Range total) and latency. Every request is logged.
package hubtest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is the imitation: Hub answers the API and /resolve/, CDN serves
// LFS blobs it redirects to.
type Server struct {
	Hub, CDN *httptest.Server
	// Token is the one token the Hub accepts for private and gated repos.
	Token string
	// PageSize is the tree listing's entries per page (default 1000).
	PageSize int
	// Latency is slept at the start of every request, on both hosts.
	Latency time.Duration

	mu       sync.Mutex
	repos    map[string]*Repo
	blobs    map[string]blob // content id -> content
	faults   []*Fault
	log      []Request
	inflight map[string]int
	peak     map[string]int
	stop     chan struct{}
}

// Repo is a model repository at one commit.
type Repo struct {
	Name   string
	Commit string
	Files  map[string][]byte
	// Private and Gated repos need the server's Token.
	Private, Gated bool
	// NoSizes leaves sizes out of the revision listing, so that a client
	// must list the tree.
	NoSizes bool
	// Sizes makes a file larger than its bytes in Files: zeros follow them
	// up to this size, served but never held (a shard of gigabytes).
	Sizes map[string]int64
}

// blob is a file's content: data, then zeros up to size.
type blob struct {
	data []byte
	size int64
}

func (r *Repo) blob(name string) (blob, bool) {
	d, ok := r.Files[name]
	size := int64(len(d))
	if n, ok := r.Sizes[name]; ok && n > size {
		size = n
	}
	return blob{d, size}, ok
}

// id is the blob's content id: the sha256 of its bytes (of the bytes and
// the size, for a blob with zeros the server makes up).
func (b blob) id() string {
	if b.size == int64(len(b.data)) {
		return sha256Hex(b.data)
	}
	return sha256Hex(fmt.Appendf(append([]byte(nil), b.data...), "\x00%d", b.size))
}

// Request is one logged request.
type Request struct {
	Host   string // "hub" or "cdn"
	Method string
	Path   string
	Query  string
	Range  string
	Auth   string
	UA     string
	Status int
	Bytes  int64 // body bytes written
	Start  time.Time
	End    time.Time
}

// Kind is a fault.
type Kind int

const (
	// Status answers Fault.Status with Fault.Code and Fault.RetryAfter.
	Status Kind = iota
	// IgnoreRange answers a ranged GET with 200 and the whole file.
	IgnoreRange
	// ShortBody sends half the asked bytes of a 206 and closes.
	ShortBody
	// Stall sends nothing until the client gives up.
	Stall
	// WrongTotal says the file is one byte longer in Content-Range.
	WrongTotal
	// StallBody sends half the asked bytes of a 206, then nothing until
	// the client gives up.
	StallBody
	// Drop closes the connection without an answer.
	Drop
)

// Fault is an injected misbehaviour for requests whose host and path match.
type Fault struct {
	Host       string // "hub", "cdn" or "" for both
	Path       string // a substring of the path; "" for any
	Count      int    // requests it hits; 0 for all
	Kind       Kind
	Status     int
	Code       string
	RetryAfter string
	hits       int
}

// New starts the two servers; t's cleanup closes them.
func New(t testing.TB) *Server {
	s := &Server{repos: map[string]*Repo{}, blobs: map[string]blob{}, inflight: map[string]int{},
		peak: map[string]int{}, stop: make(chan struct{}), PageSize: 1000}
	s.Hub = httptest.NewServer(s.wrap("hub", s.hub))
	s.CDN = httptest.NewServer(s.wrap("cdn", s.cdn))
	t.Cleanup(func() {
		close(s.stop)
		s.Hub.Close()
		s.CDN.Close()
	})
	return s
}

// Add serves files as the repo name ("org/repo") at a commit derived from
// its content.
func (s *Server) Add(name string, files map[string][]byte) *Repo {
	return s.AddSized(name, files, nil)
}

// AddSized is Add with files longer than their bytes: zeros follow them
// up to sizes[name].
func (s *Server) AddSized(name string, files map[string][]byte, sizes map[string]int64) *Repo {
	h := sha1.New()
	h.Write([]byte(name))
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "\x00%s\x00%d\x00%d\x00", n, len(files[n]), sizes[n])
		h.Write(files[n])
	}
	r := &Repo{Name: name, Commit: hex.EncodeToString(h.Sum(nil)), Files: files, Sizes: sizes}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[name] = r
	for n := range files {
		b, _ := r.blob(n)
		s.blobs[b.id()] = b
	}
	return r
}

// AddDir serves the regular files under dir (recursively, names relative
// to it with "/") as the repo name.
func (s *Server) AddDir(t testing.TB, name, dir string) *Repo {
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s.Add(name, files)
}

// Inject adds a fault.
func (s *Server) Inject(f *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// Log returns the requests so far. It first waits (up to a second) for
// the handlers in flight to finish: a client can have read a whole answer
// before its handler has returned and logged it.
func (s *Server) Log() []Request {
	for deadline := time.Now().Add(time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		busy := s.inflight["hub"]+s.inflight["cdn"] > 0
		if !busy || time.Now().After(deadline) {
			defer s.mu.Unlock()
			return append([]Request(nil), s.log...)
		}
		s.mu.Unlock()
	}
}

// Reset clears the log, the faults and the peaks.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log, s.faults = nil, nil
	s.peak = map[string]int{}
}

// Peak is the most requests host ("hub" or "cdn") had in flight at once.
func (s *Server) Peak(host string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak[host]
}

// IsLFS says which files are served through the CDN, as the Hub does
// for files tracked by LFS or Xet: model weights.
func IsLFS(name string) bool {
	for _, ext := range []string{".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ptl", ".jit", ".pkl"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

type logWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *logWriter) WriteHeader(c int) {
	if w.status == 0 {
		w.status = c
	}
	w.ResponseWriter.WriteHeader(c)
}

func (w *logWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *logWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) wrap(host string, h func(w http.ResponseWriter, r *http.Request, f *Fault)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.mu.Lock()
		s.inflight[host]++
		s.peak[host] = max(s.peak[host], s.inflight[host])
		var fault *Fault
		for _, f := range s.faults {
			if (f.Host == "" || f.Host == host) && strings.Contains(r.URL.Path, f.Path) && (f.Count == 0 || f.hits < f.Count) {
				f.hits++
				fault = f
				break
			}
		}
		lat := s.Latency
		s.mu.Unlock()
		if lat > 0 {
			time.Sleep(lat)
		}
		lw := &logWriter{ResponseWriter: w}
		switch {
		case fault != nil && fault.Kind == Status:
			if fault.RetryAfter != "" {
				lw.Header().Set("Retry-After", fault.RetryAfter)
			}
			if fault.Code != "" {
				lw.Header().Set("X-Error-Code", fault.Code)
				lw.Header().Set("X-Error-Message", "injected "+fault.Code)
			}
			lw.WriteHeader(fault.Status)
		case fault != nil && fault.Kind == Drop:
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		case fault != nil && fault.Kind == Stall:
			select {
			case <-r.Context().Done():
			case <-s.stop:
			}
		default:
			h(lw, r, fault)
		}
		s.mu.Lock()
		s.inflight[host]--
		s.log = append(s.log, Request{Host: host, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			Range: r.Header.Get("Range"), Auth: r.Header.Get("Authorization"), UA: r.Header.Get("User-Agent"),
			Status: lw.status, Bytes: lw.n, Start: start, End: time.Now()})
		s.mu.Unlock()
	})
}

func hubError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Error-Code", code)
	w.Header().Set("X-Error-Message", msg)
	http.Error(w, msg, status)
}

// access finds the repo and checks the token as the Hub does: an unknown
// or private repo without the token is RepoNotFound (401 without a token),
// a gated one GatedRepo.
func (s *Server) access(w http.ResponseWriter, r *http.Request, name string) *Repo {
	s.mu.Lock()
	repo := s.repos[name]
	s.mu.Unlock()
	auth := r.Header.Get("Authorization")
	ok := s.Token != "" && auth == "Bearer "+s.Token
	switch {
	case repo == nil || (repo.Private && !ok):
		st := http.StatusNotFound
		if auth == "" {
			st = http.StatusUnauthorized
		}
		hubError(w, st, "RepoNotFound", "Repository Not Found for url: "+r.URL.String())
		return nil
	case repo.Gated && !ok:
		st := http.StatusForbidden
		if auth == "" {
			st = http.StatusUnauthorized
		}
		hubError(w, st, "GatedRepo", "Access to model "+name+" is restricted.")
		return nil
	}
	return repo
}

func (s *Server) revision(w http.ResponseWriter, repo *Repo, rev string) bool {
	if rev == "main" || rev == repo.Commit {
		return true
	}
	hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
	return false
}

// hub serves /api/models/ORG/REPO/revision/REV, /api/models/ORG/REPO/tree/REV
// and /ORG/REPO/resolve/REV/PATH.
func (s *Server) hub(w http.ResponseWriter, r *http.Request, fault *Fault) {
	p := strings.Trim(r.URL.Path, "/")
	segs := strings.Split(p, "/")
	switch {
	case len(segs) >= 6 && segs[0] == "api" && segs[1] == "models" && segs[4] == "revision":
		repo := s.access(w, r, segs[2]+"/"+segs[3])
		if repo == nil {
			return
		}
		rev, _ := url.PathUnescape(strings.Join(segs[5:], "/"))
		if !s.revision(w, repo, rev) {
			return
		}
		s.revisionInfo(w, r, repo)
	case len(segs) >= 6 && segs[0] == "api" && segs[1] == "models" && segs[4] == "tree":
		repo := s.access(w, r, segs[2]+"/"+segs[3])
		if repo == nil || !s.revision(w, repo, segs[5]) {
			return
		}
		s.tree(w, r, repo, strings.Join(segs[6:], "/"))
	case len(segs) >= 5 && segs[2] == "resolve":
		repo := s.access(w, r, segs[0]+"/"+segs[1])
		if repo == nil {
			return
		}
		rev, _ := url.PathUnescape(segs[3])
		if !s.revision(w, repo, rev) {
			return
		}
		name, _ := url.PathUnescape(strings.Join(segs[4:], "/"))
		data, ok := repo.blob(name)
		if !ok {
			hubError(w, http.StatusNotFound, "EntryNotFound", name+" does not exist on \""+rev+"\"")
			return
		}
		sum := data.id()
		w.Header().Set("X-Repo-Commit", repo.Commit)
		if IsLFS(name) {
			w.Header().Set("X-Linked-Size", strconv.FormatInt(data.size, 10))
			w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
			w.Header().Set("Location", s.CDN.URL+"/blobs/"+sum+"?X-Amz-Signature=test&file="+url.QueryEscape(name))
			w.WriteHeader(http.StatusFound)
			return
		}
		w.Header().Set("ETag", `"`+gitBlobID(data.data)+`"`)
		serveBytes(w, r, data, fault)
	default:
		http.NotFound(w, r)
	}
}

// cdn serves /blobs/SHA256; it refuses a request carrying a token, as a
// CDN with signed URLs does.
func (s *Server) cdn(w http.ResponseWriter, r *http.Request, fault *Fault) {
	if r.Header.Get("Authorization") != "" {
		http.Error(w, "Only one auth mechanism allowed; the token must not reach the CDN", http.StatusBadRequest)
		return
	}
	sum, ok := strings.CutPrefix(r.URL.Path, "/blobs/")
	s.mu.Lock()
	data, found := s.blobs[sum]
	s.mu.Unlock()
	if !ok || !found || r.URL.Query().Get("X-Amz-Signature") == "" {
		http.Error(w, "AccessDenied", http.StatusForbidden)
		return
	}
	w.Header().Set("ETag", `"`+sum+`"`)
	serveBytes(w, r, data, fault)
}

// serveBytes answers a GET or HEAD of data: 206 for a single "bytes=a-b"
// or "bytes=a-" range, 200 without one, with the faults that change the
// body.
func serveBytes(w http.ResponseWriter, r *http.Request, data blob, fault *Fault) {
	defer func() {
		if fault != nil && fault.Kind == StallBody {
			<-r.Context().Done()
		}
	}()
	kind := Kind(-1)
	if fault != nil {
		kind = fault.Kind
	}
	size := data.size
	w.Header().Set("Accept-Ranges", "bytes")
	rng := r.Header.Get("Range")
	if rng == "" || kind == IgnoreRange {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			data.write(w, 0, size)
		}
		return
	}
	spec, ok := strings.CutPrefix(rng, "bytes=")
	as, bs, ok2 := strings.Cut(spec, "-")
	a, err := strconv.ParseInt(as, 10, 64)
	if !ok || !ok2 || err != nil || a < 0 {
		http.Error(w, "bad range", http.StatusBadRequest)
		return
	}
	b := size - 1
	if bs != "" {
		if b, err = strconv.ParseInt(bs, 10, 64); err != nil || b < a {
			http.Error(w, "bad range", http.StatusBadRequest)
			return
		}
	}
	if a >= size {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		return
	}
	b = min(b, size-1)
	total := size
	if kind == WrongTotal {
		total++
	}
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, total))
	w.Header().Set("Content-Length", strconv.FormatInt(b-a+1, 10))
	w.WriteHeader(http.StatusPartialContent)
	if r.Method == http.MethodHead {
		return
	}
	end := b + 1
	if kind == ShortBody || kind == StallBody {
		end = a + (b+1-a)/2
	}
	data.write(w, a, end)
	if kind == StallBody {
		w.(http.Flusher).Flush()
	}
}

// write sends bytes [a, end) of the blob, zeros past its data.
func (b blob) write(w http.ResponseWriter, a, end int64) {
	if a < int64(len(b.data)) {
		n := min(end, int64(len(b.data)))
		if _, err := w.Write(b.data[a:n]); err != nil {
			return
		}
		a = n
	}
	zeros := make([]byte, 32<<10)
	for a < end {
		n := min(end-a, int64(len(zeros)))
		if _, err := w.Write(zeros[:n]); err != nil {
			return
		}
		a += n
	}
}

type sibling struct {
	Name   string `json:"rfilename"`
	Size   *int64 `json:"size,omitempty"`
	BlobID string `json:"blobId"`
	LFS    *lfs   `json:"lfs,omitempty"`
}

type lfs struct {
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256,omitempty"`
	OID         string `json:"oid,omitempty"`
	PointerSize int    `json:"pointerSize"`
}

func (s *Server) revisionInfo(w http.ResponseWriter, r *http.Request, repo *Repo) {
	var sib []sibling
	for _, n := range sortedNames(repo) {
		data, _ := repo.blob(n)
		e := sibling{Name: n, BlobID: gitBlobID(data.data)}
		if !repo.NoSizes {
			size := data.size
			e.Size = &size
			if IsLFS(n) {
				e.LFS = &lfs{Size: size, SHA256: data.id(), PointerSize: 134}
			}
		}
		sib = append(sib, e)
	}
	if r.URL.Query().Get("blobs") != "true" {
		for i := range sib {
			sib[i].Size, sib[i].LFS = nil, nil
		}
	}
	gated := any(false)
	if repo.Gated {
		gated = "auto"
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"_id": "0123456789abcdef01234567", "id": repo.Name, "modelId": repo.Name,
		"sha": repo.Commit, "private": repo.Private, "gated": gated, "siblings": sib})
}

type treeEntry struct {
	Type string `json:"type"`
	OID  string `json:"oid"`
	Size int64  `json:"size"`
	Path string `json:"path"`
	LFS  *lfs   `json:"lfs,omitempty"`
}

// tree lists files and directories under dir (recursively with
// recursive=true), PageSize entries a page, the next page in a Link header.
func (s *Server) tree(w http.ResponseWriter, r *http.Request, repo *Repo, dir string) {
	recursive := r.URL.Query().Get("recursive") == "true"
	var all []treeEntry
	dirs := map[string]bool{}
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	for _, n := range sortedNames(repo) {
		rest, ok := strings.CutPrefix(n, prefix)
		if !ok {
			continue
		}
		parts := strings.Split(rest, "/")
		for i := 1; i < len(parts); i++ {
			d := prefix + strings.Join(parts[:i], "/")
			if !dirs[d] && (recursive || i == 1) {
				dirs[d] = true
				all = append(all, treeEntry{Type: "directory", OID: "0000000000000000000000000000000000000000", Path: d})
			}
		}
		if len(parts) > 1 && !recursive {
			continue
		}
		data, _ := repo.blob(n)
		e := treeEntry{Type: "file", OID: gitBlobID(data.data), Size: data.size, Path: n}
		if IsLFS(n) {
			e.LFS = &lfs{OID: data.id(), Size: data.size, PointerSize: 134}
		}
		all = append(all, e)
	}
	cursor, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	cursor = min(max(cursor, 0), len(all))
	end := min(cursor+max(s.PageSize, 1), len(all))
	if end < len(all) {
		q := r.URL.Query()
		q.Set("cursor", strconv.Itoa(end))
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?%s>; rel="next"`, s.Hub.URL, r.URL.Path, q.Encode()))
	}
	w.Header().Set("Content-Type", "application/json")
	page := all[cursor:end]
	if page == nil {
		page = []treeEntry{}
	}
	json.NewEncoder(w).Encode(page)
}

func sortedNames(repo *Repo) []string {
	names := make([]string, 0, len(repo.Files))
	for n := range repo.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// gitBlobID is git's object id of a blob.
func gitBlobID(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}
