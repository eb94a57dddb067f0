/*
 * replication/migrate.c - the migration stream and the clean-up after it
 * (see migrate.h and control/CLUSTER.md "Migration").
 *
 * Design note
 * -----------
 * One thread per node, attached to the cache. It sleeps on a condvar until
 * migrator_apply() leaves a newer map in 'pending', then works on that map
 * alone; between every batch it looks at 'pending' again and stops when a
 * newer map means something else (a new migration id, a stable map, or
 * destroy). A map carrying the migration it is already streaming changes
 * nothing and is dropped.
 *
 * RCU. The thread is offline whenever it may block (socket I/O, sleeping,
 * the progress callback, the condvar) and online only for bounded stretches
 * that touch the cache: the one cache_for_each() pass that snapshots the
 * keys, filling one send batch (at most MIG_WINDOW lookups, values copied
 * into the send buffer, so no item pointer outlives the batch), and one
 * batch of deletes. Going offline is a quiescent state.
 *
 * Snapshot. The pass copies each moving-out key (bytes and cache_hash) into
 * a per-target list; the slow part (network, rate limit) runs afterwards on
 * the copies. The pass itself is one online stretch: about 1 s per million
 * items on the 2-core test machine (walk, ring hash, owner lookups), during
 * which grace periods, and so frees, wait. Each key is looked up again
 * right before it is sent, so a key deleted or expired meanwhile is
 * skipped and a rewritten one goes out with its newest value. The target installs with ADD semantics (ME), so a
 * newer write it already has, or a key it marked FRESH, wins (NS).
 *
 * Stream. One blocking TCP connection per target at a time, targets one
 * after another. Up to MIG_WINDOW 'ms' requests are in flight; replies come
 * back in order (no q flag), so a FIFO of in-flight keys matches them. On
 * any connection failure the in-flight keys go back to pending and the
 * connection is reopened; resending is harmless (ADD). A target that
 * answers nothing for target_giveup_ms (no reply, refused connects) is
 * given up and counted in failed_targets: its items are lost with it.
 *
 * Rate. A token bucket on key+value bytes, refilled at rate_bytes_per_s,
 * holding at most 20 ms of rate (>= 16 KiB). A request is sent while the
 * bucket is not negative and may take it below zero, so one large value
 * never stalls and the long-run rate holds.
 *
 * Clean-up. On a stable map every key whose owner is another node is
 * collected in one pass and deleted in batches of MIG_DROP_BATCH, paced to
 * MIG_DROP_PER_S, so the serving threads barely notice it.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "replication/forward.h"
#include "replication/migrate.h"

#define MIG_WINDOW            64u
#define MIG_SBUF_SOFT         (256u << 10)  /* stop filling a batch past this */
#define MIG_RBUF              (64u << 10)   /* replies; a line is < 8 KiB */
#define MIG_IO_TIMEOUT_MS     1000u         /* SO_SNDTIMEO/SO_RCVTIMEO, reply wait */
#define MIG_POLL_SLICE_MS     100u          /* stop checks while waiting */
#define MIG_RETRY_MS          100u          /* between connect attempts */
#define MIG_REPORT_MS         200u
#define MIG_BUCKET_MS         20u
#define MIG_BUCKET_MIN        (16u << 10)
#define MIG_DEFAULT_RATE      (64ull << 20)
#define MIG_DEFAULT_GIVEUP_MS 10000u
#define MIG_DROP_PER_S        100000u
#define MIG_DROP_BATCH        1000u
/* "ms " + base64 key (336) + " " + len + " b F.. T.. ME\r\n", rounded up */
#define MIG_LINE_MAX          448u

enum mig_key_state {
	MIG_KEY_PENDING = 0,
	MIG_KEY_INFLIGHT,
	MIG_KEY_DONE,          /* acknowledged, refused, or skipped */
};

/* A copied key. Its bytes live in the owning list's arena at 'off'. */
struct mig_key {
	uint64_t hash;         /* cache_hash */
	uint32_t off;
	uint8_t nkey;
	uint8_t state;         /* enum mig_key_state */
};

