/*
 * Looking entries up, one or many at once, and recording hits.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "store/store.h"
#include "sqlite_int.h"

/* ---- entries ---- */

/* Rows are read through sqlite3_column_value and the value's own
 * accessors: each sqlite3_column_* call enters and leaves the statement
 * (some 60 instructions), the value's accessors do not, and a blob column
 * takes two of them (its bytes, its length). Such a value is unprotected
 * (https://sqlite.org/c3ref/column_blob.html): safe here, where one thread
 * at a time uses the connection (SQLITE_OPEN_NOMUTEX), and read before the
 * statement steps or resets. Blob before length, as SQLite advises. */
static const void *value_blob(sqlite3_value *v, size_t *len)
{
    const void *p = sqlite3_value_blob(v);
    *len = (size_t)sqlite3_value_bytes(v);
    return p;
}

/* The checksum and code fingerprint at columns col, col + 1: a 16-byte
 * value is copied out; NULL is none. A checksum column that holds
 * anything else (a hostile file) still counts as a checksum (all zero
 * bytes), so that it fails: the row was damaged; such a fingerprint is
 * unknown. */
static void hit_checks(sqlite3_stmt *s, int col, jc__hit *hit)
{
    size_t n;
    sqlite3_value *v = sqlite3_column_value(s, col);
    const void *p = value_blob(v, &n);
    if (p && n == JC__CHECK_LEN) {
        memcpy(hit->check, p, JC__CHECK_LEN);
        hit->has_check = true;
    } else {
        hit->has_check = sqlite3_value_type(v) != SQLITE_NULL;
        memset(hit->check, 0, sizeof hit->check);
    }
    p = value_blob(sqlite3_column_value(s, col + 1), &n);
    hit->has_code_fp = p && n == JC__CHECK_LEN;
    if (hit->has_code_fp)
        memcpy(hit->code_fp, p, JC__CHECK_LEN);
}

/* The result at column col: false when it is not a blob (a miss, computed
 * again and overwritten, like a blob that does not decode). */
static bool hit_result(sqlite3_stmt *s, int col, jc__hit *hit)
{
    sqlite3_value *v = sqlite3_column_value(s, col);
    if (sqlite3_value_type(v) != SQLITE_BLOB)
        return false;
    hit->result = value_blob(v, &hit->result_len);
    if (!hit->result)
        hit->result = "";
    return true;
}

/* Copies the found row into *hit; the result goes into st->buf. Returns 1,
 * 0 when the row has no usable result, or a negative code. */
static int fill_hit(jc__sqlite *st, sqlite3_stmt *s, jc__hit *hit)
{
    jc__hit found = {0};
    if (!hit_result(s, 0, &found))
        return 0; /* like a blob that does not decode: a miss, computed again */
    const void *p = found.result;
    size_t n = found.result_len;
    if (n > st->buf_cap || !st->buf) {
        void *nb = realloc(st->buf, n ? n : 1);
        if (!nb)
            return jc__set_error(JC_ENOMEM,
                                 "cache file '%s': out of memory reading a %zu-byte result",
                                 st->path, n);
        st->buf = nb;
        st->buf_cap = n ? n : 1;
    }
    if (n)
        memcpy(st->buf, p, n);
    hit->result = st->buf;
    hit->result_len = n;
    hit->compute_seconds = sqlite3_column_double(s, 1);
    hit_checks(s, 2, hit);
    hit->created = 0; /* jc__sqlite_get serves jc_memo, which expires nothing */
    return 1;
}

int jc__sqlite_get(jc__sqlite *st, const uint8_t key[JC__KEY_LEN], jc__hit *hit)
{
    int rc = jc__sq_store_enter(st);
    if (rc)
        return rc;
    if (!key || !hit)
        return jc__set_error(JC_EINVAL, "cache file '%s': lookup with a NULL key or hit", st->path);
    /* SQLITE_STATIC: key is only read before the reset below. */
    sqlite3_bind_blob(st->get, 1, key, JC__KEY_LEN, SQLITE_STATIC);
    int step = sqlite3_step(st->get);
    if (step == SQLITE_ROW) {
        rc = fill_hit(st, st->get, hit); /* 1 found, 0 unusable, < 0 error */
    } else if (step != SQLITE_DONE) {
        rc = jc__sq_store_error(st, step, "looking up an entry");
    }
    sqlite3_reset(st->get);
    return rc;
}

int jc__sqlite_read_begin(jc__sqlite *st)
{
    int rc = jc__sq_store_enter(st);
    if (rc || st->depth > 0 || st->reading)
        return rc;
    int b = sqlite3_step(st->begin_read);
    sqlite3_reset(st->begin_read);
    if (b != SQLITE_DONE)
        return jc__sq_store_error(st, b, "beginning a read transaction");
    st->reading = true;
    return 0;
}

void jc__sqlite_read_end(jc__sqlite *st)
{
    if (st && jc__sq_same_process(st))
        jc__sq_end_read(st);
}


/* A sum from the file as an int64: a hostile file can make total() any
 * double, and converting one out of range is undefined. */
