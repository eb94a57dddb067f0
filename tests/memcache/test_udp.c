/*
 * tests/memcache/test_udp.c - memcached's UDP frame (dataplane/memcache/
 * udp.c): header checks, replies split into numbered datagrams, one request
 * per datagram, commands refused over UDP, the amplification bound.
 */
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
#include "dataplane/memcache/mc_internal.h"

struct fx {
	struct mc_fixture *mf; /* cache, server (UDP on), worker, out */
};

static int fx_setup(void **state)
{
	struct mc_fixture_opts o = {
		.mem_limit = 32u * 1024u * 1024u,
		.udp_enabled = true,
	};
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->mf = mc_fixture_create(&o);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	mc_fixture_destroy(&f->mf);
	free(f);
	return 0;
}

/* The reply a TCP connection gets for the same bytes. */
static void tcp_reply(struct fx *f, const void *req, size_t len, struct mc_buf *reply)
{
	struct mc_session *s = mc_session_create(f->mf->worker);
	size_t used = 0;
	assert_non_null(s);
	reply->len = 0;
	int rc = mc_session_feed(s, req, len, &used, reply);
	assert_int_equal(rc, MC_FEED_MORE);
	assert_int_equal(used, len);
	mc_session_destroy(&s);
}

/* Sends 'payload' with a frame header; returns the datagram count. */
static unsigned udp_send(struct fx *f, uint16_t rid, uint16_t seq, uint16_t total,
			 const void *payload, size_t len)
{
	static char dgram[70000];
	assert_true(len + 8 <= sizeof(dgram));
	dgram[0] = (char)(rid >> 8);
	dgram[1] = (char)rid;
	dgram[2] = (char)(seq >> 8);
	dgram[3] = (char)seq;
	dgram[4] = (char)(total >> 8);
	dgram[5] = (char)total;
	dgram[6] = dgram[7] = 0;
	memcpy(dgram + 8, payload, len);
	f->mf->out.len = 0;
	unsigned n = mc_udp_handle(f->mf->worker, dgram, len + 8, &f->mf->out);
	cache_thread_quiescent(mc_worker_cache_thread(f->mf->worker));
	return n;
}

/*
 * Checks the framing of n datagrams in f->mf->out (every one but the last is
 * MC_UDP_MAX_PAYLOAD bytes; ids, sequence numbers, totals) and reassembles
 * their payload into 'payload'.
 */
static void check_frames(struct fx *f, unsigned n, uint16_t rid, struct mc_buf *payload)
{
	size_t off = 0;
	payload->len = 0;
	for (unsigned i = 0; i < n; i++) {
		const unsigned char *h = (const unsigned char *)f->mf->out.data + off;
		size_t dlen = i + 1 < n ? MC_UDP_MAX_PAYLOAD : f->mf->out.len - off;
		assert_true(dlen > MC_UDP_HEADER_SIZE);
		assert_true(dlen <= MC_UDP_MAX_PAYLOAD);
		assert_int_equal((h[0] << 8) | h[1], rid);
		assert_int_equal((h[2] << 8) | h[3], i);
		assert_int_equal((h[4] << 8) | h[5], n);
		assert_int_equal((h[6] << 8) | h[7], 0);
		assert_int_equal(mc_buf_append(payload, h + 8, dlen - 8), 0);
		off += dlen;
	}
	assert_int_equal(off, f->mf->out.len);
}

static char big_value[5000];

static void store_big(struct fx *f)
{
	static char req[6000];
	struct mc_buf r;
	for (size_t i = 0; i < sizeof(big_value); i++)
		big_value[i] = (char)('A' + i % 26);
	int n = snprintf(req, sizeof(req), "set big 3 0 %zu\r\n", sizeof(big_value));
	memcpy(req + n, big_value, sizeof(big_value));
	memcpy(req + n + sizeof(big_value), "\r\n", 2);
	mc_buf_init(&r);
	tcp_reply(f, req, (size_t)n + sizeof(big_value) + 2, &r);
	assert_int_equal(r.len, 8);
	assert_memory_equal(r.data, "STORED\r\n", 8);
	mc_buf_deinit(&r);
}

