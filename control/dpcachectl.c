/*
 * control/dpcachectl.c - the cluster's control-plane CLI.
 *
 * Design note
 * -----------
 * dpcachectl never changes the shard map itself. Reads (status, nodes, map,
 * stats) look at ZooKeeper (ROOT/nodes, ROOT/map, ROOT/election,
 * ROOT/migrations) and, for stats, at each node's memcached port. Changes
 * (add, remove, drain, weight, rebalance) are validated locally against the
 * map and registrations, so the common mistakes (unknown node, a migration
 * already running) fail at once with a clear message, and then written as a
 * request znode ROOT/requests/r_<seq>; the elected leader is the only writer
 * of ROOT/map and answers by rewriting the request's status (pending ->
 * running with a migration id -> done, or rejected). The local checks are a
 * convenience, not a guarantee: the leader re-checks everything, so a race
 * between two operators ends in a clean 'rejected'.
 *
 * A request is finished when its status is rejected, or when it is running
 * or done and the migration it names (if any) says done or rolled_back in
 * ROOT/migrations/<N>: the leader may write either first, and the operator
 * asked for the data to have moved, not for the map to have changed. A
 * request no leader takes within --timeout is withdrawn (deleted with the
 * version we read, so one the leader took meanwhile is not). While waiting,
 * a lost ZooKeeper connection is retried for --timeout seconds (the client
 * reconnects and keeps session and watches). ZooKeeper's sync API is used
 * throughout; watches only wake the main thread (a condition variable),
 * which then re-reads.
 *
 * 'hotkeys' reads what the nodes' hot-key threads (control/hotctl.c) keep in
 * ZooKeeper: ROOT/hot/set, the leader's replicated set, and
 * ROOT/hot/reports/<id>, each node's load and hottest keys, both parsed by
 * replication/hotset.c (the same strict parsers the nodes use, so the CLI
 * never shows a document the cluster would refuse). The cluster-wide rate
 * of a key is the sum over the reports read now, not the figure the leader
 * stored when it chose the key: the set is rewritten only when its content
 * changes, so its rates age. A malformed set is an error (there is nothing
 * right to show); a malformed report is left out with a warning and exit 1,
 * like an unreachable node in 'stats'. 'hotkeys --format=routes' turns the
 * set into a route table for clients that hash keys themselves: only the
 * set and the map, so it works while reports are missing or malformed.
 *
 * Exit codes: 0 done, 1 rejected or error, 2 usage, 3 ZooKeeper unreachable,
 * 4 timed out waiting.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nettle/base64.h>
/* The multi-threaded client's synchronous API (zoo_get, ...). */
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#include "replication/hotset.h"
#include "replication/map.h"
#include "replication/ring.h"

enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_ERR = 1,
	CTL_EXIT_USAGE = 2,
	CTL_EXIT_NOZK = 3,
	CTL_EXIT_TIMEOUT = 4,
};

#define CTL_PATH_MAX 512
#define CTL_ZNODE_MAX (1024 * 1024)     /* ZooKeeper's default jute.maxbuffer */
#define CTL_STATS_MAX (1024 * 1024)     /* bytes read from one node's stats */
#define CTL_HOT_UNREPLICATED_MAX 20     /* 'hotkeys': hot keys not in the set */

struct ctl {
	zhandle_t *zh;
	char hosts[1024];
	char root[256];
	bool json;
	bool detach;
	double timeout_s;
	double wait_timeout_s;       /* 0: wait as long as it takes */
	const char *format;
	const char *node;            /* hotkeys --node */
	/* The ZooKeeper thread's watchers only bump 'events' and signal. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int zstate;
	unsigned events;
};

/* One registration, ROOT/nodes/<id>. */
struct ctl_reg {
	char id[MAP_ID_MAX];
	char addr[MAP_ADDR_MAX];
	char admin[MAP_ADDR_MAX];
	uint32_t weight;
	bool standby;
	uint64_t applied_epoch;
	bool valid;                  /* the JSON parsed */
};

/* A migration znode and the sum of its sources' progress records. */
struct ctl_progress {
	bool present;
	uint64_t id;
	char state[24];
	char reason[128];
	uint64_t ranges;
	int64_t started_ms, finished_ms;
	uint64_t keys_total, keys_sent, bytes_sent, failed_targets;
	unsigned sources, sources_done;
};

/* What one read of ZooKeeper saw. */
struct ctl_view {
	struct shard_map *map;       /* NULL: no map yet */
	char *map_json;
	struct ctl_reg *regs;
	unsigned nregs;
	char leader[MAP_ID_MAX];     /* "" when none */
	struct ctl_progress mig;     /* of map->migration, when one */
};

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void usage(FILE *f)
{
	fprintf(f,
"usage: dpcachectl [--zk=HOST:PORT[,HOST:PORT...]/ROOT] [--json] [--timeout=S]\n"
"                  [--wait-timeout=S] [--detach] COMMAND [ARGS]\n"
"\n"
"Read commands:\n"
"  status               leader, map epoch, node counts, migration in flight\n"
"  nodes                ID ADDR WEIGHT STATE UP SHARE ADMIN of every known node\n"
"  map [--format=text|json|libmemcached]\n"
"                       the shard map; libmemcached: the client server list\n"
"                       \"host:port:weight,...\" (memcached_servers_parse, pylibmc)\n"
"  stats [ID]           counters from each node's 'stats' and 'stats cluster'\n"
"  hotkeys [--node ID]  the replicated hot keys (KEY READS/S WRITES/S OWNER\n"
"                       REPLICAS; rates summed over the nodes' latest reports)\n"
"                       and the %d hottest keys not replicated; --node ID: that\n"
"                       node's report (its load, KEY READS/S WRITES/S\n"
"                       REPLICATED). Keys as is when printable ASCII without\n"
"                       spaces, else b64:BASE64\n"
"  hotkeys --format=text|routes\n"
"                       routes: the route table for clients that hash keys\n"
"                       to servers themselves (ketama). After a first line\n"
"                       \"# dpcache hot-key routes: set version V, map epoch E\"\n"
"                       (V: the set's, 0 when none; E: the current map's),\n"
"                       one line per replicated key: \"KEY ADDR ADDR ...\",\n"
"                       host:port of the owner first, then of each replica in\n"
"                       the current map. Send the key's reads to any of them\n"
"                       (each holds a copy), its writes to the first. A key\n"
"                       whose owner in the set is not its owner in the map\n"
"                       now is left out (route it as usual). With --json:\n"
"                       {\"version\":V,\"epoch\":E,\"routes\":[{\"key\":..,\n"
"                       \"key_b64\":..,\"servers\":[..]}]}\n"
"Changes (sent to the leader as a request; waits for the result):\n"
"  add ID | remove ID | drain ID | weight ID W | rebalance\n"
"  wait [N]             wait for migration N (default: the one in flight)\n"
"\n"
"Options:\n"
"  --zk=HOSTS/ROOT      ZooKeeper hosts and cluster root (default $DPCACHE_ZK;\n"
"                       ROOT defaults to /dpcache)\n"
"  --json               one JSON document on stdout\n"
"  --timeout=S          to reach ZooKeeper, for the leader to take a request,\n"
"                       and per node for stats (default 10)\n"
"  --wait-timeout=S     give up waiting for a change after S seconds (exit 4;\n"
"                       default: no limit)\n"
"  --detach             return once the leader started the migration\n"
"\n"
"Exit: 0 done, 1 rejected or error, 2 usage, 3 ZooKeeper unreachable,\n"
"      4 timed out.\n", CTL_HOT_UNREPLICATED_MAX);
}

static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "dpcachectl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	usage(stderr);
	exit(CTL_EXIT_USAGE);
}

static int ctl_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ctl_fail(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "dpcachectl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return code;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void human_bytes(double b, char *out, size_t n)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned u = 0;

	while (b >= 1024 && u < 4) {
		b /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, n, "%.0f B", b);
	else
		snprintf(out, n, "%.1f %s", b, unit[u]);
}

/* ------------------------------------------------------------------ */
/* ZooKeeper session                                                   */

static void ctl_watcher(zhandle_t *zh, int type, int state, const char *path,
			void *ctx)
{
	struct ctl *c = ctx;

	(void)zh;
	(void)path;
	pthread_mutex_lock(&c->lock);
	if (type == ZOO_SESSION_EVENT)
		c->zstate = state;
	c->events++;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* Waits until 'events' moves past 'seen' or 'secs' pass. */
static void ctl_wait_event(struct ctl *c, unsigned seen, double secs)
{
	struct timespec ts;
	long ns;

	clock_gettime(CLOCK_REALTIME, &ts);
	ns = ts.tv_nsec + (long)(secs * 1e9);
	ts.tv_sec += ns / 1000000000L;
	ts.tv_nsec = ns % 1000000000L;
	pthread_mutex_lock(&c->lock);
	while (c->events == seen) {
		if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) != 0)
			break;
	}
	pthread_mutex_unlock(&c->lock);
}

static unsigned ctl_events(struct ctl *c)
{
	unsigned e;

	pthread_mutex_lock(&c->lock);
	e = c->events;
	pthread_mutex_unlock(&c->lock);
	return e;
}

/* Why a ZooKeeper host cannot be reached: a plain TCP connect to each host
 * of the list, so the message says "Connection refused" or "Name or service
 * not known" rather than only "timed out". */
static void ctl_probe_reason(const char *hosts, double timeout_s, char *out,
			     size_t n)
{
	char list[1024], *save = NULL, *h;

	snprintf(out, n, "no ZooKeeper session within %g s", timeout_s);
	snprintf(list, sizeof(list), "%s", hosts);
	for (h = strtok_r(list, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
		char *colon = strrchr(h, ':');
		struct pollfd pfd;
		int fd, rc, soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (!colon) {
			snprintf(out, n, "bad host '%s' (want HOST:PORT)", h);
			return;
		}
		*colon = '\0';
		if (h[0] == '[' && colon[-1] == ']') {
			colon[-1] = '\0';
			h++;
		}
		rc = getaddrinfo(h, colon + 1, &hints, &res);
		if (rc != 0) {
			snprintf(out, n, "%s", gai_strerror(rc));
			continue;
		}
		fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			freeaddrinfo(res);
			continue;
		}
		rc = connect(fd, res->ai_addr, res->ai_addrlen);
		freeaddrinfo(res);
		if (rc < 0 && errno == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, 1000) == 1) {
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
				rc = soerr ? -1 : 0;
				errno = soerr;
			} else {
				rc = -1;
				errno = ETIMEDOUT;
			}
		}
		if (rc < 0)
			snprintf(out, n, "%s", strerror(errno));
		close(fd);
		if (rc == 0) {
			/* a port that accepts but gives no session */
			snprintf(out, n, "no ZooKeeper session within %g s "
				 "(something listens, but does not answer as ZooKeeper)",
				 timeout_s);
			return;
		}
	}
}

static int ctl_connect(struct ctl *c)
{
	double deadline = now_s() + c->timeout_s;
	int session_ms = c->timeout_s * 1000 < 4000 ? 4000 : (int)(c->timeout_s * 1000);
	char reason[256];

	zoo_set_debug_level((ZooLogLevel)0);
	c->zh = zookeeper_init(c->hosts, ctl_watcher, session_ms, NULL, c, 0);
	if (!c->zh) {
		int e = errno;

		ctl_probe_reason(c->hosts, c->timeout_s, reason, sizeof(reason));
		return ctl_fail(CTL_EXIT_NOZK, "cannot reach ZooKeeper at %s: %s",
				c->hosts, e == EINVAL ? "bad host list" : reason);
	}
	for (;;) {
		unsigned seen;
		int st;

		pthread_mutex_lock(&c->lock);
		st = c->zstate;
		seen = c->events;
		pthread_mutex_unlock(&c->lock);
		if (st == ZOO_CONNECTED_STATE)
			return 0;
		if (st == ZOO_AUTH_FAILED_STATE || st == ZOO_EXPIRED_SESSION_STATE ||
		    now_s() >= deadline)
			break;
		ctl_wait_event(c, seen, deadline - now_s());
	}
	ctl_probe_reason(c->hosts, c->timeout_s, reason, sizeof(reason));
	return ctl_fail(CTL_EXIT_NOZK, "cannot reach ZooKeeper at %s: %s",
			c->hosts, reason);
}

