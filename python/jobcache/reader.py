"""Read-only access to a jobcache cache file (docs/format.md).

The file is opened with SQLite's read-only URI mode and never written:
no hit counts, no migration, no checkpoint. Its bytes are the same after
reading; like every SQLite reader of a WAL database, SQLite may leave
empty -wal and -shm files beside it.
"""

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

# The newest schema this reader knows (PRAGMA user_version). A newer file is
# refused rather than misread. Schema 1: jobcache 0.1.0; 2: result checksums
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


class Cache:
    """A cache file opened read-only. Use ``jobcache.open(path)``."""

    def __init__(self, path, *, use_numpy=True, on_damaged="raise", busy_timeout=10.0):
        if on_damaged not in ("raise", "skip"):
            raise ValueError("on_damaged must be 'raise' or 'skip'")
        self.path = os.fspath(path)
        self.use_numpy = use_numpy
        self.on_damaged = on_damaged
        if not os.path.isfile(self.path):
            raise FileNotFoundError("no cache file '%s'" % self.path)
        self.open_mode = _open_mode(self.path)
        self._db = sqlite3.connect(_uri(self.path, self.open_mode), uri=True,
                                   timeout=busy_timeout, isolation_level=None,
                                   check_same_thread=False)
        try:
            self._check()
        except BaseException:
            self._db.close()
            raise
        self.checksums_checked = _xxhash is not None
        if not self.checksums_checked and "result_check" in self._columns:
            warnings.warn("python3-xxhash is not installed: the result checksums of '%s' are not "
                          "checked" % self.path, ChecksumWarning, stacklevel=3)

    def _check(self):
        db = self._db
        try:
            self.schema = db.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            self._has_hit_log = "hit_log" in tables
            self._tables = tables
        except sqlite3.DatabaseError as e:
            raise NotACacheError("'%s' is not a jobcache cache: %s" % (self.path, e)) from None
        if not {"entries", "meta"} <= tables:
            raise NotACacheError("'%s' is not a jobcache cache (no entries and meta tables)"
                                 % self.path)
        if self.schema > MAX_SCHEMA:
            raise SchemaError("'%s' has schema version %d, newer than this reader knows (%d): it "
                              "was written by a newer jobcache; use the Python reader of that "
                              "release" % (self.path, self.schema, MAX_SCHEMA))
        if self.schema < 1:
            raise NotACacheError("'%s' is not a jobcache cache (user_version %d)"
                                 % (self.path, self.schema))
        row = db.execute("SELECT value FROM meta WHERE name = 'key_format'").fetchone()
        if row is None:
            raise NotACacheError("'%s' is not a jobcache cache (no key_format in meta)" % self.path)
        self.key_format = int(row[0])
        if self.key_format not in KEY_FORMATS:
            raise SchemaError("'%s' uses key format %d; this reader decodes %s"
                              % (self.path, self.key_format, KEY_FORMATS))
        # Read the columns the file has: an older schema lacks some, a newer
        # one may add some.
        self._columns = [r[1] for r in db.execute("PRAGMA table_info(entries)")]
        # Parameter names by function and version (schema 6): "beta,seed".
        self._params = {}
        if db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'params'"
                      ).fetchone()[0]:
            for f, v, names in db.execute("SELECT function, version, names FROM params"):
                if isinstance(names, str) and names:
                    self._params[(f, v)] = names.split(",")

    # ---- life ----
    def close(self):
        if self._db is not None:
            self._db.close()
            self._db = None

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
    def __len__(self):
        return self._db.execute("SELECT count(*) FROM entries").fetchone()[0]

    def functions(self):
        """[(function, version, number of entries)], sorted."""
        return [tuple(r) for r in self._db.execute(
            "SELECT function, version, count(*) FROM entries GROUP BY function, version "
            "ORDER BY function, version")]

    def __iter__(self):
        return self.entries()

    def entries(self, function=None, version=None):
        """The entries (of one function and version when given), oldest
        first, as Entry objects. One SQL statement: a consistent snapshot even
        while another process writes the cache."""
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
        sql += " ORDER BY created, rowid"
        pending = self._pending_hits()
        for row in self._db.execute(sql, params):
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
        for at, keys in self._db.execute("SELECT at, keys FROM hit_log ORDER BY id"):
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
        row = self._db.execute("SELECT function, version FROM entries WHERE key = ?",
                               (kb,)).fetchone()
        if row is None:
            raise KeyError(key)
        for e in self.entries(row[0], row[1]):
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
        row = self._db.execute("SELECT key FROM entries WHERE result_check = ? LIMIT 1",
                               (bytes(ref.xxh3),)).fetchone()
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
        rows = self._db.execute("SELECT seq, codec, size, data FROM chunks WHERE key = ? AND part = ? "
                                "ORDER BY seq", (key, part)) if "chunks" in self._tables else []
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

        self._check_function(function, version)
        rows, arg_cols, res_cols = [], {}, {}
        for e in self.entries(function, version):
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
    """Opens the cache file at path read-only. Options: use_numpy (typed
    arrays as numpy arrays when numpy is present; default True), on_damaged
    ("raise" or "skip" an entry whose result fails its checksum)."""
    return Cache(path, **kw)
