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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/agent.h"
#include "control/hotctl.h"
#include "replication/migrate.h"
#include "replication/ring.h"

struct node {
	struct node_config cfg;
	struct cluster *cluster;
	struct migrator *migrator;
	/* Set by node_start, taken by node_stop; progress reports (migrator
	 * thread) use it under 'lock', so node_stop never frees it under
	 * them. */
	struct agent *agent;
	struct hotctl *hotctl;        /* set by node_start, under 'lock' */
	pthread_mutex_t lock;
	uint64_t purged;              /* atomic: stale copies purge_incoming deleted */
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
	pthread_mutex_init(&n->lock, NULL);
	struct cluster_config cc = {
		.cache = cfg->cache,
		.self_id = cfg->node_id,
		.self_addr = cfg->advertise,
		.fwd_timeout_ms = cfg->fwd_timeout_ms,
		.hot_sample = cfg->hot_sample,
		.replica_lease_ms = cfg->replica_lease_ms,
		.replica_sync = cfg->replica_sync,
	};
	n->cluster = cluster_create(&cc);
	if (n->cluster == NULL) {
		snprintf(err, errlen, "cannot set up the cluster state: %s",
			 strerror(errno ? errno : ENOMEM));
		pthread_mutex_destroy(&n->lock);
		free(n);
		return NULL;
	}
	return n;
}

struct cluster *node_cluster(struct node *n)
{
	return n->cluster;
}

/* Keys of local items that will move in to this node (purge_incoming). */
struct incoming {
	const struct shard_map *map;
	const char *self;
	char *keys;              /* nkey (1 byte) + key, back to back */
	size_t len, cap;
	bool nomem;
};

static void collect_incoming(void *arg, const struct cache_item *it)
{
	struct incoming *in = arg;
	const char *key = cache_item_key(it);
	uint32_t rh = ring_hash(key, it->nkey);
	const struct map_node *owner = map_owner(in->map, rh);
	const struct map_node *prev = map_prev_owner(in->map, rh);

	if (owner == NULL || prev == NULL || strcmp(owner->id, in->self) != 0 ||
	    strcmp(prev->id, in->self) == 0)
		return;
	if (in->len + 1 + it->nkey > in->cap) {
		size_t cap = in->cap ? in->cap * 2 : 64 * 1024;
		char *k = realloc(in->keys, cap);
		if (k == NULL) {
			in->nomem = true;
			return;
		}
		in->keys = k;
		in->cap = cap;
	}
	in->keys[in->len++] = (char)it->nkey;
	memcpy(in->keys + in->len, key, it->nkey);
	in->len += it->nkey;
}

/*
 * A PREPARE map: before this node says it applied it (which lets the leader
 * route keys here), delete every local copy of a key that will move in. Such
 * a copy can only be left from an earlier time this node owned the key (a
 * removal, a weight change back and forth, a clean-up cut short by the next
 * map): the owner since then may have newer data, and the pull and the
 * stream install nothing over a copy that is present. Runs on the agent
 * thread, attached to the cache only meanwhile (cluster_set_map must not run
 * on an RCU reader).
 */
static void purge_incoming(struct node *n, const struct shard_map *map)
{
	struct incoming in = { .map = map, .self = n->cfg.node_id };
	struct cache_thread *t = cache_thread_attach(n->cfg.cache);
	uint64_t purged = 0;

	if (t == NULL) {
		fprintf(stderr, "dpcached: node: cannot attach to the cache to "
			"purge stale copies before migration %llu\n",
			(unsigned long long)map->migration);
		return;
	}
	cache_for_each(t, collect_incoming, &in);
	cache_thread_quiescent(t);
	for (size_t off = 0; off < in.len;) {
		size_t nkey = (unsigned char)in.keys[off++];
		const char *key = in.keys + off;
		off += nkey;
		if (cache_delete(t, key, nkey, cache_hash(key, nkey), 0) ==
		    CACHE_OK)
			purged++;
		if (purged % 1024 == 0)
			cache_thread_quiescent(t);
	}
	cache_thread_detach(&t);
	free(in.keys);
	__atomic_fetch_add(&n->purged, purged, __ATOMIC_RELAXED);
	if (in.nomem)
		fprintf(stderr, "dpcached: node: out of memory listing stale "
			"copies before migration %llu; some stay\n",
			(unsigned long long)map->migration);
}

/* Keys of the replica set moving in here (cluster_hot_moving_in). */
struct hot_keys {
	unsigned n;
	uint8_t nkey[HOT_SET_KEYS_MAX];
	char key[HOT_SET_KEYS_MAX][CACHE_KEY_MAX];
};

static void collect_hot_key(void *arg, const char *key, size_t nkey)
{
	struct hot_keys *hk = arg;
	if (hk->n < HOT_SET_KEYS_MAX) {
		hk->nkey[hk->n] = (uint8_t)nkey;
		memcpy(hk->key[hk->n++], key, nkey);
	}
}

/* Deletes the local copies of hot keys that move in to this node. The
 * keys are listed first, then deleted attached to the cache: an RCU
 * reader must never wait for the set's lock (its holder may be waiting
 * for a grace period). */
