/*
 * tests/replication/test_migrate.c - the migration stream and the clean-up
 * after it, against a real cache and a fake target: a thread in this test
 * that listens on loopback, answers the 'dpc_peer' hello, parses every 'ms'
 * it gets, records it, and answers HD (or NS for the keys the test picks).
 *
 * Self is node "a"; the migration adds node "b" (the fake target), so the
 * keys that move are exactly those whose owner in the new ring is "b".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache/cache.h"
#include "replication/map.h"
#include "replication/migrate.h"
#include "replication/ring.h"

#define T0 1700000000u
#define NKEYS 1000

/* ---- the fake target ----------------------------------------------------- */

struct got {
	char key[CACHE_KEY_MAX + 1];
	uint32_t flags;
	long ttl;              /* -1: no T flag */
	char mode;             /* M flag, 0 if none */
	char *val;
	uint32_t len;
};

struct fake {
	int lfd;
	uint16_t port;
	pthread_t th;
	bool stop;             /* atomic */
	pthread_mutex_t lock;  /* guards the records */
	struct got *got;
	size_t ngot, cap;
	unsigned hellos;
	unsigned bad_lines;
	unsigned conns;
	unsigned drop_after;   /* first connection: closed after this many ms */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The keys the fake target answers NS for (it "has" them already). */
static bool fake_says_ns(const char *key)
{
	size_t n = strlen(key);

	return key[n - 1] == '7';
}

static void fake_record(struct fake *f, const char *key, uint32_t flags,
			long ttl, char mode, const char *val, uint32_t len)
{
	struct got *g;

	pthread_mutex_lock(&f->lock);
	if (f->ngot == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 256;
		f->got = realloc(f->got, f->cap * sizeof(*f->got));
	}
	g = &f->got[f->ngot++];
	snprintf(g->key, sizeof(g->key), "%s", key);
	g->flags = flags;
	g->ttl = ttl;
	g->mode = mode;
	g->len = len;
	g->val = malloc(len + 1);
	memcpy(g->val, val, len);
	g->val[len] = '\0';
	pthread_mutex_unlock(&f->lock);
}

/* RFC 4648 base64 with padding, for keys sent with the 'b' flag; -1 if bad. */
static int b64_decode(const char *in, char *out, size_t cap)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;

	if (n % 4 != 0)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		uint32_t v = 0;
		int pad = 0;

		for (int j = 0; j < 4; j++) {
			const char *c = in[i + j] == '=' ? NULL : strchr(tab, in[i + j]);

			if (in[i + j] == '=')
				pad++;
			else if (c == NULL || in[i + j] == '\0' || pad)
				return -1;
			v = v << 6 | (c ? (uint32_t)(c - tab) : 0);
		}
		if (pad > 2 || o + 3 - pad >= cap)
			return -1;
		out[o++] = (char)(v >> 16);
		if (pad < 2)
			out[o++] = (char)(v >> 8);
		if (pad < 1)
			out[o++] = (char)v;
	}
	out[o] = '\0';
	return (int)o;
}

/*
 * Handles the requests at the start of buf: returns the bytes consumed
 * (0: need more). Appends replies to out.
 */
