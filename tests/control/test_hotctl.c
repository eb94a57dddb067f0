/*
 * tests/control/test_hotctl.c - the hot-key control loop (control/hotctl.c)
 * against a real ZooKeeper (tests/control/zk-server.sh on a random loopback
 * port, one server for the whole file, killed at exit even when a test
 * fails).
 *
 * Two loops (n1, n2) run in this process, each under its own cluster root
 * per test, with a 100 ms interval. This file plays their data planes:
 * drain hands out fixed counts per interval (one hot key, one cold key),
 * apply records every set, is_leader is a flag the test flips, and get_map
 * returns a stable two-node map built with map_add_node.
 *
 * Covered: the leader publishes a set with the hot key (owner from the
 * map, the other node its replica) and both nodes apply it; the reports
 * are ephemeral znodes that go at stop, and a node that stops is dropped
 * from the set; 'stats hotkeys' lines; a malformed ROOT/hot/set (and a
 * malformed report) is counted and skipped, and the next leader's version
 * still grows past the last good one; a leadership handover keeps the
 * version growing and the new leader follows the new load; a deleted
 * report comes back; the server frozen past the session timeout; bad
 * configs.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "control/hotctl.h"
#include "control/zk.h"
#include "replication/ring.h"

#ifndef ZK_SERVER_SH
#define ZK_SERVER_SH NULL
#endif

#define INTERVAL_MS 100
#define SESSION_MS  2000
#define WAIT_MS     15000    /* upper bound for anything that should happen */

/* ---- the throwaway ZooKeeper ------------------------------------------ */

static char zk_dir[256];
static char zk_script[512];
static int zk_port;
static volatile pid_t zk_pid;
static char zk_hosts[64];

static void script_path(void)
{
	const char *env = getenv("ZK_SERVER_SH");
	const char *slash;

	if (env && env[0]) {
		snprintf(zk_script, sizeof(zk_script), "%s", env);
		return;
	}
	if (ZK_SERVER_SH) {
		snprintf(zk_script, sizeof(zk_script), "%s", ZK_SERVER_SH);
		return;
	}
	/* Next to this source file (meson runs tests from the build dir and
	 * __FILE__ is relative to it). */
	slash = strrchr(__FILE__, '/');
	snprintf(zk_script, sizeof(zk_script), "%.*s/zk-server.sh",
		 slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".");
}

static bool port_free(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), rc;

	if (fd < 0)
		return false;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return rc == 0;
}

/* Runs 'zk-server.sh start'; the PID it prints is the server's. */
static int zk_server_start(void)
{
	char cmd[1024], line[64] = "";
	FILE *f;
	int status;

	snprintf(cmd, sizeof(cmd), "%s start %s %d", zk_script, zk_dir,
		 zk_port);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	status = pclose(f);
	if (status != 0 || atoi(line) <= 0)
		return -1;
	zk_pid = atoi(line);
	return 0;
}

static void zk_server_stop(void)
{
	char cmd[1024];

	if (zk_pid <= 0)
		return;
	snprintf(cmd, sizeof(cmd), "%s stop %s", zk_script, zk_dir);
	if (system(cmd) != 0)
		kill(zk_pid, SIGKILL);
	zk_pid = 0;
}

static void zk_cleanup_at_exit(void)
{
	char cmd[600];

	zk_server_stop();
	if (zk_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", zk_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "test_hotctl: could not remove %s\n",
				zk_dir);
		zk_dir[0] = '\0';
	}
}

