/*
 * tests/cache/test_clock.c - the real and manual clock, and memcached's
 * exptime rules (relative, absolute, negative, the 30-day boundary).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "cache/clock.h"

static void test_real_clock(void **state)
{
	time_t now = time(NULL);
	uint32_t c;

	(void)state;
	cache_clock_set_real();
	c = cache_clock_now();
	/* COARSE may lag a tick behind time(). */
	assert_true((int64_t)c >= (int64_t)now - 1 && (int64_t)c <= (int64_t)now + 1);
}

static void test_manual_clock(void **state)
{
	(void)state;
	cache_clock_set_manual(1000000000u);
	assert_int_equal(cache_clock_now(), 1000000000u);
	cache_clock_advance(5);
	assert_int_equal(cache_clock_now(), 1000000005u);
	cache_clock_set_manual(1234567890u);
	assert_int_equal(cache_clock_now(), 1234567890u);
	cache_clock_set_real();
	assert_true(cache_clock_now() > 1600000000u);
}

static void test_exptime_rules(void **state)
{
	const uint32_t now = 1700000000u;

	(void)state;
	cache_clock_set_manual(now);
	assert_int_equal(cache_exptime_from_wire(0), 0);
	assert_int_equal(cache_exptime_from_wire(-1), CACHE_EXPTIME_EXPIRED);
	assert_int_equal(cache_exptime_from_wire(INT64_MIN), CACHE_EXPTIME_EXPIRED);
	assert_int_equal(cache_exptime_from_wire(1), now + 1);
	/* exactly 30 days is still relative, one more second is absolute */
	assert_int_equal(cache_exptime_from_wire(CACHE_REALTIME_MAXDELTA),
			 now + CACHE_REALTIME_MAXDELTA);
	assert_int_equal(cache_exptime_from_wire(CACHE_REALTIME_MAXDELTA + 1),
			 CACHE_EXPTIME_EXPIRED);
	assert_int_equal(cache_exptime_from_wire(now), CACHE_EXPTIME_EXPIRED);
	assert_int_equal(cache_exptime_from_wire(now + 1), now + 1);
	assert_int_equal(cache_exptime_from_wire((int64_t)UINT32_MAX + 10), UINT32_MAX);
	assert_int_equal(cache_ttl_remaining(0), -1);
	assert_int_equal(cache_ttl_remaining(now + 60), 60);
	assert_int_equal(cache_ttl_remaining(CACHE_EXPTIME_EXPIRED), 0);
	cache_clock_set_real();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_clock),
		cmocka_unit_test(test_manual_clock),
		cmocka_unit_test(test_exptime_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