static void test_text_get_multi_datagram(void **state)
{
	struct fx *f = *state;
	struct mc_buf tcp, payload;
	mc_buf_init(&tcp);
	mc_buf_init(&payload);
	store_big(f);

	static const char get[] = "get big\r\n";
	unsigned n = udp_send(f, 0x1234, 0, 1, get, sizeof(get) - 1);
	/* "VALUE big 3 5000\r\n" + 5000 + "\r\nEND\r\n" = 5025 bytes: 4 datagrams
	 * of at most 1392 payload bytes, as memcached sends. */
	assert_int_equal(n, 4);
	check_frames(f, n, 0x1234, &payload);
	tcp_reply(f, get, sizeof(get) - 1, &tcp);
	assert_int_equal(payload.len, tcp.len);
	assert_memory_equal(payload.data, tcp.data, tcp.len);
	assert_int_equal(payload.len, 5025);

	mc_buf_deinit(&tcp);
	mc_buf_deinit(&payload);
}

static void test_binary_get_multi_datagram(void **state)
{
	struct fx *f = *state;
	struct mc_buf tcp, payload;
	mc_buf_init(&tcp);
	mc_buf_init(&payload);
	store_big(f);

	unsigned char req[24 + 3] = { 0x80, MC_BIN_GETK, 0, 3 };
	req[11] = 3;                               /* bodylen */
	memcpy(req + 12, "\x01\x02\x03\x04", 4);   /* opaque */
	memcpy(req + 24, "big", 3);
	unsigned n = udp_send(f, 7, 0, 1, req, sizeof(req));
	assert_int_equal(n, 4);
	check_frames(f, n, 7, &payload);
	tcp_reply(f, req, sizeof(req), &tcp);
	assert_int_equal(payload.len, 24 + 4 + 3 + 5000);
	assert_int_equal(payload.len, tcp.len);
	assert_memory_equal(payload.data, tcp.data, tcp.len);

	/* A quiet miss has no reply at all. */
	unsigned char q[24 + 2] = { 0x80, MC_BIN_GETQ, 0, 2 };
	q[11] = 2;
	memcpy(q + 24, "no", 2);
	assert_int_equal(udp_send(f, 8, 0, 1, q, sizeof(q)), 0);
	assert_int_equal(f->mf->out.len, 0);

	mc_buf_deinit(&tcp);
	mc_buf_deinit(&payload);
}

static void test_small_requests(void **state)
{
	struct fx *f = *state;
	static const char set[] = "set u 0 0 1\r\nz\r\n";

	assert_int_equal(udp_send(f, 1, 0, 1, set, sizeof(set) - 1), 1);
	assert_int_equal(f->mf->out.len, 8 + 8);
	assert_memory_equal(f->mf->out.data, "\x00\x01\x00\x00\x00\x01\x00\x00STORED\r\n", 16);

	static const char get[] = "get u\r\n";
	assert_int_equal(udp_send(f, 0xffff, 0, 1, get, sizeof(get) - 1), 1);
	assert_memory_equal(f->mf->out.data, "\xff\xff\x00\x00\x00\x01\x00\x00"
			    "VALUE u 0 1\r\nz\r\nEND\r\n", 8 + 21);

	/* A line ending in a bare \n is one request too. */
	static const char ver[] = "version\n";
	assert_int_equal(udp_send(f, 2, 0, 1, ver, sizeof(ver) - 1), 1);
	assert_memory_equal(f->mf->out.data + 8, "VERSION ", 8);

	/* Binary NOOP: the opaque comes back. */
	unsigned char noop[24] = { 0x80, MC_BIN_NOOP };
	memcpy(noop + 12, "\xde\xad\xbe\xef", 4);
	assert_int_equal(udp_send(f, 3, 0, 1, noop, sizeof(noop)), 1);
	assert_int_equal(f->mf->out.len, 8 + 24);
	assert_int_equal((unsigned char)f->mf->out.data[8], 0x81);
	assert_memory_equal(f->mf->out.data + 8 + 12, "\xde\xad\xbe\xef", 4);
	assert_int_equal(f->mf->worker->stats.udp_dropped, 0);
}

