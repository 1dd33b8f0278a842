/*
 * store: the interface of logical operations on a cache's entries, leases,
 * record of runs and settings; the only part of jobcache that speaks SQL is
 * behind it. The cache layer (cache/) is its one caller.
 *
 * The operations are dispatched (store.c) to the backend that opened the
 * handle (store_int.h): today the embedded SQLite file (store/sqlite/): one
 * file in WAL mode, one table of entries keyed by a 16-byte XXH3-128 key,
 * the schema version in PRAGMA user_version (a file with a newer one is
 * refused), the statements of the hot path prepared at open and the others
 * on first use. Writes are grouped into explicit transactions by the caller
 * (jc__store_begin / jc__store_commit), so that a run commits many results at
 * once while a kill at any instant keeps everything committed before it.
 *
 * Error convention: functions return 0 or a negative jc_error and set the
 * thread's message (jc__set_error) naming the file and SQLite's own message.
 */
#ifndef JC_STORE_H
#define JC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jc_internal.h"

/* Schema versions: 1 jobcache 0.1.0; 2 adds result checksums and code
 * fingerprints; 3 each entry's key format; 4 adds leases; 5 the record of
 * runs; 6 the names of parameters; 7 evictions, 8 retries and 9 inputs read
 * per run; 10 the hit log. store/sqlite/schema.c keeps the chain of
 * migrations between them. */
#define JC__SCHEMA_VERSION 11

/* The checksum of a stored result: XXH3-128 of its bytes, in canonical
 * (big-endian) form. Also the length of a code fingerprint. */
#define JC__CHECK_LEN 16
void jc__result_check(const void *result, size_t len, uint8_t out[JC__CHECK_LEN]);

typedef struct jc__store jc__store;

enum {
    JC__STORE_READONLY = 1 << 0, /* open with SQLITE_OPEN_READONLY; never write */
    JC__STORE_NOCREATE = 1 << 1  /* a missing file is JC_ENOTFOUND */
};

/* Opens or creates path. busy_timeout_ms <= 0 means 10000. A file is
 * recognised as a cache (user_version, its tables and meta row) before
 * anything is written to it. A writable open migrates a file of an older
 * schema in place, in one transaction; a read-only open reads it as it is. On failure returns
 * a negative code and *out is NULL: JC_EIO (missing or unwritable directory,
 * unreadable file), JC_ECORRUPT (not SQLite, truncated, corrupt, or an SQLite
 * file that is not a jobcache cache), JC_ESCHEMA (newer schema), JC_ENOTFOUND
 * (NOCREATE and no file). */
int jc__store_open(const char *path, unsigned flags, int busy_timeout_ms, jc__store **out);
/* Whether path names a store on a server (a PostgreSQL connection URI:
 * store/pg/pg.h) rather than a file. */
bool jc__store_is_server(const char *path);
/* Removes the record of the host using the file at path on a network file
 * system (jc_cache_unlock_host), without opening it. */
int jc__store_unlock_host(const char *path, char **host);
/* Commits an open transaction, finalizes statements, closes. NULL is a no-op. */
void jc__store_close(jc__store *st);
const char *jc__store_path(const jc__store *st);

/* Explicit write transaction (BEGIN IMMEDIATE, retried under the busy
 * timeout). Nested begin calls are counted; the outermost commit commits.
 * An inner rollback dooms the whole transaction: the outermost commit then
 * rolls back and returns JC_EIO. Commit or rollback without begin is
 * JC_EINVAL. On a read-only store begin, put, the hit log and delete return
 * JC_EREADONLY. A lock held past the busy timeout gives JC_EBUSY. A store
 * used in a process other than the one that opened it refuses every call
 * (JC_EINVAL): an SQLite connection must not cross fork. */
int jc__store_begin(jc__store *st);
int jc__store_commit(jc__store *st);
int jc__store_rollback(jc__store *st);

/* What a lookup finds. result points into a buffer the store owns, valid
 * until the next call on the store. */
typedef struct jc__hit {
    const void *result;
    size_t result_len;
    double compute_seconds;
    double created;   /* when the entry was stored (expiry: jc_options.expires_after) */
    bool has_check;   /* the entry has a checksum (schema 2; NULL in older rows) */
    bool has_code_fp; /* the entry records the code that computed it */
    uint8_t check[JC__CHECK_LEN];
    uint8_t code_fp[JC__CHECK_LEN];
} jc__hit;

