/*
 * tests/net/test_tcp.c - black-box tests of the per-core TCP (tcp.h).
 *
 * Design note. The stack is driven exactly as a polling core drives it, but
 * in memory: a struct tcp_io whose seg_alloc hands out heap buffers (and can
 * be told to fail) and whose seg_send queues the bytes for the test to pop
 * and parse; a struct tcp_app that records every callback (and can echo,
 * collect, hold or answer with a large reply); and a virtual clock the test
 * advances one timer tick at a time. A "client" (struct cl) builds segments
 * with real header lengths and options, as a peer kernel would, and keeps
 * its own view of both sequence spaces so the tests can state what RFC 9293,
 * 5681, 6298, 6582, 5961 and 7323 require of the answer.
 *
 * Every input is followed by tcp_stack_flush, as in the polling loop: a test
 * that says "nothing was sent" means nothing was sent by the end of that
 * loop iteration. Timing assertions allow two timer ticks of slack: the
 * wheel's granularity is one tick and we only look once per tick.
 *
 * Some rules hold for every server segment of every test, so the client
 * checks them as it absorbs segments and the fixture's teardown asserts
 * them: payload + options within the MSS the client announced (RFC 9293
 * 3.7.1), data within the window it advertised (scaled only when both sides
 * sent WS, RFC 7323 2.2), ACK on every non-RST segment, TS on every one once
 * agreed (RFC 7323 3.2), ACK and TSval never going backwards; closed() at
 * most once per accepted connection and no callback after it; segs_in and
 * segs_out equal to what the test fed and what reached seg_send.
 *
 * The lossy-link tests put a seeded drop/duplicate/reorder channel between
 * a minimal client TCP (go-back-N) and the stack and check that an echo of
 * 50-100 KB comes back byte-exact, then that both sides close.
 *
 * Only tcp.h is used; nothing here knows the implementation's structures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dataplane/net/tcp.h"

/* ---- constants ---------------------------------------------------------- */

#define FX_IP      0xc6120001u  /* 198.18.0.1, the stack */
#define CL_IP      0xc6120002u  /* 198.18.0.2, the clients */
#define FX_PORT    11211
#define T0_US      1000000000ull
#define MS         1000ull
#define SEC        1000000ull
#define TICK       (1 * MS)
#define SLACK      (2 * TICK)

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_PSH 0x08
#define F_ACK 0x10

#define FX_MAX_CONNS 64
#define FX_MAX_CL    16
#define RX_CAP       (1u << 20)
#define SEG_CAP      16384

#define SEQ_LT(a, b)  ((int32_t)((uint32_t)(a) - (uint32_t)(b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) <= 0)
#define SEQ_GT(a, b)  SEQ_LT(b, a)

/* ---- fixture ------------------------------------------------------------ */

enum app_mode {
	APP_COLLECT,    /* consume everything into ac->rx */
	APP_ECHO,       /* consume and send it back */
	APP_HOLD,       /* consume nothing */
	APP_REPLY,      /* consume everything, answer with fx->reply */
};

struct fx;

struct app_conn {
	struct fx *fx;
	struct tcp_conn *c;
	uint32_t rip, lip;
	uint16_t rport, lport;
	unsigned readable_n, writable_n, closed_n, after_closed;
	bool peer_closed;
	size_t rx_len;
	uint8_t *rx;
	size_t reply_off;       /* APP_REPLY: bytes of fx->reply queued */
	bool replying;
};

struct sent {
	uint8_t *p;             /* struct pkt's bytes */
	size_t len;
	uint32_t lip, rip;
	uint64_t t;
};

struct pkt {
	size_t cap;
	uint8_t b[];
};

/* A server segment as the client sees it. */
struct seg {
	uint32_t lip, rip;
	uint64_t t;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	unsigned hlen;
	int mss, ws;            /* -1 when absent */
	bool sackp, has_ts;
	uint32_t tsval, tsecr;
	size_t len;
	uint8_t data[SEG_CAP];
};

/* A peer. Its sequence space: iss, snd_nxt. Ours as it sees it: rcv_nxt. */
struct cl {
	struct fx *fx;
	uint32_t ip;
	uint16_t port;
	uint32_t iss, snd_nxt, rcv_nxt, srv_iss;
	uint16_t mss;           /* MSS option in our SYN; 0 = none */
	int ws;                 /* WS shift in our SYN; -1 = none */
	bool sackp, ts;         /* options offered in our SYN */
	bool ts_ok;             /* both sides sent TS */
	int srv_ws;             /* server's shift when both sent WS, else -1 */
	uint32_t tsval, ts_recent;
	uint16_t win;           /* raw window field we send */
	struct app_conn *ac;
	size_t rx_len;
	uint8_t *rx;
	bool got_fin;
	uint32_t srv_ack, srv_wnd;  /* last ACK and window (bytes) seen */
	unsigned mss_violations;
	size_t max_payload;
	uint32_t adv_edge;      /* furthest right edge we ever advertised */
	bool adv_valid;
	unsigned wnd_violations;  /* server data beyond adv_edge (+1 probe) */
	unsigned hdr_violations;  /* non-RST without ACK or (once agreed) TS;
				   * ACK or TSval going backwards */
	uint32_t max_srv_ack, max_srv_tsval;
	bool seen_srv;
	bool lossy;             /* segments absorbed out of send order */
	bool lax;               /* absurd options on purpose: no checks */
};

struct fx {
	struct tcp_config cfg;
	struct tcp_stack *st;
	uint64_t now;
	/* io */
	bool alloc_fail;
	unsigned allocs, sends, alloc_refused, io_errors;
	struct sent *q;
	size_t qhead, qtail, qcap;
	unsigned fed;
	/* app */
	enum app_mode mode;
	bool refuse;
	const uint8_t *reply;
	size_t reply_len;
	struct app_conn conns[FX_MAX_CONNS];
	unsigned nconns, accepted_calls, closed_calls;
	struct cl cls[FX_MAX_CL];
	unsigned ncls;
};

static const struct tcp_counters *ctr(struct fx *fx)
{
	return tcp_stack_counters(fx->st);
}

/* -- io ------------------------------------------------------------------ */

static uint8_t *io_alloc(void *io, size_t len, void **pkt)
{
	struct fx *fx = io;
	struct pkt *p;

	if (fx->alloc_fail) {
		fx->alloc_refused++;
		return NULL;
	}
	p = malloc(sizeof(*p) + len);
	if (p == NULL)
		return NULL;
	p->cap = len;
	memset(p->b, 0xee, len);
	fx->allocs++;
	*pkt = p;
	return p->b;
}

static void io_send(void *io, void *pktv, uint32_t local_ip, uint32_t remote_ip,
		    size_t len)
{
	struct fx *fx = io;
	struct pkt *p = pktv;
	struct sent *s;

	fx->sends++;
	if (len > p->cap || len < 20) {
		fx->io_errors++;
		free(p);
		return;
	}
	if (fx->qtail == fx->qcap) {
		size_t n = fx->qtail - fx->qhead;

		if (n && fx->qhead)
			memmove(fx->q, fx->q + fx->qhead, n * sizeof(*fx->q));
		fx->qhead = 0;
		fx->qtail = n;
		if (fx->qtail == fx->qcap) {
			struct sent *q;

			fx->qcap = fx->qcap ? 2 * fx->qcap : 256;
			q = realloc(fx->q, fx->qcap * sizeof(*fx->q));
			if (q == NULL) {
				fx->io_errors++;
				free(p);
				return;
			}
			fx->q = q;
		}
	}
	s = &fx->q[fx->qtail++];
	s->p = p->b;
	s->len = len;
	s->lip = local_ip;
	s->rip = remote_ip;
	s->t = fx->now;
}

static const struct tcp_io fx_io = { .seg_alloc = io_alloc,
				     .seg_send = io_send };

/* -- app ----------------------------------------------------------------- */

static void app_pump_reply(struct fx *fx, struct app_conn *ac)
{
	while (ac->replying && ac->reply_off < fx->reply_len) {
		size_t n = tcp_send(ac->c, fx->reply + ac->reply_off,
				    fx->reply_len - ac->reply_off);
		if (n == 0)
			break;
		ac->reply_off += n;
	}
	if (ac->reply_off == fx->reply_len)
		ac->replying = false;
}

static void *app_accepted(void *arg, struct tcp_conn *c)
{
	struct fx *fx = arg;
	struct app_conn *ac;

	fx->accepted_calls++;
	if (fx->refuse || fx->nconns == FX_MAX_CONNS)
		return NULL;
	ac = &fx->conns[fx->nconns++];
	memset(ac, 0, sizeof(*ac));
	ac->fx = fx;
	ac->c = c;
	ac->rx = malloc(RX_CAP);
	tcp_conn_addrs(c, &ac->rip, &ac->rport, &ac->lip, &ac->lport);
	return ac;
}

static void app_readable(void *arg, void *ctx)
{
	struct fx *fx = arg;
	struct app_conn *ac = ctx;
	const uint8_t *d = NULL;
	size_t n;

	if (ac->closed_n) {
		ac->after_closed++;
		return;
	}
	ac->readable_n++;
	if (fx->mode == APP_HOLD) {
		ac->peer_closed = tcp_conn_peer_closed(ac->c);
		return;
	}
	n = tcp_recv_peek(ac->c, &d);
	if (n > 0) {
		if (ac->rx_len + n <= RX_CAP) {
			memcpy(ac->rx + ac->rx_len, d, n);
			ac->rx_len += n;
		}
		if (fx->mode == APP_ECHO) {
			size_t sent = tcp_send(ac->c, d, n);

			/* whatever did not fit stays unconsumed */
			tcp_recv_consume(ac->c, sent);
			ac->rx_len -= n - sent;
		} else {
			tcp_recv_consume(ac->c, n);
		}
		if (fx->mode == APP_REPLY && !ac->replying) {
			ac->replying = true;
			ac->reply_off = 0;
			app_pump_reply(fx, ac);
		}
	}
	ac->peer_closed = tcp_conn_peer_closed(ac->c);
}

static void app_writable(void *arg, void *ctx)
{
	struct fx *fx = arg;
	struct app_conn *ac = ctx;

	if (ac->closed_n) {
		ac->after_closed++;
		return;
	}
	ac->writable_n++;
	if (fx->mode == APP_REPLY)
		app_pump_reply(fx, ac);
	if (fx->mode == APP_ECHO) {
		/* echo what a full send buffer left unread */
		const uint8_t *d = NULL;
		size_t n = tcp_recv_peek(ac->c, &d), sent;

		if (n) {
			sent = tcp_send(ac->c, d, n);
			if (ac->rx_len + sent <= RX_CAP) {
				memcpy(ac->rx + ac->rx_len, d, sent);
				ac->rx_len += sent;
			}
			tcp_recv_consume(ac->c, sent);
		}
	}
}

static void app_closed(void *arg, void *ctx)
{
	struct fx *fx = arg;
	struct app_conn *ac = ctx;

	fx->closed_calls++;
	ac->closed_n++;
	ac->c = NULL;
}

static const struct tcp_app fx_app = {
	.accepted = app_accepted,
	.readable = app_readable,
	.writable = app_writable,
	.closed = app_closed,
};

/* -- setup --------------------------------------------------------------- */

static void fx_default_cfg(struct tcp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->local_ip = FX_IP;
	cfg->listen_port = FX_PORT;
	for (unsigned i = 0; i < sizeof(cfg->isn_key); i++)
		cfg->isn_key[i] = (uint8_t)(0x5a ^ (i * 37));
	cfg->max_conns = 64;
	cfg->syn_backlog = 16;
	cfg->time_wait_max = 64;
	cfg->mss = 1460;
	cfg->rcv_buf = 65536;
	cfg->snd_buf = 65536;
	cfg->window_scaling = true;
	cfg->timestamps = true;
	cfg->rto_min_us = 200 * MS;
	cfg->rto_initial_us = 1 * SEC;
	cfg->rto_max_us = 8 * SEC;
	cfg->max_retries = 6;
	cfg->syn_retries = 3;
	cfg->delack_us = 40 * MS;
	cfg->time_wait_us = 1 * SEC;
	cfg->persist_max_us = 8 * SEC;
	cfg->ooo_max_segs = 64;
	cfg->timer_tick_us = TICK;
}

static void fx_free_queue(struct fx *fx)
{
	for (size_t i = fx->qhead; i < fx->qtail; i++)
		free(fx->q[i].p - offsetof(struct pkt, b));
	fx->qhead = fx->qtail = 0;
}

static void fx_free_conns(struct fx *fx)
{
	for (unsigned i = 0; i < fx->nconns; i++)
		free(fx->conns[i].rx);
	fx->nconns = 0;
}

/* (Re)creates the stack with 'cfg', dropping all state. */
static void fx_recreate(struct fx *fx, const struct tcp_config *cfg)
{
	tcp_stack_destroy(&fx->st);
	assert_null(fx->st);
	fx_free_queue(fx);
	fx_free_conns(fx);
	fx->cfg = *cfg;
	fx->fed = fx->sends = fx->allocs = 0;
	fx->st = tcp_stack_create(&fx->cfg, &fx_io, fx, &fx_app, fx, fx->now);
	assert_non_null(fx->st);
}

static int fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct tcp_config cfg;

	assert_non_null(fx);
	fx->now = T0_US;
	fx_default_cfg(&cfg);
	fx->mode = APP_COLLECT;
	fx_recreate(fx, &cfg);
	tcp_stack_tick(fx->st, fx->now);
	*state = fx;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *fx = *state;
	unsigned bad_closed = 0, after = 0;

	unsigned mss_bad = 0, wnd_bad = 0, hdr_bad = 0;
	bool seg_in_bad = false, seg_out_bad = false;

	for (unsigned i = 0; i < fx->nconns; i++) {
		if (fx->conns[i].closed_n > 1)
			bad_closed++;
		after += fx->conns[i].after_closed;
	}
	for (unsigned i = 0; i < fx->ncls; i++) {
		if (fx->cls[i].lax)
			continue;
		mss_bad += fx->cls[i].mss_violations;
		wnd_bad += fx->cls[i].wnd_violations;
		hdr_bad += fx->cls[i].hdr_violations;
	}
	/* every segment fed was counted in, every one sent counted out */
	if (fx->st) {
		seg_in_bad = ctr(fx)->segs_in != fx->fed;
		seg_out_bad = ctr(fx)->segs_out != fx->sends;
	}
	tcp_stack_destroy(&fx->st);
	assert_null(fx->st);
	tcp_stack_destroy(&fx->st);     /* NULL is accepted */
	fx_free_queue(fx);
	fx_free_conns(fx);
	free(fx->q);
	for (unsigned i = 0; i < fx->ncls; i++)
		free(fx->cls[i].rx);
	free(fx);
	/* closed() at most once per accepted connection, no callbacks after */
	assert_int_equal(bad_closed, 0);
	assert_int_equal(after, 0);
	/* every server segment of every test: within the MSS the client
	 * announced and within the window it advertised */
	assert_int_equal(mss_bad, 0);
	assert_int_equal(wnd_bad, 0);
	assert_int_equal(hdr_bad, 0);
	assert_false(seg_in_bad);
	assert_false(seg_out_bad);
	return 0;
}

/* -- the server side as the test sees it ---------------------------------- */

static size_t fx_pending(struct fx *fx)
{
	return fx->qtail - fx->qhead;
}

static bool parse_seg(const uint8_t *b, size_t len, struct seg *s)
{
	unsigned doff;
	size_t i;

	if (len < 20)
		return false;
	s->sport = (uint16_t)(b[0] << 8 | b[1]);
	s->dport = (uint16_t)(b[2] << 8 | b[3]);
	s->seq = (uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 |
		 (uint32_t)b[6] << 8 | b[7];
	s->ack = (uint32_t)b[8] << 24 | (uint32_t)b[9] << 16 |
		 (uint32_t)b[10] << 8 | b[11];
	doff = (unsigned)(b[12] >> 4) * 4;
	s->flags = b[13] & 0x3f;
	s->win = (uint16_t)(b[14] << 8 | b[15]);
	if (doff < 20 || doff > len)
		return false;
	s->hlen = doff;
	s->mss = -1;
	s->ws = -1;
	s->sackp = false;
	s->has_ts = false;
	for (i = 20; i < doff;) {
		uint8_t kind = b[i], olen;

		if (kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= doff)
			return false;
		olen = b[i + 1];
		if (olen < 2 || i + olen > doff)
			return false;
		switch (kind) {
		case 2:
			if (olen != 4)
				return false;
			s->mss = b[i + 2] << 8 | b[i + 3];
			break;
		case 3:
			if (olen != 3)
				return false;
			s->ws = b[i + 2];
			break;
		case 4:
			s->sackp = true;
			break;
		case 8:
			if (olen != 10)
				return false;
			s->has_ts = true;
			s->tsval = (uint32_t)b[i + 2] << 24 |
				   (uint32_t)b[i + 3] << 16 |
				   (uint32_t)b[i + 4] << 8 | b[i + 5];
			s->tsecr = (uint32_t)b[i + 6] << 24 |
				   (uint32_t)b[i + 7] << 16 |
				   (uint32_t)b[i + 8] << 8 | b[i + 9];
			break;
		default:
			break;
		}
		i += olen;
	}
	s->len = len - doff;
	if (s->len > SEG_CAP)
		return false;
	memcpy(s->data, b + doff, s->len);
	return true;
}

/* Pops the oldest sent segment; false when none. */
static bool fx_pop(struct fx *fx, struct seg *s)
{
	struct sent *q;
	bool ok;

	if (fx->qhead == fx->qtail)
		return false;
	q = &fx->q[fx->qhead++];
	ok = parse_seg(q->p, q->len, s);
	s->lip = q->lip;
	s->rip = q->rip;
	s->t = q->t;
	free(q->p - offsetof(struct pkt, b));
	assert_true(ok);
	assert_int_equal(s->lip, FX_IP);
	return true;
}

static void fx_pop_must(struct fx *fx, struct seg *s)
{
	assert_true(fx_pop(fx, s));
}

static void fx_drop_all(struct fx *fx)
{
	fx_free_queue(fx);
}

/* Advances the virtual clock by 'us' in ticks, flushing after each. */
static void fx_advance(struct fx *fx, uint64_t us)
{
	uint64_t end = fx->now + us;

	while (fx->now < end) {
		uint64_t step = end - fx->now < TICK ? end - fx->now : TICK;

		fx->now += step;
		tcp_stack_tick(fx->st, fx->now);
		tcp_stack_flush(fx->st);
	}
}

/* Lets time pass until something is sent; returns how long that took, or
 * UINT64_MAX when nothing came within max_us. */
static uint64_t fx_wait(struct fx *fx, uint64_t max_us)
{
	uint64_t start = fx->now;

	while (fx_pending(fx) == 0) {
		if (fx->now - start >= max_us)
			return UINT64_MAX;
		fx->now += TICK;
		tcp_stack_tick(fx->st, fx->now);
		tcp_stack_flush(fx->st);
	}
	return fx->now - start;
}

/* -- the client ------------------------------------------------------------ */

static struct cl *cl_new(struct fx *fx, uint16_t port, uint32_t iss)
{
	struct cl *cl;

	assert_true(fx->ncls < FX_MAX_CL);
	cl = &fx->cls[fx->ncls++];
	memset(cl, 0, sizeof(*cl));
	cl->fx = fx;
	cl->ip = CL_IP;
	cl->port = port;
	cl->iss = iss;
	cl->snd_nxt = iss;
	cl->mss = 1460;
	cl->ws = 7;
	cl->sackp = true;
	cl->ts = true;
	cl->srv_ws = -1;
	cl->tsval = 1000;
	cl->win = 65535;
	cl->rx = malloc(RX_CAP);
	assert_non_null(cl->rx);
	return cl;
}

static size_t put_ts(uint8_t *o, uint32_t val, uint32_t ecr)
{
	o[0] = 8;
	o[1] = 10;
	o[2] = (uint8_t)(val >> 24);
	o[3] = (uint8_t)(val >> 16);
	o[4] = (uint8_t)(val >> 8);
	o[5] = (uint8_t)val;
	o[6] = (uint8_t)(ecr >> 24);
	o[7] = (uint8_t)(ecr >> 16);
	o[8] = (uint8_t)(ecr >> 8);
	o[9] = (uint8_t)ecr;
	return 10;
}

/* Builds a segment as a peer kernel would: a SYN carries the offered
 * options, later segments TS when it was negotiated (RFC 7323 3.2). */
static size_t cl_build(struct cl *cl, uint8_t *b, uint8_t flags, uint32_t seq,
		       uint32_t ack, const void *d, size_t n)
{
	size_t o = 20;

	b[0] = (uint8_t)(cl->port >> 8);
	b[1] = (uint8_t)cl->port;
	b[2] = FX_PORT >> 8;
	b[3] = FX_PORT & 0xff;
	b[4] = (uint8_t)(seq >> 24);
	b[5] = (uint8_t)(seq >> 16);
	b[6] = (uint8_t)(seq >> 8);
	b[7] = (uint8_t)seq;
	b[8] = (uint8_t)(ack >> 24);
	b[9] = (uint8_t)(ack >> 16);
	b[10] = (uint8_t)(ack >> 8);
	b[11] = (uint8_t)ack;
	b[13] = flags;
	b[14] = (uint8_t)(cl->win >> 8);
	b[15] = (uint8_t)cl->win;
	b[16] = b[17] = b[18] = b[19] = 0;
	if (flags & F_SYN) {
		if (cl->mss) {
			b[o++] = 2;
			b[o++] = 4;
			b[o++] = (uint8_t)(cl->mss >> 8);
			b[o++] = (uint8_t)cl->mss;
		}
		if (cl->sackp) {
			b[o++] = 4;
			b[o++] = 2;
		}
		if (cl->ts) {
			o += put_ts(b + o, cl->tsval,
				    (flags & F_ACK) ? cl->ts_recent : 0);
		}
		if (cl->ws >= 0) {
			b[o++] = 1;
			b[o++] = 3;
			b[o++] = 3;
			b[o++] = (uint8_t)cl->ws;
		}
	} else if (cl->ts_ok) {
		b[o++] = 1;
		b[o++] = 1;
		o += put_ts(b + o, cl->tsval, cl->ts_recent);
	}
	while (o % 4)
		b[o++] = 0;
	b[12] = (uint8_t)((o / 4) << 4);
	if (flags & F_ACK) {
		/* RFC 7323 2.2: our shift applies once both sent WS, never
		 * to a SYN */
		uint32_t shift = (!(flags & F_SYN) && cl->srv_ws >= 0) ?
			(uint32_t)(cl->ws > 14 ? 14 : cl->ws) : 0;
		uint32_t edge = ack + ((uint32_t)cl->win << shift);

		if (!cl->adv_valid || SEQ_LT(cl->adv_edge, edge))
			cl->adv_edge = edge;
		cl->adv_valid = true;
	}
	if (n)
		memcpy(b + o, d, n);
	return o + n;
}

/* Feeds raw bytes as one received segment, then flushes. */
static void fx_feed(struct fx *fx, uint32_t rip, const uint8_t *b, size_t len)
{
	fx->fed++;
	tcp_input(fx->st, rip, FX_IP, b, len);
	tcp_stack_flush(fx->st);
}

static void cl_seg(struct cl *cl, uint8_t flags, uint32_t seq, uint32_t ack,
		   const void *d, size_t n)
{
	static uint8_t b[SEG_CAP + 64];

	assert_true(n <= SEG_CAP);
	cl->tsval++;
	fx_feed(cl->fx, cl->ip, b, cl_build(cl, b, flags, seq, ack, d, n));
}

static void cl_syn(struct cl *cl)
{
	cl->snd_nxt = cl->iss + 1;
	cl_seg(cl, F_SYN, cl->iss, 0, NULL, 0);
}

static void cl_ack(struct cl *cl)
{
	cl_seg(cl, F_ACK, cl->snd_nxt, cl->rcv_nxt, NULL, 0);
}

static void cl_data(struct cl *cl, const void *d, size_t n)
{
	cl_seg(cl, F_ACK | F_PSH, cl->snd_nxt, cl->rcv_nxt, d, n);
	cl->snd_nxt += (uint32_t)n;
}

static void cl_fin(struct cl *cl)
{
	cl_seg(cl, F_FIN | F_ACK, cl->snd_nxt, cl->rcv_nxt, NULL, 0);
	cl->snd_nxt++;
}

/* RFC 9293 3.10.7 / RFC 7323 3.2: after the SYN-ACK every non-RST segment
 * has ACK, and TS once both sides sent it; our ACK and TSval never go
 * backwards (RFC 7323 5.4: TSval monotonic). Called in send order. */
static void cl_check_hdr(struct cl *cl, const struct seg *s)
{
	if (!(s->flags & F_RST)) {
		if (!(s->flags & F_ACK) || (cl->ts_ok && !s->has_ts))
			cl->hdr_violations++;
		if (cl->seen_srv && SEQ_LT(s->ack, cl->max_srv_ack))
			cl->hdr_violations++;
		if (cl->seen_srv && s->has_ts &&
		    SEQ_LT(s->tsval, cl->max_srv_tsval))
			cl->hdr_violations++;
		if (!cl->seen_srv || SEQ_LT(cl->max_srv_ack, s->ack))
			cl->max_srv_ack = s->ack;
		if (s->has_ts && (!cl->seen_srv ||
				  SEQ_LT(cl->max_srv_tsval, s->tsval)))
			cl->max_srv_tsval = s->tsval;
		cl->seen_srv = true;
	}
}

/* What a peer learns from a server segment: the SYN-ACK's options, in-order
 * data (a retransmission overlapping what it has gives only the new tail),
 * the FIN, TS.Recent. Out-of-order data is ignored (the peer has no queue). */
static void cl_absorb(struct cl *cl, const struct seg *s)
{
	uint32_t seq = s->seq;
	size_t len = s->len;
	const uint8_t *d = s->data;
	uint32_t fin_seq;
	size_t limit;

	if (s->dport != cl->port || s->rip != cl->ip)
		return;
	if (s->flags & F_SYN) {
		cl->srv_iss = s->seq;
		cl->rcv_nxt = s->seq + 1;
		cl->ts_ok = cl->ts && s->has_ts;
		cl->srv_ws = (cl->ws >= 0 && s->ws >= 0) ? s->ws : -1;
		seq++;
	}
	if (!cl->lossy)
		cl_check_hdr(cl, s);
	if (s->has_ts)
		cl->ts_recent = s->tsval;
	if (s->flags & F_ACK) {
		cl->srv_ack = s->ack;
		cl->srv_wnd = (s->flags & F_SYN) ? s->win :
			(uint32_t)s->win << (cl->srv_ws > 0 ? cl->srv_ws : 0);
	}
	/* RFC 9293 3.7.1: payload + TCP options within the MSS we sent
	 * (536 when we sent none). */
	limit = cl->mss ? cl->mss : 536;
	if (len + (s->hlen - 20) > limit)
		cl->mss_violations++;
	if (len > cl->max_payload)
		cl->max_payload = len;
	if (len && cl->adv_valid &&
	    SEQ_LT(cl->adv_edge + 1, seq + (uint32_t)len))
		cl->wnd_violations++;
	fin_seq = seq + (uint32_t)len;
	if (len && SEQ_LT(seq, cl->rcv_nxt)) {
		uint32_t skip = cl->rcv_nxt - seq;

		if (skip >= len) {
			len = 0;
		} else {
			d += skip;
			len -= skip;
			seq = cl->rcv_nxt;
		}
	}
	if (seq == cl->rcv_nxt && len) {
		assert_true(cl->rx_len + len <= RX_CAP);
		memcpy(cl->rx + cl->rx_len, d, len);
		cl->rx_len += len;
		cl->rcv_nxt += (uint32_t)len;
		seq += (uint32_t)len;
	}
	if ((s->flags & F_FIN) && fin_seq == cl->rcv_nxt && !cl->got_fin) {
		cl->got_fin = true;
		cl->rcv_nxt++;
	}
}

static struct app_conn *fx_find_ac(struct fx *fx, uint16_t port)
{
	for (unsigned i = fx->nconns; i-- > 0;)
		if (fx->conns[i].rport == port)
			return &fx->conns[i];
	return NULL;
}

/* Full three-way handshake; returns the accepted connection. */
static struct app_conn *cl_connect(struct cl *cl)
{
	struct fx *fx = cl->fx;
	unsigned before = fx->accepted_calls;
	struct seg s;

	cl_syn(cl);
	fx_pop_must(fx, &s);
	assert_int_equal(s.flags, F_SYN | F_ACK);
	assert_int_equal(s.ack, cl->iss + 1);
	cl_absorb(cl, &s);
	cl_ack(cl);
	assert_int_equal(fx->accepted_calls, before + 1);
	cl->ac = fx_find_ac(fx, cl->port);
	assert_non_null(cl->ac);
	assert_non_null(cl->ac->c);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_ESTABLISHED);
	return cl->ac;
}

