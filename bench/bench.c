/*
 * bench: the jobcache side of the benchmarks (bench/run.py drives it and
 * joblib side by side and writes BENCHMARKS.md).
 *
 *     jobcache_bench WORKLOAD DB [N] [N_JOBS]
 *
 * prints one JSON object with the figures of one run of WORKLOAD:
 *   tiny     N tiny calls f(i, 7) = i*31 + 7 against DB (cold or warm: whatever DB holds)
 *   cpu      400 calls of about 5 ms of arithmetic, cache disabled
 *   arrays   N calls each taking a distinct 1 MB double array
 *   memo     N single memoized calls of one argument (jc_memo), against DB
 *   memo_session  the same in a memo session (jc_memo_session_begin)
 *   memo_distinct N memoized calls of N distinct keys, all hits (after
 *            `tiny DB N`); memo_distinct DB N 1: in a memo session
 *   fill     fills DB with N entries quickly (for the cache-size series)
 *   tinyfrom the tiny calls FROM .. FROM + N - 1: jobcache_bench tinyfrom DB N N_JOBS FROM
 *   bigresult one call whose result is N MiB of doubles (n_jobs = 1): peak memory
 *   shared   N calls of 1 ms CPU, half shared with the other processes of a
 *            group: jobcache_bench shared DB N N_JOBS PROC NPROCS (PROC -1:
 *            the union of the group's calls, in one process)
 *
 * Under `mpirun -np 3`, tiny and cpu run on the MPI backend (1 coordinator,
 * 2 worker ranks); N_JOBS is then ignored.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <jobcache.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int tiny(jc_call *call)
{
    return jc_return_int(call, jc_arg_int(call, 0) * 31 + jc_arg_int(call, 1));
}
JC_FUNCTION(tiny, "v1");

/* About 5 ms of floating point work on this machine. */
static int cpu(jc_call *call)
{
    int64_t seed = jc_arg_int(call, 0);
    int64_t iters = jc_arg_int(call, 1);
    double x = (double)seed * 1e-3, acc = 0;
    for (int64_t k = 0; k < iters; k++) {
        x = x * 1.0000001 + 1e-9;
        acc += x / (1.0 + x * x);
    }
    return jc_return_double(call, acc);
}
JC_FUNCTION(cpu, "v1");

/* About 1 ms of this thread's CPU time, whatever else runs on the machine. */
static int ms_task(jc_call *call)
{
    int64_t key = jc_arg_int(call, 0);
    struct timespec t0, t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    double acc = (double)key;
    do {
        for (int k = 0; k < 1000; k++)
            acc = acc * 1.0000001 + 1e-9;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    } while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) * 1e-9 < 1e-3);
    return jc_return_int(call, key * 3 + (acc < 0));
}
JC_FUNCTION(ms_task, "v1");

/* A result of N MiB of doubles (the bigresult workload). */
static int big_result(jc_call *call)
{
    size_t n = (size_t)jc_arg_int(call, 0) * 131072;
    double *a = malloc(n * sizeof *a);
    if (!a)
        return jc_fail(call, "out of memory");
    for (size_t i = 0; i < n; i++)
        a[i] = (double)i * 0.5;
#ifdef JC_HAVE_ARRAY_TAKE
    /* Handed over, not copied: a copy would double the peak. */
    return jc_return(call, jc_doubles_take(a, n));
#else
    jc_value *v = jc_doubles(a, n);
    free(a);
    return jc_return(call, v);
#endif
}
JC_FUNCTION(big_result, "v1");

static int array_sum(jc_call *call)
{
    size_t n;
    const double *a = jc_arg_doubles(call, 0, &n);
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i];
    return jc_return_double(call, s);
}
JC_FUNCTION(array_sum, "v1");

static jc_cache *open_cache(const char *db)
{
    jc_cache *c = jc_cache_open(db, NULL);
    if (!c) {
        fprintf(stderr, "bench: %s\n", jc_errmsg());
        exit(2);
    }
    return c;
}

/* The baseline (bench/baseline.sh) builds this file against 0.1.0, which
 * has no MPI backend. */
#if JC_VERSION_MAJOR > 0 || JC_VERSION_MINOR >= 2
#define BENCH_HAVE_MPI 1
static int ranks(void)
{
    return jc_mpi_ranks();
}
#else
static int ranks(void)
{
    return 1;
}
#endif

static long peak_rss_bytes(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss * 1024L;
}

