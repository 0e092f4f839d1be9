package gguf

import (
	"strconv"
	"sync"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// ggmlTypes maps a ggml type id, the index, to its canonical dtype name (see
// accounting.LookupDType). Ids ggml never gave a layout to are "".
// Ids and layouts: ggml's include/ggml.h and src/ggml.c, see
// accounting/dtype_ggml.go.
var ggmlTypes = []string{
	0:  "float32",    // F32
	1:  "float16",    // F16
	2:  "q4_0",       // Q4_0
	3:  "q4_1",       // Q4_1
	4:  "q4_2",       // Q4_2, removed
	5:  "q4_3",       // Q4_3, removed
	6:  "q5_0",       // Q5_0
	7:  "q5_1",       // Q5_1
	8:  "q8_0",       // Q8_0
	9:  "q8_1",       // Q8_1
	10: "q2_k",       // Q2_K
	11: "q3_k",       // Q3_K
	12: "q4_k",       // Q4_K
	13: "q5_k",       // Q5_K
	14: "q6_k",       // Q6_K
	15: "q8_k",       // Q8_K
	16: "iq2_xxs",    // IQ2_XXS
	17: "iq2_xs",     // IQ2_XS
	18: "iq3_xxs",    // IQ3_XXS
	19: "iq1_s",      // IQ1_S
	20: "iq4_nl",     // IQ4_NL
	21: "iq3_s",      // IQ3_S
	22: "iq2_s",      // IQ2_S
	23: "iq4_xs",     // IQ4_XS
	24: "int8",       // I8
	25: "int16",      // I16
	26: "int32",      // I32
	27: "int64",      // I64
	28: "float64",    // F64
	29: "iq1_m",      // IQ1_M
	30: "bfloat16",   // BF16
	31: "q4_0_4_4",   // Q4_0_4_4, removed
	32: "q4_0_4_8",   // Q4_0_4_8, removed
	33: "q4_0_8_8",   // Q4_0_8_8, removed
	34: "tq1_0",      // TQ1_0
	35: "tq2_0",      // TQ2_0
	36: "iq4_nl_4_4", // IQ4_NL_4_4, removed
	37: "",           // IQ4_NL_4_8: reserved, never implemented
	38: "",           // IQ4_NL_8_8: reserved, never implemented
	39: "mxfp4",      // MXFP4
	40: "nvfp4",      // NVFP4
	41: "q1_0",       // Q1_0
	42: "q2_0",       // Q2_0
}

// layouts holds the dtype of each id of ggmlTypes; BlockElems is 0 for an
// unknown id. Made on first use.
var layouts = sync.OnceValue(func() []accounting.DType {
	l := make([]accounting.DType, len(ggmlTypes))
	for id, name := range ggmlTypes {
		l[id], _ = accounting.LookupDType(name)
	}
	return l
})

// UnknownDTypePrefix starts the DType of a tensor whose ggml type id has no
// known layout: "ggml_unknown_" followed by the id in decimal. Such a dtype
// is not in the dtype table.
const UnknownDTypePrefix = "ggml_unknown_"

// DTypeName returns the canonical dtype name of a ggml type id, or
// UnknownDTypePrefix and the id for an unknown one.
func DTypeName(id uint32) string {
	if d := layoutOf(id); d != nil {
		return d.Name
	}
	return UnknownDTypePrefix + strconv.FormatUint(uint64(id), 10)
}

// layoutOf returns the dtype of ggml type id, nil for an unknown id.
func layoutOf(id uint32) *accounting.DType {
	l := layouts()
	if int64(id) >= int64(len(l)) || l[id].BlockElems == 0 {
		return nil
	}
	return &l[id]
}
