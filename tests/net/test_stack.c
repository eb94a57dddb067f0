/*
 * tests/net/test_stack.c - the per-core stack above the port (stack.h):
 * checksums, ARP, IPv4 validation, ICMP echo, UDP, the TCP glue, offload,
 * flow steering and garbage input.
 *
 * The port is in memory (frames captured in an array, allocations and frees
 * counted, so a leak shows), the clock is virtual, and TCP is the real one
 * (tcp.c): a SYN must come back as a SYN-ACK frame built by the stack's
 * struct tcp_io (seg_alloc/seg_send).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <errno.h>
#include <cmocka.h>

#include "dataplane/net/stack.h"
#include "tests/net/cksum_ref.h"

/* ---- addresses ---------------------------------------------------------- */

#define OUR_IP   0xc6120001u    /* 198.18.0.1/24 */
#define PEER_IP  0xc6120002u    /* 198.18.0.2, on link */
#define GW_IP    0xc61200feu    /* 198.18.0.254 */
#define FAR_IP   0xc6130505u    /* 198.19.5.5, off link */
#define SVC_PORT 11211

static const uint8_t our_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t peer_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
static const uint8_t gw_mac[6] = { 0x02, 0, 0, 0, 0, 0xfe };
static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* ---- byte helpers ------------------------------------------------------- */

static uint16_t g16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t g32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}
static void p16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static void p32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = (v >> 16) & 0xff; p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}


static uint32_t ref_pseudo(uint32_t src, uint32_t dst, uint8_t proto,
			   uint32_t len)
{
	return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) +
	       proto + len;
}

/* ---- the in-memory port ------------------------------------------------- */

#define SLOTS     512
#define SLOT_SIZE 2048

struct sent {
	uint8_t *data;
	size_t len;
	unsigned flags, l2, l3;
};

struct mport {
	uint8_t buf[SLOTS][SLOT_SIZE];
	bool busy[SLOTS];
	unsigned next;
	struct sent sent[SLOTS];
	unsigned nsent;
	uint64_t allocs, sends, frees;
	bool fail_alloc;
	bool keep;              /* garbage test: recycle slots at once */
};

static uint8_t *mp_alloc(void *port, size_t len, void **pkt)
{
	struct mport *m = port;

	assert_true(len <= SLOT_SIZE);
	if (m->fail_alloc)
		return NULL;
	for (unsigned i = 0; i < SLOTS; i++) {
		unsigned s = (m->next + i) % SLOTS;

		if (!m->busy[s]) {
			m->busy[s] = true;
			m->next = s + 1;
			m->allocs++;
			/* garbage, so a header the stack forgets shows */
			memset(m->buf[s], 0xa5, SLOT_SIZE);
			*pkt = (void *)(uintptr_t)(s + 1);
			return m->buf[s];
		}
	}
	fail_msg("port out of slots");
	return NULL;
}

static void mp_send(void *port, void *pkt, size_t len, unsigned flags,
		    unsigned l2, unsigned l3)
{
	struct mport *m = port;
	unsigned s = (unsigned)(uintptr_t)pkt - 1;

	assert_true(s < SLOTS && m->busy[s]);
	m->sends++;
	if (m->keep && m->nsent < SLOTS) {
		m->sent[m->nsent++] = (struct sent){ m->buf[s], len, flags, l2, l3 };
		return;             /* kept for inspection; slot stays busy */
	}
	m->busy[s] = false;
}

static void mp_free(void *port, void *pkt)
{
	struct mport *m = port;
	unsigned s = (unsigned)(uintptr_t)pkt - 1;

	assert_true(s < SLOTS && m->busy[s]);
	m->busy[s] = false;
	m->frees++;
}

/* ---- the application ---------------------------------------------------- */

struct app_rec {
	unsigned datagrams;
	struct net_udp_peer peer;
	uint8_t data[2048];
	size_t len;
	bool echo;              /* reply with the same bytes */
	int echo_rc;
	unsigned accepts;
};

static void *app_accepted(void *arg, struct tcp_conn *c)
{
	struct app_rec *a = arg;

	a->accepts++;
	return c;
}

static void app_readable(void *arg, void *ctx)
{
	struct tcp_conn *c = ctx;
	const uint8_t *d;
	size_t n = tcp_recv_peek(c, &d);

	tcp_recv_consume(c, tcp_send(c, d, n));     /* echo */
	if (tcp_conn_peer_closed(c))
		tcp_close(c);
}

static void app_writable(void *arg, void *ctx) {}
static void app_closed(void *arg, void *ctx) {}

static void app_udp(void *arg, struct net_stack *st,
		    const struct net_udp_peer *peer, const uint8_t *data,
		    size_t len)
{
	struct app_rec *a = arg;

	a->datagrams++;
	a->peer = *peer;
	a->len = len;
	memcpy(a->data, data, len);
	if (a->echo)
		a->echo_rc = net_udp_send(st, peer, data, len);
}

/* ---- fixture ------------------------------------------------------------ */

struct fx {
	struct mport port;
	struct net_port ops;
	struct app_rec app;
	struct net_stack *st;
	uint64_t now;
};

static struct net_stack *fx_stack(struct fx *f, bool offload, unsigned arp_entries)
{
	struct net_stack_config cfg = {
		.ip = OUR_IP, .prefix_len = 24, .gateway = GW_IP,
		.tcp_port = SVC_PORT, .udp_port = SVC_PORT,
		.arp_entries = arp_entries, .arp_timeout_us = 10000000,
	};
	struct net_app app = {
		.tcp = { .accepted = app_accepted, .readable = app_readable,
			 .writable = app_writable, .closed = app_closed },
		.udp_datagram = app_udp,
	};

	memcpy(cfg.mac, our_mac, 6);
	f->ops = (struct net_port){
		.frame_alloc = mp_alloc, .frame_send = mp_send,
		.frame_free = mp_free,
		.tx_ip_cksum_offload = offload, .tx_l4_cksum_offload = offload,
	};
	net_stack_destroy(&f->st);
	f->st = net_stack_create(&cfg, &f->ops, &f->port, &app, &f->app, f->now);
	return f->st;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->port.keep = true;
	f->now = 1000000;
	if (!fx_stack(f, false, 0))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	net_stack_destroy(&f->st);
	assert_null(f->st);
	/* every frame the stack took from the port went out or came back */
	assert_int_equal(f->port.allocs, f->port.sends + f->port.frees);
	free(f);
	return 0;
}

static uint64_t segs_in(struct fx *f)
{
	return tcp_stack_counters(net_stack_tcp(f->st))->segs_in;
}

static uint64_t segs_out(struct fx *f)
{
	return tcp_stack_counters(net_stack_tcp(f->st))->segs_out;
}

