/*
 * control/hotctl.h - a node's hot-key control loop, on a thread of its own
 * with its own ZooKeeper session (so the agent's map duties never wait for
 * it, nor it for them). Once per interval it:
 *
 *   1. drains the serving threads' sketches (cfg.drain) into the node's
 *      hot_table, and writes the node's report to ROOT/hot/reports/<id>
 *      (ephemeral);
 *   2. if this node is the leader (cfg.is_leader), reads every report and
 *      the map (cfg.get_map), runs hot_plan, and writes ROOT/hot/set when
 *      the set changed (compare-and-set on the znode version);
 *   3. reads ROOT/hot/set (with a watch, so a change is seen before the
 *      next interval) and hands every new version to cfg.apply.
 *
 * Losing ZooKeeper stops reports and set changes only: the serving side
 * keeps the last set it was given.
 */
#ifndef DPCACHE_CONTROL_HOTCTL_H
#define DPCACHE_CONTROL_HOTCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control/hotplan.h"
#include "replication/cluster.h"     /* cluster_stat_fn */
#include "replication/hotkeys.h"
#include "replication/hotset.h"
#include "replication/map.h"

struct hotctl_config {
	const char *zk_hosts;
	const char *root;            /* "/dpcache" */
	const char *node_id;
	unsigned session_timeout_ms; /* 0 = 6000 */
	unsigned interval_ms;        /* 0 = 1000 */
	double decay;                /* hot_table decay; < 0 = 0.5 */
	struct hot_plan_config plan;
	/* Drains every serving thread's sketch: up to max counts into out;
	 * *received: client requests since the last call, *executed: requests
	 * run against the cache since the last call. Returns the count. */
	unsigned (*drain)(void *arg, struct hot_count *out, unsigned max,
			  uint64_t *received, uint64_t *executed);
	/* A new set version (the callee owns it). */
	void (*apply)(void *arg, struct hot_set *set);
	/* Is this node the cluster's leader now? */
	bool (*is_leader)(void *arg);
	/* A new reference to the current map, or NULL (map_unref). */
	struct shard_map *(*get_map)(void *arg);
	void *arg;
	int verbosity;
};

struct hotctl;

/* Starts the thread; NULL with a one-line reason in err. */
struct hotctl *hotctl_start(const struct hotctl_config *cfg, char *err,
			    size_t errlen);
/* Deletes the report znode, closes the session, joins. Accepts NULL; sets
 * *h to NULL. */
void hotctl_stop(struct hotctl **h);

/*
 * 'stats hotkeys' lines (any thread): hot_interval_ms, hot_received_per_s,
 * hot_executed_per_s, hot_set_version, hot_set_keys, hot_reports_written,
 * hot_sets_published, hot_zk_errors, then 'hotkey:<i>' for the node's top
 * keys (at most 32): value "<key> reads=<r> writes=<w> owner=<id|->
 * replicas=<a,b|->" (key as is when printable ASCII without spaces, else
 * "b64:<base64>"; owner/replicas from the current set, '-' when the key is
 * not replicated).
 * 'emit' runs with hotctl's internal lock held (never held while hotctl
 * calls any cfg callback, so a caller may hold its own lock around this
 * call): it must not call hotctl_*.
 */
void hotctl_stats(struct hotctl *h, cluster_stat_fn emit, void *arg);

#endif /* DPCACHE_CONTROL_HOTCTL_H */
