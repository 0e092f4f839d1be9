package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/realworld"
)

// Paths from this package's directory.
var (
	fixtureDir   = "../../fixtures/safetensors"
	realworldDir = realworld.Dir()
)

// build returns a safetensors file with the given header text (used as is)
// and dataLen zero bytes of data.
func build(header string, dataLen int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, dataLen)...)
}

// withLength returns a file whose 8-byte length field says n, followed by
// rest.
func withLength(n uint64, rest string) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, n), rest...)
}

func load(b []byte) (*accounting.Model, error) {
	return Loader{}.Load(bytes.NewReader(b), int64(len(b)))
}

func loadFile(t testing.TB, path string) (*accounting.Model, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := load(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m, b
}

// checkInvariants checks what every loaded model must satisfy, whatever the
// file: one safetensors File, tensors in data order without overlap, inside
// the data buffer, each with as many bytes as its dtype and shape need.
func checkInvariants(t testing.TB, m *accounting.Model, file []byte) {
	t.Helper()
	checkInvariantsSize(t, m, 8+int64(binary.LittleEndian.Uint64(file)), int64(len(file)))
}

// checkInvariantsSize is checkInvariants for a file of size bytes whose
// data buffer starts at dataStart.
func checkInvariantsSize(t testing.TB, m *accounting.Model, dataStart, size int64) {
	t.Helper()
	if len(m.Files) != 1 || m.Files[0].Format != "safetensors" || m.Files[0].Path != "" || m.Files[0].SizeBytes != 0 {
		t.Fatalf("Files = %+v, want one safetensors File with Path and SizeBytes unset", m.Files)
	}
	prevEnd := dataStart
	for i, tn := range m.Tensors {
		if tn.File != 0 || tn.Storage != tn.Name || tn.ViewOffset != 0 || tn.Strides != nil {
			t.Errorf("tensor %d %+v: want File 0, Storage = Name, ViewOffset 0, nil Strides", i, tn)
		}
		dt, ok := accounting.LookupDType(tn.DType)
		if !ok {
			t.Fatalf("tensor %q: dtype %q not in the table", tn.Name, tn.DType)
		}
		numel, err := accounting.Numel(tn.Shape)
		if err != nil {
			t.Fatalf("tensor %q: %v", tn.Name, err)
		}
		if want, _ := dt.Bytes(numel); tn.StorageBytes != want {
			t.Errorf("tensor %q: StorageBytes %d, want %d", tn.Name, tn.StorageBytes, want)
		}
		if tn.StorageBytes > 0 && tn.DataOffset < prevEnd {
			t.Errorf("tensor %q at %d: before the end %d of the tensor before it", tn.Name, tn.DataOffset, prevEnd)
		}
		if tn.DataOffset < dataStart || tn.DataOffset+tn.StorageBytes > size {
			t.Errorf("tensor %q [%d, +%d]: outside the data buffer [%d, %d]", tn.Name, tn.DataOffset, tn.StorageBytes, dataStart, size)
		}
		if i > 0 && tn.DataOffset < m.Tensors[i-1].DataOffset {
			t.Errorf("tensor %q: not in data order", tn.Name)
		}
		if tn.StorageBytes > 0 {
			prevEnd = tn.DataOffset + tn.StorageBytes
		}
	}
	// Every byte of the buffer is a tensor's or a gap's, once.
	held := size - dataStart
	for _, tn := range m.Tensors {
		held -= tn.StorageBytes
	}
	for i, g := range m.Files[0].Gaps {
		if g.Bytes <= 0 || g.Offset < dataStart || g.Offset+g.Bytes > size || i > 0 && g.Offset < m.Files[0].Gaps[i-1].Offset+m.Files[0].Gaps[i-1].Bytes {
			t.Errorf("gap %+v in the data buffer [%d, %d]", g, dataStart, size)
		}
		held -= g.Bytes
	}
	if held != 0 {
		t.Errorf("tensors and gaps leave %d bytes of the data buffer [%d, %d] unaccounted", held, dataStart, size)
	}
}

// oracle decodes a well-formed file's header with plain encoding/json, as an
// independent account of every tensor's dtype, shape and absolute offsets.
type oracleEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

func oracle(t testing.TB, file []byte) (map[string]oracleEntry, int64) {
	t.Helper()
	n := binary.LittleEndian.Uint64(file)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(file[8:8+n], &raw); err != nil {
		t.Fatal(err)
	}
	out := map[string]oracleEntry{}
	for k, v := range raw {
		if k == "__metadata__" {
			continue
		}
		var e oracleEntry
		if err := json.Unmarshal(v, &e); err != nil {
			t.Fatal(err)
		}
		out[k] = e
	}
	return out, 8 + int64(n)
}

// canonical is the dtype mapping written out again, independently of the
// loader's table.
var canonical = map[string]string{
	"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
	"F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
	"I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
	"U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
}

func checkOracle(t testing.TB, m *accounting.Model, file []byte) {
	t.Helper()
	want, dataStart := oracle(t, file)
	if len(m.Tensors) != len(want) {
		t.Fatalf("%d tensors, header has %d", len(m.Tensors), len(want))
	}
	for _, tn := range m.Tensors {
		w, ok := want[tn.Name]
		switch {
		case !ok:
			t.Errorf("tensor %q not in the header", tn.Name)
		case canonical[w.DType] != "" && tn.DType != canonical[w.DType]:
			t.Errorf("tensor %q: dtype %q, want %q", tn.Name, tn.DType, canonical[w.DType])
		case !reflect.DeepEqual(tn.Shape, w.Shape) && len(tn.Shape)+len(w.Shape) > 0:
			t.Errorf("tensor %q: shape %v, want %v", tn.Name, tn.Shape, w.Shape)
		case tn.DataOffset != dataStart+w.DataOffsets[0] || tn.StorageBytes != w.DataOffsets[1]-w.DataOffsets[0]:
			t.Errorf("tensor %q: at %d, %d bytes; want %d, %d", tn.Name, tn.DataOffset, tn.StorageBytes,
				dataStart+w.DataOffsets[0], w.DataOffsets[1]-w.DataOffsets[0])
		}
	}
}

// TestDTypeTable walks the dtype mapping: every canonical name must be in
// the accounting table, with the element size the safetensors specification
// gives: bits per element, packed without padding for F4 and F6.
func TestDTypeTable(t *testing.T) {
	bits := map[string]int64{
		"F64": 64, "F32": 32, "F16": 16, "BF16": 16, "F8_E4M3": 8, "F8_E5M2": 8,
		"F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "F8_E8M0": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "C64": 64,
		"I64": 64, "I32": 32, "I16": 16, "I8": 8, "U64": 64, "U32": 32, "U16": 16, "U8": 8, "BOOL": 8,
	}
	if len(dtypeNames) != len(bits) {
		t.Errorf("dtypeNames has %d entries, test knows %d", len(dtypeNames), len(bits))
	}
	for st, canon := range dtypeNames {
		dt, ok := accounting.LookupDType(canon)
		if !ok {
			t.Errorf("%s -> %q: not in accounting's dtype table", st, canon)
			continue
		}
		if got, _ := dt.Bytes(8); got != bits[st] {
			t.Errorf("%s -> %q: %d bytes per 8 elements, want %d", st, canon, got, bits[st])
		}
		if c, ok := canonical[st]; ok && c != canon {
			t.Errorf("%s -> %q, want %q", st, canon, c)
		}
	}
}

// TestRealWorld loads every safetensors file of the shared real-world set
// and compares it with answers.json.
func TestRealWorld(t *testing.T) {
	answers := realworld.Answers(t)
	files, err := filepath.Glob(filepath.Join(realworldDir, "*", "*.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	answered := 0
	for _, a := range answers {
		if a.Format == "safetensors" {
			answered++
		}
	}
	if len(files) != answered || answered == 0 {
		t.Errorf("%d .safetensors files, answers.json lists %d", len(files), answered)
	}
	for _, p := range files {
		key := filepath.ToSlash(strings.TrimPrefix(p, realworldDir+string(filepath.Separator)))
		t.Run(key, func(t *testing.T) {
			want, ok := answers[key]
			if !ok || want.Format != "safetensors" {
				t.Fatalf("answers.json has no safetensors entry %q", key)
			}
			m, file := loadFile(t, p)
			if !(Loader{}).Sniff(file[:min(len(file), 64)]) {
				t.Error("Sniff = false")
			}
			if int64(len(file)) != want.SizeBytes {
				t.Errorf("size %d, want %d", len(file), want.SizeBytes)
			}
			if len(m.Tensors) != want.Tensors {
				t.Errorf("%d tensors, want %d", len(m.Tensors), want.Tensors)
			}
			if got := realworld.StoredBytes(m); got != want.StoredBytes {
				t.Errorf("stored bytes %d, want %d", got, want.StoredBytes)
			}
			checkInvariants(t, m, file)
			checkOracle(t, m, file)
		})
	}
}

// TestFixtures loads the generated fixtures. The expected numbers are
// worked out from the toy's shapes: vocab 100, width 64, ffn 256, two
// blocks of four 64x64 attention and two 256x64 ffn matrices.
func TestFixtures(t *testing.T) {
	const (
		embed     = 100 * 64
		perBlock  = 4*64*64 + 2*256*64 // 49,152 weights
		allWeight = embed + 2*perBlock // 104,704 weights
	)
	tests := []struct {
		file    string
		tensors int
		stored  int64
		dtypes  map[string]int // dtype -> tensor count
		probe   accounting.Tensor
	}{
		{"small_f32.safetensors", 13, 4 * allWeight, map[string]int{"float32": 13},
			accounting.Tensor{Name: "blocks.1.ffn.up.weight", DType: "float32", Shape: []int64{256, 64}}},
		{"small_bf16.safetensors", 13, 2 * allWeight, map[string]int{"bfloat16": 13},
			accounting.Tensor{Name: "embed.weight", DType: "bfloat16", Shape: []int64{100, 64}}},
		{"qins_log_small.safetensors", 1 + 2*6*4, 4*embed + 2*(2*perBlock+6*2*4),
			map[string]int{"float32": 1 + 2*6*2, "uint8": 12, "int8": 12},
			accounting.Tensor{Name: "blocks.0.attn.q.log_min", DType: "float32", Shape: []int64{}}},
		{"sharded/model-00001-of-00002.safetensors", 7, 2 * (embed + perBlock), map[string]int{"bfloat16": 7},
			accounting.Tensor{Name: "blocks.0.ffn.down.weight", DType: "bfloat16", Shape: []int64{64, 256}}},
		{"sharded/model-00002-of-00002.safetensors", 6, 2 * perBlock, map[string]int{"bfloat16": 6},
			accounting.Tensor{Name: "blocks.1.attn.o.weight", DType: "bfloat16", Shape: []int64{64, 64}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m, file := loadFile(t, filepath.Join(fixtureDir, tt.file))
			checkInvariants(t, m, file)
			checkOracle(t, m, file)
			if len(m.Tensors) != tt.tensors {
				t.Errorf("%d tensors, want %d", len(m.Tensors), tt.tensors)
			}
			if got := realworld.StoredBytes(m); got != tt.stored {
				t.Errorf("stored bytes %d, want %d", got, tt.stored)
			}
			dtypes := map[string]int{}
			var probe *accounting.Tensor
			for i, tn := range m.Tensors {
				dtypes[tn.DType]++
				if tn.Name == tt.probe.Name {
					probe = &m.Tensors[i]
				}
			}
			if !reflect.DeepEqual(dtypes, tt.dtypes) {
				t.Errorf("dtypes %v, want %v", dtypes, tt.dtypes)
			}
			if probe == nil {
				t.Fatalf("no tensor %q", tt.probe.Name)
			}
			if probe.DType != tt.probe.DType || !reflect.DeepEqual(probe.Shape, tt.probe.Shape) {
				t.Errorf("%s: %s %v, want %s %v", probe.Name, probe.DType, probe.Shape, tt.probe.DType, tt.probe.Shape)
			}
			// The generator packs tensors back to back: no holes.
			last := m.Tensors[len(m.Tensors)-1]
			if end := last.DataOffset + last.StorageBytes; end != int64(len(file)) {
				t.Errorf("last tensor ends at %d, file at %d", end, len(file))
			}
		})
	}
}

// TestShardedIndex checks the index against the shards it names.
func TestShardedIndex(t *testing.T) {
	dir := filepath.Join(fixtureDir, "sharded")
	data, err := os.ReadFile(filepath.Join(dir, "model.safetensors.index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ix struct {
		Metadata struct {
			TotalSize int64 `json:"total_size"`
		} `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &ix); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var total int64
	for _, shard := range []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} {
		m, _ := loadFile(t, filepath.Join(dir, shard))
		for _, tn := range m.Tensors {
			got[tn.Name] = shard
		}
		total += realworld.StoredBytes(m)
	}
	if !reflect.DeepEqual(got, ix.WeightMap) {
		t.Errorf("shards hold %v, weight_map says %v", got, ix.WeightMap)
	}
	if total != ix.Metadata.TotalSize || total != 2*(100*64+2*(4*64*64+2*256*64)) {
		t.Errorf("shards hold %d bytes, total_size says %d", total, ix.Metadata.TotalSize)
	}
	var cfg map[string]any
	if data, err = os.ReadFile(filepath.Join(dir, "config.json")); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil || cfg["vocab_size"] != 100.0 || cfg["hidden_size"] != 64.0 {
		t.Errorf("config.json: %v %v", cfg, err)
	}
}

// entryAt returns the file offset of the value of key in a file's header.
func entryAt(t testing.TB, file []byte, key string) int64 {
	t.Helper()
	n := binary.LittleEndian.Uint64(file)
	i := bytes.Index(file[8:8+n], []byte(fmt.Sprintf("%q:", key)))
	if i < 0 {
		t.Fatalf("no key %q in header", key)
	}
	return 8 + int64(i) + int64(len(key)) + 3
}

// TestBadFixtures checks the malformed fixtures' errors.
func TestBadFixtures(t *testing.T) {
	tests := []struct {
		file   string
		frag   string
		tensor string // "" for none
		entry  string // key whose entry the offset points at; "" for offset 0
	}{
		{"bad_header_len.safetensors", "runs past the end of the 184-byte file", "", ""},
		{"bad_offsets.safetensors", "data_offsets: end 48 is past the 32-byte data buffer", "b", "b"},
		{"overlap.safetensors", `data_offsets [8, 24] overlap those of tensor "a" [0, 16]`, "b", "b"},
		{"bad_dtype.safetensors", `dtype: unknown dtype "F12"`, "a", "a"},
		{"truncated.safetensors", "is past the", "*", "*"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			file, err := os.ReadFile(filepath.Join(fixtureDir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !(Loader{}).Sniff(file) {
				t.Error("Sniff = false; a damaged file should still be recognised")
			}
			_, err = load(file)
			var fe *accounting.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T), want *accounting.FormatError", err, err)
			}
			if fe.Format != "safetensors" || !strings.Contains(fe.Msg, tt.frag) {
				t.Errorf("error %q, want format safetensors and %q", err, tt.frag)
			}
			switch tt.tensor {
			case "*":
				if fe.Tensor == "" {
					t.Errorf("error %q names no tensor", err)
				} else if want := entryAt(t, file, fe.Tensor); fe.Offset != want {
					t.Errorf("offset %d, want %d (the entry of %q)", fe.Offset, want, fe.Tensor)
				}
				return
			default:
				if fe.Tensor != tt.tensor {
					t.Errorf("tensor %q, want %q", fe.Tensor, tt.tensor)
				}
			}
			want := int64(0)
			if tt.entry != "" {
				want = entryAt(t, file, tt.entry)
			}
			if fe.Offset != want {
				t.Errorf("offset %d, want %d", fe.Offset, want)
			}
		})
	}
}

// tensorJSON is a header entry.
func tensorJSON(name, dtype, shape string, begin, end any) string {
	return fmt.Sprintf(`%q:{"dtype":%q,"shape":%s,"data_offsets":[%v,%v]}`, name, dtype, shape, begin, end)
}

// TestMalformed checks the errors for in-memory malformed files: the
// message fragment, the tensor named and the offset (relative to the first
// occurrence of at in the file, or absolute when at is "").
func TestMalformed(t *testing.T) {
	ok := func(name string) string { return tensorJSON(name, "F32", "[2]", 0, 8) }
	tests := []struct {
		name   string
		file   []byte
		frag   string
		tensor string
		at     string // the error is at the first byte of this text in the file
		offset int64  // used when at is ""
	}{
		{"empty file", nil, "file of 0 bytes is shorter than 8", "", "", 0},
		{"7 bytes", make([]byte, 7), "file of 7 bytes is shorter than 8", "", "", 0},
		{"length above cap", withLength(MaxHeaderBytes+1, "{}"), "header length 100000001 is above the 100000000-byte cap", "", "", 0},
		{"length 2^63", withLength(1<<63, "{}"), "above the", "", "", 0},
		{"length 2^64-1", withLength(1<<64-1, "{}"), "above the", "", "", 0},
		{"length past file", withLength(3, "{}"), "header length 3 runs past the end of the 10-byte file", "", "", 0},
		{"invalid json", build(`{"a":{"dtype":"F32",}}`, 0), "header: invalid json at header byte 20", "", ",}}", 1},
		{"unterminated json", build(`{"a":{"dtype":"F32"`, 0), "unexpected end", "", "", 8 + 19},
		{"trailing data", build(`{} x`, 0), "after top-level value", "", "x", 0},
		{"invalid utf-8", build("{\"a\xff\":1}", 0), "header: invalid utf-8", "", "\xff", 0},
		{"not an object", build(`[1,2]`, 0), "header: not a json object", "", "", 8},
		{"entry not an object", build(`{"a":5}`, 0), "entry: want an object, got a json number", "a", "5}", 0},
		{"duplicate name", build("{"+ok("a")+","+tensorJSON("a", "F32", "[2]", 8, 16)+"}", 16), "duplicate key", "a", `{"dtype":"F32","shape":[2],"data_offsets":[8`, 0},
		{"missing dtype", build(`{"a":{"shape":[2],"data_offsets":[0,8]}}`, 8), "dtype: missing", "a", `{"shape"`, 0},
		{"null entry", build(`{"a":null}`, 8), "dtype: missing", "a", "null", 0},
		{"dtype case", build(`{"a":{"DTYPE":"F32","shape":[2],"data_offsets":[0,8]}}`, 8), "dtype: missing", "a", `{"DTYPE"`, 0},
		{"missing shape", build(`{"a":{"dtype":"F32","data_offsets":[0,8]}}`, 8), "shape: missing", "a", `{"dtype"`, 0},
		{"missing offsets", build(`{"a":{"dtype":"F32","shape":[2]}}`, 8), "data_offsets: missing", "a", `{"dtype"`, 0},
		{"dtype not a string", build(`{"a":{"dtype":5,"shape":[2],"data_offsets":[0,8]}}`, 8), "dtype: want a string, got 5", "a", `{"dtype"`, 0},
		{"shape not an array", build(`{"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}`, 8), `shape: want an array, got "2"`, "a", `{"dtype"`, 0},
		{"shape null", build(`{"a":{"dtype":"F32","shape":null,"data_offsets":[0,8]}}`, 8), `shape: want an array, got null`, "a", `{"dtype"`, 0},
		{"offsets an object", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":{"0":8}}}`, 8), `data_offsets: want an array`, "a", `{"dtype"`, 0},
		{"unknown dtype", build("{"+tensorJSON("a", "Q4", "[2]", 0, 1)+"}", 1), `dtype: unknown dtype "Q4"`, "a", `{"dtype"`, 0},
		{"lower-case dtype", build("{"+tensorJSON("a", "f32", "[2]", 0, 8)+"}", 8), `dtype: unknown dtype "f32"`, "a", `{"dtype"`, 0},
		{"packed fp4 size mismatch", build("{"+tensorJSON("a", "F4", "[4]", 0, 1)+"}", 1), "data_offsets: [0, 1] holds 1 bytes, but shape [4] of F4 needs 2", "a", `{"dtype"`, 0},
		{"packed fp6 size mismatch", build("{"+tensorJSON("a", "F6_E2M3", "[4]", 0, 4)+"}", 4), "holds 4 bytes, but shape [4] of F6_E2M3 needs 3", "a", `{"dtype"`, 0},
		{"string dim", build("{"+tensorJSON("a", "F32", `["2"]`, 0, 8)+"}", 8), `shape[0]: "2" is not an integer`, "a", `{"dtype"`, 0},
		{"float dim", build("{"+tensorJSON("a", "F32", `[1, 2.0]`, 0, 8)+"}", 8), `shape[1]: 2.0 is not an integer`, "a", `{"dtype"`, 0},
		{"exponent dim", build("{"+tensorJSON("a", "F32", `[2e0]`, 0, 8)+"}", 8), `shape[0]: 2e0 is not an integer`, "a", `{"dtype"`, 0},
		{"dim with a comma", build("{"+tensorJSON("a", "F32", `["2,3", 2]`, 0, 8)+"}", 8), `shape[0]: "2,3" is not an integer`, "a", `{"dtype"`, 0},
		{"dim with an escaped quote", build("{"+tensorJSON("a", "F32", `[2, "\",]"]`, 0, 8)+"}", 8), `shape[1]: "\",]" is not an integer`, "a", `{"dtype"`, 0},
		{"nested dim", build("{"+tensorJSON("a", "F32", `[[1, [2]], 2]`, 0, 8)+"}", 8), `shape[0]: [1, [2]] is not an integer`, "a", `{"dtype"`, 0},
		{"65 dims", build("{"+tensorJSON("a", "F32", "["+strings.Repeat("1,", 64)+"2]", 0, 8)+"}", 8), "shape: 65 dimensions, more than 64", "a", `{"dtype"`, 0},
		{"negative dim", build("{"+tensorJSON("a", "F32", `[2,-1]`, 0, 8)+"}", 8), "shape: negative dimension -1", "a", `{"dtype"`, 0},
		{"huge dim", build("{"+tensorJSON("a", "F32", `[9223372036854775808]`, 0, 8)+"}", 8), "shape[0]: 9223372036854775808 is out of range", "a", `{"dtype"`, 0},
		{"numel overflow", build("{"+tensorJSON("a", "U8", `[4294967296,4294967296]`, 0, 8)+"}", 8), "shape: shape [4294967296 4294967296]: element count overflows int64", "a", `{"dtype"`, 0},
		{"bytes overflow", build("{"+tensorJSON("a", "F64", `[2305843009213693952]`, 0, 8)+"}", 8), "shape: float64: 2305843009213693952 elements overflow int64 bytes", "a", `{"dtype"`, 0},
		{"one offset", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}}`, 8), "data_offsets: want [begin, end], got 1 values", "a", `{"dtype"`, 0},
		{"three offsets", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}`, 8), "data_offsets: want [begin, end], got 3 values", "a", `{"dtype"`, 0},
		{"nested offsets", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[[0,8]]}}`, 8), "data_offsets: want [begin, end], got 1 values", "a", `{"dtype"`, 0},
		{"object offset", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,{"x":[8,9]}]}}`, 8), `data_offsets[1]: {"x":[8,9]} is not a non-negative integer`, "a", `{"dtype"`, 0},
		{"negative offset", build("{"+tensorJSON("a", "F32", "[2]", -8, 0)+"}", 8), "data_offsets[0]: -8 is not a non-negative integer", "a", `{"dtype"`, 0},
		{"float offset", build("{"+tensorJSON("a", "F32", "[2]", 0, "8.0")+"}", 8), "data_offsets[1]: 8.0 is not a non-negative integer", "a", `{"dtype"`, 0},
		{"begin after end", build("{"+tensorJSON("a", "F32", "[2]", 8, 0)+"}", 8), "data_offsets: begin 8 is after end 0", "a", `{"dtype"`, 0},
		{"end past buffer", build("{"+tensorJSON("a", "F32", "[2]", 0, 8)+"}", 7), "data_offsets: end 8 is past the 7-byte data buffer", "a", `{"dtype"`, 0},
		// 2^53+1 is not a float64: a loader going through float64 would
		// report 9007199254740992.
		{"end beyond 2^53", build("{"+tensorJSON("a", "F32", "[2]", "9007199254740985", "9007199254740993")+"}", 8), "end 9007199254740993 is past", "a", `{"dtype"`, 0},
		{"end beyond 2^64", build("{"+tensorJSON("a", "F32", "[2]", 0, "18446744073709551616")+"}", 8), "data_offsets[1]: 18446744073709551616 is out of range", "a", `{"dtype"`, 0},
		{"end 2^64-1", build("{"+tensorJSON("a", "F32", "[2]", 0, "18446744073709551615")+"}", 8), "end 18446744073709551615 is past the 8-byte data buffer", "a", `{"dtype"`, 0},
		{"size mismatch", build("{"+tensorJSON("a", "F32", "[2]", 0, 4)+"}", 8), "data_offsets: [0, 4] holds 4 bytes, but shape [2] of F32 needs 8", "a", `{"dtype"`, 0},
		{"overlap", build("{"+ok("a")+","+tensorJSON("b", "F32", "[2]", 4, 12)+"}", 12), `data_offsets [4, 12] overlap those of tensor "a" [0, 8]`, "b", `{"dtype":"F32","shape":[2],"data_offsets":[4`, 0},
		{"overlap out of order", build("{"+tensorJSON("b", "F32", "[2]", 4, 12)+","+ok("a")+"}", 12), `data_offsets [4, 12] overlap those of tensor "a" [0, 8]`, "b", `{"dtype"`, 0},
		{"nested overlap", build("{"+tensorJSON("big", "F32", "[8]", 0, 32)+","+tensorJSON("small", "F32", "[1]", 8, 12)+"}", 32), `data_offsets [8, 12] overlap those of tensor "big" [0, 32]`, "small", `{"dtype":"F32","shape":[1]`, 0},
		{"overlap across an empty tensor", build("{"+tensorJSON("a", "F32", "[4]", 0, 16)+","+tensorJSON("e", "F32", "[0]", 4, 4)+","+tensorJSON("b", "F32", "[2]", 8, 16)+"}", 16),
			`data_offsets [8, 16] overlap those of tensor "a" [0, 16]`, "b", `{"dtype":"F32","shape":[2]`, 0},
		{"identical ranges", build("{"+ok("a")+","+ok("b")+"}", 8), `overlap those of tensor "a" [0, 8]`, "b", `{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := load(tt.file)
			var fe *accounting.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("got model %+v, error %v; want a *accounting.FormatError", m, err)
			}
			if fe.Format != "safetensors" || fe.Tensor != tt.tensor || !strings.Contains(fe.Msg, tt.frag) {
				t.Errorf("error %q (tensor %q), want tensor %q and %q", err, fe.Tensor, tt.tensor, tt.frag)
			}
			if fe.Msg != strings.ToLower(fe.Msg[:1])+fe.Msg[1:] {
				t.Errorf("message %q starts upper-case", fe.Msg)
			}
			want := tt.offset
			if tt.at != "" {
				i := bytes.Index(tt.file, []byte(tt.at))
				if i < 0 {
					t.Fatalf("%q not in the file", tt.at)
				}
				want += int64(i)
			}
			if fe.Offset != want {
				t.Errorf("offset %d, want %d", fe.Offset, want)
			}
		})
	}
}

// TestWellFormed checks in-memory files that must load, and what they give.
func TestWellFormed(t *testing.T) {
	type want struct {
		name   string
		offset int64 // DataOffset
		bytes  int64
	}
	header := func(entries ...string) string { return "{" + strings.Join(entries, ",") + "}" }
	tests := []struct {
		name   string
		header string
		data   int
		want   []want
	}{
		{"no tensors", `{}`, 0, nil},
		{"only metadata", `{"__metadata__":{"format":"pt"}}`, 0, nil},
		{"metadata of any json", `{"__metadata__":[1,{"x":null}]}`, 0, nil},
		{"padding", `{}      `, 0, nil},
		{"leading whitespace", " \n{}", 0, nil},
		{"scalar", header(tensorJSON("s", "F64", "[]", 0, 8)), 8, []want{{"s", 0, 8}}},
		{"scalar, spaced", header(tensorJSON("s", "F32", "[ ]", 0, 4)), 4, []want{{"s", 0, 4}}},
		{"64 dims", header(tensorJSON("r", "U8", "["+strings.Repeat("1, ", 63)+"1]", 0, 1)), 1, []want{{"r", 0, 1}}},
		{"4-d", header(tensorJSON("w", "BF16", "[1,2,3,4]", 0, 48)), 48, []want{{"w", 0, 48}}},
		{"empty tensor", header(tensorJSON("e", "F32", "[0,5]", 0, 0)), 0, []want{{"e", 0, 0}}},
		{"holes and trailing bytes", header(tensorJSON("a", "U8", "[4]", 4, 8), tensorJSON("b", "I16", "[2]", 12, 16)), 40,
			[]want{{"a", 4, 4}, {"b", 12, 4}}},
		{"data order", header(tensorJSON("z", "F16", "[2]", 0, 4), tensorJSON("b", "BF16", "[2]", 8, 12), tensorJSON("a", "I32", "[1]", 4, 8)), 12,
			[]want{{"z", 0, 4}, {"a", 4, 4}, {"b", 8, 4}}},
		{"empty tensor inside another", header(tensorJSON("a", "F32", "[4]", 0, 16), tensorJSON("e", "F32", "[0]", 8, 8)), 16,
			[]want{{"a", 0, 16}, {"e", 8, 0}}},
		{"empty tensors keep header order", header(tensorJSON("y", "U8", "[0]", 0, 0), tensorJSON("x", "U8", "[0]", 0, 0)), 0,
			[]want{{"y", 0, 0}, {"x", 0, 0}}},
		{"extra fields", `{"a":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3],"note":"x"}}`, 3, []want{{"a", 0, 3}}},
		{"whitespace everywhere", "{ \"a\" :\n{ \"dtype\" : \"C64\" , \"shape\" : [ 1 ] , \"data_offsets\" : [ 0 , 8 ] } }", 8, []want{{"a", 0, 8}}},
		{"unicode name", header(tensorJSON("héllo.wéight", "I8", "[2]", 0, 2)), 2, []want{{"héllo.wéight", 0, 2}}},
		{"escaped name", `{"a\"b\u00e9":{"dtype":"U64","shape":[1],"data_offsets":[0,8]}}`, 8, []want{{"a\"bé", 0, 8}}},
		{"fp8 kinds", header(tensorJSON("a", "F8_E4M3", "[2]", 0, 2), tensorJSON("b", "F8_E5M2", "[2]", 2, 4),
			tensorJSON("c", "F8_E4M3FNUZ", "[2]", 4, 6), tensorJSON("d", "F8_E5M2FNUZ", "[2]", 6, 8)), 8,
			[]want{{"a", 0, 2}, {"b", 2, 2}, {"c", 4, 2}, {"d", 6, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := build(tt.header, tt.data)
			m, err := load(file)
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, m, file)
			var got []want
			for _, tn := range m.Tensors {
				got = append(got, want{tn.Name, tn.DataOffset - 8 - int64(len(tt.header)), tn.StorageBytes})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// boundedReader fails on any read outside [0, limit).
type boundedReader struct {
	r     io.ReaderAt
	limit int64
	reads int
}

func (b *boundedReader) ReadAt(p []byte, off int64) (int, error) {
	b.reads++
	if off+int64(len(p)) > b.limit {
		return 0, fmt.Errorf("read [%d, %d) beyond the header end %d", off, off+int64(len(p)), b.limit)
	}
	return b.r.ReadAt(p, off)
}

// TestHeaderOnly checks that Load reads the header and nothing else, in two
// reads.
func TestHeaderOnly(t *testing.T) {
	file, err := os.ReadFile(filepath.Join(fixtureDir, "small_f32.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	br := &boundedReader{r: bytes.NewReader(file), limit: 8 + int64(binary.LittleEndian.Uint64(file))}
	m, err := Loader{}.Load(br, int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tensors) != 13 || br.reads != 2 {
		t.Errorf("%d tensors in %d reads, want 13 in 2", len(m.Tensors), br.reads)
	}
}

type errReader struct{}

func (errReader) ReadAt([]byte, int64) (int, error) { return 0, errors.New("disk on fire") }

// TestReadErrors checks I/O failures and a size larger than the data.
func TestReadErrors(t *testing.T) {
	_, err := Loader{}.Load(errReader{}, 100)
	var fe *accounting.FormatError
	if err == nil || errors.As(err, &fe) || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("I/O error: got %v, want the reader's error, not a FormatError", err)
	}
	file := build(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1)
	_, err = Loader{}.Load(bytes.NewReader(file[:20]), int64(len(file)))
	if !errors.As(err, &fe) || fe.Offset != 20 || !strings.Contains(fe.Msg, "file ends after 12 of 53 bytes") {
		t.Errorf("short file: got %v", err)
	}
}

func TestSniff(t *testing.T) {
	small, err := os.ReadFile(filepath.Join(fixtureDir, "small_f32.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		head []byte
		want bool
	}{
		{"fixture", small[:64], true},
		{"minimal", withLength(2, "{}"), true},
		{"cap", withLength(MaxHeaderBytes, "{"), true},
		{"above cap", withLength(MaxHeaderBytes+1, "{"), false},
		{"length 1", withLength(1, "{"), false},
		{"length 0", withLength(0, "{"), false},
		{"no brace", withLength(2, "[]"), false},
		{"8 bytes", withLength(2, ""), false},
		{"empty", nil, false},
		{"gguf", []byte("GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), false},
		{"zip", []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00"), false},
		{"pickle", []byte("\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."), false},
	}
	for _, tt := range tests {
		if got := (Loader{}).Sniff(tt.head); got != tt.want {
			t.Errorf("%s: Sniff = %v, want %v", tt.name, got, tt.want)
		}
	}
	if (Loader{}).Name() != "safetensors" {
		t.Errorf("Name = %q", Loader{}.Name())
	}
}