static bool zk_lost(int rc)
{
	return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT ||
	       rc == ZSESSIONEXPIRED || rc == ZINVALIDSTATE || rc == ZCLOSING;
}

/* A ZooKeeper call failed: lost connection -> exit 3, else 1. */
static int ctl_zk_error(int rc, const char *what, const char *path)
{
	return ctl_fail(zk_lost(rc) ? CTL_EXIT_NOZK : CTL_EXIT_ERR,
			"ZooKeeper error %s %s: %s", what, path, zerror(rc));
}

/* In the wait loops: a lost connection is retried (the client reconnects on
 * its own, and keeps the session and its watches if that happens within the
 * session timeout) for up to --timeout seconds from the first failure.
 * *since is 0 while connected. */
static bool zk_retry(const struct ctl *c, int rc, double *since)
{
	if (!zk_lost(rc) || rc == ZSESSIONEXPIRED) {
		*since = 0;
		return false;
	}
	if (*since == 0)
		*since = now_s();
	return now_s() - *since < c->timeout_s;
}

static void ctl_path(const struct ctl *c, char *out, size_t n,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void ctl_path(const struct ctl *c, char *out, size_t n,
		     const char *fmt, ...)
{
	va_list ap;
	int k = snprintf(out, n, "%s/", c->root);

	va_start(ap, fmt);
	vsnprintf(out + k, n - (size_t)k, fmt, ap);
	va_end(ap);
}

/* dir + "/" + name; false (and skipped by callers) when it does not fit. */
static bool join_path(char *out, size_t n, const char *dir, const char *name)
{
	int k = snprintf(out, n, "%s/%s", dir, name);

	return k > 0 && (size_t)k < n;
}

/* A data watch: only wakes the waiting thread, which re-reads. */
static void ctl_data_watch(zhandle_t *zh, int type, int state,
			   const char *path, void *ctx)
{
	struct ctl *c = ctx;

	(void)zh;
	(void)type;
	(void)state;
	(void)path;
	pthread_mutex_lock(&c->lock);
	c->events++;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* Reads a znode into a malloc'd NUL-terminated string (empty data -> "").
 * With 'watch', leaves a data watch that wakes ctl_wait_event. ZOK or the
 * ZooKeeper error (ZNONODE, ...). */
static int ctl_get(struct ctl *c, const char *path, bool watch, char **out,
		   struct Stat *st)
{
	int cap = 4096;

	*out = NULL;
	for (;;) {
		char *buf = malloc((size_t)cap + 1);
		int len = cap, rc;

		if (!buf)
			return ZSYSTEMERROR;
		if (watch)
			rc = zoo_wget(c->zh, path, ctl_data_watch, c, buf, &len, st);
		else
			rc = zoo_get(c->zh, path, 0, buf, &len, st);
		if (rc != ZOK) {
			free(buf);
			return rc;
		}
		if (st->dataLength > cap && cap < CTL_ZNODE_MAX) {
			free(buf);
			cap = st->dataLength;
			continue;
		}
		if (len < 0)
			len = 0;
		buf[len] = '\0';
		*out = buf;
		return ZOK;
	}
}

static int ctl_children(struct ctl *c, const char *path,
			struct String_vector *sv)
{
	memset(sv, 0, sizeof(*sv));
	return zoo_get_children(c->zh, path, 0, sv);
}

/* ------------------------------------------------------------------ */
/* Reading the cluster's state                                         */

static uint64_t json_u64(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v) && json_integer_value(v) >= 0)
		return (uint64_t)json_integer_value(v);
	if (json_is_real(v) && json_real_value(v) >= 0)
		return (uint64_t)json_real_value(v);
	return 0;
}

static const char *json_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static void copy_str(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

static void ctl_parse_reg(struct ctl_reg *r, const char *name, const char *data)
{
	json_t *o = json_loads(data, 0, NULL);

	memset(r, 0, sizeof(*r));
	copy_str(r->id, sizeof(r->id), name);
	if (!json_is_object(o)) {
		json_decref(o);
		return;
	}
	if (json_str(o, "addr"))
		copy_str(r->addr, sizeof(r->addr), json_str(o, "addr"));
	if (json_str(o, "admin"))
		copy_str(r->admin, sizeof(r->admin), json_str(o, "admin"));
	r->weight = (uint32_t)json_u64(o, "weight");
	r->standby = json_is_true(json_object_get(o, "standby"));
	r->applied_epoch = json_u64(o, "applied_epoch");
	r->valid = true;
	json_decref(o);
}

static int cmp_reg(const void *a, const void *b)
{
	return strcmp(((const struct ctl_reg *)a)->id,
		      ((const struct ctl_reg *)b)->id);
}

/* The number in an election znode name: its last 10 digits (ZooKeeper's
 * sequence suffix), whatever prefix a candidate used. */
static uint64_t seq_of(const char *name)
{
	size_t n = strlen(name);

	return n >= 10 ? strtoull(name + n - 10, NULL, 10) : UINT64_MAX;
}

/* Reads ROOT/migrations/<id> and sums its sources' records. Returns ZOK,
 * ZNONODE, or another ZooKeeper error. */
static int ctl_load_progress(struct ctl *c, uint64_t id, bool watch,
			     struct ctl_progress *p)
{
	char path[CTL_PATH_MAX], child[CTL_PATH_MAX], *data = NULL;
	struct String_vector sv;
	struct Stat st;
	json_t *o;
	int rc;

	memset(p, 0, sizeof(*p));
	p->id = id;
	ctl_path(c, path, sizeof(path), "migrations/%" PRIu64, id);
	rc = ctl_get(c, path, watch, &data, &st);
	if (rc != ZOK)
		return rc;
	p->present = true;
	o = json_loads(data, 0, NULL);
	free(data);
	if (json_is_object(o)) {
		copy_str(p->state, sizeof(p->state), json_str(o, "state"));
		copy_str(p->reason, sizeof(p->reason), json_str(o, "reason"));
		p->ranges = json_u64(o, "ranges");
		p->started_ms = (int64_t)json_u64(o, "started_ms");
		p->finished_ms = (int64_t)json_u64(o, "finished_ms");
	}
	json_decref(o);
	if (!p->state[0])
		copy_str(p->state, sizeof(p->state), "unknown");
	rc = ctl_children(c, path, &sv);
	if (rc != ZOK)
		return rc == ZNONODE ? ZOK : rc;
	for (int i = 0; i < sv.count; i++) {
		if (!join_path(child, sizeof(child), path, sv.data[i]) ||
		    ctl_get(c, child, false, &data, &st) != ZOK)
			continue;
		o = json_loads(data, 0, NULL);
		free(data);
		if (json_is_object(o)) {
			p->sources++;
			p->keys_total += json_u64(o, "keys_total");
			p->keys_sent += json_u64(o, "keys_sent");
			p->bytes_sent += json_u64(o, "bytes_sent");
			p->failed_targets += json_u64(o, "failed_targets");
			if (json_is_true(json_object_get(o, "done")))
				p->sources_done++;
		}
		json_decref(o);
	}
	deallocate_String_vector(&sv);
	return ZOK;
}

static void ctl_view_free(struct ctl_view *v)
{
	map_unref(v->map);
	free(v->map_json);
	free(v->regs);
	memset(v, 0, sizeof(*v));
}

/* Loads map, registrations, leader and migration. 0 or an exit code. */
static int ctl_load(struct ctl *c, struct ctl_view *v)
{
	char path[CTL_PATH_MAX], child[CTL_PATH_MAX], err[256], *data;
	struct String_vector sv;
	struct Stat st;
	int rc;

	memset(v, 0, sizeof(*v));
	ctl_path(c, path, sizeof(path), "map");
	rc = ctl_get(c, path, false, &v->map_json, &st);
	if (rc == ZOK) {
		if (map_parse(v->map_json, strlen(v->map_json), &v->map, err,
			      sizeof(err)) < 0) {
			rc = ctl_fail(CTL_EXIT_ERR, "bad shard map in %s: %s",
				      path, err);
			goto fail;
		}
	} else if (rc != ZNONODE) {
		rc = ctl_zk_error(rc, "reading", path);
		goto fail;
	}

	ctl_path(c, path, sizeof(path), "nodes");
	rc = ctl_children(c, path, &sv);
	if (rc == ZOK) {
		v->regs = calloc((size_t)sv.count + 1, sizeof(*v->regs));
		if (!v->regs) {
			deallocate_String_vector(&sv);
			rc = ctl_fail(CTL_EXIT_ERR, "out of memory");
			goto fail;
		}
		for (int i = 0; i < sv.count; i++) {
			/* gone between the listing and the read: not registered */
			if (!join_path(child, sizeof(child), path, sv.data[i]) ||
			    ctl_get(c, child, false, &data, &st) != ZOK)
				continue;
			ctl_parse_reg(&v->regs[v->nregs++], sv.data[i], data);
			free(data);
		}
		deallocate_String_vector(&sv);
		qsort(v->regs, v->nregs, sizeof(*v->regs), cmp_reg);
	} else if (rc != ZNONODE) {
		rc = ctl_zk_error(rc, "listing", path);
		goto fail;
	}

	ctl_path(c, path, sizeof(path), "election");
	rc = ctl_children(c, path, &sv);
	if (rc == ZOK) {
		const char *best = NULL;

		for (int i = 0; i < sv.count; i++)
			if (!best || seq_of(sv.data[i]) < seq_of(best))
				best = sv.data[i];
		if (best) {
			if (join_path(child, sizeof(child), path, best) &&
			    ctl_get(c, child, false, &data, &st) == ZOK) {
				copy_str(v->leader, sizeof(v->leader), data);
				free(data);
			}
		}
		deallocate_String_vector(&sv);
	} else if (rc != ZNONODE) {
		rc = ctl_zk_error(rc, "listing", path);
		goto fail;
	}

	if (v->map && v->map->migration) {
		rc = ctl_load_progress(c, v->map->migration, false, &v->mig);
		if (rc != ZOK && rc != ZNONODE) {
			rc = ctl_zk_error(rc, "reading migration of", "map");
			goto fail;
		}
	}
	return 0;
fail:
	ctl_view_free(v);
	return rc;
}

static const struct ctl_reg *view_reg(const struct ctl_view *v, const char *id)
{
	for (unsigned i = 0; i < v->nregs; i++)
		if (strcmp(v->regs[i].id, id) == 0)
			return &v->regs[i];
	return NULL;
}

/* Share (0..1) of the hash space node i of the map owns in the new ring. */
static double view_share(const struct ctl_view *v, int i)
{
	const struct shard_map *m = v->map;

	if (!m || !m->ring || !m->ring_node)
		return 0;
	for (unsigned s = 0; s < ring_nservers(m->ring); s++)
		if (m->ring_node[s] == i)
			return ring_share(m->ring, s);
	return 0;
}

/* active | standby | joining | draining, of a map node or a registration
 * that is not in the map. */
static const char *view_state(const struct ctl_view *v, const char *id)
{
	const struct shard_map *m = v->map;
	int i = m ? map_find(m, id) : -1;
	int p = m && m->migration ? map_find_prev(m, id) : -1;
	bool prev_active = p >= 0 && m->prev[p].state == MAP_NODE_ACTIVE;

	if (i < 0) {
		const struct ctl_reg *r = view_reg(v, id);

		return r && r->standby ? "standby" : "joining";
	}
	if (m->nodes[i].state == MAP_NODE_ACTIVE)
		return m->migration && !prev_active ? "joining" : "active";
	return m->migration && prev_active ? "draining" : "standby";
}

/* Every id the cluster knows: map nodes, then registrations not in the map;
 * sorted by id. Returns a malloc'd array of pointers into v. */
static const char **view_ids(const struct ctl_view *v, unsigned *n)
{
	unsigned cap = (v->map ? v->map->nnodes : 0) + v->nregs, k = 0;
	const char **ids = calloc(cap + 1, sizeof(*ids));

	if (!ids)
		return NULL;
	for (unsigned i = 0; v->map && i < v->map->nnodes; i++)
		ids[k++] = v->map->nodes[i].id;
	for (unsigned i = 0; i < v->nregs; i++)
		if (!v->map || map_find(v->map, v->regs[i].id) < 0)
			ids[k++] = v->regs[i].id;
	for (unsigned i = 1; i < k; i++)
		for (unsigned j = i; j > 0 && strcmp(ids[j - 1], ids[j]) > 0; j--) {
			const char *t = ids[j];

			ids[j] = ids[j - 1];
			ids[j - 1] = t;
		}
	*n = k;
	return ids;
}

static bool view_known(const struct ctl_view *v, const char *id)
{
	return (v->map && map_find(v->map, id) >= 0) || view_reg(v, id);
}

/* "dpcachectl: unknown node ID (known: a, b, c)" */
static int fail_unknown(const struct ctl_view *v, const char *id)
{
	unsigned n = 0;
	const char **ids = view_ids(v, &n);
	char list[2048] = "";
	size_t k = 0;

	for (unsigned i = 0; ids && i < n && k < sizeof(list) - 1; i++)
		k += (size_t)snprintf(list + k, sizeof(list) - k, "%s%s",
				      i ? ", " : "", ids[i]);
	free(ids);
	return ctl_fail(CTL_EXIT_ERR, "unknown node %s (known: %s)", id,
			n ? list : "none");
}

/* ------------------------------------------------------------------ */
/* Output helpers                                                      */

/* A text table: rows of cells, columns padded to their widest cell. */
struct ctl_table {
	unsigned ncols, nrows;
	char **cell;                 /* nrows * ncols, malloc'd strings */
};

static void table_row(struct ctl_table *t, ...)
{
	char **cell = realloc(t->cell, sizeof(*cell) * t->ncols * (t->nrows + 1));
	va_list ap;

	if (!cell)
		return;
	t->cell = cell;
	va_start(ap, t);
	for (unsigned i = 0; i < t->ncols; i++) {
		const char *s = va_arg(ap, const char *);

		cell[t->nrows * t->ncols + i] = strdup(s ? s : "-");
	}
	va_end(ap);
	t->nrows++;
}

static void table_free(struct ctl_table *t)
{
	for (unsigned i = 0; i < t->nrows * t->ncols; i++)
		free(t->cell[i]);
	free(t->cell);
	t->cell = NULL;
	t->nrows = 0;
}

static void table_print(struct ctl_table *t)
{
	size_t w[32] = { 0 };

	for (unsigned r = 0; r < t->nrows; r++)
		for (unsigned col = 0; col < t->ncols && col < 32; col++) {
			const char *s = t->cell[r * t->ncols + col];
			size_t n = s ? strlen(s) : 1;

			if (n > w[col])
				w[col] = n;
		}
	for (unsigned r = 0; r < t->nrows; r++) {
		for (unsigned col = 0; col < t->ncols; col++) {
			const char *s = t->cell[r * t->ncols + col];

			if (col + 1 == t->ncols)
				printf("%s\n", s ? s : "-");
			else
				printf("%-*s  ", (int)w[col], s ? s : "-");
		}
	}
	table_free(t);
}

static void print_json(json_t *doc)
{
	char *s = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) :
			NULL;

	if (!s)
		fprintf(stderr, "dpcachectl: cannot build the JSON document "
			"(out of memory?)\n");
	if (s) {
		printf("%s\n", s);
		free(s);
	}
	json_decref(doc);
}

