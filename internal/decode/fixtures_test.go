package decode

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/loaders"
)

// The PyTorch fixtures' ground truth (fixtures/torch/expected.json) locates
// every storage in its zip record, so these tests build their models from
// it: they check the decoder against what torch itself wrote, independently
// of qinsaudit's PyTorch loader.

const torchDir = "../../fixtures/torch"

type expectedFile struct {
	Format  string `json:"format"`
	Tensors []struct {
		Name          string  `json:"name"`
		DType         string  `json:"dtype"`
		Shape         []int64 `json:"shape"`
		StorageBytes  int64   `json:"storage_bytes"`
		StorageOffset int64   `json:"storage_offset_bytes"`
		StorageKey    string  `json:"storage_key"`
		StorageRecord string  `json:"storage_record"`
		QScale        float64 `json:"q_scale"`
		QZeroPoint    int64   `json:"q_zero_point"`
	} `json:"tensors"`
	ZipRecords []struct {
		Name       string `json:"name"`
		DataOffset int64  `json:"data_offset"`
	} `json:"zip_records"`
}

var expected = sync.OnceValues(func() (map[string]expectedFile, error) {
	data, err := os.ReadFile(filepath.Join(torchDir, "expected.json"))
	if err != nil {
		return nil, err
	}
	var e struct {
		Files map[string]expectedFile `json:"files"`
	}
	err = json.Unmarshal(data, &e)
	return e.Files, err
})

