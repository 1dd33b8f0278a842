/*
 * Memo sessions (jc_memo_session_begin, jc_memo_session_end): one read
 * snapshot of the store held across a loop of jc_memo calls, renewed when
 * older than a bound, and the results already read answered from memory,
 * under a byte limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "cache_int.h"

enum { MIB = 1 << 20 };
#define DEFAULT_SNAPSHOT_SECONDS 1.0
#define DEFAULT_MEMORY ((int64_t)64 * MIB)

/* Roughly what a value takes in memory, for the session's byte limit. */
static size_t value_bytes(const jc_value *v)
{
    if (!v)
        return 0;
    size_t n = sizeof *v;
    switch ((jc_type)v->type) {
    case JC_TYPE_STR:
    case JC_TYPE_BYTES: return n + v->len;
    case JC_TYPE_DOUBLES:
    case JC_TYPE_INTS: return n + 8 * v->len;
    case JC_TYPE_LIST:
    case JC_TYPE_MAP:
        for (size_t i = 0; i < v->len; i++)
            n += value_bytes(v->u.items[i]) + sizeof(void *) + (v->type == JC_TYPE_MAP ? 16 : 0);
        return n;
    case JC_TYPE_KWARG: return n + value_bytes(v->u.kw.val) + 16;
    default: return n + 32;
    }
}

static void free_slots(jc_cache *cache)
{
    for (size_t i = 0; i < cache->session.cap; i++)
        jc_value_free(cache->session.slots[i].value);
    free(cache->session.slots);
    cache->session.slots = NULL;
    cache->session.cap = cache->session.n = 0;
    cache->session.bytes = 0;
}

/* The slot of key: its own, or the empty one where it would go. */
static jc__mslot *slot_of(jc_cache *cache, const uint8_t key[JC__KEY_LEN])
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    size_t mask = cache->session.cap - 1;
    for (size_t at = (size_t)h & mask;; at = (at + 1) & mask) {
        jc__mslot *s = &cache->session.slots[at];
        if (!s->value || memcmp(s->key, key, JC__KEY_LEN) == 0)
            return s;
    }
}

/* Room for one more slot (a table at most half full); false when out of
 * memory (nothing more is kept then). */
static bool make_room(jc_cache *cache)
{
    if (2 * (cache->session.n + 1) <= cache->session.cap)
        return true;
    size_t cap = cache->session.cap ? 2 * cache->session.cap : 1024;
    jc__mslot *old = cache->session.slots, *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return false;
    size_t old_cap = cache->session.cap;
    cache->session.slots = slots;
    cache->session.cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].value)
            *slot_of(cache, old[i].key) = old[i];
    free(old);
    return true;
}

/* Ends the snapshot and writes the hits counted so far, those answered
 * from memory with them, one record per key (bookkeeping: a failure leaves
 * them queued for the next chance). */
static void let_go(jc_cache *cache)
{
    jc__store_read_end(cache->store);
    for (size_t i = 0; cache->session.hits && i < cache->session.cap; i++) {
        jc__mslot *s = &cache->session.slots[i];
        if (s->value && s->hits) {
            jc__cache_touch_n(cache, s->key, (uint32_t)(s->hits > UINT32_MAX ? UINT32_MAX : s->hits),
                              s->seconds * (double)s->hits);
            s->hits = 0;
        }
    }
    cache->session.hits = 0;
    cache->session.hits_saved = 0;
    if (!cache->ntouched || !jc__cache_writable(cache) || jc__store_begin(cache->store) != 0)
        return;
    if (jc__cache_flush_touches(cache) == 0)
        jc__cache_commit(cache);
    else
        jc__store_rollback(cache->store);
}

