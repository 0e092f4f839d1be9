package accounting

import "testing"

// TestGGMLDTypes checks GGML's block layouts against ggml-common.h's block
// structs, each written out field by field.
func TestGGMLDTypes(t *testing.T) {
	const half, qk = 2, 256      // sizeof(ggml_half), QK_K
	want := map[string][2]int64{ // elements, bytes
		"q4_0":       {32, half + 32/2},
		"q4_1":       {32, 2*half + 32/2},
		"q5_0":       {32, half + 4 + 32/2},
		"q5_1":       {32, 2*half + 4 + 32/2},
		"q8_0":       {32, half + 32},
		"q8_1":       {32, 2*half + 32},
		"iq4_nl":     {32, half + 32/2},
		"mxfp4":      {32, 1 + 32/2},
		"nvfp4":      {64, 64/16 + 64/2},
		"q1_0":       {128, half + 128/8},
		"q2_0":       {64, half + 64/4},
		"q2_k":       {qk, qk/16 + qk/4 + 2*half},
		"q3_k":       {qk, qk/8 + qk/4 + 12 + half},
		"q4_k":       {qk, 2*half + 12 + qk/2},
		"q5_k":       {qk, 2*half + 12 + qk/8 + qk/2},
		"q6_k":       {qk, qk/2 + qk/4 + qk/16 + half},
		"q8_k":       {qk, 4 + qk + qk/16*2},
		"iq2_xxs":    {qk, half + qk/8*2},
		"iq2_xs":     {qk, half + qk/8*2 + qk/32},
		"iq2_s":      {qk, half + qk/4 + qk/32 + qk/32},
		"iq3_xxs":    {qk, half + 3*qk/8},
		"iq3_s":      {qk, half + qk/4 + qk/32 + qk/8 + qk/64},
		"iq1_s":      {qk, half + qk/8 + qk/32*2},
		"iq1_m":      {qk, qk/8 + qk/16 + qk/32},
		"iq4_xs":     {qk, half + 2 + qk/64 + qk/2},
		"tq1_0":      {qk, (qk-4*qk/64)/5 + qk/64 + half},
		"tq2_0":      {qk, qk/4 + half},
		"q4_2":       {16, half + 16/2},
		"q4_3":       {16, 2*half + 16/2},
		"q4_0_4_4":   {32, half + 32/2},
		"q4_0_4_8":   {32, half + 32/2},
		"q4_0_8_8":   {32, half + 32/2},
		"iq4_nl_4_4": {32, half + 32/2},
	}
	if len(ggmlDTypes) != len(want) {
		t.Errorf("%d GGML dtypes, want %d", len(ggmlDTypes), len(want))
	}
	plain := map[string]bool{}
	for _, d := range plainDTypes {
		plain[d.Name] = true
	}
	for _, d := range ggmlDTypes {
		w, ok := want[d.Name]
		if !ok {
			t.Errorf("%s: not checked here", d.Name)
			continue
		}
		if d.BlockElems != w[0] || d.BlockBytes != w[1] {
			t.Errorf("%s: %d elements in %d bytes, want %d in %d", d.Name, d.BlockElems, d.BlockBytes, w[0], w[1])
		}
		if d.Float {
			t.Errorf("%s: Float, want false for a block type", d.Name)
		}
		if plain[d.Name] {
			t.Errorf("%s: also a plain dtype", d.Name)
		}
		removed := map[string]bool{"q4_2": true, "q4_3": true, "q4_0_4_4": true, "q4_0_4_8": true, "q4_0_8_8": true, "iq4_nl_4_4": true}[d.Name]
		if GGMLRemoved(d.Name) != removed {
			t.Errorf("GGMLRemoved(%q) = %v", d.Name, !removed)
		}
		if got, ok := LookupDType(d.Name); !ok || got != d {
			t.Errorf("LookupDType(%q) = %v, %v", d.Name, got, ok)
		}
	}
}

func TestGGMLBytes(t *testing.T) {
	for _, c := range []struct {
		name string
		n    int64
		want int64
		bits float64
	}{
		{"q4_0", 4096 * 4096, 4096 * 4096 / 32 * 18, 4.5},
		{"q4_k", 4096 * 11008, 4096 * 11008 / 256 * 144, 4.5},
		{"q6_k", 256, 210, 6.5625},
		{"q8_0", 33, 2 * 34, 8.5},
		{"iq2_xxs", 256, 66, 2.0625},
		{"tq1_0", 256, 54, 1.6875},
		{"mxfp4", 32, 17, 4.25},
	} {
		d, _ := LookupDType(c.name)
		got, err := d.Bytes(c.n)
		if err != nil || got != c.want {
			t.Errorf("%s.Bytes(%d) = %d, %v; want %d", c.name, c.n, got, err, c.want)
		}
		if d.Bits() != c.bits {
			t.Errorf("%s.Bits() = %v, want %v", c.name, d.Bits(), c.bits)
		}
	}
}
