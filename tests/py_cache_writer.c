/*
 * py_cache_writer: writes caches with the C library for the Python reader's
 * tests (python/tests/), so that the reader is checked against what the
 * library really stores, in the same test run.
 *
 *   py_cache_writer all FILE
 *       every value type as arguments and results: ints at the int64 limits,
 *       doubles (-0.0 and NaN, canonical in arguments, exact in results),
 *       text, bytes, typed arrays, nested lists and maps, named arguments,
 *       large arguments (>= 64 KiB, stored as digests), a large result.
 *       python/tests/test_reader.py holds the same values and compares.
 *
 *   py_cache_writer stream FILE BATCHES PER_BATCH lockstep|free
 *       keeps FILE open and commits BATCHES runs of PER_BATCH calls of
 *       sq(i); after each run prints "committed N" (the entries so far).
 *       lockstep: then waits for a line on stdin before the next run, so
 *       that the reader looks at each state while the writer holds the file
 *       (results in the -wal file); free: goes straight on.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobcache.h>

/* Returns its first argument as it received it (canonical: -0.0 became
 * +0.0, every NaN the quiet NaN). */
static int echo(jc_call *call)
{
    return jc_return(call, jc_value_copy(jc_arg(call, 0)));
}
JC_FUNCTION(echo, "v1");

static double bits_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* Results are stored exactly: these keep their sign bits and NaN payloads. */
static int exact(jc_call *call)
{
    int64_t which = jc_arg_int(call, 0);
    double nan_payload = bits_double(UINT64_C(0xfff8000000000123)); /* negative, with a payload */
    switch (which) {
    case 0:
        return jc_return_double(call, -0.0);
    case 1:
        return jc_return_double(call, nan_payload);
    case 2:
        return jc_return(call, jc_doubles((double[]){-0.0, nan_payload, 1.0, -INFINITY}, 4));
    default:
        return jc_return(call, jc_map(jc_kw("neg_zero", jc_double(-0.0)), jc_kw("n", jc_int(which))));
    }
}
JC_FUNCTION(exact, "v1");

/* Positional and named arguments together; a map result, as the demo's. */
static int mixed(jc_call *call)
{
    double x = jc_arg_double_named(call, "x");
    int64_t k = jc_arg_int_named(call, "k");
    double scale = jc_kwarg_double(call, "scale");
    const char *label = jc_kwarg_str(call, "label");
    return jc_return(call, jc_map(jc_kw("y", jc_double(x * scale)), jc_kw("k2", jc_int(k * k)),
                                  jc_kw("label", jc_str(label))));
}
JC_FUNCTION_PARAMS(mixed, "v2", "x", "k");

/* Large arguments (digested in the stored arguments) and a large result
 * (in pieces, docs/format.md: its 80 KB series compressed, 80 KB of noise
 * not, a 70,000-letter string and 70,000 bytes). */
static int big(jc_call *call)
{
    size_t nd = 0, ni = 0, nb = 0;
    const double *d = jc_arg_doubles(call, 0, &nd);
    const int64_t *i = jc_arg_ints(call, 1, &ni);
    const unsigned char *b = jc_arg_bytes(call, 2, &nb);
    if (!d || !i || !b)
        return jc_fail(call, "bad arguments");
    double sum = 0;
    for (size_t k = 0; k < nd; k++)
        sum += d[k];
    int64_t isum = 0;
    for (size_t k = 0; k < ni; k++)
        isum += i[k];
    int64_t bsum = 0;
    for (size_t k = 0; k < nb; k++)
        bsum += b[k];
    double *out = malloc(10000 * sizeof *out);
    if (!out)
        return jc_fail(call, "out of memory");
    for (size_t k = 0; k < 10000; k++)
        out[k] = (double)k * 0.5;
    uint64_t x = 88172645463325252ULL;
    int64_t *noise = malloc(10000 * sizeof *noise);
    char *text = malloc(70001);
    if (!noise || !text) {
        free(out);
        free(noise);
        free(text);
        return jc_fail(call, "out of memory");
    }
    for (size_t k = 0; k < 10000; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise[k] = (int64_t)(x >> 1);
    }
    for (size_t k = 0; k < 70000; k++)
        text[k] = (char)('a' + k % 26);
    text[70000] = '\0';
    jc_value *r = jc_map(jc_kw("sum", jc_double(sum)), jc_kw("isum", jc_int(isum)),
                         jc_kw("bsum", jc_int(bsum)), jc_kw("series", jc_doubles(out, 10000)),
                         jc_kw("noise", jc_ints_take(noise, 10000)), jc_kw("text", jc_str(text)),
                         jc_kw("raw", jc_bytes(b, nb)));
    free(out);
    free(text);
    return jc_return(call, r);
}
JC_FUNCTION(big, "v1");

static int sq(jc_call *call)
{
    int64_t x = jc_arg_int(call, 0);
    return jc_return_int(call, x * x);
}
JC_FUNCTION(sq, "v1");

