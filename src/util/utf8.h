/*
 * utf8.h: text that must be UTF-8 (RFC 3629).
 */
#ifndef JC_UTF8_H
#define JC_UTF8_H

#include <stddef.h>

/* Offset of the first byte of text[0..len) that does not start a
 * well-formed UTF-8 sequence (RFC 3629: no overlong form, no surrogate,
 * nothing above U+10FFFF, no truncated sequence), or len when all is. */
size_t jc__utf8_error_at(const char *text, size_t len);

/* NUL-ended text with each byte that is not UTF-8 written as \xNN (four
 * characters, as `jobcache` shows such bytes): a new string (free() it);
 * NULL when text is UTF-8 already, or on no memory. For stores that take
 * only UTF-8 text (PostgreSQL) where a file stores any bytes. */
char *jc__utf8_escaped(const char *text);

#endif
