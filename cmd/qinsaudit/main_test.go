package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/internal/schematest"
	"github.com/qinsaudit/qinsaudit/report"
)

const fixtures = "../../fixtures"

// runCmd runs the command line in-process. JSON it prints is validated
// against the published schemas.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	if strings.HasPrefix(o.String(), "{") {
		schematest.Validate(t, o.Bytes())
	}
	return o.String(), e.String(), code
}

func auditJSON(t *testing.T, paths ...string) *report.Report {
	t.Helper()
	out, errOut, code := runCmd(t, append([]string{"audit", "--format", "json"}, paths...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	rep, err := report.ReadJSON(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestUsageErrors(t *testing.T) {
	small := filepath.Join(fixtures, "safetensors/small_f32.safetensors")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"audit"}, "no model files given"},
		{[]string{"audit", "--format", "yaml", small}, `invalid argument "yaml" for "--format"`},
		{[]string{"audit", "--by", "file", small}, "must be one of role, module, layer, dtype, tensor"},
		{[]string{"audit", "--sort", "size", small}, `for "--sort" flag: must be one of stored, baseline,`},
		{[]string{"audit", "--top", "-3", small}, "--top must be 0 or more"},
		{[]string{"audit", "--baseline", "int8", small}, "--baseline"},
		{[]string{"audit", "--no-such-flag", small}, "unknown flag"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		out, errOut, code := runCmd(t, c.args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, c.want) || !strings.HasPrefix(errOut, "qinsaudit: ") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, code, out, errOut, c.want)
		}
	}
}

// TestBadInputExit1: every malformed fixture exits 1 with one line naming
// the file.
func TestBadInputExit1(t *testing.T) {
	bad, _ := filepath.Glob(filepath.Join(fixtures, "safetensors/bad_*.safetensors"))
	bad = append(bad, filepath.Join(fixtures, "safetensors/truncated.safetensors"),
		filepath.Join(fixtures, "safetensors/overlap.safetensors"),
		filepath.Join(fixtures, "torch/truncated.pt"), filepath.Join(fixtures, "torch/not_a_checkpoint.zip"),
		filepath.Join(fixtures, "no/such/file.pt"), "README.md")
	for _, p := range bad {
		out, errOut, code := runCmd(t, "audit", p)
		if code != exitBadInput || out != "" || !strings.Contains(errOut, p) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("audit %s: exit %d, stdout %q, stderr %q", p, code, out, errOut)
		}
	}
}

// TestJSONIsRawIntegers: the JSON has no human-formatted sizes, and every
// byte count is an integer.
func TestJSONIsRawIntegers(t *testing.T) {
	out, _, code := runCmd(t, "audit", "--format", "json", filepath.Join(fixtures, "safetensors/sharded"))
	if code != 0 {
		t.Fatal(code)
	}
	for _, unit := range []string{"KiB", "MiB", "GiB", " MB"} {
		if strings.Contains(out, unit) {
			t.Errorf("JSON contains %q", unit)
		}
	}
	var generic map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		t.Fatal(err)
	}
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, v := range x {
				walk(k, v)
			}
		case []any:
			for _, v := range x {
				walk(key, v)
			}
		case json.Number:
			if strings.HasSuffix(key, "_bytes") && strings.ContainsAny(x.String(), ".eE") {
				t.Errorf("%s = %s is not an integer", key, x)
			}
		}
	}
	walk("", generic)
	if generic["schema_version"].(json.Number).String() != "1" {
		t.Errorf("schema_version %v", generic["schema_version"])
	}
}

func TestFormatsAgree(t *testing.T) {
	path := filepath.Join(fixtures, "safetensors/qins_log_small.safetensors")
	rep := auditJSON(t, path)
	text, _, _ := runCmd(t, "audit", "--bytes", path)
	md, _, _ := runCmd(t, "audit", "--bytes", "--format", "markdown", path)
	for _, g := range append(rep.Roles, rep.Totals) {
		for _, n := range []int64{g.BaselineBytes, g.TheoreticalBytes, g.StoredBytes} {
			s := " " + itoa(n) + " "
			if !strings.Contains(text, s) || !strings.Contains(md, s) && !strings.Contains(md, "**"+itoa(n)+"**") {
				t.Errorf("%s: %d not in text or markdown", g.Role, n)
			}
		}
	}
	if !strings.HasPrefix(md, "## qinsaudit\n") || !strings.Contains(md, "|:---") {
		t.Errorf("markdown:\n%s", md)
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestNoWriteToInput(t *testing.T) {
	path := filepath.Join(fixtures, "safetensors/small_f32.safetensors")
	before, _ := os.Stat(path)
	data, _ := os.ReadFile(path)
	runCmd(t, "audit", "--format", "json", path)
	after, _ := os.Stat(path)
	again, _ := os.ReadFile(path)
	if !before.ModTime().Equal(after.ModTime()) || !bytes.Equal(data, again) {
		t.Error("audit changed its input")
	}
}
