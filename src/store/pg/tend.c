/*
 * The PostgreSQL store's tending (store.h): the hit log, the size that
 * max_size bounds and eviction, facts, integrity, vacuum and backup,
 * leases, and the record of runs.
 *
 * Where a cache on a server differs from the SQLite file, and why:
 *
 *  - The size. The server's files do not shrink when rows go (their space
 *    is reused after VACUUM), so the size on disk would never fall under
 *    eviction, and max_size would remove everything. What max_size bounds
 *    here is the cache's live data: every entry's payload as recorded
 *    (args_size + result_size, which holds the chunks of its parts as
 *    stored: docs/format.md) plus ENTRY_OVERHEAD bytes for its row and
 *    index entries. It falls by exactly what an eviction removes, so that
 *    one statement brings it to the target and nothing loops; evictions
 *    of one cache take turns (an advisory lock), so that two hosts do not
 *    both remove the same excess. It is one aggregate over entries (about
 *    25 ms per 100,000 entries on PG 15), paid where the SQLite file pays
 *    two stat() calls.
 *  - The hit log is folded by deleting rows (FOR UPDATE SKIP LOCKED) and
 *    adding up what the delete returned: each row is folded by exactly one
 *    session, however many hosts fold at once, and rows logged meanwhile
 *    stay for the next fold.
 *  - Leases: a claim lives as long as its owner's connection. The owner's
 *    session holds an advisory lock named by the cache's schema and the
 *    owner; while some session holds it, its claims are reported as
 *    expiring a year from now, and once the session ends (the process or
 *    its machine died: the server's TCP keepalives, pg.c) they expire at
 *    once, without a heartbeat. A claim's reading of the leases and its
 *    inserts are serialized by a transaction-level advisory lock, as
 *    SQLite's BEGIN IMMEDIATE serializes them.
 *  - There is no file to copy (backup refuses; merging copies a cache) and
 *    no pages to check (the server keeps them); integrity checks what the
 *    schema cannot: recorded sizes and chunks against the format.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_int.h"
#include "util/utf8.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* What a row of entries and its index entries take beyond its payload:
 * the heap tuple's header and line pointer, the fixed columns, the names,
 * checksum and fingerprint, and one entry in each of the three indexes
 * (id, key, result_check). Measured on PostgreSQL 15 with short names: 347
 * bytes a row for 50 bytes of payload. An estimate, as the SQLite store's
 * eviction estimates a row's share of the file, but a constant: the
 * measure falls by exactly what an eviction takes. */
#define ENTRY_OVERHEAD 300

/* One entry's share of the measure max_size bounds. Sizes are clamped at
 * 0 so that a hostile negative one cannot make the measure grow as
 * entries go. */
#define MEASURE "(greatest(args_size, 0)::numeric + greatest(result_size, 0) + " STR(ENTRY_OVERHEAD) ")"
/* A numeric sum read as bigint, saturated rather than failing the cast. */
#define SUM_INT8(x) "least(coalesce(" x ", 0), 9223372036854775807)::int8"

/* ---- the hit log ---- */

int jc__pg_hit_log_add(jc__pg *pg, double at, int64_t hits, double saved, const void *blob, size_t len)
{
    int rc = jc__pg_enter_write(pg, "cannot record hits");
    if (rc || !len)
        return rc;
    jc__pg_params p = {0};
    jc__pg_p_float8(&p, at);
    jc__pg_p_int8(&p, hits);
    jc__pg_p_float8(&p, saved);
    jc__pg_p_bytes(&p, blob, len);
    return jc__pg_exec(pg, "recording hits", "INSERT INTO hit_log (at, hits, saved, keys) VALUES ($1, $2, $3, $4)",
                       &p, NULL);
}

/* Log rows taken per statement, and keys per UPDATE: memory and statement
 * sizes stay bounded whatever the log holds. */
enum { FOLD_ROWS = 256, FOLD_KEYS = 16384 };

typedef struct fold_rec {
    uint8_t key[JC__KEY_LEN]; /* first: sorted by memcmp on the record */
    int64_t count;
    double at;
} fold_rec;

static int cmp_fold(const void *a, const void *b)
{
    return memcmp(a, b, JC__KEY_LEN);
}

/* n distinct keys: their counts added to the entries' hits, their latest
 * time to last_used, in one statement. Keys no longer stored match no
 * row. The hit count saturates instead of failing on a hostile one. */
static int fold_update(jc__pg *pg, const fold_rec *rec, size_t n)
{
    jc__pg_params p = {0};
    unsigned char *k = jc__pg_p_array(&p, JC__PG_BYTEA_ARRAY, JC__PG_BYTEA, n, n * JC__KEY_LEN);
    unsigned char *c = jc__pg_p_array(&p, JC__PG_INT8_ARRAY, JC__PG_INT8, n, n * 8);
    unsigned char *a = jc__pg_p_array(&p, JC__PG_FLOAT8_ARRAY, JC__PG_FLOAT8, n, n * 8);
    for (size_t i = 0; k && c && a && i < n; i++) {
        k = jc__pg_put_elem(k, rec[i].key, JC__KEY_LEN);
        c = jc__pg_put_int8(c, rec[i].count);
        a = jc__pg_put_float8(a, rec[i].at);
    }
    int rc = jc__pg_exec(pg, "folding the hit log",
                         "UPDATE entries e SET hits = least(e.hits::numeric + u.c, 9223372036854775807)::int8,"
                         " last_used = greatest(e.last_used, u.at)"
                         " FROM unnest($1::bytea[], $2::int8[], $3::float8[]) AS u(k, c, at) WHERE e.key = u.k",
                         &p, NULL);
    jc__pg_p_free(&p);
    return rc;
}

