/*
 * The schema of a cache file and the chain of migrations from every older
 * version (docs/format.md); recognising a file as ours before writing.
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

/* Leases (schema 4): a run claims the calls it is about to compute, so
 * that another process on the same cache waits for them instead of
 * computing them too. One row per owner (its identity, see cache/leases.c, and
 * when its claim lapses unless renewed), and its claimed keys in rows of up
 * to a few thousand sorted keys each (a blob of 16-byte keys): a cold run
 * of 100,000 calls writes some 25 rows, not 100,000, and renewing is one
 * update of the owner's row. */
#define LEASE_TABLES                                                                               \
    "CREATE TABLE lease_owners (owner TEXT PRIMARY KEY, expires REAL NOT NULL, started REAL NOT NULL)" \
    " WITHOUT ROWID;" \
    "CREATE TABLE leases (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, keys BLOB NOT NULL);"

/* The record of runs (schema 5): a row per jc_run (and per cache session
 * of jc_memo calls), and the failures of each, which are never cached as
 * results and would otherwise leave no trace. Bounded: the oldest runs go
 * past the setting log-runs (jc__store_run_add). */
#define RUN_TABLES                                                                                 \
    "CREATE TABLE runs (id INTEGER PRIMARY KEY, started REAL NOT NULL, ended REAL NOT NULL,"      \
    " host TEXT NOT NULL, pid INTEGER NOT NULL, command TEXT NOT NULL, kind TEXT NOT NULL,"        \
    " n_jobs INTEGER NOT NULL, backend TEXT NOT NULL, calls INTEGER NOT NULL,"                     \
    " cached INTEGER NOT NULL, computed INTEGER NOT NULL, failed INTEGER NOT NULL,"                \
    " skipped INTEGER NOT NULL, elapsed REAL NOT NULL, saved REAL NOT NULL, status TEXT NOT NULL);" \
    "CREATE TABLE run_failures (run INTEGER NOT NULL, n INTEGER NOT NULL, status TEXT NOT NULL,"  \
    " message TEXT NOT NULL, PRIMARY KEY (run, n)) WITHOUT ROWID;"

/* Schema 7: what max_size evicted during each run (issue 23), entries and
 * their payload bytes. Added to the runs table of schema 5, so that both a
 * new file and the migration get it by the same statements. */
#define RUN_EVICTED                                                                                \
    "ALTER TABLE runs ADD COLUMN evicted INTEGER NOT NULL DEFAULT 0;"                             \
    "ALTER TABLE runs ADD COLUMN evicted_bytes INTEGER NOT NULL DEFAULT 0;"

/* Schema 8: calls run again after a crash or timeout, per run (issue 24). */
#define RUN_RETRIES "ALTER TABLE runs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;"

/* Schema 9: intermediate values read from the cache per run (pipelines:
 * jc_progress.inputs_read). */
#define RUN_INPUTS_READ "ALTER TABLE runs ADD COLUMN inputs_read INTEGER NOT NULL DEFAULT 0;"

/* Schema 10: the hit log (store.h): hits are appended as rows of sorted
 * keys with their counts, folded into entries.hits and last_used later, so
 * that a hit writes no entry's row (issue 22). */
#define HIT_LOG_TABLE                                                                              \
    "CREATE TABLE hit_log (id INTEGER PRIMARY KEY, at REAL NOT NULL, hits INTEGER NOT NULL,"      \
    " saved REAL NOT NULL, keys BLOB NOT NULL);"

/* Schema 11: the parts of large results (docs/format.md, "Large results"),
 * each in chunks of up to 1 MiB, raw (codec 0) or a zstd frame (codec 1);
 * size is the chunk's raw length. A rowid table, read with blob I/O. */
#define CHUNKS_TABLE                                                                               \
    "CREATE TABLE chunks (key BLOB NOT NULL, part INTEGER NOT NULL, seq INTEGER NOT NULL,"         \
    " codec INTEGER NOT NULL, size INTEGER NOT NULL, data BLOB NOT NULL);"                         \
    "CREATE UNIQUE INDEX chunks_key ON chunks(key, part, seq);"

