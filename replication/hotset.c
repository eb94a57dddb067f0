/*
 * replication/hotset.c - the JSON documents of hot-key replication: a
 * node's report and the leader's replica set (see hotset.h; layout in
 * control/CLUSTER.md, "Hot keys").
 *
 * Design note
 * -----------
 * Both documents come from ZooKeeper, i.e. from other processes that may
 * run another version or be broken, and a parsed set decides where reads
 * of the hottest keys are served. So parsing is strict and all-or-nothing:
 * every member of the format must be present with its type, ids must pass
 * map_id_valid, keys must be canonical base64 (standard alphabet, padded,
 * no whitespace) of 1..CACHE_KEY_MAX bytes, rates finite and >= 0, counts
 * within the HOT_*_MAX limits, and no key (or replica of one key) may
 * appear twice. The one leniency, as in map.c: unknown members are ignored
 * so a newer leader may add fields during a rolling upgrade; duplicate
 * members are refused (JSON_REJECT_DUPLICATES).
 *
 * Canonical base64 is checked by re-encoding the decoded bytes and
 * comparing with the input: that refuses whitespace, a missing or extra
 * '=', and non-zero trailing bits in one rule, so one key has exactly one
 * spelling and two documents that mean the same key say the same thing.
 *
 * Keys are compared by their bytes; the hash (cache_hash) is filled by the
 * parsers for the readers' lookups and is never trusted from outside.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <nettle/base64.h>

#include "replication/hotset.h"

/* Longest base64 text of a key: 4 * ceil(250 / 3) = 336. */
#define HOT_B64_MAX BASE64_ENCODE_RAW_LENGTH(CACHE_KEY_MAX)

static int hot_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int hot_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* ---- keys in base64 ----------------------------------------------------- */

/* The base64 text of key into out (HOT_B64_MAX + 1 bytes), NUL-terminated. */
static void hot_b64_encode(char *out, const char *key, size_t nkey)
{
	size_t n = BASE64_ENCODE_RAW_LENGTH(nkey);

	base64_encode_raw(out, nkey, (const uint8_t *)key);
	out[n] = '\0';
}

/* Decodes canonical base64 of 1..CACHE_KEY_MAX bytes into key (*nkey).
 * false when it is anything else. */
static bool hot_b64_decode(const char *text, size_t len, char *key,
			   uint8_t *nkey)
{
	uint8_t buf[BASE64_DECODE_LENGTH(HOT_B64_MAX)];
	char again[HOT_B64_MAX + 1];
	struct base64_decode_ctx ctx;
	size_t n = sizeof(buf);

	if (len == 0 || len > HOT_B64_MAX || len % 4 != 0)
		return false;
	base64_decode_init(&ctx);
	if (!base64_decode_update(&ctx, &n, buf, len, text) ||
	    !base64_decode_final(&ctx))
		return false;
	if (n == 0 || n > CACHE_KEY_MAX)
		return false;
	/* Canonical: the same bytes encode back to the same text. */
	hot_b64_encode(again, (const char *)buf, n);
	if (strlen(again) != len || memcmp(again, text, len) != 0)
		return false;
	memcpy(key, buf, n);
	*nkey = (uint8_t)n;
	return true;
}

static json_t *hot_key_json(const char *key, size_t nkey)
{
	char text[HOT_B64_MAX + 1];

	hot_b64_encode(text, key, nkey);
	return json_string(text);
}

/* ---- member helpers ----------------------------------------------------- */

/* A finite JSON rate: jansson refuses NaN and infinities, so a bad rate
 * from our own side becomes 0 rather than an unformattable document. */
static json_t *hot_rate_json(double v)
{
	return json_real(isfinite(v) && v >= 0 ? v : 0.0);
}

/* A number (integer or real) member, finite and >= 0. */
static bool hot_get_rate(const json_t *obj, const char *name, double *out)
{
	const json_t *v = json_object_get(obj, name);
	double d;

	if (v == NULL || !json_is_number(v))
		return false;
	d = json_number_value(v);
	if (!isfinite(d) || d < 0)
		return false;
	*out = d;
	return true;
}

