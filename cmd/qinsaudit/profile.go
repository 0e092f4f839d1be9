package main

import (
	"bufio"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/accounting/heapcheck"
	"github.com/qinsaudit/qinsaudit/report"
)

// pyprofile holds the Python side of profile: qinsaudit_marks (mark() and
// the dumps) and the sitecustomize that boots it in the child interpreter.
//
//go:embed pyprofile/*.py
var pyprofile embed.FS

// profileFlags are the flags of the profile command.
type profileFlags struct {
	out       *outputFlags
	audit     *auditFlags
	allocator *enumFlag
	lib       string
	dir       string
	sample    int64
	start     *enumFlag
	models    []string
	compareFlags
}

func newProfileCmd(stdout, stderr io.Writer) *cobra.Command {
	c := &cobra.Command{
		Use:   "profile [flags] -- COMMAND [ARGS...]",
		Short: "Run a Python command under a real heap profiler and reconcile each phase with the accounting and your claims",
		Long: `profile runs COMMAND under tcmalloc's (gperftools) or jemalloc's heap profiler,
preloaded with the environment each needs, its output passed through and its
exit code kept. A Python command gets the module qinsaudit_marks on its path:
profiling starts once 'import torch' has completed (a "start" profile), each
'qinsaudit_marks.mark("after-load")' dumps a profile, and one more is dumped
at exit. The profiles, and index.json naming them in order, land in -o DIR.

Each phase is then measured against the start profile, attributed to
PyTorch's tensor allocator (libc10) apart from everything else, and held
against the accounting of --model and your --claim figures, as crosscheck
does: one table phase by phase, then the verdicts. A claim that disagrees,
a difference no known cause explains or a budget exceeded exits 3; a
command that fails exits with its own code. See docs/heap-recipe.md.`,
		Example: `  qinsaudit profile --model fixtures/torch/toy_qins_log.pt --claim weights=0.41MB -- python3 script.py`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 || c.ArgsLenAtDash() != 0 {
				return usageErrorf("profile: give the command after --: qinsaudit profile --model MODEL -- python3 script.py")
			}
			return nil
		},
	}
	f := &profileFlags{out: addOutputFlags(c), audit: addAuditFlags(c),
		allocator: newEnum("", "tcmalloc", "jemalloc"), start: newEnum("torch", "torch", "process")}
	fl := c.Flags()
	enumVar(c, f.allocator, "allocator", "heap profiler: tcmalloc (gperftools) or jemalloc (default: whichever is installed, jemalloc first)")
	fl.StringVar(&f.lib, "lib", "", "the allocator's shared `LIBRARY` (default: libjemalloc.so.2 or libtcmalloc.so.4 in the usual library directories)")
	fl.StringVarP(&f.dir, "out", "o", "", "write the profiles and index.json to `DIR` (default: a new temporary directory, named on stderr)")
	fl.Int64Var(&f.sample, "sample-bytes", 0, "sample one allocation per N bytes on average, a power of two (jemalloc only); 0 records every allocation")
	enumVar(c, f.start, "start", "when profiling starts: torch (once import torch has completed) or process (interpreter start)")
	fl.StringArrayVar(&f.models, "model", nil, "model file (or directory) `PATH` the command loads; repeatable")
	f.compareFlags.add(fl, "count only stacks with a frame whose function or library matches `REGEX` (default: libc10 in a PyTorch process)",
		"fail when a phase's heap in use exceeds this multiple of the stored bytes (0: no budget)",
		"fraction of an expected figure allowed besides the sampling error (default 0.01 attributed to libc10, else 0.03)")
	c.RunE = func(c *cobra.Command, args []string) error {
		claims, focus, err := f.validate()
		if err != nil {
			return err
		}
		return runProfile(stdout, stderr, args, f, claims, focus)
	}
	return c
}

func (f *profileFlags) validate() ([]accounting.Claim, *regexp.Regexp, error) {
	if err := f.out.validate(); err != nil {
		return nil, nil, err
	}
	switch {
	case len(f.models) == 0:
		return nil, nil, usageErrorf("profile: --model PATH is required (the model the command loads)")
	case f.sample < 0 || f.sample > 1<<40 || f.sample > 1 && bits.OnesCount64(uint64(f.sample)) != 1:
		return nil, nil, usageErrorf("profile: --sample-bytes must be 0 (every allocation) or a power of two up to 2^40, not %d", f.sample)
	case f.sample > 1 && f.allocator.value == "tcmalloc":
		return nil, nil, usageErrorf("profile: --sample-bytes needs jemalloc: gperftools' heap profiler records every allocation")
	}
	return f.compareFlags.parse("profile")
}

