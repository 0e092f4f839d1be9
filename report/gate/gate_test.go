package gate

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/report"
)

func TestLoadYAMLAndTOMLAgree(t *testing.T) {
	y, err := Load("testdata/ok.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tm, err := Load("testdata/ok.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(y, tm) {
		t.Errorf("yaml and toml differ:\n%+v\n%+v", y, tm)
	}
	if len(y.Budgets) != 3 || *y.Budgets[0].MaxBitsPerWeight != 9 || y.Budgets[1].MaxStoredBytes.Bytes != 1<<20 ||
		y.Budgets[2].MaxStoredBytes.Bytes != 10_000_000 || y.Against.MaxGrowth.Value != 1 || y.Against.IgnoreBelow.Bytes != 4096 ||
		y.Waivers[0].Expires.Format(time.DateOnly) != "2027-01-31" || y.ForbidFindings[0].Kind != "encoded-but-uncompressed" {
		t.Errorf("parsed %+v", y)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, body, want string }{
		{"unknown.yaml", "budgets:\n  - role: encoded_linear\n    max_bits: 9\n", `line 3: unknown key "max_bits"`},
		{"role.yaml", "budgets:\n  - role: encoded\n    max_bits_per_weight: 9\n", `line 2: unknown role "encoded"`},
		{"kind.yaml", "forbid_findings:\n  - encoded-uncompressed\n", `line 2: unknown finding "encoded-uncompressed"`},
		{"size.yaml", "budgets:\n  - role: total\n    max_stored_bytes: lots\n", `line 3: bad size "lots"`},
		{"date.yaml", "waivers:\n  - check: dead-bytes\n    reason: x\n    expires: soon\n", `line 4: bad date "soon"`},
		{"number.yaml", "budgets:\n  - role: total\n    min_ratio: two\n", `line 3: "two" is text, want a number`},
		{"nolimit.yaml", "budgets:\n  - role: total\n", "budgets[0]: no limit"},
		{"tworoles.yaml", "budgets:\n  - role: total\n    module: a\n    min_ratio: 1\n", "exactly one of role, module, layer"},
		{"reason.yaml", "waivers:\n  - check: dead-bytes\n", "needs a reason"},
		{"unknown.toml", "[[budgets]]\nrole = \"total\"\nmax_bits = 9\n", `line 3: unknown key "budgets.max_bits"`},
		{"role.toml", "[[budgets]]\nrole = \"encoded\"\n", `line 2, column 8: unknown role "encoded"`},
		{"syntax.toml", "[[budgets]\n", "line 1"},
		{"config.json", "{}", "must be .yaml, .yml or .toml"},
	} {
		p := filepath.Join(dir, c.name)
		os.WriteFile(p, []byte(c.body), 0o644)
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming the file and containing %q", c.name, err, c.want)
		}
	}
	// A config of nothing would pass any model: refused, saying why.
	for name, body := range map[string]string{"empty.yaml": "", "blank.toml": "\n \n", "comments.yaml": "# budgets: later\n"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		want := "empty file: no budgets"
		if name == "comments.yaml" {
			want = "only comments"
		}
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func rep(bitsEncoded float64, findings ...report.Finding) *report.Report {
	mod := func(s string) *string { return &s }
	return &report.Report{
		Roles: []report.Group{
			{Role: "encoded_linear", Params: 1000, StoredBytes: int64(bitsEncoded * 1000 / 8), BitsPerWeight: bitsEncoded, Ratio: 32 / bitsEncoded},
			{Role: "embedding", Params: 100, StoredBytes: 400, BitsPerWeight: 32, Ratio: 1},
		},
		Totals:   report.Group{Role: "total", StoredBytes: int64(bitsEncoded*1000/8) + 400},
		Modules:  []report.Group{{Module: mod("blocks.0.attn.v"), StoredBytes: 1000, Ratio: 1}, {Module: mod("blocks.1.attn.v"), StoredBytes: 250, Ratio: 4}},
		Findings: findings,
		Tensors: []report.Tensor{
			{Name: "blocks.0.attn.v.weight_qins", Module: "blocks.0.attn.v", Role: "encoded_linear", StoredBytes: 1000},
			{Name: "blocks.1.attn.v.weight_qins", Module: "blocks.1.attn.v", Role: "encoded_linear", StoredBytes: 250},
		},
	}
}

func statuses(g *report.Gate) string {
	var s []string
	for _, o := range g.Outcomes {
		s = append(s, o.Check+":"+o.Subject+":"+string(o.Status))
	}
	return strings.Join(s, " ")
}

func TestBudgets(t *testing.T) {
	day := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cfg := &Config{Budgets: []Budget{
		{Role: &Role{"encoded_linear"}, MaxBitsPerWeight: ptr(9.0)},
		{Module: &Glob{"blocks.*.attn.v"}, MinRatio: ptr(2.0)},
	}}
	g := Evaluate(rep(32), cfg, nil, nil, day)
	want := "max_bits_per_weight:role encoded_linear:fail min_ratio:module blocks.0.attn.v:fail min_ratio:module blocks.1.attn.v:pass"
	if statuses(g) != want || g.Passed {
		t.Errorf("float32: %s", statuses(g))
	}
	cfg.Budgets = cfg.Budgets[:1]
	if g := Evaluate(rep(8), cfg, nil, nil, day); !g.Passed {
		t.Errorf("uint8: %s", statuses(g))
	}
	// A budget on a role the model does not have fails.
	cfg.Budgets = []Budget{{Role: &Role{"optimizer_state"}, MaxStoredBytes: &Size{10}}}
	if g := Evaluate(rep(8), cfg, nil, nil, day); g.Passed || !strings.Contains(g.Outcomes[0].Message, "matches no tensors") {
		t.Errorf("missing role: %+v", g.Outcomes)
	}
}

func TestForbiddenFindingsAndWaivers(t *testing.T) {
	f := report.Finding{Kind: "encoded-but-uncompressed", Severity: "error", Module: "blocks.0.attn.v", Bytes: 1000}
	cfg := &Config{ForbidFindings: []FindingKind{{"encoded-but-uncompressed"}}}
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	if g := Evaluate(rep(32, f), cfg, nil, nil, day); g.Passed || g.Outcomes[0].Status != "fail" {
		t.Errorf("forbidden: %s", statuses(g))
	}
	if g := Evaluate(rep(8), cfg, nil, nil, day); !g.Passed || g.Outcomes[0].Status != "pass" {
		t.Errorf("clean: %s", statuses(g))
	}
	cfg.Waivers = []Waiver{{Check: "encoded-but-uncompressed", Module: &Glob{"blocks.0.*"}, Reason: "ticket 42", Expires: &Date{time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}}}
	g := Evaluate(rep(32, f), cfg, nil, nil, day.Add(23*time.Hour))
	if !g.Passed || g.Outcomes[0].Status != "waived" || g.Outcomes[0].Waiver != "ticket 42" {
		t.Errorf("waived on its last day: %+v", g.Outcomes)
	}
	g = Evaluate(rep(32, f), cfg, nil, nil, day.Add(24*time.Hour))
	if g.Passed || statuses(g) != "encoded-but-uncompressed:module blocks.0.attn.v:fail waiver_expired:waiver encoded-but-uncompressed on blocks.0.*:fail" ||
		!strings.Contains(g.Outcomes[1].Message, "expired on 2026-11-25") {
		t.Errorf("expired: %s %+v", statuses(g), g.Outcomes)
	}
}

func TestAgainst(t *testing.T) {
	base := rep(8)
	grown := rep(8)
	grown.Tensors[0].StoredBytes = 1020 // +2%
	grown.Tensors[1].StoredBytes = 240  // the total grows 0.8%
	a := &Against{Report: "base.json", MaxGrowth: &Percent{1}}
	cfg := &Config{Against: a}
	day := time.Now()
	g := Evaluate(grown, cfg, base, nil, day)
	if g.Passed || statuses(g) != "max_growth:module blocks.0.attn.v:fail max_growth:total:pass" {
		t.Errorf("2%% growth against 1%%: %s", statuses(g))
	}
	a.IgnoreBelow = &Size{64}
	if g := Evaluate(grown, cfg, base, nil, day); !g.Passed {
		t.Errorf("20 bytes below a 64-byte floor: %s", statuses(g))
	}
	if !Worse(grown, base, &Against{}) || Worse(base, base, nil) || Worse(grown, base, a) {
		t.Error("Worse")
	}
	// An error finding the baseline did not have fails.
	f := report.Finding{Kind: "duplicate-weight", Severity: "error", Module: "blocks.1.attn.v"}
	if g := Evaluate(rep(8, f), cfg, base, nil, day); g.Passed || !strings.Contains(statuses(g), "new_finding:module blocks.1.attn.v:fail") {
		t.Errorf("new finding: %s", statuses(g))
	}
}

func TestHeap(t *testing.T) {
	h := &Heap{InUseBytes: 19_275_920, StoredBytes: 9_838_736, Comparisons: []report.Comparison{
		{Subject: "heap in use vs stored + decoded float32", Verdict: accounting.HoldsDecodedCopies, MeasuredBytes: 19_275_920, ExpectedBytes: 19_275_920},
	}}
	day := time.Now()
	if g := Evaluate(rep(8), &Config{}, nil, h, day); !g.Passed || statuses(g) != "heap_verdict:heap in use vs stored + decoded float32:pass" {
		t.Errorf("explained: %s", statuses(g))
	}
	g := Evaluate(rep(8), &Config{MaxHeapOverStored: ptr(1.1)}, nil, h, day)
	if g.Passed || g.Outcomes[1].Check != "max_heap_over_stored" || g.Outcomes[1].Status != "fail" || fmt.Sprintf("%.2f", g.Outcomes[1].Actual) != "1.96" {
		t.Errorf("over budget: %+v", g.Outcomes)
	}
	h.Comparisons = append(h.Comparisons, report.Comparison{Subject: "claim weights=0.41MB", Verdict: accounting.ClaimDisagrees})
	if g := Evaluate(rep(8), &Config{}, nil, h, day); g.Passed {
		t.Errorf("a disagreeing claim passed: %s", statuses(g))
	}
}

// TestErrorFindingsFailByDefault: an error finding fails the gate even when
// no budget names it; allow_findings and waivers let it pass with their
// reason, and a warning never fails.
func TestErrorFindingsFailByDefault(t *testing.T) {
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	bad := report.Finding{Kind: "encoded-but-uncompressed", Severity: "error", Module: "blocks.0.attn.v", Bytes: 1000}
	warn := report.Finding{Kind: "sidecar-overhead", Severity: "warning", Module: "blocks.0.attn.v", Bytes: 10}
	budget := []Budget{{Role: &Role{"embedding"}, MinRatio: ptr(0.5)}}
	if g := Evaluate(rep(32, bad, warn), &Config{Budgets: budget}, nil, nil, day); g.Passed ||
		statuses(g) != "min_ratio:role embedding:pass encoded-but-uncompressed:module blocks.0.attn.v:fail" {
		t.Errorf("under a passing budget: %s", statuses(g))
	}
	if g := Evaluate(rep(32, warn), &Config{}, nil, nil, day); !g.Passed || statuses(g) != "error_findings:model:pass" {
		t.Errorf("warnings only: %s", statuses(g))
	}
	allow := &Config{AllowFindings: []AllowFinding{{Kind: FindingKind{"encoded-but-uncompressed"}, Reason: "float path on purpose"}}}
	g := Evaluate(rep(32, bad), allow, nil, nil, day)
	if !g.Passed || g.Outcomes[0].Status != "waived" || g.Outcomes[0].Waiver != "float path on purpose" {
		t.Errorf("allowed: %+v", g.Outcomes)
	}
	waive := &Config{Waivers: []Waiver{{Check: "encoded-but-uncompressed", Module: &Glob{"blocks.1.*"}, Reason: "other layer"}}}
	if g := Evaluate(rep(32, bad), waive, nil, nil, day); g.Passed {
		t.Errorf("a waiver on another module must not cover it: %s", statuses(g))
	}
	if err := (&Config{AllowFindings: []AllowFinding{{Kind: FindingKind{"dead-bytes"}}}}).Validate(); err == nil || !strings.Contains(err.Error(), "needs a reason") {
		t.Errorf("allow without a reason: %v", err)
	}
}
