package pytorch

import "io"

// headerReader serves the small reads archive/zip makes for the local
// header of each record (zip.File.DataOffset: 30 bytes at the header's
// offset) from a window of the file read in one piece. torch.save writes a
// record's local header right before its data, so the headers of a
// checkpoint of many small tensors are packed together: one pread per
// storage (100,000 for 100,000 tensors, measured at 9% of the load, plus
// the system time) becomes one per window. The window grows while misses
// land just past it (dense records) and shrinks back to a page when they do
// not (large tensors between headers), so reading ahead never reads much
// tensor data. Larger reads (the central directory, the pickle) pass
// through.
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
	smallRead       = 1024
)

func newHeaderReader(r io.ReaderAt, size int64) *headerReader {
	return &headerReader{r: r, size: size, window: minHeaderWindow}
}

func (h *headerReader) ReadAt(p []byte, off int64) (int, error) {
	if len(p) > smallRead || off < 0 || off >= h.size {
		return h.r.ReadAt(p, off)
	}
	end := off + int64(len(p))
	if off >= h.off && end <= h.off+int64(len(h.buf)) {
		return copy(p, h.buf[off-h.off:]), nil
	}
	// A miss just past the window means packed headers: read more next.
	if h.buf != nil && off >= h.off+int64(len(h.buf)) && off < h.off+int64(len(h.buf))+int64(h.window) {
		h.window = min(2*h.window, maxHeaderWindow)
	} else {
		h.window = minHeaderWindow
	}
	n := int(min(int64(h.window), h.size-off))
	if cap(h.buf) < n {
		// One buffer for every window to come: each window size
		// allocated afresh was as many bytes again of new pages (2 MiB
		// for a 10,000-tensor file).
		h.buf = make([]byte, n, max(n, int(min(maxHeaderWindow, h.size))))
	}
	h.buf = h.buf[:n]
	got, err := h.r.ReadAt(h.buf, off)
	h.buf, h.off = h.buf[:got], off
	if got >= len(p) {
		return copy(p, h.buf), nil
	}
	c := copy(p, h.buf)
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return c, err
}
