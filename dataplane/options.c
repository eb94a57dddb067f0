/*
 * dataplane/options.c - dpcached's flags, declared once as a table.
 *
 * The table below is the only place a flag is described. dp_options_parse()
 * builds getopt_long's short and long option lists from it, stores each value
 * through the entry's offset into struct dp_settings, and dp_options_usage()
 * prints --help from the same entries. Defaults are written as the text a
 * user would type and go through the same parser, so the default shown by
 * --help is exactly the default used.
 */
#include "dataplane/options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataplane/memcache/mc.h"
#include "replication/hotset.h"
#include "replication/map.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

enum dp_opt_type {
	DP_OPT_UINT,        /* unsigned, decimal, in [min, max] */
	DP_OPT_SIZE,        /* size_t, decimal with optional k/m/g suffix */
	DP_OPT_ADDR,        /* char[DP_ADDR_MAX] */
	DP_OPT_USER,        /* char[DP_USER_MAX], a user name */
	DP_OPT_BOOL,        /* bool, no argument: sets true */
	DP_OPT_COUNT,       /* int, no argument: +1 per use (-vv) */
	DP_OPT_NET,         /* enum dp_net: "kernel" or "dpdk" */
	DP_OPT_TEXT,        /* char[DP_TEXT_MAX]; checked by validate() */
	DP_OPT_UNSUPPORTED, /* memcached flag we refuse; help = why */
};

struct dp_option {
	const char *name;       /* long name, without "--" */
	int short_flag;         /* 0 = long only */
	enum dp_opt_type type;
	const char *arg;        /* argument name in --help; NULL = no argument */
	const char *def;        /* default, as typed; NULL = none (or computed) */
	uint64_t min, max;      /* DP_OPT_UINT / DP_OPT_SIZE range */
	size_t offset;          /* into struct dp_settings */
	const char *help;
};

#define OFF(field) offsetof(struct dp_settings, field)
#define KIB ((uint64_t)1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

/* Reported for -t when no -t is given; the value is computed. */
#define THREADS_DEFAULT_TEXT "number of online CPUs"

