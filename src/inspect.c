/*
 * inspect: looking into and tending a cache, for programs and for the
 * jobcache command (jobcache.h, "Inspecting and tending a cache").
 *
 * The store does every SQL statement; this file decides what to select,
 * turns stored rows into jc_entry_info and values, and checks entries.
 *
 * Invariants kept here:
 *
 *  - Every change is one transaction of the store (begin_write/end_write),
 *    which first writes the hits the cache has queued: an entry just used
 *    then counts as used, and no queued hit lands on an entry that a later
 *    insert gave the same rowid.
 *  - A dry run makes its changes in a transaction that it rolls back, so
 *    that it reports exactly what the real run would remove.
 *  - Nothing read from a file is trusted blindly: an entry is checked
 *    (check_row: its key against its function, version and arguments,
 *    canonical arguments, a result that decodes, its sizes) before merge
 *    copies it, and a bad one is reported, never a crash. Its result itself
 *    cannot be checked: it is taken as the other cache computed it. Its
 *    times are clamped to now.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jc_internal.h"
#include "cache.h"

_Static_assert(JC_KEY_SIZE == JC__KEY_LEN, "the public and the internal key sizes agree");

/* Entries merged per transaction: a run sharing the file waits for one
 * batch at most, far below its busy timeout. */
enum { MERGE_BATCH = 500 };

/* ---- common ---- */

static int usable(const jc_cache *cache, const char *what)
{
    if (!cache)
        return jc__set_error(JC_EINVAL, "%s: NULL cache", what);
    if (!jc__cache_has_store(cache))
        return jc__set_error(JC_EINVAL, "%s: the cache is disabled (JC_CACHE_DISABLED) and has no file",
                             what);
    return 0;
}

static int writable(const jc_cache *cache, const char *what)
{
    int rc = usable(cache, what);
    if (!rc && !jc__cache_writable(cache))
        rc = jc__set_error(JC_EREADONLY, "%s: cache file '%s' was opened read-only", what,
                           jc_cache_path(cache));
    return rc;
}

/* Opens a write transaction, writing the queued hits first. */
static int begin_write(jc_cache *cache)
{
    return jc__cache_write_begin(cache);
}

/* Ends the transaction of begin_write: commits when rc is not an error and
 * keep is set, else rolls back. Returns rc, or the commit's failure. Only
 * after a begin_write that succeeded: a failed one has no transaction left,
 * and rolling back would replace its error with "rollback without a
 * transaction". */
static int end_write(jc_cache *cache, int rc, bool keep)
{
    return jc__cache_write_end(cache, rc, keep);
}

/* Before a dry run: its rollback must not take queued hits or an
 * enclosing transaction with it. */
static int prepare_dry_run(jc_cache *cache, const char *what)
{
    if (jc__cache_in_transaction(cache))
        return jc__set_error(JC_EINVAL, "%s: a dry run cannot be nested in a transaction", what);
    if (!jc__cache_pending(cache))
        return 0;
    int rc = begin_write(cache);
    return rc ? rc : end_write(cache, 0, true);
}

static void info_from_row(const jc__row *r, jc_entry_info *info)
{
    memset(info, 0, sizeof *info);
    memcpy(info->key, r->key, JC__KEY_LEN);
    jc__key_hex(info->key, info->key_hex);
    info->function = r->function;
    info->version = r->version;
    info->args_size = r->args_size;
    info->result_size = r->result_size;
    info->created = r->created;
    info->last_used = r->last_used;
    info->compute_seconds = r->compute_seconds;
    info->hits = r->hits;
}

static const int order_of_sort[] = {
    [JC_SORT_NAME] = JC__ORDER_NAME, [JC_SORT_USED] = JC__ORDER_USED,
    [JC_SORT_SIZE] = JC__ORDER_SIZE, [JC_SORT_TIME] = JC__ORDER_TIME,
    [JC_SORT_HITS] = JC__ORDER_HITS, [JC_SORT_CREATED] = JC__ORDER_CREATED,
};

/* last_used below which an entry is older than `age` seconds. */
static double used_before(double age)
{
    double t = jc__now() - age;
    /* An age reaching before 1970 matches no entry; the store reads 0 as
     * "no bound", which would match every entry. */
    return t > 0 ? t : 1e-9;
}

static bool bad_age(double age)
{
    return !(age >= 0) || isinf(age);
}

/* Turns a public filter (NULL: everything) into the store's selection. */
static int to_select(const jc_filter *f, jc__select *q, const char *what)
{
    memset(q, 0, sizeof *q);
    q->order = JC__ORDER_NAME;
    if (!f)
        return 0;
    if (bad_age(f->older_than) || bad_age(f->newer_than))
        return jc__set_error(JC_EINVAL, "%s: an age in the filter is negative or not a number", what);
    if ((unsigned)f->sort >= sizeof order_of_sort / sizeof *order_of_sort)
        return jc__set_error(JC_EINVAL, "%s: unknown sort order %d", what, (int)f->sort);
    q->function = f->function;
    q->version = f->version;
    q->used_before = f->older_than > 0 ? used_before(f->older_than) : 0;
    q->used_since = f->newer_than > 0 ? jc__now() - f->newer_than : 0;
    q->order = order_of_sort[f->sort];
    q->reverse = f->reverse;
    q->limit = f->limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)f->limit;
    return 0;
}

