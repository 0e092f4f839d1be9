package pytorch

import (
	"bytes"
	"encoding/binary"
	"strconv"
)

// memo is the pickle's memo: dense keys (what every pickler writes: 0, 1,
// 2, ...) in a slice, others in a map.
//
// torch.save memoizes every value it pickles, 8 per tensor of a
// state_dict, and reads back only the few it pickles again (the classes,
// 'storage', 'cpu', a tied weight): kept, the memo held every tensor's
// persistent id and argument tuples alive to the end of the pickle, and
// its slice took 16 bytes per key. Before the machine runs, init walks the
// pickle's opcodes for the keys a GET reads (fetched); a value put under a
// key no GET reads is counted as defined, as Python does, and dropped.
// Measured on torch.save files (bench/pytorch): 1,468 -> 1,306 bytes
// allocated per tensor; 100,000 tensors, whole process, CPU 858 -> 716 ms
// and peak RSS 194 -> 166 MiB (the collector, from 64 MiB on, finds the
// dropped values dead). The walk is about 700 instructions per tensor.
type memo struct {
	// dense holds keys 0 to len(dense)-1; memoHole where the key is
	// defined but its value dropped.
	dense []any
	// next is the next key in sequence: keys len(dense) to next-1 are
	// defined and dropped.
	next   int64
	sparse map[int64]any
	n      int // entries defined
	// fetched has bit k set for each key k below maxMemo that the pickle
	// reads, when walked; keys from maxMemo on count as read. Unless
	// walked (a pickle read piecewise, or one init could not walk), every
	// value is kept.
	fetched []uint64
	walked  bool
}

// memoHole marks a key of the dense memo whose value is dropped.
var memoHole any = new(struct{ _ byte })

// init prepares the memo for the pickle at the start of b. A memo without
// init (a pickle read piecewise: a legacy file's) keeps every value.
func (m *memo) init(b []byte) {
	m.fetched, m.walked = fetchedKeys(b)
	if !m.walked {
		// torch.save memoizes about one value per 15 bytes of pickle; a
		// memo sized for that from the start is not copied as it grows.
		m.dense = make([]any, 0, min(len(b)/12, maxMemo))
		return
	}
	// Room for the keys read back, as many as the pickle can define (a
	// BINPUT takes 2 bytes): a GET of a large key is no reason to
	// allocate.
	m.dense = make([]any, 0, min(64*len(m.fetched), len(b)/2))
}

// keep reports whether the value of key k is kept.
func (m *memo) keep(k int64) bool {
	if !m.walked || k >= maxMemo {
		return true
	}
	i := int(k / 64)
	return i < len(m.fetched) && m.fetched[i]&(1<<(k%64)) != 0
}

// putNext defines key next with v.
func (m *memo) putNext(v any) {
	k := m.next
	m.next++
	m.n++
	if m.walked {
		if !m.keep(k) {
			return
		}
		for int64(len(m.dense)) < k {
			m.dense = append(m.dense, memoHole)
		}
	}
	m.dense = append(m.dense, v)
}

// defined reports whether key k has been put.
func (m *memo) defined(k int64) bool {
	if k < m.next {
		return true
	}
	_, ok := m.sparse[k]
	return ok
}

func (m *memo) get(k int64) (any, bool) {
	if k < int64(len(m.dense)) {
		v := m.dense[k]
		return v, v != memoHole
	}
	v, ok := m.sparse[k]
	return v, ok
}

// put stores v under k.
func (m *memo) put(k int64, v any) {
	switch {
	case k < int64(len(m.dense)):
		if m.dense[k] != memoHole {
			m.dense[k] = v
		}
		return
	case k < m.next:
		return // defined, dropped: no GET reads it
	case k == m.next && len(m.sparse) == 0:
		m.putNext(v)
		return
	}
	if m.sparse == nil {
		m.sparse = map[int64]any{}
	}
	if _, had := m.sparse[k]; !had {
		m.n++
	}
	m.sparse[k] = v
}

