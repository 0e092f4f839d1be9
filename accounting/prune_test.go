package accounting

import (
	"slices"
	"testing"
)

// TestPrunedPairs: X_orig and X_mask of one shape are the module's X and
// its mask; a whole-module save's X is their product. Anything else named
// like them is a plain tensor.
func TestPrunedPairs(t *testing.T) {
	m := newModel().
		t("fc.weight_orig", "float32", 4, 8).t("fc.weight_mask", "float32", 4, 8).t("fc.weight", "float32", 4, 8).
		t("fc.bias_orig", "float32", 4).t("fc.bias_mask", "float32", 4).
		t("embed.weight_orig", "float32", 10, 4).t("embed.weight_mask", "float32", 10, 4).
		t("odd.weight_orig", "float32", 4, 4).t("odd.weight_mask", "float32", 2, 2). // shapes differ: no pair
		t("lone_mask", "bool", 3).                                                   // no _orig
		t("weight_orig", "float16", 2).t("weight_mask", "float16", 2).               // top level
		model()
	r, err := Audit(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		role   Role
		part   Part
		module string
		params int64
	}{
		"fc.weight_orig":    {Untouched, PartWeight, "fc", 32},
		"fc.weight_mask":    {Untouched, PartMask, "fc", 0},
		"fc.weight":         {Untouched, PartDerivedCopy, "fc", 0},
		"fc.bias_orig":      {Untouched, PartBias, "fc", 4},
		"fc.bias_mask":      {Untouched, PartMask, "fc", 0},
		"embed.weight_orig": {Embedding, PartWeight, "embed", 40},
		"embed.weight_mask": {Embedding, PartMask, "embed", 0},
		"odd.weight_orig":   {Untouched, PartParam, "odd", 16},
		"odd.weight_mask":   {Untouched, PartParam, "odd", 4},
		"lone_mask":         {Untouched, PartBuffer, "", 3},
		"weight_orig":       {Untouched, PartWeight, "", 2},
		"weight_mask":       {Untouched, PartMask, "", 0},
	}
	for _, row := range r.Rows {
		w := want[row.Name]
		if row.Role != w.role || row.Part != w.part || row.Module != w.module || row.Params != w.params {
			t.Errorf("%s: %s %s %q %d params; want %s %s %q %d", row.Name, row.Role, row.Part, row.Module, row.Params,
				w.role, w.part, w.module, w.params)
		}
		if (row.Part == PartMask || row.Part == PartDerivedCopy) && row.BaselineBytes != 0 {
			t.Errorf("%s: baseline %d", row.Name, row.BaselineBytes)
		}
	}
	var got []string
	var bytes int64
	for _, f := range r.Findings {
		if f.Kind == PruningMask {
			got = append(got, f.Tensors...)
			bytes += f.Bytes
		}
	}
	slices.Sort(got)
	wantTensors := []string{"embed.weight_mask", "embed.weight_orig", "fc.bias_mask", "fc.bias_orig", "fc.weight",
		"fc.weight_mask", "fc.weight_orig", "weight_mask", "weight_orig"}
	if !slices.Equal(got, wantTensors) {
		t.Errorf("pruning-mask tensors %v", got)
	}
	// The masks (128 + 16 + 160 + 4) and fc's derived copy (128).
	if bytes != 128+16+160+4+128 {
		t.Errorf("pruning-mask bytes %d", bytes)
	}
}

// TestParametrized: a parametrization's original is its module's tensor.
func TestParametrized(t *testing.T) {
	for _, c := range []struct{ name, mod, leaf string }{
		{"l.parametrizations.weight.original", "l", "weight"},
		{"a.b.parametrizations.bias.original", "a.b", "bias"},
		{"parametrizations.weight.original", "", "weight"},
	} {
		mod, leaf, ok := parametrized(c.name)
		if !ok || mod != c.mod || leaf != c.leaf {
			t.Errorf("parametrized(%q) = %q, %q, %v", c.name, mod, leaf, ok)
		}
	}
	for _, name := range []string{"original", "l.original", "l.weight.original", "l.parametrizations.original", "l.parametrizations.weight.original0"} {
		if _, _, ok := parametrized(name); ok {
			t.Errorf("parametrized(%q) is true", name)
		}
	}
}

