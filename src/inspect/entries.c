/*
 * Entries one by one: listing them (jc_entries_*), finding, loading and
 * removing one, parameter names.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jc_internal.h"
#include "inspect_int.h"

/* ---- common ---- */

int jc__i_usable(const jc_cache *cache, const char *what)
{
    if (!cache)
        return jc__set_error(JC_EINVAL, "%s: NULL cache", what);
    if (!jc__cache_has_store(cache))
        return jc__set_error(JC_EINVAL, "%s: the cache is disabled (JC_CACHE_DISABLED) and has no file",
                             what);
    return 0;
}

int jc__i_writable(const jc_cache *cache, const char *what)
{
    int rc = jc__i_usable(cache, what);
    if (!rc && !jc__cache_writable(cache))
        rc = jc__set_error(JC_EREADONLY, "%s: cache file '%s' was opened read-only", what,
                           jc_cache_path(cache));
    return rc;
}

/* Before a dry run: its rollback must not take queued hits or an
 * enclosing transaction with it. */
int jc__i_prepare_dry_run(jc_cache *cache, const char *what)
{
    if (jc__cache_in_transaction(cache))
        return jc__set_error(JC_EINVAL, "%s: a dry run cannot be nested in a transaction", what);
    return jc__cache_write_own_hits(cache); /* no fold: a dry run changes nothing it need not */
}

void jc__i_info_from_row(const jc__row *r, jc_entry_info *info)
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
    [JC_SORT_HITS] = JC__ORDER_HITS, [JC_SORT_CREATED] = JC__ORDER_CREATED, [JC_SORT_KEY] = JC__ORDER_KEY,
};

bool jc__i_bad_age(double age)
{
    return !(age >= 0) || isinf(age);
}

/* Turns a public filter (NULL: everything) into the store's selection. */
int jc__i_to_select(const jc_filter *f, jc__select *q, const char *what)
{
    memset(q, 0, sizeof *q);
    q->order = JC__ORDER_NAME;
    if (!f)
        return 0;
    if (jc__i_bad_age(f->older_than) || jc__i_bad_age(f->newer_than))
        return jc__set_error(JC_EINVAL, "%s: an age in the filter is negative or not a number", what);
    if ((unsigned)f->sort >= sizeof order_of_sort / sizeof *order_of_sort)
        return jc__set_error(JC_EINVAL, "%s: unknown sort order %d", what, (int)f->sort);
    q->function = f->function;
    q->version = f->version;
    q->used_before = f->older_than > 0 ? jc__used_before(f->older_than) : 0;
    q->used_since = f->newer_than > 0 ? jc__now() - f->newer_than : 0;
    q->order = order_of_sort[f->sort];
    q->reverse = f->reverse;
    q->limit = f->limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)f->limit;
    return 0;
}

void jc__i_set_out(int64_t *p, int64_t v)
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
    jc__pending_map *pending; /* the hit log not folded (a read-only handle's) */
};

jc_entries *jc_entries_query(jc_cache *cache, const jc_filter *filter)
{
    jc__select q;
    jc_entries *it = NULL;
    if (jc__i_usable(cache, "jc_entries_query") || jc__i_to_select(filter, &q, "jc_entries_query"))
        return NULL;
    /* Hit counts and last-used times as they are: the hit log folded in
     * first, where the file can be written (bookkeeping: a failure, a
     * locked file, lists the entries as they stand). */
    jc__cache_sync_hits(cache);
    it = calloc(1, sizeof *it);
    if (!it) {
        jc__set_error(JC_ENOMEM, "out of memory listing entries");
        return NULL;
    }
    it->cache = cache;
    if (jc__cache_pending_map(cache, &it->pending) || jc__cache_pager_new(cache, &q, &it->pager)) {
        jc__pending_map_free(it->pending);
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
        jc__pending_apply(it->pending, r.key, &r.hits, &r.last_used);
        jc__i_info_from_row(&r, info);
        return 1;
    }
}

