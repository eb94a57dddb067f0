/*
 * replication/tombstone.c - the FRESH set of a migration (see tombstone.h).
 *
 * Design note
 * -----------
 * A cds_lfht (urcu-qsbr, auto-resize) of small nodes that hold one 64-bit
 * key hash each. The hash is the table's hash too: cache_hash() is already
 * uniformly spread, so a second hash would add nothing.
 *
 * Set semantics: cds_lfht_add_unique returns the node already there when the
 * hash is present, so concurrent adds of one hash leave exactly one node and
 * the loser frees its own (never published) node at once.
 *
 * Clearing swaps in a new, empty table (rcu_xchg_pointer), waits for a grace
 * period, and then frees the old table and its nodes with no reader left
 * on them (table_free: why it takes a helper thread). Deleting node by node
 * in the live table instead would need the clearing thread to be an online
 * reader, and the map watcher that clears is not one. An add that races with a clear may land in the old table and vanish
 * with it; that is fine because a clear happens only when a migration ends,
 * and the FRESH marks of that migration mean nothing after it.
 *
 * TSan: liburcu is not instrumented, so its publication (add), lookup and
 * grace-period edges are marked with cache/tsan.h's annotations. A node is
 * released before it is published and acquired where it is matched or
 * freed; every read-side call releases a grace token after its last node
 * access, which the clear acquires after its grace period.
 *
 * The count is a relaxed atomic kept beside each table
 * (cds_lfht_count_nodes walks the whole table).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <urcu-qsbr.h>
#include <urcu/rculfhash.h>

#include "cache/tsan.h"
#include "replication/tombstone.h"

#define TOMB_TABLE_INIT 1024ul

static char tomb_grace_token;

struct tomb_node {
	struct cds_lfht_node node;
	uint64_t hash;
	struct tomb_node *next_dead;    /* table_free: freed after the table */
};

/* One generation of the set: replaced as a whole by a clear. */
struct tomb_table {
	struct cds_lfht *ht;
	uint64_t count;                 /* atomic: nodes linked */
};

struct tomb_set {
	struct tomb_table *cur;         /* rcu_dereference / rcu_xchg_pointer */
	pthread_mutex_t clear_lock;     /* one clear at a time; never taken by
	                                   a reader (a clear holds it across a
	                                   grace period) */
	uint64_t count;                 /* atomic: entries since the last clear */
};

static int tomb_match(struct cds_lfht_node *node, const void *key)
{
	const struct tomb_node *n =
		caa_container_of(node, struct tomb_node, node);

	cache_tsan_acquire(n);
	return n->hash == *(const uint64_t *)key;
}

static struct tomb_table *table_new(void)
{
	struct tomb_table *tt = calloc(1, sizeof(*tt));

