/*
 * cache: the cache handle that a program opens, over the store.
 *
 * It chooses the file (argument, $JOBCACHE_PATH, ./jobcache.db), applies the
 * modes (recompute, read-only, disabled), turns stored blobs into values and
 * back, and defers hit bookkeeping so that a hit costs one lookup.
 */
#include <stdlib.h>
#include <string.h>

#include "jc_internal.h"
#include "store.h"

jc_cache *jc_cache_open(const char *path, const jc_cache_options *opts)
{
    jc_cache_options o = opts ? *opts : (jc_cache_options){0};
    if ((o.flags & JC_CACHE_READONLY) && (o.flags & JC_CACHE_RECOMPUTE)) {
        jc__set_error(JC_EINVAL, "jc_cache_open: JC_CACHE_READONLY and JC_CACHE_RECOMPUTE contradict "
                      "each other (recompute overwrites entries)");
        return NULL;
    }
    if (o.max_size < 0) {
        jc__set_error(JC_EINVAL, "jc_cache_open: max_size is negative (%lld)", (long long)o.max_size);
        return NULL;
    }
    jc_cache *c = calloc(1, sizeof *c);
    if (!c) {
        jc__set_error(JC_ENOMEM, "out of memory opening a cache");
        return NULL;
    }
    c->flags = o.flags;
    c->max_size = o.max_size;
    if (o.flags & JC_CACHE_DISABLED)
        return c;

    if (!path || !*path) {
        const char *env = getenv("JOBCACHE_PATH");
        path = env && *env ? env : "./jobcache.db";
    }
    c->path = jc__strdup(path);
    if (!c->path) {
        free(c);
        jc__set_error(JC_ENOMEM, "out of memory opening a cache");
        return NULL;
    }
    unsigned sflags = 0;
    if (o.flags & JC_CACHE_READONLY)
        sflags |= JC__STORE_READONLY | JC__STORE_NOCREATE;
    if (o.flags & JC_CACHE_NOCREATE)
        sflags |= JC__STORE_NOCREATE;
    if (jc__store_open(c->path, sflags, o.busy_timeout_ms, &c->store)) {
        free(c->path);
        free(c);
        return NULL;
    }
    return c;
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

void jc_cache_close(jc_cache *cache)
{
    if (!cache)
        return;
    if (cache->store && cache->ntouched) {
        /* Best effort: hit counts are bookkeeping, never results. */
        if (jc__store_begin(cache->store) == 0) {
            jc__cache_flush_touches(cache);
            jc__cache_commit(cache);
        }
    }
    jc__store_close(cache->store);
    free(cache->touched);
    free(cache->touched_at);
    free(cache->path);
    free(cache);
}

const char *jc_cache_path(const jc_cache *cache)
{
    return cache ? cache->path : NULL;
}

bool jc__cache_writable(const jc_cache *cache)
{
    return cache->store && !(cache->flags & JC_CACHE_READONLY);
}

void jc__cache_touch(jc_cache *cache, int64_t rowid)
{
    if (!jc__cache_writable(cache))
        return;
    if (cache->ntouched == cache->touched_cap) {
        size_t cap = cache->touched_cap ? cache->touched_cap * 2 : 256;
        int64_t *t = realloc(cache->touched, cap * sizeof *t);
        if (t)
            cache->touched = t;
        double *a = realloc(cache->touched_at, cap * sizeof *a);
        if (a)
            cache->touched_at = a;
        if (!t || !a)
            return; /* out of memory: this hit goes uncounted, nothing else is lost */
        cache->touched_cap = cap;
    }
    cache->touched[cache->ntouched] = rowid;
    cache->touched_at[cache->ntouched] = jc__now();
    cache->ntouched++;
    /* A program that only ever hits (jc_memo in a loop) still writes its hit
     * counts now and then. Not during a run, which writes them itself; and
     * after a failed attempt (the file locked by another process) only
     * 4096 hits later, so that a locked file costs one busy timeout per 4096
     * hits, not one per hit. */
    if (!cache->running && cache->ntouched >= (cache->touch_flush_at ? cache->touch_flush_at : 4096)) {
        if (jc__store_begin(cache->store) == 0) {
            jc__cache_flush_touches(cache);
            jc__cache_commit(cache);
            cache->touch_flush_at = 0;
        } else {
            cache->touch_flush_at = cache->ntouched + 4096;
        }
    }
}

static int cmp_rowid(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Whether the queued rowids are distinct. Sorting them also puts the
 * updates in table order, which is kinder to the page cache. */
static bool distinct_rowids(jc_cache *cache)
{
    qsort(cache->touched, cache->ntouched, sizeof *cache->touched, cmp_rowid);
    for (size_t i = 1; i < cache->ntouched; i++)
        if (cache->touched[i] == cache->touched[i - 1])
            return false;
    return true;
}

static int touch_each(jc_cache *cache, double at)
{
    int rc = 0;
    for (size_t i = 0; i < cache->ntouched && !rc; i++)
        rc = jc__store_touch(cache->store, cache->touched[i], at);
    return rc;
}

int jc__cache_flush_touches(jc_cache *cache)
{
    if (!cache->ntouched)
        return 0;
    /* All queued hits get the latest of their times: last_used orders
     * eviction, and a few milliseconds do not change that order. A rowid hit
     * twice (jc_memo in a loop) is counted twice, as the chunked statement
     * would count it once: those go one by one. */
    double latest = 0;
    for (size_t i = 0; i < cache->ntouched; i++)
        if (cache->touched_at[i] > latest)
            latest = cache->touched_at[i];
    int rc = distinct_rowids(cache) ? jc__store_touch_many(cache->store, cache->touched, cache->ntouched, latest)
                                    : touch_each(cache, latest);
    cache->ntouched = 0;
    return rc;
}

int jc__cache_lookup(jc_cache *cache, const uint8_t key[JC__KEY_LEN], jc_value **value,
                     double *seconds)
{
    *value = NULL;
    if (!cache->store || (cache->flags & JC_CACHE_RECOMPUTE))
        return 0;
    jc__hit hit;
    int rc = jc__store_get(cache->store, key, &hit);
    if (rc <= 0)
        return rc;
    if (jc__decode_value(hit.result, hit.result_len, value)) {
        /* A blob that does not decode is treated as a miss: the call is
         * computed again and its entry overwritten. */
        *value = NULL;
        return 0;
    }
    *seconds = hit.compute_seconds;
    jc__cache_touch(cache, hit.rowid);
    return 1;
}

typedef struct many_ctx {
    jc__cache_found_fn found;
    void *ctx;
    int64_t *rowids; /* of the hits, recorded after the lookups */
    size_t nrowids, cap;
} many_ctx;

static void on_many_hit(void *p, size_t i, const jc__hit *hit)
{
    many_ctx *m = p;
    if (m->nrowids == m->cap)
        return; /* cannot happen: the store answers each key once */
    jc_value *v = NULL;
    if (jc__decode_value(hit->result, hit->result_len, &v))
        return; /* does not decode: a miss, computed again and overwritten */
    m->rowids[m->nrowids++] = hit->rowid;
    m->found(m->ctx, i, v, hit->compute_seconds);
}

int jc__cache_lookup_many(jc_cache *cache, const uint8_t *const *keys, size_t n, jc__cache_found_fn found,
                          void *ctx)
{
    if (!cache->store || (cache->flags & JC_CACHE_RECOMPUTE) || !n)
        return 0;
    many_ctx m = {.found = found, .ctx = ctx, .rowids = malloc(n * sizeof *m.rowids), .cap = n};
    if (!m.rowids)
        return jc__set_error(JC_ENOMEM, "out of memory looking up %zu calls", n);
    /* One snapshot for all of them (a no-op inside a write transaction). */
    int rc = jc__store_read_begin(cache->store);
    if (!rc)
        rc = jc__store_get_many(cache->store, keys, n, on_many_hit, &m);
    jc__store_read_end(cache->store);
    /* Hits are recorded once the lookups are over: the store is not to be
     * called back from inside them. */
    for (size_t k = 0; k < m.nrowids; k++)
        jc__cache_touch(cache, m.rowids[k]);
    free(m.rowids);
    return rc;
}

int jc__cache_put(jc_cache *cache, const uint8_t key[JC__KEY_LEN], const jc_function *fn,
                  jc_value *const *argv, size_t argc, const jc_value *value, const void *blob,
                  size_t blob_len, double seconds, double now)
{
    jc__buf args = {0}, res = {0};
    int rc = jc__encode_args(argv, argc, jc__buf_write, &args);
    if (!rc && !blob) {
        rc = jc__encode_value(value, jc__buf_write, &res);
        blob = res.data;
        blob_len = res.len;
    }
    if (!rc && (args.oom || res.oom))
        rc = jc__set_error(JC_ENOMEM, "out of memory encoding a result of %s", fn->name);
    if (!rc) {
        jc__entry_in e = {
            .key = key,
            .function = fn->name,
            .version = fn->version,
            .args = args.data,
            .args_len = args.len,
            .result = blob ? blob : "",
            .result_len = blob_len,
            .compute_seconds = seconds,
            .now = now,
        };
        rc = jc__store_put(cache->store, &e);
    }
    jc__buf_free(&args);
    jc__buf_free(&res);
    return rc;
}
