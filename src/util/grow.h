/*
 * grow.h: the one way an array grows (as git's ALLOC_GROW): capacity
 * doubles, from 8, so that n pushes cost O(n) copies; sizes are checked for
 * overflow.
 */
#ifndef JC_GROW_H
#define JC_GROW_H

#include <stddef.h>

/* Makes the array at *arrp (a pointer to the array pointer, of *cap items
 * of size bytes each) hold at least n items, reallocating it; *arrp and
 * *cap change only on success. 0, or -1 when out of memory or n * size
 * overflows (the array is left as it was). */
int jc__grow(void *arrp, size_t *cap, size_t n, size_t size);

/* jc__grow on an array variable and its capacity: JC__GROW(a, cap, n).
 * The common case, room already there, is answered here without a call
 * (a run pushes a call per jc_delayed). n and cap are evaluated twice:
 * pass expressions without side effects. */
#define JC__GROW(arr, cap, n) \
    ((size_t)(n) <= (size_t)(cap) ? 0 : jc__grow(&(arr), &(cap), (n), sizeof *(arr)))

#endif
