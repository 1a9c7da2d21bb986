#!/usr/bin/python3
"""Interop peer for tests/unit/0011-decode-interop.c.

The Apache Avro Python library is an implementation independent of Avro C, so
it is the referee for our wire format. It reads schemas/*.avsc (the source of
truth, not the copies compiled into the C binary) and the test vectors below,
which 0011-decode-interop.c repeats in C: keep the two in step.

Timestamps are checked as raw millis, including values no datetime can hold
(-1, INT64 min/max), so the vectors use the schemas with the timestamp-millis
annotation dropped: a logical type does not change the binary encoding. The
first vectors are also read through the annotated schemas, as a consumer
with logical types would.

  avro_interop.py write DIR   write py_event_NN.bin / py_rec_NN.bin
  avro_interop.py check DIR   decode c_event_NN.bin / c_rec_NN.bin, compare every
                              field, and compare the bytes with our own encoding
  avro_interop.py seeds EVDIR RECDIR   write fuzz seed corpora (tests/fuzz)

Messages use Confluent framing: magic 0, big-endian int32 schema id, body.
Exit status is non-zero on any mismatch.
"""
import datetime
import io
import json
import os
import struct
import sys

import avro.io
import avro.schema

EVENT_SCHEMA_ID = 1
REC_SCHEMA_ID = 2
TYPES = ["VIEW", "CLICK", "CART", "PURCHASE", "RATE", "IMPRESSION", "SKIP", "FORGET"]

# (event_id, user_id, item_id, type, value, timestamp, scenario)
EVENTS = [
    ("ev-0", "user-42", "item-7", "VIEW", 0.0, 1732361400123, "home"),
    ("évènement-1", "ユーザー-ü", "商品🎧", "PURCHASE", 4.5, -1, "首页"),
    ("", "u", "i", "FORGET", -0.25, 2**63 - 1, ""),
    ("ev-3", "user-3", "item-3", "RATE", 3.4028234663852886e38, -2**63, "default"),
] + [("ev-t%d" % t, "user-%d" % t, "item-%d" % t, TYPES[t], t * 0.5, 1700000000000 + t, "s")
     for t in range(8)]

# (user_id, scenario, [(item_id, score, propensity, explore)], model_version,
#  source_event_id, source_partition, source_offset, event_time, produced_at)
RECS = [
    ("user-42", "home", [], "mf-v1", "ev-0", 0, 0, 1732361400123, 1732361400200),
    ("ユーザー", "首页",
     [("商品🎧", 0.875, 0.5, True), ("item-2", -1.5, 1.0, False), ("i", 0.0, 0.125, True)],
     "als-2024-11", "évènement-1", 2**31 - 1, 2**63 - 1, -1, 0),
    ("u", "", [("item-%03d" % i, 100 - i * 0.5, (i % 8) / 8.0, i % 3 == 0) for i in range(100)],
     "m", "e", -2**31, 123456789012, 1, 2),
]


def strip_logical(node):
    if isinstance(node, dict):
        node.pop("logicalType", None)
        for v in node.values():
            strip_logical(v)
    elif isinstance(node, list):
        for v in node:
            strip_logical(v)
    return node


def load_schema(name, raw):
    here = os.path.dirname(os.path.abspath(__file__))
    src = os.environ.get("SR_SOURCE_DIR") or os.path.join(here, "..", "..")
    with open(os.path.join(src, "schemas", name), encoding="utf-8") as f:
        j = json.load(f)
    return avro.schema.parse(json.dumps(strip_logical(j) if raw else j))


EVENT_SCHEMA = load_schema("user_event.avsc", True)
REC_SCHEMA = load_schema("recommendation.avsc", True)
EVENT_SCHEMA_LOGICAL = load_schema("user_event.avsc", False)
REC_SCHEMA_LOGICAL = load_schema("recommendation.avsc", False)
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def event_datum(v, normalize=False):
    eid, uid, iid, typ, value, ts, scen = v
    if normalize and scen == "":
        scen = "default"  # what the C codec writes and returns for an empty scenario
    return {"event_id": eid, "user_id": uid, "item_id": iid, "type": typ, "value": value,
            "timestamp": ts, "scenario": scen}


def rec_datum(v, normalize=False):
    uid, scen, items, mv, seid, part, off, et, pa = v
    if normalize and scen == "":
        scen = "default"
    return {"user_id": uid, "scenario": scen,
            "items": [{"item_id": i, "score": s, "propensity": p, "explore": e}
                      for (i, s, p, e) in items],
            "model_version": mv, "source_event_id": seid, "source_partition": part,
            "source_offset": off, "event_time": et, "produced_at": pa}


def encode(schema, schema_id, datum):
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema_id))
    avro.io.DatumWriter(schema).write(datum, avro.io.BinaryEncoder(buf))
    return buf.getvalue()


