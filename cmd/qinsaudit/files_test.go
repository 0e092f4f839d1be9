package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/internal/schematest"
)

// TestBadFileSetsExit1: a split set with a part missing and a tensor in two
// files are bad input (exit 1), with the file or tensor named.
func TestBadFileSetsExit1(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("../../fixtures/gguf/tiny-00001-of-00002.gguf")
	if err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(dir, "tiny-00001-of-00002.gguf")
	if err := os.WriteFile(part, data, 0o644); err != nil {
		t.Fatal(err)
	}
	st := "../../fixtures/safetensors/small_f32.safetensors"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"audit", part}, "tiny-00002-of-00002.gguf, is missing"},
		{[]string{"audit", st, "./" + st}, `tensor "blocks.0.attn.k.weight" is in both`},
		{[]string{"check", "--forbid", "dead-bytes", st, st}, `tensor "blocks.0.attn.k.weight" is in both`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", c.args, code, stderr.String(), c.want)
		}
	}
}

// TestHubDirectoryJSON: the JSON report of a directory holding the weights
// twice lists the copy not read.
func TestHubDirectoryJSON(t *testing.T) {
	dir := t.TempDir()
	for src, name := range map[string]string{
		"../../fixtures/safetensors/small_f32.safetensors": "model.safetensors",
		"../../fixtures/torch/small_fp32.pt":               "pytorch_model.bin",
	} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"audit", "--format", "json", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	schematest.Validate(t, stdout.Bytes())
	var rep struct {
		Files []struct {
			Path string `json:"path"`
		} `json:"files"`
		Skipped []struct {
			Path      string `json:"path"`
			SizeBytes int64  `json:"size_bytes"`
			Reason    string `json:"reason"`
		} `json:"skipped_files"`
		Totals struct {
			Params      int64 `json:"params"`
			StoredBytes int64 `json:"stored_bytes"`
		} `json:"totals"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Files) != 1 || filepath.Base(rep.Files[0].Path) != "model.safetensors" || rep.Totals.Params != 104704 || rep.Totals.StoredBytes != 418816 ||
		len(rep.Skipped) != 1 || filepath.Base(rep.Skipped[0].Path) != "pytorch_model.bin" || rep.Skipped[0].SizeBytes != 423531 ||
		!strings.Contains(rep.Skipped[0].Reason, "model.safetensors") {
		t.Errorf("report %+v", rep)
	}
}
