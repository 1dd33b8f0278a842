/*
 * grow: the one way an array grows (grow.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/grow.h"

int jc__grow(void *arrp, size_t *cap, size_t n, size_t size)
{
    if (n <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < n) {
        if (ncap > SIZE_MAX / 2)
            return -1;
        ncap *= 2;
    }
    if (size && ncap > SIZE_MAX / size)
        return -1;
    void *old;
    memcpy(&old, arrp, sizeof old);
    void *p = realloc(old, ncap * size);
    if (!p)
        return -1;
    memcpy(arrp, &p, sizeof p);
    *cap = ncap;
    return 0;
}