/* Absorbs every queued segment; ACKs (one pure ACK) if any brought new
 * bytes or a FIN. Returns how many segments were taken. */
static unsigned cl_take_all(struct cl *cl, bool ack)
{
	struct seg s;
	uint32_t before = cl->rcv_nxt;
	unsigned n = 0;

	while (fx_pop(cl->fx, &s)) {
		cl_absorb(cl, &s);
		n++;
	}
	if (ack && cl->rcv_nxt != before)
		cl_ack(cl);
	return n;
}

/* Runs the client's receive side (ACKing each batch at once) until it holds
 * 'want' bytes, or max_us of virtual time passed. */
static void cl_recv(struct cl *cl, size_t want, uint64_t max_us)
{
	struct fx *fx = cl->fx;
	uint64_t end = fx->now + max_us;

	for (;;) {
		cl_take_all(cl, true);
		if (cl->rx_len >= want || fx->now >= end)
			break;
		if (fx_pending(fx) == 0)
			fx_advance(fx, TICK);
	}
}

static void fill_pattern(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)((i * 131 + seed * 7 + (i >> 8)) & 0xff);
}

/* Collects queued data segments (and only those) into v[]; returns count. */
static unsigned fx_take_data(struct fx *fx, struct seg *v, unsigned max)
{
	unsigned n = 0;

	while (n < max && fx_pop(fx, &v[n]))
		if (v[n].len > 0)
			n++;
	return n;
}

/* ======================================================================== */
/* handshake                                                                */
/* ======================================================================== */

static void test_handshake_syn_ack_options_then_accept(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40001, 1000);
	struct seg s;
	uint32_t rip, lip;
	uint16_t rport, lport;

	cl->mss = 1200;
	cl_syn(cl);
	fx_pop_must(fx, &s);
	assert_int_equal(s.flags, F_SYN | F_ACK);
	assert_int_equal(s.sport, FX_PORT);
	assert_int_equal(s.dport, 40001);
	assert_int_equal(s.rip, CL_IP);
	assert_int_equal(s.ack, 1001);
	assert_int_equal(s.len, 0);
	assert_int_equal(s.mss, 1460);             /* RFC 9293 3.7.1 */
	assert_true(s.ws >= 0 && s.ws <= 14);      /* RFC 7323 2.3 */
	assert_true(s.has_ts);                     /* RFC 7323 3.2 */
	assert_int_equal(s.tsecr, cl->tsval);
	assert_true(s.win > 0);
	assert_int_equal(fx_pending(fx), 0);
	assert_int_equal(fx->accepted_calls, 0);
	assert_int_equal(ctr(fx)->syn_received, 1);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_SYN_RECEIVED], 1);

	cl_absorb(cl, &s);
	cl_ack(cl);
	assert_int_equal(fx->accepted_calls, 1);
	assert_int_equal(fx_pending(fx), 0);       /* nothing answers an ACK */
	cl->ac = fx_find_ac(fx, 40001);
	assert_non_null(cl->ac);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_ESTABLISHED);
	tcp_conn_addrs(cl->ac->c, &rip, &rport, &lip, &lport);
	assert_int_equal(rip, CL_IP);
	assert_int_equal(rport, 40001);
	assert_int_equal(lip, FX_IP);
	assert_int_equal(lport, FX_PORT);
	assert_int_equal(ctr(fx)->accepts, 1);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_SYN_RECEIVED], 0);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_ESTABLISHED], 1);
}

/* RFC 7323 2.2/3.2: WS and TS appear in a SYN-ACK only if the SYN had them;
 * without an MSS option the peer's MSS is 536 (RFC 9293 3.7.1). */
static void test_handshake_without_options(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40002, 5000);
	uint8_t buf[3000];
	struct seg s;

	cl->mss = 0;
	cl->ws = -1;
	cl->ts = false;
	cl->sackp = false;
	cl_syn(cl);
	fx_pop_must(fx, &s);
	assert_int_equal(s.flags, F_SYN | F_ACK);
	assert_int_equal(s.ws, -1);
	assert_false(s.has_ts);
	assert_int_equal(s.mss, 1460);
	cl_absorb(cl, &s);
	cl_ack(cl);
	assert_non_null(cl->ac = fx_find_ac(fx, 40002));

	fill_pattern(buf, sizeof(buf), 2);
	assert_int_equal(tcp_send(cl->ac->c, buf, sizeof(buf)), sizeof(buf));
	tcp_stack_flush(fx->st);
	cl_recv(cl, sizeof(buf), 10 * SEC);
	assert_int_equal(cl->rx_len, sizeof(buf));
	assert_memory_equal(cl->rx, buf, sizeof(buf));
	assert_int_equal(cl->mss_violations, 0);
	assert_true(cl->max_payload <= 536);
}

/* The final ACK of the handshake is lost; the client's first data segment
 * carries the same ACK and completes it (RFC 9293 3.10.7.4, SYN-RECEIVED). */
static void test_lost_final_ack_data_completes_handshake(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40003, 77);
	struct seg s;

	cl_syn(cl);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	cl_data(cl, "get k\r\n", 7);
	assert_int_equal(fx->accepted_calls, 1);
	cl->ac = fx_find_ac(fx, 40003);
	assert_non_null(cl->ac);
	assert_int_equal(cl->ac->rx_len, 7);
	assert_memory_equal(cl->ac->rx, "get k\r\n", 7);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_ESTABLISHED);
}

/* The final ACK is lost and the client sends nothing: the SYN-ACK is
 * retransmitted, the client ACKs that, and the connection is accepted once. */
static void test_lost_final_ack_synack_retransmit_then_accept(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40004, 9);
	struct seg s, r;

	cl_syn(cl);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	assert_true(fx_wait(fx, 3 * SEC) != UINT64_MAX);
	fx_pop_must(fx, &r);
	assert_int_equal(r.flags, F_SYN | F_ACK);
	assert_int_equal(r.seq, s.seq);
	cl_ack(cl);
	assert_int_equal(fx->accepted_calls, 1);
	cl_ack(cl);                       /* duplicate: no second accept */
	assert_int_equal(fx->accepted_calls, 1);
	assert_int_equal(ctr(fx)->accepts, 1);
}

/* RFC 6298 5.5 / RFC 9293 3.8.1: the lost SYN-ACK is retransmitted after the
 * initial RTO, then with doubling intervals; after syn_retries the half-open
 * connection is dropped without any app callback. */
static void test_lost_synack_retransmitted_with_backoff(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40005, 12345);
	uint64_t iv[8];
	unsigned n = 0;
	struct seg s, r;

	cl_syn(cl);
	fx_pop_must(fx, &s);
	for (;;) {
		uint64_t w = fx_wait(fx, 40 * SEC);

		if (w == UINT64_MAX)
			break;
		fx_pop_must(fx, &r);
		if (r.flags & F_RST)
			continue;
		assert_int_equal(r.flags, F_SYN | F_ACK);
		assert_int_equal(r.seq, s.seq);
		assert_int_equal(r.ack, s.ack);
		assert_true(n < 8);
		iv[n++] = w;
	}
	assert_int_equal(n, fx->cfg.syn_retries);
	assert_true(iv[0] + SLACK >= fx->cfg.rto_initial_us);
	assert_true(iv[0] <= fx->cfg.rto_initial_us + SLACK);
	for (unsigned i = 1; i < n; i++) {
		assert_true(iv[i] + SLACK >= 2 * iv[i - 1]);
		assert_true(iv[i] <= 2 * iv[i - 1] + SLACK);
	}
	assert_int_equal(ctr(fx)->conns_in_state[TCP_SYN_RECEIVED], 0);
	assert_int_equal(fx->accepted_calls, 0);
	assert_int_equal(fx->closed_calls, 0);
	/* the late ACK now finds no connection: RST <SEQ=SEG.ACK> */
	cl_ack(cl);
	assert_int_equal(fx->accepted_calls, 0);
	fx_pop_must(fx, &r);
	assert_true(r.flags & F_RST);
	assert_int_equal(r.seq, cl->rcv_nxt);
}

/* RFC 9293 3.10.7.4 (SYN-RECEIVED): an unacceptable ACK draws
 * <SEQ=SEG.ACK><CTL=RST>, and the half-open connection stays. */
static void test_synrcvd_bad_ack_gets_rst(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40006, 500);
	struct seg s, r;

	cl_syn(cl);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	cl_seg(cl, F_ACK, cl->snd_nxt, s.seq + 1000, NULL, 0);
	fx_pop_must(fx, &r);
	assert_int_equal(r.flags & (F_RST | F_SYN), F_RST);
	assert_int_equal(r.seq, s.seq + 1000);
	assert_int_equal(fx->accepted_calls, 0);
	cl_ack(cl);
	assert_int_equal(fx->accepted_calls, 1);
}

/* RST in SYN-RECEIVED with an in-window sequence number removes the
 * half-open connection; no app callback was ever made for it. */
static void test_synrcvd_rst_removes_half_open(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40007, 600);
	struct seg s;

	cl_syn(cl);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	cl_seg(cl, F_RST, cl->snd_nxt, 0, NULL, 0);
	assert_int_equal(fx_pending(fx), 0);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_SYN_RECEIVED], 0);
	assert_int_equal(fx->accepted_calls, 0);
	assert_int_equal(fx->closed_calls, 0);
}

/* The app refuses the connection in accepted(): RST <SEQ=SND.NXT>, no
 * closed(), nothing left in the table. */
static void test_accept_refused_sends_rst(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40008, 700);
	struct seg s, r;

	fx->refuse = true;
	cl_syn(cl);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	cl_ack(cl);
	assert_int_equal(fx->accepted_calls, 1);
	fx_pop_must(fx, &r);
	assert_true(r.flags & F_RST);
	assert_int_equal(r.seq, s.seq + 1);
	assert_int_equal(fx->closed_calls, 0);
	assert_true(ctr(fx)->resets_out >= 1);
	for (int i = 0; i < TCP_STATE_COUNT; i++)
		if (i != TCP_TIME_WAIT)
			assert_int_equal(ctr(fx)->conns_in_state[i], 0);
}

/* ======================================================================== */
/* MSS and data                                                             */
/* ======================================================================== */

/* The peer announced MSS 500: no segment's payload + options exceeds it
 * (RFC 9293 3.7.1), and a response of many MSS arrives intact. */
static void test_mss_of_peer_respected(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40010, 1);
	static uint8_t big[20000];

	cl->mss = 500;
	fill_pattern(big, sizeof(big), 3);
	fx->mode = APP_REPLY;
	fx->reply = big;
	fx->reply_len = sizeof(big);
	cl_connect(cl);
	cl_data(cl, "x", 1);
	cl_recv(cl, sizeof(big), 30 * SEC);
	assert_int_equal(cl->rx_len, sizeof(big));
	assert_memory_equal(cl->rx, big, sizeof(big));
	assert_int_equal(cl->mss_violations, 0);
	assert_true(cl->max_payload > 400);        /* and segments are not tiny */
}

/* The MSS we announce is cfg.mss, and the peer may fill it: a full-sized
 * segment from the peer is taken whole. */
static void test_mss_announced_and_full_segments_accepted(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct cl *cl;
	struct seg s;
	uint8_t buf[1000];

	cfg.mss = 1000;
	fx_recreate(fx, &cfg);
	cl = cl_new(fx, 40011, 2);
	cl->ts = false;
	cl_syn(cl);
	fx_pop_must(fx, &s);
	assert_int_equal(s.mss, 1000);
	cl_absorb(cl, &s);
	cl_ack(cl);
	cl->ac = fx_find_ac(fx, 40011);
	assert_non_null(cl->ac);
	fill_pattern(buf, sizeof(buf), 4);
	cl_data(cl, buf, sizeof(buf));
	cl_data(cl, buf, sizeof(buf));
	assert_int_equal(cl->ac->rx_len, 2000);
	assert_memory_equal(cl->ac->rx + 1000, buf, sizeof(buf));
}

/* Small request, echo: the reply carries the ACK; no separate pure ACK
 * follows, even after the delayed-ACK time (RFC 9293 3.8.6.3). */
static void test_echo_reply_piggybacks_ack(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40012, 3);
	struct seg s;

	fx->mode = APP_ECHO;
	cl_connect(cl);
	cl_data(cl, "hello", 5);
	fx_pop_must(fx, &s);
	assert_int_equal(s.len, 5);
	assert_memory_equal(s.data, "hello", 5);
	assert_true(s.flags & F_ACK);
	assert_int_equal(s.ack, cl->snd_nxt);
	assert_int_equal(s.seq, cl->rcv_nxt);
	assert_int_equal(fx_pending(fx), 0);
	cl_absorb(cl, &s);
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	assert_int_equal(fx_pending(fx), 0);
	assert_int_equal(ctr(fx)->delayed_acks, 0);
}

/* Data both ways: a 64-byte request, a response of many MSS. The first
 * flight is within the initial window (RFC 5681 3.1, RFC 6928: <= 10). */
static void test_large_response_several_mss(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40013, 4);
	static uint8_t big[60000];
	uint8_t req[64];
	struct seg v[64];
	unsigned n;

	fill_pattern(big, sizeof(big), 5);
	fill_pattern(req, sizeof(req), 6);
	fx->mode = APP_REPLY;
	fx->reply = big;
	fx->reply_len = sizeof(big);
	cl_connect(cl);
	cl_data(cl, req, sizeof(req));
	assert_int_equal(cl->ac->rx_len, sizeof(req));
	assert_memory_equal(cl->ac->rx, req, sizeof(req));
	n = fx_take_data(fx, v, 64);
	assert_true(n >= 1 && n <= 10);
	for (unsigned i = 0; i < n; i++)
		cl_absorb(cl, &v[i]);
	cl_ack(cl);
	cl_recv(cl, sizeof(big), 30 * SEC);
	assert_int_equal(cl->rx_len, sizeof(big));
	assert_memory_equal(cl->rx, big, sizeof(big));
	assert_int_equal(cl->mss_violations, 0);
	fx_advance(fx, 10 * MS);
	assert_int_equal(tcp_send_queued(cl->ac->c), 0);
}

/* Client data larger than one segment, several segments in a row. */
static void test_client_data_many_segments(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40014, 5);
	static uint8_t buf[40000];

	fill_pattern(buf, sizeof(buf), 7);
	cl_connect(cl);
	for (size_t off = 0; off < sizeof(buf); off += 1448) {
		size_t n = sizeof(buf) - off < 1448 ? sizeof(buf) - off : 1448;

		cl_data(cl, buf + off, n);
		cl_take_all(cl, false);
	}
	assert_int_equal(cl->ac->rx_len, sizeof(buf));
	assert_memory_equal(cl->ac->rx, buf, sizeof(buf));
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	cl_take_all(cl, false);
	assert_int_equal(cl->srv_ack, cl->snd_nxt);
}

/* Several connections at once, each gets its own bytes back. */
static void test_connections_are_isolated(void **state)
{
	struct fx *fx = *state;
	struct cl *c[3];
	char msg[32];

	fx->mode = APP_ECHO;
	for (int i = 0; i < 3; i++) {
		c[i] = cl_new(fx, (uint16_t)(40020 + i), 1000u * (unsigned)i);
		cl_connect(c[i]);
	}
	assert_int_equal(ctr(fx)->conns_in_state[TCP_ESTABLISHED], 3);
	for (int r = 0; r < 3; r++) {
		for (int i = 2; i >= 0; i--) {
			int n = snprintf(msg, sizeof(msg), "c%d-r%d;", i, r);

			cl_data(c[i], msg, (size_t)n);
			cl_take_all(c[i], true);
		}
	}
	for (int i = 0; i < 3; i++) {
		char want[64];
		int n = snprintf(want, sizeof(want), "c%d-r0;c%d-r1;c%d-r2;",
				 i, i, i);

		assert_int_equal(c[i]->rx_len, (size_t)n);
		assert_memory_equal(c[i]->rx, want, (size_t)n);
	}
}

/* ======================================================================== */
/* loss, reorder, duplicates (client -> server)                             */
/* ======================================================================== */

/* A lost data segment: the next ones are out of order and each draws an
 * immediate duplicate ACK (RFC 5681 4.2); when the hole is filled the app
 * gets every byte once, in order, and the ACK is immediate. */
static void test_client_segment_lost_then_hole_filled(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40030, 100);
	uint8_t a[500], b[500], c[500];
	uint32_t sa;
	struct seg s;

	fill_pattern(a, 500, 1);
	fill_pattern(b, 500, 2);
	fill_pattern(c, 500, 3);
	cl_connect(cl);
	sa = cl->snd_nxt;
	cl->snd_nxt += 500;                        /* 'a' is lost */
	cl_data(cl, b, 500);
	fx_pop_must(fx, &s);
	assert_true(s.flags & F_ACK);
	assert_int_equal(s.ack, sa);
	assert_int_equal(s.len, 0);
	cl_data(cl, c, 500);
	fx_pop_must(fx, &s);
	assert_int_equal(s.ack, sa);
	assert_int_equal(cl->ac->rx_len, 0);
	assert_true(ctr(fx)->ooo_queued >= 2);

	cl_seg(cl, F_ACK | F_PSH, sa, cl->rcv_nxt, a, 500);
	assert_int_equal(cl->ac->rx_len, 1500);
	assert_memory_equal(cl->ac->rx, a, 500);
	assert_memory_equal(cl->ac->rx + 500, b, 500);
	assert_memory_equal(cl->ac->rx + 1000, c, 500);
	fx_pop_must(fx, &s);                       /* immediate, RFC 5681 4.2 */
	assert_int_equal(s.ack, sa + 1500);
}

/* Three segments delivered in reverse order: bytes in order, once. */
static void test_reordered_segments_delivered_in_order(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40031, 200);
	uint8_t d[900];
	uint32_t s0;

	fill_pattern(d, sizeof(d), 9);
	cl_connect(cl);
	s0 = cl->snd_nxt;
	cl_seg(cl, F_ACK, s0 + 600, cl->rcv_nxt, d + 600, 300);
	cl_seg(cl, F_ACK, s0 + 300, cl->rcv_nxt, d + 300, 300);
	assert_int_equal(cl->ac->rx_len, 0);
	cl_seg(cl, F_ACK, s0, cl->rcv_nxt, d, 300);
	cl->snd_nxt = s0 + 900;
	assert_int_equal(cl->ac->rx_len, 900);
	assert_memory_equal(cl->ac->rx, d, 900);
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	cl_take_all(cl, false);
	assert_int_equal(cl->srv_ack, s0 + 900);
}

/* The same segment twice: delivered once; the duplicate draws an ACK
 * (RFC 9293 3.10.7.4: not acceptable -> send ACK). */
static void test_duplicate_segment_delivered_once(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40032, 300);
	uint32_t s0;
	struct seg s;

	cl_connect(cl);
	s0 = cl->snd_nxt;
	cl_data(cl, "abcdef", 6);
	fx_drop_all(fx);
	cl_seg(cl, F_ACK | F_PSH, s0, cl->rcv_nxt, "abcdef", 6);
	assert_int_equal(cl->ac->rx_len, 6);
	assert_memory_equal(cl->ac->rx, "abcdef", 6);
	fx_pop_must(fx, &s);
	assert_true(s.flags & F_ACK);
	assert_int_equal(s.ack, s0 + 6);
	/* an out-of-order duplicate is also queued once */
	cl_seg(cl, F_ACK, s0 + 100, cl->rcv_nxt, "ZZ", 2);
	cl_seg(cl, F_ACK, s0 + 100, cl->rcv_nxt, "ZZ", 2);
	fx_drop_all(fx);
	{
		uint8_t gap[94];

		memset(gap, 'g', sizeof(gap));
		cl_seg(cl, F_ACK, s0 + 6, cl->rcv_nxt, gap, sizeof(gap));
	}
	assert_int_equal(cl->ac->rx_len, 102);
	assert_memory_equal(cl->ac->rx + 100, "ZZ", 2);
}

/* A retransmission overlapping received bytes and carrying new ones:
 * only the new bytes are delivered (RFC 9293 3.10.7.4, trimming). */
static void test_overlapping_segment_delivers_new_bytes_once(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40033, 400);
	uint32_t s0;

	cl_connect(cl);
	s0 = cl->snd_nxt;
	cl_data(cl, "0123456789", 10);
	cl_seg(cl, F_ACK, s0 + 5, cl->rcv_nxt, "56789ABCDE", 10);
	cl->snd_nxt = s0 + 15;
	assert_int_equal(cl->ac->rx_len, 15);
	assert_memory_equal(cl->ac->rx, "0123456789ABCDE", 15);
}

/* ======================================================================== */
/* loss (server -> client): RTO, fast retransmit, NewReno                   */
/* ======================================================================== */

/* A lost data segment is retransmitted by the RTO, not before rto_min and
 * not after the initial RTO (RFC 6298 2.1-2.4), identical in seq and
 * bytes. Once ACKed, nothing more is sent. */
static void test_lost_server_data_rto_retransmit(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40040, 500);
	uint8_t d[300];
	struct seg s, r;
	uint64_t w;

	fill_pattern(d, sizeof(d), 11);
	cl_connect(cl);
	assert_int_equal(tcp_send(cl->ac->c, d, sizeof(d)), sizeof(d));
	tcp_stack_flush(fx->st);
	fx_pop_must(fx, &s);
	assert_int_equal(s.len, 300);
	w = fx_wait(fx, 5 * SEC);
	assert_true(w != UINT64_MAX);
	assert_true(w + SLACK >= fx->cfg.rto_min_us);
	assert_true(w <= fx->cfg.rto_initial_us + SLACK);
	fx_pop_must(fx, &r);
	assert_int_equal(r.seq, s.seq);
	assert_int_equal(r.len, 300);
	assert_memory_equal(r.data, d, 300);
	assert_true(ctr(fx)->retransmits >= 1);
	assert_true(ctr(fx)->rto_fired >= 1);
	cl_absorb(cl, &r);
	cl_ack(cl);
	assert_int_equal(tcp_send_queued(cl->ac->c), 0);
	assert_int_equal(fx_wait(fx, 10 * SEC), UINT64_MAX);
}

/* Never ACKed: retransmissions at doubling intervals (RFC 6298 5.5), capped
 * at rto_max, then the connection is aborted: closed() once, aborts == 1. */
