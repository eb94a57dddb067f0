/*
 * tests/dataplane/test_options.c - dpcached's command line (options.c):
 * defaults, every flag in short and long form, size suffixes, and bad
 * values that must be refused with a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dataplane/memcache/mc.h"
#include "dataplane/options.h"

#define MAX_ARGS 32

/* Parses a NULL-terminated list of arguments (argv[0] is added). */
static int parse_list(struct dp_settings *s, char *err, size_t errlen,
		      const char *first, va_list ap)
{
	/* getopt may permute argv, so it gets writable copies. */
	static char words[MAX_ARGS][128];
	char *argv[MAX_ARGS + 1];
	int argc = 0;

	snprintf(words[argc], sizeof(words[argc]), "dpcached");
	argv[argc] = words[argc];
	argc++;
	for (const char *a = first; a != NULL; a = va_arg(ap, const char *)) {
		assert_true(argc < MAX_ARGS);
		snprintf(words[argc], sizeof(words[argc]), "%s", a);
		argv[argc] = words[argc];
		argc++;
	}
	argv[argc] = NULL;
	return dp_options_parse(s, argc, argv, err, errlen);
}

/* parse_ok(&s, "-p", "1234", NULL): must succeed. */
static void parse_ok(struct dp_settings *s, const char *first, ...)
{
	char err[256];
	va_list ap;
	int rc;

	va_start(ap, first);
	rc = parse_list(s, err, sizeof(err), first, ap);
	va_end(ap);
	if (rc != 0)
		print_error("unexpected parse error: %s\n", err);
	assert_int_equal(rc, 0);
}

/* parse_bad("expected words", "-p", "x", NULL): must fail, and the message
 * must contain 'needle'. */
static void parse_bad(const char *needle, const char *first, ...)
{
	struct dp_settings s;
	char err[256];
	va_list ap;
	int rc;

	va_start(ap, first);
	rc = parse_list(&s, err, sizeof(err), first, ap);
	va_end(ap);
	assert_int_not_equal(rc, 0);
	assert_true(err[0] != '\0');
	if (strstr(err, needle) == NULL)
		print_error("message '%s' lacks '%s'\n", err, needle);
	assert_non_null(strstr(err, needle));
}

static void test_defaults(void **state)
{
	struct dp_settings s;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	parse_ok(&s, NULL);
	assert_int_equal(s.tcp_port, 11211);
	assert_int_equal(s.udp_port, 0);
	assert_string_equal(s.listen_addr, "127.0.0.1");
	assert_int_equal(s.memory_mb, 64);
	assert_int_equal(s.max_conns, 1024);
	assert_int_equal(s.item_size_max, 1024 * 1024);
	assert_int_equal(s.backlog, 1024);
	assert_int_equal(s.verbose, 0);
	assert_false(s.no_evict);
	assert_false(s.enable_shutdown);
	assert_false(s.help);
	assert_false(s.version);
	if (cpus > MC_MAX_WORKERS)
		cpus = MC_MAX_WORKERS;
	assert_int_equal(s.threads, cpus < 1 ? 1 : cpus);
}

static void test_short_flags(void **state)
{
	struct dp_settings s;

	parse_ok(&s, "-p", "2345", "-U", "3456", "-l", "0.0.0.0", "-m", "128",
		 "-c", "77", "-t", "3", "-I", "2m", "-b", "16", "-M", "-A", "-v",
		 NULL);
	assert_int_equal(s.tcp_port, 2345);
	assert_int_equal(s.udp_port, 3456);
	assert_string_equal(s.listen_addr, "0.0.0.0");
	assert_int_equal(s.memory_mb, 128);
	assert_int_equal(s.max_conns, 77);
	assert_int_equal(s.threads, 3);
	assert_int_equal(s.item_size_max, 2 * 1024 * 1024);
	assert_int_equal(s.backlog, 16);
	assert_true(s.no_evict);
	assert_true(s.enable_shutdown);
	assert_int_equal(s.verbose, 1);
}

