/*
 * tests/memcache/test_text.c - the classic text protocol, byte for byte.
 *
 * The table below was recorded from stock memcached 1.6.18 (each request
 * sent on a fresh connection after flush_all, replies read back); dpcache
 * must answer the same bytes. Requests whose replies hold CAS values are
 * tested by hand further down, since CAS numbers differ between servers.
 */
#include <errno.h>

#include "tests/memcache/mc_test_util.h"

#include "dataplane/memcache/mc_internal.h"
#include "tests/memcache/corpus_text.h"

static const uint32_t T0 = 1700000000u;

static int setup(void **state)
{
	cache_clock_set_manual(T0);
	return mc_fixture_setup(state);
}

static int teardown(void **state)
{
	mc_fixture_teardown(state);
	cache_clock_set_real();
	return 0;
}

static void test_mc_text_pairs(void **state)
{
	(void)state;
	for (size_t i = 0; i < MC_NPAIRS(mc_text_pairs); i++) {
		const struct mc_pair *p = &mc_text_pairs[i];
		struct mc_fixture *f = mc_fixture_create(NULL);
		/* "<CLOSED>": memcached closed the connection after the reply */
		size_t nexp = p->nexp;
		bool closes = nexp >= 8 && memcmp(p->exp + nexp - 8, "<CLOSED>", 8) == 0;
		if (closes)
			nexp -= 8;
		mc_expect_n(f, p->req, p->nreq, p->exp, nexp);
		assert_int_equal(f->closed, closes);
		mc_fixture_destroy(&f);
	}
}

/* Reads the CAS of 'key' with gets. */
static uint64_t gets_cas(struct mc_fixture *f, const char *key)
{
	char req[300];
	snprintf(req, sizeof(req), "gets %s\r\n", key);
	mc_push(f, req, strlen(req));
	char *r = mc_take(f, NULL);
	unsigned flags, bytes;
	unsigned long long cas = 0;
	char k[260];
	assert_int_equal(sscanf(r, "VALUE %259s %u %u %llu", k, &flags, &bytes, &cas), 4);
	free(r);
	return cas;
}

static void test_cas(void **state)
{
	struct mc_fixture *f = *state;
	char req[128];

	mc_expect(f, "cas k 0 0 1 1\r\na\r\n", "NOT_FOUND\r\n");
	mc_expect(f, "set k 3 0 1\r\na\r\n", "STORED\r\n");
	uint64_t cas = gets_cas(f, "k");
	assert_true(cas != 0);
	snprintf(req, sizeof(req), "cas k 5 0 1 %llu\r\nb\r\n", (unsigned long long)cas + 1);
	mc_expect(f, req, "EXISTS\r\n");
	snprintf(req, sizeof(req), "cas k 5 0 1 %llu\r\nb\r\n", (unsigned long long)cas);
	mc_expect(f, req, "STORED\r\n");
	mc_expect(f, req, "EXISTS\r\n");
	mc_expect(f, "get k\r\n", "VALUE k 5 1\r\nb\r\nEND\r\n");
	uint64_t cas2 = gets_cas(f, "k");
	assert_true(cas2 != cas);
	snprintf(req, sizeof(req), "cas k 0 0 1 %llu noreply\r\nc\r\nget k\r\n",
		 (unsigned long long)cas2);
	mc_expect(f, req, "VALUE k 0 1\r\nc\r\nEND\r\n");

	struct mc_worker_stats *ws = &f->worker->stats;
	assert_int_equal(ws->cas_misses, 1);
	assert_int_equal(ws->cas_badval, 2);
	assert_int_equal(ws->cas_hits, 2);
}

static void test_gets_gats(void **state)
{
	struct mc_fixture *f = *state;

	mc_expect(f, "set a 1 0 1\r\nx\r\n", "STORED\r\n");
	uint64_t cas = gets_cas(f, "a");
	char exp[200];
	snprintf(exp, sizeof(exp), "VALUE a 1 1 %llu\r\nx\r\nEND\r\n", (unsigned long long)cas);
	mc_expect(f, "gats 100 a nope\r\n", exp);
	mc_expect(f, "mg a t\r\n", "HD t100\r\n");
	mc_expect(f, "gat -1 a\r\n", "VALUE a 1 1\r\nx\r\nEND\r\n");
	mc_expect(f, "get a\r\n", "END\r\n");
}

