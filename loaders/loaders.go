// Package loaders finds the tensors in model files. Each format has its own
// package behind the Loader interface; Open tries them in the order of the
// list below, recognising a file by its content, never by its name.
package loaders

import (
	"archive/zip"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
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
// model file, a safetensors index (*.safetensors.index.json), or a directory
// holding either; a config.json beside the files contributes its
// quantization_config.
func Open(paths ...string) (*accounting.Model, error) { return OpenSource(Local, paths...) }

// OpenSource is Open with the files in src.
func OpenSource(src Source, paths ...string) (*accounting.Model, error) {
	estimates := map[string]int64{}
	var files []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			files = append(files, p)
		}
	}
	var configDirs []string
	for _, p := range paths {
		fi, err := src.Stat(p)
		if err != nil {
			return nil, err
		}
		switch {
		case fi.IsDir():
			list, err := dirFiles(src, p, estimates)
			if err != nil {
				return nil, err
			}
			for _, f := range list {
				add(f)
			}
			configDirs = append(configDirs, p)
		case strings.HasSuffix(p, ".index.json"):
			shards, err := indexShards(src, p, estimates)
			if err != nil {
				return nil, err
			}
			for _, f := range shards {
				add(f)
			}
			configDirs = append(configDirs, filepath.Dir(p))
		default:
			add(p)
			configDirs = append(configDirs, filepath.Dir(p))
		}
	}
	if err := prefetch(src, files, estimates); err != nil {
		return nil, err
	}
	m := &accounting.Model{}
	for _, p := range files {
		fm, err := openFile(src, p)
		if err != nil {
			return nil, err
		}
		base := len(m.Files)
		m.Files = append(m.Files, fm.Files...)
		for _, t := range fm.Tensors {
			t.File += base
			m.Tensors = append(m.Tensors, t)
		}
	}
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

// dirFiles lists the model files of a directory: the shards of a safetensors
// index when there is one, else every regular file a loader recognises.
func dirFiles(src Source, dir string, estimates map[string]int64) ([]string, error) {
	entries, err := src.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	// An index names the shards that belong together; other files in the
	// directory (an older consolidated copy, say) are not part of it.
	var shards []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".safetensors.index.json") {
			s, err := indexShards(src, filepath.Join(dir, e.Name()), estimates)
			if err != nil {
				return nil, err
			}
			shards = append(shards, s...)
		}
	}
	if len(shards) > 0 {
		return shards, nil
	}
	var files []string
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if ok, err := modelFile(src, p); err != nil {
			return nil, err
		} else if ok {
			files = append(files, p)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no model files found (subdirectories are not searched: name them)", dir)
	}
	return files, nil
}

// modelFile reports whether a loader recognises p. A zip archive that is
// not a torch.save checkpoint (no data.pkl record) is some other file in a
// directory, not a broken model; named on the command line, it is still an
// error.
func modelFile(src Source, p string) (bool, error) {
	f, size, closeFile, err := openAt(src, p)
	if err != nil {
		return false, err
	}
	defer closeFile()
	head, err := readHead(f, p)
	if err != nil || Detect(head) == nil {
		return false, err
	}
	if !bytes.HasPrefix(head, []byte("PK")) {
		return true, nil
	}
	z, err := zip.NewReader(f, size)
	if err != nil {
		return true, nil // let the loader say what is wrong with it
	}
	return pytorch.IsCheckpoint(z), nil
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

// indexShards returns the shard files a safetensors index names, sorted,
// each once, resolved against the index's directory. It records in
// estimates the header size each shard's tensor names suggest.
func indexShards(src Source, path string, estimates map[string]int64) ([]string, error) {
	data, err := readSmall(src, path)
	if err != nil {
		return nil, err
	}
	var ix struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &ix); err != nil {
		return nil, fmt.Errorf("%s: safetensors index: %w", path, err)
	}
	if len(ix.WeightMap) == 0 {
		return nil, fmt.Errorf("%s: safetensors index: no weight_map", path)
	}
	set := map[string][]string{}
	for name, shard := range ix.WeightMap {
		if shard == "" || filepath.IsAbs(shard) || strings.Contains(filepath.ToSlash(shard), "../") {
			return nil, fmt.Errorf("%s: safetensors index: tensor %q: bad shard name %q", path, name, shard)
		}
		set[shard] = append(set[shard], name)
	}
	var shards []string
	for s, names := range set {
		p := filepath.Join(filepath.Dir(path), s)
		shards = append(shards, p)
		estimates[filepath.Clean(p)] = headerEstimate(names)
	}
	sort.Strings(shards)
	return shards, nil
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
