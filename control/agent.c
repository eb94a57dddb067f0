/*
 * control/agent.c - a node's ZooKeeper agent (see agent.h; layout in
 * control/CLUSTER.md).
 *
 * Design note.
 *
 * One agent thread does every ZooKeeper call, in "passes". A watch or
 * session event only sets a flag and signals a condition variable (zk.c
 * calls agent_wake from the client's thread); the thread then re-reads
 * everything it follows and re-arms the watches, so a lost or coalesced
 * event costs nothing but a pass. Passes also run on a timer: every second
 * as a safety net, every 200 ms while the leader waits on a clock (grace,
 * migration, pending request) or a progress record waits to be written.
 *
 * A pass, with a live session:
 *   1. the map: read ROOT/map (watched); a parsed map with a higher epoch
 *      goes to on_map, and our node znode's applied_epoch follows it;
 *   2. registration: ROOT/nodes/<id>, ephemeral. A leftover from one of our
 *      own earlier sessions is deleted and recreated; one held by any other
 *      session is another live process using our id: we log once and retry
 *      every pass (a crashed owner's znode vanishes with its session);
 *   3. election (registered nodes only): our ROOT/election/n_<seq>; the
 *      lowest sequence leads; the others watch only their predecessor;
 *   4. the leader's step (below);
 *   5. our migration progress record, rate limited.
 *
 * The leader's step gathers the registered members, the map and its znode
 * version, the progress records of the migration in flight and the oldest
 * pending request, asks planner_step() what to publish, and publishes with
 * compare-and-set: a lost race (ZBADVERSION, or the map created by someone
 * else) is counted and re-planned from fresh reads. Only after the map is
 * written do the migration record and the request's status follow; if we die
 * in between, the next leader sees the request still pending and answers it
 * from the new map (no change, or rejected while the migration runs).
 *
 * Session expiry: the handle is closed and a new session opened; every
 * ephemeral (node, election) is re-created by the next passes. While the
 * client is only reconnecting (same session) we do nothing: the data plane
 * keeps serving with the last map.
 *
 * Locking: a->lock guards the wake flag, stop flag, pending progress and the
 * status snapshot; everything else belongs to the agent thread.
 */
#include "control/agent.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "control/planner.h"
#include "control/zk.h"


#define AGENT_PATH_MAX      512
#define AGENT_IDLE_MS       1000   /* safety-net pass */
#define AGENT_BUSY_MS       200    /* leader waiting on a clock */
#define AGENT_PROGRESS_MS   200    /* progress record write interval */
#define AGENT_REQUEST_KEEP_MS (10 * 60 * 1000)
#define AGENT_OLD_SESSIONS  8
#define AGENT_LEADER_ROUNDS 8      /* planner steps per pass, at most */

struct agent {
	/* Config, copied. */
	char root[AGENT_PATH_MAX / 2];
	char id[MAP_ID_MAX];
	char addr[MAP_ADDR_MAX];
	char admin[MAP_ADDR_MAX];
	uint32_t weight;
	bool standby;
	unsigned grace_ms;
	int verbosity;
	void (*on_map)(void *arg, struct shard_map *map);
	void *arg;

	struct zk *zk;
	pthread_t thread;

	pthread_mutex_t lock;
	pthread_cond_t cond;           /* CLOCK_MONOTONIC */
	bool wake;
	bool stopping;
	bool progress_dirty;
	struct migrate_progress progress;
	uint64_t progress_done_migration;
	struct agent_status status;

	/* Agent thread only. */
	uint64_t session;              /* the session the state below is for */
	uint64_t old_sessions[AGENT_OLD_SESSIONS];
	unsigned nold;
	bool ever_connected;
	bool registered;
	bool id_in_use_logged;
	uint64_t node_epoch;           /* applied_epoch our znode says */
	char election[64];             /* our election child's name, "" none */
	struct planner *planner;       /* non-NULL while leader */
	struct shard_map *map;         /* last applied map */
	int map_version;               /* its znode version and mtime: */
	int64_t map_mtime;             /* unchanged = no need to parse */
	int64_t bad_map_mtime;         /* unparseable version last logged */
	uint64_t last_progress_ms;
	bool leader_busy;
};

/* "dpcached: agent: function: message" on stderr when the agent's -v count
 * is at least level (1 errors, 2 events), like dataplane/dp_log.h but per
 * agent, so agents started at different levels never share a variable. */
static void agent_log(const char *func, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void agent_log(const char *func, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "dpcached: agent: %s: %s\n", func, line);
}

#define AGENT_LOG(a, level, ...) do { \
	if ((a)->verbosity >= (level)) \
		agent_log(__func__, __VA_ARGS__); \
} while (0)

static uint64_t agent_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t agent_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* zk.c's event callback: the client's thread, so only a flag and a signal. */
static void agent_wake(void *arg)
{
	struct agent *a = arg;

	pthread_mutex_lock(&a->lock);
	a->wake = true;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

static void agent_path(const struct agent *a, char *buf, size_t len,
		       const char *fmt, const char *tail)
{
	snprintf(buf, len, fmt, a->root, tail);
}

/* dir/name into buf; -ENAMETOOLONG (a child name no sane peer writes) when
 * it does not fit. */
static int agent_join(char *buf, size_t len, const char *dir, const char *name)
{
	size_t nd = strlen(dir), nn = strlen(name);

	if (nd + 1 + nn + 1 > len) {
		if (len)
			buf[0] = '\0';
		return -ENAMETOOLONG;
	}
	memcpy(buf, dir, nd);
	buf[nd] = '/';
	memcpy(buf + nd + 1, name, nn + 1);
	return 0;
}

static void agent_count_bad(struct agent *a)
{
	pthread_mutex_lock(&a->lock);
	a->status.bad_znodes++;
	pthread_mutex_unlock(&a->lock);
}

/* ------------------------------------------------------------------ */
/* JSON helpers */

/* Malloc'd compact JSON of obj (consumed); NULL on no memory. */
static char *agent_dump(json_t *obj)
{
	char *s;

	if (!obj)
		return NULL;
	s = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	return s;
}

static char *agent_node_json(const struct agent *a)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:s?, s:b, s:I, s:I}",
			      "id", a->id, "addr", a->addr,
			      "weight", (json_int_t)a->weight,
			      "admin", a->admin[0] ? a->admin : NULL,
			      "standby", a->standby,
			      "applied_epoch", (json_int_t)a->node_epoch,
			      "pid", (json_int_t)getpid());

	return agent_dump(o);
}

