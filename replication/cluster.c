/*
 * replication/cluster.c - one node's view of the cluster, as the serving
 * threads use it.
 *
 * The current map is one pointer to an immutable map, swapped with
 * rcu_xchg_pointer by the agent thread and read with rcu_dereference by the
 * serving threads. Serving threads are urcu-qsbr readers that report a
 * quiescent state once per loop iteration (cache_thread_quiescent), so a map
 * they read stays valid until then; the writer waits a grace period
 * (synchronize_rcu, off the data plane) before dropping the old one. A
 * serving thread never sees a half-built map.
 *
 * Routing costs one MD5 of the key (ketama's hash, so that stock clients
 * agree with us), a binary search of the ring, and, only for a key migrating
 * to this node, one local lookup to decide whether to pull it first.
 *
 * Counters are per worker, written by its own thread only (relaxed stores),
 * summed by 'stats cluster'.
 */
#include "replication/cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#include "replication/cluster_internal.h"
#include "replication/ring.h"
#include "replication/tombstone.h"

struct cluster *cluster_create(const struct cluster_config *cfg)
{
	if (cfg == NULL || cfg->cache == NULL || cfg->self_id == NULL ||
	    !map_id_valid(cfg->self_id) || cfg->self_addr == NULL ||
	    strlen(cfg->self_addr) >= MAP_ADDR_MAX) {
		errno = EINVAL;
		return NULL;
	}
	struct cluster *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->cache = cfg->cache;
	snprintf(c->self_id, sizeof(c->self_id), "%s", cfg->self_id);
	snprintf(c->self_addr, sizeof(c->self_addr), "%s", cfg->self_addr);
	snprintf(c->hello, sizeof(c->hello), "dpc_peer %s fwd\r\n", c->self_id);
	c->fwd_cfg.hello = c->hello;
	c->fwd_cfg.timeout_ms = cfg->fwd_timeout_ms;
	c->fwd_cfg.max_pending = cfg->fwd_max_pending;
	c->fwd_final_cfg = c->fwd_cfg;
	/* A second hop or a pull runs inside a first hop that another node
	 * waits for: give it less time, so a hung third node fails the one
	 * request instead of timing out (and resetting) the first hop's whole
	 * link. */
	c->fwd_final_cfg.timeout_ms = (cfg->fwd_timeout_ms ? cfg->fwd_timeout_ms
							   : 1000) / 2;
	snprintf(c->hello_final, sizeof(c->hello_final),
		 "dpc_peer %s final\r\n", c->self_id);
	c->fwd_final_cfg.hello = c->hello_final;
	c->fresh = tomb_create();
	if (c->fresh == NULL) {
		free(c);
		return NULL;
	}
	if (replica_init(c, cfg) != 0) {
		tomb_destroy(&c->fresh);
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->set_lock, NULL);
	pthread_mutex_init(&c->map_lock, NULL);
	return c;
}

void cluster_destroy(struct cluster **cp)
{
	if (cp == NULL || *cp == NULL)
		return;
	struct cluster *c = *cp;
	*cp = NULL;
	map_unref(c->map);
	replica_fini(c);
	tomb_destroy(&c->fresh);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->set_lock);
	pthread_mutex_destroy(&c->map_lock);
	free(c);
}

const char *cluster_self_id(const struct cluster *c)
{
	return c->self_id;
}

void cluster_set_map(struct cluster *c, struct shard_map *m)
{
	pthread_mutex_lock(&c->set_lock);
	pthread_mutex_lock(&c->map_lock);
	struct shard_map *old = c->map;
	rcu_assign_pointer(c->map, m);
	pthread_mutex_unlock(&c->map_lock);
	/* Every serving thread that could still read 'old' passes a quiescent
	 * state first. The caller is the agent thread, not an RCU reader, and
	 * no lock a reader takes is held here: a serving thread blocked on one
	 * would never reach its quiescent state. */
	synchronize_rcu();
	if (m != NULL && m->migration != 0) {
		c->fresh_dirty = true;
	} else if (c->fresh_dirty) {
		/* Stable, and no reader routes with a migration map any more:
		 * nobody marks or reads FRESH until the next migration. */
		tomb_clear(c->fresh);
		c->fresh_dirty = false;
	}
	replica_map_changed(c);
	pthread_mutex_unlock(&c->set_lock);
	map_unref(old);
}