/* The names of functions' positional parameters (schema 6), by function
 * and version: "beta,seed" (identifiers joined by commas). Not part of any
 * key: renaming a parameter changes no result. */
#define PARAMS_TABLE                                                                               \
    "CREATE TABLE params (function TEXT NOT NULL, version TEXT NOT NULL, names TEXT NOT NULL,"   \
    " PRIMARY KEY (function, version)) WITHOUT ROWID;"

/* The schema of a new file (version JC__SCHEMA_VERSION). A file of an
 * older version is brought here by the migrations below. */
static const char schema_sql[] =
    "CREATE TABLE entries ("
    " key BLOB NOT NULL CHECK (length(key) = " STR(JC__KEY_LEN) "),"
    " function TEXT NOT NULL,"
    " version TEXT NOT NULL,"
    " args BLOB NOT NULL,"
    " result BLOB NOT NULL,"
    " args_size INTEGER NOT NULL,"
    " result_size INTEGER NOT NULL,"
    " created REAL NOT NULL,"         /* unix seconds */
    " last_used REAL NOT NULL,"       /* unix seconds */
    " compute_seconds REAL NOT NULL,"
    " hits INTEGER NOT NULL DEFAULT 0,"
    /* Schema 2: XXH3-128 of `result` (canonical, big-endian), checked on
     * every hit and by verify; and the fingerprint of the code that
     * computed the entry. NULL is unknown: never a mismatch. */
    " result_check BLOB,"
    " code_fp BLOB,"
    /* Schema 3: the key format (JC_KEY_FORMAT_VERSION) the entry's key was
     * made with. An entry of another format is never served, and verify
     * and merge tell it apart from damage (docs/format.md). */
    " key_format INTEGER NOT NULL DEFAULT 1);"
    /* A rowid table, not WITHOUT ROWID: results can be large blobs, which a
     * WITHOUT ROWID table would keep in its (key-ordered) B-tree pages. */
    "CREATE UNIQUE INDEX entries_key ON entries(key);"
    /* Only the key is indexed. Every stored result pays for each index, and
     * storing is the hot path of a cold run; per-function queries (stats,
     * rm --function) are rare and scan. */
    /* No index on last_used: every hit rewrites last_used, and an index on
     * it would cost an index update per hit on the hot path of a warm
     * rerun. Ordering by it (ls --sort used, prune) sorts instead, which
     * only the rare inspection and eviction pay for. */
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    LEASE_TABLES
    RUN_TABLES
    RUN_EVICTED
    RUN_RETRIES
    RUN_INPUTS_READ
    HIT_LOG_TABLE
    PARAMS_TABLE
    CHUNKS_TABLE
    "INSERT INTO meta VALUES ('key_format', '" STR(JC_KEY_FORMAT_VERSION) "'),"
    " ('created_by', 'jobcache " JC_VERSION_STRING "');"
    "PRAGMA user_version = " STR(JC__SCHEMA_VERSION) ";";

/* The chain of migrations: migrations[k] takes a file of schema k + 1 to
 * k + 2. A writable open runs every step the file needs, and sets
 * user_version, in one transaction: a kill in the middle leaves the file as
 * it was. A read-only open reads an older schema as it is (store.h). Each
 * later schema change adds one step here, and a file made by the code
 * before it under tests/data, which a test migrates. */
