/*
 * Hit bookkeeping: hits are queued and written with the next write
 * transaction (or at close), so that a hit costs one lookup.
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

void jc__cache_touch(jc_cache *cache, const jc__found *f, const uint8_t key[JC__KEY_LEN])
{
    if (!jc__cache_writable(cache))
        return;
    if (cache->ntouched == cache->touched_cap) {
        size_t cap = cache->touched_cap ? cache->touched_cap * 2 : 256;
        uint8_t *t = realloc(cache->touched, cap * JC__KEY_LEN);
        if (t)
            cache->touched = t;
        double *secs = realloc(cache->touched_secs, cap * sizeof *secs);
        if (secs)
            cache->touched_secs = secs;
        int64_t *ids = realloc(cache->touched_rowids, cap * sizeof *ids);
        if (ids)
            cache->touched_rowids = ids;
        if (!t || !secs || !ids)
            return; /* out of memory: this hit goes uncounted, nothing else is lost */
        cache->touched_cap = cap;
    }
    if (cache->ntouched == 0) {
        cache->touch_ver_data = f->ver_data;
        cache->touch_ver_deletes = f->ver_deletes;
        cache->touch_ver_ok = f->ver_data >= 0;
    } else if (f->ver_data != cache->touch_ver_data || f->ver_deletes != cache->touch_ver_deletes) {
        cache->touch_ver_ok = false;
    }
    memcpy(cache->touched + JC__KEY_LEN * cache->ntouched, key, JC__KEY_LEN);
    cache->touched_secs[cache->ntouched] = f->seconds;
    cache->touched_rowids[cache->ntouched] = f->rowid;
    cache->ntouched++;
    cache->touched_last = jc__now();
    /* A program that only ever hits (jc_memo in a loop) still writes its hit
     * counts now and then. Not during a run, which writes them itself; and
     * after a failed attempt (the file locked by another process) only
     * 4096 hits later, so that a locked file costs one busy timeout per 4096
     * hits, not one per hit. */
    if (!cache->running && !cache->session.active &&
        cache->ntouched >= (cache->touch_flush_at ? cache->touch_flush_at : 4096)) {
        if (jc__store_begin(cache->store) == 0) {
            jc__cache_flush_touches(cache);
            jc__cache_commit(cache);
            cache->touch_flush_at = 0;
        } else {
            cache->touch_flush_at = cache->ntouched + 4096;
        }
    }
}

static int cmp_key(const void *a, const void *b)
{
    return memcmp(a, b, JC__KEY_LEN);
}

/* Whether the queued keys are distinct. Sorting them also puts the updates
 * in index order, which is kinder to the page cache. (The compute seconds
 * beside them are only needed before a flush, by jc_cache_stats.) */
static bool distinct_keys(jc_cache *cache)
{
    qsort(cache->touched, cache->ntouched, JC__KEY_LEN, cmp_key);
    for (size_t i = 1; i < cache->ntouched; i++)
        if (memcmp(cache->touched + JC__KEY_LEN * i, cache->touched + JC__KEY_LEN * (i - 1), JC__KEY_LEN) == 0)
            return false;
    return true;
}

static int cmp_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Whether the queued rowids are distinct (jc_memo may hit one entry many
 * times: those are counted one by one); sorts them, in table order. Called
 * only on the way to recording by rowid, after which the queue is emptied:
 * the keys beside them are not needed any more. */
static bool distinct_rowids(jc_cache *cache)
{
    qsort(cache->touched_rowids, cache->ntouched, sizeof *cache->touched_rowids, cmp_int64);
    for (size_t i = 1; i < cache->ntouched; i++)
        if (cache->touched_rowids[i] == cache->touched_rowids[i - 1])
            return false;
    return true;
}

/* Queued keys that repeat (jc_memo in a loop hits one entry many times),
 * sorted by distinct_keys: one statement per distinct key, with its count. */
static int touch_each(jc_cache *cache, double at)
{
    int rc = 0;
    for (size_t i = 0; i < cache->ntouched && !rc;) {
        const uint8_t *key = cache->touched + JC__KEY_LEN * i;
        size_t j = i + 1;
        while (j < cache->ntouched && memcmp(cache->touched + JC__KEY_LEN * j, key, JC__KEY_LEN) == 0)
            j++;
        rc = jc__store_touch_n(cache->store, key, (int64_t)(j - i), at);
        i = j;
    }
    return rc;
}

