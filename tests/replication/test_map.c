/*
 * tests/replication/test_map.c - the shard map: building it, JSON round
 * trip and every parse error, clone/ref/unref, owners in the current and
 * previous ring, and what a migration moves (map_move_stats) for an add, a
 * remove and a reweight, checked against sampling the hash space.
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

#include "replication/map.h"

static const char spec_json[] =
	"{\"epoch\": 7, \"migration\": 3,\n"
	" \"nodes\": [{\"id\":\"n1\",\"addr\":\"127.0.0.1:21001\",\"weight\":1,\"state\":\"active\"},\n"
	"           {\"id\":\"n4\",\"addr\":\"127.0.0.1:21004\",\"weight\":2,\"state\":\"active\"},\n"
	"           {\"id\":\"n9\",\"addr\":\"127.0.0.1:21009\",\"weight\":1,\"state\":\"standby\"}],\n"
	" \"prev\":  [{\"id\":\"n1\",\"addr\":\"127.0.0.1:21001\",\"weight\":1,\"state\":\"active\"}]}";

static const char spec_compact[] =
	"{\"epoch\":7,\"migration\":3,\"phase\":\"moving\",\"nodes\":["
	"{\"id\":\"n1\",\"addr\":\"127.0.0.1:21001\",\"weight\":1,\"state\":\"active\"},"
	"{\"id\":\"n4\",\"addr\":\"127.0.0.1:21004\",\"weight\":2,\"state\":\"active\"},"
	"{\"id\":\"n9\",\"addr\":\"127.0.0.1:21009\",\"weight\":1,\"state\":\"standby\"}],"
	"\"prev\":["
	"{\"id\":\"n1\",\"addr\":\"127.0.0.1:21001\",\"weight\":1,\"state\":\"active\"}]}";

static uint32_t next_hash(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static struct shard_map *parse_ok(const char *json)
{
	struct shard_map *m = NULL;
	char err[256];
	int rc = map_parse(json, strlen(json), &m, err, sizeof(err));

	if (rc != 0)
		fail_msg("map_parse: %s", err);
	assert_non_null(m);
	return m;
}

/* Three (or n) equal active nodes n1.. at 127.0.0.1:21001.., stable. */
static struct shard_map *equal_map(unsigned n)
{
	struct shard_map *m = map_new();
	char id[16], addr[32];
	unsigned i;

	assert_non_null(m);
	for (i = 1; i <= n; i++) {
		snprintf(id, sizeof(id), "n%u", i);
		snprintf(addr, sizeof(addr), "127.0.0.1:%u", 21000 + i);
		assert_int_equal(map_add_node(m, id, addr, 1, MAP_NODE_ACTIVE), 0);
	}
	assert_int_equal(map_build_rings(m), 0);
	return m;
}

static void assert_same_nodes(const struct map_node *a, const struct map_node *b,
			      unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		assert_string_equal(a[i].id, b[i].id);
		assert_string_equal(a[i].addr, b[i].addr);
		assert_int_equal(a[i].weight, b[i].weight);
		assert_int_equal(a[i].state, b[i].state);
	}
}

static void test_id_valid(void **state)
{
	char longid[80];

	assert_true(map_id_valid("n1"));
	assert_true(map_id_valid("A.b_c-9"));
	memset(longid, 'x', 63);
	longid[63] = '\0';
	assert_true(map_id_valid(longid));
	longid[63] = 'x';
	longid[64] = '\0';
	assert_false(map_id_valid(longid));
	assert_false(map_id_valid(""));
	assert_false(map_id_valid(NULL));
	assert_false(map_id_valid("n 1"));
	assert_false(map_id_valid("n/1"));
	assert_false(map_id_valid("n\xc3\xa9"));
}

