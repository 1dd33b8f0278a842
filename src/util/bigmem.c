/*
 * bigmem: memory in large pieces, on huge pages where the kernel gives
 * them (bigmem.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/bigmem.h"

/* Advises the whole huge pages inside [p, p + bytes). */
static void advise(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    uintptr_t start = ((uintptr_t)p + JC__HUGE_PAGE - 1) & ~(uintptr_t)(JC__HUGE_PAGE - 1);
    uintptr_t end = ((uintptr_t)p + bytes) & ~(uintptr_t)(JC__HUGE_PAGE - 1);
    if (end > start)
        (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)p, (void)bytes;
#endif
}

void jc__advise_huge(void *p, size_t bytes)
{
#ifndef JC__PLAIN_MALLOC
    if (p && bytes >= JC__BIG_ALIGNED)
        advise(p, bytes);
#else
    (void)p, (void)bytes;
#endif
}

#ifndef JC__PLAIN_MALLOC
/* A piece of bytes (at least JC__BIG_ALIGNED), aligned to the huge page
 * size and rounded up to a multiple of it (bigmem.h), advised. */
static void *aligned_big(size_t bytes)
{
    size_t round = (bytes + JC__HUGE_PAGE - 1) & ~(JC__HUGE_PAGE - 1);
    if (round < bytes)
        return NULL;
    void *p = aligned_alloc(JC__HUGE_PAGE, round);
    if (p)
        advise(p, round);
    return p;
}

/* Maps bytes of fresh zero pages, aligned to the huge page size and
 * advised, with the mapping's size in the page before them. */
static void *map_zeroed(size_t bytes)
{
    size_t round = (bytes + JC__HUGE_PAGE - 1) & ~(JC__HUGE_PAGE - 1);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (round < bytes || round > SIZE_MAX - 2 * JC__HUGE_PAGE)
        return NULL;
    size_t span = round + 2 * JC__HUGE_PAGE; /* room to align, header page included */
    char *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    uintptr_t at = ((uintptr_t)m + page + JC__HUGE_PAGE - 1) & ~(uintptr_t)(JC__HUGE_PAGE - 1);
    char *start = (char *)at - page, *end = (char *)at + round;
    if (start > m)
        munmap(m, (size_t)(start - m));
    if (m + span > end)
        munmap(end, (size_t)(m + span - end));
    memcpy(start, &(size_t){(size_t)(end - start)}, sizeof(size_t));
    advise((void *)at, round);
    return (void *)at;
}
#endif

void *jc__malloc_big(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t bytes = n * size;
#ifndef JC__PLAIN_MALLOC
    if (bytes >= JC__BIG_ALIGNED)
        return aligned_big(bytes);
#endif
    return malloc(bytes ? bytes : 1);
}

void *jc__calloc_big(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t bytes = n * size;
#ifndef JC__PLAIN_MALLOC
    if (bytes >= JC__BIG_ALIGNED)
        return map_zeroed(bytes);
#endif
    return calloc(bytes ? bytes : 1, 1);
}

void jc__free_big(void *p, size_t n, size_t size)
{
#ifndef JC__PLAIN_MALLOC
    if (p && n * size >= JC__BIG_ALIGNED) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE), span;
        memcpy(&span, (char *)p - page, sizeof span);
        munmap((char *)p - page, span);
        return;
    }
#else
    (void)n, (void)size;
#endif
    free(p);
}

void *jc__region_new(void)
{
    /* Twice the size, then the parts outside the aligned middle unmapped. */
    char *p = mmap(NULL, 2 * JC__HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uintptr_t at = ((uintptr_t)p + JC__HUGE_PAGE - 1) & ~(uintptr_t)(JC__HUGE_PAGE - 1);
    size_t head = at - (uintptr_t)p;
    if (head)
        munmap(p, head);
    if (JC__HUGE_PAGE - head)
        munmap((char *)at + JC__HUGE_PAGE, JC__HUGE_PAGE - head);
    advise((void *)at, JC__HUGE_PAGE);
    return (void *)at;
}

void jc__region_drop(void *p, size_t bytes)
{
    (void)madvise(p, bytes, MADV_DONTNEED);
}

void jc__region_free(void *region)
{
    if (region)
        munmap(region, JC__HUGE_PAGE);
}
