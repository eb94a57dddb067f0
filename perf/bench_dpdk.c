/*
 * bench_dpdk.c - dpcache-bench's DPDK mode (see bench_dpdk.h).
 *
 * Design note. Every EAL lcore, the main one included, polls one RX/TX
 * queue pair of one port and owns a set of flows (UDP source ports) or TCP
 * connections; nothing is shared while the load runs. The server answers a
 * flow on the queue of the polling core that owns it (with memif, server
 * queue i is our queue i), and that core is chosen by the server's own
 * hash of the 4-tuple (net_flow_owner), which this program must not link.
 * So, before the load, the main lcore *discovers* ownership: it sends a
 * probe from many source ports (a UDP get, or a TCP SYN) on queue 0 and
 * keeps each port for the lcore on whose queue the answer came back, until
 * every lcore has its share. Requests then go out on the owner's queue and
 * the server never hands a flow between cores. A frame that still arrives
 * on a queue whose lcore does not own its flow is counted (misrouted) and
 * dropped; the UDP timeout or the TCP retransmission covers it.
 *
 * UDP: memcached's 8-byte frame header, one request per datagram, a window
 * of --pipeline request ids per flow; a request id is slot | generation <<
 * log2(slots), so a late reply to a slot already reused is recognised and
 * ignored. A request unanswered after --rto-ms counts as a timeout; while
 * preloading, its key is queued again (a few times) so the key set ends up
 * complete.
 *
 * TCP: a minimal client (RFC 9293 subset). The main lcore does the
 * three-way handshakes (SYN with MSS, no window scaling or SACK), so every
 * lcore starts with established connections. Requests are pipelined into a
 * send buffer that holds everything from SND.UNA; data is accepted only in
 * order (anything else is dropped, counted, and answered with a duplicate
 * ACK) and acknowledged cumulatively, mostly piggy-backed on the next
 * requests. Loss is repaired by go-back-N: when nothing is acknowledged for
 * the retransmission timeout, SND.NXT goes back to SND.UNA and everything is
 * sent again, the timeout doubling up to 1 s; a connection that makes no
 * progress for BD_TCP_MAX_RTO timeouts is dropped, so a run never hangs.
 * At the end each connection sends FIN and waits a bounded time for the
 * server's FIN, then resets what did not close.
 *
 * Checksums are computed in software (memif offers no offload); frames the
 * server sends are checked for addresses and ports, not for checksums.
 */
#include "bench_dpdk.h"
#include "bench_hist.h"
#include "bench_rand.h"
#include "bench_report.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_arp.h>
#include <rte_atomic.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#define BD_BURST          32
#define BD_TX_MAX         64
#define BD_RING_DESC      1024
#define BD_UDP_HDR        8              /* memcached UDP frame header */
#define BD_PRELOAD_WINDOW 32             /* TCP window while preloading */
#define BD_PRELOAD_TRIES  4              /* UDP sends of one preload set */
#define BD_MAX_COUNTED_S  300            /* cap of a preload or --requests run */
#define BD_DRAIN_MS       2000           /* wait for stragglers */
#define BD_CLOSE_MS       1000           /* FIN exchange, at most */
#define BD_TCP_MSS        1460           /* what we announce */
#define BD_TCP_WIN        65535          /* no window scaling */
#define BD_TCP_RBUF       (128 * 1024)
#define BD_TCP_MAX_RTO    12             /* timeouts in a row before giving up */
#define BD_TCP_RTO_MAX_MS 1000
#define BD_NO_FLOW        0xffff
#define BD_PORT_FIRST     1024

#define SEQ_LT(a, b)  ((int32_t)((uint32_t)(a) - (uint32_t)(b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) <= 0)

/* Frame-level events, for the report: they explain errors and timeouts. */
struct bd_stats {
	uint64_t rx_frames, tx_frames;
	uint64_t busy_cyc;       /* measured phase: iterations that had frames */
	uint64_t tx_dropped;     /* TX ring full or no mbuf */
	uint64_t rx_other;       /* not ARP, not from the server, malformed */
	uint64_t misrouted;      /* a flow this lcore does not own */
	uint64_t late;           /* UDP reply to a request already timed out */
	uint64_t tcp_retrans;    /* go-back-N rounds */
	uint64_t tcp_ooo;        /* segments beyond RCV.NXT, dropped */
	uint64_t tcp_dup;        /* segments entirely before RCV.NXT */
	uint64_t tcp_rst;        /* connections reset by the server */
	uint64_t tcp_lost;       /* connections dropped (no progress, bad data) */
	uint64_t tcp_unclosed;   /* FIN exchange not finished in time */
};

/* A request slot; bench_parse() sees only .r. */
struct bd_slot {
	struct bench_req r;      /* start_ns holds TSC cycles */
	uint8_t tries;           /* UDP preload sends of this key */
	bool busy;               /* UDP: waiting for its reply */
};

enum bd_tcp_state { BD_CLOSED, BD_ESTABLISHED, BD_CLOSING };

/* One UDP flow or TCP connection: its source port is its identity. */
struct bd_flow {
	uint16_t sport;
	/* UDP: slots indexed by request id; TCP: FIFO of requests */
	struct bd_slot *q;
	uint16_t *gen;           /* UDP: generation per slot */
	unsigned qhead, qcount;
	/* TCP */
	int state;
	uint32_t snd_una, snd_nxt, snd_max, snd_end; /* snd_end: after sbuf */
	uint32_t rcv_nxt;
	uint32_t snd_wnd;
	uint16_t mss;
	bool need_ack, touched, fin_sent, fin_acked, fin_rcvd;
	unsigned rto_count;
	uint64_t rto_at, rto_cyc;  /* TSC; rto_at 0 = timer off */
	uint8_t *sbuf;           /* sbuf[0] is the byte at snd_una */
	size_t scap;
	char *rbuf;
	size_t rlen;
};

struct bd_ctx;

struct bd_lcore {
	struct bd_ctx *x;
	unsigned idx;
	uint16_t queue;
	struct bd_flow *flows;
	unsigned nflows, quota;
	uint16_t *port_map;      /* source port -> flow index, BD_NO_FLOW */
	struct rte_mbuf *tx[BD_TX_MAX];
	unsigned ntx;
	struct bench_rng rng;
	/* phase */
	bool preloading, issuing;
	unsigned window;
	uint64_t budget, preload_next, preload_end;
	uint64_t inflight;
	uint64_t *retry;         /* UDP preload keys to send again */
	uint8_t *retry_tries;
	unsigned nretry, retry_cap;
	struct bd_flow **touched;
	unsigned ntouched;
	/* results */
	struct bench_counts c, pre;
	struct bd_stats s;
	struct bench_hist hist;
	double load_secs, preload_secs;
} __rte_cache_aligned;

struct bd_ctx {
	const struct bench_dpdk_opts *o;
	const struct bench_zipf *zipf;
	uint16_t port_id;
	unsigned nq;
	struct rte_mempool *pool;
	struct rte_ether_addr mac, server_mac;
	bool have_server_mac;
	uint64_t hz;
	double ns_per_cyc;
	unsigned qcap;           /* slots per flow, a power of two */
	unsigned qshift;         /* log2(qcap) */
	size_t req_max;
	struct bd_lcore *lc;     /* nq of them, indexed by queue */
	rte_atomic32_t barrier;
};

static uint64_t ms_cyc(const struct bd_ctx *x, uint64_t ms)
{
	return x->hz / 1000 * ms;
}

/* ---- frames ------------------------------------------------------------ */

static void bd_tx_flush(struct bd_lcore *l)
{
	unsigned sent = 0;

	for (int tries = 0; sent < l->ntx && tries < 8; tries++)
		sent += rte_eth_tx_burst(l->x->port_id, l->queue, l->tx + sent,
					 (uint16_t)(l->ntx - sent));
	l->s.tx_frames += sent;
	if (sent < l->ntx) {
		/* ring full: the frames are lost as if on the wire */
		l->s.tx_dropped += l->ntx - sent;
		rte_pktmbuf_free_bulk(l->tx + sent, l->ntx - sent);
	}
	l->ntx = 0;
}

