/*
 * tests/replication/test_forward.c - the node-to-node forwarder against a
 * tiny fake meta server on a loopback thread: pipelining, the hello line,
 * binary values, replies split at every byte, timeouts and reconnects,
 * refused peers and their backoff (on a virtual clock), bounded queues,
 * cancel, garbage, a peer closing mid-reply, many peers, callbacks that
 * submit and cancel; and fwd_reply_len on its own.
 *
 * The fake server understands: the hello ("dpc_peer ..."), "mn", "ms <key>
 * <n>" + data, and "mg <key> v", where some keys ask for a behaviour:
 * slow<N> (sleep N ms, then EN), garbage (answer "BOGUS"), close (close
 * without answering), halfva (half a VA reply, then close), drip (the
 * stored value of "drip", one byte per send), echo* (VA with the key as
 * value), big<N> (VA with N bytes of a pattern). Other keys answer the stored value or EN.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "replication/forward.h"

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Waits on the forwarder's fd, at most its next deadline or 5 ms. */
static void wait_fwd(struct fwd *f)
{
	struct pollfd pfd = { .fd = fwd_fd(f), .events = POLLIN };
	int t = fwd_timeout_ms(f, mono_ms());

	if (t < 0 || t > 5)
		t = 5;
	poll(&pfd, 1, t);
}

/* Polls on the real clock until cond holds; fails the test after max_ms. */
#define DRIVE(f, cond, max_ms) do {                                     \
	uint64_t end_ = mono_ms() + (max_ms);                           \
	for (;;) {                                                      \
		fwd_poll((f), mono_ms());                               \
		if (cond)                                               \
			break;                                          \
		assert_true(mono_ms() < end_);                          \
		wait_fwd(f);                                            \
	}                                                               \
} while (0)

/* The same with a frozen (virtual) clock 'now'. */
#define DRIVE_AT(f, now, cond, max_ms) do {                             \
	uint64_t end_ = mono_ms() + (max_ms);                           \
	for (;;) {                                                      \
		fwd_poll((f), (now));                                   \
		if (cond)                                               \
			break;                                          \
		assert_true(mono_ms() < end_);                          \
		wait_fwd(f);                                            \
	}                                                               \
} while (0)

/* Completions, in the order they came. */
#define REC_MAX 2048
struct rec {
	int n;
	int id[REC_MAX];
	int err[REC_MAX];
	char *reply[REC_MAX];
	size_t len[REC_MAX];
};

struct tag {
	struct rec *rec;
	int id;
};

static void on_done(void *arg, int err, const char *reply, size_t len)
{
	struct tag *t = arg;
	struct rec *r = t->rec;
	int i = r->n++;

	assert_true(i < REC_MAX);
	r->id[i] = t->id;
	r->err[i] = err;
	r->len[i] = len;
	r->reply[i] = NULL;
	if (err == 0) {
		assert_non_null(reply);
		r->reply[i] = malloc(len + 1);
		memcpy(r->reply[i], reply, len);
		r->reply[i][len] = '\0';
	}
}

static struct rec *rec_new(void)
{
	struct rec *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	return r;
}

static void rec_free(struct rec *r)
{
	for (int i = 0; i < r->n; i++)
		free(r->reply[i]);
	free(r);
}

static int submit_str(struct fwd *f, const char *peer, const char *req,
		      struct tag *t, struct fwd_req **h)
{
	return fwd_submit(f, peer, req, strlen(req), on_done, t, h);
}

struct stats_find {
	const char *addr;
	struct fwd_peer_stats st;
	int peers;
	bool found;
};

static void stats_cb(void *arg, const char *addr,
		     const struct fwd_peer_stats *st)
{
	struct stats_find *s = arg;

	s->peers++;
	if (s->addr && strcmp(addr, s->addr) == 0) {
		s->st = *st;
		s->found = true;
	}
}

static struct fwd_peer_stats peer_stats(struct fwd *f, const char *addr)
{
	struct stats_find s = { .addr = addr };

	fwd_for_each_peer(f, stats_cb, &s);
	assert_true(s.found);
	return s.st;
}

/* ---- the fake meta server ------------------------------------------------------ */

#define FAKE_CONNS 32
#define FAKE_KEYS  16

struct fake_conn {
	int fd;
	bool seen_first;
	size_t len;
	char in[1 << 16];
};

struct fake {
	int lfd;
	char addr[64];
	pthread_t thread;
	int wake[2];
	bool accepting;              /* false: listen, never accept */
	const char *hello_reply;
	struct fake_conn *conns[FAKE_CONNS];
	char keys[FAKE_KEYS][64];
	char *vals[FAKE_KEYS];
	size_t vlens[FAKE_KEYS];
	int nkeys;

	pthread_mutex_t lock;        /* the fields below, read by the test */
	int connections;             /* accepted */
	int requests;                /* commands other than the hello */
	int max_batch;               /* most commands from one recv() */
	char first_line[128];        /* of the latest connection */
};

static int fake_get(struct fake *s, int *field)
{
	int v;

	pthread_mutex_lock(&s->lock);
	v = *field;
	pthread_mutex_unlock(&s->lock);
	return v;
}

static void fake_send(int fd, const void *buf, size_t n)
{
	const char *b = buf;

	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;     /* the client went away: fine for a fake */
		b += w;
		n -= (size_t)w;
	}
}

static int fake_find(struct fake *s, const char *key)
{
	for (int i = 0; i < s->nkeys; i++)
		if (strcmp(s->keys[i], key) == 0)
			return i;
	return -1;
}

static void fake_send_va(int fd, const char *data, size_t n, bool drip)
{
	char head[64];
	int hl = snprintf(head, sizeof(head), "VA %zu\r\n", n);
	size_t total = (size_t)hl + n + 2;
	char *out = malloc(total);

	memcpy(out, head, (size_t)hl);
	memcpy(out + hl, data, n);
	memcpy(out + hl + n, "\r\n", 2);
	if (drip) {
		for (size_t i = 0; i < total; i++) {
			fake_send(fd, out + i, 1);
			sleep_ms(1);
		}
	} else {
		fake_send(fd, out, total);
	}
	free(out);
}

/* One command from buf, the batch-th complete one of this recv(): bytes
 * consumed, 0 when incomplete, -1 to close. Counters are updated before
 * the reply goes out, so a test that saw the reply sees them. */
