package pytorch

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/nlpodyssey/gopickle/types"
	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/hugepage"
)

// maxDepth bounds how deeply the naming walk follows nested values; a
// pickle can nest lists a million deep in two bytes a level.
const maxDepth = 1000

// moduleBookkeeping are the nn.Module attributes that hold parameters,
// buffers and submodules. They do not appear in state_dict names.
var moduleBookkeeping = map[string]bool{"_parameters": true, "_buffers": true, "_modules": true}

// namer walks an unpickled value and lists its tensors, named by their path
// as state_dict would name them.
//
// The path is a stack of steps, shared by everything below it: a name is
// materialised only for a tensor being listed, once per listing, so a
// pickle that reuses one long key through the memo at every level of a deep
// nest costs the key once per level of the stack, not once per container.
// The names listed are bounded in total (maxNameBytes).
type namer struct {
	format  string
	root    string
	path    []step
	onPath  map[any]bool // containers being walked: a cycle guard
	steps   int
	tensors []accounting.Tensor
	// names finds the tensor listed under a name: two tensors that
	// flatten to one name are an error, not two rows of one name. It is
	// nil while every tensor listed is a value of the root dict under a
	// str key (a state_dict): the dict refused a repeated key, so their
	// names are distinct, and the first other tensor builds it from them.
	// Measured on 100,000 tensors, the map was 5% of a load.
	names    map[string]int
	sizeHint int
	// rootKey is set while the walk is at a str key of the root dict.
	rootKey   bool
	nameBytes int64
	maxNames  int64
	maxSteps  int
	// find, when set, makes the walk stop at the first tensor named find
	// and keep its structural path in found (see collision).
	find    string
	found   string
	scratch []byte
	// owners are the classes of the objects being walked, outermost first
	// (see accounting.Tensor.Owners); shared is a copy of them that the
	// tensors listed since the last change share.
	owners, shared []string
	// numpyKeys name the storages of numpy arrays (see numpy.go) by the
	// first byte of their data in the pickle; numpys counts the storages
	// named, an array of no data being one of its own.
	numpyKeys map[*byte]string
	numpys    int
}

// step is one step of a path: a dict key or attribute name, an index, or
// an nn.Module bookkeeping attribute that names omit.
type step struct {
	key   string
	index int
	kind  stepKind
}

type stepKind uint8

const (
	stepKey stepKind = iota
	stepIndex
	stepAttr
	stepHidden // _parameters, _buffers, _modules: in the path, not in the name
	stepState  // a BUILD state that is not attributes: not in the name either
)

// maxSteps bounds the walk of a pickle of size bytes: a pickle that shares
// containers can name the same tensor by exponentially many paths, each a
// row of the report. A real checkpoint takes 50 bytes of pickle or more
// per tensor and container; 16 steps per byte leave room for submodules
// shared many times over.
func maxSteps(size int64) int { return int(min(1<<20, 1<<16+16*max(size, 0))) }

// maxNameBytes bounds the bytes of all the names listed from a pickle of
// size bytes: a tensor reached by many paths, or at the bottom of a deep
// nest of long keys, has long or many names. Real checkpoints spend 20 to
// 100 bytes of pickle per tensor and name it in fewer.
func maxNameBytes(size int64) int64 { return 16<<20 + 64*max(size, 0) }

// errFound stops a walk that looks for a name.
var errFound = errors.New("found")

// nameTensors lists the tensors of v, named under root, in walk order;
// size is the pickle's (or the file's) size, which bounds the names, and
// storages the number of storages v refers to, about its tensors.
func nameTensors(format, root string, v any, size int64, storages int) ([]accounting.Tensor, error) {
	n := &namer{format: format, root: root, onPath: map[any]bool{}, sizeHint: storages, maxNames: maxNameBytes(size), maxSteps: maxSteps(size),
		tensors: make([]accounting.Tensor, 0, storages)}
	hugepage.Advise(n.tensors)
	if err := n.walk(v, 0); err != nil {
		var dup *duplicateName
		if errors.As(err, &dup) {
			// Find the path of the first tensor of that name.
			f := &namer{format: format, root: root, onPath: map[any]bool{}, names: map[string]int{}, maxNames: n.maxNames, maxSteps: n.maxSteps, find: dup.name}
			if f.walk(v, 0) == errFound {
				dup.first = f.found
			}
			return nil, accounting.Errorf(format, -1, dup.name, "two tensors flatten to this name: %s and %s (a dict key that is its own path, or keys that print alike: 1 and '1'?)",
				dup.first, dup.second)
		}
		return nil, err
	}
	return n.tensors, nil
}

