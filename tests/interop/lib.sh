# shellcheck shell=bash
# Sourced by the tests/interop/02xx scripts: which Kafka they run against.
#
#   SR_TEST_BOOTSTRAP unset: the embedded broker (`streamrec broker`, or the
#     one `serve` starts without --brokers), exactly as the scripts always did.
#   SR_TEST_BOOTSTRAP=host:port[,...]: a real Apache Kafka (scripts/kafka.sh
#     start prints one). Each topic set is this run's own: `streamrec topics`
#     creates PREFIX+events, PREFIX+recommendations, PREFIX+events.dlq with a
#     prefix unique to the script, its pid and the time, and serve gets a
#     consumer group of the same prefix, so runs never see each other's data
#     or offsets. The topics stay (the cluster is a scratch one: scripts/kafka.sh
#     start wipes its directory).
#
# After sr_cluster_start DIR PARTITIONS, sr_serve_cluster PARTITIONS or
# sr_topics_new PARTITIONS:
#   SR_BS                       bootstrap servers
#   SR_T_EVENTS SR_T_RECS SR_T_DLQ   the topic names to pass and read
#   SR_SERVE_ARGS (array)       serve's topic and group flags for this topic
#                               set (empty with the embedded broker: the
#                               defaults); after sr_serve_cluster on a real
#                               cluster it starts with --brokers "$SR_BS"
#   SR_EVENTS_ARG SR_RECS_ARG (arrays)  `--topic NAME` for load/train and
#                               recs (empty with the embedded broker: the
#                               tools' default topics)
#   SR_REAL                     1 on a real cluster, else 0
# Parts of a script that only make sense on the embedded broker check
# sr_is_real and print `not on a real cluster: WHY` (sr_real_skip WHY).
#
# Run as a script (ctest picks up every tests/interop/*.sh), it tests itself:
# the cluster it gives has the three topics with the partitions asked for,
# two topic sets on a real cluster do not share a name, and stop ends the
# embedded broker with exit status 0.
#
# env: SR_BIN (the streamrec binary), SR_TEST_BOOTSTRAP (optional).

SR_REAL=0
[ -n "${SR_TEST_BOOTSTRAP:-}" ] && SR_REAL=1
SR_BS=""
SR_BROKER_PID=""
SR_T_EVENTS=events
SR_T_RECS=recommendations
SR_T_DLQ=events.dlq
SR_SERVE_ARGS=()
SR_EVENTS_ARG=()
SR_RECS_ARG=()
SR_TOPIC_SETS=0
SR_SERVE_OWN=0 # 1: the script's serve starts its own embedded broker

sr_is_real() { [ "$SR_REAL" -eq 1 ]; }
sr_real_skip() { echo "not on a real cluster: $*"; }

# sr_topics_new PARTITIONS: a fresh topic set (and consumer group) on the real
# cluster, named after the calling script, pid, time and a counter. With the
# embedded broker: the default names (each embedded broker is a fresh cluster).
sr_topics_new() {
  local parts=$1 script prefix out
  if ! sr_is_real; then
    SR_T_EVENTS=events SR_T_RECS=recommendations SR_T_DLQ=events.dlq
    SR_SERVE_ARGS=() SR_EVENTS_ARG=() SR_RECS_ARG=()
    return 0
  fi
  script=$(basename "$0" .sh)
  SR_TOPIC_SETS=$((SR_TOPIC_SETS + 1))
  prefix="sr-${script%%-*}-$$-$(date +%s)-$SR_TOPIC_SETS."
  out=$("$SR_BIN" topics --brokers "$SR_BS" --partitions "$parts" --prefix "$prefix" 2>&1) || {
    echo "FAIL: streamrec topics --brokers $SR_BS --partitions $parts --prefix $prefix:" >&2
    echo "$out" | sed 's/^/    /' >&2
    return 1
  }
  SR_T_EVENTS="${prefix}events" SR_T_RECS="${prefix}recommendations" SR_T_DLQ="${prefix}events.dlq"
  local t
  for t in "$SR_T_EVENTS" "$SR_T_RECS" "$SR_T_DLQ"; do
    grep -qF -- "$t" <<<"$out" || {
      echo "FAIL: streamrec topics did not report $t:" >&2
      echo "$out" | sed 's/^/    /' >&2
      return 1
    }
  done
  SR_SERVE_ARGS=()
  [ "$SR_SERVE_OWN" -eq 1 ] && SR_SERVE_ARGS=(--brokers "$SR_BS")
  SR_SERVE_ARGS+=(--events-topic "$SR_T_EVENTS" --recs-topic "$SR_T_RECS" --dlq-topic "$SR_T_DLQ"
    --group "${prefix}group")
  SR_EVENTS_ARG=(--topic "$SR_T_EVENTS")
  SR_RECS_ARG=(--topic "$SR_T_RECS")
  echo "real cluster $SR_BS: topics ${prefix}{events,recommendations,events.dlq}, $parts partitions"
}

