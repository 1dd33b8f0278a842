/*
 * pipeline: the jobcache side of the pipeline benchmark (bench/pipeline.py
 * drives it and joblib side by side and writes its section of
 * BENCHMARKS.md).
 *
 *     jobcache_bench_pipeline MODE DB SEEDS ALPHAS N_JOBS WORK_US HEAVY
 *
 * A three-stage sweep: generate(seed) for SEEDS seeds (1,000 doubles each),
 * train(data, alpha) for ALPHAS alphas per seed (16 doubles), and
 * evaluate(fit, data) of each fit (one double): SEEDS * (1 + 2 * ALPHAS)
 * calls. MODE:
 *
 *   pipeline  one batch; each call takes its inputs by reference (jc_use),
 *             generate and train marked intermediate (not handed back)
 *   stages    one batch per stage, each stage's results passed as values
 *             into the next: what a user of jobcache before pipelines wrote
 *
 * Each call spends WORK_US microseconds of its thread's CPU time times its
 * seed's weight, as generate; train a tenth of it, evaluate a twentieth.
 * A seed's weight is 1, or 100 for the HEAVY seeds with the largest numbers
 * (the largest problems of a sweep, submitted last). WORK_US 0: no work.
 *
 * Prints one JSON object: seconds, calls, computed, cached, inputs_read,
 * rchar (bytes this process read through read(2) and friends during the
 * run: /proc/self/io), mapped (bytes of the cache file it read through
 * SQLite's memory map: the resident size of that mapping in
 * /proc/self/smaps, taken before the cache is closed, which rchar does not
 * see), and a checksum of the final results.
 */
#define _DEFAULT_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jobcache.h>

enum { DATA_N = 1000, FIT_N = 16 };

static long work_us, heavy_from;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Spends us microseconds of this thread's CPU time (whatever else runs on
 * the machine). */
static double spin(double us)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    double acc = 0;
    if (us <= 0)
        return acc;
    do {
        for (int k = 0; k < 200; k++)
            acc = acc * 1.0000001 + 1e-9;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    } while ((double)(t.tv_sec - t0.tv_sec) * 1e6 + (double)(t.tv_nsec - t0.tv_nsec) * 1e-3 < us);
    return acc;
}

static double weight(int64_t seed)
{
    return seed >= heavy_from ? 100 : 1;
}

/* generate(seed): DATA_N doubles. */
static int generate(jc_call *call)
{
    int64_t seed = jc_arg_int(call, 0);
    double xs[DATA_N];
    double acc = spin((double)work_us * weight(seed));
    for (int i = 0; i < DATA_N; i++)
        xs[i] = (double)((seed * 7919 + i * 104729) % 1000) / 1000.0 + (acc < 0);
    return jc_return(call, jc_doubles(xs, DATA_N));
}
JC_FUNCTION(generate, "v1");

/* train(data, alpha, seed): FIT_N doubles (the seed only sets the work). */
static int train(jc_call *call)
{
    size_t n = 0;
    const double *xs = jc_arg_doubles(call, 0, &n);
    double alpha = jc_arg_double(call, 1);
    if (!xs)
        return jc_fail(call, "no data");
    double acc = spin((double)work_us / 10 * weight(jc_arg_int(call, 2)));
    double w[FIT_N] = {0};
    for (size_t i = 0; i < n; i++)
        w[i % FIT_N] += xs[i] * alpha;
    w[0] += acc < 0;
    return jc_return(call, jc_doubles(w, FIT_N));
}
JC_FUNCTION(train, "v1");

/* evaluate(fit, data, seed): one double. */
static int evaluate(jc_call *call)
{
    size_t nf = 0, nd = 0;
    const double *w = jc_arg_doubles(call, 0, &nf);
    const double *xs = jc_arg_doubles(call, 1, &nd);
    if (!w || !xs)
        return jc_fail(call, "no inputs");
    double acc = spin((double)work_us / 20 * weight(jc_arg_int(call, 2)));
    double s = acc < 0;
    for (size_t i = 0; i < nd; i++)
        s += w[i % nf] * xs[i];
    return jc_return_double(call, s);
}
JC_FUNCTION(evaluate, "v1");

