/*
 * dataplane/memcache/mc_internal.h - what the protocol files share and no
 * transport may use.
 *
 * Ownership of the files in this folder:
 *   server.c, session.c, buf.c, stats.c, text.c, meta.c  - text + meta side
 *   binary.c, udp.c                                      - binary + UDP side
 *   forward.c                                            - cluster: routing,
 *                                                          forwarding, answers
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
#include "replication/cluster.h"

/* Per-worker protocol counters, written only by the worker's thread (relaxed
 * stores), summed on read by 'stats'. Names are memcached's. */
#define MC_WORKER_STATS(X) \
	X(cmd_get)        X(cmd_set)       X(cmd_flush)     X(cmd_touch) \
	X(cmd_meta)       X(get_hits)      X(get_misses)    X(get_expired) \
	X(get_flushed)    X(delete_misses) X(delete_hits)   X(incr_misses) \
	X(incr_hits)      X(decr_misses)   X(decr_hits)     X(cas_misses) \
	X(cas_hits)       X(cas_badval)    X(touch_hits)    X(touch_misses) \
	X(store_too_large) X(store_no_memory) X(auth_cmds)  X(auth_errors) \
	X(bytes_read)     X(bytes_written) X(udp_dropped)   X(protocol_errors) \
	X(cmd_forward_text) X(cmd_forward_meta) X(cmd_forward_binary) \
	X(forward_errors) X(cmd_pull)      X(pull_errors)   X(peer_hellos)

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
	bool cluster;                    /* atomic; a worker joined a cluster
	                                    ('stats' adds the forwarding counters) */
	struct mc_worker *workers[MC_MAX_WORKERS];  /* registered under lock */
	unsigned nworkers;
	void *lock;                      /* pthread_mutex_t*, workers[] only */
};

struct mc_worker {
	struct mc_server *server;
	struct cache_thread *ct;
	struct cluster_worker *cluster;  /* NULL = single node */
	struct mc_worker_stats stats;
	char scratch[512];               /* per-thread formatting space */
};

enum mc_proto { MC_PROTO_UNKNOWN = 0, MC_PROTO_TEXT, MC_PROTO_BINARY };

struct mc_fwd;

struct mc_session {
	struct mc_worker *w;
	enum mc_proto proto;
	/* Cluster only: a TCP session's forwarding state (forward.c). NULL on
	 * a single node and in the throw-away sessions of UDP, which cannot
	 * wait: for them a non-owned key is refused. */
	struct mc_fwd *fwd;
	void (*wake)(void *arg);
	void *wake_arg;
	union {
		struct mc_text_state text;
		struct mc_bin_state bin;
	};
};

/* ---- cluster: forwarding (forward.c) ------------------------------------ */

/* What the answer of a forwarded request is turned into. */
enum mc_fwd_kind {
	MC_FWD_PULL = 0,       /* 'mg k v f t c' for a moving-in key: install */
	MC_FWD_TEXT_GET,       /* get gets gat gats: VA -> VALUE, EN -> nothing */
	MC_FWD_TEXT_TOUCH,     /* HD -> TOUCHED, EN -> NOT_FOUND */
	MC_FWD_TEXT_STORE,     /* HD NS EX NF -> STORED NOT_STORED EXISTS NOT_FOUND */
	MC_FWD_TEXT_DELETE,    /* HD NF -> DELETED NOT_FOUND */
	MC_FWD_TEXT_ARITH,     /* VA -> the number, NF -> NOT_FOUND */
	MC_FWD_META,           /* relayed as is, the client's q applied here */
	MC_FWD_BINARY,         /* into a binary response to the saved header */
	MC_FWD_BLOCK,          /* sync mode: 'dpc_inv <key> block' to each
	                          replica in turn, then run the write here */
};

enum mc_peer_role { MC_PEER_NONE = 0, MC_PEER_FWD, MC_PEER_FINAL,
		   MC_PEER_MIGRATE };

/*
 * One TCP session's forwarding state, allocated with the session when the
 * worker is a cluster node. At most one request is out per session: the
 * session waits for its answer before it parses anything else, so replies
 * keep the order of requests without any matching here.
 */
