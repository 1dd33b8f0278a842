/*
 * Merging another cache file into this one: jc_cache_merge.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jc_internal.h"
#include "inspect_int.h"

/* ---- merging ---- */

/* Copies one entry of other into cache. */
static int merge_one(jc_cache *cache, jc_cache *other, int64_t rowid, const jc__pending_map *pending,
                     jc_merge_result *res)
{
    char problem[600];
    jc__row theirs, mine;
    int rc = jc__cache_row(other, rowid, true, &theirs);
    if (rc <= 0)
        return rc;
    if (theirs.key_format != JC_KEY_FORMAT_VERSION) {
        /* Of another release's key format: never served by this one, and
         * its key cannot be checked here. Skipped, not rejected. */
        res->other_format++;
        return 0;
    }
    rc = jc__i_check_row(other, &theirs, problem, sizeof problem);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        res->rejected++;
        return 0;
    }
    /* Times from another file are clamped to now: a far-future `created`
     * would win every later merge, and a far-future `last_used` would never
     * be evicted as least recently used. */
    double now = jc__now();
    bool future = theirs.created_future || !(theirs.created <= now); /* (the store reads them as now) */
    if (future)
        theirs.created = now;
    /* The other file's hits not folded into its entries yet (its hit log,
     * store.h): an entry taken from it takes them along, as it takes its
     * hit count. */
    jc__pending_apply(pending, theirs.key, &theirs.hits, &theirs.last_used);
    if (!(theirs.last_used <= now))
        theirs.last_used = now;
    /* theirs points into other's buffer, which calls on cache's store
     * leave alone. */
    int found = jc__cache_row_by_key(cache, theirs.key, false, &mine);
    if (found < 0)
        return found;
    if (found && mine.created >= theirs.created) {
        res->kept++;
        return 0;
    }
    /* An entry dated in the future, taken as created now, would replace its
     * own copy at every merge of the same file, each time as newer: it is
     * kept when the cache already has its result and compute time. */
    if (found && future) {
        found = jc__cache_row_by_key(cache, theirs.key, true, &mine);
        if (found < 0)
            return found;
        if (found && mine.result_len == theirs.result_len && mine.check_len == theirs.check_len &&
            memcmp(mine.check, theirs.check, mine.check_len) == 0 && mine.compute_seconds == theirs.compute_seconds &&
            (mine.result_len == 0 || memcmp(mine.result, theirs.result, mine.result_len) == 0)) {
            res->kept++;
            return 0;
        }
    }
    if (jc__result_in_pieces(theirs.result, theirs.result_len)) {
        /* Its parts are in the other file: read (checked above, read again
         * here) and stored in pieces again. */
        jc_value *v = NULL;
        rc = jc__cache_row_result(other, &theirs, theirs.check_len == JC__CHECK_LEN ? theirs.check : NULL, &v);
        if (rc > 0) {
            res->rejected++;
            return 0;
        }
        if (!rc)
            rc = jc__cache_put_row_value(cache, &theirs, v);
        jc_value_free(v);
    } else {
        rc = jc__cache_put_row(cache, &theirs);
    }
    if (rc)
        return rc;
    if (found)
        res->replaced++;
    else
        res->added++;
    return 0;
}

typedef struct fn_versions {
    char **function, **version;
    size_t n, cap;
} fn_versions;

static int collect_group(void *ctx, const jc__group *g)
{
    fn_versions *fv = ctx;
    if (fv->n == fv->cap) {
        size_t cap = fv->cap ? 2 * fv->cap : 16;
        char **f = realloc(fv->function, cap * sizeof *f);
        if (f)
            fv->function = f;
        char **v = f ? realloc(fv->version, cap * sizeof *v) : NULL;
        if (!f || !v)
            return jc__set_error(JC_ENOMEM, "out of memory listing functions");
        fv->version = v;
        fv->cap = cap;
    }
    fv->function[fv->n] = jc__strdup(g->function);
    fv->version[fv->n] = jc__strdup(g->version);
    if (!fv->function[fv->n] || !fv->version[fv->n]) {
        free(fv->function[fv->n]);
        free(fv->version[fv->n]);
        return jc__set_error(JC_ENOMEM, "out of memory listing functions");
    }
    fv->n++;
    return 0;
}

/* The parameter names the other cache recorded (schema 6) for a function
 * and version this cache has none for come along with its entries, so that
 * ls, show and export name the merged arguments as the other file did.
 * Names this cache has already stay: they are its own program's. */
