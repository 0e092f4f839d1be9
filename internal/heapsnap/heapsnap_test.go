package heapsnap

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"testing"

	"github.com/google/pprof/profile"
)

var kept [][]byte

//go:noinline
func allocHere(n int) []byte { return make([]byte, n) }

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
