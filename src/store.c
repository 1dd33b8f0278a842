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

#include "store.h"

#define DEFAULT_BUSY_TIMEOUT_MS 10000

#define STR_(x) #x
#define STR(x) STR_(x)

struct jc__store {
    sqlite3 *db;
    char *path;
    unsigned flags;
    int busy_timeout_ms;
    int schema;  /* the file's schema version: JC__SCHEMA_VERSION once a
                  * writable open has migrated it; older when read-only */
    pid_t pid;   /* the process that opened the store */
    unsigned long generation; /* fork_generation when it was opened */
    int depth;   /* nesting of jc__store_begin; 0 = no explicit transaction */
    bool doomed; /* an inner rollback happened: the outermost commit rolls back */
    /* The last lookup's result, copied out of SQLite (see the note above). */
    void *buf;
    size_t buf_cap;
    /* The last jc__store_row's strings and blobs (see store.h). */
    char *rowbuf;
    size_t rowbuf_cap;
    sqlite3_stmt *get, *touch, *put, *del, *begin, *commit, *rollback;
    sqlite3_stmt *scan, *max_rowid; /* jc__store_get_many */
    sqlite3_stmt *touch_many;       /* jc__store_touch_many: TOUCH_CHUNK keys */
    sqlite3_stmt *touch_rowids;     /* the same by rowid (jc__store_touch_rowids) */
    sqlite3_stmt *data_version;     /* PRAGMA data_version (jc__store_version) */
    uint64_t deletes;               /* statements of this connection that removed entries */
    /* An explicit read transaction around many lookups (a run's): one
     * snapshot, one set of WAL read locks. Any write ends it first. (A
     * snapshot held across jc_memo calls was tried and dropped: after the
     * last hit nothing ends it, and it holds off other processes'
     * checkpoints for as long as the program then computes.) */
    sqlite3_stmt *begin_read, *end_read;
    bool reading;
    /* Opened with SQLite's immutable flag: a read-only look at a file in a
     * directory or on a mount this process cannot write, with no -wal data
     * beside it (see open_db). */
    bool immutable;
    /* Prepared on first use by inspect.c's calls, which a run never makes:
     * [0] without blobs, [1] with them. */
    sqlite3_stmt *row[2], *row_key[2], *range, *put_row, *del_rowid;
    sqlite3_stmt *size; /* jc__store_size_get */
    sqlite3_stmt *params_put, *params_get; /* jc__store_params_put / _get */
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

static bool same_process(const jc__store *st)
{
    return st->generation == atomic_load_explicit(&fork_generation, memory_order_relaxed);
}

static int store_check(const jc__store *st)
{
    if (!st)
        return jc__set_error(JC_EINVAL, "store: NULL store");
    if (!same_process(st))
        return jc__set_error(JC_EINVAL,
                             "cache file '%s' was opened in process %ld and cannot be used in "
                             "process %ld (an SQLite connection must not cross fork)",
                             st->path, (long)st->pid, (long)getpid());
    return 0;
}

static void end_read(jc__store *st);

static int store_enter(jc__store *st)
{
    return store_check(st);
}

/* The gate of every write: also ends a held read transaction, so that the
 * write is not swallowed into it (and committed only with it). */
static int store_enter_write(jc__store *st, const char *what)
{
    int rc = store_enter(st);
    if (rc)
        return rc;
    if (st->flags & JC__STORE_READONLY)
        return jc__set_error(JC_EREADONLY, "cache file '%s' was opened read-only%s: cannot %s",
                             st->path,
                             st->immutable ? " (its directory or mount is not writable: hits are "
                                             "served, nothing is stored or recorded)"
                                           : "",
                             what);
    end_read(st);
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
        rc = jc__set_error(JC_EIO, "cannot %s cache file '%s': directory '%s' is not writable (%s)%s",
                           verb, path, dir, strerror(errno),
                           strcmp(verb, "open") == 0 ? "; open it read-only (JC_CACHE_READONLY) to use "
                                                       "its entries"
                                                     : "");
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

/* Creates the new, empty cache file with mode 0666 as the umask allows,
 * as every Unix tool does: SQLite would create it 0644 whatever the umask,
 * so that the members of a group could not share it even with umask 002 in
 * a setgid directory (README). SQLite takes an empty file for a new
 * database, and gives the -wal and -shm files it makes beside it the
 * database file's mode (and, run as root, its owner). Another process
 * creating the same file at the same moment is no error (EEXIST). */
static int create_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno == EEXIST)
        return 0;
    return jc__set_error(JC_EIO, "cannot create cache file '%s': %s", path, strerror(errno));
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
    int rc = check_dir_writable(path, "create");
    return rc ? rc : create_file(path);
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

/* Size of path + suffix, 0 when absent. */
static int64_t side_size(const char *path, const char *suffix)
{
    char *p = jc__strdup_printf("%s%s", path, suffix);
    struct stat sb;
    int64_t n = p && stat(p, &sb) == 0 ? (int64_t)sb.st_size : 0;
    free(p);
    return n;
}

/* Whether a reader can use the WAL index beside path: the -shm file exists
 * and is readable, or it could be created (a writable directory). */
static bool shm_usable(const char *path)
{
    char *shm = jc__strdup_printf("%s-shm", path);
    char *dir = parent_dir(path);
    bool ok = (shm && access(shm, R_OK) == 0) || (dir && access(dir, W_OK | X_OK) == 0);
    free(shm);
    free(dir);
    return ok;
}

/* "file:" URI of path with SQLite's immutable flag: every byte but the
 * unreserved ones and '/' percent-encoded (https://www.sqlite.org/uri.html). */
static char *immutable_uri(const char *path)
{
    size_t n = strlen(path);
    char *uri = malloc(3 * n + 32);
    if (!uri)
        return NULL;
    char *o = uri + sprintf(uri, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("/-._~", *p))
            *o++ = (char)*p;
        else
            o += sprintf(o, "%%%02X", *p);
    }
    strcpy(o, "?immutable=1");
    return uri;
}

/* A read-only open of a file in a directory (or on a mount) that this
 * process cannot write: SQLite must create the -shm file to read a WAL
 * database, and cannot. Without -wal data beside the file (a closed cache,
 * checkpointed), the file alone is the whole cache: it is opened immutable,
 * which needs no -shm and takes no locks. With -wal data and no -shm to
 * read it through, the committed results in it cannot be read safely: that
 * is said, rather than serving a partial cache. */
