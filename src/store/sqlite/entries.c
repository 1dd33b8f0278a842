/*
 * Storing, reading and removing single entries, and parameter names.
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

/* Binds a blob that stays a BLOB when empty: a zero-length blob bound from
 * a NULL pointer would be stored as NULL and violate NOT NULL. */
static int bind_bytes(sqlite3_stmt *s, int i, const void *p, size_t n)
{
    if (n == 0)
        return sqlite3_bind_zeroblob(s, i, 0);
    return sqlite3_bind_blob64(s, i, p, n, SQLITE_STATIC);
}

/* Binds text to parameter i unless *bound (the text bound there before)
 * equals it; *bound then holds a copy (NULL when unknown: bound again next
 * time). */
static int bind_same_text(sqlite3_stmt *s, int i, char **bound, const char *text)
{
    if (*bound && strcmp(*bound, text) == 0)
        return SQLITE_OK;
    free(*bound);
    *bound = NULL;
    int rc = sqlite3_bind_text(s, i, text, -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK)
        *bound = strdup(text); /* out of memory: NULL, bound again next time */
    return rc;
}

/* Binds e to the insert (st->put); returns SQLite's first failure. The
 * function's name, version and code fingerprint stay bound from the entry
 * before when they are the same. */
static int bind_entry(jc__sqlite *st, const jc__entry_in *e, const uint8_t check[JC__CHECK_LEN])
{
    sqlite3_stmt *s = st->put;
    int rc = sqlite3_bind_blob(s, 1, e->key, JC__KEY_LEN, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = bind_same_text(s, 2, &st->put_function, e->function);
    if (rc == SQLITE_OK)
        rc = bind_same_text(s, 3, &st->put_version, e->version);
    if (rc == SQLITE_OK)
        rc = bind_bytes(s, 4, e->args, e->args_len);
    if (rc == SQLITE_OK)
        rc = bind_bytes(s, 5, e->result, e->result_len);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 6, (sqlite3_int64)e->args_len);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 7, (sqlite3_int64)e->result_len);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(s, 8, e->now);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(s, 9, e->compute_seconds);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(s, 10, check, JC__CHECK_LEN, SQLITE_STATIC);
    if (rc == SQLITE_OK && e->code_fp &&
        (st->put_fp_bound != 2 || memcmp(st->put_fp, e->code_fp, JC__CHECK_LEN) != 0)) {
        st->put_fp_bound = 0;
        rc = sqlite3_bind_blob(s, 11, e->code_fp, JC__CHECK_LEN, SQLITE_TRANSIENT);
        if (rc == SQLITE_OK) {
            memcpy(st->put_fp, e->code_fp, JC__CHECK_LEN);
            st->put_fp_bound = 2;
        }
    } else if (rc == SQLITE_OK && !e->code_fp && st->put_fp_bound != 1) {
        st->put_fp_bound = 0;
        rc = sqlite3_bind_null(s, 11);
        if (rc == SQLITE_OK)
            st->put_fp_bound = 1;
    }
    return rc;
}

int jc__sqlite_put(jc__sqlite *st, const jc__entry_in *e)
{
    int rc = jc__sq_store_enter_write(st, "store an entry");
    if (rc)
        return rc;
    if (!e || !e->key || !e->function || !e->version || (!e->args && e->args_len) ||
        (!e->result && e->result_len))
        return jc__set_error(JC_EINVAL, "cache file '%s': storing an incomplete entry", st->path);
    if (e->npieces && (!e->pieces || !e->check))
        return jc__set_error(JC_EINVAL, "cache file '%s': storing a result in pieces without its parts", st->path);
    if (e->npieces && st->schema < 11)
        return jc__set_error(JC_EINVAL, "cache file '%s': schema %d has no room for results in pieces", st->path,
                             st->schema);
    uint8_t check[JC__CHECK_LEN];
    if (e->check)
        memcpy(check, e->check, JC__CHECK_LEN);
    else
        jc__result_check(e->result, e->result_len, check);
    /* A replaced entry's parts go first, then the row, then its parts: all
     * or nothing (a savepoint), so that a failure in between leaves the
     * entry it replaces whole. Without chunks it is one statement. */
    bool guard = e->npieces || jc__sq_chunks_any(st);
    if (guard && (rc = jc__sq_guard(st, 0)) != 0)
        return rc;
    rc = jc__sq_chunks_drop_key(st, e->key);
    if (rc)
        return guard ? jc__sq_guard(st, rc) : rc;
    rc = bind_entry(st, e, check);
    if (rc == SQLITE_OK) {
        rc = jc__sq_step_done(st, st->put, "storing an entry");
        int64_t stored = 0;
        if (!rc && e->npieces)
            rc = jc__sqlite_put_pieces(st, e->key, e->pieces, e->npieces, e->compress_level, &stored);
        if (!rc && e->npieces)
            rc = jc__sq_set_result_size(st, e->key, (int64_t)e->result_len + stored);
        return guard ? jc__sq_guard(st, rc) : rc;
    }
    if ((rc & 0xff) == SQLITE_TOOBIG)
        rc = jc__set_error(JC_EINVAL,
                           "cache file '%s': cannot store an entry of %s with %zu bytes of "
                           "arguments and %zu bytes of result: SQLite stores at most %d bytes "
                           "in one value",
                           st->path, e->function, e->args_len, e->result_len,
                           sqlite3_limit(st->db, SQLITE_LIMIT_LENGTH, -1));
    else
        rc = jc__sq_store_error(st, rc, "storing an entry");
    sqlite3_reset(st->put);
    return guard ? jc__sq_guard(st, rc) : rc;
}


