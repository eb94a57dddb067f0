/*
 * tests/control/test_agent.c - the ZooKeeper agent against a real ZooKeeper
 * (tests/control/zk-server.sh on a random loopback port, one server for the
 * whole file, killed at exit even when a test fails).
 *
 * Three agents (a, b, c) run in this process, each under its own cluster
 * root per test, with a 1 s session timeout and a 1 s grace. The real
 * planner decides; this file plays the data plane: it records every map
 * handed to on_map, and plays each source of a migration by reporting
 * "done" progress for it (no data is moved here).
 *
 * Covered: registration, one leader, the first map with every node (epoch
 * 1, seen by every on_map, applied_epoch written back), failover to a new
 * leader and removal of the stopped node after the grace, operator requests
 * (weight, drain, add, unknown node, malformed) reaching a final status,
 * compare-and-set conflicts counted, session expiry (server frozen past
 * the timeout), ZooKeeper stopped for 3 s and restarted, a node id held by
 * another live session, bad configs.
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
#include <jansson.h>

#include "control/agent.h"
#include "control/zk.h"

#ifndef ZK_SERVER_SH
#define ZK_SERVER_SH NULL
#endif

#define SESSION_MS 1000
#define GRACE_MS   1000
#define WAIT_MS    15000     /* upper bound for anything that should happen */

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
			fprintf(stderr, "test_agent: could not remove %s\n",
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
	snprintf(zk_dir, sizeof(zk_dir), "/tmp/test_agent.XXXXXX");
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
	fprintf(stderr, "test_agent: could not start ZooKeeper with %s\n",
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

/* ---- a node: an agent plus what its data plane saw ---------------------- */

struct node {
	char id[16];
	char addr[32];
	struct agent *ag;
	pthread_mutex_t lock;
	struct shard_map *map;          /* latest from on_map */
	struct shard_map *first;        /* first from on_map */
	unsigned maps;
	uint64_t last_epoch;
	bool epochs_increasing;         /* every on_map epoch > the one before */
	uint64_t reported;              /* migration we said "done" for */
};

static void node_on_map(void *arg, struct shard_map *m)
{
	struct node *n = arg;

	pthread_mutex_lock(&n->lock);
	if (m->epoch <= n->last_epoch)
		n->epochs_increasing = false;
	n->last_epoch = m->epoch;
	n->maps++;
	if (!n->first) {
		map_ref(m);
		n->first = m;
	}
	map_unref(n->map);
	n->map = m;                     /* takes the callee's reference */
	pthread_mutex_unlock(&n->lock);
}

static struct shard_map *node_map(struct node *n)
{
	struct shard_map *m;

	pthread_mutex_lock(&n->lock);
	m = n->map;
	if (m)
		map_ref(m);
	pthread_mutex_unlock(&n->lock);
	return m;
}

static void node_start(struct node *n, const char *root, const char *id,
		       int addr_port)
{
	struct agent_config cfg;
	char err[160] = "";

	memset(n, 0, sizeof(*n));
	pthread_mutex_init(&n->lock, NULL);
	n->epochs_increasing = true;
	snprintf(n->id, sizeof(n->id), "%s", id);
	snprintf(n->addr, sizeof(n->addr), "127.0.0.1:%d", addr_port);
	memset(&cfg, 0, sizeof(cfg));
	cfg.zk_hosts = zk_hosts;
	cfg.root = root;
	cfg.node_id = n->id;
	cfg.advertise = n->addr;
	cfg.weight = 1;
	cfg.session_timeout_ms = SESSION_MS;
	cfg.grace_ms = GRACE_MS;
	cfg.on_map = node_on_map;
	cfg.arg = n;
	/* TEST_AGENT_VERBOSE=2 shows the agents' events. */
	cfg.verbosity = getenv("TEST_AGENT_VERBOSE") ?
			atoi(getenv("TEST_AGENT_VERBOSE")) : 0;
	n->ag = agent_start(&cfg, err, sizeof(err));
	if (!n->ag)
		fail_msg("agent_start(%s): %s", id, err);
}

static void node_stop(struct node *n)
{
	agent_stop(&n->ag);
	assert_null(n->ag);
}

static void node_free(struct node *n)
{
	agent_stop(&n->ag);
	map_unref(n->map);
	map_unref(n->first);
	n->map = n->first = NULL;
	pthread_mutex_destroy(&n->lock);
}

static struct agent_status node_status(struct node *n)
{
	struct agent_status st;

	memset(&st, 0, sizeof(st));
	if (n->ag)
		agent_get_status(n->ag, &st);
	return st;
}

/*
 * Plays the migration sources: a running node whose latest map has a
 * migration in flight reports it done (as its migrator would after
 * streaming nothing).
 */
static void pump(struct node *nodes, unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		struct node *n = &nodes[i];
		struct shard_map *m;
		struct migrate_progress p;

		if (!n->ag)
			continue;
		m = node_map(n);
		if (m && m->migration && n->reported != m->migration) {
			memset(&p, 0, sizeof(p));
			p.migration = m->migration;
			p.done = true;
			agent_report_progress(n->ag, &p);
			n->reported = m->migration;
		}
		map_unref(m);
	}
}

typedef bool (*cond_fn)(struct node *nodes, unsigned count, void *arg);

/* Polls cond (pumping progress) for up to ms. */
static bool wait_for(struct node *nodes, unsigned count, cond_fn cond,
		     void *arg, unsigned ms)
{
	uint64_t end = now_ms() + ms;

	do {
		pump(nodes, count);
		if (cond(nodes, count, arg))
			return true;
		sleep_ms(20);
	} while (now_ms() < end);
	return cond(nodes, count, arg);
}

static int leader_index(struct node *nodes, unsigned count, unsigned *nleaders)
{
	int idx = -1;

	*nleaders = 0;
	for (unsigned i = 0; i < count; i++) {
		if (!nodes[i].ag)
			continue;
		if (node_status(&nodes[i]).leader) {
			idx = (int)i;
			(*nleaders)++;
		}
	}
	return idx;
}

static bool all_registered(struct node *nodes, unsigned count, void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < count; i++) {
		struct agent_status st = node_status(&nodes[i]);

		if (nodes[i].ag && (!st.connected || !st.registered))
			return false;
	}
	return true;
}