static void set_out(int64_t *p, int64_t v)
{
    if (p)
        *p = v;
}

/* ---- iterating ---- */

struct jc_entries {
    jc_cache *cache;
    jc__pager *pager;
    const int64_t *rowids; /* the current page, owned by the pager */
    size_t n, next;
    char *text; /* the current entry's function and version */
    size_t text_cap;
};

jc_entries *jc_entries_query(jc_cache *cache, const jc_filter *filter)
{
    jc__select q;
    jc_entries *it = NULL;
    if (usable(cache, "jc_entries_query") || to_select(filter, &q, "jc_entries_query"))
        return NULL;
    it = calloc(1, sizeof *it);
    if (!it) {
        jc__set_error(JC_ENOMEM, "out of memory listing entries");
        return NULL;
    }
    it->cache = cache;
    if (jc__cache_pager_new(cache, &q, &it->pager)) {
        free(it);
        return NULL;
    }
    return it;
}

/* Copies the row's strings into the iterator, so that they outlive the
 * next call on the store. */
static int keep_strings(jc_entries *it, jc__row *r)
{
    size_t fl = strlen(r->function), vl = strlen(r->version);
    if (fl + vl + 2 > it->text_cap) {
        char *t = realloc(it->text, fl + vl + 2);
        if (!t)
            return jc__set_error(JC_ENOMEM, "out of memory listing entries");
        it->text = t;
        it->text_cap = fl + vl + 2;
    }
    memcpy(it->text, r->function, fl + 1);
    memcpy(it->text + fl + 1, r->version, vl + 1);
    r->function = it->text;
    r->version = it->text + fl + 1;
    return 0;
}

int jc_entries_next(jc_entries *it, jc_entry_info *info)
{
    if (!it || !info)
        return jc__set_error(JC_EINVAL, "jc_entries_next: NULL %s", it ? "info" : "iterator");
    for (;;) {
        if (it->next == it->n) {
            int rc = jc__cache_pager_next(it->pager, &it->rowids, &it->n);
            it->next = 0;
            if (rc || it->n == 0)
                return rc;
        }
        jc__row r;
        int rc = jc__cache_row(it->cache, it->rowids[it->next++], false, &r);
        if (rc == 0)
            continue; /* removed since the query */
        if (rc < 0)
            return rc;
        rc = keep_strings(it, &r);
        if (rc)
            return rc;
        info_from_row(&r, info);
        return 1;
    }
}

void jc_entries_free(jc_entries *it)
{
    if (!it)
        return;
    jc__cache_pager_free(it->pager);
    free(it->text);
    free(it);
}

/* ---- single entries ---- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The keys starting with hex lie in [lo, hi]: the missing digits are 0 in
 * lo and f in hi. */
static int prefix_range(const char *hex, uint8_t lo[JC__KEY_LEN], uint8_t hi[JC__KEY_LEN])
{
    size_t n = strlen(hex);
    if (n == 0 || n > 2 * JC__KEY_LEN)
        return jc__set_error(JC_EINVAL, "'%.40s' is not a key prefix: give 1 to %d hex digits", hex,
                             2 * JC__KEY_LEN);
    memset(lo, 0, JC__KEY_LEN);
    memset(hi, 0xff, JC__KEY_LEN);
    for (size_t i = 0; i < n; i++) {
        int d = hex_digit(hex[i]);
        if (d < 0)
            return jc__set_error(JC_EINVAL, "'%.40s' is not a key prefix: '%c' is not a hex digit",
                                 hex, isprint((unsigned char)hex[i]) ? hex[i] : '?');
        if (i % 2 == 0) {
            lo[i / 2] = (uint8_t)(d << 4);
            hi[i / 2] = (uint8_t)(d << 4 | 0x0f);
        } else {
            lo[i / 2] = (uint8_t)(lo[i / 2] | d);
            hi[i / 2] = (uint8_t)((hi[i / 2] & 0xf0) | d);
        }
    }
    return 0;
}

int jc_entry_find(jc_cache *cache, const char *hex_prefix, jc_entry_info *info)
{
    uint8_t lo[JC__KEY_LEN], hi[JC__KEY_LEN];
    jc__row r;
    int rc = usable(cache, "jc_entry_find");
    if (!rc && (!hex_prefix || !info))
        rc = jc__set_error(JC_EINVAL, "jc_entry_find: NULL %s", hex_prefix ? "info" : "key prefix");
    if (!rc)
        rc = prefix_range(hex_prefix, lo, hi);
    if (!rc)
        rc = jc__cache_find_range(cache, lo, hi, &r);
    if (rc == 0)
        return jc__set_error(JC_ENOTFOUND, "no entry of cache file '%s' has a key starting with '%s'",
                             jc_cache_path(cache), hex_prefix);
    if (rc == 2)
        return jc__set_error(JC_EAMBIGUOUS,
                             "key prefix '%s' matches several entries of cache file '%s'; give more "
                             "digits",
                             hex_prefix, jc_cache_path(cache));
    if (rc < 0)
        return rc;
    info_from_row(&r, info);
    return 0;
}

