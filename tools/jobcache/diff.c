/*
 * jobcache diff: what differs between two entries (version, arguments,
 * result), and with --versions, how the results of two versions of a
 * function differ over every argument set computed under both. Exit codes
 * as diff(1): 0 the same, 1 different; then 2 a usage error (an unknown
 * key prefix or version, entries of two functions), 3 a failure (a file or
 * an entry that cannot be read).
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobcache.h>

#include "builtin.h"
#include "msgs.h"
#include "table.h"
#include "text.h"

/* ---- describing a change ---- */

/* "+0.5 (+12.5%)": b - a, and relative to a when a is not 0. */
static void numeric_change(char *buf, size_t cap, double a, double b)
{
    double d = b - a;
    if (a != 0 && isfinite(d))
        snprintf(buf, cap, "%+.6g (%+.3g%%)", d, 100 * d / fabs(a));
    else
        snprintf(buf, cap, "%+.6g", d);
}

/* The largest element difference of two equally long numeric arrays. */
static double array_change(char *buf, size_t cap, const jc_value *a, const jc_value *b, bool ints)
{
    size_t n = 0, m = 0, differ = 0, at = 0;
    double largest = 0;
    const double *da = NULL, *db = NULL;
    const int64_t *ia = NULL, *ib = NULL;
    if (ints) {
        jc_value_get_ints(a, &ia, &n);
        jc_value_get_ints(b, &ib, &m);
    } else {
        jc_value_get_doubles(a, &da, &n);
        jc_value_get_doubles(b, &db, &m);
    }
    for (size_t i = 0; i < n && i < m; i++) {
        double x = ints ? (double)ia[i] : da[i], y = ints ? (double)ib[i] : db[i];
        bool same = ints ? ia[i] == ib[i] : memcmp(&da[i], &db[i], sizeof(double)) == 0;
        if (same)
            continue;
        double d = isnan(x) || isnan(y) ? INFINITY : fabs(y - x);
        if (differ++ == 0 || d > largest) {
            largest = d;
            at = i;
        }
    }
    char by[64];
    numeric_change(by, sizeof by, ints ? (double)ia[at] : da[at], ints ? (double)ib[at] : db[at]);
    snprintf(buf, cap, "%zu of %zu elements differ, the most [%zu] by %s", differ, n, at, by);
    return largest;
}

/* Says in buf how b differs from a (they are not equal) and returns the
 * size of the change: the numeric difference for numbers and numeric
 * arrays, INFINITY for a change of another kind (a type, a length, a
 * text), which ranks first. */
static double describe_change(char *buf, size_t cap, const jc_value *a, const jc_value *b)
{
    jc_type ta = jc_value_type(a), tb = jc_value_type(b);
    double x, y;
    int64_t i, j;
    if (ta != tb) {
        snprintf(buf, cap, "type %s -> %s", jc_type_name(ta), jc_type_name(tb));
        return INFINITY;
    }
    switch (ta) {
    case JC_TYPE_DOUBLE:
        jc_value_get_double(a, &x);
        jc_value_get_double(b, &y);
        numeric_change(buf, cap, x, y);
        return isnan(x) || isnan(y) ? INFINITY : fabs(y - x);
    case JC_TYPE_INT:
        jc_value_get_int(a, &i);
        jc_value_get_int(b, &j);
        numeric_change(buf, cap, (double)i, (double)j);
        return fabs((double)j - (double)i);
    case JC_TYPE_DOUBLES:
    case JC_TYPE_INTS:
        if (jc_value_len(a) == jc_value_len(b))
            return array_change(buf, cap, a, b, ta == JC_TYPE_INTS);
        break;
    case JC_TYPE_STR:
    case JC_TYPE_BYTES:
        snprintf(buf, cap, "%s changed (length %zu -> %zu)", ta == JC_TYPE_STR ? "text" : "bytes",
                 jc_value_len(a), jc_value_len(b));
        return INFINITY;
    default:
        break;
    }
    if (jc_value_len(a) != jc_value_len(b))
        snprintf(buf, cap, "%s length %zu -> %zu", jc_type_name(ta), jc_value_len(a), jc_value_len(b));
    else
        snprintf(buf, cap, "%s contents changed", jc_type_name(ta));
    return INFINITY;
}

/* ---- diff A B ---- */

/* Finds and loads the entry of a key prefix: -1, or the exit status with
 * a message. */
static int find_entry(jc_cache *cache, const char *prefix, entry *e)
{
    jc_entry_info info;
    memset(e, 0, sizeof *e);
    if (jc_entry_find(cache, prefix, &info))
        return prefix_failed(cache, "diff");
    if (!entry_load(cache, &info, e))
        return out_of_memory("diff");
    if (e->error) {
        say(stderr, "jobcache diff: %s", e->error);
        return EXIT_FAILED;
    }
    return -1;
}

