/*
 * tests/memcache/test_split.c - every request split at every byte boundary
 * (and fed one byte at a time) must give the same reply as the unsplit
 * request, which must be memcached 1.6.18's reply (recorded, see
 * corpus_text.h, corpus_meta.h). A half-arrived request is never an error.
 */
#include "tests/memcache/corpus_meta.h"
#include "tests/memcache/corpus_text.h"
#include "tests/memcache/mc_test_util.h"

/* Cases only the split test needs. */
static const struct mc_pair split_extra_pairs[] = {
	/* storage with values that contain "\r\n" and look like commands */
	{ S("set k 0 0 7\r\nget k\r\n\r\nget k\r\n"),
	  S("STORED\r\nVALUE k 0 7\r\nget k\r\n\r\nEND\r\n") },
	{ S("ms k 5 T0 F3\r\n\r\n\r\n\r\r\nmg k v f\r\n"),
	  S("HD\r\nVA 5 f3\r\n\r\n\r\n\r\r\n") },
};

static void split_pairs(const struct mc_pair *pairs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct mc_pair *p = &pairs[i];
		size_t nexp = p->nexp;
		if (nexp >= 8 && memcmp(p->exp + nexp - 8, "<CLOSED>", 8) == 0)
			nexp -= 8;
		mc_expect_split(NULL, NULL, p->req, p->nreq, p->exp, nexp);
	}
}

static void test_split_corpus(void **state)
{
	(void)state;
	cache_clock_set_manual(1700000000u);
	split_pairs(mc_text_pairs, MC_NPAIRS(mc_text_pairs));
	split_pairs(mc_meta_pairs, MC_NPAIRS(mc_meta_pairs));
	split_pairs(split_extra_pairs, MC_NPAIRS(split_extra_pairs));
	cache_clock_set_real();
}

/* A multi-get that pauses on a small high-water mark, split everywhere. */
static void test_split_paused_multiget(void **state)
{
	(void)state;
	struct mc_fixture_opts o = { .out_high_water = 32 };
	mc_expect_split_str(&o,
		"set a 0 0 10\r\naaaaaaaaaa\r\nset b 0 0 10\r\nbbbbbbbbbb\r\n",
		"get a b x a\r\ngets x\r\n",
		"VALUE a 0 10\r\naaaaaaaaaa\r\nVALUE b 0 10\r\nbbbbbbbbbb\r\n"
		"VALUE a 0 10\r\naaaaaaaaaa\r\nEND\r\nEND\r\n");
}

/* A rejected store is swallowed the same however it arrives. */
static void test_split_swallow(void **state)
{
	(void)state;
	struct mc_fixture_opts o = { .item_size_max = 1024 };
	char req[1400];
	int h = snprintf(req, sizeof(req), "set k 0 0 1200\r\n");
	memset(req + h, 'v', 1200);
	memcpy(req + h + 1200, "\r\nmn\r\n", 6);
	mc_expect_split(&o, NULL, req, (size_t)h + 1206,
			S("SERVER_ERROR object too large for cache\r\nMN\r\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_corpus),
		cmocka_unit_test(test_split_paused_multiget),
		cmocka_unit_test(test_split_swallow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
