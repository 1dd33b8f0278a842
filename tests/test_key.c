/*
 * Golden vectors of the key (src/value/key.c, docs/format.md, key format 1).
 *
 * The hex strings below are the keys of key format version 1. They are
 * literals on purpose: if one of them fails, the key format changed, and
 * every cache file written so far silently stops hitting. That is only
 * allowed as a new key format version (JC_KEY_FORMAT_VERSION), documented in
 * docs/format.md, with these vectors updated in the same change.
 *
 * Several vectors are also computed independently here: the key input
 *     [1, name, version, [[positional...], {named...}]]
 * is written out byte by byte from the MessagePack specification and hashed
 * with XXH3-128 directly, which proves the documented format.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "jc_internal.h"
#include "testutil.h"
#include "util/keysort.h"

#define PATH_CAP 4096

/* ---- helpers ---- */

/* XXH3-128 with seed 0 of p, as 32 lowercase hex digits of its canonical
 * (big-endian) form; written without jc__key_hex on purpose. */
static void xxh3_hex(const void *p, size_t n, char hex[33])
{
    XXH128_canonical_t canon;
    XXH128_canonicalFromHash(&canon, XXH3_128bits(p, n));
    for (int k = 0; k < 16; k++)
        snprintf(hex + 2 * k, 3, "%02x", canon.digest[k]);
}

static void free_argv(jc_value *const *argv, size_t argc)
{
    for (size_t k = 0; k < argc; k++)
        jc_value_free(argv[k]);
}

/* The key of name/version/argv as hex; also checks that the key from the
 * encoded argument blob is the same. Does not free argv. */
static void key_hex(const char *name, const char *version, jc_value *const *argv, size_t argc,
                    char hex[33])
{
    uint8_t key[JC__KEY_LEN], key2[JC__KEY_LEN];
    assert_int_equal(jc__key_compute(name, version, argv, argc, key), 0);
    jc__key_hex(key, hex);

    jc__buf blob = {0};
    assert_int_equal(jc__encode_args(argv, argc, jc__buf_write, &blob), 0);
    assert_false(blob.oom);
    assert_int_equal(jc__key_from_blob(name, version, blob.data, blob.len, key2), 0);
    assert_memory_equal(key, key2, JC__KEY_LEN);
    jc__buf_free(&blob);
}

static int mismatches;

/* Compares the key of the call (argv taken over) with want. */
static void check_key(const char *want, const char *name, const char *version, jc_value *const *argv,
                      size_t argc)
{
    for (size_t k = 0; k < argc; k++)
        assert_non_null(argv[k]);
    char hex[33];
    key_hex(name, version, argv, argc, hex);
    free_argv(argv, argc);
    if (strcmp(hex, want) != 0) {
        fprintf(stderr, "key of %s/%s: got \"%s\", want \"%s\"\n", name, version, hex, want);
        mismatches++;
    }
}

#define ARGS(...) (jc_value *[]){__VA_ARGS__}, (sizeof((jc_value *[]){__VA_ARGS__}) / sizeof(jc_value *))
#define EXPECT_KEY(want, name, version, ...) check_key((want), (name), (version), ARGS(__VA_ARGS__))

/* The key of a call as hex, argv taken over. */
static void hex_of(char hex[33], const char *name, const char *version, jc_value *const *argv, size_t argc)
{
    key_hex(name, version, argv, argc, hex);
    free_argv(argv, argc);
}

/* Deterministic contents of the large arrays. */
enum { LARGE = 100000 };

static double *large_doubles(void)
{
    double *d = malloc(LARGE * sizeof *d);
    assert_non_null(d);
    for (size_t k = 0; k < LARGE; k++)
        d[k] = (double)k * 0.25 - 7.0; /* exact in binary: no libm, no rounding */
    return d;
}

static int64_t *large_ints(void)
{
    int64_t *v = malloc(LARGE * sizeof *v);
    assert_non_null(v);
    for (size_t k = 0; k < LARGE; k++)
        v[k] = (int64_t)(k * k) - 5000000000;
    return v;
}

/* ---- golden vectors ---- */