/* The rows of r (at, keys) added up per key, then applied. A damaged row
 * (a blob not a multiple of JC__HIT_RECORD bytes) is dropped unread, as
 * in the SQLite store: it is deleted with the others. */
static int fold_apply(jc__pg *pg, const PGresult *r)
{
    int rows = PQntuples(r);
    size_t total = 0;
    for (int i = 0; i < rows; i++) {
        size_t len = 0;
        jc__pg_bytes(r, i, 1, &len);
        if (len % JC__HIT_RECORD == 0)
            total += len / JC__HIT_RECORD;
    }
    if (!total)
        return 0;
    fold_rec *rec = malloc(total * sizeof *rec);
    if (!rec)
        return jc__set_error(JC_ENOMEM, "cache '%s': out of memory folding %zu hits", pg->name, total);
    size_t n = 0;
    for (int i = 0; i < rows; i++) {
        size_t len = 0;
        const uint8_t *b = jc__pg_bytes(r, i, 1, &len);
        if (!b || len % JC__HIT_RECORD != 0)
            continue;
        double at = jc__pg_float8(r, i, 0);
        for (size_t off = 0; off < len; off += JC__HIT_RECORD) {
            const uint8_t *q = b + off + JC__KEY_LEN;
            memcpy(rec[n].key, b + off, JC__KEY_LEN);
            rec[n].count = (int64_t)((uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                                     (uint32_t)q[3] << 24);
            rec[n].at = at;
            n++;
        }
    }
    /* One record per key: an UPDATE ... FROM applies only one of several
     * rows that match the same entry. */
    qsort(rec, n, sizeof *rec, cmp_fold);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && memcmp(rec[m - 1].key, rec[i].key, JC__KEY_LEN) == 0) {
            rec[m - 1].count = jc__sum_sat(rec[m - 1].count, rec[i].count);
            if (rec[i].at > rec[m - 1].at)
                rec[m - 1].at = rec[i].at;
            continue;
        }
        rec[m++] = rec[i];
    }
    int rc = 0;
    for (size_t at = 0; at < m && !rc; at += FOLD_KEYS)
        rc = fold_update(pg, rec + at, m - at < FOLD_KEYS ? m - at : FOLD_KEYS);
    free(rec);
    return rc;
}

/* Folds the log up to its newest row now, in batches. Each batch deletes
 * the rows it folds and reads them from the delete (RETURNING): a row
 * another session is folding is locked and skipped (SKIP LOCKED), one it
 * folded is gone, so no row counts twice, and rows logged after the
 * statement's snapshot stay in the log. The bound on id ends the loop
 * however fast other sessions log. */
static int fold(jc__pg *pg, int64_t *rows)
{
    static const char what[] = "folding the hit log";
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, what, "SELECT max(id)::int8 FROM hit_log", NULL, &r);
    if (rc)
        return rc;
    bool empty = jc__pg_isnull(r, 0, 0);
    int64_t bound = jc__pg_int8(r, 0, 0);
    PQclear(r);
    int64_t n = 0;
    while (!empty && !rc) {
        jc__pg_params p = {0};
        jc__pg_p_int8(&p, bound);
        jc__pg_p_int8(&p, FOLD_ROWS);
        rc = jc__pg_query(pg, what,
                          "DELETE FROM hit_log WHERE id IN (SELECT id FROM hit_log WHERE id <= $1 ORDER BY id"
                          " LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING at::float8, keys",
                          &p, &r);
        if (rc)
            break;
        int got = PQntuples(r);
        n += got;
        rc = fold_apply(pg, r);
        PQclear(r);
        if (got < FOLD_ROWS)
            break;
    }
    *rows = rc ? 0 : n;
    return rc;
}

/* Restores the message of code rc after calls that may have replaced it. */
static int keep_message(int rc, char *msg)
{
    if (msg)
        jc__set_error(rc, "%s", msg);
    free(msg);
    return rc;
}

int jc__pg_hit_log_fold(jc__pg *pg, int64_t *rows)
{
    static const char what[] = "folding the hit log";
    if (rows)
        *rows = 0;
    int rc = jc__pg_enter_write(pg, "cannot fold the hit log");
    if (rc)
        return rc;
    int64_t n = 0;
    if (pg->depth > 0) {
        /* Inside the caller's transaction, which may commit whatever this
         * returns (hit counts are bookkeeping): all of the fold or none of
         * it, in a savepoint. Rolled back to it, the transaction is sound
         * again, and the failure does not doom it. */
        bool doomed = pg->doomed;
        rc = jc__pg_exec(pg, what, "SAVEPOINT jc_fold", NULL, NULL);
        if (rc)
            return rc;
        rc = fold(pg, &n);
        if (rc) {
            char *msg = jc__strdup(jc_errmsg());
            if (jc__pg_exec(pg, what, "ROLLBACK TO SAVEPOINT jc_fold", NULL, NULL) == 0 &&
                jc__pg_exec(pg, what, "RELEASE SAVEPOINT jc_fold", NULL, NULL) == 0)
                pg->doomed = doomed;
            return keep_message(rc, msg);
        }
        rc = jc__pg_exec(pg, what, "RELEASE SAVEPOINT jc_fold", NULL, NULL);
    } else {
        /* Alone: a transaction of its own, so that the rows deleted and
         * the counts added commit together. */
        rc = jc__pg_begin(pg);
        if (rc)
            return rc;
        rc = fold(pg, &n);
        if (rc) {
            char *msg = jc__strdup(jc_errmsg());
            jc__pg_rollback(pg);
            return keep_message(rc, msg);
        }
        rc = jc__pg_commit(pg);
    }
    if (!rc && rows)
        *rows = n;
    return rc;
}

