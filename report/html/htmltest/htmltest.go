// Package htmltest checks a page written by report/html against the JSON
// embedded in it, for the tests of report/html and cmd/qinsaudit: the page
// parses, every figure that carries a data-j path shows that JSON value,
// and each size domain of the treemap draws every tensor of positive size
// exactly once, its groups summing their tensors.
package htmltest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// Page is a parsed page.
type Page struct {
	Root    *html.Node
	Report  any // the embedded report (or diff) JSON, numbers as json.Number
	Levels  any // a diff page's diffs by role, layer, module and tensor
	Figures int // elements with data-j that were checked
	// Domains maps each treemap size domain to the tensor indices it draws
	// (in the report's tensors, or a diff's tensor rows).
	Domains map[string]map[int]bool
	// Largest is, per domain, the data-j of its largest rectangle.
	Largest map[string]string
}

// Check parses page and checks it; it fails t on any disagreement.
func Check(t testing.TB, page []byte) *Page {
	t.Helper()
	root, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatalf("page does not parse: %v", err)
	}
	p := &Page{Root: root, Domains: map[string]map[int]bool{}, Largest: map[string]string{}}
	for _, s := range FindAll(root, "script") {
		var dst *any
		switch Attr(s, "id") {
		case "report-json":
			dst = &p.Report
		case "levels-json":
			dst = &p.Levels
		default:
			continue
		}
		dec := json.NewDecoder(strings.NewReader(Text(s)))
		dec.UseNumber()
		if err := dec.Decode(dst); err != nil {
			t.Fatalf("embedded %s: %v", Attr(s, "id"), err)
		}
	}
	if p.Report == nil {
		t.Fatal("page embeds no report-json")
	}
	walk(root, func(n *html.Node) {
		j := Attr(n, "data-j")
		if j == "" || n.Data == "g" || n.Data == "rect" {
			return
		}
		v, err := p.Lookup(j)
		if err != nil {
			t.Errorf("data-j %q: %v", j, err)
			return
		}
		if err := agrees(Text(n), v, j); err != nil {
			t.Errorf("data-j %q: %v", j, err)
		}
		p.Figures++
	})
	p.checkTreemap(t)
	return p
}

// Lookup resolves a data-j path: "report.roles.0.stored_bytes".
func (p *Page) Lookup(path string) (any, error) {
	parts := strings.Split(path, ".")
	var v any
	switch parts[0] {
	case "report":
		v = p.Report
	case "levels":
		v = p.Levels
	default:
		return nil, fmt.Errorf("unknown root %q", parts[0])
	}
	for _, k := range parts[1:] {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[k]; !ok {
				return nil, fmt.Errorf("no key %q", k)
			}
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil, fmt.Errorf("no index %q", k)
			}
			v = x[i]
		default:
			return nil, fmt.Errorf("%q is not a container", k)
		}
	}
	return v, nil
}

var (
	exactRe = regexp.MustCompile(`([+-]?\d{1,3}(?:,\d{3})*) B`)
	iecRe   = regexp.MustCompile(`^([+-]?\d+\.\d\d) (KiB|MiB|GiB|TiB)`)
	numRe   = regexp.MustCompile(`^[+-]?[\d,]+(\.\d+)?`)
	units   = map[string]float64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
	marks   = map[string]string{"added": "NEW", "removed": "DEL", "same": "~", "changed": ""}
)

// agrees checks that text shows the JSON value v: exact bytes to the byte
// (and an IEC figure, if shown, rounded from it), other numbers to the
// precision printed, strings as they are (a diff's status as its mark).
func agrees(text string, v any, path string) error {
	text = strings.TrimSpace(text)
	switch x := v.(type) {
	case string:
		if strings.HasSuffix(path, ".status") {
			if m, ok := marks[x]; ok && (text == m || text == x) {
				return nil
			}
		}
		if text != x {
			return fmt.Errorf("shows %q, JSON has %q", text, x)
		}
		return nil
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return err
		}
		if i, err := x.Int64(); err == nil && exactRe.MatchString(text) {
			m := exactRe.FindAllStringSubmatch(text, -1)
			got, _ := strconv.ParseInt(strings.ReplaceAll(m[len(m)-1][1], ",", ""), 10, 64)
			if got != i {
				return fmt.Errorf("shows %s bytes, JSON has %d", m[len(m)-1][1], i)
			}
			if u := iecRe.FindStringSubmatch(text); u != nil {
				s, _ := strconv.ParseFloat(u[1], 64)
				if math.Abs(s*units[u[2]]-f) > 0.0051*units[u[2]] {
					return fmt.Errorf("shows %s, JSON has %d bytes", u[0], i)
				}
			} else if !strings.HasPrefix(text, m[0][0]) {
				return fmt.Errorf("shows %q: neither IEC nor exact first", text)
			}
			return nil
		}
		if text == "-" && f == 0 {
			return nil
		}
		s := numRe.FindString(text)
		if s == "" {
			return fmt.Errorf("shows %q, JSON has %s", text, x)
		}
		got, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
		if err != nil {
			return err
		}
		tol := 0.0
		if dot := strings.IndexByte(s, '.'); dot >= 0 {
			tol = 0.5001 * math.Pow(10, -float64(len(s)-dot-1))
		}
		if math.Abs(got-f) > tol {
			return fmt.Errorf("shows %q, JSON has %s", text, x)
		}
		return nil
	case bool:
		return nil
	}
	return fmt.Errorf("shows %q for a JSON %T", text, v)
}

