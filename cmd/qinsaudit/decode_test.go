package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/decode"
	"github.com/qinsaudit/qinsaudit/report"
)

func decodeJSON(t *testing.T, wantCode int, args ...string) *report.Report {
	t.Helper()
	out, errOut, code := runCmd(t, append([]string{"decode", "--format", "json"}, args...)...)
	if code != wantCode {
		t.Fatalf("decode %v: exit %d, want %d: %s", args, code, wantCode, errOut)
	}
	rep, err := report.ReadJSON(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func verdicts(rep *report.Report) map[string]accounting.Verdict {
	v := map[string]accounting.Verdict{}
	for _, c := range rep.Comparisons {
		v[c.Subject] = c.Verdict
	}
	return v
}

// TestDecodeToy is the acceptance on the seed's toy model: the
// stored tensors measure 9.38 MiB to the byte (plus allocator rounding); a
// pass that keeps its decoded copies peaks at about 19.3 MB, more than the
// fp32 model, and that is named as the cause; streaming peaks at stored
// plus the largest layer.
func TestDecodeToy(t *testing.T) {
	toy := filepath.Join(fixtures, "torch/toy_qins_log.pt")
	const (
		stored    = 9_838_736     // 5,120,000 embedding + 4,718,736 QINS linears
		rounding  = 36 * (16 - 4) // 36 float32 log_min/log_max in 16-byte slots
		decoded   = 2_359_296 * 4 // every linear at fp32
		layer     = decoded / 3   // one block
		fp32Model = 14_557_184    // toy_fp32.pt's stored bytes (13.9 MiB)
	)

	rep := decodeJSON(t, 0, "--cache", "--forward", toy)
	peak := rep.Comparisons[2]
	if peak.Verdict.String() != "runtime-holds-decoded-copies" || peak.MeasuredBytes != stored+rounding+decoded ||
		peak.ExpectedBytes != stored+layer || !strings.Contains(peak.Message, "--cache") {
		t.Errorf("cache peak: %+v", peak)
	}
	if peak.MeasuredBytes < 19_200_000 || peak.MeasuredBytes > 19_400_000 || peak.MeasuredBytes <= fp32Model {
		t.Errorf("cache peak %d bytes: want about 19.3 MB, more than the fp32 model's %d", peak.MeasuredBytes, fp32Model)
	}
	load := rep.Comparisons[0]
	if load.Verdict.String() != "consistent" || load.MeasuredBytes != stored+rounding || load.ExpectedBytes != stored || load.ToleranceBytes != rounding {
		t.Errorf("stored after load: %+v", load)
	}
	want := []string{"after-load", "layer blocks.0", "layer blocks.1", "layer blocks.2", "after-decode", "end"}
	if len(rep.Phases) != len(want) {
		t.Fatalf("phases %+v", rep.Phases)
	}
	for i, p := range rep.Phases {
		if p.Phase != want[i] {
			t.Errorf("phase %d is %q, want %q", i, p.Phase, want[i])
		}
	}
	if d := rep.Phases[2].ByRole["decoded"]; d != 2*layer {
		t.Errorf("decoded after two blocks: %d, want %d", d, 2*layer)
	}

	rep = decodeJSON(t, 0, "--stream", toy)
	for subject, v := range verdicts(rep) {
		if v.String() != "consistent" {
			t.Errorf("stream: %s: %s", subject, v)
		}
	}
	if p := rep.Comparisons[2]; p.MeasuredBytes != stored+rounding+layer {
		t.Errorf("stream peak: %+v", p)
	}
}

// TestDecodeSchemes runs a pass over each scheme's fixture: every
// comparison is consistent, and a forward pass adds activations.
func TestDecodeSchemes(t *testing.T) {
	for _, f := range []string{"torch/qins_rational_u8.pt", "torch/qins_rational_f32.pt", "torch/dynamic_qint8_bias.pt",
		"torch/gptq_small.pt", "torch/small_bf16.pt", "torch/tied_head.pt", "torch/nested_checkpoint.pt",
		"safetensors/qins_log_small.safetensors", "safetensors/sharded"} {
		t.Run(f, func(t *testing.T) {
			// --widen: the float16/bfloat16 weights are decoded too, and
			// compared.
			rep := decodeJSON(t, 0, "--forward", "--batch", "3", "--widen", filepath.Join(fixtures, f))
			for subject, v := range verdicts(rep) {
				// A model with nothing to decode (float32 throughout) has no
				// decoded figure: not-applicable, never consistent.
				if v != accounting.Consistent && !(v == accounting.NotApplicable && strings.HasPrefix(subject, "decoded weights vs fp32") &&
					(strings.Contains(f, "tied_head") || strings.Contains(f, "nested"))) {
					t.Errorf("%s: %s", subject, v)
				}
			}
			if len(rep.Comparisons) != 4 {
				t.Errorf("%d comparisons", len(rep.Comparisons))
			}
		})
	}
}

func TestDecodeBadInput(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"decode"}, exitUsage, "no model files given"},
		{[]string{"decode", "--cache", "--stream", "x"}, exitUsage, "--cache and --stream exclude each other"},
		{[]string{"decode", "--batch", "0", "x"}, exitUsage, "--batch must be from 1 to 4096, not 0"},
		{[]string{"decode", "--batch", "100000", "x"}, exitUsage, "--batch must be from 1 to 4096"},
		{[]string{"decode", "--alpha", "-1", "x"}, exitUsage, "--alpha must be a positive number"},
		{[]string{"decode", "--max-heap-over-stored", "-2", "x"}, exitUsage, "--max-heap-over-stored"},
		{[]string{"decode", filepath.Join(dir, "missing.pt")}, exitBadInput, "no such file"},
		{[]string{"decode", filepath.Join(fixtures, "torch/truncated.pt")}, exitBadInput, "truncated.pt"},
		{[]string{"decode", "-o", filepath.Join(blocker, "sub"), filepath.Join(fixtures, "torch/small_fp32.pt")}, exitBadInput, "not a directory"},
	} {
		out, errOut, code := runCmd(t, c.args...)
		if code != c.code || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", c.args, code, out, errOut, c.code, c.want)
		}
	}
}

