/*
 * The PostgreSQL store's entries: looking them up (one key, or many keys
 * in batches of one statement each), storing and removing them, the parts
 * of results in pieces (the chunks table: docs/format.md, "Large
 * results"), the names of parameters, and the lookups of pipelines (an
 * entry by its result's checksum, the entries whose arguments refer to
 * it). Each does what store.h says, as the SQLite store does
 * (store/sqlite/lookup.c, entries.c, chunks.c, list.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "pg_int.h"
#include "store/parts/parts.h"

/* Keys per statement of jc__pg_get_many / jc__pg_get_checks: a batch's
 * rows are read whole into memory (pg_int.h: no result is left pending on
 * the connection), so a batch of results is smaller than one of checksums
 * (some 70 bytes a row). */
#define GET_BATCH 4096
#define CHECK_BATCH 4096

/* Chunks per statement of jc__pg_part_read: at most 8 MiB beside the value
 * being read, where one statement per chunk would pay a round trip per
 * MiB. */
#define PART_BATCH 8

#define CHUNK_RAW JC__CHUNK_RAW /* store/parts/parts.h */

/* The most a statement's values may take: the server refuses a message of
 * 1 GiB or more by closing the connection, so a larger entry is refused
 * here, with a message, before it is sent (1 MiB is left for the rest of
 * the message). */
#define STATEMENT_MAX (((size_t)1 << 30) - ((size_t)1 << 20))

/* ---- lookups ---- */

/* The columns every lookup reads, in this order: the key (to map a row
 * back to the keys asked for), the result, the compute time, the checksum
 * and code fingerprint, the creation time. */
enum { COL_KEY, COL_RESULT, COL_SECONDS, COL_CHECK, COL_CODE_FP, COL_CREATED };
#define HIT_COLS "key, result, compute_seconds::float8, result_check, code_fp, created::float8"
#define HIT_COLS_E "e.key, e.result, e.compute_seconds::float8, e.result_check, e.code_fp, e.created::float8"
#define CHECK_COLS_E                                                                                   \
    "e.key, NULL::bytea AS result, e.compute_seconds::float8, e.result_check, e.code_fp, e.created::float8"

/* An entry of another key format is never served, not even under an equal
 * key (as in the SQLite store); the format goes as parameter $2. */
static const char get_sql[] = "SELECT " HIT_COLS " FROM entries WHERE key = $1 AND key_format = $2";
/* A batch is looked up key by key through the key's index (a lateral
 * join on the keys sent), never by `key = ANY($1)`: for that the planner
 * takes a pass over the whole table when it expects a batch to be a fair
 * share of it, and then compares every row with every key of the batch
 * (30 ms for 1,024 keys in 100,000 entries, against 5 ms by the index). */
#define BY_KEYS(cols)                                                                                  \
    "SELECT " cols " FROM unnest($1::bytea[]) AS k(key) CROSS JOIN LATERAL"                            \
    " (SELECT * FROM entries WHERE entries.key = k.key AND key_format = $2 LIMIT 1) AS e"
static const char get_many_sql[] = BY_KEYS(HIT_COLS_E);
static const char get_checks_sql[] = BY_KEYS(CHECK_COLS_E);

/* Fills *hit from row i of r (columns COL_*); result points into r. A
 * checksum column that holds anything but 16 bytes still counts as a
 * checksum (all zero bytes), so that the hit fails its check as a damaged
 * row must; such a fingerprint is unknown. Returns false when the row has
 * no result to serve (a miss, as a result that is not a blob in SQLite). */
static bool read_hit(const PGresult *r, int i, bool result, bool created, jc__hit *hit)
{
    memset(hit, 0, sizeof *hit);
    if (result) {
        const uint8_t *b = jc__pg_bytes(r, i, COL_RESULT, &hit->result_len);
        if (!b)
            return false;
        hit->result = b;
    }
    hit->compute_seconds = jc__pg_float8(r, i, COL_SECONDS);
    size_t n;
    const uint8_t *c = jc__pg_bytes(r, i, COL_CHECK, &n);
    hit->has_check = !jc__pg_isnull(r, i, COL_CHECK);
    if (c && n == JC__CHECK_LEN)
        memcpy(hit->check, c, JC__CHECK_LEN);
    c = jc__pg_bytes(r, i, COL_CODE_FP, &n);
    hit->has_code_fp = c && n == JC__CHECK_LEN;
    if (hit->has_code_fp)
        memcpy(hit->code_fp, c, JC__CHECK_LEN);
    hit->created = created ? jc__pg_float8(r, i, COL_CREATED) : 0;
    return true;
}

int jc__pg_get(jc__pg *pg, const uint8_t key[JC__KEY_LEN], jc__hit *hit)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (!key || !hit)
        return jc__set_error(JC_EINVAL, "cache '%s': lookup with a NULL key or hit", pg->name);
    jc__pg_params p = {0};
    jc__pg_p_bytes(&p, key, JC__KEY_LEN);
    jc__pg_p_int8(&p, JC_KEY_FORMAT_VERSION);
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, "looking up an entry", get_sql, &p, &r);
    if (rc)
        return rc;
    /* The hit points into r: kept until the next call (store.h). */
    jc__pg_keep(pg, r);
    if (PQntuples(r) == 0)
        return 0;
    return read_hit(r, 0, true, pg->want_created, hit) ? 1 : 0;
}

