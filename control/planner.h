/*
 * control/planner.h - the leader's decisions, as pure functions: given the
 * current shard map, who is registered in ZooKeeper, the migration progress
 * and the next operator request, what map (if any) should be published next.
 * No I/O and no clock of its own, so every rule is unit-tested
 * (tests/control/test_planner.c). The agent (control/agent.c) gathers the
 * inputs from ZooKeeper and writes the output with compare-and-set.
 * Rules: control/CLUSTER.md ("Leader planning").
 */
#ifndef DPCACHE_CONTROL_PLANNER_H
#define DPCACHE_CONTROL_PLANNER_H

#include <stdbool.h>
#include <stdint.h>

#include "replication/map.h"

/* A node registered now (ROOT/nodes/<id>). */
struct planner_member {
	char id[MAP_ID_MAX];
	char addr[MAP_ADDR_MAX];
	uint32_t weight;
	bool standby;           /* started with --standby */
	uint64_t applied_epoch; /* the last map epoch this node applied */
};

/* A source's progress record for the migration in flight. */
struct planner_source {
	char id[MAP_ID_MAX];
	bool done;
	uint64_t progress;      /* keys sent + skipped: it grows while the
	                           source works (see PLANNER_STALL_MS) */
};

enum planner_op {
	PLANNER_OP_NONE = 0,
	PLANNER_OP_ADD,
	PLANNER_OP_REMOVE,
	PLANNER_OP_DRAIN,
	PLANNER_OP_WEIGHT,
	PLANNER_OP_REBALANCE,
};

struct planner_request {
	enum planner_op op;
	char id[MAP_ID_MAX];
	uint32_t weight;
};

/* Leader-local memory between calls: when each map node was first seen
 * unregistered (the grace clock). A new leader starts with an empty one,
 * which only delays removals by one grace. */
struct planner;

struct planner *planner_create(uint64_t grace_ms);
void planner_destroy(struct planner **p);

struct planner_input {
	const struct shard_map *map;            /* NULL: no map yet */
	const struct planner_member *members;
	unsigned nmembers;
	const struct planner_source *sources;   /* of map->migration */
	unsigned nsources;
	const struct planner_request *request;  /* oldest pending; NULL none */
	uint64_t now_ms;
};

enum planner_req_status {
	PLANNER_REQ_NONE = 0,      /* no request given */
	PLANNER_REQ_DONE,          /* applied (or nothing to change: message says so) */
	PLANNER_REQ_RUNNING,       /* applied; a migration now runs (migration id set) */
	PLANNER_REQ_REJECTED,      /* message says why */
	PLANNER_REQ_DEFERRED,      /* not yet: e.g. waiting to be leader of a settled map */
};

struct planner_output {
	struct shard_map *map;     /* new map to publish (epoch = input epoch + 1,
	                              rings built), or NULL: nothing to publish */
	enum planner_req_status req_status;
	char message[256];         /* for the request's "error"/"message" field */
	char reason[128];          /* of a new migration: "add n4", "node n2 gone", ... */
	uint64_t migration_started;   /* id of a migration the new map starts, or 0 */
	uint64_t migration_finished;  /* id of a migration the new map ends, or 0 */
	/* Added by the planner: id of a migration the new map rolls back
	 * (every target gone past the grace; nodes = its prev, stable), or 0.
	 * ROOT/migrations/<N> then gets state "rolled_back". */
	uint64_t migration_rolled_back;
};

/*
 * One planning step. Order of precedence:
 *  1. no map: create the first (every registered non-standby member, stable).
 *  2. a migration in flight: roll it back (nodes = prev, stable) when every
 *     node it moves data to is gone past the grace; finish it when every
 *     source that is still registered is done (sources not registered count
 *     as done); otherwise answer a request REJECTED "conflicting operation
 *     in flight: migration N". A request met in a step that finishes or
 *     rolls back is DEFERRED.
 *  3. the request, if any.
 *  4. membership: map nodes unregistered for longer than grace are removed;
 *     registered non-standby members missing from the map are added; an
 *     active node whose registered address changed gets the new one.
 * A new map that moves data starts a migration (id = its epoch) unless no
 * registered node has anything to stream (sources only unregistered): then
 * it is published stable, and out->reason says so.
 * At most one new map per call. in->map must have its rings built (as
 * map_parse leaves it). Leader thread only; the planner is not shared.
 * 0, -EINVAL (NULL p, in or out; counts without arrays), or -ENOMEM
 * (out->map is then NULL).
 */
int planner_step(struct planner *p, const struct planner_input *in,
		 struct planner_output *out);

const char *planner_op_name(enum planner_op op);
/* "add" -> PLANNER_OP_ADD ...; PLANNER_OP_NONE if unknown. */
enum planner_op planner_op_parse(const char *s);

#endif /* DPCACHE_CONTROL_PLANNER_H */
