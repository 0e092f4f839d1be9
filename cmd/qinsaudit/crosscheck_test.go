package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/report"
)

var (
	toyQINS = filepath.Join(fixtures, "torch/toy_qins_log.pt")
	heapDir = filepath.Join(fixtures, "heap")
)

func heapFixture(name string) string { return filepath.Join(heapDir, name+".heap.gz") }

// crosscheckJSON runs crosscheck with --format json and checks the exit code.
func crosscheckJSON(t *testing.T, wantCode int, args ...string) (*report.Report, string) {
	t.Helper()
	out, errOut, code := runCmd(t, append([]string{"crosscheck", "--format", "json", toyQINS}, args...)...)
	if code != wantCode {
		t.Fatalf("crosscheck %v: exit %d, want %d: %s", args, code, wantCode, errOut)
	}
	rep, err := report.ReadJSON(strings.NewReader(out))
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return rep, errOut
}

// TestCrosscheckAcceptance is the acceptance through the command
// line, on the real tcmalloc profiles of the PyTorch decode pass.
func TestCrosscheckAcceptance(t *testing.T) {
	// After loading: ~9.4 MiB of weights; both claims are flagged, exit 3.
	rep, errOut := crosscheckJSON(t, exitGate,
		"--heap", heapFixture("tcmalloc-cache-after-load"), "--heap-base", heapFixture("tcmalloc-cache-after-import"),
		"--claim", "weights=0.41MB", "--claims", filepath.Join(heapDir, "claims.json"))
	if len(rep.Comparisons) != 3 {
		t.Fatalf("%d comparisons: %+v", len(rep.Comparisons), rep.Comparisons)
	}
	heap := rep.Comparisons[0]
	// Attributed to libc10: the tensors the process holds, 144 B short of
	// the stored bytes (the truncated dump's smallest stacks).
	if heap.Verdict.String() != "consistent" || heap.MeasuredBytes != 9_838_592 || heap.ExpectedBytes != 9_838_736 {
		t.Errorf("heap: %+v", heap)
	}
	for _, c := range rep.Comparisons[1:] {
		if c.Verdict.String() != "claim-disagrees" || c.MeasuredBytes != 9_838_592 {
			t.Errorf("%s: %s (%s)", c.Subject, c.Verdict, c.Message)
		}
	}
	// The claim is off by the stored bytes less the claim, exactly.
	if !strings.Contains(rep.Comparisons[1].Message, "+9,428,736 B") {
		t.Errorf("0.41MB claim: %s", rep.Comparisons[1].Message)
	}
	if !strings.Contains(rep.Comparisons[2].Message, "model.parameters() skips registered buffers") {
		t.Errorf("parameters() claim not explained: %s", rep.Comparisons[2].Message)
	}
	if !strings.Contains(errOut, "claim weights=0.41MB: claim-disagrees") || !strings.Contains(errOut, "model.parameters())=5120000: claim-disagrees") {
		t.Errorf("stderr %q", errOut)
	}
	if !hasKind(rep, "heap-profile-truncated") {
		t.Errorf("the truncated gperftools dumps are not reported: %+v", rep.Findings)
	}

	// During the cached decode: ~19.3 MB, more than the fp32 model, named
	// as decoded copies; explained, so exit 0.
	rep, _ = crosscheckJSON(t, exitOK, "--heap", heapFixture("tcmalloc-import-cache-after-decode"))
	heap = rep.Comparisons[0]
	if heap.Verdict.String() != "runtime-holds-decoded-copies" || heap.MeasuredBytes != 19_282_488 || heap.ExpectedBytes != 9_838_736+9_437_184 ||
		!strings.Contains(heap.Message, "more than the float32 model itself, 13.88 MiB") {
		t.Errorf("decode: %+v", heap)
	}
	if fp32 := rep.Totals.BaselineBytes; heap.MeasuredBytes <= fp32 {
		t.Errorf("measured %d is not above the fp32 model's %d", heap.MeasuredBytes, fp32)
	}
}

func hasKind(rep *report.Report, kind string) bool {
	for _, f := range rep.Findings {
		if f.Kind == kind {
			return true
		}
	}
	return false
}

