package remote

import (
	"strings"
	"testing"
)

// FuzzParse: any string parses or fails without a panic; a Hub source
// names ORG/REPO and a path that stay inside the repo.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"hf://org/m", "hf://org/m@v1/a/b.gguf", "https://huggingface.co/o/m/blob/main/x",
		"https://huggingface.co/o/m/resolve/r%2Fx/..%2F..%2Fetc", "hf://o/m@%zz", "http://h/x.pt?sig=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := Parse(raw, "")
		if err != nil || !s.IsHub() {
			return
		}
		if strings.Count(s.Repo, "/") != 1 || s.Revision == "" {
			t.Fatalf("%q: %+v", raw, s)
		}
		for _, seg := range strings.Split(s.Repo+"/"+s.Path, "/") {
			if seg == ".." {
				t.Fatalf("%q: path leaves the repo: %+v", raw, s)
			}
		}
	})
}

// FuzzCacheEntry: a damaged cache entry is refused or gives segments
// inside the file, sorted and disjoint.
func FuzzCacheEntry(f *testing.F) {
	key := cacheKey("https://huggingface.co", "o/m", strings.Repeat("a", 40), "m.safetensors", "e")
	good := []byte(cacheMagic + key + "\n")
	good = append(good, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c')
	f.Add(good, int64(100))
	f.Add(good[:len(good)-1], int64(2))
	f.Fuzz(func(t *testing.T, data []byte, size int64) {
		if size < 0 {
			return
		}
		segs, ok := decodeEntry(data, key, size)
		if !ok {
			return
		}
		var last int64 = -1
		for _, s := range segs {
			if s.off <= last || len(s.data) == 0 || s.end() > size {
				t.Fatalf("segments %v for size %d", segs, size)
			}
			last = s.end()
		}
	})
}

// FuzzContentRange: a parsed range lies inside its total.
func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-99/100", "bytes 5-5/6", "bytes */100", "bytes 9-1/10", "bytes -1-3/4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		a, b, total, err := parseContentRange(v)
		if err == nil && (a < 0 || b < a || b >= total) {
			t.Fatalf("%q: %d-%d/%d", v, a, b, total)
		}
	})
}
