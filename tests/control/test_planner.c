/*
 * tests/control/test_planner.c - the leader's planning rules on small maps
 * with an explicit clock: the first map, joins and deaths with the grace,
 * every operator request and its refusals, a migration from start to the
 * stable map (also finished by a fresh leader), the stable-directly cases,
 * idempotence, and malformed input.
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

#include "control/planner.h"

#define GRACE 5000

/* ---- helpers --------------------------------------------------------- */

static void member(struct planner_member *m, const char *id, uint32_t weight,
		   bool standby)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	/* n1 -> 127.0.0.1:21001, the layout of the cluster tests. */
	snprintf(m->addr, sizeof(m->addr), "127.0.0.1:%d",
		 21000 + atoi(id + 1));
	m->weight = weight;
	m->standby = standby;
}

/* A stable map of active nodes "n1 n2 ..." (space separated), each with the
 * address member() gives it and weight 1; a trailing '*' makes a node
 * standby. Rings built. */
static struct shard_map *mkmap(uint64_t epoch, const char *ids)
{
	struct shard_map *m = map_new();
	char buf[256], *tok, *save = NULL;

	assert_non_null(m);
	snprintf(buf, sizeof(buf), "%s", ids);
	for (tok = strtok_r(buf, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		struct planner_member mb;
		size_t n = strlen(tok);
		bool standby = tok[n - 1] == '*';

		if (standby)
			tok[n - 1] = '\0';
		member(&mb, tok, 1, false);
		assert_int_equal(map_add_node(m, mb.id, mb.addr, 1,
					      standby ? MAP_NODE_STANDBY :
							MAP_NODE_ACTIVE), 0);
	}
	m->epoch = epoch;
	assert_int_equal(map_build_rings(m), 0);
	return m;
}

/* Members "n1 n2 n3*" (a '*' registers with --standby), weight 1. Returns
 * the count. */
static unsigned mkmembers(struct planner_member *v, const char *ids)
{
	char buf[256], *tok, *save = NULL;
	unsigned n = 0;

	snprintf(buf, sizeof(buf), "%s", ids);
	for (tok = strtok_r(buf, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		size_t len = strlen(tok);
		bool standby = tok[len - 1] == '*';

		if (standby)
			tok[len - 1] = '\0';
		member(&v[n++], tok, 1, standby);
	}
	return n;
}

/* Sources "n1 n2" all done (or all not done). */
static unsigned mksources(struct planner_source *v, const char *ids, bool done)
{
	char buf[256], *tok, *save = NULL;
	unsigned n = 0;

	snprintf(buf, sizeof(buf), "%s", ids);
	for (tok = strtok_r(buf, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		memset(&v[n], 0, sizeof(v[n]));
		snprintf(v[n].id, sizeof(v[n].id), "%s", tok);
		v[n++].done = done;
	}
	return n;
}

/* One step: map (may be NULL), members "...", sources, request, now. */
struct world {
	struct planner *p;
	struct planner_member members[16];
	unsigned nmembers;
	struct planner_source sources[16];
	unsigned nsources;
};

static int setup(void **state)
{
	static struct world w;

	memset(&w, 0, sizeof(w));
	w.p = planner_create(GRACE);
	if (w.p == NULL)
		return -1;
	*state = &w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	planner_destroy(&w->p);
	assert_null(w->p);
	return 0;
}

static void step(struct world *w, const struct shard_map *map,
		 const struct planner_request *rq, uint64_t now,
		 struct planner_output *out)
{
	struct planner_input in = {
		.map = map,
		.members = w->members,
		.nmembers = w->nmembers,
		.sources = w->sources,
		.nsources = w->nsources,
		.request = rq,
		.now_ms = now,
	};

	assert_int_equal(planner_step(w->p, &in, out), 0);
	/* Every published map: epoch + 1, rings built, nodes sorted by id,
	 * a migration id equal to its epoch with prev, or stable without. */
	if (out->map != NULL) {
		const struct shard_map *m = out->map;
		unsigned i;

		assert_int_equal(m->epoch, map != NULL ? map->epoch + 1 : 1);
		assert_non_null(m->ring);
		for (i = 1; i < m->nnodes; i++)
			assert_true(strcmp(m->nodes[i - 1].id,
					   m->nodes[i].id) < 0);
		if (m->migration != 0 && m->phase == MAP_PHASE_PREPARE) {
			/* A migration starts in its PREPARE phase. */
			assert_int_equal(m->migration, m->epoch);
			assert_int_equal(out->migration_started, m->epoch);
			assert_non_null(m->prev_ring);
			assert_int_equal(m->nprev, map->nnodes);
		} else if (m->migration != 0) {
			/* PREPARE -> MOVING: the same migration and nodes. */
			assert_int_equal(m->phase, MAP_PHASE_MOVING);
			assert_int_equal(m->migration, map->migration);
			assert_int_equal(map->phase, MAP_PHASE_PREPARE);
			assert_int_equal(out->migration_started, 0);
			assert_int_equal(m->nnodes, map->nnodes);
			assert_int_equal(m->nprev, map->nprev);
		} else {
			assert_int_equal(m->nprev, 0);
			assert_null(m->prev_ring);
			assert_int_equal(out->migration_started, 0);
		}
	}
}

/* Every member applies the PREPARE map *mig; the next step moves the
 * migration to MOVING, which replaces *mig. */
static void to_moving(struct world *w, struct shard_map **mig, uint64_t now)
{
	struct planner_output out;

	assert_int_equal((*mig)->phase, MAP_PHASE_PREPARE);
	for (unsigned i = 0; i < w->nmembers; i++)
		w->members[i].applied_epoch = (*mig)->epoch;
	step(w, *mig, NULL, now, &out);
	assert_non_null(out.map);
	assert_int_equal(out.map->phase, MAP_PHASE_MOVING);
	map_unref(*mig);
	*mig = out.map;
}

static struct planner_request req(enum planner_op op, const char *id,
				  uint32_t weight)
{
	struct planner_request r;

	memset(&r, 0, sizeof(r));
	r.op = op;
	if (id != NULL)
		snprintf(r.id, sizeof(r.id), "%s", id);
	r.weight = weight;
	return r;
}

static const struct map_node *node(const struct shard_map *m, const char *id)
{
	int i = map_find(m, id);

	return i < 0 ? NULL : &m->nodes[i];
}

/* The ids of m's nodes, "n1 n2* ..." like mkmap's argument. */
static const char *ids(const struct shard_map *m)
{
	static char buf[256];
	size_t len = 0;
	unsigned i;

	buf[0] = '\0';
	for (i = 0; i < m->nnodes; i++)
		len += snprintf(buf + len, sizeof(buf) - len, "%s%s%s",
				i ? " " : "", m->nodes[i].id,
				m->nodes[i].state == MAP_NODE_STANDBY ? "*" :
									"");
	return buf;
}

/* ---- names ------------------------------------------------------------ */

static void test_op_names(void **state)
{
	enum planner_op op;

	(void)state;
	for (op = PLANNER_OP_ADD; op <= PLANNER_OP_REBALANCE; op++)
		assert_int_equal(planner_op_parse(planner_op_name(op)), op);
	assert_string_equal(planner_op_name(PLANNER_OP_DRAIN), "drain");
	assert_int_equal(planner_op_parse("weight"), PLANNER_OP_WEIGHT);
	assert_int_equal(planner_op_parse("Add"), PLANNER_OP_NONE);
	assert_int_equal(planner_op_parse(""), PLANNER_OP_NONE);
	assert_int_equal(planner_op_parse(NULL), PLANNER_OP_NONE);
	assert_int_equal(planner_op_parse("none"), PLANNER_OP_NONE);
	assert_string_equal(planner_op_name((enum planner_op)99), "unknown");
}

/* ---- the first map ----------------------------------------------------- */

static void test_first_map(void **state)
{
	struct world *w = *state;
	struct planner_request rq = req(PLANNER_OP_DRAIN, "n1", 0);
	struct planner_output out;

	w->nmembers = mkmembers(w->members, "n3 n1 n9* n2");
	step(w, NULL, &rq, 100, &out);
	assert_non_null(out.map);
	assert_int_equal(out.map->epoch, 1);
	assert_int_equal(out.map->migration, 0);
	/* Sorted, the --standby member left out. */
	assert_string_equal(ids(out.map), "n1 n2 n3");
	assert_string_equal(node(out.map, "n2")->addr, "127.0.0.1:21002");
	assert_int_equal(ring_nservers(out.map->ring), 3);
	/* The request waits for the map to exist. */
	assert_int_equal(out.req_status, PLANNER_REQ_DEFERRED);

	/* Published: the same input now plans nothing, twice. */
	{
		struct shard_map *m = out.map;

		step(w, m, NULL, 200, &out);
		assert_null(out.map);
		assert_int_equal(out.req_status, PLANNER_REQ_NONE);
		step(w, m, NULL, 300, &out);
		assert_null(out.map);
		map_unref(m);
	}
}

static void test_first_map_no_members(void **state)
{
	struct world *w = *state;
	struct planner_output out;
	struct shard_map *m;

	w->nmembers = mkmembers(w->members, "n1*");
	step(w, NULL, NULL, 0, &out);
	assert_non_null(out.map);
	assert_int_equal(out.map->nnodes, 0);
	m = out.map;

	/* The first node to join an empty ring moves no data: stable. */
	w->nmembers = mkmembers(w->members, "n1* n2");
	step(w, m, NULL, 10, &out);
	assert_non_null(out.map);
	assert_string_equal(ids(out.map), "n2");
	assert_int_equal(out.map->migration, 0);
	map_unref(out.map);
	map_unref(m);
}

/* ---- a migration, start to finish ---------------------------------------- */

static void test_add_fourth_node_moves_a_quarter(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(7, "n1 n2 n3");
	struct map_move_stats st;
	struct planner_output out;

	w->nmembers = mkmembers(w->members, "n1 n2 n3 n4");
	step(w, m, NULL, 1000, &out);
	assert_non_null(out.map);
	assert_int_equal(out.map->epoch, 8);
	assert_int_equal(out.map->migration, 8);
	assert_int_equal(out.migration_started, 8);
	assert_string_equal(ids(out.map), "n1 n2 n3 n4");
	assert_int_equal(out.map->nprev, 3);
	assert_int_equal(map_find_prev(out.map, "n4"), -1);
	assert_true(map_find_prev(out.map, "n2") >= 0);
	assert_string_equal(out.reason, "add n4");
	map_move_stats(out.map, &st);
	assert_true(st.arcs_moving > 0);
	assert_true(st.fraction_moving > 0.15 && st.fraction_moving < 0.35);
	map_unref(out.map);
	map_unref(m);
}

static void test_add_then_sources_done_then_stable(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(7, "n1 n2 n3"), *mig;
	struct planner_request rq = req(PLANNER_OP_DRAIN, "n1", 0);
	struct planner_output out;

	w->nmembers = mkmembers(w->members, "n1 n2 n3 n4");
	step(w, m, NULL, 1000, &out);
	mig = out.map;
	assert_non_null(mig);
	assert_int_equal(mig->migration, 8);
	to_moving(w, &mig, 1050);

	/* No progress yet, then two of three sources done: keep waiting. */
	step(w, mig, NULL, 1100, &out);
	assert_null(out.map);
	w->nsources = mksources(w->sources, "n1 n3", true);
	step(w, mig, NULL, 1200, &out);
	assert_null(out.map);
	assert_int_equal(out.migration_finished, 0);

	/* A request meanwhile is refused, naming the migration and why. */
	step(w, mig, &rq, 1250, &out);
	assert_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_REJECTED);
	assert_string_equal(out.message,
		"conflicting operation in flight: migration 8 (add n4)");

	/* n2's record exists but says not done. */
	w->nsources += mksources(w->sources + w->nsources, "n2", false);
	step(w, mig, NULL, 1300, &out);
	assert_null(out.map);

	/* All done: the same nodes, stable. */
	w->nsources = mksources(w->sources, "n1 n2 n3", true);
	step(w, mig, NULL, 1400, &out);
	assert_non_null(out.map);
	assert_int_equal(out.map->epoch, 10);
	assert_int_equal(out.map->migration, 0);
	assert_int_equal(out.map->nprev, 0);
	assert_int_equal(out.migration_finished, 8);
	assert_string_equal(ids(out.map), "n1 n2 n3 n4");

	/* Published: nothing more to do. */
	{
		struct shard_map *st = out.map;

		w->nsources = 0;
		step(w, st, NULL, 1500, &out);
		assert_null(out.map);
		step(w, st, NULL, 1600, &out);
		assert_null(out.map);
		map_unref(st);
	}
	map_unref(mig);
	map_unref(m);
}

static void test_finish_waits_request_deferred(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(3, "n1 n2 n3");
	struct planner_request rq = req(PLANNER_OP_WEIGHT, "n1", 3);
	struct planner_output out;
	struct shard_map *mig;

	w->nmembers = mkmembers(w->members, "n1 n2 n3 n4");
	step(w, m, NULL, 0, &out);
	mig = out.map;
	to_moving(w, &mig, 5);
	w->nsources = mksources(w->sources, "n1 n2 n3", true);
	/* The step that finishes cannot also apply the request. */
	step(w, mig, &rq, 10, &out);
	assert_non_null(out.map);
	assert_int_equal(out.migration_finished, 4);
	assert_int_equal(out.req_status, PLANNER_REQ_DEFERRED);
	map_unref(out.map);
	map_unref(mig);
	map_unref(m);
}

static void test_new_leader_finishes_from_the_map(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(7, "n1 n2 n3");
	struct planner_request rq = req(PLANNER_OP_ADD, "n5", 0);
	struct planner_output out;
	struct planner *fresh;
	struct shard_map *mig;
	char *json;
	char err[128];

	w->nmembers = mkmembers(w->members, "n1 n2 n3 n4 n5*");
	step(w, m, NULL, 1000, &out);
	mig = out.map;
	assert_non_null(mig);
	to_moving(w, &mig, 1050);

	/* The old leader dies; the new one reads the map back from JSON. */
	planner_destroy(&w->p);
	fresh = planner_create(GRACE);
	assert_non_null(fresh);
	w->p = fresh;
	json = map_format(mig);
	assert_non_null(json);
	map_unref(mig);
	assert_int_equal(map_parse(json, strlen(json), &mig, err, sizeof(err)),
			 0);
	free(json);

	/* It does not know the reason, but still refuses and names N. */
	w->nsources = mksources(w->sources, "n1 n2", true);
	step(w, mig, &rq, 2000, &out);
	assert_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_REJECTED);
	assert_string_equal(out.message,
			    "conflicting operation in flight: migration 8");

	w->nsources = mksources(w->sources, "n1 n2 n3", true);
	step(w, mig, NULL, 2100, &out);
	assert_non_null(out.map);
	assert_int_equal(out.migration_finished, 8);
	assert_int_equal(out.map->migration, 0);
	assert_string_equal(ids(out.map), "n1 n2 n3 n4");
	map_unref(out.map);
	map_unref(mig);
	map_unref(m);
}

/* A source whose registration is gone counts as done; a node that loses
 * nothing is no source and need not report. */
static void test_finish_counts_only_live_sources(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(2, "n1 n2 n3 n4");
	struct planner_request rq = req(PLANNER_OP_DRAIN, "n2", 0);
	struct planner_output out;
	struct shard_map *mig;

	w->nmembers = mkmembers(w->members, "n1 n2 n3 n4");
	step(w, m, &rq, 0, &out);
	mig = out.map;
	assert_non_null(mig);
	assert_int_equal(out.req_status, PLANNER_REQ_RUNNING);
	to_moving(w, &mig, 5);

	/* Only n2 streams in a drain of n2: n1, n3, n4 being done or not
	 * does not matter. */
	w->nsources = mksources(w->sources, "n1 n3 n4", true);
	step(w, mig, NULL, 10, &out);
	assert_null(out.map);
	w->nsources = mksources(w->sources, "n2", true);
	step(w, mig, NULL, 20, &out);
	assert_non_null(out.map);
	assert_int_equal(out.migration_finished, 3);
	map_unref(out.map);

	/* The same migration, n2's record not done, but n2 unregistered. */
	w->nsources = mksources(w->sources, "n2", false);
	step(w, mig, NULL, 30, &out);
	assert_null(out.map);
	w->nmembers = mkmembers(w->members, "n1 n3 n4");
	step(w, mig, NULL, 40, &out);
	assert_non_null(out.map);
	assert_int_equal(out.migration_finished, 3);
	map_unref(out.map);
	map_unref(mig);
	map_unref(m);
}

/* The node being added dies: after the grace the migration is rolled back
 * to its prev ring (the sources still hold everything). */
static void test_rollback_when_every_target_is_gone(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(7, "n1 n2 n3");
	struct planner_request rq = req(PLANNER_OP_REBALANCE, NULL, 0);
	struct planner_output out;
	struct shard_map *mig;

	w->nmembers = mkmembers(w->members, "n1 n2 n3 n4");
	step(w, m, NULL, 0, &out);
	mig = out.map;
	assert_non_null(mig);

	w->nmembers = mkmembers(w->members, "n1 n2 n3");
	step(w, mig, NULL, 100, &out);
	assert_null(out.map);
	step(w, mig, NULL, 100 + GRACE, &out);
	assert_null(out.map);
	step(w, mig, &rq, 100 + GRACE + 1, &out);
	assert_non_null(out.map);
	assert_int_equal(out.map->migration, 0);
	assert_int_equal(out.migration_rolled_back, 8);
	assert_int_equal(out.migration_finished, 0);
	assert_string_equal(ids(out.map), "n1 n2 n3");
	assert_int_equal(out.req_status, PLANNER_REQ_DEFERRED);
	map_unref(out.map);
	map_unref(mig);
	map_unref(m);
}

/* A drain whose targets are partly alive is not rolled back. */
static void test_no_rollback_while_a_target_lives(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(7, "n1 n2 n3");
	struct planner_request rq = req(PLANNER_OP_DRAIN, "n2", 0);
	struct planner_output out;
	struct shard_map *mig;

	w->nmembers = mkmembers(w->members, "n1 n2 n3");
	step(w, m, &rq, 0, &out);
	mig = out.map;
	assert_non_null(mig);
	w->nmembers = mkmembers(w->members, "n1 n2");
	step(w, mig, NULL, 100, &out);
	step(w, mig, NULL, 100 + GRACE + 1, &out);
	assert_null(out.map);
	/* Then n1 dies too: nobody can receive, roll back (n2 active). */
	w->nmembers = mkmembers(w->members, "n2");
	step(w, mig, NULL, 200 + GRACE, &out);
	assert_null(out.map);
	step(w, mig, NULL, 200 + 2 * GRACE + 1, &out);
	assert_non_null(out.map);
	assert_int_equal(out.migration_rolled_back, 8);
	assert_string_equal(ids(out.map), "n1 n2 n3");
	map_unref(out.map);
	map_unref(mig);
	map_unref(m);
}

/* ---- requests ------------------------------------------------------------ */

static void test_drain_to_standby(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(5, "n1 n2 n3");
	struct planner_request drain = req(PLANNER_OP_DRAIN, "n2", 0);
	struct planner_request remove = req(PLANNER_OP_REMOVE, "n2", 0);
	struct planner_output out;
	struct shard_map *mig, *st;

	w->nmembers = mkmembers(w->members, "n1 n2 n3");
	step(w, m, &drain, 0, &out);
	mig = out.map;
	assert_non_null(mig);
	assert_int_equal(out.req_status, PLANNER_REQ_RUNNING);
	assert_int_equal(mig->migration, 6);
	assert_string_equal(out.reason, "drain n2");
	assert_string_equal(out.message, "migration 6 started (drain n2)");
	/* n2 stays known (standby) and was active in prev. */
	assert_string_equal(ids(mig), "n1 n2* n3");
	assert_int_equal(mig->prev[map_find_prev(mig, "n2")].state,
			 MAP_NODE_ACTIVE);
	assert_int_equal(ring_nservers(mig->ring), 2);

	/* Draining again while it runs: refused. */
	step(w, mig, &drain, 10, &out);
	assert_int_equal(out.req_status, PLANNER_REQ_REJECTED);
	assert_string_equal(out.message,
		"conflicting operation in flight: migration 6 (drain n2)");
	to_moving(w, &mig, 15);

	w->nsources = mksources(w->sources, "n2", true);
	step(w, mig, NULL, 20, &out);
	st = out.map;
	assert_non_null(st);
	assert_int_equal(st->migration, 0);
	assert_string_equal(ids(st), "n1 n2* n3");
	w->nsources = 0;

	/* Stable, drained: a registered standby map node is not re-added,
	 * and draining or removing it again changes nothing. */
	step(w, st, NULL, 30, &out);
	assert_null(out.map);
	step(w, st, &drain, 40, &out);
	assert_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_DONE);
	assert_string_equal(out.message, "already standby");
	step(w, st, &remove, 50, &out);
	assert_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_DONE);
	assert_string_equal(out.message, "already standby");
	map_unref(st);
	map_unref(mig);
	map_unref(m);
}

