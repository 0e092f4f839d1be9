#!/usr/bin/python3
"""Hostile torch.save-shaped checkpoints for the PyTorch loader (issue 10).

    gen_hostile.py DIR

Writes, with the standard library only (pickles assembled opcode by
opcode, zipped as torch does: stored records under archive/):
  deep_key_4k.pt       one 4 KiB key reused through the memo at each level
                       of 999 nested dicts, None at the bottom (8.3 KB)
  deep_key_64k.pt      the same with a 64 KiB key and a tensor at the
                       bottom (70 KB): its one name would be 64 MB
  dag_24.pt            24 levels of lists holding the list below twice, a
                       tensor at the bottom: 2^24 paths to one tensor
  unsafe_system.pt     a state_dict plus GLOBAL posix.system + REDUCE
  repeated_key.pt      a dict that sets "w" twice (a tensor, then None)
  same_name.pt         {"a.b": t0, "a": {"b": t1}}: two tensors named a.b
bench/pytorch/README.md gives peak RSS, time and exit code before and after.
"""
import os
import struct
import sys
import zipfile


def s(x):
    b = x.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def tensor(key, numel=4):
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" +
            b"(" + s("storage") + b"ctorch\nFloatStorage\n" + s(key) + s("cpu") + b"J" + struct.pack("<i", numel) + b"tQ" +
            b"J\x00\x00\x00\x00" + b"(J" + struct.pack("<i", numel) + b"t" + b"(J\x01\x00\x00\x00t" + b"\x89" +
            b"ccollections\nOrderedDict\n)R" + b"tR")


def nested(key_len, depth, with_tensor):
    p = b"\x80\x02"
    for i in range(depth):
        p += b"}"
        p += (s("k" * key_len) + b"q\x00") if i == 0 else b"h\x00"
    p += tensor("0") if with_tensor else b"N"
    return p + b"s" * depth + b"."


def dag(levels):
    p = b"\x80\x02" + tensor("0") + b"q\x00" + b"0"
    p += b"]h\x00ah\x00aq\x01"
    for i in range(2, levels + 1):
        p += b"0]h" + bytes([i - 1]) + b"ah" + bytes([i - 1]) + b"aq" + bytes([i])
    return p + b"."


def write(path, pkl, storages):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        for k, n in storages.items():
            z.writestr("archive/data/" + k, bytes(n))
        z.writestr("archive/version", "3\n")


def main(d):
    os.makedirs(d, exist_ok=True)
    st = {"0": 16}
    write(os.path.join(d, "deep_key_4k.pt"), nested(4096, 999, False), {})
    write(os.path.join(d, "deep_key_64k.pt"), nested(65536, 999, True), st)
    write(os.path.join(d, "dag_24.pt"), dag(24), st)
    write(os.path.join(d, "unsafe_system.pt"), b"\x80\x02}(" + s("w") + tensor("0") + s("x") +
          b"cposix\nsystem\n(" + s("id") + b"tR" + b"u.", st)
    write(os.path.join(d, "repeated_key.pt"), b"\x80\x02}(" + s("w") + tensor("0") + s("w") + b"Nu.", st)
    write(os.path.join(d, "same_name.pt"), b"\x80\x02}(" + s("a.b") + tensor("0") + s("a") + b"}" + s("b") + tensor("1") + b"su.",
          {"0": 16, "1": 16})


if __name__ == "__main__":
    main(sys.argv[1])
