package loaders_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/realworld"
	"github.com/qinsaudit/qinsaudit/loaders"
)

// realworldDir is the folder of real files from public projects, beside the
// repository.
var realworldDir = realworld.Dir()

// TestRealWorldAnswers opens every real file through format detection and
// audits it: the format, the tensor count and the stored bytes (each
// storage once) must match the ground truth PyTorch and the formats'
// headers gave.
func TestRealWorldAnswers(t *testing.T) {
	answers := realworld.Answers(t)
	names := make([]string, 0, len(answers))
	for name := range answers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		want := answers[name]
		t.Run(name, func(t *testing.T) {
			m, err := loaders.Open(filepath.Join(realworldDir, name))
			if err != nil {
				t.Fatal(err)
			}
			res, err := accounting.Audit(m, accounting.Options{})
			if err != nil {
				t.Fatal(err)
			}
			f := res.Files[0]
			if len(res.Files) != 1 || f.Format != want.Format || f.SizeBytes != want.SizeBytes ||
				f.StoredBytes != want.StoredBytes || f.Tensors != int64(want.Tensors) {
				t.Errorf("got %s %d bytes, %d tensors storing %d; want %s %d bytes, %d tensors storing %d",
					f.Format, f.SizeBytes, f.Tensors, f.StoredBytes, want.Format, want.SizeBytes, want.Tensors, want.StoredBytes)
			}
			if f.OverheadBytes != f.SizeBytes-f.StoredBytes || f.OverheadBytes < 0 {
				t.Errorf("overhead %d", f.OverheadBytes)
			}
		})
	}
}

func TestOpenShardedDirectoryAndIndex(t *testing.T) {
	dir := "../fixtures/safetensors/sharded"
	byDir, err := loaders.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	byIndex, err := loaders.Open(filepath.Join(dir, "model.safetensors.index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(byDir.Files) != 2 || len(byIndex.Files) != 2 || len(byDir.Tensors) != len(byIndex.Tensors) {
		t.Fatalf("dir: %d files %d tensors; index: %d files %d tensors", len(byDir.Files), len(byDir.Tensors), len(byIndex.Files), len(byIndex.Tensors))
	}
	// Every tensor the index names is found, in the shard it names.
	var ix struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	data, _ := os.ReadFile(filepath.Join(dir, "model.safetensors.index.json"))
	if err := json.Unmarshal(data, &ix); err != nil {
		t.Fatal(err)
	}
	if len(ix.WeightMap) != len(byDir.Tensors) {
		t.Errorf("index names %d tensors, loaded %d", len(ix.WeightMap), len(byDir.Tensors))
	}
	for _, tn := range byDir.Tensors {
		if shard := ix.WeightMap[tn.Name]; filepath.Base(byDir.Files[tn.File].Path) != shard {
			t.Errorf("%s loaded from %s, index says %s", tn.Name, byDir.Files[tn.File].Path, shard)
		}
	}
}

func TestOpenSeveralPathsOneModel(t *testing.T) {
	a, b := "../fixtures/safetensors/sharded/model-00001-of-00002.safetensors", "../fixtures/safetensors/sharded/model-00002-of-00002.safetensors"
	m, err := loaders.Open(a, b)
	if err != nil {
		t.Fatal(err)
	}
	ma, _ := loaders.Open(a)
	mb, _ := loaders.Open(b)
	if len(m.Files) != 2 || len(m.Tensors) != len(ma.Tensors)+len(mb.Tensors) {
		t.Fatalf("%d files, %d tensors", len(m.Files), len(m.Tensors))
	}
	if last := m.Tensors[len(m.Tensors)-1]; last.File != 1 {
		t.Errorf("last tensor in file %d, want 1", last.File)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		path, want string
	}{
		{write("notes.txt", "hello, not a model"), "unknown model file format"},
		{write("empty.bin", ""), "unknown model file format"},
		{write("bad.safetensors.index.json", `{"weight_map": {"a": "../../etc/passwd"}}`), `bad shard name`},
		{write("broken.safetensors.index.json", `{"weight_map": `), "weights index"},
		{filepath.Join(dir, "missing.pt"), "no such file"},
	} {
		_, err := loaders.Open(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), filepath.Base(c.path)) {
			t.Errorf("Open(%s) = %v, want an error naming the file and containing %q", c.path, err, c.want)
		}
	}
	// In a directory, a zip that is not a checkpoint is some other file.
	mixed := t.TempDir()
	for _, f := range []string{"small_f32.safetensors"} {
		data, _ := os.ReadFile(filepath.Join("../fixtures/safetensors", f))
		os.WriteFile(filepath.Join(mixed, f), data, 0o644)
	}
	notCkpt, _ := os.ReadFile("../fixtures/torch/not_a_checkpoint.zip")
	os.WriteFile(filepath.Join(mixed, "docs.zip"), notCkpt, 0o644)
	if m, err := loaders.Open(mixed); err != nil || len(m.Files) != 1 {
		t.Errorf("directory with a stray zip: %v", err)
	}
	if _, err := loaders.Open(filepath.Join(mixed, "docs.zip")); err == nil || !strings.Contains(err.Error(), "no data.pkl") {
		t.Errorf("stray zip named directly: %v", err)
	}
	empty := t.TempDir()
	if _, err := loaders.Open(empty); err == nil || !strings.Contains(err.Error(), "no model files") {
		t.Errorf("empty dir: %v", err)
	}
}
