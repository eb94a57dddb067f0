/*
 * dataplane/net/stack.h - one polling core's network stack above the port:
 * Ethernet, ARP, IPv4 (+ ICMP echo), UDP, and TCP (tcp.h).
 *
 * Like tcp.h, it knows nothing of DPDK: frames come in as (pointer, length,
 * receive flags) and go out through a struct net_port, so unit tests and the
 * stack fuzzer drive it with plain byte arrays. The DPDK backend
 * (dataplane/net/dpdk.c) implements struct net_port over mbufs.
 *
 * Per core, share nothing: the ARP cache, the counters and the TCP stack are
 * this core's. The backend steers each flow to one core (net_flow_owner) before
 * calling net_stack_input.
 *
 * Every malformed or unwanted frame is dropped and counted under a reason
 * (NET_DROP_REASONS); nothing from the wire can crash or assert.
 */
#ifndef DPCACHE_NET_STACK_H
#define DPCACHE_NET_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/net/tcp.h"

struct net_stack;

/* Receive flags, from the port's checksum offload. */
#define NET_RX_IP_CKSUM_GOOD  (1u << 0)   /* IPv4 header checksum verified */
#define NET_RX_L4_CKSUM_GOOD  (1u << 1)   /* TCP/UDP checksum verified */
#define NET_RX_IP_CKSUM_BAD   (1u << 2)
#define NET_RX_L4_CKSUM_BAD   (1u << 3)
/* A copy of an ARP frame another core received (net_flow_owner() == -1):
 * learn from it, answer nothing. */
#define NET_RX_LEARN_ONLY     (1u << 4)

/* Transmit flags: ask the port to fill checksums. The stack has already put
 * the pseudo-header sum in the L4 checksum field, as NICs expect. */
#define NET_TX_IP_CKSUM       (1u << 0)
#define NET_TX_TCP_CKSUM      (1u << 1)
#define NET_TX_UDP_CKSUM      (1u << 2)

/* The port below one core's stack. */
struct net_port {
	/* Room for one frame of 'len' bytes; *pkt gets a handle for
	 * frame_send. NULL when out of buffers (the frame is counted lost). */
	uint8_t *(*frame_alloc)(void *port, size_t len, void **pkt);
	/* Queues the frame for the TX burst. l2_len/l3_len are the header
	 * lengths, for offload. */
	void (*frame_send)(void *port, void *pkt, size_t len, unsigned tx_flags,
			   unsigned l2_len, unsigned l3_len);
	bool tx_ip_cksum_offload;     /* port can fill IPv4 header checksums */
	bool tx_l4_cksum_offload;     /* port can fill TCP/UDP checksums */
	/* Gives back a frame from frame_alloc that will not be sent (a TCP
	 * segment whose peer MAC is unknown). May be NULL: the stack then
	 * turns the buffer into a (redundant) ARP request instead. */
	void (*frame_free)(void *port, void *pkt);
};

/* A UDP peer, host byte order. */
struct net_udp_peer {
	uint32_t ip;
	uint16_t port;
	uint16_t local_port;
};

/* The application above the stack: TCP callbacks (tcp.h) and UDP. */
struct net_app {
	struct tcp_app tcp;
	/* One datagram for the UDP service port. Reply with net_udp_send
	 * (zero or more times) before returning. */
	void (*udp_datagram)(void *arg, struct net_stack *st,
			     const struct net_udp_peer *peer,
			     const uint8_t *data, size_t len);
};

struct net_stack_config {
	uint8_t mac[6];             /* our MAC */
	uint32_t ip;                /* our address, host order */
	uint8_t prefix_len;         /* on-link subnet: ip/prefix_len */
	uint32_t gateway;           /* host order; 0 = none (off-link peers unreachable) */
	uint16_t tcp_port;          /* 0 = no TCP service */
	uint16_t udp_port;          /* 0 = no UDP service */
	unsigned arp_entries;       /* ARP cache size, at most 65536; 0 = 1024 */
	uint32_t arp_timeout_us;    /* entry lifetime; 0 = 60 s */
	struct tcp_config tcp;      /* local_ip and listen_port are filled from
				     * ip and tcp_port */
};

