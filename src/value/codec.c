/*
 * codec: the one canonical encoding of values, with msgpack-c
 * (docs/format.md is the specification; key format version 1).
 *
 * Canonical means the same value always gives the same bytes, on every
 * machine: ints in msgpack's shortest form, doubles always as float64 with
 * -0.0 written as 0.0 and every NaN as the one quiet NaN 0x7ff8000000000000,
 * map keys sorted by byte order, typed arrays as little-endian ext payloads.
 *
 * Canonical form is for keys and stored arguments. Results are encoded
 * exactly (MODE_EXACT): the same layout, but every double, alone or in a
 * typed array, keeps its own bits (-0.0, NaN payloads), so that a hit, and
 * a result carried from a worker, is bit for bit what the function returned.
 *
 * The encoder writes through a callback, so the same walk feeds a growable
 * buffer (the stored argument and result blobs) or a running XXH3 state (the
 * key), without building the whole encoding of a large array in memory.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <xxhash.h>

#include "jc_internal.h"
#include "value_int.h"

/* Ext types: typed arrays (1, 2), a large argument's digest (3), a file
 * or directory by its content (4), an argument left out of the key (5).
 * 3 to 5 are the key's inputs other than plain values, each with a
 * versioned payload (docs/format.md, "Key inputs"): a call that uses none
 * of them encodes, and is keyed, exactly as before they existed. */
enum { EXT_DOUBLES = 1, EXT_INTS = 2, EXT_DIGEST = 3, EXT_FILE = 4, EXT_LEFT_OUT = 5, EXT_REF = 6 };
/* A stored result in pieces (docs/format.md, "Large results"): ext 7 wraps
 * its skeleton, in which each large string, bytes or typed array is an
 * ext 8 reference to a part stored apart. Neither is ever a value. */
enum { EXT_PIECES = 7, EXT_PIECE = 8, PIECES_VERSION = 1, PIECE_REF_LEN = 13 };
enum { PIECE_STR = 0x10, PIECE_BIN = 0x11 };
enum { LEFT_OUT_VERSION = 1 };
enum { DIGEST_LEN = 25 }; /* kind, count (u64 LE), XXH3-128 (canonical) */

/* ---- encoding ---- */

static uint64_t canonical_double_bits(double d)
{
    uint64_t bits;
    if (isnan(d))
        return UINT64_C(0x7ff8000000000000);
    if (d == 0.0)
        d = 0.0; /* -0.0 == 0.0: both become +0.0 */
    memcpy(&bits, &d, sizeof bits);
    return bits;
}

static uint64_t to_le64(uint64_t x)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return __builtin_bswap64(x);
#else
    return x;
#endif
}

/* Writes a typed array's payload. On a little-endian host an int array, or a
 * double array with no -0.0 and no NaN, goes to the writer straight from the
 * value's memory (for a borrowed array: the caller's). Otherwise it is
 * converted in chunks on the stack. */
/* Whether m doubles (as bits) hold no NaN and no -0.0, in one branch-free
 * pass the compiler vectorises: a NaN is an all-ones exponent with a
 * non-zero mantissa, so its bits without the sign exceed those of infinity. */
static bool doubles_canonical(const void *p, size_t m)
{
    const unsigned char *bytes = p;
    uint64_t bad = 0;
    for (size_t i = 0; i < m; i++) {
        uint64_t b; /* memcpy, not a cast: the data are doubles (aliasing rules) */
        memcpy(&b, bytes + 8 * i, 8);
        bad |= (uint64_t)((b << 1) > UINT64_C(0xffe0000000000000)) | (uint64_t)(b == UINT64_C(0x8000000000000000));
    }
    return !bad;
}

/* How a value is encoded: MODE_ARGS digests large arguments (keys and
 * stored arguments); MODE_EXACT keeps doubles' bits (results). */
enum { MODE_ARGS = 1, MODE_EXACT = 2, MODE_SPLIT = 4 };

/* Where the packer's bytes go while a result is split into pieces: the
 * skeleton and the running checksum both, or one of them. */
enum { ROUTE_BOTH = 0, ROUTE_CHECK = 1, ROUTE_SKELETON = 2 };
typedef struct split_ctx {
    jc__buf skeleton;
    XXH3_state_t *check;
    int route;
    jc__part *pieces;
    size_t npieces, cap;
    bool oom;
} split_ctx;

static int write_array_body(const jc_value *v, msgpack_packer *pk, int mode)
{
    const unsigned char *src = v->u.arr; /* doubles or int64s, read with memcpy */
    size_t n = v->len;
    uint64_t chunk[512];
    bool ints = v->type == JC_TYPE_INTS || (mode & MODE_EXACT); /* exact: bits as they are */
    while (n) {
        size_t m = n < 512 ? n : 512;
        bool clean = to_le64(1) == 1 && (ints || doubles_canonical(src, m));
        if (clean) {
            if (msgpack_pack_ext_body(pk, src, m * 8))
                return -1;
        } else {
            for (size_t i = 0; i < m; i++) {
                uint64_t bits;
                memcpy(&bits, src + 8 * i, 8);
                if (!ints) {
                    double d;
                    memcpy(&d, src + 8 * i, 8);
                    bits = canonical_double_bits(d);
                }
                chunk[i] = to_le64(bits);
            }
            if (msgpack_pack_ext_body(pk, chunk, m * 8))
                return -1;
        }
        src += 8 * m;
        n -= m;
    }
    return 0;
}

static int write_failed(void)
{
    return jc__set_error(JC_ENOMEM, "out of memory encoding a value");
}

static int xxh_write(void *ctx, const char *p, size_t n)
{
    return XXH3_128bits_update(ctx, p, n) == XXH_OK ? 0 : -1;
}

/* An argument of JC__DIGEST_MIN bytes or more is encoded as its digest:
 * ext 3 holding its kind (1 doubles, 2 ints, 3 bytes), its length in
 * elements (u64, little-endian) and the XXH3-128 of its canonical payload.
 * The key still depends on every byte; the stored arguments stay small. */
/* The digest payload of v into payload; kept in v (computed once). -1
 * when out of memory. */
