#!/usr/bin/python3
"""Whole-process decode of a large QINS log checkpoint: PyTorch against qinsaudit.

    /usr/bin/python3 bench/decode/gen_big.py /tmp/qins_big.pt        # 1.81 GB, once
    CGO_ENABLED=0 go build -o /tmp/qinsaudit ./cmd/qinsaudit
    /usr/bin/python3 bench/decode/big.py /tmp/qins_big.pt --qinsaudit /tmp/qinsaudit [--rounds 3]

Each round runs, one after the other (interleaved, so that both see the same
load on a shared machine):

- PyTorch: a fresh `python3` process that imports torch, `torch.load`s the
  file and decodes every module with the seed's QINSCodec.decode (the same
  arithmetic as torch_decode.py). It reports its load time; the whole
  process is timed from outside.
- qinsaudit: `qinsaudit decode FILE --time` (layer by layer, the default),
  whose --time line gives the load phase; the whole process is timed from
  outside too.

It prints every round and the medians. The file's page cache is warmed
first, so both read from memory.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

TORCH_CHILD = r"""
import sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
state = torch.load(sys.argv[1])
t2 = time.perf_counter()
n = 0
for name in list(state):
    if name.endswith(".stored"):
        m = name[: -len(".stored")]
        stored, sign = state[m + ".stored"], state[m + ".sign"]
        log_min, log_max = state[m + ".log_min"], state[m + ".log_max"]
        normalized = (255.0 - stored.to(torch.float32)) / 254.0
        log_val = log_min + normalized * (log_max - log_min)
        w = sign.to(torch.float32) * torch.exp(log_val)
        n += w.numel()
        del w
t3 = time.perf_counter()
print(f"import {t1 - t0:.3f} load {t2 - t1:.3f} decode {t3 - t2:.3f} weights {n}")
"""


def timed(cmd):
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - t, out.stdout + out.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--qinsaudit", default="qinsaudit")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    size = os.path.getsize(a.file)
    with open(a.file, "rb") as f:  # warm the page cache
        while f.read(64 << 20):
            pass
    rows = {"torch": [], "torch_load": [], "q": [], "q_load": []}
    for r in range(a.rounds):
        wall, out = timed([sys.executable, "-c", TORCH_CHILD, a.file])
        load = float(re.search(r"load ([0-9.]+)", out).group(1))
        rows["torch"].append(wall)
        rows["torch_load"].append(load)
        print(f"round {r}: PyTorch whole process {wall:.2f} s (torch.load {load:.2f} s: {size / load / 1e9:.2f} GB/s); {out.strip()}")
        wall, out = timed([a.qinsaudit, "decode", a.file, "--time"])
        m = re.search(r"load ([0-9.]+)(m?s)", out)
        load = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
        rows["q"].append(wall)
        rows["q_load"].append(load)
        print(f"round {r}: qinsaudit whole process {wall:.2f} s (load {load:.2f} s: {size / load / 1e9:.2f} GB/s); "
              + out.strip().splitlines()[-1])
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"\nmedians of {a.rounds} rounds, {size / 1e9:.2f} GB file")
    print(f"whole process: PyTorch {med['torch']:.2f} s, qinsaudit {med['q']:.2f} s: {med['torch'] / med['q']:.1f}x")
    print(f"load: torch.load {size / med['torch_load'] / 1e9:.2f} GB/s, qinsaudit {size / med['q_load'] / 1e9:.2f} GB/s")


if __name__ == "__main__":
    main()
