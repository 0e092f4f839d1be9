package heapsnap

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/qinsaudit/qinsaudit/internal/racetest"
)

var kept [][]byte

//go:noinline
func allocHere(n int) []byte { return make([]byte, n) }

// allocDeep allocates at the site under depth more frames.
//
//go:noinline
func allocDeep(depth int) []byte {
	if depth == 0 {
		return allocHere(64)
	}
	return allocDeep(depth - 1)
}

func site(fn string) (string, bool) {
	if fn == runtime.FuncForPC(reflect.ValueOf(allocHere).Pointer()).Name() {
		return "here", true
	}
	return "", false
}

// TestTakeIsExact allocates known sizes at a known site and finds them in
// the profile to the byte: size-class rounding below 32 KiB, whole pages
// above.
func TestTakeIsExact(t *testing.T) {
	defer Exact()()
	dir := t.TempDir()
	r := &Recorder{Dir: dir, Site: site}
	kept = [][]byte{allocHere(100), allocHere(5000), allocHere(100000)}
	want := int64(0)
	for _, b := range kept {
		want += int64(cap(slices.Grow([]byte(nil), len(b))))
	}
	by, err := r.Take("after alloc")
	if err != nil {
		t.Fatal(err)
	}
	if by["here"] != want || want != 112+5376+106496 {
		t.Errorf("in use at site: %d, want %d (slots of 100, 5000, 100000 bytes)", by["here"], want)
	}
	kept = nil
	by, err = r.Take("end")
	if err != nil {
		t.Fatal(err)
	}
	if by["here"] != 0 {
		t.Errorf("after release: %d bytes in use at site", by["here"])
	}
	if len(r.Files) != 2 || filepath.Base(r.Files[0]) != "01-after-alloc.pb.gz" {
		t.Fatalf("files %v", r.Files)
	}
	f, err := os.Open(r.Files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("written profile does not parse: %v", err)
	}
	inFile, total, err := Attribute(p, site)
	if err != nil {
		t.Fatal(err)
	}
	if inFile["here"] != want || total < want {
		t.Errorf("the written profile has %d bytes at the site (of %d in use), Take said %d", inFile["here"], total, want)
	}
}

func TestAttributeNeedsInUse(t *testing.T) {
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}}}
	_, _, err := Attribute(p, site)
	if err == nil || err.Error() != "heap profile has no inuse_space/bytes sample (have: cpu/nanoseconds)" {
		t.Errorf("error %v", err)
	}
}

// TestTakeReuses: a phase after the first reuses the records' buffer and
// the sites found for each PC, so it allocates little beyond the map it
// returns.
func TestTakeReuses(t *testing.T) {
	racetest.SkipAllocs(t)
	defer Exact()()
	r := &Recorder{Site: site}
	kept = nil
	for depth := range 30 { // 30 stacks: 30 records
		kept = append(kept, allocDeep(depth))
	}
	if _, err := r.Take("first"); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(3, func() {
		if _, err := r.Take("again"); err != nil {
			t.Fatal(err)
		}
	})
	kept = nil
	if allocs > 10 {
		t.Errorf("a later phase allocates %.0f times", allocs)
	}
}

// Attribute sums the in-use bytes of p by site: each sample goes to the
// first function of its stack, leaf first and inlined frames included, that
// site knows. total is every in-use byte of the profile, attributed or not.
// It attributes a written profile as Take attributes the records.
func Attribute(p *profile.Profile, site func(string) (string, bool)) (by map[string]int64, total int64, err error) {
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "inuse_space" && st.Unit == "bytes" {
			idx = i
		}
	}
	if idx < 0 {
		var have []string
		for _, st := range p.SampleType {
			have = append(have, st.Type+"/"+st.Unit)
		}
		return nil, 0, fmt.Errorf("heap profile has no inuse_space/bytes sample (have: %s)", strings.Join(have, ", "))
	}
	by = map[string]int64{}
	for _, s := range p.Sample {
		v := s.Value[idx]
		total += v
	sample:
		for _, loc := range s.Location {
			for _, line := range loc.Line {
				if line.Function == nil {
					continue
				}
				if key, ok := site(line.Function.Name); ok {
					by[key] += v
					break sample
				}
			}
		}
	}
	return by, total, nil
}
