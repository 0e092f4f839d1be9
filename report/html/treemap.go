package html

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// The treemap's canvas, in SVG user units (pixels at 100% zoom).
const (
	canvasW, canvasH = 960.0, 540.0
	// minArea is the smallest rectangle drawn on its own: smaller siblings
	// are merged into one "N smaller" rectangle, whose members the script
	// draws when the user zooms in. It bounds the rectangles of one size
	// domain to about canvasW*canvasH/minArea, whatever the model.
	minArea = 12.0
	// A layer or module smaller than groupArea is drawn as one rectangle,
	// its tensors drawn by the script when zoomed into: a model of 10,000
	// small layers shows 10,000 layers, each a click away.
	groupArea = 64.0
)

// node is one rectangle of the treemap: a role, layer, module, tensor or,
// for the measured heap, a role's buffers.
type node struct {
	id       int
	kind     string // "root", "role", "layer", "module", "tensor", "heap"
	label    string
	tensor   int      // index in the report's tensors, -1 if not a tensor
	size     [4]int64 // per size domain
	stored   int64    // for the colour: bits per weight, or growth in a diff
	params   int64
	old, new int64  // diff only
	ref      string // data-j: where in the embedded JSON its figures are
	module   string // module name, for findings
	finding  string // "error" or "warning" when a finding names the module
	parent   *node  // a diff's tensor: its module, whose growth colours it
	children []*node
	index    map[string]*node
}

func (n *node) child(kind, key, label string, ids *int) *node {
	if c := n.index[key]; c != nil {
		return c
	}
	*ids++
	c := &node{id: *ids, kind: kind, label: label, tensor: -1}
	if n.index == nil {
		n.index = map[string]*node{}
	}
	n.index[key] = c
	n.children = append(n.children, c)
	return c
}

// add adds a leaf's sizes to every node on its path.
func add(path []*node, leaf *node) {
	for _, p := range path {
		for d, s := range leaf.size {
			p.size[d] += s
		}
		p.stored += leaf.stored
		p.params += leaf.params
		p.old += leaf.old
		p.new += leaf.new
	}
}

// item is one element of a size domain's SVG, in document order: the
// opening or closing of a group, or a rectangle.
type item struct {
	Open, Close bool
	ID          int
	Kind        string
	X, Y, W, H  string
	Fill        string
	Class       string
	Module      string // data-m: a module's name, for findings
	Ref         string // data-j: where in the embedded JSON its figures are
	Sums        string // data-s of groups: the node's sizes in every domain
	Title       string
	Parts       string // data-p of a merged rectangle: "tensor x y w h fill;..."
	Label       string
	LX, LY      string
	LFill       string
}

// colorFunc colours a leaf or merged rectangle.
type colorFunc func(n *node) string

// layoutDomain lays out root's tree by size domain d on the canvas and
// returns its SVG items.
func layoutDomain(root *node, d int, color colorFunc, title func(n *node, d int) string, ref func(n *node) string, sums func(n *node) string) []item {
	var items []item
	var walk func(n *node, b box)
	var lead *node // a module's largest tensor, labelled with its whole name
	emitLeaf := func(n *node, b box, class string) {
		it := item{ID: n.id, Kind: n.kind, X: coord(b.x), Y: coord(b.y), W: coord(b.w), H: coord(b.h),
			Fill: color(n), Class: class, Ref: ref(n), Title: title(n, d)}
		if n.kind == "tensor" || n.kind == "heap" {
			it.Module = n.module
		}
		if b.w >= 46 && b.h >= 15 {
			label := n.label
			if n == lead {
				label, _, _ = strings.Cut(it.Title, "\n")
			}
			it.Label = truncate(label, int((b.w-6)/6.2))
			it.LX, it.LY = coord(b.x+3), coord(b.y+12)
			it.LFill = textOn(it.Fill)
		}
		items = append(items, it)
	}
	walk = func(n *node, b box) {
		if len(n.children) == 0 {
			emitLeaf(n, b, "t")
			return
		}
		if n.kind != "root" {
			cls := "g " + n.kind
			if n.finding != "" {
				cls += " f-" + n.finding
			}
			items = append(items, item{Open: true, ID: n.id, Kind: n.kind, X: coord(b.x), Y: coord(b.y), W: coord(b.w), H: coord(b.h),
				Class: cls, Module: n.module, Ref: ref(n), Sums: sums(n), Title: title(n, d), Label: n.label})
		}
		kids := make([]*node, 0, len(n.children))
		for _, c := range n.children {
			if c.size[d] > 0 {
				kids = append(kids, c)
			}
		}
		sort.SliceStable(kids, func(i, j int) bool { return kids[i].size[d] > kids[j].size[d] })
		// Merge the tail of small siblings into one rectangle.
		scale := b.area() / float64(n.size[d])
		cut := len(kids)
		for cut > 0 && float64(kids[cut-1].size[d])*scale < minArea {
			cut--
		}
		var merged *node
		if len(kids)-cut >= 2 {
			merged = &node{id: -1, kind: "merged", tensor: -1}
			for _, c := range kids[cut:] {
				add([]*node{merged}, c)
			}
			merged.label = fmt.Sprintf("%d smaller", len(kids)-cut)
			merged.children = kids[cut:]
			kids = append(kids[:cut:cut], merged)
		}
		sizes := make([]int64, len(kids))
		for i, c := range kids {
			sizes[i] = c.size[d]
		}
		if n.kind == "module" && len(kids) > 0 {
			lead = kids[0]
		}
		for i, bb := range squarify(sizes, b) {
			c := kids[i]
			if c == merged || (len(c.children) > 0 && bb.area() < groupArea) {
				it := len(items)
				emitLeaf(c, bb, "t m")
				if c != merged {
					items[it].Module = c.module
				}
				var parts strings.Builder
				mergedParts(c, d, bb, color, &parts)
				items[it].Parts = parts.String()
				continue
			}
			walk(c, bb)
		}
		if n.kind != "root" {
			cls := n.kind
			if n.finding != "" {
				cls += " f-" + n.finding
			}
			items = append(items, item{Close: true, Class: cls, X: coord(b.x), Y: coord(b.y), W: coord(b.w), H: coord(b.h)})
		}
	}
	walk(root, box{0, 0, canvasW, canvasH})
	return items
}

