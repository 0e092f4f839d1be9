package report

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// sampleComparisons are a crosscheck of the QINS toy model after a cached
// decode, measured by tcmalloc, with two claims: the figures of the real
// profiles in fixtures/heap.
func sampleComparisons() []accounting.Comparison {
	return []accounting.Comparison{
		{Subject: "heap in use vs stored + decoded float32", MeasuredBytes: 19_413_209, ExpectedBytes: 19_275_920, ToleranceBytes: 578_278,
			Verdict: accounting.HoldsDecodedCopies, Message: "the runtime keeps a decoded float32 copy of every encoded weight"},
		{Subject: "claim weights=0.41MB", MeasuredBytes: 19_413_209, ExpectedBytes: 410_000, ToleranceBytes: 587_397,
			Verdict: accounting.ClaimDisagrees, Message: "claimed 410.00 kB (410,000 B), but the process holds 9.98 MB (9,976,025 B) of weights"},
		{Subject: "claim weights (sum of model.parameters())=5120000", MeasuredBytes: 19_413_209, ExpectedBytes: 5_120_000, ToleranceBytes: 582_397,
			Verdict: accounting.ClaimDisagrees, Message: "summing model.parameters() skips registered buffers"},
		{Subject: "claim weights=9.4MiB", MeasuredBytes: 19_413_209, ExpectedBytes: 9_856_614, ToleranceBytes: 351_708,
			Verdict: accounting.Consistent, Message: "the claim matches the weights at rest"},
	}
}

func TestComparisonsTable(t *testing.T) {
	rep := sample(t)
	rep.Comparisons = NewComparisons(sampleComparisons())
	for _, c := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"sample_comparisons.txt", func(b *bytes.Buffer) error { return WriteText(b, rep, TextOptions{}) }},
		{"sample_comparisons_bytes.txt", func(b *bytes.Buffer) error { return WriteText(b, rep, TextOptions{Bytes: true}) }},
		{"sample_comparisons.md", func(b *bytes.Buffer) error { return WriteMarkdown(b, rep, TextOptions{}) }},
		{"sample_comparisons.json", func(b *bytes.Buffer) error { return WriteJSON(b, rep) }},
		{"sample_comparisons.csv", func(b *bytes.Buffer) error { return WriteCSV(b, rep, TextOptions{By: "module"}) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := c.write(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, c.name, b.Bytes())
		})
	}
}

// TestComparisonsTextAgreesWithJSON: with --bytes each comparison row
// carries the JSON's integers.
func TestComparisonsTextAgreesWithJSON(t *testing.T) {
	rep := sample(t)
	rep.Comparisons = NewComparisons(sampleComparisons())
	var b bytes.Buffer
	if err := WriteText(&b, rep, TextOptions{Bytes: true}); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, c := range rep.Comparisons {
		i := strings.Index(text, c.Subject+" ")
		if i < 0 {
			t.Fatalf("no row for %q in\n%s", c.Subject, text)
		}
		f := strings.Fields(text[i+len(c.Subject):])
		want := []string{strconv.FormatInt(c.MeasuredBytes, 10), strconv.FormatInt(c.ExpectedBytes, 10),
			"±" + strconv.FormatInt(c.ToleranceBytes, 10), c.Verdict.String()}
		for k, w := range want {
			if f[k] != w {
				t.Errorf("%s column %d: text %q, JSON %q", c.Subject, k+1, f[k], w)
			}
		}
	}
}

func TestNoComparisonsNoTable(t *testing.T) {
	if comparisonsTable(sample(t), TextOptions{}) != nil {
		t.Error("a table without comparisons")
	}
}

// TestToleranceScale: a tolerance of bytes beside figures of mebibytes
// reads in its own unit, not as ±0.00 MiB.
func TestToleranceScale(t *testing.T) {
	rep := &Report{Comparisons: NewComparisons([]accounting.Comparison{
		{Subject: "stored", MeasuredBytes: 9_839_168, ExpectedBytes: 9_838_736, ToleranceBytes: 432, Verdict: accounting.Consistent},
		{Subject: "end", Verdict: accounting.Consistent},
	})}
	tab := comparisonsTable(rep, TextOptions{})
	if got := strings.Join(tab.header[1:4], "|"); got != "measured (MiB)|expected (MiB)|tolerance (B)" {
		t.Errorf("header %s", got)
	}
	if got := strings.Join(tab.rows[0][1:4], "|"); got != "9.38|9.38|±432" {
		t.Errorf("row %s", got)
	}
}

// TestComparisonsCSV: the comparisons follow the group rows as a section of
// their own, with the JSON's integers.
func TestComparisonsCSV(t *testing.T) {
	rep := sample(t)
	rep.Comparisons = NewComparisons(sampleComparisons())
	var b bytes.Buffer
	if err := WriteCSV(&b, rep, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	sections := strings.Split(b.String(), "\n\n")
	if len(sections) != 2 {
		t.Fatalf("%d sections:\n%s", len(sections), b.String())
	}
	rows, err := csv.NewReader(strings.NewReader(sections[1])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+len(rep.Comparisons) || rows[0][3] != "tolerance_bytes" {
		t.Fatalf("rows %v", rows)
	}
	for i, c := range rep.Comparisons {
		want := []string{c.Subject, strconv.FormatInt(c.MeasuredBytes, 10), strconv.FormatInt(c.ExpectedBytes, 10),
			strconv.FormatInt(c.ToleranceBytes, 10), c.Verdict.String(), c.Message}
		if got := rows[i+1]; strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("row %q, want %q", got, want)
		}
	}
}
