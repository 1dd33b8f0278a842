/*
 * max_size: storing results under it, keeping the file within it by
 * eviction.
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

/* ---- max_size ---- */

/* Eviction goes down to this much below max_size, so that a run adding a
 * few entries to a full cache does not scan it again each time. */
static int64_t evict_target(int64_t max_size)
{
    return max_size - max_size / 10;
}

void jc__cache_settle(jc_cache *cache, int64_t limit)
{
    if (!jc__cache_writable(cache) || jc__store_in_transaction(cache->store))
        return;
    jc__store_checkpoint(cache->store);
    jc__store_size z;
    if (limit > 0 && jc__store_disk_bytes(cache->store) > limit && jc__store_size_get(cache->store, &z) == 0 &&
        !z.incremental) {
        /* A file made before auto_vacuum was set at creation keeps the
         * pages of removed entries: vacuumed once, it gives them back
         * from then on by itself (jc__store_vacuum). */
        jc__store_vacuum(cache->store);
    }
}

int64_t jc__cache_size_floor(jc_cache *cache)
{
    if (!cache->empty_bytes) {
        jc__store_size z;
        if (!cache->store || jc__store_size_get(cache->store, &z))
            return 0;
        cache->empty_bytes = z.empty_bytes + z.page_bytes; /* and a page of slack */
    }
    return cache->empty_bytes;
}

/* "1.5 MiB": bytes for a message. */
static void size_text(int64_t bytes, char *buf, size_t cap)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof *units) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%lld bytes", (long long)bytes);
    else
        snprintf(buf, cap, "%.1f %s", v, units[u]);
}

/* Adds what an eviction removed to the file's running totals (meta
 * stats.evicted and stats.evicted-bytes: jc_stats, zeroed by
 * jc_cache_zero_hits), in its transaction. Bookkeeping: a failure is not
 * the eviction's. */
static void count_evicted(jc_cache *cache, int64_t n, int64_t bytes)
{
    static const char *const names[] = {"stats.evicted", "stats.evicted-bytes"};
    int64_t add[] = {n, bytes};
    for (int i = 0; i < 2; i++) {
        char *v = NULL, text[32];
        long long now = 0;
        if (jc__store_meta_get(cache->store, names[i], &v) == 0 && v)
            now = strtoll(v, NULL, 10);
        free(v);
        snprintf(text, sizeof text, "%lld", now + (long long)add[i]);
        jc__store_meta_set(cache->store, names[i], text);
    }
}

/* Says once an epoch that it stopped at half of the entries with the file
 * still over max_size, by how much, and what brings it down. */
static void tell_over(jc_cache *cache, int64_t disk)
{
    if (cache->epoch_told || disk <= cache->max_size || cache->epoch_evicted < cache->epoch_base / 2)
        return;
    cache->epoch_told = true;
    char over[32], max[32];
    size_text(disk - cache->max_size, over, sizeof over);
    size_text(cache->max_size, max, sizeof max);
    fprintf(stderr,
            "jobcache: warning: the cache file '%s' is %s over its max_size of %s: a run evicts at most half of "
            "the entries it finds (%lld of %lld evicted), and stored its results over the limit; "
            "'jobcache prune --max-size %lld' brings it down, or raise max_size\n",
            cache->path ? cache->path : "", over, max, (long long)cache->epoch_evicted,
            (long long)cache->epoch_base, (long long)cache->max_size);
}

int jc__cache_enforce_size(jc_cache *cache)
{
    if (cache->max_size <= 0 || !jc__cache_writable(cache) || jc__store_in_transaction(cache->store))
        return 0;
    /* The check that every run and every stored jc_memo result makes: two
     * stat() calls, whatever the number of entries. */
    if (jc__store_disk_bytes(cache->store) <= cache->max_size)
        return 0;
    /* Over: first the -wal file, which a checkpoint may empty. */
    if (jc__store_checkpoint(cache->store) < 0)
        return jc_errcode();
    if (jc__store_disk_bytes(cache->store) <= cache->max_size)
        return 0;
    int rc = jc__store_begin(cache->store);
    if (rc)
        return rc;
    /* An entry just hit counts as used: this process's hits, and the hit
     * log of every process, folded into last_used first. */
    jc__cache_flush_touches(cache);
    if (jc__store_in_transaction(cache->store))
        jc__cache_fold_hits(cache);
    /* At most half of the entries the epoch found (issue 23: an absurd
     * limit emptied a cache of 794 entries without a word). */
    if (cache->epoch_base < 0)
        rc = jc__store_count(cache->store, &cache->epoch_base);
    int64_t allowed = cache->epoch_base / 2 - cache->epoch_evicted, n = 0, bytes = 0;
    if (!rc && allowed > 0)
        rc = jc__store_evict(cache->store, evict_target(cache->max_size), allowed, &n, &bytes);
    if (!rc && n > 0)
        count_evicted(cache, n, bytes);
    if (rc) {
        jc__store_rollback(cache->store);
        if (cache->epoch_evicted == 0)
            cache->epoch_base = -1; /* counted again next time */
        return rc;
    }
    rc = jc__cache_commit(cache);
    if (!rc) {
        cache->evicted += n;
        cache->evicted_bytes += bytes;
        cache->epoch_evicted += n;
        jc__cache_settle(cache, cache->max_size);
        int64_t disk = jc__store_disk_bytes(cache->store);
        tell_over(cache, disk);
        /* Within the limit again: the next time it is over starts a new
         * epoch (a loop of jc_memo calls keeps evicting what it adds). */
        if (disk <= cache->max_size)
            jc__cache_evict_epoch(cache);
    }
    return rc;
}