static void test_drain_last_active_node(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(5, "n1 n2*");
	struct planner_request rq = req(PLANNER_OP_DRAIN, "n1", 0);
	struct planner_output out;

	w->nmembers = mkmembers(w->members, "n1 n2");
	step(w, m, &rq, 0, &out);
	assert_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_REJECTED);
	assert_string_equal(out.message, "cannot drain the last active node");
	rq.op = PLANNER_OP_REMOVE;
	step(w, m, &rq, 0, &out);
	assert_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_REJECTED);
	assert_string_equal(out.message, "cannot remove the last active node");
	map_unref(m);
}

/* A drain whose only source is dead moves nothing: published stable. */
static void test_drain_dead_node_is_stable_directly(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(5, "n1 n2 n3");
	struct planner_request rq = req(PLANNER_OP_DRAIN, "n3", 0);
	struct planner_output out;

	w->nmembers = mkmembers(w->members, "n1 n2");
	step(w, m, &rq, 0, &out);
	assert_non_null(out.map);
	assert_int_equal(out.map->migration, 0);
	assert_int_equal(out.migration_started, 0);
	assert_string_equal(ids(out.map), "n1 n2 n3*");
	assert_int_equal(out.req_status, PLANNER_REQ_DONE);
	assert_non_null(strstr(out.reason, "every source is unregistered"));
	assert_non_null(strstr(out.message, "published stable"));
	map_unref(out.map);
	map_unref(m);
}

