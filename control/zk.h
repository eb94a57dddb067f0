/*
 * control/zk.h - a thin wrapper over the multi-threaded ZooKeeper C client
 * (libzookeeper_mt) for the agent.
 *
 * One handle = one ZooKeeper session. Every watch and session event goes to
 * one callback, which must only wake the owner (it runs on the client's
 * completion thread and must not call back into ZooKeeper). All other calls
 * are synchronous and block on a round trip: call them from one thread (the
 * agent thread), never from a serving thread.
 *
 * Errors are negative errno values, so callers need no ZooKeeper codes:
 *   -ENOENT no node, -EEXIST node exists, -ESTALE version mismatch
 *   (ZBADVERSION), -ENOTEMPTY node has children, -ENOTCONN no usable session
 *   (connection loss, timeout, expired, closing), -EINVAL bad arguments,
 *   -ENOMEM, -EIO anything else.
 */
#ifndef DPCACHE_CONTROL_ZK_H
#define DPCACHE_CONTROL_ZK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct zk_config {
	const char *hosts;           /* "host:port,host:port[/chroot]" */
	unsigned session_timeout_ms;
	/* Called on the client's thread for every session or watch event.
	 * Must not block or call zk_* functions. */
	void (*wake)(void *arg);
	void *arg;
	int verbosity;               /* 3: the client's own log on stderr */
};

/* What zk_state() reports, simplified. */
enum zk_session_state {
	ZK_CONNECTING = 0,   /* no session yet, or between servers */
	ZK_CONNECTED,
	ZK_EXPIRED,          /* the session is dead: zk_reopen() */
	ZK_AUTH_FAILED,      /* treated like expired */
};

struct zk_stat {
	int32_t version;             /* data version, for zk_set */
	int32_t cversion;
	int64_t mtime_ms;            /* server wall clock */
	int64_t ephemeral_owner;     /* session id, 0 = persistent */
	int32_t num_children;
};

struct zk;

/* Starts connecting in the background; NULL on a bad host list or no
 * memory. */
struct zk *zk_create(const struct zk_config *cfg);
/* Closes the session (its ephemeral znodes go at once). Accepts NULL; sets
 * *z to NULL. */
void zk_destroy(struct zk **z);
/* Closes the current handle and opens a new session (after expiry). 0 or
 * -ENOMEM/-EINVAL. */
int zk_reopen(struct zk *z);

enum zk_session_state zk_state(struct zk *z);
/* "connected", "connecting", "expired", "auth_failed". */
const char *zk_state_name(enum zk_session_state s);
/* Session id of a connected session, else 0. */
uint64_t zk_session_id(struct zk *z);
/* How many times a session got connected (first connect, reconnects after
 * a connection loss, new sessions after zk_reopen). Any thread. */
uint64_t zk_connects(struct zk *z);

/* flags: ZK_EPHEMERAL, ZK_SEQUENCE. The created path (with the sequence
 * suffix) goes to created when it is not NULL. */
#define ZK_EPHEMERAL 1
#define ZK_SEQUENCE  2
int zk_create_node(struct zk *z, const char *path, const void *data,
		   size_t len, int flags, char *created, size_t createdlen);
/* Creates every missing ancestor of path (persistent, empty); existing ones
 * are fine. 0 or -errno. */
int zk_create_parents(struct zk *z, const char *path);
/* Creates path (and missing parents), or sets its data if it exists
 * (any version). */
int zk_put(struct zk *z, const char *path, const void *data, size_t len);

/* Reads path into a malloc'd, NUL-terminated buffer (*data; *len excludes
 * the NUL; the caller frees). watch: a data watch that wakes the owner on
 * change or deletion. st may be NULL. */
int zk_get(struct zk *z, const char *path, bool watch, char **data,
	   size_t *len, struct zk_stat *st);
/* Compare-and-set: version -1 = any. -ESTALE when the version differs. */
int zk_set(struct zk *z, const char *path, const void *data, size_t len,
	   int version, struct zk_stat *st);
/* 0 if path exists, -ENOENT if not; watch: wake when it is created, changed
 * or deleted. */
int zk_exists(struct zk *z, const char *path, bool watch, struct zk_stat *st);
/* version -1 = any. */
int zk_delete(struct zk *z, const char *path, int version);

/* The children's names (not paths), sorted; a malloc'd array of malloc'd
 * strings, freed with zk_free_children(). watch: wake on a child change. */
struct zk_children {
	unsigned count;
	char **names;
};
int zk_get_children(struct zk *z, const char *path, bool watch,
		    struct zk_children *out);
void zk_free_children(struct zk_children *c);

#endif /* DPCACHE_CONTROL_ZK_H */
