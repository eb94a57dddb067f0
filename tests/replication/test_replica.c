/*
 * tests/replication/test_replica.c - the serving side of hot-key
 * replication (replication/replica.c) against real maps, a real cache and
 * real replica sets: where a replica, the owner and a non-holder send a
 * read or a write of a replicated key, when a replica's copy may be served
 * (fill, invalidation, block, lease, owner down), the owner's warm pull,
 * the invalidations it queues, the 'stats cluster' lines and the sketch
 * drain.
 *
 * The node under test is "c" in a three-node map (a, b, c); keys are picked
 * by their ketama owner (map_owner(ring_hash(key))). Nothing here sends a
 * byte except test_after_write_sends, which reads the invalidations a
 * replica would get from a listening socket on loopback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cache/cache.h"
#include "replication/cluster.h"
#include "replication/hotset.h"
#include "replication/map.h"
#include "replication/ring.h"

#define ADDR_A "127.0.0.1:1001"
#define ADDR_B "127.0.0.1:1002"
#define ADDR_C "127.0.0.1:1003"

static const char fill_va[] = "VA 2 f5 t-1 c12345\r\nhi\r\n";

struct fixture {
	struct cache *cache;
	struct cache_thread *ct;
	struct cluster *cl;
	struct cluster_worker *cw;
	struct shard_map *m;          /* our reference to the published map */
	int listen_fd;                /* -1, or a fake replica's socket */
};

static int setup_cfg(void **state, unsigned lease_ms, bool sync,
		     unsigned sample)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct cache_config cc = { .mem_limit = 64u << 20,
				   .item_size_max = 1u << 20 };
	assert_non_null(f);
	f->listen_fd = -1;
	f->cache = cache_create(&cc);
	assert_non_null(f->cache);
	f->ct = cache_thread_attach(f->cache);
	assert_non_null(f->ct);
	struct cluster_config cfg = { .cache = f->cache, .self_id = "c",
				      .self_addr = ADDR_C,
				      .replica_lease_ms = lease_ms,
				      /* a block lasts lease + (nodes + 1) *
				       * this: short with short leases */
				      .fwd_timeout_ms = lease_ms < 1000 ? 10 : 0,
				      .replica_sync = sync,
				      .hot_sample = sample };
	f->cl = cluster_create(&cfg);
	assert_non_null(f->cl);
	f->cw = cluster_worker_create(f->cl, f->ct);
	assert_non_null(f->cw);
	*state = f;
	return 0;
}

static int setup_default(void **state)
{
	return setup_cfg(state, 0, false, 0);
}

static int setup_lease50(void **state)
{
	return setup_cfg(state, 50, false, 0);
}

static int setup_sync(void **state)
{
	return setup_cfg(state, 0, true, 0);
}