static int readonly_mode(jc__store *st)
{
    if (!(st->flags & JC__STORE_READONLY) || shm_usable(st->path))
        return 0;
    if (side_size(st->path, "-wal") > 0)
        return jc__set_error(JC_EIO,
                             "cannot read cache file '%s': results are still in '%s-wal' and the "
                             "directory is not writable, so SQLite cannot create '%s-shm' to read "
                             "them; ask the program using it to close it (a closed cache is "
                             "complete on its own), or copy it with 'jobcache backup'",
                             st->path, st->path, st->path);
    st->immutable = true;
    return 0;
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

    int rc = readonly_mode(st);
    if (rc)
        return rc;
    char *uri = NULL;
    if (st->immutable) {
        if (!(uri = immutable_uri(st->path)))
            return jc__set_error(JC_ENOMEM, "out of memory opening cache file '%s'", st->path);
        oflags |= SQLITE_OPEN_URI;
    }
    rc = sqlite3_open_v2(uri ? uri : st->path, &st->db, oflags, NULL);
    free(uri);
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

/* Leases (schema 4): a run claims the calls it is about to compute, so
 * that another process on the same cache waits for them instead of
 * computing them too. One row per owner (its identity, see cache.c, and
 * when its claim lapses unless renewed), and its claimed keys in rows of up
 * to a few thousand sorted keys each (a blob of 16-byte keys): a cold run
 * of 100,000 calls writes some 25 rows, not 100,000, and renewing is one
 * update of the owner's row. */
#define LEASE_TABLES                                                                               \
    "CREATE TABLE lease_owners (owner TEXT PRIMARY KEY, expires REAL NOT NULL, started REAL NOT NULL)" \
    " WITHOUT ROWID;" \
    "CREATE TABLE leases (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, keys BLOB NOT NULL);"

/* The record of runs (schema 5): a row per jc_run (and per cache session
 * of jc_memo calls), and the failures of each, which are never cached as
 * results and would otherwise leave no trace. Bounded: the oldest runs go
 * past the setting log-runs (jc__store_run_add). */
#define RUN_TABLES                                                                                 \
    "CREATE TABLE runs (id INTEGER PRIMARY KEY, started REAL NOT NULL, ended REAL NOT NULL,"      \
    " host TEXT NOT NULL, pid INTEGER NOT NULL, command TEXT NOT NULL, kind TEXT NOT NULL,"        \
    " n_jobs INTEGER NOT NULL, backend TEXT NOT NULL, calls INTEGER NOT NULL,"                     \
    " cached INTEGER NOT NULL, computed INTEGER NOT NULL, failed INTEGER NOT NULL,"                \
    " skipped INTEGER NOT NULL, elapsed REAL NOT NULL, saved REAL NOT NULL, status TEXT NOT NULL);" \
    "CREATE TABLE run_failures (run INTEGER NOT NULL, n INTEGER NOT NULL, status TEXT NOT NULL,"  \
    " message TEXT NOT NULL, PRIMARY KEY (run, n)) WITHOUT ROWID;"

/* The names of functions' positional parameters (schema 6), by function
 * and version: "beta,seed" (identifiers joined by commas). Not part of any
 * key: renaming a parameter changes no result. */
#define PARAMS_TABLE                                                                               \
    "CREATE TABLE params (function TEXT NOT NULL, version TEXT NOT NULL, names TEXT NOT NULL,"   \
    " PRIMARY KEY (function, version)) WITHOUT ROWID;"

/* The schema of a new file (version JC__SCHEMA_VERSION). A file of an
 * older version is brought here by the migrations below. */
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
    " hits INTEGER NOT NULL DEFAULT 0,"
    /* Schema 2: XXH3-128 of `result` (canonical, big-endian), checked on
     * every hit and by verify; and the fingerprint of the code that
     * computed the entry. NULL is unknown: never a mismatch. */
    " result_check BLOB,"
    " code_fp BLOB,"
    /* Schema 3: the key format (JC_KEY_FORMAT_VERSION) the entry's key was
     * made with. An entry of another format is never served, and verify
     * and merge tell it apart from damage (docs/format.md). */
    " key_format INTEGER NOT NULL DEFAULT 1);"
    /* A rowid table, not WITHOUT ROWID: results can be large blobs, which a
     * WITHOUT ROWID table would keep in its (key-ordered) B-tree pages. */
    "CREATE UNIQUE INDEX entries_key ON entries(key);"
    /* Only the key is indexed. Every stored result pays for each index, and
     * storing is the hot path of a cold run; per-function queries (stats,
     * rm --function) are rare and scan. */
    /* No index on last_used: every hit rewrites last_used, and an index on
     * it would cost an index update per hit on the hot path of a warm
     * rerun. Ordering by it (ls --sort used, prune) sorts instead, which
     * only the rare inspection and eviction pay for. */
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    LEASE_TABLES
    RUN_TABLES
    PARAMS_TABLE
    "INSERT INTO meta VALUES ('key_format', '" STR(JC_KEY_FORMAT_VERSION) "'),"
    " ('created_by', 'jobcache " JC_VERSION_STRING "');"
    "PRAGMA user_version = " STR(JC__SCHEMA_VERSION) ";";

/* The chain of migrations: migrations[k] takes a file of schema k + 1 to
 * k + 2. A writable open runs every step the file needs, and sets
 * user_version, in one transaction: a kill in the middle leaves the file as
 * it was. A read-only open reads an older schema as it is (store.h). Each
 * later schema change adds one step here, and a file made by the code
 * before it under tests/data, which a test migrates. */
static const char *const migrations[] = {
    /* 1 -> 2 (jobcache 0.2.0): result checksums and code fingerprints.
     * Entries of 0.1.0 get their checksum now, so that they keep hitting
     * and a later change to their bytes is caught; their code is unknown. */
    "ALTER TABLE entries ADD COLUMN result_check BLOB;"
    "ALTER TABLE entries ADD COLUMN code_fp BLOB;"
    "UPDATE entries SET result_check = jc_xxh3_128(result) WHERE typeof(result) = 'blob';"
    "INSERT OR REPLACE INTO meta VALUES ('migrated_by', 'jobcache " JC_VERSION_STRING "');",
    /* 2 -> 3: each entry's key format. Every entry written before it was
     * made with key format 1, the only one there was. (Adding a column with
     * a constant default rewrites no row: instant on any cache.) */
    "ALTER TABLE entries ADD COLUMN key_format INTEGER NOT NULL DEFAULT 1;"
    "INSERT OR REPLACE INTO meta VALUES ('migrated_by', 'jobcache " JC_VERSION_STRING "');",
    /* 3 -> 4: leases (jobcache 0.2.0). */
    LEASE_TABLES "INSERT OR REPLACE INTO meta VALUES ('migrated_by', 'jobcache " JC_VERSION_STRING "');",
    /* 4 -> 5: the record of runs (jobcache 0.2.0). */
    RUN_TABLES "INSERT OR REPLACE INTO meta VALUES ('migrated_by', 'jobcache " JC_VERSION_STRING "');",
    /* 5 -> 6: the names of parameters. Functions of earlier runs have none
     * until a run stores one of their results again. */
    PARAMS_TABLE "INSERT OR REPLACE INTO meta VALUES ('migrated_by', 'jobcache " JC_VERSION_STRING "');",
};
_Static_assert(sizeof migrations / sizeof *migrations == JC__SCHEMA_VERSION - 1,
               "one migration step per schema version");

void jc__result_check(const void *result, size_t len, uint8_t out[JC__CHECK_LEN])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(len ? result : "", len));
    memcpy(out, c.digest, JC__CHECK_LEN);
}

/* jc_xxh3_128(blob) for the migration: the checksum of a result. Direct
 * only (no use from a schema, views or triggers of a hostile file). */
static void sql_xxh3_128(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    uint8_t out[JC__CHECK_LEN];
    jc__result_check(sqlite3_value_blob(argv[0]), (size_t)sqlite3_value_bytes(argv[0]), out);
    sqlite3_result_blob(ctx, out, JC__CHECK_LEN, SQLITE_TRANSIENT);
}

/* What the file is, read without writing anything: its user_version, how
 * many tables, indexes, views and triggers it has that SQLite did not make,
 * and whether it has jobcache's two tables with the meta row every cache
 * has. One statement reads them from one snapshot: read apart, another
 * process could create the schema in between, and the file would look like
 * a foreign database (tables, no version). */
typedef struct schema_info {
    int64_t version, objects;
    bool ours; /* entries and meta tables, meta has key_format */
} schema_info;

static int read_schema_info(jc__store *st, schema_info *info)
{
    static const char sql[] =
        "SELECT (SELECT user_version FROM pragma_user_version),"
        " (SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'),"
        " (SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('entries', 'meta'))";
    sqlite3_stmt *s = NULL;
    int ret = 0;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        info->version = sqlite3_column_int64(s, 0);
        info->objects = sqlite3_column_int64(s, 1);
        info->ours = sqlite3_column_int64(s, 2) == 2;
    } else {
        ret = store_error(st, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "reading the file");
    }
    sqlite3_finalize(s);
    if (ret || !info->ours)
        return ret;
    /* Both tables are there: the meta row says they are jobcache's (another
     * application may have tables of these names too). */
    s = NULL;
    rc = sqlite3_prepare_v2(st->db, "SELECT count(*) FROM meta WHERE name = 'key_format'", -1, &s, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW)
        info->ours = sqlite3_column_int64(s, 0) == 1;
    else
        info->ours = false; /* a meta table of another shape: not ours */
    sqlite3_finalize(s);
    return 0;
}

/* Decides what the file is: 0 ours and current, 1 empty, 2 ours and older
 * (migrated by a writable open), or a negative code. Nothing is written
 * before this has said the file is ours. */
static int classify(jc__store *st, const schema_info *info)
{
    if (info->version == 0 && info->objects == 0)
        return 1; /* empty */
    if (info->version >= 1 && info->version <= JC__SCHEMA_VERSION && !info->ours)
        return jc__set_error(JC_ECORRUPT,
                             "cache file '%s' is not a jobcache cache: it is an SQLite database "
                             "of another application (user_version %lld, %lld schema objects, "
                             "no jobcache tables)",
                             st->path, (long long)info->version, (long long)info->objects);
    if (info->version > JC__SCHEMA_VERSION)
        return jc__set_error(JC_ESCHEMA,
                             "cache file '%s' has schema version %lld, newer than version %d of "
                             "this library (jobcache %s); use a newer jobcache",
                             st->path, (long long)info->version, JC__SCHEMA_VERSION, JC_VERSION_STRING);
    if (info->version == JC__SCHEMA_VERSION)
        return 0;
    if (info->version >= 1)
        return 2;
    return jc__set_error(JC_ECORRUPT,
                         "cache file '%s' is not a jobcache cache: it is an SQLite database "
                         "of another application (user_version %lld, %lld schema objects)",
                         st->path, (long long)info->version, (long long)info->objects);
}

/* Brings an older file to JC__SCHEMA_VERSION in one write transaction.
 * Another process may be doing the same: the version is read again under
 * the write lock, so the steps run once. */
static int migrate(jc__store *st)
{
    int rc = sqlite3_create_function_v2(st->db, "jc_xxh3_128", 1,
                                        SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, NULL,
                                        sql_xxh3_128, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_error(st, rc, "preparing the schema migration");
    rc = run_sql(st, "BEGIN IMMEDIATE", "locking the file to migrate its schema");
    if (rc)
        return rc;
    schema_info info = {0};
    rc = read_schema_info(st, &info);
    if (!rc)
        rc = classify(st, &info);
    int64_t from = info.version;
    for (int64_t v = from; rc == 2 && v < JC__SCHEMA_VERSION; v++) {
        char what[96];
        snprintf(what, sizeof what, "migrating the schema from version %lld to %lld", (long long)v,
                 (long long)v + 1);
        if ((rc = run_sql(st, migrations[v - 1], what)) == 0)
            rc = 2;
    }
    if (rc == 2)
        rc = run_sql(st, "PRAGMA user_version = " STR(JC__SCHEMA_VERSION), "migrating the schema");
    if (rc >= 0)
        rc = run_sql(st, "COMMIT", "migrating the schema");
    if (rc < 0)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL); /* harmless if none is open */
    sqlite3_create_function_v2(st->db, "jc_xxh3_128", 1, SQLITE_UTF8, NULL, NULL, NULL, NULL, NULL);
    return rc;
}

/* Creates the schema in an empty file. Another process may be doing the
 * same: the check is repeated under the write lock, so exactly one creates;
 * the others find a current file, or (an older library won the race) one
 * to migrate. */
static int create_schema(jc__store *st)
{
    schema_info info = {0};
    int rc = run_sql(st, "BEGIN IMMEDIATE", "locking the new cache file");
    if (rc)
        return rc;
    rc = read_schema_info(st, &info);
    if (!rc)
        rc = classify(st, &info);
    if (rc == 1)
        rc = run_sql(st, schema_sql, "creating the schema");
    if (rc >= 0)
        rc = run_sql(st, "COMMIT", "creating the schema");
    if (rc < 0)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL); /* harmless if none is open */
    return rc == 2 ? migrate(st) : rc < 0 ? rc : 0;
}

