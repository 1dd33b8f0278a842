/*
 * Parsing sizes and ages given by people (1G, 30d): jc_parse_size,
 * jc_parse_age.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "jc_internal.h"

/* Reads digits[.digits] at *p into an integer part and a fraction;
 * advances *p. False when there is no digit or the integer part overflows. */
static bool read_number(const char **p, uint64_t *whole, double *frac)
{
    const char *s = *p;
    uint64_t w = 0;
    double f = 0, scale = 0.1;
    bool digits = false;
    for (; *s >= '0' && *s <= '9'; s++, digits = true) {
        if (w > (UINT64_MAX - 9) / 10)
            return false;
        w = w * 10 + (uint64_t)(*s - '0');
    }
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++, digits = true, scale /= 10)
            f += (*s - '0') * scale;
    if (!digits)
        return false;
    *p = s;
    *whole = w;
    *frac = f;
    return true;
}

static int bad_size(const char *text)
{
    return jc__set_error(JC_EINVAL,
                         "'%.60s' is not a size: give a number of bytes with an optional unit K, "
                         "M, G or T (powers of 1024, as KiB, MiB...) or kB, MB, GB or TB (powers of "
                         "1000), such as 500M, 2G or 100MB",
                         text ? text : "(null)");
}

int jc_parse_size(const char *text, int64_t *out)
{
    static const char units[] = "KMGT";
    const char *p = text;
    uint64_t whole, mult = 1;
    double frac;
    if (!text || !out || !read_number(&p, &whole, &frac))
        return bad_size(text);
    const char *u = *p ? strchr(units, toupper((unsigned char)*p)) : NULL;
    if (u) {
        /* A bare letter and "iB" are powers of 1024 (the promise of 0.1.0:
         * "500M" is 500 MiB); a letter then "B" is a power of 1000, as SI
         * and disk makers write it (issue 13). */
        p++;
        bool decimal = *p == 'B' || *p == 'b';
        if (*p == 'i' && (p[1] == 'B' || p[1] == 'b'))
            p += 2;
        else if (decimal)
            p++;
        for (const char *k = units; k <= u; k++)
            mult *= decimal ? 1000 : 1024;
    } else if (*p == 'B' || *p == 'b') {
        p++;
    }
    if (*p)
        return bad_size(text);
    if (whole > (uint64_t)INT64_MAX / mult)
        return bad_size(text);
    uint64_t bytes = whole * mult;
    uint64_t extra = (uint64_t)(frac * (double)mult);
    if (extra > (uint64_t)INT64_MAX - bytes)
        return bad_size(text);
    *out = (int64_t)(bytes + extra);
    return 0;
}

int jc_parse_age(const char *text, double *out)
{
    const char *p = text;
    uint64_t whole;
    double frac, unit;
    if (!text || !out || !read_number(&p, &whole, &frac))
        goto bad;
    switch (tolower((unsigned char)*p)) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: goto bad;
    }
    if (p[1])
        goto bad;
    *out = ((double)whole + frac) * unit;
    return 0;
bad:
    return jc__set_error(JC_EINVAL,
                         "'%.60s' is not an age: give a number and a unit, s, m (minutes), h, d "
                         "or w, such as 90s, 12h or 30d",
                         text ? text : "(null)");
}
