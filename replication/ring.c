/*
 * replication/ring.c - libmemcached-compatible weighted ketama continuum.
 *
 * Design note
 * -----------
 * The whole point of this ring is that a stock client, given the cluster's
 * server list, sends every key straight to the node that owns it. So it
 * reproduces, bit for bit, libmemcached's update_continuum() and dispatch
 * (libmemcached 1.0.x/1.1.x, src/libmemcached/hosts.cc and hash.cc) in its
 * WEIGHTED ketama mode:
 *
 *  - Points per server. With S servers of total weight W, server i gets
 *        floor(pct * 160 / 4 * S + 1e-10) * 4,   pct = w_i / W
 *    evaluated left to right in single precision (float) exactly as
 *    libmemcached does. With equal weights that is 160, except where the
 *    float rounding lands just under 40 (then 156, e.g. 25 or 50 servers):
 *    we must copy the rounding, not the intent. A server whose share is
 *    below 1/(40 S) gets no points at all (weights 1 and 1000: 0 and 316).
 *  - Point names. For j = 0 .. points/4 - 1 the name is "host:port-j", or
 *    "host-j" when port is 11211 (MEMCACHED_DEFAULT_PORT). host is the name
 *    exactly as the client was given it (no resolution; IPv6 without the
 *    brackets, as clients store it).
 *  - Point values. MD5(name) gives four points: digest bytes 4a..4a+3,
 *    little-endian, for a = 0..3.
 *  - Order. Points sorted by value, equal values by server index (1.1.x
 *    compares the index explicitly; 1.0.x compares values only, and glibc's
 *    qsort, a merge sort for arrays this small, keeps the generation order,
 *    which is server order, so both agree).
 *  - Key hash. MEMCACHED_HASH_MD5: the first four digest bytes of MD5(key),
 *    little-endian. Owner: the first point >= hash, wrapping to point 0.
 *
 * Which client setting this matches (checked against the libmemcached 1.1.4
 * that Debian 12's pylibmc 1.6.3 uses, see tests/cluster/test_ketama_compat.py
 * and the vectors in tests/replication/test_ring.c):
 *  - pylibmc behaviors {"ketama_weighted": True} (MEMCACHED_BEHAVIOR_KETAMA_
 *    WEIGHTED): MD5 key hash, MD5 points, 160 weighted points. This is us,
 *    with or without weights; weights come from "host:port:weight" specs.
 *  - {"ketama": True} alone is NOT the same ring, not even with all weights
 *    1: it selects unweighted ketama, 100 points per server, one point per
 *    digest, and keeps the default one-at-a-time key hash. pylibmc adds its
 *    servers before it sets behaviors, so "ketama" also ignores weights.
 *
 * Build cost is O(P log P) for P points (~160 per server) and happens only
 * when a map is published. Lookup is a branch-free binary search over a
 * sorted uint32_t array (kept apart from the owner array so the search
 * touches 4 bytes a probe) and allocates nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/md5.h>

#include "replication/ring.h"

#define RING_DEFAULT_PORT 11211u   /* libmemcached's MEMCACHED_DEFAULT_PORT */
#define RING_POINTS_PER_HASH 4u    /* points taken from one MD5 digest */
#define RING_NAME_MAX 320          /* host + ":" + port + "-" + index */

struct ring {
	unsigned nservers;
	unsigned npoints;
	uint32_t *values;              /* npoints, ascending */
	struct ring_point *points;     /* npoints, same order as values */
	double *share;                 /* nservers */
};

/* MD5 digest of buf, as libhashkit's md5_signature computes it. */
static void ring_md5(const void *buf, size_t len, uint8_t digest[MD5_DIGEST_SIZE])
{
	struct md5_ctx ctx;

	md5_init(&ctx);
	md5_update(&ctx, len, buf);
	md5_digest(&ctx, MD5_DIGEST_SIZE, digest);
}

static uint32_t ring_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

uint32_t ring_hash(const char *key, size_t nkey)
{
	uint8_t d[MD5_DIGEST_SIZE];

	ring_md5(key, nkey, d);
	return ring_le32(d);
}

int ring_addr_split(const char *addr, char *host, size_t hostlen,
			   unsigned *port)
{
	const char *h = addr, *colon, *hend;
	size_t n;

	if (addr[0] == '[') {
		h = addr + 1;
		hend = strchr(h, ']');
		if (hend == NULL)
			return -EINVAL;
		colon = hend[1] == ':' ? hend + 1 : NULL;
		if (hend[1] != '\0' && colon == NULL)
			return -EINVAL;
	} else {
		colon = strrchr(addr, ':');
		hend = colon != NULL ? colon : addr + strlen(addr);
	}
	n = (size_t)(hend - h);
	if (n == 0 || n >= hostlen)
		return -EINVAL;
	memcpy(host, h, n);
	host[n] = '\0';

	*port = RING_DEFAULT_PORT;
	if (colon != NULL) {
		char *end;
		unsigned long p;

		if (colon[1] < '0' || colon[1] > '9')
			return -EINVAL;
		errno = 0;
		p = strtoul(colon + 1, &end, 10);
		if (errno != 0 || *end != '\0' || p == 0 || p > 65535)
			return -EINVAL;
		*port = (unsigned)p;
	}
	return 0;
}

/*
 * libmemcached's per-server point count in weighted mode. The float
 * temporaries are volatile so the compiler can neither keep them in wider
 * precision nor fuse the multiply and add into an FMA: libmemcached's
 * (baseline x86-64) build rounds after every operation, and so must we.
 */