static void tick(struct fx *f, uint64_t dt)
{
	f->now += dt;
	net_stack_tick(f->st, f->now);
}

/* ---- frame builders ----------------------------------------------------- */

static size_t eth(uint8_t *b, const uint8_t *dst, const uint8_t *src,
		  uint16_t type)
{
	memcpy(b, dst, 6);
	memcpy(b + 6, src, 6);
	p16(b + 12, type);
	return 14;
}

static void ip_cksum_fix(uint8_t *ip)
{
	size_t hl = (size_t)(ip[0] & 0xf) * 4;

	p16(ip + 10, 0);
	p16(ip + 10, (uint16_t)~ref_sum(ip, hl, 0));
}

/* Ethernet + IPv4 (no options) around an L4 payload already at b + 34. */
static size_t ipv4(uint8_t *b, const uint8_t *smac, uint32_t src, uint32_t dst,
		   uint8_t proto, size_t l4len)
{
	uint8_t *ip = b + 14;

	eth(b, our_mac, smac, 0x0800);
	ip[0] = 0x45;
	ip[1] = 0;
	p16(ip + 2, (uint16_t)(20 + l4len));
	p16(ip + 4, 0x1234);
	p16(ip + 6, 0x4000);
	ip[8] = 61;
	ip[9] = proto;
	p32(ip + 12, src);
	p32(ip + 16, dst);
	ip_cksum_fix(ip);
	return 34 + l4len;
}

static void l4_cksum_fix(uint8_t *b, unsigned off)
{
	uint8_t *ip = b + 14, *l4 = ip + 20;
	size_t len = g16(ip + 2) - 20u;
	uint16_t s;

	p16(l4 + off, 0);
	s = ref_sum(l4, len, ref_pseudo(g32(ip + 12), g32(ip + 16), ip[9],
					(uint32_t)len));
	p16(l4 + off, (uint16_t)~s);
}

static size_t udp(uint8_t *b, uint32_t src, uint16_t sport, uint16_t dport,
		  const void *data, size_t dlen)
{
	uint8_t *u = b + 34;
	size_t n;

	p16(u, sport);
	p16(u + 2, dport);
	p16(u + 4, (uint16_t)(8 + dlen));
	memcpy(u + 8, data, dlen);
	n = ipv4(b, peer_mac, src, OUR_IP, 17, 8 + dlen);
	l4_cksum_fix(b, 6);
	return n;
}

static size_t tcp_syn(uint8_t *b, const uint8_t *smac, uint32_t src,
		      uint16_t sport)
{
	uint8_t *t = b + 34;
	size_t n;

	memset(t, 0, 20);
	p16(t, sport);
	p16(t + 2, SVC_PORT);
	p32(t + 4, 1000);
	t[12] = 5 << 4;
	t[13] = 0x02;
	p16(t + 14, 64240);
	n = ipv4(b, smac, src, OUR_IP, 6, 20);
	l4_cksum_fix(b, 16);
	return n;
}

static size_t icmp_echo(uint8_t *b, size_t dlen)
{
	uint8_t *c = b + 34;

	c[0] = 8;
	c[1] = 0;
	p16(c + 2, 0);
	p16(c + 4, 0x4242);
	p16(c + 6, 7);
	for (size_t i = 0; i < dlen; i++)
		c[8 + i] = (uint8_t)(i * 7);
	p16(c + 2, (uint16_t)~ref_sum(c, 8 + dlen, 0));
	return ipv4(b, peer_mac, PEER_IP, OUR_IP, 1, 8 + dlen);
}

static size_t arp(uint8_t *b, const uint8_t *edst, uint16_t op,
		  const uint8_t *sha, uint32_t spa, uint32_t tpa)
{
	uint8_t *a = b + 14;

	eth(b, edst, sha, 0x0806);
	p16(a, 1);
	p16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	p16(a + 6, op);
	memcpy(a + 8, sha, 6);
	p32(a + 14, spa);
	memset(a + 18, 0, 6);
	p32(a + 24, tpa);
	return 42;
}

/* ---- checks on sent frames ---------------------------------------------- */

static void check_ipv4_frame(const struct sent *s, const uint8_t *dmac,
			     uint8_t proto, uint32_t dst)
{
	const uint8_t *ip = s->data + 14;

	assert_memory_equal(s->data, dmac, 6);
	assert_memory_equal(s->data + 6, our_mac, 6);
	assert_int_equal(g16(s->data + 12), 0x0800);
	assert_int_equal(ip[0], 0x45);
	assert_int_equal(g16(ip + 2), s->len - 14);
	assert_int_equal(g16(ip + 6), 0x4000);          /* DF, no fragment */
	assert_int_equal(ip[8], 64);
	assert_int_equal(ip[9], proto);
	assert_int_equal(g32(ip + 12), OUR_IP);
	assert_int_equal(g32(ip + 16), dst);
	assert_int_equal(s->l2, 14);
	assert_int_equal(s->l3, 20);
	if (!(s->flags & NET_TX_IP_CKSUM))
		assert_int_equal(ref_sum(ip, 20, 0), 0xffff);
}

static void check_l4_sum(const struct sent *s)
{
	const uint8_t *ip = s->data + 14;
	uint32_t len = g16(ip + 2) - 20u;

	assert_int_equal(ref_sum(ip + 20, len, ref_pseudo(g32(ip + 12),
							  g32(ip + 16), ip[9],
							  len)), 0xffff);
}

/* Counters before/after: exactly the one at 'off' moved among the drops. */
static void expect_drop(struct fx *f, const uint8_t *frame, size_t len,
			unsigned flags, size_t off, const char *what)
{
	struct net_counters a = *net_stack_counters(f->st), b;
	unsigned sent = f->port.nsent, dg = f->app.datagrams;
	uint64_t in = segs_in(f);
	const size_t first = offsetof(struct net_counters, drop_runt);
	const size_t last = offsetof(struct net_counters, drop_tx_alloc);
	uint8_t *copy = malloc(len ? len : 1);   /* exact size, for ASan */

	assert_non_null(copy);
	memcpy(copy, frame, len);
	net_stack_input(f->st, copy, len, flags);
	free(copy);
	b = *net_stack_counters(f->st);
	for (size_t o = first; o <= last; o += sizeof(uint64_t)) {
		uint64_t va, vb;

		memcpy(&va, (char *)&a + o, 8);
		memcpy(&vb, (char *)&b + o, 8);
		if (vb != va + (o == off)) {
			print_error("%s: counter at %zu went %llu -> %llu\n", what,
				    o, (unsigned long long)va,
				    (unsigned long long)vb);
			fail();
		}
	}
	assert_int_equal(b.rx_frames, a.rx_frames + 1);
	assert_int_equal(f->port.nsent, sent);
	assert_int_equal(f->app.datagrams, dg);
	assert_int_equal(segs_in(f), in);
}

