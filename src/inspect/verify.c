/*
 * Checking entries: jc_cache_verify, and what merge checks before it copies.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jc_internal.h"
#include "inspect_int.h"

/* ---- checking entries ---- */

/* Writes why a decoding failed, without the codec's generic lead-in. */
static void decode_problem(char *problem, size_t cap, const char *what)
{
    snprintf(problem, cap, "the %s not decode (%s)", what, jc__decode_reason());
}

/* Whether the decoded arguments encode back to exactly the stored bytes:
 * 1 yes, 0 no, or a negative code. */
static int args_canonical(const jc__row *r, jc_value **argv, size_t argc)
{
    jc__buf b = {0};
    int rc = jc__encode_args(argv, argc, jc__buf_write, &b);
    if (!rc && b.oom)
        rc = jc__set_error(JC_ENOMEM, "out of memory checking an entry");
    if (!rc)
        rc = b.len == r->args_len && (b.len == 0 || memcmp(b.data, r->args, b.len) == 0);
    else if (rc != JC_ENOMEM)
        rc = 0; /* decoded but cannot be encoded (say, too deep): not canonical */
    jc__buf_free(&b);
    return rc;
}

/* Checks an entry read with its blobs: 0 when sound, 1 with the problem
 * written to problem, or a negative code (out of memory). */
int jc__i_check_row(jc_cache *from, const jc__row *r, char *problem, size_t cap)
{
    uint8_t key[JC__KEY_LEN];
    jc_value **argv = NULL, *res = NULL;
    size_t argc = 0;
    if (r->key_len != JC__KEY_LEN) {
        snprintf(problem, cap, "the key is %zu bytes long, not %d", r->key_len, JC__KEY_LEN);
        return 1;
    }
    int rc = jc__key_from_blob(r->function, r->version, r->args, r->args_len, key);
    if (rc)
        return rc;
    if (memcmp(key, r->key, JC__KEY_LEN) != 0) {
        snprintf(problem, cap, "the key does not match the function, version and arguments stored "
                               "with it");
        return 1;
    }
    rc = jc__decode_args(r->args, r->args_len, &argv, &argc);
    if (rc == JC_EDECODE) {
        decode_problem(problem, cap, "arguments do");
        return 1;
    }
    if (rc)
        return rc;
    rc = args_canonical(r, argv, argc);
    jc__i_free_argv(argv, argc);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        snprintf(problem, cap, "the arguments are not in canonical form");
        return 1;
    }
    if (r->check_len && r->check_len != JC__CHECK_LEN) {
        snprintf(problem, cap, "the result's checksum is %zu bytes long, not %d", r->check_len, JC__CHECK_LEN);
        return 1;
    }
    if (r->code_fp_len && r->code_fp_len != JC__CHECK_LEN) {
        snprintf(problem, cap, "the code fingerprint is %zu bytes long, not %d", r->code_fp_len, JC__CHECK_LEN);
        return 1;
    }
    /* The result, its parts read when it is in pieces, against its
     * checksum, then decoded. */
    rc = jc__cache_row_result(from, r, r->check_len ? r->check : NULL, &res);
    jc_value_free(res);
    if (rc == 1) {
        snprintf(problem, cap, "the result does not match the checksum stored with it (its bytes "
                               "changed after it was stored)");
        return 1;
    }
    if (rc == 2) {
        decode_problem(problem, cap, "result does");
        return 1;
    }
    if (rc)
        return rc;
    bool pieces = jc__result_in_pieces(r->result, r->result_len);
    if (r->args_size != (int64_t)r->args_len || (!pieces && r->result_size != (int64_t)r->result_len)) {
        snprintf(problem, cap,
                 "the recorded sizes (%lld and %lld bytes) are not those of the stored arguments "
                 "and result (%zu and %zu bytes)",
                 (long long)r->args_size, (long long)r->result_size, r->args_len, r->result_len);
        return 1;
    }
    return 0;
}

typedef struct verifier {
    jc_verify_fn fn;
    void *userdata;
    jc_verify_result res;
    int64_t *bad; /* rowids to remove */
    size_t nbad, badcap;
} verifier;

static void file_problem(void *ctx, const char *problem)
{
    verifier *v = ctx;
    v->res.file_problems++;
    if (v->fn)
        v->fn(NULL, problem, v->userdata);
}

static int note_bad(verifier *v, const jc__row *r, const char *problem, bool repair)
{
    jc_entry_info info;
    v->res.bad_entries++;
    jc__i_info_from_row(r, &info);
    if (v->fn)
        v->fn(&info, problem, v->userdata);
    if (!repair)
        return 0;
    if (JC__GROW(v->bad, v->badcap, v->nbad + 1))
        return jc__set_error(JC_ENOMEM, "out of memory verifying a cache");
    v->bad[v->nbad++] = r->rowid;
    return 0;
}

