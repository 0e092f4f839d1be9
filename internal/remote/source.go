// Package remote reads model files where they live: repositories on the
// Hugging Face Hub (or a mirror of it) and plain HTTP(S) URLs, header-only,
// through ranged GETs.
//
// It is format-neutral: a Repo is a listing (names, sizes, content ids, all
// from one commit) and a File is an io.ReaderAt over one remote file that
// fetches byte ranges lazily and keeps them, so that a loader's reads cost a
// few requests, never a download. The loaders decide what to read; this
// package decides how to fetch it.
//
// Written on net/http rather than a Hub client library: there is no Go
// client of the Hub's API that does lazy ranged reads, and the requests
// needed are few (one listing, ranged GETs of /resolve/), so the value is in
// what is checked (Content-Range totals, short bodies, a 200 to a ranged
// request, where a token goes), which is this package's whole job.
package remote

import (
	"fmt"
	"net/url"
	"path"
	"strings"
)

// DefaultEndpoint is the Hub, unless HF_ENDPOINT names a mirror.
const DefaultEndpoint = "https://huggingface.co"

// Source is a remote model as the user named it.
type Source struct {
	// Raw is the source as given.
	Raw string
	// Endpoint is the Hub's base URL (scheme and host, no trailing slash)
	// for a Hub source, "" for a plain URL.
	Endpoint string
	// Repo is "ORG/NAME" on the Hub.
	Repo string
	// Revision is the branch, tag or commit asked for ("main" by default).
	Revision string
	// Path is a file (or folder) inside the repo; "" for the whole repo.
	Path string
	// URL is a plain URL's address; "" for a Hub source.
	URL string
}

// IsHub reports whether s is a repository (or a file in one) on the Hub.
func (s Source) IsHub() bool { return s.Repo != "" }

// Name is the name the model's file gets in the listing of a plain URL: the
// last segment of its path.
func (s Source) Name() string {
	if s.IsHub() {
		return s.Path
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		return "model"
	}
	if b := path.Base(u.Path); b != "/" && b != "." && b != ".." {
		return b
	}
	return "model" // a URL without a file name
}

// IsRemote reports whether arg names a remote source rather than a local
// path: it starts with hf://, http:// or https://.
func IsRemote(arg string) bool {
	for _, p := range []string{"hf://", "http://", "https://"} {
		if len(arg) >= len(p) && strings.EqualFold(arg[:len(p)], p) {
			return true
		}
	}
	return false
}

// Parse reads a remote source. endpoint is the Hub the hf:// scheme means
// (DefaultEndpoint or HF_ENDPOINT); an https:// URL on that host or on
// huggingface.co is read as a Hub address: ORG/REPO, ORG/REPO/resolve/REV/PATH,
// ORG/REPO/blob/REV/PATH (the web page of a file) or ORG/REPO/tree/REV.
// Any other URL is a plain file.
//
// In hf://ORG/REPO@REV/PATH a revision holding "/" (refs/pr/1) is written
// URL-escaped: refs%2Fpr%2F1.
func Parse(raw, endpoint string) (Source, error) {
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	endpoint = strings.TrimRight(endpoint, "/")
	src := Source{Raw: raw}
	if len(raw) >= 5 && strings.EqualFold(raw[:5], "hf://") {
		rest := raw[5:]
		parts := strings.SplitN(rest, "/", 3)
		if len(parts) < 2 || parts[0] == "" || parts[1] == "" || strings.HasPrefix(parts[1], "@") {
			return src, fmt.Errorf("%s: want hf://ORG/REPO[@REVISION][/PATH]", raw)
		}
		if parts[0] == "datasets" || parts[0] == "spaces" {
			return src, fmt.Errorf("%s: only models are read, not %s", raw, parts[0])
		}
		name, rev, _ := strings.Cut(parts[1], "@")
		src.Endpoint, src.Repo, src.Revision = endpoint, parts[0]+"/"+name, "main"
		if rev != "" {
			r, err := url.PathUnescape(rev)
			if err != nil {
				return src, fmt.Errorf("%s: revision: %w", raw, err)
			}
			src.Revision = r
		}
		if len(parts) == 3 {
			src.Path = strings.Trim(parts[2], "/")
		}
		return src, checkHub(src)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return src, fmt.Errorf("%s: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return src, fmt.Errorf("%s: not an hf://, http:// or https:// address", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		// A query may carry a signature; keep the URL as given.
		src.URL = raw
		return src, nil
	}
	ep, _ := url.Parse(endpoint)
	if ep != nil && (strings.EqualFold(u.Host, ep.Host) || strings.EqualFold(u.Host, "huggingface.co")) {
		segs := strings.Split(strings.Trim(u.EscapedPath(), "/"), "/")
		if segs[0] == "datasets" || segs[0] == "spaces" {
			return src, fmt.Errorf("%s: only models are read, not %s", raw, segs[0])
		}
		if len(segs) == 2 || (len(segs) >= 4 && (segs[2] == "resolve" || segs[2] == "blob" || segs[2] == "tree")) {
			src.Endpoint = u.Scheme + "://" + u.Host
			src.Repo = segs[0] + "/" + segs[1]
			src.Revision = "main"
			if len(segs) >= 4 {
				if src.Revision, err = url.PathUnescape(segs[3]); err != nil {
					return src, fmt.Errorf("%s: revision: %w", raw, err)
				}
				p, err := url.PathUnescape(strings.Join(segs[4:], "/"))
				if err != nil {
					return src, fmt.Errorf("%s: path: %w", raw, err)
				}
				src.Path = p
			}
			return src, checkHub(src)
		}
	}
	src.URL = raw
	return src, nil
}

// checkHub refuses repo names and paths that would leave the repository's
// URL space.
func checkHub(s Source) error {
	for _, seg := range append(strings.Split(s.Repo, "/"), strings.Split(s.Path, "/")...) {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%s: %q is not allowed in a repository name or path", s.Raw, seg)
		}
	}
	if s.Revision == "" {
		return fmt.Errorf("%s: empty revision", s.Raw)
	}
	return nil
}
