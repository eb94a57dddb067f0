/*
 * dataplane/net/tcp.h - a server-side TCP (RFC 9293) for one polling core.
 *
 * One struct tcp_stack per polling core, share nothing: its connection table,
 * its SYN backlog, its timer wheel. Nothing here is thread-safe and nothing
 * needs to be: a flow is steered to one core for its whole life.
 *
 * The stack knows neither DPDK nor the memcached protocols. Below it, a
 * struct tcp_io gives it buffers for outgoing segments and sends them (the
 * caller adds IPv4/Ethernet headers and the checksum). Above it, a struct
 * tcp_app is told of new connections, readable bytes, freed send space and
 * closed connections. So unit tests drive it with in-memory segments and a
 * virtual clock.
 *
 * Time: every entry point uses the stack's notion of "now", set by
 * tcp_stack_tick() (microseconds, any monotonic origin); tick also fires the
 * timers that are due.
 *
 * Typical polling-loop use:
 *   tcp_stack_tick(st, now_us);           timers: RTO, persist, delayed ACK,
 *                                         TIME_WAIT, SYN-RECEIVED expiry
 *   for each received TCP segment:
 *       tcp_input(st, src_ip, dst_ip, seg, len);  may call app callbacks
 *   tcp_stack_flush(st);                  sends data queued by the app with
 *                                         the pending ACK piggy-backed, and
 *                                         ACKs that cannot wait
 *
 * Addresses and ports in this API are in host byte order; segments are raw
 * network-order TCP headers + payload.
 */
#ifndef DPCACHE_NET_TCP_H
#define DPCACHE_NET_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tcp_stack;
struct tcp_conn;

/* Connection states of RFC 9293 (LISTEN is implicit: any port in the
 * stack's listening set). */
enum tcp_state {
	TCP_SYN_RECEIVED,
	TCP_ESTABLISHED,
	TCP_CLOSE_WAIT,
	TCP_LAST_ACK,
	TCP_FIN_WAIT_1,
	TCP_FIN_WAIT_2,
	TCP_CLOSING,
	TCP_TIME_WAIT,
	TCP_CLOSED,
	TCP_STATE_COUNT
};

struct tcp_config {
	uint32_t local_ip;          /* our address (host order) */
	uint16_t listen_port;       /* the one port we accept on (host order) */
	uint8_t isn_key[16];        /* RFC 6528 secret, random per process */
	unsigned max_conns;         /* connections of this core, all states but TIME_WAIT; 0 = 65536 */
	unsigned syn_backlog;       /* SYN-RECEIVED connections of this core; 0 = 1024 */
	unsigned time_wait_max;     /* compact TIME_WAIT records; 0 = 65536 */
	uint16_t mss;               /* MSS we announce (receive side); 0 = 1460 */
	uint32_t rcv_buf;           /* receive buffer per connection, bytes; 0 = 256 KiB */
	uint32_t snd_buf;           /* send buffer per connection, bytes; 0 = 256 KiB */
	bool window_scaling;        /* RFC 7323 WS option */
	bool timestamps;            /* RFC 7323 TS option */
	uint32_t rto_min_us;        /* RFC 6298 lower bound; 0 = 200 ms */
	uint32_t rto_initial_us;    /* before any RTT sample; 0 = 1 s */
	uint32_t rto_max_us;        /* backoff ceiling; 0 = 60 s */
	unsigned max_retries;       /* abort a connection after this many RTOs in a row; 0 = 8 */
	unsigned syn_retries;       /* SYN-ACK retransmissions before dropping; 0 = 4 */
	uint32_t delack_us;         /* delayed ACK timeout, <= 500 ms; 0 = 10 ms */
	uint32_t time_wait_us;      /* TIME_WAIT length; 0 = 1 s (short by design: server side) */
	uint32_t persist_max_us;    /* zero-window probe interval ceiling; 0 = 60 s */
	unsigned ooo_max_segs;      /* out-of-order segments kept per connection; 0 = 64 */
	uint32_t timer_tick_us;     /* timer wheel granularity; 0 = 1 ms */
};

/* Below: buffers and transmission. 'io' is the opaque pointer given to
 * tcp_stack_create. */
struct tcp_io {
	/* A buffer for one outgoing segment of 'len' bytes (TCP header, options
	 * and payload). *pkt receives a handle for seg_send. NULL when out of
	 * buffers: the segment counts as lost (timers recover). */
	uint8_t *(*seg_alloc)(void *io, size_t len, void **pkt);
	/* Sends the segment built in the buffer. The TCP checksum field is
	 * left 0: the caller computes it (or sets up offload) over the IPv4
	 * pseudo-header. Addresses host order. */
	void (*seg_send)(void *io, void *pkt, uint32_t local_ip,
			 uint32_t remote_ip, size_t len);
};

/* Above: the application (the memcached session glue). 'arg' is the opaque
 * pointer given to tcp_stack_create; 'ctx' is what accepted() returned. */
