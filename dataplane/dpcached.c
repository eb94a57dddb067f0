/*
 * dataplane/dpcached.c - the dpcached executable: parse flags, build
 * cache -> protocol server -> data plane (--net=kernel: sockets, the
 * default; --net=dpdk: EAL, ports and polling lcores, dataplane/net/dpdk.h),
 * serve until SIGTERM/SIGINT (or an enabled 'shutdown' command), tear down
 * in reverse order, exit 0.
 *
 * Exit codes: 0 clean shutdown (and -h, -V), 1 startup failure (cannot
 * bind, no memory), 2 bad command line, and for --net=dpdk every failure
 * to bring up EAL or the ports (bad EAL argument, no port, no hugepages, a
 * port that cannot be configured).
 *
 * Cluster (--cluster): a control/node.h node is created before the data plane
 * (whose serving threads route through it) and started after it; the admin
 * endpoint (--admin) serves /metrics from the same counters as 'stats'.
 *
 * Signals: SIGTERM and SIGINT are blocked before any thread starts, so
 * every thread inherits the mask and only the main thread's sigwait() sees
 * them; workers never get interrupted by them.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache.h"
#include "control/metrics.h"
#include "control/node.h"
#include "dataplane/kernel/kernel.h"
#include "dataplane/memcache/mc.h"
#include "dataplane/options.h"
#ifdef DPCACHE_HAVE_DPDK
#include "dataplane/net/dpdk.h"
#include "dataplane/net/fault.h"
#endif

#define PROG "dpcached"

/* mc_server_config.on_shutdown: a worker thread got 'shutdown'. The main
 * thread's sigwait() does the rest, exactly as for a SIGTERM. */
static void request_shutdown(void *arg)
{
	(void)arg;
	kill(getpid(), SIGTERM);
}

static void print_banner(const struct dp_settings *set)
{
	char udp[16];

	if (set->udp_port)
		snprintf(udp, sizeof(udp), "%u", set->udp_port);
	else
		snprintf(udp, sizeof(udp), "off");
	fprintf(stderr,
		PROG " %s: listening on %s tcp %u udp %s, %u threads, %u MB, "
		"-c %u, -I %zu%s%s\n",
		DPCACHE_VERSION, set->listen_addr, set->tcp_port, udp,
		set->threads, set->memory_mb, set->max_conns, set->item_size_max,
		set->no_evict ? ", no evictions" : "",
		set->enable_shutdown ? ", shutdown enabled" : "");
}

/*
 * -u: memcached's rule. Started as root, switch to 'user' once the sockets
 * are bound (so ports below 1024 still work) and before any worker runs;
 * started as anyone else, -u is ignored. Returns 0, or -1 with a message.
 */
