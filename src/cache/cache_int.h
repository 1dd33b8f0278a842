/*
 * cache_int.h: the cache handle's fields and what the files of the cache
 * layer share; only they include it (tests/layering.sh checks), as SQLite's
 * btreeInt.h keeps the Btree opaque to the VDBE. The layer's face is
 * cache/cache.h.
 */
#ifndef JC_CACHE_INT_H
#define JC_CACHE_INT_H

#include <pthread.h>

#include "cache/cache.h"

/* A result kept by a memo session (session.c), under its key. */
typedef struct jc__mslot {
    uint8_t key[JC__KEY_LEN];
    jc_value *value; /* NULL: an empty slot */
    double seconds;
    int64_t hits; /* answered from memory since the hits were last written */
} jc__mslot;

struct jc_cache {
    jc__store *store; /* NULL when disabled */
    char *path;
    unsigned flags;   /* jc_cache_flags */
    int64_t max_size;
    int busy_timeout_ms; /* how long to wait for another process's lock, at a time and in all */
    /* Where max_size comes from: "environment", "program", "file" or
     * "default" (jc_cache_config_list). */
    const char *max_size_source;
    /* zstd's level for the parts of large results (0: none), and where it
     * comes from, as max_size's. */
    int compress_level;
    const char *compress_source;
    /* Hits are recorded (hits += 1, last_used = now) lazily: a hit costs a
     * lookup only, and the counts go to the file with the next write
     * transaction, or at close. */
    /* jc_run in progress, and its thread: jc_memo from another thread (a
     * function under the threads backend) is refused rather than racing on
     * the one SQLite connection. */
    bool running;
    /* This run claimed already (cache/leases.c): its later claims (a
     * pipeline's calls as they become ready, calls taken over) add to its
     * claims; only the first drops rows an earlier run left. */
    bool claimed;
    pthread_t run_thread;
    jc_fn memo_fn; /* the function of the last jc_memo, and its descriptor */
    const jc_function *memo_desc;
    unsigned long memo_gen;
    /* Hits not yet written: records of the hit log (JC__HIT_RECORD bytes
     * each: the key, then the count as 4 bytes little-endian, store.h),
     * the sum of their counts and of the compute seconds they saved, and
     * the time of the latest. Written as one row of the hit log, sorted
     * and merged in place. */
    uint8_t *touched;
    double touched_last, touched_saved;
    uint64_t touched_hits;
    size_t ntouched, touched_cap;
    /* The first touch_flushed queued hits are written in write transaction
     * touch_txn (jc__store_txn_id), not yet known committed: dropped from
     * the queue once it has committed, written again if it rolled back
     * (issue 23: hits written in a transaction that a busy or failed store
     * rolled back were lost, counts short by up to 21% under 8 processes). */
    size_t touch_flushed;
    uint64_t touch_txn;
    uint64_t flushed_hits; /* ... and their counts and seconds saved */
    double flushed_saved;
    size_t touch_flush_at; /* write the queued hits when this many; 0 = 4096 */
    /* Entries whose result failed its checksum since the cache was opened
     * (each then a miss, recomputed and overwritten). */
    size_t damaged;
    /* This handle's session of jc_memo calls, recorded at close as one
     * run of kind "memo" (the record of runs). */
    struct {
        size_t calls, cached, computed, failed;
        double started, saved;
        char **failures; /* "status\tmessage", at most 100 */
        size_t nfailures, capfailures;
    } memo;
    /* Functions jc_memo has warned about (jc_on_code_change): once each. */
    const jc_function **warned;
    size_t nwarned, capwarned;
    /* Functions warned about for a result too large for max_size: once
     * each. And the bytes an empty cache takes, plus a page (0 = not read
     * yet). */
    const jc_function **too_large;
    size_t ntoo_large, captoo_large;
    int64_t empty_bytes;
    /* Eviction by max_size (issue 23): entries and payload bytes this
     * handle evicted since it was opened; and the epoch: from when the file
     * was found over max_size until it is within again, within a run, or
     * within the handle's open and its jc_memo calls. An epoch evicts at
     * most half of the entries it found when it first evicted (epoch_base;
     * -1: not counted yet), and says once when that bound left the cache
     * over. */
    int64_t evicted, evicted_bytes;
    int64_t epoch_base, epoch_evicted;
    bool epoch_told;
    /* evicted when the current run started, and the sum over runs ended:
     * the rest belongs to the session of jc_memo calls. */
    int64_t run_evicted0, run_evicted0_bytes, runs_evicted, runs_evicted_bytes;
    /* The memo session (session.c): the snapshot's age bound and when it
     * was taken (monotonic seconds; -1 before the first call), and the
     * results kept in memory by key, an open-addressing table of cap
     * slots (a power of two, at most half full), bytes of max_bytes. */
    struct {
        bool active;
        double max_age, snapshot_at;
        jc__mslot *slots;
        size_t cap, n, bytes, max_bytes;
        int64_t hits;      /* answered from memory, not written yet (in the slots' counts) */
        double hits_saved; /* their compute seconds */
    } session;
};

/*
 * cache: the cache handle that a program opens, over the store.
 *
 * It chooses the file (argument, $JOBCACHE_PATH, ./jobcache.db), applies the
 * modes (recompute, read-only, disabled), turns stored blobs into values and
 * back, and defers hit bookkeeping so that a hit costs one lookup.
 *
 * A hit is served only when its result's bytes match the checksum stored
 * with them (XXH3-128, as ccache checks a result on read): a mismatch is a
 * miss, recomputed and overwritten, and counted in cache->damaged. Results
 * are encoded exactly (jc__encode_result), never canonicalised.
 */

/* Shared between the files of this folder (each defined in one of them). */
int jc__c_options_from_env(jc_cache_options *o, const char **max_size_source);
/* The level a compress setting names ("auto" 1, "off" 0, "1" to "19"), or
 * -1 when it names none. */
int jc__c_compress_level(const char *text);
void jc__c_record_memo_session(jc_cache *cache);

#endif
