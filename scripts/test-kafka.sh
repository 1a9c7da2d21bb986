#!/usr/bin/env bash
# make test-kafka: starts a 3-node Apache Kafka on loopback (scripts/kafka.sh,
# in BUILD_DIR/kafka), runs the ctest label "kafka" against it (the
# integration tests and interop scripts, one at a time), then the failure
# tests of tests/kafka/ one at a time (label "kafka-faults") and prints their
# figures, and stops the cluster, also when a test fails. Each ctest prints its summary line; with
# CI set a skipped test fails the run (scripts/ctest.sh).
#   scripts/test-kafka.sh BUILD_DIR [JOBS]
set -uo pipefail
B=${1:?usage: scripts/test-kafka.sh BUILD_DIR [JOBS]}
JOBS=${2:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "$B" && pwd)
D=$B/kafka
export SR_BIN=$B/streamrec
trap 'bash "$ROOT/scripts/kafka.sh" stop --dir "$D"' EXIT
bash "$ROOT/scripts/kafka.sh" start --brokers 3 --dir "$D" || exit 1
rc=0
# One test at a time: with two at once on a 2-core machine beside three
# broker JVMs, a broker stalled ~10 s once in CI (4 tests failed together).
bash "$ROOT/scripts/ctest.sh" "$B" --output-on-failure -j 1 -L kafka -LE kafka-faults || rc=1
bash "$ROOT/scripts/ctest.sh" "$B" --output-on-failure -L kafka-faults || rc=1
# Each failure test prints one "figures:" line (events, recommendations,
# missing, duplicates, kills); ctest keeps a passing test's output only in
# its log, so they are shown here.
grep -a -h ' figures: ' "$B/Testing/Temporary/LastTest.log" 2>/dev/null | sed 's/^/test-kafka: /'
exit $rc