static const struct dp_option dp_options[] = {
	{ "port", 'p', DP_OPT_UINT, "<num>", "11211", 0, 65535, OFF(tcp_port),
	  "TCP port to listen on (0 = off)" },
	{ "udp-port", 'U', DP_OPT_UINT, "<num>", "0", 0, 65535, OFF(udp_port),
	  "UDP port to listen on (0 = off)" },
	{ "listen", 'l', DP_OPT_ADDR, "<addr>", "127.0.0.1", 0, 0, OFF(listen_addr),
	  "interface to listen on (one IPv4/IPv6 address or host name)" },
	{ "memory-limit", 'm', DP_OPT_UINT, "<num>", "64", 1, 4194304, OFF(memory_mb),
	  "item memory in megabytes" },
	{ "conn-limit", 'c', DP_OPT_UINT, "<num>", "1024", 1, 1048576, OFF(max_conns),
	  "max simultaneous connections" },
	{ "threads", 't', DP_OPT_UINT, "<num>", NULL, 1, MC_MAX_WORKERS, OFF(threads),
	  "number of worker threads (default: " THREADS_DEFAULT_TEXT ")" },
	{ "max-item-size", 'I', DP_OPT_SIZE, "<num>", "1m", 1 * KIB, 1 * GIB,
	  OFF(item_size_max),
	  "max item size, k/m/g suffixes (min: 1k, max: 1g, at most -m)" },
	{ "listen-backlog", 'b', DP_OPT_UINT, "<num>", "1024", 1, 65535, OFF(backlog),
	  "listen() backlog queue limit" },
	{ "disable-evictions", 'M', DP_OPT_BOOL, NULL, NULL, 0, 0, OFF(no_evict),
	  "return an error on memory exhausted instead of evicting" },
	{ "enable-shutdown", 'A', DP_OPT_BOOL, NULL, NULL, 0, 0, OFF(enable_shutdown),
	  "enable the ascii \"shutdown\" command" },
	{ "user", 'u', DP_OPT_USER, "<user>", NULL, 0, 0, OFF(user),
	  "when started as root, run as <user> once the ports are bound (as memcached);"
	  " refused with --net=dpdk (EAL keeps needing root)" },
	{ "net", 0, DP_OPT_NET, "<kernel|dpdk>", "kernel", 0, 0, OFF(net),
	  "data plane: kernel sockets, or DPDK with EAL arguments after --" },
	{ "ip", 0, DP_OPT_TEXT, "<addr/prefix>", NULL, 0, 0, OFF(ip_text),
	  "dpdk: our IPv4 address and on-link prefix, e.g. 198.18.0.1/24 (required)" },
	{ "gateway", 0, DP_OPT_TEXT, "<addr>", NULL, 0, 0, OFF(gateway_text),
	  "dpdk: IPv4 next hop for off-link clients (default: none)" },
	{ "fault", 0, DP_OPT_TEXT, "<spec>", NULL, 0, 0, OFF(fault),
	  "dpdk: fault injection on every RX/TX burst, e.g. drop=5,dup=1,reorder=2,"
	  "delay=1:2000,seed=42 (default: off)" },
	{ "tcp-rto-min-ms", 0, DP_OPT_UINT, "<num>", "200", 1, 60000,
	  OFF(tcp_rto_min_ms), "dpdk: TCP minimum retransmission timeout, ms" },
	{ "tcp-time-wait-ms", 0, DP_OPT_UINT, "<num>", "1000", 1, 240000,
	  OFF(tcp_time_wait_ms), "dpdk: TCP TIME_WAIT length, ms" },
	{ "poll-idle-us", 0, DP_OPT_UINT, "<num>", "0", 0, 1000000,
	  OFF(poll_idle_us),
	  "dpdk: sleep this long after a run of empty polls (0 = busy polling)" },
	{ "cluster", 0, DP_OPT_TEXT, "<host:port,...>/<root>", NULL, 0, 0,
	  OFF(cluster),
	  "join the cluster kept in ZooKeeper at these hosts under this root znode"
	  " (default: a single node, no ZooKeeper)" },
	{ "node-id", 0, DP_OPT_TEXT, "<id>", NULL, 0, 0, OFF(node_id),
	  "cluster: this node's name, 1-63 of [A-Za-z0-9_.-] (required)" },
	{ "advertise", 0, DP_OPT_TEXT, "<addr:port>", NULL, 0, 0, OFF(advertise),
	  "cluster: the address clients and peers use for this node"
	  " (default: -l:-p when -l is one IP address)" },
	{ "weight", 0, DP_OPT_UINT, "<num>", "1", 1, 1000, OFF(weight),
	  "cluster: ketama weight (share of keys)" },
	{ "standby", 0, DP_OPT_BOOL, NULL, NULL, 0, 0, OFF(standby),
	  "cluster: register but own no keys until 'dpcachectl add'" },
	{ "admin", 0, DP_OPT_TEXT, "<addr:port>", NULL, 0, 0, OFF(admin),
	  "HTTP admin endpoint: Prometheus /metrics and /healthz (default: off)" },
	{ "zk-session-ms", 0, DP_OPT_UINT, "<num>", "6000", 400, 120000,
	  OFF(zk_session_ms), "cluster: ZooKeeper session timeout, ms" },
	{ "grace-ms", 0, DP_OPT_UINT, "<num>", "5000", 0, 3600000, OFF(grace_ms),
	  "cluster: a node gone from ZooKeeper this long leaves the map" },
	{ "migrate-rate", 0, DP_OPT_UINT, "<num>", "64", 1, 100000,
	  OFF(migrate_rate_mb), "cluster: migration stream budget, MB/s per node" },
	{ "forward-timeout-ms", 0, DP_OPT_UINT, "<num>", "1000", 10, 60000,
	  OFF(fwd_timeout_ms),
	  "cluster: a forwarded request not answered this fast fails" },
	{ "hot-interval-ms", 0, DP_OPT_UINT, "<num>", "1000", 100, 60000,
	  OFF(hot_interval_ms),
	  "cluster: hot keys are measured and the replica set revised this often" },
	{ "hot-budget", 0, DP_OPT_UINT, "<num>", "64", 0, HOT_SET_KEYS_MAX,
	  OFF(hot_budget),
	  "cluster: at most this many hot keys get replicas (0 = detect only)" },
	{ "hot-share", 0, DP_OPT_TEXT, "<fraction>", "0.05", 0, 0,
	  OFF(hot_share_text),
	  "cluster: a key gets a replica per this fraction of the mean node load"
	  " it carries" },
	{ "hot-min-rate", 0, DP_OPT_UINT, "<num>", "100", 0, 100000000,
	  OFF(hot_min_rate),
	  "cluster: reads/s under which a key is never replicated" },
	{ "hot-sample", 0, DP_OPT_UINT, "<num>", "8", 0, 65536, OFF(hot_sample),
	  "cluster: 1 request in <num> feeds the hot-key sketch (0 = off)" },
	{ "replica-lease-ms", 0, DP_OPT_UINT, "<num>", "1000", 10, 600000,
	  OFF(replica_lease_ms),
	  "cluster: a replica serves its copy this long after fetching it;"
	  " the bound on staleness when an invalidation is lost" },
	{ "replica-consistency", 0, DP_OPT_TEXT, "<async|sync>", "async", 0, 0,
	  OFF(replica_consistency),
	  "cluster: sync = a write to a replicated key is acknowledged only"
	  " after every replica dropped its copy" },
	{ "verbose", 'v', DP_OPT_COUNT, NULL, NULL, 0, 0, OFF(verbose),
	  "verbose: errors/warnings (-v), connection open/close (-vv)" },
	{ "help", 'h', DP_OPT_BOOL, NULL, NULL, 0, 0, OFF(help),
	  "print this help and exit" },
	{ "version", 'V', DP_OPT_BOOL, NULL, NULL, 0, 0, OFF(version),
	  "print version and exit" },

	/* memcached flags that dpcached does not implement. */
	{ "unix-socket", 's', DP_OPT_UNSUPPORTED, "<file>", NULL, 0, 0, 0,
	  "UNIX sockets are not supported; use -l/-p" },
	{ "unix-mask", 'a', DP_OPT_UNSUPPORTED, "<mask>", NULL, 0, 0, 0,
	  "UNIX sockets are not supported" },
	{ "daemon", 'd', DP_OPT_UNSUPPORTED, NULL, NULL, 0, 0, 0,
	  "run dpcached under a service manager instead" },
	{ "enable-coredumps", 'r', DP_OPT_UNSUPPORTED, NULL, NULL, 0, 0, 0,
	  "set the core limit with ulimit -c instead" },
	{ "lock-memory", 'k', DP_OPT_UNSUPPORTED, NULL, NULL, 0, 0, 0,
	  "memory locking is not supported" },
	{ "license", 'i', DP_OPT_UNSUPPORTED, NULL, NULL, 0, 0, 0,
	  "see the LICENSE of the source tree" },
	{ "pidfile", 'P', DP_OPT_UNSUPPORTED, "<file>", NULL, 0, 0, 0,
	  "pid files go with -d, which is not supported" },
	{ "slab-growth-factor", 'f', DP_OPT_UNSUPPORTED, "<num>", NULL, 0, 0, 0,
	  "dpcached has no slab classes (items come from jemalloc)" },
	{ "slab-min-size", 'n', DP_OPT_UNSUPPORTED, "<bytes>", NULL, 0, 0, 0,
	  "dpcached has no slab classes (items come from jemalloc)" },
	{ "enable-largepages", 'L', DP_OPT_UNSUPPORTED, NULL, NULL, 0, 0, 0,
	  "large pages are not supported" },
	{ "prefix-delimiter", 'D', DP_OPT_UNSUPPORTED, "<char>", NULL, 0, 0, 0,
	  "per-prefix stats are not supported" },
	{ "max-reqs-per-event", 'R', DP_OPT_UNSUPPORTED, "<num>", NULL, 0, 0, 0,
	  "the per-connection budget is fixed" },
	{ "disable-cas", 'C', DP_OPT_UNSUPPORTED, NULL, NULL, 0, 0, 0,
	  "CAS is always enabled" },
	{ "protocol", 'B', DP_OPT_UNSUPPORTED, "<name>", NULL, 0, 0, 0,
	  "the protocol is always auto-negotiated" },
	{ "enable-sasl", 'S', DP_OPT_UNSUPPORTED, NULL, NULL, 0, 0, 0,
	  "SASL is not supported" },
	{ "disable-flush-all", 'F', DP_OPT_UNSUPPORTED, NULL, NULL, 0, 0, 0,
	  "flush_all is always enabled" },
	{ "disable-dumping", 'X', DP_OPT_UNSUPPORTED, NULL, NULL, 0, 0, 0,
	  "cachedump is not implemented" },
	{ "disable-watch", 'W', DP_OPT_UNSUPPORTED, NULL, NULL, 0, 0, 0,
	  "watch is not implemented" },
	{ "auth-file", 'Y', DP_OPT_UNSUPPORTED, "<file>", NULL, 0, 0, 0,
	  "authentication is not supported" },
	{ "memory-file", 'e', DP_OPT_UNSUPPORTED, "<file>", NULL, 0, 0, 0,
	  "restartable caches are not supported" },
	{ "enable-ssl", 'Z', DP_OPT_UNSUPPORTED, NULL, NULL, 0, 0, 0,
	  "TLS is not supported" },
	{ "extended", 'o', DP_OPT_UNSUPPORTED, "<opts>", NULL, 0, 0, 0,
	  "extended options are not supported" },
	{ "napi-ids", 'N', DP_OPT_UNSUPPORTED, "<num>", NULL, 0, 0, 0,
	  "NAPI ids are not supported" },
};