/* rchar of /proc/self/io: bytes read by read(2), pread(2) and the like. */
static long long rchar(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    long long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "rchar: %lld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

/* Bytes of the file at path resident in this process's mappings of it
 * (/proc/self/smaps): the pages it has read through a memory map. */
static long long mapped_bytes(const char *path)
{
    char real[4096];
    if (!realpath(path, real))
        return -1;
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[4352];
    long long total = 0, kib = 0;
    bool in = false;
    size_t n = strlen(real);
    while (f && fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n')
            line[--len] = '\0';
        if (strchr(line, '-') && strchr(line, ' ') && strchr(line, '-') < strchr(line, ' ')) { /* a mapping's header */
            in = len >= n && strcmp(line + len - n, real) == 0;
            continue;
        }
        if (in && sscanf(line, "Rss: %lld kB", &kib) == 1)
            total += kib * 1024;
    }
    if (f)
        fclose(f);
    return total;
}

static void die(const char *what)
{
    fprintf(stderr, "jobcache_bench_pipeline: %s: %s\n", what, jc_errmsg());
    exit(2);
}

static jc_batch *batch(jc_cache *c, int n_jobs)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = n_jobs, .verbose = JC_VERBOSE_OFF});
    if (!b)
        die("jc_batch_new");
    return b;
}

static jc_results *run(jc_batch *b, jc_progress *sum)
{
    jc_results *r = jc_run(b);
    if (!r || jc_results_status(r) != JC_OK)
        die(r ? jc_results_message(r) : "jc_run");
    jc_progress p = jc_results_summary(r);
    sum->total += p.total;
    sum->computed += p.computed;
    sum->cached += p.cached;
    sum->inputs_read += p.inputs_read;
    return r;
}

static double alpha_of(int a)
{
    return 0.01 * (a + 1);
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: %s pipeline|stages DB SEEDS ALPHAS N_JOBS WORK_US HEAVY\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    int seeds = atoi(argv[3]), alphas = atoi(argv[4]), n_jobs = atoi(argv[5]);
    work_us = atol(argv[6]);
    heavy_from = seeds - atol(argv[7]);
    jc_cache *c = jc_cache_open(argv[2], NULL);
    if (!c)
        die(argv[2]);
    jc_progress sum = {0};
    double checksum = 0;
    long long r0 = rchar();
    double t0 = now();
    if (strcmp(mode, "pipeline") == 0) {
        jc_batch *b = batch(c, n_jobs);
        size_t n = (size_t)seeds * (size_t)alphas;
        size_t *out = malloc(n * sizeof *out);
        size_t k = 0;
        for (int s = 0; s < seeds; s++) {
            jc_ref data = jc_delayed_ref(b, generate, jc_int(s));
            jc_intermediate(b, data);
            for (int a = 0; a < alphas; a++) {
                jc_ref fit = jc_delayed_ref(b, train, jc_use(data), jc_double(alpha_of(a)), jc_int(s));
                jc_intermediate(b, fit);
                jc_ref ev = jc_delayed_ref(b, evaluate, jc_use(fit), jc_use(data), jc_int(s));
                if (!jc_ref_ok(ev))
                    die("jc_delayed_ref");
                out[k++] = jc_ref_index(ev);
            }
        }
        jc_results *r = run(b, &sum);
        for (size_t i = 0; i < n; i++)
            checksum += jc_result_double(r, out[i]);
        jc_results_free(r);
        jc_batch_free(b);
        free(out);
    } else if (strcmp(mode, "stages") == 0) {
        jc_batch *b = batch(c, n_jobs);
        for (int s = 0; s < seeds; s++)
            jc_delayed(b, generate, jc_int(s));
        jc_results *data = run(b, &sum);
        jc_batch_free(b);
        b = batch(c, n_jobs);
        for (int s = 0; s < seeds; s++)
            for (int a = 0; a < alphas; a++)
                jc_delayed(b, train, jc_value_copy(jc_result_value(data, (size_t)s)), jc_double(alpha_of(a)),
                           jc_int(s));
        jc_results *fits = run(b, &sum);
        jc_batch_free(b);
        b = batch(c, n_jobs);
        for (int s = 0; s < seeds; s++)
            for (int a = 0; a < alphas; a++)
                jc_delayed(b, evaluate, jc_value_copy(jc_result_value(fits, (size_t)(s * alphas + a))),
                           jc_value_copy(jc_result_value(data, (size_t)s)), jc_int(s));
        jc_results *r = run(b, &sum);
        for (size_t i = 0; i < (size_t)seeds * (size_t)alphas; i++)
            checksum += jc_result_double(r, i);
        jc_results_free(r);
        jc_results_free(fits);
        jc_results_free(data);
        jc_batch_free(b);
    } else {
        fprintf(stderr, "jobcache_bench_pipeline: no mode %s\n", mode);
        return 2;
    }
    double t = now() - t0;
    long long r1 = rchar(), mapped = mapped_bytes(argv[2]);
    jc_cache_close(c);
    printf("{\"mode\": \"%s\", \"seconds\": %.6f, \"calls\": %zu, \"computed\": %zu, \"cached\": %zu, "
           "\"inputs_read\": %zu, \"rchar\": %lld, \"mapped\": %lld, \"checksum\": %.17g}\n",
           mode, t, sum.total, sum.computed, sum.cached, sum.inputs_read, r1 - r0, mapped, checksum);
    return 0;
}
