/*
 * Helpers shared by the commands (builtin.h): formatting sizes, times and
 * values, loading entries; the messages are in msgs.c.
 */
#define _XOPEN_SOURCE 700 /* wcwidth, and POSIX 2008 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <locale.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <jobcache.h>

#include "builtin.h"
#include "json.h"

/* a + b, held at INT64_MAX or INT64_MIN instead of overflowing: sizes come
 * from the file, which may hold any number. */
int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return a > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

void fmt_size(char *buf, size_t cap, int64_t bytes)
{
    /* IEC units (issue 13): a "K" beside input sizes that are powers of
     * 1024 read as kilobytes to some and kibibytes to others. */
    static const char units[] = "KMGTPE";
    if (bytes < 1024) {
        snprintf(buf, cap, "%lldB", (long long)bytes);
        return;
    }
    double v = (double)bytes;
    int u = -1;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, v < 10 ? "%.1f%ciB" : "%.0f%ciB", v, units[u]);
}

size_t term_columns(void)
{
    struct winsize ws;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    const char *env = getenv("COLUMNS");
    char *end;
    long n = env && *env ? strtol(env, &end, 10) : 0;
    return n > 0 && n < 100000 && !*end ? (size_t)n : 0;
}

void fmt_seconds(char *buf, size_t cap, double s)
{
    if (!(s >= 0))
        snprintf(buf, cap, "-");
    else if (s < 1e-3)
        snprintf(buf, cap, "%.0fus", s * 1e6);
    else if (s < 1)
        snprintf(buf, cap, s < 0.01 ? "%.1fms" : "%.0fms", s * 1e3);
    else if (s < 60)
        snprintf(buf, cap, s < 10 ? "%.2fs" : "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else if (s < 86400)
        snprintf(buf, cap, "%.1fh", s / 3600);
    else
        snprintf(buf, cap, "%.1fd", s / 86400);
}

/* How long ago t was: "5m ago". */
void fmt_ago(char *buf, size_t cap, double t)
{
    double d = difftime(time(NULL), (time_t)t);
    if (t <= 0)
        snprintf(buf, cap, "-");
    else if (d < 1)
        snprintf(buf, cap, "just now");
    else if (d < 60)
        snprintf(buf, cap, "%.0fs ago", d);
    else if (d < 3600)
        snprintf(buf, cap, "%.0fm ago", floor(d / 60));
    else if (d < 86400)
        snprintf(buf, cap, "%.0fh ago", floor(d / 3600));
    else
        snprintf(buf, cap, "%.0fd ago", floor(d / 86400));
}

/* Local date and time of t (seconds since the epoch); "-" for none. */
void fmt_time(char *buf, size_t cap, double t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (t <= 0 || !localtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, cap, "-");
}

/* t (seconds since the epoch) as ISO 8601 in UTC to the microsecond,
 * "2026-12-06T23:30:33.250000Z"; "" for none. (A table's reader parses it
 * as it is: pandas.to_datetime, Python's datetime.fromisoformat from 3.11,
 * spreadsheets.) */
void fmt_time_iso(char *buf, size_t cap, double t)
{
    struct tm tm;
    long long us = t > 0 && t < 1e15 ? llround(t * 1e6) : 0;
    time_t tt = (time_t)(us / 1000000);
    char day[32];
    if (us <= 0 || !gmtime_r(&tt, &tm) || !strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm))
        snprintf(buf, cap, "%s", "");
    else
        snprintf(buf, cap, "%s.%06lldZ", day, us % 1000000);
}

/* The next character of UTF-8 text at *s (advanced past it): its code
 * point, or 0xFFFD for a byte that does not start a well-formed one. */
static wchar_t next_char(const char **s)
{
    const unsigned char *p = (const unsigned char *)*s;
    unsigned n = p[0] < 0x80 ? 0 : p[0] >= 0xf0 ? 3 : p[0] >= 0xe0 ? 2 : p[0] >= 0xc0 ? 1 : 0;
    wchar_t c = n == 0 ? p[0] : p[0] & (0x3f >> n);
    for (unsigned i = 1; i <= n; i++) {
        if ((p[i] & 0xc0) != 0x80) { /* cut short: the lead byte alone */
            *s += 1;
            return 0xFFFD;
        }
        c = (c << 6) | (p[i] & 0x3f);
    }
    *s += 1 + n;
    return p[0] >= 0x80 && p[0] < 0xc0 ? 0xFFFD : c;
}