/* getopt_long's val for an entry: the short flag, or 256 + index. */
static int opt_val(size_t i)
{
	return dp_options[i].short_flag ? dp_options[i].short_flag
					: 256 + (int)i;
}

static const struct dp_option *opt_by_val(int val)
{
	for (size_t i = 0; i < ARRAY_SIZE(dp_options); i++)
		if (opt_val(i) == val)
			return &dp_options[i];
	return NULL;
}

static const struct dp_option *opt_by_name(const char *name, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(dp_options); i++)
		if (strlen(dp_options[i].name) == len &&
		    memcmp(dp_options[i].name, name, len) == 0)
			return &dp_options[i];
	return NULL;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* "-p/--port" for messages. */
static const char *opt_label(const struct dp_option *o, char *buf, size_t len)
{
	if (o->short_flag)
		snprintf(buf, len, "-%c/--%s", o->short_flag, o->name);
	else
		snprintf(buf, len, "--%s", o->name);
	return buf;
}

/*
 * Parses a decimal number, optionally followed by one k/m/g suffix (powers
 * of 1024, as memcached's -I). Rejects signs, blanks, empty strings, other
 * trailing characters and overflow. Returns 0 or -EINVAL.
 */
static int parse_number(const char *text, bool allow_suffix, uint64_t *out)
{
	const char *p = text;
	uint64_t v = 0, mult = 1;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	if (*p != '\0') {
		if (!allow_suffix || p[1] != '\0')
			return -EINVAL;
		switch (*p) {
		case 'k': case 'K': mult = KIB; break;
		case 'm': case 'M': mult = MIB; break;
		case 'g': case 'G': mult = GIB; break;
		default: return -EINVAL;
		}
	}
	if (v > UINT64_MAX / mult)
		return -EINVAL;
	*out = v * mult;
	return 0;
}