int jc__pg_hit_log_pending(jc__pg *pg, int64_t *rows, int64_t *hits, double *saved)
{
    *rows = *hits = 0;
    *saved = 0;
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, "reading the hit log",
                          "SELECT count(*)::int8,"
                          " greatest(least(coalesce(sum(hits), 0), 9223372036854775807), -9223372036854775808)::int8,"
                          " coalesce(sum(saved), 0)::float8 FROM hit_log",
                          NULL, &r);
    if (rc)
        return rc;
    *rows = jc__pg_int8(r, 0, 0);
    *hits = jc__pg_int8(r, 0, 1);
    double v = jc__pg_float8(r, 0, 2);
    *saved = v >= 0 && v < 1e300 ? v : 0; /* a hostile or overflowing sum reads as none */
    PQclear(r);
    return 0;
}

/* Rows read per statement: the log is short (folded every
 * JC__HIT_LOG_FOLD_EVERY rows), but memory stays bounded if it is not. */
enum { EACH_ROWS = 1024 };

int jc__pg_hit_log_each(jc__pg *pg, jc__hit_log_fn fn, void *ctx)
{
    if (!fn)
        return jc__set_error(JC_EINVAL, "store: NULL callback for the hit log");
    int64_t after = INT64_MIN;
    for (;;) {
        jc__pg_params p = {0};
        jc__pg_p_int8(&p, after);
        jc__pg_p_int8(&p, EACH_ROWS);
        PGresult *r = NULL;
        int rc = jc__pg_query(pg, "reading the hit log",
                              "SELECT id::int8, at::float8, hits::int8, saved::float8, keys FROM hit_log"
                              " WHERE id > $1 ORDER BY id LIMIT $2",
                              &p, &r);
        if (rc)
            return rc;
        int n = PQntuples(r);
        for (int i = 0; i < n && !rc; i++) {
            size_t len = 0;
            const uint8_t *b = jc__pg_bytes(r, i, 4, &len);
            after = jc__pg_int8(r, i, 0);
            if (!b || len % JC__HIT_RECORD != 0)
                continue; /* damaged: the fold drops it */
            rc = fn(ctx, jc__pg_float8(r, i, 1), jc__pg_int8(r, i, 2), jc__pg_float8(r, i, 3), b, len);
        }
        PQclear(r);
        if (rc || n < EACH_ROWS)
            return rc;
    }
}

/* ---- the size max_size bounds, and eviction ---- */

static int measure(jc__pg *pg, int64_t *page, int64_t *bytes)
{
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, "measuring the cache",
                          "SELECT current_setting('block_size')::int8, " SUM_INT8("sum" MEASURE) " FROM entries",
                          NULL, &r);
    if (rc)
        return rc;
    *page = jc__pg_int8(r, 0, 0);
    *bytes = jc__pg_int8(r, 0, 1);
    PQclear(r);
    return 0;
}

/* What max_size bounds (see the top). No error comes back, as none does
 * from the file's stat() calls: a cache that cannot be measured reads as
 * 0, which evicts nothing (the server's message stays set). */
int64_t jc__pg_disk_bytes(jc__pg *pg)
{
    int64_t page = 0, bytes = 0;
    if (!pg || measure(pg, &page, &bytes))
        return 0;
    return bytes;
}

/* The measure in the server's pages: none of it is free (a removed
 * entry's bytes leave the measure at once, as auto_vacuum=INCREMENTAL's
 * pages leave the file, hence incremental: there is nothing for the cache
 * layer to VACUUM into shape), and an empty cache measures 0, so the floor
 * of max_size (cache/size.c: empty_bytes and a page) is one page. */
int jc__pg_size_get(jc__pg *pg, jc__store_size *out)
{
    int64_t page = 0, bytes = 0;
    int rc = measure(pg, &page, &bytes);
    if (rc)
        return rc;
    if (page <= 0)
        page = 8192; /* PostgreSQL's default, should the setting read oddly */
    out->page_bytes = page;
    out->pages = bytes / page + (bytes % page != 0);
    out->free_pages = 0;
    out->empty_bytes = 0;
    out->incremental = true;
    return 0;
}

