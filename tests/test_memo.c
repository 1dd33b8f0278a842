/*
 * Tests of jc_memo: one memoized call outside a batch, computed in the
 * caller's process on a miss and answered from the cache on a hit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jobcache.h>

/* add/v1 and fails/v1, with their call counters, come from testutil.h. */
#define JC_TEST_WANT_ADD_FAILS
#include "cache/cache.h"
#include "testutil.h"

#define PATH_CAP 4096

static int nothing(jc_call *call)
{
    (void)call;
    return 0;
}
JC_FUNCTION(nothing, "v1");

/* Returns a nested value, to check that what comes back from the file is
 * what went in. */
static int describe(jc_call *call)
{
    const char *name = jc_arg_str(call, 0);
    double w = jc_kwarg_double(call, "weight");
    const double xs[] = {w, w * 2, w * 3};
    return jc_return(call, jc_map(jc_kw("name", jc_str(name)), jc_kw("xs", jc_doubles(xs, 3)),
                                  jc_kw("tags", jc_list(jc_int(1), jc_bool(true), jc_null()))));
}
JC_FUNCTION(describe, "v1");

static int unregistered(jc_call *call)
{
    return jc_return_int(call, 0);
}

static int64_t int_of(const jc_value *v)
{
    int64_t i = -999;
    assert_int_equal(jc_value_get_int(v, &i), 0);
    return i;
}

static int64_t count_entries(const char *path)
{
    return jc_test_sql_int(path, "SELECT count(*) FROM entries");
}

static void memo_a_miss_is_computed_in_process_and_stored(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "miss.db"), 0);
    add_calls = 0;
    jc_value *v = jc_memo(c, add, jc_int(2), jc_int(3));
    assert_non_null(v);
    assert_int_equal(add_calls, 1); /* in this process */
    assert_int_equal(int_of(v), 5);
    jc_value_free(v);
    /* Committed at once: another connection sees it while the cache is open. */
    assert_int_equal(count_entries(path), 1);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE function = 'add' "
                                           "AND version = 'v1' AND hits = 0"),
                     1);
    jc_cache_close(c);
}

static void memo_a_second_call_is_a_hit_also_after_reopening(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "hit.db");
    jc_cache *c = open_cache(path, 0);
    add_calls = 0;
    jc_value *first = jc_memo(c, add, jc_int(2), jc_int(3));
    jc_value *second = jc_memo(c, add, jc_int(2), jc_int(3));
    assert_int_equal(add_calls, 1);
    assert_non_null(second);
    assert_true(jc_value_equal(first, second));
    jc_value_free(second);
    jc_cache_close(c);

    c = open_cache(path, 0);
    jc_value *third = jc_memo(c, add, jc_int(2), jc_int(3));
    assert_int_equal(add_calls, 1);
    assert_true(jc_value_equal(first, third));
    /* Other arguments are another call. */
    jc_value *other = jc_memo(c, add, jc_int(3), jc_int(2));
    assert_int_equal(add_calls, 2);
    assert_int_equal(int_of(other), 5);
    jc_value_free(first);
    jc_value_free(third);
    jc_value_free(other);
    jc_cache_close(c);
    assert_int_equal(count_entries(path), 2);
}

static void memo_a_nested_result_comes_back_from_the_file_unchanged(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "nested.db");
    jc_cache *c = open_cache(path, 0);
    jc_value *computed = jc_memo(c, describe, jc_str("ab\"c"), jc_kw("weight", jc_double(0.1)));
    assert_non_null(computed);
    jc_cache_close(c);
    c = open_cache(path, 0);
    jc_value *stored = jc_memo(c, describe, jc_str("ab\"c"), jc_kw("weight", jc_double(0.1)));
    assert_non_null(stored);
    assert_true(jc_value_equal(computed, stored));
    const double *xs = NULL;
    size_t n = 0;
    assert_int_equal(jc_value_get_doubles(jc_value_get(stored, "xs"), &xs, &n), 0);
    assert_int_equal(n, 3);
    assert_true(xs[2] == 0.1 * 3);
    jc_value_free(computed);
    jc_value_free(stored);
    jc_cache_close(c);
}