#define DROP(c) offsetof(struct net_counters, c)

/* ---- checksum ----------------------------------------------------------- */

static void test_cksum_reference(void **state)
{
	static uint8_t buf[2000 + 16];
	uint32_t seed = 12345;

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t)(seed >> 16);
	}
	for (size_t align = 0; align < 8; align++)
		for (size_t len = 0; len <= 2000; len++) {
			uint32_t init = (uint32_t)(len * 2654435761u) & 0x3ffff;

			assert_int_equal(net_cksum_partial(buf + align, len, 0),
					 ref_sum(buf + align, len, 0));
			assert_int_equal(net_cksum_partial(buf + align, len, init),
					 ref_sum(buf + align, len, init));
		}
	/* all ones: every carry path at once */
	memset(buf, 0xff, sizeof(buf));
	for (size_t len = 0; len <= 2000; len++)
		assert_int_equal(net_cksum_partial(buf + 1, len, 0xffffffffu),
				 ref_sum(buf + 1, len, 0xffffffffu));
	/* RFC 1071 section 3's example: 00 01 f2 03 f4 f5 f6 f7 -> ddf2 */
	{
		const uint8_t ex[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };

		assert_int_equal(net_cksum_partial(ex, sizeof(ex), 0), 0xddf2);
	}
}

/* ---- ARP ---------------------------------------------------------------- */

static void test_arp_request_for_us(void **state)
{
	struct fx *f = *state;
	uint8_t b[64];
	size_t n = arp(b, bcast, 1, peer_mac, PEER_IP, OUR_IP);
	const uint8_t *a;

	net_stack_input(f->st, b, n, 0);
	assert_int_equal(f->port.nsent, 1);
	a = f->port.sent[0].data + 14;
	assert_int_equal(f->port.sent[0].len, 42);
	assert_memory_equal(f->port.sent[0].data, peer_mac, 6);
	assert_memory_equal(f->port.sent[0].data + 6, our_mac, 6);
	assert_int_equal(g16(f->port.sent[0].data + 12), 0x0806);
	assert_int_equal(g16(a), 1);
	assert_int_equal(g16(a + 2), 0x0800);
	assert_int_equal(a[4], 6);
	assert_int_equal(a[5], 4);
	assert_int_equal(g16(a + 6), 2);
	assert_memory_equal(a + 8, our_mac, 6);
	assert_int_equal(g32(a + 14), OUR_IP);
	assert_memory_equal(a + 18, peer_mac, 6);
	assert_int_equal(g32(a + 24), PEER_IP);
	assert_int_equal(net_stack_counters(f->st)->arp_requests_in, 1);
	assert_int_equal(net_stack_counters(f->st)->arp_replies_out, 1);
	/* and the requester was learnt: UDP to it goes out at once */
	assert_int_equal(net_udp_send(f->st, &(struct net_udp_peer){ PEER_IP, 5000, SVC_PORT }, "x", 1), 0);
	assert_memory_equal(f->port.sent[1].data, peer_mac, 6);
}

static void test_arp_for_others_ignored(void **state)
{
	struct fx *f = *state;
	uint8_t b[64];
	size_t n = arp(b, bcast, 1, peer_mac, PEER_IP, 0xc6120009u);

	expect_drop(f, b, n, 0, DROP(drop_not_for_us), "arp for other");
	assert_int_equal(net_stack_counters(f->st)->arp_requests_in, 0);
	/* not learnt either: nobody asked about us */
	assert_int_equal(net_udp_send(f->st, &(struct net_udp_peer){ PEER_IP, 5000, SVC_PORT }, "x", 1), -EHOSTUNREACH);
	/* unicast to another MAC */
	n = arp(b, peer_mac, 1, gw_mac, GW_IP, OUR_IP);
	expect_drop(f, b, n, 0, DROP(drop_not_for_us), "arp to other mac");
	/* malformed: hardware length 8, opcode 3, group sender MAC */
	n = arp(b, bcast, 1, peer_mac, PEER_IP, OUR_IP);
	b[18] = 8;
	expect_drop(f, b, n, 0, DROP(drop_arp_bad), "arp hlen");
	n = arp(b, bcast, 3, peer_mac, PEER_IP, OUR_IP);
	expect_drop(f, b, n, 0, DROP(drop_arp_bad), "arp op");
	n = arp(b, bcast, 1, bcast, PEER_IP, OUR_IP);
	expect_drop(f, b, n, 0, DROP(drop_arp_bad), "arp group sha");
}

static void test_arp_learn_only(void **state)
{
	struct fx *f = *state;
	uint8_t b[64];
	size_t n = arp(b, bcast, 1, peer_mac, PEER_IP, OUR_IP);

	net_stack_input(f->st, b, n, NET_RX_LEARN_ONLY);
	assert_int_equal(f->port.nsent, 0);
	assert_int_equal(net_stack_counters(f->st)->arp_replies_out, 0);
	assert_int_equal(net_stack_counters(f->st)->arp_requests_in, 0);
	/* the core that received it counted it; a copy counts nothing, not
	 * even as "not for us" when it asks for another host */
	assert_int_equal(net_stack_counters(f->st)->rx_frames, 0);
	net_stack_input(f->st, b, arp(b, bcast, 1, peer_mac, PEER_IP, OUR_IP + 1),
			NET_RX_LEARN_ONLY);
	assert_int_equal(net_stack_counters(f->st)->rx_frames, 0);
	assert_int_equal(net_stack_counters(f->st)->drop_not_for_us, 0);
	n = arp(b, bcast, 1, peer_mac, PEER_IP, OUR_IP);
	assert_int_equal(net_udp_send(f->st, &(struct net_udp_peer){ PEER_IP, 5000, SVC_PORT }, "x", 1), 0);
	assert_memory_equal(f->port.sent[0].data, peer_mac, 6);
	/* a learn-only IPv4 frame teaches its sender's MAC, nothing more */
	{
		const uint8_t mac3[6] = { 0x02, 0, 0, 0, 0, 0x03 };
		uint8_t u[128];

		n = udp(u, 0xc6120003u, 5000, SVC_PORT, "y", 1);
		memcpy(u + 6, mac3, 6);
		net_stack_input(f->st, u, n, NET_RX_LEARN_ONLY);
		assert_int_equal(f->app.datagrams, 0);
		assert_int_equal(net_udp_send(f->st, &(struct net_udp_peer){ 0xc6120003u, 5000, SVC_PORT }, "x", 1), 0);
		assert_memory_equal(f->port.sent[1].data, mac3, 6);
	}
	/* no buffer for the reply: counted */
	f->port.fail_alloc = true;
	net_stack_input(f->st, b, n = arp(b, bcast, 1, peer_mac, PEER_IP, OUR_IP), 0);
	assert_int_equal(net_stack_counters(f->st)->drop_tx_alloc, 1);
	assert_int_equal(net_stack_counters(f->st)->arp_replies_out, 0);
}

