package accounting

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// builder makes in-memory models: each tensor gets its own storage unless
// tied to another.
type builder struct{ m Model }

func newModel() *builder {
	return &builder{m: Model{Files: []File{{Path: "m.pt", Format: "pytorch-zip"}}}}
}

func (b *builder) t(name, dtype string, shape ...int64) *builder {
	d, _ := LookupDType(dtype)
	n, _ := Numel(shape)
	size, _ := d.Bytes(n)
	b.m.Tensors = append(b.m.Tensors, Tensor{Name: name, DType: dtype, Shape: shape,
		Storage: fmt.Sprintf("data/%d", len(b.m.Tensors)), StorageBytes: size})
	return b
}

// tie makes the last tensor view the storage of the named one.
func (b *builder) tie(to string) *builder {
	last := &b.m.Tensors[len(b.m.Tensors)-1]
	for _, t := range b.m.Tensors {
		if t.Name == to {
			last.Storage, last.StorageBytes = t.Storage, t.StorageBytes
		}
	}
	return b
}

func (b *builder) model() *Model {
	var size int64 = 1000
	for _, t := range b.m.Tensors {
		size += t.StorageBytes
	}
	b.m.Files[0].SizeBytes = size
	return &b.m
}

var toyLinears = []struct {
	name    string
	out, in int64
}{
	{"attn.q", 256, 256}, {"attn.k", 256, 256}, {"attn.v", 256, 256}, {"attn.o", 256, 256},
	{"ffn.up", 1024, 256}, {"ffn.down", 256, 1024},
}

// seedToy is the seed's toy model: 5000x256 embedding, 3 blocks of six
// linears; qins swaps each linear for the QINS log codec's buffers.
func seedToy(qins bool) *Model {
	b := newModel().t("embed.weight", "float32", 5000, 256)
	for blk := 0; blk < 3; blk++ {
		for _, l := range toyLinears {
			mod := fmt.Sprintf("blocks.%d.%s", blk, l.name)
			if !qins {
				b.t(mod+".weight", "float32", l.out, l.in)
				continue
			}
			b.t(mod+".stored", "uint8", l.out, l.in).t(mod+".sign", "int8", l.out, l.in).
				t(mod+".log_min", "float32").t(mod+".log_max", "float32")
		}
	}
	return b.model()
}

func role(t *testing.T, r *Result, name string) Group {
	t.Helper()
	for _, g := range r.Roles {
		if g.Key == name {
			return g
		}
	}
	t.Fatalf("no role %q in %+v", name, r.Roles)
	return Group{}
}

