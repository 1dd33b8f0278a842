// The public header compiles as C++ and its functions link from C++. The
// variadic sugar (jc_delayed, jc_list) uses C compound literals, so C++ code
// calls the plain function forms, as here.
#include <jobcache.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

static int cube(jc_call *call)
{
    int64_t x = jc_arg_int(call, 0);
    return jc_return_int(call, x * x * x);
}
JC_FUNCTION(cube, "v1");

#define CHECK(cond)                                                    \
    do {                                                               \
        if (!(cond)) {                                                 \
            std::fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #cond); \
            return 1;                                                  \
        }                                                              \
    } while (0)

int main()
{
    CHECK(std::strcmp(jc_version(), JC_VERSION_STRING) == 0);
    jc_cache_options copts = {};
    copts.flags = JC_CACHE_DISABLED;
    jc_cache *cache = jc_cache_open(nullptr, &copts);
    CHECK(cache != nullptr);
    jc_options opts = {};
    opts.n_jobs = 1;
    opts.verbose = JC_VERBOSE_OFF;
    jc_batch *batch = jc_batch_new(cache, &opts);
    CHECK(batch != nullptr);
    for (int i = 0; i < 10; i++) {
        jc_value *args[] = {jc_int(i)};
        CHECK(jc_delayed_name(batch, "cube", args, 1) == 0);
    }
    jc_results *res = jc_run(batch);
    CHECK(res != nullptr && jc_results_status(res) == JC_OK);
    for (size_t k = 0; k < 10; k++)
        CHECK(jc_result_int(res, k) == (int64_t)(k * k * k));
    jc_value *items[] = {jc_int(1), jc_str("two")};
    jc_value *list = jc_list_of(items, 2);
    char *text = jc_value_format(list, 0);
    CHECK(std::strcmp(text, "[1, \"two\"]") == 0);
    std::free(text);
    jc_value_free(list);
    jc_results_free(res);
    jc_batch_free(batch);
    jc_cache_close(cache);
    std::puts("C++ ok");
    return 0;
}
