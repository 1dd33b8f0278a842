/*
 * Tests of what a cacheable function receives as its arguments (src/function/call.c,
 * the argument intake of jc_delayed / jc_delayed_name / jc_memo in src/run/batch.c,
 * and the canonical form of values in src/value/canonical.c), through the public API,
 * in-process (n_jobs = 1) and in forked workers (n_jobs = 2).
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

#include "testutil.h"

#define PATH_CAP 4096

static const uint64_t canonical_nan = UINT64_C(0x7ff8000000000000);

static uint64_t bits_of(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static double double_of(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

/* ---- the cacheable functions ---- */

static int reciprocal(jc_call *call)
{
    return jc_return_double(call, 1.0 / jc_arg_double(call, 0));
}
JC_FUNCTION(reciprocal, "v1");

/* Appends the bits of every double in v (scalars and typed arrays, in lists
 * and maps, depth first) to out[*n]. */
static void collect_bits(const jc_value *v, int64_t *out, size_t *n, size_t cap)
{
    switch (jc_value_type(v)) {
    case JC_TYPE_DOUBLE: {
        double d = 0;
        jc_value_get_double(v, &d);
        if (*n < cap)
            out[(*n)++] = (int64_t)bits_of(d);
        break;
    }
    case JC_TYPE_DOUBLES: {
        const double *xs = NULL;
        size_t len = 0;
        jc_value_get_doubles(v, &xs, &len);
        for (size_t i = 0; i < len && *n < cap; i++)
            out[(*n)++] = (int64_t)bits_of(xs[i]);
        break;
    }
    case JC_TYPE_LIST:
    case JC_TYPE_MAP:
        for (size_t i = 0; i < jc_value_len(v); i++)
            collect_bits(jc_value_at(v, i), out, n, cap);
        break;
    default:
        break;
    }
}

/* The caller's borrowed arrays, so that the function can tell whether it was
 * handed the caller's memory (forked workers share the addresses). */
static const double *clean_ref, *dirty_ref;

/* Returns [bits of every double it sees, in argument order (positional,
 * then the named "k" and "ka"), where jc_arg_doubles pointed for the
 * borrowed arguments 2 and 4]. */
static int double_bits(jc_call *call)
{
    int64_t out[64];
    size_t n = 0;
    for (size_t i = 0; i < jc_arg_count(call); i++)
        collect_bits(jc_arg(call, i), out, &n, 64);
    collect_bits(jc_kwarg(call, "k"), out, &n, 64);
    collect_bits(jc_kwarg(call, "ka"), out, &n, 64);
    size_t len;
    int64_t where[2] = {jc_arg_doubles(call, 2, &len) == dirty_ref, jc_arg_doubles(call, 4, &len) == clean_ref};
    return jc_return(call, jc_list(jc_ints(out, n), jc_ints(where, 2)));
}
JC_FUNCTION(double_bits, "v1");

/* Reads every positional argument by index, and the named ones "k0".."k9":
 * returns [count, sum of arg i * (i % 7 + 1), sum of the named ones, 1 if
 * jc_arg past the end is NULL]. */
static int weighted_sum(jc_call *call)
{
    size_t n = jc_arg_count(call);
    int64_t s = 0, kw = 0;
    for (size_t i = 0; i < n; i++)
        s += jc_arg_int(call, i) * (int64_t)(i % 7 + 1);
    for (int k = 0; k < 10; k++) {
        char name[8];
        snprintf(name, sizeof name, "k%d", k);
        const jc_value *v = jc_kwarg(call, name);
        int64_t x = 0;
        if (v && jc_value_get_int(v, &x) == 0)
            kw += x;
    }
    return jc_return(call, jc_list(jc_int((int64_t)n), jc_int(s), jc_int(kw), jc_bool(jc_arg(call, n) == NULL)));
}
JC_FUNCTION(weighted_sum, "v1");

/* Returns its text argument with a byte that is not UTF-8 appended. */
static int bad_text(jc_call *call)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s\xff", jc_arg_str(call, 0));
    return jc_return_str(call, buf);
}
JC_FUNCTION(bad_text, "v1");

/* ---- helpers ---- */

