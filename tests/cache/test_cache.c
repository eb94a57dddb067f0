/*
 * tests/cache/test_cache.c - every cache operation and status, expiry and
 * flush on the manual clock, incr/decr edge cases, append/prepend, CAS and
 * meta extras, no_evict, and the leak check (accounting back to 0).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cache/cache.h"
#include "tests/cache/cache_fixture.h"

static int setup_cfg(void **state, size_t limit, bool no_evict)
{
	struct cache_config cfg = {
		.mem_limit = limit,
		.item_size_max = 1024 * 1024,
		.no_evict = no_evict,
	};

	return fx_setup(state, &cfg);
}

static int setup(void **state)
{
	return setup_cfg(state, 64u << 20, false);
}

static int setup_small_noevict(void **state)
{
	return setup_cfg(state, 64u << 10, true);
}

/* Stores key=val with the given mode; returns the status. */
static enum cache_status store(struct cache_thread *t, const char *key,
			       const char *val, uint32_t flags, int64_t exptime,
			       const struct cache_store_args *args,
			       uint64_t *cas_out)
{
	enum cache_status err = CACHE_OK;
	size_t nkey = strlen(key), n = strlen(val);
	struct cache_item *it;

	it = cache_item_alloc(t, key, nkey, flags,
			      cache_exptime_from_wire(exptime), n, &err);
	if (it == NULL)
		return err;
	memcpy(cache_item_value(it), val, n);
	return cache_store(t, it, cache_hash(key, nkey), args, cas_out);
}

static enum cache_status set(struct cache_thread *t, const char *key,
			     const char *val, int64_t exptime)
{
	struct cache_store_args a = { .mode = CACHE_SET };

	return store(t, key, val, 0, exptime, &a, NULL);
}

static enum cache_status mode(struct cache_thread *t, enum cache_store_mode m,
			      const char *key, const char *val, uint64_t cas)
{
	struct cache_store_args a = { .mode = m, .cas_compare = cas };

	return store(t, key, val, 7, 0, &a, NULL);
}

static const struct cache_item *get(struct cache_thread *t, const char *key)
{
	return cache_get(t, key, strlen(key), cache_hash(key, strlen(key)),
			 NULL, NULL);
}

/* The value of 'key' as a NUL-terminated string (static), or NULL. */
static const char *getv(struct cache_thread *t, const char *key)
{
	static char buf[4096];
	const struct cache_item *it = get(t, key);

	if (it == NULL)
		return NULL;
	assert_true(it->nbytes < sizeof(buf));
	memcpy(buf, cache_item_value_const(it), it->nbytes);
	buf[it->nbytes] = '\0';
	return buf;
}

static uint64_t cas_of(struct cache_thread *t, const char *key)
{
	const struct cache_item *it = get(t, key);

	assert_non_null(it);
	return it->cas;
}

/* ---- basic operations --------------------------------------------------- */

static void test_set_get_delete(void **state)
{
	struct fx *fx = *state;
	const struct cache_item *it;
	struct cache_stats st;

	assert_null(get(fx->t, "a"));
	assert_int_equal(set(fx->t, "a", "hello", 0), CACHE_OK);
	it = get(fx->t, "a");
	assert_non_null(it);
	assert_int_equal(it->nkey, 1);
	assert_int_equal(it->nbytes, 5);
	assert_memory_equal(cache_item_key(it), "a", 1);
	assert_memory_equal(cache_item_value_const(it), "hello", 5);
	assert_true(it->cas != 0);
	assert_true(cache_item_state(it) & CACHE_ITEM_FETCHED);

	assert_int_equal(set(fx->t, "a", "world!", 0), CACHE_OK);
	assert_string_equal(getv(fx->t, "a"), "world!");
	cache_stats_get(fx->c, &st);
	assert_int_equal(st.curr_items, 1);
	assert_int_equal(st.total_items, 2);
	assert_true(st.bytes >= cache_item_footprint(1, 6));

	assert_int_equal(cache_delete(fx->t, "a", 1, cache_hash("a", 1), 0), CACHE_OK);
	assert_null(get(fx->t, "a"));
	assert_int_equal(cache_delete(fx->t, "a", 1, cache_hash("a", 1), 0),
			 CACHE_NOT_FOUND);
	cache_thread_quiescent(fx->t);
	cache_stats_get(fx->c, &st);
	assert_int_equal(st.curr_items, 0);
	assert_int_equal(st.bytes, 0);
}

static void test_empty_value_and_flags(void **state)
{
	struct fx *fx = *state;
	struct cache_store_args a = { .mode = CACHE_SET };
	const struct cache_item *it;

	assert_int_equal(store(fx->t, "e", "", 0xffffffffu, 0, &a, NULL), CACHE_OK);
	it = get(fx->t, "e");
	assert_non_null(it);
	assert_int_equal(it->nbytes, 0);
	assert_int_equal(it->client_flags, 0xffffffffu);
}