/* "12 ranges<tail>" or "" when the leader's record gives no range count. */
static const char *ranges_text(const struct ctl_progress *p, const char *tail,
			       char *buf, size_t n)
{
	if (!p->ranges)
		return "";
	snprintf(buf, n, "%" PRIu64 " ranges%s", p->ranges, tail);
	return buf;
}

static json_t *progress_json(const struct ctl_progress *p)
{
	if (!p->present)
		return p->id ? json_pack("{s:I,s:s}", "id", (json_int_t)p->id,
					 "state", "no record yet") : json_null();
	return json_pack("{s:I,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:i}",
			 "id", (json_int_t)p->id, "state", p->state,
			 "reason", p->reason, "ranges", (json_int_t)p->ranges,
			 "started_ms", (json_int_t)p->started_ms,
			 "finished_ms", (json_int_t)p->finished_ms,
			 "keys_total", (json_int_t)p->keys_total,
			 "keys_sent", (json_int_t)p->keys_sent,
			 "bytes_sent", (json_int_t)p->bytes_sent,
			 "failed_targets", (json_int_t)p->failed_targets,
			 "sources", (int)p->sources,
			 "sources_done", (int)p->sources_done);
}

/* ------------------------------------------------------------------ */
/* status, nodes, map                                                  */

static int cmd_status(struct ctl *c)
{
	struct ctl_view v;
	json_t *act, *stb, *unm, *down;
	unsigned n = 0;
	const char **ids;
	int rc = ctl_load(c, &v);

	if (rc)
		return rc;
	ids = view_ids(&v, &n);
	act = json_array();
	stb = json_array();
	unm = json_array();
	down = json_array();
	for (unsigned i = 0; ids && i < n; i++) {
		int k = v.map ? map_find(v.map, ids[i]) : -1;
		bool up = view_reg(&v, ids[i]) != NULL;

		if (k < 0)
			json_array_append_new(unm, json_string(ids[i]));
		else if (v.map->nodes[k].state == MAP_NODE_ACTIVE)
			json_array_append_new(act, json_string(ids[i]));
		else
			json_array_append_new(stb, json_string(ids[i]));
		if (k >= 0 && !up)
			json_array_append_new(down, json_string(ids[i]));
	}
	free(ids);

	if (c->json) {
		print_json(json_pack("{s:o,s:o,s:I,s:o,s:{s:o,s:o,s:o,s:o}}",
			"leader", v.leader[0] ? json_string(v.leader) : json_null(),
			"map", v.map ? json_true() : json_false(),
			"epoch", (json_int_t)(v.map ? v.map->epoch : 0),
			"migration", v.map && v.map->migration ?
				progress_json(&v.mig) : json_null(),
			"nodes", "active", act, "standby", stb,
			"registered_not_in_map", unm, "down", down));
		ctl_view_free(&v);
		return 0;
	}
	printf("leader:     %s\n", v.leader[0] ? v.leader : "(none)");
	if (!v.map)
		printf("map:        none yet (the first leader creates it)\n");
	else if (v.map->migration)
		printf("map:        epoch %" PRIu64 ", migration %" PRIu64
		       " in flight\n", v.map->epoch, v.map->migration);
	else
		printf("map:        epoch %" PRIu64 ", stable\n", v.map->epoch);
	printf("nodes:      %zu active, %zu standby, %zu registered but not in map,"
	       " %zu down\n", json_array_size(act), json_array_size(stb),
	       json_array_size(unm), json_array_size(down));
	{
		struct { const char *label; json_t *a; } lists[] = {
			{ "active", act }, { "standby", stb },
			{ "not in map", unm }, { "down", down },
		};

		for (unsigned i = 0; i < 4; i++) {
			size_t k;
			json_t *e;

			if (!json_array_size(lists[i].a))
				continue;
			printf("  %-11s", lists[i].label);
			json_array_foreach(lists[i].a, k, e)
				printf("%s%s", k ? ", " : "", json_string_value(e));
			printf("\n");
		}
	}
	if (v.map && v.map->migration) {
		const struct ctl_progress *p = &v.mig;
		char sent[32], rbuf[48];

		if (!p->present) {
			printf("migration:  %" PRIu64 " (no record yet)\n",
			       v.map->migration);
		} else {
			human_bytes((double)p->bytes_sent, sent, sizeof(sent));
			printf("migration:  %" PRIu64 " (%s), %s, %s"
			       "keys %" PRIu64 "/%" PRIu64 " (%.0f%%), "
			       "%s sent, sources %u/%u done, %.0f s\n",
			       p->id, p->reason, p->state,
			       ranges_text(p, ", ", rbuf, sizeof(rbuf)),
			       p->keys_sent, p->keys_total,
			       p->keys_total ? 100.0 * (double)p->keys_sent /
					       (double)p->keys_total : 0.0,
			       sent, p->sources_done, p->sources,
			       p->started_ms ? (double)(wall_ms() - p->started_ms) / 1000 : 0.0);
		}
	} else {
		printf("migration:  none\n");
	}
	json_decref(act);
	json_decref(stb);
	json_decref(unm);
	json_decref(down);
	ctl_view_free(&v);
	return 0;
}

static int cmd_nodes(struct ctl *c)
{
	struct ctl_view v;
	struct ctl_table t = { .ncols = 7 };
	json_t *arr = json_array();
	unsigned n = 0;
	const char **ids;
	int rc = ctl_load(c, &v);

	if (rc) {
		json_decref(arr);
		return rc;
	}
	ids = view_ids(&v, &n);
	table_row(&t, "ID", "ADDR", "WEIGHT", "STATE", "UP", "SHARE", "ADMIN");
	for (unsigned i = 0; ids && i < n; i++) {
		const struct ctl_reg *r = view_reg(&v, ids[i]);
		int k = v.map ? map_find(v.map, ids[i]) : -1;
		const char *addr = k >= 0 ? v.map->nodes[k].addr : r->addr;
		uint32_t weight = k >= 0 ? v.map->nodes[k].weight : r->weight;
		double share = k >= 0 ? view_share(&v, k) : 0;
		const char *state = view_state(&v, ids[i]);
		char w[16], s[16];

		snprintf(w, sizeof(w), "%u", weight);
		snprintf(s, sizeof(s), "%.1f%%", share * 100);
		table_row(&t, ids[i], addr, w, state, r ? "yes" : "no", s,
			  r && r->admin[0] ? r->admin : "-");
		json_array_append_new(arr, json_pack("{s:s,s:s,s:i,s:s,s:b,s:b,s:f,s:o,s:o}",
			"id", ids[i], "addr", addr, "weight", (int)weight,
			"state", state, "up", r != NULL, "in_map", k >= 0,
			"share", share,
			"admin", r && r->admin[0] ? json_string(r->admin) : json_null(),
			"applied_epoch", r ? json_integer((json_int_t)r->applied_epoch) :
					     json_null()));
	}
	free(ids);
	if (c->json) {
		print_json(json_pack("{s:I,s:I,s:o}",
			"epoch", (json_int_t)(v.map ? v.map->epoch : 0),
			"migration", (json_int_t)(v.map ? v.map->migration : 0),
			"nodes", arr));
		table_free(&t);
	} else {
		table_print(&t);
		json_decref(arr);
	}
	ctl_view_free(&v);
	return 0;
}

/* The nodes (or, with 'prev', the members before the migration) with each
 * one's share of its ring. */
static void print_map_nodes(const struct shard_map *m, bool prev)
{
	struct ctl_table t = { .ncols = 5 };
	const struct map_node *nodes = prev ? m->prev : m->nodes;
	unsigned n = prev ? m->nprev : m->nnodes;
	struct ring *ring = prev ? m->prev_ring : m->ring;
	int *ring_node = prev ? m->prev_ring_node : m->ring_node;

	table_row(&t, "ID", "ADDR", "WEIGHT", "STATE", "SHARE");
	for (unsigned i = 0; i < n; i++) {
		char w[16], s[16];
		double share = 0;

		for (unsigned k = 0; ring && ring_node && k < ring_nservers(ring); k++)
			if (ring_node[k] == (int)i)
				share = ring_share(ring, k);
		snprintf(w, sizeof(w), "%u", nodes[i].weight);
		snprintf(s, sizeof(s), "%.1f%%", share * 100);
		table_row(&t, nodes[i].id, nodes[i].addr, w,
			  nodes[i].state == MAP_NODE_ACTIVE ? "active" : "standby",
			  s);
	}
	table_print(&t);
}

