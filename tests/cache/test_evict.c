/*
 * tests/cache/test_evict.c - the memory limit and the eviction policy:
 * filling 10x the limit never goes above it, frequently used keys survive a
 * scan, the ghost set sends a returning key to the main queue, and the
 * sweeper reclaims expired items in the background.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cache/cache.h"
#include "tests/cache/cache_fixture.h"

static int setup_limit(void **state, size_t limit)
{
	struct cache_config cfg = { .mem_limit = limit };

	return fx_setup(state, &cfg);
}

static int setup_4m(void **state)
{
	return setup_limit(state, 4u << 20);
}

static enum cache_status set_kv(struct cache_thread *t, const char *key,
				size_t nbytes, char fill, int64_t exptime)
{
	enum cache_status err = CACHE_OK;
	size_t nkey = strlen(key);
	struct cache_item *it;

	it = cache_item_alloc(t, key, nkey, 0, cache_exptime_from_wire(exptime),
			      nbytes, &err);
	if (it == NULL)
		return err;
	memset(cache_item_value(it), fill, nbytes);
	return cache_store(t, it, cache_hash(key, nkey), NULL, NULL);
}

static const struct cache_item *get(struct cache_thread *t, const char *key)
{
	return cache_get(t, key, strlen(key), cache_hash(key, strlen(key)),
			 NULL, NULL);
}

/* Fill 10x the limit with mixed sizes: every store succeeds, the accounted
 * bytes never exceed the limit, and the cache ends nearly full. */
static void test_fill_10x_limit(void **state)
{
	struct fx *fx = *state;
	struct cache_stats st;
	char key[32];
	uint64_t stored_bytes = 0;
	const size_t limit = 4u << 20;

	for (unsigned i = 0; stored_bytes < 10 * limit; i++) {
		size_t n = 16 + (i * 7919u) % 3000;

		snprintf(key, sizeof(key), "fill:%u", i);
		assert_int_equal(set_kv(fx->t, key, n, 'a' + i % 26, 0), CACHE_OK);
		stored_bytes += n;
		if (i % 64 == 0) {
			cache_stats_get(fx->c, &st);
			assert_true(st.bytes + st.hash_bytes <= limit);
			cache_thread_quiescent(fx->t);
		}
	}
	cache_stats_get(fx->c, &st);
	assert_true(st.bytes + st.hash_bytes <= limit);
	assert_true(st.bytes + st.hash_bytes > limit - 16 * 1024);  /* nearly full */
	assert_true(st.evictions > 0);
	assert_true(st.evicted_unfetched > 0);
	assert_int_equal(st.curr_items, st.small_queue_items + st.main_queue_items);
	/* the newest key is there */
	assert_non_null(get(fx->t, key));
}

/* An item as large as item_size_max still fits a small cache by evicting. */
static void test_large_items_evict(void **state)
{
	struct fx *fx = *state;
	struct cache_stats st;
	char key[32];

	for (unsigned i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "big:%u", i);
		assert_int_equal(set_kv(fx->t, key, 1000 * 1000, 'b', 0), CACHE_OK);
		cache_thread_quiescent(fx->t);
	}
	cache_stats_get(fx->c, &st);
	assert_true(st.bytes + st.hash_bytes <= (4u << 20));
	assert_true(st.curr_items >= 3);
}

/*
 * Scan resistance: a working set read several times survives a one-hit scan
 * of 20x the cache size, with the working set still being read now and then
 * (as in the Zipf + scan benchmark).
 */
static void test_hot_keys_survive_scan(void **state)
{
	struct fx *fx = *state;
	char key[32];
	const unsigned hot = 8000;       /* ~8000 * 230 B = 1.8 MiB of 4 MiB */
	unsigned survived = 0;

	for (unsigned i = 0; i < hot; i++) {
		snprintf(key, sizeof(key), "hot:%u", i);
		assert_int_equal(set_kv(fx->t, key, 100, 'h', 0), CACHE_OK);
	}
	for (unsigned r = 0; r < 2; r++)
		for (unsigned i = 0; i < hot; i++) {
			snprintf(key, sizeof(key), "hot:%u", i);
			assert_non_null(get(fx->t, key));
		}
	for (unsigned i = 0; i < 20 * 4 * 1024 * 1024 / 300; i++) {
		snprintf(key, sizeof(key), "scan:%u", i);
		assert_int_equal(set_kv(fx->t, key, 100, 's', 0), CACHE_OK);
		if (i % 10 == 0) {
			snprintf(key, sizeof(key), "hot:%u", (i / 10) % hot);
			get(fx->t, key);
		}
		if (i % 256 == 0)
			cache_thread_quiescent(fx->t);
	}
	for (unsigned i = 0; i < hot; i++) {
		snprintf(key, sizeof(key), "hot:%u", i);
		if (get(fx->t, key) != NULL)
			survived++;
	}
	print_message("hot keys surviving the scan: %u of %u\n", survived, hot);
	assert_true(survived >= hot * 95 / 100);
}