static int setup_sample1(void **state)
{
	return setup_cfg(state, 0, false, 1);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	cluster_worker_destroy(&f->cw);
	cluster_destroy(&f->cl);
	map_unref(f->m);
	cache_thread_detach(&f->ct);
	cache_destroy(&f->cache);
	if (f->listen_fd >= 0)
		close(f->listen_fd);
	free(f);
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static struct shard_map *map3_at(const char *addr_a, bool migrating)
{
	struct shard_map *m = map_new();
	assert_non_null(m);
	assert_int_equal(map_add_node(m, "a", addr_a, 1, MAP_NODE_ACTIVE), 0);
	assert_int_equal(map_add_node(m, "b", ADDR_B, 1, MAP_NODE_ACTIVE), 0);
	if (migrating)
		assert_int_equal(map_snapshot_prev(m), 0);
	assert_int_equal(map_add_node(m, "c", ADDR_C, 1, MAP_NODE_ACTIVE), 0);
	m->epoch = migrating ? 2 : 1;
	if (migrating) {
		m->migration = 2;
		m->phase = MAP_PHASE_MOVING;
	}
	assert_int_equal(map_build_rings(m), 0);
	return m;
}

/* cluster_set_map and cluster_set_hot wait for a grace period: never while
 * we are an online reader ourselves. */
static void publish_map(struct fixture *f, struct shard_map *m)
{
	map_ref(m);
	cache_thread_offline(f->ct);
	cluster_set_map(f->cl, m);
	cache_thread_online(f->ct);
	map_unref(f->m);
	f->m = m;
}

static void publish_hot(struct fixture *f, struct hot_set *s)
{
	cache_thread_offline(f->ct);
	cluster_set_hot(f->cl, s);
	cache_thread_online(f->ct);
}

/* The i-th key "hk:<n>" that 'owner' owns in f->m (and, for a migrating
 * map, owned before too: it does not move). */
static void pick(struct fixture *f, const char *owner, int i, char *key,
		 size_t len)
{
	for (int n = 0;; n++) {
		snprintf(key, len, "hk:%d", n);
		uint32_t rh = ring_hash(key, strlen(key));
		if (strcmp(map_owner(f->m, rh)->id, owner) != 0)
			continue;
		if (f->m->migration != 0 &&
		    strcmp(map_prev_owner(f->m, rh)->id, owner) != 0)
			continue;
		if (i-- == 0)
			return;
	}
}

/* Adds a key to s with the given owner and replicas (a NULL-ended list). */
static void set_add(struct hot_set *s, const char *key, const char *owner,
		    ...)
{
	struct hot_set_key *keys = realloc(s->keys,
					   (s->nkeys + 1) * sizeof(*keys));
	assert_non_null(keys);
	s->keys = keys;
	struct hot_set_key *k = &keys[s->nkeys++];
	memset(k, 0, sizeof(*k));
	k->nkey = (uint8_t)strlen(key);
	memcpy(k->key, key, k->nkey);
	k->hash = cache_hash(key, k->nkey);
	k->reads = 1000;
	snprintf(k->owner, sizeof(k->owner), "%s", owner);
	va_list ap;
	va_start(ap, owner);
	for (const char *r; (r = va_arg(ap, const char *)) != NULL;)
		snprintf(k->replicas[k->nreplicas++], MAP_ID_MAX, "%s", r);
	va_end(ap);
}

static struct hot_set *set_new(uint64_t version)
{
	struct hot_set *s = hot_set_new();
	assert_non_null(s);
	s->version = version;
	s->epoch = 1;
	return s;
}

/* One key in a set of its own, published. */
static void hot1(struct fixture *f, uint64_t version, const char *key,
		 const char *owner, const char *r1, const char *r2)
{
	struct hot_set *s = set_new(version);
	set_add(s, key, owner, r1, r2, (const char *)NULL);
	publish_hot(f, s);
}

#define KH(k) (k), strlen(k), cache_hash((k), strlen(k))

static struct cluster_route route(struct fixture *f, const char *key,
				  enum cluster_op op, enum cluster_from from,
				  bool pulled)
{
	struct cluster_route r;
	memset(&r, 0xa5, sizeof(r));      /* every field must be set */
	cluster_route(f->cw, KH(key), op, from, pulled, &r);
	return r;
}

static struct cluster_route read_c(struct fixture *f, const char *key)
{
	return route(f, key, CLUSTER_OP_READ, CLUSTER_FROM_CLIENT, false);
}

struct stat_one {
	const char *name;
	char value[64];
	bool seen;
};

static void grab(void *arg, const char *name, const char *value)
{
	struct stat_one *s = arg;
	if (strcmp(name, s->name) == 0) {
		snprintf(s->value, sizeof(s->value), "%s", value);
		s->seen = true;
	}
}

static const char *stat_str(struct fixture *f, const char *name,
			    char buf[64])
{
	struct stat_one s = { .name = name };
	cluster_stats(f->cl, grab, &s);
	assert_true(s.seen);
	memcpy(buf, s.value, 64);
	return buf;
}

static uint64_t stat_u64(struct fixture *f, const char *name)
{
	char buf[64];
	return strtoull(stat_str(f, name, buf), NULL, 10);
}

static const struct cache_item *peek(struct fixture *f, const char *key)
{
	struct cache_read_opts o = { .no_bump = true };
	return cache_get(f->ct, KH(key), &o, NULL);
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

/* An item with a given CAS (as meta 'E' or an install could store it). */
static void store_cas(struct fixture *f, const char *key, const char *val,
		      uint64_t cas)
{
	enum cache_status err;
	size_t n = strlen(key), vn = strlen(val);
	struct cache_item *it = cache_item_alloc(f->ct, key, n, 0, 0, vn, &err);
	assert_non_null(it);
	memcpy(cache_item_value(it), val, vn);
	struct cache_store_args a = { .mode = CACHE_SET, .cas_new = cas };
	assert_int_equal(cache_store(f->ct, it, cache_hash(key, n), &a, NULL),
			 CACHE_OK);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A client read at the replica PULLs a FILL from the owner; answers it
 * with 'reply' and returns the route's generation. */
static uint64_t fill(struct fixture *f, const char *key, const char *reply)
{
	struct cluster_route r = read_c(f, key);
	assert_int_equal(r.action, CLUSTER_PULL);
	assert_int_equal(r.pull_kind, CLUSTER_PULL_FILL);
	if (reply != NULL)
		assert_int_equal(cluster_pull_done(f->cw, CLUSTER_PULL_FILL,
						   KH(key), r.pull_gen, 0,
						   reply, strlen(reply)), 0);
	return r.pull_gen;
}

/* ---- no set --------------------------------------------------------------- */

static void test_no_set_routes_by_owner(void **state)
{
	struct fixture *f = *state;
	char ka[32], kc[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "a", 0, ka, sizeof(ka));
	pick(f, "c", 0, kc, sizeof(kc));
	struct cluster_route r = read_c(f, ka);
	assert_int_equal(r.action, CLUSTER_FORWARD);
	assert_string_equal(r.peer, ADDR_A);
	assert_false(r.hot_owner);
	r = read_c(f, kc);
	assert_int_equal(r.action, CLUSTER_LOCAL);
	r = route(f, kc, CLUSTER_OP_WRITE, CLUSTER_FROM_CLIENT, false);
	assert_int_equal(r.action, CLUSTER_LOCAL);
	assert_false(r.hot_owner);

	/* A set whose keys are others changes nothing either; nor does an
	 * emptied set. */
	char other[32];
	pick(f, "a", 1, other, sizeof(other));
	hot1(f, 1, other, "a", "c", NULL);
	r = read_c(f, ka);
	assert_int_equal(r.action, CLUSTER_FORWARD);
	assert_string_equal(r.peer, ADDR_A);
	publish_hot(f, NULL);
	r = read_c(f, other);
	assert_int_equal(r.action, CLUSTER_FORWARD);
	assert_string_equal(r.peer, ADDR_A);
	assert_int_equal(stat_u64(f, "replica_hits"), 0);
	assert_int_equal(stat_u64(f, "replica_forwards"), 0);
}

/* ---- at a replica ------------------------------------------------------------ */

static void test_replica_fill_then_local(void **state)
{
	struct fixture *f = *state;
	char k[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "a", 0, k, sizeof(k));
	hot1(f, 1, k, "a", "c", NULL);

	struct cluster_route r = read_c(f, k);
	assert_int_equal(r.action, CLUSTER_PULL);
	assert_int_equal(r.pull_kind, CLUSTER_PULL_FILL);
	assert_true(r.final_hop);
	assert_string_equal(r.peer, ADDR_A);
	assert_string_equal(r.peer_id, "a");
	assert_false(r.hot_owner);
	assert_int_equal(cluster_pull_done(f->cw, CLUSTER_PULL_FILL, KH(k),
					   r.pull_gen, 0, fill_va,
					   strlen(fill_va)), 0);
	assert_int_equal(stat_u64(f, "replica_fills"), 1);

	const struct cache_item *it = peek(f, k);
	assert_non_null(it);
	assert_int_equal(it->cas, 12345);
	assert_int_equal(it->client_flags, 5);
	assert_int_equal(it->nbytes, 2);
	assert_memory_equal(cache_item_value_const(it), "hi", 2);

	/* The request runs again (pulled), and later reads: here. */
	r = route(f, k, CLUSTER_OP_READ, CLUSTER_FROM_CLIENT, true);
	assert_int_equal(r.action, CLUSTER_LOCAL);
	uint64_t local0 = stat_u64(f, "local");
	for (int i = 0; i < 3; i++) {
		r = read_c(f, k);
		assert_int_equal(r.action, CLUSTER_LOCAL);
	}
	assert_int_equal(stat_u64(f, "replica_hits"), 4);
	/* Replica hits are load here. */
	assert_int_equal(stat_u64(f, "local"), local0 + 3);
	assert_int_equal(stat_u64(f, "replica_fill_rejected"), 0);

	/* The item is the copy only while it has the fill's CAS. */
	store(f, k, "other");
	fill(f, k, fill_va);
	assert_int_equal(read_c(f, k).action, CLUSTER_LOCAL);
	assert_int_equal(stat_u64(f, "replica_fills"), 2);

	/* A miss at the owner installs nothing; garbage neither. */
	char k2[32];
	pick(f, "a", 1, k2, sizeof(k2));
	hot1(f, 2, k2, "a", "c", NULL);
	fill(f, k2, "EN\r\n");
	assert_null(peek(f, k2));
	r = read_c(f, k2);
	assert_int_equal(r.action, CLUSTER_PULL);
	assert_int_equal(cluster_pull_done(f->cw, CLUSTER_PULL_FILL, KH(k2),
					   r.pull_gen, 0, "VA 5\r\nab\r\n",
					   10), -EPROTO);
	assert_null(peek(f, k2));
	/* k left the set with version 2: its copy is not served any more. */
	r = read_c(f, k);
	assert_int_equal(r.action, CLUSTER_FORWARD);
	assert_string_equal(r.peer, ADDR_A);
}

static void test_one_fill_at_a_time(void **state)
{
	struct fixture *f = *state;
	char k[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "a", 0, k, sizeof(k));
	hot1(f, 1, k, "a", "c", NULL);

	struct cluster_route r1 = read_c(f, k);
	assert_int_equal(r1.action, CLUSTER_PULL);
	/* A second reader while the fill is out goes to the owner. */
	struct cluster_route r2 = read_c(f, k);
	assert_int_equal(r2.action, CLUSTER_FORWARD);
	assert_string_equal(r2.peer, ADDR_A);
	assert_false(r2.final_hop);
	/* After the answer (here: a failure) the next read may pull. */
	assert_int_equal(cluster_pull_done(f->cw, CLUSTER_PULL_FILL, KH(k),
					   r1.pull_gen, -ETIMEDOUT, NULL, 0),
			 -ETIMEDOUT);
	r2 = read_c(f, k);
	assert_int_equal(r2.action, CLUSTER_PULL);
	assert_int_equal(r2.pull_kind, CLUSTER_PULL_FILL);
}

static void test_invalidate_drops_copy(void **state)
{
	struct fixture *f = *state;
	char k[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "a", 0, k, sizeof(k));
	hot1(f, 1, k, "a", "c", NULL);

	fill(f, k, fill_va);
	assert_int_equal(read_c(f, k).action, CLUSTER_LOCAL);
	cluster_invalidate(f->cw, KH(k), false);
	assert_int_equal(stat_u64(f, "invalidations_received"), 1);
	assert_null(peek(f, k));
	uint64_t g1 = fill(f, k, NULL);

	/* An invalidation overtakes the fill: its answer (from before the
	 * write) installs nothing; the next read pulls again. */
	cluster_invalidate(f->cw, KH(k), false);
	assert_int_equal(cluster_pull_done(f->cw, CLUSTER_PULL_FILL, KH(k), g1,
					   0, fill_va, strlen(fill_va)), 0);
	assert_int_equal(stat_u64(f, "replica_fill_rejected"), 1);
	assert_null(peek(f, k));
	/* The read that pulled runs again: at the owner, never a 2nd pull. */
	struct cluster_route r = route(f, k, CLUSTER_OP_READ,
				       CLUSTER_FROM_CLIENT, true);
	assert_int_equal(r.action, CLUSTER_FORWARD);
	assert_string_equal(r.peer, ADDR_A);
	uint64_t g2 = fill(f, k, NULL);
	assert_true(g2 != g1);
	assert_int_equal(cluster_pull_done(f->cw, CLUSTER_PULL_FILL, KH(k), g2,
					   0, fill_va, strlen(fill_va)), 0);
	assert_int_equal(read_c(f, k).action, CLUSTER_LOCAL);
	assert_int_equal(stat_u64(f, "replica_fills"), 2);

	/* An invalidation of a key not in the set drops the copy all the
	 * same; the owner's data is never dropped. */
	char k2[32], mine[32];
	pick(f, "a", 1, k2, sizeof(k2));
	pick(f, "c", 0, mine, sizeof(mine));
	store(f, k2, "old");
	store(f, mine, "data");
	cluster_invalidate(f->cw, KH(k2), false);
	cluster_invalidate(f->cw, KH(mine), false);
	assert_null(peek(f, k2));
	assert_non_null(peek(f, mine));
}

static void test_block_until_done(void **state)
{
	struct fixture *f = *state;
	char k[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "a", 0, k, sizeof(k));
	hot1(f, 1, k, "a", "c", NULL);

	fill(f, k, fill_va);
	/* A fill that left before the block installs nothing. */
	struct cluster_route r = read_c(f, k);      /* lease valid: LOCAL */
	assert_int_equal(r.action, CLUSTER_LOCAL);
	cluster_invalidate(f->cw, KH(k), true);
	assert_null(peek(f, k));
	/* While blocked no fill is sent: reads go to the owner. */
	assert_int_equal(read_c(f, k).action, CLUSTER_FORWARD);
	/* Two writes blocked us; the first 'done' does not lift the block. */
	cluster_invalidate(f->cw, KH(k), true);
	cluster_invalidate(f->cw, KH(k), false);
	assert_int_equal(read_c(f, k).action, CLUSTER_FORWARD);
	/* A write passing through here does not lift it either. */
	cluster_route(f->cw, KH(k), CLUSTER_OP_SET, CLUSTER_FROM_CLIENT, false,
		      &r);
	assert_int_equal(r.action, CLUSTER_FORWARD);
	assert_int_equal(read_c(f, k).action, CLUSTER_FORWARD);
	/* The second 'done' does. */
	cluster_invalidate(f->cw, KH(k), false);
	fill(f, k, fill_va);
	const struct cache_item *it = peek(f, k);
	assert_non_null(it);
	assert_int_equal(it->cas, 12345);
	assert_int_equal(read_c(f, k).action, CLUSTER_LOCAL);
}

/* ---- leases ------------------------------------------------------------------- */

static void test_lease_expires(void **state)
{
	struct fixture *f = *state;
	char k[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "a", 0, k, sizeof(k));
	hot1(f, 1, k, "a", "c", NULL);

	fill(f, k, fill_va);
	assert_int_equal(read_c(f, k).action, CLUSTER_LOCAL);
	sleep_ms(70);
	/* Lease over: ask the owner again (the item is still here). */
	assert_non_null(peek(f, k));
	fill(f, k, "VA 3 f0 t-1 c777\r\nnew\r\n");
	assert_int_equal(peek(f, k)->cas, 777);
	assert_int_equal(read_c(f, k).action, CLUSTER_LOCAL);

	/* A block whose 'done' never comes expires: lease + (nodes + 1)
	 * forward timeouts (50 + 4 * 10 ms here). */
	cluster_invalidate(f->cw, KH(k), true);
	assert_int_equal(read_c(f, k).action, CLUSTER_FORWARD);
	sleep_ms(120);
	uint64_t g = fill(f, k, NULL);
	assert_int_equal(cluster_pull_done(f->cw, CLUSTER_PULL_FILL, KH(k), g,
					   0, fill_va, strlen(fill_va)), 0);
	assert_non_null(peek(f, k));
	assert_int_equal(read_c(f, k).action, CLUSTER_LOCAL);
}

static void test_owner_down_serves_stale(void **state)
{
	struct fixture *f = *state;
	char k[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "a", 0, k, sizeof(k));
	hot1(f, 1, k, "a", "c", NULL);

	fill(f, k, fill_va);
	sleep_ms(70);
	struct cluster_route r = read_c(f, k);
	assert_int_equal(r.action, CLUSTER_PULL);
	assert_int_equal(cluster_pull_done(f->cw, CLUSTER_PULL_FILL, KH(k),
					   r.pull_gen, -ECONNREFUSED, NULL, 0),
			 -ECONNREFUSED);
	/* The owner cannot be reached: the untouched copy is served. */
	r = read_c(f, k);
	assert_int_equal(r.action, CLUSTER_LOCAL);
	assert_int_equal(stat_u64(f, "replica_stale_hits"), 1);
	assert_int_equal(stat_u64(f, "replica_hits"), 0);
	const struct cache_item *it = peek(f, k);
	assert_non_null(it);
	assert_int_equal(it->cas, 12345);
	assert_memory_equal(cache_item_value_const(it), "hi", 2);

	/* ...but never once an invalidation touched it. */
	cluster_invalidate(f->cw, KH(k), false);
	r = read_c(f, k);
	assert_int_equal(r.action, CLUSTER_PULL);
	assert_int_equal(cluster_pull_done(f->cw, CLUSTER_PULL_FILL, KH(k),
					   r.pull_gen, -ECONNREFUSED, NULL, 0),
			 -ECONNREFUSED);
	r = read_c(f, k);
	assert_int_not_equal(r.action, CLUSTER_LOCAL);
	assert_int_equal(stat_u64(f, "replica_stale_hits"), 1);

	/* An invalidated item that is still in the cache is not served
	 * either (stored back by something other than a fill), even with the
	 * CAS the invalidated copy had. */
	store_cas(f, k, "zz", 12345);
	assert_int_equal(cluster_pull_done(f->cw, CLUSTER_PULL_FILL, KH(k), 0,
					   -ECONNREFUSED, NULL, 0),
			 -ECONNREFUSED);
	r = read_c(f, k);
	assert_int_not_equal(r.action, CLUSTER_LOCAL);
	assert_int_equal(stat_u64(f, "replica_stale_hits"), 1);

	/* Stale hits end two leases after the last failed fill. */
	char k2[32];
	pick(f, "a", 1, k2, sizeof(k2));
	hot1(f, 2, k2, "a", "c", NULL);
	fill(f, k2, fill_va);
	sleep_ms(70);
	r = read_c(f, k2);
	assert_int_equal(r.action, CLUSTER_PULL);
	assert_int_equal(cluster_pull_done(f->cw, CLUSTER_PULL_FILL, KH(k2),
					   r.pull_gen, -ECONNREFUSED, NULL, 0),
			 -ECONNREFUSED);
	assert_int_equal(read_c(f, k2).action, CLUSTER_LOCAL);
	assert_int_equal(stat_u64(f, "replica_stale_hits"), 2);
	sleep_ms(130);
	assert_int_equal(read_c(f, k2).action, CLUSTER_PULL);
}

/* ---- at a non-holder ----------------------------------------------------------- */

static void test_non_holder(void **state)
{
	struct fixture *f = *state;
	char k[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "a", 0, k, sizeof(k));
	hot1(f, 1, k, "a", "b", NULL);

	struct cluster_route r = read_c(f, k);
	assert_int_equal(r.action, CLUSTER_FORWARD);
	assert_string_equal(r.peer, ADDR_B);
	assert_string_equal(r.peer_id, "b");
	assert_false(r.final_hop);
	assert_int_equal(stat_u64(f, "replica_forwards"), 1);
	assert_int_equal(stat_u64(f, "forwarded"), 1);

	/* Writes go to the owner. */
	r = route(f, k, CLUSTER_OP_WRITE, CLUSTER_FROM_CLIENT, false);
	assert_int_equal(r.action, CLUSTER_FORWARD);
	assert_string_equal(r.peer, ADDR_A);
	r = route(f, k, CLUSTER_OP_SET, CLUSTER_FROM_CLIENT, false);
	assert_int_equal(r.action, CLUSTER_FORWARD);
	assert_string_equal(r.peer, ADDR_A);

	/* A peer's read is routed as any: one more hop to the owner; a
	 * final one runs here. */
	r = route(f, k, CLUSTER_OP_READ, CLUSTER_FROM_PEER, false);
	assert_int_equal(r.action, CLUSTER_FORWARD);
	assert_string_equal(r.peer, ADDR_A);
	assert_true(r.final_hop);
	r = route(f, k, CLUSTER_OP_READ, CLUSTER_FROM_PEER_FINAL, false);
	assert_int_equal(r.action, CLUSTER_LOCAL);
	assert_int_equal(stat_u64(f, "replica_forwards"), 1);

	/* A replica not in the map is never picked; with none left, the
	 * owner serves. */
	char k2[32];
	pick(f, "a", 1, k2, sizeof(k2));
	struct hot_set *s = set_new(2);
	set_add(s, k, "a", "zz", "b", (const char *)NULL);
	set_add(s, k2, "a", "zz", (const char *)NULL);
	publish_hot(f, s);
	r = read_c(f, k);
	assert_int_equal(r.action, CLUSTER_FORWARD);
	assert_string_equal(r.peer, ADDR_B);
	r = read_c(f, k2);
	assert_int_equal(r.action, CLUSTER_FORWARD);
	assert_string_equal(r.peer, ADDR_A);
}

/* ---- at the owner ------------------------------------------------------------------ */

static void test_owner_write(void **state)
{
	struct fixture *f = *state;
	char k[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "c", 0, k, sizeof(k));
	hot1(f, 1, k, "c", "a", "b");
	store(f, k, "v");

	struct cluster_route r = route(f, k, CLUSTER_OP_WRITE,
				       CLUSTER_FROM_CLIENT, false);
	assert_int_equal(r.action, CLUSTER_LOCAL);
	assert_true(r.hot_owner);
	r = route(f, k, CLUSTER_OP_SET, CLUSTER_FROM_CLIENT, false);
	assert_int_equal(r.action, CLUSTER_LOCAL);
	assert_true(r.hot_owner);
	/* A write forwarded by a replica too. */
	r = route(f, k, CLUSTER_OP_WRITE, CLUSTER_FROM_PEER, false);
	assert_int_equal(r.action, CLUSTER_LOCAL);
	assert_true(r.hot_owner);
	/* Reads at the owner are plain local reads. */
	r = read_c(f, k);
	assert_int_equal(r.action, CLUSTER_LOCAL);
	assert_false(r.hot_owner);

	/* After the write: one 'dpc_inv <key> done' per other node of the
	 * map (not only the set's replicas: a node may run a newer set
	 * version than ours), queued. */
	assert_false(cluster_worker_busy(f->cw));
	cluster_after_write(f->cw, KH(k));
	assert_int_equal(stat_u64(f, "invalidations_sent"), 2);
	assert_true(cluster_worker_busy(f->cw));

	/* Never to itself (a set that names the owner as a replica is
	 * refused by hot_set_parse; here it is built by hand). */
	char k3[32];
	pick(f, "c", 2, k3, sizeof(k3));
	hot1(f, 2, k3, "c", "c", "b");
	cluster_after_write(f->cw, KH(k3));
	assert_int_equal(stat_u64(f, "invalidations_sent"), 4);

	/* Not a hot key: nothing. */
	char k2[32];
	pick(f, "c", 1, k2, sizeof(k2));
	r = route(f, k2, CLUSTER_OP_WRITE, CLUSTER_FROM_CLIENT, false);
	assert_false(r.hot_owner);
	cluster_after_write(f->cw, KH(k2));
	assert_int_equal(stat_u64(f, "invalidations_sent"), 4);
	assert_int_equal(stat_u64(f, "replica_hits"), 0);
}

static void test_owner_write_sync(void **state)
{
	struct fixture *f = *state;
	char k[32], peer[MAP_ADDR_MAX], id[MAP_ID_MAX];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "c", 0, k, sizeof(k));
	struct hot_set *s = set_new(1);
	set_add(s, k, "c", "zz", "b", "a", (const char *)NULL);
	publish_hot(f, s);

	struct cluster_route r = route(f, k, CLUSTER_OP_WRITE,
				       CLUSTER_FROM_CLIENT, false);
	assert_int_equal(r.action, CLUSTER_PULL);
	assert_int_equal(r.pull_kind, CLUSTER_PULL_BLOCK);
	assert_true(r.final_hop);
	assert_true(r.hot_owner);
	assert_string_equal(r.peer, ADDR_A);
	assert_string_equal(r.peer_id, "a");

	/* The round: every other node of the map, in map order (a node may
	 * run a newer set version than ours), then false. */
	assert_true(cluster_replica_peer(f->cw, KH(k), 0, peer, id));
	assert_string_equal(peer, ADDR_A);
	assert_string_equal(id, "a");
	assert_true(cluster_replica_peer(f->cw, KH(k), 1, peer, id));
	assert_string_equal(peer, ADDR_B);
	assert_string_equal(id, "b");
	assert_false(cluster_replica_peer(f->cw, KH(k), 2, peer, id));
	/* Not a hot key: no round. */
	char k2[32];
	pick(f, "c", 1, k2, sizeof(k2));
	assert_false(cluster_replica_peer(f->cw, KH(k2), 0, peer, id));
	r = route(f, k2, CLUSTER_OP_WRITE, CLUSTER_FROM_CLIENT, false);
	assert_int_equal(r.action, CLUSTER_LOCAL);

	/* After the round the write runs here. */
	r = route(f, k, CLUSTER_OP_WRITE, CLUSTER_FROM_CLIENT, true);
	assert_int_equal(r.action, CLUSTER_LOCAL);
	assert_true(r.hot_owner);

	/* No replica of the set in the map: the other nodes are still
	 * blocked (one may run a newer set version). */
	s = set_new(2);
	set_add(s, k, "c", "zz", (const char *)NULL);
	publish_hot(f, s);
	r = route(f, k, CLUSTER_OP_WRITE, CLUSTER_FROM_CLIENT, false);
	assert_int_equal(r.action, CLUSTER_PULL);
	assert_true(r.hot_owner);
	assert_true(cluster_replica_peer(f->cw, KH(k), 0, peer, id));

	char buf[64];
	assert_string_equal(stat_str(f, "replica_consistency", buf), "sync");
}

/* A fake replica on loopback: what the owner's poll writes to it. */
static void test_after_write_sends(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	char addr[MAP_ADDR_MAX], k[32];

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->listen_fd >= 0);
	assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa,
			      sizeof(sa)), 0);
	assert_int_equal(listen(f->listen_fd, 4), 0);
	assert_int_equal(getsockname(f->listen_fd, (struct sockaddr *)&sa,
				     &sl), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sa.sin_port));

	publish_map(f, map3_at(addr, false));
	pick(f, "c", 0, k, sizeof(k));
	hot1(f, 1, k, "c", "a", NULL);
	cluster_after_write(f->cw, KH(k));
	/* to a (listening here) and b (every other node of the map) */
	assert_int_equal(stat_u64(f, "invalidations_sent"), 2);

	/* Poll until the request is on the wire (bounded: 2 s). */
	int conn = -1;
	char got[256];
	size_t n = 0;
	const char *want_end = " done\r\n";
	for (int i = 0; i < 2000; i++) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		cluster_worker_poll(f->cw, (uint64_t)ts.tv_sec * 1000 +
				    (uint64_t)ts.tv_nsec / 1000000, true);
		if (conn < 0) {
			struct pollfd p = { .fd = f->listen_fd,
					    .events = POLLIN };
			if (poll(&p, 1, 1) == 1)
				conn = accept(f->listen_fd, NULL, NULL);
			continue;
		}
		struct pollfd p = { .fd = conn, .events = POLLIN };
		if (poll(&p, 1, 1) == 1) {
			ssize_t rd = read(conn, got + n, sizeof(got) - 1 - n);
			if (rd <= 0)
				break;
			n += (size_t)rd;
			got[n] = '\0';
			if (strstr(got, want_end) != NULL)
				break;
		}
	}
	assert_true(conn >= 0);
	got[n] = '\0';
	char want[128];
	snprintf(want, sizeof(want), "dpc_peer c final\r\ndpc_inv %s done\r\n",
		 k);
	assert_string_equal(got, want);
	close(conn);
}

