/*
 * control/agent.h - a node's ZooKeeper agent: registers the node (ephemeral
 * znode), watches the shard map and hands every new version to the data
 * plane, takes part in leader election, and, while leader, turns membership
 * changes, operator requests and migration progress into new maps
 * (control/planner.h decides; the agent writes with compare-and-set).
 *
 * It runs on threads of its own (the ZooKeeper client's plus one agent
 * thread) and never on a serving thread. Losing ZooKeeper only stops map
 * changes: the node keeps serving with its last map and re-registers when a
 * new session is established (also after session expiry).
 * ZooKeeper layout: control/CLUSTER.md.
 */
#ifndef DPCACHE_CONTROL_AGENT_H
#define DPCACHE_CONTROL_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "replication/map.h"
#include "replication/migrate.h"

struct agent_config {
	const char *zk_hosts;        /* "host:port,host:port" */
	const char *root;            /* "/dpcache" (no trailing slash) */
	const char *node_id;
	const char *advertise;       /* "host:port" */
	const char *admin;           /* "host:port" of /metrics, or NULL */
	uint32_t weight;             /* >= 1 */
	bool standby;                /* wait for 'dpcachectl add' */
	unsigned session_timeout_ms; /* 0 = 6000 */
	unsigned grace_ms;           /* 0 = 5000: a vanished node leaves the map after this */
	/* Called on the agent thread with a new reference for every new map
	 * version (epoch); the callee owns that reference. */
	void (*on_map)(void *arg, struct shard_map *map);
	void *arg;
	int verbosity;               /* -v count: 1 errors, 2 events, 3 also
	                                the ZooKeeper client's own log */
};

struct agent;

/* Validates the config, starts the threads and returns at once (the ZK
 * connection is made in the background). NULL with a one-line reason in err
 * on a bad config (root not absolute, bad host list, bad id). */
struct agent *agent_start(const struct agent_config *cfg, char *err,
			  size_t errlen);
/* Deletes the node's ephemeral znodes (clean leave), closes the session,
 * joins the threads. Accepts NULL; sets *a to NULL. */
void agent_stop(struct agent **a);

/* Thread-safe: stores the latest progress; the agent thread writes it to
 * ROOT/migrations/<N>/<self> (at most every 200 ms, and at once when done). */
void agent_report_progress(struct agent *a, const struct migrate_progress *p);

struct agent_status {
	bool connected;              /* a live ZooKeeper session */
	bool leader;
	uint64_t session_id;
	uint64_t map_epoch;          /* last map handed to on_map */
	uint64_t maps_applied;
	uint64_t zk_reconnects;      /* sessions established after the first */
	uint64_t session_expiries;
	uint64_t cas_conflicts;      /* leader map writes that lost a version race */
	char zk_state[24];           /* "connected", "connecting", "expired", ... */
	/* Added by zk (additive): */
	bool registered;             /* our ROOT/nodes/<id> exists */
	bool id_in_use;              /* another live session holds our id */
	uint64_t maps_published;     /* as leader */
	uint64_t requests_answered;  /* as leader: done/rejected written */
	uint64_t bad_znodes;         /* malformed znodes skipped or rejected */
};
void agent_get_status(struct agent *a, struct agent_status *out);

#endif /* DPCACHE_CONTROL_AGENT_H */
