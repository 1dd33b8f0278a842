/*
 * Internals shared between jobcache's source files. Nothing here is exported:
 * the library is built with -fvisibility=hidden and only JC_EXPORT names in
 * jobcache.h are visible.
 */
#ifndef JC_INTERNAL_H
#define JC_INTERNAL_H

#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobcache.h"

#define JC__KEY_LEN 16

/* ---- errors (error.c) ---- */

/* Sets the calling thread's error code and message; returns code, so that
 * `return jc__set_error(JC_EINVAL, "...")` reads naturally. */
int jc__set_error(int code, const char *fmt, ...) JC__PRINTF(2, 3);
int jc__set_errorv(int code, const char *fmt, va_list ap);

/* malloc'd printf; NULL when out of memory. */
char *jc__strdup_printf(const char *fmt, ...) JC__PRINTF(1, 2);
char *jc__strdup(const char *s);

/* ---- values (value.c) ---- */

/* The "C" locale, made once, for text with numbers that must not follow the
 * program's setlocale() (a decimal comma); (locale_t)0 if unavailable. Use
 * with uselocale(), which switches the calling thread only. */
locale_t jc__c_locale(void);

enum { JC__V_BORROWED = 1 }; /* array data points at the caller's memory */

struct jc_value {
    uint8_t type;  /* jc_type */
    uint8_t flags; /* JC__V_* */
    /* Levels of lists and maps in this value: 0 for a scalar, 1 for [1],
     * 2 for [[1]]; a jc_kw has its value's. Never above JC__MAX_DEPTH: the
     * builders refuse to go deeper, so every walk of a value (free, copy,
     * equal, format, encode) recurses a bounded number of times. */
    uint8_t height;
    /* The list, map or jc_kw that owns this value, NULL at the top. Lets a
     * value be added to a container that is itself inside another (heights
     * are kept up to date to the top) and refuses a value that is already
     * inside one (it would be freed twice) or would contain itself. */
    jc_value *parent;
    size_t len;    /* bytes of str/bytes, elements of arrays, items of list/map */
    size_t cap;    /* allocated items of list/map */
    union {
        bool b;
        int64_t i;
        double d;
        char *s;          /* str (NUL-terminated) and bytes */
        const void *arr;  /* doubles / ints */
        jc_value **items; /* list items; map values (parallel to keys) */
        struct {
            char *name;
            jc_value *val;
        } kw;
    } u;
    char **keys; /* map keys, sorted by strcmp, unique */
    unsigned char *digest; /* a large argument's ext 3 payload, once computed (codec.c) */
};

/* Appends item (taken over, freed on failure) to list without the checks of
 * jc_list_append: for the decoder, whose input is already bounded (the
 * [positional, named] wrapper of stored arguments is two levels above the
 * limit of a value), and for values taken out of a container being taken
 * apart (the parent link is dropped). */
int jc__list_push(jc_value *list, jc_value *item);
/* A str value of stored text, as it was stored (not checked for UTF-8: a
 * file made before the check keeps decoding). NUL bytes are refused. */
jc_value *jc__str_stored(const char *s, size_t len);
/* Inserts key -> v into a map, taking both over (freed on failure); a key
 * already present is JC_EINVAL. v may come out of a container being taken
 * apart (its parent link is dropped). */
int jc__map_insert(jc_value *map, char *key, jc_value *v);

/* Makes call arguments what their key is made from (docs/format.md): every
 * double, also in typed arrays and nested in lists, maps and named
 * arguments, becomes canonical (-0.0 -> +0.0, every NaN -> the quiet NaN
 * 0x7ff8000000000000). A borrowed array that needs a change is copied first
 * (the caller's memory is never written) and owned from then on; one that
 * needs none stays borrowed. Call it after the key is computed (the encoder
 * bounds the depth). 0, or JC_ENOMEM with the message set. */
int jc__args_canonicalize(jc_value *const *argv, size_t argc);

/* An argument whose payload is at least this many bytes (a typed array or
 * bytes) is encoded, for its key and in the stored arguments, as a digest:
 * see docs/format.md. Results are always stored whole. */
#define JC__DIGEST_MIN 65536
/* The 25-byte digest payload of a typed array or bytes value (kind, length,
 * XXH3-128 of its canonical payload), as a large argument is keyed and
 * stored; computed once and kept in the value. 0 or JC_ENOMEM. */
int jc__value_digest(const jc_value *v, unsigned char payload[25]);
/* A JC_TYPE_DIGEST value from the 25-byte ext 3 payload (copied). */
jc_value *jc__digest_value(const unsigned char payload[25]);

/* Maximum nesting of lists and maps in a value (msgpack-c's unpacker stack
 * is 32 deep; the argument wrappers take two levels). */
#define JC__MAX_DEPTH 24
#define JC__STR_(x) #x
#define JC__STR(x) JC__STR_(x)

