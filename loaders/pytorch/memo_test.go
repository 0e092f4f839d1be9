package pytorch

import (
	"bytes"
	"testing"
)

// TestMemoDropped checks that values dropped from the memo (no GET reads
// them) still count as defined: MEMOIZE's keys, and a PUT of a key again,
// are as in Python.
func TestMemoDropped(t *testing.T) {
	pkl := []byte{0x80, 4,
		'K', 7, 0x94, '0', // key 0, dropped
		'K', 8, 0x94, '0', // key 1, dropped
		'K', 9, 0x94, '0', // key 2
		'K', 10, 'q', 0, '0', // key 0 again: the memo still holds 3 keys
		'K', 11, 0x94, '0', // key 3
		'(', 'h', 2, 'h', 3, 't', '.'}
	in := newPickleInput(bytes.NewReader(pkl), int64(len(pkl)))
	v, err := runPickle(in, &unpickler{})
	if err != nil {
		t.Fatal(err)
	}
	if got := keyString(v); got != "(9, 11)" {
		t.Errorf("got %s, want (9, 11)", got)
	}
	var m memo
	m.init(pkl)
	if !m.walked || m.keep(0) || m.keep(1) || !m.keep(2) || !m.keep(3) || m.keep(4) {
		t.Errorf("walked %v, fetched %b", m.walked, m.fetched)
	}
	// A pickle the walk cannot follow keeps every value.
	m = memo{}
	m.init([]byte{0x80, 4, 'K'})
	if m.walked || !m.keep(0) {
		t.Errorf("truncated pickle: walked %v", m.walked)
	}
}

// TestPassTuple loads two tensors on one persistent id tuple, memoized
// (key 0): read back, the tuple is built and kept; not read back, it is
// handed to BINPERSID unbuilt.
func TestPassTuple(t *testing.T) {
	for _, shared := range []bool{true, false} {
		pkl := newPickle().raw('}', '(').str("a")
		pkl.tensorOn(func(p *pb) {
			p.mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").int(4).tuple().raw('q', 0, 'Q')
		}, 0, []int{4}, []int{1})
		pkl.str("b")
		pkl.tensorOn(func(p *pb) {
			if shared {
				p.raw('h', 0, 'Q')
			} else {
				p.mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").int(4).tuple().raw('q', 1, 'Q')
			}
		}, 0, []int{2}, []int{2})
		m, err := loadBytes(checkpoint(t, pkl.raw('u').stop(), map[string]int{"0": 16}))
		if err != nil {
			t.Fatalf("shared %v: %v", shared, err)
		}
		if len(m.Tensors) != 2 || m.Tensors[0].Storage != "data/0" || m.Tensors[1].Storage != "data/0" || m.Tensors[1].Strides[0] != 2 {
			t.Errorf("shared %v: tensors %+v", shared, m.Tensors)
		}
	}
}

// TestSealedOrderedDict checks that only an OrderedDict() put straight
// into a tuple is the shared empty one.
func TestSealedOrderedDict(t *testing.T) {
	// (OrderedDict(),) then OrderedDict() memoized, read back and set.
	p := newPickle().mark().odict().raw('q', 0, 't').odict().raw('q', 1, '0', 'h', 1, 'K', 1, 'K', 2, 's', 0x86, '.').b.Bytes()
	in := newPickleInput(bytes.NewReader(p), int64(len(p)))
	v, err := runPickle(in, &unpickler{})
	if err != nil {
		t.Fatal(err)
	}
	items, _ := sequence(v)
	first, _ := sequence(items[0])
	if first[0] != emptyOrderedDict || items[1] == emptyOrderedDict {
		t.Errorf("sealed %v, set %v", first[0] == emptyOrderedDict, items[1] != emptyOrderedDict)
	}
	if d := items[1].(*pyDict); len(d.entries) != 1 || len(emptyOrderedDict.entries) != 0 {
		t.Errorf("entries %v, shared %v", d.entries, emptyOrderedDict.entries)
	}
}