#define KEY_NO_ARGS "ffed47a5952294b81c09c5064472a99f"
#define KEY_INT_1 "cd7671b43ecfbba1a3e40295fe19ba36"
#define KEY_DOUBLE_1 "956e111720784e321e45f7beb4727318"
#define KEY_ZERO "89e8f5337a69fd19cfabd27ae405dd90"
#define KEY_NAN "87743bd1bbccd60f918643ee1cf7da15"
#define KEY_NAMED "bcb110e83adbc8d3835318f9c0eec734"
#define KEY_STRINGS "bcda85c77caacdf88e48518a363ca187"
#define KEY_BYTES "639744ce82038c1bd54162c3eff9e16d"
#define KEY_DOUBLES "0c603662fcf2af5b92e41d7c0b4ae972"
#define KEY_INTS "3feb58d058a915a1e24ee7c218f13a16"
#define KEY_NESTED "1340f014e9fc8a63861267de3c876cb9"
#define KEY_VERSION_2 "8165a0dbae58bfa913e221f82071134c"
#define KEY_NAME_G "6821b5d433fd4d1ec1ef6296bd0eeaab"
#define KEY_LARGE_DOUBLES "7ae4cfab01a6d28381546415812a7df7"
#define KEY_LARGE_INTS "a3f8ab48fab7fa97250530c7291f9f78"
#define KEY_NULL_BOOL "00d984818e8421f02c937b842f969329"
#define KEY_INT_EDGES "2f89a7268083d5e41f68deb82e123638"
#define KEY_EMPTIES "dca09151dc3d45397d2060c2a4733866"
#define KEY_LONG_NAME "fffeb4f37b02e6ee6e1a453ddc3f2e4f"
#define KEY_MAP_ARG "5235113ee14cf5dd9d2b4d00bb13c8bc"

static void key_golden_vectors(void **state)
{
    (void)state;
    mismatches = 0;
    check_key(KEY_NO_ARGS, "f", "v1", NULL, 0);
    EXPECT_KEY(KEY_INT_1, "f", "v1", jc_int(1));
    EXPECT_KEY(KEY_DOUBLE_1, "f", "v1", jc_double(1.0));
    EXPECT_KEY(KEY_ZERO, "f", "v1", jc_double(0.0));
    EXPECT_KEY(KEY_NAN, "f", "v1", jc_double(NAN));
    EXPECT_KEY(KEY_NAMED, "simulate", "v2", jc_double(0.5), jc_int(3), jc_kw("steps", jc_int(1000)),
               jc_kw("alpha", jc_str("x")));
    EXPECT_KEY(KEY_STRINGS, "f", "v1", jc_str("hello"), jc_str("héllo ✓"));
    EXPECT_KEY(KEY_BYTES, "f", "v1", jc_bytes("\0\1\2\377", 4));
    EXPECT_KEY(KEY_DOUBLES, "f", "v1", jc_doubles((double[]){1.0, -0.0, NAN, 2.5}, 4));
    EXPECT_KEY(KEY_INTS, "f", "v1", jc_ints((int64_t[]){INT64_MIN, -1, 0, 1, INT64_MAX}, 5));
    EXPECT_KEY(KEY_NESTED, "f", "v1",
               jc_list(jc_int(1), jc_map(jc_kw("b", jc_map_new()), jc_kw("a", jc_list(jc_null(), jc_bool(true))))),
               jc_kw("cfg", jc_map(jc_kw("x", jc_list(jc_double(1.5))))));
    EXPECT_KEY(KEY_VERSION_2, "f", "v2", jc_int(1));
    EXPECT_KEY(KEY_NAME_G, "g", "v1", jc_int(1));
    double *d = large_doubles();
    EXPECT_KEY(KEY_LARGE_DOUBLES, "f", "v1", jc_doubles_ref(d, LARGE));
    int64_t *i = large_ints();
    EXPECT_KEY(KEY_LARGE_INTS, "f", "v1", jc_ints_ref(i, LARGE), jc_kw("n", jc_int(LARGE)));
    EXPECT_KEY(KEY_NULL_BOOL, "f", "v1", jc_null(), jc_bool(true), jc_bool(false));
    EXPECT_KEY(KEY_INT_EDGES, "f", "v1", jc_int(INT64_MIN), jc_int(INT64_MAX), jc_int(-33), jc_int(200),
               jc_int(-1), jc_int(65536));
    EXPECT_KEY(KEY_EMPTIES, "f", "v1", jc_str(""), jc_bytes(NULL, 0), jc_list_new(), jc_map_new(),
               jc_doubles(NULL, 0), jc_ints(NULL, 0));
    EXPECT_KEY(KEY_LONG_NAME, "model/simulate_with_a_rather_long_name", "2024-01-15 (fixed seed handling)",
               jc_double(0.1));
    EXPECT_KEY(KEY_MAP_ARG, "f", "v1", jc_map(jc_kw("alpha", jc_double(0.5)), jc_kw("seed", jc_int(7))));
    free(d);
    free(i);
    assert_int_equal(mismatches, 0);
}

