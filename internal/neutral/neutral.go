// Package neutral makes text from an input safe to print: tensor names,
// paths, claim names and quoted values come from strangers' files, and a
// terminal, a Markdown page or a spreadsheet must show them, not obey them.
//
// One function per concern, used by every renderer and by the command
// line's error messages:
//
//   - Escape shows control characters (C0, DEL, C1, ESC, CR, LF, TAB),
//     Unicode bidirectional overrides and isolates, line and paragraph
//     separators, and invalid UTF-8 as Go-style escapes (\x1b, \u202e), so
//     a name can neither move the cursor, forge a line, nor reorder what
//     is displayed;
//   - Clip shortens text to a number of bytes, saying how much it left out;
//   - Cell is Escape then Clip, for a table cell: a 100 KB name must not
//     widen every row of a padded table;
//   - Markdown escapes what a Markdown table cell could take for syntax;
//   - CSV neutralises a cell a spreadsheet would take for a formula.
//
// JSON output is not neutralised: encoding/json escapes control characters
// itself and JSON keeps every name whole.
package neutral

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// CellBytes is the longest cell, in bytes, a table shows; longer text is
// clipped (the JSON report has it whole).
const CellBytes = 512

// MessageBytes is the longest error message the command line prints.
const MessageBytes = 4096

// Escape returns s with every character that could control a terminal or
// reorder displayed text replaced by a visible escape. Text without such
// characters comes back unchanged (and unallocated).
func Escape(s string) string {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if unsafeRune(r, n) {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && unsafeRune(r, n):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r, n):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafeRune reports whether r (n bytes of UTF-8) must not be printed as
// it is: C0 controls, DEL, C1 controls, the bidirectional embeddings,
// overrides, isolates and marks, the line and paragraph separators, and
// invalid UTF-8.
func unsafeRune(r rune, n int) bool {
	switch {
	case r == utf8.RuneError && n == 1:
		return true
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x2028, r == 0x2029:
		return true
	}
	return false
}

// Clip returns s cut to at most n bytes on a character boundary, followed
// by "…(+K bytes)" when it was longer.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(+%d bytes)", s[:cut], len(s)-cut)
}

// Cell is s as a table cell: escaped, then clipped to CellBytes.
func Cell(s string) string { return Clip(Escape(s), CellBytes) }

// Message is an error message as the command line prints it: escaped and
// clipped to MessageBytes, so a hostile name can neither forge lines on
// stderr nor make one error megabytes long.
func Message(s string) string { return Clip(Escape(s), MessageBytes) }

// markdownSpecial are the characters a GitHub Markdown table cell could
// take for syntax that breaks the table or injects content: the cell
// separator, the escape itself, code spans, HTML tags and autolinks,
// entities. A link or an image needs "](" (no reference definitions are
// ever written), so a '(' right after ']' is escaped too; a lone bracket,
// as in a shape [64,64], stays as it is. Emphasis (*, _, ~) only changes
// how a name looks, and is left alone: an underscore is in most names.
const markdownSpecial = "\\`|<>&"

// Markdown returns an escaped and clipped cell (see Cell) with every
// character of markdownSpecial, and a '(' after ']', backslash-escaped, so
// the cell shows its text: it cannot add a column or a row, open a code
// span, a link, an image or an HTML tag. Newlines are already escaped by
// Cell.
func Markdown(s string) string {
	s = Cell(s)
	if !strings.ContainsAny(s, markdownSpecial) && !strings.Contains(s, "](") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(markdownSpecial, c) >= 0 || c == '(' && i > 0 && s[i-1] == ']' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// CSV returns s escaped (not clipped: CSV is for machines, and a row must
// keep the whole name) with a leading character a spreadsheet takes for a
// formula (=, +, -, @) made inert by a leading apostrophe, as OWASP
// recommends; a tab or CR some spreadsheets skip first is escaped already. Quoting is left to
// encoding/csv. Numbers the renderers format themselves (-5, +12) are
// written without this function.
func CSV(s string) string {
	s = Escape(s)
	if s != "" && strings.IndexByte("=+-@", s[0]) >= 0 {
		return "'" + s
	}
	return s
}