static void test_long_flags(void **state)
{
	struct dp_settings s;

	parse_ok(&s, "--port=2345", "--udp-port", "3456", "--listen=::1",
		 "--memory-limit=256", "--conn-limit", "5", "--threads=2",
		 "--max-item-size=512k", "--listen-backlog=8",
		 "--disable-evictions", "--enable-shutdown", "--verbose",
		 "--verbose", NULL);
	assert_int_equal(s.tcp_port, 2345);
	assert_int_equal(s.udp_port, 3456);
	assert_string_equal(s.listen_addr, "::1");
	assert_int_equal(s.memory_mb, 256);
	assert_int_equal(s.max_conns, 5);
	assert_int_equal(s.threads, 2);
	assert_int_equal(s.item_size_max, 512 * 1024);
	assert_int_equal(s.backlog, 8);
	assert_true(s.no_evict);
	assert_true(s.enable_shutdown);
	assert_int_equal(s.verbose, 2);
}

static void test_verbosity(void **state)
{
	struct dp_settings s;

	parse_ok(&s, "-vv", NULL);
	assert_int_equal(s.verbose, 2);
	parse_ok(&s, "-v", "-v", "-v", NULL);
	assert_int_equal(s.verbose, 3);
	/* Flags combine like getopt's: -vM */
	parse_ok(&s, "-vM", NULL);
	assert_int_equal(s.verbose, 1);
	assert_true(s.no_evict);
}

/* -u is memcached's: a user to become when started as root. */
static void test_user(void **state)
{
	struct dp_settings s;

	parse_ok(&s, NULL);
	assert_string_equal(s.user, "");
	parse_ok(&s, "-u", "nobody", NULL);
	assert_string_equal(s.user, "nobody");
	parse_ok(&s, "--user=memcache", NULL);
	assert_string_equal(s.user, "memcache");
	parse_bad("invalid user name", "-u", "", NULL);
	parse_bad("needs an argument", "-u", NULL);
}

static void test_help_version(void **state)
{
	struct dp_settings s;

	parse_ok(&s, "-h", NULL);
	assert_true(s.help);
	parse_ok(&s, "--help", NULL);
	assert_true(s.help);
	parse_ok(&s, "-V", NULL);
	assert_true(s.version);
	parse_ok(&s, "--version", NULL);
	assert_true(s.version);
	/* -h wins over otherwise conflicting flags, like memcached. */
	parse_ok(&s, "-h", "-I", "64m", "-m", "1", NULL);
	assert_true(s.help);
}

static void test_size_suffixes(void **state)
{
	struct dp_settings s;

	parse_ok(&s, "-I", "1024", NULL);
	assert_int_equal(s.item_size_max, 1024);
	parse_ok(&s, "-I", "1k", NULL);
	assert_int_equal(s.item_size_max, 1024);
	parse_ok(&s, "-I", "4K", NULL);
	assert_int_equal(s.item_size_max, 4096);
	parse_ok(&s, "-I", "3M", NULL);
	assert_int_equal(s.item_size_max, 3 * 1024 * 1024);
	parse_ok(&s, "-m", "2048", "-I", "1g", NULL);
	assert_int_equal(s.item_size_max, 1024u * 1024 * 1024);
	parse_ok(&s, "-m", "2048", "-I", "1G", NULL);
	assert_int_equal(s.item_size_max, 1024u * 1024 * 1024);
	parse_ok(&s, "-m", "1", NULL);   /* default -I 1m fits -m 1 */
	assert_int_equal(s.memory_mb, 1);
}

static void test_ranges(void **state)
{
	struct dp_settings s;

	parse_ok(&s, "-p", "65535", NULL);
	assert_int_equal(s.tcp_port, 65535);
	parse_ok(&s, "-p", "0", "-U", "11211", NULL);   /* UDP only */
	assert_int_equal(s.tcp_port, 0);
	parse_ok(&s, "-t", "1", NULL);
	assert_int_equal(s.threads, 1);
	parse_ok(&s, "-t", "64", NULL);
	assert_int_equal(s.threads, MC_MAX_WORKERS);
	parse_ok(&s, "-c", "1", NULL);
	assert_int_equal(s.max_conns, 1);
}

