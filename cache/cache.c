/*
 * cache/cache.c - the item store (see cache.h for the API contract).
 *
 * Design note
 * -----------
 * Table. One cds_lfht (urcu-qsbr flavour, auto-resize + accounting) maps a
 * key to its item; the item embeds the table node. Readers (cache_get) take
 * no lock: lookup, check expiry/flush, bump a few relaxed fields only when
 * they change.
 *
 * Writers. All writers to one key hold stripe_lock(hash) (one of
 * CACHE_STRIPES mutexes), so for a given key there is one writer at a time.
 * A writer swaps in its new item with cds_lfht_replace on the exact item it
 * looked at, or cds_lfht_add_replace when there was none. Eviction, lazy
 * expiry and the sweeper never take a stripe lock: they only cds_lfht_del,
 * and cds_lfht guarantees that exactly one remover of a node succeeds. If
 * eviction wins against a writer, the replace fails with -ENOENT and a
 * command that needed the old item (cas, replace, append, incr, ...) answers
 * as if it had not found it; a plain set just adds. Whoever succeeds
 * "retires" the item: takes it out of its eviction queue, releases its
 * memory from the accounting and call_rcu's it.
 *
 * Table size. cds_lfht's auto-resize grows lazily and leaves chains of up
 * to 8 nodes; the sweeper also resizes it to 1-2 items per bucket.
 *
 * Lock order: stripe lock -> queue lock. The flush and attach locks are
 * leaves. No lock is held across a grace period.
 *
 * Item life: alloc (accounted, private) -> link (table, then queue) ->
 * retire (out of table, out of queue, RETIRED bit) -> call_rcu -> free.
 * A concurrent retire may hit an item between "table" and "queue" of the
 * link step; the RETIRED bit, set under the queue lock, tells the linker not
 * to queue it (its queue links already hold the rcu_head).
 *
 * Eviction: S3-FIFO (Yang et al., SOSP'23) over bytes. New items enter the
 * small FIFO (~10% of the limit), or the main FIFO if their key hash is in
 * the ghost set (recently evicted from small). Evicting from small: an item
 * read since insertion moves to main, else it leaves and its hash goes to the
 * ghost set. Evicting from main: CLOCK, an item with freq > 0 is reinserted
 * with freq-1. GET only bumps the 2-bit freq with a relaxed store, so one-hit
 * scans wash through the small queue without disturbing main.
 *
 * Memory accounting. c->mem_used counts, for every item allocated and not yet
 * retired (linked or not), nallocx(header+key+value), plus the cds_lfht
 * bucket array as it really is (c->hash_bytes: 16 bytes a bucket, reserved
 * by the sweeper before it grows the table, evicting if need be; between
 * 8 and 16 bytes an item at the load the sweeper keeps). A reservation is a CAS
 * loop that never lets mem_used exceed mem_limit, so the accounted bytes are
 * never above the limit (slack 0). What is not counted, and is the
 * documented slack of real memory over the limit: items retired but still
 * waiting for their grace period (bounded by what the threads unlink between
 * two quiescent states), the ghost set (4 bytes per 128 bytes of limit, i.e.
 * 3.1%, capped at 16 MiB), jemalloc's own metadata, and the fixed
 * per-cache structures (~100 KiB). Measured with 1M items of 16-byte keys and
 * 32-byte values (perf/rss.sh): 112 bytes per item plus 8 MiB of buckets
 * accounted, 121 bytes of RSS per item (memcached 1.6.18: 129).
 *
 * Item size limit: counted like memcached 1.6 (48-byte header, key + NUL,
 * value + "\r\n", 8-byte CAS, 4 bytes of flags if non-zero), so a value
 * switches from STORED to "too large" at the same length as memcached with
 * the same -I (checked against memcached 1.6.18 -I 1m: key "k", flags 0:
 * 1048516 bytes stored, 1048517 too large).
 *
 * CAS uniqueness without a shared counter: cas = seq << CACHE_TID_BITS | tid,
 * where seq is per attached thread slot. seq is a Lamport clock: a store that
 * replaces an item first moves its seq past the old item's, so the CAS of a
 * key only ever grows (meta "ms I" compares CAS values).
 *
 * flush_all: memcached's rule. oldest_live = flush time - 1; once the clock
 * reaches oldest_live, an item whose atime <= oldest_live is invalid. For
 * an immediate flush memcached also invalidates items of the current second
 * stored before the flush by comparing their CAS with a snapshot of the CAS
 * counter; we snapshot every thread slot's seq instead.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jemalloc/jemalloc.h>
#include <xxhash.h>

#include <urcu-qsbr.h>
#include <urcu/rculfhash.h>

#include "cache/tsan.h"

#include "cache/cache.h"

#define CACHE_TID_BITS       10u
#define CACHE_TID_MASK       ((1u << CACHE_TID_BITS) - 1u)
#define CACHE_MAX_THREADS    (1u << CACHE_TID_BITS)
#define CACHE_SEQ_SANE       (1ull << 52) /* ignore absurd explicit CAS for Lamport */
#define CACHE_STRIPES        1024u
#define CACHE_TABLE_INIT     1024ul
#define CACHE_SMALL_PERCENT  10u
#define CACHE_FREQ_MAX       3u
#ifndef CACHE_PROMOTE_FREQ
#define CACHE_PROMOTE_FREQ   1u           /* reads in small needed to reach main */
#endif
#define CACHE_EVICT_MAX_MOVES 4096u       /* CLOCK moves before forcing an eviction */
#define CACHE_DEAD_SCAN      64u          /* no_evict: tail items checked for dead ones */
#define CACHE_SWEEP_PERIOD_MS 100u
#define CACHE_SWEEP_BUDGET   8192u        /* queue entries visited per sweeper pass */
#define CACHE_SWEEP_CHUNK    256u         /* entries per queue-lock hold */
#define CACHE_DEFAULT_LIMIT  (64u << 20)  /* memcached -m 64 */
#define CACHE_DEFAULT_ITEM_MAX (1u << 20) /* memcached -I 1m */

/* memcached 1.6's item header on 64-bit (struct _stritem) and the extras its
 * size check adds: key NUL, "\r\n", CAS, and 4 bytes of flags when non-zero.
 * We count the same so that STORED / "object too large" switch at the same
 * value length as memcached with the same -I. */
#define MC_ITEM_HEADER 48u
#define MC_ITEM_EXTRA  (1u + 2u + 8u)

enum cache_counter {
	CNT_TOTAL_ITEMS,
	CNT_EVICTIONS,
	CNT_EVICTED_UNFETCHED,
	CNT_EXPIRED_UNFETCHED,
	CNT_RECLAIMED,
	CNT_SWEEPER_RUNS,
	CNT_SWEEPER_RECLAIMED,
	CNT__COUNT
};

/* Why an item leaves the table: decides which counters move. */
enum retire_reason {
	RETIRE_REPLACED,
	RETIRE_DELETED,
	RETIRE_EXPIRED,   /* expired or flushed, found by a lookup or eviction */
	RETIRE_SWEPT,     /* expired or flushed, found by the sweeper */
	RETIRE_EVICTED,
};

/* Per attached thread, survives detach so counters and CAS sequences are
 * never lost or reused. Written by its owner only (relaxed), read by stats
 * and flush. */
struct cache_slot {
	uint64_t seq;
	uint64_t cnt[CNT__COUNT];
	bool in_use;                /* under c->attach_lock */
} __attribute__((aligned(64)));

struct cache_thread {
	struct cache *c;
	struct cache_slot *slot;
	unsigned id;
};

/* Doubly linked FIFO: head is the newest item, tail the oldest.
 * queue.prev points towards the head, queue.next towards the tail. */
struct cache_queue {
	struct cache_item *head;
	struct cache_item *tail;
	uint64_t count;             /* written under q_lock, read relaxed */
	uint64_t bytes;
};

struct cache {
	struct cache_config cfg;
	struct cds_lfht *ht;
	pthread_mutex_t stripes[CACHE_STRIPES];

