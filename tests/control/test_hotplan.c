/*
 * tests/control/test_hotplan.c - the leader's choice of hot keys
 * (control/hotplan.c) on a 4-node map: a Zipf-like load gets replicas for
 * its hottest keys, more for hotter ones; the budget, min_rate and the
 * write fraction; a migration keeps the previous set; hysteresis; the
 * version moves only on change; previous replicas are kept, new ones go to
 * the least loaded node; a node without a report is never chosen and is
 * dropped; the owner is never a replica; a report from outside the map is
 * ignored; the order of reports does not matter.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control/hotplan.h"
#include "replication/ring.h"

#define NNODES 4
#define MAXKEYS 256

static const char *const ids[NNODES] = { "n1", "n2", "n3", "n4" };

/* ---- fixtures ----------------------------------------------------------- */

static struct shard_map *make_map(uint64_t migration)
{
	struct shard_map *m = map_new();
	char addr[32];

	assert_non_null(m);
	m->epoch = 5;
	for (int i = 0; i < NNODES; i++) {
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", 21001 + i);
		assert_int_equal(map_add_node(m, ids[i], addr, 1,
					      MAP_NODE_ACTIVE), 0);
	}
	if (migration) {
		assert_int_equal(map_snapshot_prev(m), 0);
		m->migration = migration;
		m->phase = MAP_PHASE_MOVING;
	}
	assert_int_equal(map_build_rings(m), 0);
	return m;
}

struct reports {
	struct hot_report r[8];
	struct hot_rate keys[8][MAXKEYS];
	const struct hot_report *ptr[8];
	unsigned n;
};

static struct hot_report *add_report(struct reports *rs, const char *node,
				     double executed)
{
	struct hot_report *r = &rs->r[rs->n];

	memset(r, 0, sizeof(*r));
	strcpy(r->node, node);
	r->interval_ms = 1000;
	r->received = executed;
	r->executed = executed;
	r->keys = rs->keys[rs->n];
	rs->ptr[rs->n] = r;
	rs->n++;
	return r;
}

static void add_key(struct hot_report *r, const char *key, double reads,
		    double writes)
{
	struct hot_rate *k = &r->keys[r->nkeys++];

	assert_true(r->nkeys <= MAXKEYS);
	memset(k, 0, sizeof(*k));
	k->nkey = (uint8_t)strlen(key);
	memcpy(k->key, key, k->nkey);
	k->hash = cache_hash(key, k->nkey);
	k->reads = reads;
	k->writes = writes;
}

/* 'key' with the given cluster rates, split evenly over every report. */
static void add_everywhere(struct reports *rs, const char *key, double reads,
			   double writes)
{
	for (unsigned i = 0; i < rs->n; i++)
		add_key(&rs->r[i], key, reads / rs->n, writes / rs->n);
}

static struct hot_set *plan(const struct hot_plan_config *cfg,
			    const struct shard_map *m,
			    const struct reports *rs,
			    const struct hot_set *prev)
{
	struct hot_set *s = NULL;

	assert_int_equal(hot_plan(cfg, m, rs->ptr, rs->n, prev, &s), 0);
	assert_non_null(s);
	return s;
}

static const struct hot_set_key *find(const struct hot_set *s,
				      const char *key)
{
	int i = hot_set_find(s, key, strlen(key));

	return i < 0 ? NULL : &s->keys[i];
}

static bool has_replica(const struct hot_set_key *k, const char *id)
{
	for (unsigned i = 0; i < k->nreplicas; i++)
		if (strcmp(k->replicas[i], id) == 0)
			return true;
	return false;
}

static const char *owner_of(const struct shard_map *m, const char *key)
{
	return map_owner(m, ring_hash(key, strlen(key)))->id;
}

/* What every set must satisfy: owner from the map, never a replica, no
 * duplicate replica, at least one, and a round trip through JSON. */