static int compute_digest(const jc_value *v, unsigned char payload[DIGEST_LEN])
{
    /* A call's arguments are encoded twice (for its key at jc_delayed, and
     * for the store after a miss): the digest is computed once and kept in
     * the value, which must stay unchanged until the run returns anyway. */
    if (v->digest) {
        memcpy(payload, v->digest, DIGEST_LEN);
        return 0;
    }
    XXH3_state_t *st = XXH3_createState();
    if (!st)
        return -1;
    XXH3_128bits_reset(st);
    if (v->type == JC_TYPE_BYTES) {
        XXH3_128bits_update(st, v->u.s, v->len);
    } else {
        msgpack_packer hp;
        msgpack_packer_init(&hp, st, xxh_write);
        if (write_array_body(v, &hp, MODE_ARGS)) {
            XXH3_freeState(st);
            return -1;
        }
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
    XXH3_freeState(st);
    payload[0] = v->type == JC_TYPE_DOUBLES ? 1 : v->type == JC_TYPE_INTS ? 2 : 3;
    uint64_t n = to_le64((uint64_t)v->len);
    memcpy(payload + 1, &n, 8);
    memcpy(payload + 9, c.digest, 16);
    unsigned char *keep = malloc(DIGEST_LEN);
    if (keep) { /* out of memory: computed again next time, no harm */
        memcpy(keep, payload, DIGEST_LEN);
        ((jc_value *)v)->digest = keep;
    }
    return 0;
}

int jc__value_digest(const jc_value *v, unsigned char payload[25])
{
    return compute_digest(v, payload) ? jc__set_error(JC_ENOMEM, "out of memory hashing a value") : 0;
}

static int write_digest(const jc_value *v, msgpack_packer *pk)
{
    unsigned char payload[DIGEST_LEN];
    if (compute_digest(v, payload))
        return write_failed();
    return msgpack_pack_ext(pk, DIGEST_LEN, EXT_DIGEST) || msgpack_pack_ext_body(pk, payload, DIGEST_LEN)
               ? write_failed()
               : 0;
}

static bool digested(const jc_value *v, int mode)
{
    size_t bytes = v->type == JC_TYPE_BYTES ? v->len : v->len * 8;
    return (mode & MODE_ARGS) && (v->type == JC_TYPE_BYTES || v->type == JC_TYPE_DOUBLES || v->type == JC_TYPE_INTS) &&
           bytes >= JC__DIGEST_MIN;
}

static int split_write(void *ctx, const char *p, size_t n)
{
    split_ctx *sc = ctx;
    if (sc->route != ROUTE_SKELETON && XXH3_128bits_update(sc->check, p, n) != XXH_OK)
        return -1;
    if (sc->route != ROUTE_CHECK && jc__buf_write(&sc->skeleton, p, n))
        return -1;
    return sc->skeleton.oom ? -1 : 0;
}

/* Whether v goes to a part of its own: a string, bytes or typed array of
 * JC__PIECE_MIN bytes or more, in a result being split (typed arrays only
 * where memory is little-endian, as they are stored: elsewhere inline). */
static bool split_out(const jc_value *v, int mode)
{
    if (!(mode & MODE_SPLIT))
        return false;
    if (v->type == JC_TYPE_STR || v->type == JC_TYPE_BYTES)
        return v->len >= JC__PIECE_MIN && v->len <= UINT32_MAX;
    if (v->type == JC_TYPE_DOUBLES || v->type == JC_TYPE_INTS)
        return to_le64(1) == 1 && v->len * 8 >= JC__PIECE_MIN && v->len <= UINT32_MAX / 8;
    return false;
}

/* The header msgpack gives a string, bytes or typed array of len bytes:
 * what the checksum covers in place of a part's reference. */
static int piece_header(msgpack_packer *pk, int kind, size_t len)
{
    if (kind == PIECE_STR)
        return msgpack_pack_str(pk, len);
    if (kind == PIECE_BIN)
        return msgpack_pack_bin(pk, len);
    return msgpack_pack_ext(pk, len, (int8_t)kind);
}

static int encode_piece(const jc_value *v, msgpack_packer *pk)
{
    split_ctx *sc = pk->data;
    int kind = v->type == JC_TYPE_STR ? PIECE_STR : v->type == JC_TYPE_BYTES ? PIECE_BIN
             : v->type == JC_TYPE_DOUBLES ? EXT_DOUBLES : EXT_INTS;
    size_t len = kind == PIECE_STR || kind == PIECE_BIN ? v->len : v->len * 8;
    const void *body = kind == PIECE_STR || kind == PIECE_BIN ? (const void *)v->u.s : v->u.arr;
    if (sc->npieces >= UINT32_MAX || JC__GROW(sc->pieces, sc->cap, sc->npieces + 1))
        return write_failed();
    sc->pieces[sc->npieces] = (jc__part){.data = body, .len = len};
    /* The checksum sees the value as an unsplit result holds it. */
    sc->route = ROUTE_CHECK;
    int r = piece_header(pk, kind, len) || (len && XXH3_128bits_update(sc->check, body, len) != XXH_OK);
    unsigned char ref[PIECE_REF_LEN];
    ref[0] = (unsigned char)kind;
    uint32_t part = (uint32_t)sc->npieces;
    uint64_t n64 = len;
    for (int k = 0; k < 4; k++)
        ref[1 + k] = (unsigned char)(part >> (8 * k));
    for (int k = 0; k < 8; k++)
        ref[5 + k] = (unsigned char)(n64 >> (8 * k));
    sc->route = ROUTE_SKELETON;
    r = r || msgpack_pack_ext(pk, PIECE_REF_LEN, EXT_PIECE) || msgpack_pack_ext_body(pk, ref, PIECE_REF_LEN);
    sc->route = ROUTE_BOTH;
    sc->npieces++;
    return r ? write_failed() : 0;
}

static int encode(const jc_value *v, msgpack_packer *pk, int depth, int mode)
{
    int r = 0;
    if (!v)
        return jc__set_error(JC_EINVAL, "cannot encode a NULL value");
    if (digested(v, mode))
        return write_digest(v, pk);
    if (split_out(v, mode))
        return encode_piece(v, pk);
    switch ((jc_type)v->type) {
    case JC_TYPE_DIGEST:
        r = msgpack_pack_ext(pk, DIGEST_LEN, EXT_DIGEST) || msgpack_pack_ext_body(pk, v->u.s, DIGEST_LEN);
        break;
    case JC_TYPE_FILE:
        /* Keys and stored arguments hold the content's digest; a call sent
         * to run elsewhere (or a result) carries the path, which is what
         * the function reads. */
        if (!(mode & MODE_ARGS) && v->u.s)
            r = msgpack_pack_str(pk, v->len) || msgpack_pack_str_body(pk, v->u.s, v->len);
        else
            r = msgpack_pack_ext(pk, JC__FILE_DIGEST_LEN, EXT_FILE) ||
                msgpack_pack_ext_body(pk, v->digest, JC__FILE_DIGEST_LEN);
        break;
    case JC_TYPE_LEFT_OUT: {
        const char version = LEFT_OUT_VERSION;
        r = msgpack_pack_ext(pk, 1, EXT_LEFT_OUT) || msgpack_pack_ext_body(pk, &version, 1);
        break;
    }
    case JC_TYPE_REF:
        /* Keys and stored arguments hold the digest of the result referred
         * to (docs/pipelines.md); a call sent to run elsewhere carries the
         * result itself. */
        if (!(mode & MODE_ARGS) && v->u.ref.target)
            return encode(v->u.ref.target, pk, depth, mode);
        if (!v->digest)
            return jc__set_error(JC_EINVAL, "a reference to call %zu of a batch is not resolved yet "
                                 "(a reference is an argument of a later call of its batch)", v->u.ref.index);
        r = msgpack_pack_ext(pk, JC__REF_PAYLOAD_LEN, EXT_REF) ||
            msgpack_pack_ext_body(pk, v->digest, JC__REF_PAYLOAD_LEN);
        break;
    case JC_TYPE_NULL: r = msgpack_pack_nil(pk); break;
    case JC_TYPE_BOOL: r = v->u.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
    case JC_TYPE_INT: r = msgpack_pack_int64(pk, v->u.i); break;
    case JC_TYPE_DOUBLE: {
        /* msgpack-c writes the double's 8 bytes as they are (big-endian). */
        uint64_t bits = canonical_double_bits(v->u.d);
        double d = v->u.d;
        if (!(mode & MODE_EXACT))
            memcpy(&d, &bits, sizeof d);
        r = msgpack_pack_double(pk, d);
        break;
    }
    case JC_TYPE_STR:
        if (v->len > UINT32_MAX)
            return jc__set_error(JC_EINVAL, "string of %zu bytes is longer than 4 GiB", v->len);
        r = msgpack_pack_str(pk, v->len) || msgpack_pack_str_body(pk, v->u.s, v->len);
        break;
    case JC_TYPE_BYTES:
        if (v->len > UINT32_MAX)
            return jc__set_error(JC_EINVAL, "bytes value of %zu bytes is longer than 4 GiB", v->len);
        r = msgpack_pack_bin(pk, v->len) || msgpack_pack_bin_body(pk, v->u.s, v->len);
        break;
    case JC_TYPE_DOUBLES:
    case JC_TYPE_INTS:
        if (v->len > UINT32_MAX / 8)
            return jc__set_error(JC_EINVAL, "typed array of %zu elements is larger than 4 GiB", v->len);
        r = msgpack_pack_ext(pk, v->len * 8, v->type == JC_TYPE_DOUBLES ? EXT_DOUBLES : EXT_INTS) ||
            write_array_body(v, pk, mode);
        break;
    case JC_TYPE_LIST:
    case JC_TYPE_MAP:
        if (depth >= JC__MAX_DEPTH)
            return jc__set_error(JC_EINVAL, "value nested more than %d levels deep", JC__MAX_DEPTH);
        if (v->len > UINT32_MAX)
            return jc__set_error(JC_EINVAL, "%s of %zu items is too long", jc_type_name(v->type), v->len);
        r = v->type == JC_TYPE_LIST ? msgpack_pack_array(pk, v->len) : msgpack_pack_map(pk, v->len);
        for (size_t i = 0; i < v->len && !r; i++) {
            if (v->type == JC_TYPE_MAP) {
                size_t kl = strlen(v->keys[i]);
                if (msgpack_pack_str(pk, kl) || msgpack_pack_str_body(pk, v->keys[i], kl))
                    return write_failed();
            }
            int rc = encode(v->u.items[i], pk, depth + 1, mode);
            if (rc)
                return rc;
        }
        break;
    case JC_TYPE_KWARG:
        return jc__set_error(JC_EINVAL, "named argument \"%s\" is only valid as a call argument; "
                             "inside values use jc_map", v->u.kw.name);
    }
    return r ? write_failed() : 0;
}

int jc__encode_value(const jc_value *v, jc__write_fn w, void *ctx)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, ctx, w);
    return encode(v, &pk, 0, 0);
}

