package pytorch

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/realworld"
)

// sharedDir is shared/realworld beside the repository.
var sharedDir = realworld.Dir()

// fixturesDir holds the torch.save fixtures and their expected.json.
const fixturesDir = "../../fixtures/torch"

func loadBytes(data []byte) (*accounting.Model, error) {
	return Loader{}.Load(bytes.NewReader(data), int64(len(data)))
}

// readTruth decodes the fixture truth file name (expected_*.json, written
// by the script that made the fixtures) into v.
func readTruth(t testing.TB, name string, v any) {
	t.Helper()
	if err := json.Unmarshal(readFile(t, filepath.Join(fixturesDir, name)), v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestRealWorld(t *testing.T) {
	answers := realworld.Answers(t)
	names := slices.Sorted(func(yield func(string) bool) {
		for name := range answers {
			if strings.HasSuffix(name, ".pt") || strings.HasSuffix(name, ".pth") {
				if !yield(name) {
					return
				}
			}
		}
	})
	if len(names) < 100 {
		t.Fatalf("answers.json lists %d .pt/.pth files, want at least 100", len(names))
	}
	for _, name := range names {
		want := answers[name]
		t.Run(name, func(t *testing.T) {
			data := readFile(t, filepath.Join(sharedDir, name))
			if int64(len(data)) != want.SizeBytes {
				t.Fatalf("file has %d bytes, answers.json says %d", len(data), want.SizeBytes)
			}
			if !(Loader{}).Sniff(data[:min(len(data), 64)]) {
				t.Error("Sniff = false")
			}
			m, err := loadBytes(data)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Files[0].Format; got != want.Format {
				t.Errorf("format %q, want %q", got, want.Format)
			}
			if len(m.Tensors) != want.Tensors {
				t.Errorf("%d tensors, want %d", len(m.Tensors), want.Tensors)
			}
			if got := realworld.StoredBytes(m); got != want.StoredBytes {
				t.Errorf("stored bytes %d, want %d", got, want.StoredBytes)
			}
			for _, tt := range m.Tensors {
				if _, ok := accounting.LookupDType(tt.DType); !ok {
					t.Errorf("tensor %q: dtype %q not in the dtype table", tt.Name, tt.DType)
				}
				if tt.DataOffset < 0 || tt.DataOffset+tt.StorageBytes > int64(len(data)) {
					t.Errorf("tensor %q: storage at %d+%d outside the file", tt.Name, tt.DataOffset, tt.StorageBytes)
				}
			}
		})
	}
}

// TestRealWorldDetails checks what SOURCES.md says about single files.
func TestRealWorldDetails(t *testing.T) {
	if _, err := os.Stat(sharedDir); err != nil {
		t.Skipf("real-world files not available: %v", err)
	}
	tests := []struct {
		file    string
		name    string
		dtype   string
		shape   []int64
		strides []int64
	}{
		{"candle/fortran_tensor_3d.pth", "", "int64", []int64{2, 3, 4}, []int64{1, 2, 6}},
		{"candle/test.pt", "test", "int64", []int64{2, 4}, nil},
		{"candle/boolean.pt", "", "bool", []int64{2, 2}, nil},
		{"gopickle_pytorch_testdata/tensor_bfloat16_proto1.pt", "", "bfloat16", []int64{4}, nil},
		{"gopickle_pytorch_testdata/tensor_float16_proto5_zip.pt", "", "float16", []int64{4}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			m, err := loadBytes(readFile(t, filepath.Join(sharedDir, tc.file)))
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Tensors) != 1 {
				t.Fatalf("%d tensors, want 1", len(m.Tensors))
			}
			got := m.Tensors[0]
			if tc.name != "" && got.Name != tc.name {
				t.Errorf("name %q, want %q", got.Name, tc.name)
			}
			if got.DType != tc.dtype || !slices.Equal(got.Shape, tc.shape) || !slices.Equal(got.Strides, tc.strides) {
				t.Errorf("got %s %v strides %v, want %s %v strides %v", got.DType, got.Shape, got.Strides, tc.dtype, tc.shape, tc.strides)
			}
		})
	}
}

// expectedFile is one entry of fixtures/torch/expected.json.
type expectedFile struct {
	Format      string `json:"format"`
	Error       string `json:"error"`
	SizeBytes   int64  `json:"size_bytes"`
	StoredBytes int64  `json:"stored_bytes"`
	Tensors     []struct {
		Name          string   `json:"name"`
		DType         string   `json:"dtype"`
		Shape         []int64  `json:"shape"`
		StorageBytes  int64    `json:"storage_bytes"`
		OffsetBytes   int64    `json:"storage_offset_bytes"`
		StorageKey    *string  `json:"storage_key"`
		StorageRecord string   `json:"storage_record"`
		SharesWith    []string `json:"shares_storage_with"`
		QScheme       string   `json:"qscheme"`
		QScale        float64  `json:"q_scale"`
		QZeroPoint    int64    `json:"q_zero_point"`
	} `json:"tensors"`
	ZipRecords []struct {
		Name       string `json:"name"`
		DataOffset int64  `json:"data_offset"`
	} `json:"zip_records"`
}

func TestFixtures(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(fixturesDir, "expected.json"))
	if err != nil {
		t.Fatalf("the torch fixtures (committed) are missing: %v", err)
	}
	var exp struct {
		Files map[string]expectedFile `json:"files"`
	}
	if err := json.Unmarshal(raw, &exp); err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Sorted(mapKeys(exp.Files)) {
		want := exp.Files[name]
		t.Run(name, func(t *testing.T) {
			data := readFile(t, filepath.Join(fixturesDir, name))
			m, err := loadBytes(data)
			if want.Format == "invalid" {
				var fe *accounting.FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("got %v, want a FormatError (torch: %s)", err, want.Error)
				}
				t.Logf("error: %v (torch: %s)", err, want.Error)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkFixture(t, m, want)
		})
	}
}

