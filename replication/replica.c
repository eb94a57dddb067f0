/*
 * replication/replica.c - hot keys on the serving side: each serving
 * thread's sketch (detection), and the replica set the leader publishes
 * (rules: control/CLUSTER.md, "Hot keys").
 *
 * Design note. A replicated key has one owner, as every key, plus replicas
 * that keep a copy. The copy is a plain item in the replica's cache,
 * installed by a FILL (a pull from the owner, 'mg k v f t c', that keeps
 * the owner's CAS, so 'gets' at a replica gives a CAS the owner accepts).
 * Whether the copy may be served is not a property of the item but of the
 * key's replica_state: the CAS of the copy the last fill installed, and a
 * lease. So a copy left over from an earlier time (the key cooled, was
 * written at the owner, became hot again) is never served: no fill of the
 * current state installed it.
 *
 * Coherence. Writes go to the owner. After a write there, the owner sends
 * 'dpc_inv <key> done' to every replica (async: the forwarder sends it on
 * the thread's next poll, after the write); a replica drops its copy and
 * moves the key's generation on, so a fill that was already under way
 * installs nothing. The lease caps the staleness when an invalidation is
 * lost (a link down). With --replica-consistency=sync the owner first sends
 * 'dpc_inv <key> block' to each replica and waits for each answer before it
 * runs the write: a blocked replica installs no fill until the 'done' after
 * the write (or a lease), so once the client has its answer no replica can
 * serve an older value.
 *
 * Threads: the index is built and swapped by the control thread
 * (cluster_set_hot, which waits a grace period before freeing the old
 * one); serving threads read it under RCU. replica_state is shared between
 * index versions (refcounted) and changed by any serving thread: its
 * generation under its mutex, the rest with atomics.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <urcu-qsbr.h>

#include <nettle/base64.h>

#include "replication/cluster_internal.h"
#include "replication/ring.h"

#define LEASE_DEFAULT_MS 1000

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t load64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static uint64_t next_gen(struct cluster *c)
{
	return __atomic_add_fetch(&c->gen_seq, 1, __ATOMIC_RELAXED);
}

/* ---- setup ---------------------------------------------------------------- */

