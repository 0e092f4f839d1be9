package gguf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/loaders/gguf/gguftest"
)

// addSeeds adds the fuzz tests' corpus: real files and fixtures, cut to
// their headers, and the test files of gguf_test.go.
func addSeeds(f *testing.F) {
	// Real files are cut to their first 16 KiB (the vocab files' headers
	// run to megabytes), fixtures to their tensor infos.
	realFiles, _ := filepath.Glob(filepath.Join(realworldDir, "*", "*.gguf"))
	fixtures, _ := filepath.Glob("../../fixtures/gguf/*.gguf")
	for _, p := range append(realFiles, fixtures...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if h, err := ReadHeader(bytes.NewReader(data), int64(len(data))); err == nil && len(h.Tensors) > 0 && h.DataOffset < 16<<10 {
			data = data[:h.DataOffset]
		}
		f.Add(data[:min(len(data), 16<<10)])
	}
	f.Add(allKinds())
	f.Add(gguftest.ManyTensors(20))
	f.Add(zeroDim())
	f.Add(newFile().BigEndian().KV("general.alignment", uint32(8)).KV("a", [][]uint8{{1}}).
		Tensor("w", gguftest.Q4_K, 256).Tensor("u", 77, 5).Bytes())
	for _, c := range malformedFiles() {
		if len(c.data) <= 1<<20 { // not the 1.5 MB of "tensor count limit"
			f.Add(c.data)
		}
	}
}

// FuzzFieldByField checks that decoding tensor infos straight from the
// buffer (reader.tensorInfo) reads what reading them field by field does,
// header for header and error for error.
func FuzzFieldByField(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		size := int64(len(data))
		fast, errFast := readHeader(bytes.NewReader(data), size, false)
		slow, errSlow := readHeader(bytes.NewReader(data), size, true)
		if fmt.Sprint(errFast) != fmt.Sprint(errSlow) {
			t.Fatalf("error %v, field by field %v", errFast, errSlow)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("header\n%+v\nfield by field\n%+v", fast, slow)
		}
	})
}

// FuzzLoad checks that Load never panics, fails only with a FormatError, and
// returns tensors that fit the file.
func FuzzLoad(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		size := int64(len(data))
		m, err := Loader{}.Load(bytes.NewReader(data), size)
		if err != nil {
			var fe *accounting.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FormatError", err)
			}
			if fe.Offset < 0 || fe.Offset > size {
				t.Fatalf("error offset %d outside the file: %v", fe.Offset, err)
			}
			return
		}
		var total int64
		for _, x := range m.Tensors {
			if x.StorageBytes < 0 || x.DataOffset < 0 || x.DataOffset > size-x.StorageBytes {
				t.Fatalf("%s: %d bytes at %d in a file of %d", x.Name, x.StorageBytes, x.DataOffset, size)
			}
			total += x.StorageBytes
			if d, ok := accounting.LookupDType(x.DType); ok {
				n, err := accounting.Numel(x.Shape)
				if err != nil {
					t.Fatal(err)
				}
				if b, err := d.Bytes(n); err != nil || b != x.StorageBytes {
					t.Fatalf("%s: %d bytes of %s %v stored as %d (%v)", x.Name, b, x.DType, x.Shape, x.StorageBytes, err)
				}
			}
		}
		for _, g := range m.Files[0].Gaps {
			if g.Bytes <= 0 || g.Offset < 0 || g.Offset > size-g.Bytes {
				t.Fatalf("gap of %d bytes at %d in a file of %d", g.Bytes, g.Offset, size)
			}
			total += g.Bytes
		}
		if total > size {
			t.Fatalf("storages and gaps total %d bytes in a file of %d", total, size)
		}
	})
}
