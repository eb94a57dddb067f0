/*
 * dataplane/net/dpdk.c - the DPDK backend: EAL, ports, queues, polling
 * lcores, flow steering.
 *
 * Design note.
 *
 * Layout. EAL's main lcore (our main thread) does the slow work and never
 * polls; every other lcore ("worker" i) polls one RX/TX queue pair: queue
 * i of the only port, or queue 0 of port i when there is one port per
 * worker (one af_xdp vdev per queue). Each worker owns a mempool on its
 * socket, its TX array, its net_stack (stack.h) with the memcached sessions
 * above it (serve.c), and an MPSC rte_ring of frames other workers hand it.
 * Nothing else is shared but the -c counter and the stop flag.
 *
 * Steering. A TCP flow must meet the same per-core connection table for its
 * whole life. With RSS (the NIC hashes IPv4 TCP/UDP with our fixed
 * symmetric key, the RETA spreads the hash over the queues), the queue a
 * frame arrives on is its owner. Without (af_packet, af_xdp, tap, memif,
 * ring: none fills mbuf->hash.rss, and af_xdp may move a retransmitted flow
 * to another queue), every frame but ARP goes through net_flow_owner() and one
 * owned by another worker is handed to that worker's ring (a handoff).
 * ARP frames (told by their EtherType, never hashed) are wanted by every
 * worker (each keeps its own ARP cache): the receiver processes the frame
 * and hands one reference per other worker (rte_mbuf_refcnt_update). Only
 * ARP copies and owned frames travel the rings, so the owner inputs a
 * handed frame without hashing it again: an ARP one to learn from only
 * (NET_RX_LEARN_ONLY). Handoffs are staged per owner during an RX burst and
 * enqueued once per owner after it; what a full ring refuses is dropped
 * and counted; TCP recovers.
 *
 * The loop, run to completion: tick (timers), RX burst, fault injector,
 * input or stage each frame (the stack copies what it keeps, so the burst's
 * mbufs are freed in bulk right after it), the handoff enqueues, drain the
 * ring (a bounded number of bursts, enough to keep up with every other
 * worker's RX), resume yielded connections, flush TCP output, fault
 * injector, TX burst (the remainder retried a few times, then freed and
 * counted), quiescent state. With --poll-idle-us, a run of empty iterations
 * sleeps, offline for RCU. Time is timer cycles times a precomputed
 * multiplier (dp_now_us), no division.
 *
 * Mbufs. A worker's pool feeds its RX queue and its TX frames. A handed-off
 * frame is freed by the owner into the receiver's pool (m->pool), through
 * the owner's cache of that pool: nothing is lost, but it makes the pool's
 * ring cycle through every mbuf, so every mbuf must be usable by the PMD
 * (see pool_create for af_xdp, whose UMEM is the pool). pool_mbufs() covers
 * the worst case we can hold at once: af_xdp's fill ring (2048), the TX
 * ring (NB_TXD) and completions not yet reaped, our handoff ring
 * (RING_SIZE), 1.5 * POOL_CACHE in the cache of every lcore that frees into
 * the pool (all of them, with software steering), bursts, TX array and
 * fault holds; 'stats dataplane' shows mbufs_free/mbufs_in_use per pool and
 * each port's rx_nombuf/rx_missed.
 *
 * Counters are plain uint64 written by their lcore only and read by the
 * lcore that serves 'stats dataplane'; every object they live in outlives
 * the lcores (freed by dp_dpdk_destroy, after rte_eal_mp_wait_lcore).
 */
#include "dataplane/net/dpdk.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "cache/cache.h"
#include "dataplane/net/stack.h"
#include "dataplane/net/tcp.h"

#define DP_LOG_PREFIX "dpdk: "   /* dataplane/dp_log.h: off the hot path */
#include "dataplane/dp_log.h"

#define RX_BURST      32
#define RX_CAP        128           /* RX burst + fault dups and released holds */
#define TX_FLUSH_AT   32            /* frames queued before a mid-iteration burst */
#define TX_CAP        128
#define TX_RETRIES    4
#define FAULT_HELD    32            /* frames a fault injector may hold */
#define NB_RXD        1024
#define NB_TXD        1024
#define RING_SIZE     1024          /* handoff ring per worker */
#define POOL_MBUFS    8191          /* per worker, at least: see pool_mbufs() */
#define POOL_CACHE    256
#define IDLE_POLLS    16            /* empty iterations before a sleep */
#define PORT_MTU      1500

/* The symmetric Toeplitz key: 0x6d5a repeated makes hash(a,b) == hash(b,a). */
#define RSS_KEY_MAX   64

#define DP_LCORE_COUNTERS(X)                                                   \
	X(rx_multiseg_drops, "multi-segment frames dropped")                  \
	X(handoffs_out, "frames handed to the owning lcore's ring")           \
	X(handoffs_in, "frames taken from this lcore's ring")                 \
	X(handoff_drops, "frames dropped: the owner's ring was full")         \
	X(arp_copies_out, "ARP frame references given to other lcores")       \
	X(tx_drops, "frames dropped: TX queue still full after retries")      \
	X(tx_oversize, "frames dropped: sent longer than allocated")          \
	X(idle_sleeps, "sleeps after a run of empty polls")

struct dp_lcore_counters {
#define DP_LCORE_FIELD(name, desc) uint64_t name;
	DP_LCORE_COUNTERS(DP_LCORE_FIELD)
#undef DP_LCORE_FIELD
};

enum dp_steering {
	DP_STEER_NONE,      /* one worker: nothing to steer */
	DP_STEER_RSS,       /* the NIC's RSS: the queue is the owner */
	DP_STEER_SOFT,      /* net_flow_owner() and ring handoffs */
};

static const char *const steering_names[] = { "none", "rss", "software" };

struct dp_dpdk;

/* Frames one RX burst hands to one other worker: at most one entry per
 * frame (RX_CAP), enqueued at the end of the burst. */
struct dp_handoff {
	unsigned n;
	unsigned arp;                 /* of which ARP copies */
	struct rte_mbuf *m[RX_CAP];
};

/* One polling lcore; only it writes here, except as noted. */
struct dp_lcore {
	struct dp_dpdk *d;
	unsigned idx;                 /* worker index, 0.. */
	unsigned lcore_id;
	uint16_t port_id, queue_id;
	struct net_port port_ops;     /* with this port's offload flags */
	struct rte_mempool *pool;
	struct rte_ring *ring;        /* MPSC: any worker enqueues, we dequeue */
	struct dp_handoff *ho;        /* [nworkers]: staged for their rings */
	bool ho_staged;
	unsigned drain_max;           /* ring frames input per iteration, at most */
	struct net_stack *st;         /* set before 'state' goes 1 */
	struct dp_serve *sv;
	struct cache_thread *ct;
	struct fault *rx_fault, *tx_fault;
	uint64_t now_us;
	unsigned ntx;
	struct rte_mbuf *tx[TX_CAP];
	int state;                    /* atomic: 0 starting, 1 serving, -errno failed */
	struct dp_lcore_counters ctr;
	struct dp_serve_counters serve_ctr;
} __rte_cache_aligned;

