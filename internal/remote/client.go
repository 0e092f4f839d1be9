package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qinsaudit/qinsaudit/internal/safeio"
	"github.com/qinsaudit/qinsaudit/internal/version"
)

// Config says where and how to fetch. The zero value of every field but
// Endpoint has a default; ConfigFromEnv fills it as the Hub's own clients do.
type Config struct {
	// Endpoint is the Hub (DefaultEndpoint or a mirror).
	Endpoint string
	// Token is sent as a bearer token to the Endpoint's host only.
	Token string
	// CacheDir holds fetched header bytes; "" disables the cache.
	CacheDir string
	// Timeout bounds each request, from sending it to the last byte of its
	// answer (default 60s).
	Timeout time.Duration
	// Retries is how many times a 429 or 5xx answer, or a dropped
	// connection, is retried (default 4; negative: none).
	Retries int
	// Backoff is the first retry's wait, doubled each time, when the
	// answer has no Retry-After (default 500ms).
	Backoff time.Duration
	// MaxWait caps a Retry-After: a server asking for longer fails the
	// request (default 60s).
	MaxWait time.Duration
	// Parallel bounds the requests in flight to each host (default 32):
	// the Hub's resolves and the CDN's ranged GETs they redirect to each
	// have their own bound, so the two hops of many files overlap.
	//
	// 32, not 16: a sharded repo's heads go out with its index and
	// config.json, so the Hub sees 2 + N requests at once; a 70B model in
	// 30 shards (Llama-3-70B's layout) then needs one wave on each host,
	// not two (at 50 ms a request: 3.4 round trips at 32, 4.7 at 16; see
	// bench/remote). Each request is a small ranged GET of a header, and
	// a repo's reads are a few dozen requests, far under the Hub's rate
	// limits, which count requests per 5 minutes, not streams; a repo of
	// more shards takes about (2 + N) / 32 waves.
	Parallel int
	// Transport replaces the default HTTP transport (tests).
	Transport http.RoundTripper
}

// ConfigFromEnv reads HF_ENDPOINT, HF_TOKEN (else the token file, see
// tokenPath) and the user's cache directory.
// noCache leaves CacheDir empty.
func ConfigFromEnv(noCache bool) Config {
	cfg := Config{Endpoint: strings.TrimRight(os.Getenv("HF_ENDPOINT"), "/")}
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultEndpoint
	}
	cfg.Token = strings.TrimSpace(os.Getenv("HF_TOKEN"))
	if cfg.Token == "" {
		if p := tokenPath(); p != "" {
			// A token is a line; a FIFO or a huge file is not read.
			if b, err := safeio.ReadFileLimit(p, 4096); err == nil {
				cfg.Token = strings.TrimSpace(string(b))
			}
		}
	}
	if !noCache {
		if d, err := os.UserCacheDir(); err == nil {
			cfg.CacheDir = filepath.Join(d, "qinsaudit", "remote")
		}
	}
	return cfg
}

// tokenPath is where huggingface_hub keeps the token: $HF_TOKEN_PATH, else
// $HF_HOME/token, HF_HOME defaulting to $XDG_CACHE_HOME/huggingface and
// then ~/.cache/huggingface.
func tokenPath() string {
	if p := os.Getenv("HF_TOKEN_PATH"); p != "" {
		return p
	}
	home := os.Getenv("HF_HOME")
	if home == "" {
		if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
			home = filepath.Join(x, "huggingface")
		} else if h, err := os.UserHomeDir(); err == nil {
			home = filepath.Join(h, ".cache", "huggingface")
		}
	}
	if home == "" {
		return ""
	}
	return filepath.Join(home, "token")
}

// Stats counts what a Client did.
type Stats struct {
	// Requests is every HTTP request sent: listings, redirect hops,
	// retries, ranged GETs.
	Requests int64
	// BytesReceived is the bytes of response bodies read.
	BytesReceived int64
	// CacheHits is the files whose header bytes came (at least in part)
	// from the cache.
	CacheHits int64
	// Wall is the time from the client's creation to the Stats call.
	Wall time.Duration
}

// Client fetches from one Hub endpoint and any plain URL.
type Client struct {
	cfg     Config
	hubHost string
	http    *http.Client
	start   time.Time

	requests, bytes, hits atomic.Int64
}