static bool one_leader(struct node *nodes, unsigned count, void *arg)
{
	unsigned n;

	(void)arg;
	leader_index(nodes, count, &n);
	return n == 1;
}

/* The ids of the active nodes of m, space separated, in map order. */
static void active_ids(const struct shard_map *m, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned i = 0; m && i < m->nnodes && off < len; i++)
		if (m->nodes[i].state == MAP_NODE_ACTIVE)
			off += (size_t)snprintf(buf + off, len - off, "%s%s",
						off ? " " : "",
						m->nodes[i].id);
}

struct want_map {
	const char *active;             /* active ids, space separated */
	bool stable;
};

/* Every running node's on_map has seen a map with exactly these active
 * nodes (and, if asked, stable). */
static bool all_see(struct node *nodes, unsigned count, void *arg)
{
	const struct want_map *w = arg;
	char ids[256];

	for (unsigned i = 0; i < count; i++) {
		struct shard_map *m;
		bool ok;

		if (!nodes[i].ag)
			continue;
		m = node_map(&nodes[i]);
		active_ids(m, ids, sizeof(ids));
		ok = m && strcmp(ids, w->active) == 0 &&
		     (!w->stable || m->migration == 0);
		map_unref(m);
		if (!ok)
			return false;
	}
	return true;
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

static json_t *read_json(struct zk *z, const char *path)
{
	char *data;
	size_t len;
	json_t *o;

	if (zk_get(z, path, false, &data, &len, NULL) < 0)
		return NULL;
	o = json_loadb(data, len, 0, NULL);
	free(data);
	return o;
}

/* Writes a request znode; its path goes to out. */
static void submit(struct zk *z, const char *root, const char *json,
		   char *out, size_t outlen)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/requests/r_", root);
	assert_int_equal(zk_create_parents(z, path), 0);
	assert_int_equal(zk_create_node(z, path, json, strlen(json),
					ZK_SEQUENCE, out, outlen), 0);
}

