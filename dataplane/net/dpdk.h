/*
 * dataplane/net/dpdk.h - the DPDK backend of dpcached: EAL, ports, one
 * polling lcore per RX/TX queue pair, each running its own net_stack
 * (stack.h) with the memcached sessions on top (serve.c).
 *
 * Lifecycle, all on the main thread (EAL's main lcore, which never polls):
 *   d = dp_dpdk_create(cfg, eal_argc, eal_argv, err)   EAL init, ports
 *                                   configured and started, pools, rings
 *   s = mc_server_create(...)       with transport_stats = dp_dpdk_stats,
 *                                   transport_arg = d,
 *                                   num_threads = dp_dpdk_workers(d)
 *   dp_dpdk_start(d, s)             launches the polling lcores; each builds
 *                                   its mc_worker and stack on itself
 *   ... wait for SIGTERM/SIGINT ...
 *   dp_dpdk_stop(d)                 stop flag, rte_eal_mp_wait_lcore; every
 *                                   lcore tore down its sessions and
 *                                   mc_worker on its own thread
 *   mc_server_destroy(&s); cache_destroy(&c);
 *   dp_dpdk_destroy(&d)             ports stopped and closed, rte_eal_cleanup
 *
 * Block SIGTERM/SIGINT before dp_dpdk_create: EAL's threads inherit the
 * mask, so only the main thread's sigwait() sees them.
 */
#ifndef DPCACHE_NET_DPDK_H
#define DPCACHE_NET_DPDK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/memcache/mc.h"
#include "dataplane/net/fault.h"

struct dp_dpdk_config {
	uint32_t ip;                /* our address, host order */
	uint8_t prefix_len;         /* on-link subnet */
	uint32_t gateway;           /* host order; 0 = none */
	uint16_t tcp_port;          /* 0 = no TCP */
	uint16_t udp_port;          /* 0 = no UDP */
	unsigned max_conns;         /* -c: client connections, all lcores together */
	uint32_t tcp_rto_min_us;
	uint32_t tcp_time_wait_us;
	uint32_t poll_idle_us;      /* 0 = busy polling */
	struct fault_config fault;  /* inactive = no injector */
	const char *fault_spec;     /* as typed, for 'stats settings'; may be NULL */
	int verbosity;              /* -v count */
};

struct cluster;
struct dp_dpdk;

/*
 * Initialises EAL with argv[0..argc) (argv[0] is the program name), finds
 * the ports, checks the queue layout, creates the per-lcore mempools and
 * hand-off rings, configures and starts every port. Returns NULL with a
 * one-line reason in err[0..errlen) (every failure is a startup error:
 * dpcached exits 2). Main thread, once per process (EAL cannot be
 * re-initialised).
 */
struct dp_dpdk *dp_dpdk_create(const struct dp_dpdk_config *cfg, int argc,
			       char **argv, char *err, size_t errlen);

/* Polling lcores (every EAL lcore but the main one). */
unsigned dp_dpdk_workers(const struct dp_dpdk *d);

/* One line for -v: "serving on ADDR port P (N polling lcores)". */
void dp_dpdk_describe(const struct dp_dpdk *d, char *buf, size_t len);

/*
 * Launches one polling loop per worker lcore and returns 0 once each has
 * its mc_worker and stack, or -errno (every lcore stopped again). Main
 * thread, once.
 */
int dp_dpdk_start(struct dp_dpdk *d, struct mc_server *s);

/* A cluster node (--cluster): before dp_dpdk_start, the routing state every
 * polling lcore makes its cluster_worker from. */
void dp_dpdk_set_cluster(struct dp_dpdk *d, struct cluster *c);

/* Sets the stop flag and waits for every lcore; each frees its sessions and
 * mc_worker before it returns. Main thread; idempotent. */
void dp_dpdk_stop(struct dp_dpdk *d);

/* Stops if needed, frees the stacks, stops and closes the ports, frees the
 * pools and rings, rte_eal_cleanup. Accepts NULL; sets *d NULL. Main
 * thread, after mc_server_destroy is fine (no lcore runs by then). */
void dp_dpdk_destroy(struct dp_dpdk **d);

/*
 * mc_server_config.transport_stats: "dataplane" (per-lcore counters of the
 * stack, TCP, steering, fault injector and sessions, "coreN:<name>", and
 * their sums, "total:<name>"), "settings" (the backend's settings) and NULL
 * (a few totals). Any polling lcore; plain reads of other lcores' counters.
 */
int dp_dpdk_stats(void *arg, const char *group, mc_stat_fn emit,
		  void *emit_arg);

/* ---- internal: serve.c, the sessions above one lcore's stack ----------- */

struct net_stack;
struct net_app;
struct dp_serve;

/* Shared by every lcore's dp_serve; owned by the backend. */
struct dp_serve_shared {
	struct mc_server *server;
	unsigned max_conns;         /* -c */
	/* atomic (relaxed): open client connections. Written by every lcore
	 * on every accept and close: on a cache line of its own, away from
	 * what the lcores only read. */
	uint64_t nconns __attribute__((aligned(64)));
	int verbosity;
	/* A cluster node: each lcore makes its cluster_worker (routing,
	 * forwarder). NULL = single node. */
	struct cluster *cluster;
};

#define DP_SERVE_COUNTERS(X)                                                  \
	X(conns_opened, "client connections accepted")                       \
	X(conns_rejected, "connections refused: over -c")                    \
	X(conns_closed, "client sessions ended")                             \
	X(conn_yields, "connections put back for the next iteration")        \
	X(conn_input_overflow, "connections closed: request line too long")  \
	X(udp_requests, "UDP request datagrams handled")                     \
	X(udp_replies, "UDP reply datagrams sent")                           \
	X(udp_reply_drops, "UDP replies not sent (no ARP entry, no buffer)")

struct dp_serve_counters {
#define DP_SERVE_FIELD(name, desc) uint64_t name;
	DP_SERVE_COUNTERS(DP_SERVE_FIELD)
#undef DP_SERVE_FIELD
};

/* On the polling lcore: creates its mc_worker (urcu-qsbr registration).
 * 'ctr' is written by this lcore only and read by any (stats); it is the
 * backend's, so it outlives the dp_serve. NULL on failure. */
struct dp_serve *dp_serve_create(struct dp_serve_shared *sh,
				 struct dp_serve_counters *ctr);
/* The callbacks to give net_stack_create, with the dp_serve as app_arg. */
const struct net_app *dp_serve_app(void);
/* Tells the serve layer its stack (after net_stack_create). */
void dp_serve_attach(struct dp_serve *sv, struct net_stack *st);
/* The mc_worker's cache context, for quiescent/offline calls. */
struct cache_thread *dp_serve_cache_thread(struct dp_serve *sv);
/* Once per polling iteration, before net_stack_flush: resumes connections
 * that had work left (fairness bound, paused output). */
void dp_serve_poll(struct dp_serve *sv);
/* True if dp_serve_poll has work queued (the lcore must not sleep). */
bool dp_serve_busy(const struct dp_serve *sv);
/* On the polling lcore, at shutdown: resets every connection (RST), so
 * clients see the end at once instead of timing out; call net_stack_flush
 * and send the frames afterwards. */
void dp_serve_abort_all(struct dp_serve *sv);
/* On the polling lcore, after its last stack call: frees every session and
 * the mc_worker. The stack's connections keep dangling ctx pointers, so the
 * stack may only be destroyed (no callbacks) afterwards. Accepts NULL. */
void dp_serve_destroy(struct dp_serve **sv);

#endif /* DPCACHE_NET_DPDK_H */
