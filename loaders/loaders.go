// Package loaders finds the tensors in model files. Each format has its own
// package behind the Loader interface; Open tries them in the order of the
// list below, recognising a file's format by its content, never by its
// name. Which files of a directory make the model is decided by Select, by
// name first, as the tools that load such directories do.
package loaders

import (
	"archive/zip"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/hugepage"
	"github.com/qinsaudit/qinsaudit/internal/safeio"
	"github.com/qinsaudit/qinsaudit/loaders/gguf"
	"github.com/qinsaudit/qinsaudit/loaders/pytorch"
	"github.com/qinsaudit/qinsaudit/loaders/safetensors"
)

// Loader reads the tensor table of one file format.
type Loader interface {
	// Name is the loader's format family, e.g. "safetensors".
	Name() string
	// Sniff reports whether head, the first bytes of a file (up to
	// HeadSize, fewer for a short file), looks like this format.
	Sniff(head []byte) bool
	// Load reads the tensor table from headers only. The returned model
	// holds exactly one File, whose Path is left empty for the caller to
	// fill. Malformed input gives an *accounting.FormatError.
	Load(r io.ReaderAt, size int64) (*accounting.Model, error)
}

// HeadSize is how many bytes Sniff is shown.
const HeadSize = 64

// all is every loader, in the order Open asks them.
var all = []Loader{
	gguf.Loader{},
	safetensors.Loader{},
	pytorch.Loader{},
}

// ErrUnknownFormat is wrapped by the error for a file no loader recognises.
var ErrUnknownFormat = errors.New("unknown model file format")

// Open reads every model file named by paths into one Model. A path may be a
// model file, a weights index (*.index.json), or a directory (see Select for
// what is read from one); a config.json beside the files contributes its
// quantization_config. A part of a split GGUF model brings in the other
// parts (see expandSplit). The files of one model hold each tensor name
// once: a name in two files (the same file named twice, two copies of the
// weights) is an error, and so is an index naming a tensor its shard does
// not hold.
func Open(paths ...string) (*accounting.Model, error) { return OpenSource(Local, paths...) }

// OpenSource is Open with the files in src: a remote repository goes
// through the same rules as a local directory.
func OpenSource(src Source, paths ...string) (*accounting.Model, error) {
	var files []string
	var indexes []*weightIndex
	var skipped []accounting.SkippedFile
	var configDirs []string
	pre := map[string]opened{}
	for _, p := range paths {
		fi, err := src.Stat(p)
		if err != nil {
			return nil, err
		}
		switch {
		case fi.IsDir():
			fs, ixs, skip, err := openDir(src, p, pre)
			if err != nil {
				return nil, err
			}
			files = append(files, fs...)
			indexes = append(indexes, ixs...)
			skipped = append(skipped, skip...)
			configDirs = append(configDirs, p)
		case strings.HasSuffix(p, indexSuffix):
			ix, err := readIndex(src, p, newConfine(src, filepath.Dir(p)))
			if err != nil {
				return nil, err
			}
			files = append(files, ix.shards...)
			indexes = append(indexes, ix)
			configDirs = append(configDirs, filepath.Dir(p))
		default:
			files = append(files, p)
			configDirs = append(configDirs, filepath.Dir(p))
		}
	}
	m, twice, err := openFiles(src, files, indexes, pre)
	if err != nil {
		return nil, err
	}
	if err := checkNames(m, indexes); err != nil {
		return nil, err
	}
	if twice != nil {
		return nil, twice
	}
	if err := checkSplits(m); err != nil {
		return nil, err
	}
	m.Skipped = skipped
	for _, d := range configDirs {
		q, err := readQuantConfig(src, filepath.Join(d, "config.json"))
		if err != nil {
			return nil, err
		}
		if q != nil {
			m.Quantization = q
			break
		}
	}
	return m, nil
}

// opened is a model file read, or the error reading it gave, and the
// file's identity.
type opened struct {
	m   *accounting.Model
	err error
	id  fileID
}

