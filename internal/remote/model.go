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
// name). It lists the repo (one request), then fetches at once, in
// parallel, what the loaders will read first: config.json and any index
// beside the path, and the file the source names.
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
	var first []int64
	if !fi.IsDir() {
		dir = path.Dir(p)
		names, first = append(names, p), append(first, 0)
	}
	for _, e := range r.Entries {
		base := path.Base(e.Name)
		if path.Dir(e.Name) != dir || e.Name == p || e.Size == 0 || e.Size > maxMetaBytes {
			continue
		}
		if base == "config.json" || strings.HasSuffix(base, ".index.json") {
			names, first = append(names, e.Name), append(first, e.Size)
		}
	}
	if err := fsys.Prefetch(names, first); err != nil {
		return nil, "", err
	}
	return fsys, p, nil
}
