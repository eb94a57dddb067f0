/*
 * replication/forward.c - a worker's client side of node-to-node links.
 *
 * Design note.
 *
 * One forwarder belongs to one serving thread; nothing here is locked except
 * the peer array's growth (see below). Per peer ("host:port", numeric only:
 * no DNS on a serving thread) there is at most one non-blocking TCP socket
 * (TCP_NODELAY) and two FIFOs of requests:
 *
 *   inflight - requests whose bytes were handed to the socket, oldest first.
 *              Only the tail may be partly written (tail_off < tail->len).
 *              Replies are matched to its head: every request gets exactly
 *              one reply, so order is the only key we need.
 *   queue    - requests not written yet, in submit order.
 *
 * A request is one allocation (header + the copied command bytes); there is
 * no separate output buffer. Writing gathers the hello remainder, the partly
 * written tail and as many queued requests as fit in one sendmsg() iovec:
 * that is the pipelining. EPOLLOUT is registered only while a send came back
 * short (or while connecting), so an idle link costs no epoll_ctl calls.
 *
 * Completion. A request ends exactly once, through complete(), called only
 * from fwd_poll() (fwd_submit never calls back). Before any callback runs,
 * the request is unlinked and the peer's state is consistent, so a callback
 * may call fwd_submit() (which only queues and "kicks" the peer for the next
 * pass) or fwd_cancel() (which only sets a flag). Lists failed as a whole are
 * detached first and walked with a saved next pointer; a request cancelled
 * by an earlier callback of the same walk is skipped, and freed only at its
 * own turn, so the flag is always written to live memory.
 *
 * Deadlines. fwd_submit has no clock, so a request is stamped (now +
 * timeout_ms) by the first fwd_poll that sees it; requests are stamped in
 * FIFO order, so each list's head holds its earliest deadline and the
 * timeout pass looks at heads only. An expired in-flight head closes the
 * connection (later replies could no longer be matched): expired requests
 * fail with -ETIMEDOUT, the rest of what was on the wire with -ECONNRESET,
 * and requests not yet written stay queued for a fresh connection.
 *
 * Peer down. A connect that fails (refused, unreachable, connect_timeout_ms,
 * a hello answered with anything but HD, or a connection that dies before it
 * was established) fails everything queued for that peer and marks it down
 * for a backoff: 100 ms, doubling to 2 s, reset by the next established
 * connection. While down, new requests fail with the same error on the next
 * fwd_poll without a connect attempt, so a dead owner costs nothing.
 *
 * Peer table. Grow-only array of pointers, one struct per peer (addresses
 * stay stable, and epoll events carry "index << 32 | connection generation"
 * so events of a closed socket are ignored). fwd_for_each_peer() may run on
 * another thread: it holds 'lock' while it reads the array, and the owner
 * takes 'lock' only to append a peer; counters are relaxed atomics that only
 * the owner writes.
 *
 * How to drive it.
 *
 *   Kernel epoll loop: add fwd_fd(f) to the worker's epoll set (EPOLLIN).
 *   Each iteration, after the worker handled its own events (which may have
 *   called fwd_submit), call fwd_poll(f, now_ms) if fwd_busy(f) OR if the
 *   fwd fd was reported readable; pass min(own timeout, fwd_timeout_ms(f,
 *   now_ms)) to epoll_wait (-1 from fwd_timeout_ms means "no limit"). A
 *   submit makes fwd_timeout_ms return 0, so queued bytes go out at the end
 *   of the same iteration, many requests in one send. The "readable" half
 *   matters: an idle link that the peer closed makes the fd readable while
 *   nothing is busy, and a level-triggered fd left unpolled would spin the
 *   loop.
 *
 *   DPDK polling lcore: once per loop iteration, after the burst was
 *   processed, 'if (fwd_busy(f)) fwd_poll(f, now_ms)'. That costs one
 *   epoll_wait(0) per iteration, only while something is queued, in flight
 *   or connecting; an idle forwarder costs a load and a branch. (An idle
 *   link closed by its peer is then noticed by the next fwd_poll, which
 *   reads events before it writes new requests.)
 *
 *   now_ms is any monotonic millisecond clock (the same one for every call).
 */
