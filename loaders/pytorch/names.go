package pytorch

import (
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/nlpodyssey/gopickle/types"
	"github.com/qinsaudit/qinsaudit/accounting"
)

// maxDepth bounds how deeply the naming walk follows nested values; a
// pickle can nest lists a million deep in two bytes a level.
const maxDepth = 1000

// moduleBookkeeping are the nn.Module attributes that hold parameters,
// buffers and submodules. They do not appear in state_dict names.
var moduleBookkeeping = map[string]bool{"_parameters": true, "_buffers": true, "_modules": true}

// namer walks an unpickled value and lists its tensors, named by their path
// as state_dict would name them.
type namer struct {
	format  string
	onPath  map[any]bool // containers being walked: a cycle guard
	steps   int
	tensors []accounting.Tensor
	// owners are the classes of the objects being walked, outermost first
	// (see accounting.Tensor.Owners); shared is a copy of them that the
	// tensors listed since the last change share.
	owners, shared []string
}

// maxSteps bounds the walk: a pickle that shares containers can name the
// same tensor by exponentially many paths.
const maxSteps = 1 << 20

// nameTensors lists the tensors of v, named under root, in walk order.
func nameTensors(format, root string, v any) ([]accounting.Tensor, error) {
	n := &namer{format: format, onPath: map[any]bool{}}
	if err := n.walk(v, root, 0); err != nil {
		return nil, err
	}
	return n.tensors, nil
}

// holdsTensors reports whether v may be or hold a tensor: the walk skips
// everything else without building its name.
func holdsTensors(v any) bool {
	switch v.(type) {
	case *tensor, *storageRef, *types.Dict, *types.OrderedDict, *types.List, *types.Tuple, *object, *pySet:
		return true
	}
	return false
}

// walk lists the tensors in v, whose name is name. A value reached twice
// (the same object, through the pickle's memo) is listed under each name,
// as state_dict lists a tied weight or a shared submodule under both
// paths; the accounting sees their shared storage and charges it once. A
// container inside itself is walked once.
func (n *namer) walk(v any, name string, depth int) error {
	if !holdsTensors(v) || n.onPath[v] {
		return nil
	}
	if n.steps++; n.steps > maxSteps {
		return accounting.Errorf(n.format, -1, "", "more than %d tensor paths: shared containers nested too deep, under %q", maxSteps, clip(name))
	}
	switch v.(type) {
	case *tensor, *storageRef:
	default:
		n.onPath[v] = true
		defer delete(n.onPath, v)
	}
	if depth > maxDepth {
		return accounting.Errorf(n.format, -1, "", "values nested deeper than %d levels, under %q", maxDepth, clip(name))
	}
	depth++
	switch x := v.(type) {
	case *tensor:
		return n.tensor(x, name, depth)
	case *storageRef:
		return n.bareStorage(x, name)
	case *types.Dict, *types.OrderedDict:
		entries, _ := dictEntries(x)
		if err := n.entries(entries, name, depth, false); err != nil {
			return err
		}
		if od, ok := x.(*types.OrderedDict); ok {
			// Attributes set on an OrderedDict (state_dict's _metadata).
			keys := make([]string, 0, len(od.PyDict))
			for k := range od.PyDict {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if err := n.walk(od.PyDict[k], accounting.JoinName(name, k), depth); err != nil {
					return err
				}
			}
		}
	case *types.List, *types.Tuple, *pySet:
		items, _ := sequence(x)
		return n.elements(items, name, depth)
	case *object:
		n.owners, n.shared = append(n.owners, className(x.class)), nil
		defer func() { n.owners, n.shared = n.owners[:len(n.owners)-1], nil }()
		if err := n.elements(x.args, name, depth); err != nil {
			return err
		}
		if err := n.entries(x.attrs, name, depth, true); err != nil {
			return err
		}
		if err := n.entries(x.items, name, depth, false); err != nil {
			return err
		}
		if err := n.elements(x.elems, name, depth); err != nil {
			return err
		}
		for _, s := range x.state {
			if err := n.walk(s, name, depth); err != nil {
				return err
			}
		}
	}
	return nil
}

// entries walks key/value pairs, each named by its key. For an object's
// attributes, the nn.Module bookkeeping ones are transparent.
func (n *namer) entries(es []entry, name string, depth int, attrs bool) error {
	for _, e := range es {
		if !holdsTensors(e.value) {
			continue
		}
		key := keyString(e.key)
		child := accounting.JoinName(name, key)
		if attrs && moduleBookkeeping[key] {
			child = name
		}
		if err := n.walk(e.value, child, depth); err != nil {
			return err
		}
	}
	return nil
}

// elements walks a sequence, each element named by its index.
func (n *namer) elements(items []any, name string, depth int) error {
	for i, v := range items {
		if !holdsTensors(v) {
			continue
		}
		if err := n.walk(v, accounting.JoinName(name, strconv.Itoa(i)), depth); err != nil {
			return err
		}
	}
	return nil
}

// tensor checks that t lies inside its storage and lists it, then the
// tensors it carries.
func (n *namer) tensor(t *tensor, name string, depth int) error {
	fail := func(msg string, args ...any) error {
		return accounting.Errorf(n.format, t.at, name, msg, args...)
	}
	dt, ok := accounting.LookupDType(t.dtype)
	if !ok {
		return fail("unknown dtype %q", t.dtype)
	}
	numel, err := accounting.Numel(t.shape)
	if err != nil {
		return fail("%v", err)
	}
	if t.offset < 0 {
		return fail("negative storage offset %d", t.offset)
	}
	for _, s := range t.stride {
		if s < 0 {
			return fail("negative stride in %v", t.stride)
		}
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
		for i, size := range t.shape {
			step, ok1 := mul(size-1, t.stride[i])
			sum, ok2 := add(last, step)
			if !ok1 || !ok2 {
				return fail("view size %v stride %v overflows int64", t.shape, t.stride)
			}
			last = sum
		}
		endElems, ok1 := add(last, 1)
		endBytes, err := dt.Bytes(endElems)
		end, ok2 := add(lo, endBytes)
		if !ok1 || err != nil || !ok2 || end > hi {
			return fail("view (offset %d, size %v, stride %v) runs past the end of storage %q (%d bytes)",
				t.offset, t.shape, t.stride, t.ref.s.key, hi-lo)
		}
	}
	var strides []int64
	if !accounting.Contiguous(t.shape, t.stride) {
		strides = t.stride
	}
	n.tensors = append(n.tensors, accounting.Tensor{
		Name:         name,
		DType:        t.dtype,
		Shape:        t.shape,
		Strides:      strides,
		Storage:      t.ref.s.key,
		StorageBytes: t.ref.s.bytes,
		ViewOffset:   start,
		DataOffset:   t.ref.s.dataOffset,
		QScale:       t.qscale,
		QZeroPoint:   t.qzero,
		Owners:       n.ownerList(),
	})
	return n.entries(t.attrs, name, depth, false)
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
func (n *namer) bareStorage(r *storageRef, name string) error {
	lo, hi := r.region()
	n.tensors = append(n.tensors, accounting.Tensor{
		Name:         name,
		DType:        r.s.typ.dtype,
		Shape:        []int64{(hi - lo) / r.s.typ.elemBytes},
		Storage:      r.s.key,
		StorageBytes: r.s.bytes,
		ViewOffset:   lo,
		DataOffset:   r.s.dataOffset,
	})
	return nil
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
