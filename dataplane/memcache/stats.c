/*
 * dataplane/memcache/stats.c - 'stats' and its groups, for every front end.
 *
 * General stats use memcached's names and order where dpcache has the same
 * counter; counters memcached has and dpcache does not (libevent, slab
 * mover, LRU crawler, ...) are left out rather than faked. dpcache's own
 * counters follow memcached's, then the transport's (cfg.transport_stats).
 *
 * dpcache has no slab classes. 'stats items' and 'stats slabs' report one
 * pseudo-class, 1, holding every item, plus the eviction policy's queue
 * sizes; 'stats sizes' says "disabled", as memcached does by default.
 *
 * Worker counters are single-writer; 'stats' sums them under server->lock
 * (which only guards the workers[] array). 'stats reset' zeroes them from
 * the calling thread: a bump racing with it may survive the reset, which
 * is harmless for counters.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cache/clock.h"
#include "dataplane/memcache/mc_text_impl.h"

static void sum_workers(struct mc_server *srv, struct mc_worker_stats *sum)
{
	memset(sum, 0, sizeof(*sum));
	pthread_mutex_lock(srv->lock);
	for (unsigned i = 0; i < MC_MAX_WORKERS; i++) {
		struct mc_worker *w = srv->workers[i];
		if (w == NULL)
			continue;
#define MC_X_SUM(name) sum->name += __atomic_load_n(&w->stats.name, __ATOMIC_RELAXED);
		MC_WORKER_STATS(MC_X_SUM)
#undef MC_X_SUM
	}
	pthread_mutex_unlock(srv->lock);
}

static void reset_workers(struct mc_server *srv)
{
	pthread_mutex_lock(srv->lock);
	for (unsigned i = 0; i < MC_MAX_WORKERS; i++) {
		struct mc_worker *w = srv->workers[i];
		if (w == NULL)
			continue;
#define MC_X_ZERO(name) __atomic_store_n(&w->stats.name, 0, __ATOMIC_RELAXED);
		MC_WORKER_STATS(MC_X_ZERO)
#undef MC_X_ZERO
	}
	pthread_mutex_unlock(srv->lock);
}

static void emit_u64(mc_stat_fn emit, void *arg, const char *name, uint64_t v)
{
	char buf[24];
	*mc_u64toa(v, buf) = '\0';
	emit(arg, name, buf);
}

static void emit_general(struct mc_worker *w, mc_stat_fn emit, void *arg)
{
	struct mc_server *srv = w->server;
	struct mc_worker_stats ws;
	struct cache_stats cs;
	struct rusage ru;
	char buf[64];
	uint32_t now = cache_clock_now();

	sum_workers(srv, &ws);
	cache_stats_get(srv->cfg.cache, &cs);
	getrusage(RUSAGE_SELF, &ru);

	emit_u64(emit, arg, "pid", (uint64_t)getpid());
	emit_u64(emit, arg, "uptime", now - srv->started);
	emit_u64(emit, arg, "time", now);
	emit(arg, "version", MC_VERSION_STRING);
	emit_u64(emit, arg, "pointer_size", sizeof(void *) * 8);
	snprintf(buf, sizeof(buf), "%ld.%06ld", (long)ru.ru_utime.tv_sec,
		 (long)ru.ru_utime.tv_usec);
	emit(arg, "rusage_user", buf);
	snprintf(buf, sizeof(buf), "%ld.%06ld", (long)ru.ru_stime.tv_sec,
		 (long)ru.ru_stime.tv_usec);
	emit(arg, "rusage_system", buf);
	emit_u64(emit, arg, "max_connections", srv->cfg.max_conns);
	uint64_t curr = __atomic_load_n(&srv->curr_conns, __ATOMIC_RELAXED);
	emit_u64(emit, arg, "curr_connections", curr);
	emit_u64(emit, arg, "total_connections",
		 __atomic_load_n(&srv->total_conns, __ATOMIC_RELAXED));
	emit_u64(emit, arg, "rejected_connections",
		 __atomic_load_n(&srv->rejected_conns, __ATOMIC_RELAXED));
	emit_u64(emit, arg, "connection_structures", curr);

#define E(name) emit_u64(emit, arg, #name, ws.name);
	E(cmd_get) E(cmd_set) E(cmd_flush) E(cmd_touch) E(cmd_meta)
	E(get_hits) E(get_misses) E(get_expired) E(get_flushed)
	E(delete_misses) E(delete_hits) E(incr_misses) E(incr_hits)
	E(decr_misses) E(decr_hits) E(cas_misses) E(cas_hits) E(cas_badval)
	E(touch_hits) E(touch_misses) E(store_too_large) E(store_no_memory)
	E(auth_cmds) E(auth_errors) E(bytes_read) E(bytes_written)
#undef E
	emit_u64(emit, arg, "limit_maxbytes", cs.limit_maxbytes);
	emit_u64(emit, arg, "threads", srv->cfg.num_threads);
	emit_u64(emit, arg, "hash_bytes", cs.hash_bytes);  /* counted in -m */
	emit_u64(emit, arg, "bytes", cs.bytes);
	emit_u64(emit, arg, "curr_items", cs.curr_items);
	emit_u64(emit, arg, "total_items", cs.total_items);
	emit_u64(emit, arg, "expired_unfetched", cs.expired_unfetched);
	emit_u64(emit, arg, "evicted_unfetched", cs.evicted_unfetched);
	emit_u64(emit, arg, "evictions", cs.evictions);
	emit_u64(emit, arg, "reclaimed", cs.reclaimed);
	/* dpcache's own */
	emit_u64(emit, arg, "udp_dropped", ws.udp_dropped);
	emit_u64(emit, arg, "protocol_errors", ws.protocol_errors);
	if (__atomic_load_n(&srv->cluster, __ATOMIC_RELAXED)) {
		/* cluster node: requests sent to their owner, by the client's
		 * protocol, and pulls of moving-in keys */
		emit_u64(emit, arg, "cmd_forward_text", ws.cmd_forward_text);
		emit_u64(emit, arg, "cmd_forward_meta", ws.cmd_forward_meta);
		emit_u64(emit, arg, "cmd_forward_binary", ws.cmd_forward_binary);
		emit_u64(emit, arg, "forward_errors", ws.forward_errors);
		emit_u64(emit, arg, "cmd_pull", ws.cmd_pull);
		emit_u64(emit, arg, "pull_errors", ws.pull_errors);
		emit_u64(emit, arg, "peer_hellos", ws.peer_hellos);
	}
	emit_u64(emit, arg, "sweeper_runs", cs.sweeper_runs);
	emit_u64(emit, arg, "sweeper_reclaimed", cs.sweeper_reclaimed);
	emit_u64(emit, arg, "hash_buckets", cs.table_buckets);
	if (srv->cfg.transport_stats != NULL)
		(void)srv->cfg.transport_stats(srv->cfg.transport_arg, NULL, emit, arg);
}