// fileID identifies a file whatever the name it is reached by (device and
// inode), zero when the system does not say.
type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{uint64(st.Dev), uint64(st.Ino)}
	}
	return fileID{}
}

// openFiles reads files in order into one Model, taking those pre holds
// from it (a directory's files, read when sniffed). A part of a split set
// whose siblings are not among files brings them in: the set takes its
// place, in part order. twice is the error of one file named twice (by two
// names, or a link), reported after the names are checked. A remote source
// fetches the files' first bytes all at once first (the shards an index
// names sized from it).
func openFiles(src Source, files []string, indexes []*weightIndex, pre map[string]opened) (m *accounting.Model, twice error, err error) {
	estimates := map[string]int64{}
	for _, ix := range indexes {
		maps.Copy(estimates, ix.estimates)
	}
	if err := prefetch(src, files, estimates); err != nil {
		return nil, nil, err
	}
	queue := slices.Clone(files)
	planned := make(map[string]bool, len(files))
	for _, f := range files {
		planned[filepath.Clean(f)] = true
	}
	expanded := map[string]bool{} // split sets already brought in, by prefix
	seen := make(map[fileID]string, len(files))
	m = &accounting.Model{}
	if len(pre) > 1 { // a directory's files, read: size the model for them
		nt := 0
		for _, o := range pre {
			if o.m != nil {
				nt += len(o.m.Tensors)
			}
		}
		m.Files = make([]accounting.File, 0, len(files))
		m.Tensors = make([]accounting.Tensor, 0, nt)
		hugepage.Advise(m.Tensors)
	}
	for k := 0; k < len(queue); k++ {
		p := queue[k]
		o, ok := pre[p]
		if ok {
			delete(pre, p)
		} else {
			o = openFile(src, p)
		}
		if o.err != nil {
			return nil, nil, o.err
		}
		fm := o.m
		if s := fm.Files[0].Split; s != nil && s.Count > 1 {
			set, err := splitSet(src, p, s, planned, expanded)
			if err != nil {
				return nil, nil, err
			}
			if err := prefetch(src, set, nil); err != nil {
				return nil, nil, err
			}
			if len(set) > 1 {
				// Read again in its place in the set: headers only.
				queue = slices.Replace(queue, k, k+1, set...)
				k--
				continue
			}
		}
		if o.id != (fileID{}) {
			if first, dup := seen[o.id]; dup && twice == nil {
				twice = fmt.Errorf("%s and %s are one file, named twice: its tensors would be counted twice", first, p)
			}
			seen[o.id] = p
		}
		base := len(m.Files)
		m.Files = append(m.Files, fm.Files...)
		if m.Tensors == nil && base == 0 {
			m.Tensors = fm.Tensors // one file, or the first: no copy
			continue
		}
		for _, t := range fm.Tensors {
			t.File += base
			m.Tensors = append(m.Tensors, t)
		}
	}
	return m, twice, nil
}

// checkNames fails when two files hold a tensor of one name, and when an
// index names a tensor that its shard does not hold.
func checkNames(m *accounting.Model, indexes []*weightIndex) error {
	if len(m.Files) < 2 && len(indexes) == 0 {
		return nil // one file: a name it repeats is its loader's to refuse
	}
	where := make(map[string]int, len(m.Tensors))
	for _, t := range m.Tensors {
		if f, ok := where[t.Name]; ok && f != t.File {
			return fmt.Errorf("tensor %q is in both %s and %s: one model holds each tensor once (the same file named twice, or two copies of the weights?)",
				t.Name, m.Files[f].Path, m.Files[t.File].Path)
		}
		where[t.Name] = t.File
	}
	if len(indexes) == 0 {
		return nil
	}
	clean := make([]string, len(m.Files))
	for i, f := range m.Files {
		clean[i] = filepath.Clean(f.Path)
	}
	for _, ix := range indexes {
		// Sorted only when something is wrong, to name the first.
		var wrong []string
		for name, shard := range ix.weightMap {
			if f, ok := where[name]; !ok || clean[f] != filepath.Clean(shard) {
				wrong = append(wrong, name)
			}
		}
		if len(wrong) > 0 {
			name := slices.Min(wrong)
			return fmt.Errorf("%s: weight_map puts tensor %q in %s, which does not hold it", ix.path, name, ix.weightMap[name])
		}
	}
	return nil
}