/* A registration znode -> member; false (skip it) when malformed. */
static bool agent_parse_member(const char *name, const char *data, size_t len,
			       struct planner_member *m)
{
	json_t *o, *v;
	bool ok = false;
	const char *addr;

	o = json_loadb(data, len, 0, NULL);
	if (!o || !json_is_object(o))
		goto out;
	if (!map_id_valid(name) || strlen(name) >= sizeof(m->id))
		goto out;
	v = json_object_get(o, "addr");
	addr = json_string_value(v);
	if (!addr || !addr[0] || strlen(addr) >= sizeof(m->addr))
		goto out;
	memset(m, 0, sizeof(*m));
	strcpy(m->id, name);
	strcpy(m->addr, addr);
	v = json_object_get(o, "weight");
	if (v) {
		json_int_t w = json_integer_value(v);

		if (!json_is_integer(v) || w < 1 || w > MAP_WEIGHT_MAX)
			goto out;
		m->weight = (uint32_t)w;
	} else {
		m->weight = 1;
	}
	v = json_object_get(o, "standby");
	m->standby = v && json_is_true(v);
	/* The leader moves a migration from PREPARE to MOVING once every
	 * node has applied the PREPARE map (planner.h). */
	v = json_object_get(o, "applied_epoch");
	if (v && json_is_integer(v) && json_integer_value(v) > 0)
		m->applied_epoch = (uint64_t)json_integer_value(v);
	ok = true;
out:
	json_decref(o);
	return ok;
}

/* ------------------------------------------------------------------ */
/* Map watch */

static void agent_set_epoch_status(struct agent *a, uint64_t epoch)
{
	pthread_mutex_lock(&a->lock);
	a->status.map_epoch = epoch;
	a->status.maps_applied++;
	pthread_mutex_unlock(&a->lock);
}

/*
 * Reads ROOT/map into *out (a new reference; NULL when there is none) and
 * its znode stat. Re-uses the applied map when the znode did not change.
 * watch: re-arm the map watch (an exists watch while the znode is absent).
 * 0, -ENOENT (no map), -EINVAL (unparseable: counted, logged once per
 * version), or a ZooKeeper error.
 */
static int agent_read_map(struct agent *a, bool watch, struct shard_map **out,
			  struct zk_stat *st)
{
	char path[AGENT_PATH_MAX], err[160];
	char *data;
	size_t len;
	int rc;

	*out = NULL;
	agent_path(a, path, sizeof(path), "%s/map", NULL);
	rc = zk_get(a->zk, path, watch, &data, &len, st);
	if (rc == -ENOENT) {
		/* getData sets no watch on a missing node; exists does. */
		if (watch && zk_exists(a->zk, path, true, NULL) == 0)
			agent_wake(a);         /* created in between */
		return -ENOENT;
	}
	if (rc < 0)
		return rc;
	if (a->map && st->version == a->map_version &&
	    st->mtime_ms == a->map_mtime) {
		free(data);
		map_ref(a->map);
		*out = a->map;
		return 0;
	}
	rc = map_parse(data, len, out, err, sizeof(err));
	free(data);
	if (rc < 0 || !*out) {
		*out = NULL;
		if (a->bad_map_mtime != st->mtime_ms) {
			a->bad_map_mtime = st->mtime_ms;
			agent_count_bad(a);
			AGENT_LOG(a, 1, "%s: unparseable map (znode version "
				  "%d): %s", a->id, (int)st->version, err);
		}
		return -EINVAL;
	}
	return 0;
}

/* Applies a newer map: on_map gets a reference of its own. */
static void agent_watch_map(struct agent *a)
{
	struct shard_map *m;
	struct zk_stat st;

	if (agent_read_map(a, true, &m, &st) < 0)
		return;
	if (m == a->map) {
		map_unref(m);
		return;
	}
	if (a->map && m->epoch <= a->map->epoch) {
		/* Not newer (rewritten by hand, or a stale leader lost its
		 * race after all): keep serving what we applied. */
		map_unref(m);
		return;
	}
	map_unref(a->map);
	a->map = m;                    /* our reference */
	a->map_version = st.version;
	a->map_mtime = st.mtime_ms;
	if (a->on_map) {
		map_ref(m);
		a->on_map(a->arg, m);
	}
	agent_set_epoch_status(a, m->epoch);
	AGENT_LOG(a, 2, "%s: applied map epoch %" PRIu64 " migration %"
		  PRIu64, a->id, m->epoch, m->migration);
}

/* ------------------------------------------------------------------ */
/* Registration */

static bool agent_was_our_session(const struct agent *a, uint64_t sid)
{
	for (unsigned i = 0; i < a->nold; i++)
		if (a->old_sessions[i] == sid)
			return true;
	return false;
}

static void agent_set_registered(struct agent *a, bool reg, bool in_use)
{
	a->registered = reg;
	pthread_mutex_lock(&a->lock);
	a->status.registered = reg;
	a->status.id_in_use = in_use;
	pthread_mutex_unlock(&a->lock);
}