func checkFixture(t *testing.T, m *accounting.Model, want expectedFile) {
	t.Helper()
	zipped := want.Format == formatZip
	if got := m.Files[0].Format; got != want.Format {
		t.Errorf("format %q, want %q", got, want.Format)
	}
	if got := realworld.StoredBytes(m); got != want.StoredBytes {
		t.Errorf("stored bytes %d, want %d", got, want.StoredBytes)
	}
	if len(m.Tensors) != len(want.Tensors) {
		t.Fatalf("%d tensors, want %d", len(m.Tensors), len(want.Tensors))
	}
	offsets := map[string]int64{}
	for _, r := range want.ZipRecords {
		offsets[r.Name] = r.DataOffset
	}
	byStorage := map[string][]string{}
	for _, tt := range m.Tensors {
		byStorage[tt.Storage] = append(byStorage[tt.Storage], tt.Name)
	}
	for i, w := range want.Tensors {
		got := m.Tensors[i]
		if got.Name != w.Name {
			t.Errorf("tensor %d: name %q, want %q", i, got.Name, w.Name)
			continue
		}
		if got.DType != w.DType || !slices.Equal(got.Shape, w.Shape) {
			t.Errorf("%s: %s %v, want %s %v", w.Name, got.DType, got.Shape, w.DType, w.Shape)
		}
		if got.StorageBytes != w.StorageBytes || got.ViewOffset != w.OffsetBytes {
			t.Errorf("%s: storage bytes %d view offset %d, want %d and %d", w.Name, got.StorageBytes, got.ViewOffset, w.StorageBytes, w.OffsetBytes)
		}
		if w.StorageKey != nil {
			key := *w.StorageKey
			if zipped {
				key = "data/" + key
			}
			if got.Storage != key {
				t.Errorf("%s: storage %q, want %q", w.Name, got.Storage, key)
			}
		}
		if zipped {
			if off, ok := offsets[w.StorageRecord]; !ok || got.DataOffset != off {
				t.Errorf("%s: data offset %d, want %d (record %q)", w.Name, got.DataOffset, off, w.StorageRecord)
			}
		}
		var shares []string
		for _, n := range byStorage[got.Storage] {
			if n != got.Name {
				shares = append(shares, n)
			}
		}
		sort.Strings(shares)
		wantShares := slices.Clone(w.SharesWith)
		sort.Strings(wantShares)
		if !slices.Equal(shares, wantShares) {
			t.Errorf("%s: shares storage with %v, want %v", w.Name, shares, wantShares)
		}
		if w.QScheme == "per_tensor_affine" && (got.QScale != w.QScale || got.QZeroPoint != w.QZeroPoint) {
			t.Errorf("%s: q scale %v zero point %d, want %v and %d", w.Name, got.QScale, got.QZeroPoint, w.QScale, w.QZeroPoint)
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestSniff(t *testing.T) {
	tests := []struct {
		name string
		head string
		want bool
	}{
		{"zip", "PK\x03\x04\x00\x00", true},
		{"empty zip", "PK\x05\x06", true},
		{"legacy protocol 2", "\x80\x02" + string(legacyMagicLong1) + ".", true},
		{"legacy protocol 4 framed", "\x80\x04\x95\x0d\x00\x00\x00\x00\x00\x00\x00" + string(legacyMagicLong1), true},
		{"legacy protocol 1", string(legacyMagicText) + ".", true},
		{"tar", "sys_info\x00\x00\x00", true},
		{"plain pickle", "\x80\x02}q\x00.", false},
		{"pickle protocol 6", "\x80\x06" + string(legacyMagicLong1), false},
		{"gguf", "GGUF\x03\x00\x00\x00", false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		if got := (Loader{}).Sniff([]byte(tc.head)); got != tc.want {
			t.Errorf("%s: Sniff = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// torchElementSize is torch's element_size() of each storage class (the
// packed 4- and 2-bit types count bytes): the loader derives it from
// accounting's table.
var torchElementSize = map[string]int64{
	"DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2,
	"ComplexDoubleStorage": 16, "ComplexFloatStorage": 8,
	"LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1,
	"QInt8Storage": 1, "QUInt8Storage": 1, "QInt32Storage": 4, "QUInt4x2Storage": 1, "QUInt2x4Storage": 1,
	"UntypedStorage": 1,
}

// TestDTypeTables checks that every dtype the loader can emit is in
// accounting's table, and that each storage class has torch's element size.
func TestDTypeTables(t *testing.T) {
	check := func(class string, st storageType) {
		if _, ok := accounting.LookupDType(st.dtype); !ok {
			t.Errorf("torch.%s: dtype %q not in accounting's table", class, st.dtype)
		}
		if want, ok := torchElementSize[class]; !ok || st.elemBytes != want {
			t.Errorf("torch.%s: element size %d, torch's is %d", class, st.elemBytes, want)
		}
	}
	for class, st := range storageTypes() {
		check(class, st)
	}
	check("UntypedStorage", untypedStorage)
	for alias, name := range torchDTypes {
		if _, ok := accounting.LookupDType(name); !ok {
			t.Errorf("torch.%s: dtype %q not in accounting's table", alias, name)
		}
	}
}
