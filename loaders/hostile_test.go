package loaders_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/loaders"
)

// openWithin runs loaders.Open in a goroutine and fails t if it has not
// returned within a few seconds (a FIFO once blocked every reader forever).
func openWithin(t *testing.T, paths ...string) (*accounting.Model, error) {
	t.Helper()
	type result struct {
		m   *accounting.Model
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := loaders.Open(paths...)
		done <- result{m, err}
	}()
	select {
	case r := <-done:
		return r.m, r.err
	case <-time.After(20 * time.Second):
		t.Fatalf("Open(%q) still blocked after 20 s", paths)
		return nil, nil
	}
}

func mkfifo(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	return p
}

const smallST = "../fixtures/safetensors/small_f32.safetensors"

// TestFIFOsNeverBlock: a FIFO where a model file, a shard, a config.json
// or a split part is expected is refused at once, naming it; in a
// directory's listing it is not a file of the model.
func TestFIFOsNeverBlock(t *testing.T) {
	dir := t.TempDir()
	fifo := mkfifo(t, dir, "model.safetensors")
	_, err := openWithin(t, fifo)
	wantError(t, err, fifo, "not a regular file", "named pipe")

	// A shard an index names.
	ix := t.TempDir()
	mkfifo(t, ix, "s1.safetensors")
	data, _ := json.Marshal(map[string]any{"weight_map": map[string]string{"a": "s1.safetensors"}})
	_, err = openWithin(t, writeFile(t, ix, "model.safetensors.index.json", data))
	wantError(t, err, filepath.Join(ix, "s1.safetensors"), "not a regular file")

	// config.json beside a model.
	cfg := t.TempDir()
	st := copyFile(t, smallST, cfg, "model.safetensors")
	mkfifo(t, cfg, "config.json")
	_, err = openWithin(t, st)
	wantError(t, err, filepath.Join(cfg, "config.json"), "not a regular file")
	_, err = openWithin(t, cfg)
	wantError(t, err, filepath.Join(cfg, "config.json"), "not a regular file")

	// In a listing: not a file of the directory.
	listed := t.TempDir()
	copyFile(t, smallST, listed, "weights.safetensors")
	mkfifo(t, listed, "other.safetensors")
	if m, err := openWithin(t, listed); err != nil || len(m.Files) != 1 {
		t.Errorf("directory with a FIFO: %v", err)
	}

	// The second part of a split GGUF.
	split := t.TempDir()
	copyFile(t, "../fixtures/gguf/tiny-00001-of-00002.gguf", split, "tiny-00001-of-00002.gguf")
	mkfifo(t, split, "tiny-00002-of-00002.gguf")
	_, err = openWithin(t, filepath.Join(split, "tiny-00001-of-00002.gguf"))
	wantError(t, err, filepath.Join(split, "tiny-00002-of-00002.gguf"), "not a regular file")
}

// secret is what a file outside the model directory holds: no error or
// listing may show it.
const secret = "root:*:20228:0:99999:7:::\ndaemon:*:20228:0:99999:7:::\n"