func TestCrosscheckVerdicts(t *testing.T) {
	for _, c := range []struct {
		name    string
		args    []string
		code    int
		verdict string
		finding string
	}{
		{"jemalloc stored", []string{"--heap", heapFixture("jemalloc-import-cache-after-load")}, exitOK, "consistent", ""},
		// One sample per 512 KiB cannot tell the toy's explanations apart.
		{"jemalloc sampled decode", []string{"--heap", heapFixture("jemalloc-sampled-cache-after-decode"), "--heap-base", heapFixture("jemalloc-sampled-cache-after-import")},
			exitOK, "inconclusive", ""},
		{"tcmalloc sampled", []string{"--heap", heapFixture("tcmalloc-sampled-cache-after-load"), "--heap-base", heapFixture("tcmalloc-sampled-cache-after-import")},
			exitOK, "inconclusive", ""},
		{"focus", []string{"--heap", heapFixture("tcmalloc-cache-after-decode"), "--heap-base", heapFixture("tcmalloc-cache-after-import"), "--focus", "libc10"},
			exitOK, "runtime-holds-decoded-copies", "heap-profile-truncated"},
		{"stream", []string{"--heap", heapFixture("tcmalloc-import-stream-after-decode")}, exitOK, "consistent", ""},
		{"late start", []string{"--heap", heapFixture("tcmalloc-late-stream-after-decode")}, exitGate, "unexplained-difference", "heap-profile-late"},
		// No base, but attributed: the interpreter does not count; the
		// truncated dump's 30 MiB unlisted leave it open.
		{"no base", []string{"--heap", heapFixture("tcmalloc-cache-after-load")}, exitOK, "inconclusive", "heap-profile-truncated"},
		{"over budget", []string{"--heap", heapFixture("tcmalloc-import-cache-after-decode"), "--max-heap-over-stored", "1.1"},
			exitGate, "runtime-holds-decoded-copies", "heap-over-budget"},
		{"within budget", []string{"--heap", heapFixture("tcmalloc-import-cache-after-decode"), "--max-heap-over-stored", "2.5"},
			exitOK, "runtime-holds-decoded-copies", ""},
		// Unattributed, 3% of 18 MiB cannot tell decoded copies from a
		// second copy; --focus on the decode pass can.
		{"go", []string{"--heap", filepath.Join(heapDir, "go-exact-after-decode.pb.gz"), "--heap-base", filepath.Join(heapDir, "go-exact-after-import.pb.gz")},
			exitOK, "inconclusive", ""},
		{"go, 1%", []string{"--heap", filepath.Join(heapDir, "go-exact-after-decode.pb.gz"), "--heap-base", filepath.Join(heapDir, "go-exact-after-import.pb.gz"), "--tolerance", "0.01"},
			exitOK, "runtime-holds-decoded-copies", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep, _ := crosscheckJSON(t, c.code, c.args...)
			if v := rep.Comparisons[0].Verdict; v.String() != c.verdict {
				t.Errorf("verdict %s, want %s: %s", v, c.verdict, rep.Comparisons[0].Message)
			}
			if c.finding != "" && !hasKind(rep, c.finding) {
				t.Errorf("no %s finding: %+v", c.finding, rep.Findings)
			}
		})
	}
}

func TestCrosscheckText(t *testing.T) {
	out, errOut, code := runCmd(t, "crosscheck", toyQINS, "--heap", heapFixture("jemalloc-import-cache-after-decode"), "--claim", "weights=0.41MiB", "--wide")
	if code != exitGate {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"measured vs expected", "measured (MiB)", "tolerance (KiB)", "runtime-holds-decoded-copies", "claim weights=0.41MiB", "±189.46"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	md, _, _ := runCmd(t, "crosscheck", "--format", "markdown", toyQINS, "--heap", heapFixture("jemalloc-import-cache-after-decode"))
	if !strings.Contains(md, "### measured vs expected") || !strings.Contains(md, "| heap in use vs stored + decoded float32 |") {
		t.Errorf("markdown:\n%s", md)
	}
}

func TestCrosscheckUsage(t *testing.T) {
	h := heapFixture("jemalloc-import-cache-after-load")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"crosscheck", "--heap", h}, "no model files given"},
		{[]string{"crosscheck", toyQINS}, "--heap PROFILE is required"},
		{[]string{"crosscheck", toyQINS, "--heap", h, "--claim", "0.41MB"}, "want NAME=SIZE"},
		{[]string{"crosscheck", toyQINS, "--heap", h, "--claim", "w=lots"}, "not a size"},
		{[]string{"crosscheck", toyQINS, "--heap", h, "--focus", "lib("}, "--focus"},
		{[]string{"crosscheck", toyQINS, "--heap", h, "--max-heap-over-stored", "-1"}, "--max-heap-over-stored must be"},
		{[]string{"crosscheck", toyQINS, "--heap", h, "--tolerance", "2"}, "--tolerance must be"},
		{[]string{"crosscheck", toyQINS, "--heap", h, "--format", "yaml"}, "--format"},
	} {
		out, errOut, code := runCmd(t, c.args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, code, out, errOut, c.want)
		}
	}
}

// TestCrosscheckBadInput: unreadable, truncated, corrupt or foreign
// profiles exit 1 with one line naming the file.
func TestCrosscheckBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gz, err := os.ReadFile(heapFixture("jemalloc-import-cache-after-load"))
	if err != nil {
		t.Fatal(err)
	}
	badClaims := write("claims.json", []byte(`{"w": "lots"}`))
	good := heapFixture("jemalloc-import-cache-after-load")
	for _, c := range []struct {
		args []string
		file string
		want string
	}{
		{[]string{"--heap", filepath.Join(dir, "missing.heap")}, "missing.heap", "no such file"},
		{[]string{"--heap", write("cut.heap.gz", gz[:len(gz)/2])}, "cut.heap.gz", "truncated"},
		{[]string{"--heap", write("cut.heap", []byte("heap_v2/1\n  t*: 1: 8 [0: 0]\n@ 0x10\n"))}, "cut.heap", "cut short"},
		{[]string{"--heap", write("notes.txt", []byte("not a profile\n"))}, "notes.txt", "unknown profile format"},
		{[]string{"--heap", filepath.Join(fixtures, "torch/toy_qins_log.pt")}, "toy_qins_log.pt", "unknown profile format"},
		{[]string{"--heap", good, "--heap-base", write("base.heap", []byte("heap profile: 1: 2 [ 3: 4] @ growthz\n"))}, "base.heap", "not a heap profile"},
		{[]string{"--heap", good, "--heap-base", heapFixture("tcmalloc-cache-after-import")}, "tcmalloc-cache-after-import", "take both the same way"},
		{[]string{"--heap", good, "--claims", badClaims}, "claims.json", "not a size"},
	} {
		out, errOut, code := runCmd(t, append([]string{"crosscheck", toyQINS}, c.args...)...)
		if code != exitBadInput || out != "" || !strings.Contains(errOut, c.file) || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 naming %s and %q", c.args, code, out, errOut, c.file, c.want)
		}
	}
}