// duplicateName is the error of a second tensor under a name.
type duplicateName struct{ name, first, second string }

func (e *duplicateName) Error() string { return "duplicate name " + e.name }

// holdsTensors reports whether v may be or hold a tensor: the walk skips
// everything else without building its name.
func holdsTensors(v any) bool {
	switch v.(type) {
	case *tensor, *storageRef, *pyDict, *types.List, *types.Tuple, *object, *pySet, *ndarray:
		return true
	}
	return false
}

// name materialises the name of the current path, as state_dict joins
// keys: "." between non-empty prefixes. It is built in a scratch buffer
// and copied once, at its size.
func (n *namer) name() string {
	if n.root == "" && len(n.path) == 1 && n.path[0].kind == stepKey {
		// A state_dict's: the key, a string of its own (see machine.str
		// and keyString).
		return n.path[0].key
	}
	b := append(n.scratch[:0], n.root...)
	for _, st := range n.path {
		switch st.kind {
		case stepHidden, stepState:
			continue
		}
		if len(b) > 0 {
			b = append(b, '.')
		}
		if st.kind == stepIndex {
			b = strconv.AppendInt(b, int64(st.index), 10)
		} else {
			b = append(b, st.key...)
		}
	}
	n.scratch = b
	return string(b)
}

// nameLen is len(n.name()), without building it.
func (n *namer) nameLen() int64 {
	size, empty := int64(len(n.root)), n.root == ""
	for _, st := range n.path {
		var l int64
		switch st.kind {
		case stepHidden, stepState:
			continue
		case stepIndex:
			l = 1
			for x := st.index; x >= 10; x /= 10 {
				l++
			}
		default:
			l = int64(len(st.key))
		}
		if !empty {
			size++
		}
		size += l
		empty = empty && l == 0
	}
	return size
}

// structural renders the current path for an error: root["a"][0].attr.
func (n *namer) structural() string {
	var b strings.Builder
	if n.root == "" {
		b.WriteString("pickle")
	} else {
		b.WriteString(n.root)
	}
	for _, st := range n.path {
		switch st.kind {
		case stepIndex:
			fmt.Fprintf(&b, "[%d]", st.index)
		case stepKey:
			fmt.Fprintf(&b, "[%q]", clip(st.key))
		case stepAttr, stepHidden:
			b.WriteString("." + clip(st.key))
		case stepState:
			b.WriteString(".__setstate__")
		}
		if b.Len() > 1024 {
			b.WriteString("...")
			break
		}
	}
	return b.String()
}

// errorName is the name of the current path for an error message, shortened.
func (n *namer) errorName() string { return clip(n.name()) }

// walk lists the tensors in v, at the current path. A value reached twice
// (the same object, through the pickle's memo) is listed under each name,
// as state_dict lists a tied weight or a shared submodule under both
// paths; the accounting sees their shared storage and charges it once. A
// container inside itself is walked once.
func (n *namer) walk(v any, depth int) error {
	if !holdsTensors(v) || n.onPath[v] {
		return nil
	}
	if n.steps++; n.steps > n.maxSteps {
		return accounting.Errorf(n.format, -1, "", "more than %d tensor paths, the limit for this file: shared containers nested too deep, under %q", n.maxSteps, n.errorName())
	}
	switch v.(type) {
	case *tensor, *storageRef:
	default:
		n.onPath[v] = true
		defer delete(n.onPath, v)
	}
	if depth > maxDepth {
		return accounting.Errorf(n.format, -1, "", "values nested deeper than %d levels, under %q", maxDepth, n.errorName())
	}
	depth++
	switch x := v.(type) {
	case *tensor:
		return n.tensor(x, depth)
	case *storageRef:
		return n.bareStorage(x)
	case *ndarray:
		return n.numpy(x, depth)
	case *pyDict:
		if err := n.entries(x.entries, depth, false, true); err != nil {
			return err
		}
		if depth == 1 {
			n.rootKey = false // the root dict's attributes are not its keys
		}
		// Attributes set on an OrderedDict (state_dict's _metadata).
		keys := make([]string, 0, len(x.attrs))
		for k, a := range x.attrs {
			if holdsTensors(a) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			if err := n.child(step{key: k, kind: stepAttr}, x.attrs[k], depth); err != nil {
				return err
			}
		}
	case *types.List, *types.Tuple, *pySet:
		items, _ := sequence(x)
		return n.elements(items, depth)
	case *object:
		n.owners, n.shared = append(n.owners, className(x.class)), nil
		defer func() { n.owners, n.shared = n.owners[:len(n.owners)-1], nil }()
		if err := n.elements(x.args, depth); err != nil {
			return err
		}
		if err := n.entries(x.attrs, depth, true, false); err != nil {
			return err
		}
		if err := n.entries(x.items, depth, false, false); err != nil {
			return err
		}
		if err := n.elements(x.elems, depth); err != nil {
			return err
		}
		for _, s := range x.state {
			if err := n.child(step{kind: stepState}, s, depth); err != nil {
				return err
			}
		}
	}
	return nil
}

