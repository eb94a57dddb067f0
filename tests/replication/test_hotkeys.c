/*
 * tests/replication/test_hotkeys.c - the per-thread Space-Saving sketch
 * and the node's rate table: a Zipf stream's top keys found in order, the
 * N/K guarantee, sampling scaled back up, a held lock costing a counted
 * skip and never a wait, drains that empty, binary and 250-byte keys, keys
 * that share a hash kept apart, the index kept consistent through many
 * replacements, exact decay arithmetic, forgetting, ordering and the
 * capacity bound, sums across workers, bad arguments, and one thread
 * counting while another drains every millisecond.
 *
 * The file includes hotkeys.c itself: the contention test must hold the
 * sketch's private mutex, and the index check walks private fields. The
 * library's copy is then never pulled from the archive.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "replication/hotkeys.c"

/* Spread like cache_hash() output. */
static uint64_t h(uint64_t i)
{
	i += 0x9e3779b97f4a7c15ull;
	i = (i ^ (i >> 30)) * 0xbf58476d1ce4e5b9ull;
	i = (i ^ (i >> 27)) * 0x94d049bb133111ebull;
	return i ^ (i >> 31);
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Key i as text, "key:<i>". */
static size_t keyname(char *buf, unsigned i)
{
	return (size_t)snprintf(buf, 32, "key:%u", i);
}

static void count_key(struct hot_sketch *s, unsigned i, bool write)
{
	char k[32];
	size_t n = keyname(k, i);

	hot_sketch_count(s, k, n, h(i), write);
}

/* A Zipf(alpha) sampler over [0, nkeys): cumulative weights, binary search. */
struct zipf {
	unsigned n;
	double *cdf;
};

static void zipf_init(struct zipf *z, unsigned n, double alpha)
{
	double sum = 0;

	z->n = n;
	z->cdf = malloc(n * sizeof(double));
	assert_non_null(z->cdf);
	for (unsigned i = 0; i < n; i++) {
		sum += 1.0 / pow(i + 1, alpha);
		z->cdf[i] = sum;
	}
	for (unsigned i = 0; i < n; i++)
		z->cdf[i] /= sum;
}

static unsigned zipf_next(const struct zipf *z)
{
	double u = (double)(rng() >> 11) / (double)(1ull << 53);
	unsigned lo = 0, hi = z->n - 1;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (z->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Every live entry is reachable from its home slot before an empty slot,
 * and the index holds exactly 'used' entries. */
static void check_index(struct hot_sketch *s)
{
	uint32_t filled = 0;

	for (uint32_t i = 0; i <= s->mask; i++)
		if (s->index[i] != 0) {
			assert_true(s->index[i] <= s->used);
			filled++;
		}
	assert_int_equal(filled, s->used);
	for (uint32_t e = 0; e < s->used; e++) {
		uint32_t i = hot_home(s->entries[e].hash, s->shift);

		while (s->index[i] != e + 1) {
			assert_int_not_equal(s->index[i], 0);
			i = (i + 1) & s->mask;
		}
	}
}

static void test_zipf_top_in_order(void **state)
{
	struct hot_sketch *s = hot_sketch_create(64, 1);
	struct hot_count out[64];
	uint64_t truth[2000] = { 0 }, req, skp;
	struct zipf z;
	unsigned n;

	assert_non_null(s);
	zipf_init(&z, 2000, 1.2);
	for (unsigned r = 0; r < 200000; r++) {
		unsigned k = zipf_next(&z);

		truth[k]++;
		count_key(s, k, false);
	}
	check_index(s);
	n = hot_sketch_drain(s, out, 64, &req, &skp);
	assert_int_equal(n, 64);
	assert_int_equal(req, 200000);
	assert_int_equal(skp, 0);
	/* The ten hottest, in order; their counts only overestimate. */
	for (unsigned i = 0; i < 10; i++) {
		char k[32];
		size_t kl = keyname(k, i);

		assert_int_equal(out[i].nkey, kl);
		assert_memory_equal(out[i].key, k, kl);
		assert_int_equal(out[i].hash, h(i));
		assert_true(out[i].reads >= truth[i]);
		assert_true(out[i].reads <= truth[i] + 200000 / 64);
		assert_int_equal(out[i].writes, 0);
	}
	/* Largest first all the way down; the counters sum to N. */
	uint64_t sum = 0;
	for (unsigned i = 0; i < n; i++) {
		if (i > 0)
			assert_true(out[i - 1].reads >= out[i].reads);
		sum += out[i].reads;
	}
	assert_int_equal(sum, 200000);
	free(z.cdf);
	hot_sketch_destroy(&s);
	assert_null(s);
}

/* One key at just over N/K, hidden among keys seen once each, placed last
 * (the worst case for it): it must still be in the summary. */
static void test_frequent_key_always_present(void **state)
{
	const unsigned K = 16, N = 16000;
	struct hot_sketch *s = hot_sketch_create(K, 1);
	struct hot_count out[16];
	unsigned hot = N / K + 1, unique = 100000, n;
	bool found = false;

	assert_non_null(s);
	/* The others first, then the hot key's hits spread through the end
	 * of the stream interleaved with fresh keys. */
	for (unsigned i = 0; i < N - 2 * hot; i++)
		count_key(s, unique++, false);
	for (unsigned i = 0; i < hot; i++) {
		count_key(s, unique++, false);
		count_key(s, 7, i % 3 == 0);
	}
	check_index(s);
	n = hot_sketch_drain(s, out, 16, NULL, NULL);
	assert_int_equal(n, K);
	for (unsigned i = 0; i < n; i++) {
		char k[32];
		size_t kl = keyname(k, 7);

		if (out[i].nkey == kl && memcmp(out[i].key, k, kl) == 0) {
			found = true;
			assert_true(out[i].reads + out[i].writes >= hot);
			assert_true(out[i].writes >= (hot + 2) / 3);
		}
	}
	assert_true(found);
	hot_sketch_destroy(&s);
}

static void test_sampling_scales(void **state)
{
	struct hot_sketch *s = hot_sketch_create(32, 8);
	struct hot_count out[32];
	uint64_t req;
	unsigned n;

	assert_non_null(s);
	/* One key only: exactly 1 in 8 is seen, each counting 8. */
	for (unsigned i = 0; i < 8000; i++)
		count_key(s, 1, i % 4 == 0);
	n = hot_sketch_drain(s, out, 32, &req, NULL);
	assert_int_equal(req, 8000);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].reads + out[0].writes, 8000);
	/* i % 8 == 7 is sampled: every sampled one is a read. */
	assert_int_equal(out[0].writes, 0);

	/* Key 1 is half of a random stream, key 2 a quarter. */
	for (unsigned i = 0; i < 400000; i++) {
		uint64_t r = rng() % 4;
		count_key(s, r < 2 ? 1 : r == 2 ? 2 : 1000 + rng() % 1000,
			  false);
	}
	n = hot_sketch_drain(s, out, 32, &req, NULL);
	assert_int_equal(req, 400000);
	assert_true(n >= 2);
	assert_int_equal(out[0].hash, h(1));
	assert_int_equal(out[1].hash, h(2));
	assert_true(fabs((double)out[0].reads - 200000) < 200000 * 0.05);
	assert_true(fabs((double)out[1].reads - 100000) < 100000 * 0.07);
	hot_sketch_destroy(&s);
}

static void test_held_lock_skips(void **state)
{
	struct hot_sketch *s = hot_sketch_create(8, 2);
	struct hot_count out[8];
	uint64_t req, skp;

	assert_non_null(s);
	/* Another thread's drain in progress: the lock is held. Nothing
	 * below may block (the test would hang). */
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < 100; i++)
		count_key(s, i % 3, false);
	pthread_mutex_unlock(&s->lock);
	assert_int_equal(hot_sketch_drain(s, out, 8, &req, &skp), 0);
	assert_int_equal(req, 100);
	assert_int_equal(skp, 50);
	/* Counted once only. */
	assert_int_equal(hot_sketch_drain(s, out, 8, &req, &skp), 0);
	assert_int_equal(req, 0);
	assert_int_equal(skp, 0);
	hot_sketch_destroy(&s);
}

