/*
 * dataplane/kernel/kernel.c - the kernel-socket backend.
 *
 * Design note.
 *
 * Share nothing between workers: every worker thread owns an epoll
 * instance, a SO_REUSEPORT listening socket (the kernel spreads new
 * connections over them), an optional SO_REUSEPORT UDP socket, an eventfd
 * to be woken for shutdown, and the connections it accepted. A connection
 * never changes thread. The only shared state is the connection count (for
 * -c, a relaxed atomic) and, for 'stats conns', each worker's connection
 * list, guarded by a per-worker mutex that the owner takes only to add or
 * remove a connection.
 *
 * Connections are registered once, edge-triggered, for EPOLLIN|EPOLLOUT,
 * so the hot path makes no epoll_ctl calls. Edge triggering means we must
 * remember readiness ourselves: 'readable' is set by an event and cleared
 * when a read comes back short (the queue was empty) or EAGAIN;
 * 'send_blocked' is set by a short send and cleared by EPOLLOUT.
 *
 * Backpressure. A connection reads only when its output is fully sent. If
 * mc_session_feed() pauses (output over the high-water mark) or a send comes
 * back short, the connection stops reading until its output drains, so a
 * client that never reads fills its own TCP window and nothing else: per
 * connection we hold at most IN_BUF_MAX of input (IN_LINE_MAX while one
 * huge multi-get line arrives) and the protocol's output bound. Input
 * starts at IN_BUF_INIT and doubles while reads fill it.
 *
 * Fairness. One service call does at most CONN_ROUNDS read/feed rounds;
 * a connection with work left goes on the worker's ready list and is served
 * again after the other ready connections, and epoll_wait does not block
 * while that list is non-empty.
 *
 * RCU. Workers are urcu-qsbr readers through their mc_worker: quiescent
 * once per loop iteration, offline around the blocking epoll_wait. Item
 * pointers never outlive an mc_* call, so this is always safe.
 */
#include "dataplane/kernel/kernel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "cache/clock.h"
#include "dataplane/dp_log.h"
#include "replication/cluster.h"

#define IN_BUF_INIT   2048          /* first input buffer of a connection */
#define IN_BUF_MAX    65536         /* input of a busy connection */
/* A text multi-get line must arrive whole; the text side bounds it at 2 MiB
 * (MC_TEXT_GET_LINE_MAX), so input may grow that far for one such line. */
#define IN_LINE_MAX   (2 * 1024 * 1024 + 4096)
#define OUT_KEEP_MAX  (256 * 1024)  /* a bigger drained output buffer is freed */
#define EVENTS_MAX    128
#define CONN_ROUNDS   8             /* read/feed rounds per connection per turn */
#define ACCEPT_BURST  32
#define UDP_BATCH     32            /* datagrams per recvmmsg */
#define UDP_ROUNDS    4             /* recvmmsg calls per event */
#define UDP_BUF_SIZE  8192          /* largest request datagram we take */
#define UDP_TX_BATCH  64            /* datagrams per sendmmsg */
#define FD_MARGIN     64            /* fds beyond -c: sockets, epoll, logs */

static const char too_many_conns[] = "ERROR Too many open connections\r\n";

/* ---- data structures ---------------------------------------------------- */

/* What an epoll event points at: the first member of each source. */
enum src_kind { SRC_CONN, SRC_LISTEN, SRC_UDP, SRC_WAKE, SRC_FWD };

struct src {
	enum src_kind kind;
};

struct kworker;

