"""The Python reader against caches the C library wrote (py_cache_writer.c):
every value type decoded exactly, named and positional arguments, large
argument digests, checksums, schemas, read-only opening, a cache being
written meanwhile."""
import array
import hashlib
import math
import os
import shutil
import sqlite3
import struct
import subprocess
import warnings

import msgpack
import pytest

import jobcache
from jobcache import codec, reader

np = pytest.importorskip("numpy")

QNAN = 0x7FF8000000000000


def bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def same(a, b):
    """Equal values, floats compared by their bits, arrays by dtype and bits."""
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and bits(a) == bits(b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and a.tobytes() == b.tobytes())
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return (isinstance(b, dict) and list(a) == list(b)
                and all(same(a[k], b[k]) for k in a))
    return type(a) is type(b) and a == b


def f64(*xs):
    return np.array(xs, dtype=np.float64)


def from_bits(u):
    return struct.unpack("<d", struct.pack("<Q", u))[0]


NAN = from_bits(QNAN)
# echo(x) returns x as the function received it: canonical (-0.0 is +0.0,
# every NaN the quiet NaN), in the stored argument and in the result.
ECHO = [
    0, -1, 200, -2**63, 2**63 - 1, 1.5, 0.0, NAN, -math.inf, None, True, False,
    "h\u00e9llo \u2713", "", b"\x00\x01\xff\x80", b"",
    f64(1.0, 0.0, NAN, 2.5, math.inf), f64(),
    np.array([1, -2, 2**63 - 1, -2**63], dtype=np.int64),
    [1, [2.0, "x"], {"a": None, "b": True}],
    {"nested": {"deep": [3]}, "z": np.array([7], dtype=np.int64)},
    [], {},
]
NEG_NAN = from_bits(0xFFF8000000000123)


def test_every_value_type_as_argument_and_result(all_cache):
    c = jobcache.open(all_cache)
    got = list(c.entries("echo", "v1"))
    assert len(got) == len(ECHO)
    for e, want in zip(got, ECHO):
        assert e.named == {}
        assert same(e.positional, [want]), (e.positional, want)
        assert same(e.args, {"arg0": want})
        assert same(e.result, want), (e.result, want)
        assert e.checked is True


def test_results_are_exact(all_cache):
    """-0.0 and a negative NaN with a payload keep their bits in results."""
    c = jobcache.open(all_cache)
    r = {e.args["arg0"]: e.result for e in c.entries("exact")}
    assert bits(r[0]) == bits(-0.0) and bits(r[0]) != 0
    assert bits(r[1]) == 0xFFF8000000000123
    assert same(r[2], f64(-0.0, NEG_NAN, 1.0, -math.inf))
    assert same(r[3], {"n": 3, "neg_zero": -0.0})


def test_positional_and_named_arguments(all_cache):
    c = jobcache.open(all_cache)
    got = [(e.args, e.result) for e in c.entries("mixed", "v2")]
    want = [({"x": 0.5 * k, "k": k, "label": "odd" if k else "zero", "scale": 2.0},
             {"k2": k * k, "label": "odd" if k else "zero", "y": k * 1.0}) for k in range(3)]
    want.append(({"x": 1.0, "k": 5, "label": "later", "scale": -1.0},
                 {"k2": 25, "label": "later", "y": -1.0}))
    assert len(got) == 4
    for g, w in zip(got, want):
        assert same(g[0], w[0]) and same(g[1], w[1]), (g, w)
    assert list(c.entries("mixed", "v1")) == []


def xxh3(b):
    xxhash = pytest.importorskip("xxhash")
    return xxhash.xxh3_128_digest(b)