	/* Eviction queues, ghost set and sweeper cursor: under q_lock. */
	pthread_mutex_t q_lock;
	struct cache_queue small;
	struct cache_queue main;
	uint64_t small_target;      /* bytes */
	uint32_t *ghost;            /* direct-mapped set of hash fingerprints */
	uint64_t ghost_mask;
	struct cache_item *sweep_cursor;
	bool sweep_in_main;
	bool sweep_queue_done;

	uint64_t mem_used;          /* atomic */

	/* flush_all state; written under flush_lock, read relaxed */
	pthread_mutex_t flush_lock;
	uint32_t oldest_live;       /* 0 = no flush */
	uint32_t snap_time;         /* second of the last immediate flush */
	uint64_t snap_seq[CACHE_MAX_THREADS];

	pthread_mutex_t attach_lock;
	struct cache_slot *slots;   /* cfg.max_threads + 1 (the sweeper's) */
	unsigned nslots;

	pthread_mutex_t stats_lock;
	uint64_t stats_base[CNT__COUNT]; /* 'stats reset' baseline */

	uint64_t table_size;        /* buckets the sweeper last resized to */
	uint64_t hash_bytes;        /* atomic; bucket array, counted in mem_used */
	struct cache_thread sys;    /* the sweeper's / destroy's context */
	pthread_t sweeper;
	bool sweeper_running;
	pthread_mutex_t sweep_lock;
	pthread_cond_t sweep_cond;
	bool sweep_stop;
};

struct cache_key {
	const char *key;
	size_t nkey;
};

/* Threads may attach to several caches; register with urcu once. */
static __thread unsigned tls_rcu_refs;

static void item_free_rcu(struct rcu_head *head);

/* ---- small helpers ------------------------------------------------------ */

const char *cache_status_name(enum cache_status st)
{
	switch (st) {
	case CACHE_OK: return "CACHE_OK";
	case CACHE_NOT_STORED: return "CACHE_NOT_STORED";
	case CACHE_EXISTS: return "CACHE_EXISTS";
	case CACHE_NOT_FOUND: return "CACHE_NOT_FOUND";
	case CACHE_TOO_LARGE: return "CACHE_TOO_LARGE";
	case CACHE_NO_MEMORY: return "CACHE_NO_MEMORY";
	case CACHE_NON_NUMERIC: return "CACHE_NON_NUMERIC";
	case CACHE_INVALID: return "CACHE_INVALID";
	}
	return "CACHE_UNKNOWN";
}

uint64_t cache_hash(const char *key, size_t nkey)
{
	return XXH3_64bits(key, nkey);
}

static inline size_t item_header_size(void)
{
	return offsetof(struct cache_item, data);
}

static inline size_t item_alloc_size(size_t nkey, size_t nbytes)
{
	return item_header_size() + nkey + nbytes;
}

size_t cache_item_footprint(size_t nkey, size_t nbytes)
{
	return nallocx(item_alloc_size(nkey, nbytes), 0);
}

static inline size_t item_footprint(const struct cache_item *it)
{
	return cache_item_footprint(it->nkey, it->nbytes);
}

/* memcached's "item too large" test (see MC_ITEM_HEADER). */
static bool item_too_large(const struct cache *c, size_t nkey, size_t nbytes,
			   uint32_t client_flags)
{
	size_t total = MC_ITEM_HEADER + MC_ITEM_EXTRA + nkey + nbytes +
		       (client_flags != 0 ? sizeof(uint32_t) : 0);

	return nbytes > UINT32_MAX || total > c->cfg.item_size_max;
}

static inline void count(struct cache_thread *t, enum cache_counter k)
{
	uint64_t *p = &t->slot->cnt[k];

	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
}

static inline pthread_mutex_t *stripe_lock(struct cache *c, uint64_t hash)
{
	/* High bits: the table's bucket index uses the low ones. */
	return &c->stripes[(hash >> 40) & (CACHE_STRIPES - 1)];
}

/* ---- CAS ---------------------------------------------------------------- */

/* A fresh CAS greater than 'old_cas' (the item it replaces, 0 if none). */
static uint64_t next_cas(struct cache_thread *t, uint64_t old_cas)
{
	uint64_t seq = __atomic_load_n(&t->slot->seq, __ATOMIC_RELAXED) + 1;
	uint64_t old_seq = old_cas >> CACHE_TID_BITS;

	if (old_seq >= seq && old_seq < CACHE_SEQ_SANE)
		seq = old_seq + 1;
	__atomic_store_n(&t->slot->seq, seq, __ATOMIC_RELAXED);
	return (seq << CACHE_TID_BITS) | t->id;
}

/* ---- liveness ----------------------------------------------------------- */

static bool item_is_flushed(struct cache *c, const struct cache_item *it,
			    uint32_t now)
{
	uint32_t oldest = __atomic_load_n(&c->oldest_live, __ATOMIC_ACQUIRE);
	uint32_t atime;

	if (oldest == 0 || oldest > now)
		return false;
	atime = cache_item_atime(it);
	if (atime <= oldest)
		return true;
	/* Same second as an immediate flush: stored before it? */
	if (atime == __atomic_load_n(&c->snap_time, __ATOMIC_RELAXED)) {
		uint64_t seq = it->cas >> CACHE_TID_BITS;
		unsigned tid = (unsigned)(it->cas & CACHE_TID_MASK);

		return seq <= __atomic_load_n(&c->snap_seq[tid], __ATOMIC_RELAXED);
	}
	return false;
}

static inline bool item_is_expired(const struct cache_item *it, uint32_t now)
{
	uint32_t exp = cache_item_exptime(it);

	return exp != 0 && exp <= now;
}

static inline bool item_is_live(struct cache *c, const struct cache_item *it,
				uint32_t now)
{
	return !item_is_expired(it, now) && !item_is_flushed(c, it, now);
}

/* ---- memory ------------------------------------------------------------- */

static bool evict_one(struct cache_thread *t, bool dead_only);

/* Accounts 'bytes' against the limit if they fit without evicting.
 * Returns 0 or -ENOMEM. Any thread. */
static int mem_try_reserve(struct cache *c, size_t bytes)
{
	uint64_t used = __atomic_load_n(&c->mem_used, __ATOMIC_RELAXED);

	while (used + bytes <= c->cfg.mem_limit) {
		if (__atomic_compare_exchange_n(&c->mem_used, &used, used + bytes,
						false, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED))
			return 0;
	}
	return -ENOMEM;
}

/* Accounts 'bytes' against the limit, evicting as needed.
 * Returns 0 or -ENOMEM. Thread online (eviction unlinks items). */
static int mem_reserve(struct cache_thread *t, size_t bytes)
{
	struct cache *c = t->c;

	while (mem_try_reserve(c, bytes) != 0) {
		if (!evict_one(t, c->cfg.no_evict))
			return -ENOMEM;
	}
	return 0;
}

static inline void mem_release(struct cache *c, size_t bytes)
{
	__atomic_fetch_sub(&c->mem_used, bytes, __ATOMIC_RELAXED);
}

/* Item memory: jemalloc, or malloc in sanitizer builds (see cache/tsan.h). */
static inline struct cache_item *item_mem_alloc(size_t size)
{
#ifdef CACHE_ITEM_MEM_MALLOC
	return malloc(size);
#else
	return mallocx(size, 0);
#endif
}

static inline void item_mem_free(struct cache_item *it)
{
#ifdef CACHE_ITEM_MEM_MALLOC
	free(it);
#else
	sdallocx(it, item_alloc_size(it->nkey, it->nbytes), 0);
#endif
}

/*
 * A grace period orders every reader's access to an item before its free,
 * through liburcu's uninstrumented quiescent-state machinery. For TSan, each
 * quiescent state or offline transition releases this token and each free
 * acquires it (no code in other builds).
 */
static char tsan_grace_token;

static inline void quiescent_state(void)
{
	cache_tsan_release(&tsan_grace_token);
	rcu_quiescent_state();
}

static inline void thread_offline(void)
{
	cache_tsan_release(&tsan_grace_token);
	rcu_thread_offline();
}

static inline void unregister_thread(void)
{
	cache_tsan_release(&tsan_grace_token);
	rcu_unregister_thread();
}

