/*
 * tests/memcache/test_binary.c - the binary protocol (dataplane/memcache/
 * binary.c): every opcode round trip, quiet variants, errors, framing
 * errors, streaming of values split at every byte boundary, flow control.
 *
 * Expected replies are what memcached 1.6.18 sends for the same bytes
 * (captured from /usr/bin/memcached on loopback with a python script), the
 * version string aside.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/memcache/mc_test_util.h"

#include "cache/cache.h"
#include "cache/clock.h"
#include "dataplane/memcache/mc_internal.h"

#define ITEM_MAX (64u * 1024u)

struct fx {
	struct mc_fixture *mf; /* cache, server, worker, session, out */
	int rc;                /* last MC_FEED_* */
};

static int fx_setup_hw(void **state, size_t high_water)
{
	struct mc_fixture_opts o = {
		.mem_limit = 32u * 1024u * 1024u,
		.item_size_max = ITEM_MAX,
		.out_high_water = high_water,
	};
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->mf = mc_fixture_create(&o);
	*state = f;
	return 0;
}

static int fx_setup(void **state)
{
	return fx_setup_hw(state, 0);
}

static int fx_setup_small_hw(void **state)
{
	return fx_setup_hw(state, 256);
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	mc_fixture_destroy(&f->mf);
	free(f);
	return 0;
}

/* A fresh connection (same cache). */
static void fx_reconnect(struct fx *f)
{
	mc_session_destroy(&f->mf->session);
	f->mf->session = mc_session_create(f->mf->worker);
	assert_non_null(f->mf->session);
	f->mf->out.len = 0;
}

/*
 * Feeds 'in' the way a transport does: offers what is unconsumed, drains
 * (keeps) the output on PAUSE, stops on CLOSE or when nothing more is taken.
 * Returns how many bytes were left unconsumed.
 */
static size_t feed_chunk(struct fx *f, const char *in, size_t len)
{
	size_t off = 0;
	for (;;) {
		size_t used = 0;
		f->rc = mc_session_feed(f->mf->session, in + off, len - off, &used, &f->mf->out);
		off += used;
		cache_thread_quiescent(mc_worker_cache_thread(f->mf->worker));
		if (f->rc == MC_FEED_CLOSE || f->rc == MC_FEED_MORE)
			break;
		/* PAUSE: the test keeps everything, so just go on. */
	}
	return len - off;
}

static void feed(struct fx *f, const void *in, size_t len)
{
	f->mf->out.len = 0;
	size_t left = feed_chunk(f, in, len);
	if (f->rc != MC_FEED_CLOSE)
		assert_int_equal(left, 0);
}

/* ---- packet builders ----------------------------------------------------- */

struct pkt {
	unsigned char b[ITEM_MAX * 4 + 512];
	size_t len;
};

static void put16(unsigned char *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static void put32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = (v >> 16) & 0xff; p[2] = (v >> 8) & 0xff; p[3] = v & 0xff;
}
static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}
static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Appends one packet (magic 'magic') to 'p'. */
static void add_raw(struct pkt *p, uint8_t magic, uint8_t op, const void *ext,
		    size_t next, const void *key, size_t nkey, const void *val,
		    size_t nval, uint64_t cas, uint32_t opaque)
{
	unsigned char *h = p->b + p->len;
	assert_true(p->len + 24 + next + nkey + nval <= sizeof(p->b));
	memset(h, 0, 24);
	h[0] = magic;
	h[1] = op;
	put16(h + 2, (uint16_t)nkey);
	h[4] = (uint8_t)next;
	put32(h + 8, (uint32_t)(next + nkey + nval));
	put32(h + 12, opaque);
	put64(h + 16, cas);
	p->len += 24;
	if (next > 0)
		memcpy(p->b + p->len, ext, next);
	p->len += next;
	if (nkey > 0)
		memcpy(p->b + p->len, key, nkey);
	p->len += nkey;
	if (nval > 0)
		memcpy(p->b + p->len, val, nval);
	p->len += nval;
}

static void add_req(struct pkt *p, uint8_t op, const void *ext, size_t next,
		    const char *key, const void *val, size_t nval, uint64_t cas)
{
	add_raw(p, 0x80, op, ext, next, key, key ? strlen(key) : 0, val, nval,
		cas, 0xdeadbeef);
}

/* A response as memcached writes it. */
static void add_resp(struct pkt *p, uint8_t op, uint16_t status, const void *ext,
		     size_t next, const char *key, const void *val, size_t nval,
		     uint64_t cas)
{
	size_t before = p->len;
	add_raw(p, 0x81, op, ext, next, key, key ? strlen(key) : 0, val, nval,
		cas, 0xdeadbeef);
	put16(p->b + before + 6, status);
}

static void add_err(struct pkt *p, uint8_t op, uint16_t status, const char *text)
{
	add_resp(p, op, status, NULL, 0, NULL, text, strlen(text), 0);
}

static void pkt_reset(struct pkt *p) { p->len = 0; }

static void store_ext(unsigned char ext[8], uint32_t flags, uint32_t exptime)
{
	put32(ext, flags);
	put32(ext + 4, exptime);
}

static void incr_ext(unsigned char ext[20], uint64_t delta, uint64_t initial,
		     uint32_t exptime)
{
	put64(ext, delta);
	put64(ext + 8, initial);
	put32(ext + 16, exptime);
}

/* CAS of the first response in out. */
static uint64_t out_cas(struct fx *f)
{
	assert_true(f->mf->out.len >= 24);
	return get64((unsigned char *)f->mf->out.data + 16);
}

static void assert_out(struct fx *f, const struct pkt *want)
{
	if (f->mf->out.len != want->len || memcmp(f->mf->out.data, want->b, want->len) != 0) {
		fprintf(stderr, "got %zu bytes, want %zu\n", f->mf->out.len, want->len);
		for (size_t i = 0; i < f->mf->out.len && i < 128; i++)
			fprintf(stderr, "%02x%s", (unsigned char)f->mf->out.data[i],
				i % 24 == 23 ? "\n" : " ");
		fprintf(stderr, "\n");
		fail();
	}
}

static struct pkt req, want;

