/*
 * Listing entries in pages, and removing a selection of them.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "store/store.h"
#include "sqlite_int.h"

/* The filter of jc__select as SQL over bound parameters ?1..?4 and ?6
 * (?5 is a listing's LIMIT), into buf: the SQL text depends only on the
 * file's schema, whatever the filter holds. */
static const char *filter_sql(const jc__sqlite *st, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "(?1 IS NULL OR function = ?1) AND (?2 IS NULL OR version = ?2)"
             " AND (?3 IS NULL OR " USED " < ?3) AND (?4 IS NULL OR " USED " >= ?4)"
             " AND (?6 IS NULL OR %s IS NOT ?6)",
             jc__sq_key_format_column(st));
    return buf;
}

static int bind_filter(sqlite3_stmt *s, const void *ctx)
{
    const jc__select *q = ctx;
    int rc = q->function ? sqlite3_bind_text(s, 1, q->function, -1, SQLITE_STATIC)
                         : sqlite3_bind_null(s, 1);
    if (rc == SQLITE_OK)
        rc = q->version ? sqlite3_bind_text(s, 2, q->version, -1, SQLITE_STATIC)
                        : sqlite3_bind_null(s, 2);
    if (rc == SQLITE_OK)
        rc = q->used_before > 0 ? sqlite3_bind_double(s, 3, q->used_before) : sqlite3_bind_null(s, 3);
    if (rc == SQLITE_OK)
        rc = q->used_since > 0 ? sqlite3_bind_double(s, 4, q->used_since) : sqlite3_bind_null(s, 4);
    if (rc == SQLITE_OK)
        rc = q->other_formats ? sqlite3_bind_int(s, 6, JC_KEY_FORMAT_VERSION) : sqlite3_bind_null(s, 6);
    return rc;
}

/* ---- listing in pages ----
 *
 * A listing reads the rowids of the selected entries a page at a time, each
 * page by its own statement that continues after the sort key of the last
 * entry of the page before (keyset pagination): no statement stays pending
 * between pages, so a slow reader never pins a WAL snapshot, and memory is
 * bounded by the page, whatever the number of entries. In storage order a
 * page is a range of the rowid B-tree; in the other orders (no index: see
 * the schema) each page is one pass over the table that keeps the first
 * page-many entries after the cursor (SQLite's ORDER BY ... LIMIT keeps no
 * more rows than the limit). Pages grow from a few hundred entries (the
 * first lines come after one pass) to PAGE_MAX.
 *
 * The sort keys are cast to one type each (a hostile file may store any
 * type in any column), so that the cursor comparison orders rows exactly as
 * ORDER BY does, and the listing always moves forward: with the rowid last,
 * every key is distinct. */
enum { PAGE_FIRST = 256, PAGE_ROWID = 4096, PAGE_MAX = 65536, SORT_KEYS_MAX = 3 };

static const char *const sort_keys[JC__ORDER_COUNT][SORT_KEYS_MAX] = {
    [JC__ORDER_ROWID] = {NULL},
    [JC__ORDER_NAME] = {"ifnull(CAST(function AS TEXT), '')", "ifnull(CAST(version AS TEXT), '')",
                        "ifnull(CAST(created AS REAL), 0)"},
    [JC__ORDER_USED] = {"ifnull(CAST(last_used AS REAL), 0)"},
    [JC__ORDER_SIZE] = {"ifnull(CAST(args_size AS INTEGER), 0) + ifnull(CAST(result_size AS INTEGER), 0)"},
    [JC__ORDER_TIME] = {"ifnull(CAST(compute_seconds AS REAL), 0)"},
    [JC__ORDER_HITS] = {"ifnull(CAST(hits AS INTEGER), 0)"},
    [JC__ORDER_CREATED] = {"ifnull(CAST(created AS REAL), 0)"},
    /* The column itself, not an expression, so that the key's index gives
     * the order (and the cursor compares as ORDER BY does: both by
     * SQLite's order of values, whatever their type). */
    [JC__ORDER_KEY] = {"key"},
};
/* Orders whose natural direction is descending (largest, newest first). */
static const bool sort_desc[JC__ORDER_COUNT] = {
    [JC__ORDER_USED] = true, [JC__ORDER_SIZE] = true, [JC__ORDER_TIME] = true,
    [JC__ORDER_HITS] = true, [JC__ORDER_CREATED] = true,
};

