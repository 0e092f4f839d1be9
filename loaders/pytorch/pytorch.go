package pytorch

import (
	"archive/zip"
	"bytes"
	"cmp"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/safeio"
)

// Formats of the model's File and of FormatErrors.
const (
	formatZip    = "pytorch-zip"
	formatLegacy = "pytorch-legacy"
	formatAny    = "pytorch" // before the layout is known
)

// Loader reads torch.save checkpoints.
type Loader struct{}

// Name returns "pytorch".
func (Loader) Name() string { return "pytorch" }

var (
	zipMagic      = []byte("PK\x03\x04")
	emptyZipMagic = []byte("PK\x05\x06")
	// legacyMagic is the legacy format's magic number,
	// 0x1950a86a20f9469cfc6c, pickled as LONG1 (protocol 2 and later) and
	// as text LONG (protocols 0 and 1).
	legacyMagicLong1 = []byte("\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19")
	legacyMagicText  = []byte("L119547037146038801333356L\n")
)

// Sniff reports whether head looks like a torch.save checkpoint: any zip
// archive (Load says so when it is not a checkpoint), a pickle that starts
// with the legacy magic number, or a tar from torch's earliest releases.
func (Loader) Sniff(head []byte) bool {
	return bytes.HasPrefix(head, zipMagic) || bytes.HasPrefix(head, emptyZipMagic) ||
		isLegacyHead(head) || isTarHead(head)
}

// isLegacyHead reports whether head starts with the pickled legacy magic
// number: PROTO 2..5, an optional FRAME, then LONG1; or a text LONG.
func isLegacyHead(head []byte) bool {
	if bytes.HasPrefix(head, legacyMagicText) {
		return true
	}
	if len(head) < 2 || head[0] != 0x80 || head[1] < 2 || head[1] > 5 {
		return false
	}
	head = head[2:]
	if len(head) >= 9 && head[0] == 0x95 {
		head = head[9:]
	}
	return bytes.HasPrefix(head, legacyMagicLong1)
}

// tarMembers are the member names of torch's tar checkpoints, the first of
// which comes first in the file.
var tarMembers = []string{"sys_info", "pickle", "storages", "tensors"}

// isTarHead reports whether head starts with a tar header for one of
// torch's tar members (the name field, NUL-padded).
func isTarHead(head []byte) bool {
	for _, m := range tarMembers {
		if bytes.HasPrefix(head, []byte(m+"\x00")) {
			return true
		}
	}
	return false
}

// Load reads the tensor table of a checkpoint from its headers and pickle.
func (Loader) Load(r io.ReaderAt, size int64) (*accounting.Model, error) {
	if size < 0 {
		return nil, accounting.Errorf(formatAny, -1, "", "negative file size %d", size)
	}
	head := make([]byte, min(size, 512))
	n, err := safeio.ReadFullAt(r, head, 0)
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("pytorch: reading header: %w", err)
	}
	head = head[:n] // a file shorter than size fails further on
	switch {
	case bytes.HasPrefix(head, zipMagic), bytes.HasPrefix(head, emptyZipMagic):
		return loadZip(r, size)
	case isLegacyHead(head):
		return loadLegacy(r, size, head)
	case isTarHead(head) && len(head) >= 262 && string(head[257:262]) == "ustar":
		return nil, accounting.Errorf(formatAny, 0, "", "tar-based checkpoint from an early torch release: unsupported (load and re-save it with a current torch)")
	}
	// The bytes are not quoted: they are not a checkpoint's, and may be
	// anything (a link's target).
	return nil, accounting.Errorf(formatAny, 0, "", "not a torch.save checkpoint (neither a zip archive, a legacy pickle nor a tar of torch's)")
}