struct kconn {
	struct src src;               /* SRC_CONN; first member */
	int fd;
	struct kworker *kw;
	struct mc_session *sess;
	char *in;                     /* unconsumed input, in[0..in_len) */
	size_t in_len, in_cap;
	struct mc_buf out;            /* replies; out.data[out_sent..len) unsent */
	size_t out_sent;
	bool readable;                /* ET: unread bytes may be queued */
	bool send_blocked;            /* short send: wait for EPOLLOUT (atomic for stats) */
	bool need_feed;               /* input arrived or feed paused */
	bool closing;                 /* close once 'out' is sent */
	bool grow_in;                 /* the last read filled the buffer */
	bool in_ready;                /* on kw->ready */
	bool waiting;                 /* a request is out at another node */
	struct kconn *ready_next;
	struct kconn *prev, *next;    /* kw->conns, under kw->conns_lock */
	uint32_t last_cmd;            /* cache clock of the last read; atomic */
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

struct kudp {
	struct mmsghdr rx[UDP_BATCH];
	struct iovec rx_iov[UDP_BATCH];
	struct sockaddr_storage rx_addr[UDP_BATCH];
	char rx_buf[UDP_BATCH][UDP_BUF_SIZE];
	size_t reply_start[UDP_BATCH], reply_end[UDP_BATCH];
	struct mmsghdr tx[UDP_TX_BATCH];
	struct iovec tx_iov[UDP_TX_BATCH];
	struct mc_buf out;
};

struct kworker {
	struct dp_kernel *k;
	unsigned id;
	pthread_t tid;
	bool started;
	int start_err;                /* set by the thread before it posts */
	int epfd, lfd, ufd, wakefd, sparefd;
	struct src listen_src, udp_src, wake_src, fwd_src;
	struct mc_worker *mw;
	struct cluster_worker *cw;    /* cluster node: routing + forwarders, or NULL */
	struct cache_thread *ct;
	struct kudp *udp;
	struct kconn *ready;          /* connections with work left */
	struct kconn *current;        /* being served (stats conns) */
	pthread_mutex_t conns_lock;   /* conns list only; never nested */
	struct kconn *conns;
	uint64_t conn_yields;         /* single writer, relaxed */
	uint64_t udp_rx_truncated;
	uint64_t udp_tx_dropped;
} __attribute__((aligned(64)));

struct dp_kernel {
	struct dp_kernel_config cfg;
	char listen_addr[64];
	struct mc_server *server;
	struct kworker *workers;
	unsigned nworkers;
	uint64_t nconns;              /* atomic: open client connections */
	int stopping;                 /* atomic */
	bool stopped;
	sem_t started;
	uint32_t start_time;
};

static __thread struct kworker *tls_worker;

static int epoll_add(int epfd, int fd, struct src *s);

static inline void stat_inc(uint64_t *p)
{
	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
}

/* ---- connections -------------------------------------------------------- */

static void ready_add(struct kworker *kw, struct kconn *c)
{
	if (c->in_ready)
		return;
	c->in_ready = true;
	c->ready_next = kw->ready;
	kw->ready = c;
}

static void set_send_blocked(struct kconn *c, bool v)
{
	__atomic_store_n(&c->send_blocked, v, __ATOMIC_RELAXED);
}

/*
 * Invariant: a connection on kw->ready is closed only by its own service
 * call, after ready_run() took it off the list; event dispatch defers to
 * the ready list instead of serving a listed connection.
 */
static void conn_close(struct kworker *kw, struct kconn *c)
{
	struct dp_kernel *k = kw->k;

	DP_LOG(2, "worker %u: close fd %d", kw->id, c->fd);
	pthread_mutex_lock(&kw->conns_lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		kw->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&kw->conns_lock);

	close(c->fd);   /* also leaves the epoll set */
	mc_session_destroy(&c->sess);
	mc_buf_deinit(&c->out);
	free(c->in);
	free(c);
	__atomic_fetch_sub(&k->nconns, 1, __ATOMIC_RELAXED);
	mc_server_conn_closed(k->server);
}

/*
 * Sends as much of 'out' as the socket takes, in one send. A partial send
 * only advances out_sent: nothing is fed while output is pending, so the
 * buffer is emptied in one step once it is all sent, instead of moving the
 * rest of a big value down after every partial send.
 * Returns 0, or -1 on a dead connection.
 */
static int conn_flush(struct kconn *c)
{
	for (;;) {
		size_t left = c->out.len - c->out_sent;
		ssize_t n = send(c->fd, c->out.data + c->out_sent, left,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0) {
			if ((size_t)n < left) {
				/* The socket buffer is full; the kernel marks it so
				 * and EPOLLOUT fires once there is room. */
				c->out_sent += (size_t)n;
				set_send_blocked(c, true);
				return 0;
			}
			c->out_sent = 0;
			mc_buf_consume(&c->out, c->out.len);
			if (c->out.cap > OUT_KEEP_MAX) {
				/* Do not keep a multi-megabyte buffer for an idle
				 * connection after one big value. */
				mc_buf_deinit(&c->out);
				mc_buf_init(&c->out);
			}
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			set_send_blocked(c, true);
			return 0;
		}
		DP_LOG(2, "fd %d: send: %s", c->fd, strerror(errno));
		return -1;
	}
}

/* After a huge request line: do not keep megabytes for an idle client. */
static void conn_shrink_input(struct kconn *c)
{
	char *p;

	if (c->in_len != 0 || c->in_cap <= IN_BUF_MAX)
		return;
	p = realloc(c->in, IN_BUF_INIT);
	if (p == NULL)
		return;    /* keep the big one; still valid */
	c->in = p;
	c->in_cap = IN_BUF_INIT;
}

/* Runs the protocol over the buffered input; keeps what it did not use. */
static void conn_feed(struct kconn *c)
{
	size_t consumed = 0;
	int rc = mc_session_feed(c->sess, c->in, c->in_len, &consumed, &c->out);

	if (consumed > c->in_len)   /* defensive: never trust a count blindly */
		consumed = c->in_len;
	if (consumed > 0) {
		c->in_len -= consumed;
		if (c->in_len > 0)
			memmove(c->in, c->in + consumed, c->in_len);
	}
	switch (rc) {
	case MC_FEED_PAUSE:
		c->need_feed = true;    /* resume once 'out' is sent */
		break;
	case MC_FEED_CLOSE:
		c->closing = true;
		c->need_feed = false;
		break;
	case MC_FEED_MORE:
		c->need_feed = false;   /* wait for more bytes */
		conn_shrink_input(c);
		break;
	case MC_FEED_WAIT:
		/* Another node has the request; conn_wake() resumes. Input is
		 * not read meanwhile (the same backpressure as a full socket). */
		c->waiting = true;
		c->need_feed = false;
		break;
	default:
		/* Not in the contract: do not guess, end the connection. */
		DP_LOG(1, "fd %d: mc_session_feed returned %d, closing", c->fd, rc);
		c->closing = true;
		c->need_feed = false;
		break;
	}
}

/*
 * Makes room before a read. Two reasons to grow: the protocol consumed
 * nothing from a full buffer (one request line is longer than the buffer:
 * grow up to IN_LINE_MAX, then give up), or the last read filled the buffer
 * (a busy pipelining client: grow up to IN_BUF_MAX for bigger reads).
 * Returns 0, or -1 to close.
 */
static int conn_make_room(struct kconn *c)
{
	size_t limit, cap;
	char *p;

	if (c->in_len == c->in_cap)
		limit = IN_LINE_MAX;
	else if (c->grow_in && c->in_cap < IN_BUF_MAX)
		limit = IN_BUF_MAX;
	else
		return 0;
	if (c->in_cap >= limit) {
		DP_LOG(1, "fd %d: request line over %d bytes, closing", c->fd,
		       IN_LINE_MAX);
		return -1;
	}
	cap = c->in_cap * 2 < limit ? c->in_cap * 2 : limit;
	p = realloc(c->in, cap);
	if (p == NULL)
		return -1;
	c->in = p;
	c->in_cap = cap;
	c->grow_in = false;
	return 0;
}

/* One read into the input buffer. Returns 1 (bytes read), 0 (nothing
 * now), -1 (EOF, error, or an over-long request: close). */
static int conn_read(struct kconn *c)
{
	size_t space;
	ssize_t n;

	if (conn_make_room(c) != 0)
		return -1;
	space = c->in_cap - c->in_len;
	n = recv(c->fd, c->in + c->in_len, space, MSG_DONTWAIT);
	if (n > 0) {
		/* A short read means the receive queue is empty: a later
		 * arrival raises a new edge, so no EAGAIN read is needed. */
		if ((size_t)n < space)
			c->readable = false;
		else
			c->grow_in = true;
		c->in_len += (size_t)n;
		c->need_feed = true;
		__atomic_store_n(&c->last_cmd, cache_clock_now(), __ATOMIC_RELAXED);
		return 1;
	}
	if (n == 0)
		return -1;      /* peer closed; a half request is dropped */
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		c->readable = false;
		return 0;
	}
	if (errno == EINTR)
		return 0;
	DP_LOG(2, "fd %d: recv: %s", c->fd, strerror(errno));
	return -1;
}