static void test_remove_is_stable(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(5, "n1 n2 n3");
	struct planner_request rq = req(PLANNER_OP_REMOVE, "n2", 0);
	struct planner_output out;

	w->nmembers = mkmembers(w->members, "n1 n2 n3");
	step(w, m, &rq, 0, &out);
	assert_non_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_DONE);
	assert_int_equal(out.map->migration, 0);
	assert_string_equal(ids(out.map), "n1 n2* n3");
	assert_int_equal(ring_nservers(out.map->ring), 2);
	map_unref(out.map);
	map_unref(m);
}

static void test_unknown_node(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(5, "n1 n2 n3");
	enum planner_op ops[] = { PLANNER_OP_ADD, PLANNER_OP_REMOVE,
				  PLANNER_OP_DRAIN, PLANNER_OP_WEIGHT };
	struct planner_output out;
	unsigned i;

	w->nmembers = mkmembers(w->members, "n1 n2 n3");
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct planner_request rq = req(ops[i], "n7", 2);

		step(w, m, &rq, 0, &out);
		assert_null(out.map);
		assert_int_equal(out.req_status, PLANNER_REQ_REJECTED);
		assert_string_equal(out.message, "unknown node n7");
	}
	map_unref(m);
}

static void test_add_requests(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(5, "n1 n2 n3*");
	struct planner_request rq;
	struct planner_output out;

	/* n4 registered with --standby: only an add brings it in. */
	w->nmembers = mkmembers(w->members, "n1 n2 n3 n4*");
	step(w, m, NULL, 0, &out);
	assert_null(out.map);

	rq = req(PLANNER_OP_ADD, "n4", 3);
	step(w, m, &rq, 0, &out);
	assert_non_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_RUNNING);
	assert_string_equal(ids(out.map), "n1 n2 n3* n4");
	assert_int_equal(node(out.map, "n4")->weight, 3);
	assert_string_equal(node(out.map, "n4")->addr, "127.0.0.1:21004");
	map_unref(out.map);

	/* A standby map node becomes active again. */
	rq = req(PLANNER_OP_ADD, "n3", 0);
	step(w, m, &rq, 0, &out);
	assert_non_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_RUNNING);
	assert_string_equal(ids(out.map), "n1 n2 n3");
	assert_int_equal(node(out.map, "n3")->weight, 1);
	map_unref(out.map);

	/* Already active: nothing to do. */
	rq = req(PLANNER_OP_ADD, "n1", 0);
	step(w, m, &rq, 0, &out);
	assert_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_DONE);
	assert_string_equal(out.message, "no change");

	rq = req(PLANNER_OP_ADD, "n4", 1001);
	step(w, m, &rq, 0, &out);
	assert_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_REJECTED);
	map_unref(m);
}

