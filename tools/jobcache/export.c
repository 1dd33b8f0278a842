/*
 * jobcache export: the entries as JSON Lines, or as a table (CSV, TSV) of
 * one function's entries: one row per entry, one column per argument and
 * per field of a map result.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <csv.h>
#include <jobcache.h>

#include "builtin.h"
#include "json.h"
#include "msgs.h"
#include "table.h"
#include "text.h"

static int export_jsonl(jc_cache *cache, const opts *o)
{
    jc_filter f = {.function = o->function, .version = o->version};
    jc_entry_info info;
    bool ok = true, bad = false;
    int rc = 0;
    jc_entries *it = jc_entries_query(cache, &f);
    if (!it)
        return failed("export");
    while (ok && (rc = jc_entries_next(it, &info)) == 1) {
        entry e;
        ok = entry_load(cache, &info, &e);
        if (ok && (ok = json_out(stdout, entry_json(&e), true) == 0)) {
            putchar('\n');
            bad |= e.error != NULL;
        }
        entry_free(&e);
    }
    jc_entries_free(it);
    if (!ok)
        return out_of_memory("export");
    if (rc < 0)
        return failed("export");
    if (bad)
        fprintf(stderr, "jobcache export: some entries do not decode (their \"error\" says why); "
                        "see 'jobcache verify'\n");
    return bad ? EXIT_PROBLEMS : EXIT_OK;
}

/* ---- tables ---- */

/* The columns of a table, in the order first met; fixed ones first. */
typedef struct columns {
    char **name;
    size_t n, cap;
} columns;

static size_t col_find(const columns *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->name[i], name) == 0)
            return i;
    return SIZE_MAX;
}

static bool col_add(columns *c, const char *name)
{
    if (col_find(c, name) != SIZE_MAX)
        return true;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? 2 * c->cap : 16;
        char **t = realloc(c->name, ncap * sizeof *t);
        if (!t)
            return false;
        c->name = t;
        c->cap = ncap;
    }
    return (c->name[c->n] = strdup(name)) != NULL && ++c->n;
}

static void col_free(columns *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->name[i]);
    free(c->name);
}

/* The name of positional argument i of e: its parameter's, else arg<i>. */
static void arg_name(const entry *e, size_t i, char *buf, size_t cap)
{
    if (e->params && i < e->nparams)
        snprintf(buf, cap, "%s", e->params[i]);
    else
        snprintf(buf, cap, "arg%zu", i);
}

/* Whether name is the name of one of e's arguments. */
static bool is_arg_name(const entry *e, const char *name)
{
    char buf[64];
    for (size_t i = 0; i < jc_value_len(e->args); i++) {
        arg_name(e, i, buf, sizeof buf);
        if (strcmp(buf, name) == 0)
            return true;
    }
    for (size_t i = 0; i < jc_value_len(e->kwargs); i++)
        if (strcmp(jc_value_key_at(e->kwargs, i), name) == 0)
            return true;
    return false;
}

/* The column of result field k of e: the field's name, or "result.<name>"
 * when an argument has that name (as the Python reader's frame does). */
static char *field_column(const entry *e, const char *k)
{
    const char *fixed[] = {"key", "version", "created", "created_utc", "compute_seconds", "result"};
    bool clash = is_arg_name(e, k);
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        clash |= strcmp(k, fixed[i]) == 0;
    size_t n = strlen(k) + 8;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s", clash ? "result." : "", k);
    return s;
}

/* Calls fn(ctx, column, value) for every argument and result cell of e. */
static bool entry_cells(const entry *e, bool (*fn)(void *ctx, const char *col, const jc_value *v), void *ctx)
{
    char buf[64];
    for (size_t i = 0; i < jc_value_len(e->args); i++) {
        arg_name(e, i, buf, sizeof buf);
        if (!fn(ctx, buf, jc_value_at(e->args, i)))
            return false;
    }
    for (size_t i = 0; i < jc_value_len(e->kwargs); i++)
        if (!fn(ctx, jc_value_key_at(e->kwargs, i), jc_value_at(e->kwargs, i)))
            return false;
    if (jc_value_type(e->result) != JC_TYPE_MAP)
        return fn(ctx, "result", e->result);
    for (size_t i = 0; i < jc_value_len(e->result); i++) {
        char *col = field_column(e, jc_value_key_at(e->result, i));
        bool ok = col && fn(ctx, col, jc_value_at(e->result, i));
        free(col);
        if (!ok)
            return false;
    }
    return true;
}