static int cmd_map(struct ctl *c)
{
	struct ctl_view v;
	const char *fmt = c->format ? c->format : (c->json ? "json" : "text");
	int rc;

	if (strcmp(fmt, "text") && strcmp(fmt, "json") &&
	    strcmp(fmt, "libmemcached"))
		die_usage("unknown map format '%s' (text, json, libmemcached)", fmt);
	rc = ctl_load(c, &v);
	if (rc)
		return rc;
	if (!v.map) {
		ctl_view_free(&v);
		return ctl_fail(CTL_EXIT_ERR, "no shard map in %s/map yet", c->root);
	}
	if (strcmp(fmt, "json") == 0) {
		printf("%s\n", v.map_json);
	} else if (strcmp(fmt, "libmemcached") == 0) {
		/* "host:port:weight,..." of the ring's nodes: accepted by
		 * libmemcached's memcached_servers_parse (and so by its tools'
		 * --servers) and, split on ',', by pylibmc.Client. With
		 * MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED the client's continuum is
		 * the one the cluster routes by. */
		unsigned k = 0;

		for (unsigned i = 0; i < v.map->nnodes; i++) {
			const struct map_node *nd = &v.map->nodes[i];

			if (nd->state != MAP_NODE_ACTIVE || nd->weight == 0)
				continue;
			printf("%s%s:%u", k++ ? "," : "", nd->addr, nd->weight);
		}
		printf("\n");
		if (!k) {
			ctl_view_free(&v);
			return ctl_fail(CTL_EXIT_ERR, "the map has no active node");
		}
	} else {
		printf("epoch %" PRIu64 ", ", v.map->epoch);
		if (v.map->migration)
			printf("migration %" PRIu64 " in flight (%s)\n",
			       v.map->migration,
			       v.mig.present ? v.mig.reason : "no record yet");
		else
			printf("stable\n");
		print_map_nodes(v.map, false);
		if (v.map->migration && v.map->nprev) {
			struct map_move_stats ms;

			map_move_stats(v.map, &ms);
			printf("\nbefore migration %" PRIu64 " (%.1f%% of the hash "
			       "space moving, %u of %u arcs):\n", v.map->migration,
			       ms.fraction_moving * 100, ms.arcs_moving,
			       ms.arcs_total);
			print_map_nodes(v.map, true);
		}
	}
	ctl_view_free(&v);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Progress of a migration                                             */

struct ctl_meter {
	bool tty;
	bool drawn;                 /* a TTY bar is on the line */
	double t0, last_print;
	uint64_t keys0, bytes0;
	bool have0;
};

static void meter_show(struct ctl_meter *mt, const struct ctl_progress *p,
		       bool force)
{
	double t = now_s(), dt, krate = 0, brate = 0, frac;
	char sent[32], rate[32], eta[32], rbuf[48];

	if (!p->present)
		return;
	if (!mt->have0) {
		mt->t0 = t;
		mt->keys0 = p->keys_sent;
		mt->bytes0 = p->bytes_sent;
		mt->have0 = true;
	}
	if (!force && t - mt->last_print < (mt->tty ? 0.2 : 1.0))
		return;
	mt->last_print = t;
	dt = t - mt->t0;
	if (dt > 0.2) {
		krate = (double)(p->keys_sent - mt->keys0) / dt;
		brate = (double)(p->bytes_sent - mt->bytes0) / dt;
	}
	frac = p->keys_total ? (double)p->keys_sent / (double)p->keys_total : 0;
	if (frac > 1)
		frac = 1;
	human_bytes((double)p->bytes_sent, sent, sizeof(sent));
	human_bytes(brate, rate, sizeof(rate));
	if (p->keys_total && p->keys_sent >= p->keys_total)
		snprintf(eta, sizeof(eta), "0 s");
	else if (krate > 0)
		snprintf(eta, sizeof(eta), "%.0f s",
			 (double)(p->keys_total - p->keys_sent) / krate);
	else
		snprintf(eta, sizeof(eta), "?");
	if (mt->tty) {
		char bar[31];
		int fill = (int)(frac * 30);

		for (int i = 0; i < 30; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[30] = '\0';
		fprintf(stderr, "\r[%s] %3.0f%% migration %" PRIu64 ": %s"
			"keys %" PRIu64 "/%" PRIu64 ", %s, %s/s, ETA %s\033[K",
			bar, frac * 100, p->id,
			ranges_text(p, ", ", rbuf, sizeof(rbuf)), p->keys_sent,
			p->keys_total, sent, rate, eta);
		mt->drawn = true;
	} else {
		fprintf(stderr, "migration %" PRIu64 " (%s): %s, %s"
			"keys %" PRIu64 "/%" PRIu64 " (%.0f%%), "
			"%s sent, %s/s, ETA %s, sources %u/%u done\n",
			p->id, p->reason, p->state,
			ranges_text(p, " moving, ", rbuf, sizeof(rbuf)), p->keys_sent,
			p->keys_total, frac * 100, sent, rate, eta,
			p->sources_done, p->sources);
	}
	fflush(stderr);
}

static void meter_end(struct ctl_meter *mt)
{
	if (mt->tty && mt->drawn)
		fprintf(stderr, "\n");
	mt->drawn = false;
}

static bool progress_final(const struct ctl_progress *p)
{
	return p->present && (strcmp(p->state, "done") == 0 ||
			      strcmp(p->state, "rolled_back") == 0);
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */

static int ctl_ensure_path(struct ctl *c, const char *path)
{
	char buf[CTL_PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char saved = *p;
			int rc;

			*p = '\0';
			rc = zoo_create(c->zh, buf, NULL, -1, &ZOO_OPEN_ACL_UNSAFE,
					0, NULL, 0);
			*p = saved;
			if (rc != ZOK && rc != ZNODEEXISTS)
				return rc;
			if (saved == '\0')
				return ZOK;
		}
	}
}

struct ctl_req_state {
	char status[24];
	char error[256];
	uint64_t migration;
	int version;
};

static bool read_req(const char *data, struct ctl_req_state *r)
{
	json_t *o = json_loads(data, 0, NULL);
	const char *s;

	memset(r, 0, sizeof(*r));
	if (!json_is_object(o)) {
		json_decref(o);
		return false;
	}
	copy_str(r->status, sizeof(r->status), json_str(o, "status"));
	s = json_str(o, "error");
	if (!s)
		s = json_str(o, "message");
	copy_str(r->error, sizeof(r->error), s);
	r->migration = json_u64(o, "migration");
	json_decref(o);
	return true;
}

static int print_result(struct ctl *c, const char *path, const char *op,
			const char *id, const struct ctl_req_state *r,
			const struct ctl_progress *p, double secs, int code)
{
	if (c->json) {
		print_json(json_pack("{s:s,s:s,s:o,s:s,s:o,s:o,s:f}",
			"request", path, "op", op,
			"id", id ? json_string(id) : json_null(),
			"status", r->status,
			"error", r->error[0] ? json_string(r->error) : json_null(),
			"migration", r->migration ? progress_json(p) : json_null(),
			"seconds", secs));
		return code;
	}
	if (code != CTL_EXIT_OK)
		return code;
	printf("%s%s%s: %s", op, id ? " " : "", id ? id : "", r->status);
	if (r->error[0])
		printf(" (%s)", r->error);
	if (r->migration && p->present) {
		char sent[32];

		human_bytes((double)p->bytes_sent, sent, sizeof(sent));
		printf(", migration %" PRIu64 " %s: %" PRIu64 " keys, %s sent",
		       r->migration, p->state, p->keys_sent, sent);
	}
	printf(" in %.1f s\n", secs);
	return code;
}

/* Waits for migration 'id' to reach done or rolled_back, showing progress.
 * 0 done, 1 rolled back / gone, 3, 4. */
static int wait_migration(struct ctl *c, uint64_t id, double deadline,
			  struct ctl_progress *p)
{
	struct ctl_meter mt = { .tty = isatty(STDERR_FILENO) };
	double lost = 0;

	for (;;) {
		unsigned seen = ctl_events(c);
		char path[CTL_PATH_MAX];
		int rc = ctl_load_progress(c, id, true, p);

		if (zk_retry(c, rc, &lost)) {
			ctl_wait_event(c, seen, 0.2);
			continue;
		}
		if (rc == ZNONODE) {
			meter_end(&mt);
			return ctl_fail(CTL_EXIT_ERR, "no migration %" PRIu64, id);
		}
		if (rc != ZOK) {
			meter_end(&mt);
			ctl_path(c, path, sizeof(path), "migrations/%" PRIu64, id);
			return ctl_zk_error(rc, "reading", path);
		}
		if (progress_final(p)) {
			meter_show(&mt, p, true);
			meter_end(&mt);
			return strcmp(p->state, "done") == 0 ? CTL_EXIT_OK :
				ctl_fail(CTL_EXIT_ERR, "migration %" PRIu64
					 " (%s) rolled back", id, p->reason);
		}
		meter_show(&mt, p, false);
		if (deadline > 0 && now_s() >= deadline) {
			meter_end(&mt);
			return ctl_fail(CTL_EXIT_TIMEOUT, "timed out waiting for "
					"migration %" PRIu64 " (%s)", id, p->reason);
		}
		ctl_wait_event(c, seen, 0.2);
	}
}

/* A migration id argument: 1.. ; usage error otherwise. */
static uint64_t parse_migration_id(const char *arg)
{
	char *end;
	uint64_t id;

	errno = 0;
	id = strtoull(arg, &end, 10);
	if (errno || *end || id == 0 || arg[0] < '0' || arg[0] > '9')
		die_usage("bad migration id '%s'", arg);
	return id;
}

static int cmd_wait(struct ctl *c, const char *arg)
{
	struct ctl_progress p = { 0 };
	double t0 = now_s();
	uint64_t id;
	int rc;

	if (arg) {
		id = parse_migration_id(arg);
	} else {
		struct ctl_view v;

		rc = ctl_load(c, &v);
		if (rc)
			return rc;
		id = v.map ? v.map->migration : 0;
		ctl_view_free(&v);
		if (!id) {
			if (c->json)
				print_json(json_pack("{s:n}", "migration"));
			else
				printf("no migration in flight\n");
			return 0;
		}
	}
	rc = wait_migration(c, id, c->wait_timeout_s > 0 ?
			    t0 + c->wait_timeout_s : 0, &p);
	if (c->json)
		print_json(json_pack("{s:o,s:f}", "migration", progress_json(&p),
				     "seconds", now_s() - t0));
	else if (rc == CTL_EXIT_OK)
		printf("migration %" PRIu64 " (%s) done: %" PRIu64 " keys in %.1f s\n",
		       id, p.reason, p.keys_sent, now_s() - t0);
	return rc;
}

/* add/remove/drain/weight/rebalance: validate, write the request, wait. */
static int cmd_request(struct ctl *c, const char *op, const char *id,
		       uint32_t weight)
{
	struct ctl_view v;
	char dir[CTL_PATH_MAX], base[CTL_PATH_MAX], path[CTL_PATH_MAX];
	struct ctl_req_state r = { 0 };
	struct ctl_progress p = { 0 };
	struct ctl_meter mt = { .tty = isatty(STDERR_FILENO) };
	json_t *req;
	char *body;
	double t0 = now_s();
	double accept_deadline = t0 + c->timeout_s;
	double deadline = c->wait_timeout_s > 0 ? t0 + c->wait_timeout_s : 0;
	double lost = 0;
	int rc = ctl_load(c, &v);

	if (rc)
		return rc;
	if (id && !view_known(&v, id)) {
		rc = fail_unknown(&v, id);
		ctl_view_free(&v);
		return rc;
	}
	if (v.map && v.map->migration) {
		rc = ctl_fail(CTL_EXIT_ERR, "conflicting operation in flight: "
			      "migration %" PRIu64 " (%s)", v.map->migration,
			      v.mig.present && v.mig.reason[0] ? v.mig.reason :
			      "no record yet");
		ctl_view_free(&v);
		return rc;
	}
	ctl_view_free(&v);

	req = json_pack("{s:s}", "op", op);
	if (id)
		json_object_set_new(req, "id", json_string(id));
	if (strcmp(op, "weight") == 0)
		json_object_set_new(req, "weight", json_integer(weight));
	json_object_set_new(req, "status", json_string("pending"));
	body = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(req);
	if (!body)
		return ctl_fail(CTL_EXIT_ERR, "out of memory");
	ctl_path(c, dir, sizeof(dir), "requests");
	rc = ctl_ensure_path(c, dir);
	if (rc != ZOK) {
		free(body);
		return ctl_zk_error(rc, "creating", dir);
	}
	if (!join_path(base, sizeof(base), dir, "r_"))
		return ctl_fail(CTL_EXIT_USAGE, "ZooKeeper root too long");
	rc = zoo_create(c->zh, base, body, (int)strlen(body), &ZOO_OPEN_ACL_UNSAFE,
			ZOO_PERSISTENT_SEQUENTIAL, path, sizeof(path));
	free(body);
	if (rc != ZOK)
		return ctl_zk_error(rc, "creating", base);

	for (;;) {
		unsigned seen = ctl_events(c);
		struct Stat st;
		char *data;
		bool final = false;
		int code = CTL_EXIT_OK;

		rc = ctl_get(c, path, true, &data, &st);
		if (zk_retry(c, rc, &lost)) {
			ctl_wait_event(c, seen, 0.2);
			continue;
		}
		if (rc == ZNONODE) {
			meter_end(&mt);
			return ctl_fail(CTL_EXIT_ERR, "request %s vanished before "
					"a final status", path);
		}
		if (rc != ZOK) {
			meter_end(&mt);
			return ctl_zk_error(rc, "reading", path);
		}
		if (!read_req(data, &r)) {
			free(data);
			meter_end(&mt);
			return ctl_fail(CTL_EXIT_ERR, "request %s holds no JSON "
					"object", path);
		}
		free(data);
		r.version = st.version;

		if (r.migration) {
			rc = ctl_load_progress(c, r.migration, true, &p);
			if (zk_retry(c, rc, &lost)) {
				ctl_wait_event(c, seen, 0.2);
				continue;
			}
			if (rc != ZOK && rc != ZNONODE) {
				meter_end(&mt);
				return ctl_zk_error(rc, "reading migration of", path);
			}
		}
		if (strcmp(r.status, "pending") == 0) {
			if (now_s() >= accept_deadline) {
				/* Withdraw it unless the leader took it in
				 * the meantime (version changed). */
				if (zoo_delete(c->zh, path, r.version) == ZOK)
					return ctl_fail(CTL_EXIT_TIMEOUT,
						"timed out: no leader took request %s "
						"within %g s (is a dpcached leader "
						"running?); request withdrawn",
						path, c->timeout_s);
				continue;
			}
		} else if (strcmp(r.status, "rejected") == 0) {
			final = true;
			code = ctl_fail(CTL_EXIT_ERR, "rejected: %s",
					r.error[0] ? r.error : "(no reason given)");
		} else if (strcmp(r.status, "running") == 0 ||
			   strcmp(r.status, "done") == 0) {
			bool done = strcmp(r.status, "done") == 0;

			if (r.migration && c->detach) {
				meter_end(&mt);
				if (c->json)
					print_json(json_pack("{s:s,s:s,s:o,s:s,s:I}",
						"request", path, "op", op,
						"id", id ? json_string(id) : json_null(),
						"status", r.status,
						"migration", (json_int_t)r.migration));
				else
					printf("migration %" PRIu64 " started "
					       "(%s%s%s); follow it with "
					       "'dpcachectl wait %" PRIu64 "'\n",
					       r.migration, op, id ? " " : "",
					       id ? id : "", r.migration);
				return CTL_EXIT_OK;
			}
			if (r.migration && p.present) {
				if (progress_final(&p)) {
					/* the migration's end is the request's */
					final = true;
					copy_str(r.status, sizeof(r.status), "done");
					meter_show(&mt, &p, true);
					if (strcmp(p.state, "rolled_back") == 0) {
						meter_end(&mt);
						code = ctl_fail(CTL_EXIT_ERR,
							"migration %" PRIu64 " (%s) "
							"rolled back", r.migration,
							p.reason);
					}
				} else {
					meter_show(&mt, &p, false);
				}
			} else if (done) {
				/* no migration, or its record is gone */
				final = true;
			}
		} else {
			final = true;
			code = ctl_fail(CTL_EXIT_ERR, "request %s has an unknown "
					"status '%s'", path, r.status);
		}
		if (final) {
			meter_end(&mt);
			zoo_delete(c->zh, path, -1);
			return print_result(c, path, op, id, &r, &p, now_s() - t0,
					    code);
		}
		if (deadline > 0 && now_s() >= deadline) {
			meter_end(&mt);
			return ctl_fail(CTL_EXIT_TIMEOUT, "timed out waiting for "
					"request %s (status %s)", path, r.status);
		}
		ctl_wait_event(c, seen, 0.2);
	}
}

/* ------------------------------------------------------------------ */
/* stats                                                               */

struct ctl_kv {
	char *name, *value;
};

struct ctl_stats {
	struct ctl_kv *kv;
	unsigned n;
};

static void stats_free(struct ctl_stats *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		free(s->kv[i].name);
		free(s->kv[i].value);
	}
	free(s->kv);
	memset(s, 0, sizeof(*s));
}

static const char *stats_get(const struct ctl_stats *s, const char *name)
{
	for (unsigned i = 0; i < s->n; i++)
		if (strcmp(s->kv[i].name, name) == 0)
			return s->kv[i].value;
	return NULL;
}

/* Connects to "host:port" within timeout. fd or -errno / -EHOSTUNREACH. */
static int tcp_connect(const char *addr, double timeout_s, char *err, size_t n)
{
	char host[MAP_ADDR_MAX + 2];
	const char *colon = strrchr(addr, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	struct pollfd pfd;
	int fd, rc, soerr = 0;
	socklen_t sl = sizeof(soerr);
	const char *h = host;

	if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host)) {
		snprintf(err, n, "bad address '%s'", addr);
		return -EINVAL;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = '\0';
		h = host + 1;
	}
	rc = getaddrinfo(h, colon + 1, &hints, &res);
	if (rc) {
		snprintf(err, n, "%s", gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		freeaddrinfo(res);
		snprintf(err, n, "%s", strerror(-rc));
		return rc;
	}
	rc = connect(fd, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if (rc < 0 && errno != EINPROGRESS) {
		rc = -errno;
		goto fail;
	}
	if (rc < 0) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		rc = poll(&pfd, 1, (int)(timeout_s * 1000));
		if (rc == 0) {
			rc = -ETIMEDOUT;
			goto fail;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr) {
			rc = -soerr;
			goto fail;
		}
	}
	return fd;
fail:
	snprintf(err, n, "%s", strerror(-rc));
	close(fd);
	return rc;
}

/* Parses one reply of 'stats [group]': STAT lines up to END. Returns the
 * bytes consumed, 0 when incomplete, -1 when the node answered an error
 * line (the group does not exist there; *consumed set past it). */
static long parse_stats_reply(const char *buf, size_t len, struct ctl_stats *s)
{
	size_t off = 0;

	for (;;) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t ll;
		char line[1024];

		if (!nl)
			return 0;
		ll = (size_t)(nl - (buf + off));
		if (ll && buf[off + ll - 1] == '\r')
			ll--;
		if (ll >= sizeof(line))
			ll = sizeof(line) - 1;
		memcpy(line, buf + off, ll);
		line[ll] = '\0';
		off = (size_t)(nl - buf) + 1;
		if (strcmp(line, "END") == 0)
			return (long)off;
		if (strncmp(line, "STAT ", 5) == 0) {
			char *name = line + 5, *sp = strchr(name, ' ');
			struct ctl_kv *kv;

			if (!sp)
				continue;           /* malformed: skipped */
			*sp = '\0';
			kv = realloc(s->kv, sizeof(*kv) * (s->n + 1));
			if (!kv)
				continue;
			s->kv = kv;
			kv[s->n].name = strdup(name);
			kv[s->n].value = strdup(sp + 1);
			if (kv[s->n].name && kv[s->n].value) {
				s->n++;
			} else {
				free(kv[s->n].name);
				free(kv[s->n].value);
			}
			continue;
		}
		/* ERROR, CLIENT_ERROR ..., SERVER_ERROR ...: no such group */
		if (strncmp(line, "ERROR", 5) == 0 ||
		    strncmp(line, "CLIENT_ERROR", 12) == 0 ||
		    strncmp(line, "SERVER_ERROR", 12) == 0)
			return -(long)off;
	}
}

