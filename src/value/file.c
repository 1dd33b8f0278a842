/*
 * file: a file or directory as an argument, keyed by its content
 * (jc_file; docs/format.md, "Key inputs").
 *
 * A file's digest is XXH3-128 of its bytes. A directory's is XXH3-128 of
 * the msgpack array of its entries sorted by name (byte order), each entry
 * [name, type, executable, digest]: type 1 file (digest of its bytes), 2
 * directory (its digest, recursively), 3 symbolic link (digest of its
 * target text; not followed), 4 anything else (no content: 16 zero
 * bytes); executable is the owner's execute bit of a file (false for the
 * others). "." and ".." are not entries. Nesting deeper than 64 levels is
 * refused.
 *
 * Digests of files are remembered in this process with the file's device,
 * inode, size, modification and change times, as git's index remembers them, so that
 * an unchanged file is not read again. Git's rule for racy timestamps
 * applies: a file whose modification time is within RACY_NS of when it was
 * hashed may have been changed again within the same timestamp tick, and is
 * hashed again next time. The table is bounded (FILE_MEMO entries, then the
 * oldest half goes).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>
#include <xxhash.h>

#include "value_int.h"

enum { FILE_MEMO = 4096, MAX_DIR_DEPTH = 64, KIND_FILE = 1, KIND_DIR = 2, FILE_KEY_VERSION = 1 };
/* Modification times this close to the moment of hashing are racy: the
 * coarsest common file system timestamp (FAT's 2 s) could hide a second
 * change within the same tick. */
static const int64_t RACY_NS = INT64_C(2000000000);

typedef struct memo {
    char *path;
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns, ctime_ns, hashed_ns;
    unsigned char digest[16];
} memo;

static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;
static memo *memos;
static size_t nmemos, capmemos;
static unsigned long reads;

unsigned long jc__file_reads(void)
{
    pthread_mutex_lock(&memo_lock);
    unsigned long n = reads;
    pthread_mutex_unlock(&memo_lock);
    return n;
}

static int64_t ns_of(struct timespec t)
{
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return ns_of(t);
}

static int io_error(const char *path, const char *what, int err)
{
    return jc__set_error(JC_EIO, "jc_file: cannot %s '%s': %s", what, path, strerror(err));
}

/* The digest of the bytes of the open file fd into out. */
static int hash_fd(int fd, const char *path, unsigned char out[16])
{
    XXH3_state_t *st = XXH3_createState();
    char *buf = malloc(1 << 16);
    if (!st || !buf) {
        XXH3_freeState(st);
        free(buf);
        return jc__set_error(JC_ENOMEM, "jc_file: out of memory hashing '%s'", path);
    }
    XXH3_128bits_reset(st);
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, 1 << 16);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = io_error(path, "read", errno);
            break;
        }
        if (n == 0)
            break;
        XXH3_128bits_update(st, buf, (size_t)n);
    }
    if (!rc) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
        memcpy(out, c.digest, 16);
    }
    XXH3_freeState(st);
    free(buf);
    return rc;
}

/* The remembered digest of path when sb says it is unchanged and it was
 * not racy when hashed. */
static bool memo_get(const char *path, const struct stat *sb, unsigned char out[16])
{
    bool found = false;
    pthread_mutex_lock(&memo_lock);
    for (size_t i = 0; i < nmemos && !found; i++) {
        const memo *m = &memos[i];
        /* ctime too: content rewritten with its size and mtime put back
         * (cp -p, tools with fixed times) still changes the inode's ctime. */
        if (strcmp(m->path, path) == 0 && m->dev == sb->st_dev && m->ino == sb->st_ino &&
            m->size == sb->st_size && m->mtime_ns == ns_of(sb->st_mtim) && m->ctime_ns == ns_of(sb->st_ctim) &&
            m->hashed_ns - m->mtime_ns > RACY_NS) {
            memcpy(out, m->digest, 16);
            found = true;
        }
    }
    pthread_mutex_unlock(&memo_lock);
    return found;
}

static void memo_put(const char *path, const struct stat *sb, int64_t hashed_ns, const unsigned char d[16])
{
    pthread_mutex_lock(&memo_lock);
    size_t i = 0;
    while (i < nmemos && strcmp(memos[i].path, path) != 0)
        i++;
    if (i == nmemos && nmemos >= FILE_MEMO) { /* the oldest half goes */
        for (size_t k = 0; k < nmemos / 2; k++)
            free(memos[k].path);
        memmove(memos, memos + nmemos / 2, (nmemos - nmemos / 2) * sizeof *memos);
        nmemos -= nmemos / 2;
        i = nmemos;
    }
    char *copy = i == nmemos ? jc__strdup(path) : NULL;
    if (i < nmemos || (copy && !JC__GROW(memos, capmemos, nmemos + 1))) {
        if (i == nmemos)
            memos[nmemos++].path = copy;
        memo *m = &memos[i];
        m->dev = sb->st_dev;
        m->ino = sb->st_ino;
        m->size = sb->st_size;
        m->mtime_ns = ns_of(sb->st_mtim);
        m->ctime_ns = ns_of(sb->st_ctim);
        m->hashed_ns = hashed_ns;
        memcpy(m->digest, d, 16);
    } else {
        free(copy); /* out of memory: not remembered, read again next time */
    }
    pthread_mutex_unlock(&memo_lock);
}

