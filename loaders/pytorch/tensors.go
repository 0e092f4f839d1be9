package pytorch

import (
	"fmt"
	"math/bits"

	"github.com/qinsaudit/qinsaudit/accounting"

	"github.com/nlpodyssey/gopickle/types"
)

// storage is one storage of the file: a run of bytes that tensors view.
type storage struct {
	key string       // Tensor.Storage: the zip record name ("data/3") or the legacy key
	typ *storageType // element type (a storage class's), from the first persistent id naming it
	// numel is the element count the first persistent id naming the
	// storage says. A legacy file repeats it before the storage's bytes,
	// and views are checked against it; a zip record's size must be
	// numel elements, and every id naming it must say as much.
	numel int64
	// bytes is the number of bytes the storage takes in the file.
	bytes int64
	// avail is how many bytes a view may address: bytes, or for a
	// compressed zip record its uncompressed size.
	avail      int64
	dataOffset int64
}

// storageRef is what a persistent id resolves to: a whole storage or, in
// legacy files only, a slice of one.
type storageRef struct {
	s     *storage
	view  bool  // a slice of s (legacy view metadata)
	start int64 // the slice's first element
	numel int64 // the slice's elements
}

// region returns the byte range of s a tensor on r may address.
func (r *storageRef) region() (start, end int64) {
	if !r.view {
		return 0, r.s.avail
	}
	// Both products were checked against the storage's size when the
	// persistent id was read.
	eb := r.s.typ.elemBytes
	return r.start * eb, (r.start + r.numel) * eb
}

// tensor is a tensor rebuilt from the pickle: a view of a storage.
type tensor struct {
	ref    *storageRef
	dtype  string // canonical dtype name
	offset int64  // storage_offset, in elements of dtype
	// dims is its size, then its stride (in elements): as many of each.
	// One slice and q a pointer make a tensor 96 bytes, five to an arena
	// block (it was 128).
	dims []int64
	q    *qparams // per-tensor quantization, nil for none
	// attrs are values carried with the tensor that may hold more
	// tensors: per-channel quantizer parameters, a Parameter's or tensor
	// subclass's state.
	attrs []entry
	// at is the file offset of the opcode that rebuilt it, -1 if unknown.
	at int64
}

// qparams are the parameters of a per-tensor quantized tensor.
type qparams struct {
	scale float64
	zero  int64
}

// shape is the tensor's size, stride its stride.
func (t *tensor) shape() []int64  { n := len(t.dims) / 2; return t.dims[:n:n] }
func (t *tensor) stride() []int64 { return t.dims[len(t.dims)/2:] }

// PySetState takes a BUILD state, as torch's Tensor.__setstate__ would.
func (t *tensor) PySetState(state any) error {
	attrs, rest := splitState(state)
	t.attrs = append(t.attrs, attrs...)
	if rest != nil {
		t.attrs = append(t.attrs, entry{"state", rest})
	}
	return nil
}

// newTensor reads the (storage, storage_offset, size, stride) arguments
// that every rebuild function starts with.
func newTensor(u *unpickler, args []any) (*tensor, error) {
	ref, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("argument 0 is %s, not a storage", typeName(args[0]))
	}
	off, ok := args[1].(int)
	if !ok {
		return nil, fmt.Errorf("storage offset is %s, not an int", typeName(args[1]))
	}
	size, ok1 := sequence(args[2])
	strides, ok2 := sequence(args[3])
	if ok1 && ok2 && len(size) != len(strides) {
		return nil, fmt.Errorf("size has %d dimensions, stride %d", len(size), len(strides))
	}
	// The tensor from the arena; its shape and stride from a block of
	// int64s, which the model's tensors share (see namer.tensor).
	t := alloc(&u.arena.tensors)
	t.ref, t.dtype, t.offset, t.at = ref, ref.s.typ.dtype, int64(off), u.offset()
	var dims []int64
	if ok1 && ok2 && len(size) <= maxArenaDims {
		dims = u.arena.dimsBuf[:2*len(size)]
	}
	shape, err := intTuple(args[2], "size", dims)
	if err != nil {
		return nil, err
	}
	stride, err := intTuple(args[3], "stride", dims[len(dims)/2:])
	if err != nil {
		return nil, err
	}
	if len(stride) != len(shape) {
		return nil, fmt.Errorf("size has %d dimensions, stride %d", len(shape), len(stride))
	}
	if dims != nil {
		t.dims = u.arena.dims(dims)
	} else {
		t.dims = append(shape, stride...)
	}
	return t, nil
}