struct mig_keys {
	struct mig_key *v;
	size_t n, cap;
	char *arena;
	size_t alen, acap;
};

struct migrator {
	struct migrate_config cfg;
	char self[MAP_ID_MAX];
	pthread_t thread;

	pthread_mutex_t lock;          /* guards the fields below */
	pthread_cond_t cond;
	struct shard_map *pending;     /* newest map not yet taken by the thread */
	bool stop;
	int start_err;                 /* thread start: 1 = not yet, 0 ok, -errno */
	struct migrate_progress progress;  /* last one published */

	uint64_t dropped;              /* atomic */

	/* Thread-only state. */
	struct cache_thread *t;
	struct migrate_progress p;     /* the migration being streamed */
	uint64_t last_report_us;
	uint64_t done_migration;       /* last migration reported done */
};

/* ---- small helpers ------------------------------------------------------ */

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = {
		.tv_sec = (time_t)(us / 1000000u),
		.tv_nsec = (long)(us % 1000000u) * 1000,
	};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void keys_free(struct mig_keys *k)
{
	free(k->v);
	free(k->arena);
	memset(k, 0, sizeof(*k));
}

/* Appends a copy of the item's key. 0 or -ENOMEM. */
static int keys_push(struct mig_keys *k, const struct cache_item *it)
{
	struct mig_key *e;

	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 256;
		struct mig_key *v = realloc(k->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		k->v = v;
		k->cap = cap;
	}
	if (k->alen + it->nkey > k->acap) {
		size_t cap = k->acap ? k->acap * 2 : 8192;
		char *a;

		if (cap > UINT32_MAX)   /* offsets are 32-bit */
			return -ENOMEM;
		a = realloc(k->arena, cap);
		if (a == NULL)
			return -ENOMEM;
		k->arena = a;
		k->acap = cap;
	}
	e = &k->v[k->n++];
	e->off = (uint32_t)k->alen;
	e->nkey = it->nkey;
	e->state = MIG_KEY_PENDING;
	e->hash = cache_hash(cache_item_key(it), it->nkey);
	memcpy(k->arena + k->alen, cache_item_key(it), it->nkey);
	k->alen += it->nkey;
	return 0;
}

static inline const char *key_bytes(const struct mig_keys *k,
				    const struct mig_key *e)
{
	return k->arena + e->off;
}

/*
 * Whether the thread must drop what it is doing: destroy, or a pending map
 * that means something else. A pending map of the migration being streamed
 * ('cur', non-zero) is the same plan; it is dropped here.
 */
static bool mig_superseded(struct migrator *m, uint64_t cur)
{
	struct shard_map *same = NULL;
	bool r;

	pthread_mutex_lock(&m->lock);
	if (m->pending != NULL && cur != 0 && m->pending->migration == cur) {
		same = m->pending;
		m->pending = NULL;
	}
	r = m->stop || m->pending != NULL;
	pthread_mutex_unlock(&m->lock);
	map_unref(same);
	return r;
}

/* Publishes m->p; calls the callback unless throttled. Thread offline. */
static void mig_report(struct migrator *m, bool force)
{
	uint64_t now = now_us();

	if (!force && now - m->last_report_us < MIG_REPORT_MS * 1000u)
		return;
	m->last_report_us = now;
	pthread_mutex_lock(&m->lock);
	m->progress = m->p;
	pthread_mutex_unlock(&m->lock);
	if (m->cfg.progress != NULL)
		m->cfg.progress(m->cfg.arg, &m->p);
}

/* ---- snapshot passes ---------------------------------------------------- */

struct mig_collect {
	const struct shard_map *map;
	const char *self;
	struct mig_keys *lists;        /* moving: one per map->nodes index; drop: one */
	bool oom;
};

/* Moving out: prev owner is self, new owner is another node. */
static void collect_moving(void *arg, const struct cache_item *it)
{
	struct mig_collect *c = arg;
	uint32_t rh = ring_hash(cache_item_key(it), it->nkey);
	const struct map_node *from = map_prev_owner(c->map, rh);
	const struct map_node *to;

	if (c->oom || from == NULL || strcmp(from->id, c->self) != 0)
		return;
	to = map_owner(c->map, rh);
	if (to == NULL || strcmp(to->id, c->self) == 0)
		return;
	if (keys_push(&c->lists[to - c->map->nodes], it) != 0)
		c->oom = true;
}

