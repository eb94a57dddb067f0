/*
 * dpcache-bench - a closed-loop load generator for memcached-compatible
 * servers (dpcached, memcached).
 *
 * Design note. Each thread owns its connections, one epoll set and one
 * latency histogram; nothing is shared while the load runs. Every
 * connection keeps up to --pipeline requests in flight: whenever replies
 * arrive it parses them in order (TCP) or by request id (UDP), records each
 * latency, then refills its window and writes the new requests with one
 * send. A run has two phases, separated by a barrier: an optional preload
 * (every key set once) and the measured load. Both phases stop on a count
 * and on a clock, so no loop is unbounded; after the load stops issuing,
 * replies still in flight are drained for at most DRAIN_NS.
 *
 * A reply that cannot be the answer to the request at the head of the
 * queue is counted as an error and the connection is reopened: the byte
 * stream is out of sync and nothing after it can be trusted.
 *
 * --dpdk hands the whole run to bench_dpdk.c (built only with libdpdk):
 * the same options, requests, checks and SUMMARY line, but frames of its
 * own on a DPDK port instead of sockets.
 */
#include "bench_hist.h"
#include "bench_proto.h"
#include "bench_rand.h"
#include "bench_report.h"
#ifdef BENCH_HAVE_DPDK
#include "bench_dpdk.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_SEC        1000000000ULL
#define DRAIN_NS          (2 * NS_PER_SEC)  /* wait for stragglers */
#define UDP_TIMEOUT_NS    (500 * 1000000ULL) /* a lost datagram */
#define UDP_HDR           8
#define UDP_MAX_PAYLOAD   1400              /* memcached's UDP frame size */
#define RBUF_INIT         (64 * 1024)
#define RBUF_MAX          (64u << 20)
#define WBUF_MAX          (1u << 20)
#define PRELOAD_WINDOW    32                /* TCP window while preloading */
#define MAX_RECONNECTS    20
#define EPOLL_BATCH       256
#define MAX_COUNTED_SECS  300               /* time cap of a --requests run */

/* ---- options ---------------------------------------------------------- */

struct bench_opts {
	char host[256];
	char port[16];
	enum bench_proto proto;
	int udp;
	unsigned conns;
	unsigned threads;
	unsigned pipeline;
	unsigned ratio_get;
	unsigned ratio_set;
	uint64_t keys;
	size_t key_size;
	size_t value_size;
	double zipf;
	double duration;     /* seconds; 0 = no time limit */
	uint64_t requests;   /* 0 = no count limit */
	int requests_set;
	int preload;
	uint64_t seed;
	double scan_fraction;
	int fill_on_miss;
	int quiet;
	/* DPDK mode: EAL arguments are argv[eal_first..] */
	int dpdk;
	int server_set;
	int threads_set;
	char local_ip[64];
	unsigned rto_ms;
	double wait_secs;
	int eal_first;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dpcache-bench [options]\n"
		"  --server HOST:PORT    server address (127.0.0.1:11211)\n"
		"  --proto P             text | meta | binary (text)\n"
		"  --udp                 use UDP (memcached -U) instead of TCP\n"
		"  --conns N             connections in all (50)\n"
		"  --threads N           client threads (1)\n"
		"  --pipeline D          requests in flight per connection (1)\n"
		"  --ratio G:S           gets to sets (9:1)\n"
		"  --keys N              key space (100000)\n"
		"  --key-size B          exact key length (16)\n"
		"  --value-size B        value length (32)\n"
		"  --zipf S              Zipf exponent, 0 = uniform (0)\n"
		"  --duration SEC        measured time (10; with --requests: a cap,\n"
		"                        300 unless given)\n"
		"  --requests N          measured requests, 0 = preload only\n"
		"  --preload             set every key once before measuring\n"
		"  --seed N              random seed (1)\n"
		"  --scan-fraction F     fraction of requests that are gets of a\n"
		"                        sequential scan over a cold key range (0)\n"
		"  --fill-on-miss        set a key after a get misses it\n"
		"  --quiet               only the SUMMARY line\n"
		"DPDK mode (dpcache-bench [options] --dpdk -- EAL_ARGS):\n"
		"  --dpdk                be a DPDK process on the first port of\n"
		"                        EAL_ARGS (e.g. --vdev=net_memif0,role=client,\n"
		"                        socket=/tmp/x.sock); one queue per EAL lcore;\n"
		"                        --server is then an IPv4 address\n"
		"                        (198.18.0.1:11211)%s\n"
		"  --local-ip A          our address in DPDK mode (198.18.0.2)\n"
		"  --rto-ms N            DPDK mode: UDP request timeout and TCP\n"
		"                        retransmission timeout (200)\n"
		"  --wait SEC            DPDK mode: link, ARP and handshakes (10)\n",
#ifdef BENCH_HAVE_DPDK
		""
#else
		"\n                        (not in this build: no libdpdk)"
#endif
		);
}

