/*
 * Looking results up: served only when their bytes match their checksum;
 * the code fingerprint of a hit.
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

/* Whether a stored result may be served: its bytes match its checksum. An
 * entry without one (a read-only look at a 0.1.0 file, or a row a 0.1.0
 * program wrote into a migrated file) is served as 0.1.0 served it. */
static bool result_sound(jc_cache *cache, const jc__hit *hit)
{
    if (!hit->has_check)
        return true;
    uint8_t check[JC__CHECK_LEN];
    jc__result_check(hit->result, hit->result_len, check);
    if (memcmp(check, hit->check, JC__CHECK_LEN) == 0)
        return true;
    cache->damaged++;
    return false;
}

typedef struct part_src {
    jc__store *store;
    const uint8_t *key;
} part_src;

static int read_part(void *ctx, uint32_t part, void *dst, size_t len)
{
    part_src *p = ctx;
    return jc__store_part_read(p->store, p->key, part, dst, len);
}

int jc__cache_decode_stored(jc__store *store, const uint8_t key[JC__KEY_LEN], const void *result, size_t len,
                            const uint8_t *check, jc_value **out)
{
    *out = NULL;
    if (!jc__result_in_pieces(result, len)) {
        if (check) {
            uint8_t got[JC__CHECK_LEN];
            jc__result_check(result, len, got);
            if (memcmp(got, check, JC__CHECK_LEN) != 0)
                return 1;
        }
        return jc__decode_value(result, len, out) ? 2 : 0;
    }
    /* The skeleton is copied: reading the parts calls the store, which
     * may reuse the buffer it points into. */
    void *skel = malloc(len);
    if (!skel)
        return jc__set_error(JC_ENOMEM, "out of memory reading a result");
    memcpy(skel, result, len);
    part_src src = {.store = store, .key = key};
    uint8_t got[JC__CHECK_LEN];
    int rc = jc__decode_result_pieces(skel, len, read_part, &src, got, out);
    free(skel);
    if (rc == JC_EDECODE)
        return 2; /* malformed, or a part missing or damaged */
    if (rc)
        return rc;
    if (check && memcmp(got, check, JC__CHECK_LEN) != 0) {
        jc_value_free(*out);
        *out = NULL;
        return 1;
    }
    return 0;
}

/* The value of a hit, served only when its bytes match its checksum
 * (counted as damaged when not): 0 and *out, 1 a miss, or a negative code. */
static int hit_value(jc_cache *cache, const uint8_t key[JC__KEY_LEN], const jc__hit *hit, jc_value **out)
{
    *out = NULL;
    if (!hit->has_check) {
        /* Results in pieces always have one: a row without is damaged. */
        cache->damaged++;
        return 1;
    }
    int rc = jc__cache_decode_stored(cache->store, key, hit->result, hit->result_len,
                                     hit->has_check ? hit->check : NULL, out);
    /* A part that is missing, cut short or does not decompress is damage
     * as much as one whose bytes changed. */
    if (rc == 1 || rc == 2)
        cache->damaged++;
    return rc > 0 ? 1 : rc;
}

static void found_from_hit(const jc__hit *hit, jc__found *f)
{
    f->seconds = hit->compute_seconds;
    f->created = hit->created;
    f->has_code_fp = hit->has_code_fp;
    if (hit->has_code_fp)
        memcpy(f->code_fp, hit->code_fp, JC__CHECK_LEN);
    /* A served result matches its checksum; one stored without (0.1.0)
     * gets it now. */
    f->has_check = true;
    if (hit->has_check)
        memcpy(f->check, hit->check, JC__CHECK_LEN);
    else if (hit->result)
        jc__result_check(hit->result, hit->result_len, f->check);
    else
        f->has_check = false;
}

int jc__cache_lookup(jc_cache *cache, const uint8_t key[JC__KEY_LEN], jc__found *found)
{
    memset(found, 0, sizeof *found);
    if (!cache->store || (cache->flags & JC_CACHE_RECOMPUTE))
        return 0;
    jc__hit hit;
    int rc = jc__store_get(cache->store, key, &hit);
    if (rc <= 0)
        return rc;
    /* A blob that does not match its checksum, or does not decode, is
     * treated as a miss: the call is computed again and its entry
     * overwritten. */
    if (!jc__result_in_pieces(hit.result, hit.result_len)) {
        if (!result_sound(cache, &hit) || jc__decode_value(hit.result, hit.result_len, &found->value)) {
            found->value = NULL;
            return 0;
        }
        found_from_hit(&hit, found);
        return 1;
    }
    /* A result in pieces: its row and its parts read in one snapshot. */
    bool held = jc__store_reading(cache->store);
    rc = jc__store_read_begin(cache->store);
    if (!rc && !held)
        rc = jc__store_get(cache->store, key, &hit);
    if (rc > 0 || (!rc && held)) {
        rc = hit_value(cache, key, &hit, &found->value);
        if (!rc)
            found_from_hit(&hit, found);
        rc = rc ? (rc > 0 ? 0 : rc) : 1;
    }
    if (!held)
        jc__store_read_end(cache->store);
    return rc;
}