/* Not ours: the ring has an owner and it is another node. */
static void collect_foreign(void *arg, const struct cache_item *it)
{
	struct mig_collect *c = arg;
	const struct map_node *o =
		map_owner(c->map, ring_hash(cache_item_key(it), it->nkey));

	if (c->oom || o == NULL || strcmp(o->id, c->self) == 0)
		return;
	if (keys_push(&c->lists[0], it) != 0)
		c->oom = true;
}

/* ---- connection ---------------------------------------------------------- */

static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return (errno == EAGAIN || errno == EWOULDBLOCK) ?
				-ETIMEDOUT : -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Opens a blocking connection to "host:port" with 1 s send/receive
 * timeouts (connect included). fd or -errno. */
static int mig_dial(const char *addr)
{
	char host[MAP_ADDR_MAX], *port;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct timeval tv = {
		.tv_sec = MIG_IO_TIMEOUT_MS / 1000,
		.tv_usec = (MIG_IO_TIMEOUT_MS % 1000) * 1000,
	};
	int fd = -1, err = -EHOSTUNREACH, one = 1;
	size_t hl;

	if (strlen(addr) >= sizeof(host))
		return -EINVAL;
	strcpy(host, addr);
	port = strrchr(host, ':');
	if (port == NULL || port == host || port[1] == '\0')
		return -EINVAL;
	*port++ = '\0';
	hl = strlen(host);
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {  /* [v6]:port */
		host[hl - 1] = '\0';
		memmove(host, host + 1, hl - 1);
	}
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -EHOSTUNREACH;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = (errno == EINPROGRESS) ? -ETIMEDOUT : -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : err;
}

/* Sends the hello and waits for "HD". 0 or -errno (-EPROTO: other reply). */
static int mig_hello(int fd, const char *self)
{
	char buf[512];
	size_t len = 0;
	ssize_t n;
	int rc;

	n = snprintf(buf, sizeof(buf), "dpc_peer %s migrate\r\n", self);
	rc = send_all(fd, buf, (size_t)n);
	if (rc != 0)
		return rc;
	for (;;) {
		n = fwd_reply_len(buf, len);
		if (n < 0)
			return -EPROTO;
		if (n > 0)
			break;
		if (len == sizeof(buf))
			return -EPROTO;
		n = recv(fd, buf + len, sizeof(buf) - len, 0);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return (errno == EAGAIN || errno == EWOULDBLOCK) ?
				-ETIMEDOUT : -errno;
		len += (size_t)n;
	}
	/* Nothing may follow the hello's reply: we have sent nothing else. */
	if ((size_t)n != len || n != 4 || memcmp(buf, "HD\r\n", 4) != 0)
		return -EPROTO;
	return 0;
}

/* ---- the stream to one target ------------------------------------------- */

struct mig_inflight {
	uint32_t idx;          /* into keys->v */
	uint32_t nbytes;       /* value bytes, for bytes_sent */
};

struct mig_stream {
	struct migrator *m;
	struct mig_keys *keys;
	const char *addr;
	uint64_t migration;
	int fd;
	char *sbuf;
	size_t slen, scap;
	char *rbuf;
	size_t rlen;
	struct mig_inflight fifo[MIG_WINDOW];
	unsigned head, count;
	size_t next;           /* next key to consider sending */
	size_t low;            /* every key before it is DONE */
	size_t remaining;      /* keys not DONE */
	int64_t tokens;        /* bytes; may go negative */
	int64_t bucket;        /* cap */
	uint64_t rate;         /* bytes per second */
	uint64_t refill_us;
	uint64_t last_ok_us;   /* stream start or last reply: give-up clock */
};

static void bucket_refill(struct mig_stream *s)
{
	uint64_t now = now_us();
	uint64_t add = (now - s->refill_us) * s->rate / 1000000u;

	if (add == 0)
		return;            /* keep the remainder accruing */
	s->refill_us = now;
	s->tokens = (s->tokens + (int64_t)add > s->bucket) ?
		s->bucket : s->tokens + (int64_t)add;
}

