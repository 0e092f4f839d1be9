package report

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadJSON: go test ./report -fuzz=FuzzReadJSON. Any input is a report
// that validates and reads back the same once written again, or an error;
// never a panic. Inputs that once failed are kept in testdata/fuzz.
func FuzzReadJSON(f *testing.F) {
	matches, _ := filepath.Glob("testdata/*.json")
	matches = append(matches, "../cmd/qinsaudit/testdata/compat/v1_toy_fp32.json")
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"tool":"qinsaudit","schema_version":1,"tensors":[{"name":"a","stored_bytes":-1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := ParseJSON(data)
		if err != nil {
			return
		}
		if err := rep.Validate(); err != nil {
			t.Fatalf("accepted a report Validate refuses: %v", err)
		}
		var b bytes.Buffer
		if err := WriteJSON(&b, rep); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseJSON(b.Bytes()); err != nil {
			t.Fatalf("a report read back is refused once written again: %v", err)
		}
	})
}