struct jc__sqlite_pager {
    jc__pager base; /* first: the front dispatches on it (store_int.h) */
    jc__sqlite *st;
    jc__select q;
    char *function, *version; /* q's strings, copied */
    int nkeys;
    sqlite3_value *last[SORT_KEYS_MAX]; /* the sort keys of the last entry returned */
    int64_t last_rowid;
    bool started, done;
    bool counted; /* in st->listings */
    int64_t left; /* entries the limit still allows; -1 = no limit */
    size_t page;  /* rows in the next page */
    int64_t *rowids;
    size_t cap;
};

int jc__sqlite_pager_new(jc__sqlite *st, const jc__select *q, jc__sqlite_pager **out)
{
    int rc = jc__sq_store_enter(st);
    if (rc)
        return rc;
    if (!q || !out || q->order < 0 || q->order >= JC__ORDER_COUNT || q->limit < 0)
        return jc__set_error(JC_EINVAL, "cache file '%s': invalid selection of entries", st->path);
    jc__sqlite_pager *p = calloc(1, sizeof *p);
    if (!p)
        return jc__set_error(JC_ENOMEM, "out of memory listing entries");
    p->base.store = &st->base;
    p->st = st;
    p->q = *q;
    p->function = q->function ? jc__strdup(q->function) : NULL;
    p->version = q->version ? jc__strdup(q->version) : NULL;
    if ((q->function && !p->function) || (q->version && !p->version)) {
        jc__sqlite_pager_free(p);
        return jc__set_error(JC_ENOMEM, "out of memory listing entries");
    }
    p->q.function = p->function;
    p->q.version = p->version;
    while (p->nkeys < SORT_KEYS_MAX && sort_keys[q->order][p->nkeys])
        p->nkeys++;
    p->left = q->limit > 0 ? q->limit : -1;
    p->page = q->order == JC__ORDER_ROWID || q->order == JC__ORDER_KEY ? PAGE_ROWID : PAGE_FIRST;
    if (st->listings++ == 0)
        jc__sq_run_sql(st, JC__SQ_MEMORY_LISTING, "bounding the memory of a listing"); /* best effort */
    p->counted = true;
    *out = p;
    return 0;
}

void jc__sqlite_pager_free(jc__sqlite_pager *p)
{
    if (!p)
        return;
    if (p->counted && --p->st->listings == 0)
        jc__sq_run_sql(p->st, JC__SQ_MEMORY_USE, "restoring the memory of the connection");
    for (int i = 0; i < SORT_KEYS_MAX; i++)
        sqlite3_value_free(p->last[i]);
    free(p->function);
    free(p->version);
    free(p->rowids);
    free(p);
}

/* "SELECT rowid, <keys> FROM entries WHERE <filter> [AND (<keys>, rowid) >
 * (?7, ...)] ORDER BY <keys>, rowid LIMIT ?5" for the pager, into buf. */
