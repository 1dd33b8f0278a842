/*
 * store: the only part of jobcache that speaks SQL.
 *
 * One SQLite file in WAL mode holds one table of entries keyed by a 16-byte
 * XXH3-128 key. The schema version lives in PRAGMA user_version; a file with
 * a newer one is refused. Every statement is prepared once, when the store is
 * opened. Writes are grouped into explicit transactions by the caller
 * (jc__store_begin / jc__store_commit), so that a run commits many results at
 * once while a kill at any instant keeps everything committed before it.
 *
 * Error convention: functions return 0 or a negative jc_error and set the
 * thread's message (jc__set_error) naming the file and SQLite's own message.
 */
#ifndef JC_STORE_H
#define JC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "jc_internal.h"

#define JC__SCHEMA_VERSION 1

typedef struct jc__store jc__store;

enum {
    JC__STORE_READONLY = 1 << 0, /* open with SQLITE_OPEN_READONLY; never write */
    JC__STORE_NOCREATE = 1 << 1  /* a missing file is JC_ENOTFOUND */
};

/* Opens or creates path. busy_timeout_ms <= 0 means 10000. On failure returns
 * a negative code and *out is NULL: JC_EIO (missing or unwritable directory,
 * unreadable file), JC_ECORRUPT (not SQLite, truncated, corrupt, or an SQLite
 * file that is not a jobcache cache), JC_ESCHEMA (newer schema), JC_ENOTFOUND
 * (NOCREATE and no file). */
int jc__store_open(const char *path, unsigned flags, int busy_timeout_ms, jc__store **out);
/* Commits an open transaction, finalizes statements, closes. NULL is a no-op. */
void jc__store_close(jc__store *st);
const char *jc__store_path(const jc__store *st);

/* Explicit write transaction (BEGIN IMMEDIATE, retried under the busy
 * timeout). Nested begin calls are counted; the outermost commit commits.
 * An inner rollback dooms the whole transaction: the outermost commit then
 * rolls back and returns JC_EIO. Commit or rollback without begin is
 * JC_EINVAL. On a read-only store begin, put, touch and delete return
 * JC_EREADONLY. A lock held past the busy timeout gives JC_EBUSY. A store
 * used in a process other than the one that opened it refuses every call
 * (JC_EINVAL): an SQLite connection must not cross fork. */
int jc__store_begin(jc__store *st);
int jc__store_commit(jc__store *st);
int jc__store_rollback(jc__store *st);

/* What a lookup finds. result points into a buffer the store owns, valid
 * until the next call on the store. */
typedef struct jc__hit {
    int64_t rowid;
    const void *result;
    size_t result_len;
    double compute_seconds;
} jc__hit;

/* Looks key up. Returns 1 and fills *hit when found, 0 when absent, or a
 * negative code. */
int jc__store_get(jc__store *st, const uint8_t key[JC__KEY_LEN], jc__hit *hit);
/* Records a hit on rowid: hits += 1, last_used = now. */
int jc__store_touch(jc__store *st, int64_t rowid, double now);

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
} jc__entry_in;

/* Inserts or replaces the entry under e->key (hits restart at 0). */
int jc__store_put(jc__store *st, const jc__entry_in *e);
/* Removes the entry under key; 1 if removed, 0 if absent. */
int jc__store_delete(jc__store *st, const uint8_t key[JC__KEY_LEN]);

/* Current time as used for created/last_used: seconds since the epoch. */
double jc__now(void);

#endif
