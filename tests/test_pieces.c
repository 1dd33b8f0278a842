/*
 * Large results in pieces (schema 11; docs/format.md, "Large results"):
 * every string, bytes or typed array of 64 KiB or more of a result is
 * stored apart, in chunks, compressed with zstd where that saves a tenth;
 * hits are bit-exact whatever the layout, damage is a miss, and whatever
 * removes or replaces an entry takes its chunks along.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jobcache.h>

#include "jc_internal.h"
#include "store/store.h"
#include "testutil.h"

#define PATH_CAP 4096

static int calls;

/* kind 0: n doubles i * 0.5 (compressible); 1: n doubles of noise
 * (incompressible); 2: a list of [a string of n letters, n bytes, n ints,
 * 7, small doubles]; 3: a map of two large arrays and NaN and -0.0 bits. */
static uint64_t noise_state = 88172645463325252ULL;
static double noise(void)
{
    noise_state ^= noise_state << 13;
    noise_state ^= noise_state >> 7;
    noise_state ^= noise_state << 17;
    double d;
    memcpy(&d, &noise_state, sizeof d);
    return isnan(d) ? 0.25 : d;
}

static jc_value *make_value(int kind, size_t n)
{
    noise_state = 88172645463325252ULL;
    if (kind == 0 || kind == 1) {
        double *a = malloc(n * sizeof *a);
        for (size_t i = 0; i < n; i++)
            a[i] = kind == 0 ? (double)i * 0.5 : noise();
        return jc_doubles_take(a, n);
    }
    if (kind == 2) {
        char *s = malloc(n + 1);
        unsigned char *b = malloc(n);
        int64_t *ints = malloc(n * sizeof *ints);
        for (size_t i = 0; i < n; i++) {
            s[i] = (char)('a' + i % 26);
            b[i] = (unsigned char)(i * 7);
            ints[i] = (int64_t)i - 5;
        }
        s[n] = '\0';
        jc_value *v = jc_list(jc_str(s), jc_bytes(b, n), jc_ints_take(ints, n), jc_int(7),
                              jc_doubles((double[]){1.5, -2.5}, 2));
        free(s);
        free(b);
        return v;
    }
    double *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = (double)i;
    a[1] = -0.0;
    a[2] = jc_test_from_bits(0x7ff80000deadbeefULL); /* a NaN with a payload */
    return jc_map(jc_kw("x", jc_doubles_take(a, n)), jc_kw("y", make_value(0, n / 2)),
                  jc_kw("small", jc_str("tiny")));
}

static int make(jc_call *call)
{
    calls++;
    return jc_return(call, make_value((int)jc_arg_int(call, 0), (size_t)jc_arg_int(call, 1)));
}
JC_FUNCTION(make, "v1");

/* Runs make(kind, n): 1 a hit, 0 computed, and the value bit-exact either way. */
static int run_make(jc_cache *c, int kind, size_t n)
{
    calls = 0;
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    jc_delayed(b, make, jc_int(kind), jc_int((int64_t)n));
    jc_results *r = jc_run(b);
    assert_non_null(r);
    assert_int_equal(jc_results_status(r), JC_OK);
    jc_value *want = make_value(kind, n);
    assert_true(jc_test_same_bits(jc_result_value(r, 0), want));
    jc_value_free(want);
    int cached = jc_result_cached(r, 0);
    assert_int_equal(calls, !cached);
    jc_results_free(r);
    jc_batch_free(b);
    return cached;
}

static int64_t chunks(const char *path)
{
    return jc_test_sql_int(path, "SELECT count(*) FROM chunks");
}

/* The split encoding's checksum is that of the whole encoding (pipelines
 * key by it), and a skeleton decodes back to the same bits. */
static void pieces_checksum_is_that_of_the_whole_encoding(void **state)
{
    (void)state;
    for (int kind = 0; kind < 4; kind++) {
        jc_value *v = make_value(kind, 70000);
        jc__buf whole = {0};
        assert_int_equal(jc__encode_result(v, jc__buf_write, &whole), 0);
        uint8_t check[16];
        jc__result_check(whole.data, whole.len, check);
        jc__split sp;
        assert_int_equal(jc__encode_result_split(v, &sp), 0);
        assert_true(sp.npieces >= 1);
        assert_true(jc__result_in_pieces(sp.stored.data, sp.stored.len));
        assert_false(jc__result_in_pieces(whole.data, whole.len));
        assert_true(sp.stored.len < 200);
        assert_memory_equal(sp.check, check, 16);
        jc__split_free(&sp);
        jc__buf_free(&whole);
        jc_value_free(v);
    }
    /* A result without a large part is its whole encoding. */
    jc_value *small = make_value(0, 1000);
    jc__split sp;
    assert_int_equal(jc__encode_result_split(small, &sp), 0);
    assert_int_equal(sp.npieces, 0);
    jc__buf whole = {0};
    assert_int_equal(jc__encode_result(small, jc__buf_write, &whole), 0);
    assert_int_equal(sp.stored.len, whole.len);
    assert_memory_equal(sp.stored.data, whole.data, whole.len);
    jc__buf_free(&whole);
    jc__split_free(&sp);
    jc_value_free(small);
}

