/*
 * replication/hotkeys.c - the per-thread Space-Saving summary and the
 * node's table of decayed rates (see hotkeys.h).
 *
 * Design note
 * -----------
 * hot_sketch. The request path must stay a few instructions for the
 * requests that are not sampled: a countdown is decremented and, while it
 * is not 0, only the request counter is bumped. The fields that touches
 * (countdown, requests) come first in the struct, on one cache line.
 * 'requests' and 'skipped' have one writer (the serving thread) and are
 * read by the draining thread, so they are relaxed atomic loads/stores: a
 * plain increment on x86, and TSan sees no race. The drainer never writes
 * them; it remembers what it reported last ('*_seen', under the mutex) and
 * reports the difference, so no increment can be lost to a reset.
 *
 * The summary (entries, counts, index) is guarded by 'lock'. The serving
 * thread only try-locks it: a sample that finds it held is dropped and
 * counted in 'skipped' (the drain holds it for a copy and a sort of at most
 * 'capacity' entries, microseconds once per interval).
 *
 * Space-Saving keeps 'capacity' counters. A key is found through an
 * open-addressed index (power-of-two slots >= 2 * capacity, linear
 * probing) of entry numbers, matched on hash AND key bytes: two keys that
 * share a 64-bit hash are two entries that sit in the same probe run. A
 * miss on a full summary replaces the entry with the smallest count; its
 * index slot is removed by backward-shift deletion (no tombstones, so
 * probe runs never grow with age).
 *
 * Finding the minimum is a scan of the compact 'counts' array, made short
 * by one invariant: counts only grow between drains, so the smallest count
 * never decreases, and 'min_count' (the smallest count seen at the last
 * scan) is <= every live count. A scan that meets an entry whose count is
 * <= min_count has found a minimum and stops there. It starts where the
 * last one stopped, so with a skewed stream, where many entries share the
 * minimum, it usually stops after a few entries.
 *
 * Reads and writes are counted apart per entry ('reads', 'writes': what
 * the entry saw since it entered); 'count' is the Space-Saving counter,
 * reads + writes + the count it inherited ('error'). The drain reports
 * 'count' (an estimate; it may overstate a key by at most its error),
 * split between reads and writes in proportion to what the entry saw, and
 * multiplied by 'sample'.
 *
 * hot_table. One thread. An array of keys with an open-addressed index
 * (hash + bytes) that is rebuilt whenever the array grows past half of
 * it or is compacted by a tick. Invariant: entries [0, nranked) are the
 * keys that went through the last tick, sorted by reads + writes
 * descending; entries [nranked, n) are keys first seen since (no rate
 * yet), so hot_table_top is a copy of a prefix.
 */
#include "replication/hotkeys.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define HOT_SKETCH_CAPACITY_MAX 4096u
#define HOT_SAMPLE_MAX 65536u
#define HOT_TABLE_CAPACITY_MAX 65536u

/* Fibonacci hashing: the index slot of a hash. cache_hash() is already
 * well spread; the multiply only guards against a caller whose low bits
 * are not. */
static inline uint32_t hot_home(uint64_t hash, unsigned shift)
{
	return (uint32_t)((hash * 0x9e3779b97f4a7c15ull) >> shift);
}

/* ---- hot_sketch -------------------------------------------------------- */

struct hot_entry {
	uint64_t hash;
	uint64_t reads;                 /* sampled reads since it entered */
	uint64_t writes;                /* sampled writes since it entered */
	uint64_t error;                 /* count inherited on entering */
	uint8_t nkey;
	char key[CACHE_KEY_MAX];
};

struct hot_sketch {
	/* The request path: owning serving thread only. */
	uint32_t countdown;             /* samples when it reaches 0 */
	uint32_t sample;
	uint64_t requests;              /* relaxed atomic, single writer */
	uint64_t skipped;               /* relaxed atomic, single writer */