static void page_sql(const jc__sqlite_pager *p, char *buf, size_t cap)
{
    char filter[512];
    const char *const *keys = sort_keys[p->q.order];
    bool desc = sort_desc[p->q.order] != p->q.reverse;
    const char *dir = desc ? " DESC" : "";
    size_t len = (size_t)snprintf(buf, cap, "SELECT rowid");
    for (int i = 0; i < p->nkeys; i++)
        len += (size_t)snprintf(buf + len, cap - len, ", %s", keys[i]);
    len += (size_t)snprintf(buf + len, cap - len, " FROM entries WHERE %s",
                            filter_sql(p->st, filter, sizeof filter));
    if (p->started) {
        len += (size_t)snprintf(buf + len, cap - len, " AND (");
        for (int i = 0; i < p->nkeys; i++)
            len += (size_t)snprintf(buf + len, cap - len, "%s, ", keys[i]);
        len += (size_t)snprintf(buf + len, cap - len, "rowid) %s (", desc ? "<" : ">");
        for (int i = 0; i <= p->nkeys; i++)
            len += (size_t)snprintf(buf + len, cap - len, "%s?%d", i ? ", " : "", 7 + i);
        len += (size_t)snprintf(buf + len, cap - len, ")");
    }
    len += (size_t)snprintf(buf + len, cap - len, " ORDER BY ");
    for (int i = 0; i < p->nkeys; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s, ", keys[i], dir);
    snprintf(buf + len, cap - len, "rowid%s LIMIT ?5", dir);
}

static int page_bind(const jc__sqlite_pager *p, sqlite3_stmt *s, size_t want)
{
    int b = bind_filter(s, &p->q);
    if (b == SQLITE_OK)
        b = sqlite3_bind_int64(s, 5, (sqlite3_int64)want);
    for (int i = 0; p->started && b == SQLITE_OK && i < p->nkeys; i++)
        b = sqlite3_bind_value(s, 7 + i, p->last[i]);
    if (p->started && b == SQLITE_OK)
        b = sqlite3_bind_int64(s, 7 + p->nkeys, p->last_rowid);
    return b;
}

/* Keeps the sort keys of the row under s as the cursor. */
static int page_keep_cursor(jc__sqlite_pager *p, sqlite3_stmt *s)
{
    for (int i = 0; i < p->nkeys; i++) {
        sqlite3_value_free(p->last[i]);
        p->last[i] = sqlite3_value_dup(sqlite3_column_value(s, 1 + i));
        if (!p->last[i])
            return jc__set_error(JC_ENOMEM, "out of memory listing entries");
    }
    p->last_rowid = sqlite3_column_int64(s, 0);
    p->started = true;
    return 0;
}

int jc__sqlite_pager_next(jc__sqlite_pager *p, const int64_t **rowids, size_t *n)
{
    char sql[2048];
    sqlite3_stmt *s = NULL;
    *rowids = NULL;
    *n = 0;
    int rc = jc__sq_store_enter(p->st);
    if (rc || p->done || p->left == 0)
        return rc;
    size_t want = p->page;
    if (p->left > 0 && (uint64_t)p->left < want)
        want = (size_t)p->left;
    if (JC__GROW(p->rowids, p->cap, want))
        return jc__set_error(JC_ENOMEM, "out of memory listing entries");
    page_sql(p, sql, sizeof sql);
    rc = jc__sq_prepare(p->st, sql, &s);
    if (!rc) {
        int b = page_bind(p, s, want);
        if (b != SQLITE_OK)
            rc = jc__sq_store_error(p->st, b, "listing entries");
    }
    size_t got = 0;
    int step = SQLITE_DONE;
    while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
        p->rowids[got++] = sqlite3_column_int64(s, 0);
        if (got == want)
            rc = page_keep_cursor(p, s); /* the last row of a full page */
    }
    if (!rc && step != SQLITE_DONE)
        rc = jc__sq_store_error(p->st, step, "listing entries");
    sqlite3_finalize(s);
    if (rc)
        return rc;
    if (got < want)
        p->done = true; /* a short page is the last */
    if (p->left > 0)
        p->left -= (int64_t)got;
    if (p->page < PAGE_MAX)
        p->page *= 2;
    *rowids = p->rowids;
    *n = got;
    return 0;
}


/* Prepares sql_head + where, binds it with bind, and steps it once; for
 * a SELECT, the row stays for the caller to read (finalize *out). */
int jc__sq_run_where(jc__sqlite *st, const char *head, const char *where, binder bind,
                     const void *ctx, const char *what, sqlite3_stmt **out)
{
    char sql[1024];
    snprintf(sql, sizeof sql, "%s WHERE %s", head, where);
    int rc = jc__sq_prepare(st, sql, out);
    if (rc)
        return rc;
    int b = bind ? bind(*out, ctx) : SQLITE_OK;
    if (b != SQLITE_OK)
        return jc__sq_store_error(st, b, what);
    b = sqlite3_step(*out);
    return b == SQLITE_ROW || b == SQLITE_DONE ? 0 : jc__sq_store_error(st, b, what);
}

int jc__sq_chunks_drop_where(jc__sqlite *st, const char *where, binder bind, const void *ctx)
{
    if (!jc__sq_chunks_any(st))
        return 0;
    char w[900];
    snprintf(w, sizeof w, "%s)", where);
    sqlite3_stmt *s = NULL;
    int rc = jc__sq_run_where(st, "DELETE FROM chunks WHERE key IN (SELECT key FROM entries", w, bind, ctx,
                              "removing the parts of results", &s);
    sqlite3_finalize(s);
    return rc;
}

/* Counts what `where` selects, then removes it: inside the caller's
 * transaction both see the same entries. */
int jc__sq_remove_where(jc__sqlite *st, const char *where, binder bind, const void *ctx,
                        int64_t *count, int64_t *bytes)
{
    sqlite3_stmt *s = NULL;
    int64_t c = 0, b = 0;
    int rc = jc__sq_store_enter_write(st, "remove entries");
    if (rc)
        return rc;
    rc = jc__sq_run_where(st, "SELECT count(*), total(args_size + result_size) FROM entries", where, bind,
                   ctx, "counting entries to remove", &s);
    if (!rc) {
        c = sqlite3_column_int64(s, 0);
        b = jc__sq_clamp_int64(sqlite3_column_double(s, 1));
    }
    sqlite3_finalize(s);
    s = NULL;
    if (!rc && c > 0)
        rc = jc__sq_chunks_drop_where(st, where, bind, ctx);
    if (!rc && c > 0)
        rc = jc__sq_run_where(st, "DELETE FROM entries", where, bind, ctx, "removing entries", &s);
    sqlite3_finalize(s);
    if (count)
        *count = rc ? 0 : c;
    if (bytes)
        *bytes = rc ? 0 : b;
    return rc;
}

