/*
 * pg_int.h: what the files of the PostgreSQL store share, and only they
 * include (tests/layering.sh checks): the handle's fields and the helpers
 * every feature uses. The store's face is store/store.h; this backend
 * does what each operation there says, on a cache that lives in a
 * PostgreSQL schema instead of a file (docs/store.md).
 *
 * Invariants kept here:
 *
 *  - SQL is only ever built from constant text: every name and value goes
 *    as a parameter (jc__pg_params), never pasted into the statement.
 *  - Parameters and results travel in PostgreSQL's binary format: bytea as
 *    its bytes, bigint and double precision as 8 big-endian bytes. Every
 *    statement casts what it returns to the type its reader expects.
 *  - Every function returns 0 (or a count) or a negative jc_error, and on
 *    failure has set the thread's message, which names the cache (its
 *    location without a password) and quotes the server's message.
 *  - A handle is used by one thread at a time and must not cross fork():
 *    one connection is one server session. In another process than the one
 *    that opened it, every call is refused and close frees memory only.
 *  - No lookup leaves a result pending on the connection: results are read
 *    whole (PQexecParams) and kept until the next call (pg->res).
 */
#ifndef JC_STORE_PG_INT_H
#define JC_STORE_PG_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store_int.h"
#include "store/pg/libpq.h" /* libpq-fe.h, and the calls through the loaded table */
#include "store/pg/pg.h"

typedef struct jc__pg_puts jc__pg_puts;

typedef struct jc__pg {
    jc__store base; /* first: the front dispatches on it (store_int.h) */
    PGconn *conn;
    char *name;     /* the location without its password: messages and jc__store_path */
    unsigned flags; /* JC__STORE_READONLY ... */
    int busy_timeout_ms;
    /* The session's lock_timeout (ms) as jc__store_busy_wait last set it;
     * lock_in_txn: set inside a transaction, whose rollback undoes it
     * (pg.c sets it again once the transaction has ended). */
    int lock_ms;
    bool lock_in_txn;
    /* While a run is interrupted (jc__interrupted) the session waits for no
     * lock (lock_timeout 1 ms), as SQLite's busy handler gives up then. */
    bool lock_short;
    bool setting_lock; /* jc__pg_lock_timeout's statement is under way */
    int schema;     /* the cache's schema version (meta 'schema_version') */
    pid_t pid;      /* the process that opened it */
    int depth;      /* nesting of jc__store_begin; 0 = no write transaction */
    bool doomed;    /* an inner rollback: the outermost commit rolls back */
    uint64_t txn_current, txn_seq;
    bool reading;   /* a REPEATABLE READ snapshot of jc__store_read_begin is open */
    bool want_created;
    int64_t version_seq; /* jc__store_data_version: never the same twice */
    /* The last lookup's or row's result: what jc__hit and jc__row point
     * into, cleared at the next call. */
    PGresult *res;
    /* A decompressed or reassembled buffer a call hands out (chunks). */
    void *buf;
    size_t buf_cap;
    /* This handle's lease owner, whose claims live as long as this
     * connection holds the advisory lock of its name (leases.c). */
    char *lease_owner;
    /* Takes the lock of owner again for this session (tend.c sets it when
     * it first takes one): a connection made again holds its claims again
     * at once (pg.c, revive). */
    int (*hold_again)(struct jc__pg *pg, const char *owner);
    bool pipeline_failed; /* a statement of the open pipeline failed (pg.c) */
    /* jc__interrupted when the statement waited for now was sent: a signal
     * that comes during the wait cancels it (pg.c, wait_socket). */
    int interrupt_seen;
    /* Entries stored in a write transaction but not yet sent (entries.c):
     * pending(pg, true) sends them, pending(pg, false) drops them. Every
     * statement sends them first (jc__pg_query), so that the transaction
     * reads what it wrote; a rollback drops them. NULL when none wait. */
    int (*pending)(struct jc__pg *pg, bool send);
    bool sending; /* pending is running: its own statements do not call it */
    jc__pg_puts *puts;
} jc__pg;

typedef struct jc__pg_pager jc__pg_pager;

