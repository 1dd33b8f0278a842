/*
 * Tests of inspecting and tending a cache (src/inspect/ and the store's
 * inspection calls): listing, finding, loading, removing, pruning, figures,
 * verifying, merging, vacuuming and clearing, and parsing sizes and ages.
 *
 * Caches are made by the library (jc_run), or written through the store
 * where a test needs exact times and sizes; the file is changed with SQLite
 * directly to damage entries.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobcache.h>
#include <xxhash.h>

#include "store/store.h"
/* square/v1 comes from testutil.h. */
#define JC_TEST_WANT_SQUARE
#include "testutil.h"

#define PATH_CAP 4096

/* greet(name, times=k) -> "name name ..." */
static int greet(jc_call *call)
{
    const char *name = jc_arg_str(call, 0);
    int64_t times = jc_kwarg_int(call, "times");
    char buf[256] = "";
    size_t len = 0;
    for (int64_t i = 0; name && i < times && i < 8; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%.20s", i ? " " : "", name);
    return jc_return_str(call, buf);
}
JC_FUNCTION(greet, "v2");

/* total(xs: doubles, tag=anything optional) -> the sum of xs plus the
 * tag's length. */
static int total(jc_call *call)
{
    size_t n = 0;
    const double *xs = jc_arg_doubles(call, 0, &n);
    double sum = 0;
    for (size_t i = 0; xs && i < n; i++)
        sum += xs[i];
    return jc_return_double(call, sum + (double)jc_value_len(jc_kwarg(call, "tag")));
}
JC_FUNCTION(total, "v1");

/* ---- helpers ---- */

/* A cache with square(0..nsq-1) and greet("bob", times=1..ngreet). */
static void make_cache(const char *path, int nsq, int ngreet)
{
    jc_cache *c = open_cache(path, 0);
    jc_batch *b = jc_batch_new(c, NULL);
    assert_non_null(b);
    for (int i = 0; i < nsq; i++)
        assert_int_equal(jc_delayed(b, square, jc_int(i)), 0);
    for (int i = 1; i <= ngreet; i++)
        assert_int_equal(jc_delayed(b, greet, jc_str("bob"), jc_kw("times", jc_int(i))), 0);
    jc_results *r = jc_run(b);
    assert_non_null(r);
    assert_int_equal(jc_results_status(r), JC_OK);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
}

/* Stores fn/ver(x) through the store with exact times and a result of
 * result_bytes bytes: created and last used at `when`. */
static void put_direct(jc__store *st, const char *fn, const char *ver, int64_t x, double when,
                       size_t result_bytes)
{
    jc__buf args = {0}, res = {0};
    uint8_t key[JC__KEY_LEN];
    jc_value *argv[1] = {jc_int(x)};
    void *zeros = calloc(1, result_bytes + 1);
    jc_value *rv = jc_bytes(zeros, result_bytes);
    assert_int_equal(jc__encode_args(argv, 1, jc__buf_write, &args), 0);
    assert_int_equal(jc__encode_value(rv, jc__buf_write, &res), 0);
    assert_int_equal(jc__key_from_blob(fn, ver, args.data, args.len, key), 0);
    jc__entry_in e = {.key = key, .function = fn, .version = ver, .args = args.data,
                      .args_len = args.len, .result = res.data, .result_len = res.len,
                      .compute_seconds = 0.5, .now = when};
    assert_int_equal(jc__store_put(st, &e), 0);
    jc_value_free(argv[0]);
    jc_value_free(rv);
    free(zeros);
    jc__buf_free(&args);
    jc__buf_free(&res);
}

/* n entries of fn/ver, x = 0..n-1, the later x used the more recently. */
static void seed(const char *path, const char *fn, const char *ver, int n, double t0,
                 size_t result_bytes)
{
    jc__store *st = NULL;
    assert_int_equal(jc__store_open(path, 0, 0, &st), 0);
    assert_int_equal(jc__store_begin(st), 0);
    for (int i = 0; i < n; i++)
        put_direct(st, fn, ver, i, t0 + i, result_bytes);
    assert_int_equal(jc__store_commit(st), 0);
    jc__store_close(st);
}

static int64_t count_rows(const char *path, const char *where)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM entries WHERE %s", strcmp(where, "1") == 0 ? "true" : where);
    return jc_test_sql_int(path, sql);
}

/* Lists what the filter selects: count, and each entry's function and
 * first argument... kept simple: the functions in order, comma-joined. */
static size_t list(jc_cache *c, const jc_filter *f, char *out, size_t cap)
{
    jc_entry_info info;
    size_t n = 0;
    jc_entries *it = jc_entries_query(c, f);
    assert_non_null(it);
    out[0] = '\0';
    int rc;
    while ((rc = jc_entries_next(it, &info)) == 1) {
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s/%s", n ? "," : "", info.function, info.version);
        assert_int_equal(strlen(info.key_hex), 32);
        n++;
    }
    assert_int_equal(rc, 0);
    jc_entries_free(it);
    return n;
}

/* The key of the first entry whose function is fn, in name order. */
static void key_of(jc_cache *c, const char *fn, uint8_t key[JC_KEY_SIZE], char hex[33])
{
    jc_entry_info info;
    jc_entries *it = jc_entries_query(c, &(jc_filter){.function = fn, .limit = 1});
    assert_non_null(it);
    assert_int_equal(jc_entries_next(it, &info), 1);
    memcpy(key, info.key, JC_KEY_SIZE);
    if (hex)
        memcpy(hex, info.key_hex, 33);
    jc_entries_free(it);
}

/* ---- sizes and ages ---- */

static void inspect_parse_size_accepts_units(void **state)
{
    (void)state;
    int64_t v = -1;
    assert_int_equal(jc_parse_size("4096", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(jc_parse_size("500M", &v), 0);
    assert_int_equal(v, 500LL << 20);
    assert_int_equal(jc_parse_size("2G", &v), 0);
    assert_int_equal(v, 2LL << 30);
    assert_int_equal(jc_parse_size("1.5K", &v), 0);
    assert_int_equal(v, 1536);
    assert_int_equal(jc_parse_size("3k", &v), 0);
    assert_int_equal(v, 3072);
    assert_int_equal(jc_parse_size("1KiB", &v), 0);
    assert_int_equal(v, 1024);
    assert_int_equal(jc_parse_size("2MiB", &v), 0);
    assert_int_equal(v, 2LL << 20);
    assert_int_equal(jc_parse_size("3gib", &v), 0);
    assert_int_equal(v, 3LL << 30);
    /* With "B" after the letter: powers of 1000 (issue 13). */
    assert_int_equal(jc_parse_size("2MB", &v), 0);
    assert_int_equal(v, 2000000);
    assert_int_equal(jc_parse_size("64kB", &v), 0);
    assert_int_equal(v, 64000);
    assert_int_equal(jc_parse_size("1.5GB", &v), 0);
    assert_int_equal(v, 1500000000);
    assert_int_equal(jc_parse_size("2tb", &v), 0);
    assert_int_equal(v, 2000000000000LL);
    assert_int_equal(jc_parse_size("1T", &v), 0);
    assert_int_equal(v, 1LL << 40);
    assert_int_equal(jc_parse_size("100B", &v), 0);
    assert_int_equal(v, 100);
    assert_int_equal(jc_parse_size("0", &v), 0);
    assert_int_equal(v, 0);
}

static void inspect_parse_size_rejects_garbage_einval(void **state)
{
    (void)state;
    static const char *const bad[] = {"",   "M",    "-1",    "1.2.3", "12Q", "1 G",
                                      "G1", "1GG",  "0x10",  " 5",    "5 ",  "99999999999999999999",
                                      "9999999999T", "1e3", "1MiBB", "1iB", "1KBB", "1kBi",
                                      "9999999999TB"};
    int64_t v = 7;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (jc_parse_size(bad[i], &v) != JC_EINVAL)
            fail_msg("jc_parse_size(\"%s\") accepted", bad[i]);
        assert_contains(jc_errmsg(), "is not a size");
    }
    assert_int_equal(v, 7);
    assert_int_equal(jc_parse_size(NULL, &v), JC_EINVAL);
    assert_int_equal(jc_parse_size("1", NULL), JC_EINVAL);
}

static void inspect_parse_age_accepts_units(void **state)
{
    (void)state;
    double v = -1;
    assert_int_equal(jc_parse_age("90s", &v), 0);
    assert_true(v == 90);
    assert_int_equal(jc_parse_age("12m", &v), 0);
    assert_true(v == 720);
    assert_int_equal(jc_parse_age("12h", &v), 0);
    assert_true(v == 12 * 3600);
    assert_int_equal(jc_parse_age("30d", &v), 0);
    assert_true(v == 30 * 86400);
    assert_int_equal(jc_parse_age("2w", &v), 0);
    assert_true(v == 14 * 86400);
    assert_int_equal(jc_parse_age("1.5h", &v), 0);
    assert_true(v == 5400);
    assert_int_equal(jc_parse_age("0s", &v), 0);
    assert_true(v == 0);
}

static void inspect_parse_age_needs_a_unit_einval(void **state)
{
    (void)state;
    static const char *const bad[] = {"30", "", "h", "-1d", "1dd", "1y", "1 d", "d1"};
    double v = 7;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (jc_parse_age(bad[i], &v) != JC_EINVAL)
            fail_msg("jc_parse_age(\"%s\") accepted", bad[i]);
        assert_contains(jc_errmsg(), "is not an age");
    }
    assert_true(v == 7);
    assert_int_equal(jc_parse_age(NULL, &v), JC_EINVAL);
}