/* Sends 'stats' and 'stats cluster' to addr. 0, or -1 with err set. */
static int fetch_stats(const char *addr, double timeout_s, struct ctl_stats *st,
		       struct ctl_stats *cl, bool *have_cluster, char *err,
		       size_t n)
{
	static const char q[] = "stats\r\nstats cluster\r\n";
	double deadline = now_s() + timeout_s;
	char *buf = NULL;
	size_t len = 0, cap = 0, off = 0;
	int fd, stage = 0;

	*have_cluster = false;
	fd = tcp_connect(addr, timeout_s, err, n);
	if (fd < 0)
		return -1;
	if (write(fd, q, sizeof(q) - 1) != (ssize_t)(sizeof(q) - 1)) {
		snprintf(err, n, "write: %s", strerror(errno));
		goto fail;
	}
	while (stage < 2) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		double left = deadline - now_s();
		ssize_t got;
		long r;

		/* parse what we have first */
		r = parse_stats_reply(buf ? buf + off : "", len - off,
				      stage == 0 ? st : cl);
		if (r != 0) {
			if (stage == 1)
				*have_cluster = r > 0;
			off += (size_t)(r < 0 ? -r : r);
			stage++;
			continue;
		}
		if (left <= 0) {
			snprintf(err, n, "no complete stats reply within %g s",
				 timeout_s);
			goto fail;
		}
		if (poll(&pfd, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		if (len + 4096 > cap) {
			char *nb;

			if (cap >= CTL_STATS_MAX) {
				snprintf(err, n, "stats reply larger than %d bytes",
					 CTL_STATS_MAX);
				goto fail;
			}
			cap = cap ? cap * 2 : 16384;
			nb = realloc(buf, cap);
			if (!nb) {
				snprintf(err, n, "out of memory");
				goto fail;
			}
			buf = nb;
		}
		got = read(fd, buf + len, cap - len);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0) {
			snprintf(err, n, "connection closed before END");
			goto fail;
		}
		len += (size_t)got;
	}
	free(buf);
	close(fd);
	return 0;
fail:
	free(buf);
	close(fd);
	return -1;
}

static json_t *stats_value_json(const char *v)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(v, &end, 10);
	if (!errno && *v && !*end)
		return json_integer(x);
	return json_string(v);
}

