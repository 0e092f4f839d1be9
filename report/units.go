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

// columnScale picks the largest IEC unit in which the column's largest
// value is at least 1.
func columnScale(vals []int64, exact bool) scale {
	if exact {
		return scale{unit: "B", div: 1, exact: true}
	}
	var hi int64
	for _, v := range vals {
		hi = max(hi, v, -v)
	}
	for _, u := range iecUnits {
		if uint64(hi) >= u.size {
			return scale{unit: u.name, div: float64(u.size)}
		}
	}
	return scale{unit: "B", div: 1, exact: true}
}

func (s scale) format(v int64) string {
	if s.exact {
		return strconv.FormatInt(v, 10)
	}
	return fmt.Sprintf("%.2f", float64(v)/s.div)
}

// header appends the unit to a column title.
func (s scale) header(title string) string { return title + " (" + s.unit + ")" }

// ratio formats baseline/stored; "-" when nothing is stored.
func ratio(r float64) string {
	if r == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r)
}

// bpw formats bits per weight; "-" without params.
func bpw(b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", b)
}

func count(n int64) string { return accounting.Comma(n) }