int jc__encode_result(const jc_value *v, jc__write_fn w, void *ctx)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, ctx, w);
    return encode(v, &pk, 0, MODE_EXACT);
}

bool jc__value_has_part(const jc_value *v)
{
    if (!v)
        return false;
    if (split_out(v, MODE_SPLIT))
        return true;
    if (v->type == JC_TYPE_REF && v->u.ref.target)
        return jc__value_has_part(v->u.ref.target);
    if (v->type != JC_TYPE_LIST && v->type != JC_TYPE_MAP)
        return false;
    for (size_t i = 0; i < v->len; i++)
        if (jc__value_has_part(v->u.items[i]))
            return true;
    return false;
}

int jc__encode_result_split(const jc_value *v, jc__split *out)
{
    memset(out, 0, sizeof *out);
    split_ctx sc = {.check = XXH3_createState()};
    if (!sc.check)
        return write_failed();
    XXH3_128bits_reset(sc.check);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sc, split_write);
    int rc = encode(v, &pk, 0, MODE_EXACT | MODE_SPLIT);
    if (!rc && sc.skeleton.oom)
        rc = write_failed();
    if (!rc) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(sc.check));
        memcpy(out->check, c.digest, sizeof out->check);
    }
    XXH3_freeState(sc.check);
    if (!rc && sc.npieces) {
        /* The skeleton wrapped: ext 7 of the version byte and the skeleton. */
        msgpack_packer wp;
        msgpack_packer_init(&wp, &out->stored, jc__buf_write);
        const char version = PIECES_VERSION;
        if (sc.skeleton.len >= UINT32_MAX || msgpack_pack_ext(&wp, sc.skeleton.len + 1, EXT_PIECES) ||
            msgpack_pack_ext_body(&wp, &version, 1) ||
            msgpack_pack_ext_body(&wp, sc.skeleton.data, sc.skeleton.len) || out->stored.oom)
            rc = write_failed();
        jc__buf_free(&sc.skeleton);
    } else {
        out->stored = sc.skeleton;
    }
    out->pieces = sc.pieces;
    out->npieces = sc.npieces;
    if (rc)
        jc__split_free(out);
    return rc;
}