static jc_batch *new_batch(jc_cache *c, int n_jobs)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = n_jobs, .on_error = JC_ON_ERROR_CONTINUE,
                                                .verbose = JC_VERBOSE_OFF});
    if (!b)
        fail_msg("jc_batch_new: %s", jc_errmsg());
    return b;
}

/* Runs reciprocal(x) alone on c and returns its result; *cached tells
 * whether it was a hit. */
static double run_reciprocal(jc_cache *c, int n_jobs, double x, bool *cached)
{
    jc_batch *b = new_batch(c, n_jobs);
    assert_int_equal(jc_delayed(b, reciprocal, jc_double(x)), 0);
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(jc_result_status(res, 0), JC_STATUS_OK);
    double r = jc_result_double(res, 0);
    *cached = jc_result_cached(res, 0);
    jc_results_free(res);
    jc_batch_free(b);
    return r;
}

/* ---- issue 9 item 1: the function sees what the key was made from ---- */

/* 1/x of -0.0 and +0.0 share a key: whichever runs first, the function sees
 * +0.0, so the cache holds +inf and serves it for both. */
static void args_signed_zero_arguments_reach_the_function_as_plus_zero(void **state)
{
    (void)state;
    for (int n_jobs = 1; n_jobs <= 2; n_jobs++)
        for (int neg_first = 0; neg_first <= 1; neg_first++) {
            char path[PATH_CAP];
            jc_cache *c = open_cache(jc_test_path(path, sizeof path, "zero.db"), 0);
            double first = neg_first ? -0.0 : 0.0, second = neg_first ? 0.0 : -0.0;
            bool cached;
            double r1 = run_reciprocal(c, n_jobs, first, &cached);
            assert_false(cached);
            double r2 = run_reciprocal(c, n_jobs, second, &cached);
            assert_true(cached); /* one key */
            if (!(isinf(r1) && r1 > 0 && isinf(r2) && r2 > 0))
                fail_msg("n_jobs %d, %s first: 1/x gave %g then %g, want +inf both times", n_jobs,
                         neg_first ? "-0.0" : "+0.0", r1, r2);
            jc_cache_close(c);
        }
}

/* The same with jc_memo, in the caller's process. */
static void args_jc_memo_hands_the_function_plus_zero_for_minus_zero(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_value *v = jc_memo(c, reciprocal, jc_double(-0.0));
    assert_non_null(v);
    double r = 0;
    assert_int_equal(jc_value_get_double(v, &r), 0);
    assert_true(isinf(r) && r > 0);
    jc_value_free(v);
    jc_cache_close(c);
}

/* NaN payloads and signs, -0.0 in typed arrays (copied and borrowed), nested
 * in lists and maps and in named arguments: the function sees only canonical
 * doubles. A borrowed array that needs a change is copied, never written;
 * one that needs none is handed over in place. Same through jc_delayed_name. */
