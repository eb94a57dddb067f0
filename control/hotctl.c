/*
 * control/hotctl.c - a node's hot-key control loop (see hotctl.h; layout
 * in control/CLUSTER.md, "Hot keys").
 *
 * Design note
 * -----------
 * One thread, one ZooKeeper session of its own, so a slow leader plan or a
 * big report never delays the agent's map duties, and the agent's
 * migrations never delay hot-key detection. Like the agent, the thread
 * works in passes: a watch or session event only sets a flag and signals a
 * condition variable (hotctl_wake runs on the client's thread); the pass
 * then re-reads what it follows and re-arms the watch, so a lost or
 * coalesced event costs nothing but a pass.
 *
 * Two kinds of pass:
 *  - the interval tick (every interval_ms, ZooKeeper or not): drain the
 *    sketches into the hot_table, decay, refresh the stats snapshot; then,
 *    with a live session, write our report, read the set, and if
 *    cfg.is_leader() says so, plan and publish;
 *  - a wake (watch or session event): read the set only.
 * Draining does not depend on ZooKeeper: the sketches fill up whatever
 * happens, and 'stats hotkeys' must keep showing this node's hot keys.
 *
 * The set's version decides what is applied: every parsed set whose
 * version differs from the last applied one goes to cfg.apply. The leader
 * writes with compare-and-set on the znode version it read, so two nodes
 * that both believe they lead (a handover in flight) cannot interleave: the
 * loser gets -ESTALE (or -EEXIST on create) and plans again next interval
 * from what the winner wrote. Versions only grow, also across a malformed
 * or deleted znode: the leader then writes max(version seen) + 1, where
 * "seen" includes the version every report says its node applied, so no
 * node mistakes a new content for the one it already applied.
 *
 * Our report is ephemeral: it vanishes with our session, so the leader's
 * view of "who reports" is "who is alive". After a new session it is
 * created again; a leftover held by an older session of ours is deleted
 * first (it would vanish under us when that session finally expires).
 *
 * Malformed znodes (a report or the set) are counted in hot_zk_errors and
 * skipped, as are failed ZooKeeper calls; the set is counted once per znode
 * version, not once per pass.
 *
 * Locking: h->lock guards wake/stopping and the stats snapshot (counters,
 * rates, top keys, the applied set's copy). Everything else belongs to the
 * thread. hotctl_stats calls 'emit' with the lock held.
 */
#include "control/hotctl.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nettle/base64.h>

#include "control/zk.h"

#define HOTCTL_PATH_MAX    512
#define HOTCTL_DRAIN_MAX   4096    /* counts per drain */
#define HOTCTL_TABLE_KEYS  1024    /* keys in the node's hot_table */
#define HOTCTL_REPORT_KEYS 128     /* keys in a report (<= HOT_REPORT_KEYS_MAX) */
#define HOTCTL_STATS_KEYS  32      /* 'hotkey:<i>' lines */
#define HOTCTL_RETRY_MS    200     /* after a session expiry */

enum hotctl_set_state {
	HOTCTL_SET_UNKNOWN = 0,   /* not read in this session yet */
	HOTCTL_SET_ABSENT,
	HOTCTL_SET_OK,            /* h->cur is the znode's content */
	HOTCTL_SET_BAD,           /* unparseable */
};

struct hotctl {
	/* Config, copied. */
	char id[MAP_ID_MAX];
	char report_path[HOTCTL_PATH_MAX];
	char reports_dir[HOTCTL_PATH_MAX];
	char set_path[HOTCTL_PATH_MAX];
	unsigned interval_ms;
	double decay;
	double forget_below;
	struct hot_plan_config plan;
	unsigned (*drain)(void *arg, struct hot_count *out, unsigned max,
			  uint64_t *received, uint64_t *executed);
	void (*apply)(void *arg, struct hot_set *set);
	bool (*is_leader)(void *arg);
	struct shard_map *(*get_map)(void *arg);
	void *arg;
	int verbosity;

	struct zk *zk;
	pthread_t thread;

