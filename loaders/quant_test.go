package loaders_test

import (
	"path/filepath"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/loaders"
)

// The layer of fixtures/quant: seven projections of a hidden-64, MLP-128
// llama decoder layer; 40,960 weights.
var quantLinears = [][2]int64{{64, 64}, {64, 64}, {64, 64}, {64, 64}, {128, 64}, {128, 64}, {64, 128}}

// TestQuantizedLayouts audits each generated layout and checks the encoded
// linears' scheme, logical parameters (never packed elements) and stored
// bytes of all parts, computed here from each library's layout.
func TestQuantizedLayouts(t *testing.T) {
	sum := func(f func(out, in int64) int64) (n int64) {
		for _, l := range quantLinears {
			n += f(l[0], l[1])
		}
		return n
	}
	for _, c := range []struct {
		dir, scheme string
		stored      int64
	}{
		// qweight in/8 x out int32, qzeros in/32 x out/8 int32, scales in/32 x out f16, g_idx in int32
		{"gptq", "gptq", sum(func(o, i int64) int64 { return i/8*o*4 + i/32*o/8*4 + i/32*o*2 + i*4 })},
		{"awq", "awq", sum(func(o, i int64) int64 { return i*o/8*4 + i/32*o/8*4 + i/32*o*2 })},
		// uint8 n/2, absmax uint8 n/64, quant_map 16 f32, nested absmax, nested map 256 f32, quant_state 107
		{"bnb4", "bnb-4bit", sum(func(o, i int64) int64 { n := o * i; return n/2 + n/64 + 64 + (n/64+255)/256*4 + 1024 + 107 })},
		{"bnb8", "bnb-8bit", sum(func(o, i int64) int64 { return o*i + o*4 })},
		{"fp8_block", "fp8-block", sum(func(o, i int64) int64 { return o*i + (o+127)/128*((i+127)/128)*4 })},
		{"fp8", "fp8", sum(func(o, i int64) int64 { return o*i + o*2 })},
		{"compressed_int4", "compressed-tensors", sum(func(o, i int64) int64 { return o*i/8*4 + o*i/32*2 + 16 })},
		{"mlx", "mlx", sum(func(o, i int64) int64 { return o*i/8*4 + 2*o*i/64*2 })},
	} {
		t.Run(c.dir, func(t *testing.T) {
			m, err := loaders.Open(filepath.Join("../fixtures/quant", c.dir))
			if err != nil {
				t.Fatal(err)
			}
			if m.Quantization == nil {
				t.Fatal("config.json's quantization settings not read")
			}
			r, err := accounting.Audit(m, accounting.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var lin accounting.Group
			for _, g := range r.Roles {
				if g.Key == "encoded_linear" {
					lin = g
				}
			}
			if lin.Params != 40960 || lin.StoredBytes != c.stored || lin.BaselineBytes != 40960*4 {
				t.Errorf("encoded linears: %d params, %d stored, %d baseline; want 40960, %d, %d", lin.Params, lin.StoredBytes, lin.BaselineBytes, c.stored, 40960*4)
			}
			for _, row := range r.Rows {
				if row.Role == accounting.EncodedLinear && row.Scheme != c.scheme {
					t.Errorf("%s: scheme %q, want %q", row.Name, row.Scheme, c.scheme)
				}
			}
			for _, f := range r.Findings {
				if f.Severity == accounting.Error {
					t.Errorf("unexpected finding %+v", f)
				}
			}
		})
	}
}

// TestConfigSaysQuantizedButFloat: a GPTQ checkpoint whose down_proj was
// left in float16 although quantization_config does not exempt it.
func TestConfigSaysQuantizedButFloat(t *testing.T) {
	m, err := loaders.Open("../fixtures/quant/gptq_float_layer")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := accounting.Audit(m, accounting.Options{})
	var got []string
	for _, f := range r.Findings {
		if f.Kind == accounting.EncodedButUncompressed {
			got = append(got, f.Module)
		}
	}
	if len(got) != 1 || got[0] != "model.layers.0.mlp.down_proj" {
		t.Errorf("encoded-but-uncompressed on %v, want only model.layers.0.mlp.down_proj (lm_head is in modules_to_not_convert)", got)
	}
	// Exempting it silences the finding.
	m.Quantization.ModulesNotToConvert = append(m.Quantization.ModulesNotToConvert, "down_proj")
	r, _ = accounting.Audit(m, accounting.Options{})
	for _, f := range r.Findings {
		if f.Kind == accounting.EncodedButUncompressed {
			t.Errorf("still flagged: %+v", f)
		}
	}
}
