package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/report"
)

const mib = 1 << 20

func role(t *testing.T, rep *report.Report, name string) report.Group {
	t.Helper()
	for _, g := range rep.Roles {
		if g.Role == name {
			return g
		}
	}
	t.Fatalf("no role %s", name)
	return report.Group{}
}

// TestSeedNumbers: the seed's toy model, from the real torch.save file,
// gives the seed's true numbers; the Phi-3.5-style float32 codec 1.00x.
func TestSeedNumbers(t *testing.T) {
	rep := auditJSON(t, filepath.Join(fixtures, "torch/toy_qins_log.pt"))
	lin := role(t, rep, "encoded_linear")
	if lin.Params != 2359296 || lin.BaselineBytes != 9*mib || lin.StoredBytes != 9*mib/2+18*8 ||
		fmt.Sprintf("%.2f %.2f", lin.Ratio, lin.BitsPerWeight) != "2.00 16.00" {
		t.Errorf("linear: %+v", lin)
	}
	emb := role(t, rep, "embedding")
	if emb.Params != 1280000 || emb.StoredBytes != 5120000 {
		t.Errorf("embedding: %+v", emb)
	}
	tot := rep.Totals
	if got := fmt.Sprintf("%.2f %.2f %.2f", float64(tot.BaselineBytes)/mib, float64(tot.StoredBytes)/mib, tot.Ratio); got != "13.88 9.38 1.48" {
		t.Errorf("total MiB baseline, stored, ratio = %s", got)
	}
	if rep.Files[0].Format != "pytorch-zip" || rep.Files[0].OverheadBytes != rep.Files[0].SizeBytes-tot.StoredBytes {
		t.Errorf("file: %+v", rep.Files[0])
	}

	phi := auditJSON(t, filepath.Join(fixtures, "torch/qins_rational_f32.pt"))
	if lin := role(t, phi, "encoded_linear"); fmt.Sprintf("%.2f", lin.Ratio) != "1.00" {
		t.Errorf("rational float32 ratio %.4f", lin.Ratio)
	}
	n := 0
	for _, f := range phi.Findings {
		if f.Kind == "encoded-but-uncompressed" {
			n++
		}
	}
	if n != 12 {
		t.Errorf("%d encoded-but-uncompressed findings, want one per linear (12)", n)
	}
}

// TestFixturesAgreeWithTorch: every torch fixture's tensors, as torch.load
// saw them (fixtures/torch/expected.json), are found with the same stored
// bytes, whatever the container: state_dict, legacy, whole module,
// checkpoint.
func TestFixturesAgreeWithTorch(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(fixtures, "torch/expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var expected struct {
		Files map[string]struct {
			Format      string `json:"format"`
			StoredBytes int64  `json:"stored_bytes"`
			Tensors     []struct {
				Name string `json:"name"`
			} `json:"tensors"`
		} `json:"files"`
	}
	if err := json.Unmarshal(data, &expected); err != nil {
		t.Fatal(err)
	}
	if len(expected.Files) < 15 {
		t.Fatalf("expected.json lists %d files", len(expected.Files))
	}
	for name, want := range expected.Files {
		if want.Format == "invalid" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			rep := auditJSON(t, filepath.Join(fixtures, "torch", name))
			f := rep.Files[0]
			if f.Format != want.Format || f.StoredBytes != want.StoredBytes || int(f.Tensors) != len(want.Tensors) {
				t.Errorf("%s %d tensors, %d stored; torch: %s %d tensors, %d stored", f.Format, f.Tensors, f.StoredBytes, want.Format, len(want.Tensors), want.StoredBytes)
			}
		})
	}
}

// TestGateAcceptance: the budgets of issue 4 on the bundled fixtures.
func TestGateAcceptance(t *testing.T) {
	cfg := filepath.Join(fixtures, "ci/qinsaudit.yaml")
	f32, u8 := filepath.Join(fixtures, "torch/qins_rational_f32.pt"), filepath.Join(fixtures, "torch/qins_rational_u8.pt")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"check", f32, "--max-bits-per-weight", "encoded_linear=9"}, exitGate, "FAIL    max_bits_per_weight"},
		{[]string{"check", u8, "--max-bits-per-weight", "encoded_linear=9"}, exitOK, "gate: passed"},
		{[]string{"check", f32, "--forbid", "encoded-but-uncompressed"}, exitGate, "forbidden finding"},
		{[]string{"check", f32, "--config", cfg}, exitGate, "gate: FAILED"},
		{[]string{"check", u8, "--config", cfg}, exitOK, "gate: passed"},
		{[]string{"check", f32, "--config", filepath.Join(fixtures, "ci/expired-waiver.yaml"), "--wide"}, exitGate, "waiver for encoded-but-uncompressed (\"rational codec ships float32 until the uint8 path lands (QINS-12)\") expired on 2025-06-30"},
		// The gate decides the exit code whatever the format.
		{[]string{"check", f32, "--config", cfg, "--format", "json"}, exitGate, `"passed": false`},
		{[]string{"check", f32, "--config", cfg, "--format", "markdown"}, exitGate, "❌ fail"},
	} {
		out, errOut, code := runCmd(t, c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d (want %d), want %q in:\n%s%s", c.args, code, c.code, c.want, out, errOut)
		}
		if code == exitGate && !strings.Contains(errOut, "gate failed") {
			t.Errorf("%v: stderr %q", c.args, errOut)
		}
	}
}