int jc_function_params(jc_cache *cache, const char *function, const char *version, char ***names, size_t *n)
{
    if (names)
        *names = NULL;
    if (n)
        *n = 0;
    int rc = usable(cache, "jc_function_params");
    if (!rc && (!function || !version || !names || !n))
        rc = jc__set_error(JC_EINVAL, "jc_function_params: NULL argument");
    char *text = NULL;
    if (!rc)
        rc = jc__cache_params(cache, function, version, &text);
    if (rc <= 0)
        return rc;
    /* "beta,seed": one block holding the pointers, then the text. */
    size_t count = 1;
    for (const char *p = text; *p; p++)
        count += *p == ',';
    size_t len = strlen(text) + 1;
    char **out = malloc((count + 1) * sizeof *out + len);
    if (!out) {
        free(text);
        return jc__set_error(JC_ENOMEM, "out of memory reading parameter names");
    }
    char *copy = (char *)(out + count + 1);
    memcpy(copy, text, len);
    free(text);
    size_t k = 0;
    out[k++] = copy;
    for (char *p = copy; *p; p++)
        if (*p == ',') {
            *p = '\0';
            out[k++] = p + 1;
        }
    out[k] = NULL;
    *names = out;
    *n = count;
    return 1;
}

/* Replaces the message of a failed decoding with one that names the entry. */
static int decode_failed(int rc, const jc_cache *cache, const uint8_t key[JC__KEY_LEN],
                         const char *what)
{
    char hex[2 * JC__KEY_LEN + 1], why[512];
    /* The codec's own reason (an error code and its reason, not the text
     * of its message taken apart). The message buffer is rewritten below. */
    snprintf(why, sizeof why, "%s", rc == JC_EDECODE ? jc__decode_reason() : jc_errmsg());
    jc__key_hex(key, hex);
    return jc__set_error(rc, "entry %s of cache file '%s': the %s do%s not decode (%s)", hex,
                         jc_cache_path(cache), what, strcmp(what, "result") == 0 ? "es" : "", why);
}

/* Splits decoded arguments (positional values and KWARG values, taken
 * over and freed with argv) into a list and a map. */
static int split_args(jc_value **argv, size_t argc, jc_value **args, jc_value **kwargs)
{
    jc_value *list = jc_list_new(), *map = jc_map_new();
    int rc = list && map ? 0 : jc__set_error(JC_ENOMEM, "out of memory decoding arguments");
    for (size_t i = 0; i < argc; i++) {
        jc_value *v = argv[i];
        if (rc) {
            jc_value_free(v);
        } else if (v->type == JC_TYPE_KWARG) {
            char *name = v->u.kw.name;
            jc_value *val = v->u.kw.val;
            v->u.kw.name = NULL;
            v->u.kw.val = NULL;
            jc_value_free(v);
            rc = jc__map_insert(map, name, val); /* takes both over */
        } else {
            rc = jc__list_push(list, v); /* an argument may be as deep as the limit */
        }
    }
    free(argv);
    if (rc) {
        jc_value_free(list);
        jc_value_free(map);
        return rc;
    }
    *args = list;
    *kwargs = map;
    return 0;
}

static void free_argv(jc_value **argv, size_t argc)
{
    for (size_t i = 0; i < argc; i++)
        jc_value_free(argv[i]);
    free(argv);
}

int jc_entry_load(jc_cache *cache, const uint8_t key[JC_KEY_SIZE], jc_value **args,
                  jc_value **kwargs, jc_value **result)
{
    jc_value **argv = NULL, *a = NULL, *k = NULL, *res = NULL;
    size_t argc = 0;
    jc__row r;
    if (args)
        *args = NULL;
    if (kwargs)
        *kwargs = NULL;
    if (result)
        *result = NULL;
    int rc = usable(cache, "jc_entry_load");
    if (!rc && !key)
        rc = jc__set_error(JC_EINVAL, "jc_entry_load: NULL key");
    if (!rc)
        rc = jc__cache_row_by_key(cache, key, true, &r);
    if (rc == 0) {
        char hex[2 * JC__KEY_LEN + 1];
        jc__key_hex(key, hex);
        return jc__set_error(JC_ENOTFOUND, "cache file '%s' has no entry %s", jc_cache_path(cache), hex);
    }
    if (rc < 0)
        return rc;
    rc = 0;
    if (args || kwargs) {
        rc = jc__decode_args(r.args, r.args_len, &argv, &argc);
        if (rc)
            rc = decode_failed(rc, cache, key, "arguments");
        else
            rc = split_args(argv, argc, &a, &k);
    }
    if (!rc && result && (rc = jc__decode_value(r.result, r.result_len, &res)))
        rc = decode_failed(rc, cache, key, "result");
    if (rc) {
        jc_value_free(a);
        jc_value_free(k);
        return rc;
    }
    if (args)
        *args = a;
    else
        jc_value_free(a);
    if (kwargs)
        *kwargs = k;
    else
        jc_value_free(k);
    if (result)
        *result = res;
    return 0;
}

