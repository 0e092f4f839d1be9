package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/report"
)

// The tests here run real PyTorch (Debian's /usr/bin/python3 with
// python3-torch) under real tcmalloc and jemalloc. They skip only when
// those are absent and CI is unset: .ci/run installs them.

const torchPython = "/usr/bin/python3"

var torchOnce struct {
	sync.Once
	ok bool
}

func needTorch(t *testing.T, allocator string) string {
	t.Helper()
	torchOnce.Do(func() {
		torchOnce.ok = exec.Command(torchPython, "-c", "import torch").Run() == nil
	})
	_, lib, err := findAllocator(allocator, "")
	switch {
	case torchOnce.ok && err == nil:
		return lib
	case os.Getenv("CI") != "":
		t.Fatalf("CI: %s with torch and %s are needed (.ci/run installs them): torch %v, %v", torchPython, allocator, torchOnce.ok, err)
	}
	t.Skipf("needs %s with torch and %s: torch %v, %v", torchPython, allocator, torchOnce.ok, err)
	return ""
}

// profileScript is a PyTorch process of the QINS kind: it builds the model
// from the checkpoint's shapes (QINS weights live in registered buffers),
// loads the weights in, and then, by its mode, keeps the loaded state dict
// alive (keep-sd), decodes every encoded linear to float32 and keeps the
// copies (cache), or neither (load).
const profileScript = `
import sys, torch
import qinsaudit_marks as m

path, mode = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)

class Holder(torch.nn.Module):
    pass

sd = torch.load(path)
model = Holder()
for i, (k, v) in enumerate(sd.items()):
    model.register_buffer("t%d" % i, torch.empty_like(v))
for (k, v), b in zip(sd.items(), model.buffers()):
    b.copy_(v)
names = list(sd)
if mode != "keep-sd":
    del sd
m.mark("after-load")
if mode == "cache":
    bufs = dict(zip(names, model.buffers()))
    model.decoded = []
    for k in names:
        if k.endswith(".stored"):
            p = k[:-len(".stored")]
            s, sign = bufs[k], bufs[p + ".sign"]
            w = sign.to(torch.float32) * torch.exp(bufs[p + ".log_min"] + (255.0 - s.to(torch.float32)) / 254.0 * (bufs[p + ".log_max"] - bufs[p + ".log_min"]))
            model.decoded.append(w)
    m.mark("after-decode")
print("weights=0.41MB")
`

// genScript writes a QINS-log checkpoint of the toy's shape scaled to
// about the given stored bytes: an fp32 embedding of a tenth of them and
// linears of uint8 stored + int8 sign.
const genScript = `
import sys, torch
path, target = sys.argv[1], int(sys.argv[2])
d = 64
while 8 * d * d * 2 * 1.25 < target:
    d *= 2
n_lin = max(1, int(target * 0.9 // (2 * d * d)))
sd = {"embed.weight": torch.randn(max(1, int(target * 0.1 // (4 * d))), d)}
for i in range(n_lin):
    p = "blocks.%d.attn.q%d." % (i // 4, i % 4)
    sd[p + "stored"] = torch.randint(0, 255, (d, d), dtype=torch.uint8)
    sd[p + "sign"] = torch.randint(-1, 2, (d, d), dtype=torch.int8)
    sd[p + "log_min"] = torch.tensor(-3.0)
    sd[p + "log_max"] = torch.tensor(0.0)
torch.save(sd, path)
`

func writeScript(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// profileJSON runs qinsaudit profile with a JSON report.
func profileJSON(t *testing.T, args ...string) (*report.Report, int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"profile", "--format", "json"}, args...), &out, &errb)
	if code != exitOK && code != exitGate {
		t.Fatalf("profile %v: exit %d\n%s", args, code, errb.String())
	}
	var rep report.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("profile %v: %v\n%s\n%s", args, err, out.String(), errb.String())
	}
	return &rep, code, errb.String()
}

func phaseVerdict(rep *report.Report, phase string) report.Comparison {
	for _, c := range rep.Comparisons {
		if strings.HasPrefix(c.Subject, phase+": heap in use") {
			return c
		}
	}
	return report.Comparison{}
}

