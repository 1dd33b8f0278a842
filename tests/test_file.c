/*
 * Tests of the cache file in the real world (issue "The cache file in the
 * real world"): copies have every committed result, a closed cache is
 * complete on its own, backups are consistent while the cache is in use.
 * Each test failed on jobcache 0.1.0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jobcache.h>

#define JC_TEST_WANT_SQUARE
#include "testutil.h"

#define PATH_CAP 4096

static void run_squares(jc_cache *c, int from, int to)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    for (int x = from; x < to; x++)
        jc_delayed(b, square, jc_int(x));
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_OK);
    jc_results_free(res);
    jc_batch_free(b);
}

/* Copies the database file alone, as `cp cache.db elsewhere/` does. */
static void copy_file_alone(const char *from, const char *to)
{
    size_t len = 0;
    void *bytes = jc_test_read_file(from, &len);
    assert_non_null(bytes);
    jc_test_remove_db(to);
    FILE *f = fopen(to, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    fclose(f);
    free(bytes);
}

static int64_t entries_in(const char *path)
{
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    jc_stats *s = jc_cache_stats(c);
    assert_non_null(s);
    int64_t n = s->entries;
    jc_stats_free(s);
    jc_cache_close(c);
    return n;
}

/* A cache closed by its program while another still holds the file: the
 * file alone has every result (0.1.0 left them in the -wal file). */
static void a_closed_cache_is_complete_on_its_own(void **state)
{
    (void)state;
    char path[PATH_CAP], copy[PATH_CAP];
    jc_test_path(path, sizeof path, "closed.db");
    jc_test_path(copy, sizeof copy, "closed-copy.db");
    jc_cache *reader = open_cache(path, 0); /* another program holding the file */
    jc_cache *c = open_cache(path, 0);
    run_squares(c, 0, 2000);
    jc_cache_close(c);
    copy_file_alone(path, copy);
    assert_int_equal(entries_in(copy), 2000);
    jc_cache_close(reader);
}

/* A copy of a file made right after it was created (say, after a crash)
 * is still a cache: the schema is in the database file, not only the WAL. */
static void a_new_cache_file_holds_its_schema_at_once(void **state)
{
    (void)state;
    char path[PATH_CAP], copy[PATH_CAP];
    jc_test_path(path, sizeof path, "new.db");
    jc_test_path(copy, sizeof copy, "new-copy.db");
    jc_cache *c = open_cache(path, 0);
    copy_file_alone(path, copy);
    jc_cache *cc = jc_cache_open(copy, &(jc_cache_options){.flags = JC_CACHE_READONLY});
    assert_non_null(cc);
    jc_cache_close(cc);
    jc_cache_close(c);
}

/* jc_cache_backup while the cache is open and written: the copy has every
 * committed result, is sound, and stands alone. */
static void a_backup_of_a_cache_in_use_is_complete(void **state)
{
    (void)state;
    char path[PATH_CAP], dest[PATH_CAP], wal[PATH_CAP + 8];
    jc_test_path(path, sizeof path, "inuse.db");
    jc_test_path(dest, sizeof dest, "inuse-backup.db");
    jc_cache *c = open_cache(path, 0);
    run_squares(c, 0, 3000);
    jc_stats *s = jc_cache_stats(c);
    assert_true(s->wal_bytes > 0); /* committed results sit in the -wal file */
    jc_stats_free(s);

    /* From another handle, read-only, as `jobcache backup` does. */
    jc_cache *ro = open_cache(path, JC_CACHE_READONLY);
    assert_int_equal(jc_cache_backup(ro, dest), 0);
    jc_cache_close(ro);
    snprintf(wal, sizeof wal, "%s-wal", dest);
    assert_false(jc_test_exists(wal));
    assert_int_equal(jc_test_sql_int(dest, "SELECT count(*) FROM entries"), 3000);
    jc_cache *b = open_cache(dest, JC_CACHE_READONLY);
    jc_verify_result vr;
    assert_int_equal(jc_cache_verify(b, false, NULL, NULL, &vr), 0);
    assert_int_equal(vr.checked, 3000);
    assert_int_equal(vr.bad_entries, 0);
    jc_cache_close(b);

    /* An existing destination is refused and left as it is. */
    sql(dest, "PRAGMA user_version = 2");
    size_t before_len = 0, after_len = 0;
    void *before = jc_test_read_file(dest, &before_len);
    assert_int_equal(jc_cache_backup(c, dest), JC_EIO);
    assert_contains(jc_errmsg(), "already exists");
    void *after = jc_test_read_file(dest, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    free(before);
    free(after);
    /* A destination that cannot be written: nothing left behind. */
    assert_int_equal(jc_cache_backup(c, "/nonexistent-dir/copy.db"), JC_EIO);
    assert_contains(jc_errmsg(), "/nonexistent-dir/copy.db");
    jc_cache_close(c);
}


/* The permission bits of path, or -1 when it does not exist. */
static int mode_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int)(sb.st_mode & 07777) : -1;
}