static ssize_t fake_command(struct fake *s, struct fake_conn *c,
			    const char *buf, size_t len, int batch)
{
	const char *nl = memmem(buf, len, "\r\n", 2);
	char cmd[256], key[64];
	size_t line, n;
	int k;

	if (!nl)
		return 0;
	line = (size_t)(nl - buf) + 2;
	n = line - 2 < sizeof(cmd) - 1 ? line - 2 : sizeof(cmd) - 1;
	memcpy(cmd, buf, n);
	cmd[n] = '\0';

	if (strncmp(cmd, "ms ", 3) == 0) {
		if (sscanf(cmd, "ms %63s %zu", key, &n) != 2)
			return -1;
		if (len < line + n + 2)
			return 0;
	}
	if (!c->seen_first) {
		c->seen_first = true;
		pthread_mutex_lock(&s->lock);
		snprintf(s->first_line, sizeof(s->first_line), "%.127s", cmd);
		pthread_mutex_unlock(&s->lock);
	}
	if (strncmp(cmd, "dpc_peer ", 9) == 0) {
		fake_send(c->fd, s->hello_reply, strlen(s->hello_reply));
		return (ssize_t)line;
	}
	pthread_mutex_lock(&s->lock);
	s->requests++;
	if (batch > s->max_batch)
		s->max_batch = batch;
	pthread_mutex_unlock(&s->lock);

	if (strcmp(cmd, "mn") == 0) {
		fake_send(c->fd, "MN\r\n", 4);
	} else if (strncmp(cmd, "ms ", 3) == 0) {
		k = fake_find(s, key);
		if (k < 0) {
			assert_true(s->nkeys < FAKE_KEYS);
			k = s->nkeys++;
			snprintf(s->keys[k], sizeof(s->keys[k]), "%s", key);
		}
		free(s->vals[k]);
		s->vals[k] = malloc(n ? n : 1);
		memcpy(s->vals[k], buf + line, n);
		s->vlens[k] = n;
		fake_send(c->fd, "HD\r\n", 4);
		return (ssize_t)(line + n + 2);
	} else if (sscanf(cmd, "mg %63s", key) == 1) {
		unsigned ms;

		if (sscanf(key, "slow%u", &ms) == 1) {
			sleep_ms(ms);
			fake_send(c->fd, "EN\r\n", 4);
		} else if (strcmp(key, "garbage") == 0) {
			fake_send(c->fd, "BOGUS\r\n", 7);
		} else if (strcmp(key, "close") == 0) {
			return -1;
		} else if (strcmp(key, "halfva") == 0) {
			fake_send(c->fd, "VA 10\r\n01234", 12);
			return -1;
		} else if (sscanf(key, "big%zu", &n) == 1) {
			char *v = malloc(n);

			for (size_t i = 0; i < n; i++)
				v[i] = (char)('a' + i % 23);
			fake_send_va(c->fd, v, n, false);
			free(v);
		} else if (strncmp(key, "echo", 4) == 0) {
			fake_send_va(c->fd, key, strlen(key), false);
		} else if ((k = fake_find(s, key)) >= 0) {
			fake_send_va(c->fd, s->vals[k], s->vlens[k],
				     strcmp(key, "drip") == 0);
		} else {
			fake_send(c->fd, "EN\r\n", 4);
		}
	} else {
		fake_send(c->fd, "ERROR\r\n", 7);
	}
	return (ssize_t)line;
}

static void fake_close_conn(struct fake *s, int i)
{
	close(s->conns[i]->fd);
	free(s->conns[i]);
	s->conns[i] = NULL;
}

static void fake_serve_conn(struct fake *s, int i)
{
	struct fake_conn *c = s->conns[i];
	ssize_t n = recv(c->fd, c->in + c->len, sizeof(c->in) - c->len, 0);
	size_t off = 0;
	int batch = 0;

	if (n <= 0) {
		fake_close_conn(s, i);
		return;
	}
	c->len += (size_t)n;
	for (;;) {
		ssize_t used = fake_command(s, c, c->in + off, c->len - off,
					    batch + 1);

		if (used < 0) {
			fake_close_conn(s, i);
			return;
		}
		if (used == 0)
			break;
		off += (size_t)used;
		batch++;
	}
	memmove(c->in, c->in + off, c->len - off);
	c->len -= off;
}

static void *fake_main(void *arg)
{
	struct fake *s = arg;
	struct pollfd pfd[2 + FAKE_CONNS];
	int who[2 + FAKE_CONNS];

	for (;;) {
		int n = 0;

		pfd[n].fd = s->wake[0];
		pfd[n++].events = POLLIN;
		pfd[n].fd = s->accepting ? s->lfd : -1;
		pfd[n++].events = POLLIN;
		for (int i = 0; i < FAKE_CONNS; i++) {
			if (!s->conns[i])
				continue;
			who[n] = i;
			pfd[n].fd = s->conns[i]->fd;
			pfd[n++].events = POLLIN;
		}
		if (poll(pfd, (nfds_t)n, -1) < 0)
			continue;
		if (pfd[0].revents)
			break;
		if (pfd[1].revents & POLLIN) {
			int fd = accept(s->lfd, NULL, NULL), one = 1;

			if (fd >= 0) {
				int i = 0;

				while (i < FAKE_CONNS && s->conns[i])
					i++;
				if (i == FAKE_CONNS) {
					close(fd);
				} else {
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY,
						   &one, sizeof(one));
					s->conns[i] = calloc(1, sizeof(*s->conns[i]));
					s->conns[i]->fd = fd;
					pthread_mutex_lock(&s->lock);
					s->connections++;
					pthread_mutex_unlock(&s->lock);
				}
			}
		}
		for (int j = 2; j < n; j++)
			if (pfd[j].revents)
				fake_serve_conn(s, who[j]);
	}
	return NULL;
}

static struct fake *fake_start_opts(bool accepting, const char *hello_reply)
{
	struct fake *s = calloc(1, sizeof(*s));
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);

	assert_non_null(s);
	s->accepting = accepting;
	s->hello_reply = hello_reply ? hello_reply : "HD\r\n";
	pthread_mutex_init(&s->lock, NULL);
	assert_int_equal(pipe(s->wake), 0);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s->lfd, 64), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%u",
		 (unsigned)ntohs(sin.sin_port));
	assert_int_equal(pthread_create(&s->thread, NULL, fake_main, s), 0);
	return s;
}

static struct fake *fake_start(void)
{
	return fake_start_opts(true, NULL);
}