static void test_drain_empties(void **state)
{
	struct hot_sketch *s = hot_sketch_create(4, 1);
	struct hot_count out[4];
	uint64_t req = 99, skp = 99;

	assert_non_null(s);
	assert_int_equal(hot_sketch_drain(s, out, 4, &req, &skp), 0);
	assert_int_equal(req, 0);
	assert_int_equal(skp, 0);
	for (unsigned i = 0; i < 10; i++)
		count_key(s, i, i & 1);
	/* max smaller than the summary: the largest only, and still all of
	 * it emptied. */
	assert_int_equal(hot_sketch_drain(s, out, 2, &req, NULL), 2);
	assert_int_equal(req, 10);
	assert_int_equal(hot_sketch_drain(s, out, 4, &req, NULL), 0);
	assert_int_equal(req, 0);
	check_index(s);
	/* Usable again after a drain, with fresh counts. */
	count_key(s, 5, true);
	count_key(s, 5, true);
	assert_int_equal(hot_sketch_drain(s, out, 4, &req, NULL), 1);
	assert_int_equal(out[0].writes, 2);
	assert_int_equal(out[0].reads, 0);
	/* Nothing to copy into. */
	count_key(s, 5, true);
	assert_int_equal(hot_sketch_drain(s, NULL, 4, &req, NULL), 0);
	assert_int_equal(req, 1);
	assert_int_equal(hot_sketch_drain(s, out, 4, NULL, NULL), 0);
	hot_sketch_destroy(&s);
}

