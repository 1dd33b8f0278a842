/*
 * Tending at the level of intent (cache/cache.h): removing a selection,
 * pruning by rules, removing one entry, adopting parameter names, vacuum and
 * backup. Each is one change of the cache (jc__cache_write_begin: the queued
 * hits written first; jc__cache_write_end: committed, or rolled back for a
 * dry run or a failure), so that inspection composes no transaction itself.
 */
#include "cache_int.h"

int jc__cache_remove_selected(jc_cache *cache, const jc__select *q, bool dry_run, int64_t *count, int64_t *bytes)
{
    int rc = jc__cache_write_begin(cache);
    if (rc)
        return rc;
    return jc__cache_write_end(cache, jc__store_remove(cache->store, q, count, bytes), !dry_run);
}

/* The rules of o in their documented order (jobcache.h), inside the
 * caller's transaction; count and bytes sum what each removed. */
static int prune_rules(jc_cache *cache, const jc_prune_options *o, int64_t *count, int64_t *bytes)
{
    int64_t c = 0, b = 0;
    /* Times later than now are written back as now first: every rule below
     * reads them as now anyway, and written back they age from today. */
    int rc = jc__store_clamp_future(cache->store, NULL);
    if (!rc && o->other_formats) {
        rc = jc__store_remove(cache->store, &(jc__select){.other_formats = true}, &c, &b);
        *count = jc__sum_sat(*count, c);
        *bytes = jc__sum_sat(*bytes, b);
    }
    if (!rc && o->stale_versions) {
        rc = jc__store_remove_stale(cache->store, &c, &b);
        *count = jc__sum_sat(*count, c);
        *bytes = jc__sum_sat(*bytes, b);
    }
    if (!rc && o->older_than > 0) {
        jc__select q = {.used_before = jc__used_before(o->older_than)};
        rc = jc__store_remove(cache->store, &q, &c, &b);
        *count = jc__sum_sat(*count, c);
        *bytes = jc__sum_sat(*bytes, b);
    }
    if (!rc && (o->max_entries > 0 || o->max_payload > 0)) {
        rc = jc__store_remove_lru(cache->store, o->max_entries, o->max_payload, &c, &b);
        *count = jc__sum_sat(*count, c);
        *bytes = jc__sum_sat(*bytes, b);
    }
    if (!rc && o->max_size > 0) {
        rc = jc__store_evict(cache->store, o->max_size, 0, &c, &b);
        *count = jc__sum_sat(*count, c);
        *bytes = jc__sum_sat(*bytes, b);
    }
    return rc;
}

int jc__cache_prune(jc_cache *cache, const jc_prune_options *o, bool dry_run, int64_t *count, int64_t *bytes)
{
    int rc = jc__cache_write_begin(cache);
    if (rc)
        return rc;
    return jc__cache_write_end(cache, prune_rules(cache, o, count, bytes), !dry_run);
}

int jc__cache_remove_entry(jc_cache *cache, const uint8_t key[JC__KEY_LEN])
{
    int rc = jc__cache_write_begin(cache);
    if (rc)
        return rc;
    return jc__cache_write_end(cache, jc__store_delete(cache->store, key), true);
}

int jc__cache_params_adopt(jc_cache *cache, const char *function, const char *version, const char *names)
{
    int rc = jc__cache_write_begin(cache);
    if (rc)
        return rc;
    return jc__cache_write_end(cache, jc__store_params_put(cache->store, function, version, names), true);
}

int jc__cache_zero_hits(jc_cache *cache, int64_t *count)
{
    int rc = jc__cache_write_begin(cache);
    if (rc)
        return rc;
    return jc__cache_write_end(cache, jc__store_zero_hits(cache->store, count), true);
}

int jc__cache_vacuum(jc_cache *cache)
{
    int rc = jc__cache_sync_hits(cache);
    return rc ? rc : jc__store_vacuum(cache->store);
}

int jc__cache_backup(jc_cache *cache, const char *dest)
{
    /* This process's hits not yet written go into the copy too. */
    jc__cache_sync_hits(cache);
    return jc__store_backup(cache->store, dest);
}

bool jc__cache_on_server(const jc_cache *cache)
{
    return cache && cache->path && jc__store_is_server(cache->path);
}

bool jc__cache_location_on_server(const char *location)
{
    return location && jc__store_is_server(location);
}

int64_t jc__cache_disk_bytes(jc_cache *cache)
{
    return cache && cache->store ? jc__store_disk_bytes(cache->store) : 0;
}

int jc__cache_by_result(jc_cache *cache, const uint8_t check[16], uint8_t key[JC__KEY_LEN])
{
    int rc = jc__store_by_check(cache->store, check, key);
    jc__store_read_end(cache->store);
    return rc;
}

int jc__cache_users(jc_cache *cache, const uint8_t check[16], jc__user_fn fn, void *ctx)
{
    int rc = jc__store_users(cache->store, check, fn, ctx);
    jc__store_read_end(cache->store);
    return rc;
}

int jc__cache_remove_keys(jc_cache *cache, const uint8_t *keys, size_t n, int64_t *removed)
{
    int rc = jc__cache_write_begin(cache);
    if (rc)
        return rc;
    int64_t k = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        int d = jc__store_delete(cache->store, keys + JC__KEY_LEN * i);
        if (d < 0)
            rc = d;
        else
            k += d;
    }
    rc = jc__cache_write_end(cache, rc, true);
    if (!rc && removed)
        *removed = k;
    return rc;
}