/* ---- listing ---- */

static void inspect_entries_query_lists_in_name_order_and_filters(void **state)
{
    (void)state;
    char path[PATH_CAP], out[4096];
    make_cache(jc_test_path(path, sizeof path, "list.db"), 5, 3);
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);

    assert_int_equal(list(c, NULL, out, sizeof out), 8);
    assert_string_equal(out, "greet/v2,greet/v2,greet/v2,square/v1,square/v1,square/v1,square/v1,square/v1");
    assert_int_equal(list(c, &(jc_filter){.function = "square"}, out, sizeof out), 5);
    assert_int_equal(list(c, &(jc_filter){.function = "square", .version = "v2"}, out, sizeof out), 0);
    assert_int_equal(list(c, &(jc_filter){.function = "greet", .version = "v2"}, out, sizeof out), 3);
    assert_int_equal(list(c, &(jc_filter){.function = "nope"}, out, sizeof out), 0);
    assert_int_equal(list(c, &(jc_filter){.limit = 2}, out, sizeof out), 2);
    assert_int_equal(list(c, &(jc_filter){.reverse = true, .limit = 1}, out, sizeof out), 1);
    assert_string_equal(out, "square/v1");
    /* A filter string is bound, never pasted into SQL. */
    assert_int_equal(list(c, &(jc_filter){.function = "x' OR '1'='1"}, out, sizeof out), 0);
    jc_cache_close(c);
}

static void inspect_entries_query_sorts_and_ages(void **state)
{
    (void)state;
    char path[PATH_CAP], out[4096];
    jc_entry_info info;
    make_cache(jc_test_path(path, sizeof path, "sort.db"), 4, 0);
    /* x = 2 has the most hits and is the largest; x = 0 was used long ago. */
    sql(path, "UPDATE entries SET hits = 9, result_size = 1000 WHERE rowid = 3;"
              "UPDATE entries SET last_used = last_used - 7200 WHERE rowid = 1;");
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);

    jc_entries *it = jc_entries_query(c, &(jc_filter){.sort = JC_SORT_HITS});
    assert_int_equal(jc_entries_next(it, &info), 1);
    assert_int_equal(info.hits, 9);
    jc_entries_free(it);
    it = jc_entries_query(c, &(jc_filter){.sort = JC_SORT_SIZE});
    assert_int_equal(jc_entries_next(it, &info), 1);
    assert_int_equal(info.result_size, 1000);
    jc_entries_free(it);
    it = jc_entries_query(c, &(jc_filter){.sort = JC_SORT_USED, .reverse = true});
    assert_int_equal(jc_entries_next(it, &info), 1);
    assert_true(info.last_used < info.created);
    jc_entries_free(it);
    for (jc_sort s = JC_SORT_NAME; s <= JC_SORT_CREATED; s++)
        assert_int_equal(list(c, &(jc_filter){.sort = s}, out, sizeof out), 4);

    assert_int_equal(list(c, &(jc_filter){.older_than = 3600}, out, sizeof out), 1);
    assert_int_equal(list(c, &(jc_filter){.newer_than = 3600}, out, sizeof out), 3);
    assert_int_equal(list(c, &(jc_filter){.older_than = 60, .newer_than = 3 * 3600}, out, sizeof out), 1);
    /* An age reaching before 1970 is older than every entry. */
    assert_int_equal(list(c, &(jc_filter){.older_than = 1e12}, out, sizeof out), 0);

    assert_null(jc_entries_query(c, &(jc_filter){.older_than = -1}));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_null(jc_entries_query(c, &(jc_filter){.newer_than = NAN}));
    assert_null(jc_entries_query(c, &(jc_filter){.sort = (jc_sort)99}));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    jc_cache_close(c);
}

static void inspect_entries_next_skips_entries_removed_meanwhile(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_entry_info info;
    make_cache(jc_test_path(path, sizeof path, "skip.db"), 3, 0);
    jc_cache *c = open_cache(path, 0);
    jc_entries *it = jc_entries_query(c, NULL);
    assert_non_null(it);
    sql(path, "DELETE FROM entries WHERE rowid = 2");
    int n = 0;
    while (jc_entries_next(it, &info) == 1)
        n++;
    assert_int_equal(n, 2);
    assert_int_equal(jc_entries_next(it, &info), 0);
    assert_int_equal(jc_entries_next(NULL, &info), JC_EINVAL);
    assert_int_equal(jc_entries_next(it, NULL), JC_EINVAL);
    jc_entries_free(it);
    jc_entries_free(NULL);
    jc_cache_close(c);
}

/* ---- single entries ---- */

static void inspect_entry_find_by_prefix(void **state)
{
    (void)state;
    char path[PATH_CAP], hex[33], upper[33], prefix[33];
    uint8_t key[JC_KEY_SIZE];
    jc_entry_info info;
    make_cache(jc_test_path(path, sizeof path, "find.db"), 17, 1);
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    key_of(c, "greet", key, hex);

    for (size_t len = 32; len >= 8; len -= 8) {
        snprintf(prefix, sizeof prefix, "%.*s", (int)len, hex);
        assert_int_equal(jc_entry_find(c, prefix, &info), 0);
        assert_memory_equal(info.key, key, JC_KEY_SIZE);
        assert_string_equal(info.key_hex, hex);
        assert_string_equal(info.function, "greet");
        assert_string_equal(info.version, "v2");
        assert_true(info.args_size > 0 && info.result_size > 0);
    }
    for (int i = 0; i < 33; i++)
        upper[i] = (char)((hex[i] >= 'a' && hex[i] <= 'f') ? hex[i] - 32 : hex[i]);
    assert_int_equal(jc_entry_find(c, upper, &info), 0);
    assert_memory_equal(info.key, key, JC_KEY_SIZE);
    /* An odd number of digits: the last one is half a byte. */
    snprintf(prefix, sizeof prefix, "%.7s", hex);
    assert_int_equal(jc_entry_find(c, prefix, &info), 0);

    /* 18 entries and 16 first digits: some digit starts two keys. */
    int ambiguous = 0;
    for (int d = 0; d < 16; d++) {
        snprintf(prefix, sizeof prefix, "%x", d);
        int rc = jc_entry_find(c, prefix, &info);
        assert_true(rc == 0 || rc == JC_ENOTFOUND || rc == JC_EAMBIGUOUS);
        if (rc == JC_EAMBIGUOUS) {
            ambiguous++;
            assert_contains(jc_errmsg(), "several entries");
        }
    }
    assert_true(ambiguous > 0);

    snprintf(prefix, sizeof prefix, "%.31s%c", hex, hex[31] == '0' ? '1' : '0');
    assert_int_equal(jc_entry_find(c, prefix, &info), JC_ENOTFOUND);
    assert_contains(jc_errmsg(), prefix);
    assert_int_equal(jc_entry_find(c, "xyz", &info), JC_EINVAL);
    assert_contains(jc_errmsg(), "not a hex digit");
    assert_int_equal(jc_entry_find(c, "", &info), JC_EINVAL);
    assert_int_equal(jc_entry_find(c, "0123456789abcdef0123456789abcdef0", &info), JC_EINVAL);
    assert_int_equal(jc_entry_find(c, NULL, &info), JC_EINVAL);
    assert_int_equal(jc_entry_find(c, "ab", NULL), JC_EINVAL);
    jc_cache_close(c);
}

