#!/usr/bin/env bash
# bench/audit/run.sh: how fast and how lean is `qinsaudit audit` compared
# with the accounting a user would otherwise do? (issue 2, "Performance")
#
#   bash bench/audit/run.sh
#
# In one run, side by side, on the same files:
#   a. a GPT-2-large-shaped fp32 state_dict written by real torch.save
#      (509 tensors, 3.25 GB): `qinsaudit audit --format json FILE` versus a
#      python script that runs torch.load and sums numel()*element_size()
#      over the unique storages;
#   b. a full-size Phi-3.5-mini-instruct-shaped safetensors pair (2 shards,
#      model.safetensors.index.json, config.json; real header layout, sparse
#      data), in f32 (15.3 GB apparent) and in the published bf16 (7.6 GB):
#      qinsaudit on the directory versus a python script that parses the
#      JSON headers and sums (header-only too: it compares runtimes, not
#      approaches) and, where memory allows, one that reads every tensor
#      into torch as safetensors.torch.load_file would (the safetensors
#      package is not installed and torch cannot read safetensors);
#   c. a torch.save dict of 2,000 tiny tensors: qinsaudit versus torch.load.
# Then `go test -bench BenchmarkOpenAudit ./loaders` on the same files for the
# in-process cost. Each process is launched by spawn.c (compiled here), which
# reports wall time, peak RSS (ru_maxrss) and CPU time per run.
#
# Output: a markdown table on stdout and in $BENCH_DIR/results.md; the raw
# per-run numbers in $BENCH_DIR/raw/.
#
# Environment (all optional):
#   BENCH_DIR   work directory for everything generated (default
#               /tmp/qinsaudit-bench; must be outside the repository). Needs
#               ~3.3 GB of free disk for case a; the Phi-3.5 files are sparse.
#   RUNS        qinsaudit runs per case, after 2 warm-up runs (default 21)
#   PY_RUNS     runs of the header-only python script (default 11)
#   TORCH_RUNS  runs of torch.load (default 3)
#   LOAD_RUNS   runs of the read-everything safetensors script (default 1: it
#               takes ~1 min and the whole model's memory per run here)
#   ST_LOAD     auto (default: run the read-everything script on a Phi-3.5
#               variant when twice its data fits in MemAvailable), 1 or 0
#   COLD=1      also time one cold-cache run of each tool on case a, after
#               `echo 3 > /proc/sys/vm/drop_caches` and re-warming the
#               programs themselves (root only; this drops the page cache of
#               the whole machine, so it is off by default)
#   GO_BENCH=0  skip the go test benchmarks
#   REGEN=1     regenerate the data files even when they are up to date
#   QINSAUDIT   a qinsaudit binary to use instead of building one
#   PYTHON      python with torch (default /usr/bin/python3)
#
# Safe to re-run: the data files are regenerated only when missing or when
# their generator changed (a stamp beside them), each is written under a
# temporary name and renamed, and raw/ is rebuilt on every run. Nothing is
# written into the repository.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/qinsaudit-bench}
PYTHON=${PYTHON:-/usr/bin/python3}
RUNS=${RUNS:-21}
PY_RUNS=${PY_RUNS:-11}
TORCH_RUNS=${TORCH_RUNS:-3}
LOAD_RUNS=${LOAD_RUNS:-1}
ST_LOAD=${ST_LOAD:-auto}
COLD=${COLD:-0}
GO_BENCH=${GO_BENCH:-1}
REGEN=${REGEN:-0}

