package decode

import (
	"slices"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/racetest"
)

// TestAllocSlots: a buffer's slot is what the allocator gives it.
func TestAllocSlots(t *testing.T) {
	for _, c := range []struct{ n, slot int64 }{{1, 16}, {4, 16}, {17, 24}, {100, 112}, {5000, 5376}, {65536, 65536}, {100000, 106496}} {
		if b, slot := allocBytes(c.n); int64(len(b)) != c.n || slot != c.slot {
			t.Errorf("allocBytes(%d): %d bytes in a slot of %d, want %d", c.n, len(b), slot, c.slot)
		}
	}
	// Large buffers are made directly; their slot is the one growslice
	// would give them.
	for _, n := range []int64{largeAlloc - 1, largeAlloc, largeAlloc + 1, largeAlloc + allocPage - 1, 3<<20 + 12345, 64<<20 + 1} {
		b, slot := allocBytes(n)
		if want := int64(cap(slices.Grow([]byte(nil), int(n)))); int64(len(b)) != n || slot != want {
			t.Errorf("allocBytes(%d): %d bytes in a slot of %d, want %d", n, len(b), slot, want)
		}
	}
	if f, slot := allocFloats(3); len(f) != 3 || slot != 16 {
		t.Errorf("allocFloats(3): %d in %d", len(f), slot)
	}
	if b, slot := allocBytes(0); b != nil || slot != 0 {
		t.Errorf("allocBytes(0) = %v, %d", b, slot)
	}
}

func TestSite(t *testing.T) {
	for fn, want := range map[string]string{
		"github.com/qinsaudit/qinsaudit/internal/decode.allocEmbedding":   "embedding",
		"github.com/qinsaudit/qinsaudit/internal/decode.allocDecoded":     KeyDecoded,
		"github.com/qinsaudit/qinsaudit/internal/decode.allocActivations": KeyActivations,
	} {
		if got, ok := Site(fn); !ok || got != want {
			t.Errorf("Site(%s) = %q, %v", fn, got, ok)
		}
	}
	if _, ok := Site("github.com/qinsaudit/qinsaudit/internal/decode.allocBytes"); ok {
		t.Error("allocBytes is a site")
	}
	// Every role has a site of its own, and every site key is a phase key.
	keys := map[string]bool{}
	for _, r := range accounting.Roles() {
		f := storageSites[r]
		if f == nil {
			t.Fatalf("role %s has no allocation site", r)
		}
		if key, ok := Site(funcName(f)); !ok || key != r.String() {
			t.Errorf("the site of role %s is %q", r, key)
		}
		keys[r.String()] = true
	}
	if len(sites()) != len(siteKeys) || len(siteKeys) != len(keys)+2 {
		t.Errorf("%d sites, site keys %v", len(sites()), siteKeys)
	}
}

// TestPassAllocations: a pass allocates its buffers and little else, so
// that exact heap profiling, which walks the stack of every allocation,
// stays cheap (bench/decode/README.md). The toy model has 73 storages and
// 18 decoded weights, and the forward pass two buffers.
func TestPassAllocations(t *testing.T) {
	racetest.SkipAllocs(t)
	m, res := torchModel(t, "toy_qins_log.pt")
	var p *Pass
	load := testing.AllocsPerRun(2, func() {
		var err error
		if p, err = Load(m, res, Options{Policy: Cache, Batch: 8}); err != nil {
			t.Fatal(err)
		}
	})
	run := testing.AllocsPerRun(2, func() {
		if _, err := p.Run(); err != nil {
			t.Fatal(err)
		}
	})
	if load+run > 2*(73+18+2) {
		t.Errorf("a pass allocates %.0f times (load %.0f, run %.0f), more than twice its 93 buffers", load+run, load, run)
	}
}
