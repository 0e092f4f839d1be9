package pytorch

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// Hostile pickles (issue 10), each built here: what they must do, and that
// the memory they take stays a small multiple of their size plus a constant.

// allocLimit is what loading an input of n bytes may allocate in total:
// the constant covers the zip reader and the tables sized up front.
func allocLimit(n int) uint64 { return 32<<20 + 256*uint64(n) }

// loadAllocs loads data and returns the model, the bytes allocated
// meanwhile and the error.
func loadAllocs(data []byte) (*accounting.Model, uint64, error) {
	before := heapAllocs()
	m, err := loadBytes(data)
	return m, heapAllocs() - before, err
}

// nested builds the same shape with a simple recursive layout: dict,
// key, dict, key, ..., value, then SETITEM depth times.
func nested(keyLen, depth int, withTensor bool) []byte {
	p := newPickle()
	for i := range depth {
		p.raw('}')
		if i == 0 {
			p.str(strings.Repeat("k", keyLen)).raw('q', 0)
		} else {
			p.raw('h', 0) // the key again, through the memo
		}
	}
	if withTensor {
		p.tensor("FloatStorage", "0", 4)
	} else {
		p.raw('N')
	}
	for range depth {
		p.raw('s')
	}
	return p.stop()
}

// TestDeepMemoKeyReuse: one 4 KiB key reused through the memo at depth 999
// took 2 GB to name (no tensor at all); a tensor at the bottom is named
// once, and 64 KiB keys exceed the names' bound with an error, not an
// out-of-memory death.
func TestDeepMemoKeyReuse(t *testing.T) {
	for _, tc := range []struct {
		keyLen  int
		tensor  bool
		wantErr string
	}{
		{4096, false, ""},
		{4096, true, ""},
		{64 << 10, false, ""},
		{64 << 10, true, "tensor names total more than"},
	} {
		t.Run(fmt.Sprintf("key %d tensor %v", tc.keyLen, tc.tensor), func(t *testing.T) {
			data := checkpoint(t, nested(tc.keyLen, 999, tc.tensor), map[string]int{"0": 16})
			m, allocated, err := loadAllocs(data)
			if tc.wantErr != "" {
				var fe *accounting.FormatError
				if !errors.As(err, &fe) || !strings.Contains(fe.Msg, tc.wantErr) || !strings.Contains(fe.Msg, "the limit for this file") {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				if len(err.Error()) > 1024 {
					t.Errorf("error of %d bytes", len(err.Error()))
				}
			} else if err != nil {
				t.Fatal(err)
			} else if tc.tensor {
				if len(m.Tensors) != 1 || len(m.Tensors[0].Name) != 999*tc.keyLen+998 {
					t.Fatalf("tensors %d", len(m.Tensors))
				}
			} else if len(m.Tensors) != 0 {
				t.Fatalf("tensors %d, want 0", len(m.Tensors))
			}
			// The named tensor's name is its one large allocation.
			if limit := allocLimit(len(data)) + 2*uint64(999*tc.keyLen); allocated > limit {
				t.Errorf("allocated %d bytes for a %d-byte input (limit %d)", allocated, len(data), limit)
			}
		})
	}
}

// TestDAGContainers: lists that hold the list below twice reach one tensor
// by 2^levels paths. Each path is a name (as state_dict would list a shared
// submodule under each of its paths); the walk stops at its bounds, and
// memory follows what it lists, not the paths it could take.
func TestDAGContainers(t *testing.T) {
	for _, levels := range []int{10, 13, 24, 40} {
		data := checkpoint(t, sharedLists(levels), map[string]int{"0": 16})
		m, allocated, err := loadAllocs(data)
		if levels <= 13 {
			if err != nil || len(m.Tensors) != 1<<levels {
				t.Fatalf("%d levels: %v, want %d tensors", levels, err, 1<<levels)
			}
			// Each listed tensor costs its row and its name.
			if limit := allocLimit(len(data)) + uint64(len(m.Tensors))*1024; allocated > limit {
				t.Errorf("%d levels: allocated %d bytes (limit %d)", levels, allocated, limit)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "tensor paths") && !strings.Contains(err.Error(), "tensor names total more than") {
			t.Fatalf("%d levels: got %v, want the walk bounded", levels, err)
		}
		if limit := allocLimit(len(data)) + uint64(maxSteps(int64(len(data))))*1024; allocated > limit {
			t.Errorf("%d levels: allocated %d bytes (limit %d)", levels, allocated, limit)
		}
	}
}

// TestUnsafePickle: a pickle that imports callables a full torch.load runs
// is reported with each name and its file offset; one that imports classes
// only (a whole pickled module) is a warning; nothing is run.
func TestUnsafePickle(t *testing.T) {
	system := newPickle().odict().str("w").tensor("FloatStorage", "0", 4).raw('s')
	system.global("posix", "system").mark().str("touch /tmp/qinsaudit-pwned").tuple().raw('R', '0') // called, result dropped
	// builtins.eval by STACK_GLOBAL, as protocol 4 writes it.
	system.str("builtins").str("eval").raw(0x93).mark().str("1+1").tuple().raw('R', '0')
	data := checkpoint(t, system.stop(), map[string]int{"0": 16})
	m, err := loadBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	g := m.Files[0].Globals
	if len(g) != 2 || g[0].Module+"."+g[0].Name != "posix.system" || g[1].Module+"."+g[1].Name != "builtins.eval" || !g[0].RunsCode || !g[1].RunsCode {
		t.Fatalf("globals %+v", g)
	}
	if at := bytes.Index(data, []byte("cposix\nsystem\n")); g[0].Offset != int64(at) {
		t.Errorf("posix.system at %d, want %d", g[0].Offset, at)
	}
	if at := bytes.Index(data, []byte("\x93(")); g[1].Offset != int64(at) {
		t.Errorf("builtins.eval at %d, want %d (the STACK_GLOBAL)", g[1].Offset, at)
	}
	m.Files[0].Path = "evil.pt"
	res, err := accounting.Audit(m, accounting.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := res.Findings[0]
	if f.Kind != accounting.UnsafePickle || f.Severity != accounting.Error ||
		!strings.Contains(f.Message, fmt.Sprintf("posix.system (at offset %d)", g[0].Offset)) || !strings.Contains(f.Message, "builtins.eval") {
		t.Errorf("finding %+v", f)
	}

	// Classes only: a warning.
	module := newPickle().global("__main__", "Net").raw(')', 0x81).odict().str("_parameters").odict().str("w").
		tensor("FloatStorage", "0", 4).raw('s', 's').raw('b').stop()
	m, err = loadBytes(checkpoint(t, module, map[string]int{"0": 16}))
	if err != nil {
		t.Fatal(err)
	}
	if g := m.Files[0].Globals; len(g) != 1 || g[0].RunsCode || g[0].Name != "Net" {
		t.Fatalf("globals %+v", g)
	}
	res, err = accounting.Audit(m, accounting.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 || res.Findings[0].Severity != accounting.Warning || !strings.Contains(res.Findings[0].Message, "__main__.Net") {
		t.Errorf("findings %+v", res.Findings)
	}
	if len(m.Tensors) != 1 || m.Tensors[0].Name != "w" {
		t.Errorf("tensors %+v", m.Tensors)
	}

	// A state_dict imports nothing outside the allow-list.
	m, err = loadBytes(stateDict(t, "w", func(p *pb) { p.tensor("FloatStorage", "0", 4) }, map[string]int{"0": 16}))
	if err != nil || len(m.Files[0].Globals) != 0 {
		t.Fatalf("%v, globals %+v", err, m.Files[0].Globals)
	}
}

// TestRunsCode classifies names as the finding's docs say.
func TestRunsCode(t *testing.T) {
	for name, want := range map[string]bool{
		"posix.system": true, "nt.system": true, "os.system": true, "subprocess.Popen": true, "subprocess.check_output": true,
		"builtins.exec": true, "builtins.eval": true, "builtins.compile": true, "builtins.__import__": true, "builtins.getattr": true,
		"builtins.open": true, "__builtin__.eval": true, "runpy._run_code": true, "pty.spawn": true, "socket.socket": true,
		"shutil.rmtree": true, "importlib.import_module": true, "pickle.loads": true, "_pickle.loads": true, "marshal.loads": true,
		"_codecs.decode": true, "torch.load": true, "torch.serialization.load": true, "torch.storage._load_from_bytes": true,
		"operator.attrgetter": true, "types.FunctionType": true, "os.path.join": true,
		"builtins.dict": false, "builtins.list": false, "__main__.Net": false, "torch.nn.modules.linear.Linear": false,
		"argparse.Namespace": false, "numpy.core.multiarray._reconstruct": false, "numpy.dtype": false, "osx.thing": false,
	} {
		mod, fn, _ := strings.Cut(name, ".")
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			mod, fn = name[:i], name[i+1:]
		}
		if got := runsCode(mod, fn); got != want {
			t.Errorf("runsCode(%s) = %v, want %v", name, got, want)
		}
	}
}

// TestRepeatedKey: a dict that sets one key twice is refused with the key
// and the offset of the opcode, in a small and in an indexed dict, plain
// or ordered; Python would keep the last value and the file would say two
// things.
func TestRepeatedKey(t *testing.T) {
	for _, n := range []int{1, 20, 300} {
		for _, ordered := range []bool{false, true} {
			p := newPickle()
			if ordered {
				p.odict()
			} else {
				p.raw('}')
			}
			p.mark()
			for i := range n {
				p.str(fmt.Sprintf("k%d", i)).raw('N')
			}
			p.str("k0").tensor("FloatStorage", "0", 4)
			at := p.b.Len()
			p.raw('u')
			data := checkpoint(t, p.stop(), map[string]int{"0": 16})
			_, err := loadBytes(data)
			var fe *accounting.FormatError
			if !errors.As(err, &fe) || !strings.Contains(fe.Msg, `dict key "k0" set twice`) {
				t.Fatalf("%d keys, ordered %v: got %v", n, ordered, err)
			}
			if want := int64(bytes.Index(data, []byte("\x80\x02"))) + int64(at); fe.Offset != want {
				t.Errorf("%d keys: offset %d, want %d", n, fe.Offset, want)
			}
		}
	}
	// Keys that differ only in type are different keys.
	p := newPickle().raw('}').mark().int(1).raw('N').str("1").raw('N').raw('u').stop()
	if _, err := loadBytes(onePickle(t, p)); err != nil {
		t.Fatal(err)
	}
}

// TestTwoTensorsOneName: tensors whose paths flatten to one dotted name are
// refused, naming both paths.
func TestTwoTensorsOneName(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkl  []byte
		want string
	}{
		{"dotted key", newPickle().raw('}').mark().
			str("a.b").tensor("FloatStorage", "0", 4).
			str("a").raw('}').str("b").tensor("FloatStorage", "1", 4).raw('s').raw('u').stop(),
			`two tensors flatten to this name: pickle["a.b"] and pickle["a"]["b"]`},
		{"int and str keys", newPickle().raw('}').mark().
			int(1).tensor("FloatStorage", "0", 4).
			str("1").tensor("FloatStorage", "1", 4).raw('u').stop(),
			`pickle["1"] and pickle["1"]`},
		{"index and key", newPickle().raw('}').mark().
			str("x").mark().tensor("FloatStorage", "0", 4).raw('l').
			str("x.0").tensor("FloatStorage", "1", 4).raw('u').stop(),
			`pickle["x"][0] and pickle["x.0"]`},
		// The loader checks names with a map only once a tensor is not a
		// value of the root dict under a str key: a nested name listed
		// first, then a root key, is found as well.
		{"nested then dotted key", newPickle().raw('}').mark().
			str("a").raw('}').str("b").tensor("FloatStorage", "1", 4).raw('s').
			str("c").tensor("FloatStorage", "2", 4).
			str("a.b").tensor("FloatStorage", "0", 4).raw('u').stop(),
			`two tensors flatten to this name: pickle["a"]["b"] and pickle["a.b"]`},
		{"key and attribute of the root dict", newPickle().raw('}').mark().
			str("w").tensor("FloatStorage", "0", 4).raw('u').
			raw('}').str("w").tensor("FloatStorage", "1", 4).raw('s', 'b').stop(),
			`two tensors flatten to this name: pickle["w"] and pickle.w`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadBytes(checkpoint(t, tc.pkl, map[string]int{"0": 16, "1": 16, "2": 16}))
			var fe *accounting.FormatError
			if !errors.As(err, &fe) || !strings.Contains(fe.Msg, tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestErrorsQuoteNoInput: an input that is no checkpoint is refused
// without its bytes in the message.
func TestErrorsQuoteNoInput(t *testing.T) {
	secret := append([]byte("sys_info\x00"), []byte("root:*:20228:0:99999:7:::")...)
	_, err := loadBytes(secret)
	if err == nil || strings.Contains(err.Error(), "root") || strings.Contains(err.Error(), "72 6f 6f 74") {
		t.Fatalf("got %v", err)
	}
}

// TestReconstructor: protocol 0 and 1 pickles create objects with
// copyreg._reconstructor (copy_reg in Python 2); both make an instance of
// the class, and both are imports weights_only refuses.
func TestReconstructor(t *testing.T) {
	for _, mod := range []string{"copyreg", "copy_reg"} {
		p := newPickle().global(mod, "_reconstructor").mark().global("__main__", "Net").global("builtins", "object").raw('N').tuple().raw('R').
			raw('}').str("w").tensor("FloatStorage", "0", 4).raw('s', 'b').stop()
		m, err := loadBytes(checkpoint(t, p, map[string]int{"0": 16}))
		if err != nil {
			t.Fatalf("%s: %v", mod, err)
		}
		if len(m.Tensors) != 1 || m.Tensors[0].Name != "w" || len(m.Tensors[0].Owners) != 1 || m.Tensors[0].Owners[0] != "__main__.Net" {
			t.Errorf("%s: tensors %+v", mod, m.Tensors)
		}
		if g := m.Files[0].Globals; len(g) != 3 || g[0].Module != mod || g[0].RunsCode {
			t.Errorf("%s: globals %+v", mod, g)
		}
	}
}