static void test_bad_keys(void **state)
{
	struct fx *fx = *state;
	char key[300];
	enum cache_status err = CACHE_OK;

	memset(key, 'k', sizeof(key));
	assert_null(cache_item_alloc(fx->t, key, 0, 0, 0, 1, &err));
	assert_int_equal(err, CACHE_INVALID);
	assert_null(cache_item_alloc(fx->t, key, 251, 0, 0, 1, &err));
	assert_int_equal(err, CACHE_INVALID);
	struct cache_item *it = cache_item_alloc(fx->t, key, 250, 0, 0, 1, &err);
	assert_non_null(it);
	cache_item_value(it)[0] = 'v';
	assert_int_equal(cache_store(fx->t, it, cache_hash(key, 250), NULL, NULL),
			 CACHE_OK);
	assert_non_null(cache_get(fx->t, key, 250, cache_hash(key, 250), NULL, NULL));
	assert_null(cache_get(fx->t, key, 251, cache_hash(key, 251), NULL, NULL));
	assert_null(cache_get(fx->t, key, 0, cache_hash(key, 0), NULL, NULL));
	assert_string_equal(cache_status_name(CACHE_EXISTS), "CACHE_EXISTS");
}

/*
 * memcached 1.6.18 -I 1m (checked against the real server): with key "k" and
 * flags 0, "set k 0 0 1048516" is STORED and 1048517 is "SERVER_ERROR object
 * too large for cache"; non-zero flags cost 4 more bytes (1048512 / 1048513);
 * each key byte costs one.
 */
static void test_item_size_max_like_memcached(void **state)
{
	struct fx *fx = *state;
	enum cache_status err = CACHE_OK;
	struct cache_item *it;

	it = cache_item_alloc(fx->t, "k", 1, 0, 0, 1048516, &err);
	assert_non_null(it);
	cache_item_abort(fx->t, &it);
	assert_null(it);
	assert_null(cache_item_alloc(fx->t, "k", 1, 0, 0, 1048517, &err));
	assert_int_equal(err, CACHE_TOO_LARGE);
	it = cache_item_alloc(fx->t, "k", 1, 1, 0, 1048512, &err);
	assert_non_null(it);
	cache_item_abort(fx->t, &it);
	assert_null(cache_item_alloc(fx->t, "k", 1, 1, 0, 1048513, &err));
	assert_int_equal(err, CACHE_TOO_LARGE);
	cache_item_abort(fx->t, &it); /* NULL is fine */

	/* 250-byte key: 1048267 stored, 1048268 too large; flags 5: 1048263 */
	{
		char key[250];

		memset(key, 'k', sizeof(key));
		it = cache_item_alloc(fx->t, key, 250, 0, 0, 1048267, &err);
		assert_non_null(it);
		cache_item_abort(fx->t, &it);
		assert_null(cache_item_alloc(fx->t, key, 250, 0, 0, 1048268, &err));
		assert_int_equal(err, CACHE_TOO_LARGE);
		it = cache_item_alloc(fx->t, key, 250, 5, 0, 1048263, &err);
		assert_non_null(it);
		cache_item_abort(fx->t, &it);
		assert_null(cache_item_alloc(fx->t, key, 250, 5, 0, 1048264, &err));
	}
}

static void test_add_replace(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(mode(fx->t, CACHE_REPLACE, "r", "x", 0), CACHE_NOT_STORED);
	assert_null(get(fx->t, "r"));
	assert_int_equal(mode(fx->t, CACHE_ADD, "r", "1", 0), CACHE_OK);
	assert_int_equal(mode(fx->t, CACHE_ADD, "r", "2", 0), CACHE_NOT_STORED);
	assert_string_equal(getv(fx->t, "r"), "1");
	assert_int_equal(mode(fx->t, CACHE_REPLACE, "r", "3", 0), CACHE_OK);
	assert_string_equal(getv(fx->t, "r"), "3");
	assert_int_equal(get(fx->t, "r")->client_flags, 7);
}

