/*
 * Tests of the canonical encoding (src/value/codec.c, docs/format.md).
 *
 * The expected bytes are written out by hand from the MessagePack
 * specification, not produced by the encoder: a change in the encoding
 * changes every key, so it must fail here first.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <xxhash.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jc_internal.h"
#include "testutil.h"

/* ---- helpers ---- */

static void dump(const char *label, const unsigned char *p, size_t n)
{
    fprintf(stderr, "%s (%zu bytes):", label, n);
    for (size_t i = 0; i < n && i < 64; i++)
        fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, n > 64 ? " ...\n" : "\n");
}

static void expect_same_bytes(const void *got, size_t got_len, const void *want, size_t want_len)
{
    if (got_len != want_len || memcmp(got, want, want_len) != 0) {
        dump("got ", got, got_len);
        dump("want", want, want_len);
        fail();
    }
}

/* Encodes v (taken over), compares with want, and checks that the bytes
 * decode back to a value equal to v that encodes to the same bytes. */
static void expect_bytes(jc_value *v, const unsigned char *want, size_t want_len)
{
    assert_non_null(v);
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(jc_value_encode(v, &buf, &len), 0);
    expect_same_bytes(buf, len, want, want_len);
    jc_value *back = NULL;
    assert_int_equal(jc_value_decode(buf, len, &back), 0);
    assert_true(jc_value_equal(v, back));
    void *again = NULL;
    size_t again_len = 0;
    assert_int_equal(jc_value_encode(back, &again, &again_len), 0);
    expect_same_bytes(again, again_len, want, want_len);
    free(again);
    jc_value_free(back);
    free(buf);
    jc_value_free(v);
}

#define EXPECT_BYTES(v, ...)                                                   \
    do {                                                                     \
        static const unsigned char want_[] = {__VA_ARGS__};                  \
        expect_bytes((v), want_, sizeof want_);                              \
    } while (0)

/* Decoding bytes fails with JC_EDECODE, a message containing what, and
 * leaves *out NULL. */
static void expect_decode_error(const void *p, size_t n, const char *what)
{
    jc_value *v = (jc_value *)&v; /* not NULL, to see that it is reset */
    int rc = jc_value_decode(p, n, &v);
    if (rc != JC_EDECODE)
        dump("decoded", p, n);
    expect_rc(rc, JC_EDECODE, what);
    assert_null(v);
}

#define EXPECT_DECODE_ERROR(what, ...)                                         \
    do {                                                                     \
        static const unsigned char in_[] = {__VA_ARGS__};                    \
        expect_decode_error(in_, sizeof in_, (what));                        \
    } while (0)

/* Encodes v (not taken over) into a new buffer. */
static unsigned char *encode(const jc_value *v, size_t *len)
{
    void *buf = NULL;
    assert_int_equal(jc_value_encode(v, &buf, len), 0);
    return buf;
}

static double bits_to_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* Nested lists: depth levels, the innermost holding an int. */
static jc_value *nested_lists(int depth)
{
    jc_value *v = jc_int(1);
    for (int k = 0; k < depth; k++)
        v = jc_list(v);
    return v;
}

static jc_value *nested_maps(int depth)
{
    jc_value *v = jc_int(1);
    for (int k = 0; k < depth; k++)
        v = jc_map(jc_kw("k", v));
    return v;
}

/* ---- exact bytes ---- */

static void codec_nil_and_bools(void **state)
{
    (void)state;
    EXPECT_BYTES(jc_null(), 0xc0);
    EXPECT_BYTES(jc_bool(false), 0xc2);
    EXPECT_BYTES(jc_bool(true), 0xc3);
}