def decode(schema, schema_id, data):
    if len(data) < 5:
        raise ValueError("message of %d bytes has no Confluent header" % len(data))
    magic, sid = struct.unpack(">bI", data[:5])
    if magic != 0 or sid != schema_id:
        raise ValueError("header magic %d schema id %d, expected 0 and %d" % (magic, sid, schema_id))
    buf = io.BytesIO(data[5:])
    datum = avro.io.DatumReader(schema, schema).read(avro.io.BinaryDecoder(buf))
    if buf.tell() != len(data) - 5:
        raise ValueError("trailing %d bytes after record" % (len(data) - 5 - buf.tell()))
    return datum


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


def cmd_write(out):
    for i, v in enumerate(EVENTS):
        write_file(os.path.join(out, "py_event_%02d.bin" % i),
                   encode(EVENT_SCHEMA, EVENT_SCHEMA_ID, event_datum(v)))
    for i, v in enumerate(RECS):
        write_file(os.path.join(out, "py_rec_%02d.bin" % i),
                   encode(REC_SCHEMA, REC_SCHEMA_ID, rec_datum(v)))
    print("python: wrote %d events, %d recs to %s" % (len(EVENTS), len(RECS), out))
    return 0


def cmd_check(d):
    errors = []
    cases = [("c_event_%02d.bin" % i, EVENT_SCHEMA, EVENT_SCHEMA_ID, event_datum(v, True))
             for i, v in enumerate(EVENTS)]
    cases += [("c_rec_%02d.bin" % i, REC_SCHEMA, REC_SCHEMA_ID, rec_datum(v, True))
              for i, v in enumerate(RECS)]
    for name, schema, sid, want in cases:
        try:
            with open(os.path.join(d, name), "rb") as f:
                data = f.read()
            got = decode(schema, sid, data)
        except Exception as e:  # report every file, not just the first
            errors.append("%s: cannot decode: %r" % (name, e))
            continue
        for k in want:
            if got.get(k) != want[k]:
                errors.append("%s: field %s = %r, expected %r" % (name, k, got.get(k), want[k]))
        if set(got) != set(want):
            errors.append("%s: fields %s, expected %s" % (name, sorted(got), sorted(want)))
        ref = encode(schema, sid, want)
        if data != ref:
            at = next((i for i, (a, b) in enumerate(zip(data, ref)) if a != b), min(len(data), len(ref)))
            errors.append("%s: bytes differ from python's encoding at offset %d (len %d vs %d):"
                          "\n  c  ...%s\n  py ...%s" % (name, at, len(data), len(ref),
                                                    data[at:at + 24].hex(), ref[at:at + 24].hex()))
    # as a consumer with logical types sees them
    for name, schema, sid, field, ms in [
            ("c_event_00.bin", EVENT_SCHEMA_LOGICAL, EVENT_SCHEMA_ID, "timestamp", EVENTS[0][5]),
            ("c_rec_00.bin", REC_SCHEMA_LOGICAL, REC_SCHEMA_ID, "produced_at", RECS[0][8])]:
        try:
            with open(os.path.join(d, name), "rb") as f:
                got = decode(schema, sid, f.read())[field]
        except Exception as e:
            errors.append("%s: cannot decode with logical types: %r" % (name, e))
            continue
        if got != EPOCH + datetime.timedelta(milliseconds=ms):
            errors.append("%s: %s = %r, expected %d ms" % (name, field, got, ms))
    for e in errors:
        print("python: MISMATCH " + e, file=sys.stderr)
    print("python: checked %d files, %d mismatches" % (len(cases), len(errors)))
    return 1 if errors else 0


def cmd_seeds(ev_dir, rec_dir):
    for i, v in enumerate(EVENTS[:4]):
        write_file(os.path.join(ev_dir, "event-%02d.bin" % i),
                   encode(EVENT_SCHEMA, EVENT_SCHEMA_ID, event_datum(v)))
    for i, v in enumerate(RECS[:2]):
        write_file(os.path.join(rec_dir, "rec-%02d.bin" % i),
                   encode(REC_SCHEMA, REC_SCHEMA_ID, rec_datum(v)))
    # the same small rec with its array as a negative-count block (count, byte size)
    small = rec_datum(("u", "s", [("a", 0.5, 0.25, True)], "m", "e", 1, 2, 3, 4))
    body = encode(REC_SCHEMA, REC_SCHEMA_ID, small)[5:]
    item = b"\x02a" + struct.pack("<ff", 0.5, 0.25) + b"\x01"
    at = body.index(b"\x02" + item)  # count 1 (zigzag 2) then the item
    blocked = body[:at] + b"\x01" + bytes([len(item) * 2]) + body[at + 1:]
    write_file(os.path.join(rec_dir, "rec-negblock.bin"), struct.pack(">bI", 0, REC_SCHEMA_ID) + blocked)
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "write":
        return cmd_write(argv[2])
    if len(argv) == 3 and argv[1] == "check":
        return cmd_check(argv[2])
    if len(argv) == 4 and argv[1] == "seeds":
        return cmd_seeds(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
