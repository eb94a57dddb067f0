/*
 * replication/map.c - the shard map: nodes, rings, JSON (see map.h).
 *
 * Design note
 * -----------
 * A map is built privately (map_new/map_parse/map_clone, map_add_node,
 * map_build_rings) and then published; from then on nobody writes to it, so
 * readers on any thread need no lock, only a reference (or RCU protection of
 * the pointer they loaded, which is the cluster glue's business). The
 * reference count is the only field written after publication, with atomics.
 *
 * Rings are built from the nodes in array order: ring server index k is the
 * k-th ACTIVE node, and ring_node[k] maps it back to nodes[]. Owners are
 * compared between the two rings by node id, never by index, because a node
 * keeps its id but not its position across maps.
 *
 * Parsing is strict because the map drives where every key lives: anything
 * we do not understand is refused with a one-line reason (the agent logs it
 * and keeps its last good map). The exception is unknown object members,
 * which are ignored so that a newer leader can add fields without breaking
 * older nodes during a rolling upgrade; duplicate members are refused.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "replication/map.h"

bool map_id_valid(const char *id)
{
	size_t i;

	if (id == NULL || id[0] == '\0')
		return false;
	for (i = 0; id[i] != '\0'; i++) {
		char c = id[i];

		if (i >= MAP_ID_MAX - 1)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* "host:port" with an explicit port, printable, shorter than MAP_ADDR_MAX. */
static bool map_addr_valid(const char *addr)
{
	char host[MAP_ADDR_MAX];
	unsigned port;
	size_t i, len;

	if (addr == NULL)
		return false;
	len = strlen(addr);
	if (len == 0 || len >= MAP_ADDR_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (addr[i] <= ' ' || addr[i] > '~')
			return false;
	/* The port must be spelled out: clients and peers need the same one. */
	if (addr[0] == '[' ? strstr(addr, "]:") == NULL : strchr(addr, ':') == NULL)
		return false;
	return ring_addr_split(addr, host, sizeof(host), &port) == 0;
}

struct shard_map *map_new(void)
{
	struct shard_map *m = calloc(1, sizeof(*m));

	if (m != NULL)
		m->refs = 1;
	return m;
}

static void map_free_rings(struct shard_map *m)
{
	ring_free(m->ring);
	ring_free(m->prev_ring);
	free(m->ring_node);
	free(m->prev_ring_node);
	m->ring = m->prev_ring = NULL;
	m->ring_node = m->prev_ring_node = NULL;
}

static void map_free(struct shard_map *m)
{
	map_free_rings(m);
	free(m->nodes);
	free(m->prev);
	free(m);
}

void map_ref(struct shard_map *m)
{
	__atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
}

void map_unref(struct shard_map *m)
{
	if (m == NULL)
		return;
	/* Release our writes, acquire everyone else's before the free. */
	if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0)
		map_free(m);
}

static int map_find_in(const struct map_node *v, unsigned n, const char *id)
{
	unsigned i;

	if (id == NULL)
		return -1;
	for (i = 0; i < n; i++)
		if (strcmp(v[i].id, id) == 0)
			return (int)i;
	return -1;
}

int map_find(const struct shard_map *m, const char *id)
{
	return map_find_in(m->nodes, m->nnodes, id);
}

int map_find_prev(const struct shard_map *m, const char *id)
{
	return map_find_in(m->prev, m->nprev, id);
}

/* Appends to one node list (nodes or prev) after checking everything. */
static int map_list_add(struct map_node **list, unsigned *n, const char *id,
			const char *addr, uint32_t weight,
			enum map_node_state state)
{
	struct map_node *v, *node;

