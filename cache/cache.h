/*
 * cache/cache.h - the item store: a lock-free RCU hash table (liburcu
 * cds_lfht, urcu-qsbr flavour) of items whose memory comes from jemalloc,
 * with a memory limit, eviction, expiry and CAS.
 *
 * Threads. Every thread that calls into a cache first attaches with
 * cache_thread_attach(), which registers it as a urcu-qsbr reader and gives
 * it a per-thread context (counters, CAS sequence). A thread reports a
 * quiescent state with cache_thread_quiescent() once per loop iteration, when
 * it holds no item pointer, and goes offline (cache_thread_offline()) around
 * any call that may block. Every function below that takes a
 * struct cache_thread must be called by that thread, online.
 *
 * Concurrency. Lookups take no lock. Writers to one key are serialised by a
 * striped lock chosen by the key's hash, so writers to different keys run in
 * parallel. Eviction and expiry unlink items with cds_lfht_del and free them
 * through call_rcu after a grace period; they never take a stripe lock.
 *
 * Keys. Callers hash a key once with cache_hash() and pass the hash along
 * with the key to every call, so the same hash also serves the shard map and
 * the hot-key sketch.
 *
 * Errors. Functions return a value of enum cache_status; none of them aborts
 * on bad arguments from the network (the protocol layer validates lengths,
 * the cache checks them again and answers CACHE_TOO_LARGE / CACHE_INVALID).
 */
#ifndef DPCACHE_CACHE_CACHE_H
#define DPCACHE_CACHE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/clock.h"
#include "cache/item.h"

struct cache;
struct cache_thread;

enum cache_status {
	CACHE_OK = 0,          /* stored / deleted / touched / found */
	CACHE_NOT_STORED,      /* add on an existing key, replace/append/prepend on a missing one */
	CACHE_EXISTS,          /* CAS mismatch */
	CACHE_NOT_FOUND,       /* no such (live) key */
	CACHE_TOO_LARGE,       /* item larger than item_size_max */
	CACHE_NO_MEMORY,       /* nothing evictable (or eviction disabled) */
	CACHE_NON_NUMERIC,     /* incr/decr on a value that is not a decimal number */
	CACHE_INVALID,         /* bad argument: key length 0 or > CACHE_KEY_MAX, ... */
};

/* One line per status, for logs and tests ("CACHE_EXISTS"). */
const char *cache_status_name(enum cache_status st);

struct cache_config {
	size_t mem_limit;      /* bytes; items + per-item overhead (-m) */
	size_t item_size_max;  /* bytes; largest item, header+key+value (-I) */
	bool no_evict;         /* memcached -M: fail stores instead of evicting */
	unsigned max_threads;  /* threads that may attach; 0 = 64 */
};

/*
 * Creates a cache. Returns NULL (and sets errno) on bad config or no memory.
 * Starts the background expiry sweeper thread. Call from any thread; the
 * caller need not be attached.
 */
struct cache *cache_create(const struct cache_config *cfg);

/*
 * Unlinks and frees every item, stops the sweeper, waits for pending
 * call_rcu frees (rcu_barrier). All other threads must have detached.
 * Accepts NULL; sets *c to NULL.
 */
void cache_destroy(struct cache **c);

/* xxh3-64 of the key. */
uint64_t cache_hash(const char *key, size_t nkey);

/* ---- threads ------------------------------------------------------------ */

/* Registers the calling thread as a urcu-qsbr reader (online) and returns
 * its context, or NULL if max_threads are attached. */
struct cache_thread *cache_thread_attach(struct cache *c);

/* Unregisters the calling thread; frees the context; sets *t to NULL.
 * Accepts NULL. */
void cache_thread_detach(struct cache_thread **t);

/* Small dense id of the thread (0 .. max_threads-1). */
unsigned cache_thread_id(const struct cache_thread *t);

/* urcu-qsbr quiescent state: every item pointer this thread got before is
 * invalid afterwards. */
void cache_thread_quiescent(struct cache_thread *t);

/* Around blocking calls (epoll_wait, sleeping). Item pointers are invalid
 * after going offline. */
void cache_thread_offline(struct cache_thread *t);
void cache_thread_online(struct cache_thread *t);

