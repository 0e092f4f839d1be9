package loaders

import (
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/qinsaudit/qinsaudit/internal/safeio"
)

// Source is where model files are found, in the manner of io/fs: the local
// file system (Local), or a remote repository (internal/remote's FS), so
// that the directory rules, the index and config.json are read the same
// way wherever the files are. Names are paths as the OS takes them for
// Local, paths in the repository for a remote source; every file Open
// returns is also an io.ReaderAt, which is all a loader reads through.
type Source interface {
	fs.StatFS
	fs.ReadDirFS
}

// Local is the local file system.
var Local Source = localFS{}

type localFS struct{}

// Open opens a regular file only: a FIFO or a device named as a model
// must not block or stream forever (see internal/safeio).
func (localFS) Open(name string) (fs.File, error) {
	f, _, err := safeio.OpenRegular(name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (localFS) Stat(name string) (fs.FileInfo, error)      { return os.Stat(name) }
func (localFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// A Prefetcher is a Source that fetches the first bytes of many files at
// once (a remote one, in parallel) before they are read one by one;
// first[i] > 0 estimates the header of names[i].
type Prefetcher interface {
	Prefetch(names []string, first []int64) error
}

// openAt opens name as a reader at offsets with its FileInfo.
func openAt(src Source, name string) (io.ReaderAt, fs.FileInfo, func() error, error) {
	f, err := src.Open(name)
	if err != nil {
		return nil, nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, nil, nil, fmt.Errorf("%s: is a directory", name)
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		f.Close()
		return nil, nil, nil, fmt.Errorf("%s: the source cannot read it at offsets", name)
	}
	return ra, fi, f.Close, nil
}

// headerEstimate is the bytes a safetensors header of these tensor names
// takes, a little over: 8 bytes of length, per tensor its quoted name and
// about 90 bytes of {"dtype":..,"shape":[..],"data_offsets":[..]}, and
// room for __metadata__. It sizes a remote shard's first ranged GET so
// that one request almost always holds the header, without fetching
// much more.
func headerEstimate(names []string) int64 {
	n := int64(8 + 512)
	for _, t := range names {
		n += int64(len(t)) + 96
	}
	return n
}

// prefetch asks a Prefetcher source for the first bytes of files, with the
// header estimates of safetensors shards an index named, and of the other
// parts of a split GGUF that a part's name says exist (its header decides
// whether they are read; fetching them early only saves round trips).
func prefetch(src Source, files []string, estimates map[string]int64) error {
	p, ok := src.(Prefetcher)
	if !ok || len(files) == 0 {
		return nil
	}
	all := slices.Clone(files)
	for _, f := range files {
		prefix, _, count, ok := splitPath(f)
		if !ok || count > maxSplitParts {
			continue
		}
		for i := int64(1); i <= count; i++ {
			part := partPath(prefix, i, count)
			if _, err := src.Stat(part); err == nil && !slices.Contains(all, part) {
				all = append(all, part)
			}
		}
	}
	first := make([]int64, len(all))
	for i, f := range all {
		if strings.HasSuffix(f, ".safetensors") {
			first[i] = estimates[filepath.Clean(f)]
		}
	}
	return p.Prefetch(all, first)
}

// sniffRange is the first range of a directory's file whose name suggests
// no model (README.md, tokenizer.json): enough for Sniff to say so.
const sniffRange = 1 << 10

// modelExts are the name endings of model files: they get the full first
// range. Names decide only how much is fetched first, never what a file
// is: Sniff reads its content either way.
var modelExts = []string{".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt", ".ptl", ".jit", ".pkl"}

// prefetchDir fetches at once, for a Prefetcher source, the first bytes of
// every file of dir that Select may sniff: a shard an index names sized
// from it, another model file the default range, any other file a few
// bytes. A local directory is left alone.
func prefetchDir(src Source, dir string, entries []Entry) error {
	p, ok := src.(Prefetcher)
	if !ok {
		return nil
	}
	// The indexes Select will have read are chosen by name alone: read
	// them first, for the shards' sizes. A bad one is reported when
	// Select has it read.
	estimates := map[string]int64{}
	byName, err := Select(filepath.ToSlash(dir), entries, func(string) (string, error) { return "", nil })
	if err != nil {
		return err
	}
	for _, n := range byName.Indexes {
		if ix, err := readIndex(src, filepath.Join(dir, n), nil); err == nil {
			maps.Copy(estimates, ix.estimates)
		}
	}
	var names []string
	var first []int64
	for _, e := range entries {
		if strings.HasSuffix(e.Name, indexSuffix) {
			continue
		}
		n := filepath.Join(dir, e.Name)
		est := estimates[filepath.Clean(n)]
		if est == 0 && !slices.ContainsFunc(modelExts, func(x string) bool { return strings.HasSuffix(e.Name, x) }) {
			// Enough for Sniff to tell it is not a model.
			est = sniffRange
		}
		names, first = append(names, n), append(first, est)
	}
	return p.Prefetch(names, first)
}