static void test_append_prepend(void **state)
{
	struct fx *fx = *state;
	struct cache_store_args a = { .mode = CACHE_SET };
	const struct cache_item *it;

	assert_int_equal(mode(fx->t, CACHE_APPEND, "ap", "x", 0), CACHE_NOT_STORED);
	assert_int_equal(mode(fx->t, CACHE_PREPEND, "ap", "x", 0), CACHE_NOT_STORED);
	assert_int_equal(store(fx->t, "ap", "mid", 42, 100, &a, NULL), CACHE_OK);
	assert_int_equal(mode(fx->t, CACHE_APPEND, "ap", "-end", 0), CACHE_OK);
	assert_int_equal(mode(fx->t, CACHE_PREPEND, "ap", "start-", 0), CACHE_OK);
	it = get(fx->t, "ap");
	assert_non_null(it);
	assert_int_equal(it->nbytes, strlen("start-mid-end"));
	assert_memory_equal(cache_item_value_const(it), "start-mid-end", it->nbytes);
	assert_int_equal(it->client_flags, 42);          /* old flags kept */
	assert_int_equal(cache_item_exptime(it), T0 + 100); /* old exptime kept */

	/* vivify: append on a miss stores the piece as is */
	a.mode = CACHE_APPEND;
	a.vivify = true;
	assert_int_equal(store(fx->t, "viv", "abc", 3, 0, &a, NULL), CACHE_OK);
	assert_string_equal(getv(fx->t, "viv"), "abc");
}

static void test_append_too_large(void **state)
{
	struct fx *fx = *state;
	static char big[600 * 1024];
	struct cache_store_args a = { .mode = CACHE_SET };

	memset(big, 'b', sizeof(big) - 1);
	assert_int_equal(store(fx->t, "big", big, 0, 0, &a, NULL), CACHE_OK);
	a.mode = CACHE_APPEND;
	assert_int_equal(store(fx->t, "big", big, 0, 0, &a, NULL), CACHE_TOO_LARGE);
	assert_int_equal(get(fx->t, "big")->nbytes, sizeof(big) - 1);
}

static void test_cas(void **state)
{
	struct fx *fx = *state;
	uint64_t c1, c2;
	struct cache_store_args a = { .mode = CACHE_SET };

	assert_int_equal(mode(fx->t, CACHE_CAS, "c", "v", 12345), CACHE_NOT_FOUND);
	assert_int_equal(store(fx->t, "c", "v1", 0, 0, &a, &c1), CACHE_OK);
	assert_int_equal(cas_of(fx->t, "c"), c1);
	assert_int_equal(mode(fx->t, CACHE_CAS, "c", "v2", c1 + 1), CACHE_EXISTS);
	assert_int_equal(mode(fx->t, CACHE_CAS, "c", "v2", 0), CACHE_EXISTS);
	assert_string_equal(getv(fx->t, "c"), "v1");
	assert_int_equal(mode(fx->t, CACHE_CAS, "c", "v2", c1), CACHE_OK);
	c2 = cas_of(fx->t, "c");
	assert_true(c2 > c1);
	assert_int_equal(mode(fx->t, CACHE_CAS, "c", "v3", c1), CACHE_EXISTS);
	assert_string_equal(getv(fx->t, "c"), "v2");

	/* meta C on set/append */
	assert_int_equal(mode(fx->t, CACHE_SET, "c", "v4", c1), CACHE_EXISTS);
	assert_int_equal(mode(fx->t, CACHE_APPEND, "c", "x", c1), CACHE_EXISTS);
	assert_int_equal(mode(fx->t, CACHE_APPEND, "c", "x", c2), CACHE_OK);
	assert_string_equal(getv(fx->t, "c"), "v2x");

	/* explicit CAS (meta E) */
	a.mode = CACHE_SET;
	a.cas_new = 999999;
	assert_int_equal(store(fx->t, "e", "v", 0, 0, &a, &c1), CACHE_OK);
	assert_int_equal(c1, 999999);
	assert_int_equal(cas_of(fx->t, "e"), 999999);
	/* a fresh CAS after an explicit one is still larger */
	assert_int_equal(set(fx->t, "e", "w", 0), CACHE_OK);
	assert_true(cas_of(fx->t, "e") > 999999);
}

static void test_cas_invalidate(void **state)
{
	struct fx *fx = *state;
	struct cache_store_args a = { .mode = CACHE_SET };
	uint64_t c1, c2;
	const struct cache_item *it;

	assert_int_equal(store(fx->t, "s", "v1", 0, 100, &a, &c1), CACHE_OK);
	assert_int_equal(store(fx->t, "s", "v2", 0, 100, &a, &c2), CACHE_OK);
	/* lower CAS + invalidate: stored anyway, stale, keeps TTL */
	a.mode = CACHE_CAS;
	a.cas_compare = c1;
	a.invalidate = true;
	assert_int_equal(store(fx->t, "s", "late", 0, 5000, &a, NULL), CACHE_OK);
	it = get(fx->t, "s");
	assert_non_null(it);
	assert_true(cache_item_state(it) & CACHE_ITEM_STALE);
	assert_int_equal(cache_item_exptime(it), T0 + 100);
	/* higher CAS than the item's: EXISTS even with invalidate */
	a.cas_compare = it->cas + 1000000;
	assert_int_equal(store(fx->t, "s", "x", 0, 0, &a, NULL), CACHE_EXISTS);
}

