package heapcheck

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/qinsaudit/qinsaudit/internal/racetest"
)

// TestOverflowRefused: stacks whose bytes would overflow a sum are refused,
// not wrapped around. Three jemalloc stacks of MaxInt64, MaxInt64 and the
// toy's stored bytes + 2 once summed to exactly the stored bytes, and the
// heap was judged consistent.
func TestOverflowRefused(t *testing.T) {
	je := func(vals ...int64) []byte {
		var b strings.Builder
		b.WriteString("heap_v2/1\n  t*: 1: 8 [0: 0]\n")
		for i, v := range vals {
			fmt.Fprintf(&b, "@ 0x%x\n  t*: 1: %d [0: 0]\n", 0x10*(i+1), v)
		}
		b.WriteString("\nMAPPED_LIBRARIES:\n")
		return []byte(b.String())
	}
	proto := func(vals ...int64) []byte {
		p := &profile.Profile{
			SampleType: []*profile.ValueType{{Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"}},
			PeriodType: &profile.ValueType{Type: "space", Unit: "bytes"},
			Period:     1,
		}
		for i, v := range vals {
			loc := &profile.Location{ID: uint64(i + 1), Address: uint64(0x10 * (i + 1))}
			p.Location = append(p.Location, loc)
			p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{loc}, Value: []int64{1, v}})
		}
		var buf bytes.Buffer
		if err := p.Write(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"wrap.heap", je(math.MaxInt64, math.MaxInt64, toyStored+2), "out of range"},
		{"one-huge.heap", je(1<<62 + 1), "out of range"},
		{"sum.heap", je(1<<61, 1<<61, 1<<61), "more than 2^62 bytes"},
		{"wrap.pb.gz", proto(math.MaxInt64, math.MaxInt64, toyStored+2), "out of range"},
		{"negative.pb.gz", proto(math.MinInt64, toyStored), "out of range"},
		{"header.heap", []byte("heap profile: 1: 9223372036854775807 [ 1: 8] @ heapprofile\n1: 8 [1: 8] @ 0x10\n\nMAPPED_LIBRARIES:\n"), "out of range"},
	} {
		p, err := Parse(c.name, c.data)
		if err == nil {
			m, merr := Measure(p, nil, nil)
			t.Errorf("Parse(%s) accepted the profile: measured %d bytes (%v); want an error containing %q", c.name, m.InUseBytes, merr, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), c.name+": ") {
			t.Errorf("Parse(%s) = %v, want an error naming the file, containing %q", c.name, err, c.want)
		}
	}
}

// TestMeasureOverflow: a profile minus its base cannot overflow either,
// whatever Parse let through (a hand-made Profile).
func TestMeasureOverflow(t *testing.T) {
	mk := func(v int64) *Profile {
		loc := &profile.Location{ID: 1, Address: 0x10}
		return &Profile{Path: "p", Format: Proto, SampleRate: 1, HeaderInUseBytes: -1, ListedInUseBytes: -1, objects: -1, alloc: -1,
			P: &profile.Profile{SampleType: []*profile.ValueType{{Type: "inuse_space", Unit: "bytes"}},
				Sample: []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{v}}}}}
	}
	if _, err := Measure(mk(math.MaxInt64), mk(math.MinInt64+1), nil); err == nil || !strings.Contains(err.Error(), "2^62") {
		t.Errorf("Measure(MaxInt64 - MinInt64) = %v, want an overflow error", err)
	}
	if m, err := Measure(mk(1000), mk(400), nil); err != nil || m.InUseBytes != 600 {
		t.Errorf("Measure(1000 - 400) = %d, %v", m.InUseBytes, err)
	}
}

// bomb gzips n MiB of zeros as concatenated gzip members (which
// compress/gzip reads as one stream), so the test builds it cheaply.
func bomb(t *testing.T, mib int, head []byte) []byte {
	t.Helper()
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	if _, err := zw.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	var out bytes.Buffer
	if head != nil {
		zw := gzip.NewWriter(&out)
		zw.Write(head)
		zw.Close()
	}
	for range mib {
		out.Write(member.Bytes())
	}
	return out.Bytes()
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestGzipBomb: a small gzip that decompresses to hundreds of MiB of
// zeros is refused from its first bytes, without decompressing the rest.
func TestGzipBomb(t *testing.T) {
	racetest.SkipAllocs(t)
	data := bomb(t, 256, nil)
	t.Logf("%d KiB of gzip for 256 MiB of zeros", len(data)>>10)
	var err error
	n := allocated(func() { _, err = Parse("bomb.heap.gz", data) })
	if err == nil || !strings.Contains(err.Error(), "unknown profile format") || !strings.HasPrefix(err.Error(), "bomb.heap.gz: ") {
		t.Errorf("Parse(bomb) = %v, want unknown profile format", err)
	}
	if n > 16<<20 {
		t.Errorf("Parse(bomb) allocated %d MiB, want at most 16", n>>20)
	}
}

// TestGzipLimit: a stream that starts like a heap profile is decompressed,
// up to maxUnzipBytes.
func TestGzipLimit(t *testing.T) {
	racetest.SkipAllocs(t)
	defer func(n int64) { maxUnzipBytes = n }(maxUnzipBytes)
	maxUnzipBytes = 4 << 20
	data := bomb(t, 8, []byte("heap_v2/1\n"))
	var err error
	n := allocated(func() { _, err = Parse("big.heap.gz", data) })
	if err == nil || !strings.Contains(err.Error(), "decompresses to more than 4194304 bytes") {
		t.Errorf("Parse(big) = %v, want the limit", err)
	}
	if n > 32<<20 {
		t.Errorf("Parse(big) allocated %d MiB, want at most 32", n>>20)
	}
}

// TestOtherLegacyNamed: a legacy profile of another kind is still named,
// gzipped or not, though only data that looks legacy is parsed twice.
func TestOtherLegacyNamed(t *testing.T) {
	contention := []byte("--- contention:\ncycles/second=1000000000\n100 2 @ 0x10 0x20\n")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(append(contention, bytes.Repeat([]byte("# padding past the sniffed head\n"), 64)...))
	zw.Close()
	for name, data := range map[string][]byte{"contention.txt": contention, "contention.txt.gz": gz.Bytes()} {
		_, err := Parse(name, data)
		if err == nil || !strings.Contains(err.Error(), "not a heap profile: its sample types are contentions/count, delay/nanoseconds") {
			t.Errorf("Parse(%s) = %v", name, err)
		}
	}
}
