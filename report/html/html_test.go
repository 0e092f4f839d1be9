package html_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/loaders"
	"github.com/qinsaudit/qinsaudit/loaders/gguf/gguftest"
	"github.com/qinsaudit/qinsaudit/report"
	htmlreport "github.com/qinsaudit/qinsaudit/report/html"
	"github.com/qinsaudit/qinsaudit/report/html/htmltest"
)

const toy = "../../fixtures/torch/toy_qins_log.pt"

func audit(t testing.TB, paths ...string) *report.Report {
	t.Helper()
	rep, err := auditPath(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func auditPath(paths ...string) (*report.Report, error) {
	m, err := loaders.Open(paths...)
	if err != nil {
		return nil, err
	}
	res, err := accounting.Audit(m, accounting.Options{})
	if err != nil {
		return nil, err
	}
	return report.New(res), nil
}

func page(t testing.TB, rep *report.Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := htmlreport.Write(&buf, rep); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// manyTensors writes a GGUF llama of blocks*9 tensors and audits it.
func manyTensors(t testing.TB, blocks int) *report.Report {
	t.Helper()
	path := filepath.Join(t.TempDir(), "many.gguf")
	if err := os.WriteFile(path, gguftest.ManyTensors(blocks), 0o644); err != nil {
		t.Fatal(err)
	}
	return audit(t, path)
}

// drawsEvery checks that each listed domain draws every tensor of positive
// size in it, and no other.
func drawsEvery(t *testing.T, p *htmltest.Page, rep *report.Report) {
	t.Helper()
	for _, d := range []struct {
		key  string
		size func(report.Tensor) int64
	}{
		{"baseline", func(x report.Tensor) int64 { return x.BaselineBytes }},
		{"theoretical", func(x report.Tensor) int64 {
			if x.Tied {
				return 0
			}
			return x.TheoreticalBytes
		}},
		{"stored", func(x report.Tensor) int64 { return x.StoredBytes }},
	} {
		drawn, ok := p.Domains[d.key]
		if !ok {
			t.Errorf("no %s domain", d.key)
			continue
		}
		for i, x := range rep.Tensors {
			if want := d.size(x) > 0 && x.Role != "optimizer_state"; drawn[i] != want {
				t.Errorf("%s domain: tensor %q drawn %v, want %v", d.key, x.Name, drawn[i], want)
			}
		}
	}
}

func TestToyPage(t *testing.T) {
	rep := audit(t, toy)
	p := htmltest.Check(t, page(t, rep))
	drawsEvery(t, p, rep)
	// Files, roles and totals, findings, bars: dozens of figures.
	if p.Figures < 60 {
		t.Errorf("only %d figures carry their JSON path", p.Figures)
	}
	if got := p.Largest["stored"]; got != "report.tensors.0" || rep.Tensors[0].Name != "embed.weight" {
		t.Errorf("largest stored rectangle is %s, want the embedding (report.tensors.0)", got)
	}
	if len(p.Domains) != 3 {
		t.Errorf("domains %v, want baseline, theoretical and stored", len(p.Domains))
	}
}

func TestThousandTensors(t *testing.T) {
	rep := manyTensors(t, 112)
	if len(rep.Tensors) < 1000 {
		t.Fatalf("%d tensors", len(rep.Tensors))
	}
	p := htmltest.Check(t, page(t, rep))
	drawsEvery(t, p, rep)
}

func TestDiffPage(t *testing.T) {
	old, new := audit(t, "../../fixtures/torch/toy_fp32.pt"), audit(t, toy)
	d := report.NewDiff(old, new, "module")
	var buf bytes.Buffer
	if err := htmlreport.WriteDiff(&buf, d, old, new); err != nil {
		t.Fatal(err)
	}
	p := htmltest.Check(t, buf.Bytes())
	if p.Levels == nil {
		t.Fatal("no diffs by level embedded")
	}
	if p.Figures < 100 {
		t.Errorf("only %d figures carry their JSON path", p.Figures)
	}
	// The new model's tensors that the old lacks are marked NEW, and every
	// tensor of either side is drawn in its domain.
	text := htmltest.Text(p.Root)
	if !strings.Contains(text, "NEW") || !strings.Contains(text, "DEL") {
		t.Error("no NEW or DEL marks in a diff of an fp32 and an encoded model")
	}
	tensorRows := report.NewDiff(old, new, "tensor").Rows
	for i, r := range tensorRows {
		if got, want := p.Domains["new"][i], r.NewBytes > 0; got != want {
			t.Errorf("new domain: %s drawn %v, want %v", r.Key, got, want)
		}
		if got, want := p.Domains["old"][i], r.OldBytes > 0; got != want {
			t.Errorf("old domain: %s drawn %v, want %v", r.Key, got, want)
		}
	}
}

// TestHostileNames renders tensor and module names that would be markup,
// script or attribute breakouts and checks they stay text.
func TestHostileNames(t *testing.T) {
	rep := audit(t, toy)
	hostile := []string{
		`</script><script>alert(1)</script>`,
		`"><img src=x onerror=alert(2)>`,
		`' onmouseover='alert(3)`,
		"<!--\u2028-->&amp;",
	}
	for i := range rep.Tensors {
		h := hostile[i%len(hostile)]
		rep.Tensors[i].Name = h + rep.Tensors[i].Name
		rep.Tensors[i].Module = h + rep.Tensors[i].Module
		rep.Tensors[i].Layer = h + rep.Tensors[i].Layer
	}
	for i := range rep.Findings {
		rep.Findings[i].Module = hostile[i%len(hostile)]
		rep.Findings[i].Message = hostile[(i+1)%len(hostile)]
	}
	rep.Files[0].Path = hostile[0]
	data := page(t, rep)
	p := htmltest.Check(t, data)
	if n := len(htmltest.FindAll(p.Root, "script")); n != 2 {
		t.Errorf("%d script elements, want the JSON and the page script", n)
	}
	if n := len(htmltest.FindAll(p.Root, "img")); n != 0 {
		t.Errorf("%d img elements injected", n)
	}
	var onattr []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") {
				onattr = append(onattr, a.Key)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(p.Root)
	if len(onattr) > 0 {
		t.Errorf("event handler attributes injected: %v", onattr)
	}
	// The names are text: in the tooltips and in the JSON, unchanged.
	text := htmltest.Text(p.Root)
	for _, h := range hostile {
		if !strings.Contains(text, h) {
			t.Errorf("name %q does not render as text", h)
		}
	}
	tensors := p.Report.(map[string]any)["tensors"].([]any)
	for i, x := range tensors {
		if got := x.(map[string]any)["name"]; got != rep.Tensors[i].Name {
			t.Errorf("embedded JSON name %q, want %q", got, rep.Tensors[i].Name)
		}
	}
	if bytes.Contains(data, []byte("<img")) || bytes.Contains(data, []byte("</script><script>alert")) {
		t.Error("raw markup from a name in the page")
	}

	// The diff page too: names in its tables, its treemap and both JSONs.
	old := audit(t, "../../fixtures/torch/toy_fp32.pt")
	var buf bytes.Buffer
	if err := htmlreport.WriteDiff(&buf, report.NewDiff(old, rep, "tensor"), old, rep); err != nil {
		t.Fatal(err)
	}
	dp := htmltest.Check(t, buf.Bytes())
	if n := len(htmltest.FindAll(dp.Root, "script")); n != 3 {
		t.Errorf("diff page: %d script elements, want two JSONs and the page script", n)
	}
	if n := len(htmltest.FindAll(dp.Root, "img")); n != 0 {
		t.Errorf("diff page: %d img elements injected", n)
	}
	if !strings.Contains(htmltest.Text(dp.Root), hostile[1]) {
		t.Error("diff page: a hostile name does not render as text")
	}
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) { r.errs = append(r.errs, format) }
func (r *recorder) Fatalf(format string, args ...any) { r.errs = append(r.errs, format); panic(r) }
func (r *recorder) Fatal(args ...any)                 { r.errs = append(r.errs, "fatal"); panic(r) }
func (r *recorder) Helper()                           {}

func check(t *testing.T, data []byte) (errs []string) {
	r := &recorder{TB: t}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
		errs = r.errs
	}()
	htmltest.Check(r, data)
	return r.errs
}

// TestCheckerFails makes sure the checks above can fail: a figure off by
// a byte, a tensor drawn twice or left out, are caught.
func TestCheckerFails(t *testing.T) {
	data := page(t, audit(t, toy))
	if errs := check(t, data); len(errs) != 0 {
		t.Fatalf("clean page fails: %v", errs)
	}
	for name, edit := range map[string]func([]byte) []byte{
		"exact figure": func(b []byte) []byte {
			return bytes.Replace(b, []byte(">9,838,736 B<"), []byte(">9,838,737 B<"), 1)
		},
		"rounded figure": func(b []byte) []byte { return bytes.Replace(b, []byte(">9.38 MiB<"), []byte(">9.48 MiB<"), 1) },
		"count":          func(b []byte) []byte { return bytes.Replace(b, []byte(">2,359,296<"), []byte(">2,359,297<"), 1) },
		"tensor twice": func(b []byte) []byte {
			return bytes.Replace(b, []byte(`data-j="report.tensors.1"`), []byte(`data-j="report.tensors.2"`), 1)
		},
		"group sum": func(b []byte) []byte {
			return bytes.Replace(b, []byte(`data-s="5120000 5120000 5120000`), []byte(`data-s="5120000 5120000 5120001`), 1)
		},
	} {
		bad := edit(data)
		if bytes.Equal(bad, data) {
			t.Errorf("%s: edit matched nothing", name)
			continue
		}
		if errs := check(t, bad); len(errs) == 0 {
			t.Errorf("%s: wrong page passes the checks", name)
		}
	}
}

// TestEmptyReport: a model without tensors, and one whose tensors are all
// optimizer state, still make a page.
func TestEmptyReport(t *testing.T) {
	empty := &report.Report{SchemaVersion: report.SchemaVersion, Tool: "qinsaudit", Baseline: "float32",
		Files: []report.File{}, Roles: []report.Group{}, Layers: []report.Group{}, Modules: []report.Group{},
		DTypes: []report.Group{}, Tensors: []report.Tensor{}, Findings: []report.Finding{}}
	htmltest.Check(t, page(t, empty))
	opt := *empty
	opt.Tensors = []report.Tensor{{Name: "state.0.exp_avg", DType: "float32", Shape: []int64{4}, Numel: 4, Role: "optimizer_state", StoredBytes: 16, BaselineBytes: 16, TheoreticalBytes: 16, Params: 4}}
	opt.Roles = []report.Group{{Role: "optimizer_state", Tensors: 1, Params: 4, BaselineBytes: 16, TheoreticalBytes: 16, StoredBytes: 16, Ratio: 1, BitsPerWeight: 32}}
	p := htmltest.Check(t, page(t, &opt))
	if len(p.Domains["stored"]) != 0 {
		t.Error("optimizer state drawn in the model's treemap")
	}
	var buf bytes.Buffer
	if err := htmlreport.WriteDiff(&buf, report.NewDiff(empty, &opt, "role"), empty, &opt); err != nil {
		t.Fatal(err)
	}
	htmltest.Check(t, buf.Bytes())
}

// TestSummaryRefused: a summary report, which holds no tensors or modules,
// is refused, not drawn as a model of none.
func TestSummaryRefused(t *testing.T) {
	m, err := loaders.Open(toy)
	if err != nil {
		t.Fatal(err)
	}
	res, err := accounting.Audit(m, accounting.Options{Summary: true})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := htmlreport.Write(&buf, report.New(res)); !errors.Is(err, report.ErrSummary) || buf.Len() != 0 {
		t.Errorf("Write of a summary report: %v and %d bytes, want ErrSummary and none", err, buf.Len())
	}
}
