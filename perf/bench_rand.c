/*
 * bench_rand.c - xoshiro256** and a rejection-inversion Zipf sampler.
 *
 * Zipf design note: P(k) is proportional to k^-s. H(x) is an integral of
 * h(x) = x^-s; drawing u uniformly in [H(n+0.5), H(1.5)-1] and inverting H
 * gives a continuous x whose nearest integer k is accepted when u lies under
 * the step of height h(k) (or k is near x, the cheap test). The helper
 * functions keep H and its inverse accurate as s approaches 1, where the
 * textbook formula (x^(1-s) - 1) / (1-s) divides zero by zero.
 */
#include "bench_rand.h"

#include <errno.h>
#include <math.h>

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void bench_rng_init(struct bench_rng *r, uint64_t seed)
{
	/* splitmix64 spreads a small seed over the whole state, as the
	 * xoshiro authors recommend; an all-zero state would be stuck. */
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

uint64_t bench_rng_next(struct bench_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double bench_rng_double(struct bench_rng *r)
{
	/* 53 random bits fill a double's mantissa exactly. */
	return (double)(bench_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t bench_rng_below(struct bench_rng *r, uint64_t n)
{
	/* Lemire's multiply-shift; the bias (n / 2^64) is far below noise. */
	return (uint64_t)(((unsigned __int128)bench_rng_next(r) * n) >> 64);
}

/* log1p(x) / x, accurate near 0. */
static double helper1(double x)
{
	if (fabs(x) > 1e-8)
		return log1p(x) / x;
	return 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

/* expm1(x) / x, accurate near 0. */
static double helper2(double x)
{
	if (fabs(x) > 1e-8)
		return expm1(x) / x;
	return 1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x));
}

static double zipf_h(const struct bench_zipf *z, double x)
{
	return exp(-z->s * log(x));
}

static double zipf_hint(const struct bench_zipf *z, double x)
{
	double log_x = log(x);

	return helper2((1.0 - z->s) * log_x) * log_x;
}

static double zipf_hint_inv(const struct bench_zipf *z, double x)
{
	double t = x * (1.0 - z->s);

	if (t < -1.0)
		t = -1.0; /* rounding guard: the true value is never below -1 */
	return exp(helper1(t) * x);
}

int bench_zipf_init(struct bench_zipf *z, uint64_t n, double s)
{
	if (n == 0 || !(s > 0.0))
		return -EINVAL;
	z->n = n;
	z->s = s;
	z->h_x1 = zipf_hint(z, 1.5) - 1.0;
	z->h_n = zipf_hint(z, (double)n + 0.5);
	z->accept = 2.0 - zipf_hint_inv(z, zipf_hint(z, 2.5) - zipf_h(z, 2.0));
	return 0;
}

uint64_t bench_zipf_sample(const struct bench_zipf *z, struct bench_rng *r)
{
	/* The acceptance rate is above 90% for any s, so this ends quickly;
	 * the bound only guards against a broken float environment. */
	for (int tries = 0; tries < 1000; tries++) {
		double u = z->h_n + bench_rng_double(r) * (z->h_x1 - z->h_n);
		double x = zipf_hint_inv(z, u);
		double kd = floor(x + 0.5);
		uint64_t k;

		if (kd < 1.0)
			kd = 1.0;
		else if (kd > (double)z->n)
			kd = (double)z->n;
		k = (uint64_t)kd;
		if (kd - x <= z->accept ||
		    u >= zipf_hint(z, kd + 0.5) - zipf_h(z, kd))
			return k - 1;
	}
	return 0;
}
