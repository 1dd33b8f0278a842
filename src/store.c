/*
 * store: the only part of jobcache that speaks SQL (see store.h).
 *
 * Invariants kept here:
 *
 *  - Every function returns 0 (or a count) or a negative jc_error, and on
 *    failure has set the thread's message, which names the cache file and,
 *    where SQLite failed, quotes sqlite3_errmsg.
 *  - No statement is left un-reset between calls. A lookup copies the result
 *    into a buffer owned by the store instead of leaving the SELECT pending:
 *    a pending statement would pin a WAL read snapshot for as long as the
 *    caller takes to come back, which keeps other processes' checkpoints from
 *    finishing and lets the -wal file grow without bound.
 *  - A file is only ever modified once it is known to be ours (user_version
 *    == JC__SCHEMA_VERSION) or to be empty: a foreign database or a cache
 *    with a newer schema is refused before its journal mode is touched.
 *  - A store is used by one thread at a time (it is opened without SQLite's
 *    mutexes) and must not cross fork(): an SQLite connection copied into a
 *    child would share file locks and WAL state with its parent. A store used
 *    in another process than the one that opened it refuses every call, and
 *    closing it there frees only our own memory.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define DEFAULT_BUSY_TIMEOUT_MS 10000

#define STR_(x) #x
#define STR(x) STR_(x)

struct jc__store {
    sqlite3 *db;
    char *path;
    unsigned flags;
    int busy_timeout_ms;
    pid_t pid;   /* the process that opened the store */
    int depth;   /* nesting of jc__store_begin; 0 = no explicit transaction */
    bool doomed; /* an inner rollback happened: the outermost commit rolls back */
    /* The last lookup's result, copied out of SQLite (see the note above). */
    void *buf;
    size_t buf_cap;
    sqlite3_stmt *get, *touch, *put, *del, *begin, *commit, *rollback;
};

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
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
        return JC_EINVAL;
    default:
        return JC_EIO;
    }
}

/* Sets the message for SQLite's failure rc while doing `what`. Must run
 * before any other call on the connection, which would replace errmsg. */
static int store_error(const jc__store *st, int rc, const char *what)
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
static int store_enter(const jc__store *st)
{
    if (!st)
        return jc__set_error(JC_EINVAL, "store: NULL store");
    if (st->pid != getpid())
        return jc__set_error(JC_EINVAL,
                             "cache file '%s' was opened in process %ld and cannot be used in "
                             "process %ld (an SQLite connection must not cross fork)",
                             st->path, (long)st->pid, (long)getpid());
    return 0;
}

static int store_enter_write(const jc__store *st, const char *what)
{
    int rc = store_enter(st);
    if (rc)
        return rc;
    if (st->flags & JC__STORE_READONLY)
        return jc__set_error(JC_EREADONLY, "cache file '%s' was opened read-only: cannot %s",
                             st->path, what);
    return 0;
}

/* ---- checks on the path, before SQLite sees it ---- */

/* SQLite reports a missing or unwritable directory as a bare "unable to open
 * database file"; these checks name the directory and the cause instead. */

/* The directory part of path, malloc'd ("." for a bare name). */
static char *parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return jc__strdup(".");
    if (slash == path)
        return jc__strdup("/");
    return jc__strdup_printf("%.*s", (int)(slash - path), path);
}

/* A writable store creates the file, or at least -wal and -shm beside it. */
static int check_dir_writable(const char *path, const char *verb)
{
    struct stat sb;
    int rc = 0;
    char *dir = parent_dir(path);

    if (!dir)
        return jc__set_error(JC_ENOMEM, "out of memory opening cache file '%s'", path);
    if (stat(dir, &sb) != 0) {
        if (errno == ENOENT)
            rc = jc__set_error(JC_EIO, "cannot %s cache file '%s': directory '%s' does not exist",
                               verb, path, dir);
        else
            rc = jc__set_error(JC_EIO, "cannot %s cache file '%s': directory '%s': %s", verb,
                               path, dir, strerror(errno));
    } else if (!S_ISDIR(sb.st_mode)) {
        rc = jc__set_error(JC_EIO, "cannot %s cache file '%s': '%s' is not a directory", verb,
                           path, dir);
    } else if (access(dir, W_OK | X_OK) != 0) {
        rc = jc__set_error(JC_EIO, "cannot %s cache file '%s': directory '%s' is not writable (%s)",
                           verb, path, dir, strerror(errno));
    }
    free(dir);
    return rc;
}

