package report

import (
	"bytes"
	"errors"
	"testing"
)

// TestSummary: a summary report writes the text and Markdown tables that
// show neither tensors nor modules byte for byte as the whole report does,
// holds no tensors or modules, and every renderer that would show them
// refuses it rather than show empty lists.
func TestSummary(t *testing.T) {
	res := sampleResult(t)
	whole, sum := Build(res, Parts{}), Build(res, Parts{Summary: true})
	if whole.Summary() || !sum.Summary() {
		t.Fatalf("Summary(): whole report %v, summary report %v", whole.Summary(), sum.Summary())
	}
	if len(whole.Tensors) == 0 || len(whole.Modules) == 0 {
		t.Fatal("the sample has no tensors or modules: the test shows nothing")
	}
	if len(sum.Tensors) != 0 || len(sum.Modules) != 0 {
		t.Errorf("summary report holds %d tensors and %d modules", len(sum.Tensors), len(sum.Modules))
	}
	for _, opts := range []TextOptions{{}, {Bytes: true}, {By: ByRole}, {By: ByLayer, Sort: SortStored}, {By: ByDType, Width: 60}} {
		for _, w := range []struct {
			name  string
			write func(*bytes.Buffer, *Report, TextOptions) error
		}{
			{"text", func(b *bytes.Buffer, r *Report, o TextOptions) error { return WriteText(b, r, o) }},
			{"markdown", func(b *bytes.Buffer, r *Report, o TextOptions) error { return WriteMarkdown(b, r, o) }},
			{"csv", func(b *bytes.Buffer, r *Report, o TextOptions) error { return WriteCSV(b, r, o) }},
		} {
			var a, b bytes.Buffer
			if err := w.write(&a, whole, opts); err != nil {
				t.Fatal(err)
			}
			if err := w.write(&b, sum, opts); err != nil {
				t.Fatalf("%s %+v of a summary report: %v", w.name, opts, err)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Errorf("%s %+v: summary report writes\n%s\nthe whole report\n%s", w.name, opts, b.Bytes(), a.Bytes())
			}
		}
	}
	var b bytes.Buffer
	for name, err := range map[string]error{
		"WriteJSON":          WriteJSON(&b, sum),
		"WritePprof":         WritePprof(&b, sum),
		"WriteText tensor":   WriteText(&b, sum, TextOptions{By: ByTensor}),
		"WriteText module":   WriteText(&b, sum, TextOptions{By: ByModule}),
		"WriteMarkdown":      WriteMarkdown(&b, sum, TextOptions{By: ByModule}),
		"WriteCSV by tensor": WriteCSV(&b, sum, TextOptions{By: ByTensor}),
	} {
		if !errors.Is(err, ErrSummary) {
			t.Errorf("%s of a summary report: %v, want ErrSummary", name, err)
		}
	}
	if b.Len() != 0 {
		t.Errorf("refused renderers wrote %q", b.Bytes())
	}
	func() {
		defer func() {
			if r := recover(); r != ErrSummary {
				t.Errorf("NewDiff of a summary report: recovered %v, want ErrSummary", r)
			}
		}()
		NewDiff(whole, sum, DiffByRole)
	}()
	// A gate judges the whole report, tensors and modules included.
	var judged *Report
	Build(res, Parts{Summary: true, Judge: func(r *Report) *Gate { judged = r; return nil }})
	if judged == nil || judged.Summary() || len(judged.Tensors) != len(whole.Tensors) {
		t.Errorf("Judge was given a summary report")
	}
}

// TestSummaryAudit: the report of a summary audit (no module groups) is a
// summary report, from New or Build, and writes what a whole audit's
// does; a gate over it is refused.
func TestSummaryAudit(t *testing.T) {
	whole := New(sampleResult(t))
	res := sampleResult(t)
	res.Summary, res.Modules = true, nil // as accounting.Options.Summary leaves it
	for name, rep := range map[string]*Report{"New": New(res), "Build": Build(res, Parts{})} {
		if !rep.Summary() {
			t.Fatalf("%s of a summary audit is not a summary report", name)
		}
		var a, b bytes.Buffer
		if err := WriteText(&a, whole, TextOptions{By: ByLayer}); err != nil {
			t.Fatal(err)
		}
		if err := WriteText(&b, rep, TextOptions{By: ByLayer}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s: the summary audit's text differs:\n%s\nwant\n%s", name, b.Bytes(), a.Bytes())
		}
		if err := WriteJSON(&b, rep); !errors.Is(err, ErrSummary) {
			t.Errorf("%s: WriteJSON of a summary audit's report: %v", name, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Build with a Judge over a summary audit did not panic")
		}
	}()
	Build(res, Parts{Judge: func(*Report) *Gate { return nil }})
}
