package gguftest

import "fmt"

// Llama is the shape and tensor types of a llama model's blocks.
type Llama struct {
	// Embd is n_embd, KV the width of K and V (KV heads × head size), FF
	// n_ff.
	Embd, KV, FF int64
	Norm         uint32 // attn_norm, ffn_norm
	Attn         uint32 // attn_q, attn_k, attn_output
	V            uint32 // attn_v
	FFN          uint32 // ffn_gate, ffn_up
	Down         uint32 // ffn_down
}

// Block adds the nine tensors of block i, named and ordered as llama.cpp
// writes them.
func (b *Builder) Block(i int, l Llama) *Builder {
	p := fmt.Sprintf("blk.%d.", i)
	return b.Tensor(p+"attn_norm.weight", l.Norm, l.Embd).
		Tensor(p+"attn_q.weight", l.Attn, l.Embd, l.Embd).
		Tensor(p+"attn_k.weight", l.Attn, l.Embd, l.KV).
		Tensor(p+"attn_v.weight", l.V, l.Embd, l.KV).
		Tensor(p+"attn_output.weight", l.Attn, l.Embd, l.Embd).
		Tensor(p+"ffn_norm.weight", l.Norm, l.Embd).
		Tensor(p+"ffn_gate.weight", l.FFN, l.Embd, l.FF).
		Tensor(p+"ffn_up.weight", l.FFN, l.Embd, l.FF).
		Tensor(p+"ffn_down.weight", l.Down, l.FF, l.Embd)
}

// Vocab adds a tokenizer of n tokens, as every model carries one:
// tokenizer.ggml.model, tokens, scores and token types.
func (b *Builder) Vocab(n int) *Builder {
	tokens := make([]string, n)
	scores := make([]float32, n)
	types := make([]int32, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("<tok%d>", i)
		scores[i] = -float32(i)
		types[i] = 1
	}
	return b.KV("tokenizer.ggml.model", "llama").
		KV("tokenizer.ggml.tokens", tokens).
		KV("tokenizer.ggml.scores", scores).
		KV("tokenizer.ggml.token_type", types)
}

// ManyTensors is a file of many small tensors, for benchmarks: a llama of
// the given number of blocks, each of 9 tensors (F32 norms, Q8_0 matrices;
// n_embd 64, K and V 16 wide, n_ff 128), and a 1,000-token vocabulary, but
// no token embedding or output head. 128 blocks make 1,152 tensors in
// 4.9 MB.
func ManyTensors(blocks int) []byte {
	b := New().
		KV("general.architecture", "llama").
		KV("general.file_type", uint32(7)). // LLAMA_FTYPE_MOSTLY_Q8_0
		KV("llama.block_count", uint32(blocks)).
		Vocab(1000)
	l := Llama{Embd: 64, KV: 16, FF: 128, Norm: F32, Attn: Q8_0, V: Q8_0, FFN: Q8_0, Down: Q8_0}
	for i := range blocks {
		b.Block(i, l)
	}
	return b.Bytes()
}

// Fixtures are the files of fixtures/gguf by name, which go run
// ./fixtures/gguf/gen writes; loaders/gguf's TestFixtures checks that the
// committed files are these bytes. They are small llama-shaped models with
// zero weights; fixtures/gguf/README.md says what each holds.
func Fixtures() map[string][]byte {
	return map[string][]byte{
		"tiny-q4_k_m.gguf":         tinyQ4KM(),
		"tiny-00001-of-00002.gguf": split(0),
		"tiny-00002-of-00002.gguf": split(1),
	}
}

// tinyQ4KM is a one-block llama with n_embd 256 (the K-quants' row size),
// 4 GQA heads of 64 with one KV head, n_ff 256 and 64 tokens, quantized the
// way llama.cpp's Q4_K_M mixes types: Q4_K attention and FFN, Q6_K
// attn_v and ffn_down, F32 norms, F16 token_embd and Q8_0 output.
func tinyQ4KM() []byte {
	const embd, kv, ff, nvocab = 256, 64, 256, 64
	return New().
		KV("general.architecture", "llama").
		KV("general.name", "qinsaudit tiny Q4_K_M").
		KV("general.file_type", uint32(15)). // LLAMA_FTYPE_MOSTLY_Q4_K_M
		KV("general.quantization_version", uint32(2)).
		KV("llama.context_length", uint32(128)).
		KV("llama.embedding_length", uint32(embd)).
		KV("llama.feed_forward_length", uint32(ff)).
		KV("llama.block_count", uint32(1)).
		KV("llama.attention.head_count", uint32(4)).
		KV("llama.attention.head_count_kv", uint32(1)).
		KV("llama.attention.layer_norm_rms_epsilon", float32(1e-5)).
		KV("llama.rope.dimension_count", uint32(64)).
		Vocab(nvocab).
		Tensor("token_embd.weight", F16, embd, nvocab).
		Block(0, Llama{Embd: embd, KV: kv, FF: ff, Norm: F32, Attn: Q4_K, V: Q6_K, FFN: Q4_K, Down: Q6_K}).
		Tensor("output_norm.weight", F32, embd).
		Tensor("output.weight", Q8_0, embd, nvocab).
		Bytes()
}

// split is part no (0 or 1) of a two-block F16 llama cut by gguf-split: the
// first part has the metadata, the tokenizer and block 0, the second block
// 1 and the output head.
func split(no int) []byte {
	const embd, ff, nvocab, nTensors = 64, 128, 32, 21
	l := Llama{Embd: embd, KV: embd, FF: ff, Norm: F32, Attn: F16, V: F16, FFN: F16, Down: F16}
	b := New().
		KV("general.architecture", "llama").
		KV("split.no", uint16(no)).
		KV("split.count", uint16(2)).
		KV("split.tensors.count", int32(nTensors))
	if no == 0 {
		// LLAMA_FTYPE_MOSTLY_F16
		return b.KV("general.file_type", uint32(1)).
			KV("llama.embedding_length", uint32(embd)).
			KV("llama.feed_forward_length", uint32(ff)).
			KV("llama.block_count", uint32(2)).
			Vocab(nvocab).
			Tensor("token_embd.weight", F16, embd, nvocab).
			Block(0, l).
			Bytes()
	}
	return b.Block(1, l).
		Tensor("output_norm.weight", F32, embd).
		Tensor("output.weight", F16, embd, nvocab).
		Bytes()
}
