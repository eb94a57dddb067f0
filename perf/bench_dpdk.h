/*
 * bench_dpdk.h - dpcache-bench's DPDK mode: the bench becomes a DPDK
 * primary process, owns one port (net_memif to the server, or net_tap /
 * net_af_packet for a kernel peer) and builds its own Ethernet/ARP/IPv4/
 * UDP/TCP frames, so the server's per-core throughput is measured with no
 * kernel on the path.
 *
 * Built only when libdpdk is found (BENCH_HAVE_DPDK); dpcache-bench.c
 * parses the options and calls bench_dpdk_run() once.
 */
#ifndef DPCACHE_PERF_BENCH_DPDK_H
#define DPCACHE_PERF_BENCH_DPDK_H

#include <stddef.h>
#include <stdint.h>

#include "bench_proto.h"

/* What the DPDK mode needs of dpcache-bench's options. */
struct bench_dpdk_opts {
	enum bench_proto proto;
	int udp;
	unsigned conns;         /* flows (UDP) or connections (TCP), in all */
	unsigned pipeline;      /* requests in flight per flow/connection */
	unsigned ratio_get, ratio_set;
	uint64_t keys;
	size_t key_size, value_size;
	double zipf;
	double duration;        /* seconds, > 0 */
	uint64_t requests;      /* used when requests_set */
	int requests_set;
	int preload;
	uint64_t seed;
	int quiet;
	uint32_t server_ip;     /* host order */
	uint16_t server_port;
	uint32_t local_ip;      /* host order */
	unsigned rto_ms;        /* TCP go-back-N timeout; UDP request timeout */
	double wait_secs;       /* link up + ARP + handshakes, at most */
};

/*
 * Runs the whole benchmark: rte_eal_init(eal_argc, eal_argv) (eal_argv[0]
 * is the program name), port set-up with one RX/TX queue pair per EAL lcore
 * (the main lcore polls too), ARP, flow discovery, preload, measured load,
 * report (the same SUMMARY line as the socket mode). Main thread only, once
 * per process. Returns the process exit status: 0, 1 (run failed or lost
 * flows), 2 (bad set-up: EAL arguments, no port, port configuration).
 */
int bench_dpdk_run(const struct bench_dpdk_opts *o, int eal_argc,
		   char **eal_argv);

#endif