/* A test killed by its harness still takes its server down. */
static void zk_on_signal(int sig)
{
	if (zk_pid > 0)
		kill(zk_pid, SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int group_setup(void **state)
{
	(void)state;
	script_path();
	snprintf(zk_dir, sizeof(zk_dir), "/tmp/test_hotctl.XXXXXX");
	if (!mkdtemp(zk_dir)) {
		zk_dir[0] = '\0';
		return -1;
	}
	atexit(zk_cleanup_at_exit);
	signal(SIGTERM, zk_on_signal);
	signal(SIGINT, zk_on_signal);
	signal(SIGPIPE, zk_on_signal);  /* output piped into head */
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (int tries = 0; tries < 5; tries++) {
		zk_port = 20000 + rand() % 20000;
		if (!port_free(zk_port))
			continue;
		if (zk_server_start() == 0) {
			snprintf(zk_hosts, sizeof(zk_hosts), "127.0.0.1:%d",
				 zk_port);
			return 0;
		}
	}
	fprintf(stderr, "test_hotctl: could not start ZooKeeper with %s\n",
		zk_script);
	return -1;
}

static int group_teardown(void **state)
{
	(void)state;
	zk_cleanup_at_exit();
	return 0;
}

/* ---- time --------------------------------------------------------------- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- a node: a hotctl plus its fake data plane ------------------------- */

struct node {
	char id[16];
	struct hotctl *hc;
	pthread_mutex_t lock;
	bool leader;
	struct shard_map *map;
	char hot_key[32];               /* read hot_reads times per drain */
	uint64_t hot_reads;
	uint64_t executed;              /* per drain */
	struct hot_set *applied;        /* the last set given to apply */
	unsigned napplied;
	bool versions_increasing;
};

static unsigned node_drain(void *arg, struct hot_count *out, unsigned max,
			   uint64_t *received, uint64_t *executed)
{
	struct node *n = arg;
	unsigned k = 0;

	pthread_mutex_lock(&n->lock);
	if (max >= 2) {
		memset(out, 0, 2 * sizeof(*out));
		out[0].nkey = (uint8_t)strlen(n->hot_key);
		memcpy(out[0].key, n->hot_key, out[0].nkey);
		out[0].hash = cache_hash(out[0].key, out[0].nkey);
		out[0].reads = n->hot_reads;
		out[1].nkey = 4;
		memcpy(out[1].key, "cold", 4);
		out[1].hash = cache_hash("cold", 4);
		out[1].reads = 5;
		out[1].writes = 1;
		k = 2;
	}
	*received = n->executed;
	*executed = n->executed;
	pthread_mutex_unlock(&n->lock);
	return k;
}

static void node_apply(void *arg, struct hot_set *set)
{
	struct node *n = arg;

	pthread_mutex_lock(&n->lock);
	if (n->applied && set->version <= n->applied->version)
		n->versions_increasing = false;
	hot_set_free(&n->applied);
	n->applied = set;               /* ours now */
	n->napplied++;
	pthread_mutex_unlock(&n->lock);
}

static bool node_is_leader(void *arg)
{
	struct node *n = arg;
	bool l;

	pthread_mutex_lock(&n->lock);
	l = n->leader;
	pthread_mutex_unlock(&n->lock);
	return l;
}

static struct shard_map *node_get_map(void *arg)
{
	struct node *n = arg;

	map_ref(n->map);
	return n->map;
}

static struct shard_map *two_node_map(void)
{
	struct shard_map *m = map_new();

	assert_non_null(m);
	m->epoch = 3;
	assert_int_equal(map_add_node(m, "n1", "127.0.0.1:21101", 1,
				      MAP_NODE_ACTIVE), 0);
	assert_int_equal(map_add_node(m, "n2", "127.0.0.1:21102", 1,
				      MAP_NODE_ACTIVE), 0);
	assert_int_equal(map_build_rings(m), 0);
	return m;
}

static void config(struct hotctl_config *cfg, struct node *n,
		   const char *root)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->zk_hosts = zk_hosts;
	cfg->root = root;
	cfg->node_id = n->id;
	cfg->session_timeout_ms = SESSION_MS;
	cfg->interval_ms = INTERVAL_MS;
	cfg->decay = -1;
	hot_plan_defaults(&cfg->plan);
	cfg->drain = node_drain;
	cfg->apply = node_apply;
	cfg->is_leader = node_is_leader;
	cfg->get_map = node_get_map;
	cfg->arg = n;
	/* TEST_HOTCTL_VERBOSE=2 shows the loops' events. */
	cfg->verbosity = getenv("TEST_HOTCTL_VERBOSE") ?
			 atoi(getenv("TEST_HOTCTL_VERBOSE")) : 0;
}

static void node_init(struct node *n, const char *id, bool leader,
		      struct shard_map *map)
{
	memset(n, 0, sizeof(*n));
	pthread_mutex_init(&n->lock, NULL);
	snprintf(n->id, sizeof(n->id), "%s", id);
	n->leader = leader;
	map_ref(map);
	n->map = map;
	snprintf(n->hot_key, sizeof(n->hot_key), "hotkey");
	/* 1000 reads in 100 ms: 10000/s of a node executing 20000/s: the
	 * key needs both nodes (share 0.05 of 20000 is 1000/s). */
	n->hot_reads = 1000;
	n->executed = 2000;
	n->versions_increasing = true;
}

static void node_start(struct node *n, const char *root)
{
	struct hotctl_config cfg;
	char err[160] = "";

	config(&cfg, n, root);
	n->hc = hotctl_start(&cfg, err, sizeof(err));
	if (n->hc == NULL)
		fail_msg("hotctl_start(%s): %s", n->id, err);
}

static void node_free(struct node *n)
{
	hotctl_stop(&n->hc);
	assert_null(n->hc);
	hot_set_free(&n->applied);
	map_unref(n->map);
	n->map = NULL;
	pthread_mutex_destroy(&n->lock);
}

static void node_set(struct node *n, bool leader, const char *hot_key)
{
	pthread_mutex_lock(&n->lock);
	n->leader = leader;
	if (hot_key)
		snprintf(n->hot_key, sizeof(n->hot_key), "%s", hot_key);
	pthread_mutex_unlock(&n->lock);
}

/* The applied set's version, 0 when none; key: in it, its entry copied. */
static uint64_t node_applied(struct node *n, const char *key,
			     struct hot_set_key *entry, bool *found)
{
	uint64_t v = 0;
	int i;

	pthread_mutex_lock(&n->lock);
	*found = false;
	if (n->applied) {
		v = n->applied->version;
		i = key ? hot_set_find(n->applied, key, strlen(key)) : -1;
		if (i >= 0) {
			*found = true;
			if (entry)
				*entry = n->applied->keys[i];
		}
	}
	pthread_mutex_unlock(&n->lock);
	return v;
}

/* ---- 'stats hotkeys' into text ------------------------------------------ */

struct stats_buf {
	char text[16384];
	size_t len;
};

static void stats_emit(void *arg, const char *name, const char *value)
{
	struct stats_buf *b = arg;

	b->len += (size_t)snprintf(b->text + b->len, sizeof(b->text) - b->len,
				   "%s %s\n", name, value);
}

static void node_stats(struct node *n, struct stats_buf *b)
{
	memset(b, 0, sizeof(*b));
	hotctl_stats(n->hc, stats_emit, b);
}

/* The value of one stat as a number, or -1. */
static long long stat_value(struct node *n, const char *name)
{
	struct stats_buf b;
	char pat[64];
	const char *p;

	node_stats(n, &b);
	snprintf(pat, sizeof(pat), "%s ", name);
	for (p = b.text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, pat, strlen(pat)) == 0)
			return atoll(p + strlen(pat));
	return -1;
}