static void emit_settings(struct mc_worker *w, mc_stat_fn emit, void *arg)
{
	struct mc_server *srv = w->server;
	const struct cache_config *cc = cache_config_get(srv->cfg.cache);

	emit_u64(emit, arg, "maxbytes", cc->mem_limit);
	emit_u64(emit, arg, "maxconns", srv->cfg.max_conns);
	emit_u64(emit, arg, "verbosity",
		 __atomic_load_n(&srv->verbosity, __ATOMIC_RELAXED));
	emit(arg, "evictions", cc->no_evict ? "off" : "on");
	emit_u64(emit, arg, "num_threads", srv->cfg.num_threads);
	emit(arg, "cas_enabled", "yes");
	emit(arg, "binding_protocol", "auto-negotiate");
	emit_u64(emit, arg, "item_size_max", srv->cfg.item_size_max);
	emit(arg, "flush_enabled", "yes");
	emit(arg, "shutdown_command", srv->cfg.shutdown_enabled ? "yes" : "no");
	emit(arg, "udp_enabled", srv->cfg.udp_enabled ? "yes" : "no");
	emit_u64(emit, arg, "output_high_water", srv->cfg.out_high_water);
	if (srv->cfg.transport_stats != NULL)
		(void)srv->cfg.transport_stats(srv->cfg.transport_arg, "settings",
					       emit, arg);
}

