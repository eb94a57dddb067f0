/*
 * dataplane/net/stack.c - one polling core's stack above the port:
 * Ethernet, ARP (RFC 826), IPv4 (RFC 791, RFC 1122), ICMP echo (RFC 792),
 * UDP (RFC 768) and the glue that puts tcp.c's segments into frames.
 *
 * Design note.
 *
 * Receive path. One frame is checked with fixed offsets and unaligned-safe
 * loads (memcpy into a local, which compiles to a plain load); nothing is
 * copied, nothing allocated. Every reason to drop a frame has its counter,
 * bumped at the one place the decision is taken, so the counters tell
 * exactly why a frame died. Validation order follows RFC 1122 3.2.1: version,
 * header length, header checksum, total length (Ethernet padding beyond it
 * is normal and ignored), fragments (not reassembled: counted and dropped),
 * destination (ours only), source (no broadcast, multicast, 0, loopback or
 * ourselves, RFC 1122 3.2.1.3).
 *
 * ARP cache. Set-associative, ARP_WAYS entries per set, a power-of-two number
 * of sets: bounded, O(1), no deletion bookkeeping. The entry found last is
 * tried before its set (a request's sender is learnt, then its reply
 * resolved: the same entry), and a learnt MAC that did not change costs
 * one compare and the expiry store. A full set evicts its
 * entry closest to expiry, never the gateway's. An entry is FREE, PENDING
 * (request sent, no MAC yet) or VALID. 'tries' > 0 means one request is
 * outstanding for that address, the only one: it is retried from
 * net_stack_tick once a second (RFC 1122 2.3.2.1's flood limit) until
 * ARP_MAX_TRIES, then a PENDING entry is freed. A VALID entry
 * that is used for transmission during the last quarter of its life is
 * refreshed by a request while it stays usable, so a busy flow to the
 * gateway never sees a gap; the gateway is also kept resolved from the tick
 * even while unused. MACs are learnt from ARP (RFC 826 merge: update
 * an existing entry; create one when the frame targets us) and from every
 * valid IPv4 frame of an on-link source, in particular the SYN, so a reply
 * never waits for ARP. Only on-link senders are learnt: a spoofed frame can
 * at worst repoint an on-link address, as with any ARP.
 *
 * Transmit path for TCP. tcp.c asks for a buffer (seg_alloc) before it knows
 * where the segment goes. We allocate the whole frame, return the pointer
 * ETH+IP bytes in, and use the frame's own first bytes as the handle: the
 * port's packet handle is stored in the (not yet written) Ethernet header
 * and read back in seg_send, which then writes both headers. No side table,
 * no allocation. When the peer's MAC is unknown the segment is dropped
 * (drop_no_arp; TCP retransmits) and its buffer is reused for the ARP
 * request if one is due, otherwise returned through port->frame_free.
 *
 * Checksums. csum_acc sums a buffer in native byte order, 64 bits at a time
 * with end-around carry (RFC 1071 2(B): the sum is byte-order independent,
 * and 2(C): accumulate wide, fold once). The per-frame sums stay in native
 * order throughout: the pseudo-header goes in as its network-order words,
 * an option-less IPv4 header is five 32-bit adds, and each sum is folded
 * once and stored (or compared with all ones) without a byte swap; the
 * frames are short, so these fixed costs dominate. net_cksum_partial, the
 * exported form, converts the folded result to host order.
 * With port->tx_*_offload the IPv4 checksum is left 0 and the L4 checksum
 * field holds the pseudo-header sum (not inverted), as NICs expect.
 */
#include "dataplane/net/stack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- wire formats: offsets from the start of each header -------------- */

#define ETH_HLEN        14
#define ETH_DST         0
#define ETH_SRC         6
#define ETH_TYPE        12
#define ETHERTYPE_IPV4  0x0800
#define ETHERTYPE_ARP   0x0806

#define ARP_LEN         28          /* Ethernet/IPv4 ARP, RFC 826 */
#define ARP_HTYPE       0
#define ARP_PTYPE       2
#define ARP_HLEN        4
#define ARP_PLEN        5
#define ARP_OP          6
#define ARP_SHA         8
#define ARP_SPA         14
#define ARP_THA         18
#define ARP_TPA         24
#define ARP_OP_REQUEST  1
#define ARP_OP_REPLY    2

#define IPH_HLEN         20          /* without options; we send none */
#define IPH_VHL          0
#define IPH_TOS          1
#define IPH_TOTLEN       2
#define IPH_ID           4
#define IPH_FRAG         6
#define IPH_TTL          8
#define IPH_PROTO        9
#define IPH_CKSUM        10
#define IPH_SRC          12
#define IPH_DST          16
#define IPH_DF           0x4000
#define IPH_MF           0x2000
#define IPH_OFFMASK      0x1fff
#define IPH_TTL_DEFAULT  64          /* RFC 1700 / RFC 1122 3.2.1.7 */
#define IPPROTO_ICMP_   1
#define IPPROTO_TCP_    6
#define IPPROTO_UDP_    17

#define ICMP_HLEN       8
#define ICMP_ECHO_REPLY 0
#define ICMP_ECHO       8

#define UDP_HLEN        8
#define TCP_HLEN_MIN    20
#define TCP_CKSUM       16
#define UDP_CKSUM       6

#define NET_MTU         1500        /* no jumbo frames, no fragmentation */
#define HDRS_LEN        (ETH_HLEN + IPH_HLEN)