// checkTreemap checks each size domain: every tensor rectangle and member
// of a merged rectangle names a tensor, none twice; each group's data-s
// sums what is drawn in it.
func (p *Page) checkTreemap(t testing.TB) {
	t.Helper()
	// A group has the same sums in every domain, each checked in its own.
	sums := map[string]string{}
	for _, g := range FindAll(p.Root, "g") {
		if s := Attr(g, "data-s"); s != "" {
			id := Attr(g, "data-id")
			if prev, ok := sums[id]; ok && prev != s {
				t.Errorf("group %s %q: data-s %q in one domain, %q in another", id, Attr(g, "data-l"), prev, s)
			}
			sums[id] = s
		}
	}
	for _, dom := range FindAll(p.Root, "g") {
		if !strings.Contains(Attr(dom, "class"), "dom ") {
			continue
		}
		keys := strings.Fields(Attr(dom, "data-domain"))
		key := strings.Join(keys, " ")
		seen := map[int]bool{}
		best := 0.0
		walk(dom, func(n *html.Node) {
			if n.Data != "rect" || !hasClass(n, "t") {
				return
			}
			if a := num(Attr(n, "width")) * num(Attr(n, "height")); a > best {
				best, p.Largest[key] = a, Attr(n, "data-j")
			}
			var idx []int
			if parts := Attr(n, "data-p"); parts != "" {
				for _, part := range strings.Split(parts, ";") {
					i, err := strconv.Atoi(strings.Fields(part)[0])
					if err != nil {
						t.Errorf("domain %s: merged part %q", key, part)
					}
					idx = append(idx, i)
				}
			} else if j := Attr(n, "data-j"); strings.Contains(j, "tensor") {
				i, err := strconv.Atoi(j[strings.LastIndexByte(j, '.')+1:])
				if err != nil {
					t.Errorf("domain %s: rect data-j %q", key, j)
				}
				idx = append(idx, i)
			}
			for _, i := range idx {
				if seen[i] {
					t.Errorf("domain %s: tensor %d drawn twice", key, i)
				}
				seen[i] = true
			}
		})
		for _, k := range keys {
			p.Domains[k] = seen
			p.Largest[k] = p.Largest[key]
			p.checkSums(t, dom, k)
		}
	}
}

// domainFields maps a size domain to the tensor field it sizes by and the
// position of that field in a group's data-s.
var domainFields = map[string]struct {
	field string
	pos   int
}{
	"baseline": {"baseline_bytes", 0}, "theoretical": {"theoretical_bytes", 1}, "stored": {"stored_bytes", 2},
	"new": {"new_bytes", 0}, "old": {"old_bytes", 1},
}

// checkSums checks that each group's data-s figure for the domain is the
// sum of the tensors drawn in it, and the domain's whole the JSON total.
func (p *Page) checkSums(t testing.TB, dom *html.Node, key string) {
	t.Helper()
	df, ok := domainFields[key]
	if !ok {
		return
	}
	tensors, total := "report.tensors", "report.totals."+df.field
	if p.Levels != nil {
		tensors, total = "levels.tensor.rows", "levels.tensor.total."+df.field
	}
	size := func(i int) int64 {
		v, err := p.Lookup(fmt.Sprintf("%s.%d.%s", tensors, i, df.field))
		if err != nil {
			t.Errorf("domain %s: tensor %d: %v", key, i, err)
			return 0
		}
		n, _ := v.(json.Number).Int64()
		return n
	}
	var sum func(n *html.Node) int64
	sum = func(n *html.Node) int64 {
		var s int64
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != html.ElementNode {
				continue
			}
			switch {
			case c.Data == "g":
				s += sum(c)
			case c.Data == "rect" && hasClass(c, "t"):
				if parts := Attr(c, "data-p"); parts != "" {
					for _, part := range strings.Split(parts, ";") {
						i, _ := strconv.Atoi(strings.Fields(part)[0])
						s += size(i)
					}
				} else if j := Attr(c, "data-j"); j != "" {
					i, _ := strconv.Atoi(j[strings.LastIndexByte(j, '.')+1:])
					s += size(i)
				}
			}
		}
		if n.Data == "g" && Attr(n, "data-s") != "" {
			f := strings.Fields(Attr(n, "data-s"))
			if want, _ := strconv.ParseInt(f[df.pos], 10, 64); want != s {
				t.Errorf("domain %s: group %q says %d bytes, draws %d", key, Attr(n, "data-l"), want, s)
			}
		}
		return s
	}
	got := sum(dom)
	v, err := p.Lookup(total)
	if err != nil {
		t.Errorf("domain %s: %v", key, err)
		return
	}
	if want, _ := v.(json.Number).Int64(); want != got {
		t.Errorf("domain %s draws %d bytes, %s is %d", key, got, total, want)
	}
}

// FindAll returns the elements named tag under n, in document order.
func FindAll(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	walk(n, func(c *html.Node) {
		if c.Type == html.ElementNode && c.Data == tag {
			out = append(out, c)
		}
	})
	return out
}

func walk(n *html.Node, f func(*html.Node)) {
	if n.Type == html.ElementNode {
		f(n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

// Attr is n's attribute key, "" if absent.
func Attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// Text is the text under n.
func Text(n *html.Node) string {
	var b strings.Builder
	var f func(*html.Node)
	f = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			f(c)
		}
	}
	f(n)
	return b.String()
}

func hasClass(n *html.Node, c string) bool {
	for _, x := range strings.Fields(Attr(n, "class")) {
		if x == c {
			return true
		}
	}
	return false
}

func num(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}
