package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runLimited runs the command line, failing the test if it does not return
// within a few seconds (a FIFO once hung every reader forever).
func runLimited(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	type result struct {
		o, e string
		c    int
	}
	done := make(chan result, 1)
	go func() {
		o, e, c := runCmd(t, args...)
		done <- result{o, e, c}
	}()
	select {
	case r := <-done:
		return r.o, r.e, r.c
	case <-time.After(20 * time.Second):
		t.Fatalf("%v did not return", args)
	}
	return "", "", 0
}

// TestSideFilesNotRegular: every side file is opened only if it is a
// regular file: a FIFO or a device is refused at once, exit 1, naming it.
func TestSideFilesNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	fifoYAML := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifoYAML, 0o600); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(fixtures, "safetensors/small_f32.safetensors")
	toy := filepath.Join(fixtures, "torch/toy_qins_log.pt")
	heap := filepath.Join(fixtures, "heap/tcmalloc-cache-after-load.heap.gz")
	saved := filepath.Join(dir, "saved.json")
	out, _, code := runCmd(t, "audit", "--format", "json", small)
	if code != 0 || os.WriteFile(saved, []byte(out), 0o600) != nil {
		t.Fatal("saving a report")
	}
	for _, special := range []string{fifo, "/dev/zero"} {
		for _, args := range [][]string{
			{"check", small, "--against", special},
			{"audit", small, "--rules", special},
			{"crosscheck", toy, "--heap", heap, "--claims", special},
			{"crosscheck", toy, "--heap", special},
			{"crosscheck", toy, "--heap", heap, "--base", special},
			{"check", toy, "--heap", special},
			{"diff", saved, special},
			{"diff", special, saved},
		} {
			_, errOut, code := runLimited(t, args...)
			if code != exitBadInput || !strings.Contains(errOut, "not a regular file") || !strings.Contains(errOut, special) {
				t.Errorf("%v: exit %d, stderr %q; want exit 1 naming the file, not a regular file", args, code, errOut)
			}
		}
	}
	_, errOut, code := runLimited(t, "check", small, "--config", fifoYAML)
	if code != exitBadInput || !strings.Contains(errOut, "named pipe") {
		t.Errorf("check --config FIFO: exit %d, %q", code, errOut)
	}
}

// TestWriteFailureExit1: a full disk is not a usage error.
func TestWriteFailureExit1(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer full.Close()
	small := filepath.Join(fixtures, "safetensors/small_f32.safetensors")
	for _, format := range []string{"text", "json", "csv", "markdown"} {
		var e strings.Builder
		code := run([]string{"audit", "--format", format, small}, full, &e)
		if code != exitBadInput || !strings.Contains(e.String(), "writing the output") || strings.Contains(e.String(), "for usage") {
			t.Errorf("audit --format %s > /dev/full: exit %d, %q; want exit 1", format, code, e.String())
		}
	}
	var e strings.Builder
	if code := run([]string{"diff", small, small}, full, &e); code != exitBadInput {
		t.Errorf("diff > /dev/full: exit %d, %q", code, e.String())
	}
}

// TestBadNumbersAreUsageErrors: NaN, infinite and negative limits in flags
// are refused (a NaN limit once passed every gate).
func TestBadNumbersAreUsageErrors(t *testing.T) {
	small := filepath.Join(fixtures, "safetensors/small_f32.safetensors")
	toy := filepath.Join(fixtures, "torch/toy_qins_log.pt")
	heap := filepath.Join(fixtures, "heap/tcmalloc-cache-after-load.heap.gz")
	for _, args := range [][]string{
		{"check", small, "--min-ratio", "total=NaN"},
		{"check", small, "--min-ratio", "total=+Inf"},
		{"check", small, "--min-ratio", "total=-2x"},
		{"check", small, "--max-bits-per-weight", "total=NaN"},
		{"check", small, "--max-bits-per-weight", "total=-1"},
		{"check", small, "--against", small, "--max-growth", "NaN%"},
		{"check", small, "--against", small, "--max-growth", "-1%"},
		{"check", toy, "--heap", heap, "--max-heap-over-stored", "NaN"},
		{"check", toy, "--heap", heap, "--max-heap-over-stored", "-1"},
		{"crosscheck", toy, "--heap", heap, "--max-heap-over-stored", "NaN"},
		{"crosscheck", toy, "--heap", heap, "--max-heap-over-stored", "Inf"},
		{"decode", toy, "--max-heap-over-stored", "NaN"},
	} {
		_, errOut, code := runCmd(t, args...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, %q; want 2", args, code, errOut)
		}
	}
}

// TestClaimNameEscapedOnStderr: a claim name reaches stderr escaped: it
// cannot clear the screen or forge a line.
func TestClaimNameEscapedOnStderr(t *testing.T) {
	toy := filepath.Join(fixtures, "torch/toy_qins_log.pt")
	heap := filepath.Join(fixtures, "heap/tcmalloc-cache-after-load.heap.gz")
	_, errOut, code := runCmd(t, "crosscheck", toy, "--heap", heap, "--claim", "we\x1b[2J\rights\nqinsaudit: all good=1B")
	if code != exitGate || strings.ContainsAny(errOut[:len(errOut)-1], "\x1b\r\n") || !strings.Contains(errOut, `we\x1b[2J\rights\nqinsaudit: all good`) {
		t.Errorf("exit %d, stderr %q; want exit 3 and the name escaped on one line", code, errOut)
	}
}

// TestDecodeOutExclusive: decode -o never writes through a planted symlink
// nor over its own input, and says why.
func TestDecodeOutExclusive(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("victim"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../victim", filepath.Join(out, "01-after-load.pb.gz")); err != nil {
		t.Fatal(err)
	}
	toy := filepath.Join(fixtures, "torch/toy_qins_log.pt")
	_, errOut, code := runCmd(t, "decode", "-o", out, toy)
	if b, _ := os.ReadFile(victim); string(b) != "victim" || code != exitBadInput || !strings.Contains(errOut, "exists: not writing over it") {
		t.Errorf("planted symlink: exit %d, %q; victim now %q", code, errOut, b)
	}

	// The model is itself where the first profile would go.
	in := filepath.Join(t.TempDir(), "01-after-load.pb.gz")
	data, err := os.ReadFile(toy)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runCmd(t, "decode", "-o", filepath.Dir(in), in)
	if b, _ := os.ReadFile(in); string(b) != string(data) || code != exitBadInput || !strings.Contains(errOut, "is an input of this run") {
		t.Errorf("-o over the input: exit %d, %q; input changed: %v", code, errOut, string(b) != string(data))
	}
}
