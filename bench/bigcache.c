/*
 * bigcache: makes a cache of many tiny entries and times what must not grow
 * with it (issue 16, items 6 and 7). Uses only the public API, so the same
 * source builds against an older jobcache to measure "before". Run by
 * bench/bigcache.sh, not in CI (making 2,000,000 entries takes minutes).
 *
 *   bigcache make FILE N        stores N entries of tiny(i), i = 0 .. N-1
 *   bigcache run1 FILE MAXSIZE  times five one-call runs (each a miss) with
 *                               max_size = MAXSIZE (a size: 100G)
 */
#define _POSIX_C_SOURCE 200809L
#include <jobcache.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int tiny(jc_call *call)
{
    return jc_return_int(call, jc_arg_int(call, 0) * 2);
}
JC_FUNCTION(tiny, "v1");

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int make(const char *path, long n)
{
    jc_cache *c = jc_cache_open(path, NULL);
    if (!c) {
        fprintf(stderr, "%s\n", jc_errmsg());
        return 1;
    }
    const long chunk = 100000;
    for (long at = 0; at < n; at += chunk) {
        jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
        for (long i = at; i < at + chunk && i < n; i++)
            jc_delayed(b, tiny, jc_int(i));
        jc_results *r = jc_run(b);
        if (!r || jc_results_status(r) != JC_OK) {
            fprintf(stderr, "run failed: %s\n", jc_errmsg());
            return 1;
        }
        jc_results_free(r);
        jc_batch_free(b);
        fprintf(stderr, "\r%ld entries", at + chunk < n ? at + chunk : n);
    }
    fprintf(stderr, "\n");
    jc_cache_close(c);
    return 0;
}

static int run1(const char *path, const char *size)
{
    int64_t max = 0;
    if (jc_parse_size(size, &max)) {
        fprintf(stderr, "%s\n", jc_errmsg());
        return 2;
    }
    jc_cache *c = jc_cache_open(path, &(jc_cache_options){.max_size = max});
    if (!c) {
        fprintf(stderr, "%s\n", jc_errmsg());
        return 1;
    }
    /* Arguments no earlier invocation used: every call is a miss. */
    int64_t base = -(int64_t)time(NULL) * 1000 - (getpid() % 1000) * 10;
    for (int k = 0; k < 5; k++) {
        jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
        jc_delayed(b, tiny, jc_int(base - k));
        double t0 = now();
        jc_results *r = jc_run(b);
        double t = now() - t0;
        if (!r || jc_results_status(r) != JC_OK) {
            fprintf(stderr, "run failed: %s\n", jc_errmsg());
            return 1;
        }
        printf("one-call run %d: %.4f s\n", k + 1, t);
        jc_results_free(r);
        jc_batch_free(b);
    }
    jc_cache_close(c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "make") == 0)
        return make(argv[2], atol(argv[3]));
    if (argc == 4 && strcmp(argv[1], "run1") == 0)
        return run1(argv[2], argv[3]);
    fprintf(stderr, "usage: %s make FILE N | run1 FILE MAXSIZE\n", argv[0]);
    return 2;
}