// loadZip reads a zip checkpoint (torch >= 1.6): <prefix>/data.pkl holds the
// pickle, <prefix>/data/<key> the bytes of each storage.
func loadZip(r io.ReaderAt, size int64) (*accounting.Model, error) {
	dir, err := readZipDir(r, size)
	if err != nil {
		return nil, accounting.Errorf(formatZip, -1, "", "reading zip central directory: %v", err)
	}
	var pklName string
	err = dir.each(func(name []byte, _ zipEntry) bool {
		if isDataPkl(name) {
			pklName = string(name)
		}
		return pklName == ""
	})
	if err == nil && pklName == "" {
		var ts string
		err = dir.each(func(name []byte, _ zipEntry) bool {
			if _, base, ok := bytes.Cut(name, []byte("/")); ok && string(base) == "model.json" {
				ts = string(name)
			}
			return ts == ""
		})
		if err == nil && ts != "" {
			// torch.jit.save of PyTorch 1.0 to 1.2: tensors described in
			// JSON, attributes in attributes.pkl.
			return nil, accounting.Errorf(formatZip, -1, "", "TorchScript archive of PyTorch 1.0-1.2 (%s, no data.pkl): unsupported (load and re-save it with a later torch)", ts)
		}
		if err == nil {
			return nil, accounting.Errorf(formatZip, -1, "", "zip archive has no data.pkl: not a torch.save checkpoint")
		}
	}
	z := &zipCheckpoint{h: newHeaderReader(r, size), size: size, prefix: strings.TrimSuffix(pklName, "data.pkl"),
		records: newRecordSet(dir.count)}
	if err == nil {
		err = dir.each(func(name []byte, e zipEntry) bool {
			if rest, ok := bytes.CutPrefix(name, []byte(z.prefix)); ok {
				z.records.add(rest, e)
			}
			return true
		})
	}
	if err != nil {
		// A read error, or a file changed since readZipDir checked it.
		return nil, accounting.Errorf(formatZip, -1, "", "reading zip central directory: %v", err)
	}
	dir = nil

	tensors, u, err := z.recordTensors("data.pkl", "", "data/")
	if err != nil {
		return nil, err
	}
	// torch.load hands an archive with a constants.pkl (TorchScript) to
	// torch.jit.load, whose unpickler resolves TorchScript's own types
	// only: no Python name in it is imported.
	_, hasConstants := z.records.byName["constants.pkl"]
	var globals []accounting.Global
	us := []*unpickler{u}
	if !hasConstants {
		globals = fileGlobals(u)
	}
	// A TorchScript archive (torch.jit.save) keeps the tensors its code
	// uses as constants in constants.pkl, a tuple, with their storages
	// under constants/ (or, from older writers, data/): a frozen or
	// mobile-optimised module and a lite-interpreter .ptl keep all their
	// weights there. They are the model's memory as much as data.pkl's
	// tensors; each is named by its position, constants.<i>[.<j>...].
	if hasConstants {
		ct, cu, err := z.recordTensors("constants.pkl", "constants", "constants/", "data/")
		if err != nil {
			return nil, err
		}
		tensors = append(tensors, ct...)
		us = append(us, cu)
	}
	// A lite-interpreter file's bytecode.pkl refers to the constants
	// again, and may serialize a tensor a second time under constants/ (a
	// quantized conv's config vector): such a storage, and only such, is
	// listed from there, named bytecode.<path>.
	if _, ok := z.records.byName["bytecode.pkl"]; ok {
		bt, bu, err := z.recordTensors("bytecode.pkl", "bytecode", "constants/", "data/")
		if err != nil {
			return nil, err
		}
		seen := make(map[string]bool, len(tensors))
		for _, t := range tensors {
			seen[t.Storage] = true
		}
		for _, t := range bt {
			if !seen[t.Storage] {
				tensors = append(tensors, t)
			}
		}
		us = append(us, bu)
	}
	gaps, err := z.unusedStorages()
	if err != nil {
		return nil, err
	}
	return &accounting.Model{Files: []accounting.File{{Format: formatZip, Globals: globals, UnreadTensors: fileUnread(us...), Gaps: gaps}}, Tensors: tensors}, nil
}

// unusedStorages returns the storage records (data/ and constants/) that
// no persistent id named: bytes torch.load reads nowhere, which a
// hand-edited or re-packed archive can carry. They are the file's
// overhead, and the unused-file-bytes finding says so.
func (z *zipCheckpoint) unusedStorages() ([]accounting.Gap, error) {
	var gaps []accounting.Gap
	add := func(name string, e zipEntry) error {
		off, err := e.dataOffset(z.h)
		if err != nil {
			return accounting.Errorf(formatZip, -1, "", "record %q: local header: %v", z.prefix+name, err)
		}
		gaps = append(gaps, accounting.Gap{Offset: off, Bytes: int64(e.csize), Record: z.prefix + name})
		return nil
	}
	for i, e := range z.records.data {
		if e.set && !e.used && e.csize > 0 {
			if err := add("data/"+strconv.Itoa(i), e); err != nil {
				return nil, err
			}
		}
	}
	for name, e := range z.records.byName {
		if !e.used && e.csize > 0 && (strings.HasPrefix(name, "data/") || strings.HasPrefix(name, "constants/")) {
			if err := add(name, e); err != nil {
				return nil, err
			}
		}
	}
	slices.SortFunc(gaps, func(a, b accounting.Gap) int { return cmp.Compare(a.Offset, b.Offset) })
	return gaps, nil
}

