package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/report/html/htmltest"
)

// TestFormatHTML: every reporting command writes its page with --format
// html, whatever the exit code, and every figure on it agrees with the JSON
// it embeds.
func TestFormatHTML(t *testing.T) {
	toy := filepath.Join(fixtures, "torch/toy_qins_log.pt")
	heap := filepath.Join(fixtures, "heap/tcmalloc-cache-after-load.heap.gz")
	base := filepath.Join(fixtures, "heap/tcmalloc-cache-after-import.heap.gz")
	for _, c := range []struct {
		name    string
		args    []string
		code    int
		domains []string
		want    []string // ids of sections the page has
	}{
		{"audit", []string{"audit", toy}, exitOK, []string{"baseline", "theoretical", "stored"}, []string{"roles", "findings", "bars"}},
		{"diff", []string{"diff", filepath.Join(fixtures, "torch/toy_fp32.pt"), toy, "--by", "module"}, exitOK, []string{"new", "old"}, []string{"by-module", "by-role", "by-layer"}},
		{"check", []string{"check", filepath.Join(fixtures, "torch/qins_rational_f32.pt"), "--config", filepath.Join(fixtures, "ci/qinsaudit.yaml")}, exitGate, []string{"stored"}, []string{"gate", "roles"}},
		{"decode", []string{"decode", toy}, exitOK, []string{"stored", "measured"}, []string{"phases", "comparisons", "phase-chart"}},
		{"crosscheck", []string{"crosscheck", toy, "--heap", heap, "--base", base, "--claim", "weights=0.41MB"}, exitGate, []string{"stored", "measured"}, []string{"comparisons", "comparison-chart"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := runCmd(t, append(c.args, "--format", "html")...)
			if code != c.code {
				t.Fatalf("exit %d, want %d: %s", code, c.code, errOut)
			}
			p := htmltest.Check(t, []byte(out))
			if p.Figures < 20 {
				t.Errorf("only %d figures checked", p.Figures)
			}
			for _, d := range c.domains {
				if len(p.Domains[d]) == 0 && d != "measured" {
					t.Errorf("domain %s draws no tensor", d)
				}
				if _, ok := p.Domains[d]; !ok {
					t.Errorf("no %s domain", d)
				}
			}
			for _, id := range c.want {
				if !strings.Contains(out, ` id="`+id+`"`) {
					t.Errorf("no section %q", id)
				}
			}
		})
	}
}
