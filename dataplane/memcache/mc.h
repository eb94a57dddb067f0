/*
 * dataplane/memcache/mc.h - the memcached protocols (text, meta, binary, and
 * the UDP frame), independent of any transport.
 *
 * A transport (kernel sockets, the DPDK stack, a node-to-node link, a unit
 * test) owns the bytes; this module turns them into cache operations and
 * composes the replies:
 *
 *   server  - one per process: the cache, settings, server-wide counters.
 *   worker  - one per serving thread: its cache_thread and its counters.
 *   session - one per TCP connection: parser state between calls.
 *
 * Flow control. mc_session_feed() consumes what it can of the input and
 * appends replies to an output buffer. It stops early, returning
 * MC_FEED_PAUSE, once the output buffer holds out_high_water bytes or more:
 * the transport sends some output and calls again with the unconsumed input.
 * So one connection's output stays below out_high_water + one value + one
 * line, however large a multi-get it sent; a multi-get is resumed key by key.
 *
 * Item pointers never outlive a call: values are copied into the output
 * buffer, so a transport may report a quiescent state between calls.
 *
 * Cluster (mc_worker_set_cluster): a request for a key another node owns is
 * sent there and the session waits (MC_FEED_WAIT) until the answer comes
 * back; see mc_session_set_waker.
 */
#ifndef DPCACHE_MC_H
#define DPCACHE_MC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache/cache.h"

#define MC_MAX_WORKERS 64

/* ---- output buffer ------------------------------------------------------ */

/* A growable byte buffer; the owner frees 'data' with mc_buf_deinit. */
struct mc_buf {
	char *data;
	size_t len;
	size_t cap;
};

void mc_buf_init(struct mc_buf *b);
void mc_buf_deinit(struct mc_buf *b);
/* Makes room for 'extra' more bytes; returns a pointer to data+len, or NULL
 * on allocation failure. */
char *mc_buf_reserve(struct mc_buf *b, size_t extra);
/* Appends; returns 0 or -ENOMEM. */
int mc_buf_append(struct mc_buf *b, const void *p, size_t n);
/* Drops the first n bytes (after a partial send). */
void mc_buf_consume(struct mc_buf *b, size_t n);

/* ---- server-wide state -------------------------------------------------- */

/* A counter source the transport adds to 'stats' output (e.g. connections,
 * dataplane counters). Called on the thread that handles 'stats'. */
typedef void (*mc_stat_fn)(void *arg, const char *name, const char *value);
typedef int (*mc_stats_group_fn)(void *arg, const char *group,
				 mc_stat_fn emit, void *emit_arg);

struct mc_server_config {
	struct cache *cache;
	size_t item_size_max;        /* -I */
	size_t out_high_water;       /* per-connection output bound; 0 = 64 KiB */
	bool shutdown_enabled;       /* memcached -A */
	bool udp_enabled;
	int verbosity;               /* -v count */
	unsigned max_conns;          /* -c, reported by stats */
	unsigned num_threads;        /* -t, reported by stats */
	/* Optional: the transport's stats. Called with group NULL for the
	 * general 'stats' (append connection counters, etc.), and with any group
	 * name the protocol does not know itself ("settings" entries are
	 * appended after the protocol's own). Returns 0, or -ENOENT for an
	 * unknown group. */
	mc_stats_group_fn transport_stats;
	void *transport_arg;
	/* Optional: called when a client sends 'shutdown' and it is enabled. */
	void (*on_shutdown)(void *arg);
};

struct mc_server;
struct mc_worker;
struct mc_session;

/* Copies cfg. Returns NULL on bad config or no memory. Any thread. */
struct mc_server *mc_server_create(const struct mc_server_config *cfg);
/* All workers must be destroyed first. Accepts NULL; sets *s to NULL. */
void mc_server_destroy(struct mc_server **s);

/* Server-wide connection counters, kept by the transport (relaxed atomics
 * inside). */
void mc_server_conn_opened(struct mc_server *s);
void mc_server_conn_closed(struct mc_server *s);
void mc_server_conn_rejected(struct mc_server *s);   /* over -c */

/* Called on the serving thread: attaches it to the cache (urcu-qsbr reader)
 * and registers the worker's counters with the server. NULL on failure. */