static void agent_register(struct agent *a)
{
	char path[AGENT_PATH_MAX];
	struct zk_stat st;
	char *json, *data;
	size_t len;
	int rc;

	agent_path(a, path, sizeof(path), "%s/nodes/%s", a->id);
	a->node_epoch = a->map ? a->map->epoch : 0;
	json = agent_node_json(a);
	if (!json)
		return;
	for (int tries = 0; tries < 3; tries++) {
		rc = zk_create_node(a->zk, path, json, strlen(json),
				    ZK_EPHEMERAL, NULL, 0);
		if (rc == -ENOENT) {
			rc = zk_create_parents(a->zk, path);
			if (rc < 0)
				break;
			continue;
		}
		if (rc != -EEXIST)
			break;
		rc = zk_get(a->zk, path, false, &data, &len, &st);
		if (rc == -ENOENT)
			continue;
		if (rc < 0)
			break;
		free(data);
		if ((uint64_t)st.ephemeral_owner == a->session) {
			/* Our create went through before a connection loss. */
			rc = zk_set(a->zk, path, json, strlen(json), -1, NULL);
			break;
		}
		if (agent_was_our_session(a, (uint64_t)st.ephemeral_owner) ||
		    st.ephemeral_owner == 0) {
			/* Ours from an expired session, or a stray persistent
			 * node: replace it. */
			zk_delete(a->zk, path, st.version);
			continue;
		}
		if (!a->id_in_use_logged) {
			a->id_in_use_logged = true;
			AGENT_LOG(a, 1, "node id %s in use: %s is held by "
				  "another live session (0x%" PRIx64 "); "
				  "retrying until it goes", a->id, path,
				  (uint64_t)st.ephemeral_owner);
		}
		agent_set_registered(a, false, true);
		free(json);
		return;
	}
	free(json);
	if (rc == 0) {
		a->id_in_use_logged = false;
		agent_set_registered(a, true, false);
		AGENT_LOG(a, 2, "%s: registered (session 0x%" PRIx64 ")",
			  a->id, a->session);
	}
}

/* Keeps our node znode present (watched) and its applied_epoch current. */
static void agent_check_node(struct agent *a)
{
	char path[AGENT_PATH_MAX];
	char *json;
	int rc;

	agent_path(a, path, sizeof(path), "%s/nodes/%s", a->id);
	if (a->map && a->node_epoch != a->map->epoch) {
		a->node_epoch = a->map->epoch;
		json = agent_node_json(a);
		if (!json)
			return;
		rc = zk_set(a->zk, path, json, strlen(json), -1, NULL);
		free(json);
		if (rc == -ENOTCONN)
			a->node_epoch = 0;     /* write again next pass */
	} else {
		rc = zk_exists(a->zk, path, true, NULL);
	}
	if (rc == -ENOENT) {
		/* Deleted under us (by hand): register again at once. */
		agent_set_registered(a, false, false);
		agent_register(a);
	}
}

/* ------------------------------------------------------------------ */
/* Election */

static void agent_set_leader(struct agent *a, bool leader)
{
	if (leader && !a->planner) {
		a->planner = planner_create(a->grace_ms);
		if (!a->planner)
			return;                /* no memory: next pass */
		AGENT_LOG(a, 2, "%s: became leader", a->id);
	} else if (!leader && a->planner) {
		planner_destroy(&a->planner);
		AGENT_LOG(a, 2, "%s: no longer leader", a->id);
	}
	pthread_mutex_lock(&a->lock);
	a->status.leader = leader;
	pthread_mutex_unlock(&a->lock);
}

static bool agent_election_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n < 3 || strncmp(name, "n_", 2) != 0)
		return false;
	for (size_t i = 2; i < n; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	return true;
}

/* Our election child: adopt one this session already owns (a create whose
 * answer was lost), else create it. 0 or -errno. */
static int agent_join_election(struct agent *a, const char *dir)
{
	struct zk_children c;
	char path[AGENT_PATH_MAX], created[AGENT_PATH_MAX];
	struct zk_stat st;
	const char *base;
	int rc;

	rc = zk_get_children(a->zk, dir, false, &c);
	if (rc == -ENOENT) {
		agent_join(path, sizeof(path), dir, "x");
		rc = zk_create_parents(a->zk, path);
		if (rc < 0)
			return rc;
		rc = zk_get_children(a->zk, dir, false, &c);
	}
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < c.count; i++) {
		if (agent_join(path, sizeof(path), dir, c.names[i]) < 0) {
			agent_count_bad(a);
			continue;
		}
		if (zk_exists(a->zk, path, false, &st) == 0 &&
		    (uint64_t)st.ephemeral_owner == a->session &&
		    strlen(c.names[i]) < sizeof(a->election)) {
			strcpy(a->election, c.names[i]);
			zk_free_children(&c);
			return 0;
		}
	}
	zk_free_children(&c);
	agent_join(path, sizeof(path), dir, "n_");
	rc = zk_create_node(a->zk, path, a->id, strlen(a->id),
			    ZK_EPHEMERAL | ZK_SEQUENCE, created,
			    sizeof(created));
	if (rc < 0)
		return rc;
	base = strrchr(created, '/');
	base = base ? base + 1 : created;
	if (strlen(base) >= sizeof(a->election))
		return -EINVAL;
	strcpy(a->election, base);
	return 0;
}

static void agent_elect(struct agent *a)
{
	char dir[AGENT_PATH_MAX], path[AGENT_PATH_MAX];
	struct zk_children c;
	int rc, me;

	agent_path(a, dir, sizeof(dir), "%s/election", NULL);
	for (int tries = 0; tries < 4; tries++) {
		if (!a->election[0] && agent_join_election(a, dir) < 0)
			return;
		if (zk_get_children(a->zk, dir, false, &c) < 0)
			return;
		/* Names sort by their fixed-width sequence number. Children
		 * that are not ours to interpret are ignored (counted). */
		me = -1;
		int pred = -1;
		for (unsigned i = 0; i < c.count; i++) {
			if (!agent_election_name_valid(c.names[i])) {
				agent_count_bad(a);
				continue;
			}
			if (strcmp(c.names[i], a->election) == 0) {
				me = (int)i;
				break;
			}
			pred = (int)i;
		}
		if (me < 0) {
			/* Our child is gone (deleted by hand): join again. */
			zk_free_children(&c);
			a->election[0] = '\0';
			agent_set_leader(a, false);
			continue;
		}
		if (pred < 0) {
			zk_free_children(&c);
			agent_set_leader(a, true);
			return;
		}
		agent_join(path, sizeof(path), dir, c.names[pred]);
		zk_free_children(&c);
		agent_set_leader(a, false);
		/* Watch the predecessor only: its deletion wakes us. */
		rc = zk_exists(a->zk, path, true, NULL);
		if (rc != -ENOENT)
			return;
		/* It went between the listing and the watch: look again. */
	}
}