static void test_delete_cas_and_invalidate(void **state)
{
	struct fx *fx = *state;
	uint64_t h = cache_hash("d", 1);
	uint64_t c1, c2;
	const struct cache_item *it;

	assert_int_equal(cache_delete(fx->t, "d", 1, h, 5), CACHE_NOT_FOUND);
	assert_int_equal(set(fx->t, "d", "v", 0), CACHE_OK);
	c1 = cas_of(fx->t, "d");
	assert_int_equal(cache_delete(fx->t, "d", 1, h, c1 + 1), CACHE_EXISTS);
	assert_non_null(get(fx->t, "d"));

	cache_item_set_state(cache_item_mut(get(fx->t, "d")), CACHE_ITEM_WIN_SENT);
	assert_int_equal(cache_invalidate(fx->t, "d", 1, h, c1 + 1, false, 0),
			 CACHE_EXISTS);
	assert_int_equal(cache_invalidate(fx->t, "d", 1, h, c1, true, T0 + 30),
			 CACHE_OK);
	it = get(fx->t, "d");
	assert_non_null(it);
	assert_true(cache_item_state(it) & CACHE_ITEM_STALE);
	assert_false(cache_item_state(it) & CACHE_ITEM_WIN_SENT);
	assert_int_equal(cache_item_exptime(it), T0 + 30);
	c2 = it->cas;
	assert_true(c2 > c1);
	assert_string_equal(getv(fx->t, "d"), "v");
	assert_int_equal(cache_invalidate(fx->t, "zz", 2, cache_hash("zz", 2), 0,
					  false, 0), CACHE_NOT_FOUND);

	assert_int_equal(cache_delete(fx->t, "d", 1, h, c2), CACHE_OK);
	assert_null(get(fx->t, "d"));
}

/* ---- expiry ------------------------------------------------------------- */

static void test_exptime_from_wire(void **state)
{
	(void)state;
	assert_int_equal(cache_exptime_from_wire(0), 0);
	assert_int_equal(cache_exptime_from_wire(-1), CACHE_EXPTIME_EXPIRED);
	assert_int_equal(cache_exptime_from_wire(1), T0 + 1);
	assert_int_equal(cache_exptime_from_wire(2592000), T0 + 2592000);
	/* above 30 days: absolute; this one is long past */
	assert_int_equal(cache_exptime_from_wire(2592001), CACHE_EXPTIME_EXPIRED);
	assert_int_equal(cache_exptime_from_wire(T0), CACHE_EXPTIME_EXPIRED);
	assert_int_equal(cache_exptime_from_wire(T0 + 10), T0 + 10);
	assert_int_equal(cache_ttl_remaining(0), -1);
	assert_int_equal(cache_ttl_remaining(T0 + 10), 10);
	assert_int_equal(cache_ttl_remaining(T0 - 10), 0);
}

static void test_expiry_relative_absolute_negative(void **state)
{
	struct fx *fx = *state;
	struct cache_stats st;

	assert_int_equal(set(fx->t, "rel", "v", 10), CACHE_OK);
	assert_int_equal(set(fx->t, "abs", "v", T0 + 20), CACHE_OK);
	assert_int_equal(set(fx->t, "neg", "v", -1), CACHE_OK);
	assert_int_equal(set(fx->t, "past", "v", T0 - 1), CACHE_OK);
	assert_int_equal(set(fx->t, "30d", "v", 2592000), CACHE_OK);
	assert_int_equal(set(fx->t, "never", "v", 0), CACHE_OK);
	assert_null(get(fx->t, "neg"));
	assert_null(get(fx->t, "past"));
	cache_clock_advance(9);
	assert_non_null(get(fx->t, "rel"));
	cache_clock_advance(1);
	assert_null(get(fx->t, "rel"));  /* exptime <= now: expired */
	assert_non_null(get(fx->t, "abs"));
	cache_clock_advance(10);
	assert_null(get(fx->t, "abs"));
	cache_clock_advance(2592000 - 21);
	assert_non_null(get(fx->t, "30d"));
	cache_clock_advance(1);
	assert_null(get(fx->t, "30d"));
	assert_non_null(get(fx->t, "never"));
	/* expired keys behave as missing for every command */
	assert_int_equal(mode(fx->t, CACHE_REPLACE, "rel", "x", 0), CACHE_NOT_STORED);
	assert_int_equal(mode(fx->t, CACHE_ADD, "abs", "x", 0), CACHE_OK);
	cache_stats_get(fx->c, &st);
	assert_true(st.reclaimed >= 5);
	assert_true(st.expired_unfetched >= 2);
}