/* Sets key=val with flags; returns the CAS. */
static uint64_t do_set(struct fx *f, const char *key, const char *val, uint32_t flags)
{
	unsigned char ext[8];
	store_ext(ext, flags, 0);
	pkt_reset(&req);
	add_req(&req, MC_BIN_SET, ext, 8, key, val, strlen(val), 0);
	feed(f, req.b, req.len);
	assert_int_equal(f->rc, MC_FEED_MORE);
	assert_int_equal(f->mf->out.len, 24);
	assert_int_equal(f->mf->out.data[7], 0);
	return out_cas(f);
}

/* ---- round trips --------------------------------------------------------- */

static void test_set_get_getk(void **state)
{
	struct fx *f = *state;
	unsigned char flags[4];
	put32(flags, 0x1234);

	uint64_t cas = do_set(f, "k1", "hello", 0x1234);
	assert_true(cas != 0);

	pkt_reset(&req);
	add_req(&req, MC_BIN_GET, NULL, 0, "k1", NULL, 0, 0);
	add_req(&req, MC_BIN_GETK, NULL, 0, "k1", NULL, 0, 0);
	add_req(&req, MC_BIN_GET, NULL, 0, "km", NULL, 0, 0);
	add_req(&req, MC_BIN_GETK, NULL, 0, "km", NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_resp(&want, MC_BIN_GET, 0, flags, 4, NULL, "hello", 5, cas);
	add_resp(&want, MC_BIN_GETK, 0, flags, 4, "k1", "hello", 5, cas);
	add_err(&want, MC_BIN_GET, MC_BIN_KEY_ENOENT, "Not found");
	/* A GETK miss carries the key and no text. */
	add_resp(&want, MC_BIN_GETK, MC_BIN_KEY_ENOENT, NULL, 0, "km", NULL, 0, 0);
	assert_out(f, &want);

	struct mc_worker_stats *st = &f->mf->worker->stats;
	assert_int_equal(st->cmd_get, 4);
	assert_int_equal(st->get_hits, 2);
	assert_int_equal(st->get_misses, 2);
	assert_int_equal(st->cmd_set, 1);
}

static void test_quiet_gets(void **state)
{
	struct fx *f = *state;
	unsigned char flags[4];
	put32(flags, 7);
	uint64_t cas = do_set(f, "k2", "v", 7);

	pkt_reset(&req);
	add_req(&req, MC_BIN_GETQ, NULL, 0, "k2", NULL, 0, 0);
	add_req(&req, MC_BIN_GETQ, NULL, 0, "nn", NULL, 0, 0);
	add_req(&req, MC_BIN_GETKQ, NULL, 0, "k2", NULL, 0, 0);
	add_req(&req, MC_BIN_GETKQ, NULL, 0, "nn", NULL, 0, 0);
	add_req(&req, MC_BIN_NOOP, NULL, 0, NULL, NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	/* Hits answer with the quiet opcode; misses say nothing. */
	add_resp(&want, MC_BIN_GETQ, 0, flags, 4, NULL, "v", 1, cas);
	add_resp(&want, MC_BIN_GETKQ, 0, flags, 4, "k2", "v", 1, cas);
	add_resp(&want, MC_BIN_NOOP, 0, NULL, 0, NULL, NULL, 0, 0);
	assert_out(f, &want);
}

static void test_add_replace_cas(void **state)
{
	struct fx *f = *state;
	unsigned char ext[8];
	store_ext(ext, 0, 0);
	uint64_t cas = do_set(f, "k1", "a", 0);

	pkt_reset(&req);
	add_req(&req, MC_BIN_SET, ext, 8, "k1", "b", 1, cas + 1000);   /* bad cas */
	add_req(&req, MC_BIN_SET, ext, 8, "knone", "b", 1, 12345);    /* cas, missing */
	add_req(&req, MC_BIN_ADD, ext, 8, "k1", "x", 1, 0);           /* exists */
	add_req(&req, MC_BIN_ADD, ext, 8, "k1", "x", 1, 5);           /* add+cas = cas */
	add_req(&req, MC_BIN_REPLACE, ext, 8, "kmiss", "x", 1, 0);
	add_req(&req, MC_BIN_ADDQ, ext, 8, "k1", "x", 1, 0);          /* quiet error: sent */
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_err(&want, MC_BIN_SET, MC_BIN_KEY_EEXISTS, "Data exists for key.");
	add_err(&want, MC_BIN_SET, MC_BIN_KEY_ENOENT, "Not found");
	add_err(&want, MC_BIN_ADD, MC_BIN_KEY_EEXISTS, "Data exists for key.");
	add_err(&want, MC_BIN_ADD, MC_BIN_KEY_EEXISTS, "Data exists for key.");
	add_err(&want, MC_BIN_REPLACE, MC_BIN_KEY_ENOENT, "Not found");
	add_err(&want, MC_BIN_ADDQ, MC_BIN_KEY_EEXISTS, "Data exists for key.");
	assert_out(f, &want);
	assert_int_equal(f->mf->worker->stats.cas_badval, 2);
	assert_int_equal(f->mf->worker->stats.cas_misses, 1);

	/* The right CAS stores and returns a new one. */
	pkt_reset(&req);
	add_req(&req, MC_BIN_SET, ext, 8, "k1", "c", 1, cas);
	feed(f, req.b, req.len);
	assert_int_equal(f->mf->out.len, 24);
	assert_int_equal(f->mf->out.data[7], 0);
	assert_true(out_cas(f) != cas && out_cas(f) != 0);
	assert_int_equal(f->mf->worker->stats.cas_hits, 1);

	/* Quiet successes say nothing; ADD and REPLACE work. */
	pkt_reset(&req);
	add_req(&req, MC_BIN_SETQ, ext, 8, "q1", "1", 1, 0);
	add_req(&req, MC_BIN_ADDQ, ext, 8, "q2", "2", 1, 0);
	add_req(&req, MC_BIN_REPLACEQ, ext, 8, "q1", "3", 1, 0);
	add_req(&req, MC_BIN_NOOP, NULL, 0, NULL, NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_resp(&want, MC_BIN_NOOP, 0, NULL, 0, NULL, NULL, 0, 0);
	assert_out(f, &want);
	pkt_reset(&req);
	add_req(&req, MC_BIN_GET, NULL, 0, "q1", NULL, 0, 0);
	feed(f, req.b, req.len);
	assert_int_equal(f->mf->out.len, 24 + 4 + 1);
	assert_int_equal(f->mf->out.data[28], '3');
}

static void test_append_prepend(void **state)
{
	struct fx *f = *state;
	unsigned char flags[4];
	put32(flags, 0x1234);
	uint64_t cas = do_set(f, "k1", "hello", 0x1234);

	pkt_reset(&req);
	add_req(&req, MC_BIN_APPEND, NULL, 0, "k1", "W", 1, 0);
	feed(f, req.b, req.len);
	assert_int_equal(f->mf->out.len, 24);
	uint64_t cas2 = out_cas(f);
	assert_true(cas2 != cas);

	pkt_reset(&req);
	add_req(&req, MC_BIN_APPEND, NULL, 0, "km", "W", 1, 0);
	add_req(&req, MC_BIN_APPENDQ, NULL, 0, "km", "W", 1, 0);
	add_req(&req, MC_BIN_APPEND, NULL, 0, "k1", "W", 1, 3);  /* cas mismatch */
	add_req(&req, MC_BIN_PREPENDQ, NULL, 0, "k1", "P", 1, 0);
	add_req(&req, MC_BIN_PREPEND, NULL, 0, "km", "P", 1, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_err(&want, MC_BIN_APPEND, MC_BIN_NOT_STORED, "Not stored.");
	add_err(&want, MC_BIN_APPENDQ, MC_BIN_NOT_STORED, "Not stored.");
	add_err(&want, MC_BIN_APPEND, MC_BIN_KEY_EEXISTS, "Data exists for key.");
	add_err(&want, MC_BIN_PREPEND, MC_BIN_NOT_STORED, "Not stored.");
	assert_out(f, &want);

	pkt_reset(&req);
	add_req(&req, MC_BIN_GET, NULL, 0, "k1", NULL, 0, 0);
	feed(f, req.b, req.len);
	assert_int_equal(f->mf->out.len, 24 + 4 + 7);
	assert_memory_equal(f->mf->out.data + 24, flags, 4);   /* flags kept */
	assert_memory_equal(f->mf->out.data + 28, "PhelloW", 7);
}

static void test_delete(void **state)
{
	struct fx *f = *state;
	uint64_t cas = do_set(f, "d", "x", 0);

	pkt_reset(&req);
	add_req(&req, MC_BIN_DELETE, NULL, 0, "d", NULL, 0, cas + 1);
	add_req(&req, MC_BIN_DELETE, NULL, 0, "d", NULL, 0, cas);
	add_req(&req, MC_BIN_DELETE, NULL, 0, "d", NULL, 0, 0);
	add_req(&req, MC_BIN_DELETEQ, NULL, 0, "d", NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_err(&want, MC_BIN_DELETE, MC_BIN_KEY_EEXISTS, "Data exists for key.");
	add_resp(&want, MC_BIN_DELETE, 0, NULL, 0, NULL, NULL, 0, 0);
	add_err(&want, MC_BIN_DELETE, MC_BIN_KEY_ENOENT, "Not found");
	add_err(&want, MC_BIN_DELETEQ, MC_BIN_KEY_ENOENT, "Not found");
	assert_out(f, &want);
	assert_int_equal(f->mf->worker->stats.delete_hits, 1);
	assert_int_equal(f->mf->worker->stats.delete_misses, 2);

	do_set(f, "d", "x", 0);
	pkt_reset(&req);
	add_req(&req, MC_BIN_DELETEQ, NULL, 0, "d", NULL, 0, 0);
	add_req(&req, MC_BIN_NOOP, NULL, 0, NULL, NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_resp(&want, MC_BIN_NOOP, 0, NULL, 0, NULL, NULL, 0, 0);
	assert_out(f, &want);
}

static void test_incr_decr(void **state)
{
	struct fx *f = *state;
	unsigned char ext[20], val[8];

	/* Miss with expiration 0xffffffff: ENOENT. */
	incr_ext(ext, 1, 10, 0xffffffffu);
	pkt_reset(&req);
	add_req(&req, MC_BIN_INCREMENT, ext, 20, "n", NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_err(&want, MC_BIN_INCREMENT, MC_BIN_KEY_ENOENT, "Not found");
	assert_out(f, &want);
	assert_int_equal(f->mf->worker->stats.incr_misses, 1);

	/* Miss otherwise: created with 'initial'. */
	incr_ext(ext, 1, 10, 0);
	pkt_reset(&req);
	add_req(&req, MC_BIN_INCREMENT, ext, 20, "n", NULL, 0, 0);
	feed(f, req.b, req.len);
	uint64_t cas = out_cas(f);
	put64(val, 10);
	pkt_reset(&want);
	add_resp(&want, MC_BIN_INCREMENT, 0, NULL, 0, NULL, val, 8, cas);
	assert_out(f, &want);

	incr_ext(ext, 5, 10, 0);
	pkt_reset(&req);
	add_req(&req, MC_BIN_INCREMENT, ext, 20, "n", NULL, 0, 0);
	feed(f, req.b, req.len);
	put64(val, 15);
	pkt_reset(&want);
	add_resp(&want, MC_BIN_INCREMENT, 0, NULL, 0, NULL, val, 8, out_cas(f));
	assert_out(f, &want);
	assert_true(out_cas(f) != cas);

	/* decr floors at 0. */
	incr_ext(ext, 100, 10, 0);
	pkt_reset(&req);
	add_req(&req, MC_BIN_DECREMENT, ext, 20, "n", NULL, 0, 0);
	feed(f, req.b, req.len);
	put64(val, 0);
	pkt_reset(&want);
	add_resp(&want, MC_BIN_DECREMENT, 0, NULL, 0, NULL, val, 8, out_cas(f));
	assert_out(f, &want);
	assert_int_equal(f->mf->worker->stats.decr_hits, 1);

	/* Non-numeric, CAS mismatch, quiet. */
	do_set(f, "t", "text", 0);
	incr_ext(ext, 1, 0, 0);
	pkt_reset(&req);
	add_req(&req, MC_BIN_INCREMENT, ext, 20, "t", NULL, 0, 0);
	add_req(&req, MC_BIN_INCREMENT, ext, 20, "n", NULL, 0, 1);
	add_req(&req, MC_BIN_INCREMENTQ, ext, 20, "n", NULL, 0, 0);
	add_req(&req, MC_BIN_DECREMENTQ, ext, 20, "n", NULL, 0, 0);
	add_req(&req, MC_BIN_NOOP, NULL, 0, NULL, NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_err(&want, MC_BIN_INCREMENT, MC_BIN_DELTA_BADVAL,
		"Non-numeric server-side value for incr or decr");
	add_err(&want, MC_BIN_INCREMENT, MC_BIN_KEY_EEXISTS, "Data exists for key.");
	add_resp(&want, MC_BIN_NOOP, 0, NULL, 0, NULL, NULL, 0, 0);
	assert_out(f, &want);
}

static void test_touch_gat(void **state)
{
	struct fx *f = *state;
	unsigned char flags[4], ext[4];
	put32(flags, 0x1234);
	uint64_t cas = do_set(f, "k1", "hello", 0x1234);

	put32(ext, 100);
	pkt_reset(&req);
	add_req(&req, MC_BIN_TOUCH, ext, 4, "k1", NULL, 0, 0);
	add_req(&req, MC_BIN_TOUCH, ext, 4, "km", NULL, 0, 0);
	add_req(&req, MC_BIN_GAT, ext, 4, "k1", NULL, 0, 0);
	add_req(&req, MC_BIN_GATK, ext, 4, "k1", NULL, 0, 0);
	add_req(&req, MC_BIN_GATK, ext, 4, "km", NULL, 0, 0);
	add_req(&req, MC_BIN_GAT, ext, 4, "km", NULL, 0, 0);
	add_req(&req, MC_BIN_GATQ, ext, 4, "k1", NULL, 0, 0);
	add_req(&req, MC_BIN_GATQ, ext, 4, "km", NULL, 0, 0);
	add_req(&req, MC_BIN_GATKQ, ext, 4, "k1", NULL, 0, 0);
	add_req(&req, MC_BIN_GATKQ, ext, 4, "km", NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	/* TOUCH answers the flags as extras, without the value. */
	add_resp(&want, MC_BIN_TOUCH, 0, flags, 4, NULL, NULL, 0, cas);
	add_err(&want, MC_BIN_TOUCH, MC_BIN_KEY_ENOENT, "Not found");
	add_resp(&want, MC_BIN_GAT, 0, flags, 4, NULL, "hello", 5, cas);
	add_resp(&want, MC_BIN_GATK, 0, flags, 4, "k1", "hello", 5, cas);
	add_resp(&want, MC_BIN_GATK, MC_BIN_KEY_ENOENT, NULL, 0, "km", NULL, 0, 0);
	add_err(&want, MC_BIN_GAT, MC_BIN_KEY_ENOENT, "Not found");
	add_resp(&want, MC_BIN_GATQ, 0, flags, 4, NULL, "hello", 5, cas);
	add_resp(&want, MC_BIN_GATKQ, 0, flags, 4, "k1", "hello", 5, cas);
	assert_out(f, &want);
	assert_int_equal(f->mf->worker->stats.cmd_touch, 10);
	assert_int_equal(f->mf->worker->stats.touch_hits, 5);
	assert_int_equal(f->mf->worker->stats.touch_misses, 5);

	/* The new exptime took: the key expires. */
	cache_clock_set_manual(cache_clock_now());
	put32(ext, 2);
	pkt_reset(&req);
	add_req(&req, MC_BIN_TOUCH, ext, 4, "k1", NULL, 0, 0);
	feed(f, req.b, req.len);
	assert_int_equal(f->mf->out.data[7], 0);
	cache_clock_advance(5);
	pkt_reset(&req);
	add_req(&req, MC_BIN_GET, NULL, 0, "k1", NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_err(&want, MC_BIN_GET, MC_BIN_KEY_ENOENT, "Not found");
	assert_out(f, &want);
	cache_clock_set_real();
}

static void test_flush(void **state)
{
	struct fx *f = *state;
	unsigned char ext[4];

	do_set(f, "a", "1", 0);
	pkt_reset(&req);
	add_req(&req, MC_BIN_FLUSH, NULL, 0, NULL, NULL, 0, 0);
	add_req(&req, MC_BIN_GET, NULL, 0, "a", NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_resp(&want, MC_BIN_FLUSH, 0, NULL, 0, NULL, NULL, 0, 0);
	add_err(&want, MC_BIN_GET, MC_BIN_KEY_ENOENT, "Not found");
	assert_out(f, &want);

	/* FLUSHQ with a delay: quiet, items die later. The clock moves on
	 * first so "b" is stored after the first flush's second. */
	cache_clock_set_manual(cache_clock_now() + 2);
	do_set(f, "b", "2", 0);
	put32(ext, 10);
	pkt_reset(&req);
	add_req(&req, MC_BIN_FLUSHQ, ext, 4, NULL, NULL, 0, 0);
	add_req(&req, MC_BIN_GETK, NULL, 0, "b", NULL, 0, 0);
	feed(f, req.b, req.len);
	assert_int_equal(f->mf->out.len, 24 + 4 + 1 + 1);
	assert_int_equal((unsigned char)f->mf->out.data[1], MC_BIN_GETK);
	cache_clock_advance(20);
	pkt_reset(&req);
	add_req(&req, MC_BIN_GET, NULL, 0, "b", NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_err(&want, MC_BIN_GET, MC_BIN_KEY_ENOENT, "Not found");
	assert_out(f, &want);
	cache_clock_set_real();
	assert_int_equal(f->mf->worker->stats.cmd_flush, 2);
}

static void test_noop_version_quit(void **state)
{
	struct fx *f = *state;

	pkt_reset(&req);
	add_req(&req, MC_BIN_NOOP, NULL, 0, NULL, NULL, 0, 0);
	add_req(&req, MC_BIN_VERSION, NULL, 0, NULL, NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_resp(&want, MC_BIN_NOOP, 0, NULL, 0, NULL, NULL, 0, 0);
	add_resp(&want, MC_BIN_VERSION, 0, NULL, 0, NULL, "1.6.18-dpcache-" DPCACHE_VERSION,
		 strlen("1.6.18-dpcache-" DPCACHE_VERSION), 0);
	assert_out(f, &want);
	assert_int_equal(f->rc, MC_FEED_MORE);

	pkt_reset(&req);
	add_req(&req, MC_BIN_QUIT, NULL, 0, NULL, NULL, 0, 0);
	add_req(&req, MC_BIN_NOOP, NULL, 0, NULL, NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_resp(&want, MC_BIN_QUIT, 0, NULL, 0, NULL, NULL, 0, 0);
	assert_out(f, &want);
	assert_int_equal(f->rc, MC_FEED_CLOSE);

	fx_reconnect(f);
	pkt_reset(&req);
	add_req(&req, MC_BIN_QUITQ, NULL, 0, NULL, NULL, 0, 0);
	feed(f, req.b, req.len);
	assert_int_equal(f->mf->out.len, 0);
	assert_int_equal(f->rc, MC_FEED_CLOSE);
}

/* Splits the reply into packets: counts them, checks each header. */
static size_t count_packets(const struct fx *f, size_t *last_bodylen)
{
	size_t n = 0, off = 0;
	while (off + 24 <= f->mf->out.len) {
		const unsigned char *h = (const unsigned char *)f->mf->out.data + off;
		assert_int_equal(h[0], 0x81);
		uint32_t bl = ((uint32_t)h[8] << 24) | (h[9] << 16) | (h[10] << 8) | h[11];
		*last_bodylen = bl;
		off += 24 + bl;
		n++;
	}
	assert_int_equal(off, f->mf->out.len);
	return n;
}

static void test_stat(void **state)
{
	struct fx *f = *state;
	size_t last = 99;

	pkt_reset(&req);
	add_req(&req, MC_BIN_STAT, NULL, 0, NULL, NULL, 0, 0);
	feed(f, req.b, req.len);
	assert_true(count_packets(f, &last) > 5);
	assert_int_equal(last, 0);        /* ends with an empty stat */
	assert_int_equal(f->mf->out.data[1], MC_BIN_STAT);

	pkt_reset(&req);
	add_req(&req, MC_BIN_STAT, NULL, 0, "nosuchgroup", NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_err(&want, MC_BIN_STAT, MC_BIN_KEY_ENOENT, "Not found");
	assert_out(f, &want);

	pkt_reset(&req);
	add_req(&req, MC_BIN_STAT, NULL, 0, "settings", NULL, 0, 0);
	feed(f, req.b, req.len);
	assert_true(count_packets(f, &last) > 1);
	assert_int_equal(last, 0);

	/* "detail": memcached's switches, with nothing to dump. */
	pkt_reset(&req);
	add_req(&req, MC_BIN_STAT, NULL, 0, "detail on", NULL, 0, 0);
	add_req(&req, MC_BIN_STAT, NULL, 0, "detail", NULL, 0, 0);
	add_req(&req, MC_BIN_STAT, NULL, 0, "detail dump", NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_resp(&want, MC_BIN_STAT, 0, NULL, 0, NULL, NULL, 0, 0);
	add_err(&want, MC_BIN_STAT, MC_BIN_KEY_ENOENT, "Not found");
	add_resp(&want, MC_BIN_STAT, 0, NULL, 0, "detailed", "END\r\n", 5, 0);
	add_resp(&want, MC_BIN_STAT, 0, NULL, 0, NULL, NULL, 0, 0);
	assert_out(f, &want);

	/* reset answers the terminator alone, and resets. */
	pkt_reset(&req);
	add_req(&req, MC_BIN_GET, NULL, 0, "x", NULL, 0, 0);
	feed(f, req.b, req.len);
	assert_true(f->mf->worker->stats.cmd_get > 0);
	pkt_reset(&req);
	add_req(&req, MC_BIN_STAT, NULL, 0, "reset", NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_resp(&want, MC_BIN_STAT, 0, NULL, 0, NULL, NULL, 0, 0);
	assert_out(f, &want);
	assert_int_equal(f->mf->worker->stats.cmd_get, 0);
}

static void test_sasl_and_unknown(void **state)
{
	struct fx *f = *state;
	unsigned char ext[4] = { 0, 0, 0, 1 };

	pkt_reset(&req);
	add_req(&req, MC_BIN_SASL_LIST_MECHS, NULL, 0, NULL, NULL, 0, 0);
	add_req(&req, MC_BIN_SASL_AUTH, NULL, 0, "PLAIN", "\0u\0p", 4, 0);
	add_req(&req, MC_BIN_SASL_STEP, NULL, 0, "PLAIN", "\0u\0p", 4, 0);
	add_req(&req, 0x50, NULL, 0, NULL, NULL, 0, 0);
	add_req(&req, 0x50, NULL, 0, NULL, "abcd", 4, 0);
	/* Differs from memcached, which drops too much here and hangs. */
	add_req(&req, 0x50, ext, 4, "kk", "abcd", 4, 0);
	add_req(&req, MC_BIN_VERBOSITY, ext, 4, NULL, NULL, 0, 0);
	add_req(&req, MC_BIN_NOOP, NULL, 0, NULL, NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_err(&want, MC_BIN_SASL_LIST_MECHS, MC_BIN_UNKNOWN_COMMAND, "Unknown command");
	add_err(&want, MC_BIN_SASL_AUTH, MC_BIN_UNKNOWN_COMMAND, "Unknown command");
	add_err(&want, MC_BIN_SASL_STEP, MC_BIN_UNKNOWN_COMMAND, "Unknown command");
	add_err(&want, 0x50, MC_BIN_UNKNOWN_COMMAND, "Unknown command");
	add_err(&want, 0x50, MC_BIN_UNKNOWN_COMMAND, "Unknown command");
	add_err(&want, 0x50, MC_BIN_UNKNOWN_COMMAND, "Unknown command");
	add_err(&want, MC_BIN_VERBOSITY, MC_BIN_UNKNOWN_COMMAND, "Unknown command");
	add_resp(&want, MC_BIN_NOOP, 0, NULL, 0, NULL, NULL, 0, 0);
	assert_out(f, &want);
	assert_int_equal(f->rc, MC_FEED_MORE);
}

/* ---- framing errors ------------------------------------------------------ */

/* One malformed request after a NOOP: the reply and the close. */
static void check_fatal(struct fx *f, const struct pkt *bad, int want_status,
			uint8_t op)
{
	fx_reconnect(f);
	pkt_reset(&req);
	add_req(&req, MC_BIN_NOOP, NULL, 0, NULL, NULL, 0, 0);
	memcpy(req.b + req.len, bad->b, bad->len);
	req.len += bad->len;
	add_req(&req, MC_BIN_NOOP, NULL, 0, NULL, NULL, 0, 0);
	feed(f, req.b, req.len);
	assert_int_equal(f->rc, MC_FEED_CLOSE);
	pkt_reset(&want);
	add_resp(&want, MC_BIN_NOOP, 0, NULL, 0, NULL, NULL, 0, 0);
	if (want_status == MC_BIN_EINVAL)
		add_err(&want, op, MC_BIN_EINVAL, "Invalid arguments");
	else if (want_status == MC_BIN_UNKNOWN_COMMAND)
		add_err(&want, op, MC_BIN_UNKNOWN_COMMAND, "Unknown command");
	assert_out(f, &want);
}

static void test_framing_errors(void **state)
{
	struct fx *f = *state;
	static struct pkt bad;
	unsigned char ext8[8] = { 0 }, ext20[20] = { 0 };
	char key[300];
	memset(key, 'a', sizeof(key));
	key[251] = '\0';

	/* Bad magic mid-stream: closed without a reply. */
	pkt_reset(&bad);
	add_raw(&bad, 0x81, MC_BIN_NOOP, NULL, 0, NULL, 0, NULL, 0, 0, 0xdeadbeef);
	check_fatal(f, &bad, -1, 0);
	pkt_reset(&bad);
	memset(bad.b, 0, 24);
	bad.len = 24;
	check_fatal(f, &bad, -1, 0);

	/* keylen > bodylen: UNKNOWN_COMMAND and close. */
	pkt_reset(&bad);
	add_req(&bad, MC_BIN_GET, NULL, 0, "abc", NULL, 0, 0);
	put32(bad.b + 8, 2);
	bad.len = 24 + 2;
	check_fatal(f, &bad, MC_BIN_UNKNOWN_COMMAND, MC_BIN_GET);
	/* extlen + keylen > bodylen */
	pkt_reset(&bad);
	add_raw(&bad, 0x80, MC_BIN_NOOP, NULL, 0, NULL, 0, NULL, 0, 0, 0xdeadbeef);
	bad.b[4] = 4;
	put32(bad.b + 8, 2);
	check_fatal(f, &bad, MC_BIN_UNKNOWN_COMMAND, MC_BIN_NOOP);

	/* Lengths that do not fit the opcode: EINVAL and close. */
	struct { uint8_t op; const void *ext; size_t next; const char *key;
		 const char *val; } cases[] = {
		{ MC_BIN_GET, "xx", 2, "abc", NULL },
		{ MC_BIN_GET, NULL, 0, "abc", "zz" },
		{ MC_BIN_GET, NULL, 0, NULL, NULL },
		{ MC_BIN_SET, "1234", 4, "abc", "zz" },
		{ MC_BIN_SET, ext8, 8, NULL, "zz" },
		{ MC_BIN_NOOP, NULL, 0, NULL, "z" },
		{ MC_BIN_VERSION, NULL, 0, "x", NULL },
		{ MC_BIN_QUIT, NULL, 0, NULL, "x" },
		{ MC_BIN_FLUSH, "zz", 2, NULL, NULL },
		{ MC_BIN_STAT, "zzzz", 4, NULL, NULL },
		{ MC_BIN_APPEND, "abcd", 4, "k2", "x" },
		{ MC_BIN_INCREMENT, ext8, 8, "n", NULL },
		{ MC_BIN_INCREMENT, ext20, 20, "n", "zz" },
		{ MC_BIN_DELETE, NULL, 0, "n", "zz" },
		{ MC_BIN_TOUCH, NULL, 0, "k2", NULL },
		{ MC_BIN_GAT, "abcd", 4, NULL, NULL },
		{ MC_BIN_SASL_AUTH, NULL, 0, NULL, "xx" },
		{ MC_BIN_SASL_LIST_MECHS, NULL, 0, NULL, "xx" },
		{ MC_BIN_GET, NULL, 0, key, NULL },          /* key of 251 bytes */
		{ 0x50, NULL, 0, key, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pkt_reset(&bad);
		add_req(&bad, cases[i].op, cases[i].ext, cases[i].next, cases[i].key,
			cases[i].val, cases[i].val ? strlen(cases[i].val) : 0, 0);
		check_fatal(f, &bad, MC_BIN_EINVAL, cases[i].op);
	}
	assert_true(f->mf->worker->stats.protocol_errors >= 20);
}

static void test_too_large(void **state)
{
	struct fx *f = *state;
	static char big[ITEM_MAX + 100];
	unsigned char ext[8];
	store_ext(ext, 0, 0);
	memset(big, 'x', sizeof(big));

	do_set(f, "big", "old", 0);
	pkt_reset(&req);
	add_req(&req, MC_BIN_SET, ext, 8, "big", big, sizeof(big), 0);
	add_req(&req, MC_BIN_NOOP, NULL, 0, NULL, NULL, 0, 0);
	add_req(&req, MC_BIN_GET, NULL, 0, "big", NULL, 0, 0);
	add_req(&req, MC_BIN_SETQ, ext, 8, "big", big, sizeof(big), 0);
	add_req(&req, MC_BIN_APPEND, NULL, 0, "big", big, sizeof(big), 0);
	add_req(&req, MC_BIN_NOOP, NULL, 0, NULL, NULL, 0, 0);
	feed(f, req.b, req.len);
	pkt_reset(&want);
	add_err(&want, MC_BIN_SET, MC_BIN_E2BIG, "Too large.");
	add_resp(&want, MC_BIN_NOOP, 0, NULL, 0, NULL, NULL, 0, 0);
	/* The failed SET took the old value with it. */
	add_err(&want, MC_BIN_GET, MC_BIN_KEY_ENOENT, "Not found");
	add_err(&want, MC_BIN_SETQ, MC_BIN_E2BIG, "Too large.");
	add_err(&want, MC_BIN_APPEND, MC_BIN_E2BIG, "Too large.");
	add_resp(&want, MC_BIN_NOOP, 0, NULL, 0, NULL, NULL, 0, 0);
	assert_out(f, &want);
	assert_int_equal(f->mf->worker->stats.store_too_large, 3);

	/* A 4 GiB body: answered at once, swallowed as it comes. */
	fx_reconnect(f);
	pkt_reset(&req);
	add_req(&req, MC_BIN_SET, ext, 8, "k", NULL, 0, 0);
	put32(req.b + 8, 0xffffffffu);
	feed_chunk(f, (const char *)req.b, req.len);
	assert_int_equal(f->rc, MC_FEED_MORE);
	pkt_reset(&want);
	add_err(&want, MC_BIN_SET, MC_BIN_E2BIG, "Too large.");
	assert_out(f, &want);
	assert_int_equal(f->mf->session->bin.phase, MC_BIN_PHASE_SWALLOW);
}

/* A full cache that may not evict: ENOMEM with memcached's text, the body
 * swallowed, the connection in sync. */
static void test_no_memory(void **state)
{
	struct fx *f = *state;
	static char val[60000];
	unsigned char ext[8];
	store_ext(ext, 0, 0);
	memset(val, 'm', sizeof(val));

	struct cache_config cc = {
		.mem_limit = 1024u * 1024u,
		.item_size_max = ITEM_MAX,
		.no_evict = true,
	};
	struct cache *small = cache_create(&cc);
	assert_non_null(small);
	struct mc_server_config sc = { .cache = small, .item_size_max = ITEM_MAX };
	struct mc_server *srv = mc_server_create(&sc);
	assert_non_null(srv);
	/* The fixture's worker goes away first: one attached cache per thread. */
	mc_session_destroy(&f->mf->session);
	mc_worker_destroy(&f->mf->worker);
	struct mc_worker *w = mc_worker_create(srv);
	assert_non_null(w);
	struct mc_session *s = mc_session_create(w);
	assert_non_null(s);

	bool saw_enomem = false;
	for (int i = 0; i < 64 && !saw_enomem; i++) {
		char key[16];
		snprintf(key, sizeof(key), "m%d", i);
		pkt_reset(&req);
		add_req(&req, MC_BIN_SET, ext, 8, key, val, sizeof(val), 0);
		add_req(&req, MC_BIN_NOOP, NULL, 0, NULL, NULL, 0, 0);
		size_t used = 0;
		f->mf->out.len = 0;
		assert_int_equal(mc_session_feed(s, (const char *)req.b, req.len,
						 &used, &f->mf->out), MC_FEED_MORE);
		assert_int_equal(used, req.len);
		if ((unsigned char)f->mf->out.data[7] == MC_BIN_ENOMEM) {
			pkt_reset(&want);
			add_err(&want, MC_BIN_SET, MC_BIN_ENOMEM,
				"Out of memory allocating item");
			add_resp(&want, MC_BIN_NOOP, 0, NULL, 0, NULL, NULL, 0, 0);
			assert_out(f, &want);
			saw_enomem = true;
		}
		cache_thread_quiescent(mc_worker_cache_thread(w));
	}
	assert_true(saw_enomem);
	assert_int_equal(w->stats.store_no_memory, 1);

	mc_session_destroy(&s);
	mc_worker_destroy(&w);
	mc_server_destroy(&srv);
	cache_destroy(&small);
}

/* A value that arrives in pieces lands whole. */
static void test_value_streamed(void **state)
{
	struct fx *f = *state;
	static char val[40000];
	unsigned char ext[8];
	store_ext(ext, 9, 0);
	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (char)('a' + i % 26);

	pkt_reset(&req);
	add_req(&req, MC_BIN_SET, ext, 8, "s", val, sizeof(val), 0);
	f->mf->out.len = 0;
	/* Header+extras+key first, then the value 1000 bytes at a time: each
	 * call consumes all it is given. */
	size_t head = 24 + 8 + 1, off = 0;
	assert_int_equal(feed_chunk(f, (const char *)req.b, head), 0);
	off = head;
	while (off < req.len) {
		size_t n = req.len - off < 1000 ? req.len - off : 1000;
		assert_int_equal(feed_chunk(f, (const char *)req.b + off, n), 0);
		off += n;
	}
	assert_int_equal(f->mf->out.len, 24);
	pkt_reset(&req);
	add_req(&req, MC_BIN_GET, NULL, 0, "s", NULL, 0, 0);
	feed(f, req.b, req.len);
	assert_int_equal(f->mf->out.len, 24 + 4 + sizeof(val));
	assert_memory_equal(f->mf->out.data + 28, val, sizeof(val));
}

/* ---- every byte boundary ------------------------------------------------- */

/* Zeroes the CAS of every response packet (CAS values differ per run). */
static void mask_cas(char *buf, size_t len)
{
	size_t off = 0;
	while (off + 24 <= len) {
		unsigned char *h = (unsigned char *)buf + off;
		uint32_t bl = ((uint32_t)h[8] << 24) | (h[9] << 16) | (h[10] << 8) | h[11];
		memset(h + 16, 0, 8);
		off += 24 + bl;
	}
}

static void test_split_every_byte(void **state)
{
	struct fx *f = *state;
	static struct pkt seq;
	unsigned char ext8[8], ext4[4], ext20[20];
	store_ext(ext8, 5, 0);
	put32(ext4, 0);
	incr_ext(ext20, 2, 7, 0);

	pkt_reset(&seq);
	add_req(&seq, MC_BIN_SET, ext8, 8, "key1", "value-one", 9, 0);
	add_req(&seq, MC_BIN_GETK, NULL, 0, "key1", NULL, 0, 0);
	add_req(&seq, MC_BIN_GETQ, NULL, 0, "missing", NULL, 0, 0);
	add_req(&seq, MC_BIN_APPENDQ, NULL, 0, "key1", "+", 1, 0);
	add_req(&seq, MC_BIN_GAT, ext4, 4, "key1", NULL, 0, 0);
	add_req(&seq, MC_BIN_INCREMENT, ext20, 20, "ctr", NULL, 0, 0);
	add_req(&seq, 0x50, NULL, 0, NULL, "junk", 4, 0);
	add_req(&seq, MC_BIN_DELETE, NULL, 0, "ctr", NULL, 0, 0);
	add_req(&seq, MC_BIN_SET, ext8, 8, "key1", "", 0, 0);
	add_req(&seq, MC_BIN_GET, NULL, 0, "key1", NULL, 0, 0);
	add_req(&seq, MC_BIN_NOOP, NULL, 0, NULL, NULL, 0, 0);

	/* Reference: everything in one piece. */
	fx_reconnect(f);
	feed(f, seq.b, seq.len);
	assert_int_equal(f->rc, MC_FEED_MORE);
	mask_cas(f->mf->out.data, f->mf->out.len);
	size_t ref_len = f->mf->out.len;
	char *ref = malloc(ref_len);
	assert_non_null(ref);
	memcpy(ref, f->mf->out.data, ref_len);

	for (size_t cut = 1; cut < seq.len; cut++) {
		fx_reconnect(f);
		/* First piece; the transport keeps what was not consumed. */
		size_t left = feed_chunk(f, (const char *)seq.b, cut);
		size_t off = cut - left;
		left = feed_chunk(f, (const char *)seq.b + off, seq.len - off);
		assert_int_equal(left, 0);
		assert_int_equal(f->rc, MC_FEED_MORE);
		mask_cas(f->mf->out.data, f->mf->out.len);
		assert_int_equal(f->mf->out.len, ref_len);
		assert_memory_equal(f->mf->out.data, ref, ref_len);
	}
	free(ref);
}

/* ---- flow control -------------------------------------------------------- */

static void test_pause_between_quiet_gets(void **state)
{
	struct fx *f = *state;     /* high water 256 bytes */
	static struct pkt many;
	do_set(f, "p", "0123456789012345678901234567890123456789", 0);

	pkt_reset(&many);
	for (int i = 0; i < 50; i++)
		add_req(&many, MC_BIN_GETQ, NULL, 0, "p", NULL, 0, 0);
	add_req(&many, MC_BIN_NOOP, NULL, 0, NULL, NULL, 0, 0);

	f->mf->out.len = 0;
	size_t off = 0;
	int pauses = 0;
	size_t max_out = 0;
	while (off < many.len) {
		size_t used = 0;
		int rc = mc_session_feed(f->mf->session, (const char *)many.b + off,
					 many.len - off, &used, &f->mf->out);
		off += used;
		if (f->mf->out.len > max_out)
			max_out = f->mf->out.len;
		if (rc == MC_FEED_PAUSE) {
			pauses++;
			f->mf->out.len = 0;              /* "sent" */
		} else {
			assert_int_equal(rc, MC_FEED_MORE);
		}
	}
	assert_true(pauses >= 5);
	/* Output stays below high water + one reply. */
	assert_true(max_out < 256 + 24 + 4 + 40);
}

/* ---- random garbage ------------------------------------------------------ */

static void test_random_after_magic(void **state)
{
	struct fx *f = *state;
	static unsigned char buf[512];
	unsigned seed = 12345;

	for (int round = 0; round < 2000; round++) {
		fx_reconnect(f);
		size_t n = 1 + (size_t)(rand_r(&seed) % (int)sizeof(buf));
		for (size_t i = 0; i < n; i++)
			buf[i] = (unsigned char)rand_r(&seed);
		buf[0] = 0x80;
		/* Keep lengths small half the time so handlers run. */
		if (round % 2 == 0 && n >= 24) {
			buf[2] = 0;
			buf[3] %= 16;
			buf[8] = buf[9] = buf[10] = 0;
			buf[11] %= 64;
		}
		size_t used = 0;
		int rc = mc_session_feed(f->mf->session, (const char *)buf, n, &used, &f->mf->out);
		assert_true(used <= n);
		assert_true(rc == MC_FEED_MORE || rc == MC_FEED_CLOSE ||
			    rc == MC_FEED_PAUSE);
		cache_thread_quiescent(mc_worker_cache_thread(f->mf->worker));
		f->mf->out.len = 0;
	}
}

/* One request from a buffer (the UDP path). Also makes the linker take
 * binary.o from the archive in this test. */
static void test_run_buffer(void **state)
{
	struct fx *f = *state;
	unsigned char ext[8];
	store_ext(ext, 0, 0);

	pkt_reset(&req);
	add_req(&req, MC_BIN_SET, ext, 8, "rb", "v", 1, 0);
	f->mf->out.len = 0;
	assert_int_equal(mc_binary_run_buffer(f->mf->worker, (const char *)req.b, req.len,
					      &f->mf->out), 0);
	assert_int_equal(f->mf->out.len, 24);
	/* Cut short: the value never completes. */
	f->mf->out.len = 0;
	assert_int_equal(mc_binary_run_buffer(f->mf->worker, (const char *)req.b, req.len - 1,
					      &f->mf->out), -EINVAL);
	assert_int_equal(f->mf->out.len, 0);
	/* The NOOP alone. */
	size_t at = req.len;
	add_req(&req, MC_BIN_NOOP, NULL, 0, NULL, NULL, 0, 0);
	assert_int_equal(mc_binary_run_buffer(f->mf->worker, (const char *)req.b + at,
					      req.len - at, &f->mf->out), 0);
	assert_int_equal(f->mf->out.len, 24);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_set_get_getk, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_quiet_gets, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_add_replace_cas, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_append_prepend, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_delete, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_incr_decr, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_touch_gat, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_flush, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_noop_version_quit, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_stat, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_sasl_and_unknown, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_framing_errors, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_too_large, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_value_streamed, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_no_memory, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_split_every_byte, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_pause_between_quiet_gets,
						fx_setup_small_hw, fx_teardown),
		cmocka_unit_test_setup_teardown(test_random_after_magic, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_run_buffer, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
