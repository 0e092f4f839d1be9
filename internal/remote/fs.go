package remote

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// FS is a Repo as a read-only file system in the manner of io/fs, for code
// written against a directory: names are paths in the repo ("." is its
// root; "\" is read as "/"), directories are implied by the files' paths,
// and every opened file is also an io.ReaderAt.
type FS struct {
	r   *Repo
	ctx context.Context
}

// FS returns the repo as a file system.
func (r *Repo) FS(ctx context.Context) *FS { return &FS{r: r, ctx: ctx} }

var (
	_ fs.StatFS    = (*FS)(nil)
	_ fs.ReadDirFS = (*FS)(nil)
)

func (f *FS) clean(op, name string) (string, error) {
	n := path.Clean(filepath.ToSlash(name))
	if strings.HasPrefix(n, "/") || n == ".." || strings.HasPrefix(n, "../") {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return n, nil
}

// Open opens a file of the listing; its reads fetch byte ranges.
func (f *FS) Open(name string) (fs.File, error) {
	n, err := f.clean("open", name)
	if err != nil {
		return nil, err
	}
	if _, ok := f.r.Lookup(n); !ok {
		if f.isDir(n) {
			return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("is a directory")}
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	file, err := f.r.File(n)
	if err != nil {
		return nil, err
	}
	return &openFile{File: file}, nil
}

// Stat describes a file or an implied directory.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	n, err := f.clean("stat", name)
	if err != nil {
		return nil, err
	}
	if e, ok := f.r.Lookup(n); ok {
		return info{name: path.Base(n), size: e.Size}, nil
	}
	if f.isDir(n) {
		return info{name: path.Base(n), dir: true}, nil
	}
	return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

func (f *FS) isDir(n string) bool {
	if n == "." {
		return true
	}
	for _, e := range f.r.Entries {
		if strings.HasPrefix(e.Name, n+"/") {
			return true
		}
	}
	return false
}

// ReadDir lists a directory's files and subdirectories, sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := f.clean("readdir", name)
	if err != nil {
		return nil, err
	}
	if !f.isDir(n) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	prefix := n + "/"
	if n == "." {
		prefix = ""
	}
	seen := map[string]bool{}
	var out []fs.DirEntry
	for _, e := range f.r.Entries {
		rest, ok := strings.CutPrefix(e.Name, prefix)
		if !ok {
			continue
		}
		child, _, sub := strings.Cut(rest, "/")
		if seen[child] {
			continue
		}
		seen[child] = true
		out = append(out, fs.FileInfoToDirEntry(info{name: child, size: e.Size, dir: sub}))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// Prefetch fetches the first bytes of the named files all at once;
// first[i], when positive, is how many bytes file i's first range asks
// for (an estimate of its header).
func (f *FS) Prefetch(names []string, first []int64) error {
	var clean []string
	for i, name := range names {
		n, err := f.clean("prefetch", name)
		if err != nil {
			return err
		}
		if _, ok := f.r.Lookup(n); !ok {
			continue // the reader will say it is missing
		}
		if i < len(first) && first[i] > 0 {
			f.r.Hint(n, first[i])
		}
		clean = append(clean, n)
	}
	return f.r.Prefetch(f.ctx, clean)
}

// Repo is the repo behind the file system.
func (f *FS) Repo() *Repo { return f.r }

type info struct {
	name string
	size int64
	dir  bool
}

func (i info) Name() string { return i.name }
func (i info) Size() int64  { return i.size }
func (i info) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.dir }
func (i info) Sys() any           { return nil }

// openFile is a File open for sequential reads too.
type openFile struct {
	*File
	off int64
}

func (o *openFile) Stat() (fs.FileInfo, error) {
	return info{name: path.Base(o.name), size: o.size}, nil
}

func (o *openFile) Read(p []byte) (int, error) {
	n, err := o.ReadAt(p, o.off)
	o.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (o *openFile) Close() error { return nil }
