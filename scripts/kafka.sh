#!/usr/bin/env bash
# A real Apache Kafka on loopback, for the real-Kafka test tier (make
# test-kafka) and for trying streamrec against a real cluster by hand.
#
#   scripts/kafka.sh start [--brokers N] [--dir DIR] [--partitions P]
#   scripts/kafka.sh stop|status [--dir DIR]
#   scripts/kafka.sh kill|pause|resume|restart NODE [--dir DIR]   (failure tests)
#   scripts/kafka.sh leader TOPIC PARTITION [--dir DIR]          (prints the leader's node id)
#
# start: fetches Kafka (deploy/kafka/pom.xml: kafka_2.13 and its runtime
# dependencies, through Maven, copied once to $SR_KAFKA_CACHE, default
# ~/.cache/streamrec/kafka-<version>), formats KRaft storage, starts N nodes
# (default 1; each is broker and controller, the N form a controller quorum)
# on free loopback ports, waits until every broker answers metadata
# requests, creates the project's topics (`streamrec topics`: events with P
# partitions, default 8, recommendations, events.dlq; replication min(N,3),
# min.insync.replicas 2 when N >= 3) and prints
#   bootstrap=127.0.0.1:PORT[,...]      (first line, as `streamrec broker`)
#   log=DIR/node<i>/server.log ...
# DIR (default $SR_KAFKA_DIR or build/kafka) holds the configuration, data,
# logs, pids and a file `bootstrap`; start wipes it first. stop ends every
# node (SIGTERM, then SIGKILL after 30 s).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
POM=$ROOT/deploy/kafka/pom.xml
DIR=${SR_KAFKA_DIR:-$ROOT/build/kafka}
SR_BIN=${SR_BIN:-$ROOT/build/streamrec}
N=1
PARTS=8
HEAP=${SR_KAFKA_HEAP:-512m}

die() {
  echo "kafka.sh: $*" >&2
  exit 1
}

cmd=${1:-}
[ -n "$cmd" ] || die "usage: kafka.sh start [--brokers N] [--dir DIR] [--partitions P] | stop | status | kill|pause|resume|restart NODE | leader TOPIC PARTITION"
shift
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --brokers) N=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --partitions) PARTS=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[[ "$N" =~ ^[1-9]$ ]] || die "--brokers: 1 to 9, not '$N'"
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM"; }

need_tools() {
  command -v java >/dev/null 2>&1 || die "java not found: Kafka $(version) needs Java 17 or later (Debian: apt-get install openjdk-17-jre-headless)"
  local jv
  jv=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
  [ -n "$jv" ] && [ "$jv" -ge 17 ] || die "java $(java -version 2>&1 | head -n 1): Kafka $(version) needs Java 17 or later"
  command -v mvn >/dev/null 2>&1 || die "mvn not found: Maven fetches Kafka $(version) (Debian: apt-get install maven)"
  command -v kcat >/dev/null 2>&1 || die "kcat not found (scripts/deps.sh installs it)"
  [ -x "$SR_BIN" ] || die "$SR_BIN not found: build first (make build), or set SR_BIN; it creates the topics"
}

# Kafka's jars, fetched once per pom content.
fetch() {
  local v cache stamp
  v=$(version)
  cache=${SR_KAFKA_CACHE:-$HOME/.cache/streamrec/kafka-$v}
  stamp=$(sha256sum "$POM" | cut -c1-16)
  if [ ! -f "$cache/libs/.ok-$stamp" ]; then
    echo "kafka.sh: fetching Apache Kafka $v with Maven into $cache" >&2
    rm -rf "$cache/libs"
    mkdir -p "$cache"
    mvn -q -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$cache/libs" >"$cache/mvn.log" 2>&1 ||
      { tail -n 30 "$cache/mvn.log" >&2; die "Maven could not fetch Kafka $v (log: $cache/mvn.log)"; }
    touch "$cache/libs/.ok-$stamp"
  fi
  LIBS=$cache/libs
}

