package remote_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/qinsaudit/qinsaudit/internal/remote"
	"github.com/qinsaudit/qinsaudit/internal/remote/hubtest"
)

// safetensorsFile builds a safetensors file of n float32 [2] tensors whose
// header (8-byte length included) is exactly headerLen bytes, padded with
// spaces as the format allows; headerLen 0 means unpadded.
func safetensorsFile(t testing.TB, prefix string, n, headerLen int) []byte {
	t.Helper()
	hdr := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	for i := range n {
		hdr[fmt.Sprintf("%s.%d.weight", prefix, i)] = map[string]any{"dtype": "F32", "shape": []int{2}, "data_offsets": []int{8 * i, 8*i + 8}}
	}
	js, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	if headerLen > 0 {
		if 8+len(js) > headerLen {
			t.Fatalf("header of %d bytes does not fit in %d", 8+len(js), headerLen)
		}
		js = append(js, bytes.Repeat([]byte(" "), headerLen-8-len(js))...)
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	out = append(out, js...)
	return append(out, make([]byte, 8*n)...)
}

func newClient(s *hubtest.Server, mod func(*remote.Config)) *remote.Client {
	cfg := remote.Config{Endpoint: s.Hub.URL, Token: s.Token, Backoff: time.Millisecond, Timeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	return remote.NewClient(cfg)
}

func open(t *testing.T, c *remote.Client, s *hubtest.Server, raw string) (*remote.Repo, error) {
	t.Helper()
	src, err := remote.Parse(raw, s.Hub.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c.Open(context.Background(), src)
}

func readAll(t *testing.T, r *remote.Repo, name string, n int64) []byte {
	t.Helper()
	f, err := r.File(name)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	return buf
}

func TestParse(t *testing.T) {
	const ep = "https://huggingface.co"
	for _, c := range []struct {
		in   string
		want remote.Source
	}{
		{"hf://org/model", remote.Source{Endpoint: ep, Repo: "org/model", Revision: "main"}},
		{"hf://org/model@v1.0", remote.Source{Endpoint: ep, Repo: "org/model", Revision: "v1.0"}},
		{"hf://org/model@refs%2Fpr%2F3/sub/m.gguf", remote.Source{Endpoint: ep, Repo: "org/model", Revision: "refs/pr/3", Path: "sub/m.gguf"}},
		{"hf://org/model/m-Q4_K_M.gguf", remote.Source{Endpoint: ep, Repo: "org/model", Revision: "main", Path: "m-Q4_K_M.gguf"}},
		{"https://huggingface.co/org/model/resolve/abc123/model.safetensors",
			remote.Source{Endpoint: ep, Repo: "org/model", Revision: "abc123", Path: "model.safetensors"}},
		{"https://huggingface.co/org/model/blob/main/dir/x%20y.gguf",
			remote.Source{Endpoint: ep, Repo: "org/model", Revision: "main", Path: "dir/x y.gguf"}},
		{"https://huggingface.co/org/model", remote.Source{Endpoint: ep, Repo: "org/model", Revision: "main"}},
		{"https://example.com/w/model.safetensors", remote.Source{URL: "https://example.com/w/model.safetensors"}},
		{"https://huggingface.co/org/model/resolve/main/m.gguf?download=true",
			remote.Source{URL: "https://huggingface.co/org/model/resolve/main/m.gguf?download=true"}},
	} {
		got, err := remote.Parse(c.in, "")
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		c.want.Raw = c.in
		if got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.in, got, c.want)
		}
	}
	mirror, err := remote.Parse("https://mirror.example/org/m/resolve/main/a.gguf", "https://mirror.example/")
	if err != nil || mirror.Endpoint != "https://mirror.example" || mirror.Repo != "org/m" {
		t.Errorf("mirror URL: %+v %v", mirror, err)
	}
	for _, bad := range []string{"hf://org", "hf://org/", "hf:///x", "hf://org/../x", "hf://org/m/../../etc", "ftp://x/y", "hf://org/@rev",
		"hf://datasets/org/d", "https://huggingface.co/spaces/org/s/resolve/main/app.py"} {
		if _, err := remote.Parse(bad, ""); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	for u, want := range map[string]string{"https://h/a/b.gguf?x=1": "b.gguf", "https://h/": "model", "https://h": "model", "https://h/a/..": "model"} {
		if s, err := remote.Parse(u, ""); err != nil || s.Name() != want {
			t.Errorf("%s: name %q (%v), want %q", u, s.Name(), err, want)
		}
	}
	for arg, want := range map[string]bool{"hf://a/b": true, "HTTPS://x/y": true, "http://x": true, "./hf:/x": false, "model.gguf": false} {
		if remote.IsRemote(arg) != want {
			t.Errorf("IsRemote(%q) = %v", arg, !want)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "token"), []byte("hf_file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_ENDPOINT", "http://127.0.0.1:1/")
	cfg := remote.ConfigFromEnv(true)
	if cfg.Token != "hf_file" || cfg.Endpoint != "http://127.0.0.1:1" || cfg.CacheDir != "" {
		t.Errorf("from HF_HOME/token: %+v", cfg)
	}
	t.Setenv("HF_TOKEN", "hf_env")
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, "cache"))
	cfg = remote.ConfigFromEnv(false)
	if cfg.Token != "hf_env" || cfg.CacheDir != filepath.Join(home, "cache", "qinsaudit", "remote") {
		t.Errorf("HF_TOKEN wins: %+v", cfg)
	}
	// Without HF_HOME, huggingface_hub's default under XDG_CACHE_HOME;
	// HF_TOKEN_PATH over both.
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_HOME", "")
	os.MkdirAll(filepath.Join(home, "cache", "huggingface"), 0o755)
	os.WriteFile(filepath.Join(home, "cache", "huggingface", "token"), []byte("hf_xdg"), 0o600)
	if cfg = remote.ConfigFromEnv(true); cfg.Token != "hf_xdg" {
		t.Errorf("XDG_CACHE_HOME/huggingface/token: %+v", cfg)
	}
	t.Setenv("HF_TOKEN_PATH", filepath.Join(home, "token"))
	if cfg = remote.ConfigFromEnv(true); cfg.Token != "hf_file" {
		t.Errorf("HF_TOKEN_PATH: %+v", cfg)
	}
}

// TestPinnedAndTokenStaysOnHub: one listing, every read at the commit, the
// token on every Hub request and on no CDN request (the CDN refuses one).
func TestPinnedAndTokenStaysOnHub(t *testing.T) {
	s := hubtest.New(t)
	s.Token = "hf_secret"
	file := safetensorsFile(t, "w", 3, 0)
	repo := s.Add("org/private", map[string][]byte{"model.safetensors": file, "config.json": []byte(`{"model_type":"x"}`)})
	repo.Private = true
	c := newClient(s, nil)
	r, err := open(t, c, s, "hf://org/private")
	if err != nil {
		t.Fatal(err)
	}
	if r.Commit != repo.Commit {
		t.Fatalf("commit %s, want %s", r.Commit, repo.Commit)
	}
	if got := readAll(t, r, "model.safetensors", int64(len(file))); !bytes.Equal(got, file) {
		t.Fatal("bytes differ")
	}
	if got := readAll(t, r, "config.json", 18); string(got) != `{"model_type":"x"}` {
		t.Fatalf("config.json: %q", got)
	}
	var hub, cdn int
	for _, q := range s.Log() {
		switch q.Host {
		case "hub":
			hub++
			if q.Auth != "Bearer hf_secret" {
				t.Errorf("hub %s without the token", q.Path)
			}
			if strings.Contains(q.Path, "/resolve/") && !strings.Contains(q.Path, "/resolve/"+repo.Commit+"/") {
				t.Errorf("read not pinned: %s", q.Path)
			}
		case "cdn":
			cdn++
			if q.Auth != "" {
				t.Errorf("token sent to the CDN: %s", q.Path)
			}
			if q.Range == "" {
				t.Errorf("unranged CDN GET %s", q.Path)
			}
		}
		if !strings.HasPrefix(q.UA, "qinsaudit/") {
			t.Errorf("User-Agent %q", q.UA)
		}
	}
	// listing, resolve (302) of the model, config.json; one CDN range.
	if hub != 3 || cdn != 1 {
		t.Errorf("%d hub and %d CDN requests, want 3 and 1", hub, cdn)
	}
	if st := c.Stats(); st.Requests != 4 || st.BytesReceived <= int64(len(file)) {
		t.Errorf("stats %+v", st)
	}
}

// TestFirstRangeBoundary: a header of exactly the first range costs one
// GET; one byte more costs a second GET of exactly that byte.
func TestFirstRangeBoundary(t *testing.T) {
	for _, extra := range []int{0, 1} {
		s := hubtest.New(t)
		file := safetensorsFile(t, "w", 4, remote.DefaultFirstRange+extra)
		s.Add("org/m", map[string][]byte{"model.safetensors": file})
		c := newClient(s, nil)
		r, err := open(t, c, s, "hf://org/m")
		if err != nil {
			t.Fatal(err)
		}
		f, _ := r.File("model.safetensors")
		var n [8]byte
		if _, err := f.ReadAt(n[:], 0); err != nil {
			t.Fatal(err)
		}
		hdr := make([]byte, binary.LittleEndian.Uint64(n[:]))
		if _, err := f.ReadAt(hdr, 8); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hdr, file[8:8+len(hdr)]) {
			t.Fatal("header bytes differ")
		}
		var ranges []string
		for _, q := range s.Log() {
			if q.Host == "cdn" {
				ranges = append(ranges, q.Range)
			}
		}
		want := []string{fmt.Sprintf("bytes=0-%d", remote.DefaultFirstRange-1)}
		if extra == 1 {
			want = append(want, fmt.Sprintf("bytes=%d-%d", remote.DefaultFirstRange, remote.DefaultFirstRange))
		}
		if fmt.Sprint(ranges) != fmt.Sprint(want) {
			t.Errorf("header of first range + %d: ranges %v, want %v", extra, ranges, want)
		}
	}
}

