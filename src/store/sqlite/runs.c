/*
 * The record of runs: a row per run and its failures, bounded by log-runs.
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

/* ---- the record of runs ---- */

int jc__sqlite_run_add(jc__sqlite *st, const jc__run_row *r, int64_t keep)
{
    int rc = jc__sq_store_enter_write(st, "record a run");
    if (rc)
        return rc;
    sqlite3_stmt *s = NULL;
    rc = jc__sq_prepare(st,
                 "INSERT INTO runs (started, ended, host, pid, command, kind, n_jobs, backend, calls, cached,"
                 " computed, failed, skipped, elapsed, saved, status, evicted, evicted_bytes, retries,"
                 " inputs_read) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
                 " ?18, ?19, ?20)",
                 &s);
    if (rc)
        return rc;
    sqlite3_bind_double(s, 1, r->started);
    sqlite3_bind_double(s, 2, r->ended);
    sqlite3_bind_text(s, 3, r->host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, r->pid);
    sqlite3_bind_text(s, 5, r->command, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, r->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 7, r->n_jobs);
    sqlite3_bind_text(s, 8, r->backend, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 9, r->calls);
    sqlite3_bind_int64(s, 10, r->cached);
    sqlite3_bind_int64(s, 11, r->computed);
    sqlite3_bind_int64(s, 12, r->failed);
    sqlite3_bind_int64(s, 13, r->skipped);
    sqlite3_bind_double(s, 14, r->elapsed);
    sqlite3_bind_double(s, 15, r->saved);
    sqlite3_bind_text(s, 16, r->status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 17, r->evicted);
    sqlite3_bind_int64(s, 18, r->evicted_bytes);
    sqlite3_bind_int64(s, 19, r->retries);
    sqlite3_bind_int64(s, 20, r->inputs_read);
    rc = jc__sq_step_done(st, s, "recording a run");
    sqlite3_finalize(s);
    if (rc)
        return rc;
    int64_t id = sqlite3_last_insert_rowid(st->db);
    s = NULL;
    rc = jc__sq_prepare(st, "INSERT INTO run_failures (run, n, status, message) VALUES (?1, ?4, ?2, ?3)", &s);
    for (size_t i = 0; !rc && i < r->nfailures; i++) {
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_text(s, 2, r->failures[i].status, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, r->failures[i].message, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, (int64_t)i);
        rc = jc__sq_step_done(st, s, "recording a failure");
    }
    sqlite3_finalize(s);
    /* Bounded: the runs older than the last keep go, with their failures. */
    char sql[200];
    snprintf(sql, sizeof sql,
             "DELETE FROM run_failures WHERE run <= %lld; DELETE FROM runs WHERE id <= %lld",
             (long long)(id - keep), (long long)(id - keep));
    if (!rc && keep > 0 && id > keep)
        rc = jc__sq_run_sql(st, sql, "pruning the record of runs");
    return rc;
}

int jc__sqlite_runs(jc__sqlite *st, int64_t last_n, bool failed_only,
                   int (*fn)(void *ctx, const jc__run_row *r), void *ctx)
{
    int rc = jc__sq_store_enter(st);
    if (rc || st->schema < 5)
        return rc;
    sqlite3_stmt *s = NULL, *f = NULL;
    /* Schema 7 has the evictions; a read-only open of an older file reads 0. */
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT id, started, ended, host, pid, command, kind, n_jobs, backend, calls, cached, computed,"
             " failed, skipped, elapsed, saved, status, %s, %s, %s FROM (SELECT * FROM runs"
             " WHERE (?2 = 0 OR failed > 0 OR status != 'ok') ORDER BY id DESC LIMIT ?1) ORDER BY id",
             st->schema >= 7 ? "evicted, evicted_bytes" : "0, 0", st->schema >= 8 ? "retries" : "0",
             st->schema >= 9 ? "inputs_read" : "0");
    rc = jc__sq_prepare(st, sql, &s);
    if (!rc)
        rc = jc__sq_prepare(st, "SELECT status, message FROM run_failures WHERE run = ?1 ORDER BY n", &f);
    if (rc) {
        sqlite3_finalize(s);
        return rc;
    }
    sqlite3_bind_int64(s, 1, last_n > 0 ? last_n : -1);
    sqlite3_bind_int(s, 2, failed_only);
    int step;
    jc__run_failure *fails = NULL;
    size_t cap = 0;
#define TEXT(col) (sqlite3_column_text(s, col) ? (const char *)sqlite3_column_text(s, col) : "")
    while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
        jc__run_row r = {
            .id = sqlite3_column_int64(s, 0), .started = sqlite3_column_double(s, 1),
            .ended = sqlite3_column_double(s, 2), .host = TEXT(3), .pid = sqlite3_column_int64(s, 4),
            .command = TEXT(5), .kind = TEXT(6), .n_jobs = sqlite3_column_int(s, 7), .backend = TEXT(8),
            .calls = sqlite3_column_int64(s, 9), .cached = sqlite3_column_int64(s, 10),
            .computed = sqlite3_column_int64(s, 11), .failed = sqlite3_column_int64(s, 12),
            .skipped = sqlite3_column_int64(s, 13), .elapsed = sqlite3_column_double(s, 14),
            .saved = sqlite3_column_double(s, 15), .status = TEXT(16),
            .evicted = sqlite3_column_int64(s, 17), .evicted_bytes = sqlite3_column_int64(s, 18),
            .retries = sqlite3_column_int64(s, 19), .inputs_read = sqlite3_column_int64(s, 20),
        };
        /* The failures' texts are copied: the statement below reuses its
         * buffers row by row. */
        sqlite3_bind_int64(f, 1, r.id);
        size_t n = 0;
        int fs;
        while ((fs = sqlite3_step(f)) == SQLITE_ROW) {
            if (JC__GROW(fails, cap, n + 1)) {
                rc = jc__set_error(JC_ENOMEM, "out of memory reading the record of runs");
                break;
            }
            const char *st_ = (const char *)sqlite3_column_text(f, 0), *msg = (const char *)sqlite3_column_text(f, 1);
            fails[n].status = jc__strdup(st_ ? st_ : "");
            fails[n].message = jc__strdup(msg ? msg : "");
            n++;
        }
        sqlite3_reset(f);
        r.failures = fails;
        r.nfailures = n;
        if (!rc)
            rc = fn(ctx, &r);
        for (size_t i = 0; i < n; i++) {
            free((char *)fails[i].status);
            free((char *)fails[i].message);
        }
    }
#undef TEXT
    free(fails);
    sqlite3_finalize(s);
    sqlite3_finalize(f);
    return rc;
}