struct req_wait {
	struct zk *z;
	const char *path;
	char status[32];
};

static bool request_final(struct node *nodes, unsigned count, void *arg)
{
	struct req_wait *r = arg;
	json_t *o = read_json(r->z, r->path);
	const char *s = json_string_value(json_object_get(o, "status"));
	bool fin = s && (strcmp(s, "done") == 0 || strcmp(s, "rejected") == 0);

	(void)nodes;
	(void)count;
	snprintf(r->status, sizeof(r->status), "%s", s ? s : "");
	json_decref(o);
	return fin;
}

/* Submits a request and waits for its final status; returns the znode's
 * JSON (caller decrefs). */
static json_t *request(struct node *nodes, unsigned count, struct zk *z,
		       const char *root, const char *json)
{
	char path[256];
	struct req_wait r = { z, path, "" };

	submit(z, root, json, path, sizeof(path));
	if (!wait_for(nodes, count, request_final, &r, WAIT_MS))
		fail_msg("request %s: no final status (last '%s')", json,
			 r.status);
	return read_json(z, path);
}

/* Three nodes a, b, c; with blocker, a test-owned election znode holds the
 * leadership until every agent is registered, so the first map has all of
 * them. */
static void cluster_start(struct node *nodes, struct zk *z, const char *root,
			  int base_port)
{
	static const char *ids[] = { "a", "b", "c" };
	char path[256], blocker[256];
	struct want_map w = { "a b c", true };

	snprintf(path, sizeof(path), "%s/election/n_", root);
	assert_int_equal(zk_create_parents(z, path), 0);
	assert_int_equal(zk_create_node(z, path, "blocker", 7,
					ZK_EPHEMERAL | ZK_SEQUENCE, blocker,
					sizeof(blocker)), 0);
	for (unsigned i = 0; i < 3; i++)
		node_start(&nodes[i], root, ids[i], base_port + (int)i);
	assert_true(wait_for(nodes, 3, all_registered, NULL, WAIT_MS));
	/* Nobody leads behind the blocker, so no map exists yet. */
	for (unsigned i = 0; i < 3; i++)
		assert_false(node_status(&nodes[i]).leader);
	snprintf(path, sizeof(path), "%s/map", root);
	assert_int_equal(zk_exists(z, path, false, NULL), -ENOENT);
	/* The first candidate watches the blocker: deleting it elects. */
	assert_int_equal(zk_delete(z, blocker, -1), 0);
	assert_true(wait_for(nodes, 3, one_leader, NULL, WAIT_MS));
	assert_true(wait_for(nodes, 3, all_see, &w, WAIT_MS));
}

/* ---- tests -------------------------------------------------------------- */

static void test_bad_config(void **state)
{
	struct agent_config cfg;
	char err[160];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.zk_hosts = zk_hosts;
	cfg.root = "/ok";
	cfg.node_id = "n1";
	cfg.advertise = "127.0.0.1:21001";
	cfg.weight = 1;

	cfg.root = "relative";
	err[0] = '\0';
	assert_null(agent_start(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "root"));
	cfg.root = "/trailing/";
	assert_null(agent_start(&cfg, err, sizeof(err)));
	cfg.root = "/ok";
	cfg.node_id = "bad id";
	assert_null(agent_start(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "node id"));
	cfg.node_id = "n1";
	cfg.zk_hosts = "";
	assert_null(agent_start(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "host"));
	cfg.zk_hosts = zk_hosts;
	cfg.weight = 0;
	assert_null(agent_start(&cfg, err, sizeof(err)));
	cfg.weight = 1;
	cfg.advertise = "nocolon";
	assert_null(agent_start(&cfg, err, sizeof(err)));
	agent_stop(NULL);
}