// fetchedKeys walks the opcodes of the pickle at the start of b, as the
// machine reads them, and returns the memo keys below maxMemo that GET,
// BINGET and LONG_BINGET read, as a bitset. ok is false when b does not
// hold a whole pickle of known opcodes: the machine then keeps every value
// and fails where it fails. Nothing is checked here but the lengths of
// arguments. Most opcodes take a fixed argument, found in a table: the
// walk costs about 10 instructions per opcode.
func fetchedKeys(b []byte) (fetched []uint64, ok bool) {
	set := func(k uint64) {
		if k >= maxMemo {
			return
		}
		for uint64(len(fetched)) <= k/64 {
			fetched = append(fetched, 0)
		}
		fetched[k/64] |= 1 << (k % 64)
	}
	for p := 0; p < len(b); {
		op := b[p]
		p++
		a := opArgs[op]
		if a > 0 {
			p += int(a) - 1
			continue
		}
		n := 0 // argument bytes after p
		switch a {
		case argStop:
			return fetched, p <= len(b)
		case argGet1:
			if p >= len(b) {
				return nil, false
			}
			set(uint64(b[p]))
			n = 1
		case argGet4:
			if p+4 > len(b) {
				return nil, false
			}
			set(uint64(binary.LittleEndian.Uint32(b[p:])))
			n = 4
		case argLine, argGetLine:
			i := bytes.IndexByte(b[p:], '\n')
			if i < 0 {
				return nil, false
			}
			if a == argGetLine {
				// As memoKey parses it; a bad key fails in the machine.
				if k, err := strconv.ParseInt(string(b[p:p+i]), 10, 64); err == nil && k >= 0 {
					set(uint64(k))
				}
			}
			n = i + 1
		case argLines2:
			i := bytes.IndexByte(b[p:], '\n')
			if i < 0 {
				return nil, false
			}
			j := bytes.IndexByte(b[p+i+1:], '\n')
			if j < 0 {
				return nil, false
			}
			n = i + 1 + j + 1
		case argCount1:
			if p >= len(b) {
				return nil, false
			}
			n = 1 + int(b[p])
		case argCount4, argCount4Signed:
			if p+4 > len(b) {
				return nil, false
			}
			l := int64(binary.LittleEndian.Uint32(b[p:]))
			if a == argCount4Signed {
				l = int64(int32(l))
			}
			if l < 0 || l > int64(len(b)) {
				return nil, false
			}
			n = 4 + int(l)
		case argCount8:
			if p+8 > len(b) {
				return nil, false
			}
			l := binary.LittleEndian.Uint64(b[p:])
			if l > uint64(len(b)) {
				return nil, false
			}
			n = 8 + int(l)
		default:
			return nil, false
		}
		if n > len(b)-p {
			return nil, false
		}
		p += n
	}
	return nil, false
}

// opArgs is the argument of each opcode as fetchedKeys walks it: 1 plus
// the bytes of a fixed argument, or one of the kinds below; 0 for a byte
// that is no opcode the machine runs. An array, laid out by the linker.
const (
	argStop int8 = -1 - iota
	argGet1
	argGet4
	argLine
	argGetLine
	argLines2
	argCount1
	argCount4
	argCount4Signed
	argCount8
)

var opArgs = [256]int8{
	// No argument.
	'(': 1, '0': 1, '1': 1, '2': 1, 'N': 1, 0x88: 1, 0x89: 1, ')': 1, ']': 1, '}': 1, 0x8f: 1,
	'l': 1, 't': 1, 0x91: 1, 'd': 1, 0x85: 1, 0x86: 1, 0x87: 1, 'a': 1, 's': 1, 'e': 1, 'u': 1,
	0x90: 1, 0x94: 1, 'o': 1, 0x93: 1, 'R': 1, 0x81: 1, 0x92: 1, 'b': 1, 'Q': 1, 0x98: 1,
	// Fixed arguments.
	'K': 2, 'q': 2, 0x80: 2, 'M': 3, 'J': 5, 'r': 5, 'G': 9, 0x95: 9,
	'.': argStop, 'h': argGet1, 'j': argGet4,
	'I': argLine, 'L': argLine, 'F': argLine, 'S': argLine, 'V': argLine, 'p': argLine, 'P': argLine,
	'g': argGetLine, 'c': argLines2, 'i': argLines2,
	'U': argCount1, 0x8c: argCount1, 'C': argCount1, 0x8a: argCount1,
	'X': argCount4, 'B': argCount4, 'T': argCount4Signed, 0x8b: argCount4Signed,
	0x8d: argCount8, 0x8e: argCount8, 0x96: argCount8,
}