static void bd_tx(struct bd_lcore *l, struct rte_mbuf *m)
{
	l->tx[l->ntx++] = m;
	if (l->ntx == BD_TX_MAX)
		bd_tx_flush(l);
}

/* An mbuf with room for len bytes at *p; NULL (counted) when out of mbufs. */
static struct rte_mbuf *bd_alloc(struct bd_lcore *l, size_t len, uint8_t **p)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(l->x->pool);

	if (m == NULL) {
		l->s.tx_dropped++;
		return NULL;
	}
	*p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)len);
	if (*p == NULL) {
		rte_pktmbuf_free(m);
		l->s.tx_dropped++;
		return NULL;
	}
	return m;
}

/* Ethernet + IPv4 header to the server; returns the L4 header. */
static uint8_t *bd_put_ip(const struct bd_ctx *x, uint8_t *p, uint8_t proto,
			  size_t l4len)
{
	struct rte_ether_hdr *e = (struct rte_ether_hdr *)p;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(e + 1);

	rte_ether_addr_copy(&x->server_mac, &e->dst_addr);
	rte_ether_addr_copy(&x->mac, &e->src_addr);
	e->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->type_of_service = 0;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + l4len));
	ip->packet_id = 0;
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = proto;
	ip->hdr_checksum = 0;
	ip->src_addr = rte_cpu_to_be_32(x->o->local_ip);
	ip->dst_addr = rte_cpu_to_be_32(x->o->server_ip);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	return (uint8_t *)(ip + 1);
}

#define BD_L3_OFF  sizeof(struct rte_ether_hdr)
#define BD_L4_OFF  (BD_L3_OFF + sizeof(struct rte_ipv4_hdr))

/* One UDP datagram to the server; payload is written by the caller into
 * the returned buffer (*pay), then bd_udp_finish(). */
static struct rte_mbuf *bd_udp_alloc(struct bd_lcore *l, uint16_t sport,
				     size_t max_pay, uint8_t **pay)
{
	uint8_t *p;
	struct rte_mbuf *m = bd_alloc(l, BD_L4_OFF + sizeof(struct rte_udp_hdr) +
					 max_pay, &p);
	struct rte_udp_hdr *u;

	if (m == NULL)
		return NULL;
	u = (struct rte_udp_hdr *)(p + BD_L4_OFF);
	u->src_port = rte_cpu_to_be_16(sport);
	u->dst_port = rte_cpu_to_be_16(l->x->o->server_port);
	*pay = (uint8_t *)(u + 1);
	return m;
}

static void bd_udp_finish(struct bd_lcore *l, struct rte_mbuf *m,
			  size_t max_pay, size_t pay)
{
	uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
	struct rte_udp_hdr *u = (struct rte_udp_hdr *)(p + BD_L4_OFF);
	size_t l4 = sizeof(*u) + pay;

	rte_pktmbuf_trim(m, (uint16_t)(max_pay - pay));
	bd_put_ip(l->x, p, IPPROTO_UDP, l4);
	u->dgram_len = rte_cpu_to_be_16((uint16_t)l4);
	u->dgram_cksum = 0;
	u->dgram_cksum = rte_ipv4_udptcp_cksum(
		(struct rte_ipv4_hdr *)(p + BD_L3_OFF), u);
	bd_tx(l, m);
}

/* One TCP segment of flow f: flags, sequence number, data. */
static void bd_tcp_send(struct bd_lcore *l, struct bd_flow *f, uint8_t flags,
			uint32_t seq, const uint8_t *data, size_t len)
{
	size_t opt = (flags & RTE_TCP_SYN_FLAG) ? 4 : 0;
	size_t l4 = sizeof(struct rte_tcp_hdr) + opt + len;
	struct rte_tcp_hdr *t;
	size_t room;
	uint8_t *p;
	struct rte_mbuf *m = bd_alloc(l, BD_L4_OFF + l4, &p);

	if (m == NULL)
		return;
	t = (struct rte_tcp_hdr *)bd_put_ip(l->x, p, IPPROTO_TCP, l4);
	t->src_port = rte_cpu_to_be_16(f->sport);
	t->dst_port = rte_cpu_to_be_16(l->x->o->server_port);
	t->sent_seq = rte_cpu_to_be_32(seq);
	t->recv_ack = rte_cpu_to_be_32((flags & RTE_TCP_ACK_FLAG) ? f->rcv_nxt : 0);
	t->data_off = (uint8_t)(((sizeof(*t) + opt) / 4) << 4);
	t->tcp_flags = flags;
	room = BD_TCP_RBUF - f->rlen;
	t->rx_win = rte_cpu_to_be_16(room > BD_TCP_WIN ? BD_TCP_WIN : (uint16_t)room);
	t->cksum = 0;
	t->tcp_urp = 0;
	if (opt) {
		uint8_t *o = (uint8_t *)(t + 1);

		o[0] = 2; /* MSS, RFC 9293 3.2 */
		o[1] = 4;
		o[2] = BD_TCP_MSS >> 8;
		o[3] = BD_TCP_MSS & 0xff;
	}
	if (len)
		memcpy((uint8_t *)(t + 1) + opt, data, len);
	t->cksum = rte_ipv4_udptcp_cksum((struct rte_ipv4_hdr *)(p + BD_L3_OFF), t);
	if (flags & RTE_TCP_ACK_FLAG)
		f->need_ack = false;
	bd_tx(l, m);
}

/* ARP request for the server, or reply to one for us (RFC 826). */
static void bd_arp_send(struct bd_lcore *l, uint16_t op,
			const struct rte_ether_addr *tha, uint32_t tip)
{
	struct bd_ctx *x = l->x;
	struct rte_ether_hdr *e;
	struct rte_arp_hdr *a;
	uint8_t *p;
	struct rte_mbuf *m = bd_alloc(l, sizeof(*e) + sizeof(*a), &p);

	if (m == NULL)
		return;
	e = (struct rte_ether_hdr *)p;
	a = (struct rte_arp_hdr *)(e + 1);
	if (op == RTE_ARP_OP_REQUEST)
		memset(&e->dst_addr, 0xff, sizeof(e->dst_addr));
	else
		rte_ether_addr_copy(tha, &e->dst_addr);
	rte_ether_addr_copy(&x->mac, &e->src_addr);
	e->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
	a->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	a->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	a->arp_hlen = RTE_ETHER_ADDR_LEN;
	a->arp_plen = 4;
	a->arp_opcode = rte_cpu_to_be_16(op);
	rte_ether_addr_copy(&x->mac, &a->arp_data.arp_sha);
	a->arp_data.arp_sip = rte_cpu_to_be_32(x->o->local_ip);
	if (op == RTE_ARP_OP_REQUEST)
		memset(&a->arp_data.arp_tha, 0, sizeof(a->arp_data.arp_tha));
	else
		rte_ether_addr_copy(tha, &a->arp_data.arp_tha);
	a->arp_data.arp_tip = rte_cpu_to_be_32(tip);
	bd_tx(l, m);
}

/* Answers ARP requests for our address; learns the server's MAC (only
 * before the lcores run: learn is false on them). */
static void bd_arp_input(struct bd_lcore *l, const uint8_t *p, size_t len,
			 bool learn)
{
	struct bd_ctx *x = l->x;
	const struct rte_arp_hdr *a = (const struct rte_arp_hdr *)(p + BD_L3_OFF);

	if (len < BD_L3_OFF + sizeof(*a) ||
	    a->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
	    a->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    a->arp_hlen != RTE_ETHER_ADDR_LEN || a->arp_plen != 4) {
		l->s.rx_other++;
		return;
	}
	if (learn && rte_be_to_cpu_32(a->arp_data.arp_sip) == x->o->server_ip) {
		rte_ether_addr_copy(&a->arp_data.arp_sha, &x->server_mac);
		x->have_server_mac = true;
	}
	if (a->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) &&
	    rte_be_to_cpu_32(a->arp_data.arp_tip) == x->o->local_ip)
		bd_arp_send(l, RTE_ARP_OP_REPLY, &a->arp_data.arp_sha,
			    rte_be_to_cpu_32(a->arp_data.arp_sip));
}

