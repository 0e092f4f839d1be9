package pytorch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"strconv"
	"unsafe"

	"github.com/nlpodyssey/gopickle/types"
	"github.com/qinsaudit/qinsaudit/internal/hugepage"
)

// Why this package reads pickles itself: a PyTorch pickle reader is the
// product, and the general-purpose one it used (gopickle v0.2.0) was both
// unsafe on hostile input and the cost on large checkpoints. It trusted its
// input: it allocated lengths read from the pickle (BINBYTES8, FRAME, ...)
// before checking that the bytes exist, indexed a 255-entry opcode table
// with a byte, panicked on empty longs, odd item counts and bytes used as
// hash keys, and parsed long numbers in quadratic time, so a validating
// pre-scan had to walk every pickle first. And it kept its memo in a Go map:
// measured on a 100,000-tensor torch.save file (bench/pytorch), the memo
// map's inserts and lookups (about 10 per tensor) plus the pre-scan's own
// memo map were 40% of the load and most of its garbage. The machine below
// does both jobs in one pass: every argument is checked against the bytes
// that remain before anything is allocated, the memo is a slice indexed by
// key (a map only for keys far beyond the entries defined, which no real
// pickler writes), and values are the few Go types the naming walk knows.
// Nothing the pickle names is ever run: GLOBAL resolves through findClass
// to inert stand-ins (see unpickle.go).

// Limits of the machine. Python's own pickler cannot nest deeper than its
// recursion limit (1000), so the mark limit never bites a real checkpoint;
// the others bound memory and time on hostile input while leaving room for
// checkpoints with hundreds of thousands of tensors. (torch.save memoizes
// 8 to 10 values per tensor of a state_dict; a memo entry costs 16 bytes
// of slice, a 5-byte LONG_BINPUT each.) Every value on the stack, in the
// memo or in a container was pushed by an opcode of at least one byte, so
// all of them together are bounded by the pickle's size times a constant.
const (
	maxPickleBytes = 1 << 30 // bytes in one pickle
	maxOps         = 1 << 24 // opcodes in one pickle
	maxStack       = 1 << 22 // values on the stack at once, all marks together
	maxMemo        = 1 << 21 // memo entries
	maxMarks       = 1 << 12 // open MARKs
	maxNumberLine  = 4400    // text INT/LONG/FLOAT argument; Python parses at most 4300 digits
	maxLongBytes   = 4096    // LONG4 payload
)

// scanError is a defect found in a pickle, at a byte offset within it.
type scanError struct {
	pos int64
	msg string
}

func (e *scanError) Error() string { return e.msg }

// pickleInput is the byte source of one pickle or of several in a row: the
// bytes read and not yet consumed, from the current pickle's first byte
// on, and a reader that holds at most left more.
type pickleInput struct {
	r    io.Reader
	left int64 // bytes r can still give
	size int64 // bytes r held at the start
	buf  []byte
	// exact makes fill read only the bytes the scan asks for. A legacy
	// file's last pickle is followed by storage data, which read-ahead
	// would read; there is no telling where a pickle ends but its STOP.
	exact bool
}

func newPickleInput(r io.Reader, avail int64) *pickleInput {
	return &pickleInput{r: r, left: avail, size: avail}
}

// remaining is how many bytes from buf offset pos on the current pickle
// can still take: what the input holds, up to maxPickleBytes.
func (in *pickleInput) remaining(pos int) int64 {
	return min(int64(len(in.buf)-pos)+in.left, maxPickleBytes-int64(pos))
}

// capped reports whether maxPickleBytes, not the input, ends the current
// pickle.
func (in *pickleInput) capped() bool {
	return int64(len(in.buf))+in.left > maxPickleBytes
}

// fill reads at least n more bytes into buf; the caller has checked n
// against remaining. The pickle is known to hold ahead bytes after those.
// Unless exact, fill reads more when they are there (as much again as buf
// holds, at least 4 KiB), so that a pickle is read in a few large reads
// rather than opcode by opcode; exact, it reads the ahead bytes too. Never
// past maxPickleBytes.
func (in *pickleInput) fill(n, ahead int64) error {
	more := ahead
	if !in.exact {
		more = max(int64(len(in.buf)), 4096)
	}
	chunk := max(n, min(n+more, in.left, maxPickleBytes-int64(len(in.buf))))
	old := len(in.buf)
	if in.buf == nil && !in.exact {
		// The pickle's size is known (and checked against the file's):
		// one buffer, never copied.
		in.buf = make([]byte, 0, max(chunk, min(in.left, maxPickleBytes)))
		hugepage.Advise(in.buf) // 12 MB, read once, at 100,000 tensors
	}
	in.buf = slices.Grow(in.buf, int(chunk))[:old+int(chunk)]
	got, err := io.ReadFull(in.r, in.buf[old:])
	in.buf = in.buf[:old+got]
	in.left -= int64(got)
	if err != nil {
		in.left = 0 // the reader ended before the size it declared
	}
	if int64(got) < n {
		if err == nil || err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		return err
	}
	return nil
}

// machine is the state of one pickle being read.
type machine struct {
	in       *pickleInput
	u        *unpickler // classes and persistent ids
	pos      int        // offset of the next unread byte in in.buf
	op       byte
	opPos    int // offset of the current opcode
	stack    []any
	marks    []int // len(stack) at each open MARK
	memo     memo
	frameEnd int // end offset of the current frame; 0 outside frames
	ints     intTuples
	// args is the tuple passTuple hands on, valid during the call.
	args types.Tuple
}