#include "replication/forward.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define FWD_LINE_MAX        8192      /* a response line, "\r\n" included */
#define FWD_VALUE_MAX       (1u << 30)  /* largest VA payload (-I is <= 1 GiB) */
#define FWD_IN_MAX          ((size_t)FWD_VALUE_MAX + FWD_LINE_MAX + 2)
#define FWD_IN_INIT         16384     /* first input buffer of a connection */
#define FWD_IN_KEEP         (256 * 1024)  /* a bigger drained one shrinks back */
#define FWD_IN_MIN_READ     4096      /* grow when less room than this is left */
#define FWD_ADDR_MAX        64        /* "[v6]:port" is at most 47 */
#define FWD_IOV_MAX         64        /* requests per sendmsg */
#define FWD_READ_ROUNDS     8         /* recv calls per peer per event */
#define FWD_EVENTS_MAX      64
#define FWD_BACKOFF_MIN_MS  100
#define FWD_BACKOFF_MAX_MS  2000
#define FWD_DEF_PENDING     4096
#define FWD_DEF_TIMEOUT     1000
#define FWD_DEF_CONNECT     500
#define FWD_UNSTAMPED       UINT64_MAX  /* deadline not set yet */

struct fwd_req {
	struct fwd_req *next;
	fwd_done_fn done;
	void *arg;
	uint64_t deadline;
	bool cancelled;
	size_t len;
	char data[];
};

struct fwd_list {
	struct fwd_req *head;
	struct fwd_req *tail;
};

enum fwd_state {
	FWD_IDLE,          /* no socket */
	FWD_CONNECTING,    /* non-blocking connect under way (EPOLLOUT) */
	FWD_OPEN,          /* connected; the hello reply may still be due */
};

/* Counters: written by the owner only (load + store, no locked RMW), read
 * by anyone. */
struct fwd_counters {
	_Atomic uint64_t requests;
	_Atomic uint64_t replies;
	_Atomic uint64_t errors;
	_Atomic uint64_t timeouts;
	_Atomic uint64_t rejected;
	_Atomic uint64_t connects;
	_Atomic uint64_t pending;
};

struct fwd_peer {
	char addr[FWD_ADDR_MAX];       /* the key, exactly as submitted */
	size_t addr_len;
	uint32_t index;                /* in fwd->peers */
	struct sockaddr_storage sa;
	socklen_t sa_len;

	enum fwd_state state;
	int fd;                        /* -1 unless CONNECTING or OPEN */
	uint32_t gen;                  /* bumped per socket: stale events */
	uint32_t ev_mask;              /* what epoll watches now */
	bool established;              /* connected and hello answered HD */
	bool hello_wait;               /* the next reply is the hello's */
	size_t hello_off;              /* hello bytes written on this socket */
	uint64_t conn_deadline;        /* while CONNECTING */

	struct fwd_list inflight;
	size_t tail_off;               /* bytes of inflight.tail written */
	struct fwd_list queue;
	struct fwd_req *unstamped;     /* first queued request with no deadline;
					* all after it have none either */
	unsigned npending;             /* inflight + queue, cancelled included */

	uint64_t down_until;           /* no connect attempt before this */
	int down_err;                  /* what requests fail with meanwhile */
	unsigned backoff_ms;           /* the last backoff; 0 after success */

	bool kicked;                   /* on fwd->kick: needs a pass in fwd_poll */
	struct fwd_peer *kick_next;

	char *in;                      /* received, not yet parsed */
	size_t in_len;
	size_t in_cap;

	struct fwd_counters st;
};

struct fwd {
	int epfd;
	char *hello;
	size_t hello_len;
	unsigned max_pending;
	unsigned timeout_ms;
	unsigned connect_timeout_ms;

	/* Lock order: only 'lock'; never held while calling back into the
	 * owner's code. The owner reads 'peers' without it (it is the only
	 * writer) and takes it only to append. */
	pthread_mutex_t lock;
	struct fwd_peer **peers;
	_Atomic uint32_t npeers;
	uint32_t peers_cap;
	struct fwd_peer *last;         /* lookup cache: the last peer used */

	struct fwd_peer *kick;         /* peers with new work for fwd_poll */
	uint64_t pending;              /* requests on all peers */
	unsigned connecting;           /* peers in FWD_CONNECTING */
};

/* ---- counters ------------------------------------------------------------ */

static inline void stat_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

static inline void stat_set(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, v, memory_order_relaxed);
}

/* ---- reply framing --------------------------------------------------------- */

/* Every first token a meta response may start with. */
static const char *const fwd_codes[] = {
	"HD", "NS", "EX", "NF", "EN", "MN", "VA", "ME",
	"ERROR", "CLIENT_ERROR", "SERVER_ERROR",
};

/*
 * Checks the first token of buf (up to ' ', '\r' or '\n'): 1 when it is a
 * whole response code, 0 when what arrived so far is a prefix of one, -1
 * otherwise. *tok gets the token's length.
 */
