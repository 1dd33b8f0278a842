/*
 * One host at a time on a network file system (issue 26).
 *
 * SQLite's WAL mode shares memory between the processes using a file (its
 * -shm file, mapped), which works on one host only: two hosts using one
 * cache file over NFS can corrupt it (sqlite.org/wal.html, "WAL does not
 * work over a network filesystem"). So when a cache file lies on a network
 * file system (statfs: NFS, SMB/CIFS, Lustre, GPFS, CephFS, BeeGFS, ...),
 * opening it records the host in FILE.host, renewed by a thread while the
 * file is open and expiring when not renewed (a crashed host locks no one
 * out for longer than JC__HOST_TTL seconds), and a process of another host
 * is refused while the record lives, with an error naming the host.
 *
 * The record is created with link(2), which is atomic on NFS as well, and
 * replaced (renewed, or taken over once expired) by rename(2); after
 * writing, it is read back: of two hosts taking over an expired record at
 * once, the one whose record is not there is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "sqlite.h"
#include "sqlite_int.h"

/* Seconds a record lives without renewal; renewed every third of it. */
#define JC__HOST_TTL 120

struct jc__hostlock {
    char *record;     /* FILE.host */
    char host[256];
    long pid;
    int ttl;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, running;
};

/* The network file system path's directory lies on, or NULL for a local
 * one. JC_TEST_NETWORK_FS (tests only) names one, so that tests run the
 * guard on a local disk. */
static const char *network_fs(const char *dir)
{
    const char *t = getenv("JC_TEST_NETWORK_FS");
    if (t && *t)
        return t;
    struct statfs sf;
    if (statfs(dir, &sf) != 0)
        return NULL;
    switch ((unsigned int)sf.f_type) { /* linux/magic.h, and the vendors' own */
    case 0x6969u: return "NFS";
    case 0x517Bu: return "SMB";
    case 0xFF534D42u: return "CIFS";
    case 0xFE534D42u: return "SMB2";
    case 0x0BD00BD0u: return "Lustre";
    case 0x47504653u: return "GPFS";
    case 0x00C36400u: return "CephFS";
    case 0x19830326u: return "BeeGFS";
    case 0xAAD7AAEAu: return "PanFS";
    case 0x5346414Fu: return "AFS";
    case 0x6B414653u: return "AFS";
    case 0x01021997u: return "9P";
    case 0x7461636Fu: return "OCFS2";
    case 0x01161970u: return "GFS2";
    default: return NULL;
    }
}

static void my_host(char *out, size_t cap)
{
    const char *t = getenv("JC_TEST_HOSTNAME"); /* tests only: processes that claim another host */
    if (t && *t) {
        snprintf(out, cap, "%s", t);
        return;
    }
    if (gethostname(out, cap) != 0)
        snprintf(out, cap, "unknown");
    out[cap - 1] = '\0';
}

typedef struct record {
    char host[256];
    long pid;
    long long expires;
} record;

/* Reads the record: 1 when there is one, 0 when none, -1 on an error. A
 * record that does not parse counts as expired (it is replaced). */
static int read_record(const char *path, record *r)
{
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "host ", 5) == 0)
            snprintf(r->host, sizeof r->host, "%.255s", line + 5);
        else if (strncmp(line, "pid ", 4) == 0)
            r->pid = strtol(line + 4, NULL, 10);
        else if (strncmp(line, "expires ", 8) == 0)
            r->expires = strtoll(line + 8, NULL, 10);
    }
    fclose(f);
    return 1;
}

/* Writes our record into a file of its own beside path: its name, or NULL. */
static char *write_temp(const jc__hostlock *h)
{
    char *tmp = jc__strdup_printf("%s.%s.%ld.tmp", h->record, h->host, h->pid);
    if (!tmp)
        return NULL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        free(tmp);
        return NULL;
    }
    char text[512];
    int n = snprintf(text, sizeof text,
                     "jobcache: the host using this cache file on a network file system\nhost %s\npid %ld\n"
                     "expires %lld\n",
                     h->host, h->pid, (long long)time(NULL) + h->ttl);
    bool ok = n > 0 && write(fd, text, (size_t)n) == n && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        unlink(tmp);
        free(tmp);
        return NULL;
    }
    return tmp;
}

/* Makes the record ours: created when there is none (link: it fails if
 * another process made one meanwhile), else replaced. 0, or -1. */
static int put_record(const jc__hostlock *h, bool exists)
{
    char *tmp = write_temp(h);
    if (!tmp)
        return -1;
    int rc = exists ? rename(tmp, h->record) : link(tmp, h->record);
    int saved = errno;
    if (!exists || rc != 0)
        unlink(tmp);
    free(tmp);
    errno = saved;
    return rc;
}