// TestProfileToy: the seed's toy under both allocators: the 0.41 MB claim
// disagrees by exactly the stored bytes less the claim, the cached decode
// holds decoded copies, the kept state dict a second copy.
func TestProfileToy(t *testing.T) {
	script := writeScript(t, "toy.py", profileScript)
	toy := filepath.Join(fixtures, "torch/toy_qins_log.pt")
	for _, alloc := range []string{"tcmalloc", "jemalloc"} {
		t.Run(alloc, func(t *testing.T) {
			needTorch(t, alloc)
			for _, c := range []struct {
				mode, phase string
				verdict     accounting.Verdict
			}{
				{"load", "after-load", accounting.Consistent},
				{"cache", "after-decode", accounting.HoldsDecodedCopies},
				{"keep-sd", "after-load", accounting.HoldsSecondCopy},
			} {
				rep, code, stderr := profileJSON(t, "--allocator", alloc, "--model", toy, "--claim", "weights=0.41MB", "-o", t.TempDir(),
					"--", torchPython, script, toy, c.mode)
				if code != exitGate {
					t.Errorf("%s: exit %d, want 3 (the claim disagrees)", c.mode, code)
				}
				if !strings.Contains(stderr, "weights=0.41MB") {
					t.Errorf("%s: the command's output was not passed through: %q", c.mode, stderr)
				}
				h := phaseVerdict(rep, c.phase)
				if h.Verdict != c.verdict {
					t.Errorf("%s: %s: %s, want %s: %s", c.mode, c.phase, h.Verdict, c.verdict, h.Message)
				}
				var claim *report.Comparison
				for i, x := range rep.Comparisons {
					if x.Subject == "after-load: claim weights=0.41MB" {
						claim = &rep.Comparisons[i]
					}
				}
				want := fmt.Sprintf("+%s", accounting.ByteCount(9_838_736-410_000)) // the exact stored bytes less the claim
				if claim == nil || claim.Verdict != accounting.ClaimDisagrees || !strings.Contains(claim.Message, want) {
					t.Errorf("%s: claim %+v, want claim-disagrees by %s", c.mode, claim, want)
				}
				if len(rep.Phases) < 3 || rep.Phases[0].Phase != "start" || rep.Phases[len(rep.Phases)-1].Phase != "exit" {
					t.Errorf("%s: phases %+v", c.mode, rep.Phases)
				}
			}
		})
	}
}

// TestProfileSizes: exact profiles of generated models from 100 KiB to
// 100 MiB give the right verdict, after load and with decoded copies.
func TestProfileSizes(t *testing.T) {
	needTorch(t, "jemalloc")
	gen := writeScript(t, "gen.py", genScript)
	script := writeScript(t, "run.py", profileScript)
	dir := t.TempDir()
	// Both allocators at the smallest and the largest size.
	runs := []struct {
		size   int64
		allocs []string
	}{{100 << 10, []string{"jemalloc", "tcmalloc"}}, {3 << 20, []string{"tcmalloc"}}, {100 << 20, []string{"jemalloc", "tcmalloc"}}}
	if testing.Short() {
		runs = runs[:2]
	}
	for _, r := range runs {
		model := filepath.Join(dir, fmt.Sprintf("m%d.pt", r.size))
		if out, err := exec.Command(torchPython, gen, model, fmt.Sprint(r.size)).CombinedOutput(); err != nil {
			t.Fatalf("gen %d: %v\n%s", r.size, err, out)
		}
		for _, alloc := range r.allocs {
			needTorch(t, alloc)
			rep, _, _ := profileJSON(t, "--allocator", alloc, "--model", model, "-o", t.TempDir(), "--", torchPython, script, model, "cache")
			if h := phaseVerdict(rep, "after-load"); h.Verdict != accounting.Consistent {
				t.Errorf("%d B, %s: after-load %s: %s", r.size, alloc, h.Verdict, h.Message)
			}
			if h := phaseVerdict(rep, "after-decode"); h.Verdict != accounting.HoldsDecodedCopies {
				t.Errorf("%d B, %s: after-decode %s: %s", r.size, alloc, h.Verdict, h.Message)
			}
		}
	}
}