static void item_free_rcu(struct rcu_head *head)
{
	struct cache_item *it = caa_container_of(head, struct cache_item, rcu);

	cache_tsan_acquire(&tsan_grace_token);
	cache_tsan_acquire(it);
	item_mem_free(it);
}

/* ---- eviction queues (caller holds q_lock: do_ prefix) ------------------ */

static inline struct cache_queue *do_queue_of(struct cache *c,
					      const struct cache_item *it)
{
	return (cache_item_state(it) & CACHE_ITEM_IN_MAIN) ? &c->main : &c->small;
}

static void do_queue_push(struct cache *c, struct cache_item *it, bool to_main)
{
	struct cache_queue *q = to_main ? &c->main : &c->small;

	it->queue.prev = NULL;
	it->queue.next = q->head;
	if (q->head != NULL)
		q->head->queue.prev = it;
	else
		q->tail = it;
	q->head = it;
	__atomic_store_n(&q->count, q->count + 1, __ATOMIC_RELAXED);
	q->bytes += item_footprint(it);
	/* IN_MAIN is clear here: new items never have it, removal clears it. */
	__atomic_fetch_or(&it->state,
			  CACHE_ITEM_QUEUED | (to_main ? CACHE_ITEM_IN_MAIN : 0),
			  __ATOMIC_RELAXED);
}

static void do_queue_remove(struct cache *c, struct cache_item *it)
{
	struct cache_queue *q = do_queue_of(c, it);

	if (c->sweep_cursor == it) {
		c->sweep_cursor = it->queue.prev;
		if (c->sweep_cursor == NULL)
			c->sweep_queue_done = true;
	}
	if (it->queue.prev != NULL)
		it->queue.prev->queue.next = it->queue.next;
	else
		q->head = it->queue.next;
	if (it->queue.next != NULL)
		it->queue.next->queue.prev = it->queue.prev;
	else
		q->tail = it->queue.prev;
	__atomic_store_n(&q->count, q->count - 1, __ATOMIC_RELAXED);
	q->bytes -= item_footprint(it);
	__atomic_fetch_and(&it->state,
			   (uint8_t)~(CACHE_ITEM_QUEUED | CACHE_ITEM_IN_MAIN),
			   __ATOMIC_RELAXED);
}

/* The ghost set keys on the node's reverse hash (a bijection of the hash),
 * which both the inserter and the evictor have at hand. */
static inline uint32_t ghost_fp(uint64_t rh)
{
	return (uint32_t)(rh >> 32) | 1u; /* never 0 = empty */
}

static void do_ghost_put(struct cache *c, const struct cache_item *it)
{
	uint64_t rh = it->table_node.reverse_hash;

	c->ghost[rh & c->ghost_mask] = ghost_fp(rh);
}

static bool do_ghost_take(struct cache *c, const struct cache_item *it)
{
	uint64_t rh = it->table_node.reverse_hash;
	uint32_t *slot = &c->ghost[rh & c->ghost_mask];

	if (*slot != ghost_fp(rh))
		return false;
	*slot = 0;
	return true;
}

/* Second half of linking: put a table-linked item in its queue, unless a
 * concurrent remover already retired it. A new value of a key that lived
 * in main ('to_main') stays there: an update is not a new object. */
static void queue_link(struct cache *c, struct cache_item *it, bool to_main)
{
	pthread_mutex_lock(&c->q_lock);
	if (!(cache_item_state(it) & CACHE_ITEM_RETIRED))
		do_queue_push(c, it, do_ghost_take(c, it) || to_main);
	pthread_mutex_unlock(&c->q_lock);
}

/* Counts and frees an item this thread removed from the table (with
 * cds_lfht_del or a replace) and already took out of its queue. */
static void retire_counted(struct cache_thread *t, struct cache_item *it,
			   enum retire_reason why)
{
	uint8_t st = cache_item_state(it);
	bool fetched = st & CACHE_ITEM_FETCHED;

	switch (why) {
	case RETIRE_REPLACED:
	case RETIRE_DELETED:
		break;
	case RETIRE_SWEPT:
		count(t, CNT_SWEEPER_RECLAIMED);
		/* fall through */
	case RETIRE_EXPIRED:
		count(t, CNT_RECLAIMED);
		if (!fetched && item_is_expired(it, cache_clock_now()))
			count(t, CNT_EXPIRED_UNFETCHED);
		break;
	case RETIRE_EVICTED:
		count(t, CNT_EVICTIONS);
		if (!fetched)
			count(t, CNT_EVICTED_UNFETCHED);
		break;
	}
	mem_release(t->c, item_footprint(it));
	cache_tsan_release(it);
	call_rcu(&it->rcu, item_free_rcu);
}

/* The caller won the removal of 'it' from the table: take it out of its
 * queue, then free it after a grace period. */
static void retire(struct cache_thread *t, struct cache_item *it,
		   enum retire_reason why)
{
	struct cache *c = t->c;

	pthread_mutex_lock(&c->q_lock);
	if (cache_item_state(it) & CACHE_ITEM_QUEUED)
		do_queue_remove(c, it);
	__atomic_fetch_or(&it->state, CACHE_ITEM_RETIRED, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->q_lock);
	retire_counted(t, it, why);
}

/* Removes a dead (expired/flushed) item found by a lookup. */
static void unlink_dead(struct cache_thread *t, struct cache_item *it)
{
	if (cds_lfht_del(t->c->ht, &it->table_node) == 0)
		retire(t, it, RETIRE_EXPIRED);
}

/* Picks the next victim by S3-FIFO, moving survivors along. Returns NULL
 * when both queues are empty. Caller holds q_lock. */
static struct cache_item *do_pick_victim(struct cache *c)
{
	unsigned moves = 0;

	for (;;) {
		struct cache_item *it;
		uint8_t freq;
		bool from_small = c->small.bytes > c->small_target ||
				  c->main.count == 0;

		if (from_small && c->small.count == 0)
			return NULL;
		it = from_small ? c->small.tail : c->main.tail;
		freq = __atomic_load_n(&it->freq, __ATOMIC_RELAXED);
		if (freq < (from_small ? CACHE_PROMOTE_FREQ : 1u) ||
		    moves++ >= CACHE_EVICT_MAX_MOVES)
			return it;
		do_queue_remove(c, it);
		if (from_small) {
			/* Read while in probation: promote. */
			__atomic_store_n(&it->freq, 0, __ATOMIC_RELAXED);
		} else {
			/* CLOCK: second chance, one access spent. */
			__atomic_store_n(&it->freq, (uint8_t)(freq - 1),
					 __ATOMIC_RELAXED);
		}
		do_queue_push(c, it, true);
	}
}

/* Dead-only victim for no_evict mode: an expired/flushed item near a tail. */
static struct cache_item *do_pick_dead(struct cache *c, uint32_t now)
{
	struct cache_queue *qs[2] = { &c->small, &c->main };

	for (unsigned q = 0; q < 2; q++) {
		struct cache_item *it = qs[q]->tail;

		for (unsigned n = 0; it != NULL && n < CACHE_DEAD_SCAN; n++) {
			if (!item_is_live(c, it, now))
				return it;
			it = it->queue.prev;
		}
	}
	return NULL;
}

/*
 * Evicts one item (only a dead one if 'dead_only'). Returns true when an
 * item's memory was released, false when nothing (suitable) is queued.
 * Never takes a stripe lock. Thread online.
 */
static bool evict_one(struct cache_thread *t, bool dead_only)
{
	struct cache *c = t->c;
	uint32_t now = cache_clock_now();

	pthread_mutex_lock(&c->q_lock);
	for (;;) {
		struct cache_item *it = dead_only ? do_pick_dead(c, now)
						  : do_pick_victim(c);
		bool from_small;
		bool live;

		if (it == NULL) {
			pthread_mutex_unlock(&c->q_lock);
			return false;
		}
		from_small = !(cache_item_state(it) & CACHE_ITEM_IN_MAIN);
		do_queue_remove(c, it);
		if (cds_lfht_del(c->ht, &it->table_node) != 0) {
			/* A writer or a lookup removed it first; it retires it
			 * (it finds the item out of the queue). Try the next. */
			continue;
		}
		live = item_is_live(c, it, now);
		if (from_small && live)
			do_ghost_put(c, it);
		__atomic_fetch_or(&it->state, CACHE_ITEM_RETIRED, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&c->q_lock);
		retire_counted(t, it, live ? RETIRE_EVICTED : RETIRE_EXPIRED);
		return true;
	}
}

