/*
 * The file as a whole: vacuum, online backup, the largest row id.
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

int jc__sqlite_vacuum(jc__sqlite *st)
{
    int rc = jc__sq_store_enter_write(st, "vacuum");
    if (rc)
        return rc;
    if (st->depth > 0)
        return jc__set_error(JC_EINVAL, "cache file '%s': cannot vacuum inside a transaction",
                             st->path);
    jc__sq_end_read(st);
    /* From now on the file can give pages back without a VACUUM (eviction
     * runs PRAGMA incremental_vacuum): a file made before auto_vacuum was
     * set at creation gets it here, once. */
    /* Chunks whose entry is gone (none is left so by this library; an
     * older one writing a migrated file could) go first. */
    if (st->schema >= 11)
        rc = jc__sq_run_sql(st, "DELETE FROM chunks WHERE key NOT IN (SELECT key FROM entries)",
                            "removing parts without an entry");
    if (!rc)
        rc = jc__sq_run_sql(st, "PRAGMA auto_vacuum = INCREMENTAL; VACUUM", "vacuuming");
    /* Without a checkpoint the rewritten pages sit in the -wal file, which
     * then is as large as the database. A reader of another process may
     * keep part of it: the checkpoint then does what it can, quietly. */
    if (!rc)
        sqlite3_exec(st->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    return rc;
}

int jc__sqlite_backup(jc__sqlite *st, const char *dest)
{
    int rc = jc__sq_store_enter(st);
    if (rc)
        return rc;
    if (!dest || !*dest)
        return jc__set_error(JC_EINVAL, "backup of '%s': no destination path", st->path);
    if (access(dest, F_OK) == 0)
        return jc__set_error(JC_EIO, "backup of '%s': '%s' already exists; remove it first or choose "
                             "another name", st->path, dest);
    if (st->depth > 0)
        return jc__set_error(JC_EINVAL, "backup of '%s': not inside a transaction", st->path);
    jc__sq_end_read(st);
    /* Written under a temporary name beside dest and renamed at the end, so
     * that dest is either absent or a complete copy. */
    size_t n = strlen(dest) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return jc__set_error(JC_ENOMEM, "out of memory backing up '%s'", st->path);
    snprintf(tmp, n, "%s.tmp%ld", dest, (long)getpid());
    /* Made here, exclusively, with the mode the umask allows (SQLite's
     * SQLITE_OPEN_EXCLUSIVE is ignored by sqlite3_open_v2): a file of that
     * name that is not ours is never written over, nor removed. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        rc = jc__set_error(errno == ENOSPC ? JC_EFULL : JC_EIO, "backup of '%s': cannot create '%s': %s",
                           st->path, tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    close(fd);
    sqlite3 *out = NULL;
    int src = sqlite3_open_v2(tmp, &out, SQLITE_OPEN_READWRITE, NULL);
    if (src != SQLITE_OK) {
        rc = jc__set_error(JC_EIO, "backup of '%s': cannot create '%s': %s", st->path, tmp,
                           out ? sqlite3_errmsg(out) : sqlite3_errstr(src));
        sqlite3_close(out);
        free(tmp);
        return rc;
    }
    /* One step (-1) copies every page under one read transaction of the
     * source: a consistent snapshot, which writers of other processes do
     * not wait for (WAL). https://www.sqlite.org/backup.html */
    sqlite3_backup *b = sqlite3_backup_init(out, "main", st->db, "main");
    int step = b ? sqlite3_backup_step(b, -1) : sqlite3_errcode(out);
    int fin = b ? sqlite3_backup_finish(b) : SQLITE_OK;
    if (step != SQLITE_DONE || fin != SQLITE_OK) {
        int code = (step & 0xff) == SQLITE_BUSY || (step & 0xff) == SQLITE_LOCKED ? JC_EBUSY
                   : (step & 0xff) == SQLITE_FULL                                 ? JC_EFULL
                                                                                  : JC_EIO;
        rc = jc__set_error(code, "backup of '%s' to '%s' failed: %s", st->path, dest, sqlite3_errmsg(out));
    }
    /* The copy is in WAL mode like its source; closing the only connection
     * to it checkpoints and removes its -wal file: one self-contained file. */
    if (!rc && sqlite3_exec(out, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK)
        rc = jc__set_error(JC_EIO, "backup of '%s' to '%s' failed: %s", st->path, dest, sqlite3_errmsg(out));
    if (sqlite3_close(out) != SQLITE_OK && !rc)
        rc = jc__set_error(JC_EIO, "backup of '%s' to '%s': closing the copy failed", st->path, dest);
    /* Published with link(), which never replaces: a dest made meanwhile by
     * someone else is left alone, and reported. */
    if (!rc && link(tmp, dest) != 0)
        rc = jc__set_error(JC_EIO, "backup of '%s': cannot name the copy '%s': %s%s", st->path, dest,
                           strerror(errno), errno == EEXIST ? " (made meanwhile by another program)" : "");
    unlink(tmp);
    if (rc) {
        size_t m = strlen(tmp) + 8;
        char *side = malloc(m);
        if (side) {
            snprintf(side, m, "%s-wal", tmp);
            unlink(side);
            snprintf(side, m, "%s-shm", tmp);
            unlink(side);
            free(side);
        }
    }
    free(tmp);
    return rc;
}

int jc__sqlite_max_rowid(jc__sqlite *st, int64_t *out)
{
    int rc = jc__sq_store_enter(st);
    if (rc)
        return rc;
    *out = 0;
    int step = sqlite3_step(st->max_rowid);
    if (step == SQLITE_ROW)
        *out = sqlite3_column_int64(st->max_rowid, 0);
    sqlite3_reset(st->max_rowid);
    return step == SQLITE_ROW ? 0 : jc__sq_store_error(st, step, "finding the largest row id");
}
