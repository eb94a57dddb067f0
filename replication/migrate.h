/*
 * replication/migrate.h - the source side of a migration and the clean-up
 * after it.
 *
 * The migrator owns one background thread (a cache thread, RCU-offline while
 * it waits). On every new map the node's agent calls migrator_apply():
 *   - map->migration != 0 and this node owns (in the prev ring) keys whose
 *     owner in the new ring is another node: snapshot those keys in one
 *     cache_for_each() pass, then stream each item still present as
 *     'ms <key> <len> F<flags> T<ttl> ME' to its new owner over a connection
 *     that says 'dpc_peer <self> migrate' first; pipelined, under a byte rate
 *     budget; NS counts as delivered. Progress goes to the callback (the agent
 *     writes it to ZooKeeper).
 *   - a stable map: delete, at a bounded rate, the local items this node does
 *     not own (the copies a finished migration left behind).
 * A new migration id, or a stable map, stops the stream in progress; a map
 * of the migration already streamed (or finished) changes nothing. Every
 * node reports progress for every migration map, a node with nothing to
 * send reports done with zero keys at once.
 *
 * The thread is attached to cfg->cache: destroy the migrator before the
 * cache.
 */
#ifndef DPCACHE_REPLICATION_MIGRATE_H
#define DPCACHE_REPLICATION_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "cache/cache.h"
#include "replication/map.h"

struct migrate_progress {
	uint64_t migration;
	uint64_t keys_total;        /* moving-out keys in the snapshot */
	uint64_t keys_sent;         /* acknowledged by the target (HD or NS) */
	uint64_t keys_skipped;      /* gone or expired before their turn */
	uint64_t bytes_sent;        /* value bytes */
	unsigned failed_targets;    /* targets unreachable for 10 s: given up */
	bool done;
	uint64_t errors;            /* answered neither HD nor NS (or no memory) */
};

struct migrate_config {
	struct cache *cache;
	const char *self_id;
	uint64_t rate_bytes_per_s;  /* 0 = 64 MiB/s */
	unsigned target_giveup_ms;  /* 0 = 10000 */
	/* Called on the migrator thread: at most every 200 ms while streaming,
	 * and once with done = true. */
	void (*progress)(void *arg, const struct migrate_progress *p);
	void *arg;
};

struct migrator;

struct migrator *migrator_create(const struct migrate_config *cfg);
/* Stops the thread. Accepts NULL; sets *m to NULL. */
void migrator_destroy(struct migrator **m);
/* Takes its own reference to map. Non-blocking; any thread. */
void migrator_apply(struct migrator *m, struct shard_map *map);
/* The latest progress (for stats/metrics). Any thread. */
void migrator_progress(struct migrator *m, struct migrate_progress *out);
/* Items deleted by the clean-up after migrations. */
uint64_t migrator_dropped(struct migrator *m);

#endif /* DPCACHE_REPLICATION_MIGRATE_H */
