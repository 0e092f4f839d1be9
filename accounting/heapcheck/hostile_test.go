package heapcheck

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qinsaudit/qinsaudit/internal/racetest"
)

// gzipped compresses data at the best level.
func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return b.Bytes()
}

// TestTcmallocLinesBomb: a small gzip of tcmalloc sample lines (all valid:
// the sniff passes) is refused at the decompressed-size bound derived from
// its size, before pprof parses a line; parsing it once took 35 bytes of
// heap per byte of lines (3.5 GB for 100 MiB).
func TestTcmallocLinesBomb(t *testing.T) {
	racetest.SkipAllocs(t)
	var plain bytes.Buffer
	plain.WriteString("heap profile: 1: 8 [ 1: 8] @ heap_v2/524288\n")
	line := bytes.Repeat([]byte("1: 8 [1: 8] @ 0x10\n"), 1<<14)
	for plain.Len() < 40<<20 {
		plain.Write(line)
	}
	plain.WriteString("\nMAPPED_LIBRARIES:\n")
	data := gzipped(t, plain.Bytes())
	t.Logf("%d KiB of gzip for %d MiB of lines", len(data)>>10, plain.Len()>>20)
	var err error
	n := allocated(func() { _, err = Parse("lines.heap.gz", data) })
	if err == nil || !strings.Contains(err.Error(), "decompresses to more than 16777216 bytes") || !strings.HasPrefix(err.Error(), "lines.heap.gz: ") {
		t.Errorf("Parse = %v, want the decompressed-size bound", err)
	}
	// The bound (16 MiB) and io.ReadAll's doubling, plus a constant.
	if n > 64<<20 {
		t.Errorf("Parse allocated %d MiB for a %d KiB file, want at most 64", n>>20, len(data)>>10)
	}
}

// TestRecordBound: a profile with more stacks than its size allows (one per
// 16 bytes of the file, at least 65,536) is refused before pprof parses it,
// text or proto, gzipped or not.
func TestRecordBound(t *testing.T) {
	racetest.SkipAllocs(t)
	var text bytes.Buffer
	text.WriteString("heap profile: 1: 8 [ 1: 8] @ heapprofile\n")
	for range 70_000 {
		text.WriteString("1: 8 [1: 8] @ 0x10\n")
	}
	text.WriteString("\nMAPPED_LIBRARIES:\n")
	// A proto of 1,000,000 one-location samples: 8 bytes each.
	var proto bytes.Buffer
	ld := func(field int, payload []byte) []byte {
		b := binary.AppendUvarint(nil, uint64(field<<3|2))
		b = binary.AppendUvarint(b, uint64(len(payload)))
		return append(b, payload...)
	}
	proto.Write(ld(1, []byte{0x08, 1, 0x10, 2}))
	proto.Write(ld(4, []byte{0x08, 1, 0x10, 0x10}))
	sample := ld(2, append(ld(1, []byte{1}), ld(2, []byte{8})...))
	for range 1_000_000 {
		proto.Write(sample)
	}
	for _, s := range []string{"", "inuse_space", "bytes"} {
		proto.Write(ld(6, []byte(s)))
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"lines.heap.gz", gzipped(t, text.Bytes())},
		{"samples.pb.gz", gzipped(t, proto.Bytes())},
		{"samples.pb", proto.Bytes()},
	} {
		var err error
		n := allocated(func() { _, err = Parse(c.name, c.data) })
		if err == nil || !strings.Contains(err.Error(), "stacks (the limit for a file of") {
			t.Errorf("Parse(%s) = %v, want the stack bound", c.name, err)
		}
		// The decompressed bytes, twice for io.ReadAll's growth, and a constant.
		if limit := 3*uint64(proto.Len()) + 4<<20; n > limit {
			t.Errorf("Parse(%s) allocated %d MiB, want at most %d", c.name, n>>20, limit>>20)
		}
	}
	// Under the bound, the same kind of profile is read.
	var small bytes.Buffer
	small.WriteString("heap profile: 1: 8 [ 1: 8] @ heapprofile\n")
	for range 1000 {
		small.WriteString("1: 8 [1: 8] @ 0x10\n")
	}
	small.WriteString("\nMAPPED_LIBRARIES:\n")
	if _, err := Parse("small.heap", small.Bytes()); err != nil {
		t.Errorf("Parse(1,000 stacks) = %v", err)
	}
}

// TestSamplePeriod: a sampled tcmalloc or Go legacy profile of period 0,
// a negative one or none is refused: pprof would leave its values as
// sampled, and they would be taken for exact.
func TestSamplePeriod(t *testing.T) {
	for _, c := range []struct{ header, want string }{
		{"heap_v2/0", "sample period 0"},
		{"heap_v2/-5", "sample period -5"},
		{"heap_v2", "sample period missing"},
		{"heap/0", "sample period 0"},
	} {
		data := "heap profile: 1: 8 [ 1: 8] @ " + c.header + "\n1: 8 [1: 8] @ 0x10\n\nMAPPED_LIBRARIES:\n"
		_, err := Parse("p.heap", []byte(data))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%s) = %v, want an error containing %q", c.header, err, c.want)
		}
	}
	if p, err := Parse("p.heap", []byte("heap profile: 1: 8 [ 1: 8] @ heap_v2/524288\n1: 8 [1: 8] @ 0x10\n\nMAPPED_LIBRARIES:\n")); err != nil || p.SampleRate != 524288 {
		t.Errorf("Parse(heap_v2/524288) = %v", err)
	}
}

// TestReadRegularOnly: Read refuses a FIFO at once and never reads a
// device.
func TestReadRegularOnly(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	for _, p := range []string{fifo, "/dev/zero"} {
		done := make(chan error, 1)
		go func() { _, err := Read(p); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("Read(%s) = %v", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Read(%s) blocked", p)
		}
	}
}

// TestClaimsHostile: a name given twice is an error with its line; a
// non-object, trailing data and negative or fractional byte counts are
// refused; long values are clipped in errors; the file is read bounded.
func TestClaimsHostile(t *testing.T) {
	long := strings.Repeat("9", 1<<20)
	for _, c := range []struct{ data, want string }{
		{"{\"weights\": \"9.4MiB\",\n \"weights\": \"1B\"}\n", `c.json:2: claim "weights" given twice`},
		{`["weights"]`, "not a claims file"},
		{`{"a": 1} {"b": 2}`, "data after the object"},
		{`{"a": -5}`, "is not a byte count"},
		{`{"a": 1.5}`, "is not a byte count"},
		{`{"a": "lots"}`, "not a size"},
		{`{"a": "` + long + `B"}`, "not a size"},
		{`{"a": ` + long + `}`, "is not a byte count"},
	} {
		_, err := ParseClaims("c.json", []byte(c.data))
		if err == nil || !strings.Contains(err.Error(), c.want) || len(err.Error()) > 1024 {
			t.Errorf("ParseClaims(%.40q) = %.300v, want a short error containing %q", c.data, err, c.want)
		}
	}
	big := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(big, make([]byte, maxClaimsBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadClaims(big); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("ReadClaims(big) = %v", err)
	}
}