static void inspect_entry_load_decodes_args_kwargs_result(void **state)
{
    (void)state;
    char path[PATH_CAP];
    uint8_t key[JC_KEY_SIZE];
    jc_value *args = NULL, *kwargs = NULL, *result = NULL;
    const char *s;
    int64_t i;
    make_cache(jc_test_path(path, sizeof path, "load.db"), 0, 2);
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    key_of(c, "greet", key, NULL);

    assert_int_equal(jc_entry_load(c, key, &args, &kwargs, &result), 0);
    assert_int_equal(jc_value_type(args), JC_TYPE_LIST);
    assert_int_equal(jc_value_len(args), 1);
    assert_int_equal(jc_value_get_str(jc_value_at(args, 0), &s, NULL), 0);
    assert_string_equal(s, "bob");
    assert_int_equal(jc_value_type(kwargs), JC_TYPE_MAP);
    assert_int_equal(jc_value_len(kwargs), 1);
    assert_int_equal(jc_value_get_int(jc_value_get(kwargs, "times"), &i), 0);
    assert_int_equal(jc_value_get_str(result, &s, NULL), 0);
    assert_string_equal(s, i == 1 ? "bob" : "bob bob");
    jc_value_free(args);
    jc_value_free(kwargs);
    jc_value_free(result);

    /* Any out may be skipped. */
    assert_int_equal(jc_entry_load(c, key, NULL, NULL, &result), 0);
    assert_non_null(result);
    jc_value_free(result);
    assert_int_equal(jc_entry_load(c, key, NULL, &kwargs, NULL), 0);
    assert_int_equal(jc_value_len(kwargs), 1);
    jc_value_free(kwargs);

    uint8_t none[JC_KEY_SIZE] = {0};
    assert_int_equal(jc_entry_load(c, none, &args, &kwargs, &result), JC_ENOTFOUND);
    assert_null(args);
    assert_null(result);
    assert_int_equal(jc_entry_load(c, NULL, &args, NULL, NULL), JC_EINVAL);
    jc_cache_close(c);

    /* A result that does not decode: nothing comes back, the message names
     * the entry. */
    sql(path, "UPDATE entries SET result = x'c1'");
    c = open_cache(path, JC_CACHE_READONLY);
    char hex[33];
    key_of(c, "greet", key, hex);
    assert_int_equal(jc_entry_load(c, key, &args, &kwargs, &result), JC_EDECODE);
    assert_null(args);
    assert_null(kwargs);
    assert_null(result);
    assert_contains(jc_errmsg(), hex);
    assert_contains(jc_errmsg(), "result does not decode");
    /* The arguments alone still load. */
    assert_int_equal(jc_entry_load(c, key, &args, NULL, NULL), 0);
    jc_value_free(args);
    jc_cache_close(c);
}

static void inspect_entry_remove_removes_one(void **state)
{
    (void)state;
    char path[PATH_CAP];
    uint8_t key[JC_KEY_SIZE];
    make_cache(jc_test_path(path, sizeof path, "remove.db"), 3, 1);
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    key_of(c, "greet", key, NULL);
    assert_int_equal(jc_entry_remove(c, key), JC_EREADONLY);
    jc_cache_close(c);

    c = open_cache(path, 0);
    assert_int_equal(jc_entry_remove(c, key), 0);
    assert_int_equal(count_rows(path, "1"), 3);
    assert_int_equal(jc_entry_remove(c, key), JC_ENOTFOUND);
    assert_int_equal(jc_entry_remove(c, NULL), JC_EINVAL);
    jc_cache_close(c);
}

/* ---- removing in bulk ---- */

static void inspect_remove_matching_counts_and_dry_runs(void **state)
{
    (void)state;
    char path[PATH_CAP];
    int64_t n = -1, bytes = -1;
    make_cache(jc_test_path(path, sizeof path, "match.db"), 4, 2);
    int64_t square_bytes = jc_test_sql_int(
        path, "SELECT sum(args_size + result_size) FROM entries WHERE function = 'square'");
    jc_cache *c = open_cache(path, 0);

    assert_int_equal(jc_cache_remove_matching(c, &(jc_filter){.function = "square"}, true, &n, &bytes), 0);
    assert_int_equal(n, 4);
    assert_int_equal(bytes, square_bytes);
    assert_int_equal(count_rows(path, "1"), 6);

    assert_int_equal(jc_cache_remove_matching(c, &(jc_filter){.function = "square", .version = "v0"},
                                              false, &n, &bytes), 0);
    assert_int_equal(n, 0);
    assert_int_equal(bytes, 0);
    assert_int_equal(jc_cache_remove_matching(c, &(jc_filter){.function = "square"}, false, &n, NULL), 0);
    assert_int_equal(n, 4);
    assert_int_equal(count_rows(path, "function = 'square'"), 0);
    assert_int_equal(count_rows(path, "1"), 2);
    /* NULL removes everything. */
    assert_int_equal(jc_cache_remove_matching(c, NULL, false, NULL, NULL), 0);
    assert_int_equal(count_rows(path, "1"), 0);
    assert_int_equal(jc_cache_remove_matching(c, &(jc_filter){.older_than = -5}, false, &n, NULL), JC_EINVAL);
    jc_cache_close(c);

    c = open_cache(path, JC_CACHE_READONLY);
    assert_int_equal(jc_cache_remove_matching(c, NULL, true, &n, NULL), JC_EREADONLY);
    jc_cache_close(c);
}

static void inspect_prune_by_each_rule(void **state)
{
    (void)state;
    char path[PATH_CAP];
    int64_t n = -1, bytes = -1;
    double now = jc__now();
    jc_test_path(path, sizeof path, "prune.db");
    /* f v1: 4 entries made 4000 s ago; f v2: 6 entries made 100 s ago;
     * g v1: 2 entries made 2 days ago (its only version). */
    seed(path, "f", "v1", 4, now - 4000, 100);
    seed(path, "f", "v2", 6, now - 100, 100);
    seed(path, "g", "v1", 2, now - 2 * 86400, 100);
    int64_t one = jc_test_sql_int(path, "SELECT args_size + result_size FROM entries LIMIT 1");
    jc_cache *c = open_cache(path, 0);

    jc_prune_options stale = {.stale_versions = true};
    assert_int_equal(jc_cache_prune(c, &stale, true, &n, &bytes), 0);
    assert_int_equal(n, 4);
    assert_int_equal(bytes, 4 * one);
    assert_int_equal(count_rows(path, "1"), 12); /* a dry run */
    assert_int_equal(jc_cache_prune(c, &stale, false, &n, &bytes), 0);
    assert_int_equal(n, 4);
    assert_int_equal(count_rows(path, "version = 'v1' AND function = 'f'"), 0);
    assert_int_equal(count_rows(path, "function = 'g'"), 2);

    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.older_than = 86400}, false, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(count_rows(path, "function = 'g'"), 0);

    /* 6 left, x = 5 the most recently used. */
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.max_entries = 4}, false, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(count_rows(path, "1"), 4);
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.max_payload = 2 * one + one / 2}, false, &n, &bytes), 0);
    assert_int_equal(n, 2);
    assert_int_equal(bytes, 2 * one);
    assert_int_equal(count_rows(path, "1"), 2);
    /* What stays is the most recently used. */
    assert_int_equal(jc_test_sql_int(path, "SELECT min(last_used) > (SELECT max(last_used) - 2 FROM entries) FROM entries"), 1);
    /* Within the bounds: nothing to do. */
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.max_size = 1 << 30, .max_payload = 1 << 30, .max_entries = 5}, false, &n, &bytes), 0);
    assert_int_equal(n, 0);
    assert_int_equal(bytes, 0);
    assert_int_equal(jc_cache_prune(c, NULL, false, &n, NULL), 0);
    assert_int_equal(n, 0);
    jc_cache_close(c);
}

static void inspect_prune_rules_apply_in_order(void **state)
{
    (void)state;
    char path[PATH_CAP];
    int64_t n = -1;
    double now = jc__now();
    jc_test_path(path, sizeof path, "prune-order.db");
    seed(path, "f", "v1", 3, now - 3000, 10);
    seed(path, "f", "v2", 5, now - 50, 10);
    jc_cache *c = open_cache(path, 0);
    /* Stale: 3, then of the 5 left keep 2. */
    jc_prune_options o = {.stale_versions = true, .older_than = 3600, .max_entries = 2};
    assert_int_equal(jc_cache_prune(c, &o, true, &n, NULL), 0);
    assert_int_equal(n, 6);
    assert_int_equal(count_rows(path, "1"), 8);
    assert_int_equal(jc_cache_prune(c, &o, false, &n, NULL), 0);
    assert_int_equal(n, 6);
    assert_int_equal(count_rows(path, "version = 'v2'"), 2);
    jc_cache_close(c);
}

static void inspect_prune_counts_a_hit_not_yet_written(void **state)
{
    (void)state;
    char path[PATH_CAP];
    int64_t n = -1;
    double now = jc__now();
    jc_test_path(path, sizeof path, "prune-hit.db");
    seed(path, "square", "v1", 3, now - 1000, 8); /* square(0) the least recently used */
    jc_cache *c = open_cache(path, 0);
    /* A hit is queued in the cache, not yet in the file. */
    jc_value *v = jc_memo(c, square, jc_int(0));
    assert_non_null(v);
    jc_value_free(v);
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.max_entries = 1}, true, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.max_entries = 1}, false, &n, NULL), 0);
    jc_cache_close(c);
    assert_int_equal(count_rows(path, "1"), 1);
    assert_int_equal(count_rows(path, "hits = 1"), 1);
}

