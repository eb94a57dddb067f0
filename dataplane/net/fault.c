/*
 * dataplane/net/fault.c - the seeded fault injector (fault.h).
 *
 * Design note.
 *
 * One roll of a splitmix64 generator per packet, split into ranges:
 * [0, drop) drops, then dup, reorder, delay, the rest passes. So each rate
 * is exactly its configured share of the packets seen, the percentages may
 * sum to at most 100, and a seed gives the same decisions for the same
 * sequence of bursts (the clock only decides when held packets come out).
 *
 * Ownership: every packet handed in is, by the end of fault_apply, either in
 * the output array, freed through ops->free (dropped), or held; every held
 * packet leaves later through the output or through fault_destroy's free.
 * A duplicate is a copy (ops->copy), never the same handle twice.
 *
 * Held packets (delay: due at now + delay_us; reorder: held until behind
 * the next packet that goes out, at the latest the next call) live in an
 * array of max_held slots; they come out in due order, ties in arrival
 * order. When the array is full a packet that should be held goes out at
 * once (released early rather than lost); when the output array has no
 * room, due packets wait for the next call. Off (no rates set), fault_apply
 * is one branch.
 */
#include "dataplane/net/fault.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct fault_held {
	void *pkt;
	uint64_t due_us;
	uint64_t seq;           /* arrival order, for ties */
	uint64_t not_before;    /* reorder holds: first call that may send it */
};

struct fault {
	struct fault_config cfg;
	struct fault_ops ops;
	void *arg;
	bool active;
	uint64_t rng;
	uint64_t seq;
	uint64_t calls;         /* fault_apply calls so far */
	struct fault_held *held;
	unsigned max_held;
	unsigned nheld;
	void **in;              /* scratch copy of the burst */
	unsigned in_cap;
	struct fault_counters c;
};

/* ---- configuration ------------------------------------------------------ */

static int parse_u64(const char *s, const char *end, uint64_t max,
		     uint64_t *out)
{
	uint64_t v = 0;

	if (s == end)
		return -EINVAL;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

static int parse_item(struct fault_config *cfg, const char *s, const char *end)
{
	const char *eq = memchr(s, '=', (size_t)(end - s));
	size_t klen;
	uint64_t v;

	if (!eq)
		return -EINVAL;
	klen = (size_t)(eq - s);
	eq++;
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(s, k, klen) == 0)
	if (KEY("drop") || KEY("dup") || KEY("reorder")) {
		if (parse_u64(eq, end, 100, &v))
			return -EINVAL;
		if (KEY("drop"))
			cfg->drop_pct = (unsigned)v;
		else if (KEY("dup"))
			cfg->dup_pct = (unsigned)v;
		else
			cfg->reorder_pct = (unsigned)v;
		return 0;
	}
	if (KEY("delay")) {
		const char *colon = memchr(eq, ':', (size_t)(end - eq));
		uint64_t us;

		if (!colon || parse_u64(eq, colon, 100, &v) ||
		    parse_u64(colon + 1, end, UINT32_MAX, &us))
			return -EINVAL;
		cfg->delay_pct = (unsigned)v;
		cfg->delay_us = (uint32_t)us;
		return 0;
	}
	if (KEY("seed"))
		return parse_u64(eq, end, UINT64_MAX, &cfg->seed);
#undef KEY
	return -EINVAL;
}

int fault_config_parse(struct fault_config *cfg, const char *spec)
{
	struct fault_config c = { 0 };
	const char *s = spec;

	if (!cfg)
		return -EINVAL;
	if (s && *s) {
		for (;;) {
			const char *end = strchr(s, ',');

			if (!end)
				end = s + strlen(s);
			if (parse_item(&c, s, end))
				return -EINVAL;
			if (!*end)
				break;
			s = end + 1;
		}
	}
	if (c.drop_pct + c.dup_pct + c.reorder_pct + c.delay_pct > 100)
		return -EINVAL;
	*cfg = c;
	return 0;
}

bool fault_config_active(const struct fault_config *cfg)
{
	return cfg && (cfg->drop_pct || cfg->dup_pct || cfg->reorder_pct ||
		       cfg->delay_pct);
}

/* ---- lifecycle ---------------------------------------------------------- */

