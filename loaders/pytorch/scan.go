package pytorch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// Why scanPickle exists: gopickle v0.2.0 trusts its input. It allocates
// lengths read from the pickle (BINBYTES8, BINUNICODE8, FRAME, ...) before
// checking that the bytes exist, indexes a 255-entry opcode table with a
// byte (opcode 0xff panics), panics on a LONG1 or LONG4 of zero bytes, on a
// DICT or SETITEMS with an odd item count and on a bytes value used as an
// OrderedDict key or set member (it hashes a Go slice), and parses decimal
// and binary longs of any length in quadratic time. scanPickle walks the
// opcodes of one pickle without building anything, checks every argument
// against the bytes that remain, simulates the stack, marks and memo just
// far enough to rule those cases out, and returns the pickle's bytes up to
// and including STOP. gopickle then only ever sees input it rejects with an
// error rather than a panic or a huge allocation.

// Limits of the scan. Python's own pickler cannot nest deeper than its
// recursion limit (1000), so the mark limit never bites a real checkpoint;
// the others bound memory and time on hostile input while leaving room for
// checkpoints with hundreds of thousands of tensors. (torch.save memoizes
// 8 to 10 values per tensor of a state_dict; a memo entry costs gopickle
// and the scan about 200 bytes, a 5-byte LONG_BINPUT each.)
const (
	maxPickleBytes = 1 << 30 // bytes in one pickle
	maxOps         = 1 << 24 // opcodes in one pickle (gopickle allocates per opcode)
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
	buf  []byte
	// exact makes fill read only the bytes the scan asks for. A legacy
	// file's last pickle is followed by storage data, which read-ahead
	// would read; there is no telling where a pickle ends but its STOP.
	exact bool
}