static void check_set(const struct hot_set *s, const struct shard_map *m)
{
	struct hot_set *back = NULL;
	char *json;

	for (unsigned i = 0; i < s->nkeys; i++) {
		const struct hot_set_key *k = &s->keys[i];

		assert_string_equal(k->owner,
				    map_owner(m, ring_hash(k->key, k->nkey))->id);
		assert_true(k->nreplicas >= 1);
		for (unsigned j = 0; j < k->nreplicas; j++) {
			assert_string_not_equal(k->replicas[j], k->owner);
			assert_true(map_find(m, k->replicas[j]) >= 0);
			for (unsigned l = 0; l < j; l++)
				assert_string_not_equal(k->replicas[j],
							k->replicas[l]);
		}
	}
	json = hot_set_format(s);
	assert_non_null(json);
	assert_int_equal(hot_set_parse(json, strlen(json), &back, NULL, 0), 0);
	assert_true(hot_set_same(s, back));
	hot_set_free(&back);
	free(json);
}

/* Zipf(1.2)-like: key i at 20000 / (i + 1)^1.2 reads/s cluster-wide, over
 * 4 nodes that each execute 10000/s (L = 10000, share 0.05: a holder
 * carries at most 500/s of one key). */
static double zipf_rate(int i)
{
	return 20000.0 / pow(i + 1, 1.2);
}

static void zipf_reports(struct reports *rs)
{
	char key[32];

	memset(rs, 0, sizeof(*rs));
	for (int n = 0; n < NNODES; n++)
		add_report(rs, ids[n], 10000);
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "zipf:%d", i);
		add_everywhere(rs, key, zipf_rate(i), 0);
	}
}

/* ---- tests -------------------------------------------------------------- */

static void test_zipf(void **state)
{
	struct hot_plan_config cfg;
	struct shard_map *m = make_map(0);
	struct reports *rs = calloc(1, sizeof(*rs));
	struct hot_set *s;
	unsigned expect = 0, last = NNODES;
	char key[32];

	(void)state;
	hot_plan_defaults(&cfg);
	assert_int_equal(cfg.budget, 64);
	assert_true(cfg.share == 0.05 && cfg.min_rate == 100 &&
		    cfg.max_write_fraction == 0.2);
	zipf_reports(rs);
	s = plan(&cfg, m, rs, NULL);
	check_set(s, m);
	assert_int_equal(s->version, 1);
	assert_int_equal(s->epoch, 5);
	/* Exactly the keys above one holder's share enter, hottest first,
	 * and a hotter key never has fewer replicas. */
	for (int i = 0; i < 200; i++)
		if (zipf_rate(i) > 500)
			expect++;
	assert_true(expect > 4 && expect < 64);
	assert_int_equal(s->nkeys, expect);
	for (unsigned i = 0; i < s->nkeys; i++) {
		const struct hot_set_key *k;
		unsigned h;

		snprintf(key, sizeof(key), "zipf:%u", i);
		k = &s->keys[i];
		assert_int_equal(k->nkey, strlen(key));
		assert_memory_equal(k->key, key, k->nkey);
		assert_true(fabs(k->reads - zipf_rate((int)i)) < 1e-6);
		h = (unsigned)ceil(zipf_rate((int)i) / 500);
		assert_int_equal(k->nreplicas, h - 1 < NNODES - 1 ? h - 1 : NNODES - 1);
		assert_true(k->nreplicas <= last);
		last = k->nreplicas;
	}
	assert_int_equal(s->keys[0].nreplicas, NNODES - 1);
	assert_int_equal(s->keys[s->nkeys - 1].nreplicas, 1);
	snprintf(key, sizeof(key), "zipf:%u", expect);
	assert_null(find(s, key));

	/* New single replicas spread over the nodes, not all on one. */
	{
		unsigned per[NNODES] = { 0 };

		for (unsigned i = 0; i < s->nkeys; i++)
			if (s->keys[i].nreplicas == 1)
				per[map_find(m, s->keys[i].replicas[0])]++;
		for (int n = 0; n < NNODES; n++)
			assert_true(per[n] < expect / 2);
	}
	hot_set_free(&s);
	map_unref(m);
	free(rs);
}

