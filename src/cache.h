/*
 * cache.h: the cache layer as run.c and inspect.c see it.
 *
 * The cache handle (cache.c) is the one layer between runs and inspection
 * above and the store (store.c, the only code that speaks SQL) below, as
 * SQLite's vdbe sees its B-trees only through btree.h: nothing above calls
 * a jc__store_* function or reads a field of jc_cache (tests/layering.sh
 * checks both). The store's plain data records (jc__row, jc__select,
 * jc__group, jc__pager) pass through as they are.
 *
 * Every function returns 0 or a negative jc_error with the thread's message
 * set, as the store does; the wrappers below add nothing but the handle.
 */
#ifndef JC_CACHE_H
#define JC_CACHE_H

#include "jc_internal.h"
#include "store.h"

/* ---- state of the handle ---- */

/* Hits queued and not yet written. */
size_t jc__cache_pending(const jc_cache *cache);
/* Drops the queued hits (bookkeeping that gives way to results). */
void jc__cache_drop_pending(jc_cache *cache);
/* Entries whose result failed its checksum since the cache was opened. */
size_t jc__cache_damaged(const jc_cache *cache);
/* Marks the start of a run in this thread; JC_EBUSY when one runs already. */
int jc__cache_run_start(jc_cache *cache);
void jc__cache_run_end(jc_cache *cache);
/* Whether a run is going on in this cache (jc_memo from it is allowed in
 * the running thread only: busy_elsewhere). */
bool jc__cache_running(const jc_cache *cache);
bool jc__cache_busy_elsewhere(const jc_cache *cache);
/* The descriptor of fn for jc_memo, looked up once per function (NULL with
 * the message set: unregistered, ambiguous). */
const jc_function *jc__cache_memo_function(jc_cache *cache, jc_fn fn);
/* True the first time it is asked about fn on this handle. */
bool jc__cache_warn_once(jc_cache *cache, const jc_function *fn);
/* A usable store behind the handle (not disabled); the message says what
 * would have been done otherwise. */
bool jc__cache_has_store(const jc_cache *cache);

/* ---- write transactions ---- */

/* Begins a write transaction (nested begins are counted: store.h). */
int jc__cache_begin(jc_cache *cache);
int jc__cache_rollback(jc_cache *cache);
bool jc__cache_in_transaction(const jc_cache *cache);
/* Begins a write transaction and writes the queued hits in it: the one way
 * the tending functions start a change. */
int jc__cache_write_begin(jc_cache *cache);
/* Ends it: commits when rc is 0 and keep, else rolls back; returns rc, or
 * the commit's failure. */
int jc__cache_write_end(jc_cache *cache, int rc, bool keep);

/* ---- entries, for inspection and tending (store.h says what each does) ---- */

int jc__cache_row(jc_cache *cache, int64_t rowid, bool blobs, jc__row *row);
int jc__cache_row_by_key(jc_cache *cache, const uint8_t key[JC__KEY_LEN], bool blobs, jc__row *row);
int jc__cache_find_range(jc_cache *cache, const uint8_t lo[JC__KEY_LEN], const uint8_t hi[JC__KEY_LEN],
                         jc__row *row);
int jc__cache_put_row(jc_cache *cache, const jc__row *row);
int jc__cache_delete(jc_cache *cache, const uint8_t key[JC__KEY_LEN]);
int jc__cache_delete_rowid(jc_cache *cache, int64_t rowid);
int jc__cache_pager_new(jc_cache *cache, const jc__select *q, jc__pager **out);
int jc__cache_pager_next(jc__pager *p, const int64_t **rowids, size_t *n);
void jc__cache_pager_free(jc__pager *p);
int jc__cache_max_rowid(jc_cache *cache, int64_t *out);
int jc__cache_remove(jc_cache *cache, const jc__select *q, int64_t *count, int64_t *bytes);
int jc__cache_remove_stale(jc_cache *cache, int64_t *count, int64_t *bytes);
int jc__cache_remove_lru(jc_cache *cache, int64_t keep_entries, int64_t keep_bytes, int64_t *count,
                         int64_t *bytes);
int jc__cache_evict(jc_cache *cache, int64_t target, int64_t *count, int64_t *bytes);
int jc__cache_clamp_future(jc_cache *cache, int64_t *count);
int jc__cache_groups(jc_cache *cache, int (*fn)(void *ctx, const jc__group *g), void *ctx);
int jc__cache_facts(jc_cache *cache, jc__store_facts *out);
/* The recorded parameter names of function and version ("beta,seed"):
 * 1 and *names (malloc'd), or 0 and NULL. */
int jc__cache_params(jc_cache *cache, const char *function, const char *version, char **names);
/* Records them, in the write transaction the caller holds (merge). */
int jc__cache_params_put(jc_cache *cache, const char *function, const char *version, const char *names);
int jc__cache_integrity(jc_cache *cache, void (*fn)(void *ctx, const char *problem), void *ctx);
int jc__cache_vacuum_store(jc_cache *cache);
int jc__cache_backup_store(jc_cache *cache, const char *dest);

/* ---- the record of runs ---- */

/* Appends r (host, pid and command filled in here) in a transaction of
 * its own; nothing on a read-only cache, an older schema, or log-runs 0. */
int jc__cache_record_run(jc_cache *cache, jc__run_row *r);
/* Counts one jc_memo call of this handle's session (a hit when cached;
 * message names a failure). */
void jc__cache_memo_note(jc_cache *cache, jc_status status, bool cached, double seconds, const char *message);
/* The setting log-runs: how many runs the record keeps. */
int64_t jc__cache_log_runs(jc_cache *cache);

#endif
