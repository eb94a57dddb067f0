/*
 * dataplane/net/serve.c - memcached sessions on top of one polling lcore's
 * stack: the struct net_app callbacks of the DPDK backend.
 *
 * Design note.
 *
 * One dp_serve per polling lcore, created on that lcore (its mc_worker
 * registers the urcu-qsbr reader there), touched only there. A connection
 * (struct dp_conn) lives from tcp_app.accepted() to tcp_app.closed(); the
 * stack calls us from net_stack_input and net_stack_tick, and we call the
 * tcp_* functions back from inside those callbacks (tcp.h allows it).
 *
 * Input. The protocol reads straight from the stack's receive buffer
 * (tcp_recv_peek), and what it consumed is released (tcp_recv_consume), so
 * the common case copies nothing. The receive buffer is contiguous but
 * bounded by the receive window (tcp_config.rcv_buf), and the protocol
 * keeps nothing of a half-arrived request line: a line longer than the
 * window could never complete in place. So the unconsumed tail of a feed is
 * moved into the connection's own buffer 'in' (reopening the window), and
 * later bytes are appended to it until the request completes. 'in' is
 * bounded by IN_LINE_MAX (the text protocol's longest multi-get line),
 * beyond which the connection is closed.
 *
 * Backpressure. Replies go into 'out' and from there into the stack's send
 * buffer (tcp_send copies what fits). While any of 'out' is left, or the
 * protocol paused (MC_FEED_PAUSE: 'out' reached out_high_water), no more
 * input is fed; writable() resumes. So a client that stops reading costs at
 * most the stack's send buffer plus out_high_water plus one value, and its
 * unread requests stay in its receive window, which closes: the core is
 * never wedged and memory never grows without bound.
 *
 * Fairness. One service call does at most CONN_ROUNDS feed rounds; a
 * connection with work left (its send buffer took everything and input is
 * still pending) goes on the ready list, served again by dp_serve_poll()
 * in the same polling iteration, after the others.
 *
 * Cluster. A request for a key another node owns goes out on this lcore's
 * forwarder (kernel sockets, replication/forward.h); its session waits
 * (MC_FEED_WAIT) and is not fed until the answer wakes it. dp_serve_poll
 * polls the forwarder, with one epoll_wait(0), only while it has requests
 * out.
 *
 * -c is enforced across all lcores with one relaxed atomic counter; a
 * connection over the limit gets memcached's "ERROR Too many open
 * connections" and an orderly close, like the kernel backend. A session
 * ends (and stops counting) when we close, as the kernel backend's close(fd)
 * does, not when TCP's closing handshake completes.
 */
#include "dataplane/net/dpdk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "cache/cache.h"
#include "dataplane/net/stack.h"
#include "replication/cluster.h"
#include "dataplane/net/tcp.h"

/* A text multi-get line must arrive whole; the text side bounds it at
 * 2 MiB (as the kernel backend's IN_LINE_MAX). */
#define IN_LINE_MAX   (2 * 1024 * 1024 + 4096)
#define OUT_KEEP_MAX  (256 * 1024)  /* a bigger drained buffer is freed */
#define CONN_ROUNDS   8

static const char too_many_conns[] = "ERROR Too many open connections\r\n";

struct dp_conn {
	struct dp_serve *sv;
	struct tcp_conn *tc;
	struct mc_session *sess;      /* NULL: refused over -c, closing */
	struct mc_buf out;            /* replies; out.data[out_sent..len) unsent */
	size_t out_sent;
	struct mc_buf in;             /* a request split across receives */
	bool need_feed;               /* the protocol paused with input left */
	bool closing;                 /* tcp_close once 'out' is sent */
	bool close_sent;              /* tcp_close done; waiting for closed() */
	bool in_ready;
	bool waiting;                 /* a request is out at another node */
	bool dead;                    /* closed() during dp_serve_poll: freed there */
	struct dp_conn *ready_next;
	struct dp_conn *prev, *next;  /* sv->conns */
};

struct dp_serve {
	struct dp_serve_shared *sh;
	struct dp_serve_counters *ctr;
	struct mc_worker *mw;
	struct net_stack *st;
	struct dp_conn *conns;
	struct dp_conn *ready;
	bool in_poll;                 /* dp_serve_poll is walking a batch */
	struct mc_buf udp_out;
	struct cluster_worker *cw;    /* cluster node, else NULL */
};

/* Single writer (this lcore); other lcores read for stats. */
#define CTR_INC(sv, name) \
	__atomic_store_n(&(sv)->ctr->name, (sv)->ctr->name + 1, __ATOMIC_RELAXED)

static void conn_service(struct dp_serve *sv, struct dp_conn *c);

