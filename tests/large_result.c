/*
 * A result of 4 GiB in total (four typed arrays of 1 GiB each) is stored
 * and read back bit-exact, and verify finds it sound: the test of "results
 * of any size" that the default suite leaves out (it needs about 8 GiB of
 * disk, 4.5 GiB of memory and a few minutes). Run it with
 * `cmake --build BUILD --target check-large` (docs/format.md, "Large
 * results").
 *
 *     large_result DIR [GIB_PER_ARRAY]     (default 1)
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <jobcache.h>

static size_t per_array; /* elements */
static int computed;

static double element(int k, size_t i)
{
    /* Compressible in places, not everywhere: a ramp with noise in its
     * low bits every 4th element. */
    uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ULL + (uint64_t)k;
    return (double)i * 0.25 + (double)k + ((i & 3) == 0 ? (double)(x >> 40) * 1e-9 : 0.0);
}

static int four_arrays(jc_call *call)
{
    computed++;
    jc_value *list = jc_list_new();
    for (int k = 0; k < 4; k++) {
        double *a = malloc(per_array * sizeof *a);
        if (!a) {
            jc_value_free(list);
            return jc_fail(call, "out of memory");
        }
        for (size_t i = 0; i < per_array; i++)
            a[i] = element(k, i);
        if (jc_list_append(list, jc_doubles_take(a, per_array))) {
            jc_value_free(list);
            return jc_fail(call, "%s", jc_errmsg());
        }
    }
    return jc_return(call, list);
}
JC_FUNCTION(four_arrays, "v1");

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* One run; 0 when its result is right (bit for bit), and whether it hit. */
static int run(jc_cache *c, bool *hit)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    jc_delayed(b, four_arrays, jc_int(1));
    jc_results *r = jc_run(b);
    int bad = !r || jc_results_status(r) != JC_OK;
    if (bad)
        fprintf(stderr, "large_result: run failed: %s\n", jc_errmsg());
    const jc_value *v = bad ? NULL : jc_result_value(r, 0);
    *hit = !bad && jc_result_cached(r, 0);
    for (int k = 0; !bad && k < 4; k++) {
        const double *d = NULL;
        size_t n = 0;
        if (jc_value_get_doubles(jc_value_at(v, (size_t)k), &d, &n) || n != per_array) {
            bad = 1;
            break;
        }
        for (size_t i = 0; i < n && !bad; i++) {
            double want = element(k, i);
            bad = memcmp(&d[i], &want, sizeof want) != 0;
            if (bad)
                fprintf(stderr, "large_result: array %d element %zu differs\n", k, i);
        }
    }
    jc_results_free(r);
    jc_batch_free(b);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [GIB_PER_ARRAY]\n", argv[0]);
        return 2;
    }
    double gib = argc > 2 ? atof(argv[2]) : 1.0;
    per_array = (size_t)(gib * 1073741824.0) / sizeof(double);
    char path[4096];
    snprintf(path, sizeof path, "%s/large.jobcache", argv[1]);
    for (const char *suffix = ""; suffix; suffix = *suffix ? NULL : "-wal") {
        char p[4200];
        snprintf(p, sizeof p, "%s%s", path, suffix);
        unlink(p);
    }
    jc_cache *c = jc_cache_open(path, NULL);
    if (!c) {
        fprintf(stderr, "large_result: %s\n", jc_errmsg());
        return 1;
    }
    bool hit = false;
    double t0 = now();
    int bad = run(c, &hit);
    double t1 = now();
    if (!bad && (hit || computed != 1)) {
        fprintf(stderr, "large_result: the first run did not compute\n");
        bad = 1;
    }
    jc_cache_close(c);
    c = jc_cache_open(path, NULL);
    double t2 = now();
    if (!bad)
        bad = run(c, &hit);
    double t3 = now();
    if (!bad && (!hit || computed != 1)) {
        fprintf(stderr, "large_result: the second run was not a hit\n");
        bad = 1;
    }
    jc_verify_result vr = {0};
    if (!bad && (jc_cache_verify(c, false, NULL, NULL, &vr) || vr.bad_entries || vr.checked != 1)) {
        fprintf(stderr, "large_result: verify: %s (%" PRId64 " bad)\n", jc_errmsg(), vr.bad_entries);
        bad = 1;
    }
    jc_cache_close(c);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double total = 4.0 * (double)per_array * sizeof(double);
    printf("large_result: 4 arrays of %.2f GiB: stored in %.1f s, read back in %.1f s, peak memory %.2f times the "
           "result: %s\n",
           gib, t1 - t0, t3 - t2, (double)ru.ru_maxrss * 1024.0 / total, bad ? "FAILED" : "bit-exact, verified");
    return bad;
}
