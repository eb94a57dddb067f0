/*
 * tests/net/test_fault.c - the seeded fault injector (fault.h): parsing,
 * determinism, rates, duplicates as copies, delay timing, reorder, the
 * bound on held packets, and ownership (every packet returned or freed
 * exactly once, nothing leaked).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <cmocka.h>

#include "dataplane/net/fault.h"

/* ---- packets with an owner registry ------------------------------------- */

struct pkt {
	unsigned id;            /* original sequence number */
	bool copy;
	bool live;
	uint64_t t_in;
};

struct reg {
	struct pkt **all;
	size_t n, cap;
	size_t live;
	bool copy_fails;
	unsigned copies, frees;
};

static struct pkt *pkt_new(struct reg *r, unsigned id, bool copy, uint64_t t)
{
	struct pkt *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->id = id;
	p->copy = copy;
	p->live = true;
	p->t_in = t;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 1024;
		r->all = realloc(r->all, r->cap * sizeof(*r->all));
		assert_non_null(r->all);
	}
	r->all[r->n++] = p;
	r->live++;
	return p;
}

static void pkt_release(struct reg *r, struct pkt *p)
{
	assert_true(p->live);   /* never freed or returned twice */
	p->live = false;
	r->live--;
}

static void *op_copy(void *arg, void *pkt)
{
	struct reg *r = arg;
	struct pkt *p = pkt;

	assert_true(p->live);
	if (r->copy_fails)
		return NULL;
	r->copies++;
	return pkt_new(r, p->id, true, p->t_in);
}

static void op_free(void *arg, void *pkt)
{
	struct reg *r = arg;

	r->frees++;
	pkt_release(r, pkt);
}

static const struct fault_ops ops = { .copy = op_copy, .free = op_free };

static void reg_done(struct reg *r)
{
	assert_int_equal(r->live, 0);
	for (size_t i = 0; i < r->n; i++)
		free(r->all[i]);
	free(r->all);
	memset(r, 0, sizeof(*r));
}

/* One burst of 'n' new packets at 'now'; the output is consumed (released)
 * and its ids appended to 'log' (if given). Returns the output count. */
static unsigned burst(struct fault *f, struct reg *r, unsigned *next_id,
		      unsigned n, unsigned cap, uint64_t now, unsigned *log,
		      size_t *nlog, uint64_t *max_lat)
{
	void *v[64];
	unsigned out;

	assert_true(cap <= 64 && n <= cap);
	for (unsigned i = 0; i < n; i++)
		v[i] = pkt_new(r, (*next_id)++, false, now);
	out = fault_apply(f, v, n, cap, now);
	assert_true(out <= cap);
	for (unsigned i = 0; i < out; i++) {
		struct pkt *p = v[i];

		if (log)
			log[(*nlog)++] = p->id | (p->copy ? 0x80000000u : 0);
		if (max_lat && now - p->t_in > *max_lat)
			*max_lat = now - p->t_in;
		pkt_release(r, p);
	}
	return out;
}

/* ---- parsing ------------------------------------------------------------ */

static void test_parse(void **state)
{
	struct fault_config c;
	static const char *const bad[] = {
		"drop", "drop=", "drop=x", "drop=101", "drop=-1", "drop=5,",
		",drop=5", "drop=5 ", " drop=5", "delay=5", "delay=5:", "delay=:5",
		"delay=5:x", "delay=5:4294967296", "foo=1", "drop=60,dup=50",
		"seed=18446744073709551616", "dup=1,,drop=2", "=5", "drop==5",
	};

	(void)state;
	assert_int_equal(fault_config_parse(&c, "drop=5,dup=1,reorder=2,delay=1:2000,seed=42"), 0);
	assert_int_equal(c.drop_pct, 5);
	assert_int_equal(c.dup_pct, 1);
	assert_int_equal(c.reorder_pct, 2);
	assert_int_equal(c.delay_pct, 1);
	assert_int_equal(c.delay_us, 2000);
	assert_int_equal(c.seed, 42);
	assert_true(fault_config_active(&c));
	assert_int_equal(fault_config_parse(&c, "seed=18446744073709551615,drop=100"), 0);
	assert_int_equal(c.seed, UINT64_MAX);
	assert_int_equal(c.drop_pct, 100);
	assert_int_equal(fault_config_parse(&c, ""), 0);
	assert_false(fault_config_active(&c));
	assert_int_equal(c.seed, 0);
	assert_int_equal(fault_config_parse(&c, NULL), 0);
	assert_false(fault_config_active(&c));
	assert_int_equal(fault_config_parse(&c, "seed=7"), 0);
	assert_false(fault_config_active(&c));

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(fault_config_parse(&c, "drop=3"), 0);
		if (fault_config_parse(&c, bad[i]) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		/* a rejected spec leaves the config as it was */
		assert_int_equal(c.drop_pct, 3);
	}
}