/* ---- parameters ---- */

#define JC__PG_MAX_PARAMS 24
/* OIDs of the types parameters are sent as (catalog/pg_type.h). */
#define JC__PG_BOOL 16
#define JC__PG_BYTEA 17
#define JC__PG_INT8 20
#define JC__PG_INT4 23
#define JC__PG_TEXT 25
#define JC__PG_FLOAT8 701
#define JC__PG_BYTEA_ARRAY 1001
#define JC__PG_TEXT_ARRAY 1009
#define JC__PG_INT8_ARRAY 1016
#define JC__PG_FLOAT8_ARRAY 1022

typedef struct jc__pg_params {
    int n;
    Oid types[JC__PG_MAX_PARAMS];
    const char *vals[JC__PG_MAX_PARAMS];
    int lens[JC__PG_MAX_PARAMS];
    int fmts[JC__PG_MAX_PARAMS];
    unsigned char nums[JC__PG_MAX_PARAMS][8]; /* big-endian numbers */
    void *owned[JC__PG_MAX_PARAMS];           /* arrays built here, freed by jc__pg_p_free */
    bool failed;                              /* too many, or out of memory: the query refuses */
} jc__pg_params;

/* Each appends the next parameter ($1, $2, ...). bytes/text with NULL
 * append SQL NULL; text is sent as its bytes (binary text is the text). */
void jc__pg_p_bytes(jc__pg_params *p, const void *b, size_t len);
void jc__pg_p_text(jc__pg_params *p, const char *s);
void jc__pg_p_int8(jc__pg_params *p, int64_t v);
void jc__pg_p_int4(jc__pg_params *p, int32_t v);
void jc__pg_p_float8(jc__pg_params *p, double v);
void jc__pg_p_bool(jc__pg_params *p, bool v);
/* A bytea[] of n elements of len bytes each, at ptrs[i]. */
void jc__pg_p_bytea_array(jc__pg_params *p, const uint8_t *const *ptrs, size_t n, size_t len);
/* An array parameter of n elements (array_type of elem_type) holding
 * bytes in all, their lengths aside: returns where the first element goes,
 * to be filled by the jc__pg_put_* below (each returns where the next
 * goes); NULL, and the parameters failed, when it cannot be made. */
unsigned char *jc__pg_p_array(jc__pg_params *p, Oid array_type, Oid elem_type, size_t n, size_t bytes);
unsigned char *jc__pg_put_elem(unsigned char *d, const void *b, size_t len); /* b NULL: a NULL element */
unsigned char *jc__pg_put_int8(unsigned char *d, int64_t v);
unsigned char *jc__pg_put_float8(unsigned char *d, double v);
void jc__pg_p_free(jc__pg_params *p);

/* ---- statements ---- */

/* Runs sql with p's parameters (p may be NULL), results in binary format.
 * Returns 0 with *out (PQclear it; out NULL: cleared here), or a negative
 * jc_error with the message "cache 'NAME': WHAT: <server's message>".
 * Refused in another process than the opener's (JC_EINVAL). */
int jc__pg_query(jc__pg *pg, const char *what, const char *sql, const jc__pg_params *p, PGresult **out);
/* The same for a statement without rows; *affected (may be NULL) gets
 * how many rows it changed (PQcmdTuples). */
int jc__pg_exec(jc__pg *pg, const char *what, const char *sql, const jc__pg_params *p, int64_t *affected);
/* A pipeline (libpq's pipeline mode): begin, then send statements and
 * take each one's result in the order sent (a caller keeps one or two
 * ahead), then end, which reads what was not taken and leaves the
 * connection as before. A failed statement makes the later ones of the
 * pipeline fail too (the server skips them), and end then treats the
 * transaction as a failed statement does. Each returns 0 or a negative
 * jc_error; take's *out is PQclear'd by the caller. */
