/*
 * The SQLite store's connection: errors, the process that may use it,
 * closing, transactions, settings.
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

/* ---- errors ---- */

static int map_sqlite(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return JC_ENOMEM;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return JC_ECORRUPT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return JC_EBUSY;
    case SQLITE_READONLY:
        return JC_EREADONLY;
    case SQLITE_FULL:
        return JC_EFULL;
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
        return JC_EINVAL;
    default:
        return JC_EIO;
    }
}

/* Sets the message for SQLite's failure rc while doing `what`. Must run
 * before any other call on the connection, which would replace errmsg. */
int jc__sq_store_error(const jc__sqlite *st, int rc, const char *what)
{
    const char *msg = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
    int code = map_sqlite(rc);

    switch (code) {
    case JC_ECORRUPT:
        return jc__set_error(code, "cache file '%s' is corrupt or not an SQLite database (%s: %s)",
                             st->path, what, msg);
    case JC_EBUSY:
        return jc__set_error(code,
                             "cache file '%s' is locked by another process; gave up after %d ms "
                             "(%s: %s)",
                             st->path, st->busy_timeout_ms, what, msg);
    default:
        return jc__set_error(code, "cache file '%s': %s failed: %s", st->path, what, msg);
    }
}

/* Common entry check of every call on an open store. */
/* Counts forks in this process's history: a child sees a higher count than
 * the store it inherited. Checking it costs a load, where getpid() is a
 * system call on every lookup. (A raw clone() that skips the atfork
 * handlers escapes this check; fork() and posix_spawn do not matter.) */
static atomic_ulong fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    atomic_fetch_add(&fork_generation, 1);
}