static int fwd_code_check(const char *buf, size_t len, size_t *tok)
{
	size_t t = 0, i;
	bool whole;

	/* The longest code has 12 bytes: a longer token is garbage, however
	 * much of it arrived. */
	while (t < len && t <= 12 && buf[t] != ' ' && buf[t] != '\r' &&
	       buf[t] != '\n')
		t++;
	whole = t < len;
	*tok = t;
	for (i = 0; i < sizeof(fwd_codes) / sizeof(fwd_codes[0]); i++) {
		size_t cl = strlen(fwd_codes[i]);

		if (whole ? t != cl : t > cl)
			continue;
		if (memcmp(buf, fwd_codes[i], t) == 0)
			return whole ? 1 : 0;
	}
	return -1;
}

ssize_t fwd_reply_len(const char *buf, size_t len)
{
	const char *nl, *p;
	size_t tok, line, scan, digits = 0;
	uint64_t n = 0;

	if (len == 0)
		return 0;
	if (fwd_code_check(buf, len, &tok) < 0)
		return -1;
	scan = len < FWD_LINE_MAX ? len : FWD_LINE_MAX;
	nl = memchr(buf, '\n', scan);
	if (!nl)
		return len >= FWD_LINE_MAX ? -1 : 0;
	/* A '\n' ends the token, so the code check above saw a whole code. */
	line = (size_t)(nl - buf) + 1;
	if (line < 2 || nl[-1] != '\r')
		return -1;
	if (!(tok == 2 && buf[0] == 'V' && buf[1] == 'A'))
		return (ssize_t)line;

	/* "VA <n>[ <flags>]\r\n" + n bytes + "\r\n" */
	if (buf[2] != ' ')
		return -1;
	for (p = buf + 3; *p >= '0' && *p <= '9'; p++) {
		if (++digits > 10)
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (digits == 0 || (*p != ' ' && *p != '\r') || n > FWD_VALUE_MAX)
		return -1;
	if (len < line + n + 2)
		return 0;
	if (buf[line + n] != '\r' || buf[line + n + 1] != '\n')
		return -1;
	return (ssize_t)(line + n + 2);
}

/* ---- lists ------------------------------------------------------------------ */

static void list_append(struct fwd_list *l, struct fwd_req *r)
{
	r->next = NULL;
	if (l->tail)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
}

static struct fwd_req *list_pop(struct fwd_list *l)
{
	struct fwd_req *r = l->head;

	if (r) {
		l->head = r->next;
		if (!l->head)
			l->tail = NULL;
		r->next = NULL;
	}
	return r;
}

/* Unlinks r (after 'prev', NULL for the head) from the peer's queue, keeping
 * 'unstamped' pointing at the first unstamped request still queued. */
static void queue_unlink(struct fwd_peer *p, struct fwd_req *prev,
			 struct fwd_req *r)
{
	if (prev)
		prev->next = r->next;
	else
		p->queue.head = r->next;
	if (p->queue.tail == r)
		p->queue.tail = prev;
	if (p->unstamped == r)
		p->unstamped = r->next;
	r->next = NULL;
}

/* Takes the whole queue out (for failing it). */
static struct fwd_list queue_detach(struct fwd_peer *p)
{
	struct fwd_list l = p->queue;

	p->queue.head = p->queue.tail = NULL;
	p->unstamped = NULL;
	return l;
}

/* ---- completion --------------------------------------------------------------- */

/* The request leaves its peer: counted, called back unless cancelled, freed.
 * r is already unlinked. */
static void complete(struct fwd *f, struct fwd_peer *p, struct fwd_req *r,
		     int err, const char *reply, size_t len)
{
	p->npending--;
	f->pending--;
	stat_set(&p->st.pending, p->npending);
	if (err == 0) {
		stat_add(&p->st.replies, 1);
	} else {
		stat_add(&p->st.errors, 1);
		if (err == -ETIMEDOUT)
			stat_add(&p->st.timeouts, 1);
	}
	if (!r->cancelled)
		r->done(r->arg, err, reply, len);
	free(r);
}

/* A cancelled request that was never written: dropped, no callback, and
 * counted only in 'requests' (it got neither a reply nor an error). */
static void drop(struct fwd *f, struct fwd_peer *p, struct fwd_req *r)
{
	p->npending--;
	f->pending--;
	stat_set(&p->st.pending, p->npending);
	free(r);
}

/* Fails every request of a detached list: expired ones (when 'now' is given)
 * with -ETIMEDOUT, the others with err. */
static void fail_list(struct fwd *f, struct fwd_peer *p, struct fwd_list l,
		      int err, uint64_t now)
{
	struct fwd_req *r = l.head, *next;

	while (r) {
		next = r->next;
		complete(f, p, r, r->deadline <= now ? -ETIMEDOUT : err,
			 NULL, 0);
		r = next;
	}
}

static void kick(struct fwd *f, struct fwd_peer *p)
{
	if (p->kicked)
		return;
	p->kicked = true;
	p->kick_next = f->kick;
	f->kick = p;
}

/* ---- connection ------------------------------------------------------------------ */

static void peer_set_events(struct fwd *f, struct fwd_peer *p, uint32_t mask)
{
	struct epoll_event ev = {
		.events = mask,
		.data.u64 = ((uint64_t)p->index << 32) | p->gen,
	};

	if (p->ev_mask == mask)
		return;
	/* MOD cannot fail on a socket we added, short of ENOMEM; the old mask
	 * then stays, which costs a wake-up or a late EPOLLOUT, not a loss:
	 * requests still time out. */
	if (epoll_ctl(f->epfd, EPOLL_CTL_MOD, p->fd, &ev) == 0)
		p->ev_mask = mask;
}

/*
 * Closes the peer's socket. What was written on it fails (expired requests
 * with -ETIMEDOUT, the rest with err). 'down': the peer could not be reached
 * or refused us; then the queue fails too and the peer waits out a backoff.
 * Otherwise queued requests stay and the peer is kicked to reconnect.
 * Callbacks run last, on a consistent peer.
 */
static void peer_close(struct fwd *f, struct fwd_peer *p, int err, bool down,
		       uint64_t now)
{
	struct fwd_list inflight = p->inflight, queue = { NULL, NULL };

	if (p->fd >= 0)
		close(p->fd);       /* also leaves the epoll set */
	if (p->state == FWD_CONNECTING)
		f->connecting--;
	p->fd = -1;
	p->state = FWD_IDLE;
	p->ev_mask = 0;
	p->established = false;
	p->hello_wait = false;
	p->hello_off = 0;
	p->in_len = 0;
	if (p->in_cap > FWD_IN_KEEP) {
		free(p->in);
		p->in = NULL;
		p->in_cap = 0;
	}
	p->inflight.head = p->inflight.tail = NULL;
	p->tail_off = 0;

	if (down) {
		if (p->backoff_ms == 0)
			p->backoff_ms = FWD_BACKOFF_MIN_MS;
		else if (p->backoff_ms < FWD_BACKOFF_MAX_MS / 2)
			p->backoff_ms *= 2;
		else
			p->backoff_ms = FWD_BACKOFF_MAX_MS;
		p->down_until = now + p->backoff_ms;
		p->down_err = err;
		queue = queue_detach(p);
	} else if (p->queue.head) {
		kick(f, p);
	}
	fail_list(f, p, inflight, err, now);
	fail_list(f, p, queue, err, 0);
}

static void peer_flush(struct fwd *f, struct fwd_peer *p, uint64_t now);

/* The socket is connected: the hello goes first, then the queue. */
static void peer_connected(struct fwd *f, struct fwd_peer *p, uint64_t now)
{
	if (p->state == FWD_CONNECTING)
		f->connecting--;
	p->state = FWD_OPEN;
	p->hello_off = 0;
	p->hello_wait = f->hello_len > 0;
	p->established = !p->hello_wait;
	if (p->established)
		p->backoff_ms = 0;
	peer_set_events(f, p, EPOLLIN);
	peer_flush(f, p, now);
}

static void peer_connect(struct fwd *f, struct fwd_peer *p, uint64_t now)
{
	struct epoll_event ev;
	int one = 1, fd;

	fd = socket(p->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		peer_close(f, p, -errno, true, now);
		return;
	}
	stat_add(&p->st.connects, 1);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->fd = fd;
	p->gen++;
	p->in_len = 0;
	p->state = FWD_CONNECTING;
	p->conn_deadline = now + f->connect_timeout_ms;
	f->connecting++;
	ev.events = EPOLLOUT;
	ev.data.u64 = ((uint64_t)p->index << 32) | p->gen;
	if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		peer_close(f, p, -errno, true, now);
		return;
	}
	p->ev_mask = EPOLLOUT;
	if (connect(fd, (struct sockaddr *)&p->sa, p->sa_len) == 0)
		peer_connected(f, p, now);
	else if (errno != EINPROGRESS)
		peer_close(f, p, -errno, true, now);
}