/* ---- a plain ZooKeeper client for the test's own reads and writes ------- */

static struct zk *test_zk(void)
{
	struct zk_config zc;
	struct zk *z;
	uint64_t end = now_ms() + WAIT_MS;

	memset(&zc, 0, sizeof(zc));
	zc.hosts = zk_hosts;
	zc.session_timeout_ms = 4000;
	z = zk_create(&zc);
	assert_non_null(z);
	while (zk_state(z) != ZK_CONNECTED && now_ms() < end)
		sleep_ms(20);
	assert_int_equal(zk_state(z), ZK_CONNECTED);
	return z;
}

static struct hot_set *read_set(struct zk *z, const char *root)
{
	char path[128], *data;
	struct hot_set *s = NULL;
	size_t len;

	snprintf(path, sizeof(path), "%s/hot/set", root);
	if (zk_get(z, path, false, &data, &len, NULL) < 0)
		return NULL;
	if (hot_set_parse(data, len, &s, NULL, 0) != 0)
		s = NULL;
	free(data);
	return s;
}

#define WAIT_UNTIL(cond) do { \
	uint64_t end_ = now_ms() + WAIT_MS; \
	while (!(cond) && now_ms() < end_) \
		sleep_ms(20); \
	if (!(cond)) \
		fail_msg("timed out waiting for: %s", #cond); \
} while (0)

