/*
 * cache.h: the cache layer as the run (run/) and inspection (inspect/) see
 * it: all of its functions, one file per feature in cache/.
 *
 * The cache handle is the one layer between runs and inspection above and
 * the store (store/, the only code that speaks SQL) below, as
 * SQLite's vdbe sees its B-trees only through btree.h: nothing above calls
 * a jc__store_* function or reads a field of jc_cache (tests/layering.sh
 * checks both). The store's plain data records (jc__row, jc__select,
 * jc__group, jc__pager) pass through as they are.
 *
 * Every function returns 0 or a negative jc_error with the thread's message
 * set, as the store does. Writes are offered at the level of intent (a
 * piece of results, a sync of hits, a prune): the transaction protocol is
 * the cache layer's own.
 */
#ifndef JC_CACHE_H
#define JC_CACHE_H

#include "jc_internal.h"
#include "store/store.h"

/* ---- looking up and storing results (cache/lookup.c, hits.c, size.c) ---- */
/* The hits queued and not yet written, and the compute seconds they saved. */
void jc__cache_pending_hits(jc_cache *cache, int64_t *hits, double *saved);
/* Commits the store's transaction; on failure rolls back what SQLite left
 * open, keeping the commit's message. */
int jc__cache_commit(jc_cache *cache);
/* Writes the queued hits; call inside a write transaction or alone. They
 * stay queued until that transaction is known committed (written again if
 * it rolled back): jc__cache_settle_touches, which the queue's readers
 * call, drops those committed. */
int jc__cache_flush_touches(jc_cache *cache);
void jc__cache_settle_touches(jc_cache *cache);
/* Drops the queued hits written in write transaction txn, just committed. */
void jc__cache_touches_committed(jc_cache *cache, uint64_t txn);

/* What a lookup found: the decoded result (owned by whoever receives it),
 * its compute time, and the fingerprint of the code that computed it. */
typedef struct jc__found {
    jc_value *value;
    double seconds;
    double created; /* when the entry was stored */
    bool has_code_fp;
    uint8_t code_fp[16];
    /* The checksum of the result (XXH3-128 of its exact encoding): what a
     * reference to it enters keys as (pipelines). */
    bool has_check;
    uint8_t check[16];
} jc__found;
/* Queues a hit on the entry found as f under key for the next flush (no-op
 * when read-only); f's compute seconds count in jc_cache_stats until then.
 * The flush appends it to the hit log (store.h). */
void jc__cache_touch(jc_cache *cache, const jc__found *f, const uint8_t key[JC__KEY_LEN]);
/* jc__cache_touch with the time of the hit given (unix seconds; 0: read
 * the clock): a run's lookup pass reads it once for all its hits. */
void jc__cache_touch_at(jc_cache *cache, const jc__found *f, const uint8_t key[JC__KEY_LEN], double now);
/* Makes room in the queue for more hits (a lookup pass of that many keys),
 * so that it is not grown and copied as they come. Best effort: out of
 * memory, the queue grows as before. */
void jc__cache_touch_reserve(jc_cache *cache, size_t more);
/* Looks key up; on a hit fills *found and returns 1 (the hit is not yet
 * recorded: the caller decides to serve it, then calls jc__cache_touch).
 * Returns 0 on a miss, and also on an entry whose result fails its
 * checksum or does not decode (it is then recomputed and overwritten).
 * Negative on a store error. */
int jc__cache_lookup(jc_cache *cache, const uint8_t key[JC__KEY_LEN], jc__found *found);
/* Decodes a stored result (bytes as its row holds them; a result in pieces
 * has its parts read from store under key, in the caller's snapshot).
 * check, when not NULL, is its stored checksum: 0 and *out when the result
 * matches it and decodes, 1 when it does not match, 2 when it does not
 * decode (jc_errmsg says why), or a negative code (out of memory, a store
 * error). */
int jc__cache_decode_stored(jc__store *store, const uint8_t key[JC__KEY_LEN], const void *result, size_t len,
                            const uint8_t *check, jc_value **out);
/* Looks up n distinct keys at once; found(ctx, i, f) is called for each
 * keys[i] that hits, and then owns f->value. Damaged entries are misses.
 * Hits are not recorded: the callee calls jc__cache_touch for those served,
 * after the lookups (the store is not to be called from inside them). */
