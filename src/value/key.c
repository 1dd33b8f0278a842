/*
 * key: what identifies a call in the cache.
 *
 *     key = XXH3-128( msgpack [ 1, function name, function version, ARGS ] )
 *
 * where 1 is the key format version and ARGS the canonical encoding of the
 * call's arguments (codec.c). The 128-bit hash is stored in XXH3's canonical
 * big-endian byte order, so the 16 bytes are the same on every machine.
 *
 * The encoding is streamed into the hash through a small buffer: a tiny call
 * is hashed in one XXH3_128bits() call with no allocation, and a large array
 * argument goes to XXH3 straight from its memory, never copied.
 */
#include <string.h>

#include <msgpack.h>
#include <xxhash.h>

#include "jc_internal.h"

enum { HASH_BUF = 1024 };

typedef struct hasher {
    XXH3_state_t *state; /* only once the input outgrows buf */
    size_t n;
    bool oom;
    char buf[HASH_BUF];
} hasher;

static int hasher_write(void *ctx, const char *p, size_t len)
{
    hasher *h = ctx;
    if (h->n + len <= HASH_BUF) {
        memcpy(h->buf + h->n, p, len);
        h->n += len;
        return 0;
    }
    if (!h->state) {
        h->state = XXH3_createState();
        if (!h->state) {
            h->oom = true;
            return -1;
        }
        XXH3_128bits_reset(h->state);
    }
    XXH3_128bits_update(h->state, h->buf, h->n);
    h->n = 0;
    if (len >= HASH_BUF) {
        XXH3_128bits_update(h->state, p, len);
    } else {
        memcpy(h->buf, p, len);
        h->n = len;
    }
    return 0;
}

static void hasher_digest(hasher *h, uint8_t key[JC__KEY_LEN])
{
    XXH128_hash_t hash;
    if (h->state) {
        XXH3_128bits_update(h->state, h->buf, h->n);
        hash = XXH3_128bits_digest(h->state);
        XXH3_freeState(h->state);
        h->state = NULL;
    } else {
        /* One-shot and streaming XXH3 give the same hash for the same bytes. */
        hash = XXH3_128bits(h->buf, h->n);
    }
    XXH128_canonical_t canon;
    XXH128_canonicalFromHash(&canon, hash);
    memcpy(key, canon.digest, JC__KEY_LEN);
}

static void pack_header(hasher *h, const char *name, size_t nl, const char *version, size_t vl)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, h, hasher_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_int(&pk, JC_KEY_FORMAT_VERSION);
    msgpack_pack_str(&pk, nl);
    msgpack_pack_str_body(&pk, name, nl);
    msgpack_pack_str(&pk, vl);
    msgpack_pack_str_body(&pk, version, vl);
}

/* The header of the last function keyed in this thread, by content: a
 * sweep keys thousands of calls of one function, and packing its name and
 * version costs more than comparing them. Strings that cannot change under
 * the same pointers while `stable` is the same (a registered function's,
 * within one generation of the registry) are not even compared again. */
enum { HEADER_CACHE = 160 };
static _Thread_local struct {
    size_t nl, vl, len;
    const char *name_at, *version_at;
    unsigned long stable;
    char name[HEADER_CACHE], version[HEADER_CACHE];
    char bytes[HEADER_CACHE * 2 + 16];
} last_header;

static void write_header(hasher *h, const char *name, const char *version, unsigned long stable)
{
    if (stable && stable == last_header.stable && name == last_header.name_at &&
        version == last_header.version_at && last_header.len) {
        hasher_write(h, last_header.bytes, last_header.len);
        return;
    }
    size_t nl = strlen(name), vl = strlen(version);
    if (nl == last_header.nl && vl == last_header.vl && last_header.len && memcmp(name, last_header.name, nl) == 0 &&
        memcmp(version, last_header.version, vl) == 0) {
        last_header.name_at = name;
        last_header.version_at = version;
        last_header.stable = stable;
        hasher_write(h, last_header.bytes, last_header.len);
        return;
    }
    size_t from = h->n;
    bool fits = from == 0 && nl <= HEADER_CACHE && vl <= HEADER_CACHE; /* the header is the first input */
    pack_header(h, name, nl, version, vl);
    if (fits && !h->state && h->n <= sizeof last_header.bytes) {
        memcpy(last_header.bytes, h->buf, h->n);
        memcpy(last_header.name, name, nl);
        memcpy(last_header.version, version, vl);
        last_header.nl = nl;
        last_header.vl = vl;
        last_header.len = h->n;
        last_header.name_at = name;
        last_header.version_at = version;
        last_header.stable = stable;
    }
}

int jc__key_compute(const char *name, const char *version, jc_value *const *argv, size_t argc,
                    uint8_t key[JC__KEY_LEN])
{
    return jc__key_compute_left_out(name, version, argv, argc, NULL, key);
}

int jc__key_compute_left_out(const char *name, const char *version, jc_value *const *argv, size_t argc,
                             const bool *left_out, uint8_t key[JC__KEY_LEN])
{
    return jc__key_compute_stable(name, version, 0, argv, argc, left_out, key);
}

int jc__key_compute_stable(const char *name, const char *version, unsigned long stable, jc_value *const *argv,
                           size_t argc, const bool *left_out, uint8_t key[JC__KEY_LEN])
{
    hasher h;
    h.state = NULL;
    h.n = 0;
    h.oom = false;
    write_header(&h, name, version, stable);
    unsigned char scalars[3 + 9 * 15];
    size_t ns = jc__encode_args_scalars(argv, argc, left_out, scalars, sizeof scalars);
    int rc = 0;
    if (ns)
        hasher_write(&h, (const char *)scalars, ns); /* a failure is h.oom, reported below */
    else
        rc = jc__encode_args_left_out(argv, argc, left_out, hasher_write, &h);
    if (!rc && h.oom)
        rc = jc__set_error(JC_ENOMEM, "out of memory hashing a call of %s", name);
    if (rc) {
        XXH3_freeState(h.state);
        return rc;
    }
    hasher_digest(&h, key);
    return 0;
}

int jc__key_from_blob(const char *name, const char *version, const void *args, size_t len,
                      uint8_t key[JC__KEY_LEN])
{
    hasher h;
    h.state = NULL;
    h.n = 0;
    h.oom = false;
    write_header(&h, name, version, 0);
    hasher_write(&h, args, len);
    if (h.oom) {
        XXH3_freeState(h.state);
        return jc__set_error(JC_ENOMEM, "out of memory hashing an entry of %s", name);
    }
    hasher_digest(&h, key);
    return 0;
}

void jc__key_hex(const uint8_t key[JC__KEY_LEN], char out[2 * JC__KEY_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < JC__KEY_LEN; i++) {
        out[2 * i] = hex[key[i] >> 4];
        out[2 * i + 1] = hex[key[i] & 15];
    }
    out[2 * JC__KEY_LEN] = '\0';
}

int jc_call_key(const char *function, const char *version, jc_value *const *args, size_t nargs,
                uint8_t key[JC_KEY_SIZE])
{
    if (!function || !version || !key || (!args && nargs))
        return jc__set_error(JC_EINVAL, "jc_call_key: NULL %s", !function ? "function" : !version ? "version"
                                                                 : !key     ? "key"
                                                                            : "args");
    for (size_t i = 0; i < nargs; i++)
        if (!args[i])
            return jc__set_error(JC_EINVAL, "jc_call_key: argument %zu is NULL", i);
    return jc__key_compute(function, version, args, nargs, key);
}