// torchModel returns the model of a PyTorch zip fixture, as its ground truth
// describes it, and its accounting.
func torchModel(t testing.TB, name string) (*accounting.Model, *accounting.Result) {
	t.Helper()
	files, err := expected()
	if err != nil {
		t.Fatal(err)
	}
	f, ok := files[name]
	if !ok || f.Format != "pytorch-zip" {
		t.Fatalf("%s: not a zip fixture in expected.json", name)
	}
	path := filepath.Join(torchDir, name)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	offsets := map[string]int64{}
	for _, r := range f.ZipRecords {
		offsets[r.Name] = r.DataOffset
	}
	m := &accounting.Model{Files: []accounting.File{{Path: path, Format: "pytorch-zip", SizeBytes: fi.Size()}}}
	for _, x := range f.Tensors {
		m.Tensors = append(m.Tensors, accounting.Tensor{Name: x.Name, DType: x.DType, Shape: x.Shape,
			Storage: x.StorageKey, StorageBytes: x.StorageBytes, ViewOffset: x.StorageOffset,
			DataOffset: offsets[x.StorageRecord], QScale: x.QScale, QZeroPoint: x.QZeroPoint})
	}
	res, err := accounting.Audit(m, accounting.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m, res
}

// load runs Load on a fixture.
func load(t testing.TB, name string, opts Options) *Pass {
	t.Helper()
	m, res := torchModel(t, name)
	p, err := Load(m, res, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// floats returns a float32 tensor of a fixture, by name.
func floats(t testing.TB, p *Pass, name string) []float32 {
	t.Helper()
	for i, x := range p.m.Tensors {
		if x.Name == name {
			td, err := p.tensor(i)
			if err != nil {
				t.Fatal(err)
			}
			out := make([]float32, td.numel)
			widen(out, td.data, td.dtype.Name)
			return out
		}
	}
	t.Fatalf("no tensor %q", name)
	return nil
}

// linears lists the small fixtures' linear modules.
func linears() []string {
	var out []string
	for b := range 2 {
		for _, l := range []string{"attn.q", "attn.k", "attn.v", "attn.o", "ffn.up", "ffn.down"} {
			out = append(out, "blocks."+strconv.Itoa(b)+"."+l)
		}
	}
	return out
}

func TestQINSLogMatchesPyTorch(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(torchDir, "toy_qins_log_reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Modules []struct {
			Module        string    `json:"module"`
			Shape         []int     `json:"shape"`
			Decoded       []float64 `json:"decoded_first16"`
			MaxRelWhole   float64   `json:"max_relative_error_whole_module"`
			StoredFirst16 []int     `json:"stored_first16"`
		} `json:"modules"`
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	p := load(t, "toy_qins_log.pt", Options{})
	orig := load(t, "toy_fp32.pt", Options{})
	for _, r := range ref.Modules {
		w, rows, cols, err := p.Decode(r.Module)
		if err != nil {
			t.Fatal(err)
		}
		if rows != r.Shape[0] || cols != r.Shape[1] {
			t.Errorf("%s: decoded [%d, %d], want %v", r.Module, rows, cols, r.Shape)
		}
		// The reference values are PyTorch's float32 results: the notes
		// in the file allow about 5e-6 relative (exp of a float32
		// argument, within a few ulp).
		for i, want := range r.Decoded {
			if got := float64(w[i]); math.Abs(got-want) > 5e-6*math.Abs(want) {
				t.Errorf("%s[%d] = %.9g, PyTorch decoded %.9g", r.Module, i, got, want)
			}
		}
		// Against the float32 originals, the whole module is within the
		// codec's own quantization error, as PyTorch measured it.
		w0 := floats(t, orig, r.Module+".weight")
		var worst float64
		for i := range w0 {
			worst = max(worst, math.Abs(float64(w[i])-float64(w0[i]))/math.Abs(float64(w0[i])))
		}
		if worst > r.MaxRelWhole*(1+1e-4) {
			t.Errorf("%s: max relative error %.6g vs the originals, PyTorch's decode has %.6g", r.Module, worst, r.MaxRelWhole)
		}
	}
}

// TestDecodeFixtures decodes every encoded linear of each scheme's fixture
// and checks it against the float32 weights it was made from, within the
// scheme's own quantization error.
func TestDecodeFixtures(t *testing.T) {
	orig := load(t, "small_fp32.pt", Options{})
	for _, c := range []struct {
		file, scheme string
		units        int
		// bound is the largest error allowed for original weight w0.
		bound func(p *Pass, module string, w0 float64) float64
	}{
		{"qins_rational_f32.pt", "qins-rational", 12, func(_ *Pass, _ string, w0 float64) float64 { return 1e-6 }},
		{"qins_rational_u8.pt", "qins-rational", 12, func(_ *Pass, _ string, w0 float64) float64 {
			// q = round((e+1)*127.5): e is off by up to 1/255, and
			// |w| = 1/|e| - 1 amplifies that by 1/e².
			e, de := 1/(1+math.Abs(w0)), 0.5/127.5
			return de/((e-de)*(e-de)) + 1e-6
		}},
		{"small_fp16.pt", "float16", 13, func(_ *Pass, _ string, w0 float64) float64 { return math.Abs(w0)*0x1p-11 + 0x1p-25 }},
		{"small_bf16.pt", "bfloat16", 13, func(_ *Pass, _ string, w0 float64) float64 { return math.Abs(w0) * 0x1p-8 }},
		{"dynamic_qint8.pt", "torch-qint8", 12, func(p *Pass, m string, _ float64) float64 {
			return qscale(t, p, m+"._packed_params._packed_params.0")/2 + 1e-7
		}},
		{"gptq_small.pt", "gptq", 13, func(p *Pass, m string, w0 float64) float64 {
			if m == "embed" { // float16
				return math.Abs(w0)*0x1p-11 + 0x1p-25
			}
			return float64(slices.Max(floats(t, p, m+".scales")))*0.51 + 1e-6
		}},
	} {
		t.Run(c.file, func(t *testing.T) {
			// Without Widen, float16 and bfloat16 weights are held as stored:
			// only encoded linears are decoded.
			if c.scheme == "float16" || c.scheme == "bfloat16" || c.scheme == "gptq" {
				want := 0
				if c.scheme == "gptq" {
					want = 12
				}
				if p := load(t, c.file, Options{}); len(p.units) != want {
					t.Errorf("without Widen: %d units, want %d", len(p.units), want)
				}
			}
			p := load(t, c.file, Options{Widen: true})
			if len(p.units) != c.units || len(p.skipped) != 0 {
				t.Fatalf("%d units, %d skipped; want %d units", len(p.units), len(p.skipped), c.units)
			}
			for _, m := range append(linears(), "embed") {
				w, _, _, err := p.Decode(m)
				if m == "embed" && err != nil && c.units == 12 {
					continue // a float32 embedding is not decoded
				}
				if err != nil {
					t.Fatal(err)
				}
				w0 := floats(t, orig, m+".weight")
				if len(w) != len(w0) {
					t.Fatalf("%s: %d weights, want %d", m, len(w), len(w0))
				}
				var worst float64 // largest error over its bound
				for i := range w0 {
					d, b := math.Abs(float64(w[i])-float64(w0[i])), c.bound(p, m, float64(w0[i]))
					if !(d <= b) {
						t.Fatalf("%s[%d] = %g, original %g: off by %g > %g", m, i, w[i], w0[i], d, b)
					}
					worst = max(worst, d/b)
				}
				t.Logf("%s: worst error %.2f of its bound", m, worst)
			}
			for _, u := range p.units {
				if u.module != "embed" && u.scheme != c.scheme {
					t.Errorf("%s decoded as %s, want %s", u.module, u.scheme, c.scheme)
				}
			}
		})
	}
}

func qscale(t *testing.T, p *Pass, name string) float64 {
	for _, x := range p.m.Tensors {
		if x.Name == name {
			return x.QScale
		}
	}
	t.Fatalf("no tensor %q", name)
	return 0
}

func TestBadInput(t *testing.T) {
	for _, c := range []struct {
		name   string
		file   string
		change func(m *accounting.Model)
		want   string
	}{
		{"no data offset", "toy_qins_log.pt", func(m *accounting.Model) { m.Tensors[1].DataOffset = -1 },
			`tensor "blocks.0.attn.q.stored": storage "1" has no fixed offset`},
		{"offset past end", "toy_qins_log.pt", func(m *accounting.Model) { m.Tensors[2].DataOffset = 1 << 40 },
			`@0x10000000000: pytorch-zip: tensor "blocks.0.attn.q.sign": storage "2": 65536 bytes at offset 1099511627776 run past the end of the file`},
		{"storage past end", "small_fp32.pt", func(m *accounting.Model) { m.Tensors[0].StorageBytes = 1 << 50 },
			`tensor "embed.weight": storage "0": 1125899906842624 bytes at offset`},
		{"truncated file", "small_fp32.pt", func(m *accounting.Model) { m.Files[0].Path = truncated(t, m.Files[0].Path) },
			`run past the end of the file (211765 bytes)`},
		{"view outside storage", "qins_rational_u8.pt", func(m *accounting.Model) { m.Tensors[1].ViewOffset = 4000 },
			`tensor "blocks.0.attn.q.weight_qins": view of 4096 bytes at offset 4000 does not fit its storage "1" of 4096 bytes`},
		{"sign of another shape", "toy_qins_log.pt", func(m *accounting.Model) { m.Tensors[2].Shape = []int64{256, 128} },
			`tensor "blocks.0.attn.q.sign": sign has 32768 elements of int8; stored has 65536 one-byte codes`},
		{"range not a scalar", "toy_qins_log.pt", func(m *accounting.Model) { m.Tensors[3].Shape = []int64{2} },
			`tensor "blocks.0.attn.q.log_min": view of 8 bytes at offset 0 does not fit its storage "3" of 4 bytes`},
		{"no qint8 scale", "dynamic_qint8.pt", func(m *accounting.Model) { m.Tensors[3].QScale = 0 },
			`tensor "blocks.0.attn.q._packed_params._packed_params.0": quantized weight has scale 0`},
		{"gptq zeros misshapen", "gptq_small.pt", func(m *accounting.Model) { m.Tensors[2].Shape = []int64{1, 16} },
			`tensor "blocks.0.attn.q.qzeros": qzeros is int32 [1 16]; want int32 [2, 64/8]`},
		{"gptq g_idx too short", "gptq_small.pt", func(m *accounting.Model) { m.Tensors[4].ViewOffset = 128; m.Tensors[4].Shape = []int64{32} },
			`g_idx is int32 [32]; want int32 or int64 [64]`},
		{"rational alpha zero", "qins_rational_u8.pt", func(m *accounting.Model) { m.Tensors[2].DType = "int8" },
			`tensor "blocks.0.attn.q.alpha": alpha is 0`},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, _ := torchModel(t, c.file)
			c.change(m)
			res, err := accounting.Audit(m, accounting.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = Load(m, res, Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), m.Files[0].Path) {
				t.Fatalf("error %v\nwant one naming %s and saying %s", err, m.Files[0].Path, c.want)
			}
		})
	}
}

// truncated writes the first half of a file to a temporary file.
func truncated(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(out, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestThroughLoader: decoding the toy model as qinsaudit's PyTorch loader
// reads it gives the same weights as decoding it from the ground truth.
func TestThroughLoader(t *testing.T) {
	m, err := loaders.Open(filepath.Join(torchDir, "toy_qins_log.pt"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := accounting.Audit(m, accounting.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load(m, res, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref := load(t, "toy_qins_log.pt", Options{})
	if len(p.units) != 18 || len(ref.units) != 18 {
		t.Fatalf("%d and %d units, want 18", len(p.units), len(ref.units))
	}
	for _, u := range ref.units {
		a, _, _, err := p.Decode(u.module)
		if err != nil {
			t.Fatal(err)
		}
		b, _, _, _ := ref.Decode(u.module)
		if !slices.Equal(a, b) {
			t.Errorf("%s decodes differently through the loader", u.module)
		}
	}
}

// TestMissingSide: a module the accounting calls QINS log whose sign is not
// in the model (the accounting and the model out of step) is an error
// naming the tensor and the side, not a panic.
func TestMissingSide(t *testing.T) {
	m, res := torchModel(t, "toy_qins_log.pt")
	m.Tensors[2].Name = "renamed"
	_, err := Load(m, res, Options{})
	want := `tensor "blocks.0.attn.q.stored": qins-log needs "blocks.0.attn.q.sign" beside it, and the model has no such tensor`
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "toy_qins_log.pt") {
		t.Errorf("error %v\nwant %s", err, want)
	}
}

// TestLoadNeverPanics mutates the tensor tables of the fixtures at random
// (shapes, offsets, sizes, dtypes, strides, quantization parameters): Load
// and Run either work or return an error.
func TestLoadNeverPanics(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	files := []string{"qins_rational_u8.pt", "qins_rational_f32.pt", "dynamic_qint8.pt", "gptq_small.pt", "small_bf16.pt", "slice_view.pt"}
	dtypes := []string{"uint8", "int8", "int32", "int64", "float16", "bfloat16", "float32", "qint8", "q4_0", "bogus"}
	vals := []int64{-1, 0, 1, 2, 3, 7, 64, 4096, 1 << 20, 1 << 40, 1<<63 - 1}
	for i := range 400 {
		m, _ := torchModel(t, files[i%len(files)])
		for range 1 + r.IntN(3) {
			x := &m.Tensors[r.IntN(len(m.Tensors))]
			v := vals[r.IntN(len(vals))]
			switch r.IntN(8) {
			case 0:
				x.Shape = []int64{v, vals[r.IntN(len(vals))]}
			case 1:
				x.ViewOffset = v
			case 2:
				x.DataOffset = v
			case 3:
				x.StorageBytes = v
			case 4:
				x.DType = dtypes[r.IntN(len(dtypes))]
			case 5:
				x.Strides = []int64{v, 1}
			case 6:
				x.QScale, x.QZeroPoint = float64(v)/1e6, v
			case 7:
				x.Shape = nil
			}
		}
		res, err := accounting.Audit(m, accounting.Options{})
		if err != nil {
			continue
		}
		p, err := Load(m, res, Options{Batch: 2})
		if err != nil {
			continue
		}
		if _, err := p.Run(); err != nil {
			t.Fatal(err)
		}
	}
}
