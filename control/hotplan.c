/*
 * control/hotplan.c - the leader's choice of hot keys to replicate (see
 * hotplan.h; rules in control/CLUSTER.md, "Hot keys").
 *
 * Design note
 * -----------
 * A pure function of (reports, map, previous set): a new leader, or the
 * same one a second later, reaches the same set from the same input, and
 * every tie is broken by key bytes or node id, never by input order or
 * memory addresses. Only the previous set carries memory (hysteresis and
 * replica stability), and it is in ZooKeeper for every leader to read.
 *
 * Steps:
 *  1. candidates: the map's ACTIVE nodes with weight > 0 that sent a report
 *     (a node without a report is dead or not yet running its loop: it
 *     holds no replica). L = their mean 'executed' load. Reports from nodes
 *     not in the map are ignored whole; a standby node's keys count (its
 *     clients' reads are real) but it holds nothing.
 *  2. aggregate: R, W per key over the reports, by sorting every reported
 *     key by its bytes and summing runs (no hash table to size).
 *  3. holders h = ceil(R / (share * L)), the number of nodes that keep any
 *     one of them under share * L for this key (L = 0: every candidate).
 *     A key enters with R >= min_rate and h >= 2. Hysteresis: a key of
 *     the previous set stays while R >= min_rate / 2 and
 *     R >= share * L / 2 (half of the entry bar on both rates), so a key
 *     at the threshold does not flap. Write-heavy keys (W over
 *     max_write_fraction of R + W) never qualify: every write would cost an
 *     invalidation per replica.
 *  4. rank by R, keep 'budget'; replicas = clamp(h - 1, 1, N - 1), never
 *     the owner. The previous replicas that are still candidates come
 *     first (a replica that stays keeps its warm copy); extra ones are
 *     dropped most loaded first; missing ones are the least loaded
 *     candidates. "Load" is executed plus the share of every key this plan
 *     newly placed there (R / holders): without it one idle node would take
 *     every new replica of a plan.
 * During a migration (owners moving) the previous set is returned as is.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "control/hotplan.h"
#include "replication/ring.h"

void hot_plan_defaults(struct hot_plan_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->budget = 64;
	cfg->share = 0.05;
	cfg->min_rate = 100;
	cfg->max_write_fraction = 0.2;
}

/* A candidate replica holder. */
struct plan_node {
	const char *id;
	double executed;
	double load;            /* executed + what this plan placed here */
};

/* One reported key, then (after the merge) one aggregated key. */
struct plan_key {
	const struct hot_rate *rate;    /* bytes of the key */
	double reads, writes;
	bool in_prev;
	int prev_index;
};

static int plan_key_bytes_cmp(const struct hot_rate *a,
			      const struct hot_rate *b)
{
	size_t n = a->nkey < b->nkey ? a->nkey : b->nkey;
	int c = memcmp(a->key, b->key, n);

	if (c != 0)
		return c;
	return (a->nkey > b->nkey) - (a->nkey < b->nkey);
}

static int plan_key_cmp(const void *pa, const void *pb)
{
	const struct plan_key *a = pa, *b = pb;

	return plan_key_bytes_cmp(a->rate, b->rate);
}

/* R desc, then key bytes: the rank order. */
static int plan_rank_cmp(const void *pa, const void *pb)
{
	const struct plan_key *a = pa, *b = pb;

	if (a->reads != b->reads)
		return a->reads > b->reads ? -1 : 1;
	return plan_key_bytes_cmp(a->rate, b->rate);
}

/* Load asc, then id: the least loaded first. */
static int plan_node_cmp(const void *pa, const void *pb)
{
	const struct plan_node *a = *(const struct plan_node *const *)pa;
	const struct plan_node *b = *(const struct plan_node *const *)pb;

	if (a->load != b->load)
		return a->load < b->load ? -1 : 1;
	return strcmp(a->id, b->id);
}

static struct plan_node *plan_find_node(struct plan_node *v, unsigned n,
					const char *id)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(v[i].id, id) == 0)
			return &v[i];
	return NULL;
}

static int plan_copy_prev(const struct hot_set *prev, uint64_t epoch,
			  struct hot_set **out)
{
	struct hot_set *s = prev != NULL ? hot_set_clone(prev) : hot_set_new();

