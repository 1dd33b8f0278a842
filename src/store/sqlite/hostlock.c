/*
 * One host at a time on a network file system (issue 26).
 *
 * SQLite's WAL mode shares memory between the processes using a file (its
 * -shm file, mapped), which works on one host only: two hosts using one
 * cache file over NFS can corrupt it (sqlite.org/wal.html: "WAL does not
 * work over a network filesystem"). So when a cache file lies on a network
 * file system (statfs: NFS, SMB/CIFS, Lustre, GPFS, CephFS, BeeGFS, ...),
 * each handle that opens it writes a record of its own into the directory
 * FILE.hosts/ (its host and process), touched by a thread while the file is
 * open and removed at close; a record not touched for JC__HOST_TTL seconds
 * is dead (its host crashed). An open that finds a live record of another
 * host is refused, naming it. Processes of one host share the file as on a
 * local disk.
 *
 * - Ages are judged by the file server's clock alone: a record's age is the
 *   mtime of the record just written by this handle minus the other's
 *   mtime, both set by the server, so the clients' clocks do not matter.
 * - A host is its name and its boot (/proc/sys/kernel/random/boot_id): two
 *   machines of one name, or one machine after a reboot, are different.
 * - Two hosts opening at once: each writes its record first and then looks;
 *   both see the other and both are refused (neither uses the file), never
 *   both let in.
 * - A handle whose renewal fails, or that finds another host's live record
 *   after it opened (its record was cleared by jobcache unlock-host while it
 *   was alive), has lost the file: every write is then refused
 *   (jc__hostlock_lost), so that two hosts never write it at once.
 * NFS caches directory listings and attributes for a few seconds
 * (acdirmin): two hosts opening within that time may not see each other.
 * The record narrows the danger to that window; it cannot close it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
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

/* Seconds a record lives without being touched; touched every third. */
#define JC__HOST_TTL 120

struct jc__hostlock {
    char *dir;        /* FILE.hosts */
    char *mine;       /* this handle's record in it */
    char id[300];     /* host name, '~', boot id: what "this host" is */
    char name[256];   /* host name, for messages */
    int ttl;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, running;
    atomic_bool lost;
    double checked; /* CLOCK_MONOTONIC seconds of the last check at a write */
    char lost_to[400]; /* written once, before lost is set */
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

/* This host: its name, and its boot. JC_TEST_HOSTNAME (tests only) makes a
 * process claim to be another host. */
static void my_host(jc__hostlock *h)
{
    const char *t = getenv("JC_TEST_HOSTNAME");
    char boot[64] = "";
    if (t && *t) {
        snprintf(h->name, sizeof h->name, "%.200s", t);
        snprintf(boot, sizeof boot, "test");
    } else {
        if (gethostname(h->name, sizeof h->name) != 0)
            snprintf(h->name, sizeof h->name, "unknown");
        h->name[sizeof h->name - 1] = '\0';
        FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
        if (f) {
            if (!fgets(boot, sizeof boot, f))
                boot[0] = '\0';
            fclose(f);
        }
        boot[strcspn(boot, "\n")] = '\0';
    }
    /* The record's name: no '/' and no '~' from the host name. */
    for (char *p = h->name; *p; p++)
        if (*p == '/' || *p == '~')
            *p = '_';
    snprintf(h->id, sizeof h->id, "%s~%s", h->name, boot[0] ? boot : "noboot");
}

/* Writes this handle's record (a new file; O_EXCL: the name is unique to
 * this process and handle). 0, or -1 with errno set. */
static int write_mine(const jc__hostlock *h)
{
    int fd = open(h->mine, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    char text[400];
    int n = snprintf(text, sizeof text, "jobcache: a process of this host has the cache file open\nhost %s\npid %ld\n",
                     h->name, (long)getpid());
    bool ok = n > 0 && write(fd, text, (size_t)n) == n;
    (void)fchmod(fd, 0644); /* readable by the other users of a shared cache, whatever the umask */
    ok = close(fd) == 0 && ok;
    if (!ok) {
        int saved = errno;
        unlink(h->mine);
        errno = saved;
        return -1;
    }
    return 0;
}

/* The mtime of path (set by the file server), or -1. */
static int64_t mtime_of(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return -1;
    return (int64_t)sb.st_mtim.tv_sec;
}

/* Looks for a live record of another host: 1 and its host name in other,
 * 0 none, -1 the directory cannot be read. now is the server's time (the
 * mtime of this handle's record); dead records are removed on the way.
 * Without one (a read-only look that could not write its own), every
 * record counts as live and none is removed. */
static int other_host(const jc__hostlock *h, const int64_t *now, char *other, size_t cap)
{
    DIR *d = opendir(h->dir);
    if (!d)
        return -1;
    size_t idlen = strlen(h->id);
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (n[0] == '.')
            continue;
        char *p = jc__strdup_printf("%s/%s", h->dir, n);
        int64_t t = p ? mtime_of(p) : -1;
        bool same = strncmp(n, h->id, idlen) == 0 && n[idlen] == '.';
        if (t >= 0 && now && *now - t > h->ttl) {
            unlink(p); /* dead: its host stopped touching it */
        } else if (t >= 0 && !same && !found) {
            const char *tilde = strchr(n, '~');
            snprintf(other, cap, "%.*s", tilde ? (int)(tilde - n) : (int)strlen(n), n);
            found = 1;
        }
        free(p);
    }
    closedir(d);
    return found;
}

static void lose(jc__hostlock *h, const char *why)
{
    if (atomic_load(&h->lost))
        return;
    snprintf(h->lost_to, sizeof h->lost_to, "%s", why);
    atomic_store(&h->lost, true);
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
        char other[256], why[320];
        /* Touched (the server sets its mtime). Gone (jobcache unlock-host
         * removed it while this process lives): written again, unless
         * another host has opened the file meanwhile, which then keeps it. */
        if (utimensat(AT_FDCWD, h->mine, NULL, 0) != 0) {
            int err = errno;
            if (err == ENOENT && other_host(h, NULL, other, sizeof other) == 1) {
                snprintf(why, sizeof why, "host '%s' has opened it meanwhile", other);
                lose(h, why);
            } else if (err != ENOENT || write_mine(h) != 0) {
                lose(h, "its record of this host could not be renewed");
            }
            continue;
        }
        int64_t now = mtime_of(h->mine);
        if (now >= 0 && other_host(h, &now, other, sizeof other) == 1) {
            snprintf(why, sizeof why, "host '%s' has opened it meanwhile", other);
            lose(h, why);
        }
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
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
    }
    free(h->dir);
    free(h->mine);
    free(h);
}