static void args_every_double_reaches_the_function_canonical(void **state)
{
    (void)state;
    const double snan = double_of(UINT64_C(0x7ff0000000000001));     /* signalling */
    const double payload = double_of(UINT64_C(0xfff8000000000123));  /* negative, payload */
    static double dirty[4], clean[3] = {1.0, 0.0, -2.0};
    const double dirty_before[4] = {1.5, -0.0, payload, snan};
    memcpy(dirty, dirty_before, sizeof dirty);
    clean_ref = clean;
    dirty_ref = dirty;
    const int64_t want[] = {
        0,                                  /* arg 0: -0.0 */
        (int64_t)canonical_nan, 0,          /* arg 1: jc_doubles({payload, -0.0}) */
        (int64_t)bits_of(1.5), 0, (int64_t)canonical_nan, (int64_t)canonical_nan, /* arg 2: dirty */
        (int64_t)canonical_nan, 0, (int64_t)bits_of(3.0), /* arg 3: [snan, {"z": -0.0, "a"... }] */
        (int64_t)bits_of(1.0), 0, (int64_t)bits_of(-2.0), /* arg 4: clean, borrowed */
        (int64_t)canonical_nan,             /* k */
        0, 0,                               /* ka */
    };
    const size_t nwant = sizeof want / sizeof *want;
    for (int n_jobs = 1; n_jobs <= 2; n_jobs++)
        for (int by_name = 0; by_name <= 1; by_name++) {
            char path[PATH_CAP];
            jc_cache *c = open_cache(jc_test_path(path, sizeof path, "bits.db"), 0);
            jc_batch *b = new_batch(c, n_jobs);
            const double two[2] = {payload, -0.0};
            const double zeros[2] = {-0.0, -0.0};
            jc_value *argv[] = {
                jc_double(-0.0),
                jc_doubles(two, 2),
                jc_doubles_ref(dirty, 4),
                jc_list(jc_double(snan), jc_map(jc_kw("z", jc_double(3.0)), jc_kw("a", jc_double(-0.0)))),
                jc_doubles_ref(clean, 3),
                jc_kw("k", jc_double(payload)),
                jc_kw("ka", jc_doubles(zeros, 2)),
            };
            if (by_name)
                assert_int_equal(jc_delayed_name(b, "double_bits", argv, 7), 0);
            else
                assert_int_equal(jc_delayed(b, double_bits, argv[0], argv[1], argv[2], argv[3], argv[4],
                                            argv[5], argv[6]),
                                 0);
            jc_results *res = jc_run(b);
            assert_non_null(res);
            assert_int_equal(jc_result_status(res, 0), JC_STATUS_OK);
            const jc_value *got = jc_result_value(res, 0);
            const int64_t *bits = NULL, *where = NULL;
            size_t n = 0, nw = 0;
            assert_int_equal(jc_value_get_ints(jc_value_at(got, 0), &bits, &n), 0);
            assert_int_equal(jc_value_get_ints(jc_value_at(got, 1), &where, &nw), 0);
            assert_int_equal(n, nwant);
            for (size_t i = 0; i < n; i++)
                if (bits[i] != want[i])
                    fail_msg("n_jobs %d: double %zu reached the function as %016llx, want %016llx", n_jobs, i,
                             (unsigned long long)bits[i], (unsigned long long)want[i]);
            assert_int_equal(where[0], 0); /* the dirty array was copied ... */
            assert_int_equal(where[1], 1); /* ... the clean one was not */
            jc_results_free(res);
            jc_batch_free(b);
            jc_cache_close(c);
            /* The caller's memory is as it was, bit for bit. */
            assert_memory_equal(dirty, dirty_before, sizeof dirty);
        }
    clean_ref = dirty_ref = NULL;
}

/* Canonicalising does not change the key: a call made with -0.0 and NaN
 * payloads hits the entry of the same call made with canonical values. */
static void args_canonical_and_raw_arguments_share_one_entry(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "share.db"), 0);
    double raw[2] = {-0.0, double_of(UINT64_C(0xfff0000000000042))};
    double canon[2] = {0.0, double_of(canonical_nan)};
    clean_ref = dirty_ref = NULL;
    for (int round = 0; round < 2; round++) {
        double *xs = round ? raw : canon;
        jc_batch *b = new_batch(c, 1);
        assert_int_equal(jc_delayed(b, double_bits, jc_double(xs[0]), jc_double(xs[1]), jc_doubles_ref(xs, 2),
                                    jc_null(), jc_doubles_ref(xs, 2)),
                         0);
        jc_results *res = jc_run(b);
        assert_int_equal(jc_result_status(res, 0), JC_STATUS_OK);
        assert_int_equal(jc_result_cached(res, 0), round == 1);
        jc_results_free(res);
        jc_batch_free(b);
    }
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 1);
}

/* ---- issue 16 item 6: jc_arg by index is constant time ---- */

/* 200,000 positional arguments with named ones interleaved (first, inside,
 * last), after them only, and none: every one is read by index in order.
 * Reading them took 16 s when jc_arg scanned from the start (quadratic);
 * now well under the per-call timeout of 20 s, even under sanitizers. */
