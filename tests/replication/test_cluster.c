/*
 * tests/replication/test_cluster.c - the routing decision of a cluster node
 * (replication/cluster.c) against real maps and a real cache: who forwards,
 * who pulls, what FRESH protects, how a pulled answer is installed, and the
 * counters 'stats cluster' shows.
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

#include "cache/cache.h"
#include "replication/cluster.h"
#include "replication/map.h"
#include "replication/ring.h"

#define NKEYS 2000

struct fixture {
	struct cache *cache;
	struct cache_thread *ct;
	struct cluster *cl;
	struct cluster_worker *cw;
};

static int setup_as(void **state, const char *self, const char *addr)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct cache_config cc = { .mem_limit = 64u << 20,
				   .item_size_max = 1u << 20 };
	assert_non_null(f);
	f->cache = cache_create(&cc);
	assert_non_null(f->cache);
	f->ct = cache_thread_attach(f->cache);
	assert_non_null(f->ct);
	struct cluster_config cfg = { .cache = f->cache, .self_id = self,
				      .self_addr = addr };
	f->cl = cluster_create(&cfg);
	assert_non_null(f->cl);
	f->cw = cluster_worker_create(f->cl, f->ct);
	assert_non_null(f->cw);
	*state = f;
	return 0;
}

static int setup_c(void **state)
{
	return setup_as(state, "c", "127.0.0.1:1003");
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	cluster_worker_destroy(&f->cw);
	cluster_destroy(&f->cl);
	cache_thread_detach(&f->ct);
	cache_destroy(&f->cache);
	free(f);
	return 0;
}

/* cluster_set_map waits for a grace period: never while we are an online
 * reader ourselves. */
static void publish(struct fixture *f, struct shard_map *m)
{
	cache_thread_offline(f->ct);
	cluster_set_map(f->cl, m);
	cache_thread_online(f->ct);
}

static struct shard_map *map3(void)
{
	struct shard_map *m = map_new();
	assert_non_null(m);
	assert_int_equal(map_add_node(m, "a", "127.0.0.1:1001", 1,
				      MAP_NODE_ACTIVE), 0);
	assert_int_equal(map_add_node(m, "b", "127.0.0.1:1002", 1,
				      MAP_NODE_ACTIVE), 0);
	assert_int_equal(map_add_node(m, "c", "127.0.0.1:1003", 1,
				      MAP_NODE_ACTIVE), 0);
	m->epoch = 1;
	assert_int_equal(map_build_rings(m), 0);
	return m;
}

/* a and b before, a, b and c after: keys move to c. */
static struct shard_map *map_grow(void)
{
	struct shard_map *m = map_new();
	assert_non_null(m);
	assert_int_equal(map_add_node(m, "a", "127.0.0.1:1001", 1,
				      MAP_NODE_ACTIVE), 0);
	assert_int_equal(map_add_node(m, "b", "127.0.0.1:1002", 1,
				      MAP_NODE_ACTIVE), 0);
	assert_int_equal(map_snapshot_prev(m), 0);
	assert_int_equal(map_add_node(m, "c", "127.0.0.1:1003", 1,
				      MAP_NODE_ACTIVE), 0);
	m->epoch = 2;
	m->migration = 2;
	m->phase = MAP_PHASE_MOVING;
	assert_int_equal(map_build_rings(m), 0);
	return m;
}

static void key_of(char *buf, size_t len, int i)
{
	snprintf(buf, len, "key:%d", i);
}

/* Before its first map a node knows no owner: it refuses rather than keep
 * a write its real owner would never see. */
static void test_no_map_refuses(void **state)
{
	struct fixture *f = *state;
	struct cluster_route r;

	cluster_route(f->cw, "k", 1, cache_hash("k", 1), CLUSTER_OP_READ,
		      CLUSTER_FROM_CLIENT, false, &r);
	assert_int_equal(r.action, CLUSTER_REFUSE);
	cluster_route(f->cw, "k", 1, cache_hash("k", 1), CLUSTER_OP_WRITE,
		      CLUSTER_FROM_PEER, false, &r);
	assert_int_equal(r.action, CLUSTER_REFUSE);
}