typedef void (*jc__cache_found_fn)(void *ctx, size_t i, jc__found *f);
int jc__cache_lookup_many(jc_cache *cache, const uint8_t *const *keys, size_t n, jc__cache_found_fn found,
                          void *ctx);
/* The same without reading the results: f->value is NULL, f->check the
 * stored checksum (an entry without one is not reported: a miss). For a
 * pipeline's inputs whose values are not needed. */
int jc__cache_lookup_checks(jc_cache *cache, const uint8_t *const *keys, size_t n, jc__cache_found_fn found,
                            void *ctx);
/* Stores a computed result: encodes argv (and value, exactly, when blob is
 * NULL), with the fingerprint of fn's code. Must be inside a write
 * transaction of the store. Returns 0, or 1 when the entry is not stored
 * because a cache of max_size could not keep it even alone (warned about
 * once per function), or a negative code. */
int jc__cache_put(jc_cache *cache, const uint8_t key[JC__KEY_LEN], const jc_function *fn,
                  jc_value *const *argv, size_t argc, const jc_value *value, const void *blob,
                  size_t blob_len, double seconds, double now);
bool jc__cache_writable(const jc_cache *cache);
/* Keeps the file within max_size (a no-op without one): when the database
 * and -wal files take more, checkpoints, then evicts least recently used
 * entries down to 90% of it and gives their pages back. Constant time when
 * within. Not inside a transaction (a no-op there). 0 or a negative code. */
int jc__cache_enforce_size(jc_cache *cache);
/* A new epoch of eviction (a run): from here, evictions by max_size may
 * remove at most half of the entries found at the first of them. */
void jc__cache_evict_epoch(jc_cache *cache);
/* The smallest max_size a cache file can keep: what it takes empty (its
 * tables), plus a page; 0 when it cannot be read. */
int64_t jc__cache_size_floor(jc_cache *cache);
/* After entries were removed: truncates the -wal file if no other process
 * holds it, and when the files still take more than limit (> 0) in a file
 * without auto_vacuum, vacuums it once. */
void jc__cache_settle(jc_cache *cache, int64_t limit);
/* The code fingerprint stored with fn's entries: the fingerprint scheme
 * (JC__FINGERPRINT_SCHEME) in byte 0, then 15 bytes of the fingerprint of
 * fn's code (fingerprint.h). False when it cannot be taken (unknown). */
bool jc__cache_code_fp(const jc_function *fn, uint8_t out[16]);
/* Whether a hit was computed by other code than fn's: both fingerprints
 * known, of the same scheme, and different. */
bool jc__cache_code_changed(const jc_function *fn, const jc__found *f);

/* ---- leases (cache/leases.c) ---- */

/* This process's identity as a lease owner: "BOOT ID|PID NAMESPACE|PID|START
 * TIME"; owned by the library (per thread). */
const char *jc__cache_owner(void);
/* Whether the owner of a claim that expires at expires is alive at now: in
 * this boot and pid namespace, while its process (pid and start time)
 * lives; elsewhere, until its claim expires. */
bool jc__cache_owner_alive(const char *owner, double expires, double now);
/* Whether this cache takes leases (writable, schema 4 or later). */
bool jc__cache_leases_enabled(const jc_cache *cache);
/* Claims keys[0..n) for this process in one transaction, to expire in ttl
 * seconds unless renewed: theirs[i] is set for each key a live owner of
 * another process holds (wait for its result); the others are claimed.
 * Dead owners' claims are dropped on the way. On failure nothing is
 * claimed and theirs is all false: compute them all. */
int jc__cache_claim(jc_cache *cache, const uint8_t *const *keys, size_t n, double ttl, bool *theirs);
/* held_out[i]: keys[i] is still held by a live owner of another process. */
int jc__cache_still_held(jc_cache *cache, const uint8_t *const *keys, size_t n, bool *held_out);
/* Renews this process's claims (inside a write transaction). */
int jc__cache_lease_renew(jc_cache *cache, double ttl);
/* Releases this process's claims on keys[0..n) (JC__KEY_LEN bytes each;
 * sorted in place): their calls failed or their results could not be
 * stored, and a waiter computes them itself. Inside a write transaction. */
int jc__cache_lease_release(jc_cache *cache, uint8_t *keys, size_t n);
/* Releases every claim of this process, in a transaction of its own. */
int jc__cache_lease_end(jc_cache *cache);