static void key_done(struct mig_stream *s, struct mig_key *e)
{
	e->state = MIG_KEY_DONE;
	s->remaining--;
	while (s->low < s->keys->n && s->keys->v[s->low].state == MIG_KEY_DONE)
		s->low++;
}

/* Closes the connection; in-flight keys go back to pending. */
static void stream_reset(struct mig_stream *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	while (s->count > 0) {
		s->keys->v[s->fifo[s->head].idx].state = MIG_KEY_PENDING;
		s->head = (s->head + 1) % MIG_WINDOW;
		s->count--;
	}
	s->head = 0;
	s->next = s->low;
	s->slen = 0;
	s->rlen = 0;
}

static bool sbuf_reserve(struct mig_stream *s, size_t need)
{
	size_t cap;
	char *p;

	if (s->slen + need <= s->scap)
		return true;
	cap = s->scap ? s->scap : 64u << 10;
	while (cap < s->slen + need)
		cap *= 2;
	p = realloc(s->sbuf, cap);
	if (p == NULL)
		return false;
	s->sbuf = p;
	s->scap = cap;
	return true;
}

static size_t base64_encode(const char *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	return o;
}

/* Keys from the binary protocol may hold bytes a meta line cannot carry. */
static bool key_is_text(const char *key, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)key[i] <= ' ' || (unsigned char)key[i] == 0x7f)
			return false;
	return true;
}

/*
 * Appends one 'ms' for the live item, value copied. TTL: remaining seconds
 * (memcached reads up to 30 days as relative); a longer one goes as the
 * absolute Unix time the cache clock already keeps.
 */
static bool stream_append(struct mig_stream *s, const struct cache_item *it)
{
	char kb[MIG_LINE_MAX];
	uint32_t exp = cache_item_exptime(it), now = cache_clock_now();
	uint32_t ttl = 0;
	size_t klen;
	bool text = key_is_text(cache_item_key(it), it->nkey);
	int n;

	if (exp != 0) {
		ttl = exp > now ? exp - now : 1;
		if (ttl > CACHE_REALTIME_MAXDELTA)
			ttl = exp;
	}
	if (!sbuf_reserve(s, MIG_LINE_MAX + it->nbytes + 2))
		return false;
	if (text) {
		memcpy(kb, cache_item_key(it), it->nkey);
		klen = it->nkey;
	} else {
		klen = base64_encode(cache_item_key(it), it->nkey, kb);
	}
	n = snprintf(s->sbuf + s->slen, MIG_LINE_MAX, "ms %.*s %u%s F%u T%u ME\r\n",
		     (int)klen, kb, it->nbytes, text ? "" : " b",
		     it->client_flags, ttl);
	s->slen += (size_t)n;
	memcpy(s->sbuf + s->slen, cache_item_value_const(it), it->nbytes);
	s->slen += it->nbytes;
	memcpy(s->sbuf + s->slen, "\r\n", 2);
	s->slen += 2;
	return true;
}

/*
 * Online: looks up the next pending keys and copies them into the send
 * buffer, while the window, the soft buffer limit and the bucket allow.
 * Keys gone or expired are skipped (counted).
 */
static void stream_fill(struct mig_stream *s)
{
	struct migrator *m = s->m;
	const struct cache_read_opts ro = { .no_bump = true };

	cache_thread_online(m->t);
	while (s->count < MIG_WINDOW && s->next < s->keys->n &&
	       s->slen < MIG_SBUF_SOFT && s->tokens >= 0) {
		uint32_t idx = (uint32_t)s->next++;
		struct mig_key *e = &s->keys->v[idx];
		const struct cache_item *it;
		struct mig_inflight *f;

		if (e->state != MIG_KEY_PENDING)
			continue;
		it = cache_get(m->t, key_bytes(s->keys, e), e->nkey, e->hash,
			       &ro, NULL);
		if (it == NULL) {
			m->p.keys_skipped++;
			key_done(s, e);
			continue;
		}
		if (!stream_append(s, it)) {
			m->p.errors++;          /* no memory for the value */
			key_done(s, e);
			continue;
		}
		s->tokens -= (int64_t)(e->nkey + it->nbytes);
		f = &s->fifo[(s->head + s->count) % MIG_WINDOW];
		f->idx = idx;
		f->nbytes = it->nbytes;
		s->count++;
		e->state = MIG_KEY_INFLIGHT;
	}
	cache_thread_offline(m->t);
}

