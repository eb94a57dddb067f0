/*
 * control/node.c - the wiring between a node's agent, its migrator and the
 * routing state of its serving threads (see node.h).
 *
 * Every new map the agent reads goes to the migrator first (it starts or
 * stops a stream, or drops left-over copies) and then to the serving threads
 * (cluster_set_map: an RCU swap). The migrator's progress goes back to the
 * agent, which writes it to ZooKeeper for the leader and dpcachectl.
 */
#include "control/node.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/agent.h"
#include "replication/migrate.h"

struct node {
	struct node_config cfg;
	struct cluster *cluster;
	struct migrator *migrator;
	struct agent *agent;          /* set once by node_start; read by callbacks */
};

struct node *node_create(const struct node_config *cfg, char *err,
			 size_t errlen)
{
	struct node *n = calloc(1, sizeof(*n));
	if (n == NULL) {
		snprintf(err, errlen, "no memory");
		return NULL;
	}
	n->cfg = *cfg;
	struct cluster_config cc = {
		.cache = cfg->cache,
		.self_id = cfg->node_id,
		.self_addr = cfg->advertise,
		.fwd_timeout_ms = cfg->fwd_timeout_ms,
	};
	n->cluster = cluster_create(&cc);
	if (n->cluster == NULL) {
		snprintf(err, errlen, "cannot set up the cluster state: %s",
			 strerror(errno ? errno : ENOMEM));
		free(n);
		return NULL;
	}
	return n;
}

struct cluster *node_cluster(struct node *n)
{
	return n->cluster;
}

/* Agent thread: a new map version. */
static void on_map(void *arg, struct shard_map *map)
{
	struct node *n = arg;

	migrator_apply(n->migrator, map);          /* takes its own reference */
	cluster_set_map(n->cluster, map);          /* takes ours */
}

/* Migrator thread: progress of the stream this node sends. */
static void on_progress(void *arg, const struct migrate_progress *p)
{
	struct node *n = arg;
	struct agent *a = __atomic_load_n(&n->agent, __ATOMIC_ACQUIRE);

	if (a != NULL)
		agent_report_progress(a, p);
}

int node_start(struct node *n, char *err, size_t errlen)
{
	struct migrate_config mc = {
		.cache = n->cfg.cache,
		.self_id = n->cfg.node_id,
		.rate_bytes_per_s = (uint64_t)n->cfg.migrate_rate_mb << 20,
		.progress = on_progress,
		.arg = n,
	};
	n->migrator = migrator_create(&mc);
	if (n->migrator == NULL) {
		snprintf(err, errlen, "cannot start the migrator: %s",
			 strerror(errno ? errno : ENOMEM));
		return -1;
	}
	struct agent_config ac = {
		.zk_hosts = n->cfg.zk_hosts,
		.root = n->cfg.zk_root,
		.node_id = n->cfg.node_id,
		.advertise = n->cfg.advertise,
		.admin = n->cfg.admin,
		.weight = n->cfg.weight,
		.standby = n->cfg.standby,
		.session_timeout_ms = n->cfg.zk_session_ms,
		.grace_ms = n->cfg.grace_ms,
		.verbosity = n->cfg.verbosity,
		.on_map = on_map,
		.arg = n,
	};
	struct agent *a = agent_start(&ac, err, errlen);
	if (a == NULL)
		return -1;
	__atomic_store_n(&n->agent, a, __ATOMIC_RELEASE);
	return 0;
}

void node_stop(struct node *n)
{
	if (n == NULL)
		return;
	/* The agent first: no new map reaches the migrator after this, and the
	 * node leaves ZooKeeper cleanly (its ephemeral znodes go at once). */
	struct agent *a = __atomic_exchange_n(&n->agent, NULL, __ATOMIC_ACQ_REL);
	agent_stop(&a);
	migrator_destroy(&n->migrator);
}

void node_destroy(struct node **np)
{
	if (np == NULL || *np == NULL)
		return;
	struct node *n = *np;
	*np = NULL;
	node_stop(n);
	cluster_destroy(&n->cluster);
	free(n);
}

static void emit_u64(cluster_stat_fn emit, void *arg, const char *name,
		     uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	emit(arg, name, buf);
}

void node_stats(struct node *n, cluster_stat_fn emit, void *arg)
{
	cluster_stats(n->cluster, emit, arg);

	struct agent *a = __atomic_load_n(&n->agent, __ATOMIC_ACQUIRE);
	struct agent_status as;
	memset(&as, 0, sizeof(as));
	if (a != NULL)
		agent_get_status(a, &as);
	else
		snprintf(as.zk_state, sizeof(as.zk_state), "stopped");
	emit(arg, "zk_state", as.zk_state);
	emit_u64(emit, arg, "zk_connected", as.connected);
	emit_u64(emit, arg, "leader", as.leader);
	emit_u64(emit, arg, "maps_applied", as.maps_applied);
	emit_u64(emit, arg, "zk_reconnects", as.zk_reconnects);
	emit_u64(emit, arg, "zk_session_expiries", as.session_expiries);
	emit_u64(emit, arg, "map_cas_conflicts", as.cas_conflicts);

	struct migrate_progress p;
	memset(&p, 0, sizeof(p));
	if (n->migrator != NULL)
		migrator_progress(n->migrator, &p);
	emit_u64(emit, arg, "migrate_migration", p.migration);
	emit_u64(emit, arg, "migrate_keys_total", p.keys_total);
	emit_u64(emit, arg, "migrate_keys_sent", p.keys_sent);
	emit_u64(emit, arg, "migrate_keys_skipped", p.keys_skipped);
	emit_u64(emit, arg, "migrate_bytes_sent", p.bytes_sent);
	emit_u64(emit, arg, "migrate_failed_targets", p.failed_targets);
	emit_u64(emit, arg, "migrate_done", p.done);
	emit_u64(emit, arg, "dropped_after_migration",
		 n->migrator != NULL ? migrator_dropped(n->migrator) : 0);
}
