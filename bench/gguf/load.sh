#!/usr/bin/env bash
# In-process cost of a loader: the instructions of one Loader.Load (GGUF, or
# safetensors for a name ending in .safetensors) on an *os.File, from
# callgrind's counts dumped at cmd/loadonce's marks, with GOGC=off (exact
# and the same from run to run), and per tensor.
#
#   bash bench/gguf/load.sh FILE...      # from the repository root
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$(dirname "$0")" && CGO_ENABLED=0 go build -o "$tmp/loadonce" ./cmd/loadonce)
printf '%-34s %8s %13s %10s\n' file tensors instructions "per tensor"
for f in "$@"; do
  rm -rf "$tmp/cg" && mkdir "$tmp/cg"
  n=$(GOGC=off GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$tmp/cg/out" \
    --dump-before=main.markStart --dump-before=main.markEnd "$tmp/loadonce" "$f" 2>/dev/null)
  ins=$(grep -l '^desc: Trigger: --dump-before=main.markEnd' "$tmp"/cg/out* | xargs awk '/^summary:/ {print $2}')
  per=$([ "$n" -gt 0 ] && echo $((ins / n)) || echo -)
  printf '%-34s %8s %13s %10s\n' "$(basename "$f")" "$n" "$ins" "$per"
done