static void memo_a_failure_returns_null_naming_the_call_and_caches_nothing(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "failure.db");
    jc_cache *c = open_cache(path, 0);
    fails_calls = 0;
    for (int round = 1; round <= 2; round++) {
        int line = __LINE__ + 1;
        jc_value *v = jc_memo(c, fails, jc_int(3), jc_kw("mode", jc_str("fast")));
        assert_null(v);
        assert_int_equal(fails_calls, round); /* never a hit */
        assert_int_equal(jc_errcode(), JC_EFAILED);
        char where[64];
        snprintf(where, sizeof where, "test_memo.c:%d", line);
        assert_contains(jc_errmsg(), where);
        assert_contains(jc_errmsg(), "fails(3, mode=\"fast\"): three is not allowed");
    }
    assert_int_equal(count_entries(path), 0);
    jc_value *ok = jc_memo(c, fails, jc_int(4));
    assert_int_equal(int_of(ok), 40);
    jc_value_free(ok);
    jc_cache_close(c);
    assert_int_equal(count_entries(path), 1);
}

static void memo_an_unregistered_function_gives_enofunc_with_file_and_line(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    int line = __LINE__ + 1;
    jc_value *v = jc_memo(c, unregistered, jc_int(1), jc_str("freed")); /* arguments freed */
    assert_null(v);
    assert_int_equal(jc_errcode(), JC_ENOFUNC);
    char where[64];
    snprintf(where, sizeof where, "test_memo.c:%d", line);
    assert_contains(jc_errmsg(), where);
    assert_contains(jc_errmsg(), "jc_memo");
    jc_cache_close(c);
}

static void memo_bad_arguments_and_a_null_cache_are_refused(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    int line = __LINE__ + 1;
    assert_null(jc_memo(c, add, jc_int(1), jc_str(NULL)));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    char where[64];
    snprintf(where, sizeof where, "test_memo.c:%d", line);
    assert_contains(jc_errmsg(), where);
    assert_contains(jc_errmsg(), "argument 1 is NULL");

    assert_null(jc_memo(c, add, jc_kw("a", jc_int(1)), jc_kw("a", jc_int(2))));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_contains(jc_errmsg(), "given twice");

    assert_null(jc_memo(NULL, add, jc_int(1), jc_int(2))); /* arguments freed */
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_contains(jc_errmsg(), "cache is NULL");
    jc_cache_close(c);
}

static void memo_a_disabled_cache_computes_every_time(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    add_calls = 0;
    for (int i = 0; i < 3; i++) {
        jc_value *v = jc_memo(c, add, jc_int(20), jc_int(22));
        assert_non_null(v);
        assert_int_equal(int_of(v), 42);
        jc_value_free(v);
    }
    assert_int_equal(add_calls, 3);
    jc_cache_close(c);
}

/* Issue 9 item 5: returning 0 without a result is an error naming the
 * function and the call site, and nothing is cached. */
static void memo_a_function_returning_0_without_a_result_fails_and_caches_nothing(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "nothing.db"), 0);
    for (int i = 0; i < 2; i++) {
        int line = __LINE__ + 1;
        jc_value *v = jc_memo(c, nothing, jc_int(7));
        assert_null(v);
        assert_int_equal(jc_errcode(), JC_EFAILED);
        char where[64];
        snprintf(where, sizeof where, "test_memo.c:%d", line);
        assert_contains(jc_errmsg(), where);
        assert_contains(jc_errmsg(), "nothing(7): returned 0 without setting a result");
    }
    jc_cache_close(c);
    assert_int_equal(count_entries(path), 0);
}

