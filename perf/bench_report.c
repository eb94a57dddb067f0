/* bench_report.c - see bench_report.h: why both modes print through here. */
#include "bench_report.h"

#include <inttypes.h>
#include <stdio.h>

void bench_counts_add(struct bench_counts *d, const struct bench_counts *s)
{
	d->ops += s->ops;
	d->gets += s->gets;
	d->sets += s->sets;
	d->hits += s->hits;
	d->misses += s->misses;
	d->scan_gets += s->scan_gets;
	d->scan_hits += s->scan_hits;
	d->not_stored += s->not_stored;
	d->errors += s->errors;
	d->server_errors += s->server_errors;
	d->timeouts += s->timeouts;
}

void bench_counts_reply(struct bench_counts *k, const struct bench_req *r,
			enum bench_result res)
{
	k->ops++;
	if (r->op == BENCH_OP_GET)
		k->gets++;
	else
		k->sets++;
	switch (res) {
	case BENCH_R_HIT:
		k->hits++;
		k->scan_hits += r->is_scan;
		break;
	case BENCH_R_MISS:
		k->misses++;
		break;
	case BENCH_R_STORED:
		break;
	case BENCH_R_NOT_STORED:
		k->not_stored++;
		break;
	case BENCH_R_SERVER_ERROR:
		k->errors++;
		k->server_errors++;
		break;
	}
	k->scan_gets += r->is_scan;
}

double bench_ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0.0;
}

void bench_report_preload(const struct bench_counts *pre, double secs)
{
	printf("preload: %" PRIu64 " sets in %.2f s, errors %" PRIu64
	       ", timeouts %" PRIu64 "\n",
	       pre->sets, secs, pre->errors, pre->timeouts);
}

void bench_report_results(const struct bench_counts *c,
			  const struct bench_hist *h, bool scans)
{
	printf("  gets %" PRIu64 " (hits %" PRIu64 ", misses %" PRIu64
	       ", hit ratio %.4f), sets %" PRIu64 " (not stored %" PRIu64 ")\n",
	       c->gets, c->hits, c->misses, bench_ratio(c->hits, c->gets),
	       c->sets, c->not_stored);
	if (scans)
		printf("  scan gets %" PRIu64 " (hits %" PRIu64 "), "
		       "hit ratio without scans %.4f\n", c->scan_gets,
		       c->scan_hits,
		       bench_ratio(c->hits - c->scan_hits,
				   c->gets - c->scan_gets));
	printf("  latency us: p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f "
	       "max %.1f\n",
	       bench_hist_quantile(h, 0.50) / 1e3,
	       bench_hist_quantile(h, 0.90) / 1e3,
	       bench_hist_quantile(h, 0.99) / 1e3,
	       bench_hist_quantile(h, 0.999) / 1e3,
	       (double)h->max_ns / 1e3);
	printf("  errors %" PRIu64 " (server errors %" PRIu64 "), "
	       "timeouts %" PRIu64 "\n",
	       c->errors, c->server_errors, c->timeouts);
}

void bench_report_summary(const struct bench_summary *s,
			  const struct bench_counts *c,
			  const struct bench_counts *pre,
			  const struct bench_hist *h)
{
	printf("SUMMARY proto=%s udp=%d conns=%u threads=%u pipeline=%u "
	       "ops=%" PRIu64 " secs=%.3f ops_per_sec=%.0f gets=%" PRIu64
	       " sets=%" PRIu64 " get_hit_ratio=%.4f hot_hit_ratio=%.4f "
	       "p50_us=%.1f p99_us=%.1f p999_us=%.1f client_cpu=%.2f "
	       "errors=%" PRIu64 " timeouts=%" PRIu64 " preload_errors=%" PRIu64,
	       s->proto, s->udp, s->conns, s->threads, s->pipeline,
	       c->ops, s->secs, s->ops_per_sec, c->gets, c->sets,
	       bench_ratio(c->hits, c->gets),
	       bench_ratio(c->hits - c->scan_hits, c->gets - c->scan_gets),
	       bench_hist_quantile(h, 0.50) / 1e3,
	       bench_hist_quantile(h, 0.99) / 1e3,
	       bench_hist_quantile(h, 0.999) / 1e3,
	       s->client_cpu, c->errors, c->timeouts,
	       pre->errors + pre->timeouts);
}