	/* Everything below: under 'lock'. */
	pthread_mutex_t lock;
	uint32_t capacity;
	uint32_t used;                  /* entries [0, used) are live */
	uint32_t mask;                  /* index slots - 1 */
	unsigned shift;                 /* 64 - log2(index slots) */
	uint32_t scan_pos;              /* where the next min scan starts */
	uint64_t min_count;             /* <= every live count (see above) */
	uint64_t *counts;               /* [capacity]: Space-Saving counters */
	struct hot_entry *entries;      /* [capacity] */
	uint32_t *index;                /* [mask + 1]: entry + 1, 0 = empty */
	struct hot_order *order;        /* [capacity]: drain's sort space */
	uint64_t requests_seen;         /* 'requests' at the last drain */
	uint64_t skipped_seen;
};

struct hot_order {
	uint64_t count;
	uint64_t hash;
	uint32_t entry;
};

static inline uint64_t relaxed_load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void relaxed_bump(uint64_t *p)
{
	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
}

struct hot_sketch *hot_sketch_create(unsigned capacity, unsigned sample)
{
	struct hot_sketch *s;
	uint32_t slots = 1;
	unsigned bits = 0;

	if (capacity < 1 || capacity > HOT_SKETCH_CAPACITY_MAX ||
	    sample < 1 || sample > HOT_SAMPLE_MAX) {
		errno = EINVAL;
		return NULL;
	}
	while (slots < 2 * capacity) {
		slots <<= 1;
		bits++;
	}
	if (bits == 0) {                 /* one slot would leave no empty one */
		slots = 2;
		bits = 1;
	}
	/* Cache-line aligned and sized: the sketches of two serving threads
	 * never share the line their request counters live on. */
	s = aligned_alloc(64, (sizeof(*s) + 63) & ~(size_t)63);
	if (s == NULL)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->countdown = sample;
	s->sample = sample;
	s->capacity = capacity;
	s->mask = slots - 1;
	s->shift = 64 - bits;
	s->counts = calloc(capacity, sizeof(*s->counts));
	s->entries = calloc(capacity, sizeof(*s->entries));
	s->index = calloc(slots, sizeof(*s->index));
	s->order = calloc(capacity, sizeof(*s->order));
	if (s->counts == NULL || s->entries == NULL || s->index == NULL ||
	    s->order == NULL)
		goto fail;
	if (pthread_mutex_init(&s->lock, NULL) != 0)
		goto fail;
	return s;
fail:
	free(s->counts);
	free(s->entries);
	free(s->index);
	free(s->order);
	free(s);
	errno = ENOMEM;
	return NULL;
}

void hot_sketch_destroy(struct hot_sketch **sp)
{
	struct hot_sketch *s;

	if (sp == NULL || *sp == NULL)
		return;
	s = *sp;
	pthread_mutex_destroy(&s->lock);
	free(s->counts);
	free(s->entries);
	free(s->index);
	free(s->order);
	free(s);
	*sp = NULL;
}

/* The index slot that holds entry 'e' (which is indexed). Caller holds
 * the lock. */
static uint32_t do_slot_of(const struct hot_sketch *s, uint32_t e)
{
	uint32_t i = hot_home(s->entries[e].hash, s->shift);

	while (s->index[i] != e + 1)
		i = (i + 1) & s->mask;
	return i;
}

/* Backward-shift deletion of index slot i (Knuth 6.4, algorithm R): every
 * entry later in the run that may move back to the hole does, so a lookup
 * never meets an empty slot before its key. Caller holds the lock. */
static void do_index_remove(struct hot_sketch *s, uint32_t i)
{
	uint32_t j = i;

	for (;;) {
		uint32_t home;

		j = (j + 1) & s->mask;
		if (s->index[j] == 0)
			break;
		home = hot_home(s->entries[s->index[j] - 1].hash, s->shift);
		/* The entry at j may fill the hole at i unless its home lies
		 * cyclically in (i, j]. */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			s->index[i] = s->index[j];
			i = j;
		}
	}
	s->index[i] = 0;
}

/* An entry with the smallest count (see the design note on min_count).
 * Caller holds the lock; the summary is full. */
