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
    bool detail;  /* a line per failure and per tenth of the run (JC_VERBOSE_DETAIL) */
    double last_draw;
} jc__progress_line;

void jc__progress_init(jc__progress_line *pl, jc_verbose v);
void jc__progress_update(jc__progress_line *pl, const jc_progress *p, bool force);
/* The summary line, naming the cache file (NULL: a disabled cache). */
void jc__progress_finish(jc__progress_line *pl, const jc_progress *p, const char *cache_path);
/* A line of its own ("jobcache: TEXT"), clearing the live line first. */
void jc__progress_note(jc__progress_line *pl, const char *text);
/* "jobcache: N calls, H cached, C computed, F failed in T s (saved S s of
 * compute)" into buf. */
void jc__progress_summary(const jc_progress *p, char *buf, size_t size);

#endif