static void test_first_map_and_failover(void **state)
{
	struct node nodes[3];
	struct zk *z = test_zk();
	struct want_map w;
	unsigned nleaders;
	int leader, other;
	uint64_t t0;
	char path[256];

	(void)state;
	cluster_start(nodes, z, "/t1", 21001);

	/* The first map: epoch 1, a b c, stable, in every on_map first. */
	for (unsigned i = 0; i < 3; i++) {
		struct shard_map *f = nodes[i].first;
		char ids[64];

		assert_non_null(f);
		assert_int_equal(f->epoch, 1);
		assert_int_equal(f->migration, 0);
		active_ids(f, ids, sizeof(ids));
		assert_string_equal(ids, "a b c");
		assert_int_equal(node_status(&nodes[i]).map_epoch, 1);
	}
	leader = leader_index(nodes, 3, &nleaders);
	assert_int_equal(nleaders, 1);
	assert_true(leader >= 0);

	/* Every node writes the epoch it applied into its registration. */
	for (unsigned i = 0; i < 3; i++) {
		json_t *o = NULL;
		uint64_t end = now_ms() + WAIT_MS;

		snprintf(path, sizeof(path), "/t1/nodes/%.15s", nodes[i].id);
		do {
			json_decref(o);
			o = read_json(z, path);
			if (json_integer_value(json_object_get(o,
					"applied_epoch")) == 1)
				break;
			sleep_ms(20);
		} while (now_ms() < end);
		assert_non_null(o);
		assert_int_equal(json_integer_value(json_object_get(o,
				 "applied_epoch")), 1);
		assert_string_equal(json_string_value(json_object_get(o,
				    "addr")), nodes[i].addr);
		json_decref(o);
	}

	/* Stop the leader: a clean leave deletes its znodes at once. */
	node_stop(&nodes[leader]);
	snprintf(path, sizeof(path), "/t1/nodes/%s", nodes[leader].id);
	assert_int_equal(zk_exists(z, path, false, NULL), -ENOENT);
	t0 = now_ms();
	assert_true(wait_for(nodes, 3, one_leader, NULL, 5000));
	other = leader_index(nodes, 3, &nleaders);
	assert_true(other >= 0 && other != leader);

	/* After the grace the map drops it; dead nodes are no sources, so
	 * the map ends stable without any progress record. */
	w.active = leader == 0 ? "b c" : leader == 1 ? "a c" : "a b";
	w.stable = true;
	assert_true(wait_for(nodes, 3, all_see, &w, WAIT_MS));
	assert_true(now_ms() - t0 >= GRACE_MS - 100);
	for (unsigned i = 0; i < 3; i++) {
		if (!nodes[i].ag)
			continue;
		assert_true(nodes[i].epochs_increasing);
		assert_true(nodes[i].last_epoch >= 2);
	}
	assert_true(node_status(&nodes[other]).maps_published >= 1);

	for (unsigned i = 0; i < 3; i++)
		node_free(&nodes[i]);
	zk_destroy(&z);
}

/* Rewrites ROOT/map with its own content and version, as fast as it can,
 * until told to stop: every rewrite moves the version under the leader. */
struct bumper {
	const char *path;
	bool stop;                      /* atomic */
	unsigned bumps;                 /* read after the join */
};

static void *bumper_main(void *arg)
{
	struct bumper *b = arg;
	struct zk_config zc;
	struct zk *z;
	struct zk_stat st;
	char *data;
	size_t len;
	uint64_t end = now_ms() + WAIT_MS;

	memset(&zc, 0, sizeof(zc));
	zc.hosts = zk_hosts;
	zc.session_timeout_ms = 4000;
	z = zk_create(&zc);
	if (!z)
		return NULL;
	while (zk_state(z) != ZK_CONNECTED && now_ms() < end)
		sleep_ms(10);
	while (!__atomic_load_n(&b->stop, __ATOMIC_RELAXED) && now_ms() < end) {
		if (zk_get(z, b->path, false, &data, &len, &st) < 0)
			continue;
		/* Compare-and-set too: a leader's real write is never undone. */
		if (zk_set(z, b->path, data, len, st.version, NULL) == 0)
			b->bumps++;
		free(data);
	}
	zk_destroy(&z);
	return NULL;
}

static bool cas_conflict_seen(struct node *nodes, unsigned count, void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < count; i++)
		if (nodes[i].ag && node_status(&nodes[i]).cas_conflicts > 0)
			return true;
	return false;
}

