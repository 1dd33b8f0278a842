/*
 * Opening and closing a cache: the path made absolute once, the modes, the
 * store behind the handle.
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

/* path made absolute once, at open: the real path of its directory and its
 * name (malloc'd; NULL when out of memory). A program that changes
 * directory later still measures, names and reopens the same file (SQLite
 * itself resolves the path at open, but stats and messages use this one).
 * The file itself may be a symbolic link, and may not exist yet; a
 * directory that cannot be resolved leaves path as it is, for the store to
 * report. */
static char *absolute_path(const char *path)
{
    if (path[0] == '/' || jc__store_is_server(path))
        return jc__strdup(path);
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    char *dir = slash ? jc__strdup_printf("%.*s", (int)(slash - path), path) : jc__strdup(".");
    if (!dir)
        return NULL;
    char *real = realpath(*dir ? dir : "/", NULL);
    free(dir);
    if (!real || !*name) {
        free(real);
        return jc__strdup(path);
    }
    char *out = jc__strdup_printf("%s%s%s", real, strcmp(real, "/") == 0 ? "" : "/", name);
    free(real);
    return out;
}

int jc_cache_unlock_host(const char *path, char **host)
{
    char *h = NULL;
    if (host)
        *host = NULL;
    if (!path || !*path)
        return jc__set_error(JC_EINVAL, "jc_cache_unlock_host: %s path", path ? "empty" : "NULL");
    char *abs = absolute_path(path);
    if (!abs)
        return jc__set_error(JC_ENOMEM, "out of memory");
    int rc = jc__store_unlock_host(abs, &h);
    free(abs);
    if (host)
        *host = h;
    else
        free(h);
    return rc;
}