/* Queues count hits of key that saved seconds in all (cache/hits.c). */
void jc__cache_touch_n(jc_cache *cache, const uint8_t key[JC__KEY_LEN], uint32_t count, double seconds);
/* Folds the hit log of every process into the entries' hit counts and
 * last-used times (store.h). Inside a write transaction. */
int jc__cache_fold_hits(jc_cache *cache);

/* ---- memo sessions (cache/session.c) ---- */

/* In a memo session: holds the snapshot for the next lookup (a new one when
 * none is held or it is older than the session's bound; the hits counted so
 * far are written then). */
void jc__cache_session_hold(jc_cache *cache);
/* At every call of a session: a snapshot older than the session's bound is
 * let go (and the hits counted so far written), whether the call then reads
 * it or is answered from memory. */
void jc__cache_session_tick(jc_cache *cache);
/* Lets the snapshot go (before a function runs: it may run for minutes). */
void jc__cache_session_release(jc_cache *cache);
/* The result the session keeps under key: 1 with found->value a copy the
 * caller owns (seconds set), counted as a hit; 0 when none. */
int jc__cache_session_recall(jc_cache *cache, const uint8_t key[JC__KEY_LEN], jc__found *found);
/* Keeps a copy of value under key, when the session's byte limit allows;
 * with hit, counts it as a hit then. Whether it was kept. */
bool jc__cache_session_keep(jc_cache *cache, const uint8_t key[JC__KEY_LEN], const jc_value *value, double seconds,
                            bool hit);
/* Whether jc_memo calls on the cache are in a memo session. */
bool jc__cache_in_session(const jc_cache *cache);

/* ---- the environment (cache/env.c) ---- */

/* Reads a boolean JOBCACHE_* variable: 0 when unset (or the cache ignores
 * the environment), 1 with *on set, or JC_EINVAL naming the variable and
 * its value. */
int jc__env_bool(const jc_cache *cache, const char *name, bool *on);
/* The variable's value, NULL when unset, empty, or ignored by cache. */
const char *jc__env(const jc_cache *cache, const char *name);

/* ---- writes at the level of intent (cache/write.c) ----
 *
 * Each is one write transaction of the store, begun, filled and committed
 * (or rolled back) here: nothing above composes a transaction by hand. */

/* A computed result to store: jc__cache_put's arguments. */
typedef struct jc__result_in {
    const uint8_t *key;
    const jc_function *fn;
    jc_value *const *argv;
    size_t argc;
    const jc_value *value; /* encoded exactly, unless blob holds the encoding already */
    const void *blob;
    size_t blob_len;
    double seconds;
} jc__result_in;

/* A piece of results, and what rides on its transaction. */
typedef struct jc__piece {
    size_t n;                                               /* results */
    void (*item)(void *ctx, size_t i, jc__result_in *out);  /* the i-th result */
    /* The i-th was not stored: rc 1, too large for max_size (warned about
     * once per function); negative, a reason of its own (message set). */
    void (*unstored)(void *ctx, size_t i, int rc);
    void *ctx;
    bool touches;      /* write the queued hits too */
    bool leases;       /* with touches: renew this process's claims to lease_ttl */
    double lease_ttl;  /* seconds */
    uint8_t *release;  /* ... and release these claims (JC__KEY_LEN bytes each; sorted in place) */
    size_t *nrelease;  /* how many; set to 0 once released (before any result is stored) */
    bool leases_done;  /* out: the claims were renewed and released */
} jc__piece;
/* Stores a piece of results in one write transaction. Returns 0 when it
 * committed (each result stored, or reported through unstored), JC_EFULL
 * when the disk was full (everything rolled back: store smaller pieces), or
 * another negative code when it could not begin or commit (nothing
 * stored: try again later). */
int jc__cache_store_piece(jc_cache *cache, jc__piece *p);
/* Stores one memoized result with the queued hits, then keeps max_size: a
 * no-op on a read-only cache. A result that cannot be stored changes
 * nothing in the file. Returns jc__cache_put's code, or the begin's. */
int jc__cache_store_result(jc_cache *cache, const uint8_t key[JC__KEY_LEN], const jc_function *fn,
                           jc_value *const *argv, size_t argc, const jc_value *value, double seconds);
