/*
 * tests/memcache/test_meta.c - the meta protocol (mg ms md ma mn me).
 *
 * The table was recorded from stock memcached 1.6.18 (fresh connection after
 * flush_all per request); replies with CAS values are checked by hand below.
 */
#include <errno.h>

#include "tests/memcache/mc_test_util.h"

#include "dataplane/memcache/mc_internal.h"
#include "tests/memcache/corpus_meta.h"

static int setup(void **state)
{
	cache_clock_set_manual(1700000000u);
	return mc_fixture_setup(state);
}

static int teardown(void **state)
{
	mc_fixture_teardown(state);
	cache_clock_set_real();
	return 0;
}

static void test_mc_meta_pairs(void **state)
{
	(void)state;
	cache_clock_set_manual(1700000000u);
	for (size_t i = 0; i < MC_NPAIRS(mc_meta_pairs); i++) {
		const struct mc_pair *p = &mc_meta_pairs[i];
		struct mc_fixture *f = mc_fixture_create(NULL);
		mc_expect_n(f, p->req, p->nreq, p->exp, p->nexp);
		mc_fixture_destroy(&f);
	}
	cache_clock_set_real();
}

/* Sends req, returns the number after " c" in the reply. */
static uint64_t reply_cas(struct mc_fixture *f, const char *req)
{
	mc_push(f, req, strlen(req));
	char *r = mc_take(f, NULL);
	char *c = strstr(r, " c");
	assert_non_null(c);
	uint64_t v = strtoull(c + 2, NULL, 10);
	free(r);
	return v;
}