/* A wanted key and the index it was asked at. */
typedef struct key_ref {
    const uint8_t *key;
    size_t index;
} key_ref;

static int cmp_key_ref(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    int c = memcmp(x->key, y->key, JC__KEY_LEN);
    if (c)
        return c;
    return (x->index > y->index) - (x->index < y->index);
}

/* The first of refs[lo, hi) (sorted) whose key is key, or hi. */
static size_t lower_bound(const key_ref *refs, size_t lo, size_t hi, const uint8_t *key)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(refs[mid].key, key, JC__KEY_LEN) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A batch: refs[lo, hi) ask for the m keys distinct[first .. first + m). */
typedef struct key_batch {
    size_t lo, hi, first, m;
} key_batch;

/* Sends batch b's statement (sql: $1 its keys as bytea[], $2 the key
 * format), in the pipeline or (pipe false) waiting for its result. */
static int send_batch(jc__pg *pg, const char *sql, const uint8_t **distinct, const key_batch *b, bool pipe,
                      PGresult **r)
{
    jc__pg_params p = {0};
    jc__pg_p_bytea_array(&p, distinct + b->first, b->m, JC__KEY_LEN);
    jc__pg_p_int8(&p, JC_KEY_FORMAT_VERSION);
    int rc = pipe ? jc__pg_pipeline_send(pg, "looking up entries", sql, &p)
                  : jc__pg_query(pg, "looking up entries", sql, &p, r);
    jc__pg_p_free(&p);
    return rc;
}

/* Answers every index that asked for a row of r. */
static void answer(const PGresult *r, const key_ref *refs, const key_batch *b, bool result, bool created,
                   jc__hit_fn on_hit, void *ctx)
{
    int rows = PQntuples(r);
    for (int row = 0; row < rows; row++) {
        size_t len;
        const uint8_t *key = jc__pg_bytes(r, row, COL_KEY, &len);
        jc__hit hit;
        if (!key || len != JC__KEY_LEN || !read_hit(r, row, result, created, &hit))
            continue;
        for (size_t k = lower_bound(refs, b->lo, b->hi, key); k < b->hi && memcmp(refs[k].key, key, JC__KEY_LEN) == 0;
             k++)
            on_hit(ctx, refs[k].index, &hit);
    }
}

/* The keys sorted, then sent in batches of at most batch distinct keys,
 * each one statement: a key asked for at several indexes goes once, and a
 * row found is answered at each of them. In key order, neighbouring keys
 * share the index's pages. Several batches go in a pipeline, the next one
 * sent before the results of this one are handled, so that the server
 * looks up one batch while this process answers the one before. */
static int get_batches(jc__pg *pg, const uint8_t *const *keys, size_t n, size_t batch, const char *sql,
                       bool result, bool created, jc__hit_fn on_hit, void *ctx)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (!n)
        return 0;
    if (!keys || !on_hit)
        return jc__set_error(JC_EINVAL, "cache '%s': lookup of %zu keys with NULL keys or callback", pg->name, n);
    key_ref *refs = malloc(n * sizeof *refs);
    const uint8_t **distinct = malloc(n * sizeof *distinct);
    key_batch *batches = malloc((n / batch + 1) * sizeof *batches);
    if (!refs || !distinct || !batches) {
        free(refs);
        free(distinct);
        free(batches);
        return jc__set_error(JC_ENOMEM, "cache '%s': out of memory looking up %zu keys", pg->name, n);
    }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!keys[i])
            rc = jc__set_error(JC_EINVAL, "cache '%s': lookup of a NULL key (number %zu)", pg->name, i);
        refs[i] = (key_ref){keys[i], i};
    }
    if (!rc)
        qsort(refs, n, sizeof *refs, cmp_key_ref);
    size_t nb = 0, total = 0;
    for (size_t lo = 0; lo < n && !rc;) {
        /* refs[lo, hi) hold the batch's keys, each once in distinct. */
        key_batch b = {.lo = lo, .hi = lo, .first = total};
        while (b.hi < n && (b.m < batch || memcmp(refs[b.hi].key, distinct[total - 1], JC__KEY_LEN) == 0)) {
            if (total == b.first || memcmp(refs[b.hi].key, distinct[total - 1], JC__KEY_LEN) != 0) {
                distinct[total++] = refs[b.hi].key;
                b.m++;
            }
            b.hi++;
        }
        batches[nb++] = b;
        lo = b.hi;
    }
    if (!rc && nb == 1) {
        PGresult *r = NULL;
        rc = send_batch(pg, sql, distinct, &batches[0], false, &r);
        if (!rc)
            answer(r, refs, &batches[0], result, created, on_hit, ctx);
        PQclear(r); /* hit->result was valid during the calls only */
    } else if (!rc && nb > 1) {
        rc = jc__pg_pipeline_begin(pg);
        if (!rc)
            rc = send_batch(pg, sql, distinct, &batches[0], true, NULL);
        for (size_t k = 0; k < nb && !rc; k++) {
            if (k + 1 < nb)
                rc = send_batch(pg, sql, distinct, &batches[k + 1], true, NULL);
            PGresult *r = NULL;
            if (!rc)
                rc = jc__pg_pipeline_take(pg, "looking up entries", &r);
            if (!rc)
                answer(r, refs, &batches[k], result, created, on_hit, ctx);
            PQclear(r);
        }
        int end = pg->conn && PQpipelineStatus(pg->conn) != PQ_PIPELINE_OFF ? jc__pg_pipeline_end(pg) : 0;
        if (!rc)
            rc = end;
    }
    free(refs);
    free(distinct);
    free(batches);
    return rc;
}