int jc__pg_evict(jc__pg *pg, int64_t target, int64_t max_count, int64_t *count, int64_t *bytes)
{
    /* The least recently used entries whose measure covers the excess over
     * target: each entry before which less than the excess is covered,
     * counting from the least recently used (a running sum in one pass),
     * at most max_count of them. The excess and the running sum are of the
     * same snapshot and the same measure as jc__pg_disk_bytes, so after
     * this one statement the measure is at most target (or every entry is
     * gone, or max_count removed): no loop, and no number that fails to
     * fall. Entries another session removed meanwhile are skipped by the
     * delete; ones it added are its own eviction's to count. */
    static const char sql[] =
        "WITH w AS (SELECT id, " MEASURE " AS own,"
        " sum" MEASURE " OVER (ORDER BY " JC__PG_USED ", id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum,"
        " sum" MEASURE " OVER () AS total FROM entries),"
        " v AS (SELECT id FROM w WHERE cum - own < total - $1 ORDER BY cum LIMIT CASE WHEN $2 > 0 THEN $2 END),"
        " d AS (DELETE FROM entries e USING v WHERE e.id = v.id RETURNING e.args_size::numeric + e.result_size AS b)"
        " SELECT count(*)::int8, " SUM_INT8("sum(b)") " FROM d";
    if (count)
        *count = 0;
    if (bytes)
        *bytes = 0;
    int rc = jc__pg_enter_write(pg, "cannot evict entries");
    if (!rc && pg->depth == 0)
        rc = jc__set_error(JC_EINVAL, "cache '%s': eviction outside a transaction", pg->name);
    /* One eviction of the cache at a time: a second waits here until the
     * first commits, and its statement, with a snapshot taken after the
     * wait, measures what the first left (READ COMMITTED), instead of both
     * removing the same excess from two snapshots. */
    if (!rc)
        rc = jc__pg_exec(pg, "evicting entries",
                         "SELECT pg_advisory_xact_lock(hashtext('jobcache evict ' || current_schema())::bigint)", NULL,
                         NULL);
    /* Times later than now age from today once eviction is due (they
     * already count as now in the order above), as in the SQLite store. */
    if (!rc)
        rc = jc__pg_clamp_future(pg, NULL);
    if (rc)
        return rc;
    jc__pg_params p = {0};
    jc__pg_p_int8(&p, target);
    jc__pg_p_int8(&p, max_count);
    PGresult *r = NULL;
    rc = jc__pg_query(pg, "evicting entries", sql, &p, &r);
    if (rc)
        return rc;
    if (count)
        *count = jc__pg_int8(r, 0, 0);
    if (bytes)
        *bytes = jc__pg_int8(r, 0, 1);
    PQclear(r);
    return 0;
}

/* ---- facts, integrity, vacuum, backup ---- */

static int64_t meta_int(const PGresult *r, int col)
{
    return jc__pg_isnull(r, 0, col) ? 0 : strtoll(jc__pg_text(r, 0, col), NULL, 10);
}

int jc__pg_facts_get(jc__pg *pg, jc__store_facts *out)
{
    if (!out)
        return jc__set_error(JC_EINVAL, "store: NULL facts");
    memset(out, 0, sizeof *out);
    /* page_bytes is the measure max_size bounds; none of it is free
     * (jc__pg_size_get). The meta rows are informative: absent reads 0. */
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, "reading the cache's facts",
                          "SELECT (SELECT " SUM_INT8("sum" MEASURE) " FROM entries),"
                          " (SELECT value FROM meta WHERE name = 'key_format'),"
                          " (SELECT value FROM meta WHERE name = 'stats.evicted'),"
                          " (SELECT value FROM meta WHERE name = 'stats.evicted-bytes')",
                          NULL, &r);
    if (rc)
        return rc;
    out->schema_version = pg->schema;
    out->page_bytes = jc__pg_int8(r, 0, 0);
    out->free_bytes = 0;
    out->key_format = meta_int(r, 1);
    out->evicted_entries = meta_int(r, 2);
    out->evicted_bytes = meta_int(r, 3);
    PQclear(r);
    return 0;
}

/* The server keeps its pages, indexes and the schema's constraints
 * (a key of 16 bytes, chunks only of an entry) sound itself: what is
 * checked here is what they cannot say, from docs/format.md: the sizes an
 * entry records (what max_size counts) against its bytes, its checksum's
 * and fingerprint's lengths, and its parts' chunks (numbered 0 to n - 1,
 * codec 0 or 1, at most 1 MiB before compression, a chunk stored as it is
 * of its recorded size). At most 100 problems, as SQLite's check. */