/* Looks key up. Returns 1 and fills *hit when found, 0 when absent, or a
 * negative code. */
int jc__store_get(jc__store *st, const uint8_t key[JC__KEY_LEN], jc__hit *hit);
/* Looks up n keys at once, calling on_hit(ctx, i, hit) for each keys[i]
 * found (in no particular order; hit->result is valid during the call only,
 * which must not call the store). Keys absent, or whose result is not a
 * blob, get no call. Chooses one pass over the table when the batch is a
 * large share of it, else point lookups in key order. Returns 0 or a
 * negative code. */
typedef void (*jc__hit_fn)(void *ctx, size_t i, const jc__hit *hit);
int jc__store_get_many(jc__store *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx);
/* The same without the results (hit->result NULL, result_len 0): the
 * checksum, code fingerprint, compute time and creation time of each entry
 * found, for a pipeline's input whose value is not needed (only its digest
 * enters the keys of the calls that use it). Point lookups in key order. */
int jc__store_get_checks(jc__store *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx);


/* A read transaction around many lookups (one snapshot, one set of WAL
 * read locks). Ends by jc__store_read_end, or by any write. */
int jc__store_read_begin(jc__store *st);
void jc__store_read_end(jc__store *st);
/* Whether a read transaction of jc__store_read_begin is still held (a write
 * ends it). */
bool jc__store_reading(const jc__store *st);

/* SQLite's data_version: it changes when another connection commits to
 * the file (not on this connection's own commits). */
int jc__store_data_version(jc__store *st, int64_t *out);

/* What a store writes. */
typedef struct jc__entry_in {
    const uint8_t *key; /* JC__KEY_LEN bytes */
    const char *function;
    const char *version;
    const void *args;
    size_t args_len;
    const void *result;
    size_t result_len;
    double compute_seconds;
    double now; /* becomes created and last_used */
    const uint8_t *code_fp; /* JC__CHECK_LEN bytes, or NULL: unknown */
    /* A result in pieces (jc__encode_result_split): result is its skeleton,
     * pieces its parts in order, check its checksum (required with pieces;
     * without, the store computes it from result). */
    const jc__part *pieces;
    size_t npieces;
    const uint8_t *check;
    /* zstd's level for the parts (1-19), each compressed when a trial on a
     * sample of it saves a tenth; 0: stored as they are. */
    int compress_level;
} jc__entry_in;

/* Inserts or replaces the entry under e->key (its hit count kept), with
 * its parts, if any, and the checksum of its result (computed here unless
 * given). A replaced entry's parts go with it. */
int jc__store_put(jc__store *st, const jc__entry_in *e);
/* Reads part number part of the result in pieces stored under key into
 * dst, which has room for exactly len bytes (the length its reference
 * gives); with dst NULL, only checks that its chunks hold len bytes (before
 * the memory is taken). 0, or JC_EDECODE naming the file when the part is missing, of
 * another length or fails to decompress, or another negative code. Call it
 * within the snapshot that found the skeleton (jc__store_read_begin, or a
 * write transaction), so that both are of one version of the entry. */
int jc__store_part_read(jc__store *st, const uint8_t key[JC__KEY_LEN], uint32_t part, void *dst, size_t len);
/* Records the names of function's positional parameters ("beta,seed"),
 * with version; writes only when they are new or changed. */
int jc__store_params_put(jc__store *st, const char *function, const char *version, const char *names);
/* Reads them: 1 and *names (malloc'd) when recorded, 0 and NULL when not
 * (or in a file older than schema 6, read as it is), or a negative code. */
int jc__store_params_get(jc__store *st, const char *function, const char *version, char **names);
/* Removes the entry under key; 1 if removed, 0 if absent. */
int jc__store_delete(jc__store *st, const uint8_t key[JC__KEY_LEN]);

/* ---- inspecting and tending a cache (for inspection: inspect/) ----
 *
 * These read every column of an entry, select entries by a filter in a
 * chosen order, remove entries in bulk, and give per-function figures. A
 * cache file may be hostile: a column of the wrong type or a NULL where the
 * library never writes one is read as it comes (a NULL text as "", a key of
 * the wrong length as its first bytes, zero-padded), never trusted for
 * lengths, and left for verify to report. */

