#!/usr/bin/env bash
# Whole-process GGUF comparison: `qinsaudit audit FILE` (the whole audit:
# parse, accounting, the text report) and `qinsaudit audit FILE --format
# json` (the JSON report of every tensor instead) against gguf-parser-go as
# a process (cmd/ggufparse: ParseGGUFFile with SkipLargeMetadata and UseMMap,
# its fastest setting, printing the tensor count), on the vocab files of
# shared/realworld, the fixtures' 21-tensor file, and generated files of
# 1,152, 9,999 and 100,000 tensors (cmd/ggufwrite).
#
#   bash bench/gguf/process.sh [ROUNDS]     # from the repository root
#
# Per file: instructions of one run of each (valgrind's callgrind; the same
# from run to run on a shared machine, GODEBUG=asyncpreemptoff=1 for both),
# and the median wall time of ROUNDS runs (default 11), the three commands
# interleaved so that all see the same load. Ratios are gguf-parser-go's
# over qinsaudit's: above 1, qinsaudit is faster.
set -euo pipefail
rounds=${1:-11}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$root" && CGO_ENABLED=0 go build -o "$tmp/qinsaudit" ./cmd/qinsaudit)
(cd "$root/bench/gguf" && CGO_ENABLED=0 go build -o "$tmp/ggufparse" ./cmd/ggufparse && go run ./cmd/ggufwrite "$tmp")
files=("$root"/../shared/realworld/llama_cpp_vocab/*.gguf "$root/fixtures/gguf/tiny-q4_k_m.gguf"
  "$tmp/many-tensors-1152.gguf" "$tmp/tensors-9999.gguf" "$tmp/tensors-100000.gguf")

instr() {
  GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
    awk '/Collected/ {print $NF}'
}
us() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(((e - s) / 1000)); }
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-26s %7s | %9s %9s %9s %5s %5s | %8s %8s %8s %5s %5s\n' file tensors "text ins" "json ins" "parser" ratio ratio "text µs" "json µs" "parser" ratio ratio
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  n=$("$tmp/ggufparse" "$f" | awk '{print $NF}')
  tt="" jt="" pt=""
  for ((i = 0; i < rounds; i++)); do
    tt+="$(us "$tmp/qinsaudit" audit "$f") "
    jt+="$(us "$tmp/qinsaudit" audit "$f" --format json) "
    pt+="$(us "$tmp/ggufparse" "$f") "
  done
  ti=$(instr "$tmp/qinsaudit" audit "$f")
  ji=$(instr "$tmp/qinsaudit" audit "$f" --format json)
  pi=$(instr "$tmp/ggufparse" "$f")
  tm=$(echo "$tt" | median) jm=$(echo "$jt" | median) pm=$(echo "$pt" | median)
  M() { echo "$1 / 1000000" | bc -l | xargs printf '%.1fM'; }
  printf '%-26s %7s | %9s %9s %9s %5.2f %5.2f | %8s %8s %8s %5.2f %5.2f\n' "$(basename "$f" .gguf)" "$n" \
    "$(M "$ti")" "$(M "$ji")" "$(M "$pi")" "$(echo "$pi / $ti" | bc -l)" "$(echo "$pi / $ji" | bc -l)" \
    "$tm" "$jm" "$pm" "$(echo "$pm / $tm" | bc -l)" "$(echo "$pm / $jm" | bc -l)"
done
echo "ratios: gguf-parser-go's over qinsaudit's, text then json (above 1: qinsaudit is faster)"
