/*
 * parts.h: what both stores decide alike about the parts of large results
 * (docs/format.md, "Large results"): the size of a chunk, and whether a
 * part is worth compressing. The format fixes the first; the second is
 * one rule, so that a result is stored the same on a file and on a server.
 */
#ifndef JC_STORE_PARTS_H
#define JC_STORE_PARTS_H

#include <stdbool.h>
#include <stddef.h>

#include <zstd.h>

#include "jc_internal.h"

/* Raw bytes per chunk: on SQLite a row of 256 overflow pages; each a zstd
 * frame of its own, so that one chunk at a time is ever held in memory
 * beyond the value. */
#define JC__CHUNK_RAW (1u << 20)
/* The compression trial reads three slices of a part (its start, middle and
 * end) of this many bytes. */
#define JC__TRIAL_SLICE (16u << 10)

/* Whether compressing part p with cc at level saves at least a tenth on
 * the trial's sample (ccache's and joblib's compress: a trial, so that an
 * incompressible array costs almost nothing). scratch holds cap bytes, at
 * least ZSTD_compressBound(3 * JC__TRIAL_SLICE). */
bool jc__part_worth_compressing(ZSTD_CCtx *cc, const jc__part *p, int level, void *scratch, size_t cap);

#endif