/* One entry as stored. Strings and blobs point into a buffer the store owns,
 * valid until the next call on the store. */
typedef struct jc__row {
    int64_t rowid;
    uint8_t key[JC__KEY_LEN];
    size_t key_len;       /* bytes in the key column: JC__KEY_LEN in a sound entry */
    const char *function; /* never NULL */
    const char *version;  /* never NULL */
    const void *args;     /* only when blobs were asked for; else NULL */
    size_t args_len;
    const void *result;
    size_t result_len;
    int64_t args_size;    /* the sizes recorded in the row */
    int64_t result_size;
    double created, last_used, compute_seconds; /* times later than now read as now */
    int64_t hits;
    bool created_future; /* created was later than now in the file */
    /* result_check and code_fp: check_len / code_fp_len bytes as stored (0
     * when NULL, or in a schema-1 file read as it is; JC__CHECK_LEN in a
     * sound entry, anything in a hostile one, truncated to JC__CHECK_LEN). */
    size_t check_len, code_fp_len;
    uint8_t check[JC__CHECK_LEN];
    uint8_t code_fp[JC__CHECK_LEN];
    /* The key format its key was made with (1 in a file older than schema
     * 3 read as it is). An entry of another format than
     * JC_KEY_FORMAT_VERSION is never served, and its key cannot be checked
     * here. */
    int64_t key_format;
    /* For jc__store_put_row only (zero when read): a result in pieces, as
     * jc__entry_in's pieces, check and compress_level. */
    const jc__part *parts;
    size_t nparts;
    const uint8_t *parts_check;
    int compress_level;
} jc__row;

/* The orders of jc__store_select; every one ends with rowid, so that the
 * order is total. */
enum jc__order {
    JC__ORDER_ROWID = 0,   /* storage order */
    JC__ORDER_NAME = 1,    /* function, version, created */
    JC__ORDER_USED = 2,    /* most recently used first */
    JC__ORDER_SIZE = 3,    /* args + result, largest first */
    JC__ORDER_TIME = 4,    /* compute time, longest first */
    JC__ORDER_HITS = 5,    /* most hits first */
    JC__ORDER_CREATED = 6, /* newest first */
    JC__ORDER_KEY = 7,     /* by key: through its index, the first at once */
    JC__ORDER_COUNT
};

/* Which entries: each bound is ignored when NULL or 0. Times are seconds
 * since the epoch and compare with last_used. */
typedef struct jc__select {
    const char *function;
    const char *version;
    double used_before; /* last_used < used_before */
    double used_since;  /* last_used >= used_since */
    int order;          /* enum jc__order */
    bool reverse;
    int64_t limit;      /* at most this many; 0 = all */
    bool other_formats; /* only entries of another key format than JC_KEY_FORMAT_VERSION */
} jc__select;

/* A listing of the entries a selection picks, a page of rowids at a time
 * (keyset pagination, see store/sqlite/list.c): memory bounded by a page, whatever the
 * number of entries, and no statement pending between calls, so that a
 * slow reader never pins a WAL snapshot. Read each entry afterwards with
 * jc__store_row. An entry changed between pages may move in the order (a
 * hit, in JC__ORDER_USED) and be listed twice or not at all; one added
 * meanwhile may be listed. */
typedef struct jc__pager jc__pager;
/* A new pager over q (its strings are copied); free with
 * jc__store_pager_free (NULL is a no-op), before the store closes. */
int jc__store_pager_new(jc__store *st, const jc__select *q, jc__pager **out);
/* The next page: *rowids (owned by the pager, valid until its next call)
 * and *n; *n is 0 at the end. Returns 0 or a negative code. */
int jc__store_pager_next(jc__pager *p, const int64_t **rowids, size_t *n);
void jc__store_pager_free(jc__pager *p);
/* Reads one entry by rowid / by key, with its blobs when blobs is true.
 * Returns 1 and fills *row, 0 when there is no such entry (any more), or a
 * negative code. */
int jc__store_row(jc__store *st, int64_t rowid, bool blobs, jc__row *row);
int jc__store_row_by_key(jc__store *st, const uint8_t key[JC__KEY_LEN], bool blobs, jc__row *row);
/* The entries whose key lies in [lo, hi] (a hex prefix widened to 16
 * bytes): returns how many, counting no further than 2, and fills *row (no
 * blobs) with the first. */