// libraryDirs are where profile looks for an allocator: the directories of
// LD_LIBRARY_PATH, then the usual ones.
func libraryDirs() []string {
	var dirs []string
	for _, d := range filepath.SplitList(os.Getenv("LD_LIBRARY_PATH")) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	triplet := map[string]string{"amd64": "x86_64", "arm64": "aarch64", "ppc64le": "powerpc64le", "s390x": "s390x", "riscv64": "riscv64"}[runtime.GOARCH]
	return append(dirs, "/usr/lib/"+triplet+"-linux-gnu", "/lib/"+triplet+"-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib", "/usr/local/lib")
}

// allocatorLibs are the library file names of each allocator.
var allocatorLibs = map[string]string{"jemalloc": "libjemalloc.so.2", "tcmalloc": "libtcmalloc.so.4"}

// findAllocator returns the allocator and its library: the flags' if set,
// else the first installed.
func findAllocator(name, lib string) (string, string, error) {
	if lib != "" {
		if _, err := os.Stat(lib); err != nil {
			return "", "", badInput(fmt.Errorf("--lib: %w", err))
		}
		if name == "" {
			switch base := filepath.Base(lib); {
			case strings.Contains(base, "jemalloc"):
				name = "jemalloc"
			case strings.Contains(base, "tcmalloc"):
				name = "tcmalloc"
			default:
				return "", "", usageErrorf("profile: --lib %s: say which allocator it is with --allocator", lib)
			}
		}
		return name, lib, nil
	}
	names := []string{"jemalloc", "tcmalloc"}
	if name != "" {
		names = []string{name}
	}
	for _, n := range names {
		for _, d := range libraryDirs() {
			p := filepath.Join(d, allocatorLibs[n])
			if _, err := os.Stat(p); err == nil {
				return n, p, nil
			}
		}
	}
	want := "libjemalloc.so.2 (Debian: libjemalloc2) or libtcmalloc.so.4 (libgoogle-perftools4)"
	if name != "" {
		want = allocatorLibs[name]
	}
	return "", "", badInput(fmt.Errorf("profile: no %s in %s: install it or give --lib PATH", want, strings.Join(libraryDirs(), ", ")))
}

// profileIndex is index.json: the phases profiled, in order.
type profileIndex struct {
	Allocator   string         `json:"allocator"`
	Library     string         `json:"library"`
	SampleBytes int64          `json:"sample_bytes"` // 1: every allocation recorded
	Command     []string       `json:"command"`
	ExitCode    int            `json:"exit_code"`
	Phases      []profilePhase `json:"phases"`
}

type profilePhase struct {
	Order int    `json:"order"`
	Name  string `json:"name"`
	File  string `json:"file"`
	Note  string `json:"note,omitempty"`
}