static void test_bad_values(void **state)
{
	parse_bad("-p/--port", "-p", "65536", NULL);
	parse_bad("'abc'", "-p", "abc", NULL);
	parse_bad("-p/--port", "-p", "-5", NULL);
	parse_bad("-p/--port", "-p", "", NULL);
	parse_bad("-p/--port", "-p", "12 ", NULL);
	parse_bad("-p/--port", "-p", "99999999999999999999999", NULL);
	parse_bad("-U/--udp-port", "--udp-port=70000", NULL);
	parse_bad("-t/--threads", "-t", "0", NULL);
	parse_bad("-t/--threads", "-t", "65", NULL);
	parse_bad("-m/--memory-limit", "-m", "0", NULL);
	parse_bad("-m/--memory-limit", "-m", "5x", NULL);
	parse_bad("-c/--conn-limit", "-c", "0", NULL);
	parse_bad("-c/--conn-limit", "-c", "5x", NULL);
	parse_bad("-I/--max-item-size", "-I", "1000", NULL);
	parse_bad("-I/--max-item-size", "-I", "0", NULL);
	parse_bad("-I/--max-item-size", "-I", "2g", NULL);
	parse_bad("-I/--max-item-size", "-I", "5x", NULL);
	parse_bad("-I/--max-item-size", "-I", "1.5m", NULL);
	parse_bad("-I/--max-item-size", "-I", "1mm", NULL);
	parse_bad("-I/--max-item-size", "-I", "18446744073709551615k", NULL);
	parse_bad("-b/--listen-backlog", "-b", "0", NULL);
	parse_bad("-l/--listen", "-l", "", NULL);
	parse_bad("only one listen address", "-l", "127.0.0.1,10.0.0.1", NULL);
	parse_bad("-l/--listen", "-l", "a b", NULL);
}

static void test_cross_checks(void **state)
{
	/* -I above -m */
	parse_bad("cannot be larger than", "-m", "1", "-I", "2m", NULL);
	parse_bad("cannot be larger than", "-m", "64", "-I", "65m", NULL);
	/* nothing to listen on */
	parse_bad("nothing to listen on", "-p", "0", NULL);
	parse_bad("nothing to listen on", "-p", "0", "-U", "0", NULL);
}

static void test_missing_argument(void **state)
{
	parse_bad("-p/--port", "-p", NULL);
	parse_bad("-I/--max-item-size", "--max-item-size", NULL);
	parse_bad("needs an argument", "-t", NULL);
}

static void test_unknown_and_unsupported(void **state)
{
	parse_bad("unknown option '-x'", "-x", NULL);
	parse_bad("unknown option '--bogus'", "--bogus", NULL);
	parse_bad("unexpected argument 'extra'", "extra", NULL);
	parse_bad("not supported", "-d", NULL);
	parse_bad("not supported", "--daemon", NULL);
	parse_bad("not supported", "-s", "/tmp/sock", NULL);
	parse_bad("not supported", "-o", "modern", NULL);
	parse_bad("not supported", "-S", NULL);
	parse_bad("not supported", "--enable-ssl", NULL);
}

/* Parsing twice in one process must not leak getopt state. */
static void test_reparse(void **state)
{
	struct dp_settings s;

	parse_ok(&s, "-p", "1111", "-v", NULL);
	parse_ok(&s, "-p", "2222", NULL);
	assert_int_equal(s.tcp_port, 2222);
	assert_int_equal(s.verbose, 0);
}

/* Asserts that --help mentions each of the NUL-separated words. */
static void assert_usage_mentions(const char *words)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	dp_options_usage(f, "dpcached");
	fclose(f);
	for (const char *w = words; *w; w += strlen(w) + 1)
		assert_non_null(strstr(text, w));
	free(text);
}

static void test_usage_lists_every_flag(void **state)
{
	assert_usage_mentions("--port\0--udp-port\0--listen\0--memory-limit\0"
			      "--conn-limit\0--threads\0--max-item-size\0"
			      "--verbose\0--help\0--version\0--disable-evictions\0"
			      "--enable-shutdown\0(default: 11211)\0(default: 1m)\0");
}

