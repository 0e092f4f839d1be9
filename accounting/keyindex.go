package accounting

import (
	"slices"
	"sort"
)

// KeyIndex numbers strings in the order they are added, like a
// map[string]int, for keys that mostly come in ascending runs: the tensor
// names of a safetensors file (its writer sorts them, by dtype then name),
// the modules of sorted names, or names numbered 0, 1, ... 9, 10, ... 99,
// 100 (one run per digit count). It keeps the keys as ascending runs and
// finds a key by walking one cursor a run, so a lookup costs a string
// comparison or two a run and no hashing. At 100,000 keys a presized map
// cost 200-250 ns an insert on this project's 2-core machine, a cache
// miss each, and was a sixth of a whole audit (issue 11). Keys in no order
// make many runs: past maxKeyRuns the index moves them to a map.
//
// The zero KeyIndex is empty and ready to use. Keys are kept, not copied.
type KeyIndex struct {
	keys []string
	// runs are the start of each ascending run in keys; cur is each run's
	// cursor: the run's keys before it are below the last key looked up.
	runs, cur []int
	last      string // the last key looked up
	m         map[string]int
}

// maxKeyRuns is how many ascending runs a KeyIndex walks before it hashes:
// a lookup walks every run.
const maxKeyRuns = 16

// Grow makes room for n more keys.
func (x *KeyIndex) Grow(n int) { x.keys = slices.Grow(x.keys, n) }

// fewKeys is how many keys a KeyIndex compares one by one: a few keys
// (the dtypes of a model) may alternate from tensor to tensor, which would
// seat the cursors again at every lookup.
const fewKeys = 8

// Len is the number of keys.
func (x *KeyIndex) Len() int { return len(x.keys) }

// Index is the number of key, if it was added.
func (x *KeyIndex) Index(key string) (int, bool) {
	if x.m != nil {
		i, ok := x.m[key]
		return i, ok
	}
	if len(x.keys) <= fewKeys { // dtypes, roles: no order to keep
		for i, k := range x.keys {
			if k == key {
				return i, true
			}
		}
		return 0, false
	}
	if key < x.last { // the cursors only move up: seat them again
		for r := range x.runs {
			lo, hi := x.run(r)
			x.cur[r] = lo + sort.SearchStrings(x.keys[lo:hi], key)
		}
	}
	x.last = key
	for r := range x.runs {
		_, hi := x.run(r)
		c := x.cur[r]
		for c < hi && x.keys[c] < key {
			c++
		}
		x.cur[r] = c
		if c < hi && x.keys[c] == key {
			return c, true
		}
	}
	return 0, false
}

// Add adds key, which must not be in the index, and returns its number.
func (x *KeyIndex) Add(key string) int {
	i := len(x.keys)
	x.keys = append(x.keys, key)
	if x.m != nil {
		x.m[key] = i
		return i
	}
	if i > 0 && key > x.keys[i-1] {
		return i // the last run goes on; its cursor stays valid
	}
	if len(x.runs) == maxKeyRuns {
		x.m = make(map[string]int, 2*len(x.keys))
		for j, k := range x.keys {
			x.m[k] = j
		}
		x.runs, x.cur = nil, nil
		return i
	}
	x.runs = append(x.runs, i)
	x.cur = append(x.cur, i)
	return i
}

// run is the span of keys of run r.
func (x *KeyIndex) run(r int) (lo, hi int) {
	lo, hi = x.runs[r], len(x.keys)
	if r+1 < len(x.runs) {
		hi = x.runs[r+1]
	}
	return lo, hi
}