/* A new cache file, and the -wal and -shm files beside it, get mode 0666
 * less the umask, as files of other Unix tools do (SQLite alone makes it
 * 0644 whatever the umask). */
static void a_new_cache_file_gets_the_mode_the_umask_allows(void **state)
{
    (void)state;
    static const struct {
        mode_t umask;
        int mode;
    } cases[] = {{002, 0664}, {022, 0644}, {077, 0600}};
    char path[PATH_CAP], side[PATH_CAP + 8];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        jc_test_path(path, sizeof path, "umask.jobcache");
        mode_t old = umask(cases[i].umask);
        jc_cache *c = open_cache(path, 0);
        run_squares(c, 0, 10);
        assert_int_equal(mode_of(path), cases[i].mode);
        snprintf(side, sizeof side, "%s-wal", path);
        assert_int_equal(mode_of(side), cases[i].mode);
        snprintf(side, sizeof side, "%s-shm", path);
        assert_int_equal(mode_of(side), cases[i].mode);
        jc_cache_close(c);
        umask(old);
        assert_int_equal(mode_of(path), cases[i].mode);
    }
}

/* Runs squares of 0..9 as user and group nobody (65534) with umask 002 in a
 * child process: its exit status is 0 when it could open and write the
 * cache, and 5 of the calls were hits. */
static int run_as_nobody(const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        umask(002);
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        jc_cache *c = jc_cache_open(path, NULL);
        if (!c) {
            fprintf(stderr, "as nobody: %s\n", jc_errmsg());
            _exit(4);
        }
        jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
        for (int x = 0; x < 10; x++)
            jc_delayed(b, square, jc_int(x));
        jc_results *res = jc_run(b);
        int ok = res && jc_results_status(res) == JC_OK && jc_results_summary(res).cached == 5;
        if (!ok)
            fprintf(stderr, "as nobody: %s\n", res ? jc_results_message(res) : jc_errmsg());
        jc_results_free(res);
        jc_batch_free(b);
        jc_cache_close(c);
        _exit(ok ? 0 : 5);
    }
    int status = 0;
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

/* The group sharing of the README: in a setgid directory of a group, with
 * umask 002, a cache one user made can be written by another member of the
 * group. Needs root (to be a second user); skipped otherwise. */
static void a_group_member_can_write_a_cache_in_a_setgid_directory(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "skipped: sharing a cache with another user needs root (to run as nobody)\n");
        skip();
    }
    char dir[] = "/tmp/jc-group-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chown(dir, 0, 65534), 0);
    assert_int_equal(chmod(dir, 02775), 0);
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/shared.jobcache", dir);

    mode_t old = umask(002);
    jc_cache *c = open_cache(path, 0);
    run_squares(c, 0, 5);
    jc_cache_close(c);
    umask(old);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0664);
    assert_int_equal(sb.st_gid, 65534); /* the directory's group */

    assert_int_equal(run_as_nobody(path), 0);
    c = open_cache(path, JC_CACHE_READONLY);
    jc_stats *s = jc_cache_stats(c);
    assert_int_equal(s->entries, 10);
    jc_stats_free(s);
    jc_cache_close(c);
    jc_test_remove_db(path);
    assert_int_equal(rmdir(dir), 0);
}

/* A cache opened by a relative path is the file of that moment's working
 * directory, whatever directory the program changes to later: its path,
 * its figures and its runs. */
static void a_relative_path_is_resolved_once_at_open(void **state)
{
    (void)state;
    char here[PATH_CAP], path[PATH_CAP], real[PATH_CAP];
    assert_non_null(getcwd(here, sizeof here));
    jc_test_path(path, sizeof path, "relative.jobcache");
    assert_int_equal(chdir(jc_test_dir()), 0);
    assert_non_null(realpath(".", real));
    strcat(real, "/relative.jobcache");
    jc_cache *c = open_cache("relative.jobcache", 0);
    run_squares(c, 0, 20);
    assert_int_equal(chdir("/"), 0);

    assert_string_equal(jc_cache_path(c), real);
    jc_stats *s = jc_cache_stats(c);
    assert_non_null(s);
    struct stat sb;
    assert_int_equal(stat(real, &sb), 0);
    assert_true(s->file_bytes >= (int64_t)sb.st_size);
    assert_true(s->file_bytes > 0);
    assert_int_equal(s->entries, 20);
    assert_string_equal(s->path, real);
    jc_stats_free(s);
    run_squares(c, 20, 30); /* still the same file */
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 30);
    assert_false(jc_test_exists("/relative.jobcache"));
    assert_int_equal(chdir(here), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_closed_cache_is_complete_on_its_own),
        cmocka_unit_test(a_new_cache_file_holds_its_schema_at_once),
        cmocka_unit_test(a_backup_of_a_cache_in_use_is_complete),
        cmocka_unit_test(a_new_cache_file_gets_the_mode_the_umask_allows),
        cmocka_unit_test(a_group_member_can_write_a_cache_in_a_setgid_directory),
        cmocka_unit_test(a_relative_path_is_resolved_once_at_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
