/*
 * dataplane/net/timer.c - hashed timer wheel (see timer.h).
 *
 * Design note. Each slot is a doubly linked list threaded through the
 * timers themselves (next + pprev, as in the Linux hlist), which gives O(1)
 * cancel without knowing the wheel. Expiries are absolute ticks, so a slot
 * may hold timers of later revolutions; advance fires only those whose tick
 * has come and leaves the rest.
 *
 * Firing detaches a slot's list onto a local head first and then pops it one
 * timer at a time. A callback may therefore re-arm its own timer (it goes to
 * the wheel, not to the detached list, so it cannot loop within one advance)
 * or cancel any timer still on the detached list (pprev keeps pointing at a
 * valid link, the local head included).
 *
 * When the clock jumps by more than a revolution, one sweep of every slot is
 * enough: the due test compares absolute ticks.
 */
#include "dataplane/net/timer.h"

#include <stdlib.h>

struct tw_wheel {
	struct tw_timer **slot;
	uint64_t mask;
	uint64_t cur;        /* last tick processed */
	uint32_t tick_us;
};

struct tw_wheel *tw_wheel_create(unsigned slots, uint32_t tick_us,
				 uint64_t now_us)
{
	struct tw_wheel *w;
	uint64_t n = 1;

	if (!slots)
		slots = 4096;
	if (!tick_us)
		tick_us = 1000;
	while (n < slots)
		n <<= 1;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->slot = calloc(n, sizeof(*w->slot));
	if (!w->slot) {
		free(w);
		return NULL;
	}
	w->mask = n - 1;
	w->tick_us = tick_us;
	w->cur = now_us / tick_us;
	return w;
}

void tw_wheel_destroy(struct tw_wheel **w)
{
	if (!w || !*w)
		return;
	free((*w)->slot);
	free(*w);
	*w = NULL;
}

static void tw_link(struct tw_timer **head, struct tw_timer *t)
{
	t->next = *head;
	if (*head)
		(*head)->pprev = &t->next;
	*head = t;
	t->pprev = head;
}

void tw_timer_arm(struct tw_wheel *w, struct tw_timer *t, uint64_t expire_us)
{
	/* Round up: a timer never fires before its expiry. */
	uint64_t tick = expire_us / w->tick_us +
			(expire_us % w->tick_us != 0);

	tw_timer_cancel(t);
	if (tick <= w->cur)
		tick = w->cur + 1;
	t->expire = tick;
	tw_link(&w->slot[tick & w->mask], t);
}

static unsigned tw_run_slot(struct tw_wheel *w, uint64_t s, uint64_t now,
			    void *arg)
{
	struct tw_timer *local = w->slot[s], *t;
	unsigned fired = 0;

	if (!local)
		return 0;
	w->slot[s] = NULL;
	local->pprev = &local;
	while ((t = local) != NULL) {
		tw_timer_cancel(t);
		if (t->expire <= now) {
			fired++;
			t->fn(t, arg);
		} else {
			/* A later revolution: back into its slot. */
			tw_link(&w->slot[s], t);
		}
	}
	return fired;
}

unsigned tw_wheel_advance(struct tw_wheel *w, uint64_t now_us, void *arg)
{
	uint64_t now = now_us / w->tick_us, n, t;
	unsigned fired = 0;

	if (now <= w->cur)
		return 0;
	n = now - w->cur;
	if (n > w->mask + 1)
		n = w->mask + 1;
	/* Slots cur+1 .. cur+n, each once. Advance cur first so that timers
	 * armed by callbacks land at now + 1 or later. */
	t = w->cur;
	w->cur = now;
	while (n--) {
		t++;
		fired += tw_run_slot(w, t & w->mask, now, arg);
	}
	return fired;
}

unsigned long tw_wheel_count(const struct tw_wheel *w)
{
	unsigned long n = 0;
	uint64_t i;
	const struct tw_timer *t;

	for (i = 0; i <= w->mask; i++)
		for (t = w->slot[i]; t; t = t->next)
			n++;
	return n;
}