/* A connection that never got established counts as a failed connect. */
static void peer_fail(struct fwd *f, struct fwd_peer *p, int err,
		      uint64_t now)
{
	peer_close(f, p, err, !p->established, now);
}

/*
 * Writes the hello remainder, the partly written tail and queued requests,
 * as much as the socket takes. Cancelled requests met in the queue are
 * dropped unsent. Called only in FWD_OPEN.
 */
static void peer_flush(struct fwd *f, struct fwd_peer *p, uint64_t now)
{
	struct iovec iov[FWD_IOV_MAX];
	struct msghdr msg;
	struct fwd_req *r, *prev, *next;
	size_t total, left, take;
	ssize_t sent;
	int n;

	for (;;) {
		n = 0;
		total = 0;
		if (p->hello_off < f->hello_len) {
			iov[n].iov_base = f->hello + p->hello_off;
			iov[n++].iov_len = f->hello_len - p->hello_off;
		}
		r = p->inflight.tail;
		if (r && p->tail_off < r->len) {
			iov[n].iov_base = r->data + p->tail_off;
			iov[n++].iov_len = r->len - p->tail_off;
		}
		prev = NULL;
		for (r = p->queue.head; r && n < FWD_IOV_MAX; r = next) {
			next = r->next;
			if (r->cancelled) {
				queue_unlink(p, prev, r);
				drop(f, p, r);
				continue;
			}
			iov[n].iov_base = r->data;
			iov[n++].iov_len = r->len;
			prev = r;
		}
		if (n == 0)
			break;
		for (int i = 0; i < n; i++)
			total += iov[i].iov_len;

		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)n;
		sent = sendmsg(p->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (sent < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				peer_set_events(f, p, EPOLLIN | EPOLLOUT);
				return;
			}
			peer_fail(f, p, -errno, now);
			return;
		}

		/* Account what went out, in the order it was gathered. */
		left = (size_t)sent;
		if (p->hello_off < f->hello_len) {
			take = f->hello_len - p->hello_off;
			take = take < left ? take : left;
			p->hello_off += take;
			left -= take;
		}
		r = p->inflight.tail;
		if (r && p->tail_off < r->len) {
			take = r->len - p->tail_off;
			take = take < left ? take : left;
			p->tail_off += take;
			left -= take;
		}
		while (left > 0) {
			r = p->queue.head;
			queue_unlink(p, NULL, r);
			if (r->deadline == FWD_UNSTAMPED)
				r->deadline = now + f->timeout_ms;
			list_append(&p->inflight, r);
			take = r->len < left ? r->len : left;
			p->tail_off = take;
			left -= take;
		}
		if ((size_t)sent < total) {
			peer_set_events(f, p, EPOLLIN | EPOLLOUT);
			return;
		}
	}
	peer_set_events(f, p, EPOLLIN);
}

