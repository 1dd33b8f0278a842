/*
 * Opening an SQLite cache file: checks on the path before SQLite sees it,
 * hardening, WAL, and the statements prepared at open.
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
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "store/store.h"
#include "sqlite_int.h"

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
static int readonly_mode(jc__sqlite *st)
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

/* SQLite's memory statistics (SQLITE_CONFIG_MEMSTATUS, on in its default
 * build) take a global mutex at each of its allocations and frees, and
 * Debian's SQLite is built without lookaside memory (SQLITE_OMIT_LOOKASIDE),
 * so that every statement's records are allocations: some 1,000
 * instructions of each stored result (bench/NOTES.md). jobcache turns
 * them off when it is the first in the process to use SQLite; a program
 * that uses SQLite's statistics or heap limits (sqlite3_memory_used,
 * sqlite3_soft_heap_limit64) calls sqlite3_initialize() before opening a
 * cache, and sqlite3_config then leaves its setting alone (it answers
 * SQLITE_MISUSE once SQLite is initialized: https://sqlite.org/c3ref/config.html). */
static void configure_sqlite(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int open_db(jc__sqlite *st)
{
    static pthread_once_t configured = PTHREAD_ONCE_INIT;
    pthread_once(&configured, configure_sqlite);
    /* NOMUTEX: the store is used by one thread at a time (see the top). */
    int oflags = SQLITE_OPEN_NOMUTEX;
    if (st->flags & JC__STORE_READONLY)
        oflags |= SQLITE_OPEN_READONLY;
    else if (st->flags & JC__STORE_NOCREATE)
        oflags |= SQLITE_OPEN_READWRITE; /* the file may vanish after check_path */
    else
        oflags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

    int rc = readonly_mode(st);
    /* On a network file system, one host at a time (hostlock.c); an
     * immutable look takes no locks and shares no memory: any host may. */
    if (!rc && !st->immutable && !st->hostlock)
        rc = jc__hostlock_take(st->path, (st->flags & JC__STORE_READONLY) != 0, &st->hostlock);
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
        return jc__sq_store_error(st, rc, "opening");
    harden(st->db);
    /* Both processes of a shared cache wait for each other's write
     * transactions instead of failing with SQLITE_BUSY; this also covers
     * BEGIN IMMEDIATE, whose write lock SQLite retries under the handler.
     * An interrupt ends the wait. */
    jc__sq_busy_install(st, st->busy_timeout_ms);
    return 0;
}

/* Settings of this connection, made once the file is known to be ours. */
static int tune(jc__sqlite *st)
{
    /* WAL keeps a commit durable across a killed process: the commit is in
     * the -wal file before COMMIT returns, and recovery replays it.
     * synchronous=FULL adds an fsync of the -wal file per commit, so that a
     * power loss or OS crash keeps every committed result too (DESIGN.md).
     * Runs commit at most about ten times a second, so that fsync is cheap;
     * NORMAL would save it at the price of losing the last transactions.
     *
     * A lookup of a cache of many entries walks a few B-tree pages; a 64 MiB
     * page cache keeps those pages in this process after their first
     * read(). No memory map (mmap_size=0): a file cut short under an open
     * connection (`truncate`, or `cp` of an older, smaller copy over a
     * cache in use) would kill the program with SIGBUS at the first page
     * touched past its new end, where read() returns short and SQLite
     * reports the file damaged (tests/test_file.c); and a large result read
     * through the map was held twice, mapped and copied. temp_store=MEMORY
     * keeps sorting (the inspection tool, eviction) off the disk.
     * journal_size_limit truncates the -wal file back to 64 MiB after a
     * checkpoint that followed a large transaction. */
    return jc__sq_run_sql(st,
                   "PRAGMA synchronous=FULL;"
                   JC__SQ_MEMORY_USE
                   "PRAGMA temp_store=MEMORY;"
                   "PRAGMA journal_size_limit=67108864;",
                   "configuring the connection");
}

enum { WAL_BUSY = 1 };

/* One attempt at PRAGMA journal_mode=WAL: 0 when the file is in WAL mode,
 * WAL_BUSY to try again, or a negative code with the message set. */
static int try_set_wal(jc__sqlite *st)
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
        ret = (rc & 0xff) == SQLITE_BUSY ? WAL_BUSY : jc__sq_store_error(st, rc, "switching to WAL mode");
    }
    sqlite3_finalize(s);
    return ret;
}