static void fake_stop(struct fake *s)
{
	assert_int_equal(write(s->wake[1], "x", 1), 1);
	pthread_join(s->thread, NULL);
	for (int i = 0; i < FAKE_CONNS; i++)
		if (s->conns[i])
			fake_close_conn(s, i);
	for (int i = 0; i < s->nkeys; i++)
		free(s->vals[i]);
	close(s->lfd);
	close(s->wake[0]);
	close(s->wake[1]);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* A port that refuses: bound, never listening (held, so nobody takes it). */
static int refusing_port(char *addr, size_t n)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(addr, n, "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
	return fd;
}

/* ---- fwd_reply_len -------------------------------------------------------------- */

static void test_reply_len_lines(void **state)
{
	static const char *const ok[] = {
		"HD\r\n", "HD c123 t-1\r\n", "NS\r\n", "EX\r\n", "NF\r\n",
		"EN\r\n", "MN\r\n", "ME foo exp=-1 la=2\r\n", "ERROR\r\n",
		"CLIENT_ERROR bad command line format\r\n",
		"SERVER_ERROR out of memory\r\n",
	};
	static const char *const bad[] = {
		"BOGUS\r\n", "HDX\r\n", "hd\r\n", "HD\n", "\r\n", "VA\r\n",
		"VA x\r\n", "VA -1\r\n", "VA 12345678901\r\n",
		"VA 2000000000\r\n", "VA 5x\r\n", "VALUE foo 0 1\r\n",
		"END\r\n", "STORED\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_int_equal(fwd_reply_len(ok[i], strlen(ok[i])),
				 (ssize_t)strlen(ok[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(fwd_reply_len(bad[i], strlen(bad[i])), -1);

	/* Only the first response counts. */
	assert_int_equal(fwd_reply_len("HD\r\nEN\r\n", 8), 4);
	/* Incomplete is not invalid. */
	assert_int_equal(fwd_reply_len("", 0), 0);
	assert_int_equal(fwd_reply_len("H", 1), 0);
	assert_int_equal(fwd_reply_len("SERVER_ERR", 10), 0);
	assert_int_equal(fwd_reply_len("HD c1", 5), 0);
	assert_int_equal(fwd_reply_len("HD\r", 3), 0);
	/* Garbage is seen before its line ends. */
	assert_int_equal(fwd_reply_len("X", 1), -1);
	assert_int_equal(fwd_reply_len("HDD", 3), -1);
	assert_int_equal(fwd_reply_len("SERVER_ERRORS", 13), -1);
}

static void test_reply_len_va(void **state)
{
	static const char va[] = "VA 7 f5 t-1\r\na\r\nb\0c\r\r\n";
	const size_t n = sizeof(va) - 1;

	(void)state;
	assert_int_equal(fwd_reply_len(va, n), (ssize_t)n);
	assert_int_equal(fwd_reply_len("VA 0\r\n\r\n", 8), 8);
	assert_int_equal(fwd_reply_len("VA 0\r\n\r\nHD\r\n", 12), 8);
	/* data not followed by "\r\n" */
	assert_int_equal(fwd_reply_len("VA 2\r\nabc\r\n", 11), -1);
	assert_int_equal(fwd_reply_len("VA 2\r\nab\rX", 10), -1);
	/* 1 GiB is the largest value, and just waits for its data */
	assert_int_equal(fwd_reply_len("VA 1073741824\r\n", 15), 0);
	assert_int_equal(fwd_reply_len("VA 1073741825\r\n", 15), -1);
}

static void test_reply_len_long_line(void **state)
{
	char *buf = malloc(9000);

	(void)state;
	/* A line of exactly 8 KiB (with its "\r\n") is fine, one more is not. */
	memcpy(buf, "SERVER_ERROR ", 13);
	memset(buf + 13, 'x', 9000 - 13);
	memcpy(buf + 8190, "\r\n", 2);
	assert_int_equal(fwd_reply_len(buf, 8192), 8192);
	assert_int_equal(fwd_reply_len(buf, 9000), 8192);
	buf[8190] = 'x';
	buf[8191] = 'x';
	memcpy(buf + 8191, "\r\n", 2);
	assert_int_equal(fwd_reply_len(buf, 8191), 0);
	assert_int_equal(fwd_reply_len(buf, 8192), -1);
	assert_int_equal(fwd_reply_len(buf, 9000), -1);
	free(buf);
}

/* Several responses back to back, fed at every byte boundary. */
static void test_reply_len_every_split(void **state)
{
	static const char stream[] =
		"HD\r\n"
		"VA 10 f3\r\n\r\nab\r\n\0\r\nx\r\n"
		"EN\r\n"
		"VA 0\r\n\r\n"
		"SERVER_ERROR backend down\r\n"
		"MN\r\n";
	static const size_t lens[] = { 4, 10 + 10 + 2, 4, 8, 27, 4 };
	const size_t total = sizeof(stream) - 1;
	size_t off = 0;

	(void)state;
	for (size_t r = 0; r < sizeof(lens) / sizeof(lens[0]); r++) {
		for (size_t k = 0; k <= total - off; k++) {
			ssize_t got = fwd_reply_len(stream + off, k);

			if (k < lens[r])
				assert_int_equal(got, 0);
			else
				assert_int_equal(got, (ssize_t)lens[r]);
		}
		off += lens[r];
	}
	assert_int_equal(off, total);
}

/* ---- against the fake server --------------------------------------------------- */

static void test_pipeline_1000(void **state)
{
	struct fake *s = fake_start();
	struct fwd_config cfg = { .timeout_ms = 5000 };
	struct fwd *f = fwd_create(&cfg);
	struct rec *rec = rec_new();
	static struct tag tags[1000];
	struct fwd_peer_stats st;
	char req[64], want[128];

	(void)state;
	assert_non_null(f);
	assert_false(fwd_busy(f));
	assert_int_equal(fwd_timeout_ms(f, mono_ms()), -1);
	for (int i = 0; i < 1000; i++) {
		tags[i] = (struct tag){ rec, i };
		snprintf(req, sizeof(req), "mg echo%d v\r\n", i);
		assert_int_equal(submit_str(f, s->addr, req, &tags[i], NULL), 0);
	}
	/* Never called back from fwd_submit; queued work wants a poll now. */
	assert_int_equal(rec->n, 0);
	assert_true(fwd_busy(f));
	assert_int_equal(fwd_timeout_ms(f, mono_ms()), 0);
	st = peer_stats(f, s->addr);
	assert_int_equal(st.pending, 1000);

	DRIVE(f, rec->n == 1000, 5000);
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(rec->id[i], i);
		assert_int_equal(rec->err[i], 0);
		snprintf(req, sizeof(req), "echo%d", i);
		snprintf(want, sizeof(want), "VA %zu\r\n%s\r\n", strlen(req), req);
		assert_string_equal(rec->reply[i], want);
		assert_int_equal(rec->len[i], strlen(want));
	}
	st = peer_stats(f, s->addr);
	assert_int_equal(st.requests, 1000);
	assert_int_equal(st.replies, 1000);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.connects, 1);
	assert_false(fwd_busy(f));
	assert_int_equal(fwd_timeout_ms(f, mono_ms()), -1);
	/* One connection, and the server read many requests per recv(). */
	assert_int_equal(fake_get(s, &s->connections), 1);
	assert_int_equal(fake_get(s, &s->requests), 1000);
	assert_true(fake_get(s, &s->max_batch) > 1);

	fwd_destroy(&f);
	assert_null(f);
	fwd_destroy(&f);        /* NULL is fine */
	rec_free(rec);
	fake_stop(s);
}

static void test_hello_first(void **state)
{
	struct fake *s = fake_start();
	struct fwd_config cfg = { .hello = "dpc_peer n1 fwd\r\n" };
	struct fwd *f = fwd_create(&cfg);
	struct rec *rec = rec_new();
	struct tag t[2] = { { rec, 0 }, { rec, 1 } };

	(void)state;
	assert_int_equal(submit_str(f, s->addr, "mn\r\n", &t[0], NULL), 0);
	assert_int_equal(submit_str(f, s->addr, "mg nothere v\r\n", &t[1], NULL), 0);
	DRIVE(f, rec->n == 2, 2000);
	/* The hello's HD was eaten; the two replies are the requests'. */
	assert_int_equal(rec->err[0], 0);
	assert_string_equal(rec->reply[0], "MN\r\n");
	assert_int_equal(rec->err[1], 0);
	assert_string_equal(rec->reply[1], "EN\r\n");
	pthread_mutex_lock(&s->lock);
	assert_string_equal(s->first_line, "dpc_peer n1 fwd");
	pthread_mutex_unlock(&s->lock);
	assert_int_equal(fake_get(s, &s->requests), 2);
	fwd_destroy(&f);
	rec_free(rec);
	fake_stop(s);
}

static void test_hello_rejected(void **state)
{
	struct fake *s = fake_start_opts(true, "ERROR\r\n");
	struct fwd_config cfg = { .hello = "dpc_peer n1 fwd\r\n" };
	struct fwd *f = fwd_create(&cfg);
	struct rec *rec = rec_new();
	struct tag t[3] = { { rec, 0 }, { rec, 1 }, { rec, 2 } };

	(void)state;
	assert_int_equal(submit_str(f, s->addr, "mn\r\n", &t[0], NULL), 0);
	assert_int_equal(submit_str(f, s->addr, "mn\r\n", &t[1], NULL), 0);
	DRIVE(f, rec->n == 2, 2000);
	assert_int_equal(rec->err[0], -EPROTO);
	assert_int_equal(rec->err[1], -EPROTO);
	/* The peer is down now: the next request fails fast, no new connect. */
	assert_int_equal(submit_str(f, s->addr, "mn\r\n", &t[2], NULL), 0);
	fwd_poll(f, mono_ms());
	assert_int_equal(rec->n, 3);
	assert_int_equal(rec->err[2], -EPROTO);
	assert_int_equal(peer_stats(f, s->addr).connects, 1);
	fwd_destroy(&f);
	rec_free(rec);
	fake_stop(s);
}

static void test_binary_value(void **state)
{
	static const char val[] = "\r\nline\r\n\0bin\xff\r\nEN\r\n";
	const size_t vn = sizeof(val) - 1;
	struct fake *s = fake_start();
	struct fwd *f = fwd_create(NULL);
	struct rec *rec = rec_new();
	struct tag t[2] = { { rec, 0 }, { rec, 1 } };
	char req[128], want[128];
	int hl, wl;

	(void)state;
	hl = snprintf(req, sizeof(req), "ms bin %zu\r\n", vn);
	memcpy(req + hl, val, vn);
	memcpy(req + hl + vn, "\r\n", 2);
	assert_int_equal(fwd_submit(f, s->addr, req, (size_t)hl + vn + 2,
				    on_done, &t[0], NULL), 0);
	assert_int_equal(submit_str(f, s->addr, "mg bin v\r\n", &t[1], NULL), 0);
	DRIVE(f, rec->n == 2, 2000);
	assert_int_equal(rec->err[0], 0);
	assert_string_equal(rec->reply[0], "HD\r\n");
	assert_int_equal(rec->err[1], 0);
	wl = snprintf(want, sizeof(want), "VA %zu\r\n", vn);
	memcpy(want + wl, val, vn);
	memcpy(want + wl + vn, "\r\n", 2);
	assert_int_equal(rec->len[1], (size_t)wl + vn + 2);
	assert_memory_equal(rec->reply[1], want, rec->len[1]);
	fwd_destroy(&f);
	rec_free(rec);
	fake_stop(s);
}

/* The server sends the reply one byte per segment: the forwarder sees it
 * split at (nearly) every boundary. */
static void test_split_reply_socket(void **state)
{
	static const char val[] = "ab\r\ncd\r\n\0ef";
	const size_t vn = sizeof(val) - 1;
	struct fake *s = fake_start();
	struct fwd *f = fwd_create(NULL);
	struct rec *rec = rec_new();
	struct tag t[3] = { { rec, 0 }, { rec, 1 }, { rec, 2 } };
	char req[64], want[128];
	int hl, wl;

	(void)state;
	hl = snprintf(req, sizeof(req), "ms drip %zu\r\n", vn);
	memcpy(req + hl, val, vn);
	memcpy(req + hl + vn, "\r\n", 2);
	assert_int_equal(fwd_submit(f, s->addr, req, (size_t)hl + vn + 2,
				    on_done, &t[0], NULL), 0);
	assert_int_equal(submit_str(f, s->addr, "mg drip v\r\n", &t[1], NULL), 0);
	assert_int_equal(submit_str(f, s->addr, "mn\r\n", &t[2], NULL), 0);
	DRIVE(f, rec->n == 3, 3000);
	wl = snprintf(want, sizeof(want), "VA %zu\r\n", vn);
	memcpy(want + wl, val, vn);
	memcpy(want + wl + vn, "\r\n", 2);
	assert_int_equal(rec->err[1], 0);
	assert_int_equal(rec->len[1], (size_t)wl + vn + 2);
	assert_memory_equal(rec->reply[1], want, rec->len[1]);
	assert_string_equal(rec->reply[2], "MN\r\n");
	fwd_destroy(&f);
	rec_free(rec);
	fake_stop(s);
}

/* A 4 MiB value between two small replies: the input buffer grows for it
 * and the replies around it stay intact. */
static void test_big_value(void **state)
{
	const size_t big = 4u << 20;
	struct fake *s = fake_start();
	struct fwd *f = fwd_create(NULL);
	struct rec *rec = rec_new();
	struct tag t[3] = { { rec, 0 }, { rec, 1 }, { rec, 2 } };
	char req[64];
	const char *data;

	(void)state;
	snprintf(req, sizeof(req), "mg big%zu v\r\n", big);
	assert_int_equal(submit_str(f, s->addr, "mg echoA v\r\n", &t[0], NULL), 0);
	assert_int_equal(submit_str(f, s->addr, req, &t[1], NULL), 0);
	assert_int_equal(submit_str(f, s->addr, "mg echoB v\r\n", &t[2], NULL), 0);
	DRIVE(f, rec->n == 3, 5000);
	assert_string_equal(rec->reply[0], "VA 5\r\nechoA\r\n");
	assert_int_equal(rec->err[1], 0);
	assert_int_equal(rec->len[1], strlen("VA 4194304\r\n") + big + 2);
	assert_memory_equal(rec->reply[1], "VA 4194304\r\n", 12);
	data = rec->reply[1] + 12;
	for (size_t i = 0; i < big; i++)
		if (data[i] != (char)('a' + i % 23))
			fail_msg("byte %zu differs", i);
	assert_memory_equal(data + big, "\r\n", 2);
	assert_string_equal(rec->reply[2], "VA 5\r\nechoB\r\n");
	fwd_destroy(&f);
	rec_free(rec);
	fake_stop(s);
}

static void test_timeout_then_reconnect(void **state)
{
	struct fake *s = fake_start();
	struct fwd_config cfg = { .timeout_ms = 150 };
	struct fwd *f = fwd_create(&cfg);
	struct rec *rec = rec_new();
	struct tag t[3] = { { rec, 0 }, { rec, 1 }, { rec, 2 } };
	struct fwd_peer_stats st;
	uint64_t t0 = mono_ms();
	int left;

	(void)state;
	assert_int_equal(submit_str(f, s->addr, "mg slow250 v\r\n", &t[0], NULL), 0);
	assert_int_equal(submit_str(f, s->addr, "mn\r\n", &t[1], NULL), 0);
	fwd_poll(f, mono_ms());
	left = fwd_timeout_ms(f, mono_ms());
	assert_true(left > 0 && left <= 150);
	DRIVE(f, rec->n == 2, 2000);
	assert_true(mono_ms() - t0 >= 150);
	/* Both were on the wire when the head expired. */
	assert_int_equal(rec->err[0], -ETIMEDOUT);
	assert_int_equal(rec->err[1], -ETIMEDOUT);
	st = peer_stats(f, s->addr);
	assert_int_equal(st.timeouts, 2);
	assert_int_equal(st.errors, 2);
	assert_int_equal(st.pending, 0);
	assert_false(fwd_busy(f));

	/* Let the fake finish its sleep, then the link comes back. */
	sleep_ms(150);
	assert_int_equal(submit_str(f, s->addr, "mn\r\n", &t[2], NULL), 0);
	DRIVE(f, rec->n == 3, 2000);
	assert_int_equal(rec->err[2], 0);
	assert_string_equal(rec->reply[2], "MN\r\n");
	st = peer_stats(f, s->addr);
	assert_int_equal(st.connects, 2);
	assert_int_equal(st.replies, 1);
	assert_int_equal(fake_get(s, &s->connections), 2);
	fwd_destroy(&f);
	rec_free(rec);
	fake_stop(s);
}

/* A server that listens but never accepts: the kernel completes the
 * handshake, nothing answers, requests time out. */
static void test_never_accepts(void **state)
{
	struct fake *s = fake_start_opts(false, NULL);
	struct fwd_config cfg = { .timeout_ms = 50 };
	struct fwd *f = fwd_create(&cfg);
	struct rec *rec = rec_new();
	struct tag t = { rec, 0 };

	(void)state;
	assert_int_equal(submit_str(f, s->addr, "mn\r\n", &t, NULL), 0);
	DRIVE(f, rec->n == 1, 2000);
	assert_int_equal(rec->err[0], -ETIMEDOUT);
	assert_int_equal(fake_get(s, &s->connections), 0);
	fwd_destroy(&f);
	rec_free(rec);
	fake_stop(s);
}

/*
 * A listener whose accept queue is full (backlog 0, one connection already
 * queued, never accepted) drops SYNs: the connect hangs until
 * connect_timeout_ms, the peer is then down (fast failures).
 */
static void test_connect_timeout(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	struct fwd_config cfg = { .connect_timeout_ms = 60, .timeout_ms = 5000 };
	struct fwd *f = fwd_create(&cfg);
	struct rec *rec = rec_new();
	struct tag t[2] = { { rec, 0 }, { rec, 1 } };
	char addr[64];
	int lfd, cfd;
	uint64_t t0;

	(void)state;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 0), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)), 0);

	t0 = mono_ms();
	assert_int_equal(submit_str(f, addr, "mn\r\n", &t[0], NULL), 0);
	DRIVE(f, rec->n == 1, 2000);
	assert_true(mono_ms() - t0 >= 60);
	assert_int_equal(rec->err[0], -EHOSTUNREACH);
	assert_int_equal(peer_stats(f, addr).timeouts, 0);
	assert_int_equal(submit_str(f, addr, "mn\r\n", &t[1], NULL), 0);
	fwd_poll(f, mono_ms());
	assert_int_equal(rec->n, 2);
	assert_int_equal(rec->err[1], -EHOSTUNREACH);
	assert_int_equal(peer_stats(f, addr).connects, 1);
	assert_false(fwd_busy(f));
	fwd_destroy(&f);
	rec_free(rec);
	close(cfd);
	close(lfd);
}