int jc__pg_integrity(jc__pg *pg, void (*fn)(void *ctx, const char *problem), void *ctx)
{
    static const char sql[] =
        "SELECT problem FROM ("
        " SELECT 1 AS k, id AS o, format('entry %s (row %s): its arguments take %s bytes, but it records %s',"
        "  encode(key, 'hex'), id, octet_length(args), args_size) AS problem"
        "  FROM entries WHERE args_size <> octet_length(args)"
        " UNION ALL"
        " SELECT 2, e.id, format('entry %s (row %s): its result takes %s bytes with its parts, but it records %s',"
        "  encode(e.key, 'hex'), e.id, octet_length(e.result) + coalesce(c.n, 0), e.result_size)"
        "  FROM entries e LEFT JOIN (SELECT key, sum(octet_length(data)) AS n FROM chunks GROUP BY key) c"
        "  ON c.key = e.key WHERE e.result_size <> octet_length(e.result) + coalesce(c.n, 0)"
        " UNION ALL"
        " SELECT 3, e.id, format('entry %s (row %s): its %s has %s bytes, not 16', encode(e.key, 'hex'), e.id,"
        "  CASE WHEN octet_length(e.result_check) <> 16 THEN 'checksum' ELSE 'code fingerprint' END,"
        "  CASE WHEN octet_length(e.result_check) <> 16 THEN octet_length(e.result_check)"
        "  ELSE octet_length(e.code_fp) END)"
        "  FROM entries e WHERE octet_length(e.result_check) <> 16 OR octet_length(e.code_fp) <> 16"
        " UNION ALL"
        " SELECT 4, min(e.id), format('entry %s (row %s): part %s: its %s chunks are numbered %s to %s, not 0 to %s',"
        "  encode(c.key, 'hex'), min(e.id), c.part, count(*), min(c.seq), max(c.seq), count(*) - 1)"
        "  FROM chunks c JOIN entries e ON e.key = c.key GROUP BY c.key, c.part"
        "  HAVING min(c.seq) <> 0 OR max(c.seq) <> count(*) - 1"
        " UNION ALL"
        " SELECT 5, e.id, format('entry %s (row %s): part %s, chunk %s: %s', encode(c.key, 'hex'), e.id, c.part,"
        "  c.seq, CASE WHEN c.codec NOT IN (0, 1) THEN format('unknown codec %s', c.codec)"
        "  WHEN c.size < 0 OR c.size > 1048576 THEN format('%s bytes before compression, more than 1 MiB or"
        " negative', c.size)"
        "  ELSE format('stored as it is in %s bytes, but it records %s', octet_length(c.data), c.size) END)"
        "  FROM chunks c JOIN entries e ON e.key = c.key"
        "  WHERE c.codec NOT IN (0, 1) OR c.size < 0 OR c.size > 1048576"
        "  OR (c.codec = 0 AND c.size <> octet_length(c.data))"
        ") p ORDER BY k, o LIMIT 100";
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, "checking the cache's integrity", sql, NULL, &r);
    if (rc)
        return rc;
    int n = PQntuples(r);
    for (int i = 0; fn && i < n; i++)
        fn(ctx, jc__pg_text(r, i, 0));
    PQclear(r);
    return n;
}

/* VACUUM (ANALYZE) of the cache's tables: the space of removed rows made
 * reusable and the planner's statistics renewed. Not VACUUM FULL, which
 * would give space back to the system but lock every other session out
 * of the cache while it rewrites the tables. Unqualified names are the
 * cache's schema's (the first of the search_path, as every statement
 * here). VACUUM cannot run in a transaction block. */
int jc__pg_vacuum(jc__pg *pg)
{
    int rc = jc__pg_enter_write(pg, "cannot vacuum");
    if (rc)
        return rc;
    if (pg->depth > 0)
        return jc__set_error(JC_EINVAL, "cache '%s': cannot vacuum inside a transaction", pg->name);
    return jc__pg_exec(pg, "vacuuming",
                       "VACUUM (ANALYZE) entries, chunks, hit_log, lease_owners, leases, runs, run_failures, params,"
                       " meta",
                       NULL, NULL);
}

/* A cache on a server is not one file this store could copy: a copy of
 * it into a cache file is a merge (the layer above), and a copy of the
 * database is the server's own business (pg_dump). */
int jc__pg_backup(jc__pg *pg, const char *dest)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    return jc__set_error(JC_EINVAL, "backup of cache '%s'%s%s%s: a cache on a PostgreSQL server cannot be copied "
                         "into a file as it is; merge it into a new cache file instead ('jobcache merge'), or back "
                         "up its database with pg_dump", pg->name, dest ? " to '" : "", dest ? dest : "",
                         dest ? "'" : "");
}

/* ---- leases ----
 *
 * The owner's advisory lock: two int4 keys, the cache's schema (so that
 * caches in two schemas of one database do not share owners) and the
 * owner. pg_locks shows such a lock with classid and objid the keys (as
 * oid: an int4's bits) and objsubid 2. An owner whose lock no session
 * holds has ended, or lost its connection (a killed process, a lost node
 * once the server's keepalives or user timeout give up on it): its claims
 * read as expired at once, whatever time it stored, and the next claim
 * drops them. An owner alive whose connection was made again takes its
 * lock again at its next renewal; until then another host may compute
 * its calls too (duplicate work, never a wrong result). Two owners whose
 * names hash alike (one chance in 2^32 a pair) look alive while either
 * lives: their claims then last while the other's session does. */
#define LEASE_KEY1 "hashtext('jobcache lease ' || current_schema())"
/* The lock that makes a claim's reading of the leases and its inserts one
 * step against every other claim of the cache (transaction-level). */
#define CLAIM_LOCK "hashtext('jobcache claims ' || current_schema())::bigint"
/* How long the claims of an owner whose session holds its lock are
 * reported to last: a year, beyond any clock skew between machines. */
#define HELD_FOR "31536000"

/* Releases the lock this handle holds for pg->lease_owner. */
static int release_owner(jc__pg *pg)
{
    jc__pg_params p = {0};
    jc__pg_p_text(&p, pg->lease_owner);
    int rc = jc__pg_exec(pg, "releasing a lease",
                         "SELECT pg_advisory_unlock_shared(" LEASE_KEY1 ", hashtext($1))::int::int8",
                         &p, NULL);
    free(pg->lease_owner);
    pg->lease_owner = NULL;
    return rc;
}

/* Takes owner's lock for this session, once per handle, shared: every
 * handle of this process on the cache holds it, and its claims live while
 * any of them is open. No wait (a shared lock waits only for an exclusive
 * one, which nothing of ours takes); a handle that did not get it tries
 * again at its next renewal. A session-level lock outlives a rollback, as
 * pg->lease_owner does; a connection made again takes it again at once
 * (pg->hold_again, pg.c's revive). */