/* -l: one address. Accepts what getaddrinfo may resolve; the bind reports
 * names that do not resolve. */
static int check_addr(const char *text, char *err, size_t errlen,
		      const char *label)
{
	size_t len = strlen(text);

	if (len == 0 || len >= DP_ADDR_MAX) {
		set_err(err, errlen, "invalid address '%s' for %s", text, label);
		return -EINVAL;
	}
	if (strchr(text, ',') != NULL) {
		set_err(err, errlen,
			"%s: only one listen address is supported, got '%s'",
			label, text);
		return -EINVAL;
	}
	for (const char *p = text; *p; p++) {
		char c = *p;
		bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			  (c >= 'A' && c <= 'Z') || c == '.' || c == ':' ||
			  c == '-' || c == '_' || c == '%';
		if (!ok) {
			set_err(err, errlen, "invalid address '%s' for %s",
				text, label);
			return -EINVAL;
		}
	}
	return 0;
}

/* Stores one value through the entry's offset. */
static int apply(const struct dp_option *o, const char *arg,
		 struct dp_settings *s, char *err, size_t errlen)
{
	char *field = (char *)s + o->offset;
	char label[48];
	uint64_t v;

	opt_label(o, label, sizeof(label));
	switch (o->type) {
	case DP_OPT_UINT:
	case DP_OPT_SIZE:
		if (parse_number(arg, o->type == DP_OPT_SIZE, &v) != 0 ||
		    v < o->min || v > o->max) {
			if (o->type == DP_OPT_SIZE)
				set_err(err, errlen,
					"invalid value '%s' for %s: expected %" PRIu64
					"k..%" PRIu64 "m (k/m/g suffixes allowed)",
					arg, label, o->min / KIB, o->max / MIB);
			else
				set_err(err, errlen,
					"invalid value '%s' for %s: expected an integer in %"
					PRIu64 "..%" PRIu64, arg, label, o->min, o->max);
			return -EINVAL;
		}
		if (o->type == DP_OPT_SIZE)
			*(size_t *)field = (size_t)v;
		else
			*(unsigned *)field = (unsigned)v;
		return 0;
	case DP_OPT_ADDR:
		if (check_addr(arg, err, errlen, label) != 0)
			return -EINVAL;
		snprintf(field, DP_ADDR_MAX, "%s", arg);
		return 0;
	case DP_OPT_USER:
		if (arg[0] == '\0' || strlen(arg) >= DP_USER_MAX) {
			set_err(err, errlen, "invalid user name '%s' for %s",
				arg, label);
			return -EINVAL;
		}
		snprintf(field, DP_USER_MAX, "%s", arg);
		return 0;
	case DP_OPT_BOOL:
		*(bool *)field = true;
		return 0;
	case DP_OPT_COUNT:
		*(int *)field += 1;
		return 0;
	case DP_OPT_NET:
		if (strcmp(arg, "kernel") == 0)
			*(enum dp_net *)field = DP_NET_KERNEL;
		else if (strcmp(arg, "dpdk") == 0)
			*(enum dp_net *)field = DP_NET_DPDK;
		else {
			set_err(err, errlen,
				"invalid value '%s' for %s: expected kernel or dpdk",
				arg, label);
			return -EINVAL;
		}
		return 0;
	case DP_OPT_TEXT:
		if (arg[0] == '\0' || strlen(arg) >= DP_TEXT_MAX) {
			set_err(err, errlen, "invalid value '%s' for %s", arg,
				label);
			return -EINVAL;
		}
		snprintf(field, DP_TEXT_MAX, "%s", arg);
		return 0;
	case DP_OPT_UNSUPPORTED:
		set_err(err, errlen, "option %s is not supported: %s", label,
			o->help);
		return -EINVAL;
	}
	return -EINVAL;
}

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	if (n > MC_MAX_WORKERS)
		return MC_MAX_WORKERS;
	return (unsigned)n;
}