static void test_rto_backoff_doubles_capped_then_abort(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct cl *cl;
	uint64_t iv[32];
	unsigned n = 0;
	struct seg s;

	cfg.rto_max_us = 3 * SEC;
	cfg.max_retries = 6;
	fx_recreate(fx, &cfg);
	cl = cl_new(fx, 40041, 600);
	cl_connect(cl);
	assert_int_equal(tcp_send(cl->ac->c, "lost", 4), 4);
	tcp_stack_flush(fx->st);
	fx_pop_must(fx, &s);
	while (cl->ac->closed_n == 0) {
		uint64_t w = fx_wait(fx, 30 * SEC);

		if (w == UINT64_MAX)
			break;
		while (fx_pop(fx, &s)) {
			if (s.flags & F_RST)
				continue;
			assert_int_equal(s.len, 4);
			assert_true(n < 32);
			iv[n++] = w;
		}
	}
	assert_int_equal(cl->ac->closed_n, 1);
	assert_int_equal(ctr(fx)->aborts, 1);
	/* "abort after max_retries RTOs in a row": the last may abort
	 * instead of retransmitting */
	assert_true(n == cfg.max_retries || n + 1 == cfg.max_retries);
	for (unsigned i = 0; i < n; i++)
		assert_true(iv[i] <= cfg.rto_max_us + SLACK);
	for (unsigned i = 1; i < n; i++) {
		uint64_t want = 2 * iv[i - 1] < cfg.rto_max_us ?
			2 * iv[i - 1] : cfg.rto_max_us;

		assert_true(iv[i] + SLACK >= want);
		assert_true(iv[i] <= want + SLACK);
	}
	assert_true(iv[n - 1] + SLACK >= cfg.rto_max_us);    /* reached cap */
	assert_int_equal(ctr(fx)->conns_in_state[TCP_ESTABLISHED], 0);
}

/* Helper: connection with MSS 536 and a cwnd grown by one fully ACKed reply,
 * so that the next reply leaves >= 6 segments in flight. */
static struct app_conn *setup_flight(struct fx *fx, struct cl **out,
				     uint16_t port, uint8_t *big, size_t n)
{
	struct cl *cl = cl_new(fx, port, 7000);

	cl->mss = 536;
	fill_pattern(big, n, port);
	fx->mode = APP_REPLY;
	fx->reply = big;
	fx->reply_len = n;
	cl_connect(cl);
	cl_data(cl, "1", 1);
	/* ACK each segment separately: slow start grows cwnd per ACK */
	while (cl->rx_len < n) {
		struct seg s;

		if (!fx_pop(fx, &s)) {
			fx_advance(fx, TICK);
			continue;
		}
		cl_absorb(cl, &s);
		cl_ack(cl);
	}
	cl_take_all(cl, true);
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	fx_drop_all(fx);
	cl->rx_len = 0;
	*out = cl;
	return cl->ac;
}

/* Three duplicate ACKs trigger a retransmission of the first unACKed
 * segment at once, long before the RTO (RFC 5681 3.2). */
static void test_three_dupacks_fast_retransmit(void **state)
{
	struct fx *fx = *state;
	static uint8_t big[30000];
	struct seg v[128], s;
	struct cl *cl;
	unsigned n;
	bool found = false;
	uint64_t rto_before;

	setup_flight(fx, &cl, 40042, big, sizeof(big));
	rto_before = ctr(fx)->rto_fired;
	cl_data(cl, "2", 1);
	n = fx_take_data(fx, v, 128);
	assert_true(n >= 5);
	/* v[0] lost; v[1..3] arrive: three duplicate ACKs */
	for (unsigned i = 1; i <= 3; i++) {
		cl_ack(cl);
		while (fx_pop(fx, &s))
			if (s.len && s.seq == v[0].seq)
				found = true;
		if (i < 3)
			assert_false(found);
	}
	assert_true(found);
	assert_int_equal(ctr(fx)->fast_retransmits, 1);
	assert_int_equal(ctr(fx)->rto_fired, rto_before);
	/* recovery completes and the reply arrives whole */
	cl_absorb(cl, &v[0]);
	for (unsigned i = 1; i < n; i++)
		cl_absorb(cl, &v[i]);
	cl_ack(cl);
	cl_recv(cl, sizeof(big), 30 * SEC);
	assert_int_equal(cl->rx_len, sizeof(big));
	assert_memory_equal(cl->rx, big, sizeof(big));
}

/* NewReno (RFC 6582 3.2 step 5): two segments of a flight lost; after the
 * fast retransmit of the first, the partial ACK makes the second go out at
 * once, without an RTO. */
static void test_newreno_partial_ack_retransmits_next_hole(void **state)
{
	struct fx *fx = *state;
	static uint8_t big[30000];
	struct seg v[128], s;
	struct cl *cl;
	unsigned n;
	bool found0 = false, found2 = false;
	uint64_t rto_before;

	setup_flight(fx, &cl, 40043, big, sizeof(big));
	rto_before = ctr(fx)->rto_fired;
	cl_data(cl, "3", 1);
	n = fx_take_data(fx, v, 128);
	assert_true(n >= 6);
	/* v[0] and v[2] lost; v[1], v[3], v[4] arrive: three dup ACKs */
	for (unsigned i = 0; i < 3; i++) {
		cl_ack(cl);
		while (fx_pop(fx, &s))
			if (s.len && s.seq == v[0].seq)
				found0 = true;
	}
	assert_true(found0);
	/* the retransmitted v[0] arrives: ACK up to v[2] (partial) */
	cl_absorb(cl, &v[0]);
	cl_absorb(cl, &v[1]);
	assert_int_equal(cl->rcv_nxt, v[2].seq);
	cl_ack(cl);
	while (fx_pop(fx, &s))
		if (s.len && s.seq == v[2].seq)
			found2 = true;
	assert_true(found2);
	assert_int_equal(ctr(fx)->rto_fired, rto_before);
	for (unsigned i = 2; i < n; i++)
		cl_absorb(cl, &v[i]);
	cl_ack(cl);
	cl_recv(cl, sizeof(big), 30 * SEC);
	assert_int_equal(cl->rx_len, sizeof(big));
	assert_memory_equal(cl->rx, big, sizeof(big));
}

/* seg_alloc fails: counted, and the data goes out later by the RTO. */
static void test_alloc_failure_recovered_by_rto(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40044, 800);

	cl_connect(cl);
	fx->alloc_fail = true;
	assert_int_equal(tcp_send(cl->ac->c, "payload", 7), 7);
	tcp_stack_flush(fx->st);
	assert_int_equal(fx_pending(fx), 0);
	assert_true(fx->alloc_refused >= 1);
	assert_true(ctr(fx)->alloc_failures >= 1);
	fx->alloc_fail = false;
	cl_recv(cl, 7, 5 * SEC);
	assert_int_equal(cl->rx_len, 7);
	assert_memory_equal(cl->rx, "payload", 7);
	assert_int_equal(fx->io_errors, 0);
}

/* ======================================================================== */
/* windows                                                                  */
/* ======================================================================== */

/* Peer's window is 0: no data beyond one probe byte; probes at growing
 * intervals capped at persist_max (RFC 9293 3.8.6.1), the connection is
 * not aborted while the peer answers; data flows once the window opens. */
static void test_zero_window_persist_probes_backoff(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct cl *cl;
	uint8_t d[1000];
	uint64_t iv[16];
	unsigned n = 0;
	struct seg s;

	cfg.persist_max_us = 4 * SEC;
	fx_recreate(fx, &cfg);
	cl = cl_new(fx, 40050, 900);
	fill_pattern(d, sizeof(d), 13);
	cl_syn(cl);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	cl->win = 0;
	cl_ack(cl);
	cl->ac = fx_find_ac(fx, 40050);
	assert_non_null(cl->ac);
	assert_int_equal(tcp_send(cl->ac->c, d, sizeof(d)), sizeof(d));
	tcp_stack_flush(fx->st);
	while (fx_pop(fx, &s))
		assert_true(s.len <= 1);
	while (n < 9) {
		uint64_t w = fx_wait(fx, 20 * SEC);

		assert_true(w != UINT64_MAX);
		fx_pop_must(fx, &s);
		assert_true(s.len <= 1);
		assert_false(s.flags & (F_RST | F_FIN));
		iv[n++] = w;
		cl_ack(cl);              /* still zero, probe byte not taken */
		while (fx_pop(fx, &s))
			assert_true(s.len <= 1);
	}
	for (unsigned i = 1; i < n; i++) {
		uint64_t want = 2 * iv[i - 1] < cfg.persist_max_us ?
			2 * iv[i - 1] : cfg.persist_max_us;

		assert_true(iv[i] + SLACK >= want);
		assert_true(iv[i] <= want + SLACK);
	}
	assert_true(iv[n - 1] + SLACK >= cfg.persist_max_us);
	assert_true(ctr(fx)->persist_probes >= n);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_ESTABLISHED);
	assert_int_equal(ctr(fx)->aborts, 0);
	cl->win = 65535;
	cl_ack(cl);
	cl_recv(cl, sizeof(d), 10 * SEC);
	assert_int_equal(cl->rx_len, sizeof(d));
	assert_memory_equal(cl->rx, d, sizeof(d));
}

/* Our receive window: the app consumes nothing, the advertised window falls
 * to 0 (the right edge never moves left, RFC 9293 3.8.6.2.2), data beyond
 * it is dropped and ACKed; when the app consumes, a window update goes out
 * at flush without any peer segment. */
static void test_rcv_window_closes_and_update_sent(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct cl *cl;
	uint8_t d[1000];
	uint32_t edge, total = 0;
	const uint8_t *p;
	struct seg s;

	cfg.rcv_buf = 8192;
	fx_recreate(fx, &cfg);
	fx->mode = APP_HOLD;
	cl = cl_new(fx, 40051, 1000);
	fill_pattern(d, sizeof(d), 15);
	cl_connect(cl);
	edge = cl->srv_ack + cl->srv_wnd;
	for (int guard = 0; guard < 100; guard++) {
		uint32_t room = edge - cl->snd_nxt;
		size_t k = room < sizeof(d) ? room : sizeof(d);

		if (room == 0)
			break;
		cl_data(cl, d, k);
		total += (uint32_t)k;
		fx_advance(fx, fx->cfg.delack_us + SLACK);
		while (fx_pop(fx, &s)) {
			uint32_t e;

			cl_absorb(cl, &s);
			e = cl->srv_ack + cl->srv_wnd;
			assert_true(SEQ_LEQ(edge, e));   /* never shrinks */
			edge = e;
		}
	}
	assert_int_equal(cl->srv_wnd, 0);
	assert_int_equal(cl->srv_ack, cl->snd_nxt);
	assert_true(total >= cfg.rcv_buf / 2 && total <= cfg.rcv_buf);
	assert_int_equal(tcp_recv_peek(cl->ac->c, &p), total);

	/* beyond the window: dropped, ACKed at once with window 0 */
	cl_seg(cl, F_ACK | F_PSH, cl->snd_nxt, cl->rcv_nxt, d, 100);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	assert_int_equal(s.ack, cl->snd_nxt);
	assert_int_equal(cl->srv_wnd, 0);
	assert_int_equal(tcp_recv_peek(cl->ac->c, &p), total);
	assert_true(ctr(fx)->rcv_window_drops > 0 || ctr(fx)->unacceptable > 0);

	tcp_recv_consume(cl->ac->c, total);
	tcp_stack_flush(fx->st);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	assert_int_equal(s.len, 0);
	assert_int_equal(s.ack, cl->snd_nxt);
	assert_true(cl->srv_wnd >= cfg.rcv_buf / 2);
	cl_data(cl, d, 500);
	assert_int_equal(tcp_recv_peek(cl->ac->c, &p), 500);
	assert_memory_equal(p, d, 500);
}

/* RFC 7323 2.3: a large buffer is advertised with a shift; the SYN-ACK's
 * window is not scaled, later windows are, and cover the buffer. */
static void test_window_scale_large_window_advertised(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct cl *cl;
	struct seg s;

	cfg.rcv_buf = 1u << 20;
	fx_recreate(fx, &cfg);
	cl = cl_new(fx, 40052, 1100);
	cl_syn(cl);
	fx_pop_must(fx, &s);
	assert_true(s.ws >= 5 && s.ws <= 14);       /* 1 MiB needs >= 5 */
	assert_true(s.win > 0);
	cl_absorb(cl, &s);
	cl_ack(cl);
	cl_data(cl, "ping", 4);
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	assert_int_equal(s.ack, cl->snd_nxt);
	assert_true(cl->srv_wnd >= (1u << 19));
	assert_true(cl->srv_wnd <= (1u << 20) + (1u << cl->srv_ws));
}

/* The peer's WS is honoured when both sides sent WS: field 100, shift 4 =
 * 1600 bytes may be in flight (RFC 7323 2.2). */
static void test_window_scale_peer_honoured(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40053, 1200);
	static uint8_t d[5000];
	struct seg v[16];
	size_t inflight = 0;
	unsigned n;

	cl->ws = 4;
	cl->win = 100;
	fill_pattern(d, sizeof(d), 17);
	cl_connect(cl);
	assert_int_equal(tcp_send(cl->ac->c, d, sizeof(d)), sizeof(d));
	tcp_stack_flush(fx->st);
	n = fx_take_data(fx, v, 16);
	for (unsigned i = 0; i < n; i++)
		inflight += v[i].len;
	assert_true(inflight > 1000);           /* > 100: the shift was used */
	assert_true(inflight <= 1600);
}

/* We do not do WS: the peer's shift must be ignored, its window field taken
 * as bytes (RFC 7323 2.2), and our SYN-ACK carries no WS. */
static void test_window_scale_ignored_unless_both_sent(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct cl *cl;
	static uint8_t d[5000];
	struct seg s;
	size_t inflight = 0;

	cfg.window_scaling = false;
	fx_recreate(fx, &cfg);
	cl = cl_new(fx, 40054, 1300);
	cl->ws = 4;
	cl->win = 1000;
	cl_syn(cl);
	fx_pop_must(fx, &s);
	assert_int_equal(s.ws, -1);
	cl_absorb(cl, &s);
	cl_ack(cl);
	cl->ac = fx_find_ac(fx, 40054);
	assert_non_null(cl->ac);
	cl_data(cl, "hi", 2);            /* window through the ACK path too */
	assert_int_equal(tcp_send(cl->ac->c, d, sizeof(d)), sizeof(d));
	tcp_stack_flush(fx->st);
	fx_advance(fx, 1 * SEC);
	while (fx_pop(fx, &s))
		if (s.len && SEQ_LEQ(cl->rcv_nxt + inflight, s.seq))
			inflight += s.len;
	assert_true(inflight > 0);
	assert_true(inflight <= 1000);
}

/* The client sends no WS: our SYN-ACK must not carry one either. */
static void test_no_ws_in_synack_when_peer_sent_none(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40055, 1400);
	struct seg s;

	cl->ws = -1;
	cl_syn(cl);
	fx_pop_must(fx, &s);
	assert_int_equal(s.ws, -1);
	assert_true(s.has_ts);
}

/* The app keeps sending into a small send buffer: tcp_send takes what fits,
 * writable() follows the ACKs, all bytes arrive. */
static void test_send_buffer_full_then_writable(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct cl *cl;
	static uint8_t d[20000];
	size_t off, space;

	cfg.snd_buf = 4096;
	fx_recreate(fx, &cfg);
	cl = cl_new(fx, 40056, 1500);
	fill_pattern(d, sizeof(d), 19);
	cl_connect(cl);
	space = tcp_send_space(cl->ac->c);
	assert_true(space > 0 && space <= 4096);
	off = tcp_send(cl->ac->c, d, sizeof(d));
	assert_int_equal(off, space);
	assert_int_equal(tcp_send_space(cl->ac->c), 0);
	assert_int_equal(tcp_send_queued(cl->ac->c), off);
	tcp_stack_flush(fx->st);
	for (int guard = 0; off < sizeof(d) && guard < 10000; guard++) {
		unsigned wb = cl->ac->writable_n;

		cl_take_all(cl, true);
		if (cl->ac->writable_n != wb || tcp_send_space(cl->ac->c))
			off += tcp_send(cl->ac->c, d + off, sizeof(d) - off);
		tcp_stack_flush(fx->st);
		if (fx_pending(fx) == 0)
			fx_advance(fx, TICK);
	}
	assert_int_equal(off, sizeof(d));
	assert_true(cl->ac->writable_n >= 1);
	cl_recv(cl, sizeof(d), 10 * SEC);
	assert_int_equal(cl->rx_len, sizeof(d));
	assert_memory_equal(cl->rx, d, sizeof(d));
	assert_int_equal(tcp_send_queued(cl->ac->c), 0);
	assert_int_equal(tcp_send_space(cl->ac->c), space);
}

/* ======================================================================== */
/* RST, challenge ACKs, unknown flows                                       */
/* ======================================================================== */

/* RST at exactly RCV.NXT is accepted (RFC 5961 3.2): closed() once, counted,
 * nothing sent; later segments of the flow get RST. */
static void test_rst_exact_seq_closes(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40060, 1600);
	struct seg s;

	cl_connect(cl);
	cl_seg(cl, F_RST, cl->snd_nxt, 0, NULL, 0);
	assert_int_equal(cl->ac->closed_n, 1);
	assert_int_equal(ctr(fx)->resets_in, 1);
	assert_int_equal(fx_pending(fx), 0);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_ESTABLISHED], 0);
	cl_data(cl, "late", 4);
	fx_pop_must(fx, &s);
	assert_true(s.flags & F_RST);
	assert_int_equal(s.seq, cl->rcv_nxt);
	assert_int_equal(cl->ac->closed_n, 1);
}

/* RST in the window but not at RCV.NXT: challenge ACK (RFC 5961 3.2), the
 * connection stays. */
static void test_rst_in_window_not_exact_challenge_ack(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40061, 1700);
	struct seg s;

	cl_connect(cl);
	cl_seg(cl, F_RST, cl->snd_nxt + 100, 0, NULL, 0);
	fx_pop_must(fx, &s);
	assert_int_equal(s.flags & (F_RST | F_SYN | F_FIN | F_ACK), F_ACK);
	assert_int_equal(s.ack, cl->snd_nxt);
	assert_int_equal(s.seq, cl->rcv_nxt);
	assert_int_equal(ctr(fx)->challenge_acks, 1);
	assert_int_equal(ctr(fx)->resets_in, 0);
	assert_int_equal(cl->ac->closed_n, 0);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_ESTABLISHED);
	/* the legitimate peer answers with the exact RST */
	cl_seg(cl, F_RST, cl->snd_nxt, 0, NULL, 0);
	assert_int_equal(cl->ac->closed_n, 1);
}

/* RST outside the window: silently dropped (RFC 5961 3.2). */
static void test_rst_outside_window_ignored(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40062, 1800);

	cl_connect(cl);
	cl_seg(cl, F_RST, cl->snd_nxt + 0x40000000u, 0, NULL, 0);
	cl_seg(cl, F_RST, cl->snd_nxt - 1, 0, NULL, 0);
	assert_int_equal(fx_pending(fx), 0);
	assert_int_equal(cl->ac->closed_n, 0);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_ESTABLISHED);
	assert_int_equal(ctr(fx)->resets_in, 0);
}

/* SYN on a synchronized connection: challenge ACK (RFC 5961 4.2, RFC 9293
 * 3.10.7.4), the connection stays, no new SYN-ACK. */
static void test_syn_on_established_challenge_ack(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40063, 1900);
	struct seg s;

	cl_connect(cl);
	cl_seg(cl, F_SYN, cl->snd_nxt + 10, 0, NULL, 0);    /* in window */
	fx_pop_must(fx, &s);
	assert_int_equal(s.flags & (F_RST | F_SYN | F_ACK), F_ACK);
	assert_int_equal(s.ack, cl->snd_nxt);
	assert_int_equal(ctr(fx)->challenge_acks, 1);
	/* the old SYN again (below RCV.NXT): fails the first check of
	 * 3.10.7.4 already, so an ACK either way (counter may differ) */
	cl_seg(cl, F_SYN, cl->iss, 0, NULL, 0);
	fx_pop_must(fx, &s);
	assert_int_equal(s.flags & (F_RST | F_SYN | F_ACK), F_ACK);
	assert_int_equal(s.ack, cl->snd_nxt);
	assert_int_equal(cl->ac->closed_n, 0);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_ESTABLISHED);
	assert_int_equal(ctr(fx)->accepts, 1);
}

/* RFC 9293 3.10.7.1 (CLOSED): to a segment of no connection, RST
 * <SEQ=SEG.ACK> when it had ACK, else <SEQ=0><ACK=SEG.SEQ+SEG.LEN>
 * <CTL=RST,ACK>. 3.10.7.2 (LISTEN): an ACK gets <SEQ=SEG.ACK><CTL=RST>, a
 * segment with neither SYN nor ACK is dropped. Never an RST for an RST. */
static void test_unknown_flow_gets_rst(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40064, 2000);
	struct seg s;
	uint64_t before = ctr(fx)->resets_out;
	uint8_t b[64];
	size_t n;

	cl_seg(cl, F_ACK | F_PSH, 5000, 0x12345678, "abc", 3);
	fx_pop_must(fx, &s);
	assert_int_equal(s.flags & (F_RST | F_ACK | F_SYN), F_RST);
	assert_int_equal(s.seq, 0x12345678);
	assert_int_equal(s.dport, 40064);
	assert_int_equal(s.rip, CL_IP);
	assert_int_equal(s.len, 0);

	/* to the listening port without ACK (LISTEN, fourth check): drop */
	cl_seg(cl, F_FIN, 7000, 0, "abcd", 4);
	assert_int_equal(fx_pending(fx), 0);

	/* to a port nobody listens on (CLOSED), without ACK */
	n = cl_build(cl, b, F_FIN | F_PSH, 7000, 0, "abcd", 4);
	b[2] = 0;
	b[3] = 82;
	fx_feed(fx, CL_IP, b, n);
	fx_pop_must(fx, &s);
	assert_int_equal(s.flags & (F_RST | F_ACK | F_SYN), F_RST | F_ACK);
	assert_int_equal(s.seq, 0);
	assert_int_equal(s.ack, 7000 + 4 + 1);
	assert_int_equal(s.sport, 82);

	cl_seg(cl, F_RST, 8000, 0, NULL, 0);
	cl_seg(cl, F_RST | F_ACK, 8000, 1, NULL, 0);
	n = cl_build(cl, b, F_RST, 8000, 0, NULL, 0);
	b[3] = 82;
	b[2] = 0;
	fx_feed(fx, CL_IP, b, n);
	assert_int_equal(fx_pending(fx), 0);
	assert_int_equal(ctr(fx)->resets_out, before + 2);
	assert_int_equal(fx->accepted_calls, 0);
}

/* A SYN to a port we do not listen on: RST,ACK acking the SYN. */
static void test_syn_to_closed_port_gets_rst(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40065, 2100);
	uint8_t b[64];
	size_t n;
	struct seg s;

	n = cl_build(cl, b, F_SYN, 2100, 0, NULL, 0);
	b[2] = 0;
	b[3] = 81;                             /* port 81 */
	fx_feed(fx, CL_IP, b, n);
	fx_pop_must(fx, &s);
	assert_int_equal(s.flags & (F_RST | F_ACK | F_SYN), F_RST | F_ACK);
	assert_int_equal(s.ack, 2101);
	assert_int_equal(s.sport, 81);
	assert_int_equal(ctr(fx)->syn_received, 0);
}

/* tcp_abort: RST <SEQ=SND.NXT> (RFC 9293 3.10.5), closed() at once. */
static void test_abort_sends_rst_and_closes(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40066, 2200);
	uint8_t d[3000];
	struct seg s;
	uint32_t snd_nxt;
	bool rst = false;

	cl_connect(cl);
	fill_pattern(d, sizeof(d), 21);
	tcp_send(cl->ac->c, d, sizeof(d));
	tcp_stack_flush(fx->st);
	snd_nxt = cl->rcv_nxt;
	while (fx_pop(fx, &s))
		if (SEQ_LT(snd_nxt, s.seq + (uint32_t)s.len))
			snd_nxt = s.seq + (uint32_t)s.len;
	tcp_abort(cl->ac->c);
	assert_int_equal(cl->ac->closed_n, 1);
	tcp_stack_flush(fx->st);
	while (fx_pop(fx, &s)) {
		assert_int_equal(s.len, 0);
		if (s.flags & F_RST) {
			rst = true;
			assert_int_equal(s.seq, snd_nxt);
		}
	}
	assert_true(rst);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_ESTABLISHED], 0);
	fx_advance(fx, 5 * SEC);
	assert_int_equal(fx_pending(fx), 0);           /* no retransmissions */
	assert_int_equal(cl->ac->closed_n, 1);
}

/* An ACK of something not yet sent: ACK back, segment dropped (RFC 9293
 * 3.10.7.4, fifth check). */
static void test_ack_of_unsent_data_acked_and_dropped(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40067, 2300);
	struct seg s;

	cl_connect(cl);
	cl_seg(cl, F_ACK | F_PSH, cl->snd_nxt, cl->rcv_nxt + 5000, "xy", 2);
	fx_pop_must(fx, &s);
	assert_true(s.flags & F_ACK);
	assert_int_equal(s.ack, cl->snd_nxt);
	assert_int_equal(cl->ac->rx_len, 0);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_ESTABLISHED);
}

/* A segment entirely outside the receive window: ACK, no data (RFC 9293
 * 3.10.7.4, first check), counted. */
