/*
 * control/zk.c - the ZooKeeper session wrapper (see zk.h).
 *
 * Design note. The multi-threaded client runs an I/O thread and a
 * completion thread of its own; its synchronous calls block the caller until
 * the server answers (or the connection is declared lost). We use only the
 * synchronous calls, from the agent thread, and one global watcher whose
 * only job is to wake that thread: the agent re-reads whatever it cares
 * about, re-arming the watches as it goes (the client keeps one watch per
 * path and kind, so re-arming an armed watch costs nothing extra).
 *
 * A session that expires is gone for good: its handle can never reconnect.
 * zk_reopen() closes it and starts a new one; the agent then registers
 * again. Closing a handle joins the client's threads, so it is done only on
 * the agent thread, never from the watcher.
 *
 * The client logs through a per-handle callback; messages go to stderr only
 * at verbosity >= 3 (the client warns on every failed connect, which would
 * flood test output while a server is down).
 */
#include "control/zk.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The synchronous API is declared only for the multi-threaded client. */
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

struct zk {
	zhandle_t *zh;
	char *hosts;
	unsigned session_timeout_ms;
	void (*wake)(void *arg);
	void *arg;
	uint64_t connects;             /* atomic: session events "connected" */
};

/* The client's log callback has no context, so the level is per process:
 * the highest verbosity any handle asked for. */
static int zk_log_verbosity;
static pthread_once_t zk_once = PTHREAD_ONCE_INIT;

static void zk_set_level_once(void)
{
	zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
}

static void zk_client_log(const char *message)
{
	if (__atomic_load_n(&zk_log_verbosity, __ATOMIC_RELAXED) >= 3)
		fprintf(stderr, "dpcached: zk: client: %s\n", message);
}

static void zk_watcher(zhandle_t *zh, int type, int state, const char *path,
		       void *ctx)
{
	struct zk *z = ctx;

	(void)zh;
	(void)path;
	if (!z)
		return;
	if (type == ZOO_SESSION_EVENT && state == ZOO_CONNECTED_STATE)
		__atomic_add_fetch(&z->connects, 1, __ATOMIC_RELAXED);
	if (z->wake)
		z->wake(z->arg);
}

static int zk_errno(int rc)
{
	switch (rc) {
	case ZOK:
		return 0;
	case ZNONODE:
		return -ENOENT;
	case ZNODEEXISTS:
		return -EEXIST;
	case ZBADVERSION:
		return -ESTALE;
	case ZNOTEMPTY:
		return -ENOTEMPTY;
	case ZCONNECTIONLOSS:
	case ZOPERATIONTIMEOUT:
	case ZSESSIONEXPIRED:
	case ZSESSIONMOVED:
	case ZINVALIDSTATE:
	case ZCLOSING:
		return -ENOTCONN;
	case ZBADARGUMENTS:
	case ZNOCHILDRENFOREPHEMERALS:
		return -EINVAL;
	case ZSYSTEMERROR:
		return errno ? -errno : -EIO;
	default:
		return -EIO;
	}
}

static int zk_open(struct zk *z)
{
	/* A fresh session: clientid NULL. */
	z->zh = zookeeper_init2(z->hosts, zk_watcher,
				(int)z->session_timeout_ms, NULL, z, 0,
				zk_client_log);
	if (!z->zh)
		return errno == ENOMEM ? -ENOMEM : -EINVAL;
	return 0;
}

struct zk *zk_create(const struct zk_config *cfg)
{
	struct zk *z;
	int v;

	if (!cfg || !cfg->hosts || !cfg->hosts[0])
		return NULL;
	pthread_once(&zk_once, zk_set_level_once);
	v = __atomic_load_n(&zk_log_verbosity, __ATOMIC_RELAXED);
	if (cfg->verbosity > v)
		__atomic_store_n(&zk_log_verbosity, cfg->verbosity,
				 __ATOMIC_RELAXED);

	z = calloc(1, sizeof(*z));
	if (!z)
		return NULL;
	z->hosts = strdup(cfg->hosts);
	if (!z->hosts)
		goto fail;
	z->session_timeout_ms = cfg->session_timeout_ms ?
				cfg->session_timeout_ms : 6000;
	z->wake = cfg->wake;
	z->arg = cfg->arg;
	if (zk_open(z) < 0)
		goto fail;
	return z;
fail:
	free(z->hosts);
	free(z);
	return NULL;
}

void zk_destroy(struct zk **zp)
{
	struct zk *z = zp ? *zp : NULL;

	if (!z)
		return;
	if (z->zh)
		zookeeper_close(z->zh);
	free(z->hosts);
	free(z);
	*zp = NULL;
}

int zk_reopen(struct zk *z)
{
	if (z->zh) {
		zookeeper_close(z->zh);
		z->zh = NULL;
	}
	return zk_open(z);
}

enum zk_session_state zk_state(struct zk *z)
{
	int s;

	if (!z->zh)
		return ZK_EXPIRED;
	s = zoo_state(z->zh);
	if (s == ZOO_CONNECTED_STATE)
		return ZK_CONNECTED;
	if (s == ZOO_EXPIRED_SESSION_STATE)
		return ZK_EXPIRED;
	if (s == ZOO_AUTH_FAILED_STATE)
		return ZK_AUTH_FAILED;
	/* Connecting, associating, read-only (we never ask for it), not yet
	 * started: wait for the client. */
	return ZK_CONNECTING;
}

const char *zk_state_name(enum zk_session_state s)
{
	switch (s) {
	case ZK_CONNECTED:
		return "connected";
	case ZK_EXPIRED:
		return "expired";
	case ZK_AUTH_FAILED:
		return "auth_failed";
	case ZK_CONNECTING:
	default:
		return "connecting";
	}
}

