/*
 * jc_parse_size on any text (a --max-size given on the command line or
 * read from a configuration): never a crash or an overflow; a size it
 * accepts is not negative.
 */
#include <string.h>

#include <jobcache.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    int64_t out = -1;
    if (jc_parse_size(text, &out) == 0)
        FUZZ_CHECK(out >= 0);
    free(text);
    return 0;
}