// child walks v one step below the current path.
func (n *namer) child(st step, v any, depth int) error {
	n.path = append(n.path, st)
	err := n.walk(v, depth)
	n.path = n.path[:len(n.path)-1]
	return err
}

// entries walks key/value pairs, each named by its key. For an object's
// attributes, the nn.Module bookkeeping ones are transparent. distinct
// says that no two str keys of es are equal (a dict's: pyDict.set refuses
// a repeated key).
//
// A key that holds a tensor (torch.save of an optimizer object keys its
// state by the parameters themselves) has no name a str() of it would
// give, and two such keys would print alike: the entry is named by its
// position i in the dict instead, its key's tensors "<key i>" and its
// value's "<value i>". The key's tensors are the file's too.
func (n *namer) entries(es []entry, depth int, attrs, distinct bool) error {
	for i, e := range es {
		if !attrs && keyHoldsTensor(e.key, 0) {
			if err := n.positional(i, e, depth); err != nil {
				return err
			}
			continue
		}
		if !holdsTensors(e.value) {
			continue
		}
		st := step{key: keyString(e.key), kind: stepKey}
		if attrs {
			st.kind = stepAttr
			if moduleBookkeeping[st.key] {
				st.kind = stepHidden
			}
		}
		if len(n.path) == 0 {
			_, isStr := e.key.(string)
			n.rootKey = isStr && distinct
		}
		if err := n.child(st, e.value, depth); err != nil {
			return err
		}
	}
	return nil
}

// positional walks the i-th entry of a dict whose key holds a tensor:
// the key as "<key i>", the value as "<value i>".
func (n *namer) positional(i int, e entry, depth int) error {
	if len(n.path) == 0 {
		n.rootKey = false
	}
	pos := strconv.Itoa(i)
	if err := n.child(step{key: "<key " + pos + ">", kind: stepKey}, e.key, depth); err != nil {
		return err
	}
	if !holdsTensors(e.value) {
		return nil
	}
	return n.child(step{key: "<value " + pos + ">", kind: stepKey}, e.value, depth)
}

// keyHoldsTensor reports whether the dict key k is, or holds, a tensor or
// a storage: a tensor, or a tuple, frozenset or object with one inside.
// Past a few levels it answers yes, which names the entry by position
// whatever it holds (a key nests only as deep as its pickle does; the
// walk itself bounds the depth and breaks cycles).
func keyHoldsTensor(k any, depth int) bool {
	if depth > 16 {
		return true
	}
	switch x := k.(type) {
	case *tensor, *storageRef:
		return true
	case *types.Tuple:
		return slices.ContainsFunc(*x, func(v any) bool { return keyHoldsTensor(v, depth+1) })
	case *pySet:
		return slices.ContainsFunc(x.elems, func(v any) bool { return keyHoldsTensor(v, depth+1) })
	case *object:
		in := func(v any) bool { return keyHoldsTensor(v, depth+1) }
		inEntry := func(e entry) bool { return in(e.key) || in(e.value) }
		return slices.ContainsFunc(x.args, in) || slices.ContainsFunc(x.elems, in) || slices.ContainsFunc(x.state, in) ||
			slices.ContainsFunc(x.attrs, inEntry) || slices.ContainsFunc(x.items, inEntry)
	}
	return false
}

// elements walks a sequence, each element named by its index.
func (n *namer) elements(items []any, depth int) error {
	for i, v := range items {
		if !holdsTensors(v) {
			continue
		}
		if err := n.child(step{index: i, kind: stepIndex}, v, depth); err != nil {
			return err
		}
	}
	return nil
}