void jc__split_free(jc__split *s)
{
    jc__buf_free(&s->stored);
    free(s->pieces);
    memset(s, 0, sizeof *s);
}

static int cmp_kw(const void *a, const void *b)
{
    const jc_value *x = *(const jc_value *const *)a, *y = *(const jc_value *const *)b;
    return strcmp(x->u.kw.name, y->u.kw.name);
}

/* How one top-level argument goes out: whole (mode), or, when ref says
 * so, as its digest; left out of the key (left), as the placeholder. */
static int encode_arg(const jc_value *v, msgpack_packer *pk, int mode, jc__ref_fn ref, void *ref_ctx, bool left)
{
    if (!(mode & MODE_ARGS)) /* sent whole: another call's result is its value, shared as any other */
        v = jc__deref(v);
    if (left && (mode & MODE_ARGS)) {
        const char version = LEFT_OUT_VERSION;
        return msgpack_pack_ext(pk, 1, EXT_LEFT_OUT) || msgpack_pack_ext_body(pk, &version, 1) ? write_failed() : 0;
    }
    if (ref && digested(v, MODE_ARGS)) {
        unsigned char payload[DIGEST_LEN];
        if (compute_digest(v, payload))
            return write_failed();
        if (ref(ref_ctx, v, payload))
            return msgpack_pack_ext(pk, DIGEST_LEN, EXT_DIGEST) || msgpack_pack_ext_body(pk, payload, DIGEST_LEN)
                       ? write_failed()
                       : 0;
    }
    return encode(v, pk, 0, mode);
}

static int encode_args(jc_value *const *argv, size_t argc, jc__write_fn w, void *ctx, int mode, jc__ref_fn ref,
                       void *ref_ctx, const bool *left_out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, ctx, w);
    size_t nkw = 0;
    for (size_t i = 0; i < argc; i++)
        nkw += argv[i]->type == JC_TYPE_KWARG;

    if (msgpack_pack_array(&pk, 2) || msgpack_pack_array(&pk, argc - nkw))
        return write_failed();
    for (size_t i = 0; i < argc; i++)
        if (argv[i]->type != JC_TYPE_KWARG) {
            int rc = encode_arg(argv[i], &pk, mode, ref, ref_ctx, left_out && left_out[i]);
            if (rc)
                return rc;
        }
    if (msgpack_pack_map(&pk, nkw))
        return write_failed();
    if (!nkw)
        return 0;

    /* Named arguments in byte order of their names, whatever the call's
     * order. (Each is followed in kw by its index in argv, for left_out.) */
    jc_value *stackbuf[32];
    jc_value **kw = nkw <= 16 ? stackbuf : malloc(2 * nkw * sizeof *kw);
    if (!kw)
        return write_failed();
    size_t k = 0;
    for (size_t i = 0; i < argc; i++)
        if (argv[i]->type == JC_TYPE_KWARG) {
            kw[2 * k] = argv[i];
            kw[2 * k++ + 1] = (jc_value *)(uintptr_t)i;
        }
    qsort(kw, nkw, 2 * sizeof *kw, cmp_kw);
    int rc = 0;
    for (size_t i = 0; i < nkw && !rc; i++) {
        const jc_value *a = kw[2 * i];
        if (i && strcmp(kw[2 * i - 2]->u.kw.name, a->u.kw.name) == 0) {
            rc = jc__set_error(JC_EINVAL, "named argument \"%s\" is given twice", a->u.kw.name);
            break;
        }
        size_t kl = strlen(a->u.kw.name);
        if (msgpack_pack_str(&pk, kl) || msgpack_pack_str_body(&pk, a->u.kw.name, kl))
            rc = write_failed();
        else
            rc = encode_arg(a->u.kw.val, &pk, mode, ref, ref_ctx,
                            left_out && left_out[(uintptr_t)kw[2 * i + 1]]);
    }
    if (kw != stackbuf)
        free(kw);
    return rc;
}

/* An int as msgpack-c's msgpack_pack_int64 writes it (the shortest form,
 * docs/format.md): into out, returning the bytes written. */
static inline __attribute__((always_inline)) size_t put_int(unsigned char *out, int64_t d)
{
    unsigned char tag;
    int n;
    if (d < -(1 << 5)) {
        if (d < -(1 << 15))
            tag = d < -(INT64_C(1) << 31) ? 0xd3 : 0xd2, n = d < -(INT64_C(1) << 31) ? 8 : 4;
        else
            tag = d < -(1 << 7) ? 0xd1 : 0xd0, n = d < -(1 << 7) ? 2 : 1;
    } else if (d < (1 << 7)) {
        out[0] = (unsigned char)(d & 0xff); /* positive or negative fixint */
        return 1;
    } else if (d < (1 << 16)) {
        tag = d < (1 << 8) ? 0xcc : 0xcd, n = d < (1 << 8) ? 1 : 2;
    } else {
        tag = d < (INT64_C(1) << 32) ? 0xce : 0xcf, n = d < (INT64_C(1) << 32) ? 4 : 8;
    }
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    out[0] = tag;
    for (int k = 0; k < n; k++)
        out[1 + k] = (unsigned char)(u >> (8 * (n - 1 - k)));
    return (size_t)n + 1;
}

size_t jc__encode_args_scalars(jc_value *const *argv, size_t argc, const bool *left_out, unsigned char *out,
                               size_t cap)
{
    if (argc > 15 || cap < 3 + 9 * argc)
        return 0;
    size_t n = 0;
    out[n++] = 0x92;                       /* [positional, named] */
    out[n++] = (unsigned char)(0x90 | argc); /* fixarray of the positional */
    for (size_t i = 0; i < argc; i++) {
        const jc_value *v = argv[i];
        if (!v || (left_out && left_out[i]))
            return 0;
        if (v->type == JC_TYPE_INT) {
            n += put_int(out + n, v->u.i);
        } else if (v->type == JC_TYPE_DOUBLE) {
            uint64_t bits = canonical_double_bits(v->u.d);
            out[n++] = 0xcb;
            for (int k = 0; k < 8; k++)
                out[n++] = (unsigned char)(bits >> (56 - 8 * k));
        } else {
            return 0;
        }
    }
    out[n++] = 0x80; /* no named arguments */
    return n;
}