// intTuples are the last few tuples of ints the machine built. torch.save
// writes every tensor's size and stride as a tuple of ints, mostly the
// same few, and memoizes each: as nothing changes a tuple once built, a
// tuple equal to a recent one is that one (measured on 100,000 tensors:
// two of the 18 allocations per tensor, 128 of its 1,975 bytes).
type intTuples struct {
	recent [8]*types.Tuple
	next   int
}

// tuple returns a tuple of a copy of items, a recent one if equal, new
// ones from a.
func (c *intTuples) tuple(a *arena, items []any) *types.Tuple {
	if len(items) == 0 || len(items) > 4 {
		return a.tuple(items)
	}
	for _, x := range items {
		if _, ok := x.(int); !ok {
			return a.tuple(items)
		}
	}
next:
	for _, t := range c.recent {
		if t == nil || len(*t) != len(items) {
			continue
		}
		for i, x := range *t {
			if x.(int) != items[i].(int) {
				continue next
			}
		}
		return t
	}
	t := a.tuple(items)
	c.recent[c.next] = t
	c.next = (c.next + 1) % len(c.recent)
	return t
}

// walkMemo is false in tests that compare the machine keeping every
// value with what it does by default.
var walkMemo = true

// runPickle reads the pickle at the start of in, moves in past it and
// returns the value it builds, resolving classes and persistent ids with u.
func runPickle(in *pickleInput, u *unpickler) (any, error) {
	s := &machine{in: in, u: u}
	if !in.exact {
		// The whole pickle, read at once (its size is known and checked
		// against the file's), is walked for the memo keys it reads back
		// (see memo.init). Input that ends early fails where the machine
		// runs out of it.
		if rem := in.remaining(0); int64(len(in.buf)) < rem {
			_ = in.fill(rem-int64(len(in.buf)), 0)
		}
		if walkMemo {
			s.memo.init(in.buf)
		}
	}
	u.m = s
	defer func() { u.m = nil }()
	for ops := 0; ; ops++ {
		if ops >= maxOps {
			return nil, s.errorf("more than %d opcodes", maxOps)
		}
		if s.pos >= len(in.buf) && s.ensureNext(1, 0) != nil {
			if s.pos == 0 {
				return nil, &scanError{0, "empty pickle"}
			}
			return nil, &scanError{int64(s.pos), fmt.Sprintf("pickle ends at byte %d without STOP", s.pos)}
		}
		s.opPos, s.op = s.pos, in.buf[s.pos]
		s.pos++
		if len(s.stack) >= maxStack {
			return nil, s.errorf("more than %d values on the stack", maxStack)
		}
		if s.quick() {
			continue
		}
		done, err := s.step()
		if err != nil {
			return nil, err
		}
		if done {
			if s.frameEnd > s.pos {
				return nil, s.errorf("frame ends at byte %d, after STOP", s.frameEnd)
			}
			v := s.stack[len(s.stack)-1]
			u.bytes = int64(s.pos)
			in.buf = in.buf[s.pos:] // the next pickle's bytes, if any
			return v, nil
		}
	}
}

// quick runs the current opcode when it is one of the four that make
// most of a torch.save pickle (BINPUT, BINGET, BININT1, MARK: 15 of its 30
// opcodes per tensor) and needs nothing but what step would do in its
// common case: the argument in the buffer, the next memo key, a defined
// one. It reports false, having changed nothing, when step must run it.
// Measured on 10,000 tensors, step's dispatch and calls for these were
// a fifth of the pickle's instructions.
func (s *machine) quick() bool {
	buf, p := s.in.buf, s.pos
	switch s.op {
	case 'q': // BINPUT
		m := &s.memo
		if p < len(buf) && int64(buf[p]) == m.next && m.sparse == nil && m.n < maxMemo && s.top() > 0 {
			m.putNext(s.stack[len(s.stack)-1])
			s.pos = p + 1
			return true
		}
	case 'r': // LONG_BINPUT
		m := &s.memo
		if p+4 <= len(buf) && int64(binary.LittleEndian.Uint32(buf[p:])) == m.next && m.sparse == nil && m.n < maxMemo && s.top() > 0 {
			m.putNext(s.stack[len(s.stack)-1])
			s.pos = p + 4
			return true
		}
	case 'h': // BINGET
		if p < len(buf) && int(buf[p]) < len(s.memo.dense) {
			if v := s.memo.dense[buf[p]]; v != memoHole {
				s.stack = append(s.stack, v)
				s.pos = p + 1
				return true
			}
		}
	case 'j': // LONG_BINGET
		if p+4 <= len(buf) {
			if k := int64(binary.LittleEndian.Uint32(buf[p:])); k < int64(len(s.memo.dense)) {
				if v := s.memo.dense[k]; v != memoHole {
					s.stack = append(s.stack, v)
					s.pos = p + 4
					return true
				}
			}
		}
	case 'K': // BININT1
		if p < len(buf) {
			s.stack = append(s.stack, int(buf[p]))
			s.pos = p + 1
			return true
		}
	case '(': // MARK
		if len(s.marks) < maxMarks {
			s.marks = append(s.marks, len(s.stack))
			return true
		}
	}
	return false
}