// list names the tensor at the current path and appends it, failing when
// the names grow past their bound or another tensor has the name.
func (n *namer) list(t accounting.Tensor) error {
	// Counted before it is built: a name past the bound is never made.
	if n.nameBytes += n.nameLen(); n.nameBytes > n.maxNames {
		return accounting.Errorf(n.format, -1, "", "tensor names total more than %d bytes, the limit for this file: containers shared or nested too deep", n.maxNames)
	}
	name := n.name()
	if n.find != "" {
		if name == n.find {
			n.found = n.structural()
			return errFound
		}
		return nil
	}
	if n.names == nil {
		if n.rootKey && len(n.path) == 1 && n.path[0].kind == stepKey {
			t.Name = name
			n.tensors = append(n.tensors, t)
			return nil
		}
		n.names = make(map[string]int, max(n.sizeHint, len(n.tensors)+1))
		for i := range n.tensors {
			n.names[n.tensors[i].Name] = i
		}
	}
	if _, dup := n.names[name]; dup {
		return &duplicateName{name: clip(name), second: n.structural()}
	}
	n.names[name] = len(n.tensors)
	t.Name = name
	n.tensors = append(n.tensors, t)
	return nil
}

// tensor checks that t lies inside its storage and lists it, then the
// tensors it carries.
func (n *namer) tensor(t *tensor, depth int) error {
	fail := func(msg string, args ...any) error {
		return accounting.Errorf(n.format, t.at, n.errorName(), msg, args...)
	}
	dt, ok := accounting.LookupDType(t.dtype)
	if !ok {
		return fail("unknown dtype %q", t.dtype)
	}
	shape, stride := t.shape(), t.stride()
	numel, err := accounting.Numel(shape)
	if err != nil {
		return fail("%v", err)
	}
	if t.offset < 0 {
		return fail("negative storage offset %d", t.offset)
	}
	for _, s := range stride {
		if s < 0 {
			return fail("negative stride in %v", stride)
		}
	}
	if t.ref.s.dataOffset == accounting.NoDataOffset {
		// A meta tensor: no storage to lie inside.
		if err := n.list(accounting.Tensor{DType: t.dtype, Shape: orNoDims(shape), Strides: noncontiguous(shape, stride),
			Storage: t.ref.s.key, DataOffset: accounting.NoDataOffset, Owners: n.ownerList()}); err != nil {
			return err
		}
		return n.entries(t.attrs, depth, false, false)
	}
	lo, hi := t.ref.region()
	offBytes, err := dt.Bytes(t.offset)
	if err != nil {
		return fail("storage offset: %v", err)
	}
	start, ok := add(lo, offBytes)
	if !ok || start > hi {
		return fail("storage offset %d is past the end of storage %q (%d bytes)", t.offset, t.ref.s.key, hi)
	}
	if numel > 0 {
		// The view's last element is at offset + sum((size-1)*stride).
		last := t.offset
		for i, size := range shape {
			step, ok1 := mul(size-1, stride[i])
			sum, ok2 := add(last, step)
			if !ok1 || !ok2 {
				return fail("view size %v stride %v overflows int64", shape, stride)
			}
			last = sum
		}
		endElems, ok1 := add(last, 1)
		endBytes, err := dt.Bytes(endElems)
		if dt.RowPacked && t.offset == 0 && accounting.Contiguous(shape, stride) {
			// Each row in whole bytes: torch's own size for the tensor.
			endBytes, err = dt.ShapeBytes(shape)
		}
		end, ok2 := add(lo, endBytes)
		if !ok1 || err != nil || !ok2 || end > hi {
			return fail("view (offset %d, size %v, stride %v) runs past the end of storage %q (%d bytes)",
				t.offset, shape, stride, t.ref.s.key, hi-lo)
		}
	}
	// The shape and stride are the tensor's own: an int64 block of the
	// unpickler's arena, or a slice of their own, which hold no pointers.
	strides := noncontiguous(shape, stride)
	shape = orNoDims(shape)
	var q qparams
	if t.q != nil {
		q = *t.q
	}
	if err := n.list(accounting.Tensor{
		DType:        t.dtype,
		Shape:        shape,
		Strides:      strides,
		Storage:      t.ref.s.key,
		StorageBytes: t.ref.s.bytes,
		ViewOffset:   start,
		DataOffset:   t.ref.s.dataOffset,
		QScale:       q.scale,
		QZeroPoint:   q.zero,
		Owners:       n.ownerList(),
	}); err != nil {
		return err
	}
	return n.entries(t.attrs, depth, false, false)
}