int jc__pg_get_many(jc__pg *pg, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx)
{
    return get_batches(pg, keys, n, GET_BATCH, get_many_sql, true, pg && pg->want_created, on_hit, ctx);
}

int jc__pg_get_checks(jc__pg *pg, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx)
{
    return get_batches(pg, keys, n, CHECK_BATCH, get_checks_sql, false, true, on_hit, ctx);
}

/* ---- storing ---- */

/* Inserts or replaces the row; a replacement keeps its id and hit count,
 * as SQLite's upsert keeps the rowid and hits. The replaced entry's chunks
 * go in the same statement (the foreign key's cascade acts on deletes
 * only). Parameters: $1 key, $2 function, $3 version, $4 args, $5 result,
 * $6 args_size, $7 result_size, $8 now (created and last_used), $9
 * compute_seconds, $10 result_check, $11 code_fp, $12 key_format. */
static const char put_sql[] =
    "WITH gone AS (DELETE FROM chunks WHERE key = $1)"
    " INSERT INTO entries (key, function, version, args, result, args_size, result_size, created, last_used,"
    " compute_seconds, hits, result_check, code_fp, key_format)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, 0, $10, $11, $12)"
    " ON CONFLICT (key) DO UPDATE SET function = excluded.function, version = excluded.version,"
    " args = excluded.args, result = excluded.result, args_size = excluded.args_size,"
    " result_size = excluded.result_size, created = excluded.created, last_used = excluded.last_used,"
    " compute_seconds = excluded.compute_seconds, result_check = excluded.result_check,"
    " code_fp = excluded.code_fp, key_format = excluded.key_format";

static int put_chunk(jc__pg *pg, const uint8_t key[JC__KEY_LEN], uint32_t part, int32_t seq, int codec, size_t raw,
                     const void *data, size_t len)
{
    jc__pg_params p = {0};
    jc__pg_p_bytes(&p, key, JC__KEY_LEN);
    jc__pg_p_int4(&p, (int32_t)part);
    jc__pg_p_int4(&p, seq);
    jc__pg_p_int4(&p, codec);
    jc__pg_p_int8(&p, (int64_t)raw);
    jc__pg_p_bytes(&p, len ? data : "", len);
    return jc__pg_exec(pg, "storing a part of a result",
                       "INSERT INTO chunks (key, part, seq, codec, size, data) VALUES ($1, $2, $3, $4, $5, $6)", &p,
                       NULL);
}

/* Writes the parts of the entry under key in chunks of CHUNK_RAW bytes,
 * each part compressed chunk by chunk when the trial says so (and a chunk
 * that does not shrink stored as it is: its codec says which); *stored
 * gets the bytes the chunks take. */
static int put_pieces(jc__pg *pg, const uint8_t key[JC__KEY_LEN], const jc__part *pieces, size_t n, int level,
                      int64_t *stored)
{
    *stored = 0;
    ZSTD_CCtx *cc = NULL;
    size_t zcap = ZSTD_compressBound(CHUNK_RAW);
    int rc = 0;
    if (level > 0) {
        /* The frames are made in pg->buf, which a put hands out to no one. */
        if ((rc = jc__pg_reserve(pg, zcap)) != 0)
            return rc;
        if (!(cc = ZSTD_createCCtx()))
            return jc__set_error(JC_ENOMEM, "cache '%s': out of memory compressing a result", pg->name);
    }
    for (size_t i = 0; i < n && !rc; i++) {
        const unsigned char *p = pieces[i].data;
        size_t left = pieces[i].len;
        bool squeeze = cc && jc__part_worth_compressing(cc, &pieces[i], level, pg->buf, zcap);
        int32_t seq = 0;
        do {
            size_t raw = left < CHUNK_RAW ? left : CHUNK_RAW;
            size_t zl = squeeze ? ZSTD_compressCCtx(cc, pg->buf, zcap, p, raw, level) : 0;
            if (squeeze && !ZSTD_isError(zl) && zl < raw) {
                rc = put_chunk(pg, key, (uint32_t)i, seq, 1, raw, pg->buf, zl);
                *stored += (int64_t)zl;
            } else {
                rc = put_chunk(pg, key, (uint32_t)i, seq, 0, raw, p, raw);
                *stored += (int64_t)raw;
            }
            p += raw;
            left -= raw;
            seq++;
        } while (left && !rc);
    }
    ZSTD_freeCCtx(cc);
    return rc;
}

/* The row and its parts. The upsert holds the entry's row lock until the
 * transaction ends, and only then are chunks removed again, in a statement
 * of its own: its snapshot, newer than the upsert's, sees the chunks that
 * another session writing the same key committed while the upsert waited
 * for that lock (the upsert's own removal cannot see them), which would
 * otherwise collide with the parts written here. */