struct shard_map *cluster_get_map(struct cluster *c)
{
	/* A reference taken under map_lock outlives the writer's release of
	 * its own (set_map unrefs the old map after dropping the lock). */
	pthread_mutex_lock(&c->map_lock);
	struct shard_map *m = c->map;
	if (m != NULL)
		map_ref(m);
	pthread_mutex_unlock(&c->map_lock);
	return m;
}

/* The FRESH set's key for a key hash in one migration. */
static inline uint64_t fresh_key(uint64_t hash, uint64_t migration)
{
	return hash ^ (migration * 0x9e3779b97f4a7c15ull);
}

/* ---- per serving thread ------------------------------------------------- */

/* Level-triggered, like the forwarders' own epoll sets. */
static int epoll_add_in(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };

	ev.data.fd = fd;
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

struct cluster_worker *cluster_worker_create(struct cluster *c,
					     struct cache_thread *ct)
{
	struct cluster_worker *cw = calloc(1, sizeof(*cw));
	if (cw == NULL)
		return NULL;
	cw->c = c;
	cw->ct = ct;
	cw->fwd = fwd_create(&c->fwd_cfg);
	cw->fwd_final = fwd_create(&c->fwd_final_cfg);
	cw->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (cw->fwd == NULL || cw->fwd_final == NULL || cw->epfd < 0 ||
	    epoll_add_in(cw->epfd, fwd_fd(cw->fwd)) != 0 ||
	    epoll_add_in(cw->epfd, fwd_fd(cw->fwd_final)) != 0) {
		if (cw->epfd >= 0)
			close(cw->epfd);
		fwd_destroy(&cw->fwd);
		fwd_destroy(&cw->fwd_final);
		free(cw);
		return NULL;
	}
	pthread_mutex_lock(&c->lock);
	if (c->nworkers == CLUSTER_MAX_WORKERS) {
		pthread_mutex_unlock(&c->lock);
		close(cw->epfd);
		fwd_destroy(&cw->fwd);
		fwd_destroy(&cw->fwd_final);
		free(cw);
		errno = E2BIG;
		return NULL;
	}
	replica_worker_init(cw);
	c->workers[c->nworkers++] = cw;
	pthread_mutex_unlock(&c->lock);
	return cw;
}