static int check_existing(const char *path, const struct stat *sb, unsigned flags)
{
    if (S_ISDIR(sb->st_mode))
        return jc__set_error(JC_EIO, "cannot open cache file '%s': it is a directory", path);
    if (access(path, R_OK) != 0)
        return jc__set_error(JC_EIO, "cannot read cache file '%s': %s", path, strerror(errno));
    if (flags & JC__STORE_READONLY)
        return 0;
    /* Without this, SQLite would silently open a write-protected file
     * read-only and fail later, at the first write. */
    if (access(path, W_OK) != 0)
        return jc__set_error(JC_EIO,
                             "cannot open cache file '%s' for writing: %s (open it read-only "
                             "to use its entries)",
                             path, strerror(errno));
    return check_dir_writable(path, "open");
}

static int check_path(const char *path, unsigned flags)
{
    struct stat sb;

    if (stat(path, &sb) == 0)
        return check_existing(path, &sb, flags);
    if (errno != ENOENT && errno != ENOTDIR)
        return jc__set_error(JC_EIO, "cannot open cache file '%s': %s", path, strerror(errno));
    /* A read-only store cannot create the file either. */
    if (flags & (JC__STORE_NOCREATE | JC__STORE_READONLY))
        return jc__set_error(JC_ENOTFOUND, "cache file '%s' does not exist", path);
    return check_dir_writable(path, "create");
}

/* ---- opening ---- */

/* A cache file is data only: nothing in it may run code or change how our
 * statements behave. A hostile file could carry triggers on `entries`, or
 * make `entries` a view; with these settings neither ever fires, and the
 * schema may only use SQL functions that are innocuous. */
static void harden(sqlite3 *db)
{
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, (int *)NULL);
#ifdef SQLITE_DBCONFIG_ENABLE_VIEW
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, (int *)NULL);
#endif
#ifdef SQLITE_DBCONFIG_TRUSTED_SCHEMA
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
#endif
}

static int open_db(jc__store *st)
{
    /* NOMUTEX: the store is used by one thread at a time (see the top). */
    int oflags = SQLITE_OPEN_NOMUTEX;
    if (st->flags & JC__STORE_READONLY)
        oflags |= SQLITE_OPEN_READONLY;
    else if (st->flags & JC__STORE_NOCREATE)
        oflags |= SQLITE_OPEN_READWRITE; /* the file may vanish after check_path */
    else
        oflags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

    int rc = sqlite3_open_v2(st->path, &st->db, oflags, NULL);
    if (rc != SQLITE_OK)
        return store_error(st, rc, "opening");
    harden(st->db);
    /* Both processes of a shared cache wait for each other's write
     * transactions instead of failing with SQLITE_BUSY; this also covers
     * BEGIN IMMEDIATE, whose write lock SQLite retries under the handler. */
    sqlite3_busy_timeout(st->db, st->busy_timeout_ms);
    return 0;
}

/* Runs SQL that returns no rows we need. */
static int run_sql(jc__store *st, const char *sql, const char *what)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : store_error(st, rc, what);
}

/* Settings of this connection, made once the file is known to be ours. */
static int tune(jc__store *st)
{
    /* WAL keeps a commit durable across a killed process: the commit is in
     * the -wal file before COMMIT returns, and recovery replays it.
     * synchronous=FULL adds an fsync of the -wal file per commit, so that a
     * power loss or OS crash keeps every committed result too (DESIGN.md).
     * Runs commit at most about ten times a second, so that fsync is cheap;
     * NORMAL would save it at the price of losing the last transactions.
     *
     * A lookup of a cache of many entries walks a few B-tree pages; a 64 MiB
     * page cache and a 256 MiB memory map keep those pages in this process
     * instead of a read() per page. temp_store=MEMORY keeps sorting (the
     * inspection tool, eviction) off the disk. journal_size_limit truncates
     * the -wal file back to 64 MiB after a checkpoint that followed a large
     * transaction. (The map cannot make a damaged file crash us: SQLite
     * checks pages read through it as it checks pages read with read(). Only
     * truncating the file under an open connection, which SQLite never does,
     * could fault.) */
    return run_sql(st,
                   "PRAGMA synchronous=FULL;"
                   "PRAGMA cache_size=-65536;"
                   "PRAGMA mmap_size=268435456;"
                   "PRAGMA temp_store=MEMORY;"
                   "PRAGMA journal_size_limit=67108864;",
                   "configuring the connection");
}