/* Adds a line for what differs, when it does: a or b NULL means absent. */
static bool diff_row(table *t, const char *what, const jc_value *a, const jc_value *b)
{
    if (a && b && jc_value_equal(a, b))
        return true;
    char *sa = a ? jc_value_format(a, SHOW_ITEMS) : NULL;
    char *sb = b ? jc_value_format(b, SHOW_ITEMS) : NULL;
    bool ok = (!a || sa) && (!b || sb) &&
              table_add(t, (const char *const[]){what, sa ? sa : "(absent)", sb ? sb : "(absent)"});
    free(sa);
    free(sb);
    return ok;
}

/* The named arguments of both, walked in name order (maps are sorted). */
static bool diff_kwargs(table *t, const jc_value *ka, const jc_value *kb)
{
    size_t i = 0, j = 0, na = jc_value_len(ka), nb = jc_value_len(kb);
    bool ok = true;
    while (ok && (i < na || j < nb)) {
        const char *x = i < na ? jc_value_key_at(ka, i) : NULL;
        const char *y = j < nb ? jc_value_key_at(kb, j) : NULL;
        int c = !x ? 1 : !y ? -1 : strcmp(x, y);
        const char *name = c <= 0 ? x : y;
        ok = diff_row(t, name, c <= 0 ? jc_value_at(ka, i) : NULL, c >= 0 ? jc_value_at(kb, j) : NULL);
        i += c <= 0;
        j += c >= 0;
    }
    return ok;
}

static bool diff_table(const entry *a, const entry *b, table *t)
{
    char ha[24], hb[24];
    snprintf(ha, sizeof ha, "A %.12s", a->info.key_hex);
    snprintf(hb, sizeof hb, "B %.12s", b->info.key_hex);
    bool ok = table_add(t, (const char *const[]){"ARGUMENT", ha, hb});
    if (ok && strcmp(a->version, b->version) != 0)
        ok = table_add(t, (const char *const[]){"(version)", a->version, b->version});
    size_t na = jc_value_len(a->args), nb = jc_value_len(b->args);
    for (size_t i = 0; ok && (i < na || i < nb); i++) {
        char what[32];
        snprintf(what, sizeof what, "[%zu]", i);
        ok = diff_row(t, what, jc_value_at(a->args, i), jc_value_at(b->args, i));
    }
    return ok && diff_kwargs(t, a->kwargs, b->kwargs) && diff_row(t, "(result)", a->result, b->result);
}

static int diff_entries(jc_cache *cache, const opts *o)
{
    entry a, b;
    table t = {.ncols = 3, .align = "lll", .fit = "kss"};
    int rc = find_entry(cache, o->pos[0], &a);
    memset(&b, 0, sizeof b);
    if (rc < 0)
        rc = find_entry(cache, o->pos[1], &b);
    if (rc < 0 && strcmp(a.function, b.function) != 0) {
        say(stderr, "jobcache diff: the entries are of different functions (%s and %s); diff "
                    "compares calls of one function",
            a.function, b.function);
        rc = EXIT_USAGE;
    }
    bool found = rc < 0;
    if (found && !diff_table(&a, &b, &t)) {
        rc = out_of_memory("diff");
    } else if (found && t.nrows == 1) {
        printf("no difference: same function, version, arguments and result\n");
        rc = EXIT_OK;
    } else if (found) {
        table_print(&t, stdout);
        if (!jc_value_equal(a.result, b.result)) {
            char what[160];
            describe_change(what, sizeof what, a.result, b.result);
            say(stdout, "result: %s", what);
        }
        rc = EXIT_PROBLEMS;
    }
    table_free(&t);
    entry_free(&a);
    entry_free(&b);
    return rc;
}

/* ---- diff --versions F V1 V2 ---- */

/* An argument set of V1: its canonical encoding and its entry's key. */
typedef struct argset {
    unsigned char *bytes;
    size_t len;
    uint8_t key[JC_KEY_SIZE];
} argset;

