package gate

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/dustin/go-humanize"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// accounting.ParseBytes and Comma replace go-humanize's (which the
// commands no longer link, for its start-up cost): they must agree with it
// on every input, sizes in budgets and claims included.
func TestParseBytesAgreesWithHumanize(t *testing.T) {
	inputs := []string{
		"", "0", "1", "42", "9838736", "9,838,736", "1,,000", ",", ".", "..", "1.", ".5", "1.2.3",
		"18446744073709551615", "18446744073709551616", "18446744073709551615 B", "99999999999999999999 kB",
		"16 EiB", "15 EiB", "17179869184 GiB", "17179869183 GiB", "1e3", "1e3 B", "-1", "+1", " 1", "1 ", "1\t",
		"0x10", "inf", "NaN", "1 K", "1 KB", "5٣ MB", "٣", "１MB", "1 MB extra", "1 M B",
	}
	units := []string{"", "b", "B", "k", "K", "kb", "kB", "KB", "ki", "Ki", "kib", "KiB", "KIB", "m", "mb", "MB", "mi", "mib", "MiB",
		"g", "gb", "GB", "gib", "GiB", "t", "TB", "TiB", "p", "PB", "PiB", "e", "EB", "EiB", "x", "bytes", "byte", "ib"}
	numbers := []string{"0", "1", "3", "4.5", "0.41", "9.4", "1,024", "12,345.678", "0.000001", "1023.999999",
		"123456789012", "0.1", "0.7", "2.675", "9007199254740993", "9007199254740993.0", "1.0000000000000002"}
	for _, n := range numbers {
		for _, u := range units {
			for _, sep := range []string{"", " ", "  ", "\t"} {
				inputs = append(inputs, n+sep+u)
			}
		}
	}
	r := rand.New(rand.NewPCG(7, 7))
	for range 20000 {
		n := strconv.FormatFloat(r.Float64()*math.Pow(10, float64(r.IntN(20))), 'f', r.IntN(8), 64)
		inputs = append(inputs, n+units[r.IntN(len(units))])
	}
	for _, s := range inputs {
		got, gerr := accounting.ParseBytes(s)
		want, werr := humanize.ParseBytes(s)
		if got != want || (gerr == nil) != (werr == nil) {
			t.Errorf("ParseBytes(%q) = %d, %v; go-humanize: %d, %v", s, got, gerr, want, werr)
		}
		if gerr != nil && werr != nil && gerr.Error() != werr.Error() && !nonASCIIDigits(s) {
			t.Errorf("ParseBytes(%q): error %q; go-humanize: %q", s, gerr, werr)
		}
	}
}

// nonASCIIDigits: go-humanize also takes other scripts' digits for the
// number, then fails to parse it; accounting.ParseBytes fails on the unit.
// Both refuse the input, in other words.
func nonASCIIDigits(s string) bool {
	for _, r := range s {
		if r > 0x7f {
			return true
		}
	}
	return false
}

func TestCommaAgreesWithHumanize(t *testing.T) {
	vals := []int64{0, 1, 7, 8, 9, 10, 99, 100, 999, 1000, 1001, 999999, 1000000, -1, -7, -8, -999, -1000, -1234567,
		math.MaxInt64, math.MinInt64, math.MinInt64 + 1}
	r := rand.New(rand.NewPCG(3, 3))
	for range 10000 {
		vals = append(vals, r.Int64()>>r.IntN(63), -(r.Int64() >> r.IntN(63)))
	}
	for _, v := range vals {
		if got, want := accounting.Comma(v), humanize.Comma(v); got != want {
			t.Errorf("Comma(%d) = %q, go-humanize %q", v, got, want)
		}
	}
}
