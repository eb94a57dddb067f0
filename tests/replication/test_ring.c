/*
 * tests/replication/test_ring.c - the ketama ring: libmemcached's key hash
 * and owners (recorded vectors), point counts per weight including the float
 * rounding quirks, ordering and wrap-around of lookups, empty ring and bad
 * input, shares, and the consistent-hashing property (adding or removing a
 * server moves only that server's keys).
 *
 * The vectors below were computed ONCE by the real libmemcached: the
 * libmemcached.so.11 (1.1.4, Debian 12) that pylibmc links, called through
 * Python ctypes in the order pylibmc uses: memcached_create,
 * memcached_server_add_with_weight(host, port, weight) for each server, then
 * memcached_behavior_set(MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1), then
 * memcached_generate_hash(key) for the owner index and
 * memcached_generate_hash_value(key, MEMCACHED_HASH_MD5) for the key hash.
 * ctypes was used rather than live servers so that the 11211 default-port
 * naming rule ("host-N" instead of "host:port-N") and hosts we cannot bind
 * are covered too; tests/cluster/test_ketama_compat.py checks the same ring
 * end to end through pylibmc against real memcached processes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "replication/ring.h"

static const char *const vec_keys[] = {
	"key0", "key1", "key2", "key3", "key4", "key5", "key6", "key7",
	"key8", "key9", "key10", "key11", "user:1000", "session/abc", "x",
	"a-much-longer-key-with-dashes-0123456789",
};
#define NKEYS (sizeof(vec_keys) / sizeof(vec_keys[0]))

/* Owner index per vec_keys[i], by libmemcached (see the top of the file). */
struct vector {
	const char *name;
	unsigned n;
	struct ring_server servers[8];
	int owner[NKEYS];
};

static const struct vector vectors[] = {
	{
		"default port: names are host-N",
		3, {{"10.0.0.1:11211", 1}, {"10.0.0.2:11211", 1},
		    {"10.0.0.3:11211", 1}},
		{1, 0, 2, 2, 0, 2, 0, 0, 0, 2, 0, 0, 2, 0, 0, 2},
	},
	{
		"weights 1, 3, 2",
		3, {{"127.0.0.1:21001", 1}, {"127.0.0.1:21002", 3},
		    {"127.0.0.1:21003", 2}},
		{2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0, 2, 1, 1, 2},
	},
	{
		"mixed names, ports, IPv6 and weights",
		5, {{"node-a.example:30000", 7}, {"node-b.example:11211", 1},
		    {"[::1]:30002", 13}, {"127.0.0.1:30003", 2},
		    {"127.0.0.1:30004", 1}},
		{0, 2, 2, 2, 2, 0, 2, 0, 2, 1, 0, 1, 0, 3, 0, 2},
	},
};

/* Fifty equal servers 127.0.0.1:20000+i: every one gets 156 points, not 160. */
static const int fifty_owner[NKEYS] = {
	29, 12, 32, 4, 22, 40, 39, 11, 32, 3, 18, 5, 37, 37, 30, 14,
};

static struct ring *build_local(unsigned n, unsigned first_port,
				const uint32_t *weights, char (*names)[32])
{
	struct ring_server s[64];
	unsigned i;

	assert_true(n <= 64);
	for (i = 0; i < n; i++) {
		snprintf(names[i], 32, "127.0.0.1:%u", first_port + i);
		s[i].addr = names[i];
		s[i].weight = weights != NULL ? weights[i] : 1;
	}
	return ring_build(s, n);
}

static int owner_of(const struct ring *r, const char *key)
{
	return ring_lookup(r, ring_hash(key, strlen(key)));
}

static void count_points(const struct ring *r, unsigned *count)
{
	const struct ring_point *p = ring_points(r);
	unsigned i;

	for (i = 0; i < ring_nservers(r); i++)
		count[i] = 0;
	for (i = 0; i < ring_npoints(r); i++)
		count[p[i].server]++;
}