int jc__sqlite_remove(jc__sqlite *st, const jc__select *q, int64_t *count, int64_t *bytes)
{
    char where[512];
    if (!q)
        return jc__set_error(JC_EINVAL, "store: removing entries with a NULL filter");
    return jc__sq_remove_where(st, filter_sql(st, where, sizeof where), bind_filter, q, count, bytes);
}

int jc__sqlite_clamp_future(jc__sqlite *st, int64_t *count)
{
    int rc = jc__sq_store_enter_write(st, "clamp times later than now");
    if (rc)
        return rc;
    /* A time later than now was written under a clock that was ahead:
     * when the entry was really made is unknown, but not after the entries
     * written after it with a sane clock (rowids follow the order of
     * writing). The earliest of their creation times, or now, so that such
     * an entry never looks newer than what was written after it (issue 23:
     * prune --stale-versions kept the old version, clamped to now, and
     * removed the current one). One pass, newest rowid first, carrying
     * that minimum (a window), and only when a time needs it: the pass
     * over every entry costs what the search for such times costs. */
    sqlite3_stmt *s = NULL;
    bool any = false;
    rc = jc__sq_prepare(st, "SELECT EXISTS (SELECT 1 FROM entries WHERE created > " NOW_SQL " OR last_used > " NOW_SQL ")",
                        &s);
    if (!rc) {
        int step = sqlite3_step(s);
        if (step == SQLITE_ROW)
            any = sqlite3_column_int(s, 0) != 0;
        else
            rc = jc__sq_store_error(st, step, "looking for times later than now");
    }
    sqlite3_finalize(s);
    if (rc || !any) {
        if (!rc && count)
            *count = 0;
        return rc;
    }
#define NEW_CREATED "(CASE WHEN entries.created > " NOW_SQL " THEN min(" NOW_SQL ", w.bound) ELSE entries.created END)"
    rc = jc__sq_run_sql(st,
                 "UPDATE entries SET created = " NEW_CREATED ", last_used = (CASE WHEN entries.last_used > " NOW_SQL
                 " THEN max(" NEW_CREATED ", min(" NOW_SQL ", w.bound)) ELSE entries.last_used END)"
                 " FROM (SELECT rowid AS id, ifnull(min(CASE WHEN created <= " NOW_SQL " THEN created END)"
                 " OVER (ORDER BY rowid DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), " NOW_SQL ") AS bound"
                 " FROM entries) AS w"
                 " WHERE entries.rowid = w.id AND (entries.created > " NOW_SQL " OR entries.last_used > " NOW_SQL ")",
                 "clamping times later than now");
#undef NEW_CREATED
    if (!rc && count)
        *count = sqlite3_changes(st->db);
    return rc;
}

int jc__sqlite_zero_hits(jc__sqlite *st, int64_t *count)
{
    int rc = jc__sq_store_enter_write(st, "zero the hit counts");
    if (rc)
        return rc;
    rc = jc__sq_run_sql(st, "UPDATE entries SET hits = 0 WHERE hits <> 0", "zeroing the hit counts");
    if (!rc && count)
        *count = sqlite3_changes(st->db);
    if (!rc && st->schema >= 10) /* hits not folded yet go too */
        rc = jc__sq_run_sql(st, "DELETE FROM hit_log", "emptying the hit log");
    if (!rc)
        rc = jc__sq_run_sql(st, "DELETE FROM meta WHERE name IN ('stats.evicted', 'stats.evicted-bytes')",
                            "zeroing the counts of evictions");
    return rc;
}

int jc__sqlite_remove_stale(jc__sqlite *st, int64_t *count, int64_t *bytes)
{
    /* The window runs over the groups: for each function, its versions
     * ranked by when they were last used (after rolling back to v1, v1 is
     * the one in use, though v2 was stored last). */
    static const char where[] =
        "(function, version) NOT IN (SELECT function, version FROM"
        " (SELECT function, version, row_number() OVER (PARTITION BY function"
        " ORDER BY max(" USED ") DESC, max(rowid) DESC, version DESC) AS r FROM entries GROUP BY function, version)"
        " WHERE r = 1)";
    return jc__sq_remove_where(st, where, NULL, NULL, count, bytes);
}

