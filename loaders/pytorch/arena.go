package pytorch

import (
	"slices"
	"unsafe"
)

// arena hands out the values a pickle builds for every tensor (its
// tensor, the empty OrderedDict of its backward hooks, its persistent id
// and argument tuples, its storage and the reference to it) from blocks of
// up to arenaBlock bytes, one allocation per block rather than per value. torch.save
// memoizes every one of them, so they all live until the pickle is read
// anyway and a block is never kept alive by a few values long after the
// others; nothing of them outlives the load (the namer copies what the
// model keeps). Measured on a 10,000-tensor torch.save file, these
// values (with the strings machine.str no longer copies) were 7 of the 16
// allocations per tensor. An
// unused block holds at most arenaBlock bytes: a constant per pickle.
type arena struct {
	tensors  []tensor
	dicts    []pyDict
	box2     []tupleBox2
	box4     []tupleBox4
	box6     []tupleBox6
	storages []storageBox
	ints     []int64
	// dimsBuf is where a tensor's shape and stride are read; recent, the
	// last few kept (see dims).
	dimsBuf [2 * maxArenaDims]int64
	recent  [4][]int64
	next    int
	strs    stringBlock // the pickle's strings (see machine.str)
}

// storageBox is a storage and the one reference a zip archive's
// persistent id makes to it.
type storageBox struct {
	s   storage
	ref storageRef
}

// arenaBlock is the most bytes of one block: the collector scans objects
// of up to 512 bytes span by span, larger ones pointer by pointer, which
// measured on 100,000 tensors cost more than the allocations saved.
const arenaBlock = 512

// alloc returns a zero value from the block, refilling it when empty.
func alloc[T any](block *[]T) *T {
	if len(*block) == 0 {
		*block = make([]T, max(1, arenaBlock/int(unsafe.Sizeof(*new(T)))))
	}
	p := &(*block)[0]
	*block = (*block)[1:]
	return p
}

// int64s returns n zero int64s from a block of the arena's. A block holds
// no pointers: the tensors of the model share it for their shapes and
// strides without keeping any unpickled value alive.
func (a *arena) int64s(n int) []int64 {
	if n > len(a.ints) {
		a.ints = make([]int64, max(n, int64sBlock))
	}
	s := a.ints[:n:n]
	a.ints = a.ints[n:]
	return s
}

// dims returns the shape and stride d (read into dimsBuf) as kept for a
// tensor: a recent tensor's when equal, as most tensors of a model share
// a few shapes (nothing changes them once read), else a copy from a block.
func (a *arena) dims(d []int64) []int64 {
	for _, r := range a.recent {
		if slices.Equal(r, d) && r != nil {
			return r
		}
	}
	k := a.int64s(len(d))
	copy(k, d)
	a.recent[a.next] = k
	a.next = (a.next + 1) % len(a.recent)
	return k
}

// int64sBlock is the int64s of one block; maxArenaDims, the most
// dimensions of a tensor whose shape and stride are taken from one.
const (
	int64sBlock  = 512
	maxArenaDims = 16
)

// stringBlock copies strings into shared blocks of bytes: a pickle's
// strings, the storage keys the model keeps. A block holds no pointers, so
// the collector never scans it.
type stringBlock struct{ b []byte }

// stringBlockSize is the bytes of one block.
const stringBlockSize = 4096

// concat returns a+b, in a block.
func (s *stringBlock) concat(a, b string) string {
	n := len(a) + len(b)
	if n == 0 {
		return ""
	}
	if n > cap(s.b)-len(s.b) {
		s.b = make([]byte, 0, max(n, stringBlockSize))
	}
	start := len(s.b)
	s.b = append(append(s.b, a...), b...)
	return unsafe.String(&s.b[start], n)
}
