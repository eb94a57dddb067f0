/*
 * tests/fuzz/fuzz_common.h - what the protocol fuzzers share: one cache,
 * server and worker for the whole process (created on first use, on the
 * fuzzing thread), and a tiny transport that feeds a session the way the
 * real ones do.
 */
#ifndef DPCACHE_FUZZ_COMMON_H
#define DPCACHE_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/memcache/mc_internal.h"

struct fuzz_env {
	struct cache *cache;
	struct mc_server *server;
	struct mc_worker *w;
	struct mc_buf out;
};

/* The process-wide environment; aborts if it cannot be built (that is a
 * setup failure, not a finding). */
struct fuzz_env *fuzz_env_get(void);

/*
 * Feeds data[1..] to a fresh session as a TCP stream. data[0] picks how the
 * bytes arrive: with its top bit set, in chunks of (data[0] & 0x7f) + 1
 * bytes; otherwise in two pieces cut at a point chosen by data[0]. With
 * 'binary', the stream's first byte is forced to the binary magic, else
 * away from it, so each fuzzer stays on its protocol.
 * Traps (a finding) if the session breaks the mc_session_feed contract.
 */
void fuzz_stream(struct fuzz_env *e, const uint8_t *data, size_t size, bool binary);

#endif
