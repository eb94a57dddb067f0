/*
 * dataplane/memcache/server.c - server-wide protocol state and the
 * per-thread workers.
 *
 * Lock order: server->lock guards workers[] only; it is taken on worker
 * create/destroy and by 'stats' (to sum the workers' counters), never on a
 * request path.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache/clock.h"
#include "dataplane/memcache/mc_internal.h"

#define MC_DEFAULT_HIGH_WATER (64u * 1024u)

struct mc_server *mc_server_create(const struct mc_server_config *cfg)
{
	if (cfg == NULL || cfg->cache == NULL) {
		errno = EINVAL;
		return NULL;
	}
	struct mc_server *s = calloc(1, sizeof(*s));
	pthread_mutex_t *lock = malloc(sizeof(*lock));
	if (s == NULL || lock == NULL)
		goto fail;
	if (pthread_mutex_init(lock, NULL) != 0)
		goto fail;

	s->cfg = *cfg;
	if (s->cfg.out_high_water == 0)
		s->cfg.out_high_water = MC_DEFAULT_HIGH_WATER;
	if (s->cfg.item_size_max == 0)
		s->cfg.item_size_max = cache_config_get(cfg->cache)->item_size_max;
	s->lock = lock;
	s->started = cache_clock_now();
	s->verbosity = cfg->verbosity > 0 ? (uint32_t)cfg->verbosity : 0;
	return s;
fail:
	free(lock);
	free(s);
	errno = ENOMEM;
	return NULL;
}

void mc_server_destroy(struct mc_server **sp)
{
	if (sp == NULL || *sp == NULL)
		return;
	struct mc_server *s = *sp;
	pthread_mutex_destroy(s->lock);
	free(s->lock);
	free(s);
	*sp = NULL;
}

void mc_server_conn_opened(struct mc_server *s)
{
	__atomic_fetch_add(&s->curr_conns, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->total_conns, 1, __ATOMIC_RELAXED);
}

void mc_server_conn_closed(struct mc_server *s)
{
	__atomic_fetch_sub(&s->curr_conns, 1, __ATOMIC_RELAXED);
}

void mc_server_conn_rejected(struct mc_server *s)
{
	__atomic_fetch_add(&s->rejected_conns, 1, __ATOMIC_RELAXED);
}

struct mc_worker *mc_worker_create(struct mc_server *s)
{
	struct mc_worker *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->server = s;
	w->ct = cache_thread_attach(s->cfg.cache);
	if (w->ct == NULL)
		goto fail;

	pthread_mutex_lock(s->lock);
	unsigned i;
	for (i = 0; i < MC_MAX_WORKERS; i++) {
		if (s->workers[i] == NULL) {
			s->workers[i] = w;
			s->nworkers++;
			break;
		}
	}
	pthread_mutex_unlock(s->lock);
	if (i == MC_MAX_WORKERS)
		goto fail;
	return w;
fail:
	cache_thread_detach(&w->ct);
	free(w);
	return NULL;
}

void mc_worker_destroy(struct mc_worker **wp)
{
	if (wp == NULL || *wp == NULL)
		return;
	struct mc_worker *w = *wp;
	struct mc_server *s = w->server;

	pthread_mutex_lock(s->lock);
	for (unsigned i = 0; i < MC_MAX_WORKERS; i++) {
		if (s->workers[i] == w) {
			s->workers[i] = NULL;
			s->nworkers--;
			break;
		}
	}
	pthread_mutex_unlock(s->lock);
	cache_thread_detach(&w->ct);
	free(w);
	*wp = NULL;
}

void mc_worker_set_cluster(struct mc_worker *w, struct cluster_worker *cw)
{
	w->cluster = cw;
	if (cw != NULL)
		__atomic_store_n(&w->server->cluster, true, __ATOMIC_RELAXED);
}

struct cache_thread *mc_worker_cache_thread(struct mc_worker *w)
{
	return w->ct;
}
