/*
 * control/node.h - one dpcached process as a cluster node: it owns the
 * routing state the serving threads read (replication/cluster.h), the
 * ZooKeeper agent (control/agent.h) that feeds it maps, the migrator
 * (replication/migrate.h) that streams moving keys and drops the copies a
 * migration left behind, and the hot-key loop (control/hotctl.h) that
 * reports this node's hottest keys and hands it the replica set.
 *
 * Lifecycle, on the main thread:
 *   n = node_create(cfg)      the routing state; no thread, no ZooKeeper
 *   ... start the data plane with node_cluster(n) ...
 *   node_start(n)             migrator thread, the agent (ZooKeeper), then
 *                             the hot-key loop
 *   ... serve ...
 *   ... stop the data plane (serving threads call node_stats) ...
 *   node_destroy(&n)          node_stop: the hot-key loop, the agent (a
 *                             clean leave), the migrator; then the routing
 *                             state
 */
#ifndef DPCACHE_CONTROL_NODE_H
#define DPCACHE_CONTROL_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"
#include "control/hotplan.h"
#include "replication/cluster.h"

struct node_config {
	struct cache *cache;
	const char *zk_hosts;          /* "host:port,..." */
	const char *zk_root;           /* "/dpcache" */
	const char *node_id;
	const char *advertise;         /* "host:port" */
	const char *admin;             /* "host:port" or NULL */
	uint32_t weight;
	bool standby;
	unsigned zk_session_ms;
	unsigned grace_ms;
	unsigned migrate_rate_mb;      /* MB/s */
	unsigned fwd_timeout_ms;
	/* Hot keys (control/CLUSTER.md, "Hot keys"). */
	unsigned hot_interval_ms;
	unsigned hot_sample;           /* 1 in N requests feed the sketch; 0 off */
	struct hot_plan_config hot_plan;  /* what the leader replicates */
	unsigned replica_lease_ms;
	bool replica_sync;
	int verbosity;                 /* -v count */
};

struct node;

/* NULL with a one-line reason in err. */
struct node *node_create(const struct node_config *cfg, char *err,
			 size_t errlen);
struct cluster *node_cluster(struct node *n);
/* 0, or -1 with a one-line reason in err. */
int node_start(struct node *n, char *err, size_t errlen);
void node_stop(struct node *n);
/* After the data plane stopped. Accepts NULL; sets *n to NULL. */
void node_destroy(struct node **n);

/* 'stats cluster': routing counters, map, ZooKeeper and migration state.
 * Any thread. */
void node_stats(struct node *n, cluster_stat_fn emit, void *arg);
/* 'stats hotkeys': the node's hottest keys and the replica set
 * (hotctl_stats). Any thread. */
void node_hot_stats(struct node *n, cluster_stat_fn emit, void *arg);

#endif /* DPCACHE_CONTROL_NODE_H */