static void test_segment_outside_window_acked_no_data(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40068, 2400);
	struct seg s;
	uint64_t before;

	cl_connect(cl);
	before = ctr(fx)->unacceptable;
	cl_seg(cl, F_ACK | F_PSH, cl->snd_nxt + 1000000, cl->rcv_nxt, "far", 3);
	fx_pop_must(fx, &s);
	assert_true(s.flags & F_ACK);
	assert_int_equal(s.len, 0);
	assert_int_equal(s.ack, cl->snd_nxt);
	assert_int_equal(cl->ac->rx_len, 0);
	assert_true(ctr(fx)->unacceptable > before);
	cl_data(cl, "near", 4);
	assert_int_equal(cl->ac->rx_len, 4);
}

/* ======================================================================== */
/* closing                                                                  */
/* ======================================================================== */

/* Peer FIN first: ACKed, CLOSE_WAIT, readable() with peer_closed; the app
 * still sends, then closes: LAST_ACK, and the final ACK gives closed(). */
static void test_half_close_peer_fin_first(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40070, 2500);
	struct seg s;

	cl_connect(cl);
	cl_data(cl, "req", 3);
	cl_fin(cl);
	assert_true(cl->ac->peer_closed);
	assert_true(tcp_conn_peer_closed(cl->ac->c));
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_CLOSE_WAIT);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_CLOSE_WAIT], 1);
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	cl_take_all(cl, false);
	assert_int_equal(cl->srv_ack, cl->snd_nxt);    /* FIN ACKed */

	assert_int_equal(tcp_send(cl->ac->c, "resp", 4), 4);
	tcp_stack_flush(fx->st);
	cl_recv(cl, 4, 2 * SEC);
	assert_memory_equal(cl->rx, "resp", 4);
	tcp_close(cl->ac->c);
	tcp_stack_flush(fx->st);
	fx_pop_must(fx, &s);
	assert_true(s.flags & F_FIN);
	assert_int_equal(s.seq, cl->rcv_nxt);
	cl_absorb(cl, &s);
	assert_true(cl->got_fin);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_LAST_ACK);
	assert_int_equal(cl->ac->closed_n, 0);
	cl_ack(cl);
	assert_int_equal(cl->ac->closed_n, 1);
	for (int i = 0; i < TCP_STATE_COUNT; i++)
		assert_int_equal(ctr(fx)->conns_in_state[i], 0);
}

/* Peer FIN first, but the peer's FIN arrives with data the app has not
 * consumed yet: peer_closed only after consuming (tcp.h). */
static void test_peer_closed_only_after_bytes_consumed(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40071, 2600);
	const uint8_t *p;

	fx->mode = APP_HOLD;
	cl_connect(cl);
	cl_seg(cl, F_ACK | F_PSH | F_FIN, cl->snd_nxt, cl->rcv_nxt, "tail", 4);
	cl->snd_nxt += 5;
	assert_int_equal(tcp_recv_peek(cl->ac->c, &p), 4);
	assert_false(tcp_conn_peer_closed(cl->ac->c));
	tcp_recv_consume(cl->ac->c, 4);
	assert_true(tcp_conn_peer_closed(cl->ac->c));
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_CLOSE_WAIT);
}

/* App closes first: FIN after the queued data, FIN_WAIT_1 -> (ACK)
 * FIN_WAIT_2 -> (peer FIN) TIME_WAIT, whose record expires after
 * time_wait_us. closed() once. */
static void test_app_close_first_fin_wait_time_wait(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40072, 2700);
	struct seg s;

	cl_connect(cl);
	tcp_send(cl->ac->c, "bye", 3);
	tcp_close(cl->ac->c);
	tcp_stack_flush(fx->st);
	cl_take_all(cl, false);
	assert_int_equal(cl->rx_len, 3);
	assert_true(cl->got_fin);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_FIN_WAIT_1);
	cl_ack(cl);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_FIN_WAIT_2);
	assert_int_equal(fx_pending(fx), 0);
	cl_fin(cl);
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	fx_pop_must(fx, &s);
	assert_int_equal(s.flags & (F_ACK | F_FIN | F_RST), F_ACK);
	assert_int_equal(s.ack, cl->snd_nxt);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_TIME_WAIT], 1);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_FIN_WAIT_2], 0);
	assert_int_equal(cl->ac->closed_n, 1);
	fx_advance(fx, fx->cfg.time_wait_us - 50 * MS);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_TIME_WAIT], 1);
	fx_advance(fx, 50 * MS + SLACK);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_TIME_WAIT], 0);
	assert_int_equal(cl->ac->closed_n, 1);
}

/* In TIME_WAIT a retransmitted FIN (our ACK was lost) is ACKed again
 * (RFC 9293 3.10.7.4, TIME-WAIT). */
static void test_time_wait_reacks_retransmitted_fin(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40073, 2800);
	struct seg s;

	cl_connect(cl);
	tcp_close(cl->ac->c);
	tcp_stack_flush(fx->st);
	cl_take_all(cl, false);
	cl_ack(cl);
	cl_fin(cl);
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	fx_drop_all(fx);                             /* our ACK is lost */
	cl->snd_nxt--;
	cl_fin(cl);
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	fx_pop_must(fx, &s);
	assert_true(s.flags & F_ACK);
	assert_false(s.flags & F_RST);
	assert_int_equal(s.ack, cl->snd_nxt);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_TIME_WAIT], 1);
}

/* Both FINs cross: FIN_WAIT_1 -> CLOSING -> TIME_WAIT (RFC 9293 3.6). */
static void test_simultaneous_close(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40074, 2900);
	struct seg fin, s;

	cl_connect(cl);
	tcp_close(cl->ac->c);
	tcp_stack_flush(fx->st);
	fx_pop_must(fx, &fin);
	assert_true(fin.flags & F_FIN);
	/* our FIN crosses theirs: it does not ACK it */
	cl_fin(cl);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_CLOSING);
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	fx_pop_must(fx, &s);
	assert_int_equal(s.ack, cl->snd_nxt);
	cl_absorb(cl, &fin);
	cl_ack(cl);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_TIME_WAIT], 1);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_CLOSING], 0);
	assert_int_equal(cl->ac->closed_n, 1);
}

/* Our FIN is lost: retransmitted by the RTO with the same sequence number. */
static void test_lost_fin_retransmitted(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40075, 3000);
	struct seg fin, r;

	cl_connect(cl);
	tcp_close(cl->ac->c);
	tcp_stack_flush(fx->st);
	fx_pop_must(fx, &fin);
	assert_true(fin.flags & F_FIN);
	assert_true(fx_wait(fx, 3 * SEC) != UINT64_MAX);
	fx_pop_must(fx, &r);
	assert_true(r.flags & F_FIN);
	assert_int_equal(r.seq, fin.seq);
	cl_absorb(cl, &r);
	cl_ack(cl);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_FIN_WAIT_2);
}

/* The peer retransmits its FIN (as if our ACK was lost): the duplicate is
 * not a second end of stream; the state stays CLOSE-WAIT and the FIN is
 * ACKed again. */
static void test_peer_fin_retransmitted_handled_once(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40076, 3100);

	cl_connect(cl);
	cl_fin(cl);
	cl->snd_nxt--;
	cl_fin(cl);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_CLOSE_WAIT);
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	cl_take_all(cl, false);
	assert_int_equal(cl->srv_ack, cl->snd_nxt);
	assert_int_equal(cl->ac->readable_n, 1);   /* FIN news once */
}

/* A new SYN for a 4-tuple in TIME_WAIT with a higher ISN reopens it
 * (RFC 9293 3.10.7.4 note, RFC 6191), counted. */
static void test_time_wait_reused_by_higher_seq_syn(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40077, 3200), *cl2;
	struct seg s;

	cl_connect(cl);
	tcp_close(cl->ac->c);
	tcp_stack_flush(fx->st);
	cl_take_all(cl, false);
	cl_ack(cl);
	cl_fin(cl);
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	fx_drop_all(fx);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_TIME_WAIT], 1);

	cl2 = cl_new(fx, 40077, cl->snd_nxt + 100000);
	cl2->tsval = cl->tsval + 1000;
	cl_syn(cl2);
	fx_pop_must(fx, &s);
	assert_int_equal(s.flags, F_SYN | F_ACK);
	assert_int_equal(s.ack, cl2->iss + 1);
	/* the new ISN lies above the old incarnation's sequence space, so
	 * its old duplicates cannot be taken for new data (RFC 6191 2) */
	assert_true(SEQ_GT(s.seq, cl->rcv_nxt));
	assert_int_equal(ctr(fx)->time_wait_reuse, 1);
	cl_absorb(cl2, &s);
	cl_ack(cl2);
	assert_int_equal(fx->accepted_calls, 2);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_TIME_WAIT], 0);
	cl2->ac = fx_find_ac(fx, 40077);
	cl_data(cl2, "again", 5);
	assert_int_equal(cl2->ac->rx_len, 5);
}

/* A SYN with a lower ISN and no timestamps does not reopen TIME_WAIT. */
static void test_time_wait_not_reused_by_lower_seq_syn(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40078, 3300), *cl2;
	struct seg s;

	cl->ts = false;
	cl_connect(cl);
	tcp_close(cl->ac->c);
	tcp_stack_flush(fx->st);
	cl_take_all(cl, false);
	cl_ack(cl);
	cl_fin(cl);
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	fx_drop_all(fx);

	cl2 = cl_new(fx, 40078, cl->iss - 100000);
	cl2->ts = false;
	cl_syn(cl2);
	while (fx_pop(fx, &s))
		assert_false((s.flags & (F_SYN | F_ACK)) == (F_SYN | F_ACK));
	assert_int_equal(ctr(fx)->time_wait_reuse, 0);
	assert_int_equal(fx->accepted_calls, 1);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_TIME_WAIT], 1);
}

/* ======================================================================== */
/* limits                                                                   */
/* ======================================================================== */

static void test_syn_backlog_overflow_dropped_and_counted(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	unsigned synacks = 0;
	struct seg s;

	cfg.syn_backlog = 4;
	fx_recreate(fx, &cfg);
	for (int i = 0; i < 6; i++) {
		struct cl *cl = cl_new(fx, (uint16_t)(41000 + i), 10u * (unsigned)i);

		cl_syn(cl);
	}
	while (fx_pop(fx, &s))
		if (s.flags == (F_SYN | F_ACK))
			synacks++;
	assert_int_equal(synacks, 4);
	assert_int_equal(ctr(fx)->syn_backlog_drops, 2);
	assert_int_equal(ctr(fx)->syn_received, 4);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_SYN_RECEIVED], 4);
}

static void test_max_conns_limit(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct cl *c[4];
	struct seg s;

	cfg.max_conns = 3;
	fx_recreate(fx, &cfg);
	for (int i = 0; i < 3; i++) {
		c[i] = cl_new(fx, (uint16_t)(41100 + i), 100u * (unsigned)i);
		cl_connect(c[i]);
	}
	c[3] = cl_new(fx, 41103, 999);
	cl_syn(c[3]);
	while (fx_pop(fx, &s))
		assert_false(s.flags & F_SYN);
	assert_int_equal(ctr(fx)->conn_limit_drops, 1);
	assert_int_equal(fx->accepted_calls, 3);
	/* one goes away: room again */
	tcp_abort(c[0]->ac->c);
	tcp_stack_flush(fx->st);
	fx_drop_all(fx);
	c[3]->tsval += 10;
	cl_syn(c[3]);
	fx_pop_must(fx, &s);
	assert_int_equal(s.flags, F_SYN | F_ACK);
}

/* ======================================================================== */
/* timestamps                                                               */
/* ======================================================================== */

/* RFC 7323 4.3: TSecr echoes the peer's TSval; our TSval never decreases. */
static void test_timestamps_echoed(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40080, 3400);
	struct seg s;
	uint32_t last = 0;

	fx->mode = APP_ECHO;
	cl_connect(cl);
	assert_true(cl->ts_ok);
	for (int i = 0; i < 5; i++) {
		cl->tsval += 50;
		cl_data(cl, "ts", 2);
		fx_pop_must(fx, &s);
		assert_true(s.has_ts);
		assert_int_equal(s.tsecr, cl->tsval);
		if (i)
			assert_true((int32_t)(s.tsval - last) >= 0);
		last = s.tsval;
		cl_absorb(cl, &s);
		fx_advance(fx, 10 * MS);
		cl_take_all(cl, false);
	}
}

/* PAWS (RFC 7323 5.3 R1): a segment with an older TSval is dropped and
 * ACKed; the same bytes with a fresh TSval are delivered. */
static void test_paws_rejects_old_tsval(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40081, 3500);
	uint32_t ts_good;
	struct seg s;

	cl_connect(cl);
	cl->tsval = 100000;
	cl_data(cl, "one", 3);
	ts_good = cl->tsval;
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	fx_drop_all(fx);
	cl->tsval = ts_good - 5000;             /* cl_seg adds 1 */
	cl_data(cl, "two", 3);
	assert_int_equal(cl->ac->rx_len, 3);
	fx_pop_must(fx, &s);
	assert_true(s.flags & F_ACK);
	assert_int_equal(s.ack, cl->snd_nxt - 3);
	cl->snd_nxt -= 3;
	cl->tsval = ts_good + 10;
	cl_data(cl, "two", 3);
	assert_int_equal(cl->ac->rx_len, 6);
	assert_memory_equal(cl->ac->rx, "onetwo", 6);
}

/* TS not offered by the peer: none in any of our segments. */
static void test_no_timestamps_when_not_negotiated(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40082, 3600);
	struct seg s;

	cl->ts = false;
	fx->mode = APP_ECHO;
	cl_syn(cl);
	fx_pop_must(fx, &s);
	assert_false(s.has_ts);
	cl_absorb(cl, &s);
	cl_ack(cl);
	cl_data(cl, "x", 1);
	fx_pop_must(fx, &s);
	assert_false(s.has_ts);
	assert_int_equal(s.hlen, 20);
}

/* ======================================================================== */
/* delayed ACK                                                              */
/* ======================================================================== */

/* One small segment, app answers nothing: no ACK until delack_us, then one
 * pure ACK (RFC 9293 3.8.6.3, RFC 5681 4.2). */
static void test_delayed_ack_single_small_segment(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40090, 3700);
	struct seg s;
	uint64_t w;

	cl_connect(cl);
	cl_data(cl, "get a\r\n", 7);
	assert_int_equal(fx_pending(fx), 0);
	w = fx_wait(fx, 1 * SEC);
	assert_true(w != UINT64_MAX);
	assert_true(w + SLACK >= fx->cfg.delack_us);
	assert_true(w <= fx->cfg.delack_us + SLACK);
	fx_pop_must(fx, &s);
	assert_int_equal(s.len, 0);
	assert_int_equal(s.ack, cl->snd_nxt);
	assert_int_equal(ctr(fx)->delayed_acks, 1);
	assert_int_equal(fx_pending(fx), 0);
}

/* Every second full-sized segment is ACKed at once (RFC 9293 3.8.6.3). */
static void test_ack_every_second_full_segment(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40091, 3800);
	uint8_t d[1460];
	struct seg s;

	cl->ts = false;               /* full-sized = 1460 bytes of payload */
	fill_pattern(d, sizeof(d), 23);
	cl_connect(cl);
	cl_data(cl, d, sizeof(d));
	assert_int_equal(fx_pending(fx), 0);
	cl_data(cl, d, sizeof(d));
	fx_pop_must(fx, &s);
	assert_int_equal(s.ack, cl->snd_nxt);
	assert_int_equal(ctr(fx)->delayed_acks, 0);
	assert_int_equal(cl->ac->rx_len, 2 * sizeof(d));
}

/* ======================================================================== */
/* malformed input                                                          */
/* ======================================================================== */

/* Truncated header, data offset < 5, data offset beyond the segment, an
 * option with length 0 or 1, an option running past the header, an MSS
 * option of the wrong length: each dropped and counted, no connection, no
 * crash; an established connection is unaffected. */
static void test_malformed_headers_dropped_and_counted(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40100, 3900), *est = cl_new(fx, 40101, 4000);
	uint8_t b[128];
	size_t n;
	uint64_t bad;
	struct seg s;

	cl_connect(est);
	bad = ctr(fx)->bad_segments;
	cl->mss = 0;
	cl->ws = -1;
	cl->ts = false;
	cl->sackp = false;

	/* 1: shorter than a header */
	n = cl_build(cl, b, F_SYN, 1, 0, NULL, 0);
	fx_feed(fx, CL_IP, b, 12);
	assert_int_equal(ctr(fx)->bad_segments, bad + 1);
	/* 2: data offset 4 */
	n = cl_build(cl, b, F_SYN, 1, 0, NULL, 0);
	b[12] = 4 << 4;
	fx_feed(fx, CL_IP, b, n);
	assert_int_equal(ctr(fx)->bad_segments, bad + 2);
	/* 3: data offset 15 (60 bytes) in a 24-byte segment */
	n = cl_build(cl, b, F_SYN, 1, 0, NULL, 0);
	memset(b + n, 1, 4);
	b[12] = 15 << 4;
	fx_feed(fx, CL_IP, b, n + 4);
	assert_int_equal(ctr(fx)->bad_segments, bad + 3);
	/* 4: option length 0 */
	n = cl_build(cl, b, F_SYN, 1, 0, NULL, 0);
	b[20] = 2;
	b[21] = 0;
	b[22] = 0;
	b[23] = 0;
	b[12] = 6 << 4;
	fx_feed(fx, CL_IP, b, 24);
	assert_int_equal(ctr(fx)->bad_segments, bad + 4);
	/* 5: option length 1 */
	b[21] = 1;
	fx_feed(fx, CL_IP, b, 24);
	assert_int_equal(ctr(fx)->bad_segments, bad + 5);
	/* 6: TS option claiming 10 bytes in a 4-byte option area */
	b[20] = 8;
	b[21] = 10;
	fx_feed(fx, CL_IP, b, 24);
	assert_int_equal(ctr(fx)->bad_segments, bad + 6);
	/* 7: MSS option of length 3 */
	b[20] = 2;
	b[21] = 3;
	b[22] = 5;
	b[23] = 0;
	fx_feed(fx, CL_IP, b, 24);
	assert_int_equal(ctr(fx)->bad_segments, bad + 7);
	/* 8: an option kind byte as the last header byte, no length */
	b[20] = 1;
	b[21] = 1;
	b[22] = 1;
	b[23] = 3;
	fx_feed(fx, CL_IP, b, 24);
	assert_int_equal(ctr(fx)->bad_segments, bad + 8);

	while (fx_pop(fx, &s))
		assert_false(s.flags & F_SYN);
	assert_int_equal(ctr(fx)->syn_received, 1);    /* only 'est' */
	assert_int_equal(ctr(fx)->conns_in_state[TCP_SYN_RECEIVED], 0);

	/* the same on the established flow: dropped, the flow lives on */
	n = cl_build(est, b, F_ACK | F_RST, est->snd_nxt, est->rcv_nxt, NULL, 0);
	b[12] = 3 << 4;
	fx_feed(fx, CL_IP, b, n);
	assert_int_equal(ctr(fx)->bad_segments, bad + 9);
	assert_int_equal(est->ac->closed_n, 0);
	cl_data(est, "ok", 2);
	assert_int_equal(est->ac->rx_len, 2);
	assert_int_equal(tcp_conn_state(est->ac->c), TCP_ESTABLISHED);
}

/* Every length from 0 to a full header with options, over garbage: no
 * crash, nothing accepted. */
static void test_truncated_segments_every_length(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40102, 4100);
	uint8_t b[128];
	size_t n;

	n = cl_build(cl, b, F_SYN, 4100, 0, "data", 4);
	for (size_t len = 0; len < n; len++) {
		uint8_t copy[128];

		memcpy(copy, b, len);
		fx_feed(fx, CL_IP, copy, len);
		fx_drop_all(fx);
	}
	assert_true(ctr(fx)->bad_segments >= 20);
	assert_int_equal(fx->accepted_calls, 0);
}

/* ======================================================================== */
/* sequence wrap-around                                                     */
/* ======================================================================== */

/* Client ISN just below 2^32: data crossing the wrap, a lost segment across
 * it, the hole filled, a FIN after it: all in order, ACKs wrap too. */
static void test_seq_wraparound_client_isn_near_2_32(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40110, 0xffffff00u);
	uint8_t d[1000];
	uint32_t s0;

	fill_pattern(d, sizeof(d), 29);
	cl_connect(cl);
	s0 = cl->snd_nxt;
	assert_int_equal(s0, 0xffffff01u);
	cl_data(cl, d, 200);                      /* up to 0xffffffc9 */
	cl->snd_nxt += 100;                       /* lost: crosses 2^32 */
	for (size_t off = 300; off < 1000; off += 100)
		cl_data(cl, d + off, 100);
	assert_int_equal(cl->ac->rx_len, 200);
	cl_seg(cl, F_ACK, s0 + 200, cl->rcv_nxt, d + 200, 100);
	assert_int_equal(cl->ac->rx_len, 1000);
	assert_memory_equal(cl->ac->rx, d, 1000);
	cl_fin(cl);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_CLOSE_WAIT);
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	cl_take_all(cl, false);
	assert_int_equal(cl->srv_ack, 0xffffff01u + 1000 + 1);
	assert_int_equal(cl->srv_ack, 1000 - 0xff + 1);
}

/* ======================================================================== */
/* callbacks and counters                                                   */
/* ======================================================================== */

/* closed() once per accepted connection whatever the path: RST, abort,
 * orderly close, retransmission abort. */
static void test_closed_exactly_once_per_accepted(void **state)
{
	struct fx *fx = *state;
	struct cl *a = cl_new(fx, 40120, 10), *b = cl_new(fx, 40121, 20);
	struct cl *c = cl_new(fx, 40122, 30);

	cl_connect(a);
	cl_connect(b);
	cl_connect(c);
	cl_seg(a, F_RST, a->snd_nxt, 0, NULL, 0);
	cl_seg(a, F_RST, a->snd_nxt, 0, NULL, 0);
	tcp_abort(b->ac->c);
	tcp_stack_flush(fx->st);
	cl_fin(c);
	tcp_close(c->ac->c);
	tcp_stack_flush(fx->st);
	cl_take_all(c, true);
	fx_advance(fx, 3 * SEC);
	assert_int_equal(a->ac->closed_n, 1);
	assert_int_equal(b->ac->closed_n, 1);
	assert_int_equal(c->ac->closed_n, 1);
	assert_int_equal(fx->closed_calls, 3);
	assert_int_equal(fx->accepted_calls, 3);
	for (int i = 0; i < TCP_STATE_COUNT; i++)
		assert_int_equal(ctr(fx)->conns_in_state[i], 0);
}

/* segs_in counts what we fed, segs_out what reached seg_send, and the other
 * counters tell the story of one plain echo connection. */
static void test_counters_match_traffic(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40130, 50);
	const struct tcp_counters *k;

	fx->mode = APP_ECHO;
	cl_connect(cl);
	for (int i = 0; i < 4; i++) {
		cl_data(cl, "ping", 4);
		cl_take_all(cl, true);
	}
	cl_fin(cl);
	tcp_close(cl->ac->c);
	tcp_stack_flush(fx->st);
	cl_take_all(cl, true);
	fx_advance(fx, 2 * SEC);
	k = ctr(fx);
	assert_int_equal(cl->rx_len, 16);
	assert_int_equal(k->segs_in, fx->fed);
	assert_int_equal(k->segs_out, fx->sends);
	assert_int_equal(fx->allocs, fx->sends);
	assert_int_equal(k->syn_received, 1);
	assert_int_equal(k->accepts, 1);
	assert_int_equal(k->retransmits, 0);
	assert_int_equal(k->resets_in, 0);
	assert_int_equal(k->resets_out, 0);
	assert_int_equal(k->bad_segments, 0);
	assert_int_equal(k->aborts, 0);
	assert_int_equal(k->alloc_failures, 0);
	assert_int_equal(cl->ac->closed_n, 1);
	assert_int_equal(fx->io_errors, 0);
}

/* The create/destroy contract. */
static void test_create_destroy_contract(void **state)
{
	struct fx *fx = *state;
	struct tcp_stack *st = NULL;

	tcp_stack_destroy(&st);
	assert_null(st);
	tcp_stack_destroy(NULL);
	st = tcp_stack_create(&fx->cfg, &fx_io, fx, &fx_app, fx, fx->now);
	assert_non_null(st);
	tcp_stack_destroy(&st);
	assert_null(st);
	/* a stack with connections is freed without callbacks or output */
	{
		struct cl *cl = cl_new(fx, 40140, 60);

		cl_connect(cl);
		tcp_send(cl->ac->c, "pending", 7);
		fx_drop_all(fx);
		tcp_stack_destroy(&fx->st);
		assert_int_equal(fx_pending(fx), 0);
		assert_int_equal(cl->ac->closed_n, 0);
		fx->st = tcp_stack_create(&fx->cfg, &fx_io, fx, &fx_app, fx,
					  fx->now);
		assert_non_null(fx->st);
		fx->fed = fx->sends = fx->allocs = 0;
		fx->nconns = 0;       /* those ctx are gone with the stack */
		free(cl->ac->rx);
	}
}

/* ======================================================================== */
/* more edges                                                               */
/* ======================================================================== */

/* A retransmitted SYN in SYN-RECEIVED (our SYN-ACK was lost) gets the same
 * SYN-ACK again, one half-open connection only. */
static void test_retransmitted_syn_gets_same_synack(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40150, 4200);
	struct seg a, b;

	cl_syn(cl);
	fx_pop_must(fx, &a);
	cl_syn(cl);
	fx_pop_must(fx, &b);
	assert_int_equal(b.flags, F_SYN | F_ACK);
	assert_int_equal(b.seq, a.seq);
	assert_int_equal(b.ack, a.ack);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_SYN_RECEIVED], 1);
	assert_int_equal(ctr(fx)->syn_received, 1);
}

/* A FIN beyond a hole is held with the data before it: the state changes
 * only when the hole is filled (RFC 9293 3.10.7.4, eighth: FIN is
 * processed in sequence). */