struct mc_worker *mc_worker_create(struct mc_server *s);
/* On the same thread. Accepts NULL; sets *w to NULL. */
void mc_worker_destroy(struct mc_worker **w);
/* The worker's cache context, for quiescent/offline calls. */
struct cache_thread *mc_worker_cache_thread(struct mc_worker *w);

/* ---- TCP sessions ------------------------------------------------------- */

/* A new connection's protocol state; the protocol (text or binary) is
 * detected from the first byte. NULL on no memory. Worker's thread. */
struct mc_session *mc_session_create(struct mc_worker *w);
/* Frees any half-received item. Accepts NULL; sets *s to NULL. */
void mc_session_destroy(struct mc_session **s);

#define MC_FEED_MORE   0  /* consumed all it could; call again with more input */
#define MC_FEED_PAUSE  1  /* output reached the high-water mark: drain, call again */
#define MC_FEED_CLOSE  2  /* close after sending 'out' (quit, fatal protocol error) */
#define MC_FEED_WAIT   3  /* a request is out at another node (cluster): send
			     'out', and do not feed again until the session's
			     waker has run */

/*
 * Parses and executes as many complete requests as 'in' holds, appending
 * replies to 'out'. Sets *consumed to the bytes it used; the transport keeps
 * in[*consumed..len) and offers it again with more bytes. A half-arrived
 * request is not an error. Returns MC_FEED_*.
 * Worker's thread, online.
 */
int mc_session_feed(struct mc_session *s, const char *in, size_t len,
		    size_t *consumed, struct mc_buf *out);

/* ---- cluster ------------------------------------------------------------ */

struct cluster_worker;

/*
 * Makes the worker one node of a cluster: every keyed request is routed
 * (replication/cluster.h) and may be forwarded to its owner or pull its key
 * first. NULL (the default) = single node: nothing changes. Worker's
 * thread, before its sessions are fed.
 */
void mc_worker_set_cluster(struct mc_worker *w, struct cluster_worker *cw);

/*
 * The transport's callback for a session whose feed returned MC_FEED_WAIT.
 * When the forwarded request's answer arrives (inside fwd_poll(), on the
 * worker's thread) the session stores the translated reply and calls
 * wake(arg); the transport then calls mc_session_feed() again with its
 * unconsumed input (possibly none), which first appends that reply to 'out'
 * and then goes on parsing. Feeding a session that still waits returns
 * MC_FEED_WAIT with nothing consumed. wake must not feed or destroy the
 * session itself (it runs inside the forwarder); it should mark the session
 * ready. mc_session_destroy() cancels a request still out (fwd_cancel), so
 * the waker never runs for a destroyed session.
 */
void mc_session_set_waker(struct mc_session *s, void (*wake)(void *arg),
			  void *arg);

/* ---- UDP ---------------------------------------------------------------- */

#define MC_UDP_HEADER_SIZE 8
#define MC_UDP_MAX_PAYLOAD 1400   /* bytes per datagram, header included */

/*
 * Handles one request datagram (8-byte frame header, then one complete text
 * request, or binary). Appends the reply datagrams to 'out' back to back:
 * every datagram but the last is exactly MC_UDP_MAX_PAYLOAD bytes, each with
 * its frame header (request id echoed, sequence number, total count).
 * Returns the number of datagrams (0: nothing to send, e.g. a malformed
 * header, which is counted and dropped). Worker's thread, online.
 */
unsigned mc_udp_handle(struct mc_worker *w, const char *dgram, size_t len,
		       struct mc_buf *out);

/* ---- stats -------------------------------------------------------------- */

/* The lines of 'stats [group]' through 'emit', for any front end (text,
 * binary, admin endpoints). group NULL = general. Returns 0, or -ENOENT for
 * an unknown group. Worker's thread. */
int mc_stats_emit(struct mc_worker *w, const char *group, mc_stat_fn emit,
		  void *emit_arg);
/* The same from a thread that is no worker (the admin endpoint). */
int mc_server_stats_emit(struct mc_server *s, const char *group,
			 mc_stat_fn emit, void *emit_arg);

#endif /* DPCACHE_MC_H */