static void test_learn_from_syn(void **state)
{
	struct fx *f = *state;
	uint8_t b[128];
	size_t n = tcp_syn(b, peer_mac, PEER_IP, 40000);

	net_stack_input(f->st, b, n, 0);
	net_stack_flush(f->st);
	assert_int_equal(segs_in(f), 1);
	/* the SYN-ACK went straight out, no ARP needed */
	assert_int_equal(f->port.nsent, 1);
	assert_int_equal(net_stack_counters(f->st)->arp_requests_out, 0);
	check_ipv4_frame(&f->port.sent[0], peer_mac, 6, PEER_IP);
	check_l4_sum(&f->port.sent[0]);
}

static void test_offlink_not_learnt(void **state)
{
	struct fx *f = *state;
	uint8_t b[128];
	size_t n = tcp_syn(b, gw_mac, FAR_IP, 40000);

	net_stack_input(f->st, b, n, 0);
	net_stack_flush(f->st);
	assert_int_equal(segs_in(f), 1);
	assert_int_equal(segs_out(f), 1);
	/* the answer goes via the gateway, still unresolved: an ARP request
	 * for the gateway reuses the segment's buffer, the segment is lost */
	assert_int_equal(net_stack_counters(f->st)->drop_no_arp, 1);
	assert_int_equal(f->port.nsent, 1);
	assert_int_equal(g16(f->port.sent[0].data + 12), 0x0806);
	assert_int_equal(g32(f->port.sent[0].data + 14 + 24), GW_IP);
	/* a second connection: request already outstanding, frame given back */
	n = tcp_syn(b, gw_mac, FAR_IP, 40001);
	net_stack_input(f->st, b, n, 0);
	net_stack_flush(f->st);
	assert_int_equal(segs_out(f), 2);
	assert_int_equal(net_stack_counters(f->st)->drop_no_arp, 2);
	assert_int_equal(f->port.nsent, 1);
	assert_int_equal(f->port.frees, 1);
}

static void test_gateway_resolution_and_retry(void **state)
{
	struct fx *f = *state;
	struct net_udp_peer far = { FAR_IP, 6000, SVC_PORT };
	const struct net_counters *c = net_stack_counters(f->st);
	uint8_t b[64];
	size_t n;

	/* the first tick starts resolving the gateway */
	tick(f, 0);
	assert_int_equal(f->port.nsent, 1);
	assert_memory_equal(f->port.sent[0].data, bcast, 6);
	assert_int_equal(g16(f->port.sent[0].data + 14 + 6), 1);
	assert_int_equal(g32(f->port.sent[0].data + 14 + 14), OUR_IP);
	assert_int_equal(g32(f->port.sent[0].data + 14 + 24), GW_IP);
	/* sending meanwhile: unreachable, no second request outstanding */
	assert_int_equal(net_udp_send(f->st, &far, "abc", 3), -EHOSTUNREACH);
	assert_int_equal(c->drop_no_arp, 1);
	assert_int_equal(f->port.nsent, 1);
	tick(f, 500000);
	assert_int_equal(f->port.nsent, 1);
	tick(f, 499999);                /* at most one request a second */
	assert_int_equal(f->port.nsent, 1);
	tick(f, 1);                     /* 1 s: the retry is due */
	assert_int_equal(f->port.nsent, 2);
	assert_int_equal(g32(f->port.sent[1].data + 14 + 24), GW_IP);
	tick(f, 500000);
	assert_int_equal(f->port.nsent, 2);
	/* the answer */
	n = arp(b, our_mac, 2, gw_mac, GW_IP, OUR_IP);
	net_stack_input(f->st, b, n, 0);
	assert_int_equal(net_udp_send(f->st, &far, "abc", 3), 0);
	check_ipv4_frame(&f->port.sent[2], gw_mac, 17, FAR_IP);
	/* no more retries */
	tick(f, 5000000);
	assert_int_equal(f->port.nsent, 3);
	assert_int_equal(c->arp_requests_out, 2);
}

static unsigned requests_for(const struct fx *f, uint32_t ip)
{
	unsigned k = 0;

	for (unsigned i = 0; i < f->port.nsent; i++) {
		const uint8_t *d = f->port.sent[i].data;

		if (g16(d + 12) == 0x0806 && g16(d + 14 + 6) == 1 &&
		    g32(d + 14 + 24) == ip) {
			assert_memory_equal(d, bcast, 6);
			k++;
		}
	}
	return k;
}

static void test_arp_gives_up(void **state)
{
	struct fx *f = *state;
	struct net_udp_peer p = { PEER_IP, 6000, SVC_PORT };

	assert_int_equal(net_udp_send(f->st, &p, "a", 1), -EHOSTUNREACH);
	for (int i = 0; i < 100; i++) {
		tick(f, 100000);
		/* outstanding: sending adds no request */
		if (i < 40)
			assert_int_equal(net_udp_send(f->st, &p, "a", 1), -EHOSTUNREACH);
	}
	/* 10 s: five requests a second apart, then the attempt ended */
	assert_int_equal(requests_for(f, PEER_IP), 5);
	/* the gateway, kept resolved by the tick: one a second at most */
	assert_true(requests_for(f, GW_IP) >= 5 && requests_for(f, GW_IP) <= 11);
	assert_int_equal(net_udp_send(f->st, &p, "a", 1), -EHOSTUNREACH);
	assert_int_equal(requests_for(f, PEER_IP), 6);
}