static void ready_add(struct dp_serve *sv, struct dp_conn *c)
{
	if (c->in_ready)
		return;
	c->in_ready = true;
	c->ready_next = sv->ready;
	sv->ready = c;
}

static void ready_remove(struct dp_serve *sv, struct dp_conn *c)
{
	struct dp_conn **pp;

	if (!c->in_ready)
		return;
	for (pp = &sv->ready; *pp != NULL; pp = &(*pp)->ready_next) {
		if (*pp == c) {
			*pp = c->ready_next;
			break;
		}
	}
	c->in_ready = false;
	c->ready_next = NULL;
}

static void conn_free(struct dp_serve *sv, struct dp_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		sv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	mc_session_destroy(&c->sess);
	mc_buf_deinit(&c->out);
	mc_buf_deinit(&c->in);
	free(c);
}

/*
 * The session ends when we close (or the stack reports the connection
 * gone), not when TCP's closing handshake completes: like the kernel
 * backend's close(fd), so curr_connections and -c do not count
 * connections in LAST-ACK or FIN-WAIT, which hold no session.
 */
static void conn_release(struct dp_serve *sv, struct dp_conn *c)
{
	if (c->sess == NULL)
		return;     /* refused over -c, or already released */
	mc_session_destroy(&c->sess);
	mc_buf_deinit(&c->in);
	__atomic_fetch_sub(&sv->sh->nconns, 1, __ATOMIC_RELAXED);
	mc_server_conn_closed(sv->sh->server);
	CTR_INC(sv, conns_closed);
}

/* Hands 'out' to the stack. Returns true when all of it was taken. */
static bool conn_push(struct dp_conn *c)
{
	if (c->out_sent < c->out.len) {
		c->out_sent += tcp_send(c->tc, c->out.data + c->out_sent,
					c->out.len - c->out_sent);
		if (c->out_sent < c->out.len)
			return false;   /* send buffer full: writable() resumes */
	}
	/* Emptied in one step, not moved down after every partial send. */
	c->out_sent = 0;
	mc_buf_consume(&c->out, c->out.len);
	if (c->out.cap > OUT_KEEP_MAX) {
		mc_buf_deinit(&c->out);
		mc_buf_init(&c->out);
	}
	return true;
}

/* After our FIN, whatever the peer still sends is read and dropped, so its
 * data cannot hold the connection open with a closed window. */
static void conn_discard_input(struct dp_conn *c)
{
	const uint8_t *data;
	size_t n;

	while ((n = tcp_recv_peek(c->tc, &data)) > 0)
		tcp_recv_consume(c->tc, n);
	c->in.len = 0;
}

/*
 * One mc_session_feed over the new bytes (and any kept partial request).
 * Sets need_feed/closing from the result. Returns 0, or -1 when the feed
 * made no progress and must wait for more bytes.
 */
static int conn_feed(struct dp_serve *sv, struct dp_conn *c,
		     const uint8_t *data, size_t avail)
{
	const char *input;
	size_t len, consumed = 0;
	bool own = c->in.len > 0;
	int rc;

	if (own) {
		size_t room = IN_LINE_MAX - c->in.len;
		size_t take = avail < room ? avail : room;

		if (take > 0) {
			if (mc_buf_append(&c->in, data, take) != 0) {
				c->closing = true;
				return -1;
			}
			tcp_recv_consume(c->tc, take);
		}
		input = c->in.data;
		len = c->in.len;
	} else {
		input = (const char *)data;
		len = avail;
	}
	rc = mc_session_feed(c->sess, input, len, &consumed, &c->out);
	if (consumed > len)          /* never trust a count blindly */
		consumed = len;
	if (own)
		mc_buf_consume(&c->in, consumed);
	else
		tcp_recv_consume(c->tc, consumed);

	switch (rc) {
	case MC_FEED_PAUSE:
		c->need_feed = true;
		return 0;
	case MC_FEED_MORE:
		c->need_feed = false;
		if (own) {
			if (c->in.len >= IN_LINE_MAX) {
				CTR_INC(sv, conn_input_overflow);
				c->closing = true;
			}
			return -1;
		}
		if (consumed < len) {
			/* A partial request: move it to 'in', so a line
			 * longer than the receive window can still arrive,
			 * and look again, more may be there. */
			if (mc_buf_append(&c->in, input + consumed,
					  len - consumed) != 0) {
				c->closing = true;
				return -1;
			}
			tcp_recv_consume(c->tc, len - consumed);
			return 0;
		}
		return 0;
	case MC_FEED_WAIT:
		/* Another node has the request; conn_wake() resumes. */
		c->waiting = true;
		c->need_feed = false;
		return 0;
	case MC_FEED_CLOSE:
	default:
		c->need_feed = false;
		c->closing = true;
		return 0;
	}
}

/* The session's waker, from fwd_poll() on this lcore: the answer of a
 * forwarded request is in. */
