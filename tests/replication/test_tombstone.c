/*
 * tests/replication/test_tombstone.c - the FRESH set: add/contains/count,
 * duplicates, clear (entries freed after a grace period), two threads
 * adding overlapping ranges at once while they test what they added, and
 * clears from a thread that is not a urcu reader while others add.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <urcu-qsbr.h>

#include "replication/tombstone.h"

/* Spread like cache_hash() output, so the table's buckets are used. */
static uint64_t h(uint64_t i)
{
	i += 0x9e3779b97f4a7c15ull;
	i = (i ^ (i >> 30)) * 0xbf58476d1ce4e5b9ull;
	i = (i ^ (i >> 27)) * 0x94d049bb133111ebull;
	return i ^ (i >> 31);
}

static int setup(void **state)
{
	rcu_register_thread();
	*state = tomb_create();
	assert_non_null(*state);
	return 0;
}

static int teardown(void **state)
{
	struct tomb_set *t = *state;

	/* destroy and the barrier wait for grace periods: offline. */
	rcu_thread_offline();
	tomb_destroy(&t);
	assert_null(t);
	tomb_destroy(&t);          /* NULL is fine */
	tomb_destroy(NULL);
	rcu_barrier();
	rcu_unregister_thread();
	return 0;
}

static void test_add_contains_count(void **state)
{
	struct tomb_set *t = *state;

	assert_int_equal(tomb_count(t), 0);
	assert_false(tomb_contains(t, 42));
	assert_int_equal(tomb_add(t, 42), 0);
	assert_true(tomb_contains(t, 42));
	assert_false(tomb_contains(t, 43));
	assert_int_equal(tomb_count(t), 1);
	/* A present hash: no-op. */
	assert_int_equal(tomb_add(t, 42), 0);
	assert_int_equal(tomb_count(t), 1);
	/* 0 and all-ones are ordinary hashes. */
	assert_int_equal(tomb_add(t, 0), 0);
	assert_int_equal(tomb_add(t, UINT64_MAX), 0);
	assert_true(tomb_contains(t, 0));
	assert_true(tomb_contains(t, UINT64_MAX));
	assert_int_equal(tomb_count(t), 3);
	/* Many, past the initial table size (auto-resize). */
	for (uint64_t i = 0; i < 20000; i++)
		assert_int_equal(tomb_add(t, h(i)), 0);
	assert_int_equal(tomb_count(t), 20003);
	for (uint64_t i = 0; i < 20000; i++)
		assert_true(tomb_contains(t, h(i)));
	for (uint64_t i = 20000; i < 21000; i++)
		assert_false(tomb_contains(t, h(i)));
	rcu_quiescent_state();
}

static void test_clear(void **state)
{
	struct tomb_set *t = *state;

	for (uint64_t i = 0; i < 5000; i++)
		assert_int_equal(tomb_add(t, h(i)), 0);
	assert_int_equal(tomb_count(t), 5000);
	tomb_clear(t);
	assert_int_equal(tomb_count(t), 0);
	for (uint64_t i = 0; i < 5000; i++)
		assert_false(tomb_contains(t, h(i)));
	rcu_quiescent_state();
	/* Usable again after a clear; a cleared hash can come back. */
	assert_int_equal(tomb_add(t, h(7)), 0);
	assert_true(tomb_contains(t, h(7)));
	assert_int_equal(tomb_count(t), 1);
	tomb_clear(t);
	tomb_clear(t);             /* clearing an empty set is fine */
	assert_int_equal(tomb_count(t), 0);
	rcu_quiescent_state();
	/* Entries left in the set at destroy are freed by it (LSan checks). */
	for (uint64_t i = 0; i < 100; i++)
		assert_int_equal(tomb_add(t, h(i)), 0);
}

struct adder {
	struct tomb_set *t;
	uint64_t from, to;
	pthread_barrier_t *go;
	unsigned missing;          /* own adds not visible right after */
	int errs;
};

static void *adder_main(void *arg)
{
	struct adder *a = arg;

	rcu_register_thread();
	pthread_barrier_wait(a->go);
	for (uint64_t i = a->from; i < a->to; i++) {
		if (tomb_add(a->t, h(i)) != 0)
			a->errs++;
		if (!tomb_contains(a->t, h(i)))
			a->missing++;
		if ((i & 255) == 0)
			rcu_quiescent_state();
	}
	rcu_unregister_thread();
	return NULL;
}

