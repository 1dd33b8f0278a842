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
/* The sort for one record size: called with a constant size (16, 20),
 * the compiler makes each copy a few moves instead of a call to memcpy. */
static inline __attribute__((always_inline)) void insertion_sort_of(uint8_t *base, size_t n, size_t size)
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

/* rec's n records (n >= 64) sorted into out, by buckets of end (nb + 1
 * counts, zeroed). */
static inline __attribute__((always_inline)) void bucket_sort_of(const uint8_t *rec, uint8_t *out, size_t n,
                                                                 size_t size, int bits, size_t *end)
{
    size_t nb = (size_t)1 << bits;
#define TOP(r) ((((size_t)(r)[0] << 8) | (r)[1]) >> (16 - bits))
    for (size_t i = 0; i < n; i++)
        end[TOP(rec + size * i) + 1]++;
    for (size_t b = 0; b < nb; b++)
        end[b + 1] += end[b];
    for (size_t i = 0; i < n; i++) /* end[b] walks from bucket b's start to its end */
        memcpy(out + size * end[TOP(rec + size * i)]++, rec + size * i, size);
#undef TOP
    for (size_t b = 0, start = 0; b < nb; start = end[b], b++) {
        size_t len = end[b] - start;
        if (len > 64) /* keys not spread evenly: not hashes */
            qsort(out + size * start, len, size, cmp_key);
        else
            insertion_sort_of(out + size * start, len, size);
    }
}

static void bucket_sort(const uint8_t *rec, uint8_t *out, size_t n, size_t size, int bits, size_t *end)
{
    if (size == 16) /* a run's claims, leases */
        bucket_sort_of(rec, out, n, 16, bits, end);
    else if (size == 20) /* the hit log's records */
        bucket_sort_of(rec, out, n, 20, bits, end);
    else
        bucket_sort_of(rec, out, n, size, bits, end);
}

/* Sorts rec into a new buffer of n records, returned (malloc'd); NULL when
 * the records are few, too large, or memory is short. */
static uint8_t *sort_apart(const uint8_t *rec, size_t n, size_t size)
{
    int bits = 8;
    while (bits < 16 && ((size_t)1 << bits) < n)
        bits++;
    size_t *end = n >= 64 && size <= JC__KEYSORT_MAX_RECORD ? calloc(((size_t)1 << bits) + 1, sizeof *end) : NULL;
    uint8_t *out = end ? malloc(n * size) : NULL;
    if (out)
        bucket_sort(rec, out, n, size, bits, end);
    free(end);
    return out;
}

void jc__keysort(void *records, size_t n, size_t size)
{
    if (n < 2)
        return;
    uint8_t *sorted = sort_apart(records, n, size);
    if (!sorted) { /* few, a record too large, or out of memory */
        qsort(records, n, size, cmp_key);
        return;
    }
    memcpy(records, sorted, n * size);
    free(sorted);
}

void *jc__keysort_move(void *records, size_t n, size_t size)
{
    uint8_t *sorted = n < 2 ? NULL : sort_apart(records, n, size);
    if (!sorted) {
        jc__keysort(records, n, size);
        return records;
    }
    free(records);
    return sorted;
}