static void test_add_node(void **state)
{
	struct shard_map *m = map_new();
	char id[16];
	unsigned i;

	assert_non_null(m);
	assert_int_equal(m->refs, 1);
	assert_int_equal(map_add_node(m, "n1", "127.0.0.1:1", 1, MAP_NODE_ACTIVE), 0);
	assert_int_equal(map_add_node(m, "n1", "127.0.0.1:2", 1, MAP_NODE_ACTIVE), -EEXIST);
	assert_int_equal(map_add_node(m, "bad id", "127.0.0.1:2", 1, MAP_NODE_ACTIVE), -EINVAL);
	assert_int_equal(map_add_node(m, "n2", "127.0.0.1", 1, MAP_NODE_ACTIVE), -EINVAL);
	assert_int_equal(map_add_node(m, "n2", "127.0.0.1:0", 1, MAP_NODE_ACTIVE), -EINVAL);
	assert_int_equal(map_add_node(m, "n2", NULL, 1, MAP_NODE_ACTIVE), -EINVAL);
	assert_int_equal(map_add_node(m, "n2", "127.0.0.1:2", 0, MAP_NODE_ACTIVE), -EINVAL);
	assert_int_equal(map_add_node(m, "n2", "127.0.0.1:2", MAP_WEIGHT_MAX + 1,
				      MAP_NODE_ACTIVE), -EINVAL);
	assert_int_equal(map_add_node(m, "n2", "127.0.0.1:2", 1, 7), -EINVAL);
	assert_int_equal(map_add_node(m, "n2", "[::1]:2", MAP_WEIGHT_MAX,
				      MAP_NODE_STANDBY), 0);
	assert_int_equal(m->nnodes, 2);
	assert_int_equal(map_find(m, "n2"), 1);
	assert_int_equal(map_find(m, "n3"), -1);
	assert_int_equal(map_find_prev(m, "n1"), -1);

	for (i = 3; i <= MAP_NODES_MAX; i++) {
		snprintf(id, sizeof(id), "n%u", i);
		assert_int_equal(map_add_node(m, id, "127.0.0.1:3", 1,
					      MAP_NODE_STANDBY), 0);
	}
	assert_int_equal(map_add_node(m, "one-more", "127.0.0.1:3", 1,
				      MAP_NODE_STANDBY), -E2BIG);
	map_unref(m);
}

static void test_json_round_trip(void **state)
{
	struct shard_map *m = parse_ok(spec_json), *m2;
	char *s, *s2;

	assert_int_equal(m->epoch, 7);
	assert_int_equal(m->migration, 3);
	/* No "phase" in the spec's JSON: a migration is then MOVING. */
	assert_int_equal(m->phase, MAP_PHASE_MOVING);
	assert_int_equal(m->nnodes, 3);
	assert_int_equal(m->nprev, 1);
	assert_string_equal(m->nodes[1].id, "n4");
	assert_int_equal(m->nodes[1].weight, 2);
	assert_int_equal(m->nodes[2].state, MAP_NODE_STANDBY);
	assert_int_equal(ring_nservers(m->ring), 2);      /* n9 is standby */
	assert_int_equal(ring_nservers(m->prev_ring), 1);
	assert_int_equal(m->refs, 1);

	s = map_format(m);
	assert_non_null(s);
	assert_string_equal(s, spec_compact);
	m2 = parse_ok(s);
	assert_int_equal(m2->epoch, m->epoch);
	assert_int_equal(m2->migration, m->migration);
	assert_int_equal(m2->nnodes, m->nnodes);
	assert_int_equal(m2->nprev, m->nprev);
	assert_same_nodes(m2->nodes, m->nodes, m->nnodes);
	assert_same_nodes(m2->prev, m->prev, m->nprev);
	s2 = map_format(m2);
	assert_string_equal(s2, s);
	free(s);
	free(s2);
	map_unref(m2);
	map_unref(m);

	/* A stable map: no prev, no prev ring, migration written as 0. */
	m = equal_map(2);
	m->epoch = 12;
	s = map_format(m);
	assert_string_equal(s,
		"{\"epoch\":12,\"migration\":0,\"nodes\":["
		"{\"id\":\"n1\",\"addr\":\"127.0.0.1:21001\",\"weight\":1,\"state\":\"active\"},"
		"{\"id\":\"n2\",\"addr\":\"127.0.0.1:21002\",\"weight\":1,\"state\":\"active\"}]}");
	m2 = parse_ok(s);
	assert_int_equal(m2->migration, 0);
	assert_null(m2->prev_ring);
	assert_int_equal(m2->nprev, 0);
	free(s);
	map_unref(m2);
	map_unref(m);

	/* Empty map; unknown members are ignored; migration may be omitted. */
	m = parse_ok("{\"epoch\":0,\"nodes\":[],\"future\":{\"x\":1}}");
	assert_int_equal(m->nnodes, 0);
	assert_null(map_owner(m, 123));
	s = map_format(m);
	assert_string_equal(s, "{\"epoch\":0,\"migration\":0,\"nodes\":[]}");
	free(s);
	map_unref(m);
}