static int parse_u64_opt(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

static int parse_uint_opt(const char *s, unsigned *out, unsigned min)
{
	uint64_t v;

	if (parse_u64_opt(s, &v) < 0 || v < min || v > 1000000)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int parse_double_opt(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return (errno != 0 || end == s || *end != '\0' || *out < 0) ? -1 : 0;
}

static int parse_server(const char *s, struct bench_opts *o)
{
	const char *colon = strrchr(s, ':');
	size_t hl;

	if (colon == NULL || colon == s || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= sizeof(o->port))
		return -1;
	hl = (size_t)(colon - s);
	if (hl >= sizeof(o->host))
		return -1;
	memcpy(o->host, s, hl);
	o->host[hl] = '\0';
	strcpy(o->port, colon + 1);
	return 0;
}

static int parse_ratio(const char *s, struct bench_opts *o)
{
	unsigned g, st;
	char extra;

	if (sscanf(s, "%u:%u%c", &g, &st, &extra) != 2 || g + st == 0 ||
	    g > 1000000 || st > 1000000)
		return -1;
	o->ratio_get = g;
	o->ratio_set = st;
	return 0;
}

enum {
	OPT_SERVER = 256, OPT_PROTO, OPT_UDP, OPT_CONNS, OPT_THREADS,
	OPT_PIPELINE, OPT_RATIO, OPT_KEYS, OPT_KEY_SIZE, OPT_VALUE_SIZE,
	OPT_ZIPF, OPT_DURATION, OPT_REQUESTS, OPT_PRELOAD, OPT_SEED,
	OPT_SCAN, OPT_FILL, OPT_QUIET, OPT_HELP, OPT_DPDK, OPT_LOCAL_IP,
	OPT_RTO_MS, OPT_WAIT,
};

static const struct option long_opts[] = {
	{ "server", required_argument, NULL, OPT_SERVER },
	{ "proto", required_argument, NULL, OPT_PROTO },
	{ "udp", no_argument, NULL, OPT_UDP },
	{ "conns", required_argument, NULL, OPT_CONNS },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "pipeline", required_argument, NULL, OPT_PIPELINE },
	{ "ratio", required_argument, NULL, OPT_RATIO },
	{ "keys", required_argument, NULL, OPT_KEYS },
	{ "key-size", required_argument, NULL, OPT_KEY_SIZE },
	{ "value-size", required_argument, NULL, OPT_VALUE_SIZE },
	{ "zipf", required_argument, NULL, OPT_ZIPF },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "requests", required_argument, NULL, OPT_REQUESTS },
	{ "preload", no_argument, NULL, OPT_PRELOAD },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "scan-fraction", required_argument, NULL, OPT_SCAN },
	{ "fill-on-miss", no_argument, NULL, OPT_FILL },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "dpdk", no_argument, NULL, OPT_DPDK },
	{ "local-ip", required_argument, NULL, OPT_LOCAL_IP },
	{ "rto-ms", required_argument, NULL, OPT_RTO_MS },
	{ "wait", required_argument, NULL, OPT_WAIT },
	{ NULL, 0, NULL, 0 },
};

/* One option; returns 0, or -1 with a message printed. */
static int apply_opt(struct bench_opts *o, int c, const char *arg)
{
	uint64_t v;
	int bad = 0;

	switch (c) {
	case OPT_SERVER:
		bad = parse_server(arg, o);
		o->server_set = 1;
		break;
	case OPT_PROTO: bad = bench_proto_parse(arg, &o->proto); break;
	case OPT_UDP: o->udp = 1; break;
	case OPT_CONNS: bad = parse_uint_opt(arg, &o->conns, 1); break;
	case OPT_THREADS:
		bad = parse_uint_opt(arg, &o->threads, 1);
		o->threads_set = 1;
		break;
	case OPT_PIPELINE: bad = parse_uint_opt(arg, &o->pipeline, 1); break;
	case OPT_RATIO: bad = parse_ratio(arg, o); break;
	case OPT_KEYS: bad = parse_u64_opt(arg, &o->keys) || o->keys == 0; break;
	case OPT_KEY_SIZE:
		bad = parse_u64_opt(arg, &v) || v > BENCH_KEY_MAX;
		o->key_size = (size_t)v;
		break;
	case OPT_VALUE_SIZE:
		bad = parse_u64_opt(arg, &v) || v > (16u << 20);
		o->value_size = (size_t)v;
		break;
	case OPT_ZIPF: bad = parse_double_opt(arg, &o->zipf); break;
	case OPT_DURATION: bad = parse_double_opt(arg, &o->duration); break;
	case OPT_REQUESTS:
		bad = parse_u64_opt(arg, &o->requests);
		o->requests_set = 1;
		break;
	case OPT_PRELOAD: o->preload = 1; break;
	case OPT_SEED: bad = parse_u64_opt(arg, &o->seed); break;
	case OPT_SCAN:
		bad = parse_double_opt(arg, &o->scan_fraction) ||
		      o->scan_fraction > 1.0;
		break;
	case OPT_FILL: o->fill_on_miss = 1; break;
	case OPT_QUIET: o->quiet = 1; break;
	case OPT_HELP: usage(stdout); exit(0);
	case OPT_DPDK: o->dpdk = 1; break;
	case OPT_LOCAL_IP:
		bad = strlen(arg) >= sizeof(o->local_ip);
		if (!bad)
			strcpy(o->local_ip, arg);
		break;
	case OPT_RTO_MS: bad = parse_uint_opt(arg, &o->rto_ms, 1); break;
	case OPT_WAIT: bad = parse_double_opt(arg, &o->wait_secs); break;
	default: usage(stderr); return -1;
	}
	if (bad) {
		fprintf(stderr, "dpcache-bench: bad value for an option: %s\n",
			arg ? arg : "");
		return -1;
	}
	return 0;
}