/* Both nodes applied a set in which 'key' has owner 'owner' and the other
 * node as its only replica. */
static bool applied_with(struct node *n, const char *key, const char *owner,
			 const char *replica)
{
	struct hot_set_key e;
	bool found;

	node_applied(n, key, &e, &found);
	return found && strcmp(e.owner, owner) == 0 && e.nreplicas == 1 &&
	       strcmp(e.replicas[0], replica) == 0;
}

static bool applied_empty(struct node *n, uint64_t after)
{
	bool found;
	uint64_t v;

	pthread_mutex_lock(&n->lock);
	v = n->applied && n->applied->nkeys == 0 ? n->applied->version : 0;
	pthread_mutex_unlock(&n->lock);
	(void)found;
	return v > after;
}

/* ---- tests -------------------------------------------------------------- */

static void test_bad_config(void **state)
{
	struct shard_map *m = two_node_map();
	struct hotctl_config cfg;
	struct node n;
	char err[160];

	(void)state;
	node_init(&n, "n1", false, m);
	assert_null(hotctl_start(NULL, err, sizeof(err)));
	config(&cfg, &n, "/bad/");
	assert_null(hotctl_start(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "root"));
	config(&cfg, &n, "relative");
	assert_null(hotctl_start(&cfg, err, sizeof(err)));
	config(&cfg, &n, "/h0");
	cfg.node_id = "bad id";
	assert_null(hotctl_start(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "node id"));
	config(&cfg, &n, "/h0");
	cfg.zk_hosts = "";
	assert_null(hotctl_start(&cfg, err, sizeof(err)));
	config(&cfg, &n, "/h0");
	cfg.drain = NULL;
	assert_null(hotctl_start(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "callback"));
	config(&cfg, &n, "/h0");
	cfg.plan.share = 0;
	assert_null(hotctl_start(&cfg, err, sizeof(err)));
	config(&cfg, &n, "/h0");
	cfg.decay = 1;
	assert_null(hotctl_start(&cfg, NULL, 0));
	hotctl_stop(NULL);
	{
		struct hotctl *none = NULL;

		hotctl_stop(&none);
	}
	node_free(&n);
	map_unref(m);
}