/* ---- key inputs other than plain values (docs/format.md, "Key inputs") ----
 *
 * Each kind is computed here from the documented bytes and compared with
 * the implementation, and pinned as a literal: a file by content (ext 4),
 * a directory by its entries (ext 4), an argument left out (ext 5). A call
 * using none of them keeps its key (the vectors above). */

#define KEY_FILE_HELLO "7c2d163dff6d77e105a3085727802393"
#define KEY_DIR_TREE "26e03b79172220f38abf748982dc47ad"
#define KEY_LEFT_OUT "07a8822123d2902353daa82322236af3"
/* f("v1", <the result whose digest is 00 01 .. 0f>) (jc_use) */
#define KEY_REF "b917823cd45b2a4881787368509ece23"

/* Writes path with text (and mode). */
static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

/* Appends a msgpack directory entry [name, type, executable, bin16 digest]. */
static size_t put_entry(unsigned char *o, const char *name, int type, bool exec, const void *content, size_t n)
{
    size_t at = 0, nl = strlen(name);
    o[at++] = 0x94;
    o[at++] = (unsigned char)(0xa0 | nl);
    memcpy(o + at, name, nl);
    at += nl;
    o[at++] = (unsigned char)type;
    o[at++] = exec ? 0xc3 : 0xc2;
    o[at++] = 0xc4;
    o[at++] = 16;
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(content, n));
    memcpy(o + at, c.digest, 16);
    return at + 16;
}

/* The key input [1, "f", "v1", [[ext 4: 1, kind, digest], {}]] hashed. */
static void file_key_hex(int kind, const unsigned char digest[16], char hex[33])
{
    unsigned char in[64] = {0x94, 0x01, 0xa1, 'f', 0xa2, 'v', '1', 0x92, 0x91, 0xc7, 18, 4, 1, (unsigned char)kind};
    memcpy(in + 14, digest, 16);
    in[30] = 0x80;
    xxh3_hex(in, 31, hex);
}

static void key_of_a_file_and_a_directory_by_their_content(void **state)
{
    (void)state;
    char dir[PATH_CAP], path[2 * PATH_CAP + 64], hex[33];
    jc_test_path(dir, sizeof dir, "keyfiles");
    snprintf(path, sizeof path, "rm -rf '%s' && mkdir -p '%s/tree/sub'", dir, dir);
    assert_int_equal(system(path), 0);
    snprintf(path, sizeof path, "%s/hello.txt", dir);
    write_text(path, "hello\n", 0644);
    /* A file: the digest of its bytes. */
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits("hello\n", 6));
    file_key_hex(1, c.digest, hex);
    char got[33];
    hex_of(got, "f", "v1", ARGS(jc_file(path)));
    assert_string_equal(got, hex);
    assert_string_equal(got, KEY_FILE_HELLO);

    /* A directory: its entries sorted by name: a.txt (file "A"), b (a
     * link to a.txt: its target text), sub (a directory holding c, an
     * executable file "C"). */
    snprintf(path, sizeof path, "%s/tree/a.txt", dir);
    write_text(path, "A", 0644);
    snprintf(path, sizeof path, "%s/tree/sub/c", dir);
    write_text(path, "C", 0755);
    snprintf(path, sizeof path, "%s/tree/b", dir);
    assert_int_equal(symlink("a.txt", path), 0);
    unsigned char sub[64], top[256];
    size_t n = 0;
    sub[n++] = 0x91;
    n += put_entry(sub + n, "c", 1, true, "C", 1);
    XXH128_canonical_t subd;
    XXH128_canonicalFromHash(&subd, XXH3_128bits(sub, n));
    size_t m = 0;
    top[m++] = 0x93;
    m += put_entry(top + m, "a.txt", 1, false, "A", 1);
    m += put_entry(top + m, "b", 3, false, "a.txt", 5);
    /* sub: its digest as the entry's (put_entry hashes content: patch in). */
    m += put_entry(top + m, "sub", 2, false, "", 0);
    memcpy(top + m - 16, subd.digest, 16);
    XXH128_canonical_t topd;
    XXH128_canonicalFromHash(&topd, XXH3_128bits(top, m));
    file_key_hex(2, topd.digest, hex);
    snprintf(path, sizeof path, "%s/tree", dir);
    hex_of(got, "f", "v1", ARGS(jc_file(path)));
    assert_string_equal(got, hex);
    assert_string_equal(got, KEY_DIR_TREE);
}