/* Refuses what is not ours; makes an empty file a cache; migrates an older
 * one. This is the first read of the file, where SQLite, which opens
 * lazily, finds out that a file is not a database or is damaged. */
static int check_schema(jc__store *st)
{
    schema_info info = {0};
    int rc = read_schema_info(st, &info);
    /* A read that fails as a write: to read a WAL database, even a read-only
     * connection must create the -shm file beside it. */
    if (rc == JC_EREADONLY)
        return jc__set_error(JC_EIO,
                             "cannot read cache file '%s': reading a WAL database needs '%s-shm', "
                             "which cannot be created (is its directory read-only?)",
                             st->path, st->path);
    if (!rc)
        rc = classify(st, &info);
    if (rc < 0)
        return rc;
    st->schema = rc == 1 ? JC__SCHEMA_VERSION : (int)info.version;
    if (st->flags & JC__STORE_READONLY) {
        /* Never write, not even the journal mode; an older schema is read
         * as it is. */
        if (rc == 1)
            return jc__set_error(JC_ECORRUPT, "cache file '%s' is empty: not a jobcache cache",
                                 st->path);
        return 0;
    }
    int kind = rc;
    /* An empty file gets auto_vacuum=INCREMENTAL, so that it can give the
     * pages of removed entries back to the system (PRAGMA
     * incremental_vacuum), which keeping it within max_size needs; it costs
     * a pointer-map page per about 800 pages. SQLite takes it only before
     * the first table and before the switch to WAL. It writes nothing. */
    rc = kind == 1 ? run_sql(st, "PRAGMA auto_vacuum = INCREMENTAL", "creating the schema") : 0;
    if (!rc)
        rc = set_wal(st);
    if (!rc && kind == 1)
        rc = create_schema(st);
    if (!rc && kind == 2)
        rc = migrate(st);
    if (!rc)
        st->schema = JC__SCHEMA_VERSION;
    /* A new or migrated schema goes into the database file at once: a copy
     * of the file alone, even after a crash, is then still a cache (it may
     * lack the results committed since, never its tables). */
    if (!rc && kind != 0)
        sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
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

enum { TOUCH_CHUNK = 256 };

/* The schema-2 columns, or NULLs in their place in an older file read as
 * it is. */
static const char *v2_columns(const jc__store *st)
{
    return st->schema >= 2 ? "result_check, code_fp" : "NULL, NULL";
}

/* The key format of each entry: its column (schema 3), or 1 in an older
 * file read as it is (every entry of one was made with key format 1). */
static const char *key_format_column(const jc__store *st)
{
    return st->schema >= 3 ? "key_format" : "1";
}

static int prepare_all(jc__store *st)
{
    char sql[256];
    /* An entry of another key format is never served, not even under an
     * equal key (formats cannot collide in practice; a run does not count
     * on it). */
    snprintf(sql, sizeof sql,
             "SELECT rowid, result, compute_seconds, %s FROM entries WHERE key = ?1 AND %s = "
             STR(JC_KEY_FORMAT_VERSION),
             v2_columns(st), key_format_column(st));
    int rc = prepare(st, sql, &st->get);
    /* key first: a row whose key is not wanted is passed over without
     * reading its arguments or result (overflow pages stay unread). */
    snprintf(sql, sizeof sql,
             "SELECT key, rowid, compute_seconds, result, %s FROM entries WHERE %s = " STR(JC_KEY_FORMAT_VERSION),
             v2_columns(st), key_format_column(st));
    if (!rc)
        rc = prepare(st, sql, &st->scan);
    if (!rc)
        rc = prepare(st, "SELECT max(rowid) FROM entries", &st->max_rowid);
    if (!rc)
        rc = prepare(st, "BEGIN", &st->begin_read);
    if (!rc)
        rc = prepare(st, "COMMIT", &st->end_read);
    if (rc || (st->flags & JC__STORE_READONLY))
        return rc; /* a read-only store never writes: nothing more to prepare */
    rc = prepare(st, "UPDATE entries SET hits = hits + ?3, last_used = ?1 WHERE key = ?2", &st->touch);
    if (!rc) {
        /* UPDATE ... WHERE key IN (?2, ..., ?TOUCH_CHUNK+1): one statement
         * records TOUCH_CHUNK hits, so a warm rerun does not pay a statement
         * (step, reset, binds) per hit. */
        char tsql[64 + TOUCH_CHUNK * 8];
        int len = snprintf(tsql, sizeof tsql, "UPDATE entries SET hits = hits + 1, last_used = ?1 WHERE key IN (");
        for (int i = 0; i < TOUCH_CHUNK; i++)
            len += snprintf(tsql + len, sizeof tsql - (size_t)len, "%s?%d", i ? "," : "", i + 2);
        snprintf(tsql + len, sizeof tsql - (size_t)len, ")");
        rc = prepare(st, tsql, &st->touch_many);
        if (!rc) {
            len = snprintf(tsql, sizeof tsql, "UPDATE entries SET hits = hits + 1, last_used = ?1 WHERE rowid IN (");
            for (int i = 0; i < TOUCH_CHUNK; i++)
                len += snprintf(tsql + len, sizeof tsql - (size_t)len, "%s?%d", i ? "," : "", i + 2);
            snprintf(tsql + len, sizeof tsql - (size_t)len, ")");
            rc = prepare(st, tsql, &st->touch_rowids);
        }
    }
    if (!rc)
        rc = prepare(st,
                     "INSERT INTO entries (key, function, version, args, result, args_size,"
                     " result_size, created, last_used, compute_seconds, hits, result_check, code_fp,"
                     " key_format)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, 0, ?10, ?11, "
                     STR(JC_KEY_FORMAT_VERSION) ")"
                     " ON CONFLICT (key) DO UPDATE SET function = excluded.function,"
                     " version = excluded.version, args = excluded.args,"
                     " result = excluded.result, args_size = excluded.args_size,"
                     " result_size = excluded.result_size, created = excluded.created,"
                     " last_used = excluded.last_used,"
                     " compute_seconds = excluded.compute_seconds, hits = 0,"
                     " result_check = excluded.result_check, code_fp = excluded.code_fp,"
                     " key_format = excluded.key_format",
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
    pthread_once(&atfork_once, install_atfork);
    st->generation = atomic_load(&fork_generation);

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
    sqlite3_stmt *all[] = {st->get,        st->touch,      st->put,         st->del,
                           st->begin,      st->commit,     st->rollback,    st->row[0],
                           st->row[1],     st->row_key[0], st->row_key[1],  st->range,
                           st->put_row,    st->del_rowid,  st->scan,        st->max_rowid,
                           st->touch_many, st->begin_read, st->end_read, st->touch_rowids, st->data_version, st->size,
                           st->params_put, st->params_get};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        sqlite3_finalize(all[i]); /* NULL is a no-op */
}

void jc__store_close(jc__store *st)
{
    if (!st)
        return;
    /* In a forked child the connection belongs to the parent: leave it. */
    if (st->db && same_process(st)) {
        end_read(st);
        if (st->depth > 0) {
            /* Close ends every level. A failure is left in jc_errmsg:
             * close has no way to report it. */
            st->depth = 1;
            jc__store_commit(st);
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
    free(st->buf);
    free(st->rowbuf);
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

static void end_read(jc__store *st)
{
    if (!st->reading)
        return;
    st->reading = false;
    if (!sqlite3_get_autocommit(st->db)) {
        sqlite3_step(st->end_read); /* a read transaction: nothing to lose */
        sqlite3_reset(st->end_read);
    }
}

int jc__store_begin(jc__store *st)
{
    int rc = store_enter_write(st, "begin a write transaction");
    if (rc)
        return rc;
    end_read(st);
    if (st->depth > 0 && sqlite3_get_autocommit(st->db)) {
        /* SQLite rolled the transaction back by itself (a full disk): the
         * count of begins is stale; what it held is gone. Start afresh. */
        st->depth = 0;
        st->doomed = false;
    }
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

/* A 16-byte blob column into out; false when NULL or of another length (a
 * hostile file: an unknown checksum is no checksum, and verify reports the
 * bad length). */
static bool column_check(sqlite3_stmt *s, int col, uint8_t out[JC__CHECK_LEN])
{
    if (sqlite3_column_type(s, col) != SQLITE_BLOB || sqlite3_column_bytes(s, col) != JC__CHECK_LEN)
        return false;
    memcpy(out, sqlite3_column_blob(s, col), JC__CHECK_LEN);
    return true;
}

/* The checksum and code fingerprint at columns col, col + 1. A checksum
 * column that holds something other than NULL but not 16 bytes still
 * counts as a checksum (all zero bytes), so that it fails: the row was
 * damaged. */
static void hit_checks(sqlite3_stmt *s, int col, jc__hit *hit)
{
    hit->has_check = column_check(s, col, hit->check);
    if (!hit->has_check && sqlite3_column_type(s, col) != SQLITE_NULL) {
        hit->has_check = true;
        memset(hit->check, 0, sizeof hit->check);
    }
    hit->has_code_fp = column_check(s, col + 1, hit->code_fp);
}

/* Copies the found row into *hit; the result goes into st->buf. Returns 1,
 * 0 when the row has no usable result, or a negative code. */
static int fill_hit(jc__store *st, sqlite3_stmt *s, jc__hit *hit)
{
    int64_t rowid = sqlite3_column_int64(s, 0);
    if (sqlite3_column_type(s, 1) != SQLITE_BLOB)
        return 0; /* like a blob that does not decode: a miss, computed again */
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
    hit_checks(s, 3, hit);
    return 1;
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
        rc = fill_hit(st, st->get, hit); /* 1 found, 0 unusable, < 0 error */
    } else if (step != SQLITE_DONE) {
        rc = store_error(st, step, "looking up an entry");
    }
    sqlite3_reset(st->get);
    return rc;
}

int jc__store_read_begin(jc__store *st)
{
    int rc = store_enter(st);
    if (rc || st->depth > 0 || st->reading)
        return rc;
    int b = sqlite3_step(st->begin_read);
    sqlite3_reset(st->begin_read);
    if (b != SQLITE_DONE)
        return store_error(st, b, "beginning a read transaction");
    st->reading = true;
    return 0;
}

void jc__store_read_end(jc__store *st)
{
    if (st && same_process(st))
        end_read(st);
}


/* A sum from the file as an int64: a hostile file can make total() any
 * double, and converting one out of range is undefined. */
static int64_t clamp_int64(double d)
{
    if (!(d >= 0))
        return 0;
    if (d >= 9.2e18)
        return INT64_MAX;
    return (int64_t)d;
}

/* ---- many lookups at once ---- */

/* Open-addressing set of the wanted keys. The keys are hashes already, so
 * their first 8 bytes index the table; each slot keeps them too, so that a
 * probe compares against the caller's key only on a likely match. */
typedef struct keyslot {
    uint64_t bits;
    size_t index; /* + 1; 0 = empty */
} keyslot;

typedef struct keyset {
    keyslot *slots;
    size_t mask;
} keyset;

static uint64_t key_bits(const uint8_t *k)
{
    uint64_t h;
    memcpy(&h, k, sizeof h);
    return h;
}

static int keyset_build(keyset *ks, const uint8_t *const *keys, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    ks->slots = calloc(cap, sizeof *ks->slots);
    if (!ks->slots)
        return jc__set_error(JC_ENOMEM, "out of memory looking up %zu keys", n);
    ks->mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = key_bits(keys[i]);
        size_t at = (size_t)bits & ks->mask;
        while (ks->slots[at].index)
            at = (at + 1) & ks->mask;
        ks->slots[at] = (keyslot){bits, i + 1};
    }
    return 0;
}

/* The index of key among the wanted keys, or SIZE_MAX. */
static size_t keyset_find(const keyset *ks, const uint8_t *const *keys, const uint8_t *key)
{
    uint64_t bits = key_bits(key);
    for (size_t at = (size_t)bits & ks->mask; ks->slots[at].index; at = (at + 1) & ks->mask)
        if (ks->slots[at].bits == bits && memcmp(keys[ks->slots[at].index - 1], key, JC__KEY_LEN) == 0)
            return ks->slots[at].index - 1;
    return SIZE_MAX;
}

/* One pass over the whole table, picking out the wanted rows. */
static int get_by_scan(jc__store *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx)
{
    keyset ks = {0};
    int rc = keyset_build(&ks, keys, n);
    if (rc)
        return rc;
    bool *seen = calloc(n, sizeof *seen);
    if (!seen) {
        free(ks.slots);
        return jc__set_error(JC_ENOMEM, "out of memory looking up %zu keys", n);
    }
    int step;
    while ((step = sqlite3_step(st->scan)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st->scan, 0) != JC__KEY_LEN)
            continue; /* the schema's CHECK makes this impossible; verify reports it */
        size_t i = keyset_find(&ks, keys, sqlite3_column_blob(st->scan, 0));
        /* Each wanted key is answered once: a hostile file can hold the same
         * key twice behind an index that claims to be unique. */
        if (i == SIZE_MAX || seen[i])
            continue;
        seen[i] = true;
        if (sqlite3_column_type(st->scan, 3) != SQLITE_BLOB)
            continue; /* like a blob that does not decode: computed again */
        jc__hit hit = {
            .rowid = sqlite3_column_int64(st->scan, 1),
            .compute_seconds = sqlite3_column_double(st->scan, 2),
            .result = sqlite3_column_blob(st->scan, 3),
            .result_len = (size_t)sqlite3_column_bytes(st->scan, 3),
        };
        if (!hit.result)
            hit.result = "";
        hit_checks(st->scan, 4, &hit);
        on_hit(ctx, i, &hit);
    }
    if (step != SQLITE_DONE)
        rc = store_error(st, step, "scanning for entries");
    sqlite3_reset(st->scan);
    free(ks.slots);
    free(seen);
    return rc;
}

typedef struct key_ref {
    const uint8_t *key;
    size_t index;
} key_ref;

static int cmp_key_ref(const void *a, const void *b)
{
    return memcmp(((const key_ref *)a)->key, ((const key_ref *)b)->key, JC__KEY_LEN);
}

/* Point lookups, in key order: neighbouring keys share index pages. */
static int get_by_points(jc__store *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx)
{
    key_ref *order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return jc__set_error(JC_ENOMEM, "out of memory looking up %zu keys", n);
    for (size_t i = 0; i < n; i++)
        order[i] = (key_ref){keys[i], i};
    qsort(order, n, sizeof *order, cmp_key_ref);
    int rc = 0;
    for (size_t k = 0; k < n && !rc; k++) {
        size_t i = order[k].index;
        sqlite3_bind_blob(st->get, 1, keys[i], JC__KEY_LEN, SQLITE_STATIC);
        int step = sqlite3_step(st->get);
        if (step == SQLITE_ROW && sqlite3_column_type(st->get, 1) == SQLITE_BLOB) {
            jc__hit hit = {
                .rowid = sqlite3_column_int64(st->get, 0),
                .result = sqlite3_column_blob(st->get, 1),
                .result_len = (size_t)sqlite3_column_bytes(st->get, 1),
                .compute_seconds = sqlite3_column_double(st->get, 2),
            };
            if (!hit.result)
                hit.result = "";
            hit_checks(st->get, 3, &hit);
            on_hit(ctx, i, &hit);
        } else if (step != SQLITE_ROW && step != SQLITE_DONE) {
            rc = store_error(st, step, "looking up an entry");
        }
        sqlite3_reset(st->get);
    }
    free(order);
    return rc;
}

int jc__store_get_many(jc__store *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx)
{
    int rc = store_enter(st);
    if (rc || !n)
        return rc;
    /* max(rowid) bounds the number of rows, found in O(log n). When the
     * batch asks for a good share of the table, one sequential pass beats
     * n B-tree descents (each a few microseconds); otherwise point lookups. */
    int64_t rows = 0;
    int step = sqlite3_step(st->max_rowid);
    if (step == SQLITE_ROW)
        rows = sqlite3_column_int64(st->max_rowid, 0);
    sqlite3_reset(st->max_rowid);
    if (step != SQLITE_ROW)
        return store_error(st, step, "counting entries");
    if ((uint64_t)rows <= 4 * (uint64_t)n)
        return get_by_scan(st, keys, n, on_hit, ctx);
    return get_by_points(st, keys, n, on_hit, ctx);
}

int jc__store_touch(jc__store *st, const uint8_t key[JC__KEY_LEN], double now)
{
    return jc__store_touch_n(st, key, 1, now);
}

int jc__store_touch_n(jc__store *st, const uint8_t key[JC__KEY_LEN], int64_t hits, double now)
{
    int rc = store_enter_write(st, "record a hit");
    if (rc)
        return rc;
    sqlite3_bind_double(st->touch, 1, now);
    sqlite3_bind_blob(st->touch, 2, key, JC__KEY_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st->touch, 3, hits);
    return step_done(st, st->touch, "recording a hit");
}

int jc__store_version(jc__store *st, jc__store_ver *out)
{
    int rc = store_enter(st);
    if (rc)
        return rc;
    if (!st->data_version && (rc = prepare(st, "PRAGMA data_version", &st->data_version)))
        return rc;
    int step = sqlite3_step(st->data_version);
    out->data = step == SQLITE_ROW ? sqlite3_column_int64(st->data_version, 0) : -1;
    out->deletes = st->deletes;
    sqlite3_reset(st->data_version);
    return step == SQLITE_ROW ? 0 : store_error(st, step, "reading the data version");
}

int jc__store_touch_rowids(jc__store *st, const int64_t *rowids, size_t n, double now)
{
    int rc = store_enter_write(st, "record hits");
    size_t i = 0;
    for (; !rc && n - i >= TOUCH_CHUNK; i += TOUCH_CHUNK) {
        sqlite3_bind_double(st->touch_rowids, 1, now);
        for (int k = 0; k < TOUCH_CHUNK; k++)
            sqlite3_bind_int64(st->touch_rowids, k + 2, rowids[i + (size_t)k]);
        rc = step_done(st, st->touch_rowids, "recording hits");
    }
    if (!rc && i < n) {
        /* The rest in one more statement, padded with NULLs. */
        sqlite3_bind_double(st->touch_rowids, 1, now);
        for (size_t k = 0; k < TOUCH_CHUNK; k++)
            if (i + k < n)
                sqlite3_bind_int64(st->touch_rowids, (int)k + 2, rowids[i + k]);
            else
                sqlite3_bind_null(st->touch_rowids, (int)k + 2); /* IN (NULL) matches no row */
        rc = step_done(st, st->touch_rowids, "recording hits");
    }
    return rc;
}

int jc__store_touch_many(jc__store *st, const uint8_t *keys, size_t n, double now)
{
    int rc = store_enter_write(st, "record hits");
    size_t i = 0;
    for (; !rc && n - i >= TOUCH_CHUNK; i += TOUCH_CHUNK) {
        sqlite3_bind_double(st->touch_many, 1, now);
        for (int k = 0; k < TOUCH_CHUNK; k++)
            sqlite3_bind_blob(st->touch_many, k + 2, keys + JC__KEY_LEN * (i + (size_t)k), JC__KEY_LEN,
                              SQLITE_STATIC);
        rc = step_done(st, st->touch_many, "recording hits");
    }
    for (; !rc && i < n; i++)
        rc = jc__store_touch(st, keys + JC__KEY_LEN * i, now);
    return rc;
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
static int bind_entry(sqlite3_stmt *s, const jc__entry_in *e, const uint8_t check[JC__CHECK_LEN])
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
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(s, 10, check, JC__CHECK_LEN, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = e->code_fp ? sqlite3_bind_blob(s, 11, e->code_fp, JC__CHECK_LEN, SQLITE_STATIC)
                        : sqlite3_bind_null(s, 11);
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
    uint8_t check[JC__CHECK_LEN];
    jc__result_check(e->result, e->result_len, check);
    rc = bind_entry(st->put, e, check);
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

static int lazy(jc__store *st, sqlite3_stmt **s, const char *sql);

int jc__store_params_put(jc__store *st, const char *function, const char *version, const char *names)
{
    int rc = store_enter_write(st, "record parameter names");
    if (rc)
        return rc;
    if (!function || !version || !names)
        return jc__set_error(JC_EINVAL, "cache file '%s': recording incomplete parameter names", st->path);
    /* Written only when new or changed: storing results of a function
     * with names costs a lookup, not a write. */
    rc = lazy(st, &st->params_put,
              "INSERT INTO params (function, version, names) VALUES (?1, ?2, ?3)"
              " ON CONFLICT (function, version) DO UPDATE SET names = excluded.names"
              " WHERE names IS NOT excluded.names");
    if (rc)
        return rc;
    sqlite3_bind_text(st->params_put, 1, function, -1, SQLITE_STATIC);
    sqlite3_bind_text(st->params_put, 2, version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st->params_put, 3, names, -1, SQLITE_STATIC);
    rc = step_done(st, st->params_put, "recording parameter names");
    sqlite3_clear_bindings(st->params_put);
    return rc;
}

int jc__store_params_get(jc__store *st, const char *function, const char *version, char **names)
{
    *names = NULL;
    int rc = store_enter(st);
    if (rc || st->schema < 6)
        return rc;
    if (!function || !version)
        return jc__set_error(JC_EINVAL, "cache file '%s': parameter names of a NULL function", st->path);
    rc = lazy(st, &st->params_get, "SELECT names FROM params WHERE function = ?1 AND version = ?2");
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
        rc = store_error(st, step, "reading parameter names");
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

int jc__store_delete(jc__store *st, const uint8_t key[JC__KEY_LEN])
{
    int rc = store_enter_write(st, "remove an entry");
    if (rc)
        return rc;
    if (!key)
        return jc__set_error(JC_EINVAL, "cache file '%s': removing a NULL key", st->path);
    st->deletes++;
    sqlite3_bind_blob(st->del, 1, key, JC__KEY_LEN, SQLITE_STATIC);
    rc = step_done(st, st->del, "removing an entry");
    return rc ? rc : sqlite3_changes(st->db) > 0;
}

/* ---- inspecting and tending (store.h) ---- */

/* Statements prepared on first use; they stay until the store closes. */
static int lazy(jc__store *st, sqlite3_stmt **s, const char *sql)
{
    return *s ? 0 : prepare(st, sql, s);
}

/* The metadata columns of a row, then (schema 2) its checksum and code
 * fingerprint, then, when asked for, its blobs. */
#define ROW_COLUMNS                                                                                \
    "rowid, key, function, version, args_size, result_size, created, last_used,"                   \
    " compute_seconds, hits"
enum { COL_CHECK = 10, COL_KEY_FORMAT = 12, COL_BLOBS = 13 };

/* "SELECT <row columns> [, args, result] FROM entries WHERE <where>" for
 * this file's schema, into buf. */
static const char *row_sql(const jc__store *st, bool blobs, const char *where, char *buf, size_t cap)
{
    snprintf(buf, cap, "SELECT " ROW_COLUMNS ", %s, %s%s FROM entries WHERE %s", v2_columns(st),
             key_format_column(st), blobs ? ", args, result" : "", where);
    return buf;
}

/* Grows st->rowbuf to n bytes. */
static int reserve_rowbuf(jc__store *st, size_t n)
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
static int fill_row(jc__store *st, sqlite3_stmt *s, bool blobs, jc__row *row)
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
static int step_row(jc__store *st, sqlite3_stmt *s, bool blobs, jc__row *row, const char *what)
{
    int rc = 0;
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        rc = fill_row(st, s, blobs, row);
        if (rc == 0)
            rc = 1;
    } else if (step != SQLITE_DONE) {
        rc = store_error(st, step, what);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

int jc__store_row(jc__store *st, int64_t rowid, bool blobs, jc__row *row)
{
    char sql[256];
    int rc = store_enter(st);
    if (!rc && !row)
        rc = jc__set_error(JC_EINVAL, "cache file '%s': reading an entry into NULL", st->path);
    if (!rc)
        rc = lazy(st, &st->row[blobs], row_sql(st, blobs, "rowid = ?1", sql, sizeof sql));
    if (rc)
        return rc;
    sqlite3_bind_int64(st->row[blobs], 1, rowid);
    return step_row(st, st->row[blobs], blobs, row, "reading an entry");
}

int jc__store_row_by_key(jc__store *st, const uint8_t key[JC__KEY_LEN], bool blobs, jc__row *row)
{
    char sql[256];
    int rc = store_enter(st);
    if (!rc && (!key || !row))
        rc = jc__set_error(JC_EINVAL, "cache file '%s': reading an entry with a NULL key or row",
                           st->path);
    if (!rc)
        rc = lazy(st, &st->row_key[blobs], row_sql(st, blobs, "key = ?1", sql, sizeof sql));
    if (rc)
        return rc;
    /* SQLITE_STATIC: key is only read before step_row resets. */
    sqlite3_bind_blob(st->row_key[blobs], 1, key, JC__KEY_LEN, SQLITE_STATIC);
    return step_row(st, st->row_key[blobs], blobs, row, "reading an entry");
}

int jc__store_find_range(jc__store *st, const uint8_t lo[JC__KEY_LEN], const uint8_t hi[JC__KEY_LEN],
                         jc__row *row)
{
    /* Keys compare as bytes (memcmp), so a hex prefix is a range of the
     * unique index: no scan of the table. */
    int rc = store_enter(st);
    if (!rc && (!lo || !hi || !row))
        rc = jc__set_error(JC_EINVAL, "cache file '%s': finding a key with NULL bounds", st->path);
    char sql[256];
    if (!rc)
        rc = lazy(st, &st->range,
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
        rc = store_error(st, step, "finding an entry by key prefix");
    sqlite3_reset(st->range);
    sqlite3_clear_bindings(st->range);
    return rc ? rc : found;
}

int jc__store_put_row(jc__store *st, const jc__row *row)
{
    int rc = store_enter_write(st, "store an entry");
    if (!rc && (!row || row->key_len != JC__KEY_LEN || (!row->args && row->args_len) ||
                (!row->result && row->result_len)))
        rc = jc__set_error(JC_EINVAL, "cache file '%s': storing an incomplete entry", st->path);
    if (!rc)
        rc = lazy(st, &st->put_row,
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
    jc__result_check(row->result, row->result_len, check);
    if (b == SQLITE_OK)
        b = sqlite3_bind_blob(s, 12, check, JC__CHECK_LEN, SQLITE_STATIC);
    if (b == SQLITE_OK)
        b = row->code_fp_len == JC__CHECK_LEN ? sqlite3_bind_blob(s, 13, row->code_fp, JC__CHECK_LEN, SQLITE_STATIC)
                                              : sqlite3_bind_null(s, 13);
    if (b == SQLITE_OK)
        b = sqlite3_bind_int64(s, 14, row->key_format);
    if (b == SQLITE_OK)
        return step_done(st, s, "storing an entry");
    rc = store_error(st, b, "storing an entry");
    sqlite3_reset(s);
    return rc;
}

int jc__store_delete_rowid(jc__store *st, int64_t rowid)
{
    int rc = store_enter_write(st, "remove an entry");
    if (!rc)
        rc = lazy(st, &st->del_rowid, "DELETE FROM entries WHERE rowid = ?1");
    if (rc)
        return rc;
    st->deletes++;
    sqlite3_bind_int64(st->del_rowid, 1, rowid);
    rc = step_done(st, st->del_rowid, "removing an entry");
    return rc ? rc : sqlite3_changes(st->db) > 0;
}

/* Times from the file later than now count as now, everywhere they are
 * compared or ordered (an entry stored while the clock was a year ahead
 * must not stay the most recently used for a year): USED and CREATED are
 * the columns so clamped, with SQLite's own clock ('now' is the same for
 * every row of one statement). jc__store_clamp_future writes them back. */
#define NOW_SQL "((julianday('now') - 2440587.5) * 86400.0)"
#define USED "min(last_used, " NOW_SQL ")"
#define CREATED "min(created, " NOW_SQL ")"

/* The filter of jc__select as SQL over bound parameters ?1..?4 and ?6
 * (?5 is a listing's LIMIT), into buf: the SQL text depends only on the
 * file's schema, whatever the filter holds. */
static const char *filter_sql(const jc__store *st, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "(?1 IS NULL OR function = ?1) AND (?2 IS NULL OR version = ?2)"
             " AND (?3 IS NULL OR " USED " < ?3) AND (?4 IS NULL OR " USED " >= ?4)"
             " AND (?6 IS NULL OR %s IS NOT ?6)",
             key_format_column(st));
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
};
/* Orders whose natural direction is descending (largest, newest first). */
static const bool sort_desc[JC__ORDER_COUNT] = {
    [JC__ORDER_USED] = true, [JC__ORDER_SIZE] = true, [JC__ORDER_TIME] = true,
    [JC__ORDER_HITS] = true, [JC__ORDER_CREATED] = true,
};

struct jc__pager {
    jc__store *st;
    jc__select q;
    char *function, *version; /* q's strings, copied */
    int nkeys;
    sqlite3_value *last[SORT_KEYS_MAX]; /* the sort keys of the last entry returned */
    int64_t last_rowid;
    bool started, done;
    int64_t left; /* entries the limit still allows; -1 = no limit */
    size_t page;  /* rows in the next page */
    int64_t *rowids;
    size_t cap;
};

int jc__store_pager_new(jc__store *st, const jc__select *q, jc__pager **out)
{
    int rc = store_enter(st);
    if (rc)
        return rc;
    if (!q || !out || q->order < 0 || q->order >= JC__ORDER_COUNT || q->limit < 0)
        return jc__set_error(JC_EINVAL, "cache file '%s': invalid selection of entries", st->path);
    jc__pager *p = calloc(1, sizeof *p);
    if (!p)
        return jc__set_error(JC_ENOMEM, "out of memory listing entries");
    p->st = st;
    p->q = *q;
    p->function = q->function ? jc__strdup(q->function) : NULL;
    p->version = q->version ? jc__strdup(q->version) : NULL;
    if ((q->function && !p->function) || (q->version && !p->version)) {
        jc__store_pager_free(p);
        return jc__set_error(JC_ENOMEM, "out of memory listing entries");
    }
    p->q.function = p->function;
    p->q.version = p->version;
    while (p->nkeys < SORT_KEYS_MAX && sort_keys[q->order][p->nkeys])
        p->nkeys++;
    p->left = q->limit > 0 ? q->limit : -1;
    p->page = q->order == JC__ORDER_ROWID ? PAGE_ROWID : PAGE_FIRST;
    *out = p;
    return 0;
}

void jc__store_pager_free(jc__pager *p)
{
    if (!p)
        return;
    for (int i = 0; i < SORT_KEYS_MAX; i++)
        sqlite3_value_free(p->last[i]);
    free(p->function);
    free(p->version);
    free(p->rowids);
    free(p);
}

/* "SELECT rowid, <keys> FROM entries WHERE <filter> [AND (<keys>, rowid) >
 * (?7, ...)] ORDER BY <keys>, rowid LIMIT ?5" for the pager, into buf. */
static void page_sql(const jc__pager *p, char *buf, size_t cap)
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

static int page_bind(const jc__pager *p, sqlite3_stmt *s, size_t want)
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
static int page_keep_cursor(jc__pager *p, sqlite3_stmt *s)
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

int jc__store_pager_next(jc__pager *p, const int64_t **rowids, size_t *n)
{
    char sql[2048];
    sqlite3_stmt *s = NULL;
    *rowids = NULL;
    *n = 0;
    int rc = store_enter(p->st);
    if (rc || p->done || p->left == 0)
        return rc;
    size_t want = p->page;
    if (p->left > 0 && (uint64_t)p->left < want)
        want = (size_t)p->left;
    if (want > p->cap) {
        int64_t *r = realloc(p->rowids, want * sizeof *r);
        if (!r)
            return jc__set_error(JC_ENOMEM, "out of memory listing entries");
        p->rowids = r;
        p->cap = want;
    }
    page_sql(p, sql, sizeof sql);
    rc = prepare(p->st, sql, &s);
    if (!rc) {
        int b = page_bind(p, s, want);
        if (b != SQLITE_OK)
            rc = store_error(p->st, b, "listing entries");
    }
    size_t got = 0;
    int step = SQLITE_DONE;
    while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
        p->rowids[got++] = sqlite3_column_int64(s, 0);
        if (got == want)
            rc = page_keep_cursor(p, s); /* the last row of a full page */
    }
    if (!rc && step != SQLITE_DONE)
        rc = store_error(p->st, step, "listing entries");
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

typedef int (*binder)(sqlite3_stmt *s, const void *ctx);

/* Prepares sql_head + where, binds it with bind, and steps it once; for
 * a SELECT, the row stays for the caller to read (finalize *out). */
static int run_where(jc__store *st, const char *head, const char *where, binder bind,
                     const void *ctx, const char *what, sqlite3_stmt **out)
{
    char sql[1024];
    snprintf(sql, sizeof sql, "%s WHERE %s", head, where);
    int rc = prepare(st, sql, out);
    if (rc)
        return rc;
    int b = bind ? bind(*out, ctx) : SQLITE_OK;
    if (b != SQLITE_OK)
        return store_error(st, b, what);
    b = sqlite3_step(*out);
    return b == SQLITE_ROW || b == SQLITE_DONE ? 0 : store_error(st, b, what);
}

/* Counts what `where` selects, then removes it: inside the caller's
 * transaction both see the same entries. */
static int remove_where(jc__store *st, const char *where, binder bind, const void *ctx,
                        int64_t *count, int64_t *bytes)
{
    sqlite3_stmt *s = NULL;
    int64_t c = 0, b = 0;
    int rc = store_enter_write(st, "remove entries");
    if (rc)
        return rc;
    rc = run_where(st, "SELECT count(*), total(args_size + result_size) FROM entries", where, bind,
                   ctx, "counting entries to remove", &s);
    if (!rc) {
        c = sqlite3_column_int64(s, 0);
        b = clamp_int64(sqlite3_column_double(s, 1));
    }
    sqlite3_finalize(s);
    s = NULL;
    if (!rc && c > 0)
        st->deletes++, rc = run_where(st, "DELETE FROM entries", where, bind, ctx, "removing entries", &s);
    sqlite3_finalize(s);
    if (count)
        *count = rc ? 0 : c;
    if (bytes)
        *bytes = rc ? 0 : b;
    return rc;
}

int jc__store_remove(jc__store *st, const jc__select *q, int64_t *count, int64_t *bytes)
{
    char where[512];
    if (!q)
        return jc__set_error(JC_EINVAL, "store: removing entries with a NULL filter");
    return remove_where(st, filter_sql(st, where, sizeof where), bind_filter, q, count, bytes);
}

int jc__store_clamp_future(jc__store *st, int64_t *count)
{
    int rc = store_enter_write(st, "clamp times later than now");
    if (rc)
        return rc;
    rc = run_sql(st,
                 "UPDATE entries SET created = " CREATED ", last_used = " USED
                 " WHERE created > " NOW_SQL " OR last_used > " NOW_SQL,
                 "clamping times later than now");
    if (!rc && count)
        *count = sqlite3_changes(st->db);
    return rc;
}

int jc__store_remove_stale(jc__store *st, int64_t *count, int64_t *bytes)
{
    /* The window runs over the groups: for each function, its versions
     * ranked by when they were last used (after rolling back to v1, v1 is
     * the one in use, though v2 was stored last). */
    static const char where[] =
        "(function, version) NOT IN (SELECT function, version FROM"
        " (SELECT function, version, row_number() OVER (PARTITION BY function"
        " ORDER BY max(" USED ") DESC, version DESC) AS r FROM entries GROUP BY function, version)"
        " WHERE r = 1)";
    return remove_where(st, where, NULL, NULL, count, bytes);
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

int jc__store_remove_lru(jc__store *st, int64_t keep_entries, int64_t keep_bytes, int64_t *count,
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
        return store_enter(st);
    }
    return remove_where(st, where, bind_lru, &b, count, bytes);
}

/* ---- the size on disk, and eviction down to one ---- */

/* Pages of an empty cache: the schema table, a pointer map (auto_vacuum),
 * the entries table and its key index, the meta table and its index. */
enum { EMPTY_PAGES = 6 };

static int64_t stat_size(const char *path, const char *suffix)
{
    char buf[4096];
    struct stat sb;
    snprintf(buf, sizeof buf, "%s%s", path, suffix);
    return stat(buf, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

int64_t jc__store_disk_bytes(const jc__store *st)
{
    return st ? stat_size(st->path, "") + stat_size(st->path, "-wal") : 0;
}

int jc__store_size_get(jc__store *st, jc__store_size *out)
{
    int rc = store_enter(st);
    if (rc)
        return rc;
    rc = lazy(st, &st->size,
              "SELECT (SELECT page_count FROM pragma_page_count), (SELECT page_size FROM pragma_page_size),"
              " (SELECT freelist_count FROM pragma_freelist_count),"
              " (SELECT auto_vacuum FROM pragma_auto_vacuum)");
    if (rc)
        return rc;
    int step = sqlite3_step(st->size);
    if (step == SQLITE_ROW) {
        out->page_bytes = sqlite3_column_int64(st->size, 1);
        out->pages = sqlite3_column_int64(st->size, 0);
        out->free_pages = sqlite3_column_int64(st->size, 2);
        out->incremental = sqlite3_column_int64(st->size, 3) == 2;
        out->empty_bytes = EMPTY_PAGES * out->page_bytes;
    } else {
        rc = store_error(st, step == SQLITE_DONE ? SQLITE_CORRUPT : step, "reading the file's size");
    }
    sqlite3_reset(st->size);
    return rc;
}

int jc__store_checkpoint(jc__store *st)
{
    int rc = store_enter_write(st, "checkpoint");
    if (rc)
        return rc;
    if (st->depth > 0)
        return jc__set_error(JC_EINVAL, "cache file '%s': cannot checkpoint inside a transaction", st->path);
    /* TRUNCATE waits for readers under the busy handler; a run that ends
     * must not wait for another process's long read, so none here. When
     * another process reads (or writes) the file meanwhile, the checkpoint
     * copies what it can, and the -wal file keeps its size until a later
     * checkpoint resets it (journal_size_limit then truncates it). */
    sqlite3_busy_timeout(st->db, 0);
    int log = -1, done = -1;
    int c = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
    sqlite3_busy_timeout(st->db, st->busy_timeout_ms);
    if (c == SQLITE_OK)
        return 0;
    if ((c & 0xff) == SQLITE_BUSY || (c & 0xff) == SQLITE_LOCKED)
        return 1;
    return store_error(st, c, "checkpointing");
}

/* Bytes of the pages in use (the file's size once free pages are given
 * back), as this connection sees them, its own transaction included. */
static int used_bytes(jc__store *st, int64_t *used, jc__store_size *z)
{
    int rc = jc__store_size_get(st, z);
    if (!rc)
        *used = (z->pages - z->free_pages) * z->page_bytes;
    return rc;
}

typedef struct evict_bounds {
    double overhead, excess;
} evict_bounds;

static int bind_evict(sqlite3_stmt *s, const void *ctx)
{
    const evict_bounds *b = ctx;
    int rc = sqlite3_bind_double(s, 1, b->overhead);
    return rc == SQLITE_OK ? sqlite3_bind_double(s, 2, b->excess) : rc;
}

int jc__store_evict(jc__store *st, int64_t target, int64_t *count, int64_t *bytes)
{
    /* The least recently used entries whose estimated share of the file
     * (payload + overhead each) covers the excess: those before which less
     * than the excess is covered. */
    static const char where[] =
        "rowid IN (SELECT id FROM (SELECT rowid AS id, args_size + result_size + ?1 AS own,"
        " total(args_size + result_size + ?1) OVER (ORDER BY " USED ", rowid"
        " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum FROM entries)"
        " WHERE cum - own < ?2)";
    int64_t c_total = 0, b_total = 0;
    int rc = store_enter_write(st, "evict entries");
    if (!rc && st->depth == 0)
        rc = jc__set_error(JC_EINVAL, "cache file '%s': eviction outside a transaction", st->path);
    /* Times later than now age from today once eviction is due (they
     * already count as now in the order below). */
    if (!rc)
        rc = jc__store_clamp_future(st, NULL);
    /* Each round gives free pages back (PRAGMA incremental_vacuum, a no-op
     * in a file without auto_vacuum, whose size then counts its pages in
     * use), measures, and removes what the estimate says covers the excess.
     * Entries removed here and there may free no whole page (an index page
     * keeps its other keys), so the estimate is refined from what the
     * file really lost, and the excess asked for grows each round; every
     * round removes at least one entry. */
    for (int round = 0; !rc && round < 16; round++) {
        jc__store_size z;
        int64_t used = 0, n = 0;
        double payload = 0;
        rc = run_sql(st, "PRAGMA incremental_vacuum", "giving free pages back");
        if (!rc)
            rc = used_bytes(st, &used, &z);
        if (rc || used <= target)
            break;
        sqlite3_stmt *s = NULL;
        rc = run_where(st, "SELECT count(*), total(args_size + result_size) FROM entries", "1", NULL, NULL,
                       "measuring entries", &s);
        if (!rc) {
            n = sqlite3_column_int64(s, 0);
            payload = sqlite3_column_double(s, 1);
        }
        sqlite3_finalize(s);
        if (rc || n == 0)
            break;
        double over = ((double)(used - z.empty_bytes) - payload) / (double)n;
        evict_bounds b = {.overhead = over > 32 ? over : 32, .excess = (double)(used - target) * (1 + round)};
        int64_t c = 0, by = 0;
        rc = remove_where(st, where, bind_evict, &b, &c, &by);
        c_total += c;
        b_total = by > INT64_MAX - b_total ? INT64_MAX : b_total + by;
    }
    if (!rc)
        rc = run_sql(st, "PRAGMA incremental_vacuum", "giving free pages back");
    if (count)
        *count = rc ? 0 : c_total;
    if (bytes)
        *bytes = rc ? 0 : b_total;
    return rc;
}

int jc__store_groups(jc__store *st, int (*fn)(void *ctx, const jc__group *g), void *ctx)
{
    sqlite3_stmt *s = NULL;
    int rc = store_enter(st);
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
             st->schema >= 2 ? "count(DISTINCT code_fp)" : "0", key_format_column(st));
    rc = prepare(st, sql, &s);
    int step = SQLITE_DONE;
    while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
        const char *f = (const char *)sqlite3_column_text(s, 0);
        const char *v = (const char *)sqlite3_column_text(s, 1);
        jc__group g = {
            .function = f ? f : "",
            .version = v ? v : "",
            .entries = sqlite3_column_int64(s, 2),
            .args_bytes = clamp_int64(sqlite3_column_double(s, 3)),
            .result_bytes = clamp_int64(sqlite3_column_double(s, 4)),
            .hits = clamp_int64(sqlite3_column_double(s, 5)),
            .compute_seconds = sqlite3_column_double(s, 6),
            .saved_seconds = sqlite3_column_double(s, 7),
            .oldest = sqlite3_column_double(s, 8),
            .newest = sqlite3_column_double(s, 9),
            .last_used = sqlite3_column_double(s, 10),
            .code_fingerprints = sqlite3_column_int64(s, 11),
            .other_formats = clamp_int64(sqlite3_column_double(s, 12)),
        };
        rc = fn(ctx, &g);
    }
    if (!rc && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = store_error(st, step, "summing up entries");
    sqlite3_finalize(s);
    return rc;
}

int jc__store_facts_get(jc__store *st, jc__store_facts *out)
{
    sqlite3_stmt *s = NULL;
    int rc = store_enter(st);
    if (rc)
        return rc;
    if (!out)
        return jc__set_error(JC_EINVAL, "store: NULL facts");
    memset(out, 0, sizeof *out);
    rc = prepare(st,
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
            rc = store_error(st, step == SQLITE_DONE ? SQLITE_CORRUPT : step, "reading the file");
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
    return rc;
}

int jc__store_integrity(jc__store *st, void (*fn)(void *ctx, const char *problem), void *ctx)
{
    sqlite3_stmt *s = NULL;
    int problems = 0;
    int rc = store_enter(st);
    if (rc)
        return rc;
    rc = prepare(st, "PRAGMA integrity_check(100)", &s);
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
        rc = store_error(st, step, "checking the file's integrity");
    sqlite3_finalize(s);
    return rc ? rc : problems;
}

int jc__store_vacuum(jc__store *st)
{
    int rc = store_enter_write(st, "vacuum");
    if (rc)
        return rc;
    if (st->depth > 0)
        return jc__set_error(JC_EINVAL, "cache file '%s': cannot vacuum inside a transaction",
                             st->path);
    end_read(st);
    /* From now on the file can give pages back without a VACUUM (eviction
     * runs PRAGMA incremental_vacuum): a file made before auto_vacuum was
     * set at creation gets it here, once. */
    st->deletes++; /* VACUUM may renumber rowids */
    rc = run_sql(st, "PRAGMA auto_vacuum = INCREMENTAL; VACUUM", "vacuuming");
    /* Without a checkpoint the rewritten pages sit in the -wal file, which
     * then is as large as the database. A reader of another process may
     * keep part of it: the checkpoint then does what it can, quietly. */
    if (!rc)
        sqlite3_exec(st->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    return rc;
}

int jc__store_backup(jc__store *st, const char *dest)
{
    int rc = store_enter(st);
    if (rc)
        return rc;
    if (!dest || !*dest)
        return jc__set_error(JC_EINVAL, "backup of '%s': no destination path", st->path);
    if (access(dest, F_OK) == 0)
        return jc__set_error(JC_EIO, "backup of '%s': '%s' already exists; remove it first or choose "
                             "another name", st->path, dest);
    if (st->depth > 0)
        return jc__set_error(JC_EINVAL, "backup of '%s': not inside a transaction", st->path);
    end_read(st);
    /* Written under a temporary name beside dest and renamed at the end, so
     * that dest is either absent or a complete copy. */
    size_t n = strlen(dest) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return jc__set_error(JC_ENOMEM, "out of memory backing up '%s'", st->path);
    snprintf(tmp, n, "%s.tmp%ld", dest, (long)getpid());
    /* Made here, exclusively, with the mode the umask allows (SQLite's
     * SQLITE_OPEN_EXCLUSIVE is ignored by sqlite3_open_v2): a file of that
     * name that is not ours is never written over, nor removed. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        rc = jc__set_error(errno == ENOSPC ? JC_EFULL : JC_EIO, "backup of '%s': cannot create '%s': %s",
                           st->path, tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    close(fd);
    sqlite3 *out = NULL;
    int src = sqlite3_open_v2(tmp, &out, SQLITE_OPEN_READWRITE, NULL);
    if (src != SQLITE_OK) {
        rc = jc__set_error(JC_EIO, "backup of '%s': cannot create '%s': %s", st->path, tmp,
                           out ? sqlite3_errmsg(out) : sqlite3_errstr(src));
        sqlite3_close(out);
        free(tmp);
        return rc;
    }
    /* One step (-1) copies every page under one read transaction of the
     * source: a consistent snapshot, which writers of other processes do
     * not wait for (WAL). https://www.sqlite.org/backup.html */
    sqlite3_backup *b = sqlite3_backup_init(out, "main", st->db, "main");
    int step = b ? sqlite3_backup_step(b, -1) : sqlite3_errcode(out);
    int fin = b ? sqlite3_backup_finish(b) : SQLITE_OK;
    if (step != SQLITE_DONE || fin != SQLITE_OK) {
        int code = (step & 0xff) == SQLITE_BUSY || (step & 0xff) == SQLITE_LOCKED ? JC_EBUSY
                   : (step & 0xff) == SQLITE_FULL                                 ? JC_EFULL
                                                                                  : JC_EIO;
        rc = jc__set_error(code, "backup of '%s' to '%s' failed: %s", st->path, dest, sqlite3_errmsg(out));
    }
    /* The copy is in WAL mode like its source; closing the only connection
     * to it checkpoints and removes its -wal file: one self-contained file. */
    if (!rc && sqlite3_exec(out, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK)
        rc = jc__set_error(JC_EIO, "backup of '%s' to '%s' failed: %s", st->path, dest, sqlite3_errmsg(out));
    if (sqlite3_close(out) != SQLITE_OK && !rc)
        rc = jc__set_error(JC_EIO, "backup of '%s' to '%s': closing the copy failed", st->path, dest);
    /* Published with link(), which never replaces: a dest made meanwhile by
     * someone else is left alone, and reported. */
    if (!rc && link(tmp, dest) != 0)
        rc = jc__set_error(JC_EIO, "backup of '%s': cannot name the copy '%s': %s%s", st->path, dest,
                           strerror(errno), errno == EEXIST ? " (made meanwhile by another program)" : "");
    unlink(tmp);
    if (rc) {
        size_t m = strlen(tmp) + 8;
        char *side = malloc(m);
        if (side) {
            snprintf(side, m, "%s-wal", tmp);
            unlink(side);
            snprintf(side, m, "%s-shm", tmp);
            unlink(side);
            free(side);
        }
    }
    free(tmp);
    return rc;
}

int jc__store_max_rowid(jc__store *st, int64_t *out)
{
    int rc = store_enter(st);
    if (rc)
        return rc;
    *out = 0;
    int step = sqlite3_step(st->max_rowid);
    if (step == SQLITE_ROW)
        *out = sqlite3_column_int64(st->max_rowid, 0);
    sqlite3_reset(st->max_rowid);
    return step == SQLITE_ROW ? 0 : store_error(st, step, "finding the largest row id");
}

/* ---- leases ---- */

int jc__store_lease_owner(jc__store *st, const char *owner, double expires, bool create)
{
    int rc = store_enter_write(st, "claim calls");
    if (rc)
        return rc;
    sqlite3_stmt *s = NULL;
    rc = prepare(st,
                 create ? "INSERT INTO lease_owners (owner, expires, started) VALUES (?1, ?2, ?2)"
                          " ON CONFLICT (owner) DO UPDATE SET expires = excluded.expires"
                        : "UPDATE lease_owners SET expires = ?2 WHERE owner = ?1",
                 &s);
    if (!rc) {
        sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
        sqlite3_bind_double(s, 2, expires);
        rc = step_done(st, s, "renewing a lease");
    }
    sqlite3_finalize(s);
    return rc;
}

int jc__store_lease_add(jc__store *st, const char *owner, const uint8_t *keys, size_t n)
{
    int rc = store_enter_write(st, "claim calls");
    if (rc || !n)
        return rc;
    sqlite3_stmt *s = NULL;
    rc = prepare(st, "INSERT INTO leases (owner, keys) VALUES (?1, ?2)", &s);
    if (!rc) {
        sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(s, 2, keys, (sqlite3_uint64)n * JC__KEY_LEN, SQLITE_STATIC);
        rc = step_done(st, s, "claiming calls");
    }
    sqlite3_finalize(s);
    return rc;
}

int jc__store_leases(jc__store *st, int (*fn)(void *ctx, const jc__lease *l), void *ctx)
{
    int rc = store_enter(st);
    if (rc)
        return rc;
    if (st->schema < 4)
        return 0; /* an older file read as it is: no leases */
    sqlite3_stmt *s = NULL;
    rc = prepare(st,
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
        rc = store_error(st, step, "reading leases");
    sqlite3_finalize(s);
    return rc;
}

int jc__store_lease_set_keys(jc__store *st, int64_t id, const uint8_t *keys, size_t n)
{
    int rc = store_enter_write(st, "release a call");
    if (rc)
        return rc;
    sqlite3_stmt *s = NULL;
    rc = prepare(st, n ? "UPDATE leases SET keys = ?2 WHERE id = ?1" : "DELETE FROM leases WHERE id = ?1", &s);
    if (!rc) {
        sqlite3_bind_int64(s, 1, id);
        if (n)
            sqlite3_bind_blob64(s, 2, keys, (sqlite3_uint64)n * JC__KEY_LEN, SQLITE_STATIC);
        rc = step_done(st, s, "releasing a call");
    }
    sqlite3_finalize(s);
    return rc;
}

int jc__store_lease_drop(jc__store *st, const char *owner)
{
    int rc = store_enter_write(st, "release calls");
    if (rc)
        return rc;
    sqlite3_stmt *s = NULL;
    int dropped = 0;
    for (int k = 0; k < 2 && !rc; k++) {
        rc = prepare(st, k ? "DELETE FROM lease_owners WHERE owner = ?1" : "DELETE FROM leases WHERE owner = ?1", &s);
        if (!rc) {
            sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
            rc = step_done(st, s, "releasing calls");
            dropped += k ? sqlite3_changes(st->db) : 0;
        }
        sqlite3_finalize(s);
        s = NULL;
    }
    return rc ? rc : dropped;
}

/* ---- the record of runs ---- */

int jc__store_run_add(jc__store *st, const jc__run_row *r, int64_t keep)
{
    int rc = store_enter_write(st, "record a run");
    if (rc)
        return rc;
    sqlite3_stmt *s = NULL;
    rc = prepare(st,
                 "INSERT INTO runs (started, ended, host, pid, command, kind, n_jobs, backend, calls, cached,"
                 " computed, failed, skipped, elapsed, saved, status)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
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
    rc = step_done(st, s, "recording a run");
    sqlite3_finalize(s);
    if (rc)
        return rc;
    int64_t id = sqlite3_last_insert_rowid(st->db);
    s = NULL;
    rc = prepare(st, "INSERT INTO run_failures (run, n, status, message) VALUES (?1, ?4, ?2, ?3)", &s);
    for (size_t i = 0; !rc && i < r->nfailures; i++) {
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_text(s, 2, r->failures[i].status, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, r->failures[i].message, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, (int64_t)i);
        rc = step_done(st, s, "recording a failure");
    }
    sqlite3_finalize(s);
    /* Bounded: the runs older than the last keep go, with their failures. */
    char sql[200];
    snprintf(sql, sizeof sql,
             "DELETE FROM run_failures WHERE run <= %lld; DELETE FROM runs WHERE id <= %lld",
             (long long)(id - keep), (long long)(id - keep));
    if (!rc && keep > 0 && id > keep)
        rc = run_sql(st, sql, "pruning the record of runs");
    return rc;
}

int jc__store_runs(jc__store *st, int64_t last_n, bool failed_only,
                   int (*fn)(void *ctx, const jc__run_row *r), void *ctx)
{
    int rc = store_enter(st);
    if (rc || st->schema < 5)
        return rc;
    sqlite3_stmt *s = NULL, *f = NULL;
    rc = prepare(st,
                 "SELECT id, started, ended, host, pid, command, kind, n_jobs, backend, calls, cached, computed,"
                 " failed, skipped, elapsed, saved, status FROM (SELECT * FROM runs"
                 " WHERE (?2 = 0 OR failed > 0 OR status != 'ok') ORDER BY id DESC LIMIT ?1) ORDER BY id",
                 &s);
    if (!rc)
        rc = prepare(st, "SELECT status, message FROM run_failures WHERE run = ?1 ORDER BY n", &f);
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
        };
        /* The failures' texts are copied: the statement below reuses its
         * buffers row by row. */
        sqlite3_bind_int64(f, 1, r.id);
        size_t n = 0;
        int fs;
        while ((fs = sqlite3_step(f)) == SQLITE_ROW) {
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                jc__run_failure *nf = realloc(fails, nc * sizeof *nf);
                if (!nf) {
                    rc = jc__set_error(JC_ENOMEM, "out of memory reading the record of runs");
                    break;
                }
                fails = nf;
                cap = nc;
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

int jc__store_meta_get(jc__store *st, const char *name, char **value)
{
    *value = NULL;
    int rc = store_enter(st);
    if (rc)
        return rc;
    sqlite3_stmt *s = NULL;
    rc = prepare(st, "SELECT value FROM meta WHERE name = ?1", &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(s, 0);
        if (!(*value = jc__strdup(v ? v : "")))
            rc = jc__set_error(JC_ENOMEM, "out of memory reading a setting");
    } else if (step != SQLITE_DONE) {
        rc = store_error(st, step, "reading a setting");
    }
    sqlite3_finalize(s);
    return rc;
}

int jc__store_meta_set(jc__store *st, const char *name, const char *value)
{
    int rc = store_enter_write(st, "change a setting");
    if (rc)
        return rc;
    sqlite3_stmt *s = NULL;
    rc = prepare(st, value ? "INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)"
                           : "DELETE FROM meta WHERE name = ?1", &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if (value)
        sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
    rc = step_done(st, s, "changing a setting");
    sqlite3_finalize(s);
    return rc;
}

int jc__store_schema(const jc__store *st)
{
    return st ? st->schema : 0;
}

bool jc__store_in_transaction(const jc__store *st)
{
    /* SQLite may roll a transaction back by itself (SQLITE_FULL, an I/O
     * error): then, whatever the count of begins says, there is none. */
    return st && st->depth > 0 && !sqlite3_get_autocommit(st->db);
}

double jc__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