static void test_create_bad(void **state)
{
	struct fault_config c = { .dup_pct = 5 };
	struct fault_ops nocopy = { .free = op_free };
	struct fault *f;

	(void)state;
	assert_null(fault_create(&c, &nocopy, NULL, 8));
	assert_null(fault_create(&c, NULL, NULL, 8));
	c = (struct fault_config){ .drop_pct = 70, .delay_pct = 40 };
	assert_null(fault_create(&c, &ops, NULL, 8));
	fault_destroy(NULL);
	f = NULL;
	fault_destroy(&f);
}

/* ---- behaviour ---------------------------------------------------------- */

static void test_off_is_identity(void **state)
{
	struct fault_config c = { .seed = 1 };
	struct reg r = { 0 };
	struct fault *f = fault_create(&c, &ops, &r, 16);
	void *v[8];

	(void)state;
	assert_non_null(f);
	for (unsigned i = 0; i < 8; i++)
		v[i] = pkt_new(&r, i, false, 0);
	assert_int_equal(fault_apply(f, v, 8, 8, 0), 8);
	for (unsigned i = 0; i < 8; i++) {
		assert_int_equal(((struct pkt *)v[i])->id, i);
		pkt_release(&r, v[i]);
	}
	assert_int_equal(fault_apply(f, v, 0, 8, 0), 0);
	fault_destroy(&f);
	assert_null(f);
	reg_done(&r);
}

static void run_log(const struct fault_config *c, unsigned *log, size_t *nlog,
		    struct fault_counters *cnt)
{
	struct reg r = { 0 };
	struct fault *f = fault_create(c, &ops, &r, 32);
	unsigned id = 0;

	assert_non_null(f);
	*nlog = 0;
	for (unsigned b = 0; b < 500; b++)
		burst(f, &r, &id, b % 17, 48, b * 100, log, nlog, NULL);
	*cnt = *fault_counters(f);
	fault_destroy(&f);
	reg_done(&r);
}

static void test_determinism(void **state)
{
	struct fault_config c = { .drop_pct = 10, .dup_pct = 10, .reorder_pct = 10,
				  .delay_pct = 10, .delay_us = 300, .seed = 99 };
	static unsigned a[20000], b[20000];
	size_t na, nb;
	struct fault_counters ca, cb;

	(void)state;
	run_log(&c, a, &na, &ca);
	run_log(&c, b, &nb, &cb);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na * sizeof(a[0]));
	assert_memory_equal(&ca, &cb, sizeof(ca));
	assert_true(ca.dropped && ca.duplicated && ca.reordered && ca.delayed);
	c.seed = 100;
	run_log(&c, b, &nb, &cb);
	assert_true(na != nb || memcmp(a, b, na * sizeof(a[0])) != 0);
}

