/*
 * dataplane/net/tcp.c - server-side TCP (RFC 9293) for one polling core.
 *
 * Design note.
 *
 * Connections. One struct tcp_conn per connection from SYN-RECEIVED to the
 * end of LAST-ACK/CLOSING/FIN-WAIT, found through a chained hash of the
 * 4-tuple (bucket array sized from max_conns, seeded multiply-xorshift, so a
 * lookup is one multiply and a short chain). Buffers are allocated lazily
 * and grow by doubling up to rcv_buf/snd_buf, so an idle connection costs
 * only its struct. TIME-WAIT is not a connection: it is a 40-byte record in
 * a FIFO ring (every record lives exactly time_wait_us, so expiry order is
 * insertion order and no timer is needed) with its own small hash.
 *
 * Receive buffer. One contiguous region: [rb_off, rb_off + rb_len) holds the
 * in-order bytes not yet consumed (what tcp_recv_peek returns); out-of-order
 * data is stored right where it belongs after that, at rb_off + rb_len +
 * (seq - rcv_nxt), and a small sorted array of [start, end) sequence ranges
 * (at most ooo_max_segs) says what is there. When the hole fills, rcv_nxt
 * simply jumps over the ranges: no copy. The buffer is compacted (memmove to
 * offset 0) only when a segment would not fit behind it.
 *
 * Send buffer. A power-of-two ring holding every byte from snd_una on
 * (unacknowledged, then unsent). Retransmissions read from it; an ACK just
 * advances its head. tcp_send copies in and returns less when snd_buf is
 * reached (backpressure).
 *
 * Output. tcp_send/tcp_close/tcp_recv_consume and input that leaves an ACK
 * pending only put the connection on the stack's "dirty" list; the segments
 * are built at tcp_stack_flush, where queued data goes out in MSS-sized
 * segments within min(cwnd, snd_wnd), each carrying the current ACK (so the
 * ACK for a request rides on its response). A pure ACK leaves at flush only
 * when RFC 5681 4.2 requires it (two full-sized segments unacked), for a
 * window update, or when the delayed-ACK timer fires. Out-of-order data,
 * duplicates, unacceptable segments and RFC 5961 challenges are ACKed at
 * once (the peer's fast retransmit counts those duplicate ACKs).
 *
 * Timers. Two per connection on the core's timer wheel: 'rtx' (SYN-ACK
 * retransmission, RTO, zero-window persist and the FIN-WAIT-2 limit, which
 * never overlap) and 'dack' (delayed ACK).
 *
 * Re-entrancy. The app may call any tcp_* function for any connection from
 * inside a callback. A connection that dies (RST, abort, close finished) is
 * unhashed and its timers cancelled at once, its closed() is called, and its
 * memory goes on a dead list freed only at the end of the outermost stack
 * entry point (tcp_input, tcp_stack_tick, tcp_stack_flush), so no code up
 * the stack ever touches freed memory; code after a callback checks
 * c->state == TCP_CLOSED instead.
 *
 * Input. The next in-order segment of an ESTABLISHED connection with
 * nothing unusual about it takes a header-prediction fast path
 * (fast_path()); everything else goes through the full RFC 9293 3.10.7.4
 * sequence: PAWS, acceptability, RST (RFC 5961 exact match, else a
 * rate-limited challenge ACK), SYN (challenge ACK), ACK, data, FIN.
 *
 * RTT. One segment of new data per flight is timed with the microsecond
 * clock; a segment sent again is never timed (Karn). After a
 * retransmission, the TSecr of the next ACK is the one unambiguous sample
 * (RFC 7323 4.1). TSval is the millisecond clock plus a per-connection
 * offset from the ISN hash.
 *
 * Congestion. IW per RFC 6928, slow start and congestion avoidance per
 * RFC 5681, NewReno recovery per RFC 6582, go-back-N from SND.UNA on an
 * RTO. cwnd grows only while it is what limits the sender (the spirit of
 * RFC 7661), so request/response traffic does not inflate it.
 *
 * Sequence numbers compare modulo 2^32 (RFC 9293 3.4); times are integer
 * microseconds; no floating point anywhere.
 */
#include "dataplane/net/tcp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/net/timer.h"

#define SEQ_LT(a, b)  ((int32_t)((uint32_t)(a) - (uint32_t)(b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) <= 0)
#define SEQ_GT(a, b)  SEQ_LT(b, a)
#define SEQ_GEQ(a, b) SEQ_LEQ(b, a)

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

#define TCP_HDR_LEN      20
#define TCP_TS_OPT_LEN   12          /* NOP NOP TS(10) */
#define TCP_MAX_WSCALE   14          /* RFC 7323 2.3 */
#define TCP_DEFAULT_MSS  536         /* RFC 9293 3.7.1 */
#define TCP_FIN_WAIT_2_US (60ull * 1000000)
#define TCP_CHALLENGE_PER_SEC 1000   /* RFC 5961 7: per core */
#define TCP_RB_MIN       512
#define TCP_SB_MIN       2048

/* ---- SipHash-2-4 (Aumasson, Bernstein 2012), for RFC 6528 ISNs --------- */

static inline uint64_t rotl64(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

static inline uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

#define SIPROUND                                                         \
	do {                                                             \
		v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0;                 \
		v0 = rotl64(v0, 32);                                     \
		v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2;                 \
		v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0;                 \
		v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2;                 \
		v2 = rotl64(v2, 32);                                     \
	} while (0)

static uint64_t siphash24(const uint8_t key[16], const uint8_t *m, size_t n)
{
	uint64_t k0 = le64(key), k1 = le64(key + 8);
	uint64_t v0 = k0 ^ 0x736f6d6570736575ull;
	uint64_t v1 = k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ull;
	uint64_t v3 = k1 ^ 0x7465646279746573ull;
	uint64_t b = (uint64_t)n << 56, mi;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		mi = le64(m + i);
		v3 ^= mi;
		SIPROUND;
		SIPROUND;
		v0 ^= mi;
	}
	for (size_t j = 0; i + j < n; j++)
		b |= (uint64_t)m[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- structures ---------------------------------------------------------- */

struct tcp_ooo {
	uint32_t start, end;         /* [start, end) sequence range present */
};

struct tcp_conn {
	struct tcp_conn *hnext;      /* hash chain; the dead list once unhashed */
	struct tcp_conn *dnext;      /* the stack's dirty list */
	struct tcp_stack *st;
	void *ctx;

	uint32_t rip, lip;
	uint16_t rport, lport;
	uint8_t state;
	uint8_t snd_ws, rcv_ws;      /* shift counts (0 when WS not agreed) */

	bool ts_ok;                  /* both sides sent TS in SYN/SYN-ACK */
	bool ws_ok;                  /* both sides sent WS */
	bool accepted;               /* accepted() returned a ctx */
	bool in_dirty;
	bool fin_queued;             /* app closed: FIN after the data */
	bool fin_rcvd;               /* peer's FIN consumed (rcv_nxt past it) */
	bool ooo_fin;                /* peer FIN seen beyond a hole */
	bool ack_now;                /* a pure ACK must go at flush */
	bool wnd_update;             /* window reopened enough: tell the peer */
	bool persist;                /* rtx timer is the persist timer */
	bool rtt_timing;             /* rtt_seq/rtt_start time one segment */
	bool in_recovery;            /* RFC 6582 fast recovery */
	bool rexmit_since_ack;       /* Karn: something was retransmitted */
	bool rtt_valid;              /* srtt/rttvar hold a measurement */
	bool writable_due;           /* ACK freed send space: tell the app */
	bool cwnd_limited;           /* last output stopped at cwnd */

	/* send side (RFC 9293 3.3.1) */
	uint32_t iss, snd_una, snd_nxt, snd_max;
	uint32_t snd_wnd, snd_wl1, snd_wl2, max_snd_wnd;
	uint32_t fin_seq;            /* valid when fin_queued */
	uint16_t smss;               /* payload per segment (options taken off) */
	uint16_t peer_mss;
	uint16_t rcv_mss;            /* largest payload seen (RFC 5681 4.2's
				      * "full-sized"), at most our MSS */
	uint32_t cwnd, ssthresh, recover;
	unsigned dupacks;

	/* receive side */
	uint32_t irs, rcv_nxt, rcv_adv;   /* rcv_adv: right edge announced */
	uint32_t last_ack_sent;
	uint32_t last_wnd_sent;           /* bytes, unscaled */
	uint32_t ooo_fin_seq;
	uint32_t ts_recent, ts_off;

	/* RFC 6298, microseconds */
	uint32_t srtt, rttvar, rto;
	uint32_t rtt_seq;
	uint64_t rtt_start;
	unsigned retries;                 /* RTOs in a row, SYN-ACK resends, or
					   * unanswered zero-window probes */
	unsigned persist_shift;

	/* receive buffer */
	uint8_t *rb;
	uint32_t rb_cap, rb_off, rb_len;
	struct tcp_ooo *ooo;
	unsigned ooo_n;

	/* send buffer: ring, sb_head = index of the byte at snd_una */
	uint8_t *sb;
	uint32_t sb_cap, sb_head, sb_len;

	struct tw_timer rtx, dack;
};

struct tcp_tw {                      /* compact TIME-WAIT record */
	uint32_t rip, lip;
	uint16_t rport, lport;
	uint32_t snd_nxt, rcv_nxt;
	uint32_t ts_recent, ts_off;
	uint32_t hnext;                  /* index + 1; 0 ends the chain */
	uint8_t live, has_ts, rcv_ws;
	uint64_t expire;
};

struct tcp_stack {
	struct tcp_config cfg;
	struct tcp_io io_ops;
	void *io;
	struct tcp_app app;
	void *app_arg;
	uint64_t now;
	uint64_t hseed;

	struct tcp_conn **htab;
	uint32_t hmask;
	unsigned nconns, nsynrcvd;

	struct tw_wheel *wheel;
	struct tcp_conn *dirty;
	struct tcp_conn *dead;
	unsigned depth;                  /* nesting of entry points */

	struct tcp_tw *tw;               /* ring of time_wait_max records */
	uint32_t *tw_hash;               /* index + 1 */
	uint32_t tw_hmask, tw_head, tw_count;

	uint8_t rcv_ws;                  /* shift we announce */
	uint64_t chal_sec;
	unsigned chal_count;

	struct tcp_counters c;
};

/* A parsed incoming segment. */
struct tcp_seg {
	uint32_t seq, ack;
	uint32_t len;                    /* payload bytes */
	uint32_t wnd;                    /* raw field */
	uint8_t flags;
	const uint8_t *data;
	bool has_mss, has_ws, has_ts;
	uint16_t mss;
	uint8_t ws;
	uint32_t tsval, tsecr;
};

/* ---- small helpers ------------------------------------------------------- */

/* Network byte order through memcpy + bswap: one load/store each. */
static inline void wr16(uint8_t *p, uint16_t v)
{
	v = __builtin_bswap16(v);
	memcpy(p, &v, 2);
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	v = __builtin_bswap32(v);
	memcpy(p, &v, 4);
}

static inline uint16_t rd16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return __builtin_bswap16(v);
}

static inline uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return __builtin_bswap32(v);
}