/*
 * Scans read a cold range of key indexes beyond the hot ones: [base, base +
 * keys). Each seed has its own range, so a warm-up run and a measured run
 * with different seeds never scan the same keys and scans stay cold.
 */
static uint64_t scan_base(const struct bench_opts *o)
{
	return o->keys * (1 + o->seed % 64);
}

static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
	int c;

	memset(o, 0, sizeof(*o));
	strcpy(o->host, "127.0.0.1");
	strcpy(o->port, "11211");
	o->proto = BENCH_PROTO_TEXT;
	o->conns = 50;
	o->threads = 1;
	o->pipeline = 1;
	o->ratio_get = 9;
	o->ratio_set = 1;
	o->keys = 100000;
	o->key_size = 16;
	o->value_size = 32;
	o->seed = 1;
	o->duration = -1;
	strcpy(o->local_ip, "198.18.0.2");
	o->rto_ms = 200;
	o->wait_secs = 10;
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		if (apply_opt(o, c, optarg) < 0)
			return -1;
	}
	/* In DPDK mode what follows "--" belongs to rte_eal_init. */
	o->eal_first = optind;
	if (!o->dpdk && optind != argc) {
		usage(stderr);
		return -1;
	}
	if (o->dpdk && !o->server_set)
		strcpy(o->host, "198.18.0.1");
	if (o->dpdk && (o->threads_set || o->scan_fraction > 0 ||
			o->fill_on_miss)) {
		fprintf(stderr, "dpcache-bench: --dpdk takes its lcores from EAL "
			"and has no --threads, --scan-fraction or --fill-on-miss\n");
		return -1;
	}
	/* Every run ends on the clock too: a count alone could wait forever
	 * on a server that stopped answering. */
	if (o->duration <= 0)
		o->duration = o->requests_set ? MAX_COUNTED_SECS : 10;
	if (o->threads > o->conns)
		o->threads = o->conns;
	if (!bench_key_fits(o->scan_fraction > 0 ? scan_base(o) + o->keys : o->keys,
			    o->key_size)) {
		fprintf(stderr, "dpcache-bench: --key-size %zu is too short for "
			"%" PRIu64 " keys\n", o->key_size, o->keys);
		return -1;
	}
	if (o->udp && bench_req_max_len(o->key_size, o->value_size) +
			      UDP_HDR > UDP_MAX_PAYLOAD) {
		fprintf(stderr, "dpcache-bench: with --udp a set must fit one "
			"datagram: use a smaller --value-size\n");
		return -1;
	}
	return 0;
}

/* ---- per-thread state -------------------------------------------------- */

struct worker;

struct conn {
	int fd;
	struct worker *w;
	char *rbuf;
	size_t rcap, rlen;
	char *wbuf;
	size_t wcap, wlen, woff;
	/* TCP: FIFO ring of requests; UDP: slots, used[i] marks busy ones */
	struct bench_req *q;
	unsigned char *used;
	unsigned qcap, qhead, qcount;
	uint64_t *fills;       /* keys to set after a miss (--fill-on-miss) */
	unsigned fill_head, fill_count;
	uint16_t udp_next_id;
	int want_out;
	unsigned reconnects;
};

struct worker {
	pthread_t tid;
	unsigned id;
	const struct bench_opts *o;
	const struct bench_zipf *zipf;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	pthread_barrier_t *barrier;
	int ep;
	struct conn *conns;
	unsigned nconns;
	struct bench_rng rng;
	/* phase */
	int preloading;
	int issuing;
	uint64_t budget;       /* requests this thread may still issue */
	uint64_t preload_next, preload_end;
	uint64_t scan_next;
	uint64_t window;
	/* results */
	struct bench_counts c;
	struct bench_counts pre;
	struct bench_hist hist;
	double load_secs;
	double preload_secs;
	double cpu_secs;
	int failed;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static double thread_cpu_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- connections ------------------------------------------------------- */

static int set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -1;
	return 0;
}

