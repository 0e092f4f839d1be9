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
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/qinsaudit/qinsaudit/accounting"
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

// maxIndexBytes bounds a safetensors index or config.json read into memory.
const maxIndexBytes = 64 << 20

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
	for _, p := range paths {
		fi, err := src.Stat(p)
		if err != nil {
			return nil, err
		}
		switch {
		case fi.IsDir():
			fs, ixs, skip, err := openDir(src, p)
			if err != nil {
				return nil, err
			}
			files = append(files, fs...)
			indexes = append(indexes, ixs...)
			skipped = append(skipped, skip...)
			configDirs = append(configDirs, p)
		case strings.HasSuffix(p, indexSuffix):
			ix, err := readIndex(src, p)
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
	m, err := openFiles(src, files, indexes)
	if err != nil {
		return nil, err
	}
	if err := checkNames(m, indexes); err != nil {
		return nil, err
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

// openFiles reads files in order into one Model. A part of a split set
// whose siblings are not among files brings them in: the set takes its
// place, in part order. A remote source fetches the files' first bytes
// all at once first (the shards an index names sized from it).
func openFiles(src Source, files []string, indexes []*weightIndex) (*accounting.Model, error) {
	estimates := map[string]int64{}
	for _, ix := range indexes {
		maps.Copy(estimates, ix.estimates)
	}
	if err := prefetch(src, files, estimates); err != nil {
		return nil, err
	}
	queue := slices.Clone(files)
	planned := map[string]bool{}
	for _, f := range files {
		planned[filepath.Clean(f)] = true
	}
	m := &accounting.Model{}
	for k := 0; k < len(queue); k++ {
		p := queue[k]
		fm, err := openFile(src, p)
		if err != nil {
			return nil, err
		}
		if s := fm.Files[0].Split; s != nil && s.Count > 1 {
			set, err := splitSet(src, p, s, planned)
			if err != nil {
				return nil, err
			}
			if err := prefetch(src, set, nil); err != nil {
				return nil, err
			}
			if len(set) > 1 {
				// Read again in its place in the set: headers only.
				queue = slices.Replace(queue, k, k+1, set...)
				k--
				continue
			}
		}
		base := len(m.Files)
		m.Files = append(m.Files, fm.Files...)
		for _, t := range fm.Tensors {
			t.File += base
			m.Tensors = append(m.Tensors, t)
		}
	}
	return m, nil
}

// checkNames fails when two files hold a tensor of one name, and when an
// index names a tensor that its shard does not hold.
func checkNames(m *accounting.Model, indexes []*weightIndex) error {
	where := make(map[string]int, len(m.Tensors))
	held := make(map[[2]string]bool, len(m.Tensors))
	for _, t := range m.Tensors {
		if f, ok := where[t.Name]; ok && f != t.File {
			return fmt.Errorf("tensor %q is in both %s and %s: one model holds each tensor once (the same file named twice, or two copies of the weights?)",
				t.Name, m.Files[f].Path, m.Files[t.File].Path)
		}
		where[t.Name] = t.File
		held[[2]string{filepath.Clean(m.Files[t.File].Path), t.Name}] = true
	}
	for _, ix := range indexes {
		names := slices.Sorted(maps.Keys(ix.weightMap))
		for _, name := range names {
			shard := ix.weightMap[name]
			if !held[[2]string{filepath.Clean(shard), name}] {
				return fmt.Errorf("%s: weight_map puts tensor %q in %s, which does not hold it", ix.path, name, shard)
			}
		}
	}
	return nil
}

// OpenFile reads one model file with the loader that recognises it.
func OpenFile(path string) (*accounting.Model, error) { return openFile(Local, path) }

func openFile(src Source, path string) (*accounting.Model, error) {
	f, size, closeFile, err := openAt(src, path)
	if err != nil {
		return nil, err
	}
	defer closeFile()
	head, err := readHead(f, path)
	if err != nil {
		return nil, err
	}
	l := Detect(head)
	if l == nil {
		return nil, fmt.Errorf("%s: %w (first bytes % x)", path, ErrUnknownFormat, head[:min(len(head), 16)])
	}
	m, err := l.Load(f, size)
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
		m.Files[i].SizeBytes = size
	}
	return m, nil
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
func openDir(src Source, dir string) ([]string, []*weightIndex, []accounting.SkippedFile, error) {
	des, err := src.ReadDir(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	var entries []Entry
	for _, e := range des {
		var info fs.FileInfo
		switch {
		case e.Type().IsRegular():
			info, err = e.Info()
		case e.Type()&fs.ModeSymlink != 0:
			// A Hugging Face cache snapshot is links to blobs.
			info, err = src.Stat(filepath.Join(dir, e.Name()))
			if errors.Is(err, os.ErrNotExist) {
				continue // a dangling link: not a file of the directory
			}
		default:
			continue
		}
		if err != nil {
			return nil, nil, nil, err
		}
		if info.Mode().IsRegular() {
			entries = append(entries, Entry{Name: e.Name(), Size: info.Size()})
		}
	}
	if err := prefetchDir(src, dir, entries); err != nil {
		return nil, nil, nil, err
	}
	sel, err := Select(filepath.ToSlash(dir), entries, func(name string) (string, error) {
		return modelFile(src, filepath.Join(dir, name))
	})
	if err != nil {
		return nil, nil, nil, err
	}
	files := make([]string, 0, len(sel.Files))
	for _, f := range sel.Files {
		files = append(files, filepath.Join(dir, f))
	}
	var indexes []*weightIndex
	named := map[string]bool{}
	for _, name := range sel.Indexes {
		ix, err := readIndex(src, filepath.Join(dir, name))
		if err != nil {
			return nil, nil, nil, err
		}
		indexes = append(indexes, ix)
		for _, sh := range ix.shards {
			if !slices.Contains(files, sh) {
				files = append(files, sh)
			}
			if rel, err := filepath.Rel(dir, sh); err == nil {
				named[filepath.ToSlash(rel)] = true
			}
		}
	}
	sel.Shards(named)
	skipped := sel.Skipped
	for i := range skipped {
		skipped[i].Path = filepath.Clean(filepath.FromSlash(skipped[i].Path))
	}
	if len(files) == 0 {
		return nil, nil, nil, fmt.Errorf("%s: no model files found (subdirectories are not searched: name them)", dir)
	}
	return files, indexes, skipped, nil
}

// modelFile returns the format of p if a loader recognises it, else "". A
// zip archive that is not a torch.save checkpoint (no data.pkl record) is
// some other file in a directory, not a broken model; named on the command
// line, it is still an error.
func modelFile(src Source, p string) (string, error) {
	f, size, closeFile, err := openAt(src, p)
	if err != nil {
		return "", err
	}
	defer closeFile()
	head, err := readHead(f, p)
	if err != nil {
		return "", err
	}
	l := Detect(head)
	if l == nil {
		return "", nil
	}
	if !bytes.HasPrefix(head, []byte("PK")) {
		return l.Name(), nil
	}
	z, err := zip.NewReader(f, size)
	if err != nil || pytorch.IsCheckpoint(z) {
		return l.Name(), nil // a broken zip: let the loader say what is wrong with it
	}
	return "", nil
}

// readHead reads the first HeadSize bytes of f, fewer for a short file.
func readHead(f io.ReaderAt, path string) ([]byte, error) {
	head := make([]byte, HeadSize)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return head[:n], nil
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

// readIndex reads a weights index; its shard names are resolved against
// the index's directory and may not leave it.
func readIndex(src Source, path string) (*weightIndex, error) {
	data, err := readSmall(src, path)
	if err != nil {
		return nil, err
	}
	var ix struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &ix); err != nil {
		return nil, fmt.Errorf("%s: weights index: %w", path, err)
	}
	if len(ix.WeightMap) == 0 {
		return nil, fmt.Errorf("%s: weights index: no weight_map", path)
	}
	out := &weightIndex{path: path, weightMap: make(map[string]string, len(ix.WeightMap)), estimates: map[string]int64{}}
	set := map[string]bool{}
	perShard := map[string][]string{}
	for name, shard := range ix.WeightMap {
		if shard == "" || filepath.IsAbs(shard) || strings.HasPrefix(shard, "/") || slices.Contains(strings.Split(filepath.ToSlash(shard), "/"), "..") {
			return nil, fmt.Errorf("%s: weights index: tensor %q: bad shard name %q", path, name, shard)
		}
		p := filepath.Join(filepath.Dir(path), filepath.FromSlash(shard))
		out.weightMap[name] = p
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
func readQuantConfig(src Source, path string) (*accounting.QuantConfig, error) {
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
	q := cfg.Q
	if q == nil && cfg.MLX != nil {
		q = cfg.MLX
		q.Method = "mlx"
	}
	if q == nil {
		return nil, nil
	}
	out := &accounting.QuantConfig{Method: q.Method, Bits: q.Bits, GroupSize: q.GroupSize}
	out.Bits = cmp.Or(q.Bits, q.WBit)
	out.GroupSize = cmp.Or(q.GroupSize, q.QGroupSize)
	for _, g := range q.ConfigGroups {
		if g.Weights != nil {
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

func readSmall(src Source, path string) ([]byte, error) {
	f, err := src.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxIndexBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxIndexBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxIndexBytes)
	}
	return data, nil
}