// TestSymlinksConfined: links in a model directory that lead out of it
// are not read: listed as skipped when the model does not need them, an
// error when it does (the file transformers loads, a shard, config.json).
// No message quotes what the target holds.
func TestSymlinksConfined(t *testing.T) {
	outside := t.TempDir()
	shadow := writeFile(t, outside, "shadow", []byte(secret))
	weights := copyFile(t, smallST, outside, "w.safetensors")
	link := func(dir, name, target string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Skip("no symlinks:", err)
		}
	}
	noSecret := func(what string, err error, m *accounting.Model) {
		t.Helper()
		s := fmt.Sprint(err)
		if m != nil {
			s += fmt.Sprintf("%+v", m.Skipped)
		}
		if strings.Contains(s, "root:") || strings.Contains(s, "72 6f 6f 74") {
			t.Errorf("%s: the target's bytes are shown: %s", what, s)
		}
	}

	// Not needed: skipped, unread.
	dir := t.TempDir()
	copyFile(t, smallST, dir, "weights.safetensors")
	link(dir, "secret.bin", shadow)
	m, err := openWithin(t, dir)
	noSecret("listing", err, m)
	if err != nil || len(m.Files) != 1 || len(m.Skipped) != 1 || m.Skipped[0].Path != filepath.Join(dir, "secret.bin") || m.Skipped[0].SizeBytes != int64(len(secret)) ||
		!strings.Contains(m.Skipped[0].Reason, "outside the model directory") {
		t.Errorf("directory with a link out: %v, skipped %+v", err, m)
	}

	// Needed: refused.
	chosen := t.TempDir()
	link(chosen, "model.safetensors", weights)
	_, err = openWithin(t, chosen)
	wantError(t, err, filepath.Join(chosen, "model.safetensors"), "outside the model directory", "refused")

	sharded := t.TempDir()
	link(sharded, "s1.safetensors", weights)
	data, _ := json.Marshal(map[string]any{"weight_map": map[string]string{"blocks.0.attn.k.weight": "s1.safetensors"}})
	index := writeFile(t, sharded, "model.safetensors.index.json", data)
	for _, p := range []string{sharded, index} {
		_, err = openWithin(t, p)
		wantError(t, err, "model.safetensors.index.json", filepath.Join(sharded, "s1.safetensors"), "outside the model directory")
	}

	cfg := t.TempDir()
	copyFile(t, smallST, cfg, "model.safetensors")
	link(cfg, "config.json", shadow)
	_, err = openWithin(t, cfg)
	noSecret("config.json", err, nil)
	wantError(t, err, filepath.Join(cfg, "config.json"), "outside the model directory")

	// Named on the command line, a link is read wherever it leads, and a
	// file of no known format is described, never quoted.
	_, err = openWithin(t, filepath.Join(dir, "secret.bin"))
	noSecret("named", err, nil)
	wantError(t, err, "unknown model file format", "it looks like text")

	// A link inside the directory, to a file of the directory, is fine.
	inside := t.TempDir()
	copyFile(t, smallST, inside, "real.safetensors")
	link(inside, "model.safetensors", "real.safetensors")
	if m, err := openWithin(t, inside); err != nil || len(m.Files) != 1 {
		t.Errorf("link inside: %v", err)
	}
}

// TestUnknownFormatDescribed: what the error says about a file no loader
// reads: never its bytes, at most what kind of content it is.
func TestUnknownFormatDescribed(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, content, want string
	}{
		{"empty.bin", "", "the file is empty"},
		{"notes.txt", "hello, not a model\n", "it looks like text"},
		{"cfg.json", ` {"a": "secret-value"}`, "it looks like JSON"},
		{"blob.bin", "\x00\x01\x02secret\xff\xfe", "it looks like binary data"},
		{"docs.zip", "PK\x05\x06" + strings.Repeat("\x00", 18), ""}, // a zip: the PyTorch loader's error
	} {
		_, err := openWithin(t, writeFile(t, dir, c.name, []byte(c.content)))
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if c.want != "" && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "hello") || strings.Contains(err.Error(), "first bytes") {
			t.Errorf("%s: %v quotes the file", c.name, err)
		}
	}
}

// TestConfigNumbersChecked: a bit width or a group size no quantizer
// writes is an error naming config.json and the key; GPTQ's group_size -1
// (one group per row) is read.
func TestConfigNumbersChecked(t *testing.T) {
	for _, c := range []struct {
		config, want string
	}{
		{`{"quantization_config": {"quant_method": "gptq", "bits": -4, "group_size": 128}}`, "quantization_config: bits -4"},
		{`{"quantization_config": {"quant_method": "gptq", "bits": 4096}}`, "bits 4096"},
		{`{"quantization_config": {"quant_method": "awq", "w_bit": -1}}`, "w_bit -1"},
		{`{"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": -2}}`, "group_size -2"},
		{`{"quantization": {"bits": 4, "group_size": -64}}`, "quantization: group_size -64"},
		{`{"quantization_config": {"quant_method": "compressed-tensors", "config_groups": {"group_0": {"weights": {"num_bits": -8}}}}}`, "config_groups.group_0.weights.num_bits -8"},
		{`{"quantization_config": {"quant_method": "gptq", "bits": 1e300}}`, "config.json"},
		{`{"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": -1}}`, ""},
	} {
		dir := t.TempDir()
		st := copyFile(t, smallST, dir, "model.safetensors")
		writeFile(t, dir, "config.json", []byte(c.config))
		m, err := openWithin(t, st)
		if c.want == "" {
			if err != nil || m.Quantization == nil || m.Quantization.Bits != 4 || m.Quantization.GroupSize != -1 {
				t.Errorf("%s: %v %+v", c.config, err, m)
			}
			continue
		}
		wantError(t, err, filepath.Join(dir, "config.json"), c.want)
	}
}