static bool reply_is_hd(const char *s, size_t len)
{
	return len >= 4 && s[0] == 'H' && s[1] == 'D' &&
	       (s[2] == '\r' || s[2] == ' ');
}

/*
 * Completes requests from the complete replies in the input buffer. Returns
 * false when the connection was closed (protocol error).
 */
static bool peer_parse(struct fwd *f, struct fwd_peer *p, uint64_t now)
{
	struct fwd_req *r;
	size_t off = 0;
	ssize_t n;

	while (off < p->in_len) {
		n = fwd_reply_len(p->in + off, p->in_len - off);
		if (n == 0)
			break;
		if (n < 0) {
			peer_fail(f, p, -EPROTO, now);
			return false;
		}
		if (p->hello_wait) {
			if (!reply_is_hd(p->in + off, (size_t)n)) {
				peer_close(f, p, -EPROTO, true, now);
				return false;
			}
			p->hello_wait = false;
			p->established = true;
			p->backoff_ms = 0;
			off += (size_t)n;
			continue;
		}
		r = p->inflight.head;
		/* A reply to nothing, or to a request not fully sent yet. */
		if (!r || (r == p->inflight.tail && p->tail_off < r->len)) {
			peer_fail(f, p, -EPROTO, now);
			return false;
		}
		list_pop(&p->inflight);
		if (!p->inflight.head)
			p->tail_off = 0;
		/* The callback may submit or cancel; neither touches 'in' or
		 * 'inflight', so the reply stays valid for the call. */
		complete(f, p, r, 0, p->in + off, (size_t)n);
		off += (size_t)n;
	}
	if (off > 0) {
		p->in_len -= off;
		memmove(p->in, p->in + off, p->in_len);
	}
	return true;
}

/* Reads what the socket has (a bounded number of rounds: level-triggered
 * epoll brings us back for the rest) and completes requests. */
