package main

import (
	"bytes"
	"testing"
)

// TestOneSubcommandTree checks that a command line naming a subcommand,
// for which run makes only that subcommand, behaves as with the whole
// command tree: the same output, errors and exit code.
func TestOneSubcommandTree(t *testing.T) {
	toy := "../../fixtures/torch/toy_qins_log.pt"
	cases := [][]string{
		{"audit", toy},
		{"audit", toy, "--format", "json"},
		{"audit", "--help"},
		{"audit", "--no-such-flag"},
		{"audit"},
		{"audit", "--version"},
		{"check", "--help"},
		{"diff", "--help"},
		{"diff", "one"},
		{"decode", "--help"},
		{"crosscheck", "--help"},
		{"profile", "--help"},
		{"version"},
		{"version", "extra"},
		{"version", "--help"},
	}
	whole := func(args []string) (string, string, int) {
		var out, errb bytes.Buffer
		root := newRoot(&out, &errb, "")
		root.SetArgs(args)
		code := exitCode(root.Execute(), &errb)
		return out.String(), errb.String(), code
	}
	for _, args := range cases {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		wout, werr, wcode := whole(args)
		if out.String() != wout || errb.String() != werr || code != wcode {
			t.Errorf("%q: one subcommand gives exit %d, stdout %q, stderr %q; the whole tree exit %d, stdout %q, stderr %q",
				args, code, out.String(), errb.String(), wcode, wout, werr)
		}
	}
	if out, _, code := whole(cases[0]); code != 0 || !bytes.Contains([]byte(out), []byte("encoded_linear")) {
		t.Errorf("audit of the toy: exit %d, output %q", code, out)
	}
	if n := len(newRoot(new(bytes.Buffer), new(bytes.Buffer), "audit").Commands()); n != 1 {
		t.Errorf("audit: %d subcommands made, want 1", n)
	}
}
