/*
 * One memoized call (jc_memo): looked up, computed in process on a miss,
 * stored.
 */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/exec.h"
#include "run/progress.h"
#include "cache/cache.h"
#include "run_int.h"

/* ---- one memoized call ---- */

/* The policy for a jc_memo hit computed by other code: the environment's,
 * else warn, once per function and cache handle. */
static jc_on_code_change memo_code_change(jc_cache *cache, const jc_function *fn)
{
    jc_on_code_change policy = JC_ON_CODE_CHANGE_WARN;
    if (jc__r_code_change_from_env(cache, &policy)) {
        fprintf(stderr, "jobcache: %s; warning instead\n", jc_errmsg());
        policy = JC_ON_CODE_CHANGE_WARN;
    }
    if (policy != JC_ON_CODE_CHANGE_WARN)
        return policy;
    if (!jc__cache_warn_once(cache, fn))
        return policy;
    fprintf(stderr,
            "jobcache: warning: a cached result of %s (version %s) was computed by different code: its "
            "machine code has changed since; if the change alters results, bump the version in "
            "JC_FUNCTION(%s, ...), or set JOBCACHE_ON_CODE_CHANGE=recompute (=ignore to silence this)\n",
            fn->name, fn->version, fn->name);
    return policy;
}

jc_value *jc__memo(jc_cache *cache, jc_fn fn, jc_value *const *argv, size_t argc, const char *file, int line)
{
    if (!cache) {
        jc__r_free_args(argv, argc);
        jc__r_at_site(jc__set_error_null("jc_memo", "cache"), file, line);
        return NULL;
    }
    if (jc__cache_busy_elsewhere(cache)) {
        jc__r_free_args(argv, argc);
        jc__r_at_site(jc__set_error(JC_EBUSY, "jc_memo: this cache is running a batch in another thread; a "
                              "cache is used by one thread at a time"), file, line);
        return NULL;
    }
    const jc_function *desc = jc__cache_memo_function(cache, fn);
    uint8_t key[JC__KEY_LEN];
    if (jc__r_prepare("jc_memo", desc, argv, argc, key)) {
        jc__r_at_site(jc_errcode(), file, line);
        return NULL;
    }

    jc__found found;
    bool session = jc__cache_in_session(cache);
    if (session) /* a snapshot past its age goes, answered from memory or not */
        jc__cache_session_tick(cache);
    if (session && jc__cache_session_recall(cache, key, &found) == 1) {
        /* Read (or computed) earlier in this session: counted as a hit by
         * the session. */
        jc__cache_memo_note(cache, JC_STATUS_OK, true, found.seconds, NULL);
        jc__r_free_args(argv, argc);
        return found.value;
    }
    if (session)
        jc__cache_session_hold(cache);
    int rc = jc__cache_lookup(cache, key, &found);
    if (rc < 0) {
        jc__r_free_args(argv, argc);
        return NULL;
    }
    if (rc == 1 && found.has_code_fp && jc__cache_code_changed(desc, &found) &&
        memo_code_change(cache, desc) == JC_ON_CODE_CHANGE_RECOMPUTE) {
        jc_value_free(found.value);
        rc = 0;
    }
    if (rc == 1) {
        /* Kept by the session, it counts the hit with those to come. */
        if (!session || !jc__cache_session_keep(cache, key, found.value, found.seconds, true))
            jc__cache_touch(cache, &found, key);
        jc__cache_memo_note(cache, JC_STATUS_OK, true, found.seconds, NULL);
        jc__r_free_args(argv, argc);
        return found.value;
    }
    jc_value *value = NULL;
    double secs = 0;
    char *error = NULL;
    if (session) /* no snapshot held while the function runs, however long */
        jc__cache_session_release(cache);
    jc_status status = jc__call_invoke(desc, argv, argc, &value, &error, &secs);
    jc__cache_memo_note(cache, status, false, secs, error ? error : desc->name);
    if (status != JC_STATUS_OK) {
        jc__set_error(JC_EFAILED, "%s", error ? error : desc->name);
        jc__r_at_site(JC_EFAILED, file, line);
        free(error);
        jc__r_free_args(argv, argc);
        return NULL;
    }
    jc__cache_store_result(cache, key, desc, argv, argc, value, secs);
    if (session) /* touched as a hit if asked again */
        jc__cache_session_keep(cache, key, value, secs, false);
    jc__r_free_args(argv, argc);
    return value;
}
