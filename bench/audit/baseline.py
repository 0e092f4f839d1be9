#!/usr/bin/python3
"""The accounting a user would do without qinsaudit, for the benchmark.

    baseline.py torch-load  FILE.pt   [--out RESULT.json]
    baseline.py st-header   PATH      [--out RESULT.json]
    baseline.py st-load     PATH      [--out RESULT.json]

torch-load: `import torch`, `torch.load(FILE, map_location="cpu")` (which
    reads every storage into memory), then walk what it returned (dicts,
    lists, tuples, modules' state_dict) and sum numel() * element_size() over
    the unique storages (a storage shared by several tensors, like a tied
    lm_head, counted once, as its full nbytes()).
st-header: no torch. For each safetensors shard of PATH (a file, an index or
    a directory), read the 8-byte length and the JSON header with the json
    module and sum data_offsets (end - begin) and numel. This is the cheapest
    thing a Python user can do; it is header-only, like qinsaudit, so it
    compares runtimes, not approaches.
st-load: what `safetensors.torch.load_file` does (that package is not
    installed here, and torch 1.13 cannot read safetensors): read every
    tensor's bytes into a torch tensor with torch.frombuffer, keep them all,
    then sum numel() * element_size(). Its memory is the whole model.

--out appends one JSON line per run: the in-process times (import_s, load_s, sum_s,
total_s, from the script's first line to its end, interpreter start-up not
included) and the sums (tensors, params, stored_bytes), for run.sh to check
against qinsaudit's totals. The same line goes to stdout.
"""
import time

T_START = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

ST_DTYPES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
    "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1,
}


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def torch_tensors(obj, torch, out, depth=0):
    """Every tensor reachable from what torch.load returned."""
    if depth > 100:
        return
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            torch_tensors(v, torch, out, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            torch_tensors(v, torch, out, depth + 1)
    elif isinstance(obj, torch.nn.Module):
        torch_tensors(obj.state_dict(), torch, out, depth + 1)


def torch_load(path, res):
    t = time.perf_counter()
    import torch

    res["import_s"] = time.perf_counter() - t
    t = time.perf_counter()
    obj = torch.load(path, map_location="cpu")
    res["load_s"] = time.perf_counter() - t
    t = time.perf_counter()
    tensors = []
    torch_tensors(obj, torch, tensors)
    seen, stored, params, views = set(), 0, 0, set()
    for x in tensors:
        s = x.storage()
        view = (s.data_ptr(), x.storage_offset(), tuple(x.shape), tuple(x.stride()))
        if view not in views:  # a tied head is the same view: its params once
            views.add(view)
            params += x.numel()
        if s.data_ptr() not in seen:
            seen.add(s.data_ptr())
            stored += s.nbytes()
    res["sum_s"] = time.perf_counter() - t
    res.update(tensors=len(tensors), params=params, stored_bytes=stored)


def st_shards(path):
    if os.path.isdir(path):
        idx = [f for f in sorted(os.listdir(path)) if f.endswith(".safetensors.index.json")]
        if idx:
            path = os.path.join(path, idx[0])
        else:
            return [os.path.join(path, f) for f in sorted(os.listdir(path)) if f.endswith(".safetensors")]
    if path.endswith(".index.json"):
        with open(path) as f:
            wm = json.load(f)["weight_map"]
        return [os.path.join(os.path.dirname(path), s) for s in sorted(set(wm.values()))]
    return [path]


def st_header(path, res, load=False):
    if load:
        t = time.perf_counter()
        import torch

        res["import_s"] = time.perf_counter() - t
        tdt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
               "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
               "U8": torch.uint8, "BOOL": torch.bool}
    t = time.perf_counter()
    tensors, params, stored, loaded = 0, 0, 0, {}
    for shard in st_shards(path):
        with open(shard, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            head = json.loads(f.read(n))
            size = os.fstat(f.fileno()).st_size
            for name, info in head.items():
                if name == "__metadata__":
                    continue
                b, e = info["data_offsets"]
                if not 0 <= b <= e <= size - 8 - n or (e - b) != numel(info["shape"]) * ST_DTYPES[info["dtype"]]:
                    raise SystemExit(f"{shard}: {name}: bad data_offsets {b}, {e}")
                if load:
                    buf = bytearray(e - b)
                    f.seek(8 + n + b)
                    f.readinto(buf)
                    x = torch.frombuffer(buf, dtype=tdt[info["dtype"]]) if buf else torch.empty(0, dtype=tdt[info["dtype"]])
                    loaded[name] = x.reshape(info["shape"])
                    continue
                tensors += 1
                params += numel(info["shape"])
                stored += e - b
    res["load_s"] = time.perf_counter() - t
    if load:
        t = time.perf_counter()
        for x in loaded.values():
            tensors += 1
            params += x.numel()
            stored += x.numel() * x.element_size()
        res["sum_s"] = time.perf_counter() - t
    res.update(tensors=tensors, params=params, stored_bytes=stored)


def main(argv):
    out = None
    if "--out" in argv:
        i = argv.index("--out")
        out = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    if len(argv) != 3 or argv[1] not in ("torch-load", "st-header", "st-load"):
        sys.exit(__doc__)
    mode, path = argv[1], argv[2]
    res = {"mode": mode, "path": path, "import_s": 0.0, "sum_s": 0.0}
    if mode == "torch-load":
        torch_load(path, res)
    else:
        st_header(path, res, load=(mode == "st-load"))
    res["total_s"] = time.perf_counter() - T_START
    if out:
        with open(out, "a") as f:
            f.write(json.dumps(res) + "\n")
    print(json.dumps(res))


if __name__ == "__main__":
    main(sys.argv)