// NewClient returns a client for cfg.
func NewClient(cfg Config) *Client {
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultEndpoint
	}
	cfg.Endpoint = strings.TrimRight(cfg.Endpoint, "/")
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Retries == 0 {
		cfg.Retries = 4
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = 60 * time.Second
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 32 // see Config.Parallel
	}
	c := &Client{cfg: cfg, start: time.Now()}
	if u, err := url.Parse(cfg.Endpoint); err == nil {
		c.hubHost = strings.ToLower(u.Host)
	}
	tr := cfg.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = cfg.Parallel
		t.ResponseHeaderTimeout = cfg.Timeout
		tr = t
	}
	c.http = &http.Client{
		Transport: &limitTransport{rt: tr, n: &c.requests, per: cfg.Parallel, slots: map[string]chan struct{}{}},
		// A resolve of a large file redirects to a CDN on another host.
		// net/http keeps Authorization on a redirect to a subdomain
		// (cdn-lfs.huggingface.co is one), so it is removed here from
		// every hop that leaves the Hub's host.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return fmt.Errorf("stopped after 10 redirects")
			}
			if !strings.EqualFold(req.URL.Host, c.hubHost) {
				req.Header.Del("Authorization")
			}
			return nil
		},
	}
	return c
}

// Stats returns what the client did so far.
func (c *Client) Stats() Stats {
	return Stats{Requests: c.requests.Load(), BytesReceived: c.bytes.Load(), CacheHits: c.hits.Load(),
		Wall: time.Since(c.start)}
}

// limitTransport counts every request sent, redirect hops included, and
// bounds the requests in flight to each host: a request holds its host's
// slot until its body is closed. (http.Transport's MaxConnsPerHost would
// not bound the streams of an HTTP/2 connection.)
type limitTransport struct {
	rt    http.RoundTripper
	n     *atomic.Int64
	per   int
	mu    sync.Mutex
	slots map[string]chan struct{}
}