static void drop_hot_incoming(struct node *n, const struct shard_map *map)
{
	struct hot_keys *hk = calloc(1, sizeof(*hk));
	if (hk == NULL)
		return;
	cluster_hot_moving_in(n->cluster, map, collect_hot_key, hk);
	struct cache_thread *t = hk->n ? cache_thread_attach(n->cfg.cache)
				       : NULL;
	for (unsigned i = 0; t != NULL && i < hk->n; i++)
		(void)cache_delete(t, hk->key[i], hk->nkey[i],
				   cache_hash(hk->key[i], hk->nkey[i]), 0);
	cache_thread_detach(&t);
	free(hk);
}

/* Agent thread: a new map version. */
static void on_map(void *arg, struct shard_map *map)
{
	struct node *n = arg;
	bool prepare = map->phase == MAP_PHASE_PREPARE;

	if (prepare)
		purge_incoming(n, map);
	map_ref(map);
	migrator_apply(n->migrator, map);          /* takes its own reference */
	cluster_set_map(n->cluster, map);          /* takes one of ours */
	/* A replica's fill answered between the purge and the new map could
	 * have stored a hot key that moves in here: no fill installs under
	 * this map, so one more pass over the hot keys leaves none. */
	if (prepare)
		drop_hot_incoming(n, map);
	map_unref(map);
}

/* Migrator thread: progress of the stream this node sends. */
static void on_progress(void *arg, const struct migrate_progress *p)
{
	struct node *n = arg;

	/* agent_report_progress only stores and signals: short under lock. */
	pthread_mutex_lock(&n->lock);
	if (n->agent != NULL)
		agent_report_progress(n->agent, p);
	pthread_mutex_unlock(&n->lock);
}

/* ---- the hot-key loop's view of this node (on its thread) ---- */

static unsigned hot_drain(void *arg, struct hot_count *out, unsigned max,
			  uint64_t *received, uint64_t *executed)
{
	struct node *n = arg;
	return cluster_hot_drain(n->cluster, out, max, received, executed);
}

static void hot_apply(void *arg, struct hot_set *set)
{
	struct node *n = arg;
	cluster_set_hot(n->cluster, set);
}

static bool hot_is_leader(void *arg)
{
	struct node *n = arg;
	struct agent_status as;
	memset(&as, 0, sizeof(as));
	pthread_mutex_lock(&n->lock);
	if (n->agent != NULL)
		agent_get_status(n->agent, &as);
	pthread_mutex_unlock(&n->lock);
	return as.leader && as.connected;
}

static struct shard_map *hot_get_map(void *arg)
{
	struct node *n = arg;
	return cluster_get_map(n->cluster);
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
	pthread_mutex_lock(&n->lock);
	n->agent = a;
	pthread_mutex_unlock(&n->lock);

	struct hotctl_config hc = {
		.zk_hosts = n->cfg.zk_hosts,
		.root = n->cfg.zk_root,
		.node_id = n->cfg.node_id,
		.session_timeout_ms = n->cfg.zk_session_ms,
		.interval_ms = n->cfg.hot_interval_ms,
		.decay = -1,
		.plan = n->cfg.hot_plan,
		.drain = hot_drain,
		.apply = hot_apply,
		.is_leader = hot_is_leader,
		.get_map = hot_get_map,
		.arg = n,
		.verbosity = n->cfg.verbosity,
	};
	struct hotctl *h = hotctl_start(&hc, err, errlen);
	if (h == NULL)
		return -1;
	pthread_mutex_lock(&n->lock);
	n->hotctl = h;
	pthread_mutex_unlock(&n->lock);
	return 0;
}

void node_stop(struct node *n)
{
	if (n == NULL)
		return;
	/* The hot-key loop first (it asks the agent whether we lead), then
	 * the agent: no new map reaches the migrator after this, and the node
	 * leaves ZooKeeper cleanly (its ephemeral znodes go at once). */
	pthread_mutex_lock(&n->lock);
	struct hotctl *h = n->hotctl;
	n->hotctl = NULL;
	pthread_mutex_unlock(&n->lock);
	hotctl_stop(&h);
	pthread_mutex_lock(&n->lock);
	struct agent *a = n->agent;
	n->agent = NULL;
	pthread_mutex_unlock(&n->lock);
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
	pthread_mutex_destroy(&n->lock);
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

	struct agent_status as;
	memset(&as, 0, sizeof(as));
	/* agent_get_status copies a snapshot under the agent's own lock. */
	pthread_mutex_lock(&n->lock);
	if (n->agent != NULL)
		agent_get_status(n->agent, &as);
	else
		snprintf(as.zk_state, sizeof(as.zk_state), "stopped");
	pthread_mutex_unlock(&n->lock);
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
	emit_u64(emit, arg, "purged_before_migration",
		 __atomic_load_n(&n->purged, __ATOMIC_RELAXED));
}

void node_hot_stats(struct node *n, cluster_stat_fn emit, void *arg)
{
	/* hotctl_stats copies under hotctl's own lock: short under ours. */
	pthread_mutex_lock(&n->lock);
	if (n->hotctl != NULL)
		hotctl_stats(n->hotctl, emit, arg);
	pthread_mutex_unlock(&n->lock);
}
