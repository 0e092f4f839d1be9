package pytorch

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
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
	zr, err := zip.NewReader(newHeaderReader(r, size), size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, accounting.Errorf(formatZip, -1, "", "reading zip central directory: %v", err)
	}
	pkl := dataPkl(zr)
	if pkl == nil {
		for _, f := range zr.File {
			if _, base, ok := strings.Cut(f.Name, "/"); ok && base == "model.json" {
				// torch.jit.save of PyTorch 1.0 to 1.2: tensors described in
				// JSON, attributes in attributes.pkl.
				return nil, accounting.Errorf(formatZip, -1, "", "TorchScript archive of PyTorch 1.0-1.2 (%s, no data.pkl): unsupported (load and re-save it with a later torch)", f.Name)
			}
		}
		return nil, accounting.Errorf(formatZip, -1, "", "zip archive has no data.pkl: not a torch.save checkpoint")
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	records := newRecordSet(len(zr.File))
	for _, f := range zr.File {
		if name, ok := strings.CutPrefix(f.Name, prefix); ok {
			records.add(name, f)
		}
	}

	tensors, u, err := recordTensors(pkl, size, "", func(id *persistentID, into *storage) error {
		return zipStorage(records, size, prefix, id, into, "data/")
	})
	if err != nil {
		return nil, err
	}
	// torch.load hands an archive with a constants.pkl (TorchScript) to
	// torch.jit.load, whose unpickler resolves TorchScript's own types
	// only: no Python name in it is imported.
	var globals []accounting.Global
	if records.byName["constants.pkl"] == nil {
		globals = fileGlobals(u)
	}
	// A TorchScript archive (torch.jit.save) keeps the tensors its code
	// uses as constants in constants.pkl, a tuple, with their storages
	// under constants/ (or, from older writers, data/): a frozen or
	// mobile-optimised module and a lite-interpreter .ptl keep all their
	// weights there. They are the model's memory as much as data.pkl's
	// tensors; each is named by its position, constants.<i>[.<j>...].
	if c := records.byName["constants.pkl"]; c != nil {
		ct, _, err := recordTensors(c, size, "constants", func(id *persistentID, into *storage) error {
			return zipStorage(records, size, prefix, id, into, "constants/", "data/")
		})
		if err != nil {
			return nil, err
		}
		tensors = append(tensors, ct...)
	}
	// A lite-interpreter file's bytecode.pkl refers to the constants
	// again, and may serialize a tensor a second time under constants/ (a
	// quantized conv's config vector): such a storage, and only such, is
	// listed from there, named bytecode.<path>.
	if b := records.byName["bytecode.pkl"]; b != nil {
		bt, _, err := recordTensors(b, size, "bytecode", func(id *persistentID, into *storage) error {
			return zipStorage(records, size, prefix, id, into, "constants/", "data/")
		})
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
	}
	return &accounting.Model{Files: []accounting.File{{Format: formatZip, Globals: globals}}, Tensors: tensors}, nil
}

// recordTensors reads the tensors of one pickle record of a zip archive,
// named under root; storageFor finds the storage a persistent id names.
func recordTensors(pkl *zip.File, size int64, root string, storageFor func(*persistentID, *storage) error) ([]accounting.Tensor, *unpickler, error) {
	pklOff, err := pkl.DataOffset()
	if err != nil {
		return nil, nil, accounting.Errorf(formatZip, -1, "", "record %q: local header: %v", pkl.Name, err)
	}
	if pkl.UncompressedSize64 > uint64(min(size, maxPickleBytes)) {
		return nil, nil, accounting.Errorf(formatZip, pklOff, "", "record %q: %d bytes, more than the file size or the %d-byte limit",
			pkl.Name, pkl.UncompressedSize64, int64(maxPickleBytes))
	}
	rc, err := pkl.Open()
	if err != nil {
		return nil, nil, accounting.Errorf(formatZip, pklOff, "", "record %q: %v", pkl.Name, err)
	}
	defer rc.Close()
	// A stored pickle maps pickle offsets to file offsets; torch never
	// compresses it, but a re-zipped archive might.
	base := pklOff
	if pkl.Method != zip.Store {
		base = -1
	}
	in := newPickleInput(rc, int64(pkl.UncompressedSize64))
	return zipTensors(in, base, path.Base(pkl.Name), root, storageFor)
}

// IsCheckpoint reports whether the zip archive z is a torch.save
// checkpoint: whether it holds the data.pkl record that Load reads.
func IsCheckpoint(z *zip.Reader) bool {
	return dataPkl(z) != nil
}

// dataPkl returns the pickle record of a zip checkpoint, nil if there is
// none: the first <folder>/data.pkl. torch names the archive's one folder
// after the file's stem ("archive" for older releases); data.pkl is its
// first record.
func dataPkl(z *zip.Reader) *zip.File {
	for _, f := range z.File {
		dir, base, ok := strings.Cut(f.Name, "/")
		if ok && dir != "" && base == "data.pkl" {
			return f
		}
	}
	return nil
}

// zipTensors reads and names (under root) the tensors of the pickle
// record what, whose first byte is at file offset base (-1: compressed);
// storageFor finds the storage a persistent id names (into a storage of
// the unpickler's arena). The unpickler is
// returned for the names it imported.
func zipTensors(in *pickleInput, base int64, what, root string, storageFor func(*persistentID, *storage) error) ([]accounting.Tensor, *unpickler, error) {
	refs := newRefCache()
	u := &unpickler{base: base}
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
	if err != nil {
		return nil, nil, pickleError(err, formatZip, what, base)
	}
	tensors, err := nameTensors(formatZip, root, v, in.size, refs.n)
	return tensors, u, err
}

// zipStorage finds the record of the storage a persistent id names, in the
// first of dirs that holds it, and describes it in into.
func zipStorage(records *recordSet, size int64, prefix string, id *persistentID, into *storage, dirs ...string) error {
	var name string
	var f *zip.File
	for _, d := range dirs {
		if f = records.get(d, id.key); f != nil {
			name = f.Name[len(prefix):] // d + id.key, without a copy
			break
		}
	}
	if f == nil {
		return fmt.Errorf("storage %q: the archive has no record %q", id.key, prefix+dirs[0]+id.key)
	}
	off, err := f.DataOffset()
	if err != nil {
		return fmt.Errorf("storage %q: record %q: local header: %v", id.key, f.Name, err)
	}
	// torch stores storages uncompressed. Should a record be compressed
	// anyway, what it occupies in the file is its compressed size; views
	// may still address its uncompressed bytes.
	if off < 0 || off > size || f.CompressedSize64 > uint64(size-off) || f.UncompressedSize64 > math.MaxInt64 {
		return fmt.Errorf("storage %q: record %q (%d bytes at offset %d) runs past the end of the file (%d bytes)",
			id.key, f.Name, f.CompressedSize64, off, size)
	}
	avail := int64(f.UncompressedSize64)
	if f.Method == zip.Store {
		avail = int64(f.CompressedSize64)
	}
	*into = storage{
		key:        name,
		typ:        id.typ,
		bytes:      int64(f.CompressedSize64),
		avail:      avail,
		dataOffset: off,
	}
	return nil
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
