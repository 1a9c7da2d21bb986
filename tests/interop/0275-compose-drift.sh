#!/usr/bin/env bash
# 0275: docker-compose.yml runs the Kafka the test harness runs: the image
# tag equals deploy/kafka/pom.xml's kafka.version, and every setting of
# deploy/kafka/broker.properties is in the kafka service's environment
# (a.b.c=v as KAFKA_A_B_C: v) with the same value.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
COMPOSE=$ROOT/docker-compose.yml
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

v=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/deploy/kafka/pom.xml")
[ -n "$v" ] || fail "no kafka.version in deploy/kafka/pom.xml"
tags=$(sed -n 's/^ *image: apache\/kafka:\(.*\)$/\1/p' "$COMPOSE" | sort -u)
[ -n "$tags" ] || fail "docker-compose.yml runs no apache/kafka image"
for t in $tags; do
  [ "$t" = "$v" ] || fail "docker-compose.yml runs apache/kafka:$t, the harness Kafka $v (deploy/kafka/pom.xml)"
done

n=0
while IFS='=' read -r k val; do
  case "$k" in '' | \#*) continue ;; esac
  env=KAFKA_$(echo "$k" | tr 'a-z.' 'A-Z_')
  got=$(sed -n "s/^ *$env: *\"\{0,1\}\([^\"]*\)\"\{0,1\} *$/\1/p" "$COMPOSE" | head -n 1)
  [ "$got" = "$val" ] || fail "broker.properties has $k=$val, docker-compose.yml has $env: '${got}'"
  n=$((n + 1))
done <"$ROOT/deploy/kafka/broker.properties"
[ "$n" -gt 0 ] || fail "no settings read from deploy/kafka/broker.properties"

[ $fails -eq 0 ] || exit 1
echo "ok: docker-compose.yml runs apache/kafka:$v with the harness's $n broker settings"