static void test_binary_and_long_keys(void **state)
{
	struct hot_sketch *s = hot_sketch_create(8, 1);
	struct hot_table *t = hot_table_create(8, 0.0);
	struct hot_count out[8];
	struct hot_rate rates[8];
	char longkey[CACHE_KEY_MAX], toolong[CACHE_KEY_MAX + 1];
	const char bin[] = { 'a', '\0', '\xff', '\n', ' ' };
	unsigned n;

	assert_non_null(s);
	assert_non_null(t);
	for (unsigned i = 0; i < CACHE_KEY_MAX; i++)
		longkey[i] = (char)('A' + i % 26);
	memset(toolong, 'x', sizeof(toolong));
	for (unsigned i = 0; i < 3; i++)
		hot_sketch_count(s, longkey, sizeof(longkey), 11, false);
	for (unsigned i = 0; i < 2; i++)
		hot_sketch_count(s, bin, sizeof(bin), 12, true);
	/* Not keys: counted as requests, never summarised. */
	hot_sketch_count(s, toolong, sizeof(toolong), 13, false);
	hot_sketch_count(s, "", 0, 14, false);
	uint64_t req;
	n = hot_sketch_drain(s, out, 8, &req, NULL);
	assert_int_equal(req, 7);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].nkey, CACHE_KEY_MAX);
	assert_memory_equal(out[0].key, longkey, CACHE_KEY_MAX);
	assert_int_equal(out[0].reads, 3);
	assert_int_equal(out[1].nkey, sizeof(bin));
	assert_memory_equal(out[1].key, bin, sizeof(bin));
	assert_int_equal(out[1].writes, 2);

	/* And through the table. */
	assert_int_equal(hot_table_add(t, out, n), 0);
	hot_table_tick(t, 1.0, 0.0);
	assert_int_equal(hot_table_top(t, rates, 8), 2);
	assert_int_equal(rates[0].nkey, CACHE_KEY_MAX);
	assert_memory_equal(rates[0].key, longkey, CACHE_KEY_MAX);
	assert_true(rates[0].reads == 3.0);
	assert_int_equal(rates[1].nkey, sizeof(bin));
	assert_memory_equal(rates[1].key, bin, sizeof(bin));
	assert_true(rates[1].writes == 2.0);
	hot_sketch_destroy(&s);
	hot_table_destroy(&t);
}

static void test_hash_collision_kept_apart(void **state)
{
	struct hot_sketch *s = hot_sketch_create(4, 1);
	struct hot_table *t = hot_table_create(4, 0.0);
	struct hot_count out[4];
	struct hot_rate rates[4];
	unsigned n;

	assert_non_null(s);
	assert_non_null(t);
	/* "a\0b" and "a\0c" with one hash; "a" is a prefix of both. */
	for (unsigned i = 0; i < 5; i++)
		hot_sketch_count(s, "a\0b", 3, 42, false);
	for (unsigned i = 0; i < 3; i++)
		hot_sketch_count(s, "a\0c", 3, 42, false);
	hot_sketch_count(s, "a", 1, 42, true);
	check_index(s);
	n = hot_sketch_drain(s, out, 4, NULL, NULL);
	assert_int_equal(n, 3);
	assert_memory_equal(out[0].key, "a\0b", 3);
	assert_int_equal(out[0].reads, 5);
	assert_memory_equal(out[1].key, "a\0c", 3);
	assert_int_equal(out[1].reads, 3);
	assert_int_equal(out[2].nkey, 1);
	assert_int_equal(out[2].writes, 1);

	assert_int_equal(hot_table_add(t, out, n), 0);
	assert_int_equal(hot_table_add(t, out, n), 0);
	hot_table_tick(t, 1.0, 0.0);
	assert_int_equal(hot_table_top(t, rates, 4), 3);
	assert_memory_equal(rates[0].key, "a\0b", 3);
	assert_true(rates[0].reads == 10.0);
	assert_memory_equal(rates[1].key, "a\0c", 3);
	assert_true(rates[1].reads == 6.0);
	assert_int_equal(rates[2].nkey, 1);
	assert_true(rates[2].writes == 2.0);
	hot_sketch_destroy(&s);
	hot_table_destroy(&t);
}