static void conn_wake(void *arg)
{
	struct dp_conn *c = arg;

	c->waiting = false;
	c->need_feed = true;
	ready_add(c->sv, c);
}

/*
 * Serves one connection for at most CONN_ROUNDS rounds: push output, close
 * when asked, feed input only with the output all handed to the stack.
 */
static void conn_service(struct dp_serve *sv, struct dp_conn *c)
{
	if (c->close_sent) {
		conn_discard_input(c);
		return;
	}
	for (int round = 0; round < CONN_ROUNDS; round++) {
		const uint8_t *data;
		size_t avail;

		if (!conn_push(c))
			return;
		if (c->closing) {
			tcp_close(c->tc);
			c->close_sent = true;
			conn_discard_input(c);
			conn_release(sv, c);
			return;
		}
		if (c->waiting)
			return;
		avail = tcp_recv_peek(c->tc, &data);
		if (avail == 0 && !c->need_feed) {
			/* RFC 9293 3.6: the peer's FIN with every byte
			 * consumed; a half request left in 'in' is dropped. */
			if (tcp_conn_peer_closed(c->tc)) {
				c->closing = true;
				continue;
			}
			return;
		}
		if (conn_feed(sv, c, data, avail) != 0 && !c->closing &&
		    c->out.len == 0)
			return;
	}
	CTR_INC(sv, conn_yields);
	ready_add(sv, c);
}

/* ---- tcp_app callbacks -------------------------------------------------- */

static void *serve_accepted(void *arg, struct tcp_conn *tc)
{
	struct dp_serve *sv = arg;
	struct dp_serve_shared *sh = sv->sh;
	struct dp_conn *c = calloc(1, sizeof(*c));
	bool over;

	if (c == NULL)
		return NULL;            /* the stack answers RST */
	c->sv = sv;
	c->tc = tc;
	mc_buf_init(&c->out);
	mc_buf_init(&c->in);
	over = __atomic_fetch_add(&sh->nconns, 1, __ATOMIC_RELAXED) >=
	       sh->max_conns;
	if (over) {
		__atomic_fetch_sub(&sh->nconns, 1, __ATOMIC_RELAXED);
		if (mc_buf_append(&c->out, too_many_conns,
				  sizeof(too_many_conns) - 1) != 0)
			goto fail;
		c->closing = true;
		mc_server_conn_rejected(sh->server);
		CTR_INC(sv, conns_rejected);
		ready_add(sv, c);   /* sent from dp_serve_poll */
	} else {
		c->sess = mc_session_create(sv->mw);
		if (c->sess == NULL) {
			__atomic_fetch_sub(&sh->nconns, 1, __ATOMIC_RELAXED);
			goto fail;
		}
		mc_session_set_waker(c->sess, conn_wake, c);
		mc_server_conn_opened(sh->server);
		CTR_INC(sv, conns_opened);
	}
	c->next = sv->conns;
	if (sv->conns)
		sv->conns->prev = c;
	sv->conns = c;
	if (sh->verbosity >= 2) {
		uint32_t rip, lip;
		uint16_t rport, lport;

		tcp_conn_addrs(tc, &rip, &rport, &lip, &lport);
		fprintf(stderr, "dpcached: dpdk: %s %u.%u.%u.%u:%u\n",
			over ? "refused (over -c)" : "accepted",
			rip >> 24, (rip >> 16) & 255, (rip >> 8) & 255,
			rip & 255, rport);
	}
	return c;
fail:
	mc_buf_deinit(&c->out);
	mc_buf_deinit(&c->in);
	free(c);
	return NULL;
}

static void serve_readable(void *arg, void *ctx)
{
	conn_service(arg, ctx);
}

static void serve_writable(void *arg, void *ctx)
{
	conn_service(arg, ctx);
}

static void serve_closed(void *arg, void *ctx)
{
	struct dp_serve *sv = arg;
	struct dp_conn *c = ctx;

	conn_release(sv, c);
	c->tc = NULL;
	if (c->in_ready && sv->in_poll) {
		/* Still linked in the batch dp_serve_poll walks. */
		c->dead = true;
		return;
	}
	ready_remove(sv, c);
	conn_free(sv, c);
}

/*
 * One request datagram. mc_udp_handle lays the reply datagrams back to back
 * in udp_out, each MC_UDP_MAX_PAYLOAD bytes but the last (mc.h). udp_out is
 * this core's scratch, kept between datagrams (freed only past
 * OUT_KEEP_MAX), and the reply is built in it directly: a datagram costs no
 * allocation.
 */
