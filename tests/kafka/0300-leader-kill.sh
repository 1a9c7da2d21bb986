#!/usr/bin/env bash
# 0300: SIGKILL of the partition leaders of events and of recommendations while events flow, on the 3-node
# Apache Kafka of make test-kafka (tests/kafka/faults.py says what is checked).
exec python3 "$(dirname "$0")/faults.py" leader-kill