// errorf returns a scanError at the current opcode.
func (s *machine) errorf(format string, args ...any) *scanError {
	name := opNames[s.op]
	if name == "" {
		name = fmt.Sprintf("0x%02x", s.op)
	}
	return &scanError{int64(s.opPos), fmt.Sprintf("opcode %s at pickle byte %d: ", name, s.opPos) + fmt.Sprintf(format, args...)}
}

// ensure makes n bytes from pos on, an argument of the current opcode,
// available in buf. The pickle goes on after them (to STOP at least), so
// one more byte may be read: the next opcode.
func (s *machine) ensure(n int64) error { return s.ensureNext(n, 1) }

// ensureNext makes n bytes from pos on available in buf, knowing that the
// pickle holds ahead more.
func (s *machine) ensureNext(n, ahead int64) error {
	if n <= int64(len(s.in.buf)-s.pos) {
		return nil
	}
	if rem := s.in.remaining(s.pos); n > rem {
		if s.in.capped() {
			return s.errorf("pickle larger than the %d-byte limit", int64(maxPickleBytes))
		}
		return s.errorf("argument of %d bytes runs past the end of the input (%d bytes left)", n, rem)
	}
	if err := s.in.fill(n-int64(len(s.in.buf)-s.pos), ahead); err != nil {
		return s.errorf("reading %d bytes: %v", n, err)
	}
	return nil
}

// take consumes n argument bytes.
func (s *machine) take(n int) ([]byte, error) {
	if end := s.pos + n; uint(end) <= uint(len(s.in.buf)) { // the fast path, inlined
		b := s.in.buf[s.pos:end]
		s.pos = end
		return b, nil
	}
	return s.takeSlow(n)
}

// takeSlow is take after reading more input.
func (s *machine) takeSlow(n int) ([]byte, error) {
	if err := s.ensure(int64(n)); err != nil {
		return nil, err
	}
	b := s.in.buf[s.pos : s.pos+int(n)]
	s.pos += int(n)
	return b, nil
}

// counted consumes a length of width bytes (little-endian, unsigned unless
// signed) and then that many bytes, returning the length.
func (s *machine) counted(width int, signed bool) ([]byte, error) {
	b, err := s.take(width)
	if err != nil {
		return nil, err
	}
	var n uint64
	switch width {
	case 1:
		n = uint64(b[0])
	case 4:
		n = uint64(binary.LittleEndian.Uint32(b))
		if signed && int32(n) < 0 {
			return nil, s.errorf("negative length %d", int32(n))
		}
	case 8:
		n = binary.LittleEndian.Uint64(b)
	}
	if n > uint64(s.in.remaining(s.pos)) {
		return nil, s.errorf("length %d runs past the end of the input (%d bytes left)", n, s.in.remaining(s.pos))
	}
	return s.take(int(n)) // n <= remaining, at most maxPickleBytes
}

// line consumes a newline-terminated argument of at most limit bytes
// (limit < 0: no limit but the input) and returns it without the newline.
func (s *machine) line(limit int) ([]byte, error) {
	start, from := s.pos, s.pos
	for {
		if i := bytes.IndexByte(s.in.buf[from:], '\n'); i >= 0 {
			end := from + i
			if limit >= 0 && end-start > limit {
				return nil, s.errorf("text argument longer than %d bytes", limit)
			}
			s.pos = end + 1
			return s.in.buf[start:end], nil
		}
		from = len(s.in.buf)
		if limit >= 0 && from-start > limit {
			return nil, s.errorf("text argument longer than %d bytes", limit)
		}
		if s.in.remaining(from) == 0 {
			return nil, s.errorf("text argument has no newline before the end of the input")
		}
		if err := s.in.fill(1, 1); err != nil { // a newline, then an opcode
			return nil, s.errorf("reading: %v", err)
		}
	}
}

// top is the number of values above the innermost MARK.
func (s *machine) top() int {
	if len(s.marks) == 0 {
		return len(s.stack)
	}
	return len(s.stack) - s.marks[len(s.marks)-1]
}

// need fails unless n values sit above the innermost MARK.
func (s *machine) need(n int) error {
	if s.top() >= n { // the fast path, inlined
		return nil
	}
	return s.needFailed(n)
}

func (s *machine) needFailed(n int) error {
	return s.errorf("needs %d stack values, has %d", n, s.top())
}

// push pushes v. No opcode pushes more than one value, and runPickle
// checks the stack's size before each.
func (s *machine) push(v any) error {
	s.stack = append(s.stack, v)
	return nil
}

// pop removes the top value (checked with need).
func (s *machine) pop() any {
	v := s.stack[len(s.stack)-1]
	s.stack[len(s.stack)-1] = nil
	s.stack = s.stack[:len(s.stack)-1]
	return v
}

// popMark removes the values above the innermost MARK and the MARK. The
// result aliases the stack: copy what is kept before the next push.
func (s *machine) popMark() ([]any, error) {
	if len(s.marks) == 0 {
		return nil, s.errorf("no MARK on the stack")
	}
	m := s.marks[len(s.marks)-1]
	s.marks = s.marks[:len(s.marks)-1]
	items := s.stack[m:]
	s.stack = s.stack[:m]
	return items, nil
}

// memoKey parses the text argument of PUT and GET.
func (s *machine) memoKey() (int64, error) {
	b, err := s.line(32)
	if err != nil {
		return 0, err
	}
	k, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || k < 0 {
		return 0, s.errorf("bad memo key %q", clip(string(b)))
	}
	return k, nil
}

