/*
 * The cache layer's face for the run and inspection (cache/cache.h): state
 * of the handle, write transactions, entries.
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

/* ---- the state of the handle, for the run and inspection (cache.h) ---- */

size_t jc__cache_damaged(const jc_cache *cache)
{
    return cache->damaged;
}

void jc__cache_evict_epoch(jc_cache *cache)
{
    cache->epoch_base = -1;
    cache->epoch_evicted = 0;
    cache->epoch_told = false;
}

int jc__cache_run_start(jc_cache *cache)
{
    if (cache->running)
        return jc__set_error(JC_EBUSY, "jc_run: this cache is already running a batch; a cache runs one at a time");
    cache->running = true;
    cache->claimed = false;
    cache->run_thread = pthread_self();
    jc__cache_evict_epoch(cache);
    cache->run_evicted0 = cache->evicted;
    cache->run_evicted0_bytes = cache->evicted_bytes;
    return 0;
}

void jc__cache_run_evicted(const jc_cache *cache, int64_t *entries, int64_t *bytes)
{
    *entries = cache->evicted - cache->run_evicted0;
    *bytes = cache->evicted_bytes - cache->run_evicted0_bytes;
}

void jc__cache_run_end(jc_cache *cache)
{
    cache->running = false;
    cache->runs_evicted += cache->evicted - cache->run_evicted0;
    cache->runs_evicted_bytes += cache->evicted_bytes - cache->run_evicted0_bytes;
    jc__cache_evict_epoch(cache); /* jc_memo calls after it: an epoch of their own */
}

bool jc__cache_running(const jc_cache *cache)
{
    return cache->running;
}

bool jc__cache_busy_elsewhere(const jc_cache *cache)
{
    return cache->running && !pthread_equal(cache->run_thread, pthread_self());
}

const jc_function *jc__cache_memo_function(jc_cache *cache, jc_fn fn)
{
    if (!fn || fn != cache->memo_fn || cache->memo_gen != jc__registry_generation()) {
        /* a memo loop calls one function: look it up once */
        cache->memo_desc = jc__function_by_ptr(fn);
        cache->memo_fn = cache->memo_desc ? fn : NULL;
        cache->memo_gen = jc__registry_generation();
    }
    return cache->memo_fn ? cache->memo_desc : NULL;
}

bool jc__cache_warn_once(jc_cache *cache, const jc_function *fn)
{
    for (size_t i = 0; i < cache->nwarned; i++)
        if (cache->warned[i] == fn)
            return false;
    if (!JC__GROW(cache->warned, cache->capwarned, cache->nwarned + 1))
        cache->warned[cache->nwarned++] = fn;
    return true;
}

int jc__cache_busy_timeout_ms(const jc_cache *cache)
{
    return cache->busy_timeout_ms;
}

void jc__cache_lock_wait(jc_cache *cache, bool wait)
{
    jc__store_busy_wait(cache->store, wait ? -1 : 0);
}

bool jc__cache_has_store(const jc_cache *cache)
{
    return cache && cache->store;
}

bool jc__cache_in_transaction(const jc_cache *cache)
{
    return jc__store_in_transaction(cache->store);
}

bool jc__cache_writable(const jc_cache *cache)
{
    return cache->store && !(cache->flags & JC_CACHE_READONLY);
}
