/*
 * tests/fuzz/fuzz_udp.c - libFuzzer target: one datagram to mc_udp_handle.
 * Checks the reply framing: every datagram but the last is exactly
 * MC_UDP_MAX_PAYLOAD bytes, each carries the request id, its sequence number
 * and the total.
 */
#include <stddef.h>
#include <stdint.h>

#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_frames(const uint8_t *req, unsigned n, const struct mc_buf *out)
{
	size_t off = 0;

	if (n == 0) {
		if (out->len != 0)
			__builtin_trap();
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		const unsigned char *h = (const unsigned char *)out->data + off;
		size_t dlen = i + 1 < n ? MC_UDP_MAX_PAYLOAD : out->len - off;
		if (off >= out->len || dlen <= MC_UDP_HEADER_SIZE ||
		    dlen > MC_UDP_MAX_PAYLOAD)
			__builtin_trap();
		if (h[0] != req[0] || h[1] != req[1] ||
		    ((h[2] << 8) | h[3]) != (int)i ||
		    ((unsigned)(h[4] << 8) | h[5]) != n || h[6] != 0 || h[7] != 0)
			__builtin_trap();
		off += dlen;
	}
	if (off != out->len)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_env *e = fuzz_env_get();

	e->out.len = 0;
	unsigned n = mc_udp_handle(e->w, (const char *)data, size, &e->out);
	check_frames(data, n, &e->out);
	cache_thread_quiescent(mc_worker_cache_thread(e->w));
	return 0;
}