static void test_rates(void **state)
{
	struct fault_config c = { .drop_pct = 10, .dup_pct = 5, .reorder_pct = 7,
				  .delay_pct = 3, .delay_us = 1000, .seed = 5 };
	struct reg r = { 0 };
	struct fault *f = fault_create(&c, &ops, &r, 1024);
	const struct fault_counters *k;
	unsigned id = 0, out = 0;
	const unsigned bursts = 5000, per = 32;   /* 160000 packets */
	const double total = (double)bursts * per;

	(void)state;
	assert_non_null(f);
	for (unsigned b = 0; b < bursts; b++)
		out += burst(f, &r, &id, per, 64, (uint64_t)b * 100, NULL, NULL, NULL);
	for (unsigned b = 0; b < 20; b++)    /* let the delayed ones out */
		out += burst(f, &r, &id, 0, 64, (uint64_t)(bursts + b) * 100, NULL, NULL, NULL);
	k = fault_counters(f);
	assert_true(k->dropped > 0.09 * total && k->dropped < 0.11 * total);
	assert_true(k->duplicated > 0.045 * total && k->duplicated < 0.055 * total);
	assert_true(k->reordered > 0.06 * total && k->reordered < 0.075 * total);
	assert_true(k->delayed > 0.025 * total && k->delayed < 0.035 * total);
	/* conservation: out = in - dropped + duplicated */
	assert_int_equal(out, (unsigned)total - k->dropped + k->duplicated);
	assert_int_equal(r.frees, k->dropped);
	assert_int_equal(r.copies, k->duplicated);
	fault_destroy(&f);
	reg_done(&r);
}

static void test_dup_is_copy(void **state)
{
	struct fault_config c = { .dup_pct = 100, .seed = 3 };
	struct reg r = { 0 };
	struct fault *f = fault_create(&c, &ops, &r, 4);
	void *v[8];
	unsigned n;

	(void)state;
	assert_non_null(f);
	for (unsigned i = 0; i < 3; i++)
		v[i] = pkt_new(&r, i, false, 0);
	n = fault_apply(f, v, 3, 8, 0);
	assert_int_equal(n, 6);
	for (unsigned i = 0; i < 3; i++) {
		struct pkt *o = v[2 * i], *d = v[2 * i + 1];

		assert_ptr_not_equal(o, d);
		assert_int_equal(o->id, i);
		assert_false(o->copy);
		assert_int_equal(d->id, i);
		assert_true(d->copy);
	}
	for (unsigned i = 0; i < n; i++)
		pkt_release(&r, v[i]);
	/* no room: no duplicate, nothing lost */
	for (unsigned i = 0; i < 4; i++)
		v[i] = pkt_new(&r, 10 + i, false, 0);
	n = fault_apply(f, v, 4, 5, 0);
	assert_int_equal(n, 5);
	for (unsigned i = 0; i < n; i++)
		pkt_release(&r, v[i]);
	/* copy fails: the original still goes */
	r.copy_fails = true;
	v[0] = pkt_new(&r, 20, false, 0);
	assert_int_equal(fault_apply(f, v, 1, 8, 0), 1);
	assert_int_equal(((struct pkt *)v[0])->id, 20);
	pkt_release(&r, v[0]);
	fault_destroy(&f);
	reg_done(&r);
}

static void test_delay_timing(void **state)
{
	struct fault_config c = { .delay_pct = 30, .delay_us = 2000, .seed = 11 };
	struct reg r = { 0 };
	struct fault *f = fault_create(&c, &ops, &r, 4096);
	unsigned id = 0;
	void *v[64];

	(void)state;
	assert_non_null(f);
	for (uint64_t now = 0; now < 200000; now += 100) {
		unsigned n = now < 190000 ? 8 : 0, out;

		for (unsigned i = 0; i < n; i++)
			v[i] = pkt_new(&r, id++, false, now);
		out = fault_apply(f, v, n, 64, now);
		for (unsigned i = 0; i < out; i++) {
			struct pkt *p = v[i];
			uint64_t lat = now - p->t_in;

			/* either not delayed, or held at least delay_us and
			 * let out at the first call after that */
			assert_true(lat == 0 || (lat >= 2000 && lat < 2100));
			pkt_release(&r, p);
		}
	}
	assert_int_equal(r.live, 0);
	assert_true(fault_counters(f)->delayed > 0.25 * id &&
		    fault_counters(f)->delayed < 0.35 * id);
	/* held packets are freed by destroy */
	for (unsigned i = 0; i < 32; i++)
		v[i] = pkt_new(&r, id++, false, 300000);
	{
		unsigned out = fault_apply(f, v, 32, 64, 300000);

		assert_true(out < 32);
		for (unsigned i = 0; i < out; i++)
			pkt_release(&r, v[i]);
		assert_int_equal(r.live, 32 - out);
	}
	fault_destroy(&f);
	reg_done(&r);
}