BENCH_DIR=$(realpath -m "$BENCH_DIR")
case "$BENCH_DIR/" in
"$(realpath "$REPO")"/*)
	echo "run.sh: BENCH_DIR ($BENCH_DIR) is inside the repository; choose a directory outside it" >&2
	exit 2
	;;
esac
mkdir -p "$BENCH_DIR"
BIN=$BENCH_DIR/bin
DATA=$BENCH_DIR/data
RAW=$BENCH_DIR/raw
mkdir -p "$BIN" "$DATA"
rm -rf "$RAW"
mkdir -p "$RAW"

log() { printf '[run.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- tools -----------------------------------------------------------------
if [[ -n ${QINSAUDIT:-} ]]; then
	QA=$QINSAUDIT
else
	log "building qinsaudit into $BIN"
	(cd "$REPO" && go build -o "$BIN/qinsaudit" ./cmd/qinsaudit)
	QA=$BIN/qinsaudit
fi
"${CC:-cc}" -O2 -o "$BIN/spawn" "$HERE/spawn.c"
SPAWN=$BIN/spawn
"$PYTHON" -c 'import torch' || {
	echo "run.sh: $PYTHON cannot import torch" >&2
	exit 2
}

# --- data ----------------------------------------------------------------
# gen OUTPUT COMMAND...: run COMMAND unless OUTPUT exists and was made by the
# same generator and arguments.
gen() {
	local out=$1
	shift
	local stamp
	stamp="$DATA/.stamp.$(basename "$out")"
	local want
	want=$(
		sha256sum "$2" | cut -d' ' -f1
		printf '%s\n' "${@:3}"
	)
	if [[ $REGEN != 1 && -e $out && -f $stamp && $(cat "$stamp") == "$want" ]]; then
		log "up to date: $out"
		return
	fi
	log "generating $out"
	rm -f "$stamp"
	"$@" >&2
	printf '%s\n' "$want" >"$stamp"
}

A=$DATA/gpt2-large-fp32.pt
C=$DATA/many2000.pt
B1=$DATA/phi35-mini-f32
B2=$DATA/phi35-mini-bf16
if [[ ! -e $A || $REGEN == 1 ]]; then
	free_kb=$(df -Pk "$DATA" | awk 'NR==2 {print $4}')
	if ((free_kb < 3600000)); then
		echo "run.sh: $DATA has $((free_kb / 1024)) MiB free; case a needs ~3.3 GB" >&2
		exit 2
	fi
fi
gen "$A" "$PYTHON" "$HERE/gen_torch.py" gpt2-large "$A"
gen "$C" "$PYTHON" "$HERE/gen_torch.py" many "$C" 2000
gen "$B1" "$PYTHON" "$HERE/gen_phi35.py" "$B1" f32
gen "$B2" "$PYTHON" "$HERE/gen_phi35.py" "$B2" bf16

# --- environment -----------------------------------------------------------
{
	echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "machine:     $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
	echo "qinsaudit:   $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet 2>/dev/null || echo ' + uncommitted changes'), $(go version 2>/dev/null | cut -d' ' -f3-4)"
	echo "python:      $("$PYTHON" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__)')"
	echo "load avg:    $(cut -d' ' -f1-3 /proc/loadavg) at start; run at nice $(nice)"
	echo "page cache:  warm (each tool has a warm-up run before the timed runs; st-load, whose data are holes, has none)$([[ $COLD == 1 ]] && echo '; cold rows after drop_caches')"
} >"$RAW/env.txt"

# --- measurements ------------------------------------------------------------
# qa CASE DATA: one run kept for the correctness check, 2 warm-ups, RUNS timed.
qa() {
	local case=$1 data=$2
	log "case $case: qinsaudit x $RUNS"
	"$QA" audit --format json "$data" >"$RAW/$case.qinsaudit.json"
	"$SPAWN" -n 2 -- "$QA" audit --format json "$data" >/dev/null
	"$SPAWN" -n "$RUNS" -- "$QA" audit --format json "$data" >"$RAW/$case.qinsaudit.runs"
	printf '%s\tqinsaudit\t%s\t%s\t%s\n' "$case" "$data" "$RAW/$case.qinsaudit.runs" "$RAW/$case.qinsaudit.json" >>"$RAW/index.tsv"
}

# py CASE MODE DATA N [WARM]: a warm-up run unless WARM is 0, then N timed
# runs of baseline.py MODE DATA.
py() {
	local case=$1 mode=$2 data=$3 n=$4 warm=${5:-1}
	log "case $case: python $mode x $n"
	if [[ $warm != 0 ]]; then
		"$SPAWN" -n 1 -- "$PYTHON" "$HERE/baseline.py" "$mode" "$data" >/dev/null
	fi
	rm -f "$RAW/$case.$mode.jsonl"
	"$SPAWN" -n "$n" -- "$PYTHON" "$HERE/baseline.py" "$mode" "$data" --out "$RAW/$case.$mode.jsonl" >"$RAW/$case.$mode.runs"
	printf '%s\t%s\t%s\t%s\t%s\n' "$case" "$mode" "$data" "$RAW/$case.$mode.runs" "$RAW/$case.$mode.jsonl" >>"$RAW/index.tsv"
}

# want_load DIR: whether to run the read-everything script on DIR.
want_load() {
	case $ST_LOAD in
	1) return 0 ;;
	0) return 1 ;;
	esac
	local bytes avail
	bytes=$(du -sb --apparent-size "$1" | cut -f1)
	avail=$(awk '/MemAvailable/ {printf "%.0f", $2 * 1024}' /proc/meminfo)
	((bytes * 2 < avail))
}

qa a "$A"
py a torch-load "$A" "$TORCH_RUNS"

qa b1 "$B1"
py b1 st-header "$B1" "$PY_RUNS"
if want_load "$B1"; then py b1 st-load "$B1" "$LOAD_RUNS" 0; else log "case b1: skipping st-load (ST_LOAD=$ST_LOAD; with auto: too little memory)"; fi

qa b2 "$B2"
py b2 st-header "$B2" "$PY_RUNS"
if want_load "$B2"; then py b2 st-load "$B2" "$LOAD_RUNS" 0; else log "case b2: skipping st-load (ST_LOAD=$ST_LOAD; with auto: too little memory)"; fi

qa c "$C"
py c torch-load "$C" "$TORCH_RUNS"

if [[ $COLD == 1 ]]; then
	for tool in qinsaudit torch-load; do
		log "case a-cold: $tool after drop_caches"
		sync
		echo 3 >/proc/sys/vm/drop_caches
		# Warm the programs again (the qinsaudit binary; python and torch's
		# libraries), not the data file: the cold part is the checkpoint.
		"$QA" --help >/dev/null
		"$PYTHON" -c 'import torch'
		if [[ $tool == qinsaudit ]]; then
			"$SPAWN" -n 1 -- "$QA" audit --format json "$A" >"$RAW/a-cold.qinsaudit.runs"
			printf 'a-cold\tqinsaudit\t%s\t%s\t%s\n' "$A" "$RAW/a-cold.qinsaudit.runs" "$RAW/a.qinsaudit.json" >>"$RAW/index.tsv"
		else
			"$SPAWN" -n 1 -- "$PYTHON" "$HERE/baseline.py" torch-load "$A" --out "$RAW/a-cold.torch-load.jsonl" >"$RAW/a-cold.torch-load.runs"
			printf 'a-cold\ttorch-load\t%s\t%s\t%s\n' "$A" "$RAW/a-cold.torch-load.runs" "$RAW/a-cold.torch-load.jsonl" >>"$RAW/index.tsv"
		fi
	done
fi

echo "load avg:    $(cut -d' ' -f1-3 /proc/loadavg) at the end of the timed runs" >>"$RAW/env.txt"

if [[ $GO_BENCH == 1 ]]; then
	log "go test -bench BenchmarkOpenAudit ./loaders"
	(cd "$REPO" && QINSAUDIT_BENCH_PATHS="$A:$B1:$B2:$C" go test -run '^$' -bench BenchmarkOpenAudit -benchmem ./loaders) >"$RAW/gobench.txt" 2>&1 ||
		log "go test -bench failed; see $RAW/gobench.txt"
fi

"$PYTHON" "$HERE/report.py" "$BENCH_DIR"