static void test_fin_out_of_order_waits_for_hole(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40151, 4300);
	uint32_t s0;

	cl_connect(cl);
	s0 = cl->snd_nxt;
	cl_seg(cl, F_ACK | F_PSH | F_FIN, s0 + 5, cl->rcv_nxt, "World", 5);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_ESTABLISHED);
	assert_int_equal(cl->ac->rx_len, 0);
	assert_false(tcp_conn_peer_closed(cl->ac->c));
	cl_seg(cl, F_ACK | F_PSH, s0, cl->rcv_nxt, "Hello", 5);
	cl->snd_nxt = s0 + 11;
	assert_int_equal(cl->ac->rx_len, 10);
	assert_memory_equal(cl->ac->rx, "HelloWorld", 10);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_CLOSE_WAIT);
	assert_true(tcp_conn_peer_closed(cl->ac->c));
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	cl_take_all(cl, false);
	assert_int_equal(cl->srv_ack, s0 + 11);
}

/* More disjoint out-of-order segments than ooo_max_segs: the excess is
 * dropped and counted, nothing is corrupted, a full retransmission
 * delivers every byte once. */
static void test_ooo_queue_overflow_counted(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct cl *cl;
	uint8_t d[1200];
	uint32_t s0;

	cfg.ooo_max_segs = 4;
	fx_recreate(fx, &cfg);
	cl = cl_new(fx, 40152, 4400);
	fill_pattern(d, sizeof(d), 31);
	cl_connect(cl);
	s0 = cl->snd_nxt;
	for (unsigned off = 100; off < 1200; off += 200)
		cl_seg(cl, F_ACK, s0 + off, cl->rcv_nxt, d + off, 50);
	assert_true(ctr(fx)->ooo_drops >= 2);
	assert_int_equal(cl->ac->rx_len, 0);
	cl_seg(cl, F_ACK, s0, cl->rcv_nxt, d, sizeof(d));
	cl->snd_nxt = s0 + sizeof(d);
	assert_int_equal(cl->ac->rx_len, sizeof(d));
	assert_memory_equal(cl->ac->rx, d, sizeof(d));
}

/* Segments that carry data are not duplicate ACKs (RFC 5681 2, (b)): a
 * pipelined request stream while a flight is outstanding must not trigger
 * a fast retransmit. */
static void test_data_segments_are_not_dupacks(void **state)
{
	struct fx *fx = *state;
	static uint8_t big[30000];
	struct seg v[128], s;
	struct cl *cl;
	unsigned n;

	setup_flight(fx, &cl, 40153, big, sizeof(big));
	cl_data(cl, "2", 1);
	fx->mode = APP_COLLECT;
	n = fx_take_data(fx, v, 128);
	assert_true(n >= 4);
	for (int i = 0; i < 4; i++) {
		cl_data(cl, "req", 3);
		while (fx_pop(fx, &s))
			assert_false(s.len && s.seq == v[0].seq);
	}
	assert_int_equal(ctr(fx)->fast_retransmits, 0);
	/* nor out-of-order ones (a request of ours lost): the general path */
	for (int i = 0; i < 4; i++) {
		cl_seg(cl, F_ACK | F_PSH, cl->snd_nxt + 100 + 10 * (uint32_t)i,
		       cl->rcv_nxt, "0123456789", 10);
		while (fx_pop(fx, &s))
			assert_false(s.len && s.seq == v[0].seq);
	}
	assert_int_equal(ctr(fx)->fast_retransmits, 0);
	/* a pure window update is not a duplicate ACK either (2, (e)) */
	for (int i = 0; i < 4; i++) {
		cl->win = (uint16_t)(cl->win - 1000);
		cl_ack(cl);
		while (fx_pop(fx, &s))
			assert_false(s.len && s.seq == v[0].seq);
	}
	assert_int_equal(ctr(fx)->fast_retransmits, 0);
}

/* RFC 5961 5.2 / RFC 9293 3.10.7.4: an ACK below SND.UNA - MAX.SND.WND is
 * not acceptable: the segment is dropped (its data too) and ACKed. */
static void test_ack_too_old_dropped_and_acked(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40154, 4500);
	struct seg s;

	cl_connect(cl);
	cl_seg(cl, F_ACK | F_PSH, cl->snd_nxt, cl->rcv_nxt - 0x40000000u,
	       "zz", 2);
	fx_pop_must(fx, &s);
	assert_true(s.flags & F_ACK);
	assert_int_equal(s.ack, cl->snd_nxt);
	assert_int_equal(cl->ac->rx_len, 0);
	cl_data(cl, "ok", 2);
	assert_int_equal(cl->ac->rx_len, 2);
}

/* Receiver SWS avoidance (RFC 9293 3.8.6.2.2): from a closed window,
 * consuming a few bytes sends no update; consuming an MSS' worth does. */
static void test_rcv_window_update_sws_avoidance(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct cl *cl;
	uint8_t d[1024];
	struct seg s;

	cfg.rcv_buf = 8192;
	fx_recreate(fx, &cfg);
	fx->mode = APP_HOLD;
	cl = cl_new(fx, 40155, 4600);
	fill_pattern(d, sizeof(d), 33);
	cl_connect(cl);
	for (int i = 0; i < 16 && cl->srv_ack + cl->srv_wnd != cl->snd_nxt;
	     i++) {
		uint32_t room = cl->srv_ack + cl->srv_wnd - cl->snd_nxt;

		cl_data(cl, d, room < sizeof(d) ? room : sizeof(d));
		fx_advance(fx, fx->cfg.delack_us + SLACK);
		cl_take_all(cl, false);
	}
	assert_int_equal(cl->srv_wnd, 0);
	tcp_recv_consume(cl->ac->c, 100);
	tcp_stack_flush(fx->st);
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	assert_int_equal(fx_pending(fx), 0);
	tcp_recv_consume(cl->ac->c, 4000);
	tcp_stack_flush(fx->st);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	assert_true(cl->srv_wnd >= 1460);
}

/* time_wait_max bounds the TIME_WAIT records; every connection still gets
 * its last ACK. */
static void test_time_wait_max_bounded(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;

	cfg.time_wait_max = 2;
	fx_recreate(fx, &cfg);
	for (int i = 0; i < 4; i++) {
		struct cl *cl = cl_new(fx, (uint16_t)(41200 + i),
				       50000u * (unsigned)i);
		struct seg s;

		cl_connect(cl);
		tcp_close(cl->ac->c);
		tcp_stack_flush(fx->st);
		cl_take_all(cl, false);
		cl_ack(cl);
		cl_fin(cl);
		fx_advance(fx, fx->cfg.delack_us + SLACK);
		fx_pop_must(fx, &s);
		assert_int_equal(s.ack, cl->snd_nxt);
		assert_int_equal(cl->ac->closed_n, 1);
		assert_true(ctr(fx)->conns_in_state[TCP_TIME_WAIT] <= 2);
	}
	assert_int_equal(ctr(fx)->conns_in_state[TCP_TIME_WAIT], 2);
}

/* Our side closed first; the peer keeps sending in FIN-WAIT-2: its data
 * still reaches the app (RFC 9293 3.10.7.4, seventh). */
static void test_fin_wait_2_still_receives(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40156, 4700);

	cl_connect(cl);
	tcp_close(cl->ac->c);
	tcp_stack_flush(fx->st);
	cl_take_all(cl, false);
	cl_ack(cl);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_FIN_WAIT_2);
	cl_data(cl, "late data", 9);
	assert_int_equal(cl->ac->rx_len, 9);
	assert_memory_equal(cl->ac->rx, "late data", 9);
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	cl_take_all(cl, false);
	assert_int_equal(cl->srv_ack, cl->snd_nxt);
	cl_fin(cl);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_TIME_WAIT], 1);
	assert_int_equal(cl->ac->closed_n, 1);
}

/* tcp_close with much data queued: every byte, then the FIN. */
static void test_close_after_large_send_fin_follows_data(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40157, 4800);
	static uint8_t d[50000];

	fill_pattern(d, sizeof(d), 35);
	cl_connect(cl);
	assert_int_equal(tcp_send(cl->ac->c, d, sizeof(d)), sizeof(d));
	tcp_close(cl->ac->c);
	tcp_stack_flush(fx->st);
	cl_recv(cl, sizeof(d), 20 * SEC);
	cl_take_all(cl, true);
	fx_advance(fx, 10 * MS);
	cl_take_all(cl, true);
	assert_int_equal(cl->rx_len, sizeof(d));
	assert_memory_equal(cl->rx, d, sizeof(d));
	assert_true(cl->got_fin);
	assert_int_equal(cl->rcv_nxt, cl->srv_iss + 1 + sizeof(d) + 1);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_FIN_WAIT_2);
}

/* RFC 6298 2.2-2.3: the RTO follows measured RTTs. With a steady 400 ms
 * RTT the RTO ends between the RTT and twice it: neither the initial 1 s
 * nor rto_min. */
static void test_rto_follows_measured_rtt(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40158, 4900);
	struct seg s;
	uint64_t w;

	cl_syn(cl);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	fx_advance(fx, 400 * MS);
	fx_drop_all(fx);
	cl_ack(cl);
	cl->ac = fx_find_ac(fx, 40158);
	assert_non_null(cl->ac);
	for (int i = 0; i < 10; i++) {
		struct seg d;

		assert_int_equal(tcp_send(cl->ac->c, "sample", 6), 6);
		tcp_stack_flush(fx->st);
		fx_pop_must(fx, &d);
		assert_int_equal(d.len, 6);
		fx_advance(fx, 400 * MS);
		while (fx_pop(fx, &s))          /* no spurious retransmission */
			assert_int_equal(s.len, 0);
		cl_absorb(cl, &d);
		cl_ack(cl);
	}
	assert_int_equal(ctr(fx)->retransmits, 0);
	assert_int_equal(tcp_send(cl->ac->c, "lost!", 5), 5);
	tcp_stack_flush(fx->st);
	fx_pop_must(fx, &s);
	w = fx_wait(fx, 5 * SEC);
	assert_true(w >= 400 * MS);
	assert_true(w <= 800 * MS);
}

/* ---- a lossy link: seeded drop, duplication, reorder both ways ---------- */

struct lossy {
	uint64_t rng;
	unsigned drop, dup, reorder;     /* percent */
	uint8_t held[SEG_CAP + 64];
	size_t held_len;
};

static unsigned lossy_rand(struct lossy *l)
{
	l->rng ^= l->rng << 13;
	l->rng ^= l->rng >> 7;
	l->rng ^= l->rng << 17;
	return (unsigned)(l->rng % 100);
}

/* Client -> server through the lossy link. */
static void lossy_send(struct lossy *l, struct cl *cl, uint8_t flags,
		       uint32_t seq, const void *d, size_t n)
{
	uint8_t b[SEG_CAP + 64];
	size_t len;
	unsigned r = lossy_rand(l);

	cl->tsval++;
	len = cl_build(cl, b, flags, seq, cl->rcv_nxt, d, n);
	if (r < l->drop)
		return;
	if (r < l->drop + l->reorder && l->held_len == 0) {
		memcpy(l->held, b, len);
		l->held_len = len;
		return;
	}
	fx_feed(cl->fx, cl->ip, b, len);
	if (r >= 100 - l->dup)
		fx_feed(cl->fx, cl->ip, b, len);
	if (l->held_len && lossy_rand(l) < 50) {
		fx_feed(cl->fx, cl->ip, l->held, l->held_len);
		l->held_len = 0;
	}
}

/* Echo of 'total' bytes over a link that drops, duplicates and reorders in
 * both directions: everything comes back exactly once, in order. The
 * client is a minimal TCP: window-limited sending, go-back-N on a 300 ms
 * timeout (ignoring a zero window, as a probe), no receive queue. */
struct lossy_run {
	uint64_t seed;
	size_t total;
	unsigned drop, dup, reorder;     /* percent */
	uint32_t iss;                    /* client ISN; 0 = from the seed */
	bool no_ts, no_ws;
	bool close;                      /* then a FIN exchange over the link */
	bool server_first;               /* ... the app closing first */
	uint16_t cl_win;                 /* client's window field; 0 = 65535 */
};

static void run_lossy_echo(struct fx *fx, const struct lossy_run *run)
{
	static uint8_t src[1 << 17];
	static struct seg v[256];
	uint64_t seed = run->seed;
	size_t total = run->total;
	struct lossy l = { .rng = seed * 0x9e3779b97f4a7c15ull + 1,
			   .drop = run->drop, .dup = run->dup,
			   .reorder = run->reorder };
	struct cl *cl = cl_new(fx, (uint16_t)(42000 + seed % 20000),
			       run->iss ? run->iss :
			       (uint32_t)(seed * 0x10000001u));
	uint32_t base, una;
	uint64_t last_progress, deadline = fx->now + 300 * SEC;

	assert_true(total <= sizeof(src));
	fill_pattern(src, total, (unsigned)seed);
	fx->mode = APP_ECHO;
	if (run->no_ts)
		cl->ts = false;
	if (run->no_ws)
		cl->ws = -1;
	if (run->cl_win)
		cl->win = run->cl_win;
	fx_drop_all(fx);            /* RSTs to late segments of a previous run */
	cl_connect(cl);
	cl->lossy = true;
	base = cl->snd_nxt;
	una = base;
	last_progress = fx->now;
	while (cl->rx_len < total && fx->now < deadline) {
		uint32_t wnd = cl->srv_wnd < 16 * 1448 ? cl->srv_wnd : 16 * 1448;
		unsigned n = 0;

		while (cl->snd_nxt - base < total && cl->snd_nxt - una < wnd) {
			uint32_t off = cl->snd_nxt - base;
			uint32_t k = (uint32_t)(total - off);

			if (k > 1448)
				k = 1448;
			if (k > wnd - (cl->snd_nxt - una))
				k = wnd - (cl->snd_nxt - una);
			lossy_send(&l, cl, F_ACK | F_PSH, cl->snd_nxt,
				   src + off, k);
			cl->snd_nxt += k;
		}
		while (n < 256 && fx_pop(fx, &v[n])) {
			if (v[n].dport == cl->port)
				cl_check_hdr(cl, &v[n]);
			n++;
		}
		for (unsigned i = 0; i < n; i++) {
			unsigned r = lossy_rand(&l);
			uint32_t before = cl->rcv_nxt;

			if (r < l.drop)
				continue;
			if (r < l.drop + l.reorder && i + 1 < n) {
				struct seg *t = &v[i];

				cl_absorb(cl, &v[i + 1]);
				cl_absorb(cl, t);
				i++;
			} else {
				cl_absorb(cl, &v[i]);
			}
			if (SEQ_GT(cl->srv_ack, una)) {
				una = cl->srv_ack;
				last_progress = fx->now;
			}
			if (cl->rcv_nxt != before || v[i].len)
				lossy_send(&l, cl, F_ACK, cl->snd_nxt, NULL, 0);
		}
		if (fx->now - last_progress > 300 * MS &&
		    cl->snd_nxt - base > una - base) {
			/* go back N, one segment now even into a zero window */
			uint32_t off = una - base;
			uint32_t k = (uint32_t)(cl->snd_nxt - una);

			if (k > 1448)
				k = 1448;
			cl->snd_nxt = una;
			lossy_send(&l, cl, F_ACK | F_PSH, una, src + off, k);
			cl->snd_nxt = una + k;
			last_progress = fx->now;
		}
		fx_advance(fx, TICK);
	}
	if (cl->rx_len != total) {
		const uint8_t *p;
		struct tcp_conn *c = cl->ac->c;

		/* what the implementer needs to see when this fails */
		print_error("lossy seed %llu: client sent %u acked %u, got back "
			    "%zu of %zu, srv_wnd %u, srv_ack-base %u; server "
			    "closed %u aborts %llu state %d, send_queued %zu, "
			    "unread %zu, pending %zu\n",
			    (unsigned long long)seed, cl->snd_nxt - base,
			    una - base, cl->rx_len, total, cl->srv_wnd,
			    cl->srv_ack - base, cl->ac->closed_n,
			    (unsigned long long)ctr(fx)->aborts,
			    c ? (int)tcp_conn_state(c) : -1,
			    c ? tcp_send_queued(c) : 0,
			    c ? tcp_recv_peek(c, &p) : 0, fx_pending(fx));
	}
	assert_int_equal(cl->rx_len, total);
	assert_memory_equal(cl->rx, src, total);
	assert_int_equal(cl->ac->closed_n, 0);
	assert_int_equal(cl->mss_violations, 0);
	if (!run->close)
		return;
	/* Close over the same link: our FIN (retransmitted every 300 ms until
	 * ACKed); the app closes when it sees the peer's FIN (or first, with
	 * server_first, and the client's FIN follows the server's); the client
	 * ACKs the server's FIN each time it sees it. The server side must end
	 * in closed(), exactly once, with no connection left but TIME_WAIT. */
	{
		uint32_t fin_seq = cl->snd_nxt;
		bool closed_by_app = false;

		if (run->server_first) {
			tcp_close(cl->ac->c);
			tcp_stack_flush(fx->st);
			closed_by_app = true;
		}

		deadline = fx->now + 120 * SEC;
		last_progress = 0;
		while (fx->now < deadline &&
		       (cl->ac->closed_n == 0 || !cl->got_fin ||
			SEQ_LEQ(cl->srv_ack, fin_seq))) {
			unsigned n = 0;

			if (SEQ_LEQ(cl->srv_ack, fin_seq) &&
			    (!run->server_first || cl->got_fin) &&
			    fx->now - last_progress > 300 * MS) {
				lossy_send(&l, cl, F_FIN | F_ACK, fin_seq,
					   NULL, 0);
				cl->snd_nxt = fin_seq + 1;
				last_progress = fx->now;
			}
			if (!closed_by_app && cl->ac->closed_n == 0 &&
			    cl->ac->c && tcp_conn_peer_closed(cl->ac->c)) {
				tcp_close(cl->ac->c);
				tcp_stack_flush(fx->st);
				closed_by_app = true;
			}
			while (n < 256 && fx_pop(fx, &v[n])) {
				if (v[n].dport == cl->port)
					cl_check_hdr(cl, &v[n]);
				n++;
			}
			for (unsigned i = 0; i < n; i++) {
				if (lossy_rand(&l) < l.drop)
					continue;
				cl_absorb(cl, &v[i]);
				if ((v[i].flags & F_FIN) || v[i].len)
					lossy_send(&l, cl, F_ACK, cl->snd_nxt,
						   NULL, 0);
			}
			fx_advance(fx, TICK);
		}
		if (l.held_len) {
			fx_feed(fx, cl->ip, l.held, l.held_len);
			l.held_len = 0;
		}
		fx_advance(fx, 5 * SEC);
		if (!cl->got_fin || cl->ac->closed_n != 1)
			print_error("lossy seed %llu close: got_fin %d, closed "
				    "%u, aborts %llu, srv_ack-fin %d, client "
				    "rcv_nxt-srv_iss %u\n",
				    (unsigned long long)seed, cl->got_fin,
				    cl->ac->closed_n,
				    (unsigned long long)ctr(fx)->aborts,
				    (int)(cl->srv_ack - fin_seq),
				    cl->rcv_nxt - cl->srv_iss);
		assert_true(closed_by_app);
		assert_true(cl->got_fin);
		assert_int_equal(cl->ac->closed_n, 1);
		for (int i = 0; i < TCP_STATE_COUNT; i++)
			if (i != TCP_TIME_WAIT)
				assert_int_equal(ctr(fx)->conns_in_state[i], 0);
	}
}

static void test_lossy_link_echo_seeds(void **state)
{
	struct fx *fx = *state;

	for (uint64_t seed = 1; seed <= 4; seed++) {
		struct lossy_run r = { .seed = seed, .total = 100000,
				       .drop = 5, .dup = 3, .reorder = 5 };

		run_lossy_echo(fx, &r);
	}
	assert_true(ctr(fx)->retransmits > 0);
	assert_true(ctr(fx)->ooo_queued > 0);
	assert_int_equal(ctr(fx)->aborts, 0);
}

/* Heavier loss, then an orderly close over the lossy link. */
static void test_lossy_link_heavy_loss_and_close(void **state)
{
	struct fx *fx = *state;

	for (uint64_t seed = 11; seed <= 13; seed++) {
		struct lossy_run r = { .seed = seed, .total = 60000,
				       .drop = 15, .dup = 5, .reorder = 10,
				       .close = true };

		run_lossy_echo(fx, &r);
	}
	assert_int_equal(ctr(fx)->aborts, 0);
}

/* Small buffers (zero windows both ways under loss), sequence numbers
 * wrapping, no timestamps, no window scaling. */
static void test_lossy_link_small_buffers_wrap_no_options(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;

	cfg.rcv_buf = 4096;
	cfg.snd_buf = 4096;
	fx_recreate(fx, &cfg);
	for (uint64_t seed = 21; seed <= 23; seed++) {
		struct lossy_run r = { .seed = seed, .total = 50000,
				       .drop = 8, .dup = 3, .reorder = 8,
				       .iss = 0xffffffffu - 20000u * (uint32_t)seed,
				       .no_ts = seed != 22, .no_ws = true,
				       .close = true };

		run_lossy_echo(fx, &r);
	}
	assert_int_equal(ctr(fx)->aborts, 0);
}

/* The app aborts from inside readable(): no crash, RST out, closed() once,
 * nothing more for that connection. Same for tcp_close inside readable()
 * on the peer's FIN. */
static int reent_action;   /* 1 = abort in readable, 2 = close on peer FIN */

static void reent_readable(void *arg, void *ctx)
{
	struct app_conn *ac = ctx;

	app_readable(arg, ctx);
	if (ac->c == NULL)
		return;
	if (reent_action == 1)
		tcp_abort(ac->c);
	else if (reent_action == 2 && tcp_conn_peer_closed(ac->c))
		tcp_close(ac->c);
}

static void test_reentrant_abort_and_close_from_readable(void **state)
{
	struct fx *fx = *state;
	static const struct tcp_app app = {
		.accepted = app_accepted,
		.readable = reent_readable,
		.writable = app_writable,
		.closed = app_closed,
	};
	struct cl *a, *b;
	struct seg s;
	bool rst = false;

	tcp_stack_destroy(&fx->st);
	fx->st = tcp_stack_create(&fx->cfg, &fx_io, fx, &app, fx, fx->now);
	assert_non_null(fx->st);
	a = cl_new(fx, 40160, 5000);
	b = cl_new(fx, 40161, 6000);
	reent_action = 1;
	cl_connect(a);
	cl_data(a, "boom", 4);
	assert_int_equal(a->ac->closed_n, 1);
	while (fx_pop(fx, &s))
		if (s.flags & F_RST)
			rst = true;
	assert_true(rst);
	cl_data(a, "more", 4);               /* flow gone: RST */
	fx_pop_must(fx, &s);
	assert_true(s.flags & F_RST);

	reent_action = 2;
	cl_connect(b);
	cl_data(b, "x", 1);
	cl_fin(b);
	assert_int_equal(tcp_conn_state(b->ac->c), TCP_LAST_ACK);
	cl_take_all(b, true);
	assert_true(b->got_fin);
	assert_int_equal(b->ac->closed_n, 1);
	reent_action = 0;
}

/* RFC 5681 3.1: after an RTO, cwnd is one segment: only the first lost
 * segment goes out; one ACK later, at most two. */
static void test_rto_collapses_cwnd_to_one_segment(void **state)
{
	struct fx *fx = *state;
	static uint8_t big[30000];
	struct seg v[128], r[128];
	struct cl *cl;
	unsigned n, k;

	setup_flight(fx, &cl, 40162, big, sizeof(big));
	cl_data(cl, "2", 1);
	n = fx_take_data(fx, v, 128);
	assert_true(n >= 4);
	assert_true(fx_wait(fx, 5 * SEC) != UINT64_MAX);
	k = fx_take_data(fx, r, 128);
	assert_int_equal(k, 1);
	assert_int_equal(r[0].seq, v[0].seq);
	cl_absorb(cl, &r[0]);
	cl_ack(cl);
	k = fx_take_data(fx, r, 128);
	assert_true(k >= 1 && k <= 2);
	assert_int_equal(r[0].seq, v[1].seq);
}

/* FIN-WAIT-2 with a silent peer does not last forever: the connection ends
 * (closed() once) within two minutes, as Linux' tcp_fin_timeout does. */
static void test_fin_wait_2_silent_peer_times_out(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40163, 7000);

	cl_connect(cl);
	tcp_close(cl->ac->c);
	tcp_stack_flush(fx->st);
	cl_take_all(cl, false);
	cl_ack(cl);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_FIN_WAIT_2);
	for (int i = 0; i < 120 && cl->ac->closed_n == 0; i++)
		fx_advance(fx, SEC);
	assert_int_equal(cl->ac->closed_n, 1);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_FIN_WAIT_2], 0);
}

/* ======================================================================== */
/* peer options at the extremes, defaults, long timers                      */
/* ======================================================================== */

/* A peer announcing MSS 9000: our segments still fit the MSS we derive
 * from our own MTU (cfg.mss), RFC 9293 3.7.1 (MMS_S). */
static void test_peer_mss_larger_than_ours_capped(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40170, 8000);
	static uint8_t big[30000];

	cl->mss = 9000;
	fill_pattern(big, sizeof(big), 41);
	fx->mode = APP_REPLY;
	fx->reply = big;
	fx->reply_len = sizeof(big);
	cl_connect(cl);
	cl_data(cl, "x", 1);
	cl_recv(cl, sizeof(big), 30 * SEC);
	assert_int_equal(cl->rx_len, sizeof(big));
	assert_memory_equal(cl->rx, big, sizeof(big));
	assert_true(cl->max_payload <= fx->cfg.mss);
}