static double monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

enum { WAL_BUSY = 1 };

/* One attempt at PRAGMA journal_mode=WAL: 0 when the file is in WAL mode,
 * WAL_BUSY to try again, or a negative code with the message set. */
static int try_set_wal(jc__store *st)
{
    sqlite3_stmt *s = NULL;
    int ret = 0;
    int rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(s, 0);
        if (!mode || strcmp(mode, "wal") != 0)
            ret = jc__set_error(JC_EIO,
                                "cache file '%s': cannot switch to WAL mode (journal mode "
                                "stays '%s'; is it on a file system without shared memory?)",
                                st->path, mode ? mode : "?");
    } else {
        ret = (rc & 0xff) == SQLITE_BUSY ? WAL_BUSY : store_error(st, rc, "switching to WAL mode");
    }
    sqlite3_finalize(s);
    return ret;
}

/* Switching to WAL takes an exclusive lock (a no-op once the file is in WAL
 * mode). Where waiting for it could deadlock, SQLite returns SQLITE_BUSY
 * without calling the busy handler: two processes opening a new file at once
 * meet here while one of them creates the schema. So wait here, under the
 * same timeout. */
static int set_wal(jc__store *st)
{
    double deadline = monotonic_ms() + st->busy_timeout_ms;
    int rc;
    while ((rc = try_set_wal(st)) == WAL_BUSY && monotonic_ms() < deadline)
        sqlite3_sleep(5);
    if (rc == WAL_BUSY)
        rc = jc__set_error(JC_EBUSY,
                           "cache file '%s' is locked by another process; gave up switching it "
                           "to WAL mode after %d ms",
                           st->path, st->busy_timeout_ms);
    return rc;
}

static const char schema_sql[] =
    "CREATE TABLE entries ("
    " key BLOB NOT NULL CHECK (length(key) = " STR(JC__KEY_LEN) "),"
    " function TEXT NOT NULL,"
    " version TEXT NOT NULL,"
    " args BLOB NOT NULL,"
    " result BLOB NOT NULL,"
    " args_size INTEGER NOT NULL,"
    " result_size INTEGER NOT NULL,"
    " created REAL NOT NULL,"         /* unix seconds */
    " last_used REAL NOT NULL,"       /* unix seconds */
    " compute_seconds REAL NOT NULL,"
    " hits INTEGER NOT NULL DEFAULT 0);"
    /* A rowid table, not WITHOUT ROWID: results can be large blobs, which a
     * WITHOUT ROWID table would keep in its (key-ordered) B-tree pages. */
    "CREATE UNIQUE INDEX entries_key ON entries(key);"
    "CREATE INDEX entries_function ON entries(function, version);"
    "CREATE INDEX entries_last_used ON entries(last_used);"
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT INTO meta VALUES ('key_format', '" STR(JC_KEY_FORMAT_VERSION) "'),"
    " ('created_by', 'jobcache " JC_VERSION_STRING "');"
    "PRAGMA user_version = " STR(JC__SCHEMA_VERSION) ";";

/* The file's user_version, and how many tables, indexes, views and triggers
 * it has that SQLite did not make. One statement reads both from one
 * snapshot: read apart, another process could create the schema in between,
 * and the file would look like a foreign database (tables, no version). */
static int read_schema_info(jc__store *st, int64_t *version, int64_t *objects)
{
    static const char sql[] =
        "SELECT (SELECT user_version FROM pragma_user_version),"
        " (SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\')";
    sqlite3_stmt *s = NULL;
    int ret = 0;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *version = sqlite3_column_int64(s, 0);
        *objects = sqlite3_column_int64(s, 1);
    } else {
        ret = store_error(st, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "reading the file");
    }
    sqlite3_finalize(s);
    return ret;
}

