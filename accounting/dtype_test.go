package accounting

import (
	"strings"
	"testing"
)

func TestDTypeBytes(t *testing.T) {
	for _, c := range []struct {
		dtype string
		n     int64
		want  int64
		err   bool
	}{
		{"float32", 10, 40, false},
		{"bfloat16", 3, 6, false},
		{"bool", 0, 0, false},
		{"quint4x2", 3, 2, false}, // partial block rounds up
		{"float64", -1, 0, true},
		{"float64", 1 << 61, 0, true},
	} {
		d, ok := LookupDType(c.dtype)
		if !ok {
			t.Fatalf("no dtype %q", c.dtype)
		}
		got, err := d.Bytes(c.n)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("%s.Bytes(%d) = %d, %v; want %d, err %v", c.dtype, c.n, got, err, c.want, c.err)
		}
	}
}

// TestShapeBytes: torch packs each row of a 4- or 2-bit quantized tensor
// into whole bytes (torch 1.13: a quint4x2 [3, 3] has a 6-byte storage);
// other block types count blocks over the whole tensor.
func TestShapeBytes(t *testing.T) {
	for _, c := range []struct {
		dtype string
		shape []int64
		want  int64
	}{
		{"quint4x2", []int64{3, 3}, 6},
		{"quint4x2", []int64{4, 6}, 12},
		{"quint4x2", []int64{9}, 5},
		{"quint4x2", []int64{}, 1},
		{"quint4x2", []int64{3, 0}, 0},
		{"quint2x4", []int64{2, 5}, 4},
		{"float4_e2m1fn", []int64{3, 3}, 5}, // safetensors F4: packed without padding
		{"float32", []int64{3, 3}, 36},
		{"q4_0", []int64{2, 32}, 36},
	} {
		d, _ := LookupDType(c.dtype)
		if got, err := d.ShapeBytes(c.shape); err != nil || got != c.want {
			t.Errorf("%s.ShapeBytes(%v) = %d, %v; want %d", c.dtype, c.shape, got, err, c.want)
		}
	}
	d, _ := LookupDType("quint4x2")
	if _, err := d.ShapeBytes([]int64{1 << 40, 1 << 40, 3}); err == nil {
		t.Error("no overflow error")
	}
}

func TestDTypeTable(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range dtypes {
		if seen[d.Name] || d.BlockElems <= 0 || d.BlockBytes <= 0 {
			t.Errorf("bad or duplicate row %+v", d)
		}
		seen[d.Name] = true
	}
}

func TestNumel(t *testing.T) {
	if n, err := Numel([]int64{5000, 256}); n != 1280000 || err != nil {
		t.Errorf("Numel = %d, %v", n, err)
	}
	if n, err := Numel(nil); n != 1 || err != nil {
		t.Errorf("scalar Numel = %d, %v", n, err)
	}
	for _, shape := range [][]int64{{0, 1 << 62, 1 << 62}, {1 << 32, 1<<32 + 1, 0}, {1 << 32, 0, 1<<32 + 1, 65536}} {
		if n, err := Numel(shape); n != 0 || err != nil {
			t.Errorf("Numel(%v) = %d, %v; a zero dimension makes zero elements in any order", shape, n, err)
		}
	}
	if _, err := Numel([]int64{1 << 32, 1 << 32}); err == nil {
		t.Error("overflow not detected")
	}
	if _, err := Numel([]int64{-1}); err == nil {
		t.Error("negative dim accepted")
	}
}

// TestDTypeBytesEveryRow: every row of the table, plain and GGML, on zero
// elements, a whole block, a partial block (rounded up to whole blocks),
// many blocks, and a count whose bytes overflow int64.
func TestDTypeBytesEveryRow(t *testing.T) {
	for _, d := range dtypes {
		for _, c := range []struct {
			n, want int64
		}{
			{0, 0},
			{d.BlockElems, d.BlockBytes},
			{d.BlockElems + 1, 2 * d.BlockBytes},
			{1000 * d.BlockElems, 1000 * d.BlockBytes},
		} {
			if got, err := d.Bytes(c.n); err != nil || got != c.want {
				t.Errorf("%s.Bytes(%d) = %d, %v; want %d", d.Name, c.n, got, err, c.want)
			}
		}
		if _, err := d.Bytes(1<<63 - 1); d.BlockBytes > d.BlockElems && err == nil {
			t.Errorf("%s: overflow not detected", d.Name)
		}
		if d.Bits() <= 0 || d.Bits() > 128 {
			t.Errorf("%s: %g bits per element", d.Name, d.Bits())
		}
	}
}

func TestShapeStringBounded(t *testing.T) {
	big := make([]int64, 1_000_000)
	big[999_999] = -1
	_, err := Numel(big)
	if err == nil || len(err.Error()) > 100 || !strings.Contains(err.Error(), "(1000000 dims)") {
		t.Errorf("error for a million dims: %.200v", err)
	}
	if got := ShapeString([]int64{2, 3}); got != "[2 3]" {
		t.Errorf("ShapeString = %q", got)
	}
}