/* --net=dpdk and its flags; the kernel backend stays the default. */
static void test_dpdk_defaults(void **state)
{
	struct dp_settings s;

	parse_ok(&s, NULL);
	assert_int_equal(s.net, DP_NET_KERNEL);
	assert_int_equal(s.tcp_rto_min_ms, 200);
	assert_int_equal(s.tcp_time_wait_ms, 1000);
	assert_int_equal(s.poll_idle_us, 0);
	assert_string_equal(s.fault, "");
	assert_int_equal(s.eal_argc, 0);
	assert_null(s.eal_argv);
	parse_ok(&s, "--net=kernel", NULL);
	assert_int_equal(s.net, DP_NET_KERNEL);
}

static void test_dpdk_flags(void **state)
{
	struct dp_settings s;

	parse_ok(&s, "--net=dpdk", "--ip=198.18.0.1/24", "--gateway=198.18.0.254",
		 "-p", "11311", "-U", "11312", "--fault=drop=5,seed=1",
		 "--tcp-rto-min-ms=50", "--tcp-time-wait-ms", "300",
		 "--poll-idle-us=50", NULL);
	assert_int_equal(s.net, DP_NET_DPDK);
	assert_string_equal(s.ip_text, "198.18.0.1/24");
	assert_int_equal(s.ip, 0xc6120001u);
	assert_int_equal(s.prefix_len, 24);
	assert_int_equal(s.gateway, 0xc61200feu);
	assert_int_equal(s.tcp_port, 11311);
	assert_int_equal(s.udp_port, 11312);
	assert_string_equal(s.fault, "drop=5,seed=1");
	assert_int_equal(s.tcp_rto_min_ms, 50);
	assert_int_equal(s.tcp_time_wait_ms, 300);
	assert_int_equal(s.poll_idle_us, 50);
	assert_int_equal(s.gateway != 0, 1);
	/* No gateway: off-link peers unreachable. A /32 has no subnet. */
	parse_ok(&s, "--net", "dpdk", "--ip", "10.1.2.3/32", NULL);
	assert_int_equal(s.ip, 0x0a010203u);
	assert_int_equal(s.prefix_len, 32);
	assert_int_equal(s.gateway, 0);
}

/* Everything after the first "--" is EAL's, untouched and in order, with
 * argv[0] in front; our flags before it are still parsed. */
static void test_dpdk_eal_args(void **state)
{
	struct dp_settings s;

	parse_ok(&s, "--net=dpdk", "--ip=198.18.0.1/24", "-v", "--", "-l", "0-2",
		 "--no-huge", "-m", "512", "--vdev=net_af_packet0,iface=vdp0",
		 "-v", NULL);
	assert_int_equal(s.verbose, 1);
	assert_int_equal(s.eal_argc, 8);
	assert_string_equal(s.eal_argv[0], "dpcached");
	assert_string_equal(s.eal_argv[1], "-l");
	assert_string_equal(s.eal_argv[2], "0-2");
	assert_string_equal(s.eal_argv[3], "--no-huge");
	assert_string_equal(s.eal_argv[4], "-m");
	assert_string_equal(s.eal_argv[5], "512");
	assert_string_equal(s.eal_argv[6], "--vdev=net_af_packet0,iface=vdp0");
	assert_string_equal(s.eal_argv[7], "-v");
	assert_null(s.eal_argv[8]);
	/* EAL's -m is not ours: -m stays at its default. */
	assert_int_equal(s.memory_mb, 64);
	/* "--" with nothing after it: EAL gets argv[0] alone. */
	parse_ok(&s, "--net=dpdk", "--ip=198.18.0.1/24", "--", NULL);
	assert_int_equal(s.eal_argc, 1);
}

