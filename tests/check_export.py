#!/usr/bin/env python3
"""Reads `jobcache export --format csv|tsv --function sir` (the cache
tests/test_tool.c's tool_export_tables makes) on stdin with Python's csv
module and checks every cell against the values the library computed:
final = beta * seed / 3, curve = [beta, seed], label, result.seed = 2 seed.
Usage: check_export.py csv|tsv"""
import csv
import datetime
import io
import json
import sys

fmt = sys.argv[1]
text = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline="")
rows = list(csv.reader(text, delimiter="," if fmt == "csv" else "\t", strict=True))
header = rows[0]
want = ["key", "version", "beta", "seed", "label", "curve", "final", "result.label", "result.seed",
        "created", "created_utc", "compute_seconds"]
assert header == want, header
seen = set()
for r in rows[1:]:
    assert len(r) == len(header), r
    d = dict(zip(header, r))
    beta, seed = float(d["beta"]), int(d["seed"])
    assert float(d["final"]) == beta * seed / 3.0, d
    assert json.loads(d["curve"]) == [beta, float(seed)], d
    label = 'a,"b"\nc\td' if seed == 7 else "plain"
    assert d["label"] == label and d["result.label"] == label, d
    assert int(d["result.seed"]) == 2 * seed, d
    assert len(d["key"]) == 32 and d["version"] == "v1", d
    assert float(d["created"]) > 1e9 and float(d["compute_seconds"]) >= 0, d
    # The same instant in ISO 8601 (UTC, to the microsecond).
    utc = datetime.datetime.strptime(d["created_utc"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    assert abs(utc.timestamp() - float(d["created"])) < 1e-6, d
    seen.add((beta, seed))
assert seen == {(b, s) for b in (0.1, 0.2, 0.3) for s in (1, 7)}, seen
assert len(rows) == 7, len(rows)
print("ok: %d rows" % (len(rows) - 1))