static void test_publish_apply_and_leave(void **state)
{
	struct shard_map *m = two_node_map();
	const char *owner = map_owner(m, ring_hash("hotkey", 6))->id;
	const char *other = strcmp(owner, "n1") == 0 ? "n2" : "n1";
	struct node nodes[2];
	struct zk *z = test_zk();
	struct zk_stat st;
	struct stats_buf b;
	struct hot_set *s;
	char *data;
	size_t len;
	uint64_t v;

	(void)state;
	node_init(&nodes[0], "n1", true, m);
	node_init(&nodes[1], "n2", false, m);
	node_start(&nodes[0], "/h1");
	node_start(&nodes[1], "/h1");

	/* The leader publishes; both apply: owner from the ring, the other
	 * node the replica; the cold key stays out. */
	WAIT_UNTIL(applied_with(&nodes[0], "hotkey", owner, other) &&
		   applied_with(&nodes[1], "hotkey", owner, other));
	s = read_set(z, "/h1");
	assert_non_null(s);
	assert_int_equal(s->epoch, 3);
	assert_int_equal(s->nkeys, 1);
	assert_true(s->version >= 1);
	assert_true(s->keys[0].reads > 1000);
	hot_set_free(&s);

	/* Reports: ephemeral, parseable, with this node's hot key first. */
	for (int i = 0; i < 2; i++) {
		struct hot_report *r = NULL;
		char path[400];

		snprintf(path, sizeof(path), "/h1/hot/reports/%s", nodes[i].id);
		assert_int_equal(zk_get(z, path, false, &data, &len, &st), 0);
		assert_true(st.ephemeral_owner != 0);
		assert_int_equal(hot_report_parse(data, len, &r, NULL, 0), 0);
		free(data);
		assert_string_equal(r->node, nodes[i].id);
		assert_int_equal(r->interval_ms, INTERVAL_MS);
		assert_true(r->executed > 5000 && r->executed <= 20000 * 1.5);
		assert_int_equal(r->nkeys, 2);
		assert_int_equal(r->keys[0].nkey, 6);
		assert_memory_equal(r->keys[0].key, "hotkey", 6);
		assert_memory_equal(r->keys[1].key, "cold", 4);
		hot_report_free(&r);
	}

	/* stats hotkeys */
	node_stats(&nodes[1], &b);
	assert_non_null(strstr(b.text, "hot_interval_ms 100\n"));
	assert_non_null(strstr(b.text, "hot_received_per_s "));
	assert_non_null(strstr(b.text, "hot_executed_per_s "));
	assert_non_null(strstr(b.text, "hot_set_keys 1\n"));
	assert_non_null(strstr(b.text, "hot_reports_written "));
	assert_non_null(strstr(b.text, "hot_sets_published 0\n"));
	assert_non_null(strstr(b.text, "hot_zk_errors 0\n"));
	{
		char want[128];

		snprintf(want, sizeof(want), "owner=%s replicas=%s\n", owner,
			 other);
		assert_non_null(strstr(b.text, "hotkey:0 hotkey reads="));
		assert_non_null(strstr(b.text, want));
		assert_non_null(strstr(b.text, "hotkey:1 cold reads="));
		assert_non_null(strstr(b.text, "owner=- replicas=-\n"));
	}
	assert_true(stat_value(&nodes[0], "hot_sets_published") >= 1);
	assert_true(stat_value(&nodes[0], "hot_reports_written") >= 1);
	v = (uint64_t)stat_value(&nodes[1], "hot_set_version");
	assert_true(v >= 1);

	/* n2 stops: its report goes at once, and the leader, left alone,
	 * replicates nothing. */
	hotctl_stop(&nodes[1].hc);
	assert_int_equal(zk_exists(z, "/h1/hot/reports/n2", false, NULL),
			 -ENOENT);
	WAIT_UNTIL(applied_empty(&nodes[0], v));
	hotctl_stop(&nodes[0].hc);
	assert_int_equal(zk_exists(z, "/h1/hot/reports/n1", false, NULL),
			 -ENOENT);
	/* The set stays for the next leader. */
	s = read_set(z, "/h1");
	assert_non_null(s);
	assert_int_equal(s->nkeys, 0);
	assert_true(s->version > v);
	hot_set_free(&s);
	assert_true(nodes[0].versions_increasing && nodes[1].versions_increasing);

	node_free(&nodes[0]);
	node_free(&nodes[1]);
	zk_destroy(&z);
	map_unref(m);
}