// TestInconsistentSets: a model set that contradicts itself is an error,
// never a total: a tensor named twice in an index, one file named twice
// (even one holding no tensor).
func TestInconsistentSets(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, smallST, dir, "s1.safetensors")
	copyFile(t, smallST, dir, "s2.safetensors")
	index := `{"weight_map": {"blocks.0.attn.k.weight": "s1.safetensors", "blocks.0.attn.k.weight": "s2.safetensors"}}`
	_, err := openWithin(t, writeFile(t, dir, "model.safetensors.index.json", []byte(index)))
	wantError(t, err, "model.safetensors.index.json", `"blocks.0.attn.k.weight"`, "named twice")

	empty := t.TempDir()
	h := []byte(`{"__metadata__":{"format":"pt"}}`)
	p := writeFile(t, empty, "none.safetensors", append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...))
	if err := os.Link(p, filepath.Join(empty, "same.safetensors")); err != nil {
		t.Fatal(err)
	}
	for _, paths := range [][]string{{p, p}, {p, empty + "/./none.safetensors"}, {p, filepath.Join(empty, "same.safetensors")}} {
		_, err := openWithin(t, paths...)
		wantError(t, err, "one file, named twice")
	}
}

// TestSelectLinear: choosing among 200,000 files (half of them GGUF) is
// linear: it once looked each file up in the list of GGUF files.
func TestSelectLinear(t *testing.T) {
	const n = 200_000
	entries := make([]loaders.Entry, n)
	for i := range entries {
		entries[i] = loaders.Entry{Name: fmt.Sprintf("w%06d.%s", i, []string{"gguf", "safetensors"}[i%2]), Size: 1}
	}
	start := time.Now()
	sel, err := loaders.Select("d", entries, func(name string) (string, error) {
		return strings.TrimPrefix(filepath.Ext(name), "."), nil
	})
	if err != nil || len(sel.Files) != n/2 || len(sel.Skipped) != n/2 {
		t.Fatalf("%v: %d files, %d skipped", err, len(sel.Files), len(sel.Skipped))
	}
	if d := time.Since(start); d > 10*time.Second { // ~0.3 s; quadratic: minutes
		t.Errorf("Select of %d entries took %v", n, d)
	}
}

// TestManyShards: a directory of 20,000 two-tensor shards and an index
// naming them all is read in seconds, each file opened once.
func TestManyShards(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 20,000 files")
	}
	const n = 20_000
	dir := t.TempDir()
	wm := make(map[string]string, 2*n)
	for i := range n {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, n)
		h := fmt.Sprintf(`{"l%d.a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"l%d.b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, i, i)
		data := append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...)
		writeFile(t, dir, name, append(data, make([]byte, 16)...))
		wm[fmt.Sprintf("l%d.a", i)], wm[fmt.Sprintf("l%d.b", i)] = name, name
	}
	start := time.Now()
	m, err := openWithin(t, dir)
	if err != nil || len(m.Files) != n || len(m.Tensors) != 2*n {
		t.Fatalf("directory: %v", err)
	}
	data, _ := json.Marshal(map[string]any{"weight_map": wm})
	writeFile(t, dir, "model.safetensors.index.json", data)
	if m, err = openWithin(t, dir); err != nil || len(m.Files) != n || len(m.Tensors) != 2*n {
		t.Fatalf("index: %v", err)
	}
	if d := time.Since(start); d > 60*time.Second { // ~1 s here; quadratic: minutes
		t.Errorf("two reads of %d shards took %v", n, d)
	}
}