static void test_stable_map_forwards_to_owner(void **state)
{
	struct fixture *f = *state;
	struct shard_map *m = map3();
	unsigned local = 0, fwd = 0;
	char key[32];

	map_ref(m);
	publish(f, m);
	for (int i = 0; i < NKEYS; i++) {
		struct cluster_route r;
		key_of(key, sizeof(key), i);
		size_t n = strlen(key);
		const struct map_node *owner = map_owner(m, ring_hash(key, n));
		cluster_route(f->cw, key, n, cache_hash(key, n),
			      CLUSTER_OP_READ, CLUSTER_FROM_CLIENT, false, &r);
		assert_false(r.moving_in);
		if (strcmp(owner->id, "c") == 0) {
			assert_int_equal(r.action, CLUSTER_LOCAL);
			local++;
		} else {
			assert_int_equal(r.action, CLUSTER_FORWARD);
			assert_false(r.final_hop);
			assert_string_equal(r.peer, owner->addr);
			assert_string_equal(r.peer_id, owner->id);
			fwd++;
		}
		/* A 'final' peer's request runs here whatever our map says;
		 * a 'fwd' peer's goes one hop further if it is not ours. */
		cluster_route(f->cw, key, n, cache_hash(key, n),
			      CLUSTER_OP_WRITE, CLUSTER_FROM_PEER_FINAL, false,
			      &r);
		assert_int_equal(r.action, CLUSTER_LOCAL);
		cluster_route(f->cw, key, n, cache_hash(key, n),
			      CLUSTER_OP_WRITE, CLUSTER_FROM_PEER, false, &r);
		if (strcmp(owner->id, "c") == 0) {
			assert_int_equal(r.action, CLUSTER_LOCAL);
		} else {
			assert_int_equal(r.action, CLUSTER_FORWARD);
			assert_true(r.final_hop);
			assert_string_equal(r.peer, owner->addr);
		}
	}
	/* Three equal nodes: about a third each. */
	assert_in_range(local, NKEYS / 3 - NKEYS / 10, NKEYS / 3 + NKEYS / 10);
	assert_int_equal(local + fwd, NKEYS);
	map_unref(m);
}

static void store(struct fixture *f, const char *key, const char *val)
{
	enum cache_status err;
	size_t n = strlen(key), vn = strlen(val);
	struct cache_item *it = cache_item_alloc(f->ct, key, n, 0, 0, vn, &err);
	assert_non_null(it);
	memcpy(cache_item_value(it), val, vn);
	struct cache_store_args a = { .mode = CACHE_SET };
	assert_int_equal(cache_store(f->ct, it, cache_hash(key, n), &a, NULL),
			 CACHE_OK);
}

static void test_moving_in_pulls_once(void **state)
{
	struct fixture *f = *state;
	struct shard_map *m = map_grow();
	unsigned moving = 0;
	char key[32];

	map_ref(m);
	publish(f, m);
	for (int i = 0; i < NKEYS; i++) {
		struct cluster_route r;
		key_of(key, sizeof(key), i);
		size_t n = strlen(key);
		uint64_t h = cache_hash(key, n);
		uint32_t rh = ring_hash(key, n);
		const struct map_node *owner = map_owner(m, rh);
		const struct map_node *prev = map_prev_owner(m, rh);
		if (strcmp(owner->id, "c") != 0) {
			cluster_route(f->cw, key, n, h, CLUSTER_OP_READ, CLUSTER_FROM_CLIENT,
				      false, &r);
			assert_int_equal(r.action, CLUSTER_FORWARD);
			continue;
		}
		moving++;
		/* Absent here: pull from the previous owner first. */
		cluster_route(f->cw, key, n, h, CLUSTER_OP_READ,
			      CLUSTER_FROM_CLIENT, false, &r);
		assert_int_equal(r.action, CLUSTER_PULL);
		assert_true(r.moving_in);
		assert_string_equal(r.peer, prev->addr);
		/* Peers' requests pull too. Pulls go on 'final' links. */
		cluster_route(f->cw, key, n, h, CLUSTER_OP_READ,
			      CLUSTER_FROM_PEER, false, &r);
		assert_int_equal(r.action, CLUSTER_PULL);
		assert_true(r.final_hop);
		if (i % 2 == 0) {
			/* Present here: nothing to pull; a read marks nothing. */
			store(f, key, "v");
			cluster_route(f->cw, key, n, h, CLUSTER_OP_READ,
				      CLUSTER_FROM_CLIENT, false, &r);
			assert_int_equal(r.action, CLUSTER_LOCAL);
			assert_false(cluster_is_fresh(f->cw, h));
		} else if (i % 4 == 1) {
			/* A plain set needs nothing from the old owner, and
			 * makes the key FRESH before it runs: never pulled. */
			cluster_route(f->cw, key, n, h, CLUSTER_OP_SET,
				      CLUSTER_FROM_CLIENT, false, &r);
			assert_int_equal(r.action, CLUSTER_LOCAL);
			assert_true(r.moving_in);
			assert_true(cluster_is_fresh(f->cw, h));
			cluster_route(f->cw, key, n, h, CLUSTER_OP_READ,
				      CLUSTER_FROM_CLIENT, false, &r);
			assert_int_equal(r.action, CLUSTER_LOCAL);
		} else {
			/* Pulled once already: run it here (and mark it). */
			cluster_route(f->cw, key, n, h, CLUSTER_OP_WRITE,
				      CLUSTER_FROM_CLIENT, true, &r);
			assert_int_equal(r.action, CLUSTER_LOCAL);
			assert_true(cluster_is_fresh(f->cw, h));
		}
	}
	/* c took about a third of the keys of a and b. */
	assert_in_range(moving, NKEYS / 3 - NKEYS / 10, NKEYS / 3 + NKEYS / 10);

	/* The stable map ends the migration and empties FRESH. */
	struct shard_map *s = map3();
	s->epoch = 3;
	publish(f, s);
	key_of(key, sizeof(key), 1);
	for (int i = 1; i < NKEYS; i += 2) {
		key_of(key, sizeof(key), i);
		assert_false(cluster_is_fresh(f->cw, cache_hash(key,
							      strlen(key))));
	}
	map_unref(m);
}