/* Hits are bit-exact, compressed or not, for every shape; compressible
 * parts are compressed, incompressible ones stored as they are. */
static void pieces_round_trip_bit_exact_compressed_or_not(void **state)
{
    (void)state;
    char path[PATH_CAP];
    for (int off = 0; off <= 1; off++) {
        jc_test_path(path, sizeof path, off ? "pieces-raw.db" : "pieces-z.db");
        jc_test_remove_db(path);
        jc_cache *c = jc_cache_open(path, &(jc_cache_options){.compress = off ? "off" : NULL});
        assert_non_null(c);
        for (int kind = 0; kind < 4; kind++) {
            assert_int_equal(run_make(c, kind, 300000), 0);
            assert_int_equal(run_make(c, kind, 300000), 1);
        }
        /* In one memoized call too. */
        calls = 0;
        jc_value *m = jc_memo(c, make, jc_int(0), jc_int(300000));
        assert_non_null(m);
        assert_int_equal(calls, 0);
        jc_value_free(m);
        jc_cache_close(c);
        int64_t zstd = jc_test_sql_int(path, "SELECT count(*) FROM chunks WHERE codec = 1");
        int64_t noisy = jc_test_sql_int(path, "SELECT count(*) FROM chunks c JOIN entries e ON c.key = e.key"
                                              " WHERE e.args = x'92929201ce000493e080' AND c.codec = 1");
        if (off) {
            assert_int_equal(zstd, 0);
        } else {
            assert_true(zstd >= 3);
            assert_int_equal(noisy, 0); /* noise: the trial said no */
        }
        /* 2.4 MB of doubles make 3 chunks of at most 1 MiB. */
        assert_true(chunks(path) >= 3 * 4);
        /* The sizes say what the file holds. */
        assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE result_size < length(result)"), 0);
    }
}

/* A damaged chunk, a missing one, or one of the wrong length is a miss:
 * computed again and the entry overwritten; verify names it. Nothing
 * served is wrong. */
static void pieces_damage_is_a_miss_and_verify_names_it(void **state)
{
    (void)state;
    char path[PATH_CAP];
    const char *damage[] = {
        "UPDATE chunks SET data = zeroblob(length(data)) WHERE seq = 1",
        "DELETE FROM chunks WHERE seq = 2",
        "UPDATE chunks SET size = size - 8 WHERE seq = 0",
        "UPDATE chunks SET codec = 1 WHERE seq = 0",
        /* The reference claims 4 GiB: refused before any memory is taken. */
        "UPDATE entries SET result = substr(result, 1, 12) || x'00000000ffffffff' || substr(result, 21)",
    };
    for (size_t k = 0; k < sizeof damage / sizeof *damage; k++) {
        jc_cache *c = jc_test_fresh_cache(path, sizeof path, "pieces-damage.db", 0);
        jc_cache_close(c);
        c = jc_cache_open(path, &(jc_cache_options){.compress = "off"});
        assert_int_equal(run_make(c, 1, 400000), 0);
        jc_cache_close(c);
        sql(path, damage[k]);
        c = open_cache(path, 0);
        jc_verify_result vr;
        assert_int_equal(jc_cache_verify(c, false, NULL, NULL, &vr), 0);
        assert_int_equal(vr.bad_entries, 1);
        assert_int_equal(run_make(c, 1, 400000), 0); /* a miss, recomputed */
        assert_int_equal(run_make(c, 1, 400000), 1); /* and stored again */
        assert_int_equal(jc_cache_verify(c, false, NULL, NULL, &vr), 0);
        assert_int_equal(vr.bad_entries, 0);
        jc_cache_close(c);
    }
}

/* A compressed chunk that no longer decompresses is damage too: counted
 * (jc_progress.damaged, the summary line) as a changed byte is. */
static void pieces_a_broken_compressed_chunk_is_counted_as_damage(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, sizeof path, "pieces-zdamage.db", 0);
    assert_int_equal(run_make(c, 0, 300000), 0);
    jc_cache_close(c);
    assert_true(jc_test_sql_int(path, "SELECT count(*) FROM chunks WHERE codec = 1") >= 1);
    sql(path, "UPDATE chunks SET data = zeroblob(length(data)) WHERE codec = 1");
    c = open_cache(path, 0);
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    jc_delayed(b, make, jc_int(0), jc_int(300000));
    jc_results *r = jc_run(b);
    assert_int_equal(jc_results_status(r), JC_OK);
    assert_false(jc_result_cached(r, 0));
    assert_int_equal(jc_results_summary(r).damaged, 1);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
}