/* ---- ARP cache parameters ---------------------------------------------- */

#define ARP_WAYS          4
#define ARP_RETRY_US      1000000u  /* RFC 1122 2.3.2.1: <= 1 request/s/address */
#define ARP_MAX_TRIES     5         /* requests per resolution attempt */
#define ARP_GW_RETRY_US   1000000u  /* proactive gateway resolution pacing */

enum arp_state { ARP_FREE = 0, ARP_PENDING, ARP_VALID };

struct arp_entry {
	uint32_t ip;
	uint8_t mac[6];
	uint8_t state;
	uint8_t tries;          /* > 0: a request is outstanding */
	uint64_t expires_us;    /* VALID: end of life */
	uint64_t retry_us;      /* tries > 0: when to retry */
};

struct net_stack {
	/* hot, read on every frame */
	uint8_t mac[6];
	uint16_t ip_id;
	uint32_t ip;
	uint32_t netmask;
	uint32_t net;           /* ip & netmask */
	uint32_t bcast;         /* subnet broadcast, or 0 for /31 and /32 */
	uint32_t gateway;
	uint16_t tcp_port;
	uint16_t udp_port;
	uint64_t now;
	struct tcp_stack *tcp;

	const struct net_port *port_ops;
	void *port;
	struct net_app app;
	void *app_arg;

	struct arp_entry *arp;
	struct arp_entry *arp_hot;  /* last found (arp_find); never NULL */
	unsigned arp_sets;      /* power of two */
	unsigned arp_shift;     /* 32 - log2(arp_sets) */
	uint32_t arp_timeout_us;
	uint64_t arp_next_due;  /* earliest retry_us of any outstanding request */
	uint64_t gw_next_try;

	struct net_counters c;
};

/* ---- unaligned-safe loads and stores, network order -------------------- */

static inline uint16_t ld16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return ntohs(v);
}

static inline uint32_t ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return ntohl(v);
}

static inline void st16(uint8_t *p, uint16_t v)
{
	v = htons(v);
	memcpy(p, &v, sizeof(v));
}

static inline void st32(uint8_t *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, sizeof(v));
}

static inline bool mac_is_group(const uint8_t *m)
{
	return m[0] & 1;
}

static const uint8_t mac_bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* ---- checksums ---------------------------------------------------------- */

static inline uint64_t add_carry64(uint64_t a, uint64_t b)
{
	uint64_t s = a + b;

	return s + (s < a);
}

/* 64 -> 16 bits with end-around carries (RFC 1071 2(C)); native order. */
static inline uint16_t fold64(uint64_t s)
{
	uint32_t lo = (uint32_t)s, hi = (uint32_t)(s >> 32);

	lo += hi;
	lo += lo < hi;                  /* the carry out of bit 31 wraps */
	lo = (lo & 0xffff) + (lo >> 16);  /* <= 0x1fffe */
	lo = (lo & 0xffff) + (lo >> 16);  /* <= 0xffff */
	return (uint16_t)lo;
}

/*
 * RFC 1071 sum of len bytes added to s, in native order, not folded. The
 * frames on the request path are short (~40-100 bytes), so the fixed cost
 * matters as much as the loop: two accumulators over 32-byte blocks (long
 * TCP segments), then 8 bytes at a time, then the 4/2/1-byte tail.
 */
static uint64_t csum_acc(const uint8_t *p, size_t len, uint64_t s)
{
	uint64_t v, w, x, y, s1 = 0;

	while (len >= 32) {
		memcpy(&v, p, 8);
		memcpy(&w, p + 8, 8);
		memcpy(&x, p + 16, 8);
		memcpy(&y, p + 24, 8);
		s = add_carry64(s, v);
		s1 = add_carry64(s1, w);
		s = add_carry64(s, x);
		s1 = add_carry64(s1, y);
		p += 32;
		len -= 32;
	}
	s = add_carry64(s, s1);
	while (len >= 8) {
		memcpy(&v, p, 8);
		s = add_carry64(s, v);
		p += 8;
		len -= 8;
	}
	if (len & 4) {
		uint32_t t;

		memcpy(&t, p, 4);
		s = add_carry64(s, t);
		p += 4;
	}
	if (len & 2) {
		uint16_t t;

		memcpy(&t, p, 2);
		s = add_carry64(s, t);
		p += 2;
	}
	if (len & 1) {
		/* the odd byte is the high half of a zero-padded word: at the
		 * lower address, so in native order it is where it lies */
		uint8_t last[2] = { p[0], 0 };
		uint16_t t;

		memcpy(&t, last, 2);
		s = add_carry64(s, t);
	}
	return s;
}

/* The sum of an option-less 20-byte IPv4 header, folded, native order:
 * five 32-bit words cannot carry out of 64 bits, so no carry handling. */
static inline uint16_t csum_ip20(const uint8_t *ip)
{
	uint32_t a, b, c, d, e;

	memcpy(&a, ip, 4);
	memcpy(&b, ip + 4, 4);
	memcpy(&c, ip + 8, 4);
	memcpy(&d, ip + 12, 4);
	memcpy(&e, ip + 16, 4);
	return fold64((uint64_t)a + b + c + d + e);
}

/*
 * The pseudo-header (RFC 768, RFC 9293 3.1) in native order, not folded:
 * the sum is byte-order independent (RFC 1071 2(B)), so each field goes in
 * as its network-order representation and the total is folded only once,
 * together with the header and data.
 */