static void inspect_prune_refuses_bad_options_and_readonly(void **state)
{
    (void)state;
    char path[PATH_CAP];
    int64_t n = -1;
    make_cache(jc_test_path(path, sizeof path, "prune-bad.db"), 2, 0);
    jc_cache *c = open_cache(path, 0);
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.max_size = -1}, false, &n, NULL), JC_EINVAL);
    assert_contains(jc_errmsg(), "max_size");
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.max_entries = -1}, false, &n, NULL), JC_EINVAL);
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.older_than = NAN}, false, &n, NULL), JC_EINVAL);
    assert_int_equal(n, 0);
    jc_cache_close(c);
    c = open_cache(path, JC_CACHE_READONLY);
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.max_entries = 1}, false, &n, NULL), JC_EREADONLY);
    jc_cache_close(c);
    assert_int_equal(count_rows(path, "1"), 2);
}

/* ---- figures ---- */

static void inspect_stats_sums_up_per_function(void **state)
{
    (void)state;
    char path[PATH_CAP];
    make_cache(jc_test_path(path, sizeof path, "stats.db"), 4, 2);
    sql(path, "UPDATE entries SET hits = 3, compute_seconds = 2 WHERE function = 'square';"
              "UPDATE entries SET hits = 0, compute_seconds = 1 WHERE function = 'greet';");
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    jc_stats *s = jc_cache_stats(c);
    assert_non_null(s);
    assert_string_equal(s->path, jc_test_shown(path));
    assert_int_equal(s->schema_version, JC__SCHEMA_VERSION);
    assert_int_equal(s->key_format, JC_KEY_FORMAT_VERSION);
    assert_int_equal(s->entries, 6);
    assert_int_equal(s->payload_bytes, jc_test_sql_int(path, "SELECT sum(args_size + result_size) FROM entries"));
    assert_int_equal(s->args_bytes + s->result_bytes, s->payload_bytes);
    assert_true(s->file_bytes > 0);
    assert_int_equal(s->hits, 12);
    assert_true(fabs(s->compute_seconds - 10) < 1e-9);
    assert_true(fabs(s->saved_seconds - 24) < 1e-9);
    assert_true(s->oldest > 0 && s->oldest <= s->newest && s->newest <= s->last_used);

    assert_int_equal(s->nfunctions, 2);
    const jc_function_stats *g = &s->functions[0], *q = &s->functions[1];
    assert_string_equal(g->function, "greet");
    assert_string_equal(g->version, "v2");
    assert_int_equal(g->entries, 2);
    assert_int_equal(g->hits, 0);
    assert_true(g->saved_seconds == 0);
    assert_string_equal(q->function, "square");
    assert_int_equal(q->entries, 4);
    assert_true(fabs(q->mean_seconds - 2) < 1e-9);
    assert_true(fabs(q->saved_seconds - 24) < 1e-9);
    assert_int_equal(g->bytes + q->bytes, s->payload_bytes);
    jc_stats_free(s);
    jc_stats_free(NULL);
    jc_cache_close(c);
}

static void inspect_stats_of_an_empty_cache(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "stats-empty.db"), 0);
    jc_stats *s = jc_cache_stats(c);
    assert_non_null(s);
    assert_int_equal(s->entries, 0);
    assert_int_equal(s->nfunctions, 0);
    assert_true(s->oldest == 0 && s->last_used == 0);
    jc_stats_free(s);
    jc_cache_close(c);
}

/* ---- verify ---- */

typedef struct seen {
    int entries, file;
    char text[4096];
} seen;

static void on_problem(const jc_entry_info *e, const char *problem, void *userdata)
{
    seen *s = userdata;
    size_t len = strlen(s->text);
    if (e)
        s->entries++;
    else
        s->file++;
    snprintf(s->text + len, sizeof s->text - len, "%s: %s\n", e ? e->key_hex : "file", problem);
}

static void inspect_verify_sound_cache(void **state)
{
    (void)state;
    char path[PATH_CAP];
    seen s = {0};
    jc_verify_result r;
    make_cache(jc_test_path(path, sizeof path, "verify-ok.db"), 5, 3);
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    assert_int_equal(jc_cache_verify(c, false, on_problem, &s, &r), 0);
    assert_int_equal(r.checked, 8);
    assert_int_equal(r.bad_entries, 0);
    assert_int_equal(r.file_problems, 0);
    assert_int_equal(s.entries + s.file, 0);
    assert_int_equal(jc_cache_verify(c, true, NULL, NULL, &r), JC_EREADONLY);
    assert_int_equal(jc_cache_verify(c, false, NULL, NULL, NULL), 0);
    jc_cache_close(c);
}

/* A canonical-looking entry stored through the store: args [[1], {}] with
 * the 1 written as a 9-byte int64, and a key made from those bytes. */
static void put_non_canonical(const char *path)
{
    static const char args[] = "\x92\x91\xd3\x00\x00\x00\x00\x00\x00\x00\x01\x80";
    uint8_t key[JC__KEY_LEN];
    jc__store *st = NULL;
    assert_int_equal(jc__key_from_blob("square", "v1", args, sizeof args - 1, key), 0);
    assert_int_equal(jc__store_open(path, 0, 0, &st), 0);
    jc__entry_in e = {.key = key, .function = "square", .version = "v1", .args = args,
                      .args_len = sizeof args - 1, .result = "\x01", .result_len = 1,
                      .compute_seconds = 0.1, .now = jc__now()};
    assert_int_equal(jc__store_put(st, &e), 0);
    jc__store_close(st);
}

static void inspect_verify_finds_and_repairs_bad_entries(void **state)
{
    (void)state;
    char path[PATH_CAP];
    seen s = {0};
    jc_verify_result r;
    make_cache(jc_test_path(path, sizeof path, "verify-bad.db"), 6, 0);
    /* 1: arguments changed, so the key no longer matches; 2: a result that
     * is not msgpack; 3: a result of the wrong SQL type (2 and 3 without a
     * checksum, as a 0.1.0 row, so that decoding is what finds them); 4:
     * sizes that lie; 5: another valid result in place of the stored one,
     * which only its checksum tells. */
    sql(path, "UPDATE entries SET args = x'929101' || x'80' WHERE rowid = 1;"
              "UPDATE entries SET result = x'c1c1', result_check = NULL WHERE rowid = 2;"
              "UPDATE entries SET result = 'text', result_check = NULL WHERE rowid = 3;"
              "UPDATE entries SET args_size = 999 WHERE rowid = 4;"
              "UPDATE entries SET result = x'05' WHERE rowid = 5;");
    put_non_canonical(path);
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    assert_int_equal(jc_cache_verify(c, false, on_problem, &s, &r), 0);
    assert_int_equal(r.checked, 7);
    assert_int_equal(r.bad_entries, 6);
    assert_int_equal(r.removed, 0);
    assert_int_equal(r.unchecked, 2);
    assert_int_equal(s.entries, 6);
    assert_contains(s.text, "the key does not match");
    assert_contains(s.text, "the result does not decode");
    assert_contains(s.text, "not in canonical form");
    assert_contains(s.text, "recorded sizes");
    assert_contains(s.text, "does not match the checksum stored with it");
    jc_cache_close(c);
    assert_int_equal(count_rows(path, "1"), 7);

    c = open_cache(path, 0);
    memset(&s, 0, sizeof s);
    assert_int_equal(jc_cache_verify(c, true, on_problem, &s, &r), 0);
    assert_int_equal(r.bad_entries, 6);
    assert_int_equal(r.removed, 6);
    memset(&s, 0, sizeof s);
    assert_int_equal(jc_cache_verify(c, false, on_problem, &s, &r), 0);
    assert_int_equal(r.checked, 1);
    assert_int_equal(r.bad_entries, 0);
    jc_cache_close(c);
    assert_int_equal(count_rows(path, "1"), 1);
}

/* A leaf page of the entries table in the middle of the file, from SQLite's
 * dbstat table; 0 when it is not compiled in. */
static int64_t middle_leaf_page(const char *path)
{
    return jc_test_sql_int(path, "SELECT pageno FROM dbstat WHERE name = 'entries' AND pagetype = 'leaf' "
                                 "ORDER BY pageno LIMIT 1 OFFSET (SELECT count(*) / 2 FROM dbstat "
                                 "WHERE name = 'entries' AND pagetype = 'leaf')");
}

/* One damaged leaf page: verify reports it as a finding (0.1.0 failed with
 * JC_ECORRUPT having checked nothing), and checks every other entry. */