// intTuple reads a tuple or list of ints, into buf when it has room.
func intTuple(v any, what string, buf []int64) ([]int64, error) {
	items, ok := sequence(v)
	if !ok {
		return nil, fmt.Errorf("%s is %s, not a tuple", what, typeName(v))
	}
	var out []int64
	if buf != nil && len(buf) >= len(items) {
		out = buf[:len(items):len(items)]
	} else {
		out = make([]int64, len(items))
	}
	for i, x := range items {
		n, ok := x.(int)
		if !ok {
			return nil, fmt.Errorf("%s[%d] is %s, not an int", what, i, typeName(x))
		}
		out[i] = int64(n)
	}
	return out, nil
}

func wantArgs(args []any, lo, hi int) error {
	if len(args) < lo || len(args) > hi {
		if lo == hi {
			return fmt.Errorf("%d arguments, want %d", len(args), lo)
		}
		return fmt.Errorf("%d arguments, want %d to %d", len(args), lo, hi)
	}
	return nil
}

// rebuildTensor is torch._utils._rebuild_tensor(storage, storage_offset,
// size, stride).
func rebuildTensor(u *unpickler, args []any) (any, error) {
	if err := wantArgs(args, 4, 4); err != nil {
		return nil, err
	}
	return newTensor(u, args)
}

// rebuildTensorV2 is torch._utils._rebuild_tensor_v2(storage,
// storage_offset, size, stride, requires_grad, backward_hooks[, metadata]).
func rebuildTensorV2(u *unpickler, args []any) (any, error) {
	if err := wantArgs(args, 6, 7); err != nil {
		return nil, err
	}
	return newTensor(u, args)
}

// rebuildTensorV3 is torch._utils._rebuild_tensor_v3(storage,
// storage_offset, size, stride, requires_grad, backward_hooks, dtype[,
// metadata]): a tensor whose dtype is not its storage's (an UntypedStorage
// holding float8 or uint16 data, say).
func rebuildTensorV3(u *unpickler, args []any) (any, error) {
	if err := wantArgs(args, 7, 8); err != nil {
		return nil, err
	}
	t, err := newTensor(u, args)
	if err != nil {
		return nil, err
	}
	d, ok := args[6].(dtypeObj)
	if !ok {
		return nil, fmt.Errorf("dtype is %s, not a torch dtype", typeName(args[6]))
	}
	t.dtype = string(d)
	return t, nil
}

// rebuildMetaTensor is torch._utils._rebuild_meta_tensor_no_storage(dtype,
// size, stride[, requires_grad]): a tensor on the meta device, which has a
// dtype and a shape but no storage and no data (torch.save of a model
// built with device="meta", or before its weights were loaded). It is
// listed with a storage of its own, of no bytes, that no other tensor
// shares (accounting.NoDataOffset); the accounting says it holds no data.
func rebuildMetaTensor(u *unpickler, args []any) (any, error) {
	if err := wantArgs(args, 3, 4); err != nil {
		return nil, err
	}
	d, ok := args[0].(dtypeObj)
	if !ok {
		return nil, fmt.Errorf("dtype is %s, not a torch dtype", typeName(args[0]))
	}
	if _, ok := accounting.LookupDType(string(d)); !ok {
		return nil, fmt.Errorf("unknown dtype %q", string(d))
	}
	typ := storageOf(string(d))
	u.metas++
	s := &storage{key: fmt.Sprintf("(meta %d)", u.metas), typ: &typ, dataOffset: accounting.NoDataOffset}
	return newTensor(u, []any{&storageRef{s: s}, 0, args[1], args[2]})
}

