package html

// The treemap is laid out by the squarified algorithm of Bruls, Huizing and
// van Wijk ("Squarified Treemaps", 2000), written here rather than taken
// from a module: it is forty lines, and no Go treemap module is kept well
// enough to depend on for the one function we need.

// box is a rectangle in the treemap's coordinates.
type box struct{ x, y, w, h float64 }

func (b box) area() float64 { return b.w * b.h }

// squarify lays out sizes, sorted largest first and all positive, in b,
// each rectangle's area proportional to its size, rows chosen so the
// rectangles stay close to squares. It returns one box per size, in the
// order given.
func squarify(sizes []int64, b box) []box {
	out := make([]box, 0, len(sizes))
	var total float64
	for _, s := range sizes {
		total += float64(s)
	}
	if total <= 0 || b.w <= 0 || b.h <= 0 {
		for range sizes {
			out = append(out, box{x: b.x, y: b.y})
		}
		return out
	}
	scale := b.area() / total // area per unit of size
	i := 0
	for i < len(sizes) {
		side := min(b.w, b.h)
		// Grow the row while its worst aspect ratio improves.
		var rowArea, lo, hi float64
		j := i
		best := 0.0
		for j < len(sizes) {
			a := float64(sizes[j]) * scale
			nArea, nLo, nHi := rowArea+a, a, hi
			if j == i {
				nHi = a
			} else {
				nLo = min(lo, a)
				nHi = max(hi, a)
			}
			w := worst(nArea, nLo, nHi, side)
			if j > i && w > best {
				break
			}
			rowArea, lo, hi, best = nArea, nLo, nHi, w
			j++
		}
		// Lay the row out along the shorter side of what is left.
		thick := rowArea / side
		pos := 0.0
		for k := i; k < j; k++ {
			a := float64(sizes[k]) * scale
			long := a / thick
			if k == j-1 {
				long = side - pos // absorb rounding so the row fills the side
			}
			if b.w >= b.h {
				out = append(out, box{b.x, b.y + pos, thick, long})
			} else {
				out = append(out, box{b.x + pos, b.y, long, thick})
			}
			pos += long
		}
		if j == len(sizes) {
			break
		}
		if b.w >= b.h {
			b.x, b.w = b.x+thick, b.w-thick
		} else {
			b.y, b.h = b.y+thick, b.h-thick
		}
		i = j
	}
	return out
}

// worst is the largest aspect ratio in a row of total area s whose
// smallest and largest rectangles have areas lo and hi, laid along a side
// of length w.
func worst(s, lo, hi, w float64) float64 {
	s2, w2 := s*s, w*w
	return max(w2*hi/s2, s2/(w2*lo))
}