/* Reads and checks the entry rowid. A read that finds the file damaged is
 * a problem of the file, reported, and the check goes on. */
static int verify_one(jc_cache *cache, verifier *v, int64_t rowid, bool repair)
{
    char problem[600];
    jc__row r;
    int rc = jc__cache_row(cache, rowid, true, &r);
    if (rc == JC_ECORRUPT) {
        /* On a damaged page: counted; the first one's message is reported
         * (the others say the same of their neighbours). */
        if (v->res.unreadable++ == 0)
            file_problem(v, jc_errmsg());
        return 0;
    }
    if (rc <= 0)
        return rc;
    if (r.key_format != JC_KEY_FORMAT_VERSION) {
        /* Made by a release of another key format: its key cannot be
         * recomputed here, and it is no damage (it is never served). */
        v->res.other_format++;
        return 0;
    }
    v->res.checked++;
    v->res.unchecked += r.check_len == 0;
    /* A result in pieces is read again with its parts in one snapshot: a
     * writer replacing it between the two is not damage. */
    bool snap = jc__result_in_pieces(r.result, r.result_len) && jc__cache_snapshot_begin(cache);
    if (snap && (rc = jc__cache_row(cache, rowid, true, &r)) != 1) {
        jc__cache_snapshot_end(cache, snap);
        return rc < 0 ? rc : 0; /* removed meanwhile */
    }
    rc = jc__i_check_row(cache, &r, problem, sizeof problem);
    jc__cache_snapshot_end(cache, snap);
    return rc == 1 ? note_bad(v, &r, problem, repair) : rc;
}

/* Removes the bad entries in one transaction, each checked again first:
 * another process may have rewritten it with a sound result meanwhile. */
static int remove_bad(jc_cache *cache, verifier *v)
{
    char problem[600];
    int rc = jc__cache_write_begin(cache);
    if (rc) /* no transaction to end: keep begin's own error (JC_EBUSY, ...) */
        return rc;
    for (size_t i = 0; i < v->nbad && !rc; i++) {
        jc__row r;
        rc = jc__cache_row(cache, v->bad[i], true, &r);
        if (rc == 1 && r.key_format != JC_KEY_FORMAT_VERSION)
            rc = 0; /* rewritten meanwhile by a release of another key format: kept */
        if (rc == 1 && (rc = jc__i_check_row(cache, &r, problem, sizeof problem)) == 1) {
            rc = jc__cache_delete_rowid(cache, v->bad[i]);
            v->res.removed += rc == 1;
        }
        rc = rc < 0 ? rc : 0;
    }
    rc = jc__cache_write_end(cache, rc, true);
    if (rc)
        v->res.removed = 0;
    return rc;
}

int jc_cache_verify(jc_cache *cache, bool repair, jc_verify_fn fn, void *userdata,
                    jc_verify_result *out)
{
    verifier v = {.fn = fn, .userdata = userdata};
    jc__pager *pg = NULL;
    const int64_t *ids = NULL;
    size_t n = 0;
    int rc = repair ? jc__i_writable(cache, "jc_cache_verify") : jc__i_usable(cache, "jc_cache_verify");
    if (rc)
        goto out;
    rc = jc__cache_integrity(cache, file_problem, &v);
    if (rc == JC_ECORRUPT) {
        /* The check itself stopped on damage: that is a finding too. */
        file_problem(&v, jc_errmsg());
        rc = 0;
    }
    if (rc < 0)
        goto out;
    rc = jc__cache_pager_new(cache, &(jc__select){.order = JC__ORDER_ROWID}, &pg);
    int64_t last = 0; /* the last row id checked: pages come in row id order */
    while (!rc && (rc = jc__cache_pager_next(pg, &ids, &n)) == 0 && n)
        for (size_t i = 0; i < n && !rc; i++) {
            rc = verify_one(cache, &v, ids[i], repair);
            last = ids[i];
        }
    if (rc == JC_ECORRUPT) {
        /* The table cannot be listed past a damaged page: that is a
         * finding, and every entry after the last one checked that can
         * still be read is checked, by row id up to the largest (each read
         * touches only its own pages). */
        file_problem(&v, jc_errmsg());
        int64_t max = 0;
        rc = jc__cache_max_rowid(cache, &max);
        if (rc == JC_ECORRUPT) {
            file_problem(&v, jc_errmsg());
            rc = 0;
        }
        for (int64_t id = last + 1; id <= max && !rc; id++)
            rc = verify_one(cache, &v, id, repair);
    }
    if (!rc && v.nbad)
        rc = remove_bad(cache, &v);
out:
    jc__cache_pager_free(pg);
    free(v.bad);
    if (out)
        *out = v.res;
    return rc;
}
