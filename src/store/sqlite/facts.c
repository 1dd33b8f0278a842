/*
 * Figures of the whole file: groups by function and version, facts,
 * integrity.
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

int jc__sqlite_groups(jc__sqlite *st, int (*fn)(void *ctx, const jc__group *g), void *ctx)
{
    sqlite3_stmt *s = NULL;
    int rc = jc__sq_store_enter(st);
    if (rc)
        return rc;
    if (!fn)
        return jc__set_error(JC_EINVAL, "store: NULL callback for groups");
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT function, version, count(*), total(args_size), total(result_size),"
             " total(hits), total(compute_seconds), total(hits * compute_seconds),"
             " min(" CREATED "), max(" CREATED "), max(" USED "), %s, total(%s IS NOT " STR(JC_KEY_FORMAT_VERSION) ")"
             " FROM entries GROUP BY function, version ORDER BY function, version",
             st->schema >= 2 ? "count(DISTINCT code_fp)" : "0", jc__sq_key_format_column(st));
    rc = jc__sq_prepare(st, sql, &s);
    int step = SQLITE_DONE;
    while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
        const char *f = (const char *)sqlite3_column_text(s, 0);
        const char *v = (const char *)sqlite3_column_text(s, 1);
        jc__group g = {
            .function = f ? f : "",
            .version = v ? v : "",
            .entries = sqlite3_column_int64(s, 2),
            .args_bytes = jc__sq_clamp_int64(sqlite3_column_double(s, 3)),
            .result_bytes = jc__sq_clamp_int64(sqlite3_column_double(s, 4)),
            .hits = jc__sq_clamp_int64(sqlite3_column_double(s, 5)),
            .compute_seconds = sqlite3_column_double(s, 6),
            .saved_seconds = sqlite3_column_double(s, 7),
            .oldest = sqlite3_column_double(s, 8),
            .newest = sqlite3_column_double(s, 9),
            .last_used = sqlite3_column_double(s, 10),
            .code_fingerprints = sqlite3_column_int64(s, 11),
            .other_formats = jc__sq_clamp_int64(sqlite3_column_double(s, 12)),
        };
        rc = fn(ctx, &g);
    }
    if (!rc && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = jc__sq_store_error(st, step, "summing up entries");
    sqlite3_finalize(s);
    return rc;
}

int jc__sqlite_facts_get(jc__sqlite *st, jc__store_facts *out)
{
    sqlite3_stmt *s = NULL;
    int rc = jc__sq_store_enter(st);
    if (rc)
        return rc;
    if (!out)
        return jc__set_error(JC_EINVAL, "store: NULL facts");
    memset(out, 0, sizeof *out);
    rc = jc__sq_prepare(st,
                 "SELECT (SELECT user_version FROM pragma_user_version),"
                 " (SELECT page_count FROM pragma_page_count),"
                 " (SELECT page_size FROM pragma_page_size),"
                 " (SELECT freelist_count FROM pragma_freelist_count)",
                 &s);
    if (!rc) {
        int step = sqlite3_step(s);
        if (step == SQLITE_ROW) {
            int64_t page = sqlite3_column_int64(s, 2);
            out->schema_version = sqlite3_column_int64(s, 0);
            out->page_bytes = sqlite3_column_int64(s, 1) * page;
            out->free_bytes = sqlite3_column_int64(s, 3) * page;
        } else {
            rc = jc__sq_store_error(st, step == SQLITE_DONE ? SQLITE_CORRUPT : step, "reading the file");
        }
    }
    sqlite3_finalize(s);
    s = NULL;
    /* The meta table is informative: a file without it is still usable. */
    if (!rc && sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE name = 'key_format'", -1,
                                  &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        out->key_format = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    s = NULL;
    /* What max_size evicted, summed by the cache (absent: none). */
    if (!rc && sqlite3_prepare_v2(st->db,
                                  "SELECT (SELECT value FROM meta WHERE name = 'stats.evicted'),"
                                  " (SELECT value FROM meta WHERE name = 'stats.evicted-bytes')",
                                  -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        out->evicted_entries = sqlite3_column_int64(s, 0);
        out->evicted_bytes = sqlite3_column_int64(s, 1);
    }
    sqlite3_finalize(s);
    return rc;
}

int jc__sqlite_integrity(jc__sqlite *st, void (*fn)(void *ctx, const char *problem), void *ctx)
{
    sqlite3_stmt *s = NULL;
    int problems = 0;
    int rc = jc__sq_store_enter(st);
    if (rc)
        return rc;
    rc = jc__sq_prepare(st, "PRAGMA integrity_check(100)", &s);
    int step = SQLITE_DONE;
    while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
        const char *msg = (const char *)sqlite3_column_text(s, 0);
        if (msg && strcmp(msg, "ok") == 0)
            continue;
        problems++;
        if (fn)
            fn(ctx, msg ? msg : "(no message)");
    }
    if (!rc && step != SQLITE_DONE)
        rc = jc__sq_store_error(st, step, "checking the file's integrity");
    sqlite3_finalize(s);
    return rc ? rc : problems;
}
