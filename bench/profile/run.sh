#!/usr/bin/env bash
# Overhead of `qinsaudit profile` on the command it profiles, under exact
# heap profiling (every allocation recorded), for a QINS decode of 10^8
# weights in PyTorch (decode.py). Prints the wall time of each way of
# running it, the best of RUNS runs (default 5), and the decode's own time
# as decode.py measures it (the loop over the 100 layers, between the marks):
#
#   plain      /usr/bin/python3 decode.py
#   jemalloc   the same under LD_PRELOAD=libjemalloc.so.2 (profiling off)
#   profile-je qinsaudit profile --allocator jemalloc -- python3 decode.py --mark
#   profile-tc qinsaudit profile --allocator tcmalloc -- python3 decode.py --mark
#
#   bash bench/profile/run.sh          # from the repository root
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-5}
N=${N:-100000000}
PY=/usr/bin/python3
LIB=/usr/lib/x86_64-linux-gnu
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
go build -o "$TMP/qinsaudit" ./cmd/qinsaudit
# A model file for --model: any small checkpoint will do, the bench measures
# the command's time, not the verdict.
MODEL=fixtures/torch/toy_qins_log.pt

best() { # best NAME CMD...: the least wall time and decode time of RUNS runs
	local name=$1 bw="" bd=""
	shift
	for _ in $(seq "$RUNS"); do
		local s e w d
		s=$(date +%s.%N)
		"$@" >"$TMP/out" 2>&1 || true
		e=$(date +%s.%N)
		w=$(echo "$e - $s" | bc)
		d=$(sed -n 's/^decoded .* weights in \([0-9.]*\) s.*/\1/p' "$TMP/out")
		if [ -z "$d" ]; then echo "$name: no decode time in the output:"; cat "$TMP/out"; exit 1; fi
		if [ -z "$bw" ] || [ "$(echo "$w < $bw" | bc)" = 1 ]; then bw=$w; fi
		if [ -z "$bd" ] || [ "$(echo "$d < $bd" | bc)" = 1 ]; then bd=$d; fi
	done
	printf "%-11s wall %6.2f s   decode loop %6.3f s\n" "$name" "$bw" "$bd"
}

profiled() { # profiled ALLOCATOR: one run of qinsaudit profile, in a fresh -o DIR
	"$TMP/qinsaudit" profile --allocator "$1" --model "$MODEL" -o "$(mktemp -d -p "$TMP")" -- "$PY" bench/profile/decode.py "$N" --mark
}

best plain "$PY" bench/profile/decode.py "$N"
best jemalloc env LD_PRELOAD=$LIB/libjemalloc.so.2 "$PY" bench/profile/decode.py "$N"
best profile-je profiled jemalloc
best profile-tc profiled tcmalloc