/*
 * Classifies a received frame. Returns IPPROTO_UDP or IPPROTO_TCP with *l4
 * and *l4len set for a datagram/segment from the server to us, 0 for
 * anything else (ARP handled here).
 */
static int bd_classify(struct bd_lcore *l, struct rte_mbuf *m, bool learn,
		       const uint8_t **l4, size_t *l4len)
{
	const struct bench_dpdk_opts *o = l->x->o;
	const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
	size_t len = rte_pktmbuf_data_len(m);
	const struct rte_ether_hdr *e = (const struct rte_ether_hdr *)p;
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(e + 1);
	size_t ihl, tot;

	if (len < BD_L3_OFF || m->nb_segs != 1)
		goto other;
	if (e->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP)) {
		bd_arp_input(l, p, len, learn);
		return 0;
	}
	if (e->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    len < BD_L4_OFF || (ip->version_ihl >> 4) != 4)
		goto other;
	ihl = (size_t)(ip->version_ihl & 0xf) * 4;
	tot = rte_be_to_cpu_16(ip->total_length);
	if (ihl < sizeof(*ip) || tot < ihl || BD_L3_OFF + tot > len ||
	    ip->src_addr != rte_cpu_to_be_32(o->server_ip) ||
	    ip->dst_addr != rte_cpu_to_be_32(o->local_ip) ||
	    (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG |
						    RTE_IPV4_HDR_OFFSET_MASK)))
		goto other;
	*l4 = p + BD_L3_OFF + ihl;
	*l4len = tot - ihl;
	if (ip->next_proto_id == IPPROTO_UDP && *l4len >= sizeof(struct rte_udp_hdr))
		return IPPROTO_UDP;
	if (ip->next_proto_id == IPPROTO_TCP && *l4len >= sizeof(struct rte_tcp_hdr))
		return IPPROTO_TCP;
other:
	l->s.rx_other++;
	return 0;
}

/* ---- requests ------------------------------------------------------------ */

static bool bd_can_issue(const struct bd_lcore *l)
{
	return l->issuing && (l->budget > 0 || l->nretry > 0);
}

/* Fill s with the next request of this lcore's stream. */
static void bd_next(struct bd_lcore *l, struct bd_slot *s)
{
	const struct bench_dpdk_opts *o = l->x->o;
	struct bench_req *r = &s->r;

	memset(s, 0, sizeof(*s));
	if (l->preloading) {
		r->op = BENCH_OP_SET;
		if (l->nretry > 0) {
			l->nretry--;
			r->key = l->retry[l->nretry];
			s->tries = l->retry_tries[l->nretry];
			return;
		}
		l->budget--;
		r->key = l->preload_next++;
		return;
	}
	r->measured = 1;
	l->budget--;
	if (bench_rng_below(&l->rng, o->ratio_get + o->ratio_set) < o->ratio_set)
		r->op = BENCH_OP_SET;
	else
		r->op = BENCH_OP_GET;
	if (l->x->zipf != NULL)
		r->key = bench_zipf_sample(l->x->zipf, &l->rng);
	else
		r->key = bench_rng_below(&l->rng, o->keys);
}

static struct bench_counts *bd_counts_for(struct bd_lcore *l, const struct bench_req *r)
{
	return r->measured ? &l->c : &l->pre;
}

static void bd_account(struct bd_lcore *l, const struct bench_req *r,
		       enum bench_result res, uint64_t t)
{
	bench_counts_reply(bd_counts_for(l, r), r, res);
	if (r->measured)
		bench_hist_record(&l->hist,
				  (uint64_t)((double)(t - r->start_ns) *
					     l->x->ns_per_cyc));
}

/* ---- UDP ------------------------------------------------------------------ */

/* Sends a new request in free slot i of flow f. */
static void bd_udp_issue(struct bd_lcore *l, struct bd_flow *f, unsigned i,
			 uint64_t t)
{
	struct bd_ctx *x = l->x;
	const struct bench_dpdk_opts *o = x->o;
	struct bd_slot *s = &f->q[i];
	size_t max_pay = BD_UDP_HDR + x->req_max, n;
	uint8_t *pay;
	struct rte_mbuf *m;
	uint16_t id;

	bd_next(l, s);
	f->gen[i]++;
	id = (uint16_t)(i | ((unsigned)f->gen[i] << x->qshift));
	s->r.opaque = id;
	s->r.start_ns = t;
	s->tries++;
	/* The slot is busy even if no mbuf was had: the timeout frees it. */
	f->qcount++;
	l->inflight++;
	s->busy = true;
	m = bd_udp_alloc(l, f->sport, max_pay, &pay);
	if (m == NULL)
		return;
	memset(pay, 0, BD_UDP_HDR);
	pay[0] = (uint8_t)(id >> 8);
	pay[1] = (uint8_t)id;
	pay[5] = 1; /* one datagram */
	n = bench_compose(o->proto, &s->r, o->key_size, o->value_size,
			  (char *)pay + BD_UDP_HDR);
	bd_udp_finish(l, m, max_pay, BD_UDP_HDR + n);
}

static void bd_udp_refill(struct bd_lcore *l, struct bd_flow *f, uint64_t t)
{
	for (unsigned i = 0; i < l->window && bd_can_issue(l); i++) {
		if (!f->q[i].busy)
			bd_udp_issue(l, f, i, t);
	}
}

static void bd_udp_free_slot(struct bd_lcore *l, struct bd_flow *f, unsigned i)
{
	f->q[i].busy = false;
	f->qcount--;
	l->inflight--;
}

static void bd_udp_input(struct bd_lcore *l, struct bd_flow *f,
			 const uint8_t *d, size_t len, uint64_t t)
{
	const struct bench_dpdk_opts *o = l->x->o;
	unsigned id, i;
	enum bench_result res;
	struct bd_slot *s;

	if (len < BD_UDP_HDR) {
		l->c.errors++;
		return;
	}
	id = ((unsigned)d[0] << 8) | d[1];
	i = id & (l->x->qcap - 1);
	s = &f->q[i];
	if (i >= l->window || !s->busy || s->r.opaque != id) {
		l->s.late++;
		return;
	}
	bd_udp_free_slot(l, f, i);
	/* seq 0 of 1: a small reply is one datagram */
	if (d[2] != 0 || d[3] != 0 || d[4] != 0 || d[5] != 1 ||
	    bench_parse(o->proto, &s->r, o->key_size, (const char *)d + BD_UDP_HDR,
			len - BD_UDP_HDR, &res) != (ssize_t)(len - BD_UDP_HDR)) {
		bd_counts_for(l, &s->r)->errors++;
	} else {
		bd_account(l, &s->r, res, t);
	}
	if (bd_can_issue(l))
		bd_udp_issue(l, f, i, t);
}

static void bd_udp_expire(struct bd_lcore *l, uint64_t t)
{
	uint64_t rto = ms_cyc(l->x, l->x->o->rto_ms);

	for (unsigned fi = 0; fi < l->nflows; fi++) {
		struct bd_flow *f = &l->flows[fi];

		for (unsigned i = 0; i < l->window && f->qcount > 0; i++) {
			struct bd_slot *s = &f->q[i];

			if (!s->busy || s->r.start_ns + rto > t)
				continue;
			bd_udp_free_slot(l, f, i);
			if (!s->r.measured && l->issuing && s->tries < BD_PRELOAD_TRIES &&
			    l->nretry < l->retry_cap) {
				l->retry[l->nretry] = s->r.key;
				l->retry_tries[l->nretry++] = s->tries;
			} else {
				bd_counts_for(l, &s->r)->timeouts++;
			}
			if (bd_can_issue(l))
				bd_udp_issue(l, f, i, t);
		}
	}
}

/* ---- TCP ------------------------------------------------------------------ */

/* Sends what the window allows from SND.NXT; a pure ACK if owed; FIN when
 * closing and all data is out. */