static bool reply_is_ok(const char *r, size_t len)
{
	return len >= 4 && (memcmp(r, "HD", 2) == 0 || memcmp(r, "NS", 2) == 0) &&
	       (r[2] == '\r' || r[2] == ' ');
}

/*
 * Reads what the target sent (waiting up to MIG_IO_TIMEOUT_MS if 'wait'),
 * and completes the replies in it. 0, or -errno: the connection is unusable.
 */
static int stream_read(struct mig_stream *s, bool wait)
{
	uint64_t deadline = now_us() + MIG_IO_TIMEOUT_MS * 1000u;
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	ssize_t n;

	for (;;) {
		n = recv(s->fd, s->rbuf + s->rlen, MIG_RBUF - s->rlen, MSG_DONTWAIT);
		if (n > 0)
			break;
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if (!wait)
			return 0;
		if (now_us() >= deadline)
			return -ETIMEDOUT;
		if (mig_superseded(s->m, s->migration))
			return 0;      /* the caller sees it too and stops */
		poll(&pfd, 1, MIG_POLL_SLICE_MS);
	}
	s->rlen += (size_t)n;
	for (;;) {
		ssize_t r = fwd_reply_len(s->rbuf, s->rlen);
		struct mig_inflight *f;
		struct mig_key *e;

		if (r < 0)
			return -EPROTO;
		if (r == 0)
			break;
		if (s->count == 0)
			return -EPROTO;            /* a reply nobody asked for */
		f = &s->fifo[s->head];
		e = &s->keys->v[f->idx];
		if (reply_is_ok(s->rbuf, (size_t)r)) {
			s->m->p.keys_sent++;
			s->m->p.bytes_sent += f->nbytes;
		} else {
			s->m->p.errors++;
		}
		key_done(s, e);
		s->head = (s->head + 1) % MIG_WINDOW;
		s->count--;
		s->last_ok_us = now_us();
		memmove(s->rbuf, s->rbuf + r, s->rlen - (size_t)r);
		s->rlen -= (size_t)r;
	}
	if (s->rlen == MIG_RBUF)
		return -EPROTO;
	return 0;
}

/*
 * Streams every pending key of one target. 0 when all are done,
 * -ETIMEDOUT when the target was given up, -ECANCELED when superseded.
 * Thread offline on entry and exit.
 */
static int stream_target(struct mig_stream *s)
{
	struct migrator *m = s->m;
	uint64_t giveup_us = (uint64_t)m->cfg.target_giveup_ms * 1000u;
	int rc;

	s->last_ok_us = now_us();
	while (s->remaining > 0) {
		if (mig_superseded(m, s->migration))
			return -ECANCELED;
		mig_report(m, false);
		if (s->fd < 0) {
			if (now_us() - s->last_ok_us >= giveup_us)
				return -ETIMEDOUT;
			s->fd = mig_dial(s->addr);
			if (s->fd >= 0 && mig_hello(s->fd, m->self) != 0)
				stream_reset(s);
			if (s->fd < 0) {
				sleep_us(MIG_RETRY_MS * 1000u);
				continue;
			}
		}
		bucket_refill(s);
		if (s->count < MIG_WINDOW && s->next < s->keys->n && s->tokens >= 0) {
			stream_fill(s);
			rc = send_all(s->fd, s->sbuf, s->slen);
			s->slen = 0;
			if (rc == 0)
				rc = stream_read(s, false);
		} else if (s->count > 0) {
			rc = stream_read(s, true);
		} else if (s->next < s->keys->n) {
			/* Bucket in debt: wait for it (in slices, to stay stoppable). */
			uint64_t us = (uint64_t)(-s->tokens) * 1000000u / s->rate + 1;

			sleep_us(us < MIG_POLL_SLICE_MS * 1000u ?
				 us : MIG_POLL_SLICE_MS * 1000u);
			rc = 0;
		} else {
			/* Everything sent is answered, and nothing is pending,
			 * yet keys remain: cannot happen; stop rather than spin. */
			break;
		}
		if (rc != 0)
			stream_reset(s);
	}
	return 0;
}

