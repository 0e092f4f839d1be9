package gguf

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"slices"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/hugepage"
)

// parser reads one file. For errors, it knows which kv entry or tensor info
// it is reading: item is its index (-1 in the file header), tensors tells
// which of the two, and name is its key or name once read (nameOK).
type parser struct {
	r        *reader
	nTensors uint64
	item     int64
	tensors  bool
	name     []byte
	nameOK   bool
	// fieldByField turns off reader.tensorInfo, for the tests that compare
	// the two paths.
	fieldByField bool
}

// errorf returns a FormatError at off, naming the kv entry or tensor being
// read.
func (p *parser) errorf(off int64, msg string, args ...any) error {
	msg = fmt.Sprintf(msg, args...)
	tensor := ""
	switch {
	case p.item < 0:
	case p.tensors && p.nameOK:
		tensor = string(p.name)
	case p.tensors:
		msg = fmt.Sprintf("tensor info %d: %s", p.item, msg)
	case p.nameOK:
		msg = fmt.Sprintf("kv %d %q: %s", p.item, p.name, msg)
	default:
		msg = fmt.Sprintf("kv %d: %s", p.item, msg)
	}
	return accounting.Errorf(format, off, tensor, "%s", msg)
}

// short is the error of a read of what at off that the file ends before (or
// that failed).
func (p *parser) short(off int64, what string) error {
	if p.r.err != nil {
		return fmt.Errorf("gguf: reading %s at %#x: %w", what, off, p.r.err)
	}
	return p.errorf(off, "file ends in %s (%d bytes left)", what, p.r.size-off)
}

// uint reads what, an unsigned integer of 1, 2, 4 or 8 bytes.
func (p *parser) uint(what string, size int) (uint64, error) {
	off := p.r.pos()
	v, ok := p.r.uint(size)
	if !ok {
		return 0, p.short(off, what)
	}
	return v, nil
}

// u32 reads what, a u32.
func (p *parser) u32(what string) (uint32, error) {
	v, err := p.uint(what, 4)
	return uint32(v), err
}

// count reads a u64 count of items of at least minSize bytes each and checks
// that the rest of the file can hold them.
func (p *parser) count(what string, minSize int64) (uint64, error) {
	off := p.r.pos()
	n, err := p.uint(what, 8)
	if err != nil {
		return 0, err
	}
	if left := p.r.remaining(); n > uint64(left/minSize) {
		return 0, p.errorf(off, "%s %d exceeds remaining %d bytes", what, n, left)
	}
	return n, nil
}

func (p *parser) header(h *Header) error {
	p.item = -1
	b, ok := p.r.peek(4)
	if !ok {
		return p.short(0, "magic")
	}
	if string(b) != magic {
		return p.errorf(0, "bad magic %q, want %q", b, magic)
	}
	le, err := p.u32("version")
	if err != nil {
		return err
	}
	v, be := decodeVersion(le)
	p.r.be, h.BigEndian, h.Version = be, be, v
	if v != 2 && v != 3 {
		return p.errorf(4, "version %d is not supported (want 2 or 3)", v)
	}
	if p.nTensors, err = p.count("tensor_count", minTensorInfo); err != nil {
		return err
	}
	h.KVCount, err = p.count("kv_count", minKVBytes)
	return err
}

// decodeVersion takes the version field read as little-endian and returns
// the version and whether the file is big-endian, which version 3 allows.
// Versions are small, so a big-endian one read as little-endian has its low
// 16 bits zero.
func decodeVersion(le uint32) (version uint32, bigEndian bool) {
	if le&0xffff == 0 && le != 0 {
		return bits.ReverseBytes32(le), true
	}
	return le, false
}

// Metadata keys the reader keeps, by their index in keptKeys.
const (
	keyAlignment = iota
	keyArchitecture
	keyFileType
	keySplitNo
	keySplitCount
	keySplitTensors
)

var keptKeys = [...]string{
	keyAlignment:    "general.alignment",
	keyArchitecture: "general.architecture",
	keyFileType:     "general.file_type",
	keySplitNo:      "split.no",
	keySplitCount:   "split.count",
	keySplitTensors: "split.tensors.count",
}