// TestProfileSampled: sampled jemalloc (one sample per 512 KiB) on a model
// of a few MiB that keeps decoded copies: over 10 runs every verdict is
// inconclusive or right, never wrong, and so is the claim's.
func TestProfileSampled(t *testing.T) {
	needTorch(t, "jemalloc")
	gen := writeScript(t, "gen.py", genScript)
	script := writeScript(t, "run.py", profileScript)
	model := filepath.Join(t.TempDir(), "m.pt")
	if out, err := exec.Command(torchPython, gen, model, fmt.Sprint(int64(2700<<10))).CombinedOutput(); err != nil {
		t.Fatalf("gen: %v\n%s", err, out)
	}
	inconclusive, advice := 0, ""
	for run := range 10 {
		rep, _, _ := profileJSON(t, "--allocator", "jemalloc", "--sample-bytes", "524288", "--model", model, "--claim", "weights=2.06MB",
			"-o", t.TempDir(), "--", torchPython, script, model, "cache")
		h := phaseVerdict(rep, "after-decode")
		switch h.Verdict {
		case accounting.HoldsDecodedCopies:
		case accounting.Inconclusive:
			inconclusive++
			if m := sampleAdvice.FindStringSubmatch(h.Message); m != nil {
				advice = m[1]
			} else if !strings.Contains(h.Message, "only an exact profile") {
				t.Errorf("run %d: inconclusive without the rate that decides: %s", run, h.Message)
			}
		default:
			t.Errorf("run %d: after-decode %s: %s", run, h.Verdict, h.Message)
		}
		for _, c := range rep.Comparisons {
			if strings.Contains(c.Subject, "claim") && c.Verdict == accounting.Consistent {
				t.Errorf("run %d: the false claim was called consistent: %s: %s", run, c.Subject, c.Message)
			}
		}
	}
	t.Logf("%d of 10 sampled runs inconclusive; advice: --sample-bytes %s", inconclusive, advice)
	// The rate the message names decides it.
	if advice != "" {
		rep, _, _ := profileJSON(t, "--allocator", "jemalloc", "--sample-bytes", advice, "--model", model,
			"-o", t.TempDir(), "--", torchPython, script, model, "cache")
		if h := phaseVerdict(rep, "after-decode"); h.Verdict != accounting.HoldsDecodedCopies {
			t.Errorf("at the advised --sample-bytes %s: %s: %s", advice, h.Verdict, h.Message)
		}
	}
}

var sampleAdvice = regexp.MustCompile(`qinsaudit profile --sample-bytes (\d+)`)

// TestProfileUsage: bad flags are usage errors, before anything runs.
func TestProfileUsage(t *testing.T) {
	toy := filepath.Join(fixtures, "torch/toy_qins_log.pt")
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"profile", "--model", toy}, "give the command after --"},
		{[]string{"profile", "--model", toy, "python3", "x.py"}, "give the command after --"},
		{[]string{"profile", "--", "python3", "x.py"}, "--model PATH is required"},
		{[]string{"profile", "--model", toy, "--sample-bytes", "1000", "--", "true"}, "power of two"},
		{[]string{"profile", "--model", toy, "--allocator", "tcmalloc", "--sample-bytes", "4096", "--", "true"}, "needs jemalloc"},
		{[]string{"profile", "--model", toy, "--allocator", "glibc", "--", "true"}, "must be one of tcmalloc, jemalloc"},
		{[]string{"profile", "--model", toy, "--tolerance", "2", "--", "true"}, "--tolerance must be"},
	} {
		var out, errb bytes.Buffer
		if code := run(c.args, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), c.msg) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, errb.String(), c.msg)
		}
	}
}

