package realworld

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// WildDir returns the path of shared/realworld/wild: real model files from
// public projects that qinsaudit once got wrong.
func WildDir() string { return filepath.Join(Dir(), "wild") }

// WildAnswer is the ground truth of one file of WildDir, as
// wild/answers.json holds it (schema in wild/SOURCES.md): computed by
// independent readers, without qinsaudit.
type WildAnswer struct {
	Format   string `json:"format"` // "gguf", "pytorch-zip", "pytorch-legacy"
	Expect   string `json:"expect"` // "ok" or "refuse"
	FileSize int64  `json:"file_size"`
	SHA256   string `json:"sha256"`
	// TensorCount is the tensors a state_dict-like walk of data.pkl finds
	// (constants.pkl's are in Extra.ConstantsTensors).
	TensorCount  int   `json:"tensor_count"`
	StorageCount int   `json:"storage_count"`
	StoredBytes  int64 `json:"stored_bytes"` // tensor data, each storage once
	// AllStorageBytes counts every storage record of the archive.
	AllStorageBytes       int64          `json:"all_storage_bytes"`
	LogicalParams         int64          `json:"logical_params"`
	WeightsInConstantsPkl bool           `json:"weights_in_constants_pkl"`
	DTypes                map[string]int `json:"dtypes"` // tensors per dtype
	Quantized             *WildQuantized `json:"quantized"`
	Extra                 WildExtra      `json:"extra"`
	// ExpectedAccounting holds, for quantized files, the figures
	// docs/accounting.md defines.
	ExpectedAccounting *WildAccounting `json:"expected_accounting"`
	Tensors            []WildTensor    `json:"tensors"`
	// GGUFAlignmentPaddingBytes is the padding a GGUF writer put after
	// tensors: file overhead, not tensor data.
	GGUFAlignmentPaddingBytes int64  `json:"gguf_alignment_padding_bytes"`
	Notes                     string `json:"notes"`
	What                      string `json:"what"`
}

// WildQuantized sums a file's quantized tensors.
type WildQuantized struct {
	Kind    string `json:"kind"`
	Tensors int    `json:"tensors"`
	Params  int64  `json:"params"`
	Bytes   int64  `json:"bytes"`
}

// WildAccounting is what the audit of a quantized file must show.
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

// WildExtra holds the format-specific facts; fields of other formats are
// zero.
type WildExtra struct {
	// GGUF.
	Version             int    `json:"version"`
	Alignment           int64  `json:"alignment"`
	NKV                 int    `json:"n_kv"`
	GeneralArchitecture string `json:"general.architecture"`
	GeneralFileType     *int64 `json:"general.file_type"`
	DataStart           int64  `json:"data_start"`
	// TorchScript.
	TorchScript             bool              `json:"torchscript"`
	ConstantsTensors        int               `json:"constants_tensors"`
	ConstantsBytes          int64             `json:"constants_bytes"`
	ConstantsList           []WildTensor      `json:"constants_list"`
	ConstantsDTypes         map[string]int    `json:"constants_dtypes"`
	ZipRecords              int               `json:"zip_records"`
	UnreferencedDataRecords []json.RawMessage `json:"unreferenced_data_records"`
	// Legacy pickles.
	LegacyProtocol int   `json:"legacy_protocol"`
	Trailing       int64 `json:"trailing"`
}

// WildTensor is one tensor of a wild file. GGUF tensors have GGMLType,
// Offset (from the data section) and SpanToNext; PyTorch tensors Storage,
// StorageBytes, Kind ("tensor", "qtensor") and QScheme.
type WildTensor struct {
	Name         string  `json:"name"`
	DType        string  `json:"dtype"`
	Shape        []int64 `json:"shape"`
	Numel        int64   `json:"numel"`
	StoredBytes  int64   `json:"stored_bytes"`
	GGMLType     *int    `json:"ggml_type"`
	Offset       int64   `json:"offset"`
	SpanToNext   int64   `json:"span_to_next"`
	Storage      string  `json:"storage"`
	StorageBytes int64   `json:"storage_bytes"`
	Kind         string  `json:"kind"`
	QScheme      *string `json:"qscheme"`
}

// WildAnswers reads wild/answers.json, keyed by file name, or skips the
// test when the folder is absent.
func WildAnswers(t testing.TB) map[string]WildAnswer {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(WildDir(), "answers.json"))
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("shared/realworld/wild is not beside the repository")
	}
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Schema string                `json:"schema"`
		Files  map[string]WildAnswer `json:"files"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Schema != "qinsaudit-external-truth/1" {
		t.Fatalf("wild/answers.json: schema %q, want qinsaudit-external-truth/1", doc.Schema)
	}
	return doc.Files
}

// AllTensors returns the tensor count including constants.pkl's.
func (w WildAnswer) AllTensors() int { return w.TensorCount + w.Extra.ConstantsTensors }

// AllStoredBytes returns the stored bytes including constants.pkl's.
func (w WildAnswer) AllStoredBytes() int64 { return w.StoredBytes + w.Extra.ConstantsBytes }

// ConstantName maps an answers' constant name (CONSTANTS.12.0) to the
// name qinsaudit gives it (constants.12.0).
func ConstantName(name string) string {
	if rest, ok := strings.CutPrefix(name, "CONSTANTS."); ok {
		return "constants." + rest
	}
	return name
}