/* Refused connects, the backoff 100 ms doubling to 2 s, on a virtual clock. */
static void test_refused_backoff(void **state)
{
	char addr[64];
	int hold = refusing_port(addr, sizeof(addr));
	struct fwd *f = fwd_create(NULL);
	struct rec *rec = rec_new();
	static struct tag t[32];
	const uint64_t t0 = 1000000;
	/* When each connect attempt happens: the gaps are the backoffs. */
	static const uint64_t attempts[] = {
		0, 100, 300, 700, 1500, 3100, 5100, 7100,
	};
	int n = 0;

	(void)state;
	for (int i = 0; i < 32; i++)
		t[i] = (struct tag){ rec, i };
	for (size_t a = 0; a < sizeof(attempts) / sizeof(attempts[0]); a++) {
		uint64_t now = t0 + attempts[a];

		/* Just before the backoff ends: fast failure, no connect. */
		if (a > 0) {
			assert_int_equal(submit_str(f, addr, "mn\r\n", &t[n], NULL), 0);
			assert_int_equal(rec->n, n);      /* not from submit */
			fwd_poll(f, now - 1);
			assert_int_equal(rec->n, n + 1);
			assert_int_equal(rec->err[n], -ECONNREFUSED);
			assert_int_equal(peer_stats(f, addr).connects, a);
			n++;
		}
		/* At the end of the backoff: a real attempt, refused. */
		assert_int_equal(submit_str(f, addr, "mn\r\n", &t[n], NULL), 0);
		DRIVE_AT(f, now, rec->n == n + 1, 2000);
		assert_int_equal(rec->err[n], -ECONNREFUSED);
		assert_int_equal(peer_stats(f, addr).connects, a + 1);
		n++;
	}
	assert_int_equal(peer_stats(f, addr).errors, n);
	assert_false(fwd_busy(f));
	fwd_destroy(&f);
	rec_free(rec);
	close(hold);
}