/* A peer announcing an absurd MSS (0, 1, 12 with timestamps leaves no room
 * for payload): no hang, no crash; either the SYN is refused or the reply
 * arrives intact. A small but sane MSS (100) is honoured exactly. */
static void test_peer_tiny_mss_no_hang(void **state)
{
	struct fx *fx = *state;
	static const uint16_t mss[] = { 0xffff, 1, 12, 13, 64, 100 };
	static uint8_t big[3000];

	fill_pattern(big, sizeof(big), 43);
	fx->mode = APP_REPLY;
	fx->reply = big;
	fx->reply_len = sizeof(big);
	for (unsigned i = 0; i < sizeof(mss) / sizeof(mss[0]); i++) {
		struct cl *cl = cl_new(fx, (uint16_t)(40171 + i), 9000 * i);
		struct seg s;
		uint8_t b[64];
		size_t n;

		cl->mss = mss[i] == 0xffff ? 0 : mss[i];
		/* below 88 a floor like Linux' tcp_min_snd_mss (CVE-2019-11479)
		 * may override the peer's MSS: not checked */
		cl->lax = mss[i] < 88 || mss[i] == 0xffff;
		if (mss[i] == 0xffff) {
			/* an MSS option whose value is 0 */
			cl->mss = 0;
			n = cl_build(cl, b, F_SYN, cl->iss, 0, NULL, 0);
			memmove(b + 24, b + 20, n - 20);
			b[20] = 2;
			b[21] = 4;
			b[22] = 0;
			b[23] = 0;
			b[12] = (uint8_t)(((n + 4) / 4) << 4);
			cl->snd_nxt = cl->iss + 1;
			cl->tsval++;
			fx_feed(fx, CL_IP, b, n + 4);
			cl->mss = 1;      /* what the checks below hold it to */
		} else {
			cl_syn(cl);
		}
		if (!fx_pop(fx, &s) || !(s.flags & F_SYN)) {
			assert_true(mss[i] < 88);  /* refused: fine if absurd */
			continue;
		}
		cl_absorb(cl, &s);
		cl_ack(cl);
		cl->ac = fx_find_ac(fx, cl->port);
		assert_non_null(cl->ac);
		cl_data(cl, "x", 1);
		for (int guard = 0; guard < 200000 && cl->rx_len < sizeof(big);
		     guard++) {
			if (!fx_pop(fx, &s)) {
				fx_advance(fx, TICK);
				continue;
			}
			cl_absorb(cl, &s);
			cl_ack(cl);
		}
		assert_int_equal(cl->rx_len, sizeof(big));
		assert_memory_equal(cl->rx, big, sizeof(big));
	}
}

/* A config of zeros takes the documented defaults (tcp.h): MSS 1460,
 * delayed ACK 10 ms, initial RTO 1 s, TIME_WAIT 1 s. */
static void test_zero_config_uses_defaults(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg;
	struct cl *cl;
	struct seg s;
	uint64_t w;

	memset(&cfg, 0, sizeof(cfg));
	cfg.local_ip = FX_IP;
	cfg.listen_port = FX_PORT;
	fx_recreate(fx, &cfg);
	cl = cl_new(fx, 40180, 10000);
	cl_syn(cl);
	fx_pop_must(fx, &s);
	assert_int_equal(s.mss, 1460);
	assert_int_equal(s.ws, -1);        /* window_scaling false */
	assert_false(s.has_ts);            /* timestamps false */
	/* SYN-ACK retransmitted after the 1 s initial RTO */
	w = fx_wait(fx, 5 * SEC);
	assert_true(w + SLACK >= 1 * SEC && w <= 1 * SEC + SLACK);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	cl_ack(cl);
	cl->ac = fx_find_ac(fx, 40180);
	assert_non_null(cl->ac);
	cl_data(cl, "q", 1);
	w = fx_wait(fx, 1 * SEC);
	assert_true(w + SLACK >= 10 * MS && w <= 10 * MS + SLACK);
	fx_drop_all(fx);
	tcp_close(cl->ac->c);
	tcp_stack_flush(fx->st);
	cl_take_all(cl, false);
	cl_ack(cl);
	cl_fin(cl);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_TIME_WAIT], 1);
	fx_advance(fx, 1 * SEC - 20 * MS);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_TIME_WAIT], 1);
	fx_advance(fx, 40 * MS);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_TIME_WAIT], 0);
}

/* Default rto_max (60 s) and max_retries (8): long timers on the wheel
 * still fire on time, the backoff caps at 60 s, then the abort. (rto_min
 * 5 s so that eight doublings reach the cap.) */
static void test_default_long_backoff_to_60s(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg;
	struct cl *cl;
	uint64_t iv[32];
	unsigned n = 0;
	struct seg s;

	memset(&cfg, 0, sizeof(cfg));
	cfg.local_ip = FX_IP;
	cfg.listen_port = FX_PORT;
	cfg.rto_min_us = 5 * SEC;
	fx_recreate(fx, &cfg);
	cl = cl_new(fx, 40181, 11000);
	cl_connect(cl);
	tcp_send(cl->ac->c, "z", 1);
	tcp_stack_flush(fx->st);
	fx_pop_must(fx, &s);
	while (cl->ac->closed_n == 0) {
		uint64_t w = fx_wait(fx, 200 * SEC);

		if (w == UINT64_MAX)
			break;
		while (fx_pop(fx, &s))
			if (!(s.flags & F_RST) && n < 32)
				iv[n++] = w;
	}
	assert_int_equal(cl->ac->closed_n, 1);
	assert_true(n == 8 || n == 7);
	for (unsigned i = 1; i < n; i++) {
		uint64_t want = 2 * iv[i - 1] < 60 * SEC ? 2 * iv[i - 1] :
			60 * SEC;

		assert_true(iv[i] + SLACK >= want && iv[i] <= want + SLACK);
	}
	assert_true(iv[n - 1] + SLACK >= 60 * SEC);
}

/* The clock jumps an hour while a connection idles (tick called rarely):
 * afterwards the connection works and the RTO is measured from now. */
static void test_clock_jump_while_idle(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40182, 12000);
	struct seg s;
	uint64_t w;

	fx->mode = APP_ECHO;
	cl_connect(cl);
	fx->now += 3600 * SEC;
	tcp_stack_tick(fx->st, fx->now);
	tcp_stack_flush(fx->st);
	assert_int_equal(fx_pending(fx), 0);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_ESTABLISHED);
	cl_data(cl, "after", 5);
	fx_pop_must(fx, &s);
	assert_int_equal(s.len, 5);
	w = fx_wait(fx, 5 * SEC);
	assert_true(w + SLACK >= fx->cfg.rto_min_us);
	assert_true(w <= fx->cfg.rto_initial_us + SLACK);
}

/* ======================================================================== */
/* options parsing, odd flag combinations, API misuse                       */
/* ======================================================================== */

/* Feeds a segment of 'cl' whose option area is 'opt' (padded by the
 * caller to a multiple of 4). */
static void cl_seg_opts(struct cl *cl, uint8_t flags, uint32_t seq,
			uint32_t ack, const uint8_t *opt, size_t optlen,
			const void *d, size_t n)
{
	uint8_t b[256];

	assert_true(optlen % 4 == 0 && 20 + optlen + n <= sizeof(b));
	memset(b, 0, 20);
	b[0] = (uint8_t)(cl->port >> 8);
	b[1] = (uint8_t)cl->port;
	b[2] = FX_PORT >> 8;
	b[3] = FX_PORT & 0xff;
	b[4] = (uint8_t)(seq >> 24);
	b[5] = (uint8_t)(seq >> 16);
	b[6] = (uint8_t)(seq >> 8);
	b[7] = (uint8_t)seq;
	b[8] = (uint8_t)(ack >> 24);
	b[9] = (uint8_t)(ack >> 16);
	b[10] = (uint8_t)(ack >> 8);
	b[11] = (uint8_t)ack;
	b[12] = (uint8_t)(((20 + optlen) / 4) << 4);
	b[13] = flags;
	b[14] = (uint8_t)(cl->win >> 8);
	b[15] = (uint8_t)cl->win;
	memcpy(b + 20, opt, optlen);
	if (n)
		memcpy(b + 20 + optlen, d, n);
	fx_feed(cl->fx, cl->ip, b, 20 + optlen + n);
}

/* RFC 9293 3.2: options end at EOL; whatever follows is padding. Unknown
 * options are skipped by their length. Both leave the SYN valid. */
static void test_options_eol_and_unknown_kinds_accepted(void **state)
{
	struct fx *fx = *state;
	struct cl *a = cl_new(fx, 40190, 100), *b = cl_new(fx, 40191, 200);
	static const uint8_t eol[] = { 2, 4, 0x04, 0x00,   /* MSS 1024 */
				       0, 0xff, 0xff, 0xff };
	static const uint8_t unk[] = { 30, 6, 1, 2, 3, 4,  /* MPTCP-ish */
				       254, 4, 0xaa, 0xbb, /* experimental */
				       2, 4, 0x02, 0x00,   /* MSS 512 */
				       1, 1, 1, 1, 1, 0 };
	struct seg s;

	cl_seg_opts(a, F_SYN, a->iss, 0, eol, sizeof(eol), NULL, 0);
	fx_pop_must(fx, &s);
	assert_int_equal(s.flags, F_SYN | F_ACK);
	cl_seg_opts(b, F_SYN, b->iss, 0, unk, sizeof(unk), NULL, 0);
	fx_pop_must(fx, &s);
	assert_int_equal(s.flags, F_SYN | F_ACK);
	assert_false(s.has_ts);
	assert_int_equal(s.ws, -1);
	/* the MSS after the unknown options was taken: 512 */
	b->mss = 512;
	b->ts = false;
	b->ws = -1;
	cl_absorb(b, &s);
	b->snd_nxt = b->iss + 1;
	cl_ack(b);
	b->ac = fx_find_ac(fx, 40191);
	assert_non_null(b->ac);
	{
		static uint8_t d[3000];

		fill_pattern(d, sizeof(d), 45);
		tcp_send(b->ac->c, d, sizeof(d));
		tcp_stack_flush(fx->st);
		cl_recv(b, sizeof(d), 5 * SEC);
		assert_int_equal(b->rx_len, sizeof(d));
		assert_true(b->max_payload <= 512 && b->max_payload > 256);
	}
	assert_int_equal(ctr(fx)->bad_segments, 0);
}

/* SACK blocks (RFC 2018) on duplicate ACKs are parsed or skipped, never
 * misread: the dupacks still count; a SACK option of a bad length harms
 * nothing. */
static void test_sack_blocks_on_dupacks_harmless(void **state)
{
	struct fx *fx = *state;
	static uint8_t big[30000];
	struct seg v[128], s;
	struct cl *cl;
	unsigned n;
	bool found = false;
	uint64_t bad;

	setup_flight(fx, &cl, 40192, big, sizeof(big));
	cl_data(cl, "2", 1);
	n = fx_take_data(fx, v, 128);
	assert_true(n >= 5);
	for (unsigned i = 1; i <= 3; i++) {
		uint8_t o[24] = { 1, 1, 8, 10 };
		uint32_t l = v[1].seq, r = v[i].seq + (uint32_t)v[i].len;

		cl->tsval++;
		put_ts(o + 2, cl->tsval, cl->ts_recent);
		o[12] = 1;
		o[13] = 1;
		o[14] = 5;
		o[15] = 10;
		o[16] = (uint8_t)(l >> 24);
		o[17] = (uint8_t)(l >> 16);
		o[18] = (uint8_t)(l >> 8);
		o[19] = (uint8_t)l;
		o[20] = (uint8_t)(r >> 24);
		o[21] = (uint8_t)(r >> 16);
		o[22] = (uint8_t)(r >> 8);
		o[23] = (uint8_t)r;
		cl_seg_opts(cl, F_ACK, cl->snd_nxt, cl->rcv_nxt, o, sizeof(o),
			    NULL, 0);
		while (fx_pop(fx, &s))
			if (s.len && s.seq == v[0].seq)
				found = true;
	}
	assert_true(found);
	bad = ctr(fx)->bad_segments;
	{
		/* SACK of length 7 (not 2 + 8n): dropped or ignored, never
		 * read past */
		uint8_t o[12] = { 1, 1, 5, 7, 0, 0, 0, 0, 0, 0, 0, 0 };

		cl_seg_opts(cl, F_ACK, cl->snd_nxt, cl->rcv_nxt, o, sizeof(o),
			    NULL, 0);
	}
	assert_true(ctr(fx)->bad_segments <= bad + 1);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_ESTABLISHED);
}

/* RFC 9293 3.10.7.2 (LISTEN): SYN+RST is an RST first: ignored; SYN+ACK is
 * an ACK first: RST <SEQ=SEG.ACK>. Neither creates a connection. */
static void test_listen_syn_rst_and_syn_ack(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40193, 300);
	struct seg s;

	cl_seg(cl, F_SYN | F_RST, 300, 0, NULL, 0);
	assert_int_equal(fx_pending(fx), 0);
	cl_seg(cl, F_SYN | F_ACK, 300, 0xabcdef01u, NULL, 0);
	fx_pop_must(fx, &s);
	assert_int_equal(s.flags & (F_RST | F_SYN), F_RST);
	assert_int_equal(s.seq, 0xabcdef01u);
	assert_int_equal(ctr(fx)->syn_received, 0);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_SYN_RECEIVED], 0);
}

/* The peer retracts its window (RFC 9293 3.8.6.2.1: robust against a
 * shrinking window): no new data past the new right edge. */
static void test_peer_shrinks_window(void **state)
{
	struct fx *fx = *state;
	static uint8_t big[30000];
	struct seg v[128], s;
	struct cl *cl;
	unsigned n;
	uint32_t max_end = 0, edge;

	setup_flight(fx, &cl, 40194, big, sizeof(big));
	cl_data(cl, "2", 1);
	n = fx_take_data(fx, v, 128);
	assert_true(n >= 4);
	for (unsigned i = 0; i < n; i++)
		if (i == 0 || SEQ_LT(max_end, v[i].seq + (uint32_t)v[i].len))
			max_end = v[i].seq + (uint32_t)v[i].len;
	/* ACK the first segment only, with a window ending before max_end */
	cl_absorb(cl, &v[0]);
	cl->win = 1;                       /* << 7 = 128 bytes */
	cl_ack(cl);
	edge = cl->rcv_nxt + 128;
	assert_true(SEQ_LT(edge, max_end));
	fx_advance(fx, 50 * MS);
	while (fx_pop(fx, &s))
		if (s.len > 1)
			assert_true(SEQ_LEQ(s.seq + (uint32_t)s.len, max_end));
	/* and it all completes once the window is back */
	cl->win = 65535;
	for (unsigned i = 1; i < n; i++)
		cl_absorb(cl, &v[i]);
	cl_ack(cl);
	cl_recv(cl, sizeof(big), 30 * SEC);
	assert_int_equal(cl->rx_len, sizeof(big));
	assert_memory_equal(cl->rx, big, sizeof(big));
}

/* A segment straddling the right edge of our window: the part inside is
 * taken, the rest dropped and counted (RFC 9293 3.10.7.4, trimming). */
static void test_segment_straddling_right_edge_trimmed(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct cl *cl;
	uint8_t d[1000];
	const uint8_t *p;
	uint32_t room;
	struct seg s;

	cfg.rcv_buf = 8192;
	fx_recreate(fx, &cfg);
	fx->mode = APP_HOLD;
	cl = cl_new(fx, 40195, 400);
	cl->ts = false;
	fill_pattern(d, sizeof(d), 47);
	cl_connect(cl);
	while ((room = cl->srv_ack + cl->srv_wnd - cl->snd_nxt) > sizeof(d)) {
		cl_data(cl, d, sizeof(d));
		fx_advance(fx, fx->cfg.delack_us + SLACK);
		cl_take_all(cl, false);
	}
	assert_true(room > 0);
	cl_seg(cl, F_ACK | F_PSH, cl->snd_nxt, cl->rcv_nxt, d, sizeof(d));
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	assert_int_equal(s.ack, cl->snd_nxt + room);
	assert_true(ctr(fx)->rcv_window_drops >= sizeof(d) - room);
	cl->snd_nxt += room;
	{
		size_t have = tcp_recv_peek(cl->ac->c, &p);

		assert_memory_equal(p + have - room, d, room);
	}
}

/* API misuse from the app: tcp_close twice sends one FIN; tcp_send after
 * tcp_close takes nothing (RFC 9293 3.10.2: "connection closing");
 * tcp_abort after tcp_close still ends in exactly one closed(). */
static void test_close_twice_send_after_close_abort_after_close(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40196, 500);
	struct seg s;
	unsigned fins = 0;

	cl_connect(cl);
	tcp_close(cl->ac->c);
	tcp_close(cl->ac->c);
	assert_int_equal(tcp_send(cl->ac->c, "after", 5), 0);
	tcp_stack_flush(fx->st);
	while (fx_pop(fx, &s)) {
		assert_int_equal(s.len, 0);
		if (s.flags & F_FIN)
			fins++;
	}
	assert_int_equal(fins, 1);
	tcp_abort(cl->ac->c);
	tcp_stack_flush(fx->st);
	assert_int_equal(cl->ac->closed_n, 1);
	fx_advance(fx, 5 * SEC);
	assert_int_equal(cl->ac->closed_n, 1);
	for (int i = 0; i < TCP_STATE_COUNT; i++)
		assert_int_equal(ctr(fx)->conns_in_state[i], 0);
}

/* tcp_send(0) and tcp_recv_consume(0) are no-ops. */
static void test_zero_length_send_and_consume(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40197, 600);

	cl_connect(cl);
	assert_int_equal(tcp_send(cl->ac->c, "", 0), 0);
	tcp_recv_consume(cl->ac->c, 0);
	tcp_stack_flush(fx->st);
	assert_int_equal(fx_pending(fx), 0);
	assert_int_equal(tcp_send_queued(cl->ac->c), 0);
}

/* RST accepted in every synchronized state: closed() once each. */
static void test_rst_in_each_state_closes_once(void **state)
{
	struct fx *fx = *state;
	enum tcp_state want[] = { TCP_CLOSE_WAIT, TCP_FIN_WAIT_1,
				  TCP_FIN_WAIT_2, TCP_LAST_ACK, TCP_CLOSING };

	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct cl *cl = cl_new(fx, (uint16_t)(41300 + i), 1000 * i);
		struct seg fin;

		cl_connect(cl);
		switch (want[i]) {
		case TCP_CLOSE_WAIT:
			cl_fin(cl);
			break;
		case TCP_FIN_WAIT_1:
			tcp_close(cl->ac->c);
			tcp_stack_flush(fx->st);
			break;
		case TCP_FIN_WAIT_2:
			tcp_close(cl->ac->c);
			tcp_stack_flush(fx->st);
			cl_take_all(cl, false);
			cl_ack(cl);
			break;
		case TCP_LAST_ACK:
			cl_fin(cl);
			tcp_close(cl->ac->c);
			tcp_stack_flush(fx->st);
			break;
		case TCP_CLOSING:
			tcp_close(cl->ac->c);
			tcp_stack_flush(fx->st);
			fx_pop_must(fx, &fin);
			cl_fin(cl);
			break;
		default:
			break;
		}
		assert_int_equal(tcp_conn_state(cl->ac->c), want[i]);
		fx_drop_all(fx);
		cl_seg(cl, F_RST, cl->snd_nxt, 0, NULL, 0);
		assert_int_equal(cl->ac->closed_n, 1);
		assert_int_equal(fx_pending(fx), 0);
	}
	for (int i = 0; i < TCP_STATE_COUNT; i++)
		assert_int_equal(ctr(fx)->conns_in_state[i], 0);
	assert_int_equal(ctr(fx)->resets_in, 5);
}

/* max_conns connections at once, each with its own echo; a 4-tuple hash
 * that collides must still tell them apart. */
static void test_many_connections_all_served(void **state)
{
	struct fx *fx = *state;
	struct cl *c[FX_MAX_CL];
	char msg[16];

	fx->mode = APP_ECHO;
	for (unsigned i = 0; i < FX_MAX_CL; i++) {
		/* same port, different addresses; and same address,
		 * different ports */
		c[i] = cl_new(fx, (uint16_t)(50000 + (i & 7)), 77u * i);
		c[i]->ip = CL_IP + (i >> 3) * 256;
		cl_connect(c[i]);
	}
	assert_int_equal(ctr(fx)->conns_in_state[TCP_ESTABLISHED], FX_MAX_CL);
	for (unsigned i = 0; i < FX_MAX_CL; i++) {
		int n = snprintf(msg, sizeof(msg), "conn%02u", i);

		cl_data(c[i], msg, (size_t)n);
	}
	for (unsigned i = 0; i < FX_MAX_CL; i++) {
		struct seg s;

		while (fx_pop(fx, &s))
			for (unsigned j = 0; j < FX_MAX_CL; j++)
				if (s.dport == c[j]->port && s.rip == c[j]->ip)
					cl_absorb(c[j], &s);
	}
	for (unsigned i = 0; i < FX_MAX_CL; i++) {
		int n = snprintf(msg, sizeof(msg), "conn%02u", i);

		assert_int_equal(c[i]->rx_len, (size_t)n);
		assert_memory_equal(c[i]->rx, msg, (size_t)n);
		assert_int_equal(c[i]->ac->rip, c[i]->ip);
	}
}

/* ======================================================================== */
/* RFC 5961 / 7323 details, half-open limits                                */
/* ======================================================================== */

/* RFC 5961 3.2 applies in SYN-RECEIVED too: an in-window RST that is not
 * exact draws a challenge ACK and the half-open connection stays. */
static void test_synrcvd_rst_not_exact_challenge_ack(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40200, 700);
	struct seg s;

	cl_syn(cl);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	cl_seg(cl, F_RST, cl->snd_nxt + 50, 0, NULL, 0);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_SYN_RECEIVED], 1);
	while (fx_pop(fx, &s))
		assert_false(s.flags & F_RST);
	cl_ack(cl);
	assert_int_equal(fx->accepted_calls, 1);
}

/* RFC 7323 5.3 R1: PAWS does not apply to RST: an exact RST with an old
 * TSval still resets. */
static void test_rst_with_old_tsval_still_accepted(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40201, 800);

	cl_connect(cl);
	cl->tsval = 500000;
	cl_data(cl, "x", 1);
	cl->tsval = 10;
	cl_seg(cl, F_RST, cl->snd_nxt, 0, NULL, 0);
	assert_int_equal(cl->ac->closed_n, 1);
}

/* RFC 7323 4.3 (2): with a delayed ACK covering two segments, TSecr echoes
 * the earlier segment's TSval (TS.Recent is updated only for a segment at
 * or before Last.ACK.sent). */
static void test_delayed_ack_echoes_earliest_tsval(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40202, 900);
	struct seg s;
	uint32_t first;

	cl_connect(cl);
	cl->tsval = 7000;
	cl_data(cl, "a", 1);
	first = cl->tsval;
	cl->tsval = 9000;
	cl_data(cl, "b", 1);
	assert_true(fx_wait(fx, 1 * SEC) != UINT64_MAX);
	fx_pop_must(fx, &s);
	assert_int_equal(s.ack, cl->snd_nxt);
	assert_int_equal(s.tsecr, first);
}

/* A retransmitted SYN-ACK carries the same options as the first. */
static void test_synack_retransmit_keeps_options(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40203, 1000);
	struct seg a, b;

	cl_syn(cl);
	fx_pop_must(fx, &a);
	assert_true(fx_wait(fx, 3 * SEC) != UINT64_MAX);
	fx_pop_must(fx, &b);
	assert_int_equal(b.flags, F_SYN | F_ACK);
	assert_int_equal(b.mss, a.mss);
	assert_int_equal(b.ws, a.ws);
	assert_true(b.has_ts);
	assert_int_equal(b.tsecr, a.tsecr);
	assert_true((int32_t)(b.tsval - a.tsval) >= 0);
}

/* max_conns counts half-open connections too (tcp.h: all states but
 * TIME_WAIT). */
static void test_max_conns_counts_half_open(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct seg s;
	unsigned synacks = 0;

	cfg.max_conns = 3;
	fx_recreate(fx, &cfg);
	for (int i = 0; i < 4; i++)
		cl_syn(cl_new(fx, (uint16_t)(41400 + i), 100u * (unsigned)i));
	while (fx_pop(fx, &s))
		if (s.flags == (F_SYN | F_ACK))
			synacks++;
	assert_int_equal(synacks, 3);
	assert_int_equal(ctr(fx)->conn_limit_drops + ctr(fx)->syn_backlog_drops,
			 1);
}

/* Half-open connections that expire free their backlog slots. */
static void test_syn_backlog_slots_freed_on_expiry(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct cl *late;
	struct seg s;

	cfg.syn_backlog = 2;
	fx_recreate(fx, &cfg);
	cl_syn(cl_new(fx, 41500, 1));
	cl_syn(cl_new(fx, 41501, 2));
	late = cl_new(fx, 41502, 3);
	cl_syn(late);
	assert_int_equal(ctr(fx)->syn_backlog_drops, 1);
	fx_advance(fx, 30 * SEC);            /* 1+2+4+8 s of SYN-ACK retries */
	fx_drop_all(fx);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_SYN_RECEIVED], 0);
	late->tsval += 100;
	cl_syn(late);
	fx_pop_must(fx, &s);
	assert_int_equal(s.flags, F_SYN | F_ACK);
}

