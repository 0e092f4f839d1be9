package accounting

import "testing"

// TestClassifySchemes gives each torch-quantized row of the scheme table a
// model in the layout torch writes and checks what every tensor becomes.
func TestClassifySchemes(t *testing.T) {
	dyn := []string{"torch.nn.quantized.dynamic.modules.linear.Linear", "torch.nn.quantized.modules.linear.LinearPackedParams"}
	static := []string{"torchvision.models.quantization.mobilenet.QuantizableMobileNetV2", "torch.classes.quantized.Conv2dPackedParamsBase"}
	type want struct {
		name, scheme string
		part         Part
		module       string
		params       int64
		encoded      bool
	}
	for _, c := range []struct {
		what   string
		build  func(b *builder)
		owners map[string][]string
		want   []want
	}{
		{
			what: "state_dict Linear, per-tensor: static or dynamic alike",
			build: func(b *builder) {
				b.t("fc.scale", "float32").t("fc.zero_point", "int64").
					t("fc._packed_params._packed_params.0", "qint8", 4, 8).t("fc._packed_params._packed_params.1", "float32", 4)
			},
			want: []want{
				{"fc.scale", "torch-qint8", "scale", "fc", 0, true},
				{"fc.zero_point", "torch-qint8", "zero_point", "fc", 0, true},
				{"fc._packed_params._packed_params.0", "torch-qint8", "weight", "fc", 32, true},
				{"fc._packed_params._packed_params.1", "", "bias", "fc", 4, false},
			},
		},
		{
			what: "state_dict Conv2d, per-channel: q_scales float64, q_zero_points int64",
			build: func(b *builder) {
				b.t("conv.weight", "qint8", 8, 3, 3, 3).t("conv.weight.q_scales", "float64", 8).
					t("conv.weight.q_zero_points", "int64", 8).t("conv.bias", "float32", 8)
			},
			want: []want{
				{"conv.weight", "torch-qint8", "weight", "conv", 216, true},
				{"conv.weight.q_scales", "torch-qint8", "scale", "conv", 0, true},
				{"conv.weight.q_zero_points", "torch-qint8", "zero_point", "conv", 0, true},
				{"conv.bias", "", "bias", "conv", 8, false},
			},
		},
		{
			what: "TorchScript dynamic Linear, older <module>._packed_params.0 layout",
			build: func(b *builder) {
				b.t("enc.linear1._packed_params.0", "qint8", 16, 16).t("enc.linear1._packed_params.1", "float32", 16)
			},
			owners: map[string][]string{"enc.linear1._packed_params.0": dyn, "enc.linear1._packed_params.1": dyn},
			want: []want{
				{"enc.linear1._packed_params.0", "torch-dynamic-qint8", "weight", "enc.linear1", 256, true},
				{"enc.linear1._packed_params.1", "", "bias", "enc.linear1", 16, false},
			},
		},
		{
			what: "TorchScript static conv packed params, hoisted by the JIT; int16 config stays a buffer",
			build: func(b *builder) {
				b.t("_jit_pass_hoist_conv_packed_params.features.0.0._packed_params.1.1.0.0", "int16", 11).
					t("_jit_pass_hoist_conv_packed_params.features.0.0._packed_params.1.1.0.1", "qint8", 32, 3, 3, 3)
			},
			owners: map[string][]string{"_jit_pass_hoist_conv_packed_params.features.0.0._packed_params.1.1.0.1": static},
			want: []want{
				{"_jit_pass_hoist_conv_packed_params.features.0.0._packed_params.1.1.0.0", "", "buffer", "_jit_pass_hoist_conv_packed_params.features.0.0._packed_params.1.1.0", 11, false},
				{"_jit_pass_hoist_conv_packed_params.features.0.0._packed_params.1.1.0.1", "torch-static-qint8", "weight", "_jit_pass_hoist_conv_packed_params.features.0.0", 864, true},
			},
		},
		{
			what: "torch.save(model) of a static Linear: weight and bias inside the packed tuple",
			build: func(b *builder) {
				b.t("fc1._packed_params._packed_params.0.0", "qint8", 16, 288).t("fc1._packed_params._packed_params.0.1", "float32", 16)
			},
			owners: map[string][]string{"fc1._packed_params._packed_params.0.0": {"__main__.Net", "torch.ao.nn.quantized.modules.linear.Linear", "torch.ao.nn.quantized.modules.linear.LinearPackedParams"}},
			want: []want{
				{"fc1._packed_params._packed_params.0.0", "torch-static-qint8", "weight", "fc1", 4608, true},
				{"fc1._packed_params._packed_params.0.1", "", "bias", "fc1", 16, false},
			},
		},
		{
			what: "a 1-D quantized tensor is no weight; a class outside torch's quantized modules names no mode",
			build: func(b *builder) {
				b.t("act", "quint8", 16).t("custom.w", "qint8", 4, 4)
			},
			owners: map[string][]string{"custom.w": {"mymodels.Custom"}},
			want: []want{
				{"act", "", "buffer", "", 16, false},
				{"custom.w", "torch-qint8", "weight", "custom", 16, true},
			},
		},
	} {
		t.Run(c.what, func(t *testing.T) {
			b := newModel()
			c.build(b)
			m := b.model()
			for i := range m.Tensors {
				m.Tensors[i].Owners = c.owners[m.Tensors[i].Name]
			}
			cls := Classify(m)
			for i, w := range c.want {
				got := cls[i]
				if m.Tensors[i].Name != w.name || got.Scheme != w.scheme || got.Part != w.part || got.Module != w.module ||
					got.Params != w.params || got.Encoded != w.encoded {
					t.Errorf("%s: %+v, want %+v", m.Tensors[i].Name, got, w)
				}
			}
		})
	}
}