static void test_parse_errors(void **state)
{
	static const struct {
		const char *json;
		const char *err;       /* a substring of the one-line reason */
	} cases[] = {
		{"", "bad JSON"},
		{"{\"epoch\":1,", "bad JSON"},
		{"{\"epoch\":1,\"nodes\":[]} x", "bad JSON"},
		{"{\"epoch\":1,\"epoch\":2,\"nodes\":[]}", "bad JSON"},
		{"[]", "not a JSON object"},
		{"{\"epoch\":1,\"phase\":\"moving\",\"nodes\":[]}",
		 "phase \"moving\" in a stable map"},
		{"{\"epoch\":1,\"migration\":1,\"phase\":\"later\",\"nodes\":[],"
		 "\"prev\":[]}", "unknown phase \"later\""},
		{"{\"epoch\":1,\"migration\":1,\"phase\":2,\"nodes\":[],"
		 "\"prev\":[]}", "phase is not a string"},
		{"{\"nodes\":[]}", "missing \"epoch\""},
		{"{\"epoch\":-1,\"nodes\":[]}", "epoch is not a non-negative integer"},
		{"{\"epoch\":1.5,\"nodes\":[]}", "epoch is not a non-negative integer"},
		{"{\"epoch\":\"7\",\"nodes\":[]}", "epoch is not a non-negative integer"},
		{"{\"epoch\":99999999999999999999,\"nodes\":[]}", "bad JSON"},
		{"{\"epoch\":1,\"migration\":-2,\"nodes\":[]}",
		 "migration is not a non-negative integer"},
		{"{\"epoch\":1}", "missing \"nodes\""},
		{"{\"epoch\":1,\"nodes\":{}}", "\"nodes\" is not an array"},
		{"{\"epoch\":1,\"nodes\":[7]}", "nodes[0] is not an object"},
		{"{\"epoch\":1,\"nodes\":[{\"addr\":\"h:1\",\"weight\":1,\"state\":\"active\"}]}",
		 "nodes[0]: missing \"id\""},
		{"{\"epoch\":1,\"nodes\":[{\"id\":\"a\",\"weight\":1,\"state\":\"active\"}]}",
		 "nodes[0]: missing \"addr\""},
		{"{\"epoch\":1,\"nodes\":[{\"id\":\"a\",\"addr\":\"h:1\",\"state\":\"active\"}]}",
		 "nodes[0]: missing \"weight\""},
		{"{\"epoch\":1,\"nodes\":[{\"id\":\"a\",\"addr\":\"h:1\",\"weight\":1}]}",
		 "nodes[0]: missing \"state\""},
		{"{\"epoch\":1,\"nodes\":[{\"id\":\"a b\",\"addr\":\"h:1\",\"weight\":1,\"state\":\"active\"}]}",
		 "nodes[0]: bad id"},
		{"{\"epoch\":1,\"nodes\":[{\"id\":5,\"addr\":\"h:1\",\"weight\":1,\"state\":\"active\"}]}",
		 "nodes[0]: bad id"},
		{"{\"epoch\":1,\"nodes\":[{\"id\":\"a\",\"addr\":\"h\",\"weight\":1,\"state\":\"active\"}]}",
		 "bad addr"},
		{"{\"epoch\":1,\"nodes\":[{\"id\":\"a\",\"addr\":\"h:99999\",\"weight\":1,\"state\":\"active\"}]}",
		 "bad addr"},
		{"{\"epoch\":1,\"nodes\":[{\"id\":\"a\",\"addr\":\"h:1\",\"weight\":0,\"state\":\"active\"}]}",
		 "weight must be an integer 1..1000"},
		{"{\"epoch\":1,\"nodes\":[{\"id\":\"a\",\"addr\":\"h:1\",\"weight\":1001,\"state\":\"active\"}]}",
		 "weight must be an integer 1..1000"},
		{"{\"epoch\":1,\"nodes\":[{\"id\":\"a\",\"addr\":\"h:1\",\"weight\":\"2\",\"state\":\"active\"}]}",
		 "weight must be an integer 1..1000"},
		{"{\"epoch\":1,\"nodes\":[{\"id\":\"a\",\"addr\":\"h:1\",\"weight\":1,\"state\":\"gone\"}]}",
		 "unknown state"},
		{"{\"epoch\":1,\"nodes\":[{\"id\":\"a\",\"addr\":\"h:1\",\"weight\":1,\"state\":1}]}",
		 "unknown state"},
		{"{\"epoch\":1,\"nodes\":["
		 "{\"id\":\"a\",\"addr\":\"h:1\",\"weight\":1,\"state\":\"active\"},"
		 "{\"id\":\"a\",\"addr\":\"h:2\",\"weight\":1,\"state\":\"active\"}]}",
		 "nodes[1]: duplicate id \"a\""},
		{"{\"epoch\":1,\"migration\":2,\"nodes\":[]}", "migration 2 without \"prev\""},
		{"{\"epoch\":1,\"nodes\":[],\"prev\":[]}", "\"prev\" in a stable map"},
		{"{\"epoch\":1,\"migration\":2,\"nodes\":[],\"prev\":["
		 "{\"id\":\"a\",\"addr\":\"h:1\",\"weight\":1,\"state\":\"paused\"}]}",
		 "prev[0] (a): unknown state"},
	};
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct shard_map *m = (struct shard_map *)&m;
		char err[256];
		int rc;

		err[0] = 'Z';
		rc = map_parse(cases[i].json, strlen(cases[i].json), &m, err,
			       sizeof(err));
		if (rc != -EINVAL || m != NULL)
			fail_msg("case %u (%s): rc %d", i, cases[i].json, rc);
		if (strstr(err, cases[i].err) == NULL || strchr(err, '\n') != NULL)
			fail_msg("case %u: error \"%s\", want \"%s\"", i, err,
				 cases[i].err);
	}
}