static const char *const migrations[] = {
    /* 1 -> 2 (jobcache 0.2.0): result checksums and code fingerprints.
     * Entries of 0.1.0 get their checksum now, so that they keep hitting
     * and a later change to their bytes is caught; their code is unknown. */
    "ALTER TABLE entries ADD COLUMN result_check BLOB;"
    "ALTER TABLE entries ADD COLUMN code_fp BLOB;"
    "UPDATE entries SET result_check = jc_xxh3_128(result) WHERE typeof(result) = 'blob';"
    "INSERT OR REPLACE INTO meta VALUES ('migrated_by', 'jobcache " JC_VERSION_STRING "');",
    /* 2 -> 3: each entry's key format. Every entry written before it was
     * made with key format 1, the only one there was. (Adding a column with
     * a constant default rewrites no row: instant on any cache.) */
    "ALTER TABLE entries ADD COLUMN key_format INTEGER NOT NULL DEFAULT 1;"
    "INSERT OR REPLACE INTO meta VALUES ('migrated_by', 'jobcache " JC_VERSION_STRING "');",
    /* 3 -> 4: leases (jobcache 0.2.0). */
    LEASE_TABLES "INSERT OR REPLACE INTO meta VALUES ('migrated_by', 'jobcache " JC_VERSION_STRING "');",
    /* 4 -> 5: the record of runs (jobcache 0.2.0). */
    RUN_TABLES "INSERT OR REPLACE INTO meta VALUES ('migrated_by', 'jobcache " JC_VERSION_STRING "');",
    /* 5 -> 6: the names of parameters. Functions of earlier runs have none
     * until a run stores one of their results again. */
    PARAMS_TABLE "INSERT OR REPLACE INTO meta VALUES ('migrated_by', 'jobcache " JC_VERSION_STRING "');",
    /* 6 -> 7: evictions in the record of runs (runs of earlier releases
     * evicted 0 as far as it knows: it did not count them). */
    RUN_EVICTED "INSERT OR REPLACE INTO meta VALUES ('migrated_by', 'jobcache " JC_VERSION_STRING "');",
    /* 7 -> 8: retries in the record of runs (runs before it retried none). */
    RUN_RETRIES "INSERT OR REPLACE INTO meta VALUES ('migrated_by', 'jobcache " JC_VERSION_STRING "');",
    /* 8 -> 9: intermediate values read per run (runs before it read none:
     * pipelines of 0.4 development builds counted them only in memory). */
    RUN_INPUTS_READ "INSERT OR REPLACE INTO meta VALUES ('migrated_by', 'jobcache " JC_VERSION_STRING "');",
    /* 9 -> 10: the hit log; the hits of earlier runs are in entries.hits
     * already. */
    HIT_LOG_TABLE "INSERT OR REPLACE INTO meta VALUES ('migrated_by', 'jobcache " JC_VERSION_STRING "');",
    /* 10 -> 11: results in pieces. Every result of an older file is whole
     * in its row, and stays so. */
    CHUNKS_TABLE "INSERT OR REPLACE INTO meta VALUES ('migrated_by', 'jobcache " JC_VERSION_STRING "');",
};
_Static_assert(sizeof migrations / sizeof *migrations == JC__SCHEMA_VERSION - 1,
               "one migration step per schema version");

void jc__result_check(const void *result, size_t len, uint8_t out[JC__CHECK_LEN])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(len ? result : "", len));
    memcpy(out, c.digest, JC__CHECK_LEN);
}

/* jc_xxh3_128(blob) for the migration: the checksum of a result. Direct
 * only (no use from a schema, views or triggers of a hostile file). */
static void sql_xxh3_128(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    uint8_t out[JC__CHECK_LEN];
    jc__result_check(sqlite3_value_blob(argv[0]), (size_t)sqlite3_value_bytes(argv[0]), out);
    sqlite3_result_blob(ctx, out, JC__CHECK_LEN, SQLITE_TRANSIENT);
}

int jc__sq_read_schema_info(jc__sqlite *st, schema_info *info)
{
    static const char sql[] =
        "SELECT (SELECT user_version FROM pragma_user_version),"
        " (SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'),"
        " (SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('entries', 'meta'))";
    sqlite3_stmt *s = NULL;
    int ret = 0;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        info->version = sqlite3_column_int64(s, 0);
        info->objects = sqlite3_column_int64(s, 1);
        info->ours = sqlite3_column_int64(s, 2) == 2;
    } else {
        ret = jc__sq_store_error(st, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "reading the file");
    }
    sqlite3_finalize(s);
    if (ret || !info->ours)
        return ret;
    /* Both tables are there: the meta row says they are jobcache's (another
     * application may have tables of these names too). */
    s = NULL;
    rc = sqlite3_prepare_v2(st->db, "SELECT count(*) FROM meta WHERE name = 'key_format'", -1, &s, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW)
        info->ours = sqlite3_column_int64(s, 0) == 1;
    else
        info->ours = false; /* a meta table of another shape: not ours */
    sqlite3_finalize(s);
    return 0;
}