func runProfile(stdout, stderr io.Writer, command []string, f *profileFlags, claims []accounting.Claim, focus *regexp.Regexp) error {
	res, rem, err := auditResult(f.models, f.audit, false)
	if err != nil {
		return err
	}
	if claims, err = f.withClaimsFile(claims); err != nil {
		return err
	}
	name, lib, err := findAllocator(f.allocator.value, f.lib)
	if err != nil {
		return err
	}
	if f.sample > 1 && name != "jemalloc" {
		return usageErrorf("profile: --sample-bytes needs jemalloc: gperftools' heap profiler records every allocation")
	}
	dir := f.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "qinsaudit-profile-"); err != nil {
			return badInput(err)
		}
		fmt.Fprintf(stderr, "qinsaudit: profiles in %s\n", dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return badInput(err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return badInput(err)
	}
	if old, _ := filepath.Glob(filepath.Join(dir, "[0-9][0-9]-*.heap")); len(old) > 0 {
		return usageErrorf("profile: -o %s already holds profiles (%s): give an empty directory", dir, filepath.Base(old[0]))
	}
	_ = os.Remove(filepath.Join(dir, "marks.tsv"))
	py, err := os.MkdirTemp("", "qinsaudit-py-")
	if err != nil {
		return badInput(err)
	}
	defer os.RemoveAll(py)
	for _, n := range []string{"qinsaudit_marks.py", "sitecustomize.py"} {
		b, _ := pyprofile.ReadFile("pyprofile/" + n)
		if err := os.WriteFile(filepath.Join(py, n), b, 0o644); err != nil {
			return badInput(err)
		}
	}

	code, err := runProfiled(stdout, stderr, command, f, name, lib, dir, py)
	if err != nil {
		return err
	}
	rate := int64(1)
	if f.sample > 1 {
		rate = f.sample
	}
	idx := profileIndex{Allocator: name, Library: lib, SampleBytes: rate, Command: command, ExitCode: code}
	if idx.Phases, err = readMarks(filepath.Join(dir, "marks.tsv")); err != nil {
		return badInput(err)
	}
	b, _ := json.MarshalIndent(idx, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "index.json"), append(b, '\n'), 0o644); err != nil {
		return badInput(err)
	}
	if len(idx.Phases) == 0 {
		msg := fmt.Errorf("profile: %s wrote no heap profile: it never imported torch nor called qinsaudit_marks.mark() (a Python command is needed; --start process profiles from interpreter start)", command[0])
		if code != 0 {
			return &exitError{code, fmt.Errorf("%v; it exited with %d", msg, code)}
		}
		return badInput(msg)
	}

	rep, failed, err := profileReport(res, rem, dir, idx, claims, focus, f)
	if err != nil {
		return err
	}
	if err := f.out.write(stdout, rep); err != nil {
		return err
	}
	if code != 0 {
		return &exitError{code, fmt.Errorf("profile: %s exited with %d", command[0], code)}
	}
	if len(failed) > 0 {
		return gateFailed(fmt.Errorf("profile: %s", strings.Join(failed, "; ")))
	}
	return nil
}

// runProfiled runs the command under the allocator and returns its exit
// code. Its standard output goes to stdout for a text report, else to
// stderr, so that a JSON, Markdown or CSV report stays whole.
func runProfiled(stdout, stderr io.Writer, command []string, f *profileFlags, name, lib, dir, py string) (int, error) {
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	if f.out.format.value != "text" {
		cmd.Stdout = stderr
	}
	env := os.Environ()
	set := func(k, v string) {
		for i, e := range env {
			if strings.HasPrefix(e, k+"=") {
				env = append(env[:i:i], env[i+1:]...)
				break
			}
		}
		env = append(env, k+"="+v)
	}
	preload := lib
	if old := os.Getenv("LD_PRELOAD"); old != "" {
		preload += ":" + old
	}
	set("LD_PRELOAD", preload)
	pypath := py
	if old := os.Getenv("PYTHONPATH"); old != "" {
		pypath += string(os.PathListSeparator) + old
	}
	set("PYTHONPATH", pypath)
	set("QINSAUDIT_DIR", dir)
	set("QINSAUDIT_ALLOCATOR", name)
	set("QINSAUDIT_LIB", lib)
	set("QINSAUDIT_START", f.start.value)
	switch name {
	case "tcmalloc":
		// No automatic dumps: only the marks write profiles.
		set("HEAP_PROFILE_ALLOCATION_INTERVAL", "0")
		set("HEAP_PROFILE_INUSE_INTERVAL", "0")
	case "jemalloc":
		lg := 0
		if f.sample > 1 {
			lg = bits.TrailingZeros64(uint64(f.sample))
		}
		conf := fmt.Sprintf("prof:true,prof_active:false,lg_prof_sample:%d", lg)
		if old := os.Getenv("MALLOC_CONF"); old != "" {
			conf = old + "," + conf // later options win
		}
		set("MALLOC_CONF", conf)
	}
	cmd.Env = env
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if c := ee.ExitCode(); c >= 0 {
			return c, nil
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil // as a shell reports a signal
		}
		return 128, nil
	}
	return 0, badInput(fmt.Errorf("profile: %v", err))
}