int jc_entry_remove(jc_cache *cache, const uint8_t key[JC_KEY_SIZE])
{
    int rc = writable(cache, "jc_entry_remove");
    if (!rc && !key)
        rc = jc__set_error(JC_EINVAL, "jc_entry_remove: NULL key");
    if (!rc)
        rc = begin_write(cache);
    if (rc)
        return rc;
    rc = end_write(cache, jc__cache_delete(cache, key), true);
    if (rc == 0) {
        char hex[2 * JC__KEY_LEN + 1];
        jc__key_hex(key, hex);
        return jc__set_error(JC_ENOTFOUND, "cache file '%s' has no entry %s", jc_cache_path(cache), hex);
    }
    return rc < 0 ? rc : 0;
}

/* ---- removing in bulk ---- */

int jc_cache_remove_matching(jc_cache *cache, const jc_filter *filter, bool dry_run,
                             int64_t *count, int64_t *bytes)
{
    static const char what[] = "jc_cache_remove_matching";
    jc__select q;
    int64_t c = 0, b = 0;
    set_out(count, 0);
    set_out(bytes, 0);
    int rc = writable(cache, what);
    if (!rc)
        rc = to_select(filter, &q, what);
    if (!rc && dry_run)
        rc = prepare_dry_run(cache, what);
    if (!rc)
        rc = begin_write(cache);
    if (rc)
        return rc;
    rc = end_write(cache, jc__cache_remove(cache, &q, &c, &b), !dry_run);
    if (rc)
        return rc;
    set_out(count, c);
    set_out(bytes, b);
    return 0;
}

static int check_prune_options(const jc_prune_options *o)
{
    if (bad_age(o->older_than))
        return jc__set_error(JC_EINVAL, "jc_cache_prune: older_than is negative or not a number");
    if (o->max_entries < 0 || o->max_size < 0 || o->max_payload < 0)
        return jc__set_error(JC_EINVAL, "jc_cache_prune: max_%s is negative",
                             o->max_size < 0 ? "size" : o->max_payload < 0 ? "payload" : "entries");
    return 0;
}

/* a + b for sums of figures read from the file (sizes, counts, hits): a
 * hostile file can hold INT64_MAX in any of them, so sums saturate
 * instead of overflowing. */
static int64_t sum_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* The rules of o in their documented order, inside one transaction. */
static int prune_rules(jc_cache *cache, const jc_prune_options *o, int64_t *count, int64_t *bytes)
{
    int64_t c = 0, b = 0;
    /* Times later than now are written back as now first: every rule below
     * reads them as now anyway, and written back they age from today. */
    int rc = jc__cache_clamp_future(cache, NULL);
    if (!rc && o->other_formats) {
        rc = jc__cache_remove(cache, &(jc__select){.other_formats = true}, &c, &b);
        *count = sum_sat(*count, c);
        *bytes = sum_sat(*bytes, b);
    }
    if (!rc && o->stale_versions) {
        rc = jc__cache_remove_stale(cache, &c, &b);
        *count = sum_sat(*count, c);
        *bytes = sum_sat(*bytes, b);
    }
    if (!rc && o->older_than > 0) {
        jc__select q = {.used_before = used_before(o->older_than)};
        rc = jc__cache_remove(cache, &q, &c, &b);
        *count = sum_sat(*count, c);
        *bytes = sum_sat(*bytes, b);
    }
    if (!rc && (o->max_entries > 0 || o->max_payload > 0)) {
        rc = jc__cache_remove_lru(cache, o->max_entries, o->max_payload, &c, &b);
        *count = sum_sat(*count, c);
        *bytes = sum_sat(*bytes, b);
    }
    if (!rc && o->max_size > 0) {
        rc = jc__cache_evict(cache, o->max_size, &c, &b);
        *count = sum_sat(*count, c);
        *bytes = sum_sat(*bytes, b);
    }
    return rc;
}

int jc_cache_prune(jc_cache *cache, const jc_prune_options *opts, bool dry_run, int64_t *count,
                   int64_t *bytes)
{
    static const char what[] = "jc_cache_prune";
    jc_prune_options none = {0};
    int64_t c = 0, b = 0;
    set_out(count, 0);
    set_out(bytes, 0);
    if (!opts)
        opts = &none;
    int rc = writable(cache, what);
    if (!rc)
        rc = check_prune_options(opts);
    if (!rc && dry_run)
        rc = prepare_dry_run(cache, what);
    if (!rc)
        rc = begin_write(cache);
    if (rc)
        return rc;
    rc = end_write(cache, prune_rules(cache, opts, &c, &b), !dry_run);
    if (rc)
        return rc;
    /* The file shrinks to what it holds now (the -wal file is truncated,
     * an older file without auto_vacuum is vacuumed once). */
    if (!dry_run && (opts->max_size > 0 || c > 0))
        jc__cache_settle(cache, opts->max_size);
    set_out(count, c);
    set_out(bytes, b);
    return 0;
}

int jc_cache_clear(jc_cache *cache, int64_t *count)
{
    jc__select all = {0};
    int64_t c = 0;
    set_out(count, 0);
    int rc = writable(cache, "jc_cache_clear");
    if (!rc)
        rc = begin_write(cache);
    if (rc)
        return rc;
    rc = end_write(cache, jc__cache_remove(cache, &all, &c, NULL), true);
    if (!rc)
        set_out(count, c);
    return rc;
}

