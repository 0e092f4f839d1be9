package pytorch

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/realworld"
)

// maxSeedBytes leaves the largest fixtures (toy models of several MB) out of
// the fuzz corpus: the fuzzer mutates whole inputs, and small ones cover the
// same structure faster.
const maxSeedBytes = 1 << 20

// heapAllocs is the total of bytes allocated so far.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// FuzzLoad feeds arbitrary bytes to Load: it must return an error or a
// model whose storages lie inside the input, never panic, and never
// allocate far out of proportion to the input.
func FuzzLoad(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{
		filepath.Join(sharedDir, "*", "*.pt"),
		filepath.Join(sharedDir, "*", "*.pth"),
		filepath.Join(fixturesDir, "*.pt"),
		filepath.Join(fixturesDir, "*.ptl"), // constants.pkl, bytecode.pkl
		filepath.Join(fixturesDir, "*.pth"), // OrderedDict([(key, tensor), ...])
		filepath.Join(fixturesDir, "*.ckpt"),
		filepath.Join(fixturesDir, "*.zip"),
		filepath.Join(sharedDir, "wild", "*.p*"), // 6-field ids, OrderedDict lists, .ptl
		filepath.Join(sharedDir, "wild", "*.jit"),
	} {
		m, _ := filepath.Glob(pattern)
		seeds = append(seeds, m...)
	}
	for _, p := range seeds {
		if fi, err := os.Stat(p); err == nil && fi.Size() <= maxSeedBytes {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add(legacyOne(4, []int{4}, []string{"k"}, []legacyStorage{{4, 16}}))
	f.Add(stateDict(f, "w", func(p *pb) { p.tensor("FloatStorage", "0", 2, 2) }, map[string]int{"0": 16}))
	f.Add([]byte("\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}\x94N.x"))
	// Structured hostile seeds (issue 10): one long key reused through the
	// memo at every level of a deep nest, with and without a tensor at the
	// bottom; lists sharing the list below (a DAG of 2^n paths); a pickle
	// importing os.system.
	f.Add(checkpoint(f, nested(4096, 999, false), map[string]int{"0": 16}))
	f.Add(checkpoint(f, nested(512, 999, true), map[string]int{"0": 16}))
	f.Add(checkpoint(f, sharedLists(24), map[string]int{"0": 16}))
	f.Add(checkpoint(f, newPickle().global("posix", "system").mark().str("id").tuple().raw('R').stop(), nil))

	f.Fuzz(func(t *testing.T, data []byte) {
		before := heapAllocs()
		checkAnyOutcome(t, data)
		// Unpickling costs memory in proportion to the pickle (gopickle
		// allocates a 16-slot stack per MARK); a length taken from the
		// input and allocated unchecked costs far more.
		if got, limit := heapAllocs()-before, uint64(64<<20+1024*len(data)); got > limit {
			t.Fatalf("allocated %d bytes for a %d-byte input (limit %d)", got, len(data), limit)
		}
	})
}

// FuzzPickle fuzzes the pickle layer (scan, unpickle, naming) without the
// zip around it, where mutations of a checkpoint's data.pkl land more
// often. Every persistent id resolves to a 4 KiB storage.
func FuzzPickle(f *testing.F) {
	for _, name := range []string{"whole_module.pt", "dynamic_qint8_bias.pt", "nested_checkpoint.pt", "tied_head.pt", "slice_view.pt",
		"ts_lite.ptl", "qstatic_qnnpack_lite.ptl", "qstatic_fbgemm_ts.pt", "qdynamic_perchannel_ts.pt", "lightning.ckpt", "numpy_p2.pt", "numpy_p5.pt",
		filepath.Join(realworld.WildDir(), "ios-demo-app_reddit.pt"), filepath.Join(realworld.WildDir(), "android-demo-app_asl.ptl")} {
		if !filepath.IsAbs(name) && !strings.HasPrefix(name, "..") {
			name = filepath.Join(fixturesDir, name)
		}
		data, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			f.Fatal(err)
		}
		for _, zf := range zr.File {
			if strings.HasSuffix(zf.Name, "/data.pkl") || strings.HasSuffix(zf.Name, "/constants.pkl") || strings.HasSuffix(zf.Name, "/bytecode.pkl") {
				rc, err := zf.Open()
				if err != nil {
					f.Fatal(err)
				}
				pkl, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					f.Fatal(err)
				}
				f.Add(pkl)
			}
		}
	}
	f.Add(newPickle().odict().str("w").tensor("FloatStorage", "0", 2, 2).raw('s').stop())
	f.Add([]byte("\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}\x94N."))
	f.Add(nested(4096, 999, false))
	f.Add(nested(512, 999, true))
	f.Add(sharedLists(24))

	f.Fuzz(func(t *testing.T, pkl []byte) {
		load := func() ([]accounting.Tensor, error) {
			tensors, _, err := zipTensors(newPickleInput(bytes.NewReader(pkl), int64(len(pkl))), 0, "data.pkl", "", 0, func(id *persistentID, into *storage) error {
				*into = storage{key: "data/" + id.key, typ: id.typ, numel: id.numel, bytes: 4096, avail: 4096, dataOffset: 0}
				return nil
			})
			return tensors, err
		}
		before := heapAllocs()
		tensors, err := load()
		allocated := heapAllocs() - before
		// The memo's walk (dropped values, tuples handed on unbuilt)
		// changes nothing a pickle means.
		walkMemo = false
		all, errAll := load()
		walkMemo = true
		if fmt.Sprint(err) != fmt.Sprint(errAll) || fmt.Sprintf("%+v", tensors) != fmt.Sprintf("%+v", all) {
			t.Fatalf("with the memo walked: %+v, %v; keeping every value: %+v, %v", tensors, err, all, errAll)
		}
		if err != nil {
			var fe *accounting.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FormatError", err)
			}
		}
		for _, tt := range tensors {
			if _, ok := accounting.LookupDType(tt.DType); !ok {
				t.Fatalf("tensor %q: unknown dtype %q", tt.Name, tt.DType)
			}
			if tt.ViewOffset < 0 || tt.ViewOffset > 4096 {
				t.Fatalf("tensor %q: view offset %d outside its 4096-byte storage", tt.Name, tt.ViewOffset)
			}
		}
		if got, limit := allocated, uint64(64<<20+1024*len(pkl)); got > limit {
			t.Fatalf("allocated %d bytes for a %d-byte pickle (limit %d)", got, len(pkl), limit)
		}
	})
}