static void inspect_verify_reports_a_damaged_page_and_checks_the_rest(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP];
    seen s = {0};
    jc_verify_result r;
    jc_test_path(path, sizeof path, "verify-damaged-page.db");
    seed(path, "f", "v1", 2000, jc__now(), 200);
    jc_test_remove_db_sidecars(path);
    int64_t page = middle_leaf_page(path);
    int64_t page_size = jc_test_sql_int(path, "PRAGMA page_size");
    assert_true(page > 1);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)((page - 1) * page_size), SEEK_SET), 0);
    for (int64_t i = 0; i < page_size; i++)
        fputc((int)((i * 7919) & 0xff), f);
    fclose(f);
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    assert_int_equal(jc_cache_verify(c, false, on_problem, &s, &r), 0);
    assert_true(r.file_problems > 0);
    assert_true(r.unreadable > 0);
    assert_true(r.checked > 1000); /* the pages around the damage */
    assert_true(r.checked + r.unreadable >= 1900);
    assert_int_equal(r.bad_entries, 0);
    jc_cache_close(c);
}

static void inspect_verify_damaged_file_does_not_crash(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP];
    seen s = {0};
    jc_verify_result r;
    jc_test_path(path, sizeof path, "verify-damaged.db");
    seed(path, "f", "v1", 300, jc__now(), 900);
    jc_test_remove_db_sidecars(path);
    /* Garbage over pages in the middle of the file. */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, 40 * 4096, SEEK_SET), 0);
    for (int i = 0; i < 3 * 4096; i++)
        fputc((i * 7919) & 0xff, f);
    fclose(f);
    jc_cache *c = jc_cache_open(path, &(jc_cache_options){.flags = JC_CACHE_READONLY});
    if (!c)
        return; /* refused at open: also fine */
    int rc = jc_cache_verify(c, false, on_problem, &s, &r);
    assert_true(rc < 0 || r.file_problems > 0 || r.bad_entries > 0);
    if (rc == 0)
        assert_int_equal(s.file, r.file_problems);
    jc_cache_close(c);
}

/* ---- merge ---- */

/* Appends count hits of the entry at rowid to the file's hit log (schema
 * 10, store.h), as a run of another process would. */
static void log_hits(const char *path, int64_t rowid, uint32_t count)
{
    if (jc_test_pg()) { /* the same row, as SQL text */
        char q[512];
        snprintf(q, sizeof q, "INSERT INTO hit_log (at, hits, saved, keys) SELECT 1.0, %u, 0, key ||"
                 " '\\x%02x%02x%02x%02x'::bytea FROM entries WHERE id = %lld", count, count & 255,
                 (count >> 8) & 255, (count >> 16) & 255, count >> 24, (long long)rowid);
        sql(path, q);
        return;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT key FROM entries WHERE rowid = ?1", -1, &q, NULL), SQLITE_OK);
    sqlite3_bind_int64(q, 1, rowid);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    uint8_t rec[20];
    memcpy(rec, sqlite3_column_blob(q, 0), 16);
    sqlite3_finalize(q);
    rec[16] = (uint8_t)count, rec[17] = (uint8_t)(count >> 8), rec[18] = (uint8_t)(count >> 16),
    rec[19] = (uint8_t)(count >> 24);
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO hit_log (at, hits, saved, keys) VALUES (1.0, ?1, 0, ?2)", -1,
                                        &q, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(q, 1, count);
    sqlite3_bind_blob(q, 2, rec, sizeof rec, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
    sqlite3_close(db);
}


static void inspect_merge_adds_replaces_keeps(void **state)
{
    (void)state;
    char mine[PATH_CAP], theirs[PATH_CAP];
    jc_merge_result r;
    double now = jc__now();
    jc_test_path(mine, sizeof mine, "merge-mine.db");
    jc_test_path(theirs, sizeof theirs, "merge-theirs.db");
    seed(mine, "f", "v1", 4, now - 100, 10);   /* x = 0..3 */
    seed(theirs, "f", "v1", 6, now - 200, 10); /* x = 0..5, x = 0..1 older, 2..3 newer below */
    /* Newer than mine, still in the past (times after now are clamped). */
    sql(theirs, "UPDATE entries SET created = created + 150, hits = 7 WHERE rowid IN (3, 4)");
    /* Hits of theirs not folded yet (the hit log, schema 10): 3 more for
     * x = 4, which is added, and 5 for x = 0, which mine keeps. */
    log_hits(theirs, 5, 3);
    log_hits(theirs, 1, 5);
    int64_t hits5 = jc_test_sql_int(theirs, "SELECT hits FROM entries WHERE rowid = 5");
    jc_cache *c = open_cache(mine, 0);
    assert_int_equal(jc_cache_merge(c, theirs, &r), 0);
    assert_int_equal(r.added, 2);
    assert_int_equal(r.replaced, 2);
    assert_int_equal(r.kept, 2);
    assert_int_equal(r.rejected, 0);
    jc_cache_close(c);
    assert_int_equal(count_rows(mine, "1"), 6);
    assert_int_equal(count_rows(mine, "hits = 7"), 2);
    char q[256];
    snprintf(q, sizeof q, "SELECT count(*) FROM entries WHERE hits = %lld", (long long)hits5 + 3);
    assert_true(jc_test_sql_int(mine, q) >= 1);
    assert_int_equal(jc_test_sql_int(theirs, "SELECT count(*) FROM hit_log"), 2); /* only read */
    assert_int_equal(count_rows(theirs, "1"), 6); /* the other file is only read */

    /* Again: everything is kept. Into itself: the same. */
    c = open_cache(mine, 0);
    assert_int_equal(jc_cache_merge(c, theirs, &r), 0);
    assert_int_equal(r.kept, 6);
    assert_int_equal(r.added + r.replaced, 0);
    assert_int_equal(jc_cache_merge(c, mine, &r), 0);
    assert_int_equal(r.kept, 6);
    jc_cache_close(c);
    assert_true(jc_test_sql_int(mine, q) >= 1); /* merged again: counted once */
}

static void inspect_merge_rejects_bad_entries_and_bad_files(void **state)
{
    (void)state;
    char mine[PATH_CAP], theirs[PATH_CAP], text[PATH_CAP];
    jc_merge_result r;
    make_cache(jc_test_path(theirs, sizeof theirs, "merge-bad-theirs.db"), 3, 0);
    /* A planted result: the key of square(1) with the arguments of square(2). */
    sql(theirs, "UPDATE entries SET args = (SELECT args FROM entries WHERE rowid = 3) WHERE rowid = 2;"
                "UPDATE entries SET result = x'c1' WHERE rowid = 1;");
    jc_cache *c = open_cache(jc_test_path(mine, sizeof mine, "merge-bad-mine.db"), 0);
    assert_int_equal(jc_cache_merge(c, theirs, &r), 0);
    assert_int_equal(r.added, 1);
    assert_int_equal(r.rejected, 2);

    jc_test_path(text, sizeof text, "merge-missing.db");
    assert_int_equal(jc_cache_merge(c, text, &r), JC_ENOTFOUND);
    assert_false(jc_test_exists(text));
    snprintf(text, sizeof text, "%s/merge-garbage.db", jc_test_dir()); /* a file, on either store */
    FILE *f = fopen(text, "w");
    assert_non_null(f);
    fputs("not a database, not at all, but long enough to look like one perhaps", f);
    fclose(f);
    assert_int_equal(jc_cache_merge(c, text, &r), JC_ECORRUPT);
    assert_int_equal(jc_cache_merge(c, NULL, &r), JC_EINVAL);
    jc_cache_close(c);

    c = open_cache(mine, JC_CACHE_READONLY);
    assert_int_equal(jc_cache_merge(c, theirs, &r), JC_EREADONLY);
    jc_cache_close(c);
}

static void inspect_merge_commits_in_batches(void **state)
{
    (void)state;
    char mine[PATH_CAP], theirs[PATH_CAP];
    jc_merge_result r;
    jc_test_path(theirs, sizeof theirs, "merge-many-theirs.db");
    seed(theirs, "f", "v1", 1234, jc__now(), 4);
    jc_cache *c = open_cache(jc_test_path(mine, sizeof mine, "merge-many-mine.db"), 0);
    assert_int_equal(jc_cache_merge(c, theirs, &r), 0);
    assert_int_equal(r.added, 1234);
    jc_cache_close(c);
    assert_int_equal(count_rows(mine, "1"), 1234);
}

/* ---- an error to begin a transaction is reported as it is ---- */

static void inspect_a_locked_file_gives_ebusy_not_a_rollback_error(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP];
    jc_verify_result r;
    int64_t n = -1;
    make_cache(jc_test_path(path, sizeof path, "busy.db"), 3, 0);
    sql(path, "UPDATE entries SET result = x'c1' WHERE rowid = 1");
    jc_cache *c = jc_cache_open(path, &(jc_cache_options){.busy_timeout_ms = 50});
    assert_non_null(c);
    jc_value *v = jc_memo(c, square, jc_int(2)); /* a hit, queued for the next write */
    assert_non_null(v);
    jc_value_free(v);

    /* Another connection holds the write lock. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    /* verify --repair: the check runs, the removal cannot begin. */
    assert_int_equal(jc_cache_verify(c, true, NULL, NULL, &r), JC_EBUSY);
    assert_int_equal(jc_errcode(), JC_EBUSY);
    assert_contains(jc_errmsg(), "locked by another process");
    assert_null(strstr(jc_errmsg(), "rollback"));
    assert_int_equal(r.bad_entries, 1);
    assert_int_equal(r.removed, 0);
    /* A dry run first writes the queued hit: that cannot begin either. */
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.max_entries = 1}, true, &n, NULL), JC_EBUSY);
    assert_int_equal(jc_errcode(), JC_EBUSY);
    assert_contains(jc_errmsg(), "locked by another process");
    assert_null(strstr(jc_errmsg(), "rollback"));
    assert_int_equal(n, 0);
    assert_int_equal(jc_cache_remove_matching(c, NULL, true, &n, NULL), JC_EBUSY);
    assert_null(strstr(jc_errmsg(), "rollback"));
    assert_int_equal(jc_cache_clear(c, &n), JC_EBUSY);
    assert_null(strstr(jc_errmsg(), "rollback"));

    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    /* The lock gone, the same calls work. */
    assert_int_equal(jc_cache_verify(c, true, NULL, NULL, &r), 0);
    assert_int_equal(r.removed, 1);
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.max_entries = 1}, true, &n, NULL), 0);
    assert_int_equal(n, 1);
    jc_cache_close(c);
    assert_int_equal(count_rows(path, "1"), 2);
    assert_int_equal(jc_test_hits_sql(path, "SELECT count(*) FROM entries WHERE hits = 1"), 1);
}