static void install_atfork(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

void jc__sq_mark_process(jc__sqlite *st)
{
    st->pid = getpid();
    pthread_once(&atfork_once, install_atfork);
    st->generation = atomic_load(&fork_generation);
}

bool jc__sq_same_process(const jc__sqlite *st)
{
    return st->generation == atomic_load_explicit(&fork_generation, memory_order_relaxed);
}

static int store_check(const jc__sqlite *st)
{
    if (!st)
        return jc__set_error(JC_EINVAL, "store: NULL store");
    if (!jc__sq_same_process(st))
        return jc__set_error(JC_EINVAL,
                             "cache file '%s' was opened in process %ld and cannot be used in "
                             "process %ld (an SQLite connection must not cross fork)",
                             st->path, (long)st->pid, (long)getpid());
    return 0;
}


int jc__sq_store_enter(jc__sqlite *st)
{
    return store_check(st);
}

/* The gate of every write: also ends a held read transaction, so that the
 * write is not swallowed into it (and committed only with it). */
int jc__sq_store_enter_write(jc__sqlite *st, const char *what)
{
    int rc = jc__sq_store_enter(st);
    if (rc)
        return rc;
    if (st->disk_full)
        return jc__set_error(JC_EFULL,
                             "cannot %s in cache file '%s': the disk is full (SQLite could not create "
                             "'%s-shm', 32 KiB, which writing needs); hits are served and every result is "
                             "returned, nothing is stored: free some space",
                             what, st->path, st->path);
    if (st->flags & JC__STORE_READONLY)
        return jc__set_error(JC_EREADONLY, "cache file '%s' was opened read-only%s: cannot %s",
                             st->path,
                             st->immutable ? " (its directory or mount is not writable: hits are "
                                             "served, nothing is stored or recorded)"
                                           : "",
                             what);
    const char *lost = jc__hostlock_lost(st->hostlock);
    if (lost)
        return jc__set_error(JC_EIO,
                             "cannot %s in cache file '%s': it is on a network file system, where one host at a "
                             "time may use it, and this process lost it: %s; nothing more is written to it "
                             "from here",
                             what, st->path, lost);
    jc__sq_end_read(st);
    return 0;
}

/* ---- closing ---- */

static void finalize_all(jc__sqlite *st)
{
    sqlite3_stmt *all[] = {st->get,        st->put,         st->del,
                           st->begin,      st->commit,     st->rollback,    st->row[0],
                           st->row[1],     st->row_key[0], st->row_key[1],  st->range,
                           st->put_row,    st->del_rowid,  st->scan,        st->max_rowid,
                           st->begin_read, st->end_read, st->data_version, st->size,
                           st->params_put, st->params_get, st->get_created, st->scan_created,
                           st->get_check,  st->chunk_put, st->chunk_list, st->chunk_size,
                           st->chunk_any, st->chunk_del, st->guard_begin, st->guard_end,
                           st->chunk_sum};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        sqlite3_finalize(all[i]); /* NULL is a no-op */
}

void jc__sqlite_close(jc__sqlite *st)
{
    if (!st)
        return;
    /* In a forked child the connection belongs to the parent: leave it. */
    if (st->db && jc__sq_same_process(st)) {
        jc__sq_end_read(st);
        if (st->depth > 0) {
            /* Close ends every level. A failure is left in jc_errmsg:
             * close has no way to report it. */
            st->depth = 1;
            jc__sqlite_commit(st);
        }
        finalize_all(st);
        /* A closed cache is complete on its own: what the -wal file holds
         * goes into the database file now, as far as other processes'
         * readers allow (PASSIVE: close never waits for them). SQLite does
         * the same, and removes the -wal file, when this is the last
         * connection; this covers a file other programs still hold. */
        if (!(st->flags & JC__STORE_READONLY))
            sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        sqlite3_close_v2(st->db);
    }
    /* After the connection: the host's record goes last. A forked child
     * has no renewing thread to stop, and leaves the parent's record. */
    if (jc__sq_same_process(st))
        jc__hostlock_release(st->hostlock);
    free(st->buf);
    free(st->rowbuf);
    free(st->put_function);
    free(st->put_version);
    free(st->path);
    free(st);
}

const char *jc__sqlite_path(const jc__sqlite *st)
{
    return st ? st->path : NULL;
}

/* ---- transactions ---- */

/* Steps a statement that returns no rows, and resets it. */
int jc__sq_step_done(jc__sqlite *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    int ret = rc == SQLITE_DONE ? 0 : jc__sq_store_error(st, rc, what);
    sqlite3_reset(s);
    return ret;
}

void jc__sq_end_read(jc__sqlite *st)
{
    if (!st->reading)
        return;
    st->reading = false;
    if (!sqlite3_get_autocommit(st->db)) {
        sqlite3_step(st->end_read); /* a read transaction: nothing to lose */
        sqlite3_reset(st->end_read);
    }
}

int jc__sqlite_begin(jc__sqlite *st)
{
    int rc = jc__sq_store_enter_write(st, "begin a write transaction");
    if (rc)
        return rc;
    jc__sq_end_read(st);
    if (st->depth > 0 && sqlite3_get_autocommit(st->db)) {
        /* SQLite rolled the transaction back by itself (a full disk): the
         * count of begins is stale; what it held is gone. Start afresh. */
        st->depth = 0;
        st->doomed = false;
        st->txn_current = 0;
    }
    if (st->depth > 0) {
        st->depth++;
        return 0;
    }
    rc = jc__sq_step_done(st, st->begin, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    st->depth = 1;
    st->doomed = false;
    st->txn_current = ++st->txn_seq;
    return 0;
}

/* Ends the outermost transaction with ROLLBACK; SQLite may already have
 * rolled it back itself after an I/O error, a full disk or out of memory. */
static int rollback_outer(jc__sqlite *st)
{
    st->depth = 0;
    st->doomed = false;
    st->txn_current = 0;
    if (sqlite3_get_autocommit(st->db))
        return 0;
    return jc__sq_step_done(st, st->rollback, "ROLLBACK");
}

int jc__sqlite_commit(jc__sqlite *st)
{
    int rc = jc__sq_store_enter_write(st, "commit");
    if (rc)
        return rc;
    if (st->depth == 0)
        return jc__set_error(JC_EINVAL, "cache file '%s': commit without a transaction", st->path);
    if (--st->depth > 0)
        return 0;
    if (st->doomed) {
        rollback_outer(st);
        return jc__set_error(JC_EIO,
                             "cache file '%s': the transaction was rolled back by a nested "
                             "rollback; nothing was committed",
                             st->path);
    }
    if (sqlite3_get_autocommit(st->db)) {
        st->doomed = false;
        st->txn_current = 0;
        return jc__set_error(JC_EIO,
                             "cache file '%s': SQLite rolled the transaction back after an "
                             "earlier error; nothing was committed",
                             st->path);
    }
    rc = jc__sq_step_done(st, st->commit, "COMMIT");
    /* A COMMIT that failed may leave the transaction open (SQLITE_BUSY): the
     * caller may then commit again or roll back. */
    if (rc && !sqlite3_get_autocommit(st->db))
        st->depth = 1;
    else
        st->txn_current = 0;
    return rc;
}

int jc__sqlite_rollback(jc__sqlite *st)
{
    int rc = jc__sq_store_enter_write(st, "roll back");
    if (rc)
        return rc;
    if (st->depth == 0)
        return jc__set_error(JC_EINVAL, "cache file '%s': rollback without a transaction",
                             st->path);
    if (st->depth > 1) {
        /* Counted nesting has no partial rollback: the whole transaction is
         * lost, and the outermost commit reports it. */
        st->depth--;
        st->doomed = true;
        return 0;
    }
    return rollback_outer(st);
}

int jc__sqlite_meta_get(jc__sqlite *st, const char *name, char **value)
{
    *value = NULL;
    int rc = jc__sq_store_enter(st);
    if (rc)
        return rc;
    sqlite3_stmt *s = NULL;
    rc = jc__sq_prepare(st, "SELECT value FROM meta WHERE name = ?1", &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(s, 0);
        if (!(*value = jc__strdup(v ? v : "")))
            rc = jc__set_error(JC_ENOMEM, "out of memory reading a setting");
    } else if (step != SQLITE_DONE) {
        rc = jc__sq_store_error(st, step, "reading a setting");
    }
    sqlite3_finalize(s);
    return rc;
}

int jc__sqlite_meta_set(jc__sqlite *st, const char *name, const char *value)
{
    int rc = jc__sq_store_enter_write(st, "change a setting");
    if (rc)
        return rc;
    sqlite3_stmt *s = NULL;
    rc = jc__sq_prepare(st, value ? "INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)"
                           : "DELETE FROM meta WHERE name = ?1", &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if (value)
        sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
    rc = jc__sq_step_done(st, s, "changing a setting");
    sqlite3_finalize(s);
    return rc;
}

int jc__sqlite_schema(const jc__sqlite *st)
{
    return st ? st->schema : 0;
}

bool jc__sqlite_in_transaction(const jc__sqlite *st)
{
    /* SQLite may roll a transaction back by itself (SQLITE_FULL, an I/O
     * error): then, whatever the count of begins says, there is none. */
    return st && st->depth > 0 && !sqlite3_get_autocommit(st->db);
}


/* Runs SQL that returns no rows we need. */
int jc__sq_run_sql(jc__sqlite *st, const char *sql, const char *what)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : jc__sq_store_error(st, rc, what);
}

int jc__sq_prepare(jc__sqlite *st, const char *sql, sqlite3_stmt **s)
{
    int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL);
    if (rc == SQLITE_OK)
        return 0;
    if ((rc & 0xff) == SQLITE_NOMEM)
        return jc__sq_store_error(st, rc, "preparing statements");
    /* user_version says ours, but the tables are not what we wrote. */
    return jc__set_error(JC_ECORRUPT,
                         "cache file '%s' is not a jobcache cache: its schema does not match (%s)",
                         st->path, sqlite3_errmsg(st->db));
}

/* Statements prepared on first use; they stay until the store closes. */
int jc__sq_lazy(jc__sqlite *st, sqlite3_stmt **s, const char *sql)
{
    return *s ? 0 : jc__sq_prepare(st, sql, s);
}

/* SQLite's busy handler: true to try the lock again (after a sleep), false
 * to give up with SQLITE_BUSY. count is 0 on the first call of a wait. */
static int busy_wait(void *ctx, int count)
{
    jc__sqlite *st = ctx;
    if (jc__interrupted)
        return 0;
    double now = jc__monotonic();
    if (count == 0)
        st->busy_since = now;
    double left_ms = st->busy_wait_ms - (now - st->busy_since) * 1e3;
    if (left_ms <= 0)
        return 0;
    /* 1, 2, 5, 10 then 25 ms: short enough to see an interrupt soon. */
    static const int steps[] = {1, 2, 5, 10, 25};
    int ms = steps[count < 4 ? count : 4];
    sqlite3_sleep(ms < left_ms ? ms : (int)left_ms + 1);
    return !jc__interrupted;
}

void jc__sq_busy_install(jc__sqlite *st, int ms)
{
    st->busy_wait_ms = ms;
    sqlite3_busy_handler(st->db, busy_wait, st);
}