static void test_weight_requests(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(5, "n1 n2 n3 n4*");
	struct planner_request rq;
	struct planner_output out;
	struct map_move_stats st;

	w->nmembers = mkmembers(w->members, "n1 n2 n3 n4*");
	rq = req(PLANNER_OP_WEIGHT, "n1", 0);
	step(w, m, &rq, 0, &out);
	assert_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_REJECTED);
	assert_string_equal(out.message, "weight 0 out of range 1..1000");
	rq.weight = 1001;
	step(w, m, &rq, 0, &out);
	assert_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_REJECTED);

	rq.weight = 1;
	step(w, m, &rq, 0, &out);
	assert_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_DONE);
	assert_string_equal(out.message, "no change");

	rq.weight = 1000;
	step(w, m, &rq, 0, &out);
	assert_non_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_RUNNING);
	assert_int_equal(node(out.map, "n1")->weight, 1000);
	assert_string_equal(out.reason, "weight n1");
	/* n1 now holds nearly everything: most of the space moves to it. */
	map_move_stats(out.map, &st);
	assert_true(st.fraction_moving > 0.5);
	map_unref(out.map);

	/* A standby node's weight is remembered without a migration. */
	rq = req(PLANNER_OP_WEIGHT, "n4", 5);
	step(w, m, &rq, 0, &out);
	assert_non_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_DONE);
	assert_int_equal(out.map->migration, 0);
	assert_int_equal(node(out.map, "n4")->weight, 5);
	map_unref(out.map);
	map_unref(m);
}

