/*
 * bench_rand.h - random numbers and key popularity for dpcache-bench.
 *
 * Each bench thread owns one generator, seeded from --seed and the thread
 * number, so a run with a fixed seed, one thread and one connection issues
 * the same key stream against every server (what hitratio.sh relies on).
 */
#ifndef DPCACHE_PERF_BENCH_RAND_H
#define DPCACHE_PERF_BENCH_RAND_H

#include <stdint.h>

/* xoshiro256** state; one per thread, never shared. */
struct bench_rng {
	uint64_t s[4];
};

void bench_rng_init(struct bench_rng *r, uint64_t seed);
uint64_t bench_rng_next(struct bench_rng *r);
/* Uniform double in [0, 1). */
double bench_rng_double(struct bench_rng *r);
/* Uniform integer in [0, n); n > 0. */
uint64_t bench_rng_below(struct bench_rng *r, uint64_t n);

/*
 * Zipf sampler over ranks 1..n with exponent s > 0, by rejection-inversion
 * (Hormann and Derflinger, "Rejection-inversion to generate variates from
 * monotone discrete distributions", 1996). O(1) memory and about one
 * iteration per sample, so 100M keys cost nothing to set up, unlike a CDF
 * table. Read-only after init: many threads may share one.
 */
struct bench_zipf {
	uint64_t n;
	double s;
	double h_x1;     /* H(1.5) - 1 */
	double h_n;      /* H(n + 0.5) */
	double accept;   /* 2 - H^-1(H(2.5) - h(2)) */
};

/* 0 on success, -EINVAL if n == 0 or s <= 0. */
int bench_zipf_init(struct bench_zipf *z, uint64_t n, double s);
/* A key index in [0, n): index 0 is the most popular. */
uint64_t bench_zipf_sample(const struct bench_zipf *z, struct bench_rng *r);

#endif