/* PREPARE: clients' requests still go to the old owners; a peer that is
 * already MOVING sends us a key we are about to own: it is moving in. */
static void test_prepare_routes_by_prev_ring(void **state)
{
	struct fixture *f = *state;
	struct shard_map *m = map_grow();
	unsigned future = 0;
	char key[32];

	m->phase = MAP_PHASE_PREPARE;
	map_ref(m);
	publish(f, m);
	for (int i = 0; i < NKEYS; i++) {
		struct cluster_route r;
		key_of(key, sizeof(key), i);
		size_t n = strlen(key);
		uint64_t h = cache_hash(key, n);
		uint32_t rh = ring_hash(key, n);
		const struct map_node *owner = map_owner(m, rh);
		const struct map_node *prev = map_prev_owner(m, rh);

		/* c owns nothing in prev: every client request goes to the
		 * prev owner. */
		cluster_route(f->cw, key, n, h, CLUSTER_OP_READ,
			      CLUSTER_FROM_CLIENT, false, &r);
		assert_int_equal(r.action, CLUSTER_FORWARD);
		assert_false(r.final_hop);
		assert_string_equal(r.peer_id, prev->id);

		cluster_route(f->cw, key, n, h, CLUSTER_OP_READ,
			      CLUSTER_FROM_PEER, false, &r);
		if (strcmp(owner->id, "c") == 0) {
			future++;
			assert_int_equal(r.action, CLUSTER_PULL);
			assert_true(r.moving_in);
			assert_string_equal(r.peer_id, prev->id);
		} else {
			assert_int_equal(r.action, CLUSTER_LOCAL);
			assert_false(r.moving_in);
		}
	}
	assert_in_range(future, NKEYS / 3 - NKEYS / 10, NKEYS / 3 + NKEYS / 10);
	map_unref(m);
}

/* The i-th key ("pk:<n>") that moves to c in map m (owner c, prev not c);
 * want_moving false: the i-th key a still owns. */
static void pick_key(const struct shard_map *m, bool want_moving, int i,
		     char *key, size_t len)
{
	for (int n = 0;; n++) {
		snprintf(key, len, "pk:%d", n);
		uint32_t rh = ring_hash(key, strlen(key));
		bool moving = strcmp(map_owner(m, rh)->id, "c") == 0 &&
			      strcmp(map_prev_owner(m, rh)->id, "c") != 0;
		bool a_owns = strcmp(map_owner(m, rh)->id, "a") == 0;
		if ((want_moving ? moving : a_owns) && i-- == 0)
			return;
	}
}