static void test_owner_warm_pull(void **state)
{
	struct fixture *f = *state;
	char k[32], k2[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "c", 0, k, sizeof(k));
	pick(f, "c", 1, k2, sizeof(k2));
	struct hot_set *s = set_new(1);
	/* The set still names the owner the map replaced (b): this node is
	 * the new owner and warms up from a replica. */
	set_add(s, k, "b", "a", (const char *)NULL);
	set_add(s, k2, "b", "a", (const char *)NULL);
	publish_hot(f, s);

	/* The owner lacks the key: one pull from a replica. */
	struct cluster_route r = read_c(f, k);
	assert_int_equal(r.action, CLUSTER_PULL);
	assert_int_equal(r.pull_kind, CLUSTER_PULL_WARM);
	assert_true(r.final_hop);
	assert_string_equal(r.peer, ADDR_A);
	uint64_t g = r.pull_gen;
	/* Once: the next read is a plain local miss. */
	r = read_c(f, k);
	assert_int_equal(r.action, CLUSTER_LOCAL);
	assert_int_equal(stat_u64(f, "warm_pulls"), 1);
	assert_int_equal(cluster_pull_done(f->cw, CLUSTER_PULL_WARM, KH(k), g,
					   0, fill_va, strlen(fill_va)), 0);
	const struct cache_item *it = peek(f, k);
	assert_non_null(it);
	assert_memory_equal(cache_item_value_const(it), "hi", 2);
	assert_int_equal(it->client_flags, 5);
	assert_int_equal(stat_u64(f, "warm_installed"), 1);

	/* A write that came in between wins over the warm answer. */
	r = read_c(f, k2);
	assert_int_equal(r.action, CLUSTER_PULL);
	assert_int_equal(r.pull_kind, CLUSTER_PULL_WARM);
	assert_string_equal(r.peer, ADDR_A);
	g = r.pull_gen;
	r = route(f, k2, CLUSTER_OP_SET, CLUSTER_FROM_CLIENT, false);
	assert_int_equal(r.action, CLUSTER_LOCAL);
	assert_true(r.hot_owner);
	store(f, k2, "newer");
	assert_int_equal(cluster_pull_done(f->cw, CLUSTER_PULL_WARM, KH(k2), g,
					   0, fill_va, strlen(fill_va)), 0);
	it = peek(f, k2);
	assert_non_null(it);
	assert_memory_equal(cache_item_value_const(it), "newer", 5);
	assert_int_equal(stat_u64(f, "warm_installed"), 1);
	/* A delete in between: nothing comes back either. */
	(void)cache_delete(f->ct, KH(k2), 0);
	assert_int_equal(cluster_pull_done(f->cw, CLUSTER_PULL_WARM, KH(k2), g,
					   0, fill_va, strlen(fill_va)), 0);
	assert_null(peek(f, k2));

	/* The owner has it: no pull. */
	char k3[32];
	pick(f, "c", 2, k3, sizeof(k3));
	hot1(f, 2, k3, "c", "a", NULL);
	store(f, k3, "here");
	r = read_c(f, k3);
	assert_int_equal(r.action, CLUSTER_LOCAL);
}

