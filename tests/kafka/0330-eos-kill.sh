#!/usr/bin/env bash
# 0330: exactly-once: serve SIGKILLed at random points 12 times, on the 3-node
# Apache Kafka of make test-kafka (tests/kafka/faults.py says what is checked).
exec python3 "$(dirname "$0")/faults.py" eos-kill --kills 12 --events 60000