static void test_touch_and_gat(void **state)
{
	struct fx *fx = *state;
	uint64_t h = cache_hash("t", 1);
	struct cache_read_opts o = { .touch = true };
	struct cache_read_info info;
	const struct cache_item *it;

	assert_int_equal(cache_touch(fx->t, "t", 1, h, T0 + 5), CACHE_NOT_FOUND);
	assert_int_equal(set(fx->t, "t", "v", 10), CACHE_OK);
	assert_int_equal(cache_touch(fx->t, "t", 1, h, cache_exptime_from_wire(100)),
			 CACHE_OK);
	cache_clock_advance(50);
	assert_non_null(get(fx->t, "t"));
	/* gat: fetch and set a new TTL */
	o.new_exptime = cache_exptime_from_wire(5);
	it = cache_get(fx->t, "t", 1, h, &o, &info);
	assert_non_null(it);
	assert_int_equal(cache_item_exptime(it), T0 + 55);
	assert_int_equal(info.prev_atime, T0 + 50);
	assert_true(info.prev_fetched);
	cache_clock_advance(5);
	assert_null(get(fx->t, "t"));
}

static void test_no_bump_and_info(void **state)
{
	struct fx *fx = *state;
	uint64_t h = cache_hash("nb", 2);
	struct cache_read_opts o = { .no_bump = true };
	struct cache_read_info info;
	const struct cache_item *it;

	assert_int_equal(set(fx->t, "nb", "v", 0), CACHE_OK);
	cache_clock_advance(7);
	it = cache_get(fx->t, "nb", 2, h, &o, &info);
	assert_non_null(it);
	assert_false(info.prev_fetched);
	assert_int_equal(info.prev_atime, T0);
	assert_int_equal(cache_item_atime(it), T0);
	assert_false(cache_item_state(it) & CACHE_ITEM_FETCHED);
	it = cache_get(fx->t, "nb", 2, h, NULL, &info);
	assert_false(info.prev_fetched);
	assert_int_equal(cache_item_atime(it), T0 + 7);
	it = cache_get(fx->t, "nb", 2, h, NULL, &info);
	assert_true(info.prev_fetched);
	assert_int_equal(info.prev_atime, T0 + 7);
}

/* ---- flush -------------------------------------------------------------- */

static void test_flush_now_same_second(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(set(fx->t, "old", "v", 0), CACHE_OK);
	cache_clock_advance(1);
	assert_int_equal(set(fx->t, "same", "v", 0), CACHE_OK);
	cache_flush(fx->t, 0);
	assert_null(get(fx->t, "old"));
	assert_null(get(fx->t, "same"));  /* stored earlier in this second */
	assert_int_equal(set(fx->t, "after", "v", 0), CACHE_OK);
	assert_non_null(get(fx->t, "after")); /* stored after, same second */
	cache_clock_advance(1);
	assert_non_null(get(fx->t, "after"));
	assert_null(get(fx->t, "same"));
}

/* memcached: "flush_all N" sets oldest_live = now+N-1; items accessed at or
 * before it die once the clock reaches it. */
static void test_flush_delay(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(set(fx->t, "a", "v", 0), CACHE_OK);
	cache_flush(fx->t, 10);
	assert_non_null(get(fx->t, "a"));
	cache_clock_advance(8);
	assert_non_null(get(fx->t, "a"));
	assert_int_equal(set(fx->t, "b", "v", 0), CACHE_OK);
	cache_clock_advance(1);           /* now = flush time - 1 = oldest_live */
	assert_null(get(fx->t, "a"));
	assert_null(get(fx->t, "b"));
	cache_clock_advance(1);
	assert_int_equal(set(fx->t, "c", "v", 0), CACHE_OK);
	assert_non_null(get(fx->t, "c"));
}

static void test_flush_delay_one(void **state)
{
	struct fx *fx = *state;

	/* memcached: flush_all 1 is at once, and also hides the rest of the
	 * current second's stores. */
	assert_int_equal(set(fx->t, "a", "v", 0), CACHE_OK);
	cache_flush(fx->t, 1);
	assert_null(get(fx->t, "a"));
	assert_int_equal(set(fx->t, "b", "v", 0), CACHE_OK);
	assert_null(get(fx->t, "b"));
	cache_clock_advance(1);
	assert_int_equal(set(fx->t, "c", "v", 0), CACHE_OK);
	assert_non_null(get(fx->t, "c"));
}

/* ---- incr / decr -------------------------------------------------------- */

static enum cache_status arith(struct cache_thread *t, const char *key, bool incr,
			       uint64_t delta, uint64_t *v)
{
	struct cache_arith_args a = { .incr = incr, .delta = delta };

	return cache_arith(t, key, strlen(key), cache_hash(key, strlen(key)), &a,
			   v, NULL);
}