// TestProfileNoProfile: a command that never imports torch nor marks
// writes no profile: bad input, or the command's own exit code when it
// failed. Needs only an allocator library to preload.
func TestProfileNoProfile(t *testing.T) {
	if _, _, err := findAllocator("", ""); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	toy := filepath.Join(fixtures, "torch/toy_qins_log.pt")
	var out, errb bytes.Buffer
	if code := run([]string{"profile", "--model", toy, "-o", t.TempDir(), "--", "sh", "-c", "echo hello"}, &out, &errb); code != exitBadInput ||
		!strings.Contains(errb.String(), "wrote no heap profile") || !strings.Contains(out.String(), "hello") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	errb.Reset()
	if code := run([]string{"profile", "--model", toy, "-o", t.TempDir(), "--", "sh", "-c", "exit 7"}, &out, &errb); code != 7 {
		t.Errorf("exit %d, want the command's 7: %s", code, errb.String())
	}
}

func TestFindAllocatorLib(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "libjemalloc.so.2")
	if err := os.WriteFile(lib, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if n, p, err := findAllocator("", lib); err != nil || n != "jemalloc" || p != lib {
		t.Errorf("--lib %s: %s %s %v", lib, n, p, err)
	}
	other := filepath.Join(dir, "libmine.so")
	if err := os.WriteFile(other, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := findAllocator("", other); err == nil || !strings.Contains(err.Error(), "--allocator") {
		t.Errorf("an unnamed --lib: %v", err)
	}
	if _, _, err := findAllocator("tcmalloc", filepath.Join(dir, "missing.so")); err == nil {
		t.Error("a missing --lib was accepted")
	}
	t.Setenv("LD_LIBRARY_PATH", dir)
	if n, p, err := findAllocator("jemalloc", ""); err != nil || n != "jemalloc" || p != lib {
		t.Errorf("LD_LIBRARY_PATH: %s %s %v", n, p, err)
	}
}

func TestReadMarks(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "marks.tsv")
	if err := os.WriteFile(p, []byte("1\tstart\t01-start.heap\tafter import torch\n2\tafter-load\t02-after-load.heap\t\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readMarks(p)
	if err != nil || len(got) != 2 || got[0].Note != "after import torch" || got[1].Name != "after-load" || got[1].Order != 2 {
		t.Errorf("%+v %v", got, err)
	}
	for _, bad := range []string{"x\tstart\t01-start.heap\n", "1\tstart\n", "1\tstart\t../etc/passwd\n", "1\t\x1b[31mred\t01-x.heap\n"} {
		if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readMarks(p); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if got, err := readMarks(filepath.Join(dir, "none.tsv")); err != nil || got != nil {
		t.Errorf("no marks: %v %v", got, err)
	}
}

// TestProfileChildren: marks are dumped by the profiled process only; a
// forked child's mark is a no-op (its dumps would clash). A phase without
// the model's weights is not-applicable, not a failure. Needs Python and an
// allocator, not torch.
func TestProfileChildren(t *testing.T) {
	if _, _, err := findAllocator("", ""); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	script := writeScript(t, "fork.py", `
import os
import qinsaudit_marks as m
m.mark("parent")
pid = os.fork()
if pid == 0:
    m.mark("child")
    os._exit(0)
os.waitpid(pid, 0)
`)
	dir := t.TempDir()
	rep, code, stderr := profileJSON(t, "--model", filepath.Join(fixtures, "torch/toy_qins_log.pt"), "-o", dir, "--", torchPython, script)
	if code != exitOK {
		t.Errorf("exit %d: %s", code, stderr)
	}
	var names []string
	for _, p := range rep.Phases {
		names = append(names, p.Phase)
	}
	if strings.Join(names, " ") != "start parent exit" {
		t.Errorf("phases %v, want start parent exit", names)
	}
	for _, c := range rep.Comparisons {
		if c.Verdict != accounting.NotApplicable {
			t.Errorf("%s: %s, want not-applicable (nothing loaded)", c.Subject, c.Verdict)
		}
	}
	if !hasKind(rep, "heap-profile-late") {
		t.Errorf("no phase held the weights, and no finding says so: %+v", rep.Findings)
	}
	var idx profileIndex
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil || json.Unmarshal(b, &idx) != nil || len(idx.Phases) != 3 || idx.SampleBytes != 1 || idx.Phases[0].Note != "first mark" {
		t.Errorf("index.json: %s %v", b, err)
	}
}