void dp_options_defaults(struct dp_settings *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < ARRAY_SIZE(dp_options); i++) {
		const struct dp_option *o = &dp_options[i];
		/* The table's defaults are valid by construction. */
		if (o->def != NULL && apply(o, o->def, s, NULL, 0) != 0)
			abort();
	}
	s->threads = default_threads();
}

/* A dotted-quad IPv4 address, to host order. Returns 0 or -EINVAL. */
static int parse_ipv4(const char *text, unsigned *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, text, &a) != 1)
		return -EINVAL;
	*out = ntohl(a.s_addr);
	return 0;
}

/*
 * --ip=ADDR/PREFIX and --gateway. The address must be usable as a host
 * address on its subnet (not the network or broadcast address of a /1../30,
 * not 0/8, loopback, multicast or class E), and the gateway must be on-link.
 */
static int check_dpdk_addrs(struct dp_settings *s, char *err, size_t errlen)
{
	char addr[DP_TEXT_MAX];
	const char *slash = strchr(s->ip_text, '/');
	uint64_t plen;
	uint32_t mask, ip;

	if (s->ip_text[0] == '\0') {
		set_err(err, errlen, "--net=dpdk needs --ip=ADDR/PREFIX");
		return -EINVAL;
	}
	if (slash == NULL || (size_t)(slash - s->ip_text) >= sizeof(addr) ||
	    parse_number(slash + 1, false, &plen) != 0 || plen < 1 || plen > 32)
		goto bad_ip;
	memcpy(addr, s->ip_text, (size_t)(slash - s->ip_text));
	addr[slash - s->ip_text] = '\0';
	if (parse_ipv4(addr, &s->ip) != 0)
		goto bad_ip;
	ip = s->ip;
	mask = plen == 32 ? UINT32_MAX : ~(UINT32_MAX >> plen);
	if ((ip >> 24) == 0 || (ip >> 24) == 127 || (ip >> 28) >= 14 ||
	    (plen <= 30 && ((ip & ~mask) == 0 || (ip & ~mask) == ~mask)))
		goto bad_ip;
	s->prefix_len = (unsigned)plen;
	s->gateway = 0;
	if (s->gateway_text[0] != '\0') {
		if (parse_ipv4(s->gateway_text, &s->gateway) != 0 ||
		    s->gateway == s->ip || (s->gateway & mask) != (ip & mask) ||
		    (s->gateway >> 28) >= 14 || s->gateway == 0) {
			set_err(err, errlen,
				"invalid value '%s' for --gateway: expected an IPv4 "
				"address on the --ip subnet, other than ours",
				s->gateway_text);
			return -EINVAL;
		}
	}
	return 0;
bad_ip:
	set_err(err, errlen,
		"invalid value '%s' for --ip: expected a host IPv4 address and "
		"prefix, e.g. 198.18.0.1/24", s->ip_text);
	return -EINVAL;
}

