/*
 * The PostgreSQL store's inspection and tending of entries (store.h):
 * reading one entry whole (jc__pg_row_read and the lookups by id, key and
 * key prefix), listing a selection in pages, copying a row in with all
 * its metadata (merge), and the bulk removals and figures: remove by
 * filter, stale versions, least recently used, times later than now, hit
 * counts, groups by function and version, and the count.
 *
 * What each does is what the SQLite store's does (store/sqlite/list.c,
 * entries.c, facts.c); where PostgreSQL differs, the comment says how.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_int.h"
#include "util/clock.h"
#include "util/grow.h"

/* A sum of bigints (numeric in PostgreSQL) as a bigint, clamped to its
 * range: SQLite's total() and jc__sq_clamp_int64 read a hostile row's
 * sizes the same way, never failing with an overflow. */
#define CLAMP_INT8(x) "least(greatest(" x ", -9223372036854775808), 9223372036854775807)::bigint"

/* The filter of a jc__select over parameters $1..$5: function and version
 * (text, NULL: any), used_before and used_since (float8 compared with the
 * clamped last_used; 0: no bound) and the key format to differ from
 * (bigint; 0: any). The text is the same whatever the filter holds: an
 * unused bound is a parameter that switches its term off. */
#define FILTER_SQL                                                                                     \
    "($1::text IS NULL OR function = $1) AND ($2::text IS NULL OR version = $2)"                      \
    " AND ($3::float8 <= 0 OR " JC__PG_USED " < $3) AND ($4::float8 <= 0 OR " JC__PG_USED " >= $4)"  \
    " AND ($5::bigint = 0 OR key_format IS DISTINCT FROM $5)"
enum { FILTER_PARAMS = 5 };

static void p_filter(jc__pg_params *p, const jc__select *q)
{
    jc__pg_p_text(p, q->function);
    jc__pg_p_text(p, q->version);
    /* A bound that is not a positive number is no bound, as the SQLite
     * store binds NULL for it: a NaN sent as it is would compare above
     * every time in PostgreSQL and select all or nothing. */
    jc__pg_p_float8(p, q->used_before > 0 ? q->used_before : 0);
    jc__pg_p_float8(p, q->used_since > 0 ? q->used_since : 0);
    jc__pg_p_int8(p, q->other_formats ? JC_KEY_FORMAT_VERSION : 0);
}

/* ---- one entry ---- */

void jc__pg_row_read(const PGresult *r, int i, jc__row *row)
{
    memset(row, 0, sizeof *row);
    row->rowid = jc__pg_int8(r, i, 0);
    /* A key, checksum or fingerprint of another length than the schema
     * allows is read as its first bytes, its length kept for verify. */
    size_t n = 0;
    const uint8_t *b = jc__pg_bytes(r, i, 1, &n);
    row->key_len = n;
    if (b && n)
        memcpy(row->key, b, n < JC__KEY_LEN ? n : JC__KEY_LEN);
    row->function = jc__pg_text(r, i, 2);
    row->version = jc__pg_text(r, i, 3);
    /* Without blobs the columns are NULL (JC__PG_ROW_NOBLOBS); with them
     * never (NOT NULL), and an empty bytea still points at libpq's "". */
    if (!jc__pg_isnull(r, i, 4))
        row->args = jc__pg_bytes(r, i, 4, &row->args_len);
    if (!jc__pg_isnull(r, i, 5))
        row->result = jc__pg_bytes(r, i, 5, &row->result_len);
    row->args_size = jc__pg_int8(r, i, 6);
    row->result_size = jc__pg_int8(r, i, 7);
    row->created = jc__pg_float8(r, i, 8);
    row->last_used = jc__pg_float8(r, i, 9);
    row->compute_seconds = jc__pg_float8(r, i, 10);
    row->hits = jc__pg_int8(r, i, 11);
    b = jc__pg_bytes(r, i, 12, &n);
    row->check_len = b ? n : 0;
    if (b && n)
        memcpy(row->check, b, n < JC__CHECK_LEN ? n : JC__CHECK_LEN);
    b = jc__pg_bytes(r, i, 13, &n);
    row->code_fp_len = b ? n : 0;
    if (b && n)
        memcpy(row->code_fp, b, n < JC__CHECK_LEN ? n : JC__CHECK_LEN);
    row->key_format = jc__pg_int8(r, i, 14);
    /* Times later than now read as now. The server says whether created
     * is later than its clock, and now is this process's clock, which
     * merge compares with: created is future by either. */
    double now = jc__now();
    if (jc__pg_int8(r, i, 15) != 0 || !(row->created <= now)) {
        row->created = now;
        row->created_future = true;
    }
    if (!(row->last_used <= now))
        row->last_used = now;
}