static void test_incr_decr(void **state)
{
	struct fx *fx = *state;
	uint64_t v = 0;
	const struct cache_item *it;
	struct cache_store_args sa = { .mode = CACHE_SET };

	assert_int_equal(arith(fx->t, "n", true, 1, &v), CACHE_NOT_FOUND);
	assert_int_equal(store(fx->t, "n", "10", 5, 100, &sa, NULL), CACHE_OK);
	assert_int_equal(arith(fx->t, "n", true, 5, &v), CACHE_OK);
	assert_int_equal(v, 15);
	assert_string_equal(getv(fx->t, "n"), "15");
	assert_int_equal(arith(fx->t, "n", false, 6, &v), CACHE_OK);
	assert_int_equal(v, 9);
	/* memcached keeps the length, padding a shorter number with spaces */
	assert_string_equal(getv(fx->t, "n"), "9 ");
	it = get(fx->t, "n");
	assert_int_equal(it->client_flags, 5);
	assert_int_equal(cache_item_exptime(it), T0 + 100);
	assert_int_equal(arith(fx->t, "n", false, 100, &v), CACHE_OK);
	assert_int_equal(v, 0);                         /* floors at 0 */
	assert_string_equal(getv(fx->t, "n"), "0 ");
	assert_int_equal(arith(fx->t, "n", true, 1000, &v), CACHE_OK);
	assert_int_equal(v, 1000);
	assert_string_equal(getv(fx->t, "n"), "1000");  /* grows */

	assert_int_equal(set(fx->t, "m", "18446744073709551615", 0), CACHE_OK);
	assert_int_equal(arith(fx->t, "m", true, 2, &v), CACHE_OK);
	assert_int_equal(v, 1);                         /* wraps at 2^64 */
	assert_string_equal(getv(fx->t, "m"), "1                   ");
	assert_int_equal(set(fx->t, "m", "18446744073709551615", 0), CACHE_OK);
	assert_int_equal(arith(fx->t, "m", true, 0, &v), CACHE_OK);
	assert_int_equal(v, UINT64_MAX);
	assert_int_equal(arith(fx->t, "m", false, UINT64_MAX, &v), CACHE_OK);
	assert_int_equal(v, 0);
	assert_int_equal(set(fx->t, "m", "18446744073709551616", 0), CACHE_OK);
	assert_int_equal(arith(fx->t, "m", true, 1, &v), CACHE_NON_NUMERIC);
	/* memcached 1.6.18 has no length limit: leading zeros of any length */
	assert_int_equal(set(fx->t, "m", "0000000000000000000000000000000000000001", 0),
			 CACHE_OK);
	assert_int_equal(arith(fx->t, "m", true, 1, &v), CACHE_OK);
	assert_int_equal(v, 2);
	assert_int_equal(get(fx->t, "m")->nbytes, 40);
	/* 21 significant digits overflow */
	assert_int_equal(set(fx->t, "m", "100000000000000000000", 0), CACHE_OK);
	assert_int_equal(arith(fx->t, "m", true, 1, &v), CACHE_NON_NUMERIC);
	assert_int_equal(set(fx->t, "m", "99", 0), CACHE_OK);
	assert_int_equal(arith(fx->t, "m", true, 1, &v), CACHE_OK);
	assert_string_equal(getv(fx->t, "m"), "100");
	assert_int_equal(set(fx->t, "x", "", 0), CACHE_OK);
	assert_int_equal(arith(fx->t, "x", true, 1, &v), CACHE_NON_NUMERIC);
	assert_int_equal(set(fx->t, "x", "abc", 0), CACHE_OK);
	assert_int_equal(arith(fx->t, "x", true, 1, &v), CACHE_NON_NUMERIC);
	assert_int_equal(set(fx->t, "x", "12abc", 0), CACHE_OK);
	assert_int_equal(arith(fx->t, "x", true, 1, &v), CACHE_NON_NUMERIC);
	assert_int_equal(set(fx->t, "x", "-1", 0), CACHE_OK);
	assert_int_equal(arith(fx->t, "x", true, 1, &v), CACHE_NON_NUMERIC);
	assert_int_equal(set(fx->t, "x", " ", 0), CACHE_OK);
	assert_int_equal(arith(fx->t, "x", true, 1, &v), CACHE_NON_NUMERIC);
	/* safe_strtoull: leading spaces and a trailing space are accepted */
	assert_int_equal(set(fx->t, "x", " 7 ", 0), CACHE_OK);
	assert_int_equal(arith(fx->t, "x", true, 1, &v), CACHE_OK);
	assert_int_equal(v, 8);
	assert_string_equal(getv(fx->t, "x"), "8  ");
	/* what memcached 1.6.18 answers for these (checked against it) */
	assert_int_equal(set(fx->t, "x", "12 abc", 0), CACHE_OK);
	assert_int_equal(arith(fx->t, "x", true, 1, &v), CACHE_OK);
	assert_string_equal(getv(fx->t, "x"), "13    ");
	assert_int_equal(set(fx->t, "x", "-0", 0), CACHE_OK);
	assert_int_equal(arith(fx->t, "x", true, 1, &v), CACHE_OK);
	assert_int_equal(v, 1);
	assert_int_equal(set(fx->t, "x", "+5", 0), CACHE_OK);
	assert_int_equal(arith(fx->t, "x", true, 1, &v), CACHE_OK);
	assert_int_equal(v, 6);
	assert_int_equal(set(fx->t, "x", "\t5", 0), CACHE_OK);
	assert_int_equal(arith(fx->t, "x", true, 1, &v), CACHE_OK);
	assert_int_equal(v, 6);
	assert_int_equal(set(fx->t, "x", "5\r\n", 0), CACHE_OK);
	assert_int_equal(arith(fx->t, "x", true, 1, &v), CACHE_OK);
	assert_string_equal(getv(fx->t, "x"), "6  ");
	assert_int_equal(set(fx->t, "x", "5", 0), CACHE_OK);
	assert_int_equal(arith(fx->t, "x", false, 10, &v), CACHE_OK);
	assert_string_equal(getv(fx->t, "x"), "0");
}