func TestSeedToyNumbers(t *testing.T) {
	fp32, err := Audit(seedToy(false), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Without encoding every linear weight is plain: untouched.
	if g := role(t, fp32, "untouched"); g.Params != 2359296 || g.StoredBytes != 9*MiB {
		t.Errorf("fp32 linears: %+v", g)
	}
	qins, err := Audit(seedToy(true), Options{})
	if err != nil {
		t.Fatal(err)
	}
	lin := role(t, qins, "encoded_linear")
	if lin.Params != 2359296 || lin.BaselineBytes != 9*MiB || lin.StoredBytes != 9*MiB/2+18*2*4 {
		t.Errorf("encoded linears: %+v", lin)
	}
	if got := fmt.Sprintf("%.2f %.2f", lin.Ratio(), lin.BitsPerWeight()); got != "2.00 16.00" {
		t.Errorf("encoded linears ratio, bits = %s, want 2.00 16.00", got)
	}
	emb := role(t, qins, "embedding")
	if emb.Params != 1280000 || emb.StoredBytes != 5120000 || emb.BaselineBytes != 5120000 {
		t.Errorf("embedding: %+v", emb)
	}
	tot := qins.Total
	if got := fmt.Sprintf("%.2f %.2f %.2f", float64(tot.BaselineBytes)/MiB, float64(tot.StoredBytes)/MiB, tot.Ratio()); got != "13.88 9.38 1.48" {
		t.Errorf("total baseline MiB, stored MiB, ratio = %s, want 13.88 9.38 1.48", got)
	}
	if fp32.Total.BaselineBytes != qins.Total.BaselineBytes {
		t.Errorf("baselines differ: fp32 %d, qins %d", fp32.Total.BaselineBytes, qins.Total.BaselineBytes)
	}
	// The int8 sign: one finding per module, 7/8 of its bytes saveable.
	var side int64
	n := 0
	for _, f := range qins.Findings {
		if f.Kind == SidecarOverhead {
			n++
			side += f.Bytes
		}
		if f.Kind == EncodedButUncompressed {
			t.Errorf("unexpected %v", f)
		}
	}
	if n != 18 || side != 2359296*7/8 {
		t.Errorf("sidecar findings: %d, %d bytes; want 18, %d", n, side, 2359296*7/8)
	}
	// The embedding is in no layer: its group comes first, and the layers
	// add up to the total.
	if len(qins.Layers) != 4 || qins.Layers[0].Key != "" || qins.Layers[0].Params != 1280000 ||
		qins.Layers[3].Key != "blocks.2" || qins.Layers[1].Params != 786432 {
		t.Errorf("layers: %+v", qins.Layers)
	}
	var sum Group
	for _, g := range qins.Layers {
		sum.Params += g.Params
		sum.StoredBytes += g.StoredBytes
	}
	if sum.Params != qins.Total.Params || sum.StoredBytes != qins.Total.StoredBytes {
		t.Errorf("layers sum to %+v, total %+v", sum, qins.Total)
	}
}

func TestRationalFloat32IsUncompressed(t *testing.T) {
	b := newModel().t("embed.weight", "float32", 100, 64)
	for _, l := range []string{"attn.v", "attn.o"} {
		b.t("blocks.0."+l+".weight_qins", "float32", 64, 64).t("blocks.0."+l+".alpha", "float32")
	}
	r, err := Audit(b.model(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	lin := role(t, r, "encoded_linear")
	if lin.Params != 2*4096 || lin.BaselineBytes != 2*4096*4 || lin.StoredBytes != 2*4096*4+8 {
		t.Fatalf("encoded: %+v", lin)
	}
	if got := fmt.Sprintf("%.2f", lin.Ratio()); got != "1.00" {
		t.Errorf("ratio %s, want 1.00", got)
	}
	var mods []string
	for _, f := range r.Findings {
		if f.Kind == EncodedButUncompressed {
			mods = append(mods, f.Module)
			if f.Severity != Error || len(f.Tensors) != 2 {
				t.Errorf("finding %+v", f)
			}
		}
	}
	if !slices.Equal(mods, []string{"blocks.0.attn.v", "blocks.0.attn.o"}) {
		t.Errorf("uncompressed modules %v", mods)
	}
	// The uint8 twin is compressed 4x and not flagged.
	b = newModel().t("blocks.0.attn.v.weight_qins", "uint8", 64, 64)
	r, _ = Audit(b.model(), Options{})
	if len(r.Findings) != 0 || r.Total.Ratio() != 4 {
		t.Errorf("uint8 rational: ratio %v, findings %v", r.Total.Ratio(), r.Findings)
	}
}

func TestTiedHeadSharedStorage(t *testing.T) {
	m := newModel().t("embed.weight", "float32", 100, 64).t("blocks.0.attn.q.weight", "float32", 64, 64).
		t("lm_head.weight", "float32", 100, 64).tie("embed.weight").model()
	r, err := Audit(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	emb := role(t, r, "embedding")
	if emb.Tensors != 2 || emb.TheoreticalBytes != 25600 || emb.StoredBytes != 25600 || emb.BaselineBytes != 25600 || emb.Params != 6400 {
		t.Errorf("embedding: %+v", emb)
	}
	head := r.Rows[2]
	if !head.Tied || head.StoredBytes != 0 || head.BaselineBytes != 0 || !slices.Equal(head.SharesStorageWith, []string{"embed.weight"}) {
		t.Errorf("head row: %+v", head)
	}
	if len(r.Findings) != 1 || r.Findings[0].Kind != SharedStorage || r.Findings[0].Bytes != 25600 {
		t.Errorf("findings: %+v", r.Findings)
	}
}

func TestSliceDeadBytes(t *testing.T) {
	m := newModel().t("part", "float32", 2, 16).model()
	m.Tensors[0].StorageBytes = 8 * 16 * 4 // the parent's storage
	m.Tensors[0].ViewOffset = 2 * 16 * 4
	r, err := Audit(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	row := r.Rows[0]
	if row.StoredBytes != 512 || row.TheoreticalBytes != 128 || row.DeadBytes != 384 {
		t.Errorf("row: %+v", row)
	}
	if len(r.Findings) != 1 || r.Findings[0].Kind != DeadBytes || r.Findings[0].Bytes != 384 {
		t.Errorf("findings: %+v", r.Findings)
	}
}

func TestStridedViewSpan(t *testing.T) {
	// A Fortran-ordered [2,3,4] int64 tensor (strides 1,2,6) covers its
	// whole 24-element storage.
	m := newModel().t("x", "int64", 2, 3, 4).model()
	m.Tensors[0].Strides = []int64{1, 2, 6}
	r, _ := Audit(m, Options{})
	if r.Rows[0].DeadBytes != 0 || r.Rows[0].StoredBytes != 192 {
		t.Errorf("row: %+v", r.Rows[0])
	}
}

func TestLeftoverWeight(t *testing.T) {
	m := newModel().t("l.stored", "uint8", 8, 8).t("l.sign", "int8", 8, 8).t("l.log_min", "float32").
		t("l.log_max", "float32").t("l.weight", "float32", 8, 8).t("l.bias", "float32", 8).model()
	r, _ := Audit(m, Options{})
	w, b := r.Rows[4], r.Rows[5]
	if w.Role != Untouched || w.Part != "leftover_weight" || w.BaselineBytes != 0 || w.StoredBytes != 256 || w.Params != 0 {
		t.Errorf("leftover: %+v", w)
	}
	// The module's 64 weights are counted once, on the encoded tensor: bits
	// per weight is every stored byte over the model's true weights.
	if r.Total.Params != 64+8 || r.Total.StoredBytes != 64+64+4+4+256+32 {
		t.Errorf("total: %+v", r.Total)
	}
	if b.Role != Untouched || b.Part != "bias" || b.Module != "l" || b.BaselineBytes != 32 {
		t.Errorf("bias: %+v", b)
	}
	var kinds []FindingKind
	for _, f := range r.Findings {
		kinds = append(kinds, f.Kind)
	}
	if !slices.Equal(kinds, []FindingKind{DuplicateWeight, SidecarOverhead}) {
		t.Errorf("finding kinds %v", kinds)
	}
}

func TestGPTQParams(t *testing.T) {
	m := newModel().t("m.qweight", "int32", 64/8, 32).t("m.qzeros", "int32", 2, 32/8).
		t("m.scales", "float16", 2, 32).t("m.g_idx", "int32", 64).t("m.bias", "float16", 32).model()
	r, _ := Audit(m, Options{})
	lin := role(t, r, "encoded_linear")
	// 2048 4-bit weights: 1024 bytes + zeros 32 + scales 128 + g_idx 256.
	if lin.Params != 2048 || lin.StoredBytes != 1024+32+128+256 || lin.Tensors != 4 {
		t.Errorf("gptq: %+v", lin)
	}
	// A config that the tensors contradict: g_idx says 64 inputs, qweight
	// packs them into 8 rows of int32, so 4 bits; the tensors win.
	m.Quantization = &QuantConfig{Method: "gptq", Bits: 8}
	r, _ = Audit(m, Options{})
	if lin := role(t, r, "encoded_linear"); lin.Params != 2048 {
		t.Errorf("contradicted config: params %d, want 2048", lin.Params)
	}
	var mismatch []Finding
	for _, f := range r.Findings {
		if f.Kind == ConfigMismatch {
			mismatch = append(mismatch, f)
		}
	}
	if len(mismatch) != 1 || mismatch[0].Module != "m" || mismatch[0].Severity != Warning ||
		!strings.Contains(mismatch[0].Message, "says bits 8") || !strings.Contains(mismatch[0].Message, "pack 4 bits per weight") {
		t.Errorf("config-mismatch findings %+v", mismatch)
	}
	// Without g_idx the tensors do not tell the bits: the config's are used.
	m = newModel().t("m.qweight", "int32", 64/8, 32).t("m.qzeros", "int32", 2, 32/8).t("m.scales", "float16", 2, 32).model()
	m.Quantization = &QuantConfig{Method: "gptq", Bits: 8}
	r, _ = Audit(m, Options{})
	if lin := role(t, r, "encoded_linear"); lin.Params != 1024 {
		t.Errorf("8-bit gptq without g_idx: params %d, want 1024", lin.Params)
	}
	for _, f := range r.Findings {
		if f.Kind == ConfigMismatch {
			t.Errorf("unexpected %+v", f)
		}
	}
}

// TestUnknownEncoding: a 2-D integer tensor that no scheme matches is a
// finding pointing at --rules; an int64 index, a row vector or a 3-D uint8
// image is not.
func TestUnknownEncoding(t *testing.T) {
	m := newModel().t("l.packed", "int32", 16, 64).t("l.scale", "float16", 64).
		t("pos.position_ids", "int64", 1, 512).t("row.codes", "uint8", 1, 64).
		t("conv.q", "qint8", 8, 1, 3, 3).t("img.rgb", "uint8", 3, 32, 32).model()
	r, _ := Audit(m, Options{})
	var got []Finding
	for _, f := range r.Findings {
		if f.Kind == UnknownEncoding {
			got = append(got, f)
		}
	}
	// A quantized PyTorch conv weight is a torch-qint8 weight, so it is no
	// unknown encoding.
	if len(got) != 1 || !slices.Equal(got[0].Tensors, []string{"l.packed"}) || got[0].Bytes != 16*64*4 || !strings.Contains(got[0].Message, "--rules") {
		t.Errorf("unknown-encoding findings %+v", got)
	}
	if c := r.Rows[4]; c.Name != "conv.q" || !c.Encoded || c.Scheme != "torch-qint8" {
		t.Errorf("conv.q: %+v", c)
	}
}

func TestOptimizerKeys(t *testing.T) {
	for _, k := range optimizerKeys {
		if !strings.HasPrefix(k, "opt") || !isOptimizer(k+".0.exp_avg") || isOptimizer(k) {
			t.Errorf("optimizer key %q: isOptimizer does not find it under a container", k)
		}
	}
	if isOptimizer("model.layers.0.adaptor.weight") || !isOptimizer("model.optim.0.state") {
		t.Error("isOptimizer")
	}
}

// TestHeldByOptimizer: a tensor held by a pickled torch optimizer object
// is optimizer state whatever the keys above it; torch.optim.swa_utils'
// AveragedModel is a copy of the model, not an optimizer.
func TestHeldByOptimizer(t *testing.T) {
	for owners, want := range map[string]bool{
		"torch.optim.sgd.SGD":                    true,
		"__main__.Trainer torch.optim.adam.Adam": true,
		"torch.optim.swa_utils.AveragedModel":    false,
		"torch.nn.modules.linear.Linear":         false,
		"mylib.torch.optim.Thing":                false,
		"":                                       false,
	} {
		if got := heldByOptimizer(strings.Fields(owners)); got != want {
			t.Errorf("heldByOptimizer(%q) = %v, want %v", owners, got, want)
		}
	}
	m := newModel().t("model.w", "float32", 4).t("opt.state.<value 0>.momentum_buffer", "float32", 4).model()
	m.Tensors[1].Owners = []string{"torch.optim.sgd.SGD"}
	r, err := Audit(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Total.Tensors != 1 || r.Total.StoredBytes != 16 || r.Rows[1].Role != OptimizerState {
		t.Errorf("total %+v, %s role %s; want the model's tensor only", r.Total, r.Rows[1].Name, r.Rows[1].Role)
	}
}

func TestOptimizerStateExcluded(t *testing.T) {
	m := newModel().t("model.embed.weight", "float32", 10, 4).t("optimizer.state.0.exp_avg", "float32", 10, 4).
		t("optimizer.state.0.step", "float32").model()
	r, _ := Audit(m, Options{})
	if r.Total.Tensors != 1 || r.Total.StoredBytes != 160 {
		t.Errorf("total: %+v", r.Total)
	}
	if g := role(t, r, "optimizer_state"); g.Tensors != 2 || g.StoredBytes != 164 {
		t.Errorf("optimizer: %+v", g)
	}
	if r.Files[0].StoredBytes != 324 || r.Files[0].OverheadBytes != 1000 {
		t.Errorf("file: %+v", r.Files[0])
	}
}

func TestBaselineOption(t *testing.T) {
	r, err := Audit(seedToy(true), Options{Baseline: "float16"})
	if err != nil {
		t.Fatal(err)
	}
	if lin := role(t, r, "encoded_linear"); lin.BaselineBytes != 9*MiB/2 {
		t.Errorf("fp16 baseline %d", lin.BaselineBytes)
	}
	if _, err := Audit(seedToy(true), Options{Baseline: "int8"}); err == nil {
		t.Error("int8 baseline accepted")
	}
}

func TestUnknownDType(t *testing.T) {
	m := newModel().model()
	m.Tensors = append(m.Tensors, Tensor{Name: "blk.0.ffn_up.weight", DType: "ggml_unknown_99", Shape: []int64{4, 4}, Storage: "a", StorageBytes: 10})
	r, err := Audit(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Rows[0].TheoreticalBytes != 10 || len(r.Findings) != 1 || r.Findings[0].Kind != UnknownDType {
		t.Errorf("row %+v findings %+v", r.Rows[0], r.Findings)
	}
}

func TestLayerOf(t *testing.T) {
	for name, want := range map[string]string{
		"model.layers.3.mlp.up_proj.weight": "model.layers.3",
		"blocks.0.attn.q.stored":            "blocks.0",
		"transformer.h.11.attn.c_attn.bias": "transformer.h.11",
		"blk.7.ffn_up.weight":               "blk.7",
		"embed.weight":                      "",
		"highway.0.weight":                  "",
		"model.layers.3.blocks.2.attn":      "model.layers.3.blocks.2",
		"layers.12":                         "layers.12",
		"layers.x.weight":                   "",
		"layers./1.layers.2/":               "",
		"a.blocks.7":                        "a.blocks.7",
		"h.":                                "",
		"":                                  "",
	} {
		if got := LayerOf(name); got != want {
			t.Errorf("LayerOf(%q) = %q, want %q", name, got, want)
		}
	}
}

// FuzzLayerOf holds LayerOf's one-pass walk to its definition, written
// plainly: the name up to the last component of digits that follows a
// layer word.
func FuzzLayerOf(f *testing.F) {
	for _, s := range []string{"model.layers.3.mlp.up_proj.weight", "h.11", "h..1", ".layers.0", "layers.0.", "a.blk.07.b.block.x", "..", "layer.1.layer.2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		want := ""
		parts := strings.Split(name, ".")
		for i := 1; i < len(parts); i++ {
			p := parts[i]
			if p != "" && strings.Trim(p, "0123456789") == "" && slices.Contains([]string{"layers", "blocks", "h", "blk", "layer", "block"}, parts[i-1]) {
				want = strings.Join(parts[:i+1], ".")
			}
		}
		if got := LayerOf(name); got != want {
			t.Fatalf("LayerOf(%q) = %q, want %q", name, got, want)
		}
	})
}

func TestFileLabelAndRemovedTypes(t *testing.T) {
	m := newModel().t("blk.0.ffn_up.weight", "q8_0", 64, 256).t("blk.0.ffn_down.weight", "q4_0_4_4", 256, 64).
		t("output_norm.weight", "float32", 64).model()
	m.Files[0].Label, m.Files[0].LabelDType = "MOSTLY_Q4_K_M", "q4_k"
	r, err := Audit(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []FindingKind
	for _, f := range r.Findings {
		kinds = append(kinds, f.Kind)
	}
	if !slices.Equal(kinds, []FindingKind{FileTypeMismatch, RemovedGGMLType}) {
		t.Fatalf("findings %+v", r.Findings)
	}
	if msg := r.Findings[0].Message; msg != "m.pt says MOSTLY_Q4_K_M (mostly q4_k), but no tensor is q4_k; present: q8_0 17408 bytes, q4_0_4_4 9216 bytes, float32 256 bytes" {
		t.Errorf("message %q", msg)
	}
	if got := r.DTypes[0].Key + " " + r.DTypes[2].Key; got != "q8_0 float32" {
		t.Errorf("dtype groups by stored bytes: %+v", r.DTypes)
	}
	// The label's dtype present: no mismatch.
	m.Tensors[0].DType = "q4_k"
	m.Tensors[0].StorageBytes = 9216
	r, _ = Audit(m, Options{})
	if len(r.Findings) != 1 || r.Findings[0].Kind != RemovedGGMLType {
		t.Errorf("findings %+v", r.Findings)
	}
}

// TestManyViewsOfOneStorage: a flattened-parameter checkpoint puts
// thousands of tensors on one storage; the names recorded grow linearly
// with them, not quadratically.
func TestManyViewsOfOneStorage(t *testing.T) {
	const n = 20000
	m := &Model{Files: []File{{Path: "flat.pt", SizeBytes: n * 16}}}
	for i := 0; i < n; i++ {
		m.Tensors = append(m.Tensors, Tensor{Name: fmt.Sprintf("layers.%d.w", i), DType: "float32", Shape: []int64{4},
			Storage: "data/0", StorageBytes: n * 16, ViewOffset: int64(i) * 16})
	}
	r, err := Audit(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	names := 0
	for _, row := range r.Rows {
		names += len(row.SharesStorageWith)
	}
	if names != 2*(n-1) || len(r.Rows[0].SharesStorageWith) != n-1 || r.Rows[n-1].SharesStorageWith[0] != "layers.0.w" {
		t.Errorf("%d names recorded, want %d", names, 2*(n-1))
	}
	if r.Total.StoredBytes != n*16 || r.Rows[0].DeadBytes != 0 {
		t.Errorf("total %+v, dead %d", r.Total, r.Rows[0].DeadBytes)
	}
}

// TestDistinctStoragesByOffset: a model whose data offsets rise through its
// tensors is charged without a map of storages; the figures are those of
// the map's path (taken when the offsets do not tell, DataOffset -1), and
// a shared storage is never taken for distinct ones.
func TestDistinctStoragesByOffset(t *testing.T) {
	m := newModel().t("a", "float32", 2, 16).t("b", "int64", 2, 3, 4).t("c", "float16", 8).t("d", "float32", 4).model()
	m.Files = append(m.Files, File{Path: "n.pt", Format: "pytorch-zip"})
	m.Tensors[0].StorageBytes, m.Tensors[0].ViewOffset = 8*16*4, 2*16*4 // a slice of its storage
	m.Tensors[1].Strides = []int64{1, 2, 6}
	m.Tensors[3].File = 1
	for i := range m.Tensors {
		m.Tensors[i].DataOffset = int64(1000 * i)
	}
	if !storagesDistinct(m) {
		t.Fatal("rising offsets not seen as distinct storages")
	}
	fast, err := Audit(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Tensors {
		m.Tensors[i].DataOffset = -1
	}
	slow, err := Audit(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", fast) != fmt.Sprintf("%+v", slow) {
		t.Errorf("by offset:\n%+v\nby storage map:\n%+v", fast, slow)
	}
	if fast.Rows[0].DeadBytes != 384 || fast.Rows[1].DeadBytes != 0 {
		t.Errorf("rows: %+v", fast.Rows)
	}
	// Two tensors of one storage have one offset: not distinct.
	tied := newModel().t("w", "float32", 4).t("head", "float32", 4).model()
	tied.Tensors[1].Storage = tied.Tensors[0].Storage
	tied.Tensors[0].DataOffset, tied.Tensors[1].DataOffset = 64, 64
	if storagesDistinct(tied) {
		t.Error("a shared storage taken for two")
	}
	r, err := Audit(tied, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Rows[0].StoredBytes != 16 || r.Rows[1].StoredBytes != 0 || !r.Rows[1].Tied {
		t.Errorf("tied rows: %+v", r.Rows)
	}
	// Offsets that fall are sorted; two storages at one offset (which no
	// loader makes) leave it to the map.
	tied.Tensors[1].Storage = "other"
	for _, c := range []struct {
		off      [2]int64
		distinct bool
	}{{[2]int64{64, 0}, true}, {[2]int64{0, 0}, false}, {[2]int64{64, -1}, false}} {
		tied.Tensors[0].DataOffset, tied.Tensors[1].DataOffset = c.off[0], c.off[1]
		if storagesDistinct(tied) != c.distinct {
			t.Errorf("offsets %v: distinct %v, want %v", c.off, !c.distinct, c.distinct)
		}
	}
	// A tensor of a file seen before, at an offset of its own: distinct.
	m.Tensors[0].DataOffset, m.Tensors[1].DataOffset, m.Tensors[2].DataOffset, m.Tensors[3].DataOffset = 5000, 0, 1000, 3000
	m.Tensors[1].File, m.Tensors[3].File = 1, 0
	if !storagesDistinct(m) {
		t.Error("distinct offsets out of order taken for a shared storage")
	}
	m.Tensors[1].File = 0 // now file 0 holds 0, 3000 and 5000; file 1, 1000
	m.Tensors[2].DataOffset = 5000
	if storagesDistinct(m) {
		t.Error("tensors 0 and 2 at one offset of one file taken for distinct storages")
	}
}

// TestChargeStoragesAgrees holds the storage charging to its definition,
// written with a map: per file and storage key, the first tensor in order
// is charged the storage's bytes and names the others, which name it. The
// keys come as torch.save writes them ("data/0", "data/1", ... in string
// order, a few ascending runs), in no order at all, and shared at random,
// across files that are visited more than once.
func TestChargeStoragesAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n := 1 + rng.IntN(300)
		m := &Model{Files: []File{{Path: "a.pt"}, {Path: "b.pt"}, {Path: "c.pt"}}}
		keys := make([]string, 1+rng.IntN(n))
		for i := range keys {
			keys[i] = fmt.Sprintf("data/%d", i)
		}
		if trial%2 == 0 {
			slices.Sort(keys) // torch.save's order
		} else {
			rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		}
		// Half the trials place each storage at an offset of its own, as
		// the loaders do (the offsets then decide whether any is shared);
		// the others do not say (-1).
		offset := func(file int, key string) int64 {
			if trial%4 < 2 {
				return -1
			}
			i, _ := strconv.Atoi(strings.TrimPrefix(key, "data/"))
			return int64(file)<<20 + 64*int64(i)
		}
		file := 0
		for i := range n {
			if rng.IntN(20) == 0 {
				file = rng.IntN(len(m.Files))
			}
			k := keys[min(i, len(keys)-1)]
			if rng.IntN(4) == 0 {
				k = keys[rng.IntN(len(keys))] // a view of another tensor's storage
			}
			m.Tensors = append(m.Tensors, Tensor{Name: fmt.Sprintf("t%d.w", i), File: file, DType: "float32",
				Shape: []int64{4}, Storage: k, StorageBytes: 64, ViewOffset: int64(16 * rng.IntN(4)), DataOffset: offset(file, k)})
		}
		r, err := Audit(m, Options{})
		if err != nil {
			t.Fatal(err)
		}
		type key struct {
			file    int
			storage string
		}
		first := map[key]int{}
		want := make([][]string, n)
		for i, tn := range m.Tensors {
			k := key{tn.File, tn.Storage}
			f, ok := first[k]
			if !ok {
				first[k] = i
				continue
			}
			want[f] = append(want[f], tn.Name)
			want[i] = []string{m.Tensors[f].Name}
		}
		for i, row := range r.Rows {
			f := first[key{m.Tensors[i].File, m.Tensors[i].Storage}]
			stored := int64(0)
			if f == i {
				stored = 64
			}
			if row.StoredBytes != stored || !slices.Equal(row.SharesStorageWith, want[i]) {
				t.Fatalf("trial %d, %s (file %d, %s): stored %d, shares %v; want %d, %v",
					trial, row.Name, m.Tensors[i].File, m.Tensors[i].Storage, row.StoredBytes, row.SharesStorageWith, stored, want[i])
			}
		}
	}
}