static uint32_t do_find_min(struct hot_sketch *s)
{
	uint32_t pos = s->scan_pos, best_i = pos;
	uint64_t best = UINT64_MAX;

	for (uint32_t n = 0; n < s->capacity; n++) {
		uint32_t i = pos;
		uint64_t c = s->counts[i];

		if (++pos == s->capacity)
			pos = 0;
		if (c <= s->min_count) {
			best = c;
			best_i = i;
			break;
		}
		if (c < best) {
			best = c;
			best_i = i;
		}
	}
	s->min_count = best;
	s->scan_pos = pos;
	return best_i;
}

/* One sampled request. Caller holds the lock. */
static void do_sketch_add(struct hot_sketch *s, const char *key, size_t nkey,
			  uint64_t hash, bool write)
{
	uint32_t i = hot_home(hash, s->shift);
	uint32_t e;
	struct hot_entry *en;

	for (;;) {
		uint32_t v = s->index[i];

		if (v == 0)
			break;
		en = &s->entries[v - 1];
		if (en->hash == hash && en->nkey == nkey &&
		    memcmp(en->key, key, nkey) == 0) {
			s->counts[v - 1]++;
			if (write)
				en->writes++;
			else
				en->reads++;
			return;
		}
		i = (i + 1) & s->mask;
	}
	/* A miss; slot i is the empty end of the key's probe run. */
	if (s->used < s->capacity) {
		e = s->used++;
		s->counts[e] = 1;
		s->entries[e].error = 0;
	} else {
		e = do_find_min(s);
		do_index_remove(s, do_slot_of(s, e));
		s->entries[e].error = s->counts[e];
		s->counts[e]++;
		/* The removal may have moved the run: look for the empty
		 * slot again. */
		i = hot_home(hash, s->shift);
		while (s->index[i] != 0)
			i = (i + 1) & s->mask;
	}
	en = &s->entries[e];
	en->hash = hash;
	en->reads = write ? 0 : 1;
	en->writes = write ? 1 : 0;
	en->nkey = (uint8_t)nkey;
	memcpy(en->key, key, nkey);
	s->index[i] = e + 1;
}

/* The sampled request, out of line: inlined, its register saves would
 * be paid by every call. */
static __attribute__((noinline)) void
sketch_sampled(struct hot_sketch *s, const char *key, size_t nkey,
	       uint64_t hash, bool write)
{
	s->countdown = s->sample;
	relaxed_bump(&s->requests);
	if (nkey == 0 || nkey > CACHE_KEY_MAX)
		return;                 /* not a key a cache can hold */
	if (pthread_mutex_trylock(&s->lock) != 0) {
		relaxed_bump(&s->skipped);
		return;
	}
	do_sketch_add(s, key, nkey, hash, write);
	pthread_mutex_unlock(&s->lock);
}

void hot_sketch_count(struct hot_sketch *s, const char *key, size_t nkey,
		      uint64_t hash, bool write)
{
	if (__builtin_expect(--s->countdown != 0, 1)) {
		relaxed_bump(&s->requests);
		return;
	}
	sketch_sampled(s, key, nkey, hash, write);
}

static int order_cmp(const void *a, const void *b)
{
	const struct hot_order *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->entry < y->entry ? -1 : x->entry > y->entry;
}