func TestDiffAcceptance(t *testing.T) {
	fp32, qins := filepath.Join(fixtures, "torch/toy_fp32.pt"), filepath.Join(fixtures, "torch/toy_qins_log.pt")
	// By role, each side is its own audit: the float linears are
	// untouched bytes removed, the encoded ones added.
	byRole, _, _ := runCmd(t, "diff", fp32, qins, "--by", "role", "--format", "json")
	var r report.Diff
	if err := json.Unmarshal([]byte(byRole), &r); err != nil {
		t.Fatal(err)
	}
	for _, row := range r.Rows {
		if row.Key == "untouched" && (row.OldBytes != 9*mib || row.NewBytes != 0 || row.Status != "removed") ||
			row.Key == "encoded_linear" && (row.OldBytes != 0 || row.NewBytes != 9*mib/2+144 || row.Status != "added") {
			t.Errorf("by role: %+v", row)
		}
	}
	out, _, code := runCmd(t, "diff", fp32, qins, "--by", "role-matched", "--format", "json")
	if code != 0 {
		t.Fatal(code)
	}
	var d report.Diff
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	rows := map[string]report.DiffRow{}
	for _, r := range d.Rows {
		rows[r.Key] = r
	}
	if r := rows["encoded_linear"]; r.OldBytes != 9*mib || r.NewBytes != 9*mib/2+144 {
		t.Errorf("linear row %+v", r)
	}
	if d.Total.Key != "total" || fmt.Sprintf("%.1f %.1f", float64(d.Total.OldBytes)/mib, float64(d.Total.NewBytes)/mib) != "13.9 9.4" {
		t.Errorf("total %+v", d.Total)
	}
	// A report saved as JSON diffs the same as the model file.
	saved := filepath.Join(t.TempDir(), "old.json")
	js, _, _ := runCmd(t, "audit", "--format", "json", fp32)
	os.WriteFile(saved, []byte(js), 0o644)
	out2, _, _ := runCmd(t, "diff", saved, qins, "--by", "role-matched", "--format", "json")
	if out2 != strings.Replace(out, `"path": "`+fp32, `"path": "`+fp32, 1) {
		t.Errorf("diff from saved report differs:\n%s\n%s", out, out2)
	}
	// Self-diff: all zeros, every row "same".
	for _, by := range report.DiffByValues {
		out, _, _ := runCmd(t, "diff", qins, qins, "--by", by, "--format", "json")
		var d report.Diff
		json.Unmarshal([]byte(out), &d)
		for _, r := range append(d.Rows, d.Total) {
			if r.DeltaBytes != 0 || r.Status != "same" {
				t.Errorf("self-diff by %s: %+v", by, r)
			}
		}
	}
}

func TestBaselineRatchet(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.json")
	fp32, qins := filepath.Join(fixtures, "torch/toy_fp32.pt"), filepath.Join(fixtures, "torch/toy_qins_log.pt")
	// First run creates the baseline.
	if _, e, code := runCmd(t, "check", fp32, "--against", base, "--update-against"); code != 0 ||
		e != "qinsaudit: saved report "+base+" created: 19 tensors, 14557184 bytes stored\n" {
		t.Fatalf("bootstrap: %d %q", code, e)
	}
	// Shrinking passes and moves the baseline down.
	if _, e, code := runCmd(t, "check", qins, "--against", base, "--max-growth", "1%", "--update-against"); code != 0 ||
		e != "qinsaudit: saved report "+base+" updated: 73 tensors, 9838736 bytes stored\n" {
		t.Fatalf("shrink: %d %q", code, e)
	}
	saved, _ := os.ReadFile(base)
	if !strings.Contains(string(saved), "toy_qins_log.pt") || strings.Contains(string(saved), `"gate"`) {
		t.Error("baseline not moved to the smaller model, or saved with its gate")
	}
	// Growing back fails, and the baseline stays.
	out, e, code := runCmd(t, "check", fp32, "--against", base, "--max-growth", "1%", "--update-against")
	if code != exitGate || !strings.Contains(out, "max_growth") || !strings.Contains(e, "saved report "+base+" kept") {
		t.Errorf("growth: exit %d\n%s\n%s", code, out, e)
	}
	if again, _ := os.ReadFile(base); string(again) != string(saved) {
		t.Error("baseline changed after a regression")
	}
}

