package accounting

import "cmp"

// Decoded reports whether a runtime computing in the float dtype target
// holds a decoded copy of the weight of row r: the main tensor of an encoded
// linear and, with widen, a float16 or bfloat16 weight (of an embedding or a
// plain module) stored in another dtype than target, widened to it. Without
// widen, float16 and bfloat16 weights are held as stored, as runtimes that
// compute in those dtypes (or keep embeddings and heads in them) do.
// Side tensors, biases, norms, buffers, a tied tensor (it shares the
// decoded copy of the tensor it is tied to) and a float weight left beside
// its encoded form are not decoded.
//
// It is the one definition of what gets decoded: the decode pass decodes
// exactly these rows (with target float32, widen as --widen says), and
// accounting.Compare counts their baseline bytes as the decoded copies a
// heap may hold.
func Decoded(r *Row, target string, widen bool) bool {
	if r.Tied || r.Part != PartWeight {
		return false
	}
	switch r.Role {
	case EncodedLinear:
		return true
	case Untouched, Embedding:
		return widen && (r.DType == "float16" || r.DType == "bfloat16") && r.DType != target
	}
	return false
}

// DecodeLayer names the group a streaming runtime decodes r with, one group
// at a time: its layer ("blocks.0"), else its module, else the tensor.
func DecodeLayer(r *Row) string { return cmp.Or(r.Layer, r.Module, r.Name) }
