/*
 * cache/item.h - the cached item, exposed so that the protocol code can read
 * an item's fields inline on the GET path.
 *
 * Layout: one jemalloc allocation holds the header below, then the key
 * (nkey bytes, not NUL-terminated), then the value (nbytes bytes, without the
 * memcached "\r\n" terminator).
 *
 * Lifetime: an item returned by a lookup is valid until the calling thread's
 * next urcu-qsbr quiescent state (cache_thread_quiescent()) or until it goes
 * offline. Items are immutable once linked, except for the fields marked
 * "atomic" below, which are read and written with relaxed atomics. A value is
 * never changed in place: every change (set, append, incr...) links a new item
 * and frees the old one after a grace period.
 */
#ifndef DPCACHE_CACHE_ITEM_H
#define DPCACHE_CACHE_ITEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <urcu-qsbr.h>
#include <urcu/rculfhash.h>

#define CACHE_KEY_MAX 250u        /* memcached's KEY_MAX_LENGTH */

/* Bits of item->state. Changed only with atomic read-modify-write. */
#define CACHE_ITEM_FETCHED  0x01u /* read at least once since it was stored */
#define CACHE_ITEM_STALE    0x02u /* marked stale by a meta invalidate */
#define CACHE_ITEM_WIN_SENT 0x04u /* a client already holds the recache "win" */
#define CACHE_ITEM_IN_MAIN  0x08u /* eviction: lives in the main queue (cache-internal) */
#define CACHE_ITEM_QUEUED   0x10u /* eviction: linked in a queue (cache-internal) */
#define CACHE_ITEM_RETIRED  0x20u /* unlinked, waiting for a grace period (cache-internal) */

struct cache_item {
	struct cds_lfht_node table_node; /* hash table link; holds the reverse hash */
	union {
		struct {                  /* while linked in an eviction queue */
			struct cache_item *prev;
			struct cache_item *next;
		} queue;
		struct rcu_head rcu;      /* after leaving the queue, until freed */
	};
	uint64_t cas;                     /* CAS unique, never 0 once linked */
	uint32_t exptime;                 /* atomic; absolute cache-clock seconds, 0 = never */
	uint32_t atime;                   /* atomic; last access, cache-clock seconds */
	uint32_t client_flags;            /* opaque 32-bit client flags */
	uint32_t nbytes;                  /* value length */
	uint8_t nkey;                     /* key length, 1..CACHE_KEY_MAX */
	uint8_t freq;                     /* atomic; eviction access counter */
	uint8_t state;                    /* atomic; CACHE_ITEM_* bits */
	char data[];                      /* key, then value */
};

static inline const char *cache_item_key(const struct cache_item *it)
{
	return it->data;
}

static inline char *cache_item_value(struct cache_item *it)
{
	return it->data + it->nkey;
}

static inline const char *cache_item_value_const(const struct cache_item *it)
{
	return it->data + it->nkey;
}

static inline uint32_t cache_item_exptime(const struct cache_item *it)
{
	return __atomic_load_n(&it->exptime, __ATOMIC_RELAXED);
}

/* In-place TTL change (touch, gat, meta T). Safe against concurrent readers. */
static inline void cache_item_set_exptime(struct cache_item *it, uint32_t exptime)
{
	__atomic_store_n(&it->exptime, exptime, __ATOMIC_RELAXED);
}

static inline uint32_t cache_item_atime(const struct cache_item *it)
{
	return __atomic_load_n(&it->atime, __ATOMIC_RELAXED);
}

static inline uint8_t cache_item_state(const struct cache_item *it)
{
	return __atomic_load_n(&it->state, __ATOMIC_RELAXED);
}

/* Sets bits in item->state; returns the state before. Lets exactly one
 * client win a race (e.g. test-and-set of CACHE_ITEM_WIN_SENT). */
static inline uint8_t cache_item_set_state(struct cache_item *it, uint8_t bits)
{
	return __atomic_fetch_or(&it->state, bits, __ATOMIC_ACQ_REL);
}

#endif /* DPCACHE_CACHE_ITEM_H */
