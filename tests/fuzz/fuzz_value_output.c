/*
 * The jobcache command's outputs of any decoded value: its JSON
 * (tools/json.c) is strict JSON that jansson's parser reads back, and its
 * human-readable text escaped for the terminal (tools/text.c) holds no
 * control character and no byte of bad UTF-8.
 */
#define _POSIX_C_SOURCE 200809L

#include <string.h>

#include <jobcache.h>

#include "../../tools/json.h"
#include "../../tools/text.h"
#include "fuzz.h"

static void check_terminal_safe(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t cp = 0;
        size_t len = text_utf8_next(p + i, n - i, &cp);
        FUZZ_CHECK(len > 0);
        FUZZ_CHECK(cp >= 0x20 && cp != 0x7f && !(cp >= 0x80 && cp <= 0x9f));
        i += len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jc_value *v = NULL;
    if (jc_value_decode(data, size, &v) != 0)
        return 0;
    json_t *j = json_value(v);
    FUZZ_CHECK(j != NULL);
    char *dumped = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&dumped, &len);
    FUZZ_CHECK(f && json_out(f, j, true) == 0);
    fclose(f);
    json_error_t err;
    json_t *back = json_loadb(dumped, len, JSON_DECODE_ANY, &err);
    if (!back)
        fprintf(stderr, "not JSON (%s at %d): %s\n", err.text, err.position, dumped);
    FUZZ_CHECK(back != NULL);
    json_decref(back);
    free(dumped);

    char *text = jc_value_format(v, 0);
    FUZZ_CHECK(text != NULL);
    char *safe = text_escape(text);
    FUZZ_CHECK(safe != NULL);
    check_terminal_safe(safe);
    free(safe);
    free(text);
    /* Any bytes as a string, a name or a key. */
    safe = text_escapen((const char *)data, size);
    FUZZ_CHECK(safe != NULL);
    check_terminal_safe(safe);
    free(safe);
    jc_value_free(v);
    return 0;
}
