package pytorch

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/realworld"
)

// edgeExpected is fixtures/torch/expected_edge.json, written by gen_edge.py
// from what torch.load gives back.
type edgeExpected struct {
	Files map[string]struct {
		SizeBytes   int64  `json:"size_bytes"`
		Error       string `json:"error"` // a file to refuse: part of the message
		TensorCount int64  `json:"tensor_count"`
		StoredBytes int64  `json:"stored_bytes"`
		// ModelStoredBytes, when given, is the model's part: the file
		// less its optimizer state.
		ModelStoredBytes *int64 `json:"model_stored_bytes"`
		// Params, when given, is the model's parameter count, a tied
		// weight counted once.
		Params   *int64   `json:"params"`
		Findings []string `json:"findings"`
		Tensors  []struct {
			Name  string  `json:"name"`
			DType string  `json:"dtype"`
			Shape []int64 `json:"shape"`
			Meta  bool    `json:"meta"`
		} `json:"tensors"`
	} `json:"files"`
}

// TestEdgeFixtures checks the files gen_edge.py made with torch.save
// against what torch.load gives back: tensors on the meta device (no data
// in the file; a tied weight among them counted once), an optimizer object whose state is keyed by its
// parameters, an optimizer object under a key of no known name, dicts
// keyed by tensors, sparse COO and CSR tensors, and a
// damaged file whose storage's element count disagrees with its record,
// which must be refused. Every
// tensor torch returns is listed, with its dtype and shape, the distinct
// storages' bytes are the file's stored bytes, and the findings are the
// ones that say what the figures cannot (no-data for meta tensors).
func TestEdgeFixtures(t *testing.T) {
	var exp edgeExpected
	readTruth(t, "expected_edge.json", &exp)
	if len(exp.Files) < 14 {
		t.Fatalf("expected_edge.json lists %d files", len(exp.Files))
	}
	for name, want := range exp.Files {
		t.Run(name, func(t *testing.T) {
			data := readFile(t, filepath.Join(fixturesDir, name))
			if int64(len(data)) != want.SizeBytes {
				t.Fatalf("%d bytes, expected_edge.json says %d: regenerate", len(data), want.SizeBytes)
			}
			m, err := loadBytes(data)
			if want.Error != "" {
				if err == nil || !strings.Contains(err.Error(), want.Error) {
					t.Fatalf("error %v, want one saying %s", err, want.Error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(m.Tensors)) != want.TensorCount || realworld.StoredBytes(m) != want.StoredBytes {
				t.Errorf("%d tensors, %d stored bytes; torch: %d, %d", len(m.Tensors), realworld.StoredBytes(m), want.TensorCount, want.StoredBytes)
			}
			var meta []string
			for i, wt := range want.Tensors {
				if wt.Meta {
					meta = append(meta, wt.Name)
				}
				if i >= len(m.Tensors) {
					t.Errorf("tensor %d: missing; torch: %s %s %v", i, wt.Name, wt.DType, wt.Shape)
					continue
				}
				g := m.Tensors[i]
				if g.Name != wt.Name || g.DType != wt.DType || !slices.Equal(g.Shape, wt.Shape) {
					t.Errorf("tensor %d: %s %s %v; torch: %s %s %v", i, g.Name, g.DType, g.Shape, wt.Name, wt.DType, wt.Shape)
				}
			}
			m.Files[0].SizeBytes = int64(len(data))
			res, err := accounting.Audit(m, accounting.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if f := res.Files[0]; f.Tensors != want.TensorCount || f.StoredBytes != want.StoredBytes {
				t.Errorf("file: %d tensors, %d stored bytes; torch: %d, %d", f.Tensors, f.StoredBytes, want.TensorCount, want.StoredBytes)
			}
			if w := want.ModelStoredBytes; w != nil && res.Total.StoredBytes != *w {
				t.Errorf("model: %d stored bytes, torch: %d (the rest is optimizer state)", res.Total.StoredBytes, *w)
			}
			if w := want.Params; w != nil && res.Total.Params != *w {
				t.Errorf("%d params, torch: %d", res.Total.Params, *w)
			}
			var kinds []string
			for _, f := range res.Findings {
				if !slices.Contains(kinds, string(f.Kind)) {
					kinds = append(kinds, string(f.Kind))
				}
				if f.Kind != accounting.NoData {
					continue
				}
				var bytes int64
				for i, r := range res.Rows {
					if slices.Contains(meta, r.Name) {
						bytes += r.TheoreticalBytes
						if r.StoredBytes != 0 || r.DeadBytes != 0 {
							t.Errorf("meta tensor %s: stored %d, dead %d; want none", r.Name, r.StoredBytes, r.DeadBytes)
						}
						if m.Tensors[i].DataOffset != accounting.NoDataOffset {
							t.Errorf("meta tensor %s: data offset %d", r.Name, m.Tensors[i].DataOffset)
						}
					}
				}
				if !slices.Equal(f.Tensors, meta) || f.Bytes != bytes || f.Severity != accounting.Warning {
					t.Errorf("no-data finding: %s on %v, %d bytes; want a warning on %v, %d bytes", f.Severity, f.Tensors, f.Bytes, meta, bytes)
				}
			}
			slices.Sort(kinds)
			if !slices.Equal(kinds, want.Findings) && !(len(kinds) == 0 && len(want.Findings) == 0) {
				t.Errorf("findings %v, want %v", kinds, want.Findings)
			}
		})
	}
}