static void peer_read(struct fwd *f, struct fwd_peer *p, uint64_t now)
{
	ssize_t n;
	size_t room;

	for (int round = 0; round < FWD_READ_ROUNDS; round++) {
		if (p->in_cap - p->in_len < FWD_IN_MIN_READ) {
			size_t cap = p->in_cap ? p->in_cap * 2 : FWD_IN_INIT;
			char *in;

			if (cap > FWD_IN_MAX)
				cap = FWD_IN_MAX;
			if (cap <= p->in_len) {
				/* Cannot happen for well-formed replies:
				 * fwd_reply_len bounds one reply below this. */
				peer_fail(f, p, -EPROTO, now);
				return;
			}
			in = realloc(p->in, cap);
			if (!in) {
				peer_fail(f, p, -ENOMEM, now);
				return;
			}
			p->in = in;
			p->in_cap = cap;
		}
		room = p->in_cap - p->in_len;
		n = recv(p->fd, p->in + p->in_len, room, MSG_DONTWAIT);
		if (n == 0) {
			peer_fail(f, p, -ECONNRESET, now);
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			peer_fail(f, p, -errno, now);
			return;
		}
		p->in_len += (size_t)n;
		if (!peer_parse(f, p, now))
			return;
		if ((size_t)n < room)
			break;      /* drained */
	}
	if (p->in_len == 0 && p->in_cap > FWD_IN_KEEP) {
		free(p->in);
		p->in = NULL;
		p->in_cap = 0;
	}
}

static void peer_event(struct fwd *f, struct fwd_peer *p, uint32_t events,
		       uint64_t now)
{
	if (p->state == FWD_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0)
			peer_close(f, p, -err, true, now);
		else
			peer_connected(f, p, now);
		return;
	}
	if (p->state != FWD_OPEN)
		return;
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		uint32_t gen = p->gen;

		peer_read(f, p, now);
		if (p->state != FWD_OPEN || p->gen != gen)
			return;
	}
	if (events & EPOLLOUT)
		peer_flush(f, p, now);
}

/* ---- the peer table ---------------------------------------------------------------- */

/* "a.b.c.d:port", "[v6]:port" or "v6:port" (split at the last ':'),
 * numeric only. */
static int parse_addr(const char *s, struct sockaddr_storage *ss,
		      socklen_t *sa_len)
{
	char host[FWD_ADDR_MAX];
	const char *colon, *h;
	size_t len = strlen(s), hlen;
	unsigned long port = 0;

	if (len == 0 || len >= FWD_ADDR_MAX)
		return -EINVAL;
	colon = strrchr(s, ':');
	if (!colon || colon[1] == '\0' || strlen(colon + 1) > 5)
		return -EINVAL;
	for (const char *c = colon + 1; *c; c++) {
		if (*c < '0' || *c > '9')
			return -EINVAL;
		port = port * 10 + (unsigned long)(*c - '0');
	}
	if (port == 0 || port > 65535)
		return -EINVAL;
	h = s;
	hlen = (size_t)(colon - s);
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen == 0)
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';

	memset(ss, 0, sizeof(*ss));
	if (h == s) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons((uint16_t)port);
			*sa_len = sizeof(*sin);
			return 0;
		}
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*sa_len = sizeof(*sin6);
		return 0;
	}
	return -EINVAL;
}

static struct fwd_peer *peer_find(struct fwd *f, const char *addr,
				  size_t len)
{
	uint32_t n = atomic_load_explicit(&f->npeers, memory_order_relaxed);

	if (f->last && f->last->addr_len == len &&
	    memcmp(f->last->addr, addr, len) == 0)
		return f->last;
	for (uint32_t i = 0; i < n; i++) {
		struct fwd_peer *p = f->peers[i];

		if (p->addr_len == len && memcmp(p->addr, addr, len) == 0)
			return f->last = p;
	}
	return NULL;
}

/* Finds or adds the peer. Returns 0 with *out set, or -EINVAL / -ENOMEM. */
static int peer_get(struct fwd *f, const char *addr, struct fwd_peer **out)
{
	struct fwd_peer *p;
	size_t len = strnlen(addr, FWD_ADDR_MAX);
	int rc;

	if (len >= FWD_ADDR_MAX)
		return -EINVAL;
	p = peer_find(f, addr, len);
	if (p) {
		*out = p;
		return 0;
	}

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	rc = parse_addr(addr, &p->sa, &p->sa_len);
	if (rc < 0) {
		free(p);
		return rc;
	}
	memcpy(p->addr, addr, len);
	p->addr[len] = '\0';
	p->addr_len = len;
	p->fd = -1;
	p->state = FWD_IDLE;

	pthread_mutex_lock(&f->lock);
	uint32_t n = atomic_load_explicit(&f->npeers, memory_order_relaxed);

	if (n == f->peers_cap) {
		uint32_t cap = f->peers_cap ? f->peers_cap * 2 : 16;
		struct fwd_peer **a = realloc(f->peers, cap * sizeof(*a));

		if (!a) {
			pthread_mutex_unlock(&f->lock);
			free(p);
			return -ENOMEM;
		}
		f->peers = a;
		f->peers_cap = cap;
	}
	p->index = n;
	f->peers[n] = p;
	atomic_store_explicit(&f->npeers, n + 1, memory_order_release);
	pthread_mutex_unlock(&f->lock);

	*out = f->last = p;
	return 0;
}