static void test_dpdk_bad(void **state)
{
	parse_bad("expected kernel or dpdk", "--net=xdp", NULL);
	parse_bad("needs --ip", "--net=dpdk", NULL);
	parse_bad("for --ip", "--net=dpdk", "--ip=198.18.0.1", NULL);
	parse_bad("for --ip", "--net=dpdk", "--ip=198.18.0.1/33", NULL);
	parse_bad("for --ip", "--net=dpdk", "--ip=198.18.0.1/0", NULL);
	parse_bad("for --ip", "--net=dpdk", "--ip=198.18.0/24", NULL);
	parse_bad("for --ip", "--net=dpdk", "--ip=198.18.0.1/2x", NULL);
	parse_bad("for --ip", "--net=dpdk", "--ip=host.example/24", NULL);
	parse_bad("for --ip", "--net=dpdk", "--ip=198.18.0.0/24", NULL);
	parse_bad("for --ip", "--net=dpdk", "--ip=198.18.0.255/24", NULL);
	parse_bad("for --ip", "--net=dpdk", "--ip=127.0.0.1/8", NULL);
	parse_bad("for --ip", "--net=dpdk", "--ip=224.0.0.1/24", NULL);
	parse_bad("for --gateway", "--net=dpdk", "--ip=198.18.0.1/24",
		  "--gateway=198.18.1.1", NULL);
	parse_bad("for --gateway", "--net=dpdk", "--ip=198.18.0.1/24",
		  "--gateway=198.18.0.1", NULL);
	parse_bad("for --gateway", "--net=dpdk", "--ip=198.18.0.1/24",
		  "--gateway=nope", NULL);
	parse_bad("-u/--user is not supported with --net=dpdk", "--net=dpdk",
		  "--ip=198.18.0.1/24", "-u", "nobody", NULL);
	parse_bad("for --tcp-rto-min-ms", "--tcp-rto-min-ms=0", NULL);
	parse_bad("for --poll-idle-us", "--poll-idle-us=-1", NULL);
	/* DPDK-only flags and EAL arguments are refused by the kernel backend. */
	parse_bad("--ip needs --net=dpdk", "--ip=198.18.0.1/24", NULL);
	parse_bad("--gateway needs --net=dpdk", "--gateway=198.18.0.2", NULL);
	parse_bad("--fault needs --net=dpdk", "--fault=drop=1", NULL);
	parse_bad("need --net=dpdk", "--", "-l", "0-1", NULL);
	/* A "--" as the value of a flag that needs one. */
	parse_bad("needs an argument", "--net=dpdk", "--ip", "--", NULL);
}

static void test_dpdk_usage(void **state)
{
	assert_usage_mentions("--net=<kernel|dpdk>\0--ip=<addr/prefix>\0"
			      "--gateway\0--fault\0--tcp-rto-min-ms\0"
			      "--tcp-time-wait-ms\0--poll-idle-us\0"
			      "(default: kernel)\0(default: 200)\0-- EAL_ARGS\0");
}

/* --cluster and its companions. */
static void test_cluster_flags(void **state)
{
	struct dp_settings s;

	parse_ok(&s, NULL);
	assert_string_equal(s.cluster, "");
	assert_int_equal(s.weight, 1);
	assert_int_equal(s.zk_session_ms, 6000);
	assert_int_equal(s.grace_ms, 5000);
	assert_int_equal(s.migrate_rate_mb, 64);
	assert_int_equal(s.fwd_timeout_ms, 1000);

	parse_ok(&s, "-p", "21001", "--cluster=127.0.0.1:2181,10.0.0.2:2182/dpc/a",
		 "--node-id=n1.a-b_c", "--advertise=198.18.0.5:21001",
		 "--weight=3", "--standby", "--admin=127.0.0.1:9100",
		 "--zk-session-ms=1500", "--grace-ms=0", "--migrate-rate=8",
		 "--forward-timeout-ms=250", NULL);
	assert_string_equal(s.zk_hosts, "127.0.0.1:2181,10.0.0.2:2182");
	assert_string_equal(s.zk_root, "/dpc/a");
	assert_string_equal(s.node_id, "n1.a-b_c");
	assert_string_equal(s.advertise, "198.18.0.5:21001");
	assert_int_equal(s.weight, 3);
	assert_true(s.standby);
	assert_string_equal(s.admin, "127.0.0.1:9100");
	assert_int_equal(s.zk_session_ms, 1500);
	assert_int_equal(s.grace_ms, 0);
	assert_int_equal(s.migrate_rate_mb, 8);
	assert_int_equal(s.fwd_timeout_ms, 250);

	/* --advertise defaults to -l:-p when -l is one address. */
	parse_ok(&s, "-l", "127.0.0.1", "-p", "21002", "--cluster=h:1/r",
		 "--node-id=x", NULL);
	assert_string_equal(s.advertise, "127.0.0.1:21002");
	/* --admin alone works for a single node. */
	parse_ok(&s, "--admin=[::1]:9100", NULL);
	assert_string_equal(s.admin, "[::1]:9100");
}

