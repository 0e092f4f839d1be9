#!/usr/bin/env bash
# bench/hostile/run.sh: peak RSS, time and exit code of hostile inputs
# (issue 10), for one or two builds of qinsaudit side by side.
#
#   bash bench/hostile/run.sh [BEFORE_BINARY]
#
# Builds the working tree's qinsaudit, generates the inputs with gen.py into
# $HOSTILE_DIR (default /tmp/qinsaudit-hostile), and runs every case under
# /usr/bin/time -v with a 4 GiB address-space limit (ulimit -v) and a 60 s
# timeout, so that a build that takes the machine's memory or hangs is
# stopped, not the machine. Prints one markdown row per case and build.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
dir=${HOSTILE_DIR:-/tmp/qinsaudit-hostile}
mkdir -p "$dir"
(cd "$repo" && go build -o "$dir/qinsaudit-after" ./cmd/qinsaudit) || exit 1
python3 "$here/gen.py" "$dir/in" || exit 1
in=$dir/in
toy=$repo/fixtures/torch/toy_qins_log.pt
small=$repo/fixtures/safetensors/small_f32.safetensors

# Saved reports: a real one, then one with a negative count and one whose
# total is not the sum of its roles.
"$dir/qinsaudit-after" audit --format json "$toy" > "$in/good.json"
python3 - "$in" <<'PY'
import json, sys
d = sys.argv[1]
r = json.load(open(d + "/good.json"))
r["tensors"][0]["stored_bytes"] = -4096
json.dump(r, open(d + "/negative.json", "w"))
r = json.load(open(d + "/good.json"))
r["totals"]["stored_bytes"] += 1 << 40
json.dump(r, open(d + "/contradict.json", "w"))
r = json.load(open(d + "/good.json"))
r["tensors"][0]["stored_bytes"] = 2**63 - 1
json.dump(r, open(d + "/maxint.json", "w"))
PY
rm -f "$in/fifo" "$in/zero.yaml" "$in/zero.json"
mkfifo "$in/fifo"
ln -s /dev/zero "$in/zero.yaml"
ln -s /dev/zero "$in/zero.json"

cases=(
  "names-by-tensor|audit --by tensor $in/longname.safetensors"
  "names-markdown|audit --by tensor --format markdown $in/longname.safetensors"
  "inject-text|audit --by tensor $in/inject.safetensors"
  "tcmalloc-bomb|crosscheck $toy --heap $in/tcmalloc-bomb.heap.gz"
  "proto-bomb|crosscheck $toy --heap $in/proto-bomb.pb.gz"
  "period-0|crosscheck $toy --heap $in/period0.heap"
  "period-neg|crosscheck $toy --heap $in/period-5.heap"
  "heap-devzero|crosscheck $toy --heap /dev/zero"
  "heap-fifo|crosscheck $toy --heap $in/fifo"
  "config-devzero|check $small --config $in/zero.yaml"
  "config-fifo|check $small --config $in/fifo"
  "against-devzero|check $small --against /dev/zero"
  "rules-devzero|audit $small --rules /dev/zero"
  "claims-devzero|crosscheck $toy --heap $repo/fixtures/heap/tcmalloc-cache-after-load.heap.gz --claims /dev/zero"
  "claims-dup|crosscheck $toy --heap $repo/fixtures/heap/tcmalloc-cache-after-load.heap.gz --claims $in/dup-claims.json"
  "diff-fifo|diff $in/good.json $in/fifo"
  "diff-negative|diff $in/good.json $in/negative.json"
  "diff-maxint|diff $in/good.json $in/maxint.json"
  "against-contradict|check $toy --against $in/contradict.json"
  "min-ratio-nan|check $small --min-ratio total=NaN"
  "config-nan|check $small --config $in/nan.yaml"
  "config-inf|check $small --config $in/inf.toml"
  "max-heap-nan|check $toy --heap $repo/fixtures/heap/tcmalloc-cache-after-load.heap.gz --max-heap-over-stored NaN"
  "max-growth-nan|check $toy --against $in/good.json --max-growth NaN%"
  "shards-40k|audit $in/shards"
  "write-devfull|audit $small >/dev/full"
)

echo "| case | build | exit | peak RSS (MiB) | wall (s) | stdout bytes | stderr (first 100 bytes) |"
echo "|---|---|---:|---:|---:|---:|---|"
for b in ${1:+before} after; do
  bin=$dir/qinsaudit-$b
  [ "$b" = before ] && bin=$1
  for c in "${cases[@]}"; do
    name=${c%%|*}
    args=${c#*|}
    out=$dir/out.txt
    redirect=">$out"
    case $args in *">/dev/full") redirect=""; esac
    rm -f "$dir/victim"
    ( ulimit -v 4194304; eval "/usr/bin/time -v -o $dir/time.txt timeout 60 $bin $args $redirect 2>$dir/err.txt" )
    code=$(awk -F': ' '/Exit status/ {print $2}' "$dir/time.txt")
    rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$dir/time.txt")
    wall=$(awk '/Elapsed \(wall/ {print $NF}' "$dir/time.txt")
    bytes=0; [ -n "$redirect" ] && bytes=$(stat -c %s "$out")
    err=$(head -c 100 "$dir/err.txt" | tr '\n\r\033|' '    ' )
    echo "| $name | $b | $code | $rss | $wall | $bytes | $err |"
  done
done
# decode -o DIR with a planted symlink: is the victim written?
for b in ${1:+before} after; do
  bin=$dir/qinsaudit-$b
  [ "$b" = before ] && bin=$1
  rm -rf "$dir/dd" && mkdir "$dir/dd" && echo victim > "$dir/victim" && ln -s ../victim "$dir/dd/01-after-load.pb.gz"
  timeout 60 "$bin" decode -o "$dir/dd" "$toy" >/dev/null 2>"$dir/err.txt"; code=$?
  echo "| decode-symlink | $b | $code | - | - | - | victim now: $(head -c 6 "$dir/victim" | od -An -c | tr -s ' ') |"
done