static int put_with_pieces(jc__pg *pg, const jc__entry_in *e, const jc__pg_params *row)
{
    int rc = jc__pg_exec(pg, "storing an entry", put_sql, row, NULL);
    if (!rc) {
        jc__pg_params p = {0};
        jc__pg_p_bytes(&p, e->key, JC__KEY_LEN);
        rc = jc__pg_exec(pg, "removing the parts of a replaced result", "DELETE FROM chunks WHERE key = $1", &p,
                         NULL);
    }
    int64_t stored = 0;
    if (!rc)
        rc = put_pieces(pg, e->key, e->pieces, e->npieces, e->compress_level, &stored);
    if (!rc) {
        /* result_size: what the result takes, its chunks as stored
         * included (docs/format.md). */
        jc__pg_params p = {0};
        jc__pg_p_bytes(&p, e->key, JC__KEY_LEN);
        jc__pg_p_int8(&p, (int64_t)e->result_len + stored);
        rc = jc__pg_exec(pg, "storing an entry", "UPDATE entries SET result_size = $2 WHERE key = $1", &p, NULL);
    }
    return rc;
}

/* ---- entries stored in a transaction, sent together ----
 *
 * A run stores its results in transactions of many entries. Sent one
 * statement each, every entry would cost a round trip and the server's
 * parsing and planning (350 us an entry here, where the SQLite file takes
 * 10); so entries without parts stored inside a write transaction wait in
 * memory and go as one statement of arrays (put_many_sql) when PUT_ROWS or
 * PUT_BYTES are reached, before any other statement, and at commit
 * (pg_int.h, pending). An error then is the transaction's, as a failed
 * statement's is; a rollback drops them. */
enum { PUT_ROWS = 4096 };
#define PUT_BYTES ((size_t)8 << 20)

typedef struct put_row {
    uint8_t key[JC__KEY_LEN], check[JC__CHECK_LEN], code_fp[JC__CHECK_LEN];
    bool has_code_fp;
    size_t fn, ver, args, result; /* offsets of the strings and blobs in data */
    size_t fn_len, ver_len, args_len, result_len;
    double now, seconds;
} put_row;

struct jc__pg_puts {
    put_row *rows;
    size_t n, cap;
    char *data; /* the rows' strings and blobs, one after another */
    size_t len, data_cap;
};

/* The statement: one row per element of the arrays; a replaced entry
 * keeps its id and hit count, and its chunks go (as put_sql). Keys are
 * distinct (ON CONFLICT may touch a row once per statement): flush_puts
 * keeps the last entry stored under a key. */
static const char put_many_sql[] =
    "WITH u AS (SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], $4::bytea[], $5::bytea[],"
    " $6::float8[], $7::float8[], $8::bytea[], $9::bytea[]) AS u(key, function, version, args, result, now,"
    " seconds, result_check, code_fp)),"
    " gone AS (DELETE FROM chunks c USING u WHERE c.key = u.key)"
    " INSERT INTO entries (key, function, version, args, result, args_size, result_size, created, last_used,"
    " compute_seconds, hits, result_check, code_fp, key_format)"
    " SELECT key, function, version, args, result, length(args), length(result), now, now, seconds, 0,"
    " result_check, code_fp, $10 FROM u"
    " ON CONFLICT (key) DO UPDATE SET function = excluded.function, version = excluded.version,"
    " args = excluded.args, result = excluded.result, args_size = excluded.args_size,"
    " result_size = excluded.result_size, created = excluded.created, last_used = excluded.last_used,"
    " compute_seconds = excluded.compute_seconds, result_check = excluded.result_check,"
    " code_fp = excluded.code_fp, key_format = excluded.key_format";

static int cmp_put_row(const void *a, const void *b)
{
    const put_row *const *x = a, *const *y = b;
    int c = memcmp((*x)->key, (*y)->key, JC__KEY_LEN);
    if (c)
        return c;
    return (*x > *y) - (*x < *y); /* the order stored: the last wins */
}

static int cmp_put_order(const void *a, const void *b)
{
    const put_row *const *x = a, *const *y = b;
    return (*x > *y) - (*x < *y);
}

