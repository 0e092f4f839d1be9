#!/usr/bin/env python3
"""Hostile inputs of issue 10, for bench/hostile/run.sh (standard library only).

    python3 bench/hostile/gen.py DIR

writes into DIR (outside the repository: some are large once decompressed):
  longname.safetensors  one 100 KB tensor name and 999 small tensors (168 KB)
  inject.safetensors    names with ESC, CR/LF, '|', backticks, bidi overrides, '=cmd'
  shards/               40,000 two-tensor safetensors shards
  tcmalloc-bomb.heap.gz 100 MiB of tcmalloc sample lines, gzipped (~250 KB)
  proto-bomb.pb.gz      a profile.proto of 10 M samples, gzipped (~200 KB)
  period0.heap, period-5.heap  tcmalloc heap_v2 profiles with a period of 0 and -5
  dup-claims.json       a claims file naming one claim twice
  nan.yaml, inf.toml    gate configs with NaN and infinite limits
  negative.json         a saved report with a negative byte count
  contradict.json       a saved report whose total is not the sum of its roles
"""
import gzip, json, os, struct, sys, zlib

def safetensors(path, names, dtype="F32", shape=(1,)):
    header, off = {}, 0
    n = 4
    for name in names:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"\0" * off)

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def field(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload

def main(d):
    os.makedirs(d, exist_ok=True)
    safetensors(os.path.join(d, "longname.safetensors"), ["a" * 100_000] + ["t%d.weight" % i for i in range(999)])
    safetensors(os.path.join(d, "inject.safetensors"), [
        "evil\x1b[2J\x1b[31mred.weight", "line\r\nforged | row | x.weight", "code`x`|col.weight",
        "bidi\u202egnp.exe.weight", "=HYPERLINK(\"http://x\").weight", "[link](http://x)<b>.weight"])
    sd = os.path.join(d, "shards")
    os.makedirs(sd, exist_ok=True)
    for i in range(40_000):
        p = os.path.join(sd, "model-%05d.safetensors" % i)
        if not os.path.exists(p):
            safetensors(p, ["layers.%d.a.weight" % i, "layers.%d.b.weight" % i])
    with gzip.open(os.path.join(d, "tcmalloc-bomb.heap.gz"), "wb", 9) as f:
        f.write(b"heap profile: 1: 8 [ 1: 8] @ heap_v2/524288\n")
        line = b"1: 8 [1: 8] @ 0x10\n"
        chunk = line * (1 << 16)
        for _ in range((100 << 20) // len(chunk)):
            f.write(chunk)
        f.write(b"\nMAPPED_LIBRARIES:\n")
    # profile.proto: sample_type inuse_space/bytes, 10 M samples at one
    # location, the string table.
    sample = field(2, field(1, varint(1)) + field(2, varint(8)))
    strings = b"".join(field(6, s) for s in [b"", b"inuse_space", b"bytes"])
    head = field(1, bytes([0x08, 1, 0x10, 2])) + field(4, bytes([0x08, 1, 0x10, 0x10]))
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(os.path.join(d, "proto-bomb.pb.gz"), "wb") as f:
        f.write(z.compress(head))
        chunk = sample * 100_000
        for _ in range(100):
            f.write(z.compress(chunk))
        f.write(z.compress(strings))
        f.write(z.flush())
    for p in ["0", "-5"]:
        with open(os.path.join(d, "period%s.heap" % p), "w") as f:
            f.write("heap profile: 1: 8 [ 1: 8] @ heap_v2/%s\n1: 8 [1: 8] @ 0x10\n\nMAPPED_LIBRARIES:\n" % p)
    with open(os.path.join(d, "dup-claims.json"), "w") as f:
        f.write('{"weights": "9.4MiB",\n "weights": "1B"}\n')
    with open(os.path.join(d, "nan.yaml"), "w") as f:
        f.write("budgets:\n  - role: total\n    min_ratio: .nan\n")
    with open(os.path.join(d, "inf.toml"), "w") as f:
        f.write("[[budgets]]\nrole = \"total\"\nmax_bits_per_weight = inf\n")

if __name__ == "__main__":
    main(sys.argv[1])
