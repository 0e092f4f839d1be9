package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/schematest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// sample is a small model with something of everything: QINS-log encoded
// linears, an encoded layer still in float32, a tied head, a norm, and
// optimizer state.
func sample(t *testing.T) *Report {
	t.Helper()
	return New(sampleResult(t, accounting.Options{}))
}

// sampleResult is sample's audit with opts, before it becomes a report.
func sampleResult(t *testing.T, opts accounting.Options) *accounting.Result {
	t.Helper()
	m := &accounting.Model{Files: []accounting.File{{Path: "model.pt", Format: "pytorch-zip", SizeBytes: 300000}}}
	add := func(name, dtype string, shape ...int64) {
		d, _ := accounting.LookupDType(dtype)
		n, _ := accounting.Numel(shape)
		b, _ := d.Bytes(n)
		m.Tensors = append(m.Tensors, accounting.Tensor{Name: name, DType: dtype, Shape: shape, Storage: fmt.Sprint(len(m.Tensors)), StorageBytes: b})
	}
	add("embed.weight", "float32", 500, 64)
	for blk := 0; blk < 2; blk++ {
		p := fmt.Sprintf("layers.%d.", blk)
		for _, l := range []string{"q", "k"} {
			add(p+l+".stored", "uint8", 64, 64)
			add(p+l+".sign", "int8", 64, 64)
			add(p+l+".log_min", "float32")
			add(p+l+".log_max", "float32")
		}
		add(p+"v.weight_qins", "float32", 64, 64)
		add(p+"norm.weight", "float32", 64)
	}
	add("lm_head.weight", "float32", 500, 64)
	m.Tensors[len(m.Tensors)-1].Storage = "0"
	add("optimizer.state.0.exp_avg", "float32", 64)
	res, err := accounting.Audit(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden (go test ./report -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestRenderers(t *testing.T) {
	rep := sample(t)
	for _, c := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"sample.json", func(b *bytes.Buffer) error { return WriteJSON(b, rep) }},
		{"sample.txt", func(b *bytes.Buffer) error { return WriteText(b, rep, TextOptions{}) }},
		{"sample_bytes.txt", func(b *bytes.Buffer) error { return WriteText(b, rep, TextOptions{Bytes: true}) }},
		{"sample_by_module_sort_stored_top_3.txt", func(b *bytes.Buffer) error {
			return WriteText(b, rep, TextOptions{By: "module", Sort: "stored", Top: 3})
		}},
		{"sample_by_layer.txt", func(b *bytes.Buffer) error { return WriteText(b, rep, TextOptions{By: "layer"}) }},
		{"sample_by_tensor_top_5.txt", func(b *bytes.Buffer) error { return WriteText(b, rep, TextOptions{By: "tensor", Top: 5}) }},
		{"sample.md", func(b *bytes.Buffer) error { return WriteMarkdown(b, rep, TextOptions{}) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := c.write(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, c.name, b.Bytes())
			if strings.HasSuffix(c.name, ".json") {
				schematest.Validate(t, b.Bytes())
			}
		})
	}
}

// TestJSONRoundTrip: a report read back and written again is the same
// bytes, so the JSON carries everything.
func TestJSONRoundTrip(t *testing.T) {
	var a, b bytes.Buffer
	if err := WriteJSON(&a, sample(t)); err != nil {
		t.Fatal(err)
	}
	rep, err := ReadJSON(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("round trip changed the report:\n%s\n%s", a.String(), b.String())
	}
}

// TestTextAgreesWithJSON: with --bytes every role row of the table carries
// the JSON's integers exactly.
func TestTextAgreesWithJSON(t *testing.T) {
	rep := sample(t)
	var b bytes.Buffer
	if err := WriteText(&b, rep, TextOptions{Bytes: true}); err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(b.String(), "\n") {
		f := strings.Fields(line)
		if len(f) >= 8 {
			rows[f[0]] = f
		}
	}
	for _, g := range append(rep.Roles, rep.Totals) {
		f, ok := rows[g.Role]
		if !ok {
			t.Errorf("no row for %s in\n%s", g.Role, b.String())
			continue
		}
		if g.Role == "optimizer_state" {
			f = append(f[:1], f[2:]...) // the "*" marker
		}
		nums := []int64{g.Tensors, g.Params, g.BaselineBytes, g.TheoreticalBytes, g.StoredBytes}
		for i, want := range nums {
			got, err := strconv.ParseInt(strings.ReplaceAll(f[1+i], ",", ""), 10, 64)
			if err != nil || got != want {
				t.Errorf("%s column %d: text %q, JSON %d", g.Role, i+1, f[1+i], want)
			}
		}
	}
}

func TestReadJSONErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"tool": "qinsaudit", "schema_version": 99}`, "schema_version 99 is not supported"},
		{`{"schema_version": 1}`, "not a qinsaudit JSON report"},
		{"{\n\"tool\": \"qinsaudit\",\n \"schema_version\": 1,\n \"files\": 3}", "line 4"},
		{"not json", "not a qinsaudit JSON report"},
		// The schema version is judged before the fields it would give meaning to.
		{`{"tool": "qinsaudit", "schema_version": 2, "files": 3}`, "schema_version 2 is not supported"},
		{`{"tool": "qinsaudit", "schema_version": 0}`, "schema_version 0 is not supported"},
		{`{"tool": "qinsaudit", "files": 3}`, "not a qinsaudit JSON report"},
		{`{"tool": "qinsaudit", "schema_version": 1} {}`, "not a qinsaudit JSON report"},
		{`{"tool": "other", "schema_version": 1}`, "not a qinsaudit JSON report"},
		// A diff's JSON reads as an empty report: it is refused as one.
		{`{"schema_version": 1, "tool": "qinsaudit", "kind": "diff", "by": "role", "old_files": [], "new_files": [], "rows": [], "total": {}}`, "a diff (qinsaudit diff --format json), not a report"},
		{"{\"schema_version\": 1, \"tool\": \"qinsaudit\", \"kind\": \"diff\", \"files\": 3}", "a diff"},
	} {
		_, err := ReadJSON(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ReadJSON(%q) = %v, want error containing %q", c.in, err, c.want)
		}
	}
}

func TestColumnScale(t *testing.T) {
	for _, c := range []struct {
		vals []int64
		unit string
		v    int64
		want string
	}{
		{[]int64{9437184, 100 << 10}, "MiB", 4718592, "4.50"},
		// 100 B would print 0.00 in MiB: KiB, where 9 MiB still reads in
		// four digits.
		{[]int64{9437184, 100}, "KiB", 100, "0.10"},
		// 3 KiB beside 5 GiB: MiB (5,120), and 3 KiB still shows as not zero.
		{[]int64{5 << 30, 3 << 10}, "MiB", 3 << 10, "<0.01"},
		{[]int64{5 << 30, 3 << 10}, "MiB", -(3 << 10), "-<0.01"},
		// Bytes when the largest is small enough to read in bytes.
		{[]int64{200 << 10, 4}, "B", 4, "4"},
		{[]int64{0, 0}, "B", 0, "0"},
		{[]int64{1023}, "B", 1023, "1023"},
		{[]int64{2048}, "KiB", 100, "0.10"},
		{[]int64{5 << 30}, "GiB", 5 << 30, "5.00"},
	} {
		s := columnScale(c.vals, false)
		if s.unit != c.unit || s.format(c.v) != c.want {
			t.Errorf("columnScale(%v): %s %s, want %s %s", c.vals, s.unit, s.format(c.v), c.unit, c.want)
		}
	}
}

// TestLayout: layout only adds white space outside strings, so compacting
// its output gives back the input exactly.
func TestLayout(t *testing.T) {
	for _, in := range []string{
		`{}`, `[]`, `{"a":[]}`, `{"a":{}}`,
		`{"a":1,"b":[1,2,{"c":"x,y:{z}"}],"d":{"e":[["f"]]}}`,
		`{"s":"quote \" and backslash \\ and \\\" then , : { [ ] }","t":[{"u":"\u00e9"}]}`,
		`[{"a":[1,[2,[3]]]},{"b":null}]`,
	} {
		got := layout([]byte(in))
		var b bytes.Buffer
		if err := json.Compact(&b, got); err != nil {
			t.Fatalf("%s: %v\n%s", in, err, got)
		}
		if b.String() != in {
			t.Errorf("layout changed %s:\n%s", in, got)
		}
	}
	var b bytes.Buffer
	WriteJSON(&b, sample(t))
	if lines := strings.Count(b.String(), "\n"); lines < 30 || lines > 84 {
		t.Errorf("%d lines: one per tensor, group and finding expected", lines)
	}
}

// TestSkippedFiles: files a directory held but that were not read are in
// the JSON (validated against the schema, read back whole), the text and
// the Markdown; a committed report from before the field still reads.
func TestSkippedFiles(t *testing.T) {
	m := &accounting.Model{
		Files:   []accounting.File{{Path: "repo/model.safetensors", Format: "safetensors", SizeBytes: 120}},
		Tensors: []accounting.Tensor{{Name: "w", DType: "float32", Shape: []int64{4}, Storage: "w", StorageBytes: 16}},
		Skipped: []accounting.SkippedFile{{Path: "repo/pytorch_model.bin", SizeBytes: 4567, Reason: "transformers loads model.safetensors from this directory, not this file"}},
	}
	res, err := accounting.Audit(m, accounting.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := New(res)
	var js bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	schematest.Validate(t, js.Bytes())
	back, err := ReadJSON(bytes.NewReader(js.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want := SkippedFile{Path: "repo/pytorch_model.bin", SizeBytes: 4567, Reason: "transformers loads model.safetensors from this directory, not this file"}
	if len(back.SkippedFiles) != 1 || back.SkippedFiles[0] != want {
		t.Errorf("skipped_files read back %+v, want %+v", back.SkippedFiles, want)
	}
	for _, md := range []bool{false, true} {
		var b bytes.Buffer
		if err := write(&b, rep, TextOptions{Bytes: true}, md); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "skipped files") || !strings.Contains(b.String(), "repo/pytorch_model.bin") ||
			!strings.Contains(b.String(), "4567") || !strings.Contains(b.String(), want.Reason) {
			t.Errorf("markdown %v:\n%s", md, b.String())
		}
	}
	old, err := os.ReadFile(filepath.Join("testdata", "sample.json"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(old, []byte("skipped_files")) {
		t.Fatal("testdata/sample.json is not a report from before skipped_files")
	}
	if r, err := ReadJSON(bytes.NewReader(old)); err != nil || r.SkippedFiles != nil {
		t.Errorf("old report: %v, skipped %v", err, r)
	}
}