/* Runs b, checks its results, then frees b and closes c: "seconds" is
 * the time from t0 to the cache closed (the last checkpoint of the -wal
 * file is the program's time too), "close_seconds" the closing's share. */
static int run_batch(jc_cache *c, jc_batch *b, double t0, const char *name, size_t n, int check)
{
    jc_results *res = jc_run(b);
    if (!res || jc_results_status(res) != JC_OK) {
        fprintf(stderr, "bench: %s\n", res ? jc_results_message(res) : jc_errmsg());
        jc_batch_free(b);
        jc_cache_close(c);
        return 2;
    }
    if (check == 1)
        for (size_t k = 0; k < n; k++)
            if (jc_result_int(res, k) != (int64_t)k * 31 + 7) {
                fprintf(stderr, "bench: wrong result %zu\n", k);
                jc_results_free(res);
                jc_batch_free(b);
                jc_cache_close(c);
                return 2;
            }
    jc_progress p = jc_results_summary(res);
    double sum = 0;
    for (size_t k = 0; check == 2 && k < n; k++)
        sum += jc_result_double(res, k);
    jc_results_free(res);
    jc_batch_free(b);
    double t_close = now();
    jc_cache_close(c);
    double t_end = now(), t = t_end - t0;
    printf("{\"workload\": \"%s\", \"n\": %zu, \"seconds\": %.6f, \"close_seconds\": %.6f, \"cached\": %zu, "
           "\"computed\": %zu, \"per_second\": %.1f, \"peak_rss\": %ld, \"checksum\": %.17g, \"ranks\": %d}\n",
           name, n, t, t_end - t_close, p.cached, p.computed, (double)n / t, peak_rss_bytes(), sum, ranks());
    return 0;
}