static bool add_column(void *ctx, const char *col, const jc_value *v)
{
    (void)v;
    return col_add(ctx, col);
}

/* The text of a cell: scalars as text (a double in the fewest digits that
 * read back exactly; nan, inf, -inf), null as nothing, anything else as
 * JSON. malloc'd, NULL when out of memory. */
static char *cell_text(const jc_value *v)
{
    char buf[64];
    bool b;
    int64_t i;
    double d;
    const char *s;
    switch (jc_value_type(v)) {
    case JC_TYPE_NULL:
        return strdup("");
    case JC_TYPE_BOOL:
        jc_value_get_bool(v, &b);
        return strdup(b ? "true" : "false");
    case JC_TYPE_INT:
        jc_value_get_int(v, &i);
        snprintf(buf, sizeof buf, "%lld", (long long)i);
        return strdup(buf);
    case JC_TYPE_DOUBLE:
        jc_value_get_double(v, &d);
        if (isnan(d))
            return strdup("nan");
        if (isinf(d))
            return strdup(d > 0 ? "inf" : "-inf");
        for (int p = 1; p <= 17; p++) {
            snprintf(buf, sizeof buf, "%.*g", p, d);
            if (strtod(buf, NULL) == d)
                break;
        }
        /* A whole double keeps a point, so that it reads back as a double. */
        if (!strpbrk(buf, ".eEn"))
            strcat(buf, ".0");
        return strdup(buf);
    case JC_TYPE_STR:
        jc_value_get_str(v, &s, NULL);
        return strdup(s);
    default: {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (!f)
            return NULL;
        int rc = json_out(f, json_value(v), true);
        if (fclose(f) != 0 || rc != 0) {
            free(out);
            return NULL;
        }
        return out;
    }
    }
}

typedef struct table_out {
    const columns *cols;
    char **cells; /* one per column, of the current row */
    char delim;
} table_out;

static bool put_cell(void *ctx, const char *col, const jc_value *v)
{
    table_out *t = ctx;
    size_t i = col_find(t->cols, col);
    if (i == SIZE_MAX)
        return true; /* not met in the first pass: the file changed meanwhile */
    free(t->cells[i]);
    return (t->cells[i] = cell_text(v)) != NULL;
}

/* One field: quoted (RFC 4180, by libcsv) when it holds the delimiter, a
 * quote or a line break, else as it is. */
static void write_field(FILE *f, const char *s, char delim)
{
    size_t n = strlen(s);
    if (strchr(s, delim) || strpbrk(s, "\"\r\n"))
        csv_fwrite(f, s, n);
    else
        fwrite(s, 1, n, f);
}

static void write_row(FILE *f, char *const *cells, size_t n, char delim)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(delim, f);
        write_field(f, cells[i] ? cells[i] : "", delim);
    }
    fputs(delim == ',' ? "\r\n" : "\n", f);
}

/* The first pass of a table: its columns (key, version, the arguments and
 * the result's fields, created, created_utc, compute_seconds), and whether the entries
 * are of one function. Returns EXIT_OK, or the exit status with the
 * message printed. */
static int table_columns(jc_cache *cache, const jc_filter *f, const char *what, columns *cols)
{
    bool ok = col_add(cols, "key") && col_add(cols, "version");
    char *function = NULL, *other = NULL;
    jc_entry_info info;
    int rc = 0;
    jc_entries *it = jc_entries_query(cache, f);
    if (!it)
        return failed("export");
    while (ok && !other && (rc = jc_entries_next(it, &info)) == 1) {
        if (!function)
            ok = (function = strdup(info.function)) != NULL;
        else if (strcmp(function, info.function) != 0)
            ok = (other = strdup(info.function)) != NULL;
        entry e = {0};
        if (ok && !other && (ok = entry_load(cache, &info, &e)) && !e.error)
            ok = entry_cells(&e, add_column, cols);
        entry_free(&e);
    }
    jc_entries_free(it);
    ok = ok && col_add(cols, "created") && col_add(cols, "created_utc") &&
         col_add(cols, "compute_seconds");
    if (other)
        fprintf(stderr,
                "jobcache export: the cache holds entries of several functions (\"%s\", \"%s\", ...), "
                "whose arguments and results differ: a %s table has one set of columns; export one "
                "function with --function F, or all of them with --format jsonl\n",
                function, other, what);
    bool several = other != NULL;
    free(function);
    free(other);
    if (!ok || rc < 0 || several)
        return several ? EXIT_USAGE : !ok ? out_of_memory("export") : failed("export");
    return EXIT_OK;
}

