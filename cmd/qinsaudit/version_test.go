package main

import (
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, _, code := runCmd(t, args...)
		if code != exitOK || !strings.HasPrefix(out, "qinsaudit ") || strings.Count(out, "\n") != 1 {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
	if _, e, code := runCmd(t, "version", "extra"); code != exitUsage {
		t.Errorf("version extra: exit %d, %q", code, e)
	}
}

// TestCompletion: cobra's completion scripts for every shell, and flag
// values completed from the same lists the flags accept.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		out, _, code := runCmd(t, "completion", sh)
		if code != exitOK || !strings.Contains(out, "qinsaudit") || len(out) < 1000 {
			t.Errorf("completion %s: exit %d, %d bytes", sh, code, len(out))
		}
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"audit", "--format", ""}, []string{"text", "json", "markdown", "csv", "pprof", "html"}},
		{[]string{"audit", "--sort", ""}, []string{"stored", "baseline", "name"}},
		{[]string{"diff", "a", "b", "--by", ""}, []string{"role", "role-matched", "dtype", "tensor"}},
		{[]string{"check", "m", "--baseline", ""}, []string{"fp32", "fp16", "bf16"}},
	} {
		out, _, code := runCmd(t, append([]string{"__complete"}, c.args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != exitOK || len(lines) < 2 || lines[len(lines)-1] != ":4" { // 4: no file completion
			t.Errorf("%v: exit %d\n%s", c.args, code, out)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(out, w+"\n") {
				t.Errorf("%v: no %q in\n%s", c.args, w, out)
			}
		}
		if strings.Contains(out, "\n\n") {
			t.Errorf("%v: an empty choice offered:\n%s", c.args, out)
		}
	}
	// Help lists each enum flag's choices.
	out, _, _ := runCmd(t, "audit", "--help")
	if !strings.Contains(out, "(text|json|markdown|csv|pprof|html)") || !strings.Contains(out, "(stored|baseline|theoretical|params|ratio|bits|name)") {
		t.Errorf("audit --help:\n%s", out)
	}
}