static void test_arp_expiry_and_refresh(void **state)
{
	struct fx *f = *state;
	struct net_udp_peer p = { PEER_IP, 6000, SVC_PORT };
	const struct net_counters *c = net_stack_counters(f->st);
	uint8_t b[64];
	size_t n = arp(b, bcast, 1, peer_mac, PEER_IP, OUR_IP);
	uint64_t req;

	net_stack_input(f->st, b, n, 0);
	/* the gateway answers too: no requests from ticks until its refresh */
	n = arp(b, our_mac, 2, gw_mac, GW_IP, OUR_IP);
	net_stack_input(f->st, b, n, 0);
	f->now += 5000000;              /* half of the 10 s life */
	net_stack_tick(f->st, f->now);
	req = c->arp_requests_out;
	assert_int_equal(net_udp_send(f->st, &p, "a", 1), 0);
	assert_int_equal(c->arp_requests_out, req);
	f->now += 3000000;              /* last quarter: refresh, still usable */
	net_stack_tick(f->st, f->now);
	/* the tick refreshed the gateway (kept fresh unasked), not the peer */
	assert_int_equal(c->arp_requests_out, req + 1);
	assert_int_equal(g32(f->port.sent[f->port.nsent - 1].data + 14 + 24), GW_IP);
	req = c->arp_requests_out;
	assert_int_equal(net_udp_send(f->st, &p, "a", 1), 0);
	assert_int_equal(c->arp_requests_out, req + 1);
	assert_int_equal(net_udp_send(f->st, &p, "a", 1), 0);
	assert_int_equal(c->arp_requests_out, req + 1);
	tick(f, 2100000);               /* expired, refresh unanswered */
	assert_int_equal(net_udp_send(f->st, &p, "a", 1), -EHOSTUNREACH);
}

static void test_arp_bounded_keeps_gateway(void **state)
{
	struct fx *f = *state;
	struct net_udp_peer far = { FAR_IP, 6000, SVC_PORT };
	uint8_t b[128];
	size_t n;

	assert_non_null(fx_stack(f, false, 8));
	f->port.keep = false;
	n = arp(b, our_mac, 2, gw_mac, GW_IP, OUR_IP);
	net_stack_input(f->st, b, n, 0);
	for (uint32_t h = 2; h < 250; h++) {
		uint8_t mac[6] = { 0x02, 0, 0, 0, 1, (uint8_t)h };

		n = tcp_syn(b, mac, 0xc6120000u | h, 1000);
		net_stack_input(f->st, b, n, 0);
	}
	assert_int_equal(net_udp_send(f->st, &far, "a", 1), 0);
	/* the last one learnt is there too */
	assert_int_equal(net_udp_send(f->st, &(struct net_udp_peer){ 0xc6120000u | 249, 1, SVC_PORT }, "a", 1), 0);
}

/* ---- IPv4 --------------------------------------------------------------- */

static void test_ipv4_validation(void **state)
{
	struct fx *f = *state;
	uint8_t good[128], b[128];
	size_t n = udp(good, PEER_IP, 5000, SVC_PORT, "hello", 5);

#define CASE(mutate, counter) do {                                     \
		memcpy(b, good, sizeof(b));                             \
		uint8_t *ip = b + 14;                                   \
		(void)ip;                                               \
		mutate;                                                 \
		expect_drop(f, b, n, 0, DROP(counter), #mutate);        \
	} while (0)

	CASE((ip[0] = 0x65, ip_cksum_fix(ip)), drop_ip_version);
	CASE((ip[0] = 0x44, p16(ip + 10, 0), p16(ip + 10, (uint16_t)~ref_sum(ip, 20, 0))), drop_ip_hdr_len);
	CASE((ip[0] = 0x40), drop_ip_hdr_len);
	CASE((ip[0] = 0x4f), drop_ip_hdr_len);          /* 60 bytes > frame */
	CASE((p16(ip + 2, 200), ip_cksum_fix(ip)), drop_ip_total_len);
	CASE((p16(ip + 2, 19), ip_cksum_fix(ip)), drop_ip_total_len);
	CASE((ip[10] ^= 1), drop_ip_cksum);
	CASE((p16(ip + 6, 0x2000), ip_cksum_fix(ip)), drop_ip_fragment);
	CASE((p16(ip + 6, 0x0001), ip_cksum_fix(ip)), drop_ip_fragment);
	CASE((p16(ip + 6, 0x4000 | 0x0100), ip_cksum_fix(ip)), drop_ip_fragment);
	CASE((p32(ip + 16, 0xc6120009u), ip_cksum_fix(ip)), drop_not_for_us);
	CASE((p32(ip + 16, 0xffffffffu), ip_cksum_fix(ip)), drop_not_for_us);
	CASE((memcpy(b, peer_mac, 6)), drop_not_for_us);
	CASE((memcpy(b, bcast, 6)), drop_not_for_us);
	CASE((p32(ip + 12, 0xe0000001u), ip_cksum_fix(ip)), drop_ip_src);
	CASE((p32(ip + 12, 0xffffffffu), ip_cksum_fix(ip)), drop_ip_src);
	CASE((p32(ip + 12, 0xc61200ffu), ip_cksum_fix(ip)), drop_ip_src);
	CASE((p32(ip + 12, 0), ip_cksum_fix(ip)), drop_ip_src);
	CASE((p32(ip + 12, OUR_IP), ip_cksum_fix(ip)), drop_ip_src);
	CASE((p32(ip + 12, 0x7f000001u), ip_cksum_fix(ip)), drop_ip_src);
	CASE((ip[9] = 47, ip_cksum_fix(ip)), drop_ip_proto);
	CASE((p16(b + 12, 0x86dd)), drop_ethertype);
	CASE((p16(b + 12, 0x8100)), drop_ethertype);
#undef CASE
	/* the port's verdicts win over the bytes */
	expect_drop(f, good, n, NET_RX_IP_CKSUM_BAD, DROP(drop_ip_cksum), "rx ip bad");
	memcpy(b, good, sizeof(b));
	b[14 + 10] ^= 0x55;
	net_stack_input(f->st, b, n, NET_RX_IP_CKSUM_GOOD);
	assert_int_equal(f->app.datagrams, 1);
	/* and the good frame itself passes */
	net_stack_input(f->st, good, n, 0);
	assert_int_equal(f->app.datagrams, 2);
	assert_int_equal(f->app.len, 5);
}

static void test_runts(void **state)
{
	struct fx *f = *state;
	uint8_t a[64], u[128];
	size_t an = arp(a, bcast, 1, peer_mac, PEER_IP, OUR_IP);
	size_t un = udp(u, PEER_IP, 5000, SVC_PORT, "0123456789abcdef", 16);

	for (size_t len = 0; len < an; len++)
		expect_drop(f, a, len, 0, DROP(drop_runt), "arp runt");
	for (size_t len = 0; len < 34; len++)
		expect_drop(f, u, len, 0, DROP(drop_runt), "ipv4 runt");
	/* with a full IPv4 header the total length gives the truncation away */
	for (size_t len = 34; len < un; len++)
		expect_drop(f, u, len, 0, DROP(drop_ip_total_len), "ipv4 cut");
	assert_int_equal(f->port.nsent, 0);
}

