package safeio

import (
	"errors"
	"io"
	"testing"
)

// eofAt is a ReaderAt that says io.EOF with every read reaching its end,
// as io.ReaderAt allows, or fails with err.
type eofAt struct {
	data []byte
	err  error
}

func (r eofAt) ReadAt(p []byte, off int64) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n := copy(p, r.data[min(off, int64(len(r.data))):])
	if off+int64(n) >= int64(len(r.data)) {
		return n, io.EOF
	}
	return n, nil
}

func TestReadFullAt(t *testing.T) {
	r := eofAt{data: []byte("abcdef")}
	buf := make([]byte, 2)
	if n, err := ReadFullAt(r, buf, 4); n != 2 || err != nil || string(buf) != "ef" {
		t.Errorf("a full read ending the input: %d, %v, %q", n, err, buf)
	}
	if n, err := ReadFullAt(r, make([]byte, 4), 4); n != 2 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a short read: %d, %v; want io.ErrUnexpectedEOF", n, err)
	}
	broken := errors.New("disk on fire")
	if _, err := ReadFullAt(eofAt{err: broken}, buf, 0); !errors.Is(err, broken) {
		t.Errorf("a failing reader: %v", err)
	}
}