/* Display columns of character c: wcwidth(3) in a UTF-8 locale (C.UTF-8,
 * whatever the program's), so that a CJK character takes 2 and a combining
 * mark 0; 1 when no UTF-8 locale can be had, or for what wcwidth does not
 * know. */
static size_t char_width(wchar_t c)
{
    static locale_t utf8 = (locale_t)0;
    static bool tried = false;
    if (c < 0x80)
        return 1;
    if (!tried) {
        tried = true;
        utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    }
    if (!utf8)
        return 1;
    locale_t old = uselocale(utf8);
    int w = wcwidth(c);
    uselocale(old);
    return w < 0 ? 1 : (size_t)w;
}

/* Display columns of UTF-8 text (tables line up under CJK text). */
size_t text_width(const char *s)
{
    size_t n = 0;
    while (*s)
        n += char_width(next_char(&s));
    return n;
}

/* Cuts s (in place) to at most width display columns, ending with "...". */
void abbreviate(char *s, size_t width)
{
    if (text_width(s) <= width)
        return;
    size_t n = 0;
    char *p = s;
    while (*p) {
        const char *q = p;
        size_t w = char_width(next_char(&q));
        if (n + w > width - 3)
            break;
        n += w;
        p = (char *)q;
    }
    /* What is cut takes more than 3 columns, so 4 bytes at least: room for
     * "..." and its NUL. */
    memcpy(p, "...", 4);
}

typedef struct text {
    FILE *f;
    char *buf;
    size_t len;
} text;

static bool text_open(text *t)
{
    t->buf = NULL;
    t->len = 0;
    t->f = open_memstream(&t->buf, &t->len);
    return t->f != NULL;
}

/* Closes the stream; the text is the caller's (free it). NULL on failure. */
static char *text_close(text *t)
{
    if (!t->f || fclose(t->f) != 0) {
        free(t->buf);
        return NULL;
    }
    return t->buf;
}

/* A value rendered like JSON, long containers abbreviated to max items. */
static void put_value(FILE *f, const jc_value *v, size_t max)
{
    char *s = jc_value_format(v, max);
    fputs(s ? s : "?", f);
    free(s);
}

/* A value in a few characters, for one line of `ls`: doubles to 6
 * digits, map keys bare, and a container longer than max items (or nested
 * deeper than two) only says what it is ("doubles[100]"), so that the
 * other arguments still fit on the line. */
static void put_brief(FILE *f, const jc_value *v, size_t max, int depth)
{
    jc_type t = jc_value_type(v);
    size_t n = jc_value_len(v);
    double d = 0;
    bool container = t == JC_TYPE_DOUBLES || t == JC_TYPE_INTS || t == JC_TYPE_LIST || t == JC_TYPE_MAP;
    if (container && (n > max || depth > 2)) {
        fprintf(f, "%s[%zu]", jc_type_name(t), n);
    } else if (t == JC_TYPE_DOUBLE && jc_value_get_double(v, &d) == 0) {
        fprintf(f, "%.6g", d);
    } else if (t == JC_TYPE_LIST || t == JC_TYPE_MAP) {
        fputc(t == JC_TYPE_MAP ? '{' : '[', f);
        for (size_t i = 0; i < n; i++) {
            fputs(i ? ", " : "", f);
            if (t == JC_TYPE_MAP)
                fprintf(f, "%s: ", jc_value_key_at(v, i));
            put_brief(f, jc_value_at(v, i), max, depth + 1);
        }
        fputc(t == JC_TYPE_MAP ? '}' : ']', f);
    } else {
        put_value(f, v, max);
    }
}

/* "0.15, 3, gamma=0.1": the arguments of a call, as written in C. */
char *args_text(const jc_value *args, const jc_value *kwargs, char *const *params, size_t nparams,
                size_t max)
{
    text t;
    if (!text_open(&t))
        return NULL;
    size_t n = jc_value_len(args), k = jc_value_len(kwargs);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ", " : "", t.f);
        if (params && i < nparams)
            fprintf(t.f, "%s=", params[i]);
        put_brief(t.f, jc_value_at(args, i), max, 0);
    }
    for (size_t i = 0; i < k; i++) {
        fprintf(t.f, "%s%s=", n + i ? ", " : "", jc_value_key_at(kwargs, i));
        put_brief(t.f, jc_value_at(kwargs, i), max, 0);
    }
    return text_close(&t);
}