struct dp_dpdk {
	struct dp_dpdk_config cfg;
	char fault_spec[128];
	bool eal_ready;
	uint16_t ports[RTE_MAX_ETHPORTS];
	bool port_started[RTE_MAX_ETHPORTS];
	unsigned nports;
	unsigned nworkers;
	unsigned queues_per_port;
	enum dp_steering steering;
	bool rx_cksum, tx_ip_cksum, tx_l4_cksum;   /* of port 0, for stats */
	uint64_t hz;
	uint64_t us_mult;             /* dp_now_us() */
	unsigned us_shift;
	uint8_t isn_key[16];
	int stop;                     /* atomic */
	bool launched;
	struct dp_serve_shared shared;
	struct dp_lcore *lcores;
};

/* Single writer; stats readers on other lcores use plain loads. */
#define LC_INC(lc, name, n) \
	__atomic_store_n(&(lc)->ctr.name, (lc)->ctr.name + (n), __ATOMIC_RELAXED)

/*
 * Microseconds from timer cycles without a division on the polling path:
 * us = floor(c * us_mult / 2^us_shift), us_mult = floor(10^6 * 2^us_shift /
 * hz) (us_shift 64 when hz > 1 MHz, so the product's high half is one
 * multiply). The truncated multiplier reads low by less than c / 2^us_shift
 * ticks, under 1 us for any 64-bit cycle count; monotonic like c.
 */
static inline uint64_t dp_now_us(const struct dp_dpdk *d)
{
	return (uint64_t)(((unsigned __int128)rte_get_timer_cycles() *
			   d->us_mult) >> d->us_shift);
}

static void dp_clock_init(struct dp_dpdk *d)
{
	d->hz = rte_get_timer_hz();
	if (d->hz == 0)
		d->hz = 1;
	d->us_shift = d->hz > 1000000 ? 64 : 32;
	d->us_mult = (uint64_t)(((unsigned __int128)1000000 << d->us_shift) /
				d->hz);
}

/* ---- the port below one stack (struct net_port) ------------------------- */

static void lcore_tx_flush(struct dp_lcore *lc);

static uint8_t *port_frame_alloc(void *port, size_t len, void **pkt)
{
	struct dp_lcore *lc = port;
	struct rte_mbuf *m;
	char *p;

	if (len > UINT16_MAX)
		return NULL;
	m = rte_pktmbuf_alloc(lc->pool);
	if (m == NULL)
		return NULL;
	p = rte_pktmbuf_append(m, (uint16_t)len);
	if (p == NULL) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	*pkt = m;
	return (uint8_t *)p;
}

static void port_frame_send(void *port, void *pkt, size_t len,
			    unsigned tx_flags, unsigned l2_len, unsigned l3_len)
{
	struct dp_lcore *lc = port;
	struct rte_mbuf *m = pkt;

	if (unlikely(len > m->data_len)) {
		LC_INC(lc, tx_oversize, 1);
		rte_pktmbuf_free(m);
		return;
	}
	if (len < m->data_len)
		rte_pktmbuf_trim(m, (uint16_t)(m->data_len - len));
	if (tx_flags != 0) {
		uint64_t ol = RTE_MBUF_F_TX_IPV4;

		if (tx_flags & NET_TX_IP_CKSUM)
			ol |= RTE_MBUF_F_TX_IP_CKSUM;
		if (tx_flags & NET_TX_TCP_CKSUM)
			ol |= RTE_MBUF_F_TX_TCP_CKSUM;
		else if (tx_flags & NET_TX_UDP_CKSUM)
			ol |= RTE_MBUF_F_TX_UDP_CKSUM;
		m->ol_flags |= ol;
		m->l2_len = l2_len;
		m->l3_len = l3_len;
	}
	lc->tx[lc->ntx++] = m;
	if (lc->ntx >= TX_FLUSH_AT)
		lcore_tx_flush(lc);
}

static void port_frame_free(void *port, void *pkt)
{
	rte_pktmbuf_free(pkt);
}

/* The fault injector's view of mbufs. */
static void *fault_copy_mbuf(void *arg, void *pkt)
{
	struct dp_lcore *lc = arg;

	return rte_pktmbuf_copy(pkt, lc->pool, 0, UINT32_MAX);
}

static void fault_free_mbuf(void *arg, void *pkt)
{
	rte_pktmbuf_free(pkt);
}

static const struct fault_ops dp_fault_ops = {
	.copy = fault_copy_mbuf,
	.free = fault_free_mbuf,
};

/* ---- mbuf pools ----------------------------------------------------------- */

/*
 * net_af_xdp (DPDK 22.11, built with XDP_UMEM_UNALIGNED_CHUNK_FLAG) makes the
 * RX queue's mempool the socket's UMEM: it registers populated_size * object
 * size bytes from the page that holds the pool's first memory chunk, and
 * tells the kernel every mbuf (fill ring, TX ring) by its offset there. That
 * holds only if the objects lie back to back in one chunk. A pool made by
 * rte_pktmbuf_pool_create() keeps every object within one page for IOVA
 * contiguity; with --no-huge a page is 4 KiB, so each ~2.4 KiB mbuf gets a
 * page of its own and ~40% of the pool lies beyond the UMEM (with 2 MiB
 * pages, the last few mbufs). The kernel skips fill and TX descriptors
 * outside the UMEM without a word: the mbuf never comes back and a TX frame
 * is never sent. Those mbufs are reached only once cache flushes and
 * refills walk the pool's ring (one lcore freeing another's RX mbufs after a
 * handoff does exactly that), so the server goes quiet under load.
 *
 * So an af_xdp port's pool is packed (RTE_MEMPOOL_F_NO_IOVA_CONTIG: af_xdp
 * never hands a device an mbuf's IOVA; the kernel copies, or in zero-copy
 * mode maps the UMEM itself), and pool_outside_umem() checks, before the
 * queue is set up, the layout the PMD assumes: a pool in more than one
 * chunk is a startup error rather than a server that stalls later.
 */
/* Mbufs of one worker's pool: what the design note says can be held at
 * once, at least POOL_MBUFS. Each lcore's cache of the pool grows with the
 * number of lcores freeing into it, so the pool does too. */
static unsigned pool_mbufs(unsigned nworkers)
{
	unsigned held = 2048 + NB_TXD + RING_SIZE +
			(nworkers + 1) * (POOL_CACHE * 3 / 2) + 1024;

	return held > POOL_MBUFS ? held : POOL_MBUFS;
}

