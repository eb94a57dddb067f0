/*
 * replication/hotset.h - the two JSON documents of hot-key replication, as
 * stored in ZooKeeper (layout: control/CLUSTER.md, "Hot keys"):
 *
 *   ROOT/hot/reports/<id>  a node's report: its load and its hottest keys
 *   ROOT/hot/set           the leader's choice: which keys are replicated,
 *                          their owner and their replicas
 *
 * Keys travel in base64 (binary-protocol keys may be any bytes). Parsers
 * are strict: a malformed document is refused whole with a one-line reason,
 * never half-applied.
 */
#ifndef DPCACHE_REPLICATION_HOTSET_H
#define DPCACHE_REPLICATION_HOTSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"
#include "replication/hotkeys.h"
#include "replication/map.h"

#define HOT_SET_KEYS_MAX 1024        /* keys in a set */
#define HOT_REPORT_KEYS_MAX 256      /* keys in a report */
#define HOT_REPLICAS_MAX 64          /* replicas of one key (owner excluded) */

/* ---- a node's report ---------------------------------------------------- */

struct hot_report {
	char node[MAP_ID_MAX];
	uint64_t interval_ms;
	double received;             /* client requests/s that reached the node */
	double executed;             /* requests/s run against its cache */
	uint64_t set_version;        /* the hot set version the node applied
	                                last, 0 = none ("set_version"; optional
	                                when parsing, so an older node's report
	                                still parses) */
	unsigned nkeys;
	struct hot_rate *keys;       /* malloc'd; hash = cache_hash(key) */
};

/* Malloc'd JSON (compact) for free(); NULL on no memory. */
char *hot_report_format(const struct hot_report *r);
/* 0, or -EINVAL with a reason in err (may be NULL), -ENOMEM. On success
 * *out is malloc'd; free with hot_report_free. */
int hot_report_parse(const char *json, size_t len, struct hot_report **out,
		     char *err, size_t errlen);
/* Accepts NULL; sets *r to NULL. */
void hot_report_free(struct hot_report **r);

/* ---- the replica set ---------------------------------------------------- */

struct hot_set_key {
	uint64_t hash;               /* cache_hash(key), filled by the parser */
	double reads;                /* cluster-wide reads/s when chosen */
	double writes;
	char owner[MAP_ID_MAX];
	unsigned nreplicas;
	char replicas[HOT_REPLICAS_MAX][MAP_ID_MAX];   /* never the owner */
	uint8_t nkey;
	char key[CACHE_KEY_MAX];
};

struct hot_set {
	uint64_t version;            /* grows by one on every change */
	uint64_t epoch;              /* map epoch the owners come from */
	unsigned nkeys;
	struct hot_set_key *keys;    /* malloc'd */
};

/* An empty set (version 0), or NULL on no memory. */
struct hot_set *hot_set_new(void);
char *hot_set_format(const struct hot_set *s);
/* Strict: ids valid (map_id_valid), no replica equal to the owner, no
 * duplicate replica, no duplicate key, counts within the limits. */
int hot_set_parse(const char *json, size_t len, struct hot_set **out,
		  char *err, size_t errlen);
void hot_set_free(struct hot_set **s);
/* A deep copy (same version and epoch), or NULL on no memory. */
struct hot_set *hot_set_clone(const struct hot_set *s);
/* Same keys, owners and replicas (in any order of keys; replicas compared
 * as sets); rates and version are ignored. */
bool hot_set_same(const struct hot_set *a, const struct hot_set *b);
/* Index of the key in s->keys, or -1. */
int hot_set_find(const struct hot_set *s, const char *key, size_t nkey);

#endif /* DPCACHE_REPLICATION_HOTSET_H */
