#!/usr/bin/env bash
# bench/audit/rss.sh: peak RSS of `qinsaudit audit` against its final heap,
# on files of 10k and 100k tensors in each format (issue 11: "peak RSS at
# most 2x the final heap").
#
#   bash bench/audit/rss.sh            # RUNS=5 by default
#
# Peak RSS: ru_maxrss of the command run as a process by spawn.c, the
# median of RUNS runs. Final heap: the live heap, after a collection, when
# the same command run in-process (cmd/qinsaudit's BenchmarkFinalHeap)
# writes its first byte: what it holds once its report is ready. A text
# audit without --by keeps only its summary, so its final heap is under
# a MiB whatever the model: its ratio says how much the audit allocated,
# not how much it kept.
#
# Files: many.sh's safetensors, gen_torch.py's `many` .pt files,
# bench/gguf's ggufwrite GGUF files, made under $BENCH_DIR/data once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BENCH_DIR=$(realpath -m "${BENCH_DIR:-/tmp/qinsaudit-bench}")
case "$BENCH_DIR/" in "$root"/*) echo "rss.sh: BENCH_DIR is inside the repository" >&2; exit 2 ;; esac
RUNS=${RUNS:-5}
data=$BENCH_DIR/data
mkdir -p "$BENCH_DIR/bin" "$data/gguf"
cc -O2 -o "$BENCH_DIR/bin/spawn" "$here/spawn.c"
(cd "$root" && CGO_ENABLED=0 go build -o "$BENCH_DIR/bin/qinsaudit" ./cmd/qinsaudit)
files=()
for n in 10000 100000; do
	f=$data/many$n.safetensors
	[ -f "$f" ] || /usr/bin/python3 - "$n" "$f" <<'PY'
import json, struct, sys
n, out = int(sys.argv[1]), sys.argv[2]
h = {"__metadata__": {"format": "pt"}}
for i in range(n):
    h["model.layers.%d.mlp.proj_%d.weight" % (i // 8, i % 8)] = {"dtype": "F32", "shape": [4, 4], "data_offsets": [64 * i, 64 * (i + 1)]}
js = json.dumps(h, separators=(",", ":")).encode()
js += b" " * (-len(js) % 8)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(js))); f.write(js); f.truncate(8 + len(js) + 64 * n)
PY
	[ -f "$data/many$n.pt" ] || /usr/bin/python3 "$here/gen_torch.py" many "$data/many$n.pt" "$n" >/dev/null
	files+=("$f" "$data/many$n.pt")
done
[ -f "$data/gguf/tensors-100000.gguf" ] || (cd "$root/bench/gguf" && go run ./cmd/ggufwrite "$data/gguf")
files+=("$data/gguf/tensors-9999.gguf" "$data/gguf/tensors-100000.gguf")

heaps=$(cd "$root" && QINSAUDIT_BENCH_PATHS=$(IFS=:; echo "${files[*]}") \
	go test -run '^$' -bench FinalHeap -benchtime 1x ./cmd/qinsaudit | awk '/final-heap-MiB/ {print $1, $(NF-1)}')
printf '%-28s %-6s %14s %16s %7s\n' file format "peak RSS MiB" "final heap MiB" ratio
for f in "${files[@]}"; do
	for format in text json; do
		rss=$("$BENCH_DIR/bin/spawn" -n "$RUNS" -- "$BENCH_DIR/bin/qinsaudit" audit --format "$format" "$f" |
			sort -k2 -n | sed -n "$(((RUNS + 1) / 2))p" | awk '{printf "%.1f", $2 / 1024}')
		heap=$(echo "$heaps" | awk -v k="BenchmarkFinalHeap/$(basename "$f")/$format-" 'index($1, k) == 1 {printf "%.2f", $2}')
		printf '%-28s %-6s %14s %16s %7.2f\n' "$(basename "$f")" "$format" "$rss" "$heap" "$(echo "$rss / $heap" | bc -l)"
	done
done