static int cmd_stats(struct ctl *c, const char *only)
{
	static const char *const main_cols[] = {
		"curr_items", "get_hits", "get_misses", "cmd_get", "cmd_set",
	};
	static const char *const cluster_cols[] = {
		"local", "forwarded", "forward_errors", "pulls", "map_epoch",
	};
	struct ctl_view v;
	struct ctl_table t = { .ncols = 12 };
	json_t *arr = json_array();
	unsigned n = 0, failed = 0;
	const char **ids;
	char *extra = NULL;
	size_t extra_len = 0;
	FILE *ex;
	int rc = ctl_load(c, &v);

	if (rc) {
		json_decref(arr);
		return rc;
	}
	if (only && !view_known(&v, only)) {
		json_decref(arr);
		rc = fail_unknown(&v, only);
		ctl_view_free(&v);
		return rc;
	}
	ex = open_memstream(&extra, &extra_len);
	ids = view_ids(&v, &n);
	table_row(&t, "ID", "ADDR", "ITEMS", "GET_HITS", "GET_MISSES", "CMD_GET",
		  "CMD_SET", "LOCAL", "FORWARDED", "FWD_ERRORS", "PULLS", "EPOCH");
	for (unsigned i = 0; ids && i < n; i++) {
		const struct ctl_reg *r = view_reg(&v, ids[i]);
		int k = v.map ? map_find(v.map, ids[i]) : -1;
		const char *addr = r && r->addr[0] ? r->addr :
				   k >= 0 ? v.map->nodes[k].addr : "";
		struct ctl_stats st = { 0 }, cl = { 0 };
		bool have_cluster = false;
		char err[256] = "";
		json_t *jo, *js, *jc;

		if (only && strcmp(only, ids[i]) != 0)
			continue;
		if (fetch_stats(addr, c->timeout_s, &st, &cl, &have_cluster,
				err, sizeof(err)) < 0) {
			failed++;
			fprintf(stderr, "dpcachectl: %s (%s): %s\n", ids[i],
				addr, err);
			table_row(&t, ids[i], addr, "unreachable", NULL, NULL, NULL,
				  NULL, NULL, NULL, NULL, NULL, NULL);
			json_array_append_new(arr, json_pack("{s:s,s:s,s:b,s:s}",
				"id", ids[i], "addr", addr, "ok", 0, "error", err));
			continue;
		}
		table_row(&t, ids[i], addr,
			  stats_get(&st, main_cols[0]), stats_get(&st, main_cols[1]),
			  stats_get(&st, main_cols[2]), stats_get(&st, main_cols[3]),
			  stats_get(&st, main_cols[4]),
			  stats_get(&cl, cluster_cols[0]), stats_get(&cl, cluster_cols[1]),
			  stats_get(&cl, cluster_cols[2]), stats_get(&cl, cluster_cols[3]),
			  stats_get(&cl, cluster_cols[4]));
		js = json_object();
		for (unsigned j = 0; j < 5; j++)
			if (stats_get(&st, main_cols[j]))
				json_object_set_new(js, main_cols[j],
					stats_value_json(stats_get(&st, main_cols[j])));
		jc = have_cluster ? json_object() : json_null();
		for (unsigned j = 0; have_cluster && j < cl.n; j++) {
			bool col = false;

			json_object_set_new(jc, cl.kv[j].name,
					    stats_value_json(cl.kv[j].value));
			for (unsigned x = 0; x < 5; x++)
				col |= strcmp(cl.kv[j].name, cluster_cols[x]) == 0;
			if (!col && ex)
				fprintf(ex, "  %s %s %s\n", ids[i], cl.kv[j].name,
					cl.kv[j].value);
		}
		jo = json_pack("{s:s,s:s,s:b,s:o,s:o}", "id", ids[i], "addr", addr,
			       "ok", 1, "stats", js, "cluster", jc);
		json_array_append_new(arr, jo);
		stats_free(&st);
		stats_free(&cl);
	}
	free(ids);
	if (ex)
		fclose(ex);
	if (c->json) {
		print_json(json_pack("{s:o}", "nodes", arr));
		table_free(&t);
	} else {
		table_print(&t);
		if (extra && extra_len)
			printf("\nother cluster counters:\n%s", extra);
		json_decref(arr);
	}
	free(extra);
	ctl_view_free(&v);
	return failed ? CTL_EXIT_ERR : CTL_EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* hotkeys                                                             */

/* "b64:" + base64 of the longest key + NUL */
#define CTL_KEY_TEXT_MAX (4 + BASE64_ENCODE_RAW_LENGTH(CACHE_KEY_MAX) + 1)

/* The standard, padded base64 of a key into out (at least
 * BASE64_ENCODE_RAW_LENGTH(CACHE_KEY_MAX) + 1 bytes). */
static void key_b64(const char *key, size_t nkey, char *out)
{
	if (nkey > CACHE_KEY_MAX)
		nkey = CACHE_KEY_MAX;
	base64_encode_raw(out, nkey, (const uint8_t *)key);
	out[BASE64_ENCODE_RAW_LENGTH(nkey)] = '\0';
}

/* The key as an operator reads it: as is when it is printable ASCII without
 * spaces (the form 'stats hotkeys' uses), else "b64:<base64>". */
static void key_text(const char *key, size_t nkey, char *out, size_t n)
{
	bool plain = nkey > 0 && nkey <= CACHE_KEY_MAX;
	char b64[BASE64_ENCODE_RAW_LENGTH(CACHE_KEY_MAX) + 1];

	for (size_t i = 0; plain && i < nkey; i++)
		plain = key[i] > ' ' && key[i] < 0x7f;     /* char may be signed */
	if (plain) {
		snprintf(out, n, "%.*s", (int)nkey, key);
		return;
	}
	key_b64(key, nkey, b64);
	snprintf(out, n, "b64:%s", b64);
}

static json_t *key_b64_json(const char *key, size_t nkey)
{
	char b64[BASE64_ENCODE_RAW_LENGTH(CACHE_KEY_MAX) + 1];

	key_b64(key, nkey, b64);
	return json_string(b64);
}

/* One key's rates summed over the nodes' reports. */
struct ctl_hot_key {
	double reads, writes;
	unsigned nodes;              /* reports that name it */
	uint8_t nkey;
	char key[CACHE_KEY_MAX];
};

/* What 'hotkeys' read from ZooKeeper. */
struct ctl_hot {
	struct hot_set *set;         /* NULL: none published yet */
	struct hot_report **reports; /* the well-formed ones, sorted by node */
	unsigned nreports;
	unsigned bad_reports;        /* malformed: warned about, left out */
	struct ctl_hot_key *keys;    /* merged over reports, sorted by key */
	unsigned nkeys;
};

static void ctl_hot_free(struct ctl_hot *h)
{
	hot_set_free(&h->set);
	for (unsigned i = 0; i < h->nreports; i++)
		hot_report_free(&h->reports[i]);
	free(h->reports);
	free(h->keys);
	memset(h, 0, sizeof(*h));
}

static int cmp_key_bytes(const char *a, size_t na, const char *b, size_t nb)
{
	int r = memcmp(a, b, na < nb ? na : nb);

	return r ? r : (na > nb) - (na < nb);
}

static int cmp_hot_key(const void *a, const void *b)
{
	const struct ctl_hot_key *x = a, *y = b;

	return cmp_key_bytes(x->key, x->nkey, y->key, y->nkey);
}

static int cmp_report(const void *a, const void *b)
{
	return strcmp((*(struct hot_report *const *)a)->node,
		      (*(struct hot_report *const *)b)->node);
}

/* By reads, then writes, descending; ties by key, so the order is stable
 * from one run to the next. */
static int cmp_hot_key_rate(const void *a, const void *b)
{
	const struct ctl_hot_key *x = a, *y = b;

	if (x->reads != y->reads)
		return x->reads < y->reads ? 1 : -1;
	if (x->writes != y->writes)
		return x->writes < y->writes ? 1 : -1;
	return cmp_hot_key(a, b);
}

static const struct ctl_hot_key *hot_lookup(const struct ctl_hot *h,
					    const char *key, size_t nkey)
{
	struct ctl_hot_key k = { .nkey = (uint8_t)nkey };

	if (!h->nkeys || nkey > CACHE_KEY_MAX)
		return NULL;
	memcpy(k.key, key, nkey);
	return bsearch(&k, h->keys, h->nkeys, sizeof(k), cmp_hot_key);
}

/* Sums every report's keys into h->keys (sorted by key, one entry a key).
 * 0 or -ENOMEM. */
static int ctl_hot_merge(struct ctl_hot *h)
{
	size_t total = 0, k = 0;

	for (unsigned i = 0; i < h->nreports; i++)
		total += h->reports[i]->nkeys;
	if (!total)
		return 0;
	h->keys = calloc(total, sizeof(*h->keys));
	if (!h->keys)
		return -ENOMEM;
	for (unsigned i = 0; i < h->nreports; i++) {
		const struct hot_report *r = h->reports[i];

		for (unsigned j = 0; j < r->nkeys; j++) {
			struct ctl_hot_key *d = &h->keys[k++];

			d->nkey = r->keys[j].nkey;
			memcpy(d->key, r->keys[j].key, d->nkey);
			d->reads = r->keys[j].reads;
			d->writes = r->keys[j].writes;
			d->nodes = 1;
		}
	}
	qsort(h->keys, k, sizeof(*h->keys), cmp_hot_key);
	/* fold runs of one key into their first entry */
	h->nkeys = 0;
	for (size_t i = 0; i < k; i++) {
		struct ctl_hot_key *last = h->nkeys ? &h->keys[h->nkeys - 1] : NULL;

		if (last && cmp_hot_key(last, &h->keys[i]) == 0) {
			last->reads += h->keys[i].reads;
			last->writes += h->keys[i].writes;
			last->nodes++;
		} else {
			h->keys[h->nkeys++] = h->keys[i];
		}
	}
	return 0;
}

/* Reads and parses ROOT/hot/reports/<id>. ZOK with *out set (NULL when the
 * report is malformed, reason in err), ZNONODE, or another ZooKeeper
 * error. A report that names another node than its znode is malformed. */
static int ctl_hot_report(struct ctl *c, const char *id,
			  struct hot_report **out, char *err, size_t errlen)
{
	char path[CTL_PATH_MAX], *data;
	struct Stat st;
	int rc;

	*out = NULL;
	ctl_path(c, path, sizeof(path), "hot/reports/%s", id);
	rc = ctl_get(c, path, false, &data, &st);
	if (rc != ZOK)
		return rc;
	if (hot_report_parse(data, strlen(data), out, err, errlen) == 0 &&
	    strcmp((*out)->node, id) != 0) {
		snprintf(err, errlen, "it names node '%s'", (*out)->node);
		hot_report_free(out);
	}
	free(data);
	return ZOK;
}

/*
 * Loads ROOT/hot/set into *out (NULL when none is published yet). 0 or an
 * exit code (the message printed): a malformed set is an error, as there is
 * nothing right to show.
 */
static int ctl_hot_load_set(struct ctl *c, struct hot_set **out)
{
	char path[CTL_PATH_MAX], err[256] = "", *data = NULL;
	struct Stat st;
	int rc;

	*out = NULL;
	ctl_path(c, path, sizeof(path), "hot/set");
	rc = ctl_get(c, path, false, &data, &st);
	if (rc == ZNONODE)
		return 0;
	if (rc != ZOK)
		return ctl_zk_error(rc, "reading", path);
	rc = hot_set_parse(data, strlen(data), out, err, sizeof(err));
	free(data);
	if (rc < 0) {
		*out = NULL;
		return ctl_fail(CTL_EXIT_ERR, "bad hot-key set in %s: %s",
				path, err[0] ? err : strerror(-rc));
	}
	return 0;
}

/*
 * Loads ROOT/hot/set and the reports (only 'only''s when given). 0 or an
 * exit code (the message printed): a malformed set is an error (see
 * ctl_hot_load_set); a malformed report of another node is warned
 * about and left out (counted in bad_reports); 'only''s is an error.
 */
static int ctl_hot_load(struct ctl *c, const char *only, struct ctl_hot *h)
{
	char path[CTL_PATH_MAX], err[256] = "";
	struct String_vector sv = { 0 };
	int rc;

	memset(h, 0, sizeof(*h));
	rc = ctl_hot_load_set(c, &h->set);
	if (rc)
		return rc;

	if (only) {
		sv.data = malloc(sizeof(*sv.data));
		if (!sv.data || !(sv.data[0] = strdup(only))) {
			free(sv.data);
			ctl_hot_free(h);
			return ctl_fail(CTL_EXIT_ERR, "out of memory");
		}
		sv.count = 1;
	} else {
		ctl_path(c, path, sizeof(path), "hot/reports");
		rc = ctl_children(c, path, &sv);
		if (rc != ZOK && rc != ZNONODE) {
			ctl_hot_free(h);
			return ctl_zk_error(rc, "listing", path);
		}
	}
	h->reports = calloc((size_t)sv.count + 1, sizeof(*h->reports));
	if (!h->reports) {
		deallocate_String_vector(&sv);
		ctl_hot_free(h);
		return ctl_fail(CTL_EXIT_ERR, "out of memory");
	}
	for (int i = 0; i < sv.count; i++) {
		struct hot_report *r;

		err[0] = '\0';
		ctl_path(c, path, sizeof(path), "hot/reports/%s", sv.data[i]);
		rc = ctl_hot_report(c, sv.data[i], &r, err, sizeof(err));
		if (rc == ZNONODE)
			continue;      /* gone since the listing: not reporting */
		if (rc != ZOK) {
			deallocate_String_vector(&sv);
			ctl_hot_free(h);
			return ctl_zk_error(rc, "reading", path);
		}
		if (!r) {
			if (only) {
				deallocate_String_vector(&sv);
				ctl_hot_free(h);
				return ctl_fail(CTL_EXIT_ERR, "bad hot-key report "
						"in %s: %s", path, err);
			}
			fprintf(stderr, "dpcachectl: bad hot-key report in %s: "
				"%s (left out)\n", path, err);
			h->bad_reports++;
			continue;
		}
		h->reports[h->nreports++] = r;
	}
	deallocate_String_vector(&sv);
	qsort(h->reports, h->nreports, sizeof(*h->reports), cmp_report);
	if (ctl_hot_merge(h) < 0) {
		ctl_hot_free(h);
		return ctl_fail(CTL_EXIT_ERR, "out of memory");
	}
	return 0;
}

static void fmt_rate(double r, char *out, size_t n)
{
	snprintf(out, n, "%.1f", r);
}

/* "a,b,c" or "-". */
static void replicas_text(const struct hot_set_key *k, char *out, size_t n)
{
	size_t len = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < k->nreplicas && len < n; i++)
		len += (size_t)snprintf(out + len, n - len, "%s%s", i ? "," : "",
					k->replicas[i]);
	if (!k->nreplicas)
		snprintf(out, n, "-");
}