jc_cache *jc_cache_open(const char *path, const jc_cache_options *opts)
{
    jc_cache_options o = opts ? *opts : (jc_cache_options){0};
    const char *max_size_source = o.max_size > 0 ? "program" : "default";
    const char *program_compress = o.compress;
    if (jc__c_options_from_env(&o, &max_size_source))
        return NULL;
    if (o.compress && jc__c_compress_level(o.compress) < 0) {
        jc__set_error(JC_EINVAL, "jc_cache_open: compress is '%s'; it must be auto, off or a zstd level from 1 "
                      "to 19", o.compress);
        return NULL;
    }
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
    jc__cache_evict_epoch(c);
    c->max_size = o.max_size;
    c->busy_timeout_ms = o.busy_timeout_ms > 0 ? o.busy_timeout_ms : 10000;
    c->max_size_source = max_size_source;
    c->compress_level = o.compress ? jc__c_compress_level(o.compress) : 1;
    c->compress_source = !o.compress ? "default" : o.compress == program_compress ? "program" : "environment";
    if (o.flags & JC_CACHE_DISABLED)
        return c;

    if (!path || !*path) {
        const char *env = jc__env(c, "JOBCACHE_PATH");
        path = env ? env : "./jobcache.db";
    }
    c->path = absolute_path(path);
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
    /* A server's location is named as its store names it: without the
     * password a URI may carry (messages, jc_cache_path). */
    if (strcmp(c->path, jc__store_path(c->store)) != 0) {
        char *shown = jc__strdup(jc__store_path(c->store));
        if (!shown) {
            jc__store_close(c->store);
            free(c->path);
            free(c);
            jc__set_error(JC_ENOMEM, "out of memory opening a cache");
            return NULL;
        }
        free(c->path);
        c->path = shown;
    }
    /* The file's own settings, where neither the environment nor the
     * program chose. A bad stored value is reported, not used. */
    if (c->max_size == 0 && strcmp(c->max_size_source, "default") == 0) {
        char *v = NULL;
        int64_t bytes = 0;
        if (jc__store_meta_get(c->store, "config.max-size", &v) == 0 && v && jc_parse_size(v, &bytes) == 0) {
            c->max_size = bytes;
            c->max_size_source = "file";
        }
        free(v);
    }
    if (strcmp(c->compress_source, "default") == 0) {
        char *v = NULL;
        int level = -1;
        if (jc__store_meta_get(c->store, "config.compress", &v) == 0 && v && (level = jc__c_compress_level(v)) >= 0) {
            c->compress_level = level;
            c->compress_source = "file";
        }
        free(v);
    }
    /* A limit under what the file takes empty would evict every entry
     * (issue 23: JOBCACHE_MAX_SIZE=1K emptied a cache of 794 entries).
     * Refused, naming the floor; the file's own setting (which
     * jc_cache_config_set checks) is not used, so that the command can
     * still open the file to change it. */
    int64_t floor = c->max_size > 0 && jc__cache_writable(c) ? jc__cache_size_floor(c) : 0;
    if (floor && c->max_size < floor && strcmp(c->max_size_source, "file") == 0) {
        fprintf(stderr, "jobcache: warning: cache file '%s': its setting max-size (%lld bytes) is less than the "
                "file takes empty (%lld bytes) and is not used ('jobcache config max-size' changes it)\n",
                c->path, (long long)c->max_size, (long long)floor);
        c->max_size = 0;
        c->max_size_source = "default";
    } else if (floor && c->max_size < floor) {
        jc__set_error(JC_EINVAL, "jc_cache_open: max_size of %lld bytes (%s) is less than the cache file '%s' "
                      "takes empty (%lld bytes, its tables): that limit would evict every entry; give at least "
                      "%lld, or 0 for none", (long long)c->max_size,
                      strcmp(c->max_size_source, "environment") == 0 ? "JOBCACHE_MAX_SIZE" : "jc_cache_options",
                      c->path, (long long)floor, (long long)floor);
        jc__store_close(c->store);
        free(c->path);
        free(c);
        return NULL;
    }
    /* A file grown beyond max_size (by a program with a larger one, or by
     * one without) is brought back at once. Best effort: a file locked by
     * another process is brought back after the next run instead. */
    jc__cache_enforce_size(c);
    if (c->evicted > 0) {
        fprintf(stderr, "jobcache: cache file '%s' was over its max_size of %lld bytes: evicted %lld entr%s "
                "(%lld bytes of payload), least recently used first\n", c->path, (long long)c->max_size,
                (long long)c->evicted, c->evicted == 1 ? "y" : "ies", (long long)c->evicted_bytes);
        c->runs_evicted = c->evicted; /* told here: not the jc_memo calls' */
        c->runs_evicted_bytes = c->evicted_bytes;
    }
    jc__cache_evict_epoch(c);
    return c;
}


void jc_cache_close(jc_cache *cache)
{
    if (!cache)
        return;
    if (cache->session.active)
        jc_memo_session_end(cache);
    if (cache->store && cache->memo.calls)
        jc__c_record_memo_session(cache);
    for (size_t i = 0; i < cache->memo.nfailures; i++)
        free(cache->memo.failures[i]);
    free(cache->memo.failures);
    /* Claims a run could not release (the file was locked when it ended)
     * go now: other processes would otherwise wait for them as long as
     * this process lives. Best effort. */
    if (cache->store && jc__cache_leases_enabled(cache) && jc__store_begin(cache->store) == 0) {
        int d = jc__store_lease_drop(cache->store, jc__cache_owner());
        if (d < 0)
            jc__store_rollback(cache->store);
        else
            jc__cache_commit(cache);
    }
    if (cache->store && jc__cache_pending(cache)) {
        /* Best effort: hit counts are bookkeeping, never results. */
        if (jc__store_begin(cache->store) == 0) {
            jc__cache_flush_touches(cache);
            jc__cache_commit(cache);
        }
    }
    /* With a maximum size, the -wal file counts: a closed cache is its
     * database file alone whenever no other process holds the file. */
    if (cache->store && cache->max_size > 0 && jc__cache_writable(cache) &&
        jc__cache_enforce_size(cache) == 0)
        jc__store_checkpoint(cache->store);
    jc__store_close(cache->store);
    free(cache->too_large);
    free(cache->touched);
    free(cache->warned);
    free(cache->path);
    free(cache);
}

const char *jc_cache_path(const jc_cache *cache)
{
    return cache ? cache->path : NULL;
}
