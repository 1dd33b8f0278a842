/* A tiny program that uses an installed jobcache: memoizes a square. */
#include <stdio.h>
#include <string.h>

#include <jobcache.h>

static int square(jc_call *call)
{
    int64_t x = jc_arg_int(call, 0);
    return jc_return_int(call, x * x);
}
JC_FUNCTION(square, "v1");

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "consumer.jobcache";
    if (strcmp(jc_version(), JC_VERSION_STRING) != 0) {
        fprintf(stderr, "consumer: header %s, library %s\n", JC_VERSION_STRING, jc_version());
        return 1;
    }
    jc_cache *cache = jc_cache_open(path, NULL);
    if (!cache) {
        fprintf(stderr, "consumer: %s\n", jc_errmsg());
        return 1;
    }
    jc_batch *batch = jc_batch_new(cache, &(jc_options){.n_jobs = 2, .verbose = JC_VERBOSE_OFF});
    for (int i = 0; i < 100; i++)
        jc_delayed(batch, square, jc_int(i));
    jc_results *res = jc_run(batch);
    int64_t sum = 0;
    for (size_t k = 0; res && k < jc_results_count(res); k++)
        sum += jc_result_int(res, k);
    int ok = res && jc_results_status(res) == JC_OK && sum == 328350;
    printf("jobcache %s: sum of squares %lld (%s)\n", jc_version(), (long long)sum, ok ? "ok" : "WRONG");
    jc_results_free(res);
    jc_batch_free(batch);
    jc_cache_close(cache);
    return ok ? 0 : 1;
}
