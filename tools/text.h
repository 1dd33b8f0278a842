/*
 * Text from a cache file, made safe to show (tools/text.c).
 *
 * Everything a cache file holds (function names, versions, strings, map
 * keys, error texts that quote them) is data from whoever wrote the file.
 * The jobcache command shows none of it raw: human-readable output goes
 * through text_escape, JSON through json.c, which uses text_utf8_next to
 * keep its strings valid UTF-8.
 */
#ifndef JC_TOOL_TEXT_H
#define JC_TOOL_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* The length (1 to 4) of the well-formed UTF-8 sequence at p (n bytes
 * available), with its code point in *cp; 0 when p does not start one
 * (a stray continuation byte, an overlong form, a surrogate, a code point
 * above U+10FFFF, or a sequence cut short). n must be at least 1. */
size_t text_utf8_next(const unsigned char *p, size_t n, uint32_t *cp);

/* s as it may be shown on a terminal, in a new string (free() it): every
 * C0 control character (newline and tab too), DEL, every C1 control
 * (U+0080..U+009F, whose UTF-8 form some terminals obey) and every byte
 * that is not part of well-formed UTF-8 is written as \xNN, byte by byte
 * (ESC is \x1b). Everything else is copied as it is. NULL when out of
 * memory. */
char *text_escape(const char *s);

/* The same for n bytes that may contain NUL (written \x00). */
char *text_escapen(const char *s, size_t n);

#endif
