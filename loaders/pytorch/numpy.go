package pytorch

import (
	"fmt"
	"unicode/utf8"
	"unsafe"

	"github.com/nlpodyssey/gopickle/types"
)

// A numpy array in a checkpoint (torch.save of a dict holding one, a
// legacy weight file of numpy weights) keeps its bytes inside the pickle,
// not in a storage. numpy pickles it as
//
//	numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')
//	BUILD (1, shape, dtype, is_fortran, data)
//
// under protocols 0 to 4 (protocol 2, torch.save's default, writes data
// as _codecs.encode(text, 'latin1'): the bytes as latin-1 text, each byte
// from 0x80 up taking two in the file), and as
// numpy.core.numeric._frombuffer(buffer, dtype, shape, order) under
// protocol 5 (numpy._core from numpy 2). The dtype is numpy.dtype(code,
// False, True) with a BUILD of its byte order. Such an array is listed as
// a tensor of its own storage, which the file places at no fixed offset:
// its stored bytes are its data's, and what the pickle's encoding adds is
// the file's overhead. An array this reader cannot size (an object or
// string array, a subclass, a state it does not know) is listed as
// unread: its bytes stay overhead, and the unread-tensors finding says
// so.

// ndarray is a numpy array as the pickle builds it: the call, and the
// state a BUILD gives it, kept as an object so that an array the namer
// cannot read is walked like any other (an object array may hold
// tensors).
type ndarray struct {
	obj *object
	u   *unpickler
	at  int64 // pickle offset of the function's import
}

// numpyClass is numpy's _reconstruct or _frombuffer.
type numpyClass struct {
	class *pyClass
	u     *unpickler
	at    int64
}

// isNumpyArrayFunc reports whether module.name is how numpy pickles an
// array.
func isNumpyArrayFunc(module, name string) bool {
	switch module + "." + name {
	case "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
		"numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer":
		return true
	}
	return false
}

func (c *numpyClass) Call(args ...any) (any, error) {
	return &ndarray{obj: &object{class: c.class, args: args}, u: c.u, at: c.at}, nil
}

func (c *numpyClass) PyNew(args ...any) (any, error) { return c.Call(args...) }

func (a *ndarray) PySetState(state any) error { return a.obj.PySetState(state) }

// numpyArray is what the namer lists for a numpy array.
type numpyArray struct {
	dtype   string
	shape   []int64
	fortran bool
	bytes   int64 // the data's length
	// data is the first byte of the data's value in the pickle, nil when
	// it is empty: arrays built on one value (the memo lets a pickle
	// reuse it) are one storage, whose bytes the file holds once.
	data *byte
}

// unread records the array's function as one the loader does not read.
func (a *ndarray) unread() {
	a.u.unread = a.u.noteOnce(a.u.unread, a.obj.class.module, a.obj.class.name, a.at)
}

// array reads the array's dtype, shape and data, or fails saying why.
func (a *ndarray) array() (numpyArray, error) {
	o := a.obj
	var arr numpyArray
	var dtype, shape, data any
	if o.class.name == "_frombuffer" {
		// _frombuffer(buffer, dtype, shape, order)
		if len(o.args) != 4 || len(o.state) > 0 || len(o.attrs) > 0 {
			return arr, fmt.Errorf("_frombuffer of %d arguments", len(o.args))
		}
		data, dtype, shape = o.args[0], o.args[1], o.args[2]
		order, _ := o.args[3].(string)
		if order != "C" && order != "F" {
			return arr, fmt.Errorf("order %s", typeName(o.args[3]))
		}
		arr.fortran = order == "F"
	} else {
		// _reconstruct(numpy.ndarray, (0,), b'b'), then the BUILD.
		if len(o.args) < 1 || !isClass(o.args[0], "numpy", "ndarray") {
			return arr, fmt.Errorf("not a numpy.ndarray (a subclass?)")
		}
		if len(o.state) != 1 || len(o.attrs) > 0 {
			return arr, fmt.Errorf("no array state")
		}
		st, ok := sequence(o.state[0])
		if ok && len(st) == 5 { // (version, shape, dtype, is_fortran, data)
			st = st[1:]
		}
		if !ok || len(st) != 4 {
			return arr, fmt.Errorf("array state of %s", typeName(o.state[0]))
		}
		shape, dtype, data = st[0], st[1], st[3]
		if arr.fortran, ok = st[2].(bool); !ok {
			return arr, fmt.Errorf("is_fortran is %s", typeName(st[2]))
		}
	}
	var err error
	if arr.dtype, err = numpyDType(dtype); err != nil {
		return arr, err
	}
	if arr.shape, err = intTuple(shape, "shape", nil); err != nil {
		return arr, err
	}
	switch d := data.(type) {
	case []byte: // protocol 3 and 4
		arr.bytes, arr.data = int64(len(d)), unsafe.SliceData(d)
	case *types.ByteArray: // protocol 5, in band
		arr.bytes, arr.data = int64(d.Len()), unsafe.SliceData(*d)
	case string: // a Python 2 str
		arr.bytes, arr.data = int64(len(d)), unsafe.StringData(d)
	case *object: // _codecs.encode(text, 'latin1'), or bytes() when empty
		if isEmptyBytes(d) {
			break
		}
		text, ok := latin1Text(d)
		if !ok {
			return arr, fmt.Errorf("data is %s", typeName(d))
		}
		arr.bytes, arr.data = int64(utf8.RuneCountInString(text)), unsafe.StringData(text)
	default:
		return arr, fmt.Errorf("data is %s", typeName(data))
	}
	return arr, nil
}