// TestDecodeBudget: holding decoded copies is explained, and fails only
// under a budget the user sets; the report says so, as crosscheck's does.
func TestDecodeBudget(t *testing.T) {
	toy := filepath.Join(fixtures, "torch/toy_qins_log.pt")
	const over = "the peak of the weights in use (layer blocks.2) is 1.96x the stored weights (18.38 MiB of 9.38 MiB), over the budget of 1.1x"
	_, errOut, code := runCmd(t, "decode", "--cache", "--max-heap-over-stored", "1.1", toy)
	if code != exitGate || !strings.Contains(errOut, over+" (--max-heap-over-stored)") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	rep := decodeJSON(t, exitGate, "--cache", "--max-heap-over-stored", "1.1", toy)
	var found bool
	for _, f := range rep.Findings {
		found = found || f.Kind == "heap-over-budget" && f.Severity == "error" && f.Message == over
	}
	if !found {
		t.Errorf("no heap-over-budget finding in the report: %+v", rep.Findings)
	}
	if _, errOut, code := runCmd(t, "decode", "--stream", "--max-heap-over-stored", "1.5", toy); code != 0 {
		t.Errorf("stream under budget: exit %d, stderr %q", code, errOut)
	}
}

// TestDecodeNotDecoded: the weights the pass cannot decode (GGUF block
// types) are findings of the report, not only lines on stderr.
func TestDecodeNotDecoded(t *testing.T) {
	rep := decodeJSON(t, exitOK, filepath.Join(fixtures, "gguf/tiny-q4_k_m.gguf"))
	var n int
	for _, f := range rep.Findings {
		if f.Kind == "not-decoded" {
			n++
			if f.Severity != "warning" || len(f.Tensors) != 1 || f.Bytes <= 0 || !strings.Contains(f.Message, "not decoded (no decoder for this scheme)") {
				t.Errorf("finding %+v", f)
			}
		}
	}
	if n != 7 {
		t.Errorf("%d not-decoded findings, want the 7 k-quant linears: %+v", n, rep.Findings)
	}
}

