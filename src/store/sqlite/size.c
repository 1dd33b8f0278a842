/*
 * The size on disk, checkpoints, and eviction of least recently used entries.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "store/store.h"
#include "sqlite_int.h"

/* ---- the size on disk, and eviction down to one ---- */

/* Pages of an empty cache: the schema table, a pointer map (auto_vacuum),
 * the entries table and its key index, the meta table and its index. */
enum { EMPTY_PAGES = 6 };

static int64_t stat_size(const char *path, const char *suffix)
{
    char buf[4096];
    struct stat sb;
    snprintf(buf, sizeof buf, "%s%s", path, suffix);
    return stat(buf, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

int64_t jc__sqlite_disk_bytes(const jc__sqlite *st)
{
    return st ? stat_size(st->path, "") + stat_size(st->path, "-wal") : 0;
}

/* The bytes of the -shm file that SQLite's unix VFS locks (wal.c,
 * WALINDEX_LOCK_OFFSET: 120; locks 0 write, 1 checkpoint, 2 recover,
 * 3 + i read mark i): a process reading a snapshot that includes frames of
 * the -wal holds a shared lock on read mark 1 to 4 (read mark 0 reads the
 * database alone, and pins nothing). */
enum { WAL_LOCK_OFFSET = 120, WAL_READ_FIRST = WAL_LOCK_OFFSET + 3 + 1, WAL_READ_LAST = WAL_LOCK_OFFSET + 3 + 4 };

size_t jc__sqlite_wal_readers(const jc__sqlite *st, long *pids, size_t cap)
{
    /* Read from /proc/locks, not by testing the locks with fcntl: opening
     * and closing the -shm file here would drop every POSIX lock this
     * process's own connections hold on it. */
    char shm[4096];
    struct stat sb;
    if (!st || snprintf(shm, sizeof shm, "%s-shm", st->path) >= (int)sizeof shm || stat(shm, &sb) != 0)
        return 0;
    FILE *f = fopen("/proc/locks", "re");
    if (!f)
        return 0;
    size_t n = 0;
    long self = (long)getpid();
    char line[256];
    while (fgets(line, sizeof line, f)) {
        /* "12: POSIX  ADVISORY  READ 4242 08:02:1311 124 124" (a lock
         * blocked behind another starts with "->" and holds nothing). */
        char kind[16], type[16];
        long pid;
        unsigned maj, min;
        unsigned long long ino;
        char start[24], end[24];
        if (strstr(line, "->") ||
            sscanf(line, "%*d: %15s %*s %15s %ld %x:%x:%llu %23s %23s", kind, type, &pid, &maj, &min, &ino, start,
                   end) != 8 ||
            strcmp(kind, "POSIX") != 0 || ino != (unsigned long long)sb.st_ino || maj != major(sb.st_dev) ||
            min != minor(sb.st_dev) || pid == self || pid <= 0)
            continue;
        long long a = strtoll(start, NULL, 10), b = strcmp(end, "EOF") == 0 ? LLONG_MAX : strtoll(end, NULL, 10);
        if (b < WAL_READ_FIRST || a > WAL_READ_LAST)
            continue;
        bool seen = false;
        for (size_t i = 0; i < n && i < cap; i++)
            seen |= pids[i] == pid;
        if (!seen && n < cap)
            pids[n] = pid;
        n += !seen;
    }
    fclose(f);
    return n;
}

int jc__sqlite_size_get(jc__sqlite *st, jc__store_size *out)
{
    int rc = jc__sq_store_enter(st);
    if (rc)
        return rc;
    rc = jc__sq_lazy(st, &st->size,
              "SELECT (SELECT page_count FROM pragma_page_count), (SELECT page_size FROM pragma_page_size),"
              " (SELECT freelist_count FROM pragma_freelist_count),"
              " (SELECT auto_vacuum FROM pragma_auto_vacuum)");
    if (rc)
        return rc;
    int step = sqlite3_step(st->size);
    if (step == SQLITE_ROW) {
        out->page_bytes = sqlite3_column_int64(st->size, 1);
        out->pages = sqlite3_column_int64(st->size, 0);
        out->free_pages = sqlite3_column_int64(st->size, 2);
        out->incremental = sqlite3_column_int64(st->size, 3) == 2;
        out->empty_bytes = EMPTY_PAGES * out->page_bytes;
    } else {
        rc = jc__sq_store_error(st, step == SQLITE_DONE ? SQLITE_CORRUPT : step, "reading the file's size");
    }
    sqlite3_reset(st->size);
    return rc;
}

int jc__sqlite_checkpoint(jc__sqlite *st)
{
    int rc = jc__sq_store_enter_write(st, "checkpoint");
    if (rc)
        return rc;
    if (st->depth > 0)
        return jc__set_error(JC_EINVAL, "cache file '%s': cannot checkpoint inside a transaction", st->path);
    /* TRUNCATE waits for readers under the busy handler; a run that ends
     * must not wait for another process's long read, so none here. When
     * another process reads (or writes) the file meanwhile, the checkpoint
     * copies what it can, and the -wal file keeps its size until a later
     * checkpoint resets it (journal_size_limit then truncates it). */
    jc__sq_busy_install(st, 0);
    int log = -1, done = -1;
    int c = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
    jc__sq_busy_install(st, st->busy_timeout_ms);
    if (c == SQLITE_OK)
        return 0;
    if ((c & 0xff) == SQLITE_BUSY || (c & 0xff) == SQLITE_LOCKED)
        return 1;
    return jc__sq_store_error(st, c, "checkpointing");
}

/* Bytes of the pages in use (the file's size once free pages are given
 * back), as this connection sees them, its own transaction included. */
static int used_bytes(jc__sqlite *st, int64_t *used, jc__store_size *z)
{
    int rc = jc__sqlite_size_get(st, z);
    if (!rc)
        *used = (z->pages - z->free_pages) * z->page_bytes;
    return rc;
}

typedef struct evict_bounds {
    double overhead, excess;
    int64_t limit; /* at most this many entries; -1: no bound */
} evict_bounds;

static int bind_evict(sqlite3_stmt *s, const void *ctx)
{
    const evict_bounds *b = ctx;
    int rc = sqlite3_bind_double(s, 1, b->overhead);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(s, 2, b->excess);
    return rc == SQLITE_OK ? sqlite3_bind_int64(s, 3, b->limit) : rc;
}

int jc__sqlite_count(jc__sqlite *st, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    int rc = jc__sq_run_where(st, "SELECT count(*) FROM entries", "1", NULL, NULL, "counting entries", &s);
    *out = rc ? 0 : sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return rc;
}

int jc__sqlite_evict(jc__sqlite *st, int64_t target, int64_t max_count, int64_t *count, int64_t *bytes)
{
    /* The least recently used entries whose estimated share of the file
     * (payload + overhead each) covers the excess: those before which less
     * than the excess is covered. */
    static const char where[] =
        "rowid IN (SELECT id FROM (SELECT rowid AS id, args_size + result_size + ?1 AS own,"
        " total(args_size + result_size + ?1) OVER (ORDER BY " USED ", rowid"
        " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum FROM entries)"
        " WHERE cum - own < ?2 ORDER BY cum LIMIT ?3)";
    int64_t c_total = 0, b_total = 0;
    int rc = jc__sq_store_enter_write(st, "evict entries");
    if (!rc && st->depth == 0)
        rc = jc__set_error(JC_EINVAL, "cache file '%s': eviction outside a transaction", st->path);
    /* Times later than now age from today once eviction is due (they
     * already count as now in the order below). */
    if (!rc)
        rc = jc__sqlite_clamp_future(st, NULL);
    /* Each round gives free pages back (PRAGMA incremental_vacuum, a no-op
     * in a file without auto_vacuum, whose size then counts its pages in
     * use), measures, and removes what the estimate says covers the excess.
     * Entries removed here and there may free no whole page (an index page
     * keeps its other keys), so the estimate is refined from what the
     * file really lost, and the excess asked for grows each round; every
     * round removes at least one entry. */
    for (int round = 0; !rc && round < 16; round++) {
        jc__store_size z;
        int64_t used = 0, n = 0;
        double payload = 0;
        rc = jc__sq_run_sql(st, "PRAGMA incremental_vacuum", "giving free pages back");
        if (!rc)
            rc = used_bytes(st, &used, &z);
        if (rc || used <= target || (max_count > 0 && c_total >= max_count))
            break;
        sqlite3_stmt *s = NULL;
        rc = jc__sq_run_where(st, "SELECT count(*), total(args_size + result_size) FROM entries", "1", NULL, NULL,
                       "measuring entries", &s);
        if (!rc) {
            n = sqlite3_column_int64(s, 0);
            payload = sqlite3_column_double(s, 1);
        }
        sqlite3_finalize(s);
        if (rc || n == 0)
            break;
        double over = ((double)(used - z.empty_bytes) - payload) / (double)n;
        evict_bounds b = {.overhead = over > 32 ? over : 32, .excess = (double)(used - target) * (1 + round),
                          .limit = max_count > 0 ? max_count - c_total : -1};
        int64_t c = 0, by = 0;
        rc = jc__sq_remove_where(st, where, bind_evict, &b, &c, &by);
        c_total += c;
        b_total = by > INT64_MAX - b_total ? INT64_MAX : b_total + by;
    }
    if (!rc)
        rc = jc__sq_run_sql(st, "PRAGMA incremental_vacuum", "giving free pages back");
    if (count)
        *count = rc ? 0 : c_total;
    if (bytes)
        *bytes = rc ? 0 : b_total;
    return rc;
}