static int hold_owner(jc__pg *pg, const char *owner)
{
    pg->hold_again = hold_owner;
    int rc = pg->lease_owner ? release_owner(pg) : 0;
    if (rc)
        return rc;
    char *copy = jc__strdup(owner);
    if (!copy)
        return jc__set_error(JC_ENOMEM, "cache '%s': out of memory claiming calls", pg->name);
    jc__pg_params p = {0};
    jc__pg_p_text(&p, owner);
    PGresult *r = NULL;
    /* Shared: every handle of this process on the cache holds it, so that
     * its claims stay alive while any of them is open. */
    rc = jc__pg_query(pg, "claiming calls",
                      "SELECT pg_try_advisory_lock_shared(" LEASE_KEY1 ", hashtext($1))::int::int8", &p, &r);
    if (!rc && jc__pg_int8(r, 0, 0) == 1) {
        pg->lease_owner = copy;
        copy = NULL;
    }
    PQclear(r);
    free(copy);
    return rc;
}

int jc__pg_lease_owner(jc__pg *pg, const char *owner, double expires, bool create)
{
    int rc = jc__pg_enter_write(pg, "cannot claim calls");
    if (rc)
        return rc;
    jc__pg_params p = {0};
    jc__pg_p_text(&p, owner);
    jc__pg_p_float8(&p, expires);
    rc = jc__pg_exec(pg, "renewing a lease",
                     create ? "INSERT INTO lease_owners (owner, expires, started) VALUES ($1, $2, $2)"
                              " ON CONFLICT (owner) DO UPDATE SET expires = excluded.expires"
                            : "UPDATE lease_owners SET expires = $2 WHERE owner = $1",
                     &p, NULL);
    if (rc || !create || (pg->lease_owner && strcmp(pg->lease_owner, owner) == 0))
        return rc;
    return hold_owner(pg, owner);
}

int jc__pg_lease_add(jc__pg *pg, const char *owner, const uint8_t *keys, size_t n)
{
    int rc = jc__pg_enter_write(pg, "cannot claim calls");
    if (rc || !n)
        return rc;
    if (n > SIZE_MAX / JC__KEY_LEN)
        return jc__set_error(JC_EINVAL, "cache '%s': claiming %zu calls at once", pg->name, n);
    jc__pg_params p = {0};
    jc__pg_p_text(&p, owner);
    jc__pg_p_bytes(&p, keys, n * JC__KEY_LEN);
    return jc__pg_exec(pg, "claiming calls", "INSERT INTO leases (owner, keys) VALUES ($1, $2)", &p, NULL);
}

int jc__pg_leases(jc__pg *pg, int (*fn)(void *ctx, const jc__lease *l), void *ctx)
{
    if (!fn)
        return jc__set_error(JC_EINVAL, "store: NULL callback for leases");
    /* In a write transaction (a claim: read the leases, then insert its
     * own), the claims of other sessions wait here until this one ends,
     * and the statement below, with a snapshot taken after the wait, sees
     * what they committed: two hosts never both claim a call. Outside one
     * (inspection, a waiting run's look) nothing waits. */
    int rc = 0;
    if (pg->depth > 0) {
        /* Under a savepoint: a wait that times out fails this call, not the
         * transaction (a run releases its claims in the one that stores its
         * results, which must commit all the same). */
        bool doomed = pg->doomed;
        rc = jc__pg_exec(pg, "reading leases", "SAVEPOINT jc_claims", NULL, NULL);
        if (!rc) {
            rc = jc__pg_exec(pg, "reading leases", "SELECT pg_advisory_xact_lock(" CLAIM_LOCK ")", NULL, NULL);
            int end = rc ? jc__pg_exec(pg, "reading leases", "ROLLBACK TO SAVEPOINT jc_claims", NULL, NULL) : 0;
            if (rc && !end)
                pg->doomed = doomed;
            if (!end)
                end = jc__pg_exec(pg, "reading leases", "RELEASE SAVEPOINT jc_claims", NULL, NULL);
            if (!rc)
                rc = end;
        }
    }
    if (rc)
        return rc;
    PGresult *r = NULL;
    rc = jc__pg_query(pg, "reading leases",
                      "WITH held AS MATERIALIZED (SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                      " AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                      " AND classid = " LEASE_KEY1 "::oid)"
                      " SELECT o.owner, (CASE WHEN EXISTS (SELECT 1 FROM held h WHERE h.objid = hashtext(o.owner)::oid)"
                      " THEN " JC__PG_NOW " + " HELD_FOR " ELSE least(o.expires, " JC__PG_NOW " - 1) END)::float8,"
                      " o.started::float8,"
                      " coalesce(l.id, 0)::int8, l.keys"
                      " FROM lease_owners o LEFT JOIN leases l ON l.owner = o.owner ORDER BY o.owner, l.id",
                      NULL, &r);
    if (rc)
        return rc;
    int n = PQntuples(r);
    for (int i = 0; i < n && !rc; i++) {
        size_t len = 0;
        const uint8_t *keys = jc__pg_bytes(r, i, 4, &len);
        jc__lease l = {
            .owner = jc__pg_text(r, i, 0),
            .expires = jc__pg_float8(r, i, 1),
            .started = jc__pg_float8(r, i, 2),
            .id = jc__pg_int8(r, i, 3),
            .keys = keys,
            .n = keys ? len / JC__KEY_LEN : 0, /* a hostile length is cut to whole keys */
        };
        rc = fn(ctx, &l);
    }
    PQclear(r);
    return rc;
}

