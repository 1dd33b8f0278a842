/*
 * Sorting records that begin with a hash (keysort.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/keysort.h"

#define KEY_BYTES 16

static int cmp_key(const void *a, const void *b)
{
    return memcmp(a, b, KEY_BYTES);
}

/* Insertion sort of the records [0, n) of base: buckets are short. */
static void insertion_sort(uint8_t *base, size_t n, size_t size)
{
    uint8_t t[JC__KEYSORT_MAX_RECORD];
    for (size_t i = 1; i < n; i++) {
        if (cmp_key(base + size * (i - 1), base + size * i) <= 0)
            continue;
        memcpy(t, base + size * i, size);
        size_t j = i;
        do {
            memcpy(base + size * j, base + size * (j - 1), size);
            j--;
        } while (j > 0 && cmp_key(base + size * (j - 1), t) > 0);
        memcpy(base + size * j, t, size);
    }
}

void jc__keysort(void *records, size_t n, size_t size)
{
    uint8_t *rec = records;
    if (n < 2)
        return;
    int bits = 8;
    while (bits < 16 && ((size_t)1 << bits) < n)
        bits++;
    size_t nb = (size_t)1 << bits;
    size_t *end = n >= 64 && size <= JC__KEYSORT_MAX_RECORD ? calloc(nb + 1, sizeof *end) : NULL;
    uint8_t *tmp = end ? malloc(n * size) : NULL;
    if (!tmp) { /* few, a record too large, or out of memory */
        free(end);
        qsort(rec, n, size, cmp_key);
        return;
    }
#define TOP(r) ((((size_t)(r)[0] << 8) | (r)[1]) >> (16 - bits))
    for (size_t i = 0; i < n; i++)
        end[TOP(rec + size * i) + 1]++;
    for (size_t b = 0; b < nb; b++)
        end[b + 1] += end[b];
    for (size_t i = 0; i < n; i++) /* end[b] walks from bucket b's start to its end */
        memcpy(tmp + size * end[TOP(rec + size * i)]++, rec + size * i, size);
#undef TOP
    for (size_t b = 0, start = 0; b < nb; start = end[b], b++) {
        size_t len = end[b] - start;
        if (len > 64) /* keys not spread evenly: not hashes */
            qsort(tmp + size * start, len, size, cmp_key);
        else
            insertion_sort(tmp + size * start, len, size);
    }
    memcpy(rec, tmp, n * size);
    free(tmp);
    free(end);
}
