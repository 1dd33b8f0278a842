/*
 * clock.h: every clock read of jobcache (as zstd's programs/timefn.c owns
 * its): a monotonic clock for durations, deadlines and pacing, and the wall
 * clock for the times stored in a cache (created, last used).
 */
#ifndef JC_CLOCK_H
#define JC_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Seconds of CLOCK_MONOTONIC: for durations and deadlines only. */
double jc__monotonic(void);
/* The same in nanoseconds, for a value shared with other processes as an
 * integer (the fork pool's call start times). */
int64_t jc__monotonic_ns(void);
/* CLOCK_MONOTONIC seconds from now as a timespec: an absolute deadline for
 * a condition variable whose clock is CLOCK_MONOTONIC
 * (pthread_condattr_setclock). */
struct timespec jc__monotonic_after(double seconds);
/* The wall clock (CLOCK_REALTIME), seconds since the epoch: the times kept
 * in a cache. */
double jc__now(void);
/* jc__now() - age, for a filter of entries last used before it: an age
 * reaching before 1970 gives 1e-9, which matches no entry (0 means "no
 * bound" to the store, which would match every entry). */
double jc__used_before(double age);

#endif