int jc__sqlite_params_put(jc__sqlite *st, const char *function, const char *version, const char *names)
{
    int rc = jc__sq_store_enter_write(st, "record parameter names");
    if (rc)
        return rc;
    if (!function || !version || !names)
        return jc__set_error(JC_EINVAL, "cache file '%s': recording incomplete parameter names", st->path);
    /* Written only when new or changed: storing results of a function
     * with names costs a lookup, not a write. */
    rc = jc__sq_lazy(st, &st->params_put,
              "INSERT INTO params (function, version, names) VALUES (?1, ?2, ?3)"
              " ON CONFLICT (function, version) DO UPDATE SET names = excluded.names"
              " WHERE names IS NOT excluded.names");
    if (rc)
        return rc;
    sqlite3_bind_text(st->params_put, 1, function, -1, SQLITE_STATIC);
    sqlite3_bind_text(st->params_put, 2, version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st->params_put, 3, names, -1, SQLITE_STATIC);
    rc = jc__sq_step_done(st, st->params_put, "recording parameter names");
    sqlite3_clear_bindings(st->params_put);
    return rc;
}

int jc__sqlite_params_get(jc__sqlite *st, const char *function, const char *version, char **names)
{
    *names = NULL;
    int rc = jc__sq_store_enter(st);
    if (rc || st->schema < 6)
        return rc;
    if (!function || !version)
        return jc__set_error(JC_EINVAL, "cache file '%s': parameter names of a NULL function", st->path);
    rc = jc__sq_lazy(st, &st->params_get, "SELECT names FROM params WHERE function = ?1 AND version = ?2");
    if (rc)
        return rc;
    sqlite3_stmt *s = st->params_get;
    sqlite3_bind_text(s, 1, function, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, version, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        *names = jc__strdup(t ? t : "");
        rc = *names ? 1 : jc__set_error(JC_ENOMEM, "out of memory reading parameter names");
    } else if (step != SQLITE_DONE) {
        rc = jc__sq_store_error(st, step, "reading parameter names");
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

int jc__sqlite_delete(jc__sqlite *st, const uint8_t key[JC__KEY_LEN])
{
    int rc = jc__sq_store_enter_write(st, "remove an entry");
    if (rc)
        return rc;
    if (!key)
        return jc__set_error(JC_EINVAL, "cache file '%s': removing a NULL key", st->path);
    if ((rc = jc__sq_chunks_drop_key(st, key)) != 0)
        return rc;
    sqlite3_bind_blob(st->del, 1, key, JC__KEY_LEN, SQLITE_STATIC);
    rc = jc__sq_step_done(st, st->del, "removing an entry");
    return rc ? rc : sqlite3_changes(st->db) > 0;
}

/* ---- inspecting and tending (store.h) ---- */

/* The metadata columns of a row, then (schema 2) its checksum and code
 * fingerprint, then, when asked for, its blobs. */
#define ROW_COLUMNS                                                                                \
    "rowid, key, function, version, args_size, result_size, created, last_used,"                   \
    " compute_seconds, hits"
enum { COL_CHECK = 10, COL_KEY_FORMAT = 12, COL_BLOBS = 13 };

/* "SELECT <row columns> [, args, result] FROM entries WHERE <where>" for
 * this file's schema, into buf. */
static const char *row_sql(const jc__sqlite *st, bool blobs, const char *where, char *buf, size_t cap)
{
    snprintf(buf, cap, "SELECT " ROW_COLUMNS ", %s, %s%s FROM entries WHERE %s", jc__sq_v2_columns(st),
             jc__sq_key_format_column(st), blobs ? ", args, result" : "", where);
    return buf;
}

/* Grows st->rowbuf to n bytes. */
static int reserve_rowbuf(jc__sqlite *st, size_t n)
{
    if (n <= st->rowbuf_cap)
        return 0;
    char *nb = realloc(st->rowbuf, n);
    if (!nb)
        return jc__set_error(JC_ENOMEM, "cache file '%s': out of memory reading a %zu-byte entry",
                             st->path, n);
    st->rowbuf = nb;
    st->rowbuf_cap = n;
    return 0;
}

/* Copies the row under s into *row; strings and blobs go into st->rowbuf.
 * Nothing read from the file is trusted: every length is SQLite's. */
static int fill_row(jc__sqlite *st, sqlite3_stmt *s, bool blobs, jc__row *row)
{
    const void *key = sqlite3_column_blob(s, 1);
    size_t key_len = (size_t)sqlite3_column_bytes(s, 1);
    const char *fn = (const char *)sqlite3_column_text(s, 2);
    size_t fn_len = fn ? (size_t)sqlite3_column_bytes(s, 2) : 0;
    const char *ver = (const char *)sqlite3_column_text(s, 3);
    size_t ver_len = ver ? (size_t)sqlite3_column_bytes(s, 3) : 0;
    const void *args = blobs ? sqlite3_column_blob(s, COL_BLOBS) : NULL;
    size_t args_len = args ? (size_t)sqlite3_column_bytes(s, COL_BLOBS) : 0;
    const void *res = blobs ? sqlite3_column_blob(s, COL_BLOBS + 1) : NULL;
    size_t res_len = res ? (size_t)sqlite3_column_bytes(s, COL_BLOBS + 1) : 0;

    int rc = reserve_rowbuf(st, fn_len + ver_len + args_len + res_len + 2);
    if (rc)
        return rc;
    char *p = st->rowbuf;
    memset(row, 0, sizeof *row);
    row->rowid = sqlite3_column_int64(s, 0);
    row->key_len = key_len;
    if (key)
        memcpy(row->key, key, key_len < JC__KEY_LEN ? key_len : JC__KEY_LEN);
    row->function = p;
    if (fn_len)
        memcpy(p, fn, fn_len);
    p[fn_len] = '\0';
    p += fn_len + 1;
    row->version = p;
    if (ver_len)
        memcpy(p, ver, ver_len);
    p[ver_len] = '\0';
    p += ver_len + 1;
    if (blobs) {
        row->args = p;
        row->args_len = args_len;
        if (args_len)
            memcpy(p, args, args_len);
        p += args_len;
        row->result = p;
        row->result_len = res_len;
        if (res_len)
            memcpy(p, res, res_len);
    }
    row->args_size = sqlite3_column_int64(s, 4);
    row->result_size = sqlite3_column_int64(s, 5);
    /* Times later than now count as now (see USED). */
    double now = jc__now();
    row->created = sqlite3_column_double(s, 6);
    row->last_used = sqlite3_column_double(s, 7);
    if (!(row->created <= now)) {
        row->created = now;
        row->created_future = true;
    }
    if (!(row->last_used <= now))
        row->last_used = now;
    row->compute_seconds = sqlite3_column_double(s, 8);
    row->hits = sqlite3_column_int64(s, 9);
    row->key_format = sqlite3_column_int64(s, COL_KEY_FORMAT);
    for (int k = 0; k < 2; k++) {
        int col = COL_CHECK + k;
        uint8_t *out = k ? row->code_fp : row->check;
        size_t n = sqlite3_column_type(s, col) == SQLITE_NULL ? 0 : (size_t)sqlite3_column_bytes(s, col);
        const void *blob = n ? sqlite3_column_blob(s, col) : NULL;
        if (!blob)
            n = 0;
        else
            memcpy(out, blob, n < JC__CHECK_LEN ? n : JC__CHECK_LEN);
        if (k)
            row->code_fp_len = n;
        else
            row->check_len = n;
    }
    return 0;
}

/* Steps s once: 1 and *row filled on a row, 0 on none; resets s. */
static int step_row(jc__sqlite *st, sqlite3_stmt *s, bool blobs, jc__row *row, const char *what)
{
    int rc = 0;
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        rc = fill_row(st, s, blobs, row);
        if (rc == 0)
            rc = 1;
    } else if (step != SQLITE_DONE) {
        rc = jc__sq_store_error(st, step, what);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

int jc__sqlite_row(jc__sqlite *st, int64_t rowid, bool blobs, jc__row *row)
{
    char sql[256];
    int rc = jc__sq_store_enter(st);
    if (!rc && !row)
        rc = jc__set_error(JC_EINVAL, "cache file '%s': reading an entry into NULL", st->path);
    if (!rc)
        rc = jc__sq_lazy(st, &st->row[blobs], row_sql(st, blobs, "rowid = ?1", sql, sizeof sql));
    if (rc)
        return rc;
    sqlite3_bind_int64(st->row[blobs], 1, rowid);
    return step_row(st, st->row[blobs], blobs, row, "reading an entry");
}

int jc__sqlite_row_by_key(jc__sqlite *st, const uint8_t key[JC__KEY_LEN], bool blobs, jc__row *row)
{
    char sql[256];
    int rc = jc__sq_store_enter(st);
    if (!rc && (!key || !row))
        rc = jc__set_error(JC_EINVAL, "cache file '%s': reading an entry with a NULL key or row",
                           st->path);
    if (!rc)
        rc = jc__sq_lazy(st, &st->row_key[blobs], row_sql(st, blobs, "key = ?1", sql, sizeof sql));
    if (rc)
        return rc;
    /* SQLITE_STATIC: key is only read before step_row resets. */
    sqlite3_bind_blob(st->row_key[blobs], 1, key, JC__KEY_LEN, SQLITE_STATIC);
    return step_row(st, st->row_key[blobs], blobs, row, "reading an entry");
}

int jc__sqlite_find_range(jc__sqlite *st, const uint8_t lo[JC__KEY_LEN], const uint8_t hi[JC__KEY_LEN],
                         jc__row *row)
{
    /* Keys compare as bytes (memcmp), so a hex prefix is a range of the
     * unique index: no scan of the table. */
    int rc = jc__sq_store_enter(st);
    if (!rc && (!lo || !hi || !row))
        rc = jc__set_error(JC_EINVAL, "cache file '%s': finding a key with NULL bounds", st->path);
    char sql[256];
    if (!rc)
        rc = jc__sq_lazy(st, &st->range,
                  row_sql(st, false, "key BETWEEN ?1 AND ?2 ORDER BY key LIMIT 2", sql, sizeof sql));
    if (rc)
        return rc;
    sqlite3_bind_blob(st->range, 1, lo, JC__KEY_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st->range, 2, hi, JC__KEY_LEN, SQLITE_STATIC);
    int found = 0;
    int step = sqlite3_step(st->range);
    if (step == SQLITE_ROW) {
        rc = fill_row(st, st->range, false, row);
        found = 1;
        if (!rc && (step = sqlite3_step(st->range)) == SQLITE_ROW)
            found = 2;
    }
    if (!rc && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = jc__sq_store_error(st, step, "finding an entry by key prefix");
    sqlite3_reset(st->range);
    sqlite3_clear_bindings(st->range);
    return rc ? rc : found;
}

int jc__sqlite_put_row(jc__sqlite *st, const jc__row *row)
{
    int rc = jc__sq_store_enter_write(st, "store an entry");
    if (!rc && (!row || row->key_len != JC__KEY_LEN || (!row->args && row->args_len) ||
                (!row->result && row->result_len)))
        rc = jc__set_error(JC_EINVAL, "cache file '%s': storing an incomplete entry", st->path);
    if (!rc)
        rc = jc__sq_lazy(st, &st->put_row,
                  "INSERT INTO entries (key, function, version, args, result, args_size,"
                  " result_size, created, last_used, compute_seconds, hits, result_check, code_fp,"
                  " key_format)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
                  " ON CONFLICT (key) DO UPDATE SET function = excluded.function,"
                  " version = excluded.version, args = excluded.args,"
                  " result = excluded.result, args_size = excluded.args_size,"
                  " result_size = excluded.result_size, created = excluded.created,"
                  " last_used = excluded.last_used,"
                  " compute_seconds = excluded.compute_seconds, hits = excluded.hits,"
                  " result_check = excluded.result_check, code_fp = excluded.code_fp,"
                  " key_format = excluded.key_format");
    if (rc)
        return rc;
    sqlite3_stmt *s = st->put_row;
    /* The sizes written are the blobs' own, whatever the source recorded. */
    int b = sqlite3_bind_blob(s, 1, row->key, JC__KEY_LEN, SQLITE_STATIC);
    if (b == SQLITE_OK)
        b = sqlite3_bind_text(s, 2, row->function, -1, SQLITE_STATIC);
    if (b == SQLITE_OK)
        b = sqlite3_bind_text(s, 3, row->version, -1, SQLITE_STATIC);
    if (b == SQLITE_OK)
        b = bind_bytes(s, 4, row->args, row->args_len);
    if (b == SQLITE_OK)
        b = bind_bytes(s, 5, row->result, row->result_len);
    if (b == SQLITE_OK)
        b = sqlite3_bind_int64(s, 6, (sqlite3_int64)row->args_len);
    if (b == SQLITE_OK)
        b = sqlite3_bind_int64(s, 7, (sqlite3_int64)row->result_len);
    if (b == SQLITE_OK)
        b = sqlite3_bind_double(s, 8, row->created);
    if (b == SQLITE_OK)
        b = sqlite3_bind_double(s, 9, row->last_used);
    if (b == SQLITE_OK)
        b = sqlite3_bind_double(s, 10, row->compute_seconds);
    if (b == SQLITE_OK)
        b = sqlite3_bind_int64(s, 11, row->hits);
    uint8_t check[JC__CHECK_LEN];
    if (row->nparts && row->parts_check)
        memcpy(check, row->parts_check, JC__CHECK_LEN);
    else
        jc__result_check(row->result, row->result_len, check);
    if (b == SQLITE_OK)
        b = sqlite3_bind_blob(s, 12, check, JC__CHECK_LEN, SQLITE_STATIC);
    if (b == SQLITE_OK)
        b = row->code_fp_len == JC__CHECK_LEN ? sqlite3_bind_blob(s, 13, row->code_fp, JC__CHECK_LEN, SQLITE_STATIC)
                                              : sqlite3_bind_null(s, 13);
    if (b == SQLITE_OK)
        b = sqlite3_bind_int64(s, 14, row->key_format);
    if (b == SQLITE_OK && row->nparts && (!row->parts || !row->parts_check || st->schema < 11)) {
        sqlite3_reset(s);
        return jc__set_error(JC_EINVAL, "cache file '%s': storing a result in pieces without its parts", st->path);
    }
    bool guard = b == SQLITE_OK && (row->nparts || jc__sq_chunks_any(st));
    if (guard && (rc = jc__sq_guard(st, 0)) != 0) {
        sqlite3_reset(s);
        return rc;
    }
    if (b == SQLITE_OK && (rc = jc__sq_chunks_drop_key(st, row->key)) != 0) {
        sqlite3_reset(s);
        return guard ? jc__sq_guard(st, rc) : rc;
    }
    if (b == SQLITE_OK) {
        rc = jc__sq_step_done(st, s, "storing an entry");
        int64_t stored = 0;
        if (!rc && row->nparts)
            rc = jc__sqlite_put_pieces(st, row->key, row->parts, row->nparts, row->compress_level, &stored);
        if (!rc && row->nparts)
            rc = jc__sq_set_result_size(st, row->key, (int64_t)row->result_len + stored);
        return guard ? jc__sq_guard(st, rc) : rc;
    }
    rc = jc__sq_store_error(st, b, "storing an entry");
    sqlite3_reset(s);
    return rc;
}

int jc__sqlite_delete_rowid(jc__sqlite *st, int64_t rowid)
{
    int rc = jc__sq_store_enter_write(st, "remove an entry");
    if (!rc)
        rc = jc__sq_chunks_drop_rowid(st, rowid);
    if (!rc)
        rc = jc__sq_lazy(st, &st->del_rowid, "DELETE FROM entries WHERE rowid = ?1");
    if (rc)
        return rc;
    sqlite3_bind_int64(st->del_rowid, 1, rowid);
    rc = jc__sq_step_done(st, st->del_rowid, "removing an entry");
    return rc ? rc : sqlite3_changes(st->db) > 0;
}