static void test_parse_too_many_nodes(void **state)
{
	size_t cap = (MAP_NODES_MAX + 2) * 100 + 64, len;
	struct shard_map *m;
	char *json = malloc(cap), err[256];
	unsigned i;

	assert_non_null(json);
	len = (size_t)snprintf(json, cap, "{\"epoch\":1,\"nodes\":[");
	for (i = 0; i <= MAP_NODES_MAX; i++)
		len += (size_t)snprintf(json + len, cap - len,
			"%s{\"id\":\"n%u\",\"addr\":\"10.0.0.1:%u\",\"weight\":1,\"state\":\"standby\"}",
			i ? "," : "", i, 1000 + i);
	len += (size_t)snprintf(json + len, cap - len, "]}");
	assert_int_equal(map_parse(json, len, &m, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "too many nodes"));

	/* Exactly MAP_NODES_MAX is fine: drop the last node. */
	json[strrchr(json, '{') - json - 1] = '\0';
	strcat(json, "]}");
	assert_int_equal(map_parse(json, strlen(json), &m, err, sizeof(err)), 0);
	assert_int_equal(m->nnodes, MAP_NODES_MAX);
	map_unref(m);
	free(json);
}

/* Parsing takes a length, not a C string: bytes past len are not read. */
static void test_parse_uses_len(void **state)
{
	static const char buf[] = "{\"epoch\":3,\"nodes\":[]}GARBAGE";
	struct shard_map *m;
	char err[128];

	assert_int_equal(map_parse(buf, strlen(buf) - 7, &m, err, sizeof(err)), 0);
	assert_int_equal(m->epoch, 3);
	map_unref(m);
	assert_int_equal(map_parse(buf, strlen(buf), &m, err, sizeof(err)), -EINVAL);
}

