package report

import (
	"slices"
	"strings"

	"github.com/olekukonko/tablewriter/pkg/twwidth"
)

// Fitting a text table to a terminal's width. tablewriter can wrap cells,
// but only all columns alike and by its own widths; which columns give way
// is the product here: figures (right-aligned columns) are never broken,
// only their headers wrap at spaces; prose columns (a message, a where, a
// subject) wrap at spaces first; names (a tensor, a file) break after their
// separators only when prose and headers could not make room. A word longer
// than its column stays whole and is the only thing that overflows.

// flexibleHeaders are the prose columns that wrap first.
var flexibleHeaders = map[string]bool{"message": true, "where": true, "subject": true, "why": true}

// column kinds
const (
	kindFigure   = iota // right-aligned: cells whole, header wraps at spaces
	kindProse           // wraps at spaces
	kindName            // wraps after . / _ - when it must
	proseComfort = 32   // a prose column shrinks to this before headers wrap
	indent       = "  " // continuation lines of a wrapped cell
)

// fitting is how a text table fits a width: each column's width and kind,
// its natural (unwrapped) width, and the gap between columns.
type fitting struct {
	widths, natural, body, kinds []int
	gap                          int
	fits                         bool // within the width (else: words too long to break)
}

// plan fits the cells of header, rows and footer (neutralised text, one
// line each) to width display columns with gap columns between cells: the
// gap is 2 or, when even the narrowest fitting is too wide with 2, 1.
// width <= 0 keeps every column at its natural width.
func plan(header []string, rows [][]string, footer []string, right []bool, width int) fitting {
	n := len(header)
	kinds := make([]int, n)
	for i := range kinds {
		switch {
		case right[i]:
			kinds[i] = kindFigure
		case flexibleHeaders[header[i]]:
			kinds[i] = kindProse
		default:
			kinds[i] = kindName
		}
	}
	// natural: the widest cell, header included; body: the widest cell but
	// the header; least: the narrowest the column can be.
	natural, body, least := make([]int, n), make([]int, n), make([]int, n)
	cells := func(f func(i int, c string)) {
		for _, r := range rows {
			for i := 0; i < n && i < len(r); i++ {
				f(i, r[i])
			}
		}
		for i := 0; i < n && i < len(footer); i++ {
			f(i, footer[i])
		}
	}
	cells(func(i int, c string) {
		w := cellWidth(c)
		body[i] = max(body[i], w)
		switch kinds[i] {
		case kindFigure:
			least[i] = max(least[i], w)
		case kindProse:
			least[i] = max(least[i], longest(c, splitWords))
		default:
			least[i] = max(least[i], longest(c, splitName))
		}
	})
	for i, h := range header {
		natural[i] = max(body[i], cellWidth(h))
		least[i] = max(least[i], longest(h, splitHeader))
	}
	l := fitting{widths: append([]int(nil), natural...), natural: natural, body: body, kinds: kinds, gap: 2, fits: true}
	if width <= 0 {
		return l
	}
	sum := func() int {
		s := l.gap * (n - 1)
		for _, w := range l.widths {
			s += w
		}
		return s
	}
	// Shrink in stages until the table fits: prose to a comfortable
	// width, then headers wrap, then prose to its cells' width, then the
	// gap narrows, then names break, then prose to its longest word.
	stages := []struct {
		kind  int
		floor func(i int) int
	}{
		{kindProse, func(i int) int { return max(least[i], min(natural[i], proseComfort)) }},
		{kindFigure, func(i int) int { return max(least[i], body[i]) }},
		{kindName, func(i int) int { return max(least[i], body[i]) }},
		{kindProse, func(i int) int { return max(least[i], body[i]) }},
		{-1, nil}, // the gap narrows to 1 before a name breaks
		{kindName, func(i int) int { return least[i] }},
		{kindProse, func(i int) int { return least[i] }},
	}
	for _, st := range stages {
		if sum() <= width {
			return l
		}
		if st.kind < 0 {
			l.gap = 1
			continue
		}
		shrink(l.widths, kinds, st.kind, st.floor, sum()-width)
	}
	if sum() <= width {
		return l
	}
	l.fits = false
	// Too wide even at the least: the overflow is only unbreakable words;
	// the gap stays readable.
	l.gap = 2
	return l
}