static size_t fake_handle(struct fake *f, char *buf, size_t len, char *out,
			  size_t *olen)
{
	char *eol = memmem(buf, len, "\r\n", 2);
	char line[1024], *tok, *save, key[CACHE_KEY_MAX + 1] = "";
	size_t llen, dlen = 0;
	uint32_t flags = 0;
	long ttl = -1;
	char mode = 0;
	bool b64 = false;

	if (eol == NULL)
		return 0;
	llen = (size_t)(eol - buf);
	if (llen >= sizeof(line)) {
		f->bad_lines++;
		return llen + 2;
	}
	memcpy(line, buf, llen);
	line[llen] = '\0';
	if (strncmp(line, "dpc_peer ", 9) == 0) {
		if (strcmp(line, "dpc_peer a migrate") == 0) {
			__atomic_fetch_add(&f->hellos, 1, __ATOMIC_RELAXED);
			memcpy(out + *olen, "HD\r\n", 4);
		} else {
			f->bad_lines++;
			memcpy(out + *olen, "ERROR\r\n", 7);
			*olen += 3;
		}
		*olen += 4;
		return llen + 2;
	}
	tok = strtok_r(line, " ", &save);
	if (tok == NULL || strcmp(tok, "ms") != 0) {
		f->bad_lines++;
		return llen + 2;
	}
	tok = strtok_r(NULL, " ", &save);
	snprintf(key, sizeof(key), "%s", tok ? tok : "");
	tok = strtok_r(NULL, " ", &save);
	dlen = tok ? strtoul(tok, NULL, 10) : 0;
	while ((tok = strtok_r(NULL, " ", &save)) != NULL) {
		if (tok[0] == 'F')
			flags = (uint32_t)strtoul(tok + 1, NULL, 10);
		else if (tok[0] == 'T')
			ttl = strtol(tok + 1, NULL, 10);
		else if (tok[0] == 'M')
			mode = tok[1];
		else if (strcmp(tok, "b") == 0)
			b64 = true;
		else
			f->bad_lines++;
	}
	if (b64) {
		char raw[CACHE_KEY_MAX + 1];

		if (b64_decode(key, raw, sizeof(raw)) <= 0)
			f->bad_lines++;
		else
			memcpy(key, raw, sizeof(raw));
	}
	if (len < llen + 2 + dlen + 2)
		return 0;
	if (memcmp(buf + llen + 2 + dlen, "\r\n", 2) != 0)
		f->bad_lines++;
	fake_record(f, key, flags, ttl, mode, buf + llen + 2, (uint32_t)dlen);
	memcpy(out + *olen, fake_says_ns(key) ? "NS\r\n" : "HD\r\n", 4);
	*olen += 4;
	return llen + 2 + dlen + 2;
}

static void fake_serve(struct fake *f, int fd)
{
	size_t cap = 1u << 20, len = 0;
	char *buf = malloc(cap), out[4096];
	unsigned conn = ++f->conns;
	size_t before = f->ngot;

	while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		size_t used, olen = 0;
		ssize_t n;

		if (poll(&p, 1, 50) <= 0)
			continue;
		n = recv(fd, buf + len, cap - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		/* At most 64 requests are in flight: out never fills. */
		while (len > 0 && olen + 32 < sizeof(out) &&
		       (used = fake_handle(f, buf, len, out, &olen)) > 0) {
			memmove(buf, buf + used, len - used);
			len -= used;
		}
		/* A target that dies mid-stream: its last replies never go. */
		if (conn == 1 && f->drop_after &&
		    f->ngot - before >= f->drop_after)
			break;
		if (olen > 0 && send(fd, out, olen, MSG_NOSIGNAL) < 0)
			break;
	}
	free(buf);
	close(fd);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED)) {
		struct pollfd p = { .fd = f->lfd, .events = POLLIN };
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		fd = accept(f->lfd, NULL, NULL);
		if (fd >= 0)
			fake_serve(f, fd);
	}
	return NULL;
}

static void fake_start(struct fake *f)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 8), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
	f->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	__atomic_store_n(&f->stop, true, __ATOMIC_RELAXED);
	pthread_join(f->th, NULL);
	close(f->lfd);
	for (size_t i = 0; i < f->ngot; i++)
		free(f->got[i].val);
	free(f->got);
	pthread_mutex_destroy(&f->lock);
}

static const struct got *fake_find(struct fake *f, const char *key)
{
	const struct got *r = NULL;
	unsigned hits = 0;

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->ngot; i++) {
		if (strcmp(f->got[i].key, key) == 0) {
			r = &f->got[i];
			hits++;
		}
	}
	pthread_mutex_unlock(&f->lock);
	assert_true(hits <= 1);    /* never sent twice here */
	return r;
}

/* A loopback port nobody listens on: bound, then closed. */
static uint16_t dead_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* ---- maps ------------------------------------------------------------------ */

/* Migration 'id' from {a} to {a, b at b_port}. */
static struct shard_map *map_adding_b(uint16_t b_port, uint64_t id)
{
	struct shard_map *m = map_new();
	char addr[32];