/* Switching to WAL takes an exclusive lock (a no-op once the file is in WAL
 * mode). Where waiting for it could deadlock, SQLite returns SQLITE_BUSY
 * without calling the busy handler: two processes opening a new file at once
 * meet here while one of them creates the schema. So wait here, under the
 * same timeout. */
int jc__sq_set_wal(jc__sqlite *st)
{
    double deadline = jc__monotonic() * 1e3 + st->busy_timeout_ms;
    int rc;
    while ((rc = try_set_wal(st)) == WAL_BUSY && jc__monotonic() * 1e3 < deadline && !jc__interrupted)
        sqlite3_sleep(5);
    if (rc == WAL_BUSY)
        rc = jc__set_error(JC_EBUSY,
                           "cache file '%s' is locked by another process; gave up switching it "
                           "to WAL mode after %d ms",
                           st->path, st->busy_timeout_ms);
    return rc;
}


/* The schema-2 columns, or NULLs in their place in an older file read as
 * it is. */
const char *jc__sq_v2_columns(const jc__sqlite *st)
{
    return st->schema >= 2 ? "result_check, code_fp" : "NULL, NULL";
}

/* The key format of each entry: its column (schema 3), or 1 in an older
 * file read as it is (every entry of one was made with key format 1). */
const char *jc__sq_key_format_column(const jc__sqlite *st)
{
    return st->schema >= 3 ? "key_format" : "1";
}

static int prepare_all(jc__sqlite *st)
{
    char sql[256];
    /* An entry of another key format is never served, not even under an
     * equal key (formats cannot collide in practice; a run does not count
     * on it). */
    int rc = 0;
    for (int created = 0; created <= 1 && !rc; created++) {
        snprintf(sql, sizeof sql,
                 "SELECT result, compute_seconds, %s%s FROM entries WHERE key = ?1 AND %s = "
                 STR(JC_KEY_FORMAT_VERSION),
                 jc__sq_v2_columns(st), created ? ", created" : "", jc__sq_key_format_column(st));
        rc = jc__sq_prepare(st, sql, created ? &st->get_created : &st->get);
        /* key first: a row whose key is not wanted is passed over without
         * reading its arguments or result (overflow pages stay unread). */
        snprintf(sql, sizeof sql,
                 "SELECT key, compute_seconds, result, %s%s FROM entries WHERE %s = "
                 STR(JC_KEY_FORMAT_VERSION),
                 jc__sq_v2_columns(st), created ? ", created" : "", jc__sq_key_format_column(st));
        if (!rc)
            rc = jc__sq_prepare(st, sql, created ? &st->scan_created : &st->scan);
    }
    if (!rc)
        rc = jc__sq_prepare(st, "SELECT max(rowid) FROM entries", &st->max_rowid);
    if (!rc)
        rc = jc__sq_prepare(st, "BEGIN", &st->begin_read);
    if (!rc)
        rc = jc__sq_prepare(st, "COMMIT", &st->end_read);
    if (rc || (st->flags & JC__STORE_READONLY))
        return rc; /* a read-only store never writes: nothing more to prepare */
    rc = 0;
    if (!rc)
        rc = jc__sq_prepare(st,
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
                     " compute_seconds = excluded.compute_seconds,"
                     " result_check = excluded.result_check, code_fp = excluded.code_fp,"
                     " key_format = excluded.key_format",
                     &st->put);
    if (!rc)
        rc = jc__sq_prepare(st, "DELETE FROM entries WHERE key = ?1", &st->del);
    if (!rc)
        rc = jc__sq_prepare(st, "BEGIN IMMEDIATE", &st->begin);
    if (!rc)
        rc = jc__sq_prepare(st, "COMMIT", &st->commit);
    if (!rc)
        rc = jc__sq_prepare(st, "ROLLBACK", &st->rollback);
    return rc;
}

