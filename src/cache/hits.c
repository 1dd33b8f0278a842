/*
 * Hit bookkeeping: hits are queued and written with the next write
 * transaction (or at close), so that a hit costs one lookup.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "function/fingerprint.h"
#include "cache_int.h"
#include "util/keysort.h"

static uint32_t record_count(const uint8_t *r)
{
    const uint8_t *c = r + JC__KEY_LEN;
    return (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
}

static void record_set_count(uint8_t *r, uint32_t c)
{
    uint8_t *p = r + JC__KEY_LEN;
    p[0] = (uint8_t)c, p[1] = (uint8_t)(c >> 8), p[2] = (uint8_t)(c >> 16), p[3] = (uint8_t)(c >> 24);
}

/* Queues count hits of key that saved seconds in all, as a record of the
 * hit log. */
static void queue_hits(jc_cache *cache, const uint8_t key[JC__KEY_LEN], uint32_t count, double seconds, double now)
{
    if (cache->ntouched == cache->touched_cap) {
        size_t cap = cache->touched_cap ? cache->touched_cap * 2 : 256;
        uint8_t *t = cap <= SIZE_MAX / JC__HIT_RECORD ? realloc(cache->touched, cap * JC__HIT_RECORD) : NULL;
        if (!t)
            return; /* out of memory: this hit goes uncounted, nothing else is lost */
        cache->touched = t;
        cache->touched_cap = cap;
    }
    uint8_t *r = cache->touched + JC__HIT_RECORD * cache->ntouched;
    memcpy(r, key, JC__KEY_LEN);
    record_set_count(r, count);
    cache->ntouched++;
    cache->touched_hits += count;
    cache->touched_saved += seconds;
    cache->touched_last = now > 0 ? now : jc__now();
}

void jc__cache_touch_reserve(jc_cache *cache, size_t more)
{
    if (!jc__cache_writable(cache) || cache->touched_cap - cache->ntouched >= more ||
        more > SIZE_MAX / JC__HIT_RECORD - cache->ntouched)
        return;
    uint8_t *t = realloc(cache->touched, (cache->ntouched + more) * JC__HIT_RECORD);
    if (t) /* else the queue grows as hits come */
        cache->touched = t, cache->touched_cap = cache->ntouched + more;
}

void jc__cache_touch_n(jc_cache *cache, const uint8_t key[JC__KEY_LEN], uint32_t count, double seconds)
{
    if (jc__cache_writable(cache) && count)
        queue_hits(cache, key, count, seconds, 0);
}

void jc__cache_touch(jc_cache *cache, const jc__found *f, const uint8_t key[JC__KEY_LEN])
{
    jc__cache_touch_at(cache, f, key, 0);
}

