/*
 * cache/clock.h - the cache's notion of "now", in whole seconds of Unix time.
 *
 * Real mode (the default) reads CLOCK_REALTIME_COARSE, which is a vDSO read
 * and costs a few nanoseconds. Tests switch to manual mode and drive the
 * clock, so expiry and flush delays are tested without sleeping.
 *
 * Thread-safe: the manual time is a relaxed atomic.
 */
#ifndef DPCACHE_CACHE_CLOCK_H
#define DPCACHE_CACHE_CLOCK_H

#include <stdint.h>

/* Current time in seconds since the Unix epoch. */
uint32_t cache_clock_now(void);

/* Switch to manual mode at time 'now' (tests only). */
void cache_clock_set_manual(uint32_t now);

/* Advance the manual clock by 'seconds' (tests only). */
void cache_clock_advance(uint32_t seconds);

/* Back to the real clock. */
void cache_clock_set_real(void);

/*
 * memcached's exptime rules, turned into an absolute cache-clock time:
 *   0                     -> 0 (never expires)
 *   negative              -> already expired (returns CACHE_EXPTIME_EXPIRED)
 *   1 .. 30 days (2592000) -> now + exptime
 *   above 30 days         -> an absolute Unix time; one in the past is
 *                            already expired
 */
#define CACHE_EXPTIME_EXPIRED 1u  /* an absolute time long past */
#define CACHE_REALTIME_MAXDELTA (60u * 60u * 24u * 30u)
uint32_t cache_exptime_from_wire(int64_t exptime);

/* Seconds of life left for an item: -1 if it never expires, 0 or more
 * otherwise (meta "t" flag, memcached semantics). */
int64_t cache_ttl_remaining(uint32_t exptime);

#endif /* DPCACHE_CACHE_CLOCK_H */
