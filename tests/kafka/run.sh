#!/usr/bin/env bash
# Runs one real-Kafka test (ctest label "kafka") against the cluster that
# scripts/kafka.sh started in $SR_KAFKA_DIR: its bootstrap becomes
# SR_TEST_BOOTSTRAP, the one variable that points the integration tests
# (tests/itest.h) and the interop scripts (tests/interop/lib.sh) at a real
# cluster. No cluster there: exit 77 (a skip; CI fails on skips).
#   tests/kafka/run.sh COMMAND [ARGS...]
set -uo pipefail
d=${SR_KAFKA_DIR:?SR_KAFKA_DIR: the directory of scripts/kafka.sh start --dir}
if [ ! -s "$d/bootstrap" ]; then
  echo "no Apache Kafka running in $d: start one with scripts/kafka.sh start --brokers 3 --dir $d (make test-kafka does)" >&2
  exit 77
fi
SR_TEST_BOOTSTRAP=$(cat "$d/bootstrap")
export SR_TEST_BOOTSTRAP
exec "$@"