static inline uint32_t min32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static inline uint32_t max32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

static inline uint32_t tcp_hash(const struct tcp_stack *st, uint32_t rip,
				uint16_t rport, uint16_t lport)
{
	uint64_t x = ((uint64_t)rip << 32 | (uint32_t)rport << 16 | lport) ^
		     st->hseed;

	x *= 0x9e3779b97f4a7c15ull;
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	return (uint32_t)(x >> 32);
}

static inline uint32_t ts_now(const struct tcp_stack *st, uint32_t off)
{
	return (uint32_t)(st->now / 1000) + off;     /* 1 ms TS clock */
}

static void set_state(struct tcp_conn *c, enum tcp_state s)
{
	c->st->c.conns_in_state[c->state]--;
	c->st->c.conns_in_state[s]++;
	c->state = s;
}

static void mark_dirty(struct tcp_conn *c)
{
	if (c->in_dirty || c->state == TCP_CLOSED)
		return;
	c->in_dirty = true;
	c->dnext = c->st->dirty;
	c->st->dirty = c;
}

/* ---- segment output ------------------------------------------------------ */

/* Builds and sends one segment from explicit fields (used for RSTs and
 * TIME-WAIT ACKs where there is no connection too). Inlined: it is on the
 * path of every segment and takes 13 arguments. */
static inline __attribute__((always_inline)) int
emit(struct tcp_stack *st, uint32_t lip, uint32_t rip, uint16_t lport,
     uint16_t rport, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t wnd,
     const uint8_t *opts, unsigned optlen, const struct tcp_conn *c,
     uint32_t doff, uint32_t dlen)
{
	void *pkt;
	size_t hlen = TCP_HDR_LEN + optlen, len = hlen + dlen;
	uint8_t *p = st->io_ops.seg_alloc(st->io, len, &pkt);

	if (!p) {
		st->c.alloc_failures++;
		return -ENOBUFS;
	}
	wr16(p, lport);
	wr16(p + 2, rport);
	wr32(p + 4, seq);
	wr32(p + 8, ack);
	p[12] = (uint8_t)((hlen / 4) << 4);
	p[13] = flags;
	wr16(p + 14, wnd);
	wr16(p + 16, 0);
	wr16(p + 18, 0);
	if (optlen == TCP_TS_OPT_LEN)
		memcpy(p + TCP_HDR_LEN, opts, TCP_TS_OPT_LEN);  /* common case */
	else if (optlen)
		memcpy(p + TCP_HDR_LEN, opts, optlen);
	if (dlen) {
		/* Copy out of the send ring, maybe in two pieces. */
		uint32_t mask = c->sb_cap - 1;
		uint32_t i = (c->sb_head + doff) & mask;
		uint32_t first = min32(dlen, c->sb_cap - i);

		memcpy(p + hlen, c->sb + i, first);
		if (first < dlen)
			memcpy(p + hlen + first, c->sb, dlen - first);
	}
	st->io_ops.seg_send(st->io, pkt, lip, rip, len);
	st->c.segs_out++;
	if (flags & TH_RST)
		st->c.resets_out++;
	return 0;
}

static unsigned put_ts(uint8_t *o, uint32_t tsval, uint32_t tsecr)
{
	o[0] = 1;
	o[1] = 1;
	o[2] = 8;
	o[3] = 10;
	wr32(o + 4, tsval);
	wr32(o + 8, tsecr);
	return TCP_TS_OPT_LEN;
}

/*
 * The window we announce now and its scaled field value. The right edge
 * never moves left (RFC 9293 3.8.6.2.1), and it moves right only by at
 * least min(RCV.BUFF / 2, MSS) (receiver SWS avoidance, 3.8.6.2.2), so a
 * closed window reopens straight to a useful size.
 */
static uint16_t rcv_window(struct tcp_conn *c)
{
	struct tcp_stack *st = c->st;
	uint32_t space = st->cfg.rcv_buf - c->rb_len;
	uint32_t old = c->rcv_adv - c->rcv_nxt, field;

	if (SEQ_LT(c->rcv_adv, c->rcv_nxt))
		old = 0;
	if (c->fin_rcvd)
		space = 0;   /* nothing more can come; keep the edge */
	if (space > (0xffffu << c->rcv_ws))
		space = 0xffffu << c->rcv_ws;
	if (space < old + min32(st->cfg.rcv_buf / 2, st->cfg.mss))
		space = old;
	field = space >> c->rcv_ws;
	if ((field << c->rcv_ws) < old)   /* round up rather than shrink */
		field = (old + (1u << c->rcv_ws) - 1) >> c->rcv_ws;
	if (field > 0xffff)
		field = 0xffff;
	if (SEQ_GT(c->rcv_nxt + (field << c->rcv_ws), c->rcv_adv))
		c->rcv_adv = c->rcv_nxt + (field << c->rcv_ws);
	c->last_wnd_sent = field << c->rcv_ws;
	return (uint16_t)field;
}

/* One segment of a connection: [seq, seq + dlen) from the send ring plus
 * the given flags; ACK, window and the TS option always. A SYN-ACK carries
 * MSS, WS and TS and an unscaled window (RFC 7323 2.2). */
static int conn_emit(struct tcp_conn *c, uint32_t seq, uint32_t dlen,
		     uint8_t flags)
{
	struct tcp_stack *st = c->st;
	uint8_t opts[40];
	unsigned ol = 0;
	uint16_t wnd;
	int rc;

	if (flags & TH_SYN) {
		uint32_t space = st->cfg.rcv_buf;

		opts[ol++] = 2;
		opts[ol++] = 4;
		wr16(opts + ol, st->cfg.mss);
		ol += 2;
		if (c->ws_ok) {
			opts[ol++] = 1;
			opts[ol++] = 3;
			opts[ol++] = 3;
			opts[ol++] = c->rcv_ws;
		}
		if (c->ts_ok)
			ol += put_ts(opts + ol, ts_now(st, c->ts_off),
				     c->ts_recent);
		wnd = (uint16_t)min32(space, 0xffff);
		c->rcv_adv = c->rcv_nxt + wnd;
		c->last_wnd_sent = wnd;
	} else {
		if (c->ts_ok)
			ol += put_ts(opts + ol, ts_now(st, c->ts_off),
				     c->ts_recent);
		wnd = rcv_window(c);
	}
	rc = emit(st, c->lip, c->rip, c->lport, c->rport, seq, c->rcv_nxt,
		  flags | TH_ACK, wnd, opts, ol, c, seq - c->snd_una, dlen);
	if (rc == 0) {
		c->last_ack_sent = c->rcv_nxt;
		c->ack_now = false;
		c->wnd_update = false;
		tw_timer_cancel(&c->dack);
	}
	return rc;
}

/* Pure ACK (or a re-ACK of an unacceptable segment) right now. */
static void send_ack(struct tcp_conn *c)
{
	conn_emit(c, c->snd_nxt, 0, 0);
}

/* RFC 5961 7: challenge ACKs, at most TCP_CHALLENGE_PER_SEC per core. */
static void challenge_ack(struct tcp_conn *c)
{
	struct tcp_stack *st = c->st;
	uint64_t sec = st->now / 1000000;

	if (sec != st->chal_sec) {
		st->chal_sec = sec;
		st->chal_count = 0;
	}
	if (st->chal_count >= TCP_CHALLENGE_PER_SEC)
		return;
	st->chal_count++;
	st->c.challenge_acks++;
	send_ack(c);
}

/* ---- connection table ---------------------------------------------------- */

static struct tcp_conn *conn_lookup(struct tcp_stack *st, uint32_t rip,
				    uint16_t rport, uint16_t lport)
{
	struct tcp_conn *c = st->htab[tcp_hash(st, rip, rport, lport) &
				      st->hmask];

	for (; c; c = c->hnext)
		if (c->rip == rip && c->rport == rport && c->lport == lport)
			return c;
	return NULL;
}