/* Many replacements with few distinct hashes (long probe runs that wrap
 * around the index): backward-shift deletion keeps every entry findable,
 * and the Space-Saving invariant (counters sum to N) holds. */
static void test_index_through_replacements(void **state)
{
	struct hot_sketch *s = hot_sketch_create(8, 1);
	struct hot_count out[8];
	uint64_t sum = 0;
	unsigned n;

	assert_non_null(s);
	for (unsigned r = 0; r < 20000; r++) {
		unsigned k = (unsigned)(rng() % 40);
		char kb[32];
		size_t kl = keyname(kb, k);

		/* 5 distinct hashes, spread over the index or clustered. */
		hot_sketch_count(s, kb, kl, r & 1 ? h(k % 5) : k % 5, false);
		if (r % 97 == 0)
			check_index(s);
	}
	check_index(s);
	n = hot_sketch_drain(s, out, 8, NULL, NULL);
	assert_int_equal(n, 8);
	for (unsigned i = 0; i < n; i++)
		sum += out[i].reads;
	assert_int_equal(sum, 20000);
	hot_sketch_destroy(&s);
}

/* Each replacement takes a smallest counter: the newcomer inherits
 * exactly the minimum count of the full summary before it came. */
static void test_replacement_takes_minimum(void **state)
{
	struct hot_sketch *s = hot_sketch_create(8, 1);
	unsigned replaced = 0;

	assert_non_null(s);
	for (unsigned r = 0; r < 20000; r++) {
		/* Two keys at a quarter each, far above the rest: a pick
		 * that is not the minimum shows. */
		unsigned k = r % 2 == 0 ? (unsigned)(rng() % 2) :
			  100 + (unsigned)(rng() % 1000);
		char kb[32];
		size_t kl = keyname(kb, k);
		uint64_t min = UINT64_MAX;
		bool present = false, full;

		if (r == 10000)         /* the minimum starts again at 0 */
			hot_sketch_drain(s, NULL, 0, NULL, NULL);
		full = s->used == s->capacity;

		for (uint32_t e = 0; e < s->used; e++) {
			if (s->counts[e] < min)
				min = s->counts[e];
			if (s->entries[e].nkey == kl &&
			    memcmp(s->entries[e].key, kb, kl) == 0)
				present = true;
		}
		hot_sketch_count(s, kb, kl, h(k), false);
		if (present || !full)
			continue;
		for (uint32_t e = 0; e < s->used; e++)
			if (s->entries[e].nkey == kl &&
			    memcmp(s->entries[e].key, kb, kl) == 0) {
				assert_int_equal(s->entries[e].error, min);
				assert_int_equal(s->counts[e], min + 1);
				replaced++;
			}
	}
	assert_true(replaced > 1000);
	hot_sketch_destroy(&s);
}

static struct hot_count hc(unsigned key, uint64_t reads, uint64_t writes)
{
	struct hot_count c = { .hash = h(key), .reads = reads,
			       .writes = writes };

	c.nkey = (uint8_t)keyname(c.key, key);
	return c;
}

static void test_table_decay_exact(void **state)
{
	struct hot_table *t = hot_table_create(16, 0.5);
	struct hot_rate r[4];
	struct hot_count c;

	assert_non_null(t);
	c = hc(1, 100, 4);
	assert_int_equal(hot_table_add(t, &c, 1), 0);
	/* Not ranked before its first tick. */
	assert_int_equal(hot_table_top(t, r, 4), 0);
	hot_table_tick(t, 2.0, 5.0);
	assert_int_equal(hot_table_top(t, r, 4), 1);
	assert_true(r[0].reads == 25.0);    /* 0.5 * 0 + 0.5 * 100 / 2 */
	assert_true(r[0].writes == 1.0);    /* 0.5 * 4 / 2 */
	c = hc(1, 20, 0);
	assert_int_equal(hot_table_add(t, &c, 1), 0);
	hot_table_tick(t, 2.0, 5.0);
	assert_int_equal(hot_table_top(t, r, 4), 1);
	assert_true(r[0].reads == 17.5);    /* 0.5 * 25 + 0.5 * 20 / 2 */
	assert_true(r[0].writes == 0.5);
	hot_table_tick(t, 2.0, 5.0);        /* not seen: decays */
	assert_int_equal(hot_table_top(t, r, 4), 1);
	assert_true(r[0].reads == 8.75);
	assert_true(r[0].writes == 0.25);
	hot_table_tick(t, 2.0, 5.0);        /* 4.375 + 0.125 < 5: forgotten */
	assert_int_equal(hot_table_top(t, r, 4), 0);
	hot_table_destroy(&t);
}

