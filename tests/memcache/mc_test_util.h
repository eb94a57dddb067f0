/*
 * tests/memcache/mc_test_util.h - a fixture for protocol tests: one cache,
 * one mc_server, one mc_worker (attached on the test's thread) and one
 * session, plus "feed this request, give me the reply" helpers that behave
 * like a transport (keep unconsumed input, drain output on MC_FEED_PAUSE).
 *
 * Shared by the text and binary tests. Header-only; include after cmocka.h.
 */
#ifndef DPCACHE_TESTS_MC_TEST_UTIL_H
#define DPCACHE_TESTS_MC_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cache/cache.h"
#include "cache/clock.h"
#include "dataplane/memcache/mc.h"

struct mc_fixture {
	struct cache *cache;
	struct mc_server *server;
	struct mc_worker *worker;
	struct mc_session *session;
	struct mc_buf out;
	bool closed;          /* the last feed returned MC_FEED_CLOSE */
	char *pending;        /* input not consumed yet (a transport's rx buffer) */
	size_t npending;
};

struct mc_fixture_opts {
	size_t mem_limit;       /* 0 = 64 MiB */
	size_t item_size_max;   /* 0 = 1 MiB */
	size_t out_high_water;  /* 0 = protocol default */
	bool shutdown_enabled;
	bool udp_enabled;
};

static inline struct mc_fixture *mc_fixture_create(const struct mc_fixture_opts *o)
{
	struct mc_fixture *f = calloc(1, sizeof(*f));
	struct cache_config cc = {
		.mem_limit = o && o->mem_limit ? o->mem_limit : 64u << 20,
		.item_size_max = o && o->item_size_max ? o->item_size_max : 1u << 20,
	};
	assert_non_null(f);
	f->cache = cache_create(&cc);
	assert_non_null(f->cache);
	struct mc_server_config sc = {
		.cache = f->cache,
		.item_size_max = cc.item_size_max,
		.out_high_water = o ? o->out_high_water : 0,
		.shutdown_enabled = o ? o->shutdown_enabled : false,
		.udp_enabled = o ? o->udp_enabled : false,
		.max_conns = 1024,
		.num_threads = 1,
	};
	f->server = mc_server_create(&sc);
	assert_non_null(f->server);
	f->worker = mc_worker_create(f->server);
	assert_non_null(f->worker);
	f->session = mc_session_create(f->worker);
	assert_non_null(f->session);
	mc_buf_init(&f->out);
	return f;
}

static inline void mc_fixture_destroy(struct mc_fixture **fp)
{
	struct mc_fixture *f = *fp;
	if (f == NULL)
		return;
	mc_session_destroy(&f->session);
	mc_worker_destroy(&f->worker);
	mc_server_destroy(&f->server);
	cache_destroy(&f->cache);
	mc_buf_deinit(&f->out);
	free(f->pending);
	free(f);
	*fp = NULL;
}

/* A fresh session on the same cache (a new connection). */
static inline void mc_fixture_reconnect(struct mc_fixture *f)
{
	mc_session_destroy(&f->session);
	f->session = mc_session_create(f->worker);
	assert_non_null(f->session);
	free(f->pending);
	f->pending = NULL;
	f->npending = 0;
	f->closed = false;
}

/* cmocka setup/teardown with default options. */
static inline int mc_fixture_setup(void **state)
{
	*state = mc_fixture_create(NULL);
	return 0;
}

static inline int mc_fixture_teardown(void **state)
{
	struct mc_fixture *f = *state;
	mc_fixture_destroy(&f);
	return 0;
}

/*
 * Appends bytes to the fixture's input and runs the session like a
 * transport: calls mc_session_feed until it needs more input or closes;
 * every reply byte is appended to f->out (MC_FEED_PAUSE just repeats).
 */
static inline void mc_push(struct mc_fixture *f, const char *in, size_t len)
{
	if (f->closed)
		return;
	f->pending = realloc(f->pending, f->npending + len + 1);
	assert_non_null(f->pending);
	memcpy(f->pending + f->npending, in, len);
	f->npending += len;
	for (;;) {
		size_t used = 0;
		/* A transport would send f->out here; the test keeps it all, so
		 * feed a scratch buffer and move its bytes over. */
		struct mc_buf scratch;
		mc_buf_init(&scratch);
		int rc = mc_session_feed(f->session, f->pending, f->npending,
					 &used, &scratch);
		assert_true(used <= f->npending);
		assert_int_equal(mc_buf_append(&f->out, scratch.data, scratch.len), 0);
		mc_buf_deinit(&scratch);
		memmove(f->pending, f->pending + used, f->npending - used);
		f->npending -= used;
		if (rc == MC_FEED_CLOSE) {
			f->closed = true;
			return;
		}
		if (rc == MC_FEED_MORE)
			return;
		assert_int_equal(rc, MC_FEED_PAUSE);
	}
}