/* ---- table -------------------------------------------------------------- */

static int match_key(struct cds_lfht_node *node, const void *arg)
{
	const struct cache_key *k = arg;
	const struct cache_item *it =
		caa_container_of(node, struct cache_item, table_node);

	cache_tsan_acquire(it);
	return it->nkey == k->nkey && memcmp(it->data, k->key, k->nkey) == 0;
}

/* RCU read side (thread online). 'iter' receives the position, for a
 * later cds_lfht_replace. */
static inline struct cache_item *table_lookup(struct cache *c, const char *key,
					      size_t nkey, uint64_t hash,
					      struct cds_lfht_iter *iter)
{
	struct cache_key k = { key, nkey };
	struct cds_lfht_node *node;

	cds_lfht_lookup(c->ht, (unsigned long)hash, match_key, &k, iter);
	node = cds_lfht_iter_get_node(iter);
	return node ? caa_container_of(node, struct cache_item, table_node) : NULL;
}

/*
 * Under stripe_lock(hash): the live item for the key (its position in
 * *iter), or NULL. A dead one found on the way is unlinked.
 */
static struct cache_item *do_lookup_live(struct cache_thread *t, const char *key,
					 size_t nkey, uint64_t hash, uint32_t now,
					 struct cds_lfht_iter *iter)
{
	struct cache_item *it = table_lookup(t->c, key, nkey, hash, iter);

	if (it != NULL && !item_is_live(t->c, it, now)) {
		unlink_dead(t, it);
		it = NULL;
	}
	return it;
}

/*
 * Under stripe_lock(hash): links 'it' (its cas, atime already set), then
 * queues it. 'old' is the live item the caller decided on (at 'old_iter'),
 * or NULL. If eviction or expiry removed 'old' since the lookup, a command
 * that needed it (cas, replace, append, incr...: 'need_old') fails: returns
 * false and 'it' stays private. A plain set links anyway.
 */
static bool do_link(struct cache_thread *t, struct cache_item *it, uint64_t hash,
		    struct cache_item *old, struct cds_lfht_iter *old_iter,
		    bool need_old)
{
	struct cache *c = t->c;
	struct cache_key k = { cache_item_key(it), it->nkey };
	struct cds_lfht_node *prev;
	bool to_main = false;

	if (old != NULL) {
		/* The new value inherits the key's standing in the policy. */
		uint8_t f = __atomic_load_n(&old->freq, __ATOMIC_RELAXED);

		if (it->freq < f)
			it->freq = f;
		to_main = cache_item_state(old) & CACHE_ITEM_IN_MAIN;
	}
	cache_tsan_release(it);
	if (old != NULL &&
	    cds_lfht_replace(c->ht, old_iter, (unsigned long)hash, match_key, &k,
			     &it->table_node) == 0) {
		retire(t, old, RETIRE_REPLACED);
	} else if (old != NULL && need_old) {
		return false;
	} else {
		/* Nothing else can insert this key (we hold its stripe lock),
		 * so this adds, or replaces a node nobody has retired yet. */
		prev = cds_lfht_add_replace(c->ht, (unsigned long)hash, match_key,
					    &k, &it->table_node);
		if (prev != NULL)
			retire(t, caa_container_of(prev, struct cache_item,
						   table_node), RETIRE_REPLACED);
	}
	queue_link(c, it, to_main);
	count(t, CNT_TOTAL_ITEMS);
	return true;
}

/* Records an access (GET path): each field is written only if it changes,
 * so a hot item's cache line stays clean in every core's cache. */
static inline void item_bump(struct cache_item *it, uint32_t now, bool fetch)
{
	uint8_t freq = __atomic_load_n(&it->freq, __ATOMIC_RELAXED);

	if (freq < CACHE_FREQ_MAX)
		__atomic_store_n(&it->freq, (uint8_t)(freq + 1), __ATOMIC_RELAXED);
	if (cache_item_atime(it) != now)
		__atomic_store_n(&it->atime, now, __ATOMIC_RELAXED);
	if (fetch && !(cache_item_state(it) & CACHE_ITEM_FETCHED))
		cache_item_set_state(it, CACHE_ITEM_FETCHED);
}

/* ---- reads -------------------------------------------------------------- */

const struct cache_item *cache_get(struct cache_thread *t, const char *key,
				   size_t nkey, uint64_t hash,
				   const struct cache_read_opts *opts,
				   struct cache_read_info *info)
{
	struct cache *c = t->c;
	struct cds_lfht_iter iter;
	struct cache_item *it;
	uint32_t now;

	if (nkey == 0 || nkey > CACHE_KEY_MAX)
		return NULL;
	it = table_lookup(c, key, nkey, hash, &iter);
	if (it == NULL)
		return NULL;
	now = cache_clock_now();
	if (!item_is_live(c, it, now)) {
		unlink_dead(t, it);
		return NULL;
	}
	if (info != NULL) {
		info->prev_atime = cache_item_atime(it);
		info->prev_fetched = cache_item_state(it) & CACHE_ITEM_FETCHED;
	}
	if (opts == NULL || !opts->no_bump)
		item_bump(it, now, true);
	if (opts != NULL && opts->touch &&
	    cache_item_exptime(it) != opts->new_exptime)
		cache_item_set_exptime(it, opts->new_exptime);
	return it;
}

/* A plain cds_lfht iteration: it skips nodes already removed, and the
 * liveness test is the one cache_get applies, so the pass sees what a
 * lookup at the same moment would. Dead items are skipped, not unlinked:
 * the pass stays read-only (no queue lock per item on a long walk) and the
 * sweeper or the next lookup reclaims them. */
void cache_for_each(struct cache_thread *t,
		    void (*fn)(void *arg, const struct cache_item *it),
		    void *arg)
{
	struct cache *c = t->c;
	struct cds_lfht_iter iter;
	struct cache_item *it;
	uint32_t now = cache_clock_now();

	cds_lfht_for_each_entry(c->ht, &iter, it, table_node) {
		cache_tsan_acquire(it);
		if (item_is_live(c, it, now))
			fn(arg, it);
	}
}

/* ---- writes ------------------------------------------------------------- */

/* Allocation with accounting; no size policy checks. */
static struct cache_item *item_alloc_raw(struct cache_thread *t, const char *key,
					 size_t nkey, uint32_t client_flags,
					 uint32_t exptime, size_t nbytes)
{
	size_t fp = cache_item_footprint(nkey, nbytes);
	struct cache_item *it;

	if (mem_reserve(t, fp) != 0)
		return NULL;
	it = item_mem_alloc(item_alloc_size(nkey, nbytes));
	if (it == NULL) {
		mem_release(t->c, fp);
		return NULL;
	}
	memset(it, 0, item_header_size());
	it->exptime = exptime;
	it->client_flags = client_flags;
	it->nbytes = (uint32_t)nbytes;
	it->nkey = (uint8_t)nkey;
	memcpy(it->data, key, nkey);
	return it;
}

struct cache_item *cache_item_alloc(struct cache_thread *t, const char *key,
				    size_t nkey, uint32_t client_flags,
				    uint32_t exptime, size_t nbytes,
				    enum cache_status *err)
{
	struct cache_item *it;
	enum cache_status st = CACHE_OK;

	if (key == NULL || nkey == 0 || nkey > CACHE_KEY_MAX)
		st = CACHE_INVALID;
	else if (item_too_large(t->c, nkey, nbytes, client_flags))
		st = CACHE_TOO_LARGE;
	if (st != CACHE_OK) {
		if (err != NULL)
			*err = st;
		return NULL;
	}
	it = item_alloc_raw(t, key, nkey, client_flags, exptime, nbytes);
	if (it == NULL && err != NULL)
		*err = CACHE_NO_MEMORY;
	return it;
}