// latin1Text returns the text of _codecs.encode(text, 'latin1'), if every
// character of it is one byte in latin-1.
func latin1Text(o *object) (string, bool) {
	if o.class.module != "_codecs" || o.class.name != "encode" || len(o.args) != 2 || len(o.state) > 0 {
		return "", false
	}
	text, ok1 := o.args[0].(string)
	enc, ok2 := o.args[1].(string)
	if !ok1 || !ok2 || enc != "latin1" && enc != "latin-1" {
		return "", false
	}
	for _, r := range text {
		if r > 0xff {
			return "", false
		}
	}
	return text, true
}

// isEmptyBytes reports whether o is bytes(), as protocol 2 pickles b”.
func isEmptyBytes(o *object) bool {
	m := o.class.module
	return (m == "__builtin__" || m == "builtins") && o.class.name == "bytes" && len(o.args) == 0 && len(o.state) == 0
}

// isClass reports whether v is the pickled class module.name.
func isClass(v any, module, name string) bool {
	c, ok := v.(*pyClass)
	return ok && c.module == module && c.name == name
}

// numpyDTypes maps the codes numpy.dtype is pickled with to dtype names.
var numpyDTypes = map[string]string{
	"f2": "float16", "f4": "float32", "f8": "float64",
	"c8": "complex64", "c16": "complex128",
	"i1": "int8", "i2": "int16", "i4": "int32", "i8": "int64",
	"u1": "uint8", "u2": "uint16", "u4": "uint32", "u8": "uint64",
	"b1": "bool",
}

// numpyDType reads a pickled numpy.dtype(code, False, True).
func numpyDType(v any) (string, error) {
	o, ok := v.(*object)
	if !ok || o.class.module != "numpy" || o.class.name != "dtype" || len(o.args) < 1 {
		return "", fmt.Errorf("dtype is %s", typeName(v))
	}
	code, _ := o.args[0].(string)
	name, ok := numpyDTypes[code]
	if !ok {
		return "", fmt.Errorf("dtype %q", clip(code))
	}
	if len(o.state) == 1 {
		// (version, byte order, subarray, names, fields, ...): an array
		// of structs or subarrays is not one of these dtypes.
		if st, ok := sequence(o.state[0]); ok && len(st) >= 5 && (st[2] != nil || st[3] != nil || st[4] != nil) {
			return "", fmt.Errorf("dtype %q with fields", clip(code))
		}
	}
	return name, nil
}

// rebuildDeviceFromNumpy is torch._utils._rebuild_device_tensor_from_numpy
// (data, dtype, device, requires_grad): a tensor of a device without
// storages (XLA, ORT), pickled as its values in a numpy array. The tensor
// is that array, listed as the tensor's own (see numpy.go); an argument of
// another form makes an inert object whose function is recorded as unread.
func rebuildDeviceFromNumpy(u *unpickler, args []any) (any, error) {
	if a, ok := args[0].(*ndarray); ok && len(args) == 4 {
		return a, nil
	}
	const module, name = "torch._utils", "_rebuild_device_tensor_from_numpy"
	at := int64(-1)
	if u.m != nil {
		at = int64(u.m.opPos)
	}
	u.unread = u.noteOnce(u.unread, module, name, at)
	return &object{class: &pyClass{module: module, name: name}, args: args}, nil
}
