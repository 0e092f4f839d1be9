package report

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// largeReport is the report of a model of n tensors in the shape of a
// transformer's: per layer, four QINS log linears (stored, sign, log_min,
// log_max each) and a norm, so modules, layers and findings grow with n.
func largeReport(tb testing.TB, n int, grow int64) *Report {
	tb.Helper()
	m := &accounting.Model{Files: []accounting.File{{Path: "model.pt", Format: "pytorch-zip"}}}
	add := func(name, dtype string, shape ...int64) {
		d, _ := accounting.LookupDType(dtype)
		k, _ := accounting.Numel(shape)
		b, _ := d.Bytes(k)
		m.Tensors = append(m.Tensors, accounting.Tensor{Name: name, DType: dtype, Shape: shape,
			Storage: fmt.Sprint(len(m.Tensors)), StorageBytes: b, DataOffset: -1})
		m.Files[0].SizeBytes += b
	}
	for blk := 0; len(m.Tensors) < n; blk++ {
		p := fmt.Sprintf("layers.%d.", blk)
		for _, l := range []string{"q", "k", "v", "o"} {
			add(p+l+".stored", "uint8", 64+grow, 64)
			add(p+l+".sign", "int8", 64, 64)
			add(p+l+".log_min", "float32")
			add(p+l+".log_max", "float32")
		}
		add(p+"norm.weight", "float32", 64)
	}
	m.Tensors = m.Tensors[:n]
	res, err := accounting.Audit(m, accounting.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return New(res)
}

func largeJSON(tb testing.TB, n int, grow int64) []byte {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, largeReport(tb, n, grow)); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkReadJSON100k reads a saved report of 100,000 tensors, as diff
// and check --against do.
func BenchmarkReadJSON100k(b *testing.B) {
	data := largeJSON(b, 100_000, 0)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadJSON(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiff100k is diff of two saved 100,000-tensor reports: both read,
// compared and rendered as text.
func BenchmarkDiff100k(b *testing.B) {
	old, cur := largeJSON(b, 100_000, 0), largeJSON(b, 100_000, 1)
	b.ReportAllocs()
	for b.Loop() {
		o, err := ReadJSON(bytes.NewReader(old))
		if err != nil {
			b.Fatal(err)
		}
		c, err := ReadJSON(bytes.NewReader(cur))
		if err != nil {
			b.Fatal(err)
		}
		if err := WriteDiffText(io.Discard, NewDiff(o, c, "module"), TextOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// A large report reads back exactly as it was written (ReadJSON's fast
// path; the small fixtures also take it).
func TestReadJSONLarge(t *testing.T) {
	want := largeReport(t, 5_000, 3)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("the report read back differs from the one written")
	}
}

// ReadFile and ReadJSON of any reader read the same report.
func TestReadJSONFile(t *testing.T) {
	data := largeJSON(t, 2_000, 0)
	path := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	fromFile, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fromReader, err := ReadJSON(bytes.NewReader(data))
	if err != nil || !reflect.DeepEqual(fromFile, fromReader) {
		t.Fatalf("from a file and from a reader: %v", err)
	}
}

// BenchmarkWriteJSON100k writes the report of 100,000 tensors, as audit
// --format json does; ns/tensor is the figure issue 11 sets a target for.
func BenchmarkWriteJSON100k(b *testing.B) {
	rep := largeReport(b, 100_000, 0)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteJSON(io.Discard, rep); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100_000, "ns/tensor")
}

// BenchmarkWriteJSON100kReference is the same with the reference writer
// (json.Marshal, then layout), which WriteJSON used to be.
func BenchmarkWriteJSON100kReference(b *testing.B) {
	rep := largeReport(b, 100_000, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := marshalLayout(rep); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100_000, "ns/tensor")
}