static void test_expiry_and_flush(void **state)
{
	struct mc_fixture *f = *state;

	mc_expect(f, "set a 0 10 1\r\nx\r\nset b 0 0 1\r\ny\r\n", "STORED\r\nSTORED\r\n");
	cache_clock_advance(11);
	mc_expect(f, "get a b\r\n", "VALUE b 0 1\r\ny\r\nEND\r\n");
	mc_expect(f, "flush_all 5\r\n", "OK\r\n");
	mc_expect(f, "get b\r\n", "VALUE b 0 1\r\ny\r\nEND\r\n");
	cache_clock_advance(6);
	mc_expect(f, "get b\r\n", "END\r\n");
	mc_expect(f, "set c 0 0 1\r\nz\r\nget c\r\n", "STORED\r\nVALUE c 0 1\r\nz\r\nEND\r\n");
	mc_expect(f, "flush_all\r\nget c\r\n", "OK\r\nEND\r\n");
}

/* Many requests in one buffer give the replies of each, in order. */
static void test_pipelining(void **state)
{
	struct mc_fixture *f = *state;
	const char *reqs[] = {
		"set a 0 0 1\r\n1\r\n", "get a\r\n", "incr a 5\r\n", "append a 0 0 1\r\nx\r\n",
		"get a b\r\n", "delete a\r\n", "bogus\r\n", "touch a 1\r\n", "mn\r\n",
		"ms m 2 T0\r\nhi\r\n", "mg m v\r\n", "version\r\n",
	};
	const char *reps[] = {
		"STORED\r\n", "VALUE a 0 1\r\n1\r\nEND\r\n", "6\r\n", "STORED\r\n",
		"VALUE a 0 2\r\n6x\r\nEND\r\n", "DELETED\r\n", "ERROR\r\n", "NOT_FOUND\r\n", "MN\r\n",
		"HD\r\n", "VA 2\r\nhi\r\n", "VERSION " "1.6.18-dpcache-" DPCACHE_VERSION "\r\n",
	};
	char all[1024] = "";
	char want[1024] = "";
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		strcat(all, reqs[i]);
		strcat(want, reps[i]);
	}
	mc_expect(f, all, want);
}

/* A multi-get larger than the high-water mark pauses between keys and
 * resumes where it stopped: every key once, in order. */
static void test_multiget_pause_resume(void **state)
{
	(void)state;
	struct mc_fixture_opts o = { .out_high_water = 100 };
	struct mc_fixture *f = mc_fixture_create(&o);
	char req[4096] = "get";
	char want[16384] = "";
	char line[128];

	for (int i = 0; i < 40; i++) {
		snprintf(line, sizeof(line), "set key%02d 0 0 20\r\n%020d\r\n", i, i);
		mc_expect(f, line, "STORED\r\n");
		snprintf(line, sizeof(line), " key%02d", i);
		strcat(req, line);
		snprintf(line, sizeof(line), "VALUE key%02d 0 20\r\n%020d\r\n", i, i);
		strcat(want, line);
	}
	strcat(req, "\r\nget key00\r\n");
	strcat(want, "END\r\nVALUE key00 0 20\r\n00000000000000000000\r\nEND\r\n");

	/* drive the session by hand to see the pauses */
	struct mc_buf out;
	mc_buf_init(&out);
	size_t pos = 0;
	size_t len = strlen(req);
	int pauses = 0;
	size_t got_len = 0;
	char *got = malloc(sizeof(want));
	for (;;) {
		size_t used = 0;
		int rc = mc_session_feed(f->session, req + pos, len - pos, &used, &out);
		pos += used;
		assert_true(out.len < 100 + 64);
		memcpy(got + got_len, out.data, out.len);
		got_len += out.len;
		out.len = 0;
		if (rc == MC_FEED_PAUSE) {
			pauses++;
			continue;
		}
		assert_int_equal(rc, MC_FEED_MORE);
		break;
	}
	assert_int_equal(pos, len);
	assert_true(pauses >= 10);
	assert_int_equal(got_len, strlen(want));
	assert_memory_equal(got, want, got_len);
	assert_int_equal(f->worker->stats.cmd_get, 41);
	assert_int_equal(f->worker->stats.get_hits, 41);
	free(got);
	mc_buf_deinit(&out);
	mc_fixture_destroy(&f);
}

