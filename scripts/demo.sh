#!/usr/bin/env bash
# make demo: the whole product on the embedded broker, no setup.
#   1. start `streamrec broker` (librdkafka mock cluster on loopback)
#   2. events: MovieLens ratings.csv when present (../shared/data), else generated
#   3. train a snapshot, load the events into Kafka, serve them, tail recommendations
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SR_BIN:-build/streamrec}
DATA=${1:-../shared/data/movielens-small/ratings.csv}
WORK=build/demo
KIND=${SR_DEMO_KIND:-gru}
mkdir -p "$WORK"
rm -f "$WORK"/*.log

if [ -f "$DATA" ]; then
  CSV=$DATA
  echo "== events: $CSV"
else
  CSV=$WORK/synthetic.csv
  echo "== events: $DATA not found; generating synthetic data"
  "$BIN" gen --users 500 --items 2000 --events 50000 --out "$CSV" --seed 1
fi

BROKER_PID=""
SERVE_PID=""
cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null || true
  [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== starting the embedded broker"
"$BIN" broker --partitions 8 > "$WORK/broker.out" 2> "$WORK/broker.log" &
BROKER_PID=$!
for _ in $(seq 100); do
  BS=$(sed -n 's/^bootstrap=//p' "$WORK/broker.out" | head -1)
  [ -n "$BS" ] && break
  sleep 0.1
done
[ -n "${BS:-}" ] || { echo "broker did not start"; cat "$WORK/broker.log"; exit 1; }
echo "   bootstrap=$BS"

echo "== training a $KIND model"
if ! "$BIN" train --events "$CSV" --out "$WORK/model.snap" --kind "$KIND" --max-seconds 120 --no-progress 2> "$WORK/train.log"; then
  cat "$WORK/train.log"; exit 1
fi
# the kernel decision (src/blas: streamrec makes OpenBLAS run the best core for this CPU)
echo "   $(grep -m1 ' blas: ' "$WORK/train.log" | sed 's/.* blas: /OpenBLAS: /' || true)"

echo "== loading events into topic 'events'"
"$BIN" load --brokers "$BS" --csv "$CSV" 2> "$WORK/load.log"

echo "== serving (exits 3 s after the last event)"
"$BIN" serve --brokers "$BS" --snapshot "$WORK/model.snap" --idle-exit-ms 3000 2> "$WORK/serve.log"

echo "== the first recommendations, as JSON (streamrec recs --json)"
"$BIN" recs --brokers "$BS" --from-beginning --exit-at-end --json --limit 3 2>/dev/null
echo "== the newest recommendation of user 1 (last in its partition)"
"$BIN" recs --brokers "$BS" --from-beginning --exit-at-end --json 2>/dev/null \
  | grep '"user_id": *"1"' | tail -1 || true
echo "== done. Logs in $WORK/"