// TestRepeatedElements: a stride of 0 over a dimension larger than 1
// repeats elements; over a dimension of 1, or a transposed view, it does
// not.
func TestRepeatedElements(t *testing.T) {
	m := newModel().t("e", "float32", 100, 4).t("pos", "int64", 1, 8).t("tr", "float32", 4, 8).model()
	m.Tensors[0].Strides, m.Tensors[0].StorageBytes = []int64{0, 1}, 16
	m.Tensors[1].Strides = []int64{0, 1}
	m.Tensors[2].Strides = []int64{1, 4}
	r, err := Audit(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var fs []Finding
	for _, f := range r.Findings {
		if f.Kind == RepeatedElements {
			fs = append(fs, f)
		}
	}
	if len(fs) != 1 || !slices.Equal(fs[0].Tensors, []string{"e"}) || fs[0].Bytes != 1600-16 {
		t.Errorf("repeated-elements findings %+v", fs)
	}
}

// TestComplexBaseline: a complex element is two baseline floats.
func TestComplexBaseline(t *testing.T) {
	m := newModel().t("z", "complex64", 8).t("zz", "complex128", 3).model()
	for _, c := range []struct {
		baseline string
		want     int64
	}{{"float32", 11 * 8}, {"float16", 11 * 4}} {
		r, err := Audit(m, Options{Baseline: c.baseline})
		if err != nil {
			t.Fatal(err)
		}
		if r.Total.BaselineBytes != c.want || r.Total.Params != 11 {
			t.Errorf("%s: baseline %d, params %d; want %d, 11", c.baseline, r.Total.BaselineBytes, r.Total.Params, c.want)
		}
	}
}

// TestNormCopies: weight_norm's X_g and X_v, spectral_norm's X_orig and
// X_u; a whole-module save's X beside them is a derived copy. A tensor
// named X_g without X_v is plain.
func TestNormCopies(t *testing.T) {
	m := newModel().
		t("a.weight_g", "float32", 4, 1).t("a.weight_v", "float32", 4, 8).t("a.weight", "float32", 4, 8).
		t("b.weight_orig", "float32", 4, 8).t("b.weight_u", "float32", 4).t("b.weight_v", "float32", 8).t("b.weight", "float32", 4, 8).
		t("c.ln_g", "float32", 8).t("c.ln", "float32", 8).
		model()
	r, err := Audit(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]Part{}
	for _, row := range r.Rows {
		parts[row.Name] = row.Part
	}
	if parts["a.weight"] != PartDerivedCopy || parts["b.weight"] != PartDerivedCopy || parts["b.weight_orig"] != PartWeight ||
		parts["a.weight_v"] != PartParam || parts["c.ln"] != PartParam {
		t.Errorf("parts %v", parts)
	}
	if r.Total.Params != 4+32+32+4+8+8+8 {
		t.Errorf("params %d", r.Total.Params)
	}
	var copies []string
	for _, f := range r.Findings {
		if f.Kind == DerivedCopy {
			copies = append(copies, f.Tensors...)
		}
	}
	if !slices.Equal(copies, []string{"a.weight", "b.weight"}) {
		t.Errorf("derived-copy findings name %v", copies)
	}
}

// TestRNNBias: a dynamically quantized RNN cell's biases, and the copies
// its packed weights carry.
func TestRNNBias(t *testing.T) {
	for _, c := range []struct {
		name, cell string
		copied     bool
	}{
		{"lstm._all_weight_values.0.param.0.1.1", "lstm._all_weight_values.0.param.0.1.1", false},
		{"enc.lstm._all_weight_values.3.param.0.4.1.0.1", "enc.lstm._all_weight_values.3.param.0.1.1", true},
		{"lstm._all_weight_values.0.param.0.4.1.0.0", "", false}, // the weight
		{"lstm._all_weight_values.x.param.0.1.1", "", false},
		{"lstm._all_weight_values.0.param.1.1.1", "", false},
		{"lstm.weight_ih_l0", "", false},
	} {
		cell, copied := rnnBias(c.name)
		if cell != c.cell || copied != c.copied {
			t.Errorf("rnnBias(%q) = %q, %v; want %q, %v", c.name, cell, copied, c.cell, c.copied)
		}
	}
	// A copy whose cell bias is missing, or of another shape, keeps its params.
	m := newModel().t("r._all_weight_values.0.param.0.1.0", "float32", 8).
		t("r._all_weight_values.0.param.0.4.0.0.1", "float32", 8).
		t("r._all_weight_values.0.param.0.4.1.0.1", "float32", 8).model()
	r, err := Audit(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Rows[0].Params != 8 || r.Rows[1].Params != 0 || r.Rows[2].Params != 8 {
		t.Errorf("params %d, %d, %d; want 8, 0, 8", r.Rows[0].Params, r.Rows[1].Params, r.Rows[2].Params)
	}
}