/* ------------------------------------------------------------------ */
/* Leader */

struct agent_gather {
	struct planner_member *members;
	unsigned nmembers;
	struct planner_source *sources;
	unsigned nsources;
	struct shard_map *map;
	int map_version;
	/* The oldest pending request. */
	bool have_request;
	struct planner_request request;
	char request_path[AGENT_PATH_MAX];
	char *request_json;            /* its original JSON */
	int request_version;
	bool busy;                     /* a pending request waits */
};

static void agent_gather_free(struct agent_gather *g)
{
	free(g->members);
	free(g->sources);
	map_unref(g->map);
	free(g->request_json);
	memset(g, 0, sizeof(*g));
}

/* Takes one child znode's (name, data); false if it is malformed. */
typedef bool (*agent_child_fn)(void *arg, const char *name, const char *data,
			       size_t len);

/*
 * Reads every child of 'dir' listed in 'c' and hands each to 'take'. A
 * child that left meanwhile is skipped; a malformed one is counted. 0, or
 * the first ZooKeeper error.
 */
static int agent_read_children(struct agent *a, const char *dir,
			       const struct zk_children *c, agent_child_fn take,
			       void *arg)
{
	char path[AGENT_PATH_MAX];
	char *data;
	size_t len;
	int rc;

	for (unsigned i = 0; i < c->count; i++) {
		if (agent_join(path, sizeof(path), dir, c->names[i]) < 0) {
			agent_count_bad(a);
			continue;
		}
		rc = zk_get(a->zk, path, false, &data, &len, NULL);
		if (rc == -ENOENT)
			continue;              /* left meanwhile */
		if (rc < 0)
			return rc;
		if (!take(arg, c->names[i], data, len))
			agent_count_bad(a);
		free(data);
	}
	return 0;
}

static bool agent_take_member(void *arg, const char *name, const char *data,
			      size_t len)
{
	struct agent_gather *g = arg;

	if (!agent_parse_member(name, data, len, &g->members[g->nmembers]))
		return false;
	g->nmembers++;
	return true;
}

static int agent_gather_members(struct agent *a, struct agent_gather *g)
{
	char dir[AGENT_PATH_MAX];
	struct zk_children c;
	int rc;

	agent_path(a, dir, sizeof(dir), "%s/nodes", NULL);
	rc = zk_get_children(a->zk, dir, true, &c);
	if (rc < 0)
		return rc;
	g->members = calloc(c.count ? c.count : 1, sizeof(*g->members));
	rc = g->members ? agent_read_children(a, dir, &c, agent_take_member, g)
			: -ENOMEM;
	zk_free_children(&c);
	return rc;
}

/* Creates or rewrites ROOT/migrations/<n> with the fields given (others
 * kept). */
static int agent_write_migration(struct agent *a, uint64_t n, json_t *fields)
{
	char path[AGENT_PATH_MAX], num[24];
	json_t *o = NULL;
	char *data, *out;
	size_t len;
	int rc;

	snprintf(num, sizeof(num), "%" PRIu64, n);
	agent_path(a, path, sizeof(path), "%s/migrations/%s", num);
	if (zk_get(a->zk, path, false, &data, &len, NULL) == 0) {
		o = json_loadb(data, len, 0, NULL);
		free(data);
	}
	if (!o || !json_is_object(o)) {
		json_decref(o);
		o = json_object();
	}
	if (!o) {
		json_decref(fields);
		return -ENOMEM;
	}
	json_object_set_new(o, "id", json_integer((json_int_t)n));
	json_object_update(o, fields);
	json_decref(fields);
	out = agent_dump(o);
	if (!out)
		return -ENOMEM;
	rc = zk_put(a->zk, path, out, strlen(out));
	free(out);
	return rc;
}

/* A source's progress record for the migration in flight. */
static bool agent_take_source(void *arg, const char *name, const char *data,
			      size_t len)
{
	struct agent_gather *g = arg;
	struct planner_source *src = &g->sources[g->nsources];
	json_t *o;

	if (!map_id_valid(name) || strlen(name) >= MAP_ID_MAX)
		return false;
	o = json_loadb(data, len, 0, NULL);
	if (!o || !json_is_object(o)) {
		json_decref(o);
		return false;
	}
	strcpy(src->id, name);
	src->done = json_is_true(json_object_get(o, "done"));
	/* keys sent + skipped: the planner's stall clock watches it */
	src->progress =
		(uint64_t)json_integer_value(json_object_get(o, "keys_sent")) +
		(uint64_t)json_integer_value(json_object_get(o, "keys_skipped"));
	g->nsources++;
	json_decref(o);
	return true;
}

static int agent_gather_sources(struct agent *a, struct agent_gather *g)
{
	char dir[AGENT_PATH_MAX], num[24];
	struct zk_children c;
	int rc;

	snprintf(num, sizeof(num), "%" PRIu64, g->map->migration);
	agent_path(a, dir, sizeof(dir), "%s/migrations/%s", num);
	rc = zk_get_children(a->zk, dir, true, &c);
	if (rc == -ENOENT) {
		/* A leader died between publishing the map and writing the
		 * record: write it now, so sources' records have a parent and
		 * we have something to watch. */
		rc = agent_write_migration(a, g->map->migration,
			json_pack("{s:I, s:s, s:I, s:s}",
				  "epoch", (json_int_t)g->map->epoch,
				  "reason", "",
				  "started_ms", (json_int_t)agent_wall_ms(),
				  "state", "moving"));
		if (rc < 0)
			return rc;
		rc = zk_get_children(a->zk, dir, true, &c);
	}
	if (rc < 0)
		return rc;
	g->sources = calloc(c.count ? c.count : 1, sizeof(*g->sources));
	rc = g->sources ? agent_read_children(a, dir, &c, agent_take_source, g)
			: -ENOMEM;
	zk_free_children(&c);
	return rc;
}