/* Runs a query of JC__PG_ROW_COLS rows: 1 and *row filled from the first
 * (the result kept as the handle's, which row points into), 0 when it
 * has none; *rows (may be NULL) gets how many it returned. */
static int query_row(jc__pg *pg, const char *sql, const jc__pg_params *p, jc__row *row, int *rows,
                     const char *what)
{
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, what, sql, p, &r);
    if (rc)
        return rc;
    int n = PQntuples(r);
    if (rows)
        *rows = n;
    if (n == 0) {
        PQclear(r);
        return 0;
    }
    jc__pg_row_read(r, 0, row);
    jc__pg_keep(pg, r);
    return 1;
}

static const char *const row_by_id_sql[2] = {
    "SELECT " JC__PG_ROW_COLS(JC__PG_ROW_NOBLOBS) " FROM entries WHERE id = $1",
    "SELECT " JC__PG_ROW_COLS(JC__PG_ROW_BLOBS) " FROM entries WHERE id = $1",
};
static const char *const row_by_key_sql[2] = {
    "SELECT " JC__PG_ROW_COLS(JC__PG_ROW_NOBLOBS) " FROM entries WHERE key = $1",
    "SELECT " JC__PG_ROW_COLS(JC__PG_ROW_BLOBS) " FROM entries WHERE key = $1",
};

int jc__pg_row(jc__pg *pg, int64_t rowid, bool blobs, jc__row *row)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (!row)
        return jc__set_error(JC_EINVAL, "cache '%s': reading an entry into NULL", pg->name);
    jc__pg_params p = {0};
    jc__pg_p_int8(&p, rowid);
    return query_row(pg, row_by_id_sql[blobs], &p, row, NULL, "reading an entry");
}

int jc__pg_row_by_key(jc__pg *pg, const uint8_t key[JC__KEY_LEN], bool blobs, jc__row *row)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (!key || !row)
        return jc__set_error(JC_EINVAL, "cache '%s': reading an entry with a NULL key or row", pg->name);
    jc__pg_params p = {0};
    jc__pg_p_bytes(&p, key, JC__KEY_LEN);
    return query_row(pg, row_by_key_sql[blobs], &p, row, NULL, "reading an entry");
}

int jc__pg_find_range(jc__pg *pg, const uint8_t lo[JC__KEY_LEN], const uint8_t hi[JC__KEY_LEN], jc__row *row)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (!lo || !hi || !row)
        return jc__set_error(JC_EINVAL, "cache '%s': finding a key with NULL bounds", pg->name);
    /* bytea compares as memcmp, then length, as SQLite's blobs do: a hex
     * prefix is a range of the key's unique index, no scan of the table. */
    jc__pg_params p = {0};
    jc__pg_p_bytes(&p, lo, JC__KEY_LEN);
    jc__pg_p_bytes(&p, hi, JC__KEY_LEN);
    int n = 0;
    int rc = query_row(pg,
                       "SELECT " JC__PG_ROW_COLS(JC__PG_ROW_NOBLOBS)
                       " FROM entries WHERE key BETWEEN $1 AND $2 ORDER BY key LIMIT 2",
                       &p, row, &n, "finding an entry by key prefix");
    return rc < 0 ? rc : n;
}

int jc__pg_max_rowid(jc__pg *pg, int64_t *out)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (!out)
        return jc__set_error(JC_EINVAL, "cache '%s': NULL out for the largest row id", pg->name);
    *out = 0;
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, "finding the largest row id", "SELECT coalesce(max(id), 0)::bigint FROM entries",
                          NULL, &r);
    if (rc)
        return rc;
    *out = jc__pg_int8(r, 0, 0);
    PQclear(r);
    return 0;
}

int jc__pg_count(jc__pg *pg, int64_t *out)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (!out)
        return jc__set_error(JC_EINVAL, "cache '%s': NULL out for the count of entries", pg->name);
    *out = 0;
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, "counting entries", "SELECT count(*)::bigint FROM entries", NULL, &r);
    if (rc)
        return rc;
    *out = jc__pg_int8(r, 0, 0);
    PQclear(r);
    return 0;
}

/* ---- writing a row whole (merge) ---- */