static void memo_hit_counts_reach_the_file_after_close(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "hits.db");
    jc_cache *c = open_cache(path, 0);
    jc_value_free(jc_memo(c, add, jc_int(1), jc_int(1)));
    jc_value_free(jc_memo(c, add, jc_int(2), jc_int(2)));
    for (int i = 0; i < 3; i++)
        jc_value_free(jc_memo(c, add, jc_int(1), jc_int(1)));
    jc_value_free(jc_memo(c, add, jc_int(2), jc_int(2)));
    jc_cache_close(c);
    assert_int_equal(jc_test_hits_sql(path, "SELECT sum(hits) FROM entries"), 4);
    assert_int_equal(jc_test_hits_sql(path, "SELECT max(hits) FROM entries"), 3);
    assert_int_equal(jc_test_hits_sql(path, "SELECT count(*) FROM entries WHERE last_used > created"), 2);
}

static void memo_many_hits_are_written_now_and_then_and_all_counted_at_close(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "many-hits.db");
    jc_cache *c = open_cache(path, 0);
    jc_value_free(jc_memo(c, add, jc_int(1), jc_int(1)));
    for (int i = 0; i < 5000; i++)
        jc_value_free(jc_memo(c, add, jc_int(1), jc_int(1)));
    /* A program that only hits still writes its counts while it runs. */
    int64_t while_open = jc_test_hits_sql(path, "SELECT hits FROM entries");
    assert_true(while_open >= 4096 && while_open <= 5000);
    jc_cache_close(c);
    assert_int_equal(jc_test_hits_sql(path, "SELECT hits FROM entries"), 5000);

    /* The same for hits inside a run's lookup transaction. */
    c = open_cache(path, 0);
    for (int round = 0; round < 2; round++) {
        jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
        for (int i = 0; i < 5000; i++)
            jc_delayed(b, add, jc_int(i), jc_int(-1));
        jc_results *res = jc_run(b);
        assert_non_null(res);
        assert_int_equal(jc_results_summary(res).cached, round == 0 ? 0 : 5000);
        jc_results_free(res);
        jc_batch_free(b);
    }
    jc_cache_close(c);
    assert_int_equal(jc_test_hits_sql(path, "SELECT sum(hits) FROM entries WHERE hits < 5000"), 5000);
    assert_int_equal(jc_test_hits_sql(path, "SELECT count(*) FROM entries WHERE hits = 1"), 5000);
}

static void memo_readonly_answers_hits_and_computes_misses_without_storing(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "readonly.db");
    jc_cache *c = open_cache(path, 0);
    jc_value_free(jc_memo(c, add, jc_int(1), jc_int(1)));
    jc_cache_close(c);

    c = open_cache(path, JC_CACHE_READONLY);
    add_calls = 0;
    jc_value *hit = jc_memo(c, add, jc_int(1), jc_int(1));
    jc_value *miss = jc_memo(c, add, jc_int(5), jc_int(5));
    assert_int_equal(add_calls, 1);
    assert_int_equal(int_of(hit), 2);
    assert_int_equal(int_of(miss), 10);
    jc_value_free(hit);
    jc_value_free(miss);
    jc_cache_close(c);
    assert_int_equal(count_entries(path), 1);
    assert_int_equal(jc_test_hits_sql(path, "SELECT sum(hits) FROM entries"), 0);
}

static void memo_and_batches_share_entries(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "shared.db"), 0);
    jc_value_free(jc_memo(c, add, jc_int(7), jc_int(8)));
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    jc_delayed(b, add, jc_int(7), jc_int(8));
    jc_delayed(b, add, jc_int(8), jc_int(9));
    add_calls = 0;
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(add_calls, 1);
    assert_true(jc_result_cached(res, 0));
    assert_int_equal(jc_result_int(res, 0), 15);
    jc_results_free(res);
    jc_batch_free(b);
    jc_value *v = jc_memo(c, add, jc_int(8), jc_int(9));
    assert_int_equal(add_calls, 1);
    assert_int_equal(int_of(v), 17);
    jc_value_free(v);
    jc_cache_close(c);
}