static void test_cas_flags(void **state)
{
	struct mc_fixture *f = *state;
	char req[200];
	char exp[200];

	uint64_t cas = reply_cas(f, "ms foo 2 c\r\nhi\r\n");
	assert_true(cas != 0);
	snprintf(exp, sizeof(exp), "HD c%llu\r\n", (unsigned long long)cas);
	mc_expect(f, "mg foo c\r\n", exp);
	snprintf(req, sizeof(req), "ms foo 2 C%llu c\r\nyo\r\n", (unsigned long long)cas + 1);
	mc_expect(f, req, "EX c0\r\n");
	snprintf(req, sizeof(req), "ms foo 2 C%llu c k\r\nyo\r\n", (unsigned long long)cas);
	uint64_t cas2 = reply_cas(f, req);
	assert_true(cas2 != cas);
	snprintf(req, sizeof(req), "md foo C%llu\r\n", (unsigned long long)cas);
	mc_expect(f, req, "EX\r\n");
	snprintf(req, sizeof(req), "ma foo C%llu\r\n", (unsigned long long)cas);
	mc_expect(f, req, "EX\r\n"); /* memcached checks the CAS first */
	mc_expect(f, "ma foo\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
	snprintf(req, sizeof(req), "md foo C%llu q\r\nmn\r\n", (unsigned long long)cas2);
	mc_expect(f, req, "MN\r\n");
	mc_expect(f, "ms foo 2 C5\r\nhi\r\n", "NF\r\n");

	/* ma with C */
	mc_expect(f, "ma n N0 J5\r\n", "HD\r\n");
	uint64_t c3 = reply_cas(f, "mg n c\r\n");
	snprintf(req, sizeof(req), "ma n C%llu v c\r\n", (unsigned long long)c3 + 7);
	mc_expect(f, req, "EX\r\n");
	snprintf(req, sizeof(req), "ma n C%llu v\r\n", (unsigned long long)c3);
	mc_expect(f, req, "VA 1\r\n6\r\n");
}

/* Stale-while-revalidate: md I marks stale, the first mg wins (W), later
 * ones see Z; a new ms clears it. Vivify: first miss wins, others Z. */
static void test_stale_and_win(void **state)
{
	struct mc_fixture *f = *state;

	mc_expect(f, "ms foo 1\r\na\r\nmd foo I\r\n", "HD\r\nHD\r\n");
	mc_expect(f, "mg foo v\r\n", "VA 1 X W\r\na\r\n");
	mc_expect(f, "mg foo v\r\n", "VA 1 Z X\r\na\r\n");
	mc_expect(f, "ms foo 1\r\nb\r\nmg foo v\r\n", "HD\r\nVA 1\r\nb\r\n");

	mc_expect(f, "mg viv N30 v t\r\n", "VA 0 t30 W\r\n\r\n");
	mc_expect(f, "mg viv N30 v\r\n", "VA 0 Z\r\n\r\n");

	/* recache: TTL below R wins once */
	mc_expect(f, "ms r 1 T10\r\nx\r\nmg r R30 v\r\nmg r R30 v\r\n",
		  "HD\r\nVA 1 W\r\nx\r\nVA 1 Z\r\nx\r\n");
	mc_expect(f, "ms r2 1 T100\r\nx\r\nmg r2 R30 v\r\n", "HD\r\nVA 1\r\nx\r\n");
}

static void test_hit_and_last_access(void **state)
{
	struct mc_fixture *f = *state;

	mc_expect(f, "ms foo 1\r\na\r\n", "HD\r\n");
	mc_expect(f, "mg foo h l\r\n", "HD h0 l0\r\n");
	cache_clock_advance(5);
	mc_expect(f, "mg foo h l\r\n", "HD h1 l5\r\n");
	cache_clock_advance(3);
	mc_expect(f, "mg foo u\r\n", "HD\r\n");
	mc_expect(f, "mg foo l\r\n", "HD l3\r\n");
}

static void test_me(void **state)
{
	struct mc_fixture *f = *state;
	size_t n;

	mc_expect(f, "ms foo 2 T100\r\nhi\r\n", "HD\r\n");
	mc_push(f, "me foo\r\n", 8);
	char *r = mc_take(f, &n);
	assert_true(strncmp(r, "ME foo exp=-100 la=0 cas=", 25) == 0);
	assert_non_null(strstr(r, " fetch=no cls=1 size="));
	assert_true(n > 2 && r[n - 2] == '\r' && r[n - 1] == '\n');
	free(r);
	mc_push(f, "me Zm9v b\r\n", 11);
	r = mc_take(f, NULL);
	/* memcached 1.6.18 prints the decoded key, not the base64 form. */
	assert_true(strncmp(r, "ME foo exp=-100", 15) == 0);
	free(r);
	assert_int_equal(f->worker->stats.cmd_meta, 2);
}

/* Counters are bumped where memcached bumps them. */
static void test_counters(void **state)
{
	struct mc_fixture *f = *state;
	struct mc_worker_stats *ws = &f->worker->stats;

	mc_expect(f, "mg a\r\nms a 1\r\nx\r\nmg a v\r\nmg a T10\r\nmg b T10\r\n",
		  "EN\r\nHD\r\nVA 1\r\nx\r\nHD\r\nEN\r\n");
	assert_int_equal(ws->cmd_get, 2);
	assert_int_equal(ws->get_misses, 1);
	assert_int_equal(ws->get_hits, 1);
	assert_int_equal(ws->cmd_touch, 2);
	assert_int_equal(ws->touch_hits, 1);
	assert_int_equal(ws->touch_misses, 1);
	assert_int_equal(ws->cmd_set, 1);
	mc_expect(f, "md a\r\nmd a\r\nma c\r\nma c MD\r\n", "HD\r\nNF\r\nNF\r\nNF\r\n");
	assert_int_equal(ws->delete_hits, 1);
	assert_int_equal(ws->delete_misses, 1);
	assert_int_equal(ws->incr_misses, 1);
	assert_int_equal(ws->decr_misses, 1);
}

/* Binary keys: base64 in, base64 out with " b". */
static void test_base64_keys(void **state)
{
	struct mc_fixture *f = *state;

	/* "\x00\x01\xff" is AAH/ */
	mc_expect(f, "ms AAH/ 1 b k\r\nz\r\n", "HD kAAH/ b\r\n");
	mc_expect(f, "mg AAH/ b k v\r\n", "VA 1 kAAH/ b\r\nz\r\n");
	mc_expect(f, "mg AAH b\r\n", "CLIENT_ERROR error decoding key\r\n");
	mc_expect(f, "mg AA== b k\r\n", "EN kAA== b\r\n");
	mc_expect(f, "ms AA$= 1 b\r\nz\r\nmn\r\n", "CLIENT_ERROR error decoding key\r\nMN\r\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mc_meta_pairs),
		cmocka_unit_test_setup_teardown(test_cas_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_and_win, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hit_and_last_access, setup, teardown),
		cmocka_unit_test_setup_teardown(test_me, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_base64_keys, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
