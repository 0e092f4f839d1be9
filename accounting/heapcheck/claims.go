package heapcheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/neutral"
	"github.com/qinsaudit/qinsaudit/internal/safeio"
)

// claimSizeRE splits a size into its number and unit: "0.41 MB" -> "0.41", "MB".
var claimSizeRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9][0-9,]*)(?:\.([0-9]+))?\s*([A-Za-z]*)$`) })

// ParseClaim parses NAME=SIZE, e.g. "weights=0.41MB".
func ParseClaim(s string) (accounting.Claim, error) {
	name, size, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(name) == "" {
		return accounting.Claim{}, fmt.Errorf("claim %q: want NAME=SIZE, e.g. weights=0.41MB", clip(s))
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
		return c, fmt.Errorf("claim %s=%s: not a size (want e.g. 0.41MB, 9.4MiB or 9838736)", clip(name), clip(size))
	}
	if n > math.MaxInt64 {
		return c, fmt.Errorf("claim %s=%s: too large", clip(name), clip(size))
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

// maxClaimsBytes bounds a claims file: a hand-written list of sizes.
const maxClaimsBytes = safeio.SideFileLimit

// ReadClaims reads a claims file: a JSON object mapping each claim's name
// to its size, as a string ("0.41MB") or a number of bytes (5120000).
// Claims come back sorted by name. A name given twice is an error: JSON
// decoders keep one of the two, silently.
func ReadClaims(path string) ([]accounting.Claim, error) {
	data, err := safeio.ReadFileLimit(path, maxClaimsBytes)
	if err != nil {
		return nil, err
	}
	return ParseClaims(path, data)
}

// ParseClaims reads the claims file data; name is used in errors, with
// the line of the claim at fault.
func ParseClaims(name string, data []byte) ([]accounting.Claim, error) {
	line := func(off int64) int { return 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n")) }
	bad := func(off int64, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", name, line(off), fmt.Sprintf(format, args...))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%s: empty file (want a JSON object of name: size)", name)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	notClaims := func(err error) error {
		return bad(dec.InputOffset(), "not a claims file (want a JSON object of name: size): %v", err)
	}
	if tok, err := dec.Token(); err != nil {
		return nil, notClaims(err)
	} else if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, notClaims(fmt.Errorf("starts with %v", clip(fmt.Sprint(tok))))
	}
	raw := map[string]json.RawMessage{}
	for dec.More() {
		off := dec.InputOffset() // after the previous value: skip to the key
		for off < int64(len(data)) && strings.IndexByte(" \t\r\n,", data[off]) >= 0 {
			off++
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, notClaims(err)
		}
		key := tok.(string) // inside an object the decoder yields only string keys
		if _, dup := raw[key]; dup {
			return nil, bad(off, "claim %q given twice", clip(key))
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, notClaims(err)
		}
		raw[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, notClaims(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad(dec.InputOffset(), "not a claims file: data after the object")
	}
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []accounting.Claim
	for _, claim := range names {
		v := bytes.TrimSpace(raw[claim])
		var size string
		if len(v) > 0 && v[0] == '"' {
			if err := json.Unmarshal(v, &size); err != nil {
				return nil, fmt.Errorf("%s: claim %q: %v", name, clip(claim), err)
			}
		} else {
			if _, err := strconv.ParseUint(string(v), 10, 64); err != nil {
				return nil, fmt.Errorf("%s: claim %q: %s is not a byte count or a size string", name, clip(claim), clip(string(v)))
			}
			size = string(v)
		}
		c, err := NewClaim(claim, size)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// clip shortens text quoted in an error: a claims file's 50 MB string must
// not come back whole in one error line.
func clip(s string) string { return neutral.Clip(s, 80) }