/* Whether the open failed because the -shm file could not be made for
 * want of space (issue 23: a complete cache on a full disk could not be
 * read at all: "disk I/O error"). SQLite reports the -shm's failures as
 * SQLITE_IOERR_SHMOPEN, SHMSIZE or SHMMAP (or SQLITE_FULL); the space is
 * then confirmed by the error number or by the file system's free blocks. */
static bool shm_out_of_space(jc__sqlite *st)
{
    if (!st->db)
        return false;
    int ext = sqlite3_extended_errcode(st->db);
    if (ext != SQLITE_IOERR_SHMOPEN && ext != SQLITE_IOERR_SHMSIZE && ext != SQLITE_IOERR_SHMMAP &&
        (ext & 0xff) != SQLITE_FULL)
        return false;
    if (sqlite3_system_errno(st->db) == ENOSPC || sqlite3_system_errno(st->db) == EDQUOT)
        return true;
    struct statvfs vfs;
    char *dir = jc__strdup(st->path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        slash[slash == dir ? 1 : 0] = '\0';
    bool full = dir && statvfs(slash ? dir : ".", &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < 64 * 1024;
    free(dir);
    return full;
}

/* A full disk: the file alone is read (immutable: no -shm, no locks), when
 * it is the whole cache (no -wal data beside it); the handle stores nothing
 * and says why (JC_EFULL at every write). Results still in the -wal file
 * cannot be read without the -shm: that is said instead. */
static int open_full_disk(jc__sqlite *st)
{
    if (side_size(st->path, "-wal") > 0)
        return jc__set_error(JC_EFULL,
                             "cannot read cache file '%s': the disk is full, and SQLite cannot create "
                             "'%s-shm' (32 KiB) to read the results still in '%s-wal'; free some space",
                             st->path, st->path, st->path);
    sqlite3_close_v2(st->db);
    st->db = NULL;
    st->immutable = true;
    st->disk_full = true;
    st->flags |= JC__STORE_READONLY;
    int rc = open_db(st);
    return rc ? rc : jc__sq_check_schema(st);
}

int jc__sqlite_open(const char *path, unsigned flags, int busy_timeout_ms, jc__sqlite **out)
{
    jc__sqlite *st = NULL;
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
    jc__sq_mark_process(st);

    rc = open_db(st);
    if (!rc)
        rc = jc__sq_check_schema(st);
    if (rc && shm_out_of_space(st))
        rc = open_full_disk(st);
    if (!rc)
        rc = tune(st);
    if (!rc)
        rc = prepare_all(st);
    if (rc)
        goto fail;
    *out = st;
    return 0;

fail:
    jc__sqlite_close(st);
    return rc;
}

/* Refuses what is not ours; makes an empty file a cache; migrates an older
 * one. This is the first read of the file, where SQLite, which opens
 * lazily, finds out that a file is not a database or is damaged. */
int jc__sq_check_schema(jc__sqlite *st)
{
    schema_info info = {0};
    int rc = jc__sq_read_schema_info(st, &info);
    /* A read that fails as a write: to read a WAL database, even a read-only
     * connection must create the -shm file beside it. */
    if (rc == JC_EREADONLY)
        return jc__set_error(JC_EIO,
                             "cannot read cache file '%s': reading a WAL database needs '%s-shm', "
                             "which cannot be created (is its directory read-only?)",
                             st->path, st->path);
    if (!rc)
        rc = jc__sq_classify(st, &info);
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
    rc = kind == 1 ? jc__sq_run_sql(st, "PRAGMA auto_vacuum = INCREMENTAL", "creating the schema") : 0;
    if (!rc)
        rc = jc__sq_set_wal(st);
    if (!rc && kind == 1)
        rc = jc__sq_create_schema(st);
    if (!rc && kind == 2)
        rc = jc__sq_migrate(st);
    if (!rc)
        st->schema = JC__SCHEMA_VERSION;
    /* A new or migrated schema goes into the database file at once: a copy
     * of the file alone, even after a crash, is then still a cache (it may
     * lack the results committed since, never its tables). */
    if (!rc && kind != 0)
        sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return rc;
}
