package schematest

import (
	"strings"
	"testing"
)

const minimal = `{"schema_version": 1, "tool": "qinsaudit", "baseline": "float32", "files": [],
 "roles": [], "totals": {"role": "total", "tensors": 0, "params": 0, "baseline_bytes": 0,
 "theoretical_bytes": 0, "stored_bytes": STORED, "ratio": 0, "bits_per_weight": 0},
 "layers": [], "modules": [], "dtypes": [], "tensors": [], "findings": []}`

// The schema must reject what the contract forbids, or validating against
// it proves nothing.
func TestSchemaRejects(t *testing.T) {
	if err := Check([]byte(strings.Replace(minimal, "STORED", "0", 1))); err != nil {
		t.Fatalf("minimal report rejected: %v", err)
	}
	for _, bad := range []string{
		strings.Replace(minimal, "STORED", "1.5", 1),        // bytes are integers
		strings.Replace(minimal, "STORED", `"9.38 MiB"`, 1), // never human-formatted
		strings.Replace(strings.Replace(minimal, "STORED", "0", 1), `"schema_version": 1`, `"schema_version": 2`, 1),
		strings.Replace(strings.Replace(minimal, "STORED", "0", 1), `"findings": []`, `"findings": [{"kind": "x"}]`, 1),
		`{"kind": "diff", "schema_version": 1}`,
	} {
		if Check([]byte(bad)) == nil {
			t.Errorf("accepted: %s", bad)
		}
	}
}