/* A hit on a result in pieces, decoded after the lookups (which must not
 * call the store), in the same snapshot. */
typedef struct later {
    size_t i;
    jc__hit hit; /* result: the copy below */
    void *skeleton;
} later;

typedef struct many_ctx {
    jc__cache_found_fn found;
    void *ctx;
    jc_cache *cache;
    const uint8_t *const *keys;
    later *later;
    size_t nlater, caplater;
    bool oom;
} many_ctx;

static void on_many_hit(void *p, size_t i, const jc__hit *hit)
{
    many_ctx *m = p;
    jc__found f = {0};
    if (jc__result_in_pieces(hit->result, hit->result_len)) {
        void *copy = malloc(hit->result_len);
        if (!copy || JC__GROW(m->later, m->caplater, m->nlater + 1)) {
            free(copy);
            m->oom = true;
            return;
        }
        memcpy(copy, hit->result, hit->result_len);
        later *l = &m->later[m->nlater++];
        l->i = i;
        l->hit = *hit;
        l->hit.result = l->skeleton = copy;
        return;
    }
    if (!result_sound(m->cache, hit) || jc__decode_value(hit->result, hit->result_len, &f.value))
        return; /* damaged or does not decode: a miss, computed again and overwritten */
    found_from_hit(hit, &f);
    m->found(m->ctx, i, &f);
}

/* The results in pieces that on_many_hit put off. */
static int many_later(many_ctx *m, int rc)
{
    rc = rc ? rc : m->oom ? jc__set_error(JC_ENOMEM, "out of memory looking results up") : 0;
    for (size_t k = 0; k < m->nlater; k++) {
        later *l = &m->later[k];
        jc__found f = {0};
        if (!rc && (rc = hit_value(m->cache, m->keys[l->i], &l->hit, &f.value)) == 0) {
            found_from_hit(&l->hit, &f);
            m->found(m->ctx, l->i, &f);
        }
        rc = rc > 0 ? 0 : rc;
        free(l->skeleton);
    }
    free(m->later);
    return rc;
}

typedef int (*get_fn)(jc__store *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx);

/* keys looked up by get in one snapshot (a no-op inside a write
 * transaction), each hit passed through on_hit to found. */
static int lookup_keys(jc_cache *cache, const uint8_t *const *keys, size_t n, get_fn get, jc__hit_fn on_hit,
                       jc__cache_found_fn found, void *ctx)
{
    if (!cache->store || (cache->flags & JC_CACHE_RECOMPUTE) || !n)
        return 0;
    many_ctx m = {.found = found, .ctx = ctx, .cache = cache, .keys = keys};
    int rc = jc__store_read_begin(cache->store);
    if (!rc)
        rc = get(cache->store, keys, n, on_hit, &m);
    rc = many_later(&m, rc);
    jc__store_read_end(cache->store);
    return rc;
}

int jc__cache_lookup_many(jc_cache *cache, const uint8_t *const *keys, size_t n, jc__cache_found_fn found,
                          void *ctx)
{
    return lookup_keys(cache, keys, n, jc__store_get_many, on_many_hit, found, ctx);
}

static void on_check_hit(void *p, size_t i, const jc__hit *hit)
{
    many_ctx *m = p;
    jc__found f = {0};
    if (!hit->has_check)
        return; /* no checksum to key by: a miss, computed again */
    found_from_hit(hit, &f);
    m->found(m->ctx, i, &f);
}

int jc__cache_lookup_checks(jc_cache *cache, const uint8_t *const *keys, size_t n, jc__cache_found_fn found,
                            void *ctx)
{
    return lookup_keys(cache, keys, n, jc__store_get_checks, on_check_hit, found, ctx);
}

bool jc__cache_code_fp(const jc_function *fn, uint8_t out[16])
{
    /* A sweep stores results of one function after another: the last
     * function's fingerprint is kept (per thread; the fingerprint module
     * keeps them all, behind a lock). A library unloaded, and another loaded
     * at the same address, within one thread between two stores would keep
     * the old fingerprint: at worst a warning missed, never a wrong hit. */
    static _Thread_local const jc_function *last_fn;
    static _Thread_local jc_fn last_code;
    static _Thread_local uint8_t last_fp[16];
    static _Thread_local bool last_known;
    if (fn != last_fn || fn->fn != last_code) {
        uint8_t fp[16];
        last_known = jc__code_fingerprint(fn->fn, fp) == 1;
        last_fp[0] = JC__FINGERPRINT_SCHEME;
        memcpy(last_fp + 1, fp, 15);
        last_fn = fn;
        last_code = fn->fn;
    }
    if (last_known)
        memcpy(out, last_fp, 16);
    return last_known;
}

bool jc__cache_code_changed(const jc_function *fn, const jc__found *f)
{
    uint8_t fp[16];
    /* A fingerprint of another scheme (another jobcache's way of hashing
     * code) says nothing about this code: unknown, never a change. */
    return f->has_code_fp && f->code_fp[0] == JC__FINGERPRINT_SCHEME && jc__cache_code_fp(fn, fp) &&
           memcmp(fp, f->code_fp, sizeof fp) != 0;
}