/* ---- public API ------------------------------------------------------------------------ */

struct fwd *fwd_create(const struct fwd_config *cfg)
{
	struct fwd *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->epfd = -1;
	f->max_pending = cfg && cfg->max_pending ? cfg->max_pending :
						   FWD_DEF_PENDING;
	f->timeout_ms = cfg && cfg->timeout_ms ? cfg->timeout_ms :
						 FWD_DEF_TIMEOUT;
	f->connect_timeout_ms = cfg && cfg->connect_timeout_ms ?
				cfg->connect_timeout_ms : FWD_DEF_CONNECT;
	if (cfg && cfg->hello && cfg->hello[0]) {
		f->hello = strdup(cfg->hello);
		if (!f->hello)
			goto fail;
		f->hello_len = strlen(f->hello);
	}
	if (pthread_mutex_init(&f->lock, NULL) != 0)
		goto fail_hello;
	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (f->epfd < 0)
		goto fail_lock;
	return f;

fail_lock:
	pthread_mutex_destroy(&f->lock);
fail_hello:
	free(f->hello);
fail:
	free(f);
	return NULL;
}

static void free_list(struct fwd_req *r)
{
	while (r) {
		struct fwd_req *next = r->next;

		free(r);
		r = next;
	}
}

void fwd_destroy(struct fwd **fp)
{
	struct fwd *f;
	uint32_t n;

	if (!fp || !*fp)
		return;
	f = *fp;
	n = atomic_load_explicit(&f->npeers, memory_order_relaxed);
	for (uint32_t i = 0; i < n; i++) {
		struct fwd_peer *p = f->peers[i];

		if (p->fd >= 0)
			close(p->fd);
		free_list(p->inflight.head);
		free_list(p->queue.head);
		free(p->in);
		free(p);
	}
	free(f->peers);
	if (f->epfd >= 0)
		close(f->epfd);
	pthread_mutex_destroy(&f->lock);
	free(f->hello);
	free(f);
	*fp = NULL;
}

int fwd_submit(struct fwd *f, const char *peer_addr, const void *req,
	       size_t len, fwd_done_fn done, void *arg,
	       struct fwd_req **handle)
{
	struct fwd_peer *p;
	struct fwd_req *r;
	int rc;

	/* One whole command: its reply is matched by position, so a caller's
	 * framing slip would shift every later reply. Cheap check, early. */
	if (!f || !peer_addr || !req || len < 2 || !done ||
	    memcmp((const char *)req + len - 2, "\r\n", 2) != 0)
		return -EINVAL;
	rc = peer_get(f, peer_addr, &p);
	if (rc < 0)
		return rc;
	if (p->npending >= f->max_pending) {
		stat_add(&p->st.rejected, 1);
		return -ENOBUFS;
	}
	r = malloc(sizeof(*r) + len);
	if (!r)
		return -ENOMEM;
	r->done = done;
	r->arg = arg;
	r->deadline = FWD_UNSTAMPED;
	r->cancelled = false;
	r->len = len;
	memcpy(r->data, req, len);
	list_append(&p->queue, r);
	if (!p->unstamped)
		p->unstamped = r;
	p->npending++;
	f->pending++;
	stat_add(&p->st.requests, 1);
	stat_set(&p->st.pending, p->npending);
	kick(f, p);
	if (handle)
		*handle = r;
	return 0;
}

void fwd_cancel(struct fwd_req *h)
{
	if (h)
		h->cancelled = true;
}

int fwd_fd(const struct fwd *f)
{
	return f->epfd;
}

bool fwd_busy(const struct fwd *f)
{
	return f->pending > 0 || f->connecting > 0 || f->kick != NULL;
}

/* New work on a peer: stamp deadlines, then fail fast (down), connect, or
 * write. */
static void peer_kicked(struct fwd *f, struct fwd_peer *p, uint64_t now)
{
	for (struct fwd_req *r = p->unstamped; r; r = r->next)
		r->deadline = now + f->timeout_ms;
	p->unstamped = NULL;
	if (!p->queue.head)
		return;
	switch (p->state) {
	case FWD_IDLE:
		if (now < p->down_until)
			fail_list(f, p, queue_detach(p), p->down_err, 0);
		else
			peer_connect(f, p, now);
		break;
	case FWD_CONNECTING:
		break;
	case FWD_OPEN:
		peer_flush(f, p, now);
		break;
	}
}

