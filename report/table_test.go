package report

import (
	"runtime"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/internal/racetest"
)

func renderString(t *testing.T, tab *table, md bool) string {
	t.Helper()
	var b strings.Builder
	if err := tab.render(&b, md, 0); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Tables are rendered by reused tablewriter tables: one render must not
// leak into the next (columns, alignment, footer, renderer), and a render
// must not allocate tablewriter's per-table stringer cache again.
func TestTableReuse(t *testing.T) {
	racetest.SkipAllocs(t)
	wide := &table{header: []string{"role", "tensors", "params"}, right: []bool{false, true, true},
		rows:   [][]string{{"encoded_linear", "72", "2,359,296"}, {"embedding", "1", "1,280,000"}},
		footer: []string{"total", "73", "3,639,296"}}
	narrow := &table{header: []string{"x", "note"}, right: []bool{true, false}, rows: [][]string{{"1", "a"}}}
	text, md := renderString(t, wide, false), renderString(t, wide, true)
	want := "role            tensors     params\n" +
		"----------------------------------\n" +
		"encoded_linear       72  2,359,296\n" +
		"embedding             1  1,280,000\n" +
		"----------------------------------\n" +
		"total                73  3,639,296\n"
	if text != want {
		t.Fatalf("text table:\n%s\nwant:\n%s", text, want)
	}
	if !strings.HasPrefix(md, "| role           | tensors |        params |\n|:---------------|--------:|--------------:|\n") || !strings.Contains(md, "| **total**      |  **73** | **3,639,296** |") {
		t.Fatalf("markdown table:\n%s", md)
	}
	for i := 0; i < 3; i++ {
		if got := renderString(t, narrow, i%2 == 0); strings.Contains(got, "tensors") || strings.Contains(got, "total") {
			t.Fatalf("render %d of another table kept the first one's cells:\n%s", i, got)
		}
		if got := renderString(t, wide, false); got != text {
			t.Fatalf("text table after reuse:\n%s\nwant:\n%s", got, text)
		}
		if got := renderString(t, wide, true); got != md {
			t.Fatalf("markdown table after reuse:\n%s\nwant:\n%s", got, md)
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 20
	for i := 0; i < n; i++ {
		renderString(t, wide, i%2 == 0)
	}
	runtime.ReadMemStats(&after)
	// A table of three rows takes about 35 KB; tablewriter's stringer cache
	// alone is 440 KB.
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 200<<10 {
		t.Fatalf("a render allocates %d bytes", per)
	}
}
