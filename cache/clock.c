/*
 * cache/clock.c - the cache's clock (see clock.h).
 *
 * The real clock is CLOCK_REALTIME_COARSE: a vDSO read, updated once per
 * kernel tick, which is plenty for second-granularity expiry. The manual
 * clock exists only for tests; a relaxed atomic flag selects it so the
 * real-clock path costs one extra predictable load.
 */
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cache/clock.h"

static bool clock_manual;        /* atomic (relaxed) */
static uint32_t clock_manual_now; /* atomic (relaxed) */

uint32_t cache_clock_now(void)
{
	struct timespec ts;

	if (__atomic_load_n(&clock_manual, __ATOMIC_RELAXED))
		return __atomic_load_n(&clock_manual_now, __ATOMIC_RELAXED);
	if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) != 0)
		clock_gettime(CLOCK_REALTIME, &ts);
	return (uint32_t)ts.tv_sec;
}

void cache_clock_set_manual(uint32_t now)
{
	__atomic_store_n(&clock_manual_now, now, __ATOMIC_RELAXED);
	__atomic_store_n(&clock_manual, true, __ATOMIC_RELEASE);
}

void cache_clock_advance(uint32_t seconds)
{
	__atomic_fetch_add(&clock_manual_now, seconds, __ATOMIC_RELAXED);
}

void cache_clock_set_real(void)
{
	__atomic_store_n(&clock_manual, false, __ATOMIC_RELEASE);
}

/* Saturates instead of wrapping: a time past 2106 means "as late as we can
 * say", never "long ago". */
static uint32_t clamp_u32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/*
 * memcached (proto_text.c + memcached.c:realtime()): a negative exptime is
 * stored as "already expired"; up to 30 days is relative to now; above that
 * it is absolute Unix time, and an absolute time at or before now is already
 * expired (an item is expired when exptime <= now).
 */
uint32_t cache_exptime_from_wire(int64_t exptime)
{
	uint32_t now;

	if (exptime == 0)
		return 0;
	if (exptime < 0)
		return CACHE_EXPTIME_EXPIRED;
	now = cache_clock_now();
	if (exptime <= (int64_t)CACHE_REALTIME_MAXDELTA)
		return clamp_u32((uint64_t)now + (uint64_t)exptime);
	if (exptime <= (int64_t)now)
		return CACHE_EXPTIME_EXPIRED;
	return clamp_u32((uint64_t)exptime);
}

int64_t cache_ttl_remaining(uint32_t exptime)
{
	uint32_t now;

	if (exptime == 0)
		return -1;
	now = cache_clock_now();
	return exptime > now ? (int64_t)(exptime - now) : 0;
}
