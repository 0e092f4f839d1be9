#!/usr/bin/python3
"""Write a 1.81 GB QINS log checkpoint with torch.save, as the seed's codec stores one.

    /usr/bin/python3 bench/decode/gen_big.py /tmp/qins_big.pt [--modules 54] [--dim 4096]

Each module is a QINSLinear's buffers exactly as fixtures/torch/gen.py
(after the seed's src/qins_codec.py) saves them: a uint8 `stored` and an
int8 `sign` of dim x dim, and 0-d float32 `log_min` and `log_max`. The codes
are random in 1..255 and the signs random +-1 (a trained model's signs are
as unpredictable, which is what makes a byte-by-byte sign check slow).
54 modules of 4096x4096 are 54 x 32 MiB = 1.81 GB of tensor data. The file
is far too large to commit; write it to /tmp.
"""

import argparse
import collections

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--modules", type=int, default=54)
    ap.add_argument("--dim", type=int, default=4096)
    a = ap.parse_args()
    g = torch.Generator().manual_seed(11)
    state = collections.OrderedDict()
    for i in range(a.modules):
        p = f"blocks.{i}.proj."
        state[p + "stored"] = torch.randint(1, 256, (a.dim, a.dim), dtype=torch.uint8, generator=g)
        bits = torch.randint(0, 2, (a.dim, a.dim), dtype=torch.int8, generator=g)
        state[p + "sign"] = bits * 2 - 1
        state[p + "log_min"] = torch.tensor(-9.0 - i * 0.01)
        state[p + "log_max"] = torch.tensor(-1.0 + i * 0.01)
    torch.save(state, a.out)


if __name__ == "__main__":
    main()