static struct rte_mempool *pool_create(const char *name, unsigned n,
				       int socket, bool packed)
{
	struct rte_pktmbuf_pool_private priv;
	struct rte_mempool *mp;
	int rc;

	if (!packed)
		return rte_pktmbuf_pool_create(name, n, POOL_CACHE, 0,
					       RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	memset(&priv, 0, sizeof(priv));
	priv.mbuf_data_room_size = RTE_MBUF_DEFAULT_BUF_SIZE;
	mp = rte_mempool_create_empty(name, n,
				      sizeof(struct rte_mbuf) +
				      RTE_MBUF_DEFAULT_BUF_SIZE, POOL_CACHE,
				      sizeof(priv), socket,
				      RTE_MEMPOOL_F_NO_IOVA_CONTIG);
	if (mp == NULL)
		return NULL;
	rc = rte_mempool_set_ops_byname(mp, rte_mbuf_best_mempool_ops(), NULL);
	if (rc != 0)
		goto fail;
	rte_pktmbuf_pool_init(mp, &priv);
	rc = rte_mempool_populate_default(mp);
	if (rc < 0)
		goto fail;
	rte_mempool_obj_iter(mp, rte_pktmbuf_init, NULL);
	return mp;
fail:
	rte_mempool_free(mp);
	rte_errno = rc < 0 ? -rc : rc;
	return NULL;
}

struct umem_span {
	uintptr_t start, end;         /* [start, end): what af_xdp registers */
	size_t frame;                 /* header + element + trailer */
	unsigned outside;
};

static void umem_check_obj(struct rte_mempool *mp, void *arg, void *obj,
			   unsigned idx)
{
	struct umem_span *u = arg;
	uintptr_t first = (uintptr_t)obj - mp->header_size;

	(void)idx;
	if (first < u->start || first + u->frame > u->end)
		u->outside++;
}

/* The number of mbufs of mp that af_xdp's UMEM would not cover (0: fits). */
static unsigned pool_outside_umem(struct rte_mempool *mp)
{
	struct rte_mempool_memhdr *first = STAILQ_FIRST(&mp->mem_list);
	struct umem_span u;

	if (first == NULL)
		return mp->populated_size;
	u.frame = rte_mempool_calc_obj_size(mp->elt_size, mp->flags, NULL);
	u.start = (uintptr_t)first->addr;
	u.end = u.start + (uintptr_t)mp->populated_size * u.frame;
	u.outside = 0;
	rte_mempool_obj_iter(mp, umem_check_obj, &u);
	return u.outside;
}

static bool port_is_af_xdp(uint16_t port)
{
	struct rte_eth_dev_info info;

	return rte_eth_dev_info_get(port, &info) == 0 &&
	       info.driver_name != NULL &&
	       strcmp(info.driver_name, "net_af_xdp") == 0;
}

/* ---- the polling loop --------------------------------------------------- */

/* Sends lc->tx; what the queue refuses after TX_RETRIES bursts is dropped. */
static void lcore_tx_flush(struct dp_lcore *lc)
{
	unsigned n = lc->ntx, sent = 0;

	lc->ntx = 0;
	if (lc->tx_fault != NULL)
		n = fault_apply(lc->tx_fault, (void **)lc->tx, n, TX_CAP,
				lc->now_us);
	for (int i = 0; i < TX_RETRIES && sent < n; i++)
		sent += rte_eth_tx_burst(lc->port_id, lc->queue_id,
					 lc->tx + sent, (uint16_t)(n - sent));
	if (unlikely(sent < n)) {
		LC_INC(lc, tx_drops, n - sent);
		rte_pktmbuf_free_bulk(lc->tx + sent, n - sent);
	}
}

static inline unsigned rx_flags(const struct rte_mbuf *m)
{
	uint64_t ip = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	uint64_t l4 = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
	unsigned f = 0;

	if (ip == RTE_MBUF_F_RX_IP_CKSUM_GOOD)
		f |= NET_RX_IP_CKSUM_GOOD;
	else if (ip == RTE_MBUF_F_RX_IP_CKSUM_BAD)
		f |= NET_RX_IP_CKSUM_BAD;
	if (l4 == RTE_MBUF_F_RX_L4_CKSUM_GOOD)
		f |= NET_RX_L4_CKSUM_GOOD;
	else if (l4 == RTE_MBUF_F_RX_L4_CKSUM_BAD)
		f |= NET_RX_L4_CKSUM_BAD;
	return f;
}

/* An ARP frame (RTE_ETHER_TYPE_ARP): every worker wants it. Only ARP copies
 * travel the rings besides owned frames, so this also tells a copy from a
 * handed-off frame on the owner, without hashing it again. */
static inline bool frame_is_arp(const struct rte_mbuf *m)
{
	uint16_t type;

	if (m->data_len < RTE_ETHER_HDR_LEN)
		return false;
	memcpy(&type, rte_pktmbuf_mtod_offset(m, const uint8_t *,
					      offsetof(struct rte_ether_hdr,
						       ether_type)),
	       sizeof(type));
	return type == RTE_BE16(RTE_ETHER_TYPE_ARP);
}

/* Stages m for worker j's ring; enqueued by handoff_flush(). */
static inline void handoff_stage(struct dp_lcore *lc, unsigned j,
				 struct rte_mbuf *m, bool arp)
{
	struct dp_handoff *ho = &lc->ho[j];

	ho->m[ho->n++] = m;
	ho->arp += arp;
	lc->ho_staged = true;
}

/* One enqueue per owner for what one RX burst staged. The ring takes a
 * prefix; the rest is freed (one reference each) and counted. */
static void handoff_flush(struct dp_lcore *lc)
{
	struct dp_dpdk *d = lc->d;

	for (unsigned j = 0; j < d->nworkers; j++) {
		struct dp_handoff *ho = &lc->ho[j];
		unsigned k, arp = ho->arp;

		if (ho->n == 0)
			continue;
		k = rte_ring_mp_enqueue_burst(d->lcores[j].ring, (void **)ho->m,
					      ho->n, NULL);
		if (unlikely(k < ho->n)) {
			for (unsigned i = k; i < ho->n; i++)
				arp -= frame_is_arp(ho->m[i]);
			LC_INC(lc, handoff_drops, ho->n - k);
			rte_pktmbuf_free_bulk(ho->m + k, ho->n - k);
		}
		if (arp > 0)
			LC_INC(lc, arp_copies_out, arp);
		if (k > arp)
			LC_INC(lc, handoffs_out, k - arp);
		ho->n = 0;
		ho->arp = 0;
	}
	lc->ho_staged = false;
}

/* One RX burst: steer each frame, or give it to our stack. The stack copies
 * what it keeps, so what stays here is freed in one bulk at the end; the
 * frames for other workers go in one ring enqueue per owner. */
static void lcore_rx(struct dp_lcore *lc, struct rte_mbuf **rx, unsigned n)
{
	struct dp_dpdk *d = lc->d;
	unsigned nfree = 0;

	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = rx[i];
		const uint8_t *data = rte_pktmbuf_mtod(m, const uint8_t *);

		if (unlikely(m->nb_segs > 1)) {
			LC_INC(lc, rx_multiseg_drops, 1);
			rx[nfree++] = m;
			continue;
		}
		if (d->steering != DP_STEER_NONE) {
			if (unlikely(frame_is_arp(m))) {
				/* One reference per other worker. */
				rte_mbuf_refcnt_update(m, (int16_t)(d->nworkers - 1));
				for (unsigned j = 0; j < d->nworkers; j++)
					if (j != lc->idx)
						handoff_stage(lc, j, m, true);
			} else if (d->steering == DP_STEER_SOFT) {
				/* With RSS the queue is the owner. */
				int owner = net_flow_owner(data, m->data_len,
							   d->nworkers);

				if (owner >= 0 && (unsigned)owner != lc->idx) {
					handoff_stage(lc, (unsigned)owner, m,
						      false);
					continue;
				}
			}
		}
		net_stack_input(lc->st, data, m->data_len, rx_flags(m));
		rx[nfree++] = m;               /* nfree <= i: in place */
	}
	if (lc->ho_staged)
		handoff_flush(lc);
	if (nfree > 0)
		rte_pktmbuf_free_bulk(rx, nfree);
}