/* ---- writes at a replica, stale items, migrations ---------------------------- */

static void test_replica_write_drops_copy(void **state)
{
	struct fixture *f = *state;
	char k[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "a", 0, k, sizeof(k));
	hot1(f, 1, k, "a", "c", NULL);

	fill(f, k, fill_va);
	assert_int_equal(read_c(f, k).action, CLUSTER_LOCAL);
	struct cluster_route r = route(f, k, CLUSTER_OP_WRITE,
				       CLUSTER_FROM_CLIENT, false);
	assert_int_equal(r.action, CLUSTER_FORWARD);
	assert_string_equal(r.peer, ADDR_A);
	assert_false(r.hot_owner);
	assert_null(peek(f, k));
	/* Read your write: not the old copy, the owner's value. */
	fill(f, k, NULL);

	/* A fill that was out when the write passed installs nothing. */
	char k2[32];
	pick(f, "a", 1, k2, sizeof(k2));
	hot1(f, 2, k2, "a", "c", NULL);
	uint64_t g = fill(f, k2, NULL);
	r = route(f, k2, CLUSTER_OP_SET, CLUSTER_FROM_CLIENT, false);
	assert_int_equal(r.action, CLUSTER_FORWARD);
	assert_int_equal(cluster_pull_done(f->cw, CLUSTER_PULL_FILL, KH(k2), g,
					   0, fill_va, strlen(fill_va)), 0);
	assert_null(peek(f, k2));
	assert_int_equal(stat_u64(f, "replica_fill_rejected"), 1);
}