// apply wraps the cells wider than their column.
func (l fitting) apply(header []string, rows [][]string, footer []string) {
	for i := range header {
		if l.widths[i] < l.natural[i] {
			header[i] = wrap(header[i], l.widths[i], splitHeader, "")
		}
	}
	wrapRow := func(r []string) {
		for i := 0; i < len(l.widths) && i < len(r); i++ {
			if l.kinds[i] == kindFigure || cellWidth(r[i]) <= l.widths[i] {
				continue
			}
			split := splitName
			if l.kinds[i] == kindProse {
				split = splitWords
			}
			r[i] = wrap(r[i], l.widths[i], split, indent)
		}
	}
	for _, r := range rows {
		wrapRow(r)
	}
	wrapRow(footer)
}

// A message column is kept in its rows when it is at least messageUnder
// wide and no message takes more than messageLines lines; otherwise the
// messages are moved under their rows, across the table.
const (
	messageUnder = 30
	messageLines = 2
)

// tallest is the most lines a cell of column i takes wrapped to width.
func tallest(rows [][]string, i, width int) int {
	n := 0
	for _, r := range rows {
		if i < len(r) {
			n = max(n, strings.Count(wrap(r[i], width, splitWords, indent), "\n")+1)
		}
	}
	return n
}

// underIndent starts each line of a message moved under its row;
// overIndent each line of a row whose name was moved over it.
const (
	underIndent = "    "
	overIndent  = "  "
)

// movedCells are the cells of a column moved out of the table to fit it:
// a row's name over the row, its message under it.
type movedCells struct {
	overHeader string
	over       []string // rows' and then the footer's, or nil
	under      []string // rows' messages, or nil
}

// fitMoving plans header, rows and footer for width; with move, a first
// (name) column that would have to break goes over its rows, and a message
// column narrower than messageUnder, taller than messageLines, or in a
// table that needs its gaps narrowed or does not fit, goes under them. It returns the table
// without the moved columns and the moved cells (nil if none moved).
func fitMoving(header []string, rows [][]string, footer []string, right []bool, width int, move bool) ([]string, [][]string, []string, []bool, *movedCells, fitting) {
	l := plan(header, rows, footer, right, width)
	if !move {
		return header, rows, footer, right, nil, l
	}
	var m movedCells
	drop := func(i int) {
		del := func(r []string) []string {
			if i >= len(r) {
				return r
			}
			return slices.Delete(slices.Clone(r), i, i+1)
		}
		header, footer, right = del(header), del(footer), slices.Delete(slices.Clone(right), i, i+1)
		for j, r := range rows {
			rows[j] = del(r)
		}
	}
	if len(header) > 2 && l.kinds[0] == kindName && l.widths[0] < l.body[0] {
		m.overHeader = header[0]
		for _, r := range rows {
			m.over = append(m.over, r[0])
		}
		if footer != nil {
			m.over = append(m.over, footer[0])
		}
		drop(0)
		l = plan(header, rows, footer, right, width-len(overIndent))
	}
	if mi := slices.Index(header, "message"); mi >= 0 && l.widths[mi] < l.natural[mi] && (l.widths[mi] < messageUnder || l.gap < 2 || !l.fits || tallest(rows, mi, l.widths[mi]) > messageLines) {
		for _, r := range rows {
			m.under = append(m.under, r[mi])
		}
		drop(mi)
		w := width
		if m.over != nil {
			w -= len(overIndent)
		}
		l = plan(header, rows, footer, right, w)
	}
	if m.over == nil && m.under == nil {
		return header, rows, footer, right, nil, l
	}
	return header, rows, footer, right, &m, l
}

// lines is the number of lines the cells of a row take.
func lines(row []string) int {
	n := 1
	for _, c := range row {
		n = max(n, strings.Count(c, "\n")+1)
	}
	return n
}

