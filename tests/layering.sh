#!/bin/sh
# The layers of jobcache, checked by grep (issue 11): only the store speaks
# SQL; only the cache layer calls the store; the layers above the cache
# handle (run.c, inspect.c) never read its fields; the command uses only the
# public API. Prints each violation and exits 1 if there is any.
src="$1/src"
tools="$1/tools"
bad=0
say() { echo "layering: $*"; bad=1; }

# 1. SQL: sqlite3 appears in store.c only.
for f in "$src"/*.c "$src"/*.h; do
    case "$(basename "$f")" in store.c) continue ;; esac
    grep -n 'sqlite3' "$f" | sed "s|^|$(basename "$f"):|" | while read -r l; do echo "layering: SQL outside the store: $l"; done
    grep -q 'sqlite3' "$f" && bad=1
done

# 2. Store calls: in store.c, store.h, cache.c and cache.h only.
for f in "$src"/*.c "$src"/*.h; do
    case "$(basename "$f")" in store.c|store.h|cache.c|cache.h) continue ;; esac
    if grep -nE 'jc__store_[a-z_]+\(' "$f" >/dev/null; then
        grep -nE 'jc__store_[a-z_]+\(' "$f" | sed "s|^|layering: store call outside the cache layer: $(basename "$f"):|"
        bad=1
    fi
done

# 3. Above the cache handle, no field of it is read.
for f in "$src/run.c" "$src/inspect.c"; do
    if grep -nE '\b(cache|c)->[a-z_]+' "$f" | grep -v 'r->cache' >/dev/null; then
        grep -nE '\b(cache|c)->[a-z_]+' "$f" | grep -v 'r->cache' | sed "s|^|layering: field of jc_cache read in $(basename "$f"):|"
        bad=1
    fi
done

# 4. The command includes only the public header and its own.
if grep -rn '#include "' "$tools" | grep -vE '#include "(text|json|builtin|table)\.h"' | grep -v 'jobcache.h' >/dev/null; then
    grep -rn '#include "' "$tools" | grep -vE '#include "(text|json|builtin|table)\.h"' | grep -v 'jobcache.h' | sed 's|^|layering: the command includes an internal header: |'
    bad=1
fi
[ $bad -eq 0 ] && echo "layering: ok"
exit $bad