static void key_of_an_argument_left_out(void **state)
{
    (void)state;
    /* [1, "f", "v1", [[1], {"log": ext 5: 1}]] */
    static const unsigned char in[] = {0x94, 0x01, 0xa1, 'f',  0xa2, 'v', '1', 0x92, 0x91, 0x01,
                                       0x81, 0xa3, 'l',  'o',  'g',  0xd4, 5,  1};
    char hex[33], got[33];
    xxh3_hex(in, sizeof in, hex);
    jc_value *argv[2] = {jc_int(1), jc_kw("log", jc_str("/tmp/run-4242.log"))};
    bool left[2] = {false, true};
    uint8_t key[JC__KEY_LEN];
    assert_int_equal(jc__key_compute_left_out("f", "v1", argv, 2, left, key), 0);
    jc__key_hex(key, got);
    assert_string_equal(got, hex);
    assert_string_equal(got, KEY_LEFT_OUT);
    /* Whatever the value left out. */
    jc_value_free(argv[1]);
    argv[1] = jc_kw("log", jc_int(7));
    assert_int_equal(jc__key_compute_left_out("f", "v1", argv, 2, left, key), 0);
    jc__key_hex(key, got);
    assert_string_equal(got, KEY_LEFT_OUT);
    free_argv(argv, 2);
}

static void key_of_a_reference_is_the_digest_of_its_result(void **state)
{
    (void)state;
    /* [1, "f", "v1", [[ext 6: 01 + digest], {}]]: ext 8 of 17 bytes */
    unsigned char in[32] = {0x94, 0x01, 0xa1, 'f', 0xa2, 'v', '1', 0x92, 0x91, 0xc7, 0x11, 0x06, 0x01};
    unsigned char payload[JC__REF_PAYLOAD_LEN] = {1};
    for (int i = 0; i < 16; i++)
        in[13 + i] = payload[1 + i] = (unsigned char)i;
    in[29] = 0x80;
    char hex[33], got[33];
    xxh3_hex(in, 30, hex);
    jc_value *argv[1] = {jc__ref_value(7, 3, payload)};
    uint8_t key[JC__KEY_LEN];
    assert_int_equal(jc__key_compute("f", "v1", argv, 1, key), 0);
    jc__key_hex(key, got);
    assert_string_equal(got, hex);
    assert_string_equal(got, KEY_REF);
    /* Whatever the batch and call it stands for, and whatever value it
     * points at: only the digest counts. */
    jc_value *other = jc_int(5);
    jc__ref_resolve(argv[0], payload + 1, other);
    argv[0]->u.ref.batch = 99;
    assert_int_equal(jc__key_compute("f", "v1", argv, 1, key), 0);
    jc__key_hex(key, got);
    assert_string_equal(got, KEY_REF);
    /* An unresolved reference has no key. */
    jc_value *bare = jc__ref_value(7, 3, NULL);
    assert_int_equal(jc__key_compute("f", "v1", &bare, 1, key), JC_EINVAL);
    assert_non_null(strstr(jc_errmsg(), "not resolved"));
    jc_value_free(bare);
    jc_value_free(other);
    free_argv(argv, 1);
}

/* ---- the same keys, computed independently from the documented format ---- */

static void key_no_args_from_hand_written_bytes(void **state)
{
    (void)state;
    /* [1, "f", "v1", [[], {}]] */
    static const unsigned char in[] = {0x94, 0x01, 0xa1, 'f', 0xa2, 'v', '1', 0x92, 0x90, 0x80};
    char hex[33];
    xxh3_hex(in, sizeof in, hex);
    assert_string_equal(hex, KEY_NO_ARGS);
}

static void key_int_and_double_from_hand_written_bytes(void **state)
{
    (void)state;
    /* [1, "f", "v1", [[1], {}]] */
    static const unsigned char in_int[] = {0x94, 0x01, 0xa1, 'f', 0xa2, 'v', '1', 0x92, 0x91, 0x01, 0x80};
    /* [1, "f", "v1", [[1.0], {}]] */
    static const unsigned char in_double[] = {0x94, 0x01, 0xa1, 'f', 0xa2, 'v', '1', 0x92, 0x91,
                                              0xcb, 0x3f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80};
    char hex[33];
    xxh3_hex(in_int, sizeof in_int, hex);
    assert_string_equal(hex, KEY_INT_1);
    xxh3_hex(in_double, sizeof in_double, hex);
    assert_string_equal(hex, KEY_DOUBLE_1);
}