static void test_rebalance(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(5, "n1 n2 n3");
	struct planner_request rq = req(PLANNER_OP_REBALANCE, NULL, 0);
	struct planner_output out;

	w->nmembers = mkmembers(w->members, "n1 n2 n3 n9*");
	step(w, m, &rq, 0, &out);
	assert_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_DONE);
	assert_string_equal(out.message, "no change");

	/* n3 gone (within the grace: no change yet), then past the grace
	 * and n4 registered: one map does both. */
	w->nmembers = mkmembers(w->members, "n1 n2 n9*");
	step(w, m, &rq, 1000, &out);
	assert_null(out.map);
	assert_string_equal(out.message, "no change");
	w->nmembers = mkmembers(w->members, "n1 n2 n4 n9*");
	step(w, m, &rq, 1000 + GRACE + 1, &out);
	assert_non_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_RUNNING);
	assert_string_equal(ids(out.map), "n1 n2 n4");
	assert_string_equal(out.reason, "node n3 gone; add n4");
	map_unref(out.map);
	map_unref(m);
}

static void test_bad_requests(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(5, "n1 n2 n3");
	struct planner_request rq = req(PLANNER_OP_DRAIN, "n1", 0);
	struct planner_output out;

	w->nmembers = mkmembers(w->members, "n1 n2 n3");
	/* An id that is not terminated, one with bad characters, an op the
	 * planner does not know. */
	memset(rq.id, 'x', sizeof(rq.id));
	step(w, m, &rq, 0, &out);
	assert_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_REJECTED);
	assert_non_null(strstr(out.message, "unknown node"));
	rq = req(PLANNER_OP_DRAIN, "n1 /x", 0);
	step(w, m, &rq, 0, &out);
	assert_int_equal(out.req_status, PLANNER_REQ_REJECTED);
	rq = req((enum planner_op)42, "n1", 0);
	step(w, m, &rq, 0, &out);
	assert_int_equal(out.req_status, PLANNER_REQ_REJECTED);
	assert_string_equal(out.message, "unknown operation");
	rq = req(PLANNER_OP_NONE, "n1", 0);
	step(w, m, &rq, 0, &out);
	assert_int_equal(out.req_status, PLANNER_REQ_REJECTED);
	map_unref(m);
}

