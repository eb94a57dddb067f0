/*
 * replication/cluster_internal.h - what the two halves of a node's serving
 * side share, and nothing else may use:
 *   cluster.c  - the map, routing by owner, forwarding, migration's FRESH
 *                set, counters;
 *   replica.c  - hot keys: the serving threads' sketches and the replica
 *                set (reads served by replicas, fills, invalidations).
 */
#ifndef DPCACHE_REPLICATION_CLUSTER_INTERNAL_H
#define DPCACHE_REPLICATION_CLUSTER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "replication/cluster.h"
#include "replication/hotkeys.h"
#include "replication/hotset.h"
#include "replication/tombstone.h"

#define CLUSTER_MAX_WORKERS 256

/* Per-worker counters, summed by 'stats cluster'. local: requests run
 * against this node's cache (replica hits included): the node's load. */
#define CLUSTER_WORKER_STATS(X) \
	X(local) X(forwarded) X(pulls) X(pull_installed) X(pull_errors) \
	X(udp_refused) X(refused) \
	X(replica_hits) X(replica_stale_hits) X(replica_fills) \
	X(replica_fill_rejected) X(replica_forwards) X(warm_pulls) \
	X(warm_installed) X(invalidations_sent) X(invalidations_received) \
	X(invalidation_errors)

struct cluster_worker_stats {
#define CW_FIELD(name) uint64_t name;
	CLUSTER_WORKER_STATS(CW_FIELD)
#undef CW_FIELD
};

struct cluster_worker {
	struct cluster *c;
	struct cache_thread *ct;
	struct fwd *fwd;                  /* 'dpc_peer <self> fwd' links */
	struct fwd *fwd_final;            /* 'dpc_peer <self> final' links */
	int epfd;                         /* holds both forwarders' fds */
	struct hot_sketch *sketch;        /* NULL: detection off */
	struct cluster_worker_stats stats;
};

/*
 * The replica state of one hot key on this node, shared by every version
 * of the index that holds the key (so a new set version does not forget a
 * blocked key or a valid copy). 'gen' changes on every invalidation (and,
 * at the owner, on every local write): a fill or warm pull sent under one
 * generation installs nothing under another, so an answer that an
 * invalidation overtook is dropped. Generations come from one node-wide
 * counter, so a new state never reuses an old one's.
 */
struct replica_state {
	pthread_mutex_t lock;             /* gen, blocked_until changes */
	uint64_t gen;                     /* atomic reads; written under lock */
	uint64_t copy_cas;                /* atomic; CAS of the copy a fill of
	                                     this state installed, 0 = none */
	uint64_t lease_until_ms;          /* atomic; the copy is served until */
	uint64_t blocked_until_ms;        /* atomic, written under lock; sync
	                                     mode: no fill before this ... */
	unsigned nblocked;                /* under lock: ... or while writes
	                                     that blocked us have not said
	                                     'done' */
	uint64_t owner_failed_ms;         /* atomic; last fill that could not
	                                     reach the owner */
	uint64_t fill_until_ms;           /* atomic; a fill is out until then:
	                                     other reads go to the owner */
	bool warm_tried;                  /* atomic; owner pulled from a replica,
	                                     or has the key, or wrote it */
	bool owner_changed;               /* the set's owner of the key changed
	                                     when this state was made */
	int refs;                         /* atomic; indexes holding it */
};

struct hot_entry {
	const struct hot_set_key *k;      /* in the index's set */
	bool self_replica;                /* this node is one of k->replicas */
	struct replica_state *st;
};

/* An immutable lookup table over one hot set version, RCU-published. */
struct hot_index {
	struct hot_set *set;              /* owned */
	struct hot_entry *entries;        /* set->nkeys */
	unsigned mask;                    /* slots - 1 */
	int32_t *slots;                   /* entry index, -1 = empty */
};

