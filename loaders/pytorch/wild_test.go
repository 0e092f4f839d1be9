package pytorch

import (
	"bytes"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/realworld"
)

// TestWild audits every PyTorch file of shared/realworld/wild, real files
// that qinsaudit once got wrong, against the independent truth of its
// answers.json: tensor count and stored bytes with constants.pkl's, each
// tensor's dtype, shape and stored bytes, quantized weights encoded, and
// the accounting figures of docs/accounting.md.
func TestWild(t *testing.T) {
	files := realworld.WildAnswers(t)
	var names []string
	for name, w := range files {
		if strings.HasPrefix(w.Format, "pytorch") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	if len(names) < 5 {
		t.Fatalf("wild/answers.json lists %d PyTorch files, want 5", len(names))
	}
	for _, name := range names {
		w := files[name]
		t.Run(name, func(t *testing.T) {
			data := readFile(t, filepath.Join(realworld.WildDir(), name))
			if int64(len(data)) != w.FileSize {
				t.Fatalf("%d bytes, answers.json says %d", len(data), w.FileSize)
			}
			m, err := loadBytes(data)
			if w.Expect == "refuse" {
				if err == nil {
					t.Fatal("loaded; answers.json says it must be refused")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Files[0].Format != w.Format {
				t.Errorf("format %q, want %q", m.Files[0].Format, w.Format)
			}
			if len(m.Tensors) != w.AllTensors() {
				t.Errorf("%d tensors, want %d (%d + %d constants)", len(m.Tensors), w.AllTensors(), w.TensorCount, w.Extra.ConstantsTensors)
			}
			if got := realworld.StoredBytes(m); got != w.AllStoredBytes() {
				t.Errorf("stored bytes %d, want %d", got, w.AllStoredBytes())
			}
			m.Files[0].SizeBytes = int64(len(data))
			res, err := accounting.Audit(m, accounting.Options{})
			if err != nil {
				t.Fatal(err)
			}
			rows := map[string]*accounting.Row{}
			for i := range res.Rows {
				rows[res.Rows[i].Name] = &res.Rows[i]
			}
			var quantized int64
			for _, wt := range w.Tensors {
				r := rows[wt.Name]
				if r == nil {
					t.Errorf("no tensor %q", wt.Name)
					continue
				}
				if r.DType != wt.DType || !slices.Equal(r.Shape, wt.Shape) || r.StoredBytes != wt.StoredBytes {
					t.Errorf("%s: %s %v, %d stored bytes; want %s %v, %d", wt.Name, r.DType, r.Shape, r.StoredBytes, wt.DType, wt.Shape, wt.StoredBytes)
				}
				if wt.Kind == "qtensor" {
					quantized += wt.Numel
					if !r.Encoded || r.Part != "weight" || r.Params != wt.Numel {
						t.Errorf("%s: quantized weight classified %s/%s (scheme %q, params %d)", wt.Name, r.Role, r.Part, r.Scheme, r.Params)
					}
				}
			}
			for _, c := range w.Extra.ConstantsList {
				r := rows[realworld.ConstantName(c.Name)]
				if r == nil {
					t.Errorf("no constant %q (as %q)", c.Name, realworld.ConstantName(c.Name))
					continue
				}
				if r.DType != c.DType || !slices.Equal(r.Shape, c.Shape) || r.StoredBytes != c.StorageBytes {
					t.Errorf("%s: %s %v, %d stored bytes; want %s %v, %d", r.Name, r.DType, r.Shape, r.StoredBytes, c.DType, c.Shape, c.StorageBytes)
				}
			}
			if e := w.ExpectedAccounting; e != nil {
				var encoded int64
				for _, r := range res.Rows {
					if r.Encoded && r.Part == "weight" {
						encoded += r.Params
					}
				}
				tot := res.Total
				if encoded != e.QuantizedWeights || quantized != e.QuantizedWeights {
					t.Errorf("encoded weights %d (qtensors listed %d), want %d", encoded, quantized, e.QuantizedWeights)
				}
				if tot.Params != e.Params || tot.BaselineBytes != e.BaselineFP32Bytes || tot.StoredBytes != e.StoredBytes {
					t.Errorf("params %d, baseline %d, stored %d; want %d, %d, %d",
						tot.Params, tot.BaselineBytes, tot.StoredBytes, e.Params, e.BaselineFP32Bytes, e.StoredBytes)
				}
				if !within(tot.Ratio(), e.Ratio, 0.01) || !within(tot.BitsPerWeight(), e.BitsPerWeight, 0.01) {
					t.Errorf("ratio %.4f, bits/weight %.4f; want %.4f, %.4f", tot.Ratio(), tot.BitsPerWeight(), e.Ratio, e.BitsPerWeight)
				}
			}
		})
	}
}

func within(got, want, rel float64) bool { return math.Abs(got-want) <= rel*math.Abs(want) }

// tsExpected is fixtures/torch/expected_ts.json, written by gen_ts.py.
type tsExpected struct {
	Files map[string]struct {
		Format      string `json:"format"`
		SizeBytes   int64  `json:"size_bytes"`
		TensorCount int    `json:"tensor_count"`
		StoredBytes int64  `json:"stored_bytes"`
		Scheme      string `json:"scheme"`
		Tensors     []struct {
			Name         string  `json:"name"`
			DType        string  `json:"dtype"`
			Shape        []int64 `json:"shape"`
			Storage      string  `json:"storage"`
			StorageBytes int64   `json:"storage_bytes"`
			QScheme      *string `json:"qscheme"`
		} `json:"tensors"`
		Accounting struct {
			QuantizedWeights int64   `json:"quantized_weights"`
			Params           int64   `json:"params"`
			Baseline         int64   `json:"baseline_fp32_bytes"`
			StoredBytes      int64   `json:"stored_bytes"`
			Ratio            float64 `json:"ratio"`
		} `json:"expected_accounting"`
	} `json:"files"`
}

// TestTorchScriptAndQuantizedFixtures checks the fixtures gen_ts.py made
// with torch (TorchScript scripted, traced, frozen, mobile and .ptl;
// static and dynamic quantization, per-tensor and per-channel; a legacy
// OrderedDict list; Lightning and training-wrapper checkpoints) against the
// truth it computed: every tensor, the stored bytes and the accounting.
func TestTorchScriptAndQuantizedFixtures(t *testing.T) {
	var exp tsExpected
	readTruth(t, "expected_ts.json", &exp)
	if len(exp.Files) < 22 {
		t.Fatalf("expected_ts.json lists %d files", len(exp.Files))
	}
	for name, want := range exp.Files {
		t.Run(name, func(t *testing.T) {
			data := readFile(t, filepath.Join(fixturesDir, name))
			if int64(len(data)) != want.SizeBytes {
				t.Fatalf("%d bytes, expected_ts.json says %d: regenerate", len(data), want.SizeBytes)
			}
			m, err := loadBytes(data)
			if err != nil {
				t.Fatal(err)
			}
			if m.Files[0].Format != want.Format || len(m.Tensors) != want.TensorCount || realworld.StoredBytes(m) != want.StoredBytes {
				t.Fatalf("%s, %d tensors, %d stored bytes; want %s, %d, %d",
					m.Files[0].Format, len(m.Tensors), realworld.StoredBytes(m), want.Format, want.TensorCount, want.StoredBytes)
			}
			for i, wt := range want.Tensors {
				g := m.Tensors[i]
				if g.Name != wt.Name || g.DType != wt.DType || !slices.Equal(g.Shape, wt.Shape) || g.Storage != wt.Storage || g.StorageBytes != wt.StorageBytes {
					t.Errorf("tensor %d: %s %s %v on %s (%d B); want %s %s %v on %s (%d B)", i,
						g.Name, g.DType, g.Shape, g.Storage, g.StorageBytes, wt.Name, wt.DType, wt.Shape, wt.Storage, wt.StorageBytes)
				}
			}
			m.Files[0].SizeBytes = int64(len(data))
			res, err := accounting.Audit(m, accounting.Options{})
			if err != nil {
				t.Fatal(err)
			}
			// A whole pickled module imports its classes: weights_only
			// refuses it (a warning); nothing else is found.
			for _, f := range res.Findings {
				whole := strings.HasSuffix(name, "_whole.pt")
				if !whole || f.Kind != accounting.UnsafePickle || f.Severity != accounting.Warning || !strings.Contains(f.Message, "__main__.") {
					t.Errorf("finding %v, want none (a whole module: one unsafe-pickle warning naming its class)", f)
				}
			}
			var encoded int64
			schemes := map[string]bool{}
			for _, r := range res.Rows {
				if r.Encoded && r.Part == "weight" {
					encoded += r.Params
					schemes[r.Scheme] = true
				}
			}
			e, tot := want.Accounting, res.Total
			if encoded != e.QuantizedWeights || tot.Params != e.Params || tot.BaselineBytes != e.Baseline || tot.StoredBytes != e.StoredBytes {
				t.Errorf("encoded %d, params %d, baseline %d, stored %d; want %d, %d, %d, %d",
					encoded, tot.Params, tot.BaselineBytes, tot.StoredBytes, e.QuantizedWeights, e.Params, e.Baseline, e.StoredBytes)
			}
			if math.Abs(tot.Ratio()-e.Ratio) > 0.5e-4 {
				t.Errorf("ratio %.5f, want %.4f", tot.Ratio(), e.Ratio)
			}
			wantScheme := want.Scheme
			if wantScheme == "" && e.QuantizedWeights > 0 {
				wantScheme = "torch-qint8" // a state_dict: static or dynamic, it does not say
			}
			if wantScheme != "" && (len(schemes) != 1 || !schemes[wantScheme]) {
				t.Errorf("schemes %v, want %s", schemes, wantScheme)
			}
		})
	}
}

// TestOldQTensorOrder: PyTorch 1.2's _rebuild_qtensor passed scale and
// zero point as two arguments; they become the tensor's per-tensor
// parameters as the later tuple's do.
func TestOldQTensorOrder(t *testing.T) {
	for _, old := range []bool{true, false} {
		p := newPickle().odict().str("w").global("torch._utils", "_rebuild_qtensor").mark().
			storage("QInt8Storage", "0", 8, false).int(0).ints(4, 2).ints(2, 1)
		if !old {
			p.mark().global("torch", "per_tensor_affine")
		}
		p.raw('G', 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a).int(3)
		if !old {
			p.tuple()
		}
		m, err := loadBytes(checkpoint(t, p.raw(0x89).odict().tuple().raw('R', 's').stop(), map[string]int{"0": 8}))
		if err != nil {
			t.Fatal(err)
		}
		if w := m.Tensors[0]; w.QScale != 0.1 || w.QZeroPoint != 3 || w.DType != "qint8" {
			t.Errorf("old order %v: %s scale %v zero point %d", old, w.DType, w.QScale, w.QZeroPoint)
		}
	}
}

// TestOrderedDictGlobalAcrossReads: the GLOBAL collections.OrderedDict that
// the scan renames may straddle two reads of the input (the buffer moves
// between its two lines); the rename must land in the bytes gopickle reads.
func TestOrderedDictGlobalAcrossReads(t *testing.T) {
	const at = 4080 // GLOBAL's offset: its name line crosses the first 4097-byte read
	p := newPickle()
	p.raw('X').raw(le32(at - 8)...).raw(make([]byte, at-8)...).raw('0')
	p.global("collections", "OrderedDict").mark().raw(']').mark().str("a").raw('N', 'l', 'a').tuple().raw('R')
	// Enough after it that the second read outgrows the first's buffer.
	pkl := p.raw('X').raw(le32(8192)...).raw(make([]byte, 8192)...).raw('0').stop()
	if i := bytes.Index(pkl, []byte("ccollections")); i != at {
		t.Fatalf("GLOBAL at %d, want %d", i, at)
	}
	_, _, err := zipTensors(newPickleInput(bytes.NewReader(pkl), int64(len(pkl))), 0, "data.pkl", "", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
}