// TestGeometricReads: a reader's sequential 64 KiB reads (GGUF's) cost
// ranges doubling from 64 KiB, each byte fetched once.
func TestGeometricReads(t *testing.T) {
	s := hubtest.New(t)
	data := make([]byte, 1<<20+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	s.Add("org/g", map[string][]byte{"m.gguf": data})
	c := newClient(s, nil)
	r, err := open(t, c, s, "hf://org/g/m.gguf")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := r.File("m.gguf")
	var got []byte
	buf := make([]byte, 64<<10)
	for off := int64(0); ; off += int64(len(buf)) {
		n, err := f.ReadAt(buf, off)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
	var ranges []string
	for _, q := range s.Log() {
		if q.Host == "cdn" {
			ranges = append(ranges, q.Range)
		}
	}
	want := "[bytes=0-65535 bytes=65536-196607 bytes=196608-458751 bytes=458752-983039 bytes=983040-1048698]"
	if fmt.Sprint(ranges) != want {
		t.Errorf("ranges %v\nwant %s", ranges, want)
	}
	var cdnBytes int64
	for _, q := range s.Log() {
		if q.Host == "cdn" {
			cdnBytes += q.Bytes
		}
	}
	if cdnBytes != int64(len(data)) {
		t.Errorf("sent %d bytes of a %d-byte file read once", cdnBytes, len(data))
	}
	// Reading again costs nothing.
	before := len(s.Log())
	if _, err := f.ReadAt(buf, 1000); err != nil || len(s.Log()) != before {
		t.Errorf("reread: %v, %d requests", err, len(s.Log())-before)
	}
	// Only the first range was resolved; the rest went straight to the
	// address it redirected to.
	resolves := 0
	for _, q := range s.Log() {
		if strings.Contains(q.Path, "/resolve/") {
			resolves++
		}
	}
	if resolves != 1 {
		t.Errorf("%d resolves for one file", resolves)
	}
}

// TestExpiredRedirect: when the address a resolve redirected to stops
// working (a signed URL expires), the next range is resolved again.
func TestExpiredRedirect(t *testing.T) {
	s := hubtest.New(t)
	data := make([]byte, 200<<10)
	s.Add("org/g", map[string][]byte{"m.gguf": data})
	c := newClient(s, nil)
	r, err := open(t, c, s, "hf://org/g")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := r.File("m.gguf")
	if _, err := f.ReadAt(make([]byte, 10), 0); err != nil {
		t.Fatal(err)
	}
	s.Inject(&hubtest.Fault{Host: "cdn", Kind: hubtest.Status, Status: 403, Count: 1})
	if _, err := f.ReadAt(make([]byte, 10), 100<<10); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, q := range s.Log()[1:] {
		got = append(got, fmt.Sprintf("%s %d", q.Host, q.Status))
	}
	if fmt.Sprint(got) != "[hub 302 cdn 206 cdn 403 hub 302 cdn 206]" {
		t.Errorf("requests %v", got)
	}
}

func TestFaults(t *testing.T) {
	file := safetensorsFile(t, "w", 2, 0)
	for _, c := range []struct {
		name  string
		fault hubtest.Fault
		want  string
	}{
		{"ignores Range", hubtest.Fault{Host: "cdn", Kind: hubtest.IgnoreRange}, "answered HTTP 200, not 206"},
		{"short body", hubtest.Fault{Host: "cdn", Kind: hubtest.ShortBody}, fmt.Sprintf("(bytes 0-%d): short answer", len(file)-1)},
		{"wrong total", hubtest.Fault{Host: "cdn", Kind: hubtest.WrongTotal}, fmt.Sprintf("file has %d bytes; the listing says %d", len(file)+1, len(file))},
		{"stalled", hubtest.Fault{Host: "cdn", Kind: hubtest.Stall}, "no answer within 1s"},
		{"stalled body", hubtest.Fault{Host: "cdn", Kind: hubtest.StallBody}, fmt.Sprintf("%d of %d bytes received, then nothing within 1s", len(file)/2, len(file))},
		{"5xx to the end", hubtest.Fault{Host: "cdn", Kind: hubtest.Status, Status: 503}, "HTTP 503 Service Unavailable (gave up after 3 attempts)"},
		{"entry gone", hubtest.Fault{Host: "hub", Path: "/resolve/", Kind: hubtest.Status, Status: 404, Code: "EntryNotFound"},
			`no file "model.safetensors" in org/m at `},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := hubtest.New(t)
			s.Add("org/m", map[string][]byte{"model.safetensors": file})
			s.Inject(&c.fault)
			cl := newClient(s, func(cfg *remote.Config) {
				cfg.Retries = 2
				if c.fault.Kind == hubtest.Stall || c.fault.Kind == hubtest.StallBody {
					cfg.Timeout = time.Second
				}
			})
			r, err := open(t, cl, s, "hf://org/m")
			if err != nil {
				t.Fatal(err)
			}
			f, _ := r.File("model.safetensors")
			_, err = f.ReadAt(make([]byte, 8), 0)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			if !strings.Contains(err.Error(), s.Hub.URL+"/org/m/resolve/") {
				t.Errorf("error does not name the URL: %v", err)
			}
			if c.fault.Kind == hubtest.IgnoreRange && cl.Stats().BytesReceived > 4096 {
				t.Errorf("read %d bytes of a 200", cl.Stats().BytesReceived)
			}
		})
	}
}