/* A row without parts: an upsert of every column, which keeps the row
 * (and its id: ids follow the order of first writing, as SQLite's rowids
 * do), then the removal of the chunks of the result it replaces (the
 * foreign key removes them only with a deleted entry). The removal comes
 * after the upsert, in a statement of its own, for the reason entries.c's
 * put_with_pieces gives: the upsert holds the entry's row lock, and a
 * newer snapshot sees the chunks that another session writing the same key
 * committed while the upsert waited for it. */
static int put_row_whole(jc__pg *pg, const jc__row *row)
{
    uint8_t check[JC__CHECK_LEN];
    jc__result_check(row->result, row->result_len, check);
    jc__pg_params p = {0};
    jc__pg_p_bytes(&p, row->key, JC__KEY_LEN);
    jc__pg_p_text(&p, row->function);
    jc__pg_p_text(&p, row->version);
    /* "" for an empty blob: a NULL pointer would send SQL NULL. The sizes
     * written are the blobs' own, whatever the source recorded. */
    jc__pg_p_bytes(&p, row->args ? row->args : "", row->args_len);
    jc__pg_p_bytes(&p, row->result ? row->result : "", row->result_len);
    jc__pg_p_int8(&p, (int64_t)row->args_len);
    jc__pg_p_int8(&p, (int64_t)row->result_len);
    jc__pg_p_float8(&p, row->created);
    jc__pg_p_float8(&p, row->last_used);
    jc__pg_p_float8(&p, row->compute_seconds);
    jc__pg_p_int8(&p, row->hits);
    jc__pg_p_bytes(&p, check, JC__CHECK_LEN);
    jc__pg_p_bytes(&p, row->code_fp_len == JC__CHECK_LEN ? row->code_fp : NULL, JC__CHECK_LEN);
    jc__pg_p_int8(&p, row->key_format);
    int rc = jc__pg_exec(pg, "storing an entry",
                         "INSERT INTO entries (key, function, version, args, result, args_size, result_size,"
                         " created, last_used, compute_seconds, hits, result_check, code_fp, key_format)"
                         " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                         " ON CONFLICT (key) DO UPDATE SET function = excluded.function,"
                         " version = excluded.version, args = excluded.args, result = excluded.result,"
                         " args_size = excluded.args_size, result_size = excluded.result_size,"
                         " created = excluded.created, last_used = excluded.last_used,"
                         " compute_seconds = excluded.compute_seconds, hits = excluded.hits,"
                         " result_check = excluded.result_check, code_fp = excluded.code_fp,"
                         " key_format = excluded.key_format",
                         &p, NULL);
    if (rc)
        return rc;
    jc__pg_params k = {0};
    jc__pg_p_bytes(&k, row->key, JC__KEY_LEN);
    return jc__pg_exec(pg, "removing the parts of a replaced result", "DELETE FROM chunks WHERE key = $1", &k, NULL);
}

/* A row with parts: the parts are stored only by jc__pg_put (entries.c:
 * chunking, compression, the result_size that counts them, the old
 * chunks of a replaced entry), so it writes the entry, and an UPDATE then
 * gives it the row's own metadata, which a put takes from the present
 * (created, last_used), keeps (hits) or sets (key_format). */
static int put_row_parts(jc__pg *pg, const jc__row *row)
{
    jc__entry_in e = {
        .key = row->key,
        .function = row->function,
        .version = row->version,
        .args = row->args ? row->args : "",
        .args_len = row->args_len,
        .result = row->result ? row->result : "",
        .result_len = row->result_len,
        .compute_seconds = row->compute_seconds,
        .now = row->created,
        .code_fp = row->code_fp_len == JC__CHECK_LEN ? row->code_fp : NULL,
        .pieces = row->parts,
        .npieces = row->nparts,
        .check = row->parts_check,
        .compress_level = row->compress_level,
    };
    int rc = jc__pg_put(pg, &e);
    int64_t updated = 0;
    if (!rc) {
        jc__pg_params p = {0};
        jc__pg_p_bytes(&p, row->key, JC__KEY_LEN);
        jc__pg_p_float8(&p, row->created);
        jc__pg_p_float8(&p, row->last_used);
        jc__pg_p_int8(&p, row->hits);
        jc__pg_p_bytes(&p, e.code_fp, JC__CHECK_LEN);
        jc__pg_p_int8(&p, row->key_format);
        rc = jc__pg_exec(pg, "storing an entry's metadata",
                         "UPDATE entries SET created = $2, last_used = $3, hits = $4, code_fp = $5,"
                         " key_format = $6 WHERE key = $1",
                         &p, &updated);
    }
    if (!rc && updated != 1)
        rc = jc__set_error(JC_EIO, "cache '%s': storing an entry: the entry just written is not there", pg->name);
    return rc;
}

