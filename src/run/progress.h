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
    /* JC_VERBOSE_AUTO away from a terminal (a batch job, a log file): the
     * summary only for a run with something to say (failures, an
     * interruption, results not stored, evictions that failed). */
    bool when_told;
    bool winch;   /* this line installed the SIGWINCH handler (restore it) */
    double last_draw;
    size_t columns;   /* the terminal's width, read again after a SIGWINCH */
    size_t drawn_len; /* characters of the line on screen */
    unsigned winch_seen; /* the SIGWINCH count when columns was read */
    int workers;      /* how many workers run calls (0 until known) */
    const char *backend; /* what computed the misses ("fork", "mpi", ...), NULL when nothing ran */
    int ranks;        /* the MPI backend: ranks of the job, coordinator included */
} jc__progress_line;

/* Starts the display of a run. On a terminal, reads its width and, only
 * when SIGWINCH has its default disposition (the program has no handler
 * of its own), installs a handler that notes a change of size; the
 * previous disposition is put back by jc__progress_finish or
 * jc__progress_release. */
void jc__progress_init(jc__progress_line *pl, jc_verbose v);
/* Redraws the live line in place (at most ~10 times a second unless
 * force): a bar with done/total, rate, ETA, workers busy and failures,
 * fitted to the terminal's width. */
void jc__progress_update(jc__progress_line *pl, const jc_progress *p, bool force);
/* Clears the live line, prints the summary line when it is told
 * (jc__progress_tells), naming the backend that computed and the cache
 * file (NULL: a disabled cache), with note after the counts, and
 * releases. */
void jc__progress_finish(jc__progress_line *pl, const jc_progress *p, const char *cache_path, const char *note,
                         bool alarm);
/* Whether the end of a run is told: the summary line (with note appended
 * to its counts) and the lines after it. alarm: the run has something to
 * say, which is told unless the program asked for silence (JC_VERBOSE_OFF,
 * JOBCACHE_VERBOSE=0), terminal or not. */
bool jc__progress_tells(const jc__progress_line *pl, bool alarm);
/* A line of its own ("jobcache: TEXT"), clearing the live line first. */
void jc__progress_note(jc__progress_line *pl, const char *text);
/* Clears the live line and puts SIGWINCH's disposition back; idempotent
 * (a run that fails before its summary calls it too). */
void jc__progress_release(jc__progress_line *pl);
/* "jobcache: N calls, H cached, C computed, F failed in T s (saved S s of
 * compute)" into buf. */
void jc__progress_summary(const jc_progress *p, char *buf, size_t size);
/* text, then " " and path, laid out for a terminal of width columns (0:
 * not a terminal: one line, as it is) into buf, each row ending in "\n":
 * rows of at most width - 1 characters (counted as UTF-8 code points),
 * broken between words, later rows indented under the first's text; path
 * (never broken) shortened from the left to "...", keeping its last
 * components, where the row it ends leaves too little room for it. */
void jc__progress_fit(const char *text, const char *path, size_t width, char *buf, size_t size);

#endif
