/*
 * The decoding of a stored call's arguments ([positional list, named map],
 * docs/format.md) on any bytes: never a crash, a leak or an overread; what
 * decodes encodes back to arguments that decode to the same count.
 */
#include <string.h>

#include "jc_internal.h"

#include "fuzz.h"

static void free_args(jc_value **argv, size_t argc)
{
    for (size_t i = 0; i < argc; i++)
        jc_value_free(argv[i]);
    free(argv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jc_value **argv = NULL, **again = NULL;
    size_t argc = 0, argc2 = 0;
    if (jc__decode_args(data, size, &argv, &argc) != 0)
        return 0;
    jc__buf b = {0};
    if (jc__encode_args(argv, argc, jc__buf_write, &b) == 0 && !b.oom) {
        FUZZ_CHECK(jc__decode_args(b.data, b.len, &again, &argc2) == 0);
        FUZZ_CHECK(argc2 == argc);
        free_args(again, argc2);
    }
    jc__buf_free(&b);
    free_args(argv, argc);
    return 0;
}
