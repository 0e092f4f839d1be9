package neutral

import (
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"blocks.0.attn.q.weight", "blocks.0.attn.q.weight"},
		{"a\x1b[31mb", `a\x1b[31mb`},
		{"a\r\nb\tc", `a\r\nb\tc`},
		{"del\x7f", `del\x7f`},
		{"c1\u0085\u009b", `c1\u0085\u009b`},
		{"bidi\u202e\u2066\u200f", `bidi\u202e\u2066\u200f`},
		{"sep\u2028", `sep\u2028`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"ünïcode ✓", "ünïcode ✓"},
	} {
		if got := Escape(c.in); got != c.want {
			t.Errorf("Escape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestClip(t *testing.T) {
	if got := Clip("abcdef", 10); got != "abcdef" {
		t.Errorf("Clip short = %q", got)
	}
	if got := Clip("abcdef", 3); got != "abc…(+3 bytes)" {
		t.Errorf("Clip = %q", got)
	}
	// Never inside a character.
	if got := Clip("aé", 2); got != "a…(+2 bytes)" {
		t.Errorf("Clip(aé, 2) = %q", got)
	}
	long := strings.Repeat("x", 1<<20)
	if n := len(Cell(long)); n > CellBytes+32 {
		t.Errorf("Cell of 1 MiB is %d bytes", n)
	}
	if n := len(Message(long)); n > MessageBytes+32 {
		t.Errorf("Message of 1 MiB is %d bytes", n)
	}
}

func TestMarkdown(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"encoded_linear", "encoded_linear"},
		{"[64,64]", "[64,64]"},
		{"a|b", `a\|b`},
		{"`code`", "\\`code\\`"},
		{"[x](http://y)", `[x]\(http://y)`},
		{"<img src=x>", `\<img src=x\>`},
		{"&lt;", `\&lt;`},
		{"a\nb", `a\\nb`},
		{`back\slash`, `back\\slash`},
	} {
		if got := Markdown(c.in); got != c.want {
			t.Errorf("Markdown(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCSV(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"layers.0.q", "layers.0.q"},
		{"=1+2", "'=1+2"},
		{"+1", "'+1"},
		{"-x", "'-x"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", `\tx`}, // escaped first: no longer a leading tab
		{"a\x1bb", `a\x1bb`},
		{"", ""},
	} {
		if got := CSV(c.in); got != c.want {
			t.Errorf("CSV(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