static inline uint64_t csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto,
				   uint16_t l4_len)
{
	return (uint64_t)htonl(src) + htonl(dst) + htons(proto) + htons(l4_len);
}

/*
 * RFC 1071 sum. The running sum is kept in native order (byte-order
 * independence, 2(B)); 'sum' comes in and the result goes out in host order
 * (the value of the big-endian 16-bit words), converted once per call.
 */
uint16_t net_cksum_partial(const void *data, size_t len, uint32_t sum)
{
	uint16_t r = fold64(csum_acc(data, len, 0));

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	r = __builtin_bswap16(r);
#endif
	return fold64((uint64_t)r + sum);
}

/* Pseudo-header sum (RFC 9293 3.1, RFC 768), host order, folded. */
static inline uint16_t pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto,
				  uint32_t l4_len)
{
	uint64_t s = (uint64_t)(src >> 16) + (src & 0xffff) + (dst >> 16) +
		     (dst & 0xffff) + proto + l4_len;

	return fold64(s);
}

/* ---- transmit helpers --------------------------------------------------- */

static inline void count_tx(struct net_stack *st, size_t len)
{
	st->c.tx_frames++;
	st->c.tx_bytes += len;
}

static void eth_fill(const struct net_stack *st, uint8_t *f,
		     const uint8_t *dst, uint16_t type)
{
	memcpy(f + ETH_DST, dst, 6);
	memcpy(f + ETH_SRC, st->mac, 6);
	st16(f + ETH_TYPE, type);
}

/* Writes a 20-byte IPv4 header; returns the NET_TX_* flag for its checksum. */
static unsigned ip_fill(struct net_stack *st, uint8_t *ip, uint8_t proto,
			uint32_t src, uint32_t dst, size_t l4_len)
{
	uint16_t ck;

	ip[IPH_VHL] = 0x45;
	ip[IPH_TOS] = 0;
	st16(ip + IPH_TOTLEN, (uint16_t)(IPH_HLEN + l4_len));
	/* RFC 6864 4.1: with DF the ID need not be unique; a counter is free */
	st16(ip + IPH_ID, st->ip_id++);
	st16(ip + IPH_FRAG, IPH_DF);
	ip[IPH_TTL] = IPH_TTL_DEFAULT;
	ip[IPH_PROTO] = proto;
	st16(ip + IPH_CKSUM, 0);
	st32(ip + IPH_SRC, src);
	st32(ip + IPH_DST, dst);
	if (st->port_ops->tx_ip_cksum_offload)
		return NET_TX_IP_CKSUM;
	ck = (uint16_t)~csum_ip20(ip);     /* native order: stored as is */
	memcpy(ip + IPH_CKSUM, &ck, 2);
	return 0;
}

/* Fills the L4 checksum at l4 + off (TCP or UDP); returns NET_TX_* flags.
 * In software: one pass over header and data plus the pseudo-header, all
 * in native order, folded once and stored without a byte swap. */
static unsigned l4_cksum_fill(struct net_stack *st, uint8_t *l4, size_t len,
			      size_t off, uint8_t proto, uint32_t src,
			      uint32_t dst, unsigned offload_flag)
{
	uint16_t ck;

	if (st->port_ops->tx_l4_cksum_offload) {
		st16(l4 + off, pseudo_sum(src, dst, proto, (uint32_t)len));
		return offload_flag;
	}
	memset(l4 + off, 0, 2);
	ck = (uint16_t)~fold64(csum_acc(l4, len, csum_pseudo(src, dst, proto,
							     (uint16_t)len)));
	/* RFC 768: a computed 0 is sent as all ones (0 means "none"); both
	 * are the same in either byte order */
	if (proto == IPPROTO_UDP_ && ck == 0)
		ck = 0xffff;
	memcpy(l4 + off, &ck, 2);
	return 0;
}

/* Builds an ARP packet in f (>= ETH_HLEN + ARP_LEN bytes) and sends it. */
static void arp_send(struct net_stack *st, uint8_t *f, void *pkt, uint16_t op,
		     const uint8_t *eth_dst, const uint8_t *tha, uint32_t tpa)
{
	uint8_t *a = f + ETH_HLEN;

	eth_fill(st, f, eth_dst, ETHERTYPE_ARP);
	st16(a + ARP_HTYPE, 1);
	st16(a + ARP_PTYPE, ETHERTYPE_IPV4);
	a[ARP_HLEN] = 6;
	a[ARP_PLEN] = 4;
	st16(a + ARP_OP, op);
	memcpy(a + ARP_SHA, st->mac, 6);
	st32(a + ARP_SPA, st->ip);
	memcpy(a + ARP_THA, tha, 6);
	st32(a + ARP_TPA, tpa);
	st->port_ops->frame_send(st->port, pkt, ETH_HLEN + ARP_LEN, 0,
				 ETH_HLEN, 0);
	count_tx(st, ETH_HLEN + ARP_LEN);
	if (op == ARP_OP_REQUEST)
		st->c.arp_requests_out++;
	else
		st->c.arp_replies_out++;
}

/* A request for 'ip'. 'f'/'pkt' may be a buffer to reuse (>= 42 bytes). */
static void arp_request(struct net_stack *st, uint32_t ip, uint8_t *f,
			void *pkt)
{
	static const uint8_t zero[6];

	if (!f) {
		f = st->port_ops->frame_alloc(st->port, ETH_HLEN + ARP_LEN, &pkt);
		if (!f) {
			st->c.drop_tx_alloc++;
			return;
		}
	}
	arp_send(st, f, pkt, ARP_OP_REQUEST, mac_bcast, zero, ip);
}