/* True if the connection could do more right now without a new event. */
static bool conn_has_work(const struct kconn *c)
{
	if (c->send_blocked)
		return false;
	if (c->waiting)
		return c->out.len > 0 || c->closing;
	return c->out.len > 0 || c->closing || c->need_feed || c->readable;
}

/* The session's waker: the answer of a forwarded request is in; feed again.
 * Runs inside fwd_poll() on the connection's own thread. */
static void conn_wake(void *arg)
{
	struct kconn *c = arg;

	c->waiting = false;
	c->need_feed = true;
	ready_add(c->kw, c);
}

/*
 * Serves one connection for at most CONN_ROUNDS rounds: send pending
 * output, run buffered input through the protocol, read more. Reads only
 * with the output fully sent (backpressure). May close and free 'c'.
 */
static void conn_service(struct kworker *kw, struct kconn *c)
{
	kw->current = c;
	for (int round = 0; round < CONN_ROUNDS; round++) {
		if (c->out.len > 0) {
			if (c->send_blocked)
				goto out;
			if (conn_flush(c) != 0)
				goto close;
			if (c->out.len > 0)
				goto out;       /* socket full: EPOLLOUT resumes */
		}
		if (c->closing)
			goto close;
		if (c->need_feed) {
			conn_feed(c);
			continue;               /* send what it produced */
		}
		if (!c->readable || c->waiting)
			goto out;
		if (conn_read(c) < 0)
			goto close;
	}
	if (conn_has_work(c)) {
		stat_inc(&kw->conn_yields);
		ready_add(kw, c);
	}
out:
	kw->current = NULL;
	return;
close:
	kw->current = NULL;
	conn_close(kw, c);
}

static void conn_event(struct kworker *kw, struct kconn *c, uint32_t ev)
{
	if (ev & EPOLLOUT)
		set_send_blocked(c, false);
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = true;
	if (ev & (EPOLLERR | EPOLLHUP))
		set_send_blocked(c, false);   /* let send report the error */
	if (c->in_ready)
		return;                       /* served from the ready list */
	conn_service(kw, c);
}

