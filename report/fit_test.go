package report

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/olekukonko/tablewriter/pkg/twwidth"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// figures are the numbers a table prints: 1,280,000, 4.88, ±96.08.
var figures = regexp.MustCompile(`[+-±]?\d[\d,]*(?:\.\d+)?`)

// checkWidth fails unless every line of out fits width, but for a single
// word alone on its line.
func checkWidth(t *testing.T, out string, width int) {
	t.Helper()
	for i, l := range strings.Split(out, "\n") {
		if twwidth.Width(l) > width && len(strings.Fields(l)) != 1 {
			t.Errorf("line %d is %d columns, more than %d:\n%s", i+1, twwidth.Width(l), width, l)
		}
	}
}

// checkFigures fails unless every figure of full is in narrow.
func checkFigures(t *testing.T, full, narrow string) {
	t.Helper()
	for _, f := range figures.FindAllString(full, -1) {
		if !strings.Contains(narrow, f) {
			t.Errorf("figure %q lost", f)
		}
	}
}

// profileReport is what qinsaudit profile reports: phases of a profiled
// process (tensors, other) with their verdicts, and comparisons whose
// messages run long.
func profileReport(t *testing.T) *Report {
	rep := sample(t)
	ph := func(name string, in, exp, tensors, other int64, v accounting.Verdict) Phase {
		return Phase{Phase: name, InUseBytes: in, ExpectedBytes: exp, ByRole: map[string]int64{"tensors": tensors, "other": other}, Verdict: v}
	}
	rep.Phases = []Phase{
		ph("start", 0, 0, 0, 0, 0),
		ph("after-load model.layers.0.self_attn.q_proj", 9_838_736+4096, 9_838_736, 9_838_736, 4096, accounting.Consistent),
		ph("after-forward", 19_400_960, 9_838_736, 19_300_000, 100_960, accounting.HoldsDecodedCopies),
		ph("end", 1_234_567_890, 1_000_000_000, 1_200_000_000, 34_567_890, accounting.Inconclusive),
	}
	rep.Comparisons = NewComparisons([]accounting.Comparison{
		{Subject: "heap in use vs stored weights (after-load)", MeasuredBytes: 9_842_832, ExpectedBytes: 9_838_736, ToleranceBytes: 98_387,
			Verdict: accounting.Consistent, Message: "the heap holds the stored weights, 9.38 MiB, and no decoded copies; measured by jemalloc-heap_v2, tensors allocated through libc10 (4 KiB outside it not compared), sampled every 512 KiB on average: ±1.73 MiB (1σ)"},
		{Subject: "claim weights=0.41MB", MeasuredBytes: 9_842_832, ExpectedBytes: 410_000, ToleranceBytes: 4_100,
			Verdict: accounting.ClaimDisagrees, Message: "claimed 0.41MB = 410,000 B, but the process holds the stored weights, 9,838,736 B: +9,428,736 B, 24x more than the claim"},
	})
	return rep
}

// TestFitWidths renders the profile's phases and comparisons, and the
// sample's tables by tensor, at 80 and 120 columns: nothing wider, no
// figure lost; and Markdown is never wrapped.
func TestFitWidths(t *testing.T) {
	rep := profileReport(t)
	for _, by := range []By{ByRole, ByTensor} {
		var full bytes.Buffer
		if err := WriteText(&full, rep, TextOptions{By: by}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(full.String(), "profile phases") {
			t.Fatalf("no profile phases table:\n%s", full.String())
		}
		for _, w := range []int{80, 120} {
			var b bytes.Buffer
			if err := WriteText(&b, rep, TextOptions{By: by, Width: w}); err != nil {
				t.Fatal(err)
			}
			checkWidth(t, b.String(), w)
			checkFigures(t, full.String(), b.String())
			if by == "role" {
				golden(t, "profile_"+strconv.Itoa(w)+".txt", b.Bytes())
			}
		}
	}
	var md, mdNarrow bytes.Buffer
	WriteMarkdown(&md, rep, TextOptions{})
	WriteMarkdown(&mdNarrow, rep, TextOptions{Width: 40})
	if md.String() != mdNarrow.String() {
		t.Error("Markdown changed with the width")
	}
}

func TestWrap(t *testing.T) {
	for _, c := range []struct {
		in    string
		width int
		split func(string) []string
		want  string
	}{
		{"sign stored as int8, 8 bits per element", 16, splitWords, "sign stored as\n  int8, 8 bits\n  per element"},
		{"a-very-long-word here", 8, splitWords, "a-very-long-word\n  here"}, // a word wider than the line stays whole
		{"blocks.0.attn.q.stored", 10, splitName, "blocks.0.\n  attn.q.\n  stored"},
		{"float32 baseline (MiB)", 8, splitHeader, "float32\nbaseline\n(MiB)"},
		{"bits/weight", 6, splitHeader, "bits/\nweight"},
	} {
		ind := indent
		if c.split == nil || strings.Contains(c.in, "(MiB)") || strings.Contains(c.in, "bits/") {
			ind = ""
		}
		if got := wrap(c.in, c.width, c.split, ind); got != c.want {
			t.Errorf("wrap(%q, %d) = %q, want %q", c.in, c.width, got, c.want)
		}
	}
}

// Figures never break and a table too wide even at its narrowest
// overflows only by words that cannot break.
func TestFitFigures(t *testing.T) {
	tab := &table{header: []string{"name", "bytes (B)", "message"}, right: []bool{false, true, false},
		rows: [][]string{{"a", "123,456,789,012", "unbreakable-message-of-forty-two-characters and more"}}}
	var b strings.Builder
	if err := tab.render(&b, false, 40); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "123,456,789,012") {
		t.Fatalf("figure broken:\n%s", b.String())
	}
	checkWidth(t, b.String(), 40)
}

// TestCellWidthIsTablewriters checks the ASCII shortcut against
// tablewriter's own measure, which the table's columns are laid out by.
func TestCellWidthIsTablewriters(t *testing.T) {
	cases := []string{"", " ", "a", "encoded_linear", "  2,359,296", "~!@#$%^&*()_+{}|:<>?`-=[]\\;',./\"",
		"\t", "a\tb", "\x1b[31mred\x1b[0m", "\x7f", "é", "naïve", "日本語", "emoji 🙂", "a\x00b", "\n", "a\u200bb"}
	for c := 0x20; c < 0x7f; c++ {
		cases = append(cases, string(rune(c)), "ab"+string(rune(c)))
	}
	for _, s := range cases {
		if got, want := cellWidth(s), twwidth.Width(s); got != want {
			t.Errorf("cellWidth(%q) = %d, tablewriter says %d", s, got, want)
		}
	}
}