/* Renews this process's claims to ttl seconds and releases release[0..n)
 * (sorted in place), in a transaction of their own. 0 when the transaction
 * began (the release was attempted: bookkeeping, its failures are not
 * reported), else the begin's code (the file locked: try again later). */
int jc__cache_renew_leases(jc_cache *cache, uint8_t *release, size_t nrelease, double ttl);
/* The hit log not yet folded, by key (cache/hits.c): what a handle that
 * cannot fold (read-only) adds to the rows it reads, and what merge takes
 * along. *out is NULL when the log is empty. */
typedef struct jc__pending_map jc__pending_map;
int jc__cache_pending_map(jc_cache *cache, jc__pending_map **out);
/* Adds key's pending hits to *hits and its latest hit to *last_used (m may
 * be NULL). */
void jc__pending_apply(const jc__pending_map *m, const uint8_t key[JC__KEY_LEN], int64_t *hits, double *last_used);
/* Calls fn for each key of m with its hits; stops at its first nonzero. */
int jc__pending_each(const jc__pending_map *m, int (*fn)(void *ctx, const uint8_t key[JC__KEY_LEN], int64_t hits),
                     void *ctx);
void jc__pending_map_free(jc__pending_map *m);
/* Writes this handle's queued hits, in a transaction of their own (the hit
 * log is not folded): 0 at once when there are none, the cache is
 * read-only, or a transaction is open. */
int jc__cache_write_own_hits(jc_cache *cache);
/* Writes the queued hits, and folds the hit log of every process into the
 * entries, in a transaction of their own: 0 at once when there is nothing
 * to write, the cache is read-only, or a transaction is open. */
int jc__cache_sync_hits(jc_cache *cache);

/* ---- state of the handle ---- */

/* Hits queued and not yet written. */
size_t jc__cache_pending(jc_cache *cache);
/* Drops the queued hits (bookkeeping that gives way to results). */
void jc__cache_drop_pending(jc_cache *cache);
/* Entries whose result failed its checksum since the cache was opened. */
size_t jc__cache_damaged(const jc_cache *cache);
/* Marks the start of a run in this thread; JC_EBUSY when one runs already. */
int jc__cache_run_start(jc_cache *cache);
void jc__cache_run_end(jc_cache *cache);
/* Entries and payload bytes max_size evicted since jc__cache_run_start. */
void jc__cache_run_evicted(const jc_cache *cache, int64_t *entries, int64_t *bytes);
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
/* How long the handle waits for another process's lock
 * (jc_cache_options.busy_timeout_ms; 10000 by default): at a time, and a
 * run's storing of its results in all (run/commit.c). */
int jc__cache_busy_timeout_ms(const jc_cache *cache);
/* Whether a lock held by another process is waited for (the busy timeout)
 * or tried once: a run that has waited its busy timeout in all tries once
 * from then on, until it ends. */
void jc__cache_lock_wait(jc_cache *cache, bool wait);

/* ---- a change of the cache, for inspection (cache/hits.c) ---- */

/* Whether a write transaction is open (a dry run cannot nest in one). */
bool jc__cache_in_transaction(const jc_cache *cache);
/* Begins a write transaction and writes the queued hits in it: the one way
 * inspection starts a change it composes itself (verify's repair, merge's
 * batches); the tending operations below do it for themselves. */
int jc__cache_write_begin(jc_cache *cache);
/* Ends it: commits when rc is 0 and keep, else rolls back; returns rc, or
 * the commit's failure. */
int jc__cache_write_end(jc_cache *cache, int rc, bool keep);

/* ---- entries, for inspection (cache/entries.c; store.h says what each does) ---- */

int jc__cache_row(jc_cache *cache, int64_t rowid, bool blobs, jc__row *row);
/* A read snapshot around reading a row and its parts (a result in pieces),
 * when none is held: begin says whether it began one, for end. */
bool jc__cache_snapshot_begin(jc_cache *cache);
void jc__cache_snapshot_end(jc_cache *cache, bool began);
int jc__cache_row_by_key(jc_cache *cache, const uint8_t key[JC__KEY_LEN], bool blobs, jc__row *row);
int jc__cache_find_range(jc_cache *cache, const uint8_t lo[JC__KEY_LEN], const uint8_t hi[JC__KEY_LEN],
                         jc__row *row);
