package pytorch

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"testing"
)

// pb writes protocol-2 pickles opcode by opcode, the way torch.save's pickler
// lays them out, so tests can build checkpoints (good and bad) in memory.
type pb struct{ b bytes.Buffer }

func newPickle() *pb {
	p := &pb{}
	p.b.Write([]byte{0x80, 2}) // PROTO 2
	return p
}

func (p *pb) raw(b ...byte) *pb { p.b.Write(b); return p }

func (p *pb) str(s string) *pb {
	p.b.WriteByte('X') // BINUNICODE
	p.b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(s))))
	p.b.WriteString(s)
	return p
}

func (p *pb) int(n int) *pb {
	p.b.WriteByte('J') // BININT
	p.b.Write(binary.LittleEndian.AppendUint32(nil, uint32(int32(n))))
	return p
}

func (p *pb) global(module, name string) *pb {
	p.b.WriteString("c" + module + "\n" + name + "\n")
	return p
}

func (p *pb) mark() *pb  { return p.raw('(') }
func (p *pb) tuple() *pb { return p.raw('t') }

func (p *pb) ints(ns ...int) *pb {
	p.mark()
	for _, n := range ns {
		p.int(n)
	}
	return p.tuple()
}

// odict pushes an empty collections.OrderedDict.
func (p *pb) odict() *pb { return p.global("collections", "OrderedDict").raw(')', 'R') }

// storage pushes the storage a persistent id names: the zip form, or with
// legacy set the 6-field legacy form (view nil or view_key, offset, size).
func (p *pb) storage(class, key string, numel int, legacy bool, view ...any) *pb {
	p.mark().str("storage").global("torch", class).str(key).str("cpu").int(numel)
	if legacy {
		if view == nil {
			p.raw('N')
		} else {
			p.mark().str(view[0].(string)).int(view[1].(int)).int(view[2].(int)).tuple()
		}
	}
	return p.tuple().raw('Q') // BINPERSID
}

// tensor pushes _rebuild_tensor_v2(storage, offset, size, stride, False,
// OrderedDict()); the storage must be pushed by storage first.
func (p *pb) tensorOn(storage func(*pb), offset int, size, stride []int) *pb {
	p.global("torch._utils", "_rebuild_tensor_v2").mark()
	storage(p)
	p.int(offset).ints(size...).ints(stride...).raw(0x89).odict()
	return p.tuple().raw('R')
}

// tensor pushes a contiguous tensor over a whole zip storage.
func (p *pb) tensor(class, key string, size ...int) *pb {
	numel := 1
	stride := make([]int, len(size))
	for i := len(size) - 1; i >= 0; i-- {
		stride[i] = numel
		numel *= size[i]
	}
	return p.tensorOn(func(p *pb) { p.storage(class, key, numel, false) }, 0, size, stride)
}

func (p *pb) stop() []byte {
	p.b.WriteByte('.')
	return p.b.Bytes()
}

// record is one zip entry.
type record struct {
	name string
	data []byte
}

// buildZip writes stored (uncompressed) records, as torch does.
func buildZip(t testing.TB, records ...record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, r := range records {
		f, err := w.CreateHeader(&zip.FileHeader{Name: r.name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(r.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkpoint is a zip checkpoint holding pkl and storages named data/<key>.
func checkpoint(t testing.TB, pkl []byte, storages map[string]int) []byte {
	t.Helper()
	recs := []record{{"archive/data.pkl", pkl}}
	for key, n := range storages {
		recs = append(recs, record{"archive/data/" + key, make([]byte, n)})
	}
	recs = append(recs, record{"archive/version", []byte("3\n")})
	return buildZip(t, recs...)
}

// legacyStorage is one storage of a legacy file: the count written before
// its bytes and the bytes.
type legacyStorage struct {
	count int64
	bytes int
}

// legacyCheckpoint writes the legacy layout around the object pickle main.
func legacyCheckpoint(main []byte, keys []string, storages []legacyStorage) []byte {
	var buf bytes.Buffer
	buf.Write(legacyHeader())
	buf.Write(main)
	kp := newPickle().raw(']').mark()
	for _, k := range keys {
		kp.str(k)
	}
	buf.Write(kp.raw('e').stop())
	for _, s := range storages {
		buf.Write(binary.LittleEndian.AppendUint64(nil, uint64(s.count)))
		buf.Write(make([]byte, s.bytes))
	}
	return buf.Bytes()
}

// legacyHeader is the three pickles before a legacy checkpoint's object:
// magic number, protocol version and sys_info.
func legacyHeader() []byte {
	var buf bytes.Buffer
	buf.Write(newPickle().raw(legacyMagicLong1...).stop())
	buf.Write(newPickle().raw('M', 0xe9, 0x03).stop()) // 1001
	buf.Write(newPickle().raw('}').str("little_endian").raw(0x88, 's').stop())
	return buf.Bytes()
}
