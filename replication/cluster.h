/*
 * replication/cluster.h - what a serving thread needs to be one node of a
 * cluster: the current shard map (RCU-swapped, so a polling core never reads
 * a torn map), the routing decision per key, the forwarder, the FRESH set of
 * a migration, and the cluster counters.
 *
 * Single node (no --cluster): no struct cluster exists and the protocol code
 * never calls in here (mc_worker's cluster pointer is NULL).
 *
 *   cluster        - one per process; created before the workers.
 *   cluster_worker - one per serving thread; created and used on it.
 */
#ifndef DPCACHE_REPLICATION_CLUSTER_H
#define DPCACHE_REPLICATION_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"
#include "replication/forward.h"
#include "replication/hotkeys.h"
#include "replication/hotset.h"
#include "replication/map.h"

struct cluster_config {
	struct cache *cache;
	const char *self_id;            /* --node-id */
	const char *self_addr;          /* --advertise "host:port" */
	unsigned fwd_timeout_ms;        /* 0 = 1000 */
	unsigned fwd_max_pending;       /* per peer per worker; 0 = 4096 */
	/* Hot keys (control/CLUSTER.md, "Hot keys"). */
	unsigned hot_sample;            /* 1 client request in N feeds the
	                                   thread's sketch; 0 = detection off */
	unsigned replica_lease_ms;      /* a replica's copy is served this long
	                                   after its fill; 0 = 1000 */
	bool replica_sync;              /* --replica-consistency=sync */
};

struct cluster;
struct cluster_worker;

struct cluster *cluster_create(const struct cluster_config *cfg);
/* After every worker is destroyed. Accepts NULL; sets *c to NULL. */
void cluster_destroy(struct cluster **c);

/* Publishes a new map: takes the caller's reference. Readers see the old or
 * the new map whole; the old one is released after a grace period. When the
 * new map is stable, the FRESH set is cleared. Any thread (registered with
 * urcu or not). */
void cluster_set_map(struct cluster *c, struct shard_map *m);
/* A new reference to the current map (may be NULL before the first one);
 * release with map_unref. Any thread. */
struct shard_map *cluster_get_map(struct cluster *c);
const char *cluster_self_id(const struct cluster *c);

/* ---- per serving thread ------------------------------------------------- */

/* On the serving thread, after it attached to the cache. */
struct cluster_worker *cluster_worker_create(struct cluster *c,
					     struct cache_thread *ct);
void cluster_worker_destroy(struct cluster_worker **cw);
/*
 * The thread's two forwarders: 'fwd' connections say 'dpc_peer <self> fwd'
 * (the peer may pass the request on once, if its map is newer than ours),
 * 'final' connections say 'dpc_peer <self> final' (the peer runs it: second
 * hops and pulls). A serving loop drives both through these four calls:
 *   cluster_worker_fd       one epoll fd (it holds both forwarders'),
 *                           readable when either has work: for the kernel
 *                           backend's epoll;
 *   cluster_worker_busy     anything queued, in flight or connecting;
 *   cluster_worker_timeout_ms  ms to the earliest deadline, -1 for none;
 *   cluster_worker_poll     does the I/O of every forwarder that is busy, or
 *                           of both when fd_ready (a peer may close an idle
 *                           link: its fd stays readable until polled).
 * Answers wake their sessions from inside cluster_worker_poll.
 */
int cluster_worker_fd(const struct cluster_worker *cw);
bool cluster_worker_busy(const struct cluster_worker *cw);
int cluster_worker_timeout_ms(const struct cluster_worker *cw, uint64_t now_ms);
void cluster_worker_poll(struct cluster_worker *cw, uint64_t now_ms,
			 bool fd_ready);

enum cluster_op {
	CLUSTER_OP_READ = 0,   /* get/gets/mg without T, meta no-op reads */
	CLUSTER_OP_TOUCH,      /* gat/gats/touch/mg T: a read that changes the
	                          TTL (a replica must not take it for the owner) */
	CLUSTER_OP_SET,        /* an unconditional set: never needs a pull */
	CLUSTER_OP_WRITE,      /* every other store, delete, incr/decr, ms/md/ma */
};

