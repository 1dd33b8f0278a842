/*
 * The cache layer's face for the run and inspection (cache/cache.h): state
 * of the handle, write transactions, entries.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "function/fingerprint.h"
#include "cache_int.h"

/* ---- the cache layer for run.c and inspect.c (cache.h) ---- */

size_t jc__cache_pending(const jc_cache *cache)
{
    return cache->ntouched;
}

void jc__cache_drop_pending(jc_cache *cache)
{
    cache->ntouched = 0;
}

size_t jc__cache_damaged(const jc_cache *cache)
{
    return cache->damaged;
}

int jc__cache_run_start(jc_cache *cache)
{
    if (cache->running)
        return jc__set_error(JC_EBUSY, "jc_run: this cache is already running a batch; a cache runs one at a time");
    cache->running = true;
    cache->run_thread = pthread_self();
    return 0;
}

void jc__cache_run_end(jc_cache *cache)
{
    cache->running = false;
}

bool jc__cache_running(const jc_cache *cache)
{
    return cache->running;
}

bool jc__cache_busy_elsewhere(const jc_cache *cache)
{
    return cache->running && !pthread_equal(cache->run_thread, pthread_self());
}

const jc_function *jc__cache_memo_function(jc_cache *cache, jc_fn fn)
{
    if (!fn || fn != cache->memo_fn || cache->memo_gen != jc__registry_generation()) {
        /* a memo loop calls one function: look it up once */
        cache->memo_desc = jc__function_by_ptr(fn);
        cache->memo_fn = cache->memo_desc ? fn : NULL;
        cache->memo_gen = jc__registry_generation();
    }
    return cache->memo_fn ? cache->memo_desc : NULL;
}

bool jc__cache_warn_once(jc_cache *cache, const jc_function *fn)
{
    for (size_t i = 0; i < cache->nwarned; i++)
        if (cache->warned[i] == fn)
            return false;
    if (!JC__GROW(cache->warned, cache->capwarned, cache->nwarned + 1))
        cache->warned[cache->nwarned++] = fn;
    return true;
}

bool jc__cache_has_store(const jc_cache *cache)
{
    return cache && cache->store;
}

int jc__cache_begin(jc_cache *cache)
{
    return jc__store_begin(cache->store);
}

int jc__cache_rollback(jc_cache *cache)
{
    return jc__store_rollback(cache->store);
}

bool jc__cache_in_transaction(const jc_cache *cache)
{
    return jc__store_in_transaction(cache->store);
}

int jc__cache_row(jc_cache *cache, int64_t rowid, bool blobs, jc__row *row)
{
    return jc__store_row(cache->store, rowid, blobs, row);
}

int jc__cache_row_by_key(jc_cache *cache, const uint8_t key[JC__KEY_LEN], bool blobs, jc__row *row)
{
    return jc__store_row_by_key(cache->store, key, blobs, row);
}

int jc__cache_find_range(jc_cache *cache, const uint8_t lo[JC__KEY_LEN], const uint8_t hi[JC__KEY_LEN],
                         jc__row *row)
{
    return jc__store_find_range(cache->store, lo, hi, row);
}

int jc__cache_put_row(jc_cache *cache, const jc__row *row)
{
    return jc__store_put_row(cache->store, row);
}

int jc__cache_delete(jc_cache *cache, const uint8_t key[JC__KEY_LEN])
{
    return jc__store_delete(cache->store, key);
}

int jc__cache_delete_rowid(jc_cache *cache, int64_t rowid)
{
    return jc__store_delete_rowid(cache->store, rowid);
}

int jc__cache_pager_new(jc_cache *cache, const jc__select *q, jc__pager **out)
{
    return jc__store_pager_new(cache->store, q, out);
}

int jc__cache_pager_next(jc__pager *p, const int64_t **rowids, size_t *n)
{
    return jc__store_pager_next(p, rowids, n);
}

void jc__cache_pager_free(jc__pager *p)
{
    jc__store_pager_free(p);
}

int jc__cache_max_rowid(jc_cache *cache, int64_t *out)
{
    return jc__store_max_rowid(cache->store, out);
}

int jc__cache_remove(jc_cache *cache, const jc__select *q, int64_t *count, int64_t *bytes)
{
    return jc__store_remove(cache->store, q, count, bytes);
}

int jc__cache_remove_stale(jc_cache *cache, int64_t *count, int64_t *bytes)
{
    return jc__store_remove_stale(cache->store, count, bytes);
}

int jc__cache_remove_lru(jc_cache *cache, int64_t keep_entries, int64_t keep_bytes, int64_t *count,
                         int64_t *bytes)
{
    return jc__store_remove_lru(cache->store, keep_entries, keep_bytes, count, bytes);
}

int jc__cache_evict(jc_cache *cache, int64_t target, int64_t *count, int64_t *bytes)
{
    return jc__store_evict(cache->store, target, count, bytes);
}

int jc__cache_clamp_future(jc_cache *cache, int64_t *count)
{
    return jc__store_clamp_future(cache->store, count);
}

int jc__cache_groups(jc_cache *cache, int (*fn)(void *ctx, const jc__group *g), void *ctx)
{
    return jc__store_groups(cache->store, fn, ctx);
}

int jc__cache_facts(jc_cache *cache, jc__store_facts *out)
{
    return jc__store_facts_get(cache->store, out);
}

int jc__cache_integrity(jc_cache *cache, void (*fn)(void *ctx, const char *problem), void *ctx)
{
    return jc__store_integrity(cache->store, fn, ctx);
}

int jc__cache_vacuum_store(jc_cache *cache)
{
    return jc__store_vacuum(cache->store);
}

int jc__cache_backup_store(jc_cache *cache, const char *dest)
{
    return jc__store_backup(cache->store, dest);
}

int jc__cache_commit(jc_cache *cache)
{
    int rc = jc__store_commit(cache->store);
    /* SQLite may keep the transaction open after a failed COMMIT (a busy
     * lock): end it, or every later begin would nest into it and nothing
     * would be committed again. Its message is kept. */
    if (rc && jc__store_in_transaction(cache->store)) {
        char *msg = jc__strdup(jc_errmsg());
        jc__store_rollback(cache->store);
        jc__set_error(rc, "%s", msg ? msg : jc_strerror(rc));
        free(msg);
    }
    return rc;
}

bool jc__cache_writable(const jc_cache *cache)
{
    return cache->store && !(cache->flags & JC_CACHE_READONLY);
}