/* Decides what the file is from its user_version and its objects. */
static int classify(jc__store *st, int64_t version, int64_t objects)
{
    if (version > JC__SCHEMA_VERSION)
        return jc__set_error(JC_ESCHEMA,
                             "cache file '%s' has schema version %lld, newer than version %d of "
                             "this library (jobcache %s); use a newer jobcache",
                             st->path, (long long)version, JC__SCHEMA_VERSION, JC_VERSION_STRING);
    if (version == JC__SCHEMA_VERSION)
        return 0;
    if (version != 0 || objects != 0)
        return jc__set_error(JC_ECORRUPT,
                             "cache file '%s' is not a jobcache cache: it is an SQLite database "
                             "of another application (user_version %lld, %lld schema objects)",
                             st->path, (long long)version, (long long)objects);
    return 1; /* empty */
}

/* Creates the schema in an empty file. Another process may be doing the
 * same: the check is repeated under the write lock, so exactly one creates. */
static int create_schema(jc__store *st)
{
    int64_t version = 0, objects = 0;
    int rc = run_sql(st, "BEGIN IMMEDIATE", "locking the new cache file");
    if (rc)
        return rc;
    rc = read_schema_info(st, &version, &objects);
    if (!rc)
        rc = classify(st, version, objects);
    if (rc == 1)
        rc = run_sql(st, schema_sql, "creating the schema");
    if (rc >= 0)
        rc = run_sql(st, "COMMIT", "creating the schema");
    if (rc < 0)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL); /* harmless if none is open */
    return rc;
}

/* Refuses what is not ours; makes an empty file a cache. This is the first
 * read of the file, where SQLite, which opens lazily, finds out that a file
 * is not a database or is damaged. */
static int check_schema(jc__store *st)
{
    int64_t version = 0, objects = 0;
    int rc = read_schema_info(st, &version, &objects);
    /* A read that fails as a write: to read a WAL database, even a read-only
     * connection must create the -shm file beside it. */
    if (rc == JC_EREADONLY)
        return jc__set_error(JC_EIO,
                             "cannot read cache file '%s': reading a WAL database needs '%s-shm', "
                             "which cannot be created (is its directory read-only?)",
                             st->path, st->path);
    if (!rc)
        rc = classify(st, version, objects);
    if (rc < 0)
        return rc;
    bool empty = rc == 1;
    if (st->flags & JC__STORE_READONLY) {
        /* Never write, not even the journal mode. */
        if (empty)
            return jc__set_error(JC_ECORRUPT, "cache file '%s' is empty: not a jobcache cache",
                                 st->path);
        return 0;
    }
    rc = set_wal(st);
    if (!rc && empty)
        rc = create_schema(st);
    return rc;
}

static int prepare(jc__store *st, const char *sql, sqlite3_stmt **s)
{
    int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL);
    if (rc == SQLITE_OK)
        return 0;
    if ((rc & 0xff) == SQLITE_NOMEM)
        return store_error(st, rc, "preparing statements");
    /* user_version says ours, but the tables are not what we wrote. */
    return jc__set_error(JC_ECORRUPT,
                         "cache file '%s' is not a jobcache cache: its schema does not match (%s)",
                         st->path, sqlite3_errmsg(st->db));
}

static int prepare_all(jc__store *st)
{
    int rc = prepare(st, "SELECT rowid, result, compute_seconds FROM entries WHERE key = ?1",
                     &st->get);
    if (rc || (st->flags & JC__STORE_READONLY))
        return rc; /* a read-only store never writes: nothing more to prepare */
    rc = prepare(st, "UPDATE entries SET hits = hits + 1, last_used = ?1 WHERE rowid = ?2",
                 &st->touch);
    if (!rc)
        rc = prepare(st,
                     "INSERT INTO entries (key, function, version, args, result, args_size,"
                     " result_size, created, last_used, compute_seconds, hits)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, 0)"
                     " ON CONFLICT (key) DO UPDATE SET function = excluded.function,"
                     " version = excluded.version, args = excluded.args,"
                     " result = excluded.result, args_size = excluded.args_size,"
                     " result_size = excluded.result_size, created = excluded.created,"
                     " last_used = excluded.last_used,"
                     " compute_seconds = excluded.compute_seconds, hits = 0",
                     &st->put);
    if (!rc)
        rc = prepare(st, "DELETE FROM entries WHERE key = ?1", &st->del);
    if (!rc)
        rc = prepare(st, "BEGIN IMMEDIATE", &st->begin);
    if (!rc)
        rc = prepare(st, "COMMIT", &st->commit);
    if (!rc)
        rc = prepare(st, "ROLLBACK", &st->rollback);
    return rc;
}