static void key_named_args_from_hand_written_bytes(void **state)
{
    (void)state;
    /* [1, "simulate", "v2", [[0.5, 3], {"alpha": "x", "steps": 1000}]] */
    static const unsigned char in[] = {
        0x94, 0x01,
        0xa8, 's', 'i', 'm', 'u', 'l', 'a', 't', 'e',
        0xa2, 'v', '2',
        0x92,
        0x92, 0xcb, 0x3f, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
        0x82, 0xa5, 'a', 'l', 'p', 'h', 'a', 0xa1, 'x',
              0xa5, 's', 't', 'e', 'p', 's', 0xcd, 0x03, 0xe8,
    };
    char hex[33];
    xxh3_hex(in, sizeof in, hex);
    assert_string_equal(hex, KEY_NAMED);
}

static void key_doubles_array_from_hand_written_bytes(void **state)
{
    (void)state;
    /* [1, "f", "v1", [[ext1 [1.0, -0.0 -> 0.0, NaN -> 7ff8.., 2.5]], {}]] */
    static const unsigned char in[] = {
        0x94, 0x01, 0xa1, 'f', 0xa2, 'v', '1', 0x92, 0x91,
        0xc7, 0x20, 0x01,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x7f,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x40,
        0x80,
    };
    char hex[33];
    xxh3_hex(in, sizeof in, hex);
    assert_string_equal(hex, KEY_DOUBLES);
}

static void key_large_array_from_hand_written_bytes(void **state)
{
    (void)state;
    /* An argument of 64 KiB or more enters the key as its digest:
     * [1, "f", "v1", [[ext8 type 3: kind 1, count u64 LE, XXH3-128 of the
     * little-endian payload], {}]]. The 800000 bytes are hashed once. */
    unsigned char *payload = malloc((size_t)LARGE * 8);
    assert_non_null(payload);
    double *d = large_doubles();
    for (size_t k = 0; k < LARGE; k++) {
        uint64_t bits;
        memcpy(&bits, &d[k], 8);
        for (int b = 0; b < 8; b++)
            payload[k * 8 + (size_t)b] = (unsigned char)(bits >> (8 * b));
    }
    XXH128_canonical_t digest;
    XXH128_canonicalFromHash(&digest, XXH3_128bits(payload, (size_t)LARGE * 8));
    unsigned char in[64] = {0x94, 0x01, 0xa1, 'f', 0xa2, 'v', '1', 0x92, 0x91, 0xc7, 25, 0x03, 0x01};
    size_t at = 13;
    for (int b = 0; b < 8; b++)
        in[at++] = (unsigned char)((uint64_t)LARGE >> (8 * b));
    memcpy(in + at, digest.digest, 16);
    at += 16;
    in[at++] = 0x80;
    char hex[33];
    xxh3_hex(in, at, hex);
    assert_string_equal(hex, KEY_LARGE_DOUBLES);
    free(d);
    free(payload);
}

static void key_worked_example_of_format_md(void **state)
{
    (void)state;
    /* docs/format.md: simulate(0.5, 3, steps=1000), version "v2". */
    static const unsigned char in[] = {
        0x94, 0x01, 0xa8, 's', 'i', 'm', 'u', 'l', 'a', 't', 'e', 0xa2, 'v', '2',
        0x92, 0x92, 0xcb, 0x3f, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
        0x81, 0xa5, 's', 't', 'e', 'p', 's', 0xcd, 0x03, 0xe8,
    };
    static const char want[] = "258e5c6d66120f9f383bfe05291df482";
    char hex[33];
    xxh3_hex(in, sizeof in, hex);
    assert_string_equal(hex, want);
    hex_of(hex, "simulate", "v2", ARGS(jc_double(0.5), jc_int(3), jc_kw("steps", jc_int(1000))));
    assert_string_equal(hex, want);
}

/* ---- properties ---- */

static void key_negative_zero_and_zero_give_the_same_key(void **state)
{
    (void)state;
    char a[33], b[33];
    hex_of(a, "f", "v1", ARGS(jc_double(-0.0)));
    hex_of(b, "f", "v1", ARGS(jc_double(0.0)));
    assert_string_equal(a, b);
    assert_string_equal(a, KEY_ZERO);
    hex_of(a, "f", "v1", ARGS(jc_doubles((double[]){-0.0, 1}, 2)));
    hex_of(b, "f", "v1", ARGS(jc_doubles((double[]){0.0, 1}, 2)));
    assert_string_equal(a, b);
}

static void key_different_nans_give_the_same_key(void **state)
{
    (void)state;
    const uint64_t nans[] = {UINT64_C(0x7ff8000000000000), UINT64_C(0xfff8000000000000),
                             UINT64_C(0x7ff0000000000001), UINT64_C(0x7ffabcdef0123456)};
    for (size_t k = 0; k < sizeof nans / sizeof *nans; k++) {
        double d;
        memcpy(&d, &nans[k], 8);
        char hex[33];
        hex_of(hex, "f", "v1", ARGS(jc_double(d)));
        assert_string_equal(hex, KEY_NAN);
        char a[33], b[33];
        hex_of(a, "f", "v1", ARGS(jc_doubles((double[]){1, d}, 2)));
        hex_of(b, "f", "v1", ARGS(jc_doubles((double[]){1, NAN}, 2)));
        assert_string_equal(a, b);
    }
}

