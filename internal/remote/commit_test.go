package remote

import (
	"regexp"
	"strings"
	"testing"
)

// commitRE is the pattern isCommit matches by hand.
var commitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

func TestIsCommitAsRegexp(t *testing.T) {
	sha := "0123456789abcdef0123456789abcdef01234567"
	cases := []string{
		"", sha, sha[:39], sha + "8", strings.ToUpper(sha), "main", "v1.0",
		sha[:39] + "g", "g" + sha[1:], sha[:20] + "\n" + sha[21:], sha + "\n",
		strings.Repeat("f", 40), strings.Repeat("0", 40), strings.Repeat("é", 20),
		sha[:39] + "/", sha[:39] + ":", sha[:39] + "`", sha[:39] + "@",
	}
	for _, s := range cases {
		if got, want := isCommit(s), commitRE.MatchString(s); got != want {
			t.Errorf("isCommit(%q) = %v, the regexp says %v", s, got, want)
		}
	}
	if !isCommit(sha) || isCommit("main") {
		t.Fatal("isCommit accepts a branch or refuses a commit")
	}
}

func FuzzIsCommit(f *testing.F) {
	f.Add("0123456789abcdef0123456789abcdef01234567")
	f.Add("main")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isCommit(s), commitRE.MatchString(s); got != want {
			t.Fatalf("isCommit(%q) = %v, the regexp says %v", s, got, want)
		}
	})
}
