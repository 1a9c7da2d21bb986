#!/usr/bin/env bash
# 0320: serve SIGKILLed and SIGTERMed mid-stream, started again, on the 3-node
# Apache Kafka of make test-kafka (tests/kafka/faults.py says what is checked).
exec python3 "$(dirname "$0")/faults.py" serve-restart
