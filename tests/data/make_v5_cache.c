/*
 * Made tests/data/v5.jobcache with the code of main at commit 3592c08
 * (jobcache 0.2.0, schema version 5: checksums, fingerprints, key formats,
 * leases and the record of runs), before schema 6 added parameter names. Kept for
 * the record; it is not built. To make the file again:
 *
 *   git worktree add /tmp/v5 3592c08 && cmake -S /tmp/v5 -B /tmp/v5/b &&
 *   cmake --build /tmp/v5/b && cc -I/tmp/v5/include make_v5_cache.c
 *   /tmp/v5/b/libjobcache.a $(pkg-config --libs sqlite3 libxxhash msgpack
 *   libelf capstone) -lpthread -lm && ./a.out v5.jobcache
 *
 * The calls are those of make_v1_cache.c (the same functions are registered
 * in tests/test_migrate.c), stored, then 5 of them hit once.
 */
#include <jobcache.h>
#include <stdio.h>

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