static void ready_run(struct kworker *kw)
{
	struct kconn *batch = kw->ready, *c;

	kw->ready = NULL;
	while ((c = batch) != NULL) {
		batch = c->ready_next;
		c->ready_next = NULL;
		c->in_ready = false;
		conn_service(kw, c);
	}
}

/* Over -c: tell the client like memcached does, then close. */
static void conn_reject(struct kworker *kw, int fd)
{
	ssize_t n = send(fd, too_many_conns, sizeof(too_many_conns) - 1,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)n;   /* best effort: the client may already be gone */
	close(fd);
	mc_server_conn_rejected(kw->k->server);
	DP_LOG(2, "worker %u: rejected a connection (over -c %u)", kw->id,
	       kw->k->cfg.max_conns);
}

static void conn_open(struct kworker *kw, int fd,
		      const struct sockaddr_storage *peer, socklen_t peer_len)
{
	struct dp_kernel *k = kw->k;
	struct epoll_event ev;
	struct kconn *c;
	int one = 1;

	if (__atomic_fetch_add(&k->nconns, 1, __ATOMIC_RELAXED) >= k->cfg.max_conns) {
		__atomic_fetch_sub(&k->nconns, 1, __ATOMIC_RELAXED);
		conn_reject(kw, fd);
		return;
	}
	/* Replies go out whole per batch; Nagle would only add delay. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	c->src.kind = SRC_CONN;
	c->fd = fd;
	c->kw = kw;
	c->in_cap = IN_BUF_INIT;
	c->in = malloc(c->in_cap);
	c->sess = mc_session_create(kw->mw);
	mc_buf_init(&c->out);
	c->peer = *peer;
	c->peer_len = peer_len;
	c->last_cmd = cache_clock_now();
	if (c->in == NULL || c->sess == NULL)
		goto fail;
	mc_session_set_waker(c->sess, conn_wake, c);

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = c;
	if (epoll_ctl(kw->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
		goto fail;

	pthread_mutex_lock(&kw->conns_lock);
	c->next = kw->conns;
	if (kw->conns)
		kw->conns->prev = c;
	kw->conns = c;
	pthread_mutex_unlock(&kw->conns_lock);
	mc_server_conn_opened(k->server);
	DP_LOG(2, "worker %u: new connection fd %d", kw->id, fd);
	return;
fail:
	DP_LOG(1, "worker %u: cannot set up a connection: %s", kw->id,
	       strerror(errno ? errno : ENOMEM));
	if (c != NULL) {
		mc_session_destroy(&c->sess);
		mc_buf_deinit(&c->out);
		free(c->in);
		free(c);
	}
	close(fd);
	__atomic_fetch_sub(&k->nconns, 1, __ATOMIC_RELAXED);
}

/* Out of descriptors: use the spare one to accept and refuse a client, so
 * the level-triggered listener does not spin on a queued connection. */
static void accept_shed(struct kworker *kw)
{
	int fd;

	if (kw->sparefd < 0)
		return;
	close(kw->sparefd);
	fd = accept4(kw->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0)
		conn_reject(kw, fd);
	kw->sparefd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void accept_burst(struct kworker *kw)
{
	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int fd = accept4(kw->lfd, (struct sockaddr *)&peer, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				DP_LOG(1, "worker %u: accept: %s", kw->id,
				       strerror(errno));
				accept_shed(kw);
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				DP_LOG(1, "worker %u: accept: %s", kw->id,
				       strerror(errno));
			return;
		}
		conn_open(kw, fd, &peer, len);
	}
}

/* ---- UDP ---------------------------------------------------------------- */

/* Sends the reply datagrams of requests [0, n) back to their senders, in
 * sendmmsg batches. Datagrams the socket cannot take are dropped (UDP). */
static void udp_send_replies(struct kworker *kw, unsigned n)
{
	struct kudp *u = kw->udp;
	unsigned ntx = 0;

	for (unsigned i = 0; i <= n; i++) {
		size_t off = i < n ? u->reply_start[i] : 0;
		size_t end = i < n ? u->reply_end[i] : 0;

		for (;;) {
			bool last = i == n;
			if (ntx == UDP_TX_BATCH || (last && ntx > 0)) {
				int sent = sendmmsg(kw->ufd, u->tx, ntx, MSG_DONTWAIT);
				if (sent < 0)
					sent = 0;
				for (int d = sent; d < (int)ntx; d++)
					stat_inc(&kw->udp_tx_dropped);
				ntx = 0;
			}
			if (last || off >= end)
				break;
			size_t len = end - off;
			if (len > MC_UDP_MAX_PAYLOAD)
				len = MC_UDP_MAX_PAYLOAD;
			u->tx_iov[ntx].iov_base = u->out.data + off;
			u->tx_iov[ntx].iov_len = len;
			memset(&u->tx[ntx], 0, sizeof(u->tx[ntx]));
			u->tx[ntx].msg_hdr.msg_iov = &u->tx_iov[ntx];
			u->tx[ntx].msg_hdr.msg_iovlen = 1;
			u->tx[ntx].msg_hdr.msg_name = &u->rx_addr[i];
			u->tx[ntx].msg_hdr.msg_namelen = u->rx[i].msg_hdr.msg_namelen;
			ntx++;
			off += len;
		}
	}
}

static void udp_burst(struct kworker *kw)
{
	struct kudp *u = kw->udp;

	for (int round = 0; round < UDP_ROUNDS; round++) {
		for (unsigned i = 0; i < UDP_BATCH; i++) {
			u->rx_iov[i].iov_base = u->rx_buf[i];
			u->rx_iov[i].iov_len = UDP_BUF_SIZE;
			memset(&u->rx[i].msg_hdr, 0, sizeof(u->rx[i].msg_hdr));
			u->rx[i].msg_hdr.msg_iov = &u->rx_iov[i];
			u->rx[i].msg_hdr.msg_iovlen = 1;
			u->rx[i].msg_hdr.msg_name = &u->rx_addr[i];
			u->rx[i].msg_hdr.msg_namelen = sizeof(u->rx_addr[i]);
		}
		int n = recvmmsg(kw->ufd, u->rx, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;     /* EAGAIN, or an error the next event repeats */
		u->out.len = 0;
		for (int i = 0; i < n; i++) {
			u->reply_start[i] = u->out.len;
			if (u->rx[i].msg_hdr.msg_flags & MSG_TRUNC) {
				stat_inc(&kw->udp_rx_truncated);
			} else {
				(void)mc_udp_handle(kw->mw, u->rx_buf[i], u->rx[i].msg_len,
						    &u->out);
			}
			u->reply_end[i] = u->out.len;
		}
		/* Pointers into u->out are taken only now: it may have moved. */
		udp_send_replies(kw, (unsigned)n);
		if (u->out.cap > OUT_KEEP_MAX) {
			mc_buf_deinit(&u->out);
			mc_buf_init(&u->out);
		}
		if (n < UDP_BATCH)
			return;
	}
}

/* ---- worker threads ----------------------------------------------------- */

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void worker_loop(struct kworker *kw)
{
	struct epoll_event evs[EVENTS_MAX];

	while (!__atomic_load_n(&kw->k->stopping, __ATOMIC_ACQUIRE)) {
		int timeout = kw->ready ? 0 : -1;
		bool fwd_ready = false;
		int n;

		if (kw->cw != NULL && timeout != 0) {
			/* Wake for the forwarders' next deadline. */
			int t = cluster_worker_timeout_ms(kw->cw, monotonic_ms());
			if (t >= 0)
				timeout = t;
		}

		/* No item pointer is held between iterations. */
		cache_thread_quiescent(kw->ct);
		cache_thread_offline(kw->ct);
		n = epoll_wait(kw->epfd, evs, EVENTS_MAX, timeout);
		cache_thread_online(kw->ct);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			DP_LOG(1, "worker %u: epoll_wait: %s", kw->id, strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct src *s = evs[i].data.ptr;

			switch (s->kind) {
			case SRC_CONN:
				conn_event(kw, (struct kconn *)s, evs[i].events);
				break;
			case SRC_LISTEN:
				accept_burst(kw);
				break;
			case SRC_UDP:
				udp_burst(kw);
				break;
			case SRC_WAKE: {
				uint64_t v;
				ssize_t r = read(kw->wakefd, &v, sizeof(v));
				(void)r;  /* the flag, not the count, says stop */
				break;
			}
			case SRC_FWD:
				/* An answer, or a peer closing an idle link: the
				 * fd stays readable until fwd_poll runs. */
				fwd_ready = true;
				break;
			}
		}
		/* Answers from other nodes wake their sessions (ready list). */
		if (kw->cw != NULL && (fwd_ready || cluster_worker_busy(kw->cw)))
			cluster_worker_poll(kw->cw, monotonic_ms(), fwd_ready);
		ready_run(kw);
	}
}

/* A cluster node's worker: its routing context and forwarders, whose epoll
 * fds join the worker's own (readable when an answer is in). */
static int worker_join_cluster(struct kworker *kw)
{
	kw->cw = cluster_worker_create(kw->k->cfg.cluster, kw->ct);
	if (kw->cw == NULL)
		return -1;
	kw->fwd_src.kind = SRC_FWD;
	if (epoll_add(kw->epfd, cluster_worker_fd(kw->cw), &kw->fwd_src) != 0) {
		cluster_worker_destroy(&kw->cw);
		return -1;
	}
	mc_worker_set_cluster(kw->mw, kw->cw);
	return 0;
}

static void *worker_main(void *arg)
{
	struct kworker *kw = arg;
	char name[16];

	snprintf(name, sizeof(name), "dpc-worker-%u", kw->id);
	pthread_setname_np(pthread_self(), name);
	tls_worker = kw;

	kw->mw = mc_worker_create(kw->k->server);
	if (kw->mw == NULL) {
		kw->start_err = -ENOMEM;
		sem_post(&kw->k->started);
		return NULL;
	}
	kw->ct = mc_worker_cache_thread(kw->mw);
	if (kw->k->cfg.cluster != NULL && worker_join_cluster(kw) != 0) {
		mc_worker_destroy(&kw->mw);
		kw->start_err = -ENOMEM;
		sem_post(&kw->k->started);
		return NULL;
	}
	sem_post(&kw->k->started);

	worker_loop(kw);

	/* Connections die on their own thread: their sessions may hold
	 * items that only this thread's cache context may free. */
	while (kw->conns != NULL)
		conn_close(kw, kw->conns);
	kw->ready = NULL;
	if (kw->udp)
		mc_buf_deinit(&kw->udp->out);
	/* After the sessions: closing one cancels its forwarded request. */
	mc_worker_set_cluster(kw->mw, NULL);
	cluster_worker_destroy(&kw->cw);
	mc_worker_destroy(&kw->mw);
	kw->ct = NULL;
	return NULL;
}

/* ---- sockets ------------------------------------------------------------ */

static int resolve(const char *host, uint16_t port, int socktype,
		   struct addrinfo **res, char *err, size_t errlen)
{
	struct addrinfo hints;
	char portstr[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = socktype;
	hints.ai_flags = AI_PASSIVE;
	snprintf(portstr, sizeof(portstr), "%u", port);
	rc = getaddrinfo(host, portstr, &hints, res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve listen address '%s': %s",
			 host, gai_strerror(rc));
		return -EINVAL;
	}
	return 0;
}

/*
 * One socket bound to ai. 'reuseport' for the per-thread sockets; the
 * probe binds without it so that a port another process holds (even with
 * SO_REUSEPORT) is reported as in use instead of silently shared.
 */
static int bind_one(const struct addrinfo *ai, bool reuseport, int backlog)
{
	int one = 1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);

	if (fd < 0)
		return -errno;
	if (ai->ai_socktype == SOCK_STREAM)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
		goto fail;
	if (ai->ai_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
		goto fail;
	if (ai->ai_socktype == SOCK_STREAM) {
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (listen(fd, backlog) != 0)
			goto fail;
	}
	return fd;
fail: {
		int e = errno;
		close(fd);
		return -e;
	}
}

/* Binds one socket per worker into *fd_of(worker). */
static int bind_all(struct dp_kernel *k, int socktype, uint16_t port,
		    char *err, size_t errlen)
{
	const char *proto = socktype == SOCK_STREAM ? "tcp" : "udp";
	struct addrinfo *res = NULL;
	int fd;

	if (resolve(k->listen_addr, port, socktype, &res, err, errlen) != 0)
		return -EINVAL;
	fd = bind_one(res, false, k->cfg.backlog);
	if (fd < 0)
		goto fail;
	close(fd);
	for (unsigned i = 0; i < k->nworkers; i++) {
		fd = bind_one(res, true, k->cfg.backlog);
		if (fd < 0)
			goto fail;
		if (socktype == SOCK_STREAM)
			k->workers[i].lfd = fd;
		else
			k->workers[i].ufd = fd;
	}
	freeaddrinfo(res);
	return 0;
fail:
	snprintf(err, errlen, "cannot listen on %s %s port %u: %s", proto,
		 k->listen_addr, port, strerror(-fd));
	freeaddrinfo(res);
	return fd;
}

/* Room for -c connections plus our own descriptors. Never fails: under
 * valgrind or without privilege the hard limit cannot rise. */
static void raise_fd_limit(const struct dp_kernel *k)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)k->cfg.max_conns + 8 * k->nworkers + FD_MARGIN;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		struct rlimit both = { need, need };
		if (setrlimit(RLIMIT_NOFILE, &both) == 0)
			return;
		DP_LOG(1, "cannot raise the open file limit to %llu (hard limit "
		       "%llu): -c %u may not be reachable",
		       (unsigned long long)need, (unsigned long long)rl.rlim_max,
		       k->cfg.max_conns);
		need = rl.rlim_max;
	}
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		DP_LOG(1, "setrlimit(RLIMIT_NOFILE): %s", strerror(errno));
}

