/*
 * tests/replication/bench_hotkeys.c - what hot_sketch_count costs a
 * serving thread: one sketch fed a precomputed Zipf stream of keys (hash
 * and bytes ready, as on the request path), no other work. Prints one
 * summary line. For instruction counts run it under
 *   valgrind --tool=callgrind --toggle-collect=hot_sketch_count \
 *     bench_hotkeys 1000000 8
 * and divide the Ir by the calls it reports.
 *
 * usage: bench_hotkeys [calls=10000000] [sample=8] [capacity=128]
 *                      [keys=100000] [zipf-alpha-x100=99] [write-pct=5]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "replication/hotkeys.h"

#define STREAM 1000000u                 /* precomputed requests, replayed */

static uint64_t mix(uint64_t i)
{
	i += 0x9e3779b97f4a7c15ull;
	i = (i ^ (i >> 30)) * 0xbf58476d1ce4e5b9ull;
	i = (i ^ (i >> 27)) * 0x94d049bb133111ebull;
	return i ^ (i >> 31);
}

struct req {
	uint64_t hash;
	uint32_t key;                       /* offset in the key arena */
	uint8_t nkey;
	bool write;
};

int main(int argc, char **argv)
{
	unsigned long calls = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000000ul;
	unsigned sample = argc > 2 ? (unsigned)atoi(argv[2]) : 8;
	unsigned capacity = argc > 3 ? (unsigned)atoi(argv[3]) : 128;
	unsigned keys = argc > 4 ? (unsigned)atoi(argv[4]) : 100000;
	unsigned alpha100 = argc > 5 ? (unsigned)atoi(argv[5]) : 99;
	unsigned wpct = argc > 6 ? (unsigned)atoi(argv[6]) : 5;
	struct hot_sketch *s = hot_sketch_create(capacity, sample);
	struct hot_count *out;
	struct req *reqs;
	char *arena;
	double *cdf, sum = 0;
	uint64_t rng = 88172645463325252ull, requests, skipped;
	struct timespec t0, t1;
	unsigned n;

	if (s == NULL || keys == 0 || calls == 0) {
		fprintf(stderr, "bench_hotkeys: bad arguments\n");
		return 1;
	}
	cdf = malloc(keys * sizeof(*cdf));
	arena = malloc((size_t)keys * 16);
	reqs = malloc(STREAM * sizeof(*reqs));
	out = malloc(capacity * sizeof(*out));
	if (cdf == NULL || arena == NULL || reqs == NULL || out == NULL)
		return 1;
	for (unsigned i = 0; i < keys; i++) {
		sum += pow(i + 1, -(double)alpha100 / 100.0);
		cdf[i] = sum;
		snprintf(arena + (size_t)i * 16, 16, "key:%u", i);
	}
	for (unsigned r = 0; r < STREAM; r++) {
		double u;
		unsigned lo = 0, hi = keys - 1;

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		u = (double)(rng >> 11) / (double)(1ull << 53) * sum;
		while (lo < hi) {
			unsigned mid = (lo + hi) / 2;

			if (cdf[mid] < u)
				lo = mid + 1;
			else
				hi = mid;
		}
		reqs[r].key = lo * 16;
		reqs[r].nkey = (uint8_t)strlen(arena + (size_t)lo * 16);
		reqs[r].hash = mix(lo);
		reqs[r].write = rng % 100 < wpct;
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned long c = 0; c < calls; c++) {
		const struct req *q = &reqs[c % STREAM];

		hot_sketch_count(s, arena + q->key, q->nkey, q->hash, q->write);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	n = hot_sketch_drain(s, out, capacity, &requests, &skipped);

	double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
		     (double)(t1.tv_nsec - t0.tv_nsec)) / (double)calls;
	printf("bench_hotkeys calls=%lu sample=%u capacity=%u keys=%u "
	       "alpha=%.2f requests=%llu skipped=%llu entries=%u "
	       "top=%.*s:%llu ns_per_call=%.2f\n",
	       calls, sample, capacity, keys, alpha100 / 100.0,
	       (unsigned long long)requests, (unsigned long long)skipped, n,
	       n ? (int)out[0].nkey : 0, n ? out[0].key : "",
	       n ? (unsigned long long)(out[0].reads + out[0].writes) : 0ull,
	       ns);
	hot_sketch_destroy(&s);
	free(cdf);
	free(arena);
	free(reqs);
	free(out);
	return 0;
}
