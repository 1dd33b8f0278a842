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
#include "util/buf.h"

#define JC__KEY_LEN 16

/* ---- errors (error.c) ---- */

/* Sets the calling thread's error code and message; returns code, so that
 * `return jc__set_error(JC_EINVAL, "...")` reads naturally. */
int jc__set_error(int code, const char *fmt, ...) JC__PRINTF(2, 3);
int jc__set_errorv(int code, const char *fmt, va_list ap);

/* For a call handed a NULL handle (api, such as "jc_run", and handle,
 * "batch"): keeps the message of the failure that left it NULL (a
 * jc_cache_open, a jc_batch_new) and its code, rather than replacing them
 * with "the batch is NULL"; JC_EINVAL with that alone when no failure came
 * before. A chain of such calls keeps the first failure's message. */
int jc__set_error_null(const char *api, const char *handle);

/* malloc'd printf; NULL when out of memory. */
char *jc__strdup_printf(const char *fmt, ...) JC__PRINTF(1, 2);
char *jc__strdup(const char *s);

/* ---- values (value.c) ---- */

/* The C locale for numbers: util/locale.h. */
#include "util/locale.h"

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
        /* JC_TYPE_REF: the serial of the batch (0 for a decoded stored
         * argument) and the submission index of the call referred to; the
         * result it stands for once known (not owned), read through
         * jc__deref. Its key payload (JC__REF_PAYLOAD_LEN bytes, in digest)
         * is set once the result's digest is known. */
        struct {
            uint64_t batch;
            size_t index;
            const jc_value *target;
        } ref;
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
/* A str or bytes value (type) owning s, malloc'd with room for len + 1
 * bytes (the NUL is written here); s is freed on failure. */
jc_value *jc__blob_take(int type, char *s, size_t len);
/* Inserts key -> v into a map, taking both over (freed on failure); a key
 * already present is JC_EINVAL. v may come out of a container being taken
 * apart (its parent link is dropped). */
int jc__map_insert(jc_value *map, char *key, jc_value *v);
/* The regions of 2 MiB that value nodes are carved from (value.c), not yet
 * given back, in the whole process; SIZE_MAX in a build whose nodes all
 * come from malloc (AddressSanitizer). For tests. */
size_t jc__value_regions(void);

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
 * see docs/format.md. */
#define JC__DIGEST_MIN 65536
/* The 25-byte digest payload of a typed array or bytes value (kind, length,
 * XXH3-128 of its canonical payload), as a large argument is keyed and
 * stored; computed once and kept in the value. 0 or JC_ENOMEM. */
int jc__value_digest(const jc_value *v, unsigned char payload[25]);
/* A JC_TYPE_DIGEST value from the 25-byte ext 3 payload (copied). */
jc_value *jc__digest_value(const unsigned char payload[25]);
/* A file argument's ext 4 payload: kind version (1), kind (1 file, 2
 * directory), XXH3-128 of the content (canonical). docs/format.md. */
#define JC__FILE_DIGEST_LEN 18
/* A JC_TYPE_FILE value: path (copied; NULL for a decoded stored argument)
 * and its payload. */
jc_value *jc__file_value(const char *path, const unsigned char payload[JC__FILE_DIGEST_LEN]);
/* A JC_TYPE_LEFT_OUT value (a decoded stored argument left out of the key). */
jc_value *jc__left_out_value(void);
/* A reference's ext 6 payload: kind version (1), then the XXH3-128 digest
 * of the result referred to (its entry's checksum, canonical form). */
#define JC__REF_PAYLOAD_LEN 17
/* A JC_TYPE_REF value: of call index of batch serial batch (jc_use), or,
 * with payload, a decoded stored reference (batch 0). */
jc_value *jc__ref_value(uint64_t batch, size_t index, const unsigned char payload[JC__REF_PAYLOAD_LEN]);
/* Sets ref's digest (the result's checksum) and what it stands for: its key
 * payload from then on. 0 or JC_ENOMEM. */
int jc__ref_resolve(jc_value *ref, const uint8_t check[16], const jc_value *target);
/* Calls fn(ref, ctx) on each reference in v (in lists, maps and keyword
 * arguments), depth first, in the order of the arguments; stops at and
 * returns the first nonzero it returns, else 0. */
int jc__value_each_ref(jc_value *v, int (*fn)(jc_value *ref, void *ctx), void *ctx);
/* What v stands for: the result a resolved reference refers to, else v. */
static inline const jc_value *jc__deref(const jc_value *v)
{
    return v && v->type == JC_TYPE_REF && v->u.ref.target ? v->u.ref.target : v;
}
/* How many times jc_file read a file's bytes in this process (tests). */
unsigned long jc__file_reads(void);

/* Maximum nesting of lists and maps in a value (msgpack-c's unpacker stack
 * is 32 deep; the argument wrappers take two levels). */
#define JC__MAX_DEPTH 24
#define JC__STR_(x) #x
#define JC__STR(x) JC__STR_(x)

/* ---- codec (codec.c) ---- */

/* The byte buffer the encoders write to: util/buf.h. */
#include "util/buf.h"

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

/* ---- results in pieces (docs/format.md, "Large results") ---- */

/* A string, bytes or typed array of a result with at least this many bytes
 * is stored as a part of its own, in chunks, not inside the result's row. */