int jc_cache_vacuum(jc_cache *cache)
{
    int rc = writable(cache, "jc_cache_vacuum");
    if (!rc && jc__cache_pending(cache)) {
        rc = begin_write(cache);
        if (!rc)
            rc = end_write(cache, 0, true);
    }
    return rc ? rc : jc__cache_vacuum_store(cache);
}

int jc_cache_backup(jc_cache *cache, const char *dest_path)
{
    int rc = usable(cache, "jc_cache_backup");
    if (rc)
        return rc;
    if (jc__cache_running(cache))
        return jc__set_error(JC_EBUSY, "jc_cache_backup: the cache is running a batch");
    /* This process's hits not yet written go into the copy too. */
    if (jc__cache_pending(cache) && jc__cache_writable(cache) && begin_write(cache) == 0)
        end_write(cache, 0, true);
    return jc__cache_backup_store(cache, dest_path);
}

/* ---- figures ---- */

typedef struct stats_builder {
    jc_stats *s;
    jc_function_stats *fs;
    size_t cap;
} stats_builder;

static int add_group(void *ctx, const jc__group *g)
{
    stats_builder *b = ctx;
    jc_stats *s = b->s;
    if (s->nfunctions == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        jc_function_stats *fs = realloc(b->fs, cap * sizeof *fs);
        if (!fs)
            return jc__set_error(JC_ENOMEM, "out of memory summing up a cache");
        b->fs = fs;
        b->cap = cap;
        s->functions = fs;
    }
    jc_function_stats *f = &b->fs[s->nfunctions];
    memset(f, 0, sizeof *f);
    f->function = jc__strdup(g->function);
    f->version = jc__strdup(g->version);
    s->nfunctions++; /* counted now, so that jc_stats_free frees the strings */
    if (!f->function || !f->version)
        return jc__set_error(JC_ENOMEM, "out of memory summing up a cache");
    f->entries = g->entries;
    f->bytes = sum_sat(g->args_bytes, g->result_bytes);
    f->compute_seconds = g->compute_seconds;
    f->mean_seconds = g->entries ? g->compute_seconds / (double)g->entries : 0;
    f->hits = g->hits;
    f->saved_seconds = g->saved_seconds;
    f->oldest = g->oldest;
    f->newest = g->newest;
    f->last_used = g->last_used;
    f->code_fingerprints = g->code_fingerprints;
    s->other_format_entries += g->other_formats;

    bool first = s->entries == 0;
    s->entries = sum_sat(s->entries, g->entries);
    s->args_bytes = sum_sat(s->args_bytes, g->args_bytes);
    s->result_bytes = sum_sat(s->result_bytes, g->result_bytes);
    s->payload_bytes = sum_sat(s->payload_bytes, f->bytes);
    s->compute_seconds += g->compute_seconds;
    s->hits = sum_sat(s->hits, g->hits);
    s->saved_seconds += g->saved_seconds;
    s->oldest = first || g->oldest < s->oldest ? g->oldest : s->oldest;
    s->newest = first || g->newest > s->newest ? g->newest : s->newest;
    s->last_used = first || g->last_used > s->last_used ? g->last_used : s->last_used;
    return 0;
}