// splice puts the moved cells back around the lines of out (the rendered
// header, rows and footer): each name on a line over its row, each message
// wrapped to width under it. It reports false when out does not have the
// lines expected.
func (m *movedCells) splice(out string, header []string, rows [][]string, footer []string, width int) (string, bool) {
	ls := strings.SplitAfter(out, "\n")
	if len(ls) > 0 && ls[len(ls)-1] == "" {
		ls = ls[:len(ls)-1]
	}
	want := lines(header) + 1
	for _, r := range rows {
		want += lines(r)
	}
	if footer != nil {
		want += 1 + lines(footer)
	}
	if len(ls) != want {
		return out, false
	}
	var b strings.Builder
	if m.over != nil {
		b.WriteString(m.overHeader + "\n")
	}
	at := 0
	copyLines := func(n int) {
		for _, l := range ls[at : at+n] {
			if m.over != nil {
				b.WriteString(overIndent)
			}
			b.WriteString(l)
		}
		at += n
	}
	copyLines(lines(header) + 1)
	for i, r := range rows {
		if m.over != nil {
			b.WriteString(m.over[i] + "\n")
		}
		copyLines(lines(r))
		if m.under != nil && m.under[i] != "" {
			b.WriteString(underIndent)
			b.WriteString(strings.ReplaceAll(wrap(m.under[i], width-len(underIndent), splitWords, ""), "\n", "\n"+underIndent))
			b.WriteString("\n")
		}
	}
	if footer != nil {
		copyLines(1)
		if m.over != nil {
			b.WriteString(m.over[len(rows)] + "\n")
		}
	}
	copyLines(len(ls) - at)
	return b.String(), true
}

// shrink narrows the columns of kind, widest first, each to no less than
// floor(i), by up to excess columns in all.
func shrink(widths, kinds []int, kind int, floor func(int) int, excess int) {
	for excess > 0 {
		best := -1
		for i, w := range widths {
			if kinds[i] == kind && w > floor(i) && (best < 0 || w > widths[best]) {
				best = i
			}
		}
		if best < 0 {
			return
		}
		widths[best]--
		excess--
	}
}

// splitHeader cuts a header into words, and after a slash: bits/weight
// into bits/ weight.
func splitHeader(s string) []string {
	var out []string
	for _, w := range splitWords(s) {
		for {
			i := strings.IndexByte(w, '/')
			if i < 0 || i == len(w)-1 {
				break
			}
			out, w = append(out, w[:i+1]), w[i+1:]
		}
		out = append(out, w)
	}
	return out
}

// splitWords cuts prose into words, each keeping its trailing space.
func splitWords(s string) []string { return strings.SplitAfter(s, " ") }

// splitName cuts a name after each of its separators: blocks.0.attn.q
// into blocks. 0. attn. q; a path after each slash.
func splitName(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.', '/', '_', '-', ' ':
			out = append(out, s[start:i+1])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// longest is the display width of s's widest piece, trailing blanks
// aside.
func longest(s string, split func(string) []string) int {
	m := 0
	for _, p := range split(s) {
		m = max(m, cellWidth(strings.TrimRight(p, " ")))
	}
	return m
}

// wrap lays out s's pieces in lines of at most width display columns, the
// lines after the first starting with ind (when the width leaves room for
// it). A piece wider than a line gets a line of its own.
func wrap(s string, width int, split func(string) []string, ind string) string {
	if width-cellWidth(ind) < 4 {
		ind = ""
	}
	var b strings.Builder
	line, empty := 0, true // width of the current line; nothing on it yet
	for _, p := range split(s) {
		pw := cellWidth(strings.TrimRight(p, " "))
		if !empty && line+pw > width {
			// Close the line without its trailing blank.
			trimmed := strings.TrimRight(b.String(), " ")
			b.Reset()
			b.WriteString(trimmed)
			b.WriteString("\n")
			b.WriteString(ind)
			line, empty = cellWidth(ind), true
		}
		b.WriteString(p)
		line += cellWidth(p)
		empty = false
	}
	return strings.TrimRight(b.String(), " ")
}

// cellWidth is the display width of s as tablewriter measures it
// (twwidth.Width), which a line of printable ASCII, nearly every cell,
// has without tablewriter's per-rune lookups: one column a byte.
func cellWidth(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return twwidth.Width(s)
		}
	}
	return len(s)
}
