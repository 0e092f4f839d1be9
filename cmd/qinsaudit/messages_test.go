package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMessagesForPeople: bad side files and empty files get messages in
// the file's terms, naming the file, without the Go types the decoders
// speak of, and with one "qinsaudit: " prefix.
func TestMessagesForPeople(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	model := filepath.Join(fixtures, "torch/toy_qins_log.pt")
	heap := filepath.Join(fixtures, "heap/tcmalloc-cache-after-load.heap.gz")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"check", model, "--config", write("type.yaml", "budgets:\n  - role: total\n    min_ratio: two\n")}, `line 3: "two" is text, want a number`},
		{[]string{"check", model, "--config", write("list.yaml", "budgets: 5\n")}, `line 1: "5" is a number, want a list`},
		{[]string{"check", model, "--config", write("key.yaml", "max_growth: 1%\n")}, `line 1: unknown key "max_growth"`},
		{[]string{"check", model, "--config", write("empty.yaml", "")}, "empty.yaml: empty file"},
		{[]string{"check", model, "--against", write("empty.json", " \n")}, "empty.json: empty file: not a qinsaudit JSON report"},
		{[]string{"check", model, "--against", write("typed.json", `{"schema_version": 1, "tool": "qinsaudit", "files": 3}`)}, `"files" is a number, want a list`},
		{[]string{"audit", "--rules", write("rules.yaml", "\n"), model}, "rules.yaml: empty file"},
		{[]string{"audit", "--rules", write("rules2.yaml", "schemes: {a: 1}\n"), model}, "line 1: got a mapping, want a list"},
		{[]string{"crosscheck", model, "--heap", heap, "--claims", write("claims.json", "")}, "claims.json: empty file"},
		// An empty model file says so in loaders (on main since the
		// loaders' own branch: "the file is empty").
	} {
		_, e, code := runCmd(t, c.args...)
		if code == 0 || !strings.Contains(e, c.want) {
			t.Errorf("%v: exit %d, %q, want %q", c.args, code, e, c.want)
		}
		for _, internal := range []string{"float64", "int64", "[]string", "gate.Budget", "rules.Scheme", "unmarshal", "strconv.", "qinsaudit: qinsaudit:", "Report."} {
			if strings.Contains(e, internal) {
				t.Errorf("%v: %q says %q", c.args, e, internal)
			}
		}
	}
}