/* Takes the reply so far as a NUL-terminated malloc'd string (may contain
 * NULs; *len tells). Clears f->out. */
static inline char *mc_take(struct mc_fixture *f, size_t *len)
{
	char *r = malloc(f->out.len + 1);
	assert_non_null(r);
	if (f->out.len)
		memcpy(r, f->out.data, f->out.len);
	r[f->out.len] = '\0';
	if (len)
		*len = f->out.len;
	f->out.len = 0;
	return r;
}

/* Feeds a whole request (string) and checks the reply is exactly 'expect'. */
static inline void mc_expect_n(struct mc_fixture *f, const char *req, size_t nreq,
			       const char *expect, size_t nexpect)
{
	size_t n;
	mc_push(f, req, nreq);
	char *got = mc_take(f, &n);
	bool same = n == nexpect && memcmp(got, expect, n) == 0;
	if (!same)
		fprintf(stderr, "request: %.*s\nexpected (%zu): %.*s\ngot (%zu): %.*s\n",
			(int)(nreq > 300 ? 300 : nreq), req, nexpect,
			(int)(nexpect > 600 ? 600 : nexpect), expect, n,
			(int)(n > 600 ? 600 : n), got);
	free(got);
	assert_true(same);
}

#define mc_expect(f, req, expect) \
	mc_expect_n((f), (req), strlen(req), (expect), strlen(expect))

/*
 * Runs 'req' split in two at every byte boundary, and once byte by byte;
 * each reply must equal the unsplit one, which must equal 'expect' (if not
 * NULL). 'prep' (may be NULL) is fed first, unsplit, on each run.
 *
 * One fixture serves all runs (creating a cache per run is slow): each run
 * gets a new session after a flush_all, and the manual clock moves on by a
 * second so items stored after the flush are live. Leaves the clock in
 * manual mode.
 */
static inline void mc_split_run(struct mc_fixture *f, uint32_t *now,
				const char *prep, const char *req, size_t nreq,
				size_t split)
{
	mc_fixture_reconnect(f);
	cache_clock_set_manual(*now);
	cache_flush(mc_worker_cache_thread(f->worker), 0);
	*now += 2;
	cache_clock_set_manual(*now);
	if (prep) {
		mc_push(f, prep, strlen(prep));
		f->out.len = 0;
	}
	if (split == 0 || split > nreq) {
		mc_push(f, req, nreq);
	} else if (split < nreq) {
		mc_push(f, req, split);
		mc_push(f, req + split, nreq - split);
	} else {
		for (size_t i = 0; i < nreq; i++)
			mc_push(f, req + i, 1);
	}
}

static inline void mc_expect_split(const struct mc_fixture_opts *o,
				   const char *prep, const char *req, size_t nreq,
				   const char *expect, size_t nexpect)
{
	static uint32_t now = 1700000000u;
	struct mc_fixture *f = mc_fixture_create(o);
	size_t nwhole;

	mc_split_run(f, &now, prep, req, nreq, 0);
	bool closed_whole = f->closed;
	char *whole = mc_take(f, &nwhole);
	if (expect != NULL) {
		if (nwhole != nexpect || memcmp(whole, expect, nwhole) != 0)
			fail_msg("unsplit reply differs: got %zu bytes '%.*s'", nwhole,
				 (int)(nwhole > 400 ? 400 : nwhole), whole);
	}
	/* split points 1..nreq-1, then one-byte-at-a-time (split == nreq) */
	for (size_t split = 1; split <= nreq; split++) {
		mc_split_run(f, &now, prep, req, nreq, split);
		size_t n;
		char *got = mc_take(f, &n);
		if (n != nwhole || memcmp(got, whole, n) != 0 || f->closed != closed_whole)
			fail_msg("split at %zu of '%.*s' differs: '%.*s' vs '%.*s'", split,
				 (int)(nreq > 100 ? 100 : nreq), req,
				 (int)(n > 300 ? 300 : n), got,
				 (int)(nwhole > 300 ? 300 : nwhole), whole);
		free(got);
	}
	free(whole);
	mc_fixture_destroy(&f);
}

#define mc_expect_split_str(o, prep, req, expect) \
	mc_expect_split((o), (prep), (req), strlen(req), (expect), \
			(expect) ? strlen(expect) : 0)

#endif