/* A key evicted from the small queue and stored again goes to main. */
static void test_ghost_sends_to_main(void **state)
{
	struct fx *fx = *state;
	struct cache_stats before, after;
	char key[32];

	assert_int_equal(set_kv(fx->t, "ghost", 100, 'g', 0), CACHE_OK);
	/* push it out with one-hit items */
	for (unsigned i = 0; i < 1000000; i++) {
		/* get() bumps freq, which would save it: look without bumping */
		struct cache_read_opts o = { .no_bump = true };

		if (cache_get(fx->t, "ghost", 5, cache_hash("ghost", 5), &o, NULL) == NULL)
			break;
		snprintf(key, sizeof(key), "push:%u", i);
		assert_int_equal(set_kv(fx->t, key, 100, 'p', 0), CACHE_OK);
		cache_thread_quiescent(fx->t);
	}
	cache_stats_get(fx->c, &before);
	assert_int_equal(set_kv(fx->t, "ghost", 100, 'g', 0), CACHE_OK);
	cache_stats_get(fx->c, &after);
	assert_int_equal(after.main_queue_items, before.main_queue_items + 1);
}

/* A new value for a key that earned its place in main stays in main. */
static void test_update_keeps_main(void **state)
{
	struct fx *fx = *state;
	struct cache_read_opts o = { .no_bump = true };
	uint64_t h = cache_hash("upd", 3);
	const struct cache_item *it;
	char key[32];
	unsigned i;

	assert_int_equal(set_kv(fx->t, "upd", 100, 'u', 0), CACHE_OK);
	assert_non_null(get(fx->t, "upd"));        /* read once: freq 1 */
	for (i = 0; i < 1000000; i++) {
		it = cache_get(fx->t, "upd", 3, h, &o, NULL);
		assert_non_null(it);
		if (cache_item_state(it) & CACHE_ITEM_IN_MAIN)
			break;
		snprintf(key, sizeof(key), "flood:%u", i);
		assert_int_equal(set_kv(fx->t, key, 100, 'f', 0), CACHE_OK);
		cache_thread_quiescent(fx->t);
	}
	assert_true(i < 1000000);
	assert_int_equal(set_kv(fx->t, "upd", 120, 'v', 0), CACHE_OK);
	it = cache_get(fx->t, "upd", 3, h, &o, NULL);
	assert_non_null(it);
	assert_int_equal(it->nbytes, 120);
	assert_true(cache_item_state(it) & CACHE_ITEM_IN_MAIN);
}

/* The background sweeper reclaims expired items nobody looks up. */
static void test_sweeper_reclaims(void **state)
{
	struct fx *fx = *state;
	struct cache_stats st;
	char key[32];
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	for (unsigned i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "exp:%u", i);
		assert_int_equal(set_kv(fx->t, key, 10, 'e', i % 2 ? 5 : 0), CACHE_OK);
	}
	/* the sweeper keeps the table at 1-2 items per bucket */
	cache_thread_offline(fx->t);
	for (unsigned n = 0; n < 250; n++) {   /* up to 5 s */
		cache_stats_get(fx->c, &st);
		if (st.table_buckets >= 2048)
			break;
		nanosleep(&ts, NULL);
	}
	assert_true(st.table_buckets >= 2048);

	cache_clock_advance(6);
	for (unsigned n = 0; n < 250; n++) {   /* up to 5 s */
		cache_stats_get(fx->c, &st);
		if (st.sweeper_reclaimed >= 1500)
			break;
		nanosleep(&ts, NULL);
	}
	cache_thread_online(fx->t);
	cache_stats_get(fx->c, &st);
	assert_int_equal(st.sweeper_reclaimed, 1500);
	assert_int_equal(st.curr_items, 1500);
	assert_true(st.sweeper_runs > 0);
	assert_true(st.expired_unfetched >= 1500);

	/* and flushed ones */
	cache_flush(fx->t, 0);
	cache_thread_offline(fx->t);
	for (unsigned n = 0; n < 250; n++) {
		cache_stats_get(fx->c, &st);
		if (st.curr_items == 0)
			break;
		nanosleep(&ts, NULL);
	}
	cache_thread_online(fx->t);
	assert_int_equal(st.curr_items, 0);
	assert_int_equal(st.bytes, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fill_10x_limit, setup_4m, fx_teardown),
		cmocka_unit_test_setup_teardown(test_large_items_evict, setup_4m, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hot_keys_survive_scan, setup_4m, fx_teardown),
		cmocka_unit_test_setup_teardown(test_ghost_sends_to_main, setup_4m, fx_teardown),
		cmocka_unit_test_setup_teardown(test_update_keeps_main, setup_4m, fx_teardown),
		cmocka_unit_test_setup_teardown(test_sweeper_reclaims, setup_4m, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
