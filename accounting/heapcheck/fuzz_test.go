package heapcheck

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// Fuzzing: go test ./accounting/heapcheck -fuzz=FuzzJemalloc (or
// FuzzLegacy, FuzzParse). Inputs that once crashed a reader are kept in
// testdata/fuzz and run with the ordinary tests.

// seeds adds the small hand-made profiles and the heads of the real ones.
func seeds(f *testing.F, prefix string) {
	f.Add([]byte(jeSmall))
	f.Add([]byte("heap_v2/1\n  t*: 1: 8 [4: 32]\n@ 0x10\n  t*: 1: 8 [4: 32]\n  t3: 1: 8 [4: 32]\nMAPPED_LIBRARIES:\n00400000-00401000 r-xp 00000000 fe:00 1 /bin/x\n"))
	f.Add([]byte("heap profile: 2: 300 [ 3: 400] @ heapprofile\n     1:  200 [ 2: 300] @ 0x10 0x20\n     1:  100 [ 1: 100] @ 0x30\n\nMAPPED_LIBRARIES:\n00400000-00401000 r-xp 00000000 fe:00 1 /bin/x\n"))
	f.Add([]byte("heap profile: 1: 524288 [ 1: 524288] @ heap_v2/524288\n 1: 524288 [ 1: 524288] @ 0x10\nMAPPED_LIBRARIES:\n"))
	f.Add([]byte("heap profile: 1: 8 [ 1: 8] @ heap/1048576\n1: 8 [1: 8] @ 0x10\n# 0x10 main.f+0x1 x.go:1\n"))
	matches, _ := filepath.Glob(filepath.Join(fixtures, prefix+"*.heap.gz"))
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			f.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			f.Fatal(err)
		}
		var plain bytes.Buffer
		if _, err := plain.ReadFrom(zr); err != nil {
			f.Fatal(err)
		}
		f.Add(excerpt(plain.Bytes()))
	}
}

// excerpt keeps a real profile small enough to fuzz quickly: its first
// lines, then the start of its memory map.
func excerpt(b []byte) []byte {
	const stackLines, mapLines = 12, 4
	lines := bytes.SplitAfter(b, []byte("\n"))
	var out []byte
	maps := -1
	for i, l := range lines {
		switch {
		case bytes.HasPrefix(l, []byte("MAPPED_LIBRARIES:")):
			maps = i
		case maps < 0 && i >= stackLines, maps >= 0 && i > maps+mapLines:
			continue
		}
		out = append(out, l...)
	}
	return out
}

// check runs what crosscheck runs on a parsed profile.
func check(t *testing.T, p *Profile) {
	if err := p.P.CheckValid(); err != nil {
		t.Fatalf("accepted an invalid profile: %v", err)
	}
	m, err := Measure(p, nil, regexp.MustCompile("lib"))
	if err != nil {
		t.Fatal(err)
	}
	if m.SigmaBytes < 0 {
		t.Fatalf("negative sigma %d", m.SigmaBytes)
	}
	if _, err := Measure(p, p, nil); err != nil {
		t.Fatal(err)
	}
}

func FuzzJemalloc(f *testing.F) {
	seeds(f, "jemalloc")
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseJemalloc(data)
		if err != nil {
			return
		}
		p.Path = "fuzz"
		if err := p.selectTypes(); err != nil {
			t.Fatalf("jemalloc profile without inuse_space: %v", err)
		}
		p.notice()
		check(t, p)
	})
}

func FuzzLegacy(f *testing.F) {
	seeds(f, "tcmalloc")
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseLegacy(data)
		if err != nil {
			return
		}
		p.Path = "fuzz"
		if p.selectTypes() != nil {
			return
		}
		p.notice()
		check(t, p)
	})
}

// FuzzParse runs the whole entry point: format detection, gzip, proto.
func FuzzParse(f *testing.F) {
	seeds(f, "")
	for _, name := range []string{"go-exact-after-import.pb.gz", "go-sampled-after-load.pb.gz"} {
		b, err := os.ReadFile(filepath.Join(fixtures, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz", data)
		if err != nil {
			return
		}
		check(t, p)
	})
}
