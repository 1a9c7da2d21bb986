#!/usr/bin/env bash
# 0310: SIGSTOP of an events leader past the broker session timeout, on the 3-node
# Apache Kafka of make test-kafka (tests/kafka/faults.py says what is checked).
exec python3 "$(dirname "$0")/faults.py" broker-pause
