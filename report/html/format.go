package html

import (
	"fmt"
	"math"
	"strconv"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/report"
)

// iec formats a byte count in the largest IEC unit it reaches, two
// decimals, as the text tables do; under 1 KiB as exact bytes.
func iec(v int64) string {
	a := v
	if a < 0 {
		a = -a
	}
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if a >= u.size {
			return fmt.Sprintf("%.2f %s", float64(v)/float64(u.size), u.name)
		}
	}
	return strconv.FormatInt(v, 10) + " B"
}

// exact formats a byte count with thousands separators: 9,838,736 B.
func exact(v int64) string { return accounting.ByteCount(v) }

// comma groups an integer's digits by three (accounting.Comma).
func comma(v int64) string { return accounting.Comma(v) }

// signedIEC and signedExact put a + before growth.
func signedIEC(v int64) string {
	if v > 0 {
		return "+" + iec(v)
	}
	return iec(v)
}

func signedExact(v int64) string {
	if v > 0 {
		return "+" + exact(v)
	}
	return exact(v)
}

// ratio and bpw are the text renderers' formats, so page and tables agree.
func ratio(r float64) string { return report.Ratio(r) }
func bpw(b float64) string   { return report.BitsPerWeight(b) }

// pct formats a relative change in percent.
func pct(p float64) string { return fmt.Sprintf("%+.1f%%", p) }

// bitsPerWeight is stored bytes * 8 / params; 0 without params.
func bitsPerWeight(stored, params int64) float64 {
	if params == 0 {
		return 0
	}
	return float64(stored) * 8 / float64(params)
}

// coord formats a treemap coordinate: one decimal is finer than a pixel.
func coord(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}