/* Rewrites a request znode: its fields plus status (and error, message,
 * migration when given). Version-checked: a request rewritten by someone
 * else meanwhile is looked at again next step. */
static int agent_answer_request(struct agent *a, const char *path,
				const char *orig, int version,
				const char *status, const char *error,
				const char *message, uint64_t migration)
{
	json_t *o = orig ? json_loads(orig, 0, NULL) : NULL;
	char *out;
	int rc;

	if (!o || !json_is_object(o)) {
		json_decref(o);
		o = json_object();
		if (!o)
			return -ENOMEM;
	}
	json_object_set_new(o, "status", json_string(status));
	if (error && error[0])
		json_object_set_new(o, "error", json_string(error));
	if (message && message[0])
		json_object_set_new(o, "message", json_string(message));
	if (migration)
		json_object_set_new(o, "migration",
				    json_integer((json_int_t)migration));
	if (strcmp(status, "running") != 0)
		json_object_set_new(o, "finished_ms",
				    json_integer((json_int_t)agent_wall_ms()));
	out = agent_dump(o);
	if (!out)
		return -ENOMEM;
	rc = zk_set(a->zk, path, out, strlen(out), version, NULL);
	free(out);
	if (rc == 0) {
		pthread_mutex_lock(&a->lock);
		if (strcmp(status, "running") != 0)
			a->status.requests_answered++;
		pthread_mutex_unlock(&a->lock);
	}
	return rc;
}

/* The state recorded for migration n ("moving", "done", "rolled_back"), or
 * "" when unknown. */
static void agent_migration_state(struct agent *a, uint64_t n, char *buf,
				  size_t len)
{
	char path[AGENT_PATH_MAX], num[24];
	const char *s;
	char *data;
	size_t dlen;
	json_t *o;

	buf[0] = '\0';
	snprintf(num, sizeof(num), "%" PRIu64, n);
	agent_path(a, path, sizeof(path), "%s/migrations/%s", num);
	if (zk_get(a->zk, path, false, &data, &dlen, NULL) < 0)
		return;
	o = json_loadb(data, dlen, 0, NULL);
	free(data);
	s = json_string_value(json_object_get(o, "state"));
	if (s)
		snprintf(buf, len, "%s", s);
	json_decref(o);
}

/*
 * Walks ROOT/requests in sequence order: remembers the oldest pending one
 * for the planner, answers running ones whose migration has ended, answers
 * malformed ones, and deletes answered ones older than 10 minutes.
 */
static int agent_gather_requests(struct agent *a, struct agent_gather *g)
{
	char dir[AGENT_PATH_MAX], path[AGENT_PATH_MAX], state[32];
	uint64_t now = agent_wall_ms();
	struct zk_children c;
	struct zk_stat st;
	const char *status, *op, *id;
	json_t *o;
	char *data;
	size_t len;
	int rc;

	agent_path(a, dir, sizeof(dir), "%s/requests", NULL);
	rc = zk_get_children(a->zk, dir, true, &c);
	if (rc == -ENOENT) {
		/* Create the directory so the children watch can be set. */
		agent_join(path, sizeof(path), dir, "x");
		rc = zk_create_parents(a->zk, path);
		if (rc < 0)
			return rc;
		rc = zk_get_children(a->zk, dir, true, &c);
	}
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < c.count; i++) {
		if (agent_join(path, sizeof(path), dir, c.names[i]) < 0) {
			agent_count_bad(a);
			continue;
		}
		rc = zk_get(a->zk, path, false, &data, &len, &st);
		if (rc == -ENOENT)
			continue;
		if (rc < 0)
			break;
		o = json_loadb(data, len, 0, NULL);
		status = json_string_value(json_object_get(o, "status"));
		if (!o || !json_is_object(o) || !status) {
			/* Not a request we can read: answer it so it does not
			 * block the queue, once. */
			if (!status || strcmp(status, "rejected") != 0) {
				agent_count_bad(a);
				agent_answer_request(a, path, NULL, st.version,
						     "rejected",
						     "malformed request", NULL,
						     0);
			}
			goto next;
		}
		if (strcmp(status, "running") == 0) {
			json_int_t mig = json_integer_value(
				json_object_get(o, "migration"));

			if (mig > 0 && g->map &&
			    g->map->migration == (uint64_t)mig)
				goto next;     /* still moving */
			agent_migration_state(a, (uint64_t)mig, state,
					      sizeof(state));
			if (strcmp(state, "rolled_back") == 0)
				agent_answer_request(a, path, data, st.version,
					"rejected", "rolled back: the target "
					"node is gone", NULL, (uint64_t)mig);
			else
				agent_answer_request(a, path, data, st.version,
						     "done", NULL,
						     "migration finished",
						     (uint64_t)mig);
			goto next;
		}
		if (strcmp(status, "pending") != 0) {
			/* Answered: dpcachectl deletes it after reading; a
			 * detached one is ours to delete eventually. */
			if (st.mtime_ms > 0 &&
			    now > (uint64_t)st.mtime_ms + AGENT_REQUEST_KEEP_MS)
				zk_delete(a->zk, path, st.version);
			goto next;
		}
		g->busy = true;
		if (g->have_request)
			goto next;             /* later ones wait their turn */
		op = json_string_value(json_object_get(o, "op"));
		id = json_string_value(json_object_get(o, "id"));
		memset(&g->request, 0, sizeof(g->request));
		g->request.op = op ? planner_op_parse(op) : PLANNER_OP_NONE;
		if (g->request.op == PLANNER_OP_NONE) {
			agent_count_bad(a);
			agent_answer_request(a, path, data, st.version,
					     "rejected", "unknown op", NULL, 0);
			goto next;
		}
		if (id) {
			if (strlen(id) >= sizeof(g->request.id)) {
				agent_answer_request(a, path, data, st.version,
						     "rejected", "bad node id",
						     NULL, 0);
				goto next;
			}
			strcpy(g->request.id, id);
		}
		{
			json_t *w = json_object_get(o, "weight");
			json_int_t wv = json_integer_value(w);

			/* Out of range: the planner rejects weight 0. */
			g->request.weight = (wv > 0 && wv <= UINT32_MAX) ?
					    (uint32_t)wv : 0;
		}
		g->have_request = true;
		snprintf(g->request_path, sizeof(g->request_path), "%s", path);
		g->request_json = data;
		data = NULL;
		g->request_version = st.version;
next:
		json_decref(o);
		free(data);
	}
	zk_free_children(&c);
	return 0;
}