int main(int argc, char **argv)
{
    /* Under mpirun, ranks 1..N-1 stay in here and compute; rank 0 runs the
     * workload on the MPI backend (bench/run.py, rows l and m). */
#ifdef BENCH_HAVE_MPI
    if (jc_mpi_init(&argc, &argv) < 0) {
        fprintf(stderr, "bench: %s\n", jc_errmsg());
        return 2;
    }
#endif
    if (argc < 3) {
        fprintf(stderr, "usage: jobcache_bench tiny|cpu|arrays|memo|fill|shared DB [N] [N_JOBS] [PROC NPROCS]\n");
        return 2;
    }
    const char *w = argv[1], *db = argv[2];
    size_t n = argc > 3 ? strtoull(argv[3], NULL, 10) : 100000;
    int n_jobs = argc > 4 ? atoi(argv[4]) : 2;
    jc_options opts = {.n_jobs = n_jobs, .verbose = JC_VERBOSE_OFF};
    int rc = 0;

    if (strcmp(w, "tiny") == 0 || strcmp(w, "fill") == 0 || strcmp(w, "tinyfrom") == 0) {
        /* tinyfrom: the calls i = FROM .. FROM + N - 1 (argv[5]): new ones
         * for a cache that holds 0 .. FROM - 1. */
        size_t from = strcmp(w, "tinyfrom") == 0 && argc > 5 ? strtoull(argv[5], NULL, 10) : 0;
        jc_cache *c = open_cache(db);
        double t0 = now();
        jc_batch *b = jc_batch_new(c, &opts);
        for (size_t i = from; i < from + n; i++)
            jc_delayed(b, tiny, jc_int((int64_t)i), jc_int(7));
        rc = run_batch(c, b, t0, w, n, from ? 0 : 1);
    } else if (strcmp(w, "cpu") == 0) {
        jc_cache *c = jc_cache_open(NULL, &(jc_cache_options){.flags = JC_CACHE_DISABLED});
        int64_t iters = argc > 5 ? atoll(argv[5]) : 500000;
        double t0 = now();
        jc_batch *b = jc_batch_new(c, &opts);
        for (size_t i = 0; i < n; i++)
            jc_delayed(b, cpu, jc_int((int64_t)i), jc_int(iters));
        rc = run_batch(c, b, t0, w, n, 2);
    } else if (strcmp(w, "arrays") == 0) {
        const size_t len = 131072; /* 1 MiB of doubles per call */
        double *data = malloc(n * len * sizeof *data);
        if (!data)
            return 2;
        for (size_t i = 0; i < n * len; i++)
            data[i] = (double)(i % 1000) * 0.25 + (double)(i / len);
        jc_cache *c = open_cache(db);
        double t0 = now();
        jc_batch *b = jc_batch_new(c, &opts);
        for (size_t i = 0; i < n; i++)
            jc_delayed(b, array_sum, jc_doubles_ref(data + i * len, len));
        rc = run_batch(c, b, t0, w, n, 2);
        free(data);
    } else if (strcmp(w, "shared") == 0) {
        /* Process PROC of NPROCS: N calls of 1 ms, the first half shared by
         * every process, the second its own; PROC -1 runs their union. */
        int proc = argc > 5 ? atoi(argv[5]) : 0, nprocs = argc > 6 ? atoi(argv[6]) : 4;
        jc_cache *c = open_cache(db);
        double t0 = now();
        jc_batch *b = jc_batch_new(c, &opts);
        size_t half = n / 2;
        for (size_t i = 0; i < half; i++)
            jc_delayed(b, ms_task, jc_int((int64_t)i));
        for (int q = proc < 0 ? 0 : proc; q < (proc < 0 ? nprocs : proc + 1); q++)
            for (size_t i = 0; i < n - half; i++)
                jc_delayed(b, ms_task, jc_int((int64_t)(n * (size_t)(q + 1) + i)));
        rc = run_batch(c, b, t0, w, jc_batch_count(b), 0);
    } else if (strcmp(w, "bigresult") == 0) {
        /* One call whose result is N MiB: the coordinating process's peak
         * memory, cold (computed, stored) then warm (read back), as a
         * multiple of the result's size. */
        jc_cache *c = open_cache(db);
        double t0 = now();
        jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
        jc_delayed(b, big_result, jc_int((int64_t)n));
        jc_results *res = jc_run(b);
        int ok = res && jc_results_status(res) == JC_OK;
        int cached = res && jc_result_cached(res, 0);
        jc_results_free(res);
        jc_batch_free(b);
        jc_cache_close(c);
        printf("{\"workload\": \"bigresult\", \"mib\": %zu, \"seconds\": %.6f, \"cached\": %d, "
               "\"peak_rss\": %ld, \"rss_per_result\": %.3f}\n",
               n, now() - t0, cached, peak_rss_bytes(), (double)peak_rss_bytes() / ((double)n * 1048576));
        rc = ok ? 0 : 2;
    } else if (strcmp(w, "memo") == 0 || strcmp(w, "memo_session") == 0 || strcmp(w, "memo_distinct") == 0) {
        /* memo: N calls over 1,000 keys (warmed first); memo_distinct: N
         * distinct keys, the calls of `tiny DB N` (run that first); with
         * _session or a fourth argument of 1, in a memo session. */
        jc_cache *c = open_cache(db);
        bool distinct_keys = strcmp(w, "memo_distinct") == 0;
        bool session = strcmp(w, "memo_session") == 0 || (distinct_keys && argc > 4 && atoi(argv[4]) == 1);
        size_t distinct = distinct_keys ? (n ? n : 1) : 1000;
        for (size_t i = 0; !distinct_keys && i < distinct; i++) /* warm it */
            jc_value_free(jc_memo(c, tiny, jc_int((int64_t)i), jc_int(7)));
#ifdef JC_HAVE_MEMO_SESSIONS
        if (session && jc_memo_session_begin(c, NULL)) {
            fprintf(stderr, "bench: %s\n", jc_errmsg());
            return 2;
        }
#else
        if (session) {
            fprintf(stderr, "bench: this release has no memo sessions\n");
            return 2;
        }
#endif
        double t0 = now();
        int64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            jc_value *v = jc_memo(c, tiny, jc_int((int64_t)(i % distinct)), jc_int(7));
            int64_t x = 0;
            jc_value_get_int(v, &x);
            sum += x;
            jc_value_free(v);
        }
        double t = now() - t0;
#ifdef JC_HAVE_MEMO_SESSIONS
        if (session)
            jc_memo_session_end(c);
#endif
        printf("{\"workload\": \"%s\", \"n\": %zu, \"seconds\": %.6f, \"per_second\": %.1f, "
               "\"us_per_call\": %.3f, \"checksum\": %lld}\n",
               w, n, t, (double)n / t, t / (double)n * 1e6, (long long)sum);
        jc_cache_close(c);
    } else {
        fprintf(stderr, "bench: unknown workload %s\n", w);
        return 2;
    }
    return rc;
}