size_t jc__encode_result_scalar(const jc_value *v, unsigned char out[9])
{
    if (!v)
        return 0;
    switch ((jc_type)v->type) {
    case JC_TYPE_NULL: out[0] = 0xc0; return 1;
    case JC_TYPE_BOOL: out[0] = v->u.b ? 0xc3 : 0xc2; return 1;
    case JC_TYPE_INT: return put_int(out, v->u.i);
    case JC_TYPE_DOUBLE: {
        uint64_t bits; /* exact: a result's double is stored as it was returned */
        memcpy(&bits, &v->u.d, sizeof bits);
        out[0] = 0xcb;
        for (int k = 0; k < 8; k++)
            out[1 + k] = (unsigned char)(bits >> (56 - 8 * k));
        return 9;
    }
    default: return 0;
    }
}

int jc__encode_args(jc_value *const *argv, size_t argc, jc__write_fn w, void *ctx)
{
    return encode_args(argv, argc, w, ctx, MODE_ARGS, NULL, NULL, NULL);
}

int jc__encode_args_left_out(jc_value *const *argv, size_t argc, const bool *left_out, jc__write_fn w, void *ctx)
{
    return encode_args(argv, argc, w, ctx, MODE_ARGS, NULL, NULL, left_out);
}

int jc__encode_args_whole(jc_value *const *argv, size_t argc, jc__write_fn w, void *ctx, jc__ref_fn ref,
                          void *ref_ctx)
{
    return encode_args(argv, argc, w, ctx, 0, ref, ref_ctx, NULL);
}

/* ---- decoding ---- */

/* Why the last decoding of this thread failed, without the lead-in of the
 * message (jc__decode_reason): callers that name the entry themselves use
 * it, rather than taking the message apart. */
static _Thread_local char decode_reason[160];

static int bad(const char *what)
{
    snprintf(decode_reason, sizeof decode_reason, "%s", what);
    return jc__set_error(JC_EDECODE, "stored value does not decode: %s", what);
}

const char *jc__decode_reason(void)
{
    return decode_reason;
}

static int from_object(const msgpack_object *o, jc_value **out, int depth);

/* msgpack-c leaves the pointer of a zero-length str, bin or ext NULL. */
static const char *payload(const char *p)
{
    return p ? p : "";
}

static int decode_array_ext(const msgpack_object_ext *e, jc_value **out)
{
    if (e->size % 8)
        return bad("typed array payload is not a multiple of 8 bytes");
    size_t n = e->size / 8;
    uint64_t *data = malloc(n ? n * 8 : 1);
    if (!data)
        return jc__set_error(JC_ENOMEM, "out of memory decoding an array of %zu elements", n);
    if (n)
        memcpy(data, e->ptr, n * 8);
    for (size_t i = 0; i < n; i++)
        data[i] = to_le64(data[i]);
    jc_value *v = e->type == EXT_DOUBLES ? jc_doubles_ref((double *)data, n)
                                         : jc_ints_ref((int64_t *)data, n);
    if (!v) {
        free(data);
        return JC_ENOMEM;
    }
    v->flags &= (uint8_t)~JC__V_BORROWED; /* the value owns data */
    *out = v;
    return 0;
}

/* A result in pieces being decoded in this thread (jc__decode_result_pieces):
 * how far its skeleton has gone into the checksum, and its parts' reader. */
typedef struct pieces_dec {
    const unsigned char *done, *end;
    XXH3_state_t *check;
    jc__part_fn read;
    void *ctx;
    uint32_t next;
} pieces_dec;
static _Thread_local pieces_dec *tl_pieces;

static int header_write(void *ctx, const char *p, size_t n)
{
    return XXH3_128bits_update(ctx, p, n) == XXH_OK ? 0 : -1;
}

static int decode_piece(const msgpack_object_ext *e, jc_value **out)
{
    pieces_dec *d = tl_pieces;
    const unsigned char *r = (const unsigned char *)e->ptr;
    if (!d)
        return bad("a piece reference outside a result in pieces");
    /* The reference is the ext8 c7 0d 08 and 13 bytes, inside the skeleton
     * and after what the checksum has seen (msgpack-c points into it). */
    if (e->size != PIECE_REF_LEN || !r || r - 3 < d->done || r + PIECE_REF_LEN > d->end || r[-3] != 0xc7 ||
        r[-2] != PIECE_REF_LEN || r[-1] != EXT_PIECE)
        return bad("malformed piece reference");
    int kind = r[0];
    uint32_t part = 0;
    uint64_t len = 0;
    for (int k = 3; k >= 0; k--)
        part = part << 8 | r[1 + k];
    for (int k = 7; k >= 0; k--)
        len = len << 8 | r[5 + k];
    bool array = kind == EXT_DOUBLES || kind == EXT_INTS;
    if ((!array && kind != PIECE_STR && kind != PIECE_BIN) || len > UINT32_MAX || len >= SIZE_MAX ||
        (array && len % 8))
        return bad("malformed piece reference");
    if (part != d->next)
        return bad("pieces out of order");
    /* The part's chunks must hold its length before its memory is taken
     * (a hostile skeleton may claim 4 GiB). */
    char why[300];
    int rc = d->read(d->ctx, part, NULL, (size_t)len);
    if (rc == JC_EDECODE) {
        snprintf(why, sizeof why, "%s", jc_errmsg());
        return bad(why);
    }
    if (rc)
        return rc;
    /* The checksum: the skeleton up to the reference, then the value as an
     * unsplit result holds it (its header, its bytes). */
    msgpack_packer hp;
    msgpack_packer_init(&hp, d->check, header_write);
    if (XXH3_128bits_update(d->check, d->done, (size_t)(r - 3 - d->done)) != XXH_OK ||
        piece_header(&hp, kind, (size_t)len))
        return write_failed();
    char *dst = malloc((size_t)len + 1);
    if (!dst)
        return jc__set_error(JC_ENOMEM, "out of memory reading a result part of %llu bytes", (unsigned long long)len);
    rc = d->read(d->ctx, part, dst, (size_t)len);
    if (rc) {
        free(dst);
        if (rc == JC_EDECODE) {
            snprintf(why, sizeof why, "%s", jc_errmsg());
            return bad(why);
        }
        return rc;
    }
    if (len && XXH3_128bits_update(d->check, dst, (size_t)len) != XXH_OK) {
        free(dst);
        return write_failed();
    }
    d->done = r + PIECE_REF_LEN;
    d->next++;
    jc_value *v;
    if (kind == PIECE_STR && memchr(dst, '\0', (size_t)len)) {
        free(dst);
        return bad("a string contains a NUL byte");
    } else if (!array) {
        v = jc__blob_take(kind == PIECE_STR ? JC_TYPE_STR : JC_TYPE_BYTES, dst, (size_t)len);
    } else {
        uint64_t *w = (uint64_t *)(void *)dst;
        if (to_le64(1) != 1)
            for (size_t i = 0; i < len / 8; i++) {
                uint64_t x;
                memcpy(&x, dst + 8 * i, 8);
                x = to_le64(x);
                memcpy(dst + 8 * i, &x, 8);
            }
        v = kind == EXT_DOUBLES ? jc_doubles_take((double *)(void *)w, (size_t)len / 8)
                                : jc_ints_take((int64_t *)(void *)w, (size_t)len / 8);
    }
    if (!v)
        return jc__set_error(JC_ENOMEM, "out of memory decoding a result part");
    *out = v;
    return 0;
}