#define JC__PIECE_MIN 65536
/* One part: len bytes at data (memory of the value split, not owned). */
typedef struct jc__part {
    const void *data;
    size_t len;
} jc__part;
/* A result as the store keeps it: stored holds the exact encoding when
 * npieces is 0, else the ext 7 skeleton whose ext 8 references name
 * pieces[0 .. npieces-1] in order; check is the XXH3-128 (canonical bytes)
 * of the exact encoding either way, what jc__result_check gives for it. */
typedef struct jc__split {
    jc__buf stored;
    jc__part *pieces;
    size_t npieces;
    uint8_t check[16];
} jc__split;
/* Whether v holds a part to store apart (a string, bytes or typed array of
 * JC__PIECE_MIN bytes or more, at any depth): what makes it worth splitting. */
bool jc__value_has_part(const jc_value *v);
/* Splits v (which must outlive out, whose pieces point into it). 0, or a
 * negative code with the message set; out is then empty. */
int jc__encode_result_split(const jc_value *v, jc__split *out);
void jc__split_free(jc__split *s);
/* Whether stored bytes are a result in pieces (an ext 7 skeleton). */
bool jc__result_in_pieces(const void *buf, size_t len);
/* Fills dst with the len bytes of part number part; 0 or a negative code
 * with the message set (a part missing, damaged or of another length,
 * JC_EDECODE). Called first with dst NULL: 0 when the part can be read
 * with that length, before its memory is taken. */
typedef int (*jc__part_fn)(void *ctx, uint32_t part, void *dst, size_t len);
/* Decodes a result in pieces: its skeleton, each part read by read into
 * the memory of its value (a typed array's final buffer), and check set to
 * the XXH3-128 of the exact encoding, for the caller to compare with the
 * stored checksum before serving *out. */
int jc__decode_result_pieces(const void *buf, size_t len, jc__part_fn read, void *ctx, uint8_t check[16],
                             jc_value **out);
/* Canonical encoding of call arguments: [ [positional...], {named...} ].
 * argv holds positional values and KWARG values in any order; named ones are
 * emitted sorted by name. */
int jc__encode_args(jc_value *const *argv, size_t argc, jc__write_fn w, void *ctx);
/* The same with the arguments left_out[i] marks (may be NULL: none) as the
 * left-out placeholder (ext 5) instead of their values: what the key and
 * the stored arguments of a function with JC_LEAVE_OUT hold. */
int jc__encode_args_left_out(jc_value *const *argv, size_t argc, const bool *left_out, jc__write_fn w, void *ctx);
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

/* The key encoding of arguments that are all ints and doubles, positional,
 * none left out (most calls of a sweep), written straight into out: the
 * same bytes jc__encode_args_left_out writes through msgpack-c, at a
 * fraction of the cost. Returns the bytes written, or 0 when the arguments
 * are of another shape (then use jc__encode_args_left_out) or cap is too
 * small (3 + 9 * argc bytes always suffice). */
size_t jc__encode_args_scalars(jc_value *const *argv, size_t argc, const bool *left_out, unsigned char *out,
                               size_t cap);

/* A result that is one null, bool, int or double, as jc__encode_result
 * writes it (msgpack-c's shortest form; a double's bits as they are),
 * written straight into out. Returns the bytes written (1 to 9), or 0 for
 * a value of any other type (then use jc__encode_result). */
size_t jc__encode_result_scalar(const jc_value *v, unsigned char out[9]);

/* ---- key (key.c) ---- */

/* key = XXH3-128 of the msgpack array [1, name, version, ARGS], stored as the
 * 16-byte canonical (big-endian) form. */
int jc__key_compute(const char *name, const char *version, jc_value *const *argv, size_t argc,
                    uint8_t key[JC__KEY_LEN]);
/* The same with the arguments left_out marks (may be NULL) left out. */
int jc__key_compute_left_out(const char *name, const char *version, jc_value *const *argv, size_t argc,
                             const bool *left_out, uint8_t key[JC__KEY_LEN]);
/* The same for strings that stay as they are at the same addresses while
 * stable (not 0) is the same: a registered function's name and version,
 * stable = the registry's generation + 1 (their header is then not
 * compared again, call after call). */
int jc__key_compute_stable(const char *name, const char *version, unsigned long stable, jc_value *const *argv,
                           size_t argc, const bool *left_out, uint8_t key[JC__KEY_LEN]);
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
/* Marks in left_out[0..argc) the arguments of a call of desc that its
 * JC_LEAVE_OUT names (a positional one by its parameter's name, a named one
 * by its name); returns whether any is. */
bool jc__function_left_out(const jc_function *desc, jc_value *const *argv, size_t argc, bool *left_out);
/* The names desc leaves out (NULL-terminated, or NULL), *n of them. */
const char *const *jc__function_left_out_names(const jc_function *desc, size_t *n);

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

/* ---- the cache handle ----
 * struct jc_cache is the cache layer's own (cache/cache_int.h); the layer's
 * functions are in cache/cache.h. */

/* ---- clocks: util/clock.h ---- */

#include "util/clock.h"

/* ---- saturating sums ---- */

/* a + b for sums of figures read from a file (sizes, counts, hits): a
 * hostile file can hold INT64_MAX in any of them, so sums saturate
 * instead of overflowing. */
static inline int64_t jc__sum_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* ---- growing arrays: util/grow.h ---- */

#include "util/grow.h"

#endif