/* Decides what the file is: 0 ours and current, 1 empty, 2 ours and older
 * (migrated by a writable open), or a negative code. Nothing is written
 * before this has said the file is ours. */
int jc__sq_classify(jc__sqlite *st, const schema_info *info)
{
    if (info->version == 0 && info->objects == 0)
        return 1; /* empty */
    if (info->version >= 1 && info->version <= JC__SCHEMA_VERSION && !info->ours)
        return jc__set_error(JC_ECORRUPT,
                             "cache file '%s' is not a jobcache cache: it is an SQLite database "
                             "of another application (user_version %lld, %lld schema objects, "
                             "no jobcache tables)",
                             st->path, (long long)info->version, (long long)info->objects);
    if (info->version > JC__SCHEMA_VERSION)
        return jc__set_error(JC_ESCHEMA,
                             "cache file '%s' has schema version %lld, newer than version %d of "
                             "this library (jobcache %s); use a newer jobcache",
                             st->path, (long long)info->version, JC__SCHEMA_VERSION, JC_VERSION_STRING);
    if (info->version == JC__SCHEMA_VERSION)
        return 0;
    if (info->version >= 1)
        return 2;
    return jc__set_error(JC_ECORRUPT,
                         "cache file '%s' is not a jobcache cache: it is an SQLite database "
                         "of another application (user_version %lld, %lld schema objects)",
                         st->path, (long long)info->version, (long long)info->objects);
}

/* Brings an older file to JC__SCHEMA_VERSION in one write transaction.
 * Another process may be doing the same: the version is read again under
 * the write lock, so the steps run once. */
int jc__sq_migrate(jc__sqlite *st)
{
    int rc = sqlite3_create_function_v2(st->db, "jc_xxh3_128", 1,
                                        SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, NULL,
                                        sql_xxh3_128, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return jc__sq_store_error(st, rc, "preparing the schema migration");
    rc = jc__sq_run_sql(st, "BEGIN IMMEDIATE", "locking the file to migrate its schema");
    if (rc)
        return rc;
    schema_info info = {0};
    rc = jc__sq_read_schema_info(st, &info);
    if (!rc)
        rc = jc__sq_classify(st, &info);
    int64_t from = info.version;
    for (int64_t v = from; rc == 2 && v < JC__SCHEMA_VERSION; v++) {
        char what[96];
        snprintf(what, sizeof what, "migrating the schema from version %lld to %lld", (long long)v,
                 (long long)v + 1);
        if ((rc = jc__sq_run_sql(st, migrations[v - 1], what)) == 0)
            rc = 2;
    }
    if (rc == 2)
        rc = jc__sq_run_sql(st, "PRAGMA user_version = " STR(JC__SCHEMA_VERSION), "migrating the schema");
    if (rc >= 0)
        rc = jc__sq_run_sql(st, "COMMIT", "migrating the schema");
    if (rc < 0)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL); /* harmless if none is open */
    sqlite3_create_function_v2(st->db, "jc_xxh3_128", 1, SQLITE_UTF8, NULL, NULL, NULL, NULL, NULL);
    return rc;
}

/* Creates the schema in an empty file. Another process may be doing the
 * same: the check is repeated under the write lock, so exactly one creates;
 * the others find a current file, or (an older library won the race) one
 * to migrate. */
int jc__sq_create_schema(jc__sqlite *st)
{
    schema_info info = {0};
    int rc = jc__sq_run_sql(st, "BEGIN IMMEDIATE", "locking the new cache file");
    if (rc)
        return rc;
    rc = jc__sq_read_schema_info(st, &info);
    if (!rc)
        rc = jc__sq_classify(st, &info);
    if (rc == 1)
        rc = jc__sq_run_sql(st, schema_sql, "creating the schema");
    if (rc >= 0)
        rc = jc__sq_run_sql(st, "COMMIT", "creating the schema");
    if (rc < 0)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL); /* harmless if none is open */
    return rc == 2 ? jc__sq_migrate(st) : rc < 0 ? rc : 0;
}