/* The file path names (through symbolic links), and its directory. */
static int resolve(const char *path, char **file, char **dir)
{
    char *real = realpath(path, NULL);
    *file = real ? real : jc__strdup(path);
    if (!*file)
        return -1;
    const char *slash = strrchr(*file, '/');
    *dir = slash ? jc__strdup_printf("%.*s", slash == *file ? 1 : (int)(slash - *file), *file) : jc__strdup(".");
    return *dir ? 0 : -1;
}

int jc__hostlock_take(const char *path, bool readonly, jc__hostlock **out)
{
    *out = NULL;
    char *file = NULL, *dir = NULL;
    if (resolve(path, &file, &dir)) {
        free(file);
        return jc__set_error(JC_ENOMEM, "out of memory opening cache file '%s'", path);
    }
    const char *fs = network_fs(dir);
    free(dir);
    if (!fs) {
        free(file);
        return 0;
    }
    static atomic_uint serial; /* the handles of this process */
    jc__hostlock *h = calloc(1, sizeof *h);
    if (h)
        my_host(h);
    if (!h || !(h->dir = jc__strdup_printf("%s.hosts", file)) ||
        !(h->mine = jc__strdup_printf("%s/%s.%ld.%u", h->dir, h->id, (long)getpid(), atomic_fetch_add(&serial, 1)))) {
        free(file);
        hostlock_free(h);
        return jc__set_error(JC_ENOMEM, "out of memory opening cache file '%s'", path);
    }
    free(file);
    const char *ttl = getenv("JC_TEST_HOST_TTL"); /* tests only: seconds */
    h->ttl = ttl && atoi(ttl) > 0 ? atoi(ttl) : JC__HOST_TTL;
    int rc = 0;
    bool recorded = (mkdir(h->dir, 0777) == 0 || errno == EEXIST) && write_mine(h) == 0;
    int err = errno;
    /* The server's time: this record's mtime, or (a read-only look that
     * cannot write the directory) none: then every record counts as live. */
    int64_t now = recorded ? mtime_of(h->mine) : -1;
    char other[256];
    int seen = 0;
    if (!recorded && !(readonly && (err == EACCES || err == EROFS || err == EPERM || err == ENOSPC || err == EDQUOT)))
        rc = jc__set_error(JC_EIO, "cannot record this host in '%s' (cache file '%s' is on a network file system, "
                           "%s, where one host at a time may use it): %s", h->dir, path, fs, strerror(err));
    else if ((seen = other_host(h, now >= 0 ? &now : NULL, other, sizeof other)) < 0 && recorded)
        rc = jc__set_error(JC_EIO, "cannot read '%s' (cache file '%s' is on a network file system, %s): %s", h->dir,
                           path, fs, strerror(errno));
    else if (seen == 1)
        rc = jc__set_error(JC_EBUSY,
                           "cache file '%s' is on a network file system (%s) and is in use on host '%s' (its "
                           "record is in '%s', renewed while it is open): SQLite cannot share a cache file "
                           "between hosts safely (its WAL index is memory of one host). Share a cache among hosts "
                           "on a PostgreSQL server (JOBCACHE_PATH=postgresql://...; docs/store.md), or use a "
                           "cache file per host and 'jobcache merge' them; a record left by a host that crashed expires %d s "
                           "after its last renewal, or 'jobcache unlock-host %s' clears it",
                           path, fs, other, h->dir, h->ttl, path);
    if (!rc && recorded) {
        pthread_mutex_init(&h->mu, NULL);
        pthread_condattr_t ca;
        bool ok = pthread_condattr_init(&ca) == 0;
        ok = ok && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_cond_init(&h->cv, &ca) == 0;
        if (ok && pthread_create(&h->thread, NULL, renew, h) == 0) {
            h->running = true;
        } else {
            if (ok)
                pthread_cond_destroy(&h->cv);
            pthread_mutex_destroy(&h->mu);
            rc = jc__set_error(JC_EIO, "cannot start renewing the host record of cache file '%s'", path);
        }
        pthread_condattr_destroy(&ca);
    }
    if (rc || !recorded) {
        if (recorded)
            unlink(h->mine);
        rmdir(h->dir); /* when empty */
        hostlock_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

const char *jc__hostlock_lost(jc__hostlock *h)
{
    if (!h)
        return NULL;
    if (!atomic_load(&h->lost) && h->running) {
        /* At a write, at most once a second: a record removed (jobcache
         * unlock-host) while another host has opened the file since loses
         * it now, not at the next renewal (up to a third of its lifetime
         * later). */
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        double now = (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
        pthread_mutex_lock(&h->mu);
        if (now - h->checked >= 1.0) {
            h->checked = now;
            char other[256], why[320];
            if (access(h->mine, F_OK) != 0 && errno == ENOENT && other_host(h, NULL, other, sizeof other) == 1) {
                snprintf(why, sizeof why, "host '%s' has opened it meanwhile", other);
                lose(h, why);
            }
        }
        pthread_mutex_unlock(&h->mu);
    }
    return atomic_load(&h->lost) ? h->lost_to : NULL;
}

void jc__hostlock_release(jc__hostlock *h)
{
    if (!h)
        return;
    char *mine = jc__strdup(h->mine), *dir = jc__strdup(h->dir);
    hostlock_free(h);
    if (mine)
        unlink(mine);
    if (dir)
        rmdir(dir); /* when this was the last record */
    free(mine);
    free(dir);
}

int jc__sqlite_unlock_host(const char *path, char **hosts)
{
    *hosts = NULL;
    char *file = NULL, *dir = NULL;
    if (resolve(path, &file, &dir)) {
        free(file);
        return jc__set_error(JC_ENOMEM, "out of memory");
    }
    free(dir);
    char *rdir = jc__strdup_printf("%s.hosts", file);
    free(file);
    if (!rdir)
        return jc__set_error(JC_ENOMEM, "out of memory");
    DIR *d = opendir(rdir);
    if (!d) {
        int rc = errno == ENOENT ? 0 : jc__set_error(JC_EIO, "cannot read '%s': %s", rdir, strerror(errno));
        free(rdir);
        return rc;
    }
    jc__buf names = {0};
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *p = jc__strdup_printf("%s/%s", rdir, e->d_name);
        if (!p || (unlink(p) != 0 && errno != ENOENT))
            rc = jc__set_error(p ? JC_EIO : JC_ENOMEM, "cannot remove '%s': %s", p ? p : rdir,
                               p ? strerror(errno) : "out of memory");
        free(p);
        /* Each host once: "a, b". */
        const char *tilde = strchr(e->d_name, '~');
        char one[300];
        snprintf(one, sizeof one, "%.*s", tilde ? (int)(tilde - e->d_name) : (int)strlen(e->d_name), e->d_name);
        bool dup = false;
        for (const char *at = names.data; at && !dup && (at = strstr(at, one)) != NULL; at++)
            dup = (at == names.data || at[-1] == ' ') && (at[strlen(one)] == ',' || at[strlen(one)] == '\0');
        if (!rc && !dup) {
            if (names.len)
                jc__buf_write(&names, ", ", 2);
            jc__buf_write(&names, one, strlen(one));
            jc__buf_write(&names, "", 1);
            names.len--; /* kept NUL-terminated */
        }
    }
    closedir(d);
    rmdir(rdir);
    free(rdir);
    if (!rc && names.len && !(*hosts = jc__strdup(names.oom ? "(several)" : names.data)))
        rc = jc__set_error(JC_ENOMEM, "out of memory");
    jc__buf_free(&names);
    return rc;
}
