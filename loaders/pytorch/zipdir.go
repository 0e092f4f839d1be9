package pytorch

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Why the loader reads zip central directories itself: a checkpoint's
// audit needs, of each record, only where its bytes are and how many there
// are, and torch.save writes a record per storage, so the central
// directory of a checkpoint of many tensors is as long as its tensor
// table. archive/zip builds a File of about 200 bytes for each record,
// five allocations with its name, extra field and local-header read, and
// checks every name for UTF-8. This reader walks the directory in pieces
// of 64 KiB, once to check it and once to list the records, and keeps a
// 32-byte zipEntry per record (in a slice, for torch's data/<n>), nothing
// after the load.
// Measured on a 10,000-tensor torch.save file (bench/pytorch, callgrind,
// whole process): 180.8 M -> 157.9 M instructions; allocations per tensor
// 9.4 -> 4.4, bytes 1,678 -> 1,468 (fresh pages while the collector is
// off: page faults were a third of the process's time). It reads only
// what the loader uses (sizes, local header offsets, the method; no
// times, comments or attributes) and checks what it reads: the directory
// inside the file and before its end record, its records inside the
// directory and as many as the end record says, so what it allocates is
// bounded by the file's size. Unlike archive/zip it does not look for a
// zip preceded by other data (a self-extracting archive): torch writes
// none, and such a file is refused.

// Signatures and fixed sizes of the zip structures read (APPNOTE 4.3).
const (
	zipLocalSig  = 0x04034b50
	zipCentrSig  = 0x02014b50
	zipEndSig    = 0x06054b50
	zip64EndSig  = 0x06064b50
	zip64LocSig  = 0x07064b50
	zipLocalLen  = 30
	zipCentrLen  = 46
	zipEndLen    = 22
	zip64EndLen  = 56
	zip64LocLen  = 20
	zipMaxSearch = zipEndLen + math.MaxUint16 // the end record and its comment
)

// zipEntry is what the loader uses of one record.
type zipEntry struct {
	header uint64 // the local header's file offset
	csize  uint64 // bytes in the file
	usize  uint64 // bytes uncompressed
	method uint16 // 0: stored, 8: deflated
	set    bool   // in a recordSet's slice: the record exists
	used   bool   // a persistent id named it (see recordSet.use)
}

// zipDir is a zip archive's central directory, read in pieces into one
// buffer each time it is walked: for 100,000 tensors it is 7 MB, which
// read whole were as many fresh pages (66 bytes per tensor).
type zipDir struct {
	r     io.ReaderAt
	off   int64 // its file offset
	size  int64 // its bytes
	count int   // its records
	buf   []byte
}

// zipDirChunk is the bytes of the directory read at once; a header
// larger than that (names, extra fields and comments of up to 64 KiB
// each) grows the buffer.
const zipDirChunk = 64 << 10

// errZipFormat is archive/zip's error for what is not a zip archive, which
// the messages of earlier releases quote.
var errZipFormat = zip.ErrFormat

// readZipDir finds and checks the central directory of the zip archive r
// of size bytes.
func readZipDir(r io.ReaderAt, size int64) (*zipDir, error) {
	end, endAt, err := findZipEnd(r, size)
	if err != nil {
		return nil, err
	}
	records := uint64(binary.LittleEndian.Uint16(end[10:]))
	dirSize := uint64(binary.LittleEndian.Uint32(end[12:]))
	dirOff := uint64(binary.LittleEndian.Uint32(end[16:]))
	zip64 := false
	if records == math.MaxUint16 || dirSize == math.MaxUint32 || dirOff == math.MaxUint32 {
		// Possibly zip64: a locator right before the end record names
		// the zip64 end record, which holds the 64-bit values.
		if r64, s64, o64, at, ok, err := readZip64End(r, endAt); err != nil {
			return nil, err
		} else if ok {
			records, dirSize, dirOff, endAt, zip64 = r64, s64, o64, at, true
		}
	}
	// The directory lies before its end record; a record takes at least
	// zipCentrLen bytes of it.
	if dirOff > uint64(endAt) || dirSize > uint64(endAt)-dirOff {
		return nil, fmt.Errorf("central directory (%d bytes at offset %d) is not before its end record (at %d)", dirSize, dirOff, endAt)
	}
	if records > dirSize/zipCentrLen {
		return nil, fmt.Errorf("%d records in a %d-byte central directory", records, dirSize)
	}
	d := &zipDir{r: r, off: int64(dirOff), size: int64(dirSize)}
	if err := d.each(func([]byte, zipEntry) bool { d.count++; return true }); err != nil {
		return nil, err
	}
	// Without zip64 the end record counts records modulo 65536, and some
	// writers leave it at that for larger archives.
	if uint64(d.count) != records && (zip64 || uint16(d.count) != uint16(records)) {
		return nil, fmt.Errorf("central directory holds %d records, its end record says %d", d.count, records)
	}
	return d, nil
}

