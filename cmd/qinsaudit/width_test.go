package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/olekukonko/tablewriter/pkg/twwidth"
)

// widthCases are one text output of every command.
var widthCases = []struct {
	name string
	args []string
}{
	{"audit", []string{"audit", "fixtures/torch/toy_qins_log.pt"}},
	{"audit_by_tensor", []string{"audit", "--by", "tensor", "fixtures/torch/toy_qins_log.pt"}},
	{"check", []string{"check", "fixtures/torch/qins_rational_f32.pt", "--config", "fixtures/ci/qinsaudit.yaml"}},
	{"diff", []string{"diff", "--by", "module", "fixtures/torch/toy_fp32.pt", "fixtures/torch/toy_qins_log.pt"}},
	{"decode", []string{"decode", "--cache", "fixtures/torch/toy_qins_log.pt"}},
	{"crosscheck", []string{"crosscheck", "fixtures/torch/toy_qins_log.pt", "--heap", "fixtures/heap/tcmalloc-import-cache-after-load.heap.gz",
		"--claim", "weights=0.41MB", "--claims", "fixtures/heap/claims.json"}},
	{"crosscheck_jemalloc", []string{"crosscheck", "fixtures/torch/toy_qins_log.pt", "--heap", "fixtures/heap/jemalloc-sampled-cache-after-load.heap.gz",
		"--heap-base", "fixtures/heap/jemalloc-sampled-cache-after-import.heap.gz"}},
}

// figure is a number as the text output prints it: 1,280,000, 4.88,
// +9,428,736, 2.00x, 92%.
var figure = regexp.MustCompile(`[+-±]?\d[\d,]*(?:\.\d+)?`)

// TestWidth renders every command's text output at 80 and 120 columns
// against goldens (go test ./cmd/qinsaudit -run TestWidth -update): no
// line is wider than asked but for a single word that cannot break, and
// every figure of the unlimited (--wide) output is still printed.
func TestWidth(t *testing.T) {
	t.Chdir("../..")
	for _, c := range widthCases {
		wide, errOut, code := runCmd(t, append(c.args, "--wide")...)
		if code != 0 && code != 3 {
			t.Fatalf("%s: exit %d: %s", c.name, code, errOut)
		}
		for _, w := range []int{80, 120} {
			t.Run(c.name+"_"+strconv.Itoa(w), func(t *testing.T) {
				got, _, gotCode := runCmd(t, append(c.args, "--width", strconv.Itoa(w))...)
				if gotCode != code {
					t.Fatalf("exit %d at --width %d, %d with --wide", gotCode, w, code)
				}
				checkFits(t, got, w)
				for _, f := range figure.FindAllString(wide, -1) {
					if !strings.Contains(got, f) {
						t.Errorf("figure %q of the --wide output is not in the %d-column one", f, w)
					}
				}
				path := filepath.Join("cmd/qinsaudit/testdata/width", c.name+"_"+strconv.Itoa(w)+".txt")
				if *update {
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (go test ./cmd/qinsaudit -run TestWidth -update writes it)", err)
				}
				if got != string(want) {
					t.Errorf("%s differs from the golden:\n--- got\n%s--- want\n%s", path, got, want)
				}
			})
		}
	}
}

// checkFits fails unless every line of out fits width display columns,
// or overflows with one word alone on its line.
func checkFits(t *testing.T, out string, width int) {
	t.Helper()
	for i, l := range strings.Split(out, "\n") {
		if twwidth.Width(l) <= width {
			continue
		}
		if f := strings.Fields(l); len(f) == 1 {
			continue // a name or path longer than the line: shown whole
		}
		t.Errorf("line %d is %d columns wide, more than %d:\n%s", i+1, twwidth.Width(l), width, l)
	}
}

// Without --width and not on a terminal, tables fit 100 columns; --wide
// lifts the limit.
func TestWidthDefault(t *testing.T) {
	t.Chdir("../..")
	args := []string{"check", "fixtures/torch/qins_rational_f32.pt", "--config", "fixtures/ci/qinsaudit.yaml"}
	out, _, _ := runCmd(t, args...)
	checkFits(t, out, defaultWidth)
	wide, _, _ := runCmd(t, append(args, "--wide")...)
	longest := 0
	for _, l := range strings.Split(wide, "\n") {
		longest = max(longest, len(l))
	}
	if longest <= defaultWidth {
		t.Fatalf("--wide output is at most %d columns: the test shows nothing", longest)
	}
	if _, e, code := runCmd(t, append(args, "--width", "20")...); code != 2 || !strings.Contains(e, "--width must be at least") {
		t.Fatalf("--width 20: exit %d, %q", code, e)
	}
	if _, e, code := runCmd(t, append(args, "--width", "90", "--wide")...); code != 2 || !strings.Contains(e, "--wide") {
		t.Fatalf("--width with --wide: exit %d, %q", code, e)
	}
}

func TestTextWidth(t *testing.T) {
	var b strings.Builder
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, c := range []struct {
		w     io.Writer
		wide  bool
		width int
		want  int
	}{
		{&b, false, 0, defaultWidth},
		{f, false, 0, defaultWidth}, // a file, not a terminal
		{&b, true, 0, 0},
		{&b, false, 72, 72},
	} {
		if got := textWidth(c.w, c.wide, c.width); got != c.want {
			t.Errorf("textWidth(%T, %v, %d) = %d, want %d", c.w, c.wide, c.width, got, c.want)
		}
	}
}
