/*
 * sqlite_int.h: what the files of the SQLite store share, and only they
 * include (tests/layering.sh checks): the handle's fields, the helpers every
 * feature uses. The store's face is store/store.h.
 */
#ifndef JC_STORE_SQLITE_INT_H
#define JC_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include <sys/types.h>

#include "store/store_int.h"
#include "store/sqlite/sqlite.h"
#include "util/interrupt.h"

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

#define DEFAULT_BUSY_TIMEOUT_MS 10000

#define STR_(x) #x
#define STR(x) STR_(x)

typedef struct jc__sqlite jc__sqlite;
typedef struct jc__sqlite_pager jc__sqlite_pager;

/* The page cache of a connection, never a memory map (open.c says why),
 * and what a listing of entries uses while it is open (list.c): a listing
 * passes over the whole file once, and pages it has passed are not read
 * again, so that a large cache would only grow this process by the whole
 * cache (issue 23: `jobcache ls | head -1` took 337 MB on 2 million
 * entries). */
#define JC__SQ_MEMORY_USE "PRAGMA cache_size=-65536; PRAGMA mmap_size=0;"
#define JC__SQ_MEMORY_LISTING "PRAGMA cache_size=-2048; PRAGMA mmap_size=0;"

struct jc__sqlite {
    jc__store base; /* first: the front dispatches on it (store_int.h) */
    sqlite3 *db;
    char *path;
    unsigned flags;
    int busy_timeout_ms;
    /* The busy handler's wait (jc__sq_busy_install): 0 waits for nothing,
     * else busy_timeout_ms; and when the current wait for a lock began. */
    int busy_wait_ms;
    double busy_since;
    int schema;  /* the file's schema version: JC__SCHEMA_VERSION once a
                  * writable open has migrated it; older when read-only */
    pid_t pid;   /* the process that opened the store */
    unsigned long generation; /* fork_generation when it was opened */
    int depth;   /* nesting of jc__store_begin; 0 = no explicit transaction */
    int listings; /* pagers open and large passes under way (JC__SQ_MEMORY_LISTING while any is) */
    /* The -shm file could not be created for want of space: opened
     * immutable, read-only; every write gives JC_EFULL (open.c). */
    bool disk_full;
    /* Outermost write transactions: the open one (0: none) and the count
     * of begins (jc__store_txn_id). */
    uint64_t txn_current, txn_seq;
    bool doomed; /* an inner rollback happened: the outermost commit rolls back */
    /* The last lookup's result, copied out of SQLite (see the note above). */
    void *buf;
    size_t buf_cap;
    /* The last jc__store_row's strings and blobs (see store.h). */
    char *rowbuf;
    size_t rowbuf_cap;
    sqlite3_stmt *get, *put, *del, *begin, *commit, *rollback;
    /* What put holds bound from the entry before (bindings outlive a
     * reset): its function's name and version (SQLite's own copies, and
     * these to compare) and code fingerprint, bound again only when they
     * change. A bind costs some 150 instructions; a run stores thousands
     * of results of one function. put_fp_bound: 0 unknown, 1 NULL, 2 put_fp. */
    char *put_function, *put_version;
    uint8_t put_fp[JC__CHECK_LEN];
    int put_fp_bound;
    sqlite3_stmt *scan, *max_rowid; /* jc__store_get_many */
    /* get and scan that also read created, for lookups that expire entries
     * (jc__store_want_created): the column costs a hit about 140
     * instructions that other lookups do not pay. */
    sqlite3_stmt *get_created, *scan_created;
    sqlite3_stmt *get_check; /* jc__store_get_checks: the row without its result (prepared when first used) */
    bool want_created;
    sqlite3_stmt *data_version;     /* PRAGMA data_version (jc__store_data_version) */
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
    /* This host's record beside a file on a network file system (NULL on a
     * local one): hostlock.c. */
    struct jc__hostlock *hostlock;
    /* Prepared on first use by inspection's calls, which a run never makes:
     * [0] without blobs, [1] with them. */
    sqlite3_stmt *row[2], *row_key[2], *range, *put_row, *del_rowid;
    sqlite3_stmt *size; /* jc__store_size_get */
    sqlite3_stmt *params_put, *params_get; /* jc__store_params_put / _get */
    sqlite3_stmt *chunk_put, *chunk_list, *chunk_size, *chunk_any, *chunk_del, *chunk_sum; /* chunks.c (when first used) */
    sqlite3_stmt *guard_begin, *guard_end;
    bool guarded;
    uint64_t chunks_txn; /* the write transaction chunks_any was asked in */
    bool chunks_any;
};


/* Times from the file later than now count as now, everywhere they are
 * compared or ordered (an entry stored while the clock was a year ahead
 * must not stay the most recently used for a year): USED and CREATED are
 * the columns so clamped, with SQLite's own clock ('now' is the same for
 * every row of one statement). jc__store_clamp_future writes them back. */
#define NOW_SQL "((julianday('now') - 2440587.5) * 86400.0)"
#define USED "min(last_used, " NOW_SQL ")"
#define CREATED "min(created, " NOW_SQL ")"

