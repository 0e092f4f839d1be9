package pytorch

import (
	"strings"
	"sync"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// What torch.load would run. A checkpoint's pickle names the classes and
// functions it needs by module and name (GLOBAL, STACK_GLOBAL, INST); a full
// torch.load imports each module and calls what the pickle says, so a
// pickle can run any code. torch.load(weights_only=True) only resolves an
// allow-list (torch/_weights_only_unpickler.py: torch's storage and tensor
// rebuild functions, dtypes, torch.Size, torch.device, torch.nn.Parameter,
// collections.OrderedDict and Counter, set, frozenset, a few more). qinsaudit
// resolves every name to an inert stand-in and runs nothing; it records the
// names outside that allow-list so the user knows before torch.load does:
// accounting turns File.Globals into an unsafe-pickle finding.

// weightsOnly are the names outside this reader's own allow-list (allowed,
// rebuilders) that torch's weights_only unpickler resolves too. It and the
// two sets below are made on first use, not at package init.
var weightsOnly = sync.OnceValue(func() map[string]bool {
	return map[string]bool{
		"collections.OrderedDict": true, "collections.Counter": true,
		"torch.Size": true, "torch.device": true, "torch.Tensor": true,
		"torch.serialization._get_layout": true, "torch._utils._rebuild_wrapper_subclass": true,
		"torch._utils._rebuild_device_tensor_from_numpy": true, "torch._utils._rebuild_meta_tensor_no_storage": true,
		"torch._utils._rebuild_sparse_tensor": true, "torch._utils._rebuild_nested_tensor": true,
		"torch._utils._rebuild_tensor_v2_with_state": true,
		"builtins.bytearray":                         true, "builtins.slice": true, "builtins.complex": true,
		"_codecs.encode":                      true, // how protocol 2 pickles bytes; torch allows it
		"torch._tensor._rebuild_from_type_v2": true,
	}
})

// codeGadgets are modules whose every name can run code or touch the
// system when a full unpickler calls it: processes, shells, interpreters,
// importers, nested unpicklers, files and sockets.
var codeGadgets = sync.OnceValue(func() map[string]bool {
	return map[string]bool{
		"os": true, "posix": true, "nt": true, "subprocess": true, "sys": true,
		"runpy": true, "pty": true, "socket": true, "shutil": true, "importlib": true, "imp": true,
		"pickle": true, "_pickle": true, "cPickle": true, "marshal": true, "dill": true, "cloudpickle": true,
		"code": true, "codeop": true, "ctypes": true, "_ctypes": true, "webbrowser": true, "commands": true,
		"popen2": true, "platform": true, "pdb": true, "bdb": true, "timeit": true, "multiprocessing": true,
		"_posixsubprocess": true, "signal": true, "_thread": true, "thread": true, "threading": true,
		"asyncio": true, "zipimport": true, "pkgutil": true, "site": true, "types": true, "operator": true,
		"http": true, "urllib": true, "urllib2": true, "requests": true, "ftplib": true,
		"telnetlib": true, "smtplib": true, "xmlrpc": true, "pip": true, "setuptools": true, "distutils": true,
		"io": true, "_io": true, "tempfile": true, "glob": true, "pathlib": true, "sqlite3": true,
		"numpy.testing": true, "numpy.f2py": true, "numpy.distutils": true, "torch.hub": true,
		"torch.utils.cpp_extension": true, "torch.serialization": true, "torch.storage": true,
		"torch._dynamo": true, "torch._inductor": true, "torch.package": true,
	}
})

// codeBuiltins are the builtins that run code, import, read or write.
var codeBuiltins = sync.OnceValue(func() map[string]bool {
	return map[string]bool{
		"eval": true, "exec": true, "execfile": true, "compile": true, "__import__": true,
		"getattr": true, "setattr": true, "delattr": true, "open": true, "file": true, "input": true,
		"raw_input": true, "breakpoint": true, "globals": true, "locals": true, "vars": true,
		"apply": true, "reload": true, "help": true, "exit": true, "quit": true,
	}
})

// global is a name a pickle imports that torch's weights_only unpickler
// would refuse, first seen at file offset at (-1 if unknown).
type global struct {
	module, name string
	at           int64
}

// note records module.name at pickle offset at unless weights_only allows
// it. Each name is recorded once, at its first import: their number is
// bounded by the pickle's size.
func (u *unpickler) note(module, name string, at int64) {
	full := module + "." + name
	if weightsOnly()[full] || u.seen[full] {
		return
	}
	if u.seen == nil {
		u.seen = map[string]bool{}
	}
	u.seen[full] = true
	if u.base >= 0 {
		at += u.base
	} else {
		at = -1
	}
	// The names may share the pickle's bytes (machine.str): the model
	// keeps copies.
	u.globals = append(u.globals, global{strings.Clone(module), strings.Clone(name), at})
}

// tensorRebuild reports whether module.name is one of torch's functions
// that rebuild a tensor (torch._utils._rebuild_*, torch._tensor's): called
// by a pickle, and not one of the rebuilders, it makes a tensor this
// reader cannot list.
func tensorRebuild(module, name string) bool {
	switch module {
	case "torch._utils", "torch._tensor", "torch.tensor":
		return strings.HasPrefix(name, "_rebuild")
	}
	return false
}

// noteOnce appends module.name at pickle offset at to gs unless gs has it.
func (u *unpickler) noteOnce(gs []global, module, name string, at int64) []global {
	for _, g := range gs {
		if g.module == module && g.name == name {
			return gs
		}
	}
	if u.base >= 0 {
		at += u.base
	} else {
		at = -1
	}
	return append(gs, global{strings.Clone(module), strings.Clone(name), at})
}

// runsCode reports whether calling module.name as a full unpickler would
// can run code or reach the system, not just build an object.
func runsCode(module, name string) bool {
	switch module {
	case "builtins", "__builtin__", "__builtins__":
		return codeBuiltins()[name]
	case "torch":
		return name == "load" || name == "_load"
	case "_codecs", "codecs":
		return name != "encode"
	}
	root := module
	for {
		if codeGadgets()[root] {
			return true
		}
		i := strings.LastIndexByte(root, '.')
		if i < 0 {
			return false
		}
		root = root[:i]
	}
}

// fileGlobals converts what the unpicklers of one file recorded, each name
// once.
func fileGlobals(us ...*unpickler) []accounting.Global {
	return convertGlobals(us, func(u *unpickler) []global { return u.globals })
}

// fileUnread converts the unread tensor rebuilds the unpicklers of one
// file recorded, each name once.
func fileUnread(us ...*unpickler) []accounting.Global {
	return convertGlobals(us, func(u *unpickler) []global { return u.unread })
}

func convertGlobals(us []*unpickler, of func(*unpickler) []global) []accounting.Global {
	var out []accounting.Global
	seen := map[string]bool{}
	for _, u := range us {
		if u == nil {
			continue
		}
		for _, g := range of(u) {
			full := g.module + "." + g.name
			if seen[full] {
				continue
			}
			seen[full] = true
			out = append(out, accounting.Global{Module: g.module, Name: g.name, Offset: g.at, RunsCode: runsCode(g.module, g.name)})
		}
	}
	return out
}
