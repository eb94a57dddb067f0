/*
 * replication/hotkeys.h - finding the hottest keys: a small Space-Saving
 * summary per serving thread, fed by a sample of its requests, and a
 * node-wide table of decayed rates that the control thread builds from
 * them once per interval.
 *
 *   hot_sketch - one per serving thread. hot_sketch_count() runs on the
 *                request path: every call bumps a request counter; one call
 *                in 'sample' also updates the summary, under a mutex the
 *                serving thread only try-locks (a polling core never
 *                blocks; a sample that finds the lock taken is skipped and
 *                counted). hot_sketch_drain() runs on the control thread.
 *   hot_table  - the node's merged view; one thread only (the control
 *                thread).
 *
 * Space-Saving (Metwally et al., 2005): K counters; a key already counted
 * adds one; a new key replaces the smallest counter and inherits its count
 * (the overestimate is recorded as 'error'). Any key whose true count
 * exceeds N/K is in the summary.
 */
#ifndef DPCACHE_REPLICATION_HOTKEYS_H
#define DPCACHE_REPLICATION_HOTKEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"   /* CACHE_KEY_MAX */

#define HOT_SKETCH_CAPACITY_DEFAULT 128
#define HOT_SAMPLE_DEFAULT 8          /* 1 request in 8 feeds the summary */

struct hot_sketch;

/*
 * capacity: counters in the summary (1..4096). sample: 1 request in
 * 'sample' updates it (1..65536; 1 = every request). NULL on bad arguments
 * (errno EINVAL) or no memory.
 */
struct hot_sketch *hot_sketch_create(unsigned capacity, unsigned sample);
/* Accepts NULL; sets *s to NULL. */
void hot_sketch_destroy(struct hot_sketch **s);

/*
 * On the owning serving thread only. 'hash' is cache_hash(key) (already
 * computed on the request path). 'write': a store, delete or arithmetic
 * (anything that is not a read).
 */
void hot_sketch_count(struct hot_sketch *s, const char *key, size_t nkey,
		      uint64_t hash, bool write);

/* One key's estimated counts since the last drain, already scaled up by
 * the sampling (a sampled hit counts 'sample'). */
struct hot_count {
	uint64_t hash;
	uint64_t reads;
	uint64_t writes;
	uint8_t nkey;
	char key[CACHE_KEY_MAX];
};

/*
 * Any thread (the control thread): copies up to 'max' entries of the
 * summary into out (largest first), sets *requests to the requests counted
 * since the last drain (every request, not only the sampled ones) and
 * *skipped to the samples dropped because the lock was taken, then empties
 * the summary. Returns the number of entries written.
 */
unsigned hot_sketch_drain(struct hot_sketch *s, struct hot_count *out,
			  unsigned max, uint64_t *requests, uint64_t *skipped);

/* ---- the node's table of rates ----------------------------------------- */

struct hot_rate {
	uint64_t hash;
	double reads;                 /* per second, decayed */
	double writes;
	uint8_t nkey;
	char key[CACHE_KEY_MAX];
};

struct hot_table;

/* capacity: keys kept (1..65536). decay in [0,1): the weight of the
 * previous rate at each tick (0 = only the last interval counts). NULL on
 * bad arguments or no memory. */
struct hot_table *hot_table_create(unsigned capacity, double decay);
void hot_table_destroy(struct hot_table **t);

/* Adds one interval's counts (several workers may report the same key:
 * they are summed). 0 or -ENOMEM. */
int hot_table_add(struct hot_table *t, const struct hot_count *c, unsigned n);

/*
 * Closes the interval of 'interval_s' seconds: each key's rate becomes
 * decay * old + (1 - decay) * count / interval_s (a key not seen this
 * interval decays towards 0); keys whose reads + writes fall under
 * 'forget_below' per second are dropped, and only the 'capacity' largest
 * kept. Clears the interval's counts.
 */
void hot_table_tick(struct hot_table *t, double interval_s,
		    double forget_below);

/* Up to 'max' keys, by reads + writes, largest first. Returns the count. */
unsigned hot_table_top(const struct hot_table *t, struct hot_rate *out,
		       unsigned max);

#endif /* DPCACHE_REPLICATION_HOTKEYS_H */
