/*
 * dataplane/options.h - dpcached's command line, memcached-compatible.
 *
 * Every flag is declared once, in the table in options.c (name, short flag,
 * type, default, help); the same table drives parsing (getopt_long) and
 * --help. Flags of stock memcached that dpcached does not implement are in
 * the table too, so they get a clear "not supported" error instead of
 * "unknown option".
 *
 * Parsing never prints and never exits: it fills a struct dp_settings or
 * returns an error message, and main() decides what to print and the exit
 * code (2 for a bad command line). So the unit tests can drive it.
 */
#ifndef DPCACHE_DATAPLANE_OPTIONS_H
#define DPCACHE_DATAPLANE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define DP_ADDR_MAX 64          /* longest -l value, NUL included */
#define DP_USER_MAX 64          /* longest -u value, NUL included */
#define DP_TEXT_MAX 256         /* longest --ip/--gateway/--fault/--cluster value */

/* --net: which data plane serves the sockets. */
enum dp_net {
	DP_NET_KERNEL,              /* kernel sockets (dataplane/kernel/) */
	DP_NET_DPDK,                /* DPDK and our own stack (dataplane/net/) */
};

/* The settings of one dpcached process, after defaults and validation. */
struct dp_settings {
	unsigned tcp_port;          /* -p; 0 = no TCP */
	unsigned udp_port;          /* -U; 0 = no UDP */
	char listen_addr[DP_ADDR_MAX]; /* -l: one IPv4/IPv6 literal or host name */
	unsigned memory_mb;         /* -m, megabytes */
	unsigned max_conns;         /* -c */
	unsigned threads;           /* -t; default: online CPUs, at most MC_MAX_WORKERS */
	size_t item_size_max;       /* -I, bytes */
	unsigned backlog;           /* -b, listen() backlog */
	int verbose;                /* -v count */
	bool no_evict;              /* -M */
	bool enable_shutdown;       /* -A */
	char user[DP_USER_MAX];     /* -u: run as this user (root only); "" = stay */
	/* The DPDK backend (--net=dpdk); ignored by the kernel backend, which
	 * refuses them when given. */
	enum dp_net net;            /* --net */
	char ip_text[DP_TEXT_MAX];  /* --ip=ADDR/PREFIX, as typed */
	unsigned ip;                /* ... parsed: host byte order */
	unsigned prefix_len;        /* ... 1..32 */
	char gateway_text[DP_TEXT_MAX]; /* --gateway, as typed; "" = none */
	unsigned gateway;           /* ... host byte order; 0 = none */
	char fault[DP_TEXT_MAX];    /* --fault spec (fault.h); "" = off */
	unsigned tcp_rto_min_ms;    /* --tcp-rto-min-ms */
	unsigned tcp_time_wait_ms;  /* --tcp-time-wait-ms */
	unsigned poll_idle_us;      /* --poll-idle-us: sleep after idle polls; 0 = busy */
	/* The cluster (--cluster; control/CLUSTER.md). Empty cluster = a
	 * single node that never talks to ZooKeeper. */
	char cluster[DP_TEXT_MAX];  /* --cluster=HOST:PORT[,...]/ROOT, as typed */
	char zk_hosts[DP_TEXT_MAX]; /* ... the host list */
	char zk_root[DP_TEXT_MAX];  /* ... the root znode, "/..." */
	char node_id[DP_TEXT_MAX];  /* --node-id */
	char advertise[DP_TEXT_MAX]; /* --advertise=ADDR:PORT (default: -l:-p) */
	char admin[DP_TEXT_MAX];    /* --admin=ADDR:PORT: /metrics; "" = off */
	unsigned weight;            /* --weight */
	bool standby;               /* --standby: wait for 'dpcachectl add' */
	unsigned zk_session_ms;     /* --zk-session-ms */
	unsigned grace_ms;          /* --grace-ms */
	unsigned migrate_rate_mb;   /* --migrate-rate, MB/s */
	unsigned fwd_timeout_ms;    /* --forward-timeout-ms */
	/* Hot keys (control/CLUSTER.md, "Hot keys"). */
	unsigned hot_interval_ms;   /* --hot-interval-ms */
	unsigned hot_budget;        /* --hot-budget: keys replicated at most */
	char hot_share_text[DP_TEXT_MAX];  /* --hot-share, as typed */
	double hot_share;           /* ... parsed, in (0, 1] */
	unsigned hot_min_rate;      /* --hot-min-rate, reads/s */
	unsigned hot_sample;        /* --hot-sample: 1 in N; 0 = off */
	unsigned replica_lease_ms;  /* --replica-lease-ms */
	char replica_consistency[DP_TEXT_MAX];  /* --replica-consistency */
	bool replica_sync;          /* ... == "sync" */
	/* Everything after "--": rte_eal_init's arguments, pointing into the
	 * argv given to dp_options_parse. eal_argv[0] is that argv[0]. */
	int eal_argc;               /* 0 = no "--" */
	char **eal_argv;
	bool help;                  /* -h: print usage, exit 0 */
	bool version;               /* -V: print version, exit 0 */
};

/*
 * Parses argv into *s (defaults first, then the flags, then cross checks
 * such as -I against -m). Returns 0, or -EINVAL with a one-line message
 * (no trailing newline) in err[0..errlen). argv may be permuted (GNU
 * getopt). Not thread-safe: uses getopt's globals. Any thread.
 *
 * The first "--" ends dpcached's flags; what follows is kept for EAL in
 * s->eal_argc/eal_argv (with --net=dpdk only: the kernel backend refuses
 * it). argv[argc] must be NULL, as main's is; argv's first "--" slot is
 * overwritten with argv[0], so eal_argv is a complete argument vector.
 */
int dp_options_parse(struct dp_settings *s, int argc, char **argv,
		     char *err, size_t errlen);

/* Fills *s with the defaults alone. */
void dp_options_defaults(struct dp_settings *s);

/* Prints --help, generated from the option table. */
void dp_options_usage(FILE *f, const char *prog);

#endif /* DPCACHE_DATAPLANE_OPTIONS_H */