struct tcp_app {
	/* The three-way handshake completed. Returns the connection's app
	 * context, or NULL to refuse it (the stack sends RST). */
	void *(*accepted)(void *arg, struct tcp_conn *c);
	/* New in-order bytes (tcp_recv_peek) or the peer's FIN
	 * (tcp_conn_peer_closed) arrived. */
	void (*readable)(void *arg, void *ctx);
	/* Send-buffer space was freed by an ACK. */
	void (*writable)(void *arg, void *ctx);
	/* The connection is gone (closed both ways, reset, or aborted after
	 * retransmissions). No further callbacks for ctx; the app drops its
	 * tcp_conn pointer and frees ctx. Not called for connections that never
	 * reached accepted(). */
	void (*closed)(void *arg, void *ctx);
};

/* Per-core counters, read by other threads without locks (plain uint64_t
 * written only by the owning core; a torn read is impossible on x86-64). */
#define TCP_COUNTERS(X)                                                        \
	X(segs_in, "segments received")                                        \
	X(segs_out, "segments sent")                                           \
	X(retransmits, "segments retransmitted (RTO and fast)")                \
	X(fast_retransmits, "fast retransmits (RFC 5681)")                     \
	X(rto_fired, "retransmission timeouts")                                \
	X(syn_received, "SYNs accepted into the backlog")                      \
	X(syn_backlog_drops, "SYNs dropped: backlog full")                     \
	X(conn_limit_drops, "SYNs dropped: max_conns reached")                 \
	X(accepts, "connections established")                                  \
	X(aborts, "connections aborted after max retries")                     \
	X(resets_in, "RSTs received and accepted")                             \
	X(resets_out, "RSTs sent")                                             \
	X(challenge_acks, "RFC 5961 challenge ACKs sent")                      \
	X(bad_segments, "segments dropped: malformed header or options")       \
	X(unacceptable, "segments failing the acceptability test")             \
	X(ooo_queued, "out-of-order segments queued")                          \
	X(ooo_drops, "out-of-order segments dropped: queue full")              \
	X(rcv_window_drops, "bytes beyond the receive window dropped")         \
	X(persist_probes, "zero-window probes sent")                           \
	X(delayed_acks, "ACKs sent by the delayed-ACK timer")                  \
	X(time_wait_reuse, "TIME_WAIT records reused by a new SYN")            \
	X(alloc_failures, "segments not sent: no buffer")

struct tcp_counters {
#define TCP_COUNTER_FIELD(name, desc) uint64_t name;
	TCP_COUNTERS(TCP_COUNTER_FIELD)
#undef TCP_COUNTER_FIELD
	uint64_t conns_in_state[TCP_STATE_COUNT];  /* gauges; TIME_WAIT = records */
};

/* ---- the per-core stack ------------------------------------------------- */

/* NULL on bad config or no memory. Any thread; then used by one thread. */
struct tcp_stack *tcp_stack_create(const struct tcp_config *cfg,
				   const struct tcp_io *io_ops, void *io,
				   const struct tcp_app *app_ops, void *app_arg,
				   uint64_t now_us);
/* Frees every connection without sending anything and without app
 * callbacks. Accepts NULL; sets *st to NULL. */
void tcp_stack_destroy(struct tcp_stack **st);

/* Sets "now" and runs every timer due by then. */
void tcp_stack_tick(struct tcp_stack *st, uint64_t now_us);

/*
 * One received TCP segment (header + payload, network order), already
 * checked by the caller for IPv4 validity and TCP checksum. 'len' is the
 * TCP length from the IPv4 total length. Drops (and counts) a malformed
 * header. May call app callbacks; may queue output.
 */
void tcp_input(struct tcp_stack *st, uint32_t remote_ip, uint32_t local_ip,
	       const uint8_t *seg, size_t len);

/* Sends what is queued: app data (within the send window and congestion
 * window), pending ACKs that must go now, window updates. Call once per
 * polling iteration after input and app processing. */
void tcp_stack_flush(struct tcp_stack *st);

const struct tcp_counters *tcp_stack_counters(const struct tcp_stack *st);

/* ---- one connection (app side; only from callbacks or the same thread) --- */

/* The contiguous in-order bytes received and not yet consumed. */
size_t tcp_recv_peek(struct tcp_conn *c, const uint8_t **data);
/* Consumes n bytes; reopens the receive window (a window update goes out
 * at flush when the window grew enough, RFC 9293 3.8.6.2.2). */
void tcp_recv_consume(struct tcp_conn *c, size_t n);
/* True once the peer's FIN has been received and every byte before it
 * consumed. */
bool tcp_conn_peer_closed(const struct tcp_conn *c);

/* Free space in the send buffer, bytes. */
size_t tcp_send_space(const struct tcp_conn *c);
/* Queues up to n bytes (copied); returns how many were taken (less than n
 * when the send buffer is full: wait for writable()). Sent at flush. */
size_t tcp_send(struct tcp_conn *c, const void *data, size_t n);
/* Bytes queued and not yet acknowledged by the peer. */
size_t tcp_send_queued(const struct tcp_conn *c);

/* Orderly close: FIN after all queued data. The app keeps ctx until
 * closed(). */
void tcp_close(struct tcp_conn *c);
/* Abortive close: RST now, queued data dropped. closed() follows at once. */
void tcp_abort(struct tcp_conn *c);

enum tcp_state tcp_conn_state(const struct tcp_conn *c);
void tcp_conn_addrs(const struct tcp_conn *c, uint32_t *remote_ip,
		    uint16_t *remote_port, uint32_t *local_ip,
		    uint16_t *local_port);

#endif /* DPCACHE_NET_TCP_H */