/* ---- ARP cache ---------------------------------------------------------- */

static inline bool on_link(const struct net_stack *st, uint32_t ip)
{
	return (ip & st->netmask) == st->net;
}

static inline struct arp_entry *arp_set(const struct net_stack *st,
					uint32_t ip)
{
	/* Fibonacci hashing: the top bits of a golden-ratio product */
	uint32_t h = (uint32_t)(ip * 0x9e3779b1u);

	h = st->arp_shift >= 32 ? 0 : h >> st->arp_shift;
	return &st->arp[(size_t)h * ARP_WAYS];
}

/* The set lookup of arp_find; a hit becomes arp_hot. */
static struct arp_entry *arp_find_set(struct net_stack *st, uint32_t ip)
{
	struct arp_entry *e = arp_set(st, ip);

	for (unsigned i = 0; i < ARP_WAYS; i++) {
		if (e[i].state != ARP_FREE && e[i].ip == ip) {
			st->arp_hot = &e[i];
			return &e[i];
		}
	}
	return NULL;
}

/*
 * The entry of 'ip', or NULL. The entry found last is tried first: a
 * request's source is learnt and its reply resolved for the same address,
 * so the common case is one compare, inline. An address has at most one
 * entry (one is only created after a miss), so a stale arp_hot that now
 * holds another address, or none, just misses.
 */
static inline struct arp_entry *arp_find(struct net_stack *st, uint32_t ip)
{
	struct arp_entry *e = st->arp_hot;

	if (e->ip == ip && e->state != ARP_FREE)
		return e;
	return arp_find_set(st, ip);
}

/* A slot for a new entry of 'ip' (not present): free, else expired, else the
 * valid entry closest to expiry, never the gateway's unless nothing else. */
static struct arp_entry *arp_victim(struct net_stack *st, uint32_t ip)
{
	struct arp_entry *set = arp_set(st, ip), *best = NULL;
	uint64_t best_key = UINT64_MAX;

	for (unsigned i = 0; i < ARP_WAYS; i++) {
		struct arp_entry *e = &set[i];
		uint64_t key;

		if (e->state == ARP_FREE)
			return e;
		if (e->state == ARP_VALID)
			key = e->expires_us <= st->now ? 0 : e->expires_us;
		else
			key = e->retry_us;
		if (e->ip == st->gateway)
			key = UINT64_MAX;
		if (!best || key < best_key) {
			best = e;
			best_key = key;
		}
	}
	return best;
}

static void arp_arm(struct net_stack *st, struct arp_entry *e)
{
	e->retry_us = st->now + ARP_RETRY_US;
	if (e->retry_us < st->arp_next_due)
		st->arp_next_due = e->retry_us;
}

/* Records ip -> mac (an answer, or a frame from the host itself). 'create':
 * add the entry if absent (RFC 826 merge flag semantics). */
static void arp_learn(struct net_stack *st, uint32_t ip, const uint8_t *mac,
		      bool create)
{
	struct arp_entry *e = arp_find(st, ip);

	if (!e) {
		if (!create)
			return;
		e = arp_victim(st, ip);
		e->ip = ip;
	} else if (e->state == ARP_VALID && e->tries == 0 &&
		   memcmp(e->mac, mac, 6) == 0) {
		/* the common case on the per-frame path: one store */
		e->expires_us = st->now + st->arp_timeout_us;
		return;
	}
	memcpy(e->mac, mac, 6);
	e->state = ARP_VALID;
	e->tries = 0;
	e->expires_us = st->now + st->arp_timeout_us;
}

/*
 * The MAC to send to on-link 'ip', or NULL when unknown; a miss (or an entry
 * near its end of life) starts resolution, at most one request outstanding.
 * 'f'/'pkt': a frame the caller would drop on a miss, reusable for the
 * request; *used tells whether it was consumed.
 */
static const uint8_t *arp_resolve(struct net_stack *st, uint32_t ip,
				  uint8_t *f, void *pkt, bool *used)
{
	struct arp_entry *e = arp_find(st, ip);

	*used = false;
	if (e && e->state == ARP_VALID) {
		if (st->now < e->expires_us) {
			uint64_t refresh = e->expires_us - st->arp_timeout_us / 4;

			if (e->tries == 0 && st->now >= refresh) {
				e->tries = 1;
				arp_arm(st, e);
				arp_request(st, ip, NULL, NULL);
			}
			return e->mac;
		}
		e->state = ARP_PENDING;         /* expired: resolve again */
	}
	if (!e) {
		e = arp_victim(st, ip);
		e->ip = ip;
		e->state = ARP_PENDING;
		e->tries = 0;
	}
	if (e->tries == 0) {
		e->tries = 1;
		arp_arm(st, e);
		arp_request(st, ip, f, pkt);
		*used = f != NULL;
	}
	return NULL;
}

/* Next hop for 'dst': itself on link, else the gateway; 0 = unreachable. */
static inline uint32_t next_hop(const struct net_stack *st, uint32_t dst)
{
	return on_link(st, dst) ? dst : st->gateway;
}