struct cluster {
	struct cache *cache;
	char self_id[MAP_ID_MAX];
	char self_addr[MAP_ADDR_MAX];
	uint64_t self_hash;               /* spreads non-holders over replicas */
	struct shard_map *map;            /* RCU; immutable once published */
	/* FRESH marks of every migration, keyed by fresh_key(): a mark of one
	 * migration never matches in another, so the set only needs emptying
	 * (to free it) once the cluster is stable. */
	struct tomb_set *fresh;
	bool fresh_dirty;                 /* marks may exist; set_map's only */
	pthread_mutex_t set_lock;         /* one set_map at a time; held across
	                                     a grace period, so never by readers */
	pthread_mutex_t map_lock;         /* c->map's reference for
	                                     cluster_get_map; held briefly */
	struct fwd_config fwd_cfg, fwd_final_cfg;
	char hello[MAP_ID_MAX + 32];
	char hello_final[MAP_ID_MAX + 32];
	pthread_mutex_t lock;             /* workers[], drain bookkeeping */
	struct cluster_worker *workers[CLUSTER_MAX_WORKERS];
	unsigned nworkers;

	/* Hot keys (replica.c). */
	unsigned hot_sample;              /* sketch sampling; 0 = off */
	unsigned lease_ms;
	bool replica_sync;
	struct hot_index *hot;            /* RCU; NULL = no set */
	pthread_mutex_t hot_lock;         /* one set_hot at a time (held
	                                     across a grace period) */
	uint64_t gen_seq;                 /* atomic; replica_state generations */
	uint64_t hot_version;             /* atomic; for stats: the set's */
	unsigned hot_keys, hot_mine;      /* atomic; keys, keys replicated here */
	uint64_t drained_local;           /* under lock: 'local' at last drain */
	uint64_t sketch_skipped;          /* under lock: summed at drains */
	uint64_t retired_local;           /* under lock: 'local' of destroyed
	                                     workers (drain deltas stay right) */
};

#define CW_INC(cw, field) \
	__atomic_store_n(&(cw)->stats.field, \
		__atomic_load_n(&(cw)->stats.field, __ATOMIC_RELAXED) + 1, \
		__ATOMIC_RELAXED)

static inline bool cluster_is_self(const struct cluster *c,
				   const struct map_node *n)
{
	return n != NULL && strcmp(n->id, c->self_id) == 0;
}

static inline void cluster_route_to(struct cluster_route *r,
				    enum cluster_action a,
				    const struct map_node *n)
{
	r->action = a;
	memcpy(r->peer, n->addr, sizeof(r->peer));
	memcpy(r->peer_id, n->id, sizeof(r->peer_id));
}

/* A pull's answer ('VA <n> f<flags> t<ttl> c<cas>' + data, or 'EN'). */
struct cluster_pulled {
	uint32_t flags;
	int64_t ttl;                      /* -1 = never expires */
	uint64_t cas;                     /* 0 when the answer had none */
	const char *data;                 /* in the reply */
	size_t nbytes;
};
/* 0 (a value), 1 (EN: a miss) or -EPROTO. */
int cluster_parse_pulled(const char *reply, size_t len,
			 struct cluster_pulled *out);
/* Stores a pulled value here with 'mode' (cas_new 0 = a fresh CAS). */
enum cache_status cluster_store_pulled(struct cluster_worker *cw,
				       const char *key, size_t nkey,
				       uint64_t hash,
				       const struct cluster_pulled *p,
				       enum cache_store_mode mode,
				       uint64_t cas_new, uint64_t *cas_out);

/* replica.c, for cluster.c. */
int replica_init(struct cluster *c, const struct cluster_config *cfg);
void replica_fini(struct cluster *c);
/* The hot-key part of routing, for a stable map: true when it decided. */
bool replica_route(struct cluster_worker *cw, const struct shard_map *m,
		   const struct map_node *owner, const char *key, size_t nkey,
		   uint64_t hash, enum cluster_op op, enum cluster_from from,
		   bool pulled, struct cluster_route *r);
void replica_worker_init(struct cluster_worker *cw);
/* After a new map is published and its grace period passed. */
void replica_map_changed(struct cluster *c);
void replica_worker_fini(struct cluster_worker *cw);
/* 'stats cluster' lines of the hot-key side (under no lock). */
void replica_stats(struct cluster *c, cluster_stat_fn emit, void *arg);

#endif /* DPCACHE_REPLICATION_CLUSTER_INTERNAL_H */
