/*
 * control/planner.c - the leader's decisions (see planner.h for the API).
 *
 * Design note
 * -----------
 * Every call looks only at its input (the published map, the registrations,
 * the progress records, one request) plus one piece of leader memory: when
 * each active map node was first seen unregistered. So a new leader, which
 * starts with an empty memory, reaches the same decisions from the map alone
 * (a death is only noticed one grace later).
 *
 * A new map is planned as a plain array of struct map_node ("want"), sorted
 * by id, and then turned into a shard_map whose prev is a snapshot of the
 * old map's nodes when the change moves data. Whether it moves data is
 * decided on the built rings, not guessed from the operation: a prev node is
 * a SOURCE of the migration when it owns, in the prev ring, some arc whose
 * owner id differs in the new ring (the same reasoning as map_move_stats).
 * Sources stream; nobody else does or writes a progress record. Hence:
 *  - a change with no source (first map, remove, a standby node, an empty
 *    old ring) is published stable;
 *  - a change whose every source is unregistered (e.g. dead nodes removed)
 *    is published stable too: nothing can stream from the dead;
 *  - a migration in flight is finished when every source still registered
 *    reports done;
 *  - a migration in flight whose every TARGET (new owner of a moving arc)
 *    is gone past the grace is rolled back to its prev nodes: the sources
 *    still hold every moving item, finishing would only lose them.
 * The migration id is the epoch of the map that starts it, so ids are unique
 * and increasing without extra state in ZooKeeper.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/planner.h"

/* An active map node first seen unregistered at since_ms. */
struct planner_absent {
	char id[MAP_ID_MAX];
	uint64_t since_ms;
};

struct planner {
	uint64_t grace_ms;
	/* Active nodes of the last input map that were unregistered, at most
	 * MAP_NODES_MAX (a map holds no more); scratch is the next table,
	 * built while this one is read. */
	struct planner_absent *absent;
	struct planner_absent *scratch;
	unsigned nabsent;
	/* The reason of the last migration this planner started, for the
	 * "conflicting operation" answer (a new leader does not know it). */
	uint64_t mig_id;
	char mig_reason[128];
	/* The PREPARE map being acknowledged, and when this planner first saw
	 * it (the wait bound starts then). */
	uint64_t prepare_epoch;
	uint64_t prepare_seen_ms;
	/* Progress of the sources of migration stall_mig, for the stall
	 * bound: a registered source whose progress has not moved for
	 * PLANNER_STALL_MS counts as done. */
	uint64_t stall_mig;
	struct planner_stall *stall;     /* MAP_NODES_MAX entries */
	unsigned nstall;
};

struct planner_stall {
	char id[MAP_ID_MAX];
	uint64_t progress;
	uint64_t since_ms;               /* when progress last moved */
};

/* A source that stays registered but streams nothing for this long (a
 * wedged process that keeps its ZooKeeper session) no longer holds the
 * migration, and with it every operator request, hostage. Its unsent items
 * are lost, as if it had died. */
#define PLANNER_STALL_MS 60000u

/* How long the leader waits for every node to apply a PREPARE map. */
#define PLANNER_PREPARE_WAIT_MS 10000u

struct planner *planner_create(uint64_t grace_ms)
{
	struct planner *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->absent = calloc(MAP_NODES_MAX, sizeof(*p->absent));
	p->scratch = calloc(MAP_NODES_MAX, sizeof(*p->scratch));
	p->stall = calloc(MAP_NODES_MAX, sizeof(*p->stall));
	if (p->absent == NULL || p->scratch == NULL || p->stall == NULL) {
		free(p->absent);
		free(p->scratch);
		free(p->stall);
		free(p);
		return NULL;
	}
	p->grace_ms = grace_ms;
	return p;
}

void planner_destroy(struct planner **pp)
{
	if (pp == NULL || *pp == NULL)
		return;
	free((*pp)->absent);
	free((*pp)->scratch);
	free((*pp)->stall);
	free(*pp);
	*pp = NULL;
}

static const char *const op_names[] = {
	[PLANNER_OP_NONE] = "none",
	[PLANNER_OP_ADD] = "add",
	[PLANNER_OP_REMOVE] = "remove",
	[PLANNER_OP_DRAIN] = "drain",
	[PLANNER_OP_WEIGHT] = "weight",
	[PLANNER_OP_REBALANCE] = "rebalance",
};

const char *planner_op_name(enum planner_op op)
{
	if ((unsigned)op >= sizeof(op_names) / sizeof(op_names[0]))
		return "unknown";
	return op_names[op];
}