func (s *machine) put(k int64) error {
	if err := s.need(1); err != nil {
		return err
	}
	m := &s.memo
	if k == m.next && m.sparse == nil && m.n < maxMemo {
		// The next key, as every pickler writes them.
		m.putNext(s.stack[len(s.stack)-1])
		return nil
	}
	if !s.memo.defined(k) && s.memo.n >= maxMemo {
		return s.errorf("more than %d memo entries", maxMemo)
	}
	s.memo.put(k, s.stack[len(s.stack)-1])
	return nil
}

func (s *machine) get(k int64) error {
	if k < int64(len(s.memo.dense)) { // memo.get's dense case, inlined
		if v := s.memo.dense[k]; v != memoHole {
			return s.push(v)
		}
	}
	v, ok := s.memo.get(k)
	if !ok {
		return s.errorf("memo key %d is not defined", k)
	}
	return s.push(v)
}

// noBytesKeys fails if any of keys is a bytes value where it would be
// hashed (OrderedDict keys, set members); kept from the gopickle days, it
// refuses what no real checkpoint holds.
func (s *machine) noBytesKeys(keys []any, stride int) error {
	for i := 0; i < len(keys); i += stride {
		if _, ok := keys[i].([]byte); ok {
			return s.errorf("bytes value used as a key or set member (unsupported)")
		}
	}
	return nil
}

// unpickling wraps an error of the value being built (a stand-in's, a
// type mismatch) at the current opcode.
func (s *machine) unpickling(err error) error {
	return &scanError{int64(s.opPos), "unpickling: " + clip(err.Error())}
}

// unpicklingf is unpickling of a new error.
func (s *machine) unpicklingf(format string, args ...any) error {
	return s.unpickling(fmt.Errorf(format, args...))
}

// setItems adds key/value pairs to the dict-like target.
func (s *machine) setItems(target any, items []any) error {
	switch d := target.(type) {
	case *pyDict:
		// Room for the batch (SETITEMS brings up to 1,000 pairs), at
		// least doubling: append's 1.25x steps for a large slice made
		// five times a state_dict's entries in garbage.
		if n := len(items) / 2; cap(d.entries)-len(d.entries) < n {
			grow := max(n, len(d.entries))
			// A dict past a thousand entries in an archive of as many
			// storages or more is, as a rule, the state_dict that holds
			// them: sized for them all at once, it is not copied as it
			// grows (measured on 100,000 tensors: 100 bytes per entry of
			// 32 allocated, with its index).
			if want := len(d.entries) + n; want > 1024 && want <= s.u.sizeHint {
				grow = s.u.sizeHint - len(d.entries)
				if d.idx != nil {
					d.idx.strs.reserve(s.u.sizeHint)
				}
			}
			d.entries = slices.Grow(d.entries, grow)
		}
		for i := 0; i+1 < len(items); i += 2 {
			if err := d.set(items[i], items[i+1]); err != nil {
				return s.errorf("%v", err)
			}
		}
	case *object:
		for i := 0; i+1 < len(items); i += 2 {
			d.Set(items[i], items[i+1])
		}
	default:
		return s.unpicklingf("%s requires a dict, not %s", opNames[s.op], typeName(target))
	}
	return nil
}

// appendItems adds items to the list-like target.
func (s *machine) appendItems(target any, items []any) error {
	switch l := target.(type) {
	case *types.List:
		*l = append(*l, items...)
	case *object:
		l.elems = append(l.elems, items...)
	default:
		return s.unpicklingf("%s requires a list, not %s", opNames[s.op], typeName(target))
	}
	return nil
}

// call runs REDUCE, NEWOBJ, OBJ and INST: a stand-in's Call (or PyNew for
// NEWOBJ, or for OBJ and INST of a class that has no Call).
func (s *machine) call(class any, args []any, newobj bool) error {
	// The two calls torch.save makes per tensor, without the interface
	// conversions below: _rebuild_tensor_v2(...), and OrderedDict() for
	// its backward hooks, from the arena.
	switch c := class.(type) {
	case *callable:
		if !newobj {
			v, err := c.Call(args...)
			if err != nil {
				return s.unpickling(err)
			}
			return s.push(v)
		}
	case orderedDictClass:
		if len(args) == 0 {
			// torch.save pickles the empty backward hooks of every
			// tensor, straight into its rebuild arguments.
			if s.sealed() {
				return s.push(emptyOrderedDict)
			}
			d := alloc(&s.u.arena.dicts)
			d.ordered = true
			return s.push(d)
		}
	}
	var v any
	var err error
	c, isCall := class.(caller)
	n, isNew := class.(newer)
	switch {
	case newobj && isNew:
		v, err = n.PyNew(args...)
	case !newobj && isCall:
		v, err = c.Call(args...)
	case s.op != 'R' && !newobj && isNew: // OBJ, INST
		v, err = n.PyNew(args...)
	default:
		return s.unpicklingf("%s of %s, which is not callable", opNames[s.op], typeName(class))
	}
	if err != nil {
		return s.unpickling(err)
	}
	return s.push(v)
}

// Small tuples are allocated with their elements in one piece: torch.save
// writes several per tensor (persistent id, size, stride, arguments, the
// empty arguments of OrderedDict()).
type (
	tupleBox2 struct {
		t types.Tuple
		a [2]any
	}
	tupleBox4 struct {
		t types.Tuple
		a [4]any
	}
	tupleBox6 struct {
		t types.Tuple
		a [6]any
	}
)

