/*
 * jobcache ls: the entries, one a line, printed as they are read.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobcache.h>

#include "builtin.h"
#include "json.h"
#include "msgs.h"
#include "table.h"
#include "text.h"


/* `ls` prints each entry as it reads it, in columns of fixed widths, so that
 * the first line comes at once and memory does not grow with the number of
 * entries (sizing columns to their contents would read every entry first).
 * The widths are chosen once, before the first line, from the terminal's
 * width (term_columns): the arguments and results take what the other
 * columns leave, and on a narrow terminal the key is cut to 8 digits and
 * HITS, TIME and LAST USED are left out, in this order, until ARGS and RESULT
 * have room. With no width (a pipe, a file) the layout is fixed and a
 * function or version name longer than its column pushes the rest of its
 * line to the right. */
enum { LS_COLS = 9, LS_MIN_VALUE = 16 };
enum { COL_KEY, COL_FUNCTION, COL_VERSION, COL_ARGS, COL_RESULT, COL_SIZE, COL_TIME, COL_HITS, COL_USED };

typedef struct ls_layout {
    size_t width[LS_COLS];
    bool shown[LS_COLS];
    bool fitted; /* cut function and version names to their columns */
} ls_layout;

static size_t layout_fixed(const ls_layout *l)
{
    size_t total = 0, n = 0;
    for (int c = 0; c < LS_COLS; c++)
        if (l->shown[c]) {
            total += c == COL_ARGS || c == COL_RESULT ? 0 : l->width[c];
            n++;
        }
    return total + 2 * (n - 1);
}

static ls_layout ls_layout_for(size_t columns)
{
    ls_layout l = {.width = {12, 14, 7, 36, 36, 7, 7, 5, 9}};
    for (int c = 0; c < LS_COLS; c++)
        l.shown[c] = true;
    if (!columns)
        return l;
    l.fitted = true;
    if (columns < 120)
        l.width[COL_KEY] = 8;
    static const int drop[] = {COL_HITS, COL_TIME, COL_USED};
    for (size_t i = 0; i < 3 && layout_fixed(&l) + 2 * LS_MIN_VALUE > columns; i++)
        l.shown[drop[i]] = false;
    size_t fixed = layout_fixed(&l);
    size_t room = columns > fixed + 2 * LS_MIN_VALUE ? columns - fixed : 2 * LS_MIN_VALUE;
    l.width[COL_ARGS] = room * 55 / 100;
    l.width[COL_RESULT] = room - l.width[COL_ARGS];
    return l;
}

static void ls_cell(const char *raw, size_t width, bool right, bool cut)
{
    /* Every cell escaped (a function name or version from the file may
     * hold escape sequences); escaping escaped text changes nothing. */
    char *safe = text_escape(raw);
    if (safe && cut && width >= 4)
        abbreviate(safe, width);
    const char *s = safe ? safe : "?";
    size_t w = text_width(s);
    int pad = (int)(w < width ? width - w : 0);
    if (right)
        printf("%*s%s", pad, "", s);
    else
        printf("%s%*s", s, pad, "");
    free(safe);
}

static void ls_line(const ls_layout *l, const char *const cells[LS_COLS])
{
    int last = LS_COLS - 1;
    while (!l->shown[last])
        last--;
    bool first = true;
    for (int c = 0; c <= last; c++) {
        if (!l->shown[c])
            continue;
        fputs(first ? "" : "  ", stdout);
        first = false;
        bool right = c >= COL_SIZE && c <= COL_HITS;
        ls_cell(cells[c], c == last && !right ? 0 : l->width[c], right,
                l->fitted && (c == COL_FUNCTION || c == COL_VERSION));
    }
    putchar('\n');
}

/* Prints one entry's line. */
static bool ls_row(jc_cache *cache, const jc_entry_info *info, const ls_layout *l)
{
    entry e;
    char key[13], size[16], tm[16], hits[24], used[32];
    char *args = NULL, *result = NULL;
    bool ok = entry_load(cache, info, &e);
    if (ok && !e.error) {
        /* Escaped before they are cut to width, so that the width is what
         * the terminal shows (table_add's escaping then changes nothing). */
        char *a = args_text(e.args, e.kwargs, e.params, e.nparams, LS_ITEMS), *r = result_text(e.result, LS_ITEMS);
        args = a ? text_escape(a) : NULL;
        result = r ? text_escape(r) : NULL;
        free(a);
        free(r);
        ok = args && result;
    } else if (ok) {
        /* A result that does not decode is shown as such in the result
         * column, beside the arguments when those decode. */
        jc_value *pa = NULL, *ka = NULL;
        if (jc_entry_load(cache, info->key, &pa, &ka, NULL) == 0) {
            char *a = args_text(pa, ka, e.params, e.nparams, LS_ITEMS);
            args = a ? text_escape(a) : NULL;
            free(a);
        }
        jc_value_free(pa);
        jc_value_free(ka);
    }
    if (ok) {
        if (args)
            abbreviate(args, l->width[COL_ARGS]);
        if (!e.error) {
            abbreviate(result, l->width[COL_RESULT]);
        }
        snprintf(key, sizeof key, "%.*s", (int)l->width[COL_KEY], info->key_hex);
        fmt_size(size, sizeof size, entry_size(info));
        fmt_seconds(tm, sizeof tm, info->compute_seconds);
        snprintf(hits, sizeof hits, "%lld", (long long)info->hits);
        fmt_ago(used, sizeof used, info->last_used);
        ls_line(l, (const char *const[]){key, e.function, e.version, args ? args : "?",
                                      e.error ? "<does not decode>" : result, size, tm, hits, used});
    }
    free(args);
    free(result);
    entry_free(&e);
    return ok;
}

static int cmd_ls(jc_cache *cache, const opts *o)
{
    jc_filter f = filter_of(o);
    jc_entry_info info;
    bool json = o->given & OPT_JSON, ok = true;
    size_t n = 0;
    jc_entries *it = jc_entries_query(cache, &f);
    if (!it)
        return failed("ls");
    ls_layout l = ls_layout_for(json ? 0 : term_columns());
    int rc;
    while (ok && (rc = jc_entries_next(it, &info)) == 1) {
        if (json) {
            /* Streamed, an entry at a time: the framing is written here,
             * each object by the JSON writer. */
            fputs(n ? ",\n  " : "[\n  ", stdout);
            ok = json_out(stdout, entry_json_fields(&info), true) == 0;
        } else {
            if (n == 0)
                ls_line(&l, (const char *const[]){"KEY", "FUNCTION", "VERSION", "ARGS", "RESULT", "SIZE", "TIME",
                                              "HITS", "LAST USED"});
            ok = ls_row(cache, &info, &l);
        }
        n++;
    }
    if (json)
        printf("%s]\n", n ? "\n" : "[");
    jc_entries_free(it);
    if (!ok)
        return out_of_memory("ls");
    return rc < 0 ? failed("ls") : EXIT_OK;
}


const command builtin_ls = {
    "ls", cmd_ls,
    OPT_FILE | OPT_FUNCTION | OPT_VERSION | OPT_OLDER | OPT_NEWER | OPT_SORT | OPT_REVERSE | OPT_LIMIT | OPT_JSON,
    0, 0, true, false, MODE_READ, NULL,
    "ls [FILE] [--function F] [--version V] [--older-than AGE] [--sort KEY] ...",
    "List entries, one a line: key prefix, function, version, arguments and result\n"
    "(abbreviated), size, compute time, hits and when last used. The columns fit the\n"
    "terminal's width (or $COLUMNS); entries are printed as they are read."};