static int merge_params(jc_cache *cache, jc_cache *other)
{
    fn_versions fv = {0};
    int rc = jc__cache_groups(other, collect_group, &fv);
    for (size_t i = 0; i < fv.n && !rc; i++) {
        char *theirs = NULL, *ours = NULL;
        rc = jc__cache_params(other, fv.function[i], fv.version[i], &theirs);
        if (rc >= 0 && theirs)
            rc = jc__cache_params(cache, fv.function[i], fv.version[i], &ours);
        if (rc >= 0 && theirs && !ours) {
            rc = jc__cache_params_adopt(cache, fv.function[i], fv.version[i], theirs);
        }
        if (rc > 0)
            rc = 0;
        free(theirs);
        free(ours);
    }
    for (size_t i = 0; i < fv.n; i++) {
        free(fv.function[i]);
        free(fv.version[i]);
    }
    free(fv.function);
    free(fv.version);
    return rc;
}

/* Merges every entry of other, an open cache, into cache (jc_cache_merge;
 * jc__i_copy_into, a backup of a cache on a server). */
static int merge_from(jc_cache *cache, jc_cache *other, jc_merge_result *out)
{
    jc_merge_result res = {0};
    jc__pager *pg = NULL;
    const int64_t *ids = NULL;
    size_t n = 0, done = 0;
    bool in_txn = false;
    int rc = 0;
    jc__pending_map *pending = NULL;
    /* One snapshot of the other file for the whole merge: every entry read
     * with its parts (results in pieces) as one version. */
    bool snap = !rc && jc__cache_snapshot_begin(other);
    if (!rc)
        rc = jc__cache_pending_map(other, &pending);
    if (!rc)
        rc = jc__cache_pager_new(other, &(jc__select){.order = JC__ORDER_ROWID}, &pg);
    while (!rc && (rc = jc__cache_pager_next(pg, &ids, &n)) == 0 && n) {
        for (size_t i = 0; i < n && !rc; i++) {
            if (!in_txn) {
                rc = jc__cache_write_begin(cache);
                in_txn = rc == 0;
            }
            if (!rc)
                rc = merge_one(cache, other, ids[i], pending, &res);
            if (!rc && ++done % MERGE_BATCH == 0) {
                in_txn = false;
                rc = jc__cache_write_end(cache, rc, true);
            }
        }
    }
    if (in_txn)
        rc = jc__cache_write_end(cache, rc, true);
    jc__cache_pager_free(pg);
    jc__pending_map_free(pending);
    if (!rc)
        rc = merge_params(cache, other);
    jc__cache_snapshot_end(other, snap);
    if (out)
        *out = res;
    return rc;
}

int jc_cache_merge(jc_cache *cache, const char *other_path, jc_merge_result *out)
{
    jc_cache *other = NULL;
    int rc = jc__i_writable(cache, "jc_cache_merge");
    if (!rc && !other_path)
        rc = jc__set_error(JC_EINVAL, "jc_cache_merge: NULL path of the other cache");
    if (!rc && !(other = jc_cache_open(other_path, &(jc_cache_options){.flags = JC_CACHE_READONLY})))
        rc = jc_errcode();
    if (!rc)
        rc = merge_from(cache, other, out);
    else if (out)
        *out = (jc_merge_result){0};
    jc_cache_close(other);
    return rc;
}

/* A backup of a cache on a server into a new cache file at dest: its
 * entries, from one snapshot (merge_from's), into a file made under a
 * temporary name and linked there when complete, so that dest is absent
 * or whole. dest must not exist (JC_EIO). */
int jc__i_copy_into(jc_cache *cache, const char *dest)
{
    if (access(dest, F_OK) == 0)
        return jc__set_error(JC_EIO, "backup: '%s' already exists; it is left as it is", dest);
    char *tmp = jc__strdup_printf("%s.tmp-%ld", dest, (long)getpid());
    if (!tmp)
        return jc__set_error(JC_ENOMEM, "out of memory");
    unlink(tmp);
    jc_cache *copy = jc_cache_open(tmp, &(jc_cache_options){.flags = JC_CACHE_IGNORE_ENV});
    int rc = copy ? merge_from(copy, cache, NULL) : jc_errcode();
    jc_cache_close(copy);
    /* link, not rename: it fails when dest has appeared meanwhile, which
     * rename would replace; rename where the file system has no links. */
    if (!rc && link(tmp, dest) != 0) {
        int e = errno;
        bool no_links = e == EPERM || e == ENOTSUP || e == EOPNOTSUPP || e == ENOSYS;
        bool there = access(dest, F_OK) == 0;
        if (!(no_links && !there && rename(tmp, dest) == 0))
            rc = jc__set_error(JC_EIO, "backup: cannot put the copy at '%s': %s", dest,
                               there ? "it appeared while the copy was made; it is left as it is" : strerror(e));
    }
    if (!rc)
        unlink(tmp);
    if (rc) {
        unlink(tmp);
        char side[PATH_MAX + 16];
        snprintf(side, sizeof side, "%s-wal", tmp);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", tmp);
        unlink(side);
    }
    free(tmp);
    return rc;
}