/* Whether the leader must look again soon even if no watch fires: the
 * planner runs clocks (grace) and waits (migration, requests). */
static bool agent_leader_busy(const struct agent_gather *g)
{
	if (g->busy || !g->map || g->map->migration)
		return true;
	for (unsigned i = 0; i < g->map->nnodes; i++) {
		const struct map_node *n = &g->map->nodes[i];
		bool found = false;

		if (n->state != MAP_NODE_ACTIVE)
			continue;
		for (unsigned j = 0; j < g->nmembers && !found; j++)
			found = strcmp(g->members[j].id, n->id) == 0;
		if (!found)
			return true;           /* a grace clock runs */
	}
	for (unsigned j = 0; j < g->nmembers; j++)
		if (!g->members[j].standby &&
		    map_find(g->map, g->members[j].id) < 0)
			return true;           /* a join is due */
	return false;
}

/* Publishes a planned map with compare-and-set. 0, -ESTALE (lost a race:
 * re-plan), or another error. */
static int agent_publish(struct agent *a, const struct agent_gather *g,
			 const struct shard_map *m)
{
	char path[AGENT_PATH_MAX];
	char *json;
	int rc;

	json = map_format(m);
	if (!json)
		return -ENOMEM;
	agent_path(a, path, sizeof(path), "%s/map", NULL);
	if (!g->map) {
		rc = zk_create_node(a->zk, path, json, strlen(json), 0,
				    NULL, 0);
		if (rc == -ENOENT) {
			rc = zk_create_parents(a->zk, path);
			if (rc == 0)
				rc = zk_create_node(a->zk, path, json,
						    strlen(json), 0, NULL, 0);
		}
		if (rc == -EEXIST)
			rc = -ESTALE;          /* another leader created it */
	} else {
		rc = zk_set(a->zk, path, json, strlen(json), g->map_version,
			    NULL);
	}
	free(json);
	pthread_mutex_lock(&a->lock);
	if (rc == -ESTALE)
		a->status.cas_conflicts++;
	else if (rc == 0)
		a->status.maps_published++;
	pthread_mutex_unlock(&a->lock);
	return rc;
}

/* One planning step. 1: something was written (plan again), 0: nothing to
 * do, or a negative error (try again next pass). */
static int agent_lead_once(struct agent *a)
{
	struct agent_gather g;
	struct planner_input in;
	struct planner_output out;
	struct zk_stat st;
	int rc, wrote = 0;

	memset(&g, 0, sizeof(g));
	memset(&in, 0, sizeof(in));
	memset(&out, 0, sizeof(out));
	rc = agent_gather_members(a, &g);
	if (rc < 0)
		goto done;
	rc = agent_read_map(a, false, &g.map, &st);
	if (rc == -ENOENT) {
		g.map = NULL;
	} else if (rc < 0) {
		/* An unparseable map is never overwritten blindly. */
		goto done;
	} else {
		g.map_version = st.version;
		if (g.map->migration) {
			rc = agent_gather_sources(a, &g);
			if (rc < 0)
				goto done;
		}
	}
	rc = agent_gather_requests(a, &g);
	if (rc < 0)
		goto done;

	in.map = g.map;
	in.members = g.members;
	in.nmembers = g.nmembers;
	in.sources = g.sources;
	in.nsources = g.nsources;
	in.request = g.have_request ? &g.request : NULL;
	in.now_ms = agent_mono_ms();
	rc = planner_step(a->planner, &in, &out);
	if (rc < 0)
		goto done;

	if (out.map) {
		rc = agent_publish(a, &g, out.map);
		if (rc == -ESTALE) {
			AGENT_LOG(a, 2, "%s: map changed under us (epoch %"
				  PRIu64 "): planning again", a->id,
				  out.map->epoch);
			rc = 1;                /* re-read and re-plan */
			goto done;
		}
		if (rc < 0)
			goto done;
		wrote = 1;
		AGENT_LOG(a, 2, "%s: published map epoch %" PRIu64
			  " migration %" PRIu64, a->id, out.map->epoch,
			  out.map->migration);
		if (out.migration_finished || out.migration_rolled_back) {
			bool back = out.migration_rolled_back != 0;
			uint64_t n = back ? out.migration_rolled_back :
					    out.migration_finished;

			agent_write_migration(a, n,
				json_pack("{s:s, s:I}", "state",
					  back ? "rolled_back" : "done",
					  "finished_ms",
					  (json_int_t)agent_wall_ms()));
		}
		if (out.migration_started) {
			struct map_move_stats ms;

			map_move_stats(out.map, &ms);
			agent_write_migration(a, out.migration_started,
				json_pack("{s:I, s:s, s:I, s:s, s:I}",
					  "epoch", (json_int_t)out.map->epoch,
					  "reason", out.reason,
					  "started_ms",
					  (json_int_t)agent_wall_ms(),
					  "state", "moving",
					  "ranges",
					  (json_int_t)ms.arcs_moving));
		}
	}

	if (g.have_request) {
		const char *status = NULL, *error = NULL;

		switch (out.req_status) {
		case PLANNER_REQ_DONE:
			status = "done";
			break;
		case PLANNER_REQ_RUNNING:
			status = "running";
			break;
		case PLANNER_REQ_REJECTED:
			status = "rejected";
			error = out.message;
			break;
		case PLANNER_REQ_NONE:
		case PLANNER_REQ_DEFERRED:
		default:
			break;
		}
		if (status) {
			agent_answer_request(a, g.request_path, g.request_json,
					     g.request_version, status, error,
					     out.message,
					     out.migration_started);
			wrote = 1;
		}
	}
	a->leader_busy = agent_leader_busy(&g);
	rc = wrote;
done:
	map_unref(out.map);
	agent_gather_free(&g);
	return rc;
}