static void test_budget_min_rate_writes(void **state)
{
	struct hot_plan_config cfg;
	struct shard_map *m = make_map(0);
	struct reports *rs = calloc(1, sizeof(*rs));
	struct hot_set *s;

	(void)state;
	hot_plan_defaults(&cfg);
	zipf_reports(rs);
	cfg.budget = 5;
	s = plan(&cfg, m, rs, NULL);
	check_set(s, m);
	assert_int_equal(s->nkeys, 5);
	assert_non_null(find(s, "zipf:0"));
	assert_non_null(find(s, "zipf:4"));
	assert_null(find(s, "zipf:5"));
	hot_set_free(&s);

	cfg.budget = 0;
	s = plan(&cfg, m, rs, NULL);
	assert_int_equal(s->nkeys, 0);
	assert_int_equal(s->version, 1);
	hot_set_free(&s);

	/* Idle nodes: every key is above a holder's share, but only keys at
	 * min_rate or more enter. */
	memset(rs, 0, sizeof(*rs));
	for (int n = 0; n < NNODES; n++)
		add_report(rs, ids[n], 100);
	add_everywhere(rs, "a", 150, 0);
	add_everywhere(rs, "b", 100, 0);
	add_everywhere(rs, "c", 99, 0);
	hot_plan_defaults(&cfg);
	s = plan(&cfg, m, rs, NULL);
	check_set(s, m);
	assert_int_equal(s->nkeys, 2);
	assert_non_null(find(s, "a"));
	assert_non_null(find(s, "b"));
	assert_null(find(s, "c"));
	hot_set_free(&s);

	/* Write-heavy keys are not replicated (max 0.2 of reads + writes). */
	memset(rs, 0, sizeof(*rs));
	for (int n = 0; n < NNODES; n++)
		add_report(rs, ids[n], 10000);
	add_everywhere(rs, "w-heavy", 5000, 2000);     /* 0.29 */
	add_everywhere(rs, "w-light", 5000, 1000);     /* 0.17 */
	add_everywhere(rs, "w-only", 0, 9000);
	s = plan(&cfg, m, rs, NULL);
	check_set(s, m);
	assert_int_equal(s->nkeys, 1);
	assert_non_null(find(s, "w-light"));
	assert_true(find(s, "w-light")->writes == 1000);
	hot_set_free(&s);

	/* L = 0 (nothing executed yet): a key at min_rate is replicated on
	 * every node. */
	memset(rs, 0, sizeof(*rs));
	for (int n = 0; n < NNODES; n++)
		add_report(rs, ids[n], 0);
	add_everywhere(rs, "early", 400, 0);
	s = plan(&cfg, m, rs, NULL);
	check_set(s, m);
	assert_int_equal(s->nkeys, 1);
	assert_int_equal(s->keys[0].nreplicas, NNODES - 1);
	hot_set_free(&s);

	map_unref(m);
	free(rs);
}

static void test_migration_keeps_prev(void **state)
{
	struct hot_plan_config cfg;
	struct shard_map *m = make_map(0), *moving = make_map(6);
	struct reports *rs = calloc(1, sizeof(*rs));
	struct hot_set *prev, *s;

	(void)state;
	hot_plan_defaults(&cfg);
	zipf_reports(rs);
	prev = plan(&cfg, m, rs, NULL);
	assert_true(prev->nkeys > 0);

	/* Completely different load: during the migration nothing moves. */
	memset(rs, 0, sizeof(*rs));
	for (int n = 0; n < NNODES; n++)
		add_report(rs, ids[n], 10000);
	add_everywhere(rs, "other", 50000, 0);
	s = plan(&cfg, moving, rs, prev);
	assert_true(hot_set_same(s, prev));
	assert_int_equal(s->version, prev->version);
	assert_int_equal(s->epoch, prev->epoch);
	assert_null(find(s, "other"));
	hot_set_free(&s);

	/* No previous set: an empty one, version 1. */
	s = plan(&cfg, moving, rs, NULL);
	assert_int_equal(s->nkeys, 0);
	assert_int_equal(s->version, 1);
	hot_set_free(&s);

	/* Stable again: the new load decides. */
	s = plan(&cfg, m, rs, prev);
	check_set(s, m);
	assert_int_equal(s->nkeys, 1);
	assert_non_null(find(s, "other"));
	assert_int_equal(s->version, prev->version + 1);
	hot_set_free(&s);
	hot_set_free(&prev);
	map_unref(m);
	map_unref(moving);
	free(rs);
}