static int64_t file_size(const char *path, const char *suffix)
{
    char buf[4096];
    struct stat sb;
    snprintf(buf, sizeof buf, "%s%s", path, suffix);
    return stat(buf, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

static void count_lease(const jc_lease_info *l, void *userdata)
{
    jc_stats *s = userdata;
    if (l->alive) {
        s->leases_alive++;
        s->leases_calls += l->calls;
    } else {
        s->leases_stale++;
    }
}

jc_stats *jc_cache_stats(jc_cache *cache)
{
    jc__store_facts facts;
    stats_builder b = {0};
    if (usable(cache, "jc_cache_stats"))
        return NULL;
    b.s = calloc(1, sizeof *b.s);
    if (!b.s || !(b.s->path = jc__strdup(jc_cache_path(cache)))) {
        jc__set_error(JC_ENOMEM, "out of memory summing up a cache");
        goto fail;
    }
    /* Hits not yet written count too: written first when the file takes
     * them, else added to the totals (not per function) from memory. */
    int64_t pending_hits = 0;
    double pending_saved = 0;
    if (jc__cache_pending(cache) && jc__cache_writable(cache) && !jc__cache_in_transaction(cache) &&
        jc__cache_begin(cache) == 0) {
        jc__cache_flush_touches(cache);
        jc__cache_commit(cache);
    }
    jc__cache_pending_hits(cache, &pending_hits, &pending_saved);
    if (jc__cache_facts(cache, &facts) ||
        jc__cache_groups(cache, add_group, &b))
        goto fail;
    b.s->hits += pending_hits;
    b.s->saved_seconds += pending_saved;
    b.s->schema_version = (int)facts.schema_version;
    b.s->key_format = (int)facts.key_format;
    b.s->free_bytes = facts.free_bytes;
    b.s->wal_bytes = file_size(jc_cache_path(cache), "-wal");
    if (jc_cache_leases(cache, count_lease, b.s, NULL))
        goto fail;
    b.s->file_bytes = file_size(jc_cache_path(cache), "") + b.s->wal_bytes;
    return b.s;

fail:
    jc_stats_free(b.s);
    return NULL;
}

void jc_stats_free(jc_stats *stats)
{
    if (!stats)
        return;
    jc_function_stats *fs = (jc_function_stats *)stats->functions;
    for (size_t i = 0; i < stats->nfunctions; i++) {
        free((char *)fs[i].function);
        free((char *)fs[i].version);
    }
    free(fs);
    free((char *)stats->path);
    free(stats);
}

/* ---- checking entries ---- */

/* Writes why a decoding failed, without the codec's generic lead-in. */
static void decode_problem(char *problem, size_t cap, const char *what)
{
    snprintf(problem, cap, "the %s not decode (%s)", what, jc__decode_reason());
}

/* Whether the decoded arguments encode back to exactly the stored bytes:
 * 1 yes, 0 no, or a negative code. */
static int args_canonical(const jc__row *r, jc_value **argv, size_t argc)
{
    jc__buf b = {0};
    int rc = jc__encode_args(argv, argc, jc__buf_write, &b);
    if (!rc && b.oom)
        rc = jc__set_error(JC_ENOMEM, "out of memory checking an entry");
    if (!rc)
        rc = b.len == r->args_len && (b.len == 0 || memcmp(b.data, r->args, b.len) == 0);
    else if (rc != JC_ENOMEM)
        rc = 0; /* decoded but cannot be encoded (say, too deep): not canonical */
    jc__buf_free(&b);
    return rc;
}

/* Checks an entry read with its blobs: 0 when sound, 1 with the problem
 * written to problem, or a negative code (out of memory). */
static int check_row(const jc__row *r, char *problem, size_t cap)
{
    uint8_t key[JC__KEY_LEN];
    jc_value **argv = NULL, *res = NULL;
    size_t argc = 0;
    if (r->key_len != JC__KEY_LEN) {
        snprintf(problem, cap, "the key is %zu bytes long, not %d", r->key_len, JC__KEY_LEN);
        return 1;
    }
    int rc = jc__key_from_blob(r->function, r->version, r->args, r->args_len, key);
    if (rc)
        return rc;
    if (memcmp(key, r->key, JC__KEY_LEN) != 0) {
        snprintf(problem, cap, "the key does not match the function, version and arguments stored "
                               "with it");
        return 1;
    }
    rc = jc__decode_args(r->args, r->args_len, &argv, &argc);
    if (rc == JC_EDECODE) {
        decode_problem(problem, cap, "arguments do");
        return 1;
    }
    if (rc)
        return rc;
    rc = args_canonical(r, argv, argc);
    free_argv(argv, argc);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        snprintf(problem, cap, "the arguments are not in canonical form");
        return 1;
    }
    if (r->check_len && r->check_len != JC__CHECK_LEN) {
        snprintf(problem, cap, "the result's checksum is %zu bytes long, not %d", r->check_len, JC__CHECK_LEN);
        return 1;
    }
    if (r->check_len) {
        uint8_t check[JC__CHECK_LEN];
        jc__result_check(r->result, r->result_len, check);
        if (memcmp(check, r->check, JC__CHECK_LEN) != 0) {
            snprintf(problem, cap, "the result does not match the checksum stored with it (its bytes "
                                   "changed after it was stored)");
            return 1;
        }
    }
    if (r->code_fp_len && r->code_fp_len != JC__CHECK_LEN) {
        snprintf(problem, cap, "the code fingerprint is %zu bytes long, not %d", r->code_fp_len, JC__CHECK_LEN);
        return 1;
    }
    rc = jc__decode_value(r->result, r->result_len, &res);
    jc_value_free(res);
    if (rc == JC_EDECODE) {
        decode_problem(problem, cap, "result does");
        return 1;
    }
    if (rc)
        return rc;
    if (r->args_size != (int64_t)r->args_len || r->result_size != (int64_t)r->result_len) {
        snprintf(problem, cap,
                 "the recorded sizes (%lld and %lld bytes) are not those of the stored arguments "
                 "and result (%zu and %zu bytes)",
                 (long long)r->args_size, (long long)r->result_size, r->args_len, r->result_len);
        return 1;
    }
    return 0;
}

typedef struct verifier {
    jc_verify_fn fn;
    void *userdata;
    jc_verify_result res;
    int64_t *bad; /* rowids to remove */
    size_t nbad, badcap;
} verifier;

static void file_problem(void *ctx, const char *problem)
{
    verifier *v = ctx;
    v->res.file_problems++;
    if (v->fn)
        v->fn(NULL, problem, v->userdata);
}

static int note_bad(verifier *v, const jc__row *r, const char *problem, bool repair)
{
    jc_entry_info info;
    v->res.bad_entries++;
    info_from_row(r, &info);
    if (v->fn)
        v->fn(&info, problem, v->userdata);
    if (!repair)
        return 0;
    if (v->nbad == v->badcap) {
        size_t cap = v->badcap ? v->badcap * 2 : 16;
        int64_t *nb = realloc(v->bad, cap * sizeof *nb);
        if (!nb)
            return jc__set_error(JC_ENOMEM, "out of memory verifying a cache");
        v->bad = nb;
        v->badcap = cap;
    }
    v->bad[v->nbad++] = r->rowid;
    return 0;
}

/* Reads and checks the entry rowid. A read that finds the file damaged is
 * a problem of the file, reported, and the check goes on. */
static int verify_one(jc_cache *cache, verifier *v, int64_t rowid, bool repair)
{
    char problem[600];
    jc__row r;
    int rc = jc__cache_row(cache, rowid, true, &r);
    if (rc == JC_ECORRUPT) {
        /* On a damaged page: counted; the first one's message is reported
         * (the others say the same of their neighbours). */
        if (v->res.unreadable++ == 0)
            file_problem(v, jc_errmsg());
        return 0;
    }
    if (rc <= 0)
        return rc;
    if (r.key_format != JC_KEY_FORMAT_VERSION) {
        /* Made by a release of another key format: its key cannot be
         * recomputed here, and it is no damage (it is never served). */
        v->res.other_format++;
        return 0;
    }
    v->res.checked++;
    v->res.unchecked += r.check_len == 0;
    rc = check_row(&r, problem, sizeof problem);
    return rc == 1 ? note_bad(v, &r, problem, repair) : rc;
}

/* Removes the bad entries in one transaction, each checked again first:
 * another process may have rewritten it with a sound result meanwhile. */
static int remove_bad(jc_cache *cache, verifier *v)
{
    char problem[600];
    int rc = begin_write(cache);
    if (rc) /* no transaction to end: keep begin's own error (JC_EBUSY, ...) */
        return rc;
    for (size_t i = 0; i < v->nbad && !rc; i++) {
        jc__row r;
        rc = jc__cache_row(cache, v->bad[i], true, &r);
        if (rc == 1 && r.key_format != JC_KEY_FORMAT_VERSION)
            rc = 0; /* rewritten meanwhile by a release of another key format: kept */
        if (rc == 1 && (rc = check_row(&r, problem, sizeof problem)) == 1) {
            rc = jc__cache_delete_rowid(cache, v->bad[i]);
            v->res.removed += rc == 1;
        }
        rc = rc < 0 ? rc : 0;
    }
    rc = end_write(cache, rc, true);
    if (rc)
        v->res.removed = 0;
    return rc;
}

int jc_cache_verify(jc_cache *cache, bool repair, jc_verify_fn fn, void *userdata,
                    jc_verify_result *out)
{
    verifier v = {.fn = fn, .userdata = userdata};
    jc__pager *pg = NULL;
    const int64_t *ids = NULL;
    size_t n = 0;
    int rc = repair ? writable(cache, "jc_cache_verify") : usable(cache, "jc_cache_verify");
    if (rc)
        goto out;
    rc = jc__cache_integrity(cache, file_problem, &v);
    if (rc == JC_ECORRUPT) {
        /* The check itself stopped on damage: that is a finding too. */
        file_problem(&v, jc_errmsg());
        rc = 0;
    }
    if (rc < 0)
        goto out;
    rc = jc__cache_pager_new(cache, &(jc__select){.order = JC__ORDER_ROWID}, &pg);
    int64_t last = 0; /* the last row id checked: pages come in row id order */
    while (!rc && (rc = jc__cache_pager_next(pg, &ids, &n)) == 0 && n)
        for (size_t i = 0; i < n && !rc; i++) {
            rc = verify_one(cache, &v, ids[i], repair);
            last = ids[i];
        }
    if (rc == JC_ECORRUPT) {
        /* The table cannot be listed past a damaged page: that is a
         * finding, and every entry after the last one checked that can
         * still be read is checked, by row id up to the largest (each read
         * touches only its own pages). */
        file_problem(&v, jc_errmsg());
        int64_t max = 0;
        rc = jc__cache_max_rowid(cache, &max);
        if (rc == JC_ECORRUPT) {
            file_problem(&v, jc_errmsg());
            rc = 0;
        }
        for (int64_t id = last + 1; id <= max && !rc; id++)
            rc = verify_one(cache, &v, id, repair);
    }
    if (!rc && v.nbad)
        rc = remove_bad(cache, &v);
out:
    jc__cache_pager_free(pg);
    free(v.bad);
    if (out)
        *out = v.res;
    return rc;
}

/* ---- merging ---- */

/* Copies one entry of other into cache. */
static int merge_one(jc_cache *cache, jc_cache *other, int64_t rowid, jc_merge_result *res)
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
    rc = check_row(&theirs, problem, sizeof problem);
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
        if (found && mine.result_len == theirs.result_len &&
            mine.compute_seconds == theirs.compute_seconds &&
            (mine.result_len == 0 || memcmp(mine.result, theirs.result, mine.result_len) == 0)) {
            res->kept++;
            return 0;
        }
    }
    rc = jc__cache_put_row(cache, &theirs);
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
            rc = begin_write(cache);
            if (!rc)
                rc = end_write(cache, jc__cache_params_put(cache, fv.function[i], fv.version[i], theirs), true);
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