static void bd_tcp_output(struct bd_lcore *l, struct bd_flow *f, uint64_t t,
			  bool force_one)
{
	uint32_t limit = f->snd_una + f->snd_wnd;

	if (f->state == BD_CLOSED)
		return;
	if (force_one && SEQ_LEQ(limit, f->snd_nxt))
		limit = f->snd_nxt + f->mss; /* window probe after a timeout */
	while (SEQ_LT(f->snd_nxt, f->snd_end) && SEQ_LT(f->snd_nxt, limit)) {
		uint32_t n = f->snd_end - f->snd_nxt;

		if (n > limit - f->snd_nxt)
			n = limit - f->snd_nxt;
		if (n > f->mss)
			n = f->mss;
		bd_tcp_send(l, f, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, f->snd_nxt,
			    f->sbuf + (f->snd_nxt - f->snd_una), n);
		f->snd_nxt += n;
	}
	if (f->state == BD_CLOSING && f->snd_nxt == f->snd_end && !f->fin_acked &&
	    (!f->fin_sent || force_one)) {
		bd_tcp_send(l, f, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, f->snd_end,
			    NULL, 0);
		f->fin_sent = true;
		f->snd_nxt = f->snd_end + 1;
	}
	if (!SEQ_LT(f->snd_nxt, f->snd_max))
		f->snd_max = f->snd_nxt;
	if (f->need_ack)
		bd_tcp_send(l, f, RTE_TCP_ACK_FLAG, f->snd_nxt, NULL, 0);
	if (f->snd_una != f->snd_max && f->rto_at == 0)
		f->rto_at = t + f->rto_cyc;
}

static void bd_tcp_refill(struct bd_lcore *l, struct bd_flow *f, uint64_t t)
{
	struct bd_ctx *x = l->x;
	const struct bench_dpdk_opts *o = x->o;

	/* closing: no new requests, but ACKs and the FIN still go out */
	while (f->state == BD_ESTABLISHED && f->qcount < l->window &&
	       bd_can_issue(l) &&
	       f->scap - (f->snd_end - f->snd_una) >= x->req_max) {
		struct bd_slot *s = &f->q[(f->qhead + f->qcount) & (x->qcap - 1)];

		bd_next(l, s);
		s->r.start_ns = t;
		f->snd_end += (uint32_t)bench_compose(o->proto, &s->r, o->key_size,
						      o->value_size,
						      (char *)f->sbuf +
						      (f->snd_end - f->snd_una));
		f->qcount++;
		l->inflight++;
	}
	bd_tcp_output(l, f, t, false);
}

/* The connection is gone: what was in flight failed. */
static void bd_tcp_kill(struct bd_lcore *l, struct bd_flow *f, bool send_rst)
{
	for (unsigned i = 0; i < f->qcount; i++)
		bd_counts_for(l, &f->q[(f->qhead + i) & (l->x->qcap - 1)].r)->errors++;
	l->inflight -= f->qcount;
	f->qcount = 0;
	if (send_rst && f->state != BD_CLOSED)
		bd_tcp_send(l, f, RTE_TCP_RST_FLAG, f->snd_nxt, NULL, 0);
	f->state = BD_CLOSED;
	f->rto_at = 0;
}

/* Replies in rbuf, in order. */
static void bd_tcp_parse(struct bd_lcore *l, struct bd_flow *f, uint64_t t)
{
	const struct bench_dpdk_opts *o = l->x->o;
	size_t off = 0;

	while (off < f->rlen) {
		struct bench_req *r;
		enum bench_result res;
		ssize_t n;

		if (f->qcount == 0) {
			l->c.errors++;
			l->s.tcp_lost++;
			bd_tcp_kill(l, f, true);
			f->rlen = 0;
			return;
		}
		r = &f->q[f->qhead].r;
		n = bench_parse(o->proto, r, o->key_size, f->rbuf + off,
				f->rlen - off, &res);
		if (n == 0)
			break;
		if (n < 0) {
			l->s.tcp_lost++;
			bd_tcp_kill(l, f, true);
			f->rlen = 0;
			return;
		}
		bd_account(l, r, res, t);
		off += (size_t)n;
		f->qhead = (f->qhead + 1) & (l->x->qcap - 1);
		f->qcount--;
		l->inflight--;
	}
	if (off > 0) {
		memmove(f->rbuf, f->rbuf + off, f->rlen - off);
		f->rlen -= off;
	}
}

static void bd_touch(struct bd_lcore *l, struct bd_flow *f)
{
	if (!f->touched) {
		f->touched = true;
		l->touched[l->ntouched++] = f;
	}
}

static void bd_tcp_input(struct bd_lcore *l, struct bd_flow *f,
			 const uint8_t *seg, size_t len, uint64_t t)
{
	const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)seg;
	size_t hl = (size_t)(th->data_off >> 4) * 4;
	uint8_t fl = th->tcp_flags;
	uint32_t seq, ack;
	const uint8_t *d;
	size_t dl;

	if (hl < sizeof(*th) || hl > len) {
		l->s.rx_other++;
		return;
	}
	if (f->state == BD_CLOSED)
		return;
	seq = rte_be_to_cpu_32(th->sent_seq);
	d = seg + hl;
	dl = len - hl;
	if (fl & RTE_TCP_RST_FLAG) {
		/* RFC 9293 3.10.7.4: acceptable only in the window */
		if (seq == f->rcv_nxt || (SEQ_LT(f->rcv_nxt, seq) &&
		    SEQ_LT(seq, f->rcv_nxt + BD_TCP_WIN))) {
			if (f->state != BD_CLOSING || !f->fin_acked)
				l->s.tcp_rst++;
			bd_tcp_kill(l, f, false);
		}
		return;
	}
	if (fl & RTE_TCP_SYN_FLAG) {
		/* a repeated SYN-ACK: our ACK was lost */
		f->need_ack = true;
		bd_touch(l, f);
		return;
	}
	if (fl & RTE_TCP_ACK_FLAG) {
		ack = rte_be_to_cpu_32(th->recv_ack);
		if (SEQ_LT(f->snd_una, ack) && SEQ_LEQ(ack, f->snd_max)) {
			uint32_t data_end = f->snd_end;
			uint32_t acked = (SEQ_LT(data_end, ack) ? data_end : ack) -
					 f->snd_una;

			memmove(f->sbuf, f->sbuf + acked,
				f->snd_end - f->snd_una - acked);
			f->snd_una = ack;
			if (SEQ_LT(f->snd_nxt, ack))
				f->snd_nxt = ack;
			if (f->fin_sent && ack == f->snd_end + 1)
				f->fin_acked = true;
			f->rto_count = 0;
			f->rto_cyc = ms_cyc(l->x, l->x->o->rto_ms);
			f->rto_at = f->snd_una == f->snd_max ? 0 : t + f->rto_cyc;
		}
		f->snd_wnd = rte_be_to_cpu_16(th->rx_win);
	}
	if (dl > 0 || (fl & RTE_TCP_FIN_FLAG)) {
		f->need_ack = true;
		if (SEQ_LT(seq, f->rcv_nxt)) {
			uint32_t skip = f->rcv_nxt - seq;

			if (skip >= dl) {
				if (!(fl & RTE_TCP_FIN_FLAG) || skip > dl)
					l->s.tcp_dup++;
				if (!(fl & RTE_TCP_FIN_FLAG) || skip != dl)
					goto out;
				dl = 0;
			} else {
				d += skip;
				dl -= skip;
			}
			seq = f->rcv_nxt;
		}
		if (seq != f->rcv_nxt) {
			l->s.tcp_ooo++;
			goto out;
		}
		if (dl > BD_TCP_RBUF - f->rlen) {
			/* beyond the window we announced: drop it */
			l->s.tcp_ooo++;
			goto out;
		}
		memcpy(f->rbuf + f->rlen, d, dl);
		f->rlen += dl;
		f->rcv_nxt += (uint32_t)dl;
		if ((fl & RTE_TCP_FIN_FLAG) && !f->fin_rcvd) {
			f->fin_rcvd = true;
			f->rcv_nxt++;
		}
	}
out:
	bd_touch(l, f);
}