def test_large_arguments_are_digests(all_cache):
    c = jobcache.open(all_cache)
    (e,) = c.entries("big")
    d = np.arange(8192, dtype="<f8") / 8.0
    i = np.arange(10000, dtype="<i8") - 5000
    b = bytes((k * 7) & 0xFF for k in range(70000))
    a = e.args
    assert a["arg0"] == jobcache.Digest("doubles", 8192, xxh3(d.tobytes()))
    assert a["arg1"] == jobcache.Digest("ints", 10000, xxh3(i.tobytes()))
    assert a["arg2"] == jobcache.Digest("bytes", 70000, xxh3(b))
    assert isinstance(a["extra"][0], jobcache.Digest) and a["extra"][0] == a["arg0"]
    assert same(a["extra"][1], d[:3].astype(np.float64))
    assert repr(a["arg1"]) == "<ints[10000] xxh3 %s>" % xxh3(i.tobytes()).hex()
    # Results are never digested: the large result is whole, read from its
    # pieces (schema 11), compressed or not, and checked against its checksum.
    assert same(e.result["series"], np.arange(10000, dtype=np.float64) * 0.5)
    assert e.result["sum"] == float(d.sum()) and e.result["isum"] == int(i.sum())
    assert e.result["bsum"] == sum(b)
    assert e.result["text"] == "abcdefghijklmnopqrstuvwxyz" * 2692 + "abcdefgh"
    assert e.result["raw"] == b
    x, noise = 88172645463325252, []
    for _ in range(10000):
        x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 7
        x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
        noise.append(x >> 1)
    assert same(e.result["noise"], np.array(noise, dtype=np.int64))
    assert e.checked is True
    db = sqlite3.connect(all_cache)
    codecs = {r[0] for r in db.execute("SELECT codec FROM chunks")}
    db.close()
    assert codecs == {0, 1}  # the series compressed, the noise not


def test_a_damaged_part_is_refused(all_cache, tmp_path):
    path = tmp_path / "damaged.db"
    shutil.copy(all_cache, path)
    db = sqlite3.connect(path)
    db.execute("UPDATE chunks SET data = zeroblob(length(data)) WHERE codec = 0")
    db.commit()
    db.close()
    c = jobcache.open(str(path))
    with pytest.raises((jobcache.DamagedEntryError, jobcache.DecodeError)):
        list(c.entries("big"))


def test_keys_are_the_library_keys(all_cache):
    """Each key is XXH3-128 of [1, name, version, ARGS] over the stored
    argument bytes (docs/format.md): the reader shows the library's keys."""
    raw = sqlite3.connect("file:%s?mode=ro" % all_cache, uri=True)
    blobs = {bytes(k).hex(): (f, v, bytes(a)) for k, f, v, a in
             raw.execute("SELECT key, function, version, args FROM entries")}
    raw.close()
    c = jobcache.open(all_cache)
    keys = [e.key for e in c]
    assert sorted(keys) == sorted(blobs) and len(keys) == 32
    for k in keys:
        f, v, a = blobs[k]
        assert xxh3(b"\x94\x01" + msgpack.packb(f) + msgpack.packb(v) + a).hex() == k
    assert c.get(keys[3]).key == keys[3]
    with pytest.raises(KeyError):
        c.get("00" * 16)


def test_frame(all_cache):
    pd = pytest.importorskip("pandas")
    c = jobcache.open(all_cache)
    df = c.frame("mixed")
    # A result field named like an argument is "result.<field>".
    # Positional arguments by the names the cache records (JC_FUNCTION_PARAMS).
    assert list(df.columns) == ["key", "version", "x", "k", "label", "scale", "k2",
                                "result.label", "y", "created", "compute_seconds"]
    assert list(df["k"]) == [0, 1, 2, 5]
    assert list(df["y"]) == [0.0, 1.0, 2.0, -1.0]
    assert list(df["result.label"]) == ["zero", "odd", "odd", "later"]
    assert str(df["created"].dtype) == "datetime64[ns, UTC]"
    assert (df["compute_seconds"] >= 0).all() and df["key"].str.len().eq(32).all()
    # A scalar result is one `result` column; arrays stay arrays in their cell.
    ex = c.frame("exact", "v1")
    assert list(ex.columns) == ["key", "version", "arg0", "result", "n", "neg_zero", "created",
                                "compute_seconds"]
    assert same(ex["result"][2], f64(-0.0, NEG_NAN, 1.0, -math.inf))
    # An unknown function or version is an error naming what the cache
    # holds (0.2.0 gave an empty table: a typo made an empty plot).
    with pytest.raises(jobcache.UnknownFunctionError, match="it holds: .*mixed"):
        c.frame("nothing")
    with pytest.raises(jobcache.UnknownFunctionError, match="its versions: v1"):
        c.frame("exact", "v9")