// rebuildSparse is torch._utils._rebuild_sparse_tensor(layout, data) and
// torch 1.x's _rebuild_sparse_csr_tensor(layout, data): a sparse tensor,
// saved as the dense tensors of its layout: for sparse_coo, data is
// (indices, values, size[, is_coalesced]); for the compressed layouts
// (sparse_csr, sparse_csc, sparse_bsr, sparse_bsc), (compressed_indices,
// plain_indices, values, size). It becomes a dict of those tensors under
// torch's names for them (sp.indices, sp.values; csr.crow_indices,
// csr.col_indices, csr.values); each is counted as the dense tensor it is.
// Arguments of another form (a layout this reader does not know) make an
// inert object, as an unknown function's call would: its tensors are
// counted all the same, named by position.
func rebuildSparse(_ *unpickler, args []any) (any, error) {
	inert := &object{class: &pyClass{module: "torch._utils", name: "_rebuild_sparse_tensor"}, args: args}
	if len(args) != 2 {
		return inert, nil
	}
	data, ok := sequence(args[1])
	if !ok {
		return inert, nil
	}
	var names []string
	switch layoutName(args[0]) {
	case "torch.sparse_coo":
		names = []string{"indices", "values"}
	case "torch.sparse_csr", "torch.sparse_bsr":
		names = []string{"crow_indices", "col_indices", "values"}
	case "torch.sparse_csc", "torch.sparse_bsc":
		names = []string{"ccol_indices", "row_indices", "values"}
	default:
		return inert, nil
	}
	if len(data) <= len(names) {
		return inert, nil
	}
	d := &pyDict{entries: make([]entry, len(names))}
	for i, name := range names {
		t, ok := data[i].(*tensor)
		if !ok {
			return inert, nil
		}
		d.entries[i] = entry{name, t}
	}
	return d, nil
}

// layoutName is the name of a torch layout as a pickle gives it,
// torch.serialization._get_layout("torch.sparse_coo"), or "" for
// anything else.
func layoutName(v any) string {
	if o, ok := v.(*object); ok && o.class.module == "torch.serialization" && o.class.name == "_get_layout" && len(o.args) == 1 {
		if s, ok := asString(o.args[0]); ok {
			return s
		}
	}
	return ""
}

// rebuildQTensor is torch._utils._rebuild_qtensor(storage, storage_offset,
// size, stride, quantizer_params, requires_grad, backward_hooks).
// quantizer_params is (qscheme, scale, zero_point) for per-tensor schemes
// and (qscheme, scales, zero_points, axis) for per-channel ones, whose
// scale and zero-point tensors become <name>.q_scales and
// <name>.q_zero_points. PyTorch 1.2 wrote (storage, storage_offset, size,
// stride, scale, zero_point, requires_grad, backward_hooks): per-tensor
// affine, the only scheme it saved.
func rebuildQTensor(u *unpickler, args []any) (any, error) {
	if err := wantArgs(args, 7, 8); err != nil {
		return nil, err
	}
	t, err := newTensor(u, args)
	if err != nil {
		return nil, err
	}
	params := args[4]
	if len(args) == 8 {
		params = &types.Tuple{qscheme("per_tensor_affine"), args[4], args[5]}
	}
	q, ok := sequence(params)
	if !ok || len(q) == 0 {
		return nil, fmt.Errorf("quantizer parameters are %s, not a tuple", typeName(params))
	}
	scheme, ok := q[0].(qscheme)
	if !ok {
		return nil, fmt.Errorf("qscheme is %s, not a torch qscheme", typeName(q[0]))
	}
	switch scheme {
	case "per_tensor_affine", "per_tensor_symmetric":
		if len(q) < 3 {
			return nil, fmt.Errorf("%s parameters have %d elements, want 3", scheme, len(q))
		}
		t.q = new(qparams)
		switch s := q[1].(type) {
		case float64:
			t.q.scale = s
		case int:
			t.q.scale = float64(s)
		default:
			return nil, fmt.Errorf("scale is %s, not a float", typeName(q[1]))
		}
		zp, ok := q[2].(int)
		if !ok {
			return nil, fmt.Errorf("zero point is %s, not an int", typeName(q[2]))
		}
		t.q.zero = int64(zp)
	default: // per-channel
		if len(q) < 3 {
			return nil, fmt.Errorf("%s parameters have %d elements, want at least 3", scheme, len(q))
		}
		t.attrs = append(t.attrs, entry{"q_scales", q[1]}, entry{"q_zero_points", q[2]})
	}
	return t, nil
}

// rebuildParameter is torch._utils._rebuild_parameter(data,
// requires_grad, backward_hooks): the parameter is its data tensor.
func rebuildParameter(_ *unpickler, args []any) (any, error) {
	if err := wantArgs(args, 3, 3); err != nil {
		return nil, err
	}
	return asTensor(args[0])
}

// rebuildParameterWithState is torch._utils._rebuild_parameter_with_state(
// data, requires_grad, backward_hooks, state), used by Parameter
// subclasses with attributes (bitsandbytes' Params4bit keeps its
// quantization state there).
func rebuildParameterWithState(_ *unpickler, args []any) (any, error) {
	if err := wantArgs(args, 4, 4); err != nil {
		return nil, err
	}
	t, err := asTensor(args[0])
	if err != nil {
		return nil, err
	}
	return t, t.PySetState(args[3])
}