/* A TTL change (touch, gat, mg T) is the owner's: a replica passes it on
 * and drops its copy (which would keep the old TTL); the owner runs it. */
static void test_touch_goes_to_owner(void **state)
{
	struct fixture *f = *state;
	char k[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "a", 0, k, sizeof(k));
	hot1(f, 1, k, "a", "c", NULL);
	fill(f, k, fill_va);
	assert_int_equal(read_c(f, k).action, CLUSTER_LOCAL);
	struct cluster_route r = route(f, k, CLUSTER_OP_TOUCH,
				       CLUSTER_FROM_CLIENT, false);
	assert_int_equal(r.action, CLUSTER_FORWARD);
	assert_string_equal(r.peer, ADDR_A);
	assert_null(peek(f, k));
	assert_int_equal(read_c(f, k).action, CLUSTER_PULL);

	/* at the owner: a local touch, no invalidation round */
	char k2[32];
	pick(f, "c", 0, k2, sizeof(k2));
	hot1(f, 2, k2, "c", "a", NULL);
	r = route(f, k2, CLUSTER_OP_TOUCH, CLUSTER_FROM_CLIENT, false);
	assert_int_equal(r.action, CLUSTER_LOCAL);
	assert_false(r.hot_owner);
}

/* A fill that cannot even be sent (a full queue): the read runs here, and
 * must be a miss, not the unvalidated item that is here. */
