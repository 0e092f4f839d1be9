package loaders_test

import (
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/qinsaudit/qinsaudit/loaders"
)

// prefetchFS is an in-memory Source that records what it is asked to
// prefetch.
type prefetchFS struct {
	fstest.MapFS
	calls [][]string
	first map[string]int64
}

func (p *prefetchFS) Prefetch(names []string, first []int64) error {
	p.calls = append(p.calls, append([]string(nil), names...))
	for i, n := range names {
		p.first[n] = first[i]
	}
	return nil
}

func mapFS(t *testing.T, dir string) *prefetchFS {
	t.Helper()
	m := fstest.MapFS{}
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range des {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = &fstest.MapFile{Data: b, Mode: 0o444}
	}
	return &prefetchFS{MapFS: m, first: map[string]int64{}}
}

// TestOpenSource: a folder read through an io/fs source (in memory) gives
// the model a local Open of it gives, by the same rules; a prefetching
// source is asked for every file of the folder at once, an index's shards
// with a first range that holds their headers.
func TestOpenSource(t *testing.T) {
	for _, dir := range []string{"../fixtures/safetensors/sharded", "../fixtures/gguf", "../fixtures/quant/gptq", "../fixtures/torch"} {
		t.Run(dir, func(t *testing.T) {
			fsys := mapFS(t, dir)
			got, gotErr := loaders.OpenSource(fsys, ".")
			wd, _ := os.Getwd()
			if err := os.Chdir(dir); err != nil {
				t.Fatal(err)
			}
			want, wantErr := loaders.Open(".")
			os.Chdir(wd)
			if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
				t.Fatalf("errors: %v, local %v", gotErr, wantErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("the model differs from the local one")
			}
			if len(fsys.calls) == 0 {
				t.Fatal("no prefetch")
			}
			var listed int
			for n, f := range fsys.MapFS {
				if !strings.HasSuffix(n, ".index.json") && f.Mode.IsRegular() {
					listed++
				}
			}
			if len(fsys.calls[0]) != listed {
				t.Errorf("first prefetch %v, want all %d files but indexes", fsys.calls[0], listed)
			}
			shards := 0
			for n, first := range fsys.first {
				if !strings.HasSuffix(n, ".safetensors") || !strings.Contains(dir, "sharded") {
					continue
				}
				shards++
				hdr := 8 + int64(binary.LittleEndian.Uint64(fsys.MapFS[n].Data))
				if first < hdr || first > hdr+2048 {
					t.Errorf("%s: first range %d for a %d-byte header", n, first, hdr)
				}
			}
			if strings.Contains(dir, "sharded") && shards != 2 {
				t.Errorf("%d shards sized", shards)
			}
		})
	}
	if _, err := loaders.OpenSource(mapFS(t, "../fixtures/gguf"), "nope.gguf"); err == nil || !strings.Contains(err.Error(), fs.ErrNotExist.Error()) {
		t.Errorf("a missing file: %v", err)
	}
}
