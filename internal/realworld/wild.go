package realworld

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// WildDir returns the path of shared/realworld/wild: real files from public
// projects that qinsaudit once got wrong, one per defect class.
func WildDir() string { return filepath.Join(Dir(), "wild") }

// WildAnswers is wild/answers.json (schema "qinsaudit-external-truth/1",
// described in wild/SOURCES.md): ground truth from readers independent of
// qinsaudit.
type WildAnswers struct {
	Schema string          `json:"schema"`
	Note   string          `json:"note"`
	Files  map[string]Wild `json:"files"`
}

// Wild is the truth about one wild file.
type Wild struct {
	FileSize int64  `json:"file_size"`
	SHA256   string `json:"sha256"`
	Format   string `json:"format"` // "pytorch-zip", "pytorch-legacy", "gguf"
	Expect   string `json:"expect"` // "ok" or "refuse"
	// TensorCount is what a state_dict-like walk of data.pkl (or the
	// file's header) finds; constants.pkl tensors are in Extra.
	TensorCount     int   `json:"tensor_count"`
	StorageCount    int   `json:"storage_count"`
	StoredBytes     int64 `json:"stored_bytes"` // tensor data, each storage once
	AllStorageBytes int64 `json:"all_storage_bytes"`
	LogicalParams   int64 `json:"logical_params"`
	// WeightsInConstantsPkl says that the weights sit in constants.pkl.
	WeightsInConstantsPkl bool            `json:"weights_in_constants_pkl"`
	Extra                 WildExtra       `json:"extra"`
	Quantized             *WildQuantized  `json:"quantized"`
	DTypes                map[string]int  `json:"dtypes"`
	ExpectedAccounting    *WildAccounting `json:"expected_accounting"`
	Tensors               []WildTensor    `json:"tensors"`
	GGUFPaddingBytes      int64           `json:"gguf_alignment_padding_bytes"`
	Notes                 string          `json:"notes"`
	What                  string          `json:"what"`
}

// WildExtra holds the format-specific fields.
type WildExtra struct {
	// TorchScript.
	TorchScript             bool           `json:"torchscript"`
	ConstantsTensors        int            `json:"constants_tensors"`
	ConstantsBytes          int64          `json:"constants_bytes"`
	ConstantsList           []WildTensor   `json:"constants_list"`
	ConstantsDTypes         map[string]int `json:"constants_dtypes"`
	ZipRecords              int            `json:"zip_records"`
	UnreferencedDataRecords []string       `json:"unreferenced_data_records"`
	// Legacy pickles.
	LegacyProtocol int   `json:"legacy_protocol"`
	Trailing       int64 `json:"trailing"`
	// GGUF.
	Version      int    `json:"version"`
	Alignment    int64  `json:"alignment"`
	NKV          int    `json:"n_kv"`
	Architecture string `json:"general.architecture"`
	FileType     *int   `json:"general.file_type"`
	DataStart    int64  `json:"data_start"`
}

// WildQuantized summarises the quantized tensors.
type WildQuantized struct {
	Kind    string `json:"kind"`
	Tensors int    `json:"tensors"`
	Params  int64  `json:"params"`
	Bytes   int64  `json:"bytes"`
}

// WildAccounting are the figures docs/accounting.md defines, for quantized
// files.
type WildAccounting struct {
	QuantizedWeights     int64   `json:"quantized_weights"`
	QuantizedWeightBytes int64   `json:"quantized_weight_bytes"`
	SideBytes            int64   `json:"side_bytes"`
	Params               int64   `json:"params"`
	BaselineFP32Bytes    int64   `json:"baseline_fp32_bytes"`
	StoredBytes          int64   `json:"stored_bytes"`
	Ratio                float64 `json:"ratio"`
	BitsPerWeight        float64 `json:"bits_per_weight"`
}

// WildTensor is one tensor (or, in Extra.ConstantsList, one constant).
type WildTensor struct {
	Name        string  `json:"name"`
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	Numel       int64   `json:"numel"`
	StoredBytes int64   `json:"stored_bytes"` // 0 for a tensor on a storage listed before
	// PyTorch.
	Storage      string  `json:"storage"`
	StorageBytes int64   `json:"storage_bytes"`
	Kind         string  `json:"kind"`    // "tensor" or "qtensor"
	QScheme      *string `json:"qscheme"` // "per_tensor_affine", ...
	// GGUF.
	GGMLType   *int  `json:"ggml_type"`
	SpanToNext int64 `json:"span_to_next"`
	Offset     int64 `json:"offset"`
}

// ReadWild reads wild/answers.json, or skips the test when the folder is
// absent.
func ReadWild(t testing.TB) *WildAnswers {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(WildDir(), "answers.json"))
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("shared/realworld/wild is not beside the repository")
	}
	if err != nil {
		t.Fatal(err)
	}
	var a WildAnswers
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatal(err)
	}
	return &a
}

// AllTensors returns the tensor count including constants.pkl's.
func (w Wild) AllTensors() int { return w.TensorCount + w.Extra.ConstantsTensors }

// AllStoredBytes returns the stored bytes including constants.pkl's.
func (w Wild) AllStoredBytes() int64 { return w.StoredBytes + w.Extra.ConstantsBytes }

// ConstantName maps an answers' constant name (CONSTANTS.12.0) to the
// name qinsaudit gives it (constants.12.0).
func ConstantName(name string) string {
	if rest, ok := strings.CutPrefix(name, "CONSTANTS."); ok {
		return "constants." + rest
	}
	return name
}