/* Go-back-N on timeout. */
static void bd_tcp_timers(struct bd_lcore *l, uint64_t t)
{
	for (unsigned fi = 0; fi < l->nflows; fi++) {
		struct bd_flow *f = &l->flows[fi];
		uint64_t cap;

		if (f->state == BD_CLOSED || f->rto_at == 0 || t < f->rto_at)
			continue;
		if (++f->rto_count > BD_TCP_MAX_RTO) {
			l->s.tcp_lost++;
			bd_tcp_kill(l, f, true);
			continue;
		}
		l->s.tcp_retrans++;
		f->snd_nxt = f->snd_una;
		cap = ms_cyc(l->x, BD_TCP_RTO_MAX_MS);
		f->rto_cyc = f->rto_cyc * 2 > cap ? cap : f->rto_cyc * 2;
		f->rto_at = 0;
		if (f->fin_sent && f->snd_una == f->snd_end)
			f->snd_nxt = f->snd_end; /* only the FIN is missing */
		bd_tcp_output(l, f, t, true);
		if (f->rto_at == 0)
			f->rto_at = t + f->rto_cyc;
	}
}

/* ---- the polling loop ------------------------------------------------------ */

/* One RX burst and what it causes; returns the frames received. */
static unsigned bd_poll(struct bd_lcore *l, uint64_t t)
{
	struct bd_ctx *x = l->x;
	struct rte_mbuf *pk[BD_BURST];
	uint16_t n = rte_eth_rx_burst(x->port_id, l->queue, pk, BD_BURST);

	l->s.rx_frames += n;
	for (uint16_t i = 0; i < n; i++) {
		const uint8_t *l4;
		size_t l4len;
		int proto;
		uint16_t dport, fi;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pk[i + 1], void *));
		proto = bd_classify(l, pk[i], false, &l4, &l4len);
		if (proto == 0 || (proto == IPPROTO_UDP) != (x->o->udp != 0) ||
		    *(const uint16_t *)l4 != rte_cpu_to_be_16(x->o->server_port)) {
			if (proto != 0)
				l->s.rx_other++;
			continue;
		}
		dport = rte_be_to_cpu_16(*(const uint16_t *)(l4 + 2));
		fi = l->port_map[dport];
		if (fi == BD_NO_FLOW) {
			l->s.misrouted++;
			continue;
		}
		if (proto == IPPROTO_UDP)
			bd_udp_input(l, &l->flows[fi], l4 + sizeof(struct rte_udp_hdr),
				     l4len - sizeof(struct rte_udp_hdr), t);
		else
			bd_tcp_input(l, &l->flows[fi], l4, l4len, t);
	}
	if (n > 0)
		rte_pktmbuf_free_bulk(pk, n);
	for (unsigned i = 0; i < l->ntouched; i++) {
		struct bd_flow *f = l->touched[i];

		f->touched = false;
		bd_tcp_parse(l, f, t);
		bd_tcp_refill(l, f, t);
	}
	l->ntouched = 0;
	return n;
}

static void bd_timers(struct bd_lcore *l, uint64_t t)
{
	if (l->x->o->udp)
		bd_udp_expire(l, t);
	else
		bd_tcp_timers(l, t);
}

/* Runs one phase until its budget is issued or the deadline (TSC) passes,
 * then drains for at most BD_DRAIN_MS. */
static void bd_run_phase(struct bd_lcore *l, uint64_t deadline)
{
	struct bd_ctx *x = l->x;
	uint64_t t = rte_rdtsc(), drain_until = 0, next_timer = t;
	uint64_t tick = ms_cyc(x, 1);
	unsigned n;

	l->issuing = true;
	for (unsigned i = 0; i < l->nflows; i++) {
		if (x->o->udp)
			bd_udp_refill(l, &l->flows[i], t);
		else
			bd_tcp_refill(l, &l->flows[i], t);
	}
	for (;;) {
		t = rte_rdtsc();
		/* A UDP preload stops issuing only when no set can time out
		 * and be queued again. */
		if (l->issuing && ((l->budget == 0 && l->nretry == 0 &&
				    (!l->preloading || l->inflight == 0)) ||
				   t >= deadline)) {
			l->issuing = false;
			drain_until = t + ms_cyc(x, BD_DRAIN_MS);
		}
		if (!l->issuing && (l->inflight == 0 || t >= drain_until))
			break;
		n = bd_poll(l, t);
		if (t >= next_timer) {
			bd_timers(l, t);
			next_timer = t + tick;
		}
		bd_tx_flush(l);
		if (n > 0 && !l->preloading)
			l->s.busy_cyc += rte_rdtsc() - t;
	}
	/* Whatever is still in flight never came back. */
	for (unsigned fi = 0; fi < l->nflows; fi++) {
		struct bd_flow *f = &l->flows[fi];

		if (x->o->udp) {
			for (unsigned i = 0; i < l->window; i++) {
				if (f->q[i].busy) {
					bd_counts_for(l, &f->q[i].r)->timeouts++;
					bd_udp_free_slot(l, f, i);
				}
			}
		} else if (f->qcount > 0) {
			/* the stream is out of step: give the connection up */
			for (unsigned i = 0; i < f->qcount; i++)
				bd_counts_for(l, &f->q[(f->qhead + i) &
						       (x->qcap - 1)].r)->timeouts++;
			l->inflight -= f->qcount;
			f->qcount = 0;
			l->s.tcp_lost++;
			bd_tcp_kill(l, f, true);
		}
	}
	l->nretry = 0;
	bd_tx_flush(l);
}

/* All lcores meet here; they keep answering (ARP, ACKs) while they wait. */
static void bd_barrier(struct bd_lcore *l, int32_t target)
{
	rte_atomic32_inc(&l->x->barrier);
	while (rte_atomic32_read(&l->x->barrier) < target) {
		bd_poll(l, rte_rdtsc());
		bd_tx_flush(l);
	}
}

/* FIN every connection; wait for the server's FIN, a bounded time. */
static void bd_tcp_close_all(struct bd_lcore *l)
{
	struct bd_ctx *x = l->x;
	uint64_t t = rte_rdtsc(), until = t + ms_cyc(x, BD_CLOSE_MS);
	uint64_t next_timer = t, tick = ms_cyc(x, 1);

	for (unsigned i = 0; i < l->nflows; i++) {
		struct bd_flow *f = &l->flows[i];

		if (f->state == BD_ESTABLISHED) {
			f->state = BD_CLOSING;
			bd_tcp_output(l, f, t, false);
		}
	}
	bd_tx_flush(l);
	for (;;) {
		unsigned open = 0;

		for (unsigned i = 0; i < l->nflows; i++) {
			struct bd_flow *f = &l->flows[i];

			if (f->state == BD_CLOSING && f->fin_acked && f->fin_rcvd &&
			    !f->need_ack)
				f->state = BD_CLOSED; /* TIME-WAIT is ours alone */
			open += f->state != BD_CLOSED;
		}
		t = rte_rdtsc();
		if (open == 0 || t >= until)
			break;
		bd_poll(l, t);
		if (t >= next_timer) {
			bd_tcp_timers(l, t);
			next_timer = t + tick;
		}
		bd_tx_flush(l);
	}
	for (unsigned i = 0; i < l->nflows; i++) {
		if (l->flows[i].state != BD_CLOSED) {
			l->s.tcp_unclosed++;
			bd_tcp_send(l, &l->flows[i], RTE_TCP_RST_FLAG |
				    RTE_TCP_ACK_FLAG, l->flows[i].snd_nxt, NULL, 0);
			l->flows[i].state = BD_CLOSED;
		}
	}
	bd_tx_flush(l);
}