void cluster_worker_destroy(struct cluster_worker **cwp)
{
	if (cwp == NULL || *cwp == NULL)
		return;
	struct cluster_worker *cw = *cwp;
	struct cluster *c = cw->c;
	*cwp = NULL;
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->nworkers; i++) {
		if (c->workers[i] == cw) {
			c->workers[i] = c->workers[--c->nworkers];
			c->retired_local += __atomic_load_n(&cw->stats.local,
							    __ATOMIC_RELAXED);
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	close(cw->epfd);
	fwd_destroy(&cw->fwd);
	fwd_destroy(&cw->fwd_final);
	replica_worker_fini(cw);
	free(cw);
}

int cluster_worker_fd(const struct cluster_worker *cw)
{
	return cw->epfd;
}

bool cluster_worker_busy(const struct cluster_worker *cw)
{
	return fwd_busy(cw->fwd) || fwd_busy(cw->fwd_final);
}

int cluster_worker_timeout_ms(const struct cluster_worker *cw, uint64_t now_ms)
{
	int t = fwd_timeout_ms(cw->fwd, now_ms);
	int t2 = fwd_timeout_ms(cw->fwd_final, now_ms);

	return t2 >= 0 && (t < 0 || t2 < t) ? t2 : t;
}

void cluster_worker_poll(struct cluster_worker *cw, uint64_t now_ms,
			 bool fd_ready)
{
	if (fd_ready || fwd_busy(cw->fwd))
		fwd_poll(cw->fwd, now_ms);
	if (fd_ready || fwd_busy(cw->fwd_final))
		fwd_poll(cw->fwd_final, now_ms);
}

/* A key migrating to this node in migration 'mig': pull it first unless
 * it is here, FRESH, pulled already, or about to be overwritten whole. A
 * write that runs here marks the key FRESH before it happens, so a pull
 * answer or a stream item that lands meanwhile on another thread sees the
 * mark (and undoes its add, see install_guarded). */
static void route_moving_in(struct cluster_worker *cw, const char *key,
			    size_t nkey, uint64_t hash, enum cluster_op op,
			    bool pulled, uint64_t mig,
			    const struct map_node *prev,
			    struct cluster_route *r)
{
	uint64_t fk = fresh_key(hash, mig);

	r->moving_in = true;
	if (op != CLUSTER_OP_SET && !pulled &&
	    !tomb_contains(cw->c->fresh, fk)) {
		struct cache_read_opts o = { .no_bump = true };
		if (cache_get(cw->ct, key, nkey, hash, &o, NULL) == NULL) {
			cluster_route_to(r, CLUSTER_PULL, prev);
			r->final_hop = true;
			CW_INC(cw, pulls);
			return;
		}
	}
	if (op != CLUSTER_OP_READ && op != CLUSTER_OP_TOUCH)
		(void)tomb_add(cw->c->fresh, fk);
	CW_INC(cw, local);
}

void cluster_route(struct cluster_worker *cw, const char *key, size_t nkey,
		   uint64_t hash, enum cluster_op op, enum cluster_from from,
		   bool pulled, struct cluster_route *r)
{
	struct cluster *c = cw->c;
	r->action = CLUSTER_LOCAL;
	r->moving_in = false;
	r->final_hop = false;
	r->hot_owner = false;
	r->pull_kind = CLUSTER_PULL_MIGRATE;
	/* Detection counts what clients ask, once: not what peers pass on. */
	if (from == CLUSTER_FROM_CLIENT && cw->sketch != NULL && !pulled)
		hot_sketch_count(cw->sketch, key, nkey, hash,
				 op == CLUSTER_OP_SET || op == CLUSTER_OP_WRITE);

	const struct shard_map *m = rcu_dereference(c->map);
	const struct map_node *owner = NULL, *prev = NULL;
	uint32_t rh = 0;
	if (m != NULL) {
		rh = ring_hash(key, nkey);
		owner = map_owner(m, rh);
		if (m->migration != 0)
			prev = map_prev_owner(m, rh);
	}
	/* No map yet (a node that just started, ZooKeeper unreachable): no
	 * idea who owns the key. An empty ring (every node standby): serve
	 * what we are asked. */
	if (m == NULL) {
		r->action = CLUSTER_REFUSE;
		CW_INC(cw, refused);
		return;
	}
	if (owner == NULL) {
		CW_INC(cw, local);
		return;
	}
	/* A key whose owner changes in the migration in flight. */
	bool moving = prev != NULL && strcmp(prev->id, owner->id) != 0;

	if (m->phase == MAP_PHASE_PREPARE) {
		if (from == CLUSTER_FROM_CLIENT) {
			/* Old owners still serve every key. */
			const struct map_node *o = prev != NULL ? prev : owner;
			if (cluster_is_self(c, o)) {
				CW_INC(cw, local);
				return;
			}
			cluster_route_to(r, CLUSTER_FORWARD, o);
			CW_INC(cw, forwarded);
			return;
		}
		/* A peer already on the MOVING map sent us a key we are
		 * about to own: it is moving in. */
		if (moving && cluster_is_self(c, owner)) {
			route_moving_in(cw, key, nkey, hash, op, pulled,
					m->migration, prev, r);
			return;
		}
		CW_INC(cw, local);
		return;
	}

	/* Stable map: a replicated key may be served by a replica. */
	if (m->migration == 0 &&
	    replica_route(cw, m, owner, key, nkey, hash, op, from, pulled, r))
		return;
	if (!cluster_is_self(c, owner)) {
		if (from == CLUSTER_FROM_PEER_FINAL) {
			/* Second hops and pulls run where they land. */
			CW_INC(cw, local);
			return;
		}
		/* A client's request, or a peer's whose map is older than
		 * ours (it still routes to the old owner): pass it on, once. */
		cluster_route_to(r, CLUSTER_FORWARD, owner);
		r->final_hop = from == CLUSTER_FROM_PEER;
		CW_INC(cw, forwarded);
		return;
	}
	if (moving) {
		route_moving_in(cw, key, nkey, hash, op, pulled, m->migration,
				prev, r);
		return;
	}
	CW_INC(cw, local);
}

int cluster_forward(struct cluster_worker *cw, const char *peer,
		    bool final_hop, const void *req, size_t len,
		    fwd_done_fn done, void *arg, struct fwd_req **handle)
{
	return fwd_submit(final_hop ? cw->fwd_final : cw->fwd, peer, req, len,
			  done, arg, handle);
}

void cluster_mark_fresh(struct cluster_worker *cw, const char *key,
			size_t nkey, uint64_t hash)
{
	(void)key;
	(void)nkey;
	const struct shard_map *m = rcu_dereference(cw->c->map);
	/* On no memory the key is simply not protected: a later stream copy
	 * could then win over this write. Nothing better to do here. */
	if (m != NULL && m->migration != 0)
		(void)tomb_add(cw->c->fresh, fresh_key(hash, m->migration));
}

bool cluster_is_fresh(struct cluster_worker *cw, uint64_t hash)
{
	const struct shard_map *m = rcu_dereference(cw->c->map);
	return m != NULL && m->migration != 0 &&
	       tomb_contains(cw->c->fresh, fresh_key(hash, m->migration));
}

/* The migration (non-zero) in which 'key' moves to this node now, or 0: a
 * pull answer or a stream item for any other key is late or misrouted and
 * must not be installed (the migration it belonged to is over). */
static uint64_t moving_in_now(struct cluster_worker *cw, const char *key,
			      size_t nkey)
{
	const struct shard_map *m = rcu_dereference(cw->c->map);
	if (m == NULL || m->migration == 0)
		return 0;
	uint32_t rh = ring_hash(key, nkey);
	const struct map_node *owner = map_owner(m, rh);
	const struct map_node *prev = map_prev_owner(m, rh);
	if (owner == NULL || prev == NULL || !cluster_is_self(cw->c, owner) ||
	    strcmp(prev->id, owner->id) == 0)
		return 0;
	return m->migration;
}

bool cluster_accepts_migrated(struct cluster_worker *cw, const char *key,
			      size_t nkey, uint64_t hash)
{
	uint64_t mig = moving_in_now(cw, key, nkey);
	return mig != 0 && !tomb_contains(cw->c->fresh, fresh_key(hash, mig));
}

bool cluster_undo_if_fresh(struct cluster_worker *cw, const char *key,
			   size_t nkey, uint64_t hash, uint64_t cas)
{
	if (!cluster_is_fresh(cw, hash))
		return false;
	/* A write here overtook this add between the check and the store:
	 * delete the added item, only if it is still ours (its CAS). */
	(void)cache_delete(cw->ct, key, nkey, hash, cas);
	return true;
}

/* Parses an unsigned decimal at *p up to a space or the end. */
static bool parse_u64(const char **p, const char *end, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	if (s == end || *s < '0' || *s > '9')
		return false;
	while (s < end && *s >= '0' && *s <= '9') {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
		s++;
	}
	*p = s;
	*out = v;
	return true;
}

int cluster_parse_pulled(const char *reply, size_t len,
			 struct cluster_pulled *out)
{
	memset(out, 0, sizeof(*out));
	out->ttl = -1;
	if (len >= 4 && memcmp(reply, "EN\r\n", 4) == 0)
		return 1;
	if (len < 5 || memcmp(reply, "VA ", 3) != 0)
		return -EPROTO;
	const char *eol = memchr(reply, '\n', len);
	if (eol == NULL || eol == reply || eol[-1] != '\r')
		return -EPROTO;
	const char *p = reply + 3, *end = eol - 1;
	uint64_t nbytes = 0, flags = 0;
	if (!parse_u64(&p, end, &nbytes))
		return -EPROTO;
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		char f = *p++;
		uint64_t v = 0;
		switch (f) {
		case 'f':
			if (!parse_u64(&p, end, &flags) || flags > UINT32_MAX)
				return -EPROTO;
			break;
		case 't':
			if (p < end && *p == '-') {
				/* "t-1": no expiry */
				p++;
				if (!parse_u64(&p, end, &v))
					return -EPROTO;
				out->ttl = -1;
			} else {
				if (!parse_u64(&p, end, &v) || v > INT32_MAX)
					return -EPROTO;
				out->ttl = (int64_t)v;
			}
			break;
		case 'c':
			if (!parse_u64(&p, end, &out->cas))
				return -EPROTO;
			break;
		default:
			/* anything else: not needed here */
			while (p < end && *p != ' ')
				p++;
			break;
		}
	}
	size_t head = (size_t)(eol + 1 - reply);
	if (nbytes > len || len - head != nbytes + 2 ||
	    memcmp(reply + head + nbytes, "\r\n", 2) != 0)
		return -EPROTO;
	out->flags = (uint32_t)flags;
	out->data = reply + head;
	out->nbytes = (size_t)nbytes;
	return 0;
}

