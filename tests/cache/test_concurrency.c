/*
 * tests/cache/test_concurrency.c - races between threads: CAS increments on
 * one key (exactly the expected successes, no lost update), incr on one key,
 * CAS uniqueness across threads, and a mixed set/get/delete/expire storm
 * under a small memory limit (values self-check, the limit holds, nothing
 * leaks).
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache/cache.h"

#define NTHREADS 4

struct shared {
	struct cache *c;
	unsigned iters;
	uint64_t successes[NTHREADS];
	uint64_t failures[NTHREADS];
	uint64_t *cas_seen[NTHREADS];
	unsigned idx[NTHREADS];
	bool bad_value;
};

struct worker {
	struct shared *sh;
	unsigned id;
};

static void run_threads(struct shared *sh, void *(*fn)(void *))
{
	pthread_t th[NTHREADS];
	struct worker w[NTHREADS];

	for (unsigned i = 0; i < NTHREADS; i++) {
		w[i].sh = sh;
		w[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, fn, &w[i]), 0);
	}
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
}

static enum cache_status store_str(struct cache_thread *t, const char *key,
				   const char *val, enum cache_store_mode m,
				   uint64_t cas, uint64_t *cas_out)
{
	struct cache_store_args a = { .mode = m, .cas_compare = cas };
	enum cache_status err = CACHE_OK;
	struct cache_item *it;
	size_t n = strlen(val);

	it = cache_item_alloc(t, key, strlen(key), 0, 0, n, &err);
	if (it == NULL)
		return err;
	memcpy(cache_item_value(it), val, n);
	return cache_store(t, it, cache_hash(key, strlen(key)), &a, cas_out);
}

/* gets + cas loop: read the counter, store counter+1 with the CAS read. */
static void *cas_worker(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	struct cache_thread *t = cache_thread_attach(sh->c);
	uint64_t h = cache_hash("ctr", 3);

	for (unsigned done = 0; done < sh->iters;) {
		const struct cache_item *it = cache_get(t, "ctr", 3, h, NULL, NULL);
		char buf[32];
		uint64_t v, cas;

		if (it == NULL || it->nbytes >= sizeof(buf)) {
			sh->bad_value = true;
			break;
		}
		memcpy(buf, cache_item_value_const(it), it->nbytes);
		buf[it->nbytes] = '\0';
		v = strtoull(buf, NULL, 10);
		cas = it->cas;
		snprintf(buf, sizeof(buf), "%" PRIu64, v + 1);
		if (done % 4 == 0)
			sched_yield(); /* let the others race us to the store */
		if (store_str(t, "ctr", buf, CACHE_CAS, cas, NULL) == CACHE_OK) {
			sh->successes[w->id]++;
			done++;
		} else {
			sh->failures[w->id]++;
		}
		cache_thread_quiescent(t);
	}
	cache_thread_detach(&t);
	return NULL;
}

static void test_cas_race_no_lost_update(void **state)
{
	struct cache_config cfg = { .mem_limit = 8u << 20 };
	struct shared sh = { .iters = 3000 };
	struct cache_thread *t;
	const struct cache_item *it;
	uint64_t total = 0, fails = 0;

	(void)state;
	sh.c = cache_create(&cfg);
	assert_non_null(sh.c);
	t = cache_thread_attach(sh.c);
	assert_int_equal(store_str(t, "ctr", "0", CACHE_SET, 0, NULL), CACHE_OK);
	cache_thread_offline(t);
	run_threads(&sh, cas_worker);
	cache_thread_online(t);
	assert_false(sh.bad_value);
	for (unsigned i = 0; i < NTHREADS; i++) {
		total += sh.successes[i];
		fails += sh.failures[i];
	}
	assert_int_equal(total, NTHREADS * sh.iters);
	it = cache_get(t, "ctr", 3, cache_hash("ctr", 3), NULL, NULL);
	assert_non_null(it);
	{
		char buf[32];

		memcpy(buf, cache_item_value_const(it), it->nbytes);
		buf[it->nbytes] = '\0';
		assert_int_equal(strtoull(buf, NULL, 10), NTHREADS * sh.iters);
	}
	print_message("cas race: %" PRIu64 " successes, %" PRIu64 " EXISTS\n",
		      total, fails);
	cache_thread_detach(&t);
	cache_destroy(&sh.c);
}

static void *incr_worker(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	struct cache_thread *t = cache_thread_attach(sh->c);
	struct cache_arith_args a = { .incr = true, .delta = 1 };
	uint64_t h = cache_hash("n", 1);

	for (unsigned i = 0; i < sh->iters; i++) {
		if (cache_arith(t, "n", 1, h, &a, NULL, NULL) == CACHE_OK)
			sh->successes[w->id]++;
		cache_thread_quiescent(t);
	}
	cache_thread_detach(&t);
	return NULL;
}