static void memo_recompute_computes_again_and_overwrites(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "recompute.db");
    jc_cache *c = open_cache(path, 0);
    jc_value_free(jc_memo(c, add, jc_int(1), jc_int(2)));
    jc_value_free(jc_memo(c, add, jc_int(1), jc_int(2))); /* a hit */
    jc_cache_close(c);
    assert_int_equal(jc_test_hits_sql(path, "SELECT hits FROM entries"), 1);

    c = open_cache(path, JC_CACHE_RECOMPUTE);
    add_calls = 0;
    jc_value *v = jc_memo(c, add, jc_int(1), jc_int(2));
    assert_int_equal(add_calls, 1);
    assert_int_equal(int_of(v), 3);
    jc_value_free(v);
    jc_cache_close(c);
    assert_int_equal(count_entries(path), 1);
    /* The entry's result is new; its hit count stays: storing a key never
     * resets it (issue 23). */
    assert_int_equal(jc_test_hits_sql(path, "SELECT hits FROM entries"), 1);
}


/* The database file and its -wal file, as `du` counts them. */
static int64_t disk_bytes(const char *path)
{
    char wal[PATH_CAP + 8];
    struct stat sb;
    int64_t n = stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
    snprintf(wal, sizeof wal, "%s-wal", path);
    return n + (stat(wal, &sb) == 0 ? (int64_t)sb.st_size : 0);
}

/* "x" repeated n times: a result of about n bytes. */
static int padded(jc_call *call)
{
    char buf[256];
    int64_t n = jc_arg_int(call, 1);
    memset(buf, 'x', sizeof buf);
    buf[n < 255 ? n : 255] = '\0';
    return jc_return_str(call, buf);
}
JC_FUNCTION(padded, "v1");

/* jc_memo keeps max_size as a run does: after every stored result, the
 * database and -wal files take at most max_size (within a few pages); and a
 * cache grown larger without a limit is brought back when it is opened with
 * one. */
static void memo_keeps_max_size(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP];
    const int64_t limit = 80 * 1024, margin = 4 * 4096; /* empty: 48 KiB */
    jc_test_path(path, sizeof path, "memo-max.db");
    jc_cache *c = jc_cache_open(path, &(jc_cache_options){.max_size = limit});
    assert_non_null(c);
    int64_t worst = 0;
    for (int i = 0; i < 1000; i++) {
        jc_value *v = jc_memo(c, padded, jc_int(i), jc_int(100));
        assert_non_null(v);
        jc_value_free(v);
        int64_t now = disk_bytes(path);
        worst = now > worst ? now : worst;
    }
    assert_true(worst <= limit + margin);
    jc_stats *s = jc_cache_stats(c);
    assert_true(s->entries > 50 && s->entries < 1000);
    jc_stats_free(s);
    /* The most recent ones are still hits. */
    jc_value *v = jc_memo(c, padded, jc_int(999), jc_int(100));
    jc_value_free(v);
    assert_int_equal(count_entries(path) > 0, 1);
    jc_cache_close(c);
    assert_true(disk_bytes(path) <= limit + margin);

    /* 1000 more without a limit, then reopened with it: the open evicts
     * at once, but at most half of the entries (issue 23), and so do the
     * jc_memo calls after it; pruning, the user's choice, does the rest. */
    c = open_cache(path, 0);
    for (int i = 1000; i < 2000; i++)
        jc_value_free(jc_memo(c, padded, jc_int(i), jc_int(100)));
    jc_cache_close(c);
    assert_true(disk_bytes(path) > limit + margin);
    int64_t before = count_entries(path);
    c = jc_cache_open(path, &(jc_cache_options){.max_size = limit});
    assert_non_null(c);
    assert_int_equal(count_entries(path), before - before / 2);
    for (int i = 2000; i < 2010; i++)
        jc_value_free(jc_memo(c, padded, jc_int(i), jc_int(100)));
    int64_t after = count_entries(path);
    assert_true(after < before - before / 2 && after >= (before - before / 2 + 10) / 2);
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.max_size = limit}, false, NULL, NULL), 0);
    assert_true(disk_bytes(path) <= limit + margin);
    jc_cache_close(c);
    assert_true(disk_bytes(path) <= limit + margin);
}