/* ---- reads -------------------------------------------------------------- */

/* What a lookup does besides finding the item. */
struct cache_read_opts {
	bool no_bump;          /* meta 'u': leave atime, freq and FETCHED alone */
	bool touch;            /* set exptime to new_exptime (gat, meta T) */
	uint32_t new_exptime;  /* absolute (cache_exptime_from_wire) */
};

/* What the item looked like before this lookup changed it (meta h, l). */
struct cache_read_info {
	uint32_t prev_atime;
	bool prev_fetched;
};

/*
 * Looks a key up. Returns the live item, or NULL on a miss (expired and
 * flushed items are misses; an expired one found is unlinked lazily).
 * Unless opts->no_bump, records the access for eviction and sets FETCHED and
 * atime. 'opts' and 'info' may be NULL. No lock is taken.
 * The item stays valid until this thread's next quiescent state.
 */
const struct cache_item *cache_get(struct cache_thread *t, const char *key,
				   size_t nkey, uint64_t hash,
				   const struct cache_read_opts *opts,
				   struct cache_read_info *info);

/*
 * Calls fn once for every linked, live item (not expired, not flushed), in
 * one pass over the table, in no particular order. Items linked or replaced
 * during the pass may or may not be visited; an item is never visited twice.
 * The thread stays online for the whole pass and 'it' is valid only during
 * the call: a pass over a million items delays every grace period (and so
 * every free) by its duration, so fn should copy what it needs (the key) and
 * do slow work after the pass. fn must not block or go offline.
 */
void cache_for_each(struct cache_thread *t,
		    void (*fn)(void *arg, const struct cache_item *it),
		    void *arg);

/* The same item, writable for the atomic fields (exptime, state). */
static inline struct cache_item *cache_item_mut(const struct cache_item *it)
{
	return (struct cache_item *)it;
}

/* ---- writes ------------------------------------------------------------- */

/*
 * Allocates an unlinked item with room for an nbytes value; the caller fills
 * cache_item_value() and then passes it to cache_store(), or gives it back
 * with cache_item_abort(). May evict to make room.
 * Returns NULL with *err = CACHE_TOO_LARGE (item above item_size_max),
 * CACHE_NO_MEMORY, or CACHE_INVALID (bad key length).
 * 'exptime' is absolute (cache_exptime_from_wire).
 */
struct cache_item *cache_item_alloc(struct cache_thread *t, const char *key,
				    size_t nkey, uint32_t client_flags,
				    uint32_t exptime, size_t nbytes,
				    enum cache_status *err);

/* Frees an item that was never linked; sets *it to NULL. Accepts NULL. */
void cache_item_abort(struct cache_thread *t, struct cache_item **it);

enum cache_store_mode {
	CACHE_SET,
	CACHE_ADD,        /* only if missing */
	CACHE_REPLACE,    /* only if present */
	CACHE_APPEND,     /* value appended to the existing one; keeps its flags and exptime */
	CACHE_PREPEND,
	CACHE_CAS,        /* only if present and its CAS equals cas_compare */
};

struct cache_store_args {
	enum cache_store_mode mode;
	uint64_t cas_compare;  /* CACHE_CAS; for other modes, 0 = no check,
	                          else the store also needs a matching CAS (meta C) */
	uint64_t cas_new;      /* 0 = a fresh unique CAS; else use it (meta E) */
	bool vivify;           /* append/prepend on a miss stores the item as is (meta ms N) */
	bool invalidate;       /* meta ms I: a CAS mismatch with an older
	                          cas_compare stores anyway and marks it STALE */
};

/*
 * Links 'it' under its key according to 'args'. Always takes ownership of
 * 'it': it is linked, or freed on any failure. On success *cas_out (if not
 * NULL) is the CAS of the linked item.
 * Returns CACHE_OK, CACHE_NOT_STORED, CACHE_EXISTS, CACHE_NOT_FOUND (cas on a
 * missing key), CACHE_TOO_LARGE (append/prepend result too big),
 * CACHE_NO_MEMORY.
 */
enum cache_status cache_store(struct cache_thread *t, struct cache_item *it,
			      uint64_t hash, const struct cache_store_args *args,
			      uint64_t *cas_out);