/* Frees an item that was never published in the table. */
static void item_free_private(struct cache *c, struct cache_item *it)
{
	size_t fp = item_footprint(it);

	item_mem_free(it);
	mem_release(c, fp);
}

void cache_item_abort(struct cache_thread *t, struct cache_item **it)
{
	if (it == NULL || *it == NULL)
		return;
	item_free_private(t->c, *it);
	*it = NULL;
}

enum cas_result { CAS_NONE, CAS_MATCH, CAS_STALE, CAS_BADVAL };

static enum cas_result cas_check(const struct cache_item *old,
				 const struct cache_store_args *a)
{
	if (a->cas_compare == 0)
		return CAS_NONE;
	if (a->cas_compare == old->cas)
		return CAS_MATCH;
	if (a->invalidate && a->cas_compare < old->cas)
		return CAS_STALE;
	return CAS_BADVAL;
}

/* append/prepend: a new item holding old+piece with the old flags/exptime.
 * Under the stripe lock; may evict. */
static struct cache_item *do_concat(struct cache_thread *t,
				    const struct cache_item *old,
				    const struct cache_item *piece, bool append,
				    enum cache_status *st)
{
	size_t n = (size_t)old->nbytes + piece->nbytes;
	struct cache_item *it;

	if (item_too_large(t->c, old->nkey, n, old->client_flags)) {
		*st = CACHE_TOO_LARGE;
		return NULL;
	}
	it = item_alloc_raw(t, cache_item_key(old), old->nkey, old->client_flags,
			    cache_item_exptime(old), n);
	if (it == NULL) {
		*st = CACHE_NO_MEMORY;
		return NULL;
	}
	if (append) {
		memcpy(cache_item_value(it), cache_item_value_const(old), old->nbytes);
		memcpy(cache_item_value(it) + old->nbytes,
		       cache_item_value_const(piece), piece->nbytes);
	} else {
		memcpy(cache_item_value(it), cache_item_value_const(piece),
		       piece->nbytes);
		memcpy(cache_item_value(it) + piece->nbytes,
		       cache_item_value_const(old), old->nbytes);
	}
	return it;
}

/*
 * Decides what a store does, following memcached's do_store_item: the CAS
 * test is done up front for every mode. Under the stripe lock. Returns the
 * item to link (it, or a new append/prepend item), or NULL with *st set.
 */
static struct cache_item *do_store_decide(struct cache_thread *t,
					  struct cache_item *it,
					  struct cache_item *old,
					  const struct cache_store_args *a,
					  uint32_t now, enum cache_status *st)
{
	enum cas_result cr = old ? cas_check(old, a) : CAS_NONE;

	switch (a->mode) {
	case CACHE_ADD:
		if (old == NULL)
			return it;
		item_bump(old, now, false); /* memcached promotes on a failed add */
		*st = CACHE_NOT_STORED;
		return NULL;
	case CACHE_SET:
	case CACHE_REPLACE:
	case CACHE_CAS:
		if (a->mode == CACHE_CAS || a->cas_compare != 0) {
			if (old == NULL) {
				*st = CACHE_NOT_FOUND;
				return NULL;
			}
			if (cr == CAS_STALE) {
				/* ms I: store the late value, keep the TTL, mark stale */
				it->exptime = cache_item_exptime(old);
				it->state |= CACHE_ITEM_STALE |
					     (cache_item_state(old) & CACHE_ITEM_WIN_SENT);
				return it;
			}
			if (cr != CAS_MATCH) {
				*st = CACHE_EXISTS;
				return NULL;
			}
			return it;
		}
		if (a->mode == CACHE_REPLACE && old == NULL) {
			*st = CACHE_NOT_STORED;
			return NULL;
		}
		return it;
	case CACHE_APPEND:
	case CACHE_PREPEND:
		if (old == NULL) {
			if (a->vivify)
				return it;
			*st = CACHE_NOT_STORED;
			return NULL;
		}
		if (cr != CAS_NONE && cr != CAS_MATCH) {
			*st = CACHE_EXISTS;
			return NULL;
		}
		return do_concat(t, old, it, a->mode == CACHE_APPEND, st);
	}
	*st = CACHE_INVALID;
	return NULL;
}

enum cache_status cache_store(struct cache_thread *t, struct cache_item *it,
			      uint64_t hash, const struct cache_store_args *args,
			      uint64_t *cas_out)
{
	static const struct cache_store_args set_args = { .mode = CACHE_SET };
	struct cache *c = t->c;
	pthread_mutex_t *lock = stripe_lock(c, hash);
	struct cds_lfht_iter iter;
	struct cache_item *old, *link;
	enum cache_status st = CACHE_OK;
	bool need_old, linked = false;
	uint32_t now;

	if (it == NULL)
		return CACHE_INVALID;
	if (args == NULL)
		args = &set_args;
	need_old = args->mode != CACHE_SET || args->cas_compare != 0;
	pthread_mutex_lock(lock);
	now = cache_clock_now();
	old = do_lookup_live(t, cache_item_key(it), it->nkey, hash, now, &iter);
	link = do_store_decide(t, it, old, args, now, &st);
	if (link != NULL) {
		link->cas = args->cas_new ? args->cas_new
					  : next_cas(t, old ? old->cas : 0);
		link->atime = now;
		linked = do_link(t, link, hash, old, &iter, need_old);
		if (linked) {
			if (cas_out != NULL)
				*cas_out = link->cas;
			st = CACHE_OK;
		} else {
			/* evicted under our feet: as if we had not found it */
			st = (args->mode == CACHE_CAS || args->cas_compare != 0)
				     ? CACHE_NOT_FOUND : CACHE_NOT_STORED;
		}
	}
	pthread_mutex_unlock(lock);
	if (link != NULL && link != it && !linked)
		item_free_private(c, link);
	if (link != it || !linked)
		item_free_private(c, it);
	return st;
}

enum cache_status cache_delete(struct cache_thread *t, const char *key,
			       size_t nkey, uint64_t hash, uint64_t cas_compare)
{
	struct cache *c = t->c;
	pthread_mutex_t *lock = stripe_lock(c, hash);
	struct cds_lfht_iter iter;
	struct cache_item *old;
	enum cache_status st = CACHE_NOT_FOUND;

	if (nkey == 0 || nkey > CACHE_KEY_MAX)
		return CACHE_NOT_FOUND;
	pthread_mutex_lock(lock);
	old = do_lookup_live(t, key, nkey, hash, cache_clock_now(), &iter);
	if (old != NULL && cas_compare != 0 && old->cas != cas_compare) {
		st = CACHE_EXISTS;
	} else if (old != NULL && cds_lfht_del(c->ht, &old->table_node) == 0) {
		retire(t, old, RETIRE_DELETED);
		st = CACHE_OK;
	}
	/* del failing means eviction took it a moment ago: NOT_FOUND. */
	pthread_mutex_unlock(lock);
	return st;
}

enum cache_status cache_invalidate(struct cache_thread *t, const char *key,
				   size_t nkey, uint64_t hash,
				   uint64_t cas_compare, bool set_exptime,
				   uint32_t new_exptime)
{
	struct cache *c = t->c;
	pthread_mutex_t *lock = stripe_lock(c, hash);
	struct cds_lfht_iter iter;
	struct cache_item *old, *it;
	enum cache_status st = CACHE_OK;
	uint32_t now;

	if (nkey == 0 || nkey > CACHE_KEY_MAX)
		return CACHE_NOT_FOUND;
	pthread_mutex_lock(lock);
	now = cache_clock_now();
	old = do_lookup_live(t, key, nkey, hash, now, &iter);
	if (old == NULL) {
		st = CACHE_NOT_FOUND;
		goto out;
	}
	if (cas_compare != 0 && old->cas != cas_compare) {
		st = CACHE_EXISTS;
		goto out;
	}
	/* memcached marks in place and bumps the CAS; our items are immutable
	 * but for atomics, so link a copy with a fresh CAS. */
	it = item_alloc_raw(t, key, nkey, old->client_flags,
			    set_exptime ? new_exptime : cache_item_exptime(old),
			    old->nbytes);
	if (it == NULL) {
		/* No memory for the copy: mark in place, keep the CAS. */
		__atomic_fetch_and(&old->state, (uint8_t)~CACHE_ITEM_WIN_SENT,
				   __ATOMIC_RELAXED);
		cache_item_set_state(old, CACHE_ITEM_STALE);
		if (set_exptime)
			cache_item_set_exptime(old, new_exptime);
		goto out;
	}
	memcpy(cache_item_value(it), cache_item_value_const(old), old->nbytes);
	it->state = (cache_item_state(old) & CACHE_ITEM_FETCHED) | CACHE_ITEM_STALE;
	/* readers bump old->freq concurrently (item_bump): atomic */
	it->freq = __atomic_load_n(&old->freq, __ATOMIC_RELAXED);
	it->cas = next_cas(t, old->cas);
	it->atime = cache_item_atime(old);
	if (!do_link(t, it, hash, old, &iter, true)) {
		item_free_private(c, it);
		st = CACHE_NOT_FOUND;
	}
out:
	pthread_mutex_unlock(lock);
	return st;
}

