package accounting

import (
	"fmt"
	"strings"
	"testing"
)

// checkKeyIndex adds keys as a grouper does (look up, add when absent) to a
// KeyIndex and to a map, and fails where they disagree.
func checkKeyIndex(t *testing.T, keys []string) {
	t.Helper()
	var x KeyIndex
	m := map[string]int{}
	for _, k := range keys {
		i, ok := x.Index(k)
		j, want := m[k]
		if ok != want || ok && i != j {
			t.Fatalf("Index(%q) = %d, %v; want %d, %v (keys %q)", k, i, ok, j, want, keys)
		}
		if !ok {
			m[k] = len(m)
			if i := x.Add(k); i != m[k] {
				t.Fatalf("Add(%q) = %d, want %d", k, i, m[k])
			}
		}
	}
	if x.Len() != len(m) {
		t.Fatalf("Len %d, want %d", x.Len(), len(m))
	}
	for k, j := range m { // every key, in no order: the cursors seat again
		if i, ok := x.Index(k); !ok || i != j {
			t.Fatalf("after: Index(%q) = %d, %v; want %d", k, i, ok, j)
		}
	}
	if _, ok := x.Index("\xff absent"); ok {
		t.Fatal("an absent key was found")
	}
}

func TestKeyIndex(t *testing.T) {
	numbered := func(n int, f string) []string {
		var s []string
		for i := range n {
			s = append(s, fmt.Sprintf(f, i))
		}
		return s
	}
	for name, keys := range map[string][]string{
		"empty":     {},
		"one":       {"a"},
		"sorted":    {"a", "b", "c", "d"},
		"repeats":   {"a", "a", "b", "a", "c", "b", "c"},
		"falling":   {"d", "c", "b", "a", "d", "a"},
		"numbered":  numbered(1200, "model.layers.%d.weight"),
		"two runs":  append(numbered(50, "norm.%03d"), numbered(50, "mlp.%03d")...),
		"interlace": append(numbered(60, "x.%03d.a"), numbered(60, "x.%03d.b")...),
		"no order":  strings.Fields("q k v o gate up down q k v o gate up down norm q k v o gate up down w1 w2 w3 w4 w5 w6 w7 w8 w9 z y x w v u t s r p n m l j i h g f e d c b a"),
	} {
		t.Run(name, func(t *testing.T) { checkKeyIndex(t, keys) })
	}
}

func FuzzKeyIndex(f *testing.F) {
	f.Add("a b c a b")
	f.Add("b a c a d b e")
	f.Add("z y x w v u t s r q p o n m l k j i h g f e d c b a z a")
	f.Fuzz(func(t *testing.T, s string) {
		keys := strings.Fields(s)
		if len(keys) > 200 {
			keys = keys[:200]
		}
		checkKeyIndex(t, keys)
	})
}

// BenchmarkKeyIndex adds 100,000 names numbered as a deep model's are, as
// a grouper does, to a KeyIndex and to the map it replaced.
//
//	go test -run '^$' -bench KeyIndex ./accounting
func BenchmarkKeyIndex(b *testing.B) {
	var keys []string
	for i := range 100_000 {
		keys = append(keys, fmt.Sprintf("model.layers.%d.mlp.proj_%d", i/8, i%8))
	}
	b.Run("KeyIndex", func(b *testing.B) {
		for b.Loop() {
			var x KeyIndex
			x.Grow(len(keys))
			for _, k := range keys {
				if _, ok := x.Index(k); !ok {
					x.Add(k)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(keys)), "ns/key")
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			m := make(map[string]int, len(keys))
			for _, k := range keys {
				if _, ok := m[k]; !ok {
					m[k] = len(m)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(keys)), "ns/key")
	})
}
