package decode

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"sync"
	"sync/atomic"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// storageID names a storage: tensors of one file with equal Storage share it.
type storageID struct {
	file int
	name string
}

// storage is one storage read into memory.
type storage struct {
	data []byte
	slot int64  // allocator slot size of data
	key  string // allocation site key
}

// tensorError returns an error naming tensor t's file and the problem; off
// is the file offset concerned, -1 if none.
func tensorError(m *accounting.Model, t *accounting.Tensor, off int64, msg string, args ...any) error {
	e := accounting.Errorf("", off, t.Name, msg, args...)
	if t.File >= 0 && t.File < len(m.Files) {
		e.Path, e.Format = m.Files[t.File].Path, m.Files[t.File].Format
	}
	return e
}

// readStorages reads every storage of m once, in file order, each into a
// buffer from the allocation site of the role it is charged to (the role of
// its first tensor, as the accounting charges it).
//
// The buffers are allocated first, one after the other in file order, and
// then filled by workers goroutines at once, in pieces of readPiece bytes:
// the read of a large model is mostly the kernel's work of mapping and
// clearing fresh pages and copying from the page cache, which each core
// does for its own pieces. The goroutines allocate nothing, so the heap
// profile of the load is the buffers' alone, as in a sequential read. An
// error is the one a sequential read would meet first.
//
// progress, if not nil, is called after each piece with the bytes read so
// far and the total.
func readStorages(m *accounting.Model, rows []accounting.Row, workers int, progress func(done, total int64)) (map[storageID]*storage, error) {
	files := make([]*os.File, len(m.Files))
	sizes := make([]int64, len(m.Files))
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	out := make(map[storageID]*storage)
	all := make([]storage, 0, len(m.Tensors)) // one allocation for the records
	reads := make([]storageRead, 0, len(m.Tensors))
	var stop error // the first error met before reading
	for i := range m.Tensors {
		t := &m.Tensors[i]
		id := storageID{t.File, t.Storage}
		if out[id] != nil {
			continue
		}
		if t.File < 0 || t.File >= len(m.Files) {
			stop = tensorError(m, t, -1, "file index %d out of range", t.File)
			break
		}
		if files[t.File] == nil {
			f, err := os.Open(m.Files[t.File].Path)
			if err != nil {
				stop = err
				break
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				stop = err
				break
			}
			files[t.File], sizes[t.File] = f, fi.Size()
		}
		s, err := allocStorage(m, t, sizes[t.File], storageSites[rows[i].Role])
		if err != nil {
			stop = err
			break
		}
		s.key = rows[i].Role.String()
		all = append(all, s)
		out[id] = &all[len(all)-1]
		reads = append(reads, storageRead{t: t, f: files[t.File], data: s.data})
	}
	if err := readAll(m, reads, workers, progress); err != nil {
		return nil, err
	}
	if stop != nil {
		return nil, stop
	}
	return out, nil
}

// allocStorage checks that a file of size bytes holds the storage of t and
// allocates its buffer from alloc.
func allocStorage(m *accounting.Model, t *accounting.Tensor, size int64, alloc func(int64) ([]byte, int64)) (storage, error) {
	off, n := t.DataOffset, t.StorageBytes
	switch {
	case off == accounting.NoDataOffset:
		return storage{}, tensorError(m, t, -1, "the file holds no data for it (a tensor on the meta device), so there is nothing to decode")
	case off == -1:
		return storage{}, tensorError(m, t, -1, "storage %q has no fixed offset in the file (compressed or not located by the loader), so its data cannot be read", t.Storage)
	case off < 0 || n < 0:
		return storage{}, tensorError(m, t, -1, "storage %q: bad offset %d or size %d", t.Storage, off, n)
	case n > size || off > size-n:
		return storage{}, tensorError(m, t, off, "storage %q: %d bytes at offset %d run past the end of the file (%d bytes)", t.Storage, n, off, size)
	case n > math.MaxInt:
		return storage{}, tensorError(m, t, off, "storage %q: %d bytes do not fit in memory on this platform", t.Storage, n)
	}
	if alloc == nil {
		return storage{}, tensorError(m, t, off, "storage %q: no allocation site for its role", t.Storage)
	}
	data, slot := alloc(n)
	return storage{data: data, slot: slot}, nil
}

// storageRead is one storage's buffer to fill from its file.
type storageRead struct {
	t    *accounting.Tensor
	f    io.ReaderAt
	data []byte
	err  error
}

// readPiece is the most one ReadAt call reads: small enough that two
// workers share even a single large storage, large enough that the calls
// are few.
const readPiece = 8 << 20