/* ---- codec (codec.c) ---- */

/* A growable byte buffer. */
typedef struct jc__buf {
    char *data;
    size_t len, cap;
    bool oom; /* a write failed: the contents are incomplete */
} jc__buf;
int jc__buf_write(void *buf, const char *p, size_t n); /* msgpack write callback */
void jc__buf_free(jc__buf *b);

/* The write target of the encoder: any msgpack-style callback. */
typedef int (*jc__write_fn)(void *ctx, const char *p, size_t n);

/* Canonical encoding of one value. Returns 0 or a negative code with the
 * message set (JC_EINVAL for a KWARG outside a call, too deep, ...). */
int jc__encode_value(const jc_value *v, jc__write_fn w, void *ctx);
/* Exact encoding of a result: the layout of the canonical one, but doubles
 * (alone and in typed arrays) keep their bits, -0.0 and NaN payloads
 * included. Results are stored and carried between processes this way, so
 * that what is served is what the function returned. */
int jc__encode_result(const jc_value *v, jc__write_fn w, void *ctx);
/* Canonical encoding of call arguments: [ [positional...], {named...} ].
 * argv holds positional values and KWARG values in any order; named ones are
 * emitted sorted by name. */
int jc__encode_args(jc_value *const *argv, size_t argc, jc__write_fn w, void *ctx);
/* Asked, for each top-level argument of JC__DIGEST_MIN bytes or more, in
 * the order of the encoding (positional ones, then named ones by name),
 * with its 25-byte digest payload: true writes the digest instead of the
 * value (the receiver holds the value already). */
typedef bool (*jc__ref_fn)(void *ctx, const jc_value *v, const unsigned char digest[25]);
/* The same layout with every argument whole, large arrays included (no
 * digest): what a call needs to run elsewhere (the MPI backend sends it to
 * another rank). Canonical, so arguments made canonical at submission
 * travel bit for bit. With ref (may be NULL), a large top-level argument
 * goes as its digest where ref says so. */
int jc__encode_args_whole(jc_value *const *argv, size_t argc, jc__write_fn w, void *ctx, jc__ref_fn ref,
                          void *ref_ctx);
/* After a decoding failed with JC_EDECODE: why, in a few words
 * ("truncated", "nested too deep"), valid until the thread's next decoding. */
const char *jc__decode_reason(void);
/* Decodes exactly one value filling buf. */
int jc__decode_value(const void *buf, size_t len, jc_value **out);
/* Decodes an argument blob into positional values and KWARG values. */
int jc__decode_args(const void *buf, size_t len, jc_value ***argv, size_t *argc);

/* ---- key (key.c) ---- */

/* key = XXH3-128 of the msgpack array [1, name, version, ARGS], stored as the
 * 16-byte canonical (big-endian) form. */
int jc__key_compute(const char *name, const char *version, jc_value *const *argv, size_t argc,
                    uint8_t key[JC__KEY_LEN]);
/* The same from an already-encoded argument blob (for verify). */
int jc__key_from_blob(const char *name, const char *version, const void *args, size_t len,
                      uint8_t key[JC__KEY_LEN]);
/* 32 lowercase hex digits + NUL. */
void jc__key_hex(const uint8_t key[JC__KEY_LEN], char out[2 * JC__KEY_LEN + 1]);

/* ---- registry (registry.c) ---- */

/* The registered descriptor of fn; NULL with the message set (unregistered,
 * ambiguous name). */
const jc_function *jc__function_by_ptr(jc_fn fn);
/* Changes whenever a function is registered: a cached lookup is stale then
 * (a new registration can make a name ambiguous). */
unsigned long jc__registry_generation(void);
/* The parameter names of desc (JC_FUNCTION_PARAMS), *n of them, or NULL. */
const char *const *jc__function_params(const jc_function *desc, size_t *n);

/* ---- calls (call.c) ---- */

struct jc_call {
    const jc_function *fn;
    jc_value *const *argv; /* positional and KWARG values, as submitted */
    size_t argc;
    /* The positional values in order, so that jc_arg(i) is constant time:
     * argv itself when the positional ones come first (the usual call),
     * else an index made once per call. NULL (then jc_arg scans argv) only
     * when that index could not be allocated. */
    jc_value *const *pos;
    size_t npos;
    jc_value *result;
    char *error; /* malloc'd, set by jc_fail or a failing accessor */
    bool failed;
};

/* Runs fn on argv in this thread. On success *result gets the value (owned),
 * on failure *error a malloc'd message "name(args): what". Returns
 * JC_STATUS_OK or JC_STATUS_ERROR. seconds gets the wall time. */
jc_status jc__call_invoke(const jc_function *fn, jc_value *const *argv, size_t argc,
                          jc_value **result, char **error, double *seconds);
/* "simulate(0.5, 3, steps=1000)", abbreviated; malloc'd (NULL on OOM).
 * Positional arguments are named by params (n_params of them; may be NULL):
 * "sir(beta=0.3, seed=7)". */