static int bd_lcore_main(void *arg)
{
	struct bd_ctx *x = arg;
	struct bd_lcore *l = &x->lc[rte_lcore_index((int)rte_lcore_id())];
	const struct bench_dpdk_opts *o = x->o;
	uint64_t t0;

	l->preloading = true;
	l->window = o->udp ? o->pipeline :
		    (o->pipeline > BD_PRELOAD_WINDOW ? o->pipeline : BD_PRELOAD_WINDOW);
	l->preload_next = o->keys * l->idx / x->nq;
	l->preload_end = o->keys * (l->idx + 1) / x->nq;
	l->budget = o->preload ? l->preload_end - l->preload_next : 0;
	t0 = rte_rdtsc();
	if (l->budget > 0)
		bd_run_phase(l, t0 + ms_cyc(x, BD_MAX_COUNTED_S * 1000ULL));
	l->preload_secs = (double)(rte_rdtsc() - t0) / (double)x->hz;
	bd_barrier(l, (int32_t)x->nq);

	l->preloading = false;
	l->window = o->pipeline;
	l->budget = o->requests_set ? o->requests / x->nq +
				      (l->idx < o->requests % x->nq ? 1 : 0)
				    : UINT64_MAX;
	t0 = rte_rdtsc();
	if (l->budget > 0)
		bd_run_phase(l, t0 + (uint64_t)(o->duration * (double)x->hz));
	l->load_secs = (double)(rte_rdtsc() - t0) / (double)x->hz;
	if (!o->udp)
		bd_tcp_close_all(l);
	/* Keep answering until every lcore is done: a peer's FIN exchange
	 * may still need our ARP replies. */
	bd_barrier(l, 2 * (int32_t)x->nq);
	return 0;
}

/* ---- set-up: port, ARP, flow discovery --------------------------------------- */

static int bd_port_setup(struct bd_ctx *x)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	uint16_t rxd = BD_RING_DESC, txd = BD_RING_DESC;
	unsigned nmbufs;
	uint64_t until;
	int rc;

	if (rte_eth_dev_count_avail() == 0) {
		fprintf(stderr, "dpcache-bench: dpdk: no port (give a --vdev)\n");
		return -ENODEV;
	}
	x->port_id = 0;
	RTE_ETH_FOREACH_DEV(x->port_id)
		break;
	rc = rte_eth_dev_info_get(x->port_id, &info);
	if (rc < 0)
		return rc;
	if (x->nq > info.max_rx_queues || x->nq > info.max_tx_queues) {
		fprintf(stderr, "dpcache-bench: dpdk: port %u has %u/%u queues, "
			"%u lcores want one each\n", x->port_id,
			info.max_rx_queues, info.max_tx_queues, x->nq);
		return -EINVAL;
	}
	nmbufs = x->nq * (2 * BD_RING_DESC + BD_TX_MAX + 2 * BD_BURST + 512) + 4096;
	x->pool = rte_pktmbuf_pool_create("bench_mbufs", nmbufs, 256, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE,
					  (int)rte_socket_id());
	if (x->pool == NULL) {
		fprintf(stderr, "dpcache-bench: dpdk: mbuf pool: %s\n",
			rte_strerror(rte_errno));
		return -ENOMEM;
	}
	memset(&conf, 0, sizeof(conf));
	rc = rte_eth_dev_configure(x->port_id, (uint16_t)x->nq, (uint16_t)x->nq,
				   &conf);
	if (rc == 0)
		rc = rte_eth_dev_adjust_nb_rx_tx_desc(x->port_id, &rxd, &txd);
	for (unsigned q = 0; rc == 0 && q < x->nq; q++) {
		rc = rte_eth_rx_queue_setup(x->port_id, (uint16_t)q, rxd,
					    rte_eth_dev_socket_id(x->port_id),
					    NULL, x->pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(x->port_id, (uint16_t)q, txd,
						    rte_eth_dev_socket_id(x->port_id),
						    NULL);
	}
	if (rc < 0) {
		fprintf(stderr, "dpcache-bench: dpdk: port %u configuration: %s\n",
			x->port_id, strerror(-rc));
		return rc;
	}
	/* A memif client fails to start while the server's socket is not
	 * there yet: retry until the wait is over. */
	until = rte_rdtsc() + (uint64_t)(x->o->wait_secs * (double)x->hz);
	while ((rc = rte_eth_dev_start(x->port_id)) < 0 && rte_rdtsc() < until)
		rte_delay_ms(100);
	if (rc < 0) {
		fprintf(stderr, "dpcache-bench: dpdk: port %u start: %s "
			"(memif: is the server up?)\n",
			x->port_id, strerror(-rc));
		return rc;
	}
	rte_eth_macaddr_get(x->port_id, &x->mac);
	for (;;) {
		struct rte_eth_link link;

		memset(&link, 0, sizeof(link));
		rte_eth_link_get_nowait(x->port_id, &link);
		if (link.link_status == RTE_ETH_LINK_UP)
			break;
		if (rte_rdtsc() >= until) {
			fprintf(stderr, "dpcache-bench: dpdk: port %u link down "
				"(is the server up?)\n", x->port_id);
			return -ENOTCONN;
		}
		rte_delay_ms(10);
	}
	return 0;
}

/* Polls every queue once from the main lcore (before the lcores run);
 * calls fn for each UDP/TCP frame from the server. */
typedef void (*bd_frame_fn)(struct bd_ctx *x, unsigned q, int proto,
			    const uint8_t *l4, size_t l4len);

static void bd_poll_all(struct bd_ctx *x, bd_frame_fn fn)
{
	for (unsigned q = 0; q < x->nq; q++) {
		struct bd_lcore *l = &x->lc[q];
		struct rte_mbuf *pk[BD_BURST];
		uint16_t n = rte_eth_rx_burst(x->port_id, (uint16_t)q, pk, BD_BURST);

		for (uint16_t i = 0; i < n; i++) {
			const uint8_t *l4;
			size_t l4len;
			int proto = bd_classify(l, pk[i], true, &l4, &l4len);

			if (proto != 0 && fn != NULL)
				fn(x, q, proto, l4, l4len);
		}
		if (n > 0)
			rte_pktmbuf_free_bulk(pk, n);
		bd_tx_flush(l);
	}
}

static int bd_arp_server(struct bd_ctx *x)
{
	uint64_t t = rte_rdtsc(), next = t;
	uint64_t until = t + (uint64_t)(x->o->wait_secs * (double)x->hz);

	while (!x->have_server_mac) {
		t = rte_rdtsc();
		if (t >= until) {
			fprintf(stderr, "dpcache-bench: dpdk: no ARP reply from "
				"the server\n");
			return -EHOSTUNREACH;
		}
		if (t >= next) {
			bd_arp_send(&x->lc[0], RTE_ARP_OP_REQUEST, NULL,
				    x->o->server_ip);
			bd_tx_flush(&x->lc[0]);
			next = t + ms_cyc(x, 200);
		}
		bd_poll_all(x, NULL);
	}
	return 0;
}

/* Discovery state, main lcore only. */
struct bd_probe {
	uint16_t sport;
	uint32_t iss;            /* TCP */
	bool answered;
};

static struct bd_probe *bd_probes;
static unsigned bd_nprobes;

static struct bd_probe *bd_probe_find(uint16_t sport)
{
	for (unsigned i = 0; i < bd_nprobes; i++) {
		if (bd_probes[i].sport == sport)
			return &bd_probes[i];
	}
	return NULL;
}

static struct bd_flow *bd_flow_add(struct bd_lcore *l, uint16_t sport)
{
	struct bd_flow *f = &l->flows[l->nflows];

	l->port_map[sport] = (uint16_t)l->nflows;
	l->nflows++;
	f->sport = sport;
	return f;
}

static unsigned bd_assigned(const struct bd_ctx *x)
{
	unsigned n = 0;

	for (unsigned q = 0; q < x->nq; q++)
		n += x->lc[q].nflows;
	return n;
}

