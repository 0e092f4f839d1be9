package accounting

// ggmlDTypes are GGML's tensor types that have no PyTorch equivalent, named
// by their lower-case ggml type name ("q4_0", "q4_k", "iq2_xxs"). GGML's
// plain types map to the names above: F32 is "float32", F16 "float16", BF16
// "bfloat16", F64 "float64", I8..I64 "int8".."int64".
//
// Block sizes and bytes are ggml's type_traits (blck_size, type_size) and
// the block structs they size:
// https://github.com/ggml-org/ggml/blob/d99724f2b141fed9e1a9f402213506c081433465/src/ggml.c
// https://github.com/ggml-org/ggml/blob/d99724f2b141fed9e1a9f402213506c081433465/src/ggml-common.h
//
// Types ggml has since removed, ggmlRemovedDTypes at the end of the list,
// keep the layout they had when they were written: q4_0_4_4, q4_0_4_8,
// q4_0_8_8 and iq4_nl_4_4 (interleaved copies of q4_0 and iq4_nl blocks, in
// GGUF files from July to December 2024)
// https://github.com/ggml-org/ggml/blob/72f04e91375ca8a4350ba5afe739308b3b20ba18/src/ggml.c
// and q4_2, q4_3 (dropped in May 2023, before GGUF existed)
// https://github.com/ggml-org/ggml/blob/92b961cd04e888640cfafeebfe05ce6d6be97732/src/ggml.c
var ggmlDTypes = append([]DType{
	// 32-element blocks: one fp16 scale (d), plus fp16 min (m) for _1.
	{Name: "q4_0", BlockElems: 32, BlockBytes: 18}, // d + 16 nibble bytes
	{Name: "q4_1", BlockElems: 32, BlockBytes: 20}, // d, m + 16
	{Name: "q5_0", BlockElems: 32, BlockBytes: 22}, // d + 4 high bits + 16
	{Name: "q5_1", BlockElems: 32, BlockBytes: 24}, // d, m + 4 + 16
	{Name: "q8_0", BlockElems: 32, BlockBytes: 34}, // d + 32
	{Name: "q8_1", BlockElems: 32, BlockBytes: 36}, // d, s + 32
	{Name: "iq4_nl", BlockElems: 32, BlockBytes: 18},
	{Name: "mxfp4", BlockElems: 32, BlockBytes: 17}, // e8m0 scale + 16
	{Name: "nvfp4", BlockElems: 64, BlockBytes: 36}, // 4 e4m3 scales + 32
	{Name: "q1_0", BlockElems: 128, BlockBytes: 18}, // d + 16
	{Name: "q2_0", BlockElems: 64, BlockBytes: 18},  // d + 16

	// 256-element super-blocks (QK_K).
	{Name: "q2_k", BlockElems: 256, BlockBytes: 84},
	{Name: "q3_k", BlockElems: 256, BlockBytes: 110},
	{Name: "q4_k", BlockElems: 256, BlockBytes: 144},
	{Name: "q5_k", BlockElems: 256, BlockBytes: 176},
	{Name: "q6_k", BlockElems: 256, BlockBytes: 210},
	{Name: "q8_k", BlockElems: 256, BlockBytes: 292},
	{Name: "iq2_xxs", BlockElems: 256, BlockBytes: 66},
	{Name: "iq2_xs", BlockElems: 256, BlockBytes: 74},
	{Name: "iq2_s", BlockElems: 256, BlockBytes: 82},
	{Name: "iq3_xxs", BlockElems: 256, BlockBytes: 98},
	{Name: "iq3_s", BlockElems: 256, BlockBytes: 110},
	{Name: "iq1_s", BlockElems: 256, BlockBytes: 50},
	{Name: "iq1_m", BlockElems: 256, BlockBytes: 56},
	{Name: "iq4_xs", BlockElems: 256, BlockBytes: 136},
	{Name: "tq1_0", BlockElems: 256, BlockBytes: 54},
	{Name: "tq2_0", BlockElems: 256, BlockBytes: 66},
}, ggmlRemovedDTypes...)

// ggmlRemovedDTypes are the GGML types ggml has dropped; see above.
// GGMLRemoved reports them.
var ggmlRemovedDTypes = []DType{
	{Name: "q4_2", BlockElems: 16, BlockBytes: 10},
	{Name: "q4_3", BlockElems: 16, BlockBytes: 12},
	{Name: "q4_0_4_4", BlockElems: 32, BlockBytes: 18},
	{Name: "q4_0_4_8", BlockElems: 32, BlockBytes: 18},
	{Name: "q4_0_8_8", BlockElems: 32, BlockBytes: 18},
	{Name: "iq4_nl_4_4", BlockElems: 32, BlockBytes: 18},
}

var ggmlRemoved = func() map[string]bool {
	m := make(map[string]bool, len(ggmlRemovedDTypes))
	for _, d := range ggmlRemovedDTypes {
		m[d.Name] = true
	}
	return m
}()

// GGMLRemoved reports whether the named dtype is a GGML type that ggml has
// dropped: older releases wrote it, current llama.cpp refuses to load it.
func GGMLRemoved(name string) bool { return ggmlRemoved[name] }