/* Retries outstanding requests that are due; gives up after ARP_MAX_TRIES. */
static void arp_timers(struct net_stack *st)
{
	uint64_t next = UINT64_MAX;
	size_t n = (size_t)st->arp_sets * ARP_WAYS;

	/* Keep the gateway resolved and fresh even while nothing is sent to
	 * it, so the first answer to an off-link client is not lost. */
	if (st->gateway && st->now >= st->gw_next_try) {
		bool used;

		st->gw_next_try = st->now + ARP_GW_RETRY_US;
		arp_resolve(st, st->gateway, NULL, NULL, &used);
	}
	if (st->now < st->arp_next_due)
		return;
	for (size_t i = 0; i < n; i++) {
		struct arp_entry *e = &st->arp[i];

		if (e->state == ARP_FREE || e->tries == 0)
			continue;
		if (e->retry_us <= st->now) {
			if (e->tries >= ARP_MAX_TRIES) {
				/* no answer: a pending entry goes, a valid
				 * one lives out its time */
				e->tries = 0;
				if (e->state == ARP_PENDING)
					e->state = ARP_FREE;
				continue;
			}
			e->tries++;
			arp_request(st, e->ip, NULL, NULL);
			arp_arm(st, e);
		}
		if (e->retry_us < next)
			next = e->retry_us;
	}
	st->arp_next_due = next;
}

/* ---- TCP's struct tcp_io ------------------------------------------------ */

static uint8_t *io_seg_alloc(void *io, size_t len, void **pkt)
{
	struct net_stack *st = io;
	void *ppkt = NULL;
	uint8_t *f;

	if (len > NET_MTU - IPH_HLEN) {
		st->c.drop_tx_alloc++;
		return NULL;
	}
	f = st->port_ops->frame_alloc(st->port, HDRS_LEN + len, &ppkt);
	if (!f) {
		st->c.drop_tx_alloc++;
		return NULL;
	}
	/* the Ethernet header is written in seg_send: park the handle there */
	memcpy(f, &ppkt, sizeof(ppkt));
	*pkt = f;
	return f + HDRS_LEN;
}

static void io_seg_send(void *io, void *pkt, uint32_t local_ip,
			uint32_t remote_ip, size_t len)
{
	struct net_stack *st = io;
	uint8_t *f = pkt, *ip = f + ETH_HLEN, *tcp = ip + IPH_HLEN;
	uint32_t hop = next_hop(st, remote_ip);
	const uint8_t *mac = NULL;
	unsigned flags;
	void *ppkt;
	bool used = false;

	memcpy(&ppkt, f, sizeof(ppkt));
	if (hop)
		mac = arp_resolve(st, hop, f, ppkt, &used);
	if (!mac) {
		st->c.drop_no_arp++;
		if (used)
			return;
		if (st->port_ops->frame_free)
			st->port_ops->frame_free(st->port, ppkt);
		else    /* no way to give it back: a spare request is harmless */
			arp_request(st, hop ? hop : remote_ip, f, ppkt);
		return;
	}
	eth_fill(st, f, mac, ETHERTYPE_IPV4);
	flags = ip_fill(st, ip, IPPROTO_TCP_, local_ip, remote_ip, len);
	flags |= l4_cksum_fill(st, tcp, len, TCP_CKSUM, IPPROTO_TCP_, local_ip,
			       remote_ip, NET_TX_TCP_CKSUM);
	st->port_ops->frame_send(st->port, ppkt, HDRS_LEN + len, flags,
				 ETH_HLEN, IPH_HLEN);
	count_tx(st, HDRS_LEN + len);
}

static const struct tcp_io net_tcp_io = {
	.seg_alloc = io_seg_alloc,
	.seg_send = io_seg_send,
};

/* ---- create / destroy --------------------------------------------------- */

struct net_stack *net_stack_create(const struct net_stack_config *cfg,
				   const struct net_port *port_ops, void *port,
				   const struct net_app *app, void *app_arg,
				   uint64_t now_us)
{
	struct net_stack *st;
	unsigned entries, sets = 1, bits = 0;

	if (!cfg || !port_ops || !port_ops->frame_alloc ||
	    !port_ops->frame_send || cfg->ip == 0 || cfg->prefix_len > 32)
		return NULL;
	entries = cfg->arp_entries ? cfg->arp_entries : 1024;
	/* arp_timers() scans the whole table on the polling core */
	if (entries > (1u << 16))
		return NULL;
	while (sets * ARP_WAYS < entries) {
		sets <<= 1;
		bits++;
	}

	st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	memcpy(st->mac, cfg->mac, 6);
	st->ip = cfg->ip;
	st->netmask = cfg->prefix_len ? ~0u << (32 - cfg->prefix_len) : 0;
	st->net = st->ip & st->netmask;
	st->bcast = cfg->prefix_len < 31 ? st->net | ~st->netmask : 0;
	st->gateway = cfg->gateway;
	st->tcp_port = cfg->tcp_port;
	st->udp_port = cfg->udp_port;
	st->now = now_us;
	st->port_ops = port_ops;
	st->port = port;
	if (app)
		st->app = *app;
	st->app_arg = app_arg;
	st->arp_sets = sets;
	st->arp_shift = 32 - bits;
	st->arp_timeout_us = cfg->arp_timeout_us ? cfg->arp_timeout_us : 60000000u;
	st->arp_next_due = UINT64_MAX;
	st->gw_next_try = now_us;
	st->arp = calloc((size_t)sets * ARP_WAYS, sizeof(*st->arp));
	if (!st->arp)
		goto fail;
	st->arp_hot = st->arp;
	if (cfg->tcp_port) {
		struct tcp_config tc = cfg->tcp;

		tc.local_ip = cfg->ip;
		tc.listen_port = cfg->tcp_port;
		st->tcp = tcp_stack_create(&tc, &net_tcp_io, st, &st->app.tcp,
					   app_arg, now_us);
		if (!st->tcp)
			goto fail;
	}
	return st;
fail:
	free(st->arp);
	free(st);
	return NULL;
}

