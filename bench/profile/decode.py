"""A QINS-log decode of 10^8 weights in PyTorch, streamed layer by layer: the
command whose run `qinsaudit profile` must not slow down much.

    python3 decode.py [WEIGHTS] [--mark]

Builds 100 linears of WEIGHTS/100 weights each (uint8 `stored`, int8 `sign`,
as the seed's QINS modules keep them), then decodes each to float32 with the
seed's formula, one at a time, and sums the result so the work is not
skipped. With --mark it calls qinsaudit_marks.mark after building and after
decoding. Prints the decode's own wall time.
"""
import sys
import time

import torch

n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 10**8
mark = "--mark" in sys.argv
torch.set_num_threads(1)
layers, per = 100, n // 100
g = torch.Generator().manual_seed(0)
stored = [torch.randint(0, 255, (per,), dtype=torch.uint8, generator=g) for _ in range(layers)]
sign = [torch.randint(0, 2, (per,), dtype=torch.int8, generator=g) * 2 - 1 for _ in range(layers)]
log_min, log_max = -4.0, 0.0
if mark:
    import qinsaudit_marks
    qinsaudit_marks.mark("after-load")
t = time.perf_counter()
total = 0.0
for s, sg in zip(stored, sign):
    w = sg.to(torch.float32) * torch.exp(log_min + (255.0 - s.to(torch.float32)) / 254.0 * (log_max - log_min))
    total += float(w.sum())
    del w
dt = time.perf_counter() - t
if mark:
    qinsaudit_marks.mark("after-decode")
print(f"decoded {layers * per:,} weights in {dt:.3f} s (checksum {total:.6g})")