static int epoll_add(int epfd, int fd, struct src *s)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;     /* level-triggered: bursts stop early */
	ev.data.ptr = s;
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int worker_setup(struct kworker *kw, char *err, size_t errlen)
{
	kw->epfd = epoll_create1(EPOLL_CLOEXEC);
	kw->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	kw->sparefd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (kw->epfd < 0 || kw->wakefd < 0)
		goto fail;
	kw->listen_src.kind = SRC_LISTEN;
	kw->udp_src.kind = SRC_UDP;
	kw->wake_src.kind = SRC_WAKE;
	if (epoll_add(kw->epfd, kw->wakefd, &kw->wake_src) != 0)
		goto fail;
	if (kw->lfd >= 0 && epoll_add(kw->epfd, kw->lfd, &kw->listen_src) != 0)
		goto fail;
	if (kw->ufd >= 0) {
		kw->udp = calloc(1, sizeof(*kw->udp));
		if (kw->udp == NULL)
			goto fail;
		mc_buf_init(&kw->udp->out);
		if (epoll_add(kw->epfd, kw->ufd, &kw->udp_src) != 0)
			goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "worker %u setup: %s", kw->id,
		 strerror(errno ? errno : ENOMEM));
	return -1;
}

/* ---- public API --------------------------------------------------------- */