enum cache_status cache_touch(struct cache_thread *t, const char *key,
			      size_t nkey, uint64_t hash, uint32_t new_exptime)
{
	struct cache *c = t->c;
	pthread_mutex_t *lock = stripe_lock(c, hash);
	struct cds_lfht_iter iter;
	struct cache_item *it;
	uint32_t now;

	if (nkey == 0 || nkey > CACHE_KEY_MAX)
		return CACHE_NOT_FOUND;
	pthread_mutex_lock(lock);
	now = cache_clock_now();
	it = do_lookup_live(t, key, nkey, hash, now, &iter);
	if (it != NULL) {
		item_bump(it, now, true);  /* memcached's touch fetches the item */
		cache_item_set_exptime(it, new_exptime);
	}
	pthread_mutex_unlock(lock);
	return it ? CACHE_OK : CACHE_NOT_FOUND;
}

static inline bool is_c_space(char ch)
{
	return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

/*
 * incr/decr operand, exactly as memcached 1.6.18 reads it: safe_strtoull()
 * run in place on the item data, which there is always followed by "\r\n".
 * So: leading white space and one sign are skipped, at least one digit, no
 * overflow, then the end of the value, a NUL or white space ("12 abc" is 12;
 * "12abc" is not a number); no length limit ("0000...01" of any length is 1);
 * a '-' is refused only when the result is negative as a signed number
 * ("-0" is 0, "-1" is refused).
 */
static bool parse_u64_like_memcached(const char *s, size_t n, uint64_t *out)
{
	size_t i = 0, digits;
	bool neg = false, overflow = false;
	uint64_t v = 0;

	while (i < n && is_c_space(s[i]))
		i++;
	if (i < n && (s[i] == '+' || s[i] == '-')) {
		neg = s[i] == '-';
		i++;
	}
	for (digits = i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			overflow = true;
		else
			v = v * 10 + d;
	}
	if (i == digits || overflow)
		return false;
	if (i < n && s[i] != '\0' && !is_c_space(s[i]))
		return false;
	if (neg)
		v = 0 - v;
	if (neg && (int64_t)v < 0)
		return false;
	*out = v;
	return true;
}

/* memcached stores items above this (header included) in chunks, and
 * refuses incr/decr on chunked items as non-numeric. */
#define MC_SLAB_CHUNK_MAX (512u * 1024u)
#define ARITH_BUF_LEN 24u /* a uint64 in decimal, NUL included */

/* Under the stripe lock: the new number item for an existing 'old'. */
static enum cache_status do_arith_existing(struct cache_thread *t,
					   struct cache_item *old,
					   struct cds_lfht_iter *old_iter, uint64_t hash,
					   const struct cache_arith_args *a,
					   uint32_t now, uint64_t *value_out,
					   uint64_t *cas_out)
{
	char digits[ARITH_BUF_LEN];
	uint64_t v;
	size_t nd, len;
	struct cache_item *it;

	/* memcached's order of checks: empty or chunked, CAS, number. */
	if (old->nbytes == 0 ||
	    MC_ITEM_HEADER + MC_ITEM_EXTRA + old->nkey + old->nbytes +
	    (old->client_flags ? 4u : 0u) > MC_SLAB_CHUNK_MAX)
		return CACHE_NON_NUMERIC;
	if (a->cas_compare != 0 && a->cas_compare != old->cas)
		return CACHE_EXISTS;
	if (!parse_u64_like_memcached(cache_item_value_const(old), old->nbytes, &v))
		return CACHE_NON_NUMERIC;
	if (a->incr)
		v += a->delta;                 /* wraps at 2^64 like memcached */
	else
		v = a->delta > v ? 0 : v - a->delta;
	nd = (size_t)snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);
	/* memcached rewrites a number that got shorter in place, padded with
	 * spaces to the old length; a longer one gets a new item. */
	len = nd <= old->nbytes ? old->nbytes : nd;
	it = item_alloc_raw(t, cache_item_key(old), old->nkey, old->client_flags,
			    a->touch ? a->new_exptime : cache_item_exptime(old), len);
	if (it == NULL)
		return CACHE_NO_MEMORY;
	memcpy(cache_item_value(it), digits, nd);
	memset(cache_item_value(it) + nd, ' ', len - nd);
	it->state = cache_item_state(old) &
		    (CACHE_ITEM_FETCHED | CACHE_ITEM_STALE | CACHE_ITEM_WIN_SENT);
	/* readers bump old->freq concurrently (item_bump): atomic */
	it->freq = __atomic_load_n(&old->freq, __ATOMIC_RELAXED);
	it->cas = a->cas_new ? a->cas_new : next_cas(t, old->cas);
	it->atime = now;
	if (!do_link(t, it, hash, old, old_iter, true)) {
		item_free_private(t->c, it);
		return CACHE_NOT_FOUND;
	}
	if (value_out != NULL)
		*value_out = v;
	if (cas_out != NULL)
		*cas_out = it->cas;
	return CACHE_OK;
}

/* Under the stripe lock: ma N on a miss creates the key with 'initial'. */
static enum cache_status do_arith_vivify(struct cache_thread *t, const char *key,
					 size_t nkey, uint64_t hash,
					 const struct cache_arith_args *a,
					 uint32_t now, uint64_t *value_out,
					 uint64_t *cas_out)
{
	char digits[ARITH_BUF_LEN];
	size_t nd;
	struct cache_item *it;

	nd = (size_t)snprintf(digits, sizeof(digits), "%llu",
			      (unsigned long long)a->initial);
	it = item_alloc_raw(t, key, nkey, 0, a->vivify_exptime, nd);
	if (it == NULL)
		return CACHE_NO_MEMORY;
	memcpy(cache_item_value(it), digits, nd);
	it->cas = a->cas_new ? a->cas_new : next_cas(t, 0);
	it->atime = now;
	do_link(t, it, hash, NULL, NULL, false);
	if (value_out != NULL)
		*value_out = a->initial;
	if (cas_out != NULL)
		*cas_out = it->cas;
	return CACHE_OK;
}

enum cache_status cache_arith(struct cache_thread *t, const char *key,
			      size_t nkey, uint64_t hash,
			      const struct cache_arith_args *args,
			      uint64_t *value_out, uint64_t *cas_out)
{
	struct cache *c = t->c;
	pthread_mutex_t *lock = stripe_lock(c, hash);
	struct cds_lfht_iter iter;
	struct cache_item *old;
	enum cache_status st;
	uint32_t now;

	if (args == NULL)
		return CACHE_INVALID;
	if (nkey == 0 || nkey > CACHE_KEY_MAX)
		return CACHE_NOT_FOUND;
	pthread_mutex_lock(lock);
	now = cache_clock_now();
	old = do_lookup_live(t, key, nkey, hash, now, &iter);
	if (old != NULL)
		st = do_arith_existing(t, old, &iter, hash, args, now, value_out,
				       cas_out);
	else if (args->vivify)
		st = do_arith_vivify(t, key, nkey, hash, args, now, value_out,
				     cas_out);
	else
		st = CACHE_NOT_FOUND;
	pthread_mutex_unlock(lock);
	return st;
}

