#!/usr/bin/env bash
# Runs every Fuzz* target of the module for a short bounded time (default 5s
# each), so CI explores beyond the committed corpus without running long.
set -euo pipefail
fuzztime=${1:-5s}
cd "$(dirname "$0")/.."
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  pkg="./$(dirname "${f#./}")"
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "fuzz $pkg $target ($fuzztime)"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg"
  done
done
