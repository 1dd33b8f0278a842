"""Read-only access to a jobcache cache (docs/format.md): a cache file, or
a cache on a PostgreSQL server (docs/store.md).

A file is opened with SQLite's read-only URI mode and never written:
no hit counts, no migration, no checkpoint. Its bytes are the same after
reading; like every SQLite reader of a WAL database, SQLite may leave
empty -wal and -shm files beside it.

A location "postgresql://..." or "postgres://..." (libpq's connection URI;
the PG* environment variables and ~/.pgpass apply) is a cache in the first
schema of the connection's search_path, e.g.
postgresql://host/db?options=-csearch_path%3Dmy_cache. It is read through
psycopg 3 (Debian: python3-psycopg), in a read-only session, each call in a
transaction of its own (one snapshot per call, none held between calls).
Both stores have the same tables and columns; the little that differs is
in _SQLiteStore and _PostgresStore below.
"""

import contextlib
import os
import sqlite3
import urllib.parse
import warnings

from . import codec

try:  # optional: python3-xxhash
    import xxhash as _xxhash
    if not hasattr(_xxhash, "xxh3_128_digest"):  # xxhash < 2.0 has no XXH3
        _xxhash = None
except ImportError:
    _xxhash = None

try:  # needed only for results stored compressed: python3-zstandard
    import zstandard as _zstd
except ImportError:
    _zstd = None

# The newest schema this reader knows (a file's PRAGMA user_version, a server
# cache's schema_version in meta). A newer cache is refused rather than
# misread. Schema 1: jobcache 0.1.0; 2: result checksums
# and code fingerprints; 3: each entry's key format; 4: leases (tables this
# reader does not need).
# 7, 8, 9: evictions, retries and inputs read in the record of runs, which
# the reader does not read; 10: the hit log, whose hits not yet folded into
# the entries it adds to their hit counts and last-used times; 11: large
# results in pieces (the chunks table; zstd needs python3-zstandard).
MAX_SCHEMA = 11
# The key formats whose value encoding this reader decodes.
KEY_FORMATS = (1,)


class Error(Exception):
    """Base class of this package's errors."""


class NotACacheError(Error):
    """The file is not a jobcache cache (or not SQLite at all)."""


class SchemaError(Error):
    """The cache was written by a newer jobcache than this reader knows."""


class DamagedEntryError(Error):
    """A stored result does not match its checksum."""


class UnknownFunctionError(Error, LookupError):
    """No entry of the function (and version) asked for: the message lists
    what the cache holds, so that a typo is not an empty table."""


class ChecksumWarning(UserWarning):
    """Result checksums could not be checked (python3-xxhash is missing)."""


class Entry:
    """One cached call: its function, version, decoded arguments and result.

    ``args`` is a dict: positional arguments by the names the cache records
    for the function and version (JC_FUNCTION_PARAMS; schema 6), as arg0,
    arg1, ... otherwise, then the named ones by name.
    ``positional`` and ``named`` keep them apart as the call had them.
    ``checked`` is True when the result's checksum was verified, False when it
    could not be (no xxhash), None when the entry has none (jobcache 0.1.0).
    """

    __slots__ = ("key", "function", "version", "positional", "named", "result", "created",
                 "last_used", "compute_seconds", "hits", "checked", "args_size", "result_size", "param_names")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw[k])

    @property
    def args(self):
        names = _param_names(self.param_names, len(self.positional))
        out = dict(zip(names, self.positional))
        for k, v in self.named.items():
            if k in out:
                raise Error("entry %s: named argument %r has the name of a positional one"
                            % (self.key, k))
            out[k] = v
        return out

    def as_dict(self):
        return {k: getattr(self, k) for k in self.__slots__} | {"args": self.args}

    def __repr__(self):
        return "<Entry %s %s %s %r -> %r>" % (self.key[:12], self.function, self.version,
                                             self.args, self.result)


def _param_names(recorded, n):
    """Names of n positional arguments: those recorded for the function and
    version (a list, or None), then arg<i> for any beyond them."""
    recorded = list(recorded or ())[:n]
    return recorded + ["arg%d" % i for i in range(len(recorded), n)]


def _side_size(path, suffix):
    try:
        return os.path.getsize(path + suffix)
    except OSError:
        return 0


