/*
 * Large arguments kept by worker ranks, by digest, and the coordinator's
 * mirror of each rank's set.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include "exec/exec.h"
#include "mpi_int.h"

/* JOBCACHE_MPI_KEEP, read by every rank at jc_mpi_init (mpirun and srun
 * give every rank the same environment). */
size_t jc__mpi_arg_cache_bytes = ARG_CACHE_DEFAULT;

/* A kept value leaves the cache: freed later, by jc__mpi_arg_bury. */
static void arg_drop(arg_cache *c, jc_value *v)
{
    if (!v)
        return;
    if (JC__GROW(c->dropped, c->capdropped, c->ndropped + 1))
        return; /* out of memory: left allocated rather than freed under a call */
    c->dropped[c->ndropped++] = v;
}

/* Frees what left the cache: no call points into it any more. */
void jc__mpi_arg_bury(arg_cache *c)
{
    for (size_t i = 0; i < c->ndropped; i++)
        jc_value_free(c->dropped[i]);
    c->ndropped = 0;
}

size_t jc__mpi_arg_bytes(const jc_value *v)
{
    return v->type == JC_TYPE_BYTES ? v->len : v->len * 8;
}

/* The entry of digest d, now most recently used; NULL when not kept. */
arg_entry *jc__mpi_arg_find(arg_cache *c, const unsigned char d[25])
{
    for (size_t i = 0; i < c->n; i++)
        if (memcmp(c->e[i].digest, d, 25) == 0) {
            c->e[i].used = ++c->clock;
            return &c->e[i];
        }
    return NULL;
}

/* Keeps d (bytes long; value taken over, NULL in a mirror), the least
 * recently used out first to make room (what leaves goes to arg_drop). False
 * (value not taken) when it is larger than the whole cache or memory runs
 * out. */
bool jc__mpi_arg_keep(arg_cache *c, const unsigned char d[25], size_t bytes, jc_value *value)
{
    if (bytes > jc__mpi_arg_cache_bytes)
        return false;
    while (c->bytes + bytes > jc__mpi_arg_cache_bytes && c->n) {
        size_t old = 0;
        for (size_t i = 1; i < c->n; i++)
            if (c->e[i].used < c->e[old].used)
                old = i;
        c->bytes -= c->e[old].bytes;
        arg_drop(c, c->e[old].value);
        c->e[old] = c->e[--c->n];
    }
    if (JC__GROW(c->e, c->cap, c->n + 1))
        return false;
    arg_entry *e = &c->e[c->n++];
    memcpy(e->digest, d, 25);
    e->bytes = bytes;
    e->used = ++c->clock;
    e->value = value;
    c->bytes += bytes;
    return true;
}

void jc__mpi_arg_clear(arg_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        arg_drop(c, c->e[i].value);
    free(c->e);
    c->e = NULL;
    c->n = c->cap = c->bytes = 0;
}
