/*
 * tests/replication/test_hotset.c - the JSON documents of hot-key
 * replication (replication/hotset.c): report and set round trips (binary
 * keys in base64 included), every class of parse error, hot_set_same,
 * hot_set_find and hot_set_clone.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "replication/hotset.h"

/* ---- helpers ------------------------------------------------------------ */

static void set_key(struct hot_set_key *k, const char *key, size_t nkey,
		    const char *owner, const char *const *reps, unsigned nreps)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->key, key, nkey);
	k->nkey = (uint8_t)nkey;
	k->hash = cache_hash(key, nkey);
	strcpy(k->owner, owner);
	for (unsigned i = 0; i < nreps; i++)
		strcpy(k->replicas[i], reps[i]);
	k->nreplicas = nreps;
	k->reads = 1000.5;
	k->writes = 2.25;
}

static struct hot_set *make_set(unsigned n)
{
	static const char *const reps[] = { "n2", "n3", "n4" };
	struct hot_set *s = hot_set_new();
	char key[32];

	assert_non_null(s);
	s->version = 7;
	s->epoch = 12;
	s->keys = calloc(n ? n : 1, sizeof(*s->keys));
	assert_non_null(s->keys);
	for (unsigned i = 0; i < n; i++) {
		int len = snprintf(key, sizeof(key), "key:%u", i);

		set_key(&s->keys[i], key, (size_t)len, "n1", reps, 1 + i % 3);
	}
	s->nkeys = n;
	return s;
}

static int parse_set(const char *json, char *err, size_t errlen)
{
	struct hot_set *s = NULL;
	int rc = hot_set_parse(json, strlen(json), &s, err, errlen);

	if (rc == 0)
		assert_non_null(s);
	else
		assert_null(s);
	hot_set_free(&s);
	return rc;
}

static int parse_report(const char *json, char *err, size_t errlen)
{
	struct hot_report *r = NULL;
	int rc = hot_report_parse(json, strlen(json), &r, err, errlen);

	if (rc == 0)
		assert_non_null(r);
	else
		assert_null(r);
	hot_report_free(&r);
	return rc;
}

/* ---- reports ------------------------------------------------------------ */

static void test_report_round_trip(void **state)
{
	struct hot_report r, *back = NULL;
	struct hot_rate keys[3];
	char err[200], *json, *again;

	(void)state;
	memset(&r, 0, sizeof(r));
	memset(keys, 0, sizeof(keys));
	strcpy(r.node, "n1");
	r.interval_ms = 1000;
	r.received = 1234.5;
	r.executed = 2345.0;
	r.set_version = 41;
	memcpy(keys[0].key, "foo", 3);
	keys[0].nkey = 3;
	keys[0].reads = 123.4;
	keys[0].writes = 1.5;
	/* Binary: NUL, high bytes, space and newline. */
	memcpy(keys[1].key, "\0\xff\x80 \n", 5);
	keys[1].nkey = 5;
	keys[1].reads = 50;
	memset(keys[2].key, 'x', CACHE_KEY_MAX);
	keys[2].nkey = CACHE_KEY_MAX;
	keys[2].writes = 7;
	r.keys = keys;
	r.nkeys = 3;

	json = hot_report_format(&r);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"node\":\"n1\""));
	assert_non_null(strstr(json, "\"key\":\"Zm9v\""));
	assert_int_equal(hot_report_parse(json, strlen(json), &back, err,
					  sizeof(err)), 0);
	assert_string_equal(back->node, "n1");
	assert_int_equal(back->interval_ms, 1000);
	assert_true(back->received == 1234.5);
	assert_true(back->executed == 2345.0);
	assert_int_equal(back->set_version, 41);
	assert_int_equal(back->nkeys, 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(back->keys[i].nkey, keys[i].nkey);
		assert_memory_equal(back->keys[i].key, keys[i].key,
				    keys[i].nkey);
		assert_true(back->keys[i].reads == keys[i].reads);
		assert_true(back->keys[i].writes == keys[i].writes);
		assert_true(back->keys[i].hash ==
			    cache_hash(keys[i].key, keys[i].nkey));
	}
	again = hot_report_format(back);
	assert_string_equal(again, json);
	free(again);
	free(json);
	hot_report_free(&back);
	assert_null(back);
	hot_report_free(&back);      /* NULL is fine */
	hot_report_free(NULL);

	/* Integers are numbers too; unknown members are ignored;
	 * set_version may be absent (0). */
	assert_int_equal(parse_report("{\"node\":\"a\",\"interval_ms\":500,"
				      "\"received\":0,\"executed\":3,\"keys\":[],"
				      "\"future\":{\"x\":1}}", err, sizeof(err)), 0);
}

