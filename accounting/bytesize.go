package accounting

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"sync"
)

// These few lines are all that qinsaudit needs of a humanizing library.
// The accounting stays a standard-library leaf, and the commands do not
// link go-humanize either: its package initialisation compiles a regular
// expression (for ParseSI, which nothing here calls) at the start of every
// process, a quarter of a small command's start-up.

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
func ByteCount(n int64) string { return Comma(n) + " B" }

// Comma writes n with thousands separators: 1,952.
func Comma(n int64) string {
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

// Byte units: the IEC powers of 1024 and the SI powers of 1000.
const (
	KiB = 1 << (10 * (iota + 1))
	MiB
	GiB
	TiB
	PiB
	EiB
)

// byteUnits are ParseBytes's units, made on first use (a gate or a flag
// that reads a size), not at package init.
var byteUnits = sync.OnceValue(func() map[string]uint64 {
	return map[string]uint64{
		"": 1, "b": 1,
		"kib": KiB, "ki": KiB, "mib": MiB, "mi": MiB, "gib": GiB, "gi": GiB,
		"tib": TiB, "ti": TiB, "pib": PiB, "pi": PiB, "eib": EiB, "ei": EiB,
		"kb": 1e3, "k": 1e3, "mb": 1e6, "m": 1e6, "gb": 1e9, "g": 1e9,
		"tb": 1e12, "t": 1e12, "pb": 1e15, "p": 1e15, "eb": 1e18, "e": 1e18,
	}
})

// ParseBytes reads a byte count: a number, optionally with thousands
// separators and a fraction, then optionally blanks and a unit, any case
// ("9838736", "9,838,736", "4.5MiB", "10 MB", "0.41mb"). KiB, MiB, ... (or
// Ki, Mi, ...) are powers of 1024; kB, MB, ... (or k, M, ...) powers of
// 1000. Whole numbers are exact; a fraction is scaled in float64 and
// truncated. This is go-humanize's ParseBytes, which it replaces (a test
// compares the two).
func ParseBytes(s string) (uint64, error) {
	end := 0
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '.' || s[end] == ',') {
		end++
	}
	num := strings.ReplaceAll(s[:end], ",", "")
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, err
	}
	extra := strings.ToLower(strings.TrimSpace(s[end:]))
	m, ok := byteUnits()[extra]
	if !ok {
		return 0, fmt.Errorf("unhandled size name: %v", extra)
	}
	if !strings.Contains(num, ".") {
		if v, err := strconv.ParseUint(num, 10, 64); err == nil {
			if hi, lo := bits.Mul64(v, m); hi == 0 {
				return lo, nil
			}
			return 0, fmt.Errorf("too large: %v", s)
		}
	}
	f *= float64(m)
	if f >= math.MaxUint64 {
		return 0, fmt.Errorf("too large: %v", s)
	}
	return uint64(f), nil
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
