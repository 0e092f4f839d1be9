package accounting

import "slices"

// Scheme describes one way of storing a linear layer's weight in encoded or
// quantized form: which tensors of a module make it up and how many logical
// weights its main tensor holds. A module is recognised as using a scheme
// when it has the main tensor and every required side tensor, with the
// dtypes listed.
type Scheme struct {
	Name string // "qins-log", "gptq", ...
	// Main is the tensor that holds the encoded weights.
	Main PartRule
	// Sides are the companion tensors: signs, scales, zero points, ranges.
	Sides []PartRule
	// WeightBits is the number of bits one logical weight takes in the main
	// tensor's elements (4 for int4 packed into int32). 0 means one logical
	// weight per element. A quantization_config's bits override it.
	WeightBits int
	// Packed tells layouts that pack along different axes apart, by the
	// last dimension of the "scale" side, which is the output dimension:
	// "rows" packs the first axis (GPTQ's qweight [in/8, out]: same last
	// dimension as the scales), "cols" the last (AWQ's [in, out/8]: the
	// scales' last dimension is 8 times larger). "" checks nothing.
	Packed string
	// Method is the quantization_config quant_method the scheme belongs to;
	// when a config names another method, the scheme is not tried.
	Method string
	// Owner, when set, must be part of one of the classes that hold the
	// main tensor (Tensor.Owners): "quantized.dynamic." tells a
	// dynamically quantized Linear from a static one where the file names
	// its classes.
	Owner string
	// Doc says where the layout comes from.
	Doc string
}

// PartRule matches one tensor of an encoded module.
type PartRule struct {
	// Leaf is the tensor's name relative to its module: "stored",
	// "qweight". A main rule with no Leaf matches by dtype alone any
	// tensor of two or more dimensions (a weight matrix or a convolution
	// kernel), wherever the file puts it; its module is the name up to
	// "._packed_params", if that is in it, else the name's dotted prefix.
	Leaf string
	// OfTensor names a side after the main tensor rather than its module:
	// <main>.<Leaf> (a quantized tensor's per-channel scales).
	OfTensor bool
	// Part names what the tensor is for: "weight" (the encoded weights),
	// "sign", "scale", "zero_point", "range", "group_index", "param".
	Part Part
	// DTypes lists the accepted dtypes; empty accepts any.
	DTypes []string
	// Optional parts may be absent.
	Optional bool
	// NeedBits, when non-zero, is how many bits per element the part's
	// information needs (a sign needs 1); a part stored wider than that is
	// reported as sidecar overhead.
	NeedBits int
}

var floats = []string{"float32", "float16", "bfloat16"}