int jc__pg_pipeline_begin(jc__pg *pg);
int jc__pg_pipeline_send(jc__pg *pg, const char *what, const char *sql, const jc__pg_params *p);
int jc__pg_pipeline_take(jc__pg *pg, const char *what, PGresult **out);
int jc__pg_pipeline_end(jc__pg *pg);
/* Sets the message for a failed result r (or the connection's when r is
 * NULL) and returns its jc_error: JC_EBUSY for lock timeouts, serialization
 * failures and deadlocks; JC_EREADONLY for a read-only transaction or a
 * role without the privilege; JC_EIO for a lost connection and the rest;
 * JC_EINTR for a cancelled statement. */
int jc__pg_fail(jc__pg *pg, const char *what, const PGresult *r);
/* Whether this process may use pg (its opener); else sets JC_EINVAL. */
bool jc__pg_usable(jc__pg *pg);
/* The write gate: JC_EREADONLY (named) on a read-only handle, else ends a
 * read snapshot (a write ends it, as on SQLite) and returns 0. */
int jc__pg_enter_write(jc__pg *pg, const char *what);

/* Readers of a binary result's field (row, col). A NULL reads as 0, 0.0,
 * "" or (NULL, 0). int8 also reads an int4 column (by its length). */
int64_t jc__pg_int8(const PGresult *r, int row, int col);
double jc__pg_float8(const PGresult *r, int row, int col);
const uint8_t *jc__pg_bytes(const PGresult *r, int row, int col, size_t *len);
const char *jc__pg_text(const PGresult *r, int row, int col);
bool jc__pg_isnull(const PGresult *r, int row, int col);
/* Keeps r as the handle's current result (clearing the previous). */
void jc__pg_keep(jc__pg *pg, PGresult *r);
/* Makes pg->buf hold at least n bytes; 0 or JC_ENOMEM. */
int jc__pg_reserve(jc__pg *pg, size_t n);

/* Times later than now count as now where they are compared or ordered
 * (as in the SQLite store). */
#define JC__PG_NOW "extract(epoch from clock_timestamp())::float8"
#define JC__PG_USED "least(last_used, " JC__PG_NOW ")"
#define JC__PG_CREATED "least(created, " JC__PG_NOW ")"

/* The columns of a jc__row, in this order, for row readers (list.c):
 * without blobs args and result are NULL. */
#define JC__PG_ROW_COLS(blobs)                                                                         \
    "id, key, function, version, " blobs ", args_size, result_size, created::float8,"               \
    " last_used::float8, compute_seconds::float8, hits, result_check, code_fp, key_format,"        \
    " (created > " JC__PG_NOW ")"
#define JC__PG_ROW_BLOBS "args, result"
#define JC__PG_ROW_NOBLOBS "NULL::bytea AS args, NULL::bytea AS result"
/* Fills *row from r's row i (columns JC__PG_ROW_COLS); pointers into r,
 * which the caller keeps (jc__pg_keep). */
void jc__pg_row_read(const PGresult *r, int i, jc__row *row);

/* ---- the operations, by file ---- */

/* pg.c: open, close, transactions, snapshots, settings */
int jc__pg_open(const char *location, unsigned flags, int busy_timeout_ms, jc__pg **out);
/* Sets the session's lock_timeout to pg->lock_ms (a failure is the next
 * statement's to report). */
void jc__pg_lock_timeout(jc__pg *pg);
void jc__pg_close(jc__pg *pg);
int jc__pg_begin(jc__pg *pg);
int jc__pg_commit(jc__pg *pg);
int jc__pg_rollback(jc__pg *pg);
int jc__pg_read_begin(jc__pg *pg);
void jc__pg_read_end(jc__pg *pg);
int jc__pg_meta_get(jc__pg *pg, const char *name, char **value);
int jc__pg_meta_set(jc__pg *pg, const char *name, const char *value);