// The flags' former names still work, hidden from the help, and say
// what they are called now.
func TestDeprecatedFlagNames(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.json")
	fp32 := filepath.Join(fixtures, "torch/toy_fp32.pt")
	if _, e, code := runCmd(t, "check", fp32, "--against", base, "--update-baseline"); code != 0 ||
		!strings.Contains(e, "qinsaudit: --update-baseline is now called --update-against\n") || !strings.Contains(e, "saved report "+base+" created") {
		t.Fatalf("--update-baseline: exit %d, %q", code, e)
	}
	heap := func(name string) string { return filepath.Join(fixtures, "heap", name+".heap.gz") }
	model := filepath.Join(fixtures, "torch/toy_qins_log.pt")
	oldOut, oldErr, oldCode := runCmd(t, "crosscheck", model, "--heap", heap("tcmalloc-cache-after-load"), "--base", heap("tcmalloc-cache-after-import"), "--format", "json")
	newOut, _, newCode := runCmd(t, "crosscheck", model, "--heap", heap("tcmalloc-cache-after-load"), "--heap-base", heap("tcmalloc-cache-after-import"), "--format", "json")
	if oldCode != newCode || oldOut != newOut || !strings.Contains(oldErr, "qinsaudit: --base is now called --heap-base\n") {
		t.Fatalf("--base: exit %d (--heap-base %d), same output %v, stderr %q", oldCode, newCode, oldOut == newOut, oldErr)
	}
	for cmd, old := range map[string]string{"check": "--update-baseline", "crosscheck": "--base"} {
		if help, _, _ := runCmd(t, cmd, "--help"); strings.Contains(help, old+" ") {
			t.Errorf("%s --help lists the deprecated %s", cmd, old)
		}
	}
}

// TestCheckFindsConfig: without --config, check uses the qinsaudit.yaml of
// the working directory, and says which file it used.
func TestCheckFindsConfig(t *testing.T) {
	u8, err := filepath.Abs(filepath.Join(fixtures, "torch/qins_rational_u8.pt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	os.WriteFile("qinsaudit.yaml", []byte("budgets:\n  - role: encoded_linear\n    min_ratio: 5\n"), 0o644)
	out, _, code := runCmd(t, "check", u8, "--format", "json")
	if code != exitGate || !strings.Contains(out, `"config": "qinsaudit.yaml"`) || !strings.Contains(out, `"check": "min_ratio"`) {
		t.Errorf("exit %d:\n%s", code, out)
	}
	// --config still wins.
	os.WriteFile("other.toml", []byte("[[budgets]]\nrole = \"encoded_linear\"\nmin_ratio = 2\n"), 0o644)
	if _, e, code := runCmd(t, "check", u8, "--config", "other.toml"); code != exitOK {
		t.Errorf("--config other.toml: exit %d %s", code, e)
	}
}

// TestCheckCSVHasOutcomes: the gate's outcomes are a CSV section of their
// own, exact values unrounded.
func TestCheckCSVHasOutcomes(t *testing.T) {
	out, _, code := runCmd(t, "check", filepath.Join(fixtures, "torch/qins_rational_u8.pt"), "--min-ratio", "total=4", "--format", "csv")
	if code != exitGate || !strings.Contains(out, "\n\nstatus,check,subject,limit,actual,unit,waiver,message\nfail,min_ratio,total,4,3.3788563314831546,ratio,,") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

func TestCheckBadInput(t *testing.T) {
	dir := t.TempDir()
	notJSON := filepath.Join(dir, "base.json")
	os.WriteFile(notJSON, []byte("{ nope"), 0o644)
	future := filepath.Join(dir, "future.json")
	os.WriteFile(future, []byte(`{"tool": "qinsaudit", "schema_version": 7}`), 0o644)
	badCfg := filepath.Join(dir, "q.yaml")
	os.WriteFile(badCfg, []byte("budgets:\n  - role: encoded_linear\n    max_bits: 9\n"), 0o644)
	u8 := filepath.Join(fixtures, "torch/qins_rational_u8.pt")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"check", u8, "--against", notJSON}, "not a qinsaudit JSON report"},
		{[]string{"check", u8, "--against", future}, "schema_version 7 is not supported"},
		{[]string{"check", u8, "--config", badCfg}, `line 3: unknown key "max_bits"`},
		{[]string{"diff", notJSON, u8}, "base.json"},
	} {
		_, e, code := runCmd(t, c.args...)
		if code != exitBadInput || !strings.Contains(e, c.want) {
			t.Errorf("%v: exit %d, %q", c.args, code, e)
		}
	}
	for _, args := range [][]string{
		{"check", u8, "--max-bits-per-weight", "linear=9"},
		{"check", u8, "--allow-finding", "no-such-kind"},
		{"check", u8, "--max-growth", "1%"},
		{"check", u8, "--forbid", "x", "--max-bits-per-weight", "total=3"},
		{"diff", u8},
	} {
		if _, e, code := runCmd(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, %q", args, code, e)
		}
	}
}