static void test_malformed(void **state)
{
	static const char garbage[] = "{\"version\": \"seven\"";
	struct shard_map *m = two_node_map();
	struct node nodes[2];
	struct zk *z = test_zk();
	const char *good;
	bool found;
	uint64_t v;

	(void)state;
	assert_int_equal(zk_put(z, "/h2/hot/set", garbage, strlen(garbage)), 0);
	node_init(&nodes[0], "n1", false, m);
	node_init(&nodes[1], "n2", false, m);
	node_start(&nodes[1], "/h2");
	/* Counted once, nothing applied. */
	WAIT_UNTIL(stat_value(&nodes[1], "hot_zk_errors") == 1);
	sleep_ms(5 * INTERVAL_MS);
	assert_int_equal(stat_value(&nodes[1], "hot_zk_errors"), 1);
	assert_int_equal(nodes[1].napplied, 0);
	assert_int_equal(stat_value(&nodes[1], "hot_set_version"), 0);

	/* A good set (written by hand, version 5) is applied on the watch. */
	good = "{\"version\":5,\"epoch\":3,\"keys\":[{\"key\":\"Zm9v\","
	       "\"owner\":\"n1\",\"replicas\":[\"n2\"],\"reads\":1,\"writes\":0}]}";
	assert_int_equal(zk_put(z, "/h2/hot/set", good, strlen(good)), 0);
	WAIT_UNTIL(node_applied(&nodes[1], "foo", NULL, &found) == 5 && found);
	/* Garbage again: counted, version 5 kept. */
	assert_int_equal(zk_put(z, "/h2/hot/set", garbage, strlen(garbage)), 0);
	WAIT_UNTIL(stat_value(&nodes[1], "hot_zk_errors") == 2);
	assert_int_equal(node_applied(&nodes[1], "foo", NULL, &found), 5);

	/* A malformed report and one under another node's name. */
	assert_int_equal(zk_put(z, "/h2/hot/reports/bogus", "[", 1), 0);
	{
		const char *r = "{\"node\":\"n7\",\"interval_ms\":100,\"received\":1,"
				"\"executed\":1,\"keys\":[]}";

		assert_int_equal(zk_put(z, "/h2/hot/reports/n9", r, strlen(r)), 0);
	}

	/* A leader now: it overwrites the garbage with a version above the
	 * last good one, which n2 applies. */
	node_set(&nodes[0], true, NULL);
	node_start(&nodes[0], "/h2");
	WAIT_UNTIL(node_applied(&nodes[1], "hotkey", NULL, &found) > 5 && found);
	v = node_applied(&nodes[1], "hotkey", NULL, &found);
	assert_int_equal(v, 6);
	assert_true(stat_value(&nodes[0], "hot_zk_errors") >= 2);
	assert_true(nodes[1].versions_increasing);

	node_free(&nodes[0]);
	node_free(&nodes[1]);
	zk_destroy(&z);
	map_unref(m);
}