enum cache_status cluster_store_pulled(struct cluster_worker *cw,
				       const char *key, size_t nkey,
				       uint64_t hash,
				       const struct cluster_pulled *p,
				       enum cache_store_mode mode,
				       uint64_t cas_new, uint64_t *cas_out)
{
	enum cache_status err;
	/* A remaining TTL over 30 days would read as a Unix time. */
	uint32_t exptime = p->ttl < 0 ? 0 :
		p->ttl > CACHE_REALTIME_MAXDELTA ?
		cache_exptime_from_wire((int64_t)time(NULL) + p->ttl) :
		cache_exptime_from_wire(p->ttl);
	struct cache_item *it = cache_item_alloc(cw->ct, key, nkey, p->flags,
						 exptime, p->nbytes, &err);
	if (it == NULL)
		return err;
	memcpy(cache_item_value(it), p->data, p->nbytes);
	struct cache_store_args a = { .mode = mode, .cas_new = cas_new };
	return cache_store(cw->ct, it, hash, &a, cas_out);
}

int cluster_install_pulled(struct cluster_worker *cw, const char *key,
			   size_t nkey, uint64_t hash, const char *reply,
			   size_t len)
{
	struct cluster_pulled p;
	int rc = cluster_parse_pulled(reply, len, &p);
	if (rc < 0) {
		CW_INC(cw, pull_errors);
		return rc;
	}
	if (rc > 0 || p.ttl == 0)
		return 0;    /* a miss, or expires this second */
	/* Written here since (ours is newer), or the migration is over. */
	if (!cluster_accepts_migrated(cw, key, nkey, hash))
		return 0;
	uint64_t cas = 0;
	enum cache_status st = cluster_store_pulled(cw, key, nkey, hash, &p,
						    CACHE_ADD, 0, &cas);
	if (st == CACHE_OK) {
		if (!cluster_undo_if_fresh(cw, key, nkey, hash, cas))
			CW_INC(cw, pull_installed);
	} else if (st != CACHE_NOT_STORED) {
		CW_INC(cw, pull_errors);
		return -ENOMEM;
	}
	return 0;
}