// findZipEnd returns the end of central directory record and its offset:
// the last signature that leaves room for the record and its comment, in
// the file's last 1 KiB or, failing that, its last 64 KiB.
func findZipEnd(r io.ReaderAt, size int64) ([]byte, int64, error) {
	for _, n := range []int64{1024, zipMaxSearch} {
		n = min(n, size)
		buf := make([]byte, n)
		if _, err := r.ReadAt(buf, size-n); err != nil && err != io.EOF {
			return nil, 0, err
		}
		for i := len(buf) - zipEndLen; i >= 0; i-- {
			if binary.LittleEndian.Uint32(buf[i:]) == zipEndSig &&
				i+zipEndLen+int(binary.LittleEndian.Uint16(buf[i+20:])) <= len(buf) {
				return buf[i : i+zipEndLen], size - n + int64(i), nil
			}
		}
		if n == size {
			break
		}
	}
	return nil, 0, errZipFormat
}

// readZip64End reads the zip64 end record that a locator right before the
// end record at endAt names; ok is false when there is no locator.
func readZip64End(r io.ReaderAt, endAt int64) (records, dirSize, dirOff uint64, at int64, ok bool, err error) {
	if endAt < zip64LocLen {
		return 0, 0, 0, 0, false, nil
	}
	var loc [zip64LocLen]byte
	if _, err := r.ReadAt(loc[:], endAt-zip64LocLen); err != nil {
		return 0, 0, 0, 0, false, err
	}
	if binary.LittleEndian.Uint32(loc[:]) != zip64LocSig {
		return 0, 0, 0, 0, false, nil
	}
	if binary.LittleEndian.Uint32(loc[4:]) != 0 || binary.LittleEndian.Uint32(loc[16:]) != 1 {
		return 0, 0, 0, 0, false, errors.New("multi-disk zip64 archive")
	}
	off := binary.LittleEndian.Uint64(loc[8:])
	if off > uint64(endAt-zip64LocLen) || uint64(endAt-zip64LocLen)-off < zip64EndLen {
		return 0, 0, 0, 0, false, fmt.Errorf("zip64 end record at %d is not before its locator", off)
	}
	var end [zip64EndLen]byte
	if _, err := r.ReadAt(end[:], int64(off)); err != nil {
		return 0, 0, 0, 0, false, err
	}
	if binary.LittleEndian.Uint32(end[:]) != zip64EndSig {
		return 0, 0, 0, 0, false, errors.New("zip64 end record has a bad signature")
	}
	return binary.LittleEndian.Uint64(end[32:]), binary.LittleEndian.Uint64(end[40:]),
		binary.LittleEndian.Uint64(end[48:]), int64(off), true, nil
}

