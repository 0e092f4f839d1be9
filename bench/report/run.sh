#!/usr/bin/env bash
# bench/report/run.sh: whole-process cost of the saved-report commands on
# 100,000-tensor reports (issue 11): `diff` of two saved reports (by role,
# as text; by tensor, as JSON: a 100,000-row diff), `check --against` a
# saved report, and `audit --format json` that writes one.
#
#   bash bench/report/run.sh                # this tree, RUNS=5
#   BASE=main bash bench/report/run.sh      # paired runs against a commit
#   CALLGRIND=1 bash bench/report/run.sh    # instruction counts too
#
# Models: two safetensors files of 100,000 float32 [4, 4] tensors (the
# generator of bench/audit/many.sh); the new one stores every tenth tensor
# as float16 and renames 1,000, so a diff has changed, added and removed
# rows. Each process is launched by bench/audit/spawn.c; per command and
# binary the line printed is the run of median CPU time: wall seconds,
# peak RSS KiB, CPU seconds. With BASE, the two binaries run alternately,
# one run each in turn.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BENCH_DIR=$(realpath -m "${BENCH_DIR:-/tmp/qinsaudit-bench}")
case "$BENCH_DIR/" in "$root"/*) echo "run.sh: BENCH_DIR is inside the repository" >&2; exit 2 ;; esac
RUNS=${RUNS:-5}
N=${N:-100000}
bin=$BENCH_DIR/bin
data=$BENCH_DIR/data/report$N
mkdir -p "$bin" "$data"
cc -O2 -o "$bin/spawn" "$root/bench/audit/spawn.c"
(cd "$root" && CGO_ENABLED=0 go build -o "$bin/qinsaudit-new" ./cmd/qinsaudit)
tools=(new)
if [ -n "${BASE:-}" ]; then
	src=$BENCH_DIR/src-base
	rm -rf "$src" && mkdir -p "$src"
	git -C "$root" archive "$BASE" | tar -x -C "$src"
	(cd "$src" && CGO_ENABLED=0 go build -o "$bin/qinsaudit-base" ./cmd/qinsaudit)
	tools=(base new)
fi
for side in a b; do
	f=$data/$side.safetensors
	[ -f "$f" ] || /usr/bin/python3 - "$N" "$f" "$side" <<'PY'
import json, struct, sys
n, out, side = int(sys.argv[1]), sys.argv[2], sys.argv[3]
h = {"__metadata__": {"format": "pt"}}
off = 0
for i in range(n):
    name = "model.layers.%d.mlp.proj_%d.weight" % (i // 8, i % 8)
    dtype, size = "F32", 64
    if side == "b":
        if i % 10 == 0:
            dtype, size = "F16", 32
        if i % 100 == 1:
            name = "model.layers.%d.mlp.gate_%d.weight" % (i // 8, i % 8)
    h[name] = {"dtype": dtype, "shape": [4, 4], "data_offsets": [off, off + size]}
    off += size
js = json.dumps(h, separators=(",", ":")).encode()
js += b" " * (-len(js) % 8)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(js))); f.write(js); f.truncate(8 + len(js) + off)
PY
	"$bin/qinsaudit-new" audit --format json "$f" >"$data/$side.json"
done
ls -l "$data"/a.json "$data"/b.json | awk '{print $5, $9}'
median() { sort -k3 -n | sed -n "$(( (RUNS + 1) / 2 ))p"; }
commands=(
	"diff|diff $data/a.json $data/b.json"
	"diff --by tensor --format json|diff --by tensor --format json $data/a.json $data/b.json"
	"check --against|check --against $data/a.json $data/a.safetensors"
	"audit --format json|audit --format json $data/b.safetensors"
)
for c in "${commands[@]}"; do
	label=${c%%|*}
	read -r -a args <<<"${c#*|}"
	for t in "${tools[@]}"; do : >"$BENCH_DIR/runs.$t"; done
	for _ in $(seq "$RUNS"); do
		for t in "${tools[@]}"; do
			"$bin/spawn" -- "$bin/qinsaudit-$t" "${args[@]}" >>"$BENCH_DIR/runs.$t"
		done
	done
	for t in "${tools[@]}"; do
		printf '%-34s %-4s %s\n' "$label" "$t" "$(median <"$BENCH_DIR/runs.$t")"
	done
	if [ -n "${CALLGRIND:-}" ]; then
		for t in "${tools[@]}"; do
			ir=$(GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
				"$bin/qinsaudit-$t" "${args[@]}" 2>&1 >/dev/null | sed -n 's/.*Collected : //p')
			printf '%-34s %-4s instructions %s\n' "$label" "$t" "$ir"
		done
	fi
done
