/*
 * libpq and the MPI library are loaded when they are first needed, not
 * linked: libpq when a PostgreSQL location is first opened
 * (src/store/pg/libpq.h), MPI when jc_mpi_init starts the backend under a
 * launcher (src/exec/mpi_dl.h). A program on cache files maps neither, and
 * a process where one cannot be loaded gets a clear error where it is
 * needed and goes on using files.
 *
 * This binary links the static library and neither library. Run without
 * arguments it checks the process's mappings; CTest runs it again as
 * `test_lazy_libs unloadable` with LD_LIBRARY_PATH on a directory whose
 * libpq.so.5 and MPI library are libraries without their functions
 * (fake_lib.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jobcache.h>

static bool unloadable; /* argv[1] == "unloadable": LD_LIBRARY_PATH names the fake */

/* Whether a file whose name contains name is mapped into this process. */
static bool mapped(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, name) != NULL;
    fclose(f);
    return found;
}

static const char *tmpdir(void)
{
    const char *d = getenv("JC_TEST_TMPDIR");
    if (!d)
        d = "/tmp";
    mkdir(d, 0700);
    return d;
}

static int square(jc_call *call)
{
    int64_t x = jc_arg_int(call, 0);
    return jc_return_int(call, x * x);
}
JC_FUNCTION(square, "v1");

/* A batch of square(0) ... square(n - 1) on a new cache file named name
 * in the test's directory: every result right, the last one checked. */
static void squares_on_a_new_file(const char *name, int n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", tmpdir(), name);
    unlink(path);
    jc_cache *c = jc_cache_open(path, NULL);
    assert_non_null(c);
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1});
    assert_non_null(b);
    for (int i = 0; i < n; i++)
        jc_delayed(b, square, jc_int(i));
    jc_results *r = jc_run(b);
    assert_non_null(r);
    assert_int_equal(jc_result_int(r, (size_t)n - 1), (int64_t)(n - 1) * (n - 1));
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
}

/* A run on a cache file leaves libpq unmapped; opening a server location
 * maps it (here one with no server: loading comes before connecting). */
static void files_never_load_libpq(void **state)
{
    (void)state;
    if (unloadable)
        skip();
    assert_false(mapped("/libpq.so.5"));
#ifdef JC_MPI_SONAME
    assert_false(mapped("/" JC_MPI_SONAME));
    assert_int_equal(jc_mpi_init(NULL, NULL), 0); /* not under a launcher: no MPI */
    assert_false(mapped("/" JC_MPI_SONAME));
#endif
    squares_on_a_new_file("libpq-files.jobcache", 10);
    assert_false(mapped("/libpq.so.5"));
#ifdef JC_MPI_SONAME
    assert_false(mapped("/" JC_MPI_SONAME));
#endif

    assert_null(jc_cache_open("postgresql:///nodb?host=/nonexistent-jobcache-test&connect_timeout=2", NULL));
    assert_int_equal(jc_errcode(), JC_EIO);
    assert_true(mapped("/libpq.so.5"));
}

/* A libpq.so.5 without libpq's functions: a server location fails with
 * JC_EIO naming the missing function and the package, without the
 * location's password; files work as before. */
static void an_unloadable_libpq_is_a_clear_error(void **state)
{
    (void)state;
    if (!unloadable)
        skip();
    for (int attempt = 0; attempt < 2; attempt++) { /* the second answers from the first's result */
        jc_cache *c = jc_cache_open("postgresql://u:s3cret@%2Ftmp/db", NULL);
        assert_null(c);
        assert_int_equal(jc_errcode(), JC_EIO);
        const char *msg = jc_errmsg();
        if (!strstr(msg, "libpq.so.5 has no PQcancel: not libpq") || !strstr(msg, "libpq5") || strstr(msg, "s3cret"))
            fail_msg("unexpected message: %s", msg);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/libpq-unloadable.jobcache", tmpdir());
    unlink(path);
    jc_cache *c = jc_cache_open(path, NULL);
    assert_non_null(c);
    jc_cache_close(c);
}

/* Started as if by mpirun (OMPI_COMM_WORLD_SIZE, what jc_mpi_init reads)
 * with an MPI library that is not one: jc_mpi_init fails with JC_EIO
 * naming it, and a batch then runs in this process as without MPI. */
static void an_unloadable_mpi_library_is_a_clear_error(void **state)
{
    (void)state;
#ifndef JC_MPI_SONAME
    skip();
#else
    if (!unloadable)
        skip();
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    int rc = jc_mpi_init(NULL, NULL);
    unsetenv("OMPI_COMM_WORLD_SIZE");
    assert_int_equal(rc, JC_EIO);
    if (!strstr(jc_errmsg(), JC_MPI_SONAME " has no MPI_Abort"))
        fail_msg("unexpected message: %s", jc_errmsg());
    squares_on_a_new_file("mpi-unloadable.jobcache", 13);
#endif
}

int main(int argc, char **argv)
{
    unloadable = argc > 1 && strcmp(argv[1], "unloadable") == 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(files_never_load_libpq),
        cmocka_unit_test(an_unloadable_libpq_is_a_clear_error),
        cmocka_unit_test(an_unloadable_mpi_library_is_a_clear_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