enum planner_op planner_op_parse(const char *s)
{
	unsigned i;

	if (s == NULL)
		return PLANNER_OP_NONE;
	for (i = PLANNER_OP_NONE + 1; i < sizeof(op_names) / sizeof(op_names[0]);
	     i++)
		if (strcmp(s, op_names[i]) == 0)
			return (enum planner_op)i;
	return PLANNER_OP_NONE;
}

/* ---- inputs ---------------------------------------------------------- */

/* Ids in the input arrays come from ZooKeeper JSON: never trust that they
 * are terminated or well formed. */
static bool id_ok(const char *id)
{
	return strnlen(id, MAP_ID_MAX) < MAP_ID_MAX && map_id_valid(id);
}

/* A registration we may put on the ring: good id, address and weight. */
static bool member_usable(const struct planner_member *m)
{
	size_t alen = strnlen(m->addr, MAP_ADDR_MAX);

	return id_ok(m->id) && alen > 0 && alen < MAP_ADDR_MAX &&
	       m->weight >= 1 && m->weight <= MAP_WEIGHT_MAX;
}

/* The registration of 'id', or NULL. A malformed id matches nothing. */
static const struct planner_member *find_member(const struct planner_input *in,
						const char *id)
{
	unsigned i;

	for (i = 0; i < in->nmembers; i++)
		if (id_ok(in->members[i].id) &&
		    strcmp(in->members[i].id, id) == 0)
			return &in->members[i];
	return NULL;
}

static bool registered(const struct planner_input *in, const char *id)
{
	return find_member(in, id) != NULL;
}

static const struct planner_source *find_source(const struct planner_input *in,
						const char *id)
{
	unsigned i;

	for (i = 0; i < in->nsources; i++)
		if (strnlen(in->sources[i].id, MAP_ID_MAX) < MAP_ID_MAX &&
		    strcmp(in->sources[i].id, id) == 0)
			return &in->sources[i];
	return NULL;
}

/* ---- the grace clock ------------------------------------------------- */

static struct planner_absent *find_absent(struct planner *p, const char *id)
{
	unsigned i;

	for (i = 0; i < p->nabsent; i++)
		if (strcmp(p->absent[i].id, id) == 0)
			return &p->absent[i];
	return NULL;
}

/*
 * Rebuilds the absent table from this input: an active map node that is
 * unregistered keeps its first-seen time (or gets now); every other entry is
 * dropped, so a node that comes back restarts its grace from zero. Runs on
 * every step, migration or not, so deaths during a migration are ripe when
 * it ends.
 */
static void track_absent(struct planner *p, const struct planner_input *in)
{
	const struct shard_map *m = in->map;
	struct planner_absent *swap;
	unsigned i, n = 0;

	for (i = 0; m != NULL && i < m->nnodes && n < MAP_NODES_MAX; i++) {
		const struct map_node *mn = &m->nodes[i];
		struct planner_absent *old, *e = &p->scratch[n];

		if (mn->state != MAP_NODE_ACTIVE || registered(in, mn->id))
			continue;
		old = find_absent(p, mn->id);
		snprintf(e->id, sizeof(e->id), "%s", mn->id);
		e->since_ms = old != NULL ? old->since_ms : in->now_ms;
		n++;
	}
	swap = p->absent;
	p->absent = p->scratch;
	p->scratch = swap;
	p->nabsent = n;
}

/* True when the active node 'id' has been unregistered for longer than the
 * grace (per this planner's memory). */
static bool gone_past_grace(struct planner *p, const struct planner_input *in,
			    const char *id)
{
	struct planner_absent *a = find_absent(p, id);

	/* A clock that went backwards means "not yet", never "long ago". */
	return a != NULL && in->now_ms > a->since_ms &&
	       in->now_ms - a->since_ms > p->grace_ms;
}

/* ---- building maps --------------------------------------------------- */

static int node_cmp(const void *a, const void *b)
{
	const struct map_node *x = a, *y = b;

	return strcmp(x->id, y->id);
}

/* The node list we edit: a copy of the old map's nodes, room for 'extra'. */
struct plan {
	struct map_node *nodes;
	unsigned n, cap;
	char reason[128];
};

static int plan_init(struct plan *pl, const struct shard_map *old,
		     unsigned extra)
{
	unsigned nold = old != NULL ? old->nnodes : 0;

	memset(pl, 0, sizeof(*pl));
	pl->cap = nold + extra;
	pl->nodes = calloc(pl->cap > 0 ? pl->cap : 1, sizeof(*pl->nodes));
	if (pl->nodes == NULL)
		return -ENOMEM;
	if (nold > 0)
		memcpy(pl->nodes, old->nodes, nold * sizeof(*pl->nodes));
	pl->n = nold;
	return 0;
}

