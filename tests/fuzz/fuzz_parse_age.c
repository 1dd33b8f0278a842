/*
 * jc_parse_age on any text (--older-than, --newer-than): never a crash or
 * undefined arithmetic; an age it accepts is a number of seconds, not
 * negative, not NaN.
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
    double out = -1;
    if (jc_parse_age(text, &out) == 0)
        FUZZ_CHECK(out >= 0);
    free(text);
    return 0;
}
