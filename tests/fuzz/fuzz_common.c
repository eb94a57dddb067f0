/* tests/fuzz/fuzz_common.c - see fuzz_common.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_common.h"

/* Small limits keep each run fast and reach the "too large" paths. */
#define FUZZ_MEM_LIMIT   (8u * 1024u * 1024u)
#define FUZZ_ITEM_MAX    (64u * 1024u)
#define FUZZ_HIGH_WATER  4096u
#define FUZZ_MAX_CALLS   100000u

/*
 * From a static library the linker takes binary.o only if something needs
 * it; should a weak fallback of mc_binary_feed ever appear elsewhere (as
 * session.c once had), the fuzzers would silently test that instead. This
 * reference makes sure they link the real binary.o.
 */
int (*const fuzz_binary_anchor)(struct mc_worker *, const char *, size_t,
				struct mc_buf *) = mc_binary_run_buffer;

struct fuzz_env *fuzz_env_get(void)
{
	static struct fuzz_env env;
	static bool ready;

	if (ready)
		return &env;
	struct cache_config cc = {
		.mem_limit = FUZZ_MEM_LIMIT,
		.item_size_max = FUZZ_ITEM_MAX,
	};
	env.cache = cache_create(&cc);
	if (env.cache == NULL)
		goto fail;
	struct mc_server_config sc = {
		.cache = env.cache,
		.item_size_max = FUZZ_ITEM_MAX,
		.out_high_water = FUZZ_HIGH_WATER,
		.udp_enabled = true,
	};
	env.server = mc_server_create(&sc);
	if (env.server == NULL)
		goto fail;
	env.w = mc_worker_create(env.server);
	if (env.w == NULL)
		goto fail;
	mc_buf_init(&env.out);
	ready = true;
	return &env;
fail:
	fprintf(stderr, "fuzz: cannot set up the cache/server/worker\n");
	abort();
}

/*
 * Offers pending input until the session wants more. The pending bytes live
 * in 'pend' (a transport's receive buffer); output is "sent" (dropped) on
 * PAUSE. Returns false once the session asked to close.
 */
static bool pump(struct fuzz_env *e, struct mc_session *s, struct mc_buf *pend)
{
	for (unsigned calls = 0; calls < FUZZ_MAX_CALLS; calls++) {
		size_t used = 0;
		int rc = mc_session_feed(s, pend->data, pend->len, &used, &e->out);
		if (used > pend->len)
			__builtin_trap();          /* consumed more than it was given */
		mc_buf_consume(pend, used);
		cache_thread_quiescent(mc_worker_cache_thread(e->w));
		if (rc == MC_FEED_CLOSE)
			return false;
		if (rc == MC_FEED_MORE)
			return true;
		if (rc != MC_FEED_PAUSE)
			__builtin_trap();          /* not a MC_FEED_* value */
		/* PAUSE must mean the output is full: drain and go on. */
		if (e->out.len < e->server->cfg.out_high_water)
			__builtin_trap();
		e->out.len = 0;
	}
	__builtin_trap();                          /* never makes progress */
}

void fuzz_stream(struct fuzz_env *e, const uint8_t *data, size_t size, bool binary)
{
	if (size < 1)
		return;
	uint8_t mode = data[0];
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	char first = 0;

	if (len > 0) {
		first = in[0];
		if (binary)
			first = (char)MC_BIN_REQ_MAGIC;
		else if ((uint8_t)first == MC_BIN_REQ_MAGIC)
			first = 'g';
	}

	struct mc_session *s = mc_session_create(e->w);
	struct mc_buf pend;
	mc_buf_init(&pend);
	if (s == NULL)
		abort();
	e->out.len = 0;

	size_t chunk;
	if (mode & 0x80)
		chunk = (size_t)(mode & 0x7f) + 1;
	else
		chunk = len > 0 ? (len * mode) / 127 + 1 : 1;   /* cut point */

	size_t off = 0;
	bool open = true;
	while (open && off < len) {
		size_t n = len - off < chunk ? len - off : chunk;
		if (mc_buf_append(&pend, in + off, n) < 0)
			abort();
		if (off == 0)
			pend.data[0] = first;
		off += n;
		open = pump(e, s, &pend);
		if (!(mode & 0x80))
			chunk = len;           /* second piece: the rest */
		e->out.len = 0;
	}
	mc_session_destroy(&s);
	mc_buf_deinit(&pend);
	cache_thread_quiescent(mc_worker_cache_thread(e->w));
}
