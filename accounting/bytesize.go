package accounting

import (
	"math"
	"strconv"
	"strings"
)

// The accounting stays a standard-library leaf: these few lines are what it
// needs of a humanizing library, and the renderers use go-humanize.

// ByteSize formats a byte count for a message in IEC units to two
// decimals, trailing zeros dropped: "9.38 MiB", "512 KiB", "100 B",
// "-18.38 MiB". Messages say sizes this way; the exact counts are in the
// figures beside them.
func ByteSize(n int64) string {
	return unit(n, 1024, "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
}

// ByteSizeSI is ByteSize in decimal units: "9.9 MB".
func ByteSizeSI(n int64) string {
	return unit(n, 1000, "kB", "MB", "GB", "TB", "PB", "EB")
}

// ByteCount formats a byte count exactly, with thousands separators:
// "1,952 B".
func ByteCount(n int64) string { return comma(n) + " B" }

// comma writes n with thousands separators: 1,952.
func comma(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func unit(n int64, base float64, units ...string) string {
	v, u := float64(n), "B"
	for _, next := range units {
		if math.Abs(v) < base {
			break
		}
		v, u = v/base, next
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + " " + u
}
