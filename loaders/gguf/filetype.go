package gguf

import (
	"fmt"
	"sync"
)

// fileTypes are llama.cpp's general.file_type values (enum llama_ftype in
// include/llama.h), each with the ggml type its "mostly" names: the type of
// most of the large weights. Others (norms, often the output and embedding)
// keep other types; the audit lists the mixture actually present. Made on
// first use, not at every process's init.
var fileTypes = sync.OnceValue(func() map[int64]struct{ label, dtype string } {
	return map[int64]struct{ label, dtype string }{
		0:  {"ALL_F32", "float32"},
		1:  {"MOSTLY_F16", "float16"},
		2:  {"MOSTLY_Q4_0", "q4_0"},
		3:  {"MOSTLY_Q4_1", "q4_1"},
		4:  {"MOSTLY_Q4_1_SOME_F16", "q4_1"},
		7:  {"MOSTLY_Q8_0", "q8_0"},
		8:  {"MOSTLY_Q5_0", "q5_0"},
		9:  {"MOSTLY_Q5_1", "q5_1"},
		10: {"MOSTLY_Q2_K", "q2_k"},
		11: {"MOSTLY_Q3_K_S", "q3_k"},
		12: {"MOSTLY_Q3_K_M", "q3_k"},
		13: {"MOSTLY_Q3_K_L", "q3_k"},
		14: {"MOSTLY_Q4_K_S", "q4_k"},
		15: {"MOSTLY_Q4_K_M", "q4_k"},
		16: {"MOSTLY_Q5_K_S", "q5_k"},
		17: {"MOSTLY_Q5_K_M", "q5_k"},
		18: {"MOSTLY_Q6_K", "q6_k"},
		19: {"MOSTLY_IQ2_XXS", "iq2_xxs"},
		20: {"MOSTLY_IQ2_XS", "iq2_xs"},
		21: {"MOSTLY_Q2_K_S", "q2_k"},
		22: {"MOSTLY_IQ3_XS", "iq3_s"},
		23: {"MOSTLY_IQ3_XXS", "iq3_xxs"},
		24: {"MOSTLY_IQ1_S", "iq1_s"},
		25: {"MOSTLY_IQ4_NL", "iq4_nl"},
		26: {"MOSTLY_IQ3_S", "iq3_s"},
		27: {"MOSTLY_IQ3_M", "iq3_s"},
		28: {"MOSTLY_IQ2_S", "iq2_s"},
		29: {"MOSTLY_IQ2_M", "iq2_s"},
		30: {"MOSTLY_IQ4_XS", "iq4_xs"},
		31: {"MOSTLY_IQ1_M", "iq1_m"},
		32: {"MOSTLY_BF16", "bfloat16"},
		33: {"MOSTLY_Q4_0_4_4", "q4_0_4_4"},
		34: {"MOSTLY_Q4_0_4_8", "q4_0_4_8"},
		35: {"MOSTLY_Q4_0_8_8", "q4_0_8_8"},
		36: {"MOSTLY_TQ1_0", "tq1_0"},
		37: {"MOSTLY_TQ2_0", "tq2_0"},
		38: {"MOSTLY_MXFP4_MOE", "mxfp4"},
	}
})

// FileTypeLabel names a general.file_type value and the dtype it says most
// weights have ("" when the value is unknown or absent).
func FileTypeLabel(ft int64) (label, dtype string) {
	if ft < 0 {
		return "", ""
	}
	if f, ok := fileTypes()[ft]; ok {
		return f.label, f.dtype
	}
	return fmt.Sprintf("file_type %d", ft), ""
}