static int conn_open(struct conn *c)
{
	const struct bench_opts *o = c->w->o;
	int type = o->udp ? SOCK_DGRAM : SOCK_STREAM;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	int one = 1;
	int fd;

	fd = socket(c->w->addr.ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (!o->udp)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* A blocking connect keeps start-up simple; it is loopback or LAN. */
	if (connect(fd, (const struct sockaddr *)&c->w->addr, c->w->addrlen) < 0 ||
	    set_nonblock(fd) < 0 ||
	    epoll_ctl(c->w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	c->fd = fd;
	c->want_out = 0;
	return 0;
}

static int conn_init(struct conn *c, struct worker *w)
{
	const struct bench_opts *o = w->o;
	size_t req = bench_req_max_len(o->key_size, o->value_size) + UDP_HDR;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->w = w;
	c->qcap = o->pipeline > PRELOAD_WINDOW ? o->pipeline : PRELOAD_WINDOW;
	c->rcap = RBUF_INIT;
	if (c->rcap < 2 * (o->value_size + 512))
		c->rcap = 2 * (o->value_size + 512);
	/* Room for a full window, but with large values a window may go
	 * out in pieces: tcp_refill() stops when wbuf is full and goes on
	 * once it drains. */
	c->wcap = (size_t)c->qcap * req;
	if (c->wcap > WBUF_MAX)
		c->wcap = req > WBUF_MAX / 2 ? 2 * req : WBUF_MAX;
	c->rbuf = malloc(c->rcap);
	c->wbuf = malloc(c->wcap);
	c->q = calloc(c->qcap, sizeof(*c->q));
	c->used = calloc(c->qcap, 1);
	c->fills = calloc(c->qcap, sizeof(*c->fills));
	if (!c->rbuf || !c->wbuf || !c->q || !c->used || !c->fills)
		return -ENOMEM;
	return conn_open(c);
}

static void conn_deinit(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->rbuf);
	free(c->wbuf);
	free(c->q);
	free(c->used);
	free(c->fills);
}

static struct bench_counts *counts_for(struct worker *w, const struct bench_req *r)
{
	return r->measured ? &w->c : &w->pre;
}

/*
 * The stream broke (malformed reply, EOF, socket error): every request in
 * flight is lost. Count them, drop buffered bytes and reopen, a bounded
 * number of times.
 */
static void conn_reset(struct conn *c, const char *why)
{
	struct worker *w = c->w;

	if (w->o->udp) {
		for (unsigned s = 0; s < c->qcap; s++) {
			if (c->used[s])
				counts_for(w, &c->q[s])->errors++;
		}
		memset(c->used, 0, c->qcap);
	} else {
		for (unsigned i = 0; i < c->qcount; i++) {
			const struct bench_req *r = &c->q[(c->qhead + i) % c->qcap];

			counts_for(w, r)->errors++;
		}
	}
	if (!w->o->quiet && c->reconnects == 0)
		fprintf(stderr, "dpcache-bench: thread %u: connection reset: %s\n",
			w->id, why);
	c->qcount = 0;
	c->qhead = 0;
	c->rlen = 0;
	c->wlen = 0;
	c->woff = 0;
	c->fill_count = 0;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (++c->reconnects > MAX_RECONNECTS || conn_open(c) < 0) {
		c->fd = -1;
		w->failed = 1;
	}
}

/* ---- what to ask next -------------------------------------------------- */


static int can_issue(struct worker *w)
{
	return w->issuing && w->budget > 0;
}

/* Fill r with the next request of this thread's stream. */
static void next_request(struct worker *w, struct conn *c, struct bench_req *r)
{
	const struct bench_opts *o = w->o;

	memset(r, 0, sizeof(*r));
	if (w->preloading) {
		w->budget--;
		r->op = BENCH_OP_SET;
		r->key = w->preload_next++;
		if (w->preload_next >= w->preload_end)
			w->budget = 0;
		return;
	}
	r->measured = 1;
	if (c->fill_count > 0) {
		/* look-aside pattern: the application stores what it missed */
		r->op = BENCH_OP_SET;
		r->key = c->fills[c->fill_head];
		c->fill_head = (c->fill_head + 1) % c->qcap;
		c->fill_count--;
		return; /* fills are not charged to --requests: every server
			 * then sees the same generated stream */
	}
	w->budget--;
	if (o->scan_fraction > 0 && bench_rng_double(&w->rng) < o->scan_fraction) {
		r->op = BENCH_OP_GET;
		r->is_scan = 1;
		r->key = scan_base(o) + w->scan_next;
		w->scan_next = (w->scan_next + 1) % o->keys;
		return;
	}
	if (bench_rng_below(&w->rng, o->ratio_get + o->ratio_set) < o->ratio_set)
		r->op = BENCH_OP_SET;
	else
		r->op = BENCH_OP_GET;
	if (w->zipf != NULL)
		r->key = bench_zipf_sample(w->zipf, &w->rng);
	else
		r->key = bench_rng_below(&w->rng, o->keys);
}

static void note_fill(struct conn *c, uint64_t key)
{
	if (c->fill_count < c->qcap) {
		c->fills[(c->fill_head + c->fill_count) % c->qcap] = key;
		c->fill_count++;
	}
}

/* Account one well-formed reply to r, received at t. */
static void account(struct worker *w, struct conn *c,
		    const struct bench_req *r, enum bench_result res, uint64_t t)
{
	bench_counts_reply(counts_for(w, r), r, res);
	if (res == BENCH_R_MISS && w->o->fill_on_miss && r->measured)
		note_fill(c, r->key);
	if (r->measured)
		bench_hist_record(&w->hist, t - r->start_ns);
}

/* ---- TCP ---------------------------------------------------------------- */

static void tcp_flush(struct conn *c)
{
	int want;

	while (c->woff < c->wlen) {
		ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff,
				 MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			conn_reset(c, "send failed");
			return;
		}
		c->woff += (size_t)n;
	}
	if (c->woff == c->wlen) {
		c->woff = 0;
		c->wlen = 0;
	}
	/* Ask for EPOLLOUT only while bytes are stuck in wbuf. */
	want = c->wlen > 0;
	if (want != c->want_out) {
		struct epoll_event ev = {
			.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c };

		epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &ev);
		c->want_out = want;
	}
}