void cluster_count_udp_refused(struct cluster_worker *cw)
{
	CW_INC(cw, udp_refused);
}

/* ---- stats -------------------------------------------------------------- */

struct peer_sum {
	char addr[MAP_ADDR_MAX];
	struct fwd_peer_stats st;
};

struct peer_acc {
	struct peer_sum *peers;
	unsigned n, cap;
};

static void peer_add(void *arg, const char *addr,
		     const struct fwd_peer_stats *st)
{
	struct peer_acc *acc = arg;
	unsigned i;
	for (i = 0; i < acc->n; i++)
		if (strcmp(acc->peers[i].addr, addr) == 0)
			break;
	if (i == acc->n) {
		if (acc->n == acc->cap) {
			unsigned cap = acc->cap ? acc->cap * 2 : 8;
			struct peer_sum *p = realloc(acc->peers,
						     cap * sizeof(*p));
			if (p == NULL)
				return;
			acc->peers = p;
			acc->cap = cap;
		}
		memset(&acc->peers[i], 0, sizeof(acc->peers[i]));
		snprintf(acc->peers[i].addr, sizeof(acc->peers[i].addr), "%s",
			 addr);
		acc->n++;
	}
	struct fwd_peer_stats *s = &acc->peers[i].st;
	s->requests += st->requests;
	s->replies += st->replies;
	s->errors += st->errors;
	s->timeouts += st->timeouts;
	s->rejected += st->rejected;
	s->connects += st->connects;
	s->pending += st->pending;
}