// emptyTuple is every empty tuple: nothing changes a tuple once built.
var emptyTuple = &types.Tuple{}

// tuple returns a tuple of a copy of items.
func (a *arena) tuple(items []any) *types.Tuple {
	switch n := len(items); {
	case n == 0:
		return emptyTuple
	case n <= 2:
		b := alloc(&a.box2)
		b.t = b.a[:copy(b.a[:], items):n]
		return &b.t
	case n <= 4:
		b := alloc(&a.box4)
		b.t = b.a[:copy(b.a[:], items):n]
		return &b.t
	case n <= 6:
		b := alloc(&a.box6)
		b.t = b.a[:copy(b.a[:], items):n]
		return &b.t
	}
	t := types.Tuple(slices.Clone(items))
	return &t
}

// str returns an argument as a string, copied into a block of the
// arena's strings. A state_dict's names and storage keys are most of a
// pickle's strings: copied so, they are one allocation per 4 KiB rather
// than one each, the pickle's bytes are garbage once it is read (strings
// sharing them kept them live while the tensors were named: 12 MB for
// 100,000 tensors), and the namer can list a tensor under its root dict
// key without copying it again.
func (s *machine) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return s.u.arena.strs.concat(unsafe.String(&b[0], len(b)), "")
}

// step handles the opcode just read; done is true after STOP.
func (s *machine) step() (done bool, err error) {
	var v any // what opcodes that fall through push
	switch s.op {
	case '(': // MARK
		if len(s.marks) >= maxMarks {
			return false, s.errorf("more than %d nested MARKs", maxMarks)
		}
		s.marks = append(s.marks, len(s.stack))
		return false, nil
	case '.': // STOP
		return true, s.need(1)
	case '0': // POP: a value, or the MARK itself when none is above it
		if s.top() == 0 {
			_, err = s.popMark()
			return false, err
		}
		s.pop()
		return false, nil
	case '1': // POP_MARK
		_, err = s.popMark()
		return false, err
	case '2': // DUP
		if err := s.need(1); err != nil {
			return false, err
		}
		return false, s.push(s.stack[len(s.stack)-1])

	// Scalars.
	case 'N': // NONE
		v = nil
	case 0x88: // NEWTRUE
		v = true
	case 0x89: // NEWFALSE
		v = false
	case ')': // EMPTY_TUPLE
		v = emptyTuple
	case ']': // EMPTY_LIST
		v = &types.List{}
	case '}': // EMPTY_DICT
		v = alloc(&s.u.arena.dicts)
	case 0x8f: // EMPTY_SET
		v = &pySet{}
	case 'K': // BININT1
		var b []byte
		if b, err = s.take(1); err == nil {
			v = int(b[0])
		}
	case 'M': // BININT2
		var b []byte
		if b, err = s.take(2); err == nil {
			v = int(binary.LittleEndian.Uint16(b))
		}
	case 'J': // BININT
		var b []byte
		if b, err = s.take(4); err == nil {
			v = int(int32(binary.LittleEndian.Uint32(b)))
		}
	case 'G': // BINFLOAT
		var b []byte
		if b, err = s.take(8); err == nil {
			v = math.Float64frombits(binary.BigEndian.Uint64(b))
		}
	case 'I', 'L', 'F': // INT, LONG, FLOAT as decimal text
		var b []byte
		if b, err = s.line(maxNumberLine); err == nil {
			v, err = s.textNumber(b)
		}
	case 0x8a: // LONG1
		var b []byte
		if b, err = s.counted(1, false); err == nil {
			if len(b) == 0 {
				return false, s.errorf("empty long")
			}
			v = decodeLong(b)
		}
	case 0x8b: // LONG4
		b, err := s.take(4)
		if err != nil {
			return false, err
		}
		n := int32(binary.LittleEndian.Uint32(b))
		if n <= 0 || n > maxLongBytes {
			return false, s.errorf("long of %d bytes (allowed 1 to %d)", n, maxLongBytes)
		}
		if b, err = s.take(int(n)); err != nil {
			return false, err
		}
		v = decodeLong(b)
	case 'S': // STRING: a quoted repr
		var b []byte
		if b, err = s.line(-1); err == nil {
			if len(b) < 2 || b[0] != b[len(b)-1] || (b[0] != '\'' && b[0] != '"') {
				return false, s.errorf("argument is not quoted")
			}
			v = s.str(b[1 : len(b)-1])
		}
	case 'V': // UNICODE as text
		var b []byte
		if b, err = s.line(-1); err == nil {
			v = s.str(b)
		}
	case 'U', 0x8c: // SHORT_BINSTRING, SHORT_BINUNICODE
		var b []byte
		if b, err = s.counted(1, false); err == nil {
			v = s.str(b)
		}
	case 'T': // BINSTRING
		var b []byte
		if b, err = s.counted(4, true); err == nil {
			v = s.str(b)
		}
	case 'X': // BINUNICODE
		var b []byte
		if b, err = s.counted(4, false); err == nil {
			v = s.str(b)
		}
	case 0x8d: // BINUNICODE8
		var b []byte
		if b, err = s.counted(8, false); err == nil {
			v = s.str(b)
		}
	case 'C': // SHORT_BINBYTES
		var b []byte
		if b, err = s.counted(1, false); err == nil {
			v = slices.Clone(b)
		}
	case 'B': // BINBYTES
		var b []byte
		if b, err = s.counted(4, false); err == nil {
			v = slices.Clone(b)
		}
	case 0x8e: // BINBYTES8
		var b []byte
		if b, err = s.counted(8, false); err == nil {
			v = slices.Clone(b)
		}
	case 0x96: // BYTEARRAY8
		var b []byte
		if b, err = s.counted(8, false); err == nil {
			v = types.NewByteArrayFromSlice(slices.Clone(b))
		}

	// Containers.
	case 'l', 't', 0x91: // LIST, TUPLE, FROZENSET
		items, err := s.popMark()
		if err != nil {
			return false, err
		}
		switch s.op {
		case 't':
			if done, err := s.passTuple(items); done {
				return false, err
			}
			return false, s.push(s.ints.tuple(&s.u.arena, items))
		case 'l':
			l := types.List(slices.Clone(items))
			return false, s.push(&l)
		}
		items = slices.Clone(items)
		if err := s.noBytesKeys(items, 1); err != nil {
			return false, err
		}
		return false, s.push(&pySet{elems: items})
	case 'd': // DICT
		items, err := s.popMark()
		if err != nil {
			return false, err
		}
		if len(items)%2 != 0 {
			return false, s.errorf("odd number of items (%d) for key/value pairs", len(items))
		}
		d := &pyDict{}
		if err := s.setItems(d, items); err != nil {
			return false, err
		}
		return false, s.push(d)
	case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
		n := int(s.op - 0x84)
		if err := s.need(n); err != nil {
			return false, err
		}
		t := s.ints.tuple(&s.u.arena, s.stack[len(s.stack)-n:])
		clear(s.stack[len(s.stack)-n:])
		s.stack = s.stack[:len(s.stack)-n]
		return false, s.push(t)
	case 'a': // APPEND: pops the value, the list stays
		if err := s.need(2); err != nil {
			return false, err
		}
		x := s.pop()
		return false, s.appendItems(s.stack[len(s.stack)-1], []any{x})
	case 's': // SETITEM
		if err := s.need(3); err != nil {
			return false, err
		}
		n := len(s.stack)
		target := s.stack[n-3]
		if d, ok := target.(*pyDict); !ok || d.ordered {
			if err := s.noBytesKeys(s.stack[n-2:n-1], 1); err != nil {
				return false, err
			}
		}
		kv := []any{s.stack[n-2], s.stack[n-1]}
		s.pop()
		s.pop()
		return false, s.setItems(target, kv)
	case 'e', 'u', 0x90: // APPENDS, SETITEMS, ADDITEMS: items above MARK into the value below it
		items, err := s.popMark()
		if err != nil {
			return false, err
		}
		if err := s.need(1); err != nil {
			return false, err
		}
		err = s.intoTarget(s.stack[len(s.stack)-1], items)
		clear(items) // the stack's slots past its end
		return false, err

	// Memo.
	case 'p': // PUT
		k, err := s.memoKey()
		if err != nil {
			return false, err
		}
		return false, s.put(k)
	case 'q': // BINPUT
		b, err := s.take(1)
		if err != nil {
			return false, err
		}
		return false, s.put(int64(b[0]))
	case 'r': // LONG_BINPUT
		b, err := s.take(4)
		if err != nil {
			return false, err
		}
		return false, s.put(int64(binary.LittleEndian.Uint32(b)))
	case 0x94: // MEMOIZE: the memo's size is the key, as in Python
		return false, s.put(int64(s.memo.n))
	case 'g': // GET
		k, err := s.memoKey()
		if err != nil {
			return false, err
		}
		return false, s.get(k)
	case 'h': // BINGET
		b, err := s.take(1)
		if err != nil {
			return false, err
		}
		return false, s.get(int64(b[0]))
	case 'j': // LONG_BINGET
		b, err := s.take(4)
		if err != nil {
			return false, err
		}
		return false, s.get(int64(binary.LittleEndian.Uint32(b)))

	// Classes, calls and objects.
	case 'c': // GLOBAL: module and name lines
		module, err := s.line(-1)
		if err != nil {
			return false, err
		}
		mod := s.str(module)
		name, err := s.line(-1)
		if err != nil {
			return false, err
		}
		return false, s.push(s.u.findClass(mod, s.str(name), int64(s.opPos)))
	case 'i': // INST: module and name lines, arguments above MARK
		module, err := s.line(-1)
		if err != nil {
			return false, err
		}
		mod := s.str(module)
		name, err := s.line(-1)
		if err != nil {
			return false, err
		}
		class := s.u.findClass(mod, s.str(name), int64(s.opPos))
		args, err := s.popMark()
		if err != nil {
			return false, err
		}
		return false, s.call(class, slices.Clone(args), false)
	case 'o': // OBJ: class and arguments above MARK
		items, err := s.popMark()
		if err != nil {
			return false, err
		}
		if len(items) == 0 {
			return false, s.errorf("no class above MARK")
		}
		return false, s.call(items[0], slices.Clone(items[1:]), false)
	case 0x93: // STACK_GLOBAL
		if err := s.need(2); err != nil {
			return false, err
		}
		name, module := s.pop(), s.pop()
		ms, ok1 := module.(string)
		ns, ok2 := name.(string)
		if !ok1 || !ok2 {
			return false, s.unpicklingf("STACK_GLOBAL of %s and %s, not two str", typeName(module), typeName(name))
		}
		return false, s.push(s.u.findClass(ms, ns, int64(s.opPos)))
	case 'R', 0x81: // REDUCE, NEWOBJ
		if err := s.need(2); err != nil {
			return false, err
		}
		args, class := s.pop(), s.pop()
		t, ok := args.(*types.Tuple)
		if !ok {
			return false, s.unpicklingf("%s arguments are %s, not a tuple", opNames[s.op], typeName(args))
		}
		return false, s.call(class, *t, s.op == 0x81)
	case 0x92: // NEWOBJ_EX: class, args, kwargs (passed as a last argument)
		if err := s.need(3); err != nil {
			return false, err
		}
		kwargs, args, class := s.pop(), s.pop(), s.pop()
		t, ok := args.(*types.Tuple)
		if !ok {
			return false, s.unpicklingf("NEWOBJ_EX arguments are %s, not a tuple", typeName(args))
		}
		return false, s.call(class, append(slices.Clone(*t), kwargs), true)
	case 'b': // BUILD: pops the state, the object stays
		if err := s.need(2); err != nil {
			return false, err
		}
		state := s.pop()
		if err := build(s.stack[len(s.stack)-1], state); err != nil {
			return false, s.unpickling(err)
		}
		return false, nil
	case 'P': // PERSID
		var b []byte
		if b, err = s.line(-1); err == nil {
			v, err = s.persistent(s.str(b))
		}
	case 'Q': // BINPERSID
		if err := s.need(1); err != nil {
			return false, err
		}
		v, err = s.persistent(s.pop())

	// Framing and protocol.
	case 0x80: // PROTO
		b, err := s.take(1)
		if err != nil {
			return false, err
		}
		if b[0] > 5 {
			return false, s.errorf("unsupported protocol %d", b[0])
		}
		return false, nil
	case 0x95: // FRAME
		if s.frameEnd > s.opPos {
			return false, s.errorf("frame starts inside the frame that ends at byte %d", s.frameEnd)
		}
		b, err := s.take(8)
		if err != nil {
			return false, err
		}
		n := binary.LittleEndian.Uint64(b)
		if rem := s.in.remaining(s.pos); n > uint64(rem) {
			return false, s.errorf("frame of %d bytes runs past the end of the input (%d bytes left)", n, rem)
		}
		s.frameEnd = s.pos + int(n)
		if s.in.exact {
			// The frame's bytes are the pickle's: read them at once
			// (up to the 64 KiB Python's pickler frames).
			return false, s.ensureNext(min(int64(n), 1<<16), 0)
		}
		return false, nil
	case 0x98: // READONLY_BUFFER: a no-op without out-of-band buffers
		return false, nil
	case 0x82, 0x83, 0x84, 0x97: // EXT1, EXT2, EXT4, NEXT_BUFFER
		return false, s.errorf("unsupported: needs an extension registry or out-of-band buffers")
	default:
		return false, s.errorf("unknown opcode")
	}
	if err != nil {
		return false, err
	}
	// Every opcode that falls through pushes one value.
	return false, s.push(v)
}

