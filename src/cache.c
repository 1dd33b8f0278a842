/*
 * cache: the cache handle that a program opens, over the store.
 *
 * It chooses the file (argument, $JOBCACHE_PATH, ./jobcache.db), applies the
 * modes (recompute, read-only, disabled), turns stored blobs into values and
 * back, and defers hit bookkeeping so that a hit costs one lookup.
 *
 * A hit is served only when its result's bytes match the checksum stored
 * with them (XXH3-128, as ccache checks a result on read): a mismatch is a
 * miss, recomputed and overwritten, and counted in cache->damaged. Results
 * are encoded exactly (jc__encode_result), never canonicalised.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "cache.h"
#include "fingerprint.h"

/* path made absolute once, at open: the real path of its directory and its
 * name (malloc'd; NULL when out of memory). A program that changes
 * directory later still measures, names and reopens the same file (SQLite
 * itself resolves the path at open, but stats and messages use this one).
 * The file itself may be a symbolic link, and may not exist yet; a
 * directory that cannot be resolved leaves path as it is, for the store to
 * report. */
static char *absolute_path(const char *path)
{
    if (path[0] == '/')
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

/* ---- the environment ---- */

const char *jc__env(const jc_cache *cache, const char *name)
{
    if (cache && (cache->flags & JC_CACHE_IGNORE_ENV))
        return NULL;
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int jc__env_bool(const jc_cache *cache, const char *name, bool *on)
{
    const char *v = jc__env(cache, name);
    if (!v)
        return 0;
    static const char *const yes[] = {"1", "yes", "true", "on"}, *const no[] = {"0", "no", "false", "off"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *on = true;
            return 1;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *on = false;
            return 1;
        }
    }
    return jc__set_error(JC_EINVAL, "%s is '%s'; it must be 1 or 0 (yes/no, true/false, on/off)", name, v);
}

/* Applies the environment's switches over the program's options; a bad
 * value is an error naming the variable. (jc__env_bool reads cache's
 * flags: a stand-in carries the program's JC_CACHE_IGNORE_ENV.) */
static int options_from_env(jc_cache_options *o, const char **max_size_source)
{
    jc_cache probe = {.flags = o->flags};
    bool on = false;
    int rc;
    static const struct {
        const char *name;
        unsigned flag;
    } flags[] = {{"JOBCACHE_READONLY", JC_CACHE_READONLY},
                 {"JOBCACHE_RECOMPUTE", JC_CACHE_RECOMPUTE},
                 {"JOBCACHE_DISABLE", JC_CACHE_DISABLED}};
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
        if ((rc = jc__env_bool(&probe, flags[i].name, &on)) < 0)
            return jc__set_error(rc, "jc_cache_open: %s", jc_errmsg());
        if (rc == 1) {
            o->flags = on ? o->flags | flags[i].flag : o->flags & ~flags[i].flag;
            /* The environment wins over a contradicting choice of the program. */
            if (on && flags[i].flag == JC_CACHE_READONLY)
                o->flags &= ~(unsigned)JC_CACHE_RECOMPUTE;
            if (on && flags[i].flag == JC_CACHE_RECOMPUTE)
                o->flags &= ~(unsigned)JC_CACHE_READONLY;
        }
    }
    const char *size = jc__env(&probe, "JOBCACHE_MAX_SIZE");
    if (size) {
        int64_t bytes = 0;
        if (jc_parse_size(size, &bytes))
            return jc__set_error(JC_EINVAL, "jc_cache_open: JOBCACHE_MAX_SIZE is '%s': %s", size, jc_errmsg());
        o->max_size = bytes;
        *max_size_source = "environment";
    }
    return 0;
}

jc_cache *jc_cache_open(const char *path, const jc_cache_options *opts)
{
    jc_cache_options o = opts ? *opts : (jc_cache_options){0};
    const char *max_size_source = o.max_size > 0 ? "program" : "default";
    if (options_from_env(&o, &max_size_source))
        return NULL;
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
    c->max_size = o.max_size;
    c->max_size_source = max_size_source;
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
    /* A file grown beyond max_size (by a program with a larger one, or by
     * one without) is brought back at once. Best effort: a file locked by
     * another process is brought back after the next run instead. */
    jc__cache_enforce_size(c);
    return c;
}

