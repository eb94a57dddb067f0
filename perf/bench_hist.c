/* bench_hist.c - see bench_hist.h for the bucket layout. */
#include "bench_hist.h"

#include <math.h>

static unsigned bucket_of(uint64_t v)
{
	unsigned msb, shift, idx;

	if (v < BENCH_HIST_LINEAR)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	/* Keep the top SUB_BITS+1 bits: [32, 64) after the shift. */
	shift = msb - BENCH_HIST_SUB_BITS;
	idx = BENCH_HIST_LINEAR + (shift - 1) * BENCH_HIST_SUB +
	      (unsigned)((v >> shift) - BENCH_HIST_SUB);
	return idx < BENCH_HIST_BUCKETS ? idx : BENCH_HIST_BUCKETS - 1;
}

/* Midpoint of a bucket's value range, in ns. */
static double bucket_value(unsigned idx)
{
	unsigned shift, sub;
	double low;

	if (idx < BENCH_HIST_LINEAR)
		return idx;
	shift = (idx - BENCH_HIST_LINEAR) / BENCH_HIST_SUB + 1;
	sub = (idx - BENCH_HIST_LINEAR) % BENCH_HIST_SUB;
	low = ldexp((double)(BENCH_HIST_SUB + sub), (int)shift);
	return low + ldexp(1.0, (int)shift) / 2.0;
}

void bench_hist_record(struct bench_hist *h, uint64_t ns)
{
	h->bucket[bucket_of(ns)]++;
	h->count++;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
}

double bench_hist_quantile(const struct bench_hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0.0;
	/* The smallest value with at least ceil(q * count) values at or
	 * below it, the usual definition for latency percentiles. */
	rank = (uint64_t)ceil(q * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			double v = bucket_value(i);
			return v < (double)h->max_ns ? v : (double)h->max_ns;
		}
	}
	return (double)h->max_ns;
}