int jc_cache_merge(jc_cache *cache, const char *other_path, jc_merge_result *out)
{
    jc_merge_result res = {0};
    jc_cache *other = NULL;
    jc__pager *pg = NULL;
    const int64_t *ids = NULL;
    size_t n = 0, done = 0;
    bool in_txn = false;
    int rc = writable(cache, "jc_cache_merge");
    if (!rc && !other_path)
        rc = jc__set_error(JC_EINVAL, "jc_cache_merge: NULL path of the other cache");
    if (!rc && !(other = jc_cache_open(other_path, &(jc_cache_options){.flags = JC_CACHE_READONLY})))
        rc = jc_errcode();
    if (!rc)
        rc = jc__cache_pager_new(other, &(jc__select){.order = JC__ORDER_ROWID}, &pg);
    while (!rc && (rc = jc__cache_pager_next(pg, &ids, &n)) == 0 && n) {
        for (size_t i = 0; i < n && !rc; i++) {
            if (!in_txn) {
                rc = begin_write(cache);
                in_txn = rc == 0;
            }
            if (!rc)
                rc = merge_one(cache, other, ids[i], &res);
            if (!rc && ++done % MERGE_BATCH == 0) {
                in_txn = false;
                rc = end_write(cache, rc, true);
            }
        }
    }
    if (in_txn)
        rc = end_write(cache, rc, true);
    jc__cache_pager_free(pg);
    if (!rc)
        rc = merge_params(cache, other);
    jc_cache_close(other);
    if (out)
        *out = res;
    return rc;
}