/* Sends the waiting entries as one statement (send), or drops them. */
static int flush_puts(jc__pg *pg, bool send)
{
    jc__pg_puts *b = pg->puts;
    int rc = 0;
    if (!send || !b) {
        if (b) {
            free(b->rows);
            free(b->data);
            free(b);
        }
        pg->puts = NULL;
        pg->pending = NULL;
        return 0;
    }
    if (!b->n)
        return 0;
    const put_row **order = malloc(b->n * sizeof *order);
    if (!order) {
        rc = jc__set_error(JC_ENOMEM, "cache '%s': out of memory storing %zu entries", pg->name, b->n);
    } else {
        for (size_t i = 0; i < b->n; i++)
            order[i] = &b->rows[i];
        qsort(order, b->n, sizeof *order, cmp_put_row);
        size_t m = 0, fn = 0, ver = 0, args = 0, result = 0, fps = 0;
        for (size_t i = 0; i < b->n; i++) {
            if (i + 1 < b->n && memcmp(order[i]->key, order[i + 1]->key, JC__KEY_LEN) == 0)
                continue; /* replaced by a later put */
            const put_row *r = order[i];
            order[m++] = r;
            fn += r->fn_len, ver += r->ver_len, args += r->args_len, result += r->result_len;
            fps += r->has_code_fp; /* an unknown one is a NULL element: its length alone */
        }
        /* Back in the order stored: ids follow the order of writing, as
         * SQLite's rowids do (eviction's ties, clamp_future). */
        qsort(order, m, sizeof *order, cmp_put_order);
        jc__pg_params p = {0};
        unsigned char *k = jc__pg_p_array(&p, JC__PG_BYTEA_ARRAY, JC__PG_BYTEA, m, m * JC__KEY_LEN);
        unsigned char *f = jc__pg_p_array(&p, JC__PG_TEXT_ARRAY, JC__PG_TEXT, m, fn);
        unsigned char *v = jc__pg_p_array(&p, JC__PG_TEXT_ARRAY, JC__PG_TEXT, m, ver);
        unsigned char *a = jc__pg_p_array(&p, JC__PG_BYTEA_ARRAY, JC__PG_BYTEA, m, args);
        unsigned char *res = jc__pg_p_array(&p, JC__PG_BYTEA_ARRAY, JC__PG_BYTEA, m, result);
        unsigned char *now = jc__pg_p_array(&p, JC__PG_FLOAT8_ARRAY, JC__PG_FLOAT8, m, m * 8);
        unsigned char *sec = jc__pg_p_array(&p, JC__PG_FLOAT8_ARRAY, JC__PG_FLOAT8, m, m * 8);
        unsigned char *chk = jc__pg_p_array(&p, JC__PG_BYTEA_ARRAY, JC__PG_BYTEA, m, m * JC__CHECK_LEN);
        unsigned char *fp = jc__pg_p_array(&p, JC__PG_BYTEA_ARRAY, JC__PG_BYTEA, m, fps * JC__CHECK_LEN);
        for (size_t i = 0; i < m && k && f && v && a && res && now && sec && chk && fp; i++) {
            const put_row *r = order[i];
            k = jc__pg_put_elem(k, r->key, JC__KEY_LEN);
            f = jc__pg_put_elem(f, b->data + r->fn, r->fn_len);
            v = jc__pg_put_elem(v, b->data + r->ver, r->ver_len);
            a = jc__pg_put_elem(a, b->data + r->args, r->args_len);
            res = jc__pg_put_elem(res, b->data + r->result, r->result_len);
            now = jc__pg_put_float8(now, r->now);
            sec = jc__pg_put_float8(sec, r->seconds);
            chk = jc__pg_put_elem(chk, r->check, JC__CHECK_LEN);
            fp = jc__pg_put_elem(fp, r->has_code_fp ? r->code_fp : NULL, JC__CHECK_LEN);
        }
        jc__pg_p_int8(&p, JC_KEY_FORMAT_VERSION);
        char what[64];
        snprintf(what, sizeof what, "storing %zu entries", m);
        rc = jc__pg_exec(pg, what, put_many_sql, &p, NULL);
        jc__pg_p_free(&p);
        free(order);
    }
    b->n = 0;
    b->len = 0;
    /* Entries whose puts said yes are gone unless the transaction goes
     * with them. */
    if (rc && pg->depth > 0)
        pg->doomed = true;
    return rc;
}

/* Appends bytes to the waiting entries' data; its offset in *at. */
static bool puts_data(jc__pg_puts *b, const void *src, size_t len, size_t *at)
{
    if (len > b->data_cap - b->len) {
        size_t cap = b->data_cap ? b->data_cap : 65536;
        while (cap - b->len < len)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return false;
        b->data = d;
        b->data_cap = cap;
    }
    *at = b->len;
    if (len)
        memcpy(b->data + b->len, src, len);
    b->len += len;
    return true;
}

/* Keeps e (no parts) to be sent with the others of its transaction. */
static int put_later(jc__pg *pg, const jc__entry_in *e, const uint8_t check[JC__CHECK_LEN], size_t fn_len,
                     size_t ver_len)
{
    jc__pg_puts *b = pg->puts;
    if (!b && !(b = pg->puts = calloc(1, sizeof *b)))
        return jc__set_error(JC_ENOMEM, "cache '%s': out of memory storing an entry", pg->name);
    pg->pending = flush_puts;
    /* The waiting ones go first when this one would take them past
     * PUT_BYTES, so that a statement stays far under the server's 1 GiB. */
    size_t bytes = fn_len + ver_len + e->args_len + e->result_len;
    if (b->n && bytes > PUT_BYTES - b->len) {
        pg->sending = true;
        int rc = flush_puts(pg, true);
        pg->sending = false;
        if (rc)
            return rc;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        put_row *rows = realloc(b->rows, cap * sizeof *rows);
        if (!rows)
            return jc__set_error(JC_ENOMEM, "cache '%s': out of memory storing an entry", pg->name);
        b->rows = rows;
        b->cap = cap;
    }
    put_row *r = &b->rows[b->n];
    memcpy(r->key, e->key, JC__KEY_LEN);
    memcpy(r->check, check, JC__CHECK_LEN);
    r->has_code_fp = e->code_fp != NULL;
    if (e->code_fp)
        memcpy(r->code_fp, e->code_fp, JC__CHECK_LEN);
    r->fn_len = fn_len, r->ver_len = ver_len, r->args_len = e->args_len, r->result_len = e->result_len;
    r->now = e->now;
    r->seconds = e->compute_seconds;
    if (!puts_data(b, e->function, fn_len, &r->fn) || !puts_data(b, e->version, ver_len, &r->ver) ||
        !puts_data(b, e->args, e->args_len, &r->args) || !puts_data(b, e->result, e->result_len, &r->result))
        return jc__set_error(JC_ENOMEM, "cache '%s': out of memory storing an entry", pg->name);
    b->n++;
    if (b->n >= PUT_ROWS || b->len >= PUT_BYTES) {
        pg->sending = true;
        int rc = flush_puts(pg, true);
        pg->sending = false;
        return rc;
    }
    return 0;
}

