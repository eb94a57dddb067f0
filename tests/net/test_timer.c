/*
 * tests/net/test_timer.c - the hashed timer wheel (dataplane/net/timer.c):
 * never early, never late by more than a tick, O(1) cancel and re-arm,
 * timeouts longer than a revolution, clock jumps, and callbacks that re-arm
 * or cancel timers of the same slot while it fires.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "dataplane/net/timer.h"

struct probe {
	struct tw_timer t;
	int fired;
	uint64_t at;                 /* "now" of the advance that fired it */
	uint64_t rearm_us;           /* re-arm this far ahead when fired */
	uint64_t due;                /* expiry it was armed for */
	struct tw_timer *cancel;     /* cancel this one when fired */
};

static uint64_t g_now;
static struct tw_wheel *g_wheel;    /* for re-arming callbacks */

static void probe_fn(struct tw_timer *t, void *arg)
{
	struct probe *p = (struct probe *)((char *)t - offsetof(struct probe, t));

	assert_ptr_equal(arg, &g_now);
	assert_false(tw_timer_armed(t));
	p->fired++;
	p->at = g_now;
	if (p->cancel)
		tw_timer_cancel(p->cancel);
	if (p->rearm_us)
		tw_timer_arm(g_wheel, t, g_now + p->rearm_us);
}

static unsigned adv(struct tw_wheel *w, uint64_t now)
{
	g_now = now;
	return tw_wheel_advance(w, now, &g_now);
}

static void test_create_destroy(void **state)
{
	struct tw_wheel *w = tw_wheel_create(100, 1000, 5);

	(void)state;
	assert_non_null(w);
	assert_int_equal(tw_wheel_count(w), 0);
	tw_wheel_destroy(&w);
	assert_null(w);
	tw_wheel_destroy(&w);            /* NULL is fine */
	tw_wheel_destroy(NULL);
}

static void test_fires_on_time_never_early(void **state)
{
	struct tw_wheel *w = tw_wheel_create(64, 1000, 0);
	struct probe p = { 0 };
	uint64_t t;

	(void)state;
	tw_timer_init(&p.t, probe_fn);
	tw_timer_arm(w, &p.t, 5500);     /* rounds up to tick 6 = 6000 us */
	assert_true(tw_timer_armed(&p.t));
	assert_int_equal(tw_wheel_count(w), 1);
	for (t = 100; t < 6000; t += 100) {
		assert_int_equal(adv(w, t), 0);
		assert_int_equal(p.fired, 0);
	}
	assert_int_equal(adv(w, 6000), 1);
	assert_int_equal(p.fired, 1);
	assert_int_equal(p.at, 6000);
	assert_false(tw_timer_armed(&p.t));
	assert_int_equal(tw_wheel_count(w), 0);
	assert_int_equal(adv(w, 100000), 0);
	assert_int_equal(p.fired, 1);    /* once only */
	tw_wheel_destroy(&w);
}

static void test_cancel_and_rearm(void **state)
{
	struct tw_wheel *w = tw_wheel_create(64, 1000, 0);
	struct probe a = { 0 }, b = { 0 }, c = { 0 };

	(void)state;
	tw_timer_init(&a.t, probe_fn);
	tw_timer_init(&b.t, probe_fn);
	tw_timer_init(&c.t, probe_fn);
	tw_timer_cancel(&a.t);           /* not armed: no-op */
	tw_timer_arm(w, &a.t, 3000);
	tw_timer_arm(w, &b.t, 3000);     /* same slot */
	tw_timer_arm(w, &c.t, 3000);
	tw_timer_cancel(&b.t);           /* middle of a chain */
	assert_int_equal(tw_wheel_count(w), 2);
	tw_timer_arm(w, &c.t, 10000);    /* re-arm moves it */
	assert_int_equal(tw_wheel_count(w), 2);
	assert_int_equal(adv(w, 3000), 1);
	assert_int_equal(a.fired, 1);
	assert_int_equal(b.fired, 0);
	assert_int_equal(c.fired, 0);
	assert_int_equal(adv(w, 9999), 0);
	assert_int_equal(adv(w, 10000), 1);
	assert_int_equal(c.fired, 1);
	tw_timer_cancel(&c.t);           /* after firing: no-op */
	assert_int_equal(tw_wheel_count(w), 0);
	tw_wheel_destroy(&w);
}

static void test_longer_than_a_revolution(void **state)
{
	/* 8 slots of 1 ms: an 8 ms revolution; a 50 ms timer passes its slot
	 * six times before it is due. */
	struct tw_wheel *w = tw_wheel_create(8, 1000, 0);
	struct probe p = { 0 }, q = { 0 };
	uint64_t t;

	(void)state;
	tw_timer_init(&p.t, probe_fn);
	tw_timer_init(&q.t, probe_fn);
	tw_timer_arm(w, &p.t, 50000);
	tw_timer_arm(w, &q.t, 2000);     /* same slot as p (50 % 8 == 2) */
	for (t = 1000; t < 50000; t += 1000) {
		adv(w, t);
		assert_int_equal(p.fired, 0);
	}
	assert_int_equal(q.fired, 1);
	assert_int_equal(q.at, 2000);
	adv(w, 50000);
	assert_int_equal(p.fired, 1);
	assert_int_equal(p.at, 50000);
	tw_wheel_destroy(&w);
}