static void test_reorder(void **state)
{
	struct fault_config c = { .reorder_pct = 100, .seed = 1 };
	struct reg r = { 0 };
	struct fault *f = fault_create(&c, &ops, &r, 8);
	void *v[8];
	unsigned n;
	const unsigned want[] = { 1, 0, 3, 2 };

	(void)state;
	assert_non_null(f);
	for (unsigned i = 0; i < 5; i++)
		v[i] = pkt_new(&r, i, false, 0);
	n = fault_apply(f, v, 5, 8, 0);
	/* pairs swapped; the fifth waits for the next call */
	assert_int_equal(n, 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(((struct pkt *)v[i])->id, want[i]);
		pkt_release(&r, v[i]);
	}
	v[0] = pkt_new(&r, 5, false, 0);
	n = fault_apply(f, v, 1, 8, 0);
	/* packet 5 is held in turn, 4 comes out behind... nothing newer
	 * went out before it this time, so order is 4 now, 5 next call */
	assert_int_equal(n, 1);
	assert_int_equal(((struct pkt *)v[0])->id, 4);
	pkt_release(&r, v[0]);
	n = fault_apply(f, v, 0, 8, 0);
	assert_int_equal(n, 1);
	assert_int_equal(((struct pkt *)v[0])->id, 5);
	pkt_release(&r, v[0]);
	fault_destroy(&f);
	reg_done(&r);
}

static void test_overflow_releases_early(void **state)
{
	struct fault_config c = { .delay_pct = 100, .delay_us = 1000000, .seed = 1 };
	struct reg r = { 0 };
	struct fault *f = fault_create(&c, &ops, &r, 2);
	void *v[8];
	unsigned n;

	(void)state;
	assert_non_null(f);
	for (unsigned i = 0; i < 5; i++)
		v[i] = pkt_new(&r, i, false, 0);
	n = fault_apply(f, v, 5, 8, 0);
	/* two held, three go at once rather than being lost */
	assert_int_equal(n, 3);
	assert_int_equal(fault_counters(f)->delayed, 2);
	for (unsigned i = 0; i < n; i++)
		pkt_release(&r, v[i]);
	assert_int_equal(r.live, 2);
	/* due: both come out, in order, as room allows (cap 1 per call) */
	n = fault_apply(f, v, 0, 1, 1000000);
	assert_int_equal(n, 1);
	assert_int_equal(((struct pkt *)v[0])->id, 0);
	pkt_release(&r, v[0]);
	n = fault_apply(f, v, 0, 1, 1000000);
	assert_int_equal(n, 1);
	assert_int_equal(((struct pkt *)v[0])->id, 1);
	pkt_release(&r, v[0]);
	fault_destroy(&f);
	reg_done(&r);
}

static void test_no_leak_random(void **state)
{
	struct fault_config c = { .drop_pct = 20, .dup_pct = 20, .reorder_pct = 20,
				  .delay_pct = 20, .delay_us = 500, .seed = 77 };
	struct reg r = { 0 };
	struct fault *f = fault_create(&c, &ops, &r, 16);
	unsigned id = 0;
	uint64_t s = 1;

	(void)state;
	assert_non_null(f);
	for (unsigned b = 0; b < 20000; b++) {
		unsigned n, cap;

		s = s * 6364136223846793005ull + 1442695040888963407ull;
		n = (unsigned)(s >> 59);               /* 0..31 */
		cap = n + (unsigned)((s >> 40) % 8);
		r.copy_fails = (s >> 20) % 10 == 0;
		burst(f, &r, &id, n, cap, (uint64_t)b * 37, NULL, NULL, NULL);
	}
	/* whatever is still held is freed exactly once by destroy */
	fault_destroy(&f);
	reg_done(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_create_bad),
		cmocka_unit_test(test_off_is_identity),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_dup_is_copy),
		cmocka_unit_test(test_delay_timing),
		cmocka_unit_test(test_reorder),
		cmocka_unit_test(test_overflow_releases_early),
		cmocka_unit_test(test_no_leak_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
