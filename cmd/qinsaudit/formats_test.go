package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestFormats: every command takes the formats outputFormats gives it, and
// only those: its help lists them, each writes something, and diff refuses
// pprof, which has no diff renderer.
func TestFormats(t *testing.T) {
	toy := filepath.Join(fixtures, "torch/toy_qins_log.pt")
	for _, diff := range []bool{false, true} {
		cmd, args := "audit", []string{toy}
		if diff {
			cmd, args = "diff", []string{toy, toy}
		}
		var help, e bytes.Buffer
		run([]string{cmd, "--help"}, &help, &e)
		for _, f := range outputFormats {
			takes := diff && f.diff != nil || !diff && f.report != nil
			var out, errb bytes.Buffer
			code := run(append([]string{cmd, "--format", f.name}, args...), &out, &errb)
			switch {
			case takes && (code != exitOK || out.Len() == 0):
				t.Errorf("%s --format %s: exit %d, %d bytes, stderr %q", cmd, f.name, code, out.Len(), errb.String())
			case !takes && code != exitUsage:
				t.Errorf("%s --format %s: exit %d, want a usage error", cmd, f.name, code)
			}
		}
		want := "(" + strings.Join(formatFlag(diff).choices(), "|") + ")"
		if !strings.Contains(help.String(), want) {
			t.Errorf("%s --help does not list the formats %s:\n%s", cmd, want, help.String())
		}
	}
	if got := strings.Join(formatFlag(true).choices(), ","); got != "text,json,markdown,csv,html" {
		t.Errorf("diff formats %s", got)
	}
}
