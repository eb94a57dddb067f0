/*
 * dataplane/memcache/mc_internal.h - what the protocol files share and no
 * transport may use.
 *
 * Ownership of the files in this folder:
 *   server.c, session.c, buf.c, stats.c, text.c, meta.c  - text + meta side
 *   binary.c, udp.c                                      - binary + UDP side
 * session.c detects the protocol from the first byte (0x80 = binary request
 * magic) and calls mc_text_feed() or mc_binary_feed(). Each side keeps its
 * parser state in its own struct (mc_text.h, mc_binary.h) inside the
 * session's union.
 */
#ifndef DPCACHE_MC_INTERNAL_H
#define DPCACHE_MC_INTERNAL_H

#include "dataplane/memcache/mc.h"
#include "dataplane/memcache/mc_binary.h"
#include "dataplane/memcache/mc_text.h"

/* Per-worker protocol counters, written only by the worker's thread (relaxed
 * stores), summed on read by 'stats'. Names are memcached's. */
#define MC_WORKER_STATS(X) \
	X(cmd_get)        X(cmd_set)       X(cmd_flush)     X(cmd_touch) \
	X(cmd_meta)       X(get_hits)      X(get_misses)    X(get_expired) \
	X(get_flushed)    X(delete_misses) X(delete_hits)   X(incr_misses) \
	X(incr_hits)      X(decr_misses)   X(decr_hits)     X(cas_misses) \
	X(cas_hits)       X(cas_badval)    X(touch_hits)    X(touch_misses) \
	X(store_too_large) X(store_no_memory) X(auth_cmds)  X(auth_errors) \
	X(bytes_read)     X(bytes_written) X(udp_dropped)   X(protocol_errors)

struct mc_worker_stats {
#define MC_X_FIELD(name) uint64_t name;
	MC_WORKER_STATS(MC_X_FIELD)
#undef MC_X_FIELD
};

/* Single-writer counter bump: a relaxed load+store, no lock prefix. */
#define MC_STAT_ADD(w, field, n) \
	__atomic_store_n(&(w)->stats.field, \
		__atomic_load_n(&(w)->stats.field, __ATOMIC_RELAXED) + (n), \
		__ATOMIC_RELAXED)
#define MC_STAT_INC(w, field) MC_STAT_ADD(w, field, 1)

struct mc_server {
	struct mc_server_config cfg;
	uint32_t started;                /* cache clock at creation */
	uint32_t verbosity;              /* atomic; 'verbosity' command */
	uint64_t curr_conns;             /* atomic */
	uint64_t total_conns;            /* atomic */
	uint64_t rejected_conns;         /* atomic */
	struct mc_worker *workers[MC_MAX_WORKERS];  /* registered under lock */
	unsigned nworkers;
	void *lock;                      /* pthread_mutex_t*, workers[] only */
};

struct mc_worker {
	struct mc_server *server;
	struct cache_thread *ct;
	struct mc_worker_stats stats;
	char scratch[512];               /* per-thread formatting space */
};

enum mc_proto { MC_PROTO_UNKNOWN = 0, MC_PROTO_TEXT, MC_PROTO_BINARY };

struct mc_session {
	struct mc_worker *w;
	enum mc_proto proto;
	union {
		struct mc_text_state text;
		struct mc_bin_state bin;
	};
};

/* The text side (text.c + meta.c): same contract as mc_session_feed. */
int mc_text_feed(struct mc_session *s, const char *in, size_t len,
		 size_t *consumed, struct mc_buf *out);
/* Frees what the text state holds (a half-received item). */
void mc_text_reset(struct mc_session *s);

/* The binary side (binary.c). */
int mc_binary_feed(struct mc_session *s, const char *in, size_t len,
		   size_t *consumed, struct mc_buf *out);
void mc_binary_reset(struct mc_session *s);

/*
 * One complete text request held in a buffer (UDP): runs it with a
 * throw-away session and appends the reply to 'out'. Returns 0, or -EINVAL if
 * the buffer does not hold exactly complete requests. Implemented by the
 * text side so UDP needs no second parser.
 */
int mc_text_run_buffer(struct mc_worker *w, const char *req, size_t len,
		       struct mc_buf *out);

/*
 * mc_text_run_buffer for a buffer that holds one command line and nothing
 * else, whose line end the caller (udp.c) has already found: 'line' is the
 * line without its "\n", and without the "\r" before it when the line is
 * longer than that "\r" alone (mc_text_feed's rule). Same replies, same
 * return; it saves the parser a second search for the line end.
 */
int mc_text_run_line(struct mc_worker *w, const char *line, size_t len,
		     struct mc_buf *out);

/*
 * The version every protocol reports. It leads with the memcached release
 * whose behaviour we match: libmemcached rejects a binary VERSION reply
 * whose major number is 0.
 */
#define MC_VERSION_STRING "1.6.18-dpcache-" DPCACHE_VERSION

/* Key rules shared by all protocols: 1..250 bytes. Like memcached, the text
 * parser splits on spaces only, so a text key holds no space or newline;
 * other control characters are accepted, as memcached accepts them. */
static inline bool mc_key_len_ok(size_t nkey)
{
	return nkey > 0 && nkey <= CACHE_KEY_MAX;
}

#endif /* DPCACHE_MC_INTERNAL_H */