/* A peer that closes its window and then vanishes (probes unanswered)
 * must not pin the connection and its buffers forever: RFC 9293 3.8.6.1
 * only forbids closing "as long as the receiving TCP continues to send
 * acknowledgments in response to the probe segments"; RFC 1122 4.2.2.17
 * likewise. Unanswered probes count like retransmissions (max_retries),
 * as in Linux (tcp_probe_timer). */
static void test_persist_unanswered_peer_aborts(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct cl *cl;
	struct seg s;
	uint8_t d[2000];

	cfg.persist_max_us = 4 * SEC;
	fx_recreate(fx, &cfg);
	cl = cl_new(fx, 40210, 1100);
	fill_pattern(d, sizeof(d), 49);
	cl_syn(cl);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	cl->win = 0;
	cl_ack(cl);
	cl->ac = fx_find_ac(fx, 40210);
	assert_non_null(cl->ac);
	tcp_send(cl->ac->c, d, sizeof(d));
	tcp_stack_flush(fx->st);
	for (int i = 0; i < 600 && cl->ac->closed_n == 0; i++) {
		fx_advance(fx, SEC);
		fx_drop_all(fx);               /* the peer is gone */
	}
	assert_int_equal(cl->ac->closed_n, 1);
	assert_true(ctr(fx)->persist_probes >= cfg.max_retries);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_ESTABLISHED], 0);
}

/* Receiver SWS avoidance (RFC 9293 3.8.6.2.2, a MUST in RFC 1122
 * 4.2.3.3): once the window has closed, no ACK advertises a window that is
 * above zero but below min(RCV.BUFF/2, MSS), even when an ACK goes out for
 * another reason (here: answering the peer's zero-window probes). */
static void test_rcv_sws_no_small_window_in_any_ack(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct cl *cl;
	uint8_t d[1024];
	uint32_t small;

	cfg.rcv_buf = 8192;
	fx_recreate(fx, &cfg);
	fx->mode = APP_HOLD;
	cl = cl_new(fx, 40211, 1200);
	fill_pattern(d, sizeof(d), 51);
	cl_connect(cl);
	for (int i = 0; i < 16 && cl->srv_ack + cl->srv_wnd != cl->snd_nxt;
	     i++) {
		uint32_t room = cl->srv_ack + cl->srv_wnd - cl->snd_nxt;

		cl_data(cl, d, room < sizeof(d) ? room : sizeof(d));
		fx_advance(fx, fx->cfg.delack_us + SLACK);
		cl_take_all(cl, false);
	}
	assert_int_equal(cl->srv_wnd, 0);
	small = cfg.rcv_buf / 2 < 1460 ? cfg.rcv_buf / 2 : 1460;
	for (int k = 0; k < 5; k++) {
		struct seg s;

		tcp_recv_consume(cl->ac->c, 200);    /* 200 bytes at a time */
		tcp_stack_flush(fx->st);
		/* the peer probes with one byte */
		cl_seg(cl, F_ACK, cl->snd_nxt, cl->rcv_nxt, d, 1);
		fx_advance(fx, fx->cfg.delack_us + SLACK);
		while (fx_pop(fx, &s)) {
			uint32_t w = (uint32_t)s.win << cl->srv_ws;

			cl_absorb(cl, &s);
			assert_true(w == 0 || w >= small);
			if (SEQ_LT(cl->snd_nxt, s.ack))
				cl->snd_nxt = s.ack;   /* probe byte taken */
		}
	}
}

/* Send and receive rings whose sizes are not powers of two, under loss:
 * wrap-around inside both rings, data intact. */
static void test_lossy_link_odd_buffer_sizes(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;

	cfg.rcv_buf = 3001;
	cfg.snd_buf = 5003;
	fx_recreate(fx, &cfg);
	for (uint64_t seed = 31; seed <= 32; seed++) {
		struct lossy_run r = { .seed = seed, .total = 40000,
				       .drop = 6, .dup = 2, .reorder = 6,
				       .close = true };

		run_lossy_echo(fx, &r);
	}
}

/* RFC 6528: ISN = M + F(4-tuple, secret), M a 4 us clock. Two tuples get
 * unrelated ISNs; the same tuple one second later gets one about 250000
 * higher. */
static void test_isn_rfc6528_clock_and_tuple(void **state)
{
	struct fx *fx = *state;
	struct cl *a = cl_new(fx, 40220, 1), *b = cl_new(fx, 40221, 1);
	struct cl *a2;
	struct seg sa, sb, sa2;
	uint32_t d;

	cl_syn(a);
	fx_pop_must(fx, &sa);
	cl_syn(b);
	fx_pop_must(fx, &sb);
	assert_true(sa.seq != sb.seq);
	cl_absorb(a, &sa);
	cl_seg(a, F_RST, a->snd_nxt, 0, NULL, 0);    /* forget it */
	assert_int_equal(ctr(fx)->conns_in_state[TCP_SYN_RECEIVED], 1);
	fx_advance(fx, 1 * SEC);
	fx_drop_all(fx);
	a2 = cl_new(fx, 40220, 1);
	cl_syn(a2);
	fx_pop_must(fx, &sa2);
	d = sa2.seq - sa.seq;
	assert_true(d >= 240000 && d <= 260000);
}

/* RFC 7323 5.4: the TSval clock ticks between once per ms and once per
 * second. */
static void test_tsval_clock_rate(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40222, 2);
	struct seg a, b;

	fx->mode = APP_ECHO;
	cl_connect(cl);
	cl_data(cl, "1", 1);
	fx_pop_must(fx, &a);
	cl_absorb(cl, &a);
	cl_ack(cl);
	fx_advance(fx, 10 * SEC);
	fx_drop_all(fx);
	cl_data(cl, "2", 1);
	fx_pop_must(fx, &b);
	assert_true(b.tsval - a.tsval >= 10 && b.tsval - a.tsval <= 10000);
}

/* RFC 7323 2.3: a shift above 14 is used as 14 (no overflow into a tiny
 * or zero window). */
static void test_peer_ws_above_14_clamped(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40223, 3);
	static uint8_t d[20000];

	cl->ws = 20;
	fill_pattern(d, sizeof(d), 53);
	cl_connect(cl);
	assert_int_equal(tcp_send(cl->ac->c, d, sizeof(d)), sizeof(d));
	tcp_stack_flush(fx->st);
	cl_recv(cl, sizeof(d), 5 * SEC);
	assert_int_equal(cl->rx_len, sizeof(d));
	assert_memory_equal(cl->rx, d, sizeof(d));
}

/* RFC 9293 3.10.7.4, fifth check: a segment without ACK in a synchronized
 * state (or SYN-RECEIVED) is dropped, its data too. */
static void test_segment_without_ack_dropped(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40224, 4), *h = cl_new(fx, 40225, 5);
	struct seg s;

	cl_connect(cl);
	cl_seg(cl, F_PSH, cl->snd_nxt, 0, "noack", 5);
	assert_int_equal(cl->ac->rx_len, 0);
	cl_data(cl, "ack", 3);
	assert_int_equal(cl->ac->rx_len, 3);
	assert_memory_equal(cl->ac->rx, "ack", 3);

	cl_syn(h);
	fx_pop_must(fx, &s);
	cl_absorb(h, &s);
	cl_seg(h, F_PSH, h->snd_nxt, 0, "early", 5);
	assert_int_equal(fx->accepted_calls, 1);
	cl_ack(h);
	assert_int_equal(fx->accepted_calls, 2);
	h->ac = fx_find_ac(fx, 40225);
	assert_int_equal(h->ac->rx_len, 0);
}

/* The app may send from inside accepted() (a greeting): the bytes go out
 * at flush like any other. */
static void *greet_accepted(void *arg, struct tcp_conn *c)
{
	void *ctx = app_accepted(arg, c);

	if (ctx)
		assert_int_equal(tcp_send(c, "220 hi\r\n", 8), 8);
	return ctx;
}

static void test_send_from_accepted_callback(void **state)
{
	struct fx *fx = *state;
	static const struct tcp_app app = {
		.accepted = greet_accepted,
		.readable = app_readable,
		.writable = app_writable,
		.closed = app_closed,
	};
	struct cl *cl;

	tcp_stack_destroy(&fx->st);
	fx->st = tcp_stack_create(&fx->cfg, &fx_io, fx, &app, fx, fx->now);
	assert_non_null(fx->st);
	cl = cl_new(fx, 40230, 6);
	cl_connect(cl);
	cl_recv(cl, 8, 1 * SEC);
	assert_int_equal(cl->rx_len, 8);
	assert_memory_equal(cl->rx, "220 hi\r\n", 8);
}

/* Seeded random segments against a live connection and the listener:
 * random flags, sequence and ACK numbers near and far, random option bytes
 * and data offsets. Nothing may crash; every segment is counted in
 * segs_in; afterwards a fresh connection works normally. */
static void test_random_segments_no_crash(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40231, 7), *fresh;
	struct lossy rng = { .rng = 0x1234567890abcdefull };
	uint8_t b[200];

	fx->mode = APP_ECHO;
	cl_connect(cl);
	for (int i = 0; i < 20000; i++) {
		size_t hl = 20, n;
		uint32_t seq, ack;
		unsigned r = lossy_rand(&rng);

		seq = r < 50 ? cl->snd_nxt + (uint32_t)(lossy_rand(&rng) * 700) -
			35000 : (uint32_t)(rng.rng >> 7);
		ack = r % 2 ? cl->rcv_nxt + (uint32_t)lossy_rand(&rng) - 50 :
			(uint32_t)(rng.rng >> 11);
		n = cl_build(cl, b, 0, seq, ack, NULL, 0);
		b[13] = (uint8_t)(rng.rng >> 3) & 0x3f;   /* any flags */
		if (lossy_rand(&rng) < 30) {
			/* random option bytes, data offset 5..15 */
			hl = 20 + 4 * (lossy_rand(&rng) % 11);
			for (size_t k = 20; k < hl; k++)
				b[k] = (uint8_t)lossy_rand(&rng);
			b[12] = (uint8_t)((hl / 4) << 4);
			n = hl;
		}
		if (lossy_rand(&rng) < 20)
			b[12] = (uint8_t)(lossy_rand(&rng) << 2);  /* any doff */
		if (lossy_rand(&rng) < 30) {
			size_t dl = lossy_rand(&rng);

			for (size_t k = 0; k < dl && n < sizeof(b); k++)
				b[n++] = (uint8_t)k;
		}
		if (lossy_rand(&rng) < 10)
			n = lossy_rand(&rng) % (n + 1);           /* truncate */
		if (lossy_rand(&rng) < 10) {
			b[0] = (uint8_t)lossy_rand(&rng);         /* other flow */
			b[1] = (uint8_t)lossy_rand(&rng);
		}
		fx_feed(fx, CL_IP + (lossy_rand(&rng) < 5), b, n);
		if (i % 64 == 0) {
			fx_advance(fx, 7 * TICK);
			fx_drop_all(fx);
		}
	}
	fx_advance(fx, 30 * SEC);
	fx_drop_all(fx);
	assert_int_equal(ctr(fx)->segs_in, fx->fed);
	assert_int_equal(fx->io_errors, 0);
	assert_true(ctr(fx)->bad_segments > 0);
	assert_true(ctr(fx)->resets_out > 0);
	fresh = cl_new(fx, 40232, 8);
	cl_connect(fresh);
	cl_data(fresh, "still alive", 11);
	cl_recv(fresh, 11, 1 * SEC);
	assert_int_equal(fresh->rx_len, 11);
	assert_memory_equal(fresh->rx, "still alive", 11);
	cl->lax = true;        /* its view of the flow was fiction */
}

/* FIN-WAIT-1 and the peer's FIN arrives acking ours: straight to
 * TIME-WAIT (RFC 9293 3.10.7.4, eighth: FIN-WAIT-1 "if our FIN has been
 * ACKed ... enter TIME-WAIT"). */
static void test_fin_acking_our_fin_goes_to_time_wait(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40240, 9);
	struct seg s;

	cl_connect(cl);
	tcp_close(cl->ac->c);
	tcp_stack_flush(fx->st);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	assert_true(cl->got_fin);
	cl_fin(cl);                              /* FIN+ACK of our FIN */
	assert_int_equal(ctr(fx)->conns_in_state[TCP_TIME_WAIT], 1);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_FIN_WAIT_1], 0);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_CLOSING], 0);
	assert_int_equal(cl->ac->closed_n, 1);
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	fx_pop_must(fx, &s);
	assert_int_equal(s.ack, cl->snd_nxt);
}

/* The final ACK of the handshake carries data and FIN: accepted, data
 * readable, then CLOSE-WAIT with peer_closed. */
static void test_handshake_ack_with_data_and_fin(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40241, 10);
	struct seg s;

	cl_syn(cl);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	cl_seg(cl, F_ACK | F_PSH | F_FIN, cl->snd_nxt, cl->rcv_nxt, "quit", 4);
	cl->snd_nxt += 5;
	assert_int_equal(fx->accepted_calls, 1);
	cl->ac = fx_find_ac(fx, 40241);
	assert_non_null(cl->ac);
	assert_int_equal(cl->ac->rx_len, 4);
	assert_memory_equal(cl->ac->rx, "quit", 4);
	assert_true(cl->ac->peer_closed);
	assert_int_equal(tcp_conn_state(cl->ac->c), TCP_CLOSE_WAIT);
	tcp_close(cl->ac->c);
	tcp_stack_flush(fx->st);
	cl_take_all(cl, true);
	assert_true(cl->got_fin);
	assert_int_equal(cl->ac->closed_n, 1);
}

/* LAST-ACK with the peer gone: our FIN is retransmitted, then the
 * connection is aborted after max_retries with closed() once. Same in
 * FIN-WAIT-1 with data in flight. */
static void test_peer_gone_in_last_ack_and_fin_wait_1(void **state)
{
	struct fx *fx = *state;
	struct cl *a = cl_new(fx, 40242, 11), *b = cl_new(fx, 40243, 12);
	unsigned fins = 0;
	struct seg s;

	cl_connect(a);
	cl_connect(b);
	cl_fin(a);
	tcp_close(a->ac->c);
	tcp_send(b->ac->c, "unacked", 7);
	tcp_close(b->ac->c);
	tcp_stack_flush(fx->st);
	assert_int_equal(tcp_conn_state(a->ac->c), TCP_LAST_ACK);
	assert_int_equal(tcp_conn_state(b->ac->c), TCP_FIN_WAIT_1);
	for (int i = 0; i < 300 && (a->ac->closed_n == 0 || b->ac->closed_n == 0);
	     i++) {
		fx_advance(fx, SEC);
		while (fx_pop(fx, &s))
			if (s.dport == 40242 && (s.flags & F_FIN))
				fins++;
	}
	assert_int_equal(a->ac->closed_n, 1);
	assert_int_equal(b->ac->closed_n, 1);
	assert_true(fins >= fx->cfg.max_retries - 1);
	assert_int_equal(ctr(fx)->aborts, 2);
	for (int i = 0; i < TCP_STATE_COUNT; i++)
		assert_int_equal(ctr(fx)->conns_in_state[i], 0);
}

/* Out-of-order reassembly as a property: for many seeds, a 20 KB stream
 * cut at random boundaries, plus random overlapping re-sends, all fed in a
 * random order: the app must then hold exactly the stream, with no
 * retransmission needed. */
static void test_random_overlapping_segments_reassembled(void **state)
{
	struct fx *fx = *state;
	static uint8_t src[20000];
	struct { uint32_t off, len; } seg[200];
	struct tcp_config cfg = fx->cfg;

	cfg.ooo_max_segs = 256;          /* nothing dropped: no repair needed */
	fx_recreate(fx, &cfg);
	fx->mode = APP_COLLECT;
	for (unsigned seed = 1; seed <= 25; seed++) {
		struct lossy rng = { .rng = 0x9e3779b97f4a7c15ull * seed };
		struct cl *cl;
		unsigned n = 0;
		uint32_t base, off;

		if (fx->ncls == FX_MAX_CL) {
			for (unsigned i = 0; i < fx->ncls; i++)
				free(fx->cls[i].rx);
			fx->ncls = 0;
		}
		cl = cl_new(fx, (uint16_t)(43000 + seed), seed * 0x01010101u);
		cl->ts = seed % 2;
		fill_pattern(src, sizeof(src), seed);
		cl_connect(cl);
		base = cl->snd_nxt;
		for (off = 0; off < sizeof(src) && n < 200;) {
			uint32_t len = 1 + (uint32_t)lossy_rand(&rng) * 14;

			if (off + len > sizeof(src))
				len = sizeof(src) - off;
			seg[n].off = off;
			seg[n++].len = len;
			off += len;
		}
		for (unsigned k = 0; k < 30 && n < 200; k++, n++) {
			seg[n].off = (uint32_t)(rng.rng >> 9) % sizeof(src);
			seg[n].len = 1 + (uint32_t)lossy_rand(&rng) * 20;
			if (seg[n].off + seg[n].len > sizeof(src))
				seg[n].len = sizeof(src) - seg[n].off;
		}
		for (unsigned i = n; i > 1; i--) {         /* shuffle */
			unsigned j = (unsigned)((rng.rng >> 5) % i);

			lossy_rand(&rng);
			if (j != i - 1) {
				uint32_t o = seg[j].off, l = seg[j].len;

				seg[j] = seg[i - 1];
				seg[i - 1].off = o;
				seg[i - 1].len = l;
			}
		}
		for (unsigned i = 0; i < n; i++)
			cl_seg(cl, F_ACK, base + seg[i].off, cl->rcv_nxt,
			       src + seg[i].off, seg[i].len);
		/* the first cut covers the stream: all of it is here */
		assert_int_equal(ctr(fx)->ooo_drops, 0);
		assert_int_equal(cl->ac->rx_len, sizeof(src));
		assert_memory_equal(cl->ac->rx, src, sizeof(src));
		cl->snd_nxt = base + sizeof(src);
		fx_advance(fx, fx->cfg.delack_us + SLACK);
		cl_take_all(cl, false);
		assert_int_equal(cl->srv_ack, cl->snd_nxt);
		tcp_abort(cl->ac->c);
		tcp_stack_flush(fx->st);
		fx_drop_all(fx);
	}
	assert_true(ctr(fx)->ooo_queued > 100);
}

/* RFC 9293 3.10.7.4 (SND.WL1/WL2): a window carried by an older segment
 * (lower sequence number) that arrives late must not replace the newer
 * window. Here the peer's second segment (big window) arrives first, out
 * of order; its first (tiny window) fills the hole afterwards. */
static void test_stale_window_from_reordered_segment_ignored(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40250, 13);
	static uint8_t d[20000];
	struct seg v[32];
	size_t inflight = 0;
	unsigned n;
	uint32_t s0;

	cl_connect(cl);
	s0 = cl->snd_nxt;
	cl->win = 1000;                   /* << 7: 128000 */
	cl_seg(cl, F_ACK | F_PSH, s0 + 10, cl->rcv_nxt, "second....", 10);
	cl->win = 10;                     /* << 7: 1280, but older */
	cl->tsval -= 2;                   /* it was sent first */
	cl_seg(cl, F_ACK | F_PSH, s0, cl->rcv_nxt, "first.....", 10);
	cl->tsval += 2;
	cl->snd_nxt = s0 + 20;
	assert_int_equal(cl->ac->rx_len, 20);
	fx_drop_all(fx);
	fill_pattern(d, sizeof(d), 55);
	assert_int_equal(tcp_send(cl->ac->c, d, sizeof(d)), sizeof(d));
	tcp_stack_flush(fx->st);
	n = fx_take_data(fx, v, 32);
	for (unsigned i = 0; i < n; i++)
		inflight += v[i].len;
	assert_true(inflight > 1280);
	cl->win = 1000;
}

/* The app answers a few ms later (still within delack_us): the answer
 * carries the owed ACK and the delayed-ACK timer sends nothing more. */
static void test_late_response_still_piggybacks_ack(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40251, 14);
	struct seg s;

	fx->mode = APP_HOLD;
	cl_connect(cl);
	cl_data(cl, "get k\r\n", 7);
	fx_advance(fx, 5 * MS);
	assert_int_equal(fx_pending(fx), 0);
	tcp_recv_consume(cl->ac->c, 7);
	assert_int_equal(tcp_send(cl->ac->c, "END\r\n", 5), 5);
	tcp_stack_flush(fx->st);
	fx_pop_must(fx, &s);
	assert_int_equal(s.len, 5);
	assert_int_equal(s.ack, cl->snd_nxt);
	fx_advance(fx, fx->cfg.delack_us + SLACK);
	assert_int_equal(fx_pending(fx), 0);
	assert_int_equal(ctr(fx)->delayed_acks, 0);
}

/* "NULL on bad config" (tcp.h): no config, missing io or app operations,
 * an MSS with no room for data, rto_min above rto_max. */
static void test_create_rejects_bad_config(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct tcp_io no_send = { .seg_alloc = io_alloc };
	struct tcp_stack *st;

	assert_null(tcp_stack_create(NULL, &fx_io, fx, &fx_app, fx, 0));
	assert_null(tcp_stack_create(&cfg, NULL, fx, &fx_app, fx, 0));
	assert_null(tcp_stack_create(&cfg, &no_send, fx, &fx_app, fx, 0));
	assert_null(tcp_stack_create(&cfg, &fx_io, fx, NULL, fx, 0));
	cfg.mss = 20;
	assert_null(tcp_stack_create(&cfg, &fx_io, fx, &fx_app, fx, 0));
	cfg = fx->cfg;
	cfg.rto_min_us = 10 * SEC;
	cfg.rto_max_us = 1 * SEC;
	assert_null(tcp_stack_create(&cfg, &fx_io, fx, &fx_app, fx, 0));
	cfg = fx->cfg;
	st = tcp_stack_create(&cfg, &fx_io, fx, &fx_app, fx, 0);
	assert_non_null(st);
	tcp_stack_destroy(&st);
	assert_null(st);
}

/* "max_retries RTOs in a row": an ACK of new data resets the count, so a
 * connection that recovered is not aborted early by its past timeouts. */
static void test_retries_reset_by_progress(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct cl *cl;
	struct seg s;
	unsigned rtx = 0;

	cfg.max_retries = 3;
	cfg.rto_max_us = 1 * SEC;
	fx_recreate(fx, &cfg);
	cl = cl_new(fx, 40252, 15);
	cl_connect(cl);
	tcp_send(cl->ac->c, "A", 1);
	tcp_stack_flush(fx->st);
	fx_pop_must(fx, &s);
	for (int i = 0; i < 2; i++) {          /* two RTOs for A */
		assert_true(fx_wait(fx, 5 * SEC) != UINT64_MAX);
		fx_pop_must(fx, &s);
		assert_int_equal(s.len, 1);
	}
	cl_absorb(cl, &s);
	cl_ack(cl);                            /* progress */
	tcp_send(cl->ac->c, "B", 1);
	tcp_stack_flush(fx->st);
	fx_pop_must(fx, &s);
	while (cl->ac->closed_n == 0) {
		if (fx_wait(fx, 10 * SEC) == UINT64_MAX)
			break;
		while (fx_pop(fx, &s))
			if (s.len == 1)
				rtx++;
	}
	assert_int_equal(cl->ac->closed_n, 1);
	assert_true(rtx + 1 >= cfg.max_retries);
}

/* A coarser wheel (10 ms ticks): timers fire no earlier than asked and at
 * most two wheel ticks late. */
static void test_coarse_timer_tick(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;
	struct cl *cl;
	uint64_t w;
	struct seg s;

	cfg.timer_tick_us = 10 * MS;
	fx_recreate(fx, &cfg);
	cl = cl_new(fx, 40253, 16);
	cl_connect(cl);
	cl_data(cl, "x", 1);
	w = fx_wait(fx, 1 * SEC);
	assert_true(w >= cfg.delack_us && w <= cfg.delack_us + 20 * MS);
	fx_pop_must(fx, &s);
	assert_int_equal(s.ack, cl->snd_nxt);
	tcp_send(cl->ac->c, "y", 1);
	tcp_stack_flush(fx->st);
	fx_pop_must(fx, &s);
	w = fx_wait(fx, 5 * SEC);
	assert_true(w >= cfg.rto_min_us &&
		    w <= cfg.rto_initial_us + 20 * MS);
}

/* The app aborts from inside writable() (called while an ACK is being
 * processed): no crash, closed() once, no callback afterwards, the flow
 * answers later segments with RST. */
static void reent_writable(void *arg, void *ctx)
{
	struct app_conn *ac = ctx;

	app_writable(arg, ctx);
	if (ac->c)
		tcp_abort(ac->c);
}

static void test_reentrant_abort_from_writable(void **state)
{
	struct fx *fx = *state;
	static const struct tcp_app app = {
		.accepted = app_accepted,
		.readable = app_readable,
		.writable = reent_writable,
		.closed = app_closed,
	};
	struct cl *cl;
	struct seg s;
	bool rst = false;

	tcp_stack_destroy(&fx->st);
	fx->st = tcp_stack_create(&fx->cfg, &fx_io, fx, &app, fx, fx->now);
	assert_non_null(fx->st);
	cl = cl_new(fx, 40254, 17);
	cl_connect(cl);
	tcp_send(cl->ac->c, "data", 4);
	tcp_stack_flush(fx->st);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	/* the ACK frees send space: writable() aborts; the same segment
	 * carries data, which must not be delivered to a dead connection */
	cl_data(cl, "more", 4);
	assert_int_equal(cl->ac->closed_n, 1);
	while (fx_pop(fx, &s))
		if (s.flags & F_RST)
			rst = true;
	assert_true(rst);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_ESTABLISHED], 0);
}