	pthread_mutex_t lock;
	pthread_cond_t cond;           /* CLOCK_MONOTONIC */
	bool wake;
	bool stopping;
	/* The stats snapshot, under lock. */
	double stat_received;
	double stat_executed;
	unsigned stat_ntop;
	struct hot_rate stat_top[HOTCTL_STATS_KEYS];
	struct hot_set *stat_set;      /* a copy of the last applied set */
	uint64_t reports_written;
	uint64_t sets_published;
	uint64_t zk_errors;

	/* Thread only. */
	struct hot_table *table;
	struct hot_count *counts;      /* HOTCTL_DRAIN_MAX */
	struct hot_rate *rates;        /* HOTCTL_TABLE_KEYS, reads desc */
	unsigned nrates;
	double received;               /* decayed, per second */
	double executed;
	uint64_t last_drain_ms;
	uint64_t session;              /* the session the state below is for */
	bool report_live;              /* our ephemeral exists in 'session' */
	enum hotctl_set_state set_state;
	struct hot_set *cur;           /* HOTCTL_SET_OK: the znode's set */
	int32_t set_zversion;          /* znode version and mtime read: */
	int64_t set_mtime;             /* unchanged = no need to parse */
	uint64_t max_version;          /* highest set version ever parsed */
	bool applied_any;
	uint64_t applied_version;
};

/* "dpcached: hotctl: function: message" on stderr at -v level or above
 * (1 errors, 2 events), like the agent's log. */
static void hotctl_log(const char *func, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void hotctl_log(const char *func, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "dpcached: hotctl: %s: %s\n", func, line);
}

#define HOTCTL_LOG(h, level, ...) do { \
	if ((h)->verbosity >= (level)) \
		hotctl_log(__func__, __VA_ARGS__); \
} while (0)