int64_t jc__sq_clamp_int64(double d)
{
    if (!(d >= 0))
        return 0;
    if (d >= 9.2e18)
        return INT64_MAX;
    return (int64_t)d;
}

/* ---- many lookups at once ---- */

/* Open-addressing set of the wanted keys. The keys are hashes already, so
 * their first 8 bytes index the table; each slot keeps them too, so that a
 * probe compares against the caller's key only on a likely match. */
typedef struct keyslot {
    uint64_t bits;
    size_t index; /* + 1; 0 = empty */
} keyslot;

typedef struct keyset {
    keyslot *slots;
    size_t mask;
} keyset;

static uint64_t key_bits(const uint8_t *k)
{
    uint64_t h;
    memcpy(&h, k, sizeof h);
    return h;
}

static int keyset_build(keyset *ks, const uint8_t *const *keys, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    ks->slots = calloc(cap, sizeof *ks->slots);
    if (!ks->slots)
        return jc__set_error(JC_ENOMEM, "out of memory looking up %zu keys", n);
    ks->mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = key_bits(keys[i]);
        size_t at = (size_t)bits & ks->mask;
        while (ks->slots[at].index)
            at = (at + 1) & ks->mask;
        ks->slots[at] = (keyslot){bits, i + 1};
    }
    return 0;
}

/* The index of key among the wanted keys, or SIZE_MAX. */
static size_t keyset_find(const keyset *ks, const uint8_t *const *keys, const uint8_t *key)
{
    uint64_t bits = key_bits(key);
    for (size_t at = (size_t)bits & ks->mask; ks->slots[at].index; at = (at + 1) & ks->mask)
        if (ks->slots[at].bits == bits && memcmp(keys[ks->slots[at].index - 1], key, JC__KEY_LEN) == 0)
            return ks->slots[at].index - 1;
    return SIZE_MAX;
}

/* Rows above which a pass goes through a small page cache. */
#define SCAN_SMALL_CACHE_ROWS 20000

/* One pass over the whole table, picking out the wanted rows. The table
 * is in the order its entries were stored, which for a sweep run again is
 * the order of its calls (99,974 of 100,000 rows of a cold run on two
 * workers follow the row before in the batch): each row is first compared
 * with the key after the last one found, read in order, and looked up in
 * the set of wanted keys, built at the first row that is not that key,
 * only then. A probe of that set (a table of 4 MiB for 100,000 keys) is a
 * cache miss, a fifth of the time of a warm rerun in perf. */
static int get_by_scan(jc__sqlite *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx)
{
    keyset ks = {0};
    int rc = 0;
    bool *seen = calloc(n ? n : 1, sizeof *seen);
    if (!seen)
        return jc__set_error(JC_ENOMEM, "out of memory looking up %zu keys", n);
    size_t next = 0; /* the key expected next */
    int step;
    sqlite3_stmt *scan = st->want_created ? st->scan_created : st->scan;
    while ((step = sqlite3_step(scan)) == SQLITE_ROW) {
        size_t klen;
        const uint8_t *key = value_blob(sqlite3_column_value(scan, 0), &klen);
        if (!key || klen != JC__KEY_LEN)
            continue; /* the schema's CHECK makes this impossible; verify reports it */
        size_t i = next;
        if (i >= n || memcmp(keys[i], key, JC__KEY_LEN) != 0) {
            if (!ks.slots && (rc = keyset_build(&ks, keys, n)))
                break;
            i = keyset_find(&ks, keys, key);
        }
        /* Each wanted key is answered once: a hostile file can hold the same
         * key twice behind an index that claims to be unique. */
        if (i == SIZE_MAX || seen[i])
            continue;
        seen[i] = true;
        next = i + 1;
        jc__hit hit = {0};
        if (!hit_result(scan, 2, &hit))
            continue; /* like a blob that does not decode: computed again */
        hit.compute_seconds = sqlite3_column_double(scan, 1);
        hit_checks(scan, 3, &hit);
        hit.created = st->want_created ? sqlite3_column_double(scan, 5) : 0;
        on_hit(ctx, i, &hit);
    }
    if (!rc && step != SQLITE_DONE)
        rc = jc__sq_store_error(st, step, "scanning for entries");
    sqlite3_reset(scan);
    free(ks.slots);
    free(seen);
    return rc;
}

typedef struct key_ref {
    const uint8_t *key;
    size_t index;
} key_ref;

static int cmp_key_ref(const void *a, const void *b)
{
    return memcmp(((const key_ref *)a)->key, ((const key_ref *)b)->key, JC__KEY_LEN);
}