// numpy lists a numpy array as a tensor of its own storage, held in the
// pickle (see numpy.go), or, when it cannot tell its size, walks it as the
// object it is and records it as unread.
func (n *namer) numpy(a *ndarray, depth int) error {
	arr, err := a.array()
	if err == nil {
		err = checkNumpySize(arr)
	}
	if err != nil {
		a.unread()
		return n.walk(a.obj, depth)
	}
	var strides []int64
	if arr.fortran && len(arr.shape) > 1 && arr.bytes > 0 {
		// Column-major; the product stays within the data's size, which
		// checkNumpySize held to the shape's (no dimension is 0).
		strides = make([]int64, len(arr.shape))
		s := int64(1)
		for i, d := range arr.shape {
			strides[i] = s
			s *= d
		}
		strides = noncontiguous(arr.shape, strides)
	}
	key, ok := n.numpyKeys[arr.data]
	if !ok || arr.data == nil {
		key = fmt.Sprintf("(numpy %d)", n.numpys)
		n.numpys++
		if arr.data != nil {
			if n.numpyKeys == nil {
				n.numpyKeys = map[*byte]string{}
			}
			n.numpyKeys[arr.data] = key
		}
	}
	return n.list(accounting.Tensor{
		DType:        arr.dtype,
		Shape:        orNoDims(arr.shape),
		Strides:      strides,
		Storage:      key,
		StorageBytes: arr.bytes,
		DataOffset:   -1,
		Owners:       n.ownerList(),
	})
}

// checkNumpySize fails unless the array's data is its shape's elements.
func checkNumpySize(arr numpyArray) error {
	dt, _ := accounting.LookupDType(arr.dtype)
	numel, err := accounting.Numel(arr.shape)
	if err != nil {
		return err
	}
	want, err := dt.Bytes(numel)
	if err != nil {
		return err
	}
	if want != arr.bytes {
		return fmt.Errorf("%d bytes of data for %d elements of %s", arr.bytes, numel, arr.dtype)
	}
	return nil
}

// noDims is every empty shape: a scalar's, empty but not nil.
var noDims = []int64{}

// orNoDims returns shape, or noDims for a scalar's.
func orNoDims(shape []int64) []int64 {
	if len(shape) == 0 {
		return noDims
	}
	return shape
}

// noncontiguous returns stride, or nil when it is shape's C-contiguous one.
func noncontiguous(shape, stride []int64) []int64 {
	if accounting.Contiguous(shape, stride) {
		return nil
	}
	return stride
}

// ownerList returns the classes holding the tensor being listed.
func (n *namer) ownerList() []string {
	if n.shared == nil && len(n.owners) > 0 {
		n.shared = slices.Clone(n.owners)
	}
	return n.shared
}

// className names a pickled class as Python code would import it:
// TorchScript's "__torch__." prefix and "___torch_mangle_<n>" module parts
// removed ("__torch__.torch.nn.quantized.modules.linear.___torch_mangle_3
// Linear" is torch.nn.quantized.modules.linear.Linear).
func className(c *pyClass) string {
	parts := strings.Split(c.module, ".")
	if parts[0] == "__torch__" {
		parts = parts[1:]
	}
	parts = slices.DeleteFunc(parts, func(p string) bool { return strings.HasPrefix(p, "___torch_mangle_") })
	return strings.Join(append(parts, c.name), ".")
}

// bareStorage lists a storage saved on its own, not as a tensor, as a 1-D
// tensor over all of it: its bytes are in the file all the same.
func (n *namer) bareStorage(r *storageRef) error {
	lo, hi := r.region()
	return n.list(accounting.Tensor{
		DType:        r.s.typ.dtype,
		Shape:        []int64{(hi - lo) / r.s.typ.elemBytes},
		Storage:      r.s.key,
		StorageBytes: r.s.bytes,
		ViewOffset:   lo,
		DataOffset:   r.s.dataOffset,
	})
}

// keyString renders a dict key as Python's str() would for the key types
// checkpoints use.
func keyString(k any) string {
	switch x := k.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case int:
		return strconv.Itoa(x)
	case bool:
		if x {
			return "True"
		}
		return "False"
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case nil:
		return "None"
	case *big.Int:
		return x.String()
	case *types.Tuple:
		parts := make([]string, x.Len())
		for i, e := range *x {
			if _, nested := e.(*types.Tuple); nested {
				parts[i] = "(...)"
			} else {
				parts[i] = keyString(e)
			}
		}
		if len(parts) == 1 {
			return "(" + parts[0] + ",)"
		}
		return "(" + strings.Join(parts, ", ") + ")"
	}
	return typeName(k)
}