static void key_named_args_in_any_order_give_the_same_key(void **state)
{
    (void)state;
    char a[33], b[33], c[33];
    hex_of(a, "simulate", "v2",
           ARGS(jc_kw("alpha", jc_str("x")), jc_double(0.5), jc_kw("steps", jc_int(1000)), jc_int(3)));
    hex_of(b, "simulate", "v2",
           ARGS(jc_double(0.5), jc_kw("steps", jc_int(1000)), jc_int(3), jc_kw("alpha", jc_str("x"))));
    hex_of(c, "simulate", "v2",
           ARGS(jc_double(0.5), jc_int(3), jc_kw("alpha", jc_str("x")), jc_kw("steps", jc_int(1000))));
    assert_string_equal(a, KEY_NAMED);
    assert_string_equal(b, KEY_NAMED);
    assert_string_equal(c, KEY_NAMED);
}

static void key_borrowed_and_owned_arrays_give_the_same_key(void **state)
{
    (void)state;
    double *d = large_doubles();
    int64_t *i = large_ints();
    char a[33], b[33];
    hex_of(a, "f", "v1", ARGS(jc_doubles(d, LARGE)));
    assert_string_equal(a, KEY_LARGE_DOUBLES);
    hex_of(a, "f", "v1", ARGS(jc_ints(i, LARGE), jc_kw("n", jc_int(LARGE))));
    assert_string_equal(a, KEY_LARGE_INTS);
    hex_of(a, "f", "v1", ARGS(jc_ints_ref(i, 3)));
    hex_of(b, "f", "v1", ARGS(jc_ints(i, 3)));
    assert_string_equal(a, b);
    free(d);
    free(i);
}

static void key_changes_with_function_version_and_name(void **state)
{
    (void)state;
    char a[33], b[33];
    assert_string_not_equal(KEY_INT_1, KEY_VERSION_2);
    assert_string_not_equal(KEY_INT_1, KEY_NAME_G);
    assert_string_not_equal(KEY_VERSION_2, KEY_NAME_G);
    /* The name/version boundary is part of the encoding. */
    hex_of(a, "ab", "c", ARGS(jc_int(1)));
    hex_of(b, "a", "bc", ARGS(jc_int(1)));
    assert_string_not_equal(a, b);
    hex_of(a, "f", "v1", ARGS(jc_int(1)));
    hex_of(b, "f", "v1 ", ARGS(jc_int(1)));
    assert_string_not_equal(a, b);
}

static void key_distinguishes_values_that_differ(void **state)
{
    (void)state;
    assert_string_not_equal(KEY_INT_1, KEY_DOUBLE_1); /* 1 is not 1.0 */
    struct {
        const char *what;
        char a[33], b[33];
    } pairs[9];
    size_t n = 0;
    pairs[n].what = "int 1 vs true";
    hex_of(pairs[n].a, "f", "v1", ARGS(jc_int(1)));
    hex_of(pairs[n++].b, "f", "v1", ARGS(jc_bool(true)));
    pairs[n].what = "str vs bytes";
    hex_of(pairs[n].a, "f", "v1", ARGS(jc_str("ab")));
    hex_of(pairs[n++].b, "f", "v1", ARGS(jc_bytes("ab", 2)));
    pairs[n].what = "doubles array vs list of doubles";
    hex_of(pairs[n].a, "f", "v1", ARGS(jc_doubles((double[]){1, 2}, 2)));
    hex_of(pairs[n++].b, "f", "v1", ARGS(jc_list(jc_double(1), jc_double(2))));
    pairs[n].what = "doubles array vs ints array";
    hex_of(pairs[n].a, "f", "v1", ARGS(jc_doubles((double[]){0}, 1)));
    hex_of(pairs[n++].b, "f", "v1", ARGS(jc_ints((int64_t[]){0}, 1)));
    pairs[n].what = "two arguments vs one list";
    hex_of(pairs[n].a, "f", "v1", ARGS(jc_int(1), jc_int(2)));
    hex_of(pairs[n++].b, "f", "v1", ARGS(jc_list(jc_int(1), jc_int(2))));
    pairs[n].what = "positional vs named";
    hex_of(pairs[n].a, "f", "v1", ARGS(jc_int(1)));
    hex_of(pairs[n++].b, "f", "v1", ARGS(jc_kw("x", jc_int(1))));
    pairs[n].what = "named vs a map argument";
    hex_of(pairs[n].a, "f", "v1", ARGS(jc_kw("x", jc_int(1))));
    hex_of(pairs[n++].b, "f", "v1", ARGS(jc_map(jc_kw("x", jc_int(1)))));
    pairs[n].what = "argument order";
    hex_of(pairs[n].a, "f", "v1", ARGS(jc_int(1), jc_int(2)));
    hex_of(pairs[n++].b, "f", "v1", ARGS(jc_int(2), jc_int(1)));
    pairs[n].what = "no argument vs null";
    hex_of(pairs[n].a, "f", "v1", NULL, 0);
    hex_of(pairs[n++].b, "f", "v1", ARGS(jc_null()));
    for (size_t k = 0; k < n; k++)
        if (strcmp(pairs[k].a, pairs[k].b) == 0) {
            fprintf(stderr, "%s: same key %s\n", pairs[k].what, pairs[k].a);
            fail();
        }
}