// zipCheckpoint is a zip checkpoint being read.
type zipCheckpoint struct {
	h       *headerReader
	size    int64
	prefix  string // the folder of its records, "archive/"
	records *recordSet
	keys    stringBlock // the storages' record names
}

// recordTensors reads the tensors of the pickle record name (under the
// prefix), named under root, whose storages are the records of the first
// of dirs that holds their key.
func (z *zipCheckpoint) recordTensors(name, root string, dirs ...string) ([]accounting.Tensor, *unpickler, error) {
	full := z.prefix + name
	e, ok := z.records.byName[name]
	if !ok {
		return nil, nil, accounting.Errorf(formatZip, -1, "", "no record %q", full)
	}
	pklOff, err := e.dataOffset(z.h)
	if err != nil {
		return nil, nil, accounting.Errorf(formatZip, -1, "", "record %q: local header: %v", full, err)
	}
	if e.usize > uint64(min(z.size, maxPickleBytes)) {
		return nil, nil, accounting.Errorf(formatZip, pklOff, "", "record %q: %d bytes, more than the file size or the %d-byte limit",
			full, e.usize, int64(maxPickleBytes))
	}
	if pklOff > z.size || e.csize > uint64(z.size-pklOff) {
		return nil, nil, accounting.Errorf(formatZip, pklOff, "", "record %q: %d bytes at offset %d run past the end of the file (%d bytes)",
			full, e.csize, pklOff, z.size)
	}
	// A stored pickle maps pickle offsets to file offsets; torch never
	// compresses it, but a re-zipped archive might.
	var rc io.Reader = io.NewSectionReader(z.h.r, pklOff, int64(e.csize))
	base := pklOff
	switch e.method {
	case zipStore:
	case zipDeflate:
		fr := flate.NewReader(rc)
		defer fr.Close()
		rc, base = fr, -1
	default:
		return nil, nil, accounting.Errorf(formatZip, pklOff, "", "record %q: unsupported compression method %d", full, e.method)
	}
	in := newPickleInput(rc, int64(e.usize))
	return zipTensors(in, base, name, root, len(z.records.data), func(id *persistentID, into *storage) error {
		return z.storage(id, into, dirs)
	})
}

// Compression methods.
const (
	zipStore   = 0
	zipDeflate = 8
)

// IsCheckpoint reports whether the zip archive z is a torch.save
// checkpoint: whether it holds the data.pkl record that Load reads, the
// first <folder>/data.pkl.
func IsCheckpoint(z *zip.Reader) bool {
	for _, f := range z.File {
		if isDataPkl([]byte(f.Name)) {
			return true
		}
	}
	return false
}

// zipTensors reads and names (under root) the tensors of the pickle
// record what, whose first byte is at file offset base (-1: compressed);
// storages is about how many storages the file holds (0: unknown), and
// storageFor finds the storage a persistent id names (into a storage of
// the unpickler's arena). The unpickler is returned for the names it
// imported.
func zipTensors(in *pickleInput, base int64, what, root string, storages int, storageFor func(*persistentID, *storage) error) ([]accounting.Tensor, *unpickler, error) {
	refs := newRefCache()
	refs.dense = make([]*storageRef, 0, min(storages, maxDenseRef))
	u := &unpickler{base: base, sizeHint: storages}
	var pidBuf persistentID
	u.persistent = func(pid any) (any, error) {
		typename, id, _, err := parsePersistentID(pid, false, &pidBuf)
		if err != nil {
			return nil, err
		}
		if id == nil {
			return nil, fmt.Errorf("persistent id of type %q (want 'storage')", typename)
		}
		if ref := refs.get(id.key); ref != nil {
			if first, _ := mul(ref.s.numel, ref.s.typ.elemBytes); sameSize(id, first) != nil {
				return nil, fmt.Errorf("%v, where an earlier persistent id gave it %d", sameSize(id, first), first)
			}
			return ref, nil
		}
		b := alloc(&u.arena.storages)
		if err := storageFor(id, &b.s); err != nil {
			return nil, err
		}
		ref := &b.ref
		ref.s = &b.s
		refs.set(id.key, ref)
		return ref, nil
	}
	v, err := u.load(in)
	in.buf = nil // the pickle's bytes: nothing refers to them now
	if err != nil {
		return nil, nil, pickleError(err, formatZip, what, base)
	}
	tensors, err := nameTensors(formatZip, root, v, in.size, refs.n)
	return tensors, u, err
}