/* Removing, replacing, evicting or pruning an entry takes its chunks. */
static void pieces_leave_with_their_entry(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, sizeof path, "pieces-gone.db", 0);
    assert_int_equal(run_make(c, 0, 200000), 0);
    assert_int_equal(run_make(c, 2, 200000), 0);
    assert_true(chunks(path) >= 4);
    /* Replaced (recompute mode): the new chunks only. */
    int64_t before = chunks(path);
    jc_cache_close(c);
    c = open_cache(path, JC_CACHE_RECOMPUTE);
    assert_int_equal(run_make(c, 0, 200000), 0);
    jc_cache_close(c);
    assert_int_equal(chunks(path), before);
    /* Removed: all gone. */
    c = open_cache(path, 0);
    int64_t count = 0;
    assert_int_equal(jc_cache_remove_matching(c, NULL, false, &count, NULL), 0);
    assert_int_equal(count, 2);
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 0);
    assert_int_equal(chunks(path), 0);
    /* Evicted by max_size: least recently used first, with its chunks. */
    c = jc_cache_open(path, &(jc_cache_options){.max_size = 3 * 1024 * 1024, .compress = "off"});
    for (int i = 0; i < 4; i++)
        assert_int_equal(run_make(c, 1, 150000 + (size_t)i), 0); /* 1.2 MB each */
    jc_cache_close(c);
    int64_t left = jc_test_sql_int(path, "SELECT count(*) FROM entries");
    assert_true(left >= 1 && left < 4);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM chunks WHERE key NOT IN (SELECT key FROM entries)"), 0);
}

/* merge brings the parts along, and the merged entries hit bit-exact. */
static void pieces_merge_and_backup_carry_the_parts(void **state)
{
    (void)state;
    char a[PATH_CAP], b[PATH_CAP], copy[PATH_CAP];
    jc_cache *ca = jc_test_fresh_cache(a, sizeof a, "pieces-merge-a.db", 0);
    assert_int_equal(run_make(ca, 3, 100000), 0);
    jc_cache *cb = jc_test_fresh_cache(b, sizeof b, "pieces-merge-b.db", 0);
    jc_merge_result mr;
    assert_int_equal(jc_cache_merge(cb, a, &mr), 0);
    assert_int_equal(mr.added, 1);
    assert_int_equal(run_make(cb, 3, 100000), 1);
    snprintf(copy, sizeof copy, "%s/pieces-backup.db", jc_test_dir()); /* a backup is a file, on either store */
    jc_test_remove_db(copy);
    assert_int_equal(jc_cache_backup(ca, copy), 0);
    jc_cache_close(ca);
    jc_cache_close(cb);
    jc_cache *cc = open_cache(copy, JC_CACHE_READONLY);
    assert_int_equal(run_make(cc, 3, 100000), 1);
    jc_cache_close(cc);
}

/* The compress setting: program, environment, file, in that order, and a
 * bad value refused naming it. */
static void pieces_compress_setting_and_its_errors(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, sizeof path, "pieces-setting.db", 0);
    assert_int_equal(jc_cache_config_set(c, "compress", "off"), 0);
    expect_rc(jc_cache_config_set(c, "compress", "fast"), JC_EINVAL, "compress");
    assert_int_equal(run_make(c, 0, 200000), 0); /* the file says off, in force at once */
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM chunks WHERE codec = 1"), 0);
    setenv("JOBCACHE_COMPRESS", "3", 1);
    c = open_cache(path, 0);
    assert_int_equal(run_make(c, 0, 200001), 0);
    jc_cache_close(c);
    assert_true(jc_test_sql_int(path, "SELECT count(*) FROM chunks WHERE codec = 1") >= 1);
    setenv("JOBCACHE_COMPRESS", "99", 1);
    assert_null(jc_cache_open(path, NULL));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_contains(jc_errmsg(), "JOBCACHE_COMPRESS");
    unsetenv("JOBCACHE_COMPRESS");
    assert_null(jc_cache_open(path, &(jc_cache_options){.compress = "zip"}));
    assert_contains(jc_errmsg(), "'zip'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pieces_checksum_is_that_of_the_whole_encoding),
        cmocka_unit_test(pieces_round_trip_bit_exact_compressed_or_not),
        cmocka_unit_test(pieces_damage_is_a_miss_and_verify_names_it),
        cmocka_unit_test(pieces_a_broken_compressed_chunk_is_counted_as_damage),
        cmocka_unit_test(pieces_leave_with_their_entry),
        cmocka_unit_test(pieces_merge_and_backup_carry_the_parts),
        cmocka_unit_test(pieces_compress_setting_and_its_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