/* Flags of one backend given to the other. */
static int check_backend(struct dp_settings *s, char *err, size_t errlen)
{
	static const char *const dpdk_only[] = {
		"--ip", "--gateway", "--fault",
	};
	const char *given = NULL;

	if (s->net == DP_NET_DPDK) {
		if (s->user[0] != '\0') {
			set_err(err, errlen,
				"-u/--user is not supported with --net=dpdk: EAL and "
				"the ports need root for the whole run");
			return -EINVAL;
		}
		return check_dpdk_addrs(s, err, errlen);
	}
	if (s->ip_text[0] != '\0')
		given = dpdk_only[0];
	else if (s->gateway_text[0] != '\0')
		given = dpdk_only[1];
	else if (s->fault[0] != '\0')
		given = dpdk_only[2];
	if (given != NULL) {
		set_err(err, errlen, "%s needs --net=dpdk", given);
		return -EINVAL;
	}
	if (s->eal_argc > 0) {
		set_err(err, errlen,
			"arguments after '--' are for DPDK's EAL: they need --net=dpdk");
		return -EINVAL;
	}
	return 0;
}

/* "host:port" with a numeric IPv4/IPv6 literal and a port 1..65535. */
static bool host_port_ok(const char *text)
{
	const char *colon = strrchr(text, ':');
	char host[DP_TEXT_MAX];
	unsigned char buf[sizeof(struct in6_addr)];
	uint64_t port;

	if (colon == NULL || colon == text ||
	    (size_t)(colon - text) >= sizeof(host) ||
	    parse_number(colon + 1, false, &port) != 0 || port == 0 ||
	    port > 65535)
		return false;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host) - 2);
		host[strlen(host) - 2] = '\0';
		return inet_pton(AF_INET6, host, buf) == 1;
	}
	return inet_pton(AF_INET, host, buf) == 1;
}

/* --cluster and the flags that go with it. */
static int check_cluster(struct dp_settings *s, char *err, size_t errlen)
{
	if (s->cluster[0] == '\0') {
		if (s->node_id[0] != '\0' || s->advertise[0] != '\0' ||
		    s->standby) {
			set_err(err, errlen, "%s needs --cluster",
				s->node_id[0] ? "--node-id" :
				s->advertise[0] ? "--advertise" : "--standby");
			return -EINVAL;
		}
		return 0;
	}
	const char *slash = strchr(s->cluster, '/');
	if (slash == NULL || slash == s->cluster || slash[1] == '\0' ||
	    slash[strlen(slash) - 1] == '/') {
		set_err(err, errlen,
			"invalid value '%s' for --cluster: expected "
			"HOST:PORT[,HOST:PORT...]/ROOT, e.g. 127.0.0.1:2181/dpcache",
			s->cluster);
		return -EINVAL;
	}
	memcpy(s->zk_hosts, s->cluster, (size_t)(slash - s->cluster));
	s->zk_hosts[slash - s->cluster] = '\0';
	snprintf(s->zk_root, sizeof(s->zk_root), "%s", slash);
	char hosts[DP_TEXT_MAX], *save = NULL;
	snprintf(hosts, sizeof(hosts), "%s", s->zk_hosts);
	for (char *h = strtok_r(hosts, ",", &save); h != NULL;
	     h = strtok_r(NULL, ",", &save)) {
		const char *colon = strrchr(h, ':');
		uint64_t port;
		if (colon == NULL || colon == h ||
		    parse_number(colon + 1, false, &port) != 0 || port == 0 ||
		    port > 65535) {
			set_err(err, errlen,
				"invalid ZooKeeper server '%s' in --cluster: expected "
				"HOST:PORT", h);
			return -EINVAL;
		}
	}
	if (s->node_id[0] == '\0') {
		set_err(err, errlen, "--cluster needs --node-id");
		return -EINVAL;
	}
	if (!map_id_valid(s->node_id)) {
		set_err(err, errlen,
			"invalid value '%s' for --node-id: expected 1-63 of "
			"[A-Za-z0-9_.-]", s->node_id);
		return -EINVAL;
	}
	if (s->tcp_port == 0) {
		set_err(err, errlen, "--cluster needs a TCP port (-p): peers "
			"forward over TCP");
		return -EINVAL;
	}
	if (s->advertise[0] == '\0') {
		char def[DP_TEXT_MAX];
		snprintf(def, sizeof(def), "%s:%u", s->listen_addr, s->tcp_port);
		if (!host_port_ok(def) || strcmp(s->listen_addr, "0.0.0.0") == 0 ||
		    strcmp(s->listen_addr, "::") == 0) {
			set_err(err, errlen,
				"--cluster needs --advertise=ADDR:PORT when -l is not "
				"one IP address ('%s')", s->listen_addr);
			return -EINVAL;
		}
		snprintf(s->advertise, sizeof(s->advertise), "%s", def);
	}
	if (!host_port_ok(s->advertise) || strlen(s->advertise) >= 64) {
		set_err(err, errlen,
			"invalid value '%s' for --advertise: expected a numeric "
			"IP address and port, e.g. 10.0.0.5:11211", s->advertise);
		return -EINVAL;
	}
	return 0;
}