/* A deterministic stream of 32-bit hashes (xorshift32). */
static uint32_t next_hash(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void test_key_hash_vectors(void **state)
{
	char big[251];

	memset(big, 'a', 250);
	big[250] = '\0';
	/* MEMCACHED_HASH_MD5: first four MD5 bytes, little-endian. */
	assert_int_equal(ring_hash("", 0), 0xd98c1dd4u);
	assert_int_equal(ring_hash("foo", 3), 0xdb18bdacu);
	assert_int_equal(ring_hash("hello world", 11), 0xbb3bb65eu);
	assert_int_equal(ring_hash("key0", 4), 0xf202f421u);
	assert_int_equal(ring_hash(big, 250), 0x1cdfdb1bu);
}

static void test_owner_vectors(void **state)
{
	unsigned v, k;

	for (v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
		struct ring *r = ring_build(vectors[v].servers, vectors[v].n);

		assert_non_null(r);
		for (k = 0; k < NKEYS; k++) {
			int got = owner_of(r, vec_keys[k]);

			if (got != vectors[v].owner[k])
				fail_msg("%s: key %s: owner %d, libmemcached %d",
					 vectors[v].name, vec_keys[k], got,
					 vectors[v].owner[k]);
		}
		ring_free(r);
	}
}

static void test_owner_vectors_fifty(void **state)
{
	char names[64][32];
	struct ring *r = build_local(50, 20000, NULL, names);
	unsigned count[64], k;

	assert_non_null(r);
	count_points(r, count);
	for (k = 0; k < 50; k++)
		assert_int_equal(count[k], 156);
	for (k = 0; k < NKEYS; k++)
		assert_int_equal(owner_of(r, vec_keys[k]), fifty_owner[k]);
	ring_free(r);
}

static void test_point_counts(void **state)
{
	static const struct {
		unsigned n;
		uint32_t w[5];
		unsigned points[5];
	} cases[] = {
		{1, {1}, {160}},
		{1, {1000}, {160}},
		{3, {1, 1, 1}, {160, 160, 160}},
		{3, {2, 2, 2}, {160, 160, 160}},
		{2, {1, 2}, {104, 212}},
		{3, {1, 3, 2}, {80, 240, 160}},
		{5, {7, 1, 13, 2, 1}, {232, 32, 432, 64, 32}},
		/* 1/1001 of 2 * 40 rounds down to nothing: no points at all. */
		{2, {1, 1000}, {0, 316}},
	};
	char names[64][32];
	unsigned c, i;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct ring *r = build_local(cases[c].n, 21000, cases[c].w, names);
		unsigned count[64], total = 0;

		assert_non_null(r);
		assert_int_equal(ring_nservers(r), cases[c].n);
		count_points(r, count);
		for (i = 0; i < cases[c].n; i++) {
			assert_int_equal(count[i], cases[c].points[i]);
			total += count[i];
		}
		assert_int_equal(ring_npoints(r), total);
		ring_free(r);
	}

	/* Float rounding: 25 equal servers get 39.99.. * 4 = 156 points each. */
	{
		struct ring *r = build_local(25, 21000, NULL, names);
		unsigned count[64];

		assert_non_null(r);
		count_points(r, count);
		for (i = 0; i < 25; i++)
			assert_int_equal(count[i], 156);
		ring_free(r);
	}
}

static void test_zero_point_server_owns_nothing(void **state)
{
	static const uint32_t w[2] = {1, 1000};
	char names[64][32];
	struct ring *r = build_local(2, 21000, w, names);
	uint32_t s = 12345;
	unsigned i;

	assert_non_null(r);
	assert_true(ring_share(r, 0) == 0.0);
	assert_true(ring_share(r, 1) == 1.0);
	for (i = 0; i < 10000; i++)
		assert_int_equal(ring_lookup(r, next_hash(&s)), 1);
	ring_free(r);
}

static void test_sorted_and_lookup_bounds(void **state)
{
	static const uint32_t w[4] = {1, 5, 2, 1};
	char names[64][32];
	struct ring *r = build_local(4, 22000, w, names);
	const struct ring_point *p;
	unsigned n, k;

	assert_non_null(r);
	p = ring_points(r);
	n = ring_npoints(r);
	assert_true(n > 4);
	for (k = 1; k < n; k++)
		assert_true(p[k - 1].value < p[k].value ||
			    (p[k - 1].value == p[k].value &&
			     p[k - 1].server < p[k].server));
	/* A point's own value belongs to it; one past it to the next point. */
	for (k = 0; k + 1 < n; k++) {
		if (p[k].value == p[k + 1].value)
			continue;
		assert_int_equal(ring_lookup(r, p[k].value), (int)p[k].server);
		assert_int_equal(ring_lookup(r, p[k].value + 1),
				 (int)p[k + 1].server);
		if (p[k + 1].value - p[k].value > 2)
			assert_int_equal(ring_lookup(r, p[k + 1].value - 1),
					 (int)p[k + 1].server);
	}
	ring_free(r);
}