static void test_ethernet_padding(void **state)
{
	struct fx *f = *state;
	uint8_t b[128];
	size_t n = udp(b, PEER_IP, 5000, SVC_PORT, "hi", 2);

	assert_int_equal(n, 44);
	memset(b + n, 0xee, 60 - n);
	net_stack_input(f->st, b, 60, 0);
	assert_int_equal(f->app.datagrams, 1);
	assert_int_equal(f->app.len, 2);
	assert_memory_equal(f->app.data, "hi", 2);
}

/* ---- ICMP --------------------------------------------------------------- */

static void test_icmp_echo(void **state)
{
	struct fx *f = *state;
	uint8_t b[256];
	size_t n = icmp_echo(b, 37);    /* odd length on purpose */
	const struct sent *s;
	const uint8_t *c;

	net_stack_input(f->st, b, n, 0);
	assert_int_equal(f->port.nsent, 1);
	s = &f->port.sent[0];
	assert_int_equal(s->len, n);
	check_ipv4_frame(s, peer_mac, 1, PEER_IP);
	assert_int_equal(ref_sum(s->data + 14, 20, 0), 0xffff);
	c = s->data + 34;
	assert_int_equal(c[0], 0);
	assert_int_equal(c[1], 0);
	assert_int_equal(ref_sum(c, 8 + 37, 0), 0xffff);
	assert_memory_equal(c + 4, b + 34 + 4, 4 + 37);  /* id, seq, data */
	assert_int_equal(net_stack_counters(f->st)->icmp_echo, 1);

	n = icmp_echo(b, 10);
	b[34 + 9] ^= 1;
	expect_drop(f, b, n, 0, DROP(drop_icmp_bad), "icmp cksum");
	n = icmp_echo(b, 10);
	b[34] = 13;                     /* timestamp request: not answered */
	p16(b + 36, 0);
	p16(b + 36, (uint16_t)~ref_sum(b + 34, 18, 0));
	expect_drop(f, b, n, 0, DROP(drop_icmp_bad), "icmp type");
	n = icmp_echo(b, 0);
	p16(b + 16, 20 + 4);            /* 4-byte ICMP message */
	ip_cksum_fix(b + 14);
	expect_drop(f, b, n, 0, DROP(drop_icmp_bad), "icmp short");
}

/* ---- UDP ---------------------------------------------------------------- */

static void test_udp_roundtrip(void **state)
{
	struct fx *f = *state;
	uint8_t b[256];
	const char msg[] = "\x00\x01\x00\x00\x00\x01\x00\x00get foo\r\n";
	size_t n = udp(b, PEER_IP, 34567, SVC_PORT, msg, sizeof(msg) - 1);
	const struct sent *s;
	const uint8_t *u;

	f->app.echo = true;
	net_stack_input(f->st, b, n, 0);
	assert_int_equal(f->app.datagrams, 1);
	assert_int_equal(f->app.peer.ip, PEER_IP);
	assert_int_equal(f->app.peer.port, 34567);
	assert_int_equal(f->app.peer.local_port, SVC_PORT);
	assert_int_equal(f->app.len, sizeof(msg) - 1);
	assert_memory_equal(f->app.data, msg, sizeof(msg) - 1);
	assert_int_equal(f->app.echo_rc, 0);
	assert_int_equal(f->port.nsent, 1);
	s = &f->port.sent[0];
	check_ipv4_frame(s, peer_mac, 17, PEER_IP);
	assert_int_equal(s->flags, 0);
	u = s->data + 34;
	assert_int_equal(g16(u), SVC_PORT);
	assert_int_equal(g16(u + 2), 34567);
	assert_int_equal(g16(u + 4), 8 + sizeof(msg) - 1);
	assert_int_not_equal(g16(u + 6), 0);
	check_l4_sum(s);
	assert_memory_equal(u + 8, msg, sizeof(msg) - 1);
	assert_int_equal(net_stack_counters(f->st)->udp_in, 1);
	assert_int_equal(net_stack_counters(f->st)->udp_out, 1);
	assert_int_equal(net_stack_counters(f->st)->tx_frames, 1);
	assert_int_equal(net_stack_counters(f->st)->tx_bytes, s->len);
	/* too big for one frame */
	{
		static uint8_t big[1500];

		assert_int_equal(net_udp_send(f->st, &f->app.peer, big, 1473), -EMSGSIZE);
		assert_int_equal(net_udp_send(f->st, &f->app.peer, big, 1472), 0);
		assert_int_equal(f->port.sent[1].len, 1514);
		check_l4_sum(&f->port.sent[1]);
	}
	/* out of buffers */
	f->port.fail_alloc = true;
	assert_int_equal(net_udp_send(f->st, &f->app.peer, "x", 1), -ENOBUFS);
	assert_int_equal(net_stack_counters(f->st)->drop_tx_alloc, 1);
}

static void test_udp_drops(void **state)
{
	struct fx *f = *state;
	uint8_t b[256];
	size_t n;

	n = udp(b, PEER_IP, 5000, SVC_PORT + 1, "x", 1);
	expect_drop(f, b, n, 0, DROP(drop_udp_port), "udp port");
	n = udp(b, PEER_IP, 5000, SVC_PORT, "xyz", 3);
	b[34 + 8] ^= 0x10;
	expect_drop(f, b, n, 0, DROP(drop_l4_cksum), "udp cksum");
	n = udp(b, PEER_IP, 5000, SVC_PORT, "xyz", 3);
	expect_drop(f, b, n, NET_RX_L4_CKSUM_BAD, DROP(drop_l4_cksum), "udp rx bad");
	n = udp(b, PEER_IP, 5000, SVC_PORT, "xyz", 3);
	p16(b + 34 + 4, 12);            /* UDP length beyond the IP payload */
	l4_cksum_fix(b, 6);
	expect_drop(f, b, n, 0, DROP(drop_l4_short), "udp len");
	n = udp(b, PEER_IP, 5000, SVC_PORT, "xyz", 3);
	p16(b + 34 + 4, 7);
	expect_drop(f, b, n, 0, DROP(drop_l4_short), "udp len < 8");
	n = ipv4(b, peer_mac, PEER_IP, OUR_IP, 17, 6);
	expect_drop(f, b, n, 0, DROP(drop_l4_short), "udp hdr short");
	/* checksum 0: "not computed", accepted */
	n = udp(b, PEER_IP, 5000, SVC_PORT, "xyz", 3);
	p16(b + 34 + 6, 0);
	net_stack_input(f->st, b, n, 0);
	assert_int_equal(f->app.datagrams, 1);
	/* ... even where the port's offload calls a zero checksum bad */
	net_stack_input(f->st, b, n, NET_RX_L4_CKSUM_BAD);
	assert_int_equal(f->app.datagrams, 2);
	/* checksum wrong but the port verified it */
	b[34 + 8] ^= 0x10;
	p16(b + 34 + 6, 0x1234);
	net_stack_input(f->st, b, n, NET_RX_L4_CKSUM_GOOD);
	assert_int_equal(f->app.datagrams, 3);
}