static void conn_unhash(struct tcp_conn *c)
{
	struct tcp_stack *st = c->st;
	struct tcp_conn **pp = &st->htab[tcp_hash(st, c->rip, c->rport,
						  c->lport) & st->hmask];

	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			c->hnext = NULL;
			return;
		}
}

/*
 * The connection is over: unhash it, stop its timers and tell the app
 * (once, and only if accepted() took it). Memory is freed later by
 * reap_dead(), so callers up the stack may still look at c->state.
 */
static void conn_kill(struct tcp_conn *c)
{
	struct tcp_stack *st = c->st;

	if (c->state == TCP_CLOSED)
		return;
	if (c->state == TCP_SYN_RECEIVED)
		st->nsynrcvd--;
	st->nconns--;
	set_state(c, TCP_CLOSED);
	conn_unhash(c);
	tw_timer_cancel(&c->rtx);
	tw_timer_cancel(&c->dack);
	c->hnext = st->dead;     /* hnext is free now: the dead list */
	st->dead = c;
	if (c->accepted) {       /* closed() exactly once */
		c->accepted = false;
		if (st->app.closed)
			st->app.closed(st->app_arg, c->ctx);
	}
}

static void conn_free(struct tcp_conn *c)
{
	free(c->rb);
	free(c->sb);
	free(c->ooo);
	free(c);
}

/* Frees dead connections once no entry point is running. One still on the
 * dirty list is unlinked from it first (a walk, but only on a death). */
static void reap_dead_slow(struct tcp_stack *st)
{
	struct tcp_conn *c, **pp;

	while ((c = st->dead) != NULL) {
		st->dead = c->hnext;
		if (c->in_dirty) {
			for (pp = &st->dirty; *pp; pp = &(*pp)->dnext)
				if (*pp == c) {
					*pp = c->dnext;
					break;
				}
		}
		st->c.conns_in_state[TCP_CLOSED]--;
		conn_free(c);
	}
}

static inline void reap_dead(struct tcp_stack *st)
{
	if (st->dead && !st->depth)
		reap_dead_slow(st);
}

/* ---- RTT and RTO (RFC 6298) ---------------------------------------------- */

static void rtt_sample(struct tcp_conn *c, uint32_t r)
{
	const struct tcp_config *cfg = &c->st->cfg;
	uint32_t var4;

	if (!r)
		r = 1;
	if (!c->rtt_valid) {
		c->srtt = r;                       /* 2.2 */
		c->rttvar = r / 2;
		c->rtt_valid = true;
	} else {                                   /* 2.3, beta 1/4 alpha 1/8 */
		uint32_t d = c->srtt > r ? c->srtt - r : r - c->srtt;

		c->rttvar = (3 * c->rttvar + d) / 4;
		c->srtt = (7 * c->srtt + r) / 8;
	}
	var4 = 4 * c->rttvar;
	if (var4 < cfg->timer_tick_us)
		var4 = cfg->timer_tick_us;         /* max(G, K*RTTVAR) */
	c->rto = c->srtt + var4;
	if (c->rto < cfg->rto_min_us)
		c->rto = cfg->rto_min_us;
	if (c->rto > cfg->rto_max_us)
		c->rto = cfg->rto_max_us;
}

static void arm_rtx(struct tcp_conn *c, uint64_t after_us)
{
	tw_timer_arm(c->st->wheel, &c->rtx, c->st->now + after_us);
}

/* ---- send side ------------------------------------------------------------ */

static inline uint32_t data_end(const struct tcp_conn *c)
{
	return c->snd_una + c->sb_len;     /* sequence after the last byte */
}

/* Resends the first unacknowledged segment (RTO, fast retransmit, partial
 * ACK): data from snd_una, or the FIN alone. */
static void retransmit_una(struct tcp_conn *c)
{
	/* Only bytes sent before (below SND.MAX): never new data, which may
	 * lie beyond the peer's window and which SND.MAX would not cover. */
	uint32_t n = min32(min32(c->sb_len, c->smss), c->snd_max - c->snd_una);
	uint8_t fl = 0;

	if (n && n == c->sb_len)
		fl |= TH_PSH;
	if (c->fin_queued && c->snd_una + n == c->fin_seq &&
	    SEQ_GT(c->snd_max, c->fin_seq))
		fl |= TH_FIN;
	if (!n && !(fl & TH_FIN))
		return;
	c->rtt_timing = false;             /* Karn */
	c->rexmit_since_ack = true;
	if (conn_emit(c, c->snd_una, n, fl) == 0)
		c->st->c.retransmits++;
	n += !!(fl & TH_FIN);
	if (SEQ_LT(c->snd_nxt, c->snd_una + n))
		c->snd_nxt = c->snd_una + n;
}

/* Sends what cwnd and the peer's window allow, FIN when the data is out,
 * and a pure ACK if one is owed and nothing else carried it. */
static void conn_output(struct tcp_conn *c)
{
	struct tcp_stack *st = c->st;
	uint32_t end, win, flight, n;
	bool sent = false, lost, limited = false;

	switch (c->state) {
	case TCP_ESTABLISHED:
	case TCP_CLOSE_WAIT:
	case TCP_FIN_WAIT_1:
	case TCP_CLOSING:
	case TCP_LAST_ACK:
		break;
	case TCP_FIN_WAIT_2:
		goto ack;
	default:
		return;
	}
	end = data_end(c);
	win = min32(c->snd_wnd, c->cwnd);
	while (!c->persist && SEQ_LT(c->snd_nxt, end)) {
		uint8_t fl = 0;

		flight = c->snd_nxt - c->snd_una;
		if (flight >= win) {
			limited = true;
			break;
		}
		n = min32(min32(end - c->snd_nxt, c->smss), win - flight);
		/* Receiver SWS (RFC 9293 3.8.6.2.1) is the peer's job; we only
		 * avoid splitting a segment we could send whole later when
		 * more of it is already in flight. */
		if (n < end - c->snd_nxt && n < c->smss && flight) {
			limited = true;
			break;
		}
		if (c->snd_nxt + n == end) {
			fl |= TH_PSH;
			if (c->fin_queued)
				fl |= TH_FIN;
		} else if (flight + n >= win) {
			fl |= TH_PSH;              /* last one this flush */
		}
		/* No buffer: the segment counts as sent and lost, so the RTO
		 * (armed below) recovers it; stop for this flush. */
		lost = conn_emit(c, c->snd_nxt, n, fl) != 0;
		if (!c->rtt_timing && SEQ_GEQ(c->snd_nxt, c->snd_max)) {
			/* Time new data only (Karn: not a resend after an
			 * RTO's go-back-N). */
			c->rtt_timing = true;
			c->rtt_seq = c->snd_nxt + n;
			c->rtt_start = st->now;
		}
		c->snd_nxt += n + !!(fl & TH_FIN);
		if (SEQ_GT(c->snd_nxt, c->snd_max))
			c->snd_max = c->snd_nxt;
		sent = true;
		if (lost)
			break;
	}
	/* RFC 7661: cwnd grows only while it is what limits us. */
	c->cwnd_limited = limited && c->cwnd <= c->snd_wnd;
	if (c->fin_queued && c->snd_nxt == c->fin_seq && !c->persist) {
		conn_emit(c, c->snd_nxt, 0, TH_FIN);   /* lost: RTO resends */
		c->snd_nxt++;
		if (SEQ_GT(c->snd_nxt, c->snd_max))
			c->snd_max = c->snd_nxt;
		sent = true;
	}
	if (c->snd_nxt != c->snd_una) {
		if (!tw_timer_armed(&c->rtx))
			arm_rtx(c, c->rto);
	} else if (c->snd_wnd == 0 && SEQ_LT(c->snd_nxt, end) &&
		   !tw_timer_armed(&c->rtx)) {
		/* RFC 9293 3.8.6.1: zero window with data waiting. */
		c->persist = true;
		c->persist_shift = 0;
		arm_rtx(c, c->rto);
	}
	if (sent)
		return;
ack:
	if (c->ack_now || c->wnd_update ||
	    c->rcv_nxt - c->last_ack_sent >= 2u * c->rcv_mss)
		send_ack(c);
	else if (c->rcv_nxt != c->last_ack_sent && !tw_timer_armed(&c->dack))
		tw_timer_arm(st->wheel, &c->dack, st->now + st->cfg.delack_us);
}

/* ---- receive side ---------------------------------------------------------- */

/* Room in the contiguous buffer for bytes up to 'need' past rb_off. */
static bool rb_room(struct tcp_conn *c, uint32_t need)
{
	struct tcp_stack *st = c->st;
	uint32_t max = st->cfg.rcv_buf + (1u << c->rcv_ws), cap;
	uint8_t *p;

	if (c->rb_off + need <= c->rb_cap)
		return true;
	if (c->rb_off) {
		uint32_t keep = c->rb_len;

		if (c->ooo_n)
			keep += c->ooo[c->ooo_n - 1].end - c->rcv_nxt;
		memmove(c->rb, c->rb + c->rb_off, keep);
		c->rb_off = 0;
		if (need <= c->rb_cap)
			return true;
	}
	if (need > max)
		return false;
	cap = c->rb_cap ? c->rb_cap : TCP_RB_MIN;
	while (cap < need)
		cap *= 2;
	if (cap > max)
		cap = max;
	p = realloc(c->rb, cap);
	if (!p)
		return false;
	c->rb = p;
	c->rb_cap = cap;
	return true;
}

/* Records [s, e) as present beyond the hole; false when the range table is
 * full and the range touches nothing already there. */