static void test_install_pulled(void **state)
{
	struct fixture *f = *state;
	struct cache_read_opts o = { .no_bump = true };
	const struct cache_item *it;
	static const char va[] = "VA 7 f42 t-1 c9\r\nhe\r\nllo\r\n";
	struct shard_map *m = map_grow();
	char k[6][16];

	map_ref(m);
	publish(f, m);
	for (int i = 0; i < 5; i++)
		pick_key(m, true, i, k[i], sizeof(k[i]));
	pick_key(m, false, 0, k[5], sizeof(k[5]));
#define KH(i) k[i], strlen(k[i]), cache_hash(k[i], strlen(k[i]))

	assert_int_equal(cluster_install_pulled(f->cw, KH(0), va,
						sizeof(va) - 1), 0);
	it = cache_get(f->ct, KH(0), &o, NULL);
	assert_non_null(it);
	assert_int_equal(it->nbytes, 7);
	assert_memory_equal(cache_item_value_const(it), "he\r\nllo", 7);
	assert_int_equal(it->client_flags, 42);

	/* ADD: an item here is never overwritten. */
	static const char va2[] = "VA 3 f1 t100\r\nold\r\n";
	assert_int_equal(cluster_install_pulled(f->cw, KH(0), va2,
						sizeof(va2) - 1), 0);
	it = cache_get(f->ct, KH(0), &o, NULL);
	assert_int_equal(it->nbytes, 7);

	/* A TTL comes along; one over 30 days is a TTL too, not a date. */
	assert_int_equal(cluster_install_pulled(f->cw, KH(1), va2,
						sizeof(va2) - 1), 0);
	it = cache_get(f->ct, KH(1), &o, NULL);
	assert_non_null(it);
	assert_in_range(cache_ttl_remaining(it->exptime), 98, 100);
	static const char va3[] = "VA 1 t5000000\r\nx\r\n";
	assert_int_equal(cluster_install_pulled(f->cw, KH(4), va3,
						sizeof(va3) - 1), 0);
	it = cache_get(f->ct, KH(4), &o, NULL);
	assert_non_null(it);
	assert_in_range(cache_ttl_remaining(it->exptime), 4999990, 5000000);

	/* A miss installs nothing; a FRESH key is never installed. */
	assert_int_equal(cluster_install_pulled(f->cw, KH(2), "EN\r\n", 4), 0);
	assert_null(cache_get(f->ct, KH(2), &o, NULL));
	cluster_mark_fresh(f->cw, KH(2));
	assert_int_equal(cluster_install_pulled(f->cw, KH(2), va,
						sizeof(va) - 1), 0);
	assert_null(cache_get(f->ct, KH(2), &o, NULL));
	/* Nor a key that is not moving in to us. */
	assert_false(cluster_accepts_migrated(f->cw, KH(5)));
	assert_int_equal(cluster_install_pulled(f->cw, KH(5), va,
						sizeof(va) - 1), 0);
	assert_null(cache_get(f->ct, KH(5), &o, NULL));

	/* Garbage is refused, never trusted. */
	static const char *const bad[] = {
		"", "VA\r\n", "VA x\r\nab\r\n", "VA 5\r\nab\r\n",
		"VA 2 f99999999999\r\nab\r\n", "VA 2\r\nabXY", "HD\r\n",
		"VA 18446744073709551615\r\nab\r\n", "VA 2 t\r\nab\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cluster_install_pulled(f->cw, KH(3), bad[i],
							strlen(bad[i])),
				 -EPROTO);
	assert_null(cache_get(f->ct, KH(3), &o, NULL));

	/* Once the migration is over, a late answer installs nothing. */
	struct shard_map *st = map3();
	st->epoch = 3;
	publish(f, st);
	assert_false(cluster_accepts_migrated(f->cw, KH(3)));
	assert_int_equal(cluster_install_pulled(f->cw, KH(3), va,
						sizeof(va) - 1), 0);
	assert_null(cache_get(f->ct, KH(3), &o, NULL));
#undef KH
	map_unref(m);
}

struct stat_seen {
	char local[32], forwarded[32], self[32], epoch[32];
};

static void grab(void *arg, const char *name, const char *value)
{
	struct stat_seen *s = arg;
	if (strcmp(name, "local") == 0)
		snprintf(s->local, sizeof(s->local), "%s", value);
	else if (strcmp(name, "forwarded") == 0)
		snprintf(s->forwarded, sizeof(s->forwarded), "%s", value);
	else if (strcmp(name, "self") == 0)
		snprintf(s->self, sizeof(s->self), "%s", value);
	else if (strcmp(name, "map_epoch") == 0)
		snprintf(s->epoch, sizeof(s->epoch), "%s", value);
}

static void test_stats(void **state)
{
	struct fixture *f = *state;
	struct shard_map *m = map3();
	struct cluster_route r;
	unsigned local = 0, fwd = 0;
	char key[32], want[32];

	publish(f, m);
	for (int i = 0; i < 300; i++) {
		key_of(key, sizeof(key), i);
		cluster_route(f->cw, key, strlen(key),
			      cache_hash(key, strlen(key)), CLUSTER_OP_READ,
			      CLUSTER_FROM_CLIENT, false, &r);
		if (r.action == CLUSTER_LOCAL)
			local++;
		else
			fwd++;
	}
	struct stat_seen s = { 0 };
	cluster_stats(f->cl, grab, &s);
	assert_string_equal(s.self, "c");
	assert_string_equal(s.epoch, "1");
	snprintf(want, sizeof(want), "%u", local);
	assert_string_equal(s.local, want);
	snprintf(want, sizeof(want), "%u", fwd);
	assert_string_equal(s.forwarded, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_map_refuses, setup_c,
						teardown),
		cmocka_unit_test_setup_teardown(test_stable_map_forwards_to_owner,
						setup_c, teardown),
		cmocka_unit_test_setup_teardown(test_moving_in_pulls_once,
						setup_c, teardown),
		cmocka_unit_test_setup_teardown(test_prepare_routes_by_prev_ring,
						setup_c, teardown),
		cmocka_unit_test_setup_teardown(test_install_pulled, setup_c,
						teardown),
		cmocka_unit_test_setup_teardown(test_stats, setup_c, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