/* ---- parsing sizes and ages ---- */

/* Reads digits[.digits] at *p into an integer part and a fraction;
 * advances *p. False when there is no digit or the integer part overflows. */
static bool read_number(const char **p, uint64_t *whole, double *frac)
{
    const char *s = *p;
    uint64_t w = 0;
    double f = 0, scale = 0.1;
    bool digits = false;
    for (; *s >= '0' && *s <= '9'; s++, digits = true) {
        if (w > (UINT64_MAX - 9) / 10)
            return false;
        w = w * 10 + (uint64_t)(*s - '0');
    }
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++, digits = true, scale /= 10)
            f += (*s - '0') * scale;
    if (!digits)
        return false;
    *p = s;
    *whole = w;
    *frac = f;
    return true;
}

static int bad_size(const char *text)
{
    return jc__set_error(JC_EINVAL,
                         "'%.60s' is not a size: give a number of bytes with an optional unit K, "
                         "M, G or T (powers of 1024, as KiB, MiB...) or kB, MB, GB or TB (powers of "
                         "1000), such as 500M, 2G or 100MB",
                         text ? text : "(null)");
}

int jc_parse_size(const char *text, int64_t *out)
{
    static const char units[] = "KMGT";
    const char *p = text;
    uint64_t whole, mult = 1;
    double frac;
    if (!text || !out || !read_number(&p, &whole, &frac))
        return bad_size(text);
    const char *u = *p ? strchr(units, toupper((unsigned char)*p)) : NULL;
    if (u) {
        /* A bare letter and "iB" are powers of 1024 (the promise of 0.1.0:
         * "500M" is 500 MiB); a letter then "B" is a power of 1000, as SI
         * and disk makers write it (issue 13). */
        p++;
        bool decimal = *p == 'B' || *p == 'b';
        if (*p == 'i' && (p[1] == 'B' || p[1] == 'b'))
            p += 2;
        else if (decimal)
            p++;
        for (const char *k = units; k <= u; k++)
            mult *= decimal ? 1000 : 1024;
    } else if (*p == 'B' || *p == 'b') {
        p++;
    }
    if (*p)
        return bad_size(text);
    if (whole > (uint64_t)INT64_MAX / mult)
        return bad_size(text);
    uint64_t bytes = whole * mult;
    uint64_t extra = (uint64_t)(frac * (double)mult);
    if (extra > (uint64_t)INT64_MAX - bytes)
        return bad_size(text);
    *out = (int64_t)(bytes + extra);
    return 0;
}

int jc_parse_age(const char *text, double *out)
{
    const char *p = text;
    uint64_t whole;
    double frac, unit;
    if (!text || !out || !read_number(&p, &whole, &frac))
        goto bad;
    switch (tolower((unsigned char)*p)) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: goto bad;
    }
    if (p[1])
        goto bad;
    *out = ((double)whole + frac) * unit;
    return 0;
bad:
    return jc__set_error(JC_EINVAL,
                         "'%.60s' is not an age: give a number and a unit, s, m (minutes), h, d "
                         "or w, such as 90s, 12h or 30d",
                         text ? text : "(null)");
}

int jc_call_key(const char *function, const char *version, jc_value *const *args, size_t nargs,
                uint8_t key[JC_KEY_SIZE])
{
    if (!function || !version || !key || (!args && nargs))
        return jc__set_error(JC_EINVAL, "jc_call_key: NULL %s", !function ? "function" : !version ? "version"
                                                                 : !key     ? "key"
                                                                            : "args");
    for (size_t i = 0; i < nargs; i++)
        if (!args[i])
            return jc__set_error(JC_EINVAL, "jc_call_key: argument %zu is NULL", i);
    return jc__key_compute(function, version, args, nargs, key);
}
