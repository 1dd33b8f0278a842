/*
 * bigmem.h: memory in large pieces, on the kernel's huge pages where it
 * gives them.
 *
 * A run of 100,000 calls touches some 80 MB of fresh memory once (the
 * batch's calls, their argument and result values, the tables of its
 * lookup and its hits), and the kernel maps it a 4 KiB page at a time: a
 * warm rerun took 22,000 page faults, about half of its CPU time
 * (bench/NOTES.md). Linux's transparent huge pages map 2 MiB at a fault
 * instead, for memory advised so (MADV_HUGEPAGE, madvise(2); the mode
 * "madvise", Debian's default, gives them to advised memory only:
 * Documentation/admin-guide/mm/transhuge.rst). Only pieces of a megabyte
 * and more are advised, and value nodes only in a thread that has made a
 * megabyte of them (value.c). With the mode "never", or a kernel without
 * them, the advice is ignored and memory is as before. With the kernel's
 * defrag mode "madvise" (Debian's default) a fault in advised memory may
 * first compact memory when no huge page is free. A piece from malloc
 * keeps its advice after free() when glibc reuses it.
 *
 * Under AddressSanitizer every piece comes from malloc, unadvised, so that
 * its redzones and leak checks see them (JC__PLAIN_MALLOC).
 */
#ifndef JC_BIGMEM_H
#define JC_BIGMEM_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define JC__PLAIN_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JC__PLAIN_MALLOC 1
#endif
#endif

/* The huge page size advised for (x86-64's 2 MiB), and the smallest
 * piece worth advising. */
#define JC__HUGE_PAGE ((size_t)2 << 20)
#define JC__BIG_ALIGNED ((size_t)1 << 20)

/* Advises the huge pages that lie wholly inside [p, p + bytes), when bytes
 * is at least JC__BIG_ALIGNED; nothing otherwise, and nothing on failure
 * (advice only). Pages already touched stay as they are. */
void jc__advise_huge(void *p, size_t bytes);

/* malloc(n * size) for the large arrays of a batch (a few per call): from
 * JC__BIG_ALIGNED bytes on, aligned to the huge page size and rounded up
 * to a multiple of it, so that all of it can be mapped by huge pages (a
 * piece from malloc starts anywhere: the huge pages wholly inside a piece
 * of 3 MiB were often none). Rounding up costs less than a huge page of
 * memory where a huge page is mapped: at most the piece's size again (a
 * piece of just over 1 MiB takes 2 MiB), a fifth of it at 10 MiB. Freed
 * with free(), grown with realloc() or jc__grow. NULL when out of memory
 * or when n * size overflows. */
void *jc__malloc_big(size_t n, size_t size);

/* calloc(n, size) for the large tables of a batch: from JC__BIG_ALIGNED
 * bytes on, fresh zero pages mapped for it (mmap), aligned and advised as
 * above, so that nothing zeroes them again (a memset of an aligned piece
 * from malloc would write every byte the kernel just zeroed). Freed with
 * jc__free_big and the same n and size, never free(); never grown. NULL
 * when out of memory or when n * size overflows. */
void *jc__calloc_big(size_t n, size_t size);
void jc__free_big(void *p, size_t n, size_t size);

/* A region of JC__HUGE_PAGE bytes aligned to its size, zeroed, advised,
 * from mmap (not malloc): NULL when it cannot be mapped. Given back with
 * jc__region_free; jc__region_drop gives the memory of [p, p + bytes)
 * inside it back to the system (madvise MADV_DONTNEED: it reads as zeros
 * after), keeping the region. */
void *jc__region_new(void);
void jc__region_drop(void *p, size_t bytes);
void jc__region_free(void *region);

#endif