int jc__store_find_range(jc__store *st, const uint8_t lo[JC__KEY_LEN], const uint8_t hi[JC__KEY_LEN],
                         jc__row *row);
/* Writes row with all its metadata (created, last_used, hits, code_fp),
 * blobs included, replacing an entry under the same key; the checksum is
 * computed from the result written. For merging. */
int jc__store_put_row(jc__store *st, const jc__row *row);
/* The largest row id in use (0 when none): the bound of a walk over row
 * ids when listing them fails on a damaged page. */
int jc__store_max_rowid(jc__store *st, int64_t *out);
/* Removes the entry rowid; 1 if removed, 0 if absent. */
int jc__store_delete_rowid(jc__store *st, int64_t rowid);

/* Bulk removal; call inside a write transaction (the count and the removal
 * then see the same entries). Each sets *count and *bytes (args + result as
 * recorded) to what it removed. */
/* The entries q selects (its order and limit are ignored). */
int jc__store_remove(jc__store *st, const jc__select *q, int64_t *count, int64_t *bytes);
/* Writes back every created and last_used later than now (stored while the
 * clock was ahead) as the time the next entry written with a sane clock
 * was made (rowids follow the order of writing), or now when there is
 * none, so that such an entry neither stays the newest nor looks newer
 * than the entries written after it; *count (may be NULL) gets how many
 * entries. Everything else here reads such times as now until then. Call
 * inside a write transaction. */
int jc__store_clamp_future(jc__store *st, int64_t *count);
/* Sets every entry's hit count to 0 (last_used unchanged), and the counts
 * of evictions (jc__store_facts); *count (may be NULL) gets how many
 * entries had hits. Call inside a write transaction. */
int jc__store_zero_hits(jc__store *st, int64_t *count);

/* The hit log (schema 10): hits are recorded as rows, each the distinct
 * keys of one flush in key order, JC__HIT_RECORD bytes each (the 16-byte
 * key, then its count as a little-endian uint32), with the time (at), their
 * total (hits) and the compute seconds they saved; folded into the
 * entries' hit counts and last-used times (hits += count, last_used =
 * max(last_used, at)) later: at inspection, before eviction, and every
 * JC__HIT_LOG_FOLD_EVERY rows. So a hit costs no write of its entry's row
 * (issue 22). Adding and folding need a write transaction; on a file older
 * than schema 10 (read as it is) there is no log: pending is 0, each
 * yields nothing, fold does nothing. */
#define JC__HIT_RECORD 20
#define JC__HIT_LOG_FOLD_EVERY 64
typedef int (*jc__hit_log_fn)(void *ctx, double at, int64_t hits, double saved, const void *blob, size_t len);
int jc__store_hit_log_add(jc__store *st, double at, int64_t hits, double saved, const void *blob, size_t len);
/* Folds every row and empties the log; *rows (may be NULL) gets how many
 * rows (a damaged row, a blob not a multiple of JC__HIT_RECORD bytes, is
 * dropped unread). */
int jc__store_hit_log_fold(jc__store *st, int64_t *rows);
/* The log's rows, hits and saved seconds not yet folded. */
int jc__store_hit_log_pending(jc__store *st, int64_t *rows, int64_t *hits, double *saved);
/* Calls fn for each sound row, oldest first; stops at its first nonzero. */
int jc__store_hit_log_each(jc__store *st, jc__hit_log_fn fn, void *ctx);
/* Pipelines: the key of an entry whose result has checksum check (1, key
 * filled; 0 when none); and each entry whose arguments refer to that
 * result (jc_use: ext 6 with check), as fn(ctx, key, its own checksum or
 * NULL). 0 or a negative code. */
int jc__store_by_check(jc__store *st, const uint8_t check[JC__CHECK_LEN], uint8_t key[JC__KEY_LEN]);
typedef void (*jc__user_fn)(void *ctx, const uint8_t key[JC__KEY_LEN], const uint8_t *check);
int jc__store_users(jc__store *st, const uint8_t check[JC__CHECK_LEN], jc__user_fn fn, void *ctx);
/* Every version of a function but the one most recently used (ties: the
 * one written last, then the greatest version string). */
int jc__store_remove_stale(jc__store *st, int64_t *count, int64_t *bytes);
/* Least recently used entries beyond the keep_entries most recently used or
 * beyond keep_bytes of them (args + result); 0 = no such bound. */
