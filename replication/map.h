/*
 * replication/map.h - the cluster's shard map: which nodes exist, their
 * weights, the ketama ring they form, and (during a migration) the ring the
 * cluster is moving from. The map's JSON form is the content of the
 * versioned ZooKeeper znode ROOT/map (format in control/CLUSTER.md).
 *
 * A map is immutable once published to readers (map_build_rings done). It is
 * reference counted so the RCU-swapped current map, a migration thread and the
 * agent can each hold it.
 */
#ifndef DPCACHE_REPLICATION_MAP_H
#define DPCACHE_REPLICATION_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "replication/ring.h"

#define MAP_ID_MAX   64      /* node id: [A-Za-z0-9_.-]{1,63} */
#define MAP_ADDR_MAX 64      /* "host:port" */
#define MAP_NODES_MAX 1024
#define MAP_WEIGHT_MAX 1000

enum map_node_state {
	MAP_NODE_ACTIVE = 0,   /* on the ring */
	MAP_NODE_STANDBY,      /* known, owns nothing */
};

/*
 * A migration has two phases, each its own map version:
 *   PREPARE - every node learns what will move, but keys are still routed by
 *             the prev ring (old owners serve). The leader waits until every
 *             registered node has applied this map.
 *   MOVING  - keys are routed by the new ring; new owners pull on miss; old
 *             owners stream. Since every node already knows the migration,
 *             a node that is still on PREPARE when a peer sends it a key it
 *             will own treats it as moving in, and an old owner that gets a
 *             moved key from a node still on PREPARE passes it on: no request
 *             lands where its data is not.
 */
enum map_phase {
	MAP_PHASE_STABLE = 0,
	MAP_PHASE_PREPARE,
	MAP_PHASE_MOVING,
};

struct map_node {
	char id[MAP_ID_MAX];
	char addr[MAP_ADDR_MAX];
	uint32_t weight;
	uint8_t state;         /* enum map_node_state */
};

struct shard_map {
	uint64_t epoch;
	uint64_t migration;         /* 0 = stable; else the migration in flight */
	uint8_t phase;              /* enum map_phase; MAP_PHASE_STABLE iff migration 0 */
	unsigned nnodes;
	struct map_node *nodes;
	unsigned nprev;             /* migration != 0: the members before it */
	struct map_node *prev;
	/* Built by map_build_rings(): */
	struct ring *ring;          /* active nodes of 'nodes' with weight > 0 */
	struct ring *prev_ring;     /* active nodes of 'prev'; NULL when stable */
	int *ring_node;             /* ring server index -> index in nodes[] */
	int *prev_ring_node;        /* ring server index -> index in prev[] */
	int refs;                   /* atomic */
};

/* An empty map (epoch 0, no nodes), refs 1. NULL on no memory. */
struct shard_map *map_new(void);
/* A deep copy (rings rebuilt), refs 1. */
struct shard_map *map_clone(const struct shard_map *m);
void map_ref(struct shard_map *m);
/* Drops a reference; frees at zero. Accepts NULL. */
void map_unref(struct shard_map *m);

/* Adds a node (copying strings). 0, -EINVAL (bad id/addr/weight), -EEXIST,
 * -E2BIG, -ENOMEM. Rings are stale until map_build_rings(). */
int map_add_node(struct shard_map *m, const char *id, const char *addr,
		 uint32_t weight, enum map_node_state state);
/* Index in nodes[] or -1. */
int map_find(const struct shard_map *m, const char *id);
int map_find_prev(const struct shard_map *m, const char *id);
/* Sets prev = a copy of the current nodes (start of a migration). 0 or
 * -ENOMEM. The prev ring is dropped until map_build_rings(); the caller
 * sets m->migration. */
int map_snapshot_prev(struct shard_map *m);
/* Drops prev and its ring (migration finished); m->migration is the
 * caller's to reset. */
void map_clear_prev(struct shard_map *m);

/* (Re)builds ring/prev_ring from nodes/prev. 0 or -ENOMEM. */
int map_build_rings(struct shard_map *m);

/* Parses ROOT/map JSON into a new map with rings built. 0, or -EINVAL with a
 * one-line reason in err (err may be NULL). Strict: every field of the
 * format must be present and valid ("migration" may be omitted = 0; "prev"
 * present exactly when migration != 0); unknown members are ignored,
 * duplicate members refused. */
int map_parse(const char *json, size_t len, struct shard_map **out,
	      char *err, size_t errlen);
/* Malloc'd JSON (compact, nodes in array order; "prev" only when migration
 * != 0), for free(); NULL on no memory. */
char *map_format(const struct shard_map *m);

/* Owner of a ring hash (ring_hash(key)) in the current ring; NULL if the
 * ring is empty. */
const struct map_node *map_owner(const struct shard_map *m, uint32_t rhash);
/* Owner in the previous ring; NULL when stable or the prev ring is empty. */
const struct map_node *map_prev_owner(const struct shard_map *m,
				      uint32_t rhash);

/* What a migration from prev to nodes moves: arcs of the hash space (the
 * elementary intervals between the union of both rings' points) whose owner
 * id differs, and the fraction of the hash space they cover. Zero when
 * stable. */
struct map_move_stats {
	unsigned arcs_total;
	unsigned arcs_moving;
	double fraction_moving;
};
void map_move_stats(const struct shard_map *m, struct map_move_stats *out);

/* Node ids are 1..63 of [A-Za-z0-9_.-]. */
bool map_id_valid(const char *id);

#endif /* DPCACHE_REPLICATION_MAP_H */