static void codec_ints_take_the_shortest_form(void **state)
{
    (void)state;
    EXPECT_BYTES(jc_int(0), 0x00);
    EXPECT_BYTES(jc_int(1), 0x01);
    EXPECT_BYTES(jc_int(127), 0x7f);
    EXPECT_BYTES(jc_int(128), 0xcc, 0x80);
    EXPECT_BYTES(jc_int(200), 0xcc, 0xc8);
    EXPECT_BYTES(jc_int(255), 0xcc, 0xff);
    EXPECT_BYTES(jc_int(256), 0xcd, 0x01, 0x00);
    EXPECT_BYTES(jc_int(65535), 0xcd, 0xff, 0xff);
    EXPECT_BYTES(jc_int(65536), 0xce, 0x00, 0x01, 0x00, 0x00);
    EXPECT_BYTES(jc_int(4294967295), 0xce, 0xff, 0xff, 0xff, 0xff);
    EXPECT_BYTES(jc_int(4294967296), 0xcf, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00);
    EXPECT_BYTES(jc_int(INT64_MAX), 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    EXPECT_BYTES(jc_int(-1), 0xff);
    EXPECT_BYTES(jc_int(-32), 0xe0);
    EXPECT_BYTES(jc_int(-33), 0xd0, 0xdf);
    EXPECT_BYTES(jc_int(-128), 0xd0, 0x80);
    EXPECT_BYTES(jc_int(-129), 0xd1, 0xff, 0x7f);
    EXPECT_BYTES(jc_int(-32768), 0xd1, 0x80, 0x00);
    EXPECT_BYTES(jc_int(-32769), 0xd2, 0xff, 0xff, 0x7f, 0xff);
    EXPECT_BYTES(jc_int(INT32_MIN), 0xd2, 0x80, 0x00, 0x00, 0x00);
    EXPECT_BYTES(jc_int((int64_t)INT32_MIN - 1), 0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff);
    EXPECT_BYTES(jc_int(INT64_MIN), 0xd3, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
}

static void codec_doubles_are_always_float64(void **state)
{
    (void)state;
    EXPECT_BYTES(jc_double(1.0), 0xcb, 0x3f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
    EXPECT_BYTES(jc_double(1.5), 0xcb, 0x3f, 0xf8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
    EXPECT_BYTES(jc_double(-2.0), 0xcb, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
    EXPECT_BYTES(jc_double(0.1), 0xcb, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a);
    EXPECT_BYTES(jc_double(0.0), 0xcb, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
    EXPECT_BYTES(jc_double(INFINITY), 0xcb, 0x7f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
    EXPECT_BYTES(jc_double(-INFINITY), 0xcb, 0xff, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
    EXPECT_BYTES(jc_double(4.9e-324), 0xcb, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01);
}

static void codec_negative_zero_encodes_as_positive_zero(void **state)
{
    (void)state;
    EXPECT_BYTES(jc_double(-0.0), 0xcb, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
}

static void codec_every_nan_encodes_as_the_one_quiet_nan(void **state)
{
    (void)state;
    const uint64_t nans[] = {
        UINT64_C(0x7ff8000000000000), /* the canonical one */
        UINT64_C(0xfff8000000000000), /* negative */
        UINT64_C(0x7ff0000000000001), /* signalling, payload 1 */
        UINT64_C(0x7ff8000000000123), /* quiet with a payload */
        UINT64_C(0xffffffffffffffff), /* everything set */
    };
    for (size_t k = 0; k < sizeof nans / sizeof *nans; k++) {
        double d = bits_to_double(nans[k]);
        assert_true(isnan(d));
        EXPECT_BYTES(jc_double(d), 0xcb, 0x7f, 0xf8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
    }
    EXPECT_BYTES(jc_double(NAN), 0xcb, 0x7f, 0xf8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
    EXPECT_BYTES(jc_double(-NAN), 0xcb, 0x7f, 0xf8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
}

static void codec_strings_are_utf8_str(void **state)
{
    (void)state;
    EXPECT_BYTES(jc_str(""), 0xa0);
    EXPECT_BYTES(jc_str("a"), 0xa1, 0x61);
    EXPECT_BYTES(jc_str("é✓"), 0xa5, 0xc3, 0xa9, 0xe2, 0x9c, 0x93);

    /* 31 bytes: fixstr; 32: str8; 256: str16. */
    char text[300];
    memset(text, 'x', sizeof text);
    const size_t lens[] = {31, 32, 255, 256, 299};
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
        size_t n = lens[k];
        unsigned char want[310];
        size_t h = 0;
        if (n < 32)
            want[h++] = (unsigned char)(0xa0 | n);
        else if (n < 256)
            want[h++] = 0xd9, want[h++] = (unsigned char)n;
        else
            want[h++] = 0xda, want[h++] = (unsigned char)(n >> 8), want[h++] = (unsigned char)n;
        memcpy(want + h, text, n);
        expect_bytes(jc_strn(text, n), want, h + n);
    }
}

static void codec_bytes_are_bin(void **state)
{
    (void)state;
    EXPECT_BYTES(jc_bytes(NULL, 0), 0xc4, 0x00);
    EXPECT_BYTES(jc_bytes("\0\1\377", 3), 0xc4, 0x03, 0x00, 0x01, 0xff);
    unsigned char raw[256], want[259] = {0xc5, 0x01, 0x00};
    for (int k = 0; k < 256; k++)
        raw[k] = want[3 + k] = (unsigned char)k;
    expect_bytes(jc_bytes(raw, sizeof raw), want, sizeof want);
}

static void codec_double_arrays_are_ext1_little_endian(void **state)
{
    (void)state;
    /* 0 bytes: ext8; 8 and 16 bytes: fixext8 / fixext16; else ext8/16/32. */
    EXPECT_BYTES(jc_doubles(NULL, 0), 0xc7, 0x00, 0x01);
    EXPECT_BYTES(jc_doubles((double[]){1.0}, 1), 0xd7, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f);
    EXPECT_BYTES(jc_doubles((double[]){1.0, -2.0}, 2), 0xd8, 0x01,
                 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f,
                 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0);
    EXPECT_BYTES(jc_doubles((double[]){0.5, 2.0, 0.1}, 3), 0xc7, 0x18, 0x01,
                 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x3f,
                 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40,
                 0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0x3f);
}

static void codec_double_arrays_canonicalise_negative_zero_and_nan(void **state)
{
    (void)state;
    double d[3] = {-0.0, bits_to_double(UINT64_C(0xfff0000000000042)), 2.0};
    unsigned char want[3 + 24] = {0xc7, 0x18, 0x01,
                                  0, 0, 0, 0, 0, 0, 0x00, 0x00, /* -0.0 -> +0.0 */
                                  0, 0, 0, 0, 0, 0, 0xf8, 0x7f, /* NaN -> 7ff8000000000000 */
                                  0, 0, 0, 0, 0, 0, 0x00, 0x40};
    expect_bytes(jc_doubles(d, 3), want, sizeof want);
    expect_bytes(jc_doubles_ref(d, 3), want, sizeof want);
    /* The caller's memory is left as it was. */
    assert_true(signbit(d[0]));
    uint64_t bits;
    memcpy(&bits, &d[1], 8);
    assert_true(bits == UINT64_C(0xfff0000000000042));
}

static void codec_long_double_array_canonicalised_in_every_chunk(void **state)
{
    (void)state;
    /* Longer than the encoder's 512-element chunks, with values to fix in
     * the second and the last (partial) chunk only. */
    enum { N = 1300 };
    double *d = malloc(N * sizeof *d);
    assert_non_null(d);
    for (size_t k = 0; k < N; k++)
        d[k] = (double)k * 0.5;
    d[700] = -0.0;
    d[701] = bits_to_double(UINT64_C(0x7ff0000000000001));
    d[N - 1] = -NAN;
    size_t want_len = 4 + N * 8;
    unsigned char *want = malloc(want_len);
    assert_non_null(want);
    want[0] = 0xc8; /* ext16: 10400 bytes */
    want[1] = (N * 8) >> 8, want[2] = (N * 8) & 0xff;
    want[3] = 0x01;
    for (size_t k = 0; k < N; k++) {
        double x = d[k];
        if (isnan(x))
            x = NAN;
        if (x == 0)
            x = 0.0;
        uint64_t bits;
        memcpy(&bits, &x, 8);
        if (isnan(x))
            bits = UINT64_C(0x7ff8000000000000);
        for (int b = 0; b < 8; b++)
            want[4 + 8 * k + (size_t)b] = (unsigned char)(bits >> (8 * b));
    }
    assert_int_equal(want[4 + 700 * 8 + 7], 0x00);
    assert_int_equal(want[4 + 701 * 8 + 6], 0xf8);
    expect_bytes(jc_doubles_ref(d, N), want, want_len);
    expect_bytes(jc_doubles(d, N), want, want_len);
    free(want);
    free(d);
}

static void codec_int_arrays_are_ext2_little_endian(void **state)
{
    (void)state;
    EXPECT_BYTES(jc_ints(NULL, 0), 0xc7, 0x00, 0x02);
    EXPECT_BYTES(jc_ints((int64_t[]){1}, 1), 0xd7, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
    EXPECT_BYTES(jc_ints((int64_t[]){-1, 0x0102030405060708}, 2), 0xd8, 0x02,
                 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01);
    EXPECT_BYTES(jc_ints_ref((int64_t[]){INT64_MIN, 0, 200}, 3), 0xc7, 0x18, 0x02,
                 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80,
                 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                 0xc8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
    /* 32 elements: 256 bytes, ext16. */
    int64_t v[32];
    unsigned char want[4 + 256] = {0xc8, 0x01, 0x00, 0x02};
    for (int k = 0; k < 32; k++) {
        v[k] = k;
        want[4 + 8 * k] = (unsigned char)k;
    }
    expect_bytes(jc_ints(v, 32), want, sizeof want);
}

static void codec_lists_are_arrays(void **state)
{
    (void)state;
    EXPECT_BYTES(jc_list_new(), 0x90);
    EXPECT_BYTES(jc_list(jc_int(1), jc_str("a"), jc_null()), 0x93, 0x01, 0xa1, 0x61, 0xc0);
    EXPECT_BYTES(jc_list(jc_list_new(), jc_list(jc_map_new())), 0x92, 0x90, 0x91, 0x80);
    jc_value *l = jc_list_new();
    unsigned char want[3 + 16] = {0xdc, 0x00, 0x10};
    for (int k = 0; k < 16; k++) {
        assert_int_equal(jc_list_append(l, jc_int(k)), 0);
        want[3 + k] = (unsigned char)k;
    }
    expect_bytes(l, want, sizeof want);
}

static void codec_map_keys_are_sorted_str(void **state)
{
    (void)state;
    EXPECT_BYTES(jc_map_new(), 0x80);
    EXPECT_BYTES(jc_map(jc_kw("b", jc_int(1)), jc_kw("a", jc_int(2))),
                 0x82, 0xa1, 0x61, 0x02, 0xa1, 0x62, 0x01);
    /* Byte order: "B" < "a" < "ab". */
    EXPECT_BYTES(jc_map(jc_kw("ab", jc_null()), jc_kw("a", jc_bool(true)), jc_kw("B", jc_list_new())),
                 0x83, 0xa1, 0x42, 0x90, 0xa1, 0x61, 0xc3, 0xa2, 0x61, 0x62, 0xc0);
    /* The same map built with jc_map_set in another order. */
    jc_value *m = jc_map_new();
    assert_int_equal(jc_map_set(m, "a", jc_bool(true)), 0);
    assert_int_equal(jc_map_set(m, "ab", jc_null()), 0);
    assert_int_equal(jc_map_set(m, "B", jc_list_new()), 0);
    EXPECT_BYTES(m, 0x83, 0xa1, 0x42, 0x90, 0xa1, 0x61, 0xc3, 0xa2, 0x61, 0x62, 0xc0);
    /* 16 entries: map16. */
    m = jc_map_new();
    unsigned char want[3 + 16 * 3] = {0xde, 0x00, 0x10};
    for (int k = 0; k < 16; k++) {
        char key[2] = {(char)('a' + k), 0};
        assert_int_equal(jc_map_set(m, key, jc_int(k)), 0);
        want[3 + 3 * k] = 0xa1;
        want[4 + 3 * k] = (unsigned char)('a' + k);
        want[5 + 3 * k] = (unsigned char)k;
    }
    expect_bytes(m, want, sizeof want);
}

static void codec_nested_value_bytes(void **state)
{
    (void)state;
    /* {"x": [1, 2.0, {"y": "z"}], "n": null} */
    EXPECT_BYTES(jc_map(jc_kw("x", jc_list(jc_int(1), jc_double(2.0), jc_map(jc_kw("y", jc_str("z"))))),
                        jc_kw("n", jc_null())),
                 0x82, 0xa1, 0x6e, 0xc0, 0xa1, 0x78, 0x93, 0x01,
                 0xcb, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                 0x81, 0xa1, 0x79, 0xa1, 0x7a);
}

/* ---- roundtrips ---- */

static void roundtrip(jc_value *v)
{
    assert_non_null(v);
    size_t len;
    unsigned char *buf = encode(v, &len);
    jc_value *back = NULL;
    assert_int_equal(jc_value_decode(buf, len, &back), 0);
    assert_non_null(back);
    assert_int_equal(jc_value_type(back), jc_value_type(v));
    assert_true(jc_value_equal(v, back));
    size_t len2;
    unsigned char *buf2 = encode(back, &len2);
    expect_same_bytes(buf2, len2, buf, len);
    free(buf2);
    free(buf);
    jc_value_free(back);
    jc_value_free(v);
}

static void codec_roundtrip_every_type(void **state)
{
    (void)state;
    roundtrip(jc_null());
    roundtrip(jc_bool(true));
    roundtrip(jc_bool(false));
    const int64_t ints[] = {0, 1, -1, 127, 128, -32, -33, 255, 256, -128, -129, 65535, 65536, -32768,
                            -32769, INT32_MAX, INT32_MIN, (int64_t)UINT32_MAX + 1, INT64_MAX, INT64_MIN};
    for (size_t k = 0; k < sizeof ints / sizeof *ints; k++)
        roundtrip(jc_int(ints[k]));
    const double ds[] = {0.0, 1.0, -1.5, 0.1, 1e300, -1e-300, 4.9e-324, INFINITY, -INFINITY, NAN};
    for (size_t k = 0; k < sizeof ds / sizeof *ds; k++)
        roundtrip(jc_double(ds[k]));
    roundtrip(jc_str(""));
    roundtrip(jc_str("plain text"));
    roundtrip(jc_str("UTF-8: héllo wörld ✓ 日本語 🎉"));
    roundtrip(jc_bytes(NULL, 0));
    roundtrip(jc_bytes("\0\0\xff\x80", 4));
    roundtrip(jc_doubles(NULL, 0));
    roundtrip(jc_doubles((double[]){1, -0.0, NAN, INFINITY}, 4));
    roundtrip(jc_ints(NULL, 0));
    roundtrip(jc_ints_ref((int64_t[]){INT64_MIN, -1, 0, 1, INT64_MAX}, 5));
    roundtrip(jc_list_new());
    roundtrip(jc_map_new());
    jc_value *m = jc_map_new(); /* an empty key is a valid map key (jc_map_set) */
    assert_int_equal(jc_map_set(m, "", jc_int(1)), 0);
    roundtrip(m);
}

static void codec_roundtrip_nested_containers(void **state)
{
    (void)state;
    roundtrip(jc_list(jc_list_new(), jc_map_new(), jc_list(jc_list(jc_list_new()))));
    roundtrip(jc_map(jc_kw("params", jc_map(jc_kw("alpha", jc_double(0.5)), jc_kw("seeds", jc_ints((int64_t[]){1, 2, 3}, 3)))),
                     jc_kw("tags", jc_list(jc_str("a"), jc_str(""), jc_bytes("x", 1))),
                     jc_kw("grid", jc_list(jc_doubles((double[]){1, 2}, 2), jc_doubles(NULL, 0))),
                     jc_kw("none", jc_null()), jc_kw("ok", jc_bool(true))));
    roundtrip(nested_lists(JC__MAX_DEPTH));
    roundtrip(nested_maps(JC__MAX_DEPTH));
}

static void codec_roundtrip_large_arrays(void **state)
{
    (void)state;
    enum { N = 1000000 };
    double *d = malloc(N * sizeof *d);
    int64_t *i = malloc(N * sizeof *i);
    assert_non_null(d);
    assert_non_null(i);
    for (size_t k = 0; k < N; k++) {
        d[k] = (double)k / 7.0 - 1000.0;
        i[k] = (int64_t)(k * 2654435761u) - (1 << 30);
    }
    jc_value *v = jc_doubles_ref(d, N);
    size_t len;
    unsigned char *buf = encode(v, &len);
    assert_int_equal(len, 6 + N * 8);
    assert_memory_equal(buf, ((unsigned char[]){0xc9, 0x00, 0x7a, 0x12, 0x00, 0x01}), 6);
    jc_value *back = NULL;
    assert_int_equal(jc_value_decode(buf, len, &back), 0);
    const double *p;
    size_t n;
    assert_int_equal(jc_value_get_doubles(back, &p, &n), 0);
    assert_int_equal(n, N);
    assert_memory_equal(p, d, N * sizeof *d);
    assert_false(back->flags & JC__V_BORROWED); /* the decoded array is owned */
    jc_value_free(back);
    free(buf);
    jc_value_free(v);

    roundtrip(jc_ints(i, N));
    roundtrip(jc_list(jc_doubles(d, N), jc_ints_ref(i, N), jc_str("end")));
    free(d);
    free(i);
}

static void codec_roundtrip_long_containers_and_strings(void **state)
{
    (void)state;
    jc_value *l = jc_list_new(), *m = jc_map_new();
    for (int k = 0; k < 70000; k++) { /* past 65535: array32 / map32 */
        assert_int_equal(jc_list_append(l, jc_int(k - 35000)), 0);
        char key[16];
        snprintf(key, sizeof key, "%06d", k); /* in order: appended, not inserted */
        assert_int_equal(jc_map_set(m, key, jc_double(k)), 0);
    }
    size_t len;
    unsigned char *buf = encode(l, &len);
    assert_int_equal(buf[0], 0xdd);
    free(buf);
    buf = encode(m, &len);
    assert_int_equal(buf[0], 0xdf);
    free(buf);
    roundtrip(l);
    roundtrip(m);
    size_t big = 70000;
    char *text = malloc(big);
    assert_non_null(text);
    for (size_t k = 0; k < big; k++)
        text[k] = (char)('a' + k % 26);
    jc_value *s = jc_strn(text, big);
    buf = encode(s, &len);
    assert_int_equal(buf[0], 0xdb); /* str32 */
    assert_int_equal(len, 5 + big);
    free(buf);
    roundtrip(s);
    roundtrip(jc_bytes(text, big));
    free(text);
}

static void codec_decode_accepts_non_canonical_forms(void **state)
{
    (void)state;
    /* The decoder reads any msgpack form of a supported type; encoding the
     * result gives the canonical form. */
    static const struct {
        unsigned char in[16];
        size_t in_len;
        unsigned char canon[16];
        size_t canon_len;
    } cases[] = {
        {{0xcd, 0x00, 0x01}, 3, {0x01}, 1},                                         /* uint16 1 */
        {{0xd3, 0, 0, 0, 0, 0, 0, 0, 5}, 9, {0x05}, 1},                           /* int64 5 */
        {{0xd0, 0xff}, 2, {0xff}, 1},                                               /* int8 -1 */
        {{0xca, 0x3f, 0x80, 0x00, 0x00}, 5, {0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0}, 9}, /* float32 */
        {{0xcb, 0x80, 0, 0, 0, 0, 0, 0, 0}, 9, {0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, 9}, /* -0.0 */
        {{0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 1}, 9, {0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0}, 9},
        {{0xd9, 0x01, 0x61}, 3, {0xa1, 0x61}, 2},                                   /* str8 "a" */
        {{0xdc, 0x00, 0x01, 0xc0}, 4, {0x91, 0xc0}, 2},                             /* array16 */
        {{0x82, 0xa1, 0x62, 0x01, 0xa1, 0x61, 0x02}, 7, {0x82, 0xa1, 0x61, 0x02, 0xa1, 0x62, 0x01}, 7},
        {{0xc8, 0x00, 0x00, 0x02}, 4, {0xc7, 0x00, 0x02}, 3},                       /* ext16 empty */
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        jc_value *v = NULL;
        assert_int_equal(jc_value_decode(cases[k].in, cases[k].in_len, &v), 0);
        size_t len;
        unsigned char *buf = encode(v, &len);
        expect_same_bytes(buf, len, cases[k].canon, cases[k].canon_len);
        free(buf);
        jc_value_free(v);
    }
}

/* ---- decode errors ---- */

static void codec_decode_empty_and_truncated_input(void **state)
{
    (void)state;
    expect_decode_error("", 0, "truncated");
    expect_decode_error(NULL, 0, "truncated");
    EXPECT_DECODE_ERROR("truncated", 0xcb, 0x3f, 0xf0);
    EXPECT_DECODE_ERROR("truncated", 0xcd, 0x01);
    EXPECT_DECODE_ERROR("truncated", 0xa3, 0x61, 0x62);
    EXPECT_DECODE_ERROR("truncated", 0xd9);
    EXPECT_DECODE_ERROR("truncated", 0xc7, 0x08, 0x01, 0, 0, 0);
    EXPECT_DECODE_ERROR("truncated", 0x92, 0x01);
    EXPECT_DECODE_ERROR("truncated", 0x81, 0xa1, 0x61);

    /* Every proper prefix of a real encoding is truncated. */
    jc_value *v = jc_map(jc_kw("a", jc_list(jc_int(300), jc_double(1.5), jc_str("text"))),
                         jc_kw("b", jc_doubles((double[]){1, 2}, 2)), jc_kw("c", jc_bytes("xyz", 3)));
    size_t len;
    unsigned char *buf = encode(v, &len);
    for (size_t n = 0; n < len; n++)
        expect_decode_error(buf, n, "truncated");
    free(buf);
    jc_value_free(v);
}

static void codec_decode_container_claiming_more_items_than_bytes_is_truncated(void **state)
{
    (void)state;
    /* Without a check, msgpack-c would allocate room for 4 billion items
     * before noticing that they are missing (ASan aborts on that). */
    EXPECT_DECODE_ERROR("truncated", 0xdd, 0xff, 0xff, 0xff, 0xff);
    EXPECT_DECODE_ERROR("truncated", 0xdf, 0xff, 0xff, 0xff, 0xff);
    EXPECT_DECODE_ERROR("truncated", 0x91, 0xdd, 0x10, 0x00, 0x00, 0x00, 0x01, 0x02);
    EXPECT_DECODE_ERROR("truncated", 0xc6, 0xff, 0xff, 0xff, 0xff, 0x00);
    EXPECT_DECODE_ERROR("truncated", 0xc9, 0xff, 0xff, 0xff, 0xf8, 0x01, 0x00);
}

static void codec_decode_trailing_bytes(void **state)
{
    (void)state;
    EXPECT_DECODE_ERROR("trailing bytes", 0x01, 0x01);
    EXPECT_DECODE_ERROR("trailing bytes", 0x90, 0x00);
    EXPECT_DECODE_ERROR("trailing bytes", 0xa1, 0x61, 0xc0);
}

static void codec_decode_unknown_ext_type(void **state)
{
    (void)state;
    EXPECT_DECODE_ERROR("unknown extension type", 0xd4, 0x07, 0x00);
    EXPECT_DECODE_ERROR("unknown extension type", 0xc7, 0x00, 0x00);
    EXPECT_DECODE_ERROR("unknown extension type", 0xc7, 0x00, 0x07);
    /* ext 6, a reference: 17 bytes of version 1. */
    EXPECT_DECODE_ERROR("malformed reference", 0xd4, 0x06, 0x01);
    EXPECT_DECODE_ERROR("malformed reference", 0xc7, 0x11, 0x06, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    /* -1 is msgpack's timestamp: not a jobcache type. */
    EXPECT_DECODE_ERROR("unknown extension type", 0xd6, 0xff, 0x00, 0x00, 0x00, 0x00);
    EXPECT_DECODE_ERROR("unknown extension type", 0x91, 0xd7, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0);
}

/* ext 4 (a file by content: 18 bytes, version 1, kind 1 or 2) and ext 5
 * (an argument left out: the byte 1) decode to values that encode back to
 * the same bytes; anything else of theirs is refused. */
static void codec_file_and_left_out_round_trip_and_are_checked(void **state)
{
    (void)state;
    unsigned char file[3 + 18] = {0xc7, 18, 0x04, 1, 2};
    for (int i = 0; i < 16; i++)
        file[5 + i] = (unsigned char)(0xa0 + i);
    const unsigned char left[] = {0xd4, 0x05, 0x01};
    const unsigned char *blobs[] = {file, left};
    size_t lens[] = {sizeof file, sizeof left};
    jc_type types[] = {JC_TYPE_FILE, JC_TYPE_LEFT_OUT};
    for (int k = 0; k < 2; k++) {
        jc_value *v = NULL;
        assert_int_equal(jc_value_decode(blobs[k], lens[k], &v), 0);
        assert_int_equal(jc_value_type(v), types[k]);
        jc__buf b = {0};
        assert_int_equal(jc__encode_value(v, jc__buf_write, &b), 0);
        assert_int_equal(b.len, lens[k]);
        assert_memory_equal(b.data, blobs[k], lens[k]);
        char *text = jc_value_format(v, 0);
        assert_non_null(text);
        assert_contains(text, k == 0 ? "<directory xxh3 a0a1a2" : "<left out>");
        free(text);
        jc__buf_free(&b);
        jc_value_free(v);
    }
    EXPECT_DECODE_ERROR("malformed file digest", 0xd4, 0x04, 0x01);
    file[3] = 2; /* version */
    jc_value *v = NULL;
    assert_int_equal(jc_value_decode(file, sizeof file, &v), JC_EDECODE);
    file[3] = 1, file[4] = 3; /* kind */
    assert_int_equal(jc_value_decode(file, sizeof file, &v), JC_EDECODE);
    EXPECT_DECODE_ERROR("malformed left-out argument", 0xd4, 0x05, 0x02);
    EXPECT_DECODE_ERROR("malformed left-out argument", 0xd5, 0x05, 0x01, 0x01);
}

static void codec_decode_malformed_digest(void **state)
{
    (void)state;
    /* ext 3 is an argument digest: exactly 25 bytes, kind 1 to 3. */
    EXPECT_DECODE_ERROR("malformed argument digest", 0xc7, 0x00, 0x03);
    EXPECT_DECODE_ERROR("malformed argument digest", 0xd4, 0x03, 0x01);
    unsigned char bad_kind[3 + 25] = {0xc7, 25, 0x03, 9};
    jc_value *v = NULL;
    assert_int_equal(jc_value_decode(bad_kind, sizeof bad_kind, &v), JC_EDECODE);
    assert_null(v);
}

static void codec_large_arguments_are_stored_as_digests(void **state)
{
    (void)state;
    /* An argument of 64 KiB or more: the stored arguments hold its kind,
     * length and XXH3-128, not its bytes; results are stored whole. */
    enum { N = 8192 }; /* 64 KiB of doubles: the threshold */
    double *d = malloc(N * sizeof *d);
    assert_non_null(d);
    for (size_t i = 0; i < N; i++)
        d[i] = (double)i;
    d[5] = -0.0; /* canonicalised inside the digest too */
    jc_value *argv[] = {jc_doubles_ref(d, N), jc_doubles_ref(d, N - 1)};
    jc__buf b = {0};
    assert_int_equal(jc__encode_args(argv, 2, jc__buf_write, &b), 0);
    /* [[ext 3 (25 bytes), ext 1 (65528 bytes)], {}] */
    assert_true(b.len > 65528 && b.len < 65528 + 64);
    assert_int_equal((unsigned char)b.data[0], 0x92);
    assert_int_equal((unsigned char)b.data[1], 0x92);
    assert_int_equal((unsigned char)b.data[2], 0xc7);
    assert_int_equal((unsigned char)b.data[3], 25);
    assert_int_equal((unsigned char)b.data[4], 0x03);
    assert_int_equal((unsigned char)b.data[5], 1); /* doubles */
    assert_int_equal((unsigned char)b.data[6], N & 0xff);
    assert_int_equal((unsigned char)b.data[7], N >> 8);
    /* The digest is XXH3-128 of the canonical little-endian payload. */
    unsigned char *payload = malloc(N * 8);
    assert_non_null(payload);
    for (size_t i = 0; i < N; i++) {
        uint64_t bits;
        double x = i == 5 ? 0.0 : d[i];
        memcpy(&bits, &x, 8);
        for (int k = 0; k < 8; k++)
            payload[i * 8 + (size_t)k] = (unsigned char)(bits >> (8 * k));
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(payload, N * 8));
    assert_memory_equal(b.data + 14, c.digest, 16);
    /* It decodes to a digest value that re-encodes to the same bytes. */
    jc_value **out = NULL;
    size_t n = 0;
    assert_int_equal(jc__decode_args(b.data, b.len, &out, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(jc_value_type(out[0]), JC_TYPE_DIGEST);
    assert_int_equal(jc_value_len(out[0]), N);
    assert_int_equal(jc_value_type(out[1]), JC_TYPE_DOUBLES);
    char *text = jc_value_format(out[0], 0);
    assert_non_null(strstr(text, "<doubles[8192] xxh3 "));
    free(text);
    jc__buf again = {0};
    assert_int_equal(jc__encode_args(out, n, jc__buf_write, &again), 0);
    assert_int_equal(again.len, b.len);
    assert_memory_equal(again.data, b.data, b.len);
    /* As a result, the same array is encoded whole. */
    jc__buf whole = {0};
    assert_int_equal(jc__encode_value(argv[0], jc__buf_write, &whole), 0);
    assert_true(whole.len > N * 8);
    for (size_t i = 0; i < n; i++)
        jc_value_free(out[i]);
    free(out);
    jc__buf_free(&b);
    jc__buf_free(&again);
    jc__buf_free(&whole);
    jc_value_free(argv[0]);
    jc_value_free(argv[1]);
    free(payload);
    free(d);
}

static void codec_decode_ext_payload_not_multiple_of_8(void **state)
{
    (void)state;
    EXPECT_DECODE_ERROR("not a multiple of 8", 0xc7, 0x03, 0x01, 0x00, 0x00, 0x00);
    EXPECT_DECODE_ERROR("not a multiple of 8", 0xd4, 0x02, 0x00);
    EXPECT_DECODE_ERROR("not a multiple of 8", 0xd6, 0x01, 0x00, 0x00, 0x00, 0x00);
    EXPECT_DECODE_ERROR("not a multiple of 8", 0xc7, 0x09, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0);
}

static void codec_decode_map_with_non_string_key(void **state)
{
    (void)state;
    EXPECT_DECODE_ERROR("a map key is not a string", 0x81, 0x01, 0x02);
    EXPECT_DECODE_ERROR("a map key is not a string", 0x81, 0xc4, 0x01, 0x61, 0x02);
    EXPECT_DECODE_ERROR("a map key is not a string", 0x81, 0xc0, 0x02);
    EXPECT_DECODE_ERROR("a map key is not a string", 0x81, 0x90, 0x02);
    EXPECT_DECODE_ERROR("a map key contains a NUL byte", 0x81, 0xa2, 0x61, 0x00, 0x02);
}

static void codec_decode_duplicate_map_key(void **state)
{
    (void)state;
    EXPECT_DECODE_ERROR("a map key is repeated", 0x82, 0xa1, 0x61, 0x01, 0xa1, 0x61, 0x02);
    EXPECT_DECODE_ERROR("a map key is repeated", 0x91, 0x83, 0xa0, 0x01, 0xa1, 0x62, 0x02, 0xa0, 0x03);
}

static void codec_decode_uint64_above_int64_max(void **state)
{
    (void)state;
    EXPECT_DECODE_ERROR("larger than INT64_MAX", 0xcf, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
    EXPECT_DECODE_ERROR("larger than INT64_MAX", 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    /* INT64_MAX itself is fine. */
    static const unsigned char max[] = {0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    jc_value *v = NULL;
    assert_int_equal(jc_value_decode(max, sizeof max, &v), 0);
    int64_t x;
    assert_int_equal(jc_value_get_int(v, &x), 0);
    assert_true(x == INT64_MAX);
    jc_value_free(v);
}

static void codec_decode_string_with_nul_byte(void **state)
{
    (void)state;
    EXPECT_DECODE_ERROR("a string contains a NUL byte", 0xa3, 0x61, 0x00, 0x62);
    EXPECT_DECODE_ERROR("a string contains a NUL byte", 0x91, 0xa1, 0x00);
    /* In bytes a NUL is fine. */
    static const unsigned char bin[] = {0xc4, 0x01, 0x00};
    jc_value *v = NULL;
    assert_int_equal(jc_value_decode(bin, sizeof bin, &v), 0);
    jc_value_free(v);
}

static void codec_decode_unused_byte_c1_is_malformed(void **state)
{
    (void)state;
    EXPECT_DECODE_ERROR("malformed", 0xc1);
    EXPECT_DECODE_ERROR("malformed", 0x92, 0x01, 0xc1);
}

static void codec_decode_nesting_deeper_than_max_depth(void **state)
{
    (void)state;
    unsigned char buf[200];
    /* JC__MAX_DEPTH lists deep decode; one more does not. */
    for (int depth = JC__MAX_DEPTH - 1; depth <= JC__MAX_DEPTH + 1; depth++) {
        memset(buf, 0x91, (size_t)depth);
        buf[depth] = 0x01;
        jc_value *v = NULL;
        int rc = jc_value_decode(buf, (size_t)depth + 1, &v);
        if (depth <= JC__MAX_DEPTH) {
            assert_int_equal(rc, 0);
            jc_value_free(v);
        } else {
            expect_rc(rc, JC_EDECODE, "nested too deep");
            assert_null(v);
        }
    }
    /* Far deeper than msgpack-c's own 32-level parser stack: still a decode
     * error, not "out of memory". */
    memset(buf, 0x91, 150);
    buf[150] = 0x01;
    expect_decode_error(buf, 151, "nested too deep");
    /* Empty containers count as a level too. */
    memset(buf, 0x91, JC__MAX_DEPTH);
    buf[JC__MAX_DEPTH] = 0x80;
    expect_decode_error(buf, JC__MAX_DEPTH + 1, "nested too deep");
    /* Maps: {"k": {"k": ... 1}}. */
    size_t n = 0;
    for (int k = 0; k <= JC__MAX_DEPTH; k++)
        buf[n++] = 0x81, buf[n++] = 0xa1, buf[n++] = 'k';
    buf[n++] = 0x01;
    expect_decode_error(buf, n, "nested too deep");
}

static void codec_decode_rejects_null_arguments(void **state)
{
    (void)state;
    jc_value *v = NULL;
    expect_rc(jc_value_decode(NULL, 3, &v), JC_EINVAL, "NULL buffer");
    expect_rc(jc_value_decode("\x01", 1, NULL), JC_EINVAL, "NULL out");
}

/* ---- encode errors ---- */

static void codec_encode_rejects_nesting_deeper_than_max_depth(void **state)
{
    (void)state;
    void *buf = (void *)&buf;
    size_t len = 77;
    jc_value *ok = nested_lists(JC__MAX_DEPTH);
    assert_int_equal(jc_value_encode(ok, &buf, &len), 0);
    free(buf);
    jc_value_free(ok);
    /* A deeper value cannot be built at all (the builders refuse it, see
     * test_value), so the encoder never meets one through the API. */
    assert_null(nested_lists(JC__MAX_DEPTH + 1));
    expect_error(JC_EINVAL, "nested more than 24 levels deep");
    assert_null(nested_maps(JC__MAX_DEPTH + 1));
    expect_error(JC_EINVAL, "nested more than 24 levels deep");
}

static void codec_encode_rejects_named_value_inside_a_value(void **state)
{
    (void)state;
    void *buf = NULL;
    size_t len = 0;
    jc_value *kw = jc_kw("steps", jc_int(1));
    expect_rc(jc_value_encode(kw, &buf, &len), JC_EINVAL,
              "named argument \"steps\" is only valid as a call argument");
    /* The builders refuse to put one in a list, so make such a list by hand
     * to check that the encoder refuses it too. */
    jc_value *list = jc_list(jc_int(1), jc_int(2));
    jc_value_free(list->u.items[1]);
    list->u.items[1] = kw;
    expect_rc(jc_value_encode(list, &buf, &len), JC_EINVAL, "named argument \"steps\"");
    jc_value_free(list);
}

static void codec_encode_rejects_null_arguments(void **state)
{
    (void)state;
    void *buf = NULL;
    size_t len = 0;
    jc_value *v = jc_int(1);
    expect_rc(jc_value_encode(NULL, &buf, &len), JC_EINVAL, "NULL value");
    expect_rc(jc_value_encode(v, NULL, &len), JC_EINVAL, "NULL out");
    expect_rc(jc_value_encode(v, &buf, NULL), JC_EINVAL, "NULL out or len");
    jc_value_free(v);
}

/* ---- call arguments ---- */

static unsigned char *encode_args(jc_value *const *argv, size_t argc, size_t *len)
{
    jc__buf b = {0};
    int rc = jc__encode_args(argv, argc, jc__buf_write, &b);
    if (rc) {
        jc__buf_free(&b);
        return NULL;
    }
    assert_false(b.oom);
    *len = b.len;
    return (unsigned char *)b.data;
}

static void expect_int(const unsigned char *p, size_t n, int64_t want)
{
    jc_value *v = NULL;
    assert_int_equal(jc_value_decode(p, n, &v), 0);
    int64_t got = 0;
    assert_int_equal(jc_value_get_int(v, &got), 0);
    if (got != want)
        fail_msg("decoded %lld, want %lld", (long long)got, (long long)want);
    jc_value_free(v);
}

#define EXPECT_INT(want, ...)                                                  \
    do {                                                                     \
        static const unsigned char in_[] = {__VA_ARGS__};                    \
        expect_int(in_, sizeof in_, (want));                                 \
    } while (0)

/* Every form a lone scalar can take, including the non-shortest ones a
 * foreign writer may use, decodes to its value (a result alone takes a
 * path of its own, without msgpack-c); a uint64 past INT64_MAX and
 * truncated forms are errors. */
static void codec_lone_scalars_in_every_form(void **state)
{
    (void)state;
    EXPECT_INT(0, 0x00);
    EXPECT_INT(127, 0x7f);
    EXPECT_INT(-1, 0xff);
    EXPECT_INT(-32, 0xe0);
    EXPECT_INT(200, 0xcc, 0xc8);
    EXPECT_INT(5, 0xcc, 0x05);
    EXPECT_INT(65535, 0xcd, 0xff, 0xff);
    EXPECT_INT(4294967295LL, 0xce, 0xff, 0xff, 0xff, 0xff);
    EXPECT_INT(INT64_MAX, 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    EXPECT_INT(-100, 0xd0, 0x9c);
    EXPECT_INT(100, 0xd0, 0x64);
    EXPECT_INT(-30000, 0xd1, 0x8a, 0xd0);
    EXPECT_INT(-2147483648LL, 0xd2, 0x80, 0x00, 0x00, 0x00);
    EXPECT_INT(INT64_MIN, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0);
    EXPECT_INT(-2, 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe);
    EXPECT_DECODE_ERROR("INT64_MAX", 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0);
    EXPECT_DECODE_ERROR("truncated", 0xcd, 0x01);
    EXPECT_DECODE_ERROR("truncated", 0xd3, 0x01, 0x02);
    EXPECT_DECODE_ERROR("truncated", 0xcb, 0x3f, 0xf0);

    static const unsigned char one[] = {0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0};
    static const unsigned char half32[] = {0xca, 0x3f, 0x00, 0x00, 0x00}; /* 0.5 as float32 */
    jc_value *v = NULL;
    double d = 0;
    assert_int_equal(jc_value_decode(one, sizeof one, &v), 0);
    assert_int_equal(jc_value_get_double(v, &d), 0);
    assert_true(d == 1.0);
    jc_value_free(v);
    assert_int_equal(jc_value_decode(half32, sizeof half32, &v), 0);
    assert_int_equal(jc_value_get_double(v, &d), 0);
    assert_true(d == 0.5);
    jc_value_free(v);
    static const unsigned char nil[] = {0xc0}, yes[] = {0xc3}, no[] = {0xc2};
    assert_int_equal(jc_value_decode(nil, 1, &v), 0);
    assert_int_equal(jc_value_type(v), JC_TYPE_NULL);
    jc_value_free(v);
    bool b = false;
    assert_int_equal(jc_value_decode(yes, 1, &v), 0);
    assert_int_equal(jc_value_get_bool(v, &b), 0);
    assert_true(b);
    jc_value_free(v);
    assert_int_equal(jc_value_decode(no, 1, &v), 0);
    assert_int_equal(jc_value_get_bool(v, &b), 0);
    assert_false(b);
    jc_value_free(v);
}

/* Arguments that are all ints and doubles are keyed by a path of their
 * own: it writes exactly the bytes msgpack-c writes for them, at every
 * boundary of the integer forms, for -0.0 and NaN; and steps aside (0) for
 * any other shape. */
static void codec_scalar_args_encode_as_msgpack_c_does(void **state)
{
    (void)state;
    static const int64_t ints[] = {0, 1, 31, 32, 127, 128, 255, 256, 65535, 65536, 4294967295LL, 4294967296LL,
                                   INT64_MAX, -1, -31, -32, -33, -127, -128, -129, -32767, -32768, -32769,
                                   -2147483647LL, -2147483648LL, -2147483649LL, INT64_MIN};
    static const double doubles[] = {0.0, -0.0, 1.5, -2.25e300, INFINITY, -INFINITY, NAN, 5e-324};
    size_t ni = sizeof ints / sizeof *ints, nd = sizeof doubles / sizeof *doubles;
    for (size_t k = 0; k < ni + nd; k++) {
        jc_value *argv[3] = {k < ni ? jc_int(ints[k]) : jc_double(doubles[k - ni]), jc_int(7),
                             jc_double(k < ni ? (double)ints[k] : doubles[k - ni])};
        for (size_t argc = 1; argc <= 3; argc++) {
            jc__buf b = {0};
            assert_int_equal(jc__encode_args_left_out(argv, argc, NULL, jc__buf_write, &b), 0);
            unsigned char out[3 + 9 * 15];
            size_t n = jc__encode_args_scalars(argv, argc, NULL, out, sizeof out);
            if (n != b.len || memcmp(out, b.data, n) != 0)
                fail_msg("value %zu, %zu arguments: %zu bytes against msgpack-c's %zu", k, argc, n, b.len);
            jc__buf_free(&b);
        }
        for (size_t i = 0; i < 3; i++)
            jc_value_free(argv[i]);
    }
    unsigned char out[3 + 9 * 15];
    jc_value *str = jc_str("x"), *one = jc_int(1), *kw = jc_kw("a", jc_int(1));
    jc_value *mixed[2] = {one, str}, *named[2] = {one, kw};
    assert_int_equal(jc__encode_args_scalars(mixed, 2, NULL, out, sizeof out), 0);
    assert_int_equal(jc__encode_args_scalars(named, 2, NULL, out, sizeof out), 0);
    assert_int_equal(jc__encode_args_scalars(mixed, 1, (bool[]){true}, out, sizeof out), 0);
    assert_int_equal(jc__encode_args_scalars(mixed, 1, NULL, out, 5), 0); /* too small */
    jc_value *many[16];
    for (size_t i = 0; i < 16; i++)
        many[i] = one;
    assert_int_equal(jc__encode_args_scalars(many, 16, NULL, out, sizeof out), 0);
    jc_value_free(str);
    jc_value_free(one);
    jc_value_free(kw);
}

/* A result that is one null, bool, int or double is stored by a path of
 * its own: exactly the bytes jc__encode_result writes through msgpack-c,
 * at every boundary of the integer forms, and a double's bits as they are
 * (-0.0 and a NaN's payload kept: a hit is bit-exact); any other type
 * steps aside (0). */
static void codec_scalar_result_encodes_as_msgpack_c_does(void **state)
{
    (void)state;
    static const int64_t ints[] = {0, 1, 31, 32, 127, 128, 255, 256, 65535, 65536, 4294967295LL, 4294967296LL,
                                   INT64_MAX, -1, -31, -32, -33, -127, -128, -129, -32767, -32768, -32769,
                                   -2147483647LL, -2147483648LL, -2147483649LL, INT64_MIN};
    uint64_t nan_bits = UINT64_C(0x7ff4000000000abc), neg_zero_bits = UINT64_C(0x8000000000000000);
    double payload_nan, neg_zero;
    memcpy(&payload_nan, &nan_bits, sizeof payload_nan);
    memcpy(&neg_zero, &neg_zero_bits, sizeof neg_zero);
    const double doubles[] = {0.0, neg_zero, 1.5, -2.25e300, INFINITY, -INFINITY, NAN, payload_nan, 5e-324};
    size_t ni = sizeof ints / sizeof *ints, nd = sizeof doubles / sizeof *doubles;
    for (size_t k = 0; k < ni + nd + 3; k++) {
        jc_value *v = k < ni ? jc_int(ints[k]) : k < ni + nd ? jc_double(doubles[k - ni])
                    : k == ni + nd ? jc_null() : jc_bool(k == ni + nd + 1);
        jc__buf b = {0};
        assert_int_equal(jc__encode_result(v, jc__buf_write, &b), 0);
        unsigned char out[9];
        size_t n = jc__encode_result_scalar(v, out);
        if (n != b.len || memcmp(out, b.data, n) != 0)
            fail_msg("value %zu: %zu bytes against msgpack-c's %zu", k, n, b.len);
        jc__buf_free(&b);
        jc_value_free(v);
    }
    unsigned char out[9];
    jc_value *others[] = {jc_str("x"), jc_bytes("ab", 2), jc_list_of((jc_value *[]){jc_int(1)}, 1),
                          jc_ints((int64_t[]){1}, 1), jc_doubles((double[]){1.0}, 1)};
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        assert_non_null(others[i]);
        assert_int_equal(jc__encode_result_scalar(others[i], out), 0);
        jc_value_free(others[i]);
    }
    assert_int_equal(jc__encode_result_scalar(NULL, out), 0);
}

static void free_argv(jc_value **argv, size_t argc)
{
    for (size_t k = 0; k < argc; k++)
        jc_value_free(argv[k]);
}

static void codec_args_are_positional_list_then_named_map(void **state)
{
    (void)state;
    size_t len;
    unsigned char *buf = encode_args(NULL, 0, &len);
    assert_non_null(buf);
    expect_same_bytes(buf, len, "\x92\x90\x80", 3);
    free(buf);

    jc_value *argv[] = {jc_double(0.5), jc_kw("steps", jc_int(1000)), jc_int(3), jc_kw("alpha", jc_str("x"))};
    buf = encode_args(argv, 4, &len);
    assert_non_null(buf);
    static const unsigned char want[] = {
        0x92,
        0x92, 0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0, 0x03,
        0x82, 0xa5, 'a', 'l', 'p', 'h', 'a', 0xa1, 'x',
              0xa5, 's', 't', 'e', 'p', 's', 0xcd, 0x03, 0xe8,
    };
    expect_same_bytes(buf, len, want, sizeof want);
    free(buf);
    free_argv(argv, 4);
}

static void codec_args_named_sorted_regardless_of_call_order(void **state)
{
    (void)state;
    /* 20 named arguments (past the encoder's 16-entry stack buffer), in two
     * different orders, interleaved with positional ones differently. */
    jc_value *a[24], *b[24];
    size_t na = 0, nb = 0;
    char name[8];
    a[na++] = jc_int(1);
    for (int k = 0; k < 20; k++) {
        snprintf(name, sizeof name, "n%02d", (k * 7) % 20);
        a[na++] = jc_kw(name, jc_int((k * 7) % 20));
        if (k == 10)
            a[na++] = jc_str("two");
    }
    for (int k = 19; k >= 0; k--) {
        snprintf(name, sizeof name, "n%02d", k);
        b[nb++] = jc_kw(name, jc_int(k));
    }
    b[nb++] = jc_int(1);
    b[nb++] = jc_str("two");
    size_t la, lb;
    unsigned char *ea = encode_args(a, na, &la), *eb = encode_args(b, nb, &lb);
    assert_non_null(ea);
    assert_non_null(eb);
    expect_same_bytes(ea, la, eb, lb);
    /* [[1, "two"], {"n00": 0, ...}] */
    assert_memory_equal(ea, ((unsigned char[]){0x92, 0x92, 0x01, 0xa3, 't', 'w', 'o', 0xde, 0x00, 0x14,
                                               0xa3, 'n', '0', '0', 0x00, 0xa3, 'n', '0', '1', 0x01}),
                        20);
    free(ea);
    free(eb);
    free_argv(a, na);
    free_argv(b, nb);
}

static void codec_args_duplicate_named_argument_is_einval(void **state)
{
    (void)state;
    jc_value *argv[] = {jc_kw("b", jc_int(1)), jc_int(0), jc_kw("a", jc_int(2)), jc_kw("b", jc_int(3))};
    size_t len;
    assert_null(encode_args(argv, 4, &len));
    expect_error(JC_EINVAL, "named argument \"b\" is given twice");
    free_argv(argv, 4);
}

static void codec_args_reject_named_value_as_a_named_value(void **state)
{
    (void)state;
    /* Refused where it is made, so that the encoder never meets one. */
    assert_null(jc_kw("a", jc_kw("b", jc_int(1))));
    expect_error(JC_EINVAL, "jc_kw(\"a\"): the value is itself a jc_kw named value");
}

static void codec_args_roundtrip(void **state)
{
    (void)state;
    jc_value *argv[] = {jc_kw("z", jc_list(jc_int(1))), jc_double(-0.0), jc_str("s"),
                        jc_kw("a", jc_doubles((double[]){1, 2}, 2)), jc_map(jc_kw("k", jc_null()))};
    size_t len;
    unsigned char *buf = encode_args(argv, 5, &len);
    assert_non_null(buf);
    jc_value **out = NULL;
    size_t outc = 0;
    assert_int_equal(jc__decode_args(buf, len, &out, &outc), 0);
    assert_int_equal(outc, 5);
    /* Positional ones in order, then named ones sorted by name. */
    assert_true(jc_value_equal(out[0], argv[1]));
    assert_true(jc_value_equal(out[1], argv[2]));
    assert_true(jc_value_equal(out[2], argv[4]));
    assert_true(jc_value_equal(out[3], argv[3]));
    assert_true(jc_value_equal(out[4], argv[0]));
    assert_int_equal(jc_value_type(out[3]), JC_TYPE_KWARG);
    assert_string_equal(jc_value_key_at(out[3], 0), "a");
    assert_string_equal(jc_value_key_at(out[4], 0), "z");
    size_t len2;
    unsigned char *buf2 = encode_args(out, outc, &len2);
    expect_same_bytes(buf2, len2, buf, len);
    free(buf2);
    free(buf);
    free_argv(out, outc);
    free(out);
    free_argv(argv, 5);

    /* No arguments at all. */
    assert_int_equal(jc__decode_args("\x92\x90\x80", 3, &out, &outc), 0);
    assert_int_equal(outc, 0);
    free(out);
}

static void codec_args_may_nest_as_deep_as_any_value(void **state)
{
    (void)state;
    /* The [positional, named] wrapper does not count against the limit: an
     * argument nested JC__MAX_DEPTH deep encodes and decodes back. */
    jc_value *argv[] = {nested_lists(JC__MAX_DEPTH), jc_kw("m", nested_maps(JC__MAX_DEPTH))};
    size_t len;
    unsigned char *buf = encode_args(argv, 2, &len);
    assert_non_null(buf);
    jc_value **out = NULL;
    size_t outc = 0;
    assert_int_equal(jc__decode_args(buf, len, &out, &outc), 0);
    assert_int_equal(outc, 2);
    assert_true(jc_value_equal(out[0], argv[0]));
    assert_true(jc_value_equal(out[1], argv[1]));
    free_argv(out, outc);
    free(out);
    free(buf);
    free_argv(argv, 2);

    /* One level more is refused where it is made (test_value). */
    assert_null(nested_lists(JC__MAX_DEPTH + 1));
    expect_error(JC_EINVAL, "nested more than 24 levels deep");

    /* A blob whose argument is nested one level too deep does not decode. */
    unsigned char blob[64] = {0x92, 0x91};
    memset(blob + 2, 0x91, JC__MAX_DEPTH + 1);
    blob[3 + JC__MAX_DEPTH] = 0x01;
    blob[4 + JC__MAX_DEPTH] = 0x80;
    assert_int_equal(jc__decode_args(blob, 5 + JC__MAX_DEPTH, &out, &outc), JC_EDECODE);
    expect_error(JC_EDECODE, "nested too deep");
    blob[2 + JC__MAX_DEPTH] = 0x01; /* one level less: fine */
    blob[3 + JC__MAX_DEPTH] = 0x80;
    assert_int_equal(jc__decode_args(blob, 4 + JC__MAX_DEPTH, &out, &outc), 0);
    free_argv(out, outc);
    free(out);
}

static void codec_decode_args_rejects_other_shapes(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
    } cases[] = {
        {"\x01", 1},                 /* not a list */
        {"\x91\x90", 2},             /* one element */
        {"\x93\x90\x80\xc0", 4},     /* three elements */
        {"\x92\x80\x80", 3},         /* positional is a map */
        {"\x92\x90\x90", 3},         /* named is a list */
        {"\x92\x90\xc0", 3},         /* named is nil */
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        jc_value **out = NULL;
        size_t outc = 0;
        assert_int_equal(jc__decode_args(cases[k].bytes, cases[k].len, &out, &outc), JC_EDECODE);
        expect_error(JC_EDECODE, "arguments are not [positional list, named map]");
    }
    jc_value **out = NULL;
    size_t outc = 0;
    assert_int_equal(jc__decode_args("\x92\x90", 2, &out, &outc), JC_EDECODE);
    expect_error(JC_EDECODE, "truncated");
}

/* ---- fuzz ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    /* xorshift64*: deterministic, so that a failure reproduces. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

/* Decodes p as a value and as arguments; whenever that succeeds, encoding
 * must succeed too, and give bytes that decode to an equal value. */
static int fuzz_one(const unsigned char *p, size_t n)
{
    int ok = 0;
    jc_value *v = NULL;
    int rc = jc_value_decode(p, n, &v);
    if (rc == 0) {
        ok++;
        size_t len;
        unsigned char *buf = encode(v, &len);
        jc_value *back = NULL;
        assert_int_equal(jc_value_decode(buf, len, &back), 0);
        assert_true(jc_value_equal(v, back));
        jc_value_free(back);
        free(buf);
        jc_value_free(v);
    } else {
        assert_int_equal(rc, JC_EDECODE);
        assert_null(v);
    }
    jc_value **argv = NULL;
    size_t argc = 0;
    rc = jc__decode_args(p, n, &argv, &argc);
    if (rc == 0) {
        size_t len;
        unsigned char *buf = encode_args(argv, argc, &len);
        assert_non_null(buf);
        free(buf);
        free_argv(argv, argc);
        free(argv);
    } else {
        assert_int_equal(rc, JC_EDECODE);
    }
    return ok;
}

static void codec_fuzz_decode_never_crashes_and_reencodes(void **state)
{
    (void)state;
    /* Valid encodings to mutate. */
    jc_value *samples[] = {
        jc_map(jc_kw("a", jc_list(jc_int(300), jc_double(1.5), jc_str("text"), jc_null())),
               jc_kw("b", jc_doubles((double[]){1, 2, -0.0}, 3)), jc_kw("c", jc_bytes("xyz", 3)),
               jc_kw("d", jc_map(jc_kw("e", jc_ints((int64_t[]){-5, 5}, 2)), jc_kw("f", jc_bool(true))))),
        jc_list(jc_list(jc_list(jc_list(jc_int(-70000)))), jc_map_new(), jc_list_new(), jc_str("")),
        jc_int(INT64_MIN),
        jc_doubles((double[]){0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5}, 10),
        nested_lists(JC__MAX_DEPTH),
        jc_str("héllo, wörld: a string long enough for str8 form"),
    };
    enum { NSAMPLES = sizeof samples / sizeof *samples };
    unsigned char *enc[NSAMPLES];
    size_t enc_len[NSAMPLES];
    for (size_t k = 0; k < NSAMPLES; k++)
        enc[k] = encode(samples[k], &enc_len[k]);
    /* Argument blobs too, so that decode_args gets past the shape check. */
    jc_value *argv[] = {jc_double(0.25), jc_kw("steps", jc_int(1000)), jc_list(jc_str("x"))};
    size_t args_len;
    unsigned char *args = encode_args(argv, 3, &args_len);

    /* Bytes that make msgpack headers likely. */
    static const unsigned char interesting[] = {0x00, 0x01, 0x7f, 0x80, 0x81, 0x8f, 0x90, 0x91, 0x9f, 0xa0,
                                                0xa1, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
                                                0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd3,
                                                0xd4, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
                                                0xe0, 0xff};
    unsigned char buf[512];
    int decoded = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n;
        if (iter % 2 == 0) {
            /* Random bytes, half of them msgpack-looking. */
            n = rnd() % 48;
            for (size_t k = 0; k < n; k++)
                buf[k] = rnd() % 2 ? interesting[rnd() % sizeof interesting] : (unsigned char)rnd();
        } else {
            /* A mutation of a valid encoding. */
            size_t s = rnd() % (NSAMPLES + 1);
            const unsigned char *src = s < NSAMPLES ? enc[s] : args;
            n = s < NSAMPLES ? enc_len[s] : args_len;
            if (n > sizeof buf - 8)
                n = sizeof buf - 8;
            memcpy(buf, src, n);
            int edits = 1 + (int)(rnd() % 4);
            for (int e = 0; e < edits && n > 0; e++) {
                size_t at = rnd() % n;
                switch (rnd() % 6) {
                case 0: buf[at] ^= (unsigned char)(1u << (rnd() % 8)); break; /* bit flip */
                case 1: buf[at] = interesting[rnd() % sizeof interesting]; break;
                case 2: buf[at] = (unsigned char)rnd(); break;
                case 3: n = at; break; /* truncate */
                case 4: /* delete a byte */
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                    break;
                case 5: /* insert a byte */
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = (unsigned char)rnd();
                    n++;
                    break;
                }
            }
        }
        /* A copy of exactly n bytes, so that ASan sees any read past the end. */
        unsigned char *exact = malloc(n ? n : 1);
        assert_non_null(exact);
        memcpy(exact, buf, n);
        decoded += fuzz_one(exact, n);
        free(exact);
    }
    /* The mutations are mild enough that some still decode. */
    assert_true(decoded > 100);

    for (size_t k = 0; k < NSAMPLES; k++) {
        free(enc[k]);
        jc_value_free(samples[k]);
    }
    free(args);
    free_argv(argv, 3);
}

/* ---- decoding in threads ---- */

typedef struct decoder_thread {
    const void *value_bytes, *args_bytes;
    size_t value_len, args_len;
    const jc_value *want;
    int ok;
} decoder_thread;

/* Decodes a value and an argument blob a few times in a thread that then
 * exits: each thread gets its own msgpack zone, which must go with it. */
static void *decode_and_exit(void *arg)
{
    decoder_thread *t = arg;
    int ok = 1;
    for (int round = 0; round < 3; round++) {
        jc_value *v = NULL, **argv = NULL;
        size_t argc = 0;
        ok &= jc__decode_value(t->value_bytes, t->value_len, &v) == 0 && jc_value_equal(v, t->want);
        jc_value_free(v);
        ok &= jc__decode_args(t->args_bytes, t->args_len, &argv, &argc) == 0 && argc == 2;
        for (size_t i = 0; i < argc; i++)
            jc_value_free(argv[i]);
        free(argv);
    }
    t->ok = ok;
    return NULL;
}

/* Under ASan (the suite runs with LeakSanitizer too) a zone left behind by
 * an exited thread is a leak report. */
static void codec_decoding_in_short_lived_threads_leaks_no_zone(void **state)
{
    (void)state;
    char big[5000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    /* A string larger than the zone's first chunk, so that the zone grows. */
    jc_value *want = jc_list(jc_str(big), jc_map(jc_kw("a", jc_int(1)), jc_kw("b", jc_double(0.5))),
                             jc_ints((const int64_t[]){1, 2, 3}, 3));
    jc__buf vb = {0}, ab = {0};
    assert_int_equal(jc__encode_value(want, jc__buf_write, &vb), 0);
    jc_value *argv[2] = {jc_int(7), jc_kw("name", jc_str("x"))};
    assert_int_equal(jc__encode_args(argv, 2, jc__buf_write, &ab), 0);
    enum { NTHREADS = 50, AT_ONCE = 10 };
    decoder_thread t[NTHREADS];
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i += AT_ONCE) {
        for (int k = i; k < i + AT_ONCE; k++) {
            t[k] = (decoder_thread){vb.data, ab.data, vb.len, ab.len, want, 0};
            assert_int_equal(pthread_create(&th[k], NULL, decode_and_exit, &t[k]), 0);
        }
        for (int k = i; k < i + AT_ONCE; k++)
            assert_int_equal(pthread_join(th[k], NULL), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(t[i].ok, 1);
    /* The calling thread keeps decoding with its own zone. */
    jc_value *v = NULL;
    assert_int_equal(jc__decode_value(vb.data, vb.len, &v), 0);
    assert_true(jc_value_equal(v, want));
    jc_value_free(v);
    jc_value_free(argv[0]);
    jc_value_free(argv[1]);
    jc_value_free(want);
    jc__buf_free(&vb);
    jc__buf_free(&ab);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(codec_nil_and_bools),
        cmocka_unit_test(codec_lone_scalars_in_every_form),
        cmocka_unit_test(codec_scalar_args_encode_as_msgpack_c_does),
        cmocka_unit_test(codec_scalar_result_encodes_as_msgpack_c_does),
        cmocka_unit_test(codec_ints_take_the_shortest_form),
        cmocka_unit_test(codec_doubles_are_always_float64),
        cmocka_unit_test(codec_negative_zero_encodes_as_positive_zero),
        cmocka_unit_test(codec_every_nan_encodes_as_the_one_quiet_nan),
        cmocka_unit_test(codec_strings_are_utf8_str),
        cmocka_unit_test(codec_bytes_are_bin),
        cmocka_unit_test(codec_double_arrays_are_ext1_little_endian),
        cmocka_unit_test(codec_double_arrays_canonicalise_negative_zero_and_nan),
        cmocka_unit_test(codec_long_double_array_canonicalised_in_every_chunk),
        cmocka_unit_test(codec_int_arrays_are_ext2_little_endian),
        cmocka_unit_test(codec_lists_are_arrays),
        cmocka_unit_test(codec_map_keys_are_sorted_str),
        cmocka_unit_test(codec_nested_value_bytes),
        cmocka_unit_test(codec_roundtrip_every_type),
        cmocka_unit_test(codec_roundtrip_nested_containers),
        cmocka_unit_test(codec_roundtrip_large_arrays),
        cmocka_unit_test(codec_roundtrip_long_containers_and_strings),
        cmocka_unit_test(codec_decode_accepts_non_canonical_forms),
        cmocka_unit_test(codec_decode_empty_and_truncated_input),
        cmocka_unit_test(codec_decode_container_claiming_more_items_than_bytes_is_truncated),
        cmocka_unit_test(codec_decode_trailing_bytes),
        cmocka_unit_test(codec_decode_unknown_ext_type),
        cmocka_unit_test(codec_decode_malformed_digest),
        cmocka_unit_test(codec_file_and_left_out_round_trip_and_are_checked),
        cmocka_unit_test(codec_large_arguments_are_stored_as_digests),
        cmocka_unit_test(codec_decode_ext_payload_not_multiple_of_8),
        cmocka_unit_test(codec_decode_map_with_non_string_key),
        cmocka_unit_test(codec_decode_duplicate_map_key),
        cmocka_unit_test(codec_decode_uint64_above_int64_max),
        cmocka_unit_test(codec_decode_string_with_nul_byte),
        cmocka_unit_test(codec_decode_unused_byte_c1_is_malformed),
        cmocka_unit_test(codec_decode_nesting_deeper_than_max_depth),
        cmocka_unit_test(codec_decode_rejects_null_arguments),
        cmocka_unit_test(codec_encode_rejects_nesting_deeper_than_max_depth),
        cmocka_unit_test(codec_encode_rejects_named_value_inside_a_value),
        cmocka_unit_test(codec_encode_rejects_null_arguments),
        cmocka_unit_test(codec_args_are_positional_list_then_named_map),
        cmocka_unit_test(codec_args_named_sorted_regardless_of_call_order),
        cmocka_unit_test(codec_args_duplicate_named_argument_is_einval),
        cmocka_unit_test(codec_args_reject_named_value_as_a_named_value),
        cmocka_unit_test(codec_args_roundtrip),
        cmocka_unit_test(codec_args_may_nest_as_deep_as_any_value),
        cmocka_unit_test(codec_decode_args_rejects_other_shapes),
        cmocka_unit_test(codec_fuzz_decode_never_crashes_and_reencodes),
        cmocka_unit_test(codec_decoding_in_short_lived_threads_leaks_no_zone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