/* A value over item_size_max: SERVER_ERROR, exactly <bytes>+2 swallowed, the
 * old value gone (memcached unlinks it on a failed set). */
static void test_too_large_swallowed(void **state)
{
	(void)state;
	struct mc_fixture_opts o = { .item_size_max = 1024 };
	struct mc_fixture *f = mc_fixture_create(&o);
	size_t n = 5000;
	char *req = malloc(n + 200);

	mc_expect(f, "set k 0 0 1\r\nv\r\n", "STORED\r\n");
	int h = snprintf(req, 200, "set k 0 0 %zu\r\n", n);
	memset(req + h, 'x', n);
	memcpy(req + h + n, "\r\nget k\r\n", 9);
	mc_expect_n(f, req, (size_t)h + n + 9,
		    S("SERVER_ERROR object too large for cache\r\nEND\r\n"));
	/* noreply: silent, still swallowed */
	h = snprintf(req, 200, "append k 0 0 %zu noreply\r\n", n);
	memset(req + h, 'x', n);
	memcpy(req + h + n, "\r\nmn\r\n", 6);
	mc_expect_n(f, req, (size_t)h + n + 6, S("MN\r\n"));
	/* ms: never quiet */
	h = snprintf(req, 200, "ms k %zu q\r\n", n);
	memset(req + h, 'x', n);
	memcpy(req + h + n, "\r\nmn\r\n", 6);
	mc_expect_n(f, req, (size_t)h + n + 6,
		    S("SERVER_ERROR object too large for cache\r\nMN\r\n"));
	assert_int_equal(f->worker->stats.store_too_large, 3);
	free(req);
	mc_fixture_destroy(&f);
}

/* The value arrives in pieces and is consumed as it comes: the transport
 * never holds more than one piece. */
static void test_partial_value_consumed(void **state)
{
	struct mc_fixture *f = *state;
	size_t used;
	struct mc_buf out;
	mc_buf_init(&out);

	assert_int_equal(mc_session_feed(f->session, "set k 0 0 10\r\n01234", 19,
					 &used, &out), MC_FEED_MORE);
	assert_int_equal(used, 19);
	assert_int_equal(mc_session_feed(f->session, "56789\r", 6, &used, &out),
			 MC_FEED_MORE);
	assert_int_equal(used, 6);
	assert_int_equal(out.len, 0);
	assert_int_equal(mc_session_feed(f->session, "\nget", 4, &used, &out),
			 MC_FEED_MORE);
	assert_int_equal(used, 1);
	assert_int_equal(out.len, 8);
	assert_memory_equal(out.data, "STORED\r\n", 8);
	mc_buf_deinit(&out);
	mc_expect(f, "get k\r\n", "VALUE k 0 10\r\n0123456789\r\nEND\r\n");
}

/* Lines without "\n": memcached closes after 2048 bytes unless it is a
 * get/gets; a complete long line is processed. */
static void test_long_lines(void **state)
{
	struct mc_fixture *f = *state;
	char buf[5000];

	memset(buf, 'x', sizeof(buf));
	mc_push(f, buf, 2048);
	assert_false(f->closed);
	mc_push(f, buf, 1);
	assert_true(f->closed);
	free(mc_take(f, NULL));

	mc_fixture_reconnect(f);
	memcpy(buf, "get ", 4);
	for (size_t i = 4; i < sizeof(buf); i++)
		buf[i] = i % 10 == 0 ? ' ' : 'k';
	mc_push(f, buf, sizeof(buf));
	assert_false(f->closed);
	mc_expect(f, "\r\n", "END\r\n");

	/* a complete 3000-byte set line: key too long, not a close */
	mc_fixture_reconnect(f);
	memset(buf, 'k', sizeof(buf));
	memcpy(buf, "set ", 4);
	memcpy(buf + 3000, " 0 0 1\r\n", 8);
	mc_expect_n(f, buf, 3008, S("CLIENT_ERROR bad command line format\r\n"));
	assert_false(f->closed);
	/* a key of 251 bytes: CLIENT_ERROR, the data line is then a command */
	memcpy(buf + 4 + 251, " 0 0 1\r\na\r\n", 11);
	mc_expect_n(f, buf, 4 + 251 + 11,
		    S("CLIENT_ERROR bad command line format\r\nERROR\r\n"));
	memcpy(buf + 4 + 250, " 0 0 1\r\na\r\n", 11);
	mc_expect_n(f, buf, 4 + 250 + 11, S("STORED\r\n"));
}