struct dp_kernel *dp_kernel_create(const struct dp_kernel_config *cfg,
				   char *err, size_t errlen)
{
	struct dp_kernel *k;

	if (cfg->threads < 1 || cfg->threads > MC_MAX_WORKERS ||
	    cfg->max_conns < 1 || (cfg->tcp_port == 0 && cfg->udp_port == 0)) {
		snprintf(err, errlen, "bad kernel backend configuration");
		return NULL;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		goto nomem;
	k->cfg = *cfg;
	snprintf(k->listen_addr, sizeof(k->listen_addr), "%s",
		 cfg->listen_addr ? cfg->listen_addr : "127.0.0.1");
	k->cfg.listen_addr = k->listen_addr;
	k->nworkers = cfg->threads;
	k->start_time = cache_clock_now();
	dp_verbosity = cfg->verbosity;
	if (sem_init(&k->started, 0, 0) != 0)
		goto nomem_k;
	k->workers = aligned_alloc(64, sizeof(*k->workers) * k->nworkers);
	if (k->workers == NULL)
		goto nomem_sem;
	memset(k->workers, 0, sizeof(*k->workers) * k->nworkers);
	for (unsigned i = 0; i < k->nworkers; i++) {
		struct kworker *kw = &k->workers[i];
		kw->k = k;
		kw->id = i;
		kw->epfd = kw->lfd = kw->ufd = kw->wakefd = kw->sparefd = -1;
		pthread_mutex_init(&kw->conns_lock, NULL);
	}
	raise_fd_limit(k);
	if (cfg->tcp_port && bind_all(k, SOCK_STREAM, cfg->tcp_port, err, errlen) != 0)
		goto fail;
	if (cfg->udp_port && bind_all(k, SOCK_DGRAM, cfg->udp_port, err, errlen) != 0)
		goto fail;
	for (unsigned i = 0; i < k->nworkers; i++)
		if (worker_setup(&k->workers[i], err, errlen) != 0)
			goto fail;
	return k;
fail:
	k->stopped = true;
	dp_kernel_destroy(&k);
	return NULL;
nomem_sem:
	sem_destroy(&k->started);
nomem_k:
	free(k);
nomem:
	snprintf(err, errlen, "out of memory");
	return NULL;
}

int dp_kernel_start(struct dp_kernel *k, struct mc_server *s)
{
	int err = 0;

	k->server = s;
	for (unsigned i = 0; i < k->nworkers; i++) {
		struct kworker *kw = &k->workers[i];
		int rc = pthread_create(&kw->tid, NULL, worker_main, kw);

		if (rc != 0) {
			err = -rc;
			break;
		}
		kw->started = true;
		sem_wait(&k->started);
		if (kw->start_err != 0) {
			err = kw->start_err;
			break;
		}
	}
	if (err != 0)
		dp_kernel_stop(k);
	return err;
}

void dp_kernel_stop(struct dp_kernel *k)
{
	if (k == NULL || k->stopped)
		return;
	__atomic_store_n(&k->stopping, 1, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < k->nworkers; i++) {
		struct kworker *kw = &k->workers[i];
		uint64_t one = 1;

		if (!kw->started)
			continue;
		if (write(kw->wakefd, &one, sizeof(one)) < 0)
			DP_LOG(1, "worker %u: wake: %s", i, strerror(errno));
	}
	for (unsigned i = 0; i < k->nworkers; i++) {
		struct kworker *kw = &k->workers[i];
		if (kw->started)
			pthread_join(kw->tid, NULL);
		kw->started = false;
	}
	k->stopped = true;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void dp_kernel_destroy(struct dp_kernel **kp)
{
	struct dp_kernel *k = kp ? *kp : NULL;

	if (k == NULL)
		return;
	dp_kernel_stop(k);
	for (unsigned i = 0; i < k->nworkers; i++) {
		struct kworker *kw = &k->workers[i];
		close_fd(&kw->lfd);
		close_fd(&kw->ufd);
		close_fd(&kw->wakefd);
		close_fd(&kw->sparefd);
		close_fd(&kw->epfd);
		free(kw->udp);
		pthread_mutex_destroy(&kw->conns_lock);
	}
	free(k->workers);
	sem_destroy(&k->started);
	free(k);
	*kp = NULL;
}

/* ---- stats -------------------------------------------------------------- */

/* "tcp:127.0.0.1:11211" / "tcp:[::1]:11211". */
static void format_addr(char *buf, size_t len, const char *proto,
			const struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(buf, len, "%s:%s:%u", proto, host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(buf, len, "%s:[%s]:%u", proto, host, port);
	} else {
		snprintf(buf, len, "%s:?", proto);
	}
}

static void local_addr(int fd, const char *proto, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		ss.ss_family = AF_UNSPEC;
	format_addr(buf, len, proto, &ss);
}

static void emit_kv(mc_stat_fn emit, void *emit_arg, int fd, const char *what,
		    const char *value)
{
	char name[48];

	snprintf(name, sizeof(name), "%d:%s", fd, what);
	emit(emit_arg, name, value);
}

static void emit_u64(mc_stat_fn emit, void *emit_arg, const char *name,
		     uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	emit(emit_arg, name, buf);
}

/* A listening socket's block, as memcached's 'stats conns' shows it. */
static void emit_listener(const struct dp_kernel *k, int fd, const char *proto,
			  bool udp, mc_stat_fn emit, void *emit_arg)
{
	char buf[96];

	local_addr(fd, proto, buf, sizeof(buf));
	emit_kv(emit, emit_arg, fd, "addr", buf);
	emit_kv(emit, emit_arg, fd, "state", udp ? "conn_read" : "conn_listening");
	snprintf(buf, sizeof(buf), "%u", cache_clock_now() - k->start_time);
	emit_kv(emit, emit_arg, fd, "secs_since_last_cmd", buf);
}

static void emit_conns(struct dp_kernel *k, mc_stat_fn emit, void *emit_arg)
{
	uint32_t now = cache_clock_now();
	char buf[96];

	for (unsigned i = 0; i < k->nworkers; i++) {
		struct kworker *kw = &k->workers[i];

		if (kw->lfd >= 0)
			emit_listener(k, kw->lfd, "tcp", false, emit, emit_arg);
		if (kw->ufd >= 0)
			emit_listener(k, kw->ufd, "udp", true, emit, emit_arg);
		/* Connection fields read here are immutable (fd, peer) or
		 * relaxed atomics; the lock keeps the connection alive. */
		pthread_mutex_lock(&kw->conns_lock);
		for (struct kconn *c = kw->conns; c != NULL; c = c->next) {
			uint32_t last = __atomic_load_n(&c->last_cmd, __ATOMIC_RELAXED);
			const char *state = "conn_read";

			if (kw == tls_worker && c == kw->current)
				state = "conn_parse_cmd";
			else if (__atomic_load_n(&c->send_blocked, __ATOMIC_RELAXED))
				state = "conn_mwrite";
			format_addr(buf, sizeof(buf), "tcp", &c->peer);
			emit_kv(emit, emit_arg, c->fd, "addr", buf);
			local_addr(c->fd, "tcp", buf, sizeof(buf));
			emit_kv(emit, emit_arg, c->fd, "listen_addr", buf);
			emit_kv(emit, emit_arg, c->fd, "state", state);
			snprintf(buf, sizeof(buf), "%u", now >= last ? now - last : 0);
			emit_kv(emit, emit_arg, c->fd, "secs_since_last_cmd", buf);
		}
		pthread_mutex_unlock(&kw->conns_lock);
	}
}

int dp_kernel_stats(void *arg, const char *group, mc_stat_fn emit,
		    void *emit_arg)
{
	struct dp_kernel *k = arg;

	if (group == NULL) {
		uint64_t yields = 0, trunc = 0, dropped = 0;

		for (unsigned i = 0; i < k->nworkers; i++) {
			struct kworker *kw = &k->workers[i];
			yields += __atomic_load_n(&kw->conn_yields, __ATOMIC_RELAXED);
			trunc += __atomic_load_n(&kw->udp_rx_truncated, __ATOMIC_RELAXED);
			dropped += __atomic_load_n(&kw->udp_tx_dropped, __ATOMIC_RELAXED);
		}
		emit_u64(emit, emit_arg, "conn_yields", yields);
		if (k->cfg.udp_port) {
			emit_u64(emit, emit_arg, "udp_rx_truncated", trunc);
			emit_u64(emit, emit_arg, "udp_tx_dropped", dropped);
		}
		return 0;
	}
	if (strcmp(group, "settings") == 0) {
		emit_u64(emit, emit_arg, "tcpport", k->cfg.tcp_port);
		emit_u64(emit, emit_arg, "udpport", k->cfg.udp_port);
		emit(emit_arg, "inter", k->listen_addr);
		emit_u64(emit, emit_arg, "tcp_backlog", (uint64_t)k->cfg.backlog);
		emit(emit_arg, "maxconns_fast", "yes");
		return 0;
	}
	if (strcmp(group, "conns") == 0) {
		emit_conns(k, emit, emit_arg);
		return 0;
	}
	return -ENOENT;
}