static void plan_fini(struct plan *pl)
{
	free(pl->nodes);
	pl->nodes = NULL;
}

static struct map_node *plan_find(struct plan *pl, const char *id)
{
	unsigned i;

	for (i = 0; i < pl->n; i++)
		if (strcmp(pl->nodes[i].id, id) == 0)
			return &pl->nodes[i];
	return NULL;
}

static void plan_drop(struct plan *pl, struct map_node *mn)
{
	unsigned i = (unsigned)(mn - pl->nodes);

	memmove(&pl->nodes[i], &pl->nodes[i + 1],
		(pl->n - i - 1) * sizeof(*pl->nodes));
	pl->n--;
}

static void plan_append(struct plan *pl, const char *id, const char *addr,
			uint32_t weight)
{
	struct map_node *mn;

	if (pl->n >= pl->cap)
		return;
	mn = &pl->nodes[pl->n++];
	memset(mn, 0, sizeof(*mn));
	snprintf(mn->id, sizeof(mn->id), "%s", id);
	snprintf(mn->addr, sizeof(mn->addr), "%s", addr);
	mn->weight = weight;
	mn->state = MAP_NODE_ACTIVE;
}

/* Appends "; what" (or "what" first) to the plan's reason, truncating. */
static void plan_reason(struct plan *pl, const char *fmt, ...)
{
	size_t len = strlen(pl->reason);
	va_list ap;

	if (len > 0 && len + 2 < sizeof(pl->reason)) {
		memcpy(pl->reason + len, "; ", 3);
		len += 2;
	}
	if (len + 1 >= sizeof(pl->reason))
		return;
	va_start(ap, fmt);
	vsnprintf(pl->reason + len, sizeof(pl->reason) - len, fmt, ap);
	va_end(ap);
}

/* Two node lists, both sorted by id, are the same map content. */
static bool same_nodes(const struct map_node *a, unsigned na,
		       const struct map_node *b, unsigned nb)
{
	unsigned i;

	if (na != nb)
		return false;
	for (i = 0; i < na; i++)
		if (strcmp(a[i].id, b[i].id) != 0 ||
		    strcmp(a[i].addr, b[i].addr) != 0 ||
		    a[i].weight != b[i].weight || a[i].state != b[i].state)
			return false;
	return true;
}

/* Adds nodes to m in order; a node map_add_node refuses as malformed is
 * left out (inputs were checked; this only guards a bad map from ZK). */
static int add_nodes(struct shard_map *m, const struct map_node *nodes,
		     unsigned n)
{
	unsigned i;
	int rc;

	for (i = 0; i < n; i++) {
		rc = map_add_node(m, nodes[i].id, nodes[i].addr,
				  nodes[i].weight,
				  (enum map_node_state)nodes[i].state);
		if (rc == -ENOMEM)
			return rc;
	}
	return 0;
}

/*
 * A new map: epoch = old epoch + 1 (1 for the first), nodes = want (sorted
 * here), and when 'moving', prev = the old map's nodes and migration = the
 * epoch (for now: settle() decides). Rings built.
 */
static struct shard_map *make_map(const struct shard_map *old,
				  struct map_node *want, unsigned nwant,
				  bool moving)
{
	struct shard_map *m = map_new();

	if (m == NULL)
		return NULL;
	qsort(want, nwant, sizeof(*want), node_cmp);
	if (moving && old != NULL) {
		/* prev is taken with map_snapshot_prev of the old nodes; then
		 * the node list is refilled. nodes[] is plain data owned by
		 * the map: lowering nnodes keeps the allocation valid for
		 * map_add_node (which grows it) and map_unref (which frees
		 * it). */
		if (add_nodes(m, old->nodes, old->nnodes) < 0 ||
		    map_snapshot_prev(m) < 0)
			goto fail;
		m->nnodes = 0;
	}
	if (add_nodes(m, want, nwant) < 0)
		goto fail;
	m->epoch = old != NULL ? old->epoch + 1 : 1;
	/* map_build_rings builds the prev ring only for a migration; settle()
	 * turns it back into a stable map when nobody can stream. */
	if (moving && old != NULL)
		m->migration = m->epoch;
	if (map_build_rings(m) < 0)
		goto fail;
	return m;
fail:
	map_unref(m);
	return NULL;
}