static void test_report_errors(void **state)
{
	static const struct {
		const char *json;
		const char *why;      /* a word of the reason */
	} bad[] = {
		{ "", "JSON" },
		{ "[1]", "object" },
		{ "{\"interval_ms\":1,\"received\":1,\"executed\":1,\"keys\":[]}", "node" },
		{ "{\"node\":\"bad id\",\"interval_ms\":1,\"received\":1,\"executed\":1,\"keys\":[]}", "node" },
		{ "{\"node\":7,\"interval_ms\":1,\"received\":1,\"executed\":1,\"keys\":[]}", "node" },
		{ "{\"node\":\"a\",\"received\":1,\"executed\":1,\"keys\":[]}", "interval_ms" },
		{ "{\"node\":\"a\",\"interval_ms\":-1,\"received\":1,\"executed\":1,\"keys\":[]}", "interval_ms" },
		{ "{\"node\":\"a\",\"interval_ms\":1.5,\"received\":1,\"executed\":1,\"keys\":[]}", "interval_ms" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"executed\":1,\"keys\":[]}", "received" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":-1,\"executed\":1,\"keys\":[]}", "received" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":\"1\",\"executed\":1,\"keys\":[]}", "received" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":1,\"keys\":[]}", "executed" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":1,\"executed\":1}", "keys" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":1,\"executed\":1,\"keys\":{}}", "keys" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":1,\"executed\":1,\"keys\":[1]}", "object" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":1,\"executed\":1,\"keys\":[{\"reads\":1,\"writes\":0}]}", "key" },
		/* not base64, bad padding, whitespace, non-canonical bits, empty */
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":1,\"executed\":1,\"keys\":[{\"key\":\"Zm9*\",\"reads\":1,\"writes\":0}]}", "key" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":1,\"executed\":1,\"keys\":[{\"key\":\"Zm8\",\"reads\":1,\"writes\":0}]}", "key" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":1,\"executed\":1,\"keys\":[{\"key\":\"Zm 9v\",\"reads\":1,\"writes\":0}]}", "key" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":1,\"executed\":1,\"keys\":[{\"key\":\"Zm9=\",\"reads\":1,\"writes\":0}]}", "key" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":1,\"executed\":1,\"keys\":[{\"key\":\"\",\"reads\":1,\"writes\":0}]}", "key" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":1,\"executed\":1,\"keys\":[{\"key\":5,\"reads\":1,\"writes\":0}]}", "key" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":1,\"executed\":1,\"keys\":[{\"key\":\"Zm9v\",\"writes\":0}]}", "reads" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":1,\"executed\":1,\"keys\":[{\"key\":\"Zm9v\",\"reads\":1,\"writes\":-2}]}", "reads" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":1,\"executed\":1,\"keys\":[{\"key\":\"Zm9v\",\"reads\":1,\"writes\":0},{\"key\":\"Zm9v\",\"reads\":2,\"writes\":0}]}", "duplicate" },
		/* a duplicate member */
		{ "{\"node\":\"a\",\"node\":\"b\",\"interval_ms\":1,\"received\":1,\"executed\":1,\"keys\":[]}", "duplicate" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":1,\"executed\":1,\"set_version\":-3,\"keys\":[]}", "set_version" },
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":1,\"executed\":1,\"set_version\":\"3\",\"keys\":[]}", "set_version" },
		/* NaN/Infinity are not JSON; a huge exponent is refused too */
		{ "{\"node\":\"a\",\"interval_ms\":1,\"received\":1e999,\"executed\":1,\"keys\":[]}", "" },
	};
	char err[200];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (parse_report(bad[i].json, err, sizeof(err)) != -EINVAL)
			fail_msg("accepted: %s", bad[i].json);
		assert_true(err[0] != '\0');
		if (strstr(err, bad[i].why) == NULL)
			fail_msg("%s: reason '%s' lacks '%s'", bad[i].json, err,
				 bad[i].why);
	}
	/* A key of 251 bytes, and a report with too many keys. */
	{
		struct hot_report r;
		struct hot_rate *keys = calloc(HOT_REPORT_KEYS_MAX + 1,
					       sizeof(*keys));
		char *json;

		assert_non_null(keys);
		memset(&r, 0, sizeof(r));
		strcpy(r.node, "n1");
		r.keys = keys;
		for (unsigned i = 0; i <= HOT_REPORT_KEYS_MAX; i++) {
			keys[i].nkey = (uint8_t)snprintf(keys[i].key,
							 sizeof(keys[i].key),
							 "k%u", i);
		}
		r.nkeys = HOT_REPORT_KEYS_MAX;
		json = hot_report_format(&r);
		assert_int_equal(parse_report(json, err, sizeof(err)), 0);
		free(json);
		r.nkeys = HOT_REPORT_KEYS_MAX + 1;
		json = hot_report_format(&r);
		assert_int_equal(parse_report(json, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "too many"));
		free(json);
		free(keys);
	}
	{
		char json[1024], b64[400];
		/* 251 'x': 83 groups of "eHh4" and "eA==" */
		b64[0] = '\0';
		for (int i = 0; i < 83; i++)
			strcat(b64, "eHh4");
		strcat(b64, "eHg=");
		snprintf(json, sizeof(json),
			 "{\"node\":\"a\",\"interval_ms\":1,\"received\":1,\"executed\":1,"
			 "\"keys\":[{\"key\":\"%s\",\"reads\":1,\"writes\":0}]}", b64);
		assert_int_equal(parse_report(json, err, sizeof(err)), -EINVAL);
	}
	/* NULL data; err may be NULL. */
	{
		struct hot_report *r = (struct hot_report *)1;

		assert_int_equal(hot_report_parse(NULL, 0, &r, NULL, 0), -EINVAL);
		assert_null(r);
	}
}