static void emit_u64(cluster_stat_fn emit, void *arg, const char *name,
		     uint64_t v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	emit(arg, name, buf);
}

/* The node id that has 'addr' in the map, or the address itself. */
static const char *peer_name(const struct shard_map *m, const char *addr)
{
	if (m == NULL)
		return addr;
	for (unsigned i = 0; i < m->nnodes; i++)
		if (strcmp(m->nodes[i].addr, addr) == 0)
			return m->nodes[i].id;
	for (unsigned i = 0; i < m->nprev; i++)
		if (strcmp(m->prev[i].addr, addr) == 0)
			return m->prev[i].id;
	return addr;
}

void cluster_stats(struct cluster *c, cluster_stat_fn emit, void *arg)
{
	struct cluster_worker_stats sum = { 0 };
	struct peer_acc acc = { 0 };

	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->nworkers; i++) {
		struct cluster_worker *cw = c->workers[i];
#define CW_SUM(name) \
		sum.name += __atomic_load_n(&cw->stats.name, __ATOMIC_RELAXED);
		CLUSTER_WORKER_STATS(CW_SUM)
#undef CW_SUM
		fwd_for_each_peer(cw->fwd, peer_add, &acc);
		fwd_for_each_peer(cw->fwd_final, peer_add, &acc);
	}
	pthread_mutex_unlock(&c->lock);

	struct shard_map *m = cluster_get_map(c);
	emit(arg, "self", c->self_id);
	emit(arg, "advertise", c->self_addr);
	emit_u64(emit, arg, "map_epoch", m != NULL ? m->epoch : 0);
	emit_u64(emit, arg, "migration", m != NULL ? m->migration : 0);
	emit_u64(emit, arg, "map_nodes", m != NULL ? m->nnodes : 0);
	int self = m != NULL ? map_find(m, c->self_id) : -1;
	emit(arg, "self_state", self < 0 ? "absent" :
	     m->nodes[self].state == MAP_NODE_ACTIVE ? "active" : "standby");

	uint64_t fwd_errors = 0, fwd_timeouts = 0, fwd_rejected = 0;
	for (unsigned i = 0; i < acc.n; i++) {
		fwd_errors += acc.peers[i].st.errors;
		fwd_timeouts += acc.peers[i].st.timeouts;
		fwd_rejected += acc.peers[i].st.rejected;
	}
#define CW_EMIT(name) emit_u64(emit, arg, #name, sum.name);
	CLUSTER_WORKER_STATS(CW_EMIT)
#undef CW_EMIT
	emit_u64(emit, arg, "forward_errors", fwd_errors + fwd_rejected);
	emit_u64(emit, arg, "forward_timeouts", fwd_timeouts);
	emit_u64(emit, arg, "forward_rejected", fwd_rejected);
	emit_u64(emit, arg, "fresh_keys", tomb_count(c->fresh));
	replica_stats(c, emit, arg);

	char name[MAP_ID_MAX + MAP_ADDR_MAX + 32];
	for (unsigned i = 0; i < acc.n; i++) {
		const char *p = peer_name(m, acc.peers[i].addr);
		const struct fwd_peer_stats *s = &acc.peers[i].st;
		snprintf(name, sizeof(name), "peer:%s:forwarded", p);
		emit_u64(emit, arg, name, s->requests);
		snprintf(name, sizeof(name), "peer:%s:replies", p);
		emit_u64(emit, arg, name, s->replies);
		snprintf(name, sizeof(name), "peer:%s:errors", p);
		emit_u64(emit, arg, name, s->errors + s->rejected);
		snprintf(name, sizeof(name), "peer:%s:timeouts", p);
		emit_u64(emit, arg, name, s->timeouts);
		snprintf(name, sizeof(name), "peer:%s:pending", p);
		emit_u64(emit, arg, name, s->pending);
		snprintf(name, sizeof(name), "peer:%s:connects", p);
		emit_u64(emit, arg, name, s->connects);
	}
	free(acc.peers);
	map_unref(m);
}
