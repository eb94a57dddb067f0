/*
 * tests/fuzz/fuzz_stack.c - libFuzzer target: arbitrary frames into one
 * core's network stack (stack.h) with the real TCP (tcp.h) above it.
 *
 * Input: records of [flags][len_hi][len_lo][len bytes of frame], as many as
 * fit; a short last record takes what is left. flags & 0x1f are the
 * NET_RX_* receive flags, bit 5 makes the clock jump 300 ms before the
 * frame (so ARP retries and TCP timers run), bit 6 flushes TCP after it,
 * bit 7 plays a peer that listens: an IPv4/TCP frame gets the sequence and
 * acknowledgment numbers of the last segment we sent (its ack and its end)
 * and fresh checksums, so the fuzzer gets past the handshake.
 * A fresh stack per input, so every finding reproduces.
 *
 * Checks, beyond the sanitizers: net_flow_owner stays in range; every frame
 * the stack sends is well formed (our source MAC, IPv4 or ARP, a valid IPv4
 * header checksum and a valid TCP/UDP/ICMP checksum, lengths consistent);
 * every buffer taken from the port is sent or given back.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dataplane/net/stack.h"
#include "tests/net/cksum_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUR_IP   0xc6120001u    /* 198.18.0.1/24, gateway .254 */
#define PORT     11211
#define POOL     64
#define BUFSZ    2048

static const uint8_t our_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };

struct port {
	uint8_t buf[POOL][BUFSZ];
	bool busy[POOL];
	unsigned outstanding;
	uint32_t peer_seq, peer_ack;    /* what a listening peer would send */
};

static struct port g_port;

static uint8_t *p_alloc(void *port, size_t len, void **pkt)
{
	struct port *p = port;

	if (len > BUFSZ)
		__builtin_trap();       /* the stack never asks for more than a frame */
	for (unsigned i = 0; i < POOL; i++)
		if (!p->busy[i]) {
			p->busy[i] = true;
			p->outstanding++;
			*pkt = (void *)(uintptr_t)(i + 1);
			return p->buf[i];
		}
	return NULL;                    /* out of buffers: must be handled */
}


