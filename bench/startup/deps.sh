#!/usr/bin/env bash
# What the package inits of qinsaudit's dependencies cost, whatever a command
# does: a program that only imports (blank) every package that qinsaudit's
# own packages import, standard library included, at the module's versions,
# against the same program less one dependency at a time.
#
#   bash bench/startup/deps.sh      # from the repository root
#
# Prints instructions (callgrind, GODEBUG=asyncpreemptoff=1, GOMAXPROCS=1,
# the median of 5 runs) of an empty program, of the program importing
# everything, and for each dependency the instructions it adds: the whole
# program less the program without it (its own packages and those only it
# brings in). A run's count varies by tens of thousands (the runtime's
# threads, which run by the clock, and its random hash seeds): differences
# under about 100 k are noise (a negative one is no cost at all).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A module of its own with qinsaudit's requirements, so the versions are the
# ones qinsaudit builds with.
sed 's#^module .*#module initcost#' "$root/go.mod" > "$tmp/go.mod"
cp "$root/go.sum" "$tmp/go.sum"
cd "$root"
ours=$(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./cmd/qinsaudit | grep '^github.com/qinsaudit/')
# shellcheck disable=SC2086
go list -f '{{join .Imports "\n"}}' $ours | sort -u | grep -v '^github.com/qinsaudit/' > "$tmp/direct.txt"
cd "$tmp"

instr() { # the program importing the packages listed in $1
  { echo 'package main'; echo 'import ('; sed 's/.*/_ "&"/' "$1"; echo ')'; echo 'func main() {}'; } > main.go
  CGO_ENABLED=0 go build -o prog .
  for _ in 1 2 3 4 5; do
    GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 valgrind --tool=callgrind --callgrind-out-file=/dev/null ./prog 2>&1 |
      awk '/Collected/ {print $NF}'
  done | sort -n | sed -n 3p
}
: > none.txt
empty=$(instr none.txt)
all=$(instr direct.txt)
printf '%-48s %10s\n' "empty program" "$empty" "all of qinsaudit's imports" "$all" "  of which over empty" "$((all - empty))"
echo
echo "instructions each adds (all imports less all but it):"
for g in github.com/google/pprof/ github.com/olekukonko/tablewriter net/http go.yaml.in/yaml/v3 \
  github.com/goccy/go-json html/template 'github.com/spf13/' github.com/pelletier/go-toml \
  github.com/nlpodyssey/gopickle 'archive/zip|compress/' math/big 'net/url|net$' encoding/json regexp; do
  grep -vE "^($g)" direct.txt > less.txt
  printf '  %-46s %10d\n' "$g" "$((all - $(instr less.txt)))"
done