static void test_cluster_bad(void **state)
{
	parse_bad("--node-id needs --cluster", "--node-id=a", NULL);
	parse_bad("--advertise needs --cluster", "--advertise=1.2.3.4:5", NULL);
	parse_bad("--standby needs --cluster", "--standby", NULL);
	parse_bad("for --cluster", "--cluster=127.0.0.1:2181", "--node-id=a", NULL);
	parse_bad("for --cluster", "--cluster=127.0.0.1:2181/", "--node-id=a", NULL);
	parse_bad("for --cluster", "--cluster=/dpc", "--node-id=a", NULL);
	parse_bad("ZooKeeper server 'h'", "--cluster=h/r", "--node-id=a", NULL);
	parse_bad("ZooKeeper server 'h:0'", "--cluster=h:0/r", "--node-id=a", NULL);
	parse_bad("needs --node-id", "--cluster=h:1/r", NULL);
	parse_bad("for --node-id", "--cluster=h:1/r", "--node-id=a b", NULL);
	parse_bad("for --node-id", "--cluster=h:1/r",
		  "--node-id=0123456789012345678901234567890123456789012345678901234567890123",
		  NULL);
	parse_bad("needs --advertise", "-l", "0.0.0.0", "--cluster=h:1/r",
		  "--node-id=a", NULL);
	parse_bad("needs --advertise", "-l", "localhost", "--cluster=h:1/r",
		  "--node-id=a", NULL);
	parse_bad("for --advertise", "--cluster=h:1/r", "--node-id=a",
		  "--advertise=host.example:11211", NULL);
	parse_bad("for --advertise", "--cluster=h:1/r", "--node-id=a",
		  "--advertise=1.2.3.4", NULL);
	parse_bad("needs a TCP port", "-p", "0", "-U", "11211",
		  "--cluster=h:1/r", "--node-id=a", NULL);
	parse_bad("for --weight", "--weight=0", NULL);
	parse_bad("for --weight", "--weight=1001", NULL);
	parse_bad("for --admin", "--admin=9100", NULL);
	parse_bad("for --zk-session-ms", "--zk-session-ms=10", NULL);
}

static void test_cluster_usage(void **state)
{
	assert_usage_mentions("--cluster=<host:port,...>/<root>\0--node-id=<id>\0"
			      "--advertise=<addr:port>\0--weight\0--standby\0"
			      "--admin=<addr:port>\0--grace-ms\0--migrate-rate\0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cluster_flags),
		cmocka_unit_test(test_cluster_bad),
		cmocka_unit_test(test_cluster_usage),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_short_flags),
		cmocka_unit_test(test_long_flags),
		cmocka_unit_test(test_verbosity),
		cmocka_unit_test(test_user),
		cmocka_unit_test(test_help_version),
		cmocka_unit_test(test_size_suffixes),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_cross_checks),
		cmocka_unit_test(test_missing_argument),
		cmocka_unit_test(test_unknown_and_unsupported),
		cmocka_unit_test(test_reparse),
		cmocka_unit_test(test_usage_lists_every_flag),
		cmocka_unit_test(test_dpdk_defaults),
		cmocka_unit_test(test_dpdk_flags),
		cmocka_unit_test(test_dpdk_eal_args),
		cmocka_unit_test(test_dpdk_bad),
		cmocka_unit_test(test_dpdk_usage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