/* The key's owner in the current map, "" without a map. */
static const char *map_owner_id(const struct shard_map *m, const char *key,
				size_t nkey)
{
	const struct map_node *o = m ? map_owner(m, ring_hash(key, nkey)) : NULL;

	return o ? o->id : "";
}

/* --node ID: that node's report. */
static int hotkeys_node(struct ctl *c, const struct ctl_view *v,
			const struct ctl_hot *h, const char *id)
{
	const struct hot_report *r;
	struct ctl_table t = { .ncols = 4 };
	struct hot_rate *keys;
	json_t *arr;

	if (!h->nreports) {
		if (!view_known(v, id))
			return fail_unknown(v, id);
		return ctl_fail(CTL_EXIT_ERR, "no hot-key report from %s in "
				"%s/hot/reports (node down, or not reporting yet)",
				id, c->root);
	}
	r = h->reports[0];
	/* reads desc, as hot_table_top wrote them; sorted again so a report
	 * from another writer reads the same */
	keys = calloc((size_t)r->nkeys + 1, sizeof(*keys));
	if (!keys)
		return ctl_fail(CTL_EXIT_ERR, "out of memory");
	for (unsigned i = 0; i < r->nkeys; i++)
		keys[i] = r->keys[i];
	for (unsigned i = 1; i < r->nkeys; i++)
		for (unsigned j = i; j > 0 && keys[j - 1].reads < keys[j].reads; j--) {
			struct hot_rate x = keys[j];

			keys[j] = keys[j - 1];
			keys[j - 1] = x;
		}
	arr = json_array();
	table_row(&t, "KEY", "READS/S", "WRITES/S", "REPLICATED");
	for (unsigned i = 0; i < r->nkeys; i++) {
		char kt[CTL_KEY_TEXT_MAX], rd[32], wr[32];
		bool rep = h->set && hot_set_find(h->set, keys[i].key,
						  keys[i].nkey) >= 0;

		key_text(keys[i].key, keys[i].nkey, kt, sizeof(kt));
		fmt_rate(keys[i].reads, rd, sizeof(rd));
		fmt_rate(keys[i].writes, wr, sizeof(wr));
		table_row(&t, kt, rd, wr, rep ? "yes" : "no");
		json_array_append_new(arr, json_pack("{s:s,s:o,s:f,s:f,s:b}",
			"key", kt, "key_b64", key_b64_json(keys[i].key, keys[i].nkey),
			"reads", keys[i].reads, "writes", keys[i].writes,
			"replicated", rep));
	}
	free(keys);
	if (c->json) {
		table_free(&t);
		print_json(json_pack("{s:s,s:I,s:f,s:f,s:o,s:o}",
			"node", r->node, "interval_ms", (json_int_t)r->interval_ms,
			"received", r->received, "executed", r->executed,
			"set_version", h->set ? json_integer((json_int_t)h->set->version) :
						json_null(),
			"keys", arr));
		return CTL_EXIT_OK;
	}
	json_decref(arr);
	printf("node %s: received %.1f/s, executed %.1f/s (interval %" PRIu64
	       " ms)\n", r->node, r->received, r->executed, r->interval_ms);
	if (!h->set)
		printf("no hot-key set published yet\n");
	if (r->nkeys) {
		printf("\n");
		table_print(&t);
	} else {
		table_free(&t);
		printf("no hot keys reported\n");
	}
	return CTL_EXIT_OK;
}

/* The whole cluster: the set, then the hottest keys not in it. */
static int hotkeys_cluster(struct ctl *c, const struct ctl_view *v,
			   const struct ctl_hot *h)
{
	const struct hot_set *s = h->set;
	struct ctl_table ts = { .ncols = 5 }, tu = { .ncols = 5 };
	struct hot_set_key *sk = NULL;
	struct ctl_hot_key *hot = NULL;
	unsigned nhot = 0;
	json_t *jset = json_null(), *jsk = json_array(), *jun = json_array();
	json_t *jnodes = json_array();
	uint64_t epoch = v->map ? v->map->epoch : 0;

	/* the set, by its keys' current cluster-wide reads */
	if (s && s->nkeys) {
		sk = calloc(s->nkeys, sizeof(*sk));
		if (!sk)
			goto oom;
		for (unsigned i = 0; i < s->nkeys; i++) {
			const struct ctl_hot_key *live =
				hot_lookup(h, s->keys[i].key, s->keys[i].nkey);

			sk[i] = s->keys[i];
			/* reads/writes become the live sums; the leader's
			 * figures (from when it chose the key) stay in s */
			sk[i].reads = live ? live->reads : 0;
			sk[i].writes = live ? live->writes : 0;
		}
		for (unsigned i = 1; i < s->nkeys; i++)
			for (unsigned j = i; j > 0 && sk[j - 1].reads < sk[j].reads; j--) {
				struct hot_set_key x = sk[j];

				sk[j] = sk[j - 1];
				sk[j - 1] = x;
			}
	}
	table_row(&ts, "KEY", "READS/S", "WRITES/S", "OWNER", "REPLICAS");
	for (unsigned i = 0; s && i < s->nkeys; i++) {
		char kt[CTL_KEY_TEXT_MAX], rd[32], wr[32];
		char reps[HOT_REPLICAS_MAX * MAP_ID_MAX];
		int orig = hot_set_find(s, sk[i].key, sk[i].nkey);
		json_t *jr = json_array();

		key_text(sk[i].key, sk[i].nkey, kt, sizeof(kt));
		fmt_rate(sk[i].reads, rd, sizeof(rd));
		fmt_rate(sk[i].writes, wr, sizeof(wr));
		replicas_text(&sk[i], reps, sizeof(reps));
		table_row(&ts, kt, rd, wr, sk[i].owner, reps);
		for (unsigned r = 0; r < sk[i].nreplicas; r++)
			json_array_append_new(jr, json_string(sk[i].replicas[r]));
		json_array_append_new(jsk, json_pack("{s:s,s:o,s:f,s:f,s:s,s:o,s:f,s:f}",
			"key", kt, "key_b64", key_b64_json(sk[i].key, sk[i].nkey),
			"reads", sk[i].reads, "writes", sk[i].writes,
			"owner", sk[i].owner, "replicas", jr,
			"set_reads", orig >= 0 ? s->keys[orig].reads : 0.0,
			"set_writes", orig >= 0 ? s->keys[orig].writes : 0.0));
	}

	/* hot but not replicated: the merged reports minus the set */
	if (h->nkeys) {
		hot = calloc(h->nkeys, sizeof(*hot));
		if (!hot)
			goto oom;
		for (unsigned i = 0; i < h->nkeys; i++)
			if (!s || hot_set_find(s, h->keys[i].key, h->keys[i].nkey) < 0)
				hot[nhot++] = h->keys[i];
		qsort(hot, nhot, sizeof(*hot), cmp_hot_key_rate);
		if (nhot > CTL_HOT_UNREPLICATED_MAX)
			nhot = CTL_HOT_UNREPLICATED_MAX;
	}
	table_row(&tu, "KEY", "READS/S", "WRITES/S", "OWNER", "NODES");
	for (unsigned i = 0; i < nhot; i++) {
		char kt[CTL_KEY_TEXT_MAX], rd[32], wr[32], nn[16];
		const char *owner = map_owner_id(v->map, hot[i].key, hot[i].nkey);

		key_text(hot[i].key, hot[i].nkey, kt, sizeof(kt));
		fmt_rate(hot[i].reads, rd, sizeof(rd));
		fmt_rate(hot[i].writes, wr, sizeof(wr));
		snprintf(nn, sizeof(nn), "%u", hot[i].nodes);
		table_row(&tu, kt, rd, wr, owner[0] ? owner : "-", nn);
		json_array_append_new(jun, json_pack("{s:s,s:o,s:f,s:f,s:o,s:i}",
			"key", kt, "key_b64", key_b64_json(hot[i].key, hot[i].nkey),
			"reads", hot[i].reads, "writes", hot[i].writes,
			"owner", owner[0] ? json_string(owner) : json_null(),
			"nodes", (int)hot[i].nodes));
	}
	for (unsigned i = 0; i < h->nreports; i++)
		json_array_append_new(jnodes, json_string(h->reports[i]->node));

	if (c->json) {
		if (s)
			jset = json_pack("{s:I,s:I,s:o}", "version",
					 (json_int_t)s->version, "epoch",
					 (json_int_t)s->epoch, "keys", jsk);
		else
			json_decref(jsk);
		print_json(json_pack("{s:o,s:I,s:o,s:o}", "set", jset,
				     "map_epoch", (json_int_t)epoch,
				     "nodes_reporting", jnodes,
				     "hot_not_replicated", jun));
		table_free(&ts);
		table_free(&tu);
	} else {
		char list[1024] = "";
		size_t len = 0;

		for (unsigned i = 0; i < h->nreports && len < sizeof(list); i++)
			len += (size_t)snprintf(list + len, sizeof(list) - len,
						"%s%s", i ? ", " : "",
						h->reports[i]->node);
		if (s) {
			printf("hot-key set: version %" PRIu64 ", map epoch %" PRIu64,
			       s->version, s->epoch);
			if (v->map && v->map->epoch != s->epoch)
				printf(" (the map is now at epoch %" PRIu64 ")",
				       v->map->epoch);
			printf(", %u nodes reporting%s%s%s\n", h->nreports,
			       len ? " (" : "", list, len ? ")" : "");
		} else {
			printf("no hot-key set published yet\n");
			printf("map epoch %" PRIu64 ", %u nodes reporting%s%s%s\n",
			       epoch, h->nreports, len ? " (" : "", list,
			       len ? ")" : "");
		}
		if (s && s->nkeys) {
			printf("\n");
			table_print(&ts);
		} else {
			table_free(&ts);
			if (s)
				printf("no keys replicated\n");
		}
		printf("\nhot, not replicated:");
		if (nhot) {
			printf("\n");
			table_print(&tu);
		} else {
			table_free(&tu);
			printf(" none\n");
		}
		json_decref(jsk);
		json_decref(jun);
		json_decref(jnodes);
	}
	free(sk);
	free(hot);
	return h->bad_reports ? CTL_EXIT_ERR : CTL_EXIT_OK;
oom:
	free(sk);
	free(hot);
	json_decref(jsk);
	json_decref(jun);
	json_decref(jnodes);
	table_free(&ts);
	table_free(&tu);
	return ctl_fail(CTL_EXIT_ERR, "out of memory");
}