static void test_max_pending(void **state)
{
	struct fake *s = fake_start();
	struct fwd_config cfg = { .max_pending = 4 };
	struct fwd *f = fwd_create(&cfg);
	struct rec *rec = rec_new();
	struct tag t[6];

	(void)state;
	for (int i = 0; i < 6; i++)
		t[i] = (struct tag){ rec, i };
	for (int i = 0; i < 4; i++)
		assert_int_equal(submit_str(f, s->addr, "mn\r\n", &t[i], NULL), 0);
	assert_int_equal(submit_str(f, s->addr, "mn\r\n", &t[4], NULL), -ENOBUFS);
	assert_int_equal(peer_stats(f, s->addr).rejected, 1);
	assert_int_equal(peer_stats(f, s->addr).requests, 4);
	DRIVE(f, !fwd_busy(f), 2000);
	assert_int_equal(rec->n, 4);   /* the rejected one never calls back */
	for (int i = 0; i < 4; i++)
		assert_int_equal(rec->id[i], i);
	assert_int_equal(submit_str(f, s->addr, "mn\r\n", &t[5], NULL), 0);
	DRIVE(f, rec->n == 5, 2000);
	assert_int_equal(rec->err[4], 0);
	fwd_destroy(&f);
	rec_free(rec);
	fake_stop(s);
}