int jc__store_remove_lru(jc__store *st, int64_t keep_entries, int64_t keep_bytes, int64_t *count,
                         int64_t *bytes);

/* ---- the size on disk (max_size) ----
 *
 * What max_size bounds is what `du` shows: the database file and its -wal
 * file. A file made with auto_vacuum=INCREMENTAL (every file this schema
 * creates; an older one gets it at its first jc__store_vacuum) gives the
 * pages of removed entries back to the system at once. */

/* The database file and its -wal file on disk, in bytes, from two stat()
 * calls: constant time, whatever the number of entries. */
int64_t jc__store_disk_bytes(const jc__store *st);
typedef struct jc__store_size {
    int64_t page_bytes;  /* the page size */
    int64_t pages;       /* pages of the database as this connection sees it */
    int64_t free_pages;  /* of those, free */
    int64_t empty_bytes; /* the size of an empty cache (its schema's pages) */
    bool incremental;    /* auto_vacuum=INCREMENTAL */
} jc__store_size;
/* Reads the figures above from the file's header: constant time. */
int jc__store_size_get(jc__store *st, jc__store_size *out);
/* A checkpoint that truncates the -wal file, without waiting for other
 * processes: 0 when done, 1 when another process's reader or writer kept
 * part of it (the -wal file then keeps its size for now), or a negative
 * code. Not inside a transaction (JC_EINVAL). */
int jc__store_checkpoint(jc__store *st);
/* Inside a write transaction: removes least recently used entries until
 * the pages in use (free pages given back) take at most target bytes, or
 * no entry is left, or max_count entries are removed (max_count <= 0: no
 * bound). *count and *bytes (payload) get what it removed. */
int jc__store_evict(jc__store *st, int64_t target, int64_t max_count, int64_t *count, int64_t *bytes);
/* Other processes holding a read snapshot of the file's -wal (a read
 * transaction that started before the latest commits: until it ends, a
 * checkpoint cannot copy those commits into the database, and the -wal
 * grows). Up to cap of their pids (in this process's pid namespace) go to
 * pids; returns how many there are (0 also when it cannot tell), never an
 * error: it is for telling a user who pins the file. */
size_t jc__store_wal_readers(const jc__store *st, long *pids, size_t cap);
/* Whether jc__store_get_many reports each hit's created (else 0): only
 * lookups that expire entries need it, and it costs every hit a column.
 * Returns the setting it replaces. */
bool jc__store_want_created(jc__store *st, bool want);
/* How many entries the store holds (all key formats). */
int jc__store_count(jc__store *st, int64_t *out);

/* Figures of one (function, version); strings valid during the callback. */
typedef struct jc__group {
    const char *function;
    const char *version;
    int64_t entries, args_bytes, result_bytes, hits;
    double compute_seconds, saved_seconds; /* saved: sum of hits * compute_seconds */
    double oldest, newest, last_used;
    int64_t code_fingerprints; /* distinct known code fingerprints among the entries */
    int64_t other_formats;     /* entries of another key format */
} jc__group;
/* Calls fn for each (function, version) in name order, from one snapshot;
 * stops at fn's first nonzero return and returns it. The callback must not
 * call the store. */
int jc__store_groups(jc__store *st, int (*fn)(void *ctx, const jc__group *g), void *ctx);

typedef struct jc__store_facts {
    int64_t schema_version;
    int64_t key_format;  /* from the meta table; 0 when absent */
    int64_t page_bytes;  /* pages in use by the database, in bytes */
    int64_t free_bytes;  /* of those, free pages that vacuum would return */
    /* Evicted by max_size since the file was made or its counts zeroed
     * (meta stats.evicted, stats.evicted-bytes). */
    int64_t evicted_entries, evicted_bytes;
} jc__store_facts;
int jc__store_facts_get(jc__store *st, jc__store_facts *out);

/* Runs SQLite's integrity check; calls fn with each problem it reports (at
 * most 100). Returns the number of problems, or a negative code. */
int jc__store_integrity(jc__store *st, void (*fn)(void *ctx, const char *problem), void *ctx);
/* VACUUM, then a checkpoint that truncates the -wal file. Makes the file
 * auto_vacuum=INCREMENTAL if it was not. Not inside a transaction
 * (JC_EINVAL). */