/* The hot-key flags given as text. */
static int check_hot(struct dp_settings *s, char *err, size_t errlen)
{
	char *end = NULL;
	errno = 0;
	double share = strtod(s->hot_share_text, &end);
	if (errno != 0 || end == s->hot_share_text || *end != '\0' ||
	    !(share > 0.0 && share <= 1.0)) {
		set_err(err, errlen,
			"invalid value '%s' for --hot-share: expected a fraction"
			" in (0, 1], e.g. 0.05", s->hot_share_text);
		return -EINVAL;
	}
	s->hot_share = share;
	if (strcmp(s->replica_consistency, "async") == 0) {
		s->replica_sync = false;
	} else if (strcmp(s->replica_consistency, "sync") == 0) {
		s->replica_sync = true;
	} else {
		set_err(err, errlen,
			"invalid value '%s' for --replica-consistency: expected"
			" async or sync", s->replica_consistency);
		return -EINVAL;
	}
	return 0;
}

static int check_admin(struct dp_settings *s, char *err, size_t errlen)
{
	if (s->admin[0] != '\0' && !host_port_ok(s->admin)) {
		set_err(err, errlen,
			"invalid value '%s' for --admin: expected a numeric IP "
			"address and port, e.g. 127.0.0.1:9211", s->admin);
		return -EINVAL;
	}
	return 0;
}

/* Cross checks that involve more than one flag. */
static int validate(struct dp_settings *s, char *err, size_t errlen)
{
	if ((uint64_t)s->item_size_max > (uint64_t)s->memory_mb * MIB) {
		set_err(err, errlen,
			"-I/--max-item-size (%zu bytes) cannot be larger than "
			"-m/--memory-limit (%u MB)", s->item_size_max, s->memory_mb);
		return -EINVAL;
	}
	if (s->tcp_port == 0 && s->udp_port == 0) {
		set_err(err, errlen,
			"nothing to listen on: -p/--port and -U/--udp-port are both 0");
		return -EINVAL;
	}
	if (check_cluster(s, err, errlen) != 0 ||
	    check_hot(s, err, errlen) != 0 ||
	    check_admin(s, err, errlen) != 0)
		return -EINVAL;
	return check_backend(s, err, errlen);
}

/* getopt_long's lists, built from the table on each parse. */
static char shortopts[1 + 3 * ARRAY_SIZE(dp_options) + 1];
static struct option longopts[ARRAY_SIZE(dp_options) + 1];

static void build_getopt_lists(void)
{
	size_t n = 0;

	shortopts[n++] = ':';  /* report a missing argument as ':' */
	for (size_t i = 0; i < ARRAY_SIZE(dp_options); i++) {
		const struct dp_option *o = &dp_options[i];
		bool has_arg = o->arg != NULL;

		if (o->short_flag) {
			shortopts[n++] = (char)o->short_flag;
			if (has_arg)
				shortopts[n++] = ':';
		}
		longopts[i].name = o->name;
		longopts[i].has_arg = has_arg ? required_argument : no_argument;
		longopts[i].flag = NULL;
		longopts[i].val = opt_val(i);
	}
	shortopts[n] = '\0';
	memset(&longopts[ARRAY_SIZE(dp_options)], 0, sizeof(longopts[0]));
}