static void emit_items(struct mc_worker *w, mc_stat_fn emit, void *arg)
{
	struct cache_stats cs;

	cache_stats_get(w->server->cfg.cache, &cs);
	if (cs.curr_items == 0)
		return; /* memcached lists only classes that hold items */
	emit_u64(emit, arg, "items:1:number", cs.curr_items);
	emit_u64(emit, arg, "items:1:evicted", cs.evictions);
	emit_u64(emit, arg, "items:1:evicted_unfetched", cs.evicted_unfetched);
	emit_u64(emit, arg, "items:1:expired_unfetched", cs.expired_unfetched);
	emit_u64(emit, arg, "items:1:reclaimed", cs.reclaimed);
	emit_u64(emit, arg, "items:1:small_queue_items", cs.small_queue_items);
	emit_u64(emit, arg, "items:1:main_queue_items", cs.main_queue_items);
}

static void emit_slabs(struct mc_worker *w, mc_stat_fn emit, void *arg)
{
	struct cache_stats cs;

	cache_stats_get(w->server->cfg.cache, &cs);
	if (cs.curr_items != 0) {
		emit_u64(emit, arg, "1:used_chunks", cs.curr_items);
		emit_u64(emit, arg, "1:mem_requested", cs.bytes);
	}
	emit_u64(emit, arg, "active_slabs", cs.curr_items != 0 ? 1 : 0);
	emit_u64(emit, arg, "total_malloced", cs.bytes);
}

int mc_stats_emit(struct mc_worker *w, const char *group, mc_stat_fn emit,
		  void *emit_arg)
{
	struct mc_server *srv = w->server;

	if (group == NULL) {
		emit_general(w, emit, emit_arg);
	} else if (strcmp(group, "settings") == 0) {
		emit_settings(w, emit, emit_arg);
	} else if (strcmp(group, "items") == 0) {
		emit_items(w, emit, emit_arg);
	} else if (strcmp(group, "slabs") == 0) {
		emit_slabs(w, emit, emit_arg);
	} else if (strcmp(group, "sizes") == 0) {
		emit(emit_arg, "sizes_status", "disabled");
	} else if (strcmp(group, "conns") == 0) {
		/* only the transport knows its connections; none is fine */
		if (srv->cfg.transport_stats != NULL)
			(void)srv->cfg.transport_stats(srv->cfg.transport_arg,
						       group, emit, emit_arg);
	} else {
		if (srv->cfg.transport_stats == NULL)
			return -ENOENT;
		return srv->cfg.transport_stats(srv->cfg.transport_arg, group,
						emit, emit_arg);
	}
	return 0;
}

int mc_server_stats_emit(struct mc_server *s, const char *group,
			 mc_stat_fn emit, void *emit_arg)
{
	/* The groups read only the server, the cache and the transport (all
	 * any-thread), never the calling worker's own state. */
	struct mc_worker w;

	memset(&w, 0, sizeof(w));
	w.server = s;
	return mc_stats_emit(&w, group, emit, emit_arg);
}

/* ---- the text protocol's 'stats' command ---------------------------------- */

struct text_emit {
	struct mc_buf *out;
	bool failed;
};