int jc__pg_lease_set_keys(jc__pg *pg, int64_t id, const uint8_t *keys, size_t n)
{
    int rc = jc__pg_enter_write(pg, "cannot release a call");
    if (rc)
        return rc;
    if (n > SIZE_MAX / JC__KEY_LEN)
        return jc__set_error(JC_EINVAL, "cache '%s': %zu claimed calls in one row", pg->name, n);
    jc__pg_params p = {0};
    jc__pg_p_int8(&p, id);
    if (n)
        jc__pg_p_bytes(&p, keys, n * JC__KEY_LEN);
    return jc__pg_exec(pg, "releasing a call",
                       n ? "UPDATE leases SET keys = $2 WHERE id = $1" : "DELETE FROM leases WHERE id = $1", &p, NULL);
}

int jc__pg_lease_drop(jc__pg *pg, const char *owner)
{
    int rc = jc__pg_enter_write(pg, "cannot release calls");
    if (rc)
        return rc;
    jc__pg_params p = {0};
    jc__pg_p_text(&p, owner);
    int64_t dropped = 0;
    /* Its lease rows go with it (ON DELETE CASCADE). */
    rc = jc__pg_exec(pg, "releasing calls", "DELETE FROM lease_owners WHERE owner = $1", &p, &dropped);
    /* This handle's own owner: its lock goes too, so that nothing keeps
     * its (now absent) claims alive; the next claim takes it again. */
    if (!rc && pg->lease_owner && strcmp(pg->lease_owner, owner) == 0)
        rc = release_owner(pg);
    return rc ? rc : dropped > 0;
}

/* ---- the record of runs ---- */

static const char *text_or_empty(const char *s)
{
    return s ? s : "";
}

/* s as PostgreSQL's text takes it, UTF-8: a file stores any bytes, and a
 * command line or a failure's message may hold some that are not; they
 * are written \xNN, as `jobcache log` shows them from a file. *keep gets
 * a copy to free (NULL when s is used as it is). */
static const char *as_utf8(const char *s, char **keep)
{
    s = text_or_empty(s);
    *keep = jc__utf8_escaped(s);
    return *keep ? *keep : s;
}

int jc__pg_run_add(jc__pg *pg, const jc__run_row *r, int64_t keep)
{
    int rc = jc__pg_enter_write(pg, "cannot record a run");
    if (rc)
        return rc;
    if (!r)
        return jc__set_error(JC_EINVAL, "store: NULL run");
    size_t nf = r->failures ? r->nfailures : 0, sbytes = 0, mbytes = 0;
    /* Its text, each as UTF-8: kept[] the copies made (a run's five, then
     * each failure's two). */
    char **kept = calloc(5 + 2 * nf, sizeof *kept);
    if (!kept)
        return jc__set_error(JC_ENOMEM, "cache '%s': out of memory recording a run", pg->name);
    const char *host = as_utf8(r->host, &kept[0]), *command = as_utf8(r->command, &kept[1]),
               *kind = as_utf8(r->kind, &kept[2]), *backend = as_utf8(r->backend, &kept[3]),
               *status = as_utf8(r->status, &kept[4]);
    for (size_t i = 0; i < nf; i++) {
        sbytes += strlen(as_utf8(r->failures[i].status, &kept[5 + 2 * i]));
        mbytes += strlen(as_utf8(r->failures[i].message, &kept[6 + 2 * i]));
    }
    jc__pg_params p = {0};
    jc__pg_p_float8(&p, r->started);
    jc__pg_p_float8(&p, r->ended);
    jc__pg_p_text(&p, host);
    jc__pg_p_int8(&p, r->pid);
    jc__pg_p_text(&p, command);
    jc__pg_p_text(&p, kind);
    jc__pg_p_int8(&p, r->n_jobs);
    jc__pg_p_text(&p, backend);
    jc__pg_p_int8(&p, r->calls);
    jc__pg_p_int8(&p, r->cached);
    jc__pg_p_int8(&p, r->computed);
    jc__pg_p_int8(&p, r->failed);
    jc__pg_p_int8(&p, r->skipped);
    jc__pg_p_float8(&p, r->elapsed);
    jc__pg_p_float8(&p, r->saved);
    jc__pg_p_text(&p, status);
    jc__pg_p_int8(&p, r->evicted);
    jc__pg_p_int8(&p, r->evicted_bytes);
    jc__pg_p_int8(&p, r->retries);
    jc__pg_p_int8(&p, r->inputs_read);
    unsigned char *s = jc__pg_p_array(&p, JC__PG_TEXT_ARRAY, JC__PG_TEXT, nf, sbytes);
    unsigned char *m = jc__pg_p_array(&p, JC__PG_TEXT_ARRAY, JC__PG_TEXT, nf, mbytes);
    for (size_t i = 0; s && m && i < nf; i++) {
        const char *st = kept[5 + 2 * i] ? kept[5 + 2 * i] : text_or_empty(r->failures[i].status);
        const char *msg = kept[6 + 2 * i] ? kept[6 + 2 * i] : text_or_empty(r->failures[i].message);
        s = jc__pg_put_elem(s, st, strlen(st));
        m = jc__pg_put_elem(m, msg, strlen(msg));
    }
    /* The run and its failures (numbered from 0 in their order) in one
     * statement: both or neither. */
    rc = jc__pg_exec(pg, "recording a run",
                     "WITH r AS (INSERT INTO runs (started, ended, host, pid, command, kind, n_jobs, backend, calls,"
                     " cached, computed, failed, skipped, elapsed, saved, status, evicted, evicted_bytes, retries,"
                     " inputs_read) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
                     " $17, $18, $19, $20) RETURNING id)"
                     " INSERT INTO run_failures (run, n, status, message)"
                     " SELECT r.id, u.n - 1, u.status, u.message FROM r,"
                     " unnest($21::text[], $22::text[]) WITH ORDINALITY AS u(status, message, n)",
                     &p, NULL);
    jc__pg_p_free(&p);
    for (size_t i = 0; i < 5 + 2 * nf; i++)
        free(kept[i]);
    free(kept);
    /* Bounded: the runs before the last keep go, with their failures (ON
     * DELETE CASCADE). Counted by rows, not ids: ids of runs rolled back
     * or recorded by other hosts leave gaps. */
    if (!rc && keep > 0) {
        jc__pg_params k = {0};
        jc__pg_p_int8(&k, keep - 1);
        rc = jc__pg_exec(pg, "pruning the record of runs",
                         "DELETE FROM runs WHERE id < (SELECT id FROM runs ORDER BY id DESC OFFSET $1 LIMIT 1)", &k,
                         NULL);
    }
    return rc;
}

