package loaders

import (
	"cmp"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

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

// isModelName reports whether a name ends as a model file's does.
func isModelName(name string) bool {
	return slices.ContainsFunc(modelExts, func(x string) bool { return strings.HasSuffix(name, x) })
}

// prefetchDir fetches at once, for a Prefetcher source, the first bytes of
// every file of dir that Select may sniff: a shard an index names sized
// from it, another model file the default range, any other file a few
// bytes. A local directory is left alone.
//
// The indexes Select will read are chosen by name alone, and read first
// for the shards' header sizes; but the shards of a complete set named
// -NNNNN-of-NNNNN.safetensors, and every file that is not a model file, do
// not wait for them: their first ranges are sent together with the
// indexes' GETs (a shard's sized by earlyEstimate), so that a sharded
// repo's heads cost the round trip of the index, not one more after it.
// The index is still read and checked against the shards (loaders.Open).
func prefetchDir(src Source, dir string, entries []Entry) error {
	p, ok := src.(Prefetcher)
	if !ok {
		return nil
	}
	byName, err := Select(filepath.ToSlash(dir), entries, func(string) (string, error) { return "", nil })
	if err != nil {
		return err
	}
	var indexBytes int64
	for _, n := range byName.Indexes {
		for _, e := range entries {
			if e.Name == n {
				indexBytes += e.Size
			}
		}
	}
	named := namedShards(entries)
	// What the index cannot size: a named shard (sized from the index's
	// size instead) and a file that is not a model file (sniffed only).
	early := func(e Entry) bool { return named[e.Name] || !isModelName(e.Name) }
	var names []string
	var first []int64
	add := func(e Entry, est int64) {
		n := filepath.Join(dir, e.Name)
		if est == 0 && !isModelName(e.Name) {
			// Enough for Sniff to tell it is not a model.
			est = sniffRange
		}
		names, first = append(names, n), append(first, est)
	}
	// Without an index there is nothing to wait for: every file at once.
	var started chan error
	if len(byName.Indexes) > 0 {
		est := earlyEstimate(indexBytes, len(named))
		for _, e := range entries {
			if strings.HasSuffix(e.Name, indexSuffix) || !early(e) {
				continue
			}
			if named[e.Name] {
				add(e, est)
			} else {
				add(e, 0)
			}
		}
		if len(names) > 0 {
			started = make(chan error, 1)
			go func(names []string, first []int64) { started <- p.Prefetch(names, first) }(names, first)
		}
		names, first = nil, nil
	}
	// A bad index is reported when Select has it read.
	estimates := map[string]int64{}
	for _, n := range byName.Indexes {
		if ix, err := readIndex(src, filepath.Join(dir, n), nil); err == nil {
			maps.Copy(estimates, ix.estimates)
		}
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name, indexSuffix) || (started != nil && early(e)) {
			continue
		}
		add(e, estimates[filepath.Clean(filepath.Join(dir, e.Name))])
	}
	if len(names) > 0 {
		err = p.Prefetch(names, first)
	}
	if started != nil {
		err = cmp.Or(<-started, err)
	}
	return err
}

// shardName is transformers' name of a safetensors shard (modeling_utils'
// shard file pattern: -%05d-of-%05d), compiled on first use.
var shardName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(.*)-([0-9]{5})-of-([0-9]{5})\.safetensors$`)
})

// namedShards returns the safetensors shards of entries whose names say
// they are a complete set: for a prefix and a count N, parts 1 to N all
// present. A set with a part missing, or a part numbered past its count,
// is left to the index.
func namedShards(entries []Entry) map[string]bool {
	type set struct {
		prefix string
		count  int
	}
	parts := map[set]map[int]string{}
	for _, e := range entries {
		m := shardName().FindStringSubmatch(e.Name)
		if m == nil {
			continue
		}
		no, err1 := strconv.Atoi(m[2])
		count, err2 := strconv.Atoi(m[3])
		if err1 != nil || err2 != nil {
			continue
		}
		k := set{m[1], count}
		if parts[k] == nil {
			parts[k] = map[int]string{}
		}
		parts[k][no] = e.Name
	}
	named := map[string]bool{}
	for k, ps := range parts {
		if len(ps) != k.count {
			continue
		}
		complete := true
		for i := 1; i <= k.count; i++ {
			if ps[i] == "" {
				complete = false
			}
		}
		if complete {
			for _, n := range ps {
				named[n] = true
			}
		}
	}
	return named
}

// earlyEstimate sizes the first range of a named shard before the index
// is read: its tensor names are not known yet, but the index's size is.
// An index entry is a tensor's quoted name and its quoted shard name
// (about 40 bytes besides the tensor's name); a header entry is the
// quoted name and about 90 bytes; so a model's headers take at most about
// twice its index, and a shard its share of that (plus room for
// __metadata__). A shard holding more than its share of the tensors
// costs one more GET of the missing bytes, never a refetch; the
// DefaultFirstRange of 64 KiB instead would ask for up to 20 times a
// typical header's bytes.
func earlyEstimate(indexBytes int64, shards int) int64 {
	if shards == 0 {
		return 0
	}
	return 2*indexBytes/int64(shards) + 1<<10
}
