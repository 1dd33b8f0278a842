/*
 * utf8.c: where text stops being UTF-8 (utf8.h).
 */
#include "util/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Offset of the first byte of text[0..len) that does not start a
 * well-formed UTF-8 sequence (RFC 3629: no overlong form, no surrogate,
 * nothing above U+10FFFF, no truncated sequence), or len when all is. */
size_t jc__utf8_error_at(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t more; /* continuation bytes */
        unsigned char lo = 0x80, hi = 0xbf; /* range of the first of them */
        if (c >= 0xc2 && c <= 0xdf) {
            more = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            more = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* UTF-16 surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            return i; /* a continuation byte, an overlong 2-byte lead, or 0xf5-0xff */
        }
        if (len - i - 1 < more || s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= more; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
        i += more + 1;
    }
    return len;
}

char *jc__utf8_escaped(const char *text)
{
    size_t len = strlen(text);
    if (jc__utf8_error_at(text, len) == len)
        return NULL;
    char *out = malloc(4 * len + 1), *o = out;
    if (!out)
        return NULL;
    size_t i = 0;
    while (i < len) {
        size_t bad = i + jc__utf8_error_at(text + i, len - i);
        memcpy(o, text + i, bad - i);
        o += bad - i;
        if (bad == len)
            break;
        o += sprintf(o, "\\x%02x", (unsigned char)text[bad]);
        i = bad + 1;
    }
    *o = '\0';
    return out;
}
