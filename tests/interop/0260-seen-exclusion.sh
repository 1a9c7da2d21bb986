#!/usr/bin/env bash
# 0260: exact seen-item exclusion through the live pipeline, as a user runs
# it: gen (users with histories far longer than the old 32-item ring),
# train, serve on the embedded broker, load, recs. No Recommendation may
# contain an item its user consumed (a RATE event, the CSV's type) at or
# before the event it answers, however long ago; then the same with
# state.seen.window.ms, where an item may come back only once the window
# has passed since its last consumption; and with a filter that consumes
# nothing of this input, where the checker must find repeats.
# With SR_TEST_BOOTSTRAP set (tests/interop/lib.sh) each run is on that real
# Kafka, in topics of its own, instead of serve's embedded broker.
#
# env: SR_BIN (the streamrec binary), SR_TEST_TMP (scratch directory),
# SR_TEST_BOOTSTRAP (optional: a real cluster).
set -euo pipefail

SR_BIN=${SR_BIN:?set SR_BIN to the streamrec binary}
command -v python3 >/dev/null || { echo "SKIP: python3 not installed (needed to check the recommendations)"; exit 77; }
T="${SR_TEST_TMP:-/tmp}/0260.$$"
mkdir -p "$T"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SPID=""
cleanup() {
  if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
    kill -TERM "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
  fi
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 40 users x ~150 events over 400 items: most histories hold 100+ distinct items
"$SR_BIN" gen --users 40 --items 400 --events 6000 --seed 7 --out "$T/ev.csv" 2>/dev/null
"$SR_BIN" train --events "$T/ev.csv" --out "$T/m.snap" --kind decay --epochs 2 --threads 1 \
  --no-progress > "$T/train.out" 2>&1 || { cat "$T/train.out"; fail "train"; }
N=$(($(wc -l < "$T/ev.csv") - 1))

# $1: name, rest: serve options. Serves, loads, reads every Recommendation.
# Each run on a fresh cluster: serve's embedded broker, or new topics.
run() {
  local name=$1
  shift
  sr_serve_cluster 4 || fail "$name: topics"
  "$SR_BIN" serve "${SR_SERVE_ARGS[@]}" --snapshot "$T/m.snap" --admin-port -1 "$@" > "$T/$name.serve.out" \
    2> "$T/$name.serve.log" &
  SPID=$!
  local BS=$SR_BS
  for _ in $(seq 100); do
    sr_is_real || BS=$(sed -n 's/^bootstrap=//p' "$T/$name.serve.out")
    [ -n "$BS" ] && break
    sleep 0.1
  done
  [ -n "$BS" ] || { cat "$T/$name.serve.log"; fail "$name: no bootstrap line"; }
  "$SR_BIN" load --brokers "$BS" --csv "$T/ev.csv" "${SR_EVENTS_ARG[@]}" > "$T/$name.load.out" 2>&1 ||
    { cat "$T/$name.load.out"; fail "$name: load"; }
  local got=0
  for _ in $(seq 60); do
    "$SR_BIN" recs --brokers "$BS" "${SR_RECS_ARG[@]}" --from-beginning --exit-at-end --json \
      > "$T/$name.recs.jsonl" 2> /dev/null || true
    got=$(wc -l < "$T/$name.recs.jsonl")
    [ "$got" -ge "$N" ] && break
    sleep 1
  done
  [ "$got" -eq "$N" ] || { tail "$T/$name.serve.log"; fail "$name: $got recommendations, want $N"; }
  kill -TERM "$SPID"
  wait "$SPID" || fail "$name: serve exit $?"
  SPID=""
}

# $1: name, $2: window ms (0 = never again); $3: "expect-repeats" when the
# filter is off (the checker must then find consumed items: proof it can fail)
check() {
  python3 - "$T/ev.csv" "$T/$1.recs.jsonl" "$2" "$1" "${3:-}" <<'EOF'
import csv, json, os, sys
csv_path, recs_path, window, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
expect_repeats = sys.argv[5] == "expect-repeats"
base = os.path.basename(csv_path)
rows = {}  # event id -> (user, item, ts)
with open(csv_path) as f:
    r = csv.reader(f)
    next(r)
    for line, row in enumerate(r, start=2):
        rows["%s:%d" % (base, line)] = (row[0], row[1], int(row[3]) * 1000)  # seconds -> ms
# per user: its events in load order (file order: timestamps increase)
hist = {}
order = {}
for eid, (u, it, ts) in rows.items():
    hist.setdefault(u, []).append((int(eid.rsplit(":", 1)[1]), it, ts))
for u in hist:
    hist[u].sort()
    order[u] = {line: i for i, (line, _, _) in enumerate(hist[u])}
bad = checked = back = 0
long_users = set()
with open(recs_path) as f:
    for ln in f:
        rec = json.loads(ln)
        u, eid = rec["user_id"], rec["source_event_id"]
        line = int(eid.rsplit(":", 1)[1])
        upto = hist[u][: order[u][line] + 1]
        clock = max(ts for _, _, ts in upto)
        last = {}
        for _, it, ts in upto:
            last[it] = max(last.get(it, ts), ts)
        if len(last) > 32:
            long_users.add(u)
        for item in rec["items"]:
            t = last.get(item["item_id"])
            if t is None:
                continue
            if window == 0 or clock - t < window:
                bad += 1
                if bad <= 5:
                    print("  %s: %s%s recommended after %s, consumed at %d (clock %d)"
                          % (name, "(expected) " if expect_repeats else "", item["item_id"], eid, t, clock), file=sys.stderr)
            else:
                back += 1  # allowed: consumed longer ago than the window
        checked += 1
longest = max(len(set(it for _, it, _ in h)) for h in hist.values())
print("  %s: %d recommendations checked, %d users with more than 32 distinct items "
      "(longest %d), %d consumed items recommended within the window, %d after it"
      % (name, checked, len(long_users), longest, bad, back))
if expect_repeats:
    sys.exit(0 if bad else 1)
# with a window, older items must come back (else the window did nothing)
sys.exit(1 if bad or len(long_users) < 20 or (window and not back) else 0)
EOF
}

run never
check never 0 || fail "consumed items came back (state.seen.window.ms 0)"
# gen spaces one user's events ~5 days apart here: a 30-day window keeps
# the last few items out and lets older ones back
run window --seen-window-ms 2592000000
check window 2592000000 || fail "items came back inside state.seen.window.ms"
# the CSV's events are RATE: with only VIEW consuming, nothing is filtered
run off --seen-types VIEW
check off 0 expect-repeats || fail "the checker found no repeat with the filter off"
echo "3 passed, 0 failed"