int jc__pg_put(jc__pg *pg, const jc__entry_in *e)
{
    int rc = jc__pg_enter_write(pg, "cannot store an entry");
    if (rc)
        return rc;
    if (!e || !e->key || !e->function || !e->version || (!e->args && e->args_len) || (!e->result && e->result_len))
        return jc__set_error(JC_EINVAL, "cache '%s': storing an incomplete entry", pg->name);
    if (e->npieces && (!e->pieces || !e->check))
        return jc__set_error(JC_EINVAL, "cache '%s': storing a result in pieces without its parts", pg->name);
    /* The chunks' part column is an integer. */
    if (e->npieces > INT32_MAX)
        return jc__set_error(JC_EINVAL, "cache '%s': storing a result of %zu parts (at most %d)", pg->name,
                             e->npieces, INT32_MAX);
    for (size_t i = 0; i < e->npieces; i++)
        if (!e->pieces[i].data && e->pieces[i].len)
            return jc__set_error(JC_EINVAL, "cache '%s': storing a result whose part %zu is NULL", pg->name, i);
    size_t fn_len = strlen(e->function), ver_len = strlen(e->version);
    if (e->args_len > STATEMENT_MAX || e->result_len > STATEMENT_MAX - e->args_len ||
        fn_len + ver_len > STATEMENT_MAX - e->args_len - e->result_len)
        return jc__set_error(JC_EINVAL,
                             "cache '%s': cannot store an entry of %s with %zu bytes of arguments and %zu bytes of "
                             "result: PostgreSQL takes less than 1 GiB in one statement",
                             pg->name, e->function, e->args_len, e->result_len);
    uint8_t check[JC__CHECK_LEN];
    if (e->check)
        memcpy(check, e->check, JC__CHECK_LEN);
    else
        jc__result_check(e->result, e->result_len, check);

    /* Inside a transaction, an entry without parts waits for the others
     * (one larger than a batch goes alone). */
    if (!e->npieces && pg->depth > 0 && !pg->sending && e->args_len + e->result_len < PUT_BYTES)
        return put_later(pg, e, check, fn_len, ver_len);

    /* An empty blob goes as a zero-length value: a NULL pointer would be
     * SQL NULL, which NOT NULL refuses. */
    jc__pg_params row = {0};
    jc__pg_p_bytes(&row, e->key, JC__KEY_LEN);
    jc__pg_p_text(&row, e->function);
    jc__pg_p_text(&row, e->version);
    jc__pg_p_bytes(&row, e->args_len ? e->args : "", e->args_len);
    jc__pg_p_bytes(&row, e->result_len ? e->result : "", e->result_len);
    jc__pg_p_int8(&row, (int64_t)e->args_len);
    jc__pg_p_int8(&row, (int64_t)e->result_len);
    jc__pg_p_float8(&row, e->now);
    jc__pg_p_float8(&row, e->compute_seconds);
    jc__pg_p_bytes(&row, check, JC__CHECK_LEN);
    jc__pg_p_bytes(&row, e->code_fp, e->code_fp ? JC__CHECK_LEN : 0);
    jc__pg_p_int8(&row, JC_KEY_FORMAT_VERSION);
    if (!e->npieces)
        return jc__pg_exec(pg, "storing an entry", put_sql, &row, NULL);

    /* With parts, all or nothing: in a transaction of its own, or inside
     * the caller's under a savepoint, so that a failure leaves the entry it
     * replaces whole and the caller's transaction going, as in the SQLite
     * store (its savepoint jc_put). */
    if (pg->depth == 0) {
        if ((rc = jc__pg_begin(pg)) != 0)
            return rc;
        rc = put_with_pieces(pg, e, &row);
        if (rc) {
            jc__pg_rollback(pg);
            return rc;
        }
        return jc__pg_commit(pg);
    }
    bool doomed = pg->doomed;
    if ((rc = jc__pg_exec(pg, "storing an entry", "SAVEPOINT jc_put", NULL, NULL)) != 0)
        return rc;
    rc = put_with_pieces(pg, e, &row);
    if (!rc)
        return jc__pg_exec(pg, "storing an entry", "RELEASE SAVEPOINT jc_put", NULL, NULL);
    /* A failed statement doomed the transaction (jc__pg_query); back at
     * the savepoint it is sound again, unless the way back fails too. */
    if (jc__pg_exec(pg, "storing an entry", "ROLLBACK TO SAVEPOINT jc_put", NULL, NULL) == 0 &&
        jc__pg_exec(pg, "storing an entry", "RELEASE SAVEPOINT jc_put", NULL, NULL) == 0)
        pg->doomed = doomed;
    /* The failure reported is the put's, not the way back's. */
    return rc;
}

/* ---- parts ---- */

static int damaged(jc__pg *pg, const uint8_t key[JC__KEY_LEN], uint32_t part, const char *why)
{
    char hex[2 * JC__KEY_LEN + 1];
    jc__key_hex(key, hex);
    return jc__set_error(JC_EDECODE, "cache '%s': part %u of the result under key %s is damaged: %s", pg->name,
                         part, hex, why);
}

/* What the part's chunks add up to, with its first chunks: $1 key, $2
 * part, $3 the length its reference gives, $4 how many chunks to read
 * (0: only the check). One row with NULL chunk columns when none is read. */