static int argset_cmp(const void *x, const void *y)
{
    const argset *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->bytes, b->bytes, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* The arguments of an entry as one byte string: the canonical encodings
 * of the positional and of the named arguments, the first prefixed by its
 * length. The codec is canonical, so that equal arguments give equal
 * bytes. 0, or a jc_error (an argument that does not load). */
static int encode_args(jc_cache *cache, const uint8_t key[JC_KEY_SIZE], argset *out)
{
    jc_value *args = NULL, *kwargs = NULL;
    void *pa = NULL, *pk = NULL;
    size_t la = 0, lk = 0;
    int rc = jc_entry_load(cache, key, &args, &kwargs, NULL);
    if (!rc)
        rc = jc_value_encode(args, &pa, &la);
    if (!rc)
        rc = jc_value_encode(kwargs, &pk, &lk);
    if (!rc) {
        out->len = sizeof la + la + lk;
        out->bytes = malloc(out->len);
        if (out->bytes) {
            memcpy(out->bytes, &la, sizeof la);
            memcpy(out->bytes + sizeof la, pa, la);
            memcpy(out->bytes + sizeof la + la, pk, lk);
        } else {
            rc = JC_ENOMEM;
        }
        memcpy(out->key, key, JC_KEY_SIZE);
    }
    free(pa);
    free(pk);
    jc_value_free(args);
    jc_value_free(kwargs);
    return rc;
}

typedef struct change {
    double size;
    char *args, *a, *b, *what; /* escaped on output (table_add) */
} change;

typedef struct versions_diff {
    argset *sets; /* V1's, sorted */
    size_t nsets, cap;
    size_t common, changed, only_b, unreadable;
    change *top; /* the largest changes, largest first */
    size_t ntop, max_top;
} versions_diff;

static void change_free(change *c)
{
    free(c->args);
    free(c->a);
    free(c->b);
    free(c->what);
}

/* Reads every argument set of function f version v into d->sets. */
static int read_sets(jc_cache *cache, const char *f, const char *v, versions_diff *d)
{
    jc_filter filter = {.function = f, .version = v};
    jc_entries *it = jc_entries_query(cache, &filter);
    if (!it)
        return failed("diff");
    jc_entry_info info;
    int rc;
    while ((rc = jc_entries_next(it, &info)) == 1) {
        if (d->nsets == d->cap) {
            size_t cap = d->cap ? 2 * d->cap : 256;
            argset *s = realloc(d->sets, cap * sizeof *s);
            if (!s)
                break;
            d->sets = s;
            d->cap = cap;
        }
        if (encode_args(cache, info.key, &d->sets[d->nsets]) == 0)
            d->nsets++;
        else
            d->unreadable++;
    }
    jc_entries_free(it);
    if (rc < 0)
        return failed("diff");
    if (rc == 1)
        return out_of_memory("diff");
    if (d->nsets)
        qsort(d->sets, d->nsets, sizeof *d->sets, argset_cmp);
    return -1;
}

/* Keeps the change among the d->max_top largest; false when out of memory. */
static bool keep_change(versions_diff *d, const jc_value *args, const jc_value *kwargs, const jc_value *a,
                        const jc_value *b, double size, const char *what)
{
    size_t at = d->ntop;
    while (at > 0 && d->top[at - 1].size < size)
        at--;
    if (at >= d->max_top)
        return true;
    if (d->ntop == d->max_top)
        change_free(&d->top[--d->ntop]);
    memmove(&d->top[at + 1], &d->top[at], (d->ntop - at) * sizeof *d->top);
    change *c = &d->top[at];
    d->ntop++;
    *c = (change){.size = size, .args = args_text(args, kwargs, NULL, 0, LS_ITEMS), .a = result_text(a, LS_ITEMS),
                  .b = result_text(b, LS_ITEMS), .what = strdup(what)};
    return c->args && c->a && c->b && c->what;
}

/* Compares the result of V2's entry of info with V1's of the same
 * arguments, if there is one. */
static bool compare_entry(jc_cache *cache, const jc_entry_info *info, versions_diff *d)
{
    argset key = {0};
    if (encode_args(cache, info->key, &key)) {
        d->unreadable++;
        return true;
    }
    argset *match = d->nsets ? bsearch(&key, d->sets, d->nsets, sizeof *d->sets, argset_cmp) : NULL;
    free(key.bytes);
    if (!match) {
        d->only_b++;
        return true;
    }
    d->common++;
    jc_value *args = NULL, *kwargs = NULL, *ra = NULL, *rb = NULL;
    bool ok = true;
    if (jc_entry_load(cache, match->key, NULL, NULL, &ra) || jc_entry_load(cache, info->key, &args, &kwargs, &rb)) {
        d->unreadable++;
    } else if (!jc_value_equal(ra, rb)) {
        char what[160];
        double size = describe_change(what, sizeof what, ra, rb);
        d->changed++;
        ok = keep_change(d, args, kwargs, ra, rb, size, what);
    }
    jc_value_free(args);
    jc_value_free(kwargs);
    jc_value_free(ra);
    jc_value_free(rb);
    return ok;
}

static void versions_report(const versions_diff *d, const char *f, const char *va, const char *vb)
{
    say(stdout, "%s %s -> %s: %zu argument set%s under both, %zu result%s changed, %zu the same", f, va, vb,
        d->common, d->common == 1 ? "" : "s", d->changed, d->changed == 1 ? "" : "s", d->common - d->changed);
    if (d->nsets > d->common || d->only_b)
        say(stdout, "(%zu argument set%s only under %s, %zu only under %s)", d->nsets - d->common,
            d->nsets - d->common == 1 ? "" : "s", va, d->only_b, vb);
    if (d->unreadable)
        printf("%zu entr%s could not be read (see 'jobcache verify')\n", d->unreadable,
               d->unreadable == 1 ? "y" : "ies");
    if (!d->ntop)
        return;
    table t = {.ncols = 4, .align = "llll", .fit = "sssk"};
    bool ok = table_add(&t, (const char *const[]){"ARGUMENTS", va, vb, "CHANGE"});
    for (size_t i = 0; ok && i < d->ntop; i++)
        ok = table_add(&t, (const char *const[]){d->top[i].args, d->top[i].a, d->top[i].b, d->top[i].what});
    printf("\nthe largest changes%s:\n", d->ntop < d->changed ? "" : " (all)");
    if (ok)
        table_print(&t, stdout);
    table_free(&t);
}

static int diff_versions(jc_cache *cache, const opts *o)
{
    const char *f = o->pos[0], *va = o->pos[1], *vb = o->pos[2];
    versions_diff d = {.max_top = o->limit ? o->limit : 10};
    if (d.max_top > 1000)
        d.max_top = 1000;
    int rc = read_sets(cache, f, va, &d);
    bool ok = true;
    if (rc < 0 && d.nsets + d.unreadable == 0) {
        say(stderr, "jobcache diff: function %s has no entries of version %s", f, va);
        rc = EXIT_USAGE;
    }
    if (rc < 0 && !(d.top = calloc(d.max_top, sizeof *d.top)))
        rc = out_of_memory("diff");
    jc_entries *it = NULL;
    if (rc < 0 && !(it = jc_entries_query(cache, &(jc_filter){.function = f, .version = vb})))
        rc = failed("diff");
    jc_entry_info info;
    int next = 0;
    size_t nb = 0;
    while (rc < 0 && ok && (next = jc_entries_next(it, &info)) == 1) {
        nb++;
        ok = compare_entry(cache, &info, &d);
    }
    jc_entries_free(it);
    if (rc < 0 && (!ok || next < 0))
        rc = ok ? failed("diff") : out_of_memory("diff");
    if (rc < 0 && nb == 0) {
        say(stderr, "jobcache diff: function %s has no entries of version %s", f, vb);
        rc = EXIT_USAGE;
    }
    if (rc < 0) {
        versions_report(&d, f, va, vb);
        rc = d.changed ? EXIT_PROBLEMS : EXIT_OK;
    }
    for (size_t i = 0; i < d.nsets; i++)
        free(d.sets[i].bytes);
    free(d.sets);
    for (size_t i = 0; i < d.ntop; i++)
        change_free(&d.top[i]);
    free(d.top);
    return rc;
}

static int check_diff(const command *c, const opts *o)
{
    bool versions = o->given & OPT_VERSIONS;
    if (versions && o->npos != 3)
        return usage_error(c, "%s: usage: jobcache diff --versions FUNCTION V1 V2",
                           o->npos < 3 ? "missing argument" : "unexpected argument");
    if (!versions && o->npos > 2)
        return usage_error(c, "unexpected argument '%s'", o->pos[2]);
    if (!versions && (o->given & OPT_LIMIT))
        return usage_error(c, "--limit goes with --versions");
    return -1;
}

static int cmd_diff(jc_cache *cache, const opts *o)
{
    return (o->given & OPT_VERSIONS) ? diff_versions(cache, o) : diff_entries(cache, o);
}

const command builtin_diff = {
    "diff", cmd_diff, OPT_FILE | OPT_VERSIONS | OPT_LIMIT, 2, 3, false, false, MODE_READ, check_diff,
    "diff KEY-A KEY-B | diff --versions FUNCTION V1 V2 [--limit N]",
    "Show how two entries of one function differ: version, positional arguments by\n"
    "index, named ones by name, and result. Answers \"why did my rerun compute this\n"
    "again?\". With --versions, compare the results of two versions of FUNCTION over\n"
    "every argument set computed under both: how many changed, and the largest changes\n"
    "(numeric differences for numbers and numeric arrays; what changed otherwise), at\n"
    "most N (10). Exits 0 when the same, 1 when different, as diff(1); 2 on a usage error,\n"
    "3 when the file or an entry cannot be read."};