// centralHeader parses the central directory header at the start of b, at
// directory byte p: the record's name (aliasing b), what the loader uses
// of it and the header's length. need > 0 asks for that many bytes of b
// first.
func centralHeader(b []byte, p int64) (name []byte, e zipEntry, total, need int, err error) {
	if len(b) < zipCentrLen {
		return nil, e, 0, zipCentrLen, nil
	}
	if binary.LittleEndian.Uint32(b) != zipCentrSig {
		return nil, e, 0, 0, fmt.Errorf("no central directory header at directory byte %d", p)
	}
	nameLen := int(binary.LittleEndian.Uint16(b[28:]))
	extraLen := int(binary.LittleEndian.Uint16(b[30:]))
	commentLen := int(binary.LittleEndian.Uint16(b[32:]))
	total = zipCentrLen + nameLen + extraLen + commentLen
	if total > len(b) {
		return nil, e, 0, total, nil
	}
	name = b[zipCentrLen : zipCentrLen+nameLen]
	e = zipEntry{
		method: binary.LittleEndian.Uint16(b[10:]),
		csize:  uint64(binary.LittleEndian.Uint32(b[20:])),
		usize:  uint64(binary.LittleEndian.Uint32(b[24:])),
		header: uint64(binary.LittleEndian.Uint32(b[42:])),
	}
	// A field at its maximum is in the zip64 extra field (id 1), which
	// holds, in this order, those of the sizes and offset that are.
	if e.usize == math.MaxUint32 || e.csize == math.MaxUint32 || e.header == math.MaxUint32 {
		extra := b[zipCentrLen+nameLen : zipCentrLen+nameLen+extraLen]
		for len(extra) >= 4 {
			id, n := binary.LittleEndian.Uint16(extra), int(binary.LittleEndian.Uint16(extra[2:]))
			if n > len(extra)-4 {
				break
			}
			field := extra[4 : 4+n]
			if id == 1 {
				for _, v := range []*uint64{&e.usize, &e.csize, &e.header} {
					if *v != math.MaxUint32 {
						continue
					}
					if len(field) < 8 {
						return nil, e, 0, 0, fmt.Errorf("record %q: zip64 extra field too short", clip(string(name)))
					}
					*v, field = binary.LittleEndian.Uint64(field), field[8:]
				}
				break
			}
			extra = extra[4+n:]
		}
	}
	return name, e, total, 0, nil
}

// each calls f with the name and entry of each record, in order, until f
// returns false. A name is valid during its call only.
func (d *zipDir) each(f func(name []byte, e zipEntry) bool) error {
	var win []byte // bytes read and not parsed, at directory byte pos
	var pos, read int64
	for pos < d.size {
		name, e, total, need, err := centralHeader(win, pos)
		if err != nil {
			return err
		}
		if need > 0 {
			if int64(need) > d.size-pos {
				return fmt.Errorf("central directory header at directory byte %d runs past the directory", pos)
			}
			// Move what is left to the front and read more: a chunk,
			// or the whole header.
			if cap(d.buf) < need {
				d.buf = make([]byte, 0, max(need, int(min(d.size, zipDirChunk))))
			}
			n := copy(d.buf[:cap(d.buf)], win)
			more := min(int64(cap(d.buf)-n), d.size-read)
			got, err := d.r.ReadAt(d.buf[n:n+int(more)], d.off+read)
			if int64(got) < more {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
			read += more
			win = d.buf[:n+int(more)]
			continue
		}
		if !f(name, e) {
			return nil
		}
		win, pos = win[total:], pos+int64(total)
	}
	return nil
}

// dataOffset returns the file offset of the record's first byte, after
// its local header, which it reads (through h: torch.save packs a record's
// header right before its data).
func (e *zipEntry) dataOffset(h *headerReader) (int64, error) {
	if e.header > math.MaxInt64-zipLocalLen {
		return 0, errZipFormat
	}
	b, err := h.header(int64(e.header), zipLocalLen)
	if err != nil {
		return 0, err
	}
	if binary.LittleEndian.Uint32(b) != zipLocalSig {
		return 0, errZipFormat
	}
	n := int64(binary.LittleEndian.Uint16(b[26:])) + int64(binary.LittleEndian.Uint16(b[28:]))
	return int64(e.header) + zipLocalLen + n, nil
}

// isDataPkl reports whether a record's name is <folder>/data.pkl, the
// pickle of a zip checkpoint: torch names the archive's one folder after
// the file's stem ("archive" for older releases).
func isDataPkl(name []byte) bool {
	dir, base, ok := bytes.Cut(name, []byte("/"))
	return ok && len(dir) > 0 && string(base) == "data.pkl"
}