enum { PC_COUNT, PC_TOTAL_OK, PC_MOST, PC_LEAST, PC_CODECS_OK, PC_SEQ, PC_CODEC, PC_SIZE, PC_DATA };
static const char part_first_sql[] =
    "WITH s AS (SELECT count(*) AS n, coalesce(sum(size), 0) AS total, max(size) AS most, min(size) AS least,"
    "  bool_and(codec IN (0, 1)) AS codecs FROM chunks WHERE key = $1 AND part = $2)"
    " SELECT s.n::bigint, (s.total = $3)::int::bigint, coalesce(s.most, 0)::bigint, coalesce(s.least, 0)::bigint,"
    " coalesce(s.codecs, true)::int::bigint, c.seq::bigint, c.codec::bigint, c.size::bigint, c.data"
    " FROM s LEFT JOIN LATERAL (SELECT seq, codec, size, data FROM chunks WHERE key = $1 AND part = $2"
    "  ORDER BY seq LIMIT $4) c ON true ORDER BY c.seq";
/* The next chunks: $3 the last seq read, $4 how many. */
static const char part_next_sql[] = "SELECT NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,"
                                    " seq::bigint, codec::bigint, size::bigint, data FROM chunks"
                                    " WHERE key = $1 AND part = $2 AND seq > $3 ORDER BY seq LIMIT $4";

/* Copies or decompresses the chunks in rows [0, rows) of r into dst at
 * *off, each checked first: in seq order from *want, of a known codec,
 * at most CHUNK_RAW bytes and no more than dst has left. */
static int read_chunks(jc__pg *pg, const uint8_t key[JC__KEY_LEN], uint32_t part, const PGresult *r, int rows,
                       unsigned char *dst, size_t len, size_t *off, int64_t *want)
{
    for (int i = 0; i < rows; i++) {
        if (jc__pg_isnull(r, i, PC_SEQ))
            continue; /* the check's row when no chunk was read */
        int64_t seq = jc__pg_int8(r, i, PC_SEQ), codec = jc__pg_int8(r, i, PC_CODEC);
        int64_t raw = jc__pg_int8(r, i, PC_SIZE);
        size_t stored;
        const uint8_t *data = jc__pg_bytes(r, i, PC_DATA, &stored);
        if (seq != (*want)++ || (codec != 0 && codec != 1) || raw < 0 || raw > (int64_t)CHUNK_RAW ||
            (uint64_t)raw > len - *off || !data || (codec == 0 && stored != (size_t)raw))
            return damaged(pg, key, part, "its chunks are missing, out of order or of the wrong size");
        if (codec == 0) {
            if (raw)
                memcpy(dst + *off, data, (size_t)raw);
        } else {
            size_t got = ZSTD_decompress(dst + *off, (size_t)raw, data, stored);
            if (ZSTD_isError(got) || got != (size_t)raw)
                return damaged(pg, key, part, ZSTD_isError(got) ? ZSTD_getErrorName(got) : "a chunk of the wrong size");
        }
        *off += (size_t)raw;
    }
    return 0;
}

int jc__pg_part_read(jc__pg *pg, const uint8_t key[JC__KEY_LEN], uint32_t part, void *dst, size_t len)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (!key)
        return jc__set_error(JC_EINVAL, "cache '%s': reading a part of a result under a NULL key", pg->name);
    if ((uint64_t)len > INT64_MAX)
        return damaged(pg, key, part, "its reference gives an impossible length");
    jc__pg_params p = {0};
    jc__pg_p_bytes(&p, key, JC__KEY_LEN);
    jc__pg_p_int8(&p, part);
    jc__pg_p_int8(&p, (int64_t)len);
    jc__pg_p_int8(&p, dst ? PART_BATCH : 0);
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, "reading a part of a result", part_first_sql, &p, &r);
    if (rc)
        return rc;
    /* Before anything is written into dst: the chunks add up to len. */
    int64_t n = jc__pg_int8(r, 0, PC_COUNT);
    if (PQntuples(r) == 0 || (n == 0 && len))
        rc = damaged(pg, key, part, "its chunks are missing");
    else if (!jc__pg_int8(r, 0, PC_TOTAL_OK) || jc__pg_int8(r, 0, PC_MOST) > (int64_t)CHUNK_RAW ||
             jc__pg_int8(r, 0, PC_LEAST) < 0)
        rc = damaged(pg, key, part, "its chunks hold another length than its reference says");
    else if (!jc__pg_int8(r, 0, PC_CODECS_OK))
        rc = damaged(pg, key, part, "a chunk is of an unknown codec");
    if (rc || !dst) {
        PQclear(r);
        return rc;
    }
    size_t off = 0;
    int64_t want = 0;
    int rows = PQntuples(r);
    rc = read_chunks(pg, key, part, r, rows, dst, len, &off, &want);
    PQclear(r);
    /* Further batches while the first were full and the count says more
     * are there (a snapshot that changed meanwhile ends in a short batch). */
    while (!rc && rows == PART_BATCH && want < n) {
        jc__pg_params q = {0};
        jc__pg_p_bytes(&q, key, JC__KEY_LEN);
        jc__pg_p_int8(&q, part);
        jc__pg_p_int8(&q, want - 1);
        jc__pg_p_int8(&q, PART_BATCH);
        if ((rc = jc__pg_query(pg, "reading a part of a result", part_next_sql, &q, &r)) != 0)
            break;
        rows = PQntuples(r);
        rc = read_chunks(pg, key, part, r, rows, dst, len, &off, &want);
        PQclear(r);
    }
    if (!rc && off != len)
        rc = damaged(pg, key, part, "its chunks hold fewer bytes than its reference says");
    return rc;
}

