#!/usr/bin/env bash
# bench/pytorch/run.sh: qinsaudit's .pt loader at 1,000, 10,000 and 100,000
# tensors against the cheapest stdlib-Python header reader (pt_header.py),
# whole process, paired runs (issue 11, "many tensors").
#
#   bash bench/pytorch/run.sh
#
# Generates (once) many<N>.pt with real torch.save (bench/audit/gen_torch.py
# many: a flat state_dict of N float32 [4, 4] tensors), then for each size
# alternates RUNS times: `qinsaudit audit FILE` and `pt_header.py FILE`,
# each launched by bench/audit/spawn.c (wall, peak RSS, CPU per run), and
# prints medians. Then the in-process loader benchmark (BenchmarkLoadPaths:
# ns/tensor, B/op, allocs/op) and, with CALLGRIND=1, instruction counts of
# one in-process load per size (valgrind), which other jobs on a shared
# machine do not disturb.
#
# Environment: BENCH_DIR (default /tmp/qinsaudit-bench-pt), RUNS (default
# 11), SIZES (default "1000 10000 100000"), QINSAUDIT (a binary to use),
# PYTHON (default /usr/bin/python3, with torch for the generator only).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/qinsaudit-bench-pt}
PYTHON=${PYTHON:-/usr/bin/python3}
RUNS=${RUNS:-11}
SIZES=${SIZES:-1000 10000 100000}
case "$BENCH_DIR" in "$REPO"*) echo "BENCH_DIR must be outside the repository" >&2; exit 2 ;; esac
mkdir -p "$BENCH_DIR/bin"

"${CC:-cc}" -O2 -o "$BENCH_DIR/bin/spawn" "$REPO/bench/audit/spawn.c"
QA=${QINSAUDIT:-$BENCH_DIR/bin/qinsaudit}
if [ -z "${QINSAUDIT:-}" ]; then
	(cd "$REPO" && CGO_ENABLED=0 go build -o "$QA" ./cmd/qinsaudit)
fi

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

paths=()
for n in $SIZES; do
	f=$BENCH_DIR/many$n.pt
	[ -f "$f" ] || "$PYTHON" "$REPO/bench/audit/gen_torch.py" many "$f" "$n" >/dev/null
	paths+=("$f")
	: >"$BENCH_DIR/qa$n" && : >"$BENCH_DIR/py$n"
	for _ in $(seq "$RUNS"); do # paired: one of each in turn
		"$BENCH_DIR/bin/spawn" -- "$QA" audit "$f" >>"$BENCH_DIR/qa$n"
		"$BENCH_DIR/bin/spawn" -- "$PYTHON" "$HERE/pt_header.py" "$f" >>"$BENCH_DIR/py$n"
	done
	for t in qa py; do
		w=$(cut -d' ' -f1 "$BENCH_DIR/$t$n" | median)
		r=$(cut -d' ' -f2 "$BENCH_DIR/$t$n" | median)
		c=$(cut -d' ' -f3 "$BENCH_DIR/$t$n" | median)
		printf '%7d tensors  %-9s wall %8.1f ms  cpu %8.1f ms  peak RSS %7.1f MiB  cpu/tensor %6.2f us\n' \
			"$n" "$([ $t = qa ] && echo qinsaudit || echo python)" \
			"$(echo "$w*1000" | bc -l)" "$(echo "$c*1000" | bc -l)" "$(echo "$r/1024" | bc -l)" "$(echo "$c*1000000/$n" | bc -l)"
	done
done

list=$(IFS=:; echo "${paths[*]}")
(cd "$REPO" && QINSAUDIT_BENCH_PATHS=$list go test -run '^$' -bench BenchmarkLoadPaths -benchmem -benchtime 5x ./loaders/pytorch | grep Benchmark)

if [ "${CALLGRIND:-0}" = 1 ]; then
	(cd "$REPO" && go test -c -o "$BENCH_DIR/bin/pytorch.test" ./loaders/pytorch)
	for f in "${paths[@]}"; do
		out=$(QINSAUDIT_BENCH_PATHS=$f valgrind --tool=callgrind --callgrind-out-file=/dev/null \
			"$BENCH_DIR/bin/pytorch.test" -test.run '^$' -test.bench BenchmarkLoadPaths -test.benchtime 1x 2>&1 | grep -o 'Collected : [0-9]*')
		echo "$(basename "$f"): callgrind ${out#Collected : } instructions (test binary start-up included)"
	done
fi