func (p *parser) metadata(h *Header) error {
	var seen uint // bit k: keptKeys[k] was read
	for p.item = 0; uint64(p.item) < h.KVCount; p.item++ {
		p.nameOK = false
		off := p.r.pos()
		n, err := p.count("key length", 1)
		if err != nil {
			return err
		}
		if n > maxKeyLen {
			return p.errorf(off, "key length %d exceeds %d", n, maxKeyLen)
		}
		key, ok := p.r.peek(int(n))
		if !ok {
			return p.short(off+8, "key")
		}
		// Copied: skipping the value reuses the buffer.
		p.name = append(p.name[:0], key...)
		p.nameOK = true
		typOff := p.r.pos()
		typ, err := p.u32("value type")
		if err != nil {
			return err
		}
		k := slices.IndexFunc(keptKeys[:], func(k string) bool { return k == string(p.name) })
		if k < 0 {
			if err := p.skipValue(typ, typOff, 0); err != nil {
				return err
			}
			continue
		}
		if seen&(1<<k) != 0 {
			return p.errorf(off, "duplicate key")
		}
		seen |= 1 << k
		if err := p.keep(h, k, typ, typOff); err != nil {
			return err
		}
	}
	p.item, p.nameOK = -1, false
	return nil
}

// keep reads the value of kept key k into h. The keys the loader uses,
// general.alignment (the layout) and general.file_type (the file's label),
// must have the right type. The others are only reported in the Header: a
// value of another type, a negative count or an architecture longer than
// maxKeyLen is skipped and leaves the field as if the key were absent, like
// any key the reader does not know.
func (p *parser) keep(h *Header, k int, typ uint32, typOff int64) error {
	switch k {
	case keyAlignment:
		if typ != typeUint32 {
			return p.errorf(typOff, "type %s, want uint32", valueTypeName(typ))
		}
		off := p.r.pos()
		a, err := p.u32("value")
		if err != nil {
			return err
		}
		if a == 0 || a&(a-1) != 0 {
			return p.errorf(off, "alignment %d is not a power of two", a)
		}
		h.Alignment = int64(a)
		return nil
	case keyArchitecture:
		if typ != typeString {
			return p.skipValue(typ, typOff, 0)
		}
		var err error
		h.Architecture, err = p.str(maxKeyLen)
		return err
	}
	v, ok, err := p.integer(typ, typOff, k == keyFileType)
	if err != nil || !ok {
		return err
	}
	switch k {
	case keyFileType:
		h.FileType = v
	case keySplitNo:
		h.SplitNo = v
	case keySplitCount:
		h.SplitCount = v
	case keySplitTensors:
		h.SplitTensors = v
	}
	return nil
}

// str reads a string value; one longer than limit is skipped and read as
// "".
func (p *parser) str(limit uint64) (string, error) {
	off := p.r.pos()
	n, err := p.count("string length", 1)
	if err != nil {
		return "", err
	}
	if n > limit {
		p.r.skip(int64(n)) // count checked it against remaining
		return "", nil
	}
	b, ok := p.r.peek(int(n)) // limit <= maxKeyLen < bufSize
	if !ok {
		return "", p.short(off+8, "string")
	}
	return string(b), nil
}

// integer reads a value of any integer type as a non-negative int64. A value
// of another type, or a negative or too large one, is an error when strict;
// otherwise it is skipped and ok is false.
func (p *parser) integer(typ uint32, typOff int64, strict bool) (v int64, ok bool, err error) {
	signed := false
	switch typ {
	case typeInt8, typeInt16, typeInt32, typeInt64:
		signed = true
	case typeUint8, typeUint16, typeUint32, typeUint64:
	default:
		if strict {
			return 0, false, p.errorf(typOff, "type %s, want an integer", valueTypeName(typ))
		}
		return 0, false, p.skipValue(typ, typOff, 0)
	}
	off := p.r.pos()
	size := valueSizes[typ]
	u, err := p.uint("value", int(size))
	if err != nil {
		return 0, false, err
	}
	if signed && u>>(size*8-1) != 0 || u > math.MaxInt64 {
		if strict {
			return 0, false, p.errorf(off, "%s value is negative or too large", valueTypeName(typ))
		}
		return 0, false, nil
	}
	return int64(u), true, nil
}