	if (!map_id_valid(id) || !map_addr_valid(addr) || weight == 0 ||
	    weight > MAP_WEIGHT_MAX ||
	    (state != MAP_NODE_ACTIVE && state != MAP_NODE_STANDBY))
		return -EINVAL;
	if (map_find_in(*list, *n, id) >= 0)
		return -EEXIST;
	if (*n >= MAP_NODES_MAX)
		return -E2BIG;
	v = realloc(*list, (*n + 1) * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	*list = v;
	node = &v[*n];
	memset(node, 0, sizeof(*node));
	strcpy(node->id, id);       /* lengths checked above */
	strcpy(node->addr, addr);
	node->weight = weight;
	node->state = (uint8_t)state;
	(*n)++;
	return 0;
}

int map_add_node(struct shard_map *m, const char *id, const char *addr,
		 uint32_t weight, enum map_node_state state)
{
	return map_list_add(&m->nodes, &m->nnodes, id, addr, weight, state);
}

static int map_copy_list(struct map_node **dst, unsigned *ndst,
			 const struct map_node *src, unsigned nsrc)
{
	struct map_node *v = NULL;

	if (nsrc > 0) {
		v = malloc(nsrc * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		memcpy(v, src, nsrc * sizeof(*v));
	}
	free(*dst);
	*dst = v;
	*ndst = nsrc;
	return 0;
}

/* The prev ring indexes prev[]: drop it with the list it points into, so a
 * lookup before the next map_build_rings() finds no owner rather than a
 * stale index. */
static void map_drop_prev_ring(struct shard_map *m)
{
	ring_free(m->prev_ring);
	free(m->prev_ring_node);
	m->prev_ring = NULL;
	m->prev_ring_node = NULL;
}

int map_snapshot_prev(struct shard_map *m)
{
	int rc = map_copy_list(&m->prev, &m->nprev, m->nodes, m->nnodes);

	if (rc == 0)
		map_drop_prev_ring(m);
	return rc;
}

void map_clear_prev(struct shard_map *m)
{
	free(m->prev);
	m->prev = NULL;
	m->nprev = 0;
	map_drop_prev_ring(m);
}

/* The ring of the active nodes of v[0..n) and the ring index -> v index map. */
static int map_ring_of(const struct map_node *v, unsigned n,
		       struct ring **ring, int **index)
{
	struct ring_server *servers;
	unsigned i, k = 0;
	int *idx;

	servers = calloc(n ? n : 1, sizeof(*servers));
	idx = calloc(n ? n : 1, sizeof(*idx));
	if (servers == NULL || idx == NULL)
		goto nomem;
	for (i = 0; i < n; i++) {
		if (v[i].state != MAP_NODE_ACTIVE || v[i].weight == 0)
			continue;
		servers[k].addr = v[i].addr;
		servers[k].weight = v[i].weight;
		idx[k++] = (int)i;
	}
	*ring = ring_build(servers, k);
	if (*ring == NULL)
		goto nomem;
	free(servers);
	*index = idx;
	return 0;
nomem:
	free(servers);
	free(idx);
	return -ENOMEM;
}

int map_build_rings(struct shard_map *m)
{
	struct ring *ring = NULL, *prev_ring = NULL;
	int *ring_node = NULL, *prev_ring_node = NULL;

	if (map_ring_of(m->nodes, m->nnodes, &ring, &ring_node) != 0)
		return -ENOMEM;
	if (m->migration != 0 &&
	    map_ring_of(m->prev, m->nprev, &prev_ring, &prev_ring_node) != 0) {
		ring_free(ring);
		free(ring_node);
		return -ENOMEM;
	}
	/* Swap only once everything is built: on failure the old rings stay. */
	map_free_rings(m);
	m->ring = ring;
	m->ring_node = ring_node;
	m->prev_ring = prev_ring;
	m->prev_ring_node = prev_ring_node;
	return 0;
}

struct shard_map *map_clone(const struct shard_map *m)
{
	struct shard_map *c = map_new();

	if (c == NULL)
		return NULL;
	c->epoch = m->epoch;
	c->migration = m->migration;
	c->phase = m->phase;
	if (map_copy_list(&c->nodes, &c->nnodes, m->nodes, m->nnodes) != 0 ||
	    map_copy_list(&c->prev, &c->nprev, m->prev, m->nprev) != 0 ||
	    map_build_rings(c) != 0) {
		map_free(c);
		return NULL;
	}
	return c;
}

/* ---- JSON ---- */

static int map_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int map_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* A non-negative JSON integer member; -ENOENT when absent. */
static int map_get_uint(const json_t *obj, const char *name, uint64_t max,
			uint64_t *out)
{
	const json_t *v = json_object_get(obj, name);

	if (v == NULL)
		return -ENOENT;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return -EINVAL;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int map_parse_nodes(const json_t *arr, const char *what,
			   struct map_node **list, unsigned *n,
			   char *err, size_t errlen)
{
	size_t i;

	if (!json_is_array(arr))
		return map_err(err, errlen, "\"%s\" is not an array", what);
	if (json_array_size(arr) > MAP_NODES_MAX)
		return map_err(err, errlen, "too many nodes in \"%s\" (%zu > %d)",
			       what, json_array_size(arr), MAP_NODES_MAX);
	for (i = 0; i < json_array_size(arr); i++) {
		const json_t *o = json_array_get(arr, i), *jid, *jaddr, *jst;
		enum map_node_state state;
		const char *id, *addr, *st;
		uint64_t weight;
		int rc;

		if (!json_is_object(o))
			return map_err(err, errlen, "%s[%zu] is not an object",
				       what, i);
		jid = json_object_get(o, "id");
		jaddr = json_object_get(o, "addr");
		jst = json_object_get(o, "state");
		if (jid == NULL || jaddr == NULL || jst == NULL ||
		    json_object_get(o, "weight") == NULL)
			return map_err(err, errlen,
				       "%s[%zu]: missing \"%s\"", what, i,
				       jid == NULL ? "id" : jaddr == NULL ? "addr" :
				       jst == NULL ? "state" : "weight");
		if (!json_is_string(jid) || !map_id_valid(json_string_value(jid)))
			return map_err(err, errlen,
				       "%s[%zu]: bad id (want 1-63 of [A-Za-z0-9_.-])",
				       what, i);
		id = json_string_value(jid);
		if (!json_is_string(jaddr) ||
		    !map_addr_valid(json_string_value(jaddr)))
			return map_err(err, errlen,
				       "%s[%zu] (%s): bad addr (want host:port)",
				       what, i, id);
		addr = json_string_value(jaddr);
		if (map_get_uint(o, "weight", UINT32_MAX, &weight) != 0 ||
		    weight == 0 || weight > MAP_WEIGHT_MAX)
			return map_err(err, errlen,
				       "%s[%zu] (%s): weight must be an integer 1..%d",
				       what, i, id, MAP_WEIGHT_MAX);
		st = json_is_string(jst) ? json_string_value(jst) : "";
		if (strcmp(st, "active") == 0)
			state = MAP_NODE_ACTIVE;
		else if (strcmp(st, "standby") == 0)
			state = MAP_NODE_STANDBY;
		else
			return map_err(err, errlen,
				       "%s[%zu] (%s): unknown state (want \"active\" or \"standby\")",
				       what, i, id);
		rc = map_list_add(list, n, id, addr, (uint32_t)weight, state);
		if (rc == -EEXIST)
			return map_err(err, errlen, "%s[%zu]: duplicate id \"%s\"",
				       what, i, id);
		if (rc == -ENOMEM)
			return map_err(err, errlen, "out of memory");
		if (rc != 0)
			return map_err(err, errlen, "%s[%zu] (%s): invalid node",
				       what, i, id);
	}
	return 0;
}

int map_parse(const char *json, size_t len, struct shard_map **out,
	      char *err, size_t errlen)
{
	struct shard_map *m = NULL;
	json_error_t jerr;
	json_t *root;
	const json_t *prev;
	int rc;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (json == NULL)
		return map_err(err, errlen, "no map data");
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return map_err(err, errlen, "bad JSON at line %d column %d: %s",
			       jerr.line, jerr.column, jerr.text);
	if (!json_is_object(root)) {
		rc = map_err(err, errlen, "map is not a JSON object");
		goto out;
	}
	m = map_new();
	if (m == NULL) {
		rc = map_err(err, errlen, "out of memory");
		goto out;
	}
	rc = map_get_uint(root, "epoch", INT64_MAX, &m->epoch);
	if (rc != 0) {
		rc = map_err(err, errlen, rc == -ENOENT ? "missing \"epoch\"" :
			     "epoch is not a non-negative integer");
		goto out;
	}
	rc = map_get_uint(root, "migration", INT64_MAX, &m->migration);
	if (rc == -EINVAL) {
		rc = map_err(err, errlen, "migration is not a non-negative integer");
		goto out;
	}
	/* "phase": "prepare" or "moving" with a migration; absent means
	 * moving (maps written before phases existed). */
	{
		json_t *ph = json_object_get(root, "phase");
		const char *pv = ph != NULL ? json_string_value(ph) : NULL;
		if (ph != NULL && pv == NULL) {
			rc = map_err(err, errlen, "phase is not a string");
			goto out;
		}
		if (m->migration == 0) {
			if (pv != NULL && strcmp(pv, "stable") != 0) {
				rc = map_err(err, errlen,
					     "phase \"%s\" in a stable map", pv);
				goto out;
			}
			m->phase = MAP_PHASE_STABLE;
		} else if (pv == NULL || strcmp(pv, "moving") == 0) {
			m->phase = MAP_PHASE_MOVING;
		} else if (strcmp(pv, "prepare") == 0) {
			m->phase = MAP_PHASE_PREPARE;
		} else {
			rc = map_err(err, errlen, "unknown phase \"%s\"", pv);
			goto out;
		}
	}
	if (json_object_get(root, "nodes") == NULL) {
		rc = map_err(err, errlen, "missing \"nodes\"");
		goto out;
	}
	rc = map_parse_nodes(json_object_get(root, "nodes"), "nodes",
			     &m->nodes, &m->nnodes, err, errlen);
	if (rc != 0)
		goto out;

	/* prev exists exactly while a migration is in flight. */
	prev = json_object_get(root, "prev");
	if (m->migration != 0 && prev == NULL) {
		rc = map_err(err, errlen, "migration %llu without \"prev\"",
			     (unsigned long long)m->migration);
		goto out;
	}
	if (m->migration == 0 && prev != NULL) {
		rc = map_err(err, errlen, "\"prev\" in a stable map (migration 0)");
		goto out;
	}
	if (prev != NULL) {
		rc = map_parse_nodes(prev, "prev", &m->prev, &m->nprev,
				     err, errlen);
		if (rc != 0)
			goto out;
	}
	if (map_build_rings(m) != 0) {
		rc = map_err(err, errlen, "out of memory");
		goto out;
	}
	*out = m;
	m = NULL;
	rc = 0;
out:
	if (m != NULL)
		map_free(m);
	json_decref(root);
	return rc;
}

static json_t *map_format_nodes(const struct map_node *v, unsigned n)
{
	json_t *arr = json_array();
	unsigned i;

	if (arr == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		json_t *o = json_pack("{s:s, s:s, s:I, s:s}",
				      "id", v[i].id, "addr", v[i].addr,
				      "weight", (json_int_t)v[i].weight,
				      "state", v[i].state == MAP_NODE_ACTIVE ?
				      "active" : "standby");

		if (o == NULL || json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

char *map_format(const struct shard_map *m)
{
	json_t *root, *nodes, *prev = NULL;
	char *s = NULL;

	/* Epochs and migration numbers count up from 0: they fit int64. */
	nodes = map_format_nodes(m->nodes, m->nnodes);
	if (m->migration != 0)
		prev = map_format_nodes(m->prev, m->nprev);
	if (nodes == NULL || (m->migration != 0 && prev == NULL)) {
		json_decref(nodes);
		json_decref(prev);
		return NULL;
	}
	/* "o" steals the references, also when json_pack fails. */
	if (prev != NULL)
		root = json_pack("{s:I, s:I, s:s, s:o, s:o}",
				 "epoch", (json_int_t)m->epoch,
				 "migration", (json_int_t)m->migration,
				 "phase", m->phase == MAP_PHASE_PREPARE ?
				 "prepare" : "moving",
				 "nodes", nodes, "prev", prev);
	else
		root = json_pack("{s:I, s:I, s:o}",
				 "epoch", (json_int_t)m->epoch,
				 "migration", (json_int_t)m->migration,
				 "nodes", nodes);
	if (root != NULL)
		s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return s;
}

/* ---- routing ---- */

const struct map_node *map_owner(const struct shard_map *m, uint32_t rhash)
{
	int k = ring_lookup(m->ring, rhash);

	return k < 0 ? NULL : &m->nodes[m->ring_node[k]];
}

const struct map_node *map_prev_owner(const struct shard_map *m,
				      uint32_t rhash)
{
	int k;

	if (m->migration == 0)
		return NULL;
	k = ring_lookup(m->prev_ring, rhash);
	return k < 0 ? NULL : &m->prev[m->prev_ring_node[k]];
}

static int map_u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void map_move_stats(const struct shard_map *m, struct map_move_stats *out)
{
	const struct ring_point *p_new, *p_old;
	unsigned n_new, n_old, n = 0, i;
	uint64_t moving = 0;
	uint32_t *u;

	memset(out, 0, sizeof(*out));
	if (m->migration == 0 || m->ring == NULL || m->prev_ring == NULL)
		return;
	n_new = ring_npoints(m->ring);
	n_old = ring_npoints(m->prev_ring);
	if (n_new + n_old == 0)
		return;
	p_new = ring_points(m->ring);
	p_old = ring_points(m->prev_ring);
	u = malloc((n_new + n_old) * sizeof(*u));
	if (u == NULL)
		return;   /* statistics only: report nothing rather than fail */
	for (i = 0; i < n_new; i++)
		u[n++] = p_new[i].value;
	for (i = 0; i < n_old; i++)
		u[n++] = p_old[i].value;
	qsort(u, n, sizeof(*u), map_u32_cmp);

	/*
	 * Elementary arc k is (u[k-1], u[k]] over the distinct values u; arc 0
	 * also covers the wrap (u[last], 2^32 - 1]. No point of either ring
	 * lies strictly inside an arc, so each ring gives the whole arc one
	 * owner: the one of its end value, u[k].
	 */
	for (i = 0; i < n; i++) {
		const struct map_node *a, *b;
		uint64_t width;

		if (i > 0 && u[i] == u[i - 1])
			continue;
		out->arcs_total++;
		a = map_owner(m, u[i]);
		b = map_prev_owner(m, u[i]);
		if (a != NULL && b != NULL && strcmp(a->id, b->id) == 0)
			continue;
		if (i == 0)
			width = (uint64_t)u[0] + 1 + (UINT32_MAX - (uint64_t)u[n - 1]);
		else
			width = (uint64_t)u[i] - u[i - 1];
		out->arcs_moving++;
		moving += width;
	}
	out->fraction_moving = (double)moving / 4294967296.0;
	free(u);
}
