package pytorch

import (
	"errors"
	"fmt"
	"github.com/qinsaudit/qinsaudit/internal/neutral"
	"sync"

	"github.com/nlpodyssey/gopickle/types"
)

// unpickler resolves what a pickle names while the machine (scan.go)
// reads it. Nothing in the pickle is ever executed: classes resolve to the
// Go values of the allow-list below or to pyClass, which only records how
// it was called.
type unpickler struct {
	m *machine // the pickle being read
	// base is the file offset of the pickle's first byte, or -1 when the
	// pickle is not stored as is (a compressed data.pkl).
	base int64
	// persistent resolves a persistent id (a storage); nil when the pickle
	// may hold none.
	persistent func(pid any) (any, error)
	calls      int   // rebuild calls in progress (they may nest)
	metas      int   // meta tensors rebuilt, which name their storages
	bytes      int64 // the pickle's length, STOP included, once read
	// globals are the names the pickle imports that torch.load's
	// weights_only unpickler would refuse, in pickle order, each once.
	globals []global
	seen    map[string]bool
	// unread are the tensor rebuild functions the pickle calls that this
	// reader does not implement, each once.
	unread []global
	arena  arena // the values built per tensor
	// sizeHint is the number of storages the file holds, about the
	// entries of a state_dict (0: unknown).
	sizeHint int
}

// maxCalls bounds nested rebuild calls (_rebuild_from_type_v2 calling a
// function that is itself _rebuild_from_type_v2, ...).
const maxCalls = 32

// caller and newer are how a pickle uses a class or function: REDUCE
// calls it, NEWOBJ runs its __new__.
type caller interface {
	Call(args ...any) (any, error)
}
type newer interface {
	PyNew(args ...any) (any, error)
}

// load reads the pickle at the start of in.
func (u *unpickler) load(in *pickleInput) (any, error) {
	return runPickle(in, u)
}

// offset is the file offset of the opcode being run, -1 if unknown.
func (u *unpickler) offset() int64 {
	if u.base < 0 || u.m == nil {
		return -1
	}
	return u.base + int64(u.m.opPos)
}

// notBytes fails for a bytes value where the machine expects a value it
// can use as a key. Persistent ids and allow-listed calls can hand a
// pickled value back (a legacy ('module', class, ...) id returns its class
// field, _rebuild_from_type what its function gives); no real checkpoint
// hands back bytes, and the machine refuses bytes as OrderedDict keys and
// set members (see noBytesKeys), so both paths check here.
func notBytes(v any, what string) error {
	if _, ok := v.([]byte); ok {
		return fmt.Errorf("%s bytes (unsupported)", what)
	}
	return nil
}

// clip shortens text quoted in an error: a pickle's name or message must
// not come back whole.
func clip(s string) string { return neutral.Clip(s, 200) }

// findClass resolves a GLOBAL or STACK_GLOBAL at pickle offset at:
// allow-listed names to their Go stand-ins, everything else to a pyClass.
// A name torch's weights_only unpickler would refuse is recorded (see
// unsafe.go).
func (u *unpickler) findClass(module, name string, at int64) any {
	full := module + "." + name
	if v, ok := allowed()[full]; ok {
		return v
	}
	if fn, ok := rebuilders()[full]; ok {
		return &callable{name: name, fn: fn, u: u}
	}
	u.note(module, name, at)
	if tensorRebuild(module, name) {
		u.unread = u.noteOnce(u.unread, module, name, at)
	}
	if isNumpyArrayFunc(module, name) {
		return &numpyClass{class: &pyClass{module: module, name: name}, u: u, at: at}
	}
	switch full {
	case "collections.OrderedDict":
		return orderedDictClass{}
	case "copyreg._reconstructor", "copy_reg._reconstructor":
		return reconstructor{}
	}
	return &pyClass{module: module, name: name}
}

// allowed maps the module-qualified names of classes and constants that
// torch checkpoints reference to stateless Go stand-ins. It and rebuilders
// are built on first use: every command links this package.
var allowed = sync.OnceValue(func() map[string]any {
	m := map[string]any{
		"torch.UntypedStorage":         &storageClass{name: "UntypedStorage", typ: untypedStorage, known: true},
		"torch.storage.UntypedStorage": &storageClass{name: "UntypedStorage", typ: untypedStorage, known: true},
		"torch.storage.TypedStorage":   &storageClass{name: "TypedStorage"},
		"torch.storage._TypedStorage":  &storageClass{name: "_TypedStorage"},
		"torch.nn.parameter.Parameter": parameterClass{},
		"builtins.set":                 setClass{},
		"builtins.frozenset":           setClass{},
		"__builtin__.set":              setClass{},
		"__builtin__.frozenset":        setClass{},
	}
	for name, t := range storageTypes() {
		m["torch."+name] = &storageClass{name: name, typ: t, known: true}
	}
	for name, canon := range torchDTypes {
		m["torch."+name] = dtypeObj(canon)
	}
	for _, q := range qschemes {
		m["torch."+q] = qscheme(q)
	}
	return m
})

