package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode"
)

// Entry is one file of a listing.
type Entry struct {
	Name string // path in the repo ("/"-separated); a plain URL's last segment
	Size int64
	// ETag identifies the content: the LFS sha256, else the git blob id;
	// "" for a plain URL.
	ETag string
}

// Repo is a remote model's listing, pinned: every file it opens comes from
// one commit.
type Repo struct {
	c      *Client
	Source Source
	// Commit is the commit sha the revision resolved to; "" for a plain URL.
	Commit  string
	Entries []Entry // sorted by name

	mu      sync.Mutex
	pending sync.WaitGroup // background prefetches
	byName  map[string]Entry
	files   map[string]*File
	hints   map[string]int64
}

// maxListingBytes bounds one listing answer.
const maxListingBytes = 256 << 20

// maxPages bounds a paginated tree listing.
const maxPages = 10_000

// isCommit reports whether s is a full commit id, ^[0-9a-f]{40}$ (by hand:
// a regexp would be compiled at package init for every command).
func isCommit(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Open lists src: for a Hub source, one call to the revision API pins the
// revision to a commit and gives every file's size (a tree listing, page
// by page, fills in sizes it lacks); for a plain URL, the first ranged GET
// gives the size.
func (c *Client) Open(ctx context.Context, src Source) (*Repo, error) {
	r := &Repo{c: c, Source: src, byName: map[string]Entry{}, files: map[string]*File{}, hints: map[string]int64{}}
	if !src.IsHub() {
		f := &File{c: c, name: src.Name(), url: src.URL, size: -1, exact: strings.HasSuffix(src.Name(), ".safetensors")}
		if err := f.probe(ctx); err != nil {
			return nil, err
		}
		r.add(Entry{Name: f.name, Size: f.size})
		r.files[f.name] = f
		return r, nil
	}
	if isCommit(src.Revision) && r.loadListing(src.Revision) {
		return r, nil
	}
	u := fmt.Sprintf("%s/api/models/%s/revision/%s?blobs=true", src.Endpoint, src.Repo, url.PathEscape(src.Revision))
	resp, cancel, err := c.do(ctx, request{url: u, repo: src.Repo, rev: src.Revision})
	if err != nil {
		return nil, err
	}
	body, err := c.readBody(resp, u, maxListingBytes)
	resp.Body.Close()
	cancel()
	if err != nil {
		return nil, err
	}
	var info struct {
		SHA      string `json:"sha"`
		Siblings []struct {
			Name   string `json:"rfilename"`
			Size   *int64 `json:"size"`
			BlobID string `json:"blobId"`
			LFS    *struct {
				Size   int64  `json:"size"`
				SHA256 string `json:"sha256"`
			} `json:"lfs"`
		} `json:"siblings"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("%s: listing: %w", u, err)
	}
	if !isCommit(info.SHA) {
		return nil, fmt.Errorf("%s: listing: no commit sha (got %q)", u, info.SHA)
	}
	r.Commit = info.SHA
	complete := true
	for _, s := range info.Siblings {
		e := Entry{Name: s.Name, ETag: s.BlobID}
		switch {
		case s.LFS != nil:
			e.Size, e.ETag = s.LFS.Size, s.LFS.SHA256
		case s.Size != nil:
			e.Size = *s.Size
		default:
			complete = false
		}
		if err := r.addChecked(e, u); err != nil {
			return nil, err
		}
	}
	if !complete {
		r.byName = map[string]Entry{}
		r.Entries = nil
		if err := r.listTree(ctx); err != nil {
			return nil, err
		}
	}
	sort.Slice(r.Entries, func(i, j int) bool { return r.Entries[i].Name < r.Entries[j].Name })
	r.saveListing()
	return r, nil
}

// A listing at a commit never changes either: it is cached too, and read
// back when the revision asked for is that commit's sha, so that a
// second audit of hf://ORG/REPO@SHA sends no request at all.
type cachedListing struct {
	Commit  string  `json:"commit"`
	Entries []Entry `json:"entries"`
}

func (r *Repo) listingPath(commit string) string {
	return cachePath(r.c.cfg.CacheDir, cacheKey(r.Source.Endpoint, r.Source.Repo, commit, "", "listing"))
}

func (r *Repo) loadListing(commit string) bool {
	if r.c.cfg.CacheDir == "" {
		return false
	}
	b, err := os.ReadFile(r.listingPath(commit))
	if err != nil || len(b) > maxListingBytes {
		return false
	}
	var l cachedListing
	if json.Unmarshal(b, &l) != nil || l.Commit != commit {
		return false
	}
	for _, e := range l.Entries {
		if r.addChecked(e, "cached listing") != nil {
			r.byName, r.Entries = map[string]Entry{}, nil
			return false
		}
	}
	r.Commit = commit
	r.c.hits.Add(1)
	return true
}

func (r *Repo) saveListing() {
	if r.c.cfg.CacheDir == "" {
		return
	}
	b, err := json.Marshal(cachedListing{Commit: r.Commit, Entries: r.Entries})
	if err == nil {
		// A failed write costs a request next time, nothing else.
		_ = writeAtomic(r.listingPath(r.Commit), b)
	}
}

// listTree reads the tree listing at the pinned commit, following its
// Link: rel="next" pagination.
func (r *Repo) listTree(ctx context.Context) error {
	src := r.Source
	next := fmt.Sprintf("%s/api/models/%s/tree/%s?recursive=true", src.Endpoint, src.Repo, r.Commit)
	for page := 0; next != ""; page++ {
		if page >= maxPages {
			return fmt.Errorf("%s: listing: more than %d pages", next, maxPages)
		}
		u := next
		resp, cancel, err := r.c.do(ctx, request{url: u, repo: src.Repo, rev: src.Revision})
		if err != nil {
			return err
		}
		next = nextLink(resp.Header.Values("Link"))
		body, err := r.c.readBody(resp, u, maxListingBytes)
		resp.Body.Close()
		cancel()
		if err != nil {
			return err
		}
		var entries []struct {
			Type string `json:"type"`
			Path string `json:"path"`
			Size int64  `json:"size"`
			OID  string `json:"oid"`
			LFS  *struct {
				OID  string `json:"oid"`
				Size int64  `json:"size"`
			} `json:"lfs"`
		}
		if err := json.Unmarshal(body, &entries); err != nil {
			return fmt.Errorf("%s: listing: %w", u, err)
		}
		for _, e := range entries {
			if e.Type != "file" {
				continue
			}
			x := Entry{Name: e.Path, Size: e.Size, ETag: e.OID}
			if e.LFS != nil {
				x.Size, x.ETag = e.LFS.Size, e.LFS.OID
			}
			if err := r.addChecked(x, u); err != nil {
				return err
			}
		}
		if next != "" {
			nu, err := url.Parse(next)
			if err != nil {
				return fmt.Errorf("%s: listing: bad next page %q", u, next)
			}
			// Relative links resolve against the page; the pages stay on
			// the Hub's host, where the token may go.
			base, _ := url.Parse(u)
			nu = base.ResolveReference(nu)
			if !strings.EqualFold(nu.Host, base.Host) {
				return fmt.Errorf("%s: listing: next page on another host (%s)", u, nu.Host)
			}
			next = nu.String()
		}
	}
	return nil
}

// linkRe is a Link header's next page, compiled on first use.
var linkRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`<([^>]*)>\s*;\s*rel="?next"?`) })

// nextLink finds the rel="next" target of Link headers.
func nextLink(vals []string) string {
	for _, v := range vals {
		if m := linkRe().FindStringSubmatch(v); m != nil {
			return m[1]
		}
	}
	return ""
}

func (r *Repo) addChecked(e Entry, u string) error {
	if e.Name == "" || e.Size < 0 || strings.HasPrefix(e.Name, "/") || strings.Contains("/"+e.Name+"/", "/../") ||
		strings.ContainsFunc(e.Name, unicode.IsControl) {
		return fmt.Errorf("%s: listing: bad entry %q (size %d)", u, e.Name, e.Size)
	}
	if _, dup := r.byName[e.Name]; dup {
		return fmt.Errorf("%s: listing: %q listed twice", u, e.Name)
	}
	r.add(e)
	return nil
}

func (r *Repo) add(e Entry) {
	r.byName[e.Name] = e
	r.Entries = append(r.Entries, e)
}

// Lookup returns the entry of name.
func (r *Repo) Lookup(name string) (Entry, bool) {
	e, ok := r.byName[name]
	return e, ok
}

// fileURL is where name's bytes are: /resolve/ at the pinned commit.
func (r *Repo) fileURL(name string) string {
	if !r.Source.IsHub() {
		return r.Source.URL
	}
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return fmt.Sprintf("%s/%s/resolve/%s/%s", r.Source.Endpoint, r.Source.Repo, r.Commit, strings.Join(segs, "/"))
}

// Hint sets how many bytes the first ranged GET of name asks for (a
// safetensors shard's header estimated from its tensor names, say). Without
// a hint it is DefaultFirstRange. Hints only raise it: two readers that
// hint one file (Model asks for a config.json whole, the loaders' sniff
// for its first KiB) get the larger, so that neither needs a second GET.
func (r *Repo) Hint(name string, n int64) {
	r.mu.Lock()
	n = max(n, r.hints[name])
	r.hints[name] = n
	f := r.files[name]
	r.mu.Unlock()
	if f != nil {
		// Opened already: the hint counts if its first range is not sent
		// yet. It is not taken under the file's lock, which a fetch in
		// flight holds: a hint never waits for another file's round trip.
		f.raiseFirst(n)
	}
}

// File returns the reader of name; the same one each time.
func (r *Repo) File(name string) (*File, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.files[name]; ok {
		return f, nil
	}
	e, ok := r.byName[name]
	if !ok {
		return nil, fmt.Errorf("%s: no file %q in the listing", r.Source.Raw, name)
	}
	f := &File{c: r.c, name: name, url: r.fileURL(name), size: e.Size,
		exact: strings.HasSuffix(name, ".safetensors"), repo: r.Source.Repo, rev: r.Commit}
	if r.Source.IsHub() && r.c.cfg.CacheDir != "" {
		f.cacheKey = cacheKey(r.Source.Endpoint, r.Source.Repo, r.Commit, name, e.ETag)
		f.loadCache()
	}
	f.raiseFirst(r.hints[name])
	r.files[name] = f
	return f, nil
}

// Prefetch fetches the first range of each named file, all at once (as
// many in flight as the client allows), so that reading them one after
// another later costs no round trips.
func (r *Repo) Prefetch(ctx context.Context, names []string) error {
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		f, err := r.File(n)
		if err != nil {
			errs[i] = err
			continue
		}
		wg.Go(func() { errs[i] = f.prefetch(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Close waits for background prefetches and writes the header bytes
// fetched to the cache.
func (r *Repo) Close() error {
	r.pending.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	var first error
	for _, f := range r.files {
		if err := f.saveCache(r.c.cfg.CacheDir); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Stats is the client's.
func (r *Repo) Stats() Stats { return r.c.Stats() }
