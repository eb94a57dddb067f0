/*
 * control/hotplan.h - the leader's choice of hot keys to replicate: a pure
 * function of the nodes' reports, the shard map and the previous set, so it
 * can be tested without ZooKeeper (rules: control/CLUSTER.md, "Hot keys").
 */
#ifndef DPCACHE_CONTROL_HOTPLAN_H
#define DPCACHE_CONTROL_HOTPLAN_H

#include "replication/hotset.h"
#include "replication/map.h"

struct hot_plan_config {
	unsigned budget;             /* at most this many keys; 0 = none */
	double share;                /* one holder should carry at most this
	                                fraction of the mean node load from one
	                                key: holders = ceil(R / (share * L)) */
	double min_rate;             /* reads/s under which a key never enters */
	double max_write_fraction;   /* writes / (reads + writes) above which a
	                                key is not replicated */
};

/* budget 64, share 0.05, min_rate 100, max_write_fraction 0.2 */
void hot_plan_defaults(struct hot_plan_config *cfg);

/*
 * The new set from 'reports' (one per live node, any order) and 'map'. prev
 * may be NULL (no set yet). While the map has a migration in flight the
 * result equals prev (owners are changing). The result's version is
 * prev's when hot_set_same(prev, result), else prev's + 1 (1 when no prev);
 * epoch is map->epoch. *out is a new set (hot_set_free). 0 or -ENOMEM.
 */
int hot_plan(const struct hot_plan_config *cfg, const struct shard_map *map,
	     const struct hot_report *const *reports, unsigned nreports,
	     const struct hot_set *prev, struct hot_set **out);

#endif /* DPCACHE_CONTROL_HOTPLAN_H */