/*
 * Marks in is_source[] (indexed like m->prev) every prev node that owns, in
 * the prev ring, an arc whose owner id is different in the new ring, and in
 * is_target[] (indexed like m->nodes; may be NULL) every new owner of such
 * an arc. The owner of a hash is constant between consecutive points of the
 * union of both rings and equals the owner of the upper point, so checking
 * every point of both rings checks every arc (the wrap-around arc included:
 * it belongs to each ring's first point). When the rings are missing, every
 * active prev node counts as a source and no node as a target.
 */
static void mark_moves(const struct shard_map *m, bool *is_source,
		       bool *is_target)
{
	const struct ring *rings[2];
	unsigned r, i;

	memset(is_source, 0, m->nprev * sizeof(*is_source));
	if (is_target != NULL)
		memset(is_target, 0, m->nnodes * sizeof(*is_target));
	if (m->nprev == 0)
		return;
	if (m->prev_ring == NULL || m->ring == NULL) {
		for (i = 0; i < m->nprev; i++)
			if (m->prev[i].state == MAP_NODE_ACTIVE)
				is_source[i] = true;
		return;
	}
	rings[0] = m->prev_ring;
	rings[1] = m->ring;
	for (r = 0; r < 2; r++) {
		const struct ring_point *pts = ring_points(rings[r]);
		unsigned npts = ring_npoints(rings[r]);

		for (i = 0; i < npts; i++) {
			const struct map_node *po, *no;

			po = map_prev_owner(m, pts[i].value);
			if (po == NULL)
				continue;
			no = map_owner(m, pts[i].value);
			if (no != NULL && strcmp(no->id, po->id) == 0)
				continue;
			is_source[po - m->prev] = true;
			if (no != NULL && is_target != NULL)
				is_target[no - m->nodes] = true;
		}
	}
}

/* Counts the sources of m's migration: all of them (*total, may be NULL)
 * and the registered ones that have not reported done (*pending; with
 * 'ignore_progress', registered ones whatever they reported). 0 or -ENOMEM. */
/* Whether source 'id' of migration 'mig' (progress 'progress' now) has
 * made no progress for PLANNER_STALL_MS; starts its clock when first seen. */
static bool source_stalled(struct planner *p, uint64_t mig, const char *id,
			   uint64_t progress, uint64_t now)
{
	struct planner_stall *e = NULL;

	if (p->stall_mig != mig) {
		p->stall_mig = mig;
		p->nstall = 0;
	}
	for (unsigned i = 0; i < p->nstall; i++)
		if (strcmp(p->stall[i].id, id) == 0)
			e = &p->stall[i];
	if (e == NULL) {
		if (p->nstall == MAP_NODES_MAX)
			return false;
		e = &p->stall[p->nstall++];
		snprintf(e->id, sizeof(e->id), "%s", id);
		e->progress = progress;
		e->since_ms = now;
		return false;
	}
	if (progress != e->progress) {
		e->progress = progress;
		e->since_ms = now;
		return false;
	}
	return now - e->since_ms >= PLANNER_STALL_MS;
}

/* p non-NULL: a registered source stalled past PLANNER_STALL_MS counts as
 * done, and its id goes to *stalled (if not NULL). */
static int count_sources(struct planner *p, const struct shard_map *m,
			 const struct planner_input *in, bool ignore_progress,
			 unsigned *total, unsigned *pending,
			 const char **stalled)
{
	bool *is_source;
	unsigned i;

	*pending = 0;
	if (total != NULL)
		*total = 0;
	if (m->nprev == 0)
		return 0;
	is_source = calloc(m->nprev, sizeof(*is_source));
	if (is_source == NULL)
		return -ENOMEM;
	mark_moves(m, is_source, NULL);
	for (i = 0; i < m->nprev; i++) {
		const struct planner_source *s;

		if (!is_source[i])
			continue;
		if (total != NULL)
			(*total)++;
		if (!registered(in, m->prev[i].id))
			continue;
		s = find_source(in, m->prev[i].id);
		if (!ignore_progress && s != NULL && s->done)
			continue;
		if (!ignore_progress && p != NULL &&
		    source_stalled(p, m->migration, m->prev[i].id,
				   s != NULL ? s->progress : 0, in->now_ms)) {
			if (stalled != NULL)
				*stalled = m->prev[i].id;
			continue;
		}
		(*pending)++;
	}
	free(is_source);
	return 0;
}

/* What publish() did. */
enum {
	PUB_STABLE = 0,         /* a stable map: no data moves */
	PUB_MIGRATION,          /* a map that starts a migration */
	PUB_STABLE_DEAD,        /* stable: data moves, but only from the dead */
	PUB_NO_CHANGE,          /* the plan equals the map: nothing published */
};