static void serve_udp(void *arg, struct net_stack *st,
		      const struct net_udp_peer *peer, const uint8_t *data,
		      size_t len)
{
	struct dp_serve *sv = arg;
	unsigned n;

	CTR_INC(sv, udp_requests);
	sv->udp_out.len = 0;
	n = mc_udp_handle(sv->mw, (const char *)data, len, &sv->udp_out);
	for (unsigned i = 0; i < n; i++) {
		size_t off = (size_t)i * MC_UDP_MAX_PAYLOAD;
		size_t dlen;

		if (off >= sv->udp_out.len)
			break;      /* defensive: never read past the replies */
		dlen = sv->udp_out.len - off;
		if (dlen > MC_UDP_MAX_PAYLOAD)
			dlen = MC_UDP_MAX_PAYLOAD;
		if (net_udp_send(st, peer, sv->udp_out.data + off, dlen) == 0)
			CTR_INC(sv, udp_replies);
		else
			CTR_INC(sv, udp_reply_drops);
	}
	if (sv->udp_out.cap > OUT_KEEP_MAX) {
		mc_buf_deinit(&sv->udp_out);
		mc_buf_init(&sv->udp_out);
	}
}

static const struct net_app serve_app = {
	.tcp = {
		.accepted = serve_accepted,
		.readable = serve_readable,
		.writable = serve_writable,
		.closed = serve_closed,
	},
	.udp_datagram = serve_udp,
};

/* ---- lifecycle ---------------------------------------------------------- */

const struct net_app *dp_serve_app(void)
{
	return &serve_app;
}

struct dp_serve *dp_serve_create(struct dp_serve_shared *sh,
				 struct dp_serve_counters *ctr)
{
	struct dp_serve *sv = calloc(1, sizeof(*sv));

	if (sv == NULL)
		return NULL;
	sv->sh = sh;
	sv->ctr = ctr;
	mc_buf_init(&sv->udp_out);
	sv->mw = mc_worker_create(sh->server);
	if (sv->mw == NULL) {
		free(sv);
		return NULL;
	}
	if (sh->cluster != NULL) {
		sv->cw = cluster_worker_create(sh->cluster,
					       mc_worker_cache_thread(sv->mw));
		if (sv->cw == NULL) {
			mc_worker_destroy(&sv->mw);
			free(sv);
			return NULL;
		}
		mc_worker_set_cluster(sv->mw, sv->cw);
	}
	return sv;
}

void dp_serve_attach(struct dp_serve *sv, struct net_stack *st)
{
	sv->st = st;
}

struct cache_thread *dp_serve_cache_thread(struct dp_serve *sv)
{
	return mc_worker_cache_thread(sv->mw);
}

void dp_serve_poll(struct dp_serve *sv)
{
	struct dp_conn *batch = sv->ready, *c;

	/* Served as a batch: a connection that yields again goes on a new
	 * list, for the next iteration. A batch member closed meanwhile (should
	 * a tcp_* call report a close at once) is only marked dead by
	 * serve_closed() and freed here. */
	if (sv->cw != NULL && cluster_worker_busy(sv->cw)) {
		/* Answers wake their sessions onto the ready list. An idle
		 * link a peer closed is noticed by the next request on it. */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
		cluster_worker_poll(sv->cw, (uint64_t)ts.tv_sec * 1000u +
					    (uint64_t)ts.tv_nsec / 1000000u,
				    false);
		batch = sv->ready;
	}
	sv->ready = NULL;
	sv->in_poll = true;
	while ((c = batch) != NULL) {
		batch = c->ready_next;
		c->ready_next = NULL;
		c->in_ready = false;
		if (c->dead)
			conn_free(sv, c);
		else
			conn_service(sv, c);
	}
	sv->in_poll = false;
}

bool dp_serve_busy(const struct dp_serve *sv)
{
	return sv->ready != NULL ||
	       (sv->cw != NULL && cluster_worker_busy(sv->cw));
}

void dp_serve_abort_all(struct dp_serve *sv)
{
	struct dp_conn *c, *next;

	/* tcp_abort calls serve_closed at once, which frees c only. */
	for (c = sv->conns; c != NULL; c = next) {
		next = c->next;
		if (c->tc != NULL && !c->dead)
			tcp_abort(c->tc);
	}
}

void dp_serve_destroy(struct dp_serve **svp)
{
	struct dp_serve *sv = svp ? *svp : NULL;

	if (sv == NULL)
		return;
	/* Sessions die on their own lcore: they may hold items only this
	 * thread's cache context may free. */
	while (sv->conns != NULL) {
		struct dp_conn *c = sv->conns;

		conn_release(sv, c);
		conn_free(sv, c);
	}
	sv->ready = NULL;
	mc_buf_deinit(&sv->udp_out);
	if (sv->mw != NULL)
		mc_worker_set_cluster(sv->mw, NULL);
	cluster_worker_destroy(&sv->cw);
	mc_worker_destroy(&sv->mw);
	free(sv);
	*svp = NULL;
}