int jc__cache_commit(jc_cache *cache)
{
    int rc = jc__store_commit(cache->store);
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

static void record_memo_session(jc_cache *cache);

void jc_cache_close(jc_cache *cache)
{
    if (!cache)
        return;
    if (cache->store && cache->memo.calls)
        record_memo_session(cache);
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
    if (cache->store && cache->ntouched) {
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
    free(cache->touched_secs);
    free(cache->touched_rowids);
    free(cache->warned);
    free(cache->path);
    free(cache);
}

const char *jc_cache_path(const jc_cache *cache)
{
    return cache ? cache->path : NULL;
}

bool jc__cache_writable(const jc_cache *cache)
{
    return cache->store && !(cache->flags & JC_CACHE_READONLY);
}

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
    if (!cache->running && cache->ntouched >= (cache->touch_flush_at ? cache->touch_flush_at : 4096)) {
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

int jc__cache_flush_touches(jc_cache *cache)
{
    if (!cache->ntouched)
        return 0;
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
    cache->ntouched = 0;
    return rc;
}

void jc__cache_pending_hits(const jc_cache *cache, int64_t *hits, double *saved)
{
    *hits = (int64_t)cache->ntouched;
    *saved = 0;
    for (size_t i = 0; i < cache->ntouched; i++)
        *saved += cache->touched_secs[i];
}

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

static void found_from_hit(const jc__hit *hit, jc__found *f)
{
    f->seconds = hit->compute_seconds;
    f->rowid = hit->rowid;
    f->has_code_fp = hit->has_code_fp;
    if (hit->has_code_fp)
        memcpy(f->code_fp, hit->code_fp, JC__CHECK_LEN);
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
    if (!result_sound(cache, &hit) || jc__decode_value(hit.result, hit.result_len, &found->value)) {
        found->value = NULL;
        return 0;
    }
    found_from_hit(&hit, found);
    found->ver_data = -1; /* not read per call (jc_memo's hot path): recorded by key */
    return 1;
}

typedef struct many_ctx {
    jc__cache_found_fn found;
    void *ctx;
    jc_cache *cache;
    jc__store_ver ver;
} many_ctx;

static void on_many_hit(void *p, size_t i, const jc__hit *hit)
{
    many_ctx *m = p;
    jc__found f = {0};
    if (!result_sound(m->cache, hit) || jc__decode_value(hit->result, hit->result_len, &f.value))
        return; /* damaged or does not decode: a miss, computed again and overwritten */
    found_from_hit(hit, &f);
    f.ver_data = m->ver.data;
    f.ver_deletes = m->ver.deletes;
    m->found(m->ctx, i, &f);
}

int jc__cache_lookup_many(jc_cache *cache, const uint8_t *const *keys, size_t n, jc__cache_found_fn found,
                          void *ctx)
{
    if (!cache->store || (cache->flags & JC_CACHE_RECOMPUTE) || !n)
        return 0;
    many_ctx m = {.found = found, .ctx = ctx, .cache = cache};
    /* The version before the snapshot: a commit of another process after
     * it changes the version, so rowids found here are trusted only while
     * nothing changed (jc__cache_flush_touches). */
    if (jc__store_version(cache->store, &m.ver))
        m.ver.data = -1;
    /* One snapshot for all of them (a no-op inside a write transaction). */
    int rc = jc__store_read_begin(cache->store);
    if (!rc)
        rc = jc__store_get_many(cache->store, keys, n, on_many_hit, &m);
    jc__store_read_end(cache->store);
    return rc;
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
    jc__cache_flush_touches(cache); /* an entry just hit counts as used */
    rc = jc__store_evict(cache->store, evict_target(cache->max_size), NULL, NULL);
    if (rc)
        jc__store_rollback(cache->store);
    else
        rc = jc__cache_commit(cache);
    if (!rc)
        jc__cache_settle(cache, cache->max_size);
    return rc;
}

/* Whether an entry of payload bytes could be kept within max_size even
 * alone; when not, warns once per function. */
static bool fits(jc_cache *cache, const jc_function *fn, size_t payload)
{
    if (cache->max_size <= 0)
        return true;
    if (!cache->empty_bytes) {
        jc__store_size z;
        if (jc__store_size_get(cache->store, &z))
            return true; /* unknown: stored, and eviction decides */
        cache->empty_bytes = z.empty_bytes + z.page_bytes; /* and a page of slack */
    }
    int64_t room = evict_target(cache->max_size) - cache->empty_bytes;
    if ((uint64_t)payload <= (uint64_t)(room > 0 ? room : 0))
        return true;
    for (size_t i = 0; i < cache->ntoo_large; i++)
        if (cache->too_large[i] == fn)
            return false;
    const jc_function **t = realloc(cache->too_large, (cache->ntoo_large + 1) * sizeof *t);
    if (t) {
        cache->too_large = t;
        cache->too_large[cache->ntoo_large++] = fn;
    }
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
    int rc = jc__encode_args(argv, argc, jc__buf_write, &args);
    if (!rc && !blob) {
        rc = jc__encode_result(value, jc__buf_write, &res);
        blob = res.data;
        blob_len = res.len;
    }
    if (!rc && (args.oom || res.oom))
        rc = jc__set_error(JC_ENOMEM, "out of memory encoding a result of %s", fn->name);
    if (!rc && !fits(cache, fn, args.len + blob_len))
        rc = 1;
    if (!rc) {
        uint8_t fp[JC__CHECK_LEN];
        jc__entry_in e = {
            .key = key,
            .function = fn->name,
            .version = fn->version,
            .args = args.data,
            .args_len = args.len,
            .result = blob ? blob : "",
            .result_len = blob_len,
            .compute_seconds = seconds,
            .now = now,
            .code_fp = jc__cache_code_fp(fn, fp) ? fp : NULL,
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
    return rc;
}

/* ---- leases ----
 *
 * Before computing its misses a run claims them, so that a run of another
 * process on the same cache waits for their results instead of computing
 * them too (joblib's issues #73 and #1030: every process computes every
 * shared call). A claim names its owner, a process anywhere: the machine's
 * boot id, the pid namespace, the pid and the process's start time (a pid
 * alone does not tell apart processes of two containers sharing one file,
 * nor a reused pid). An owner in this boot and pid namespace is alive while
 * its process is; any other is alive until its claim expires, which owners
 * renew while they compute. Claims of dead owners are dropped by the next
 * claim. */

/* The text of /proc path's first line, without the newline, or "". */
static void read_line(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    if (fgets(buf, (int)cap, f))
        buf[strcspn(buf, "\n")] = '\0';
    fclose(f);
}

/* Field 22 of /proc/PID/stat: the start time in clock ticks since boot;
 * 0 when the process does not exist, or has ended and waits to be reaped
 * (state Z: a zombie computes nothing). The command name (field 2) may hold
 * spaces and parentheses: fields are counted after its last ')'. *readable
 * says whether /proc told anything (a /proc mounted hidepid hides other
 * users' processes). */
static unsigned long long start_time_of(long pid, bool *readable)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    read_line(path, buf, sizeof buf);
    char *p = strrchr(buf, ')');
    if (readable)
        *readable = p != NULL;
    if (!p)
        return 0;
    unsigned long long v = 0;
    int field = 2;
    char *save = NULL;
    for (char *tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        ++field;
        if (field == 3 && (tok[0] == 'Z' || tok[0] == 'X'))
            return 0;
        if (field == 22) {
            v = strtoull(tok, NULL, 10);
            break;
        }
    }
    return v;
}

static unsigned long long start_time(long pid)
{
    return start_time_of(pid, NULL);
}

/* The pid namespace of a process, as "pid:[4026531836]". */
static void pid_namespace(const char *proc, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/ns/pid", proc);
    ssize_t n = readlink(path, buf, cap - 1);
    buf[n > 0 ? n : 0] = '\0';
}

typedef struct owner_id {
    char boot[64], ns[64];
    long pid;
    unsigned long long start;
} owner_id;

static bool parse_owner(const char *text, owner_id *o)
{
    /* "BOOT ID|PIDNS|PID|START" */
    memset(o, 0, sizeof *o);
    const char *a = strchr(text, '|'), *b = a ? strchr(a + 1, '|') : NULL, *c = b ? strchr(b + 1, '|') : NULL;
    if (!c || (size_t)(a - text) >= sizeof o->boot || (size_t)(b - a - 1) >= sizeof o->ns)
        return false;
    memcpy(o->boot, text, (size_t)(a - text));
    memcpy(o->ns, a + 1, (size_t)(b - a - 1));
    o->pid = strtol(b + 1, NULL, 10);
    o->start = strtoull(c + 1, NULL, 10);
    return o->pid > 0;
}

/* This process's identity; made again after a fork (another pid). */
const char *jc__cache_owner(void)
{
    static _Thread_local char text[200];
    static _Thread_local pid_t made_for;
    pid_t pid = getpid();
    if (made_for != pid) {
        char boot[64], ns[64];
        read_line("/proc/sys/kernel/random/boot_id", boot, sizeof boot);
        pid_namespace("self", ns, sizeof ns);
        snprintf(text, sizeof text, "%s|%s|%ld|%llu", boot, ns, (long)pid, start_time((long)pid));
        made_for = pid;
    }
    return text;
}

bool jc__cache_owner_alive(const char *owner, double expires, double now)
{
    owner_id me, them;
    if (!parse_owner(jc__cache_owner(), &me) || !parse_owner(owner, &them))
        return expires > now;
    if (strcmp(me.boot, them.boot) != 0 || strcmp(me.ns, them.ns) != 0 || !me.boot[0] || !me.ns[0])
        return expires > now; /* another machine, boot or container: the claim's expiry */
    /* Same boot and pid namespace: alive while its process is (the same
     * start time: not a reused pid), however long its calls take. Where
     * /proc hides other users' processes (hidepid), kill(pid, 0) still
     * tells whether the pid exists (EPERM: it does). */
    bool readable = false;
    unsigned long long start = start_time_of(them.pid, &readable);
    if (!readable)
        return kill((pid_t)them.pid, 0) == 0 || errno == EPERM;
    return them.start != 0 && start == them.start;
}

typedef struct lease_scan {
    const char *me;
    double now;
    /* keys of live owners other than me */
    uint8_t *keys;
    size_t n, cap;
    /* owners found dead */
    char **dead;
    size_t ndead;
    /* my own rows (for releasing one key) */
    bool alive_cached;
    char last_owner[200];
    bool last_alive;
    int err;
} lease_scan;

static int collect_lease(void *ctx, const jc__lease *l)
{
    lease_scan *sc = ctx;
    if (strcmp(l->owner, sc->me) == 0)
        return 0;
    if (!sc->alive_cached || strcmp(sc->last_owner, l->owner) != 0) {
        snprintf(sc->last_owner, sizeof sc->last_owner, "%s", l->owner);
        sc->last_alive = jc__cache_owner_alive(l->owner, l->expires, sc->now);
        sc->alive_cached = true;
        if (!sc->last_alive) {
            char **d = realloc(sc->dead, (sc->ndead + 1) * sizeof *d);
            char *copy = jc__strdup(l->owner);
            if (!d || !copy) {
                free(copy);
                if (d)
                    sc->dead = d;
                return jc__set_error(JC_ENOMEM, "out of memory reading leases");
            }
            sc->dead = d;
            sc->dead[sc->ndead++] = copy;
        }
    }
    if (!sc->last_alive || !l->n)
        return 0;
    if (sc->n + l->n > sc->cap) {
        size_t cap = sc->cap ? sc->cap : 1024;
        while (cap < sc->n + l->n)
            cap *= 2;
        uint8_t *k = realloc(sc->keys, cap * JC__KEY_LEN);
        if (!k)
            return jc__set_error(JC_ENOMEM, "out of memory reading leases");
        sc->keys = k;
        sc->cap = cap;
    }
    memcpy(sc->keys + sc->n * JC__KEY_LEN, l->keys, l->n * JC__KEY_LEN);
    sc->n += l->n;
    return 0;
}

static void scan_free(lease_scan *sc)
{
    free(sc->keys);
    for (size_t i = 0; i < sc->ndead; i++)
        free(sc->dead[i]);
    free(sc->dead);
}

static int cmp_key16(const void *a, const void *b)
{
    return memcmp(a, b, JC__KEY_LEN);
}

/* Reads every lease; sc->keys gets the keys of live other owners, sorted. */
static int scan_leases(jc_cache *cache, lease_scan *sc)
{
    memset(sc, 0, sizeof *sc);
    sc->me = jc__cache_owner();
    sc->now = jc__now();
    int rc = jc__store_leases(cache->store, collect_lease, sc);
    if (!rc && sc->n)
        qsort(sc->keys, sc->n, JC__KEY_LEN, cmp_key16);
    return rc;
}

static bool held(const lease_scan *sc, const uint8_t *key)
{
    return sc->n && bsearch(key, sc->keys, sc->n, JC__KEY_LEN, cmp_key16) != NULL;
}

bool jc__cache_leases_enabled(const jc_cache *cache)
{
    return jc__cache_writable(cache) && jc__store_schema(cache->store) >= 4;
}

enum { LEASE_ROW_KEYS = 4096 };

int jc__cache_claim(jc_cache *cache, const uint8_t *const *keys, size_t n, double ttl, bool *theirs)
{
    for (size_t i = 0; i < n; i++)
        theirs[i] = false;
    if (!jc__cache_leases_enabled(cache) || !n)
        return 0;
    uint8_t *mine = malloc(n * JC__KEY_LEN);
    if (!mine)
        return jc__set_error(JC_ENOMEM, "out of memory claiming %zu calls", n);
    int rc = jc__store_begin(cache->store);
    if (rc) {
        free(mine);
        return rc;
    }
    lease_scan sc;
    /* Rows of this process left by an earlier run that could not release
     * them (its end found the file locked) go first: this run claims anew. */
    rc = jc__store_lease_drop(cache->store, jc__cache_owner());
    rc = rc < 0 ? rc : 0;
    if (!rc)
        rc = scan_leases(cache, &sc);
    else
        memset(&sc, 0, sizeof sc);
    for (size_t i = 0; i < sc.ndead && !rc; i++)
        rc = jc__store_lease_drop(cache->store, sc.dead[i]) < 0 ? jc_errcode() : 0;
    size_t m = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        theirs[i] = held(&sc, keys[i]);
        if (!theirs[i])
            memcpy(mine + JC__KEY_LEN * m++, keys[i], JC__KEY_LEN);
    }
    if (!rc)
        rc = jc__store_lease_owner(cache->store, jc__cache_owner(), jc__now() + ttl, true);
    if (!rc && m) {
        qsort(mine, m, JC__KEY_LEN, cmp_key16);
        for (size_t at = 0; at < m && !rc; at += LEASE_ROW_KEYS)
            rc = jc__store_lease_add(cache->store, jc__cache_owner(), mine + JC__KEY_LEN * at,
                                     m - at < LEASE_ROW_KEYS ? m - at : LEASE_ROW_KEYS);
    }
    scan_free(&sc);
    free(mine);
    if (rc) {
        char *msg = jc__strdup(jc_errmsg());
        jc__store_rollback(cache->store);
        for (size_t i = 0; i < n; i++)
            theirs[i] = false; /* nothing claimed: compute them all, as without leases */
        jc__set_error(rc, "%s", msg ? msg : jc_strerror(rc));
        free(msg);
        return rc;
    }
    return jc__cache_commit(cache);
}

int jc__cache_still_held(jc_cache *cache, const uint8_t *const *keys, size_t n, bool *held_out)
{
    lease_scan sc;
    int rc = scan_leases(cache, &sc);
    for (size_t i = 0; i < n; i++)
        held_out[i] = !rc && held(&sc, keys[i]);
    scan_free(&sc);
    jc__store_read_end(cache->store);
    return rc;
}

int jc__cache_lease_renew(jc_cache *cache, double ttl)
{
    return jc__cache_leases_enabled(cache)
               ? jc__store_lease_owner(cache->store, jc__cache_owner(), jc__now() + ttl, true)
               : 0;
}

/* This process's lease rows, read once to release many keys. */
typedef struct my_rows {
    const char *me;
    int64_t *ids;
    uint8_t **keys;
    size_t *n;
    size_t count, cap;
} my_rows;

static int collect_mine(void *ctx, const jc__lease *l)
{
    my_rows *m = ctx;
    if (strcmp(l->owner, m->me) != 0 || !l->n)
        return 0;
    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        int64_t *ids = realloc(m->ids, cap * sizeof *ids);
        if (ids)
            m->ids = ids;
        uint8_t **keys = realloc(m->keys, cap * sizeof *keys);
        if (keys)
            m->keys = keys;
        size_t *n = realloc(m->n, cap * sizeof *n);
        if (n)
            m->n = n;
        if (!ids || !keys || !n)
            return jc__set_error(JC_ENOMEM, "out of memory releasing calls");
        m->cap = cap;
    }
    uint8_t *copy = malloc(l->n * JC__KEY_LEN);
    if (!copy)
        return jc__set_error(JC_ENOMEM, "out of memory releasing calls");
    memcpy(copy, l->keys, l->n * JC__KEY_LEN);
    m->ids[m->count] = l->id;
    m->keys[m->count] = copy;
    m->n[m->count++] = l->n;
    return 0;
}

int jc__cache_lease_release(jc_cache *cache, uint8_t *keys, size_t n)
{
    if (!jc__cache_leases_enabled(cache) || !n)
        return 0;
    /* One read of this process's rows, then each row that holds any of the
     * keys rewritten once: releasing many calls (a run whose calls fail,
     * or whose results cannot be stored) costs one pass, not one per call. */
    qsort(keys, n, JC__KEY_LEN, cmp_key16);
    my_rows m = {.me = jc__cache_owner()};
    int rc = jc__store_leases(cache->store, collect_mine, &m);
    for (size_t r = 0; r < m.count && !rc; r++) {
        size_t kept = 0;
        for (size_t i = 0; i < m.n[r]; i++) {
            const uint8_t *k = m.keys[r] + JC__KEY_LEN * i;
            if (!bsearch(k, keys, n, JC__KEY_LEN, cmp_key16))
                memmove(m.keys[r] + JC__KEY_LEN * kept++, k, JC__KEY_LEN);
        }
        if (kept != m.n[r])
            rc = jc__store_lease_set_keys(cache->store, m.ids[r], m.keys[r], kept);
    }
    for (size_t r = 0; r < m.count; r++)
        free(m.keys[r]);
    free(m.ids);
    free(m.keys);
    free(m.n);
    return rc;
}

int jc__cache_lease_end(jc_cache *cache)
{
    if (!jc__cache_leases_enabled(cache))
        return 0;
    int rc = jc__store_begin(cache->store);
    if (!rc) {
        rc = jc__store_lease_drop(cache->store, jc__cache_owner());
        rc = rc < 0 ? rc : 0;
        int c = jc__cache_commit(cache);
        rc = rc ? rc : c;
    }
    return rc;
}

/* ---- leases, for inspection ---- */

typedef struct owner_list {
    jc_lease_info *items;
    char **owners;
    size_t n, cap;
    double now;
} owner_list;

static int list_owner(void *ctx, const jc__lease *l)
{
    owner_list *ol = ctx;
    if (!ol->n || strcmp(ol->owners[ol->n - 1], l->owner) != 0) {
        if (ol->n == ol->cap) {
            size_t cap = ol->cap ? ol->cap * 2 : 8;
            jc_lease_info *it = realloc(ol->items, cap * sizeof *it);
            if (it)
                ol->items = it;
            char **ow = realloc(ol->owners, cap * sizeof *ow);
            if (ow)
                ol->owners = ow;
            if (!it || !ow)
                return jc__set_error(JC_ENOMEM, "out of memory listing leases");
            ol->cap = cap;
        }
        char *copy = jc__strdup(l->owner);
        if (!copy)
            return jc__set_error(JC_ENOMEM, "out of memory listing leases");
        owner_id id;
        ol->owners[ol->n] = copy;
        ol->items[ol->n] = (jc_lease_info){
            .owner = copy,
            .pid = parse_owner(copy, &id) ? id.pid : 0,
            .started = l->started,
            .expires = l->expires,
            .alive = jc__cache_owner_alive(copy, l->expires, ol->now),
        };
        ol->n++;
    }
    ol->items[ol->n - 1].calls += (int64_t)l->n;
    return 0;
}

static void owner_list_free(owner_list *ol)
{
    for (size_t i = 0; i < ol->n; i++)
        free(ol->owners[i]);
    free(ol->owners);
    free(ol->items);
}

static int read_owners(jc_cache *cache, owner_list *ol)
{
    memset(ol, 0, sizeof *ol);
    ol->now = jc__now();
    if (!cache || !cache->store)
        return jc__set_error(JC_EINVAL, "leases: the cache is %s", cache ? "disabled" : "NULL");
    return jc__store_leases(cache->store, list_owner, ol);
}

int jc_cache_leases(jc_cache *cache, jc_lease_fn fn, void *userdata, size_t *count)
{
    owner_list ol;
    int rc = read_owners(cache, &ol);
    if (!rc && fn)
        for (size_t i = 0; i < ol.n; i++)
            fn(&ol.items[i], userdata);
    if (count)
        *count = rc ? 0 : ol.n;
    owner_list_free(&ol);
    return rc;
}

int jc_cache_break_lease(jc_cache *cache, const char *owner, size_t *count)
{
    if (count)
        *count = 0;
    if (cache && !jc__cache_writable(cache))
        return jc__set_error(JC_EREADONLY, "jc_cache_break_lease: the cache is read-only");
    owner_list ol;
    int rc = read_owners(cache, &ol);
    if (!rc)
        rc = jc__store_begin(cache->store);
    size_t removed = 0;
    bool named = false;
    for (size_t i = 0; i < ol.n && !rc; i++) {
        if (owner ? strcmp(owner, ol.owners[i]) != 0 : ol.items[i].alive)
            continue;
        named = true;
        int d = jc__store_lease_drop(cache->store, ol.owners[i]);
        rc = d < 0 ? d : 0;
        removed += d > 0;
    }
    if (jc__store_in_transaction(cache->store)) {
        int c = rc ? jc__store_rollback(cache->store) : jc__cache_commit(cache);
        rc = rc ? rc : c;
    }
    owner_list_free(&ol);
    if (!rc && owner && !named)
        rc = jc__set_error(JC_ENOTFOUND, "jc_cache_break_lease: no claims of '%s'", owner);
    if (count && !rc)
        *count = removed;
    return rc;
}

/* ---- the cache layer for run.c and inspect.c (cache.h) ---- */

size_t jc__cache_pending(const jc_cache *cache)
{
    return cache->ntouched;
}

void jc__cache_drop_pending(jc_cache *cache)
{
    cache->ntouched = 0;
}

size_t jc__cache_damaged(const jc_cache *cache)
{
    return cache->damaged;
}

int jc__cache_run_start(jc_cache *cache)
{
    if (cache->running)
        return jc__set_error(JC_EBUSY, "jc_run: this cache is already running a batch; a cache runs one at a time");
    cache->running = true;
    cache->run_thread = pthread_self();
    return 0;
}

void jc__cache_run_end(jc_cache *cache)
{
    cache->running = false;
}

bool jc__cache_running(const jc_cache *cache)
{
    return cache->running;
}

bool jc__cache_busy_elsewhere(const jc_cache *cache)
{
    return cache->running && !pthread_equal(cache->run_thread, pthread_self());
}

const jc_function *jc__cache_memo_function(jc_cache *cache, jc_fn fn)
{
    if (!fn || fn != cache->memo_fn || cache->memo_gen != jc__registry_generation()) {
        /* a memo loop calls one function: look it up once */
        cache->memo_desc = jc__function_by_ptr(fn);
        cache->memo_fn = cache->memo_desc ? fn : NULL;
        cache->memo_gen = jc__registry_generation();
    }
    return cache->memo_fn ? cache->memo_desc : NULL;
}

bool jc__cache_warn_once(jc_cache *cache, const jc_function *fn)
{
    for (size_t i = 0; i < cache->nwarned; i++)
        if (cache->warned[i] == fn)
            return false;
    const jc_function **w = realloc(cache->warned, (cache->nwarned + 1) * sizeof *w);
    if (w) {
        cache->warned = w;
        cache->warned[cache->nwarned++] = fn;
    }
    return true;
}

bool jc__cache_has_store(const jc_cache *cache)
{
    return cache && cache->store;
}

int jc__cache_begin(jc_cache *cache)
{
    return jc__store_begin(cache->store);
}

int jc__cache_rollback(jc_cache *cache)
{
    return jc__store_rollback(cache->store);
}

bool jc__cache_in_transaction(const jc_cache *cache)
{
    return jc__store_in_transaction(cache->store);
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

int jc__cache_row(jc_cache *cache, int64_t rowid, bool blobs, jc__row *row)
{
    return jc__store_row(cache->store, rowid, blobs, row);
}

int jc__cache_row_by_key(jc_cache *cache, const uint8_t key[JC__KEY_LEN], bool blobs, jc__row *row)
{
    return jc__store_row_by_key(cache->store, key, blobs, row);
}

int jc__cache_find_range(jc_cache *cache, const uint8_t lo[JC__KEY_LEN], const uint8_t hi[JC__KEY_LEN],
                         jc__row *row)
{
    return jc__store_find_range(cache->store, lo, hi, row);
}

int jc__cache_put_row(jc_cache *cache, const jc__row *row)
{
    return jc__store_put_row(cache->store, row);
}

int jc__cache_delete(jc_cache *cache, const uint8_t key[JC__KEY_LEN])
{
    return jc__store_delete(cache->store, key);
}

int jc__cache_delete_rowid(jc_cache *cache, int64_t rowid)
{
    return jc__store_delete_rowid(cache->store, rowid);
}

int jc__cache_pager_new(jc_cache *cache, const jc__select *q, jc__pager **out)
{
    return jc__store_pager_new(cache->store, q, out);
}

int jc__cache_pager_next(jc__pager *p, const int64_t **rowids, size_t *n)
{
    return jc__store_pager_next(p, rowids, n);
}

void jc__cache_pager_free(jc__pager *p)
{
    jc__store_pager_free(p);
}

int jc__cache_max_rowid(jc_cache *cache, int64_t *out)
{
    return jc__store_max_rowid(cache->store, out);
}

int jc__cache_remove(jc_cache *cache, const jc__select *q, int64_t *count, int64_t *bytes)
{
    return jc__store_remove(cache->store, q, count, bytes);
}

int jc__cache_remove_stale(jc_cache *cache, int64_t *count, int64_t *bytes)
{
    return jc__store_remove_stale(cache->store, count, bytes);
}

int jc__cache_remove_lru(jc_cache *cache, int64_t keep_entries, int64_t keep_bytes, int64_t *count,
                         int64_t *bytes)
{
    return jc__store_remove_lru(cache->store, keep_entries, keep_bytes, count, bytes);
}

int jc__cache_evict(jc_cache *cache, int64_t target, int64_t *count, int64_t *bytes)
{
    return jc__store_evict(cache->store, target, count, bytes);
}

int jc__cache_clamp_future(jc_cache *cache, int64_t *count)
{
    return jc__store_clamp_future(cache->store, count);
}

int jc__cache_groups(jc_cache *cache, int (*fn)(void *ctx, const jc__group *g), void *ctx)
{
    return jc__store_groups(cache->store, fn, ctx);
}

int jc__cache_facts(jc_cache *cache, jc__store_facts *out)
{
    return jc__store_facts_get(cache->store, out);
}

int jc__cache_integrity(jc_cache *cache, void (*fn)(void *ctx, const char *problem), void *ctx)
{
    return jc__store_integrity(cache->store, fn, ctx);
}

int jc__cache_vacuum_store(jc_cache *cache)
{
    return jc__store_vacuum(cache->store);
}

int jc__cache_backup_store(jc_cache *cache, const char *dest)
{
    return jc__store_backup(cache->store, dest);
}

/* ---- settings kept in the file ---- */

static const char *const config_keys[] = {"max-size", "log-runs"};

static int config_key(const char *key, char *meta, size_t cap)
{
    for (size_t i = 0; i < sizeof config_keys / sizeof *config_keys; i++)
        if (key && strcmp(key, config_keys[i]) == 0) {
            snprintf(meta, cap, "config.%s", key);
            return 0;
        }
    return jc__set_error(JC_EINVAL, "unknown setting '%s' (known: max-size, log-runs)", key ? key : "(null)");
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
    if (value && !is_size) {
        char *end = NULL;
        long long n = strtoll(value, &end, 10);
        if (end == value || *end || n < 0 || n > 100000000)
            return jc__set_error(JC_EINVAL, "setting %s: '%s' is not a count of runs", key, value);
    }
    rc = jc__store_begin(cache->store);
    if (!rc) {
        rc = jc__store_meta_set(cache->store, meta, value);
        rc = rc ? (jc__store_rollback(cache->store), rc) : jc__cache_commit(cache);
    }
    /* In force at once for this handle too, where the file's setting rules. */
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

/* ---- the record of runs ---- */

/* The program's command line, arguments joined by spaces (quoted where
 * they hold one); malloc'd. */
static char *command_line(void)
{
    FILE *f = fopen("/proc/self/cmdline", "re");
    char buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    jc__buf out = {0};
    for (size_t i = 0; i < n;) {
        const char *arg = buf + i;
        size_t len = strlen(arg);
        bool quote = strpbrk(arg, " \t'\"") != NULL || len == 0;
        if (out.len)
            jc__buf_write(&out, " ", 1);
        if (quote)
            jc__buf_write(&out, "'", 1);
        jc__buf_write(&out, arg, len);
        if (quote)
            jc__buf_write(&out, "'", 1);
        i += len + 1;
    }
    jc__buf_write(&out, "", 1);
    return out.oom ? (jc__buf_free(&out), jc__strdup("?")) : out.data;
}

void jc__cache_memo_note(jc_cache *cache, jc_status status, bool cached, double seconds, const char *message)
{
    if (!cache->memo.calls)
        cache->memo.started = jc__now();
    cache->memo.calls++;
    if (cached) {
        cache->memo.cached++;
        cache->memo.saved += seconds;
    } else if (status == JC_STATUS_OK) {
        cache->memo.computed++;
    } else {
        cache->memo.failed++;
        if (cache->memo.nfailures < 100) {
            char **f = realloc(cache->memo.failures, (cache->memo.nfailures + 1) * sizeof *f);
            char *text = jc__strdup_printf("%s\t%s", jc_status_name(status), message ? message : "?");
            if (f)
                cache->memo.failures = f;
            if (f && text)
                cache->memo.failures[cache->memo.nfailures++] = text;
            else
                free(text);
        }
    }
}

/* The session of jc_memo calls, as one run of kind "memo". */
static void record_memo_session(jc_cache *cache)
{
    jc__run_failure *fails = calloc(cache->memo.nfailures + 1, sizeof *fails);
    for (size_t i = 0; fails && i < cache->memo.nfailures; i++) {
        char *tab = strchr(cache->memo.failures[i], '\t');
        if (tab)
            *tab = '\0';
        fails[i].status = cache->memo.failures[i];
        fails[i].message = tab ? tab + 1 : "";
    }
    jc__run_row row = {
        .started = cache->memo.started, .ended = jc__now(), .kind = "memo", .n_jobs = 1,
        .backend = "in-process", .calls = (int64_t)cache->memo.calls, .cached = (int64_t)cache->memo.cached,
        .computed = (int64_t)cache->memo.computed, .failed = (int64_t)cache->memo.failed,
        .elapsed = jc__now() - cache->memo.started, .saved = cache->memo.saved,
        .status = cache->memo.failed ? "JC_EFAILED" : "ok", .failures = fails,
        .nfailures = fails ? cache->memo.nfailures : 0,
    };
    jc__cache_record_run(cache, &row);
    free(fails);
}

int jc__cache_record_run(jc_cache *cache, jc__run_row *r)
{
    if (!jc__cache_writable(cache) || jc__store_schema(cache->store) < 5)
        return 0;
    int64_t keep = jc__cache_log_runs(cache);
    if (keep == 0)
        return 0;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    char *cmd = command_line();
    r->host = host;
    r->pid = getpid();
    r->command = cmd ? cmd : "?";
    int rc = jc__store_begin(cache->store);
    if (!rc) {
        rc = jc__store_run_add(cache->store, r, keep);
        rc = rc ? (jc__store_rollback(cache->store), rc) : jc__cache_commit(cache);
    }
    free(cmd);
    return rc;
}

typedef struct runs_ctx {
    jc_run_fn fn;
    void *userdata;
} runs_ctx;

static int give_run(void *ctx, const jc__run_row *r)
{
    runs_ctx *c = ctx;
    jc_run_record rec = {
        .id = r->id, .started = r->started, .ended = r->ended, .host = r->host, .pid = (long)r->pid,
        .command = r->command, .kind = r->kind, .n_jobs = r->n_jobs, .backend = r->backend, .calls = r->calls,
        .cached = r->cached, .computed = r->computed, .failed = r->failed, .skipped = r->skipped,
        .elapsed = r->elapsed, .saved = r->saved, .status = r->status, .nfailures = r->nfailures,
        .failures = (const jc_run_failure *)r->failures,
    };
    c->fn(&rec, c->userdata);
    return 0;
}

int jc_cache_runs(jc_cache *cache, size_t last, bool failed_only, jc_run_fn fn, void *userdata)
{
    if (!cache || !cache->store || !fn)
        return jc__set_error(JC_EINVAL, "jc_cache_runs: %s", !cache ? "NULL cache" : !fn ? "NULL callback"
                                                                                   : "the cache is disabled");
    runs_ctx c = {fn, userdata};
    return jc__store_runs(cache->store, (int64_t)last, failed_only, give_run, &c);
}

int jc__cache_params_put(jc_cache *cache, const char *function, const char *version, const char *names)
{
    if (!cache->store)
        return 0;
    return jc__store_params_put(cache->store, function, version, names);
}

int jc__cache_params(jc_cache *cache, const char *function, const char *version, char **names)
{
    *names = NULL;
    if (!cache->store)
        return 0;
    return jc__store_params_get(cache->store, function, version, names);
}
