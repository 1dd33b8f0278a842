"""jobcache: read the caches of the jobcache C library from Python.

    import jobcache
    cache = jobcache.open("jobcache.db")        # read-only, never changes the file
    cache = jobcache.open("postgresql://lab-db/sweeps?options=-csearch_path%3Dsir")  # a server's
    for e in cache.entries("sir", "v1"):
        print(e.args, e.result)
    df = cache.frame("sir")                      # pandas DataFrame, one row per entry

Depends on sqlite3 and msgpack (and psycopg for a cache on a PostgreSQL
server: Debian's python3-psycopg); numpy (typed arrays), pandas (frame) and
xxhash (result checksums) are used when present. See docs/format.md.
"""

from .codec import LEFT_OUT, DecodeError, Digest, FileDigest, Ref
from .reader import (KEY_FORMATS, MAX_SCHEMA, Cache, ChecksumWarning, DamagedEntryError, Entry,
                     UnknownFunctionError,
                     Error, NotACacheError, SchemaError, open)

# The release of jobcache this reader comes with (the C library's JC_VERSION_*;
# python/tests/test_install.py checks they agree).
__version__ = "0.4.0"

__all__ = ["open", "Cache", "Entry", "Digest", "FileDigest", "Ref", "LEFT_OUT", "Error", "NotACacheError", "SchemaError",
           "DamagedEntryError", "DecodeError", "ChecksumWarning", "UnknownFunctionError", "MAX_SCHEMA",
           "KEY_FORMATS"]
