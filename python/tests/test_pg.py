"""The Python reader on a cache stored on a PostgreSQL server (a location
"postgresql://..."): the same entries and values as from a file the same
program wrote, results in pieces, damage, the hit log, a read-only session
that holds no snapshot between calls, errors that never show a password, a
newer schema refused, a missing cache named clearly.

They need the tests' server (tests/pg_server.sh start DIR; CTest's fixture
`pg`): JC_TEST_PG=DIR, whose DIR/uri is the connection URI, and psycopg 3
(Debian: python3-psycopg). Without them they are skipped, saying why. Each
test works in a schema of its own, py_<name>, dropped first."""
import array
import math
import os
import struct
import subprocess
import sys
import traceback

import pytest

import jobcache
from jobcache import reader

SECRET = "s3cret-Pw-7781"


# ---- fixtures ----

@pytest.fixture(scope="session")
def pg_uri():
    """The URI of the tests' server (its database, no schema)."""
    d = os.environ.get("JC_TEST_PG")
    if not d:
        pytest.skip("JC_TEST_PG is not set (the directory of the tests' PostgreSQL server, "
                    "tests/pg_server.sh start DIR; run the tests from ctest)")
    skipped = os.path.join(d, "skipped")
    if os.path.exists(skipped):
        with open(skipped) as f:
            pytest.skip("no PostgreSQL server for the tests: %s" % f.read().strip())
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg 3 is not installed (Debian: python3-psycopg)")
    try:
        with open(os.path.join(d, "uri")) as f:
            uri = f.read().strip()
    except OSError:
        pytest.fail("JC_TEST_PG=%s: no server there (tests/pg_server.sh start %s)" % (d, d))
    return uri


def admin(uri):
    """A connection of the test's own (not the reader's), in autocommit."""
    import psycopg
    return psycopg.connect(uri, autocommit=True)


def sql(location, query, params=None):
    """Runs a statement in the cache's schema (the location's search_path);
    returns its rows, if any."""
    with admin(location) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else None


@pytest.fixture(scope="session")
def pg_location(pg_uri):
    """pg_location(name): the location of a cache in schema py_<name>,
    dropped first (and everything in it)."""
    from psycopg import sql as q

    def make(name, uri=pg_uri):
        schema = "py_" + name
        with admin(pg_uri) as conn:
            conn.execute(q.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(q.Identifier(schema)))
        return "%s&options=-csearch_path%%3D%s" % (uri, schema)

    return make


@pytest.fixture(scope="session")
def pg_all(writer, pg_location):
    """The cache of conftest's all_cache, written by the same program
    (py_cache_writer all) on the server."""
    loc = pg_location("all")
    subprocess.run([writer, "all", loc], check=True)
    return loc


@pytest.fixture
def pg_all_copy(writer, pg_location, request):
    """A cache of its own like pg_all, to be changed by a test."""
    loc = pg_location(request.node.name[len("test_"):][:40])
    subprocess.run([writer, "all", loc], check=True)
    return loc


def in_transaction(cache):
    """Whether the reader's session is inside a transaction (a snapshot)."""
    from psycopg.pq import TransactionStatus
    return cache._store._conn.info.transaction_status != TransactionStatus.IDLE


# ---- values compared exactly ----

def bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def same(a, b):
    """Equal values: floats by their bits, arrays by type and bytes."""
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and bits(a) == bits(b)
    if isinstance(a, array.array) or isinstance(b, array.array):
        return type(a) is type(b) and a.typecode == b.typecode and a.tobytes() == b.tobytes()
    if hasattr(a, "dtype") or hasattr(b, "dtype"):  # numpy arrays
        return (type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape
                and a.tobytes() == b.tobytes())
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


FIELDS = ("function", "version", "positional", "named", "result", "args_size", "result_size", "hits",
          "checked", "param_names")


def assert_same_entries(file_cache, server_cache):
    """The same entries, by key, with the same fields and values (created
    and compute times are each run's own)."""
    a = {e.key: e for e in file_cache}
    b = {e.key: e for e in server_cache}
    assert sorted(a) == sorted(b) and len(a) == len(file_cache) == len(server_cache)
    for k in a:
        for f in FIELDS:
            assert same(getattr(a[k], f), getattr(b[k], f)), (k, f, getattr(a[k], f), getattr(b[k], f))
        assert same(a[k].args, b[k].args)
    assert file_cache.functions() == server_cache.functions()
    created = [e.created for e in server_cache]
    assert created == sorted(created)  # oldest first, as from a file


