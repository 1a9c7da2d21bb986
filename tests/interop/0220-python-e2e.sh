#!/usr/bin/env bash
# Interop end to end: kafka-python + python avro produce events, `streamrec
# serve` consumes them from the embedded broker, python decodes the
# recommendations and the dead letter, and kcat reads the topics.
# With SR_TEST_BOOTSTRAP set (tests/interop/lib.sh): the same on that real
# Kafka, in topics of this run's own.
set -euo pipefail
BIN=${SR_BIN:?}
SRC=${SR_SOURCE_DIR:?}
T=${SR_TEST_TMP:-/tmp}/py-e2e-$$
PY=/usr/bin/python3
mkdir -p "$T"
N=200
"$PY" -c 'import avro, kafka' 2>/dev/null || { echo "SKIP: python3-avro / python3-kafka missing (scripts/deps.sh installs them)"; exit 77; }
command -v kcat >/dev/null || { echo "SKIP: kcat missing (scripts/deps.sh installs it)"; exit 77; }

SR_BIN=$BIN
. "$SRC/tests/interop/lib.sh"
trap 'sr_cluster_stop 2>/dev/null; rm -rf "$T"' EXIT
sr_cluster_start "$T" 3 || exit 1
BS=$SR_BS
# py_e2e.py reads the topic names from these
export SR_T_EVENTS SR_T_RECS SR_T_DLQ

"$BIN" gen --users 40 --items 60 --events 600 --out "$T/ev.csv" --seed 3
"$BIN" train --events "$T/ev.csv" --out "$T/m.snap" --dim 16 --epochs 2 --no-progress > /dev/null
"$PY" "$SRC/tests/interop/py_e2e.py" produce "$BS" "$T/ev.csv" $N
# train straight from the topic python wrote (garbage message skipped and counted)
"$BIN" train --brokers "$BS" --topic "$SR_T_EVENTS" --out "$T/k.snap" --dim 8 --epochs 1 --no-progress > "$T/ktrain.out" 2> "$T/ktrain.err" \
  || { cat "$T/ktrain.err"; echo "FAIL: train --brokers"; exit 1; }
grep -qF "read $((N + 1)) messages from $SR_T_EVENTS (1 undecodable, skipped)" "$T/ktrain.err" || { cat "$T/ktrain.err"; echo "FAIL: train --brokers counts"; exit 1; }
"$BIN" serve --brokers "$BS" "${SR_SERVE_ARGS[@]}" --snapshot "$T/m.snap" --batch-max 1 --idle-exit-ms 2000 > "$T/serve.out" 2> "$T/serve.log" \
  || { echo "FAIL: serve"; tail -20 "$T/serve.log"; exit 1; }
cat "$T/serve.out"
grep -q "consumed=$((N + 1)) " "$T/serve.out" || { echo "FAIL: consumed count"; exit 1; }
grep -q "dead_letter=1 " "$T/serve.out" || { echo "FAIL: dead letter count"; exit 1; }
"$PY" "$SRC/tests/interop/py_e2e.py" check-recs "$BS" $N
"$PY" "$SRC/tests/interop/py_e2e.py" check-dlq "$BS"
# kcat reads the recommendations topic: one message per event, keyed by user
KC=$(kcat -b "$BS" -C -t "$SR_T_RECS" -o beginning -e -q -f '%k\n' | grep -c .)
[ "$KC" -eq $N ] || { echo "FAIL: kcat read $KC recommendations, expected $N"; exit 1; }
kcat -b "$BS" -L -t "$SR_T_RECS" | grep -q "3 partitions" || { echo "FAIL: kcat -L"; exit 1; }
echo "kcat read $KC recommendations"
echo "1 passed, 0 failed"
