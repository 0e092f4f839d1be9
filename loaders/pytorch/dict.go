package pytorch

import (
	"fmt"
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

// dictIndex finds the entries of a large dict by key.
type dictIndex struct {
	index    map[any]int
	strIndex map[string]int
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
		if _, dup := d.idx.strIndex[ks]; dup {
			return repeatedKey(k)
		}
		d.idx.strIndex[ks] = len(d.entries)
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
				d.idx = &dictIndex{index: make(map[any]int), strIndex: make(map[string]int, 4*smallDict)}
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
		d.idx.strIndex[ks] = i
	} else if hk, ok := hashKey(k); ok {
		d.idx.index[hk] = i
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
