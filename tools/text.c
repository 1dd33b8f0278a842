/*
 * Escaping text for the terminal, and the UTF-8 rules it shares with the
 * JSON writer (text.h).
 */
#include "text.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

size_t text_utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0; /* a continuation byte, C0/C1 (overlong) or F5..FF */
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

static bool is_control(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f);
}

char *text_escapen(const char *s, size_t n)
{
    /* At most four bytes out for each byte in. */
    if (n > (SIZE_MAX - 1) / 4)
        return NULL;
    char *out = malloc(4 * n + 1), *q = out;
    if (!out)
        return NULL;
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t cp = 0;
        size_t len = text_utf8_next(p + i, n - i, &cp);
        if (len && !is_control(cp)) {
            memcpy(q, p + i, len);
            q += len;
            i += len;
            continue;
        }
        /* A control character (all its bytes), or one bad byte. */
        size_t bad = len ? len : 1;
        for (size_t k = 0; k < bad; k++, i++) {
            *q++ = '\\';
            *q++ = 'x';
            *q++ = hex[p[i] >> 4];
            *q++ = hex[p[i] & 15];
        }
    }
    *q = '\0';
    return out;
}

char *text_escape(const char *s)
{
    return text_escapen(s ? s : "", s ? strlen(s) : 0);
}