/* Frames other workers handed us: the receiver already dropped multi-segment
 * ones and chose us as owner; an ARP copy is input to learn from only. Up to
 * drain_max a call: each of the nworkers - 1 others may hand us a whole RX
 * burst (more with fault dups) per iteration of its own, so one RX_BURST an
 * iteration would fall behind and let the ring overflow; the bound keeps
 * one iteration's latency bounded. */
static unsigned lcore_drain(struct dp_lcore *lc, struct rte_mbuf **buf)
{
	unsigned total = 0, h;

	do {
		h = rte_ring_sc_dequeue_burst(lc->ring, (void **)buf, RX_BURST,
					      NULL);
		if (h == 0)
			break;
		/* Before the input: one may be a 'stats dataplane'. */
		LC_INC(lc, handoffs_in, h);
		for (unsigned i = 0; i < h; i++) {
			struct rte_mbuf *m = buf[i];
			unsigned flags = rx_flags(m);

			if (frame_is_arp(m))
				flags |= NET_RX_LEARN_ONLY;
			net_stack_input(lc->st, rte_pktmbuf_mtod(m, const uint8_t *),
					m->data_len, flags);
		}
		rte_pktmbuf_free_bulk(buf, h);
		total += h;
	} while (h == RX_BURST && total < lc->drain_max);
	return total;
}

static void lcore_loop(struct dp_lcore *lc)
{
	struct dp_dpdk *d = lc->d;
	struct rte_mbuf *rx[RX_CAP];
	unsigned idle = 0;

	while (!__atomic_load_n(&d->stop, __ATOMIC_RELAXED)) {
		unsigned n, h = 0;
		bool work;

		lc->now_us = dp_now_us(d);
		net_stack_tick(lc->st, lc->now_us);

		n = rte_eth_rx_burst(lc->port_id, lc->queue_id, rx, RX_BURST);
		if (lc->rx_fault != NULL)
			n = fault_apply(lc->rx_fault, (void **)rx, n, RX_CAP,
					lc->now_us);
		if (n > 0)
			lcore_rx(lc, rx, n);

		if (d->steering != DP_STEER_NONE)
			h = lcore_drain(lc, rx);

		dp_serve_poll(lc->sv);
		net_stack_flush(lc->st);
		work = n + h + lc->ntx > 0 || dp_serve_busy(lc->sv);
		if (lc->ntx > 0 || lc->tx_fault != NULL)
			lcore_tx_flush(lc);

		/* No item pointer is held between iterations (mc.h). */
		cache_thread_quiescent(lc->ct);

		if (d->cfg.poll_idle_us == 0)
			continue;
		if (work) {
			idle = 0;
		} else if (++idle >= IDLE_POLLS) {
			LC_INC(lc, idle_sleeps, 1);
			cache_thread_offline(lc->ct);
			rte_delay_us_sleep(d->cfg.poll_idle_us);
			cache_thread_online(lc->ct);
		}
	}
}

static void lcore_config(const struct dp_lcore *lc, struct net_stack_config *nc)
{
	const struct dp_dpdk *d = lc->d;
	struct rte_ether_addr mac;

	memset(nc, 0, sizeof(*nc));
	if (rte_eth_macaddr_get(lc->port_id, &mac) == 0)
		memcpy(nc->mac, mac.addr_bytes, 6);
	nc->ip = d->cfg.ip;
	nc->prefix_len = d->cfg.prefix_len;
	nc->gateway = d->cfg.gateway;
	nc->tcp_port = d->cfg.tcp_port;
	nc->udp_port = d->cfg.udp_port;
	memcpy(nc->tcp.isn_key, d->isn_key, sizeof(nc->tcp.isn_key));
	nc->tcp.window_scaling = true;
	nc->tcp.timestamps = true;
	nc->tcp.rto_min_us = d->cfg.tcp_rto_min_us;
	nc->tcp.time_wait_us = d->cfg.tcp_time_wait_us;
}

static int lcore_main(void *arg)
{
	struct dp_lcore *lc = arg;
	struct dp_dpdk *d = lc->d;
	struct net_stack_config nc;
	struct net_stack *st;
	struct rte_mbuf *m;
	int err = -ENOMEM;

	/* The mc_worker (urcu-qsbr reader) must be this thread's. */
	lc->sv = dp_serve_create(&d->shared, &lc->serve_ctr);
	if (lc->sv == NULL)
		goto fail;
	lcore_config(lc, &nc);
	lc->now_us = dp_now_us(d);
	st = net_stack_create(&nc, &lc->port_ops, lc, dp_serve_app(), lc->sv,
			      lc->now_us);
	if (st == NULL) {
		err = -EINVAL;
		goto fail;
	}
	/* Other lcores' stats read it from now on. */
	__atomic_store_n(&lc->st, st, __ATOMIC_RELEASE);
	dp_serve_attach(lc->sv, st);
	lc->ct = dp_serve_cache_thread(lc->sv);
	__atomic_store_n(&lc->state, 1, __ATOMIC_RELEASE);

	lcore_loop(lc);

	/* Clients learn of the shutdown from a RST (as from a closed
	 * socket), not from a timeout. */
	dp_serve_abort_all(lc->sv);
	net_stack_flush(lc->st);
	lc->now_us = dp_now_us(d);
	lcore_tx_flush(lc);

	/* Nothing more goes through the stack: drop what is still queued,
	 * then the sessions and the mc_worker, on this thread. The stack
	 * itself is freed by the main thread (no callbacks then). */
	if (lc->ntx > 0)
		rte_pktmbuf_free_bulk(lc->tx, lc->ntx);
	lc->ntx = 0;
	if (lc->ring != NULL)
		while (rte_ring_sc_dequeue(lc->ring, (void **)&m) == 0)
			rte_pktmbuf_free(m);
	dp_serve_destroy(&lc->sv);
	lc->ct = NULL;
	return 0;
fail:
	dp_serve_destroy(&lc->sv);
	__atomic_store_n(&lc->state, err, __ATOMIC_RELEASE);
	return err;
}