static void test_hysteresis_and_version(void **state)
{
	struct hot_plan_config cfg;
	struct shard_map *m = make_map(0);
	struct reports *rs = calloc(1, sizeof(*rs));
	struct hot_set *s1, *s2, *s3;

	(void)state;
	hot_plan_defaults(&cfg);
	/* L = 10000: the entry bar is 500/s, the stay bar 250/s. */
	memset(rs, 0, sizeof(*rs));
	for (int n = 0; n < NNODES; n++)
		add_report(rs, ids[n], 10000);
	add_everywhere(rs, "warm", 800, 0);
	add_everywhere(rs, "cooling", 800, 0);
	s1 = plan(&cfg, m, rs, NULL);
	assert_int_equal(s1->nkeys, 2);
	assert_int_equal(s1->version, 1);

	/* The same input again: same content, same version. Rates alone
	 * moving do not bump it either. */
	s2 = plan(&cfg, m, rs, s1);
	assert_true(hot_set_same(s1, s2));
	assert_int_equal(s2->version, 1);
	hot_set_free(&s2);
	rs->r[0].keys[0].reads += 10;
	s2 = plan(&cfg, m, rs, s1);
	assert_int_equal(s2->version, 1);
	hot_set_free(&s2);

	/* Slightly cooled (under the entry bar, over half of it) stays; a
	 * key as warm that was not in the set does not enter; a cold one
	 * leaves. */
	memset(rs, 0, sizeof(*rs));
	for (int n = 0; n < NNODES; n++)
		add_report(rs, ids[n], 10000);
	add_everywhere(rs, "warm", 400, 0);
	add_everywhere(rs, "cooling", 200, 0);
	add_everywhere(rs, "newcomer", 400, 0);
	s2 = plan(&cfg, m, rs, s1);
	check_set(s2, m);
	assert_int_equal(s2->nkeys, 1);
	assert_non_null(find(s2, "warm"));
	assert_null(find(s2, "cooling"));
	assert_null(find(s2, "newcomer"));
	assert_int_equal(s2->version, 2);
	/* The kept key keeps its replica. */
	assert_string_equal(find(s2, "warm")->replicas[0],
			    find(s1, "warm")->replicas[0]);

	/* Under half of min_rate: gone even where its share of the load
	 * would keep it (L = 800: entry bar 40/s, 2 holders at 50/s). */
	memset(rs, 0, sizeof(*rs));
	for (int n = 0; n < NNODES; n++)
		add_report(rs, ids[n], 800);
	add_everywhere(rs, "warm", 49, 0);
	s3 = plan(&cfg, m, rs, s2);
	assert_int_equal(s3->nkeys, 0);
	assert_int_equal(s3->version, 3);
	hot_set_free(&s3);
	/* At half of min_rate it stays, as it was. */
	rs->r[0].keys[0].reads += 1.0;
	s3 = plan(&cfg, m, rs, s2);
	assert_int_equal(s3->nkeys, 1);
	assert_int_equal(s3->version, 2);
	hot_set_free(&s3);

	hot_set_free(&s1);
	hot_set_free(&s2);
	map_unref(m);
	free(rs);
}

/* A key whose owner is 'owner'. */
static void key_owned_by(const struct shard_map *m, const char *owner,
			 char *key, size_t len)
{
	for (int i = 0;; i++) {
		snprintf(key, len, "key-%d", i);
		if (strcmp(owner_of(m, key), owner) == 0)
			return;
	}
}