// TestTrainingStateKeys: Lightning's and other training loops' top-level
// keys hold training state, not the model; the same words deeper down are
// module names.
func TestTrainingStateKeys(t *testing.T) {
	m := newModel().t("state_dict.model.fc.weight", "float32", 4, 4).
		t("optimizer_states.0.state.0.exp_avg", "float32", 4, 4).
		t("lr_schedulers.0.base_lrs", "float32", 1).
		t("callbacks.ModelCheckpoint.best_model_score", "float32").
		t("loops.fit_loop.state", "float32").
		t("ema.module.fc.weight", "float32", 4, 4).
		t("model.ema.weight", "float32", 4).model()
	r, _ := Audit(m, Options{})
	if r.Total.Tensors != 2 || r.Total.Params != 20 {
		t.Errorf("model: %+v, want the two model tensors", r.Total)
	}
	if g := role(t, r, "optimizer_state"); g.Tensors != 5 {
		t.Errorf("training state: %+v, want 5 tensors", g)
	}
}

// TestEMAOnly: a file holding nothing but an EMA copy holds the model.
func TestEMAOnly(t *testing.T) {
	r, _ := Audit(newModel().t("ema.fc.weight", "float32", 4, 4).t("ema.fc.bias", "float32", 4).model(), Options{})
	if r.Total.Tensors != 2 || r.Total.Params != 20 {
		t.Errorf("model: %+v, want both tensors", r.Total)
	}
}

// TestEmbeddingByOwner: a weight is an embedding table when torch's class
// says so, whatever the module is called; the innermost module decides
// (packed params and script objects inside it are skipped), and a class of
// one's own that is merely named Embedding does not count.
func TestEmbeddingByOwner(t *testing.T) {
	for _, c := range []struct {
		name   string
		owners []string
		want   Role
	}{
		{"tok.weight", []string{"__main__.M", "torch.nn.modules.sparse.Embedding"}, Embedding},
		{"tok.weight", []string{"M", "__torch__.torch.nn.modules.sparse.EmbeddingBag"}, Embedding},
		{"proj.weight", []string{"torch.nn.modules.sparse.Embedding", "torch.nn.modules.linear.Linear"}, Untouched},
		{"patch.proj.weight", []string{"__main__.Embedding", "torch.nn.modules.conv.Conv2d"}, Untouched},
		{"tok.weight", []string{"__main__.Embedding"}, Untouched},
		{"tok.weight", nil, Untouched},
		{"embed_tokens.weight", nil, Embedding}, // the name rule still holds
	} {
		m := &Model{Tensors: []Tensor{{Name: c.name, DType: "float32", Shape: []int64{10, 4}, Owners: c.owners}}}
		if got := Classify(m)[0].Role; got != c.want {
			t.Errorf("%s held by %v: role %s, want %s", c.name, c.owners, got, c.want)
		}
	}
}