void net_stack_destroy(struct net_stack **stp)
{
	struct net_stack *st;

	if (!stp || !*stp)
		return;
	st = *stp;
	tcp_stack_destroy(&st->tcp);
	free(st->arp);
	free(st);
	*stp = NULL;
}

void net_stack_tick(struct net_stack *st, uint64_t now_us)
{
	if (now_us > st->now)
		st->now = now_us;
	arp_timers(st);
	if (st->tcp)
		tcp_stack_tick(st->tcp, now_us);
}

void net_stack_flush(struct net_stack *st)
{
	if (st->tcp)
		tcp_stack_flush(st->tcp);
}

const struct net_counters *net_stack_counters(const struct net_stack *st)
{
	return &st->c;
}

struct tcp_stack *net_stack_tcp(struct net_stack *st)
{
	return st->tcp;
}

/* ---- receive ------------------------------------------------------------ */

static void arp_input(struct net_stack *st, const uint8_t *f, size_t len,
		      unsigned rx_flags)
{
	const uint8_t *a = f + ETH_HLEN;
	/* A copy another core received (net_flow_owner() == -1) was counted
	 * and answered there: learn from it, count and answer nothing. */
	bool copy = rx_flags & NET_RX_LEARN_ONLY;
	uint32_t spa, tpa;
	uint16_t op;
	bool for_us;

	if (len < ETH_HLEN + ARP_LEN) {
		if (!copy)
			st->c.drop_runt++;
		return;
	}
	op = ld16(a + ARP_OP);
	if (ld16(a + ARP_HTYPE) != 1 || ld16(a + ARP_PTYPE) != ETHERTYPE_IPV4 ||
	    a[ARP_HLEN] != 6 || a[ARP_PLEN] != 4 ||
	    (op != ARP_OP_REQUEST && op != ARP_OP_REPLY) ||
	    mac_is_group(a + ARP_SHA)) {
		if (!copy)
			st->c.drop_arp_bad++;
		return;
	}
	spa = ld32(a + ARP_SPA);
	tpa = ld32(a + ARP_TPA);
	for_us = tpa == st->ip;
	/* RFC 826 "merge": refresh the sender if known; add it when the
	 * packet is aimed at us. Senders that are not on-link neighbours
	 * (0.0.0.0 probes of RFC 5227, broadcast, ourselves) are not learnt. */
	if (spa != 0 && spa != st->ip && spa != st->bcast && on_link(st, spa))
		arp_learn(st, spa, a + ARP_SHA, for_us);
	if (!for_us) {
		if (!copy)
			st->c.drop_not_for_us++;
		return;
	}
	if (op != ARP_OP_REQUEST || copy)
		return;
	st->c.arp_requests_in++;
	{
		void *pkt = NULL;
		uint8_t *r = st->port_ops->frame_alloc(st->port,
						       ETH_HLEN + ARP_LEN, &pkt);

		if (!r) {
			st->c.drop_tx_alloc++;
			return;
		}
		arp_send(st, r, pkt, ARP_OP_REPLY, a + ARP_SHA, a + ARP_SHA, spa);
	}
}

static void icmp_input(struct net_stack *st, const uint8_t *f,
		       const uint8_t *ip, const uint8_t *icmp, size_t len)
{
	uint32_t src = ld32(ip + IPH_SRC);
	uint8_t *r, *rip, *ricmp;
	void *pkt = NULL;
	uint16_t ck;

	if (len < ICMP_HLEN || icmp[0] != ICMP_ECHO || icmp[1] != 0 ||
	    net_cksum_partial(icmp, len, 0) != 0xffff ||
	    mac_is_group(f + ETH_SRC) || len > NET_MTU - IPH_HLEN) {
		/* other ICMP types are not answered either (RFC 1122 3.2.2) */
		st->c.drop_icmp_bad++;
		return;
	}
	r = st->port_ops->frame_alloc(st->port, HDRS_LEN + len, &pkt);
	if (!r) {
		st->c.drop_tx_alloc++;
		return;
	}
	st->c.icmp_echo++;
	/* RFC 792: back to the frame's sender (a router for off-link hosts),
	 * same identifier, sequence and data */
	eth_fill(st, r, f + ETH_SRC, ETHERTYPE_IPV4);
	rip = r + ETH_HLEN;
	ricmp = rip + IPH_HLEN;
	memcpy(ricmp, icmp, len);
	ricmp[0] = ICMP_ECHO_REPLY;
	st16(ricmp + 2, 0);
	ck = (uint16_t)~net_cksum_partial(ricmp, len, 0);
	st16(ricmp + 2, ck);
	/* rare: the IPv4 checksum in software whatever the port offers */
	rip[IPH_VHL] = 0x45;
	rip[IPH_TOS] = 0;
	st16(rip + IPH_TOTLEN, (uint16_t)(IPH_HLEN + len));
	st16(rip + IPH_ID, st->ip_id++);
	st16(rip + IPH_FRAG, IPH_DF);
	rip[IPH_TTL] = IPH_TTL_DEFAULT;
	rip[IPH_PROTO] = IPPROTO_ICMP_;
	st16(rip + IPH_CKSUM, 0);
	st32(rip + IPH_SRC, st->ip);
	st32(rip + IPH_DST, src);
	st16(rip + IPH_CKSUM, (uint16_t)~net_cksum_partial(rip, IPH_HLEN, 0));
	st->port_ops->frame_send(st->port, pkt, HDRS_LEN + len, 0, ETH_HLEN,
				 IPH_HLEN);
	count_tx(st, HDRS_LEN + len);
}