/* A row written all or nothing, as the SQLite store's savepoint guard
 * makes it: in a transaction of its own (the chunks' removal must hold the
 * entry's row lock from the upsert on), or inside the caller's under a
 * savepoint, so that a failure leaves the entry it replaces whole and the
 * caller's transaction going: a failed statement dooms it (jc__pg_query),
 * and back at the savepoint it is sound again, as jc__pg_put does for its
 * own. */
static int put_row_guarded(jc__pg *pg, const jc__row *row)
{
    int rc;
    if (pg->depth == 0) {
        if ((rc = jc__pg_begin(pg)) != 0)
            return rc;
        rc = row->nparts ? put_row_parts(pg, row) : put_row_whole(pg, row);
        if (rc) {
            jc__pg_rollback(pg);
            return rc;
        }
        return jc__pg_commit(pg);
    }
    bool doomed = pg->doomed;
    if ((rc = jc__pg_exec(pg, "storing an entry", "SAVEPOINT jc_put_row", NULL, NULL)) != 0)
        return rc;
    rc = row->nparts ? put_row_parts(pg, row) : put_row_whole(pg, row);
    if (!rc)
        return jc__pg_exec(pg, "storing an entry", "RELEASE SAVEPOINT jc_put_row", NULL, NULL);
    /* The code returned is the write's (the way back fails only with the
     * connection, whose message then replaces the write's). */
    if (jc__pg_exec(pg, "storing an entry", "ROLLBACK TO SAVEPOINT jc_put_row", NULL, NULL) == 0 &&
        jc__pg_exec(pg, "storing an entry", "RELEASE SAVEPOINT jc_put_row", NULL, NULL) == 0)
        pg->doomed = doomed;
    return rc;
}

int jc__pg_put_row(jc__pg *pg, const jc__row *row)
{
    int rc = jc__pg_enter_write(pg, "cannot store an entry");
    if (rc)
        return rc;
    if (!row || row->key_len != JC__KEY_LEN || !row->function || !row->version || (!row->args && row->args_len) ||
        (!row->result && row->result_len))
        return jc__set_error(JC_EINVAL, "cache '%s': storing an incomplete entry", pg->name);
    if (row->nparts && (!row->parts || !row->parts_check))
        return jc__set_error(JC_EINVAL, "cache '%s': storing a result in pieces without its parts", pg->name);
    /* row may point into this handle's own last result (a row read here,
     * written back): held apart until the end, so that a call below that
     * keeps a result of its own cannot free what is being written. */
    PGresult *held = pg->res;
    pg->res = NULL;
    rc = put_row_guarded(pg, row);
    PQclear(held);
    return rc;
}

int jc__pg_delete_rowid(jc__pg *pg, int64_t rowid)
{
    int rc = jc__pg_enter_write(pg, "cannot remove an entry");
    if (rc)
        return rc;
    /* Its chunks go with it (ON DELETE CASCADE). */
    jc__pg_params p = {0};
    jc__pg_p_int8(&p, rowid);
    int64_t n = 0;
    rc = jc__pg_exec(pg, "removing an entry", "DELETE FROM entries WHERE id = $1", &p, &n);
    return rc ? rc : n > 0;
}

/* ---- listing in pages ----
 *
 * As in the SQLite store (store/sqlite/list.c): each page is its own
 * statement that continues after the sort key of the last entry of the
 * page before (keyset pagination), so that no cursor, portal or
 * transaction stays open between pages and memory is bounded by a page.
 * In id and key order a page is a range of a unique index; in the others
 * (no index) each page is one pass that keeps the first page-many entries
 * after the cursor (a top-N sort). Pages grow from a few hundred entries to
 * PAGE_MAX.
 *
 * Each order is a list of sort columns whose last is unique (id, or the
 * key, which is unique itself), so the order is total and the listing
 * always moves forward. The cursor is the last entry's sort columns as
 * the server sent them, binary, sent back as parameters of the same types:
 * the comparison in the next page is exactly ORDER BY's. Text sorts by
 * bytes (COLLATE "C"), as SQLite's BINARY does, whatever the database's
 * collation. */