/* A non-negative integer member not above max. */
static bool hot_get_uint(const json_t *obj, const char *name, uint64_t max,
			 uint64_t *out)
{
	const json_t *v = json_object_get(obj, name);

	if (v == NULL || !json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

/* A node id member into out (MAP_ID_MAX). */
static bool hot_get_id(const json_t *obj, const char *name, char *out)
{
	const char *s = json_string_value(json_object_get(obj, name));

	if (s == NULL || !map_id_valid(s))
		return false;
	strcpy(out, s);     /* map_id_valid: shorter than MAP_ID_MAX */
	return true;
}

/* The "key" member decoded. */
static bool hot_get_key(const json_t *obj, char *key, uint8_t *nkey)
{
	const json_t *v = json_object_get(obj, "key");

	if (v == NULL || !json_is_string(v))
		return false;
	return hot_b64_decode(json_string_value(v), json_string_length(v),
			      key, nkey);
}

static bool hot_same_key(const char *a, size_t na, const char *b, size_t nb)
{
	return na == nb && memcmp(a, b, na) == 0;
}

/* Loads a document that must be an object; NULL with the reason in err. */
static json_t *hot_load(const char *json, size_t len, const char *what,
			char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (json == NULL) {
		hot_err(err, errlen, "no %s data", what);
		return NULL;
	}
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		hot_err(err, errlen, "bad JSON at line %d column %d: %s",
			jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		hot_err(err, errlen, "%s is not a JSON object", what);
		json_decref(root);
		return NULL;
	}
	return root;
}

/* ---- reports ------------------------------------------------------------ */

char *hot_report_format(const struct hot_report *r)
{
	json_t *root, *keys;
	char *s = NULL;
	unsigned i;

	keys = json_array();
	if (keys == NULL)
		return NULL;
	for (i = 0; i < r->nkeys; i++) {
		const struct hot_rate *k = &r->keys[i];
		/* "o" steals the references, also when json_pack fails. */
		json_t *o = json_pack("{s:o, s:o, s:o}",
				      "key", hot_key_json(k->key, k->nkey),
				      "reads", hot_rate_json(k->reads),
				      "writes", hot_rate_json(k->writes));

		if (o == NULL || json_array_append_new(keys, o) != 0) {
			json_decref(keys);
			return NULL;
		}
	}
	root = json_pack("{s:s, s:I, s:o, s:o, s:I, s:o}", "node", r->node,
			 "interval_ms", (json_int_t)r->interval_ms,
			 "received", hot_rate_json(r->received),
			 "executed", hot_rate_json(r->executed),
			 "set_version", (json_int_t)(r->set_version & INT64_MAX),
			 "keys", keys);
	if (root != NULL)
		s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return s;
}

void hot_report_free(struct hot_report **r)
{
	if (r == NULL || *r == NULL)
		return;
	free((*r)->keys);
	free(*r);
	*r = NULL;
}

int hot_report_parse(const char *json, size_t len, struct hot_report **out,
		     char *err, size_t errlen)
{
	struct hot_report *r = NULL;
	const json_t *keys;
	json_t *root;
	size_t i, j;
	int rc;

	*out = NULL;
	root = hot_load(json, len, "report", err, errlen);
	if (root == NULL)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		rc = -ENOMEM;
		hot_err(err, errlen, "out of memory");
		goto out;
	}
	if (!hot_get_id(root, "node", r->node)) {
		rc = hot_err(err, errlen, "missing or bad \"node\" (want 1-63 of [A-Za-z0-9_.-])");
		goto out;
	}
	if (!hot_get_uint(root, "interval_ms", UINT32_MAX, &r->interval_ms)) {
		rc = hot_err(err, errlen, "missing or bad \"interval_ms\" (want a non-negative integer)");
		goto out;
	}
	if (!hot_get_rate(root, "received", &r->received) ||
	    !hot_get_rate(root, "executed", &r->executed)) {
		rc = hot_err(err, errlen, "missing or bad \"received\"/\"executed\" (want finite numbers >= 0)");
		goto out;
	}
	/* Optional: reports of nodes that do not write it yet. */
	if (json_object_get(root, "set_version") != NULL &&
	    !hot_get_uint(root, "set_version", INT64_MAX, &r->set_version)) {
		rc = hot_err(err, errlen, "bad \"set_version\" (want a non-negative integer)");
		goto out;
	}
	keys = json_object_get(root, "keys");
	if (keys == NULL || !json_is_array(keys)) {
		rc = hot_err(err, errlen, "missing or bad \"keys\" (want an array)");
		goto out;
	}
	if (json_array_size(keys) > HOT_REPORT_KEYS_MAX) {
		rc = hot_err(err, errlen, "too many keys (%zu > %d)",
			     json_array_size(keys), HOT_REPORT_KEYS_MAX);
		goto out;
	}
	r->keys = calloc(json_array_size(keys) ? json_array_size(keys) : 1,
			 sizeof(*r->keys));
	if (r->keys == NULL) {
		rc = -ENOMEM;
		hot_err(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < json_array_size(keys); i++) {
		const json_t *o = json_array_get(keys, i);
		struct hot_rate *k = &r->keys[i];

		if (!json_is_object(o)) {
			rc = hot_err(err, errlen, "keys[%zu] is not an object", i);
			goto out;
		}
		if (!hot_get_key(o, k->key, &k->nkey)) {
			rc = hot_err(err, errlen, "keys[%zu]: missing or bad \"key\" (want base64 of 1..%u bytes)",
				     i, CACHE_KEY_MAX);
			goto out;
		}
		if (!hot_get_rate(o, "reads", &k->reads) ||
		    !hot_get_rate(o, "writes", &k->writes)) {
			rc = hot_err(err, errlen, "keys[%zu]: missing or bad \"reads\"/\"writes\" (want finite numbers >= 0)", i);
			goto out;
		}
		k->hash = cache_hash(k->key, k->nkey);
		/* 256 keys at most: the quadratic check is cheap. */
		for (j = 0; j < i; j++)
			if (r->keys[j].hash == k->hash &&
			    hot_same_key(r->keys[j].key, r->keys[j].nkey,
					 k->key, k->nkey)) {
				rc = hot_err(err, errlen, "keys[%zu]: duplicate of keys[%zu]", i, j);
				goto out;
			}
		r->nkeys++;
	}
	*out = r;
	r = NULL;
	rc = 0;
out:
	hot_report_free(&r);
	json_decref(root);
	return rc;
}

/* ---- the replica set ---------------------------------------------------- */

struct hot_set *hot_set_new(void)
{
	return calloc(1, sizeof(struct hot_set));
}

void hot_set_free(struct hot_set **s)
{
	if (s == NULL || *s == NULL)
		return;
	free((*s)->keys);
	free(*s);
	*s = NULL;
}

struct hot_set *hot_set_clone(const struct hot_set *s)
{
	struct hot_set *c = hot_set_new();

	if (c == NULL)
		return NULL;
	c->version = s->version;
	c->epoch = s->epoch;
	if (s->nkeys > 0) {
		c->keys = malloc(s->nkeys * sizeof(*c->keys));
		if (c->keys == NULL) {
			free(c);
			return NULL;
		}
		memcpy(c->keys, s->keys, s->nkeys * sizeof(*c->keys));
		c->nkeys = s->nkeys;
	}
	return c;
}

char *hot_set_format(const struct hot_set *s)
{
	json_t *root, *keys;
	char *out = NULL;
	unsigned i, j;

	keys = json_array();
	if (keys == NULL)
		return NULL;
	for (i = 0; i < s->nkeys; i++) {
		const struct hot_set_key *k = &s->keys[i];
		json_t *reps = json_array(), *o;

		for (j = 0; reps != NULL && j < k->nreplicas; j++)
			if (json_array_append_new(reps,
						  json_string(k->replicas[j])) != 0) {
				json_decref(reps);
				reps = NULL;
			}
		if (reps == NULL) {
			json_decref(keys);
			return NULL;
		}
		o = json_pack("{s:o, s:s, s:o, s:o, s:o}",
			      "key", hot_key_json(k->key, k->nkey),
			      "owner", k->owner, "replicas", reps,
			      "reads", hot_rate_json(k->reads),
			      "writes", hot_rate_json(k->writes));
		if (o == NULL || json_array_append_new(keys, o) != 0) {
			json_decref(keys);
			return NULL;
		}
	}
	/* Versions and epochs count up from 0: they fit int64. */
	root = json_pack("{s:I, s:I, s:o}", "version", (json_int_t)s->version,
			 "epoch", (json_int_t)s->epoch, "keys", keys);
	if (root != NULL)
		out = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return out;
}

/* One set entry's "replicas": valid ids, none the owner, no duplicate. */
static int hot_parse_replicas(const json_t *arr, struct hot_set_key *k,
			      size_t i, char *err, size_t errlen)
{
	size_t j, m;

	if (arr == NULL || !json_is_array(arr))
		return hot_err(err, errlen, "keys[%zu]: missing or bad \"replicas\" (want an array)", i);
	if (json_array_size(arr) > HOT_REPLICAS_MAX)
		return hot_err(err, errlen, "keys[%zu]: too many replicas (%zu > %d)",
			       i, json_array_size(arr), HOT_REPLICAS_MAX);
	for (j = 0; j < json_array_size(arr); j++) {
		const char *id = json_string_value(json_array_get(arr, j));

		if (id == NULL || !map_id_valid(id))
			return hot_err(err, errlen, "keys[%zu]: replicas[%zu] is not a node id", i, j);
		if (strcmp(id, k->owner) == 0)
			return hot_err(err, errlen, "keys[%zu]: replica \"%s\" is the owner", i, id);
		for (m = 0; m < j; m++)
			if (strcmp(k->replicas[m], id) == 0)
				return hot_err(err, errlen, "keys[%zu]: duplicate replica \"%s\"", i, id);
		strcpy(k->replicas[j], id);
		k->nreplicas++;
	}
	return 0;
}

int hot_set_parse(const char *json, size_t len, struct hot_set **out,
		  char *err, size_t errlen)
{
	struct hot_set *s = NULL;
	const json_t *keys;
	json_t *root;
	size_t i;
	int rc;

	*out = NULL;
	root = hot_load(json, len, "set", err, errlen);
	if (root == NULL)
		return -EINVAL;
	s = hot_set_new();
	if (s == NULL) {
		rc = -ENOMEM;
		hot_err(err, errlen, "out of memory");
		goto out;
	}
	if (!hot_get_uint(root, "version", INT64_MAX, &s->version)) {
		rc = hot_err(err, errlen, "missing or bad \"version\" (want a non-negative integer)");
		goto out;
	}
	if (!hot_get_uint(root, "epoch", INT64_MAX, &s->epoch)) {
		rc = hot_err(err, errlen, "missing or bad \"epoch\" (want a non-negative integer)");
		goto out;
	}
	keys = json_object_get(root, "keys");
	if (keys == NULL || !json_is_array(keys)) {
		rc = hot_err(err, errlen, "missing or bad \"keys\" (want an array)");
		goto out;
	}
	if (json_array_size(keys) > HOT_SET_KEYS_MAX) {
		rc = hot_err(err, errlen, "too many keys (%zu > %d)",
			     json_array_size(keys), HOT_SET_KEYS_MAX);
		goto out;
	}
	if (json_array_size(keys) > 0) {
		s->keys = calloc(json_array_size(keys), sizeof(*s->keys));
		if (s->keys == NULL) {
			rc = -ENOMEM;
			hot_err(err, errlen, "out of memory");
			goto out;
		}
	}
	for (i = 0; i < json_array_size(keys); i++) {
		const json_t *o = json_array_get(keys, i);
		struct hot_set_key *k = &s->keys[i];

		if (!json_is_object(o)) {
			rc = hot_err(err, errlen, "keys[%zu] is not an object", i);
			goto out;
		}
		if (!hot_get_key(o, k->key, &k->nkey)) {
			rc = hot_err(err, errlen, "keys[%zu]: missing or bad \"key\" (want base64 of 1..%u bytes)",
				     i, CACHE_KEY_MAX);
			goto out;
		}
		if (!hot_get_id(o, "owner", k->owner)) {
			rc = hot_err(err, errlen, "keys[%zu]: missing or bad \"owner\" (want a node id)", i);
			goto out;
		}
		rc = hot_parse_replicas(json_object_get(o, "replicas"), k, i,
					err, errlen);
		if (rc != 0)
			goto out;
		if (!hot_get_rate(o, "reads", &k->reads) ||
		    !hot_get_rate(o, "writes", &k->writes)) {
			rc = hot_err(err, errlen, "keys[%zu]: missing or bad \"reads\"/\"writes\" (want finite numbers >= 0)", i);
			goto out;
		}
		k->hash = cache_hash(k->key, k->nkey);
		if (hot_set_find(s, k->key, k->nkey) >= 0) {
			rc = hot_err(err, errlen, "keys[%zu]: duplicate key", i);
			goto out;
		}
		s->nkeys++;
	}
	*out = s;
	s = NULL;
	rc = 0;
out:
	hot_set_free(&s);
	json_decref(root);
	return rc;
}

int hot_set_find(const struct hot_set *s, const char *key, size_t nkey)
{
	uint64_t hash;
	unsigned i;

	if (s == NULL || key == NULL || nkey == 0 || nkey > CACHE_KEY_MAX)
		return -1;
	hash = cache_hash(key, nkey);
	for (i = 0; i < s->nkeys; i++)
		if (s->keys[i].hash == hash &&
		    hot_same_key(s->keys[i].key, s->keys[i].nkey, key, nkey))
			return (int)i;
	return -1;
}

/* Replica lists equal as sets (each list has no duplicate). */
static bool hot_same_replicas(const struct hot_set_key *a,
			      const struct hot_set_key *b)
{
	unsigned i, j;

	if (a->nreplicas != b->nreplicas)
		return false;
	for (i = 0; i < a->nreplicas; i++) {
		for (j = 0; j < b->nreplicas; j++)
			if (strcmp(a->replicas[i], b->replicas[j]) == 0)
				break;
		if (j == b->nreplicas)
			return false;
	}
	return true;
}

bool hot_set_same(const struct hot_set *a, const struct hot_set *b)
{
	unsigned i;

	if (a == NULL || b == NULL)
		return a == b;
	if (a->nkeys != b->nkeys)
		return false;
	/* Each side has no duplicate key (the parser and the planner see to
	 * it), so equal counts and every key of a found in b is equality. */
	for (i = 0; i < a->nkeys; i++) {
		const struct hot_set_key *ka = &a->keys[i];
		int j = hot_set_find(b, ka->key, ka->nkey);

		if (j < 0 || strcmp(ka->owner, b->keys[j].owner) != 0 ||
		    !hot_same_replicas(ka, &b->keys[j]))
			return false;
	}
	return true;
}