char *jc__call_describe(const char *name, const char *const *params, size_t n_params,
                        jc_value *const *argv, size_t argc);
/* The same for a registered function, named by its parameters. */
char *jc__call_describe_fn(const jc_function *fn, jc_value *const *argv, size_t argc);

/* ---- cache (cache.c) ---- */

typedef struct jc__store jc__store;

struct jc_cache {
    jc__store *store; /* NULL when disabled */
    char *path;
    unsigned flags;   /* jc_cache_flags */
    int64_t max_size;
    /* Where max_size comes from: "environment", "program", "file" or
     * "default" (jc_cache_config_list). */
    const char *max_size_source;
    /* Hits are recorded (hits += 1, last_used = now) lazily: a hit costs a
     * lookup only, and the counts go to the file with the next write
     * transaction, or at close. */
    /* jc_run in progress, and its thread: jc_memo from another thread (a
     * function under the threads backend) is refused rather than racing on
     * the one SQLite connection. */
    bool running;
    pthread_t run_thread;
    jc_fn memo_fn; /* the function of the last jc_memo, and its descriptor */
    const jc_function *memo_desc;
    unsigned long memo_gen;
    /* Hits not yet written: their keys (JC__KEY_LEN bytes each) and
     * compute seconds, and the time of the latest. */
    uint8_t *touched;
    int64_t *touched_rowids;
    double *touched_secs;
    double touched_last;
    /* The store's version when the first queued hit was looked up, and
     * whether every queued hit was looked up under that same version: then
     * their rowids still name their entries, and are recorded by rowid. */
    int64_t touch_ver_data;
    uint64_t touch_ver_deletes;
    bool touch_ver_ok;
    size_t ntouched, touched_cap;
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
        size_t nfailures;
    } memo;
    /* Functions jc_memo has warned about (jc_on_code_change): once each. */
    const jc_function **warned;
    size_t nwarned;
    /* Functions warned about for a result too large for max_size: once
     * each. And the bytes an empty cache takes, plus a page (0 = not read
     * yet). */
    const jc_function **too_large;
    size_t ntoo_large;
    int64_t empty_bytes;
};

/* The hits queued and not yet written, and the compute seconds they saved. */
void jc__cache_pending_hits(const jc_cache *cache, int64_t *hits, double *saved);
/* Commits the store's transaction; on failure rolls back what SQLite left
 * open, keeping the commit's message. */
int jc__cache_commit(jc_cache *cache);
/* Writes the queued hits; call inside a write transaction or alone. */
int jc__cache_flush_touches(jc_cache *cache);

/* What a lookup found: the decoded result (owned by whoever receives it),
 * its compute time, and the fingerprint of the code that computed it. */
typedef struct jc__found {
    jc_value *value;
    double seconds;
    bool has_code_fp;
    uint8_t code_fp[16];
    int64_t rowid;        /* where it was found, under the store version below */
    int64_t ver_data;
    uint64_t ver_deletes;
} jc__found;
/* Queues a hit on the entry found as f under key for the next flush (no-op
 * when read-only); f's compute seconds count in jc_cache_stats until then,
 * and its rowid and store version let the flush record it by rowid. */
void jc__cache_touch(jc_cache *cache, const jc__found *f, const uint8_t key[JC__KEY_LEN]);
/* Looks key up; on a hit fills *found and returns 1 (the hit is not yet
 * recorded: the caller decides to serve it, then calls jc__cache_touch).
 * Returns 0 on a miss, and also on an entry whose result fails its
 * checksum or does not decode (it is then recomputed and overwritten).
 * Negative on a store error. */
int jc__cache_lookup(jc_cache *cache, const uint8_t key[JC__KEY_LEN], jc__found *found);
/* Looks up n distinct keys at once; found(ctx, i, f) is called for each
 * keys[i] that hits, and then owns f->value. Damaged entries are misses.
 * Hits are not recorded: the callee calls jc__cache_touch for those served,
 * after the lookups (the store is not to be called from inside them). */
typedef void (*jc__cache_found_fn)(void *ctx, size_t i, jc__found *f);
int jc__cache_lookup_many(jc_cache *cache, const uint8_t *const *keys, size_t n, jc__cache_found_fn found,
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

/* ---- leases (cache.c) ---- */

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

/* ---- the environment (cache.c) ---- */

/* Reads a boolean JOBCACHE_* variable: 0 when unset (or the cache ignores
 * the environment), 1 with *on set, or JC_EINVAL naming the variable and
 * its value. */
int jc__env_bool(const jc_cache *cache, const char *name, bool *on);
/* The variable's value, NULL when unset, empty, or ignored by cache. */
const char *jc__env(const jc_cache *cache, const char *name);

/* Monotonic seconds. */
double jc__monotonic(void);

#endif