static void test_replica_choice(void **state)
{
	struct hot_plan_config cfg;
	struct shard_map *m = make_map(0);
	struct reports *rs = calloc(1, sizeof(*rs));
	struct hot_set *s1, *s2;
	const struct hot_set_key *k;
	char key[32];

	(void)state;
	hot_plan_defaults(&cfg);
	key_owned_by(m, "n1", key, sizeof(key));
	/* n2 is the least loaded: L = 10750, bar 537.5; R 800 -> 1 replica. */
	memset(rs, 0, sizeof(*rs));
	add_report(rs, "n1", 10000);
	add_report(rs, "n2", 5000);
	add_report(rs, "n3", 20000);
	add_report(rs, "n4", 8000);
	add_everywhere(rs, key, 800, 0);
	s1 = plan(&cfg, m, rs, NULL);
	check_set(s1, m);
	k = find(s1, key);
	assert_non_null(k);
	assert_string_equal(k->owner, "n1");
	assert_int_equal(k->nreplicas, 1);
	assert_string_equal(k->replicas[0], "n2");

	/* n4 becomes the least loaded: the key keeps n2. */
	rs->r[1].executed = 9000;
	rs->r[3].executed = 1000;
	s2 = plan(&cfg, m, rs, s1);
	k = find(s2, key);
	assert_string_equal(k->replicas[0], "n2");
	assert_int_equal(s2->version, s1->version);
	hot_set_free(&s2);

	/* Hotter (R 1300 over bar 500 -> 3 holders): n2 kept, the least
	 * loaded other (n4) added. */
	for (unsigned i = 0; i < rs->n; i++)
		rs->r[i].keys[0].reads = 1300.0 / 4;
	s2 = plan(&cfg, m, rs, s1);
	check_set(s2, m);
	k = find(s2, key);
	assert_int_equal(k->nreplicas, 2);
	assert_true(has_replica(k, "n2") && has_replica(k, "n4"));
	assert_int_equal(s2->version, s1->version + 1);

	/* Cooler again (1 replica): the most loaded one goes (n2 at 9000
	 * vs n4 at 1000). */
	hot_set_free(&s1);
	s1 = s2;
	for (unsigned i = 0; i < rs->n; i++)
		rs->r[i].keys[0].reads = 800.0 / 4;
	s2 = plan(&cfg, m, rs, s1);
	k = find(s2, key);
	assert_int_equal(k->nreplicas, 1);
	assert_string_equal(k->replicas[0], "n4");
	hot_set_free(&s2);

	/* n4 dies (no report): never chosen, dropped from the replicas. */
	memset(rs, 0, sizeof(*rs));
	add_report(rs, "n1", 10000);
	add_report(rs, "n2", 9000);
	add_report(rs, "n3", 20000);
	add_everywhere(rs, key, 5000, 0);
	s2 = plan(&cfg, m, rs, s1);
	check_set(s2, m);
	k = find(s2, key);
	assert_non_null(k);
	assert_int_equal(k->nreplicas, 2);      /* capped at N - 1 */
	assert_false(has_replica(k, "n4"));
	assert_true(has_replica(k, "n2") && has_replica(k, "n3"));
	hot_set_free(&s2);

	/* The owner has no report: it is still the owner, the replicas are
	 * the others. */
	memset(rs, 0, sizeof(*rs));
	add_report(rs, "n2", 10000);
	add_report(rs, "n3", 10000);
	add_report(rs, "n4", 10000);
	add_everywhere(rs, key, 5000, 0);
	s2 = plan(&cfg, m, rs, NULL);
	check_set(s2, m);
	k = find(s2, key);
	assert_string_equal(k->owner, "n1");
	assert_int_equal(k->nreplicas, 2);
	hot_set_free(&s2);

	/* One node left reporting: nothing can be replicated. */
	memset(rs, 0, sizeof(*rs));
	add_report(rs, "n3", 10000);
	add_everywhere(rs, key, 5000, 0);
	s2 = plan(&cfg, m, rs, s1);
	assert_int_equal(s2->nkeys, 0);
	assert_int_equal(s2->version, s1->version + 1);
	hot_set_free(&s2);

	hot_set_free(&s1);
	map_unref(m);
	free(rs);
}