static void run_kicked(struct fwd *f, uint64_t now)
{
	struct fwd_peer *p = f->kick, *next;

	/* Peers kicked by callbacks below go on a new list, for the next
	 * pass (fwd_timeout_ms then says 0). */
	f->kick = NULL;
	for (; p; p = next) {
		next = p->kick_next;
		p->kick_next = NULL;
		p->kicked = false;
		peer_kicked(f, p, now);
	}
}

static void peer_timeouts(struct fwd *f, struct fwd_peer *p, uint64_t now)
{
	struct fwd_req *r;

	if (p->state == FWD_CONNECTING && now >= p->conn_deadline)
		peer_close(f, p, -EHOSTUNREACH, true, now);
	/* Later replies could not be matched: the connection goes. */
	if (p->inflight.head && p->inflight.head->deadline <= now)
		peer_close(f, p, -ECONNRESET, false, now);
	while ((r = p->queue.head) && r->deadline <= now) {
		queue_unlink(p, NULL, r);
		complete(f, p, r, -ETIMEDOUT, NULL, 0);
	}
}

void fwd_poll(struct fwd *f, uint64_t now_ms)
{
	struct epoll_event evs[FWD_EVENTS_MAX];
	int n;

	/* Events first: a peer that closed an idle link is seen closed before
	 * new requests are written to it. */
	n = epoll_wait(f->epfd, evs, FWD_EVENTS_MAX, 0);
	for (int i = 0; i < n; i++) {
		uint32_t idx = (uint32_t)(evs[i].data.u64 >> 32);
		uint32_t gen = (uint32_t)evs[i].data.u64;
		struct fwd_peer *p;

		if (idx >= atomic_load_explicit(&f->npeers,
						memory_order_relaxed))
			continue;
		p = f->peers[idx];
		if (p->gen != gen || p->fd < 0)
			continue;   /* an event of a socket closed since */
		peer_event(f, p, evs[i].events, now_ms);
	}

	/* Peers may be added by callbacks: re-read the count and the array. */
	for (uint32_t i = 0;
	     i < atomic_load_explicit(&f->npeers, memory_order_relaxed); i++) {
		struct fwd_peer *p = f->peers[i];

		if (p->npending > 0 || p->state == FWD_CONNECTING)
			peer_timeouts(f, p, now_ms);
	}

	run_kicked(f, now_ms);
}

int fwd_timeout_ms(const struct fwd *f, uint64_t now_ms)
{
	uint64_t best = UINT64_MAX;
	uint32_t n = atomic_load_explicit(&f->npeers, memory_order_relaxed);

	if (f->kick)
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct fwd_peer *p = f->peers[i];

		if (p->state == FWD_CONNECTING && p->conn_deadline < best)
			best = p->conn_deadline;
		if (p->inflight.head && p->inflight.head->deadline < best)
			best = p->inflight.head->deadline;
		if (p->queue.head && p->queue.head->deadline < best)
			best = p->queue.head->deadline;
	}
	if (best == UINT64_MAX)
		return -1;
	if (best <= now_ms)
		return 0;
	return best - now_ms > INT_MAX ? INT_MAX : (int)(best - now_ms);
}

/* fn runs under 'lock': it must not call fwd_submit on this forwarder (a
 * new peer would take the lock again). */
void fwd_for_each_peer(struct fwd *f, fwd_peer_fn fn, void *arg)
{
	struct fwd_peer_stats st;
	uint32_t n;

	pthread_mutex_lock(&f->lock);
	n = atomic_load_explicit(&f->npeers, memory_order_acquire);
	for (uint32_t i = 0; i < n; i++) {
		const struct fwd_peer *p = f->peers[i];

		st.requests = atomic_load_explicit(&p->st.requests,
						   memory_order_relaxed);
		st.replies = atomic_load_explicit(&p->st.replies,
						  memory_order_relaxed);
		st.errors = atomic_load_explicit(&p->st.errors,
						 memory_order_relaxed);
		st.timeouts = atomic_load_explicit(&p->st.timeouts,
						   memory_order_relaxed);
		st.rejected = atomic_load_explicit(&p->st.rejected,
						   memory_order_relaxed);
		st.connects = atomic_load_explicit(&p->st.connects,
						   memory_order_relaxed);
		st.pending = atomic_load_explicit(&p->st.pending,
						  memory_order_relaxed);
		fn(arg, p->addr, &st);
	}
	pthread_mutex_unlock(&f->lock);
}