int jc_memo_session_begin(jc_cache *cache, const jc_memo_session_options *opts)
{
    if (!cache)
        return jc__set_error(JC_EINVAL, "jc_memo_session_begin: NULL cache");
    if (cache->session.active)
        return jc__set_error(JC_EINVAL, "jc_memo_session_begin: cache '%s' is already in a memo session "
                             "(jc_memo_session_end ends it)", cache->path ? cache->path : "(disabled)");
    if (jc__cache_busy_elsewhere(cache))
        return jc__set_error(JC_EBUSY, "jc_memo_session_begin: this cache is running a batch in another "
                             "thread; a cache is used by one thread at a time");
    double max_age = opts && opts->max_snapshot_seconds > 0 ? opts->max_snapshot_seconds : DEFAULT_SNAPSHOT_SECONDS;
    int64_t max_memory = opts && opts->max_memory ? opts->max_memory : DEFAULT_MEMORY;
    const char *age = jc__env(cache, "JOBCACHE_MEMO_SNAPSHOT"), *mem = jc__env(cache, "JOBCACHE_MEMO_MEMORY");
    if (age && (jc_parse_age(age, &max_age) || max_age <= 0))
        return jc__set_error(JC_EINVAL, "JOBCACHE_MEMO_SNAPSHOT='%s' is not an age above 0 (a number and its "
                             "unit, as jc_parse_age reads them: 0.5s, 2s, 1m)", age);
    if (mem && jc_parse_size(mem, &max_memory))
        return jc__set_error(JC_EINVAL, "JOBCACHE_MEMO_MEMORY: %s", jc_errmsg());
    cache->session.active = true;
    cache->session.max_age = max_age;
    cache->session.max_bytes = max_memory > 0 ? (size_t)max_memory : 0;
    cache->session.snapshot_at = -1; /* taken by the first call */
    return 0;
}

int jc_memo_session_end(jc_cache *cache)
{
    if (!cache || !cache->session.active)
        return jc__set_error(JC_EINVAL, "jc_memo_session_end: %s", cache ? "no memo session was begun on this cache"
                                                                          : "NULL cache");
    if (cache->store)
        let_go(cache);
    free_slots(cache);
    cache->session.active = false;
    return 0;
}

bool jc__cache_in_session(const jc_cache *cache)
{
    return cache->session.active;
}

void jc__cache_session_tick(jc_cache *cache)
{
    if (cache->store && jc__store_reading(cache->store) &&
        jc__monotonic() - cache->session.snapshot_at > cache->session.max_age)
        let_go(cache);
}

void jc__cache_session_release(jc_cache *cache)
{
    if (cache->store)
        jc__store_read_end(cache->store);
}

void jc__cache_session_hold(jc_cache *cache)
{
    if (!cache->store)
        return;
    double now = jc__monotonic();
    bool held = jc__store_reading(cache->store);
    if (held && now - cache->session.snapshot_at <= cache->session.max_age)
        return;
    if (held)
        let_go(cache); /* a second old: renewed, so that checkpoints go on */
    if (jc__store_read_begin(cache->store) == 0)
        cache->session.snapshot_at = now;
}

int jc__cache_session_recall(jc_cache *cache, const uint8_t key[JC__KEY_LEN], jc__found *found)
{
    if (!cache->session.n || (cache->flags & JC_CACHE_RECOMPUTE))
        return 0;
    const jc__mslot *s = slot_of(cache, key);
    if (!s->value)
        return 0;
    jc_value *copy = jc_value_copy(s->value);
    if (!copy)
        return 0; /* out of memory: read again */
    memset(found, 0, sizeof *found);
    found->value = copy;
    found->seconds = s->seconds;
    /* Counted here, written with the session's other hits: one statement
     * per key, however often it was asked. */
    ((jc__mslot *)s)->hits++;
    cache->session.hits++;
    cache->session.hits_saved += s->seconds;
    return 1;
}

bool jc__cache_session_keep(jc_cache *cache, const uint8_t key[JC__KEY_LEN], const jc_value *value, double seconds,
                            bool hit)
{
    if (!cache->store || (cache->flags & JC_CACHE_RECOMPUTE))
        return false; /* a disabled cache, or one recomputing, computes every call */
    size_t bytes = value_bytes(value);
    if (bytes > cache->session.max_bytes || cache->session.bytes > cache->session.max_bytes - bytes ||
        !make_room(cache))
        return false;
    jc__mslot *s = slot_of(cache, key);
    if (s->value)
        return false; /* kept already */
    jc_value *copy = jc_value_copy(value);
    if (!copy)
        return false;
    memcpy(s->key, key, JC__KEY_LEN);
    s->value = copy;
    s->seconds = seconds;
    s->hits = hit;
    cache->session.hits += hit;
    cache->session.hits_saved += hit ? seconds : 0;
    cache->session.n++;
    cache->session.bytes += bytes;
    return true;
}