// passTuple runs the TUPLE just read together with what follows, when
// that is a BINPERSID or a REDUCE of an allow-listed function (after, at
// most, a BINPUT of a key the pickle never reads back): the tuple is then
// seen by that call only, which keeps none of it but its elements, so it
// is handed on as the stack's items, not built. torch.save writes two
// such tuples per tensor, its persistent id and its rebuild arguments.
// done is false, nothing changed, for any other opcode.
func (s *machine) passTuple(items []any) (done bool, err error) {
	m := &s.memo
	if !m.walked {
		return false, nil
	}
	buf, p := s.in.buf, s.pos
	put, ok := s.droppedPut()
	if !ok || p+put >= len(buf) {
		return false, nil
	}
	var fn *callable
	switch buf[p+put] {
	case 'Q': // BINPERSID
	case 'R': // REDUCE
		if s.top() == 0 {
			return false, nil
		}
		var ok bool
		if fn, ok = s.stack[len(s.stack)-1].(*callable); !ok {
			return false, nil
		}
	default:
		return false, nil
	}
	if put > 0 {
		m.putNext(nil) // dropped
	}
	s.opPos, s.op = p+put, buf[p+put]
	s.pos = s.opPos + 1
	var v any
	if fn == nil {
		s.args = items
		v, err = s.persistent(&s.args)
		s.args = nil
	} else {
		s.pop()
		if v, err = fn.Call(items...); err != nil {
			err = s.unpickling(err)
		}
	}
	clear(items) // the stack's slots past its end
	if err != nil {
		return true, err
	}
	return true, s.push(v)
}