typedef struct lru_bounds {
    int64_t entries, bytes;
} lru_bounds;

static int bind_lru(sqlite3_stmt *s, const void *ctx)
{
    const lru_bounds *b = ctx;
    int rc = sqlite3_bind_int64(s, 1, b->entries);
    return rc == SQLITE_OK ? sqlite3_bind_int64(s, 2, b->bytes) : rc;
}

int jc__sqlite_remove_lru(jc__sqlite *st, int64_t keep_entries, int64_t keep_bytes, int64_t *count,
                         int64_t *bytes)
{
    /* Walking from the most recently used entry, n counts entries and cum
     * their bytes; whatever lies beyond either bound goes. As sizes are not
     * negative, what stays is the longest most recently used run that fits:
     * exactly what removing the least recently used one at a time until
     * both bounds hold leaves. total() rather than sum(): a hostile file's
     * sizes cannot make it fail with an integer overflow. */
    static const char where[] =
        "rowid IN (SELECT id FROM (SELECT rowid AS id, row_number() OVER w AS n,"
        " total(args_size + result_size) OVER w AS cum FROM entries"
        " WINDOW w AS (ORDER BY " USED " DESC, rowid DESC"
        " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))"
        " WHERE (?1 > 0 AND n > ?1) OR (?2 > 0 AND cum > ?2))";
    lru_bounds b = {keep_entries, keep_bytes};
    if (keep_entries < 0 || keep_bytes < 0)
        return jc__set_error(JC_EINVAL, "store: negative bound for eviction");
    if (!keep_entries && !keep_bytes) {
        if (count)
            *count = 0;
        if (bytes)
            *bytes = 0;
        return jc__sq_store_enter(st);
    }
    return jc__sq_remove_where(st, where, bind_lru, &b, count, bytes);
}

/* ---- pipelines: entries by the results their arguments refer to ---- */

int jc__sqlite_by_check(jc__sqlite *st, const uint8_t check[JC__CHECK_LEN], uint8_t key[JC__KEY_LEN])
{
    int rc = jc__sq_store_enter(st);
    if (rc)
        return rc;
    if (st->schema < 2)
        return 0; /* no checksums: no entry is known by its result */
    sqlite3_stmt *s = NULL;
    if ((rc = jc__sq_prepare(st, "SELECT key FROM entries WHERE result_check = ?1 LIMIT 1", &s)))
        return rc;
    sqlite3_bind_blob(s, 1, check, JC__CHECK_LEN, SQLITE_STATIC);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW && sqlite3_column_bytes(s, 0) == JC__KEY_LEN) {
        memcpy(key, sqlite3_column_blob(s, 0), JC__KEY_LEN);
        rc = 1;
    } else if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = jc__sq_store_error(st, step, "looking an entry up by its result");
    }
    sqlite3_finalize(s);
    return rc;
}

int jc__sqlite_users(jc__sqlite *st, const uint8_t check[JC__CHECK_LEN], jc__user_fn fn, void *ctx)
{
    int rc = jc__sq_store_enter(st);
    if (rc)
        return rc;
    /* A reference is stored as msgpack ext 8 of 17 bytes, type 6, version
     * 1, then the digest (docs/format.md): those 21 bytes in the arguments.
     * One pass over the entries (no index holds the references). */
    uint8_t pattern[4 + JC__CHECK_LEN] = {0xc7, 0x11, 0x06, 0x01};
    memcpy(pattern + 4, check, JC__CHECK_LEN);
    sqlite3_stmt *s = NULL;
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT key, %s FROM entries WHERE instr(args, ?1) > 0",
             st->schema >= 2 ? "result_check" : "NULL");
    if ((rc = jc__sq_prepare(st, sql, &s)))
        return rc;
    sqlite3_bind_blob(s, 1, pattern, sizeof pattern, SQLITE_STATIC);
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(s, 0) != JC__KEY_LEN)
            continue;
        const uint8_t *own = sqlite3_column_bytes(s, 1) == JC__CHECK_LEN ? sqlite3_column_blob(s, 1) : NULL;
        fn(ctx, sqlite3_column_blob(s, 0), own);
    }
    if (step != SQLITE_DONE)
        rc = jc__sq_store_error(st, step, "looking for the entries computed from a result");
    sqlite3_finalize(s);
    return rc;
}