/* Fills cells with one entry's row; false when out of memory. */
static bool row_cells(const jc_entry_info *info, const entry *e, table_out *t)
{
    const columns *cols = t->cols;
    char **cells = t->cells;
    char buf[64];
    for (size_t i = 0; i < cols->n; i++) {
        free(cells[i]);
        cells[i] = NULL;
    }
    bool ok = (cells[0] = strdup(info->key_hex)) && (cells[1] = strdup(info->version)) &&
              entry_cells(e, put_cell, t);
    snprintf(buf, sizeof buf, "%.17g", info->created);
    ok = ok && (cells[cols->n - 3] = strdup(buf));
    fmt_time_iso(buf, sizeof buf, info->created);
    ok = ok && (cells[cols->n - 2] = strdup(buf));
    snprintf(buf, sizeof buf, "%.17g", info->compute_seconds);
    return ok && (cells[cols->n - 1] = strdup(buf));
}

static int export_table(jc_cache *cache, const opts *o, char delim)
{
    const char *what = delim == ',' ? "csv" : "tsv";
    jc_filter f = {.function = o->function, .version = o->version};
    columns cols = {0};
    int status = table_columns(cache, &f, what, &cols);
    if (status != EXIT_OK) {
        col_free(&cols);
        return status;
    }
    /* Second pass: the rows. */
    char **cells = calloc(cols.n, sizeof *cells);
    jc_entries *it = cells ? jc_entries_query(cache, &f) : NULL;
    if (!it) {
        free(cells);
        col_free(&cols);
        return cells ? failed("export") : out_of_memory("export");
    }
    write_row(stdout, cols.name, cols.n, delim);
    table_out t = {&cols, cells, delim};
    bool ok = true, bad = false;
    jc_entry_info info;
    int rc = 0;
    while (ok && (rc = jc_entries_next(it, &info)) == 1) {
        entry e;
        ok = entry_load(cache, &info, &e);
        if (ok && e.error)
            bad = true;
        else if (ok && (ok = row_cells(&info, &e, &t)))
            write_row(stdout, cells, cols.n, delim);
        entry_free(&e);
    }
    jc_entries_free(it);
    for (size_t i = 0; i < cols.n; i++)
        free(cells[i]);
    free(cells);
    col_free(&cols);
    if (!ok)
        return out_of_memory("export");
    if (rc < 0)
        return failed("export");
    if (bad)
        fprintf(stderr, "jobcache export: some entries do not decode and are left out; see 'jobcache verify'\n");
    return bad ? EXIT_PROBLEMS : EXIT_OK;
}

static int cmd_export(jc_cache *cache, const opts *o)
{
    switch (o->format) {
    case FORMAT_CSV:
        return export_table(cache, o, ',');
    case FORMAT_TSV:
        return export_table(cache, o, '\t');
    default:
        return export_jsonl(cache, o);
    }
}


const command builtin_export = {
    "export", cmd_export, OPT_FILE | OPT_FUNCTION | OPT_VERSION | OPT_FORMAT, 0, 0, true, false, MODE_READ, NULL,
    "export [FILE] [--format jsonl|csv|tsv] [--function F] [--version V]",
    "Write the entries as JSON Lines (the default), one entry a line, with decoded\n"
    "arguments and result (and \"params\", the names of positional arguments, when\n"
    "recorded). --format csv or tsv writes a table of one function's entries: a\n"
    "header row, then one row per entry with columns key, version, one per argument\n"
    "(by parameter name when recorded, else arg0, arg1, ...), one per field of a map\n"
    "result (or result), created (seconds since the epoch), created_utc (the same\n"
    "in ISO 8601, UTC) and compute_seconds; arrays and nested values as JSON text.\n"
    "CSV is RFC 4180. A cache of several functions needs --function."};
