package decode

import (
	"reflect"
	"runtime"
	"slices"
	"sync"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// Site keys that are not accounting roles: the keys of a phase's ByRole
// for the pass's own buffers.
const (
	// KeyDecoded is the site of decoded float32 weights.
	KeyDecoded = "decoded"
	// KeyActivations is the site of the forward pass's inputs and outputs.
	KeyActivations = "activations"
)

// The names of the phases Run records, in order; one phase per layer
// (PhaseLayer plus the layer's name) comes between PhaseAfterLoad and
// PhaseAfterDecode.
const (
	PhaseAfterLoad   = "after-load"
	PhaseLayer       = "layer "
	PhaseAfterDecode = "after-decode"
	PhaseEnd         = "end"
)

// minSlot is the smallest buffer the pass allocates. Smaller pointer-free
// allocations go to Go's tiny allocator, which packs several into one
// 16-byte block and profiles only the allocation that opened the block; a
// 4-byte log_min would then be counted as 16 bytes or not at all. Rounding
// such buffers up to 16 bytes gives each its own slot, so the profile sees
// every one.
const minSlot = 16

// allocBytes returns n zeroed bytes in an allocator slot of their own, and
// that slot's size. The capacity growslice gives a new slice is its
// allocation rounded up by the allocator's own rule (roundupsize: the size
// class up to 32 KiB, whole 8 KiB pages above), which is the size a heap
// profile records for it.
//
// A large buffer (a storage of a big model) is made with make instead: it
// goes straight to its own whole pages, the rule is plain (n rounded up to
// the allocator's 8 KiB page), and memory the runtime takes fresh from the
// operating system is not cleared again, where growslice clears every byte
// it adds, a pass over the whole storage before the read overwrites it.
func allocBytes(n int64) ([]byte, int64) {
	if n == 0 {
		return nil, 0
	}
	if n >= largeAlloc {
		return make([]byte, n), (n + allocPage - 1) &^ (allocPage - 1)
	}
	b := slices.Grow([]byte(nil), int(max(n, minSlot)))
	return b[:n], int64(cap(b))
}

// largeAlloc is the size from which allocBytes makes a buffer of whole
// pages, well above the runtime's largest size class (32 KiB); allocPage is
// the runtime's page. TestAllocSlots checks the rule against growslice's.
const (
	largeAlloc = 1 << 20
	allocPage  = 8 << 10
)

// allocFloats is allocBytes for n float32s; the slot is in bytes.
func allocFloats(n int64) ([]float32, int64) {
	if n == 0 {
		return nil, 0
	}
	b := slices.Grow([]float32(nil), int(max(n, minSlot/4)))
	return b[:n], 4 * int64(cap(b))
}

// The allocation sites. Each is a function of its own, never inlined, so
// that it is a frame of every stack a heap profile records for its buffers.

//go:noinline
func allocEncodedLinear(n int64) ([]byte, int64) { return allocBytes(n) }

//go:noinline
func allocEmbedding(n int64) ([]byte, int64) { return allocBytes(n) }

//go:noinline
func allocUntouched(n int64) ([]byte, int64) { return allocBytes(n) }

//go:noinline
func allocOptimizerState(n int64) ([]byte, int64) { return allocBytes(n) }

//go:noinline
func allocDecoded(n int64) ([]float32, int64) { return allocFloats(n) }

//go:noinline
func allocActivations(n int64) ([]float32, int64) { return allocFloats(n) }

// storageSites maps a role to the site that allocates storages charged to it.
var storageSites = [...]func(int64) ([]byte, int64){
	accounting.EncodedLinear:  allocEncodedLinear,
	accounting.Embedding:      allocEmbedding,
	accounting.Untouched:      allocUntouched,
	accounting.OptimizerState: allocOptimizerState,
}

// sites maps each site's function name, as a profile spells it, to its key.
// It is made on first use, not at init: the names come from the runtime's
// symbol table, which only decode and crosscheck read.
var sites = sync.OnceValue(func() map[string]string {
	m := map[string]string{
		funcName(allocDecoded):     KeyDecoded,
		funcName(allocActivations): KeyActivations,
	}
	for role, f := range storageSites {
		m[funcName(f)] = accounting.Role(role).String()
	}
	return m
})

func funcName(f any) string {
	return runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
}

// Site returns the key of the allocation site named function (a fully
// qualified Go function name, as in a heap profile): a role name for stored
// tensors, KeyDecoded or KeyActivations. ok is false for any other function.
func Site(function string) (key string, ok bool) {
	key, ok = sites()[function]
	return key, ok
}

// SiteKeys lists every site key, the keys of a phase's ByRole, in the
// order reports list them: every role's name in role order, then
// KeyDecoded and KeyActivations.
func SiteKeys() []string {
	out := make([]string, 0, len(accounting.Roles())+2)
	for _, r := range accounting.Roles() {
		out = append(out, r.String())
	}
	return append(out, KeyDecoded, KeyActivations)
}

var siteKeys = SiteKeys()