	if (s == NULL)
		return -ENOMEM;
	if (prev == NULL) {
		s->version = 1;
		s->epoch = epoch;
	}
	*out = s;
	return 0;
}

/*
 * Chooses the replicas of key k (owner already set) into sk: 'want' of
 * them among the candidates. prev_key: the key's previous entry or NULL.
 */
static void plan_replicas(struct plan_node *nodes, unsigned nnodes,
			  struct plan_node **scratch,
			  const struct hot_set_key *prev_key, unsigned want,
			  double per_holder, struct hot_set_key *sk)
{
	unsigned nkept = 0, nfree = 0, i;
	struct plan_node **kept = scratch, **free_nodes = scratch + nnodes;

	/* Previous replicas still alive and not the owner. */
	for (i = 0; prev_key != NULL && i < prev_key->nreplicas; i++) {
		struct plan_node *n = plan_find_node(nodes, nnodes,
						     prev_key->replicas[i]);

		if (n != NULL && strcmp(n->id, sk->owner) != 0)
			kept[nkept++] = n;
	}
	if (nkept > want) {
		/* Drop the most loaded extra ones. */
		qsort(kept, nkept, sizeof(*kept), plan_node_cmp);
		nkept = want;
	}
	for (i = 0; i < nkept; i++)
		strcpy(sk->replicas[sk->nreplicas++], kept[i]->id);
	if (nkept == want)
		return;
	/* Then the least loaded of the others. */
	for (i = 0; i < nnodes; i++) {
		unsigned j;

		if (strcmp(nodes[i].id, sk->owner) == 0)
			continue;
		for (j = 0; j < nkept; j++)
			if (kept[j] == &nodes[i])
				break;
		if (j == nkept)
			free_nodes[nfree++] = &nodes[i];
	}
	qsort(free_nodes, nfree, sizeof(*free_nodes), plan_node_cmp);
	for (i = 0; i < nfree && sk->nreplicas < want; i++) {
		free_nodes[i]->load += per_holder;
		strcpy(sk->replicas[sk->nreplicas++], free_nodes[i]->id);
	}
}

