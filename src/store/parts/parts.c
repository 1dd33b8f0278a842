/*
 * parts.c: the compression trial both stores use (parts.h).
 */
#include "store/parts/parts.h"

#include <string.h>

bool jc__part_worth_compressing(ZSTD_CCtx *cc, const jc__part *p, int level, void *scratch, size_t cap)
{
    unsigned char sample[3 * JC__TRIAL_SLICE];
    size_t n = 0;
    if (p->len <= sizeof sample) {
        memcpy(sample, p->data, p->len);
        n = p->len;
    } else {
        size_t at[3] = {0, p->len / 2 - JC__TRIAL_SLICE / 2, p->len - JC__TRIAL_SLICE};
        for (int i = 0; i < 3; i++, n += JC__TRIAL_SLICE)
            memcpy(sample + n, (const unsigned char *)p->data + at[i], JC__TRIAL_SLICE);
    }
    size_t z = ZSTD_compressCCtx(cc, scratch, cap, sample, n, level);
    return !ZSTD_isError(z) && z * 10 <= n * 9;
}
