#!/usr/bin/python3
"""Interop with independent implementations: kafka-python (Kafka client) and
python avro (Avro codec), both from Debian.

  produce BOOTSTRAP CSV N   -> N UserEvents from CSV rows, Confluent-framed,
                               keyed by user, plus one garbage message
  check-recs BOOTSTRAP N    -> reads N Recommendations, decodes and checks them
  check-dlq BOOTSTRAP       -> reads events.dlq, checks the garbage message and headers

The topic names come from SR_T_EVENTS, SR_T_RECS, SR_T_DLQ (tests/interop/lib.sh;
default events, recommendations, events.dlq).
"""
import io
import json
import os
import struct
import sys
from datetime import datetime, timezone

import avro.io
import avro.schema
from kafka import KafkaConsumer, KafkaProducer

SRC = os.environ.get("SR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
T_EVENTS = os.environ.get("SR_T_EVENTS", "events")
T_RECS = os.environ.get("SR_T_RECS", "recommendations")
T_DLQ = os.environ.get("SR_T_DLQ", "events.dlq")


def schema(name):
    with open(os.path.join(SRC, "schemas", name)) as f:
        return avro.schema.parse(f.read())


EVENT = schema("user_event.avsc")
REC = schema("recommendation.avsc")


def frame(sch, sid, datum):
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, sid))
    avro.io.DatumWriter(sch).write(datum, avro.io.BinaryEncoder(buf))
    return buf.getvalue()


def unframe(sch, raw):
    magic, sid = struct.unpack(">bI", raw[:5])
    assert magic == 0, "bad magic %r" % magic
    return sid, avro.io.DatumReader(sch).read(avro.io.BinaryDecoder(io.BytesIO(raw[5:])))


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def produce(bs, csv, n):
    # acks=all: on a replicated topic a write acknowledged by the leader
    # alone is not below the high watermark yet, and readers that stop at
    # the end offsets found at start (train --brokers) would miss it
    p = KafkaProducer(bootstrap_servers=bs, api_version=(2, 0, 0), acks="all")
    sent = 0
    with open(csv) as f:
        for line in f:
            cols = line.strip().split(",")
            if len(cols) < 4 or not cols[3].isdigit():
                continue
            ev = {"event_id": "py-%d" % sent, "user_id": cols[0], "item_id": cols[1],
                  "type": "RATE", "value": float(cols[2]),
                  # timestamp-millis: python avro takes an aware datetime
                  "timestamp": datetime.fromtimestamp(int(cols[3]), tz=timezone.utc),
                  "scenario": "default"}
            p.send(T_EVENTS, key=cols[0].encode(), value=frame(EVENT, 1, ev))
            sent += 1
            if sent == n:
                break
    p.send(T_EVENTS, key=b"garbage", value=b"{\"not\": \"avro\"}")
    p.flush(timeout=30)
    print("produced %d events + 1 garbage message" % sent)


def consume(bs, topic, n):
    c = KafkaConsumer(topic, bootstrap_servers=bs, auto_offset_reset="earliest",
                      enable_auto_commit=False, group_id=None, consumer_timeout_ms=8000,
                      api_version=(2, 0, 0))
    out = []
    for m in c:
        out.append(m)
        if len(out) >= n:
            break
    c.close()
    return out


def check_recs(bs, n):
    msgs = consume(bs, T_RECS, n + 10)
    if len(msgs) != n:
        fail("expected %d recommendations, read %d" % (n, len(msgs)))
    ids = set()
    for m in msgs:
        sid, r = unframe(REC, m.value)
        if sid != 2:
            fail("schema id %d" % sid)
        if m.key.decode() != r["user_id"]:
            fail("key %r != user_id %r" % (m.key, r["user_id"]))
        if len(r["items"]) != 10:
            fail("%d items" % len(r["items"]))
        scores = [it["score"] for it in r["items"]]
        if scores != sorted(scores, reverse=True):
            fail("scores not descending")
        if not r["model_version"]:
            fail("empty model_version")
        for it in r["items"]:
            if it["propensity"] != 1.0 or it["explore"]:
                fail("propensity/explore")
        ids.add(r["source_event_id"])
    if len(ids) != n:
        fail("%d distinct source events for %d recommendations" % (len(ids), n))
    print("python avro decoded %d recommendations; example: %s" % (len(msgs), json.dumps(r, default=str)[:300]))


def check_dlq(bs):
    msgs = consume(bs, T_DLQ, 1)
    if len(msgs) != 1:
        fail("expected 1 dead letter, read %d" % len(msgs))
    m = msgs[0]
    h = {k: v.decode() for k, v in m.headers}
    if m.key != b"garbage" or m.value != b"{\"not\": \"avro\"}":
        fail("dead letter key/value changed")
    if h.get("streamrec.error") != "BAD_FRAMING" or h.get("streamrec.source.topic") != T_EVENTS:
        fail("headers %r" % h)
    print("dead letter headers: %r" % h)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "produce":
        produce(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "check-recs":
        check_recs(sys.argv[2], int(sys.argv[3]))
    elif cmd == "check-dlq":
        check_dlq(sys.argv[2])
    else:
        fail("unknown command " + cmd)