/* True when the L4 checksum is wrong (or the port says so). A correct sum
 * over pseudo-header, header and data is all ones (RFC 1071 2). */
static inline bool l4_cksum_bad(const uint8_t *ip, const uint8_t *l4,
				size_t len, uint8_t proto, unsigned rx_flags)
{
	if (rx_flags & NET_RX_L4_CKSUM_BAD)
		return true;
	if (rx_flags & NET_RX_L4_CKSUM_GOOD)
		return false;
	return fold64(csum_acc(l4, len, csum_pseudo(ld32(ip + IPH_SRC),
						    ld32(ip + IPH_DST), proto,
						    (uint16_t)len))) != 0xffff;
}

static void udp_input(struct net_stack *st, const uint8_t *ip,
		      const uint8_t *udp, size_t len, unsigned rx_flags)
{
	struct net_udp_peer peer;
	size_t ulen;

	if (len < UDP_HLEN) {
		st->c.drop_l4_short++;
		return;
	}
	/* RFC 768: the UDP length covers header and data; the IP payload
	 * may not be shorter */
	ulen = ld16(udp + 4);
	if (ulen < UDP_HLEN || ulen > len) {
		st->c.drop_l4_short++;
		return;
	}
	peer.local_port = ld16(udp + 2);
	if (!st->udp_port || peer.local_port != st->udp_port ||
	    !st->app.udp_datagram) {
		st->c.drop_udp_port++;
		return;
	}
	/* A zero checksum field means "not computed" (RFC 768), whatever a
	 * port's offload says of it (some NICs flag it bad). */
	if (ld16(udp + UDP_CKSUM) != 0 &&
	    l4_cksum_bad(ip, udp, ulen, IPPROTO_UDP_, rx_flags)) {
		st->c.drop_l4_cksum++;
		return;
	}
	peer.ip = ld32(ip + IPH_SRC);
	peer.port = ld16(udp);
	st->c.udp_in++;
	st->app.udp_datagram(st->app_arg, st, &peer, udp + UDP_HLEN,
			     ulen - UDP_HLEN);
}

static void tcp_seg_input(struct net_stack *st, const uint8_t *ip,
			  const uint8_t *tcp, size_t len, unsigned rx_flags)
{
	if (!st->tcp) {
		/* tcp_port == 0: no TCP service on this stack */
		st->c.drop_ip_proto++;
		return;
	}
	if (len < TCP_HLEN_MIN) {
		st->c.drop_l4_short++;
		return;
	}
	if (l4_cksum_bad(ip, tcp, len, IPPROTO_TCP_, rx_flags)) {
		st->c.drop_l4_cksum++;
		return;
	}
	tcp_input(st->tcp, ld32(ip + IPH_SRC), st->ip, tcp, len);
}

/* RFC 1122 3.2.1.3: addresses that may not be a source. */
static inline bool ip_src_bad(const struct net_stack *st, uint32_t src)
{
	return src == 0 || src == st->ip || src == st->bcast ||
	       (src >> 28) >= 0xe ||           /* multicast, class E, 255.255.255.255 */
	       (src >> 24) == 127;             /* loopback */
}

static void ipv4_input(struct net_stack *st, const uint8_t *f, size_t len,
		       unsigned rx_flags)
{
	const uint8_t *ip = f + ETH_HLEN;
	size_t hlen, totlen;
	uint32_t src;

	if (len < ETH_HLEN + IPH_HLEN) {
		st->c.drop_runt++;
		return;
	}
	if ((ip[IPH_VHL] >> 4) != 4) {
		st->c.drop_ip_version++;
		return;
	}
	hlen = (size_t)(ip[IPH_VHL] & 0xf) * 4;
	if (hlen < IPH_HLEN || ETH_HLEN + hlen > len) {
		st->c.drop_ip_hdr_len++;
		return;
	}
	if ((rx_flags & NET_RX_IP_CKSUM_BAD) ||
	    (!(rx_flags & NET_RX_IP_CKSUM_GOOD) &&
	     (hlen == IPH_HLEN ? csum_ip20(ip)
			       : fold64(csum_acc(ip, hlen, 0))) != 0xffff)) {
		st->c.drop_ip_cksum++;
		return;
	}
	totlen = ld16(ip + IPH_TOTLEN);
	/* anything after totlen is Ethernet padding (frames of < 60 bytes) */
	if (totlen < hlen || ETH_HLEN + totlen > len) {
		st->c.drop_ip_total_len++;
		return;
	}
	if (ld16(ip + IPH_FRAG) & (IPH_MF | IPH_OFFMASK)) {
		st->c.drop_ip_fragment++;
		return;
	}
	if (ld32(ip + IPH_DST) != st->ip) {
		st->c.drop_not_for_us++;
		return;
	}
	src = ld32(ip + IPH_SRC);
	if (ip_src_bad(st, src)) {
		st->c.drop_ip_src++;
		return;
	}
	/* the SYN (or request) teaches us where to send the answer */
	if (on_link(st, src) && !mac_is_group(f + ETH_SRC))
		arp_learn(st, src, f + ETH_SRC, true);
	if (rx_flags & NET_RX_LEARN_ONLY)
		return;

	switch (ip[IPH_PROTO]) {
	case IPPROTO_TCP_:
		tcp_seg_input(st, ip, ip + hlen, totlen - hlen, rx_flags);
		break;
	case IPPROTO_UDP_:
		udp_input(st, ip, ip + hlen, totlen - hlen, rx_flags);
		break;
	case IPPROTO_ICMP_:
		icmp_input(st, f, ip, ip + hlen, totlen - hlen);
		break;
	default:
		st->c.drop_ip_proto++;
		break;
	}
}