static void test_cancel(void **state)
{
	struct fake *s = fake_start();
	struct fwd *f = fwd_create(NULL);
	struct rec *rec = rec_new();
	struct tag t[5];
	struct fwd_req *h[5];

	(void)state;
	for (int i = 0; i < 5; i++)
		t[i] = (struct tag){ rec, i };
	/* Cancelled before it was written: never sent. */
	assert_int_equal(submit_str(f, s->addr, "mn\r\n", &t[0], &h[0]), 0);
	assert_int_equal(submit_str(f, s->addr, "mg echo1 v\r\n", &t[1], &h[1]), 0);
	assert_int_equal(submit_str(f, s->addr, "mn\r\n", &t[2], &h[2]), 0);
	fwd_cancel(h[1]);
	DRIVE(f, !fwd_busy(f), 2000);
	assert_int_equal(rec->n, 2);
	assert_int_equal(rec->id[0], 0);
	assert_int_equal(rec->id[1], 2);
	assert_int_equal(fake_get(s, &s->requests), 2);

	/* Cancelled while in flight: its reply is read and dropped, the next
	 * request still gets its own reply. */
	assert_int_equal(submit_str(f, s->addr, "mg slow30 v\r\n", &t[3], &h[3]), 0);
	assert_int_equal(submit_str(f, s->addr, "mg echo4 v\r\n", &t[4], &h[4]), 0);
	fwd_poll(f, mono_ms());
	fwd_cancel(h[3]);
	DRIVE(f, !fwd_busy(f), 2000);
	assert_int_equal(rec->n, 3);
	assert_int_equal(rec->id[2], 4);
	assert_int_equal(rec->err[2], 0);
	assert_string_equal(rec->reply[2], "VA 5\r\necho4\r\n");
	assert_int_equal(fake_get(s, &s->requests), 4);
	assert_int_equal(peer_stats(f, s->addr).pending, 0);
	fwd_cancel(NULL);
	fwd_destroy(&f);
	rec_free(rec);
	fake_stop(s);
}

static void test_garbage(void **state)
{
	struct fake *s = fake_start();
	struct fwd *f = fwd_create(NULL);
	struct rec *rec = rec_new();
	struct tag t[3] = { { rec, 0 }, { rec, 1 }, { rec, 2 } };

	(void)state;
	assert_int_equal(submit_str(f, s->addr, "mg garbage v\r\n", &t[0], NULL), 0);
	assert_int_equal(submit_str(f, s->addr, "mn\r\n", &t[1], NULL), 0);
	DRIVE(f, rec->n == 2, 2000);
	assert_int_equal(rec->err[0], -EPROTO);
	/* Both went out in one send: what was on the wire fails with it. */
	assert_int_equal(rec->err[1], -EPROTO);
	/* An established link that broke is not 'down': the next one works. */
	assert_int_equal(submit_str(f, s->addr, "mn\r\n", &t[2], NULL), 0);
	DRIVE(f, rec->n == 3, 2000);
	assert_int_equal(rec->err[2], 0);
	assert_string_equal(rec->reply[2], "MN\r\n");
	assert_int_equal(peer_stats(f, s->addr).connects, 2);
	fwd_destroy(&f);
	rec_free(rec);
	fake_stop(s);
}