// storage finds the record of the storage a persistent id names, in the
// first of dirs that holds it, and describes it in into.
func (z *zipCheckpoint) storage(id *persistentID, into *storage, dirs []string) error {
	var e zipEntry
	var dir string
	for _, d := range dirs {
		var ok bool
		if e, ok = z.records.get(d, id.key); ok {
			dir = d
			break
		}
	}
	if !e.set {
		return fmt.Errorf("storage %q: the archive has no record %q", id.key, z.prefix+dirs[0]+id.key)
	}
	z.records.use(dir, id.key)
	off, err := e.dataOffset(z.h)
	if err != nil {
		return fmt.Errorf("storage %q: record %q: local header: %v", id.key, z.prefix+dir+id.key, err)
	}
	// torch stores storages uncompressed. Should a record be compressed
	// anyway, what it occupies in the file is its compressed size; views
	// may still address its uncompressed bytes.
	if off > z.size || e.csize > uint64(z.size-off) || e.usize > math.MaxInt64 {
		return fmt.Errorf("storage %q: record %q (%d bytes at offset %d) runs past the end of the file (%d bytes)",
			id.key, z.prefix+dir+id.key, e.csize, off, z.size)
	}
	avail := int64(e.usize)
	if e.method == zipStore {
		avail = int64(e.csize)
	}
	if id.meta && avail == 0 {
		// torch.jit.save of a module on the meta device: the id gives
		// the storage's size, its record is empty, and torch.jit.load
		// makes meta tensors, with no data.
		*into = storage{key: z.keys.concat(dir, id.key), typ: id.typ, numel: id.numel, dataOffset: accounting.NoDataOffset}
		return nil
	}
	if err := sameSize(id, avail); err != nil {
		return fmt.Errorf("%v, record %q holds %d", err, z.prefix+dir+id.key, avail)
	}
	*into = storage{
		// The key is the record's name, copied: id.key is the pickle's
		// bytes, which the model does not keep.
		key:        z.keys.concat(dir, id.key),
		typ:        id.typ,
		numel:      id.numel,
		bytes:      int64(e.csize),
		avail:      avail,
		dataOffset: off,
	}
	return nil
}

// sameSize checks that a zip archive's persistent id gives its storage
// the size its record has. torch.load makes a storage of the id's element
// count over the record's bytes, whatever the record's size: a count that
// disagrees with the record (a file damaged, or made by hand) gives a
// storage of another size than the file holds, larger ones over memory
// past the record, so the file says two sizes and neither is taken.
func sameSize(id *persistentID, bytes int64) error {
	want, _ := mul(id.numel, id.typ.elemBytes) // checked when the id was read
	if want == bytes {
		return nil
	}
	return fmt.Errorf("storage %q: the persistent id says %d elements of %d bytes (%d bytes)", id.key, id.numel, id.typ.elemBytes, want)
}

// cachedRef returns the ref of key, made by mk on first use: a persistent
// id that names a storage again gives the same value, as in torch.
func cachedRef(refs *refCache, key string, mk func() (*storageRef, error)) (*storageRef, error) {
	if ref := refs.get(key); ref != nil {
		return ref, nil
	}
	ref, err := mk()
	if err != nil {
		return nil, err
	}
	refs.set(key, ref)
	return ref, nil
}

// pickleError turns a scanError in a pickle (named what) whose first byte
// is at file offset base (-1: not stored as is, a compressed data.pkl)
// into a FormatError at the file offset; other errors pass unchanged.
func pickleError(err error, format, what string, base int64) error {
	var se *scanError
	if !errors.As(err, &se) {
		return err
	}
	if base < 0 {
		return accounting.Errorf(format, -1, "", "%s (compressed) byte %d: %s", what, se.pos, se.msg)
	}
	return accounting.Errorf(format, base+se.pos, "", "%s: %s", what, se.msg)
}
