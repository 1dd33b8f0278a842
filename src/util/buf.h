/*
 * buf.h: a growable byte buffer. Writes that fail for want of memory set
 * oom and leave the contents incomplete (later writes are refused too), so
 * that an encoder checks once at the end.
 */
#ifndef JC_BUF_H
#define JC_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct jc__buf {
    char *data;
    size_t len, cap;
    bool oom; /* a write failed: the contents are incomplete */
} jc__buf;
/* Appends p[0..n) to the jc__buf buf; 0, or -1 when out of memory (oom is
 * set). A msgpack-c write callback. */
int jc__buf_write(void *buf, const char *p, size_t n);
/* Frees the contents; b is empty and usable again. */
void jc__buf_free(jc__buf *b);

#endif