enum cluster_action {
	CLUSTER_LOCAL = 0,     /* run it here */
	CLUSTER_FORWARD,       /* send it to 'peer' and relay the answer */
	CLUSTER_PULL,          /* moving in, absent here: 'mg <key> v f t c' to
	                          'peer' (the previous owner), install the answer
	                          with cluster_install_pulled(), then run it here */
	CLUSTER_REFUSE,        /* no shard map yet: this node does not know who
	                          owns anything; answer an error (a write kept
	                          here would be lost to its real owner) */
};

/* Where a request came from: a client, or a peer's connection of either
 * role (see cluster_worker_fd). */
/* What a CLUSTER_PULL fetches, and what its answer becomes. */
enum cluster_pull {
	CLUSTER_PULL_MIGRATE = 0, /* moving in: install with ADD semantics
	                             (cluster_install_pulled) */
	CLUSTER_PULL_FILL,        /* a replica's copy of a hot key, from its
	                             owner: cluster_pull_done */
	CLUSTER_PULL_WARM,        /* an owner without a hot key, from one of
	                             its replicas: cluster_pull_done */
	CLUSTER_PULL_BLOCK,       /* sync mode, before a write at the owner:
	                             'dpc_inv <key> block' to every replica in
	                             turn (cluster_replica_peer), then run */
};

enum cluster_from {
	CLUSTER_FROM_CLIENT = 0,
	CLUSTER_FROM_PEER,       /* 'fwd': may go one hop further */
	CLUSTER_FROM_PEER_FINAL, /* 'final': runs here */
};

struct cluster_route {
	enum cluster_action action;
	bool moving_in;          /* run here on a key migrating to this node:
	                            call cluster_mark_fresh() after a write */
	bool final_hop;          /* FORWARD on a 'final' connection (a second
	                            hop); PULLs always are */
	bool hot_owner;          /* a write of a replicated key at its owner:
	                            call cluster_after_write() after it */
	uint8_t pull_kind;       /* enum cluster_pull, for CLUSTER_PULL */
	uint64_t pull_gen;       /* FILL, WARM: pass to cluster_pull_done */
	char peer[MAP_ADDR_MAX];
	char peer_id[MAP_ID_MAX];
};

/*
 * The decision for one key (rules: control/CLUSTER.md, "Routing"). 'from':
 * who sent it. 'pulled': this request already pulled its key (never PULL
 * again). For a moving-in key it looks the key up locally (without bumping
 * it) to decide PULL. 'hash' is cache_hash(key). Counts the decision
 * (local / forwarded / pulls).
 */
void cluster_route(struct cluster_worker *cw, const char *key, size_t nkey,
		   uint64_t hash, enum cluster_op op, enum cluster_from from,
		   bool pulled, struct cluster_route *r);

/* Queues a forwarded request (final_hop as the route said) or a pull
 * (final_hop true) on the thread's forwarders: fwd_submit's contract. */
int cluster_forward(struct cluster_worker *cw, const char *peer,
		    bool final_hop, const void *req, size_t len,
		    fwd_done_fn done, void *arg, struct fwd_req **handle);

/* After a local write or delete of a moving-in key (cluster_route already
 * marked it when it routed the write here; this is a second mark). */
void cluster_mark_fresh(struct cluster_worker *cw, const char *key,
			size_t nkey, uint64_t hash);
/* The key was written here during the migration in flight. */
bool cluster_is_fresh(struct cluster_worker *cw, uint64_t hash);

/* A migration stream's item (or a pull's answer) for 'key' may be
 * installed: the key is moving in to this node in the migration in flight
 * and was not written here since. Else the sender is late (the migration
 * is over) or the key is ours already: answer NS. */
bool cluster_accepts_migrated(struct cluster_worker *cw, const char *key,
			      size_t nkey, uint64_t hash);
/* After such an install stored with CAS 'cas': if a local write marked the
 * key FRESH meanwhile, deletes the installed item (only if it still has
 * that CAS) and returns true (answer NS). */
bool cluster_undo_if_fresh(struct cluster_worker *cw, const char *key,
			   size_t nkey, uint64_t hash, uint64_t cas);