// droppedPut returns the bytes of the BINPUT or LONG_BINPUT that comes
// next, if any (0 if none); ok is false when it puts a key the memo keeps,
// or one out of sequence.
func (s *machine) droppedPut() (n int, ok bool) {
	m := &s.memo
	buf, p := s.in.buf, s.pos
	switch {
	case p+1 < len(buf) && buf[p] == 'q':
		n = 2
		ok = int64(buf[p+1]) == m.next
	case p+4 < len(buf) && buf[p] == 'r':
		n = 5
		ok = int64(binary.LittleEndian.Uint32(buf[p+1:])) == m.next
	default:
		return 0, true
	}
	return n, ok && !m.keep(m.next) && m.sparse == nil && m.n < maxMemo
}

// sealed reports whether the value the current opcode pushes goes,
// by the next opcodes, into a tuple only: after at most a BINPUT of a key
// the memo drops, a TUPLE of any size. No opcode reaches into a tuple, so
// nothing can change the value after that.
func (s *machine) sealed() bool {
	if !s.memo.walked {
		return false
	}
	put, ok := s.droppedPut()
	if p := s.pos + put; ok && p < len(s.in.buf) {
		switch s.in.buf[p] {
		case 't', 0x85, 0x86, 0x87:
			return true
		}
	}
	return false
}

