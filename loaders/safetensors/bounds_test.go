package safetensors

import (
	"errors"
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
			// The header, the decoder's buffer (grown by doubling) and
			// the raw field cost about 6 times the header; a slice
			// element for each array element made it 18.
			if limit := uint64(8*len(tt.header) + 1<<20); got > limit {
				t.Errorf("allocated %d bytes for a %d-byte header (limit %d)", got, len(tt.header), limit)
			}
		})
	}
}
