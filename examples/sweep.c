/*
 * sweep: a parameter sweep of a stochastic epidemic model, memoized.
 *
 * A stochastic SIR model (Gillespie's algorithm) is run over a grid of
 * infection rates and random seeds; each call takes a few milliseconds. Run
 * it twice: the second run computes nothing, every call is a cache hit. Run
 * it with more seeds (`./sweep 20`) and only the new seeds are computed.
 *
 *     ./sweep [SEEDS [N_JOBS]]       (the cache is $JOBCACHE_PATH or ./jobcache.db)
 *
 * The same program runs on the ranks of an MPI job, on one machine or a
 * cluster: `mpirun -np 3 ./sweep 16` (rank 0 coordinates, ranks 1 and 2
 * compute), or `srun ./sweep 16` in a Slurm batch script (README).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <jobcache.h>

/* splitmix64: a small, good generator; the seed fixes the whole trajectory. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s)
{
    return (double)(next_u64(s) >> 11) * 0x1.0p-53;
}

/* One epidemic: returns the final fraction infected, the peak and the day it ends. */
static int sir(jc_call *call)
{
    double beta = jc_arg_double(call, 0);
    int64_t seed = jc_arg_int(call, 1);
    int64_t population = jc_kwarg_int(call, "population");
    double gamma = jc_kwarg_double(call, "gamma");
    if (population <= 0)
        return jc_fail(call, "population must be positive, got %lld", (long long)population);

    uint64_t rng = (uint64_t)seed;
    int64_t s = population - 10, i = 10, r = 0, peak = i;
    double t = 0;
    while (i > 0) {
        double infect = beta * (double)s * (double)i / (double)population;
        double recover = gamma * (double)i;
        double total = infect + recover;
        t += -log(1.0 - uniform(&rng)) / total;
        if (uniform(&rng) * total < infect) {
            s--;
            i++;
        } else {
            i--;
            r++;
        }
        if (i > peak)
            peak = i;
    }
    return jc_return(call, jc_map(jc_kw("final_size", jc_double((double)r / (double)population)),
                                  jc_kw("peak", jc_int(peak)),
                                  jc_kw("days", jc_double(t))));
}
/* The positional parameters are named: `jobcache ls`, the CSV export and the
 * Python reader show them as columns "beta" and "seed" (names are not part
 * of the key). */
JC_FUNCTION_PARAMS(sir, "v1", "beta", "seed");

int main(int argc, char **argv)
{
    /* Under mpirun or srun, the worker ranks stay in here, serving calls;
     * started on its own, the program just goes on. */
    if (jc_mpi_init(&argc, &argv) < 0) {
        fprintf(stderr, "sweep: %s\n", jc_errmsg());
        return 2;
    }
    int seeds = argc > 1 ? atoi(argv[1]) : 16;
    int n_jobs = argc > 2 ? atoi(argv[2]) : 1;
    const double betas[] = {0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1.0};
    const int nbeta = sizeof betas / sizeof *betas;

    jc_cache *cache = jc_cache_open(NULL, NULL);
    if (!cache) {
        fprintf(stderr, "sweep: %s\n", jc_errmsg());
        return 2;
    }
    jc_batch *batch = jc_batch_new(cache, &(jc_options){.n_jobs = n_jobs, .verbose = JC_VERBOSE_ON});
    if (!batch) {
        fprintf(stderr, "sweep: %s\n", jc_errmsg());
        jc_cache_close(cache);
        return 2;
    }

    for (int b = 0; b < nbeta; b++)
        for (int seed = 0; seed < seeds; seed++)
            jc_delayed(batch, sir, jc_double(betas[b]), jc_int(seed),
                       jc_kw("population", jc_int(150000)), jc_kw("gamma", jc_double(0.1)));

    jc_results *res = jc_run(batch);
    if (!res) {
        fprintf(stderr, "sweep: %s\n", jc_errmsg());
        jc_batch_free(batch);
        jc_cache_close(cache);
        return 2;
    }

    printf("%6s  %10s  %10s  %8s\n", "R0", "final size", "peak", "days");
    for (int b = 0; b < nbeta; b++) {
        double size = 0, peak = 0, days = 0;
        for (int seed = 0; seed < seeds; seed++) {
            const jc_value *v = jc_result_value(res, (size_t)(b * seeds + seed));
            double x = 0;
            int64_t p = 0;
            if (jc_result_status(res, (size_t)(b * seeds + seed)) != JC_STATUS_OK)
                continue; /* reported below */
            jc_value_get_double(jc_value_get(v, "final_size"), &x);
            jc_value_get_int(jc_value_get(v, "peak"), &p);
            size += x;
            peak += (double)p;
            jc_value_get_double(jc_value_get(v, "days"), &x);
            days += x;
        }
        printf("%6.2f  %10.3f  %10.0f  %8.1f\n", betas[b] / 0.1, size / seeds, peak / seeds, days / seeds);
    }
    int status = jc_results_status(res);
    if (status != JC_OK)
        fprintf(stderr, "sweep: %s\n", jc_results_message(res));
    jc_results_free(res);
    jc_batch_free(batch);
    jc_cache_close(cache);
    /* Interrupted (Ctrl-C): what finished is stored; now end as killed by
     * the signal, so that a shell loop around the sweep stops too. */
    jc_raise_interrupt();
    return status == JC_OK ? 0 : 1;
}
