package pytorch

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// TestLayoutFixtures audits gen_layouts.py's files (a pruned model, as a
// state_dict and pickled whole; a sparsifier's parametrization; expanded
// views; complex tensors; weight_norm and spectral_norm; dynamically quantized RNNs; QINS signs packed eight to a byte) against what torch says of them: the model's
// params and float32 baseline, the bytes of its storages, and the bytes
// each warning must name.
func TestLayoutFixtures(t *testing.T) { checkLayouts(t, fixturesDir) }

// TestLayoutsFromTorch runs gen_layouts.py under the real torch into a
// temporary directory and checks what it writes: the committed files
// could otherwise go stale against their producer. It skips without
// torch, unless CI is set (.ci/run installs it).
func TestLayoutsFromTorch(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import torch").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI: %s with torch is needed (.ci/run installs it): %v", python, err)
		}
		t.Skipf("needs %s with torch: %v", python, err)
	}
	dir := t.TempDir()
	cmd := exec.Command(python, filepath.Join(fixturesDir, "gen_layouts.py"), "--out", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen_layouts.py: %v\n%s", err, out)
	}
	checkLayouts(t, dir)
}

func checkLayouts(t *testing.T, dir string) {
	var exp struct {
		Files map[string]struct {
			SizeBytes     int64                            `json:"size_bytes"`
			Params        int64                            `json:"params"`
			BaselineBytes int64                            `json:"baseline_bytes"`
			StoredBytes   int64                            `json:"stored_bytes"`
			Findings      map[accounting.FindingKind]int64 `json:"findings"`
			Parts         map[string][2]string             `json:"parts"`
		} `json:"files"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "expected_layouts.json")), &exp); err != nil {
		t.Fatal(err)
	}
	if len(exp.Files) != 10 {
		t.Fatalf("expected_layouts.json lists %d files", len(exp.Files))
	}
	for name, want := range exp.Files {
		t.Run(name, func(t *testing.T) {
			data := readFile(t, filepath.Join(dir, name))
			if int64(len(data)) != want.SizeBytes {
				t.Fatalf("%d bytes, expected_layouts.json says %d: regenerate", len(data), want.SizeBytes)
			}
			m, err := loadBytes(data)
			if err != nil {
				t.Fatal(err)
			}
			m.Files[0].SizeBytes = int64(len(data))
			res, err := accounting.Audit(m, accounting.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if g := res.Total; g.Params != want.Params || g.BaselineBytes != want.BaselineBytes || g.StoredBytes != want.StoredBytes {
				t.Errorf("total: %d params, %d baseline, %d stored; torch: %d, %d, %d",
					g.Params, g.BaselineBytes, g.StoredBytes, want.Params, want.BaselineBytes, want.StoredBytes)
			}
			got := map[accounting.FindingKind]int64{}
			for _, f := range res.Findings {
				if _, ok := want.Findings[f.Kind]; ok || f.Kind == accounting.PruningMask || f.Kind == accounting.RepeatedElements || f.Kind == accounting.DerivedCopy {
					got[f.Kind] += f.Bytes
				}
			}
			for k := range got {
				if _, ok := want.Findings[k]; !ok {
					t.Errorf("a %s finding of %d bytes; torch's files have none", k, got[k])
				}
			}
			for k, b := range want.Findings {
				if got[k] != b {
					t.Errorf("%s: %d bytes; torch: %d", k, got[k], b)
				}
			}
			for tensor, mp := range want.Parts {
				for _, r := range res.Rows {
					if r.Name == tensor && (r.Module != mp[0] || string(r.Part) != mp[1]) {
						t.Errorf("%s: module %q, part %s; want %q, %s", tensor, r.Module, r.Part, mp[0], mp[1])
					}
				}
			}
		})
	}
}
