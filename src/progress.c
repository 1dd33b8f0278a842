/*
 * progress: what a run tells a person watching it.
 *
 * Verbose AUTO prints when stderr is a terminal; ON always prints the summary
 * line, but the live line is drawn only on a terminal, so a log file gets one
 * line per run and no carriage-return noise.
 */
#include <stdio.h>
#include <unistd.h>

#include "jc_internal.h"
#include "progress.h"

void jc__progress_init(jc__progress_line *pl, jc_verbose v)
{
    bool tty = isatty(STDERR_FILENO) == 1;
    pl->summary = v == JC_VERBOSE_ON || v == JC_VERBOSE_DETAIL || (v == JC_VERBOSE_AUTO && tty);
    pl->detail = v == JC_VERBOSE_DETAIL;
    pl->live = pl->summary && tty;
    pl->drawn = false;
    pl->last_draw = 0;
}

static void seconds_text(double s, char *buf, size_t size)
{
    if (s < 0 || s != s)
        snprintf(buf, size, "?");
    else if (s < 100)
        snprintf(buf, size, "%.1fs", s);
    else if (s < 6000)
        snprintf(buf, size, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, size, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

void jc__progress_update(jc__progress_line *pl, const jc_progress *p, bool force)
{
    if (!pl->live)
        return;
    double now = jc__monotonic();
    if (!force && now - pl->last_draw < 0.1)
        return;
    pl->last_draw = now;
    locale_t c = jc__c_locale();
    locale_t old = c ? uselocale(c) : (locale_t)0;
    size_t fresh = p->computed + p->failed; /* calls that ran in this run */
    double rate = p->elapsed > 0 ? (double)fresh / p->elapsed : 0;
    size_t left = p->total - p->done;
    char eta[32];
    seconds_text(rate > 0 ? (double)left / rate : -1, eta, sizeof eta);
    fprintf(stderr, "\r\033[Kjobcache: %zu/%zu done, %zu cached, %zu computed, %zu failed, %zu running, "
            "%.1f calls/s, ETA %s", p->done, p->total, p->cached, p->computed, p->failed, p->running, rate,
            left ? eta : "0s");
    fflush(stderr);
    if (c)
        uselocale(old);
    pl->drawn = true;
}

void jc__progress_summary(const jc_progress *p, char *buf, size_t size)
{
    /* "0.537 s" whatever locale the program chose: the line is for logs. */
    locale_t c = jc__c_locale();
    locale_t old = c ? uselocale(c) : (locale_t)0;
    char skipped[48] = "", damaged[80] = "";
    if (p->skipped)
        snprintf(skipped, sizeof skipped, ", %zu skipped", p->skipped);
    if (p->damaged)
        snprintf(damaged, sizeof damaged, "; %zu damaged entr%s recomputed", p->damaged,
                 p->damaged == 1 ? "y" : "ies");
    snprintf(buf, size, "jobcache: %zu calls, %zu cached, %zu computed, %zu failed%s in %.3f s (saved %.3f s of compute)%s",
             p->total, p->cached, p->computed, p->failed, skipped, p->elapsed, p->saved, damaged);
    if (c)
        uselocale(old);
}

void jc__progress_note(jc__progress_line *pl, const char *text)
{
    fprintf(stderr, "%sjobcache: %s\n", pl->drawn ? "\r\033[K" : "", text);
    fflush(stderr);
    pl->drawn = false;
}

void jc__progress_finish(jc__progress_line *pl, const jc_progress *p, const char *cache_path)
{
    if (!pl->summary)
        return;
    char line[256];
    jc__progress_summary(p, line, sizeof line);
    /* The file, so that a run from another directory (a new, empty cache)
     * is noticed. */
    fprintf(stderr, "%s%s; cache %s\n", pl->drawn ? "\r\033[K" : "", line,
            cache_path ? cache_path : "disabled");
    fflush(stderr);
    pl->drawn = false;
}
