package report

import (
	"fmt"
	"github.com/qinsaudit/qinsaudit/accounting"
	"strconv"
)

// A scale formats a column of byte counts in one IEC unit, so a column
// reads at a glance (benchstat's common-scale rule). Exact mode prints the
// integers the JSON carries.
type scale struct {
	unit  string
	div   float64
	exact bool
}

var iecUnits = []struct {
	name string
	size uint64
}{
	{"TiB", accounting.TiB}, {"GiB", accounting.GiB}, {"MiB", accounting.MiB}, {"KiB", accounting.KiB},
}

// columnScale picks one IEC unit for a column: the largest in which the
// column's largest value is at least 1, then smaller ones while the smallest
// non-zero value would print as 0.00 and the largest still reads in fewer
// than seven digits. A value that still rounds to nothing prints "<0.01",
// never "0.00": a few KiB in a GiB column are not zero.
func columnScale(vals []int64, exact bool) scale {
	if exact {
		return scale{unit: "B", div: 1, exact: true}
	}
	var hi, lo int64
	for _, v := range vals {
		a := max(v, -v)
		hi = max(hi, a)
		if a > 0 && (lo == 0 || a < lo) {
			lo = a
		}
	}
	pick := -1
	for i, u := range iecUnits {
		if uint64(hi) >= u.size {
			pick = i
			break
		}
	}
	if pick < 0 {
		return scale{unit: "B", div: 1, exact: true}
	}
	for pick < len(iecUnits) && roundsToZero(lo, iecUnits[pick].size) {
		if pick+1 == len(iecUnits) {
			if uint64(hi) < 1e6 {
				return scale{unit: "B", div: 1, exact: true}
			}
			break
		}
		if float64(hi)/float64(iecUnits[pick+1].size) >= 1e6 {
			break
		}
		pick++
	}
	return scale{unit: iecUnits[pick].name, div: float64(iecUnits[pick].size)}
}

// roundsToZero reports whether a non-zero v prints as 0.00 in the unit.
func roundsToZero(v int64, unit uint64) bool {
	return v > 0 && float64(v)/float64(unit) < 0.005
}

func (s scale) format(v int64) string {
	if s.exact {
		return strconv.FormatInt(v, 10)
	}
	if v != 0 && roundsToZero(max(v, -v), uint64(s.div)) {
		if v < 0 {
			return "-<0.01"
		}
		return "<0.01"
	}
	return fmt.Sprintf("%.2f", float64(v)/s.div)
}

// header appends the unit to a column title.
func (s scale) header(title string) string { return title + " (" + s.unit + ")" }

// Ratio formats baseline/stored as every renderer shows it; "-" when
// nothing is stored.
func Ratio(r float64) string {
	if r == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r)
}

// BitsPerWeight formats bits per weight as every renderer shows it; "-"
// without params.
func BitsPerWeight(b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", b)
}

func count(n int64) string { return accounting.Comma(n) }
