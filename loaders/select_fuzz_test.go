package loaders_test

import (
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/loaders"
)

// FuzzSelect checks, on any listing, that every model file and every index
// of a directory is read or skipped, exactly once, and that nothing else
// is.
func FuzzSelect(f *testing.F) {
	f.Add("model.safetensors\npytorch_model.bin\nq4.gguf\nconfig.json")
	f.Add("model.safetensors.index.json\nmodel-00001-of-00002.safetensors\npytorch_model.bin.index.json\npytorch_model-00001-of-00002.bin")
	f.Add("a.gguf\nb.gguf\nc.safetensors\nREADME.md")
	f.Add("x.index.json\ny.index.json\nshard.bin")
	f.Fuzz(func(t *testing.T, listing string) {
		seen := map[string]bool{}
		var entries []loaders.Entry
		for _, n := range strings.Split(listing, "\n") {
			if n == "" || seen[n] {
				continue
			}
			seen[n] = true
			entries = append(entries, loaders.Entry{Name: n, Size: int64(len(n))})
		}
		// A file's "content" is told by its last byte.
		format := func(n string) string {
			switch n[len(n)-1] % 4 {
			case 0:
				return "gguf"
			case 1:
				return "safetensors"
			case 2:
				return "pytorch-zip"
			}
			return ""
		}
		sel, err := loaders.Select("", entries, func(n string) (string, error) {
			if !seen[n] {
				t.Fatalf("sniffed %q, not in the listing", n)
			}
			return format(n), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		sel.Shards(map[string]bool{})
		count := map[string]int{}
		for _, n := range sel.Files {
			count[n]++
		}
		for _, n := range sel.Indexes {
			count[n]++
		}
		for _, s := range sel.Skipped {
			if s.Reason == "" || s.SizeBytes != int64(len(s.Path)) {
				t.Fatalf("skipped %+v", s)
			}
			count[s.Path]++
		}
		for _, e := range entries {
			want := 0
			if strings.HasSuffix(e.Name, ".index.json") || format(e.Name) != "" || e.Name == "model.safetensors" || e.Name == "pytorch_model.bin" {
				want = 1
			}
			if count[e.Name] != want {
				t.Fatalf("%q: read or skipped %d times, want %d (files %q, indexes %q, skipped %+v)", e.Name, count[e.Name], want, sel.Files, sel.Indexes, sel.Skipped)
			}
		}
		if len(sel.Indexes) > 0 && len(sel.Files) > 0 {
			t.Fatalf("both indexes %q and files %q", sel.Indexes, sel.Files)
		}
	})
}