int replica_init(struct cluster *c, const struct cluster_config *cfg)
{
	c->hot_sample = cfg->hot_sample;
	c->lease_ms = cfg->replica_lease_ms ? cfg->replica_lease_ms
					    : LEASE_DEFAULT_MS;
	c->replica_sync = cfg->replica_sync;
	/* FNV-1a of the id: which replica this node sends its reads to. */
	uint64_t h = 0xcbf29ce484222325ull;
	for (const char *p = c->self_id; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
	c->self_hash = h;
	return pthread_mutex_init(&c->hot_lock, NULL) == 0 ? 0 : -ENOMEM;
}

static void state_unref(struct replica_state *st)
{
	if (st != NULL && __atomic_sub_fetch(&st->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		pthread_mutex_destroy(&st->lock);
		free(st);
	}
}

static void index_free(struct hot_index *hi)
{
	if (hi == NULL)
		return;
	if (hi->entries != NULL)
		for (unsigned i = 0; i < hi->set->nkeys; i++)
			state_unref(hi->entries[i].st);
	free(hi->entries);
	free(hi->slots);
	hot_set_free(&hi->set);
	free(hi);
}

void replica_fini(struct cluster *c)
{
	index_free(c->hot);
	c->hot = NULL;
	pthread_mutex_destroy(&c->hot_lock);
}

void replica_worker_init(struct cluster_worker *cw)
{
	if (cw->c->hot_sample != 0)
		cw->sketch = hot_sketch_create(HOT_SKETCH_CAPACITY_DEFAULT,
					       cw->c->hot_sample);
	/* No memory for it: this thread's requests are simply not counted. */
}

void replica_worker_fini(struct cluster_worker *cw)
{
	hot_sketch_destroy(&cw->sketch);
}

/* ---- the index ------------------------------------------------------------ */

static const struct hot_entry *index_find(const struct hot_index *hi,
					  const char *key, size_t nkey,
					  uint64_t hash)
{
	for (unsigned i = (unsigned)hash & hi->mask;; i = (i + 1) & hi->mask) {
		int32_t e = hi->slots[i];
		if (e < 0)
			return NULL;
		const struct hot_set_key *k = hi->entries[e].k;
		if (k->hash == hash && k->nkey == nkey &&
		    memcmp(k->key, key, nkey) == 0)
			return &hi->entries[e];
	}
}

static bool is_replica(const struct hot_set_key *k, const char *id)
{
	for (unsigned i = 0; i < k->nreplicas; i++)
		if (strcmp(k->replicas[i], id) == 0)
			return true;
	return false;
}

static struct replica_state *state_new(struct cluster *c)
{
	struct replica_state *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	if (pthread_mutex_init(&st->lock, NULL) != 0) {
		free(st);
		return NULL;
	}
	st->gen = next_gen(c);
	st->refs = 1;
	return st;
}

/* An index over 'set' (taken), reusing the states of keys 'old' has. */
static struct hot_index *index_build(struct cluster *c, struct hot_set *set,
				     const struct hot_index *old)
{
	struct hot_index *hi = calloc(1, sizeof(*hi));
	if (hi == NULL) {
		hot_set_free(&set);
		return NULL;
	}
	hi->set = set;
	unsigned slots = 8;
	while (slots < set->nkeys * 2)
		slots *= 2;
	hi->mask = slots - 1;
	hi->slots = malloc(slots * sizeof(*hi->slots));
	hi->entries = calloc(set->nkeys ? set->nkeys : 1, sizeof(*hi->entries));
	if (hi->slots == NULL || hi->entries == NULL)
		goto fail;
	for (unsigned i = 0; i < slots; i++)
		hi->slots[i] = -1;
	for (unsigned i = 0; i < set->nkeys; i++) {
		struct hot_entry *e = &hi->entries[i];
		e->k = &set->keys[i];
		e->self_replica = is_replica(e->k, c->self_id);
		const struct hot_entry *prev = old == NULL ? NULL :
			index_find(old, e->k->key, e->k->nkey, e->k->hash);
		if (prev != NULL && strcmp(prev->k->owner, e->k->owner) == 0 &&
		    prev->self_replica == e->self_replica) {
			e->st = prev->st;
			__atomic_add_fetch(&e->st->refs, 1, __ATOMIC_RELAXED);
		} else {
			e->st = state_new(c);
			if (e->st == NULL)
				goto fail;
			e->st->owner_changed = prev != NULL &&
				strcmp(prev->k->owner, e->k->owner) != 0;
		}
		unsigned j = (unsigned)e->k->hash & hi->mask;
		while (hi->slots[j] >= 0)
			j = (j + 1) & hi->mask;
		hi->slots[j] = (int32_t)i;
	}
	return hi;
fail:
	index_free(hi);
	return NULL;
}

void cluster_set_hot(struct cluster *c, struct hot_set *set)
{
	pthread_mutex_lock(&c->hot_lock);
	struct hot_index *old = c->hot;
	struct hot_index *hi = NULL;
	if (set != NULL && set->nkeys > 0) {
		hi = index_build(c, set, old);
		/* No memory: keep serving with the set we have. */
		if (hi == NULL) {
			pthread_mutex_unlock(&c->hot_lock);
			return;
		}
	} else {
		hot_set_free(&set);
	}
	rcu_assign_pointer(c->hot, hi);
	unsigned mine = 0;
	for (unsigned i = 0; hi != NULL && i < hi->set->nkeys; i++)
		mine += hi->entries[i].self_replica;
	__atomic_store_n(&c->hot_version, hi ? hi->set->version : 0,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&c->hot_keys, hi ? hi->set->nkeys : 0,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&c->hot_mine, mine, __ATOMIC_RELAXED);
	/* Serving threads pass a quiescent state before the old index goes;
	 * no lock a reader takes is held here. */
	synchronize_rcu();
	pthread_mutex_unlock(&c->hot_lock);
	index_free(old);
}

/* Agent thread, after a new map's grace period (cluster_set_map): no
 * copy made under an older map is served, and no fill sent under one
 * installs. Owners change with maps, and during a migration owners send
 * no invalidations, so copies from before it may be stale. */
void replica_map_changed(struct cluster *c)
{
	pthread_mutex_lock(&c->hot_lock);
	struct hot_index *hi = c->hot;     /* only set_hot changes it: locked */
	for (unsigned i = 0; hi != NULL && i < hi->set->nkeys; i++) {
		struct replica_state *st = hi->entries[i].st;
		pthread_mutex_lock(&st->lock);
		store64(&st->gen, next_gen(c));
		store64(&st->copy_cas, 0);
		pthread_mutex_unlock(&st->lock);
	}
	pthread_mutex_unlock(&c->hot_lock);
}

void cluster_hot_moving_in(struct cluster *c, const struct shard_map *m,
			   void (*fn)(void *arg, const char *key, size_t nkey),
			   void *arg)
{
	if (m == NULL || m->migration == 0)
		return;
	pthread_mutex_lock(&c->hot_lock);
	struct hot_index *hi = c->hot;     /* only set_hot changes it: locked */
	for (unsigned i = 0; hi != NULL && i < hi->set->nkeys; i++) {
		const struct hot_set_key *k = hi->entries[i].k;
		uint32_t rh = ring_hash(k->key, k->nkey);
		const struct map_node *prev = map_prev_owner(m, rh);
		if (cluster_is_self(c, map_owner(m, rh)) &&
		    !cluster_is_self(c, prev))
			fn(arg, k->key, k->nkey);
	}
	pthread_mutex_unlock(&c->hot_lock);
}

/* ---- routing --------------------------------------------------------------- */

/* The replica this node sends reads of a key it does not hold to: spread
 * over the replicas by node, so every non-holder does not pick the same. */
static const struct map_node *pick_replica(const struct cluster *c,
					   const struct shard_map *m,
					   const struct hot_set_key *k)
{
	unsigned n = k->nreplicas;
	for (unsigned t = 0; t < n; t++) {
		unsigned i = (unsigned)((c->self_hash + t) % n);
		int idx = map_find(m, k->replicas[i]);
		if (idx >= 0 && !cluster_is_self(c, &m->nodes[idx]))
			return &m->nodes[idx];
	}
	return NULL;
}

/* The copy here, when a fill of this state installed it and nothing
 * invalidated it since (lease not checked). */
static const struct cache_item *untouched_copy(struct cluster_worker *cw,
					       const struct hot_entry *e,
					       const char *key, size_t nkey,
					       uint64_t hash)
{
	uint64_t cc = load64(&e->st->copy_cas);
	if (cc == 0)
		return NULL;
	struct cache_read_opts o = { .no_bump = true };
	const struct cache_item *it = cache_get(cw->ct, key, nkey, hash, &o,
						NULL);
	return it != NULL && it->cas == cc ? it : NULL;
}

enum drop_why {
	DROP_PASSING,      /* this node forwards a write of the key */
	DROP_BLOCK,        /* the owner: a write is about to run (sync) */
	DROP_DONE,         /* the owner: a write ran */
};

/* How long a 'block' holds at most: the owner blocks its replicas one
 * after the other, each within a forward timeout, then writes; a lost
 * 'done' must not block fills for ever. */
static uint64_t block_ms(const struct cluster *c, unsigned nodes)
{
	uint64_t fwd = c->fwd_cfg.timeout_ms ? c->fwd_cfg.timeout_ms : 1000;
	return c->lease_ms + (uint64_t)(nodes + 1) * fwd;
}

/* Drops this node's copy: the key's generation moves on (a fill under
 * way installs nothing), and the item goes unless 'keep' (this node owns
 * the key, or owned it before a migration in flight: the item is data,
 * not a copy). A block holds until every write that blocked said done. */
static void drop_copy(struct cluster_worker *cw, struct replica_state *st,
		      const char *key, size_t nkey, uint64_t hash,
		      enum drop_why why, unsigned nodes, bool keep)
{
	if (st != NULL) {
		pthread_mutex_lock(&st->lock);
		store64(&st->gen, next_gen(cw->c));
		store64(&st->copy_cas, 0);
		if (why == DROP_BLOCK) {
			uint64_t until = mono_ms() + block_ms(cw->c, nodes);
			st->nblocked++;
			if (until > load64(&st->blocked_until_ms))
				store64(&st->blocked_until_ms, until);
		} else if (why == DROP_DONE && st->nblocked > 0 &&
			   --st->nblocked == 0) {
			store64(&st->blocked_until_ms, 0);
		}
		pthread_mutex_unlock(&st->lock);
	}
	if (!keep)
		(void)cache_delete(cw->ct, key, nkey, hash, 0);
}

bool replica_route(struct cluster_worker *cw, const struct shard_map *m,
		   const struct map_node *owner, const char *key, size_t nkey,
		   uint64_t hash, enum cluster_op op, enum cluster_from from,
		   bool pulled, struct cluster_route *r)
{
	struct cluster *c = cw->c;
	const struct hot_index *hi = rcu_dereference(c->hot);
	if (hi == NULL || owner == NULL)
		return false;
	const struct hot_entry *e = index_find(hi, key, nkey, hash);
	if (e == NULL || e->k->nreplicas == 0)
		return false;
	bool self_owner = cluster_is_self(c, owner);

	if (op == CLUSTER_OP_TOUCH) {
		/* A TTL change is the owner's business: it goes there, and a
		 * copy here would keep the old TTL. */
		if (!self_owner && e->self_replica &&
		    from != CLUSTER_FROM_PEER_FINAL)
			drop_copy(cw, e->st, key, nkey, hash, DROP_PASSING, 0,
				  false);
		return false;
	}
	if (op != CLUSTER_OP_READ) {
		if (!self_owner) {
			/* Goes to the owner as any write; our own copy must
			 * not outlive it (read-your-writes here). */
			if (e->self_replica && from != CLUSTER_FROM_PEER_FINAL)
				drop_copy(cw, e->st, key, nkey, hash,
					  DROP_PASSING, 0, false);
			return false;
		}
		/* A warm pull under way must not add an older value over
		 * this write (or after this delete). */
		pthread_mutex_lock(&e->st->lock);
		store64(&e->st->gen, next_gen(c));
		pthread_mutex_unlock(&e->st->lock);
		/* Nor may a later miss here pull the old value back from a
		 * replica that has not seen this write's invalidation yet (a
		 * delete undone). Only a new owner warms up. */
		__atomic_store_n(&e->st->warm_tried, true, __ATOMIC_RELAXED);
		r->hot_owner = true;
		if (c->replica_sync && !pulled) {
			char peer[MAP_ADDR_MAX], id[MAP_ID_MAX];
			if (cluster_replica_peer(cw, key, nkey, hash, 0, peer,
						 id)) {
				r->action = CLUSTER_PULL;
				r->pull_kind = CLUSTER_PULL_BLOCK;
				r->final_hop = true;
				memcpy(r->peer, peer, sizeof(r->peer));
				memcpy(r->peer_id, id, sizeof(r->peer_id));
				return true;
			}
		}
		CW_INC(cw, local);
		return true;
	}

	if (from == CLUSTER_FROM_PEER_FINAL) {
		/* A warm pull (or a second hop) reads what is here: never a
		 * copy that no fill of this state installed. */
		if (!self_owner && e->self_replica &&
		    untouched_copy(cw, e, key, nkey, hash) == NULL)
			(void)cache_delete(cw->ct, key, nkey, hash, 0);
		return false;
	}

	if (self_owner) {
		/* The owner lacks a hot key (it is new, or the old owner
		 * died): one pull from a replica per state, with ADD. */
		if (pulled || __atomic_load_n(&e->st->warm_tried, __ATOMIC_RELAXED))
			return false;
		/* Only a new owner: the set still names another one, or named
		 * another when this state was made. */
		if (strcmp(e->k->owner, c->self_id) == 0 &&
		    !e->st->owner_changed)
			return false;
		struct cache_read_opts o = { .no_bump = true };
		if (cache_get(cw->ct, key, nkey, hash, &o, NULL) != NULL) {
			__atomic_store_n(&e->st->warm_tried, true,
					 __ATOMIC_RELAXED);
			return false;
		}
		const struct map_node *rep = pick_replica(c, m, e->k);
		if (rep == NULL)
			return false;
		__atomic_store_n(&e->st->warm_tried, true, __ATOMIC_RELAXED);
		cluster_route_to(r, CLUSTER_PULL, rep);
		r->pull_kind = CLUSTER_PULL_WARM;
		r->pull_gen = load64(&e->st->gen);
		r->final_hop = true;
		CW_INC(cw, warm_pulls);
		return true;
	}

	if (e->self_replica) {
		uint64_t now = mono_ms();
		if (untouched_copy(cw, e, key, nkey, hash) != NULL) {
			if (now < load64(&e->st->lease_until_ms)) {
				CW_INC(cw, replica_hits);
				CW_INC(cw, local);
				return true;
			}
			/* Lease over and the owner unreachable: the copy
			 * outlives its owner until a new owner has the key,
			 * for two more leases at most (a fixed window: an
			 * owner cut off from us but alive may take writes). */
			uint64_t failed = load64(&e->st->owner_failed_ms);
			if (failed != 0 && now < load64(&e->st->lease_until_ms) +
						 2ull * c->lease_ms) {
				CW_INC(cw, replica_stale_hits);
				CW_INC(cw, local);
				return true;
			}
		}
		/* One fill at a time per node: after an invalidation every
		 * connection here would otherwise pull the same value. */
		if (!pulled && now >= load64(&e->st->fill_until_ms) &&
		    now >= load64(&e->st->blocked_until_ms)) {
			store64(&e->st->fill_until_ms, now + c->lease_ms / 2);
			cluster_route_to(r, CLUSTER_PULL, owner);
			r->pull_kind = CLUSTER_PULL_FILL;
			r->pull_gen = load64(&e->st->gen);
			r->final_hop = true;
			return true;
		}
		return false;     /* not installed: ask the owner */
	}

	if (from != CLUSTER_FROM_CLIENT)
		return false;
	const struct map_node *rep = pick_replica(c, m, e->k);
	if (rep == NULL)
		return false;
	cluster_route_to(r, CLUSTER_FORWARD, rep);
	CW_INC(cw, replica_forwards);
	CW_INC(cw, forwarded);
	return true;
}

/* ---- fills, warm pulls, invalidations --------------------------------------- */

/* The entry of a key in the current index (RCU: valid until the caller's
 * next quiescent state), or NULL. */
static const struct hot_entry *current_entry(struct cluster *c,
					     const char *key, size_t nkey,
					     uint64_t hash)
{
	const struct hot_index *hi = rcu_dereference(c->hot);
	return hi == NULL ? NULL : index_find(hi, key, nkey, hash);
}

static bool owned_here(struct cluster *c, const char *key, size_t nkey)
{
	const struct shard_map *m = rcu_dereference(c->map);
	if (m == NULL)
		return false;
	return cluster_is_self(c, map_owner(m, ring_hash(key, nkey)));
}

int cluster_pull_done(struct cluster_worker *cw, enum cluster_pull kind,
		      const char *key, size_t nkey, uint64_t hash,
		      uint64_t gen, int err, const char *reply, size_t len)
{
	struct cluster *c = cw->c;
	const struct hot_entry *e = current_entry(c, key, nkey, hash);
	struct cluster_pulled p;
	int rc = 0;

	if (kind == CLUSTER_PULL_FILL && e != NULL)
		store64(&e->st->fill_until_ms, 0);
	if (err != 0) {
		if (kind == CLUSTER_PULL_FILL && e != NULL)
			store64(&e->st->owner_failed_ms, mono_ms());
		return err;
	}
	if (kind == CLUSTER_PULL_FILL && e != NULL)
		store64(&e->st->owner_failed_ms, 0);
	rc = cluster_parse_pulled(reply, len, &p);
	if (rc != 0 || p.ttl == 0)
		return rc < 0 ? rc : 0;
	if (e == NULL)
		return 0;       /* the key left the set meanwhile */

	struct replica_state *st = e->st;
	bool installed = false;
	const struct shard_map *m = rcu_dereference(c->map);
	pthread_mutex_lock(&st->lock);
	/* A map change moved every generation on (replica_map_changed), so
	 * an answer to a pull sent under an older map installs nothing; nor
	 * does one during a migration. */
	if (load64(&st->gen) == gen && m != NULL && m->migration == 0) {
		uint64_t cas = 0;
		uint64_t now = mono_ms();
		/* A block whose 'done' never came ends with its time. */
		if (st->nblocked > 0 && now >= load64(&st->blocked_until_ms))
			st->nblocked = 0;
		if (kind == CLUSTER_PULL_FILL && e->self_replica &&
		    st->nblocked == 0 &&
		    now >= load64(&st->blocked_until_ms) &&
		    !owned_here(c, key, nkey) && p.cas != 0) {
			/* The owner's CAS, so a 'gets' here can feed a 'cas'
			 * there. */
			if (cluster_store_pulled(cw, key, nkey, hash, &p,
						 CACHE_SET, p.cas, &cas) ==
			    CACHE_OK) {
				store64(&st->copy_cas, cas);
				store64(&st->lease_until_ms,
					mono_ms() + c->lease_ms);
				installed = true;
			}
		} else if (kind == CLUSTER_PULL_WARM &&
			   owned_here(c, key, nkey)) {
			installed = cluster_store_pulled(cw, key, nkey, hash,
							 &p, CACHE_ADD, p.cas,
							 &cas) == CACHE_OK;
		}
	}
	pthread_mutex_unlock(&st->lock);
	if (kind == CLUSTER_PULL_FILL) {
		if (installed)
			CW_INC(cw, replica_fills);
		else
			CW_INC(cw, replica_fill_rejected);
	} else if (installed) {
		CW_INC(cw, warm_installed);
	}
	return 0;
}

bool cluster_replica_peer(struct cluster_worker *cw, const char *key,
			  size_t nkey, uint64_t hash, unsigned idx,
			  char peer[MAP_ADDR_MAX], char peer_id[MAP_ID_MAX])
{
	struct cluster *c = cw->c;
	const struct shard_map *m = rcu_dereference(c->map);
	const struct hot_entry *e = current_entry(c, key, nkey, hash);
	if (m == NULL || e == NULL)
		return false;
	/* Every other node of the map, not only this set's replicas: a node
	 * may apply a new set version before this one does and fill under
	 * it. idx counts them in map order. */
	for (unsigned n = 0; n < m->nnodes; n++) {
		if (cluster_is_self(c, &m->nodes[n]))
			continue;
		if (idx-- == 0) {
			memcpy(peer, m->nodes[n].addr, MAP_ADDR_MAX);
			memcpy(peer_id, m->nodes[n].id, MAP_ID_MAX);
			return true;
		}
	}
	return false;
}

void cluster_invalidate(struct cluster_worker *cw, const char *key,
			size_t nkey, uint64_t hash, bool block)
{
	struct cluster *c = cw->c;
	const struct hot_entry *e = current_entry(c, key, nkey, hash);
	const struct shard_map *m = rcu_dereference(c->map);
	CW_INC(cw, invalidations_received);
	/* Not in our set (yet, or any more): a copy here is dropped all the
	 * same; no fill can be under way without an entry. During a
	 * migration the item may be the data of its old or new owner: only
	 * the state changes (the copies of a migration are dropped after it). */
	drop_copy(cw, e != NULL ? e->st : NULL, key, nkey, hash,
		  block ? DROP_BLOCK : DROP_DONE, m != NULL ? m->nnodes : 0,
		  m == NULL || m->migration != 0 || owned_here(c, key, nkey));
}

static void inval_done(void *arg, int err, const char *reply, size_t len)
{
	struct cluster_worker *cw = arg;
	if (err != 0 || len < 2 || memcmp(reply, "HD", 2) != 0)
		CW_INC(cw, invalidation_errors);
}

/* 'dpc_inv <key> <mode>', the key in base64 with ' b' when a meta token
 * cannot carry it. Returns the length, or 0 if it does not fit. */
static size_t format_inval(char *buf, size_t cap, const char *key,
			   size_t nkey, const char *mode)
{
	bool b64 = false;
	if (nkey == 0 || nkey > CACHE_KEY_MAX)
		return 0;
	for (size_t i = 0; i < nkey; i++) {
		unsigned char ch = (unsigned char)key[i];
		if (ch <= ' ' || ch == 0x7f)
			b64 = true;
	}
	char enc[BASE64_ENCODE_RAW_LENGTH(CACHE_KEY_MAX) + 1];
	if (b64) {
		base64_encode_raw((char *)enc, nkey, (const uint8_t *)key);
		enc[BASE64_ENCODE_RAW_LENGTH(nkey)] = '\0';
	}
	int n = b64 ? snprintf(buf, cap, "dpc_inv %s %s b\r\n", enc, mode)
		    : snprintf(buf, cap, "dpc_inv %.*s %s\r\n", (int)nkey,
			       key, mode);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t cluster_format_inval(char *buf, size_t cap, const char *key,
			    size_t nkey, bool block)
{
	return format_inval(buf, cap, key, nkey, block ? "block" : "done");
}

void cluster_fill_not_sent(struct cluster_worker *cw, const char *key,
			   size_t nkey, uint64_t hash)
{
	struct cluster *c = cw->c;
	const struct hot_entry *e = current_entry(c, key, nkey, hash);
	if (e != NULL)
		store64(&e->st->fill_until_ms, 0);
	/* The read runs here now: what is here is no valid copy (else no
	 * fill), so it must be a miss, not a stale value. */
	if (!owned_here(c, key, nkey))
		(void)cache_delete(cw->ct, key, nkey, hash, 0);
}

void cluster_after_write(struct cluster_worker *cw, const char *key,
			 size_t nkey, uint64_t hash)
{
	struct cluster *c = cw->c;
	const struct shard_map *m = rcu_dereference(c->map);
	if (m == NULL)
		return;
	if (m->migration != 0) {
		cluster_mark_fresh(cw, key, nkey, hash);
		return;
	}
	const struct hot_entry *e = current_entry(c, key, nkey, hash);
	if (e == NULL)
		return;
	char req[CACHE_KEY_MAX * 2 + 32];
	size_t len = format_inval(req, sizeof(req), key, nkey, "done");
	if (len == 0)
		return;
	/* Every other node (cluster_replica_peer says why). */
	for (unsigned n = 0; n < m->nnodes; n++) {
		if (cluster_is_self(c, &m->nodes[n]))
			continue;
		/* Queued now, written by the next poll: after the write. A
		 * full queue or a dead replica: that copy lives out its
		 * lease. */
		if (fwd_submit(cw->fwd_final, m->nodes[n].addr, req, len,
			       inval_done, cw, NULL) == 0)
			CW_INC(cw, invalidations_sent);
		else
			CW_INC(cw, invalidation_errors);
	}
}

/* ---- detection ------------------------------------------------------------- */

unsigned cluster_hot_drain(struct cluster *c, struct hot_count *out,
			   unsigned max, uint64_t *received,
			   uint64_t *executed)
{
	unsigned n = 0;
	uint64_t recv = 0, local = 0;

	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->nworkers; i++) {
		struct cluster_worker *cw = c->workers[i];
		local += __atomic_load_n(&cw->stats.local, __ATOMIC_RELAXED);
		if (cw->sketch == NULL)
			continue;
		uint64_t req = 0, skipped = 0;
		n += hot_sketch_drain(cw->sketch, out + n, max - n, &req,
				      &skipped);
		recv += req;
		c->sketch_skipped += skipped;
	}
	local += c->retired_local;
	*executed = local >= c->drained_local ? local - c->drained_local : 0;
	c->drained_local = local;
	pthread_mutex_unlock(&c->lock);
	*received = recv;
	return n;
}

void replica_stats(struct cluster *c, cluster_stat_fn emit, void *arg)
{
	char buf[32];
	pthread_mutex_lock(&c->lock);
	uint64_t skipped = c->sketch_skipped;
	pthread_mutex_unlock(&c->lock);

	/* Counts kept by cluster_set_hot: this may run on a thread that is
	 * no RCU reader (the metrics endpoint). */
	uint64_t version = __atomic_load_n(&c->hot_version, __ATOMIC_RELAXED);
	unsigned keys = __atomic_load_n(&c->hot_keys, __ATOMIC_RELAXED);
	unsigned mine = __atomic_load_n(&c->hot_mine, __ATOMIC_RELAXED);

	snprintf(buf, sizeof(buf), "%" PRIu64, version);
	emit(arg, "hot_set_version", buf);
	snprintf(buf, sizeof(buf), "%u", keys);
	emit(arg, "hot_set_keys", buf);
	snprintf(buf, sizeof(buf), "%u", mine);
	emit(arg, "hot_replica_keys", buf);
	snprintf(buf, sizeof(buf), "%" PRIu64, skipped);
	emit(arg, "sketch_skipped", buf);
	emit(arg, "replica_consistency", c->replica_sync ? "sync" : "async");
}
