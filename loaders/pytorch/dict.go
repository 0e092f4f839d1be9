package pytorch

import (
	"fmt"
	"hash/maphash"
	"math/big"

	"github.com/nlpodyssey/gopickle/types"
)

// pyDict is a dict or OrderedDict built by the machine: its items in
// insertion order, and the attributes a BUILD sets on it (state_dict's
// _metadata).
type pyDict struct {
	entries []entry
	// idx finds an entry by key once the dict holds more than smallDict
	// entries; smaller dicts are searched in order.
	idx     *dictIndex
	attrs   map[string]any
	ordered bool
}

// dictIndex tells a new key of a large dict from a repeated one.
type dictIndex struct {
	index map[any]int
	strs  strSet // the str keys, which a state_dict has by the thousand
}

const smallDict = 8

// bytesKey and bigKey stand for bytes and big int keys in an index (a Go
// slice cannot be a map key; two *big.Int are equal by value).
type (
	bytesKey string
	bigKey   string
)

// hashKey returns the comparable form of a dict key, false for key types
// whose equality this reader does not decide (tuples, objects): those are
// never reported as repeated.
func hashKey(k any) (any, bool) {
	switch x := k.(type) {
	case nil, string, int, bool, float64:
		return x, true
	case []byte:
		return bytesKey(x), true
	case *big.Int:
		return bigKey(x.String()), true
	}
	return nil, false
}

// set adds a key/value pair. A pickle that sets one key twice is refused:
// Python would keep the last value silently, so the two disagree on what
// the file holds.
func (d *pyDict) set(k, v any) error {
	if ks, ok := k.(string); ok && d.idx != nil {
		if d.idx.strs.add(ks) && d.hasStr(ks) {
			return repeatedKey(k)
		}
	} else if hk, ok := hashKey(k); ok {
		if d.idx != nil {
			if _, dup := d.idx.index[hk]; dup {
				return repeatedKey(k)
			}
			d.idx.index[hk] = len(d.entries)
		} else {
			for _, e := range d.entries {
				if ek, ok := hashKey(e.key); ok && ek == hk {
					return repeatedKey(k)
				}
			}
			if len(d.entries) == smallDict {
				d.idx = &dictIndex{index: make(map[any]int)}
				for i, e := range d.entries {
					d.addIndex(e.key, i)
				}
				d.addIndex(k, len(d.entries))
			}
		}
	}
	d.entries = append(d.entries, entry{k, v})
	return nil
}

// addIndex indexes the entry i of key k.
func (d *pyDict) addIndex(k any, i int) {
	if ks, ok := k.(string); ok {
		d.idx.strs.add(ks)
	} else if hk, ok := hashKey(k); ok {
		d.idx.index[hk] = i
	}
}

// hasStr reports whether the str key k is in d.
func (d *pyDict) hasStr(k string) bool {
	for _, e := range d.entries {
		if s, ok := e.key.(string); ok && s == k {
			return true
		}
	}
	return false
}

// strSet holds the hashes of a set of strings, to tell a new one from one
// that may have been added before: the dict checks the second case (a
// repeated key, or a collision of 64-bit hashes under a random seed) by
// its entries. Measured on a 100,000-tensor state_dict, the map of keys
// it replaces took 4% of a whole audit (perf); this table's slots are 8
// bytes, at least half of them empty.
type strSet struct {
	seed  maphash.Seed
	slots []uint64 // hashes, with bit 0 set; 0 is an empty slot
	n     int
}

// add adds s and reports whether its hash was there already.
func (t *strSet) add(s string) bool {
	if t.slots == nil {
		t.seed, t.slots = maphash.MakeSeed(), make([]uint64, 4*smallDict)
	}
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	h := maphash.String(t.seed, s) | 1
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch t.slots[i] {
		case 0:
			t.slots[i] = h
			t.n++
			return false
		case h:
			return true
		}
	}
}

func (t *strSet) grow() { t.resize(2 * len(t.slots)) }

// reserve makes room for n strings without growing again.
func (t *strSet) reserve(n int) {
	size := len(t.slots)
	for size < 2*n {
		size *= 2
	}
	if t.slots != nil && size > len(t.slots) {
		t.resize(size)
	}
}

// resize rehashes the set into size slots, a power of two.
func (t *strSet) resize(size int) {
	old := t.slots
	t.slots = make([]uint64, size)
	mask := uint64(len(t.slots) - 1)
	for _, h := range old {
		if h == 0 {
			continue
		}
		i := h & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = h
	}
}

func repeatedKey(k any) error {
	return fmt.Errorf("dict key %q set twice (Python keeps the last value: the file says two things)", clip(keyString(k)))
}

// build applies a BUILD state to inst as Python's default __setstate__
// would: a stand-in with its own PySetState takes it whole; a dict takes
// the attributes of a state dict (or of the first of a (dict, slots) pair).
func build(inst, state any) error {
	if s, ok := inst.(interface{ PySetState(any) error }); ok {
		return s.PySetState(state)
	}
	var slots any
	if t, ok := state.(*types.Tuple); ok && t.Len() == 2 {
		state, slots = t.Get(0), t.Get(1)
	}
	if sd, ok := state.(*pyDict); ok {
		d, ok := inst.(*pyDict)
		if !ok {
			return fmt.Errorf("BUILD of attributes on %s", typeName(inst))
		}
		for _, e := range sd.entries {
			k, ok := e.key.(string)
			if !ok {
				return fmt.Errorf("BUILD: attribute name is %s, not a str", typeName(e.key))
			}
			if d.attrs == nil {
				d.attrs = map[string]any{}
			}
			d.attrs[k] = e.value
		}
	}
	if _, ok := slots.(*pyDict); ok {
		return fmt.Errorf("BUILD of slot attributes on %s", typeName(inst))
	}
	return nil
}
