/*
 * progress: what a run tells a person watching it.
 *
 * Verbose AUTO prints when stderr is a terminal; ON always prints the summary
 * line, but the live line is drawn only on a terminal, so a log file gets one
 * line per run and no carriage-return noise.
 *
 * The live line fits the terminal (issue 13): its width is read with
 * TIOCGWINSZ when a run starts and again after each SIGWINCH, and the line
 * is composed to at most width - 1 characters (writing the last column
 * makes some terminals wrap), so that a redraw ("\r", the line, "\033[K")
 * stays on one row. The handler is the program's business: the library
 * installs one only when SIGWINCH has its default disposition, and puts
 * the default back when the run ends. A program with its own handler
 * keeps it; the line then keeps the width it had when the run started.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "jc_internal.h"
#include "run/progress.h"

/* How many SIGWINCHs the handler saw; lines compare it with theirs. */
static volatile sig_atomic_t winch_count;
/* The disposition the handler replaced; guarded by winch_owned. */
static struct sigaction winch_old;
static pthread_mutex_t winch_lock = PTHREAD_MUTEX_INITIALIZER;
static bool winch_owned;

static void on_winch(int sig)
{
    (void)sig;
    winch_count++;
}

static size_t terminal_columns(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* Installs the handler when nobody handles SIGWINCH (one run at a time
 * owns it: a second concurrent run finds it installed and reads the
 * count). */
static void winch_install(jc__progress_line *pl)
{
    struct sigaction cur;
    pthread_mutex_lock(&winch_lock);
    if (!winch_owned && sigaction(SIGWINCH, NULL, &cur) == 0 && cur.sa_handler == SIG_DFL &&
        !(cur.sa_flags & SA_SIGINFO)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_winch;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        if (sigaction(SIGWINCH, &sa, &winch_old) == 0)
            winch_owned = pl->winch = true;
    }
    pthread_mutex_unlock(&winch_lock);
}

void jc__progress_init(jc__progress_line *pl, jc_verbose v)
{
    bool tty = isatty(STDERR_FILENO) == 1;
    memset(pl, 0, sizeof *pl);
    pl->summary = v == JC_VERBOSE_ON || v == JC_VERBOSE_DETAIL || (v == JC_VERBOSE_AUTO && tty);
    pl->when_told = v == JC_VERBOSE_AUTO && !tty;
    pl->detail = v == JC_VERBOSE_DETAIL;
    pl->live = pl->summary && tty;
    if (!pl->live)
        return;
    winch_install(pl);
    pl->winch_seen = (unsigned)winch_count;
    pl->columns = terminal_columns();
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

enum { NPARTS = 6, BAR_MIN = 10, BAR_MAX = 60 };

/* Composes the line into buf (at most width - 1 characters): the parts in
 * the order shown, each kept only if it fits, in the order of priority
 * (counts first, then failures, ETA, rate, workers, hits), then the bar
 * in what is left. */
static void compose(const jc__progress_line *pl, const jc_progress *p, char *buf, size_t cap)
{
    size_t fresh = p->computed + p->failed; /* calls that ran in this run */
    double rate = p->elapsed > 0 ? (double)fresh / p->elapsed : 0;
    size_t left = p->total - p->done;
    char eta[32], parts[NPARTS][64];
    seconds_text(rate > 0 ? (double)left / rate : -1, eta, sizeof eta);
    /* In the order of priority. */
    snprintf(parts[0], sizeof parts[0], "%zu/%zu", p->done, p->total);
    parts[1][0] = '\0'; /* (a part left empty is not shown) */
    if (p->failed)
        snprintf(parts[1], sizeof parts[1], "%zu failed", p->failed);
    snprintf(parts[2], sizeof parts[2], "ETA %s", left ? eta : "0s");
    snprintf(parts[3], sizeof parts[3], "%.1f calls/s", rate);
    if (pl->workers > 0)
        snprintf(parts[4], sizeof parts[4], "%zu/%d busy", p->running, pl->workers);
    else
        snprintf(parts[4], sizeof parts[4], "%zu busy", p->running);
    parts[5][0] = '\0';
    if (p->cached)
        snprintf(parts[5], sizeof parts[5], "%zu cached", p->cached);
    static const int shown_order[NPARTS] = {0, 3, 2, 4, 1, 5}; /* counts, rate, ETA, busy, failed, cached */
    static const char prefix[] = "jobcache ";
    size_t width = pl->columns > 1 ? pl->columns - 1 : 0, used = sizeof prefix - 1;
    bool keep[NPARTS] = {false};
    for (int i = 0; i < NPARTS; i++) {
        size_t n = strlen(parts[i]);
        if (n && used + n + 2 + (i ? BAR_MIN + 3 : 0) <= width) {
            keep[i] = true;
            used += n + 2;
        }
    }
    /* The bar: "[=====>    ] " in what is left. */
    size_t bar = width > used + 3 ? width - used - 3 : 0;
    bar = bar > BAR_MAX ? BAR_MAX : bar;
    size_t at = (size_t)snprintf(buf, cap, "%s", width >= sizeof prefix ? prefix : "");
    if (bar >= BAR_MIN && at + bar + 3 < cap) {
        size_t fill = p->total ? bar * p->done / p->total : bar;
        buf[at++] = '[';
        for (size_t i = 0; i < bar; i++)
            buf[at++] = i < fill ? '=' : i == fill ? '>' : ' ';
        buf[at++] = ']';
        buf[at++] = ' ';
        buf[at] = '\0';
    }
    for (int k = 0; k < NPARTS && at < cap; k++) {
        int i = shown_order[k];
        if (keep[i])
            at += (size_t)snprintf(buf + at, cap - at, "%s%s", k && at > sizeof prefix - 1 ? "  " : "", parts[i]);
    }
    if (width < cap)
        buf[width] = '\0'; /* a terminal narrower than the prefix and counts */
}

void jc__progress_update(jc__progress_line *pl, const jc_progress *p, bool force)
{
    if (!pl->live)
        return;
    double now = jc__monotonic();
    if (!force && now - pl->last_draw < 0.1)
        return;
    pl->last_draw = now;
    unsigned seen = (unsigned)winch_count;
    size_t rows_up = 0;
    if (seen != pl->winch_seen) {
        pl->winch_seen = seen;
        pl->columns = terminal_columns();
        /* A terminal that rewraps its lines (tmux, VTE, kitty...) has made
         * the line drawn at the old width span several rows of the new one:
         * clear them all, from the first. */
        if (pl->drawn && pl->columns && pl->drawn_len >= pl->columns)
            rows_up = pl->drawn_len / pl->columns;
    }
    jc__locale_saved loc = jc__c_numbers_begin();
    char line[512];
    compose(pl, p, line, sizeof line);
    jc__c_numbers_end(loc);
    if (rows_up)
        fprintf(stderr, "\r\033[%zuA\033[J", rows_up);
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    pl->drawn = true;
    pl->drawn_len = strlen(line);
}

void jc__progress_summary(const jc_progress *p, char *buf, size_t size)
{
    /* "0.537 s" whatever locale the program chose: the line is for logs. */
    jc__locale_saved loc = jc__c_numbers_begin();
    char skipped[48] = "", damaged[80] = "", expired[40] = "", retried[40] = "";
    if (p->skipped)
        snprintf(skipped, sizeof skipped, ", %zu skipped", p->skipped);
    if (p->expired)
        snprintf(expired, sizeof expired, " (%zu expired)", p->expired);
    if (p->retried)
        snprintf(retried, sizeof retried, ", %zu retried", p->retried);
    if (p->damaged)
        snprintf(damaged, sizeof damaged, "; %zu damaged entr%s recomputed", p->damaged,
                 p->damaged == 1 ? "y" : "ies");
    snprintf(buf, size,
             "jobcache: %zu calls, %zu cached, %zu computed%s, %zu failed%s%s in %.3f s (saved %.3f s of compute)%s",
             p->total, p->cached, p->computed, expired, p->failed, skipped, retried, p->elapsed, p->saved, damaged);
    jc__c_numbers_end(loc);
}

/* Characters (UTF-8 code points) of the first n bytes of s. */
static size_t chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n && s[i]; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

/* path, or "..." and its end, in at most room characters: from the
 * leftmost "/" that leaves a suffix that fits, else its last characters. */
static void fit_path(const char *path, size_t room, char *buf, size_t size)
{
    size_t len = strlen(path);
    if (chars(path, len) <= room || room <= 3) {
        snprintf(buf, size, "%s", path);
        return;
    }
    for (const char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/'))
        if (chars(s, len) + 3 <= room) {
            snprintf(buf, size, "...%s", s);
            return;
        }
    const char *s = path + len;
    for (size_t c = 0; s > path && c < room - 3; c += ((unsigned char)*s & 0xc0) != 0x80)
        s--;
    while (s < path + len && ((unsigned char)*s & 0xc0) == 0x80)
        s++;
    snprintf(buf, size, "...%s", s);
}

void jc__progress_fit(const char *text, const char *path, size_t width, char *buf, size_t size)
{
    static const char indent[] = "          "; /* under the text after "jobcache: " */
    size_t at = 0, col = 0, w = width > 1 ? width - 1 : 0;
    buf[0] = '\0';
#define PUT(...) (at += (size_t)snprintf(buf + at, at < size ? size - at : 0, __VA_ARGS__), at = at < size ? at : size)
    if (w < 24) { /* not a terminal (or too narrow to lay out): as it is */
        PUT("%s %s\n", text, path);
        return;
    }
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, " "), c = chars(p, n);
        if (col > 0 && col + 1 + c > w) {
            PUT("\n%s", indent);
            col = sizeof indent - 1;
        } else if (col > 0) {
            PUT(" ");
            col++;
        }
        PUT("%.*s", (int)n, p);
        col += c;
        p += n;
        p += strspn(p, " ");
    }
    /* The path on this row if all of it, or its end from a "/", fits in
     * what is left (at least 20 characters), else on a row of its own. */
    char fitted[4096];
    size_t room = col + 1 < w ? w - col - 1 : 0;
    fit_path(path, room, fitted, sizeof fitted);
    if (chars(fitted, strlen(fitted)) <= room && (room >= 20 || strcmp(fitted, path) == 0)) {
        PUT(" %s\n", fitted);
    } else {
        fit_path(path, w - (sizeof indent - 1), fitted, sizeof fitted);
        PUT("\n%s%s\n", indent, fitted);
    }
#undef PUT
}

void jc__progress_note(jc__progress_line *pl, const char *text)
{
    fprintf(stderr, "%sjobcache: %s\n", pl->drawn ? "\r\033[K" : "", text);
    fflush(stderr);
    pl->drawn = false;
}

void jc__progress_release(jc__progress_line *pl)
{
    if (pl->drawn) {
        fputs("\r\033[K", stderr); /* cleared, so that the summary or an error starts a clean row */
        fflush(stderr);
        pl->drawn = false;
    }
    if (pl->winch) {
        pthread_mutex_lock(&winch_lock);
        sigaction(SIGWINCH, &winch_old, NULL);
        winch_owned = false;
        pthread_mutex_unlock(&winch_lock);
        pl->winch = false;
    }
}

bool jc__progress_tells(const jc__progress_line *pl, bool alarm)
{
    return pl->summary || (alarm && pl->when_told);
}

void jc__progress_finish(jc__progress_line *pl, const jc_progress *p, const char *cache_path, const char *note,
                         bool alarm)
{
    jc__progress_release(pl);
    if (!jc__progress_tells(pl, alarm))
        return;
    char line[512];
    jc__progress_summary(p, line, sizeof line);
    if (note && *note)
        snprintf(line + strlen(line), sizeof line - strlen(line), "%s", note);
    char where[96] = "";
    if (pl->backend && strcmp(pl->backend, "in-process") == 0)
        snprintf(where, sizeof where, ", %s", pl->backend);
    else if (pl->backend && pl->ranks > 0)
        snprintf(where, sizeof where, ", %s: %d ranks, %d computing", pl->backend, pl->ranks, pl->workers);
    else if (pl->backend && pl->workers > 1)
        snprintf(where, sizeof where, ", %s: %d workers", pl->backend, pl->workers);
    else if (pl->backend)
        snprintf(where, sizeof where, ", %s", pl->backend);
    /* The file, so that a run from another directory (a new, empty cache)
     * is noticed. On a terminal, rows that fit its width (issue 25: at 120
     * columns the line wrapped in the middle of the path). */
    char text[640], out[8192];
    snprintf(text, sizeof text, "%s%s; cache", line, where);
    jc__progress_fit(text, cache_path ? cache_path : "disabled", pl->live ? terminal_columns() : 0, out,
                     sizeof out);
    fputs(out, stderr);
    fflush(stderr);
}