void cache_flush(struct cache_thread *t, uint32_t delay)
{
	struct cache *c = t->c;
	uint32_t now = cache_clock_now();
	uint32_t when;

	/* memcached: a delay above 30 days is an absolute time, like exptime. */
	if (delay == 0)
		when = now;
	else if (delay > CACHE_REALTIME_MAXDELTA)
		when = delay > now ? delay : now;
	else
		when = now + delay;

	pthread_mutex_lock(&c->flush_lock);
	if (when - 1 <= now) {
		/* Effective at once: remember, per thread, the last CAS issued,
		 * so items of this second stored before the flush die too. */
		for (unsigned i = 0; i < c->nslots; i++)
			__atomic_store_n(&c->snap_seq[i],
					 __atomic_load_n(&c->slots[i].seq,
							 __ATOMIC_RELAXED),
					 __ATOMIC_RELAXED);
		__atomic_store_n(&c->snap_time, now, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&c->oldest_live, when - 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&c->flush_lock);
}

/* ---- sweeper ------------------------------------------------------------ */

static uint64_t next_pow2(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}


/* One bounded step over the queues from the sweep cursor (oldest first):
 * unlinks up to CACHE_SWEEP_CHUNK dead items. Returns entries visited;
 * *cycle_end is set once both queues have been walked to their heads. */
static unsigned sweep_step(struct cache_thread *t, bool *cycle_end)
{
	struct cache *c = t->c;
	struct cache_item *dead[CACHE_SWEEP_CHUNK];
	unsigned ndead = 0, visited = 0;
	uint32_t now = cache_clock_now();

	pthread_mutex_lock(&c->q_lock);
	while (visited < CACHE_SWEEP_CHUNK) {
		struct cache_item *it = c->sweep_cursor;

		if (it == NULL) {
			struct cache_queue *q;

			if (c->sweep_queue_done) {
				c->sweep_in_main = !c->sweep_in_main;
				c->sweep_queue_done = false;
				if (!c->sweep_in_main) {
					*cycle_end = true;
					break;
				}
			}
			q = c->sweep_in_main ? &c->main : &c->small;
			it = q->tail;
			if (it == NULL) {
				c->sweep_queue_done = true;
				visited++;
				continue;
			}
			c->sweep_cursor = it;
		}
		visited++;
		c->sweep_cursor = it->queue.prev;
		if (c->sweep_cursor == NULL)
			c->sweep_queue_done = true;
		if (item_is_live(c, it, now))
			continue;
		do_queue_remove(c, it);
		if (cds_lfht_del(c->ht, &it->table_node) != 0)
			continue; /* its remover retires it */
		__atomic_fetch_or(&it->state, CACHE_ITEM_RETIRED, __ATOMIC_RELAXED);
		dead[ndead++] = it;
	}
	pthread_mutex_unlock(&c->q_lock);
	for (unsigned i = 0; i < ndead; i++)
		retire_counted(t, dead[i], RETIRE_SWEPT);
	return visited;
}

/*
 * cds_lfht's own auto-resize lets chains reach 8 nodes before it grows; a
 * GET pays for every node it walks. The sweeper keeps the load between 1 and
 * 2 nodes per bucket instead, in two steps: online, it charges the bigger
 * bucket array against the memory limit; then offline, as cds_lfht_resize
 * requires, it resizes. When memory is full, the bigger array would cost
 * evictions (8 bytes an item, about 7% of the items at 32-byte values), so
 * then it waits until the load reaches CACHE_TABLE_FULL_LOAD before it
 * evicts to make room. The table never shrinks, so the charge only grows.
 */
#define CACHE_BUCKET_BYTES sizeof(struct cds_lfht_node)
#define CACHE_TABLE_FULL_LOAD 4u

/* Online. Returns the bucket count to grow to, already charged, or 0. */
static uint64_t table_growth_reserve(struct cache *c)
{
	uint64_t items = __atomic_load_n(&c->small.count, __ATOMIC_RELAXED) +
			 __atomic_load_n(&c->main.count, __ATOMIC_RELAXED);
	uint64_t want = next_pow2(items) / 2;
	uint64_t have = __atomic_load_n(&c->table_size, __ATOMIC_RELAXED);
	uint64_t bytes = (want - have) * CACHE_BUCKET_BYTES;

	if (want <= have)
		return 0;
	if (mem_try_reserve(c, bytes) != 0 &&
	    (items <= CACHE_TABLE_FULL_LOAD * have ||
	     mem_reserve(&c->sys, bytes) != 0))
		return 0;
	__atomic_fetch_add(&c->hash_bytes, bytes, __ATOMIC_RELAXED);
	return want;
}

/* Offline: cds_lfht_resize waits for grace periods. */
static void table_grow(struct cache *c, uint64_t want)
{
	cds_lfht_resize(c->ht, (unsigned long)want);
	__atomic_store_n(&c->table_size, want, __ATOMIC_RELAXED);
}

static void *sweeper_main(void *arg)
{
	struct cache *c = arg;
	struct timespec ts;

	rcu_register_thread();
	for (;;) {
		unsigned budget = 0;
		bool cycle_end = false;
		uint64_t grow_to;

		while (budget < CACHE_SWEEP_BUDGET && !cycle_end) {
			budget += sweep_step(&c->sys, &cycle_end);
			quiescent_state(); /* never hold a grace period long */
		}
		count(&c->sys, CNT_SWEEPER_RUNS);
		grow_to = table_growth_reserve(c);

		thread_offline();
		if (grow_to != 0)
			table_grow(c, grow_to);
		pthread_mutex_lock(&c->sweep_lock);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)CACHE_SWEEP_PERIOD_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!c->sweep_stop &&
		       pthread_cond_timedwait(&c->sweep_cond, &c->sweep_lock,
					      &ts) == 0)
			;
		if (c->sweep_stop) {
			pthread_mutex_unlock(&c->sweep_lock);
			break;
		}
		pthread_mutex_unlock(&c->sweep_lock);
		rcu_thread_online();
	}
	unregister_thread();
	return NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

static int config_apply_defaults(struct cache_config *cfg)
{
	if (cfg->mem_limit == 0)
		cfg->mem_limit = CACHE_DEFAULT_LIMIT;
	if (cfg->item_size_max == 0)
		cfg->item_size_max = CACHE_DEFAULT_ITEM_MAX;
	if (cfg->max_threads == 0)
		cfg->max_threads = 64;
	/* memcached: -I between 1 KiB and 1 GiB. */
	if (cfg->item_size_max < 1024 || cfg->item_size_max > (1u << 30))
		return -EINVAL;
	if (cfg->max_threads > CACHE_MAX_THREADS - 1)
		return -EINVAL;
	return 0;
}

static int sweeper_start(struct cache *c)
{
	pthread_condattr_t ca;
	int rc;

	pthread_mutex_init(&c->sweep_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->sweep_cond, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&c->sweeper, NULL, sweeper_main, c);
	if (rc != 0)
		return -rc;
	c->sweeper_running = true;
	return 0;
}

static void sweeper_stop(struct cache *c)
{
	if (!c->sweeper_running)
		return;
	pthread_mutex_lock(&c->sweep_lock);
	c->sweep_stop = true;
	pthread_cond_signal(&c->sweep_cond);
	pthread_mutex_unlock(&c->sweep_lock);
	pthread_join(c->sweeper, NULL);
	c->sweeper_running = false;
}

struct cache *cache_create(const struct cache_config *cfg)
{
	struct cache *c;
	uint64_t ghost_slots;
	int rc;

	if (cfg == NULL) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	c->cfg = *cfg;
	rc = config_apply_defaults(&c->cfg);
	if (rc != 0) {
		free(c);
		errno = -rc;
		return NULL;
	}
	c->small_target = c->cfg.mem_limit / 100 * CACHE_SMALL_PERCENT;
	for (unsigned i = 0; i < CACHE_STRIPES; i++)
		pthread_mutex_init(&c->stripes[i], NULL);
	pthread_mutex_init(&c->q_lock, NULL);
	pthread_mutex_init(&c->flush_lock, NULL);
	pthread_mutex_init(&c->attach_lock, NULL);
	pthread_mutex_init(&c->stats_lock, NULL);