void jc__cache_touches_committed(jc_cache *cache, uint64_t txn)
{
    if (!cache->touch_flushed || cache->touch_txn != txn)
        return;
    size_t n = cache->touch_flushed, rest = cache->ntouched - n;
    memmove(cache->touched, cache->touched + JC__KEY_LEN * n, rest * JC__KEY_LEN);
    memmove(cache->touched_rowids, cache->touched_rowids + n, rest * sizeof *cache->touched_rowids);
    memmove(cache->touched_secs, cache->touched_secs + n, rest * sizeof *cache->touched_secs);
    cache->ntouched = rest;
    cache->touch_flushed = 0;
}

void jc__cache_settle_touches(jc_cache *cache)
{
    /* Every commit goes through jc__cache_commit, which drops the hits its
     * transaction wrote: a transaction that ended otherwise rolled back. */
    if (cache->touch_flushed && jc__store_txn_id(cache->store) != cache->touch_txn)
        cache->touch_flushed = 0; /* all of them are still to write */
}

int jc__cache_flush_touches(jc_cache *cache)
{
    jc__cache_settle_touches(cache);
    if (!cache->ntouched)
        return 0;
    uint64_t current = jc__store_txn_id(cache->store);
    if (cache->touch_flushed && current == cache->touch_txn)
        return 0; /* written in this transaction; hits since wait for the next */
    /* All queued hits get the time of the latest: last_used orders
     * eviction, and a few milliseconds do not change that order. A key hit
     * twice (jc_memo in a loop) is counted twice, as the chunked statement
     * would count it once: those go one by one. Hits are recorded by key,
     * not rowid: an entry removed and stored anew since (its rowid reused)
     * must not get another entry's hits. */
    double latest = cache->touched_last;
    int rc;
    /* By rowid when every queued hit was found under the store's current
     * version (no other process has committed since, this one removed
     * nothing): a rowid cannot name another entry then, and the rowid
     * B-tree is what the update walks anyway. Else by key. */
    jc__store_ver now;
    if (cache->touch_ver_ok && jc__store_version(cache->store, &now) == 0 && now.data == cache->touch_ver_data &&
        now.deletes == cache->touch_ver_deletes && distinct_rowids(cache))
        rc = jc__store_touch_rowids(cache->store, cache->touched_rowids, cache->ntouched, latest);
    else
        rc = distinct_keys(cache) ? jc__store_touch_many(cache->store, cache->touched, cache->ntouched, latest)
                                  : touch_each(cache, latest);
    /* A failure may have written some chunks and the caller may commit
     * anyway (hit counts are bookkeeping): they count as written in this
     * transaction, so that none is written twice; if it rolls back, all of
     * them are written again. */
    if (current == 0)
        cache->ntouched = 0; /* outside a transaction: each statement committed */
    else
        cache->touch_flushed = cache->ntouched, cache->touch_txn = current;
    return rc;
}

void jc__cache_pending_hits(jc_cache *cache, int64_t *hits, double *saved)
{
    jc__cache_settle_touches(cache);
    *hits = (int64_t)cache->ntouched + cache->session.hits;
    *saved = cache->session.hits_saved;
    for (size_t i = 0; i < cache->ntouched; i++)
        *saved += cache->touched_secs[i];
}

int jc__cache_write_begin(jc_cache *cache)
{
    int rc = jc__store_begin(cache->store);
    if (rc)
        return rc;
    rc = jc__cache_flush_touches(cache);
    if (rc)
        jc__store_rollback(cache->store);
    return rc;
}

int jc__cache_write_end(jc_cache *cache, int rc, bool keep)
{
    if (rc < 0 || !keep) {
        jc__store_rollback(cache->store);
        return rc;
    }
    int c = jc__cache_commit(cache);
    return c ? c : rc;
}

/* ---- the queue's state, and the commit that settles it ---- */

size_t jc__cache_pending(jc_cache *cache)
{
    jc__cache_settle_touches(cache);
    return cache->ntouched;
}

void jc__cache_drop_pending(jc_cache *cache)
{
    cache->ntouched = 0;
    cache->touch_flushed = 0;
}

int jc__cache_commit(jc_cache *cache)
{
    uint64_t txn = jc__store_txn_id(cache->store);
    int rc = jc__store_commit(cache->store);
    if (!rc && !jc__store_in_transaction(cache->store))
        jc__cache_touches_committed(cache, txn);
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