def test_typed_arrays_without_numpy(all_cache, monkeypatch):
    monkeypatch.setattr(codec, "_np", None)
    c = jobcache.open(all_cache)
    got = {repr(e.positional[0]): e.result for e in c.entries("echo")}
    arr = [e.result for e in c.entries("echo") if isinstance(e.result, array.array)]
    assert [a.typecode for a in arr] == ["d", "d", "q"]
    assert list(arr[2]) == [1, -2, 2**63 - 1, -2**63]
    assert [bits(x) for x in arr[0]] == [bits(x) for x in (1.0, 0.0, NAN, 2.5, math.inf)]
    assert got  # and nothing else changes
    c2 = jobcache.open(all_cache, use_numpy=False)
    assert isinstance(next(c2.entries("exact")).result, float)
    assert isinstance(c2.get(next(c2.entries("big")).key).result["series"], array.array)


def test_checksums_checked_and_damage_caught(all_copy):
    c = jobcache.open(all_copy)
    assert c.checksums_checked and all(e.checked is True for e in c)
    c.close()
    db = sqlite3.connect(all_copy)
    key = db.execute("SELECT key FROM entries WHERE function = 'mixed' LIMIT 1").fetchone()[0]
    # A result changed but still valid MessagePack: only the checksum tells.
    db.execute("UPDATE entries SET result = ? WHERE key = ?",
               (msgpack.packb({"k2": 0, "label": "zero", "y": 9.0}), key))
    db.commit()
    db.close()
    with pytest.raises(jobcache.DamagedEntryError, match=bytes(key).hex()):
        list(jobcache.open(all_copy).entries("mixed"))
    with pytest.warns(UserWarning, match="does not match its checksum"):
        got = list(jobcache.open(all_copy, on_damaged="skip").entries("mixed"))
    assert len(got) == 3 and bytes(key).hex() not in [e.key for e in got]