/*
 * Turns a candidate map (prev set, rings built) into a migration, or into a
 * stable map when no registered node has anything to stream. Sets the
 * migration fields of out. PUB_* or -ENOMEM.
 */
static int settle(struct planner *p, struct shard_map *m,
		  const struct planner_input *in, const char *reason,
		  struct planner_output *out)
{
	unsigned total, live;
	int rc = count_sources(NULL, m, in, true, &total, &live, NULL);
	size_t len;

	if (rc < 0)
		return rc;
	snprintf(out->reason, sizeof(out->reason), "%s", reason);
	if (live == 0) {
		map_clear_prev(m);
		m->migration = 0;
		if (map_build_rings(m) < 0)
			return -ENOMEM;
		if (total == 0)
			return PUB_STABLE;
		len = strlen(out->reason);
		snprintf(out->reason + len, sizeof(out->reason) - len, "%s",
			 " (stable: every source is unregistered)");
		return PUB_STABLE_DEAD;
	}
	m->migration = m->epoch;
	m->phase = MAP_PHASE_PREPARE;
	out->migration_started = m->migration;
	p->mig_id = m->migration;
	snprintf(p->mig_reason, sizeof(p->mig_reason), "%s", reason);
	return PUB_MIGRATION;
}

/*
 * Publishes the plan (if it differs from the old map) into out->map: a
 * migration when it moves data from a registered node, else stable. PUB_*
 * or -ENOMEM.
 */
static int publish(struct planner *p, const struct planner_input *in,
		   struct plan *pl, bool moving, struct planner_output *out)
{
	const struct shard_map *old = in->map;
	struct map_node *sorted_old = NULL;
	struct shard_map *m;
	bool same;
	int rc;

	qsort(pl->nodes, pl->n, sizeof(*pl->nodes), node_cmp);
	if (old != NULL) {
		sorted_old = calloc(old->nnodes > 0 ? old->nnodes : 1,
				    sizeof(*sorted_old));
		if (sorted_old == NULL)
			return -ENOMEM;
		if (old->nnodes > 0)
			memcpy(sorted_old, old->nodes,
			       old->nnodes * sizeof(*sorted_old));
		qsort(sorted_old, old->nnodes, sizeof(*sorted_old), node_cmp);
		same = same_nodes(pl->nodes, pl->n, sorted_old, old->nnodes);
		free(sorted_old);
		if (same)
			return PUB_NO_CHANGE;
	}
	m = make_map(old, pl->nodes, pl->n, moving);
	if (m == NULL)
		return -ENOMEM;
	if (moving) {
		rc = settle(p, m, in, pl->reason, out);
		if (rc < 0) {
			map_unref(m);
			return rc;
		}
	} else {
		snprintf(out->reason, sizeof(out->reason), "%s", pl->reason);
		rc = PUB_STABLE;
	}
	out->map = m;
	return rc;
}

/* ---- the steps ------------------------------------------------------- */

static void say(struct planner_output *out, enum planner_req_status st,
		const char *fmt, ...)
{
	va_list ap;

	out->req_status = st;
	va_start(ap, fmt);
	vsnprintf(out->message, sizeof(out->message), fmt, ap);
	va_end(ap);
}

/* Request answer once a plan was published (or not): rc from publish(). */
static void say_published(struct planner_output *out, int rc)
{
	switch (rc) {
	case PUB_NO_CHANGE:
		say(out, PLANNER_REQ_DONE, "no change");
		break;
	case PUB_MIGRATION:
		say(out, PLANNER_REQ_RUNNING, "migration %llu started (%s)",
		    (unsigned long long)out->migration_started, out->reason);
		break;
	default:        /* PUB_STABLE, PUB_STABLE_DEAD: the reason tells */
		say(out, PLANNER_REQ_DONE, "%s: published stable", out->reason);
		break;
	}
}

/* 1. The first map: every usable registered non-standby member, stable. */
static int plan_first(const struct planner_input *in,
		      struct planner_output *out)
{
	struct plan pl;
	unsigned i;
	int rc;

	rc = plan_init(&pl, NULL, in->nmembers);
	if (rc < 0)
		return rc;
	for (i = 0; i < in->nmembers; i++) {
		const struct planner_member *mb = &in->members[i];

		if (mb->standby || !member_usable(mb) || plan_find(&pl, mb->id))
			continue;
		plan_append(&pl, mb->id, mb->addr, mb->weight);
	}
	out->map = make_map(NULL, pl.nodes, pl.n, false);
	plan_fini(&pl);
	if (out->map == NULL)
		return -ENOMEM;
	snprintf(out->reason, sizeof(out->reason), "first map");
	if (in->request != NULL)
		say(out, PLANNER_REQ_DEFERRED, "creating the first map");
	return 0;
}