// OpenFile reads one model file with the loader that recognises it. Only a
// regular file is read: a FIFO or a device is refused without blocking.
func OpenFile(path string) (*accounting.Model, error) {
	o := openFile(Local, path)
	return o.m, o.err
}

func openFile(src Source, path string) opened {
	f, fi, closeFile, err := openAt(src, path)
	if err != nil {
		return opened{err: err}
	}
	defer closeFile()
	r, err := readHead(src, f, fi.Size(), path)
	if err != nil {
		return opened{err: err}
	}
	l := Detect(r.sniff())
	if l == nil {
		return opened{err: unknownFormat(path, r.head, fi.Size())}
	}
	m, err := load(l, r, fi, path)
	return opened{m: m, err: err, id: idOf(fi)}
}

// load reads the file at path, already open as r, with l.
func load(l Loader, r io.ReaderAt, fi fs.FileInfo, path string) (*accounting.Model, error) {
	m, err := l.Load(r, fi.Size())
	if err != nil {
		var fe *accounting.FormatError
		if errors.As(err, &fe) {
			fe.Path = path
			return nil, fe
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i := range m.Files {
		m.Files[i].Path = path
		m.Files[i].SizeBytes = fi.Size()
	}
	return m, nil
}

// unknownFormat is the error for a file no loader recognises. It says what
// was expected and what the file looks like, never what it holds: the file
// may be anything a link or a typo led to (a key, /etc/shadow).
func unknownFormat(path string, head []byte, size int64) error {
	if size == 0 {
		return fmt.Errorf("%s: %w: the file is empty", path, ErrUnknownFormat)
	}
	return fmt.Errorf("%s: %w: not safetensors (an 8-byte header length, then a JSON header), GGUF (magic \"GGUF\") or a PyTorch checkpoint (a zip archive or a pickle); it looks like %s",
		path, ErrUnknownFormat, looksLike(head))
}

// looksLike names the kind of content head, a file's first bytes, has.
func looksLike(head []byte) string {
	text := head
	for i := 0; i < 3 && len(text) > 0 && !utf8.Valid(text); i++ {
		text = text[:len(text)-1] // a character cut by the end of head
	}
	if !utf8.Valid(text) || bytes.ContainsFunc(text, func(r rune) bool {
		return r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f
	}) {
		if bytes.HasPrefix(head, []byte("PK")) {
			return "a zip archive"
		}
		return "binary data"
	}
	if t := bytes.TrimLeft(text, " \t\r\n"); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		return "JSON"
	}
	return "text"
}

// Detect returns the first loader that recognises head, or nil.
func Detect(head []byte) Loader {
	for _, l := range all {
		if l.Sniff(head) {
			return l
		}
	}
	return nil
}

// openDir reads a directory's listing and chooses its model files (see
// Select): the files to read, the indexes read, and the files skipped.
// Each file is opened once: a file sniffed is read then, into pre, unless
// the directory holds one of the names transformers loads (then every
// other file is only listed as skipped).
//
// Files of the directory must stay in it: a symlink that resolves outside
// it (see confine) is not read; it is listed as skipped, and it is an error
// when the model needs it (the file transformers loads, a shard an index
// names).
func openDir(src Source, dir string, pre map[string]opened) ([]string, []*weightIndex, []accounting.SkippedFile, error) {
	des, err := src.ReadDir(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	c := newConfine(src, dir)
	if c != nil {
		c.plain = make(map[string]bool, len(des))
	}
	var entries []Entry
	outside := map[string]error{}
	outsideSize := map[string]int64{}
	byName := false
	for _, e := range des {
		var info fs.FileInfo
		name := e.Name()
		switch {
		case e.Type().IsRegular():
			info, err = e.Info()
			if c != nil {
				c.plain[name] = true
			}
		case e.Type()&fs.ModeSymlink != 0:
			// A Hugging Face cache snapshot is links to blobs.
			p := filepath.Join(dir, name)
			if err = c.resolve(p); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // a dangling link: not a file of the directory
				}
				var esc *escapeError
				if !errors.As(err, &esc) {
					return nil, nil, nil, err
				}
				outside[name] = err
			}
			info, err = src.Stat(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
		default:
			continue
		}
		if err != nil {
			return nil, nil, nil, err
		}
		if info.Mode().IsRegular() {
			if outside[name] != nil {
				outsideSize[name] = info.Size()
			}
			entries = append(entries, Entry{Name: name, Size: info.Size()})
			byName = byName || slices.Contains(transformersNames, name)
		}
	}
	if err := prefetchDir(src, dir, entries); err != nil {
		return nil, nil, nil, err
	}
	var notRead []accounting.SkippedFile
	sel, err := Select(filepath.ToSlash(dir), entries, func(name string) (string, error) {
		p := filepath.Join(dir, name)
		if outside[name] != nil {
			notRead = append(notRead, accounting.SkippedFile{Path: p, SizeBytes: outsideSize[name], Reason: "a symlink to a file outside the model directory: not read (name the file itself to audit it)"})
			return "", nil
		}
		return sniffFile(src, p, c != nil && c.plain[name], !byName, pre)
	})
	if err != nil {
		return nil, nil, nil, err
	}
	files := make([]string, 0, len(sel.Files))
	for _, f := range sel.Files {
		if err := outside[f]; err != nil {
			return nil, nil, nil, err
		}
		files = append(files, filepath.Join(dir, f))
	}
	var indexes []*weightIndex
	named := map[string]bool{}
	listed := make(map[string]bool, len(files))
	for _, f := range files {
		listed[f] = true
	}
	for _, name := range sel.Indexes {
		ix, err := readIndex(src, filepath.Join(dir, name), c)
		if err != nil {
			return nil, nil, nil, err
		}
		indexes = append(indexes, ix)
		for _, sh := range ix.shards {
			if !listed[sh] {
				listed[sh] = true
				files = append(files, sh)
			}
			if rel, err := filepath.Rel(dir, sh); err == nil {
				named[filepath.ToSlash(rel)] = true
			}
		}
	}
	sel.Shards(named)
	skipped := append(sel.Skipped, notRead...)
	for i := range skipped {
		skipped[i].Path = filepath.Clean(filepath.FromSlash(skipped[i].Path))
	}
	for p := range pre {
		if !listed[p] {
			delete(pre, p) // read when sniffed, but not part of the model
		}
	}
	if len(files) == 0 {
		return nil, nil, nil, fmt.Errorf("%s: no model files found (subdirectories are not searched: name them)", dir)
	}
	return files, indexes, skipped, nil
}

// sniffFile returns the format of p if a loader recognises it, else "". A
// zip archive that is not a torch.save checkpoint (no data.pkl record) is
// some other file in a directory, not a broken model; named on the command
// line, it is still an error. With read, a model file is also read, into
// pre.
func sniffFile(src Source, p string, listedRegular, read bool, pre map[string]opened) (string, error) {
	f, fi, closeFile, err := openListed(src, p, listedRegular)
	if err != nil {
		return "", err
	}
	defer closeFile()
	r, err := readHead(src, f, fi.Size(), p)
	if err != nil {
		return "", err
	}
	l := Detect(r.sniff())
	if l == nil {
		return "", nil
	}
	if bytes.HasPrefix(r.head, []byte("PK")) {
		z, err := zip.NewReader(r, fi.Size())
		if err == nil && !pytorch.IsCheckpoint(z) {
			return "", nil
		}
		// A broken zip: let the loader say what is wrong with it.
	}
	if read {
		m, err := load(l, r, fi, p)
		pre[p] = opened{m: m, err: err, id: idOf(fi)}
	}
	return l.Name(), nil
}

// openListed opens p as safeio.OpenRegular does. When the directory's
// listing already showed p as a regular file, the stat before the open is
// left out (a system call per file of a large directory): the open is
// non-blocking and the opened file's own stat is checked all the same.
func openListed(src Source, p string, listedRegular bool) (io.ReaderAt, fs.FileInfo, func() error, error) {
	if !listedRegular || src != Local {
		return openAt(src, p)
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		f.Close()
		return openAt(src, p) // changed since listed: say what it is
	}
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	return f, fi, f.Close, nil
}

// headBytes is how much of a file is read first: the whole header of a
// small safetensors or GGUF file, so that such a file takes one read.
const headBytes = 4096

// headReader is a file whose first bytes, read once, serve the reads that
// fall within them.
type headReader struct {
	f    io.ReaderAt
	head []byte
}

func (h *headReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= 0 && off+int64(len(p)) <= int64(len(h.head)) {
		return copy(p, h.head[off:]), nil
	}
	return h.f.ReadAt(p, off)
}

// sniff returns what Sniff is shown: the first HeadSize bytes.
func (h *headReader) sniff() []byte { return h.head[:min(len(h.head), HeadSize)] }

// readHead reads the first bytes of f, a file of size bytes in src:
// headBytes of a local file, HeadSize of a remote one (whose source
// fetches what it was told to, and no more).
func readHead(src Source, f io.ReaderAt, size int64, path string) (*headReader, error) {
	want := int64(HeadSize)
	if src == Local {
		want = headBytes
	}
	head := make([]byte, min(size, want))
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &headReader{f: f, head: head[:n]}, nil
}

// confine is the rule for the files qinsaudit finds by itself in a model
// directory (its listing, the shards an index names, the parts of a split
// model, config.json): each must resolve, symlinks followed, inside the
// directory, or, when the directory is a snapshot of a Hugging Face cache
// (.../models--ORG--NAME/snapshots/REVISION, whose files are links to
// ../../blobs), inside that cache repository's blobs directory. A file
// named on the command line is read wherever it leads: the user chose it.
//
// A remote source has no links: newConfine gives nil, which passes every
// file.
type confine struct {
	dir   string
	plain map[string]bool // names the listing shows as regular files (no link to follow)
	roots []string        // resolved, absolute; nil until needed
}

// escapeError is the error of a file that resolves outside its model
// directory.
type escapeError struct{ path, target, dir string }

func (e *escapeError) Error() string {
	return fmt.Sprintf("%s: a symlink to %s, outside the model directory %s: refused (the files of a model directory must stay in it; name the file itself to audit it)", e.path, e.target, e.dir)
}

// newConfine is the rule for the files of dir in src; nil (no rule) for a
// source other than the local file system.
func newConfine(src Source, dir string) *confine {
	if src != Local {
		return nil
	}
	return &confine{dir: dir}
}

// check returns an *escapeError when path, a file in the directory,
// resolves outside it. A file that is not there passes: opening it says so.
func (c *confine) check(path string) error {
	if c == nil {
		return nil
	}
	if rel, err := filepath.Rel(c.dir, path); err == nil && !strings.ContainsRune(rel, filepath.Separator) {
		if c.plain != nil {
			if c.plain[rel] {
				return nil
			}
		} else if fi, err := os.Lstat(path); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return nil
		}
	}
	if err := c.resolve(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// resolve follows the links of path and returns an *escapeError when it
// leads outside the directory.
func (c *confine) resolve(path string) error {
	if c == nil {
		return nil
	}
	if c.roots == nil {
		real, err := filepath.EvalSymlinks(c.dir)
		if err != nil {
			return err
		}
		if real, err = filepath.Abs(real); err != nil {
			return err
		}
		c.roots = []string{real}
		for d := real; filepath.Dir(d) != d; d = filepath.Dir(d) {
			snaps := filepath.Dir(d)
			if filepath.Base(snaps) == "snapshots" && strings.HasPrefix(filepath.Base(filepath.Dir(snaps)), "models--") {
				c.roots = append(c.roots, filepath.Join(filepath.Dir(snaps), "blobs"))
				break
			}
		}
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	if target, err = filepath.Abs(target); err != nil {
		return err
	}
	for _, r := range c.roots {
		if target == r || strings.HasPrefix(target, strings.TrimSuffix(r, string(filepath.Separator))+string(filepath.Separator)) {
			return nil
		}
	}
	return &escapeError{path: path, target: target, dir: c.dir}
}

// weightIndex is a weights index (model.safetensors.index.json,
// pytorch_model.bin.index.json): which shard holds each tensor.
type weightIndex struct {
	path      string
	weightMap map[string]string // tensor name -> shard path, resolved
	shards    []string          // sorted, each once
	// estimates are the shards' header sizes their tensor names suggest
	// (see headerEstimate), keyed by cleaned shard path.
	estimates map[string]int64
}

// maxIndexBytes bounds a weights index or a config.json read into memory
// (the index of a 100,000-tensor model is ~10 MiB).
const maxIndexBytes = 64 << 20

// readIndex reads a weights index; its shard names are resolved against
// the index's directory and may not leave it (c). A tensor named twice in
// weight_map is an error: a JSON decoder would keep the last silently.
func readIndex(src Source, path string, c *confine) (*weightIndex, error) {
	data, err := readSmall(src, path)
	if err != nil {
		return nil, err
	}
	var ix struct {
		WeightMap json.RawMessage `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &ix); err != nil {
		return nil, fmt.Errorf("%s: weights index: %w", path, err)
	}
	out := &weightIndex{path: path, weightMap: map[string]string{}, estimates: map[string]int64{}}
	var names []string // in the file's order, for the first error
	if len(ix.WeightMap) > 0 && !bytes.Equal(ix.WeightMap, []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(ix.WeightMap))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return nil, fmt.Errorf("%s: weights index: weight_map is not an object", path)
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("%s: weights index: %w", path, err)
			}
			name := tok.(string) // a key is a string
			var shard string
			if err := dec.Decode(&shard); err != nil {
				return nil, fmt.Errorf("%s: weights index: tensor %q: %w", path, name, err)
			}
			if _, dup := out.weightMap[name]; dup {
				return nil, fmt.Errorf("%s: weights index: tensor %q is named twice in weight_map", path, name)
			}
			out.weightMap[name] = shard
			names = append(names, name)
		}
	}
	if len(out.weightMap) == 0 {
		return nil, fmt.Errorf("%s: weights index: no weight_map", path)
	}
	set := map[string]bool{}
	perShard := map[string][]string{}
	for _, name := range names {
		shard := out.weightMap[name]
		if shard == "" || filepath.IsAbs(shard) || strings.HasPrefix(shard, "/") || slices.Contains(strings.Split(filepath.ToSlash(shard), "/"), "..") {
			return nil, fmt.Errorf("%s: weights index: tensor %q: bad shard name %q", path, name, shard)
		}
		p := filepath.Join(filepath.Dir(path), filepath.FromSlash(shard))
		out.weightMap[name] = p
		if !set[p] {
			if err := c.check(p); err != nil {
				return nil, fmt.Errorf("%s names %w", path, err)
			}
		}
		set[p] = true
		perShard[p] = append(perShard[p], name)
	}
	out.shards = slices.Sorted(maps.Keys(set))
	for p, names := range perShard {
		out.estimates[filepath.Clean(p)] = headerEstimate(names)
	}
	return out, nil
}

// readQuantConfig reads the quantization settings of a config.json: the
// Hugging Face quantization_config (GPTQ, AWQ, bitsandbytes, FP8,
// compressed-tensors) or MLX's quantization. A missing file or key gives nil.
//
// Its numbers are checked: a bit width is 1 to 32 (0: not given), a group
// size positive, 0 (not given) or -1 (GPTQ's one group per row); anything
// else is an error naming the file and the key, not a figure derived from
// it. Like the files of its directory, it must not be a link out of it.
func readQuantConfig(src Source, path string) (*accounting.QuantConfig, error) {
	if err := newConfine(src, filepath.Dir(path)).check(path); err != nil {
		return nil, err
	}
	data, err := readSmall(src, path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	type quant struct {
		Method       string   `json:"quant_method"`
		Bits         int      `json:"bits"`
		WBit         int      `json:"w_bit"`
		GroupSize    int      `json:"group_size"`
		QGroupSize   int      `json:"q_group_size"`
		NotConv      []string `json:"modules_to_not_convert"`
		Int8Skip     []string `json:"llm_int8_skip_modules"`
		Ignore       []string `json:"ignore"`
		LoadIn4Bit   bool     `json:"load_in_4bit"`
		LoadIn8Bit   bool     `json:"load_in_8bit"`
		ConfigGroups map[string]struct {
			Weights *struct {
				NumBits   int `json:"num_bits"`
				GroupSize int `json:"group_size"`
			} `json:"weights"`
		} `json:"config_groups"`
	}
	var cfg struct {
		Q   *quant `json:"quantization_config"`
		MLX *quant `json:"quantization"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	q, key := cfg.Q, "quantization_config"
	if q == nil && cfg.MLX != nil {
		q, key = cfg.MLX, "quantization"
		q.Method = "mlx"
	}
	if q == nil {
		return nil, nil
	}
	bad := func(field string, v int, want string) error {
		return fmt.Errorf("%s: %s: %s %d: want %s", path, key, field, v, want)
	}
	const wantBits, wantGroup = "a bit width from 1 to 32", "a positive group size (or -1: one group per row)"
	for _, c := range []struct {
		field string
		v     int
		group bool
	}{{"bits", q.Bits, false}, {"w_bit", q.WBit, false}, {"group_size", q.GroupSize, true}, {"q_group_size", q.QGroupSize, true}} {
		switch {
		case !c.group && (c.v < 0 || c.v > 32):
			return nil, bad(c.field, c.v, wantBits)
		case c.group && (c.v < -1 || c.v > math.MaxInt32):
			return nil, bad(c.field, c.v, wantGroup)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(q.ConfigGroups)) {
		if w := q.ConfigGroups[name].Weights; w != nil {
			if w.NumBits < 0 || w.NumBits > 32 {
				return nil, bad("config_groups."+name+".weights.num_bits", w.NumBits, wantBits)
			}
			if w.GroupSize < -1 || w.GroupSize > math.MaxInt32 {
				return nil, bad("config_groups."+name+".weights.group_size", w.GroupSize, wantGroup)
			}
		}
	}
	out := &accounting.QuantConfig{Method: q.Method, Bits: q.Bits, GroupSize: q.GroupSize}
	out.Bits = cmp.Or(q.Bits, q.WBit)
	out.GroupSize = cmp.Or(q.GroupSize, q.QGroupSize)
	for _, name := range slices.Sorted(maps.Keys(q.ConfigGroups)) {
		if g := q.ConfigGroups[name]; g.Weights != nil {
			out.Bits = cmp.Or(out.Bits, g.Weights.NumBits)
			out.GroupSize = cmp.Or(out.GroupSize, g.Weights.GroupSize)
		}
	}
	if out.Bits == 0 && q.LoadIn4Bit {
		out.Bits = 4
	}
	if out.Bits == 0 && q.LoadIn8Bit {
		out.Bits = 8
	}
	out.ModulesNotToConvert = append(append(append([]string(nil), q.NotConv...), q.Int8Skip...), q.Ignore...)
	return out, nil
}

// readSmall reads a weights index or a config.json whole, bounded by
// maxIndexBytes.
func readSmall(src Source, path string) ([]byte, error) {
	if src == Local {
		return safeio.ReadFileLimit(path, maxIndexBytes)
	}
	f, err := src.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := int64(-1)
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	return safeio.ReadLimit(f, path, size, maxIndexBytes)
}
