package loaders

import (
	"fmt"
	"sort"
	"strings"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// Entry is one file of a directory listing: its name within the directory
// and its size. The choice of what a directory holds is made on a listing
// alone (plus a content sniff of the files no name decides), so that any
// source that can list names and sizes can use it.
type Entry struct {
	Name string
	Size int64
}

// Selection is what a directory's listing says to read.
type Selection struct {
	// Indexes are the weights indexes to read: their shards are the model.
	Indexes []string
	// Files are the model files to read, in order, when there is no index.
	Files []string
	// Skipped are the model files of the directory left out, and why.
	Skipped []accounting.SkippedFile
	// candidates are the model files an index may name; Shards decides.
	candidates []string
	dir        string
	sizes      map[string]int64
}

// Shards takes the shard names the Indexes name (resolved against the
// directory, slash-separated as in the index) and skips every other model
// file of the directory.
func (s *Selection) Shards(named map[string]bool) {
	for _, n := range s.candidates {
		if !named[n] {
			s.skip(n, fmt.Sprintf("not a shard named by %s", strings.Join(s.Indexes, ", ")))
		}
	}
	s.candidates = nil
}

func (s *Selection) skip(name, reason string) {
	s.Skipped = append(s.Skipped, accounting.SkippedFile{Path: joinPath(s.dir, name), SizeBytes: s.sizes[name], Reason: reason})
}

// The names Hugging Face transformers loads a model from, in the order
// from_pretrained tries them in a local directory (modeling_utils, with
// use_safetensors left unset and no variant): a single safetensors file
// first, then the sharded safetensors index, then the PyTorch file, then
// its index. TensorFlow and Flax weights are tried only when asked for,
// and qinsaudit does not read them; neither does transformers read
// Mistral's consolidated.safetensors or a variant (model.fp16.safetensors)
// unless asked.
var transformersNames = []string{
	"model.safetensors",
	"model.safetensors.index.json",
	"pytorch_model.bin",
	"pytorch_model.bin.index.json",
}

// indexSuffix ends the name of a weights index (a JSON weight_map from
// tensor names to shard files).
const indexSuffix = ".index.json"

// Sniffer tells the format of a directory's file from its content: the
// loader's Name, "" for a file that is not a model.
type Sniffer func(name string) (format string, err error)

// Select decides what a directory holds, from its listing:
//
//  1. the first of transformers' names present (model.safetensors,
//     model.safetensors.index.json, pytorch_model.bin,
//     pytorch_model.bin.index.json): what from_pretrained would load;
//  2. else every weights index (*.index.json);
//  3. else every model file a loader recognises that is not GGUF;
//  4. else every GGUF file.
//
// Every other model file is skipped, with the reason; with an index, the
// caller reads it and calls Shards. Files whose names decide nothing are
// sniffed (all of them but indexes and the chosen file) to tell model
// files from the rest.
func Select(dir string, entries []Entry, sniff Sniffer) (Selection, error) {
	names := make([]string, 0, len(entries))
	has := map[string]bool{}
	for _, e := range entries {
		names = append(names, e.Name)
		has[e.Name] = true
	}
	sort.Strings(names)
	sel := Selection{dir: dir, sizes: map[string]int64{}}
	for _, e := range entries {
		sel.sizes[e.Name] = e.Size
	}
	chosen := ""
	for _, n := range transformersNames {
		if has[n] {
			chosen = n
			break
		}
	}
	switch {
	case strings.HasSuffix(chosen, indexSuffix):
		sel.Indexes = []string{chosen}
	case chosen != "":
		sel.Files = []string{chosen}
	default:
		for _, n := range names {
			if strings.HasSuffix(n, indexSuffix) {
				sel.Indexes = append(sel.Indexes, n)
			}
		}
	}
	var models, gguf []string
	isGGUF := map[string]bool{}
	for _, n := range names {
		if n == chosen {
			continue
		}
		if strings.HasSuffix(n, indexSuffix) {
			if chosen != "" {
				sel.skip(n, fmt.Sprintf("transformers loads %s first", chosen))
			}
			continue
		}
		f, err := sniff(n)
		if err != nil {
			return Selection{}, err
		}
		switch f {
		case "":
		case "gguf":
			gguf = append(gguf, n)
			isGGUF[n] = true
			models = append(models, n)
		default:
			models = append(models, n)
		}
	}
	switch {
	case len(sel.Indexes) > 0:
		sel.candidates = models
	case chosen != "":
		for _, n := range models {
			sel.skip(n, fmt.Sprintf("transformers loads %s from this directory, not this file", chosen))
		}
	case len(models) > len(gguf):
		for _, n := range models {
			if isGGUF[n] {
				sel.skip(n, "GGUF beside other model files, which are read instead; name it to audit it")
			} else {
				sel.Files = append(sel.Files, n)
			}
		}
	default:
		sel.Files = gguf
	}
	return sel, nil
}

// joinPath joins a directory and a name with a slash, the separator of
// every listing (filepath.Join would also clean the directory's path).
func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return strings.TrimSuffix(dir, "/") + "/" + name
}