/* ---- merge: what it checks, and times from another file ---- */

static void inspect_merge_rejects_a_result_that_fails_its_checksum(void **state)
{
    (void)state;
    char mine[PATH_CAP], theirs[PATH_CAP];
    jc_merge_result r;
    seen s = {0};
    jc_verify_result vr;
    make_cache(jc_test_path(theirs, sizeof theirs, "merge-trust-theirs.db"), 3, 0);
    /* square(2) = 5: a well-formed entry under its own key, whose result
     * was changed after it was stored; its checksum tells (0.1.0 could not). */
    sql(theirs, "UPDATE entries SET result = x'05' WHERE result = x'04'");
    jc_cache *c = open_cache(theirs, JC_CACHE_READONLY);
    assert_int_equal(jc_cache_verify(c, false, on_problem, &s, &vr), 0);
    assert_int_equal(vr.bad_entries, 1);
    assert_contains(s.text, "does not match the checksum");
    jc_cache_close(c);
    c = open_cache(jc_test_path(mine, sizeof mine, "merge-trust-mine.db"), 0);
    assert_int_equal(jc_cache_merge(c, theirs, &r), 0);
    assert_int_equal(r.added, 2);
    assert_int_equal(r.rejected, 1);
    jc_value *v = jc_memo(c, square, jc_int(2));
    int64_t x = 0;
    assert_int_equal(jc_value_get_int(v, &x), 0);
    assert_int_equal(x, 4); /* computed here: the damaged entry was not taken */
    jc_value_free(v);
    jc_cache_close(c);
}

static void inspect_merge_clamps_times_from_the_future(void **state)
{
    (void)state;
    char mine[PATH_CAP], theirs[PATH_CAP];
    jc_merge_result r;
    double now = jc__now();
    jc_test_path(mine, sizeof mine, "merge-future-mine.db");
    jc_test_path(theirs, sizeof theirs, "merge-future-theirs.db");
    seed(mine, "f", "v1", 2, now - 50, 10);    /* x = 0, 1 */
    seed(theirs, "f", "v1", 3, now - 100, 10); /* x = 0, 1, 2 */
    /* x = 0: created after mine, but last used in the year 33658; x = 1
     * and 2: created and used then. */
    sql(theirs, "UPDATE entries SET created = created + 90, last_used = 1e12 WHERE rowid = 1;"
                "UPDATE entries SET created = 1e12, last_used = 1e12, hits = 9 WHERE rowid IN (2, 3)");
    sql(mine, "UPDATE entries SET compute_seconds = 0.25 WHERE rowid = 2"); /* x = 1 computed here */
    jc_cache *c = open_cache(mine, 0);
    assert_int_equal(jc_cache_merge(c, theirs, &r), 0);
    assert_int_equal(r.replaced, 2); /* x = 0; x = 1, as created now */
    assert_int_equal(r.added, 1);    /* x = 2 */
    assert_int_equal(r.kept + r.rejected, 0);
    jc_cache_close(c);
    double after = jc__now();
    char where[128];
    snprintf(where, sizeof where, "created > %.6f OR last_used > %.6f", after, after);
    assert_int_equal(count_rows(mine, where), 0);
    assert_int_equal(count_rows(mine, "hits = 9"), 2); /* x = 1 and 2, with their hits */
    assert_int_equal(count_rows(mine, "created < 1e11 AND last_used < 1e11"), 3);

    /* Merging the same file again changes nothing: the entries dated in
     * the future do not win again over their own copies as "created now". */
    c = open_cache(mine, 0);
    assert_int_equal(jc_cache_merge(c, theirs, &r), 0);
    assert_int_equal(r.kept, 3);
    assert_int_equal(r.added + r.replaced + r.rejected, 0);
    jc_cache_close(c);
    /* And the merged entries are evicted as least recently used like any
     * other: with their last use moved 1000 s back, an entry used here now
     * outlives them (unclamped, 33658 minus 1000 s would still be newer). */
    sql(mine, "UPDATE entries SET last_used = last_used - 1000");
    jc__store *st = NULL;
    assert_int_equal(jc__store_open(mine, 0, 0, &st), 0);
    assert_int_equal(jc__store_begin(st), 0);
    put_direct(st, "g", "v1", 0, jc__now(), 10);
    assert_int_equal(jc__store_commit(st), 0);
    jc__store_close(st);
    c = open_cache(mine, 0);
    int64_t n = -1;
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.max_entries = 1}, false, &n, NULL), 0);
    assert_int_equal(n, 3);
    jc_cache_close(c);
    assert_int_equal(count_rows(mine, "function = 'g'"), 1);
}

/* ---- entries whose arguments are kept as digests ---- */

/* The text jc_value_format gives a digested array: its kind, length and
 * the XXH3-128 of its little-endian payload. */
static void digest_text(char *out, size_t cap, const char *kind, const void *payload, size_t bytes,
                        size_t count)
{
    XXH128_canonical_t h;
    XXH128_canonicalFromHash(&h, XXH3_128bits(payload, bytes));
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", h.digest[i]);
    snprintf(out, cap, "\"<%s[%zu] xxh3 %s>\"", kind, count, hex);
}

static void load_args(jc_cache *c, jc_value *const *argv, size_t argc, jc_value **args,
                      jc_value **kwargs, jc_value **result, jc_entry_info *info)
{
    uint8_t key[JC__KEY_LEN];
    char hex[33];
    assert_int_equal(jc__key_compute("total", "v1", argv, argc, key), 0);
    assert_int_equal(jc_entry_load(c, key, args, kwargs, result), 0);
    jc__key_hex(key, hex);
    assert_int_equal(jc_entry_find(c, hex, info), 0);
}