	assert_non_null(m);
	assert_int_equal(map_add_node(m, "a", "127.0.0.1:1", 1, MAP_NODE_ACTIVE), 0);
	assert_int_equal(map_snapshot_prev(m), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", b_port);
	assert_int_equal(map_add_node(m, "b", addr, 1, MAP_NODE_ACTIVE), 0);
	m->epoch = 2;
	m->migration = id;
	assert_int_equal(map_build_rings(m), 0);
	return m;
}

/* Stable {a, b}. */
static struct shard_map *map_stable_ab(uint16_t b_port)
{
	struct shard_map *m = map_new();
	char addr[32];

	assert_non_null(m);
	assert_int_equal(map_add_node(m, "a", "127.0.0.1:1", 1, MAP_NODE_ACTIVE), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", b_port);
	assert_int_equal(map_add_node(m, "b", addr, 1, MAP_NODE_ACTIVE), 0);
	m->epoch = 3;
	assert_int_equal(map_build_rings(m), 0);
	return m;
}

static bool owned_by(const struct shard_map *m, const char *key, const char *id)
{
	const struct map_node *o = map_owner(m, ring_hash(key, strlen(key)));

	assert_non_null(o);
	return strcmp(o->id, id) == 0;
}

/* ---- fixture ----------------------------------------------------------------- */

struct prog_log {
	pthread_mutex_t lock;
	struct migrate_progress last;
	unsigned calls, done_calls;
	uint64_t first_total;
	bool first_seen;
	uint32_t advance_on_first;  /* seconds the cache clock jumps at the first report */
};

struct fx {
	struct cache *c;
	struct cache_thread *t;
	struct fake fake;
	struct prog_log log;
};

static void on_progress(void *arg, const struct migrate_progress *p)
{
	struct prog_log *l = arg;

	pthread_mutex_lock(&l->lock);
	if (!l->first_seen) {
		/* The first report comes after the snapshot, before any key
		 * is sent: expire some of the snapshot's items now. */
		l->first_seen = true;
		l->first_total = p->keys_total;
		if (l->advance_on_first)
			cache_clock_advance(l->advance_on_first);
	}
	l->last = *p;
	l->calls++;
	l->done_calls += p->done;
	pthread_mutex_unlock(&l->lock);
}

static int setup(void **state)
{
	static struct fx fx;
	struct cache_config cfg = {
		.mem_limit = 64u << 20,
		.item_size_max = 1u << 20,
	};

	memset(&fx, 0, sizeof(fx));
	cache_clock_set_manual(T0);
	fx.c = cache_create(&cfg);
	assert_non_null(fx.c);
	fx.t = cache_thread_attach(fx.c);
	assert_non_null(fx.t);
	pthread_mutex_init(&fx.log.lock, NULL);
	fake_start(&fx.fake);
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	fake_stop(&fx->fake);
	cache_thread_detach(&fx->t);
	cache_destroy(&fx->c);
	pthread_mutex_destroy(&fx->log.lock);
	cache_clock_set_real();
	return 0;
}

static struct migrator *start(struct fx *fx, uint64_t rate, unsigned giveup_ms)
{
	struct migrate_config cfg = {
		.cache = fx->c,
		.self_id = "a",
		.rate_bytes_per_s = rate,
		.target_giveup_ms = giveup_ms,
		.progress = on_progress,
		.arg = &fx->log,
	};
	struct migrator *m = migrator_create(&cfg);

	assert_non_null(m);
	return m;
}

static void put(struct fx *fx, const char *key, const char *val, size_t n,
		uint32_t flags, int64_t ttl)
{
	struct cache_store_args a = { .mode = CACHE_SET };
	enum cache_status err = CACHE_OK;
	struct cache_item *it;

	it = cache_item_alloc(fx->t, key, strlen(key), flags,
			      cache_exptime_from_wire(ttl), n, &err);
	assert_non_null(it);
	memcpy(cache_item_value(it), val, n);
	assert_int_equal(cache_store(fx->t, it, cache_hash(key, strlen(key)), &a,
				     NULL), CACHE_OK);
}

static bool present(struct fx *fx, const char *key)
{
	struct cache_read_opts ro = { .no_bump = true };
	bool r = cache_get(fx->t, key, strlen(key), cache_hash(key, strlen(key)),
			   &ro, NULL) != NULL;

	cache_thread_quiescent(fx->t);
	return r;
}

/* Waits (offline) until the migrator reported done; the last progress. */
static struct migrate_progress wait_done(struct fx *fx, unsigned max_ms)
{
	uint64_t end = now_ms() + max_ms;
	struct migrate_progress p;