int hot_plan(const struct hot_plan_config *cfg, const struct shard_map *map,
	     const struct hot_report *const *reports, unsigned nreports,
	     const struct hot_set *prev, struct hot_set **out)
{
	struct plan_node *nodes = NULL, **scratch = NULL;
	struct plan_key *keys = NULL;
	struct hot_set *s = NULL;
	unsigned nnodes = 0, nkeys = 0, nmerged = 0, total = 0, i, j;
	double load = 0, bar;
	bool *seen = NULL;
	int rc = -ENOMEM;

	if (cfg == NULL || map == NULL || out == NULL ||
	    (nreports > 0 && reports == NULL))
		return -EINVAL;
	*out = NULL;
	if (map->migration != 0)
		return plan_copy_prev(prev, map->epoch, out);

	s = hot_set_new();
	nodes = calloc(map->nnodes ? map->nnodes : 1, sizeof(*nodes));
	seen = calloc(map->nnodes ? map->nnodes : 1, sizeof(*seen));
	if (s == NULL || nodes == NULL || seen == NULL)
		goto out;
	s->epoch = map->epoch;

	/* 1. Candidates, and which reports count (one per map node: the
	 * first one given wins). */
	for (i = 0; i < nreports; i++) {
		int m;

		if (reports[i] == NULL)
			continue;
		m = map_find(map, reports[i]->node);
		if (m < 0 || seen[m])
			continue;
		seen[m] = true;
		total += reports[i]->nkeys;
		if (map->nodes[m].state != MAP_NODE_ACTIVE ||
		    map->nodes[m].weight == 0)
			continue;
		nodes[nnodes].id = map->nodes[m].id;
		nodes[nnodes].executed = reports[i]->executed;
		nodes[nnodes].load = reports[i]->executed;
		load += reports[i]->executed;
		nnodes++;
	}
	if (nnodes < 2 || cfg->budget == 0 || map->ring == NULL)
		goto done;             /* nobody to replicate onto */
	load /= nnodes;

	/* 2. Every reported key of the counted reports, merged by bytes. */
	keys = calloc(total ? total : 1, sizeof(*keys));
	scratch = calloc(2 * (size_t)nnodes, sizeof(*scratch));
	if (keys == NULL || scratch == NULL)
		goto out;
	memset(seen, 0, map->nnodes * sizeof(*seen));
	for (i = 0; i < nreports; i++) {
		int m;

		if (reports[i] == NULL)
			continue;
		m = map_find(map, reports[i]->node);
		if (m < 0 || seen[m])
			continue;
		seen[m] = true;
		for (j = 0; j < reports[i]->nkeys; j++) {
			const struct hot_rate *r = &reports[i]->keys[j];

			if (r->nkey == 0 || r->nkey > CACHE_KEY_MAX)
				continue;
			keys[nkeys].rate = r;
			keys[nkeys].reads = isfinite(r->reads) && r->reads > 0 ?
					    r->reads : 0;
			keys[nkeys].writes = isfinite(r->writes) && r->writes > 0 ?
					     r->writes : 0;
			nkeys++;
		}
	}
	qsort(keys, nkeys, sizeof(*keys), plan_key_cmp);
	for (i = 0; i < nkeys; i++) {
		if (nmerged > 0 &&
		    plan_key_bytes_cmp(keys[nmerged - 1].rate, keys[i].rate) == 0) {
			keys[nmerged - 1].reads += keys[i].reads;
			keys[nmerged - 1].writes += keys[i].writes;
			continue;
		}
		keys[nmerged++] = keys[i];
	}

	/* 3. Which keys qualify (compacted in place). */
	bar = cfg->share * load;     /* one holder's fair share of a key */
	j = 0;
	for (i = 0; i < nmerged; i++) {
		struct plan_key *k = &keys[i];
		double r = k->reads, w = k->writes;
		int p = hot_set_find(prev, k->rate->key, k->rate->nkey);
		bool ok;

		if (w > cfg->max_write_fraction * (r + w) || r <= 0)
			continue;
		if (p >= 0)
			ok = r >= cfg->min_rate / 2 && r >= bar / 2;
		else
			ok = r >= cfg->min_rate && (bar <= 0 || r > bar);
		if (!ok)
			continue;
		k->in_prev = p >= 0;
		k->prev_index = p;
		keys[j++] = *k;
	}
	nmerged = j;

	/* 4. The budget's hottest, their owners and replicas. */
	qsort(keys, nmerged, sizeof(*keys), plan_rank_cmp);
	if (nmerged > cfg->budget)
		nmerged = cfg->budget;
	if (nmerged > HOT_SET_KEYS_MAX)
		nmerged = HOT_SET_KEYS_MAX;
	s->keys = calloc(nmerged ? nmerged : 1, sizeof(*s->keys));
	if (s->keys == NULL)
		goto out;
	for (i = 0; i < nmerged; i++) {
		const struct plan_key *k = &keys[i];
		struct hot_set_key *sk = &s->keys[s->nkeys];
		const struct map_node *owner;
		unsigned want, holders;
		double h;

		owner = map_owner(map, ring_hash(k->rate->key, k->rate->nkey));
		if (owner == NULL)
			continue;
		h = bar > 0 ? ceil(k->reads / bar) : (double)nnodes;
		holders = h >= (double)nnodes ? nnodes : (unsigned)h;
		want = holders > 1 ? holders - 1 : 1;
		if (want > nnodes - 1)
			want = nnodes - 1;
		if (want > HOT_REPLICAS_MAX)
			want = HOT_REPLICAS_MAX;
		memset(sk, 0, sizeof(*sk));
		memcpy(sk->key, k->rate->key, k->rate->nkey);
		sk->nkey = k->rate->nkey;
		sk->hash = cache_hash(sk->key, sk->nkey);
		sk->reads = k->reads;
		sk->writes = k->writes;
		strcpy(sk->owner, owner->id);
		plan_replicas(nodes, nnodes, scratch,
			      k->in_prev ? &prev->keys[k->prev_index] : NULL,
			      want, k->reads / (want + 1), sk);
		if (sk->nreplicas == 0)
			continue;      /* the owner is the only candidate */
		s->nkeys++;
	}
done:
	if (prev != NULL && hot_set_same(prev, s))
		s->version = prev->version;
	else
		s->version = prev != NULL ? prev->version + 1 : 1;
	*out = s;
	s = NULL;
	rc = 0;
out:
	hot_set_free(&s);
	free(nodes);
	free(seen);
	free(keys);
	free(scratch);
	return rc;
}
