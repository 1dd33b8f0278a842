/*
 * Tending in bulk: removing a selection, pruning, clearing; vacuum and
 * backup of the file.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jc_internal.h"
#include "inspect_int.h"

/* ---- removing in bulk ---- */

int jc_cache_remove_matching(jc_cache *cache, const jc_filter *filter, bool dry_run,
                             int64_t *count, int64_t *bytes)
{
    static const char what[] = "jc_cache_remove_matching";
    jc__select q;
    int64_t c = 0, b = 0;
    jc__i_set_out(count, 0);
    jc__i_set_out(bytes, 0);
    int rc = jc__i_writable(cache, what);
    if (!rc)
        rc = jc__i_to_select(filter, &q, what);
    if (!rc && dry_run)
        rc = jc__i_prepare_dry_run(cache, what);
    if (!rc)
        rc = jc__cache_remove_selected(cache, &q, dry_run, &c, &b);
    if (rc)
        return rc;
    jc__i_set_out(count, c);
    jc__i_set_out(bytes, b);
    return 0;
}

static int check_prune_options(const jc_prune_options *o)
{
    if (jc__i_bad_age(o->older_than))
        return jc__set_error(JC_EINVAL, "jc_cache_prune: older_than is negative or not a number");
    if (o->max_entries < 0 || o->max_size < 0 || o->max_payload < 0)
        return jc__set_error(JC_EINVAL, "jc_cache_prune: max_%s is negative",
                             o->max_size < 0 ? "size" : o->max_payload < 0 ? "payload" : "entries");
    return 0;
}

int jc_cache_prune(jc_cache *cache, const jc_prune_options *opts, bool dry_run, int64_t *count,
                   int64_t *bytes)
{
    static const char what[] = "jc_cache_prune";
    jc_prune_options none = {0};
    int64_t c = 0, b = 0;
    jc__i_set_out(count, 0);
    jc__i_set_out(bytes, 0);
    if (!opts)
        opts = &none;
    int rc = jc__i_writable(cache, what);
    if (!rc)
        rc = check_prune_options(opts);
    if (!rc && dry_run)
        rc = jc__i_prepare_dry_run(cache, what);
    else if (!rc) /* last-used times up to date (the hit log folded) */
        rc = jc__cache_sync_hits(cache);
    if (!rc)
        rc = jc__cache_prune(cache, opts, dry_run, &c, &b);
    if (rc)
        return rc;
    /* The file shrinks to what it holds now (the -wal file is truncated,
     * an older file without auto_vacuum is vacuumed once). */
    if (!dry_run && (opts->max_size > 0 || c > 0))
        jc__cache_settle(cache, opts->max_size);
    jc__i_set_out(count, c);
    jc__i_set_out(bytes, b);
    return 0;
}

int jc_cache_clear(jc_cache *cache, int64_t *count)
{
    jc__select all = {0};
    int64_t c = 0;
    jc__i_set_out(count, 0);
    int rc = jc__i_writable(cache, "jc_cache_clear");
    if (!rc)
        rc = jc__cache_remove_selected(cache, &all, false, &c, NULL);
    if (!rc)
        jc__i_set_out(count, c);
    return rc;
}

int jc_cache_zero_hits(jc_cache *cache, int64_t *count)
{
    int64_t c = 0;
    jc__i_set_out(count, 0);
    int rc = jc__i_writable(cache, "jc_cache_zero_hits");
    if (!rc && jc__cache_running(cache))
        rc = jc__set_error(JC_EBUSY, "jc_cache_zero_hits: the cache is running a batch");
    if (!rc)
        rc = jc__cache_zero_hits(cache, &c);
    if (!rc)
        jc__i_set_out(count, c);
    return rc;
}

int jc_cache_vacuum(jc_cache *cache)
{
    int rc = jc__i_writable(cache, "jc_cache_vacuum");
    return rc ? rc : jc__cache_vacuum(cache);
}

int jc_cache_backup(jc_cache *cache, const char *dest_path)
{
    int rc = jc__i_usable(cache, "jc_cache_backup");
    if (rc)
        return rc;
    if (jc__cache_running(cache))
        return jc__set_error(JC_EBUSY, "jc_cache_backup: the cache is running a batch");
    if (!dest_path)
        return jc__set_error(JC_EINVAL, "jc_cache_backup: NULL destination");
    if (jc__cache_location_on_server(dest_path))
        return jc__set_error(JC_EINVAL, "jc_cache_backup: a backup is a file, and '%.*s...' is a server's "
                             "location; to copy a cache onto a server, merge it there (jc_cache_merge, 'jobcache "
                             "merge FILE --file LOCATION')", 13, dest_path);
    /* A server's cache is copied entry by entry into a new file. */
    if (jc__cache_on_server(cache))
        return jc__i_copy_into(cache, dest_path);
    return jc__cache_backup(cache, dest_path);
}