static int write_all(jc_cache *cache)
{
    jc_batch *b = jc_batch_new(cache, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    if (!b)
        return 1;
    static const uint8_t raw[] = {0x00, 0x01, 0xff, 0x80};
    /* echo: one entry per value type */
    jc_delayed(b, echo, jc_int(0));
    jc_delayed(b, echo, jc_int(-1));
    jc_delayed(b, echo, jc_int(200));
    jc_delayed(b, echo, jc_int(INT64_MIN));
    jc_delayed(b, echo, jc_int(INT64_MAX));
    jc_delayed(b, echo, jc_double(1.5));
    jc_delayed(b, echo, jc_double(-0.0));
    jc_delayed(b, echo, jc_double(NAN));
    jc_delayed(b, echo, jc_double(-INFINITY));
    jc_delayed(b, echo, jc_null());
    jc_delayed(b, echo, jc_bool(true));
    jc_delayed(b, echo, jc_bool(false));
    jc_delayed(b, echo, jc_str("h\xc3\xa9llo \xe2\x9c\x93"));
    jc_delayed(b, echo, jc_str(""));
    jc_delayed(b, echo, jc_bytes(raw, sizeof raw));
    jc_delayed(b, echo, jc_bytes(raw, 0));
    jc_delayed(b, echo, jc_doubles((double[]){1.0, -0.0, NAN, 2.5, INFINITY}, 5));
    jc_delayed(b, echo, jc_doubles(NULL, 0));
    jc_delayed(b, echo, jc_ints((int64_t[]){1, -2, INT64_MAX, INT64_MIN}, 4));
    jc_delayed(b, echo,
               jc_list(jc_int(1), jc_list(jc_double(2.0), jc_str("x")),
                       jc_map(jc_kw("b", jc_bool(true)), jc_kw("a", jc_null()))));
    jc_delayed(b, echo,
               jc_map(jc_kw("z", jc_ints((int64_t[]){7}, 1)), jc_kw("nested", jc_map(jc_kw("deep", jc_list(jc_int(3)))))));
    jc_delayed(b, echo, jc_list_new());
    jc_delayed(b, echo, jc_map_new());
    /* exact results */
    for (int k = 0; k < 4; k++)
        jc_delayed(b, exact, jc_int(k));
    /* positional and named arguments */
    for (int k = 0; k < 3; k++)
        jc_delayed(b, mixed, jc_double(0.5 * k), jc_int(k), jc_kw("scale", jc_double(2.0)),
                   jc_kw("label", jc_str(k ? "odd" : "zero")));
    jc_delayed(b, mixed, jc_double(1.0), jc_int(5), jc_kw("label", jc_str("later")), jc_kw("scale", jc_double(-1.0)));

    /* large arguments: exactly 64 KiB of doubles, more of ints and bytes */
    size_t nd = 8192, ni = 10000, nb = 70000;
    double *d = malloc(nd * sizeof *d);
    int64_t *iv = malloc(ni * sizeof *iv);
    uint8_t *bv = malloc(nb);
    if (!d || !iv || !bv)
        return 1;
    for (size_t k = 0; k < nd; k++)
        d[k] = (double)k / 8.0;
    for (size_t k = 0; k < ni; k++)
        iv[k] = (int64_t)k - 5000;
    for (size_t k = 0; k < nb; k++)
        bv[k] = (uint8_t)(k * 7);
    jc_delayed(b, big, jc_doubles_ref(d, nd), jc_ints_ref(iv, ni), jc_bytes(bv, nb),
               jc_kw("extra", jc_list(jc_doubles(d, nd), jc_doubles(d, 3))));

    jc_results *r = jc_run(b);
    int rc = r ? jc_results_status(r) : 1;
    if (rc)
        fprintf(stderr, "py_cache_writer: %s\n", r ? jc_results_message(r) : jc_errmsg());
    jc_results_free(r);
    jc_batch_free(b);
    free(d);
    free(iv);
    free(bv);
    return rc != 0;
}

static int write_stream(jc_cache *cache, int batches, int per_batch, int lockstep)
{
    char line[64];
    for (int k = 0; k < batches; k++) {
        jc_batch *b = jc_batch_new(cache, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
        if (!b)
            return 1;
        for (int i = 0; i < per_batch; i++)
            jc_delayed(b, sq, jc_int((int64_t)k * per_batch + i));
        jc_results *r = jc_run(b);
        int rc = r ? jc_results_status(r) : 1;
        jc_results_free(r);
        jc_batch_free(b);
        if (rc) {
            fprintf(stderr, "py_cache_writer: %s\n", jc_errmsg());
            return 1;
        }
        printf("committed %d\n", (k + 1) * per_batch);
        fflush(stdout);
        if (lockstep && !fgets(line, sizeof line, stdin))
            break;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "stream") == 0 && argc != 6)) {
        fprintf(stderr, "usage: %s all FILE | stream FILE BATCHES PER_BATCH lockstep|free\n", argv[0]);
        return 2;
    }
    jc_cache *cache = jc_cache_open(argv[2], NULL);
    if (!cache) {
        fprintf(stderr, "py_cache_writer: %s\n", jc_errmsg());
        return 1;
    }
    int rc;
    if (strcmp(argv[1], "all") == 0)
        rc = write_all(cache);
    else
        rc = write_stream(cache, atoi(argv[3]), atoi(argv[4]), strcmp(argv[5], "lockstep") == 0);
    jc_cache_close(cache);
    return rc;
}
