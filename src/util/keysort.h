/*
 * keysort.h: sorting records that begin with a hash (a cache key), faster
 * than qsort because hashes are spread evenly.
 */
#ifndef JC_KEYSORT_H
#define JC_KEYSORT_H

#include <stddef.h>

/* The largest record jc__keysort sorts. */
#define JC__KEYSORT_MAX_RECORD 64

/* Sorts n records of size bytes (16 <= size <= JC__KEYSORT_MAX_RECORD)
 * at rec by their first 16 bytes, compared as memcmp does (big-endian
 * order: the order of keys in the store); records with equal keys end in
 * an unspecified order. A counting sort on the keys' leading bits puts
 * each record in a bucket of about one, and an insertion sort finishes
 * each bucket: about 100 instructions a record where qsort takes 900. Keys
 * that are not spread (a hostile file's lease rows) cost at worst an
 * insertion sort of a bucket: few records fall back to qsort, and a bucket
 * found longer than 64 records is finished by qsort too. Out of memory, it
 * sorts with qsort (it cannot fail). */
void jc__keysort(void *rec, size_t n, size_t size);

/* The same for records in a buffer of malloc's: the sorted records are
 * returned, either in rec or in a new buffer of exactly n records, rec
 * then freed (saving the copy back). Cannot fail. */
void *jc__keysort_move(void *rec, size_t n, size_t size);

#endif
