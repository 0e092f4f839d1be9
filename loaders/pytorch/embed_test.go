package pytorch

import (
	"path/filepath"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// TestEmbeddingByClass audits the gen_embed.py files, whose embedding
// tables are modules named tok and bag: no name rule knows them, the file
// does (the class TorchScript and a whole pickled module name, the
// _packed_weight of a quantized Embedding's packed params). Which module
// is an embedding comes from torch's own isinstance, in expected_embed.json.
func TestEmbeddingByClass(t *testing.T) {
	var exp struct {
		Files map[string]map[string]string
	}
	readTruth(t, "expected_embed.json", &exp)
	if len(exp.Files) < 5 {
		t.Fatalf("expected_embed.json lists %d files, want 5", len(exp.Files))
	}
	for name, kinds := range exp.Files {
		t.Run(name, func(t *testing.T) {
			m, err := loadBytes(readFile(t, filepath.Join(fixturesDir, name)))
			if err != nil {
				t.Fatal(err)
			}
			res, err := accounting.Audit(m, accounting.Options{})
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for _, r := range res.Rows {
				kind, ok := kinds[r.Module]
				if !ok {
					t.Errorf("%s: module %q is not one of torch's", r.Name, r.Module)
					continue
				}
				seen[r.Module]++
				if got := r.Role == accounting.Embedding; got != (kind == "embedding") {
					t.Errorf("%s: role %s, but torch says module %s is %s", r.Name, r.Role, r.Module, kind)
				}
			}
			for mod := range kinds {
				if seen[mod] == 0 {
					t.Errorf("no tensor of module %s", mod)
				}
			}
		})
	}
}