/* The option getopt just rejected, for the message. */
static void describe_bad(int argc, char **argv, char *buf, size_t len)
{
	/* getopt leaves optind past the offending word in most cases. */
	int i = optind - 1;

	if (optopt > 0 && optopt < 256)
		snprintf(buf, len, "-%c", optopt);
	else if (i >= 0 && i < argc)
		snprintf(buf, len, "%s", argv[i]);
	else
		snprintf(buf, len, "?");
}

int dp_options_parse(struct dp_settings *s, int argc, char **argv,
		     char *err, size_t errlen)
{
	char bad[64];
	int c;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	dp_options_defaults(s);
	/* The first "--" ends our flags; getopt sees only what precedes it, so
	 * it never permutes EAL's words into ours. */
	for (int i = 1; i < argc; i++) {
		if (argv[i] != NULL && strcmp(argv[i], "--") == 0) {
			argv[i] = argv[0];
			s->eal_argc = argc - i;
			s->eal_argv = &argv[i];
			argc = i;
			break;
		}
	}
	build_getopt_lists();
	optind = 0;   /* glibc: full re-initialisation, so parse may repeat */
	opterr = 0;   /* messages are ours */

	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		const struct dp_option *o;

		if (c == '?') {
			describe_bad(argc, argv, bad, sizeof(bad));
			set_err(err, errlen, "unknown option '%s'", bad);
			return -EINVAL;
		}
		if (c == ':') {
			o = opt_by_val(optopt);
			if (o == NULL) {
				/* a long option without its argument */
				const char *w = (optind - 1 >= 0 && optind - 1 < argc)
						? argv[optind - 1] : "?";
				const char *name = w + (strncmp(w, "--", 2) == 0 ? 2 : 0);
				o = opt_by_name(name, strcspn(name, "="));
			}
			if (o != NULL && o->type == DP_OPT_UNSUPPORTED)
				return apply(o, "", s, err, errlen);
			opt_label(o ? o : &dp_options[0], bad, sizeof(bad));
			set_err(err, errlen, "option %s needs an argument %s",
				o ? bad : "?", o && o->arg ? o->arg : "");
			return -EINVAL;
		}
		o = opt_by_val(c);
		if (o == NULL) {
			set_err(err, errlen, "unknown option");
			return -EINVAL;
		}
		if (apply(o, optarg, s, err, errlen) != 0)
			return -EINVAL;
	}
	if (optind < argc) {
		set_err(err, errlen, "unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (s->help || s->version)
		return 0;   /* main prints and exits; no cross checks needed */
	return validate(s, err, errlen);
}

void dp_options_usage(FILE *f, const char *prog)
{
	fprintf(f, "%s %s - a memcached-compatible cache\n", prog, DPCACHE_VERSION);
	fprintf(f, "usage: %s [options]\n"
		   "       %s --net=dpdk --ip=ADDR/PREFIX [options] -- EAL_ARGS\n"
		   "       (EAL's main lcore does the slow work; every other lcore\n"
		   "       polls one RX/TX queue pair; -t is for --net=kernel)\n\n",
		prog, prog);
	for (size_t i = 0; i < ARRAY_SIZE(dp_options); i++) {
		const struct dp_option *o = &dp_options[i];
		char left[64];

		if (o->type == DP_OPT_UNSUPPORTED)
			continue;
		if (o->short_flag)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_flag,
				 o->name, o->arg ? "=" : "", o->arg ? o->arg : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", o->name,
				 o->arg ? "=" : "", o->arg ? o->arg : "");
		fprintf(f, "  %-32s %s", left, o->help);
		if (o->def != NULL)
			fprintf(f, " (default: %s)", o->def);
		fputc('\n', f);
	}
	fprintf(f, "\nmemcached flags that %s refuses:", prog);
	for (size_t i = 0; i < ARRAY_SIZE(dp_options); i++)
		if (dp_options[i].type == DP_OPT_UNSUPPORTED)
			fprintf(f, " -%c", dp_options[i].short_flag);
	fputc('\n', f);
}
