// Package safeio opens and reads input files that may come from strangers:
// only regular files are opened, a FIFO or a device never blocks or streams
// forever, and a read stops at a stated limit instead of taking the
// machine's memory.
//
// Use OpenRegular wherever an input file is opened (models, shards, side
// files), ReadFileLimit where a whole file is read into memory, and
// LimitError to tell a file that is too large from one that is malformed.
// Every error names the file; a limit error also names the limit, so the
// command line can print it and exit 1.
//
// Typical use in a loader:
//
//	f, fi, err := safeio.OpenRegular(path)
//	if err != nil {
//		return err // "x.pt: not a regular file (a named pipe)"
//	}
//	defer f.Close()
//	// read at most fi.Size() bytes from f
//
// and for a side file read whole:
//
//	data, err := safeio.ReadFileLimit(path, safeio.SideFileLimit)
package safeio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"syscall"

	"github.com/qinsaudit/qinsaudit/internal/hugepage"
)

// Limits for whole-file reads. A variable would let tests lower them; the
// callers pass their limit explicitly instead.
const (
	// SideFileLimit bounds a hand-written side file: a gate config, a
	// rules file, a claims file. Real ones are a few KiB.
	SideFileLimit = 4 << 20
	// ReportLimit is the hard cap on a saved JSON report (a report lists
	// every tensor: a 1M-tensor model gives a few hundred MiB).
	ReportLimit = 1 << 30
)

// LimitError is the error of a read refused because the file is larger
// than the limit.
type LimitError struct {
	Path  string
	Limit int64
	Size  int64 // the file's stated size, or -1 when it was only seen by reading past the limit
}

func (e *LimitError) Error() string {
	if e.Size >= 0 {
		return fmt.Sprintf("%s: %d bytes, over the limit of %d bytes for this kind of file: not read", e.Path, e.Size, e.Limit)
	}
	return fmt.Sprintf("%s: more than the limit of %d bytes for this kind of file: not read", e.Path, e.Limit)
}

// ErrNotRegular is wrapped by the error OpenRegular returns for a path
// that is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// OpenRegular opens path for reading if it is a regular file (after
// following symlinks) and returns it with its FileInfo. A FIFO, socket,
// device or directory is refused with an error wrapping ErrNotRegular that
// names what it is. The file is opened with O_NONBLOCK, so a FIFO swapped
// in between the stat and the open cannot block the open; the opened
// file's own stat is checked again, and that is the FileInfo returned.
func OpenRegular(path string) (*os.File, fs.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, notRegular(path, fi)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err = f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, notRegular(path, fi)
	}
	return f, fi, nil
}

func notRegular(path string, fi fs.FileInfo) error {
	what := "a special file"
	switch m := fi.Mode(); {
	case m.IsDir():
		what = "a directory"
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m&fs.ModeCharDevice != 0:
		what = "a character device"
	case m&fs.ModeDevice != 0:
		what = "a block device"
	}
	return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, what)}
}

// ReadFullAt reads len(buf) bytes of r at off, as io.ReadFull does from a
// Reader. A full read succeeds even when r says io.EOF with it (io.ReaderAt
// allows that at the end of the input); a short one fails, with
// io.ErrUnexpectedEOF when the input ended there.
func ReadFullAt(r io.ReaderAt, buf []byte, off int64) (int, error) {
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// ReadFileLimit reads the regular file at path whole, refusing with a
// *LimitError one larger than limit bytes. It reads at most the file's
// stated size + 1 bytes, so memory is bounded by the smaller of the file
// and the limit; a file that grows while it is read is refused.
func ReadFileLimit(path string, limit int64) ([]byte, error) {
	f, fi, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := fi.Size()
	if size > limit {
		return nil, &LimitError{Path: path, Limit: limit, Size: size}
	}
	data, err := ReadLimit(io.LimitReader(f, size+1), path, size, limit)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > size {
		return nil, fmt.Errorf("%s: grew past its size of %d bytes while read: not read", path, size)
	}
	return data, nil
}

// ReadLimit reads r to its end, refusing with a *LimitError more than
// limit bytes. size is what the caller expects (a file's stated size, or -1
// if unknown): it only sizes the first buffer, so a lie costs nothing. name
// is used in errors. Memory is at most about twice the smaller of what r
// holds and limit.
func ReadLimit(r io.Reader, name string, size, limit int64) ([]byte, error) {
	// Not bytes.Buffer.ReadFrom: it wants 512 bytes free before every
	// read, so a buffer of exactly size+1 was copied into one twice as
	// large just to read the EOF (50 MB copied for a large saved report).
	n := 512
	if size >= 0 && size <= limit {
		n = int(size) + 1 // +1: reading EOF needs no growth
	}
	buf := make([]byte, 0, n)
	// A saved report of 100,000 tensors is 64 MB, read into fresh pages:
	// 15,500 page faults in 4 KiB pages.
	hugepage.Advise(buf)
	lr := io.LimitReader(r, limit+1)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, cap(buf)) // doubling: copies sum to the size
			hugepage.Advise(buf[len(buf):])
		}
		m, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if int64(len(buf)) > limit {
		return nil, &LimitError{Path: name, Limit: limit, Size: -1}
	}
	return buf, nil
}
