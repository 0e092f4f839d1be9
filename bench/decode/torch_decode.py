#!/usr/bin/python3
"""PyTorch's decode of the QINS log codec, as the seed writes it, on the toy model.

Run from the repository root (Debian's python3-torch is enough):

    /usr/bin/python3 bench/decode/torch_decode.py            # PyTorch only
    /usr/bin/python3 bench/decode/torch_decode.py --with-go  # and the Go benchmarks, side by side

It loads fixtures/torch/toy_qins_log.pt with torch.load, then decodes every
QINSLinear (18 modules, 2,359,296 weights) with QINSCodec.decode exactly as
the seed's src/qins_codec.py does it: a float32 tensor per step and one exp
per weight. It times torch with its default number of threads (what the
seed's script gets; 1 on this machine) and with one thread per core. The
weights/s figure counts decoded weights over the time of the decode calls
only (median of --repeats runs); the checkpoint is loaded once,
beforehand, as the Go benchmark loads it once.

With --with-go it then runs the Go benchmarks of internal/decode in the
same invocation (one run on the same machine) and prints both figures and
their ratio.
"""

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOY = os.path.join(ROOT, "fixtures", "torch", "toy_qins_log.pt")


class QINSCodec:
    """The decode half of the seed's src/qins_codec.py."""

    @staticmethod
    def decode(stored, sign, log_min, log_max):
        normalized = (255.0 - stored.to(torch.float32)) / 254.0
        log_val = log_min + normalized * (log_max - log_min)
        return sign.to(torch.float32) * torch.exp(log_val)


def modules(state):
    """(stored, sign, log_min, log_max) of every QINS log module."""
    out = []
    for name in state:
        if name.endswith(".stored"):
            m = name[: -len(".stored")]
            out.append((state[m + ".stored"], state[m + ".sign"], state[m + ".log_min"], state[m + ".log_max"]))
    return out


def bench_torch(mods, threads, repeats):
    torch.set_num_threads(threads)
    for args in mods:  # warm up: first-touch allocations, thread pool
        QINSCodec.decode(*args)
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        for args in mods:
            QINSCodec.decode(*args)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def run_go(benchtime):
    cmd = ["go", "test", "./internal/decode", "-run", "^$", "-bench",
           "QINSLogDecode|ToyDecode|ToyPassProfiled", "-benchtime", benchtime, "-count", "1"]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    metrics = {}
    for line in out.splitlines():
        if not line.startswith("Benchmark"):
            continue
        fields = line.split()
        name = re.sub(r"-\d+$", "", fields[0])
        vals = {}
        for v, unit in zip(fields[2::2], fields[3::2]):
            vals[unit] = float(v)
        metrics[name] = vals
    return shlex.join(cmd), out, metrics


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=20, help="timed decodes of the whole model (median reported)")
    ap.add_argument("--with-go", action="store_true", help="also run the Go benchmarks and compare")
    ap.add_argument("--benchtime", default="3s", help="go test -benchtime for --with-go")
    args = ap.parse_args()

    default = torch.get_num_threads()
    mods = modules(torch.load(TOY))
    weights = sum(s.numel() for s, _, _, _ in mods)
    print(f"torch {torch.__version__}, default threads {default}, {os.cpu_count()} cores")
    torch_wps = {}
    for threads in sorted({default, os.cpu_count()}):
        secs = bench_torch(mods, threads, args.repeats)
        torch_wps[threads] = weights / secs
        print(f"PyTorch QINSCodec.decode, {threads} thread(s): {len(mods)} modules, {weights:,} weights in "
              f"{secs * 1e3:.2f} ms (median of {args.repeats}): {torch_wps[threads] / 1e6:.1f} M weights/s")
    if not args.with_go:
        return
    cmd, out, m = run_go(args.benchtime)
    print()
    print("$ " + cmd)
    sys.stdout.write(out)
    print()
    go_wps = m["BenchmarkToyDecode"]["weights/s"]
    print(f"| decode of toy_qins_log.pt ({weights:,} weights) | weights/s | qinsaudit's speed-up |")
    print("| --- | ---: | ---: |")
    for threads, wps in sorted(torch_wps.items()):
        note = " (torch's default here)" if threads == default else ""
        print(f"| PyTorch QINSCodec.decode, {threads} thread(s){note} | {wps / 1e6:.1f} M | {go_wps / wps:.1f}x |")
    print(f"| qinsaudit decode, {os.cpu_count()} goroutines | {go_wps / 1e6:.1f} M | |")
    q = m.get("BenchmarkQINSLogDecode", {})
    if q:
        print(f"\nQINS log decode, 4096x4096, all cores: {q['weights/s'] / 1e6:.0f} M weights/s, "
              f"{q['%copy']:.0f}% of a plain copy's bandwidth ({q['copy-MB/s'] / 1e3:.1f} GB/s)")
    p = m.get("BenchmarkToyPassProfiled", {})
    if p:
        print(f"exact heap profiling (MemProfileRate 1 vs 0) on a whole pass: {p['%overhead']:+.1f}%")


if __name__ == "__main__":
    main()