	if (tt == NULL)
		return NULL;
	tt->ht = cds_lfht_new(TOMB_TABLE_INIT, TOMB_TABLE_INIT, 0,
			      CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
	if (tt->ht == NULL) {
		free(tt);
		return NULL;
	}
	return tt;
}

/*
 * Frees a table no reader can reach any more. Its nodes must be unlinked
 * first (cds_lfht_destroy wants it empty), and unlinking makes the table's
 * resize worker shrink it concurrently, freeing bucket nodes after a grace
 * period: the walk is only safe for an online urcu reader. The caller may
 * be anything (online, offline, not a reader), so a short-lived thread of
 * our own does it: registered and online for the walk, offline for
 * cds_lfht_destroy (which waits for a resize in flight, and a resize waits
 * for a grace period). Nodes are freed after the table is gone.
 */
static void *table_free_main(void *arg)
{
	struct tomb_table *tt = arg;
	struct cds_lfht_iter iter;
	struct tomb_node *n, *dead = NULL;

	rcu_register_thread();
	cds_lfht_for_each_entry(tt->ht, &iter, n, node) {
		cache_tsan_acquire(n);
		if (cds_lfht_del(tt->ht, &n->node) == 0) {
			n->next_dead = dead;
			dead = n;
		}
	}
	rcu_thread_offline();
	cds_lfht_destroy(tt->ht, NULL);
	rcu_unregister_thread();
	while (dead != NULL) {
		n = dead;
		dead = n->next_dead;
		free(n);
	}
	free(tt);
	return NULL;
}

/* Waits for table_free_main; an online caller goes offline meanwhile (the
 * helper's grace periods must not wait for it). */
static void table_free(struct tomb_table *tt)
{
	bool online = rcu_read_ongoing();
	pthread_t th;

	if (online)
		rcu_thread_offline();
	if (pthread_create(&th, NULL, table_free_main, tt) == 0)
		pthread_join(th, NULL);
	else
		fprintf(stderr, "tombstone: cannot start a thread to free a "
			"table of %llu entries; leaked\n",
			(unsigned long long)tt->count);
	if (online)
		rcu_thread_online();
}

struct tomb_set *tomb_create(void)
{
	struct tomb_set *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->cur = table_new();
	if (t->cur == NULL) {
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->clear_lock, NULL);
	return t;
}

void tomb_destroy(struct tomb_set **tp)
{
	struct tomb_set *t;

	if (tp == NULL || *tp == NULL)
		return;
	t = *tp;
	*tp = NULL;
	table_free(t->cur);
	pthread_mutex_destroy(&t->clear_lock);
	free(t);
}

/* Caller: registered urcu-qsbr reader, online. */
int tomb_add(struct tomb_set *t, uint64_t hash)
{
	struct tomb_table *tt = rcu_dereference(t->cur);
	struct tomb_node *n = malloc(sizeof(*n));
	struct cds_lfht_node *old;

	cache_tsan_acquire(tt);
	if (n == NULL)
		return -ENOMEM;
	cds_lfht_node_init(&n->node);
	n->hash = hash;
	cache_tsan_release(n);
	old = cds_lfht_add_unique(tt->ht, (unsigned long)hash, tomb_match,
				  &hash, &n->node);
	if (old != &n->node) {
		cache_tsan_release(&tomb_grace_token);
		free(n);        /* present already; ours was never visible */
		return 0;
	}
	__atomic_fetch_add(&tt->count, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&t->count, 1, __ATOMIC_RELAXED);
	cache_tsan_release(&tomb_grace_token);
	return 0;
}

/* Caller: registered urcu-qsbr reader, online. */
bool tomb_contains(struct tomb_set *t, uint64_t hash)
{
	struct tomb_table *tt = rcu_dereference(t->cur);
	struct cds_lfht_iter iter;
	bool found;

	cache_tsan_acquire(tt);
	cds_lfht_lookup(tt->ht, (unsigned long)hash, tomb_match, &hash, &iter);
	found = cds_lfht_iter_get_node(&iter) != NULL;
	cache_tsan_release(&tomb_grace_token);
	return found;
}

/*
 * Any thread: an online reader (for which the grace period it waits for is
 * a quiescent state), an offline one, or one that is not a urcu reader. On
 * no memory for the new table the set is left as it is (and said so): the
 * FRESH marks then outlive their migration (the next migration's stream
 * items for those keys would be refused), which is logged.
 */
void tomb_clear(struct tomb_set *t)
{
	struct tomb_table *fresh = table_new(), *old;

	if (fresh == NULL) {
		fprintf(stderr, "tombstone: no memory to clear the FRESH set\n");
		return;
	}
	pthread_mutex_lock(&t->clear_lock);
	cache_tsan_release(fresh);
	old = rcu_xchg_pointer(&t->cur, fresh);
	__atomic_store_n(&t->count, 0, __ATOMIC_RELAXED);
	synchronize_rcu();
	cache_tsan_acquire(&tomb_grace_token);
	table_free(old);
	pthread_mutex_unlock(&t->clear_lock);
}

uint64_t tomb_count(struct tomb_set *t)
{
	/* Any thread, without a lock: 'stats cluster' asks from a serving
	 * thread, which must never wait for a clear's grace period (it would
	 * wait for itself). Adds racing with a clear may be counted in the
	 * new total; this is a statistic. */
	return __atomic_load_n(&t->count, __ATOMIC_RELAXED);
}