/* ---- ports -------------------------------------------------------------- */

/* The on-wire ethertype etc. are the stack's; here: queues and offloads. */
static int port_setup(struct dp_dpdk *d, unsigned pi, char *err, size_t errlen)
{
	uint16_t port = d->ports[pi];
	unsigned nq = d->queues_per_port;
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	uint8_t key[RSS_KEY_MAX];
	uint16_t nrxd = NB_RXD, ntxd = NB_TXD;
	uint64_t rx_ck = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM |
			 RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
	uint64_t rss_hf = RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV4_UDP;
	bool tx_ip, tx_l4;
	int rc;

	rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0) {
		snprintf(err, errlen, "port %u: cannot get device info: %s",
			 port, rte_strerror(-rc));
		return -1;
	}
	if (info.max_rx_queues < nq || info.max_tx_queues < nq) {
		snprintf(err, errlen,
			 "port %u (%s) has %u RX / %u TX queues, %u polling lcores "
			 "need %u (e.g. qpairs=%u for net_af_packet)", port,
			 info.driver_name, info.max_rx_queues, info.max_tx_queues,
			 d->nworkers, nq, nq);
		return -1;
	}
	memset(&conf, 0, sizeof(conf));
	if (pi == 0 && d->nports == 1 && nq > 1 &&
	    (info.flow_type_rss_offloads & rss_hf) == rss_hf) {
		size_t klen = info.hash_key_size ? info.hash_key_size : 40;

		if (klen > sizeof(key))
			klen = sizeof(key);
		for (size_t i = 0; i < klen; i++)
			key[i] = (i & 1) ? 0x5a : 0x6d;
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_key = key;
		conf.rx_adv_conf.rss_conf.rss_key_len = (uint8_t)klen;
		conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
		d->steering = DP_STEER_RSS;
	}
	if ((info.rx_offload_capa & rx_ck) == rx_ck)
		conf.rxmode.offloads |= rx_ck;
	tx_ip = info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
	tx_l4 = (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) &&
		(info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_UDP_CKSUM);
	if (tx_ip)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
	if (tx_l4)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_TCP_CKSUM |
					RTE_ETH_TX_OFFLOAD_UDP_CKSUM;

	rc = rte_eth_dev_configure(port, (uint16_t)nq, (uint16_t)nq, &conf);
	if (rc != 0) {
		snprintf(err, errlen, "port %u (%s): cannot configure %u queues: %s",
			 port, info.driver_name, nq, rte_strerror(-rc));
		return -1;
	}
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrxd, &ntxd);
	if (rc != 0) {
		snprintf(err, errlen, "port %u: descriptor counts: %s", port,
			 rte_strerror(-rc));
		return -1;
	}
	for (unsigned w = 0; w < d->nworkers; w++) {
		struct dp_lcore *lc = &d->lcores[w];

		if (lc->port_id != port)
			continue;
		rc = rte_eth_rx_queue_setup(port, lc->queue_id, nrxd,
					    rte_eth_dev_socket_id(port), NULL,
					    lc->pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(port, lc->queue_id, ntxd,
						    rte_eth_dev_socket_id(port),
						    NULL);
		if (rc != 0) {
			snprintf(err, errlen, "port %u queue %u: setup failed: %s",
				 port, lc->queue_id, rte_strerror(-rc));
			return -1;
		}
		lc->port_ops.tx_ip_cksum_offload = tx_ip;
		lc->port_ops.tx_l4_cksum_offload = tx_l4;
	}
	rc = rte_eth_dev_set_mtu(port, PORT_MTU);
	if (rc != 0)
		DP_LOG(2, "port %u: MTU %d not set (%s); frames stay <= %d bytes",
		       port, PORT_MTU, rte_strerror(-rc), PORT_MTU);
	rc = rte_eth_dev_start(port);
	if (rc != 0) {
		snprintf(err, errlen, "port %u (%s): cannot start: %s", port,
			 info.driver_name, rte_strerror(-rc));
		return -1;
	}
	d->port_started[pi] = true;
	/* Our MAC is the port's: the stack drops frames for other MACs, and
	 * a PMD that cannot filter (af_packet) delivers them anyway. */
	rc = rte_eth_promiscuous_disable(port);
	if (rc != 0 && rc != -ENOTSUP)
		DP_LOG(2, "port %u: promiscuous mode not disabled: %s", port,
		       rte_strerror(-rc));
	if (d->steering == DP_STEER_RSS && pi == 0 && info.reta_size > 0) {
		struct rte_eth_rss_reta_entry64 reta[RTE_ETH_RSS_RETA_SIZE_512 /
						     RTE_ETH_RETA_GROUP_SIZE];
		unsigned size = info.reta_size;

		if (size > RTE_ETH_RSS_RETA_SIZE_512)
			size = RTE_ETH_RSS_RETA_SIZE_512;
		memset(reta, 0, sizeof(reta));
		for (unsigned i = 0; i < size; i++) {
			reta[i / RTE_ETH_RETA_GROUP_SIZE].mask |=
				1ULL << (i % RTE_ETH_RETA_GROUP_SIZE);
			reta[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] =
				(uint16_t)(i % nq);
		}
		rc = rte_eth_dev_rss_reta_update(port, reta, (uint16_t)size);
		if (rc != 0)
			DP_LOG(1, "port %u: RETA update failed (%s); the default "
			       "table spreads the queues", port, rte_strerror(-rc));
	}
	if (pi == 0) {
		d->rx_cksum = (conf.rxmode.offloads & rx_ck) == rx_ck;
		d->tx_ip_cksum = tx_ip;
		d->tx_l4_cksum = tx_l4;
	}
	DP_LOG(1, "port %u (%s): %u queue pair(s), %u/%u descriptors, rx cksum %s, "
	       "tx cksum ip %s l4 %s", port, info.driver_name, nq, nrxd, ntxd,
	       (conf.rxmode.offloads & rx_ck) ? "on" : "off",
	       tx_ip ? "on" : "off", tx_l4 ? "on" : "off");
	return 0;
}

/* ---- public API --------------------------------------------------------- */

/*
 * EAL 22.11 makes --no-huge imply legacy memory, which it refuses together
 * with --in-memory, yet the agreed command line (and a test machine without
 * hugepages) wants both. Without hugepages, --in-memory means only "no
 * shared config files" (--no-shconf), so that is what EAL gets. Returns a
 * copy of argv (argv[0..argc) plus NULL) for rte_eal_init, which may
 * permute it; NULL on no memory.
 */
