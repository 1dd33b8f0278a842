/*
 * Writes at the level of what the caller means (cache/cache.h): a piece of
 * results, the queued hits, a renewal of leases, one memoized result. The
 * transaction protocol (begin, write the queued hits, work, commit or roll
 * back, and what to do when SQLite ended the transaction under a failure) is
 * written here once, for the run, jc_memo and inspection.
 */
#include "cache_int.h"

int jc__cache_store_piece(jc_cache *cache, jc__piece *p)
{
    p->leases_done = false;
    int rc = jc__store_begin(cache->store);
    if (rc)
        return rc;
    /* Bookkeeping: a failure loses no result; if SQLite ended the
     * transaction over it, a new one is begun for the results. */
    if (p->touches && jc__cache_flush_touches(cache) && !jc__store_in_transaction(cache->store) &&
        (rc = jc__store_begin(cache->store)))
        return rc;
    double now = jc__now();
    if (p->touches && p->leases) {
        /* Leases ride on the same transaction: this process's claims
         * renewed, and those of its failed calls released, so that a
         * process waiting for them computes them itself. Bookkeeping: a
         * failure here stores every result all the same. */
        jc__cache_lease_release(cache, p->release, *p->nrelease);
        *p->nrelease = 0;
        jc__cache_lease_renew(cache, p->lease_ttl);
        p->leases_done = true;
        if (!jc__store_in_transaction(cache->store) && (rc = jc__store_begin(cache->store)))
            return rc;
    }
    for (size_t i = 0; i < p->n && jc__store_in_transaction(cache->store); i++) {
        jc__result_in r;
        p->item(p->ctx, i, &r);
        rc = jc__cache_put(cache, r.key, r.fn, r.argv, r.argc, r.value, r.blob, r.blob_len, r.seconds, now);
        if (rc == JC_EFULL)
            break;
        if (rc)
            p->unstored(p->ctx, i, rc);
        rc = 0;
    }
    if (rc != JC_EFULL)
        rc = jc__store_in_transaction(cache->store) ? jc__cache_commit(cache) : JC_EIO;
    if (rc == JC_EFULL && jc__store_in_transaction(cache->store))
        jc__store_rollback(cache->store);
    return rc;
}

int jc__cache_store_result(jc_cache *cache, const uint8_t key[JC__KEY_LEN], const jc_function *fn,
                           jc_value *const *argv, size_t argc, const jc_value *value, double seconds)
{
    if (!jc__cache_writable(cache))
        return 0;
    int rc = jc__store_begin(cache->store);
    if (rc == 0) {
        /* A result that cannot be stored is still returned: the computation
         * succeeded, and the file stays as it was (see jc_memo). Hit counts
         * are bookkeeping: their failure does not stop the result. */
        jc__cache_flush_touches(cache);
        rc = jc__cache_put(cache, key, fn, argv, argc, value, NULL, 0, seconds, jc__now());
        if (rc < 0)
            jc__store_rollback(cache->store);
        else
            jc__cache_commit(cache);
        /* jc_memo keeps max_size as a run does (constant time when within). */
        jc__cache_enforce_size(cache);
    }
    return rc;
}

int jc__cache_renew_leases(jc_cache *cache, uint8_t *release, size_t nrelease, double ttl)
{
    int rc = jc__store_begin(cache->store);
    if (rc)
        return rc;
    jc__cache_lease_release(cache, release, nrelease);
    jc__cache_lease_renew(cache, ttl);
    jc__cache_commit(cache);
    return 0;
}

int jc__cache_write_own_hits(jc_cache *cache)
{
    if (!jc__cache_pending(cache) || !jc__cache_writable(cache) || jc__store_in_transaction(cache->store))
        return 0;
    int rc = jc__cache_write_begin(cache);
    return rc ? rc : jc__cache_write_end(cache, 0, true);
}

int jc__cache_sync_hits(jc_cache *cache)
{
    if (!jc__cache_writable(cache) || jc__store_in_transaction(cache->store))
        return 0;
    int64_t rows = 0, hits = 0;
    double saved = 0;
    if (!jc__cache_pending(cache) && (jc__store_hit_log_pending(cache->store, &rows, &hits, &saved) || !rows))
        return 0;
    /* The hits of this process, then the log of every process, into the
     * entries: what inspection shows per entry is then up to date. */
    int rc = jc__cache_write_begin(cache);
    return rc ? rc : jc__cache_write_end(cache, jc__cache_fold_hits(cache), true);
}