# sr_serve_cluster PARTITIONS: for scripts whose serve starts its own
# embedded broker (no --brokers; its default partitions): nothing to do
# then. Real: SR_TEST_BOOTSTRAP and a topic set of PARTITIONS, and
# SR_SERVE_ARGS starts with --brokers.
sr_serve_cluster() {
  SR_SERVE_OWN=1
  sr_is_real || return 0
  SR_BS=$SR_TEST_BOOTSTRAP
  sr_topics_new "$1"
}

# sr_cluster_start DIR PARTITIONS: the cluster for this script. Embedded:
# starts `streamrec broker --partitions PARTITIONS` (stdout DIR/broker.out,
# stderr DIR/broker.err) and waits for its bootstrap line (a malformed or
# missing line fails the script). Real: SR_TEST_BOOTSTRAP and a topic set.
sr_cluster_start() {
  local dir=$1 parts=$2 first
  if sr_is_real; then
    SR_BS=$SR_TEST_BOOTSTRAP
    sr_topics_new "$parts"
    return
  fi
  "$SR_BIN" broker --partitions "$parts" >"$dir/broker.out" 2>"$dir/broker.err" &
  SR_BROKER_PID=$!
  for _ in $(seq 1 100); do
    grep -q '^bootstrap=' "$dir/broker.out" 2>/dev/null && break
    sleep 0.1
  done
  first=$(head -n 1 "$dir/broker.out" || true)
  if [[ ! "$first" =~ ^bootstrap=[^,:]+:[0-9]+(,[^,:]+:[0-9]+)*$ ]]; then
    echo "FAIL: broker did not print a bootstrap line: '$first'" >&2
    cat "$dir/broker.err" >&2
    return 1
  fi
  SR_BS=${first#bootstrap=}
  sr_topics_new "$parts"
}

# sr_cluster_stop: SIGTERM to the embedded broker and its exit status (0 when
# there is none, as on a real cluster). Safe to call twice (the scripts' EXIT
# traps call it).
sr_cluster_stop() {
  local rc=0
  if [ -n "$SR_BROKER_PID" ]; then
    if kill -0 "$SR_BROKER_PID" 2>/dev/null; then
      kill -TERM "$SR_BROKER_PID" 2>/dev/null || true
      wait "$SR_BROKER_PID" || rc=$?
    fi
    SR_BROKER_PID=""
  fi
  return $rc
}

# ---- run directly: the self-test
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  SR_BIN=${SR_BIN:?set SR_BIN to the streamrec binary}
  command -v kcat >/dev/null || { echo "SKIP: kcat not installed (scripts/deps.sh installs it)"; exit 77; }
  LIB_T="${SR_TEST_TMP:-/tmp}/lib.$$"
  mkdir -p "$LIB_T"
  trap 'sr_cluster_stop >/dev/null 2>&1 || true; rm -rf "$LIB_T"' EXIT
  lib_fails=0
  lib_topics() { # the three topics with $1 partitions each
    local t
    kcat -L -b "$SR_BS" -m 10 >"$LIB_T/meta.txt"
    for t in "$SR_T_EVENTS" "$SR_T_RECS" "$SR_T_DLQ"; do
      if grep -qF "topic \"$t\" with $1 partitions" "$LIB_T/meta.txt"; then
        echo "ok   $t has $1 partitions"
      else
        echo "FAIL: no topic $t with $1 partitions at $SR_BS"
        lib_fails=$((lib_fails + 1))
      fi
    done
  }
  sr_cluster_start "$LIB_T" 2
  lib_topics 2
  if sr_is_real; then
    first="$SR_T_EVENTS $SR_T_RECS $SR_T_DLQ"
    sr_topics_new 3
    lib_topics 3
    for t in $first; do
      case " $SR_T_EVENTS $SR_T_RECS $SR_T_DLQ " in
      *" $t "*) echo "FAIL: two topic sets share $t"; lib_fails=$((lib_fails + 1)) ;;
      esac
    done
    [ "${#SR_SERVE_ARGS[@]}" -eq 8 ] || { echo "FAIL: serve args '${SR_SERVE_ARGS[*]}'"; lib_fails=$((lib_fails + 1)); }
  else
    pid=$SR_BROKER_PID
    if sr_cluster_stop; then echo "ok   the broker exits 0 on SIGTERM"; else echo "FAIL: broker exit $?"; lib_fails=$((lib_fails + 1)); fi
    if kill -0 "$pid" 2>/dev/null; then echo "FAIL: broker $pid still running"; lib_fails=$((lib_fails + 1)); fi
    [ "${#SR_SERVE_ARGS[@]}" -eq 0 ] || { echo "FAIL: serve args with the embedded broker"; lib_fails=$((lib_fails + 1)); }
  fi
  [ "$lib_fails" -eq 0 ] || { echo "lib.sh: $lib_fails check(s) failed"; exit 1; }
  echo "lib.sh: all checks passed"
fi