/* Two threads add overlapping ranges: every hash ends up in the set once. */
static void test_two_threads(void **state)
{
	struct tomb_set *t = *state;
	pthread_barrier_t go;
	struct adder a[2] = {
		{ .t = t, .from = 0, .to = 60000, .go = &go },
		{ .t = t, .from = 30000, .to = 90000, .go = &go },
	};
	pthread_t th[2];

	pthread_barrier_init(&go, NULL, 2);
	/* The main thread waits in join: it must not hold up grace periods
	 * (the table's resize worker waits for them). */
	rcu_thread_offline();
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, adder_main, &a[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	rcu_thread_online();
	pthread_barrier_destroy(&go);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(a[i].errs, 0);
		assert_int_equal(a[i].missing, 0);
	}
	assert_int_equal(tomb_count(t), 90000);
	for (uint64_t i = 0; i < 90000; i++)
		assert_true(tomb_contains(t, h(i)));
	assert_false(tomb_contains(t, h(90000)));
	rcu_quiescent_state();
}

struct tester {
	struct tomb_set *t;
	volatile bool stop;
	uint64_t seen;
};

static void *tester_main(void *arg)
{
	struct tester *x = arg;
	uint64_t i = 0;

	rcu_register_thread();
	while (!__atomic_load_n(&x->stop, __ATOMIC_RELAXED)) {
		if (tomb_contains(x->t, h(i % 4096)))
			__atomic_fetch_add(&x->seen, 1, __ATOMIC_RELAXED);
		if ((++i & 63) == 0)
			rcu_quiescent_state();
	}
	rcu_unregister_thread();
	return NULL;
}

/* A clear while another thread keeps testing: no crash, ends empty. */
static void test_clear_while_reading(void **state)
{
	struct tomb_set *t = *state;
	struct tester x = { .t = t };
	pthread_t th;

	for (uint64_t i = 0; i < 4096; i++)
		assert_int_equal(tomb_add(t, h(i)), 0);
	assert_int_equal(pthread_create(&th, NULL, tester_main, &x), 0);
	/* Make sure the reader runs before the clears start. */
	while (__atomic_load_n(&x.seen, __ATOMIC_RELAXED) == 0) {
		rcu_quiescent_state();
		sched_yield();
	}
	for (int round = 0; round < 20; round++) {
		tomb_clear(t);
		rcu_quiescent_state();
		for (uint64_t i = 0; i < 4096; i++)
			assert_int_equal(tomb_add(t, h(i)), 0);
		rcu_quiescent_state();
	}
	tomb_clear(t);
	__atomic_store_n(&x.stop, true, __ATOMIC_RELAXED);
	rcu_thread_offline();
	pthread_join(th, NULL);
	rcu_thread_online();
	assert_int_equal(tomb_count(t), 0);
	for (uint64_t i = 0; i < 4096; i++)
		assert_false(tomb_contains(t, h(i)));
}

struct clearer {
	struct tomb_set *t;
	unsigned rounds;
};

/* Not a urcu reader at all, like the map watcher that clears the set. */
static void *clearer_main(void *arg)
{
	struct clearer *c = arg;

	for (unsigned i = 0; i < c->rounds; i++)
		tomb_clear(c->t);
	return NULL;
}

/* Clears from an unregistered thread while two readers add and test. */
static void test_clear_from_other_thread(void **state)
{
	struct tomb_set *t = *state;
	pthread_barrier_t go;
	struct adder a[2] = {
		{ .t = t, .from = 0, .to = 40000, .go = &go },
		{ .t = t, .from = 40000, .to = 80000, .go = &go },
	};
	struct clearer c = { .t = t, .rounds = 20 };
	pthread_t th[3];
	uint64_t left = 0;

	pthread_barrier_init(&go, NULL, 2);
	rcu_thread_offline();
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, adder_main, &a[i]), 0);
	assert_int_equal(pthread_create(&th[2], NULL, clearer_main, &c), 0);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < 2; i++)
		assert_int_equal(a[i].errs, 0);
	/* The last clear may have come before the end of the adds: what is
	 * left is a subset, and the count says how much. */
	rcu_thread_online();
	for (uint64_t i = 0; i < 80000; i++)
		left += tomb_contains(t, h(i));
	assert_int_equal(left, tomb_count(t));
	/* A final clear from the unregistered thread empties it. */
	c.rounds = 1;
	rcu_thread_offline();
	assert_int_equal(pthread_create(&th[2], NULL, clearer_main, &c), 0);
	pthread_join(th[2], NULL);
	rcu_thread_online();
	assert_int_equal(tomb_count(t), 0);
	for (uint64_t i = 0; i < 80000; i++)
		assert_false(tomb_contains(t, h(i)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_contains_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clear_while_reading, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clear_from_other_thread, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
