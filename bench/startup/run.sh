#!/usr/bin/env bash
# Start-up cost of qinsaudit against an empty Go program, side by side.
#
#   bash bench/startup/run.sh [ROUNDS]      # from the repository root
#
# Builds qinsaudit as documented (CGO_ENABLED=0, a static binary) and an
# empty Go program (func main() {}) with the same toolchain in a temporary
# directory, then prints for each command:
#   - instructions executed, whole process, from valgrind's callgrind: the
#     main measure, as it is the same from run to run on a shared, noisy
#     machine (GODEBUG=asyncpreemptoff=1 for both programs: callgrind
#     asserts on the preemption signals of a static Go binary);
#   - wall time, median of ROUNDS runs (default 21), the programs
#     interleaved so that both see the same load;
#   - the package initialisation of qinsaudit (GODEBUG=inittrace=1):
#     packages, clock and bytes allocated before main.
set -euo pipefail
rounds=${1:-21}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/empty"
printf 'package main\n\nfunc main() {}\n' > "$tmp/empty/main.go"
printf 'module empty\n\ngo 1.26\n' > "$tmp/empty/go.mod"
(cd "$tmp/empty" && CGO_ENABLED=0 go build -o "$tmp/empty.bin" .)
(cd "$root" && CGO_ENABLED=0 go build -o "$tmp/qinsaudit" ./cmd/qinsaudit)
file "$tmp/qinsaudit" | grep -q 'statically linked' && echo "qinsaudit: statically linked" || echo "qinsaudit: NOT statically linked"

toy="$root/fixtures/torch/toy_qins_log.pt"
cmds=(
  "$tmp/empty.bin"
  "$tmp/qinsaudit audit $toy"
  "$tmp/qinsaudit audit $toy --format json"
  "$tmp/qinsaudit audit $root/fixtures/gguf/tiny-q4_k_m.gguf"
)
[ -f "$root/fixtures/gguf/tiny-q4_k_m.gguf" ] || unset 'cmds[3]'

instr() { # instructions of one run of "$@"
  GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
    awk '/Collected/ {print $NF}'
}
wall() { # median wall time in microseconds of $rounds interleaved runs, one line per command
  local i c
  declare -A t
  for ((i = 0; i < rounds; i++)); do
    for c in "${!cmds[@]}"; do
      local s e
      s=$(date +%s%N)
      ${cmds[$c]} >/dev/null 2>&1 || true
      e=$(date +%s%N)
      t[$c]+="$(((e - s) / 1000)) "
    done
  done
  for c in "${!cmds[@]}"; do
    echo "${t[$c]}" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
  done
}

mapfile -t walls < <(wall)
ins=()
for c in "${!cmds[@]}"; do ins+=("$(instr ${cmds[$c]})"); done
printf '\n%-62s %13s %8s %9s %8s\n' command instructions "x empty" "wall µs" "x empty"
k=0
for c in "${!cmds[@]}"; do
  printf '%-62s %13s %8.2f %9s %8.2f\n' "$(echo "${cmds[$c]}" | sed "s#$tmp/##; s#$root/##g")" \
    "${ins[$k]}" "$(echo "${ins[$k]} / ${ins[0]}" | bc -l)" "${walls[$k]}" "$(echo "${walls[$k]} / ${walls[0]}" | bc -l)"
  k=$((k + 1))
done
echo
GODEBUG=inittrace=1 "$tmp/qinsaudit" audit "$toy" 2>&1 >/dev/null |
  awk '/^init / {n++; ms += $5; b += $8; if ($8 > 20000) big = big sprintf("  %s %s bytes, %s ms\n", $2, $8, $5)}
       END {printf "package inits: %d, %.2f ms, %d bytes allocated; over 20 kB:\n%s", n, ms, b, big}'