	/* One ghost slot per 128 bytes of limit: about one per item for small
	 * items, as S3-FIFO sizes its ghost queue like the main queue. */
	ghost_slots = next_pow2(c->cfg.mem_limit / 128);
	if (ghost_slots < 1024)
		ghost_slots = 1024;
	if (ghost_slots > (1u << 22))
		ghost_slots = 1u << 22;
	c->ghost = calloc(ghost_slots, sizeof(*c->ghost));
	c->ghost_mask = ghost_slots - 1;

	c->nslots = c->cfg.max_threads + 1;
	c->slots = aligned_alloc(64, sizeof(*c->slots) * c->nslots);
	if (c->ghost == NULL || c->slots == NULL)
		goto fail;
	memset(c->slots, 0, sizeof(*c->slots) * c->nslots);
	c->sys.c = c;
	c->sys.id = c->cfg.max_threads;
	c->sys.slot = &c->slots[c->sys.id];
	c->sys.slot->in_use = true;

	c->ht = cds_lfht_new(CACHE_TABLE_INIT, CACHE_TABLE_INIT, 0,
			     CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
	c->table_size = CACHE_TABLE_INIT;
	c->hash_bytes = CACHE_TABLE_INIT * CACHE_BUCKET_BYTES;
	c->mem_used = c->hash_bytes;
	if (c->ht == NULL)
		goto fail;
	rc = sweeper_start(c);
	if (rc != 0) {
		errno = -rc;
		goto fail_ht;
	}
	return c;

fail_ht:
	cds_lfht_destroy(c->ht, NULL);
fail:
	if (c != NULL) {
		free(c->ghost);
		free(c->slots);
		free(c);
	}
	if (errno == 0)
		errno = ENOMEM;
	return NULL;
}

void cache_destroy(struct cache **cp)
{
	struct cache *c;
	struct cds_lfht_iter iter;
	struct cache_item *it;
	bool registered, was_online;

	if (cp == NULL || *cp == NULL)
		return;
	c = *cp;
	*cp = NULL;

	/* The sweeper may be inside cds_lfht_resize, waiting for a grace
	 * period: never wait for it while online. Walking and deleting then
	 * need an online urcu reader; the caller may or may not be one. */
	registered = tls_rcu_refs > 0;
	was_online = registered && rcu_read_ongoing();
	if (was_online)
		thread_offline();
	sweeper_stop(c);
	if (!registered)
		rcu_register_thread();
	else
		rcu_thread_online();
	cds_lfht_for_each_entry(c->ht, &iter, it, table_node) {
		if (cds_lfht_del(c->ht, &it->table_node) == 0)
			retire(&c->sys, it, RETIRE_DELETED);
	}
	/* Pending frees need a grace period: never wait for one online. */
	thread_offline();
	rcu_barrier();
	cds_lfht_destroy(c->ht, NULL);
	if (!registered)
		unregister_thread();
	else if (was_online)
		rcu_thread_online();

	for (unsigned i = 0; i < CACHE_STRIPES; i++)
		pthread_mutex_destroy(&c->stripes[i]);
	pthread_mutex_destroy(&c->q_lock);
	pthread_mutex_destroy(&c->flush_lock);
	pthread_mutex_destroy(&c->attach_lock);
	pthread_mutex_destroy(&c->stats_lock);
	pthread_mutex_destroy(&c->sweep_lock);
	pthread_cond_destroy(&c->sweep_cond);
	free(c->ghost);
	free(c->slots);
	free(c);
}

/* ---- threads ------------------------------------------------------------ */

struct cache_thread *cache_thread_attach(struct cache *c)
{
	struct cache_thread *t;
	unsigned id;

	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	pthread_mutex_lock(&c->attach_lock);
	for (id = 0; id < c->cfg.max_threads; id++)
		if (!c->slots[id].in_use)
			break;
	if (id < c->cfg.max_threads)
		c->slots[id].in_use = true;
	pthread_mutex_unlock(&c->attach_lock);
	if (id == c->cfg.max_threads) {
		free(t);
		errno = EBUSY;
		return NULL;
	}
	t->c = c;
	t->id = id;
	t->slot = &c->slots[id];
	if (tls_rcu_refs++ == 0)
		rcu_register_thread();
	return t;
}

void cache_thread_detach(struct cache_thread **tp)
{
	struct cache_thread *t;

	if (tp == NULL || *tp == NULL)
		return;
	t = *tp;
	*tp = NULL;
	if (--tls_rcu_refs == 0)
		unregister_thread();
	pthread_mutex_lock(&t->c->attach_lock);
	t->slot->in_use = false;
	pthread_mutex_unlock(&t->c->attach_lock);
	free(t);
}

unsigned cache_thread_id(const struct cache_thread *t)
{
	return t->id;
}

void cache_thread_quiescent(struct cache_thread *t)
{
	quiescent_state();
}

void cache_thread_offline(struct cache_thread *t)
{
	thread_offline();
}

void cache_thread_online(struct cache_thread *t)
{
	rcu_thread_online();
}

/* ---- statistics --------------------------------------------------------- */

static void counters_sum(struct cache *c, uint64_t sum[CNT__COUNT])
{
	memset(sum, 0, sizeof(uint64_t) * CNT__COUNT);
	for (unsigned i = 0; i < c->nslots; i++)
		for (unsigned k = 0; k < CNT__COUNT; k++)
			sum[k] += __atomic_load_n(&c->slots[i].cnt[k],
						  __ATOMIC_RELAXED);
}

void cache_stats_get(struct cache *c, struct cache_stats *out)
{
	uint64_t sum[CNT__COUNT];
	uint64_t base[CNT__COUNT];
	uint64_t items;

	counters_sum(c, sum);
	pthread_mutex_lock(&c->stats_lock);
	memcpy(base, c->stats_base, sizeof(base));
	pthread_mutex_unlock(&c->stats_lock);

	memset(out, 0, sizeof(*out));
	out->small_queue_items = __atomic_load_n(&c->small.count, __ATOMIC_RELAXED);
	out->main_queue_items = __atomic_load_n(&c->main.count, __ATOMIC_RELAXED);
	items = out->small_queue_items + out->main_queue_items;
	out->curr_items = items;
	out->hash_bytes = __atomic_load_n(&c->hash_bytes, __ATOMIC_RELAXED);
	out->bytes = __atomic_load_n(&c->mem_used, __ATOMIC_RELAXED) -
		     out->hash_bytes;
	out->limit_maxbytes = c->cfg.mem_limit;
	out->total_items = sum[CNT_TOTAL_ITEMS] - base[CNT_TOTAL_ITEMS];
	out->evictions = sum[CNT_EVICTIONS] - base[CNT_EVICTIONS];
	out->evicted_unfetched = sum[CNT_EVICTED_UNFETCHED] - base[CNT_EVICTED_UNFETCHED];
	out->expired_unfetched = sum[CNT_EXPIRED_UNFETCHED] - base[CNT_EXPIRED_UNFETCHED];
	out->reclaimed = sum[CNT_RECLAIMED] - base[CNT_RECLAIMED];
	out->sweeper_runs = sum[CNT_SWEEPER_RUNS] - base[CNT_SWEEPER_RUNS];
	out->sweeper_reclaimed = sum[CNT_SWEEPER_RECLAIMED] - base[CNT_SWEEPER_RECLAIMED];
	/* cds_lfht does not expose its size: what the sweeper last asked for
	 * (auto-resize may have moved it since). */
	out->table_buckets = __atomic_load_n(&c->table_size, __ATOMIC_RELAXED);
}

void cache_stats_reset(struct cache *c)
{
	uint64_t sum[CNT__COUNT];

	/* A baseline instead of zeroing: the owners keep writing their slots
	 * without a lock, so zeroing them from here could be lost. */
	counters_sum(c, sum);
	pthread_mutex_lock(&c->stats_lock);
	memcpy(c->stats_base, sum, sizeof(sum));
	pthread_mutex_unlock(&c->stats_lock);
}

const struct cache_config *cache_config_get(const struct cache *c)
{
	return &c->cfg;
}
