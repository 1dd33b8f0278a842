/*
 * jc_value_decode on any bytes, as a cache file's result or argument blob
 * may hold: never a crash, a leak or an overread; and what decodes encodes
 * canonically: encode(decode(encode(v))) is encode(v), equal values.
 */
#include <string.h>

#include <jobcache.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jc_value *v = NULL, *w = NULL;
    if (jc_value_decode(data, size, &v) != 0) {
        FUZZ_CHECK(v == NULL);
        return 0;
    }
    void *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    FUZZ_CHECK(jc_value_encode(v, &a, &na) == 0);
    FUZZ_CHECK(jc_value_decode(a, na, &w) == 0);
    FUZZ_CHECK(jc_value_encode(w, &b, &nb) == 0);
    FUZZ_CHECK(na == nb && memcmp(a, b, na) == 0);
    FUZZ_CHECK(jc_value_equal(v, w));
    /* The text form too (show, error messages), whole and abbreviated. */
    char *t = jc_value_format(v, 0), *u = jc_value_format(v, 3);
    FUZZ_CHECK(t && u);
    free(t);
    free(u);
    free(a);
    free(b);
    jc_value_free(v);
    jc_value_free(w);
    return 0;
}
