/*
 * replication/ring.h - the consistent-hash ring, compatible with
 * libmemcached's weighted consistent ketama (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED:
 * MD5, 160 points per server scaled by weight), so a stock client given the
 * same server list ("host:port" strings and weights) picks the same owner for
 * every key. The matching pylibmc setting is behaviors={"ketama_weighted":
 * True} with "host:port:weight" server specs; {"ketama": True} is a
 * different ring even with all weights 1 (see ring.c).
 *
 * A ring is immutable once built and may be read by any number of threads.
 */
#ifndef DPCACHE_REPLICATION_RING_H
#define DPCACHE_REPLICATION_RING_H

#include <stddef.h>
#include <stdint.h>

#define RING_POINTS_PER_SERVER 160

struct ring_server {
	const char *addr;     /* "host:port", exactly as clients list it */
	uint32_t weight;      /* >= 1 */
};

struct ring;

/* Builds the continuum. n may be 0 (every lookup then answers -1).
 * NULL on bad input (NULL addr, weight 0) or no memory. */
struct ring *ring_build(const struct ring_server *servers, unsigned n);
/* Accepts NULL. */
void ring_free(struct ring *r);

/* libmemcached's MEMCACHED_HASH_MD5 of a key: the first four bytes of its
 * MD5 digest, little-endian. */
uint32_t ring_hash(const char *key, size_t nkey);

/* The server (index into ring_build's array) that owns 'hash': the first
 * point >= hash, wrapping to the first point. -1 on an empty ring. */
int ring_lookup(const struct ring *r, uint32_t hash);

/* Splits "host:port" (also "[v6]:port", and a bare "host" meaning port
 * 11211, as clients read it) into the host name a client keeps (IPv6 without
 * brackets) and the port (1..65535). 0, or -EINVAL when it is malformed or
 * the host does not fit in hostlen. Any thread; touches only its arguments. */
int ring_addr_split(const char *addr, char *host, size_t hostlen,
		    unsigned *port);

/* Number of servers and of points on the continuum. */
unsigned ring_nservers(const struct ring *r);
unsigned ring_npoints(const struct ring *r);

/* The fraction (0..1) of the 32-bit hash space that server i owns. */
double ring_share(const struct ring *r, unsigned i);

/* One point of the continuum: the arc (previous point, value] belongs to
 * 'server'. Points are in ascending value order. */
struct ring_point {
	uint32_t value;
	uint32_t server;
};
const struct ring_point *ring_points(const struct ring *r);

#endif /* DPCACHE_REPLICATION_RING_H */