static void test_quit_and_shutdown(void **state)
{
	struct mc_fixture *f = *state;

	mc_expect(f, "version\r\nquit\r\nget a\r\n",
		  "VERSION 1.6.18-dpcache-" DPCACHE_VERSION "\r\n");
	assert_true(f->closed);

	mc_fixture_reconnect(f);
	mc_expect(f, "shutdown\r\n", "ERROR: shutdown not enabled\r\n");
	assert_false(f->closed);
}

static int shutdown_calls;
static void on_shutdown(void *arg)
{
	(void)arg;
	shutdown_calls++;
}

static void test_shutdown_enabled(void **state)
{
	(void)state;
	struct mc_fixture_opts o = { .shutdown_enabled = true };
	struct mc_fixture *f = mc_fixture_create(&o);
	f->server->cfg.on_shutdown = on_shutdown;
	mc_expect(f, "shutdown now\r\n", "CLIENT_ERROR invalid shutdown mode\r\n");
	mc_expect(f, "shutdown graceful\r\nget a\r\n", "");
	assert_true(f->closed);
	assert_int_equal(shutdown_calls, 1);
	mc_fixture_destroy(&f);
}

/* Random bytes never crash the parser and never desync a later session. */
static void test_garbage(void **state)
{
	struct mc_fixture *f = *state;
	unsigned seed = 12345;
	char buf[512];

	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)(rand_r(&seed) % sizeof(buf));
		for (size_t i = 0; i < n; i++) {
			unsigned r = (unsigned)rand_r(&seed);
			/* mostly text-ish, with newlines and digits */
			buf[i] = r % 7 == 0 ? '\n' : r % 5 == 0 ? ' ' :
				 r % 3 == 0 ? (char)('0' + r % 10) : (char)(r >> 8);
		}
		if (n > 0 && round % 3 == 0)
			buf[0] = "gsmaidtf"[round % 8];
		mc_push(f, buf, n);
		free(mc_take(f, NULL));
		if (f->closed || round % 50 == 0)
			mc_fixture_reconnect(f);
	}
	mc_fixture_reconnect(f);
	mc_expect(f, "set ok 0 0 2\r\nok\r\nget ok\r\n",
		  "STORED\r\nVALUE ok 0 2\r\nok\r\nEND\r\n");
	/* binary junk after a text command: ERROR lines, no crash */
	mc_expect_n(f, S("get ok\r\n\x80\x01\x00\x03\r\n"),
		    S("VALUE ok 0 2\r\nok\r\nEND\r\nERROR\r\n"));
}

static void test_run_buffer(void **state)
{
	struct mc_fixture *f = *state;
	struct mc_buf out;
	mc_buf_init(&out);

	assert_int_equal(mc_text_run_buffer(f->worker, S("set u 0 0 1\r\nx\r\nget u\r\n"), &out), 0);
	assert_int_equal(out.len, strlen("STORED\r\nVALUE u 0 1\r\nx\r\nEND\r\n"));
	assert_memory_equal(out.data, "STORED\r\nVALUE u 0 1\r\nx\r\nEND\r\n", out.len);
	out.len = 0;
	assert_int_equal(mc_text_run_buffer(f->worker, S("get u"), &out), -EINVAL);
	assert_int_equal(mc_text_run_buffer(f->worker, S("set u 0 0 5\r\nab"), &out), -EINVAL);
	mc_buf_deinit(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mc_text_pairs),
		cmocka_unit_test_setup_teardown(test_cas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gets_gats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry_and_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelining, setup, teardown),
		cmocka_unit_test(test_multiget_pause_resume),
		cmocka_unit_test(test_too_large_swallowed),
		cmocka_unit_test_setup_teardown(test_partial_value_consumed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quit_and_shutdown, setup, teardown),
		cmocka_unit_test(test_shutdown_enabled),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_buffer, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