/* Binds the parameters of a statement built by jc__sq_run_where. */
typedef int (*binder)(sqlite3_stmt *s, const void *ctx);

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

/* The operations of store.h on the SQLite store (ops.c hands them to the
 * front; what each does is said in store.h). */
int jc__sqlite_open(const char *path, unsigned flags, int busy_timeout_ms, jc__sqlite **out);
void jc__sqlite_close(jc__sqlite *st);
const char *jc__sqlite_path(const jc__sqlite *st);
int jc__sqlite_begin(jc__sqlite *st);
int jc__sqlite_commit(jc__sqlite *st);
int jc__sqlite_rollback(jc__sqlite *st);
int jc__sqlite_get(jc__sqlite *st, const uint8_t key[JC__KEY_LEN], jc__hit *hit);
int jc__sqlite_get_many(jc__sqlite *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx);
int jc__sqlite_get_checks(jc__sqlite *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx);
int jc__sqlite_read_begin(jc__sqlite *st);
void jc__sqlite_read_end(jc__sqlite *st);
int jc__sqlite_data_version(jc__sqlite *st, int64_t *out);
int jc__sqlite_put(jc__sqlite *st, const jc__entry_in *e);
int jc__sqlite_params_put(jc__sqlite *st, const char *function, const char *version, const char *names);
int jc__sqlite_params_get(jc__sqlite *st, const char *function, const char *version, char **names);
/* hostlock.c: one host at a time on a network file system. Take records
 * this handle in path's FILE.hosts/ when the file lies on one, and refuses
 * (JC_EBUSY naming the host) while a live record of another host is there;
 * *out NULL on a local file system (and for a read-only look that cannot
 * write the directory and found no other host). Release stops renewing and
 * removes the record. Lost: why the file was lost to another host since
 * (every write is then refused), or NULL. */
typedef struct jc__hostlock jc__hostlock;
int jc__hostlock_take(const char *path, bool readonly, jc__hostlock **out);
void jc__hostlock_release(jc__hostlock *h);
const char *jc__hostlock_lost(jc__hostlock *h);

/* chunks.c: the parts of results in pieces. */
int jc__sqlite_put_pieces(jc__sqlite *st, const uint8_t key[JC__KEY_LEN], const jc__part *pieces, size_t n,
                          int level, int64_t *stored);
int jc__sqlite_part_read(jc__sqlite *st, const uint8_t key[JC__KEY_LEN], uint32_t part, void *dst, size_t len);
/* Sets the result_size of the entry under key (its parts included). */
int jc__sq_set_result_size(jc__sqlite *st, const uint8_t key[JC__KEY_LEN], int64_t size);
/* Remove the chunks of the entry under key, of the entry rowid, or of the
 * entries `where` selects (jc__sq_run_where's): what every removal and
 * replacement of entries does first, in the same transaction. Nothing to
 * do (and no statement run) while the file holds no chunks. */
bool jc__sq_chunks_any(jc__sqlite *st);
/* A store of an entry with parts, all or nothing: jc__sq_guard(st, 0)
 * opens a savepoint; jc__sq_guard(st, rc) then releases it (rc 0) or rolls
 * back to it (rc, returned as it is). */
