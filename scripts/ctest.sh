#!/usr/bin/env bash
# ctest for `make test`: runs ctest in BUILD_DIR with the given arguments,
# its output (and its summary line) printed as is. When CI is set (and not
# "false" or "0") a skipped test fails the run: a whole test that exited 77
# (ctest's SKIP_RETURN_CODE: a tool it needs is missing) and a single C case
# that called T_SKIP (tests/test.h: "SKIP <case> (<file>:<line>): <reason>"
# in Testing/Temporary/LastTest.log). scripts/deps.sh installs every tool the
# tests use, so on CI nothing has a reason to skip.
#
# usage: scripts/ctest.sh BUILD_DIR [ctest arguments...]
set -uo pipefail

B=${1:?usage: scripts/ctest.sh BUILD_DIR [ctest arguments...]}
shift
out=$(mktemp "${TMPDIR:-/tmp}/sr-ctest.XXXXXX")
trap 'rm -f "$out"' EXIT
(cd "$B" && ctest "$@") 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}

case "${CI:-}" in
"" | false | 0) exit "$rc" ;;
esac
# ctest: "The following tests did not run:" then "\t 23 - 0210-cli-kcat (Skipped)"
skipped=$(sed -n 's/^[[:space:]]*[0-9]* - \(.*\) (Skipped)$/\1/p' "$out")
cases=$(grep -E '^SKIP [A-Za-z0-9_]+ \([^)]*:[0-9]+\): ' "$B/Testing/Temporary/LastTest.log" 2>/dev/null)
if [ -n "$skipped" ] || [ -n "$cases" ]; then
  echo "ctest ($B): CI=$CI and tests were skipped; install what they need (scripts/deps.sh):" >&2
  [ -n "$skipped" ] && echo "$skipped" | sed 's/^/  skipped test: /' >&2
  [ -n "$cases" ] && echo "$cases" | sed 's/^/  skipped case: /' >&2
  exit 1
fi
exit "$rc"