enum { PAGE_FIRST = 256, PAGE_INDEXED = 4096, PAGE_MAX = 65536, SORT_COLS_MAX = 4 };

static const char *const sort_cols[JC__ORDER_COUNT][SORT_COLS_MAX] = {
    [JC__ORDER_ROWID] = {"id"},
    [JC__ORDER_NAME] = {"function COLLATE \"C\"", "version COLLATE \"C\"", "created", "id"},
    [JC__ORDER_USED] = {"last_used", "id"},
    /* numeric: a hostile row's sizes cannot make the sum overflow. */
    [JC__ORDER_SIZE] = {"(args_size::numeric + result_size)", "id"},
    [JC__ORDER_TIME] = {"compute_seconds", "id"},
    [JC__ORDER_HITS] = {"hits", "id"},
    [JC__ORDER_CREATED] = {"created", "id"},
    [JC__ORDER_KEY] = {"key"},
};
/* Orders whose natural direction is descending (largest, newest first). */
static const bool sort_desc[JC__ORDER_COUNT] = {
    [JC__ORDER_USED] = true, [JC__ORDER_SIZE] = true, [JC__ORDER_TIME] = true,
    [JC__ORDER_HITS] = true, [JC__ORDER_CREATED] = true,
};

struct jc__pg_pager {
    jc__pager base; /* first: the front dispatches on it (store_int.h) */
    jc__pg *pg;
    jc__select q;
    char *function, *version; /* q's strings, copied */
    int ncols;
    /* The cursor: the sort columns of the last entry returned. */
    char *last[SORT_COLS_MAX];
    int last_len[SORT_COLS_MAX];
    Oid last_type[SORT_COLS_MAX];
    bool last_null[SORT_COLS_MAX];
    bool started, done;
    int64_t left; /* entries the limit still allows; -1 = no limit */
    size_t page;  /* rows in the next page */
    int64_t *ids;
    size_t cap;
};

int jc__pg_pager_new(jc__pg *pg, const jc__select *q, jc__pg_pager **out)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (!q || !out || q->order < 0 || q->order >= JC__ORDER_COUNT || q->limit < 0)
        return jc__set_error(JC_EINVAL, "cache '%s': invalid selection of entries", pg->name);
    *out = NULL;
    jc__pg_pager *p = calloc(1, sizeof *p);
    if (!p)
        return jc__set_error(JC_ENOMEM, "out of memory listing entries");
    p->base.store = &pg->base;
    p->pg = pg;
    p->q = *q;
    p->function = q->function ? jc__strdup(q->function) : NULL;
    p->version = q->version ? jc__strdup(q->version) : NULL;
    if ((q->function && !p->function) || (q->version && !p->version)) {
        jc__pg_pager_free(p);
        return jc__set_error(JC_ENOMEM, "out of memory listing entries");
    }
    p->q.function = p->function;
    p->q.version = p->version;
    while (p->ncols < SORT_COLS_MAX && sort_cols[q->order][p->ncols])
        p->ncols++;
    p->left = q->limit > 0 ? q->limit : -1;
    p->page = q->order == JC__ORDER_ROWID || q->order == JC__ORDER_KEY ? PAGE_INDEXED : PAGE_FIRST;
    *out = p;
    return 0;
}

void jc__pg_pager_free(jc__pg_pager *p)
{
    if (!p)
        return;
    for (int i = 0; i < SORT_COLS_MAX; i++)
        free(p->last[i]);
    free(p->function);
    free(p->version);
    free(p->ids);
    free(p);
}

/* Statement text, from constant fragments only. */
typedef struct sql_text {
    char s[2048];
    size_t len;
    bool over;
} sql_text;

static void add(sql_text *t, const char *fmt, ...) JC__PRINTF(2, 3);
static void add(sql_text *t, const char *fmt, ...)
{
    if (t->over)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->s + t->len, sizeof t->s - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof t->s - t->len)
        t->over = true;
    else
        t->len += (size_t)n;
}

/* "SELECT id, <cols> FROM entries WHERE <filter> [AND (<cols>) > ($7,
 * ...)] ORDER BY <cols> LIMIT $6" (< and DESC when descending). */