static void test_requests_and_cas(void **state)
{
	struct node nodes[3];
	struct zk *z = test_zk();
	struct zk_stat st;
	struct shard_map *m;
	struct bumper b = { "/t2/map", false, 0 };
	struct zk_children kids;
	struct want_map w;
	char path[128];
	uint64_t mig;
	pthread_t bt;
	unsigned nleaders;
	char *data;
	size_t len;
	json_t *o;
	int leader, i;

	(void)state;
	cluster_start(nodes, z, "/t2", 21011);
	leader = leader_index(nodes, 3, &nleaders);
	assert_true(leader >= 0);

	/* weight: a migration (sources report done here), then done. */
	o = request(nodes, 3, z, "/t2",
		    "{\"op\":\"weight\",\"id\":\"b\",\"weight\":2,"
		    "\"status\":\"pending\"}");
	assert_string_equal(json_string_value(json_object_get(o, "status")),
			    "done");
	mig = (uint64_t)json_integer_value(json_object_get(o, "migration"));
	assert_true(mig > 0);
	json_decref(o);
	/* The leader's record of it, and the sources' progress records. */
	snprintf(path, sizeof(path), "/t2/migrations/%" PRIu64, mig);
	o = read_json(z, path);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "state")),
			    "done");
	assert_non_null(strstr(json_string_value(json_object_get(o, "reason")),
			       "weight b"));
	assert_true(json_integer_value(json_object_get(o, "ranges")) > 0);
	assert_true(json_integer_value(json_object_get(o, "finished_ms")) >=
		    json_integer_value(json_object_get(o, "started_ms")));
	json_decref(o);
	assert_int_equal(zk_get_children(z, path, false, &kids), 0);
	assert_true(kids.count >= 1);
	for (unsigned k = 0; k < kids.count; k++) {
		char rec[300];

		snprintf(rec, sizeof(rec), "%s/%s", path, kids.names[k]);
		o = read_json(z, rec);
		assert_true(json_is_true(json_object_get(o, "done")));
		json_decref(o);
	}
	zk_free_children(&kids);
	w.active = "a b c";
	w.stable = true;
	assert_true(wait_for(nodes, 3, all_see, &w, WAIT_MS));
	m = node_map(&nodes[0]);
	i = map_find(m, "b");
	assert_true(i >= 0);
	assert_int_equal(m->nodes[i].weight, 2);
	map_unref(m);

	/* drain: c becomes standby, after its migration. */
	o = request(nodes, 3, z, "/t2",
		    "{\"op\":\"drain\",\"id\":\"c\",\"status\":\"pending\"}");
	assert_string_equal(json_string_value(json_object_get(o, "status")),
			    "done");
	json_decref(o);
	w.active = "a b";
	assert_true(wait_for(nodes, 3, all_see, &w, WAIT_MS));
	m = node_map(&nodes[0]);
	i = map_find(m, "c");
	assert_true(i >= 0);
	assert_int_equal(m->nodes[i].state, MAP_NODE_STANDBY);
	map_unref(m);

	/* add: back on the ring. */
	o = request(nodes, 3, z, "/t2",
		    "{\"op\":\"add\",\"id\":\"c\",\"status\":\"pending\"}");
	assert_string_equal(json_string_value(json_object_get(o, "status")),
			    "done");
	json_decref(o);
	w.active = "a b c";
	assert_true(wait_for(nodes, 3, all_see, &w, WAIT_MS));

	/* Refusals: an unknown node, an unknown op, garbage. */
	o = request(nodes, 3, z, "/t2",
		    "{\"op\":\"add\",\"id\":\"zz\",\"status\":\"pending\"}");
	assert_string_equal(json_string_value(json_object_get(o, "status")),
			    "rejected");
	assert_non_null(strstr(json_string_value(json_object_get(o, "error")),
			       "unknown node"));
	json_decref(o);
	o = request(nodes, 3, z, "/t2",
		    "{\"op\":\"explode\",\"id\":\"a\",\"status\":\"pending\"}");
	assert_string_equal(json_string_value(json_object_get(o, "status")),
			    "rejected");
	json_decref(o);
	o = request(nodes, 3, z, "/t2", "not json at all");
	assert_string_equal(json_string_value(json_object_get(o, "status")),
			    "rejected");
	json_decref(o);
	assert_true(node_status(&nodes[leader]).bad_znodes >= 1);
	assert_true(node_status(&nodes[leader]).requests_answered >= 6);

	/* A stale compare-and-set fails. */
	assert_int_equal(zk_get(z, "/t2/map", false, &data, &len, &st), 0);
	assert_int_equal(zk_set(z, "/t2/map", data, len, st.version, NULL), 0);
	assert_int_equal(zk_set(z, "/t2/map", data, len, st.version, NULL),
			 -ESTALE);
	free(data);

	/* The leader's own writes lose races while the version moves under
	 * it: counted, re-planned, and the requests still complete. Each
	 * weight change makes the leader publish (twice: migration start and
	 * end); more are asked for until a race was lost. */
	assert_int_equal(pthread_create(&bt, NULL, bumper_main, &b), 0);
	{
		char paths[8][256], json[128];
		unsigned nreq = 0, wgt = 2;
		uint64_t end = now_ms() + WAIT_MS;
		bool ok = false;

		while (nreq < 8 && !cas_conflict_seen(nodes, 3, NULL) &&
		       now_ms() < end) {
			wgt = wgt == 3 ? 4 : 3;
			snprintf(json, sizeof(json), "{\"op\":\"weight\","
				 "\"id\":\"a\",\"weight\":%u,"
				 "\"status\":\"pending\"}", wgt);
			submit(z, "/t2", json, paths[nreq], sizeof(paths[0]));
			nreq++;
			wait_for(nodes, 3, cas_conflict_seen, NULL, 1500);
		}
		__atomic_store_n(&b.stop, true, __ATOMIC_RELAXED);
		pthread_join(bt, NULL);
		assert_true(b.bumps > 0);
		assert_true(cas_conflict_seen(nodes, 3, NULL));
		for (unsigned k = 0; k < nreq; k++) {
			struct req_wait r = { z, paths[k], "" };

			assert_true(wait_for(nodes, 3, request_final, &r,
					     WAIT_MS));
			assert_string_equal(r.status, "done");
		}
		/* The last weight asked for is the one applied, stable. */
		end = now_ms() + WAIT_MS;
		while (!ok && now_ms() < end) {
			pump(nodes, 3);
			m = node_map(&nodes[0]);
			i = map_find(m, "a");
			ok = i >= 0 && m->nodes[i].weight == wgt &&
			     m->migration == 0;
			map_unref(m);
			sleep_ms(20);
		}
		assert_true(ok);
	}
	for (unsigned k = 0; k < 3; k++)
		assert_true(nodes[k].epochs_increasing);

	for (unsigned k = 0; k < 3; k++)
		node_free(&nodes[k]);
	zk_destroy(&z);
}