// TestIgnoredRangeNotDownloaded: a 200 to a ranged GET of a large file is
// cancelled, not read.
func TestIgnoredRangeNotDownloaded(t *testing.T) {
	s := hubtest.New(t)
	s.Add("org/big", map[string][]byte{"m.gguf": make([]byte, 64<<20)})
	s.Inject(&hubtest.Fault{Host: "cdn", Kind: hubtest.IgnoreRange})
	c := newClient(s, nil)
	r, err := open(t, c, s, "hf://org/big")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := r.File("m.gguf")
	if _, err := f.ReadAt(make([]byte, 8), 0); err == nil {
		t.Fatal("no error")
	}
	if st := c.Stats(); st.BytesReceived > 1<<20 {
		t.Errorf("received %d bytes", st.BytesReceived)
	}
}

func TestRetryAfter(t *testing.T) {
	s := hubtest.New(t)
	file := safetensorsFile(t, "w", 2, 0)
	s.Add("org/m", map[string][]byte{"model.safetensors": file})
	s.Inject(&hubtest.Fault{Host: "cdn", Kind: hubtest.Status, Status: 429, RetryAfter: "1", Count: 1})
	s.Inject(&hubtest.Fault{Host: "hub", Path: "/api/", Kind: hubtest.Status, Status: 502, Count: 2})
	s.Inject(&hubtest.Fault{Host: "hub", Path: "/resolve/", Kind: hubtest.Drop, Count: 1})
	c := newClient(s, nil)
	start := time.Now()
	r, err := open(t, c, s, "hf://org/m")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, r, "model.safetensors", int64(len(file))); !bytes.Equal(got, file) {
		t.Fatal("bytes differ")
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("Retry-After: 1 not honoured: done in %v", d)
	}
	var statuses []int
	// In the order sent: a dropped request is logged when its handler
	// returns, which can be after the retry's answer.
	log := s.Log()
	sort.SliceStable(log, func(i, j int) bool { return log[i].Start.Before(log[j].Start) })
	for _, q := range log {
		statuses = append(statuses, q.Status)
	}
	// listing 502, 502, 200; resolve dropped (logged as 0), 302; CDN
	// 429; resolve 302; CDN 206.
	if fmt.Sprint(statuses) != "[502 502 200 0 302 429 302 206]" {
		t.Errorf("statuses %v", statuses)
	}
	s.Reset()
	s.Inject(&hubtest.Fault{Host: "cdn", Kind: hubtest.Status, Status: 429, RetryAfter: "3600"})
	r, _ = open(t, c, s, "hf://org/m")
	f, _ := r.File("model.safetensors")
	if _, err := f.ReadAt(make([]byte, 8), 0); err == nil || !strings.Contains(err.Error(), "retry after 1h0m0s") {
		t.Errorf("a long Retry-After: %v", err)
	}
}

