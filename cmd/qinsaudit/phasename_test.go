package main

import (
	"regexp"
	"strings"
	"testing"
)

// phaseRE is the pattern phaseName matches by hand.
var phaseRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func TestPhaseNameAsRegexp(t *testing.T) {
	cases := []string{
		"", "a", "Z", "0", "load", "after-load", "step_1.2", ".hidden", "-x", "_x",
		"a b", "a\tb", "a/b", "a\n", "é", "aé", strings.Repeat("a", 64), strings.Repeat("a", 65),
		"a" + strings.Repeat(".", 63), "a" + strings.Repeat("-", 64), "a:b", "a@b", "a[b", "a`b", "a{b",
		"a\x00", "A-Z.a_z-09",
	}
	for _, s := range cases {
		if got, want := phaseName(s), phaseRE.MatchString(s); got != want {
			t.Errorf("phaseName(%q) = %v, the regexp says %v", s, got, want)
		}
	}
	if !phaseName("after-load") || phaseName("-x") {
		t.Fatal("phaseName accepts a bad name or refuses a good one")
	}
}

func FuzzPhaseName(f *testing.F) {
	f.Add("after-load")
	f.Add("-x")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := phaseName(s), phaseRE.MatchString(s); got != want {
			t.Fatalf("phaseName(%q) = %v, the regexp says %v", s, got, want)
		}
	})
}