func newPickleInput(r io.Reader, avail int64) *pickleInput {
	return &pickleInput{r: r, left: avail}
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

// kind is what the scan knows about a stack value: just enough to tell
// where gopickle would hash a Go slice.
type kind uint8

const (
	kindOther kind = iota
	kindBytes      // a []byte (BINBYTES...): unhashable in Go
	kindDict       // a *types.Dict, which keeps keys in a slice
)

// scanner is the state of one scan.
type scanner struct {
	in       *pickleInput
	pos      int // offset of the next unread byte in in.buf
	op       byte
	opPos    int // offset of the current opcode
	stack    []kind
	marks    []int // len(stack) at each open MARK
	memo     map[int64]kind
	frameEnd int // end offset of the current frame; 0 outside frames
}

// scanPickle validates the pickle at the start of in, returns its bytes,
// STOP included, and moves in past them.
func scanPickle(in *pickleInput) ([]byte, error) {
	s := &scanner{in: in, memo: map[int64]kind{}}
	for ops := 0; ; ops++ {
		if ops >= maxOps {
			return nil, s.errorf("more than %d opcodes", maxOps)
		}
		if err := s.ensureNext(1, 0); err != nil {
			if s.pos == 0 {
				return nil, &scanError{0, "empty pickle"}
			}
			return nil, &scanError{int64(s.pos), fmt.Sprintf("pickle ends at byte %d without STOP", s.pos)}
		}
		s.opPos, s.op = s.pos, in.buf[s.pos]
		s.pos++
		done, err := s.step()
		if err != nil {
			return nil, err
		}
		if done {
			if s.frameEnd > s.pos {
				return nil, s.errorf("frame ends at byte %d, after STOP", s.frameEnd)
			}
			data := in.buf[:s.pos:s.pos]
			in.buf = in.buf[s.pos:] // the next pickle's bytes, if any
			return data, nil
		}
	}
}

// errorf returns a scanError at the current opcode.
func (s *scanner) errorf(format string, args ...any) *scanError {
	name, ok := opNames[s.op]
	if !ok {
		name = fmt.Sprintf("0x%02x", s.op)
	}
	return &scanError{int64(s.opPos), fmt.Sprintf("opcode %s at pickle byte %d: ", name, s.opPos) + fmt.Sprintf(format, args...)}
}

// ensure makes n bytes from pos on, an argument of the current opcode,
// available in buf. The pickle goes on after them (to STOP at least), so
// one more byte may be read: the next opcode.
func (s *scanner) ensure(n int64) error { return s.ensureNext(n, 1) }

// ensureNext makes n bytes from pos on available in buf, knowing that the
// pickle holds ahead more.
func (s *scanner) ensureNext(n, ahead int64) error {
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
func (s *scanner) take(n int64) ([]byte, error) {
	if err := s.ensure(n); err != nil {
		return nil, err
	}
	b := s.in.buf[s.pos : s.pos+int(n)]
	s.pos += int(n)
	return b, nil
}

// counted consumes a length of width bytes (little-endian, unsigned unless
// signed) and then that many bytes, returning the length.
func (s *scanner) counted(width int, signed bool) (int64, error) {
	b, err := s.take(int64(width))
	if err != nil {
		return 0, err
	}
	var n uint64
	switch width {
	case 1:
		n = uint64(b[0])
	case 4:
		n = uint64(binary.LittleEndian.Uint32(b))
		if signed && int32(n) < 0 {
			return 0, s.errorf("negative length %d", int32(n))
		}
	case 8:
		n = binary.LittleEndian.Uint64(b)
	}
	if n > uint64(s.in.remaining(s.pos)) {
		return 0, s.errorf("length %d runs past the end of the input (%d bytes left)", n, s.in.remaining(s.pos))
	}
	_, err = s.take(int64(n))
	return int64(n), err
}

// line consumes a newline-terminated argument of at most limit bytes
// (limit < 0: no limit but the input) and returns it without the newline.
func (s *scanner) line(limit int) ([]byte, error) {
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
func (s *scanner) top() int {
	if len(s.marks) == 0 {
		return len(s.stack)
	}
	return len(s.stack) - s.marks[len(s.marks)-1]
}

// need fails unless n values sit above the innermost MARK.
func (s *scanner) need(n int) error {
	if s.top() < n {
		return s.errorf("needs %d stack values, has %d", n, s.top())
	}
	return nil
}

func (s *scanner) push(k kind) error {
	if len(s.stack) >= maxStack {
		return s.errorf("more than %d values on the stack", maxStack)
	}
	s.stack = append(s.stack, k)
	return nil
}

// pop removes n values (checked with need) and pushes one of kind k.
func (s *scanner) pop(n int, k kind) error {
	if err := s.need(n); err != nil {
		return err
	}
	s.stack = s.stack[:len(s.stack)-n]
	return s.push(k)
}

// popMark removes the values above the innermost MARK and the MARK. The
// result aliases the stack: read it before the next push.
func (s *scanner) popMark() ([]kind, error) {
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
func (s *scanner) memoKey() (int64, error) {
	b, err := s.line(32)
	if err != nil {
		return 0, err
	}
	k, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || k < 0 {
		return 0, s.errorf("bad memo key %q", b)
	}
	return k, nil
}

func (s *scanner) put(k int64) error {
	if err := s.need(1); err != nil {
		return err
	}
	if _, ok := s.memo[k]; !ok && len(s.memo) >= maxMemo {
		return s.errorf("more than %d memo entries", maxMemo)
	}
	s.memo[k] = s.stack[len(s.stack)-1]
	return nil
}

func (s *scanner) get(k int64) error {
	v, ok := s.memo[k]
	if !ok {
		return s.errorf("memo key %d is not defined", k)
	}
	return s.push(v)
}

// noBytesKeys fails if any of keys is a bytes value: the values they are
// added to hash them (OrderedDict keys, set members).
func (s *scanner) noBytesKeys(keys []kind, stride int) error {
	for i := 0; i < len(keys); i += stride {
		if keys[i] == kindBytes {
			return s.errorf("bytes value used as a key or set member (unsupported)")
		}
	}
	return nil
}

// step handles the opcode just read; done is true after STOP.
func (s *scanner) step() (done bool, err error) {
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
		s.stack = s.stack[:len(s.stack)-1]
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
	case 'N', 0x88, 0x89, ')', ']': // NONE, NEWTRUE, NEWFALSE, EMPTY_TUPLE, EMPTY_LIST
		return false, s.push(kindOther)
	case '}': // EMPTY_DICT
		return false, s.push(kindDict)
	case 0x8f: // EMPTY_SET
		return false, s.push(kindOther)
	case 'K': // BININT1
		_, err = s.take(1)
	case 'M': // BININT2
		_, err = s.take(2)
	case 'J': // BININT
		_, err = s.take(4)
	case 'G': // BINFLOAT
		_, err = s.take(8)
	case 'I', 'L', 'F': // INT, LONG, FLOAT as decimal text
		_, err = s.line(maxNumberLine)
	case 0x8a: // LONG1
		var n int64
		if n, err = s.counted(1, false); err == nil && n == 0 {
			err = s.errorf("empty long")
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
		if _, err := s.take(int64(n)); err != nil {
			return false, err
		}
	case 'S', 'V': // STRING, UNICODE as text
		_, err = s.line(-1)
	case 'U', 0x8c: // SHORT_BINSTRING, SHORT_BINUNICODE
		_, err = s.counted(1, false)
	case 'T': // BINSTRING
		_, err = s.counted(4, true)
	case 'X': // BINUNICODE
		_, err = s.counted(4, false)
	case 0x8d: // BINUNICODE8
		_, err = s.counted(8, false)
	case 'C': // SHORT_BINBYTES
		if _, err = s.counted(1, false); err == nil {
			err = s.push(kindBytes)
		}
		return false, err
	case 'B': // BINBYTES
		if _, err = s.counted(4, false); err == nil {
			err = s.push(kindBytes)
		}
		return false, err
	case 0x8e: // BINBYTES8
		if _, err = s.counted(8, false); err == nil {
			err = s.push(kindBytes)
		}
		return false, err
	case 0x96: // BYTEARRAY8 (a *ByteArray: hashable)
		_, err = s.counted(8, false)

	// Containers.
	case 'l', 't', 0x91: // LIST, TUPLE, FROZENSET
		items, err := s.popMark()
		if err != nil {
			return false, err
		}
		if s.op == 0x91 {
			if err := s.noBytesKeys(items, 1); err != nil {
				return false, err
			}
		}
		return false, s.push(kindOther)
	case 'd': // DICT
		items, err := s.popMark()
		if err != nil {
			return false, err
		}
		if len(items)%2 != 0 {
			return false, s.errorf("odd number of items (%d) for key/value pairs", len(items))
		}
		return false, s.push(kindDict)
	case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
		return false, s.pop(int(s.op-0x84), kindOther)
	case 'a': // APPEND: pops the value, the list stays
		if err := s.need(2); err != nil {
			return false, err
		}
		s.stack = s.stack[:len(s.stack)-1]
		return false, nil
	case 's': // SETITEM
		if err := s.need(3); err != nil {
			return false, err
		}
		n := len(s.stack)
		if s.stack[n-3] != kindDict {
			if err := s.noBytesKeys(s.stack[n-2:n-1], 1); err != nil {
				return false, err
			}
		}
		s.stack = s.stack[:n-2]
		return false, nil
	case 'e', 'u', 0x90: // APPENDS, SETITEMS, ADDITEMS: items above MARK into the value below it
		items, err := s.popMark()
		if err != nil {
			return false, err
		}
		if err := s.need(1); err != nil {
			return false, err
		}
		target := s.stack[len(s.stack)-1]
		switch s.op {
		case 'u':
			if len(items)%2 != 0 {
				return false, s.errorf("odd number of items (%d) for key/value pairs", len(items))
			}
			if target != kindDict {
				err = s.noBytesKeys(items, 2)
			}
		case 0x90:
			err = s.noBytesKeys(items, 1)
		}
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
	case 0x94: // MEMOIZE: gopickle, like Python, uses the memo's size as key
		return false, s.put(int64(len(s.memo)))
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
		at := s.pos
		module, err := s.line(-1)
		if err != nil {
			return false, err
		}
		isColl := string(module) == "collections"
		name, err := s.line(-1) // may move in.buf: module is stale after it
		if err != nil {
			return false, err
		}
		if isColl && string(name) == "OrderedDict" {
			// gopickle answers this GLOBAL itself, with a class that
			// refuses arguments, where checkpoints of 2018-2019 call
			// OrderedDict([(key, tensor), ...]). The bytes are this
			// scan's own copy: renamed, the GLOBAL reaches findClass,
			// whose stand-in takes the pairs. The length is unchanged.
			copy(s.in.buf[at:], orderedDictModule)
		}
	case 'i': // INST: module and name lines, arguments above MARK
		if _, err := s.line(-1); err != nil {
			return false, err
		}
		if _, err := s.line(-1); err != nil {
			return false, err
		}
		if _, err := s.popMark(); err != nil {
			return false, err
		}
		return false, s.push(kindOther)
	case 'o': // OBJ: class and arguments above MARK
		items, err := s.popMark()
		if err != nil {
			return false, err
		}
		if len(items) == 0 {
			return false, s.errorf("no class above MARK")
		}
		return false, s.push(kindOther)
	case 0x93: // STACK_GLOBAL
		return false, s.pop(2, kindOther)
	case 'R', 0x81: // REDUCE, NEWOBJ
		return false, s.pop(2, kindOther)
	case 0x92: // NEWOBJ_EX
		return false, s.pop(3, kindOther)
	case 'b': // BUILD: pops the state, the object stays
		if err := s.need(2); err != nil {
			return false, err
		}
		s.stack = s.stack[:len(s.stack)-1]
		return false, nil
	case 'P': // PERSID
		_, err = s.line(-1)
	case 'Q': // BINPERSID
		return false, s.pop(1, kindOther)

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
	case 0x98: // READONLY_BUFFER: a no-op for gopickle
		return false, nil
	case 0x82, 0x83, 0x84, 0x97: // EXT1, EXT2, EXT4, NEXT_BUFFER
		return false, s.errorf("unsupported: needs an extension registry or out-of-band buffers")
	default:
		return false, s.errorf("unknown opcode")
	}
	if err != nil {
		return false, err
	}
	// Every opcode that falls through pushes one plain value.
	return false, s.push(kindOther)
}

// opNames names the opcodes in error messages, as Python's pickletools does.
var opNames = map[byte]string{
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