static void page_sql(const jc__pg_pager *p, sql_text *t)
{
    const char *const *cols = sort_cols[p->q.order];
    bool desc = sort_desc[p->q.order] != p->q.reverse;
    add(t, "SELECT id");
    for (int i = 0; i < p->ncols; i++)
        add(t, ", %s", cols[i]);
    add(t, " FROM entries WHERE %s", FILTER_SQL);
    if (p->started) {
        add(t, " AND (");
        for (int i = 0; i < p->ncols; i++)
            add(t, "%s%s", i ? ", " : "", cols[i]);
        add(t, ") %s (", desc ? "<" : ">");
        for (int i = 0; i < p->ncols; i++)
            add(t, "%s$%d", i ? ", " : "", FILTER_PARAMS + 2 + i);
        add(t, ")");
    }
    add(t, " ORDER BY ");
    for (int i = 0; i < p->ncols; i++)
        add(t, "%s%s%s", i ? ", " : "", cols[i], desc ? " DESC" : "");
    add(t, " LIMIT $%d", FILTER_PARAMS + 1);
}

/* Keeps the sort columns of r's row i as the cursor. */
static int keep_cursor(jc__pg_pager *p, const PGresult *r, int i)
{
    for (int k = 0; k < p->ncols; k++) {
        int col = 1 + k;
        int len = PQgetlength(r, i, col);
        char *v = malloc(len > 0 ? (size_t)len : 1);
        if (!v)
            return jc__set_error(JC_ENOMEM, "out of memory listing entries");
        if (len > 0)
            memcpy(v, PQgetvalue(r, i, col), (size_t)len);
        free(p->last[k]);
        p->last[k] = v;
        p->last_len[k] = len;
        p->last_type[k] = PQftype(r, col);
        p->last_null[k] = PQgetisnull(r, i, col) != 0;
    }
    p->started = true;
    return 0;
}

int jc__pg_pager_next(jc__pg_pager *p, const int64_t **rowids, size_t *n)
{
    *rowids = NULL;
    *n = 0;
    if (!jc__pg_usable(p->pg))
        return JC_EINVAL;
    if (p->done || p->left == 0)
        return 0;
    size_t want = p->page;
    if (p->left > 0 && (uint64_t)p->left < want)
        want = (size_t)p->left;
    if (JC__GROW(p->ids, p->cap, want))
        return jc__set_error(JC_ENOMEM, "out of memory listing entries");
    sql_text t = {.len = 0};
    page_sql(p, &t);
    if (t.over)
        return jc__set_error(JC_EINVAL, "cache '%s': listing entries: the statement is too long", p->pg->name);
    jc__pg_params prm = {0};
    p_filter(&prm, &p->q);
    jc__pg_p_int8(&prm, (int64_t)want);
    for (int k = 0; p->started && k < p->ncols; k++) {
        /* Sent as it came: binary, of the column's own type. */
        jc__pg_p_bytes(&prm, p->last_null[k] ? NULL : p->last[k], (size_t)p->last_len[k]);
        if (prm.n > 0 && !prm.failed)
            prm.types[prm.n - 1] = p->last_type[k];
    }
    PGresult *r = NULL;
    int rc = jc__pg_query(p->pg, "listing entries", t.s, &prm, &r);
    if (rc)
        return rc;
    size_t got = (size_t)PQntuples(r);
    if (got > want)
        got = want;
    for (size_t i = 0; i < got; i++)
        p->ids[i] = jc__pg_int8(r, (int)i, 0);
    if (got == want)
        rc = keep_cursor(p, r, (int)got - 1); /* the last row of a full page */
    PQclear(r);
    if (rc)
        return rc;
    if (got < want)
        p->done = true; /* a short page is the last */
    if (p->left > 0)
        p->left -= (int64_t)got;
    if (p->page < PAGE_MAX)
        p->page *= 2;
    *rowids = p->ids;
    *n = got;
    return 0;
}

/* ---- bulk removal ----
 *
 * Each removal is one statement: a DELETE ... RETURNING the sizes of what
 * it removed, summed by the SELECT around it, so the count and the removal
 * see the same entries even outside a transaction. Chunks go with their
 * entries (ON DELETE CASCADE). Times later than now count as now (the
 * clamped last_used), with one now for the whole statement where rows are
 * ranked by it. */

#define REMOVED_SQL "SELECT count(*)::bigint, " CLAMP_INT8("coalesce(sum(args_size::numeric + result_size), 0)") \
                    " FROM gone"

/* Runs a removal whose one row is (count, bytes). */
static int remove_by(jc__pg *pg, const char *sql, const jc__pg_params *p, const char *what, int64_t *count,
                     int64_t *bytes)
{
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, what, sql, p, &r);
    if (count)
        *count = rc ? 0 : jc__pg_int8(r, 0, 0);
    if (bytes)
        *bytes = rc ? 0 : jc__pg_int8(r, 0, 1);
    PQclear(r);
    return rc;
}