static void tcp_refill(struct conn *c)
{
	struct worker *w = c->w;
	const struct bench_opts *o = w->o;
	uint64_t t = 0;

	if (c->fd < 0)
		return;
	while (c->qcount < w->window && (can_issue(w) || c->fill_count > 0) &&
	       w->issuing) {
		struct bench_req *r = &c->q[(c->qhead + c->qcount) % c->qcap];

		if (c->wcap - c->wlen < bench_req_max_len(o->key_size, o->value_size))
			break;
		if (t == 0)
			t = now_ns();
		next_request(w, c, r);
		r->start_ns = t;
		r->opaque = (uint32_t)(c->qhead + c->qcount);
		c->wlen += bench_compose(o->proto, r, o->key_size, o->value_size,
					 c->wbuf + c->wlen);
		c->qcount++;
	}
	tcp_flush(c);
}

/* Parse every complete reply in rbuf. Returns -1 if the stream broke. */
static int tcp_parse(struct conn *c, uint64_t t)
{
	struct worker *w = c->w;
	size_t off = 0;

	while (off < c->rlen) {
		struct bench_req *r;
		enum bench_result res;
		ssize_t n;

		if (c->qcount == 0) {
			conn_reset(c, "reply without a request");
			return -1;
		}
		r = &c->q[c->qhead];
		n = bench_parse(w->o->proto, r, w->o->key_size, c->rbuf + off,
				c->rlen - off, &res);
		if (n == 0)
			break;
		if (n < 0) {
			conn_reset(c, "malformed reply");
			return -1;
		}
		account(w, c, r, res, t);
		off += (size_t)n;
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qcount--;
	}
	if (off > 0) {
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
	/* A reply larger than the buffer: grow, within reason. */
	if (c->rlen == c->rcap) {
		char *nb;

		if (c->rcap >= RBUF_MAX) {
			conn_reset(c, "reply too large");
			return -1;
		}
		nb = realloc(c->rbuf, c->rcap * 2);
		if (nb == NULL) {
			conn_reset(c, "out of memory");
			return -1;
		}
		c->rbuf = nb;
		c->rcap *= 2;
	}
	return 0;
}

static void tcp_on_event(struct conn *c, uint32_t events)
{
	if (events & EPOLLOUT)
		tcp_flush(c);
	if (c->fd >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
		ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);

		if (n > 0) {
			c->rlen += (size_t)n;
			tcp_parse(c, now_ns()); /* resets the conn on error */
		} else if (n == 0) {
			conn_reset(c, "server closed the connection");
		} else if (errno != EAGAIN && errno != EINTR) {
			conn_reset(c, "recv failed");
		}
	}
	/* Also after a reset: the reopened connection needs work too. */
	tcp_refill(c);
}

/* ---- UDP ---------------------------------------------------------------- */

/*
 * Each request is one datagram with memcached's 8-byte frame header
 * (request id, sequence number, datagram count, reserved). Replies come
 * back in any order and may be lost, so requests sit in slots found by
 * request id, and a slot older than UDP_TIMEOUT_NS counts as a timeout.
 * Replies are expected to fit one datagram (checked: value-size is small).
 */