static uint64_t hotctl_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* zk.c's event callback: the client's thread, so only a flag and a signal. */
static void hotctl_wake(void *arg)
{
	struct hotctl *h = arg;

	pthread_mutex_lock(&h->lock);
	h->wake = true;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

static void hotctl_count(struct hotctl *h, uint64_t *counter)
{
	pthread_mutex_lock(&h->lock);
	(*counter)++;
	pthread_mutex_unlock(&h->lock);
}

/* ------------------------------------------------------------------ */
/* The interval: drain, decay, snapshot */

static int hotctl_rate_cmp(const void *pa, const void *pb)
{
	const struct hot_rate *a = pa, *b = pb;
	size_t n;
	int c;

	if (a->reads != b->reads)
		return a->reads > b->reads ? -1 : 1;
	if (a->writes != b->writes)
		return a->writes > b->writes ? -1 : 1;
	n = a->nkey < b->nkey ? a->nkey : b->nkey;
	c = memcmp(a->key, b->key, n);
	return c != 0 ? c : (a->nkey > b->nkey) - (a->nkey < b->nkey);
}

static void hotctl_drain(struct hotctl *h)
{
	uint64_t now = hotctl_mono_ms(), received = 0, executed = 0;
	double secs = (double)(now - h->last_drain_ms) / 1000.0;
	unsigned n;

	if (secs < 0.001)
		secs = 0.001;
	h->last_drain_ms = now;
	n = h->drain(h->arg, h->counts, HOTCTL_DRAIN_MAX, &received,
		     &executed);
	if (n > HOTCTL_DRAIN_MAX)
		n = HOTCTL_DRAIN_MAX;
	if (hot_table_add(h->table, h->counts, n) != 0)
		HOTCTL_LOG(h, 1, "%s: out of memory merging %u counts", h->id, n);
	hot_table_tick(h->table, secs, h->forget_below);
	/* The loads decay like the keys' rates, so a key's share of the load
	 * is not skewed by the first intervals. */
	h->received = h->decay * h->received +
		      (1 - h->decay) * (double)received / secs;
	h->executed = h->decay * h->executed +
		      (1 - h->decay) * (double)executed / secs;
	h->nrates = hot_table_top(h->table, h->rates, HOTCTL_TABLE_KEYS);
	qsort(h->rates, h->nrates, sizeof(*h->rates), hotctl_rate_cmp);

	pthread_mutex_lock(&h->lock);
	h->stat_received = h->received;
	h->stat_executed = h->executed;
	h->stat_ntop = h->nrates < HOTCTL_STATS_KEYS ? h->nrates :
		       HOTCTL_STATS_KEYS;
	memcpy(h->stat_top, h->rates, h->stat_ntop * sizeof(*h->rates));
	pthread_mutex_unlock(&h->lock);
}

/* ------------------------------------------------------------------ */
/* Our report */

static int hotctl_create_report(struct hotctl *h, const char *data, size_t len)
{
	struct zk_stat st;
	int rc;

	rc = zk_create_parents(h->zk, h->report_path);
	if (rc < 0)
		return rc;
	rc = zk_create_node(h->zk, h->report_path, data, len, ZK_EPHEMERAL,
			    NULL, 0);
	if (rc != -EEXIST)
		return rc;
	rc = zk_exists(h->zk, h->report_path, false, &st);
	if (rc == -ENOENT)
		return -EAGAIN;            /* gone meanwhile: next interval */
	if (rc < 0)
		return rc;
	if ((uint64_t)st.ephemeral_owner == h->session)
		return zk_set(h->zk, h->report_path, data, len, -1, NULL);
	/* A leftover of an older session (ours, or a process that had our
	 * id): it would vanish under us when that session expires. */
	HOTCTL_LOG(h, 2, "%s: replacing a report left by session 0x%" PRIx64,
		   h->id, (uint64_t)st.ephemeral_owner);
	rc = zk_delete(h->zk, h->report_path, st.version);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	return zk_create_node(h->zk, h->report_path, data, len, ZK_EPHEMERAL,
			      NULL, 0);
}

static void hotctl_write_report(struct hotctl *h)
{
	struct hot_report r;
	char *data;
	size_t len;
	int rc = 0;

	memset(&r, 0, sizeof(r));
	strcpy(r.node, h->id);
	r.interval_ms = h->interval_ms;
	r.received = h->received;
	r.executed = h->executed;
	r.set_version = h->applied_any ? h->applied_version : 0;
	r.keys = h->rates;
	r.nkeys = h->nrates < HOTCTL_REPORT_KEYS ? h->nrates :
		  HOTCTL_REPORT_KEYS;
	data = hot_report_format(&r);
	if (data == NULL) {
		HOTCTL_LOG(h, 1, "%s: out of memory formatting the report", h->id);
		return;
	}
	len = strlen(data);
	if (h->report_live) {
		rc = zk_set(h->zk, h->report_path, data, len, -1, NULL);
		if (rc == -ENOENT)           /* deleted by someone: again */
			h->report_live = false;
	}
	if (!h->report_live) {
		rc = hotctl_create_report(h, data, len);
		h->report_live = rc == 0;
	}
	free(data);
	if (rc == 0) {
		hotctl_count(h, &h->reports_written);
	} else {
		hotctl_count(h, &h->zk_errors);
		HOTCTL_LOG(h, 1, "%s: cannot write %s: %s", h->id,
			   h->report_path, strerror(-rc));
	}
}

/* ------------------------------------------------------------------ */
/* The set */

static void hotctl_apply(struct hotctl *h, const struct hot_set *s)
{
	struct hot_set *give, *keep;

	if (h->applied_any && s->version == h->applied_version)
		return;
	give = hot_set_clone(s);
	keep = hot_set_clone(s);
	if (give == NULL || keep == NULL) {
		/* Not applied: the next pass tries again. */
		hot_set_free(&give);
		hot_set_free(&keep);
		HOTCTL_LOG(h, 1, "%s: out of memory applying set version %" PRIu64,
			   h->id, s->version);
		return;
	}
	HOTCTL_LOG(h, 2, "%s: applying hot set version %" PRIu64 " (%u keys)",
		   h->id, s->version, s->nkeys);
	h->applied_any = true;
	h->applied_version = s->version;
	h->apply(h->arg, give);
	pthread_mutex_lock(&h->lock);
	hot_set_free(&h->stat_set);
	h->stat_set = keep;
	pthread_mutex_unlock(&h->lock);
}

/*
 * Reads ROOT/hot/set with a watch (an exists watch while it is absent),
 * parses it when its znode changed, and applies a new version. 0 or a
 * ZooKeeper error.
 */
static int hotctl_read_set(struct hotctl *h)
{
	struct hot_set *s = NULL;
	struct zk_stat st;
	char err[160];
	char *data;
	size_t len;
	int rc;

	rc = zk_get(h->zk, h->set_path, true, &data, &len, &st);
	if (rc == -ENOENT) {
		hot_set_free(&h->cur);
		h->set_state = HOTCTL_SET_ABSENT;
		h->set_zversion = -1;
		/* getData sets no watch on a missing node; exists does. */
		if (zk_exists(h->zk, h->set_path, true, NULL) == 0)
			hotctl_wake(h);      /* created in between */
		return 0;
	}
	if (rc < 0) {
		hotctl_count(h, &h->zk_errors);
		HOTCTL_LOG(h, 1, "%s: cannot read %s: %s", h->id, h->set_path,
			   strerror(-rc));
		return rc;
	}
	if ((h->set_state == HOTCTL_SET_OK || h->set_state == HOTCTL_SET_BAD) &&
	    st.version == h->set_zversion && st.mtime_ms == h->set_mtime) {
		free(data);
		if (h->set_state == HOTCTL_SET_OK)
			hotctl_apply(h, h->cur);   /* a failed apply retried */
		return 0;
	}
	h->set_zversion = st.version;
	h->set_mtime = st.mtime_ms;
	rc = hot_set_parse(data, len, &s, err, sizeof(err));
	free(data);
	hot_set_free(&h->cur);
	if (rc != 0) {
		h->set_state = HOTCTL_SET_BAD;
		hotctl_count(h, &h->zk_errors);
		HOTCTL_LOG(h, 1, "%s: ignoring %s (znode version %d): %s", h->id,
			   h->set_path, (int)st.version,
			   rc == -ENOMEM ? "out of memory" : err);
		return 0;
	}
	h->cur = s;
	h->set_state = HOTCTL_SET_OK;
	if (s->version > h->max_version)
		h->max_version = s->version;
	hotctl_apply(h, s);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The leader's step */

struct hotctl_reports {
	struct hot_report **v;
	unsigned n;
};

static void hotctl_free_reports(struct hotctl_reports *rs)
{
	for (unsigned i = 0; i < rs->n; i++)
		hot_report_free(&rs->v[i]);
	free(rs->v);
	rs->v = NULL;
	rs->n = 0;
}

/* Every parseable report under ROOT/hot/reports whose "node" is its name. */
static int hotctl_gather(struct hotctl *h, struct hotctl_reports *rs)
{
	char path[HOTCTL_PATH_MAX], err[160];
	struct zk_children c;
	char *data;
	size_t len;
	int rc;

	memset(rs, 0, sizeof(*rs));
	rc = zk_get_children(h->zk, h->reports_dir, false, &c);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	rs->v = calloc(c.count ? c.count : 1, sizeof(*rs->v));
	if (rs->v == NULL) {
		zk_free_children(&c);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < c.count; i++) {
		struct hot_report *r = NULL;

		if (snprintf(path, sizeof(path), "%s/%s", h->reports_dir,
			     c.names[i]) >= (int)sizeof(path)) {
			hotctl_count(h, &h->zk_errors);
			continue;
		}
		rc = zk_get(h->zk, path, false, &data, &len, NULL);
		if (rc == -ENOENT)
			continue;             /* left meanwhile */
		if (rc < 0) {
			zk_free_children(&c);
			return rc;
		}
		rc = hot_report_parse(data, len, &r, err, sizeof(err));
		free(data);
		if (rc == 0 && strcmp(r->node, c.names[i]) != 0) {
			snprintf(err, sizeof(err), "\"node\" is \"%s\"", r->node);
			hot_report_free(&r);
			rc = -EINVAL;
		}
		if (rc != 0) {
			hotctl_count(h, &h->zk_errors);
			HOTCTL_LOG(h, 1, "%s: ignoring report %s: %s", h->id,
				   path, rc == -ENOMEM ? "out of memory" : err);
			continue;
		}
		rs->v[rs->n++] = r;
	}
	zk_free_children(&c);
	return 0;
}

/* Writes 'next' over the set we read (compare-and-set). 0 when written. */
static int hotctl_publish(struct hotctl *h, const struct hot_set *next)
{
	char *data = hot_set_format(next);
	int rc;

	if (data == NULL)
		return -ENOMEM;
	if (h->set_state == HOTCTL_SET_ABSENT) {
		rc = zk_create_parents(h->zk, h->set_path);
		if (rc == 0)
			rc = zk_create_node(h->zk, h->set_path, data,
					    strlen(data), 0, NULL, 0);
	} else {
		rc = zk_set(h->zk, h->set_path, data, strlen(data),
			    h->set_zversion, NULL);
	}
	free(data);
	return rc;
}

static void hotctl_lead(struct hotctl *h)
{
	struct hotctl_reports rs;
	struct hot_set *prev = NULL, *next = NULL, *empty = NULL;
	struct shard_map *map;
	int rc;

	if (h->set_state == HOTCTL_SET_UNKNOWN)
		return;                      /* the set could not be read */
	map = h->get_map(h->arg);
	if (map == NULL)
		return;
	rc = hotctl_gather(h, &rs);
	if (rc < 0) {
		hotctl_count(h, &h->zk_errors);
		HOTCTL_LOG(h, 1, "%s: cannot read the reports: %s", h->id,
			   strerror(-rc));
		hotctl_free_reports(&rs);    /* those read before the error */
		map_unref(map);
		return;
	}
	/* A new leader learns the highest version any live node applied
	 * from the reports: a set that was lost since (malformed, deleted)
	 * must not be followed by a version a node already has. */
	for (unsigned i = 0; i < rs.n; i++)
		if (rs.v[i]->set_version > h->max_version)
			h->max_version = rs.v[i]->set_version;
	if (h->set_state == HOTCTL_SET_OK) {
		prev = h->cur;
	} else if (h->max_version > 0) {
		/* Malformed or deleted: plan from nothing, but never reuse a
		 * version a node may have applied with other content. */
		empty = hot_set_new();
		if (empty == NULL)
			goto out;
		empty->version = h->max_version;
		prev = empty;
	}
	rc = hot_plan(&h->plan, map, (const struct hot_report *const *)rs.v,
		      rs.n, prev, &next);
	if (rc < 0) {
		HOTCTL_LOG(h, 1, "%s: planning failed: %s", h->id, strerror(-rc));
		goto out;
	}
	if (h->set_state == HOTCTL_SET_OK && next->version == h->cur->version)
		goto out;                    /* nothing changed */
	/* Changed (or no good set to compare with): above every version
	 * any node may hold. */
	if (next->version <= h->max_version)
		next->version = h->max_version + 1;
	rc = hotctl_publish(h, next);
	if (rc == 0) {
		hotctl_count(h, &h->sets_published);
		HOTCTL_LOG(h, 2, "%s: published hot set version %" PRIu64
			   " (%u keys, map epoch %" PRIu64 ", %u reports)",
			   h->id, next->version, next->nkeys, next->epoch, rs.n);
		hotctl_read_set(h);          /* apply it here at once */
	} else if (rc == -ESTALE || rc == -EEXIST) {
		/* Another leader wrote in between: plan again from its set. */
		HOTCTL_LOG(h, 2, "%s: %s changed under us; re-reading", h->id,
			   h->set_path);
		h->set_state = HOTCTL_SET_UNKNOWN;
	} else {
		hotctl_count(h, &h->zk_errors);
		HOTCTL_LOG(h, 1, "%s: cannot write %s: %s", h->id, h->set_path,
			   strerror(-rc));
	}
out:
	hot_set_free(&next);
	hot_set_free(&empty);
	hotctl_free_reports(&rs);
	map_unref(map);
}

/* ------------------------------------------------------------------ */
/* Session and the thread */

/* One pass; tick: the interval is due. Returns a wait cap in ms (0 =
 * none: wait for the next tick or a wake). */
static unsigned hotctl_pass(struct hotctl *h, bool tick)
{
	enum zk_session_state s;
	uint64_t sid;

	if (tick)
		hotctl_drain(h);
	s = zk_state(h->zk);
	if (s == ZK_EXPIRED || s == ZK_AUTH_FAILED) {
		HOTCTL_LOG(h, 1, "%s: ZooKeeper session %s; opening a new one",
			   h->id, zk_state_name(s));
		h->session = 0;
		h->report_live = false;
		h->set_state = HOTCTL_SET_UNKNOWN;
		if (zk_reopen(h->zk) < 0)
			HOTCTL_LOG(h, 1, "%s: cannot open a ZooKeeper handle",
				   h->id);
		return HOTCTL_RETRY_MS;
	}
	sid = s == ZK_CONNECTED ? zk_session_id(h->zk) : 0;
	if (sid == 0)
		return 0;        /* reconnecting: its session event wakes us */
	if (sid != h->session) {
		/* A new session: our report and the set watch are gone. */
		h->session = sid;
		h->report_live = false;
		h->set_state = HOTCTL_SET_UNKNOWN;
	}
	if (tick)
		hotctl_write_report(h);
	if (hotctl_read_set(h) < 0)
		h->set_state = HOTCTL_SET_UNKNOWN;
	if (tick && h->is_leader != NULL && h->get_map != NULL &&
	    h->is_leader(h->arg))
		hotctl_lead(h);
	return 0;
}

/* Clean stop: our report goes now rather than after the session timeout. */
static void hotctl_leave(struct hotctl *h)
{
	if (!h->report_live || zk_state(h->zk) != ZK_CONNECTED ||
	    zk_session_id(h->zk) != h->session)
		return;
	zk_delete(h->zk, h->report_path, -1);
	h->report_live = false;
}

static void hotctl_deadline(struct timespec *ts, uint64_t at_ms)
{
	ts->tv_sec = (time_t)(at_ms / 1000);
	ts->tv_nsec = (long)(at_ms % 1000) * 1000000L;
}

static void *hotctl_main(void *arg)
{
	struct hotctl *h = arg;
	uint64_t next_tick = hotctl_mono_ms() + h->interval_ms, now, until;
	struct timespec ts;
	unsigned cap;
	bool tick;

	h->last_drain_ms = hotctl_mono_ms();
	pthread_mutex_lock(&h->lock);
	while (!h->stopping) {
		h->wake = false;
		pthread_mutex_unlock(&h->lock);
		now = hotctl_mono_ms();
		tick = now >= next_tick;
		if (tick) {
			next_tick += h->interval_ms;
			if (next_tick <= now)       /* fell behind: no burst */
				next_tick = now + h->interval_ms;
		}
		cap = hotctl_pass(h, tick);
		pthread_mutex_lock(&h->lock);
		if (h->wake || h->stopping)
			continue;
		until = next_tick;
		if (cap > 0 && hotctl_mono_ms() + cap < until)
			until = hotctl_mono_ms() + cap;
		hotctl_deadline(&ts, until);
		while (!h->wake && !h->stopping &&
		       pthread_cond_timedwait(&h->cond, &h->lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&h->lock);
	hotctl_leave(h);
	return NULL;
}

static bool hotctl_hosts_valid(const char *hosts)
{
	if (hosts == NULL || hosts[0] == '\0' || strlen(hosts) >= 1024)
		return false;
	for (const char *p = hosts; *p; p++)
		if (*p == ' ' || *p == '\t' || *p == '\n')
			return false;
	return strchr(hosts, ':') != NULL;
}

struct hotctl *hotctl_start(const struct hotctl_config *cfg, char *err,
			    size_t errlen)
{
	struct zk_config zc;
	pthread_condattr_t ca;
	struct hotctl *h;
	size_t rootlen;

#define HOTCTL_FAIL(...) do { \
	if (err != NULL && errlen > 0) \
		snprintf(err, errlen, __VA_ARGS__); \
	goto fail; \
} while (0)

	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&h->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (cfg == NULL)
		HOTCTL_FAIL("no configuration");
	if (!hotctl_hosts_valid(cfg->zk_hosts))
		HOTCTL_FAIL("bad ZooKeeper host list '%s'",
			    cfg->zk_hosts ? cfg->zk_hosts : "");
	rootlen = cfg->root ? strlen(cfg->root) : 0;
	if (rootlen < 2 || cfg->root[0] != '/' ||
	    cfg->root[rootlen - 1] == '/' || rootlen >= HOTCTL_PATH_MAX / 2 ||
	    strstr(cfg->root, "//"))
		HOTCTL_FAIL("cluster root '%s' must be an absolute ZooKeeper "
			    "path without a trailing slash",
			    cfg->root ? cfg->root : "");
	if (cfg->node_id == NULL || !map_id_valid(cfg->node_id))
		HOTCTL_FAIL("bad node id '%s' (1-63 of A-Z a-z 0-9 _ . -)",
			    cfg->node_id ? cfg->node_id : "");
	if (cfg->drain == NULL || cfg->apply == NULL)
		HOTCTL_FAIL("drain and apply callbacks are required");
	if (cfg->interval_ms > 3600 * 1000)
		HOTCTL_FAIL("hot-key interval %u ms is over an hour",
			    cfg->interval_ms);
	if (!(cfg->decay < 1) || isnan(cfg->decay))
		HOTCTL_FAIL("decay must be below 1 (negative: the default)");
	if (!isfinite(cfg->plan.share) || cfg->plan.share <= 0 ||
	    cfg->plan.share > 1)
		HOTCTL_FAIL("hot share must be in (0, 1]");
	if (!isfinite(cfg->plan.min_rate) || cfg->plan.min_rate < 0)
		HOTCTL_FAIL("hot min rate must be >= 0");
	if (!(cfg->plan.max_write_fraction >= 0 &&
	      cfg->plan.max_write_fraction <= 1))
		HOTCTL_FAIL("max write fraction must be in [0, 1]");

	strcpy(h->id, cfg->node_id);
	snprintf(h->reports_dir, sizeof(h->reports_dir), "%s/hot/reports",
		 cfg->root);
	snprintf(h->report_path, sizeof(h->report_path), "%s/hot/reports/%s",
		 cfg->root, cfg->node_id);
	snprintf(h->set_path, sizeof(h->set_path), "%s/hot/set", cfg->root);
	h->interval_ms = cfg->interval_ms ? cfg->interval_ms : 1000;
	h->decay = cfg->decay < 0 ? 0.5 : cfg->decay;
	h->plan = cfg->plan;
	/* Keys under a tenth of min_rate will not matter soon: forget them. */
	h->forget_below = h->plan.min_rate / 10 > 0 ? h->plan.min_rate / 10 : 1;
	h->drain = cfg->drain;
	h->apply = cfg->apply;
	h->is_leader = cfg->is_leader;
	h->get_map = cfg->get_map;
	h->arg = cfg->arg;
	h->verbosity = cfg->verbosity;
	h->set_zversion = -1;

	h->table = hot_table_create(HOTCTL_TABLE_KEYS, h->decay);
	h->counts = calloc(HOTCTL_DRAIN_MAX, sizeof(*h->counts));
	h->rates = calloc(HOTCTL_TABLE_KEYS, sizeof(*h->rates));
	if (h->table == NULL || h->counts == NULL || h->rates == NULL)
		HOTCTL_FAIL("out of memory");

	memset(&zc, 0, sizeof(zc));
	zc.hosts = cfg->zk_hosts;
	zc.session_timeout_ms = cfg->session_timeout_ms ?
				cfg->session_timeout_ms : 6000;
	zc.wake = hotctl_wake;
	zc.arg = h;
	zc.verbosity = cfg->verbosity;
	h->zk = zk_create(&zc);
	if (h->zk == NULL)
		HOTCTL_FAIL("cannot start a ZooKeeper client for '%s'",
			    cfg->zk_hosts);
	if (pthread_create(&h->thread, NULL, hotctl_main, h) != 0) {
		zk_destroy(&h->zk);
		HOTCTL_FAIL("cannot start the hot-key thread");
	}
	return h;
fail:
	hot_table_destroy(&h->table);
	free(h->counts);
	free(h->rates);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
	return NULL;
#undef HOTCTL_FAIL
}

void hotctl_stop(struct hotctl **hp)
{
	struct hotctl *h = hp != NULL ? *hp : NULL;

	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->thread, NULL);
	/* Closing joins the client's threads; a last event may still call
	 * hotctl_wake, so the lock outlives it. */
	zk_destroy(&h->zk);
	hot_table_destroy(&h->table);
	hot_set_free(&h->cur);
	hot_set_free(&h->stat_set);
	free(h->counts);
	free(h->rates);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
	*hp = NULL;
}

/* ------------------------------------------------------------------ */
/* stats hotkeys */

/* The key as is when it is printable ASCII without spaces, else
 * "b64:<base64>". out: at least 4 + BASE64_ENCODE_RAW_LENGTH(250) + 1. */
static void hotctl_key_text(char *out, const char *key, size_t nkey)
{
	size_t i;

	for (i = 0; i < nkey; i++)
		if (key[i] <= ' ' || key[i] > '~')
			break;
	if (i == nkey) {
		memcpy(out, key, nkey);
		out[nkey] = '\0';
		return;
	}
	memcpy(out, "b64:", 4);
	base64_encode_raw(out + 4, nkey, (const uint8_t *)key);
	out[4 + BASE64_ENCODE_RAW_LENGTH(nkey)] = '\0';
}

void hotctl_stats(struct hotctl *h, cluster_stat_fn emit, void *arg)
{
	/* key + rates + owner + every replica id with its comma */
	char name[32], val[4 + BASE64_ENCODE_RAW_LENGTH(CACHE_KEY_MAX) + 1 +
			  128 + MAP_ID_MAX * (HOT_REPLICAS_MAX + 1)];
	char key[4 + BASE64_ENCODE_RAW_LENGTH(CACHE_KEY_MAX) + 1];

	if (h == NULL || emit == NULL)
		return;
	pthread_mutex_lock(&h->lock);
#define HOTCTL_EMIT(n, ...) do { \
	snprintf(val, sizeof(val), __VA_ARGS__); \
	emit(arg, n, val); \
} while (0)
	HOTCTL_EMIT("hot_interval_ms", "%u", h->interval_ms);
	HOTCTL_EMIT("hot_received_per_s", "%.1f", h->stat_received);
	HOTCTL_EMIT("hot_executed_per_s", "%.1f", h->stat_executed);
	HOTCTL_EMIT("hot_set_version", "%" PRIu64,
		    h->stat_set ? h->stat_set->version : 0);
	HOTCTL_EMIT("hot_set_keys", "%u", h->stat_set ? h->stat_set->nkeys : 0);
	HOTCTL_EMIT("hot_reports_written", "%" PRIu64, h->reports_written);
	HOTCTL_EMIT("hot_sets_published", "%" PRIu64, h->sets_published);
	HOTCTL_EMIT("hot_zk_errors", "%" PRIu64, h->zk_errors);
#undef HOTCTL_EMIT
	for (unsigned i = 0; i < h->stat_ntop; i++) {
		const struct hot_rate *r = &h->stat_top[i];
		int k = hot_set_find(h->stat_set, r->key, r->nkey);
		size_t off;

		hotctl_key_text(key, r->key, r->nkey);
		off = (size_t)snprintf(val, sizeof(val),
				       "%s reads=%.1f writes=%.1f owner=%s replicas=",
				       key, r->reads, r->writes,
				       k >= 0 ? h->stat_set->keys[k].owner : "-");
		if (k < 0 || h->stat_set->keys[k].nreplicas == 0) {
			snprintf(val + off, sizeof(val) - off, "-");
		} else {
			const struct hot_set_key *sk = &h->stat_set->keys[k];

			for (unsigned j = 0; j < sk->nreplicas &&
			     off < sizeof(val); j++)
				off += (size_t)snprintf(val + off,
							sizeof(val) - off,
							"%s%s", j ? "," : "",
							sk->replicas[j]);
		}
		snprintf(name, sizeof(name), "hotkey:%u", i);
		emit(arg, name, val);
	}
	pthread_mutex_unlock(&h->lock);
}