static bool all_reconnected(struct node *nodes, unsigned count, void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < count; i++) {
		struct agent_status st = node_status(&nodes[i]);

		if (!nodes[i].ag)
			continue;
		if (!st.connected || !st.registered ||
		    (st.zk_reconnects == 0 && st.session_expiries == 0))
			return false;
	}
	return true;
}

static void test_zookeeper_restart(void **state)
{
	struct node nodes[3];
	struct zk *z = test_zk();
	struct shard_map *before[3];
	struct want_map w = { "a b", true };
	unsigned nleaders;
	uint64_t t0;
	json_t *o;

	(void)state;
	cluster_start(nodes, z, "/t3", 21021);
	zk_destroy(&z);
	for (unsigned i = 0; i < 3; i++)
		before[i] = node_map(&nodes[i]);

	zk_server_stop();
	sleep_ms(3000);
	/* No ZooKeeper: every node still holds (serves) its last map. */
	for (unsigned i = 0; i < 3; i++) {
		struct shard_map *m = node_map(&nodes[i]);

		assert_ptr_equal(m, before[i]);
		assert_false(node_status(&nodes[i]).connected);
		map_unref(m);
		map_unref(before[i]);
	}
	/* A node shutting down meanwhile does not hang on ZooKeeper. */
	t0 = now_ms();
	node_stop(&nodes[2]);
	assert_true(now_ms() - t0 < 2000);
	assert_int_equal(zk_server_start(), 0);

	assert_true(wait_for(nodes, 3, all_reconnected, NULL, WAIT_MS));
	assert_true(wait_for(nodes, 3, one_leader, NULL, WAIT_MS));
	leader_index(nodes, 3, &nleaders);
	assert_int_equal(nleaders, 1);

	/* The leader still works: a request is answered, and the node that
	 * left during the outage leaves the map after its session and the
	 * grace are over. */
	z = test_zk();
	o = request(nodes, 3, z, "/t3",
		    "{\"op\":\"weight\",\"id\":\"b\",\"weight\":2,"
		    "\"status\":\"pending\"}");
	assert_string_equal(json_string_value(json_object_get(o, "status")),
			    "done");
	json_decref(o);
	assert_true(wait_for(nodes, 3, all_see, &w, WAIT_MS));

	for (unsigned i = 0; i < 3; i++)
		node_free(&nodes[i]);
	zk_destroy(&z);
}

