/*
 * bench_proto.h - compose memcached requests and check their replies, for
 * the text, meta and binary protocols.
 *
 * Keys and values are a pure function of the key index, so a reply can be
 * verified without remembering what was stored: key i is 'k' followed by i
 * in decimal, zero-padded to exactly key_size bytes, and every byte of its
 * value is 'a' + i % 26. A get that returns another key's value is caught.
 */
#ifndef DPCACHE_PERF_BENCH_PROTO_H
#define DPCACHE_PERF_BENCH_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum bench_proto {
	BENCH_PROTO_TEXT,
	BENCH_PROTO_META,
	BENCH_PROTO_BINARY,
};

enum bench_op {
	BENCH_OP_GET,
	BENCH_OP_SET,
};

/* One request in flight: what was asked, so the reply can be checked. */
struct bench_req {
	uint64_t key;       /* key index */
	uint64_t start_ns;  /* CLOCK_MONOTONIC when it was written */
	uint32_t opaque;    /* binary opaque; UDP request id */
	uint8_t op;         /* enum bench_op */
	uint8_t is_scan;    /* part of a --scan-fraction scan */
	uint8_t measured;   /* counts towards the results (not preload) */
};

/* How a well-formed reply ended. */
enum bench_result {
	BENCH_R_HIT,
	BENCH_R_MISS,
	BENCH_R_STORED,
	BENCH_R_NOT_STORED,
	BENCH_R_SERVER_ERROR, /* an error reply; the stream is still in sync */
};

/* Longest key dpcache-bench makes; memcached's limit is 250. */
#define BENCH_KEY_MAX 250

const char *bench_proto_name(enum bench_proto p);
/* 0 and *out set, or -EINVAL for an unknown name. */
int bench_proto_parse(const char *name, enum bench_proto *out);

/* Write key idx's name, exactly key_size bytes, no terminator. key_size
 * must leave room for 'k' and every digit of idx (bench_key_fits()). */
void bench_key_name(uint64_t idx, size_t key_size, char *out);
int bench_key_fits(uint64_t max_idx, size_t key_size);
static inline char bench_value_byte(uint64_t idx)
{
	return (char)('a' + idx % 26);
}

/* Upper bound of one request's size, for buffer checks. */
size_t bench_req_max_len(size_t key_size, size_t value_size);

/* Append request r to out (at least bench_req_max_len() bytes free);
 * returns the bytes written. */
size_t bench_compose(enum bench_proto p, const struct bench_req *r,
		     size_t key_size, size_t value_size, char *out);

/*
 * Parse the reply to r at the start of buf[0, len).
 * Returns the bytes it takes (> 0) and sets *res; 0 when the reply has not
 * fully arrived yet (not an error); -1 when the bytes cannot be the reply to
 * r (malformed, wrong key, wrong value bytes, wrong opaque): the stream is
 * out of sync and the caller should drop the connection.
 */
ssize_t bench_parse(enum bench_proto p, const struct bench_req *r,
		    size_t key_size, const char *buf, size_t len,
		    enum bench_result *res);

#endif