# ---- the tests ----

def test_server_cache_reads_as_the_file(all_cache, pg_all):
    for use_numpy in (True, False):
        with jobcache.open(all_cache, use_numpy=use_numpy) as f, \
                jobcache.open(pg_all, use_numpy=use_numpy) as s:
            assert s.store == "postgresql" and f.store == "sqlite"
            assert s.schema == f.schema == jobcache.MAX_SCHEMA and s.key_format == f.key_format == 1
            assert s.checksums_checked == f.checksums_checked
            assert_same_entries(f, s)
            keys = sorted(e.key for e in s)
            assert same(s.get(keys[5]).result, f.get(keys[5]).result)
            assert s.get(bytes.fromhex(keys[7])).key == keys[7]
            with pytest.raises(KeyError):
                s.get("00" * 16)
            assert [e.key for e in s.entries("mixed", "v2")] != []
            assert list(s.entries("mixed", "v1")) == []
            with pytest.raises(jobcache.UnknownFunctionError, match="it holds: .*mixed"):
                s.frame("nothing")
    # A reference argument's result found by its checksum, as in a file.
    (check, key), = sql(pg_all, "SELECT result_check, key FROM entries WHERE function = 'exact' "
                                "ORDER BY id LIMIT 1")
    with jobcache.open(pg_all) as s:
        assert s.by_result(jobcache.Ref(check)).key == bytes(key).hex()
        assert s.by_result(jobcache.Ref(b"\0" * 16)) is None


def test_frame_as_from_the_file(all_cache, pg_all):
    pytest.importorskip("pandas")
    with jobcache.open(all_cache) as f, jobcache.open(pg_all) as s:
        for fn in ("mixed", "exact", "echo"):
            a = f.frame(fn).sort_values("key", ignore_index=True)
            b = s.frame(fn).sort_values("key", ignore_index=True)
            assert list(a.columns) == list(b.columns)
            for col in a.columns:
                if col not in ("created", "compute_seconds"):
                    assert all(same(x, y) for x, y in zip(a[col], b[col])), col