static void text_stat(void *arg, const char *name, const char *value)
{
	struct text_emit *te = arg;
	size_t nn = strlen(name);
	size_t nv = strlen(value);
	char *p = mc_buf_reserve(te->out, 5 + nn + 1 + nv + 2);

	if (p == NULL) {
		te->failed = true;
		return;
	}
	memcpy(p, "STAT ", 5);
	memcpy(p + 5, name, nn);
	p[5 + nn] = ' ';
	memcpy(p + 6 + nn, value, nv);
	memcpy(p + 6 + nn + nv, "\r\n", 2);
	te->out->len += 5 + nn + 1 + nv + 2;
}

static void stats_reset(struct mc_worker *w)
{
	struct mc_server *srv = w->server;

	reset_workers(srv);
	__atomic_store_n(&srv->total_conns, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&srv->rejected_conns, 0, __ATOMIC_RELAXED);
	cache_stats_reset(srv->cfg.cache);
}

/* 'stats cachedump <class> <limit>': memcached's argument checks; the dump
 * itself is empty (dpcache does not walk items for a client). */
static int stats_cachedump(struct mc_tok *tok, size_t ntok, struct mc_buf *out)
{
	uint32_t id;
	uint32_t limit;
	int rc;

	if (ntok < 5)
		rc = MC_OUT_LIT(out, "CLIENT_ERROR bad command line");
	else if (!mc_parse_u32(&tok[2], &id) || !mc_parse_u32(&tok[3], &limit))
		rc = MC_OUT_LIT(out, "CLIENT_ERROR bad command line format");
	else if (id >= 64)
		rc = MC_OUT_LIT(out, "CLIENT_ERROR Illegal slab id");
	else
		rc = MC_OUT_LIT(out, "END");
	return rc == 0 ? MC_LINE_DONE : MC_LINE_CLOSE;
}

int mc_text_stats(struct mc_session *s, struct mc_tok *tok, size_t ntok,
		  struct mc_buf *out)
{
	struct mc_worker *w = s->w;
	struct text_emit te = { out, false };
	char group[64];
	size_t mark = out->len;
	int rc = 0;

	if (ntok == 2) {
		rc = mc_stats_emit(w, NULL, text_stat, &te);
	} else {
		const struct mc_tok *sub = &tok[1];
		if (MC_TOK_IS(sub, "reset")) {
			stats_reset(w);
			return MC_OUT_LIT(out, "RESET") == 0 ? MC_LINE_DONE : MC_LINE_CLOSE;
		}
		if (MC_TOK_IS(sub, "detail")) {
			/* no per-prefix stats in dpcache; accept the switch */
			if (ntok >= 4 && (MC_TOK_IS(&tok[2], "on") || MC_TOK_IS(&tok[2], "off")))
				return MC_OUT_LIT(out, "OK") == 0 ? MC_LINE_DONE : MC_LINE_CLOSE;
			if (ntok >= 4 && MC_TOK_IS(&tok[2], "dump"))
				return MC_OUT_LIT(out, "END") == 0 ? MC_LINE_DONE : MC_LINE_CLOSE;
			return MC_OUT_LIT(out, "CLIENT_ERROR usage: stats detail on|off|dump") == 0 ?
				       MC_LINE_DONE : MC_LINE_CLOSE;
		}
		if (MC_TOK_IS(sub, "cachedump"))
			return stats_cachedump(tok, ntok, out);
		if (sub->len >= sizeof(group))
			return MC_OUT_LIT(out, "ERROR") == 0 ? MC_LINE_DONE : MC_LINE_CLOSE;
		memcpy(group, sub->p, sub->len);
		group[sub->len] = '\0';
		rc = mc_stats_emit(w, group, text_stat, &te);
	}
	if (rc != 0) {
		out->len = mark;
		return MC_OUT_LIT(out, "ERROR") == 0 ? MC_LINE_DONE : MC_LINE_CLOSE;
	}
	if (te.failed || MC_OUT_LIT(out, "END") != 0) {
		out->len = mark;
		return MC_OUT_LIT(out, "SERVER_ERROR out of memory writing stats") == 0 ?
			       MC_LINE_DONE : MC_LINE_CLOSE;
	}
	return MC_LINE_DONE;
}