static void test_incr_race(void **state)
{
	struct cache_config cfg = { .mem_limit = 8u << 20 };
	struct shared sh = { .iters = 5000 };
	struct cache_thread *t;
	struct cache_arith_args a = { .incr = true, .delta = 0 };
	uint64_t v = 0;

	(void)state;
	sh.c = cache_create(&cfg);
	t = cache_thread_attach(sh.c);
	assert_int_equal(store_str(t, "n", "0", CACHE_SET, 0, NULL), CACHE_OK);
	cache_thread_offline(t);
	run_threads(&sh, incr_worker);
	cache_thread_online(t);
	assert_int_equal(cache_arith(t, "n", 1, cache_hash("n", 1), &a, &v, NULL),
			 CACHE_OK);
	assert_int_equal(v, NTHREADS * sh.iters);
	cache_thread_detach(&t);
	cache_destroy(&sh.c);
}

static void *unique_worker(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	struct cache_thread *t = cache_thread_attach(sh->c);
	char key[32];

	for (unsigned i = 0; i < sh->iters; i++) {
		uint64_t cas = 0;

		/* same keys from every thread, so CAS Lamport bumps interleave */
		snprintf(key, sizeof(key), "u%u", i % 64);
		if (store_str(t, key, "v", CACHE_SET, 0, &cas) == CACHE_OK)
			sh->cas_seen[w->id][sh->idx[w->id]++] = cas;
		cache_thread_quiescent(t);
	}
	cache_thread_detach(&t);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_cas_unique_across_threads(void **state)
{
	struct cache_config cfg = { .mem_limit = 8u << 20 };
	struct shared sh = { .iters = 5000 };
	uint64_t *all;
	size_t n = 0;

	(void)state;
	sh.c = cache_create(&cfg);
	for (unsigned i = 0; i < NTHREADS; i++)
		sh.cas_seen[i] = calloc(sh.iters, sizeof(uint64_t));
	run_threads(&sh, unique_worker);
	all = calloc(NTHREADS * sh.iters, sizeof(uint64_t));
	for (unsigned i = 0; i < NTHREADS; i++) {
		memcpy(all + n, sh.cas_seen[i], sh.idx[i] * sizeof(uint64_t));
		n += sh.idx[i];
		free(sh.cas_seen[i]);
	}
	assert_int_equal(n, NTHREADS * sh.iters);
	qsort(all, n, sizeof(uint64_t), cmp_u64);
	for (size_t i = 0; i < n; i++) {
		assert_true(all[i] != 0);
		if (i > 0)
			assert_true(all[i] != all[i - 1]);
	}
	free(all);
	cache_destroy(&sh.c);
}

/* Values are "key|key|key..." so a reader can tell a wrong or torn item. */
static size_t fill_value(char *buf, size_t cap, const char *key, unsigned len)
{
	size_t nk = strlen(key), n = 0;

	while (n < len && n < cap) {
		buf[n] = key[n % nk];
		n++;
	}
	return n;
}

static void *storm_worker(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	struct cache_thread *t = cache_thread_attach(sh->c);
	unsigned seed = w->id * 7919u + 1;
	char key[32], val[2048];

	for (unsigned i = 0; i < sh->iters; i++) {
		unsigned k = (unsigned)rand_r(&seed) % 2000;
		unsigned op = (unsigned)rand_r(&seed) % 10;
		uint64_t h;

		snprintf(key, sizeof(key), "storm:%u", k);
		h = cache_hash(key, strlen(key));
		if (op < 5) {
			const struct cache_item *it = cache_get(t, key, strlen(key), h,
								NULL, NULL);
			if (it != NULL) {
				size_t n = fill_value(val, sizeof(val), key, it->nbytes);

				if (n != it->nbytes ||
				    memcmp(val, cache_item_value_const(it), n) != 0)
					sh->bad_value = true;
			}
		} else if (op < 8) {
			unsigned len = 1 + (unsigned)rand_r(&seed) % 2000;
			struct cache_store_args a = { .mode = CACHE_SET };
			enum cache_status err;
			struct cache_item *it = cache_item_alloc(t, key, strlen(key), 0,
				op == 7 ? cache_exptime_from_wire(-1) : 0, len, &err);

			if (it != NULL) {
				fill_value(cache_item_value(it), len, key, len);
				if (cache_store(t, it, h, &a, NULL) == CACHE_OK)
					sh->successes[w->id]++;
			} else {
				sh->failures[w->id]++;
			}
		} else {
			cache_delete(t, key, strlen(key), h, 0);
		}
		cache_thread_quiescent(t);
	}
	cache_thread_detach(&t);
	return NULL;
}

static void test_mixed_storm(void **state)
{
	const size_t limit = 1u << 20;
	struct cache_config cfg = { .mem_limit = limit };
	struct shared sh = { .iters = 40000 };
	struct cache_stats st;

	(void)state;
	sh.c = cache_create(&cfg);
	run_threads(&sh, storm_worker);
	assert_false(sh.bad_value);
	for (unsigned i = 0; i < NTHREADS; i++)
		assert_int_equal(sh.failures[i], 0); /* never NO_MEMORY */
	cache_stats_get(sh.c, &st);
	assert_true(st.bytes + st.hash_bytes <= limit);
	assert_true(st.evictions > 0);
	cache_destroy(&sh.c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cas_race_no_lost_update),
		cmocka_unit_test(test_incr_race),
		cmocka_unit_test(test_cas_unique_across_threads),
		cmocka_unit_test(test_mixed_storm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
