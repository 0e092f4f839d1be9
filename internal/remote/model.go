package remote

import (
	"context"
	"fmt"
	"path"
	"strings"
)

// maxMetaBytes bounds a metadata file fetched ahead (the loaders read
// config.json and indexes of up to 64 MiB).
const maxMetaBytes = 64 << 20

// Model opens src for the loaders: the file system, and the path in it to
// open ("." for a whole repo, the named file or folder, a plain URL's file
// name). It lists the repo (one request), then starts fetching, in the
// background, the config.json beside the path, which the loaders read
// besides the model files. (A reader of a file being fetched waits for
// it; nothing is fetched twice.) Close the repo to wait for it.
func (c *Client) Model(ctx context.Context, src Source) (*FS, string, error) {
	r, err := c.Open(ctx, src)
	if err != nil {
		return nil, "", err
	}
	fsys := r.FS(ctx)
	p := "."
	switch {
	case !src.IsHub():
		p = r.Entries[0].Name
	case src.Path != "":
		p = src.Path
	}
	fi, err := fsys.Stat(p)
	if err != nil {
		return nil, "", fmt.Errorf("%s: no file or folder %q in %s at commit %s", src.Raw, p, src.Repo, r.Commit)
	}
	dir := p
	var names []string
	if !fi.IsDir() {
		dir = path.Dir(p)
	}
	for _, e := range r.Entries {
		if e.Size == 0 || e.Size > maxMetaBytes {
			continue
		}
		// The JSON the loaders read, config.json and weights indexes, is
		// read whole: in one GET, whoever reads it first. (Other JSON, a
		// tokenizer's, is only sniffed: a few bytes.)
		if path.Base(e.Name) == "config.json" || strings.HasSuffix(e.Name, ".index.json") {
			r.Hint(e.Name, e.Size)
		}
		// The loaders read the config.json beside the path whatever the
		// folder holds (an index only if they choose it; they fetch it
		// themselves, while this is in flight).
		if path.Dir(e.Name) == dir && path.Base(e.Name) == "config.json" && e.Name != p {
			names = append(names, e.Name)
		}
	}
	// An error here is the loaders' to report, when they read the file.
	r.pending.Go(func() { _ = fsys.Prefetch(names, nil) })
	return fsys, p, nil
}