unsigned hot_sketch_drain(struct hot_sketch *s, struct hot_count *out,
			  unsigned max, uint64_t *requests, uint64_t *skipped)
{
	uint64_t req, skp;
	unsigned n;

	if (s == NULL) {
		if (requests != NULL)
			*requests = 0;
		if (skipped != NULL)
			*skipped = 0;
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	req = relaxed_load(&s->requests);
	skp = relaxed_load(&s->skipped);
	if (requests != NULL)
		*requests = req - s->requests_seen;
	if (skipped != NULL)
		*skipped = skp - s->skipped_seen;
	s->requests_seen = req;
	s->skipped_seen = skp;

	for (uint32_t e = 0; e < s->used; e++) {
		s->order[e].count = s->counts[e];
		s->order[e].hash = s->entries[e].hash;
		s->order[e].entry = e;
	}
	qsort(s->order, s->used, sizeof(*s->order), order_cmp);
	n = out == NULL ? 0 : (max < s->used ? max : s->used);
	for (unsigned k = 0; k < n; k++) {
		const struct hot_entry *en = &s->entries[s->order[k].entry];
		uint64_t seen = en->reads + en->writes;   /* >= 1 */
		/* The inherited count, split like what the entry saw. */
		uint64_t err_r = (uint64_t)((double)en->error *
					    ((double)en->reads / (double)seen));

		if (err_r > en->error)
			err_r = en->error;
		out[k].hash = en->hash;
		out[k].reads = (en->reads + err_r) * s->sample;
		out[k].writes = (en->writes + en->error - err_r) * s->sample;
		out[k].nkey = en->nkey;
		memcpy(out[k].key, en->key, en->nkey);
	}

	s->used = 0;
	s->min_count = 0;
	s->scan_pos = 0;
	memset(s->index, 0, ((size_t)s->mask + 1) * sizeof(*s->index));
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ---- hot_table --------------------------------------------------------- */

struct hot_tentry {
	uint64_t hash;
	double reads;                   /* decayed rates, per second */
	double writes;
	uint64_t cur_reads;             /* this interval's counts */
	uint64_t cur_writes;
	uint8_t nkey;
	char key[CACHE_KEY_MAX];
};

struct hot_table {
	uint32_t capacity;
	double decay;
	struct hot_tentry *e;           /* [cap_alloc] */
	uint32_t n;                     /* entries [0, n) live */
	uint32_t nranked;               /* [0, nranked): sorted at last tick */
	uint32_t cap_alloc;
	uint32_t *index;                /* entry + 1, 0 = empty */
	uint32_t mask;                  /* index slots - 1; n <= slots / 2 */
	unsigned shift;
};

/* Indexes entries [0, n) in the (all empty) index. */
static void table_fill_index(struct hot_table *t)
{
	for (uint32_t k = 0; k < t->n; k++) {
		uint32_t i = hot_home(t->e[k].hash, t->shift);

		while (t->index[i] != 0)
			i = (i + 1) & t->mask;
		t->index[i] = k + 1;
	}
}

/* Rebuilds the index for 'slots' (a power of two, >= 2 * n). */
static int table_reindex(struct hot_table *t, uint32_t slots)
{
	uint32_t *idx = calloc(slots, sizeof(*idx));
	unsigned bits = 0;

	if (idx == NULL)
		return -ENOMEM;
	while ((1u << bits) < slots)
		bits++;
	free(t->index);
	t->index = idx;
	t->mask = slots - 1;
	t->shift = 64 - bits;
	table_fill_index(t);
	return 0;
}

struct hot_table *hot_table_create(unsigned capacity, double decay)
{
	struct hot_table *t;

	if (capacity < 1 || capacity > HOT_TABLE_CAPACITY_MAX ||
	    !(decay >= 0.0 && decay < 1.0)) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->capacity = capacity;
	t->decay = decay;
	t->cap_alloc = 64;
	t->e = malloc(t->cap_alloc * sizeof(*t->e));
	if (t->e == NULL || table_reindex(t, 2 * t->cap_alloc) != 0) {
		free(t->e);
		free(t->index);
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

void hot_table_destroy(struct hot_table **tp)
{
	if (tp == NULL || *tp == NULL)
		return;
	free((*tp)->e);
	free((*tp)->index);
	free(*tp);
	*tp = NULL;
}

/* Room for one more entry, the index kept at most half full. */
static int table_reserve(struct hot_table *t)
{
	if (t->n == t->cap_alloc) {
		struct hot_tentry *ne;
		uint32_t nc = t->cap_alloc * 2;

		if (nc < t->cap_alloc)
			return -ENOMEM;
		ne = realloc(t->e, (size_t)nc * sizeof(*ne));
		if (ne == NULL)
			return -ENOMEM;
		t->e = ne;
		t->cap_alloc = nc;
	}
	if ((t->n + 1) * 2 > t->mask + 1)
		return table_reindex(t, (t->mask + 1) * 2);
	return 0;
}

int hot_table_add(struct hot_table *t, const struct hot_count *c, unsigned n)
{
	if (t == NULL || (c == NULL && n > 0))
		return -EINVAL;
	for (unsigned k = 0; k < n; k++) {
		const struct hot_count *hc = &c[k];
		struct hot_tentry *en;
		uint32_t i;
		int rc;

		if (hc->nkey == 0 || hc->nkey > CACHE_KEY_MAX)
			continue;       /* not a key: nothing to merge */
		i = hot_home(hc->hash, t->shift);
		for (;;) {
			uint32_t v = t->index[i];

			if (v == 0)
				break;
			en = &t->e[v - 1];
			if (en->hash == hc->hash && en->nkey == hc->nkey &&
			    memcmp(en->key, hc->key, hc->nkey) == 0)
				break;
			i = (i + 1) & t->mask;
		}
		if (t->index[i] != 0) {
			en = &t->e[t->index[i] - 1];
			en->cur_reads += hc->reads;
			en->cur_writes += hc->writes;
			continue;
		}
		rc = table_reserve(t);
		if (rc != 0)
			return rc;
		/* A reindex moves slots: find the empty end of the run again. */
		i = hot_home(hc->hash, t->shift);
		while (t->index[i] != 0)
			i = (i + 1) & t->mask;
		en = &t->e[t->n];
		en->hash = hc->hash;
		en->reads = 0.0;
		en->writes = 0.0;
		en->cur_reads = hc->reads;
		en->cur_writes = hc->writes;
		en->nkey = hc->nkey;
		memcpy(en->key, hc->key, hc->nkey);
		t->index[i] = ++t->n;
	}
	return 0;
}

static int tentry_cmp(const void *a, const void *b)
{
	const struct hot_tentry *x = a, *y = b;
	double sx = x->reads + x->writes, sy = y->reads + y->writes;
	int kc;

	if (sx != sy)
		return sx > sy ? -1 : 1;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	/* Same hash, different bytes: any fixed order. */
	kc = memcmp(x->key, y->key, x->nkey < y->nkey ? x->nkey : y->nkey);
	if (kc != 0)
		return kc;
	return (int)x->nkey - (int)y->nkey;
}

void hot_table_tick(struct hot_table *t, double interval_s,
		    double forget_below)
{
	uint32_t kept = 0, slots = 2;

	if (t == NULL || !(interval_s > 0.0) || isinf(interval_s))
		return;                 /* counts wait for a sane interval */
	for (uint32_t k = 0; k < t->n; k++) {
		struct hot_tentry *en = &t->e[k];

		en->reads = t->decay * en->reads + (1.0 - t->decay) *
			((double)en->cur_reads / interval_s);
		en->writes = t->decay * en->writes + (1.0 - t->decay) *
			((double)en->cur_writes / interval_s);
		en->cur_reads = 0;
		en->cur_writes = 0;
		if (en->reads + en->writes < forget_below)
			continue;
		if (kept != k)
			t->e[kept] = *en;
		kept++;
	}
	qsort(t->e, kept, sizeof(*t->e), tentry_cmp);
	if (kept > t->capacity)
		kept = t->capacity;
	t->n = kept;
	t->nranked = kept;
	/* A fresh index for what is left (never larger than needed, so a
	 * burst of keys does not leave a big one behind). Keep the old
	 * one if there is no memory: it is then only too large, with
	 * stale slots, so clear and refill it. */
	while (slots < 2 * kept || slots < 128)
		slots <<= 1;
	if (table_reindex(t, slots) != 0) {
		memset(t->index, 0, ((size_t)t->mask + 1) * sizeof(*t->index));
		table_fill_index(t);
	}
}

unsigned hot_table_top(const struct hot_table *t, struct hot_rate *out,
		       unsigned max)
{
	unsigned n;

	if (t == NULL || out == NULL)
		return 0;
	n = max < t->nranked ? max : t->nranked;
	for (unsigned k = 0; k < n; k++) {
		const struct hot_tentry *en = &t->e[k];

		out[k].hash = en->hash;
		out[k].reads = en->reads;
		out[k].writes = en->writes;
		out[k].nkey = en->nkey;
		memcpy(out[k].key, en->key, en->nkey);
	}
	return n;
}