int jc__pg_remove(jc__pg *pg, const jc__select *q, int64_t *count, int64_t *bytes)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (!q)
        return jc__set_error(JC_EINVAL, "cache '%s': removing entries with a NULL filter", pg->name);
    int rc = jc__pg_enter_write(pg, "cannot remove entries");
    if (rc)
        return rc;
    jc__pg_params p = {0};
    p_filter(&p, q);
    return remove_by(pg,
                     "WITH gone AS (DELETE FROM entries WHERE " FILTER_SQL " RETURNING args_size, result_size) "
                     REMOVED_SQL,
                     &p, "removing entries", count, bytes);
}

int jc__pg_remove_stale(jc__pg *pg, int64_t *count, int64_t *bytes)
{
    int rc = jc__pg_enter_write(pg, "cannot remove entries");
    if (rc)
        return rc;
    /* For each function, its versions ranked by when they were last used
     * (after rolling back to v1, v1 is the one in use, though v2 was
     * stored last), then by the last written, then by the greatest version
     * (by bytes, as SQLite compares); all but the first go. */
    return remove_by(pg,
                     "WITH t AS MATERIALIZED (SELECT " JC__PG_NOW " AS now),"
                     " keep AS (SELECT function, version FROM (SELECT function, version,"
                     " row_number() OVER (PARTITION BY function ORDER BY max(least(last_used, t.now)) DESC,"
                     " max(id) DESC, version COLLATE \"C\" DESC) AS r"
                     " FROM entries, t GROUP BY function, version) AS ranked WHERE r = 1),"
                     " gone AS (DELETE FROM entries e WHERE NOT EXISTS (SELECT 1 FROM keep k"
                     " WHERE k.function = e.function AND k.version = e.version)"
                     " RETURNING e.args_size, e.result_size) " REMOVED_SQL,
                     NULL, "removing stale versions", count, bytes);
}

int jc__pg_remove_lru(jc__pg *pg, int64_t keep_entries, int64_t keep_bytes, int64_t *count, int64_t *bytes)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (keep_entries < 0 || keep_bytes < 0)
        return jc__set_error(JC_EINVAL, "cache '%s': negative bound for eviction", pg->name);
    if (!keep_entries && !keep_bytes) {
        if (count)
            *count = 0;
        if (bytes)
            *bytes = 0;
        return 0;
    }
    int rc = jc__pg_enter_write(pg, "cannot remove entries");
    if (rc)
        return rc;
    /* Walking from the most recently used entry, n counts entries and cum
     * their bytes; whatever lies beyond either bound goes. As sizes are not
     * negative, what stays is the longest most recently used run that
     * fits: what removing the least recently used one at a time until both
     * bounds hold leaves. */
    jc__pg_params p = {0};
    jc__pg_p_int8(&p, keep_entries);
    jc__pg_p_int8(&p, keep_bytes);
    return remove_by(pg,
                     "WITH t AS MATERIALIZED (SELECT " JC__PG_NOW " AS now),"
                     " ranked AS (SELECT id, row_number() OVER w AS n,"
                     " sum(args_size::numeric + result_size) OVER w AS cum FROM entries, t"
                     " WINDOW w AS (ORDER BY least(last_used, t.now) DESC, id DESC"
                     " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)),"
                     " gone AS (DELETE FROM entries e USING ranked r WHERE e.id = r.id"
                     " AND (($1 > 0 AND r.n > $1) OR ($2 > 0 AND r.cum > $2))"
                     " RETURNING e.args_size, e.result_size) " REMOVED_SQL,
                     &p, "removing least recently used entries", count, bytes);
}

/* ---- times and counts ---- */