static bool ooo_add(struct tcp_conn *c, uint32_t s, uint32_t e)
{
	unsigned i = 0, j, n = c->ooo_n, max = c->st->cfg.ooo_max_segs;
	uint32_t ns = s, ne = e;

	if (!c->ooo) {
		c->ooo = malloc(max * sizeof(*c->ooo));
		if (!c->ooo)
			return false;
	}
	while (i < n && SEQ_LT(c->ooo[i].end, s))
		i++;
	j = i;
	while (j < n && SEQ_LEQ(c->ooo[j].start, e)) {
		if (SEQ_LT(c->ooo[j].start, ns))
			ns = c->ooo[j].start;
		if (SEQ_GT(c->ooo[j].end, ne))
			ne = c->ooo[j].end;
		j++;
	}
	if (j == i) {
		if (n >= max)
			return false;
		memmove(c->ooo + i + 1, c->ooo + i, (n - i) * sizeof(*c->ooo));
		c->ooo_n++;
	} else {
		memmove(c->ooo + i + 1, c->ooo + j, (n - j) * sizeof(*c->ooo));
		c->ooo_n -= j - i - 1;
	}
	c->ooo[i].start = ns;
	c->ooo[i].end = ne;
	return true;
}

/* Would [s, e) fit in the range table (merging or a free slot)? */
static bool ooo_fits(const struct tcp_conn *c, uint32_t s, uint32_t e)
{
	unsigned i;

	if (c->ooo_n < c->st->cfg.ooo_max_segs)
		return true;
	for (i = 0; i < c->ooo_n; i++)
		if (SEQ_LEQ(c->ooo[i].start, e) && SEQ_GEQ(c->ooo[i].end, s))
			return true;
	return false;
}

/* The peer's FIN is next in sequence: consume it (RFC 9293 3.10.7.4,
 * eighth step). Returns false when the connection ended. */
static void fin_in(struct tcp_conn *c)
{
	c->rcv_nxt++;
	c->fin_rcvd = true;
	c->ooo_fin = false;
	c->ack_now = true;
	mark_dirty(c);
	switch (c->state) {
	case TCP_ESTABLISHED:
		set_state(c, TCP_CLOSE_WAIT);
		break;
	case TCP_FIN_WAIT_1:
		set_state(c, TCP_CLOSING);    /* simultaneous close */
		break;
	default:
		break;
	}
}

/*
 * Payload of an acceptable segment. Returns true when new in-order bytes
 * (or the FIN) became readable.
 */
static bool data_in(struct tcp_conn *c, uint32_t seq, const uint8_t *d,
		    uint32_t len, bool fin)
{
	struct tcp_stack *st = c->st;
	uint32_t fin_seq = seq + len, lim, off;
	bool readable = false;

	if (len && SEQ_LT(seq, c->rcv_nxt)) {
		uint32_t skip = c->rcv_nxt - seq;

		if (skip >= len) {
			len = 0;
			seq = c->rcv_nxt;
		} else {
			d += skip;
			len -= skip;
			seq = c->rcv_nxt;
		}
		if (!len && !(fin && fin_seq == c->rcv_nxt)) {
			send_ack(c);           /* duplicate: ACK at once */
			return false;
		}
	}
	if (c->ooo_fin && SEQ_GT(fin_seq, c->ooo_fin_seq))
		return false;                  /* data beyond the peer's FIN */
	lim = c->rcv_adv;
	if (SEQ_GT(seq + len, lim)) {
		uint32_t cut = SEQ_GT(seq, lim) ? len : seq + len - lim;

		st->c.rcv_window_drops += cut;
		len -= cut;
		fin = false;
		c->ack_now = true;
		mark_dirty(c);
	}
	if (len) {
		off = seq - c->rcv_nxt;
		if (off && !ooo_fits(c, seq, seq + len)) {
			st->c.ooo_drops++;
			send_ack(c);
			return false;
		}
		if (!rb_room(c, c->rb_len + off + len)) {
			st->c.rcv_window_drops += len;
			send_ack(c);
			return false;
		}
		memcpy(c->rb + c->rb_off + c->rb_len + off, d, len);
		if (off) {
			ooo_add(c, seq, seq + len);
			st->c.ooo_queued++;
			if (fin) {
				c->ooo_fin = true;
				c->ooo_fin_seq = fin_seq;
			}
			send_ack(c);           /* RFC 5681 4.2: dup ACK now */
			return false;
		}
		if (len > c->rcv_mss)
			c->rcv_mss = (uint16_t)min32(len, st->cfg.mss);
		c->rb_len += len;
		c->rcv_nxt += len;
		readable = true;
		if (c->ooo_n) {
			/* A hole filled: jump over what is already here and
			 * ACK at once (RFC 5681 4.2). */
			while (c->ooo_n && SEQ_LEQ(c->ooo[0].start, c->rcv_nxt)) {
				if (SEQ_GT(c->ooo[0].end, c->rcv_nxt)) {
					c->rb_len += c->ooo[0].end - c->rcv_nxt;
					c->rcv_nxt = c->ooo[0].end;
				}
				memmove(c->ooo, c->ooo + 1,
					--c->ooo_n * sizeof(*c->ooo));
			}
			c->ack_now = true;
		}
		if (c->ooo_fin && c->rcv_nxt == c->ooo_fin_seq) {
			fin = true;            /* the FIN beyond the hole */
			fin_seq = c->rcv_nxt;
		}
		/* The ACK is owed: flush sends it with the response, or arms
		 * the delayed-ACK timer if nothing goes out. */
		mark_dirty(c);
	} else if (!fin && seq != c->rcv_nxt) {
		return false;
	}
	if (fin && fin_seq == c->rcv_nxt && !c->fin_rcvd) {
		fin_in(c);
		readable = true;
	} else if (fin && SEQ_GT(fin_seq, c->rcv_nxt) && !c->fin_rcvd) {
		c->ooo_fin = true;
		c->ooo_fin_seq = fin_seq;
		send_ack(c);
	}
	return readable;
}

/* ---- TIME-WAIT records ------------------------------------------------------ */

static inline uint32_t tw_bucket(const struct tcp_stack *st, uint32_t rip,
				 uint16_t rport, uint16_t lport)
{
	return tcp_hash(st, rip, rport, lport) & st->tw_hmask;
}

static void tw_unhash(struct tcp_stack *st, uint32_t idx)
{
	struct tcp_tw *t = &st->tw[idx];
	uint32_t *pp = &st->tw_hash[tw_bucket(st, t->rip, t->rport, t->lport)];

	while (*pp) {
		if (*pp == idx + 1) {
			*pp = t->hnext;
			break;
		}
		pp = &st->tw[*pp - 1].hnext;
	}
	t->live = 0;
	st->c.conns_in_state[TCP_TIME_WAIT]--;
}

static struct tcp_tw *tw_lookup(struct tcp_stack *st, uint32_t rip,
				uint16_t rport, uint16_t lport)
{
	uint32_t i = st->tw_hash[tw_bucket(st, rip, rport, lport)];

	while (i) {
		struct tcp_tw *t = &st->tw[i - 1];

		if (t->rip == rip && t->rport == rport && t->lport == lport)
			return t;
		i = t->hnext;
	}
	return NULL;
}

/* Pops records from the ring's head: expired ones, or the oldest when
 * 'need_room' and the ring is full. */
static void tw_expire(struct tcp_stack *st, bool need_room)
{
	uint32_t max = st->cfg.time_wait_max;

	while (st->tw_count) {
		struct tcp_tw *t = &st->tw[st->tw_head];

		if (t->live && t->expire > st->now &&
		    !(need_room && st->tw_count == max))
			break;
		if (t->live)
			tw_unhash(st, st->tw_head);
		st->tw_head = (st->tw_head + 1) % max;
		st->tw_count--;
	}
}

/* The connection enters TIME-WAIT: keep only what a late segment needs. */
static void enter_time_wait(struct tcp_conn *c)
{
	struct tcp_stack *st = c->st;
	uint32_t idx, b;
	struct tcp_tw *t;

	tw_expire(st, true);
	idx = (st->tw_head + st->tw_count) % st->cfg.time_wait_max;
	t = &st->tw[idx];
	t->rip = c->rip;
	t->lip = c->lip;
	t->rport = c->rport;
	t->lport = c->lport;
	t->snd_nxt = c->snd_nxt;
	t->rcv_nxt = c->rcv_nxt;
	t->ts_recent = c->ts_recent;
	t->ts_off = c->ts_off;
	t->has_ts = c->ts_ok;
	t->rcv_ws = c->rcv_ws;
	t->live = 1;
	t->expire = st->now + st->cfg.time_wait_us;
	b = tw_bucket(st, t->rip, t->rport, t->lport);
	t->hnext = st->tw_hash[b];
	st->tw_hash[b] = idx + 1;
	st->tw_count++;
	st->c.conns_in_state[TCP_TIME_WAIT]++;
	conn_kill(c);
}

static void tw_ack(struct tcp_stack *st, const struct tcp_tw *t)
{
	uint8_t o[TCP_TS_OPT_LEN];
	unsigned ol = 0;

	if (t->has_ts)
		ol = put_ts(o, ts_now(st, t->ts_off), t->ts_recent);
	emit(st, t->lip, t->rip, t->lport, t->rport, t->snd_nxt, t->rcv_nxt,
	     TH_ACK, (uint16_t)min32(st->cfg.rcv_buf >> t->rcv_ws, 0xffff),
	     o, ol, NULL, 0, 0);
}

/*
 * A segment for a TIME-WAIT record. Returns true when it was a SYN that may
 * reuse the tuple (RFC 6191: higher sequence number, or newer timestamp);
 * the record is gone then and the caller opens a new connection.
 */
