package html

import (
	"fmt"
	"math"
	"testing"
)

// contrast is the WCAG contrast ratio of two "#rrggbb" colours.
func contrast(a, b string) float64 {
	lum := func(c string) float64 {
		if len(c) == 4 { // #000, #fff
			c = "#" + c[1:2] + c[1:2] + c[2:3] + c[2:3] + c[3:4] + c[3:4]
		}
		var r, g, bl int
		fmt.Sscanf(c, "#%02x%02x%02x", &r, &g, &bl)
		lin := func(v int) float64 {
			x := float64(v) / 255
			if x <= 0.03928 {
				return x / 12.92
			}
			return math.Pow((x+0.055)/1.055, 2.4)
		}
		return 0.2126*lin(r) + 0.7152*lin(g) + 0.0722*lin(bl)
	}
	x, y := lum(a), lum(b)
	return (max(x, y) + 0.05) / (min(x, y) + 0.05)
}

// TestLabelContrast: labels on every colour of both scales are readable
// (WCAG AA for text, 4.5:1).
func TestLabelContrast(t *testing.T) {
	fills := append([]string{noWeights, addedColor, removedColor}, bpwScale()...)
	for i := 0; i <= 100; i++ {
		fills = append(fills, lerp(shrinkStops, float64(i)/100), lerp(growStops, float64(i)/100))
	}
	for _, f := range fills {
		if c := contrast(f, textOn(f)); c < 4.5 {
			t.Errorf("label %s on %s: contrast %.2f", textOn(f), f, c)
		}
	}
}

// TestSquarify: areas are proportional to sizes, boxes tile the rectangle
// without overlap, and the rectangles are not slivers.
func TestSquarify(t *testing.T) {
	sizes := []int64{600, 600, 400, 400, 300, 200, 200, 100, 50, 3}
	b := box{10, 20, 600, 400}
	out := squarify(sizes, b)
	var total, sum float64
	for _, s := range sizes {
		total += float64(s)
	}
	for i, o := range out {
		want := b.area() * float64(sizes[i]) / total
		if math.Abs(o.area()-want) > 1e-6*b.area() {
			t.Errorf("box %d area %.3f, want %.3f", i, o.area(), want)
		}
		if o.x < b.x-1e-9 || o.y < b.y-1e-9 || o.x+o.w > b.x+b.w+1e-9 || o.y+o.h > b.y+b.h+1e-9 {
			t.Errorf("box %d %+v outside %+v", i, o, b)
		}
		for j := range i {
			p := out[j]
			if o.x < p.x+p.w-1e-9 && p.x < o.x+o.w-1e-9 && o.y < p.y+p.h-1e-9 && p.y < o.y+o.h-1e-9 {
				t.Errorf("boxes %d and %d overlap: %+v %+v", j, i, p, o)
			}
		}
		if i < 7 && max(o.w/o.h, o.h/o.w) > 3 {
			t.Errorf("box %d of size %d has aspect %.1f", i, sizes[i], max(o.w/o.h, o.h/o.w))
		}
		sum += o.area()
	}
	if math.Abs(sum-b.area()) > 1e-6 {
		t.Errorf("boxes cover %.3f of %.3f", sum, b.area())
	}
}
