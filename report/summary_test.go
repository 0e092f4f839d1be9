package report

import (
	"bytes"
	"errors"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// TestSummary: the report of a summary audit, from New or Build, writes
// the text and Markdown tables that show neither tensors nor modules byte
// for byte as the whole report does, holds no tensors or modules, and
// every renderer that would show them refuses it rather than show empty
// lists; a gate over a summary audit is refused.
func TestSummary(t *testing.T) {
	whole := New(sampleResult(t, accounting.Options{}))
	res := sampleResult(t, accounting.Options{Summary: true})
	if whole.Summary() {
		t.Fatal("the report of a whole audit is a summary report")
	}
	if len(whole.Tensors) == 0 || len(whole.Modules) == 0 {
		t.Fatal("the sample has no tensors or modules: the test shows nothing")
	}
	for how, sum := range map[string]*Report{"New": New(res), "Build": Build(res, Parts{})} {
		if !sum.Summary() {
			t.Fatalf("%s of a summary audit is not a summary report", how)
		}
		if len(sum.Tensors) != 0 || len(sum.Modules) != 0 {
			t.Errorf("%s: summary report holds %d tensors and %d modules", how, len(sum.Tensors), len(sum.Modules))
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
					t.Fatalf("%s: %s %+v of a summary report: %v", how, w.name, opts, err)
				}
				if !bytes.Equal(a.Bytes(), b.Bytes()) {
					t.Errorf("%s: %s %+v: summary report writes\n%s\nthe whole report\n%s", how, w.name, opts, b.Bytes(), a.Bytes())
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
				t.Errorf("%s: %s of a summary report: %v, want ErrSummary", how, name, err)
			}
		}
		if b.Len() != 0 {
			t.Errorf("%s: refused renderers wrote %q", how, b.Bytes())
		}
		func() {
			defer func() {
				if r := recover(); r != ErrSummary {
					t.Errorf("%s: NewDiff of a summary report: recovered %v, want ErrSummary", how, r)
				}
			}()
			NewDiff(whole, sum, DiffByRole)
		}()
	}
	defer func() {
		if recover() == nil {
			t.Error("Build with a Judge over a summary audit did not panic")
		}
	}()
	Build(res, Parts{Judge: func(*Report) *Gate { return nil }})
}