// emptyOrderedDict is every OrderedDict() that is sealed when made (see
// machine.call).
var emptyOrderedDict = &pyDict{ordered: true}

// intoTarget runs APPENDS, SETITEMS or ADDITEMS: items into target.
func (s *machine) intoTarget(target any, items []any) error {
	switch s.op {
	case 'e':
		return s.appendItems(target, items)
	case 'u':
		if len(items)%2 != 0 {
			return s.errorf("odd number of items (%d) for key/value pairs", len(items))
		}
		if d, ok := target.(*pyDict); !ok || d.ordered {
			if err := s.noBytesKeys(items, 2); err != nil {
				return err
			}
		}
		return s.setItems(target, items)
	}
	if err := s.noBytesKeys(items, 1); err != nil {
		return err
	}
	switch t := target.(type) {
	case *pySet:
		t.elems = append(t.elems, items...)
	case *object:
		t.elems = append(t.elems, items...)
	default:
		return s.unpicklingf("ADDITEMS requires a set, not %s", typeName(target))
	}
	return nil
}

// persistent resolves a persistent id.
func (s *machine) persistent(pid any) (any, error) {
	if s.u.persistent == nil {
		return nil, s.unpicklingf("unexpected persistent id")
	}
	v, err := s.u.persistent(pid)
	if err == nil {
		err = notBytes(v, "persistent id resolves to")
	}
	if err != nil {
		return nil, s.unpickling(err)
	}
	return v, nil
}

// textNumber parses the argument of INT, LONG or FLOAT as Python does.
func (s *machine) textNumber(b []byte) (any, error) {
	switch s.op {
	case 'F':
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return nil, s.errorf("bad float")
		}
		return f, nil
	case 'I':
		switch string(b) {
		case "00":
			return false, nil
		case "01":
			return true, nil
		}
	case 'L':
		b = bytes.TrimSuffix(b, []byte("L"))
	}
	if i, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		return int(i), nil
	}
	bi, ok := new(big.Int).SetString(string(b), 10)
	if !ok {
		return nil, s.errorf("bad integer")
	}
	return bi, nil
}

// decodeLong decodes a little-endian two's-complement long: an int when it
// fits in 64 bits, a *big.Int otherwise.
func decodeLong(b []byte) any {
	if len(b) <= 8 {
		var ux uint64
		for i := len(b) - 1; i >= 0; i-- {
			ux = ux<<8 | uint64(b[i])
		}
		if shift := 64 - 8*uint(len(b)); shift > 0 {
			return int(int64(ux<<shift) >> shift) // sign-extend
		}
		return int(int64(ux))
	}
	be := make([]byte, len(b))
	for i, c := range b {
		be[len(b)-1-i] = c
	}
	bi := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		bi.Sub(bi, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return bi
}

// opNames names the opcodes in error messages, as Python's pickletools does
// ("" for a byte that is no opcode): an array, laid out by the linker, where
// a map would be built at package init.
var opNames = [256]string{
	'(': "MARK", '.': "STOP", '0': "POP", '1': "POP_MARK", '2': "DUP",
	'F': "FLOAT", 'I': "INT", 'J': "BININT", 'K': "BININT1", 'L': "LONG",
	'M': "BININT2", 'N': "NONE", 'P': "PERSID", 'Q': "BINPERSID",
	'R': "REDUCE", 'S': "STRING", 'T': "BINSTRING", 'U': "SHORT_BINSTRING",
	'V': "UNICODE", 'X': "BINUNICODE", 'a': "APPEND", 'b': "BUILD",
	'c': "GLOBAL", 'd': "DICT", '}': "EMPTY_DICT", 'e': "APPENDS",
	'g': "GET", 'h': "BINGET", 'i': "INST", 'j': "LONG_BINGET", 'l': "LIST",
	']': "EMPTY_LIST", 'o': "OBJ", 'p': "PUT", 'q': "BINPUT",
	'r': "LONG_BINPUT", 's': "SETITEM", 't': "TUPLE", ')': "EMPTY_TUPLE",
	'u': "SETITEMS", 'G': "BINFLOAT", 'B': "BINBYTES", 'C': "SHORT_BINBYTES",
	0x80: "PROTO", 0x81: "NEWOBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4",
	0x85: "TUPLE1", 0x86: "TUPLE2", 0x87: "TUPLE3", 0x88: "NEWTRUE",
	0x89: "NEWFALSE", 0x8a: "LONG1", 0x8b: "LONG4", 0x8c: "SHORT_BINUNICODE",
	0x8d: "BINUNICODE8", 0x8e: "BINBYTES8", 0x8f: "EMPTY_SET",
	0x90: "ADDITEMS", 0x91: "FROZENSET", 0x92: "NEWOBJ_EX",
	0x93: "STACK_GLOBAL", 0x94: "MEMOIZE", 0x95: "FRAME",
	0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
}
