/*
 * tests/cache/bench_cache.c - memory per item and cost of a GET hit.
 * Not a unit test: built, never registered; prints one summary line.
 *
 *   bench_cache [items [gets [settle_s]]]   (defaults: 1000000, 10000000, 1)
 *   bench_cache zipf [keys [requests [mem_mib]]]
 *
 * The zipf mode replays Zipf(0.99) GETs with 10% one-hit scan keys, a miss
 * followed by a SET (the look-aside pattern), and prints the hit ratio of
 * the Zipf requests: the eviction policy's scan resistance in one number.
 *
 * Items have 16-byte keys and 32-byte values. "acct" is the cache's own
 * accounting per item, "rss" the growth of the process RSS per item (keys
 * array of the benchmark excluded). For instructions per hit run it under
 *   valgrind --tool=callgrind --toggle-collect=cache_get bench_cache 100000 1000000
 * and divide the total Ir by the number of gets.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"

#define KEY_LEN 16
#define VAL_LEN 32

static long rss_bytes(void)
{
	long pages_total = 0, pages_rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &pages_total, &pages_rss) != 2)
		pages_rss = 0;
	fclose(f);
	return pages_rss * sysconf(_SC_PAGESIZE);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Zipf(0.99) over 'n' ranks: inverse CDF by binary search. */
static double *zipf_cdf(unsigned long n)
{
	double *cdf = malloc(n * sizeof(*cdf));
	double sum = 0;

	if (cdf == NULL)
		return NULL;
	for (unsigned long i = 0; i < n; i++) {
		sum += 1.0 / pow((double)(i + 1), 0.99);
		cdf[i] = sum;
	}
	for (unsigned long i = 0; i < n; i++)
		cdf[i] /= sum;
	return cdf;
}

static unsigned long zipf_pick(const double *cdf, unsigned long n, double u)
{
	unsigned long lo = 0, hi = n - 1;

	while (lo < hi) {
		unsigned long mid = (lo + hi) / 2;

		if (cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int zipf_main(int argc, char **argv)
{
	unsigned long nkeys = argc > 2 ? strtoul(argv[2], NULL, 10) : 200000ul;
	unsigned long nreq = argc > 3 ? strtoul(argv[3], NULL, 10) : 2000000ul;
	unsigned long mib = argc > 4 ? strtoul(argv[4], NULL, 10) : 4ul;
	struct cache_config cfg = { .mem_limit = mib << 20 };
	double *cdf = zipf_cdf(nkeys);
	struct cache *c = cache_create(&cfg);
	struct cache_thread *t;
	unsigned long zreq = 0, zhit = 0, scan = 0;
	unsigned seed = 4242;
	struct cache_stats st;

	if (cdf == NULL || c == NULL)
		return 1;
	t = cache_thread_attach(c);
	for (unsigned long r = 0; r < nreq; r++) {
		char key[48];
		size_t nkey;
		uint64_t h;
		bool is_scan = rand_r(&seed) % 10 == 0;

		if (is_scan) {
			nkey = (size_t)snprintf(key, sizeof(key), "scan:%lu", scan++);
		} else {
			double u = (double)rand_r(&seed) / ((double)RAND_MAX + 1.0);

			nkey = (size_t)snprintf(key, sizeof(key), "zipf:%lu",
						zipf_pick(cdf, nkeys, u));
			zreq++;
		}
		h = cache_hash(key, nkey);
		if (cache_get(t, key, nkey, h, NULL, NULL) != NULL) {
			zhit += !is_scan;
		} else {
			enum cache_status err;
			struct cache_item *it = cache_item_alloc(t, key, nkey, 0, 0,
								 100, &err);
			if (it != NULL) {
				memset(cache_item_value(it), 'z', 100);
				cache_store(t, it, h, NULL, NULL);
			}
		}
		if ((r & 255) == 0)
			cache_thread_quiescent(t);
	}
	cache_stats_get(c, &st);
	printf("bench_cache zipf: keys=%lu requests=%lu mem_mib=%lu items=%" PRIu64
	       " zipf_hit_ratio=%.4f evictions=%" PRIu64 "\n", nkeys, nreq, mib,
	       st.curr_items, (double)zhit / (double)(zreq ? zreq : 1),
	       st.evictions);
	cache_thread_detach(&t);
	cache_destroy(&c);
	free(cdf);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long nitems = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000ul;
	unsigned long ngets = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000000ul;
	struct cache_config cfg = { .mem_limit = 4ul << 30 };
	struct cache *c;
	struct cache_thread *t;
	struct cache_stats st;
	char *keys;
	uint64_t *hashes;
	long rss0, rss1;
	unsigned long hits = 0;
	unsigned seed = 12345;
	double t0, t1;

	if (argc > 1 && strcmp(argv[1], "zipf") == 0)
		return zipf_main(argc, argv);
	keys = malloc(nitems * KEY_LEN);
	hashes = malloc(nitems * sizeof(*hashes));
	if (keys == NULL || hashes == NULL || nitems == 0)
		return 1;
	for (unsigned long i = 0; i < nitems; i++) {
		char tmp[32];

		snprintf(tmp, sizeof(tmp), "key:%012lu", i % 1000000000000ul);
		memcpy(keys + i * KEY_LEN, tmp, KEY_LEN);
		hashes[i] = cache_hash(keys + i * KEY_LEN, KEY_LEN);
	}
	c = cache_create(&cfg);
	if (c == NULL)
		return 1;
	t = cache_thread_attach(c);
	rss0 = rss_bytes();
	for (unsigned long i = 0; i < nitems; i++) {
		enum cache_status err;
		struct cache_item *it = cache_item_alloc(t, keys + i * KEY_LEN, KEY_LEN,
							 0, 0, VAL_LEN, &err);

		if (it == NULL)
			return 1;
		memset(cache_item_value(it), 'v', VAL_LEN);
		cache_store(t, it, hashes[i], NULL, NULL);
		if (i % 1024 == 0)
			cache_thread_quiescent(t);
	}
	cache_thread_quiescent(t);
	/* let the table's resize worker catch up (it needs grace periods) */
	cache_thread_offline(t);
	sleep(argc > 3 ? atoi(argv[3]) : 1);
	cache_thread_online(t);
	rss1 = rss_bytes();
	cache_stats_get(c, &st);

	t0 = now_s();
	for (unsigned long g = 0; g < ngets; g++) {
		unsigned long i = (unsigned long)rand_r(&seed) % nitems;

		if (cache_get(t, keys + i * KEY_LEN, KEY_LEN, hashes[i], NULL, NULL))
			hits++;
		if ((g & 1023) == 0)
			cache_thread_quiescent(t);
	}
	t1 = now_s();

	printf("bench_cache: items=%" PRIu64 " acct_bytes_per_item=%.1f "
	       "rss_bytes_per_item=%.1f gets=%lu hits=%lu ns_per_get=%.1f\n",
	       st.curr_items, (double)st.bytes / (double)st.curr_items,
	       (double)(rss1 - rss0) / (double)nitems, ngets, hits,
	       (t1 - t0) * 1e9 / (double)(ngets ? ngets : 1));
	cache_thread_detach(&t);
	cache_destroy(&c);
	free(keys);
	free(hashes);
	return 0;
}