static void test_table_forget(void **state)
{
	struct hot_table *t = hot_table_create(16, 0.5);
	struct hot_rate r[4];
	struct hot_count c[2] = { hc(1, 40, 0), hc(2, 8, 0) };

	assert_non_null(t);
	assert_int_equal(hot_table_add(t, c, 2), 0);
	hot_table_tick(t, 1.0, 5.0);
	/* key 1: 20/s; key 2: 4/s < 5, forgotten at once. */
	assert_int_equal(hot_table_top(t, r, 4), 1);
	assert_int_equal(r[0].hash, h(1));
	assert_true(r[0].reads == 20.0);
	hot_table_tick(t, 1.0, 5.0);        /* 10 */
	hot_table_tick(t, 1.0, 5.0);        /* 5: not under 5, kept */
	assert_int_equal(hot_table_top(t, r, 4), 1);
	assert_true(r[0].reads == 5.0);
	hot_table_tick(t, 1.0, 5.0);        /* 2.5: gone */
	assert_int_equal(hot_table_top(t, r, 4), 0);
	/* A forgotten key comes back from 0. */
	assert_int_equal(hot_table_add(t, c, 1), 0);
	hot_table_tick(t, 1.0, 5.0);
	assert_int_equal(hot_table_top(t, r, 4), 1);
	assert_true(r[0].reads == 20.0);
	hot_table_destroy(&t);
}

static void test_table_order_capacity_sum(void **state)
{
	struct hot_table *t = hot_table_create(3, 0.0);
	struct hot_rate r[8];
	/* Two workers' drains; keys 1 and 3 reported by both. */
	struct hot_count w1[3] = { hc(1, 10, 0), hc(3, 5, 5), hc(5, 1, 0) };
	struct hot_count w2[3] = { hc(3, 0, 25), hc(1, 30, 0), hc(4, 2, 0) };
	struct hot_count w3[1] = { hc(6, 3, 0) };

	assert_non_null(t);
	assert_int_equal(hot_table_add(t, w1, 3), 0);
	assert_int_equal(hot_table_add(t, w2, 3), 0);
	assert_int_equal(hot_table_add(t, w3, 1), 0);
	assert_int_equal(hot_table_add(t, NULL, 0), 0);
	hot_table_tick(t, 1.0, 0.0);
	/* key 1: 40, key 3: 35 (5 r + 30 w), key 6: 3, key 4: 2, key 5: 1;
	 * capacity 3. */
	assert_int_equal(hot_table_top(t, r, 8), 3);
	assert_int_equal(r[0].hash, h(1));
	assert_true(r[0].reads == 40.0 && r[0].writes == 0.0);
	assert_int_equal(r[1].hash, h(3));
	assert_true(r[1].reads == 5.0 && r[1].writes == 30.0);
	assert_int_equal(r[2].hash, h(6));
	assert_int_equal(hot_table_top(t, r, 2), 2);
	assert_int_equal(hot_table_top(t, r, 0), 0);

	/* Many keys in one interval: the table grows, then keeps 3. */
	for (unsigned i = 0; i < 5000; i++) {
		struct hot_count c = hc(100 + i, 1000 + i, 0);

		assert_int_equal(hot_table_add(t, &c, 1), 0);
	}
	hot_table_tick(t, 1.0, 0.0);
	assert_int_equal(hot_table_top(t, r, 8), 3);
	assert_int_equal(r[0].hash, h(5099));
	assert_int_equal(r[1].hash, h(5098));
	assert_int_equal(r[2].hash, h(5097));
	/* An insane interval changes nothing. */
	hot_table_tick(t, 0.0, 1e9);
	hot_table_tick(t, NAN, 1e9);
	assert_int_equal(hot_table_top(t, r, 8), 3);
	hot_table_destroy(&t);
}