int jc__cache_put_row(jc_cache *cache, const jc__row *row);
/* The result of a row read with its blobs (jc__cache_decode_stored, the
 * parts of a result in pieces read from cache): 0 and *out, 1 when it does
 * not match check (NULL: not checked), 2 when it does not decode, or a
 * negative code. */
int jc__cache_row_result(jc_cache *cache, const jc__row *row, const uint8_t *check, jc_value **out);
/* Stores row (as jc__cache_put_row) with value as its result: split into
 * pieces when it holds a large part, with this cache's compression. For a
 * row of another file whose result is in pieces. */
int jc__cache_put_row_value(jc_cache *cache, const jc__row *row, const jc_value *value);
int jc__cache_delete_rowid(jc_cache *cache, int64_t rowid);
int jc__cache_pager_new(jc_cache *cache, const jc__select *q, jc__pager **out);
int jc__cache_pager_next(jc__pager *p, const int64_t **rowids, size_t *n);
void jc__cache_pager_free(jc__pager *p);
int jc__cache_max_rowid(jc_cache *cache, int64_t *out);
int jc__cache_groups(jc_cache *cache, int (*fn)(void *ctx, const jc__group *g), void *ctx);
int jc__cache_facts(jc_cache *cache, jc__store_facts *out);
/* A number that changes whenever another process commits to the file
 * (SQLite's data_version); -1 when it cannot be read (then assume it did). */
int64_t jc__cache_data_version(jc_cache *cache);
/* Whether lookups report when each entry was stored (jc__found.created; 0
 * otherwise): for runs that expire entries. */
bool jc__cache_want_created(jc_cache *cache, bool want); /* returns the previous setting */
size_t jc__cache_wal_readers(jc_cache *cache, long *pids, size_t cap);
/* The recorded parameter names of function and version ("beta,seed"):
 * 1 and *names (malloc'd), or 0 and NULL. */
int jc__cache_params(jc_cache *cache, const char *function, const char *version, char **names);
int jc__cache_integrity(jc_cache *cache, void (*fn)(void *ctx, const char *problem), void *ctx);

/* ---- tending at the level of intent (cache/tend.c) ----
 *
 * Each is one change of the cache: the queued hits written first, then
 * committed, or rolled back for a dry run or a failure. count and bytes
 * (may be NULL where the store allows) get what was removed. */

/* Removes the entries q selects. */
int jc__cache_remove_selected(jc_cache *cache, const jc__select *q, bool dry_run, int64_t *count, int64_t *bytes);
/* Applies o's rules in their documented order (jobcache.h, jc_cache_prune). */
int jc__cache_prune(jc_cache *cache, const jc_prune_options *o, bool dry_run, int64_t *count, int64_t *bytes);
/* Removes the entry under key: 1 removed, 0 absent, or a negative code. */
int jc__cache_remove_entry(jc_cache *cache, const uint8_t key[JC__KEY_LEN]);
/* Records names as the parameter names of function and version (merge:
 * another cache's, for a function this one has none for). */
int jc__cache_params_adopt(jc_cache *cache, const char *function, const char *version, const char *names);
/* The queued hits written (so that they are zeroed too), then every
 * entry's hit count set to 0; *count gets how many had hits. */
int jc__cache_zero_hits(jc_cache *cache, int64_t *count);
/* Pipelines (jc__store_by_check, jc__store_users); and removing keys in
 * one transaction (*removed gets how many were there). */
int jc__cache_by_result(jc_cache *cache, const uint8_t check[16], uint8_t key[JC__KEY_LEN]);
int jc__cache_users(jc_cache *cache, const uint8_t check[16], jc__user_fn fn, void *ctx);
int jc__cache_remove_keys(jc_cache *cache, const uint8_t *keys, size_t n, int64_t *removed);
/* The queued hits written, then the file vacuumed (the store's VACUUM). */
int jc__cache_vacuum(jc_cache *cache);
/* The queued hits written, then an online backup of the file to dest (the
 * store's: never replacing dest). */
int jc__cache_backup(jc_cache *cache, const char *dest);
/* Whether the cache lives on a server (the PostgreSQL store) rather than in
 * a file; and what its store measures for max_size (store.h,
 * jc__store_disk_bytes). */
bool jc__cache_on_server(const jc_cache *cache);
bool jc__cache_location_on_server(const char *location);
int64_t jc__cache_disk_bytes(jc_cache *cache);

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