static void stats_hits(jc_cache *c, int64_t *hits, double *saved)
{
    jc_stats *s = jc_cache_stats(c);
    assert_non_null(s);
    *hits = s->hits;
    *saved = s->saved_seconds;
    jc_stats_free(s);
}

/* Hits written in a transaction that then rolls back are written again,
 * not lost (issue 23: under 8 processes, hit counts were short by up to
 * 21% of the hits the runs recorded: a busy or failed store rolled back the
 * transaction that carried them); and hits written in one that commits are
 * not written twice. jc_cache_stats counts each once all along, with the
 * compute seconds it saved. */
static void memo_hits_written_in_a_rolled_back_transaction_are_kept(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "memo-rollback.db");
    jc_cache *c = open_cache(path, 0);
    jc_value_free(jc_memo(c, describe, jc_str("a"), jc_kw("weight", jc_double(1))));
    jc_value_free(jc_memo(c, describe, jc_str("a"), jc_kw("weight", jc_double(1)))); /* a hit, queued */
    assert_int_equal(jc__cache_write_begin(c), 0);    /* the hit written in it... */
    assert_int_equal(jc__cache_write_end(c, 0, false), 0); /* ...which rolls back */
    assert_int_equal(jc_test_hits_sql(path, "SELECT hits FROM entries"), 0);
    int64_t hits = 0;
    double saved = 0, one_saved = 0;
    stats_hits(c, &hits, &one_saved); /* still to write: counted once, with its seconds saved */
    assert_int_equal(hits, 1);
    assert_true(one_saved > 0);
    jc_cache_close(c);
    assert_int_equal(jc_test_hits_sql(path, "SELECT hits FROM entries"), 1);

    c = open_cache(path, 0);
    jc_value_free(jc_memo(c, describe, jc_str("a"), jc_kw("weight", jc_double(1))));
    assert_int_equal(jc__cache_write_begin(c), 0);
    assert_int_equal(jc__cache_write_end(c, 0, true), 0); /* committed */
    assert_int_equal(jc_test_hits_sql(path, "SELECT hits FROM entries"), 2);
    stats_hits(c, &hits, &saved); /* written: counted once, not also as pending */
    assert_int_equal(hits, 2);
    assert_true(saved == 2 * one_saved);
    jc_value_free(jc_memo(c, describe, jc_str("b"), jc_kw("weight", jc_double(2)))); /* a write */
    jc_cache_close(c);
    assert_int_equal(jc_test_hits_sql(path, jc_test_pg() ? "SELECT hits FROM entries WHERE id = 1"
                                                          : "SELECT hits FROM entries WHERE rowid = 1"), 2);
}

/* ---- memo sessions ---- */

static int64_t memo_int(jc_cache *c, int64_t a)
{
    jc_value *v = jc_memo(c, add, jc_int(a), jc_int(1));
    assert_non_null(v);
    int64_t i = int_of(v);
    jc_value_free(v);
    return i;
}

/* Repeated calls in a session are answered from memory: an entry removed
 * by another handle meanwhile is still answered, as read; a key not read
 * yet is computed; after the session the removal is seen. Every hit is
 * counted at the end. */
static void memo_session_answers_what_it_read_from_memory(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, sizeof path, "session.db", 0);
    add_calls = 0;
    assert_int_equal(jc_memo_session_begin(c, NULL), 0);
    for (int round = 0; round < 3; round++)
        for (int64_t a = 0; a < 100; a++)
            assert_int_equal(memo_int(c, a), a + 1);
    assert_int_equal(add_calls, 100); /* the first round computed, the others came from memory */
    /* Another handle removes every entry. */
    jc_cache *other = open_cache(path, 0);
    int64_t removed = 0;
    assert_int_equal(jc_cache_remove_matching(other, &(jc_filter){.function = "add"}, false, &removed, NULL), 0);
    assert_int_equal(removed, 100);
    jc_cache_close(other);
    assert_int_equal(memo_int(c, 7), 8); /* as read in this session */
    assert_int_equal(add_calls, 100);
    assert_int_equal(memo_int(c, 500), 501); /* new: computed */
    assert_int_equal(add_calls, 101);
    assert_int_equal(jc_memo_session_end(c), 0);
    /* The session is over: the removed entry is computed again. */
    assert_int_equal(memo_int(c, 7), 8);
    assert_int_equal(add_calls, 102);
    jc_cache_close(c);
    assert_int_equal(count_entries(path), 2); /* 500 and 7 again */
}