static int decode_container(const msgpack_object *o, jc_value **out, int depth)
{
    if (depth >= JC__MAX_DEPTH)
        return bad("nested too deep");
    bool map = o->type == MSGPACK_OBJECT_MAP;
    jc_value *c = map ? jc_map_new() : jc_list_new();
    if (!c)
        return JC_ENOMEM;
    uint32_t n = map ? o->via.map.size : o->via.array.size;
    for (uint32_t i = 0; i < n; i++) {
        jc_value *item = NULL;
        const msgpack_object *src = map ? &o->via.map.ptr[i].val : &o->via.array.ptr[i];
        int rc = from_object(src, &item, depth + 1);
        if (!rc && map) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (k->type != MSGPACK_OBJECT_STR) {
                jc_value_free(item);
                rc = bad("a map key is not a string");
            } else if (memchr(payload(k->via.str.ptr), '\0', k->via.str.size)) {
                jc_value_free(item);
                rc = bad("a map key contains a NUL byte");
            } else {
                char *key = strndup(payload(k->via.str.ptr), k->via.str.size);
                if (!key) {
                    jc_value_free(item);
                    rc = jc__set_error(JC_ENOMEM, "out of memory decoding a map");
                } else if ((rc = jc__map_insert(c, key, item)) == JC_EINVAL) {
                    rc = bad("a map key is repeated");
                }
            }
        } else if (!rc) {
            rc = jc__list_push(c, item); /* depth bounded above (check_shape) */
        }
        if (rc) {
            jc_value_free(c);
            return rc;
        }
    }
    *out = c;
    return 0;
}

static int from_object(const msgpack_object *o, jc_value **out, int depth)
{
    jc_value *v = NULL;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: v = jc_null(); break;
    case MSGPACK_OBJECT_BOOLEAN: v = jc_bool(o->via.boolean); break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX)
            return bad("integer larger than INT64_MAX");
        v = jc_int((int64_t)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: v = jc_int(o->via.i64); break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: v = jc_double(o->via.f64); break;
    case MSGPACK_OBJECT_STR:
        if (memchr(payload(o->via.str.ptr), '\0', o->via.str.size))
            return bad("a string contains a NUL byte");
        v = jc__str_stored(payload(o->via.str.ptr), o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN: v = jc_bytes(payload(o->via.bin.ptr), o->via.bin.size); break;
    case MSGPACK_OBJECT_EXT:
        if (o->via.ext.type == EXT_DIGEST) {
            const unsigned char *d = (const unsigned char *)o->via.ext.ptr;
            if (o->via.ext.size != DIGEST_LEN || d[0] < 1 || d[0] > 3)
                return bad("malformed argument digest");
            v = jc__digest_value(d);
            break;
        }
        if (o->via.ext.type == EXT_FILE) {
            const unsigned char *d = (const unsigned char *)o->via.ext.ptr;
            if (o->via.ext.size != JC__FILE_DIGEST_LEN || d[0] != 1 || d[1] < 1 || d[1] > 2)
                return bad("malformed file digest");
            v = jc__file_value(NULL, d);
            break;
        }
        if (o->via.ext.type == EXT_REF) {
            const unsigned char *d = (const unsigned char *)o->via.ext.ptr;
            if (o->via.ext.size != JC__REF_PAYLOAD_LEN || d[0] != 1)
                return bad("malformed reference");
            v = jc__ref_value(0, 0, d);
            break;
        }
        if (o->via.ext.type == EXT_LEFT_OUT) {
            if (o->via.ext.size != 1 || o->via.ext.ptr[0] != LEFT_OUT_VERSION)
                return bad("malformed left-out argument");
            v = jc__left_out_value();
            break;
        }
        if (o->via.ext.type == EXT_PIECE)
            return decode_piece(&o->via.ext, out);
        if (o->via.ext.type != EXT_DOUBLES && o->via.ext.type != EXT_INTS)
            return bad("unknown extension type");
        return decode_array_ext(&o->via.ext, out);
    case MSGPACK_OBJECT_ARRAY:
    case MSGPACK_OBJECT_MAP:
        return decode_container(o, out, depth);
    default:
        return bad("unknown msgpack type");
    }
    if (!v)
        return jc__set_error(JC_ENOMEM, "out of memory decoding a value");
    *out = v;
    return 0;
}

/* Checks that buf holds exactly one complete msgpack object in which lists
 * and maps nest at most max_levels deep, before msgpack-c sees it. msgpack-c
 * allocates a container's items as soon as it reads the header, so without
 * this a hostile 5-byte array32 header makes it ask for 128 GiB; and its
 * parser stack is 32 deep (deeper input fails as "out of memory"). A
 * container that claims more items than there are bytes left (an item takes
 * at least one byte) is truncated; so is anything msgpack-c then allocates
 * bounded by the input's length. */