/* ---- TCP glue ----------------------------------------------------------- */

static void test_tcp_to_tcp_input(void **state)
{
	struct fx *f = *state;
	uint8_t b[256];
	size_t n = tcp_syn(b, peer_mac, PEER_IP, 40001);

	memset(b + n, 0, 60 - n);       /* 54 -> 60 with padding */
	net_stack_input(f->st, b, 60, 0);
	net_stack_flush(f->st);
	assert_int_equal(segs_in(f), 1);
	/* the padding was not handed on as TCP bytes: a clean SYN-ACK */
	assert_int_equal(tcp_stack_counters(net_stack_tcp(f->st))->bad_segments, 0);
	assert_int_equal(f->port.nsent, 1);
	assert_int_equal(g32(f->port.sent[0].data + 34 + 8), 1001);

	n = tcp_syn(b, peer_mac, PEER_IP, 40002);
	b[34 + 4] ^= 1;
	expect_drop(f, b, n, 0, DROP(drop_l4_cksum), "tcp cksum");
	expect_drop(f, b, n, NET_RX_L4_CKSUM_BAD, DROP(drop_l4_cksum), "tcp rx bad");
	net_stack_input(f->st, b, n, NET_RX_L4_CKSUM_GOOD);
	assert_int_equal(segs_in(f), 2);
	n = ipv4(b, peer_mac, PEER_IP, OUR_IP, 6, 19);
	expect_drop(f, b, n, 0, DROP(drop_l4_short), "tcp short");
}

/* The whole way: SYN in, SYN-ACK frame out, handshake, data echoed. */
static void test_syn_ack_frame(void **state)
{
	struct fx *f = *state;
	uint8_t b[256];
	size_t n = tcp_syn(b, peer_mac, PEER_IP, 40002);
	const struct sent *s;
	const uint8_t *t;
	uint32_t isn;
	uint16_t id0;

	net_stack_input(f->st, b, n, 0);
	net_stack_flush(f->st);
	assert_int_equal(f->port.nsent, 1);
	s = &f->port.sent[0];
	check_ipv4_frame(s, peer_mac, 6, PEER_IP);
	assert_int_equal(s->flags, 0);
	t = s->data + 34;
	assert_true(s->len >= 54 && s->len == 34u + (t[12] >> 4) * 4u);
	assert_int_equal(g16(t), SVC_PORT);
	assert_int_equal(g16(t + 2), 40002);
	assert_int_equal(t[13], 0x12);                  /* SYN|ACK */
	assert_int_equal(g32(t + 8), 1001);
	check_l4_sum(s);
	isn = g32(t + 4);
	id0 = g16(s->data + 18);

	/* the ACK completes the handshake; data is echoed back */
	{
		uint8_t *a = b + 34;

		n = tcp_syn(b, peer_mac, PEER_IP, 40002);
		p32(a + 4, 1001);
		p32(a + 8, isn + 1);
		a[13] = 0x18;                           /* PSH|ACK */
		memcpy(a + 20, "ping", 4);
		n = ipv4(b, peer_mac, PEER_IP, OUR_IP, 6, 24);
		l4_cksum_fix(b, 16);
		net_stack_input(f->st, b, n, 0);
		net_stack_flush(f->st);
	}
	assert_int_equal(f->app.accepts, 1);
	assert_int_equal(f->port.nsent, 2);
	s = &f->port.sent[1];
	check_ipv4_frame(s, peer_mac, 6, PEER_IP);
	check_l4_sum(s);
	t = s->data + 34;
	assert_int_equal(g32(t + 4), isn + 1);
	assert_int_equal(g32(t + 8), 1005);
	assert_int_equal(s->len, 34u + (t[12] >> 4) * 4u + 4);
	assert_memory_equal(s->data + s->len - 4, "ping", 4);
	/* IDs differ from frame to frame */
	assert_int_not_equal(g16(s->data + 18), id0);

	/* no buffer: counted on both layers, nothing sent */
	f->port.fail_alloc = true;
	n = tcp_syn(b, peer_mac, PEER_IP, 40003);
	net_stack_input(f->st, b, n, 0);
	net_stack_flush(f->st);
	assert_int_equal(f->port.nsent, 2);
	assert_true(net_stack_counters(f->st)->drop_tx_alloc >= 1);
	assert_true(tcp_stack_counters(net_stack_tcp(f->st))->alloc_failures >= 1);
}

static void test_offload(void **state)
{
	struct fx *f = *state;
	uint8_t b[256];
	size_t n;
	const struct sent *s;
	uint32_t len;

	assert_non_null(fx_stack(f, true, 0));
	n = tcp_syn(b, peer_mac, PEER_IP, 40003);
	net_stack_input(f->st, b, n, 0);
	net_stack_flush(f->st);
	assert_int_equal(f->port.nsent, 1);
	s = &f->port.sent[0];
	check_ipv4_frame(s, peer_mac, 6, PEER_IP);
	assert_int_equal(s->flags, NET_TX_IP_CKSUM | NET_TX_TCP_CKSUM);
	assert_int_equal(g16(s->data + 14 + 10), 0);
	len = (uint32_t)s->len - 34;
	assert_int_equal(g16(s->data + 34 + 16),
			 ref_sum(NULL, 0, ref_pseudo(OUR_IP, PEER_IP, 6, len)));

	assert_int_equal(net_udp_send(f->st, &(struct net_udp_peer){ PEER_IP, 7, SVC_PORT }, "abcd", 4), 0);
	s = &f->port.sent[1];
	check_ipv4_frame(s, peer_mac, 17, PEER_IP);
	assert_int_equal(s->flags, NET_TX_IP_CKSUM | NET_TX_UDP_CKSUM);
	assert_int_equal(g16(s->data + 14 + 10), 0);
	assert_int_equal(g16(s->data + 34 + 6),
			 ref_sum(NULL, 0, ref_pseudo(OUR_IP, PEER_IP, 17, 12)));
}

/* ---- flow steering ------------------------------------------------------ */