int jc__pg_clamp_future(jc__pg *pg, int64_t *count)
{
    int rc = jc__pg_enter_write(pg, "cannot clamp times later than now");
    if (rc)
        return rc;
    /* A time later than now was written under a clock that was ahead:
     * when the entry was really made is unknown, but not after the entries
     * written after it with a sane clock (ids follow the order of
     * writing). The earliest of their creation times, or now, so that such
     * an entry never looks newer than what was written after it (issue 23).
     * The window carrying that minimum (newest id first) runs only over the
     * ids from the first entry with such a time on: a cache without any
     * costs one pass that finds none, as the SQLite store's EXISTS does,
     * and it is one statement. One now for all of it. */
    int64_t n = 0;
    rc = jc__pg_exec(pg, "clamping times later than now",
                     "WITH t AS MATERIALIZED (SELECT " JC__PG_NOW " AS now),"
                     " first AS (SELECT min(id) AS id FROM entries, t"
                     " WHERE created > t.now OR last_used > t.now),"
                     " w AS (SELECT e.id, e.created, e.last_used, coalesce(min(CASE WHEN e.created <= t.now"
                     " THEN e.created END) OVER (ORDER BY e.id DESC ROWS BETWEEN UNBOUNDED PRECEDING"
                     " AND 1 PRECEDING), t.now) AS bound FROM entries e, t, first WHERE e.id >= first.id),"
                     " c AS (SELECT w.id, CASE WHEN w.created > t.now THEN least(t.now, w.bound)"
                     " ELSE w.created END AS created, least(t.now, w.bound) AS bound, w.last_used, t.now"
                     " FROM w, t WHERE w.created > t.now OR w.last_used > t.now)"
                     " UPDATE entries SET created = c.created, last_used = CASE WHEN c.last_used > c.now"
                     " THEN greatest(c.created, c.bound) ELSE c.last_used END FROM c WHERE entries.id = c.id",
                     NULL, &n);
    if (!rc && count)
        *count = n;
    return rc;
}

int jc__pg_zero_hits(jc__pg *pg, int64_t *count)
{
    int rc = jc__pg_enter_write(pg, "cannot zero the hit counts");
    if (rc)
        return rc;
    /* One statement: the counts, the hits of the hit log not folded yet,
     * and the counts of evictions (meta stats.evicted, cache/size.c) go
     * together. The command's count is the UPDATE's: entries that had
     * hits. */
    int64_t n = 0;
    rc = jc__pg_exec(pg, "zeroing the hit counts",
                     "WITH log AS (DELETE FROM hit_log),"
                     " evictions AS (DELETE FROM meta WHERE name IN ('stats.evicted', 'stats.evicted-bytes'))"
                     " UPDATE entries SET hits = 0 WHERE hits <> 0",
                     NULL, &n);
    if (!rc && count)
        *count = n;
    return rc;
}

/* ---- figures by function and version ---- */

int jc__pg_groups(jc__pg *pg, int (*fn)(void *ctx, const jc__group *g), void *ctx)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (!fn)
        return jc__set_error(JC_EINVAL, "cache '%s': NULL callback for groups", pg->name);
    /* One statement, so one snapshot; names in byte order, as SQLite's. */
    jc__pg_params p = {0};
    jc__pg_p_int8(&p, JC_KEY_FORMAT_VERSION);
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, "summing up entries",
                          "SELECT function, version, count(*)::bigint, " CLAMP_INT8("sum(args_size)") ","
                          " " CLAMP_INT8("sum(result_size)") ", " CLAMP_INT8("sum(hits)") ","
                          " sum(compute_seconds)::float8, sum(hits * compute_seconds)::float8,"
                          " min(" JC__PG_CREATED ")::float8, max(" JC__PG_CREATED ")::float8,"
                          " max(" JC__PG_USED ")::float8, count(DISTINCT code_fp)::bigint,"
                          " (count(*) FILTER (WHERE key_format IS DISTINCT FROM $1))::bigint"
                          " FROM entries GROUP BY function, version"
                          " ORDER BY function COLLATE \"C\", version COLLATE \"C\"",
                          &p, &r);
    if (rc)
        return rc;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && !rc; i++) {
        jc__group g = {
            .function = jc__pg_text(r, i, 0),
            .version = jc__pg_text(r, i, 1),
            .entries = jc__pg_int8(r, i, 2),
            .args_bytes = jc__pg_int8(r, i, 3),
            .result_bytes = jc__pg_int8(r, i, 4),
            .hits = jc__pg_int8(r, i, 5),
            .compute_seconds = jc__pg_float8(r, i, 6),
            .saved_seconds = jc__pg_float8(r, i, 7),
            .oldest = jc__pg_float8(r, i, 8),
            .newest = jc__pg_float8(r, i, 9),
            .last_used = jc__pg_float8(r, i, 10),
            .code_fingerprints = jc__pg_int8(r, i, 11),
            .other_formats = jc__pg_int8(r, i, 12),
        };
        rc = fn(ctx, &g);
    }
    PQclear(r);
    return rc;
}