static int check_shape(const unsigned char *p, size_t len, int max_levels)
{
    uint64_t left[JC__MAX_DEPTH + 2]; /* items still to come in each open container */
    int open = 0;
    size_t i = 0;
    do {
        if (i >= len)
            return bad("truncated");
        unsigned c = p[i++];
        int kind = 0;       /* 0: scalar with n payload bytes; 1: array, 2: map of n items */
        int lenbytes = 0;   /* a big-endian length field follows, added to n */
        uint64_t n = 0;
        if (c >= 0xa0 && c <= 0xbf)
            n = c & 0x1f; /* fixstr */
        else if (c >= 0x90 && c <= 0x9f)
            kind = 1, n = c & 0x0f;
        else if (c >= 0x80 && c <= 0x8f)
            kind = 2, n = c & 0x0f;
        else if (c >= 0xc0 && c <= 0xdf) {
            switch (c) {
            case 0xc0: case 0xc2: case 0xc3: break;          /* nil, false, true */
            case 0xc4: case 0xd9: lenbytes = 1; break;       /* bin8, str8 */
            case 0xc5: case 0xda: lenbytes = 2; break;       /* bin16, str16 */
            case 0xc6: case 0xdb: lenbytes = 4; break;       /* bin32, str32 */
            case 0xc7: lenbytes = 1, n = 1; break;           /* ext8/16/32: + type byte */
            case 0xc8: lenbytes = 2, n = 1; break;
            case 0xc9: lenbytes = 4, n = 1; break;
            case 0xcc: case 0xd0: n = 1; break;
            case 0xcd: case 0xd1: n = 2; break;
            case 0xca: case 0xce: case 0xd2: n = 4; break;
            case 0xcb: case 0xcf: case 0xd3: n = 8; break;
            case 0xd4: n = 2; break;                         /* fixext 1..16: type + data */
            case 0xd5: n = 3; break;
            case 0xd6: n = 5; break;
            case 0xd7: n = 9; break;
            case 0xd8: n = 17; break;
            case 0xdc: kind = 1, lenbytes = 2; break;
            case 0xdd: kind = 1, lenbytes = 4; break;
            case 0xde: kind = 2, lenbytes = 2; break;
            case 0xdf: kind = 2, lenbytes = 4; break;
            default: return bad("malformed msgpack (byte 0xc1)");
            }
        } /* else positive or negative fixint */
        if ((size_t)lenbytes > len - i)
            return bad("truncated");
        uint64_t field = 0;
        for (int k = 0; k < lenbytes; k++)
            field = field << 8 | p[i++];
        n += field;
        if (kind == 2)
            n *= 2; /* keys and values */
        if (n > len - i)
            return bad("truncated");
        if (kind) {
            if (open >= max_levels)
                return bad("nested too deep");
            if (n) {
                left[open++] = n;
                continue;
            }
        } else {
            i += (size_t)n;
        }
        /* One item is complete: so is every container it completes. */
        while (open > 0 && --left[open - 1] == 0)
            open--;
    } while (open > 0);
    if (i != len)
        return bad("trailing bytes after the value");
    return 0;
}

/* Parses exactly one msgpack object filling buf into zone. */
static int unpack_one(const void *buf, size_t len, msgpack_zone *zone, msgpack_object *obj)
{
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack(buf, len, &off, zone, obj);
    if (r == MSGPACK_UNPACK_NOMEM_ERROR)
        return jc__set_error(JC_ENOMEM, "out of memory decoding %zu bytes", len);
    if (r == MSGPACK_UNPACK_CONTINUE)
        return bad("truncated");
    if (r == MSGPACK_UNPACK_EXTRA_BYTES || (r == MSGPACK_UNPACK_SUCCESS && off != len))
        return bad("trailing bytes after the value");
    if (r != MSGPACK_UNPACK_SUCCESS)
        return bad("malformed msgpack");
    return 0;
}

/* One msgpack zone per thread, cleared after each use rather than made
 * anew: a warm rerun decodes one small result per hit, and a fresh zone
 * costs a malloc and a free each time. The zone keeps its first chunk, and
 * a thread-specific key's destructor frees it when the thread exits (a
 * _Thread_local pointer alone would leak it with every thread). */
static pthread_once_t zone_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t zone_key;
static bool zone_key_ok;

static void zone_free(void *zone)
{
    msgpack_zone_free(zone);
}

static void zone_key_make(void)
{
    zone_key_ok = pthread_key_create(&zone_key, zone_free) == 0;
}

/* The calling thread's zone, made on first use; NULL when none could be
 * made (no memory, or no key: then *own says the caller must free it). */
static msgpack_zone *thread_zone(bool *own)
{
    *own = false;
    pthread_once(&zone_key_once, zone_key_make);
    msgpack_zone *zone = zone_key_ok ? pthread_getspecific(zone_key) : NULL;
    if (zone)
        return zone;
    zone = msgpack_zone_new(2048);
    if (zone && (!zone_key_ok || pthread_setspecific(zone_key, zone) != 0))
        *own = true; /* not kept: a zone for this call only */
    return zone;
}

/* Decodes one value whose outermost container is at depth (negative for
 * wrappers that do not count against JC__MAX_DEPTH). */
/* A big-endian unsigned integer of n bytes at p. */
static uint64_t be_uint(const unsigned char *p, int n)
{
    uint64_t x = 0;
    for (int k = 0; k < n; k++)
        x = x << 8 | p[k];
    return x;
}

/* A scalar alone (nil, a bool, an int, a double: the result of most small
 * calls) decoded without msgpack-c's zone, into what from_object makes of
 * it; 1 when done (*out set, or an error returned through *rc), 0 when buf
 * holds anything else. */
static int decode_scalar(const unsigned char *p, size_t len, jc_value **out, int *rc)
{
    jc_value *v = NULL;
    unsigned c = len ? p[0] : 0x100;
    if (len == 1 && (c <= 0x7f || c >= 0xe0))
        v = jc_int(c <= 0x7f ? (int64_t)c : (int64_t)c - 256); /* fixint */
    else if (len == 1 && c == 0xc0)
        v = jc_null();
    else if (len == 1 && (c == 0xc2 || c == 0xc3))
        v = jc_bool(c == 0xc3);
    else if ((c == 0xcc && len == 2) || (c == 0xcd && len == 3) || (c == 0xce && len == 5) ||
             (c == 0xcf && len == 9)) {
        uint64_t u = be_uint(p + 1, (int)len - 1);
        if (u > INT64_MAX) {
            *rc = bad("integer larger than INT64_MAX");
            return 1;
        }
        v = jc_int((int64_t)u);
    } else if ((c == 0xd0 && len == 2) || (c == 0xd1 && len == 3) || (c == 0xd2 && len == 5) ||
               (c == 0xd3 && len == 9)) {
        int bits = 8 * ((int)len - 1);
        uint64_t u = be_uint(p + 1, (int)len - 1);
        if (bits < 64 && (u >> (bits - 1)) & 1)
            u |= ~UINT64_C(0) << bits; /* sign-extend */
        int64_t i;
        memcpy(&i, &u, sizeof i);
        v = jc_int(i);
    } else if (c == 0xcb && len == 9) {
        uint64_t u = be_uint(p + 1, 8);
        double d;
        memcpy(&d, &u, sizeof d);
        v = jc_double(d);
    } else if (c == 0xca && len == 5) {
        uint32_t u = (uint32_t)be_uint(p + 1, 4);
        float f;
        memcpy(&f, &u, sizeof f);
        v = jc_double((double)f);
    } else {
        return 0;
    }
    *rc = v ? 0 : jc__set_error(JC_ENOMEM, "out of memory decoding a value");
    *out = v;
    return 1;
}