static void test_bad_args(void **state)
{
	struct hot_sketch *s;
	struct hot_table *t;
	struct hot_count c = hc(1, 1, 1);

	errno = 0;
	assert_null(hot_sketch_create(0, 8));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(hot_sketch_create(4097, 8));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(hot_sketch_create(16, 0));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(hot_sketch_create(16, 65537));
	assert_int_equal(errno, EINVAL);
	s = hot_sketch_create(4096, 65536);
	assert_non_null(s);
	hot_sketch_destroy(&s);
	s = hot_sketch_create(1, 1);       /* one counter: still a summary */
	assert_non_null(s);
	count_key(s, 1, false);
	count_key(s, 2, false);
	count_key(s, 2, false);
	check_index(s);
	struct hot_count out[1];
	assert_int_equal(hot_sketch_drain(s, out, 1, NULL, NULL), 1);
	assert_int_equal(out[0].hash, h(2));
	assert_int_equal(out[0].reads, 3);
	hot_sketch_destroy(&s);
	hot_sketch_destroy(&s);
	hot_sketch_destroy(NULL);
	uint64_t req = 5;
	assert_int_equal(hot_sketch_drain(NULL, out, 1, &req, NULL), 0);
	assert_int_equal(req, 0);

	errno = 0;
	assert_null(hot_table_create(0, 0.5));
	assert_int_equal(errno, EINVAL);
	assert_null(hot_table_create(65537, 0.5));
	assert_null(hot_table_create(8, 1.0));
	assert_null(hot_table_create(8, -0.1));
	assert_null(hot_table_create(8, NAN));
	t = hot_table_create(65536, 0.0);
	assert_non_null(t);
	assert_int_equal(hot_table_add(t, NULL, 1), -EINVAL);
	assert_int_equal(hot_table_add(NULL, &c, 1), -EINVAL);
	c.nkey = 0;                         /* not a key: skipped */
	assert_int_equal(hot_table_add(t, &c, 1), 0);
	c.nkey = 255;
	assert_int_equal(hot_table_add(t, &c, 1), 0);
	hot_table_tick(t, 1.0, 0.0);
	struct hot_rate r[1];
	assert_int_equal(hot_table_top(t, r, 1), 0);
	assert_int_equal(hot_table_top(NULL, r, 1), 0);
	hot_table_tick(NULL, 1.0, 0.0);
	hot_table_destroy(&t);
	assert_null(t);
	hot_table_destroy(&t);
	hot_table_destroy(NULL);
}

/* ---- one thread counts, another drains every millisecond ---- */

#define RACE_REQUESTS 1000000u

struct race {
	struct hot_sketch *s;
	int done;                       /* atomic */
};

static void *race_counter(void *arg)
{
	struct race *r = arg;

	for (unsigned i = 0; i < RACE_REQUESTS; i++)
		count_key(r->s, i % 1000 < 500 ? i % 7 : i % 1000, i % 5 == 0);
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_count_while_draining(void **state)
{
	struct race r = { .s = hot_sketch_create(32, 2) };
	struct hot_count out[32];
	uint64_t total = 0, skipped = 0, req, skp;
	unsigned drains = 0;
	pthread_t th;

	assert_non_null(r.s);
	assert_int_equal(pthread_create(&th, NULL, race_counter, &r), 0);
	while (!__atomic_load_n(&r.done, __ATOMIC_ACQUIRE)) {
		struct timespec ms = { 0, 1000000 };

		hot_sketch_drain(r.s, out, 32, &req, &skp);
		total += req;
		skipped += skp;
		drains++;
		nanosleep(&ms, NULL);
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	hot_sketch_drain(r.s, out, 32, &req, &skp);
	total += req;
	skipped += skp;
	assert_int_equal(total, RACE_REQUESTS);
	assert_true(skipped <= RACE_REQUESTS / 2);
	assert_true(drains >= 1);
	hot_sketch_destroy(&r.s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zipf_top_in_order),
		cmocka_unit_test(test_frequent_key_always_present),
		cmocka_unit_test(test_sampling_scales),
		cmocka_unit_test(test_held_lock_skips),
		cmocka_unit_test(test_drain_empties),
		cmocka_unit_test(test_binary_and_long_keys),
		cmocka_unit_test(test_hash_collision_kept_apart),
		cmocka_unit_test(test_index_through_replacements),
		cmocka_unit_test(test_replacement_takes_minimum),
		cmocka_unit_test(test_table_decay_exact),
		cmocka_unit_test(test_table_forget),
		cmocka_unit_test(test_table_order_capacity_sum),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_count_while_draining),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