/* 1 when m's migration has targets and every one of them is gone past the
 * grace (nothing it was moving can arrive anywhere), else 0; -ENOMEM. */
static int targets_gone(struct planner *p, const struct planner_input *in,
			const struct shard_map *m)
{
	bool *is_source, *is_target;
	unsigned i, ntargets = 0;
	int rc = 1;

	is_source = calloc(m->nprev ? m->nprev : 1, sizeof(*is_source));
	is_target = calloc(m->nnodes ? m->nnodes : 1, sizeof(*is_target));
	if (is_source == NULL || is_target == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	mark_moves(m, is_source, is_target);
	for (i = 0; i < m->nnodes; i++) {
		if (!is_target[i])
			continue;
		ntargets++;
		if (!gone_past_grace(p, in, m->nodes[i].id))
			rc = 0;
	}
	if (ntargets == 0)
		rc = 0;
out:
	free(is_source);
	free(is_target);
	return rc;
}

/*
 * Rollback: every target of the migration died. The sources still hold
 * every moving item (they drop only after a stable map that moves it away),
 * so going back to the prev ring loses nothing that finishing would keep.
 * The map: nodes = prev, stable.
 */
static int plan_rollback(const struct planner_input *in,
			 struct planner_output *out)
{
	const struct shard_map *old = in->map;
	uint64_t mig = old->migration;
	struct map_node *want;

	want = calloc(old->nprev ? old->nprev : 1, sizeof(*want));
	if (want == NULL)
		return -ENOMEM;
	if (old->nprev > 0)
		memcpy(want, old->prev, old->nprev * sizeof(*want));
	out->map = make_map(old, want, old->nprev, false);
	free(want);
	if (out->map == NULL)
		return -ENOMEM;
	out->migration_rolled_back = mig;
	snprintf(out->reason, sizeof(out->reason),
		 "migration %llu rolled back: every target is gone",
		 (unsigned long long)mig);
	if (in->request != NULL)
		say(out, PLANNER_REQ_DEFERRED, "migration %llu is rolling back",
		    (unsigned long long)mig);
	return 0;
}

/* Refuses a request that comes while migration 'mig' runs. */
static void refuse_conflict(struct planner *p, uint64_t mig,
			    struct planner_output *out)
{
	if (p->mig_id == mig && p->mig_reason[0] != '\0')
		say(out, PLANNER_REQ_REJECTED,
		    "conflicting operation in flight: migration %llu (%s)",
		    (unsigned long long)mig, p->mig_reason);
	else
		say(out, PLANNER_REQ_REJECTED,
		    "conflicting operation in flight: migration %llu",
		    (unsigned long long)mig);
}

/*
 * A migration in its PREPARE phase moves on to MOVING once every registered
 * node has applied the PREPARE map (or PLANNER_PREPARE_WAIT_MS passed since
 * this planner first saw it: a node that cannot apply maps must not stall
 * the cluster; it learns the MOVING map like any other). See map.h.
 */
static int plan_prepared(struct planner *p, const struct planner_input *in,
			 struct planner_output *out)
{
	const struct shard_map *old = in->map;
	bool all = true;

	if (p->prepare_epoch != old->epoch) {
		p->prepare_epoch = old->epoch;
		p->prepare_seen_ms = in->now_ms;
	}
	for (unsigned i = 0; i < in->nmembers; i++)
		if (member_usable(&in->members[i]) &&
		    in->members[i].applied_epoch < old->epoch)
			all = false;
	if (!all && in->now_ms - p->prepare_seen_ms < PLANNER_PREPARE_WAIT_MS) {
		if (in->request != NULL)
			refuse_conflict(p, old->migration, out);
		return 0;
	}
	struct shard_map *m = map_clone(old);
	if (m == NULL)
		return -ENOMEM;
	m->epoch = old->epoch + 1;
	m->phase = MAP_PHASE_MOVING;
	out->map = m;
	snprintf(out->reason, sizeof(out->reason), "migration %llu moving%s",
		 (unsigned long long)old->migration,
		 all ? "" : " (not every node applied the prepare map in time)");
	if (in->request != NULL)
		refuse_conflict(p, old->migration, out);
	return 0;
}

/* 2. A migration in flight: roll it back when all its targets died, finish
 * it when its live sources are done, or refuse the request. */
static int plan_in_flight(struct planner *p, const struct planner_input *in,
			  struct planner_output *out)
{
	const struct shard_map *old = in->map;
	uint64_t mig = old->migration;
	unsigned pending;
	struct plan pl;
	int rc;

	rc = targets_gone(p, in, old);
	if (rc < 0)
		return rc;
	if (rc > 0)
		return plan_rollback(in, out);
	if (old->phase == MAP_PHASE_PREPARE)
		return plan_prepared(p, in, out);
	const char *stalled = NULL;
	rc = count_sources(p, old, in, false, NULL, &pending, &stalled);
	if (rc < 0)
		return rc;
	if (pending > 0) {
		if (in->request == NULL)
			return 0;
		refuse_conflict(p, mig, out);
		return 0;
	}
	/* Every source still registered is done: the same nodes, stable. */
	rc = plan_init(&pl, old, 0);
	if (rc < 0)
		return rc;
	out->map = make_map(old, pl.nodes, pl.n, false);
	plan_fini(&pl);
	if (out->map == NULL)
		return -ENOMEM;
	out->migration_finished = mig;
	if (stalled != NULL)
		snprintf(out->reason, sizeof(out->reason),
			 "migration %llu finished (source %s made no progress "
			 "for %u s: its unsent items are lost)",
			 (unsigned long long)mig, stalled,
			 PLANNER_STALL_MS / 1000);
	else
		snprintf(out->reason, sizeof(out->reason),
			 "migration %llu finished", (unsigned long long)mig);
	if (in->request != NULL)
		say(out, PLANNER_REQ_DEFERRED, "migration %llu is finishing",
		    (unsigned long long)mig);
	return 0;
}

/*
 * 4. (and rebalance) Membership: active nodes gone past the grace leave the
 * map; active nodes whose registered address changed get it; usable
 * registered non-standby members missing from the map join, active.
 */
static int plan_membership(struct planner *p, const struct planner_input *in,
			   struct plan *pl, bool *moving)
{
	unsigned i;
	int rc;

	rc = plan_init(pl, in->map, in->nmembers);
	if (rc < 0)
		return rc;
	*moving = false;
	for (i = 0; i < pl->n;) {
		struct map_node *mn = &pl->nodes[i];
		const struct planner_member *mb = find_member(in, mn->id);

		if (mn->state == MAP_NODE_ACTIVE &&
		    gone_past_grace(p, in, mn->id)) {
			plan_reason(pl, "node %s gone", mn->id);
			plan_drop(pl, mn);
			*moving = true;
			continue;
		}
		if (mb != NULL && member_usable(mb) &&
		    strcmp(mb->addr, mn->addr) != 0) {
			plan_reason(pl, "addr %s %s", mn->id, mb->addr);
			snprintf(mn->addr, sizeof(mn->addr), "%s", mb->addr);
			*moving = true;
		}
		i++;
	}
	for (i = 0; i < in->nmembers; i++) {
		const struct planner_member *mb = &in->members[i];

		if (mb->standby || !member_usable(mb) || plan_find(pl, mb->id))
			continue;
		if (pl->n >= MAP_NODES_MAX)
			break;
		plan_append(pl, mb->id, mb->addr, mb->weight);
		plan_reason(pl, "add %s", mb->id);
		*moving = true;
	}
	return 0;
}

static unsigned count_active(const struct plan *pl)
{
	unsigned i, n = 0;

	for (i = 0; i < pl->n; i++)
		if (pl->nodes[i].state == MAP_NODE_ACTIVE &&
		    pl->nodes[i].weight > 0)
			n++;
	return n;
}

/* Prints an id from a request safely (it may be unterminated or junk). */
#define REQ_ID(r) (int)strnlen((r)->id, MAP_ID_MAX), (r)->id

/* 3. One operator request against a stable map. */
static int plan_request(struct planner *p, const struct planner_input *in,
			struct planner_output *out)
{
	const struct planner_request *rq = in->request;
	const struct planner_member *mb = NULL;
	struct map_node *mn = NULL;
	bool moving = true;
	struct plan pl;
	int rc;

	if (rq->op == PLANNER_OP_REBALANCE) {
		rc = plan_membership(p, in, &pl, &moving);
		if (rc < 0)
			return rc;
		if (pl.reason[0] == '\0')
			snprintf(pl.reason, sizeof(pl.reason), "rebalance");
		rc = publish(p, in, &pl, moving, out);
		plan_fini(&pl);
		if (rc < 0)
			return rc;
		say_published(out, rc);
		return 0;
	}
	if (rq->op != PLANNER_OP_ADD && rq->op != PLANNER_OP_REMOVE &&
	    rq->op != PLANNER_OP_DRAIN && rq->op != PLANNER_OP_WEIGHT) {
		say(out, PLANNER_REQ_REJECTED, "unknown operation");
		return 0;
	}
	if (!id_ok(rq->id)) {
		say(out, PLANNER_REQ_REJECTED, "unknown node %.*s", REQ_ID(rq));
		return 0;
	}
	/* add and weight take an optional / a required weight in 1..1000. */
	if ((rq->op == PLANNER_OP_WEIGHT &&
	     (rq->weight < 1 || rq->weight > MAP_WEIGHT_MAX)) ||
	    (rq->op == PLANNER_OP_ADD && rq->weight > MAP_WEIGHT_MAX)) {
		say(out, PLANNER_REQ_REJECTED,
		    "weight %u out of range 1..%u", rq->weight,
		    (unsigned)MAP_WEIGHT_MAX);
		return 0;
	}

	rc = plan_init(&pl, in->map, 1);
	if (rc < 0)
		return rc;
	mn = plan_find(&pl, rq->id);
	mb = find_member(in, rq->id);
	plan_reason(&pl, "%s %s", planner_op_name(rq->op), rq->id);

	switch (rq->op) {
	case PLANNER_OP_ADD:
		if (mn == NULL && (mb == NULL || !member_usable(mb))) {
			say(out, PLANNER_REQ_REJECTED, "unknown node %s",
			    rq->id);
			goto out;
		}
		if (mn != NULL && mn->state == MAP_NODE_ACTIVE) {
			say(out, PLANNER_REQ_DONE, "no change");
			goto out;
		}
		if (mn == NULL) {
			plan_append(&pl, mb->id, mb->addr,
				    rq->weight ? rq->weight : mb->weight);
		} else {
			/* A standby node keeps the weight the operator gave
			 * it, and takes the address it registered with now. */
			mn->state = MAP_NODE_ACTIVE;
			if (rq->weight)
				mn->weight = rq->weight;
			if (mb != NULL && member_usable(mb))
				snprintf(mn->addr, sizeof(mn->addr), "%s",
					 mb->addr);
		}
		break;
	case PLANNER_OP_REMOVE:
	case PLANNER_OP_DRAIN:
		if (mn == NULL) {
			say(out, PLANNER_REQ_REJECTED, "unknown node %s",
			    rq->id);
			goto out;
		}
		if (mn->state == MAP_NODE_STANDBY) {
			say(out, PLANNER_REQ_DONE, "already standby");
			goto out;
		}
		if (count_active(&pl) <= 1) {
			say(out, PLANNER_REQ_REJECTED,
			    "cannot %s the last active node",
			    planner_op_name(rq->op));
			goto out;
		}
		mn->state = MAP_NODE_STANDBY;
		/* remove: the node's data is given up, nothing streams. */
		moving = rq->op == PLANNER_OP_DRAIN;
		break;
	case PLANNER_OP_WEIGHT:
		if (mn == NULL) {
			say(out, PLANNER_REQ_REJECTED, "unknown node %s",
			    rq->id);
			goto out;
		}
		mn->weight = rq->weight;
		/* A standby node's weight is only remembered for its next
		 * add: the ring does not change, so no migration. */
		moving = mn->state == MAP_NODE_ACTIVE;
		break;
	default:
		break;
	}
	rc = publish(p, in, &pl, moving, out);
	if (rc < 0)
		goto out;
	say_published(out, rc);
	rc = 0;
out:
	plan_fini(&pl);
	return rc;
}

int planner_step(struct planner *p, const struct planner_input *in,
		 struct planner_output *out)
{
	struct plan pl;
	bool moving;
	int rc;

	if (out == NULL)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (p == NULL || in == NULL ||
	    (in->nmembers > 0 && in->members == NULL) ||
	    (in->nsources > 0 && in->sources == NULL))
		return -EINVAL;

	track_absent(p, in);
	if (in->map == NULL)
		return plan_first(in, out);
	if (in->map->migration != 0)
		return plan_in_flight(p, in, out);
	if (in->request != NULL)
		return plan_request(p, in, out);

	rc = plan_membership(p, in, &pl, &moving);
	if (rc < 0)
		return rc;
	rc = publish(p, in, &pl, moving, out);
	plan_fini(&pl);
	return rc < 0 ? rc : 0;
}
