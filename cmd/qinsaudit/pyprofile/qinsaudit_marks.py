"""Heap profile marks for `qinsaudit profile` (written by qinsaudit; do not edit).

    import qinsaudit_marks as m
    m.mark("after-load")      # dump a heap profile named after-load

Profiling starts right after `import torch` completes (or at the first mark,
or at start with QINSAUDIT_START=process); a "start" profile is dumped then,
and an "exit" profile when the interpreter exits.
"""
import atexit
import ctypes
import gc
import os
import re
import sys

_dir = os.environ.get("QINSAUDIT_DIR", "")
_alloc = os.environ.get("QINSAUDIT_ALLOCATOR", "")
_lib = None
_started = False
_n = 0


def _load():
    global _lib
    if _lib is None:
        if not _dir or _alloc not in ("tcmalloc", "jemalloc"):
            raise RuntimeError("qinsaudit_marks: run under `qinsaudit profile -- COMMAND`")
        _lib = ctypes.CDLL(os.environ["QINSAUDIT_LIB"])
        if _alloc == "tcmalloc":
            _lib.HeapProfilerStart.argtypes = [ctypes.c_char_p]
            _lib.HeapProfilerDump.argtypes = [ctypes.c_char_p]
    return _lib


def _start(why):
    global _started
    if _started:
        return
    lib = _load()
    if _alloc == "tcmalloc":
        lib.HeapProfilerStart(os.path.join(_dir, ".tc").encode())
    else:
        on = ctypes.c_bool(True)
        if lib.mallctl(b"prof.active", None, None, ctypes.byref(on), ctypes.sizeof(on)) != 0:
            raise RuntimeError("qinsaudit_marks: jemalloc cannot profile (built without --enable-prof, or MALLOC_CONF lacks prof:true)")
    _started = True
    _dump("start", why)


def _dump(name, note=""):
    global _n
    gc.collect()
    _n += 1
    file = "%02d-%s.heap" % (_n, name)
    path = os.path.join(_dir, file)
    lib = _load()
    if _alloc == "tcmalloc":
        before = set(os.listdir(_dir))
        lib.HeapProfilerDump(name.encode())
        new = sorted(f for f in set(os.listdir(_dir)) - before if f.startswith(".tc") and f.endswith(".heap"))
        if len(new) != 1:
            raise RuntimeError("qinsaudit_marks: HeapProfilerDump wrote %r" % new)
        os.replace(os.path.join(_dir, new[0]), path)
    else:
        p = ctypes.c_char_p(path.encode())
        if lib.mallctl(b"prof.dump", None, None, ctypes.byref(p), ctypes.sizeof(p)) != 0:
            raise RuntimeError("qinsaudit_marks: mallctl prof.dump failed")
    with open(os.path.join(_dir, "marks.tsv"), "a") as f:
        f.write("%d\t%s\t%s\t%s\n" % (_n, name, file, note))


def mark(name):
    """Dump a heap profile named name (letters, digits, '.', '_', '-').
    A no-op in a child process: only the process qinsaudit ran profiles."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name) or name in ("start", "exit"):
        raise ValueError("qinsaudit_marks.mark: bad phase name %r" % (name,))
    if not _dir:
        return
    _start("first mark")
    _dump(name)


def _at_exit():
    if _started and _dir:
        _dump("exit")
        if _alloc == "tcmalloc":
            _load().HeapProfilerStop()  # no further dump of its own at exit


class _AfterTorch:
    """Starts profiling once `import torch` has completed."""

    def find_spec(self, name, path=None, target=None):
        if name != "torch" or _started:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        run = loader.exec_module

        def exec_module(module):
            run(module)
            _start("after import torch")

        loader.exec_module = exec_module
        return spec


def _in_child():
    global _dir
    _dir = ""  # a forked child: its heap is not the one being profiled


def _boot():
    if not _dir:
        return
    # Children (spawned or forked) do not profile: their dumps would clash
    # with this process's.
    os.environ.pop("QINSAUDIT_DIR", None)
    os.register_at_fork(after_in_child=_in_child)
    atexit.register(_at_exit)
    if os.environ.get("QINSAUDIT_START") == "process":
        _start("process start")
    else:
        sys.meta_path.insert(0, _AfterTorch())
