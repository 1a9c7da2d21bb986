#!/usr/bin/env bash
# 0210: the CLI tools against the embedded broker, checked with kcat (an
# independent Kafka client): `streamrec broker` prints its bootstrap line and
# serves metadata, `gen` writes a CSV, `load` produces it keyed by user id in
# the Confluent framing, bad lines are reported by line number, and `recs`
# reports undecodable messages as JSON error lines.
# With SR_TEST_BOOTSTRAP set (tests/interop/lib.sh) the same checks run on
# that real Kafka, in topics of this run's own; the broker command's own
# checks (its bootstrap line, its SIGTERM) are then left out, and said.
#
# env: SR_BIN (the streamrec binary), SR_TEST_TMP (scratch directory),
# SR_TEST_BOOTSTRAP (optional: a real cluster).
set -euo pipefail

SR_BIN=${SR_BIN:?set SR_BIN to the streamrec binary}
TMP="${SR_TEST_TMP:-/tmp}/0210.$$"
mkdir -p "$TMP"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
FAILS=0

cleanup() {
  sr_cluster_stop 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok   $*"; }
check_eq() { # name got want
  if [ "$2" == "$3" ]; then ok "$1"; else fail "$1: got '$2', want '$3'"; fi
}
check_grep() { # name pattern file
  if grep -qE -- "$2" "$3"; then ok "$1"; else fail "$1: no /$2/ in $3:"; sed 's/^/    /' "$3" >&2; fi
}

command -v kcat >/dev/null || { echo "SKIP: kcat not installed (scripts/deps.sh installs it)"; exit 77; }

# ---- usage contract
set +e
"$SR_BIN" broker --help >"$TMP/h.out" 2>&1; check_eq "broker --help exit" $? 0
"$SR_BIN" load --help >"$TMP/h.out" 2>&1; check_eq "load --help exit" $? 0
"$SR_BIN" gen --help >"$TMP/h.out" 2>&1; check_eq "gen --help exit" $? 0
"$SR_BIN" recs --help >"$TMP/h.out" 2>&1; check_eq "recs --help exit" $? 0
"$SR_BIN" load --no-such-flag >"$TMP/h.out" 2>&1; check_eq "load bad flag exit" $? 2
"$SR_BIN" load --csv x.csv >"$TMP/h.out" 2>&1; check_eq "load without --brokers exit" $? 2
"$SR_BIN" gen --users 0 --items 5 --events 5 --out "$TMP/x" >"$TMP/h.out" 2>&1
check_eq "gen --users 0 exit" $? 2
"$SR_BIN" broker --partitions 0 >"$TMP/h.out" 2>&1; check_eq "broker --partitions 0 exit" $? 2
set -e

# ---- broker: first stdout line is the bootstrap (sr_cluster_start checks
# its form); on a real cluster: this run's topics
sr_cluster_start "$TMP" 3 || exit 1
BS=$SR_BS
if sr_is_real; then
  sr_real_skip "streamrec broker's bootstrap line (the cluster is $BS)"
else
  ok "broker bootstrap=$BS"
fi

kcat -L -b "$BS" -m 10 >"$TMP/meta.txt"
for t in "$SR_T_EVENTS" "$SR_T_RECS" "$SR_T_DLQ"; do
  check_grep "kcat lists topic $t with 3 partitions" "topic \"$t\" with 3 partitions" "$TMP/meta.txt"
done

# ---- gen
"$SR_BIN" gen --users 40 --items 120 --events 600 --seed 7 --out "$TMP/ev.csv" 2>"$TMP/gen.err"
check_eq "gen header" "$(head -n 1 "$TMP/ev.csv")" "userId,movieId,rating,timestamp"
check_eq "gen rows" "$(($(wc -l <"$TMP/ev.csv") - 1))" 600
"$SR_BIN" gen --users 40 --items 120 --events 600 --seed 7 --out "$TMP/ev2.csv" 2>/dev/null
check_eq "gen is deterministic per seed" "$(cmp -s "$TMP/ev.csv" "$TMP/ev2.csv" && echo same)" same
SORTED=$(tail -n +2 "$TMP/ev.csv" | awk -F, 'NR > 1 && $4 <= prev { bad = 1 } { prev = $4 } END { print bad ? "no" : "yes" }')
check_eq "gen timestamps increase" "$SORTED" yes

# ---- load all of it
"$SR_BIN" load --brokers "$BS" --csv "$TMP/ev.csv" "${SR_EVENTS_ARG[@]}" >"$TMP/load.out" 2>"$TMP/load.err"
check_grep "load summary" '^sent=600 failed=0 bad_lines=0 elapsed=[0-9.]+s rate=[0-9]+ msgs/s$' "$TMP/load.out"

kcat -C -b "$BS" -t "$SR_T_EVENTS" -o beginning -e -q -f '%k %p\n' >"$TMP/keys.txt"
check_eq "kcat counts the events" "$(wc -l <"$TMP/keys.txt")" 600
check_eq "keys are the CSV user ids" \
  "$(cut -d' ' -f1 "$TMP/keys.txt" | sort | uniq -c | awk '{print $2, $1}' | sort)" \
  "$(tail -n +2 "$TMP/ev.csv" | cut -d, -f1 | sort | uniq -c | awk '{print $2, $1}' | sort)"
check_eq "each user id on one partition" \
  "$(sort -u "$TMP/keys.txt" | cut -d' ' -f1 | sort | uniq -d | wc -l)" 0
check_eq "Confluent framing: magic 0, schema id 1" \
  "$(kcat -C -b "$BS" -t "$SR_T_EVENTS" -p 0 -o beginning -c 1 -e -q -f '%s' | head -c 5 | od -An -tx1 | tr -s ' ')" \
  " 00 00 00 00 01"

# ---- bad lines: reported with their line numbers, skipped, counted
cat >"$TMP/bad.csv" <<'EOF'
userId,movieId,rating,timestamp
1,10,4.0,964982703
2,20,four,964982703
3,30,3.5,964982703,CLICK
4,40,2.0
5,50,1.0,964982703
EOF
set +e
"$SR_BIN" load --brokers "$BS" --csv "$TMP/bad.csv" --topic "$SR_T_DLQ" >"$TMP/bad.out" 2>"$TMP/bad.err"
check_eq "load with bad lines exits 0" $? 0
set -e
check_grep "summary counts 2 bad lines" '^sent=3 failed=0 bad_lines=2 ' "$TMP/bad.out"
check_grep "bad line 3 reported" 'bad\.csv:3: .*four' "$TMP/bad.err"
check_grep "bad line 5 reported" 'bad\.csv:5: ' "$TMP/bad.err"
check_eq "only the good rows were produced" \
  "$(kcat -C -b "$BS" -t "$SR_T_DLQ" -o beginning -e -q -f '%k\n' | sort | tr '\n' ' ')" "1 3 5 "

# ---- --limit
"$SR_BIN" load --brokers "$BS" --csv "$TMP/ev.csv" --topic "$SR_T_DLQ" --limit 10 \
  >"$TMP/lim.out" 2>"$TMP/lim.err"
check_grep "load --limit 10" '^sent=10 failed=0 ' "$TMP/lim.out"

# ---- recs: an undecodable message becomes an _error line, exit at end
echo "not-avro" | kcat -P -b "$BS" -t "$SR_T_RECS" -p 1 -k u1
"$SR_BIN" recs --brokers "$BS" "${SR_RECS_ARG[@]}" --from-beginning --exit-at-end --json >"$TMP/recs.out" 2>"$TMP/recs.err"
check_eq "recs prints one line" "$(wc -l <"$TMP/recs.out")" 1
check_grep "recs error line" '^\{"_error":"BAD_FRAMING[^"]*","_kafka":\{"partition":1,"offset":0,"timestamp":[0-9]+\}\}$' "$TMP/recs.out"
check_grep "recs summary" 'recs: 0 recommendations, 1 undecodable, 3 partition' "$TMP/recs.err"

# ---- load against a dead broker, past the connect check (0240 tests that
# check): delivery failures -> exit 1
set +e
"$SR_BIN" load --brokers 127.0.0.1:1 --csv "$TMP/bad.csv" --connect-timeout-ms 0 -X message.timeout.ms=500 \
  >"$TMP/dead.out" 2>"$TMP/dead.err"
check_eq "load exit 1 on delivery failure" $? 1
set -e
check_grep "dead broker summary" '^sent=0 failed=3 bad_lines=2 ' "$TMP/dead.out"

# ---- broker stops cleanly on SIGTERM
if sr_is_real; then
  sr_real_skip "streamrec broker's exit on SIGTERM"
else
  set +e
  sr_cluster_stop
  check_eq "broker exit status on SIGTERM" $? 0
  set -e
fi

if [ "$FAILS" -ne 0 ]; then
  echo "0210-cli-kcat: $FAILS check(s) failed" >&2
  exit 1
fi
echo "0210-cli-kcat: all checks passed"