static int decode_at(const void *buf, size_t len, jc_value **out, int depth)
{
    *out = NULL;
    int rc = 0;
    if (decode_scalar(buf, len, out, &rc))
        return rc;
    rc = check_shape(buf, len, JC__MAX_DEPTH - depth);
    if (rc)
        return rc;
    bool own;
    msgpack_zone *zone = thread_zone(&own);
    if (!zone)
        return jc__set_error(JC_ENOMEM, "out of memory decoding a value");
    msgpack_object obj;
    rc = unpack_one(buf, len, zone, &obj);
    if (!rc)
        rc = from_object(&obj, out, depth);
    if (own)
        msgpack_zone_free(zone);
    else
        msgpack_zone_clear(zone);
    return rc;
}

int jc__decode_value(const void *buf, size_t len, jc_value **out)
{
    return decode_at(buf, len, out, 0);
}

bool jc__result_in_pieces(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    return len >= 4 && ((p[0] == 0xc7 && p[2] == EXT_PIECES) || (p[0] == 0xc8 && len >= 5 && p[3] == EXT_PIECES) ||
                        (p[0] == 0xc9 && len >= 7 && p[5] == EXT_PIECES));
}

int jc__decode_result_pieces(const void *buf, size_t len, jc__part_fn read, void *ctx, uint8_t check[16],
                             jc_value **out)
{
    *out = NULL;
    const unsigned char *p = buf;
    if (!jc__result_in_pieces(buf, len))
        return bad("not a result in pieces");
    int hl = p[0] == 0xc7 ? 1 : p[0] == 0xc8 ? 2 : 4;
    uint64_t body = be_uint(p + 1, hl);
    const unsigned char *b = p + 2 + hl;
    if (body != len - (size_t)(2 + hl) || body < 2 || b[0] != PIECES_VERSION)
        return bad(body == len - (size_t)(2 + hl) && body >= 2 ? "result in pieces of an unknown version"
                                                              : "malformed result in pieces");
    pieces_dec d = {.done = b + 1, .end = p + len, .check = XXH3_createState(), .read = read, .ctx = ctx};
    if (!d.check)
        return write_failed();
    XXH3_128bits_reset(d.check);
    pieces_dec *saved = tl_pieces;
    tl_pieces = &d;
    int rc = decode_at(b + 1, (size_t)body - 1, out, 0);
    tl_pieces = saved;
    if (!rc && XXH3_128bits_update(d.check, d.done, (size_t)(d.end - d.done)) != XXH_OK)
        rc = write_failed();
    if (!rc) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(d.check));
        memcpy(check, c.digest, 16);
    } else {
        jc_value_free(*out);
        *out = NULL;
    }
    XXH3_freeState(d.check);
    return rc;
}

int jc_value_decode(const void *buf, size_t len, jc_value **out)
{
    if (!out)
        return jc__set_error(JC_EINVAL, "jc_value_decode: NULL out");
    if (!buf && len)
        return jc__set_error(JC_EINVAL, "jc_value_decode: NULL buffer");
    return jc__decode_value(buf, len, out);
}

int jc_value_encode(const jc_value *v, void **out, size_t *len)
{
    if (!out || !len)
        return jc__set_error(JC_EINVAL, "jc_value_encode: NULL out or len");
    jc__buf b = {0};
    int rc = jc__encode_value(v, jc__buf_write, &b);
    if (!rc && b.oom)
        rc = write_failed();
    if (rc) {
        jc__buf_free(&b);
        return rc;
    }
    *out = b.data ? (void *)b.data : malloc(1);
    *len = b.len;
    return *out ? 0 : write_failed();
}

int jc__decode_args(const void *buf, size_t len, jc_value ***argv_out, size_t *argc_out)
{
    jc_value *whole = NULL;
    /* The [positional, named] wrapper's two levels do not count: an
     * argument may nest as deep as any value. */
    int rc = decode_at(buf, len, &whole, -2);
    if (rc)
        return rc;
    if (whole->type != JC_TYPE_LIST || whole->len != 2 || whole->u.items[0]->type != JC_TYPE_LIST ||
        whole->u.items[1]->type != JC_TYPE_MAP) {
        jc_value_free(whole);
        return bad("arguments are not [positional list, named map]");
    }
    jc_value *pos = whole->u.items[0], *named = whole->u.items[1];
    size_t argc = pos->len + named->len;
    jc_value **argv = calloc(argc ? argc : 1, sizeof *argv);
    if (!argv) {
        jc_value_free(whole);
        return jc__set_error(JC_ENOMEM, "out of memory decoding arguments");
    }
    /* Move the items out of the decoded containers. */
    size_t k = 0;
    for (size_t i = 0; i < pos->len; i++) {
        argv[k++] = pos->u.items[i];
        pos->u.items[i] = NULL;
        argv[k - 1]->parent = NULL; /* top-level arguments now */
    }
    for (size_t i = 0; i < named->len; i++) {
        jc_value *kw = jc__value_node(JC_TYPE_KWARG); /* a node of value.c's, freed by jc_value_free */
        if (!kw) {
            for (size_t j = 0; j < k; j++)
                jc_value_free(argv[j]);
            free(argv);
            jc_value_free(whole);
            return jc__set_error(JC_ENOMEM, "out of memory decoding arguments");
        }
        kw->u.kw.name = named->keys[i];
        kw->u.kw.val = named->u.items[i];
        kw->u.kw.val->parent = kw;
        kw->height = kw->u.kw.val->height;
        named->keys[i] = NULL;
        named->u.items[i] = NULL;
        argv[k++] = kw;
    }
    jc_value_free(whole);
    *argv_out = argv;
    *argc_out = argc;
    return 0;
}