/* ---- sets --------------------------------------------------------------- */

static void test_set_round_trip(void **state)
{
	struct hot_set *s = make_set(5), *back = NULL;
	static const char *const r2[] = { "n2", "n3" };
	char err[200], *json, *again;

	(void)state;
	/* One binary key. */
	set_key(&s->keys[4], "\x01\x02\x00\xfe", 4, "n9", r2, 2);
	json = hot_set_format(s);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"version\":7"));
	assert_non_null(strstr(json, "\"epoch\":12"));
	assert_int_equal(hot_set_parse(json, strlen(json), &back, err,
				       sizeof(err)), 0);
	assert_int_equal(back->version, 7);
	assert_int_equal(back->epoch, 12);
	assert_int_equal(back->nkeys, 5);
	for (unsigned i = 0; i < 5; i++) {
		const struct hot_set_key *a = &s->keys[i], *b = &back->keys[i];

		assert_int_equal(a->nkey, b->nkey);
		assert_memory_equal(a->key, b->key, a->nkey);
		assert_true(a->hash == b->hash);
		assert_string_equal(a->owner, b->owner);
		assert_int_equal(a->nreplicas, b->nreplicas);
		for (unsigned j = 0; j < a->nreplicas; j++)
			assert_string_equal(a->replicas[j], b->replicas[j]);
		assert_true(a->reads == b->reads && a->writes == b->writes);
	}
	assert_true(hot_set_same(s, back));
	again = hot_set_format(back);
	assert_string_equal(again, json);
	free(again);
	free(json);
	hot_set_free(&back);

	/* An empty set. */
	{
		struct hot_set *e = hot_set_new();

		assert_non_null(e);
		assert_int_equal(e->version, 0);
		json = hot_set_format(e);
		assert_string_equal(json, "{\"version\":0,\"epoch\":0,\"keys\":[]}");
		assert_int_equal(hot_set_parse(json, strlen(json), &back,
					       err, sizeof(err)), 0);
		assert_int_equal(back->nkeys, 0);
		assert_true(hot_set_same(e, back));
		assert_false(hot_set_same(e, s));
		free(json);
		hot_set_free(&back);
		hot_set_free(&e);
	}
	hot_set_free(&s);
	assert_null(s);
	hot_set_free(NULL);
}