/*
 * Deletes a key. cas_compare != 0: only if the item's CAS matches
 * (else CACHE_EXISTS). Returns CACHE_OK or CACHE_NOT_FOUND.
 */
enum cache_status cache_delete(struct cache_thread *t, const char *key,
			       size_t nkey, uint64_t hash, uint64_t cas_compare);

/*
 * Meta md I: instead of deleting, marks the item STALE (clearing WIN_SENT)
 * and, if new_exptime != 0 (after conversion), sets its exptime.
 * cas_compare as for cache_delete. Returns CACHE_OK, CACHE_NOT_FOUND,
 * CACHE_EXISTS.
 */
enum cache_status cache_invalidate(struct cache_thread *t, const char *key,
				   size_t nkey, uint64_t hash,
				   uint64_t cas_compare, bool set_exptime,
				   uint32_t new_exptime);

/*
 * Sets the exptime of a live key (touch). Returns CACHE_OK or
 * CACHE_NOT_FOUND. For gat/gats use cache_get with opts->touch.
 */
enum cache_status cache_touch(struct cache_thread *t, const char *key,
			      size_t nkey, uint64_t hash, uint32_t new_exptime);

struct cache_arith_args {
	bool incr;             /* incr wraps at 2^64; decr floors at 0 */
	uint64_t delta;
	uint64_t cas_compare;  /* 0 = no check */
	uint64_t cas_new;      /* 0 = fresh */
	bool vivify;           /* on a miss, create with 'initial' (meta ma N) */
	uint64_t initial;
	uint32_t vivify_exptime;
	bool touch;            /* also set exptime to new_exptime (meta ma T) */
	uint32_t new_exptime;
};

/*
 * incr/decr with memcached's rules: the value must be a decimal number of at
 * most 20 digits that fits in 64 bits (else CACHE_NON_NUMERIC); the result
 * is stored as a decimal string in a new item that keeps the flags and
 * exptime. Returns CACHE_OK (with *value_out and *cas_out set, either may be
 * NULL), CACHE_NOT_FOUND, CACHE_NON_NUMERIC, CACHE_EXISTS, CACHE_NO_MEMORY.
 */
enum cache_status cache_arith(struct cache_thread *t, const char *key,
			      size_t nkey, uint64_t hash,
			      const struct cache_arith_args *args,
			      uint64_t *value_out, uint64_t *cas_out);

/*
 * flush_all: every item stored or accessed at or before now+delay becomes
 * invalid once the clock reaches now+delay (memcached's oldest_live rule).
 * delay 0 = now. Items are reclaimed lazily and by the sweeper.
 */
void cache_flush(struct cache_thread *t, uint32_t delay);

/* ---- statistics --------------------------------------------------------- */

struct cache_stats {
	uint64_t curr_items;
	uint64_t total_items;        /* items ever linked */
	uint64_t bytes;              /* item memory (memcached's "bytes") */
	uint64_t hash_bytes;         /* the table's bucket array; bytes +
	                                hash_bytes is what the limit counts */
	uint64_t limit_maxbytes;
	uint64_t evictions;
	uint64_t evicted_unfetched;
	uint64_t expired_unfetched;
	uint64_t reclaimed;          /* expired/flushed items unlinked */
	uint64_t sweeper_runs;
	uint64_t sweeper_reclaimed;
	uint64_t table_buckets;      /* current cds_lfht bucket count (approx.) */
	uint64_t small_queue_items;  /* eviction policy queues */
	uint64_t main_queue_items;
};

/* Sums the per-thread counters and the global ones. Any thread. */
void cache_stats_get(struct cache *c, struct cache_stats *out);

/* 'stats reset': zeroes the counters that memcached resets. */
void cache_stats_reset(struct cache *c);

/* The configuration the cache runs with (after defaults). */
const struct cache_config *cache_config_get(const struct cache *c);

/* Memory that an item of this shape costs against the limit: jemalloc's
 * real size for header+key+value (nallocx). The table's bucket array is
 * charged separately (cache_stats.hash_bytes). For 'stats' and tests. */
size_t cache_item_footprint(size_t nkey, size_t nbytes);

#endif /* DPCACHE_CACHE_CACHE_H */