static void *renew(void *arg)
{
    jc__hostlock *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += h->ttl / 3 > 0 ? h->ttl / 3 : 1;
        while (!h->stop && pthread_cond_timedwait(&h->cv, &h->mu, &until) != ETIMEDOUT)
            ;
        if (h->stop)
            break;
        record r;
        /* Renewed while it names this host; a record of another host (ours
         * expired while this process was stopped) is left alone. */
        if (read_record(h->record, &r) >= 0 && (!r.host[0] || strcmp(r.host, h->host) == 0))
            put_record(h, r.host[0] != '\0');
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static void hostlock_free(jc__hostlock *h)
{
    if (!h)
        return;
    if (h->running) {
        pthread_mutex_lock(&h->mu);
        h->stop = true;
        pthread_cond_signal(&h->cv);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->thread, NULL);
    }
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h->record);
    free(h);
}

int jc__hostlock_take(const char *path, jc__hostlock **out)
{
    *out = NULL;
    char *dir = NULL;
    const char *slash = strrchr(path, '/');
    dir = slash ? jc__strdup_printf("%.*s", slash == path ? 1 : (int)(slash - path), path) : jc__strdup(".");
    if (!dir)
        return jc__set_error(JC_ENOMEM, "out of memory opening cache file '%s'", path);
    const char *fs = network_fs(dir);
    /* A directory this process cannot write: SQLite opens the file
     * immutable, without -wal or -shm, which any host may read. */
    bool writable = access(dir, W_OK | X_OK) == 0;
    free(dir);
    if (!fs || !writable)
        return 0;
    jc__hostlock *h = calloc(1, sizeof *h);
    if (!h || !(h->record = jc__strdup_printf("%s.host", path))) {
        free(h);
        return jc__set_error(JC_ENOMEM, "out of memory opening cache file '%s'", path);
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    my_host(h->host, sizeof h->host);
    h->pid = (long)getpid();
    const char *ttl = getenv("JC_TEST_HOST_TTL"); /* tests only: seconds */
    h->ttl = ttl && atoi(ttl) > 0 ? atoi(ttl) : JC__HOST_TTL;
    int rc = 0;
    for (int attempt = 0;; attempt++) {
        record r;
        int found = read_record(h->record, &r);
        long long now = (long long)time(NULL);
        if (found > 0 && r.host[0] && strcmp(r.host, h->host) != 0 && r.expires > now) {
            rc = jc__set_error(JC_EBUSY,
                               "cache file '%s' is on a network file system (%s) and is in use on host '%s' "
                               "(recorded in '%s', renewed while it is open; it expires in %lld s): SQLite "
                               "cannot share a cache file between hosts safely (its WAL index is memory "
                               "of one host). Use a cache file per host and 'jobcache merge' them; a "
                               "record left by a crashed host expires by itself, or 'jobcache unlock-host "
                               "%s' clears it",
                               path, fs, r.host, h->record, r.expires - now, path);
            break;
        }
        if (found < 0 || attempt == 3) {
            rc = jc__set_error(JC_EIO, "cannot record this host in '%s' (cache file '%s' is on a network file "
                               "system, %s): %s", h->record, path, fs, strerror(errno));
            break;
        }
        if (put_record(h, found > 0) != 0) {
            if (errno == EEXIST)
                continue; /* made meanwhile by another process: read it */
            rc = jc__set_error(JC_EIO, "cannot record this host in '%s' (cache file '%s' is on a network "
                               "file system, %s): %s", h->record, path, fs, strerror(errno));
            break;
        }
        /* Read back: of two hosts taking over at once, one record stays. */
        if (read_record(h->record, &r) > 0 && strcmp(r.host, h->host) == 0)
            break;
    }
    if (!rc && pthread_create(&h->thread, NULL, renew, h) == 0)
        h->running = true;
    else if (!rc)
        rc = jc__set_error(JC_EIO, "cannot start renewing the host record of cache file '%s'", path);
    if (rc) {
        hostlock_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

void jc__hostlock_release(jc__hostlock *h)
{
    if (!h)
        return;
    char *path = jc__strdup(h->record);
    char host[256];
    snprintf(host, sizeof host, "%s", h->host);
    long pid = h->pid;
    hostlock_free(h);
    /* Removed when it is this process's: another process of this host
     * renews its own. */
    record r;
    if (path && read_record(path, &r) > 0 && strcmp(r.host, host) == 0 && r.pid == pid)
        unlink(path);
    free(path);
}

int jc__sqlite_unlock_host(const char *path, char **host)
{
    return jc__hostlock_clear(path, host);
}

int jc__hostlock_clear(const char *path, char **host)
{
    *host = NULL;
    char *rec = jc__strdup_printf("%s.host", path);
    if (!rec)
        return jc__set_error(JC_ENOMEM, "out of memory");
    record r;
    int found = read_record(rec, &r);
    int rc = 0;
    if (found < 0)
        rc = jc__set_error(JC_EIO, "cannot read '%s': %s", rec, strerror(errno));
    else if (found && unlink(rec) != 0 && errno != ENOENT)
        rc = jc__set_error(JC_EIO, "cannot remove '%s': %s", rec, strerror(errno));
    else if (found && !(*host = jc__strdup(r.host[0] ? r.host : "(unknown)")))
        rc = jc__set_error(JC_ENOMEM, "out of memory");
    free(rec);
    return rc;
}
