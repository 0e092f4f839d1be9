#!/usr/bin/env bash
# bench/audit/many.sh: whole-process cost per tensor of `qinsaudit audit` on
# safetensors files of 1k, 10k and 100k tensors, against the stdlib-Python
# header reader (baseline.py st-header), side by side (issue 11).
#
#   bash bench/audit/many.sh            # RUNS=7 by default
#
# Files: float32 [4, 4] tensors named model.layers.L.mlp.proj_K.weight,
# data regions as holes; per size, two files: keys in insertion order
# (layers 0, 1, ... 9, 10, ...), and keys sorted by name as the
# safetensors library writes them ("sorted"), data in key order in both. Each process is launched by spawn.c; the line printed per tool is
# the run of median CPU time: wall seconds, peak RSS KiB, CPU seconds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BENCH_DIR=$(realpath -m "${BENCH_DIR:-/tmp/qinsaudit-bench}")
case "$BENCH_DIR/" in "$root"/*) echo "many.sh: BENCH_DIR is inside the repository" >&2; exit 2 ;; esac
RUNS=${RUNS:-7}
mkdir -p "$BENCH_DIR/bin" "$BENCH_DIR/data"
cc -O2 -o "$BENCH_DIR/bin/spawn" "$here/spawn.c"
(cd "$root" && CGO_ENABLED=0 go build -o "$BENCH_DIR/bin/qinsaudit" ./cmd/qinsaudit)
for n in 1000 10000 100000; do
for order in insertion sorted; do
	f=$BENCH_DIR/data/many$n.safetensors
	[ "$order" = sorted ] && f=$BENCH_DIR/data/many$n-sorted.safetensors
	[ -f "$f" ] || /usr/bin/python3 - "$n" "$f" "$order" <<'PY'
import json, struct, sys
n, out, order = int(sys.argv[1]), sys.argv[2], sys.argv[3]
names = ["model.layers.%d.mlp.proj_%d.weight" % (i // 8, i % 8) for i in range(n)]
if order == "sorted":
    names.sort()
h = {"__metadata__": {"format": "pt"}}
for i, name in enumerate(names):
    h[name] = {"dtype": "F32", "shape": [4, 4], "data_offsets": [64 * i, 64 * (i + 1)]}
js = json.dumps(h, separators=(",", ":")).encode()
js += b" " * (-len(js) % 8)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(js))); f.write(js); f.truncate(8 + len(js) + 64 * n)
PY
	median() { sort -k3 -n | sed -n "$(( (RUNS + 1) / 2 ))p"; }
	echo "== $n tensors, $order order"
	echo "qinsaudit audit:        $("$BENCH_DIR/bin/spawn" -n "$RUNS" -- "$BENCH_DIR/bin/qinsaudit" audit "$f" | median)"
	echo "qinsaudit audit --json: $("$BENCH_DIR/bin/spawn" -n "$RUNS" -- "$BENCH_DIR/bin/qinsaudit" audit --format json "$f" | median)"
	echo "python st-header:       $("$BENCH_DIR/bin/spawn" -n "$RUNS" -- /usr/bin/python3 "$here/baseline.py" st-header "$f" | median)"
done
done