def test_without_xxhash_says_checksums_are_not_checked(all_cache, monkeypatch):
    monkeypatch.setattr(reader, "_xxhash", None)
    with pytest.warns(jobcache.ChecksumWarning, match="not checked"):
        c = jobcache.open(all_cache)
    assert c.checksums_checked is False
    assert all(e.checked is False for e in c)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_schema1_file_read_as_it_is(v1_file, tmp_path):
    path = str(tmp_path / "v1.jobcache")
    shutil.copyfile(v1_file, path)
    before = sha(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no checksum warning: schema 1 has none
        c = jobcache.open(path)
    assert c.schema == 1 and c.key_format == 1
    assert c.functions() == [("greet", "v2", 2), ("half", "v1", 10), ("sq", "v1", 20)]
    assert {e.args["arg0"]: e.result for e in c.entries("sq")} == {i: i * i for i in range(20)}
    assert sorted(e.result for e in c.entries("half")) == [i * 0.25 for i in range(10)]
    (ada,) = [e for e in c.entries("greet") if e.args["arg0"] == "ada"]
    assert ada.args == {"arg0": "ada", "times": 3}
    assert same(ada.result, {"scale": f64(1.5, -2.25, 0.0), "times": 3, "who": "ada"})
    assert all(e.checked is None for e in c)
    assert sum(e.hits for e in c) == 5
    c.frame("greet")
    c.close()
    assert sha(path) == before


def test_reading_never_changes_the_file(all_copy):
    before, mtime = sha(all_copy), os.stat(all_copy).st_mtime_ns
    with jobcache.open(all_copy) as c:
        for e in c:
            e.args, e.result
        c.frame("mixed"), c.functions(), len(c)
    assert sha(all_copy) == before and os.stat(all_copy).st_mtime_ns == mtime
    raw = sqlite3.connect(all_copy)
    assert raw.execute("SELECT sum(hits) FROM entries").fetchone()[0] == 0
    raw.close()


def test_newer_schema_refused(all_copy):
    db = sqlite3.connect(all_copy)
    db.execute("PRAGMA user_version = %d" % (jobcache.MAX_SCHEMA + 1))
    db.close()
    with pytest.raises(jobcache.SchemaError, match="schema version %d, newer than this reader "
                       "knows \\(%d\\)" % (jobcache.MAX_SCHEMA + 1, jobcache.MAX_SCHEMA)):
        jobcache.open(all_copy)


def test_current_schema_with_more_columns_read(all_copy):
    """The library's current schema (leases, key formats) is read, and a
    file of a schema this reader knows may carry more tables and columns."""
    c = jobcache.open(all_copy)
    assert c.schema == jobcache.MAX_SCHEMA and len(list(c)) == 32
    c.close()
    db = sqlite3.connect(all_copy)
    db.executescript("CREATE TABLE notes (x);"
                     "ALTER TABLE entries ADD COLUMN extra TEXT;")
    db.close()
    c = jobcache.open(all_copy)
    assert len(list(c)) == 32
    c.close()
    db = sqlite3.connect(all_copy)
    db.execute("UPDATE entries SET key_format = 2 WHERE function = 'exact'")
    db.commit()
    db.close()
    c = jobcache.open(all_copy)
    assert len(list(c.entries("mixed"))) == 4
    with pytest.raises(jobcache.SchemaError, match="key format 2"):
        list(c.entries("exact"))


def test_not_a_cache(tmp_path, all_copy):
    other = str(tmp_path / "other.db")
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.close()
    with pytest.raises(jobcache.NotACacheError):
        jobcache.open(other)
    text = tmp_path / "text.db"
    text.write_text("hello, this is not SQLite at all" * 100)
    with pytest.raises(jobcache.NotACacheError):
        jobcache.open(str(text))
    missing = str(tmp_path / "missing.db")
    with pytest.raises(FileNotFoundError):
        jobcache.open(missing)
    assert not os.path.exists(missing)
    db = sqlite3.connect(all_copy)
    db.execute("UPDATE meta SET value = '2' WHERE name = 'key_format'")
    db.commit()
    db.close()
    with pytest.raises(jobcache.SchemaError, match="key format 2"):
        jobcache.open(all_copy)


def test_read_only_place(all_copy, monkeypatch):
    """Where no -shm can be made (a read-only share), a closed cache is read
    with SQLite's immutable flag; with results still in its -wal file, it is
    refused with the reason. (Root ignores permissions: os.access decides.)"""
    for side in ("-wal", "-shm"):
        if os.path.exists(all_copy + side):
            os.unlink(all_copy + side)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False)
    c = jobcache.open(all_copy)
    assert c.open_mode == "immutable" and len(list(c)) == 32
    c.close()
    assert not os.path.exists(all_copy + "-shm") and not os.path.exists(all_copy + "-wal")
    monkeypatch.setattr(os, "access", real_access)
    holder = sqlite3.connect(all_copy)
    holder.execute("PRAGMA wal_autocheckpoint = 0")
    holder.execute("INSERT INTO meta VALUES ('x', 'y')")
    holder.commit()
    assert os.path.getsize(all_copy + "-wal") > 0
    monkeypatch.setattr(os, "access", lambda p, m: False)
    with pytest.raises(jobcache.Error, match="still in .*-wal"):
        jobcache.open(all_copy)
    holder.close()