// rebuilders are the torch functions that torch.save's pickles call to
// rebuild tensors and parameters; they are reimplemented in tensors.go.
var rebuilders = sync.OnceValue(func() map[string]func(u *unpickler, args []any) (any, error) {
	return map[string]func(u *unpickler, args []any) (any, error){
		"torch._utils._rebuild_tensor":                   rebuildTensor,
		"torch._utils._rebuild_tensor_v2":                rebuildTensorV2,
		"torch._utils._rebuild_tensor_v3":                rebuildTensorV3,
		"torch._utils._rebuild_qtensor":                  rebuildQTensor,
		"torch._utils._rebuild_parameter":                rebuildParameter,
		"torch._utils._rebuild_parameter_with_state":     rebuildParameterWithState,
		"torch._utils._rebuild_meta_tensor_no_storage":   rebuildMetaTensor,
		"torch._utils._rebuild_device_tensor_from_numpy": rebuildDeviceFromNumpy,
		"torch._utils._rebuild_sparse_tensor":            rebuildSparse,
		"torch._utils._rebuild_sparse_csr_tensor":        rebuildSparse,
		"torch._tensor._rebuild_from_type":               rebuildFromType,
		"torch._tensor._rebuild_from_type_v2":            rebuildFromType,
		"torch.tensor._rebuild_from_type":                rebuildFromType,
		"torch.tensor._rebuild_from_type_v2":             rebuildFromType,
	}
})

// callable is an allow-listed torch function.
type callable struct {
	name string
	fn   func(u *unpickler, args []any) (any, error)
	u    *unpickler
}

func (c *callable) Call(args ...any) (any, error) {
	if c.u.calls >= maxCalls {
		return nil, fmt.Errorf("%s: calls nested more than %d deep", c.name, maxCalls)
	}
	c.u.calls++
	defer func() { c.u.calls-- }()
	v, err := c.fn(c.u, args)
	if err == nil {
		err = notBytes(v, "returns")
	}
	if err != nil {
		var ce *callError
		if errors.As(err, &ce) {
			return nil, err // named by the innermost call already
		}
		return nil, &callError{c.name, err}
	}
	return v, nil
}

// callError is an error of an allow-listed function, named after it.
type callError struct {
	name string
	err  error
}

func (e *callError) Error() string { return e.name + ": " + e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

// storageClass is a torch storage class (torch.FloatStorage, ...), as named
// in a persistent id. known is false for TypedStorage, which names no dtype.
type storageClass struct {
	name  string
	typ   storageType
	known bool
}

// dtypeObj is a torch dtype object (torch.float16), by canonical name.
type dtypeObj string

// qscheme is a torch quantization scheme (torch.per_tensor_affine).
type qscheme string

// parameterClass is torch.nn.Parameter: a Parameter is its data tensor.
type parameterClass struct{}

func (parameterClass) Call(args ...any) (any, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("parameter: no data argument")
	}
	return asTensor(args[0])
}

func (c parameterClass) PyNew(args ...any) (any, error) { return c.Call(args...) }

// reconstructor is copyreg._reconstructor(cls, base, state), which protocol
// 0 and 1 pickles use to create instances: it creates an empty instance of
// cls.
type reconstructor struct{}

func (reconstructor) Call(args ...any) (any, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("_reconstructor: no class argument")
	}
	c, ok := args[0].(newer)
	if !ok {
		return nil, fmt.Errorf("_reconstructor: %s is not a class", typeName(args[0]))
	}
	return c.PyNew()
}

// orderedDictClass is collections.OrderedDict, called with no argument
// or, as Python 2 era checkpoints do, with the list of (key, value) pairs
// (or a dict) to start from.
type orderedDictClass struct{}

func (orderedDictClass) Call(args ...any) (any, error) {
	d := &pyDict{ordered: true}
	switch len(args) {
	case 0:
		return d, nil
	case 1:
	default:
		return nil, fmt.Errorf("OrderedDict: %d arguments", len(args))
	}
	var pairs []entry
	if es, ok := dictEntries(args[0]); ok {
		pairs = es
	} else {
		items, ok := sequence(args[0])
		if !ok {
			return nil, fmt.Errorf("OrderedDict: cannot iterate over %s", typeName(args[0]))
		}
		pairs = make([]entry, len(items))
		for i, it := range items {
			pair, ok := sequence(it)
			if !ok || len(pair) != 2 {
				return nil, fmt.Errorf("OrderedDict: item %d is %s, not a (key, value) pair", i, typeName(it))
			}
			pairs[i] = entry{pair[0], pair[1]}
		}
	}
	for i, e := range pairs {
		// As SETITEM into an OrderedDict: no bytes keys.
		if err := notBytes(e.key, "key is"); err != nil {
			return nil, fmt.Errorf("OrderedDict: item %d: %v", i, err)
		}
		if err := d.set(e.key, e.value); err != nil {
			return nil, fmt.Errorf("OrderedDict: item %d: %v", i, err)
		}
	}
	return d, nil
}

