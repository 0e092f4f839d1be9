package pytorch

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// manyTensors is a zip checkpoint of n small float32 tensors, named like a
// deep model's state_dict.
func manyTensors(b *testing.B, n int) []byte {
	p := newPickle().odict()
	storages := map[string]int{}
	for i := range n {
		key := fmt.Sprint(i)
		p.str(fmt.Sprintf("model.layers.%d.mlp.proj_%d.weight", i/8, i%8)).tensor("FloatStorage", key, 4, 4).raw('s')
		storages[key] = 64
	}
	return checkpoint(b, p.stop(), storages)
}

func BenchmarkLoad(b *testing.B) {
	inputs := []struct {
		name string
		data func(b *testing.B) []byte
	}{
		{"toy_fp32.pt", fixture("toy_fp32.pt")},
		{"legacy_qins_log.pt", fixture("legacy_qins_log.pt")},
		{"whole_module.pt", fixture("whole_module.pt")},
		{"built_2000_tensors", func(b *testing.B) []byte { return manyTensors(b, 2000) }},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			data := in.data(b)
			b.ReportAllocs()
			var tensors int
			for b.Loop() {
				m, err := loadBytes(data)
				if err != nil {
					b.Fatal(err)
				}
				tensors = len(m.Tensors)
			}
			b.ReportMetric(float64(tensors), "tensors")
		})
	}
}

func fixture(name string) func(b *testing.B) []byte {
	return func(b *testing.B) []byte {
		data, err := os.ReadFile(filepath.Join(fixturesDir, name))
		if err != nil {
			b.Fatalf("fixture (committed) missing: %v", err)
		}
		return data
	}
}