static void bd_probe_answer(struct bd_ctx *x, unsigned q, int proto,
			    const uint8_t *l4, size_t l4len)
{
	struct bd_lcore *l = &x->lc[q];
	uint16_t sport = rte_be_to_cpu_16(*(const uint16_t *)(l4 + 2));
	struct bd_probe *p = bd_probe_find(sport);

	if (p == NULL || p->answered ||
	    *(const uint16_t *)l4 != rte_cpu_to_be_16(x->o->server_port))
		return;
	if (proto == IPPROTO_UDP && x->o->udp) {
		p->answered = true;
		if (l->nflows < l->quota)
			bd_flow_add(l, sport);
		return;
	}
	if (proto == IPPROTO_TCP && !x->o->udp) {
		const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)l4;
		size_t hl = (size_t)(th->data_off >> 4) * 4;
		uint8_t want = RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG;
		struct bd_flow tmp, *f;

		if (hl < sizeof(*th) || hl > l4len)
			return;
		p->answered = true;
		if ((th->tcp_flags & (want | RTE_TCP_RST_FLAG)) != want ||
		    rte_be_to_cpu_32(th->recv_ack) != p->iss + 1 ||
		    l->nflows >= l->quota) {
			/* refused, a stale connection, or not needed: reset
			 * anything but a RST */
			if (th->tcp_flags & RTE_TCP_RST_FLAG)
				return;
			memset(&tmp, 0, sizeof(tmp));
			tmp.sport = sport;
			tmp.state = BD_ESTABLISHED;
			bd_tcp_send(l, &tmp, RTE_TCP_RST_FLAG,
				    (th->tcp_flags & RTE_TCP_ACK_FLAG) ?
				    rte_be_to_cpu_32(th->recv_ack) : p->iss + 1,
				    NULL, 0);
			return;
		}
		f = bd_flow_add(l, sport);
		f->state = BD_ESTABLISHED;
		f->snd_una = f->snd_nxt = f->snd_max = f->snd_end = p->iss + 1;
		f->rcv_nxt = rte_be_to_cpu_32(th->sent_seq) + 1;
		f->snd_wnd = rte_be_to_cpu_16(th->rx_win);
		f->mss = 536; /* RFC 9293 3.7.1 default */
		for (size_t i = sizeof(*th); i + 1 < hl;) {
			const uint8_t *op = l4 + i;

			if (op[0] == 0)
				break;
			if (op[0] == 1) {
				i++;
				continue;
			}
			if (op[1] < 2 || i + op[1] > hl)
				break;
			if (op[0] == 2 && op[1] == 4)
				f->mss = (uint16_t)((op[2] << 8) | op[3]);
			i += op[1];
		}
		if (f->mss < 64)
			f->mss = 64;
		if (f->mss > BD_TCP_MSS)
			f->mss = BD_TCP_MSS;
		f->rto_cyc = ms_cyc(x, x->o->rto_ms);
		/* third step of the handshake, from the owner's queue */
		bd_tcp_send(l, f, RTE_TCP_ACK_FLAG, f->snd_nxt, NULL, 0);
	}
}

/*
 * Finds, for every lcore, --conns/nq source ports that the server answers
 * on that lcore's queue (see the design note). Probes go out in rounds of
 * BD_BURST from queue 0; a port is tried once.
 */
static int bd_discover(struct bd_ctx *x)
{
	const struct bench_dpdk_opts *o = x->o;
	struct bd_lcore *l0 = &x->lc[0];
	unsigned max_probes = 65536 - BD_PORT_FIRST;
	uint64_t until = rte_rdtsc() + (uint64_t)(o->wait_secs * (double)x->hz);
	uint32_t next_port;
	struct bench_rng rng;

	bd_probes = calloc(max_probes, sizeof(*bd_probes));
	if (bd_probes == NULL)
		return -ENOMEM;
	/* Start at a port of the seed and the time, so a rerun soon after a
	 * killed one does not land on the server's stale connections. */
	bench_rng_init(&rng, o->seed ^ rte_rdtsc());
	next_port = BD_PORT_FIRST + (uint32_t)bench_rng_below(&rng, max_probes);
	while (bd_assigned(x) < o->conns && bd_nprobes < max_probes) {
		uint64_t round_end;

		if (rte_rdtsc() >= until)
			break;
		for (unsigned i = 0; i < BD_BURST && bd_nprobes < max_probes; i++) {
			struct bd_probe *p = &bd_probes[bd_nprobes++];
			struct bd_flow tmp;

			p->sport = (uint16_t)next_port;
			next_port = next_port + 1 >= 65536 ? BD_PORT_FIRST : next_port + 1;
			if (o->udp) {
				/* a get of key 0: any answer will do */
				struct bench_req r = { .op = BENCH_OP_GET };
				size_t max_pay = BD_UDP_HDR + x->req_max, n;
				uint8_t *pay;
				struct rte_mbuf *m = bd_udp_alloc(l0, p->sport,
								  max_pay, &pay);

				if (m == NULL)
					continue;
				memset(pay, 0, BD_UDP_HDR);
				pay[5] = 1;
				n = bench_compose(o->proto, &r, o->key_size,
						  o->value_size,
						  (char *)pay + BD_UDP_HDR);
				bd_udp_finish(l0, m, max_pay, BD_UDP_HDR + n);
			} else {
				memset(&tmp, 0, sizeof(tmp));
				tmp.sport = p->sport;
				tmp.state = BD_ESTABLISHED;
				p->iss = (uint32_t)bench_rng_next(&rng);
				bd_tcp_send(l0, &tmp, RTE_TCP_SYN_FLAG, p->iss, NULL, 0);
			}
		}
		bd_tx_flush(l0);
		/* wait for this round's answers, a little */
		round_end = rte_rdtsc() + ms_cyc(x, 20);
		while (rte_rdtsc() < round_end && bd_assigned(x) < o->conns)
			bd_poll_all(x, bd_probe_answer);
	}
	/* late SYN-ACKs of the last round get their RST here */
	for (uint64_t end = rte_rdtsc() + ms_cyc(x, 20); rte_rdtsc() < end;)
		bd_poll_all(x, bd_probe_answer);
	free(bd_probes);
	bd_probes = NULL;
	for (unsigned q = 0; q < x->nq; q++) {
		if (x->lc[q].nflows < x->lc[q].quota) {
			fprintf(stderr, "dpcache-bench: dpdk: only %u of %u flows "
				"answered on queue %u after %u probes (does the "
				"server poll %u queues?)\n", x->lc[q].nflows,
				x->lc[q].quota, q, bd_nprobes, x->nq);
			bd_nprobes = 0;
			return -ETIMEDOUT;
		}
	}
	bd_nprobes = 0;
	return 0;
}

static int bd_lcores_alloc(struct bd_ctx *x)
{
	const struct bench_dpdk_opts *o = x->o;
	unsigned window = o->pipeline > BD_PRELOAD_WINDOW ? o->pipeline
							  : BD_PRELOAD_WINDOW;

	x->qcap = 1;
	x->qshift = 0;
	while (x->qcap < window) {
		x->qcap <<= 1;
		x->qshift++;
	}
	x->lc = rte_zmalloc("bench_lcores", x->nq * sizeof(*x->lc),
			    RTE_CACHE_LINE_SIZE);
	if (x->lc == NULL)
		return -ENOMEM;
	for (unsigned q = 0; q < x->nq; q++) {
		struct bd_lcore *l = &x->lc[q];

		l->x = x;
		l->idx = q;
		l->queue = (uint16_t)q;
		l->quota = o->conns / x->nq + (q < o->conns % x->nq ? 1 : 0);
		bench_rng_init(&l->rng, o->seed * 1000003ULL + q);
		l->flows = calloc(l->quota ? l->quota : 1, sizeof(*l->flows));
		l->port_map = malloc(65536 * sizeof(*l->port_map));
		l->touched = calloc(l->quota ? l->quota : 1, sizeof(*l->touched));
		l->retry_cap = (l->quota ? l->quota : 1) * x->qcap;
		l->retry = calloc(l->retry_cap, sizeof(*l->retry));
		l->retry_tries = calloc(l->retry_cap, 1);
		if (!l->flows || !l->port_map || !l->touched || !l->retry ||
		    !l->retry_tries)
			return -ENOMEM;
		memset(l->port_map, 0xff, 65536 * sizeof(*l->port_map));
		for (unsigned i = 0; i < l->quota; i++) {
			struct bd_flow *f = &l->flows[i];

			f->q = calloc(x->qcap, sizeof(*f->q));
			f->gen = calloc(x->qcap, sizeof(*f->gen));
			if (f->q == NULL || f->gen == NULL)
				return -ENOMEM;
			if (!o->udp) {
				f->scap = (size_t)x->qcap * x->req_max;
				f->sbuf = malloc(f->scap);
				f->rbuf = malloc(BD_TCP_RBUF);
				if (f->sbuf == NULL || f->rbuf == NULL)
					return -ENOMEM;
			}
		}
	}
	return 0;
}