struct fault *fault_create(const struct fault_config *cfg,
			   const struct fault_ops *ops, void *arg,
			   unsigned max_held)
{
	struct fault *f;

	if (!cfg || !ops || !ops->free || (cfg->dup_pct && !ops->copy) ||
	    cfg->drop_pct > 100 || cfg->dup_pct > 100 ||
	    cfg->reorder_pct > 100 || cfg->delay_pct > 100 ||
	    cfg->drop_pct + cfg->dup_pct + cfg->reorder_pct + cfg->delay_pct > 100)
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->cfg = *cfg;
	f->ops = *ops;
	f->arg = arg;
	f->active = fault_config_active(cfg);
	f->rng = cfg->seed;
	f->max_held = max_held;
	if (max_held) {
		f->held = calloc(max_held, sizeof(*f->held));
		if (!f->held) {
			free(f);
			return NULL;
		}
	}
	return f;
}

void fault_destroy(struct fault **fp)
{
	struct fault *f;

	if (!fp || !*fp)
		return;
	f = *fp;
	for (unsigned i = 0; i < f->nheld; i++)
		f->ops.free(f->arg, f->held[i].pkt);
	free(f->held);
	free(f->in);
	free(f);
	*fp = NULL;
}

const struct fault_counters *fault_counters(const struct fault *f)
{
	return &f->c;
}

/* ---- the burst ---------------------------------------------------------- */

/* splitmix64 (Steele, Lea, Flood 2014): tiny state, good enough rolls */
static uint64_t rng_next(struct fault *f)
{
	uint64_t z = (f->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static bool hold(struct fault *f, void *pkt, uint64_t due, bool next_call)
{
	if (f->nheld == f->max_held)
		return false;
	f->held[f->nheld].pkt = pkt;
	f->held[f->nheld].due_us = due;
	f->held[f->nheld].seq = f->seq++;
	f->held[f->nheld].not_before = f->calls + (next_call ? 1 : 0);
	f->nheld++;
	return true;
}

/* Index of the held packet that leaves first, or -1 if none is due. */
static int held_next_due(const struct fault *f, uint64_t now)
{
	int best = -1;

	for (unsigned i = 0; i < f->nheld; i++) {
		const struct fault_held *h = &f->held[i];

		if (h->due_us > now || h->not_before > f->calls)
			continue;
		if (best < 0 || h->due_us < f->held[best].due_us ||
		    (h->due_us == f->held[best].due_us &&
		     h->seq < f->held[best].seq))
			best = (int)i;
	}
	return best;
}

unsigned fault_apply(struct fault *f, void **pkts, unsigned n, unsigned cap,
		     uint64_t now_us)
{
	const struct fault_config *c = &f->cfg;
	void *reorder = NULL;   /* goes out right after the next packet */
	unsigned w = 0;
	int i;

	if (!f->active && f->nheld == 0)
		return n;
	f->calls++;
	if (cap < n)
		cap = n;
	if (n > f->in_cap) {
		void **in = realloc(f->in, n * sizeof(*in));

		if (!in)
			return n;       /* no faults this burst, nothing lost */
		f->in = in;
		f->in_cap = n;
	}
	if (n)
		memcpy(f->in, pkts, n * sizeof(*pkts));

	for (unsigned k = 0; k < n; k++) {
		void *p = f->in[k];
		unsigned r = (unsigned)(rng_next(f) % 100);
		/* slots still owed to the packets after this one */
		unsigned owed = n - k - 1 + (reorder != NULL);

		if (r < c->drop_pct) {
			f->ops.free(f->arg, p);
			f->c.dropped++;
			continue;
		}
		r -= c->drop_pct;
		if (r < c->dup_pct) {
			pkts[w++] = p;
			if (w + 1 + owed <= cap) {
				void *d = f->ops.copy(f->arg, p);

				if (d) {
					pkts[w++] = d;
					f->c.duplicated++;
				}
			}
		} else if ((r -= c->dup_pct) < c->reorder_pct && !reorder) {
			reorder = p;
			f->c.reordered++;
			continue;
		} else if (r >= c->reorder_pct &&
			   r - c->reorder_pct < c->delay_pct &&
			   hold(f, p, now_us + c->delay_us, false)) {
			f->c.delayed++;
			continue;
		} else {
			pkts[w++] = p;
		}
		if (reorder) {
			pkts[w++] = reorder;
			reorder = NULL;
		}
	}
	if (reorder && !hold(f, reorder, now_us, true)) {
		pkts[w++] = reorder;    /* nowhere to keep it: out in order */
		f->c.reordered--;
	}

	/* held packets that are due, earliest first, as room allows */
	while (f->nheld && w < cap && (i = held_next_due(f, now_us)) >= 0) {
		pkts[w++] = f->held[i].pkt;
		f->held[i] = f->held[--f->nheld];
	}
	return w;
}