/* ---- membership ------------------------------------------------------------ */

static void test_death_after_grace(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(5, "n1 n2 n3");
	struct planner_output out;

	w->nmembers = mkmembers(w->members, "n1 n2");
	step(w, m, NULL, 1000, &out);
	assert_null(out.map);
	step(w, m, NULL, 1000 + GRACE, &out);
	assert_null(out.map);
	step(w, m, NULL, 1000 + GRACE + 1, &out);
	assert_non_null(out.map);
	/* Forgotten, not standby; the dead node cannot stream: stable. */
	assert_string_equal(ids(out.map), "n1 n2");
	assert_int_equal(out.map->migration, 0);
	assert_non_null(strstr(out.reason, "node n3 gone"));
	assert_non_null(strstr(out.reason, "every source is unregistered"));
	map_unref(out.map);
	map_unref(m);
}

static void test_return_resets_grace(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(5, "n1 n2 n3");
	struct planner_output out;

	w->nmembers = mkmembers(w->members, "n1 n2");
	step(w, m, NULL, 0, &out);
	assert_null(out.map);
	w->nmembers = mkmembers(w->members, "n1 n2 n3");
	step(w, m, NULL, 3000, &out);
	assert_null(out.map);
	w->nmembers = mkmembers(w->members, "n1 n2");
	step(w, m, NULL, 4000, &out);
	assert_null(out.map);
	step(w, m, NULL, 6000, &out);        /* 6 s after the first loss */
	assert_null(out.map);
	step(w, m, NULL, 4000 + GRACE + 1, &out);
	assert_non_null(out.map);
	assert_string_equal(ids(out.map), "n1 n2");
	map_unref(out.map);
	map_unref(m);
}