void jc_entries_free(jc_entries *it)
{
    if (!it)
        return;
    jc__cache_pager_free(it->pager);
    jc__pending_map_free(it->pending);
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
    int rc = jc__i_usable(cache, "jc_entry_find");
    if (!rc && (!hex_prefix || !info))
        rc = jc__set_error(JC_EINVAL, "jc_entry_find: NULL %s", hex_prefix ? "info" : "key prefix");
    if (!rc)
        rc = prefix_range(hex_prefix, lo, hi);
    if (!rc)
        jc__cache_sync_hits(cache); /* as jc_entries_query */
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
    /* A read-only handle cannot fold the hit log: it adds it. */
    jc__pending_map *pending = NULL;
    if (jc__cache_pending_map(cache, &pending) == 0)
        jc__pending_apply(pending, r.key, &r.hits, &r.last_used);
    jc__pending_map_free(pending);
    jc__i_info_from_row(&r, info);
    return 0;
}

int jc_function_params(jc_cache *cache, const char *function, const char *version, char ***names, size_t *n)
{
    if (names)
        *names = NULL;
    if (n)
        *n = 0;
    int rc = jc__i_usable(cache, "jc_function_params");
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

void jc__i_free_argv(jc_value **argv, size_t argc)
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
    int rc = jc__i_usable(cache, "jc_entry_load");
    if (!rc && !key)
        rc = jc__set_error(JC_EINVAL, "jc_entry_load: NULL key");
    /* The row and the parts of its result in one snapshot. */
    bool snap = !rc && result && jc__cache_snapshot_begin(cache);
    if (!rc)
        rc = jc__cache_row_by_key(cache, key, true, &r);
    if (rc == 0) {
        char hex[2 * JC__KEY_LEN + 1];
        jc__key_hex(key, hex);
        jc__cache_snapshot_end(cache, snap);
        return jc__set_error(JC_ENOTFOUND, "cache file '%s' has no entry %s", jc_cache_path(cache), hex);
    }
    if (rc < 0) {
        jc__cache_snapshot_end(cache, snap);
        return rc;
    }
    rc = 0;
    if (args || kwargs) {
        rc = jc__decode_args(r.args, r.args_len, &argv, &argc);
        if (rc)
            rc = decode_failed(rc, cache, key, "arguments");
        else
            rc = split_args(argv, argc, &a, &k);
    }
    if (!rc && result) {
        /* A result in pieces has its parts read too; the checksum is
         * verify's (a show of a damaged entry shows what is there). */
        rc = jc__cache_row_result(cache, &r, NULL, &res);
        if (rc > 0)
            rc = decode_failed(JC_EDECODE, cache, key, "result");
    }
    jc__cache_snapshot_end(cache, snap);
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
    int rc = jc__i_writable(cache, "jc_entry_remove");
    if (!rc && !key)
        rc = jc__set_error(JC_EINVAL, "jc_entry_remove: NULL key");
    if (!rc)
        rc = jc__cache_remove_entry(cache, key);
    if (rc == 0) {
        char hex[2 * JC__KEY_LEN + 1];
        jc__key_hex(key, hex);
        return jc__set_error(JC_ENOTFOUND, "cache file '%s' has no entry %s", jc_cache_path(cache), hex);
    }
    return rc < 0 ? rc : 0;
}

/* ---- pipelines ---- */

int jc_entry_by_result(jc_cache *cache, const uint8_t digest[16], jc_entry_info *info)
{
    int rc = jc__i_usable(cache, "jc_entry_by_result");
    if (!rc && (!digest || !info))
        rc = jc__set_error(JC_EINVAL, "jc_entry_by_result: NULL %s", digest ? "info" : "digest");
    uint8_t key[JC__KEY_LEN];
    if (!rc)
        rc = jc__cache_by_result(cache, digest, key);
    jc__row r;
    if (rc == 1)
        rc = jc__cache_row_by_key(cache, key, false, &r);
    if (rc == 0)
        return jc__set_error(JC_ENOTFOUND, "no entry of cache file '%s' holds that result",
                             jc_cache_path(cache));
    if (rc < 0)
        return rc;
    jc__i_info_from_row(&r, info);
    return 0;
}

