#!/usr/bin/env bash
# make bench: every benchmark once, figures to stdout.
set -uo pipefail
cd "$(dirname "$0")/.."
for b in kernel state e2e train; do
  [ -x "bench/$b" ] || continue
  echo "######## bench/$b"
  "bench/$b" || echo "bench/$b failed"
done
