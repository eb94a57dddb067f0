/*
 * tests/cache/cache_fixture.h - the cmocka fixture the cache tests share: a
 * cache, the test thread attached to it, and the manual clock at T0.
 * Include after <cmocka.h>.
 */
#ifndef DPCACHE_TESTS_CACHE_FIXTURE_H
#define DPCACHE_TESTS_CACHE_FIXTURE_H

#include "cache/cache.h"

#define T0 1700000000u

struct fx {
	struct cache *c;
	struct cache_thread *t;
};

/* Creates the cache from 'cfg' and attaches the calling thread. */
static inline int fx_setup(void **state, const struct cache_config *cfg)
{
	static struct fx fx;

	cache_clock_set_manual(T0);
	fx.c = cache_create(cfg);
	assert_non_null(fx.c);
	fx.t = cache_thread_attach(fx.c);
	assert_non_null(fx.t);
	*state = &fx;
	return 0;
}

static inline int fx_teardown(void **state)
{
	struct fx *fx = *state;

	cache_thread_detach(&fx->t);
	assert_null(fx->t);
	cache_destroy(&fx->c);
	assert_null(fx->c);
	cache_clock_set_real();
	return 0;
}

#endif /* DPCACHE_TESTS_CACHE_FIXTURE_H */
