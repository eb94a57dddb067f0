/*
 * dataplane/kernel/kernel.h - the kernel-socket backend: one epoll loop per
 * worker thread, each with its own SO_REUSEPORT listening socket (and UDP
 * socket with -U), serving the memcached protocols through mc.h.
 *
 * Lifecycle, all on the main thread:
 *   k = dp_kernel_create(cfg)       binds every socket (errors reported here)
 *   s = mc_server_create(...)       with transport_stats = dp_kernel_stats,
 *                                   transport_arg = k
 *   dp_kernel_start(k, s)           starts the workers; each creates its own
 *                                   mc_worker on its own thread
 *   ... wait for SIGTERM/SIGINT ...
 *   dp_kernel_stop(k)               wakes and joins every worker
 *   dp_kernel_destroy(&k); mc_server_destroy(&s); cache_destroy(&c);
 */
#ifndef DPCACHE_DATAPLANE_KERNEL_H
#define DPCACHE_DATAPLANE_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "dataplane/memcache/mc.h"

struct cluster;

struct dp_kernel_config {
	const char *listen_addr;   /* host or literal; copied */
	uint16_t tcp_port;         /* 0 = no TCP */
	uint16_t udp_port;         /* 0 = no UDP */
	unsigned threads;          /* 1 .. MC_MAX_WORKERS */
	unsigned max_conns;        /* -c: client connections, all threads together */
	int backlog;               /* listen() backlog */
	int verbosity;             /* -v count: 1 warnings, 2 connection open/close */
	/* A cluster node (--cluster): each worker makes its cluster_worker
	 * (routing, forwarder) and polls its forwarder. NULL = single node. */
	struct cluster *cluster;
};

struct dp_kernel;

/*
 * Creates the backend and binds one TCP (and UDP) socket per thread.
 * Returns NULL on failure with a one-line reason in err[0..errlen).
 * Main thread, before any worker exists.
 */
struct dp_kernel *dp_kernel_create(const struct dp_kernel_config *cfg,
				   char *err, size_t errlen);

/*
 * Starts the worker threads (they inherit the caller's signal mask: block
 * SIGTERM/SIGINT first). Returns 0 once every worker has its mc_worker and
 * is serving, or -errno (no worker left running). Main thread, once.
 */
int dp_kernel_start(struct dp_kernel *k, struct mc_server *s);

/* Asks every worker to stop, and joins them: connections are closed and
 * each mc_worker destroyed on its own thread. Main thread; idempotent. */
void dp_kernel_stop(struct dp_kernel *k);

/* Stops if needed, closes the sockets, frees. Accepts NULL; sets *k NULL. */
void dp_kernel_destroy(struct dp_kernel **k);

/*
 * mc_server_config.transport_stats: "settings" (ports, listen address,
 * backlog), "conns" (one block per socket, like memcached's 'stats conns')
 * and NULL (transport counters). Any worker thread; 'arg' is the dp_kernel.
 */
int dp_kernel_stats(void *arg, const char *group, mc_stat_fn emit,
		    void *emit_arg);

#endif /* DPCACHE_DATAPLANE_KERNEL_H */