/* Deaths during a migration wait for its end, then apply at once. */
static void test_death_during_migration_waits(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(5, "n1 n2 n3");
	struct planner_output out;
	struct shard_map *mig, *st;

	w->nmembers = mkmembers(w->members, "n1 n2 n3 n4");
	step(w, m, NULL, 0, &out);
	mig = out.map;
	assert_non_null(mig);
	to_moving(w, &mig, 50);

	w->nmembers = mkmembers(w->members, "n1 n2 n4");
	w->nsources = mksources(w->sources, "n1", true);
	step(w, mig, NULL, 100, &out);
	assert_null(out.map);
	step(w, mig, NULL, 100 + GRACE + 1, &out);
	assert_null(out.map);   /* n2 has not reported */
	w->nsources = mksources(w->sources, "n1 n2", true);
	step(w, mig, NULL, 100 + GRACE + 2, &out);
	st = out.map;
	assert_non_null(st);
	assert_int_equal(st->migration, 0);
	assert_string_equal(ids(st), "n1 n2 n3 n4");
	w->nsources = 0;
	step(w, st, NULL, 100 + GRACE + 3, &out);
	assert_non_null(out.map);
	assert_string_equal(ids(out.map), "n1 n2 n4");
	assert_int_equal(out.map->migration, 0);
	map_unref(out.map);
	map_unref(st);
	map_unref(mig);
	map_unref(m);
}

/* PREPARE waits until every registered node applied it, at most 10 s; a
 * request meanwhile is refused; sources' records do not end PREPARE. */
static void test_prepare_waits_for_every_node(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(5, "n1 n2 n3");
	struct planner_request rq = req(PLANNER_OP_WEIGHT, "n1", 2);
	struct planner_output out;
	struct shard_map *mig;

	w->nmembers = mkmembers(w->members, "n1 n2 n3 n4");
	step(w, m, NULL, 1000, &out);
	mig = out.map;
	assert_non_null(mig);
	assert_int_equal(mig->phase, MAP_PHASE_PREPARE);
	assert_int_equal(mig->migration, 6);

	/* Three of four applied it; every source done means nothing yet. */
	w->members[0].applied_epoch = 6;
	w->members[1].applied_epoch = 6;
	w->members[2].applied_epoch = 7;
	w->nsources = mksources(w->sources, "n1 n2 n3", true);
	step(w, mig, NULL, 1100, &out);
	assert_null(out.map);
	step(w, mig, &rq, 1200, &out);
	assert_null(out.map);
	assert_int_equal(out.req_status, PLANNER_REQ_REJECTED);
	assert_string_equal(out.message,
		"conflicting operation in flight: migration 6 (add n4)");

	/* The last one applies it: MOVING, same nodes, epoch 7. */
	w->members[3].applied_epoch = 6;
	step(w, mig, NULL, 1300, &out);
	assert_non_null(out.map);
	assert_int_equal(out.map->phase, MAP_PHASE_MOVING);
	assert_int_equal(out.map->epoch, 7);
	assert_string_equal(ids(out.map), "n1 n2 n3 n4");
	assert_string_equal(out.reason, "migration 6 moving");
	map_unref(out.map);

	/* A node that never applies it holds PREPARE for 10 s at most, from
	 * the first step that saw it (1100). */
	w->members[3].applied_epoch = 0;
	step(w, mig, NULL, 1400, &out);
	assert_null(out.map);
	step(w, mig, NULL, 1100 + 10000, &out);
	assert_non_null(out.map);
	assert_int_equal(out.map->phase, MAP_PHASE_MOVING);
	map_unref(out.map);

	/* The JSON keeps the phase. */
	char *json = map_format(mig), err[128];
	struct shard_map *back;
	assert_non_null(strstr(json, "\"phase\":\"prepare\""));
	assert_int_equal(map_parse(json, strlen(json), &back, err, sizeof(err)),
			 0);
	assert_int_equal(back->phase, MAP_PHASE_PREPARE);
	free(json);
	map_unref(back);
	map_unref(mig);
	map_unref(m);
}

/* A source that stays registered but makes no progress for 60 s no longer
 * holds the migration: it counts as done, and the reason says so. */
