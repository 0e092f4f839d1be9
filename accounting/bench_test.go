package accounting

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
)

// The per-tensor cost of Audit alone, on models built in memory, without a
// loader (loaders/bench_audit_test.go times both):
//
//	go test -run '^$' -bench BenchmarkAudit -benchmem ./accounting

// plainBenchModel is n float32 [4, 4] tensors named like a deep model's
// state_dict, each on its own storage: what a safetensors loader returns.
func plainBenchModel(n int) *Model {
	m := &Model{Files: []File{{Path: "m.safetensors", Format: "safetensors"}}}
	m.Tensors = make([]Tensor, n)
	for i := range m.Tensors {
		name := fmt.Sprintf("model.layers.%d.mlp.proj_%d.weight", i/8, i%8)
		m.Tensors[i] = Tensor{Name: name, DType: "float32", Shape: []int64{4, 4}, Storage: name,
			StorageBytes: 64, DataOffset: int64(i) * 64}
	}
	m.Files[0].SizeBytes = int64(n) * 64
	return m
}

// torchBenchModel is plainBenchModel laid out as torch.save writes it:
// storage i is the zip record "data/i", and the records follow their keys
// as strings ("0", "1", "10", "100", ...), not the tensors.
func torchBenchModel(n int) *Model {
	m := plainBenchModel(n)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = strconv.Itoa(i)
	}
	slices.Sort(keys)
	for rank, k := range keys {
		i, _ := strconv.Atoi(k)
		m.Tensors[i].Storage = k
		m.Tensors[i].DataOffset = int64(rank) * 64
	}
	return m
}

// gptqBenchModel is a GPTQ checkpoint of about n tensors: per layer, seven
// quantized linears (qweight, qzeros, scales, g_idx, bias) and two norms,
// with embeddings and a head.
func gptqBenchModel(n int) *Model {
	m := &Model{Files: []File{{Path: "m.safetensors", Format: "safetensors"}},
		Quantization: &QuantConfig{Method: "gptq", Bits: 4, GroupSize: 128}}
	add := func(name, dtype string, shape ...int64) {
		d, _ := LookupDType(dtype)
		nb, _ := Numel(shape)
		b, _ := d.Bytes(nb)
		m.Tensors = append(m.Tensors, Tensor{Name: name, DType: dtype, Shape: shape, Storage: name,
			StorageBytes: b, DataOffset: m.Files[0].SizeBytes})
		m.Files[0].SizeBytes += b
	}
	add("model.embed_tokens.weight", "float16", 1000, 64)
	for l := 0; len(m.Tensors) < n; l++ {
		for _, p := range []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"} {
			mod := fmt.Sprintf("model.layers.%d.%s", l, p)
			add(mod+".qweight", "int32", 8, 64)
			add(mod+".qzeros", "int32", 1, 8)
			add(mod+".scales", "float16", 1, 64)
			add(mod+".g_idx", "int32", 64)
			add(mod+".bias", "float16", 64)
		}
		add(fmt.Sprintf("model.layers.%d.input_layernorm.weight", l), "float16", 64)
		add(fmt.Sprintf("model.layers.%d.post_attention_layernorm.weight", l), "float16", 64)
	}
	add("model.norm.weight", "float16", 64)
	add("lm_head.weight", "float16", 1000, 64)
	return m
}

func benchAudit(b *testing.B, m *Model) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Audit(m, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(m.Tensors)), "ns/tensor")
}

func BenchmarkAudit(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("plain/%d", n), func(b *testing.B) { benchAudit(b, plainBenchModel(n)) })
		b.Run(fmt.Sprintf("torch/%d", n), func(b *testing.B) { benchAudit(b, torchBenchModel(n)) })
		b.Run(fmt.Sprintf("gptq/%d", n), func(b *testing.B) { benchAudit(b, gptqBenchModel(n)) })
	}
}

// BenchmarkLayerOf times LayerOf on the names of deep models: a
// state_dict's, a GPTQ checkpoint's, GPT-2's and GGUF's, and a name in no
// layer.
func BenchmarkLayerOf(b *testing.B) {
	var names []string
	for i := range 1000 {
		names = append(names, fmt.Sprintf("model.layers.%d.mlp.proj_%d.weight", i/8, i%8),
			fmt.Sprintf("model.layers.%d.self_attn.q_proj.qweight", i), fmt.Sprintf("transformer.h.%d.attn.c_attn.bias", i),
			fmt.Sprintf("blk.%d.ffn_up.weight", i), "model.embed_tokens.weight")
	}
	n := 0
	for b.Loop() {
		for _, name := range names {
			n += len(LayerOf(name))
		}
	}
	if n == 0 {
		b.Fatal("no layers")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(names)), "ns/name")
}
