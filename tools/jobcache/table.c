/*
 * The table printer (table.h), for the few tables the command prints
 * (stats' functions, diff, leases, log); ls streams with fixed columns
 * instead (ls.c).
 *
 * Why not libsmartcols (util-linux), which does widths, truncation and JSON
 * (issue 25 asked): weighed against what these tables must do, it would
 * not do them as they are done here:
 * - Width and escaping go by the program's locale (its mbs_safe_width and
 *   safe encoding): run from cron or `env -i` (the C locale), a label of
 *   温度実験 comes out as \xe6\xb8\xa9... and is measured in bytes (try
 *   `LC_ALL=C column -t`, which is libsmartcols). Here
 *   text is shown as UTF-8 and measured with wcwidth(3) in C.UTF-8 whatever
 *   the locale (util.c text_width), and only control characters and bad
 *   UTF-8 are escaped (text_escape).
 * - --json is not the table's cells: it is the values themselves (numbers
 *   as numbers, nested arrays and maps, bytes as base64, NaN as "NaN"),
 *   written with jansson in the documented fields (jobcache(1), JSON);
 *   libsmartcols' JSON is a table of cells, strings unless typed.
 * - ls must print as it reads in constant memory: libsmartcols can (its
 *   "continuous" way: maxout and scols_table_print_range per line) only
 *   with widths fixed before the first line, which is all ls.c does.
 * What would remain for it is this file's 150 lines of justification,
 * against a build dependency (libsmartcols-dev) for every user.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "table.h"
#include "text.h"

bool table_add(table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **c = realloc(t->cells, cap * t->ncols * sizeof *c);
        if (!c)
            return false;
        t->cells = c;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    bool ok = true;
    /* Cells are shown on a terminal: escaped here, once for all tables. */
    for (size_t i = 0; i < t->ncols; i++)
        ok &= (row[i] = text_escape(cells[i] ? cells[i] : "")) != NULL;
    t->nrows++; /* even a partial row, so that table_free frees it */
    return ok;
}

/* The sum of the shown columns' widths and the two spaces between them. */
static size_t total_width(const size_t *width, const bool *shown, size_t ncols)
{
    size_t total = 0, n = 0;
    for (size_t c = 0; c < ncols; c++)
        if (shown[c]) {
            total += width[c];
            n++;
        }
    return total + (n ? 2 * (n - 1) : 0);
}

/* Decides which columns are shown and how wide, to fit max (0: no limit). */
static void fit_columns(const table *t, size_t max, size_t *width, bool *shown)
{
    enum { MIN_SHRUNK = 8 };
    if (!max || !t->fit)
        return;
    for (size_t c = t->ncols; c-- > 0 && total_width(width, shown, t->ncols) > max;)
        if (t->fit[c] == 'd')
            shown[c] = false;
    while (total_width(width, shown, t->ncols) > max) {
        size_t widest = t->ncols;
        for (size_t c = 0; c < t->ncols; c++)
            if (shown[c] && t->fit[c] == 's' && width[c] > MIN_SHRUNK &&
                (widest == t->ncols || width[c] > width[widest]))
                widest = c;
        if (widest == t->ncols)
            break; /* nothing left to narrow: the lines will be longer */
        width[widest]--;
    }
}

void table_print_width(const table *t, FILE *f, size_t max)
{
    size_t width[TABLE_MAX_COLS] = {0};
    bool shown[TABLE_MAX_COLS];
    size_t ncols = t->ncols < TABLE_MAX_COLS ? t->ncols : TABLE_MAX_COLS;
    for (size_t c = 0; c < ncols; c++)
        shown[c] = true;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < ncols; c++) {
            size_t w = text_width(t->cells[r * t->ncols + c]);
            width[c] = w > width[c] ? w : width[c];
        }
    fit_columns(t, max, width, shown);
    size_t last = 0;
    for (size_t c = 0; c < ncols; c++)
        if (shown[c])
            last = c;
    for (size_t r = 0; r < t->nrows; r++) {
        bool first = true;
        for (size_t c = 0; c < ncols; c++) {
            if (!shown[c])
                continue;
            char *s = strdup(t->cells[r * t->ncols + c]);
            if (!s)
                s = strdup("?");
            if (s && text_width(s) > width[c])
                abbreviate(s, width[c]);
            const char *cell = s ? s : "";
            int pad = (int)(width[c] - text_width(cell));
            fputs(first ? "" : "  ", f);
            if (t->align[c] == 'r')
                fprintf(f, "%*s%s", pad, "", cell);
            else
                fprintf(f, "%s%*s", cell, c == last ? 0 : pad, "");
            first = false;
            free(s);
        }
        fputc('\n', f);
    }
}

void table_print(const table *t, FILE *f)
{
    table_print_width(t, f, term_columns());
}

void table_free(table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
}