// schemes lists every encoding of linear layers qinsaudit recognises, in
// the order they are tried. New scheme: one entry here, one case in
// TestClassifySchemes.
var schemes = []Scheme{
	{
		Name: "qins-log",
		Doc:  "QINS logarithmic codec (seed src/qins_codec.py QINSLinear): uint8 log-magnitude codes, int8 signs, float32 log range",
		Main: PartRule{Leaf: "stored", Part: "weight", DTypes: []string{"uint8"}},
		Sides: []PartRule{
			{Leaf: "sign", Part: "sign", DTypes: []string{"int8", "uint8", "bool"}, NeedBits: 1},
			{Leaf: "log_min", Part: "range"},
			{Leaf: "log_max", Part: "range"},
		},
	},
	{
		Name: "qins-rational",
		Doc:  "QINS rational codec (seed qins_weight_codec.py QINSWeightLinear): e = sign/(1+alpha|w|), float or uint8",
		Main: PartRule{Leaf: "weight_qins", Part: "weight", DTypes: []string{"float32", "float16", "bfloat16", "uint8"}},
		Sides: []PartRule{
			{Leaf: "alpha", Part: "param", Optional: true},
		},
	},
	{
		Name: "torch-dynamic-qint8", Owner: "quantized.dynamic.",
		Doc:  "PyTorch dynamic quantization (torch.ao.nn.quantized.dynamic.Linear, the file names the class): weights quantized ahead of time, activations at run time; per-tensor or per-channel affine",
		Main: PartRule{Part: "weight", DTypes: torchQuantized}, Sides: torchQuantizedSides,
	},
	{
		Name: "torch-static-qint8", Owner: "quantized.",
		Doc:  "PyTorch static quantization (torch.ao.nn.quantized Linear and Conv1d/2d/3d, their packed params in TorchScript: the file names the class): weights and activations quantized, with calibrated output scale and zero point",
		Main: PartRule{Part: "weight", DTypes: torchQuantized}, Sides: torchQuantizedSides,
	},
	{
		Name: "torch-qint8",
		Doc:  "a PyTorch quantized weight whose file does not say whether it was quantized statically or dynamically (a state_dict saves both alike: _packed_params, scale, zero_point)",
		Main: PartRule{Part: "weight", DTypes: torchQuantized}, Sides: torchQuantizedSides,
	},
	{
		Name: "gptq", Method: "gptq", WeightBits: 4, Packed: "rows",
		Doc:  "GPTQ (AutoGPTQ, GPTQModel): int32 qweight [in*bits/32, out] packed along the input dimension, qzeros, scales [in/group, out], g_idx",
		Main: PartRule{Leaf: "qweight", Part: "weight", DTypes: []string{"int32"}},
		Sides: []PartRule{
			{Leaf: "qzeros", Part: "zero_point", DTypes: []string{"int32"}},
			{Leaf: "scales", Part: "scale", DTypes: floats},
			{Leaf: "g_idx", Part: "group_index", DTypes: []string{"int32", "int64"}, Optional: true},
		},
	},
	{
		Name: "awq", Method: "awq", WeightBits: 4, Packed: "cols",
		Doc:  "AWQ (AutoAWQ GEMM): int32 qweight [in, out*bits/32] packed along the output dimension, qzeros, scales [in/group, out]; no g_idx",
		Main: PartRule{Leaf: "qweight", Part: "weight", DTypes: []string{"int32"}},
		Sides: []PartRule{
			{Leaf: "qzeros", Part: "zero_point", DTypes: []string{"int32"}},
			{Leaf: "scales", Part: "scale", DTypes: floats},
		},
	},
	{
		Name: "compressed-tensors", Method: "compressed-tensors", WeightBits: 4,
		Doc:  "compressed-tensors pack-quantized (llm-compressor): int32 weight_packed, weight_shape, weight_scale, optional zero point and g_idx",
		Main: PartRule{Leaf: "weight_packed", Part: "weight", DTypes: []string{"int32"}},
		Sides: []PartRule{
			{Leaf: "weight_scale", Part: "scale"},
			{Leaf: "weight_shape", Part: "shape", Optional: true},
			{Leaf: "weight_zero_point", Part: "zero_point", Optional: true},
			{Leaf: "weight_g_idx", Part: "group_index", Optional: true},
		},
	},
	{
		Name: "bnb-4bit", Method: "bitsandbytes", WeightBits: 4,
		Doc:  "bitsandbytes Linear4bit (NF4/FP4): uint8 weight packing two 4-bit codes, absmax per block, quant_map, nested absmax with double quantization, and a quant_state entry holding the logical shape",
		Main: PartRule{Leaf: "weight", Part: "weight", DTypes: []string{"uint8"}},
		Sides: []PartRule{
			{Leaf: "weight.absmax", Part: "scale"},
			{Leaf: "weight.quant_map", Part: "codebook"},
			{Leaf: "weight.nested_absmax", Part: "scale", Optional: true},
			{Leaf: "weight.nested_quant_map", Part: "codebook", Optional: true},
			{Leaf: "weight.quant_state.bitsandbytes__nf4", Part: "quant_state", Optional: true},
			{Leaf: "weight.quant_state.bitsandbytes__fp4", Part: "quant_state", Optional: true},
		},
	},
	{
		Name: "bnb-8bit", Method: "bitsandbytes",
		Doc:  "bitsandbytes Linear8bitLt (LLM.int8()): int8 weight and a float32 SCB row scale",
		Main: PartRule{Leaf: "weight", Part: "weight", DTypes: []string{"int8"}},
		Sides: []PartRule{
			{Leaf: "SCB", Part: "scale", DTypes: []string{"float32"}},
			{Leaf: "weight_format", Part: "param", Optional: true},
		},
	},
	{
		Name: "fp8-block",
		Doc:  "FP8 with 128x128 block scales (DeepSeek-V3, HF finegrained FP8): float8 weight and weight_scale_inv",
		Main: PartRule{Leaf: "weight", Part: "weight", DTypes: fp8},
		Sides: []PartRule{
			{Leaf: "weight_scale_inv", Part: "scale"},
			{Leaf: "input_scale", Part: "scale", Optional: true},
		},
	},
	{
		Name: "fp8",
		Doc:  "FP8 with per-tensor or per-channel scales (compressed-tensors float-quantized, FBGEMM FP8): float8 weight and weight_scale",
		Main: PartRule{Leaf: "weight", Part: "weight", DTypes: fp8},
		Sides: []PartRule{
			{Leaf: "weight_scale", Part: "scale"},
			{Leaf: "input_scale", Part: "scale", Optional: true},
		},
	},
	{
		Name: "mlx", Method: "mlx", WeightBits: 4,
		Doc:  "MLX affine quantization (mlx.nn.QuantizedLinear): uint32 weight packing 32/bits codes, scales and biases per group",
		Main: PartRule{Leaf: "weight", Part: "weight", DTypes: []string{"uint32"}},
		Sides: []PartRule{
			{Leaf: "scales", Part: "scale", DTypes: floats},
			{Leaf: "biases", Part: "zero_point", DTypes: floats},
		},
	},
}

