package safetensors

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/racetest"
)

// allocated is the number of bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestLongArrays: a shape or data_offsets of a million elements costs a
// scan of the header, not memory for each element.
func TestLongArrays(t *testing.T) {
	racetest.SkipAllocs(t)
	const n = 1 << 20
	long := "[" + strings.Repeat("1,", n-1) + "1]"
	tests := []struct {
		name, header, msg string
	}{
		{"shape", `{"a":{"dtype":"U8","shape":` + long + `,"data_offsets":[0,1]}}`,
			"shape: 1048576 dimensions, more than 64"},
		{"data_offsets", `{"a":{"dtype":"U8","shape":[1],"data_offsets":` + long + `}}`,
			"data_offsets: want [begin, end], got 1048576 values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := build(tt.header, 1)
			var err error
			got := allocated(func() { _, err = load(file) })
			var fe *accounting.FormatError
			if !errors.As(err, &fe) || fe.Msg != tt.msg || fe.Tensor != "a" {
				t.Fatalf("got %v, want %q", err, tt.msg)
			}
			// The header itself and nothing per element (the scanner
			// reads the array in place): 1.005 times the header. With
			// encoding/json's decoder it was about 6, and a slice element
			// for each array element made it 18.
			if limit := uint64(2*len(tt.header) + 1<<20); got > limit {
				t.Errorf("allocated %d bytes for a %d-byte header (limit %d)", got, len(tt.header), limit)
			}
		})
	}
}

// TestHeaderMemory: what a load allocates follows the header: a few times
// its size, whatever the header holds. The reader it replaced allocated 18
// to 21 times the header (a map of raw fields per entry, the decoder's
// buffers), so that a 94 MB header of a million tensors took 2.7 GB.
func TestHeaderMemory(t *testing.T) {
	const n = 100_000
	entries := make([]string, n)
	for i := range entries {
		// Entries in name order, data in the reverse: the load sorts.
		entries[i] = tensorJSON(fmt.Sprintf("model.layers.%d.mlp.proj_%d.weight", i/8, i%8), "F32", "[4,4]", 64*(n-1-i), 64*(n-i))
	}
	many := "{" + strings.Join(entries, ",") + "}"
	// A header whose metadata repeats the key the reader counts to size
	// its tables: the count is bounded by what real entries could hold.
	inflated := `{"__metadata__":[` + strings.Repeat(`"data_offsets",`, 1<<20) + `""],` +
		strings.Replace(entries[0], fmt.Sprintf("[%d,%d]", 64*(n-1), 64*n), "[0,64]", 1) + "}"
	for _, c := range []struct {
		name, header  string
		data, tensors int
	}{{"100k tensors", many, 64 * n, n}, {"inflated count", inflated, 64, 1}} {
		t.Run(c.name, func(t *testing.T) {
			file := build(c.header, c.data)
			var m *accounting.Model
			var err error
			got := allocated(func() { m, err = load(file) })
			if err != nil || len(m.Tensors) != c.tensors {
				t.Fatalf("%v, want %d tensors", err, c.tensors)
			}
			// 4 times for real headers; 5.4 for the inflated count
			// (tables for 314,000 tensors, one in the file). Without the
			// bound on the count it was 16.
			if limit := uint64(6*len(c.header) + 1<<20); got > limit {
				t.Errorf("allocated %d bytes for a %d-byte header (limit %d)", got, len(c.header), limit)
			}
		})
	}
}