/* The digest of the regular file path (sb its lstat), remembered. */
static int file_digest(const char *path, const struct stat *sb, unsigned char out[16])
{
    if (memo_get(path, sb, out))
        return 0;
    int64_t hashed = now_ns(); /* before reading: a change during the read is racy */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_error(path, "open", errno);
    struct stat now;
    int rc = fstat(fd, &now) ? io_error(path, "stat", errno) : hash_fd(fd, path, out);
    close(fd);
    if (rc)
        return rc;
    pthread_mutex_lock(&memo_lock);
    reads++;
    pthread_mutex_unlock(&memo_lock);
    memo_put(path, &now, hashed, out);
    return 0;
}

static int digest_of(const char *path, const struct stat *sb, int depth, unsigned char out[16]);

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int xxh_write(void *ctx, const char *p, size_t n)
{
    return XXH3_128bits_update(ctx, p, n) == XXH_OK ? 0 : -1;
}

/* The names in directory path, sorted; *n of them (malloc'd array). */
static int dir_names(const char *path, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(path);
    if (!d)
        return io_error(path, "open the directory", errno);
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    errno = 0;
    while (!rc && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *name = jc__strdup(e->d_name);
        if (!name || JC__GROW(*names, cap, *n + 1)) {
            free(name);
            rc = jc__set_error(JC_ENOMEM, "jc_file: out of memory listing '%s'", path);
            break;
        }
        (*names)[(*n)++] = name;
    }
    if (!rc && errno)
        rc = io_error(path, "list the directory", errno);
    closedir(d);
    if (!rc)
        qsort(*names, *n, sizeof **names, cmp_name);
    return rc;
}

static int dir_digest(const char *path, int depth, unsigned char out[16])
{
    if (depth >= MAX_DIR_DEPTH)
        return jc__set_error(JC_EINVAL, "jc_file: '%s' is nested more than %d directories deep", path,
                             MAX_DIR_DEPTH);
    char **names;
    size_t n;
    int rc = dir_names(path, &names, &n);
    XXH3_state_t *st = rc ? NULL : XXH3_createState();
    if (!rc && !st)
        rc = jc__set_error(JC_ENOMEM, "jc_file: out of memory hashing '%s'", path);
    msgpack_packer pk;
    if (st) {
        XXH3_128bits_reset(st);
        msgpack_packer_init(&pk, st, xxh_write);
        msgpack_pack_array(&pk, n);
    }
    size_t plen = strlen(path);
    for (size_t i = 0; i < n && !rc; i++) {
        size_t nl = strlen(names[i]);
        char *child = malloc(plen + nl + 2);
        if (!child) {
            rc = jc__set_error(JC_ENOMEM, "jc_file: out of memory hashing '%s'", path);
            break;
        }
        snprintf(child, plen + nl + 2, "%s/%s", path, names[i]);
        struct stat sb;
        unsigned char d[16] = {0};
        int type = 4;
        bool exec = false;
        if (lstat(child, &sb) != 0) {
            rc = io_error(child, "stat", errno);
        } else if (S_ISLNK(sb.st_mode)) {
            char target[4096];
            ssize_t tl = readlink(child, target, sizeof target);
            if (tl < 0)
                rc = io_error(child, "read the link", errno);
            else {
                XXH128_canonical_t c;
                XXH128_canonicalFromHash(&c, XXH3_128bits(target, (size_t)tl));
                memcpy(d, c.digest, 16);
            }
            type = 3;
        } else if (S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode)) {
            type = S_ISREG(sb.st_mode) ? 1 : 2;
            exec = S_ISREG(sb.st_mode) && (sb.st_mode & S_IXUSR);
            rc = digest_of(child, &sb, depth + 1, d);
        }
        free(child);
        if (!rc) {
            msgpack_pack_array(&pk, 4);
            msgpack_pack_str(&pk, nl);
            msgpack_pack_str_body(&pk, names[i], nl);
            msgpack_pack_int(&pk, type);
            if (exec)
                msgpack_pack_true(&pk);
            else
                msgpack_pack_false(&pk);
            msgpack_pack_bin(&pk, 16);
            msgpack_pack_bin_body(&pk, d, 16);
        }
    }
    if (!rc) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
        memcpy(out, c.digest, 16);
    }
    XXH3_freeState(st);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int digest_of(const char *path, const struct stat *sb, int depth, unsigned char out[16])
{
    return S_ISDIR(sb->st_mode) ? dir_digest(path, depth, out) : file_digest(path, sb, out);
}

jc_value *jc_file(const char *path)
{
    if (!path || !*path) {
        jc__set_error(JC_EINVAL, "jc_file: %s path", path ? "empty" : "NULL");
        return NULL;
    }
    jc_value *check = jc_str(path); /* the path is text the function reads: UTF-8 */
    if (!check)
        return NULL;
    jc_value_free(check);
    struct stat sb;
    if (stat(path, &sb) != 0) { /* the argument itself may be a link: followed */
        io_error(path, "stat", errno);
        return NULL;
    }
    if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode)) {
        jc__set_error(JC_EINVAL, "jc_file: '%s' is neither a regular file nor a directory", path);
        return NULL;
    }
    unsigned char payload[JC__FILE_DIGEST_LEN] = {FILE_KEY_VERSION, S_ISDIR(sb.st_mode) ? KIND_DIR : KIND_FILE};
    if (S_ISDIR(sb.st_mode) ? dir_digest(path, 0, payload + 2) : file_digest(path, &sb, payload + 2))
        return NULL;
    return jc__file_value(path, payload);
}
