#!/bin/sh
# The layers of jobcache (docs/architecture.md), checked by folder: only the
# stores speak SQL (SQLite's and PostgreSQL's, each its own); only the cache layer calls the store; above the
# cache no field of its handle is read; each layer's private header is
# included by that layer's files only; only the fork pool forks; the command
# uses only the public API. Prints each violation and exits 1 if there is
# any. (tests/cycles.py checks, from the objects, that no two files or
# folders depend on each other.)
src="$1/src"
tools="$1/tools"
bad=0
say() { echo "layering: $*"; bad=1; }

# grep_outside PATTERN DIR MESSAGE: every line of code (not of a comment)
# matching PATTERN in a file of src/ outside DIR (a folder of src/, or a
# file) is a violation.
grep_outside() {
    for f in $(find "$src" -name '*.[ch]' | sort); do
        case "$f" in "$src/$2" | "$src/$2"/*) continue ;; esac
        hits=$(grep -nE "$1" "$f" | grep -vE '^[0-9]+:[[:space:]]*(/?\*|//)') || continue
        echo "$hits" | sed "s|^|layering: $3: ${f#"$src"/}:|"
        bad=1
    done
}

# 1. SQL: sqlite3 only in the SQLite store, libpq only in the PostgreSQL
#    store.
grep_outside 'sqlite3' store/sqlite "SQL outside the store"
grep_outside '\bPQ[a-zA-Z]+\(|libpq-fe\.h|PGresult|PGconn' store/pg "libpq outside the PostgreSQL store"

# 2. Store calls (jc__store_*) only in the store and the cache layer.
for f in $(find "$src" -name '*.[ch]' | sort); do
    case "$f" in "$src"/store/* | "$src"/cache/*) continue ;; esac
    hits=$(grep -nE 'jc__store_[a-z_]+\(' "$f") || continue
    echo "$hits" | sed "s|^|layering: store call outside the cache layer: ${f#"$src"/}:|"
    bad=1
done

# 3. Above the cache, no field of its handle is read (the compiler holds
#    this too: struct jc_cache is in cache/cache_int.h).
for f in $(find "$src/run" "$src/inspect" -name '*.[ch]' | sort); do
    hits=$(grep -nE '\b(cache|c|other)->[a-z_]+' "$f") || continue
    echo "$hits" | sed "s|^|layering: field of jc_cache read in ${f#"$src"/}:|"
    bad=1
done

# 4. Private headers: each included by its own folder's files only.
grep_outside '#include "(cache/)?cache_int\.h"' cache "the cache's private header included"
grep_outside '#include "(store/sqlite/)?sqlite_int\.h"' store/sqlite "the SQLite store's private header included"
grep_outside '#include "(store/pg/)?pg_int\.h"' store/pg "the PostgreSQL store's private header included"
grep_outside '#include "(store/)?store_int\.h"' store "the store's backend interface included"
grep_outside '#include "(run/)?run_int\.h"' run "the run's private header included"
grep_outside '#include "(inspect/)?inspect_int\.h"' inspect "inspection's private header included"

# 5. Only the fork pool forks.
grep_outside '\b(v?fork|clone)[[:space:]]*\(' exec/fork.c "fork outside the fork pool"

# 6. The command includes only the public header and its own.
hits=$(grep -rn '#include "' "$tools" | grep -vE '#include "(text|json|builtin|table|msgs)\.h"' | grep -v 'jobcache.h') &&
    { echo "$hits" | sed 's|^|layering: the command includes an internal header: |'; bad=1; }

# The checks above must see the folders they name.
for d in store/sqlite store/pg cache run inspect exec; do
    [ -d "$src/$d" ] || say "no folder src/$d: this script is stale"
done
[ -f "$src/exec/fork.c" ] || say "no src/exec/fork.c: this script is stale"
[ $bad -eq 0 ] && echo "layering: ok"
exit $bad