def test_cache_written_meanwhile_lockstep(writer, tmp_path):
    """Each commit of a writer that keeps the cache open (its results in the
    -wal file) is seen, by a new reader and by one opened before."""
    path = str(tmp_path / "live.jobcache")
    p = subprocess.Popen([writer, "stream", path, "5", "10", "lockstep"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        early = None
        for k in range(1, 6):
            line = p.stdout.readline()
            assert line == "committed %d\n" % (10 * k)
            assert os.path.getsize(path + "-wal") > 0
            c = jobcache.open(path)
            assert len(c) == 10 * k
            assert sorted((e.args["arg0"], e.result) for e in c) == [(i, i * i) for i in range(10 * k)]
            c.close()
            early = early or jobcache.open(path)
            assert len(early) == 10 * k
            p.stdin.write("go\n")
            p.stdin.flush()
        early.close()
    finally:
        p.stdin.close()
        assert p.wait(timeout=60) == 0


def test_cache_written_meanwhile_free(writer, tmp_path):
    """Reading in a loop while a writer commits as fast as it can: every
    snapshot opens and decodes, and none goes back in time."""
    path = str(tmp_path / "free.jobcache")
    p = subprocess.Popen([writer, "stream", path, "40", "25", "free"], stdout=subprocess.DEVNULL)
    seen = []
    try:
        while not os.path.exists(path):
            pass
        while p.poll() is None:
            try:
                c = jobcache.open(path)
            except jobcache.NotACacheError:
                continue  # the writer has not made its tables yet
            es = list(c.entries("sq"))
            c.close()
            assert all(e.result == e.args["arg0"] ** 2 for e in es)
            seen.append(len(es))
    finally:
        assert p.wait(timeout=60) == 0
    assert seen == sorted(seen)
    assert len(jobcache.open(path)) == 1000


def test_key_inputs_other_than_values_decode():
    """Stored arguments of jc_file (ext 4) and of JC_LEAVE_OUT (ext 5)."""
    import msgpack
    from jobcache import codec
    digest = bytes(range(16))
    blob = msgpack.packb([[msgpack.ExtType(4, b"\x01\x01" + digest), msgpack.ExtType(4, b"\x01\x02" + digest)],
                          {"log": msgpack.ExtType(5, b"\x01")}])
    (f, d), named = codec.decode(blob)
    assert isinstance(f, jobcache.FileDigest) and f.kind == "file" and f.xxh3 == digest
    assert d.kind == "directory" and repr(d) == "<directory xxh3 %s>" % digest.hex()
    assert named == {"log": jobcache.LEFT_OUT} and repr(named["log"]) == "<left out>"
    with pytest.raises(jobcache.DecodeError):
        codec.decode(msgpack.packb(msgpack.ExtType(4, b"\x02\x01" + digest)))
    with pytest.raises(jobcache.DecodeError):
        codec.decode(msgpack.packb(msgpack.ExtType(5, b"\x02")))


def test_hits_in_the_hit_log_count(all_copy):
    """Schema 10 appends hits to a log that jobcache folds into the entries
    later; the reader adds the hits not folded yet, and their time."""
    raw = sqlite3.connect(all_copy)
    key, hits, used = raw.execute("SELECT key, hits, last_used FROM entries ORDER BY rowid LIMIT 1").fetchone()
    rec = bytes(key) + (4).to_bytes(4, "little")
    raw.execute("INSERT INTO hit_log (at, hits, saved, keys) VALUES (?, 4, 0, ?)", (used + 100, rec))
    raw.execute("INSERT INTO hit_log (at, hits, saved, keys) VALUES (?, 2, 0, ?)", (used + 50, rec[:16] + (2).to_bytes(4, "little")))
    raw.execute("INSERT INTO hit_log (at, hits, saved, keys) VALUES (1, 9, 0, x'0102')")  # damaged: skipped
    raw.execute("INSERT INTO hit_log (at, hits, saved, keys) VALUES (1, 9, 0, 'text')")  # likewise
    raw.execute("INSERT INTO hit_log (at, hits, saved, keys) VALUES ('soon', 9, 0, ?)", (rec,))  # likewise
    raw.commit()
    raw.close()
    with jobcache.open(all_copy) as c:
        e = c.get(bytes(key))
        assert e.hits == hits + 6
        assert e.last_used == used + 100
        assert sum(x.hits for x in c) == hits + 6
