#!/usr/bin/env bash
# 0270: the generated references match what is committed. docs/CONFIGURATION.md
# is `streamrec config --markdown` (the option tables and the Kafka client
# defaults) and docs/METRICS.md is `streamrec config --metrics-markdown` (the
# one statistics list). An option, a default or a metric changed in the code
# without `make config-doc metrics-doc` fails here, with the diff.
#
# env: SR_BIN (the streamrec binary), SR_SOURCE_DIR, SR_TEST_TMP.
set -euo pipefail

SR_BIN=${SR_BIN:?set SR_BIN to the streamrec binary}
SRC=${SR_SOURCE_DIR:?set SR_SOURCE_DIR to the source tree}
TMP="${SR_TEST_TMP:-/tmp}/0270.$$"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
FAILS=0

check() { # check DOC COMMAND...
  local doc=$1
  shift
  if ! "$@" >"$TMP/out" 2>"$TMP/err"; then
    echo "FAIL: '$*' exited non-zero: $(cat "$TMP/err")"
    FAILS=$((FAILS + 1))
    return
  fi
  if ! diff -u "$SRC/$doc" "$TMP/out" >"$TMP/diff"; then
    echo "FAIL: $doc is not what '${*#"$SR_BIN" }' prints (regenerate: make config-doc metrics-doc):"
    head -40 "$TMP/diff"
    FAILS=$((FAILS + 1))
    return
  fi
  echo "ok: $doc matches '$(basename "$1") ${*:2}' ($(wc -l <"$TMP/out") lines)"
}

check docs/CONFIGURATION.md "$SR_BIN" config --markdown
check docs/METRICS.md "$SR_BIN" config --metrics-markdown

# The check can fail: a changed copy is caught.
sed 's/|/| /' "$SRC/docs/METRICS.md" >"$TMP/metrics-edited.md"
if diff -q "$TMP/metrics-edited.md" <("$SR_BIN" config --metrics-markdown) >/dev/null; then
  echo "FAIL: an edited METRICS.md compared equal"
  FAILS=$((FAILS + 1))
fi

# Usage: --help prints it (exit 0), an unknown flag is a usage error (exit 2).
"$SR_BIN" config --help | grep -q -- '--metrics-markdown' || { echo "FAIL: config --help"; FAILS=$((FAILS + 1)); }
rc=0
"$SR_BIN" config --no-such-flag 2>/dev/null >/dev/null || rc=$?
[ "$rc" -eq 2 ] || { echo "FAIL: config --no-such-flag exited $rc, want 2"; FAILS=$((FAILS + 1)); }

[ "$FAILS" -eq 0 ] || { echo "0270: $FAILS failure(s)"; exit 1; }
echo "0270: generated docs match"
