#!/usr/bin/env bash
# 0240: the Kafka tools fail fast and say where when no broker answers.
# `load` and `recs` against a closed loopback port must exit non-zero (3,
# "cannot reach Kafka") within their --connect-timeout-ms, naming the
# bootstrap address on stderr, instead of queueing for message.timeout.ms
# (5 min). The same tools against the embedded broker still load and read,
# a missing topic fails the same check, and when the broker dies mid-load,
# load gives up on the rest within the same bound, counting it as failed.
# The time bound (10 s for a 2 s connect timeout) is a correctness bound
# against a minutes-long hang, not a benchmark.
#
# env: SR_BIN (the streamrec binary), SR_TEST_TMP (scratch directory).
set -euo pipefail

SR_BIN=${SR_BIN:?set SR_BIN to the streamrec binary}
TMP="${SR_TEST_TMP:-/tmp}/0240.$$"
mkdir -p "$TMP"
BROKER_PID=""
FAILS=0
BOUND_MS=10000

cleanup() {
  if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok   $*"; }
check_grep() { # name pattern file
  if grep -qE -- "$2" "$3"; then ok "$1"; else fail "$1: no /$2/ in $3:"; sed 's/^/    /' "$3" >&2; fi
}

command -v python3 >/dev/null || { echo "SKIP: python3 not installed (needed to find a closed port)"; exit 77; }

# A loopback port that nothing listens on: bind to port 0, read it, close.
PORT=$(python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
DEAD="127.0.0.1:$PORT"

"$SR_BIN" gen --users 20 --items 40 --events 200 --seed 3 --out "$TMP/ev.csv" 2>"$TMP/gen.err"

# run_dead NAME ARGS...: runs the tool under `timeout 30` against $DEAD and
# checks exit code, stderr and duration.
run_dead() {
  local name=$1 rc t0 t1 ms
  shift
  t0=$(date +%s%N)
  set +e
  timeout 30 "$SR_BIN" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
  rc=$?
  set -e
  t1=$(date +%s%N)
  ms=$(((t1 - t0) / 1000000))
  echo "     $name against $DEAD: exit $rc after $ms ms"
  if [ "$rc" -eq 124 ]; then
    fail "$name: still running after 30 s (killed by timeout)"
  elif [ "$rc" -eq 0 ]; then
    fail "$name: exit 0 against a closed port"
  else
    ok "$name exits non-zero ($rc)"
  fi
  if [ "$rc" -eq 3 ]; then ok "$name exit code is 3 (cannot reach Kafka)"; else fail "$name: exit $rc, want 3"; fi
  check_grep "$name names the bootstrap address" "cannot reach Kafka at $DEAD within 2000 ms" "$TMP/$name.err"
  if [ "$ms" -lt "$BOUND_MS" ]; then ok "$name gave up in $ms ms (< $BOUND_MS)"; else fail "$name took $ms ms (>= $BOUND_MS)"; fi
  echo "     $name message: $(grep 'cannot reach' "$TMP/$name.err" || true)"
}

run_dead load load --brokers "$DEAD" --csv "$TMP/ev.csv" --connect-timeout-ms 2000
if [ ! -s "$TMP/load.out" ]; then ok "load queued nothing (no summary)"; else fail "load printed:"; sed 's/^/    /' "$TMP/load.out" >&2; fi
run_dead recs recs --brokers "$DEAD" --exit-at-end --connect-timeout-ms 2000

# A bad value is a usage error.
set +e
"$SR_BIN" load --brokers "$DEAD" --csv "$TMP/ev.csv" --connect-timeout-ms -5 >/dev/null 2>&1
rc=$?
set -e
if [ "$rc" -eq 2 ]; then ok "load --connect-timeout-ms -5 is a usage error"; else fail "load --connect-timeout-ms -5: exit $rc, want 2"; fi

# ---- a reachable broker still works
"$SR_BIN" broker --partitions 2 >"$TMP/broker.out" 2>"$TMP/broker.err" &
BROKER_PID=$!
for _ in $(seq 1 100); do
  grep -q '^bootstrap=' "$TMP/broker.out" 2>/dev/null && break
  sleep 0.1
done
FIRST=$(head -n 1 "$TMP/broker.out" || true)
if [[ ! "$FIRST" =~ ^bootstrap=[^,:]+:[0-9]+(,[^,:]+:[0-9]+)*$ ]]; then
  echo "FAIL: broker did not print a bootstrap line: '$FIRST'" >&2
  cat "$TMP/broker.err" >&2
  exit 1
fi
BS=${FIRST#bootstrap=}

t0=$(date +%s%N)
set +e
timeout 60 "$SR_BIN" load --brokers "$BS" --csv "$TMP/ev.csv" --connect-timeout-ms 2000 \
  >"$TMP/ok-load.out" 2>"$TMP/ok-load.err"
rc=$?
set -e
echo "     load against $BS: exit $rc after $((($(date +%s%N) - t0) / 1000000)) ms"
if [ "$rc" -eq 0 ]; then ok "load against the broker exits 0"; else fail "load against the broker: exit $rc"; sed 's/^/    /' "$TMP/ok-load.err" >&2; fi
check_grep "load summary" '^sent=200 failed=0 bad_lines=0 ' "$TMP/ok-load.out"

# A missing topic is caught by the same check, and said.
set +e
timeout 30 "$SR_BIN" load --brokers "$BS" --csv "$TMP/ev.csv" --topic no.such.topic \
  --connect-timeout-ms 2000 >"$TMP/nt.out" 2>"$TMP/nt.err"
rc=$?
set -e
if [ "$rc" -eq 3 ]; then ok "load to a missing topic exits 3"; else fail "load to a missing topic: exit $rc, want 3"; fi
check_grep "missing topic named" 'no\.such\.topic' "$TMP/nt.err"

# `load` wrote events, not recommendations: recs reads the events topic's
# partitions to their end; each message is an UserEvent, so it is reported as
# an undecodable line, and there must be exactly one line per event.
t0=$(date +%s%N)
set +e
timeout 60 "$SR_BIN" recs --brokers "$BS" --topic events --from-beginning --exit-at-end --json \
  --connect-timeout-ms 2000 >"$TMP/ok-recs.out" 2>"$TMP/ok-recs.err"
rc=$?
set -e
echo "     recs against $BS: exit $rc after $((($(date +%s%N) - t0) / 1000000)) ms"
if [ "$rc" -eq 0 ]; then ok "recs against the broker exits 0"; else fail "recs against the broker: exit $rc"; sed 's/^/    /' "$TMP/ok-recs.err" >&2; fi
n=$(wc -l <"$TMP/ok-recs.out")
if [ "$n" -eq 200 ]; then ok "recs printed one JSON line per message (200)"; else fail "recs printed $n lines, want 200"; fi
check_grep "recs lines are JSON objects with _kafka" '^\{.*"_kafka":\{"partition":[01],' "$TMP/ok-recs.out"
check_grep "recs summary" 'recs: .* 2 partition\(s\)' "$TMP/ok-recs.err"

# ---- the broker goes away mid-load: load gives up on the rest after
# --connect-timeout-ms without a delivery report, counts it as failed, exits 1.
# 5000 events at 1000/s take 5 s; the broker dies after about 1 s of them.
"$SR_BIN" gen --users 50 --items 100 --events 5000 --seed 4 --out "$TMP/big.csv" 2>/dev/null
t0=$(date +%s%N)
set +e
timeout 30 "$SR_BIN" load --brokers "$BS" --csv "$TMP/big.csv" --rate 1000 --connect-timeout-ms 2000 \
  >"$TMP/mid.out" 2>"$TMP/mid.err" &
LOAD_PID=$!
sleep 1
kill -KILL "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null
BROKER_PID=""
wait "$LOAD_PID"
rc=$?
set -e
ms=$((($(date +%s%N) - t0) / 1000000))
echo "     load, broker killed after 1 s: exit $rc after $ms ms: $(cat "$TMP/mid.out")"
if [ "$rc" -eq 1 ]; then ok "load exits 1 when the broker goes away"; else fail "load after broker loss: exit $rc, want 1"; fi
if [ "$ms" -lt "$BOUND_MS" ]; then ok "load gave up in $ms ms (< $BOUND_MS)"; else fail "load after broker loss took $ms ms (>= $BOUND_MS)"; fi
check_grep "load says it gave up" "no delivery report from $BS for 2000 ms; giving up" "$TMP/mid.err"
check_grep "load reports the undelivered count" '[0-9]+ message\(s\) undelivered, counted as failed' "$TMP/mid.err"
check_grep "summary counts them as failed" '^sent=[0-9]+ failed=[1-9][0-9]* bad_lines=0 ' "$TMP/mid.out"

if [ "$FAILS" -ne 0 ]; then
  echo "0240-cli-unreachable: $FAILS check(s) failed" >&2
  exit 1
fi
echo "0240-cli-unreachable: all checks passed"