// asTensor checks that a parameter's data is a tensor.
func asTensor(v any) (*tensor, error) {
	t, ok := v.(*tensor)
	if !ok {
		return nil, fmt.Errorf("data is %s, not a tensor", typeName(v))
	}
	return t, nil
}

// rebuildFromType is torch._tensor._rebuild_from_type[_v2](func, type,
// args, state), used for tensor subclasses and tensors with attributes:
// func(*args) rebuilds the tensor, state is its __dict__.
func rebuildFromType(_ *unpickler, args []any) (any, error) {
	if err := wantArgs(args, 4, 4); err != nil {
		return nil, err
	}
	f, ok := args[0].(types.Callable)
	if !ok {
		return nil, fmt.Errorf("function is %s, not callable", typeName(args[0]))
	}
	fargs, ok := sequence(args[2])
	if !ok {
		return nil, fmt.Errorf("arguments are %s, not a tuple", typeName(args[2]))
	}
	v, err := f.Call(fargs...)
	if err != nil {
		return nil, err
	}
	if t, ok := v.(*tensor); ok {
		return t, t.PySetState(args[3])
	}
	return v, nil // bytes are refused by callable.Call
}

// persistentID is a parsed storage persistent id:
// ('storage', storage_type, key, location, numel[, view_metadata]).
type persistentID struct {
	typ   *storageType // the class's
	key   string
	numel int64
	view  any  // legacy only: None or (view_key, offset, size)
	meta  bool // its location is "meta": a storage with no data
}

// parsePersistentID reads a persistent id tuple, returning its typename
// and fields. Only 'storage' ids are parsed further, into *into (the
// caller's, reused from one id to the next: one per tensor was 5% of a
// load's allocations), and the returned id is into; for any other it is
// nil and the tuple is returned.
func parsePersistentID(pid any, legacy bool, into *persistentID) (string, *persistentID, []any, error) {
	t, ok := pid.(*types.Tuple)
	if !ok || t.Len() == 0 {
		return "", nil, nil, fmt.Errorf("persistent id is %s, not a tuple", typeName(pid))
	}
	f := []any(*t)
	typename, ok := asString(f[0])
	if !ok {
		return "", nil, nil, fmt.Errorf("persistent id typename is %s, not a str", typeName(f[0]))
	}
	if typename != "storage" {
		return typename, nil, f, nil
	}
	// Legacy files carry a sixth field, view metadata; TorchScript archives
	// of PyTorch 1.3 to 1.5 carry it too, always None.
	if len(f) != 5 && len(f) != 6 {
		return "", nil, nil, fmt.Errorf("storage persistent id has %d fields", len(f))
	}
	if len(f) == 6 && !legacy && f[5] != nil {
		return "", nil, nil, fmt.Errorf("storage persistent id: view metadata is %s; a zip archive's can only be None", typeName(f[5]))
	}
	class, ok := f[1].(*storageClass)
	if !ok {
		return "", nil, nil, fmt.Errorf("storage type is %s, not a torch storage class", typeName(f[1]))
	}
	if !class.known {
		return "", nil, nil, fmt.Errorf("storage type torch.%s names no dtype", class.name)
	}
	key, ok := asString(f[2])
	if !ok {
		return "", nil, nil, fmt.Errorf("storage key is %s, not a str", typeName(f[2]))
	}
	numel, ok := f[4].(int)
	if !ok || numel < 0 {
		return "", nil, nil, fmt.Errorf("storage %q: element count is %s, not a non-negative int", key, typeName(f[4]))
	}
	if _, ok := mul(int64(numel), class.typ.elemBytes); !ok {
		return "", nil, nil, fmt.Errorf("storage %q: %d elements overflow int64 bytes", key, numel)
	}
	id := into
	loc, _ := asString(f[3])
	*id = persistentID{typ: &class.typ, key: key, numel: int64(numel), meta: loc == "meta"}
	if len(f) == 6 {
		id.view = f[5]
	}
	return typename, id, f, nil
}

// asString accepts a str, or bytes as Python 2 pickles give them.
func asString(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case []byte:
		return string(s), true
	}
	return "", false
}

// mul returns a*b for non-negative a and b, and false on overflow.
func mul(a, b int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > 1<<63-1 {
		return 0, false
	}
	return int64(lo), true
}

// add returns a+b for non-negative a and b, and false on overflow.
func add(a, b int64) (int64, bool) {
	s := a + b
	return s, s >= a
}