static void agent_lead(struct agent *a)
{
	a->leader_busy = true;
	for (int i = 0; i < AGENT_LEADER_ROUNDS; i++)
		if (agent_lead_once(a) <= 0)
			break;
}

/* ------------------------------------------------------------------ */
/* Migration progress */

/* Writes the pending progress record when due; returns how long until the
 * next write may be due (ms). */
static unsigned agent_write_progress(struct agent *a)
{
	char path[AGENT_PATH_MAX], tail[MAP_ID_MAX + 24];
	struct migrate_progress p;
	uint64_t now = agent_mono_ms();
	char *json;
	int rc;

	pthread_mutex_lock(&a->lock);
	if (!a->progress_dirty) {
		pthread_mutex_unlock(&a->lock);
		return AGENT_IDLE_MS;
	}
	p = a->progress;
	if (!p.done && now < a->last_progress_ms + AGENT_PROGRESS_MS) {
		pthread_mutex_unlock(&a->lock);
		return (unsigned)(a->last_progress_ms + AGENT_PROGRESS_MS -
				  now);
	}
	a->progress_dirty = false;
	pthread_mutex_unlock(&a->lock);

	json = agent_dump(json_pack("{s:I, s:I, s:I, s:I, s:b, s:I, s:I}",
				    "keys_total", (json_int_t)p.keys_total,
				    "keys_sent", (json_int_t)p.keys_sent,
				    "keys_skipped", (json_int_t)p.keys_skipped,
				    "bytes_sent", (json_int_t)p.bytes_sent,
				    "done", p.done,
				    "failed_targets",
				    (json_int_t)p.failed_targets,
				    "updated_ms", (json_int_t)agent_wall_ms()));
	snprintf(tail, sizeof(tail), "%" PRIu64 "/%s", p.migration, a->id);
	agent_path(a, path, sizeof(path), "%s/migrations/%s", tail);
	rc = json ? zk_put(a->zk, path, json, strlen(json)) : -ENOMEM;
	free(json);
	a->last_progress_ms = now;
	if (rc < 0) {
		/* Keep it for the next pass unless a newer one came in. */
		pthread_mutex_lock(&a->lock);
		if (!a->progress_dirty) {
			a->progress = p;
			a->progress_dirty = true;
		}
		pthread_mutex_unlock(&a->lock);
		return AGENT_PROGRESS_MS;
	}
	return AGENT_IDLE_MS;
}

