package report

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/qinsaudit/qinsaudit/internal/schematest"
)

// TestPprof: the profile opens with pprof's own parser, and its samples
// add up to the report's stored and baseline bytes.
func TestPprof(t *testing.T) {
	rep := sample(t)
	var b bytes.Buffer
	if err := WritePprof(&b, rep); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.SampleType) != 2 || p.SampleType[0].Type != "stored_bytes" || p.SampleType[1].Unit != "bytes" {
		t.Fatalf("sample types %v", p.SampleType)
	}
	var stored, base int64
	for _, s := range p.Sample {
		stored += s.Value[0]
		base += s.Value[1]
		if len(s.Location) != 3 || s.Location[2].Line[0].Function.Name[:5] != "role " {
			t.Errorf("stack %v", s.Location)
		}
	}
	var wantStored, wantBase int64
	for _, x := range rep.Tensors {
		wantStored += x.StoredBytes
		wantBase += x.BaselineBytes
	}
	if stored != wantStored || base != wantBase || len(p.Sample) != len(rep.Tensors) {
		t.Errorf("profile sums %d, %d over %d samples; report %d, %d over %d tensors", stored, base, len(p.Sample), wantStored, wantBase, len(rep.Tensors))
	}
}

// TestCSV: exact values, one row per role plus the total.
func TestCSV(t *testing.T) {
	rep := sample(t)
	var b bytes.Buffer
	if err := WriteCSV(&b, rep, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(rep.Roles)+2 || rows[0][5] != "stored_bytes" {
		t.Fatalf("rows %v", rows)
	}
	last := rows[len(rows)-1]
	if last[0] != "total" || last[5] != strconv.FormatInt(rep.Totals.StoredBytes, 10) || last[6] != strconv.FormatFloat(rep.Totals.Ratio, 'g', -1, 64) {
		t.Errorf("total row %v, report %+v", last, rep.Totals)
	}
	b.Reset()
	WriteCSV(&b, rep, TextOptions{By: "tensor", Sort: "stored", Top: 2})
	rows, _ = csv.NewReader(&b).ReadAll()
	if len(rows) != 3 || rows[1][0] != "embed.weight" {
		t.Errorf("tensor rows %v", rows)
	}
}

func TestDiffRenderers(t *testing.T) {
	old := sample(t)
	cur := sample(t)
	// The new model stores layers.1.v in uint8 and drops the norm.
	for i := range cur.Tensors {
		if cur.Tensors[i].Name == "layers.1.v.weight_qins" {
			cur.Tensors[i].StoredBytes /= 4
		}
	}
	cur.Tensors = cur.Tensors[:len(cur.Tensors)-3]
	d := NewDiff(old, cur, "module")
	for _, c := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"diff_module.txt", func(b *bytes.Buffer) error { return WriteDiffText(b, d, TextOptions{}) }},
		{"diff_module_bytes_top_3.txt", func(b *bytes.Buffer) error { return WriteDiffText(b, d, TextOptions{Bytes: true, Top: 3}) }},
		{"diff_module.md", func(b *bytes.Buffer) error { return WriteDiffMarkdown(b, d, TextOptions{}) }},
		{"diff_module.csv", func(b *bytes.Buffer) error { return WriteDiffCSV(b, d) }},
		{"diff_module.json", func(b *bytes.Buffer) error { return WriteDiffJSON(b, d) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := c.write(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, c.name, b.Bytes())
			if c.name == "diff_module.json" {
				schematest.Validate(t, b.Bytes())
			}
		})
	}
	var total int64
	for _, r := range d.Rows {
		total += r.DeltaBytes
	}
	if total != d.Total.DeltaBytes || d.Total.DeltaBytes != -12288-256 {
		t.Errorf("total delta %d, rows sum to %d", d.Total.DeltaBytes, total)
	}
}