static void args_many_positional_arguments_are_read_by_index_in_constant_time(void **state)
{
    (void)state;
    enum { N = 200000 };
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 2, .timeout_seconds = 20,
                                                .on_error = JC_ON_ERROR_CONTINUE, .verbose = JC_VERBOSE_OFF});
    assert_non_null(b);
    int64_t want_sum = 0;
    for (int64_t i = 0; i < N; i++)
        want_sum += (3 * i - 7) * (i % 7 + 1);
    for (int layout = 0; layout < 3; layout++) {
        size_t nkw = layout == 2 ? 0 : 10, argc = N + nkw, p = 0, k = 0;
        jc_value **argv = malloc(argc * sizeof *argv);
        assert_non_null(argv);
        for (size_t a = 0; a < argc; a++) {
            /* layout 0: named ones at 0, then every 20,000 positional ones
             * and at the end; layout 1: all after the positional ones. */
            bool named = k < nkw && (layout == 0 ? (p == (size_t)k * (N / 9) || p == N) : p == N);
            if (named) {
                char name[24]; /* room for any size_t: GCC 14 (Debian 13) checks */
                snprintf(name, sizeof name, "k%zu", k);
                argv[a] = jc_kw(name, jc_int((int64_t)(k + 1) * 1000));
                k++;
            } else {
                argv[a] = jc_int(3 * (int64_t)p - 7);
                p++;
            }
        }
        assert_int_equal(p, N);
        assert_int_equal(k, nkw);
        assert_int_equal(jc_delayed_name(b, "weighted_sum", argv, argc), 0);
        free(argv);
    }
    jc_results *res = jc_run(b);
    assert_non_null(res);
    for (size_t r = 0; r < 3; r++) {
        if (jc_result_status(res, r) != JC_STATUS_OK)
            fail_msg("layout %zu: %s: %s", r, jc_status_name(jc_result_status(res, r)),
                     jc_result_error(res, r) ? jc_result_error(res, r) : "");
        const jc_value *v = jc_result_value(res, r);
        int64_t got[3];
        for (size_t i = 0; i < 3; i++)
            assert_int_equal(jc_value_get_int(jc_value_at(v, i), &got[i]), 0);
        bool past_end = false;
        assert_int_equal(jc_value_get_bool(jc_value_at(v, 3), &past_end), 0);
        assert_int_equal(got[0], N);
        assert_true(got[1] == want_sum);
        assert_int_equal(got[2], r == 2 ? 0 : 55000);
        assert_true(past_end);
    }
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

/* ---- issue 9 item 8: text that is not UTF-8 is refused where it is made ---- */

/* A string argument that is not UTF-8 makes jc_delayed fail with the call
 * site, the builder and the byte offset; so does jc_memo. A function that
 * returns such text fails, naming itself and the offset, and nothing is
 * stored. */
static void args_text_that_is_not_utf8_is_refused_at_the_call_and_in_results(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "utf8.db"), 0);
    jc_batch *b = new_batch(c, 1);
    int line = __LINE__ + 1;
    assert_int_equal(jc_delayed(b, bad_text, jc_str("caf\xc3")), JC_EINVAL);
    char where[64];
    snprintf(where, sizeof where, "test_args.c:%d", line);
    expect_error(JC_EINVAL, where);
    expect_error(JC_EINVAL, "jc_str: the text is not valid UTF-8 at byte offset 3");
    assert_null(jc_run(b)); /* the batch remembers its bad call */
    assert_contains(jc_errmsg(), where);
    jc_batch_free(b);

    assert_null(jc_memo(c, bad_text, jc_kw("na\xefme", jc_int(1))));
    expect_error(JC_EINVAL, "jc_kw: the name is not valid UTF-8 at byte offset 2");

    for (int n_jobs = 1; n_jobs <= 2; n_jobs++) {
        b = new_batch(c, n_jobs);
        assert_int_equal(jc_delayed(b, bad_text, jc_str("ok")), 0);
        jc_results *res = jc_run(b);
        assert_non_null(res);
        assert_int_equal(jc_result_status(res, 0), JC_STATUS_ERROR);
        assert_contains(jc_result_error(res, 0), "bad_text(\"ok\"): the result is NULL");
        assert_contains(jc_result_error(res, 0), "not valid UTF-8 at byte offset 2");
        jc_results_free(res);
        jc_batch_free(b);
    }
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 0);
}

