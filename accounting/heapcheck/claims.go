package heapcheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// claimSizeRE splits a size into its number and unit: "0.41 MB" -> "0.41", "MB".
var claimSizeRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9][0-9,]*)(?:\.([0-9]+))?\s*([A-Za-z]*)$`) })

// ParseClaim parses NAME=SIZE, e.g. "weights=0.41MB".
func ParseClaim(s string) (accounting.Claim, error) {
	name, size, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(name) == "" {
		return accounting.Claim{}, fmt.Errorf("claim %q: want NAME=SIZE, e.g. weights=0.41MB", s)
	}
	return NewClaim(strings.TrimSpace(name), size)
}

// NewClaim reads a claimed size: a byte count ("9838736", "9,838,736") or a
// number with a unit ("0.41MB", "9.4 MiB"). As in go-humanize (see accounting.ParseBytes), kB/MB/GB are
// powers of 1000 and KiB/MiB/GiB powers of 1024.
func NewClaim(name, size string) (accounting.Claim, error) {
	size = strings.TrimSpace(size)
	c := accounting.Claim{Name: name, Text: size}
	n, err := accounting.ParseBytes(size)
	if err != nil {
		return c, fmt.Errorf("claim %s=%s: not a size (want e.g. 0.41MB, 9.4MiB or 9838736): %v", name, size, err)
	}
	if n > math.MaxInt64 {
		return c, fmt.Errorf("claim %s=%s: too large", name, size)
	}
	c.Bytes = int64(n)
	m := claimSizeRE().FindStringSubmatch(size)
	if m == nil {
		return c, nil
	}
	unit, err := accounting.ParseBytes("1" + m[3])
	if err != nil {
		return c, nil
	}
	// Half a unit in the last digit given.
	c.PrecisionBytes = int64(float64(unit) / 2 / math.Pow10(len(m[2])))
	if other := otherUnit(m[3]); other != "" {
		if o, err := accounting.ParseBytes(strings.ReplaceAll(m[1], ",", "") + dot(m[2]) + other); err == nil && o <= math.MaxInt64 {
			c.OtherUnitBytes = int64(o)
		}
	}
	return c, nil
}

func dot(frac string) string {
	if frac == "" {
		return ""
	}
	return "." + frac
}

// otherUnit swaps a decimal unit for its binary twin and back: MB <-> MiB.
func otherUnit(u string) string {
	l := strings.ToLower(u)
	switch {
	case len(l) == 2 && l[1] == 'b' && strings.ContainsRune("kmgtpe", rune(l[0])):
		return strings.ToUpper(l[:1]) + "iB"
	case len(l) == 3 && strings.HasSuffix(l, "ib") && strings.ContainsRune("kmgtpe", rune(l[0])):
		return strings.ToUpper(l[:1]) + "B"
	}
	return ""
}

// ReadClaims reads a claims file: a JSON object mapping each claim's name
// to its size, as a string ("0.41MB") or a number of bytes (5120000).
// Claims come back sorted by name.
func ReadClaims(path string) ([]accounting.Claim, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: not a claims file (want a JSON object of name: size): %v", path, err)
	}
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []accounting.Claim
	for _, name := range names {
		v := bytes.TrimSpace(raw[name])
		var size string
		if len(v) > 0 && v[0] == '"' {
			if err := json.Unmarshal(v, &size); err != nil {
				return nil, fmt.Errorf("%s: claim %q: %v", path, name, err)
			}
		} else {
			if _, err := strconv.ParseUint(string(v), 10, 64); err != nil {
				return nil, fmt.Errorf("%s: claim %q: %s is not a byte count or a size string", path, name, v)
			}
			size = string(v)
		}
		c, err := NewClaim(name, size)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		out = append(out, c)
	}
	return out, nil
}