int jc__store_vacuum(jc__store *st);
/* Writes a consistent copy of the whole file to dest with SQLite's online
 * backup API, while other processes may keep writing: dest is written under
 * a temporary name and renamed, so it is absent or complete; it is one
 * self-contained file (no -wal beside it). dest must not exist (JC_EIO).
 * Not inside a transaction (JC_EINVAL). */
int jc__store_backup(jc__store *st, const char *dest);
/* ---- leases (for cache/leases.c; store/sqlite/schema.c has the tables) ---- */

/* Creates or renews owner's row (create), or only renews it, to expire at
 * expires (seconds since the epoch). Inside a write transaction. */
int jc__store_lease_owner(jc__store *st, const char *owner, double expires, bool create);
/* Adds a row of n claimed keys (keys + JC__KEY_LEN * i, sorted) for owner. */
int jc__store_lease_add(jc__store *st, const char *owner, const uint8_t *keys, size_t n);
/* One lease row as read: keys valid during the callback only. An owner
 * without keys comes once with id 0 and n 0. */
typedef struct jc__lease {
    const char *owner;
    double expires, started;
    int64_t id;
    const uint8_t *keys;
    size_t n;
} jc__lease;
/* Calls fn for each lease row, by owner; stops at fn's first nonzero
 * return and returns it. The callback must not call the store. Nothing (0)
 * in a file older than schema 4 read as it is. */
int jc__store_leases(jc__store *st, int (*fn)(void *ctx, const jc__lease *l), void *ctx);
/* Replaces the keys of lease row id (n = 0 removes the row). */
int jc__store_lease_set_keys(jc__store *st, int64_t id, const uint8_t *keys, size_t n);
/* Removes owner and all its lease rows; returns 1 if the owner was there,
 * 0 if not, or a negative code. */
int jc__store_lease_drop(jc__store *st, const char *owner);

/* The record of runs (store/sqlite/schema.c's RUN_TABLES). */
typedef struct jc__run_failure {
    const char *status, *message;
} jc__run_failure;
typedef struct jc__run_row {
    int64_t id;
    double started, ended;
    const char *host;
    int64_t pid;
    const char *command, *kind, *backend, *status;
    int n_jobs;
    int64_t calls, cached, computed, failed, skipped;
    double elapsed, saved;
    int64_t evicted, evicted_bytes; /* by max_size during the run (schema 7) */
    int64_t retries;                /* runs of calls again after a crash or timeout (schema 8) */
    int64_t inputs_read;            /* intermediate values read from the cache (schema 9) */
    const jc__run_failure *failures;
    size_t nfailures;
} jc__run_row;
/* Appends r with its failures, then keeps only the last keep runs (keep
 * <= 0: all). Inside a write transaction. */
int jc__store_run_add(jc__store *st, const jc__run_row *r, int64_t keep);
/* Calls fn for each of the last last_n runs (<= 0: all), oldest first,
 * only those with failures when failed_only; strings valid during the call.
 * Nothing in a file older than schema 5 read as it is. */
int jc__store_runs(jc__store *st, int64_t last_n, bool failed_only,
                   int (*fn)(void *ctx, const jc__run_row *r), void *ctx);
/* A row of the meta table: *value gets a malloc'd copy, or NULL when the
 * name is absent. jc__store_meta_set writes it (value NULL removes it). */
int jc__store_meta_get(jc__store *st, const char *name, char **value);
int jc__store_meta_set(jc__store *st, const char *name, const char *value);
/* The file's schema version as it is read: JC__SCHEMA_VERSION, or an older
 * one when a read-only store reads an older file as it is. */
int jc__store_schema(const jc__store *st);
/* How long a lock held by another process is waited for from now on: ms
 * (0: not at all, one try), or the handle's busy timeout again when ms is
 * negative. Every wait also ends at an interrupt (SIGINT, SIGTERM during a
 * run). */
void jc__store_busy_wait(jc__store *st, int ms);

/* Whether an explicit transaction (jc__store_begin) is open. */
bool jc__store_in_transaction(const jc__store *st);
/* Which write transaction is open: a number that grows with each outermost
 * jc__store_begin, 0 when none is open. With the outcome of its commit, it
 * tells the caller whether what it wrote in a transaction was committed or
 * rolled back. */
uint64_t jc__store_txn_id(const jc__store *st);

/* Times kept in the file (created, last_used) are jc__now() (util/clock.h):
 * seconds since the epoch. */

#endif