// torchQuantized are the dtypes of PyTorch's quantized tensors, which carry
// their own affine parameters.
var torchQuantized = []string{"qint8", "quint8", "qint32", "quint4x2", "quint2x4"}

// torchQuantizedSides are a torch quantized weight's side tensors: the
// per-channel scales (float64) and zero points (int64) it carries, and
// the output scale and zero point a module's state_dict saves.
var torchQuantizedSides = []PartRule{
	{Leaf: "q_scales", Part: "scale", OfTensor: true, Optional: true},
	{Leaf: "q_zero_points", Part: "zero_point", OfTensor: true, Optional: true},
	{Leaf: "scale", Part: "scale", Optional: true},
	{Leaf: "zero_point", Part: "zero_point", Optional: true},
}

var fp8 = []string{"float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"}

// Schemes returns the built-in scheme table.
func Schemes() []Scheme { return append([]Scheme(nil), schemes...) }

// BuiltinScheme returns the built-in scheme of that name.
func BuiltinScheme(name string) (Scheme, bool) {
	for _, s := range schemes {
		if s.Name == name {
			return s, true
		}
	}
	return Scheme{}, false
}

// biasLeaves are the names, relative to an encoded module, of the float bias
// it may carry. A bias is never encoded: it is counted as untouched.
var biasLeaves = []string{"bias", "_packed_params._packed_params.1", "_packed_params.1", "_packed_params._packed_params.0.1"}

// The name sets below are switches, not maps: the compiler makes each a
// few comparisons of lengths and bytes, where a map lookup hashes the
// name, and they run on every tensor (map lookups of them were 9% of a
// 100,000-tensor audit); nor do they cost a map built at start-up.

// isEmbeddingModule reports whether a module's last name component is one
// of an input embedding table or an output vocabulary projection.
func isEmbeddingModule(last string) bool {
	switch last {
	case "embed", "embeds", "embedding", "embeddings",
		"embed_tokens", "tok_embeddings", "word_embeddings",
		"wte", "wpe", "position_embeddings",
		"token_type_embeddings", "embed_positions", "embed_in",
		"token_embd", "lm_head", "embed_out", "output":
		return true
	}
	return false
}

// optimizerKeys are the container keys under which a checkpoint keeps
// optimizer state. Each starts with "opt": isOptimizer relies on it, and
// TestOptimizerKeys holds it.
var optimizerKeys = [...]string{"optimizer", "optimizer_state_dict", "optim",
	"optimizer_state", "opt_state", "optimizers", "optimizer_states"}

func isOptimizerKey(k string) bool { return slices.Contains(optimizerKeys[:], k) }

// isCheckpointStateKey reports whether a top-level key of a training
// checkpoint holds training state, not the model: PyTorch Lightning's (its
// model is under state_dict), the schedulers, AMP grad scalers and EMA
// shadow copies of common training loops. Only a first path component
// counts: a model may well have a submodule named "ema" or "scheduler".
func isCheckpointStateKey(k string) bool {
	switch k {
	case "optimizer_states", "lr_schedulers", "callbacks", "loops",
		"lr_scheduler", "scheduler", "schedulers", "scheduler_state_dict",
		"scaler", "grad_scaler", "amp",
		"ema", "ema_state_dict", "model_ema", "ema_model":
		return true
	}
	return false
}

func (r PartRule) accepts(dtype string) bool {
	if len(r.DTypes) == 0 {
		return true
	}
	for _, d := range r.DTypes {
		if d == dtype {
			return true
		}
	}
	return false
}