static unsigned ring_server_points(uint32_t weight, uint64_t total_weight,
				   unsigned nservers)
{
	volatile float pct, x;

	pct = (float)weight / (float)total_weight;
	x = pct * (float)RING_POINTS_PER_SERVER;
	x = x / 4.0f;
	x = x * (float)nservers;
	x = x + 0.0000000001f;
	/* x >= 0 and far below 2^32: truncation is libmemcached's floor(). */
	return (unsigned)x * RING_POINTS_PER_HASH;
}

/* Value order, ties by server index: libmemcached's continuum_item_cmp. */
static int ring_point_cmp(const void *a, const void *b)
{
	const struct ring_point *x = a, *y = b;

	if (x->value != y->value)
		return x->value < y->value ? -1 : 1;
	if (x->server != y->server)
		return x->server < y->server ? -1 : 1;
	return 0;
}

struct ring *ring_build(const struct ring_server *servers, unsigned n)
{
	struct ring *r;
	uint64_t total_weight = 0;
	unsigned *counts = NULL;
	size_t total_points = 0;
	unsigned i, k = 0;

	if (n > 0 && servers == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (servers[i].addr == NULL || servers[i].weight == 0)
			return NULL;
		total_weight += servers[i].weight;
	}

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->nservers = n;
	if (n == 0)
		return r;

	counts = calloc(n, sizeof(*counts));
	r->share = calloc(n, sizeof(*r->share));
	if (counts == NULL || r->share == NULL)
		goto fail;
	for (i = 0; i < n; i++) {
		counts[i] = ring_server_points(servers[i].weight, total_weight, n);
		total_points += counts[i];
	}
	if (total_points > UINT32_MAX)
		goto fail;
	r->points = calloc(total_points ? total_points : 1, sizeof(*r->points));
	r->values = calloc(total_points ? total_points : 1, sizeof(*r->values));
	if (r->points == NULL || r->values == NULL)
		goto fail;

	for (i = 0; i < n; i++) {
		char host[RING_NAME_MAX], name[RING_NAME_MAX];
		unsigned port, j;

		if (ring_addr_split(servers[i].addr, host, sizeof(host) - 16,
				    &port) != 0)
			goto fail;
		for (j = 0; j < counts[i] / RING_POINTS_PER_HASH; j++) {
			uint8_t d[MD5_DIGEST_SIZE];
			unsigned a;
			int len;

			if (port == RING_DEFAULT_PORT)
				len = snprintf(name, sizeof(name), "%s-%u", host, j);
			else
				len = snprintf(name, sizeof(name), "%s:%u-%u",
					       host, port, j);
			if (len < 0 || (size_t)len >= sizeof(name))
				goto fail;
			ring_md5(name, (size_t)len, d);
			for (a = 0; a < RING_POINTS_PER_HASH; a++) {
				r->points[k].value = ring_le32(d + 4 * a);
				r->points[k].server = i;
				k++;
			}
		}
	}
	r->npoints = k;
	qsort(r->points, r->npoints, sizeof(*r->points), ring_point_cmp);
	for (k = 0; k < r->npoints; k++)
		r->values[k] = r->points[k].value;

	/*
	 * Arc k is (value[k-1], value[k]]; arc 0 also takes the wrap-around
	 * part (value[last], 2^32 - 1]. Duplicate values make empty arcs for
	 * all but the first of them, which is what lookup does too.
	 */
	for (k = 0; k < r->npoints; k++) {
		uint64_t width;

		if (k == 0)
			width = (uint64_t)r->values[0] + 1 +
				(UINT32_MAX - (uint64_t)r->values[r->npoints - 1]);
		else
			width = (uint64_t)r->values[k] - r->values[k - 1];
		r->share[r->points[k].server] += (double)width;
	}
	for (i = 0; i < n; i++)
		r->share[i] /= 4294967296.0;

	free(counts);
	return r;
fail:
	free(counts);
	ring_free(r);
	return NULL;
}

void ring_free(struct ring *r)
{
	if (r == NULL)
		return;
	free(r->values);
	free(r->points);
	free(r->share);
	free(r);
}

int ring_lookup(const struct ring *r, uint32_t hash)
{
	const uint32_t *base;
	unsigned len, pos;

	if (r == NULL || r->npoints == 0)
		return -1;
	/*
	 * Lower bound: the first value >= hash (libmemcached's dispatch), or
	 * the end, which wraps to point 0. Branch-free: the answer stays in
	 * [base, base + len] and the select compiles to a cmov, so random
	 * hashes cost no mispredictions.
	 */
	base = r->values;
	len = r->npoints;
	while (len > 1) {
		unsigned half = len / 2;

		base = base[half] < hash ? base + half : base;
		len -= half;
	}
	pos = (unsigned)(base - r->values) + (*base < hash);
	if (pos == r->npoints)
		pos = 0;
	return (int)r->points[pos].server;
}

unsigned ring_nservers(const struct ring *r)
{
	return r != NULL ? r->nservers : 0;
}

unsigned ring_npoints(const struct ring *r)
{
	return r != NULL ? r->npoints : 0;
}

double ring_share(const struct ring *r, unsigned i)
{
	if (r == NULL || i >= r->nservers || r->share == NULL)
		return 0.0;
	return r->share[i];
}

const struct ring_point *ring_points(const struct ring *r)
{
	return r != NULL ? r->points : NULL;
}