func TestHubErrors(t *testing.T) {
	s := hubtest.New(t)
	s.Token = "hf_ok"
	s.Add("org/gated", map[string][]byte{"a.gguf": {1}}).Gated = true
	s.Add("org/open", map[string][]byte{"a.gguf": {1}})
	for _, c := range []struct {
		src, token, want string
	}{
		{"hf://org/gated", "", "org/gated is a gated repository: accept its conditions on the Hub, then set HF_TOKEN"},
		{"hf://org/gated", "hf_wrong", "the token has no access to it"},
		{"hf://org/none", "", "repository org/none not found (if it is private, set HF_TOKEN)"},
		{"hf://org/none", "hf_ok", "repository org/none not found, or the token cannot see it"},
		{"hf://org/open@v9", "", `revision "v9" not found in org/open`},
	} {
		c := c
		cl := newClient(s, func(cfg *remote.Config) { cfg.Token = c.token })
		_, err := open(t, cl, s, c.src)
		var he *remote.HTTPError
		if err == nil || !strings.Contains(err.Error(), c.want) || !errorsAs(err, &he) {
			t.Errorf("%s with token %q: %v, want %q", c.src, c.token, err, c.want)
		}
	}
	cl := newClient(s, nil)
	if _, err := open(t, cl, s, "hf://org/gated"); err != nil {
		t.Errorf("gated with the token: %v", err)
	}
}