static void test_wrap_around(void **state)
{
	char names[64][32];
	struct ring *r = build_local(3, 23000, NULL, names);
	const struct ring_point *p;
	unsigned n;

	assert_non_null(r);
	p = ring_points(r);
	n = ring_npoints(r);
	assert_true(p[n - 1].value < UINT32_MAX);
	assert_true(p[0].value > 0);
	/* Past the last point: the first point's server. */
	assert_int_equal(ring_lookup(r, p[n - 1].value + 1), (int)p[0].server);
	assert_int_equal(ring_lookup(r, UINT32_MAX), (int)p[0].server);
	/* Before (and at) the first point: also the first. */
	assert_int_equal(ring_lookup(r, 0), (int)p[0].server);
	assert_int_equal(ring_lookup(r, p[0].value), (int)p[0].server);
	/* The last point still owns its own value. */
	assert_int_equal(ring_lookup(r, p[n - 1].value), (int)p[n - 1].server);
	ring_free(r);
}

/*
 * Equal point values go to the lower server index (libmemcached sorts ties
 * by index). Listing one address twice makes every point a tie: libmemcached
 * then never picks the second copy (checked with it: owners {0, 2} only).
 */
static void test_ties_go_to_lowest_index(void **state)
{
	static const struct ring_server s[3] = {
		{"127.0.0.1:21001", 1}, {"127.0.0.1:21001", 1},
		{"127.0.0.1:21002", 1},
	};
	struct ring *r = ring_build(s, 3);
	const struct ring_point *p;
	unsigned k, hits[3] = {0, 0, 0};
	uint32_t h = 99;

	assert_non_null(r);
	p = ring_points(r);
	for (k = 0; k < ring_npoints(r); k++)
		hits[ring_lookup(r, p[k].value)]++;
	assert_int_equal(hits[1], 0);
	assert_int_equal(hits[0], 2 * 160);   /* its own and its twin's */
	assert_int_equal(hits[2], 160);
	for (k = 0; k < 10000; k++)
		assert_int_not_equal(ring_lookup(r, next_hash(&h)), 1);
	assert_true(ring_share(r, 1) == 0.0);
	ring_free(r);
}

/* The binary search agrees with a plain scan for the first point >= h. */
static void test_lookup_matches_scan(void **state)
{
	static const uint32_t w[6] = {3, 1, 4, 1, 5, 9};
	char names[64][32];
	struct ring *r = build_local(6, 24000, w, names);
	const struct ring_point *p;
	uint32_t s = 777;
	unsigned i, k, n;

	assert_non_null(r);
	p = ring_points(r);
	n = ring_npoints(r);
	for (i = 0; i < 20000; i++) {
		uint32_t h = next_hash(&s);

		for (k = 0; k < n && p[k].value < h; k++)
			;
		if (k == n)
			k = 0;
		assert_int_equal(ring_lookup(r, h), (int)p[k].server);
	}
	ring_free(r);
}

static void test_empty_ring(void **state)
{
	struct ring *r = ring_build(NULL, 0);

	assert_non_null(r);
	assert_int_equal(ring_nservers(r), 0);
	assert_int_equal(ring_npoints(r), 0);
	assert_int_equal(ring_lookup(r, 0), -1);
	assert_int_equal(ring_lookup(r, 0xdeadbeefu), -1);
	assert_int_equal(ring_lookup(r, UINT32_MAX), -1);
	assert_true(ring_share(r, 0) == 0.0);
	ring_free(r);
	ring_free(NULL);
	assert_int_equal(ring_lookup(NULL, 1), -1);
}

static void test_bad_input(void **state)
{
	static const char *const bad[] = {
		"", ":11211", "host:", "host:0", "host:65536", "host:12a",
		"host:-1", "[::1", "[::1]x", "[]:11211", "host: 1",
	};
	struct ring_server s[2] = {{"127.0.0.1:1", 1}, {NULL, 1}};
	unsigned i;

	assert_null(ring_build(s, 2));          /* NULL addr */
	s[1].addr = "127.0.0.1:2";
	s[1].weight = 0;
	assert_null(ring_build(s, 2));          /* weight 0 */
	assert_null(ring_build(NULL, 1));
	s[1].weight = 1;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s[1].addr = bad[i];
		if (ring_build(s, 2) != NULL)
			fail_msg("address \"%s\" was accepted", bad[i]);
	}
}