/* A function with parameter names: read by name, named in messages. */
static int sir(jc_call *call)
{
    double beta = jc_arg_double_named(call, "beta");
    int64_t seed = jc_arg_int_named(call, "seed");
    const char *tag = jc_arg_str_named(call, "tag");
    if (seed == 7)
        return jc_fail(call, "seed 7 is cursed");
    if (seed == 8)
        (void)jc_arg_double_named(call, "gamma");
    if (!tag)
        return jc_fail(call, "no tag");
    return jc_return(call, jc_map(jc_kw("beta", jc_double(beta)), jc_kw("seed", jc_int(seed)),
                                  jc_kw("tag", jc_str(tag))));
}
JC_FUNCTION_PARAMS(sir, "v1", "beta", "seed", "tag");

static int unnamed(jc_call *call)
{
    (void)jc_arg_double_named(call, "beta");
    return jc_return_int(call, 1);
}
JC_FUNCTION(unnamed, "v1");

static void args_positional_parameters_are_read_and_shown_by_name(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "named.db"), 0);
    for (int n_jobs = 1; n_jobs <= 2; n_jobs++) {
        jc_batch *b = new_batch(c, n_jobs);
        jc_delayed(b, sir, jc_double(0.3), jc_int(3), jc_str("a"));
        jc_delayed(b, sir, jc_double(0.3), jc_int(7), jc_str("b"));
        jc_delayed(b, sir, jc_double(0.5), jc_int(8), jc_str("c"));
        jc_delayed(b, sir, jc_double(0.5), jc_int(9));
        jc_delayed(b, unnamed, jc_double(1.5));
        jc_results *res = jc_run(b);
        assert_non_null(res);
        assert_int_equal(jc_result_status(res, 0), JC_STATUS_OK);
        const jc_value *m = jc_result_value(res, 0);
        double beta = 0;
        int64_t seed = 0;
        assert_int_equal(jc_value_get_double(jc_value_get(m, "beta"), &beta), 0);
        assert_int_equal(jc_value_get_int(jc_value_get(m, "seed"), &seed), 0);
        assert_true(beta == 0.3);
        assert_int_equal(seed, 3);
        assert_int_equal(jc_result_status(res, 1), JC_STATUS_ERROR);
        assert_contains(jc_result_error(res, 1), "sir(beta=0.3, seed=7, tag=\"b\"): seed 7 is cursed");
        assert_contains(jc_result_error(res, 2), "sir(beta=0.5, seed=8, tag=\"c\")");
        assert_contains(jc_result_error(res, 2), "parameter \"gamma\" is not one of the function's");
        assert_contains(jc_result_error(res, 3), "sir(beta=0.5, seed=9)");
        assert_contains(jc_result_error(res, 3), "argument 2 (tag) is missing");
        assert_contains(jc_result_error(res, 4), "unnamed(1.5)");
        assert_contains(jc_result_error(res, 4), "it has no parameter names");
        jc_results_free(res);
        jc_batch_free(b);
    }
    char **names = NULL;
    size_t n = 0;
    assert_int_equal(jc_function_params(c, "sir", "v1", &names, &n), 1);
    assert_int_equal(n, 3);
    assert_string_equal(names[2], "tag");
    free(names);
    assert_int_equal(jc_function_params(c, "unnamed", "v1", &names, &n), 0);
    jc_cache_close(c);

    static const jc_function other = {"other", "v1", unnamed};
    static const char *const bad[] = {"ok", "not ok", NULL};
    static const char *const twice[] = {"a", "a", NULL};
    assert_int_equal(jc_function_register_params(&other, bad), JC_EINVAL);
    assert_contains(jc_errmsg(), "\"not ok\" is not an identifier");
    assert_int_equal(jc_function_register_params(&other, twice), JC_EINVAL);
    assert_contains(jc_errmsg(), "given twice");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(args_signed_zero_arguments_reach_the_function_as_plus_zero),
        cmocka_unit_test(args_jc_memo_hands_the_function_plus_zero_for_minus_zero),
        cmocka_unit_test(args_every_double_reaches_the_function_canonical),
        cmocka_unit_test(args_canonical_and_raw_arguments_share_one_entry),
        cmocka_unit_test(args_many_positional_arguments_are_read_by_index_in_constant_time),
        cmocka_unit_test(args_text_that_is_not_utf8_is_refused_at_the_call_and_in_results),
        cmocka_unit_test(args_positional_parameters_are_read_and_shown_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
