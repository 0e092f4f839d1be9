#!/usr/bin/python3
"""The cheapest accounting of a torch.save zip checkpoint in stdlib Python.

    pt_header.py FILE.pt

No torch: zipfile opens the archive, a pickle.Unpickler whose find_class
returns stand-ins (nothing the pickle names is imported or run) reads
data.pkl, every _rebuild_tensor* call records (storage key, shape), and the
storages' sizes come from the zip's central directory. Prints tensors,
params and stored bytes as one JSON line. This is what qinsaudit's .pt
loader is compared with at 1k, 10k and 100k tensors (bench/pytorch/run.sh).
"""
import collections
import json
import pickle
import sys
import zipfile


class Stub:
    """Any class outside the few the reader needs: takes and keeps nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


def main(path):
    tensors = []

    def rebuild(storage, offset, size, *rest):
        tensors.append((storage, size))
        return storage

    class Reader(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch._utils" and name.startswith("_rebuild_tensor"):
                return rebuild
            if module == "collections" and name == "OrderedDict":
                return collections.OrderedDict
            return Stub

        def persistent_load(self, pid):
            return pid[2]  # ('storage', type, key, location, numel)

    with zipfile.ZipFile(path) as z:
        pkl = next(i for i in z.infolist() if i.filename.endswith("/data.pkl"))
        prefix = pkl.filename[: -len("data.pkl")]
        size = {i.filename: i.file_size for i in z.infolist()}
        with z.open(pkl) as f:
            Reader(f).load()
    params = 0
    for _, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        params += n
    stored = sum(size[prefix + "data/" + k] for k in {k for k, _ in tensors})
    print(json.dumps({"tensors": len(tensors), "params": params, "stored_bytes": stored}))


if __name__ == "__main__":
    main(sys.argv[1])
