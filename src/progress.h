/*
 * progress: the one summary line at the end of a run, and the live line that
 * is redrawn while it lasts (only on a terminal, at most ~10 times a second).
 */
#ifndef JC_PROGRESS_H
#define JC_PROGRESS_H

#include <stdbool.h>

#include "jobcache.h"

typedef struct jc__progress_line {
    bool summary; /* print the summary line at the end */
    bool live;    /* redraw a live line on stderr (a terminal) */
    bool drawn;   /* a live line is on screen */
    double last_draw;
} jc__progress_line;

void jc__progress_init(jc__progress_line *pl, jc_verbose v);
void jc__progress_update(jc__progress_line *pl, const jc_progress *p, bool force);
void jc__progress_finish(jc__progress_line *pl, const jc_progress *p);
/* "jobcache: N calls, H cached, C computed, F failed in T s (saved S s of
 * compute)" into buf. */
void jc__progress_summary(const jc_progress *p, char *buf, size_t size);

#endif