/* An RTO while more data waits unsent behind the lost segment (here the
 * peer's window holds it back): the retransmission stays within the
 * peer's window (RFC 9293 3.8.6.1 / 3.10.7.4: never send beyond SND.UNA +
 * SND.WND), and whatever goes out can be ACKed: the ACK of every byte we
 * sent is acceptable (SEG.ACK =< SND.NXT). Found by a lossy-link sweep
 * (small buffers, seed 158): the connection stalled until aborted. */
static void test_rto_with_unsent_data_queued_behind(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40255, 18);
	uint8_t d[1100];
	struct seg s, r;

	fill_pattern(d, sizeof(d), 57);
	cl->ws = -1;
	cl->win = 100;
	cl_connect(cl);
	assert_int_equal(tcp_send(cl->ac->c, d, 100), 100);
	tcp_stack_flush(fx->st);
	fx_pop_must(fx, &s);
	assert_int_equal(s.len, 100);
	assert_int_equal(tcp_send(cl->ac->c, d + 100, 1000), 1000);
	tcp_stack_flush(fx->st);
	while (fx_pop(fx, &r))
		assert_int_equal(r.len, 0);      /* window full */
	assert_true(fx_wait(fx, 5 * SEC) != UINT64_MAX);
	fx_pop_must(fx, &r);                     /* the RTO retransmission */
	assert_int_equal(r.seq, s.seq);
	assert_true(r.len <= 100);
	/* the peer takes it and opens its window */
	cl_absorb(cl, &r);
	cl->win = 65535;
	cl_ack(cl);
	cl_recv(cl, sizeof(d), 10 * SEC);
	assert_int_equal(cl->rx_len, sizeof(d));
	assert_memory_equal(cl->rx, d, sizeof(d));
	/* and the peer's ACKs of all of it are taken */
	for (int i = 0; i < 100 && tcp_send_queued(cl->ac->c); i++) {
		cl_ack(cl);
		fx_advance(fx, 100 * MS);
		cl_take_all(cl, false);
	}
	assert_int_equal(tcp_send_queued(cl->ac->c), 0);
	assert_int_equal(ctr(fx)->aborts, 0);
	assert_int_equal(cl->ac->closed_n, 0);
}

/* A sweep over many seeds and link/buffer settings: drop 0-19 %, dup,
 * reorder, wrapped ISNs, with and without TS and WS, normal and tiny
 * buffers and OOO queue. max_retries is raised so that an abort means the
 * stack stalled, not that the dice were cruel. (Seed 158 of the tiny-buffer
 * run found bug 4 of /tmp/tcp-bugs.md.) */
static void lossy_sweep(struct fx *fx, uint64_t from, uint64_t to)
{
	for (uint64_t seed = from; seed < to; seed++) {
		struct lossy_run r = {
			.seed = seed, .total = 30000 + (seed % 7) * 5000,
			.drop = (unsigned)(seed % 20),
			.dup = (unsigned)(seed % 5),
			.reorder = (unsigned)(seed % 11),
			.iss = seed % 3 == 0 ?
				0xffffffffu - (uint32_t)seed * 100 : 0,
			.no_ts = seed % 2, .no_ws = seed % 4 == 1,
			.close = true, .server_first = seed % 6 < 3,
			.cl_win = seed % 5 == 4 ? (uint16_t)(700 + seed % 3000) :
				0 };

		/* recycle fixture slots: every earlier run ended closed */
		if (fx->nconns >= FX_MAX_CONNS - 2) {
			fx_free_conns(fx);
		}
		if (fx->ncls >= FX_MAX_CL - 1) {
			for (unsigned i = 0; i < fx->ncls; i++)
				free(fx->cls[i].rx);
			fx->ncls = 0;
		}
		run_lossy_echo(fx, &r);
	}
}

static void test_lossy_link_seed_sweep(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;

	cfg.max_retries = 15;
	fx_recreate(fx, &cfg);
	lossy_sweep(fx, 100, 400);
}

static void test_lossy_link_seed_sweep_tiny_buffers(void **state)
{
	struct fx *fx = *state;
	struct tcp_config cfg = fx->cfg;

	cfg.max_retries = 15;
	cfg.rcv_buf = 2000;
	cfg.snd_buf = 3000;
	cfg.ooo_max_segs = 3;
	fx_recreate(fx, &cfg);
	lossy_sweep(fx, 100, 400);
}

/* Several connections at once over one lossy link: their timers share the
 * wheel, their segments interleave, connections start, finish and close at
 * different times. Each must echo byte-exact and end with one closed(). */
struct mflow {
	struct cl *cl;
	uint32_t base, una, fin_seq;
	uint64_t last_progress;
	size_t total;
	unsigned seed;
	bool fin_sent, app_closed;
};

static void run_lossy_multi(struct fx *fx, uint64_t seed, unsigned nflows)
{
	static uint8_t src[8][40000];
	static struct seg v[512];
	struct mflow f[8];
	struct lossy l = { .rng = seed * 0x2545f4914f6cdd1dull + 7,
			   .drop = 7, .dup = 2, .reorder = 0 };
	uint64_t deadline = fx->now + 300 * SEC;
	bool done = false;

	assert_true(nflows <= 8);
	fx->mode = APP_ECHO;
	fx_drop_all(fx);
	for (unsigned k = 0; k < nflows; k++) {
		f[k].cl = cl_new(fx, (uint16_t)(44000 + seed * 8 + k),
				 (uint32_t)(seed * 77777 + k * 0x40000000u));
		f[k].cl->ts = (seed + k) % 2;
		f[k].total = 10000 + 3000 * k;
		fill_pattern(src[k], f[k].total, (unsigned)(seed + k));
		cl_connect(f[k].cl);
		f[k].cl->lossy = true;
		f[k].base = f[k].una = f[k].cl->snd_nxt;
		f[k].last_progress = fx->now;
		f[k].fin_sent = f[k].app_closed = false;
		f[k].fin_seq = 0;
	}
	while (!done && fx->now < deadline) {
		unsigned n = 0;

		for (unsigned k = 0; k < nflows; k++) {
			struct mflow *m = &f[k];
			struct cl *cl = m->cl;
			uint32_t wnd = cl->srv_wnd < 8 * 1448 ? cl->srv_wnd :
				8 * 1448;

			while (cl->snd_nxt - m->base < m->total &&
			       cl->snd_nxt - m->una < wnd && !m->fin_sent) {
				uint32_t off = cl->snd_nxt - m->base;
				uint32_t len = (uint32_t)(m->total - off);

				if (len > 1448)
					len = 1448;
				if (len > wnd - (cl->snd_nxt - m->una))
					len = wnd - (cl->snd_nxt - m->una);
				lossy_send(&l, cl, F_ACK | F_PSH, cl->snd_nxt,
					   src[k] + off, len);
				cl->snd_nxt += len;
			}
			/* all echoed: our FIN, again every 300 ms until ACKed */
			if (cl->rx_len == m->total &&
			    m->una - m->base == m->total &&
			    (!m->fin_sent ||
			     (SEQ_LEQ(cl->srv_ack, m->fin_seq) &&
			      fx->now - m->last_progress > 300 * MS))) {
				m->fin_seq = m->base + (uint32_t)m->total;
				lossy_send(&l, cl, F_FIN | F_ACK, m->fin_seq,
					   NULL, 0);
				cl->snd_nxt = m->fin_seq + 1;
				m->fin_sent = true;
				m->last_progress = fx->now;
			}
			if (!m->app_closed && cl->ac->c &&
			    tcp_conn_peer_closed(cl->ac->c)) {
				tcp_close(cl->ac->c);
				tcp_stack_flush(fx->st);
				m->app_closed = true;
			}
		}
		while (n < 512 && fx_pop(fx, &v[n]))
			n++;
		for (unsigned i = 0; i < n; i++) {
			struct mflow *m = NULL;
			uint32_t before;

			for (unsigned k = 0; k < nflows; k++)
				if (v[i].dport == f[k].cl->port)
					m = &f[k];
			if (m == NULL)
				continue;
			cl_check_hdr(m->cl, &v[i]);
			if (lossy_rand(&l) < l.drop)
				continue;
			before = m->cl->rcv_nxt;
			cl_absorb(m->cl, &v[i]);
			if (SEQ_GT(m->cl->srv_ack, m->una) &&
			    SEQ_LEQ(m->cl->srv_ack, m->base + m->total)) {
				m->una = m->cl->srv_ack;
				m->last_progress = fx->now;
			}
			if (m->cl->rcv_nxt != before || v[i].len ||
			    (v[i].flags & F_FIN))
				lossy_send(&l, m->cl, F_ACK, m->cl->snd_nxt,
					   NULL, 0);
		}
		for (unsigned k = 0; k < nflows; k++) {
			struct mflow *m = &f[k];
			struct cl *cl = m->cl;

			if (!m->fin_sent && fx->now - m->last_progress >
			    300 * MS && cl->snd_nxt != m->una) {
				uint32_t off = m->una - m->base;
				uint32_t len = cl->snd_nxt - m->una;

				if (len > 1448)
					len = 1448;
				lossy_send(&l, cl, F_ACK | F_PSH, m->una,
					   src[k] + off, len);
				cl->snd_nxt = m->una + len;
				m->last_progress = fx->now;
			}
		}
		done = true;
		for (unsigned k = 0; k < nflows; k++)
			if (!f[k].fin_sent || f[k].cl->ac->closed_n == 0 ||
			    !f[k].cl->got_fin ||
			    SEQ_LEQ(f[k].cl->srv_ack, f[k].fin_seq))
				done = false;
		fx_advance(fx, TICK);
	}
	if (l.held_len)
		fx_feed(fx, CL_IP, l.held, l.held_len);
	fx_advance(fx, 5 * SEC);
	for (unsigned k = 0; k < nflows; k++) {
		struct cl *cl = f[k].cl;

		if (cl->rx_len != f[k].total || cl->ac->closed_n != 1)
			print_error("multi seed %llu flow %u: got %zu of %zu, "
				    "closed %u, got_fin %d\n",
				    (unsigned long long)seed, k, cl->rx_len,
				    f[k].total, cl->ac->closed_n, cl->got_fin);
		assert_int_equal(cl->rx_len, f[k].total);
		assert_memory_equal(cl->rx, src[k], f[k].total);
		assert_int_equal(cl->ac->closed_n, 1);
		assert_true(cl->got_fin);
	}
	for (int i = 0; i < TCP_STATE_COUNT; i++)
		if (i != TCP_TIME_WAIT)
			assert_int_equal(ctr(fx)->conns_in_state[i], 0);
}

static void test_lossy_link_many_flows_at_once(void **state)
{
	struct fx *fx = *state;

	for (uint64_t seed = 1; seed <= 6; seed++) {
		if (fx->ncls > FX_MAX_CL - 8) {
			for (unsigned i = 0; i < fx->ncls; i++)
				free(fx->cls[i].rx);
			fx->ncls = 0;
		}
		if (fx->nconns > FX_MAX_CONNS - 8)
			fx_free_conns(fx);
		run_lossy_multi(fx, seed, 8);
	}
	assert_int_equal(ctr(fx)->aborts, 0);
}

/* Chaos: four flows, 3000 random steps per seed: plausible but wrong
 * segments near the windows (stray FIN, RST, SYN, bad ACKs, partial
 * overlaps), real data, duplicate SYNs, random app calls (send, close,
 * abort, partial consume) and random time steps, then 200 s of quiet.
 * Nothing may crash or trip the sanitizers; closed() at most once, no
 * callback after it; segs_in/segs_out exact; afterwards every connection
 * has ended or sits in a state a silent peer cannot hold forever. */
static void chaos_run(struct fx *fx, uint64_t seed)
{
	struct lossy rng = { .rng = seed * 0x9e3779b97f4a7c15ull ^ 0xabcdef };
	struct tcp_config cfg = fx->cfg;
	struct cl *c[4];
	uint8_t b[300];

	fx_recreate(fx, &cfg);            /* fresh stack: no stale ctx */
	for (unsigned i = 0; i < fx->ncls; i++)
		free(fx->cls[i].rx);
	fx->ncls = 0;
	fx->mode = (enum app_mode)(seed % 4);
	memset(b, 'r', sizeof(b));
	fx->reply = b;
	fx->reply_len = sizeof(b);
	for (int k = 0; k < 4; k++) {
		struct seg s;

		c[k] = cl_new(fx, (uint16_t)(45000 + k), (uint32_t)(rng.rng >> 3));
		c[k]->lax = true;        /* its view of the flow is fiction */
		c[k]->lossy = true;
		lossy_rand(&rng);
		cl_syn(c[k]);
		if (fx_pop(fx, &s)) {
			cl_absorb(c[k], &s);
			cl_ack(c[k]);
		}
		c[k]->ac = fx_find_ac(fx, c[k]->port);
	}
	for (int i = 0; i < 3000; i++) {
		struct cl *cl = c[lossy_rand(&rng) % 4];
		struct app_conn *ac = cl->ac;
		unsigned r = lossy_rand(&rng);
		struct seg s;

		if (r < 40) {
			uint8_t fl = F_ACK;
			uint32_t seq, ack;
			size_t n;

			if (lossy_rand(&rng) < 10)
				fl |= F_FIN;
			if (lossy_rand(&rng) < 3)
				fl |= F_RST;
			if (lossy_rand(&rng) < 3)
				fl |= F_SYN;
			seq = cl->snd_nxt + (uint32_t)lossy_rand(&rng) * 30 - 1000;
			ack = cl->rcv_nxt + (uint32_t)lossy_rand(&rng) * 20 - 1000;
			n = lossy_rand(&rng) * 2;
			cl_seg(cl, fl, seq, ack, b, n);
			if (lossy_rand(&rng) < 50)
				cl->snd_nxt += (uint32_t)n;
		} else if (r < 55) {
			cl_data(cl, b, lossy_rand(&rng) * 3);
		} else if (r < 70) {
			cl_ack(cl);
		} else if (r < 75) {
			cl_syn(cl);
		} else if (r < 80 && ac && ac->c && ac->closed_n == 0) {
			unsigned a = lossy_rand(&rng) % 6;
			const uint8_t *p;

			if (a == 0)
				tcp_send(ac->c, b, lossy_rand(&rng) * 3);
			else if (a == 1)
				tcp_close(ac->c);
			else if (a == 2 && lossy_rand(&rng) < 20)
				tcp_abort(ac->c);
			else if (a == 3)
				tcp_recv_consume(ac->c,
						 tcp_recv_peek(ac->c, &p) / 2 + 1);
			tcp_stack_flush(fx->st);
		} else if (r < 90) {
			fx_advance(fx, (lossy_rand(&rng) + 1) * 10 * TICK);
		}
		while (fx_pop(fx, &s))
			for (int k = 0; k < 4; k++)
				if (s.dport == c[k]->port) {
					cl_absorb(c[k], &s);
					if (!c[k]->ac)
						c[k]->ac = fx_find_ac(fx,
								c[k]->port);
				}
	}
	fx_advance(fx, 200 * SEC);
	fx_drop_all(fx);
	for (unsigned i = 0; i < fx->nconns; i++) {
		assert_true(fx->conns[i].closed_n <= 1);
		assert_int_equal(fx->conns[i].after_closed, 0);
	}
	assert_int_equal(ctr(fx)->segs_in, fx->fed);
	assert_int_equal(ctr(fx)->segs_out, fx->sends);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_SYN_RECEIVED], 0);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_TIME_WAIT], 0);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_FIN_WAIT_2], 0);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_LAST_ACK], 0);
	assert_int_equal(ctr(fx)->conns_in_state[TCP_CLOSING], 0);
}

static void test_chaos_random_steps_no_crash(void **state)
{
	struct fx *fx = *state;

	for (uint64_t seed = 1; seed <= 100; seed++)
		chaos_run(fx, seed);
}

/* tcp_abort() from inside accepted(): RST out, and closed(ctx) once for
 * the ctx accepted() went on to return ("closed() follows at once"). */
static void *abort_accepted(void *arg, struct tcp_conn *c)
{
	void *ctx = app_accepted(arg, c);

	tcp_abort(c);
	return ctx;
}

static void test_abort_inside_accepted(void **state)
{
	struct fx *fx = *state;
	static const struct tcp_app app = {
		.accepted = abort_accepted,
		.readable = app_readable,
		.writable = app_writable,
		.closed = app_closed,
	};
	struct cl *cl;
	struct seg s;
	bool rst = false;

	tcp_stack_destroy(&fx->st);
	fx->st = tcp_stack_create(&fx->cfg, &fx_io, fx, &app, fx, fx->now);
	assert_non_null(fx->st);
	cl = cl_new(fx, 40260, 19);
	cl_syn(cl);
	fx_pop_must(fx, &s);
	cl_absorb(cl, &s);
	cl_data(cl, "data", 4);
	assert_int_equal(fx->accepted_calls, 1);
	assert_int_equal(fx->closed_calls, 1);
	assert_int_equal(fx->conns[0].closed_n, 1);
	while (fx_pop(fx, &s))
		if (s.flags & F_RST)
			rst = true;
	assert_true(rst);
	for (int i = 0; i < TCP_STATE_COUNT; i++)
		if (i != TCP_TIME_WAIT)
			assert_int_equal(ctr(fx)->conns_in_state[i], 0);
}

/* The peer shrinks its window to 0 with data in flight and keeps ACKing
 * (ACK = SND.UNA, window 0): alive, not aborted by max_retries; data flows
 * when the window opens (RFC 9293 3.8.6.1: do not close while the peer
 * answers). */
static void test_window_shrunk_to_zero_with_data_in_flight(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40261, 20);
	static uint8_t d[20000];
	struct seg v[64], s;
	unsigned n;

	fill_pattern(d, sizeof(d), 59);
	cl_connect(cl);
	assert_int_equal(tcp_send(cl->ac->c, d, sizeof(d)), sizeof(d));
	tcp_stack_flush(fx->st);
	n = fx_take_data(fx, v, 64);
	assert_true(n >= 2);
	cl_absorb(cl, &v[0]);                 /* the rest is "lost" */
	cl->win = 0;
	cl_ack(cl);
	for (int i = 0; i < 120; i++) {
		fx_advance(fx, SEC);
		while (fx_pop(fx, &s)) {
			assert_false(s.flags & F_RST);
			cl_ack(cl);           /* still zero, nothing taken */
		}
	}
	assert_int_equal(cl->ac->closed_n, 0);
	assert_int_equal(ctr(fx)->aborts, 0);
	cl->win = 65535;
	cl_ack(cl);
	cl_recv(cl, sizeof(d), 60 * SEC);
	assert_int_equal(cl->rx_len, sizeof(d));
	assert_memory_equal(cl->rx, d, sizeof(d));
}

/* With timestamps a full-sized segment carries 1448 bytes: two of them get
 * an immediate ACK too (RFC 9293 3.8.6.3). */
static void test_ack_every_second_full_segment_with_timestamps(void **state)
{
	struct fx *fx = *state;
	struct cl *cl = cl_new(fx, 40262, 21);
	uint8_t d[1448];
	struct seg s;

	fill_pattern(d, sizeof(d), 61);
	cl_connect(cl);
	assert_true(cl->ts_ok);
	cl_data(cl, d, sizeof(d));
	assert_int_equal(fx_pending(fx), 0);
	cl_data(cl, d, sizeof(d));
	fx_pop_must(fx, &s);
	assert_int_equal(s.ack, cl->snd_nxt);
	assert_int_equal(ctr(fx)->delayed_acks, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_handshake_syn_ack_options_then_accept),
		T(test_handshake_without_options),
		T(test_lost_final_ack_data_completes_handshake),
		T(test_lost_final_ack_synack_retransmit_then_accept),
		T(test_lost_synack_retransmitted_with_backoff),
		T(test_synrcvd_bad_ack_gets_rst),
		T(test_synrcvd_rst_removes_half_open),
		T(test_accept_refused_sends_rst),
		T(test_mss_of_peer_respected),
		T(test_mss_announced_and_full_segments_accepted),
		T(test_echo_reply_piggybacks_ack),
		T(test_large_response_several_mss),
		T(test_client_data_many_segments),
		T(test_connections_are_isolated),
		T(test_client_segment_lost_then_hole_filled),
		T(test_reordered_segments_delivered_in_order),
		T(test_duplicate_segment_delivered_once),
		T(test_overlapping_segment_delivers_new_bytes_once),
		T(test_lost_server_data_rto_retransmit),
		T(test_rto_backoff_doubles_capped_then_abort),
		T(test_three_dupacks_fast_retransmit),
		T(test_newreno_partial_ack_retransmits_next_hole),
		T(test_alloc_failure_recovered_by_rto),
		T(test_zero_window_persist_probes_backoff),
		T(test_rcv_window_closes_and_update_sent),
		T(test_window_scale_large_window_advertised),
		T(test_window_scale_peer_honoured),
		T(test_window_scale_ignored_unless_both_sent),
		T(test_no_ws_in_synack_when_peer_sent_none),
		T(test_send_buffer_full_then_writable),
		T(test_rst_exact_seq_closes),
		T(test_rst_in_window_not_exact_challenge_ack),
		T(test_rst_outside_window_ignored),
		T(test_syn_on_established_challenge_ack),
		T(test_unknown_flow_gets_rst),
		T(test_syn_to_closed_port_gets_rst),
		T(test_abort_sends_rst_and_closes),
		T(test_ack_of_unsent_data_acked_and_dropped),
		T(test_segment_outside_window_acked_no_data),
		T(test_half_close_peer_fin_first),
		T(test_peer_closed_only_after_bytes_consumed),
		T(test_app_close_first_fin_wait_time_wait),
		T(test_time_wait_reacks_retransmitted_fin),
		T(test_simultaneous_close),
		T(test_lost_fin_retransmitted),
		T(test_peer_fin_retransmitted_handled_once),
		T(test_time_wait_reused_by_higher_seq_syn),
		T(test_time_wait_not_reused_by_lower_seq_syn),
		T(test_syn_backlog_overflow_dropped_and_counted),
		T(test_max_conns_limit),
		T(test_timestamps_echoed),
		T(test_paws_rejects_old_tsval),
		T(test_no_timestamps_when_not_negotiated),
		T(test_delayed_ack_single_small_segment),
		T(test_ack_every_second_full_segment),
		T(test_malformed_headers_dropped_and_counted),
		T(test_truncated_segments_every_length),
		T(test_seq_wraparound_client_isn_near_2_32),
		T(test_closed_exactly_once_per_accepted),
		T(test_counters_match_traffic),
		T(test_create_destroy_contract),
		T(test_retransmitted_syn_gets_same_synack),
		T(test_fin_out_of_order_waits_for_hole),
		T(test_ooo_queue_overflow_counted),
		T(test_data_segments_are_not_dupacks),
		T(test_ack_too_old_dropped_and_acked),
		T(test_rcv_window_update_sws_avoidance),
		T(test_time_wait_max_bounded),
		T(test_fin_wait_2_still_receives),
		T(test_close_after_large_send_fin_follows_data),
		T(test_rto_follows_measured_rtt),
		T(test_lossy_link_echo_seeds),
		T(test_lossy_link_heavy_loss_and_close),
		T(test_lossy_link_small_buffers_wrap_no_options),
		T(test_reentrant_abort_and_close_from_readable),
		T(test_rto_collapses_cwnd_to_one_segment),
		T(test_fin_wait_2_silent_peer_times_out),
		T(test_peer_mss_larger_than_ours_capped),
		T(test_peer_tiny_mss_no_hang),
		T(test_zero_config_uses_defaults),
		T(test_default_long_backoff_to_60s),
		T(test_clock_jump_while_idle),
		T(test_options_eol_and_unknown_kinds_accepted),
		T(test_sack_blocks_on_dupacks_harmless),
		T(test_listen_syn_rst_and_syn_ack),
		T(test_peer_shrinks_window),
		T(test_segment_straddling_right_edge_trimmed),
		T(test_close_twice_send_after_close_abort_after_close),
		T(test_zero_length_send_and_consume),
		T(test_rst_in_each_state_closes_once),
		T(test_many_connections_all_served),
		T(test_synrcvd_rst_not_exact_challenge_ack),
		T(test_rst_with_old_tsval_still_accepted),
		T(test_delayed_ack_echoes_earliest_tsval),
		T(test_synack_retransmit_keeps_options),
		T(test_max_conns_counts_half_open),
		T(test_syn_backlog_slots_freed_on_expiry),
		T(test_persist_unanswered_peer_aborts),
		T(test_rcv_sws_no_small_window_in_any_ack),
		T(test_lossy_link_odd_buffer_sizes),
		T(test_isn_rfc6528_clock_and_tuple),
		T(test_tsval_clock_rate),
		T(test_peer_ws_above_14_clamped),
		T(test_segment_without_ack_dropped),
		T(test_send_from_accepted_callback),
		T(test_random_segments_no_crash),
		T(test_fin_acking_our_fin_goes_to_time_wait),
		T(test_handshake_ack_with_data_and_fin),
		T(test_peer_gone_in_last_ack_and_fin_wait_1),
		T(test_random_overlapping_segments_reassembled),
		T(test_stale_window_from_reordered_segment_ignored),
		T(test_late_response_still_piggybacks_ack),
		T(test_create_rejects_bad_config),
		T(test_retries_reset_by_progress),
		T(test_coarse_timer_tick),
		T(test_reentrant_abort_from_writable),
		T(test_rto_with_unsent_data_queued_behind),
		T(test_lossy_link_seed_sweep),
		T(test_lossy_link_seed_sweep_tiny_buffers),
		T(test_lossy_link_many_flows_at_once),
		T(test_chaos_random_steps_no_crash),
		T(test_abort_inside_accepted),
		T(test_window_shrunk_to_zero_with_data_in_flight),
		T(test_ack_every_second_full_segment_with_timestamps),
	};
#undef T
	return cmocka_run_group_tests_name("tcp", tests, NULL, NULL);
}
