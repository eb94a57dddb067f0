/*
 * tests/memcache/bench_text.c - the text GET path in a loop, no network:
 * one session fed a buffer of pipelined "get" hits, again and again.
 * Prints one summary line. For instruction counts run it under
 *   valgrind --tool=callgrind --toggle-collect=mc_session_feed bench_text 2000 50
 * and divide the Ir by the gets it reports.
 *
 * usage: bench_text [gets-per-buffer=1000] [rounds=2000] [value-bytes=32] [get|mg]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "dataplane/memcache/mc.h"

int main(int argc, char **argv)
{
	int per = argc > 1 ? atoi(argv[1]) : 1000;
	int rounds = argc > 2 ? atoi(argv[2]) : 2000;
	int vlen = argc > 3 ? atoi(argv[3]) : 32;
	const char *verb = argc > 4 && strcmp(argv[4], "mg") == 0 ? "mg" : "get";
	struct cache_config cc = { .mem_limit = 64u << 20, .item_size_max = 1u << 20 };
	struct cache *c = cache_create(&cc);
	struct mc_server_config sc = { .cache = c, .max_conns = 1024, .num_threads = 1,
				       .out_high_water = 1u << 30 };
	struct mc_server *s = c ? mc_server_create(&sc) : NULL;
	struct mc_worker *w = s ? mc_worker_create(s) : NULL;
	struct mc_session *se = w ? mc_session_create(w) : NULL;
	struct mc_buf out;
	char line[128];
	size_t used;

	if (se == NULL || per <= 0 || rounds <= 0 || vlen < 0 || vlen > 4096) {
		fprintf(stderr, "bench_text: setup failed\n");
		return 1;
	}
	mc_buf_init(&out);

	/* one stored value */
	char *set = malloc((size_t)vlen + 64);
	int h = snprintf(set, 64, "set key:00000001 0 0 %d\r\n", vlen);
	memset(set + h, 'v', (size_t)vlen);
	memcpy(set + h + vlen, "\r\n", 2);
	mc_session_feed(se, set, (size_t)h + (size_t)vlen + 2, &used, &out);
	out.len = 0;

	int n = snprintf(line, sizeof(line), "%s key:00000001%s\r\n", verb,
			 verb[0] == 'm' ? " v" : "");
	size_t len = (size_t)n * (size_t)per;
	char *req = malloc(len);
	for (int i = 0; i < per; i++)
		memcpy(req + (size_t)i * (size_t)n, line, (size_t)n);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int r = 0; r < rounds; r++) {
		mc_session_feed(se, req, len, &used, &out);
		if (used != len) {
			fprintf(stderr, "bench_text: consumed %zu of %zu\n", used, len);
			return 1;
		}
		out.len = 0;
		cache_thread_quiescent(mc_worker_cache_thread(w));
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
	double gets = (double)per * rounds;
	printf("bench_text: %.0f %s hits, %d-byte values, %.1f ns/get, %.2f Mget/s\n",
	       gets, verb, vlen, ns / gets, gets / ns * 1e3);

	free(req);
	free(set);
	mc_buf_deinit(&out);
	mc_session_destroy(&se);
	mc_worker_destroy(&w);
	mc_server_destroy(&s);
	cache_destroy(&c);
	return 0;
}