static void test_clone_ref_unref(void **state)
{
	struct shard_map *m = parse_ok(spec_json), *c;
	uint32_t s = 5;
	unsigned i;

	c = map_clone(m);
	assert_non_null(c);
	assert_int_equal(c->refs, 1);
	assert_int_equal(c->epoch, 7);
	assert_int_equal(c->migration, 3);
	assert_int_equal(c->nnodes, 3);
	assert_int_equal(c->nprev, 1);
	assert_same_nodes(c->nodes, m->nodes, m->nnodes);
	assert_same_nodes(c->prev, m->prev, m->nprev);
	/* Deep: its own arrays and rings, giving the same owners. */
	assert_ptr_not_equal(c->nodes, m->nodes);
	assert_ptr_not_equal(c->prev, m->prev);
	assert_ptr_not_equal(c->ring, m->ring);
	assert_non_null(c->prev_ring);
	for (i = 0; i < 1000; i++) {
		uint32_t h = next_hash(&s);

		assert_string_equal(map_owner(c, h)->id, map_owner(m, h)->id);
		assert_string_equal(map_prev_owner(c, h)->id,
				    map_prev_owner(m, h)->id);
	}
	/* Changing the clone leaves the original alone. */
	assert_int_equal(map_add_node(c, "n10", "127.0.0.1:21010", 1,
				      MAP_NODE_ACTIVE), 0);
	assert_int_equal(m->nnodes, 3);
	assert_int_equal(map_find(m, "n10"), -1);

	map_ref(m);
	map_ref(m);
	assert_int_equal(m->refs, 3);
	map_unref(m);
	map_unref(m);
	assert_int_equal(m->refs, 1);
	assert_string_equal(m->nodes[0].id, "n1");   /* still alive */
	map_unref(m);                                 /* freed (ASan/valgrind) */
	map_unref(c);
	map_unref(NULL);
}

static void test_owners(void **state)
{
	struct shard_map *m = parse_ok(spec_json);
	uint32_t s = 11;
	unsigned i, n1 = 0, n4 = 0;

	for (i = 0; i < 30000; i++) {
		uint32_t h = next_hash(&s);
		const struct map_node *o = map_owner(m, h), *p = map_prev_owner(m, h);
		int k = ring_lookup(m->ring, h);

		assert_non_null(o);
		assert_ptr_equal(o, &m->nodes[m->ring_node[k]]);
		assert_int_equal(o->state, MAP_NODE_ACTIVE);
		n1 += strcmp(o->id, "n1") == 0;
		n4 += strcmp(o->id, "n4") == 0;
		assert_string_equal(p->id, "n1");   /* prev has only n1 */
	}
	assert_int_equal(n1 + n4, 30000);       /* n9 is standby */
	assert_true(n4 > n1);                   /* weight 2 vs 1 */

	/* Stable: no previous owner. */
	map_unref(m);
	m = equal_map(3);
	assert_null(map_prev_owner(m, 1));
	assert_null(m->prev_ring);
	map_unref(m);
}

/* Sampled fraction of hashes whose owner id changes between the rings. */
static double sampled_moving(const struct shard_map *m, const char *only_to,
			     const char *only_from)
{
	uint32_t s = 2024;
	unsigned i, moved = 0;

	for (i = 0; i < 200000; i++) {
		uint32_t h = next_hash(&s);
		const struct map_node *a = map_prev_owner(m, h), *b = map_owner(m, h);

		if (strcmp(a->id, b->id) == 0)
			continue;
		moved++;
		if (only_to != NULL)
			assert_string_equal(b->id, only_to);
		if (only_from != NULL)
			assert_string_equal(a->id, only_from);
	}
	return moved / 200000.0;
}

static void test_move_stats_add(void **state)
{
	struct shard_map *m = equal_map(3);
	struct map_move_stats st;
	double f;

	map_move_stats(m, &st);          /* stable: nothing moves */
	assert_int_equal(st.arcs_total, 0);
	assert_int_equal(st.arcs_moving, 0);
	assert_true(st.fraction_moving == 0.0);

	assert_int_equal(map_snapshot_prev(m), 0);
	assert_int_equal(map_add_node(m, "n4", "127.0.0.1:21004", 1,
				      MAP_NODE_ACTIVE), 0);
	m->migration = 1;
	/* Until the rings are rebuilt there is no previous owner, and the
	 * current ring still has the three old nodes only. */
	assert_null(map_prev_owner(m, 5));
	assert_int_equal(ring_nservers(m->ring), 3);
	assert_int_equal(map_build_rings(m), 0);
	assert_int_equal(ring_nservers(m->ring), 4);
	assert_int_equal(ring_nservers(m->prev_ring), 3);
	map_move_stats(m, &st);
	/* 3 x 160 old points and the same plus 160 new ones: 640 arcs, of
	 * which exactly those ending at one of n4's points move. */
	assert_int_equal(st.arcs_total, 640);
	assert_int_equal(st.arcs_moving, 160);
	assert_true(st.fraction_moving > 0.225 && st.fraction_moving < 0.275);
	f = ring_share(m->ring, 3);
	assert_true(st.fraction_moving > f - 1e-12 && st.fraction_moving < f + 1e-12);
	f = sampled_moving(m, "n4", NULL);
	assert_true(f > st.fraction_moving - 0.01 && f < st.fraction_moving + 0.01);
	map_unref(m);
}