static void test_fill_not_sent_is_a_miss(void **state)
{
	struct fixture *f = *state;
	char k[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "a", 0, k, sizeof(k));
	hot1(f, 1, k, "a", "c", NULL);
	store(f, k, "old");                 /* not installed by a fill */
	struct cluster_route r = read_c(f, k);
	assert_int_equal(r.action, CLUSTER_PULL);
	cluster_fill_not_sent(f->cw, KH(k));
	assert_null(peek(f, k));
	/* and the fill slot is free again */
	assert_int_equal(read_c(f, k).action, CLUSTER_PULL);
}

/* During a migration an invalidation changes the state only: the item
 * here may be the data of the key's old or new owner. */
static void test_invalidate_during_migration_keeps_item(void **state)
{
	struct fixture *f = *state;
	char k[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "a", 0, k, sizeof(k));
	hot1(f, 1, k, "a", "c", NULL);
	publish_map(f, map3_at(ADDR_A, true));
	store(f, k, "data");
	cluster_invalidate(f->cw, KH(k), false);
	assert_non_null(peek(f, k));
	assert_int_equal(stat_u64(f, "invalidations_received"), 1);
}

static void test_preexisting_item_not_served(void **state)
{
	struct fixture *f = *state;
	char k[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "a", 0, k, sizeof(k));
	store(f, k, "old");
	hot1(f, 1, k, "a", "c", NULL);

	fill(f, k, NULL);
	/* The pull went out: the copy must not be served meanwhile either. */
	assert_int_equal(read_c(f, k).action, CLUSTER_FORWARD);
	assert_int_equal(stat_u64(f, "replica_hits"), 0);

	/* A peer's final read (a warm pull) never gets it: it is dropped. */
	assert_non_null(peek(f, k));
	struct cluster_route r = route(f, k, CLUSTER_OP_READ,
				       CLUSTER_FROM_PEER_FINAL, false);
	assert_int_equal(r.action, CLUSTER_LOCAL);
	assert_null(peek(f, k));

	/* A key that was hot, cooled and is hot again: the copy from the
	 * first time is not the current state's. */
	char k2[32];
	pick(f, "a", 1, k2, sizeof(k2));
	hot1(f, 2, k2, "a", "c", NULL);
	fill(f, k2, fill_va);
	assert_int_equal(read_c(f, k2).action, CLUSTER_LOCAL);
	publish_hot(f, NULL);
	hot1(f, 3, k2, "a", "c", NULL);
	assert_int_equal(read_c(f, k2).action, CLUSTER_PULL);

	/* A new version of the set that keeps the key keeps its copy. */
	char k3[32];
	pick(f, "a", 2, k3, sizeof(k3));
	hot1(f, 4, k3, "a", "c", NULL);
	fill(f, k3, fill_va);
	struct hot_set *s = set_new(5);
	set_add(s, k2, "a", "b", (const char *)NULL);
	set_add(s, k3, "a", "c", (const char *)NULL);
	publish_hot(f, s);
	assert_int_equal(read_c(f, k3).action, CLUSTER_LOCAL);
}