static void test_peer_closes(void **state)
{
	struct fake *s = fake_start();
	struct fwd *f = fwd_create(NULL);
	struct rec *rec = rec_new();
	struct tag t[4] = { { rec, 0 }, { rec, 1 }, { rec, 2 }, { rec, 3 } };

	(void)state;
	/* Half a VA reply, then the peer closes. */
	assert_int_equal(submit_str(f, s->addr, "mg halfva v\r\n", &t[0], NULL), 0);
	DRIVE(f, rec->n == 1, 2000);
	assert_int_equal(rec->err[0], -ECONNRESET);
	/* No reply at all, then the peer closes. */
	assert_int_equal(submit_str(f, s->addr, "mg close v\r\n", &t[1], NULL), 0);
	DRIVE(f, rec->n == 2, 2000);
	assert_int_equal(rec->err[1], -ECONNRESET);
	/* And the link comes back. */
	assert_int_equal(submit_str(f, s->addr, "mg echoX v\r\n", &t[2], NULL), 0);
	DRIVE(f, rec->n == 3, 2000);
	assert_int_equal(rec->err[2], 0);
	assert_string_equal(rec->reply[2], "VA 5\r\nechoX\r\n");
	assert_int_equal(peer_stats(f, s->addr).connects, 3);
	assert_int_equal(peer_stats(f, s->addr).errors, 2);
	fwd_destroy(&f);
	rec_free(rec);
	fake_stop(s);
}

#define NPEERS 8
#define PER_PEER 50

/* fwd_for_each_peer from another thread while peers are being added. */
struct walker {
	struct fwd *f;
	atomic_bool stop;
	int max_seen;
};

static void walker_cb(void *arg, const char *addr,
		      const struct fwd_peer_stats *st)
{
	int *count = arg;

	/* Counters are read one by one while the owner runs: only each one
	 * on its own is meaningful here. */
	assert_true(strncmp(addr, "127.0.0.1:", 10) == 0);
	assert_true(st->replies <= PER_PEER && st->connects <= 1);
	(*count)++;
}

static void *walker_main(void *arg)
{
	struct walker *w = arg;

	while (!atomic_load(&w->stop)) {
		int count = 0;

		fwd_for_each_peer(w->f, walker_cb, &count);
		if (count > w->max_seen)
			w->max_seen = count;
	}
	return NULL;
}

static void test_many_peers(void **state)
{
	struct fake *s[NPEERS];
	struct fwd *f = fwd_create(NULL);
	struct rec *rec = rec_new();
	static struct tag t[NPEERS * PER_PEER];
	struct walker w = { .f = f };
	pthread_t wt;
	int next[NPEERS] = { 0 };
	struct stats_find all = { 0 };
	char req[64], want[128];

	(void)state;
	for (int p = 0; p < NPEERS; p++)
		s[p] = fake_start();
	assert_int_equal(pthread_create(&wt, NULL, walker_main, &w), 0);
	for (int i = 0; i < PER_PEER; i++) {
		for (int p = 0; p < NPEERS; p++) {
			int id = p * PER_PEER + i;

			t[id] = (struct tag){ rec, id };
			snprintf(req, sizeof(req), "mg echo%d v\r\n", id);
			assert_int_equal(submit_str(f, s[p]->addr, req, &t[id],
						    NULL), 0);
		}
		fwd_poll(f, mono_ms());
	}
	DRIVE(f, rec->n == NPEERS * PER_PEER, 5000);
	atomic_store(&w.stop, true);
	pthread_join(wt, NULL);
	assert_true(w.max_seen <= NPEERS);

	/* Per peer, replies came in submit order and match. */
	for (int i = 0; i < rec->n; i++) {
		int id = rec->id[i], p = id / PER_PEER;

		assert_int_equal(id % PER_PEER, next[p]++);
		assert_int_equal(rec->err[i], 0);
		snprintf(req, sizeof(req), "echo%d", id);
		snprintf(want, sizeof(want), "VA %zu\r\n%s\r\n", strlen(req), req);
		assert_string_equal(rec->reply[i], want);
	}
	fwd_for_each_peer(f, stats_cb, &all);
	assert_int_equal(all.peers, NPEERS);
	for (int p = 0; p < NPEERS; p++) {
		struct fwd_peer_stats st = peer_stats(f, s[p]->addr);

		assert_int_equal(next[p], PER_PEER);
		assert_int_equal(st.requests, PER_PEER);
		assert_int_equal(st.replies, PER_PEER);
		assert_int_equal(st.connects, 1);
		assert_int_equal(fake_get(s[p], &s[p]->connections), 1);
	}
	fwd_destroy(&f);
	rec_free(rec);
	for (int p = 0; p < NPEERS; p++)
		fake_stop(s[p]);
}

static void test_bad_address(void **state)
{
	static const char *const bad[] = {
		"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:123456", "127.0.0.1:12a", "localhost:11211",
		":11211", "[]:11211", "[127.0.0.1]:11211", "1.2.3:11211",
		"[::1:11211", "256.0.0.1:80",
		"0123456789012345678901234567890123456789012345678901234567890123:1",
	};
	static const char *const good[] = {
		"127.0.0.1:1", "127.0.0.1:65535", "[::1]:11211", "::1:11211",
		"[fe80::1]:80",
	};
	struct fwd *f = fwd_create(NULL);
	struct rec *rec = rec_new();
	struct tag t = { rec, 0 };
	struct stats_find all = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(submit_str(f, bad[i], "mn\r\n", &t, NULL), -EINVAL);
	assert_int_equal(fwd_submit(f, "127.0.0.1:1", "", 0, on_done, &t, NULL),
			 -EINVAL);
	assert_int_equal(fwd_submit(f, "127.0.0.1:1", "mn\r\n", 4, NULL, &t,
				    NULL), -EINVAL);
	/* Not one whole command (no final "\r\n"). */
	assert_int_equal(submit_str(f, "127.0.0.1:1", "mn", &t, NULL), -EINVAL);
	assert_int_equal(submit_str(f, "127.0.0.1:1", "mn\r", &t, NULL), -EINVAL);
	assert_int_equal(submit_str(f, "127.0.0.1:1", "\n", &t, NULL), -EINVAL);
	fwd_for_each_peer(f, stats_cb, &all);
	assert_int_equal(all.peers, 0);
	all.peers = 0;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(submit_str(f, good[i], "mn\r\n", &t, NULL), 0);
	fwd_for_each_peer(f, stats_cb, &all);
	assert_int_equal(all.peers, (int)(sizeof(good) / sizeof(good[0])));
	/* Destroy with requests queued: no callbacks, nothing leaks. */
	fwd_destroy(&f);
	assert_int_equal(rec->n, 0);
	rec_free(rec);
}

/* Callbacks that submit and cancel while the forwarder walks its lists. */
struct chain {
	struct fwd *f;
	const char *addr;
	struct rec *rec;
	struct tag tags[64];
	struct fwd_req *cancel_me;
	int submitted;
	int limit;
};

