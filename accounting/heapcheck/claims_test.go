package heapcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
)

func TestParseClaim(t *testing.T) {
	for _, c := range []struct {
		in   string
		want accounting.Claim
	}{
		{"weights=0.41MB", accounting.Claim{Name: "weights", Text: "0.41MB", Bytes: 410_000, PrecisionBytes: 5_000, OtherUnitBytes: 429_916}},
		{"weights=0.41MiB", accounting.Claim{Name: "weights", Text: "0.41MiB", Bytes: 429_916, PrecisionBytes: 5_242, OtherUnitBytes: 410_000}},
		{"w=9838736", accounting.Claim{Name: "w", Text: "9838736", Bytes: 9_838_736}},
		{"w=9,838,736", accounting.Claim{Name: "w", Text: "9,838,736", Bytes: 9_838_736}},
		{"weights=9.4MiB", accounting.Claim{Name: "weights", Text: "9.4MiB", Bytes: 9_856_614, PrecisionBytes: 52_428, OtherUnitBytes: 9_400_000}},
		{"total = 13.88 MiB", accounting.Claim{Name: "total", Text: "13.88 MiB", Bytes: 14_554_234, PrecisionBytes: 5_242, OtherUnitBytes: 13_880_000}},
		{"kv=2GB", accounting.Claim{Name: "kv", Text: "2GB", Bytes: 2_000_000_000, PrecisionBytes: 500_000_000, OtherUnitBytes: 2 << 30}},
	} {
		got, err := ParseClaim(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseClaim(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"0.41MB", "=5MB", "w=", "w=lots", "w=-5MB", "w=5XB"} {
		if _, err := ParseClaim(bad); err == nil {
			t.Errorf("ParseClaim(%q) accepted", bad)
		}
	}
}

func TestReadClaims(t *testing.T) {
	cs, err := ReadClaims(fixture("claims.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Bytes != 5_120_000 || !strings.Contains(cs[0].Name, "parameters()") {
		t.Errorf("claims.json: %+v", cs)
	}
	dir := t.TempDir()
	for _, c := range []struct{ body, want string }{
		{`{"b": "0.41MB", "a": 12}`, ""},
		{`[1, 2]`, "not a claims file"},
		{`{"a": true}`, `claim "a": true is not a byte count`},
		{`{"a": "big"}`, "not a size"},
		{`{"a": 1.5}`, "not a byte count"},
	} {
		path := filepath.Join(dir, "c.json")
		if err := os.WriteFile(path, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		cs, err := ReadClaims(path)
		switch {
		case c.want == "" && (err != nil || len(cs) != 2 || cs[0].Name != "a" || cs[1].Bytes != 410_000):
			t.Errorf("%s: %+v, %v", c.body, cs, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path)):
			t.Errorf("%s: error %v, want %q naming the file", c.body, err, c.want)
		}
	}
}

// FuzzClaims: go test ./accounting/heapcheck -fuzz=FuzzClaims. Any input
// gives claims with distinct names and sizes in range, or an error of
// bounded length; never a panic.
func FuzzClaims(f *testing.F) {
	b, err := os.ReadFile(fixture("claims.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"a": "1MB", "a": 2}`))
	f.Add([]byte(`{"a": 18446744073709551615, "b": "9,838,736", "c": "0.41 MiB"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := ParseClaims("fuzz.json", data)
		if err != nil {
			if len(err.Error()) > 4096 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		seen := map[string]bool{}
		for _, c := range cs {
			if seen[c.Name] {
				t.Fatalf("claim %q twice", c.Name)
			}
			seen[c.Name] = true
			if c.Bytes < 0 || c.PrecisionBytes < 0 || c.OtherUnitBytes < 0 {
				t.Fatalf("claim %+v out of range", c)
			}
		}
	})
}