static void test_addr_split(void **state)
{
	char host[64];
	unsigned port;

	assert_int_equal(ring_addr_split("127.0.0.1:21001", host, sizeof(host),
					 &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 21001);
	assert_int_equal(ring_addr_split("[::1]:30002", host, sizeof(host),
					 &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 30002);
	assert_int_equal(ring_addr_split("cache-1.example", host, sizeof(host),
					 &port), 0);
	assert_string_equal(host, "cache-1.example");
	assert_int_equal(port, 11211);
	assert_int_equal(ring_addr_split("abcdefgh:1", host, 8, &port), -EINVAL);
}

static void test_shares(void **state)
{
	static const uint32_t w[3] = {1, 3, 2};
	char names[64][32];
	struct ring *eq = build_local(3, 25000, NULL, names);
	struct ring *wr = build_local(3, 25000, w, names);
	unsigned hits[3] = {0, 0, 0}, i;
	uint32_t s = 4242;
	double sum;

	assert_non_null(eq);
	assert_non_null(wr);
	sum = ring_share(eq, 0) + ring_share(eq, 1) + ring_share(eq, 2);
	assert_true(sum > 1.0 - 1e-12 && sum < 1.0 + 1e-12);
	for (i = 0; i < 3; i++)
		assert_true(ring_share(eq, i) > 0.25 && ring_share(eq, i) < 0.42);
	sum = ring_share(wr, 0) + ring_share(wr, 1) + ring_share(wr, 2);
	assert_true(sum > 1.0 - 1e-12 && sum < 1.0 + 1e-12);
	/* Roughly in proportion to the weights 1:3:2. */
	assert_true(ring_share(wr, 0) > 0.10 && ring_share(wr, 0) < 0.23);
	assert_true(ring_share(wr, 1) > 0.40 && ring_share(wr, 1) < 0.60);
	assert_true(ring_share(wr, 2) > 0.25 && ring_share(wr, 2) < 0.42);
	assert_true(ring_share(wr, 3) == 0.0);  /* out of range */

	/* The shares are what lookups really do: sample the hash space. */
	for (i = 0; i < 200000; i++)
		hits[ring_lookup(wr, next_hash(&s))]++;
	for (i = 0; i < 3; i++) {
		double f = hits[i] / 200000.0;

		assert_true(f > ring_share(wr, i) - 0.01 &&
			    f < ring_share(wr, i) + 0.01);
	}
	ring_free(eq);
	ring_free(wr);
}

/*
 * Consistent hashing: with equal weights the old servers keep their points
 * when a fourth joins (40 * n / n stays 40), so a key either stays put or
 * moves to the newcomer; read backwards (4 -> 3), removing a server moves
 * only the keys it owned.
 */
static void test_add_and_remove_move_only_one_server(void **state)
{
	char names[64][32];
	struct ring *r3 = build_local(3, 26000, NULL, names);
	struct ring *r4 = build_local(4, 26000, NULL, names);
	unsigned i, moved = 0;
	char key[32];

	assert_non_null(r3);
	assert_non_null(r4);
	for (i = 0; i < 20000; i++) {
		int a, b;

		snprintf(key, sizeof(key), "k:%u", i);
		a = owner_of(r3, key);
		b = owner_of(r4, key);
		if (a != b) {
			assert_int_equal(b, 3);
			moved++;
		}
	}
	/* About a quarter of the keys (ideal 0.25, within 10%). */
	assert_true(moved > 20000 * 0.225 && moved < 20000 * 0.275);
	ring_free(r3);
	ring_free(r4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_hash_vectors),
		cmocka_unit_test(test_owner_vectors),
		cmocka_unit_test(test_owner_vectors_fifty),
		cmocka_unit_test(test_point_counts),
		cmocka_unit_test(test_zero_point_server_owns_nothing),
		cmocka_unit_test(test_sorted_and_lookup_bounds),
		cmocka_unit_test(test_wrap_around),
		cmocka_unit_test(test_ties_go_to_lowest_index),
		cmocka_unit_test(test_lookup_matches_scan),
		cmocka_unit_test(test_empty_ring),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_addr_split),
		cmocka_unit_test(test_shares),
		cmocka_unit_test(test_add_and_remove_move_only_one_server),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
