/*
 * dataplane/net/fault.h - a seeded fault injector for the RX/TX burst
 * boundary: drop, duplicate, reorder and delay packets, for tests. Off by
 * default; costs one branch per burst when off.
 *
 * Generic over packet handles (void *): the backend gives a copy function
 * (rte_pktmbuf_copy) and a free function. Per core, not thread-safe.
 */
#ifndef DPCACHE_NET_FAULT_H
#define DPCACHE_NET_FAULT_H

#include <stdbool.h>
#include <stdint.h>

struct fault_config {
	unsigned drop_pct;          /* 0..100: chance a packet is dropped */
	unsigned dup_pct;           /* chance it is sent twice */
	unsigned reorder_pct;       /* chance it is swapped behind the next one */
	unsigned delay_pct;         /* chance it is held back ... */
	uint32_t delay_us;          /* ... this long */
	uint64_t seed;
};

/* Parses "drop=5,dup=1,reorder=2,delay=1:2000,seed=42" (delay=PCT:US);
 * returns 0 or -EINVAL. An empty string means off. */
int fault_config_parse(struct fault_config *cfg, const char *spec);
bool fault_config_active(const struct fault_config *cfg);

struct fault_ops {
	void *(*copy)(void *arg, void *pkt);   /* NULL when out of buffers */
	void (*free)(void *arg, void *pkt);
};

struct fault;

/* 'max_held': packets the injector may hold for delay/reorder. */
struct fault *fault_create(const struct fault_config *cfg,
			   const struct fault_ops *ops, void *arg,
			   unsigned max_held);
void fault_destroy(struct fault **f);

/*
 * Applies the faults to pkts[0..n) in place and appends any held packets
 * whose delay has expired by now_us. pkts must have room for 'cap' entries.
 * Returns the new count. Packets dropped are freed through ops->free.
 */
unsigned fault_apply(struct fault *f, void **pkts, unsigned n, unsigned cap,
		     uint64_t now_us);

struct fault_counters {
	uint64_t dropped, duplicated, reordered, delayed;
};
const struct fault_counters *fault_counters(const struct fault *f);

#endif /* DPCACHE_NET_FAULT_H */