static void udp_refill(struct conn *c)
{
	struct worker *w = c->w;
	const struct bench_opts *o = w->o;
	char *pkt = c->wbuf;

	if (c->fd < 0)
		return;
	for (unsigned s = 0; s < w->window && w->issuing &&
			     (can_issue(w) || c->fill_count > 0); s++) {
		struct bench_req *r = &c->q[s];
		size_t len;

		if (c->used[s])
			continue;
		next_request(w, c, r);
		r->opaque = c->udp_next_id++;
		memset(pkt, 0, UDP_HDR);
		pkt[0] = (char)(r->opaque >> 8);
		pkt[1] = (char)r->opaque;
		pkt[5] = 1; /* one datagram */
		len = UDP_HDR + bench_compose(o->proto, r, o->key_size,
					      o->value_size, pkt + UDP_HDR);
		r->start_ns = now_ns();
		c->used[s] = 1;
		c->qcount++;
		/* A datagram the kernel drops is found by the timeout. */
		if (send(c->fd, pkt, len, 0) < 0 && errno != EAGAIN &&
		    errno != ENOBUFS && errno != ECONNREFUSED) {
			conn_reset(c, "udp send failed");
			return;
		}
	}
}

static void udp_on_event(struct conn *c)
{
	struct worker *w = c->w;

	for (int burst = 0; burst < 64; burst++) {
		ssize_t n = recv(c->fd, c->rbuf, c->rcap, 0);
		unsigned id, seq, total, s;
		enum bench_result res;
		uint64_t t;

		if (n < 0)
			break; /* EAGAIN, or ECONNREFUSED: timeouts count it */
		t = now_ns();
		if (n < UDP_HDR) {
			w->c.errors++;
			continue;
		}
		id = ((unsigned char)c->rbuf[0] << 8) | (unsigned char)c->rbuf[1];
		seq = ((unsigned char)c->rbuf[2] << 8) | (unsigned char)c->rbuf[3];
		total = ((unsigned char)c->rbuf[4] << 8) | (unsigned char)c->rbuf[5];
		for (s = 0; s < c->qcap; s++) {
			if (c->used[s] && c->q[s].opaque == id)
				break;
		}
		if (s == c->qcap)
			continue; /* late reply to a request already timed out */
		c->used[s] = 0;
		c->qcount--;
		if (seq != 0 || total != 1 ||
		    bench_parse(w->o->proto, &c->q[s], w->o->key_size,
				c->rbuf + UDP_HDR, (size_t)n - UDP_HDR, &res) !=
			    n - UDP_HDR) {
			counts_for(w, &c->q[s])->errors++;
			continue;
		}
		account(w, c, &c->q[s], res, t);
	}
	udp_refill(c);
}

static void udp_expire(struct conn *c, uint64_t t)
{
	for (unsigned s = 0; s < c->qcap; s++) {
		/* start_ns may be later than t (sent after t was read) */
		if (c->used[s] && c->q[s].start_ns + UDP_TIMEOUT_NS < t) {
			c->used[s] = 0;
			c->qcount--;
			counts_for(c->w, &c->q[s])->timeouts++;
		}
	}
	udp_refill(c);
}

/* ---- the event loop ----------------------------------------------------- */

static unsigned in_flight(const struct worker *w)
{
	unsigned n = 0;

	for (unsigned i = 0; i < w->nconns; i++)
		n += w->conns[i].qcount;
	return n;
}

/* Run one phase until it has issued its budget or passed its deadline
 * (CLOCK_MONOTONIC ns), then drain for at most DRAIN_NS. */
static void run_phase(struct worker *w, uint64_t deadline)
{
	struct epoll_event evs[EPOLL_BATCH];
	uint64_t drain_until = 0;
	uint64_t last_expire = now_ns();

	w->issuing = 1;
	for (unsigned i = 0; i < w->nconns; i++) {
		if (w->o->udp)
			udp_refill(&w->conns[i]);
		else
			tcp_refill(&w->conns[i]);
	}
	for (;;) {
		uint64_t t = now_ns();
		int n;

		if (w->issuing && (w->budget == 0 || t >= deadline)) {
			w->issuing = 0;
			drain_until = t + DRAIN_NS;
		}
		if (!w->issuing && (in_flight(w) == 0 || t >= drain_until))
			break;
		n = epoll_wait(w->ep, evs, EPOLL_BATCH, 10);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->fd < 0)
				continue;
			if (w->o->udp)
				udp_on_event(c);
			else
				tcp_on_event(c, evs[i].events);
		}
		if (w->o->udp && t - last_expire > UDP_TIMEOUT_NS / 10) {
			for (unsigned i = 0; i < w->nconns; i++)
				udp_expire(&w->conns[i], t);
			last_expire = t;
		}
	}
	/* Whatever is still in flight never came back. */
	for (unsigned i = 0; i < w->nconns; i++) {
		struct conn *c = &w->conns[i];

		if (c->qcount > 0) {
			(w->preloading ? &w->pre : &w->c)->timeouts += c->qcount;
			/* counted as timeouts; a reopened stream is in sync */
			c->qcount = 0;
			memset(c->used, 0, c->qcap);
			conn_reset(c, "replies missing at the end");
		}
		c->fill_count = 0;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct bench_opts *o = w->o;
	uint64_t t0, deadline;
	double cpu0;

	/* Preload: this thread's slice of the key space, all sets. */
	w->preloading = 1;
	w->window = o->udp ? o->pipeline : PRELOAD_WINDOW;
	w->preload_next = o->keys * w->id / o->threads;
	w->preload_end = o->keys * (w->id + 1) / o->threads;
	w->budget = o->preload ? w->preload_end - w->preload_next : 0;
	t0 = now_ns();
	if (w->budget > 0)
		run_phase(w, t0 + MAX_COUNTED_SECS * NS_PER_SEC);
	w->preload_secs = (double)(now_ns() - t0) / 1e9;
	pthread_barrier_wait(w->barrier);

	/* Load: the measured phase. */
	w->preloading = 0;
	w->window = o->pipeline;
	w->budget = o->requests / o->threads +
		    (w->id < o->requests % o->threads ? 1 : 0);
	if (!o->requests_set)
		w->budget = UINT64_MAX;
	t0 = now_ns();
	cpu0 = thread_cpu_secs();
	deadline = t0 + (uint64_t)(o->duration * 1e9);
	if (w->budget > 0)
		run_phase(w, deadline);
	w->load_secs = (double)(now_ns() - t0) / 1e9;
	w->cpu_secs = thread_cpu_secs() - cpu0;
	return NULL;
}