void jc__cache_touch_at(jc_cache *cache, const jc__found *f, const uint8_t key[JC__KEY_LEN], double now)
{
    if (!jc__cache_writable(cache))
        return;
    queue_hits(cache, key, 1, f->seconds, now);
    /* A program that only ever hits (jc_memo in a loop) still writes its hit
     * counts now and then. Not during a run, which writes them itself, nor
     * in a memo session, which writes them when it renews its snapshot; and
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

/* The queued hits made one row of the hit log (store.h), in place: the
 * records in key order, a key hit several times (jc_memo in a loop) once
 * with its count. Returns the records left. */
static size_t sort_queue(jc_cache *cache)
{
    size_t n = cache->ntouched, out = 0;
    /* Keys are hashes: about 100 instructions each, qsort 900. */
    uint8_t *rec = jc__keysort_move(cache->touched, n, JC__HIT_RECORD);
    if (rec != cache->touched)
        cache->touched = rec, cache->touched_cap = n;
    for (size_t i = 0; i < n; i++) {
        uint8_t *r = rec + JC__HIT_RECORD * i;
        if (out && memcmp(rec + JC__HIT_RECORD * (out - 1), r, JC__KEY_LEN) == 0) {
            uint32_t prev = record_count(rec + JC__HIT_RECORD * (out - 1)), c = record_count(r);
            record_set_count(rec + JC__HIT_RECORD * (out - 1), prev > UINT32_MAX - c ? UINT32_MAX : prev + c);
            continue;
        }
        if (out != i)
            memcpy(rec + JC__HIT_RECORD * out, r, JC__HIT_RECORD);
        out++;
    }
    cache->ntouched = out;
    return out;
}

void jc__cache_touches_committed(jc_cache *cache, uint64_t txn)
{
    if (!cache->touch_flushed || cache->touch_txn != txn)
        return;
    size_t n = cache->touch_flushed, rest = cache->ntouched - n;
    memmove(cache->touched, cache->touched + JC__HIT_RECORD * n, rest * JC__HIT_RECORD);
    cache->touched_hits -= cache->flushed_hits;
    cache->touched_saved = rest ? cache->touched_saved - cache->flushed_saved : 0;
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
    /* One row of the hit log, whatever the number of hits: no entry's row
     * is written (folded later, jc__cache_fold_hits). All of them get the
     * time of the latest: last_used orders eviction, and a few
     * milliseconds do not change that order. */
    size_t n = sort_queue(cache);
    int rc = jc__store_hit_log_add(cache->store, cache->touched_last, (int64_t)cache->touched_hits,
                                   cache->touched_saved, cache->touched, n * JC__HIT_RECORD);
    /* The log is folded now and then, so that it stays short. */
    int64_t rows = 0, hits = 0;
    double s = 0;
    if (!rc && current && jc__store_hit_log_pending(cache->store, &rows, &hits, &s) == 0 &&
        rows >= JC__HIT_LOG_FOLD_EVERY)
        rc = jc__store_hit_log_fold(cache->store, NULL);
    /* A failure may be committed anyway by the caller (hit counts are
     * bookkeeping): they count as written in this transaction, so that none
     * is written twice; if it rolls back, all of them are written again. */
    if (current == 0) { /* outside a transaction: committed */
        cache->ntouched = 0, cache->touched_hits = 0, cache->touched_saved = 0;
    } else {
        cache->touch_flushed = n, cache->touch_txn = current;
        cache->flushed_hits = cache->touched_hits, cache->flushed_saved = cache->touched_saved;
    }
    return rc;
}

int jc__cache_fold_hits(jc_cache *cache)
{
    return jc__store_hit_log_fold(cache->store, NULL);
}

void jc__cache_pending_hits(jc_cache *cache, int64_t *hits, double *saved)
{
    jc__cache_settle_touches(cache);
    *hits = (int64_t)cache->touched_hits + cache->session.hits;
    *saved = cache->session.hits_saved + cache->touched_saved;
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
    cache->touched_hits = 0;
    cache->touched_saved = 0;
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

/* ---- the hit log by key, for reading without folding ---- */

/* An open-addressing table of the log's keys, at most half full. */
typedef struct pending_hit {
    uint8_t key[JC__KEY_LEN];
    bool used;
    int64_t hits;
    double at;
} pending_hit;

struct jc__pending_map {
    pending_hit *slots;
    size_t cap, n;
};

static pending_hit *pending_slot(pending_hit *slots, size_t cap, const uint8_t key[JC__KEY_LEN])
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    for (size_t at = (size_t)h & (cap - 1);; at = (at + 1) & (cap - 1))
        if (!slots[at].used || memcmp(slots[at].key, key, JC__KEY_LEN) == 0)
            return &slots[at];
}

static int add_pending(void *ctx, double at, int64_t hits, double saved, const void *blob, size_t len)
{
    (void)hits, (void)saved;
    jc__pending_map *p = ctx;
    const uint8_t *rec = blob;
    for (size_t off = 0; off < len; off += JC__HIT_RECORD) {
        if (2 * (p->n + 1) > p->cap) {
            size_t cap = p->cap ? 2 * p->cap : 1024;
            pending_hit *slots = calloc(cap, sizeof *slots);
            if (!slots)
                return jc__set_error(JC_ENOMEM, "out of memory reading the hit log");
            for (size_t i = 0; i < p->cap; i++)
                if (p->slots[i].used)
                    *pending_slot(slots, cap, p->slots[i].key) = p->slots[i];
            free(p->slots);
            p->slots = slots;
            p->cap = cap;
        }
        pending_hit *s = pending_slot(p->slots, p->cap, rec + off);
        if (!s->used) {
            memcpy(s->key, rec + off, JC__KEY_LEN);
            s->used = true;
            p->n++;
        }
        const uint8_t *c = rec + off + JC__KEY_LEN;
        int64_t n = (int64_t)((uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24);
        s->hits = s->hits > INT64_MAX - n ? INT64_MAX : s->hits + n;
        if (at > s->at)
            s->at = at;
    }
    return 0;
}

int jc__cache_pending_map(jc_cache *cache, jc__pending_map **out)
{
    *out = NULL;
    jc__pending_map *m = calloc(1, sizeof *m);
    if (!m)
        return jc__set_error(JC_ENOMEM, "out of memory reading the hit log");
    int rc = jc__store_hit_log_each(cache->store, add_pending, m);
    if (rc || !m->n) {
        jc__pending_map_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void jc__pending_apply(const jc__pending_map *m, const uint8_t key[JC__KEY_LEN], int64_t *hits, double *last_used)
{
    if (!m)
        return;
    const pending_hit *s = pending_slot(m->slots, m->cap, key);
    if (!s->used)
        return;
    *hits = *hits > INT64_MAX - s->hits ? INT64_MAX : *hits + s->hits;
    if (s->at > *last_used)
        *last_used = s->at;
}

int jc__pending_each(const jc__pending_map *m, int (*fn)(void *ctx, const uint8_t key[JC__KEY_LEN], int64_t hits),
                     void *ctx)
{
    for (size_t i = 0; m && i < m->cap; i++)
        if (m->slots[i].used) {
            int rc = fn(ctx, m->slots[i].key, m->slots[i].hits);
            if (rc)
                return rc;
        }
    return 0;
}

void jc__pending_map_free(jc__pending_map *m)
{
    if (m)
        free(m->slots);
    free(m);
}
