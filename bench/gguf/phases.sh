#!/usr/bin/env bash
# Where the instructions of `qinsaudit audit FILE --format json` go, part
# by part, in the order the process runs them:
#
#   start-up  runtime and package initialisation, flag parsing, up to
#             loaders.OpenSource
#   parse     loaders.OpenSource up to accounting.Audit: open, sniff, the
#             loader (gguf.Loader.Load)
#   audit     accounting.Audit
#   report    report.Build
#   json      main.(*outputFlags).write (the JSON report) and the exit
#
#   bash bench/gguf/phases.sh FILE...      # from the repository root
#
# QINSAUDIT=path runs that binary instead of building this tree's;
# PHASES_RAW=1 prints the parts' instructions too.
#
# Callgrind dumps its counts when each part starts (--dump-before), so the
# parts are the instructions of all threads between those points: exact and
# the same from run to run, where its inclusive costs are not (Go's stack
# and goroutine switches confuse its call tree). They are measured with
# GOGC=off: with the collector on, a part takes whatever collection runs
# during it, which varies from run to run (under valgrind the collector's
# idle workers run whenever the program waits). gc is the share of a run
# with the collector on that the collector costs: that run less the
# GOGC=off one.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "${QINSAUDIT:-}" ]; then # a binary built elsewhere, e.g. of another commit
  cp "$QINSAUDIT" "$tmp/qinsaudit"
else
  (cd "$root" && CGO_ENABLED=0 go build -o "$tmp/qinsaudit" ./cmd/qinsaudit)
fi

starts=('github.com/qinsaudit/qinsaudit/loaders.OpenSource' 'github.com/qinsaudit/qinsaudit/accounting.Audit'
  'github.com/qinsaudit/qinsaudit/report.Build' 'main.(*outputFlags).write')
dumps=()
for s in "${starts[@]}"; do dumps+=("--dump-before=$s"); done

# parts DIR: instructions of the five parts, from callgrind's dumps. A dump's
# "desc: Trigger:" names what ended it; the first dump at the start of the
# next part moves on to it (later ones, of functions the pattern also
# matches, do not).
parts() {
  local f next=0 sum=(0 0 0 0 0) n trig
  for f in $(ls "$1"/cg.* | sort -t. -k3 -n) "$1/cg"; do
    [ -f "$f" ] || continue
    n=$(awk '/^summary:/ {print $2}' "$f")
    trig=$(awk -F'--dump-before=' '/^desc: Trigger:/ {print $2}' "$f")
    sum[next]=$((sum[next] + n))
    if [ "$next" -lt 4 ] && [ "$trig" = "${starts[next]}" ]; then next=$((next + 1)); fi
  done
  echo "${sum[@]}"
}
pct() { echo "scale=1; 100 * $1 / $2" | bc; }

printf '%-30s %13s %13s | %7s %7s %7s %7s %7s | %7s\n' file instructions GOGC=off start-up parse audit report json gc
for f in "$@"; do
  for gc in on off; do
    rm -rf "$tmp/$gc" && mkdir "$tmp/$gc"
    env $([ $gc = off ] && echo GOGC=off) GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --dump-instr=no \
      --callgrind-out-file="$tmp/$gc/cg" "${dumps[@]}" "$tmp/qinsaudit" audit "$f" --format json >/dev/null 2>"$tmp/$gc.err"
  done
  read -r -a on <<<"$(parts "$tmp/on")"
  read -r -a off <<<"$(parts "$tmp/off")"
  total=$((on[0] + on[1] + on[2] + on[3] + on[4]))
  t=$((off[0] + off[1] + off[2] + off[3] + off[4]))
  printf '%-30s %13s %13s | %6s%% %6s%% %6s%% %6s%% %6s%% | %6s%%\n' "$(basename "$f")" "$total" "$t" \
    "$(pct "${off[0]}" $t)" "$(pct "${off[1]}" $t)" "$(pct "${off[2]}" $t)" \
    "$(pct "${off[3]}" $t)" "$(pct "${off[4]}" $t)" "$(pct $((total - t)) $total)"
  [ -z "${PHASES_RAW:-}" ] || echo "  GOGC=off: ${off[*]}; collector on: ${on[*]}"
done
echo "instructions: one run, collector on (the collector's share varies from run to run); parts: % of the"
echo "GOGC=off run, which is exact; gc: the collector's share of the first column"
