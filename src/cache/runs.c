/*
 * The record of runs: a row per run and per session of jc_memo calls.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "function/fingerprint.h"
#include "cache_int.h"
#include "util/proc.h"

/* ---- the record of runs ---- */

void jc__cache_memo_note(jc_cache *cache, jc_status status, bool cached, double seconds, const char *message)
{
    if (!cache->memo.calls)
        cache->memo.started = jc__now();
    cache->memo.calls++;
    if (cached) {
        cache->memo.cached++;
        cache->memo.saved += seconds;
    } else if (status == JC_STATUS_OK) {
        cache->memo.computed++;
    } else {
        cache->memo.failed++;
        if (cache->memo.nfailures < 100) {
            bool room = !JC__GROW(cache->memo.failures, cache->memo.capfailures, cache->memo.nfailures + 1);
            char *text = jc__strdup_printf("%s\t%s", jc_status_name(status), message ? message : "?");
            if (room && text)
                cache->memo.failures[cache->memo.nfailures++] = text;
            else
                free(text);
        }
    }
}

/* The session of jc_memo calls, as one run of kind "memo". */
void jc__c_record_memo_session(jc_cache *cache)
{
    jc__run_failure *fails = calloc(cache->memo.nfailures + 1, sizeof *fails);
    for (size_t i = 0; fails && i < cache->memo.nfailures; i++) {
        char *tab = strchr(cache->memo.failures[i], '\t');
        if (tab)
            *tab = '\0';
        fails[i].status = cache->memo.failures[i];
        fails[i].message = tab ? tab + 1 : "";
    }
    jc__run_row row = {
        .started = cache->memo.started, .ended = jc__now(), .kind = "memo", .n_jobs = 1,
        .backend = "in-process", .calls = (int64_t)cache->memo.calls, .cached = (int64_t)cache->memo.cached,
        .computed = (int64_t)cache->memo.computed, .failed = (int64_t)cache->memo.failed,
        .elapsed = jc__now() - cache->memo.started, .saved = cache->memo.saved,
        .status = cache->memo.failed ? "JC_EFAILED" : "ok", .failures = fails,
        .nfailures = fails ? cache->memo.nfailures : 0, .evicted = cache->evicted - cache->runs_evicted,
        .evicted_bytes = cache->evicted_bytes - cache->runs_evicted_bytes,
    };
    jc__cache_record_run(cache, &row);
    free(fails);
}

int jc__cache_record_run(jc_cache *cache, jc__run_row *r)
{
    if (!jc__cache_writable(cache) || jc__store_schema(cache->store) < 5)
        return 0;
    int64_t keep = jc__cache_log_runs(cache);
    if (keep == 0)
        return 0;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    char *cmd = jc__command_line(0);
    r->host = host;
    r->pid = getpid();
    r->command = cmd ? cmd : "?";
    int rc = jc__store_begin(cache->store);
    if (!rc) {
        rc = jc__store_run_add(cache->store, r, keep);
        rc = rc ? (jc__store_rollback(cache->store), rc) : jc__cache_commit(cache);
    }
    free(cmd);
    return rc;
}

typedef struct runs_ctx {
    jc_run_fn fn;
    void *userdata;
} runs_ctx;

static int give_run(void *ctx, const jc__run_row *r)
{
    runs_ctx *c = ctx;
    jc_run_record rec = {
        .id = r->id, .started = r->started, .ended = r->ended, .host = r->host, .pid = (long)r->pid,
        .command = r->command, .kind = r->kind, .n_jobs = r->n_jobs, .backend = r->backend, .calls = r->calls,
        .cached = r->cached, .computed = r->computed, .failed = r->failed, .skipped = r->skipped,
        .elapsed = r->elapsed, .saved = r->saved, .status = r->status, .nfailures = r->nfailures,
        .failures = (const jc_run_failure *)r->failures, .evicted = r->evicted, .evicted_bytes = r->evicted_bytes,
        .retries = r->retries, .inputs_read = r->inputs_read,
    };
    c->fn(&rec, c->userdata);
    return 0;
}

int jc_cache_runs(jc_cache *cache, size_t last, bool failed_only, jc_run_fn fn, void *userdata)
{
    if (!cache || !cache->store || !fn)
        return jc__set_error(JC_EINVAL, "jc_cache_runs: %s", !cache ? "NULL cache" : !fn ? "NULL callback"
                                                                                   : "the cache is disabled");
    runs_ctx c = {fn, userdata};
    return jc__store_runs(cache->store, (int64_t)last, failed_only, give_run, &c);
}

int jc__cache_params(jc_cache *cache, const char *function, const char *version, char **names)
{
    *names = NULL;
    if (!cache->store)
        return 0;
    return jc__store_params_get(cache->store, function, version, names);
}