/* Whether an entry of payload bytes could be kept within max_size even
 * alone; when not, warns once per function. */
static bool fits(jc_cache *cache, const jc_function *fn, size_t payload)
{
    if (cache->max_size <= 0)
        return true;
    if (!jc__cache_size_floor(cache))
        return true; /* unknown: stored, and eviction decides */
    int64_t room = evict_target(cache->max_size) - cache->empty_bytes;
    if ((uint64_t)payload <= (uint64_t)(room > 0 ? room : 0))
        return true;
    for (size_t i = 0; i < cache->ntoo_large; i++)
        if (cache->too_large[i] == fn)
            return false;
    if (!JC__GROW(cache->too_large, cache->captoo_large, cache->ntoo_large + 1))
        cache->too_large[cache->ntoo_large++] = fn;
    fprintf(stderr,
            "jobcache: warning: a result of %s (version %s) takes %zu bytes with its arguments, more than a "
            "cache of max_size %lld bytes can keep (an empty cache takes %lld): it is not stored, and is "
            "computed again by every run that needs it; raise max_size to keep it\n",
            fn->name, fn->version, payload, (long long)cache->max_size, (long long)cache->empty_bytes);
    return false;
}

int jc__cache_put(jc_cache *cache, const uint8_t key[JC__KEY_LEN], const jc_function *fn,
                  jc_value *const *argv, size_t argc, const jc_value *value, const void *blob,
                  size_t blob_len, double seconds, double now)
{
    jc__buf args = {0}, res = {0};
    jc__split split = {0};
    size_t parts_len = 0;
    /* The arguments as the key holds them: those fn leaves out, as the
     * placeholder (so that verify recomputes the key from them). */
    bool stackmask[64], *left = argc <= 64 ? stackmask : malloc(argc * sizeof *left);
    int rc = 0;
    /* Most calls of a sweep: ints and doubles, and a scalar result, written
     * straight into buffers here (the same bytes as through msgpack-c). */
    unsigned char args_fast[3 + 9 * 15], res_fast[9];
    const void *args_data = NULL;
    size_t args_len = 0;
    if (!left) {
        rc = jc__set_error(JC_ENOMEM, "out of memory storing a result of %s", fn->name);
    } else {
        const bool *mask = jc__function_left_out(fn, argv, argc, left) ? left : NULL;
        args_len = jc__encode_args_scalars(argv, argc, mask, args_fast, sizeof args_fast);
        if (args_len) {
            args_data = args_fast;
        } else {
            rc = jc__encode_args_left_out(argv, argc, mask, jc__buf_write, &args);
            args_data = args.data;
            args_len = args.len;
        }
    }
    if (left != stackmask)
        free(left);
    /* A result with a large string, bytes or array is stored in pieces
     * (docs/format.md): split from its value. An encoding from a worker
     * too small to hold one is stored as it came. */
    if (!rc && value && (!blob || blob_len >= JC__PIECE_MIN) && jc__value_has_part(value)) {
        rc = jc__encode_result_split(value, &split);
        blob = split.stored.data;
        blob_len = split.stored.len;
        for (size_t i = 0; i < split.npieces; i++)
            parts_len += split.pieces[i].len;
    } else if (!rc && !blob && (blob_len = jc__encode_result_scalar(value, res_fast)) != 0) {
        blob = res_fast;
    } else if (!rc && !blob) {
        rc = jc__encode_result(value, jc__buf_write, &res);
        blob = res.data;
        blob_len = res.len;
    }
    if (!rc && (args.oom || res.oom))
        rc = jc__set_error(JC_ENOMEM, "out of memory encoding a result of %s", fn->name);
    if (!rc && !fits(cache, fn, args_len + blob_len + parts_len))
        rc = 1;
    if (!rc) {
        uint8_t fp[JC__CHECK_LEN];
        jc__entry_in e = {
            .key = key,
            .function = fn->name,
            .version = fn->version,
            .args = args_data,
            .args_len = args_len,
            .result = blob ? blob : "",
            .result_len = blob_len,
            .compute_seconds = seconds,
            .now = now,
            .code_fp = jc__cache_code_fp(fn, fp) ? fp : NULL,
            .pieces = split.pieces,
            .npieces = split.npieces,
            .check = split.npieces ? split.check : NULL,
            .compress_level = cache->compress_level,
        };
        rc = jc__store_put(cache->store, &e);
        /* The names of its parameters, in the same transaction. */
        size_t n = 0;
        const char *const *names = rc ? NULL : jc__function_params(fn, &n);
        if (names && n) {
            jc__buf nb = {0};
            for (size_t i = 0; i < n; i++) {
                if (i)
                    jc__buf_write(&nb, ",", 1);
                jc__buf_write(&nb, names[i], strlen(names[i]));
            }
            jc__buf_write(&nb, "", 1);
            rc = nb.oom ? jc__set_error(JC_ENOMEM, "out of memory recording the parameters of %s", fn->name)
                        : jc__store_params_put(cache->store, fn->name, fn->version, nb.data);
            jc__buf_free(&nb);
        }
    }
    jc__buf_free(&args);
    jc__buf_free(&res);
    jc__split_free(&split);
    return rc;
}