static void test_clock_jump(void **state)
{
	struct tw_wheel *w = tw_wheel_create(16, 100, 0);
	struct probe p[40];
	int i;

	(void)state;
	for (i = 0; i < 40; i++) {
		p[i] = (struct probe){ 0 };
		tw_timer_init(&p[i].t, probe_fn);
		tw_timer_arm(w, &p[i].t, (uint64_t)(i + 1) * 1000);
	}
	/* Jump over many revolutions at once: everything due fires, the
	 * rest stays. */
	assert_int_equal(adv(w, 20000), 20);
	for (i = 0; i < 40; i++)
		assert_int_equal(p[i].fired, i < 20 ? 1 : 0);
	assert_int_equal(tw_wheel_count(w), 20);
	assert_int_equal(adv(w, 1000000), 20);
	for (i = 0; i < 40; i++)
		assert_int_equal(p[i].fired, 1);
	/* Time going backwards fires nothing and breaks nothing. */
	assert_int_equal(adv(w, 500), 0);
	tw_wheel_destroy(&w);
}

static void test_past_expiry_fires_next_advance(void **state)
{
	struct tw_wheel *w = tw_wheel_create(64, 1000, 10000);
	struct probe p = { 0 };

	(void)state;
	tw_timer_init(&p.t, probe_fn);
	tw_timer_arm(w, &p.t, 0);
	assert_int_equal(adv(w, 10000), 0);   /* same tick: not yet */
	assert_int_equal(adv(w, 11000), 1);
	assert_int_equal(p.fired, 1);
	tw_wheel_destroy(&w);
}

static void test_callback_rearms_and_cancels(void **state)
{
	struct tw_wheel *w = tw_wheel_create(4, 1000, 0);
	struct probe a = { 0 }, b = { 0 }, rp = { 0 }, *r = &rp;

	(void)state;
	g_wheel = w;
	tw_timer_init(&r->t, probe_fn);
	tw_timer_init(&a.t, probe_fn);
	tw_timer_init(&b.t, probe_fn);
	/* r re-arms itself 4 ms ahead (one revolution: its own slot) each time
	 * it fires; that must not loop inside one advance. */
	r->rearm_us = 4000;
	tw_timer_arm(w, &r->t, 1000);
	assert_int_equal(adv(w, 1000), 1);
	assert_int_equal(r->fired, 1);
	assert_true(tw_timer_armed(&r->t));
	assert_int_equal(adv(w, 4999), 0);
	assert_int_equal(adv(w, 5000), 1);
	assert_int_equal(r->fired, 2);
	r->rearm_us = 0;
	tw_timer_cancel(&r->t);

	/* a and b share a slot; whichever fires first cancels the other. */
	a.cancel = &b.t;
	b.cancel = &a.t;
	tw_timer_arm(w, &a.t, 7000);
	tw_timer_arm(w, &b.t, 7000);
	assert_int_equal(adv(w, 7000), 1);
	assert_int_equal(a.fired + b.fired, 1);
	assert_int_equal(tw_wheel_count(w), 0);
	tw_wheel_destroy(&w);
}

static void test_many_timers(void **state)
{
	enum { N = 10000 };
	struct tw_wheel *w = tw_wheel_create(256, 1000, 0);
	struct probe *p = calloc(N, sizeof(*p));
	uint64_t t, seed = 12345;
	unsigned total = 0;
	int i;

	(void)state;
	assert_non_null(p);
	for (i = 0; i < N; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		tw_timer_init(&p[i].t, probe_fn);
		p[i].due = 1 + (seed >> 33) % 2000000;
		tw_timer_arm(w, &p[i].t, p[i].due);
	}
	for (i = 0; i < N; i += 3)
		tw_timer_cancel(&p[i].t);
	for (t = 0; t <= 2000000; t += 7000)
		total += adv(w, t);
	total += adv(w, 2001000);
	assert_int_equal(total, N - (N + 2) / 3);
	for (i = 0; i < N; i++) {
		assert_int_equal(p[i].fired, i % 3 ? 1 : 0);
		if (p[i].fired) {
			/* never early, late by less than one advance step */
			assert_true(p[i].at >= p[i].due);
			assert_true(p[i].at < p[i].due + 1000 + 7000);
		}
	}
	free(p);
	tw_wheel_destroy(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_destroy),
		cmocka_unit_test(test_fires_on_time_never_early),
		cmocka_unit_test(test_cancel_and_rearm),
		cmocka_unit_test(test_longer_than_a_revolution),
		cmocka_unit_test(test_clock_jump),
		cmocka_unit_test(test_past_expiry_fires_next_advance),
		cmocka_unit_test(test_callback_rearms_and_cancels),
		cmocka_unit_test(test_many_timers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
