/*
 * The hit log (schema 10): hits recorded as rows of sorted keys with their
 * counts, one row per flush, folded into the entries' hit counts and
 * last-used times later (store.h).
 */
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

#include "store/store.h"
#include "sqlite_int.h"

/* A file older than schema 10 (read as it is, read-only) has no log. */
static bool has_log(const jc__sqlite *st)
{
    return st->schema >= 10;
}

int jc__sqlite_hit_log_add(jc__sqlite *st, double at, int64_t hits, double saved, const void *blob, size_t len)
{
    int rc = jc__sq_store_enter_write(st, "record hits");
    if (rc || !len)
        return rc;
    if (!has_log(st))
        return jc__set_error(JC_EREADONLY, "cache file '%s' has schema %d, before the hit log", st->path,
                             st->schema);
    sqlite3_stmt *s = NULL;
    rc = jc__sq_prepare(st, "INSERT INTO hit_log (at, hits, saved, keys) VALUES (?1, ?2, ?3, ?4)", &s);
    if (rc)
        return rc;
    sqlite3_bind_double(s, 1, at);
    sqlite3_bind_int64(s, 2, hits);
    sqlite3_bind_double(s, 3, saved);
    sqlite3_bind_blob64(s, 4, blob, (sqlite3_uint64)len, SQLITE_STATIC);
    rc = jc__sq_step_done(st, s, "recording hits");
    sqlite3_finalize(s);
    return rc;
}

static int fold(jc__sqlite *st, int64_t *rows);

int jc__sqlite_hit_log_fold(jc__sqlite *st, int64_t *rows)
{
    if (rows)
        *rows = 0;
    int rc = jc__sq_store_enter_write(st, "fold the hit log");
    if (rc || !has_log(st))
        return rc;
    if (st->depth > 0) {
        /* Inside the caller's transaction, which may commit whatever this
         * returns (hit counts are bookkeeping): all of the fold or none of
         * it, else the rows not deleted would count again. */
        rc = jc__sq_run_sql(st, "SAVEPOINT jc_fold", "folding the hit log");
        if (rc)
            return rc;
        rc = fold(st, rows);
        if (rc)
            jc__sq_run_sql(st, "ROLLBACK TO jc_fold", "folding the hit log");
        int r2 = jc__sq_run_sql(st, "RELEASE jc_fold", "folding the hit log");
        return rc ? rc : r2;
    }
    /* Alone: a write transaction of its own from the start. Reading the log
     * and then writing in one deferred transaction could find another
     * process's commit in between, which no wait resolves. */
    rc = jc__sqlite_begin(st);
    if (rc)
        return rc;
    rc = fold(st, rows);
    if (rc) {
        jc__sqlite_rollback(st);
        return rc;
    }
    return jc__sqlite_commit(st);
}

static int fold(jc__sqlite *st, int64_t *rows)
{
    int rc = 0;
    sqlite3_stmt *q = NULL, *u = NULL;
    rc = jc__sq_prepare(st, "SELECT at, keys FROM hit_log ORDER BY id", &q);
    if (!rc)
        rc = jc__sq_prepare(st, "UPDATE entries SET hits = hits + ?1, last_used = max(last_used, ?2) WHERE key = ?3",
                            &u);
    int step;
    int64_t n = 0;
    while (!rc && (step = sqlite3_step(q)) == SQLITE_ROW) {
        double at = sqlite3_column_double(q, 0);
        const unsigned char *p = sqlite3_column_blob(q, 1);
        size_t len = (size_t)sqlite3_column_bytes(q, 1);
        n++;
        if (sqlite3_column_type(q, 1) != SQLITE_BLOB || len % JC__HIT_RECORD != 0)
            continue; /* damaged (a hostile file): dropped with the others below */
        for (size_t off = 0; !rc && off < len; off += JC__HIT_RECORD) {
            uint32_t count = (uint32_t)p[off + 16] | (uint32_t)p[off + 17] << 8 | (uint32_t)p[off + 18] << 16 |
                             (uint32_t)p[off + 19] << 24;
            sqlite3_bind_int64(u, 1, count);
            sqlite3_bind_double(u, 2, at);
            sqlite3_bind_blob(u, 3, p + off, JC__KEY_LEN, SQLITE_STATIC);
            rc = jc__sq_step_done(st, u, "folding the hit log");
        }
    }
    if (!rc && step != SQLITE_DONE)
        rc = jc__sq_store_error(st, step, "reading the hit log");
    sqlite3_finalize(q);
    sqlite3_finalize(u);
    if (!rc && n)
        rc = jc__sq_run_sql(st, "DELETE FROM hit_log", "emptying the hit log");
    if (!rc && rows)
        *rows = n;
    return rc;
}

int jc__sqlite_hit_log_pending(jc__sqlite *st, int64_t *rows, int64_t *hits, double *saved)
{
    *rows = *hits = 0;
    *saved = 0;
    int rc = jc__sq_store_enter(st);
    if (rc || !has_log(st))
        return rc;
    sqlite3_stmt *s = NULL;
    rc = jc__sq_prepare(st, "SELECT count(*), total(hits), total(saved) FROM hit_log", &s);
    if (rc)
        return rc;
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        *rows = sqlite3_column_int64(s, 0);
        *hits = jc__sq_clamp_int64(sqlite3_column_double(s, 1));
        double v = sqlite3_column_double(s, 2);
        *saved = v >= 0 && v < 1e300 ? v : 0;
    } else {
        rc = jc__sq_store_error(st, step, "reading the hit log");
    }
    sqlite3_finalize(s);
    return rc;
}

int jc__sqlite_hit_log_each(jc__sqlite *st, jc__hit_log_fn fn, void *ctx)
{
    int rc = jc__sq_store_enter(st);
    if (rc || !has_log(st))
        return rc;
    sqlite3_stmt *s = NULL;
    rc = jc__sq_prepare(st, "SELECT at, hits, saved, keys FROM hit_log ORDER BY id", &s);
    int step;
    while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(s, 3);
        if (sqlite3_column_type(s, 3) != SQLITE_BLOB || len % JC__HIT_RECORD != 0)
            continue;
        rc = fn(ctx, sqlite3_column_double(s, 0), sqlite3_column_int64(s, 1), sqlite3_column_double(s, 2),
                sqlite3_column_blob(s, 3), len);
    }
    if (!rc && step != SQLITE_DONE)
        rc = jc__sq_store_error(st, step, "reading the hit log");
    sqlite3_finalize(s);
    return rc;
}
