/*
 * bench_report.h - the result counters and the report lines that
 * dpcache-bench's socket mode and its --dpdk mode (bench_dpdk.c) share.
 *
 * Both modes must print the same human-readable lines and the same leading
 * SUMMARY fields: the perf scripts parse them without knowing which mode
 * ran. Keeping them in one place keeps the two from drifting apart.
 */
#ifndef DPCACHE_PERF_BENCH_REPORT_H
#define DPCACHE_PERF_BENCH_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "bench_hist.h"
#include "bench_proto.h"

/* Replies of one thread (or lcore) in one phase: preload or measured. */
struct bench_counts {
	uint64_t ops;          /* replies received (any kind) */
	uint64_t gets, sets;
	uint64_t hits, misses;
	uint64_t scan_gets, scan_hits; /* --scan-fraction; 0 in --dpdk mode */
	uint64_t not_stored;
	uint64_t errors;       /* all failures, server_errors included */
	uint64_t server_errors;
	uint64_t timeouts;     /* UDP replies lost; requests left at the end */
};

void bench_counts_add(struct bench_counts *d, const struct bench_counts *s);

/* Counts one well-formed reply res to r in k (its phase's counters). */
void bench_counts_reply(struct bench_counts *k, const struct bench_req *r,
			enum bench_result res);

/* a / b, or 0 when b is 0. */
double bench_ratio(uint64_t a, uint64_t b);

/* "preload: ..." line. */
void bench_report_preload(const struct bench_counts *pre, double secs);

/*
 * The lines after "load:": gets and sets, scans (when the run had them),
 * latency quantiles of h, errors and timeouts.
 */
void bench_report_results(const struct bench_counts *c,
			  const struct bench_hist *h, bool scans);

/* What the SUMMARY line says besides the counters and the latencies. */
struct bench_summary {
	const char *proto;
	int udp;
	unsigned conns, threads, pipeline;
	double secs, ops_per_sec;
	double client_cpu;     /* share of the client's CPU, 0..1 */
};

/*
 * The fields of the SUMMARY line both modes print, from "SUMMARY" to
 * preload_errors=, with no newline: the caller adds its own fields (or
 * none) and the newline. hot_hit_ratio is the hit ratio without scans.
 */
void bench_report_summary(const struct bench_summary *s,
			  const struct bench_counts *c,
			  const struct bench_counts *pre,
			  const struct bench_hist *h);

#endif