static void test_stalled_source_counts_as_done(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(3, "n1 n2 n3");
	struct planner_request rq = req(PLANNER_OP_DRAIN, "n2", 0);
	struct planner_output out;
	struct shard_map *mig;
	const uint64_t t0 = 1000000;

	w->nmembers = mkmembers(w->members, "n1 n2 n3");
	step(w, m, &rq, t0, &out);
	mig = out.map;
	assert_non_null(mig);
	to_moving(w, &mig, t0 + 10);

	/* n2 (the only source of its drain) reports, then progresses. */
	w->nsources = mksources(w->sources, "n2", false);
	w->sources[0].progress = 5;
	step(w, mig, NULL, t0 + 20, &out);
	assert_null(out.map);
	step(w, mig, NULL, t0 + 30000, &out);
	assert_null(out.map);
	w->sources[0].progress = 6;
	step(w, mig, NULL, t0 + 40000, &out);
	assert_null(out.map);
	/* 59.9 s without progress: still waiting; 60 s: done. */
	step(w, mig, NULL, t0 + 40000 + 59900, &out);
	assert_null(out.map);
	step(w, mig, NULL, t0 + 40000 + 60000, &out);
	assert_non_null(out.map);
	assert_int_equal(out.map->migration, 0);
	assert_int_equal(out.migration_finished, mig->migration);
	assert_non_null(strstr(out.reason, "source n2 made no progress"));
	map_unref(out.map);
	map_unref(mig);
	map_unref(m);
}

static void test_several_joins_one_migration(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(5, "n1 n2");
	struct planner_output out;

	w->nmembers = mkmembers(w->members, "n5 n1 n4 n2 n6*");
	step(w, m, NULL, 0, &out);
	assert_non_null(out.map);
	assert_string_equal(ids(out.map), "n1 n2 n4 n5");
	assert_int_equal(out.map->migration, 6);
	assert_string_equal(out.reason, "add n5; add n4");
	map_unref(out.map);
	map_unref(m);
}

static void test_address_change(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(5, "n1 n2 n3");
	struct planner_output out;

	w->nmembers = mkmembers(w->members, "n1 n2 n3");
	snprintf(w->members[1].addr, sizeof(w->members[1].addr),
		 "127.0.0.1:29999");
	step(w, m, NULL, 0, &out);
	assert_non_null(out.map);
	assert_string_equal(node(out.map, "n2")->addr, "127.0.0.1:29999");
	assert_string_equal(out.map->prev[map_find_prev(out.map, "n2")].addr,
			    "127.0.0.1:21002");
	assert_int_equal(out.map->migration, 6);
	assert_string_equal(out.reason, "addr n2 127.0.0.1:29999");
	map_unref(out.map);
	map_unref(m);
}

/* The map from ZK may list nodes in any order; the output is sorted, and an
 * unchanged (but unsorted) map is no change. */
static void test_unsorted_input(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(5, "n3 n1 n2");
	struct planner_output out;

	w->nmembers = mkmembers(w->members, "n1 n2 n3");
	step(w, m, NULL, 0, &out);
	assert_null(out.map);
	w->nmembers = mkmembers(w->members, "n1 n2 n3 n0");
	step(w, m, NULL, 0, &out);
	assert_non_null(out.map);
	assert_string_equal(ids(out.map), "n0 n1 n2 n3");
	map_unref(out.map);
	map_unref(m);
}

static void test_malformed_members(void **state)
{
	struct world *w = *state;
	struct shard_map *m = mkmap(5, "n1 n2");
	struct planner_input in = { 0 };
	struct planner_output out;

	w->nmembers = mkmembers(w->members, "n1 n2 n3 n4 n5");
	memset(w->members[2].id, 'x', sizeof(w->members[2].id));
	w->members[3].weight = 0;
	w->members[4].addr[0] = '\0';
	step(w, m, NULL, 0, &out);
	assert_null(out.map);
	/* The first map leaves them out too. */
	step(w, NULL, NULL, 0, &out);
	assert_non_null(out.map);
	assert_string_equal(ids(out.map), "n1 n2");
	map_unref(out.map);

	assert_int_equal(planner_step(w->p, NULL, &out), -EINVAL);
	assert_int_equal(planner_step(NULL, &in, &out), -EINVAL);
	assert_int_equal(planner_step(w->p, &in, NULL), -EINVAL);
	in.nmembers = 3;
	assert_int_equal(planner_step(w->p, &in, &out), -EINVAL);
	assert_null(out.map);
	planner_destroy(NULL);
	map_unref(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		cmocka_unit_test(test_op_names),
		T(test_first_map),
		T(test_first_map_no_members),
		T(test_add_fourth_node_moves_a_quarter),
		T(test_add_then_sources_done_then_stable),
		T(test_finish_waits_request_deferred),
		T(test_new_leader_finishes_from_the_map),
		T(test_finish_counts_only_live_sources),
		T(test_rollback_when_every_target_is_gone),
		T(test_no_rollback_while_a_target_lives),
		T(test_drain_to_standby),
		T(test_drain_last_active_node),
		T(test_drain_dead_node_is_stable_directly),
		T(test_remove_is_stable),
		T(test_unknown_node),
		T(test_add_requests),
		T(test_weight_requests),
		T(test_rebalance),
		T(test_bad_requests),
		T(test_death_after_grace),
		T(test_return_resets_grace),
		T(test_death_during_migration_waits),
		T(test_prepare_waits_for_every_node),
		T(test_stalled_source_counts_as_done),
		T(test_several_joins_one_migration),
		T(test_address_change),
		T(test_unsorted_input),
		T(test_malformed_members),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