// skipValue skips a value of type typ at the given depth of array nesting.
func (p *parser) skipValue(typ uint32, typOff int64, depth int) error {
	if typ >= numValueTypes {
		return p.errorf(typOff, "unknown value type %d", typ)
	}
	if size := valueSizes[typ]; size > 0 {
		if p.r.remaining() < size {
			return p.short(p.r.pos(), "value")
		}
		p.r.skip(size)
		return nil
	}
	if typ == typeString {
		return p.skipStrings(1)
	}
	if depth >= maxArrayDepth {
		return p.errorf(typOff, "arrays nested deeper than %d", maxArrayDepth)
	}
	elemOff := p.r.pos()
	elem, err := p.u32("array type")
	if err != nil {
		return err
	}
	if elem >= numValueTypes {
		return p.errorf(elemOff, "unknown array type %d", elem)
	}
	minSize := valueSizes[elem]
	switch elem {
	case typeString:
		minSize = 8
	case typeArray:
		minSize = 4 + 8
	}
	n, err := p.count("array length", minSize)
	if err != nil {
		return err
	}
	switch elem {
	case typeString:
		return p.skipStrings(n)
	case typeArray:
		for ; n > 0; n-- {
			if err := p.skipValue(typeArray, p.r.pos(), depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	p.r.skip(int64(n) * minSize) // count checked it against remaining
	return nil
}

// skipStrings skips n strings.
func (p *parser) skipStrings(n uint64) error {
	off, length, ok := p.r.skipStrings(n)
	if ok {
		return nil
	}
	if length > 0 {
		return p.errorf(off, "string length %d exceeds remaining %d bytes", length, p.r.size-off-8)
	}
	return p.short(off, "string length")
}

// tensorLimit is the most tensors ReadHeader reads from a file of size
// bytes: maxTensors in any file, and one more per bytesPerTensor bytes of
// the file. A tensor costs some 800 bytes of allocation here and in Load,
// so the memory a file can make qinsaudit take stays a small multiple of
// the file's size however many tensors it lists.
func tensorLimit(size int64) uint64 {
	return maxTensors + uint64(max(size, 0))/bytesPerTensor
}

// tensorInfos reads the tensor infos and finds the data section.
func (p *parser) tensorInfos(h *Header) error {
	n := p.nTensors
	if left := p.r.remaining(); n > uint64(left/minTensorInfo) {
		return p.errorf(p.r.pos(), "tensor_count %d exceeds the %d bytes after the metadata", n, left)
	}
	if limit := tensorLimit(p.r.size); n > limit { // see ReadHeader
		return p.errorf(8, "tensor_count %d exceeds %d, the most a file of %d bytes may hold (%d, and one more per %d bytes of file)", n, limit, p.r.size, maxTensors, bytesPerTensor)
	}
	// Preallocate for at most 16,384 tensors (some 2.7 MB, in a file of at
	// least 24 bytes a tensor): n can still be far too large when the file
	// is mostly tensor data. Beyond, upTo grows the infos (eightfold) and
	// room the names and dims (twofold) as the infos are read.
	capN := min(n, 1<<14)
	h.Tensors = make([]TensorInfo, 0, capN)
	dims := make([]int64, 0, 2*capN)
	ends := make([]int, 0, capN)      // where each name ends in names
	names := make([]byte, 0, 32*capN) // all names, made one string at the end
	p.tensors = true
	for p.item = 0; uint64(p.item) < n; p.item++ {
		off := p.r.pos()
		first := len(dims)
		var typ uint32
		var o int64
		if name, nd, ne, t, to, ok := p.r.tensorInfo(!p.fieldByField); ok {
			names = append(room(names, len(name)), name...)
			dims = append(room(dims, nd), ne[:nd]...)
			typ, o = t, to
		} else {
			var err error
			if names, dims, typ, o, err = p.tensorInfo(names, dims); err != nil {
				return err
			}
		}
		ends = append(upTo(ends, n), len(names))
		h.Tensors = append(upTo(h.Tensors, n), TensorInfo{
			Dims:       dims[first:len(dims):len(dims)],
			Type:       typ,
			DType:      DTypeName(typ),
			Offset:     o,
			InfoOffset: off,
		})
	}
	p.item, p.tensors, p.nameOK = -1, false, false
	all := string(names)
	start := 0
	for i, end := range ends {
		h.Tensors[i].Name = all[start:end]
		start = end
	}

	// The data section starts at the next multiple of the alignment.
	pos, a := p.r.pos(), h.Alignment
	if rem := pos % a; rem != 0 {
		if pos > math.MaxInt64-(a-rem) {
			return p.errorf(pos, "data section offset overflows int64")
		}
		pos += a - rem
	}
	h.DataOffset = pos
	return nil
}

// tensorInfo reads one tensor info field by field, appending its name to
// names and its dims to dims: the path of an info the reader's buffer does
// not hold whole, or one that fails a check, which it reports.
func (p *parser) tensorInfo(names []byte, dims []int64) (_ []byte, _ []int64, typ uint32, o int64, err error) {
	p.nameOK = false
	off := p.r.pos()
	l, err := p.count("name length", 1)
	if err != nil {
		return names, dims, 0, 0, err
	}
	start := len(names)
	var ok bool
	if names, ok = p.r.appendN(room(names, int(l)), int64(l)); !ok {
		return names, dims, 0, 0, p.short(off+8, "name")
	}
	p.name, p.nameOK = names[start:], true
	ndOff := p.r.pos()
	nd, err := p.u32("n_dims")
	if err != nil {
		return names, dims, 0, 0, err
	}
	if nd > maxDims {
		return names, dims, 0, 0, p.errorf(ndOff, "n_dims %d exceeds %d", nd, maxDims)
	}
	dims = room(dims, int(nd))
	for j := range nd {
		dOff := p.r.pos()
		d, err := p.uint("ne", 8)
		if err != nil {
			return names, dims, 0, 0, err
		}
		if d > math.MaxInt64 {
			return names, dims, 0, 0, p.errorf(dOff, "ne[%d] %d overflows int64", j, d)
		}
		dims = append(dims, int64(d))
	}
	if typ, err = p.u32("type"); err != nil {
		return names, dims, 0, 0, err
	}
	oOff := p.r.pos()
	u, err := p.uint("offset", 8)
	if err != nil {
		return names, dims, 0, 0, err
	}
	// checkLayout compares offsets with the end of the file.
	if u > math.MaxInt64 {
		return names, dims, 0, 0, p.errorf(oOff, "offset %d is past the end of the file: it overflows int64", u)
	}
	return names, dims, typ, int64(u), nil
}

// upTo returns s with room for one more element of the n it will hold:
// when it has to grow, it grows eightfold, up to n. Doubling left the
// arrays of 16,384, 32,768 and 65,536 infos of a 100,000-tensor file as
// garbage, 12.8 MB, a seventh of its audit's peak RSS; eightfold takes
// such a file from the first 16,384 to all of them in one step. Growth
// stops at n, which tensorInfos holds to tensorLimit: the file's size
// still bounds the memory.
func upTo[T any](s []T, n uint64) []T {
	if len(s) < cap(s) {
		return s
	}
	return grow(s, int(min(7*uint64(cap(s)), n-uint64(len(s)))))
}

// room returns s with room for k more elements: when it has to grow, it
// at least doubles, so that filling a slice of n elements copies fewer than
// n (append grows large slices by a quarter).
func room[T any](s []T, k int) []T {
	if cap(s)-len(s) >= k {
		return s
	}
	return grow(s, max(k, cap(s)))
}

// grow is slices.Grow(s, k) with huge pages advised for the new array
// before s is copied into it: past 16,384 tensors the infos, dims and
// names grow in fresh memory (41% of the page faults of a
// 100,000-tensor file's audit).
func grow[T any](s []T, k int) []T {
	g := make([]T, len(s), len(s)+k)
	hugepage.Advise(g)
	copy(g, s)
	return g
}

// checkLayout sets each tensor's Bytes and Span and checks them against the
// file: names unique, data aligned, within the file, and not overlapping.
func checkLayout(h *Header, size int64) error {
	ts := h.Tensors
	if i := firstDuplicate(ts); i >= 0 {
		return accounting.Errorf(format, ts[i].InfoOffset, ts[i].Name, "duplicate tensor name")
	}
	dataLeft := size - h.DataOffset // negative when the section starts past EOF
	for i := range ts {
		t := &ts[i]
		t.Bytes = -1
		n, err := accounting.Numel(t.Dims)
		if err != nil {
			return accounting.Errorf(format, t.InfoOffset, t.Name, "ne %v: element count overflows int64", t.Dims)
		}
		if d := layoutOf(t.Type); d != nil {
			ne0 := int64(1)
			if len(t.Dims) > 0 {
				ne0 = t.Dims[0]
			}
			if ne0%d.BlockElems != 0 {
				return accounting.Errorf(format, t.InfoOffset, t.Name,
					"row of %d elements is not a whole number of %s blocks of %d", ne0, d.Name, d.BlockElems)
			}
			if t.Bytes, err = d.Bytes(n); err != nil {
				return accounting.Errorf(format, t.InfoOffset, t.Name, "%v", err)
			}
		}
		if t.Offset%h.Alignment != 0 {
			return accounting.Errorf(format, t.InfoOffset, t.Name,
				"offset %d is not a multiple of the alignment %d", t.Offset, h.Alignment)
		}
		if t.Offset > dataLeft {
			return accounting.Errorf(format, t.InfoOffset, t.Name, "offset %d (file offset %d) is past the end of the file (%d bytes)",
				t.Offset, uint64(h.DataOffset)+uint64(t.Offset), size) // unsigned: the sum can exceed MaxInt64
		}
	}
	// By offset; of tensors at one offset, empty ones first. Files written
	// by llama.cpp are in this order already.
	order := make([]int32, len(ts))
	for i := range order {
		order[i] = int32(i)
	}
	byOffset := func(a, b int32) int {
		if c := cmp.Compare(ts[a].Offset, ts[b].Offset); c != 0 {
			return c
		}
		return cmp.Compare(ts[a].Bytes, ts[b].Bytes)
	}
	if !slices.IsSortedFunc(order, byOffset) {
		slices.SortFunc(order, byOffset)
	}
	if len(order) > 0 {
		h.LeadingGap = ts[order[0]].Offset
	}
	for k, i := range order {
		t := &ts[i]
		end := dataLeft
		if k+1 < len(order) {
			end = ts[order[k+1]].Offset
		}
		t.Span = end - t.Offset
		if t.Bytes <= t.Span {
			if t.Bytes >= 0 {
				// What follows the data up to the next multiple of the
				// alignment is padding; anything beyond is a gap.
				t.Padding = min(t.Span-t.Bytes, padTo(t.Bytes, h.Alignment))
				t.Gap = t.Span - t.Bytes - t.Padding
			}
			continue
		}
		at := h.DataOffset + t.Offset
		if k+1 < len(order) {
			next := &ts[order[k+1]]
			return accounting.Errorf(format, at, t.Name, "%d bytes of data at offset %d overlap tensor %q at offset %d",
				t.Bytes, t.Offset, next.Name, next.Offset)
		}
		return accounting.Errorf(format, at, t.Name, "%d bytes of data at offset %d run %d bytes past the end of the file",
			t.Bytes, t.Offset, t.Bytes-t.Span)
	}
	return nil
}

// firstDuplicate returns the index of the first tensor whose name an
// earlier one has, or -1. It is a set of tensor indexes, open addressing
// on a seeded hash of the name, rather than a map[string]struct{}: the
// names are in ts already, and a map cost two lookups per tensor (a
// quarter of the time a header took) and an array of string headers the
// garbage collector scans. The table is at most half full and the seed
// random, so that no file can make the probes long.
func firstDuplicate(ts []TensorInfo) int {
	if len(ts) < 2 {
		return -1
	}
	size := 1 << bits.Len(uint(2*len(ts)-1)) // a power of two >= 2 len(ts)
	table := make([]int32, size)             // index+1 of a tensor, 0 for none
	mask := uint64(size - 1)
	seed := maphash.MakeSeed()
	for i := range ts {
		for j := maphash.String(seed, ts[i].Name) & mask; ; j = (j + 1) & mask {
			k := table[j]
			if k == 0 {
				table[j] = int32(i + 1)
				break
			}
			if ts[k-1].Name == ts[i].Name {
				return i
			}
		}
	}
	return -1
}

// padTo returns the bytes from n up to the next multiple of a.
func padTo(n, a int64) int64 {
	if r := n % a; r != 0 {
		return a - r
	}
	return 0
}