static void test_arith_cas_vivify(void **state)
{
	struct fx *fx = *state;
	uint64_t h = cache_hash("av", 2);
	struct cache_arith_args a = { .incr = true, .delta = 1 };
	uint64_t v = 0, cas = 0, cas2 = 0;

	a.vivify = true;
	a.initial = 42;
	a.vivify_exptime = T0 + 9;
	assert_int_equal(cache_arith(fx->t, "av", 2, h, &a, &v, &cas), CACHE_OK);
	assert_int_equal(v, 42);
	assert_string_equal(getv(fx->t, "av"), "42");
	assert_int_equal(cache_item_exptime(get(fx->t, "av")), T0 + 9);
	a.vivify = false;
	a.cas_compare = cas + 1;
	assert_int_equal(cache_arith(fx->t, "av", 2, h, &a, &v, NULL), CACHE_EXISTS);
	a.cas_compare = cas;
	assert_int_equal(cache_arith(fx->t, "av", 2, h, &a, &v, &cas2), CACHE_OK);
	assert_int_equal(v, 43);
	assert_true(cas2 > cas);
	assert_int_equal(cas_of(fx->t, "av"), cas2);
	a.cas_compare = 0;
	a.touch = true;
	a.new_exptime = T0 + 99;
	assert_int_equal(cache_arith(fx->t, "av", 2, h, &a, &v, NULL), CACHE_OK);
	assert_int_equal(cache_item_exptime(get(fx->t, "av")), T0 + 99);
}

/* ---- memory ------------------------------------------------------------- */

static void test_no_evict(void **state)
{
	struct fx *fx = *state;
	char key[32], val[1000];
	struct cache_stats st;
	int stored = 0;
	enum cache_status s = CACHE_OK;

	memset(val, 'v', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		s = set(fx->t, key, val, 10);
		if (s != CACHE_OK)
			break;
		stored++;
	}
	assert_int_equal(s, CACHE_NO_MEMORY);
	assert_true(stored > 10);
	cache_stats_get(fx->c, &st);
	assert_int_equal(st.evictions, 0);
	assert_true(st.bytes + st.hash_bytes <= st.limit_maxbytes);
	/* every stored key is still there */
	for (int i = 0; i < stored; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_non_null(get(fx->t, key));
	}
	/* expired items are still reclaimed in no_evict mode */
	cache_clock_advance(10);
	assert_int_equal(set(fx->t, "new", val, 0), CACHE_OK);
	cache_stats_get(fx->c, &st);
	assert_int_equal(st.evictions, 0);
	assert_true(st.reclaimed >= 1);
}

static void test_stats_reset(void **state)
{
	struct fx *fx = *state;
	struct cache_stats st;

	assert_int_equal(set(fx->t, "a", "v", 0), CACHE_OK);
	assert_int_equal(set(fx->t, "b", "v", 0), CACHE_OK);
	cache_stats_get(fx->c, &st);
	assert_int_equal(st.total_items, 2);
	cache_stats_reset(fx->c);
	cache_stats_get(fx->c, &st);
	assert_int_equal(st.total_items, 0);
	assert_int_equal(st.curr_items, 2);
	assert_true(st.bytes > 0);
	assert_int_equal(set(fx->t, "c", "v", 0), CACHE_OK);
	cache_stats_get(fx->c, &st);
	assert_int_equal(st.total_items, 1);
	assert_int_equal(cache_config_get(fx->c)->mem_limit, 64u << 20);
	assert_int_equal(cache_config_get(fx->c)->max_threads, 64);
}