static void key_streaming_matches_one_shot_around_buffer_size(void **state)
{
    (void)state;
    /* The key input goes through a 1024-byte buffer and then a streaming
     * XXH3 state; whatever the length, the key is the one-shot XXH3-128 of
     * the whole input. */
    static const unsigned char head[] = {0x94, 0x01, 0xa1, 'f', 0xa2, 'v', '1'};
    unsigned char *raw = malloc(5000);
    assert_non_null(raw);
    for (size_t k = 0; k < 5000; k++)
        raw[k] = (unsigned char)(k * 31 + 7);
    const size_t lens[] = {0, 1, 990, 1000, 1005, 1006, 1007, 1008, 1010, 1014, 1015, 1016, 1017,
                           1020, 1024, 1030, 2000, 2030, 2040, 2048, 4096, 5000};
    for (size_t t = 0; t < sizeof lens / sizeof *lens; t++) {
        jc_value *argv[] = {jc_bytes(raw, lens[t]), jc_kw("k", jc_bytes(raw, lens[t] / 2))};
        jc__buf in = {0};
        assert_int_equal(jc__buf_write(&in, (const char *)head, sizeof head), 0);
        assert_int_equal(jc__encode_args(argv, 2, jc__buf_write, &in), 0);
        char want[33], got[33];
        xxh3_hex(in.data, in.len, want);
        key_hex("f", "v1", argv, 2, got);
        if (strcmp(want, got) != 0) {
            fprintf(stderr, "bytes of %zu: key %s, XXH3 of the input %s\n", lens[t], got, want);
            fail();
        }
        jc__buf_free(&in);
        free_argv(argv, 2);
    }
    free(raw);
}

static void key_hex_is_32_lowercase_digits(void **state)
{
    (void)state;
    uint8_t key[JC__KEY_LEN];
    for (int k = 0; k < JC__KEY_LEN; k++)
        key[k] = (uint8_t)(k * 17 + 10);
    char hex[2 * JC__KEY_LEN + 1];
    memset(hex, 'X', sizeof hex);
    jc__key_hex(key, hex);
    assert_string_equal(hex, "0a1b2c3d4e5f708192a3b4c5d6e7f809");
    assert_int_equal(JC_KEY_FORMAT_VERSION, 1);
}

static void key_compute_refuses_bad_arguments(void **state)
{
    (void)state;
    uint8_t key[JC__KEY_LEN];
    jc_value *dup[] = {jc_kw("a", jc_int(1)), jc_kw("a", jc_int(2))};
    assert_int_equal(jc__key_compute("f", "v1", dup, 2, key), JC_EINVAL);
    expect_error(JC_EINVAL, "named argument \"a\" is given twice");
    free_argv(dup, 2);

    /* A value nested too deep, and a jc_kw of a jc_kw, cannot be built
     * (the builders refuse them: test_value), so no key is made of one. */
    jc_value *deep = jc_int(1);
    for (int k = 0; k <= JC__MAX_DEPTH; k++)
        deep = jc_list(deep);
    assert_null(deep);
    expect_error(JC_EINVAL, "nested more than 24 levels deep");

    assert_null(jc_kw("a", jc_kw("b", jc_int(1))));
    expect_error(JC_EINVAL, "the value is itself a jc_kw named value");
}