#define NET_DROP_REASONS(X)                                                   \
	X(drop_runt, "frame shorter than its headers")                       \
	X(drop_not_for_us, "destination MAC or IPv4 address not ours")       \
	X(drop_ethertype, "neither IPv4 nor ARP (IPv6, VLAN, ...)")          \
	X(drop_arp_bad, "malformed or unsupported ARP")                      \
	X(drop_ip_version, "IPv4 version field not 4")                       \
	X(drop_ip_hdr_len, "IPv4 header length < 20 or beyond the frame")    \
	X(drop_ip_total_len, "IPv4 total length beyond the frame or short")  \
	X(drop_ip_cksum, "IPv4 header checksum wrong")                       \
	X(drop_ip_fragment, "IPv4 fragments (not reassembled)")              \
	X(drop_ip_proto, "IPv4 protocol other than ICMP, TCP, UDP")          \
	X(drop_ip_src, "source address broadcast, multicast or ours")       \
	X(drop_icmp_bad, "malformed ICMP or checksum wrong")                 \
	X(drop_l4_cksum, "TCP or UDP checksum wrong")                        \
	X(drop_l4_short, "TCP or UDP header beyond the IPv4 payload")        \
	X(drop_udp_port, "UDP to a port we do not serve")                    \
	X(drop_no_arp, "reply not sent: peer MAC unknown")                   \
	X(drop_tx_alloc, "frame not sent: no buffer")

#define NET_COUNTERS(X)                                                       \
	X(rx_frames, "frames received")                                      \
	X(tx_frames, "frames sent")                                          \
	X(rx_bytes, "bytes received")                                        \
	X(tx_bytes, "bytes sent")                                            \
	X(arp_requests_in, "ARP requests received for us")                   \
	X(arp_replies_out, "ARP replies sent")                               \
	X(arp_requests_out, "ARP requests sent")                             \
	X(icmp_echo, "ICMP echo requests answered")                          \
	X(udp_in, "UDP datagrams to the service port")                       \
	X(udp_out, "UDP datagrams sent")                                     \
	NET_DROP_REASONS(X)

struct net_counters {
#define NET_COUNTER_FIELD(name, desc) uint64_t name;
	NET_COUNTERS(NET_COUNTER_FIELD)
#undef NET_COUNTER_FIELD
};

/* NULL on bad config or no memory. Any thread; then used by one. */
struct net_stack *net_stack_create(const struct net_stack_config *cfg,
				   const struct net_port *port_ops, void *port,
				   const struct net_app *app, void *app_arg,
				   uint64_t now_us);
/* Accepts NULL; sets *st to NULL. No callbacks. */
void net_stack_destroy(struct net_stack **st);

/* Sets "now" (microseconds) and runs due timers (TCP, ARP retries). */
void net_stack_tick(struct net_stack *st, uint64_t now_us);

/* One received frame (Ethernet header first). The caller still owns the
 * bytes after the call. rx_flags: NET_RX_*. */
void net_stack_input(struct net_stack *st, const uint8_t *frame, size_t len,
		     unsigned rx_flags);

/* End of a polling iteration: TCP output (tcp_stack_flush). */
void net_stack_flush(struct net_stack *st);

/* Sends one UDP datagram from our UDP service port to 'peer'. Returns 0,
 * -EMSGSIZE (over one frame: no IP fragmentation), -EHOSTUNREACH (no ARP
 * entry yet; an ARP request goes out), or -ENOBUFS. */
int net_udp_send(struct net_stack *st, const struct net_udp_peer *peer,
		 const void *data, size_t len);

const struct net_counters *net_stack_counters(const struct net_stack *st);
struct tcp_stack *net_stack_tcp(struct net_stack *st);

/* ---- flow steering ------------------------------------------------------ */

/*
 * Which of 'ncores' cores owns the flow of this frame: a hash of the TCP or
 * UDP 4-tuple, the same on every core, so a segment that arrived on the wrong
 * queue is handed to its owner instead of being answered with RST. Returns:
 *   -1  an ARP frame: every core keeps its own ARP cache, so the receiving
 *       core processes it and hands a copy to each other core, which inputs
 *       it with NET_RX_LEARN_ONLY;
 *   0   anything else that is not TCP or UDP over IPv4 (ICMP, garbage);
 *   else the owning core index in [0, ncores).
 * Never reads beyond len.
 */
int net_flow_owner(const uint8_t *frame, size_t len, unsigned ncores);

/* ---- internet checksum (RFC 1071), exposed for the backend and tests --- */

/* One's-complement sum of a buffer, folded to 16 bits, not inverted. 'sum'
 * and the result are host-order values (the sum of the big-endian 16-bit
 * words): store ~result with htons. Any length and alignment. */
uint16_t net_cksum_partial(const void *data, size_t len, uint32_t sum);

#endif /* DPCACHE_NET_STACK_H */