def _open_mode(path):
    """How to open path read-only, as the C library decides (src/store/sqlite/,
    readonly_mode): through SQLite's WAL index when it can read or create
    the -shm file (a cache in use, or any cache in a writable place), else
    with the immutable flag, which needs no -shm and is exact only when the
    file holds everything (no -wal data)."""
    shm = path + "-shm"
    parent = os.path.dirname(os.path.abspath(path))
    if (os.path.exists(shm) and os.access(shm, os.R_OK)) or os.access(parent, os.W_OK | os.X_OK):
        return "ro"
    if _side_size(path, "-wal") > 0:
        raise Error("cannot read cache file '%s': results are still in '%s-wal' and the directory "
                    "is not writable, so SQLite cannot create '%s-shm' to read them; ask the "
                    "program using it to close it (a closed cache is complete on its own), or "
                    "copy it with 'jobcache backup'" % (path, path, path))
    return "immutable"


def _uri(path, mode):
    q = "mode=ro" + ("&immutable=1" if mode == "immutable" else "")
    return "file:%s?%s" % (urllib.parse.quote(os.path.abspath(path)), q)


class _SQLiteStore:
    """A cache file, opened read-only. SQL is written for SQLite: "?"
    placeholders, the row id as ``rowid``."""

    kind = "sqlite"
    rowid = "rowid"
    errors = sqlite3.DatabaseError

    def __init__(self, path, busy_timeout):
        if not os.path.isfile(path):
            raise FileNotFoundError("no cache file '%s'" % path)
        self.name = path
        self.open_mode = _open_mode(path)
        self._db = sqlite3.connect(_uri(path, self.open_mode), uri=True, timeout=busy_timeout,
                                   isolation_level=None, check_same_thread=False)

    def tables(self):
        return {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def schema_version(self):
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def columns(self, table):
        return [r[1] for r in self._db.execute("PRAGMA table_info(%s)" % table)]

    def reading(self):
        # Autocommit: each statement reads one snapshot, and a statement not
        # yet finished holds it for the others on this connection.
        return contextlib.nullcontext()

    def rows(self, sql, params=()):
        return self._db.execute(sql, params).fetchall()

    def one(self, sql, params=()):
        return self._db.execute(sql, params).fetchone()

    def stream(self, sql, params=(), batch=100):
        return self._db.execute(sql, params)

    def close(self):
        self._db.close()


_PG_PREFIXES = ("postgresql://", "postgres://")  # libpq's, as the C library (src/store/pg/pg.c)
# What of a connection URI may be shown (as jc__pg_redact shows it): never
# a password, nor any other parameter.
_PG_SHOWN = ("host", "hostaddr", "port", "dbname", "user", "options")


def _is_server_location(location):
    """True when location names a cache on a PostgreSQL server (a libpq
    connection URI), False for a file path."""
    return isinstance(location, str) and location.startswith(_PG_PREFIXES)


def _pg_split(uri):
    """(user part, hosts, database, [(name, value)] of the query) of a
    libpq URI, values percent-decoded."""
    rest = uri.split("://", 1)[1]
    rest, _, query = rest.partition("?")
    netloc, _, db = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    params = []
    for item in query.split("&") if query else ():
        k, _, v = item.partition("=")
        params.append((urllib.parse.unquote(k), urllib.parse.unquote(v)))
    return userinfo, hosts, db, params


def _pg_redact(uri):
    """The location as messages show it, in the form jc__pg_redact gives
    (src/store/pg/pg.c): postgresql://user@host:port,host:port/db?options=..,
    percent-encoded (a location again, a socket directory in the authority
    as %2F...), without a password or any parameter but host, port, user,
    dbname and options."""
    try:
        userinfo, netloc_hosts, db, params = _pg_split(uri)
    except Exception:  # noqa: BLE001 - whatever the text, never show it whole
        return "postgresql://(a location that could not be read)"
    q = lambda v, keep="": urllib.parse.quote(v, safe="-._~" + keep)  # noqa: E731
    user = urllib.parse.unquote(userinfo.partition(":")[0])
    hosts, ports = [], []
    for item in netloc_hosts.split(",") if netloc_hosts else ():
        if item.startswith("["):  # [IPv6]:port
            h, _, rest = item[1:].partition("]")
            p = rest[1:] if rest.startswith(":") else ""
        else:
            h, _, p = item.partition(":")
        hosts.append(urllib.parse.unquote(h))
        ports.append(p)
    db = urllib.parse.unquote(db)
    options = None
    for k, v in params:  # a parameter overrides the URI's part, as in libpq
        if k == "host":
            hosts = v.split(",")
        elif k == "port":
            ports = v.split(",")
        elif k == "user":
            user = v
        elif k == "dbname":
            db = v
        elif k == "options":
            options = v
    if len(ports) == 1:
        ports = ports * max(len(hosts), 1)
    shown = []
    for i, h in enumerate(hosts or [""]):
        p = ports[i] if i < len(ports) else ""
        shown.append(q(h) + (":" + p if p else ""))
    out = "postgresql://%s%s/%s" % (q(user) + "@" if user else "", ",".join(shown), q(db))
    return out + ("?options=" + q(options, "/:") if options else "")


def _pg_secrets(uri):
    """The passwords a URI holds, as written and percent-decoded: cut out of
    any message that might quote them."""
    out = set()
    try:
        userinfo, _, _, params = _pg_split(uri)
    except Exception:  # noqa: BLE001
        return out
    user, colon, pw = userinfo.partition(":")
    if colon and pw:
        out |= {pw, urllib.parse.unquote(pw)}
    for k, v in params:
        if k in ("password", "sslpassword") and v:
            out |= {v, urllib.parse.quote(v, safe="")}
    return {s for s in out if s}


def _scrub(text, secrets):
    for s in sorted(secrets, key=len, reverse=True):
        text = text.replace(s, "********")
    return text


class _PostgresStore:
    """A cache on a PostgreSQL server, in the first schema of the
    connection's search_path (the C library's current_schema()), read in a
    read-only session. SQL is the reader's SQLite text: its "?" become
    psycopg's %s placeholders (values always go as parameters), SQLite's
    rowid is the column id, PRAGMA user_version is meta's schema_version.

    Each public call of the Cache reads inside reading(): one transaction
    (REPEATABLE READ, READ ONLY: one snapshot for all its statements),
    begun at its first statement and ended when the last reader nested in
    it ends (as SQLite holds a read transaction while a statement is not
    finished); between calls the session is idle, holding no snapshot.
    A session the server dropped (a restart) is opened again at the next
    call's first statement, as the C library does."""

    kind = "postgresql"
    rowid = "id"

    def __init__(self, uri, busy_timeout):
        self._secrets = _pg_secrets(uri)
        self.name = _scrub(_pg_redact(uri), self._secrets)
        self.open_mode = "postgresql"
        try:
            import psycopg
        except ImportError:
            raise Error("cache '%s' is on a PostgreSQL server: reading it needs psycopg 3 (Debian: "
                        "apt-get install python3-psycopg; pip: pip install psycopg)" % self.name) from None
        self._pg = psycopg
        self.errors = psycopg.Error
        self._depth = 0
        self._fresh = False  # no statement yet in the call's transaction
        self._cursors = 0
        self._conn = None
        self._lock_ms = str(max(1, int(busy_timeout * 1000)))
        self.schema_name = None
        try:
            given = psycopg.conninfo.conninfo_to_dict(uri)
        except psycopg.Error as e:
            raise self._error("cannot connect to the PostgreSQL server", e) from None
        extra = {"autocommit": True}
        # An unreachable server is an error within seconds, never a hang
        # (as the C library), unless the location or PGCONNECT_TIMEOUT says
        # otherwise.
        if "connect_timeout" not in given and not os.environ.get("PGCONNECT_TIMEOUT"):
            extra["connect_timeout"] = 10
        if "application_name" not in given and not os.environ.get("PGAPPNAME"):
            extra["application_name"] = "jobcache-python"
        self._connect = lambda: psycopg.connect(uri, **extra)
        self._open()

    def _error(self, what, e):
        return Error("cache '%s': %s: %s" % (self.name, what, _scrub(str(e).strip(), self._secrets)))

    def _open(self):
        """Connects and sets the session up: read-only, the cache's schema
        alone on the search_path."""
        try:
            conn = self._connect()
        except self._pg.Error as e:
            raise self._error("cannot connect to the PostgreSQL server", e) from None
        try:
            # Read-only for every transaction of the session, whatever runs
            # on it; waits for a lock bounded as the file's busy timeout.
            conn.execute("SELECT set_config('default_transaction_read_only', 'on', false),"
                         " set_config('lock_timeout', %s, false)", (self._lock_ms,))
            if self.schema_name is None:
                self.schema_name = self._find_schema(conn)
            # Tables named alone are the cache's own from here on, never
            # those of a later schema of the path.
            conn.execute("SELECT set_config('search_path', quote_ident(%s), false)", (self.schema_name,))
            conn.autocommit = False
            conn.read_only = True
            conn.isolation_level = self._pg.IsolationLevel.REPEATABLE_READ
        except BaseException as e:
            conn.close()
            if isinstance(e, self._pg.Error):
                raise self._error("setting up the session", e) from None
            raise
        self._conn = conn

    def _find_schema(self, conn):
        schema, path = conn.execute("SELECT current_schema()::text, current_setting('search_path')").fetchone()
        if schema is None:
            first = path.split(",")[0].strip().strip('"')
            raise NotACacheError("cache '%s' does not exist: the server has no schema '%s' (the first "
                                 "of the search_path '%s'; the library makes it when it writes the cache)"
                                 % (self.name, first, path))
        if not conn.execute("SELECT 1 FROM pg_tables WHERE schemaname = current_schema() LIMIT 1").fetchone():
            raise NotACacheError("cache '%s' does not exist: no cache in schema '%s' (it has no tables)"
                                 % (self.name, schema))
        return schema

    def tables(self):
        return {r[0] for r in self.rows("SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()")}

    def schema_version(self):
        row = self.one("SELECT value FROM meta WHERE name = 'schema_version'")
        try:
            return int(row[0]) if row else 0
        except ValueError:
            return 0

    def columns(self, table):
        return [r[0] for r in self.rows(
            "SELECT column_name::text FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position", (table,))]

    @contextlib.contextmanager
    def reading(self):
        if self._conn is None:
            raise Error("cache '%s' is closed" % self.name)
        self._depth += 1
        if self._depth == 1:
            self._fresh = True
        try:
            yield
        except BaseException:
            self._leave(quiet=True)
            raise
        self._leave(quiet=False)

    def _leave(self, quiet):
        self._depth -= 1
        if self._depth == 0 and self._conn is not None and not self._conn.closed:
            try:
                self._conn.rollback()  # read only: nothing to commit
            except self._pg.Error:
                if not quiet and not self._conn.broken:
                    raise

    def _run(self, step):
        """step(), the call's first statement sent once more on a new
        session when the server had dropped this one (nothing was read in
        the call's transaction yet, so nothing is read twice)."""
        first, self._fresh = self._fresh, False
        if first and self._conn.broken:
            self._reopen()
        try:
            return step()
        except self._pg.OperationalError:
            if not (first and self._conn.broken):
                raise
        self._reopen()
        return step()

    def _reopen(self):
        try:
            self._conn.close()
        except self._pg.Error:
            pass
        self._conn = None
        self._open()

    @staticmethod
    def _sql(sql):
        return sql.replace("%", "%%").replace("?", "%s")

    @staticmethod
    def _plain(row):
        return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)

    def rows(self, sql, params=()):
        with self.reading():
            cur = self._run(lambda: self._conn.execute(self._sql(sql), params))
            return [self._plain(r) for r in cur.fetchall()]

    def one(self, sql, params=()):
        with self.reading():
            row = self._run(lambda: self._conn.execute(self._sql(sql), params)).fetchone()
            return None if row is None else self._plain(row)

    def stream(self, sql, params=(), batch=100):
        """The rows of a query read batch by batch through a cursor on the
        server, not all into memory at once (entries with large results)."""
        with self.reading():
            def declare():
                self._cursors += 1
                cur = self._conn.cursor(name="jobcache_read_%d" % self._cursors)
                cur.itersize = batch
                cur.execute(self._sql(sql), params)
                return cur
            cur = self._run(declare)
            try:
                for row in cur:
                    yield self._plain(row)
            finally:
                try:
                    cur.close()
                except self._pg.Error:
                    pass  # the transaction's end closes it anyway

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Cache:
    """A cache opened read-only: a file, or a schema on a PostgreSQL server.
    Use ``jobcache.open(location)``."""

    def __init__(self, path, *, use_numpy=True, on_damaged="raise", busy_timeout=10.0):
        if on_damaged not in ("raise", "skip"):
            raise ValueError("on_damaged must be 'raise' or 'skip'")
        location = os.fspath(path)
        self.use_numpy = use_numpy
        self.on_damaged = on_damaged
        self._store = None
        if _is_server_location(location):
            store = _PostgresStore(location, busy_timeout)
        else:
            store = _SQLiteStore(location, busy_timeout)
        # For a server, the location without its password (as messages show it).
        self.path = store.name
        self.store = store.kind
        self.open_mode = store.open_mode
        self._store = store
        try:
            with store.reading():
                self._check()
        except BaseException:
            self.close()
            raise
        self.checksums_checked = _xxhash is not None
        if not self.checksums_checked and "result_check" in self._columns:
            warnings.warn("python3-xxhash is not installed: the result checksums of '%s' are not "
                          "checked" % self.path, ChecksumWarning, stacklevel=3)

    def _check(self):
        st = self._store
        try:
            tables = st.tables()
            self._tables = tables
            self._has_hit_log = "hit_log" in tables
            if not {"entries", "meta"} <= tables:
                raise NotACacheError("'%s' is not a jobcache cache (no entries and meta tables)"
                                     % self.path)
            self.schema = st.schema_version()
        except st.errors as e:
            raise NotACacheError("'%s' is not a jobcache cache: %s" % (self.path, str(e).strip())) from None
        if self.schema > MAX_SCHEMA:
            raise SchemaError("'%s' has schema version %d, newer than this reader knows (%d): it "
                              "was written by a newer jobcache; use the Python reader of that "
                              "release" % (self.path, self.schema, MAX_SCHEMA))
        if self.schema < 1:
            raise NotACacheError("'%s' is not a jobcache cache (schema version %d)"
                                 % (self.path, self.schema))
        row = st.one("SELECT value FROM meta WHERE name = 'key_format'")
        if row is None:
            raise NotACacheError("'%s' is not a jobcache cache (no key_format in meta)" % self.path)
        self.key_format = int(row[0])
        if self.key_format not in KEY_FORMATS:
            raise SchemaError("'%s' uses key format %d; this reader decodes %s"
                              % (self.path, self.key_format, KEY_FORMATS))
        # Read the columns the cache has: an older schema lacks some, a newer
        # one may add some.
        self._columns = st.columns("entries")
        # Parameter names by function and version (schema 6): "beta,seed".
        self._params = {}
        if "params" in tables:
            for f, v, names in st.rows("SELECT function, version, names FROM params"):
                if isinstance(names, str) and names:
                    self._params[(f, v)] = names.split(",")

    # ---- life ----
    def close(self):
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # ---- queries ----
    # Each reads in one transaction of the store (reading()): one snapshot.
    def __len__(self):
        return self._store.one("SELECT count(*) FROM entries")[0]

    def functions(self):
        """[(function, version, number of entries)], sorted."""
        return [tuple(r) for r in self._store.rows(
            "SELECT function, version, count(*) FROM entries GROUP BY function, version "
            "ORDER BY function, version")]

    def __iter__(self):
        return self.entries()

    def entries(self, function=None, version=None):
        """The entries (of one function and version when given), oldest
        first, as Entry objects. One snapshot even while another process
        writes the cache (on a server: one transaction, held until the
        entries are all read or the iterator is closed)."""
        want = ["key", "function", "version", "args", "result", "args_size", "result_size",
                "created", "last_used", "compute_seconds", "hits"]
        opt = [c for c in ("result_check", "key_format") if c in self._columns]
        sql = "SELECT %s FROM entries" % ", ".join(want + opt)
        where, params = [], []
        if function is not None:
            where.append("function = ?")
            params.append(function)
        if version is not None:
            where.append("version = ?")
            params.append(version)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created, %s" % self._store.rowid
        with self._store.reading():
            pending = self._pending_hits()
            for row in self._store.stream(sql, params):
                r = dict(zip(want + opt, row))
                more = pending.get(bytes(r["key"]))
                if more:  # hits not folded yet (schema 10's hit log)
                    r["hits"] += more[0]
                    r["last_used"] = max(r["last_used"], more[1])
                e = self._entry(r)
                if e is not None:
                    yield e

    def _pending_hits(self):
        """{key bytes: (hits, latest time)} of the hit log (schema 10): hits
        recorded but not yet folded into their entries (docs/format.md)."""
        pending = {}
        if not getattr(self, "_has_hit_log", False):
            return pending
        for at, keys in self._store.stream("SELECT at, keys FROM hit_log ORDER BY id", batch=16):
            if not isinstance(keys, bytes) or len(keys) % 20 or not isinstance(at, (int, float)):
                continue  # damaged: jobcache drops it at the next fold
            for off in range(0, len(keys), 20):
                k = keys[off:off + 16]
                n = int.from_bytes(keys[off + 16:off + 20], "little")
                h, t = pending.get(k, (0, at))
                pending[k] = (h + n, max(t, at))
        return pending

    def _check_function(self, function, version):
        """UnknownFunctionError unless the cache holds entries of function
        (and of version, when given)."""
        held = self.functions()
        if any(f == function and (version is None or v == version) for f, v, _ in held):
            return
        versions = [v for f, v, _ in held if f == function]
        if versions:
            raise UnknownFunctionError("%s has no entries of %s version %r; its versions: %s"
                                       % (self.path, function, version, ", ".join(versions)))
        names = sorted({f for f, _, _ in held})
        raise UnknownFunctionError("%s has no entries of a function %r; it holds: %s"
                                   % (self.path, function, ", ".join(names) if names else "no entries"))

    def get(self, key):
        """The entry of a key (32 hex digits, or 16 bytes); KeyError if none."""
        kb = bytes.fromhex(key) if isinstance(key, str) else bytes(key)
        with self._store.reading():
            row = self._store.one("SELECT function, version FROM entries WHERE key = ?", (kb,))
            if row is None:
                raise KeyError(key)
            with contextlib.closing(self.entries(row[0], row[1])) as found:
                for e in found:
                    if e.key == kb.hex():
                        return e
        raise KeyError(key)

    def by_result(self, ref):
        """The entry whose result a reference argument (a Ref) stands for,
        or None when no entry holding that result is left in the cache (a
        pipeline's input: docs/pipelines.md). A result computed by two calls
        (their results equal) is held by both: one of them is returned."""
        if "result_check" not in self._columns:
            return None
        with self._store.reading():
            row = self._store.one("SELECT key FROM entries WHERE result_check = ? LIMIT 1",
                                  (bytes(ref.xxh3),))
            return self.get(bytes(row[0])) if row else None

    def _entry(self, r):
        key = bytes(r["key"]).hex()
        kf = r.get("key_format", self.key_format)
        if kf not in KEY_FORMATS:
            raise SchemaError("entry %s uses key format %s; this reader decodes %s"
                              % (key, kf, KEY_FORMATS))
        result_blob = bytes(r["result"])
        check = r.get("result_check")
        what = "entry %s (%s %s)" % (key, r["function"], r["version"])
        damage = None
        # The checksum covers the result's unsplit encoding: the blob itself,
        # or for a result in pieces (schema 11) the skeleton with its parts,
        # hashed as they are read.
        hasher = _xxhash.xxh3_128() if (check is not None and _xxhash is not None) else None
        try:
            args = codec.decode(r["args"], self.use_numpy)
            if codec.in_pieces(result_blob):
                raw_key = bytes(r["key"])
                result = codec.decode_pieces(result_blob, lambda part, n: self._read_part(raw_key, part, n),
                                             self.use_numpy, hasher)
            else:
                if hasher is not None:
                    hasher.update(result_blob)
                    if hasher.digest() != bytes(check):  # before decoding what may be damaged
                        raise DamagedEntryError("its bytes do not match")
                result = codec.decode(result_blob, self.use_numpy)
        except codec.DecodeError as e:
            raise codec.DecodeError("%s: %s" % (what, e)) from None
        except DamagedEntryError as e:
            damage = str(e)
        if damage is None and hasher is not None and hasher.digest() != bytes(check):
            damage = "its bytes do not match"
        if damage is not None:
            msg = ("%s: its result does not match its checksum (a damaged or edited file: %s); "
                   "'jobcache verify' lists such entries" % (what, damage))
            if self.on_damaged == "skip":
                warnings.warn(msg + "; skipped", stacklevel=4)
                return None
            raise DamagedEntryError(msg)
        checked = None if check is None else hasher is not None
        if not (isinstance(args, list) and len(args) == 2 and isinstance(args[0], list)
                and isinstance(args[1], dict)):
            raise codec.DecodeError("entry %s: arguments are not [[positional...], {named...}]" % key)
        return Entry(key=key, function=r["function"], version=r["version"], positional=args[0],
                     named=args[1], result=result, created=r["created"], last_used=r["last_used"],
                     compute_seconds=r["compute_seconds"], hits=r["hits"], checked=checked,
                     args_size=r["args_size"], result_size=r["result_size"],
                     param_names=self._params.get((r["function"], r["version"])))

    def _read_part(self, key, part, length):
        out = bytearray()
        want = 0
        # A chunk holds at most 1 MiB before compression: a few at a time.
        rows = self._store.stream("SELECT seq, codec, size, data FROM chunks WHERE key = ? AND part = ? "
                                  "ORDER BY seq", (key, part), batch=4) if "chunks" in self._tables else []
        for seq, how, size, data in rows:
            if seq != want or how not in (0, 1):
                raise codec.DecodeError("part %d: its chunks are missing or out of order" % part)
            want += 1
            if not isinstance(size, int) or size < 0 or size > length - len(out):
                raise DamagedEntryError("part %d: a chunk of %r bytes where %d are left"
                                        % (part, size, length - len(out)))
            if how == 0:
                out += data
            elif _zstd is None:
                raise Error("this result is stored compressed with zstd: install python3-zstandard")
            else:
                # The frame's own length first: a hostile one may claim gigabytes.
                try:
                    if _zstd.frame_content_size(bytes(data)) != size:
                        raise DamagedEntryError("part %d: a chunk's frame is not of its size" % part)
                    out += _zstd.ZstdDecompressor().decompress(bytes(data), max_output_size=size)
                except _zstd.ZstdError as e:
                    raise DamagedEntryError("part %d: %s" % (part, e)) from None
        if len(out) != length:
            raise DamagedEntryError("part %d holds %d bytes, not %d" % (part, len(out), length))
        return out

    def frame(self, function, version=None):
        """A pandas DataFrame of one function's entries (of one version when
        given): one row per entry; columns key, version, one per argument
        (by the recorded parameter names, else arg0, arg1, ...; then named ones), one per field of a map result (a
        field named like an argument becomes "result.<field>") or ``result``
        for other results, created (UTC datetime) and compute_seconds."""
        import pandas as pd

        with self._store.reading():  # one snapshot
            self._check_function(function, version)
            found = list(self.entries(function, version))
        rows, arg_cols, res_cols = [], {}, {}
        for e in found:
            args = e.args
            row = {"key": e.key, "version": e.version}
            for k, v in args.items():
                arg_cols.setdefault(k, None)
                row[k] = v
            if isinstance(e.result, dict):
                fields = e.result.items()
            else:
                fields = [("result", e.result)]
            for k, v in fields:
                col = k if k not in args and k not in _META_COLS else "result." + k
                res_cols.setdefault(col, None)
                row[col] = v
            row["created"] = e.created
            row["compute_seconds"] = e.compute_seconds
            rows.append(row)
        cols = ["key", "version", *arg_cols, *res_cols, "created", "compute_seconds"]
        df = pd.DataFrame.from_records(rows, columns=cols)
        df["created"] = pd.to_datetime(df["created"], unit="s", utc=True)
        return df

    def __repr__(self):
        return "<jobcache.Cache %r schema %d, %d entries>" % (self.path, self.schema, len(self))


_META_COLS = ("key", "version", "created", "compute_seconds")


def open(path, **kw):  # noqa: A001 - the package's entry point, as builtins.open for files
    """Opens the cache at path read-only: a cache file, or a cache on a
    PostgreSQL server named by a connection URI "postgresql://..." (read
    with psycopg 3, Debian's python3-psycopg). Options: use_numpy (typed
    arrays as numpy arrays when numpy is present; default True), on_damaged
    ("raise" or "skip" an entry whose result fails its checksum)."""
    return Cache(path, **kw)