enum { RUN_FAIL_STATUS = 21, RUN_FAIL_MESSAGE = 22 };

int jc__pg_runs(jc__pg *pg, int64_t last_n, bool failed_only, int (*fn)(void *ctx, const jc__run_row *r),
                void *ctx)
{
    if (!fn)
        return jc__set_error(JC_EINVAL, "store: NULL callback for runs");
    /* The runs with their failures, a row per failure (one without any
     * for a run that has none), in order: one statement. */
    jc__pg_params p = {0};
    jc__pg_p_int8(&p, last_n);
    jc__pg_p_bool(&p, failed_only);
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, "reading the record of runs",
                          "SELECT r.id::int8, r.started::float8, r.ended::float8, r.host, r.pid::int8, r.command,"
                          " r.kind, r.n_jobs::int8, r.backend, r.calls::int8, r.cached::int8, r.computed::int8,"
                          " r.failed::int8, r.skipped::int8, r.elapsed::float8, r.saved::float8, r.status,"
                          " r.evicted::int8, r.evicted_bytes::int8, r.retries::int8, r.inputs_read::int8,"
                          " f.status, f.message"
                          " FROM (SELECT * FROM runs WHERE NOT $2 OR failed > 0 OR status <> 'ok'"
                          " ORDER BY id DESC LIMIT CASE WHEN $1 > 0 THEN $1 END) r"
                          " LEFT JOIN run_failures f ON f.run = r.id ORDER BY r.id, f.n",
                          &p, &r);
    if (rc)
        return rc;
    int n = PQntuples(r);
    jc__run_failure *fails = NULL;
    size_t cap = 0;
    for (int i = 0; i < n && !rc;) {
        int64_t id = jc__pg_int8(r, i, 0);
        size_t nf = 0;
        int j = i;
        for (; j < n && jc__pg_int8(r, j, 0) == id; j++) {
            if (jc__pg_isnull(r, j, RUN_FAIL_STATUS))
                continue;
            if (JC__GROW(fails, cap, nf + 1)) {
                rc = jc__set_error(JC_ENOMEM, "cache '%s': out of memory reading the record of runs", pg->name);
                break;
            }
            fails[nf].status = jc__pg_text(r, j, RUN_FAIL_STATUS);
            fails[nf].message = jc__pg_text(r, j, RUN_FAIL_MESSAGE);
            nf++;
        }
        if (rc)
            break;
        jc__run_row row = {
            .id = id,
            .started = jc__pg_float8(r, i, 1),
            .ended = jc__pg_float8(r, i, 2),
            .host = jc__pg_text(r, i, 3),
            .pid = jc__pg_int8(r, i, 4),
            .command = jc__pg_text(r, i, 5),
            .kind = jc__pg_text(r, i, 6),
            .n_jobs = (int)jc__pg_int8(r, i, 7),
            .backend = jc__pg_text(r, i, 8),
            .calls = jc__pg_int8(r, i, 9),
            .cached = jc__pg_int8(r, i, 10),
            .computed = jc__pg_int8(r, i, 11),
            .failed = jc__pg_int8(r, i, 12),
            .skipped = jc__pg_int8(r, i, 13),
            .elapsed = jc__pg_float8(r, i, 14),
            .saved = jc__pg_float8(r, i, 15),
            .status = jc__pg_text(r, i, 16),
            .evicted = jc__pg_int8(r, i, 17),
            .evicted_bytes = jc__pg_int8(r, i, 18),
            .retries = jc__pg_int8(r, i, 19),
            .inputs_read = jc__pg_int8(r, i, 20),
            .failures = fails,
            .nfailures = nf,
        };
        rc = fn(ctx, &row);
        i = j;
    }
    free(fails);
    PQclear(r);
    return rc;
}
