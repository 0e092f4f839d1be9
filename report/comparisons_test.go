package report

import (
	"bytes"
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
			"±" + strconv.FormatInt(c.ToleranceBytes, 10), c.Verdict}
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
