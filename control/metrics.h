/*
 * control/metrics.h - the admin HTTP endpoint (libmicrohttpd): GET /metrics
 * in the Prometheus text format, GET /healthz.
 *
 * The endpoint owns no counters. On every scrape it calls 'collect', which
 * emits (name, value) pairs in memcached's stats naming ("get_hits",
 * "core0:rx_frames", "peer:n2:forwarded") grouped by source; the endpoint turns
 * them into Prometheus series:
 *   group "stats",     "get_hits" 12       -> dpcache_get_hits 12
 *   group "dataplane", "core0:rx_frames" 5 -> dpcache_dataplane_rx_frames{core="0"} 5
 *                      "port0:ipackets" 5  -> dpcache_dataplane_ipackets{port="0"} 5
 *                      "total:rx_frames"   -> dpcache_dataplane_rx_frames_all
 *   group "cluster",   "peer:n2:forwarded" -> dpcache_cluster_forwarded{peer="n2"}
 *                      "forwarded" 9       -> dpcache_cluster_forwarded_all 9
 *                      (an unlabelled name whose family has, or ever had,
 *                      labelled samples; full rules in metrics.c)
 * Non-numeric values become an info series with the value as a label
 * (dpcache_info{group="stats",key="version",value="1.6.18-dpcache-0.1.0"} 1).
 * A scrape calls collect once, on the endpoint's single thread: collect never
 * runs twice at the same time. 'emit' copies its strings.
 */
#ifndef DPCACHE_CONTROL_METRICS_H
#define DPCACHE_CONTROL_METRICS_H

#include <stddef.h>

typedef void (*metrics_emit_fn)(void *ctx, const char *group,
				const char *name, const char *value);
/* Called on the endpoint's thread for every scrape. */
typedef void (*metrics_collect_fn)(void *arg, metrics_emit_fn emit, void *ctx);

struct metrics_server;

/* Listens on "host:port" (port 0 = any; see metrics_port). NULL with a
 * one-line reason in err. */
struct metrics_server *metrics_start(const char *addr,
				     metrics_collect_fn collect, void *arg,
				     char *err, size_t errlen);
unsigned metrics_port(const struct metrics_server *m);
/* Accepts NULL; sets *m to NULL. */
void metrics_stop(struct metrics_server **m);

#endif /* DPCACHE_CONTROL_METRICS_H */