static void inspect_digested_arguments_load_show_verify_and_diff(void **state)
{
    (void)state;
    char path[PATH_CAP], other[PATH_CAP], want[128];
    enum { N = 100000, NTAG = 70000 };
    double *xs = malloc(N * sizeof *xs), *ys = malloc(N * sizeof *ys);
    unsigned char *tag = calloc(1, NTAG);
    assert_true(xs && ys && tag);
    double sum = 0;
    for (size_t i = 0; i < N; i++)
        sum += xs[i] = ys[i] = (double)i * 0.5;
    ys[500] += 1;
    assert_true(((const unsigned char *)&(uint64_t){1})[0] == 1); /* the payload below is LE */

    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "digest.db"), 0);
    jc_batch *b = jc_batch_new(c, NULL);
    assert_non_null(b);
    assert_int_equal(jc_delayed(b, total, jc_doubles_ref(xs, N)), 0);
    assert_int_equal(jc_delayed(b, total, jc_doubles_ref(ys, N)), 0);
    assert_int_equal(jc_delayed(b, total, jc_doubles_ref(xs, N), jc_kw("tag", jc_bytes(tag, NTAG))), 0);
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(jc_results_status(res), JC_OK);
    jc_results_free(res);
    jc_batch_free(b);

    /* jc_entry_load: the array comes back as its digest. */
    jc_value *a_args, *a_kw, *a_res, *b_args, *b_kw, *b_res, *c_args, *c_kw, *c_res;
    jc_entry_info ia, ib, ic;
    jc_value *va[] = {jc_doubles_ref(xs, N)}, *vb[] = {jc_doubles_ref(ys, N)},
             *vc[] = {jc_doubles_ref(xs, N), jc_kw("tag", jc_bytes(tag, NTAG))};
    load_args(c, va, 1, &a_args, &a_kw, &a_res, &ia);
    load_args(c, vb, 1, &b_args, &b_kw, &b_res, &ib);
    load_args(c, vc, 2, &c_args, &c_kw, &c_res, &ic);
    assert_true(ia.args_size < 64 && ic.args_size < 96); /* not 800 KB */
    const jc_value *da = jc_value_at(a_args, 0);
    assert_int_equal(jc_value_type(da), JC_TYPE_DIGEST);
    assert_int_equal(jc_value_len(da), N);
    assert_int_equal(jc_value_len(a_kw), 0);
    double got = 0;
    assert_int_equal(jc_value_get_double(a_res, &got), 0);
    assert_true(got == sum);

    /* show: "<doubles[100000] xxh3 ...>", and the same in JSON. */
    digest_text(want, sizeof want, "doubles", xs, N * sizeof *xs, N);
    char *text = jc_value_format(da, 8);
    assert_string_equal(text, want);
    free(text);
    text = jc_value_format(a_args, 0);
    char list[160];
    snprintf(list, sizeof list, "[%s]", want);
    assert_string_equal(text, list);
    free(text);
    digest_text(want, sizeof want, "bytes", tag, NTAG, NTAG);
    text = jc_value_format(jc_value_get(c_kw, "tag"), 0);
    assert_string_equal(text, want);
    free(text);
    assert_int_equal(jc_value_len(jc_value_get(c_kw, "tag")), NTAG);

    /* diff: the same array gives the same digest, another array another. */
    assert_true(jc_value_equal(da, jc_value_at(c_args, 0)));
    assert_false(jc_value_equal(da, jc_value_at(b_args, 0)));
    char *ta = jc_value_format(da, 8), *tb = jc_value_format(jc_value_at(b_args, 0), 8);
    assert_string_not_equal(ta, tb);
    digest_text(want, sizeof want, "doubles", ys, N * sizeof *ys, N);
    assert_string_equal(tb, want);
    free(ta);
    free(tb);
    /* A copy is the same digest. */
    jc_value *copy = jc_value_copy(da);
    assert_true(jc_value_equal(copy, da));
    jc_value_free(copy);

    /* verify: sound (key recomputed from the stored blob, canonical). */
    seen s = {0};
    jc_verify_result vr;
    assert_int_equal(jc_cache_verify(c, false, on_problem, &s, &vr), 0);
    assert_int_equal(vr.checked, 3);
    assert_int_equal(vr.bad_entries, 0);
    assert_string_equal(s.text, "");
    /* A rerun hits all three (the stored digest is the key's). */
    b = jc_batch_new(c, NULL);
    assert_int_equal(jc_delayed(b, total, jc_doubles_ref(ys, N)), 0);
    assert_int_equal(jc_delayed(b, total, jc_doubles_ref(xs, N), jc_kw("tag", jc_bytes(tag, NTAG))), 0);
    res = jc_run(b);
    assert_non_null(res);
    assert_true(jc_result_cached(res, 0) && jc_result_cached(res, 1));
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);

    /* merge: digest entries pass its checks. */
    c = open_cache(jc_test_path(other, sizeof other, "digest-merged.db"), 0);
    jc_merge_result mr;
    assert_int_equal(jc_cache_merge(c, path, &mr), 0);
    assert_int_equal(mr.added, 3);
    assert_int_equal(mr.rejected, 0);
    jc_cache_close(c);

    jc_value *all[] = {a_args, a_kw, a_res, b_args, b_kw, b_res, c_args, c_kw, c_res,
                       va[0], vb[0], vc[0], vc[1]};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        jc_value_free(all[i]);
    free(xs);
    free(ys);
    free(tag);
}

/* ---- vacuum and clear ---- */

static void inspect_clear_then_vacuum_shrinks_the_file(void **state)
{
    (void)state;
    char path[PATH_CAP];
    int64_t n = -1;
    jc_test_path(path, sizeof path, "vacuum.db");
    seed(path, "f", "v1", 200, jc__now(), 2000);
    jc_cache *c = open_cache(path, 0);
    jc_stats *before = jc_cache_stats(c);
    assert_int_equal(jc_cache_clear(c, &n), 0);
    assert_int_equal(n, 200);
    assert_int_equal(jc_cache_vacuum(c), 0);
    jc_stats *after = jc_cache_stats(c);
    assert_int_equal(after->entries, 0);
    assert_true(after->file_bytes < before->file_bytes / 4);
    jc_stats_free(before);
    jc_stats_free(after);
    assert_int_equal(jc_cache_clear(c, NULL), 0);
    jc_cache_close(c);

    c = open_cache(path, JC_CACHE_READONLY);
    assert_int_equal(jc_cache_vacuum(c), JC_EREADONLY);
    assert_int_equal(jc_cache_clear(c, &n), JC_EREADONLY);
    jc_cache_close(c);
}

/* ---- handles without a file ---- */

static void inspect_disabled_and_null_caches_are_einval(void **state)
{
    (void)state;
    jc_entry_info info;
    jc_verify_result vr;
    jc_merge_result mr;
    uint8_t key[JC_KEY_SIZE] = {0};
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_cache *both[] = {c, NULL};
    for (int i = 0; i < 2; i++) {
        jc_cache *x = both[i];
        assert_null(jc_entries_query(x, NULL));
        assert_int_equal(jc_errcode(), JC_EINVAL);
        assert_int_equal(jc_entry_find(x, "ab", &info), JC_EINVAL);
        assert_int_equal(jc_entry_load(x, key, NULL, NULL, NULL), JC_EINVAL);
        assert_int_equal(jc_entry_remove(x, key), JC_EINVAL);
        assert_int_equal(jc_cache_remove_matching(x, NULL, false, NULL, NULL), JC_EINVAL);
        assert_int_equal(jc_cache_prune(x, NULL, false, NULL, NULL), JC_EINVAL);
        assert_null(jc_cache_stats(x));
        assert_int_equal(jc_cache_verify(x, false, NULL, NULL, &vr), JC_EINVAL);
        assert_int_equal(jc_cache_merge(x, "x.db", &mr), JC_EINVAL);
        assert_int_equal(jc_cache_vacuum(x), JC_EINVAL);
        assert_int_equal(jc_cache_clear(x, NULL), JC_EINVAL);
    }
    jc_cache_close(c);
}

/* Least recently used entries beyond a payload bound. */
static void inspect_prune_max_payload(void **state)
{
    (void)state;
    char path[PATH_CAP];
    make_cache(jc_test_path(path, sizeof path, "evict.db"), 50, 0);
    int64_t total = jc_test_sql_int(path, "SELECT sum(args_size + result_size) FROM entries");
    jc_cache *c = open_cache(path, 0);
    int64_t n = -1, bytes = -1;
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.max_payload = total / 2}, false, &n, &bytes), 0);
    jc_cache_close(c);
    /* Later entries are larger (x * x takes more bytes), so more than
     * half of them go; what stays fits, and the last entry to go (the most
     * recently used of those removed, square(n - 1)) would not have. */
    int64_t left = jc_test_sql_int(path, "SELECT sum(args_size + result_size) FROM entries");
    int64_t sq = (n - 1) * (n - 1);
    int64_t last_gone = 4 + (sq < 128 ? 1 : sq < 256 ? 2 : 3);
    assert_true(n >= 25 && n < 50);
    assert_int_equal(total - bytes, left);
    assert_true(left <= total / 2);
    assert_true(left + last_gone > total / 2);
    assert_int_equal(jc_test_sql_int(path, "SELECT min(rowid) FROM entries"), n + 1);
}


/* ---- entries of another key format (issue 16, item 8) ---- */

/* Makes rowids 1..n of the cache at path look like entries a release of key
 * format 2 wrote: their keys (made by that release's own rules) are not
 * this release's keys of their arguments. */
static void other_format_rows(const char *path, int n)
{
    char stmt[256];
    snprintf(stmt, sizeof stmt,
             "UPDATE entries SET key_format = 2, key = randomblob(16) WHERE rowid <= %d", n);
    sql(path, stmt);
}