/* ---- migration ----------------------------------------------------------- */

static void run_migration(struct migrator *m, struct shard_map *map)
{
	struct mig_collect c = { .map = map, .self = m->self };
	struct mig_stream s = { .m = m, .migration = map->migration, .fd = -1 };
	bool cancelled = false;

	/* Every node reports, sources or not (a node with nothing to send
	 * reports done with zero keys at once), so whoever waits for the
	 * progress records may wait for any set of nodes. */
	memset(&m->p, 0, sizeof(m->p));
	m->p.migration = map->migration;
	c.lists = calloc(map->nnodes ? map->nnodes : 1, sizeof(*c.lists));
	s.rbuf = malloc(MIG_RBUF);
	if (c.lists == NULL || s.rbuf == NULL) {
		fprintf(stderr, "migrate: migration %llu: no memory for the "
			"snapshot\n", (unsigned long long)map->migration);
		goto out;
	}
	if (map->prev_ring != NULL && map->ring != NULL) {
		cache_thread_online(m->t);
		cache_for_each(m->t, collect_moving, &c);
		cache_thread_offline(m->t);
	}
	if (c.oom)
		fprintf(stderr, "migrate: migration %llu: out of memory while "
			"taking the snapshot; the keys not copied are not sent\n",
			(unsigned long long)map->migration);
	for (unsigned i = 0; i < map->nnodes; i++)
		m->p.keys_total += c.lists[i].n;
	mig_report(m, true);

	s.rate = m->cfg.rate_bytes_per_s;
	s.bucket = (int64_t)(s.rate * MIG_BUCKET_MS / 1000u);
	if (s.bucket < (int64_t)MIG_BUCKET_MIN)
		s.bucket = MIG_BUCKET_MIN;
	s.tokens = s.bucket;
	s.refill_us = now_us();
	for (unsigned i = 0; i < map->nnodes && !cancelled; i++) {
		if (c.lists[i].n == 0)
			continue;
		s.keys = &c.lists[i];
		s.addr = map->nodes[i].addr;
		s.next = s.low = 0;
		s.remaining = c.lists[i].n;
		s.head = s.count = 0;
		s.slen = s.rlen = 0;
		switch (stream_target(&s)) {
		case -ETIMEDOUT:
			fprintf(stderr, "migrate: migration %llu: target %s (%s) "
				"unreachable for %u ms, given up\n",
				(unsigned long long)map->migration,
				map->nodes[i].id, s.addr, m->cfg.target_giveup_ms);
			m->p.failed_targets++;
			break;
		case -ECANCELED:
			cancelled = true;
			break;
		}
		if (s.fd >= 0)
			close(s.fd);
		s.fd = -1;
	}
out:
	if (!cancelled) {
		m->p.done = true;
		m->done_migration = map->migration;
	}
	mig_report(m, true);
	if (c.lists != NULL)
		for (unsigned i = 0; i < map->nnodes; i++)
			keys_free(&c.lists[i]);
	free(c.lists);
	free(s.sbuf);
	free(s.rbuf);
}

/* ---- clean-up after a migration ----------------------------------------- */