static void test_migration_turns_replicas_off(void **state)
{
	struct fixture *f = *state;
	char k[32], kb[32];

	publish_map(f, map3_at(ADDR_A, true));
	pick(f, "a", 0, k, sizeof(k));
	pick(f, "b", 0, kb, sizeof(kb));
	struct hot_set *s = set_new(1);
	set_add(s, k, "a", "c", (const char *)NULL);
	set_add(s, kb, "b", "a", (const char *)NULL);
	publish_hot(f, s);

	struct cluster_route r = read_c(f, k);
	assert_int_equal(r.action, CLUSTER_FORWARD);
	assert_string_equal(r.peer, ADDR_A);
	r = read_c(f, kb);
	assert_int_equal(r.action, CLUSTER_FORWARD);
	assert_string_equal(r.peer, ADDR_B);
	r = route(f, k, CLUSTER_OP_WRITE, CLUSTER_FROM_CLIENT, false);
	assert_false(r.hot_owner);
	assert_int_equal(stat_u64(f, "replica_forwards"), 0);

	/* Stable again: the replica serves. */
	publish_map(f, map3_at(ADDR_A, false));
	r = read_c(f, k);
	assert_int_equal(r.action, CLUSTER_PULL);
	assert_int_equal(r.pull_kind, CLUSTER_PULL_FILL);
}

/*
 * Sync mode promises that once a client has the answer to a write, no
 * replica serves an older value. During a migration the owner runs writes
 * of hot keys with replica logic off (no BLOCK round, no invalidation), so
 * a copy filled before the migration must not be served after it: every
 * map change ends every copy (replica_map_changed).
 */
static void test_sync_copy_ends_with_map_change(void **state)
{
	struct fixture *f = *state;
	char k[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "a", 0, k, sizeof(k));
	hot1(f, 1, k, "a", "c", NULL);
	fill(f, k, fill_va);
	assert_int_equal(read_c(f, k).action, CLUSTER_LOCAL);

	/* A migration (k stays a's): reads go to the owner, which also takes
	 * writes now without telling any replica. */
	struct shard_map *mig = map3_at(ADDR_A, true);
	mig->epoch = 2;
	publish_map(f, mig);
	assert_int_equal(read_c(f, k).action, CLUSTER_FORWARD);

	/* Stable again, well within the copy's lease. */
	struct shard_map *st = map3_at(ADDR_A, false);
	st->epoch = 3;
	publish_map(f, st);
	struct cluster_route r = read_c(f, k);
	assert_int_equal(r.action, CLUSTER_PULL);
}

/*
 * An owner that deleted a hot key lacks it afterwards; its next read must
 * not pull the old value WARM from a replica that has not dropped its copy
 * yet (the delete would be undone): a write at the owner ends warm-up.
 */
static void test_owner_write_ends_warm_up(void **state)
{
	struct fixture *f = *state;
	char k[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "c", 0, k, sizeof(k));
	hot1(f, 1, k, "c", "a", NULL);
	store(f, k, "v1");
	assert_int_equal(read_c(f, k).action, CLUSTER_LOCAL);

	/* A client deletes the key at its owner. */
	struct cluster_route r = route(f, k, CLUSTER_OP_WRITE,
				       CLUSTER_FROM_CLIENT, false);
	assert_int_equal(r.action, CLUSTER_LOCAL);
	assert_true(r.hot_owner);
	assert_int_equal(cache_delete(f->ct, KH(k), 0), CACHE_OK);
	cluster_after_write(f->cw, KH(k));

	/* The next read must find it deleted, not bring back a replica's
	 * copy that the invalidation has not reached yet. */
	r = read_c(f, k);
	if (r.action == CLUSTER_PULL && r.pull_kind == CLUSTER_PULL_WARM)
		(void)cluster_pull_done(f->cw, CLUSTER_PULL_WARM, KH(k),
					r.pull_gen, 0, fill_va,
					strlen(fill_va));
	assert_null(peek(f, k));
}

/* ---- stats, the invalidation's format, the sketch drain ----------------------- */

static void test_stats(void **state)
{
	struct fixture *f = *state;
	char k1[32], k2[32], k3[32], buf[64];

	publish_map(f, map3_at(ADDR_A, false));
	assert_int_equal(stat_u64(f, "hot_set_version"), 0);
	assert_int_equal(stat_u64(f, "hot_set_keys"), 0);
	assert_int_equal(stat_u64(f, "hot_replica_keys"), 0);
	assert_string_equal(stat_str(f, "replica_consistency", buf), "async");
	(void)stat_u64(f, "sketch_skipped");

	pick(f, "a", 0, k1, sizeof(k1));
	pick(f, "b", 0, k2, sizeof(k2));
	pick(f, "a", 1, k3, sizeof(k3));
	struct hot_set *s = set_new(7);
	set_add(s, k1, "a", "c", (const char *)NULL);
	set_add(s, k2, "b", "a", "c", (const char *)NULL);
	set_add(s, k3, "a", "b", (const char *)NULL);
	publish_hot(f, s);
	assert_int_equal(stat_u64(f, "hot_set_version"), 7);
	assert_int_equal(stat_u64(f, "hot_set_keys"), 3);
	assert_int_equal(stat_u64(f, "hot_replica_keys"), 2);

	publish_hot(f, NULL);
	assert_int_equal(stat_u64(f, "hot_set_version"), 0);
	assert_int_equal(stat_u64(f, "hot_set_keys"), 0);
	assert_int_equal(stat_u64(f, "hot_replica_keys"), 0);
}