static bool tw_input(struct tcp_stack *st, struct tcp_tw *t,
		     const struct tcp_seg *s, uint32_t *isn_floor)
{
	if (s->flags & TH_RST)
		return false;                  /* RFC 1337: ignore */
	if ((s->flags & (TH_SYN | TH_ACK)) == TH_SYN) {
		bool newer = t->has_ts && s->has_ts ?
			SEQ_GT(s->tsval, t->ts_recent) :
			SEQ_GT(s->seq, t->rcv_nxt);

		if (newer) {
			*isn_floor = t->snd_nxt + 65536 * 2;
			tw_unhash(st, (uint32_t)(t - st->tw));
			st->c.time_wait_reuse++;
			return true;
		}
		tw_ack(st, t);
		return false;
	}
	if (s->len || (s->flags & (TH_FIN | TH_SYN))) {
		if (s->has_ts && SEQ_GEQ(s->tsval, t->ts_recent))
			t->ts_recent = s->tsval;
		tw_ack(st, t);                 /* lost last ACK: re-ACK */
	}
	return false;
}

/* ---- ACK processing (RFC 9293 3.10.7.4 fifth step, RFC 5681, 6582) ------ */

/* SND.UNA advances to s->ack (RFC 9293 3.10.7.4 fifth step; RFC 6298 RTT
 * and timer; RFC 5681/6582 congestion window). Returns whether our FIN is
 * now acknowledged. */
static bool ack_advance(struct tcp_conn *c, const struct tcp_seg *s)
{
	struct tcp_stack *st = c->st;
	uint32_t ack = s->ack, acked, bytes, flight;
	bool fin_acked = false;
	bool cwnd_limited = c->cwnd_limited ||
			    c->snd_max - c->snd_una + c->smss >= c->cwnd;

	acked = ack - c->snd_una;
	bytes = min32(acked, c->sb_len);
	if (c->fin_queued && SEQ_GT(ack, c->fin_seq))
		fin_acked = true;
	c->sb_len -= bytes;
	c->sb_head = c->sb_len ? (c->sb_head + bytes) & (c->sb_cap - 1) : 0;
	c->snd_una = ack;
	if (SEQ_LT(c->snd_nxt, ack))
		c->snd_nxt = ack;
	if (bytes)
		c->writable_due = true;
	if (!c->sb_len && c->sb_cap > 4 * TCP_SB_MIN) {
		free(c->sb);               /* idle: give memory back */
		c->sb = NULL;
		c->sb_cap = 0;
	}

	/* RTT: one timed segment per flight unless retransmitted
	 * (Karn); after a retransmission only TSecr is unambiguous. */
	if (c->rtt_timing && SEQ_GEQ(ack, c->rtt_seq)) {
		c->rtt_timing = false;
		rtt_sample(c, (uint32_t)(st->now - c->rtt_start));
	} else if (c->rexmit_since_ack && s->has_ts && c->ts_ok &&
		   s->tsecr) {
		uint32_t ms = ts_now(st, c->ts_off) - s->tsecr;

		if (ms < 3600u * 1000)
			rtt_sample(c, ms * 1000);
	}
	c->rexmit_since_ack = false;
	c->retries = 0;

	flight = c->snd_max - c->snd_una;
	if (c->in_recovery) {
		if (SEQ_GEQ(ack, c->recover)) {
			/* RFC 6582 3.2 step 3: full ACK, deflate. */
			c->cwnd = min32(c->ssthresh, flight + c->smss);
			c->in_recovery = false;
		} else {
			/* Partial ACK: resend the next hole, deflate by
			 * what was acked, add back one SMSS. */
			retransmit_una(c);
			c->cwnd = c->cwnd > acked ? c->cwnd - acked : 0;
			c->cwnd += c->smss;
			arm_rtx(c, c->rto);
		}
	} else if (!cwnd_limited) {
		/* RFC 7661 spirit: an app-limited flow (request and
		 * response) does not grow a cwnd it never filled, so
		 * cwnd neither inflates without bound nor wraps. */
	} else if (c->cwnd < c->ssthresh) {
		c->cwnd += min32(acked, c->smss);        /* slow start */
	} else {
		c->cwnd += max32(1, c->smss * c->smss / c->cwnd);
	}
	if (c->cwnd > (1u << 30))
		c->cwnd = 1u << 30;
	c->dupacks = 0;
	if (c->snd_una == c->snd_max) {
		if (!c->persist)
			tw_timer_cancel(&c->rtx);
	} else if (!c->in_recovery || SEQ_GEQ(ack, c->recover)) {
		arm_rtx(c, c->rto);        /* RFC 6298 5.3 */
	}
	mark_dirty(c);
	return fin_acked;
}

/* Returns false when the connection ended. */
static bool ack_in(struct tcp_conn *c, const struct tcp_seg *s)
{
	struct tcp_stack *st = c->st;
	uint32_t ack = s->ack, flight;
	uint32_t wnd = s->wnd << c->snd_ws;
	bool fin_acked = false;

	if (SEQ_GT(ack, c->snd_max)) {
		send_ack(c);                   /* acks what we never sent */
		return false;
	}
	if (SEQ_LT(ack, c->snd_una - c->max_snd_wnd)) {
		send_ack(c);                   /* RFC 5961 5.2: too old */
		return false;
	}
	if (c->persist || !wnd)
		c->retries = 0;   /* a probe, or an RTO resend into a window the
				   * peer shrank to 0, was answered: it lives */
	if (SEQ_GT(ack, c->snd_una)) {
		fin_acked = ack_advance(c, s);
	} else if (ack == c->snd_una && !s->len &&
		   !(s->flags & (TH_FIN | TH_SYN)) && wnd == c->snd_wnd &&
		   c->snd_max != c->snd_una && !c->persist) {
		/* RFC 5681 2: a duplicate ACK. */
		c->dupacks++;
		if (c->dupacks == 3 && !c->in_recovery &&
		    SEQ_GT(ack, c->recover)) {
			flight = c->snd_max - c->snd_una;
			c->ssthresh = max32(flight / 2, 2u * c->smss);
			c->recover = c->snd_max;
			c->in_recovery = true;
			st->c.fast_retransmits++;
			retransmit_una(c);
			c->cwnd = c->ssthresh + 3u * c->smss;
			arm_rtx(c, c->rto);
		} else if (c->dupacks > 3 && c->in_recovery) {
			c->cwnd += c->smss;        /* inflate: one left the net */
			mark_dirty(c);
		}
	}

	/* Send window update (RFC 9293 3.10.7.4: SND.WL1/WL2 guard). */
	if (SEQ_LT(c->snd_wl1, s->seq) ||
	    (c->snd_wl1 == s->seq && SEQ_LEQ(c->snd_wl2, ack))) {
		if (wnd != c->snd_wnd)
			mark_dirty(c);
		c->snd_wnd = wnd;
		c->snd_wl1 = s->seq;
		c->snd_wl2 = ack;
		if (wnd > c->max_snd_wnd)
			c->max_snd_wnd = wnd;
		if (wnd && c->persist) {
			/* Window open: leave persist; the probe byte, if
			 * dropped, goes out again as ordinary data. */
			c->persist = false;
			c->persist_shift = 0;
			tw_timer_cancel(&c->rtx);
			c->snd_nxt = c->snd_una;
			mark_dirty(c);
		}
	}

	if (fin_acked) {
		switch (c->state) {
		case TCP_FIN_WAIT_1:
			set_state(c, TCP_FIN_WAIT_2);
			tw_timer_cancel(&c->rtx);
			arm_rtx(c, TCP_FIN_WAIT_2_US);
			break;
		case TCP_CLOSING:
			enter_time_wait(c);
			return false;
		case TCP_LAST_ACK:
			conn_kill(c);
			return false;
		default:
			break;
		}
	}
	return true;
}

/* ---- input --------------------------------------------------------------- */

static void rtx_fire(struct tw_timer *t, void *arg);
static void dack_fire(struct tw_timer *t, void *arg);

static int parse_seg(const uint8_t *p, size_t len, struct tcp_seg *s)
{
	unsigned doff, i;

	if (len < TCP_HDR_LEN)
		return -EINVAL;
	doff = (unsigned)(p[12] >> 4) * 4;
	if (doff < TCP_HDR_LEN || doff > len)
		return -EINVAL;
	s->seq = rd32(p + 4);
	s->ack = rd32(p + 8);
	s->flags = p[13];
	s->wnd = rd16(p + 14);
	s->data = p + doff;
	s->len = (uint32_t)(len - doff);
	s->has_mss = s->has_ws = s->has_ts = false;
	s->mss = 0;
	s->ws = 0;
	s->tsval = s->tsecr = 0;
	/* Fast path: NOP NOP TS, what every peer that negotiated TS sends. */
	if (doff == TCP_HDR_LEN + TCP_TS_OPT_LEN && p[20] == 1 && p[21] == 1 &&
	    p[22] == 8 && p[23] == 10) {
		s->has_ts = true;
		s->tsval = rd32(p + 24);
		s->tsecr = rd32(p + 28);
		return 0;
	}
	for (i = TCP_HDR_LEN; i < doff;) {
		unsigned kind = p[i], l;

		if (kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= doff)
			return -EINVAL;
		l = p[i + 1];
		if (l < 2 || i + l > doff)
			return -EINVAL;
		switch (kind) {
		case 2:
			if (l != 4)
				return -EINVAL;
			s->has_mss = true;
			s->mss = rd16(p + i + 2);
			break;
		case 3:
			if (l != 3)
				return -EINVAL;
			s->has_ws = true;
			s->ws = p[i + 2];
			break;
		case 8:
			if (l != 10)
				return -EINVAL;
			s->has_ts = true;
			s->tsval = rd32(p + i + 2);
			s->tsecr = rd32(p + i + 6);
			break;
		default:
			break;                 /* SACK-permitted, SACK, ...: ignored */
		}
		i += l;
	}
	return 0;
}

