/*
 * replication/tombstone.h - the FRESH set of a migration: hashes of the keys
 * this node wrote or deleted while they were moving in. The migration stream
 * and pulls never install over, or resurrect, a key in the set. Cleared when
 * the map becomes stable.
 *
 * Any thread may add and test concurrently (a cds_lfht, urcu-qsbr; callers
 * are registered urcu readers, online). Keyed by cache_hash() (64 bits).
 */
#ifndef DPCACHE_REPLICATION_TOMBSTONE_H
#define DPCACHE_REPLICATION_TOMBSTONE_H

#include <stdbool.h>
#include <stdint.h>

struct tomb_set;

struct tomb_set *tomb_create(void);
/* No concurrent users left. Any thread (an online reader passes a
 * quiescent state). Accepts NULL; sets *t to NULL. */
void tomb_destroy(struct tomb_set **t);

/* 0, or -ENOMEM. Adding a present hash is a no-op. */
int tomb_add(struct tomb_set *t, uint64_t hash);
bool tomb_contains(struct tomb_set *t, uint64_t hash);
/* Removes every entry (freed after a grace period, which it waits for).
 * Any thread: an online reader (the wait is a quiescent state for it, so it
 * must hold no RCU-protected pointers), an offline one, or a thread that is
 * not a urcu reader at all. An add racing with the clear may be lost. */
void tomb_clear(struct tomb_set *t);
/* Any thread. */
uint64_t tomb_count(struct tomb_set *t);

#endif /* DPCACHE_REPLICATION_TOMBSTONE_H */
