/*
 * Leases: the claims of running processes on the calls they compute.
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

/* ---- leases ---- */

int jc__sqlite_lease_owner(jc__sqlite *st, const char *owner, double expires, bool create)
{
    int rc = jc__sq_store_enter_write(st, "claim calls");
    if (rc)
        return rc;
    sqlite3_stmt *s = NULL;
    rc = jc__sq_prepare(st,
                 create ? "INSERT INTO lease_owners (owner, expires, started) VALUES (?1, ?2, ?2)"
                          " ON CONFLICT (owner) DO UPDATE SET expires = excluded.expires"
                        : "UPDATE lease_owners SET expires = ?2 WHERE owner = ?1",
                 &s);
    if (!rc) {
        sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
        sqlite3_bind_double(s, 2, expires);
        rc = jc__sq_step_done(st, s, "renewing a lease");
    }
    sqlite3_finalize(s);
    return rc;
}

int jc__sqlite_lease_add(jc__sqlite *st, const char *owner, const uint8_t *keys, size_t n)
{
    int rc = jc__sq_store_enter_write(st, "claim calls");
    if (rc || !n)
        return rc;
    sqlite3_stmt *s = NULL;
    rc = jc__sq_prepare(st, "INSERT INTO leases (owner, keys) VALUES (?1, ?2)", &s);
    if (!rc) {
        sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(s, 2, keys, (sqlite3_uint64)n * JC__KEY_LEN, SQLITE_STATIC);
        rc = jc__sq_step_done(st, s, "claiming calls");
    }
    sqlite3_finalize(s);
    return rc;
}

int jc__sqlite_leases(jc__sqlite *st, int (*fn)(void *ctx, const jc__lease *l), void *ctx)
{
    int rc = jc__sq_store_enter(st);
    if (rc)
        return rc;
    if (st->schema < 4)
        return 0; /* an older file read as it is: no leases */
    sqlite3_stmt *s = NULL;
    rc = jc__sq_prepare(st,
                 "SELECT o.owner, o.expires, o.started, l.id, l.keys FROM lease_owners o"
                 " LEFT JOIN leases l ON l.owner = o.owner ORDER BY o.owner, l.id",
                 &s);
    int step = SQLITE_DONE;
    while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
        const char *owner = (const char *)sqlite3_column_text(s, 0);
        int bytes = sqlite3_column_bytes(s, 4);
        jc__lease l = {
            .owner = owner ? owner : "",
            .expires = sqlite3_column_double(s, 1),
            .started = sqlite3_column_double(s, 2),
            .id = sqlite3_column_int64(s, 3),
            .keys = sqlite3_column_type(s, 4) == SQLITE_BLOB ? sqlite3_column_blob(s, 4) : NULL,
        };
        /* A hostile length is cut to whole keys. */
        l.n = l.keys ? (size_t)bytes / JC__KEY_LEN : 0;
        rc = fn(ctx, &l);
    }
    if (!rc && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = jc__sq_store_error(st, step, "reading leases");
    sqlite3_finalize(s);
    return rc;
}

int jc__sqlite_lease_set_keys(jc__sqlite *st, int64_t id, const uint8_t *keys, size_t n)
{
    int rc = jc__sq_store_enter_write(st, "release a call");
    if (rc)
        return rc;
    sqlite3_stmt *s = NULL;
    rc = jc__sq_prepare(st, n ? "UPDATE leases SET keys = ?2 WHERE id = ?1" : "DELETE FROM leases WHERE id = ?1", &s);
    if (!rc) {
        sqlite3_bind_int64(s, 1, id);
        if (n)
            sqlite3_bind_blob64(s, 2, keys, (sqlite3_uint64)n * JC__KEY_LEN, SQLITE_STATIC);
        rc = jc__sq_step_done(st, s, "releasing a call");
    }
    sqlite3_finalize(s);
    return rc;
}

/* The pages a run's claims took (16 bytes a call: 16 MB for a million
 * misses, written at its start, so that the entries stored after them
 * leave them as a hole) go back to the system when the run drops them and
 * the free pages are a sixteenth of the file or more (at least 256 pages):
 * a file of a million entries was 10% free pages after its cold run
 * (bench/NOTES.md). auto_vacuum=INCREMENTAL moves the last pages into the
 * hole and truncates the file, in this transaction; a file without it is
 * left as it is. 0, or the code of a failure that ended the transaction. */
static int give_back_claims_pages(jc__sqlite *st)
{
    if (st->guarded)
        return 0; /* inside a store of an entry's parts: not nested (cannot happen today) */
    sqlite3_stmt *s = NULL;
    int64_t free_pages = 0, pages = 0, mode = 0;
    if (jc__sq_prepare(st,
                       "SELECT (SELECT freelist_count FROM pragma_freelist_count),"
                       " (SELECT page_count FROM pragma_page_count),"
                       " (SELECT auto_vacuum FROM pragma_auto_vacuum)",
                       &s) == 0 &&
        sqlite3_step(s) == SQLITE_ROW) {
        free_pages = sqlite3_column_int64(s, 0);
        pages = sqlite3_column_int64(s, 1);
        mode = sqlite3_column_int64(s, 2);
    }
    sqlite3_finalize(s);
    if (mode != 2 || free_pages < 256 || free_pages * 16 < pages)
        return 0;
    /* In a savepoint, so that an error SQLite undoes statement by statement
     * undoes this alone. Some (a full disk, an I/O error) end the whole
     * transaction, and the savepoint with it: then the drop is lost too,
     * and said, as the caller's transaction is. */
    if (jc__sq_guard(st, 0) != 0)
        return 0;
    int rc = sqlite3_exec(st->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
    jc__sq_guard(st, rc == SQLITE_OK ? 0 : 1);
    if (rc != SQLITE_OK && !jc__sqlite_in_transaction(st))
        return jc__sq_store_error(st, rc, "giving the pages of released calls back");
    return 0;
}

int jc__sqlite_lease_drop(jc__sqlite *st, const char *owner)
{
    int rc = jc__sq_store_enter_write(st, "release calls");
    if (rc)
        return rc;
    sqlite3_stmt *s = NULL;
    int dropped = 0, rows = 0;
    for (int k = 0; k < 2 && !rc; k++) {
        rc = jc__sq_prepare(st, k ? "DELETE FROM lease_owners WHERE owner = ?1" : "DELETE FROM leases WHERE owner = ?1", &s);
        if (!rc) {
            sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
            rc = jc__sq_step_done(st, s, "releasing calls");
            dropped += k ? sqlite3_changes(st->db) : 0;
            rows += k ? 0 : sqlite3_changes(st->db);
        }
        sqlite3_finalize(s);
        s = NULL;
    }
    if (!rc && rows)
        rc = give_back_claims_pages(st);
    return rc ? rc : dropped;
}