/* Hits in a session are counted as outside one: written at the end. */
static void memo_session_counts_its_hits(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, sizeof path, "session-hits.db", 0);
    for (int64_t a = 0; a < 10; a++)
        memo_int(c, a); /* stored */
    assert_int_equal(jc_memo_session_begin(c, &(jc_memo_session_options){.max_memory = -1}), 0);
    for (int round = 0; round < 5; round++) /* read from the snapshot each time: no memory */
        for (int64_t a = 0; a < 10; a++)
            memo_int(c, a);
    assert_int_equal(jc_test_hits_sql(path, "SELECT sum(hits) FROM entries"), 0); /* not written yet */
    assert_int_equal(jc_memo_session_end(c), 0);
    assert_int_equal(jc_test_hits_sql(path, "SELECT sum(hits) FROM entries"), 50);
    /* Answered from memory: counted per key, shown by stats before they
     * are written, written at the end. */
    assert_int_equal(jc_memo_session_begin(c, NULL), 0);
    for (int round = 0; round < 5; round++)
        for (int64_t a = 0; a < 10; a++)
            memo_int(c, a);
    jc_stats *st = jc_cache_stats(c);
    assert_non_null(st);
    assert_int_equal(st->hits, 100);
    jc_stats_free(st);
    assert_int_equal(jc_memo_session_end(c), 0);
    assert_int_equal(jc_test_hits_sql(path, "SELECT sum(hits) FROM entries"), 100);
    assert_int_equal(jc_test_hits_sql(path, "SELECT min(hits) FROM entries"), 10);
    jc_cache_close(c);
}

/* WAL frames a checkpoint could not copy back into the database file: those
 * written after the oldest snapshot a reader holds. */
static int wal_left(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    int log = -1, done = -1;
    /* The journal mode is known once the file has been read. */
    assert_int_equal(sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL), SQLITE_OK);
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    sqlite3_close(db);
    assert_int_equal(rc, SQLITE_OK);
    return log - done;
}

/* A snapshot is renewed once older than its bound: a checkpoint that the
 * session's snapshot holds back completes after the next call, and entries
 * other handles stored meanwhile are seen. */
static void memo_session_renews_its_snapshot_so_checkpoints_go_on(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, sizeof path, "session-age.db", 0);
    memo_int(c, 1);
    assert_int_equal(jc_memo_session_begin(c, &(jc_memo_session_options){.max_snapshot_seconds = 0.2}), 0);
    memo_int(c, 1); /* the snapshot is taken */
    /* Another handle stores 50 results: the session's snapshot keeps a
     * checkpoint from copying them back. */
    jc_cache *other = open_cache(path, 0);
    for (int64_t a = 100; a < 150; a++)
        memo_int(other, a);
    assert_true(wal_left(path) > 0);
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    add_calls = 0;
    assert_int_equal(memo_int(c, 130), 131); /* renewed: stored by the other handle, a hit */
    assert_int_equal(add_calls, 0);
    assert_int_equal(wal_left(path), 0);
    jc_cache_close(other);
    assert_int_equal(jc_memo_session_end(c), 0);
    jc_cache_close(c);
}

/* probe(): the WAL frames a checkpoint cannot copy back while it runs. */
static char probe_path[PATH_CAP];
static int probe(jc_call *call)
{
    (void)call;
    return jc_return_int(call, wal_left(probe_path));
}
JC_FUNCTION(probe, "v1");