/* Leak check: after deleting everything and a quiescent state, the
 * accounting is back to 0; destroy also frees what is left (ASan checks). */
/* ---- cache_for_each ----------------------------------------------------- */

struct visit {
	char seen[64][8];          /* key strings visited, in visit order */
	unsigned n;
	uint32_t flags_sum;
};

static void visit_fn(void *arg, const struct cache_item *it)
{
	struct visit *v = arg;

	assert_true(v->n < 64);
	assert_true(it->nkey < sizeof(v->seen[0]));
	memcpy(v->seen[v->n], cache_item_key(it), it->nkey);
	v->seen[v->n][it->nkey] = '\0';
	v->n++;
	v->flags_sum += it->client_flags;
}

static bool visited(const struct visit *v, const char *key)
{
	unsigned hits = 0;

	for (unsigned i = 0; i < v->n; i++)
		hits += strcmp(v->seen[i], key) == 0;
	assert_true(hits <= 1);    /* never twice */
	return hits == 1;
}

/* Every linked, live item once: not deleted, replaced twice, expired or
 * flushed ones. */
static void test_for_each(void **state)
{
	struct fx *fx = *state;
	struct cache_store_args a = { .mode = CACHE_SET };
	struct visit v = { .n = 0 };
	char key[8];

	cache_for_each(fx->t, visit_fn, &v);
	assert_int_equal(v.n, 0);

	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(store(fx->t, key, "v", 1, 0, &a, NULL), CACHE_OK);
	}
	assert_int_equal(set(fx->t, "k0", "replaced", 0), CACHE_OK); /* flags 0 */
	assert_int_equal(cache_delete(fx->t, "k1", 2, cache_hash("k1", 2), 0),
			 CACHE_OK);
	assert_int_equal(set(fx->t, "short", "v", 10), CACHE_OK);
	assert_int_equal(set(fx->t, "gone", "v", -1), CACHE_OK); /* expired at once */

	cache_for_each(fx->t, visit_fn, &v);
	assert_int_equal(v.n, 40);         /* k0, k2..k39, short */
	assert_int_equal(v.flags_sum, 38);
	assert_true(visited(&v, "k0"));
	assert_false(visited(&v, "k1"));
	assert_true(visited(&v, "k39"));
	assert_true(visited(&v, "short"));
	assert_false(visited(&v, "gone"));

	cache_clock_advance(10);           /* "short" expires */
	v.n = 0;
	v.flags_sum = 0;
	cache_for_each(fx->t, visit_fn, &v);
	assert_int_equal(v.n, 39);
	assert_false(visited(&v, "short"));

	cache_clock_advance(1);
	cache_flush(fx->t, 0);
	assert_int_equal(set(fx->t, "after", "v", 0), CACHE_OK);
	v.n = 0;
	cache_for_each(fx->t, visit_fn, &v);
	assert_int_equal(v.n, 1);
	assert_true(visited(&v, "after"));
}

static void test_accounting_returns_to_zero(void **state)
{
	struct fx *fx = *state;
	char key[32];
	struct cache_stats st;
	struct cache_item *it;
	enum cache_status err;

	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		assert_int_equal(set(fx->t, key, "some value", i % 3 ? 0 : -1), CACHE_OK);
	}
	it = cache_item_alloc(fx->t, "pending", 7, 0, 0, 100, &err);
	assert_non_null(it);
	cache_stats_get(fx->c, &st);
	assert_true(st.bytes >= cache_item_footprint(7, 100));
	cache_item_abort(fx->t, &it);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		cache_delete(fx->t, key, strlen(key), cache_hash(key, strlen(key)), 0);
	}
	cache_stats_get(fx->c, &st);
	assert_int_equal(st.curr_items, 0);
	assert_int_equal(st.bytes, 0);
}

static void test_create_bad_config(void **state)
{
	struct cache_config cfg = { .item_size_max = 10 };

	(void)state;
	assert_null(cache_create(&cfg));
	assert_null(cache_create(NULL));
	cache_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_set_get_delete, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_empty_value_and_flags, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_keys, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_item_size_max_like_memcached, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_add_replace, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_append_prepend, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_append_too_large, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_cas, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_cas_invalidate, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_delete_cas_and_invalidate, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_exptime_from_wire, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_expiry_relative_absolute_negative, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_touch_and_gat, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_no_bump_and_info, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_flush_now_same_second, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_flush_delay, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_flush_delay_one, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_incr_decr, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_arith_cas_vivify, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_no_evict, setup_small_noevict, fx_teardown),
		cmocka_unit_test_setup_teardown(test_stats_reset, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_accounting_returns_to_zero, setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_for_each, setup, fx_teardown),
		cmocka_unit_test(test_create_bad_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