static void inspect_entries_of_another_key_format_are_kept_apart(void **state)
{
    (void)state;
    char path[PATH_CAP];
    int64_t n = -1, bytes = -1;
    make_cache(jc_test_path(path, sizeof path, "formats.db"), 10, 0);
    other_format_rows(path, 3);
    jc_cache *c = open_cache(path, 0);

    /* verify: not damage, counted apart; repair keeps them. */
    jc_verify_result vr;
    assert_int_equal(jc_cache_verify(c, true, NULL, NULL, &vr), 0);
    assert_int_equal(vr.checked, 7);
    assert_int_equal(vr.bad_entries, 0);
    assert_int_equal(vr.removed, 0);
    assert_int_equal(vr.other_format, 3);
    assert_int_equal(count_rows(path, "1"), 10);
    jc_stats *s = jc_cache_stats(c);
    assert_int_equal(s->entries, 10);
    assert_int_equal(s->other_format_entries, 3);
    jc_stats_free(s);

    /* Removed on purpose, and only them. */
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.other_formats = true}, true, &n, &bytes), 0);
    assert_int_equal(n, 3);
    assert_int_equal(count_rows(path, "1"), 10);
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.other_formats = true}, false, &n, &bytes), 0);
    assert_int_equal(n, 3);
    assert_int_equal(count_rows(path, "key_format = 2"), 0);
    assert_int_equal(count_rows(path, "1"), 7);
    jc_cache_close(c);
}

/* An entry of another format is never served, even under the very key a
 * lookup asks for: the call is computed and its entry replaced. */
static void inspect_an_entry_of_another_key_format_is_never_served(void **state)
{
    (void)state;
    char path[PATH_CAP];
    make_cache(jc_test_path(path, sizeof path, "formats-served.db"), 6, 0);
    sql(path, "UPDATE entries SET key_format = 2, result = x'05', result_check = NULL WHERE rowid <= 2");
    jc_cache *c = open_cache(path, 0);
    for (int many = 0; many <= 1; many++) { /* point lookups, then one pass over the table */
        jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
        int upto = many ? 6 : 1;
        for (int i = 0; i < upto; i++)
            jc_delayed(b, square, jc_int(i));
        jc_results *r = jc_run(b);
        assert_int_equal(jc_results_status(r), JC_OK);
        for (int i = 0; i < upto; i++)
            assert_int_equal(jc_result_int(r, (size_t)i), i * i);
        assert_int_equal(jc_results_summary(r).computed, 1);
        jc_results_free(r);
        jc_batch_free(b);
    }
    jc_value *v = jc_memo(c, square, jc_int(1));
    int64_t one = 0;
    assert_int_equal(jc_value_get_int(v, &one), 0);
    assert_int_equal(one, 1);
    jc_value_free(v);
    jc_cache_close(c);
    assert_int_equal(count_rows(path, "key_format = 2"), 0);
    assert_int_equal(count_rows(path, "key_format = 1"), 6);
}

/* A cache of another key format is merged entry by entry: its entries of
 * this format are added, the others skipped with their own count, none
 * rejected. */
static void inspect_merge_skips_entries_of_another_key_format(void **state)
{
    (void)state;
    char path[PATH_CAP], other[PATH_CAP];
    make_cache(jc_test_path(other, sizeof other, "formats-other.db"), 8, 0);
    other_format_rows(other, 5);
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "formats-into.db"), 0);
    jc_merge_result mr;
    assert_int_equal(jc_cache_merge(c, other, &mr), 0);
    assert_int_equal(mr.added, 3);
    assert_int_equal(mr.rejected, 0);
    assert_int_equal(mr.other_format, 5);
    jc_cache_close(c);
    assert_int_equal(count_rows(path, "1"), 3);
}

/* A -wal pinned by a reader (issue 23: it reached 183 MiB under a max_size
 * of 40 MiB, and nothing said who held it): stats names the process that
 * reads a snapshot, with its command line, and no one once it has ended
 * its transaction. */
static void inspect_stats_names_the_process_pinning_the_wal(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "pinned.db");
    make_cache(path, 50, 0);
    jc_cache *c = open_cache(path, 0);
    jc_batch *b = jc_batch_new(c, NULL);
    for (int i = 50; i < 100; i++)
        jc_delayed(b, square, jc_int(i));
    jc_results_free(jc_run(b)); /* commits in the -wal, for the reader's snapshot to include */
    jc_batch_free(b);
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* the reader: a snapshot held until told */
        sqlite3 *db = NULL;
        char byte = 0;
        int ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
                 sqlite3_exec(db, "BEGIN; SELECT count(*) FROM entries;", NULL, NULL, NULL) == SQLITE_OK;
        if (write(ready[1], ok ? "y" : "n", 1) != 1 || read(go[0], &byte, 1) < 0)
            ok = 0;
        sqlite3_close(db);
        _exit(ok ? 0 : 1);
    }
    char byte = 0;
    assert_int_equal(read(ready[0], &byte, 1), 1);
    assert_int_equal(byte, 'y');
    b = jc_batch_new(c, NULL);
    for (int i = 100; i < 400; i++)
        jc_delayed(b, square, jc_int(i));
    jc_results_free(jc_run(b));
    jc_batch_free(b);
    jc_stats *s = jc_cache_stats(c);
    assert_non_null(s);
    assert_int_equal(s->wal_readers, 1);
    assert_int_equal(s->wal_reader_pid, (long)pid);
    assert_non_null(s->wal_reader_command);
    assert_contains(s->wal_reader_command, "test_inspect");
    assert_true(s->wal_bytes > 0);
    jc_stats_free(s);
    assert_int_equal(write(go[1], "x", 1), 1);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    s = jc_cache_stats(c);
    assert_int_equal(s->wal_readers, 0);
    assert_int_equal(s->wal_reader_pid, 0);
    assert_null(s->wal_reader_command);
    jc_stats_free(s);
    jc_cache_close(c);
    close(ready[0]), close(ready[1]), close(go[0]), close(go[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(inspect_parse_size_accepts_units),
        cmocka_unit_test(inspect_parse_size_rejects_garbage_einval),
        cmocka_unit_test(inspect_parse_age_accepts_units),
        cmocka_unit_test(inspect_parse_age_needs_a_unit_einval),
        cmocka_unit_test(inspect_entries_query_lists_in_name_order_and_filters),
        cmocka_unit_test(inspect_entries_query_sorts_and_ages),
        cmocka_unit_test(inspect_entries_next_skips_entries_removed_meanwhile),
        cmocka_unit_test(inspect_entry_find_by_prefix),
        cmocka_unit_test(inspect_entry_load_decodes_args_kwargs_result),
        cmocka_unit_test(inspect_entry_remove_removes_one),
        cmocka_unit_test(inspect_remove_matching_counts_and_dry_runs),
        cmocka_unit_test(inspect_prune_by_each_rule),
        cmocka_unit_test(inspect_prune_rules_apply_in_order),
        cmocka_unit_test(inspect_prune_counts_a_hit_not_yet_written),
        cmocka_unit_test(inspect_prune_refuses_bad_options_and_readonly),
        cmocka_unit_test(inspect_prune_max_payload),
        cmocka_unit_test(inspect_stats_sums_up_per_function),
        cmocka_unit_test(inspect_stats_names_the_process_pinning_the_wal),
        cmocka_unit_test(inspect_stats_of_an_empty_cache),
        cmocka_unit_test(inspect_verify_sound_cache),
        cmocka_unit_test(inspect_verify_finds_and_repairs_bad_entries),
        cmocka_unit_test(inspect_verify_damaged_file_does_not_crash),
        cmocka_unit_test(inspect_verify_reports_a_damaged_page_and_checks_the_rest),
        cmocka_unit_test(inspect_merge_adds_replaces_keeps),
        cmocka_unit_test(inspect_merge_rejects_bad_entries_and_bad_files),
        cmocka_unit_test(inspect_merge_commits_in_batches),
        cmocka_unit_test(inspect_merge_rejects_a_result_that_fails_its_checksum),
        cmocka_unit_test(inspect_merge_clamps_times_from_the_future),
        cmocka_unit_test(inspect_entries_of_another_key_format_are_kept_apart),
        cmocka_unit_test(inspect_an_entry_of_another_key_format_is_never_served),
        cmocka_unit_test(inspect_merge_skips_entries_of_another_key_format),
        cmocka_unit_test(inspect_a_locked_file_gives_ebusy_not_a_rollback_error),
        cmocka_unit_test(inspect_digested_arguments_load_show_verify_and_diff),
        cmocka_unit_test(inspect_clear_then_vacuum_shrinks_the_file),
        cmocka_unit_test(inspect_disabled_and_null_caches_are_einval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
