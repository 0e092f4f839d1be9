package accounting

import "testing"

// TestGGMLDTypes checks the GGML dtypes' place in the table. Their block
// layouts are checked in loaders/gguf's TestTypeTable, against gguftest's,
// which are written out field by field from ggml-common.h's block structs.
func TestGGMLDTypes(t *testing.T) {
	plain := map[string]bool{}
	for _, d := range plainDTypes {
		plain[d.Name] = true
	}
	for _, d := range ggmlDTypes {
		if d.BlockElems <= 0 || d.BlockBytes <= 0 {
			t.Errorf("%s: %d elements in %d bytes", d.Name, d.BlockElems, d.BlockBytes)
		}
		if d.Float {
			t.Errorf("%s: Float, want false for a block type", d.Name)
		}
		if plain[d.Name] {
			t.Errorf("%s: also a plain dtype", d.Name)
		}
		if got, ok := LookupDType(d.Name); !ok || got != d {
			t.Errorf("LookupDType(%q) = %v, %v", d.Name, got, ok)
		}
	}
	for _, c := range []struct {
		name    string
		removed bool
	}{{"q4_2", true}, {"q4_0_4_4", true}, {"iq4_nl_4_4", true}, {"q4_0", false}, {"iq4_nl", false}, {"float32", false}, {"nope", false}} {
		if GGMLRemoved(c.name) != c.removed {
			t.Errorf("GGMLRemoved(%q) = %v", c.name, !c.removed)
		}
	}
	for _, d := range ggmlRemovedDTypes {
		if _, ok := LookupDType(d.Name); !ok || !GGMLRemoved(d.Name) {
			t.Errorf("removed %s: in the table %v, GGMLRemoved %v", d.Name, ok, GGMLRemoved(d.Name))
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