/* ---- parameter names ---- */

int jc__pg_params_put(jc__pg *pg, const char *function, const char *version, const char *names)
{
    int rc = jc__pg_enter_write(pg, "cannot record parameter names");
    if (rc)
        return rc;
    if (!function || !version || !names)
        return jc__set_error(JC_EINVAL, "cache '%s': recording incomplete parameter names", pg->name);
    /* Written only when new or changed: storing results of a function with
     * names costs a lookup, not a write (an upsert whose update is skipped
     * would still lock, and so write, the row). */
    jc__pg_params p = {0};
    jc__pg_p_text(&p, function);
    jc__pg_p_text(&p, version);
    jc__pg_p_text(&p, names);
    return jc__pg_exec(pg, "recording parameter names",
                       "INSERT INTO params (function, version, names) SELECT $1, $2, $3"
                       " WHERE NOT EXISTS (SELECT 1 FROM params WHERE function = $1 AND version = $2 AND names = $3)"
                       " ON CONFLICT (function, version) DO UPDATE SET names = excluded.names",
                       &p, NULL);
}

int jc__pg_params_get(jc__pg *pg, const char *function, const char *version, char **names)
{
    if (names)
        *names = NULL;
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (!function || !version || !names)
        return jc__set_error(JC_EINVAL, "cache '%s': parameter names of a NULL function", pg->name);
    jc__pg_params p = {0};
    jc__pg_p_text(&p, function);
    jc__pg_p_text(&p, version);
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, "reading parameter names",
                          "SELECT names::text FROM params WHERE function = $1 AND version = $2", &p, &r);
    if (rc)
        return rc;
    if (PQntuples(r) > 0) {
        *names = jc__strdup(jc__pg_text(r, 0, 0));
        rc = *names ? 1 : jc__set_error(JC_ENOMEM, "cache '%s': out of memory reading parameter names", pg->name);
    }
    PQclear(r);
    return rc;
}

/* ---- removing ---- */

int jc__pg_delete(jc__pg *pg, const uint8_t key[JC__KEY_LEN])
{
    int rc = jc__pg_enter_write(pg, "cannot remove an entry");
    if (rc)
        return rc;
    if (!key)
        return jc__set_error(JC_EINVAL, "cache '%s': removing a NULL key", pg->name);
    /* Its chunks go with it (ON DELETE CASCADE). */
    jc__pg_params p = {0};
    jc__pg_p_bytes(&p, key, JC__KEY_LEN);
    int64_t gone = 0;
    rc = jc__pg_exec(pg, "removing an entry", "DELETE FROM entries WHERE key = $1", &p, &gone);
    return rc ? rc : gone > 0;
}

/* ---- pipelines: entries by the results their arguments refer to ---- */

int jc__pg_by_check(jc__pg *pg, const uint8_t check[JC__CHECK_LEN], uint8_t key[JC__KEY_LEN])
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (!check || !key)
        return jc__set_error(JC_EINVAL, "cache '%s': looking an entry up by a NULL checksum", pg->name);
    jc__pg_params p = {0};
    jc__pg_p_bytes(&p, check, JC__CHECK_LEN);
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, "looking an entry up by its result",
                          "SELECT key FROM entries WHERE result_check = $1 LIMIT 1", &p, &r);
    if (rc)
        return rc;
    size_t len = 0;
    const uint8_t *k = PQntuples(r) > 0 ? jc__pg_bytes(r, 0, 0, &len) : NULL;
    if (k && len == JC__KEY_LEN) {
        memcpy(key, k, JC__KEY_LEN);
        rc = 1;
    }
    PQclear(r);
    return rc;
}

int jc__pg_users(jc__pg *pg, const uint8_t check[JC__CHECK_LEN], jc__user_fn fn, void *ctx)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (!check || !fn)
        return jc__set_error(JC_EINVAL, "cache '%s': users of a NULL checksum", pg->name);
    /* A reference is stored as msgpack ext 8 of 17 bytes, type 6, version
     * 1, then the digest (docs/format.md): those 21 bytes in the arguments.
     * One pass over the entries (no index holds the references). */
    uint8_t pattern[4 + JC__CHECK_LEN] = {0xc7, 0x11, 0x06, 0x01};
    memcpy(pattern + 4, check, JC__CHECK_LEN);
    jc__pg_params p = {0};
    jc__pg_p_bytes(&p, pattern, sizeof pattern);
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, "looking for the entries computed from a result",
                          "SELECT key, result_check FROM entries WHERE position($1 in args) > 0", &p, &r);
    if (rc)
        return rc;
    /* r is this call's own, not pg->res: fn may call the store. */
    for (int i = 0, rows = PQntuples(r); i < rows; i++) {
        size_t len, clen;
        const uint8_t *k = jc__pg_bytes(r, i, 0, &len);
        const uint8_t *own = jc__pg_bytes(r, i, 1, &clen);
        if (!k || len != JC__KEY_LEN)
            continue;
        fn(ctx, k, own && clen == JC__CHECK_LEN ? own : NULL);
    }
    PQclear(r);
    return 0;
}
