/*
 * dataplane/memcache/mc_binary.h - memcached's binary protocol: wire
 * constants and the per-connection parser state (owned by the binary side).
 *
 * The wire format is memcached's protocol_binary.h: a 24-byte header in
 * network byte order, then extras, key and value. The state below lives in
 * struct mc_session's union; one per binary connection.
 *
 * The parser is a small state machine over the byte stream:
 *   HEADER  - waiting for the 24-byte header plus extras and key.
 *   VALUE   - a store's value is arriving; bytes are copied straight into
 *             'item' (allocated when the header arrived), so the transport
 *             never has to hold a whole value.
 *   SWALLOW - a rejected request's remaining body is dropped ('left' bytes)
 *             so the connection stays in sync, as memcached does.
 */
#ifndef DPCACHE_MC_BINARY_H
#define DPCACHE_MC_BINARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cache_item;
struct mc_buf;
struct mc_worker;

#define MC_BIN_HEADER_SIZE 24
#define MC_BIN_REQ_MAGIC   0x80
#define MC_BIN_RES_MAGIC   0x81

/* Opcodes memcached 1.6.18 knows (protocol_binary.h). */
enum mc_bin_opcode {
	MC_BIN_GET = 0x00,
	MC_BIN_SET = 0x01,
	MC_BIN_ADD = 0x02,
	MC_BIN_REPLACE = 0x03,
	MC_BIN_DELETE = 0x04,
	MC_BIN_INCREMENT = 0x05,
	MC_BIN_DECREMENT = 0x06,
	MC_BIN_QUIT = 0x07,
	MC_BIN_FLUSH = 0x08,
	MC_BIN_GETQ = 0x09,
	MC_BIN_NOOP = 0x0a,
	MC_BIN_VERSION = 0x0b,
	MC_BIN_GETK = 0x0c,
	MC_BIN_GETKQ = 0x0d,
	MC_BIN_APPEND = 0x0e,
	MC_BIN_PREPEND = 0x0f,
	MC_BIN_STAT = 0x10,
	MC_BIN_SETQ = 0x11,
	MC_BIN_ADDQ = 0x12,
	MC_BIN_REPLACEQ = 0x13,
	MC_BIN_DELETEQ = 0x14,
	MC_BIN_INCREMENTQ = 0x15,
	MC_BIN_DECREMENTQ = 0x16,
	MC_BIN_QUITQ = 0x17,
	MC_BIN_FLUSHQ = 0x18,
	MC_BIN_APPENDQ = 0x19,
	MC_BIN_PREPENDQ = 0x1a,
	MC_BIN_VERBOSITY = 0x1b,   /* defined by the spec, unknown to memcached 1.6 */
	MC_BIN_TOUCH = 0x1c,
	MC_BIN_GAT = 0x1d,
	MC_BIN_GATQ = 0x1e,
	MC_BIN_SASL_LIST_MECHS = 0x20,
	MC_BIN_SASL_AUTH = 0x21,
	MC_BIN_SASL_STEP = 0x22,
	MC_BIN_GATK = 0x23,
	MC_BIN_GATKQ = 0x24,
};

/* Response status codes (protocol_binary.h). */
enum mc_bin_status {
	MC_BIN_OK = 0x00,
	MC_BIN_KEY_ENOENT = 0x01,
	MC_BIN_KEY_EEXISTS = 0x02,
	MC_BIN_E2BIG = 0x03,
	MC_BIN_EINVAL = 0x04,
	MC_BIN_NOT_STORED = 0x05,
	MC_BIN_DELTA_BADVAL = 0x06,
	MC_BIN_AUTH_ERROR = 0x20,
	MC_BIN_UNKNOWN_COMMAND = 0x81,
	MC_BIN_ENOMEM = 0x82,
	MC_BIN_NOT_SUPPORTED = 0x83,  /* used only for requests refused over UDP */
	MC_BIN_ETMPFAIL = 0x86,       /* cluster: forwarding to the owner failed */
};

/* A request header in host byte order. */
struct mc_bin_header {
	uint8_t magic;
	uint8_t opcode;
	uint16_t keylen;
	uint8_t extlen;
	uint8_t datatype;
	uint16_t vbucket;
	uint32_t bodylen;
	uint32_t opaque;
	uint64_t cas;
};

enum mc_bin_phase {
	MC_BIN_PHASE_HEADER = 0,
	MC_BIN_PHASE_VALUE,
	MC_BIN_PHASE_SWALLOW,
};

struct mc_bin_state {
	uint8_t phase;              /* enum mc_bin_phase */
	struct mc_bin_header req;   /* the request being served (VALUE, SWALLOW) */
	struct cache_item *item;    /* VALUE: the value being received, owned */
	uint64_t hash;              /* VALUE: hash of item's key */
	uint32_t value_off;         /* VALUE: bytes already copied */
	uint64_t left;              /* VALUE: bytes still due; SWALLOW: bytes to drop */
	bool fwd_store;             /* cluster: the value goes to the owner (fwd->req_buf) */
	bool fresh_after;           /* cluster: a moving-in key, mark it FRESH once stored */
};

/*
 * Runs the complete binary request(s) held in a buffer (UDP: the caller
 * checks it is exactly one) with a throw-away session and appends the
 * replies to 'out'. Returns 0, or -EINVAL if the buffer ends inside a
 * request. Worker's thread, online.
 */
int mc_binary_run_buffer(struct mc_worker *w, const char *req, size_t len,
			 struct mc_buf *out);

#endif