static void chain_done(void *arg, int err, const char *reply, size_t len)
{
	struct tag *t = arg;
	struct chain *c = (struct chain *)((char *)(t - t->id) -
					   offsetof(struct chain, tags));

	on_done(arg, err, reply, len);
	if (c->cancel_me) {
		fwd_cancel(c->cancel_me);
		c->cancel_me = NULL;
	}
	if (c->submitted < c->limit) {
		int id = c->submitted++;

		c->tags[id] = (struct tag){ c->rec, id };
		assert_int_equal(fwd_submit(c->f, c->addr, "mn\r\n", 4,
					    chain_done, &c->tags[id], NULL), 0);
	}
}

static void test_reentrant_callbacks(void **state)
{
	char down[64];
	int hold = refusing_port(down, sizeof(down));
	struct fake *s = fake_start();
	struct chain *c = calloc(1, sizeof(*c));
	struct fwd_req *h;

	(void)state;
	c->f = fwd_create(NULL);
	c->rec = rec_new();

	/* A chain of 20 requests, each submitted from the previous one's
	 * callback, on a live peer. */
	c->addr = s->addr;
	c->limit = 20;
	c->tags[0] = (struct tag){ c->rec, 0 };
	c->submitted = 1;
	assert_int_equal(fwd_submit(c->f, c->addr, "mn\r\n", 4, chain_done,
				    &c->tags[0], NULL), 0);
	DRIVE(c->f, !fwd_busy(c->f), 3000);
	assert_int_equal(c->rec->n, 20);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(c->rec->id[i], i);
		assert_int_equal(c->rec->err[i], 0);
	}

	/* A failing batch on a refused peer: the first callback cancels the
	 * third request (same batch) and submits a new one (which fails on a
	 * later poll, never inside the walk's callbacks of fwd_submit). */
	rec_free(c->rec);
	c->rec = rec_new();
	c->addr = down;
	c->submitted = 3;
	c->limit = 4;
	for (int i = 0; i < 3; i++)
		c->tags[i] = (struct tag){ c->rec, i };
	assert_int_equal(fwd_submit(c->f, down, "mn\r\n", 4, chain_done,
				    &c->tags[0], NULL), 0);
	assert_int_equal(fwd_submit(c->f, down, "mn\r\n", 4, on_done,
				    &c->tags[1], NULL), 0);
	assert_int_equal(fwd_submit(c->f, down, "mn\r\n", 4, on_done,
				    &c->tags[2], &h), 0);
	c->cancel_me = h;
	DRIVE(c->f, !fwd_busy(c->f), 2000);
	assert_int_equal(c->rec->n, 3);
	assert_int_equal(c->rec->id[0], 0);
	assert_int_equal(c->rec->id[1], 1);
	assert_int_equal(c->rec->id[2], 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(c->rec->err[i], -ECONNREFUSED);
	assert_int_equal(peer_stats(c->f, down).connects, 1);

	fwd_destroy(&c->f);
	rec_free(c->rec);
	free(c);
	fake_stop(s);
	close(hold);
}

static bool fd_readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1;
}

/*
 * An idle link closed by its peer makes fwd_fd() readable while nothing is
 * busy; one fwd_poll() takes the event (an event loop must poll on fd
 * readiness too, not only on fwd_busy, or a level-triggered fd spins).
 * The next request then finds the peer gone instead of writing into a dead
 * socket.
 */
static void test_idle_close_seen(void **state)
{
	struct fake *s = fake_start();
	struct fwd *f = fwd_create(NULL);
	struct rec *rec = rec_new();
	struct tag t[2] = { { rec, 0 }, { rec, 1 } };
	char addr[64];
	uint64_t end;

	(void)state;
	snprintf(addr, sizeof(addr), "%s", s->addr);
	assert_int_equal(submit_str(f, addr, "mn\r\n", &t[0], NULL), 0);
	DRIVE(f, rec->n == 1, 2000);
	assert_false(fwd_busy(f));
	assert_false(fd_readable(fwd_fd(f)));

	fake_stop(s);           /* closes its end of the idle link */
	end = mono_ms() + 2000;
	while (!fd_readable(fwd_fd(f)))
		assert_true(mono_ms() < end);
	assert_false(fwd_busy(f));
	fwd_poll(f, mono_ms());
	assert_false(fd_readable(fwd_fd(f)));
	assert_int_equal(rec->n, 1);

	/* Nobody listens there now: a fresh connect is refused. */
	assert_int_equal(submit_str(f, addr, "mn\r\n", &t[1], NULL), 0);
	DRIVE(f, rec->n == 2, 2000);
	assert_int_equal(rec->err[1], -ECONNREFUSED);
	assert_int_equal(peer_stats(f, addr).connects, 2);
	fwd_destroy(&f);
	rec_free(rec);
}

/* Destroy with requests on the wire: no callbacks. */
static void test_destroy_in_flight(void **state)
{
	struct fake *s = fake_start();
	struct fwd *f = fwd_create(NULL);
	struct rec *rec = rec_new();
	struct tag t[2] = { { rec, 0 }, { rec, 1 } };

	(void)state;
	assert_int_equal(submit_str(f, s->addr, "mg slow20 v\r\n", &t[0], NULL), 0);
	assert_int_equal(submit_str(f, s->addr, "mn\r\n", &t[1], NULL), 0);
	fwd_poll(f, mono_ms());
	fwd_poll(f, mono_ms());
	assert_true(fwd_busy(f));
	fwd_destroy(&f);
	assert_int_equal(rec->n, 0);
	rec_free(rec);
	fake_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_len_lines),
		cmocka_unit_test(test_reply_len_va),
		cmocka_unit_test(test_reply_len_long_line),
		cmocka_unit_test(test_reply_len_every_split),
		cmocka_unit_test(test_pipeline_1000),
		cmocka_unit_test(test_hello_first),
		cmocka_unit_test(test_hello_rejected),
		cmocka_unit_test(test_binary_value),
		cmocka_unit_test(test_split_reply_socket),
		cmocka_unit_test(test_big_value),
		cmocka_unit_test(test_timeout_then_reconnect),
		cmocka_unit_test(test_never_accepts),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_refused_backoff),
		cmocka_unit_test(test_max_pending),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_peer_closes),
		cmocka_unit_test(test_many_peers),
		cmocka_unit_test(test_bad_address),
		cmocka_unit_test(test_reentrant_callbacks),
		cmocka_unit_test(test_idle_close_seen),
		cmocka_unit_test(test_destroy_in_flight),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
