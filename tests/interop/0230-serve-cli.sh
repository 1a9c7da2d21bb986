#!/usr/bin/env bash
# The serve command as a user meets it: refuses a corrupt snapshot and bad
# configuration with clear errors; runs with its embedded broker; answers
# /metrics, /healthz, /readyz; shuts down cleanly on SIGTERM with a summary;
# against unreachable brokers /readyz says why and SIGTERM (once or twice)
# ends it in bounded time.
# With SR_TEST_BOOTSTRAP set (tests/interop/lib.sh) serve runs on that real
# Kafka, in topics of this run's own, instead of its embedded broker.
set -euo pipefail
BIN=${SR_BIN:?}
SR_BIN=$BIN
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ -x /usr/bin/python3 ] || { echo "SKIP: /usr/bin/python3 not installed (needed for the HTTP checks)"; exit 77; }
T=${SR_TEST_TMP:-/tmp}/serve-cli-$$
mkdir -p "$T"
SPID=""
trap '[ -n "$SPID" ] && kill $SPID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
pass=0
http_get() { /usr/bin/python3 -c 'import sys,urllib.request
try:
  r=urllib.request.urlopen(sys.argv[1],timeout=5); print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
  print(e.code); print(e.read().decode())' "$1"; }

"$BIN" gen --users 30 --items 50 --events 400 --out "$T/ev.csv" --seed 5
"$BIN" train --events "$T/ev.csv" --out "$T/m.snap" --dim 8 --epochs 1 --no-progress > /dev/null

# 0. docs/CONFIGURATION.md is what the option table generates (make config-doc)
"$BIN" config --markdown | diff -u "${SR_SOURCE_DIR:?}/docs/CONFIGURATION.md" - > "$T/conf.diff" \
  || { cat "$T/conf.diff"; fail "docs/CONFIGURATION.md is stale: run make config-doc"; }
pass=$((pass + 1))

# 1. corrupt snapshot: refused, names the file and the reason, exit 1
cp "$T/m.snap" "$T/bad.snap"
printf '\x55' | dd of="$T/bad.snap" bs=1 seek=200 conv=notrunc status=none
set +e
"$BIN" serve --snapshot "$T/bad.snap" > /dev/null 2> "$T/bad.err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "corrupt snapshot: exit $rc"
grep -q "bad.snap" "$T/bad.err" && grep -qi "checksum" "$T/bad.err" || { cat "$T/bad.err"; fail "corrupt snapshot message"; }
pass=$((pass + 1))

# 2. bad configuration: unknown key / out of range, exit 2 with the key named
set +e
"$BIN" serve --snapshot "$T/m.snap" -X no.such.key=1 2> "$T/conf.err"; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "no.such.key" "$T/conf.err" || fail "unknown key: exit $rc"
set +e
"$BIN" serve --snapshot "$T/m.snap" --k 0 2> "$T/conf2.err"; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "out of range" "$T/conf2.err" || fail "k=0: exit $rc"
# exactly_once on the embedded broker: refused, and why (the mock cluster
# ignores read_committed and drops transactional offset commits)
set +e
"$BIN" serve --snapshot "$T/m.snap" -X delivery.guarantee=exactly_once 2> "$T/eos.err"; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "^serve: delivery.guarantee=exactly_once needs a real Kafka: .*ignores isolation.level=read_committed and discards transactional offset commits" "$T/eos.err" \
  || { cat "$T/eos.err"; fail "exactly_once on the embedded broker: exit $rc, want 2 and the reason"; }
set +e
"$BIN" serve --snapshot "$T/m.snap" -X delivery.guarantee=exactly 2> "$T/eos2.err"; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "delivery.guarantee: 'exactly' is not at_least_once or exactly_once" "$T/eos2.err" \
  || { cat "$T/eos2.err"; fail "bad delivery.guarantee: exit $rc"; }
pass=$((pass + 1))

# 2b. a kafka.* property librdkafka refuses fails at startup, before the
# snapshot is read (this one does not exist), named with its file:line
printf '# worker settings\nk = 5\nkafka.consumer.session.timeout.ms = 6000\nkafka.no.such.prop = 1\n' > "$T/bad.conf"
set +e
"$BIN" serve --snapshot "$T/missing.snap" --config "$T/bad.conf" 2> "$T/kconf.err"; rc=$?
set -e
[ $rc -eq 2 ] || { cat "$T/kconf.err"; fail "bad kafka key in config file: exit $rc, want 2"; }
grep -q "^serve: $T/bad.conf:4: kafka.no.such.prop: .*No such configuration property" "$T/kconf.err" \
  || { cat "$T/kconf.err"; fail "bad kafka key: no file:line: kafka.X: reason"; }
grep -q "snapshot" "$T/kconf.err" && { cat "$T/kconf.err"; fail "bad kafka key: the snapshot was looked at first"; }
# the same from -X names -X; a bad value for one client names that client's key
set +e
"$BIN" serve --snapshot "$T/missing.snap" -X kafka.producer.linger.ms=soon 2> "$T/kconf2.err"; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "^serve: -X: kafka.producer.linger.ms: " "$T/kconf2.err" \
  || { cat "$T/kconf2.err"; fail "bad kafka value from -X: exit $rc"; }
pass=$((pass + 1))

# 3. embedded broker (a real one: the cluster given) + admin endpoints + clean SIGTERM
sr_serve_cluster 4 || fail "topics on $SR_TEST_BOOTSTRAP"
sr_is_real && sr_real_skip "serve's embedded broker and its bootstrap line (serve runs on $SR_BS)"
"$BIN" serve "${SR_SERVE_ARGS[@]}" --snapshot "$T/m.snap" --admin-port -1 > "$T/serve.out" 2> "$T/serve.log" &
SPID=$!
BS=$SR_BS
for _ in $(seq 100); do
  sr_is_real || BS=$(sed -n 's/^bootstrap=//p' "$T/serve.out")
  PORT=$(sed -n 's|.*admin HTTP on http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$T/serve.log")
  [ -n "$BS" ] && [ -n "$PORT" ] && break; sleep 0.1
done
[ -n "${BS:-}" ] && [ -n "${PORT:-}" ] || { cat "$T/serve.log"; fail "no bootstrap/admin port"; }
status() { http_get "$1" > "$T/http.out"; head -1 "$T/http.out"; }
[ "$(status "http://127.0.0.1:$PORT/healthz")" = 200 ] || fail "/healthz"
"$BIN" load --brokers "$BS" --csv "$T/ev.csv" "${SR_EVENTS_ARG[@]}" > "$T/load.out" 2>&1 || fail "load"
for _ in $(seq 100); do
  M=$(http_get "http://127.0.0.1:$PORT/metrics")
  echo "$M" | grep -q '^streamrec_ingest_messages_total 400$' && break; sleep 0.2
done
echo "$M" | grep -q '^streamrec_ingest_messages_total 400$' || { echo "$M"; fail "metrics did not reach 400 messages"; }
echo "$M" | grep -q '^streamrec_model_info{version=' || fail "model_info metric"
# every metric served is documented (docs/METRICS.md), and nothing documented is missing
for name in $(echo "$M" | sed -n 's/^# TYPE \([a-z_]*\) .*/\1/p'); do
  grep -q "\`$name" "${SR_SOURCE_DIR:?}/docs/METRICS.md" || fail "metric $name not in docs/METRICS.md"
done
for name in $(sed -n 's/^| `\(streamrec_[a-z_]*\).*/\1/p' "$SR_SOURCE_DIR/docs/METRICS.md"); do
  echo "$M" | grep -q "^# TYPE $name " || fail "docs/METRICS.md lists $name, /metrics does not serve it"
done
[ "$(status "http://127.0.0.1:$PORT/readyz")" = 200 ] || fail "/readyz"
[ "$(status "http://127.0.0.1:$PORT/nope")" = 404 ] || fail "404"
pass=$((pass + 1))
kill -TERM $SPID
set +e; wait $SPID; rc=$?; set -e
SPID=""
[ $rc -eq 0 ] || { tail "$T/serve.log"; fail "serve exit $rc after SIGTERM"; }
grep -q "consumed=400 " "$T/serve.out" || { cat "$T/serve.out"; fail "summary"; }
pass=$((pass + 1))

# 4. unreachable brokers: /readyz says why and for how long; SIGTERM ends
# serve within shutdown.timeout.ms and its leave; a second signal at once
DEAD=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
for sigs in 1 2; do
  "$BIN" serve --snapshot "$T/m.snap" --brokers "127.0.0.1:$DEAD" --admin-port -1 \
    -X shutdown.timeout.ms=1000 > "$T/dead.out" 2> "$T/dead.log" &
  SPID=$!
  PORT=""
  for _ in $(seq 100); do
    PORT=$(sed -n 's|.*admin HTTP on http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$T/dead.log")
    [ -n "$PORT" ] && break; sleep 0.1
  done
  [ -n "$PORT" ] || { cat "$T/dead.log"; fail "no admin port"; }
  R=""
  for _ in $(seq 50); do
    http_get "http://127.0.0.1:$PORT/readyz" > "$T/ready.out"
    grep -q "unreachable for" "$T/ready.out" && break; sleep 0.2
  done
  [ "$(head -1 "$T/ready.out")" = 503 ] || { cat "$T/ready.out"; fail "/readyz not 503"; }
  grep -q "all brokers at 127.0.0.1:$DEAD unreachable for" "$T/ready.out" || { cat "$T/ready.out"; fail "/readyz reason"; }
  t0=$(date +%s%N)
  kill -TERM $SPID
  [ $sigs -eq 2 ] && { sleep 0.2; kill -TERM $SPID 2>/dev/null || true; }
  for _ in $(seq 300); do kill -0 $SPID 2>/dev/null || break; sleep 0.1; done
  kill -0 $SPID 2>/dev/null && fail "serve still running 30 s after $sigs signal(s)"
  set +e; wait $SPID; set -e
  SPID=""
  echo "  unreachable brokers, $sigs signal(s): exited after $(( ($(date +%s%N) - t0) / 1000000 )) ms; /readyz: $(sed -n 2p "$T/ready.out")"
  pass=$((pass + 1))
done
echo "$pass passed, 0 failed"
