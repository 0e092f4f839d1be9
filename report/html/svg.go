package html

import (
	"html/template"
	"strconv"
	"strings"
)

// svgItems writes a size domain's rectangles. They are the one part of the
// page that grows with the model (tens of thousands of rectangles), and
// executing a template per rectangle takes seconds there, so they are
// written here; every string in them goes through template.HTMLEscapeString,
// html/template's own escaper, which is safe both as text and inside a
// quoted attribute.
func svgItems(items []item) template.HTML {
	var b strings.Builder
	b.Grow(len(items) * 160)
	esc := template.HTMLEscapeString
	attr := func(name, v string) {
		b.WriteByte(' ')
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(esc(v))
		b.WriteByte('"')
	}
	for _, it := range items {
		switch {
		case it.Open:
			b.WriteString("<g")
			attr("class", it.Class)
			attr("data-id", strconv.Itoa(it.ID))
			attr("data-k", it.Kind)
			if it.Module != "" {
				attr("data-m", it.Module)
			}
			if it.Ref != "" {
				attr("data-j", it.Ref)
			}
			attr("data-s", it.Sums)
			attr("data-b", it.X+" "+it.Y+" "+it.W+" "+it.H)
			attr("data-l", it.Label)
			attr("aria-label", it.Kind+" "+it.Label)
			b.WriteString(">\n")
		case it.Close:
			b.WriteString("<rect")
			attr("class", "fr "+it.Class)
			attr("x", it.X)
			attr("y", it.Y)
			attr("width", it.W)
			attr("height", it.H)
			b.WriteString("/></g>\n")
		default:
			b.WriteString("<rect")
			attr("class", it.Class)
			attr("data-id", strconv.Itoa(it.ID))
			attr("data-k", it.Kind)
			if it.Ref != "" {
				attr("data-j", it.Ref)
			}
			if it.Module != "" {
				attr("data-m", it.Module)
			}
			if it.Parts != "" {
				attr("data-p", it.Parts)
			}
			attr("x", it.X)
			attr("y", it.Y)
			attr("width", it.W)
			attr("height", it.H)
			attr("fill", it.Fill)
			b.WriteString("><title>")
			b.WriteString(esc(it.Title))
			b.WriteString("</title></rect>")
			if it.Label != "" {
				b.WriteString(`<text class="lb root"`)
				attr("x", it.LX)
				attr("y", it.LY)
				attr("fill", it.LFill)
				b.WriteByte('>')
				b.WriteString(esc(it.Label))
				b.WriteString("</text>")
			}
			b.WriteByte('\n')
		}
	}
	return template.HTML(b.String())
}