func errorsAs(err error, he **remote.HTTPError) bool {
	for err != nil {
		if e, ok := err.(*remote.HTTPError); ok {
			*he = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// TestTreePagination: a revision listing without sizes is completed from
// the tree listing at the commit, page after page.
func TestTreePagination(t *testing.T) {
	s := hubtest.New(t)
	s.PageSize = 2
	files := map[string][]byte{"config.json": []byte("{}"), "a/b/c.gguf": {1, 2, 3}, "d.safetensors": make([]byte, 10), "e.txt": []byte("e")}
	repo := s.Add("org/m", files)
	repo.NoSizes = true
	c := newClient(s, nil)
	r, err := open(t, c, s, "hf://org/m")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Entries) != len(files) {
		t.Fatalf("entries %+v", r.Entries)
	}
	for _, e := range r.Entries {
		if e.Size != int64(len(files[e.Name])) || e.ETag == "" {
			t.Errorf("entry %+v", e)
		}
	}
	var pages int
	for _, q := range s.Log() {
		if strings.Contains(q.Path, "/tree/") {
			pages++
			if !strings.Contains(q.Path, "/tree/"+repo.Commit) {
				t.Errorf("tree not at the commit: %s", q.Path)
			}
		}
	}
	// 4 files and 2 directories, 2 a page.
	if pages != 3 {
		t.Errorf("%d tree pages, want 3", pages)
	}
}

// TestCache: a second open of the same commit reads the header bytes from
// the cache: only the listing is requested, and the bytes are the same.
func TestCache(t *testing.T) {
	s := hubtest.New(t)
	file := safetensorsFile(t, "w", 5, 0)
	repo := s.Add("org/m", map[string][]byte{"model.safetensors": file})
	dir := t.TempDir()
	for run := range 2 {
		s.Reset()
		c := newClient(s, func(cfg *remote.Config) { cfg.CacheDir = dir })
		r, err := open(t, c, s, "hf://org/m")
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, r, "model.safetensors", int64(len(file))); !bytes.Equal(got, file) {
			t.Fatal("bytes differ")
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		st := c.Stats()
		wantReq, wantHits := int64(3), int64(0)
		if run == 1 {
			wantReq, wantHits = 1, 1
		}
		if st.Requests != wantReq || st.CacheHits != wantHits || int64(len(s.Log())) != wantReq {
			t.Errorf("run %d: %+v, want %d requests, %d hits", run, st, wantReq, wantHits)
		}
	}
	// At the commit itself, the listing is cached too: no request at all.
	s.Reset()
	c := newClient(s, func(cfg *remote.Config) { cfg.CacheDir = dir })
	r, err := open(t, c, s, "hf://org/m@"+repo.Commit)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, r, "model.safetensors", int64(len(file))); !bytes.Equal(got, file) || len(s.Log()) != 0 || c.Stats().CacheHits != 2 {
		t.Errorf("pinned and cached: %d requests, %+v", len(s.Log()), c.Stats())
	}
}

func TestPlainURL(t *testing.T) {
	s := hubtest.New(t)
	file := safetensorsFile(t, "w", 2, 0)
	s.Add("org/m", map[string][]byte{"model.safetensors": file})
	// The CDN's signed address is a plain URL.
	c := newClient(s, func(cfg *remote.Config) { cfg.Token = "hf_never_sent" })
	if _, err := open(t, c, s, "hf://org/m"); err != nil {
		t.Fatal(err)
	}
	var loc string
	for _, q := range s.Log() {
		if q.Host == "hub" && q.Status == 302 {
			t.Fatal("no resolve yet")
		}
	}
	loc = s.CDN.URL + "/blobs/" + sha256Hex(file) + "?X-Amz-Signature=x"
	s.Reset()
	r, err := open(t, c, s, loc)
	if err != nil {
		t.Fatal(err)
	}
	if r.Commit != "" || len(r.Entries) != 1 || r.Entries[0].Size != int64(len(file)) {
		t.Fatalf("listing %+v", r.Entries)
	}
	if got := readAll(t, r, r.Entries[0].Name, int64(len(file))); !bytes.Equal(got, file) {
		t.Fatal("bytes differ")
	}
	if log := s.Log(); len(log) != 1 || log[0].Auth != "" {
		t.Errorf("requests %+v", log)
	}
	// A plain URL's errors say what the server said, nothing about tokens.
	_, err = open(t, c, s, s.CDN.URL+"/blobs/nothing?X-Amz-Signature=x")
	if err == nil || !strings.Contains(err.Error(), "HTTP 403 Forbidden") || strings.Contains(err.Error(), "TOKEN") {
		t.Errorf("plain URL error: %v", err)
	}
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestBadListing: a listing naming a file outside the repo, with control
// characters (terminal escapes) or twice is refused, naming the entry.
func TestBadListing(t *testing.T) {
	for _, name := range []string{"../etc/passwd", "a/../../b", "/abs", "evil\x1b[2J.gguf"} {
		s := hubtest.New(t)
		s.Add("org/m", map[string][]byte{name: {1}})
		_, err := open(t, newClient(s, nil), s, "hf://org/m")
		if err == nil || !strings.Contains(err.Error(), "listing: bad entry") {
			t.Errorf("%q: %v", name, err)
		}
	}
}

// TestModelMetadata: Model lists the repo, fetches the config.json beside
// the path in the background, and has every JSON file read whole in one
// GET, however large (an index of 200 KiB here).
func TestModelMetadata(t *testing.T) {
	s := hubtest.New(t)
	index := []byte(`{"weight_map": {` + strings.Repeat(`"model.layers.0.mlp.down_proj.weight": "model-00001-of-00002.safetensors", `, 2500) + `"x": "y"}}`)
	s.Add("org/m", map[string][]byte{"config.json": []byte(`{"a": 1}`), "sub/config.json": []byte(`{"b": 2}`),
		"model.safetensors.index.json": index, "m.gguf": make([]byte, 10)})
	c := newClient(s, nil)
	src, _ := remote.Parse("hf://org/m", s.Hub.URL)
	fsys, p, err := c.Model(context.Background(), src)
	if err != nil || p != "." {
		t.Fatal(p, err)
	}
	f, err := fsys.Open("model.safetensors.index.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, index) {
		t.Fatalf("index: %v", err)
	}
	if err := fsys.Repo().Close(); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, q := range s.Log() {
		paths = append(paths, q.Path[strings.LastIndex(q.Path, "/")+1:])
	}
	sort.Strings(paths)
	// The listing, config.json (not sub/config.json), the index once.
	if fmt.Sprint(paths) != "[config.json main model.safetensors.index.json]" {
		t.Errorf("requests %v", paths)
	}
	if _, _, err := c.Model(context.Background(), remote.Source{Raw: "hf://org/m/nope", Endpoint: s.Hub.URL, Repo: "org/m", Revision: "main", Path: "nope"}); err == nil ||
		!strings.Contains(err.Error(), `no file or folder "nope" in org/m at commit`) {
		t.Errorf("a missing path: %v", err)
	}
}

// TestSkipsAndSeeks: reads that skip a few bytes (a GGUF reader stepping
// over a small field) still grow the ranges; a read far away (a zip's
// local header) asks for a small range and grows again from there.
func TestSkipsAndSeeks(t *testing.T) {
	s := hubtest.New(t)
	s.Add("org/g", map[string][]byte{"m.gguf": make([]byte, 4<<20)})
	c := newClient(s, nil)
	r, err := open(t, c, s, "hf://org/g")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := r.File("m.gguf")
	buf := make([]byte, 64<<10)
	for _, off := range []int64{0, 65536 + 10, 196608 + 20, 3 << 20, 3<<20 + 4096 + 5} {
		if _, err := f.ReadAt(buf[:min(len(buf), 4000)], off); err != nil {
			t.Fatal(err)
		}
		if off < 1<<20 {
			f.ReadAt(buf, off) // the rest of the 64 KiB block
		}
	}
	var ranges []string
	for _, q := range s.Log() {
		if q.Host == "cdn" {
			ranges = append(ranges, q.Range)
		}
	}
	want := "[bytes=0-65535 bytes=65546-196617 bytes=196628-458771 bytes=3145728-3149823 bytes=3149829-3158020]"
	if fmt.Sprint(ranges) != want {
		t.Errorf("ranges %v\nwant %s", ranges, want)
	}
}
