package loaders_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/realworld"
	"github.com/qinsaudit/qinsaudit/loaders"
	"github.com/qinsaudit/qinsaudit/loaders/gguf/gguftest"
)

func audit(t *testing.T, paths ...string) *accounting.Result {
	t.Helper()
	m, err := loaders.Open(paths...)
	if err != nil {
		t.Fatal(err)
	}
	res, err := accounting.Audit(m, accounting.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func findings(res *accounting.Result, kind accounting.FindingKind) []accounting.Finding {
	var out []accounting.Finding
	for _, f := range res.Findings {
		if f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}

// copyFile copies a committed fixture into dir under name.
func copyFile(t *testing.T, src, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantError(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

// TestWildGGUFPadding: a GGUF whose writer pads every tensor to 32 bytes
// (ggml's superpoint example). Each tensor's stored bytes are its own size;
// the 28 bytes after l9_biases are file overhead, with no finding.
func TestWildGGUFPadding(t *testing.T) {
	const name = "ggml_superpoint.gguf"
	want, ok := realworld.WildAnswers(t)[name]
	if !ok {
		t.Fatalf("%s not in wild/answers.json", name)
	}
	res := audit(t, filepath.Join(realworld.WildDir(), name))
	f := res.Files[0]
	if f.SizeBytes != want.FileSize || f.Tensors != int64(want.TensorCount) || f.StoredBytes != want.StoredBytes {
		t.Errorf("file: %d bytes, %d tensors storing %d; want %d, %d, %d", f.SizeBytes, f.Tensors, f.StoredBytes, want.FileSize, want.TensorCount, want.StoredBytes)
	}
	if f.OverheadBytes != want.Extra.DataStart+want.GGUFAlignmentPaddingBytes {
		t.Errorf("overhead %d, want header %d + padding %d", f.OverheadBytes, want.Extra.DataStart, want.GGUFAlignmentPaddingBytes)
	}
	if res.Total.Params != want.LogicalParams || res.Total.StoredBytes != want.StoredBytes {
		t.Errorf("total: %d params, %d stored; want %d, %d", res.Total.Params, res.Total.StoredBytes, want.LogicalParams, want.StoredBytes)
	}
	rows := map[string]accounting.Row{}
	for _, r := range res.Rows {
		rows[r.Name] = r
	}
	var padding int64
	for _, wt := range want.Tensors {
		r, ok := rows[wt.Name]
		if !ok {
			t.Errorf("%s: missing", wt.Name)
			continue
		}
		if r.StoredBytes != wt.StoredBytes || r.Numel != wt.Numel || !slices.Equal(r.Shape, wt.Shape) {
			t.Errorf("%s: %v, %d elements, %d stored; want %v, %d, %d", wt.Name, r.Shape, r.Numel, r.StoredBytes, wt.Shape, wt.Numel, wt.StoredBytes)
		}
		padding += wt.SpanToNext - wt.StoredBytes
	}
	if padding != want.GGUFAlignmentPaddingBytes {
		t.Errorf("answers: padding %d, want %d", padding, want.GGUFAlignmentPaddingBytes)
	}
	if len(res.Findings) != 0 {
		t.Errorf("findings %+v, want none", res.Findings)
	}
}

// TestGGUFGap: bytes beyond the alignment padding are a gap, reported.
func TestGGUFGap(t *testing.T) {
	dir := t.TempDir()
	// a: 8 bytes, padded to 32; b at 96: a gap of 64 after a's padding.
	p := writeFile(t, dir, "gap.gguf", gguftest.New().
		TensorAt("a", gguftest.F32, 0, 2).TensorAt("b", gguftest.F32, 96, 8).Append(make([]byte, 128)).Bytes())
	res := audit(t, p)
	if res.Total.StoredBytes != 8+32 {
		t.Errorf("stored %d, want 40", res.Total.StoredBytes)
	}
	g := findings(res, accounting.UnusedFileBytes)
	if len(g) != 1 || g[0].Bytes != 64 || !slices.Equal(g[0].Tensors, []string{"a"}) || g[0].Severity != accounting.Warning {
		t.Errorf("unused-file-bytes %+v", g)
	}
}

// TestSplitGGUF audits a two-part split model from either part.
func TestSplitGGUF(t *testing.T) {
	dir := "../fixtures/gguf"
	p1, p2 := filepath.Join(dir, "tiny-00001-of-00002.gguf"), filepath.Join(dir, "tiny-00002-of-00002.gguf")
	both := t.TempDir()
	copyFile(t, p1, both, filepath.Base(p1))
	copyFile(t, p2, both, filepath.Base(p2))
	for _, paths := range [][]string{{p1}, {p2}, {p1, p2}, {both}} {
		res := audit(t, paths...)
		var names []string
		for _, f := range res.Files {
			names = append(names, filepath.Base(f.Path))
		}
		// split.tensors.count 21; tensor bytes from fixtures/gguf/README.md.
		if !slices.Equal(names, []string{"tiny-00001-of-00002.gguf", "tiny-00002-of-00002.gguf"}) ||
			res.Total.Tensors != 21 || res.Total.StoredBytes != 86528+86784 {
			t.Errorf("%v: files %v, %d tensors, %d stored; want both parts, 21, %d", paths, names, res.Total.Tensors, res.Total.StoredBytes, 86528+86784)
		}
	}

	alone := t.TempDir()
	p := copyFile(t, p1, alone, "tiny-00001-of-00002.gguf")
	_, err := loaders.Open(p)
	wantError(t, err, p, "part 2", filepath.Join(alone, "tiny-00002-of-00002.gguf"), "missing")

	part := func(no, count, total int64, tensor string) []byte {
		b := gguftest.New().KV("split.no", uint16(no)).KV("split.count", uint16(count))
		if total >= 0 {
			b.KV("split.tensors.count", int32(total))
		}
		return b.Tensor(tensor, gguftest.F32, 8).Bytes()
	}
	for _, c := range []struct {
		name  string
		files map[string][]byte
		want  []string
	}{
		{"count differs", map[string][]byte{"m-00001-of-00002.gguf": part(0, 2, 2, "a"), "m-00002-of-00002.gguf": part(1, 3, 2, "b")},
			[]string{"m-00002-of-00002.gguf", "part 2 of 2", "split.count 3"}},
		{"part number repeated", map[string][]byte{"m-00001-of-00002.gguf": part(0, 2, 2, "a"), "m-00002-of-00002.gguf": part(0, 2, 2, "b")},
			[]string{"m-00002-of-00002.gguf", "split.no 0"}},
		{"tensor total", map[string][]byte{"m-00001-of-00002.gguf": part(0, 2, 5, "a"), "m-00002-of-00002.gguf": part(1, 2, 5, "b")},
			[]string{"m-00001-of-00002.gguf", "split.tensors.count says 5", "hold 2"}},
		{"repeated, odd names", map[string][]byte{"x.gguf": part(0, 2, -1, "a"), "y.gguf": part(0, 2, -1, "b")},
			[]string{"x.gguf", "y.gguf", "both say they are part 1"}},
		{"missing, odd name", map[string][]byte{"x.gguf": part(0, 2, -1, "a")},
			[]string{"x.gguf", "part 2 is missing", "name them all"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := t.TempDir()
			var paths []string
			for name, data := range c.files {
				paths = append(paths, writeFile(t, d, name, data))
			}
			slices.Sort(paths)
			_, err := loaders.Open(paths...)
			wantError(t, err, c.want...)
			if _, err := loaders.Open(d); err == nil {
				t.Errorf("directory: no error")
			}
		})
	}
	// Parts whose names do not follow the naming, all named: fine.
	d := t.TempDir()
	res := audit(t, writeFile(t, d, "x.gguf", part(0, 2, 2, "a")), writeFile(t, d, "y.gguf", part(1, 2, 2, "b")))
	if res.Total.Tensors != 2 {
		t.Errorf("%d tensors", res.Total.Tensors)
	}
}

// TestHubDirectory: a Hugging Face repository holding the same weights as
// model.safetensors, pytorch_model.bin and GGUF reads what transformers
// would, and lists the rest as skipped.
func TestHubDirectory(t *testing.T) {
	st, pt, gg := "../fixtures/safetensors/small_f32.safetensors", "../fixtures/torch/small_fp32.pt", "../fixtures/gguf/tiny-q4_k_m.gguf"
	one := audit(t, st)
	dir := t.TempDir()
	copyFile(t, st, dir, "model.safetensors")
	copyFile(t, pt, dir, "pytorch_model.bin")
	copyFile(t, gg, dir, "tiny-q4_k_m.gguf")
	writeFile(t, dir, "tokenizer.json", []byte(`{"version": "1.0"}`))
	res := audit(t, dir)
	if len(res.Files) != 1 || filepath.Base(res.Files[0].Path) != "model.safetensors" ||
		res.Total != one.Total || res.Total.Params != 104704 || res.Total.StoredBytes != 418816 {
		t.Errorf("files %+v, total %+v; want model.safetensors alone, %+v", res.Files, res.Total, one.Total)
	}
	ptSize, ggSize := fileSize(t, pt), fileSize(t, gg)
	want := []accounting.SkippedFile{
		{Path: filepath.Join(dir, "pytorch_model.bin"), SizeBytes: ptSize, Reason: "transformers loads model.safetensors from this directory, not this file"},
		{Path: filepath.Join(dir, "tiny-q4_k_m.gguf"), SizeBytes: ggSize, Reason: "transformers loads model.safetensors from this directory, not this file"},
	}
	if !slices.Equal(res.Skipped, want) {
		t.Errorf("skipped %+v, want %+v", res.Skipped, want)
	}

	// A Hugging Face cache snapshot: links to the blobs of the same cache
	// repository (models--ORG--NAME/snapshots/REV/F -> ../../blobs/HASH).
	repo := filepath.Join(t.TempDir(), "hub", "models--org--tiny")
	snap, blobs := filepath.Join(repo, "snapshots", "0123abcd"), filepath.Join(repo, "blobs")
	for _, d := range []string{snap, blobs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range []string{"model.safetensors", "pytorch_model.bin"} {
		hash := fmt.Sprintf("%040x", i+1)
		copyFile(t, filepath.Join(dir, n), blobs, hash)
		if err := os.Symlink(filepath.Join("..", "..", "blobs", hash), filepath.Join(snap, n)); err != nil {
			t.Skip("no symlinks:", err)
		}
	}
	if err := os.Symlink(filepath.Join(blobs, "gone"), filepath.Join(snap, "dangling.bin")); err != nil {
		t.Fatal(err)
	}
	if res := audit(t, snap); len(res.Files) != 1 || res.Total != one.Total || len(res.Skipped) != 1 || res.Skipped[0].SizeBytes != ptSize {
		t.Errorf("snapshot: files %+v skipped %+v", res.Files, res.Skipped)
	}
	// The same links from a directory that is no cache snapshot leave it:
	// refused.
	elsewhere := t.TempDir()
	for _, n := range []string{"model.safetensors", "pytorch_model.bin"} {
		if err := os.Symlink(filepath.Join(dir, n), filepath.Join(elsewhere, n)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := loaders.Open(elsewhere)
	wantError(t, err, filepath.Join(elsewhere, "model.safetensors"), "outside the model directory", "refused")

	// Without model.safetensors: pytorch_model.bin.
	os.Remove(filepath.Join(dir, "model.safetensors"))
	res = audit(t, dir)
	if len(res.Files) != 1 || filepath.Base(res.Files[0].Path) != "pytorch_model.bin" || res.Total.Params != 104704 || len(res.Skipped) != 1 {
		t.Errorf("files %+v, skipped %+v", res.Files, res.Skipped)
	}

	// A sharded safetensors index beats pytorch_model.bin; a single
	// model.safetensors beats the index, as in transformers.
	sharded := "../fixtures/safetensors/sharded"
	for _, f := range []string{"model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} {
		copyFile(t, filepath.Join(sharded, f), dir, f)
	}
	byIndex := audit(t, filepath.Join(sharded, "model.safetensors.index.json"))
	res = audit(t, dir)
	if len(res.Files) != 2 || res.Total != byIndex.Total || len(res.Skipped) != 2 ||
		res.Skipped[0].Reason != "not a shard named by model.safetensors.index.json" {
		t.Errorf("index: files %+v total %+v skipped %+v; want the shards, %+v", res.Files, res.Total, res.Skipped, byIndex.Total)
	}
	copyFile(t, st, dir, "model.safetensors")
	res = audit(t, dir)
	if len(res.Files) != 1 || filepath.Base(res.Files[0].Path) != "model.safetensors" || len(res.Skipped) != 5 {
		t.Errorf("files %+v skipped %+v", res.Files, res.Skipped)
	}

	// No transformers name: every model file but GGUF; GGUF alone.
	other := t.TempDir()
	copyFile(t, st, other, "weights.safetensors")
	copyFile(t, gg, other, "weights.gguf")
	res = audit(t, other)
	if len(res.Files) != 1 || res.Files[0].Format != "safetensors" || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Reason, "GGUF") {
		t.Errorf("files %+v skipped %+v", res.Files, res.Skipped)
	}
	os.Remove(filepath.Join(other, "weights.safetensors"))
	if res = audit(t, other); len(res.Files) != 1 || res.Files[0].Format != "gguf" || len(res.Skipped) != 0 {
		t.Errorf("files %+v skipped %+v", res.Files, res.Skipped)
	}
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestSelect decides on a listing alone: the rule later sources share.
func TestSelect(t *testing.T) {
	formats := map[string]string{"pytorch_model.bin": "pytorch-zip", "consolidated.safetensors": "safetensors",
		"model.fp16.safetensors": "safetensors", "q4.gguf": "gguf", "training_args.bin": "pytorch-zip"}
	sniffed := map[string]bool{}
	sniff := func(n string) (string, error) {
		sniffed[n] = true
		return formats[n], nil
	}
	var entries []loaders.Entry
	for _, n := range []string{"config.json", "pytorch_model.bin", "consolidated.safetensors", "model.fp16.safetensors", "q4.gguf", "model.safetensors", "training_args.bin", "README.md"} {
		entries = append(entries, loaders.Entry{Name: n, Size: int64(len(n))})
	}
	sel, err := loaders.Select("repo", entries, sniff)
	if err != nil {
		t.Fatal(err)
	}
	var skipped []string
	for _, s := range sel.Skipped {
		skipped = append(skipped, s.Path)
		if s.SizeBytes != int64(len(filepath.Base(s.Path))) {
			t.Errorf("%s: size %d", s.Path, s.SizeBytes)
		}
	}
	if !slices.Equal(sel.Files, []string{"model.safetensors"}) || len(sel.Indexes) != 0 ||
		!slices.Equal(skipped, []string{"repo/consolidated.safetensors", "repo/model.fp16.safetensors", "repo/pytorch_model.bin", "repo/q4.gguf", "repo/training_args.bin"}) {
		t.Errorf("files %v indexes %v skipped %v", sel.Files, sel.Indexes, skipped)
	}
	if sniffed["model.safetensors"] {
		t.Error("the chosen file was sniffed")
	}

	// Both sharded indexes: the safetensors one; the other and every
	// shard it alone names are skipped once the indexes are read.
	entries = nil
	for _, n := range []string{"pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin",
		"model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} {
		entries = append(entries, loaders.Entry{Name: n, Size: 1})
		if strings.HasSuffix(n, ".bin") {
			formats[n] = "pytorch-zip"
		} else {
			formats[n] = "safetensors"
		}
	}
	sel, err = loaders.Select("", entries, sniff)
	if err != nil {
		t.Fatal(err)
	}
	sel.Shards(map[string]bool{"model-00001-of-00002.safetensors": true, "model-00002-of-00002.safetensors": true})
	skipped = nil
	for _, s := range sel.Skipped {
		skipped = append(skipped, s.Path+": "+s.Reason)
	}
	if !slices.Equal(sel.Indexes, []string{"model.safetensors.index.json"}) || len(sel.Files) != 0 || !slices.Equal(skipped, []string{
		"pytorch_model.bin.index.json: transformers loads model.safetensors.index.json first",
		"pytorch_model-00001-of-00002.bin: not a shard named by model.safetensors.index.json",
		"pytorch_model-00002-of-00002.bin: not a shard named by model.safetensors.index.json",
	}) {
		t.Errorf("indexes %v files %v skipped %q", sel.Indexes, sel.Files, skipped)
	}
}

// TestDuplicateTensorNames: one tensor name in two files of one report is
// an error naming the tensor and both files.
func TestDuplicateTensorNames(t *testing.T) {
	a, b := "../fixtures/safetensors/small_f32.safetensors", "../fixtures/safetensors/small_bf16.safetensors"
	_, err := loaders.Open(a, b)
	wantError(t, err, `tensor "`, a, b)
	_, err = loaders.Open(a, "./"+a)
	wantError(t, err, `tensor "`, a, "./"+a)

	// An index that puts a tensor in two shards, or one its shard lacks.
	dir := t.TempDir()
	copyFile(t, a, dir, "s1.safetensors")
	copyFile(t, a, dir, "s2.safetensors")
	index := func(wm map[string]string) string {
		data, _ := json.Marshal(map[string]any{"weight_map": wm})
		return writeFile(t, dir, "model.safetensors.index.json", data)
	}
	_, err = loaders.Open(index(map[string]string{"blocks.0.attn.k.weight": "s1.safetensors", "blocks.0.attn.q.weight": "s2.safetensors"}))
	wantError(t, err, "s1.safetensors", "s2.safetensors", `tensor "`)
	os.Remove(filepath.Join(dir, "s2.safetensors"))
	_, err = loaders.Open(index(map[string]string{"blocks.0.attn.k.weight": "s1.safetensors", "no.such.tensor": "s1.safetensors"}))
	wantError(t, err, "model.safetensors.index.json", `"no.such.tensor"`, "s1.safetensors", "does not hold it")
	_, err = loaders.Open(dir)
	wantError(t, err, `"no.such.tensor"`)
}

// safetensorsFile writes a safetensors file of float32 tensors at the given
// [begin, end) offsets, with a data buffer of size bytes.
func safetensorsFile(t *testing.T, dir, name string, size int64, tensors map[string][2]int64) string {
	t.Helper()
	header := map[string]any{}
	for n, off := range tensors {
		header[n] = map[string]any{"dtype": "F32", "shape": []int64{(off[1] - off[0]) / 4}, "data_offsets": off}
	}
	h, _ := json.Marshal(header)
	data := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	data = append(append(data, h...), make([]byte, size)...)
	return writeFile(t, dir, name, data)
}

// TestSafetensorsUnusedBytes: bytes after the last tensor, and between
// two, are a warning with their count; the tensors' figures are unchanged.
func TestSafetensorsUnusedBytes(t *testing.T) {
	src := "../fixtures/safetensors/small_f32.safetensors"
	base := audit(t, src)
	dir := t.TempDir()
	data, _ := os.ReadFile(src)
	p := writeFile(t, dir, "trailing.safetensors", append(data, make([]byte, 100)...))
	res := audit(t, p)
	g := findings(res, accounting.UnusedFileBytes)
	if res.Total != base.Total || res.Files[0].OverheadBytes != base.Files[0].OverheadBytes+100 {
		t.Errorf("total %+v overhead %d; want %+v, %d", res.Total, res.Files[0].OverheadBytes, base.Total, base.Files[0].OverheadBytes+100)
	}
	if len(g) != 1 || g[0].Bytes != 100 || g[0].Severity != accounting.Warning ||
		!strings.Contains(g[0].Message, "after the last tensor") || !strings.Contains(g[0].Message, "reference reader refuses") {
		t.Errorf("trailing bytes: %+v", g)
	}
	if len(base.Findings) != 0 {
		t.Errorf("packed file: %+v", base.Findings)
	}

	p = safetensorsFile(t, dir, "gap.safetensors", 40, map[string][2]int64{"a": {0, 8}, "b": {16, 24}, "c": {24, 32}})
	res = audit(t, p)
	g = findings(res, accounting.UnusedFileBytes)
	if res.Total.StoredBytes != 24 || len(g) != 1 || g[0].Bytes != 8+8 || !slices.Equal(g[0].Tensors, []string{"a", "c"}) ||
		!strings.Contains(g[0].Message, "2 runs") {
		t.Errorf("gap: stored %d, %+v", res.Total.StoredBytes, g)
	}
	p = safetensorsFile(t, dir, "lead.safetensors", 16, map[string][2]int64{"a": {8, 16}})
	if g = findings(audit(t, p), accounting.UnusedFileBytes); len(g) != 1 || g[0].Bytes != 8 || !strings.Contains(g[0].Message, "before the first tensor") {
		t.Errorf("leading gap: %+v", g)
	}
	p = safetensorsFile(t, dir, "overlap.safetensors", 16, map[string][2]int64{"a": {0, 12}, "b": {8, 16}})
	_, err := loaders.Open(p)
	wantError(t, err, p, `"b"`, "overlap", `"a"`)
}

// TestContradictedConfig: quantization_config says 3 bits, the packed
// tensors (g_idx for GPTQ, the scales' width for AWQ) say 4: the tensors
// are trusted and a finding says the config disagrees.
func TestContradictedConfig(t *testing.T) {
	for _, scheme := range []string{"gptq", "awq"} {
		t.Run(scheme, func(t *testing.T) {
			src := filepath.Join("../fixtures/quant", scheme)
			right := audit(t, src)
			dir := t.TempDir()
			copyFile(t, filepath.Join(src, "model.safetensors"), dir, "model.safetensors")
			cfg, _ := os.ReadFile(filepath.Join(src, "config.json"))
			var c map[string]any
			if err := json.Unmarshal(cfg, &c); err != nil {
				t.Fatal(err)
			}
			c["quantization_config"].(map[string]any)["bits"] = 3
			cfg, _ = json.Marshal(c)
			writeFile(t, dir, "config.json", cfg)
			res := audit(t, dir)
			lin := role(res, accounting.EncodedLinear)
			if lin.Params != 40960 || res.Total != right.Total {
				t.Errorf("params %d, total %+v; want 40960, %+v", lin.Params, res.Total, right.Total)
			}
			g := findings(res, accounting.ConfigMismatch)
			if len(g) != 7 {
				t.Fatalf("%d config-mismatch findings, want one per linear (7)", len(g))
			}
			for _, f := range g {
				if !strings.Contains(f.Message, "says bits 3") || !strings.Contains(f.Message, "pack 4 bits per weight") || f.Severity != accounting.Warning {
					t.Errorf("%+v", f)
				}
			}
			if u := findings(res, accounting.UnknownEncoding); len(u) != 0 {
				t.Errorf("unknown-encoding %+v", u)
			}
		})
	}
}

func role(res *accounting.Result, r accounting.Role) accounting.Group {
	for _, g := range res.Roles {
		if g.Key == r.String() {
			return g
		}
	}
	return accounting.Group{}
}