static void test_handover(void **state)
{
	struct shard_map *m = two_node_map();
	struct node nodes[2];
	struct zk *z = test_zk();
	struct hot_set *s;
	bool found;
	uint64_t v1, v2;
	long long pub1;

	(void)state;
	node_init(&nodes[0], "n1", true, m);
	node_init(&nodes[1], "n2", false, m);
	node_start(&nodes[0], "/h3");
	node_start(&nodes[1], "/h3");
	WAIT_UNTIL(node_applied(&nodes[0], "hotkey", NULL, &found) > 0 && found &&
		   node_applied(&nodes[1], "hotkey", NULL, &found) > 0 && found);
	v1 = node_applied(&nodes[1], "hotkey", NULL, &found);

	/* n1 steps down, n2 leads, and the load moves to another key. */
	node_set(&nodes[0], false, "newhot");
	node_set(&nodes[1], true, "newhot");
	WAIT_UNTIL(node_applied(&nodes[0], "newhot", NULL, &found) > v1 && found &&
		   node_applied(&nodes[1], "newhot", NULL, &found) > v1 && found);
	pub1 = stat_value(&nodes[0], "hot_sets_published");
	/* The old key cools (decay 0.5 per 100 ms) and leaves the set. */
	WAIT_UNTIL(node_applied(&nodes[0], "hotkey", NULL, &found) > v1 && !found &&
		   node_applied(&nodes[1], "hotkey", NULL, &found) > v1 && !found);
	v2 = node_applied(&nodes[1], "newhot", NULL, &found);
	assert_true(v2 > v1);
	assert_true(stat_value(&nodes[1], "hot_sets_published") >= 1);
	/* n1 published nothing since it stepped down. */
	assert_int_equal(stat_value(&nodes[0], "hot_sets_published"), pub1);
	s = read_set(z, "/h3");
	assert_non_null(s);
	assert_int_equal(s->version, v2);
	hot_set_free(&s);
	assert_true(nodes[0].versions_increasing && nodes[1].versions_increasing);

	node_free(&nodes[0]);
	node_free(&nodes[1]);
	zk_destroy(&z);
	map_unref(m);
}

/* The report of node 'id' exists and was written after 'after_ms' (server
 * wall clock). */
static bool report_fresh(struct zk *z, const char *root, const char *id,
			 int64_t after_ms)
{
	struct zk_stat st;
	char path[128];

	snprintf(path, sizeof(path), "%s/hot/reports/%s", root, id);
	return zk_exists(z, path, false, &st) == 0 && st.ephemeral_owner != 0 &&
	       st.mtime_ms > after_ms;
}

/*
 * A report deleted by someone else comes back; the server frozen past the
 * session timeout (sessions expire on SIGCONT, or the clients reconnect in
 * time: either way) leaves both loops reporting again and the set still
 * following the load.
 */
static void test_session_loss(void **state)
{
	struct shard_map *m = two_node_map();
	struct node nodes[2];
	struct zk *z;
	struct zk_stat st;
	bool found;
	uint64_t v1;

	(void)state;
	node_init(&nodes[0], "n1", true, m);
	node_init(&nodes[1], "n2", false, m);
	node_start(&nodes[0], "/h4");
	node_start(&nodes[1], "/h4");
	z = test_zk();
	WAIT_UNTIL(node_applied(&nodes[1], "hotkey", NULL, &found) > 0 && found);
	v1 = node_applied(&nodes[1], "hotkey", NULL, &found);

	assert_int_equal(zk_delete(z, "/h4/hot/reports/n2", -1), 0);
	WAIT_UNTIL(zk_exists(z, "/h4/hot/reports/n2", false, NULL) == 0);

	zk_destroy(&z);
	assert_int_equal(kill(zk_pid, SIGSTOP), 0);
	sleep_ms(3 * SESSION_MS);
	assert_int_equal(kill(zk_pid, SIGCONT), 0);
	z = test_zk();
	assert_int_equal(zk_create_node(z, "/h4/clock", "", 0, ZK_EPHEMERAL,
					NULL, 0), 0);
	assert_int_equal(zk_exists(z, "/h4/clock", false, &st), 0);
	WAIT_UNTIL(report_fresh(z, "/h4", "n1", st.mtime_ms) &&
		   report_fresh(z, "/h4", "n2", st.mtime_ms));

	/* The leader still publishes and both still apply. */
	node_set(&nodes[0], true, "after");
	node_set(&nodes[1], false, "after");
	WAIT_UNTIL(node_applied(&nodes[0], "after", NULL, &found) > v1 && found &&
		   node_applied(&nodes[1], "after", NULL, &found) > v1 && found);
	assert_true(nodes[0].versions_increasing && nodes[1].versions_increasing);

	node_free(&nodes[0]);
	node_free(&nodes[1]);
	zk_destroy(&z);
	map_unref(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_publish_apply_and_leave),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_handover),
		cmocka_unit_test(test_session_loss),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