static void test_move_stats_remove(void **state)
{
	struct shard_map *m = equal_map(4);
	struct map_move_stats st;
	double f;

	/* Drain n2: it stays known, as standby, and its arcs go elsewhere. */
	assert_int_equal(map_snapshot_prev(m), 0);
	m->nodes[1].state = MAP_NODE_STANDBY;
	m->migration = 2;
	assert_int_equal(map_build_rings(m), 0);
	map_move_stats(m, &st);
	assert_int_equal(st.arcs_total, 640);
	assert_int_equal(st.arcs_moving, 160);
	f = ring_share(m->prev_ring, 1);
	assert_true(st.fraction_moving > f - 1e-12 && st.fraction_moving < f + 1e-12);
	f = sampled_moving(m, NULL, "n2");
	assert_true(f > st.fraction_moving - 0.01 && f < st.fraction_moving + 0.01);

	/* Finishing the migration: stable again, nothing moving. */
	map_clear_prev(m);
	m->migration = 0;
	assert_int_equal(map_build_rings(m), 0);
	assert_null(m->prev_ring);
	map_move_stats(m, &st);
	assert_int_equal(st.arcs_moving, 0);
	map_unref(m);
}

static void test_move_stats_reweight(void **state)
{
	struct shard_map *m = equal_map(3);
	struct map_move_stats st;
	double f, gain;

	assert_int_equal(map_snapshot_prev(m), 0);
	m->nodes[1].weight = 2;
	m->migration = 3;
	assert_int_equal(map_build_rings(m), 0);
	map_move_stats(m, &st);
	/* n2 goes from 160 to 240 points, the others from 160 to 120: n2 gains
	 * about 1/2 - 1/3 of the space; a little more moves between n1 and
	 * n3, whose dropped points hand their arcs to whoever is next. */
	gain = ring_share(m->ring, 1) - ring_share(m->prev_ring, 1);
	assert_true(gain > 0.1);
	assert_true(st.fraction_moving >= gain - 1e-12);
	assert_true(st.fraction_moving < 0.35);
	assert_true(st.arcs_moving > 0 && st.arcs_moving < st.arcs_total);
	f = sampled_moving(m, NULL, NULL);
	assert_true(f > st.fraction_moving - 0.01 && f < st.fraction_moving + 0.01);
	map_unref(m);
}

static void test_move_from_or_to_empty(void **state)
{
	struct shard_map *m = map_new();
	struct map_move_stats st;

	/* Migration from an empty ring: everything moves. */
	assert_int_equal(map_snapshot_prev(m), 0);
	assert_int_equal(map_add_node(m, "a", "127.0.0.1:1", 1, MAP_NODE_ACTIVE), 0);
	m->migration = 1;
	assert_int_equal(map_build_rings(m), 0);
	assert_null(map_prev_owner(m, 42));
	assert_non_null(map_owner(m, 42));
	map_move_stats(m, &st);
	assert_int_equal(st.arcs_total, 160);
	assert_int_equal(st.arcs_moving, 160);
	assert_true(st.fraction_moving > 1.0 - 1e-12);
	map_unref(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_valid),
		cmocka_unit_test(test_add_node),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_too_many_nodes),
		cmocka_unit_test(test_parse_uses_len),
		cmocka_unit_test(test_clone_ref_unref),
		cmocka_unit_test(test_owners),
		cmocka_unit_test(test_move_stats_add),
		cmocka_unit_test(test_move_stats_remove),
		cmocka_unit_test(test_move_stats_reweight),
		cmocka_unit_test(test_move_from_or_to_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