static void test_outsiders_and_order(void **state)
{
	struct hot_plan_config cfg;
	struct shard_map *m = make_map(0);
	struct reports *rs = calloc(1, sizeof(*rs));
	struct hot_set *s1, *s2;
	char *j1, *j2;

	(void)state;
	hot_plan_defaults(&cfg);
	zipf_reports(rs);
	s1 = plan(&cfg, m, rs, NULL);

	/* A report from n9 (not in the map) with a huge key and no load:
	 * ignored whole (its key, its load, and it holds nothing). A second
	 * report from n1 is ignored too. */
	{
		struct hot_report *r = add_report(rs, "n9", 0);

		add_key(r, "outsider", 1e6, 0);
		r = add_report(rs, "n1", 0);
		add_key(r, "zipf:0", 1e6, 0);
	}
	s2 = plan(&cfg, m, rs, NULL);
	check_set(s2, m);
	assert_null(find(s2, "outsider"));
	assert_true(fabs(find(s2, "zipf:0")->reads - zipf_rate(0)) < 1e-6);
	for (unsigned i = 0; i < s2->nkeys; i++)
		assert_false(has_replica(&s2->keys[i], "n9"));
	j1 = hot_set_format(s1);
	j2 = hot_set_format(s2);
	assert_string_equal(j1, j2);
	free(j2);
	hot_set_free(&s2);

	/* Any order of the (four real) reports: the same set, byte for byte. */
	rs->n = NNODES;
	{
		const struct hot_report *t = rs->ptr[0];

		rs->ptr[0] = rs->ptr[3];
		rs->ptr[3] = t;
		t = rs->ptr[1];
		rs->ptr[1] = rs->ptr[2];
		rs->ptr[2] = t;
	}
	s2 = plan(&cfg, m, rs, NULL);
	j2 = hot_set_format(s2);
	assert_string_equal(j1, j2);
	free(j1);
	free(j2);
	hot_set_free(&s2);

	/* A standby node's clients count, but it holds nothing. */
	{
		struct shard_map *m2 = map_new();
		struct hot_report *r;

		m2->epoch = 9;
		assert_int_equal(map_add_node(m2, "n1", "127.0.0.1:21001", 1, MAP_NODE_ACTIVE), 0);
		assert_int_equal(map_add_node(m2, "n2", "127.0.0.1:21002", 1, MAP_NODE_ACTIVE), 0);
		assert_int_equal(map_add_node(m2, "n3", "127.0.0.1:21003", 1, MAP_NODE_ACTIVE), 0);
		assert_int_equal(map_add_node(m2, "sb", "127.0.0.1:21009", 1, MAP_NODE_STANDBY), 0);
		assert_int_equal(map_build_rings(m2), 0);
		memset(rs, 0, sizeof(*rs));
		add_report(rs, "n1", 10000);
		add_report(rs, "n2", 10000);
		add_report(rs, "n3", 10000);
		r = add_report(rs, "sb", 0);
		add_key(r, "via-standby", 5000, 0);
		s2 = plan(&cfg, m2, rs, NULL);
		check_set(s2, m2);
		assert_int_equal(s2->epoch, 9);
		assert_int_equal(s2->nkeys, 1);
		assert_int_equal(s2->keys[0].nreplicas, 2);
		assert_false(has_replica(&s2->keys[0], "sb"));
		hot_set_free(&s2);
		map_unref(m2);
	}

	/* Bad arguments. */
	assert_int_equal(hot_plan(NULL, m, NULL, 0, NULL, &s2), -EINVAL);
	assert_int_equal(hot_plan(&cfg, NULL, NULL, 0, NULL, &s2), -EINVAL);

	hot_set_free(&s1);
	map_unref(m);
	free(rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zipf),
		cmocka_unit_test(test_budget_min_rate_writes),
		cmocka_unit_test(test_migration_keeps_prev),
		cmocka_unit_test(test_hysteresis_and_version),
		cmocka_unit_test(test_replica_choice),
		cmocka_unit_test(test_outsiders_and_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