/*
 * --format=routes: the route table for clients that hash keys to servers
 * themselves (ketama) and so would send every read of a hot key to its
 * owner. One line per replicated key, "<key> <addr> <addr> ...": the
 * owner first (writes go there), then each of its replicas that is in the
 * current map. Any of them may serve a read: each holds a copy (see
 * control/CLUSTER.md, "Hot keys").
 *
 * Invariant: every address printed is a member of the current map, and
 * the first one is the key's owner in that map. A key whose set owner is
 * not the map's owner now (the map moved on since the leader chose it, or
 * a migration moves the key) is left out: the nodes do not replicate it
 * then, and the client's own ketama route is the right one. Keys keep the
 * set's order (the leader's rank, hottest first). The header's epoch is the
 * current map's, the one the addresses come from. The reports are not read:
 * the table depends only on the set and the map.
 */
static int hotkeys_routes(struct ctl *c, const struct ctl_view *v,
			  const struct hot_set *s)
{
	uint64_t version = s ? s->version : 0;
	json_t *jroutes = json_array();

	if (!jroutes)
		return ctl_fail(CTL_EXIT_ERR, "out of memory");
	if (!c->json)
		printf("# dpcache hot-key routes: set version %" PRIu64
		       ", map epoch %" PRIu64 "\n", version, v->map->epoch);
	for (unsigned i = 0; s && i < s->nkeys; i++) {
		const struct hot_set_key *k = &s->keys[i];
		const struct map_node *owner =
			map_owner(v->map, ring_hash(k->key, k->nkey));
		char kt[CTL_KEY_TEXT_MAX];
		json_t *jsrv;

		if (!owner || strcmp(owner->id, k->owner) != 0)
			continue;
		key_text(k->key, k->nkey, kt, sizeof(kt));
		jsrv = json_array();
		json_array_append_new(jsrv, json_string(owner->addr));
		if (!c->json)
			printf("%s %s", kt, owner->addr);
		for (unsigned r = 0; r < k->nreplicas; r++) {
			int n = map_find(v->map, k->replicas[r]);

			if (n < 0)
				continue;        /* gone from the map */
			json_array_append_new(jsrv,
					      json_string(v->map->nodes[n].addr));
			if (!c->json)
				printf(" %s", v->map->nodes[n].addr);
		}
		if (!c->json)
			printf("\n");
		json_array_append_new(jroutes, json_pack("{s:s,s:o,s:o}",
			"key", kt, "key_b64", key_b64_json(k->key, k->nkey),
			"servers", jsrv));
	}
	if (c->json)
		print_json(json_pack("{s:I,s:I,s:o}", "version",
				     (json_int_t)version, "epoch",
				     (json_int_t)v->map->epoch, "routes", jroutes));
	else
		json_decref(jroutes);
	return CTL_EXIT_OK;
}

static int cmd_hotkeys(struct ctl *c, const char *node)
{
	struct ctl_view v;
	struct ctl_hot h;
	int rc = ctl_load(c, &v);

	if (rc)
		return rc;
	if (c->format && strcmp(c->format, "routes") == 0) {
		struct hot_set *s;

		if (!v.map) {
			ctl_view_free(&v);
			return ctl_fail(CTL_EXIT_ERR, "no shard map in %s/map "
					"yet", c->root);
		}
		rc = ctl_hot_load_set(c, &s);
		if (rc == 0)
			rc = hotkeys_routes(c, &v, s);
		hot_set_free(&s);
		ctl_view_free(&v);
		return rc;
	}
	rc = ctl_hot_load(c, node, &h);
	if (rc) {
		ctl_view_free(&v);
		return rc;
	}
	rc = node ? hotkeys_node(c, &v, &h, node) : hotkeys_cluster(c, &v, &h);
	ctl_hot_free(&h);
	ctl_view_free(&v);
	return rc;
}

/* ------------------------------------------------------------------ */
/* main                                                                */

static double parse_secs(const char *opt, const char *s, bool zero_ok)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(d) || d < 0 ||
	    (!zero_ok && d == 0) || d > 86400 * 365)
		die_usage("bad %s '%s' (seconds)", opt, s);
	return d;
}

/* "h1:p1,h2:p2/root" -> hosts, root (default /dpcache). */
static void parse_zk(struct ctl *c, const char *zk)
{
	const char *slash = strchr(zk, '/');
	size_t hn = slash ? (size_t)(slash - zk) : strlen(zk);

	if (hn == 0 || hn >= sizeof(c->hosts))
		die_usage("bad --zk '%s' (want HOST:PORT[,HOST:PORT...]/ROOT)", zk);
	memcpy(c->hosts, zk, hn);
	c->hosts[hn] = '\0';
	copy_str(c->root, sizeof(c->root), slash ? slash : "/dpcache");
	if (strlen(c->root) < 2 || c->root[strlen(c->root) - 1] == '/' ||
	    strstr(c->root, "//") || strlen(c->root) >= 200)
		die_usage("bad ZooKeeper root '%s' in --zk (want /name, no "
			  "trailing slash)", c->root);
	for (const char *h = c->hosts; *h; h++)
		if (*h == ' ')
			die_usage("bad --zk '%s': no spaces", zk);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "zk", required_argument, NULL, 'z' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "wait-timeout", required_argument, NULL, 'w' },
		{ "detach", no_argument, NULL, 'd' },
		{ "format", required_argument, NULL, 'f' },
		{ "node", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c = {
		.timeout_s = 10,
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	};
	const char *zk = getenv("DPCACHE_ZK");
	const char *cmd, *a1 = NULL, *a2 = NULL;
	int nargs, opt, rc;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+hj", opts, NULL)) != -1) {
		switch (opt) {
		case 'z': zk = optarg; break;
		case 'j': c.json = true; break;
		case 't': c.timeout_s = parse_secs("--timeout", optarg, false); break;
		case 'w': c.wait_timeout_s = parse_secs("--wait-timeout", optarg, true); break;
		case 'd': c.detach = true; break;
		case 'f': c.format = optarg; break;
		case 'n': c.node = optarg; break;
		case 'h': usage(stdout); return 0;
		default:
			die_usage("unknown or incomplete option '%s'",
				  argv[optind - 1]);
		}
	}
	/* Options may also follow the command ("map --format=json"). */
	{
		int k = optind;

		while (k < argc) {
			const char *s = argv[k];

			if (strncmp(s, "--", 2) != 0 || strcmp(s, "--") == 0) {
				k++;
				continue;
			}
			if (strcmp(s, "--json") == 0)
				c.json = true;
			else if (strcmp(s, "--detach") == 0)
				c.detach = true;
			else if (strncmp(s, "--format=", 9) == 0)
				c.format = s + 9;
			else if (strncmp(s, "--node=", 7) == 0)
				c.node = s + 7;
			else if (strcmp(s, "--node") == 0) {
				/* "--node ID": the value is the next word */
				if (k + 1 >= argc)
					die_usage("--node needs a node id");
				c.node = argv[k + 1];
				memmove(&argv[k], &argv[k + 1],
					sizeof(*argv) * (size_t)(argc - k));
				argc--;
			}
			else if (strncmp(s, "--zk=", 5) == 0)
				zk = s + 5;
			else if (strncmp(s, "--timeout=", 10) == 0)
				c.timeout_s = parse_secs("--timeout", s + 10, false);
			else if (strncmp(s, "--wait-timeout=", 15) == 0)
				c.wait_timeout_s = parse_secs("--wait-timeout", s + 15, true);
			else if (strcmp(s, "--help") == 0) {
				usage(stdout);
				return 0;
			} else
				die_usage("unknown option '%s'", s);
			memmove(&argv[k], &argv[k + 1], sizeof(*argv) * (size_t)(argc - k));
			argc--;
		}
	}
	if (optind >= argc)
		die_usage("no command");
	cmd = argv[optind];
	nargs = argc - optind - 1;
	if (nargs >= 1)
		a1 = argv[optind + 1];
	if (nargs >= 2)
		a2 = argv[optind + 2];

	/* Check the command's shape before touching ZooKeeper. */
	{
		static const struct { const char *name; int min, max; } shapes[] = {
			{ "status", 0, 0 }, { "nodes", 0, 0 }, { "map", 0, 0 },
			{ "stats", 0, 1 }, { "add", 1, 1 }, { "remove", 1, 1 },
			{ "drain", 1, 1 }, { "weight", 2, 2 }, { "rebalance", 0, 0 },
			{ "wait", 0, 1 }, { "hotkeys", 0, 0 },
		};
		bool found = false;

		for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
			if (strcmp(cmd, shapes[i].name) != 0)
				continue;
			found = true;
			if (nargs < shapes[i].min || nargs > shapes[i].max)
				die_usage("wrong number of arguments for '%s'", cmd);
		}
		if (!found)
			die_usage("unknown command '%s'", cmd);
	}
	if (c.format && strcmp(cmd, "hotkeys") == 0) {
		if (strcmp(c.format, "text") && strcmp(c.format, "routes"))
			die_usage("unknown hotkeys format '%s' (text, routes)",
				  c.format);
		if (c.node && strcmp(c.format, "routes") == 0)
			die_usage("--node does not apply to --format=routes");
	} else if (c.format && strcmp(cmd, "map") != 0) {
		die_usage("--format applies to 'map' and 'hotkeys' only");
	}
	if (c.node && strcmp(cmd, "hotkeys") != 0)
		die_usage("--node applies to 'hotkeys' only");
	if (c.node && !map_id_valid(c.node))
		die_usage("bad node id '%s' (1-63 of A-Z a-z 0-9 _ . -)", c.node);
	if (a1 && strcmp(cmd, "wait") == 0)
		parse_migration_id(a1);
	if (a1 && strcmp(cmd, "wait") != 0 && !map_id_valid(a1))
		die_usage("bad node id '%s' (1-63 of A-Z a-z 0-9 _ . -)", a1);
	if (!zk || !*zk)
		die_usage("no ZooKeeper given (--zk=HOST:PORT/ROOT or DPCACHE_ZK)");
	parse_zk(&c, zk);

	{
		uint32_t w = 0;

		if (strcmp(cmd, "weight") == 0) {
			char *end;
			unsigned long x;

			errno = 0;
			x = strtoul(a2, &end, 10);
			if (errno || *end || a2[0] == '-' || x < 1 || x > MAP_WEIGHT_MAX)
				die_usage("bad weight '%s' (1..%d)", a2, MAP_WEIGHT_MAX);
			w = (uint32_t)x;
		}
		rc = ctl_connect(&c);
		if (rc)
			return rc;
		if (strcmp(cmd, "status") == 0)
			rc = cmd_status(&c);
		else if (strcmp(cmd, "nodes") == 0)
			rc = cmd_nodes(&c);
		else if (strcmp(cmd, "map") == 0)
			rc = cmd_map(&c);
		else if (strcmp(cmd, "stats") == 0)
			rc = cmd_stats(&c, a1);
		else if (strcmp(cmd, "wait") == 0)
			rc = cmd_wait(&c, a1);
		else if (strcmp(cmd, "hotkeys") == 0)
			rc = cmd_hotkeys(&c, c.node);
		else
			rc = cmd_request(&c, cmd, strcmp(cmd, "rebalance") ? a1 : NULL, w);
	}
	fflush(stdout);
	zookeeper_close(c.zh);
	return rc;
}