/* Point lookups, in key order: neighbouring keys share index pages. */
static int get_by_points(jc__sqlite *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx)
{
    key_ref *order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return jc__set_error(JC_ENOMEM, "out of memory looking up %zu keys", n);
    for (size_t i = 0; i < n; i++)
        order[i] = (key_ref){keys[i], i};
    qsort(order, n, sizeof *order, cmp_key_ref);
    int rc = 0;
    sqlite3_stmt *get = st->want_created ? st->get_created : st->get;
    for (size_t k = 0; k < n && !rc; k++) {
        size_t i = order[k].index;
        sqlite3_bind_blob(get, 1, keys[i], JC__KEY_LEN, SQLITE_STATIC);
        int step = sqlite3_step(get);
        jc__hit hit = {0};
        if (step == SQLITE_ROW && hit_result(get, 0, &hit)) {
            hit.compute_seconds = sqlite3_column_double(get, 1);
            hit_checks(get, 2, &hit);
            hit.created = st->want_created ? sqlite3_column_double(get, 4) : 0;
            on_hit(ctx, i, &hit);
        } else if (step != SQLITE_ROW && step != SQLITE_DONE) {
            rc = jc__sq_store_error(st, step, "looking up an entry");
        }
        sqlite3_reset(get);
    }
    free(order);
    return rc;
}

int jc__sqlite_get_many(jc__sqlite *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx)
{
    int rc = jc__sq_store_enter(st);
    if (rc || !n)
        return rc;
    /* max(rowid) bounds the number of rows, found in O(log n). When the
     * batch asks for a good share of the table, one sequential pass beats
     * n B-tree descents (each a few microseconds); otherwise point lookups. */
    int64_t rows = 0;
    int step = sqlite3_step(st->max_rowid);
    if (step == SQLITE_ROW)
        rows = sqlite3_column_int64(st->max_rowid, 0);
    sqlite3_reset(st->max_rowid);
    if (step != SQLITE_ROW)
        return jc__sq_store_error(st, step, "counting entries");
    if ((uint64_t)rows <= 4 * (uint64_t)n) {
        /* A pass over a large table reads each page once: through a
         * listing's small page cache (sqlite_int.h), it does not grow this
         * process by the whole table (12 MB, and 3,000 page faults, of a
         * warm rerun of 100,000 calls). */
        bool big = rows > SCAN_SMALL_CACHE_ROWS && st->depth == 0; /* no dirty pages to spill */
        if (big && st->listings++ == 0)
            jc__sq_run_sql(st, JC__SQ_MEMORY_LISTING, "bounding the memory of a pass"); /* best effort */
        rc = get_by_scan(st, keys, n, on_hit, ctx);
        if (big && --st->listings == 0) {
            char *msg = rc ? jc__strdup(jc_errmsg()) : NULL; /* the scan's failure is what is told */
            jc__sq_run_sql(st, JC__SQ_MEMORY_USE, "restoring the memory of the connection");
            if (msg)
                jc__set_error(rc, "%s", msg);
            free(msg);
        }
        return rc;
    }
    return get_by_points(st, keys, n, on_hit, ctx);
}

int jc__sqlite_get_checks(jc__sqlite *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx)
{
    int rc = jc__sq_store_enter(st);
    if (rc || !n)
        return rc;
    if (!st->get_check) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT compute_seconds, %s, created FROM entries WHERE key = ?1 AND %s = "
                 STR(JC_KEY_FORMAT_VERSION), jc__sq_v2_columns(st), jc__sq_key_format_column(st));
        if ((rc = jc__sq_prepare(st, sql, &st->get_check)))
            return rc;
    }
    key_ref *order = malloc(n * sizeof *order);
    if (!order)
        return jc__set_error(JC_ENOMEM, "out of memory looking up %zu keys", n);
    for (size_t i = 0; i < n; i++)
        order[i] = (key_ref){keys[i], i};
    qsort(order, n, sizeof *order, cmp_key_ref);
    for (size_t k = 0; k < n && !rc; k++) {
        size_t i = order[k].index;
        sqlite3_bind_blob(st->get_check, 1, keys[i], JC__KEY_LEN, SQLITE_STATIC);
        int step = sqlite3_step(st->get_check);
        if (step == SQLITE_ROW) {
            jc__hit hit = {.compute_seconds = sqlite3_column_double(st->get_check, 0)};
            hit_checks(st->get_check, 1, &hit);
            hit.created = sqlite3_column_double(st->get_check, 3);
            on_hit(ctx, i, &hit);
        } else if (step != SQLITE_DONE) {
            rc = jc__sq_store_error(st, step, "looking up an entry");
        }
        sqlite3_reset(st->get_check);
    }
    free(order);
    return rc;
}

int jc__sqlite_data_version(jc__sqlite *st, int64_t *out)
{
    int rc = jc__sq_store_enter(st);
    if (rc)
        return rc;
    if (!st->data_version && (rc = jc__sq_prepare(st, "PRAGMA data_version", &st->data_version)))
        return rc;
    int step = sqlite3_step(st->data_version);
    *out = step == SQLITE_ROW ? sqlite3_column_int64(st->data_version, 0) : -1;
    sqlite3_reset(st->data_version);
    return step == SQLITE_ROW ? 0 : jc__sq_store_error(st, step, "reading the data version");
}

bool jc__sqlite_want_created(jc__sqlite *st, bool want)
{
    bool was = st->want_created;
    st->want_created = want;
    return was;
}