/* entries.c: lookups, writes, parts */
int jc__pg_get(jc__pg *pg, const uint8_t key[JC__KEY_LEN], jc__hit *hit);
int jc__pg_get_many(jc__pg *pg, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx);
int jc__pg_get_checks(jc__pg *pg, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx);
int jc__pg_put(jc__pg *pg, const jc__entry_in *e);
int jc__pg_part_read(jc__pg *pg, const uint8_t key[JC__KEY_LEN], uint32_t part, void *dst, size_t len);
int jc__pg_params_put(jc__pg *pg, const char *function, const char *version, const char *names);
int jc__pg_params_get(jc__pg *pg, const char *function, const char *version, char **names);
int jc__pg_delete(jc__pg *pg, const uint8_t key[JC__KEY_LEN]);
int jc__pg_by_check(jc__pg *pg, const uint8_t check[JC__CHECK_LEN], uint8_t key[JC__KEY_LEN]);
int jc__pg_users(jc__pg *pg, const uint8_t check[JC__CHECK_LEN], jc__user_fn fn, void *ctx);

/* list.c: inspection and bulk removal */
int jc__pg_pager_new(jc__pg *pg, const jc__select *q, jc__pg_pager **out);
int jc__pg_pager_next(jc__pg_pager *p, const int64_t **rowids, size_t *n);
void jc__pg_pager_free(jc__pg_pager *p);
int jc__pg_row(jc__pg *pg, int64_t rowid, bool blobs, jc__row *row);
int jc__pg_row_by_key(jc__pg *pg, const uint8_t key[JC__KEY_LEN], bool blobs, jc__row *row);
int jc__pg_find_range(jc__pg *pg, const uint8_t lo[JC__KEY_LEN], const uint8_t hi[JC__KEY_LEN], jc__row *row);
int jc__pg_put_row(jc__pg *pg, const jc__row *row);
int jc__pg_max_rowid(jc__pg *pg, int64_t *out);
int jc__pg_delete_rowid(jc__pg *pg, int64_t rowid);
int jc__pg_remove(jc__pg *pg, const jc__select *q, int64_t *count, int64_t *bytes);
int jc__pg_clamp_future(jc__pg *pg, int64_t *count);
int jc__pg_zero_hits(jc__pg *pg, int64_t *count);
int jc__pg_remove_stale(jc__pg *pg, int64_t *count, int64_t *bytes);
int jc__pg_remove_lru(jc__pg *pg, int64_t keep_entries, int64_t keep_bytes, int64_t *count, int64_t *bytes);
int jc__pg_groups(jc__pg *pg, int (*fn)(void *ctx, const jc__group *g), void *ctx);
int jc__pg_count(jc__pg *pg, int64_t *out);

/* tend.c: hit log, size and eviction, facts, integrity, backup, leases, runs */
int jc__pg_hit_log_add(jc__pg *pg, double at, int64_t hits, double saved, const void *blob, size_t len);
int jc__pg_hit_log_fold(jc__pg *pg, int64_t *rows);
int jc__pg_hit_log_pending(jc__pg *pg, int64_t *rows, int64_t *hits, double *saved);
int jc__pg_hit_log_each(jc__pg *pg, jc__hit_log_fn fn, void *ctx);
int64_t jc__pg_disk_bytes(jc__pg *pg);
int jc__pg_size_get(jc__pg *pg, jc__store_size *out);
int jc__pg_evict(jc__pg *pg, int64_t target, int64_t max_count, int64_t *count, int64_t *bytes);
int jc__pg_facts_get(jc__pg *pg, jc__store_facts *out);
int jc__pg_integrity(jc__pg *pg, void (*fn)(void *ctx, const char *problem), void *ctx);
int jc__pg_vacuum(jc__pg *pg);
int jc__pg_backup(jc__pg *pg, const char *dest);
int jc__pg_lease_owner(jc__pg *pg, const char *owner, double expires, bool create);
int jc__pg_lease_add(jc__pg *pg, const char *owner, const uint8_t *keys, size_t n);
int jc__pg_leases(jc__pg *pg, int (*fn)(void *ctx, const jc__lease *l), void *ctx);
int jc__pg_lease_set_keys(jc__pg *pg, int64_t id, const uint8_t *keys, size_t n);
int jc__pg_lease_drop(jc__pg *pg, const char *owner);
int jc__pg_run_add(jc__pg *pg, const jc__run_row *r, int64_t keep);
int jc__pg_runs(jc__pg *pg, int64_t last_n, bool failed_only, int (*fn)(void *ctx, const jc__run_row *r),
                void *ctx);

#endif