void net_stack_input(struct net_stack *st, const uint8_t *frame, size_t len,
		     unsigned rx_flags)
{
	uint16_t type;

	if (!(rx_flags & NET_RX_LEARN_ONLY)) {  /* a copy: counted where it arrived */
		st->c.rx_frames++;
		st->c.rx_bytes += len;
	}
	if (len < ETH_HLEN) {
		st->c.drop_runt++;
		return;
	}
	type = ld16(frame + ETH_TYPE);
	if (type == ETHERTYPE_IPV4) {
		/* unicast to us only: no IPv4 broadcast or multicast service */
		if (memcmp(frame + ETH_DST, st->mac, 6) != 0) {
			st->c.drop_not_for_us++;
			return;
		}
		ipv4_input(st, frame, len, rx_flags);
	} else if (type == ETHERTYPE_ARP) {
		if (memcmp(frame + ETH_DST, st->mac, 6) != 0 &&
		    memcmp(frame + ETH_DST, mac_bcast, 6) != 0) {
			st->c.drop_not_for_us++;
			return;
		}
		arp_input(st, frame, len, rx_flags);
	} else {
		st->c.drop_ethertype++;
	}
}

/* ---- UDP output --------------------------------------------------------- */

int net_udp_send(struct net_stack *st, const struct net_udp_peer *peer,
		 const void *data, size_t len)
{
	uint32_t hop;
	const uint8_t *mac;
	uint8_t *f, *udp;
	void *pkt = NULL;
	unsigned flags;
	bool used;

	if (len > NET_MTU - IPH_HLEN - UDP_HLEN)
		return -EMSGSIZE;
	hop = next_hop(st, peer->ip);
	mac = hop ? arp_resolve(st, hop, NULL, NULL, &used) : NULL;
	if (!mac) {
		st->c.drop_no_arp++;
		return -EHOSTUNREACH;
	}
	f = st->port_ops->frame_alloc(st->port, HDRS_LEN + UDP_HLEN + len, &pkt);
	if (!f) {
		st->c.drop_tx_alloc++;
		return -ENOBUFS;
	}
	udp = f + HDRS_LEN;
	eth_fill(st, f, mac, ETHERTYPE_IPV4);
	flags = ip_fill(st, f + ETH_HLEN, IPPROTO_UDP_, st->ip, peer->ip,
			UDP_HLEN + len);
	st16(udp, st->udp_port);
	st16(udp + 2, peer->port);
	st16(udp + 4, (uint16_t)(UDP_HLEN + len));
	if (len)
		memcpy(udp + UDP_HLEN, data, len);
	flags |= l4_cksum_fill(st, udp, UDP_HLEN + len, UDP_CKSUM, IPPROTO_UDP_,
			       st->ip, peer->ip, NET_TX_UDP_CKSUM);
	st->port_ops->frame_send(st->port, pkt, HDRS_LEN + UDP_HLEN + len,
				 flags, ETH_HLEN, IPH_HLEN);
	count_tx(st, HDRS_LEN + UDP_HLEN + len);
	st->c.udp_out++;
	return 0;
}

/* ---- flow steering ------------------------------------------------------ */

/*
 * Runs on every frame when the NIC has no RSS: a handful of bounds-checked
 * loads and one 64-bit multiply-xorshift mix (the murmur3 finaliser
 * constants). The core index comes from the high half of hash * ncores
 * (Lemire's range reduction): as uniform as '%', without a division.
 */
int net_flow_owner(const uint8_t *frame, size_t len, unsigned ncores)
{
	const uint8_t *ip = frame + ETH_HLEN;
	uint64_t k;
	size_t hlen;
	uint16_t type;

	if (len < ETH_HLEN || ncores == 0)
		return 0;
	type = ld16(frame + ETH_TYPE);
	if (type == ETHERTYPE_ARP)
		return -1;
	if (type != ETHERTYPE_IPV4 || len < ETH_HLEN + IPH_HLEN || ncores == 1)
		return 0;
	hlen = (size_t)(ip[IPH_VHL] & 0xf) * 4;
	if ((ip[IPH_VHL] >> 4) != 4 || hlen < IPH_HLEN ||
	    (ip[IPH_PROTO] != IPPROTO_TCP_ && ip[IPH_PROTO] != IPPROTO_UDP_) ||
	    (ld16(ip + IPH_FRAG) & (IPH_MF | IPH_OFFMASK)) ||
	    ETH_HLEN + hlen + 4 > len)
		return 0;
	k = ((uint64_t)ld32(ip + IPH_SRC) << 32 | ld32(ip + IPH_DST)) ^
	    ((uint64_t)ld32(ip + hlen) * 0x9e3779b97f4a7c15ull);
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	k ^= k >> 33;
	return (int)(((k >> 32) * (uint64_t)ncores) >> 32);
}