/* Every node is connected and registered again, and every node whose
 * session expired runs a new one. */
static bool all_back_after_expiry(struct node *nodes, unsigned count,
				  void *arg)
{
	const uint64_t *old_sessions = arg;

	for (unsigned i = 0; i < count; i++) {
		struct agent_status st = node_status(&nodes[i]);

		if (!st.connected || !st.registered)
			return false;
		if (st.session_expiries != 0 && st.session_id == old_sessions[i])
			return false;
	}
	return true;
}

static unsigned count_expired(struct node *nodes, unsigned count)
{
	unsigned expired = 0;

	for (unsigned i = 0; i < count; i++)
		if (node_status(&nodes[i]).session_expiries != 0)
			expired++;
	return expired;
}

/*
 * The server frozen (SIGSTOP) for three session timeouts: on SIGCONT it
 * expires the sessions whose owners do not get a reconnect through first
 * (usually most of them; which ones is up to the server). An agent whose
 * session expired must notice, open a new session and register again, and
 * there must be one leader again; the map they serve does not change, and
 * the leader still works.
 */
static void test_session_expiry(void **state)
{
	struct node nodes[3];
	struct zk *z = test_zk();
	uint64_t sessions[3];
	unsigned nleaders;
	json_t *o;

	(void)state;
	cluster_start(nodes, z, "/t5", 21041);
	zk_destroy(&z);
	for (unsigned i = 0; i < 3; i++)
		sessions[i] = node_status(&nodes[i]).session_id;

	/* Whether the server expires a session or lets its client reconnect
	 * first is a race on resume: freeze again (up to three times) until
	 * at least one session expired. */
	for (int round = 0; round < 3 && count_expired(nodes, 3) == 0;
	     round++) {
		assert_int_equal(kill(zk_pid, SIGSTOP), 0);
		sleep_ms((3 + round) * SESSION_MS);
		assert_int_equal(kill(zk_pid, SIGCONT), 0);
		assert_true(wait_for(nodes, 3, all_back_after_expiry, sessions,
				     WAIT_MS));
	}
	assert_true(count_expired(nodes, 3) > 0);
	assert_true(wait_for(nodes, 3, one_leader, NULL, WAIT_MS));
	leader_index(nodes, 3, &nleaders);
	assert_int_equal(nleaders, 1);
	for (unsigned i = 0; i < 3; i++) {
		assert_true(nodes[i].epochs_increasing);
		assert_int_equal(nodes[i].last_epoch, 1);
	}

	z = test_zk();
	o = request(nodes, 3, z, "/t5",
		    "{\"op\":\"weight\",\"id\":\"b\",\"weight\":2,"
		    "\"status\":\"pending\"}");
	assert_string_equal(json_string_value(json_object_get(o, "status")),
			    "done");
	json_decref(o);

	for (unsigned i = 0; i < 3; i++)
		node_free(&nodes[i]);
	zk_destroy(&z);
}