static void test_flow_owner(void **state)
{
	uint8_t b[128], c[128];
	size_t n;
	unsigned hits[4] = { 0 };

	(void)state;
	n = tcp_syn(b, peer_mac, PEER_IP, 40000);
	for (unsigned nc = 1; nc <= 16; nc++) {
		int o = net_flow_owner(b, n, nc);

		assert_true(o >= 0 && o < (int)nc);
		/* fields outside the 4-tuple do not move the flow */
		memcpy(c, b, n);
		memcpy(c, gw_mac, 6);
		memcpy(c + 6, bcast, 6);
		c[14 + 8] = 1;                   /* TTL */
		p16(c + 14 + 4, 0xbeef);         /* ID */
		p16(c + 14 + 10, 0);             /* checksum */
		p32(c + 34 + 4, 0xdeadbeef);     /* sequence */
		c[34 + 13] = 0x10;               /* flags */
		assert_int_equal(net_flow_owner(c, n, nc), o);
	}
	assert_int_equal(net_flow_owner(b, n, 0), 0);
	n = arp(b, bcast, 1, peer_mac, PEER_IP, OUR_IP);
	assert_int_equal(net_flow_owner(b, n, 4), -1);
	n = icmp_echo(b, 8);
	assert_int_equal(net_flow_owner(b, n, 4), 0);
	p16(b + 12, 0x86dd);
	assert_int_equal(net_flow_owner(b, n, 4), 0);
	/* fragments have no ports after the first: core 0 */
	n = udp(b, PEER_IP, 1, SVC_PORT, "x", 1);
	p16(b + 14 + 6, 0x2000);
	assert_int_equal(net_flow_owner(b, n, 4), 0);

	/* spread: 40000 flows over 4 cores, each within 10% of a quarter */
	for (uint32_t i = 0; i < 40000; i++) {
		n = udp(b, 0xc6120000u | (i % 250 + 2), (uint16_t)(1024 + i), SVC_PORT, "", 0);
		hits[net_flow_owner(b, n, 4)]++;
	}
	for (unsigned k = 0; k < 4; k++)
		assert_true(hits[k] > 9000 && hits[k] < 11000);
}

static void test_flow_owner_truncated(void **state)
{
	uint8_t f[4][128];
	size_t n[4];

	(void)state;
	n[0] = tcp_syn(f[0], peer_mac, PEER_IP, 40000);
	f[0][14] = 0x46;                /* an option word: ports at 38 */
	n[1] = udp(f[1], PEER_IP, 5000, SVC_PORT, "abc", 3);
	n[2] = arp(f[2], bcast, 1, peer_mac, PEER_IP, OUR_IP);
	n[3] = icmp_echo(f[3], 4);
	for (unsigned k = 0; k < 4; k++) {
		size_t ports = 14 + (size_t)(f[k][14] & 0xf) * 4 + 4;

		for (size_t len = 0; len <= n[k]; len++) {
			uint8_t *copy = malloc(len ? len : 1);   /* exact size */
			int o;

			assert_non_null(copy);
			memcpy(copy, f[k], len);
			o = net_flow_owner(copy, len, 8);
			if (k == 2 && len >= 14)
				assert_int_equal(o, -1);
			else
				assert_true(o >= 0 && o < 8);
			if (k < 2 && len < ports)
				assert_int_equal(o, 0);
			if (k == 3)
				assert_int_equal(o, 0);
			free(copy);
		}
	}
}

/* ---- garbage ------------------------------------------------------------ */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_garbage(void **state)
{
	struct fx *f = *state;
	uint8_t seeds[6][128], *b = malloc(256);
	size_t lens[6];
	uint64_t s = 0x1234567887654321ull;
	const unsigned rounds = 300000;
	unsigned flags, counted = 0;

	assert_non_null(b);
	f->port.keep = false;
	f->app.echo = true;
	lens[0] = arp(seeds[0], bcast, 1, peer_mac, PEER_IP, OUR_IP);
	lens[1] = udp(seeds[1], PEER_IP, 5000, SVC_PORT, "get a\r\n", 7);
	lens[2] = tcp_syn(seeds[2], peer_mac, PEER_IP, 999);
	lens[3] = icmp_echo(seeds[3], 20);
	lens[4] = tcp_syn(seeds[4], gw_mac, FAR_IP, 999);
	lens[5] = 100;
	for (unsigned i = 0; i < 100; i++)
		seeds[5][i] = (uint8_t)rnd(&s);
	for (unsigned r = 0; r < rounds; r++) {
		unsigned k = (unsigned)(rnd(&s) % 6);
		size_t len = lens[k];
		unsigned flips = (unsigned)(rnd(&s) % 4);

		memcpy(b, seeds[k], len);
		for (unsigned j = 0; j < flips; j++)
			b[rnd(&s) % len] = (uint8_t)rnd(&s);
		if (rnd(&s) % 4 == 0)
			len = (size_t)(rnd(&s) % (len + 1));
		flags = (unsigned)(rnd(&s) % 32);
		counted += !(flags & NET_RX_LEARN_ONLY);   /* copies count nothing */
		net_stack_input(f->st, b, len, flags);
		if (r % 1000 == 0)
			tick(f, 50000);
	}
	free(b);
	assert_int_equal(net_stack_counters(f->st)->rx_frames, counted);
	assert_int_equal(f->port.allocs, f->port.sends + f->port.frees);
}

static void test_create_destroy(void **state)
{
	struct net_stack_config cfg = { .ip = OUR_IP, .prefix_len = 24 };
	struct net_port ops = { .frame_alloc = mp_alloc, .frame_send = mp_send };
	struct net_stack *st;

	(void)state;
	net_stack_destroy(NULL);
	st = NULL;
	net_stack_destroy(&st);
	assert_null(net_stack_create(&cfg, &(struct net_port){ 0 }, NULL, NULL, NULL, 0));
	cfg.prefix_len = 33;
	assert_null(net_stack_create(&cfg, &ops, NULL, NULL, NULL, 0));
	cfg.prefix_len = 24;
	cfg.ip = 0;
	assert_null(net_stack_create(&cfg, &ops, NULL, NULL, NULL, 0));
	cfg.ip = OUR_IP;
	/* no TCP port: no TCP stack, TCP frames counted */
	st = net_stack_create(&cfg, &ops, NULL, NULL, NULL, 0);
	assert_non_null(st);
	assert_null(net_stack_tcp(st));
	net_stack_destroy(&st);
	assert_null(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cksum_reference),
		cmocka_unit_test(test_create_destroy),
		cmocka_unit_test_setup_teardown(test_arp_request_for_us, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arp_for_others_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arp_learn_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_learn_from_syn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offlink_not_learnt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gateway_resolution_and_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arp_gives_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arp_expiry_and_refresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arp_bounded_keeps_gateway, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv4_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ethernet_padding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_icmp_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_drops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_to_tcp_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syn_ack_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offload, setup, teardown),
		cmocka_unit_test(test_flow_owner),
		cmocka_unit_test(test_flow_owner_truncated),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