uint64_t zk_session_id(struct zk *z)
{
	const clientid_t *id;

	if (!z->zh || zoo_state(z->zh) != ZOO_CONNECTED_STATE)
		return 0;
	id = zoo_client_id(z->zh);
	return id ? (uint64_t)id->client_id : 0;
}

uint64_t zk_connects(struct zk *z)
{
	return __atomic_load_n(&z->connects, __ATOMIC_RELAXED);
}

static void zk_copy_stat(struct zk_stat *st, const struct Stat *s)
{
	if (!st)
		return;
	st->version = s->version;
	st->cversion = s->cversion;
	st->mtime_ms = s->mtime;
	st->ephemeral_owner = s->ephemeralOwner;
	st->num_children = s->numChildren;
}

int zk_create_node(struct zk *z, const char *path, const void *data,
		   size_t len, int flags, char *created, size_t createdlen)
{
	int zflags = 0;

	if (!z->zh || !path || path[0] != '/' || len > INT32_MAX)
		return -EINVAL;
	if (flags & ZK_EPHEMERAL)
		zflags |= ZOO_EPHEMERAL;
	if (flags & ZK_SEQUENCE)
		zflags |= ZOO_SEQUENCE;
	return zk_errno(zoo_create(z->zh, path, data, data ? (int)len : -1,
				   &ZOO_OPEN_ACL_UNSAFE, zflags, created,
				   created ? (int)createdlen : 0));
}

int zk_create_parents(struct zk *z, const char *path)
{
	char buf[1024];
	size_t n = strlen(path);
	int rc;

	if (path[0] != '/' || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, path, n + 1);
	/* Every prefix ending just before a '/' (after the leading one). */
	for (size_t i = 1; i < n; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		rc = zk_create_node(z, buf, NULL, 0, 0, NULL, 0);
		buf[i] = '/';
		if (rc < 0 && rc != -EEXIST)
			return rc;
	}
	return 0;
}

int zk_put(struct zk *z, const char *path, const void *data, size_t len)
{
	int rc;

	rc = zk_set(z, path, data, len, -1, NULL);
	if (rc != -ENOENT)
		return rc;
	rc = zk_create_node(z, path, data, len, 0, NULL, 0);
	if (rc == -ENOENT) {
		rc = zk_create_parents(z, path);
		if (rc < 0)
			return rc;
		rc = zk_create_node(z, path, data, len, 0, NULL, 0);
	}
	/* Lost a race with another creator: ours is the newer value. */
	if (rc == -EEXIST)
		rc = zk_set(z, path, data, len, -1, NULL);
	return rc;
}

int zk_get(struct zk *z, const char *path, bool watch, char **data,
	   size_t *len, struct zk_stat *st)
{
	int cap = 4096, blen, rc;
	struct Stat s;
	char *buf;

	*data = NULL;
	if (len)
		*len = 0;
	if (!z->zh)
		return -ENOTCONN;
	for (int tries = 0; tries < 4; tries++) {
		buf = malloc((size_t)cap + 1);
		if (!buf)
			return -ENOMEM;
		blen = cap;
		rc = zoo_get(z->zh, path, watch, buf, &blen, &s);
		if (rc != ZOK) {
			free(buf);
			return zk_errno(rc);
		}
		/* Fitted (a NULL value reads as -1). Otherwise grow to the size
		 * the stat reports and read again. */
		if (s.dataLength <= cap) {
			if (blen < 0)
				blen = 0;
			buf[blen] = '\0';
			*data = buf;
			if (len)
				*len = (size_t)blen;
			zk_copy_stat(st, &s);
			return 0;
		}
		free(buf);
		cap = s.dataLength;
	}
	return -EIO;
}

int zk_set(struct zk *z, const char *path, const void *data, size_t len,
	   int version, struct zk_stat *st)
{
	struct Stat s;
	int rc;

	if (!z->zh || len > INT32_MAX)
		return -EINVAL;
	rc = zoo_set2(z->zh, path, data, data ? (int)len : -1, version, &s);
	if (rc == ZOK)
		zk_copy_stat(st, &s);
	return zk_errno(rc);
}

int zk_exists(struct zk *z, const char *path, bool watch, struct zk_stat *st)
{
	struct Stat s;
	int rc;

	if (!z->zh)
		return -ENOTCONN;
	rc = zoo_exists(z->zh, path, watch, &s);
	if (rc == ZOK)
		zk_copy_stat(st, &s);
	return zk_errno(rc);
}

int zk_delete(struct zk *z, const char *path, int version)
{
	if (!z->zh)
		return -ENOTCONN;
	return zk_errno(zoo_delete(z->zh, path, version));
}

static int zk_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int zk_get_children(struct zk *z, const char *path, bool watch,
		    struct zk_children *out)
{
	struct String_vector v = { 0, NULL };
	int rc;

	out->count = 0;
	out->names = NULL;
	if (!z->zh)
		return -ENOTCONN;
	rc = zoo_get_children(z->zh, path, watch, &v);
	if (rc != ZOK)
		return zk_errno(rc);
	if (v.count > 0) {
		/* Take over the client's strings; free only its array. */
		out->names = calloc((size_t)v.count, sizeof(char *));
		if (!out->names) {
			deallocate_String_vector(&v);
			return -ENOMEM;
		}
		for (int i = 0; i < v.count; i++) {
			out->names[i] = v.data[i];
			v.data[i] = NULL;
		}
		out->count = (unsigned)v.count;
		qsort(out->names, out->count, sizeof(char *), zk_cmp_names);
	}
	free(v.data);
	return 0;
}

void zk_free_children(struct zk_children *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->count; i++)
		free(c->names[i]);
	free(c->names);
	c->names = NULL;
	c->count = 0;
}