	cache_thread_offline(fx->t);
	for (;;) {
		pthread_mutex_lock(&fx->log.lock);
		p = fx->log.last;
		pthread_mutex_unlock(&fx->log.lock);
		if (p.done || now_ms() > end)
			break;
		usleep(5000);
	}
	cache_thread_online(fx->t);
	assert_true(p.done);
	return p;
}

/* ---- tests ------------------------------------------------------------------- */

enum ttl_kind { TTL_NONE, TTL_LONG, TTL_MID, TTL_SHORT };

static enum ttl_kind ttl_kind(int i)
{
	return i % 10 == 1 ? TTL_SHORT : i % 10 == 2 ? TTL_MID :
	       i % 10 == 3 ? TTL_LONG : TTL_NONE;
}

static const int64_t ttl_of[] = { 0, 100, 15, 5 };

/*
 * Exactly the keys that move to b are sent, with their flags, remaining TTL
 * and value; items expired before the snapshot are not counted, items
 * expired after it are skipped; NS counts as delivered; the final report
 * adds up. Then the stable map drops exactly the items b owns.
 */
static void test_stream_and_drop(void **state)
{
	struct fx *fx = *state;
	struct shard_map *mig = map_adding_b(fx->fake.port, 5);
	struct shard_map *stable = map_stable_ab(fx->fake.port);
	struct migrator *m;
	struct migrate_progress p;
	uint64_t moving = 0, sent = 0, skipped = 0, bytes = 0, ns = 0, to_b = 0;
	char key[32], val[64], binkey[32];
	const struct got *g;

	for (int i = 0; i < NKEYS; i++) {
		snprintf(key, sizeof(key), "key:%d", i);
		snprintf(val, sizeof(val), "value-%d-%s", i, i % 3 ? "x" : "yyyyyyy");
		put(fx, key, val, strlen(val), (uint32_t)i * 3u, ttl_of[ttl_kind(i)]);
	}
	/* TTL_SHORT (5 s) expire before the snapshot; at the first report
	 * the clock jumps to T0+30, which expires TTL_MID (15 s) and leaves
	 * TTL_LONG 70 s. */
	cache_clock_advance(10);
	fx->log.advance_on_first = 20;
	for (int i = 0; i < NKEYS; i++) {
		enum ttl_kind k = ttl_kind(i);

		snprintf(key, sizeof(key), "key:%d", i);
		snprintf(val, sizeof(val), "value-%d-%s", i, i % 3 ? "x" : "yyyyyyy");
		if (!owned_by(mig, key, "b"))
			continue;
		/* The old ring is {a}: every key was a's. */
		assert_string_equal(map_prev_owner(mig, ring_hash(key, strlen(key)))->id, "a");
		if (k == TTL_SHORT)
			continue;
		moving++;
		if (k == TTL_MID) {
			skipped++;
			continue;
		}
		sent++;
		bytes += strlen(val);
		ns += fake_says_ns(key);
	}
	assert_true(moving > 100 && moving < NKEYS);   /* the ring split them */
	assert_true(ns > 0);

	/* A key a meta line cannot carry as text (binary protocol): it goes
	 * base64-encoded with the b flag. */
	for (int i = 0;; i++) {
		snprintf(binkey, sizeof(binkey), "bin key\x01%d", i);
		if (owned_by(mig, binkey, "b"))
			break;
	}
	put(fx, binkey, "binval", 6, 9, 0);
	moving++;
	sent++;
	bytes += 6;

	m = start(fx, 0, 0);
	migrator_apply(m, mig);
	p = wait_done(fx, 10000);
	assert_int_equal(p.migration, 5);
	assert_int_equal(fx->log.first_total, moving);
	assert_int_equal(p.keys_total, moving);
	assert_int_equal(p.keys_sent, sent);
	assert_int_equal(p.keys_skipped, skipped);
	assert_int_equal(p.bytes_sent, bytes);
	assert_int_equal(p.failed_targets, 0);
	assert_int_equal(p.errors, 0);
	assert_int_equal(fx->log.done_calls, 1);
	assert_true(fx->log.calls >= 2);
	migrator_progress(m, &p);
	assert_true(p.done);
	assert_int_equal(p.keys_sent, sent);

	/* What the target got: exactly the moving, live keys. */
	assert_int_equal(fx->fake.bad_lines, 0);
	assert_int_equal(fx->fake.hellos, 1);
	assert_int_equal(fx->fake.ngot, sent);
	for (int i = 0; i < NKEYS; i++) {
		enum ttl_kind k = ttl_kind(i);

		snprintf(key, sizeof(key), "key:%d", i);
		snprintf(val, sizeof(val), "value-%d-%s", i, i % 3 ? "x" : "yyyyyyy");
		g = fake_find(&fx->fake, key);
		if (!owned_by(mig, key, "b") || k == TTL_SHORT || k == TTL_MID) {
			assert_null(g);
			continue;
		}
		assert_non_null(g);
		assert_int_equal(g->mode, 'E');
		assert_int_equal(g->flags, (uint32_t)i * 3u);
		assert_int_equal(g->ttl, k == TTL_LONG ? 70 : 0);
		assert_int_equal(g->len, strlen(val));
		assert_string_equal(g->val, val);
	}
	g = fake_find(&fx->fake, binkey);
	assert_non_null(g);
	assert_string_equal(g->val, "binval");
	assert_int_equal(g->flags, 9);
	/* Nothing was deleted by the stream. */
	assert_int_equal(migrator_dropped(m), 0);

	/* The same migration again (a newer epoch of it): not streamed twice. */
	migrator_apply(m, mig);
	cache_thread_offline(fx->t);
	usleep(100000);
	cache_thread_online(fx->t);
	assert_int_equal(fx->fake.ngot, sent);
	assert_int_equal(fx->fake.hellos, 1);

	/* Stable map: the copies b now owns go, a's stay. */
	for (int i = 0; i < NKEYS; i++) {
		snprintf(key, sizeof(key), "key:%d", i);
		if (owned_by(stable, key, "b") && present(fx, key))
			to_b++;
	}
	to_b += owned_by(stable, binkey, "b") && present(fx, binkey);
	assert_int_equal(to_b, sent);   /* same ring: the live b keys are the sent ones */
	migrator_apply(m, stable);
	cache_thread_offline(fx->t);
	for (uint64_t end = now_ms() + 5000;
	     migrator_dropped(m) < to_b && now_ms() < end;)
		usleep(5000);
	usleep(50000);             /* nothing more is dropped after that */
	cache_thread_online(fx->t);
	assert_int_equal(migrator_dropped(m), to_b);
	for (int i = 0; i < NKEYS; i++) {
		enum ttl_kind k = ttl_kind(i);

		snprintf(key, sizeof(key), "key:%d", i);
		if (owned_by(stable, key, "b"))
			assert_false(present(fx, key));
		else
			assert_int_equal(present(fx, key),
					 k == TTL_NONE || k == TTL_LONG);
	}
	migrator_destroy(&m);
	assert_null(m);
	migrator_destroy(&m);
	map_unref(mig);
	map_unref(stable);
}

/* 200 KB at 1 MB/s takes about 180 ms (the bucket holds 20 ms). */
static void test_rate_limit(void **state)
{
	struct fx *fx = *state;
	struct shard_map *mig = map_adding_b(fx->fake.port, 6);
	struct migrator *m;
	struct migrate_progress p;
	uint64_t budget = 0, t0, ms, min_ms;
	char key[32], val[1000];

	memset(val, 'v', sizeof(val));
	for (int i = 0; i < 400; i++) {
		snprintf(key, sizeof(key), "big:%d", i);
		put(fx, key, val, sizeof(val), 0, 0);
		if (owned_by(mig, key, "b"))
			budget += strlen(key) + sizeof(val);
	}
	assert_true(budget > 120000);
	m = start(fx, 1000000, 0);
	t0 = now_ms();
	migrator_apply(m, mig);
	p = wait_done(fx, 10000);
	ms = now_ms() - t0;
	assert_int_equal(p.keys_sent, p.keys_total);
	assert_int_equal(p.keys_total, fx->fake.ngot);
	/* The bucket starts full (20 ms of rate); the rest waits. */
	min_ms = (budget - 20000) / 1000;
	printf("rate: %llu bytes in %llu ms (at least %llu ms)\n",
	       (unsigned long long)budget, (unsigned long long)ms,
	       (unsigned long long)min_ms);
	assert_true(ms + 10 >= min_ms);
	assert_true(ms < 3000);
	migrator_destroy(&m);
	map_unref(mig);
}

/* The target closes the connection mid-stream: the migrator reconnects,
 * resends what was not answered, and every key arrives. */
static void test_target_reconnect(void **state)
{
	struct fx *fx = *state;
	struct shard_map *mig = map_adding_b(fx->fake.port, 9);
	struct migrator *m;
	struct migrate_progress p;
	uint64_t moving = 0;
	char key[32];

	for (int i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "r%d", i);
		put(fx, key, key, strlen(key), 0, 0);
		moving += owned_by(mig, key, "b");
	}
	fx->fake.drop_after = 100;
	m = start(fx, 0, 2000);
	migrator_apply(m, mig);
	p = wait_done(fx, 10000);
	assert_int_equal(fx->fake.hellos, 2);
	assert_int_equal(p.keys_total, moving);
	assert_int_equal(p.keys_sent, moving);
	assert_int_equal(p.failed_targets, 0);
	assert_int_equal(p.errors, 0);
	assert_true(fx->fake.ngot > moving);   /* some were sent twice */
	for (int i = 0; i < 500; i++) {
		bool found = false;

		snprintf(key, sizeof(key), "r%d", i);
		pthread_mutex_lock(&fx->fake.lock);
		for (size_t j = 0; j < fx->fake.ngot && !found; j++)
			found = strcmp(fx->fake.got[j].key, key) == 0 &&
				strcmp(fx->fake.got[j].val, key) == 0;
		pthread_mutex_unlock(&fx->fake.lock);
		assert_int_equal(found, owned_by(mig, key, "b"));
	}
	migrator_destroy(&m);
	map_unref(mig);
}

/* A target that refuses connections is given up after target_giveup_ms. */
static void test_target_refuses(void **state)
{
	struct fx *fx = *state;
	struct shard_map *mig = map_adding_b(dead_port(), 7);
	struct migrator *m;
	struct migrate_progress p;
	uint64_t t0, ms;
	char key[32];

	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		put(fx, key, "v", 1, 0, 0);
	}
	m = start(fx, 0, 300);
	t0 = now_ms();
	migrator_apply(m, mig);
	p = wait_done(fx, 5000);
	ms = now_ms() - t0;
	assert_true(p.keys_total > 0);
	assert_int_equal(p.keys_sent, 0);
	assert_int_equal(p.failed_targets, 1);
	assert_true(ms >= 300);
	assert_true(ms < 3000);
	migrator_destroy(&m);
	map_unref(mig);
}