static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void check_frame(const uint8_t *f, size_t len)
{
	uint16_t type;

	if (len < 14 || memcmp(f + 6, our_mac, 6) != 0)
		__builtin_trap();
	type = (uint16_t)(f[12] << 8 | f[13]);
	if (type == 0x0806) {
		if (len < 42 || be32(f + 14 + 14) != OUR_IP)
			__builtin_trap();
		return;
	}
	if (type != 0x0800 || len < 34)
		__builtin_trap();
	const uint8_t *ip = f + 14;
	size_t tot = (size_t)(ip[2] << 8 | ip[3]);
	uint32_t src = be32(ip + 12), dst = be32(ip + 16);
	size_t l4 = tot - 20;

	if (ip[0] != 0x45 || tot + 14 != len || src != OUR_IP ||
	    ref_sum(ip, 20, 0) != 0xffff)
		__builtin_trap();
	if (ip[9] == 6 && l4 >= 20) {
		const uint8_t *t = ip + 20;
		uint32_t dlen = (uint32_t)l4 - (uint32_t)(t[12] >> 4) * 4;

		g_port.peer_seq = be32(t + 8);
		g_port.peer_ack = be32(t + 4) + dlen + !!(t[13] & 0x02) +
				  !!(t[13] & 0x01);
	}
	if (ip[9] == 1) {
		if (ref_sum(ip + 20, l4, 0) != 0xffff)
			__builtin_trap();
	} else if (ip[9] == 6 || ip[9] == 17) {
		uint32_t ps = (src >> 16) + (src & 0xffff) + (dst >> 16) +
			      (dst & 0xffff) + ip[9] + (uint32_t)l4;

		if (ref_sum(ip + 20, l4, ps) != 0xffff)
			__builtin_trap();
	} else {
		__builtin_trap();
	}
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = (v >> 16) & 0xff; p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

/* Bit 7: make an IPv4/TCP frame acceptable to the connection we talk to. */
static void patch_tcp(uint8_t *f, size_t len)
{
	uint8_t *ip = f + 14, *t;
	size_t hl, tot;
	uint32_t src, dst, ps;
	uint16_t ck;

	if (len < 34 || f[12] != 0x08 || f[13] != 0x00 || ip[9] != 6)
		return;
	hl = (size_t)(ip[0] & 0xf) * 4;
	tot = (size_t)(ip[2] << 8 | ip[3]);
	if (hl < 20 || tot < hl + 20 || 14 + tot > len)
		return;
	t = ip + hl;
	put32(t + 4, g_port.peer_seq);
	put32(t + 8, g_port.peer_ack);
	ip[10] = ip[11] = 0;
	ck = (uint16_t)~ref_sum(ip, hl, 0);
	ip[10] = ck >> 8;
	ip[11] = ck & 0xff;
	src = be32(ip + 12);
	dst = be32(ip + 16);
	ps = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + 6 +
	     (uint32_t)(tot - hl);
	t[16] = t[17] = 0;
	ck = (uint16_t)~ref_sum(t, tot - hl, ps);
	t[16] = ck >> 8;
	t[17] = ck & 0xff;
}

static void p_send(void *port, void *pkt, size_t len, unsigned flags,
		   unsigned l2, unsigned l3)
{
	struct port *p = port;
	unsigned i = (unsigned)(uintptr_t)pkt - 1;

	if (i >= POOL || !p->busy[i] || len > BUFSZ || flags != 0)
		__builtin_trap();
	check_frame(p->buf[i], len);
	p->busy[i] = false;
	p->outstanding--;
}

static void p_free(void *port, void *pkt)
{
	struct port *p = port;
	unsigned i = (unsigned)(uintptr_t)pkt - 1;

	if (i >= POOL || !p->busy[i])
		__builtin_trap();
	p->busy[i] = false;
	p->outstanding--;
}

/* ---- an echo application ------------------------------------------------ */

static int g_ctx;

static void *app_accepted(void *arg, struct tcp_conn *c)
{
	return c;
}

static void app_readable(void *arg, void *ctx)
{
	struct tcp_conn *c = ctx;
	const uint8_t *d;
	size_t n = tcp_recv_peek(c, &d);

	if (n) {
		size_t sent = tcp_send(c, d, n);

		tcp_recv_consume(c, sent);
	}
	if (tcp_conn_peer_closed(c))
		tcp_close(c);
}

static void app_writable(void *arg, void *ctx) {}
static void app_closed(void *arg, void *ctx) {}

static void app_udp(void *arg, struct net_stack *st,
		    const struct net_udp_peer *peer, const uint8_t *data,
		    size_t len)
{
	net_udp_send(st, peer, data, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct net_port ops = {
		.frame_alloc = p_alloc, .frame_send = p_send, .frame_free = p_free,
	};
	static const struct net_app app = {
		.tcp = { .accepted = app_accepted, .readable = app_readable,
			 .writable = app_writable, .closed = app_closed },
		.udp_datagram = app_udp,
	};
	struct net_stack_config cfg = {
		.ip = OUR_IP, .prefix_len = 24, .gateway = 0xc61200feu,
		.tcp_port = PORT, .udp_port = PORT, .arp_entries = 16,
		.tcp = { .max_conns = 32, .syn_backlog = 8, .time_wait_max = 32,
			 .rcv_buf = 16384, .snd_buf = 16384, .window_scaling = true,
			 .timestamps = true, .ooo_max_segs = 8 },
	};
	static uint8_t scratch[70000];
	uint64_t now = 1000000;
	struct net_stack *st;

	memcpy(cfg.mac, our_mac, 6);
	memset(&g_port.busy, 0, sizeof(g_port.busy));
	g_port.outstanding = 0;
	g_port.peer_seq = g_port.peer_ack = 0;
	st = net_stack_create(&cfg, &ops, &g_port, &app, &g_ctx, now);
	if (!st)
		__builtin_trap();
	net_stack_tick(st, now);
	while (size > 0) {
		unsigned flags = data[0];
		size_t len = size >= 3 ? (size_t)(data[1] << 8 | data[2]) : 0;
		size_t hdr = size >= 3 ? 3 : size;
		const uint8_t *frame;
		int owner;

		data += hdr;
		size -= hdr;
		if (len > size)
			len = size;
		if (flags & 0x80) {
			memcpy(scratch, data, len);
			patch_tcp(scratch, len);
			frame = scratch;
		} else {
			frame = data;
		}
		owner = net_flow_owner(frame, len, 4);
		if (owner < -1 || owner > 3)
			__builtin_trap();
		if (flags & 0x20)
			now += 300000;
		else
			now += 10;
		net_stack_tick(st, now);
		net_stack_input(st, frame, len, flags & 0x1f);
		if (flags & 0x40)
			net_stack_flush(st);
		data += len;
		size -= len;
	}
	net_stack_flush(st);
	net_stack_tick(st, now + 5000000);
	net_stack_flush(st);
	net_stack_destroy(&st);
	if (g_port.outstanding != 0)
		__builtin_trap();
	return 0;
}