int jc__store_open(const char *path, unsigned flags, int busy_timeout_ms, jc__store **out)
{
    jc__store *st = NULL;
    int rc;

    if (!out)
        return jc__set_error(JC_EINVAL, "jc__store_open: NULL out");
    *out = NULL;
    if (!path || !*path)
        return jc__set_error(JC_EINVAL, "cache file path is %s", path ? "empty" : "NULL");
    rc = check_path(path, flags);
    if (rc)
        return rc;

    st = calloc(1, sizeof *st);
    if (!st || !(st->path = jc__strdup(path))) {
        rc = jc__set_error(JC_ENOMEM, "out of memory opening cache file '%s'", path);
        goto fail;
    }
    st->flags = flags;
    st->busy_timeout_ms = busy_timeout_ms > 0 ? busy_timeout_ms : DEFAULT_BUSY_TIMEOUT_MS;
    st->pid = getpid();

    rc = open_db(st);
    if (!rc)
        rc = check_schema(st);
    if (!rc)
        rc = tune(st);
    if (!rc)
        rc = prepare_all(st);
    if (rc)
        goto fail;
    *out = st;
    return 0;

fail:
    jc__store_close(st);
    return rc;
}

/* ---- closing ---- */

static void finalize_all(jc__store *st)
{
    sqlite3_stmt *all[] = {st->get,   st->touch,  st->put,     st->del,
                           st->begin, st->commit, st->rollback};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        sqlite3_finalize(all[i]); /* NULL is a no-op */
}

void jc__store_close(jc__store *st)
{
    if (!st)
        return;
    /* In a forked child the connection belongs to the parent: leave it. */
    if (st->db && st->pid == getpid()) {
        if (st->depth > 0) {
            /* Close ends every level. A failure is left in jc_errmsg:
             * close has no way to report it. */
            st->depth = 1;
            jc__store_commit(st);
        }
        finalize_all(st);
        sqlite3_close_v2(st->db);
    }
    free(st->buf);
    free(st->path);
    free(st);
}

const char *jc__store_path(const jc__store *st)
{
    return st ? st->path : NULL;
}

/* ---- transactions ---- */

/* Steps a statement that returns no rows, and resets it. */
static int step_done(jc__store *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    int ret = rc == SQLITE_DONE ? 0 : store_error(st, rc, what);
    sqlite3_reset(s);
    return ret;
}

int jc__store_begin(jc__store *st)
{
    int rc = store_enter_write(st, "begin a write transaction");
    if (rc)
        return rc;
    if (st->depth > 0) {
        st->depth++;
        return 0;
    }
    rc = step_done(st, st->begin, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    st->depth = 1;
    st->doomed = false;
    return 0;
}

/* Ends the outermost transaction with ROLLBACK; SQLite may already have
 * rolled it back itself after an I/O error, a full disk or out of memory. */
static int rollback_outer(jc__store *st)
{
    st->depth = 0;
    st->doomed = false;
    if (sqlite3_get_autocommit(st->db))
        return 0;
    return step_done(st, st->rollback, "ROLLBACK");
}

int jc__store_commit(jc__store *st)
{
    int rc = store_enter_write(st, "commit");
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
        return jc__set_error(JC_EIO,
                             "cache file '%s': SQLite rolled the transaction back after an "
                             "earlier error; nothing was committed",
                             st->path);
    }
    rc = step_done(st, st->commit, "COMMIT");
    /* A COMMIT that failed may leave the transaction open (SQLITE_BUSY): the
     * caller may then commit again or roll back. */
    if (rc && !sqlite3_get_autocommit(st->db))
        st->depth = 1;
    return rc;
}