// readAll fills every buffer of reads, sharing the pieces among workers
// goroutines, and returns the error of the first storage that failed. It
// allocates its list of pieces and its state once (exact heap profiling
// records every allocation, TestPassAllocations counts them).
func readAll(m *accounting.Model, reads []storageRead, workers int, progress func(done, total int64)) error {
	n := 0
	var total int64
	for _, r := range reads {
		n += (len(r.data) + readPiece - 1) / readPiece
		total += int64(len(r.data))
	}
	rd := &reader{reads: reads, pieces: make([]readPieceOf, 0, n), progress: progress, total: total}
	for i, r := range reads {
		for lo := 0; lo < len(r.data); lo += readPiece {
			rd.pieces = append(rd.pieces, readPieceOf{i, lo, min(lo+readPiece, len(r.data))})
		}
	}
	helpers := min(workers, n) - 1
	rd.wg.Add(max(helpers, 0))
	for range helpers {
		go rd.work()
	}
	rd.work1()
	rd.wg.Wait()
	for i := range reads {
		r := &reads[i]
		if r.err == nil {
			continue
		}
		t, off, n := r.t, r.t.DataOffset, len(r.data)
		if errors.Is(r.err, io.EOF) {
			return tensorError(m, t, off, "storage %q: file truncated: %d bytes expected at offset %d", t.Storage, n, off)
		}
		return tensorError(m, t, off, "storage %q: %v", t.Storage, r.err)
	}
	return nil
}

// reader is the shared state of readAll's goroutines.
type reader struct {
	reads  []storageRead
	pieces []readPieceOf
	next   atomic.Int64
	mu     sync.Mutex // guards each storageRead's err, and calls of progress
	wg     sync.WaitGroup

	progress    func(done, total int64)
	done, total int64 // bytes read and to read, for progress (under mu)
}

// readPieceOf is bytes [lo, hi) of reads[r].
type readPieceOf struct{ r, lo, hi int }

func (rd *reader) work() {
	defer rd.wg.Done()
	rd.work1()
}

// work1 reads pieces until none is left.
func (rd *reader) work1() {
	for {
		k := int(rd.next.Add(1)) - 1
		if k >= len(rd.pieces) {
			return
		}
		p := rd.pieces[k]
		r := &rd.reads[p.r]
		_, err := r.f.ReadAt(r.data[p.lo:p.hi], r.t.DataOffset+int64(p.lo))
		if err == nil && rd.progress == nil {
			continue
		}
		rd.mu.Lock()
		if err != nil && r.err == nil {
			r.err = err
		}
		if rd.progress != nil {
			rd.done += int64(p.hi - p.lo)
			rd.progress(rd.done, rd.total)
		}
		rd.mu.Unlock()
	}
}

// tensorData is one tensor's bytes, in its stored dtype.
type tensorData struct {
	t     *accounting.Tensor
	dtype accounting.DType
	numel int64
	data  []byte
}

// view returns the bytes of tensor t within its storage s, checking that the
// view is contiguous, of a plain dtype, and inside the storage.
func view(m *accounting.Model, t *accounting.Tensor, s *storage) (tensorData, error) {
	d, ok := accounting.LookupDType(t.DType)
	if !ok || d.BlockElems != 1 {
		return tensorData{}, tensorError(m, t, -1, "dtype %q cannot be decoded", t.DType)
	}
	n, err := accounting.Numel(t.Shape)
	if err != nil {
		return tensorData{}, tensorError(m, t, -1, "%v", err)
	}
	if !accounting.Contiguous(t.Shape, t.Strides) {
		return tensorData{}, tensorError(m, t, -1, "strides %v of shape %v are not contiguous; decode reads contiguous tensors only", t.Strides, t.Shape)
	}
	nbytes, err := d.Bytes(n)
	if err != nil {
		return tensorData{}, tensorError(m, t, -1, "%v", err)
	}
	size := int64(len(s.data))
	if t.ViewOffset < 0 || t.ViewOffset > size || nbytes > size-t.ViewOffset {
		return tensorData{}, tensorError(m, t, -1, "view of %d bytes at offset %d does not fit its storage %q of %d bytes", nbytes, t.ViewOffset, t.Storage, size)
	}
	return tensorData{t: t, dtype: d, numel: n, data: s.data[t.ViewOffset : t.ViewOffset+nbytes]}, nil
}

// scalar returns the single element of a one-element tensor as float64.
func scalar(m *accounting.Model, td tensorData) (float64, error) {
	if td.numel != 1 {
		return 0, tensorError(m, td.t, -1, "want a single value, have shape %v", td.t.Shape)
	}
	b := td.data
	switch td.dtype.Name {
	case "float32":
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), nil
	case "float64":
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	case "float16":
		return float64(halfToFloat(binary.LittleEndian.Uint16(b))), nil
	case "bfloat16":
		return float64(bfloatToFloat(binary.LittleEndian.Uint16(b))), nil
	case "int64":
		return float64(int64(binary.LittleEndian.Uint64(b))), nil
	case "int32":
		return float64(int32(binary.LittleEndian.Uint32(b))), nil
	case "int8":
		return float64(int8(b[0])), nil
	case "uint8":
		return float64(b[0]), nil
	}
	return 0, tensorError(m, td.t, -1, "dtype %q is not a scalar type decode reads", td.dtype.Name)
}

// halfToFloat widens an IEEE 754 binary16 value exactly.
func halfToFloat(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal: rebias the exponent from 15 to 127
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	}
	// Zero or subnormal: mant × 2^-24, exact in float32.
	return math.Float32frombits(sign | math.Float32bits(float32(mant)*0x1p-24))
}

// bfloatToFloat widens a bfloat16 value: its bits are a float32's top half.
func bfloatToFloat(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }
