/*
 * Makes the cache files under tests/data that tests/test_migrate.c opens:
 * each was made by this program built against the code just before the
 * schema change that follows it, so each holds what that code wrote.
 *
 *   file             schema  made with (commit)         what the schema has
 *   v0.1.0.jobcache  1       jobcache 0.1.0 (24c2234)    entries, hits
 *   v2.jobcache      2       main at e46f85e             + result checksums,
 *                                                          code fingerprints
 *   v3.jobcache      3       main at 6784307             + key formats
 *   v4.jobcache      4       main at da49ab5             + leases
 *   v5.jobcache      5       main at 3592c08 (0.2.0 dev) + record of runs
 *   v6.jobcache      6       main at 51fc915 (0.2.0)     + parameter names
 *   v7.jobcache      7       main at 7d2dd26 (0.3.0 dev) + evictions per run
 *   v8.jobcache      8       main at 0d8e49d (0.4.0 dev) + retries per run
 *   v9.jobcache      9       main at 09bd3ae (0.4.0 dev) + inputs read per run
 *   v10.jobcache     10      main at b94f492 (0.4.0 dev) + the hit log; and
 *                                                          ramp(20000), a
 *                                                          160 KB result
 *
 * Kept for the record; it is not built. To make file F with commit C:
 *
 *   git worktree add /tmp/old C && cmake -S /tmp/old -B /tmp/old/b &&
 *   cmake --build /tmp/old/b && cc -I/tmp/old/include make_cache.c
 *   /tmp/old/b/libjobcache.a $LIBS -lpthread -lm && ./a.out F
 *
 * where LIBS is "-lsqlite3 -lxxhash -lmsgpackc" for 0.1.0 and
 * "$(pkg-config --libs sqlite3 libxxhash msgpack libelf capstone)" for the
 * later commits (with ompi-c added when the library was built with MPI, as
 * v8's and v9's were). The program stores 32 calls of sq, half and greet, then
 * hits 5 of them once; the same functions are registered under the same
 * names and versions in tests/test_migrate.c, which hits every entry with
 * the new library. Built against 0.4 or later, it also stores a pipeline
 * of two calls, half(half(3.0)), whose second call's key holds a reference.
 * Defined JC_MAKE_CACHE_RAMP (v10 on), it also stores ramp(20000): 20,000
 * doubles, a result of 160 KB, whole in its row before schema 11.
 */
#include <jobcache.h>
#include <stdio.h>
#include <stdlib.h>

static int sq(jc_call *call)
{
    int64_t x = jc_arg_int(call, 0);
    return jc_return_int(call, x * x);
}
JC_FUNCTION(sq, "v1");

static int half(jc_call *call)
{
    return jc_return_double(call, jc_arg_double(call, 0) / 2);
}
JC_FUNCTION(half, "v1");

static int greet(jc_call *call)
{
    const char *who = jc_arg_str(call, 0);
    int64_t times = jc_kwarg_int(call, "times");
    jc_value *m = jc_map(jc_kw("who", jc_str(who)), jc_kw("times", jc_int(times)),
                         jc_kw("scale", jc_doubles((double[]){1.5, -2.25, 0.0}, 3)));
    return jc_return(call, m);
}
JC_FUNCTION(greet, "v2");

#ifdef JC_MAKE_CACHE_RAMP
static int ramp(jc_call *call)
{
    size_t n = (size_t)jc_arg_int(call, 0);
    double *a = malloc(n * sizeof *a);
    if (!a)
        return jc_fail(call, "out of memory");
    for (size_t i = 0; i < n; i++)
        a[i] = (double)i / 8;
    jc_value *v = jc_doubles(a, n);
    free(a);
    return jc_return(call, v);
}
JC_FUNCTION(ramp, "v1");
#endif

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    jc_cache *cache = jc_cache_open(argv[1], NULL);
    if (!cache) {
        fprintf(stderr, "%s\n", jc_errmsg());
        return 1;
    }
    jc_batch *b = jc_batch_new(cache, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    for (int i = 0; i < 20; i++)
        jc_delayed(b, sq, jc_int(i));
    for (int i = 0; i < 10; i++)
        jc_delayed(b, half, jc_double(i * 0.5));
    jc_delayed(b, greet, jc_str("ada"), jc_kw("times", jc_int(3)));
    jc_delayed(b, greet, jc_str("grace"), jc_kw("times", jc_int(1)));
#if defined(JC_VERSION_NUMBER) && JC_VERSION_NUMBER >= 400
    jc_ref h = jc_delayed_ref(b, half, jc_double(3.0));
    jc_delayed(b, half, jc_use(h));
#endif
#ifdef JC_MAKE_CACHE_RAMP
    jc_delayed(b, ramp, jc_int(20000));
#endif
    jc_results *r = jc_run(b);
    int rc = jc_results_status(r);
    jc_results_free(r);
    jc_batch_free(b);
    /* A second run: hits recorded in the file. */
    b = jc_batch_new(cache, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    for (int i = 0; i < 5; i++)
        jc_delayed(b, sq, jc_int(i));
    r = jc_run(b);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(cache);
    return rc;
}