int jc__store_rollback(jc__store *st)
{
    int rc = store_enter_write(st, "roll back");
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

/* ---- entries ---- */

/* Copies the found row into *hit; the result goes into st->buf. */
static int fill_hit(jc__store *st, sqlite3_stmt *s, jc__hit *hit)
{
    int64_t rowid = sqlite3_column_int64(s, 0);
    if (sqlite3_column_type(s, 1) != SQLITE_BLOB)
        return jc__set_error(JC_ECORRUPT,
                             "cache file '%s' is corrupt: entry %lld has no result blob",
                             st->path, (long long)rowid);
    const void *p = sqlite3_column_blob(s, 1);
    size_t n = (size_t)sqlite3_column_bytes(s, 1);
    if (n > st->buf_cap || !st->buf) {
        void *nb = realloc(st->buf, n ? n : 1);
        if (!nb)
            return jc__set_error(JC_ENOMEM,
                                 "cache file '%s': out of memory reading a %zu-byte result",
                                 st->path, n);
        st->buf = nb;
        st->buf_cap = n ? n : 1;
    }
    if (n)
        memcpy(st->buf, p, n);
    hit->rowid = rowid;
    hit->result = st->buf;
    hit->result_len = n;
    hit->compute_seconds = sqlite3_column_double(s, 2);
    return 0;
}

int jc__store_get(jc__store *st, const uint8_t key[JC__KEY_LEN], jc__hit *hit)
{
    int rc = store_enter(st);
    if (rc)
        return rc;
    if (!key || !hit)
        return jc__set_error(JC_EINVAL, "cache file '%s': lookup with a NULL key or hit", st->path);
    /* SQLITE_STATIC: key is only read before the reset below. */
    sqlite3_bind_blob(st->get, 1, key, JC__KEY_LEN, SQLITE_STATIC);
    int step = sqlite3_step(st->get);
    if (step == SQLITE_ROW) {
        rc = fill_hit(st, st->get, hit);
        if (rc == 0)
            rc = 1;
    } else if (step != SQLITE_DONE) {
        rc = store_error(st, step, "looking up an entry");
    }
    sqlite3_reset(st->get);
    return rc;
}

int jc__store_touch(jc__store *st, int64_t rowid, double now)
{
    int rc = store_enter_write(st, "record a hit");
    if (rc)
        return rc;
    sqlite3_bind_double(st->touch, 1, now);
    sqlite3_bind_int64(st->touch, 2, rowid);
    return step_done(st, st->touch, "recording a hit");
}

/* Binds a blob that stays a BLOB when empty: a zero-length blob bound from
 * a NULL pointer would be stored as NULL and violate NOT NULL. */
static int bind_bytes(sqlite3_stmt *s, int i, const void *p, size_t n)
{
    if (n == 0)
        return sqlite3_bind_zeroblob(s, i, 0);
    return sqlite3_bind_blob64(s, i, p, n, SQLITE_STATIC);
}

/* Binds e to the insert; returns SQLite's first failure. */
static int bind_entry(sqlite3_stmt *s, const jc__entry_in *e)
{
    int rc = sqlite3_bind_blob(s, 1, e->key, JC__KEY_LEN, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 2, e->function, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 3, e->version, -1, SQLITE_STATIC);
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
    return rc;
}

int jc__store_put(jc__store *st, const jc__entry_in *e)
{
    int rc = store_enter_write(st, "store an entry");
    if (rc)
        return rc;
    if (!e || !e->key || !e->function || !e->version || (!e->args && e->args_len) ||
        (!e->result && e->result_len))
        return jc__set_error(JC_EINVAL, "cache file '%s': storing an incomplete entry", st->path);
    rc = bind_entry(st->put, e);
    if (rc == SQLITE_OK)
        return step_done(st, st->put, "storing an entry");
    if ((rc & 0xff) == SQLITE_TOOBIG)
        rc = jc__set_error(JC_EINVAL,
                           "cache file '%s': cannot store an entry of %s with %zu bytes of "
                           "arguments and %zu bytes of result: SQLite stores at most %d bytes "
                           "in one value",
                           st->path, e->function, e->args_len, e->result_len,
                           sqlite3_limit(st->db, SQLITE_LIMIT_LENGTH, -1));
    else
        rc = store_error(st, rc, "storing an entry");
    sqlite3_reset(st->put);
    return rc;
}

int jc__store_delete(jc__store *st, const uint8_t key[JC__KEY_LEN])
{
    int rc = store_enter_write(st, "remove an entry");
    if (rc)
        return rc;
    if (!key)
        return jc__set_error(JC_EINVAL, "cache file '%s': removing a NULL key", st->path);
    sqlite3_bind_blob(st->del, 1, key, JC__KEY_LEN, SQLITE_STATIC);
    rc = step_done(st, st->del, "removing an entry");
    return rc ? rc : sqlite3_changes(st->db) > 0;
}

double jc__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
