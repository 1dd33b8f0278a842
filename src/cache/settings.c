/*
 * Settings kept in the file (max-size, log-runs): jc_cache_config_*.
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

/* ---- settings kept in the file ---- */

static const char *const config_keys[] = {"max-size", "log-runs", "compress"};

static int config_key(const char *key, char *meta, size_t cap)
{
    for (size_t i = 0; i < sizeof config_keys / sizeof *config_keys; i++)
        if (key && strcmp(key, config_keys[i]) == 0) {
            snprintf(meta, cap, "config.%s", key);
            return 0;
        }
    return jc__set_error(JC_EINVAL, "unknown setting '%s' (known: max-size, log-runs, compress)", key ? key : "(null)");
}

int jc_cache_config_set(jc_cache *cache, const char *key, const char *value)
{
    char meta[64];
    if (!cache || !cache->store)
        return jc__set_error(JC_EINVAL, "jc_cache_config_set: %s", cache ? "the cache is disabled" : "NULL cache");
    int rc = config_key(key, meta, sizeof meta);
    if (rc)
        return rc;
    if (!jc__cache_writable(cache))
        return jc__set_error(JC_EREADONLY, "jc_cache_config_set: cache file '%s' was opened read-only", cache->path);
    int64_t bytes = 0;
    bool is_size = strcmp(key, "max-size") == 0;
    if (value && is_size && jc_parse_size(value, &bytes))
        return jc__set_error(JC_EINVAL, "setting %s: '%s' is not a size (%s)", key, value, jc_errmsg());
    if (value && is_size && bytes > 0 && bytes < jc__cache_size_floor(cache))
        return jc__set_error(JC_EINVAL, "setting %s: '%s' (%lld bytes) is less than the cache file takes empty "
                             "(%lld bytes, its tables): that limit would evict every entry; give at least "
                             "%lld, or 0 for none", key, value, (long long)bytes,
                             (long long)jc__cache_size_floor(cache), (long long)jc__cache_size_floor(cache));
    bool is_compress = strcmp(key, "compress") == 0;
    if (value && is_compress && jc__c_compress_level(value) < 0)
        return jc__set_error(JC_EINVAL, "setting %s: '%s' is not auto, off or a zstd level from 1 to 19", key, value);
    if (value && !is_size && !is_compress) {
        char *end = NULL;
        long long n = strtoll(value, &end, 10);
        if (end == value || *end || n < 0 || n > 100000000)
            return jc__set_error(JC_EINVAL, "setting %s: '%s' is not a count of runs", key, value);
    }
    /* compress is stored as it is read back: auto, off or a level. */
    char canon[16];
    if (value && is_compress) {
        int level = jc__c_compress_level(value);
        bool is_auto = strcasecmp(value, "auto") == 0 || strcasecmp(value, "on") == 0;
        if (is_auto)
            snprintf(canon, sizeof canon, "auto");
        else if (level)
            snprintf(canon, sizeof canon, "%d", level);
        else
            snprintf(canon, sizeof canon, "off");
        value = canon;
    }
    rc = jc__store_begin(cache->store);
    if (!rc) {
        rc = jc__store_meta_set(cache->store, meta, value);
        rc = rc ? (jc__store_rollback(cache->store), rc) : jc__cache_commit(cache);
    }
    /* In force at once for this handle too, where the file's setting rules. */
    if (!rc && is_compress &&
        (strcmp(cache->compress_source, "file") == 0 || strcmp(cache->compress_source, "default") == 0)) {
        cache->compress_level = value ? jc__c_compress_level(value) : 1;
        cache->compress_source = value ? "file" : "default";
    }
    if (!rc && is_size && (strcmp(cache->max_size_source, "file") == 0 || strcmp(cache->max_size_source, "default") == 0)) {
        cache->max_size = value ? bytes : 0;
        cache->max_size_source = value ? "file" : "default";
    }
    return rc;
}

int jc_cache_config_get(jc_cache *cache, const char *key, char **value)
{
    char meta[64];
    if (!value)
        return jc__set_error(JC_EINVAL, "jc_cache_config_get: NULL value");
    *value = NULL;
    if (!cache || !cache->store)
        return jc__set_error(JC_EINVAL, "jc_cache_config_get: %s", cache ? "the cache is disabled" : "NULL cache");
    int rc = config_key(key, meta, sizeof meta);
    return rc ? rc : jc__store_meta_get(cache->store, meta, value);
}

int jc_cache_config_list(jc_cache *cache, jc_config_fn fn, void *userdata)
{
    if (!cache || !fn)
        return jc__set_error(JC_EINVAL, "jc_cache_config_list: NULL %s", cache ? "callback" : "cache");
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)cache->max_size);
    fn("max-size", text, cache->max_size_source, userdata);
    snprintf(text, sizeof text, "%lld", (long long)jc__cache_log_runs(cache));
    char *stored = NULL;
    if (cache->store)
        jc__store_meta_get(cache->store, "config.log-runs", &stored);
    fn("log-runs", text, stored ? "file" : "default", userdata);
    free(stored);
    if (strcmp(cache->compress_source, "default") == 0)
        snprintf(text, sizeof text, "auto");
    else
        snprintf(text, sizeof text, cache->compress_level ? "%d" : "off", cache->compress_level);
    fn("compress", text, cache->compress_source, userdata);
    return 0;
}

int64_t jc__cache_log_runs(jc_cache *cache)
{
    char *v = NULL;
    int64_t n = 1000;
    if (cache->store && jc__store_meta_get(cache->store, "config.log-runs", &v) == 0 && v)
        n = strtoll(v, NULL, 10);
    free(v);
    return n;
}