/* RST for a segment that belongs to no connection (RFC 9293 3.10.7.1). */
static void rst_unknown(struct tcp_stack *st, uint32_t rip, uint32_t lip,
			uint16_t rport, uint16_t lport, const struct tcp_seg *s)
{
	if (s->flags & TH_RST)
		return;                        /* never RST a RST */
	if (s->flags & TH_ACK)
		emit(st, lip, rip, lport, rport, s->ack, 0, TH_RST, 0, NULL, 0,
		     NULL, 0, 0);
	else
		emit(st, lip, rip, lport, rport, 0,
		     s->seq + s->len + !!(s->flags & TH_SYN) +
		     !!(s->flags & TH_FIN), TH_RST | TH_ACK, 0, NULL, 0, NULL,
		     0, 0);
}

/* RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport, key). */
static uint64_t isn_hash(const struct tcp_stack *st, uint32_t rip,
			 uint16_t rport, uint32_t lip, uint16_t lport)
{
	uint8_t m[12];

	wr32(m, lip);
	wr16(m + 4, lport);
	wr32(m + 6, rip);
	wr16(m + 10, rport);
	return siphash24(st->cfg.isn_key, m, sizeof(m));
}

static void passive_open(struct tcp_stack *st, uint32_t rip, uint32_t lip,
			 uint16_t rport, uint16_t lport,
			 const struct tcp_seg *s, uint32_t isn_floor)
{
	const struct tcp_config *cfg = &st->cfg;
	struct tcp_conn *c;
	uint64_t h;
	uint32_t b, iw;

	if (st->nsynrcvd >= cfg->syn_backlog) {
		st->c.syn_backlog_drops++;
		return;
	}
	if (st->nconns >= cfg->max_conns) {
		st->c.conn_limit_drops++;
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->st = st;
	c->rip = rip;
	c->lip = lip;
	c->rport = rport;
	c->lport = lport;
	h = isn_hash(st, rip, rport, lip, lport);
	c->iss = (uint32_t)(st->now / 4) + (uint32_t)h;
	if (isn_floor && SEQ_LT(c->iss, isn_floor))
		c->iss = isn_floor;
	c->ts_off = (uint32_t)(h >> 32);
	c->snd_una = c->iss;
	c->snd_nxt = c->snd_max = c->iss + 1;
	c->irs = s->seq;
	c->rcv_nxt = s->seq + 1;
	c->last_ack_sent = c->rcv_nxt;
	if (cfg->window_scaling && s->has_ws) {
		c->ws_ok = true;
		c->snd_ws = s->ws > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : s->ws;
		c->rcv_ws = st->rcv_ws;
	}
	if (cfg->timestamps && s->has_ts) {
		c->ts_ok = true;
		c->ts_recent = s->tsval;
	}
	c->peer_mss = s->has_mss ? s->mss : TCP_DEFAULT_MSS;
	if (c->peer_mss < 88)
		c->peer_mss = 88;              /* nonsense MSS: clamp */
	c->smss = (uint16_t)(min32(c->peer_mss, cfg->mss) -
			     (c->ts_ok ? TCP_TS_OPT_LEN : 0));
	c->rcv_mss = c->smss;                  /* until bigger ones arrive */
	c->snd_wnd = s->wnd;                   /* never scaled in a SYN */
	c->max_snd_wnd = s->wnd;
	c->snd_wl1 = s->seq;
	c->snd_wl2 = c->iss;
	iw = max32(2u * c->smss, 14600);       /* RFC 6928 */
	c->cwnd = min32(10u * c->smss, iw);
	c->ssthresh = UINT32_MAX;
	c->recover = c->iss;
	c->rto = cfg->rto_initial_us;
	c->state = TCP_SYN_RECEIVED;
	st->c.conns_in_state[TCP_SYN_RECEIVED]++;
	tw_timer_init(&c->rtx, rtx_fire);
	tw_timer_init(&c->dack, dack_fire);
	b = tcp_hash(st, rip, rport, lport) & st->hmask;
	c->hnext = st->htab[b];
	st->htab[b] = c;
	st->nconns++;
	st->nsynrcvd++;
	st->c.syn_received++;
	c->rtt_start = st->now;
	conn_emit(c, c->iss, 0, TH_SYN);
	arm_rtx(c, c->rto);
}

/* RFC 9293 3.10.7.4 first step: is any of the segment inside the window? */
static bool acceptable(const struct tcp_conn *c, const struct tcp_seg *s)
{
	uint32_t wnd = SEQ_GT(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
	uint32_t sl = s->len + !!(s->flags & TH_SYN) + !!(s->flags & TH_FIN);
	uint32_t d = s->seq - c->rcv_nxt;

	if (s->seq == c->rcv_nxt)
		return true;   /* also a zero window: the ACK is processed,
				* the data trimmed (3.10.7.4 "special allowance") */
	if (!wnd)
		return false;
	if (d < wnd)
		return true;
	return sl && (uint32_t)(s->seq + sl - 1 - c->rcv_nxt) < wnd;
}

/*
 * Header prediction (Van Jacobson's, as in BSD and Linux): the next
 * in-order segment of an ESTABLISHED connection with nothing unusual about
 * it (ACK and maybe PSH only, same window, timestamps in order, no
 * recovery, no hole, no persist, room in the buffer) needs none of the
 * general checks of RFC 9293 3.10.7.4: it is acceptable by construction.
 * Returns false to let the general path handle the segment.
 */
static bool fast_path(struct tcp_conn *c, const struct tcp_seg *s,
		      bool *readable)
{
	uint32_t room;

	if (c->state != TCP_ESTABLISHED ||
	    (s->flags & (TH_SYN | TH_FIN | TH_RST | TH_ACK | 0x20)) != TH_ACK ||
	    s->seq != c->rcv_nxt ||
	    (c->ooo_n | c->ooo_fin | c->persist | c->in_recovery))
		return false;
	if (c->ts_ok && (!s->has_ts || SEQ_LT(s->tsval, c->ts_recent)))
		return false;
	if ((s->wnd << c->snd_ws) != c->snd_wnd ||
	    SEQ_LT(s->ack, c->snd_una) || SEQ_GT(s->ack, c->snd_max))
		return false;
	if (s->ack == c->snd_una && !s->len && c->snd_max != c->snd_una)
		return false;                  /* a duplicate ACK */
	room = SEQ_GT(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
	if (s->len > room ||
	    (s->len && c->rb_off + c->rb_len + s->len > c->rb_cap))
		return false;

	if (c->ts_ok && SEQ_LEQ(s->seq, c->last_ack_sent))
		c->ts_recent = s->tsval;
	if (SEQ_GT(s->ack, c->snd_una))
		ack_advance(c, s);             /* no FIN queued here */
	if (SEQ_LT(c->snd_wl1, s->seq) ||
	    (c->snd_wl1 == s->seq && SEQ_LEQ(c->snd_wl2, s->ack))) {
		c->snd_wl1 = s->seq;
		c->snd_wl2 = s->ack;
	}
	if (s->len) {
		if (s->len > c->rcv_mss)
			c->rcv_mss = (uint16_t)min32(s->len, c->st->cfg.mss);
		memcpy(c->rb + c->rb_off + c->rb_len, s->data, s->len);
		c->rb_len += s->len;
		c->rcv_nxt += s->len;
		*readable = true;
		mark_dirty(c);             /* the ACK is owed (see data_in) */
	}
	return true;
}

/* A segment for an existing connection (SYN-RECEIVED or synchronized). */
static void conn_input(struct tcp_conn *c, const struct tcp_seg *s)
{
	struct tcp_stack *st = c->st;
	bool readable = false;

	if (fast_path(c, s, &readable))
		goto deliver;
	/* RFC 7323 5.3 PAWS: an older timestamp than TS.Recent. */
	if (c->ts_ok && s->has_ts && !(s->flags & TH_RST) &&
	    SEQ_LT(s->tsval, c->ts_recent) && c->state != TCP_SYN_RECEIVED) {
		st->c.unacceptable++;
		send_ack(c);
		return;
	}
	if (!acceptable(c, s)) {
		st->c.unacceptable++;
		if (s->flags & TH_RST)
			return;
		if (c->state == TCP_SYN_RECEIVED) {
			/* A retransmitted SYN: the SYN-ACK was lost. */
			if ((s->flags & (TH_SYN | TH_ACK)) == TH_SYN &&
			    s->seq == c->irs)
				conn_emit(c, c->iss, 0, TH_SYN);
			return;
		}
		send_ack(c);
		return;
	}
	/* RFC 7323 4.3: remember the timestamp to echo. */
	if (c->ts_ok && s->has_ts && SEQ_LEQ(s->seq, c->last_ack_sent) &&
	    SEQ_GEQ(s->tsval, c->ts_recent))
		c->ts_recent = s->tsval;

	if (s->flags & TH_RST) {
		/* RFC 5961 3.2: only an exact match resets. */
		if (s->seq == c->rcv_nxt) {
			st->c.resets_in++;
			conn_kill(c);
		} else {
			challenge_ack(c);
		}
		return;
	}
	if (s->flags & TH_SYN) {
		/* RFC 5961 4.2: a SYN in a synchronized state. */
		if (c->state == TCP_SYN_RECEIVED && s->seq == c->irs &&
		    !(s->flags & TH_ACK))
			conn_emit(c, c->iss, 0, TH_SYN);
		else
			challenge_ack(c);
		return;
	}
	if (!(s->flags & TH_ACK))
		return;

	if (c->state == TCP_SYN_RECEIVED) {
		void *ctx;

		if (!SEQ_GT(s->ack, c->snd_una) || SEQ_GT(s->ack, c->snd_max)) {
			emit(st, c->lip, c->rip, c->lport, c->rport, s->ack, 0,
			     TH_RST, 0, NULL, 0, NULL, 0, 0);
			return;
		}
		c->snd_una = s->ack;
		st->nsynrcvd--;
		set_state(c, TCP_ESTABLISHED);
		tw_timer_cancel(&c->rtx);
		if (!c->retries) {
			rtt_sample(c, (uint32_t)(st->now - c->rtt_start));
		} else {
			/* Karn: the SYN-ACK was resent; only TSecr tells
			 * which one this ACK answers. RFC 5681 3.1: a lost
			 * SYN-ACK leaves an initial window of one segment. */
			if (c->ts_ok && s->has_ts && s->tsecr &&
			    ts_now(st, c->ts_off) - s->tsecr < 3600u * 1000)
				rtt_sample(c, (ts_now(st, c->ts_off) -
					       s->tsecr) * 1000);
			c->cwnd = c->smss;
		}
		c->retries = 0;
		c->snd_wnd = s->wnd << c->snd_ws;
		c->max_snd_wnd = c->snd_wnd;
		c->snd_wl1 = s->seq;
		c->snd_wl2 = s->ack;
		st->c.accepts++;
		ctx = st->app.accepted ? st->app.accepted(st->app_arg, c) : NULL;
		if (c->state == TCP_CLOSED) {
			/* tcp_abort() from inside accepted(): the app still
			 * gets its closed(), once, for the ctx it returned. */
			if (ctx && st->app.closed)
				st->app.closed(st->app_arg, ctx);
			return;
		}
		if (!ctx) {
			/* Refused: RST, and no closed() (never accepted). */
			emit(st, c->lip, c->rip, c->lport, c->rport, c->snd_nxt,
			     c->rcv_nxt, TH_RST | TH_ACK, 0, NULL, 0, NULL, 0, 0);
			conn_kill(c);
			return;
		}
		c->ctx = ctx;
		c->accepted = true;
	} else if (!ack_in(c, s)) {
		return;
	}

	readable = false;
	switch (c->state) {
	case TCP_ESTABLISHED:
	case TCP_FIN_WAIT_1:
	case TCP_FIN_WAIT_2:
		readable = data_in(c, s->seq, s->data, s->len,
				   s->flags & TH_FIN);
		break;
	default:
		/* CLOSE-WAIT, CLOSING, LAST-ACK: the peer's FIN is in; more
		 * data or a FIN is a retransmission (acceptability let it
		 * through only if it overlaps the window): ACK it. */
		if (s->len || (s->flags & TH_FIN))
			send_ack(c);
		break;
	}
deliver:
	if (c->state == TCP_CLOSED)
		return;
	if (c->fin_rcvd && c->state == TCP_FIN_WAIT_2) {
		send_ack(c);
		/* Tell the app about the FIN before the conn goes. */
		if (readable && st->app.readable)
			st->app.readable(st->app_arg, c->ctx);
		if (c->state != TCP_CLOSED)
			enter_time_wait(c);
		return;
	}
	if (readable && st->app.readable)
		st->app.readable(st->app_arg, c->ctx);
	if (c->state == TCP_CLOSED)
		return;
	if (c->writable_due) {
		c->writable_due = false;
		if (st->app.writable)
			st->app.writable(st->app_arg, c->ctx);
	}
}

void tcp_input(struct tcp_stack *st, uint32_t remote_ip, uint32_t local_ip,
	       const uint8_t *seg, size_t len)
{
	struct tcp_seg s;
	struct tcp_conn *c;
	struct tcp_tw *t;
	uint16_t rport, lport;
	uint32_t isn_floor = 0;

	st->c.segs_in++;
	if (parse_seg(seg, len, &s)) {
		st->c.bad_segments++;
		return;
	}
	rport = rd16(seg);
	lport = rd16(seg + 2);
	st->depth++;
	c = conn_lookup(st, remote_ip, rport, lport);
	if (c && c->lip == local_ip) {
		conn_input(c, &s);
		goto out;
	}
	if (local_ip != st->cfg.local_ip || lport != st->cfg.listen_port) {
		rst_unknown(st, remote_ip, local_ip, rport, lport, &s);
		goto out;
	}
	t = tw_lookup(st, remote_ip, rport, lport);
	if (t && !tw_input(st, t, &s, &isn_floor))
		goto out;
	/* LISTEN (RFC 9293 3.10.7.2). */
	if (s.flags & TH_RST)
		goto out;
	if (s.flags & TH_ACK) {
		rst_unknown(st, remote_ip, local_ip, rport, lport, &s);
		goto out;
	}
	if (s.flags & TH_SYN)
		passive_open(st, remote_ip, local_ip, rport, lport, &s,
			     isn_floor);
out:
	st->depth--;
	reap_dead(st);
}

/* ---- timers ----------------------------------------------------------------- */

/* max_retries RTOs (or unanswered zero-window probes) in a row: the peer is
 * gone. Tell it with RST in case it is not, and drop the connection. */
static void conn_give_up(struct tcp_conn *c)
{
	struct tcp_stack *st = c->st;

	st->c.aborts++;
	emit(st, c->lip, c->rip, c->lport, c->rport, c->snd_nxt, c->rcv_nxt,
	     TH_RST | TH_ACK, 0, NULL, 0, NULL, 0, 0);
	conn_kill(c);
}

static void rtx_fire(struct tw_timer *t, void *arg)
{
	struct tcp_conn *c = (struct tcp_conn *)((char *)t -
					offsetof(struct tcp_conn, rtx));
	struct tcp_stack *st = c->st;
	const struct tcp_config *cfg = &st->cfg;
	uint64_t next;

	(void)arg;
	switch (c->state) {
	case TCP_SYN_RECEIVED:
		if (c->retries >= cfg->syn_retries) {
			conn_kill(c);          /* never accepted: no callback */
			return;
		}
		c->retries++;
		st->c.retransmits++;
		conn_emit(c, c->iss, 0, TH_SYN);
		next = (uint64_t)cfg->rto_initial_us << c->retries;
		arm_rtx(c, next > cfg->rto_max_us ? cfg->rto_max_us : next);
		return;
	case TCP_FIN_WAIT_2:
		conn_kill(c);                  /* the peer never closed */
		return;
	case TCP_CLOSED:
	case TCP_TIME_WAIT:
		return;
	default:
		break;
	}
	if (c->persist) {
		/* RFC 9293 3.8.6.1: probe the zero window with one byte. A
		 * peer that answers keeps the connection forever; unanswered
		 * probes count like retransmissions (RFC 1122 4.2.2.17, as
		 * Linux does), so a vanished peer cannot pin it. */
		if (c->retries >= cfg->max_retries) {
			conn_give_up(c);
			return;
		}
		c->retries++;
		if (c->sb_len) {
			conn_emit(c, c->snd_una, 1, 0);
			if (SEQ_LT(c->snd_nxt, c->snd_una + 1))
				c->snd_nxt = c->snd_una + 1;
			if (SEQ_GT(c->snd_nxt, c->snd_max))
				c->snd_max = c->snd_nxt;
			st->c.persist_probes++;
		}
		if (c->persist_shift < 31)
			c->persist_shift++;
		next = (uint64_t)c->rto << c->persist_shift;
		arm_rtx(c, next > cfg->persist_max_us ? cfg->persist_max_us : next);
		return;
	}
	if (c->snd_una == c->snd_max)
		return;
	if (c->retries >= cfg->max_retries) {
		conn_give_up(c);
		return;
	}
	/* RFC 6298 5.4-5.7 and RFC 5681 (4): back off, collapse cwnd,
	 * go back to snd_una. */
	c->retries++;
	st->c.rto_fired++;
	c->ssthresh = max32((c->snd_max - c->snd_una) / 2, 2u * c->smss);
	c->cwnd = c->smss;
	c->in_recovery = false;
	c->recover = c->snd_max;
	c->dupacks = 0;
	c->rto = c->rto * 2 > cfg->rto_max_us ? cfg->rto_max_us : c->rto * 2;
	c->snd_nxt = c->snd_una;
	retransmit_una(c);
	arm_rtx(c, c->rto);
}

static void dack_fire(struct tw_timer *t, void *arg)
{
	struct tcp_conn *c = (struct tcp_conn *)((char *)t -
					offsetof(struct tcp_conn, dack));

	(void)arg;
	if (c->state == TCP_CLOSED || c->state == TCP_SYN_RECEIVED)
		return;
	if (c->last_ack_sent != c->rcv_nxt || c->ack_now || c->wnd_update) {
		c->st->c.delayed_acks++;
		send_ack(c);
	}
}

void tcp_stack_tick(struct tcp_stack *st, uint64_t now_us)
{
	if (now_us > st->now)
		st->now = now_us;
	st->depth++;
	tw_wheel_advance(st->wheel, st->now, st);
	if (st->tw_count)
		tw_expire(st, false);
	st->depth--;
	reap_dead(st);
}

void tcp_stack_flush(struct tcp_stack *st)
{
	struct tcp_conn *c;

	st->depth++;
	while ((c = st->dirty) != NULL) {
		st->dirty = c->dnext;
		c->in_dirty = false;
		if (c->state != TCP_CLOSED)
			conn_output(c);
	}
	st->depth--;
	reap_dead(st);
}

const struct tcp_counters *tcp_stack_counters(const struct tcp_stack *st)
{
	return &st->c;
}

/* ---- app side ------------------------------------------------------------ */

size_t tcp_recv_peek(struct tcp_conn *c, const uint8_t **data)
{
	*data = c->rb ? c->rb + c->rb_off : NULL;
	return c->rb_len;
}

void tcp_recv_consume(struct tcp_conn *c, size_t n)
{
	struct tcp_stack *st = c->st;
	uint32_t wnd, thresh;

	if (n > c->rb_len)
		n = c->rb_len;
	if (!n)
		return;
	c->rb_off += (uint32_t)n;
	c->rb_len -= (uint32_t)n;
	if (!c->rb_len && !c->ooo_n) {
		c->rb_off = 0;
		if (c->rb_cap > 8 * TCP_RB_MIN) {
			free(c->rb);           /* idle: give memory back */
			c->rb = NULL;
			c->rb_cap = 0;
		}
	}
	if (c->fin_rcvd || c->state == TCP_CLOSED)
		return;
	/* RFC 9293 3.8.6.2.2: update when the window grows by
	 * min(RCV.BUFF / 2, 2 * MSS) or more. */
	wnd = min32(st->cfg.rcv_buf - c->rb_len, 0xffffu << c->rcv_ws);
	thresh = min32(st->cfg.rcv_buf / 2, 2u * st->cfg.mss);
	if (wnd >= c->last_wnd_sent + thresh) {
		c->wnd_update = true;
		mark_dirty(c);
	}
}

bool tcp_conn_peer_closed(const struct tcp_conn *c)
{
	return c->fin_rcvd && !c->rb_len;
}

static bool can_send(const struct tcp_conn *c)
{
	return (c->state == TCP_ESTABLISHED || c->state == TCP_CLOSE_WAIT) &&
	       !c->fin_queued;
}

size_t tcp_send_space(const struct tcp_conn *c)
{
	return can_send(c) ? c->st->cfg.snd_buf - c->sb_len : 0;
}

/* Grows the send ring to hold 'need' bytes, linearising it. */
static bool sb_room(struct tcp_conn *c, uint32_t need)
{
	uint32_t cap = c->sb_cap ? c->sb_cap : TCP_SB_MIN, first;
	uint8_t *p;

	if (need <= c->sb_cap)
		return true;
	while (cap < need)
		cap *= 2;
	p = malloc(cap);
	if (!p)
		return false;
	if (c->sb_len) {
		first = min32(c->sb_len, c->sb_cap - c->sb_head);
		memcpy(p, c->sb + c->sb_head, first);
		memcpy(p + first, c->sb, c->sb_len - first);
	}
	free(c->sb);
	c->sb = p;
	c->sb_cap = cap;
	c->sb_head = 0;
	return true;
}

size_t tcp_send(struct tcp_conn *c, const void *data, size_t n)
{
	uint32_t space, i, first;

	if (!can_send(c))
		return 0;
	space = c->st->cfg.snd_buf - c->sb_len;
	if (n > space)
		n = space;
	if (!n)
		return 0;
	if (!sb_room(c, c->sb_len + (uint32_t)n)) {
		/* Take what fits in the ring we have. */
		n = c->sb_cap - c->sb_len;
		if (!n)
			return 0;
	}
	i = (c->sb_head + c->sb_len) & (c->sb_cap - 1);
	first = min32((uint32_t)n, c->sb_cap - i);
	memcpy(c->sb + i, data, first);
	if (n > first)
		memcpy(c->sb, (const uint8_t *)data + first, n - first);
	c->sb_len += (uint32_t)n;
	mark_dirty(c);
	return n;
}

size_t tcp_send_queued(const struct tcp_conn *c)
{
	return c->sb_len;
}

void tcp_close(struct tcp_conn *c)
{
	switch (c->state) {
	case TCP_ESTABLISHED:
		set_state(c, TCP_FIN_WAIT_1);
		break;
	case TCP_CLOSE_WAIT:
		set_state(c, TCP_LAST_ACK);
		break;
	default:
		return;                        /* closing already */
	}
	c->fin_queued = true;
	c->fin_seq = data_end(c);
	mark_dirty(c);
}

void tcp_abort(struct tcp_conn *c)
{
	if (c->state == TCP_CLOSED)
		return;
	if (c->state != TCP_SYN_RECEIVED)
		emit(c->st, c->lip, c->rip, c->lport, c->rport, c->snd_nxt,
		     c->rcv_nxt, TH_RST | TH_ACK, 0, NULL, 0, NULL, 0, 0);
	conn_kill(c);
	reap_dead(c->st);
}

enum tcp_state tcp_conn_state(const struct tcp_conn *c)
{
	return (enum tcp_state)c->state;
}

void tcp_conn_addrs(const struct tcp_conn *c, uint32_t *remote_ip,
		    uint16_t *remote_port, uint32_t *local_ip,
		    uint16_t *local_port)
{
	if (remote_ip)
		*remote_ip = c->rip;
	if (remote_port)
		*remote_port = c->rport;
	if (local_ip)
		*local_ip = c->lip;
	if (local_port)
		*local_port = c->lport;
}

/* ---- the stack ------------------------------------------------------------ */

struct tcp_stack *tcp_stack_create(const struct tcp_config *cfg,
				   const struct tcp_io *io_ops, void *io,
				   const struct tcp_app *app_ops, void *app_arg,
				   uint64_t now_us)
{
	struct tcp_stack *st;
	struct tcp_config *k;
	uint32_t n;

	if (!cfg || !io_ops || !io_ops->seg_alloc || !io_ops->seg_send ||
	    !app_ops)
		return NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->cfg = *cfg;
	k = &st->cfg;
	if (!k->max_conns)
		k->max_conns = 65536;
	if (!k->syn_backlog)
		k->syn_backlog = 1024;
	if (!k->time_wait_max)
		k->time_wait_max = 65536;
	if (!k->mss)
		k->mss = 1460;
	if (!k->rcv_buf)
		k->rcv_buf = 256 * 1024;
	if (!k->snd_buf)
		k->snd_buf = 256 * 1024;
	if (!k->rto_min_us)
		k->rto_min_us = 200000;
	if (!k->rto_initial_us)
		k->rto_initial_us = 1000000;
	if (!k->rto_max_us)
		k->rto_max_us = 60000000;
	if (!k->max_retries)
		k->max_retries = 8;
	if (!k->syn_retries)
		k->syn_retries = 4;
	if (!k->delack_us)
		k->delack_us = 10000;
	if (k->delack_us > 500000)
		k->delack_us = 500000;         /* RFC 5681 4.2: < 0.5 s */
	if (!k->time_wait_us)
		k->time_wait_us = 1000000;
	if (!k->persist_max_us)
		k->persist_max_us = 60000000;
	if (!k->ooo_max_segs)
		k->ooo_max_segs = 64;
	if (!k->timer_tick_us)
		k->timer_tick_us = 1000;
	if (k->mss < 88 || k->rcv_buf > (0xffffu << TCP_MAX_WSCALE) ||
	    k->snd_buf > (1u << 30) || k->rto_min_us > k->rto_max_us ||
	    k->max_conns > (1u << 24) || k->time_wait_max > (1u << 24))
		goto fail;
	if (!k->window_scaling && k->rcv_buf > 0xffff)
		k->rcv_buf = 0xffff;           /* what a 16-bit window can say */
	while (st->rcv_ws < TCP_MAX_WSCALE && (k->rcv_buf >> st->rcv_ws) > 0xffff)
		st->rcv_ws++;
	st->io_ops = *io_ops;
	st->io = io;
	st->app = *app_ops;
	st->app_arg = app_arg;
	st->now = now_us;
	st->hseed = siphash24(k->isn_key, (const uint8_t *)"dpcache-tcp-hash", 16);
	for (n = 1; n < k->max_conns && n < (1u << 20); n <<= 1)
		;
	st->htab = calloc(n, sizeof(*st->htab));
	st->hmask = n - 1;
	for (n = 1; n < k->time_wait_max && n < (1u << 20); n <<= 1)
		;
	st->tw_hash = calloc(n, sizeof(*st->tw_hash));
	st->tw_hmask = n - 1;
	st->tw = calloc(k->time_wait_max, sizeof(*st->tw));
	st->wheel = tw_wheel_create(4096, k->timer_tick_us, now_us);
	if (!st->htab || !st->tw_hash || !st->tw || !st->wheel)
		goto fail;
	return st;
fail:
	tcp_stack_destroy(&st);
	return NULL;
}

void tcp_stack_destroy(struct tcp_stack **stp)
{
	struct tcp_stack *st;
	struct tcp_conn *c, *next;
	uint32_t i;

	if (!stp || !*stp)
		return;
	st = *stp;
	for (i = 0; st->htab && i <= st->hmask; i++)
		for (c = st->htab[i]; c; c = next) {
			next = c->hnext;
			conn_free(c);
		}
	for (c = st->dead; c; c = next) {
		next = c->hnext;
		conn_free(c);
	}
	free(st->htab);
	free(st->tw_hash);
	free(st->tw);
	tw_wheel_destroy(&st->wheel);
	free(st);
	*stp = NULL;
}
