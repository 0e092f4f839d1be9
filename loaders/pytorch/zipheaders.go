package pytorch

import "io"

// headerReader serves the reads of each record's local header (30 bytes
// at the header's offset, zipEntry.dataOffset) from a window of the file
// read in one piece. torch.save writes a record's local header right
// before its data, so the headers of a checkpoint of many small tensors
// are packed together: one pread per storage (100,000 for 100,000 tensors,
// measured at 9% of the load, plus the system time) becomes one per
// window. The window grows while misses land just past it (dense records)
// and shrinks back to a page when they do not (large tensors between
// headers), so reading ahead never reads much tensor data.
type headerReader struct {
	r      io.ReaderAt
	size   int64
	buf    []byte // the window: file bytes [off, off+len(buf))
	off    int64
	window int
}

const (
	minHeaderWindow = 4 << 10
	maxHeaderWindow = 256 << 10
)

func newHeaderReader(r io.ReaderAt, size int64) *headerReader {
	return &headerReader{r: r, size: size, window: minHeaderWindow}
}

// header returns the n file bytes at off (a few: a local header), from
// the window; they are valid until the next call.
func (h *headerReader) header(off int64, n int) ([]byte, error) {
	if off < 0 || off > h.size-int64(n) {
		return nil, io.ErrUnexpectedEOF
	}
	if off >= h.off && off+int64(n) <= h.off+int64(len(h.buf)) {
		return h.buf[off-h.off:][:n], nil
	}
	// A miss just past the window means packed headers: read more next.
	if h.buf != nil && off >= h.off+int64(len(h.buf)) && off < h.off+int64(len(h.buf))+int64(h.window) {
		h.window = min(2*h.window, maxHeaderWindow)
	} else {
		h.window = minHeaderWindow
	}
	w := int(min(int64(max(h.window, n)), h.size-off))
	if cap(h.buf) < w {
		// One buffer for every window to come: each window size
		// allocated afresh was as many bytes again of new pages (2 MiB
		// for a 10,000-tensor file).
		h.buf = make([]byte, w, max(w, int(min(maxHeaderWindow, h.size))))
	}
	h.buf = h.buf[:w]
	got, err := h.r.ReadAt(h.buf, off)
	h.buf, h.off = h.buf[:got], off
	if got < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return h.buf[:n], nil
}