void agent_report_progress(struct agent *a, const struct migrate_progress *p)
{
	if (!a || !p)
		return;
	pthread_mutex_lock(&a->lock);
	/* Once a migration's record says done, a late report of the same
	 * migration never takes it back. */
	if (p->migration == a->progress_done_migration && !p->done) {
		pthread_mutex_unlock(&a->lock);
		return;
	}
	if (p->done)
		a->progress_done_migration = p->migration;
	a->progress = *p;
	a->progress_dirty = true;
	a->wake = true;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

/* ------------------------------------------------------------------ */
/* Session and the agent thread */

static void agent_set_session_status(struct agent *a, enum zk_session_state s,
				     uint64_t sid, bool expired)
{
	uint64_t connects = zk_connects(a->zk);

	pthread_mutex_lock(&a->lock);
	a->status.connected = s == ZK_CONNECTED;
	a->status.session_id = sid;
	a->status.zk_reconnects = connects > 1 ? connects - 1 : 0;
	if (expired)
		a->status.session_expiries++;
	snprintf(a->status.zk_state, sizeof(a->status.zk_state), "%s",
		 zk_state_name(s));
	pthread_mutex_unlock(&a->lock);
}

/* Forgets everything that belonged to the session: its ephemerals are gone
 * (or will be), and so is our place in the election. */
static void agent_forget_session(struct agent *a)
{
	if (a->session) {
		a->old_sessions[a->nold % AGENT_OLD_SESSIONS] = a->session;
		if (a->nold < AGENT_OLD_SESSIONS)
			a->nold++;
	}
	a->session = 0;
	a->election[0] = '\0';
	agent_set_registered(a, false, false);
	agent_set_leader(a, false);
}

/* One pass; returns how long to sleep unless woken (ms). */
static unsigned agent_pass(struct agent *a)
{
	enum zk_session_state s = zk_state(a->zk);
	unsigned wait = AGENT_IDLE_MS, w;
	uint64_t sid;

	if (s == ZK_EXPIRED || s == ZK_AUTH_FAILED) {
		agent_set_session_status(a, s, 0, s == ZK_EXPIRED);
		AGENT_LOG(a, 1, "%s: ZooKeeper session %s; opening a new one",
			  a->id, zk_state_name(s));
		agent_forget_session(a);
		if (zk_reopen(a->zk) < 0)
			AGENT_LOG(a, 1, "%s: cannot open a ZooKeeper handle",
				  a->id);
		return AGENT_BUSY_MS;
	}
	sid = s == ZK_CONNECTED ? zk_session_id(a->zk) : 0;
	if (!sid) {
		/* Reconnecting: serve with the last map; the client's session
		 * event wakes us. */
		agent_set_session_status(a, ZK_CONNECTING, 0, false);
		return 500;
	}
	if (sid != a->session) {
		agent_forget_session(a);
		a->session = sid;
	}
	agent_set_session_status(a, s, sid, false);

	agent_watch_map(a);
	if (!a->registered)
		agent_register(a);
	else
		agent_check_node(a);
	if (a->registered)
		agent_elect(a);
	if (a->planner) {
		agent_lead(a);
		if (a->leader_busy)
			wait = AGENT_BUSY_MS;
	}
	w = agent_write_progress(a);
	return w < wait ? w : wait;
}

/* Clean leave: our ephemerals go now rather than after the session
 * timeout, so the leader starts the grace at once. */
static void agent_leave(struct agent *a)
{
	char path[AGENT_PATH_MAX];

	if (zk_state(a->zk) != ZK_CONNECTED ||
	    zk_session_id(a->zk) != a->session)
		return;
	if (a->election[0]) {
		snprintf(path, sizeof(path), "%s/election/%s", a->root,
			 a->election);
		zk_delete(a->zk, path, -1);
	}
	if (a->registered) {
		agent_path(a, path, sizeof(path), "%s/nodes/%s", a->id);
		zk_delete(a->zk, path, -1);
	}
	agent_forget_session(a);
}

static void *agent_main(void *arg)
{
	struct agent *a = arg;
	struct timespec ts;
	unsigned wait;

	pthread_mutex_lock(&a->lock);
	while (!a->stopping) {
		a->wake = false;
		pthread_mutex_unlock(&a->lock);
		wait = agent_pass(a);
		pthread_mutex_lock(&a->lock);
		if (a->wake || a->stopping || wait == 0)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += wait / 1000;
		ts.tv_nsec += (long)(wait % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!a->wake && !a->stopping &&
		       pthread_cond_timedwait(&a->cond, &a->lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&a->lock);
	agent_leave(a);
	return NULL;
}

static bool agent_hosts_valid(const char *hosts)
{
	if (!hosts || !hosts[0] || strlen(hosts) >= 1024)
		return false;
	for (const char *p = hosts; *p; p++)
		if (*p == ' ' || *p == '\t' || *p == '\n')
			return false;
	return strchr(hosts, ':') != NULL;
}

struct agent *agent_start(const struct agent_config *cfg, char *err,
			  size_t errlen)
{
	struct zk_config zc;
	pthread_condattr_t ca;
	struct agent *a;
	size_t rootlen;

#define AGENT_FAIL(...) do { \
	if (err && errlen) \
		snprintf(err, errlen, __VA_ARGS__); \
	goto fail; \
} while (0)

	a = calloc(1, sizeof(*a));
	if (!a) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&a->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (!cfg)
		AGENT_FAIL("no configuration");
	if (!agent_hosts_valid(cfg->zk_hosts))
		AGENT_FAIL("bad ZooKeeper host list '%s'",
			   cfg->zk_hosts ? cfg->zk_hosts : "");
	rootlen = cfg->root ? strlen(cfg->root) : 0;
	if (rootlen < 2 || cfg->root[0] != '/' ||
	    cfg->root[rootlen - 1] == '/' || rootlen >= sizeof(a->root) ||
	    strstr(cfg->root, "//"))
		AGENT_FAIL("cluster root '%s' must be an absolute ZooKeeper "
			   "path without a trailing slash",
			   cfg->root ? cfg->root : "");
	if (!cfg->node_id || !map_id_valid(cfg->node_id))
		AGENT_FAIL("bad node id '%s' (1-63 of A-Z a-z 0-9 _ . -)",
			   cfg->node_id ? cfg->node_id : "");
	if (!cfg->advertise || !strchr(cfg->advertise, ':') ||
	    strlen(cfg->advertise) >= sizeof(a->addr))
		AGENT_FAIL("bad advertise address '%s' (host:port)",
			   cfg->advertise ? cfg->advertise : "");
	if (cfg->admin && strlen(cfg->admin) >= sizeof(a->admin))
		AGENT_FAIL("admin address too long");
	if (cfg->weight < 1 || cfg->weight > MAP_WEIGHT_MAX)
		AGENT_FAIL("weight %u out of range 1..%u", cfg->weight,
			   MAP_WEIGHT_MAX);

	strcpy(a->root, cfg->root);
	strcpy(a->id, cfg->node_id);
	strcpy(a->addr, cfg->advertise);
	if (cfg->admin)
		strcpy(a->admin, cfg->admin);
	a->weight = cfg->weight;
	a->standby = cfg->standby;
	a->grace_ms = cfg->grace_ms ? cfg->grace_ms : 5000;
	a->verbosity = cfg->verbosity;
	a->on_map = cfg->on_map;
	a->arg = cfg->arg;
	a->map_version = -1;
	snprintf(a->status.zk_state, sizeof(a->status.zk_state), "connecting");

	memset(&zc, 0, sizeof(zc));
	zc.hosts = cfg->zk_hosts;
	zc.session_timeout_ms = cfg->session_timeout_ms ?
				cfg->session_timeout_ms : 6000;
	zc.wake = agent_wake;
	zc.arg = a;
	zc.verbosity = cfg->verbosity;
	a->zk = zk_create(&zc);
	if (!a->zk)
		AGENT_FAIL("cannot start a ZooKeeper client for '%s'",
			   cfg->zk_hosts);
	if (pthread_create(&a->thread, NULL, agent_main, a) != 0) {
		zk_destroy(&a->zk);
		AGENT_FAIL("cannot start the agent thread");
	}
	return a;
fail:
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	free(a);
	return NULL;
#undef AGENT_FAIL
}

void agent_stop(struct agent **ap)
{
	struct agent *a = ap ? *ap : NULL;

	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stopping = true;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	/* Closing joins the client's threads; a last event may still call
	 * agent_wake, so the lock outlives it. */
	zk_destroy(&a->zk);
	planner_destroy(&a->planner);
	map_unref(a->map);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	free(a);
	*ap = NULL;
}

void agent_get_status(struct agent *a, struct agent_status *out)
{
	pthread_mutex_lock(&a->lock);
	*out = a->status;
	pthread_mutex_unlock(&a->lock);
}