static void test_format_inval(void **state)
{
	(void)state;
	char buf[1024];

	size_t n = cluster_format_inval(buf, sizeof(buf), "foo", 3, false);
	assert_int_equal(n, strlen("dpc_inv foo done\r\n"));
	assert_memory_equal(buf, "dpc_inv foo done\r\n", n);
	n = cluster_format_inval(buf, sizeof(buf), "foo", 3, true);
	assert_int_equal(n, strlen("dpc_inv foo block\r\n"));
	assert_memory_equal(buf, "dpc_inv foo block\r\n", n);

	/* A space (or any byte a meta token cannot carry): base64 + ' b'. */
	n = cluster_format_inval(buf, sizeof(buf), "a b", 3, false);
	assert_int_equal(n, strlen("dpc_inv YSBi done b\r\n"));
	assert_memory_equal(buf, "dpc_inv YSBi done b\r\n", n);
	n = cluster_format_inval(buf, sizeof(buf), "k\r\n\x01", 4, true);
	assert_int_equal(n, strlen("dpc_inv aw0KAQ== block b\r\n"));
	assert_memory_equal(buf, "dpc_inv aw0KAQ== block b\r\n", n);

	/* The longest key fits a buffer its size allows. */
	char key[CACHE_KEY_MAX];
	memset(key, ' ', sizeof(key));
	n = cluster_format_inval(buf, sizeof(buf), key, sizeof(key), true);
	assert_true(n > 0);
	assert_memory_equal(buf + n - 10, " block b\r\n", 10);

	/* Too small: 0, never a cut request. */
	assert_int_equal(cluster_format_inval(buf, 10, "foo", 3, false), 0);
	assert_int_equal(cluster_format_inval(buf, strlen("dpc_inv foo done\r\n"),
					      "foo", 3, false), 0);
	assert_int_equal(cluster_format_inval(buf,
					      strlen("dpc_inv foo done\r\n") + 1,
					      "foo", 3, false),
			 strlen("dpc_inv foo done\r\n"));
}

static const struct hot_count *find_count(const struct hot_count *c,
					  unsigned n, const char *key)
{
	for (unsigned i = 0; i < n; i++)
		if (c[i].nkey == strlen(key) &&
		    memcmp(c[i].key, key, c[i].nkey) == 0)
			return &c[i];
	return NULL;
}

static void test_hot_drain(void **state)
{
	struct fixture *f = *state;
	struct hot_count out[64];
	uint64_t recv = 0, exec = 0;
	char kc[32], ka[32], kp[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "c", 0, kc, sizeof(kc));
	pick(f, "a", 0, ka, sizeof(ka));
	pick(f, "c", 1, kp, sizeof(kp));
	/* Whatever came before (nothing) is drained away. */
	(void)cluster_hot_drain(f->cl, out, 64, &recv, &exec);

	for (int i = 0; i < 5; i++)
		assert_int_equal(read_c(f, kc).action, CLUSTER_LOCAL);
	for (int i = 0; i < 2; i++)
		assert_int_equal(route(f, kc, CLUSTER_OP_WRITE,
				       CLUSTER_FROM_CLIENT, false).action,
				 CLUSTER_LOCAL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(read_c(f, ka).action, CLUSTER_FORWARD);
	/* Peers' requests are counted where the client sent them. */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(route(f, kp, CLUSTER_OP_READ,
				       CLUSTER_FROM_PEER, false).action,
				 CLUSTER_LOCAL);
		assert_int_equal(route(f, kp, CLUSTER_OP_WRITE,
				       CLUSTER_FROM_PEER_FINAL, false).action,
				 CLUSTER_LOCAL);
	}
	/* A request that runs again after its pull was counted already. */
	assert_int_equal(route(f, kc, CLUSTER_OP_READ, CLUSTER_FROM_CLIENT,
			       true).action, CLUSTER_LOCAL);
	unsigned n = cluster_hot_drain(f->cl, out, 64, &recv, &exec);
	assert_int_equal(n, 2);
	const struct hot_count *c = find_count(out, n, kc);
	assert_non_null(c);
	assert_int_equal(c->reads, 5);
	assert_int_equal(c->writes, 2);
	assert_int_equal(c->hash, cache_hash(kc, strlen(kc)));
	c = find_count(out, n, ka);
	assert_non_null(c);
	assert_int_equal(c->reads, 3);
	assert_int_equal(c->writes, 0);
	assert_null(find_count(out, n, kp));
	assert_int_equal(recv, 10);
	/* Executed here: 8 of the clients' and 8 of the peers'. */
	assert_int_equal(exec, 16);

	/* Since the last drain only. */
	assert_int_equal(read_c(f, kc).action, CLUSTER_LOCAL);
	n = cluster_hot_drain(f->cl, out, 64, &recv, &exec);
	assert_int_equal(n, 1);
	assert_int_equal(recv, 1);
	assert_int_equal(exec, 1);
	n = cluster_hot_drain(f->cl, out, 64, &recv, &exec);
	assert_int_equal(n, 0);
	assert_int_equal(recv, 0);
	assert_int_equal(exec, 0);
}

/* Detection off (--hot-sample 0): nothing counted, executed still is. */
static void test_hot_drain_off(void **state)
{
	struct fixture *f = *state;
	struct hot_count out[8];
	uint64_t recv = 1, exec = 1;
	char kc[32];

	publish_map(f, map3_at(ADDR_A, false));
	pick(f, "c", 0, kc, sizeof(kc));
	for (int i = 0; i < 3; i++)
		assert_int_equal(read_c(f, kc).action, CLUSTER_LOCAL);
	assert_int_equal(cluster_hot_drain(f->cl, out, 8, &recv, &exec), 0);
	assert_int_equal(recv, 0);
	assert_int_equal(exec, 3);
}

int main(void)
{
#define T(fn, setup) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_no_set_routes_by_owner, setup_default),
		T(test_replica_fill_then_local, setup_default),
		T(test_one_fill_at_a_time, setup_default),
		T(test_invalidate_drops_copy, setup_default),
		T(test_block_until_done, setup_default),
		T(test_lease_expires, setup_lease50),
		T(test_owner_down_serves_stale, setup_lease50),
		T(test_non_holder, setup_default),
		T(test_owner_write, setup_default),
		T(test_owner_write_sync, setup_sync),
		T(test_after_write_sends, setup_default),
		T(test_owner_warm_pull, setup_default),
		T(test_replica_write_drops_copy, setup_default),
		T(test_preexisting_item_not_served, setup_default),
		T(test_migration_turns_replicas_off, setup_default),
		T(test_sync_copy_ends_with_map_change, setup_sync),
		T(test_touch_goes_to_owner, setup_default),
		T(test_fill_not_sent_is_a_miss, setup_default),
		T(test_invalidate_during_migration_keeps_item, setup_default),
		T(test_owner_write_ends_warm_up, setup_default),
		T(test_stats, setup_default),
		T(test_format_inval, setup_default),
		T(test_hot_drain, setup_sample1),
		T(test_hot_drain_off, setup_default),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