int jc__sq_guard(jc__sqlite *st, int rc);
int jc__sq_chunks_drop_key(jc__sqlite *st, const uint8_t key[JC__KEY_LEN]);
int jc__sq_chunks_drop_rowid(jc__sqlite *st, int64_t rowid);
int jc__sq_chunks_drop_where(jc__sqlite *st, const char *where, binder bind, const void *ctx);
int jc__sqlite_delete(jc__sqlite *st, const uint8_t key[JC__KEY_LEN]);
int jc__sqlite_pager_new(jc__sqlite *st, const jc__select *q, jc__sqlite_pager **out);
int jc__sqlite_pager_next(jc__sqlite_pager *p, const int64_t **rowids, size_t *n);
void jc__sqlite_pager_free(jc__sqlite_pager *p);
int jc__sqlite_row(jc__sqlite *st, int64_t rowid, bool blobs, jc__row *row);
int jc__sqlite_row_by_key(jc__sqlite *st, const uint8_t key[JC__KEY_LEN], bool blobs, jc__row *row);
int jc__sqlite_find_range(jc__sqlite *st, const uint8_t lo[JC__KEY_LEN], const uint8_t hi[JC__KEY_LEN], jc__row *row);
int jc__sqlite_put_row(jc__sqlite *st, const jc__row *row);
int jc__sqlite_max_rowid(jc__sqlite *st, int64_t *out);
int jc__sqlite_delete_rowid(jc__sqlite *st, int64_t rowid);
int jc__sqlite_remove(jc__sqlite *st, const jc__select *q, int64_t *count, int64_t *bytes);
int jc__sqlite_clamp_future(jc__sqlite *st, int64_t *count);
int jc__sqlite_zero_hits(jc__sqlite *st, int64_t *count);
int jc__sqlite_hit_log_add(jc__sqlite *st, double at, int64_t hits, double saved, const void *blob, size_t len);
int jc__sqlite_hit_log_fold(jc__sqlite *st, int64_t *rows);
int jc__sqlite_hit_log_pending(jc__sqlite *st, int64_t *rows, int64_t *hits, double *saved);
int jc__sqlite_hit_log_each(jc__sqlite *st, jc__hit_log_fn fn, void *ctx);
int jc__sqlite_by_check(jc__sqlite *st, const uint8_t check[JC__CHECK_LEN], uint8_t key[JC__KEY_LEN]);
int jc__sqlite_users(jc__sqlite *st, const uint8_t check[JC__CHECK_LEN], jc__user_fn fn, void *ctx);
int jc__sqlite_remove_stale(jc__sqlite *st, int64_t *count, int64_t *bytes);
int jc__sqlite_remove_lru(jc__sqlite *st, int64_t keep_entries, int64_t keep_bytes, int64_t *count, int64_t *bytes);
int64_t jc__sqlite_disk_bytes(const jc__sqlite *st);
int jc__sqlite_size_get(jc__sqlite *st, jc__store_size *out);
int jc__sqlite_checkpoint(jc__sqlite *st);
int jc__sqlite_evict(jc__sqlite *st, int64_t target, int64_t max_count, int64_t *count, int64_t *bytes);
int jc__sqlite_count(jc__sqlite *st, int64_t *out);
size_t jc__sqlite_wal_readers(const jc__sqlite *st, long *pids, size_t cap);
bool jc__sqlite_want_created(jc__sqlite *st, bool want);
int jc__sqlite_groups(jc__sqlite *st, int (*fn)(void *ctx, const jc__group *g), void *ctx);
int jc__sqlite_facts_get(jc__sqlite *st, jc__store_facts *out);
int jc__sqlite_integrity(jc__sqlite *st, void (*fn)(void *ctx, const char *problem), void *ctx);
int jc__sqlite_vacuum(jc__sqlite *st);
int jc__sqlite_backup(jc__sqlite *st, const char *dest);
int jc__sqlite_lease_owner(jc__sqlite *st, const char *owner, double expires, bool create);
int jc__sqlite_lease_add(jc__sqlite *st, const char *owner, const uint8_t *keys, size_t n);
int jc__sqlite_leases(jc__sqlite *st, int (*fn)(void *ctx, const jc__lease *l), void *ctx);
int jc__sqlite_lease_set_keys(jc__sqlite *st, int64_t id, const uint8_t *keys, size_t n);
int jc__sqlite_lease_drop(jc__sqlite *st, const char *owner);
int jc__sqlite_run_add(jc__sqlite *st, const jc__run_row *r, int64_t keep);
int jc__sqlite_runs(jc__sqlite *st, int64_t last_n, bool failed_only, int (*fn)(void *ctx, const jc__run_row *r), void *ctx);
int jc__sqlite_meta_get(jc__sqlite *st, const char *name, char **value);
int jc__sqlite_meta_set(jc__sqlite *st, const char *name, const char *value);
int jc__sqlite_schema(const jc__sqlite *st);
bool jc__sqlite_in_transaction(const jc__sqlite *st);

/* Waits for another process's lock up to ms (0: not at all), as
 * sqlite3_busy_timeout does, but gives up at once when a run is being
 * interrupted (SIGINT, SIGTERM: util/interrupt.h), so that a stuck lock
 * never holds a program past a Ctrl-C. */
void jc__sq_busy_install(jc__sqlite *st, int ms);

/* Shared between the files of this folder (each defined in one of them). */
int jc__sq_check_schema(jc__sqlite *st);
int64_t jc__sq_clamp_int64(double d);
void jc__sq_end_read(jc__sqlite *st);
/* Records the process (and fork generation) that opened st: a store used
 * in another process refuses every call (jc__sq_same_process). */
void jc__sq_mark_process(jc__sqlite *st);
const char *jc__sq_key_format_column(const jc__sqlite *st);
int jc__sq_lazy(jc__sqlite *st, sqlite3_stmt **s, const char *sql);
int jc__sq_prepare(jc__sqlite *st, const char *sql, sqlite3_stmt **s);
int jc__sq_remove_where(jc__sqlite *st, const char *where, binder bind, const void *ctx,
                        int64_t *count, int64_t *bytes);
int jc__sq_run_sql(jc__sqlite *st, const char *sql, const char *what);
int jc__sq_run_where(jc__sqlite *st, const char *head, const char *where, binder bind,
                     const void *ctx, const char *what, sqlite3_stmt **out);
bool jc__sq_same_process(const jc__sqlite *st);
int jc__sq_set_wal(jc__sqlite *st);
int jc__sq_step_done(jc__sqlite *st, sqlite3_stmt *s, const char *what);
int jc__sq_store_enter(jc__sqlite *st);
int jc__sq_store_enter_write(jc__sqlite *st, const char *what);
int jc__sq_store_error(const jc__sqlite *st, int rc, const char *what);
const char *jc__sq_v2_columns(const jc__sqlite *st);
int jc__sq_read_schema_info(jc__sqlite *st, schema_info *info);
int jc__sq_classify(jc__sqlite *st, const schema_info *info);
int jc__sq_create_schema(jc__sqlite *st);
int jc__sq_migrate(jc__sqlite *st);

#endif