struct mc_fwd {
	struct fwd_req *req;        /* out at the forwarder; NULL when none */
	bool waiting;               /* req is out: feeds answer MC_FEED_WAIT */
	bool ready;                 /* 'reply' goes out before anything else */
	bool pulled;                /* the request being re-run pulled its key
	                               (or, MC_FWD_BLOCK, blocked its replicas) */
	uint8_t pull_kind;          /* MC_FWD_PULL: enum cluster_pull */
	uint8_t block_idx;          /* MC_FWD_BLOCK: the replica out now */
	uint64_t pull_gen;          /* MC_FWD_PULL: cluster_route's pull_gen */
	uint8_t peer_role;          /* enum mc_peer_role (dpc_peer hello) */
	uint8_t kind;               /* enum mc_fwd_kind of the request out */
	bool quiet;                 /* text noreply, meta q, binary quiet opcode */
	bool cas;                   /* MC_FWD_TEXT_GET: VALUE carries the cas */
	char meta_cmd;              /* MC_FWD_META: 'g' 's' 'd' 'a' */
	uint8_t bin_base;           /* MC_FWD_BINARY: opcode without quiet bit */
	uint8_t bin_mode;           /* MC_FWD_BINARY store: enum cache_store_mode */
	struct mc_bin_header bin;   /* MC_FWD_BINARY: the client's header */
	uint8_t nkey;
	char key[CACHE_KEY_MAX];    /* text VALUE line, binary k-variants, pull */
	uint64_t hash;
	bool final_hop;             /* sent on a 'final' connection */
	char peer[MAP_ADDR_MAX];    /* where the request went */
	char peer_id[MAP_ID_MAX];
	struct mc_buf req_buf;      /* the meta request being built */
	struct mc_buf reply;        /* the translated answer ('ready') */
};

/* What mc_fwd_route decided for one key. */
enum mc_route {
	MC_ROUTE_LOCAL = 0,    /* run here (r->moving_in: call
	                          mc_fwd_after_write after a write) */
	MC_ROUTE_FORWARD,      /* build fwd->req_buf, then mc_fwd_start */
	MC_ROUTE_PULL,         /* mc_fwd_pull, then run again */
	MC_ROUTE_REFUSED,      /* not ours and the session cannot wait (UDP),
	                          or no shard map yet */
};

/* A key this node cannot serve now: owned by another node and the session
 * cannot wait (UDP), or no shard map yet. */
#define MC_FWD_REFUSED_TEXT "SERVER_ERROR key not served by this node"

/* A session's request and answer buffers bigger than this are freed once
 * used, not kept for the connection's life. */
#define MC_FWD_BUF_KEEP (64 * 1024)

struct mc_fwd *mc_fwd_new(void);
void mc_fwd_free(struct mc_fwd **f);

/*
 * cluster_route for one key of a request on this session (w->cluster set):
 * peer sessions never forward, a migrate-role session never routes at all
 * (the stream's ms must neither pull nor make keys FRESH), a session
 * without forwarding state turns FORWARD into REFUSED (counted) and PULL
 * into LOCAL. Clears the 'pulled' mark: it is good for one decision. For
 * FORWARD it stores the peer in s->fwd and empties req_buf.
 */
enum mc_route mc_fwd_route(struct mc_session *s, const char *key, size_t nkey,
			   uint64_t hash, enum cluster_op op,
			   struct cluster_route *r);

/* Sends the pull for 'key' to r->peer. Returns true when it is out (the
 * caller waits and runs the request again); false when it failed at once
 * (the caller runs the request now, as after a miss). */
bool mc_fwd_pull(struct mc_session *s, const struct cluster_route *r,
		 const char *key, size_t nkey, uint64_t hash);

/* Sends s->fwd->req_buf (kind and context set by the caller) to the peer
 * mc_fwd_route saved. true: out, the session waits. false: failed at once,
 * the error reply is already in 'out'. */
bool mc_fwd_start(struct mc_session *s, struct mc_buf *out);

/* Appends the key to a meta request: as is, or base64 with the caller
 * adding ' b' (*b64 set) when it holds bytes a meta token cannot carry. */
int mc_fwd_put_key(struct mc_buf *b, const char *key, size_t nkey, bool *b64);

/* The error reply for a forward that failed (text/meta form). */
int mc_fwd_error_line(struct mc_buf *out, const char *peer_id, int err);

/* After a write that mc_fwd_route marked (r->moving_in): FRESH for a
 * moving-in key, invalidations for a replicated one (cluster_after_write). */
static inline void mc_fwd_after_write(struct mc_session *s, const char *key,
				      size_t nkey, uint64_t hash)
{
	cluster_after_write(s->w->cluster, key, nkey, hash);
}

/* binary.c, for the translation of forwarded answers. */
unsigned char *mc_bin_reply(struct mc_buf *out, const struct mc_bin_header *req,
			    uint16_t status, uint8_t extlen, uint16_t keylen,
			    uint32_t bodylen, uint64_t cas);
int mc_bin_error(struct mc_buf *out, const struct mc_bin_header *req,
		 uint16_t status, const char *text);

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