/* A session answered from memory still lets an old snapshot go (and writes
 * its hits then); a miss lets it go while its function runs. */
static void memo_session_answered_from_memory_lets_an_old_snapshot_go(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, sizeof path, "session-memory-age.db", 0);
    memo_int(c, 1);
    assert_int_equal(jc_memo_session_begin(c, &(jc_memo_session_options){.max_snapshot_seconds = 0.2}), 0);
    memo_int(c, 1); /* read from the snapshot, then kept */
    jc_cache *other = open_cache(path, 0);
    for (int64_t a = 100; a < 150; a++)
        memo_int(other, a);
    assert_true(wal_left(path) > 0);
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    add_calls = 0;
    memo_int(c, 1); /* from memory */
    assert_int_equal(add_calls, 0);
    assert_int_equal(wal_left(path), 0);
    assert_int_equal(jc_test_sql_int(path, "SELECT coalesce(sum(hits), 0) FROM hit_log"), 1); /* written at the renewal */
    /* The snapshot taken again, then a miss: its function runs without it. */
    memo_int(c, 120);
    memo_int(other, 200);
    snprintf(probe_path, sizeof probe_path, "%s", path);
    jc_value *v = jc_memo(c, probe);
    assert_non_null(v);
    assert_int_equal(int_of(v), 0);
    jc_value_free(v);
    jc_cache_close(other);
    assert_int_equal(jc_memo_session_end(c), 0);
    jc_cache_close(c);
}

/* JC_CACHE_RECOMPUTE computes every call, in a session too. */
static void memo_session_recomputing_computes_every_call(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, sizeof path, "session-recompute.db", JC_CACHE_RECOMPUTE);
    add_calls = 0;
    assert_int_equal(jc_memo_session_begin(c, NULL), 0);
    memo_int(c, 1);
    memo_int(c, 1);
    assert_int_equal(add_calls, 2);
    assert_int_equal(jc_memo_session_end(c), 0);
    jc_cache_close(c);
}

/* Within its bound a session does not see what others store meanwhile. */
static void memo_session_reads_one_snapshot_within_its_bound(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, sizeof path, "session-snap.db", 0);
    memo_int(c, 1);
    assert_int_equal(jc_memo_session_begin(c, &(jc_memo_session_options){.max_snapshot_seconds = 60}), 0);
    memo_int(c, 1);
    jc_cache *other = open_cache(path, 0);
    memo_int(other, 2);
    jc_cache_close(other);
    add_calls = 0;
    assert_int_equal(memo_int(c, 2), 3); /* not in the snapshot: computed (and stored again) */
    assert_int_equal(add_calls, 1);
    assert_int_equal(memo_int(c, 2), 3); /* then kept */
    assert_int_equal(add_calls, 1);
    assert_int_equal(jc_memo_session_end(c), 0);
    jc_cache_close(c);
}

