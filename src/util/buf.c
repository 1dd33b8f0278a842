/*
 * buf: a growable byte buffer (util/buf.h), the one every encoder writes to.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

int jc__buf_write(void *ctx, const char *p, size_t n)
{
    jc__buf *b = ctx;
    if (b->oom)
        return -1;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return -1;
            }
            cap *= 2;
        }
        char *data = realloc(b->data, cap);
        if (!data) {
            b->oom = true;
            return -1;
        }
        b->data = data;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void jc__buf_free(jc__buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}
