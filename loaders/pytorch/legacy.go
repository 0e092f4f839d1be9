package pytorch

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"sync"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/safeio"
)

// legacyMagic is the number a legacy checkpoint's first pickle holds, made
// on first use.
var legacyMagic = sync.OnceValue(func() *big.Int {
	m, _ := new(big.Int).SetString("1950a86a20f9469cfc6c", 16)
	return m
})

// legacyProtocol is the version its second pickle holds.
const legacyProtocol = 1001

// legacyReader reads the pickles of a legacy checkpoint in sequence, then
// the storages' element counts.
type legacyReader struct {
	r    io.ReaderAt
	size int64
	// in reads the five pickles, one after the other, from a buffer that
	// starts as the file's first bytes. It reads no further than the scan
	// needs: storage data follows the last pickle.
	in  *pickleInput
	pos int64 // file offset of the next pickle, then of the next storage
	us  []*unpickler
}

// loadLegacy reads a checkpoint saved with
// _use_new_zipfile_serialization=False: five pickles (magic number,
// protocol version, sys_info, the object, the list of storage keys), then
// for each key in that order an int64 little-endian element count and the
// storage's bytes. head holds the file's first bytes, already read.
func loadLegacy(r io.ReaderAt, size int64, head []byte) (*accounting.Model, error) {
	rest := int64(len(head))
	in := newPickleInput(io.NewSectionReader(r, rest, size-rest), size-rest)
	in.buf, in.exact = head, true
	l := &legacyReader{r: r, size: size, in: in}
	magic, err := l.next("magic number", nil)
	if err != nil {
		return nil, err
	}
	if m, ok := magic.(*big.Int); !ok || m.Cmp(legacyMagic()) != 0 {
		return nil, accounting.Errorf(formatLegacy, 0, "", "magic number is %s, not %#x", typeName(magic), legacyMagic())
	}
	at := l.pos
	version, err := l.next("protocol version", nil)
	if err != nil {
		return nil, err
	}
	if v, ok := version.(int); !ok || v != legacyProtocol {
		return nil, accounting.Errorf(formatLegacy, at, "", "protocol version is %v, not %d", version, legacyProtocol)
	}
	if _, err := l.next("sys_info", nil); err != nil {
		return nil, err
	}

	var ordered []*storage // in first-reference order
	storages := map[string]*storage{}
	refs := newRefCache() // by root or view key, which share one namespace in torch
	var pidBuf persistentID
	root, err := l.next("object", func(pid any) (any, error) {
		typename, id, fields, err := parsePersistentID(pid, true, &pidBuf)
		if err != nil {
			return nil, err
		}
		switch typename {
		case "storage":
		case "module":
			// ('module', class, source_file, source): torch.save(model)
			// records each module class's source; the pickle uses the class.
			if len(fields) < 2 {
				return nil, fmt.Errorf("module persistent id has %d fields", len(fields))
			}
			return fields[1], nil
		default:
			return nil, fmt.Errorf("persistent id of type %q (want 'storage' or 'module')", typename)
		}
		s, ok := storages[id.key]
		if !ok {
			s = &storage{key: id.key, typ: id.typ, numel: id.numel, dataOffset: -1}
			storages[id.key] = s
			ordered = append(ordered, s)
		}
		return legacyRef(s, id, refs)
	})
	if err != nil {
		return nil, err
	}
	keyList, err := l.next("storage key list", nil)
	if err != nil {
		return nil, err
	}
	keys, ok := sequence(keyList)
	if !ok {
		return nil, accounting.Errorf(formatLegacy, l.pos, "", "storage key list is %s, not a list", typeName(keyList))
	}
	for _, k := range keys {
		key, ok := asString(k)
		if !ok {
			return nil, accounting.Errorf(formatLegacy, l.pos, "", "storage key list holds %s, not a str", typeName(k))
		}
		s, ok := storages[key]
		if !ok {
			return nil, accounting.Errorf(formatLegacy, l.pos, "", "storage key %q is listed but no tensor uses it", key)
		}
		if s.dataOffset >= 0 {
			return nil, accounting.Errorf(formatLegacy, l.pos, "", "storage key %q is listed twice", key)
		}
		if err := l.storageData(s); err != nil {
			return nil, err
		}
	}
	for _, s := range ordered {
		if s.dataOffset < 0 {
			return nil, accounting.Errorf(formatLegacy, l.pos, "", "storage %q is missing from the storage key list", s.key)
		}
	}
	tensors, err := nameTensors(formatLegacy, "", root, size, len(storages))
	if err != nil {
		return nil, err
	}
	return &accounting.Model{Files: []accounting.File{{Format: formatLegacy, Globals: fileGlobals(l.us...), UnreadTensors: fileUnread(l.us...)}}, Tensors: tensors}, nil
}

// legacyRef returns the storage or storage slice a persistent id names;
// the same key always gives the same value.
func legacyRef(s *storage, id *persistentID, refs *refCache) (*storageRef, error) {
	if id.view == nil {
		return cachedRef(refs, id.key, func() (*storageRef, error) { return &storageRef{s: s}, nil })
	}
	// view_metadata = (view_key, offset, size), in elements of s.
	v, ok := sequence(id.view)
	if !ok || len(v) != 3 {
		return nil, fmt.Errorf("storage %q: view metadata is %s, not a 3-tuple", id.key, typeName(id.view))
	}
	viewKey, ok1 := asString(v[0])
	offset, ok2 := v[1].(int)
	n, ok3 := v[2].(int)
	if !ok1 || !ok2 || !ok3 || offset < 0 || n < 0 {
		return nil, fmt.Errorf("storage %q: bad view metadata", id.key)
	}
	if end, ok := add(int64(offset), int64(n)); !ok || end > s.numel {
		return nil, fmt.Errorf("storage %q: view %q (offset %d, %d elements) runs past its %d elements", id.key, viewKey, offset, n, s.numel)
	}
	return cachedRef(refs, viewKey, func() (*storageRef, error) {
		return &storageRef{s: s, view: true, start: int64(offset), numel: int64(n)}, nil
	})
}

// next reads the pickle at l.pos and moves past it.
func (l *legacyReader) next(what string, persistent func(any) (any, error)) (any, error) {
	start := l.pos
	u := &unpickler{base: start, persistent: persistent}
	v, err := u.load(l.in)
	if err != nil {
		return nil, pickleError(err, formatLegacy, what+" pickle", start)
	}
	l.pos += u.bytes
	l.us = append(l.us, u)
	return v, nil
}

// storageData reads the element count before a storage's bytes at l.pos and
// places the storage there.
func (l *legacyReader) storageData(s *storage) error {
	fail := func(msg string, args ...any) error {
		return accounting.Errorf(formatLegacy, l.pos, "", "storage %q: "+msg, append([]any{s.key}, args...)...)
	}
	if l.size-l.pos < 8 {
		return fail("element count runs past the end of the file")
	}
	var b [8]byte
	if _, err := safeio.ReadFullAt(l.r, b[:], l.pos); err != nil {
		return fail("reading element count: %v", err)
	}
	count := int64(binary.LittleEndian.Uint64(b[:]))
	if count != s.numel {
		return fail("%d elements in the file, %d in the pickle", count, s.numel)
	}
	// numel*elemBytes was checked for overflow with the persistent id.
	n := count * s.typ.elemBytes
	data := l.pos + 8
	if n > l.size-data {
		return fail("%d bytes at offset %d run past the end of the file (%d bytes)", n, data, l.size)
	}
	s.bytes, s.avail, s.dataOffset = n, n, data
	l.pos = data + n
	return nil
}