/* A stable map that arrives mid-stream stops it (no done report) and the
 * clean-up runs instead. */
static void test_superseded(void **state)
{
	struct fx *fx = *state;
	struct shard_map *mig = map_adding_b(fx->fake.port, 8);
	struct shard_map *stable = map_stable_ab(fx->fake.port);
	struct migrator *m;
	struct migrate_progress p;
	uint64_t to_b = 0;
	char key[32], val[1000];

	memset(val, 'v', sizeof(val));
	for (int i = 0; i < 400; i++) {
		snprintf(key, sizeof(key), "big:%d", i);
		put(fx, key, val, sizeof(val), 0, 0);
		to_b += owned_by(stable, key, "b");
	}
	m = start(fx, 100000, 0);          /* 100 KB/s: ~2 s for all */
	migrator_apply(m, mig);
	cache_thread_offline(fx->t);
	usleep(200000);
	migrator_apply(m, stable);
	for (uint64_t end = now_ms() + 5000;
	     migrator_dropped(m) < to_b && now_ms() < end;)
		usleep(5000);
	cache_thread_online(fx->t);
	assert_int_equal(migrator_dropped(m), to_b);
	migrator_progress(m, &p);
	assert_int_equal(p.migration, 8);
	assert_false(p.done);
	assert_true(p.keys_sent < p.keys_total);
	assert_int_equal(fx->log.done_calls, 0);
	migrator_destroy(&m);
	map_unref(mig);
	map_unref(stable);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stream_and_drop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_target_reconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_target_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_superseded, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