static int cmp_first16(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/* Orders records of equal keys (in runs, keys sorted) by all their bytes. */
static void sort_equal_keys_by_all_bytes(uint8_t *r, size_t n, size_t size)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && memcmp(r + size * (j - 1), r + size * j, 16) == 0 &&
                           memcmp(r + size * (j - 1), r + size * j, size) > 0; j--) {
            uint8_t t[64];
            memcpy(t, r + size * j, size);
            memcpy(r + size * j, r + size * (j - 1), size);
            memcpy(r + size * (j - 1), t, size);
        }
}

/* jc__keysort orders records as qsort by memcmp of their first 16 bytes
 * does, whatever the keys: hashes (spread evenly), keys that share their
 * leading bytes (all in one bucket: not hashes, as a hostile file's lease
 * rows could be), duplicates, few records; and carries each record's
 * other bytes with its key. So does jc__keysort_move, which may hand the
 * records back in a buffer of its own; each record size it sorts by a
 * path of its own (16, 20) and any other (24, 64). */
static void keysort_orders_as_memcmp_does(void **state)
{
    (void)state;
    const size_t sizes[] = {16, 20, 24, 64};
    const size_t counts[] = {0, 1, 2, 63, 64, 65, 1000, 70000};
    uint64_t seed = 12345;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++)
            for (int kind = 0; kind < 3; kind++) {
                size_t size = sizes[si], n = counts[ci];
                uint8_t *a = malloc(n * size + 1), *b = malloc(n * size + 1);
                assert_non_null(a);
                assert_non_null(b);
                for (size_t i = 0; i < n * size; i++) {
                    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                    a[i] = (uint8_t)(seed >> 56);
                }
                for (size_t i = 0; i < n; i++) {
                    uint8_t *r = a + size * i;
                    if (kind == 1) /* one bucket: the leading bytes equal */
                        memset(r, 0xab, 8);
                    if (kind == 2 && i % 3) /* duplicates of the record before */
                        memcpy(r, r - size, 16);
                    /* the record's own bytes after its key say which it was */
                    if (size >= 20)
                        memcpy(r + 16, &(uint32_t){(uint32_t)i}, 4);
                }
                memcpy(b, a, n * size);
                if ((ci + (size_t)kind) % 2)
                    a = jc__keysort_move(a, n, size);
                else
                    jc__keysort(a, n, size);
                assert_non_null(a);
                if (n)
                    qsort(b, n, size, cmp_first16);
                for (size_t i = 0; i < n; i++) {
                    if (memcmp(a + size * i, b + size * i, 16) != 0)
                        fail_msg("size %zu, n %zu, kind %d: record %zu's key differs from qsort's", size, n, kind, i);
                    if (i && memcmp(a + size * (i - 1), a + size * i, 16) > 0)
                        fail_msg("size %zu, n %zu, kind %d: records %zu and %zu out of order", size, n, kind, i - 1, i);
                }
                /* every record is still there, whole: sorted by all its bytes, both are equal */
                if (n) {
                    uint8_t *c = malloc(n * size);
                    assert_non_null(c);
                    memcpy(c, a, n * size);
                    sort_equal_keys_by_all_bytes(c, n, size);
                    sort_equal_keys_by_all_bytes(b, n, size);
                    if (memcmp(b, c, n * size) != 0)
                        fail_msg("size %zu, n %zu, kind %d: the records are not those given", size, n, kind);
                    free(c);
                }
                free(a);
                free(b);
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_golden_vectors),
        cmocka_unit_test(keysort_orders_as_memcmp_does),
        cmocka_unit_test(key_no_args_from_hand_written_bytes),
        cmocka_unit_test(key_int_and_double_from_hand_written_bytes),
        cmocka_unit_test(key_of_a_file_and_a_directory_by_their_content),
        cmocka_unit_test(key_of_an_argument_left_out),
        cmocka_unit_test(key_of_a_reference_is_the_digest_of_its_result),
        cmocka_unit_test(key_named_args_from_hand_written_bytes),
        cmocka_unit_test(key_doubles_array_from_hand_written_bytes),
        cmocka_unit_test(key_large_array_from_hand_written_bytes),
        cmocka_unit_test(key_worked_example_of_format_md),
        cmocka_unit_test(key_negative_zero_and_zero_give_the_same_key),
        cmocka_unit_test(key_different_nans_give_the_same_key),
        cmocka_unit_test(key_named_args_in_any_order_give_the_same_key),
        cmocka_unit_test(key_borrowed_and_owned_arrays_give_the_same_key),
        cmocka_unit_test(key_changes_with_function_version_and_name),
        cmocka_unit_test(key_distinguishes_values_that_differ),
        cmocka_unit_test(key_streaming_matches_one_shot_around_buffer_size),
        cmocka_unit_test(key_hex_is_32_lowercase_digits),
        cmocka_unit_test(key_compute_refuses_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
