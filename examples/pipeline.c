/*
 * pipeline: a three-stage sweep (generate data, fit a model, evaluate it),
 * each stage cached by its recipe (docs/pipelines.md).
 *
 * For each of 4 seeds, a noisy line y = 2x + 1 is sampled; for each of 5
 * ridge penalties, a line is fitted to it; each fit is scored on fresh data
 * of the same seed. The fits take the samples' results as arguments
 * (jc_use): a fit starts as soon as its data is there, not after every
 * data set is, and its key holds the digest of its data, not the data.
 * Run it twice: the second run computes nothing, and reads no
 * intermediate value from the cache (the data and the fits are marked
 * intermediate: only the scores are wanted).
 *
 *     ./pipeline [N_JOBS]       (the cache is $JOBCACHE_PATH or ./jobcache.db)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <jobcache.h>

enum { POINTS = 2000 };

/* splitmix64, and a standard normal from two of its draws (Box-Muller). */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static double normal(uint64_t *s)
{
    double u = ((double)(next_u64(s) >> 11) + 0.5) / 9007199254740992.0;
    double v = ((double)(next_u64(s) >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* generate(seed): POINTS pairs (x, y) as one array x0, y0, x1, y1, ... */
static int generate(jc_call *call)
{
    uint64_t s = (uint64_t)jc_arg_int(call, 0);
    double *xy = malloc(2 * POINTS * sizeof *xy);
    if (!xy)
        return jc_fail(call, "out of memory");
    for (int i = 0; i < POINTS; i++) {
        double x = (double)i / POINTS;
        xy[2 * i] = x;
        xy[2 * i + 1] = 2 * x + 1 + 0.3 * normal(&s);
    }
    jc_value *v = jc_doubles(xy, 2 * POINTS);
    free(xy);
    return jc_return(call, v);
}
JC_FUNCTION_PARAMS(generate, "v1", "seed");

/* fit(data, penalty): ridge regression of y on x: [slope, intercept]. */
static int fit(jc_call *call)
{
    size_t n = 0;
    const double *xy = jc_arg_doubles(call, 0, &n);
    double lambda = jc_arg_double(call, 1);
    if (!xy)
        return jc_fail(call, "no data");
    double sx = 0, sy = 0, sxx = 0, sxy = 0, m = (double)(n / 2);
    for (size_t i = 0; i + 1 < n; i += 2) {
        sx += xy[i];
        sy += xy[i + 1];
        sxx += xy[i] * xy[i];
        sxy += xy[i] * xy[i + 1];
    }
    double slope = (sxy - sx * sy / m) / (sxx - sx * sx / m + lambda);
    double line[2] = {slope, (sy - slope * sx) / m};
    return jc_return(call, jc_doubles(line, 2));
}
JC_FUNCTION_PARAMS(fit, "v1", "data", "penalty");

/* score(line, seed): the mean squared error on fresh data of seed. */
static int score(jc_call *call)
{
    size_t n = 0;
    const double *line = jc_arg_doubles(call, 0, &n);
    uint64_t s = (uint64_t)jc_arg_int(call, 1) + 1000;
    if (!line || n != 2)
        return jc_fail(call, "not a line");
    double err = 0;
    for (int i = 0; i < POINTS; i++) {
        double x = (double)i / POINTS, y = 2 * x + 1 + 0.3 * normal(&s);
        double d = y - (line[0] * x + line[1]);
        err += d * d;
    }
    return jc_return_double(call, err / POINTS);
}
JC_FUNCTION_PARAMS(score, "v1", "line", "seed");

int main(int argc, char **argv)
{
    const int64_t seeds[] = {1, 2, 3, 4};
    const double penalties[] = {0, 1, 10, 100, 1000};
    enum { NS = 4, NP = 5 };
    int n_jobs = argc > 1 ? atoi(argv[1]) : -1;
    const char *path = getenv("JOBCACHE_PATH") ? getenv("JOBCACHE_PATH") : "jobcache.db";

    jc_cache *cache = jc_cache_open(path, NULL);
    jc_batch *batch = jc_batch_new(cache, &(jc_options){.n_jobs = n_jobs, .verbose = JC_VERBOSE_ON});
    if (!batch) {
        fprintf(stderr, "pipeline: %s\n", jc_errmsg());
        return 1;
    }
    size_t scores[NS][NP];
    for (int i = 0; i < NS; i++) {
        jc_ref data = jc_delayed_ref(batch, generate, jc_int(seeds[i]));
        jc_intermediate(batch, data);
        for (int k = 0; k < NP; k++) {
            jc_ref line = jc_delayed_ref(batch, fit, jc_use(data), jc_double(penalties[k]));
            jc_intermediate(batch, line);
            scores[i][k] = jc_ref_index(jc_delayed_ref(batch, score, jc_use(line), jc_int(seeds[i])));
        }
    }
    jc_results *res = jc_run(batch);
    if (!res) {
        fprintf(stderr, "pipeline: %s\n", jc_errmsg());
        return 1;
    }
    printf("penalty  mean squared error (mean over %d seeds)\n", NS);
    for (int k = 0; k < NP; k++) {
        double sum = 0;
        for (int i = 0; i < NS; i++)
            sum += jc_result_double(res, scores[i][k]);
        printf("%7g  %.6f\n", penalties[k], sum / NS);
    }
    jc_progress p = jc_results_summary(res);
    printf("%zu calls: %zu computed, %zu cached, %zu intermediate values read from the cache\n", p.total,
           p.computed, p.cached, p.inputs_read);
    int status = jc_results_status(res) ? 1 : 0;
    if (status)
        fprintf(stderr, "pipeline: %s\n", jc_results_message(res));
    jc_results_free(res);
    jc_batch_free(batch);
    jc_cache_close(cache);
    return status;
}