static char **eal_args(int argc, char **argv)
{
	static char no_shconf[] = "--no-shconf";
	char **v = calloc((size_t)argc + 1, sizeof(*v));
	bool no_huge = false;

	if (v == NULL)
		return NULL;
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--no-huge") == 0)
			no_huge = true;
	for (int i = 0; i < argc; i++)
		v[i] = no_huge && strcmp(argv[i], "--in-memory") == 0 ? no_shconf
								       : argv[i];
	return v;
}

struct dp_dpdk *dp_dpdk_create(const struct dp_dpdk_config *cfg, int argc,
			       char **argv, char *err, size_t errlen)
{
	struct dp_dpdk *d;
	char **eal_argv;
	unsigned lcore_id, w;
	uint16_t pid;
	int rc;

	/* aligned: struct dp_serve_shared keeps its -c counter on a cache
	 * line of its own */
	d = aligned_alloc(_Alignof(struct dp_dpdk),
			  RTE_ALIGN_CEIL(sizeof(*d), _Alignof(struct dp_dpdk)));
	if (d == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	snprintf(d->fault_spec, sizeof(d->fault_spec), "%s",
		 cfg->fault_spec ? cfg->fault_spec : "");
	d->cfg.fault_spec = d->fault_spec;
	dp_verbosity = cfg->verbosity;
	if (getrandom(d->isn_key, sizeof(d->isn_key), 0) !=
	    (ssize_t)sizeof(d->isn_key)) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		goto fail;
	}

	eal_argv = eal_args(argc, argv);
	if (eal_argv == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	rc = rte_eal_init(argc, eal_argv);
	free(eal_argv);
	if (rc < 0) {
		snprintf(err, errlen,
			 "EAL initialisation failed (%s): check the arguments after "
			 "'--'; without --no-huge EAL needs hugepages",
			 rte_strerror(rte_errno));
		goto fail;
	}
	d->eal_ready = true;
	dp_clock_init(d);
	d->nworkers = rte_lcore_count() - 1;
	if (d->nworkers == 0) {
		snprintf(err, errlen,
			 "no polling lcore: EAL's main lcore never polls, give EAL "
			 "at least two lcores (e.g. -l 0-1)");
		goto fail;
	}
	if (d->nworkers > MC_MAX_WORKERS) {
		snprintf(err, errlen, "%u polling lcores: at most %d",
			 d->nworkers, MC_MAX_WORKERS);
		goto fail;
	}
	RTE_ETH_FOREACH_DEV(pid)
		d->ports[d->nports++] = pid;
	if (d->nports == 0) {
		snprintf(err, errlen,
			 "no port found: give EAL a --vdev (e.g. "
			 "net_af_packet0,iface=IFACE) or a PCI device bound to a "
			 "DPDK driver");
		goto fail;
	}
	if (d->nports == 1) {
		d->queues_per_port = d->nworkers;
	} else if (d->nports == d->nworkers) {
		d->queues_per_port = 1;
	} else {
		snprintf(err, errlen,
			 "%u ports for %u polling lcores: give one port (one queue "
			 "per lcore) or one port per polling lcore", d->nports,
			 d->nworkers);
		goto fail;
	}
	d->steering = d->nworkers == 1 ? DP_STEER_NONE : DP_STEER_SOFT;

	d->lcores = rte_zmalloc("dpc_lcores", sizeof(*d->lcores) * d->nworkers,
				RTE_CACHE_LINE_SIZE);
	if (d->lcores == NULL) {
		snprintf(err, errlen, "out of memory for %u lcores", d->nworkers);
		goto fail;
	}
	w = 0;
	RTE_LCORE_FOREACH_WORKER(lcore_id) {
		struct dp_lcore *lc = &d->lcores[w];
		int socket = (int)rte_lcore_to_socket_id(lcore_id);
		char name[RTE_MEMPOOL_NAMESIZE];
		bool xdp;

		lc->d = d;
		lc->idx = w;
		lc->lcore_id = lcore_id;
		lc->port_id = d->nports == 1 ? d->ports[0] : d->ports[w];
		lc->queue_id = d->nports == 1 ? (uint16_t)w : 0;
		lc->port_ops.frame_alloc = port_frame_alloc;
		lc->port_ops.frame_send = port_frame_send;
		lc->port_ops.frame_free = port_frame_free;
		snprintf(name, sizeof(name), "dpc_pool%u", w);
		xdp = port_is_af_xdp(lc->port_id);
		lc->pool = pool_create(name, pool_mbufs(d->nworkers), socket, xdp);
		if (lc->pool == NULL)
			lc->pool = pool_create(name, pool_mbufs(d->nworkers),
					       SOCKET_ID_ANY, xdp);
		if (lc->pool == NULL) {
			snprintf(err, errlen,
				 "cannot create the mbuf pool of lcore %u (%u mbufs): "
				 "%s; give EAL more memory (-m)", lcore_id,
				 pool_mbufs(d->nworkers), rte_strerror(rte_errno));
			goto fail;
		}
		if (xdp) {
			unsigned out = pool_outside_umem(lc->pool);

			if (out > 0) {
				snprintf(err, errlen,
					 "the mbuf pool of lcore %u is not one "
					 "contiguous block: %u of %u mbufs would lie "
					 "outside the af_xdp UMEM; give EAL more "
					 "memory (-m)", lcore_id, out,
					 lc->pool->populated_size);
				goto fail;
			}
		}
		if (d->steering != DP_STEER_NONE) {
			snprintf(name, sizeof(name), "dpc_ring%u", w);
			lc->ring = rte_ring_create(name, RING_SIZE, socket,
						   RING_F_SC_DEQ);
			if (lc->ring == NULL) {
				snprintf(err, errlen, "cannot create ring %s: %s",
					 name, rte_strerror(rte_errno));
				goto fail;
			}
			lc->ho = rte_zmalloc_socket("dpc_handoff",
						    sizeof(*lc->ho) * d->nworkers,
						    RTE_CACHE_LINE_SIZE, socket);
			if (lc->ho == NULL) {
				snprintf(err, errlen,
					 "out of memory for the handoffs of "
					 "lcore %u", lcore_id);
				goto fail;
			}
			/* The others' RX bursts of one iteration each, and
			 * one more to catch up (lcore_drain). */
			lc->drain_max = RTE_MIN(d->nworkers * RX_BURST,
						(unsigned)RING_SIZE);
		}
		if (fault_config_active(&cfg->fault)) {
			lc->rx_fault = fault_create(&cfg->fault, &dp_fault_ops, lc,
						    FAULT_HELD);
			lc->tx_fault = fault_create(&cfg->fault, &dp_fault_ops, lc,
						    FAULT_HELD);
			if (lc->rx_fault == NULL || lc->tx_fault == NULL) {
				snprintf(err, errlen, "cannot create the fault injector");
				goto fail;
			}
		}
		w++;
	}
	for (unsigned pi = 0; pi < d->nports; pi++)
		if (port_setup(d, pi, err, errlen) != 0)
			goto fail;
	d->shared.max_conns = cfg->max_conns ? cfg->max_conns : 1024;
	d->shared.verbosity = cfg->verbosity;
	return d;
fail:
	dp_dpdk_destroy(&d);
	return NULL;
}

unsigned dp_dpdk_workers(const struct dp_dpdk *d)
{
	return d->nworkers;
}

void dp_dpdk_describe(const struct dp_dpdk *d, char *buf, size_t len)
{
	uint32_t ip = d->cfg.ip;
	char ports[32] = "";

	if (d->cfg.tcp_port && d->cfg.udp_port)
		snprintf(ports, sizeof(ports), "port %u udp %u", d->cfg.tcp_port,
			 d->cfg.udp_port);
	else if (d->cfg.tcp_port)
		snprintf(ports, sizeof(ports), "port %u", d->cfg.tcp_port);
	else
		snprintf(ports, sizeof(ports), "udp port %u", d->cfg.udp_port);
	snprintf(buf, len, "serving on %u.%u.%u.%u %s (%u polling lcores)",
		 ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255, ports,
		 d->nworkers);
}

void dp_dpdk_set_cluster(struct dp_dpdk *d, struct cluster *c)
{
	d->shared.cluster = c;
}

int dp_dpdk_start(struct dp_dpdk *d, struct mc_server *s)
{
	int err = 0;

	d->shared.server = s;
	for (unsigned w = 0; w < d->nworkers; w++) {
		struct dp_lcore *lc = &d->lcores[w];
		int rc = rte_eal_remote_launch(lcore_main, lc, lc->lcore_id);

		if (rc != 0) {
			err = rc < 0 ? rc : -EBUSY;
			break;
		}
		d->launched = true;
	}
	for (unsigned w = 0; err == 0 && w < d->nworkers; w++) {
		struct dp_lcore *lc = &d->lcores[w];
		int st;

		while ((st = __atomic_load_n(&lc->state, __ATOMIC_ACQUIRE)) == 0)
			usleep(1000);
		if (st < 0)
			err = st;
	}
	if (err != 0)
		dp_dpdk_stop(d);
	return err;
}

void dp_dpdk_stop(struct dp_dpdk *d)
{
	if (d == NULL || !d->launched)
		return;
	__atomic_store_n(&d->stop, 1, __ATOMIC_RELEASE);
	rte_eal_mp_wait_lcore();
	d->launched = false;
}

void dp_dpdk_destroy(struct dp_dpdk **dp)
{
	struct dp_dpdk *d = dp ? *dp : NULL;

	if (d == NULL)
		return;
	dp_dpdk_stop(d);
	for (unsigned w = 0; d->lcores != NULL && w < d->nworkers; w++) {
		struct dp_lcore *lc = &d->lcores[w];
		struct rte_mbuf *m;

		/* No callbacks: the sessions are gone (lcore_main). */
		net_stack_destroy(&lc->st);
		fault_destroy(&lc->rx_fault);
		fault_destroy(&lc->tx_fault);
		if (lc->ring != NULL) {
			while (rte_ring_sc_dequeue(lc->ring, (void **)&m) == 0)
				rte_pktmbuf_free(m);
			rte_ring_free(lc->ring);
		}
		rte_free(lc->ho);
	}
	for (unsigned pi = 0; pi < d->nports; pi++) {
		if (d->port_started[pi])
			rte_eth_dev_stop(d->ports[pi]);
		if (d->eal_ready)
			rte_eth_dev_close(d->ports[pi]);
	}
	/* The pools after the ports: the PMDs held mbufs in their rings. */
	for (unsigned w = 0; d->lcores != NULL && w < d->nworkers; w++)
		rte_mempool_free(d->lcores[w].pool);
	rte_free(d->lcores);
	if (d->eal_ready)
		rte_eal_cleanup();
	free(d);
	*dp = NULL;
}

/* ---- stats -------------------------------------------------------------- */

static const char *const tcp_state_names[TCP_STATE_COUNT] = {
	[TCP_SYN_RECEIVED] = "conns_syn_received",
	[TCP_ESTABLISHED] = "conns_established",
	[TCP_CLOSE_WAIT] = "conns_close_wait",
	[TCP_LAST_ACK] = "conns_last_ack",
	[TCP_FIN_WAIT_1] = "conns_fin_wait_1",
	[TCP_FIN_WAIT_2] = "conns_fin_wait_2",
	[TCP_CLOSING] = "conns_closing",
	[TCP_TIME_WAIT] = "conns_time_wait",
	[TCP_CLOSED] = "conns_closed_state",
};

/* Every counter of one lcore, in one fixed order (dp_counter_names). */
static const char *const dp_counter_names[] = {
#define NAME(name, desc) #name,
	NET_COUNTERS(NAME)
	TCP_COUNTERS(NAME)
	DP_LCORE_COUNTERS(NAME)
	DP_SERVE_COUNTERS(NAME)
#undef NAME
	"fault_rx_dropped", "fault_rx_duplicated", "fault_rx_reordered",
	"fault_rx_delayed", "fault_tx_dropped", "fault_tx_duplicated",
	"fault_tx_reordered", "fault_tx_delayed",
	"mbufs_free", "mbufs_in_use",
};
#define NCOUNTERS (RTE_DIM(dp_counter_names) + TCP_STATE_COUNT)

static void fault_values(const struct fault *f, uint64_t *v)
{
	const struct fault_counters *fc = f ? fault_counters(f) : NULL;

	v[0] = fc ? fc->dropped : 0;
	v[1] = fc ? fc->duplicated : 0;
	v[2] = fc ? fc->reordered : 0;
	v[3] = fc ? fc->delayed : 0;
}

static void lcore_values(struct dp_lcore *lc, uint64_t *v)
{
	struct net_stack *st = __atomic_load_n(&lc->st, __ATOMIC_ACQUIRE);
	const struct net_counters *nc = st ? net_stack_counters(st) : NULL;
	struct tcp_stack *ts = st ? net_stack_tcp(st) : NULL;
	const struct tcp_counters *tc = ts ? tcp_stack_counters(ts) : NULL;
	size_t i = 0;

#define NETV(name, desc) v[i++] = nc ? nc->name : 0;
	NET_COUNTERS(NETV)
#undef NETV
#define TCPV(name, desc) v[i++] = tc ? tc->name : 0;
	TCP_COUNTERS(TCPV)
#undef TCPV
#define LCV(name, desc) v[i++] = __atomic_load_n(&lc->ctr.name, __ATOMIC_RELAXED);
	DP_LCORE_COUNTERS(LCV)
#undef LCV
#define SVV(name, desc) v[i++] = __atomic_load_n(&lc->serve_ctr.name, __ATOMIC_RELAXED);
	DP_SERVE_COUNTERS(SVV)
#undef SVV
	fault_values(lc->rx_fault, &v[i]);
	fault_values(lc->tx_fault, &v[i + 4]);
	i += 8;
	/* Gauges of this lcore's pool (its RX queue's; handed-off frames
	 * return to it from any lcore): racy sums over the per-lcore caches. */
	v[i++] = lc->pool ? rte_mempool_avail_count(lc->pool) : 0;
	v[i++] = lc->pool ? rte_mempool_in_use_count(lc->pool) : 0;
	for (unsigned s = 0; s < TCP_STATE_COUNT; s++)
		v[i++] = tc ? tc->conns_in_state[s] : 0;
}

static const char *counter_name(size_t i)
{
	if (i < RTE_DIM(dp_counter_names))
		return dp_counter_names[i];
	return tcp_state_names[i - RTE_DIM(dp_counter_names)];
}

static void emit_u64(mc_stat_fn emit, void *emit_arg, const char *name,
		     uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	emit(emit_arg, name, buf);
}

/*
 * "portN:<name>" from rte_eth_stats_get: what the PMD and the kernel below it
 * dropped before any lcore saw a frame (rx_nombuf: RX found no mbuf to
 * refill with; imissed: the queue overflowed, for af_xdp the socket's
 * rx_dropped too). Read from a polling lcore: the PMDs here sum plain
 * per-queue counters (af_xdp adds a getsockopt).
 */
static void emit_port_stats(struct dp_dpdk *d, mc_stat_fn emit, void *emit_arg)
{
	char name[64];

	for (unsigned pi = 0; pi < d->nports; pi++) {
		static const char *const names[] = {
			"rx_packets", "rx_bytes", "rx_missed", "rx_errors",
			"rx_nombuf", "tx_packets", "tx_bytes", "tx_errors",
		};
		struct rte_eth_stats es;
		uint64_t vals[RTE_DIM(names)];

		if (!d->port_started[pi] ||
		    rte_eth_stats_get(d->ports[pi], &es) != 0)
			continue;
		vals[0] = es.ipackets;
		vals[1] = es.ibytes;
		vals[2] = es.imissed;
		vals[3] = es.ierrors;
		vals[4] = es.rx_nombuf;
		vals[5] = es.opackets;
		vals[6] = es.obytes;
		vals[7] = es.oerrors;
		for (size_t i = 0; i < RTE_DIM(names); i++) {
			snprintf(name, sizeof(name), "port%u:%s", pi, names[i]);
			emit_u64(emit, emit_arg, name, vals[i]);
		}
	}
}

static void emit_dataplane(struct dp_dpdk *d, mc_stat_fn emit, void *emit_arg)
{
	uint64_t v[NCOUNTERS], total[NCOUNTERS];
	char name[80];

	memset(total, 0, sizeof(total));
	for (unsigned w = 0; w < d->nworkers; w++) {
		lcore_values(&d->lcores[w], v);
		for (size_t i = 0; i < NCOUNTERS; i++) {
			snprintf(name, sizeof(name), "core%u:%s", w, counter_name(i));
			emit_u64(emit, emit_arg, name, v[i]);
			total[i] += v[i];
		}
	}
	for (size_t i = 0; i < NCOUNTERS; i++) {
		snprintf(name, sizeof(name), "total:%s", counter_name(i));
		emit_u64(emit, emit_arg, name, total[i]);
	}
	emit_port_stats(d, emit, emit_arg);
}

static void emit_settings(struct dp_dpdk *d, mc_stat_fn emit, void *emit_arg)
{
	uint32_t ip = d->cfg.ip, gw = d->cfg.gateway;
	char buf[64];

	emit_u64(emit, emit_arg, "tcpport", d->cfg.tcp_port);
	emit_u64(emit, emit_arg, "udpport", d->cfg.udp_port);
	snprintf(buf, sizeof(buf), "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255,
		 (ip >> 8) & 255, ip & 255);
	emit(emit_arg, "inter", buf);
	emit(emit_arg, "maxconns_fast", "yes");
	emit(emit_arg, "net", "dpdk");
	snprintf(buf, sizeof(buf), "%u.%u.%u.%u/%u", ip >> 24, (ip >> 16) & 255,
		 (ip >> 8) & 255, ip & 255, d->cfg.prefix_len);
	emit(emit_arg, "dpdk_ip", buf);
	if (gw)
		snprintf(buf, sizeof(buf), "%u.%u.%u.%u", gw >> 24,
			 (gw >> 16) & 255, (gw >> 8) & 255, gw & 255);
	else
		snprintf(buf, sizeof(buf), "none");
	emit(emit_arg, "dpdk_gateway", buf);
	emit_u64(emit, emit_arg, "dpdk_polling_lcores", d->nworkers);
	emit_u64(emit, emit_arg, "dpdk_ports", d->nports);
	emit_u64(emit, emit_arg, "dpdk_queues_per_port", d->queues_per_port);
	emit(emit_arg, "dpdk_steering", steering_names[d->steering]);
	emit(emit_arg, "dpdk_rx_cksum_offload", d->rx_cksum ? "yes" : "no");
	emit(emit_arg, "dpdk_tx_ip_cksum_offload", d->tx_ip_cksum ? "yes" : "no");
	emit(emit_arg, "dpdk_tx_l4_cksum_offload", d->tx_l4_cksum ? "yes" : "no");
	emit_u64(emit, emit_arg, "poll_idle_us", d->cfg.poll_idle_us);
	emit_u64(emit, emit_arg, "tcp_rto_min_ms", d->cfg.tcp_rto_min_us / 1000);
	emit_u64(emit, emit_arg, "tcp_time_wait_ms", d->cfg.tcp_time_wait_us / 1000);
	emit(emit_arg, "fault", d->fault_spec[0] ? d->fault_spec : "off");
}

int dp_dpdk_stats(void *arg, const char *group, mc_stat_fn emit,
		  void *emit_arg)
{
	struct dp_dpdk *d = arg;

	if (group == NULL) {
		uint64_t yields = 0, replies = 0, drops = 0;

		for (unsigned w = 0; w < d->nworkers; w++) {
			const struct dp_serve_counters *c = &d->lcores[w].serve_ctr;

			yields += __atomic_load_n(&c->conn_yields, __ATOMIC_RELAXED);
			replies += __atomic_load_n(&c->udp_replies, __ATOMIC_RELAXED);
			drops += __atomic_load_n(&c->udp_reply_drops, __ATOMIC_RELAXED);
		}
		emit_u64(emit, emit_arg, "conn_yields", yields);
		if (d->cfg.udp_port) {
			emit_u64(emit, emit_arg, "udp_replies", replies);
			emit_u64(emit, emit_arg, "udp_tx_dropped", drops);
		}
		return 0;
	}
	if (strcmp(group, "dataplane") == 0) {
		emit_dataplane(d, emit, emit_arg);
		return 0;
	}
	if (strcmp(group, "settings") == 0) {
		emit_settings(d, emit, emit_arg);
		return 0;
	}
	return -ENOENT;
}