static void run_drop(struct migrator *m, struct shard_map *map)
{
	struct mig_keys keys = { 0 };
	struct mig_collect c = { .map = map, .self = m->self, .lists = &keys };
	uint64_t start, deleted = 0;
	size_t i = 0;

	if (map->ring == NULL || ring_nservers(map->ring) == 0)
		return;                /* nobody owns anything: keep it all */
	cache_thread_online(m->t);
	cache_for_each(m->t, collect_foreign, &c);
	cache_thread_offline(m->t);
	start = now_us();
	while (i < keys.n) {
		size_t end = i + MIG_DROP_BATCH < keys.n ? i + MIG_DROP_BATCH : keys.n;
		uint64_t due;

		if (mig_superseded(m, 0))
			break;
		cache_thread_online(m->t);
		for (; i < end; i++) {
			struct mig_key *e = &keys.v[i];

			if (cache_delete(m->t, key_bytes(&keys, e), e->nkey,
					 e->hash, 0) == CACHE_OK)
				deleted++;
		}
		cache_thread_offline(m->t);
		__atomic_fetch_add(&m->dropped, deleted, __ATOMIC_RELAXED);
		deleted = 0;
		/* Pace: batch k may end no sooner than k batches' worth of time. */
		due = start + (uint64_t)i * 1000000u / MIG_DROP_PER_S;
		if (i < keys.n && now_us() < due)
			sleep_us(due - now_us());
	}
	keys_free(&keys);
}

/* ---- the thread ----------------------------------------------------------- */

static void *mig_main(void *arg)
{
	struct migrator *m = arg;
	struct shard_map *map;

	m->t = cache_thread_attach(m->cfg.cache);
	pthread_mutex_lock(&m->lock);
	m->start_err = m->t ? 0 : -EBUSY;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (m->t == NULL)
		return NULL;
	cache_thread_offline(m->t);
	for (;;) {
		pthread_mutex_lock(&m->lock);
		while (!m->stop && m->pending == NULL)
			pthread_cond_wait(&m->cond, &m->lock);
		map = m->pending;
		m->pending = NULL;
		if (m->stop) {
			pthread_mutex_unlock(&m->lock);
			map_unref(map);
			break;
		}
		pthread_mutex_unlock(&m->lock);
		if (map->migration == 0)
			run_drop(m, map);
		else if (map->phase == MAP_PHASE_PREPARE)
			;   /* keys still route to their old owners: wait */
		else if (map->migration != m->done_migration)
			run_migration(m, map);
		map_unref(map);
	}
	cache_thread_online(m->t);
	cache_thread_detach(&m->t);
	return NULL;
}

struct migrator *migrator_create(const struct migrate_config *cfg)
{
	struct migrator *m;
	int err;

	if (cfg == NULL || cfg->cache == NULL || cfg->self_id == NULL ||
	    strlen(cfg->self_id) >= MAP_ID_MAX)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->cfg = *cfg;
	strcpy(m->self, cfg->self_id);
	m->cfg.self_id = m->self;
	if (m->cfg.rate_bytes_per_s == 0)
		m->cfg.rate_bytes_per_s = MIG_DEFAULT_RATE;
	if (m->cfg.target_giveup_ms == 0)
		m->cfg.target_giveup_ms = MIG_DEFAULT_GIVEUP_MS;
	m->start_err = 1;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	if (pthread_create(&m->thread, NULL, mig_main, m) != 0)
		goto fail;
	pthread_mutex_lock(&m->lock);
	while (m->start_err == 1)
		pthread_cond_wait(&m->cond, &m->lock);
	err = m->start_err;
	pthread_mutex_unlock(&m->lock);
	if (err != 0) {
		pthread_join(m->thread, NULL);
		goto fail;
	}
	return m;
fail:
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	free(m);
	return NULL;
}

void migrator_destroy(struct migrator **mp)
{
	struct migrator *m;

	if (mp == NULL || *mp == NULL)
		return;
	m = *mp;
	*mp = NULL;
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->thread, NULL);
	map_unref(m->pending);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void migrator_apply(struct migrator *m, struct shard_map *map)
{
	struct shard_map *old;

	if (m == NULL || map == NULL)
		return;
	map_ref(map);
	pthread_mutex_lock(&m->lock);
	old = m->pending;
	m->pending = map;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	map_unref(old);
}

void migrator_progress(struct migrator *m, struct migrate_progress *out)
{
	pthread_mutex_lock(&m->lock);
	*out = m->progress;
	pthread_mutex_unlock(&m->lock);
}

uint64_t migrator_dropped(struct migrator *m)
{
	return __atomic_load_n(&m->dropped, __ATOMIC_RELAXED);
}