// mergedParts lays out the leaves under a merged rectangle, without
// merging, for the script to draw on zoom: "tensor x y w h fill" per leaf.
func mergedParts(n *node, d int, b box, color colorFunc, sb *strings.Builder) {
	kids := make([]*node, 0, len(n.children))
	for _, c := range n.children {
		if c.size[d] > 0 {
			kids = append(kids, c)
		}
	}
	sort.SliceStable(kids, func(i, j int) bool { return kids[i].size[d] > kids[j].size[d] })
	sizes := make([]int64, len(kids))
	for i, c := range kids {
		sizes[i] = c.size[d]
	}
	for i, bb := range squarify(sizes, b) {
		c := kids[i]
		if len(c.children) > 0 {
			mergedParts(c, d, bb, color, sb)
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte(';')
		}
		var num [24]byte
		sb.Write(strconv.AppendInt(num[:0], int64(c.tensor), 10))
		for _, v := range []float64{bb.x, bb.y, bb.w, bb.h} {
			sb.WriteByte(' ')
			sb.Write(appendCoord(num[:0], v))
		}
		sb.WriteByte(' ')
		sb.WriteString(color(c))
	}
}

// appendCoord appends v with two decimals at most, as a part's coordinate:
// a hundredth of a unit is finer than any zoom shows.
func appendCoord(b []byte, v float64) []byte {
	c := int64(math.Round(v * 100))
	if c < 0 {
		b, c = append(b, '-'), -c
	}
	b = strconv.AppendInt(b, c/100, 10)
	if f := c % 100; f != 0 {
		b = append(b, '.', byte('0'+f/10))
		if f%10 != 0 {
			b = append(b, byte('0'+f%10))
		}
	}
	return b
}

// truncate shortens s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	if n < 3 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// Colour scale of bits per weight: log2 from 1 to 32 bits, through the
// stops below (the viridis palette's anchor colours, dark to light).
var bpwStops = [][3]float64{{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {181, 222, 43}, {253, 231, 37}}

const noWeights = "#9e9e9e" // tensors without parameters: scales, signs, ranges

// bpwScale is the colour scale in 512 steps, finer than the eye tells,
// built on first use rather than at package init.
var bpwScale = sync.OnceValue(func() []string {
	out := make([]string, 513)
	for i := range out {
		out[i] = lerp(bpwStops, float64(i)/512)
	}
	return out
})

func bpwColor(stored, params int64) string {
	if params == 0 {
		return noWeights
	}
	b := bitsPerWeight(stored, params)
	t := math.Log2(max(b, 1)) / 5 // 0 at 1 bit, 1 at 32 bits
	return bpwScale()[int(math.Round(min(t, 1)*512))]
}

// Growth scale of a diff: shrinking blue, unchanged grey, growing red.
var (
	shrinkStops = [][3]float64{{190, 190, 190}, {33, 102, 172}}
	growStops   = [][3]float64{{190, 190, 190}, {178, 24, 43}}
)

const (
	addedColor   = "#762a83"
	removedColor = "#3d3d3d"
)

func growthColor(n *node) string {
	switch {
	case n.old == 0 && n.new == 0:
		return noWeights
	case n.old == 0:
		return addedColor
	case n.new == 0:
		return removedColor
	}
	r := float64(n.new-n.old) / float64(n.old) // -1 .. +inf
	if r < 0 {
		return lerp(shrinkStops, min(-r, 1))
	}
	return lerp(growStops, min(r, 1))
}

func lerp(stops [][3]float64, t float64) string {
	seg := t * float64(len(stops)-1)
	i := min(int(seg), len(stops)-2)
	f := seg - float64(i)
	var c [3]int
	for k := range 3 {
		c[k] = int(math.Round(stops[i][k] + (stops[i+1][k]-stops[i][k])*f))
	}
	return fmt.Sprintf("#%02x%02x%02x", c[0], c[1], c[2])
}

// textOn picks black or white text, whichever contrasts more with the
// fill (WCAG relative luminance).
func textOn(fill string) string {
	var r, g, b int
	if _, err := fmt.Sscanf(fill, "#%02x%02x%02x", &r, &g, &b); err != nil {
		return "#000"
	}
	lin := func(c int) float64 {
		v := float64(c) / 255
		if v <= 0.03928 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	l := 0.2126*lin(r) + 0.7152*lin(g) + 0.0722*lin(b)
	if (l+0.05)/0.05 >= 1.05/(l+0.05) {
		return "#000"
	}
	return "#fff"
}