static void bd_lcores_free(struct bd_ctx *x)
{
	for (unsigned q = 0; x->lc != NULL && q < x->nq; q++) {
		struct bd_lcore *l = &x->lc[q];

		for (unsigned i = 0; l->flows != NULL && i < l->quota; i++) {
			free(l->flows[i].q);
			free(l->flows[i].gen);
			free(l->flows[i].sbuf);
			free(l->flows[i].rbuf);
		}
		free(l->flows);
		free(l->port_map);
		free(l->touched);
		free(l->retry);
		free(l->retry_tries);
	}
	rte_free(x->lc);
	x->lc = NULL;
}

/* ---- report ------------------------------------------------------------------ */

static void bd_report(const struct bd_ctx *x)
{
	const struct bench_dpdk_opts *o = x->o;
	struct bench_counts c = { 0 }, pre = { 0 };
	struct bench_summary sum;
	struct bd_stats s = { 0 };
	static struct bench_hist h;
	double secs = 0, pre_secs = 0, ops_s, busy = 0;
	struct in_addr sa = { .s_addr = htonl(o->server_ip) };

	for (unsigned q = 0; q < x->nq; q++) {
		const struct bd_lcore *l = &x->lc[q];

		bench_counts_add(&c, &l->c);
		bench_counts_add(&pre, &l->pre);
		bench_hist_merge(&h, &l->hist);
		if (l->load_secs > secs)
			secs = l->load_secs;
		if (l->load_secs > 0)
			busy += (double)l->s.busy_cyc / (double)x->hz /
				l->load_secs / x->nq;
		if (l->preload_secs > pre_secs)
			pre_secs = l->preload_secs;
#define ADD(f) s.f += l->s.f
		ADD(rx_frames); ADD(tx_frames);
		ADD(tx_dropped); ADD(rx_other); ADD(misrouted); ADD(late);
		ADD(tcp_retrans); ADD(tcp_ooo); ADD(tcp_dup); ADD(tcp_rst);
		ADD(tcp_lost); ADD(tcp_unclosed);
#undef ADD
	}
	ops_s = secs > 0 ? (double)c.ops / secs : 0;
	if (!o->quiet) {
		char ip[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &sa, ip, sizeof(ip));
		printf("dpcache-bench dpdk %s:%u proto=%s %s conns=%u lcores=%u "
		       "pipeline=%u ratio=%u:%u\n", ip, o->server_port,
		       bench_proto_name(o->proto), o->udp ? "udp" : "tcp",
		       o->conns, x->nq, o->pipeline, o->ratio_get, o->ratio_set);
		printf("  keys=%" PRIu64 " key_size=%zu value_size=%zu zipf=%.2f "
		       "seed=%" PRIu64 "\n", o->keys, o->key_size, o->value_size,
		       o->zipf, o->seed);
		if (o->preload)
			bench_report_preload(&pre, pre_secs);
		printf("load:    %" PRIu64 " ops in %.2f s = %.0f ops/s "
		       "(client busy %.0f%%)\n", c.ops, secs, ops_s, 100.0 * busy);
		bench_report_results(&c, &h, false);
		printf("  frames rx %" PRIu64 " tx %" PRIu64 " tx_dropped %" PRIu64
		       " rx_other %" PRIu64 " misrouted %" PRIu64 " late %" PRIu64
		       "\n", s.rx_frames, s.tx_frames, s.tx_dropped, s.rx_other,
		       s.misrouted, s.late);
		if (!o->udp)
			printf("  tcp retrans %" PRIu64 " ooo %" PRIu64 " dup %"
			       PRIu64 " rst %" PRIu64 " lost %" PRIu64
			       " unclosed %" PRIu64 "\n", s.tcp_retrans,
			       s.tcp_ooo, s.tcp_dup, s.tcp_rst, s.tcp_lost,
			       s.tcp_unclosed);
	}
	/* client_cpu: polling always burns its CPU; the share of time spent
	 * in iterations that received frames (handling them, sending the
	 * next requests) says how close the bench was to being the limit. */
	sum = (struct bench_summary){
		.proto = bench_proto_name(o->proto), .udp = o->udp,
		.conns = o->conns, .threads = x->nq, .pipeline = o->pipeline,
		.secs = secs, .ops_per_sec = ops_s, .client_cpu = busy,
	};
	bench_report_summary(&sum, &c, &pre, &h);
	printf(" dpdk=1 misrouted=%" PRIu64 " tcp_retrans=%" PRIu64 "\n",
	       s.misrouted, s.tcp_retrans);
	fflush(stdout);
}

/* ---- entry ------------------------------------------------------------------- */

int bench_dpdk_run(const struct bench_dpdk_opts *o, int eal_argc,
		   char **eal_argv)
{
	static struct bd_ctx ctx;
	struct bd_ctx *x = &ctx;
	struct bench_zipf zipf;
	int rc, status = 1;
	bool lost = false;

	x->o = o;
	if (rte_eal_init(eal_argc, eal_argv) < 0) {
		fprintf(stderr, "dpcache-bench: dpdk: EAL init failed: %s\n",
			rte_strerror(rte_errno));
		return 2;
	}
	x->hz = rte_get_tsc_hz();
	x->ns_per_cyc = 1e9 / (double)x->hz;
	x->nq = rte_lcore_count();
	x->req_max = bench_req_max_len(o->key_size, o->value_size);
	rte_atomic32_init(&x->barrier);
	if (o->zipf > 0) {
		if (bench_zipf_init(&zipf, o->keys, o->zipf) < 0)
			goto out_eal;
		x->zipf = &zipf;
	}
	if (!o->udp && bench_req_max_len(o->key_size, o->value_size) > BD_TCP_RBUF / 4) {
		/* replies must fit the receive buffer whose free space we
		 * announce as the window, with room for a pipeline */
		fprintf(stderr, "dpcache-bench: dpdk: --value-size too large for "
			"TCP in DPDK mode (at most about %u bytes)\n",
			BD_TCP_RBUF / 4);
		status = 2;
		goto out_eal;
	}
	if (o->conns < x->nq) {
		fprintf(stderr, "dpcache-bench: dpdk: --conns %u is fewer than "
			"the %u lcores\n", o->conns, x->nq);
		status = 2;
		goto out_eal;
	}
	if (bd_lcores_alloc(x) < 0) {
		fprintf(stderr, "dpcache-bench: dpdk: out of memory\n");
		goto out_free;
	}
	rc = bd_port_setup(x);
	if (rc < 0) {
		status = rc == -ENOTCONN ? 1 : 2;
		goto out_free;
	}
	if (bd_arp_server(x) < 0 || bd_discover(x) < 0)
		goto out_port;
	if (!o->quiet) {
		char mac[RTE_ETHER_ADDR_FMT_SIZE];

		rte_ether_format_addr(mac, sizeof(mac), &x->server_mac);
		fprintf(stderr, "dpcache-bench: dpdk: port %u, %u lcores, server "
			"MAC %s, %u %s flows\n", x->port_id, x->nq, mac,
			o->conns, o->udp ? "UDP" : "TCP");
	}
	rte_eal_mp_remote_launch(bd_lcore_main, x, CALL_MAIN);
	rte_eal_mp_wait_lcore();
	bd_report(x);
	status = 0;
	for (unsigned q = 0; q < x->nq; q++)
		lost |= x->lc[q].s.tcp_lost > 0 || x->lc[q].s.tcp_rst > 0;
	if (lost) {
		fprintf(stderr, "dpcache-bench: dpdk: connections were lost\n");
		status = 1;
	}
out_port:
	rte_eth_dev_stop(x->port_id);
	rte_eth_dev_close(x->port_id);
out_free:
	bd_lcores_free(x);
	rte_mempool_free(x->pool);
out_eal:
	rte_eal_cleanup();
	return status;
}