static void test_set_errors(void **state)
{
#define K "\"key\":\"Zm9v\""
#define RW "\"reads\":1,\"writes\":0"
	static const struct {
		const char *json;
		const char *why;
	} bad[] = {
		{ "{", "JSON" },
		{ "\"x\"", "JSON" },
		{ "[]", "object" },
		{ "{\"epoch\":1,\"keys\":[]}", "version" },
		{ "{\"version\":-1,\"epoch\":1,\"keys\":[]}", "version" },
		{ "{\"version\":\"1\",\"epoch\":1,\"keys\":[]}", "version" },
		{ "{\"version\":1,\"keys\":[]}", "epoch" },
		{ "{\"version\":1,\"epoch\":0.5,\"keys\":[]}", "epoch" },
		{ "{\"version\":1,\"epoch\":1}", "keys" },
		{ "{\"version\":1,\"epoch\":1,\"keys\":null}", "keys" },
		{ "{\"version\":1,\"epoch\":1,\"keys\":[[]]}", "object" },
		{ "{\"version\":1,\"epoch\":1,\"keys\":[{\"owner\":\"n1\",\"replicas\":[\"n2\"]," RW "}]}", "key" },
		{ "{\"version\":1,\"epoch\":1,\"keys\":[{\"key\":\"!!!!\",\"owner\":\"n1\",\"replicas\":[\"n2\"]," RW "}]}", "key" },
		{ "{\"version\":1,\"epoch\":1,\"keys\":[{" K ",\"replicas\":[\"n2\"]," RW "}]}", "owner" },
		{ "{\"version\":1,\"epoch\":1,\"keys\":[{" K ",\"owner\":\"n/1\",\"replicas\":[\"n2\"]," RW "}]}", "owner" },
		{ "{\"version\":1,\"epoch\":1,\"keys\":[{" K ",\"owner\":\"n1\"," RW "}]}", "replicas" },
		{ "{\"version\":1,\"epoch\":1,\"keys\":[{" K ",\"owner\":\"n1\",\"replicas\":\"n2\"," RW "}]}", "replicas" },
		{ "{\"version\":1,\"epoch\":1,\"keys\":[{" K ",\"owner\":\"n1\",\"replicas\":[2]," RW "}]}", "node id" },
		{ "{\"version\":1,\"epoch\":1,\"keys\":[{" K ",\"owner\":\"n1\",\"replicas\":[\"\"]," RW "}]}", "node id" },
		{ "{\"version\":1,\"epoch\":1,\"keys\":[{" K ",\"owner\":\"n1\",\"replicas\":[\"n1\"]," RW "}]}", "owner" },
		{ "{\"version\":1,\"epoch\":1,\"keys\":[{" K ",\"owner\":\"n1\",\"replicas\":[\"n2\",\"n2\"]," RW "}]}", "duplicate replica" },
		{ "{\"version\":1,\"epoch\":1,\"keys\":[{" K ",\"owner\":\"n1\",\"replicas\":[\"n2\"],\"reads\":1}]}", "writes" },
		{ "{\"version\":1,\"epoch\":1,\"keys\":[{" K ",\"owner\":\"n1\",\"replicas\":[\"n2\"],\"reads\":-0.5,\"writes\":0}]}", "reads" },
		{ "{\"version\":1,\"epoch\":1,\"keys\":[{" K ",\"owner\":\"n1\",\"replicas\":[\"n2\"]," RW "},"
		  "{" K ",\"owner\":\"n2\",\"replicas\":[\"n3\"]," RW "}]}", "duplicate key" },
		{ "{\"version\":1,\"version\":2,\"epoch\":1,\"keys\":[]}", "duplicate" },
	};
	char err[200];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (parse_set(bad[i].json, err, sizeof(err)) != -EINVAL)
			fail_msg("accepted: %s", bad[i].json);
		if (strstr(err, bad[i].why) == NULL)
			fail_msg("%s: reason '%s' lacks '%s'", bad[i].json, err,
				 bad[i].why);
	}
	/* Accepted: unknown members, integer rates, no replicas. */
	assert_int_equal(parse_set("{\"version\":3,\"epoch\":1,\"x\":[1],\"keys\":[{" K
				   ",\"owner\":\"n1\",\"replicas\":[],\"reads\":5,\"writes\":0,\"y\":null}]}",
				   err, sizeof(err)), 0);

	/* Limits: keys and replicas. */
	{
		struct hot_set *s = make_set(HOT_SET_KEYS_MAX + 1);
		char *json;

		s->nkeys = HOT_SET_KEYS_MAX;
		json = hot_set_format(s);
		assert_int_equal(parse_set(json, err, sizeof(err)), 0);
		free(json);
		s->nkeys = HOT_SET_KEYS_MAX + 1;
		json = hot_set_format(s);
		assert_int_equal(parse_set(json, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "too many keys"));
		free(json);

		s->nkeys = 1;
		s->keys[0].nreplicas = HOT_REPLICAS_MAX;
		for (unsigned i = 0; i < HOT_REPLICAS_MAX; i++)
			snprintf(s->keys[0].replicas[i], MAP_ID_MAX, "r%u", i);
		json = hot_set_format(s);
		assert_int_equal(parse_set(json, err, sizeof(err)), 0);
		free(json);
		hot_set_free(&s);
	}
	{
		/* 65 replicas cannot be built in a struct: write the JSON. */
		char json[4096];
		size_t off = 0;

		off += (size_t)snprintf(json + off, sizeof(json) - off,
					"{\"version\":1,\"epoch\":1,\"keys\":[{" K
					",\"owner\":\"n1\"," RW ",\"replicas\":[");
		for (int i = 0; i <= HOT_REPLICAS_MAX; i++)
			off += (size_t)snprintf(json + off, sizeof(json) - off,
						"%s\"r%d\"", i ? "," : "", i);
		snprintf(json + off, sizeof(json) - off, "]}]}");
		assert_int_equal(parse_set(json, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "too many replicas"));
	}