func (c orderedDictClass) PyNew(args ...any) (any, error) { return c.Call(args...) }

// setClass is builtins.set and frozenset. Its sets keep insertion order
// (as the machine's own sets, from EMPTY_SET and FROZENSET, do).
type setClass struct{}

func (setClass) Call(args ...any) (any, error) {
	s := &pySet{}
	switch len(args) {
	case 0:
	case 1:
		items, ok := sequence(args[0])
		if !ok {
			return nil, fmt.Errorf("set: cannot iterate over %s", typeName(args[0]))
		}
		s.elems = append(s.elems, items...)
	default:
		return nil, fmt.Errorf("set: %d arguments", len(args))
	}
	return s, nil
}

func (c setClass) PyNew(args ...any) (any, error) { return c.Call(args...) }

// pySet is a set built by setClass.
type pySet struct{ elems []any }

func (s *pySet) Add(v any) { s.elems = append(s.elems, v) }

// pyClass is any class or function outside the allow-list (a user's
// nn.Module subclass, torch.nn.modules.*, argparse.Namespace, numpy...).
// Calling or instantiating it runs nothing; it records the arguments in an
// object.
type pyClass struct{ module, name string }

func (c *pyClass) Call(args ...any) (any, error) { return &object{class: c, args: args}, nil }

func (c *pyClass) PyNew(args ...any) (any, error) { return c.Call(args...) }

// object is an instance of a pyClass, holding whatever the pickle gave it.
type object struct {
	class *pyClass
	args  []any   // constructor arguments
	attrs []entry // __dict__ and slots, from BUILD
	items []entry // SETITEM(S): a dict subclass
	elems []any   // APPEND(S), ADDITEMS: a list or set subclass
	state []any   // BUILD states that are not attribute dicts
}

// entry is one key/value pair of a dict, or one attribute.
type entry struct{ key, value any }

func (o *object) PySetState(state any) error {
	attrs, rest := splitState(state)
	o.attrs = append(o.attrs, attrs...)
	if rest != nil {
		o.state = append(o.state, rest)
	}
	return nil
}

func (o *object) Set(k, v any) { o.items = append(o.items, entry{k, v}) }
func (o *object) Append(v any) { o.elems = append(o.elems, v) }
func (o *object) Add(v any)    { o.elems = append(o.elems, v) }

// splitState splits a BUILD state into attributes (a __dict__, or the
// (__dict__, slots) pair of a class with __slots__) and anything else.
func splitState(state any) (attrs []entry, rest any) {
	if d, ok := dictEntries(state); ok {
		return d, nil
	}
	if t, ok := state.(*types.Tuple); ok && t.Len() == 2 {
		a, okA := dictEntries(t.Get(0))
		b, okB := dictEntries(t.Get(1))
		if (okA || t.Get(0) == nil) && (okB || t.Get(1) == nil) {
			return append(a, b...), nil
		}
	}
	if state == nil {
		return nil, nil
	}
	return nil, state
}

// dictEntries returns the items of a dict or OrderedDict in order.
func dictEntries(v any) ([]entry, bool) {
	if d, ok := v.(*pyDict); ok {
		return d.entries, true
	}
	return nil, false
}

// sequence returns the elements of a list, tuple or set built in order.
func sequence(v any) ([]any, bool) {
	switch s := v.(type) {
	case *types.List:
		return *s, true
	case *types.Tuple:
		return *s, true
	case *pySet:
		return s.elems, true
	}
	return nil, false
}

// typeName names the Python type of a value for error messages.
func typeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case int:
		return "int"
	case float64:
		return "float"
	case bool:
		return "bool"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case *types.Tuple:
		return "tuple"
	case *types.List:
		return "list"
	case *pyDict:
		if x.ordered {
			return "OrderedDict"
		}
		return "dict"
	case *pySet:
		return "set"
	case *storageRef:
		return "storage"
	case *tensor:
		return "tensor"
	case *storageClass:
		return "torch." + x.name
	case *pyClass:
		return "class " + x.module + "." + x.name
	case *object:
		return x.class.module + "." + x.class.name
	case *ndarray:
		return "numpy.ndarray"
	case dtypeObj:
		return "torch." + string(x)
	case qscheme:
		return "torch." + string(x)
	}
	return fmt.Sprintf("%T", v)
}