static void test_bad_headers_dropped(void **state)
{
	struct fx *f = *state;
	static const char get[] = "get u\r\n";

	/* Multi-datagram requests (total != 1, seq != 0): dropped. */
	assert_int_equal(udp_send(f, 1, 0, 2, get, sizeof(get) - 1), 0);
	assert_int_equal(udp_send(f, 1, 1, 1, get, sizeof(get) - 1), 0);
	assert_int_equal(udp_send(f, 1, 0, 0, get, sizeof(get) - 1), 0);
	/* Nothing after the header, or not even a header. */
	assert_int_equal(udp_send(f, 1, 0, 1, "", 0), 0);
	f->mf->out.len = 0;
	assert_int_equal(mc_udp_handle(f->mf->worker, "\x00\x01\x00\x00\x00\x01\x00", 7, &f->mf->out), 0);
	assert_int_equal(mc_udp_handle(f->mf->worker, "", 0, &f->mf->out), 0);
	assert_int_equal(f->mf->out.len, 0);
	assert_int_equal(f->mf->worker->stats.udp_dropped, 6);
}

static void test_one_request_per_datagram(void **state)
{
	struct fx *f = *state;
	static const char two[] = "get a\r\nget b\r\n";
	static const char partial[] = "get a";
	static const char short_data[] = "set a 0 0 10\r\nabc\r\n";
	static const char extra[] = "set a 0 0 1\r\nz\r\nstats\r\n";

	assert_int_equal(udp_send(f, 1, 0, 1, two, sizeof(two) - 1), 0);
	assert_int_equal(udp_send(f, 1, 0, 1, partial, sizeof(partial) - 1), 0);
	assert_int_equal(udp_send(f, 1, 0, 1, short_data, sizeof(short_data) - 1), 0);
	assert_int_equal(udp_send(f, 1, 0, 1, extra, sizeof(extra) - 1), 0);

	/* Binary: bodylen must match the datagram exactly. */
	unsigned char noop[25] = { 0x80, MC_BIN_NOOP };
	assert_int_equal(udp_send(f, 1, 0, 1, noop, sizeof(noop)), 0);
	assert_int_equal(udp_send(f, 1, 0, 1, noop, 20), 0);
	assert_int_equal(f->mf->worker->stats.udp_dropped, 6);
}

static void test_refused_over_udp(void **state)
{
	struct fx *f = *state;
	static const char refused[] = "SERVER_ERROR command not allowed over UDP\r\n";
	static const char *cmds[] = { "stats\r\n", "stats settings\r\n",
				      "flush_all\r\n", "flush_all 10\r\n",
				      "shutdown\r\n" };

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		assert_int_equal(udp_send(f, 9, 0, 1, cmds[i], strlen(cmds[i])), 1);
		assert_int_equal(f->mf->out.len, 8 + sizeof(refused) - 1);
		assert_memory_equal(f->mf->out.data + 8, refused, sizeof(refused) - 1);
	}
	assert_int_equal(f->mf->worker->stats.cmd_flush, 0);

	/* Smuggled: the text parser rejects the bad flags without swallowing
	 * the data block, which would then run as a command (memcached too). */
	static const char smuggled[] = "set k abc 0 11\r\nflush_all\r\n\r\n";
	assert_int_equal(udp_send(f, 9, 0, 1, smuggled, sizeof(smuggled) - 1), 1);
	assert_memory_equal(f->mf->out.data + 8, refused, sizeof(refused) - 1);
	assert_int_equal(f->mf->worker->stats.cmd_flush, 0);

	const uint8_t ops[] = { MC_BIN_STAT, MC_BIN_FLUSH, MC_BIN_FLUSHQ };
	for (size_t i = 0; i < sizeof(ops); i++) {
		unsigned char req[24] = { 0x80, ops[i] };
		assert_int_equal(udp_send(f, 9, 0, 1, req, sizeof(req)), 1);
		const unsigned char *r = (const unsigned char *)f->mf->out.data + 8;
		assert_int_equal(r[0], 0x81);
		assert_int_equal(r[1], ops[i]);
		assert_int_equal((r[6] << 8) | r[7], MC_BIN_NOT_SUPPORTED);
	}
	assert_int_equal(f->mf->worker->stats.cmd_flush, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_text_get_multi_datagram, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_binary_get_multi_datagram, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_small_requests, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_headers_dropped, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_one_request_per_datagram, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_refused_over_udp, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
