/*
 * dataplane/net/timer.h - a hashed timer wheel for one polling core.
 *
 * Timers are embedded in their owner (a TCP connection has its own), so
 * arming never allocates. A timer sits in slot (expiry tick & mask) of a
 * power-of-two wheel; arm and cancel are O(1) list operations. A timer due
 * more than one revolution ahead stays in its slot and is skipped until its
 * absolute expiry tick is reached, so any timeout fits.
 *
 * Timers never fire early: an expiry is rounded up to the next tick.
 * Not thread-safe; the wheel and its timers belong to one core.
 */
#ifndef DPCACHE_NET_TIMER_H
#define DPCACHE_NET_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tw_wheel;
struct tw_timer;

/* Called when the timer expires; the timer is already disarmed, so the
 * callback may re-arm it or cancel any other timer. 'arg' is the value given
 * to tw_wheel_advance. */
typedef void (*tw_fn)(struct tw_timer *t, void *arg);

/* Embed in the owner; initialise with tw_timer_init. Fields are private. */
struct tw_timer {
	struct tw_timer *next;
	struct tw_timer **pprev;    /* NULL when not armed */
	uint64_t expire;            /* absolute tick */
	tw_fn fn;
};

/* 'slots' is rounded up to a power of two (0 = 4096); 'tick_us' is the
 * granularity (0 = 1000). NULL on no memory. */
struct tw_wheel *tw_wheel_create(unsigned slots, uint32_t tick_us,
				 uint64_t now_us);
/* Armed timers are simply forgotten (their owners free them). Accepts NULL;
 * sets *w to NULL. */
void tw_wheel_destroy(struct tw_wheel **w);

static inline void tw_timer_init(struct tw_timer *t, tw_fn fn)
{
	t->next = NULL;
	t->pprev = NULL;
	t->expire = 0;
	t->fn = fn;
}

static inline bool tw_timer_armed(const struct tw_timer *t)
{
	return t->pprev != NULL;
}

/* Arms (or re-arms) t to fire at the first advance with now >= expire_us;
 * an expiry in the past fires at the next advance. O(1). */
void tw_timer_arm(struct tw_wheel *w, struct tw_timer *t, uint64_t expire_us);

/* Disarms t; a no-op when it is not armed. O(1). */
static inline void tw_timer_cancel(struct tw_timer *t)
{
	if (!t->pprev)
		return;
	*t->pprev = t->next;
	if (t->next)
		t->next->pprev = t->pprev;
	t->next = NULL;
	t->pprev = NULL;
}

/* Fires every timer due by now_us, in no particular order within a tick.
 * Returns how many fired. */
unsigned tw_wheel_advance(struct tw_wheel *w, uint64_t now_us, void *arg);

/* Timers currently armed; walks the whole wheel (tests, stats). */
unsigned long tw_wheel_count(const struct tw_wheel *w);

#endif /* DPCACHE_NET_TIMER_H */