/* A pull's answer ('VA <n> f<flags> t<ttl> c<cas>' + data, or 'EN'): stores
 * the item with ADD semantics unless the key is FRESH. Returns 0 (stored or
 * nothing to store) or -errno (-EPROTO for an answer it cannot read). */
int cluster_install_pulled(struct cluster_worker *cw, const char *key,
			   size_t nkey, uint64_t hash, const char *reply,
			   size_t len);

/*
 * After a local write or delete that cluster_route marked (moving_in or
 * hot_owner): marks a moving-in key FRESH, and for a replicated key whose
 * owner is this node queues 'dpc_inv <key> done' to each of its replicas
 * (sent by the next cluster_worker_poll, so after the write).
 */
void cluster_after_write(struct cluster_worker *cw, const char *key,
			 size_t nkey, uint64_t hash);

/*
 * The answer of a FILL or WARM pull (err: the forwarder's, 0 = an answer
 * in reply/len). A FILL answer is stored as the replica's copy (the owner's
 * CAS kept) unless an invalidation came since the pull left ('gen'); a
 * WARM answer is added at the owner unless a write came since. A FILL that
 * could not reach the owner lets the replica serve its last untouched copy
 * for a while. Returns 0, or -errno for an unreadable answer.
 */
int cluster_pull_done(struct cluster_worker *cw, enum cluster_pull kind,
		      const char *key, size_t nkey, uint64_t hash,
		      uint64_t gen, int err, const char *reply, size_t len);

/* A FILL could not even be sent (queue full, no memory): the read runs
 * here as a miss (the local non-copy is dropped). */
void cluster_fill_not_sent(struct cluster_worker *cw, const char *key,
			   size_t nkey, uint64_t hash);

/* Sync mode: the idx-th node to block before a write of a hot key owned
 * here (idx from 0): every other node of the map, since one may run a
 * newer set version than ours. false when there is none (the round is
 * over). */
bool cluster_replica_peer(struct cluster_worker *cw, const char *key,
			  size_t nkey, uint64_t hash, unsigned idx,
			  char peer[MAP_ADDR_MAX], char peer_id[MAP_ID_MAX]);

/* 'dpc_inv <key> block|done' (key in base64 + ' b' when needed) into buf;
 * the length, or 0 when it does not fit. */
size_t cluster_format_inval(char *buf, size_t cap, const char *key,
			    size_t nkey, bool block);

/* A peer's 'dpc_inv <key> block|done': drops this node's copy of the key
 * (unless it owns it); 'block' also keeps fills out for a lease. */
void cluster_invalidate(struct cluster_worker *cw, const char *key,
			size_t nkey, uint64_t hash, bool block);

/* ---- hot keys, for the node's control thread ---------------------------- */

/*
 * Drains every serving thread's sketch: up to 'max' counts into out;
 * *received: client requests counted since the last drain; *executed:
 * requests run against the cache since then (the 'local' counter). Any
 * thread, one caller at a time.
 */
unsigned cluster_hot_drain(struct cluster *c, struct hot_count *out,
			   unsigned max, uint64_t *received,
			   uint64_t *executed);
/* Publishes a new replica set (takes ownership; NULL = none). The caller
 * is not a serving thread: it waits for a grace period. */
void cluster_set_hot(struct cluster *c, struct hot_set *set);

/*
 * Calls fn for every key of the current replica set that moves in to this
 * node in 'm' (a migration map): a replica's copy of such a key must not
 * become the new owner's data. Agent thread (takes the set's lock).
 */
void cluster_hot_moving_in(struct cluster *c, const struct shard_map *m,
			   void (*fn)(void *arg, const char *key, size_t nkey),
			   void *arg);

/* A UDP request for a key this node does not own was refused. */
void cluster_count_udp_refused(struct cluster_worker *cw);

/* 'stats cluster' lines (self, map epoch, migration, counters summed over
 * workers, per peer). Any thread. */
typedef void (*cluster_stat_fn)(void *arg, const char *name,
				const char *value);
void cluster_stats(struct cluster *c, cluster_stat_fn emit, void *arg);

#endif /* DPCACHE_REPLICATION_CLUSTER_H */
