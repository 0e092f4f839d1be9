package gguf

import (
	"encoding/binary"
	"io"
	"math"
	"math/bits"

	"github.com/qinsaudit/qinsaudit/internal/safeio"
)

// bufSize is the read buffer; it holds the longest key GGUF allows (65,535
// bytes), so a key can always be looked at in place.
const bufSize = 64 << 10

// reader is a buffered little- or big-endian reader over an io.ReaderAt that
// knows its position and how many bytes the file has left. Skipping past the
// buffer moves the position without reading.
type reader struct {
	ra   io.ReaderAt
	size int64
	buf  []byte
	base int64 // file offset of buf[0]
	i, n int   // buf[i:n] is read but not consumed
	be   bool  // big-endian file
	err  error // the I/O error that stopped a read, if any
}

func newReader(ra io.ReaderAt, size int64) *reader {
	return &reader{ra: ra, size: size, buf: make([]byte, min(size, bufSize))}
}

// pos is the file offset of the next byte.
func (r *reader) pos() int64 { return r.base + int64(r.i) }

// remaining is the number of bytes after pos.
func (r *reader) remaining() int64 { return r.size - r.pos() }

// fill makes k <= len(r.buf) bytes available at buf[i:]. It fails when the
// file has fewer left or a read fails (r.err is then set).
func (r *reader) fill(k int) bool {
	if r.n-r.i >= k {
		return true
	}
	if int64(k) > r.remaining() {
		return false
	}
	copy(r.buf, r.buf[r.i:r.n])
	r.base += int64(r.i)
	r.n -= r.i
	r.i = 0
	want := int(min(int64(len(r.buf)-r.n), r.size-r.base-int64(r.n)))
	m, err := safeio.ReadFullAt(r.ra, r.buf[r.n:r.n+want], r.base+int64(r.n))
	r.n += m
	if err != nil {
		r.err = err
		return false
	}
	return true
}

// get16, get32 and get64 decode b in the file's byte order.
func (r *reader) get16(b []byte) uint16 {
	v := binary.LittleEndian.Uint16(b)
	if r.be {
		v = bits.ReverseBytes16(v)
	}
	return v
}

func (r *reader) get32(b []byte) uint32 {
	v := binary.LittleEndian.Uint32(b)
	if r.be {
		v = bits.ReverseBytes32(v)
	}
	return v
}

func (r *reader) get64(b []byte) uint64 {
	v := binary.LittleEndian.Uint64(b)
	if r.be {
		v = bits.ReverseBytes64(v)
	}
	return v
}

// uint reads an unsigned integer of 1, 2, 4 or 8 bytes.
func (r *reader) uint(size int) (uint64, bool) {
	b, ok := r.peek(size)
	if !ok {
		return 0, false
	}
	switch size {
	case 1:
		return uint64(b[0]), true
	case 2:
		return uint64(r.get16(b)), true
	case 4:
		return uint64(r.get32(b)), true
	}
	return r.get64(b), true
}

// peek returns the next k <= len(r.buf) bytes and consumes them; they stay
// valid until the next read.
func (r *reader) peek(k int) ([]byte, bool) {
	if !r.fill(k) {
		return nil, false
	}
	b := r.buf[r.i : r.i+k]
	r.i += k
	return b, true
}

// skip consumes k bytes, k <= remaining.
func (r *reader) skip(k int64) {
	if k <= int64(r.n-r.i) {
		r.i += int(k)
		return
	}
	r.base = r.pos() + k
	r.i, r.n = 0, 0
}

// appendN appends the next n bytes, n <= remaining, to dst.
func (r *reader) appendN(dst []byte, n int64) ([]byte, bool) {
	for n > 0 {
		k := int(min(n, int64(len(r.buf))))
		if !r.fill(k) {
			return dst, false
		}
		dst = append(dst, r.buf[r.i:r.i+k]...)
		r.i += k
		n -= int64(k)
	}
	return dst, true
}

// tensorInfo decodes the tensor info at pos straight from the buffer (when
// enabled): if the buffer holds all of it and it passes the parser's checks
// (n_dims at most maxDims, every ne and the offset within int64), it
// consumes it and returns its fields, the name valid until the next read.
// Otherwise it consumes nothing and ok is false: parser.tensorInfo then
// reads the info field by field, refilling the buffer or reporting the
// error. Almost every info of a file is decoded here, with one bounds check
// per field and no call.
func (r *reader) tensorInfo(enabled bool) (name []byte, nd int, ne [maxDims]int64, typ uint32, off int64, ok bool) {
	b := r.buf[r.i:r.n]
	if !enabled || len(b) < 8 {
		return
	}
	l := r.get64(b)
	if l > uint64(len(b)-8) {
		return
	}
	rest := b[8+l:]
	if len(rest) < 4 {
		return
	}
	n := r.get32(rest)
	if n > maxDims || len(rest) < 4+8*int(n)+4+8 {
		return
	}
	for j := range int(n) {
		d := r.get64(rest[4+8*j:])
		if d > math.MaxInt64 {
			return
		}
		ne[j] = int64(d)
	}
	rest = rest[4+8*n:]
	o := r.get64(rest[4:])
	if o > math.MaxInt64 {
		return
	}
	r.i += len(b) - len(rest) + 12
	return b[8 : 8+l], int(n), ne, r.get32(rest), int64(o), true
}

// skipStrings skips count strings (u64 length and bytes). It returns the
// offset and length of the first string that runs past the end of the file,
// or a failed read.
func (r *reader) skipStrings(count uint64) (off int64, length uint64, ok bool) {
	for ; count > 0; count-- {
		// Fast path: the lengths and the strings in the buffer, skipped
		// in a loop over locals (a tokenizer has 100,000 of them).
		if !r.be {
			i, buf := r.i, r.buf[:r.n]
			for count > 0 && len(buf)-i >= 8 {
				n := binary.LittleEndian.Uint64(buf[i:])
				if n > uint64(len(buf)-i-8) {
					break
				}
				i += 8 + int(n)
				count--
			}
			r.i = i
			if count == 0 {
				break
			}
		} else if r.n-r.i >= 8 {
			if n := r.get64(r.buf[r.i:]); n <= uint64(r.n-r.i-8) {
				r.i += 8 + int(n)
				continue
			}
		}
		off = r.pos()
		n, ok := r.uint(8)
		if !ok {
			return off, 0, false
		}
		if n > uint64(r.remaining()) {
			return off, n, false
		}
		r.skip(int64(n))
	}
	return 0, 0, true
}
