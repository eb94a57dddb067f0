/*
 * replication/forward.h - a worker's client side of node-to-node links: one
 * persistent, pipelined TCP connection per peer, speaking the memcached meta
 * protocol.
 *
 * One forwarder per serving thread (kernel epoll loop or DPDK polling lcore);
 * it is used only by that thread, so nothing in it is locked. Its sockets are
 * ordinary non-blocking kernel sockets grouped in an epoll set of their own:
 * the kernel backend adds fwd_fd() to its epoll; a polling lcore calls
 * fwd_poll() when fwd_busy() (one epoll_wait(0) per iteration, only while
 * something is in flight).
 *
 * Every request gets exactly one response (the caller never sends q), so
 * responses are matched to requests in FIFO order per connection. A request
 * is completed exactly once through its done callback, from fwd_poll() on the
 * owning thread, never from inside fwd_submit():
 *   err == 0          - 'reply' holds one complete meta response (a line, or
 *                       "VA <n> ...\r\n" + n bytes + "\r\n"), valid only
 *                       during the call;
 *   err == -ETIMEDOUT - no response within the timeout (the connection is
 *                       then closed: later responses could not be matched);
 *   err == -ECONNREFUSED / -ECONNRESET / -EHOSTUNREACH / -EPIPE - peer down;
 *   err == -EPROTO    - the peer sent something that is not a meta response
 *                       (connection closed, everything on it failed).
 * Connections reconnect on demand with a backoff (a peer that refused is not
 * retried for 100 ms .. 2 s), so a dead owner fails requests fast.
 */
#ifndef DPCACHE_REPLICATION_FORWARD_H
#define DPCACHE_REPLICATION_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct fwd_config {
	/* Sent first on every new connection, e.g. "dpc_peer n1 fwd\r\n"; its
	 * one-line reply is read and dropped (a reply other than HD fails the
	 * connection with -EPROTO). NULL = none. Copied. */
	const char *hello;
	unsigned max_pending;     /* requests queued or in flight per peer; 0 = 4096 */
	unsigned timeout_ms;      /* per request; 0 = 1000 */
	unsigned connect_timeout_ms;  /* 0 = 500 */
};

struct fwd;
struct fwd_req;

typedef void (*fwd_done_fn)(void *arg, int err, const char *reply,
			    size_t len);

struct fwd *fwd_create(const struct fwd_config *cfg);
/* Closes every connection; pending requests are dropped without callbacks.
 * Accepts NULL; sets *f to NULL. */
void fwd_destroy(struct fwd **f);

/*
 * Queues one request (complete meta command bytes, copied) for the peer at
 * "host:port". Returns 0 and, if 'handle' is not NULL, a handle valid until
 * 'done' runs or fwd_cancel(); -ENOBUFS when that peer already has
 * max_pending requests (no callback then), -EINVAL on a bad address, -ENOMEM.
 */
int fwd_submit(struct fwd *f, const char *peer_addr, const void *req,
	       size_t len, fwd_done_fn done, void *arg,
	       struct fwd_req **handle);

/* The request's callback will not run (its response is still read and
 * dropped when it comes). For a session closing while it waits. */
void fwd_cancel(struct fwd_req *h);

/* An epoll fd that is readable when fwd_poll() has work. */
int fwd_fd(const struct fwd *f);
/* Anything queued, in flight or connecting. */
bool fwd_busy(const struct fwd *f);
/* Does all pending I/O without blocking, completes requests, fails the
 * timed-out ones. now_ms: a monotonic clock in milliseconds. */
void fwd_poll(struct fwd *f, uint64_t now_ms);
/* Milliseconds until the earliest deadline; -1 when nothing is pending. */
int fwd_timeout_ms(const struct fwd *f, uint64_t now_ms);

/*
 * Length of the first complete meta response in buf: > 0 its length (line,
 * or VA line + data + "\r\n"), 0 if incomplete, -1 if malformed (a line
 * over 8 KiB, a VA without a valid length, data not followed by "\r\n").
 * Shared with the migration stream.
 */
ssize_t fwd_reply_len(const char *buf, size_t len);

/* Per-peer counters, read by any thread (relaxed atomics). */
struct fwd_peer_stats {
	uint64_t requests;     /* submitted */
	uint64_t replies;      /* completed with err == 0 */
	uint64_t errors;       /* completed with err != 0, timeouts included */
	uint64_t timeouts;
	uint64_t rejected;     /* -ENOBUFS at submit */
	uint64_t connects;     /* connections opened */
	uint64_t pending;      /* now */
};
typedef void (*fwd_peer_fn)(void *arg, const char *peer_addr,
			    const struct fwd_peer_stats *st);
/* Calls fn once per peer this forwarder has talked to. May be called from
 * another thread than the owner (the peer table only grows, under a lock
 * that fwd_submit takes only when it meets a new peer). */
void fwd_for_each_peer(struct fwd *f, fwd_peer_fn fn, void *arg);

#endif /* DPCACHE_REPLICATION_FORWARD_H */