def test_sweep_on_server_and_file(sweep, pg_location, tmp_path):
    """The demo sweep (examples/sweep.c) run on a file and on the server."""
    file = str(tmp_path / "sweep.jobcache")
    loc = pg_location("sweep")
    for where in (file, loc):
        subprocess.run([sweep, "3", "1"], env=dict(os.environ, JOBCACHE_PATH=where), cwd=str(tmp_path),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with jobcache.open(file) as f, jobcache.open(loc) as s:
        assert len(s) == 24
        assert_same_entries(f, s)


def test_results_in_pieces(pg_all):
    """A large result stored in pieces, some compressed with zstd, read back
    whole and checked against its checksum."""
    np = pytest.importorskip("numpy")
    assert sorted(r[0] for r in sql(pg_all, "SELECT DISTINCT codec FROM chunks")) == [0, 1]
    if reader._zstd is None:
        pytest.skip("python3-zstandard is not installed: compressed pieces cannot be read")
    with jobcache.open(pg_all) as s:
        (e,) = s.entries("big")
        assert e.checked is True
        assert same(e.result["series"], np.arange(10000, dtype=np.float64) * 0.5)
        assert e.result["raw"] == bytes((k * 7) & 0xFF for k in range(70000))
        assert e.result["text"] == "abcdefghijklmnopqrstuvwxyz" * 2692 + "abcdefgh"
        x, noise = 88172645463325252, []
        for _ in range(10000):
            x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
            x ^= x >> 7
            x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
            noise.append(x >> 1)
        assert same(e.result["noise"], np.array(noise, dtype=np.int64))
        assert len(sql(pg_all, "SELECT 1 FROM chunks")) == 4


def test_damage_caught(pg_all_copy):
    pytest.importorskip("xxhash")
    import msgpack
    loc = pg_all_copy
    (key,), = sql(loc, "SELECT key FROM entries WHERE function = 'mixed' ORDER BY id LIMIT 1")
    key = bytes(key)
    sql(loc, "UPDATE entries SET result = %s WHERE key = %s",
        (msgpack.packb({"k2": 0, "label": "zero", "y": 9.0}), key))
    with jobcache.open(loc) as s:
        with pytest.raises(jobcache.DamagedEntryError, match=key.hex()):
            list(s.entries("mixed"))
        assert not in_transaction(s)  # the error ended the call's transaction too
        assert len(list(s.entries("echo"))) == 23  # and the session goes on
    with jobcache.open(loc, on_damaged="skip") as s:
        with pytest.warns(UserWarning, match="does not match its checksum"):
            got = list(s.entries("mixed"))
    assert len(got) == 3 and key.hex() not in [e.key for e in got]
    # A piece of a large result zeroed.
    sql(loc, "UPDATE chunks SET data = decode(repeat('00', length(data)), 'hex') WHERE codec = 0")
    with jobcache.open(loc) as s:
        with pytest.raises((jobcache.DamagedEntryError, jobcache.DecodeError)):
            list(s.entries("big"))


def test_hits_in_the_hit_log_count(pg_all_copy):
    loc = pg_all_copy
    (key, hits, used), = sql(loc, "SELECT key, hits, last_used FROM entries ORDER BY id LIMIT 1")
    key = bytes(key)
    rec = key + (4).to_bytes(4, "little")
    sql(loc, "INSERT INTO hit_log (at, hits, saved, keys) VALUES (%s, 4, 0, %s), (%s, 2, 0, %s),"
             " (1, 9, 0, '\\x0102'::bytea)",  # the last one damaged: skipped
        (used + 100, rec, used + 50, key + (2).to_bytes(4, "little")))
    with jobcache.open(loc) as c:
        e = c.get(key)
        assert e.hits == hits + 6 and e.last_used == used + 100
        assert sum(x.hits for x in c) == hits + 6


def test_read_only_and_no_snapshot_held(pg_all):
    import psycopg
    before = sql(pg_all, "SELECT sum(hits), max(last_used), count(*) FROM entries")
    with jobcache.open(pg_all) as c:
        assert not in_transaction(c)
        for call in (len, lambda c: c.functions(), lambda c: list(c), lambda c: c.get(next(iter(c)).key),
                     repr, lambda c: c.frame("mixed") if _has("pandas") else None):
            call(c)
            assert not in_transaction(c)
        # An iteration under way holds its snapshot; two of them interleaved
        # share it; the last one finished ends it.
        it1, it2 = c.entries(), c.entries("echo")
        next(it1)
        assert in_transaction(c)
        next(it2)
        assert len(c) == 32
        it1.close()
        assert in_transaction(c)
        assert len(list(it2)) == 22
        assert not in_transaction(c)
        # The session writes nothing, whatever is sent on it.
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            c._store.rows("UPDATE entries SET hits = hits + 1")
        assert not in_transaction(c)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            c._store._conn.execute("CREATE TABLE notes (x int)")
        c._store._conn.rollback()
        assert len(list(c)) == 32
    assert sql(pg_all, "SELECT sum(hits), max(last_used), count(*) FROM entries") == before


def _has(mod):
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


def test_cache_written_meanwhile(writer, pg_location):
    """A reader opened before a writer's commits sees each of them (no
    snapshot kept from one call to the next)."""
    loc = pg_location("meanwhile")
    p = subprocess.Popen([writer, "stream", loc, "4", "10", "lockstep"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    early = None
    try:
        for k in range(1, 5):
            assert p.stdout.readline() == "committed %d\n" % (10 * k)
            early = early or jobcache.open(loc)
            assert len(early) == 10 * k
            assert sorted((e.args["arg0"], e.result) for e in early) == [(i, i * i) for i in range(10 * k)]
            with jobcache.open(loc) as c:
                assert len(c) == 10 * k
            p.stdin.write("go\n")
            p.stdin.flush()
    finally:
        p.stdin.close()
        assert p.wait(timeout=60) == 0
        if early:
            early.close()


def with_password(uri, user="jobcache", password=SECRET):
    """The URI with a user and password in its user part."""
    assert uri.startswith("postgresql:///")
    return "postgresql://%s:%s@/%s" % (user, password, uri[len("postgresql:///"):])


def shown(exc):
    """Everything a traceback of the error would print."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def test_password_never_shown(pg_uri, pg_all, pg_location):
    host = pg_uri.split("host=")[1].split("&")[0]
    assert "user=jobcache" in pg_uri
    bare = pg_uri.replace("&user=jobcache", "").replace("?user=jobcache&", "?")
    opts = pg_all.split("&options=")[1]
    # The right password (the socket trusts this user) in the user part, or
    # as a parameter: opens, and the cache's name shows neither.
    for loc in (with_password(bare) + "&options=" + opts,
                pg_all + "&password=" + SECRET,
                pg_all + "&password=" + SECRET.replace("-", "%2D")):
        with jobcache.open(loc) as c:
            assert SECRET not in c.path and SECRET not in repr(c)
            assert c.path.startswith("postgresql://") and "py_all" in c.path
            with pytest.raises(jobcache.UnknownFunctionError) as e:
                c.frame("nothing") if _has("pandas") else c._check_function("nothing", None)
            assert SECRET not in shown(e.value)
    bad = [
        # no cache there
        (with_password(bare) + "&options=-csearch_path%3Dpy_no_such_schema", jobcache.NotACacheError),
        # no server there
        (with_password(bare.replace(host, host + "-nothing")), jobcache.Error),
        # a user the server does not know
        (with_password(bare, user="py_no_such_role"), jobcache.Error),
        # libpq refuses the location itself, quoting the bad value
        (with_password(bare) + "&port=" + SECRET, jobcache.Error),
        (pg_uri + "&password=" + SECRET + "&no_such_option=1", jobcache.Error),
        ("postgresql://jobcache:%s@/jobcache?host=%s&sslmode=%s" % (SECRET, host, SECRET), jobcache.Error),
    ]
    for loc, kind in bad:
        with pytest.raises(kind) as e:
            jobcache.open(loc)
        text = shown(e.value)
        assert SECRET not in text and SECRET.replace("-", "%2D") not in text, text
        assert str(e.value).startswith("cache 'postgresql://"), str(e.value)
    # What each says.
    with pytest.raises(jobcache.Error, match="py_no_such_role"):
        jobcache.open(with_password(bare, user="py_no_such_role"))


def test_redacted_location():
    r = reader._pg_redact
    assert r("postgresql://ann:pw@db.lab:5433/caches?options=-csearch_path%3Dsweep&sslmode=require") \
        == "postgresql://ann@db.lab:5433/caches?options=-csearch_path%3Dsweep"
    assert r("postgres:///jobcache?host=/run/pg&user=bo&password=pw%21&options=-csearch_path%3Dx") \
        == "postgresql://bo@%2Frun%2Fpg/jobcache?options=-csearch_path%3Dx"
    # What is shown is a location again (the same cache, no password).
    assert r("postgresql://b%40x:pw@/my%20db?host=/run/my%20pg&options=-csearch_path%3Da%26b") \
        == "postgresql://b%40x@%2Frun%2Fmy%20pg/my%20db?options=-csearch_path%3Da%26b"
    # Each host with its port; a user with ':' is not read as a password.
    assert r("postgresql:///d?host=h1,h2&port=5433") == "postgresql://h1:5433,h2:5433/d"
    assert r("postgresql:///d?user=a%3Ab") == "postgresql://a%3Ab@/d"
    assert r("postgresql://h1:1,h2:2/d") == "postgresql://h1:1,h2:2/d"
    assert reader._pg_secrets("postgresql://ann:p%40ss@h/d?password=x1&sslpassword=y2") \
        == {"p%40ss", "p@ss", "x1", "y2"}
    assert reader._is_server_location("postgres://x") and reader._is_server_location("postgresql://x")
    assert not reader._is_server_location("postgresql.db") and not reader._is_server_location("./postgresql://x")


def test_postgres_prefix(pg_all):
    loc = "postgres://" + pg_all[len("postgresql://"):]
    with jobcache.open(loc) as c:
        assert len(c) == 32


def test_newer_schema_refused(pg_all_copy):
    sql(pg_all_copy, "UPDATE meta SET value = %s WHERE name = 'schema_version'", (str(jobcache.MAX_SCHEMA + 1),))
    with pytest.raises(jobcache.SchemaError, match="schema version %d, newer than this reader "
                       "knows \\(%d\\)" % (jobcache.MAX_SCHEMA + 1, jobcache.MAX_SCHEMA)):
        jobcache.open(pg_all_copy)
    sql(pg_all_copy, "UPDATE meta SET value = '2' WHERE name = 'schema_version'")
    sql(pg_all_copy, "UPDATE meta SET value = '2' WHERE name = 'key_format'")
    with pytest.raises(jobcache.SchemaError, match="key format 2"):
        jobcache.open(pg_all_copy)


def test_missing_schema_or_no_cache(pg_location):
    # No such schema: nothing is made (the reader never writes).
    loc = pg_location("missing")
    with pytest.raises(jobcache.NotACacheError, match="does not exist: the server has no schema 'py_missing'"):
        jobcache.open(loc)
    assert sql(loc, "SELECT count(*) FROM pg_namespace WHERE nspname = 'py_missing'") == [(0,)]
    # A schema without tables.
    sql(loc, "CREATE SCHEMA py_missing")
    with pytest.raises(jobcache.NotACacheError, match="no cache in schema 'py_missing'"):
        jobcache.open(loc)
    # Other tables than a cache's.
    sql(loc, "CREATE TABLE py_missing.entries_not (x int)")
    with pytest.raises(jobcache.NotACacheError, match="not a jobcache cache \\(no entries and meta"):
        jobcache.open(loc)
    # A cache's tables without its schema version.
    sql(loc, "CREATE TABLE py_missing.entries (id bigint, key bytea)")
    sql(loc, "CREATE TABLE py_missing.meta (name text, value text)")
    with pytest.raises(jobcache.NotACacheError, match="schema version 0"):
        jobcache.open(loc)


def test_a_later_schema_of_the_path_is_not_read(pg_all, pg_location):
    """search_path 'py_later, py_all' with py_later existing and empty: the
    cache is py_later's (none), never py_all's tables found further on."""
    loc = pg_location("later")
    sql(loc, "CREATE SCHEMA py_later")
    with pytest.raises(jobcache.NotACacheError, match="no cache in schema 'py_later'"):
        jobcache.open(loc + "%2Cpy_all")


def test_without_psycopg(monkeypatch):
    """No server needed: without psycopg the error names the package."""
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg fails
    with pytest.raises(jobcache.Error, match="python3-psycopg") as e:
        jobcache.open("postgresql://ann:%s@db.lab/caches?options=-csearch_path%%3Dx" % SECRET)
    assert SECRET not in shown(e.value) and "postgresql://ann@db.lab/caches" in str(e.value)


def test_a_path_is_still_a_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        jobcache.open(str(tmp_path / "postgresql:"))


def test_nan_and_floats_exact_on_the_server(pg_all):
    """Results keep their bits through bytea as through a file's blobs."""
    with jobcache.open(pg_all, use_numpy=False) as c:
        r = {e.args["arg0"]: e.result for e in c.entries("exact")}
    assert bits(r[0]) == bits(-0.0) and bits(r[1]) == 0xFFF8000000000123
    assert isinstance(r[2], array.array) and math.isinf(r[2][3])


def test_session_dropped_by_the_server(pg_all):
    """A session the server ends (a restart, an administrator) is opened
    again at the next call, read-only and on the same schema; a call under
    way when it ends fails, and the one after it works."""
    import psycopg

    def kill(c):
        pid = c._store._conn.info.backend_pid
        assert sql(pg_all, "SELECT pg_terminate_backend(%s)", (pid,)) == [(True,)]

    with jobcache.open(pg_all) as c:
        kill(c)
        assert len(c) == 32
        assert not in_transaction(c)
        assert c._store._conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        c._store._conn.rollback()
        kill(c)
        assert len(list(c.entries("echo"))) == 23
        it = c.entries()
        next(it)
        kill(c)
        with pytest.raises(psycopg.OperationalError):
            list(it)
        assert len(list(c)) == 32 and not in_transaction(c)
