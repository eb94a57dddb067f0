/*
 * bench_hist.h - log-bucketed latency histogram (HDR style).
 *
 * Values are nanoseconds. Below 64 ns each value has its own bucket; above,
 * every power of two is split into 32 linear sub-buckets, so any recorded
 * value is known to within about 3%. One histogram per thread, merged after
 * the threads end: recording is a few instructions and never shared.
 */
#ifndef DPCACHE_PERF_BENCH_HIST_H
#define DPCACHE_PERF_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS 5
#define BENCH_HIST_SUB      (1u << BENCH_HIST_SUB_BITS)      /* 32 */
#define BENCH_HIST_LINEAR   (2u * BENCH_HIST_SUB)            /* 64 */
/* Up to 2^44 ns (about 4.9 hours); larger values land in the last bucket. */
#define BENCH_HIST_BUCKETS  (BENCH_HIST_LINEAR + 38u * BENCH_HIST_SUB)

struct bench_hist {
	uint64_t count;
	uint64_t max_ns;
	uint64_t bucket[BENCH_HIST_BUCKETS];
};

void bench_hist_record(struct bench_hist *h, uint64_t ns);
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
/* The value at quantile q in [0, 1] (e.g. 0.99), in ns; 0 when empty. */
double bench_hist_quantile(const struct bench_hist *h, double q);

#endif