/* The result in brief, for one line of `ls`. */
char *result_text(const jc_value *v, size_t max)
{
    text t;
    if (!text_open(&t))
        return NULL;
    put_brief(t.f, v, max, 0);
    return text_close(&t);
}

/* ---- tables ---- */

/* A value as show writes it; "?" when out of memory (free() it). */
char *value_text(const jc_value *v, size_t max)
{
    char *s = jc_value_format(v, max);
    return s ? s : strdup("?");
}

void entry_free(entry *e)
{
    free(e->function);
    free(e->version);
    free(e->error);
    free(e->params);
    jc_value_free(e->args);
    jc_value_free(e->kwargs);
    jc_value_free(e->result);
}

/* Copies info (whose strings a later call may invalidate) and loads the
 * values. Returns false only when out of memory; a value that does not
 * decode leaves e->error set. */
bool entry_load(jc_cache *cache, const jc_entry_info *info, entry *e)
{
    memset(e, 0, sizeof *e);
    e->info = *info;
    e->function = strdup(info->function);
    e->version = strdup(info->version);
    if (!e->function || !e->version)
        return false;
    e->info.function = e->function;
    e->info.version = e->version;
    /* Names are a help, not a need: none when they cannot be read. */
    if (jc_function_params(cache, info->function, info->version, &e->params, &e->nparams) < 0) {
        e->params = NULL;
        e->nparams = 0;
    }
    if (jc_entry_load(cache, info->key, &e->args, &e->kwargs, &e->result))
        return (e->error = strdup(jc_errmsg())) != NULL;
    return true;
}

int64_t entry_size(const jc_entry_info *e)
{
    return sat_add(e->args_size, e->result_size);
}

/* The metadata fields of an entry, as a JSON object; NULL when out of
 * memory. */
json_t *entry_json_fields(const jc_entry_info *e)
{
    json_t *j = json_object();
    bool ok = j && json_put(j, "key", json_text(e->key_hex)) &&
              json_put(j, "function", json_text(e->function)) &&
              json_put(j, "version", json_text(e->version)) &&
              json_put(j, "args_size", json_integer(e->args_size)) &&
              json_put(j, "result_size", json_integer(e->result_size)) &&
              json_put(j, "size", json_integer(entry_size(e))) &&
              json_put(j, "created", json_time(e->created)) &&
              json_put(j, "last_used", json_time(e->last_used)) &&
              json_put(j, "compute_seconds", json_seconds(e->compute_seconds)) &&
              json_put(j, "hits", json_integer(e->hits));
    if (!ok)
        json_decref(j);
    return ok ? j : NULL;
}

/* An entry with its decoded values, as one JSON object (show, export);
 * NULL when out of memory. */
json_t *entry_json(const entry *e)
{
    json_t *j = entry_json_fields(&e->info);
    bool ok = j != NULL;
    if (ok && e->error)
        ok = json_put(j, "args", json_null()) && json_put(j, "kwargs", json_null()) &&
             json_put(j, "result", json_null()) && json_put(j, "error", json_text(e->error));
    else if (ok)
        ok = json_put(j, "args", json_value(e->args)) &&
             json_put(j, "kwargs", json_value(e->kwargs)) &&
             json_put(j, "result", json_value(e->result));
    /* The names of the positional arguments, when recorded: "params":
     * ["beta", "seed"] beside "args": [0.3, 7]. */
    if (ok && e->params) {
        json_t *a = json_array();
        ok = a != NULL;
        for (size_t i = 0; ok && i < e->nparams; i++)
            ok = json_array_append_new(a, json_text(e->params[i])) == 0;
        ok = ok ? json_put(j, "params", a) : (json_decref(a), false);
    }
    if (!ok)
        json_decref(j);
    return ok ? j : NULL;
}

jc_filter filter_of(const opts *o)
{
    jc_filter f = {.function = o->function,
                   .version = o->version,
                   .older_than = o->older_than,
                   .newer_than = o->newer_than,
                   .sort = o->sort,
                   .reverse = (o->given & OPT_REVERSE) != 0,
                   .limit = o->limit};
    return f;
}