// phaseName reports whether s is what qinsaudit_marks.mark accepts as a
// name: ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$, matched by hand rather than by
// a regexp compiled at package init for every command.
func phaseName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// readMarks reads the phases qinsaudit_marks recorded.
func readMarks(path string) ([]profilePhase, error) {
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var out []profilePhase
	s := bufio.NewScanner(fh)
	for line := 1; s.Scan(); line++ {
		parts := strings.SplitN(s.Text(), "\t", 4)
		if len(parts) < 3 {
			return nil, fmt.Errorf("%s:%d: malformed line", path, line)
		}
		n, err := strconv.Atoi(parts[0])
		if err != nil || !phaseName(parts[1]) || filepath.Base(parts[2]) != parts[2] {
			return nil, fmt.Errorf("%s:%d: malformed line", path, line)
		}
		p := profilePhase{Order: n, Name: parts[1], File: parts[2]}
		if len(parts) == 4 {
			p.Note = parts[3]
		}
		out = append(out, p)
	}
	return out, s.Err()
}

// profileReport measures every phase against the first (the start) and
// compares it with the accounting and the claims: the report, and what
// fails the command.
func profileReport(res *accounting.Result, rem *report.Remote, dir string, idx profileIndex, claims []accounting.Claim, focus *regexp.Regexp,
	f *profileFlags) (*report.Report, []string, error) {
	read := func(p profilePhase) (*heapcheck.Profile, error) {
		prof, err := heapcheck.Read(filepath.Join(dir, p.File))
		if err != nil {
			return nil, badInput(err)
		}
		return prof, nil
	}
	base, err := read(idx.Phases[0])
	if err != nil {
		return nil, nil, err
	}
	opts := f.options()
	opts.MayBeEmpty = true
	var (
		phases   []accounting.Phase
		cs       []accounting.Comparison
		findings []accounting.Finding
		failed   []string
		held     bool
	)
	for i, p := range idx.Phases {
		prof := base
		if i > 0 {
			if prof, err = read(p); err != nil {
				return nil, nil, err
			}
		}
		var b *heapcheck.Profile
		if i > 0 {
			b = base
		}
		hm, err := heapcheck.Measure(prof, b, focus)
		if err != nil {
			return nil, nil, badInput(err)
		}
		ph := accounting.Phase{Name: p.Name, InUseBytes: hm.InUseBytes + hm.OtherBytes, ByRole: map[string]int64{"tensors": hm.InUseBytes, "other": hm.OtherBytes}}
		if i == 0 {
			// The base: what every later phase is measured against.
			phases = append(phases, ph)
			continue
		}
		cc := accounting.Compare(res, hm, claims, opts)
		heap := cc.Comparisons[0]
		ph.ExpectedBytes, ph.Verdict = heap.ExpectedBytes, heap.Verdict
		phases = append(phases, ph)
		for j, c := range cc.Comparisons {
			if j > 0 && heap.Verdict == accounting.NotApplicable {
				continue // no weights yet: the claims are held at the phases that have them
			}
			c.Subject = p.Name + ": " + c.Subject
			cs = append(cs, c)
			if c.Verdict.Failing() {
				failed = append(failed, fmt.Sprintf("%s: %s", c.Subject, c.Verdict))
			}
		}
		held = held || heap.Verdict != accounting.NotApplicable
		for _, x := range cc.Findings {
			if x.Kind == accounting.HeapProfileNoInUse {
				continue // a phase before loading holds nothing: its verdict says so
			}
			if x.Kind == accounting.HeapOverBudget {
				x.Message = p.Name + ": " + x.Message
			}
			findings = append(findings, x)
		}
		if cc.OverBudget != "" {
			failed = append(failed, p.Name+": "+cc.OverBudget)
		}
	}
	if !held && len(idx.Phases) > 1 {
		findings = append(findings, accounting.Finding{Kind: accounting.HeapProfileLate, Severity: accounting.Warning,
			Message: "no phase holds the model's weights: the command may load them before profiling starts (--start process), map the file instead of allocating, or load another model than --model"})
	}
	rep := report.Build(res, report.Parts{Findings: dedupe(findings), Phases: phases, Comparisons: cs, Remote: rem})
	return rep, failed, nil
}

// dedupe drops repeated findings: every phase notices what the base's
// reading noticed.
func dedupe(fs []accounting.Finding) []accounting.Finding {
	seen := map[string]bool{}
	var out []accounting.Finding
	for _, f := range fs {
		k := string(f.Kind) + "\x00" + f.Message
		if !seen[k] {
			seen[k] = true
			out = append(out, f)
		}
	}
	return out
}