// TestDecodeCrosscheckOwnProfile: crosscheck explains the profile decode
// --stream writes: the stored weights plus one buffer for the largest layer
// (not the largest module).
func TestDecodeCrosscheckOwnProfile(t *testing.T) {
	dir := t.TempDir()
	toy := filepath.Join(fixtures, "torch/toy_qins_log.pt")
	decodeJSON(t, exitOK, "--stream", "-o", dir, toy)
	rep, _ := crosscheckJSON(t, exitOK, "--heap", filepath.Join(dir, "05-after-decode.pb.gz"), "--focus", `decode\.alloc`)
	c := rep.Comparisons[0]
	if c.Verdict.String() != "runtime-holds-decoded-copies" || c.ExpectedBytes != 9_838_736+3*1<<20 || !strings.Contains(c.Message, "blocks.0") {
		t.Errorf("%+v", c)
	}
}

// TestDecodeProfiles: the profiles decode writes open with pprof's parser,
// and attributing the committed ones in fixtures/decode (see its README)
// gives what a fresh run measures.
func TestDecodeProfiles(t *testing.T) {
	dir := t.TempDir()
	rep := decodeJSON(t, 0, "--cache", "--forward", "-o", dir, filepath.Join(fixtures, "torch/toy_qins_log.pt"))
	fresh, _ := filepath.Glob(filepath.Join(dir, "*.pb.gz"))
	committed, _ := filepath.Glob(filepath.Join(fixtures, "decode", "*.pb.gz"))
	if len(fresh) != 6 || len(committed) != len(fresh) {
		t.Fatalf("%d profiles written, %d committed; want 6", len(fresh), len(committed))
	}
	for i := range fresh {
		if filepath.Base(fresh[i]) != filepath.Base(committed[i]) {
			t.Errorf("profile %d: wrote %s, committed %s", i, filepath.Base(fresh[i]), filepath.Base(committed[i]))
		}
		a, b := attribute(t, fresh[i]), attribute(t, committed[i])
		for _, k := range decode.SiteKeys() {
			if a[k] != b[k] || a[k] != rep.Phases[i].ByRole[k] {
				t.Errorf("%s: %s in use %d, the report says %d, the committed profile has %d",
					filepath.Base(fresh[i]), k, a[k], rep.Phases[i].ByRole[k], b[k])
			}
		}
	}
}

func attribute(t *testing.T, path string) map[string]int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// As heapsnap.Recorder attributes the records: the first function of
	// each stack, leaf first, that is a site.
	inuse := -1
	for i, st := range p.SampleType {
		if st.Type == "inuse_space" {
			inuse = i
		}
	}
	if inuse < 0 {
		t.Fatalf("%s: no inuse_space", path)
	}
	by := map[string]int64{}
	for _, s := range p.Sample {
	sample:
		for _, loc := range s.Location {
			for _, line := range loc.Line {
				if key, ok := decode.Site(line.Function.Name); ok {
					by[key] += s.Value[inuse]
					break sample
				}
			}
		}
	}
	return by
}

// TestDecodeNothingDecoded: a bfloat16 model held as stored decodes nothing:
// that comparison is not-applicable (never consistent), and the peak says
// its policy.
func TestDecodeNothingDecoded(t *testing.T) {
	rep := decodeJSON(t, 0, filepath.Join(fixtures, "torch/small_bf16.pt"))
	var na, peak bool
	for _, c := range rep.Comparisons {
		if strings.HasPrefix(c.Subject, "decoded weights vs fp32") {
			na = c.Verdict == accounting.NotApplicable && strings.Contains(c.Message, "--widen")
		}
		if strings.HasPrefix(c.Subject, "peak") {
			peak = strings.Contains(c.Subject, "stream, fp16/bf16 as stored")
		}
	}
	if !na || !peak {
		t.Errorf("comparisons %+v", rep.Comparisons)
	}
}