func (t *limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.mu.Lock()
	host := strings.ToLower(r.URL.Host)
	sem, ok := t.slots[host]
	if !ok {
		sem = make(chan struct{}, t.per)
		t.slots[host] = sem
	}
	t.mu.Unlock()
	select {
	case sem <- struct{}{}:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	t.n.Add(1)
	resp, err := t.rt.RoundTrip(r)
	if err != nil {
		<-sem
		return nil, err
	}
	resp.Body = &releaseBody{ReadCloser: resp.Body, release: func() { <-sem }}
	return resp, nil
}

// releaseBody gives back a host slot when the body is closed.
type releaseBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// UserAgent names qinsaudit and its version, so that the Hub's operators
// (and its download counts) can tell these reads apart.
func UserAgent() string {
	// "(devel) 4be7b1e0c2a1" is not a product token: "devel-4be7b1e0c2a1".
	v := strings.NewReplacer("(", "", ")", "", " ", "-").Replace(version.String())
	return "qinsaudit/" + v + " (+https://github.com/qinsaudit/qinsaudit; header-only ranged reads)"
}

// HTTPError is an answer that was not what was asked for. Its message
// says what the Hub's X-Error-Code means.
type HTTPError struct {
	URL     string
	Status  int
	Code    string // X-Error-Code
	Message string // X-Error-Message
	Repo    string
	Rev     string
	Path    string
	Token   bool // a token was sent
}

func (e *HTTPError) Error() string {
	what := e.URL
	var s string
	switch {
	case e.Code == "GatedRepo" && !e.Token:
		s = fmt.Sprintf("%s is a gated repository: accept its conditions on the Hub, then set HF_TOKEN (or run `hf auth login`)", e.Repo)
	case e.Code == "GatedRepo":
		s = fmt.Sprintf("%s is a gated repository and the token has no access to it: accept its conditions on the Hub with the token's account", e.Repo)
	case e.Code == "RepoNotFound" && !e.Token:
		s = fmt.Sprintf("repository %s not found (if it is private, set HF_TOKEN)", e.Repo)
	case e.Code == "RepoNotFound":
		s = fmt.Sprintf("repository %s not found, or the token cannot see it", e.Repo)
	case e.Code == "RevisionNotFound":
		s = fmt.Sprintf("revision %q not found in %s", e.Rev, e.Repo)
	case e.Code == "EntryNotFound":
		s = fmt.Sprintf("no file %q in %s at %s", e.Path, e.Repo, e.Rev)
	case e.Repo == "": // a plain URL: no token is ever sent to it
		s = fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	case e.Status == http.StatusUnauthorized && !e.Token:
		s = "authentication required (HTTP 401): set HF_TOKEN"
	case e.Status == http.StatusUnauthorized:
		s = "the token was refused (HTTP 401)"
	case e.Status == http.StatusForbidden:
		s = "access denied (HTTP 403)"
	case e.Status == http.StatusNotFound:
		s = "not found (HTTP 404)"
	default:
		s = fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Message != "" {
		s += ": server says " + strconv.Quote(e.Message)
	}
	return what + ": " + s
}

// request is one GET (or HEAD) with what the error messages need.
type request struct {
	url        string
	method     string
	rng        string // Range header value, "" for none
	repo, rev  string
	path       string
	noRedirect bool
}

// do sends req, retrying 429, 5xx and dropped connections with backoff
// (honouring Retry-After), and returns a 2xx response whose body the
// caller must close; cancel ends the request's context, to be called after
// the body is read.
func (c *Client) do(ctx context.Context, req request) (*http.Response, context.CancelFunc, error) {
	var lastErr error
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		hr, err := http.NewRequestWithContext(rctx, cmpOr(req.method, http.MethodGet), req.url, nil)
		if err != nil {
			cancel()
			return nil, nil, err
		}
		hr.Header.Set("User-Agent", UserAgent())
		if req.rng != "" {
			hr.Header.Set("Range", req.rng)
			// A ranged answer is the file's own bytes: no compression.
			hr.Header.Set("Accept-Encoding", "identity")
		}
		sentToken := false
		if c.cfg.Token != "" && strings.EqualFold(hr.URL.Host, c.hubHost) {
			hr.Header.Set("Authorization", "Bearer "+c.cfg.Token)
			sentToken = true
		}
		resp, err := c.http.Do(hr)
		var wait time.Duration
		switch {
		case err != nil:
			cancel()
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(rctx.Err(), context.DeadlineExceeded) {
				return nil, nil, fmt.Errorf("%s: no answer within %v", req.url, c.cfg.Timeout)
			}
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, nil, fmt.Errorf("%s: no answer within %v", req.url, c.cfg.Timeout)
			}
			// url.Error repeats the method and URL: say the URL once.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			lastErr = fmt.Errorf("%s: %w", req.url, err)
			wait = c.cfg.Backoff << attempt
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			lastErr = &HTTPError{URL: req.url, Status: resp.StatusCode, Code: resp.Header.Get("X-Error-Code"),
				Message: resp.Header.Get("X-Error-Message"), Repo: req.repo, Rev: req.rev, Path: req.path, Token: sentToken}
			wait = c.cfg.Backoff << attempt
			if ra, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
				if ra > c.cfg.MaxWait {
					resp.Body.Close()
					cancel()
					return nil, nil, fmt.Errorf("%w; it asks to retry after %v, more than the %v qinsaudit waits", lastErr, ra, c.cfg.MaxWait)
				}
				wait = ra
			}
			resp.Body.Close()
			cancel()
		case resp.StatusCode >= 300 && !(req.noRedirect && resp.StatusCode < 400):
			e := &HTTPError{URL: req.url, Status: resp.StatusCode, Code: resp.Header.Get("X-Error-Code"),
				Message: resp.Header.Get("X-Error-Message"), Repo: req.repo, Rev: req.rev, Path: req.path, Token: sentToken}
			resp.Body.Close()
			cancel()
			return nil, nil, e
		default:
			return resp, cancel, nil
		}
		if attempt >= c.cfg.Retries {
			return nil, nil, fmt.Errorf("%w (gave up after %d attempts)", lastErr, attempt+1)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
	}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t)), true
	}
	return 0, false
}

// readBody reads a whole small body, at most limit bytes, counting them.
func (c *Client) readBody(resp *http.Response, url string, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	c.bytes.Add(int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", url, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: answer larger than %d bytes", url, limit)
	}
	return b, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