free_ports() { # prints $1 free loopback ports
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

java_node() { # node: runs Kafka in the background, pid to node<i>/pid
  local i=$1 nd=$DIR/node$1
  setsid java -Xms128m -Xmx"$HEAP" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Dkafka.logs.dir="$nd" \
    -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.properties" \
    -cp "$(cat "$DIR/classpath")" kafka.Kafka "$nd/server.properties" \
    >"$nd/stdout.log" 2>&1 </dev/null &
  echo $! >"$nd/pid"
}

alive() { [ -f "$DIR/node$1/pid" ] && kill -0 "$(cat "$DIR/node$1/pid")" 2>/dev/null; }

nodes() { ls -d "$DIR"/node* 2>/dev/null | sed 's/.*node//' | sort -n; }

# Waits until the broker at $1 answers metadata with $2 brokers.
wait_meta() {
  local bs=$1 want=$2 t=0
  while [ $t -lt 120 ]; do
    local got
    got=$(kcat -b "$bs" -L -m 2 2>/dev/null | sed -n 's/^ *\([0-9]*\) brokers:.*/\1/p' | head -n 1)  || true
    [ "${got:-0}" -ge "$want" ] && return 0
    for i in $(nodes); do alive "$i" || { tail -n 20 "$DIR/node$i/server.log" "$DIR/node$i/stdout.log" >&2 2>/dev/null; die "node $i exited during start-up (log: $DIR/node$i/server.log)"; }; done
    sleep 0.5
    t=$((t + 1))
  done
  die "brokers at $bs not ready after 60 s (logs: $DIR/node*/server.log)"
}

stop_all() {
  local pids=""
  for i in $(nodes); do
    if alive "$i"; then
      kill -CONT "$(cat "$DIR/node$i/pid")" 2>/dev/null || true
      kill -TERM "$(cat "$DIR/node$i/pid")" 2>/dev/null || true
      pids="$pids $(cat "$DIR/node$i/pid")"
    fi
  done
  for _ in $(seq 60); do
    local left=""
    for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
    [ -z "$left" ] && return 0
    sleep 0.5
  done
  for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
}

case "$cmd" in
  start)
    need_tools
    fetch
    [ -f "$DIR/bootstrap" ] && stop_all
    rm -rf "${DIR:?}"/*
    echo "$LIBS/*" >"$DIR/classpath"
    read -r -a ports <<<"$(free_ports $((2 * N)))"
    voters="" bs=""
    for i in $(seq 1 "$N"); do
      voters="$voters${voters:+,}$i@127.0.0.1:${ports[$((2 * i - 1))]}"
      bs="$bs${bs:+,}127.0.0.1:${ports[$((2 * i - 2))]}"
    done
    rf=$((N < 3 ? N : 3))
    isr=$((N < 3 ? 1 : 2))
    cid=$(python3 -c 'import base64,uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')
    for i in $(seq 1 "$N"); do
      nd=$DIR/node$i
      mkdir -p "$nd/data"
      {
        echo "# written by scripts/kafka.sh for node $i of $N"
        echo "process.roles=broker,controller"
        echo "node.id=$i"
        echo "controller.quorum.voters=$voters"
        echo "listeners=PLAINTEXT://127.0.0.1:${ports[$((2 * i - 2))]},CONTROLLER://127.0.0.1:${ports[$((2 * i - 1))]}"
        echo "advertised.listeners=PLAINTEXT://127.0.0.1:${ports[$((2 * i - 2))]}"
        echo "controller.listener.names=CONTROLLER"
        echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        echo "inter.broker.listener.name=PLAINTEXT"
        echo "log.dirs=$nd/data"
        echo "default.replication.factor=$rf"
        echo "offsets.topic.replication.factor=$rf"
        echo "transaction.state.log.replication.factor=$rf"
        echo "transaction.state.log.min.isr=$isr"
        echo
        cat "$ROOT/deploy/kafka/broker.properties"
      } >"$nd/server.properties"
      java -Xmx256m -cp "$LIBS/*" -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.properties" \
        -Dkafka.logs.dir="$nd" kafka.tools.StorageTool format -t "$cid" -c "$nd/server.properties" \
        >"$nd/format.log" 2>&1 || { cat "$nd/format.log" >&2; die "formatting node $i failed"; }
    done
    for i in $(seq 1 "$N"); do java_node "$i"; done
    echo "$bs" >"$DIR/bootstrap"
    wait_meta "$bs" "$N"
    "$SR_BIN" topics --brokers "$bs" --partitions "$PARTS" --replication "$rf" >"$DIR/topics.log" 2>&1 ||
      { cat "$DIR/topics.log" >&2; die "creating the topics failed"; }
    echo "bootstrap=$bs"
    for i in $(seq 1 "$N"); do echo "log=$DIR/node$i/server.log"; done
    echo "kafka.sh: Apache Kafka $(version), $N node(s), data in $DIR; stop: scripts/kafka.sh stop --dir $DIR" >&2
    ;;
  stop)
    stop_all
    rm -f "$DIR/bootstrap"
    ;;
  status)
    [ -f "$DIR/bootstrap" ] || { echo "kafka.sh: not running (no $DIR/bootstrap)"; exit 1; }
    echo "bootstrap=$(cat "$DIR/bootstrap")"
    rc=0
    for i in $(nodes); do
      if alive "$i"; then
        st=$(ps -o stat= -p "$(cat "$DIR/node$i/pid")" | cut -c1)
        [ "$st" = T ] && echo "node $i: paused (pid $(cat "$DIR/node$i/pid"))" || echo "node $i: running (pid $(cat "$DIR/node$i/pid"))"
      else
        echo "node $i: down"
        rc=1
      fi
    done
    exit $rc
    ;;
  kill | pause | resume | restart)
    i=${ARGS[0]:-}
    [ -n "$i" ] && [ -d "$DIR/node$i" ] || die "$cmd: no node '$i' in $DIR"
    case "$cmd" in
      kill) alive "$i" && kill -KILL "$(cat "$DIR/node$i/pid")"; while alive "$i"; do sleep 0.1; done ;;
      pause) kill -STOP "$(cat "$DIR/node$i/pid")" ;;
      resume) kill -CONT "$(cat "$DIR/node$i/pid")" ;;
      restart) alive "$i" && die "restart: node $i is running"; java_node "$i" ;;
    esac
    ;;
  leader)
    [ ${#ARGS[@]} -eq 2 ] || die "leader TOPIC PARTITION"
    kcat -b "$(cat "$DIR/bootstrap")" -L -t "${ARGS[0]}" -m 5 2>/dev/null |
      sed -n "s/^ *partition ${ARGS[1]}, leader \([0-9]*\),.*/\1/p" | head -n 1
    ;;
  *) die "unknown command '$cmd' (start, stop, status, kill, pause, resume, restart, leader)" ;;
esac