/* The entries found so far and the results still to follow. */
typedef struct downstream {
    uint8_t *keys;   /* JC__KEY_LEN each */
    size_t n, cap;
    uint8_t *checks; /* results to look for among the arguments */
    size_t nchecks, capchecks, next;
    bool oom;
} downstream;

static bool has_key(const downstream *d, const uint8_t key[JC__KEY_LEN])
{
    for (size_t i = 0; i < d->n; i++)
        if (memcmp(d->keys + JC__KEY_LEN * i, key, JC__KEY_LEN) == 0)
            return true;
    return false;
}

static void add_found(void *ctx, const uint8_t key[JC__KEY_LEN], const uint8_t *check)
{
    downstream *d = ctx;
    if (has_key(d, key))
        return;
    uint8_t *k = d->n + 1 > d->cap ? realloc(d->keys, (d->cap = 2 * d->cap + 16) * JC__KEY_LEN) : d->keys;
    if (!k) {
        d->oom = true;
        return;
    }
    d->keys = k;
    memcpy(d->keys + JC__KEY_LEN * d->n++, key, JC__KEY_LEN);
    if (!check)
        return;
    uint8_t *c = d->nchecks + 1 > d->capchecks
                     ? realloc(d->checks, (d->capchecks = 2 * d->capchecks + 16) * 16) : d->checks;
    if (!c) {
        d->oom = true;
        return;
    }
    d->checks = c;
    memcpy(d->checks + 16 * d->nchecks++, check, 16);
}

int jc_cache_remove_downstream(jc_cache *cache, const uint8_t key[JC_KEY_SIZE], bool dry_run, int64_t *count,
                               int64_t *bytes)
{
    if (count)
        *count = 0;
    if (bytes)
        *bytes = 0;
    int rc = dry_run ? jc__i_usable(cache, "jc_cache_remove_downstream")
                     : jc__i_writable(cache, "jc_cache_remove_downstream");
    if (!rc && !key)
        rc = jc__set_error(JC_EINVAL, "jc_cache_remove_downstream: NULL key");
    jc__row r;
    if (!rc && (rc = jc__cache_row_by_key(cache, key, false, &r)) == 0) {
        char hex[2 * JC__KEY_LEN + 1];
        jc__key_hex(key, hex);
        return jc__set_error(JC_ENOTFOUND, "cache file '%s' has no entry %s", jc_cache_path(cache), hex);
    }
    if (rc < 0)
        return rc;
    downstream d = {0};
    add_found(&d, key, r.check_len == JC__CHECK_LEN ? r.check : NULL);
    rc = 0;
    while (!rc && !d.oom && d.next < d.nchecks) {
        uint8_t check[16];
        memcpy(check, d.checks + 16 * d.next++, 16);
        rc = jc__cache_users(cache, check, add_found, &d);
    }
    if (!rc && d.oom)
        rc = jc__set_error(JC_ENOMEM, "jc_cache_remove_downstream: out of memory");
    int64_t size = 0;
    for (size_t i = 0; i < d.n && !rc; i++) {
        int got = jc__cache_row_by_key(cache, d.keys + JC__KEY_LEN * i, false, &r);
        if (got < 0)
            rc = got;
        else if (got)
            size += r.args_size + r.result_size;
    }
    int64_t removed = (int64_t)d.n;
    if (!rc && !dry_run)
        rc = jc__cache_remove_keys(cache, d.keys, d.n, &removed);
    if (!rc && count)
        *count = removed;
    if (!rc && bytes)
        *bytes = size;
    free(d.keys);
    free(d.checks);
    return rc;
}