#undef K
#undef RW
}

static void test_set_same_find_clone(void **state)
{
	struct hot_set *a = make_set(4), *b, *c;
	struct hot_set_key tmp;

	(void)state;
	b = hot_set_clone(a);
	assert_non_null(b);
	assert_int_equal(b->nkeys, 4);
	assert_true(b->keys != a->keys);
	assert_true(hot_set_same(a, b));

	/* Order of keys, rates and version do not matter. */
	tmp = b->keys[0];
	b->keys[0] = b->keys[3];
	b->keys[3] = tmp;
	b->keys[1].reads = 1;
	b->version = 99;
	b->epoch = 100;
	assert_true(hot_set_same(a, b));

	/* Replicas compared as sets. */
	assert_int_equal(a->keys[2].nreplicas, 3);
	c = hot_set_clone(a);
	strcpy(c->keys[2].replicas[0], "n4");
	strcpy(c->keys[2].replicas[2], "n2");
	assert_true(hot_set_same(a, c));
	strcpy(c->keys[2].replicas[0], "n5");
	assert_false(hot_set_same(a, c));
	hot_set_free(&c);

	/* A different owner, a replica fewer, a key fewer, another key. */
	c = hot_set_clone(a);
	strcpy(c->keys[1].owner, "n7");
	assert_false(hot_set_same(a, c));
	hot_set_free(&c);
	c = hot_set_clone(a);
	c->keys[2].nreplicas = 2;
	assert_false(hot_set_same(a, c));
	hot_set_free(&c);
	c = hot_set_clone(a);
	c->nkeys = 3;
	assert_false(hot_set_same(a, c));
	assert_false(hot_set_same(c, a));
	c->nkeys = 4;
	c->keys[3].key[0] = 'K';
	c->keys[3].hash = cache_hash(c->keys[3].key, c->keys[3].nkey);
	assert_false(hot_set_same(a, c));
	hot_set_free(&c);

	assert_true(hot_set_same(NULL, NULL));
	assert_false(hot_set_same(a, NULL));
	assert_false(hot_set_same(NULL, a));

	/* find */
	assert_int_equal(hot_set_find(a, "key:0", 5), 0);
	assert_int_equal(hot_set_find(a, "key:3", 5), 3);
	assert_int_equal(hot_set_find(a, "key:4", 5), -1);
	assert_int_equal(hot_set_find(a, "key:", 4), -1);
	assert_int_equal(hot_set_find(a, "key:33", 6), -1);
	assert_int_equal(hot_set_find(a, "", 0), -1);
	assert_int_equal(hot_set_find(NULL, "key:0", 5), -1);
	assert_int_equal(hot_set_find(b, "key:0", 5), 3);
	{
		/* Binary keys that share a prefix up to a NUL. */
		struct hot_set *s = make_set(2);
		static const char *const r[] = { "n2" };

		set_key(&s->keys[0], "a\0b", 3, "n1", r, 1);
		set_key(&s->keys[1], "a\0c", 3, "n1", r, 1);
		assert_int_equal(hot_set_find(s, "a\0c", 3), 1);
		assert_int_equal(hot_set_find(s, "a\0b", 3), 0);
		assert_int_equal(hot_set_find(s, "a", 1), -1);
		hot_set_free(&s);
	}
	/* A clone of an empty set. */
	c = hot_set_new();
	c->version = 5;
	hot_set_free(&b);
	b = hot_set_clone(c);
	assert_non_null(b);
	assert_int_equal(b->version, 5);
	assert_int_equal(b->nkeys, 0);
	hot_set_free(&b);
	hot_set_free(&c);
	hot_set_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_round_trip),
		cmocka_unit_test(test_report_errors),
		cmocka_unit_test(test_set_round_trip),
		cmocka_unit_test(test_set_errors),
		cmocka_unit_test(test_set_same_find_clone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