/* ---- set-up and report --------------------------------------------------- */

static int resolve(const struct bench_opts *o, struct sockaddr_storage *ss,
		   socklen_t *len)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC };
	struct addrinfo *ai;
	int rc;

	hints.ai_socktype = o->udp ? SOCK_DGRAM : SOCK_STREAM;
	rc = getaddrinfo(o->host, o->port, &hints, &ai);
	if (rc != 0) {
		fprintf(stderr, "dpcache-bench: %s:%s: %s\n", o->host, o->port,
			gai_strerror(rc));
		return -1;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static int worker_setup(struct worker *w, unsigned id, const struct bench_opts *o)
{
	w->id = id;
	w->o = o;
	bench_rng_init(&w->rng, o->seed * 1000003ULL + id);
	w->nconns = o->conns / o->threads + (id < o->conns % o->threads ? 1 : 0);
	/* Scans of different threads start apart so they stay cold. */
	w->scan_next = o->keys * id / o->threads;
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	w->conns = calloc(w->nconns, sizeof(*w->conns));
	if (w->ep < 0 || w->conns == NULL)
		return -1;
	for (unsigned i = 0; i < w->nconns; i++)
		w->conns[i].fd = -1; /* teardown may see conns never opened */
	for (unsigned i = 0; i < w->nconns; i++) {
		int rc = conn_init(&w->conns[i], w);

		if (rc < 0) {
			fprintf(stderr, "dpcache-bench: connect to %s:%s: %s\n",
				o->host, o->port, strerror(-rc));
			return -1;
		}
	}
	return 0;
}

static void worker_teardown(struct worker *w)
{
	for (unsigned i = 0; w->conns != NULL && i < w->nconns; i++)
		conn_deinit(&w->conns[i]);
	free(w->conns);
	if (w->ep >= 0)
		close(w->ep);
}

static void report(const struct bench_opts *o, struct worker *ws)
{
	struct bench_counts c = { 0 }, pre = { 0 };
	static struct bench_hist h; /* big; keep it off the stack */
	double secs = 0, pre_secs = 0, cpu = 0, ops_s;
	struct bench_summary sum;

	for (unsigned i = 0; i < o->threads; i++) {
		bench_counts_add(&c, &ws[i].c);
		bench_counts_add(&pre, &ws[i].pre);
		bench_hist_merge(&h, &ws[i].hist);
		if (ws[i].load_secs > secs)
			secs = ws[i].load_secs;
		if (ws[i].preload_secs > pre_secs)
			pre_secs = ws[i].preload_secs;
		cpu += ws[i].cpu_secs;
	}
	ops_s = secs > 0 ? (double)c.ops / secs : 0;
	if (!o->quiet) {
		printf("dpcache-bench %s:%s proto=%s %s conns=%u threads=%u "
		       "pipeline=%u ratio=%u:%u\n",
		       o->host, o->port, bench_proto_name(o->proto),
		       o->udp ? "udp" : "tcp", o->conns, o->threads, o->pipeline,
		       o->ratio_get, o->ratio_set);
		printf("  keys=%" PRIu64 " key_size=%zu value_size=%zu zipf=%.2f "
		       "scan=%.2f fill_on_miss=%d seed=%" PRIu64 "\n",
		       o->keys, o->key_size, o->value_size, o->zipf,
		       o->scan_fraction, o->fill_on_miss, o->seed);
		if (o->preload)
			bench_report_preload(&pre, pre_secs);
		printf("load:    %" PRIu64 " ops in %.2f s = %.0f ops/s "
		       "(client cpu %.0f%%)\n", c.ops, secs, ops_s,
		       secs > 0 ? 100.0 * cpu / secs / o->threads : 0.0);
		bench_report_results(&c, &h, o->scan_fraction > 0);
	}
	sum = (struct bench_summary){
		.proto = bench_proto_name(o->proto), .udp = o->udp,
		.conns = o->conns, .threads = o->threads,
		.pipeline = o->pipeline, .secs = secs, .ops_per_sec = ops_s,
		.client_cpu = secs > 0 ? cpu / secs / o->threads : 0.0,
	};
	bench_report_summary(&sum, &c, &pre, &h);
	printf("\n");
	fflush(stdout);
}

/* --dpdk: hand the run to bench_dpdk.c; argv[o->eal_first..] is EAL's. */
static int dpdk_main(const struct bench_opts *o, int argc, char **argv)
{
#ifdef BENCH_HAVE_DPDK
	struct bench_dpdk_opts d = {
		.proto = o->proto, .udp = o->udp, .conns = o->conns,
		.pipeline = o->pipeline, .ratio_get = o->ratio_get,
		.ratio_set = o->ratio_set, .keys = o->keys,
		.key_size = o->key_size, .value_size = o->value_size,
		.zipf = o->zipf, .duration = o->duration,
		.requests = o->requests, .requests_set = o->requests_set,
		.preload = o->preload, .seed = o->seed, .quiet = o->quiet,
		.rto_ms = o->rto_ms, .wait_secs = o->wait_secs,
	};
	struct in_addr a;
	char **eal_argv;
	uint64_t port;
	int eal_argc = argc - o->eal_first + 1, rc;

	if (inet_pton(AF_INET, o->host, &a) != 1 ||
	    parse_u64_opt(o->port, &port) < 0 || port == 0 || port > 65535) {
		fprintf(stderr, "dpcache-bench: --dpdk needs --server IPV4:PORT\n");
		return 2;
	}
	d.server_ip = ntohl(a.s_addr);
	d.server_port = (uint16_t)port;
	if (inet_pton(AF_INET, o->local_ip, &a) != 1) {
		fprintf(stderr, "dpcache-bench: bad --local-ip %s\n", o->local_ip);
		return 2;
	}
	d.local_ip = ntohl(a.s_addr);
	eal_argv = calloc((size_t)eal_argc + 1, sizeof(*eal_argv));
	if (eal_argv == NULL)
		return 1;
	eal_argv[0] = argv[0];
	for (int i = o->eal_first; i < argc; i++)
		eal_argv[i - o->eal_first + 1] = argv[i];
	rc = bench_dpdk_run(&d, eal_argc, eal_argv);
	free(eal_argv);
	return rc;
#else
	(void)argc;
	(void)argv;
	(void)o;
	fprintf(stderr, "dpcache-bench: built without libdpdk: no --dpdk\n");
	return 2;
#endif
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_zipf zipf;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	pthread_barrier_t barrier;
	struct worker *ws;
	int rc = 1;

	if (parse_opts(argc, argv, &o) < 0)
		return 2;
	if (o.dpdk)
		return dpdk_main(&o, argc, argv);
	if (resolve(&o, &addr, &addrlen) < 0)
		return 1;
	if (o.zipf > 0 && bench_zipf_init(&zipf, o.keys, o.zipf) < 0)
		return 2;
	ws = calloc(o.threads, sizeof(*ws));
	if (ws == NULL)
		return 1;
	pthread_barrier_init(&barrier, NULL, o.threads);
	for (unsigned i = 0; i < o.threads; i++) {
		ws[i].ep = -1;
		ws[i].addr = addr;
		ws[i].addrlen = addrlen;
		ws[i].barrier = &barrier;
		ws[i].zipf = o.zipf > 0 ? &zipf : NULL;
		if (worker_setup(&ws[i], i, &o) < 0)
			goto out;
	}
	for (unsigned i = 0; i < o.threads; i++) {
		if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0) {
			fprintf(stderr, "dpcache-bench: pthread_create failed\n");
			/* Threads already started wait at the barrier forever;
			 * exiting the process ends them. */
			exit(1);
		}
	}
	for (unsigned i = 0; i < o.threads; i++)
		pthread_join(ws[i].tid, NULL);
	report(&o, ws);
	rc = 0;
	for (unsigned i = 0; i < o.threads; i++) {
		if (ws[i].failed) {
			fprintf(stderr, "dpcache-bench: thread %u lost its "
				"connections\n", i);
			rc = 1;
		}
	}
out:
	for (unsigned i = 0; i < o.threads; i++)
		worker_teardown(&ws[i]);
	pthread_barrier_destroy(&barrier);
	free(ws);
	return rc;
}