struct progress_want {
	struct zk *z;
	const char *path;
	long long keys_sent;
	bool done;
};

static bool progress_is(struct node *nodes, unsigned count, void *arg)
{
	struct progress_want *p = arg;
	json_t *o = read_json(p->z, p->path);
	bool ok = o &&
		  json_integer_value(json_object_get(o, "keys_sent")) ==
		  p->keys_sent &&
		  json_is_true(json_object_get(o, "done")) == p->done;

	(void)nodes;
	(void)count;
	json_decref(o);
	return ok;
}

/* agent_report_progress: a burst of reports ends as the latest one in
 * ROOT/migrations/<N>/<id> (rate limited, never lost), and done is written
 * at once; a stale report after done does not replace it. */
static void test_progress_records(void **state)
{
	struct node nodes[1];
	struct zk *z = test_zk();
	struct migrate_progress p;
	struct progress_want want = { z, "/t6/migrations/77/p", 0, false };
	struct zk_stat st1;
	uint64_t t0;

	(void)state;
	node_start(&nodes[0], "/t6", "p", 21051);
	assert_true(wait_for(nodes, 1, all_registered, NULL, WAIT_MS));
	memset(&p, 0, sizeof(p));
	p.migration = 77;
	p.keys_total = 1000;
	for (unsigned k = 1; k <= 500; k++) {
		p.keys_sent = k;
		p.bytes_sent = k * 10;
		agent_report_progress(nodes[0].ag, &p);
	}
	want.keys_sent = 500;
	assert_true(wait_for(nodes, 1, progress_is, &want, WAIT_MS));
	/* 500 reports, a few writes: the znode version counts them. */
	assert_int_equal(zk_exists(z, want.path, false, &st1), 0);
	assert_true(st1.version < 50);

	p.keys_sent = 1000;
	p.done = true;
	t0 = now_ms();
	agent_report_progress(nodes[0].ag, &p);
	/* done is not held back by the rate limit of the write before. */
	want.keys_sent = 1000;
	want.done = true;
	assert_true(wait_for(nodes, 1, progress_is, &want, WAIT_MS));
	assert_true(now_ms() - t0 < 1000);
	p.keys_sent = 999;
	p.done = false;
	agent_report_progress(nodes[0].ag, &p);
	sleep_ms(400);
	assert_true(progress_is(nodes, 1, &want));

	node_free(&nodes[0]);
	zk_destroy(&z);
}

static bool first_in_use(struct node *nodes, unsigned count, void *arg)
{
	struct agent_status st = node_status(&nodes[1]);

	(void)count;
	(void)arg;
	return st.connected && st.id_in_use && !st.registered;
}

static bool second_registered(struct node *nodes, unsigned count, void *arg)
{
	struct agent_status st = node_status(&nodes[1]);

	(void)count;
	(void)arg;
	return st.registered && !st.id_in_use;
}

static void test_node_id_in_use(void **state)
{
	struct node nodes[2];
	unsigned nleaders;

	(void)state;
	node_start(&nodes[0], "/t4", "x", 21031);
	assert_true(wait_for(nodes, 1, all_registered, NULL, WAIT_MS));
	/* Another process (here: session) with the same id waits. */
	node_start(&nodes[1], "/t4", "x", 21032);
	assert_true(wait_for(nodes, 2, first_in_use, NULL, WAIT_MS));
	assert_false(node_status(&nodes[1]).leader);
	/* The holder leaves: the waiting one takes the id and leads. */
	node_stop(&nodes[0]);
	assert_true(wait_for(nodes, 2, second_registered, NULL, WAIT_MS));
	assert_true(wait_for(nodes, 2, one_leader, NULL, WAIT_MS));
	assert_int_equal(leader_index(nodes, 2, &nleaders), 1);
	for (unsigned i = 0; i < 2; i++)
		node_free(&nodes[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_first_map_and_failover),
		cmocka_unit_test(test_requests_and_cas),
		cmocka_unit_test(test_node_id_in_use),
		cmocka_unit_test(test_progress_records),
		cmocka_unit_test(test_session_expiry),
		cmocka_unit_test(test_zookeeper_restart),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