/* What a session refuses, and what goes on in one as outside. */
static void memo_session_errors_and_failures(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, sizeof path, "session-errors.db", 0);
    assert_int_equal(jc_memo_session_begin(NULL, NULL), JC_EINVAL);
    assert_int_equal(jc_memo_session_end(c), JC_EINVAL);
    assert_non_null(strstr(jc_errmsg(), "no memo session"));
    setenv("JOBCACHE_MEMO_SNAPSHOT", "soon", 1);
    assert_int_equal(jc_memo_session_begin(c, NULL), JC_EINVAL);
    assert_non_null(strstr(jc_errmsg(), "JOBCACHE_MEMO_SNAPSHOT='soon' is not an age above 0 (a number and its unit"));
    unsetenv("JOBCACHE_MEMO_SNAPSHOT");
    setenv("JOBCACHE_MEMO_MEMORY", "lots", 1);
    assert_int_equal(jc_memo_session_begin(c, NULL), JC_EINVAL);
    assert_non_null(strstr(jc_errmsg(), "JOBCACHE_MEMO_MEMORY: 'lots' is not a size"));
    unsetenv("JOBCACHE_MEMO_MEMORY");
    assert_int_equal(jc_memo_session_begin(c, NULL), 0);
    assert_int_equal(jc_memo_session_begin(c, NULL), JC_EINVAL);
    assert_non_null(strstr(jc_errmsg(), "already in a memo session"));
    /* A failure is neither stored nor kept: asked again, it runs again. */
    fails_calls = 0;
    assert_null(jc_memo(c, fails, jc_int(3)));
    assert_null(jc_memo(c, fails, jc_int(3)));
    assert_int_equal(fails_calls, 2);
    /* A batch in the session's thread: allowed; the session goes on. */
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    jc_delayed(b, add, jc_int(40), jc_int(1));
    jc_results *r = jc_run(b);
    assert_int_equal(jc_results_status(r), JC_OK);
    jc_results_free(r);
    jc_batch_free(b);
    add_calls = 0;
    assert_int_equal(memo_int(c, 40), 41); /* stored by the batch */
    assert_int_equal(add_calls, 0);
    /* Left open: jc_cache_close ends it (and the sanitizers see nothing
     * leaked). */
    jc_cache_close(c);
    assert_int_equal(jc_test_hits_sql(path, "SELECT hits FROM entries WHERE function = 'add'"), 1);
}

/* On a disabled cache a session keeps nothing: every call computes. */
static void memo_session_on_a_disabled_cache_computes_every_call(void **state)
{
    (void)state;
    jc_cache *c = jc_cache_open(NULL, &(jc_cache_options){.flags = JC_CACHE_DISABLED});
    assert_non_null(c);
    add_calls = 0;
    assert_int_equal(jc_memo_session_begin(c, NULL), 0);
    memo_int(c, 1);
    memo_int(c, 1);
    assert_int_equal(add_calls, 2);
    assert_int_equal(jc_memo_session_end(c), 0);
    jc_cache_close(c);
}

int main(void)
{
    unsetenv("JOBCACHE_PATH");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(memo_a_miss_is_computed_in_process_and_stored),
        cmocka_unit_test(memo_a_second_call_is_a_hit_also_after_reopening),
        cmocka_unit_test(memo_a_nested_result_comes_back_from_the_file_unchanged),
        cmocka_unit_test(memo_a_failure_returns_null_naming_the_call_and_caches_nothing),
        cmocka_unit_test(memo_an_unregistered_function_gives_enofunc_with_file_and_line),
        cmocka_unit_test(memo_bad_arguments_and_a_null_cache_are_refused),
        cmocka_unit_test(memo_a_disabled_cache_computes_every_time),
        cmocka_unit_test(memo_a_function_returning_0_without_a_result_fails_and_caches_nothing),
        cmocka_unit_test(memo_hit_counts_reach_the_file_after_close),
        cmocka_unit_test(memo_many_hits_are_written_now_and_then_and_all_counted_at_close),
        cmocka_unit_test(memo_readonly_answers_hits_and_computes_misses_without_storing),
        cmocka_unit_test(memo_and_batches_share_entries),
        cmocka_unit_test(memo_recompute_computes_again_and_overwrites),
        cmocka_unit_test(memo_keeps_max_size),
        cmocka_unit_test(memo_hits_written_in_a_rolled_back_transaction_are_kept),
        cmocka_unit_test(memo_session_answers_what_it_read_from_memory),
        cmocka_unit_test(memo_session_counts_its_hits),
        cmocka_unit_test(memo_session_renews_its_snapshot_so_checkpoints_go_on),
        cmocka_unit_test(memo_session_reads_one_snapshot_within_its_bound),
        cmocka_unit_test(memo_session_answered_from_memory_lets_an_old_snapshot_go),
        cmocka_unit_test(memo_session_recomputing_computes_every_call),
        cmocka_unit_test(memo_session_errors_and_failures),
        cmocka_unit_test(memo_session_on_a_disabled_cache_computes_every_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