static int drop_privileges(const char *user)
{
	struct passwd *pw;

	if (user[0] == '\0' || (getuid() != 0 && geteuid() != 0))
		return 0;
	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		fprintf(stderr, PROG ": -u: no such user '%s'\n", user);
		return -1;
	}
	/* Supplementary groups first, while we still may change them. */
	if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		fprintf(stderr, PROG ": -u: cannot become '%s': %s\n", user,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* SIGTERM and SIGINT are blocked before any thread exists (the cache's
 * sweeper, EAL's lcores, the kernel workers), so every thread inherits the
 * mask and only wait_for_stop() sees them. */
static void block_stop_signals(sigset_t *sigs)
{
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(sigs);
	sigaddset(sigs, SIGTERM);
	sigaddset(sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, sigs, NULL);
}

static void wait_for_stop(const struct dp_settings *set, const sigset_t *sigs)
{
	int sig = 0;

	while (sigwait(sigs, &sig) != 0)
		;
	if (set->verbose >= 1)
		fprintf(stderr, PROG ": %s, shutting down\n",
			sig == SIGINT ? "SIGINT" : "SIGTERM");
}

/* The item store, sized by -m/-I/-M, with room for 'workers' serving
 * threads plus helpers. NULL (reported) on failure. */
static struct cache *create_cache(const struct dp_settings *set,
				  unsigned workers)
{
	struct cache_config cc;
	struct cache *cache;

	memset(&cc, 0, sizeof(cc));
	cc.mem_limit = (size_t)set->memory_mb * 1024 * 1024;
	cc.item_size_max = set->item_size_max;
	cc.no_evict = set->no_evict;
	cc.max_threads = workers + 8;
	cache = cache_create(&cc);
	if (cache == NULL)
		fprintf(stderr, PROG ": cannot create the cache: %s\n",
			strerror(errno));
	return cache;
}

/* The protocol server over 'cache', with the backend's stats hook. NULL
 * (reported) on failure. */
static struct mc_server *create_server(const struct dp_settings *set,
				       struct cache *cache, unsigned workers,
				       mc_stats_group_fn transport_stats,
				       void *transport_arg)
{
	struct mc_server_config sc;
	struct mc_server *server;

	memset(&sc, 0, sizeof(sc));
	sc.cache = cache;
	sc.item_size_max = set->item_size_max;
	sc.shutdown_enabled = set->enable_shutdown;
	sc.udp_enabled = set->udp_port != 0;
	sc.verbosity = set->verbose;
	sc.max_conns = set->max_conns;
	sc.num_threads = workers;
	sc.transport_stats = transport_stats;
	sc.transport_arg = transport_arg;
	sc.on_shutdown = request_shutdown;
	server = mc_server_create(&sc);
	if (server == NULL)
		fprintf(stderr, PROG ": cannot create the protocol server\n");
	return server;
}

/*
 * What one process runs besides its data plane: the cluster node and the
 * admin endpoint (both optional), and the 'stats' hook that puts the
 * cluster's group in front of the backend's.
 */
struct extras {
	struct node *node;                  /* --cluster */
	struct metrics_server *metrics;     /* --admin */
	struct mc_server *server;
	mc_stats_group_fn backend_stats;    /* the backend's transport_stats */
	void *backend_arg;
};

/* mc_server_config.transport_stats: 'stats cluster', 'stats hotkeys',
 * then the backend's. */
static int extras_stats(void *arg, const char *group, mc_stat_fn emit,
			void *emit_arg)
{
	struct extras *x = arg;

	if (group != NULL && strcmp(group, "cluster") == 0) {
		if (x->node == NULL)
			return -ENOENT;
		node_stats(x->node, emit, emit_arg);
		return 0;
	}
	if (group != NULL && strcmp(group, "hotkeys") == 0) {
		if (x->node == NULL)
			return -ENOENT;
		node_hot_stats(x->node, emit, emit_arg);
		return 0;
	}
	return x->backend_stats(x->backend_arg, group, emit, emit_arg);
}

struct collect_ctx {
	metrics_emit_fn emit;
	void *ctx;
	const char *group;
};

static void collect_line(void *arg, const char *name, const char *value)
{
	struct collect_ctx *cc = arg;

	/* 'forwarded' also names the per-peer family (peer:<id>:forwarded):
	 * as "total:" its sum keeps one series name from the first scrape
	 * (dpcache_cluster_forwarded_all, control/metrics.h). */
	if (strcmp(cc->group, "cluster") == 0 && strcmp(name, "forwarded") == 0)
		name = "total:forwarded";
	cc->emit(cc->ctx, cc->group, name, value);
}

/* The admin endpoint's scrape, on its own thread. */
static void extras_collect(void *arg, metrics_emit_fn emit, void *ctx)
{
	struct extras *x = arg;
	struct collect_ctx cc = { emit, ctx, "stats" };

	if (x->server == NULL)
		return;
	(void)mc_server_stats_emit(x->server, NULL, collect_line, &cc);
	cc.group = "dataplane";
	(void)mc_server_stats_emit(x->server, "dataplane", collect_line, &cc);
	if (x->node != NULL) {
		cc.group = "cluster";
		node_stats(x->node, collect_line, &cc);
		cc.group = "hotkeys";
		node_hot_stats(x->node, collect_line, &cc);
	}
}

/* Before the data plane: the node's routing state. 0, or -1 (reported). */
static int extras_create(struct extras *x, const struct dp_settings *set,
			 struct cache *cache)
{
	char err[256];

	if (set->cluster[0] == '\0')
		return 0;
	struct node_config nc = {
		.cache = cache,
		.zk_hosts = set->zk_hosts,
		.zk_root = set->zk_root,
		.node_id = set->node_id,
		.advertise = set->advertise,
		.admin = set->admin[0] ? set->admin : NULL,
		.weight = set->weight,
		.standby = set->standby,
		.zk_session_ms = set->zk_session_ms,
		.grace_ms = set->grace_ms,
		.migrate_rate_mb = set->migrate_rate_mb,
		.fwd_timeout_ms = set->fwd_timeout_ms,
		.hot_interval_ms = set->hot_interval_ms,
		.hot_sample = set->hot_sample,
		.replica_lease_ms = set->replica_lease_ms,
		.replica_sync = set->replica_sync,
		.verbosity = set->verbose,
	};
	hot_plan_defaults(&nc.hot_plan);
	nc.hot_plan.budget = set->hot_budget;
	nc.hot_plan.share = set->hot_share;
	nc.hot_plan.min_rate = set->hot_min_rate;
	x->node = node_create(&nc, err, sizeof(err));
	if (x->node == NULL) {
		fprintf(stderr, PROG ": --cluster: %s\n", err);
		return -1;
	}
	return 0;
}

/* After the data plane serves: ZooKeeper, the migrator, /metrics. */
static int extras_start(struct extras *x, const struct dp_settings *set)
{
	char err[256];

	if (x->node != NULL && node_start(x->node, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": --cluster: %s\n", err);
		return -1;
	}
	if (set->admin[0] != '\0') {
		x->metrics = metrics_start(set->admin, extras_collect, x, err,
					   sizeof(err));
		if (x->metrics == NULL) {
			fprintf(stderr, PROG ": --admin: %s\n", err);
			return -1;
		}
	}
	return 0;
}

/* Before the data plane stops: nothing scrapes any more. The node stops
 * after it (node_destroy), since serving threads read its stats. */
static void extras_stop(struct extras *x)
{
	metrics_stop(&x->metrics);
}

#ifdef DPCACHE_HAVE_DPDK
/*
 * --net=dpdk. EAL's main lcore is this thread: it builds everything, then
 * only waits for signals; the polling lcores serve. SIGTERM/SIGINT are
 * blocked before rte_eal_init so EAL's threads inherit the mask.
 */
static int run_dpdk(const struct dp_settings *set, char *argv0)
{
	struct dp_dpdk_config dc;
	struct cache *cache = NULL;
	struct mc_server *server = NULL;
	struct dp_dpdk *d = NULL;
	struct extras x;
	char *eal_default[2] = { argv0, NULL };
	char **eal_argv = set->eal_argc > 0 ? set->eal_argv : eal_default;
	int eal_argc = set->eal_argc > 0 ? set->eal_argc : 1;
	sigset_t sigs;
	char err[256], line[128];
	int rc, status = 1;

	memset(&dc, 0, sizeof(dc));
	if (fault_config_parse(&dc.fault, set->fault) != 0) {
		fprintf(stderr, PROG ": invalid value '%s' for --fault: expected "
			"e.g. drop=5,dup=1,reorder=2,delay=1:2000,seed=42\n",
			set->fault);
		return 2;
	}
	dc.fault_spec = set->fault;
	dc.ip = set->ip;
	dc.prefix_len = (uint8_t)set->prefix_len;
	dc.gateway = set->gateway;
	dc.tcp_port = (uint16_t)set->tcp_port;
	dc.udp_port = (uint16_t)set->udp_port;
	dc.max_conns = set->max_conns;
	dc.tcp_rto_min_us = set->tcp_rto_min_ms * 1000u;
	dc.tcp_time_wait_us = set->tcp_time_wait_ms * 1000u;
	dc.poll_idle_us = set->poll_idle_us;
	dc.verbosity = set->verbose;
	memset(&x, 0, sizeof(x));

	block_stop_signals(&sigs);

	d = dp_dpdk_create(&dc, eal_argc, eal_argv, err, sizeof(err));
	if (d == NULL) {
		fprintf(stderr, PROG ": dpdk: %s\n", err);
		return 2;
	}

	cache = create_cache(set, dp_dpdk_workers(d));
	if (cache == NULL)
		goto out;
	if (extras_create(&x, set, cache) != 0)
		goto out;
	x.backend_stats = dp_dpdk_stats;
	x.backend_arg = d;
	server = create_server(set, cache, dp_dpdk_workers(d), extras_stats, &x);
	if (server == NULL)
		goto out;
	x.server = server;
	if (x.node != NULL)
		dp_dpdk_set_cluster(d, node_cluster(x.node));

	rc = dp_dpdk_start(d, server);
	if (rc != 0) {
		fprintf(stderr, PROG ": dpdk: cannot start the polling lcores: %s\n",
			strerror(-rc));
		goto out;
	}
	if (set->verbose >= 1) {
		dp_dpdk_describe(d, line, sizeof(line));
		fprintf(stderr, PROG ": dpdk: %s\n", line);
	}
	if (extras_start(&x, set) != 0)
		goto out;

	wait_for_stop(set, &sigs);
	status = 0;
out:
	/* The admin endpoint, the lcores (they free their mc_workers and
	 * read the node's stats until then), the node (agent, migrator), then
	 * the protocol and the cache, then ports and EAL. */
	extras_stop(&x);
	dp_dpdk_stop(d);
	node_destroy(&x.node);
	mc_server_destroy(&server);
	cache_destroy(&cache);
	dp_dpdk_destroy(&d);
	return status;
}
#endif

int main(int argc, char **argv)
{
	struct dp_settings set;
	struct dp_kernel_config kc;
	struct cache *cache = NULL;
	struct mc_server *server = NULL;
	struct dp_kernel *kernel = NULL;
	struct extras x;
	sigset_t sigs;
	char err[256];
	int rc, status = 1;

	memset(&x, 0, sizeof(x));
	if (dp_options_parse(&set, argc, argv, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\nTry '" PROG " --help' for the options.\n",
			err);
		return 2;
	}
	if (set.help) {
		dp_options_usage(stdout, PROG);
		return 0;
	}
	if (set.version) {
		printf(PROG " %s\n", DPCACHE_VERSION);
		return 0;
	}
	if (set.net == DP_NET_DPDK) {
#ifdef DPCACHE_HAVE_DPDK
		return run_dpdk(&set, argv[0]);
#else
		fprintf(stderr, PROG ": --net=dpdk: this dpcached was built "
			"without DPDK (install libdpdk-dev and rebuild)\n");
		return 2;
#endif
	}

	block_stop_signals(&sigs);
	cache = create_cache(&set, set.threads);
	if (cache == NULL)
		goto out;
	if (extras_create(&x, &set, cache) != 0)
		goto out;

	memset(&kc, 0, sizeof(kc));
	kc.listen_addr = set.listen_addr;
	kc.tcp_port = (uint16_t)set.tcp_port;
	kc.udp_port = (uint16_t)set.udp_port;
	kc.threads = set.threads;
	kc.max_conns = set.max_conns;
	kc.backlog = (int)set.backlog;
	kc.verbosity = set.verbose;
	kc.cluster = x.node != NULL ? node_cluster(x.node) : NULL;
	kernel = dp_kernel_create(&kc, err, sizeof(err));
	if (kernel == NULL) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	if (drop_privileges(set.user) != 0)
		goto out;

	x.backend_stats = dp_kernel_stats;
	x.backend_arg = kernel;
	server = create_server(&set, cache, set.threads, extras_stats, &x);
	if (server == NULL)
		goto out;
	x.server = server;

	rc = dp_kernel_start(kernel, server);
	if (rc != 0) {
		fprintf(stderr, PROG ": cannot start the workers: %s\n",
			strerror(-rc));
		goto out;
	}
	if (set.verbose >= 1)
		print_banner(&set);
	if (extras_start(&x, &set) != 0)
		goto out;

	wait_for_stop(&set, &sigs);
	status = 0;
out:
	/* Reverse order of creation; every destroy accepts NULL. */
	extras_stop(&x);
	dp_kernel_stop(kernel);
	dp_kernel_destroy(&kernel);
	node_destroy(&x.node);
	mc_server_destroy(&server);
	cache_destroy(&cache);
	return status;
}