// TestCheckFailsOnErrorFinding: check with no budget at all still fails on
// the float32 "QINS-encoded" model (an encoded-but-uncompressed error), and
// --allow-finding lets it pass with the reason in the outcome.
func TestCheckFailsOnErrorFinding(t *testing.T) {
	f32 := filepath.Join(fixtures, "torch/qins_rational_f32.pt")
	out, _, code := runCmd(t, "check", f32, "--min-ratio", "embedding=1")
	if code != exitGate || !strings.Contains(out, "error finding: encoded as qins-rational but stored as float32") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	out, _, code = runCmd(t, "check", f32, "--allow-finding", "encoded-but-uncompressed=measuring the float path")
	if code != exitOK || strings.Count(out, "(waived: measuring the float path)") != 12 {
		t.Errorf("allowed: exit %d:\n%s", code, out)
	}
	if _, _, code = runCmd(t, "check", filepath.Join(fixtures, "torch/qins_rational_u8.pt")); code != exitOK {
		t.Errorf("a clean model with no budget: exit %d", code)
	}
}

// TestTiedWholeModule: torch.save(model) of a tied model pickles the shared
// Parameter once; both names are reported, as state_dict() gives them
// (fixtures/torch/gen_tied.py printed them), and the storage is charged once.
func TestTiedWholeModule(t *testing.T) {
	rep := auditJSON(t, filepath.Join(fixtures, "torch/whole_module_tied.pt"))
	var names []string
	for _, x := range rep.Tensors {
		names = append(names, x.Name)
	}
	if strings.Join(names, " ") != "embed.weight proj.weight lm_head.weight" {
		t.Errorf("tensors %v", names)
	}
	if emb := role(t, rep, "embedding"); emb.Tensors != 2 || emb.StoredBytes != 25600 || emb.Params != 6400 {
		t.Errorf("embedding %+v", emb)
	}
}

// TestOlderReports: baselines saved by earlier versions stay readable and
// diff against a fresh audit as before.
func TestOlderReports(t *testing.T) {
	old := filepath.Join("testdata", "compat", "v1_toy_fp32.json")
	out, errOut, code := runCmd(t, "diff", old, filepath.Join(fixtures, "torch/toy_qins_log.pt"), "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var d report.Diff
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if d.Total.OldBytes != 14557184 || d.Total.NewBytes != 9838736 || d.Old[0].Path != "../../fixtures/torch/toy_fp32.pt" && d.Old[0].Path != "fixtures/torch/toy_fp32.pt" {
		t.Errorf("diff against the v1 report: %+v, old files %+v", d.Total, d.Old)
	}
	if _, _, code := runCmd(t, "check", filepath.Join(fixtures, "torch/toy_fp32.pt"), "--against", old, "--max-growth", "0%"); code != 0 {
		t.Errorf("the same model against its v1 report: exit %d", code)
	}
}

// TestCheckHeap: a heap profile joins the gate; keeping decoded copies is
// explained, so it fails only under a budget the user sets.
func TestCheckHeap(t *testing.T) {
	model := filepath.Join(fixtures, "torch/toy_qins_log.pt")
	heap := filepath.Join(fixtures, "heap/tcmalloc-import-cache-after-decode.heap.gz")
	if out, e, code := runCmd(t, "check", model, "--heap", heap); code != 0 || !strings.Contains(out, "runtime-holds-decoded-copies") {
		t.Errorf("explained heap: exit %d\n%s%s", code, out, e)
	}
	out, _, code := runCmd(t, "check", model, "--heap", heap, "--max-heap-over-stored", "1.1", "--format", "json")
	if code != exitGate || !strings.Contains(out, `"check": "max_heap_over_stored"`) || !strings.Contains(out, `"comparisons"`) {
		t.Errorf("over budget: exit %d\n%s", code, out)
	}
	cfg := filepath.Join(t.TempDir(), "q.yaml")
	os.WriteFile(cfg, []byte("max_heap_over_stored: 2.5\n"), 0o644)
	if _, e, code := runCmd(t, "check", model, "--heap", heap, "--config", cfg); code != 0 {
		t.Errorf("within a 2.5x budget from the config: exit %d %s", code, e)
	}
	if _, _, code := runCmd(t, "check", model, "--max-heap-over-stored", "2"); code != exitUsage {
		t.Errorf("budget without --heap: exit %d", code)
	}
}
