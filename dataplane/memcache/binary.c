/*
 * dataplane/memcache/binary.c - memcached's binary protocol.
 *
 * Design note. Replies match what memcached 1.6.18 sends, byte for byte
 * (checked against the real server; see tests/memcache/test_binary.c):
 *
 *  - A request is dispatched once its header, extras and key have arrived.
 *    A store's value is then streamed into a fresh cache item as bytes come
 *    in, so a large value never has to sit whole in the input buffer.
 *  - Quiet opcodes (GETQ, SETQ, ...) suppress success replies, except get
 *    hits; errors are always sent. A reply carries the opcode the client
 *    sent. VERBOSITY (0x1b) is unknown to memcached 1.6, so it is here.
 *  - Framing errors: a bad magic closes the connection without a reply;
 *    keylen+extlen > bodylen answers UNKNOWN_COMMAND and closes; a key over
 *    250 bytes or a length that does not fit the opcode answers EINVAL and
 *    closes. An unknown opcode (and SASL, which is not configured) answers
 *    UNKNOWN_COMMAND and drops its body, keeping the connection in sync.
 *  - A value above item_size_max answers E2BIG; its body is dropped and, for
 *    SET, the old value is deleted so no stale data survives (memcached).
 *
 * Two deliberate differences from memcached, both on malformed input where
 * memcached loses the stream: (1) memcached drops 'bodylen' bytes after the
 * key of an unknown opcode (too many when the request has extras or a key,
 * so it hangs or reads garbage); we drop exactly the rest of the body.
 * (2) STAT/TOUCH/GAT with a body longer than their key and extras: memcached
 * parses the surplus as the next header; we drop it. Framing errors are
 * answered as soon as the 24-byte header shows them, without waiting for the
 * key, so a client cannot make us buffer a 64 KiB key.
 *
 * Cluster (w->cluster set): a keyed request is routed before it runs
 * (bin_route, out of line). One another node owns goes there as a meta
 * request and the session waits for the answer (BIN_WAIT); a store first
 * receives its value into a local item as usual, whose bytes are then
 * copied into the request and the item freed. A pull leaves the whole
 * request unconsumed (BIN_REDO) and it runs again once the key is here.
 *
 * Threads: everything here runs on the session's worker thread, online.
 * Item pointers from lookups never outlive a call; the item being filled is
 * unlinked and owned by the session until cache_store() takes it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cache/clock.h"
#include "dataplane/memcache/mc_internal.h"

/* memcached answers an incr on a missing key with ENOENT only when the
 * request's expiration is this value; otherwise it creates the key. */
#define MC_BIN_INCR_NO_CREATE 0xffffffffu

#define MC_BIN_INCR_EXTLEN  20u
#define MC_BIN_STORE_EXTLEN 8u
#define MC_BIN_TOUCH_EXTLEN 4u
#define MC_BIN_GET_EXTLEN   4u   /* flags in a get reply */

/* ---- byte order ---------------------------------------------------------- */

static uint16_t get_be16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get_be32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t get_be64(const unsigned char *p)
{
	return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4);
}

static void put_be16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void put_be64(unsigned char *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static void bin_parse_header(const char *in, struct mc_bin_header *h)
{
	const unsigned char *p = (const unsigned char *)in;

	h->magic = p[0];
	h->opcode = p[1];
	h->keylen = get_be16(p + 2);
	h->extlen = p[4];
	h->datatype = p[5];
	h->vbucket = get_be16(p + 6);
	h->bodylen = get_be32(p + 8);
	h->opaque = get_be32(p + 12);
	h->cas = get_be64(p + 16);
}

/* ---- replies ------------------------------------------------------------- */

/*
 * Appends a response header followed by room for 'bodylen' bytes; returns a
 * pointer to that room (the caller fills it and nothing else is appended in
 * between), or NULL on no memory.
 */
static unsigned char *bin_reply(struct mc_buf *out, const struct mc_bin_header *req,
				uint16_t status, uint8_t extlen, uint16_t keylen,
				uint32_t bodylen, uint64_t cas)
{
	unsigned char *p = (unsigned char *)mc_buf_reserve(out,
					MC_BIN_HEADER_SIZE + (size_t)bodylen);
	if (p == NULL)
		return NULL;
	p[0] = MC_BIN_RES_MAGIC;
	p[1] = req->opcode;
	put_be16(p + 2, keylen);
	p[4] = extlen;
	p[5] = 0;                       /* datatype: raw bytes */
	put_be16(p + 6, status);
	put_be32(p + 8, bodylen);
	put_be32(p + 12, req->opaque);
	put_be64(p + 16, cas);
	out->len += MC_BIN_HEADER_SIZE + (size_t)bodylen;
	return p + MC_BIN_HEADER_SIZE;
}

/* memcached's error texts (write_bin_error). */
static const char *bin_status_text(uint16_t status)
{
	switch (status) {
	case MC_BIN_KEY_ENOENT: return "Not found";
	case MC_BIN_KEY_EEXISTS: return "Data exists for key.";
	case MC_BIN_E2BIG: return "Too large.";
	case MC_BIN_EINVAL: return "Invalid arguments";
	case MC_BIN_NOT_STORED: return "Not stored.";
	case MC_BIN_DELTA_BADVAL: return "Non-numeric server-side value for incr or decr";
	case MC_BIN_AUTH_ERROR: return "Auth failure.";
	case MC_BIN_UNKNOWN_COMMAND: return "Unknown command";
	case MC_BIN_ENOMEM: return "Out of memory";
	case MC_BIN_NOT_SUPPORTED: return "Not supported";
	default: return "UNHANDLED ERROR";
	}
}

/* An error reply; text NULL = the status's usual text. 0 or -ENOMEM. */
static int bin_error(struct mc_buf *out, const struct mc_bin_header *req,
		     uint16_t status, const char *text)
{
	if (text == NULL)
		text = bin_status_text(status);
	size_t n = strlen(text);
	unsigned char *body = bin_reply(out, req, status, 0, 0, (uint32_t)n, 0);
	if (body == NULL)
		return -ENOMEM;
	memcpy(body, text, n);
	return 0;
}

/* The two writers above, for forward.c (answers of forwarded requests). */
unsigned char *mc_bin_reply(struct mc_buf *out, const struct mc_bin_header *req,
			    uint16_t status, uint8_t extlen, uint16_t keylen,
			    uint32_t bodylen, uint64_t cas)
{
	return bin_reply(out, req, status, extlen, keylen, bodylen, cas);
}

int mc_bin_error(struct mc_buf *out, const struct mc_bin_header *req,
		 uint16_t status, const char *text)
{
	return bin_error(out, req, status, text);
}

/* A success reply with an optional small body (value of incr, version). */
static int bin_ok(struct mc_buf *out, const struct mc_bin_header *req,
		  const void *body, uint32_t n, uint64_t cas)
{
	unsigned char *p = bin_reply(out, req, MC_BIN_OK, 0, 0, n, cas);
	if (p == NULL)
		return -ENOMEM;
	if (n > 0)
		memcpy(p, body, n);
	return 0;
}

/* ---- opcodes ------------------------------------------------------------- */

/* The opcode a quiet variant stands for; *quiet says whether it was one. */
static uint8_t bin_base_opcode(uint8_t op, bool *quiet)
{
	*quiet = true;
	switch (op) {
	case MC_BIN_GETQ: return MC_BIN_GET;
	case MC_BIN_GETKQ: return MC_BIN_GETK;
	case MC_BIN_SETQ: return MC_BIN_SET;
	case MC_BIN_ADDQ: return MC_BIN_ADD;
	case MC_BIN_REPLACEQ: return MC_BIN_REPLACE;
	case MC_BIN_DELETEQ: return MC_BIN_DELETE;
	case MC_BIN_INCREMENTQ: return MC_BIN_INCREMENT;
	case MC_BIN_DECREMENTQ: return MC_BIN_DECREMENT;
	case MC_BIN_QUITQ: return MC_BIN_QUIT;
	case MC_BIN_FLUSHQ: return MC_BIN_FLUSH;
	case MC_BIN_APPENDQ: return MC_BIN_APPEND;
	case MC_BIN_PREPENDQ: return MC_BIN_PREPEND;
	case MC_BIN_GATQ: return MC_BIN_GAT;
	case MC_BIN_GATKQ: return MC_BIN_GATK;
	default:
		*quiet = false;
		return op;
	}
}

/*
 * Whether the lengths fit the opcode (memcached's dispatch_bin_command).
 * Unknown opcodes "fit": they get UNKNOWN_COMMAND, not EINVAL.
 */
static bool bin_lengths_ok(uint8_t base, const struct mc_bin_header *h)
{
	uint32_t kl = h->keylen, el = h->extlen, bl = h->bodylen;

	switch (base) {
	case MC_BIN_VERSION:
	case MC_BIN_NOOP:
	case MC_BIN_QUIT:
	case MC_BIN_SASL_LIST_MECHS:
		return el == 0 && kl == 0 && bl == 0;
	case MC_BIN_FLUSH:
		return kl == 0 && bl == el && (el == 0 || el == 4);
	case MC_BIN_SET:
	case MC_BIN_ADD:
	case MC_BIN_REPLACE:
		return el == MC_BIN_STORE_EXTLEN && kl != 0 && bl >= kl + el;
	case MC_BIN_GET:
	case MC_BIN_GETK:
	case MC_BIN_DELETE:
		return el == 0 && kl > 0 && bl == kl;
	case MC_BIN_INCREMENT:
	case MC_BIN_DECREMENT:
		return el == MC_BIN_INCR_EXTLEN && kl > 0 && bl == kl + el;
	case MC_BIN_APPEND:
	case MC_BIN_PREPEND:
		return el == 0 && kl > 0;
	case MC_BIN_STAT:
		return el == 0;
	case MC_BIN_SASL_AUTH:
	case MC_BIN_SASL_STEP:
		return el == 0 && kl != 0;
	case MC_BIN_TOUCH:
	case MC_BIN_GAT:
	case MC_BIN_GATK:
		return el == MC_BIN_TOUCH_EXTLEN && kl != 0;
	default:
		return true;
	}
}

/* Everything one request handler needs. */
struct bin_req {
	struct mc_session *s;
	struct mc_worker *w;
	const struct mc_bin_header *h;
	uint8_t base;                /* opcode without the quiet bit */
	bool quiet;
	const unsigned char *ext;    /* h->extlen bytes */
	const char *key;             /* h->keylen bytes */
	struct mc_buf *out;
};

/* Result of a handler: keep going, or close after sending 'out'. */
#define BIN_CONTINUE 0
#define BIN_CLOSE    1
#define BIN_WAIT     2   /* cluster: a forward is out; the request is taken */
#define BIN_REDO     3   /* cluster: a pull is out; the request is not taken */

static int bin_result(int rc)
{
	return rc < 0 ? BIN_CLOSE : BIN_CONTINUE;  /* -ENOMEM: give up on the connection */
}

/* GET, GETK, GAT, GATK, TOUCH (and their quiet forms). */
static int bin_get(struct bin_req *r)
{
	bool touch = r->base == MC_BIN_TOUCH || r->base == MC_BIN_GAT ||
		     r->base == MC_BIN_GATK;
	bool with_key = r->base == MC_BIN_GETK || r->base == MC_BIN_GATK;
	bool with_value = r->base != MC_BIN_TOUCH;
	struct cache_read_opts opts = { 0 };
	size_t nkey = r->h->keylen;

	if (touch) {
		opts.touch = true;
		opts.new_exptime = cache_exptime_from_wire(get_be32(r->ext));
	}
	const struct cache_item *it = cache_get(r->w->ct, r->key, nkey,
						cache_hash(r->key, nkey),
						&opts, NULL);
	if (touch)
		MC_STAT_INC(r->w, cmd_touch);
	else
		MC_STAT_INC(r->w, cmd_get);

	if (it == NULL) {
		if (touch)
			MC_STAT_INC(r->w, touch_misses);
		else
			MC_STAT_INC(r->w, get_misses);
		if (r->quiet)
			return BIN_CONTINUE;
		if (!with_key)
			return bin_result(bin_error(r->out, r->h, MC_BIN_KEY_ENOENT, NULL));
		/* GETK/GATK misses carry the key and no text. */
		unsigned char *p = bin_reply(r->out, r->h, MC_BIN_KEY_ENOENT, 0,
					     (uint16_t)nkey, (uint32_t)nkey, 0);
		if (p == NULL)
			return BIN_CLOSE;
		memcpy(p, r->key, nkey);
		return BIN_CONTINUE;
	}

	if (touch)
		MC_STAT_INC(r->w, touch_hits);
	else
		MC_STAT_INC(r->w, get_hits);

	uint32_t nval = with_value ? it->nbytes : 0;
	uint16_t keylen = with_key ? (uint16_t)nkey : 0;
	uint32_t bodylen = MC_BIN_GET_EXTLEN + keylen + nval;
	unsigned char *p = bin_reply(r->out, r->h, MC_BIN_OK, MC_BIN_GET_EXTLEN,
				     keylen, bodylen, it->cas);
	if (p == NULL)
		return BIN_CLOSE;
	put_be32(p, it->client_flags);
	p += MC_BIN_GET_EXTLEN;
	memcpy(p, cache_item_key(it), keylen);
	memcpy(p + keylen, cache_item_value_const(it), nval);
	return BIN_CONTINUE;
}

static int bin_delete(struct bin_req *r)
{
	size_t nkey = r->h->keylen;
	enum cache_status st = cache_delete(r->w->ct, r->key, nkey,
					    cache_hash(r->key, nkey), r->h->cas);
	switch (st) {
	case CACHE_OK:
		MC_STAT_INC(r->w, delete_hits);
		if (r->quiet)
			return BIN_CONTINUE;
		return bin_result(bin_ok(r->out, r->h, NULL, 0, 0));
	case CACHE_EXISTS:
		return bin_result(bin_error(r->out, r->h, MC_BIN_KEY_EEXISTS, NULL));
	default:
		MC_STAT_INC(r->w, delete_misses);
		return bin_result(bin_error(r->out, r->h, MC_BIN_KEY_ENOENT, NULL));
	}
}

/* The 8-byte big-endian value of an incr/decr reply. */
static int bin_arith_reply(struct bin_req *r, uint64_t value, uint64_t cas)
{
	unsigned char body[8];

	if (r->quiet)
		return BIN_CONTINUE;
	put_be64(body, value);
	return bin_result(bin_ok(r->out, r->h, body, sizeof(body), cas));
}

/*
 * incr/decr on a missing key with an expiration other than 0xffffffff
 * creates the key with the 'initial' value, as memcached does (an ADD, so a
 * racing creator wins and we answer NOT_STORED).
 */
static int bin_arith_create(struct bin_req *r, uint64_t hash, uint64_t initial,
			    uint32_t expiration)
{
	char digits[24];
	int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)initial);
	enum cache_status err = CACHE_OK;
	struct cache_item *it = cache_item_alloc(r->w->ct, r->key, r->h->keylen, 0,
						 cache_exptime_from_wire(expiration),
						 (size_t)n, &err);
	if (it == NULL)
		return bin_result(bin_error(r->out, r->h, MC_BIN_ENOMEM,
					    "Out of memory allocating new item"));
	memcpy(cache_item_value(it), digits, (size_t)n);

	struct cache_store_args args = { .mode = CACHE_ADD };
	uint64_t cas = 0;
	if (cache_store(r->w->ct, it, hash, &args, &cas) != CACHE_OK)
		return bin_result(bin_error(r->out, r->h, MC_BIN_NOT_STORED, NULL));
	return bin_arith_reply(r, initial, cas);
}

static int bin_arith(struct bin_req *r)
{
	bool incr = r->base == MC_BIN_INCREMENT;
	size_t nkey = r->h->keylen;
	uint64_t hash = cache_hash(r->key, nkey);
	uint64_t initial = get_be64(r->ext + 8);
	uint32_t expiration = get_be32(r->ext + 16);
	struct cache_arith_args args = {
		.incr = incr,
		.delta = get_be64(r->ext),
		.cas_compare = r->h->cas,
	};
	uint64_t value = 0, cas = 0;

	enum cache_status st = cache_arith(r->w->ct, r->key, nkey, hash, &args,
					   &value, &cas);
	switch (st) {
	case CACHE_OK:
		if (incr)
			MC_STAT_INC(r->w, incr_hits);
		else
			MC_STAT_INC(r->w, decr_hits);
		return bin_arith_reply(r, value, cas);
	case CACHE_NOT_FOUND:
		if (expiration != MC_BIN_INCR_NO_CREATE)
			return bin_arith_create(r, hash, initial, expiration);
		if (incr)
			MC_STAT_INC(r->w, incr_misses);
		else
			MC_STAT_INC(r->w, decr_misses);
		return bin_result(bin_error(r->out, r->h, MC_BIN_KEY_ENOENT, NULL));
	case CACHE_NON_NUMERIC:
		return bin_result(bin_error(r->out, r->h, MC_BIN_DELTA_BADVAL, NULL));
	case CACHE_EXISTS:
		return bin_result(bin_error(r->out, r->h, MC_BIN_KEY_EEXISTS, NULL));
	default:
		return bin_result(bin_error(r->out, r->h, MC_BIN_ENOMEM,
					    "Out of memory incrementing value"));
	}
}

/* flush_all: the optional expiration follows memcached's exptime rules. */
static int bin_flush(struct bin_req *r)
{
	uint32_t delay = 0;

	if (r->h->extlen == 4) {
		uint32_t exp = get_be32(r->ext);
		uint32_t now = cache_clock_now();
		if (exp <= CACHE_REALTIME_MAXDELTA)
			delay = exp;
		else if (exp > now)
			delay = exp - now;     /* absolute time in the future */
	}
	cache_flush(r->w->ct, delay);
	MC_STAT_INC(r->w, cmd_flush);
	if (r->quiet)
		return BIN_CONTINUE;
	return bin_result(bin_ok(r->out, r->h, NULL, 0, 0));
}

/* ---- STAT ---------------------------------------------------------------- */

struct bin_stat_ctx {
	struct mc_buf *out;
	const struct mc_bin_header *h;
	int err;
};

/* One stat as its own response packet: key = name, value = value. */
static void bin_stat_emit(void *arg, const char *name, const char *value)
{
	struct bin_stat_ctx *c = arg;
	size_t nk = strlen(name), nv = strlen(value);

	if (c->err != 0 || nk > UINT16_MAX || nk + nv > UINT32_MAX)
		return;
	unsigned char *p = bin_reply(c->out, c->h, MC_BIN_OK, 0, (uint16_t)nk,
				     (uint32_t)(nk + nv), 0);
	if (p == NULL) {
		c->err = -ENOMEM;
		return;
	}
	memcpy(p, name, nk);
	memcpy(p + nk, value, nv);
}

/*
 * 'stats reset' has one implementation, on the text side (stats.c); run it
 * through the text parser rather than keep a second copy here.
 */
static int bin_stats_reset(struct mc_worker *w)
{
	static const char cmd[] = "stats reset\r\n";
	struct mc_buf scratch;

	mc_buf_init(&scratch);
	int rc = mc_text_run_buffer(w, cmd, sizeof(cmd) - 1, &scratch);
	mc_buf_deinit(&scratch);
	return rc;
}

/*
 * STAT with key = group ("" = general, "settings", ...), terminated by an
 * empty stat packet. memcached matches "reset" as a prefix and answers it
 * with the terminator alone.
 */
static int bin_stat(struct bin_req *r)
{
	struct bin_stat_ctx ctx = { .out = r->out, .h = r->h };
	char group[CACHE_KEY_MAX + 1];
	size_t nkey = r->h->keylen;   /* <= CACHE_KEY_MAX, checked before */

	memcpy(group, r->key, nkey);
	group[nkey] = '\0';
	if (nkey == 0) {
		(void)mc_stats_emit(r->w, NULL, bin_stat_emit, &ctx);
	} else if (nkey >= 5 && memcmp(group, "reset", 5) == 0) {
		(void)bin_stats_reset(r->w);   /* fails only without memory */
	} else if (nkey >= 6 && memcmp(group, "detail", 6) == 0) {
		/* dpcache keeps no per-prefix stats: "detail on|off" is
		 * accepted, "detail dump" is memcached's empty dump. */
		if (strcmp(group + 6, " dump") == 0)
			bin_stat_emit(&ctx, "detailed", "END\r\n");
		else if (strcmp(group + 6, " on") != 0 && strcmp(group + 6, " off") != 0)
			return bin_result(bin_error(r->out, r->h, MC_BIN_KEY_ENOENT, NULL));
	} else {
		size_t before = r->out->len;
		if (mc_stats_emit(r->w, group, bin_stat_emit, &ctx) == -ENOENT) {
			/* Unknown group: drop any partial output, "Not found". */
			r->out->len = before;
			return bin_result(bin_error(r->out, r->h, MC_BIN_KEY_ENOENT, NULL));
		}
	}
	if (ctx.err != 0)
		return BIN_CLOSE;
	bin_stat_emit(&ctx, "", "");
	return ctx.err != 0 ? BIN_CLOSE : BIN_CONTINUE;
}

/* ---- stores -------------------------------------------------------------- */

/* Ends a request whose remaining body must be dropped. */
static void bin_swallow(struct mc_bin_state *st, uint64_t n)
{
	st->phase = n > 0 ? MC_BIN_PHASE_SWALLOW : MC_BIN_PHASE_HEADER;
	st->left = n;
}

/* A forwarded store's value is complete: into the meta request begun by
 * bin_route, then off to the owner; the local item is dropped. */
static __attribute__((noinline)) int
bin_store_forward(struct mc_session *s, struct cache_item *it,
		  struct mc_buf *out)
{
	struct mc_fwd *f = s->fwd;

	s->bin.fwd_store = false;
	int rc = mc_buf_append(&f->req_buf, cache_item_value_const(it), it->nbytes);
	if (rc == 0)
		rc = mc_buf_append(&f->req_buf, "\r\n", 2);
	cache_item_abort(s->w->ct, &it);
	if (rc != 0)
		return BIN_CLOSE;
	return mc_fwd_start(s, out) ? BIN_WAIT : BIN_CONTINUE;
}

/*
 * The value is complete: link the item and answer (memcached's
 * complete_update_bin). Takes the item from the state.
 */
static int bin_store_complete(struct mc_session *s, struct mc_buf *out)
{
	struct mc_bin_state *st = &s->bin;
	struct mc_worker *w = s->w;
	const struct mc_bin_header *h = &st->req;
	bool quiet;
	uint8_t base = bin_base_opcode(h->opcode, &quiet);
	struct cache_store_args args = { .mode = CACHE_SET };
	struct cache_item *it = st->item;
	uint64_t cas = 0;

	st->item = NULL;
	st->phase = MC_BIN_PHASE_HEADER;
	if (__builtin_expect(st->fwd_store, 0))
		return bin_store_forward(s, it, out);

	switch (base) {
	case MC_BIN_ADD: args.mode = CACHE_ADD; break;
	case MC_BIN_REPLACE: args.mode = CACHE_REPLACE; break;
	case MC_BIN_APPEND: args.mode = CACHE_APPEND; break;
	case MC_BIN_PREPEND: args.mode = CACHE_PREPEND; break;
	default: args.mode = CACHE_SET; break;
	}
	/* A CAS in the header turns set/add/replace into a cas; append and
	 * prepend keep their mode and also need the CAS to match. */
	bool is_cas = h->cas != 0 && base != MC_BIN_APPEND && base != MC_BIN_PREPEND;
	if (is_cas)
		args.mode = CACHE_CAS;
	args.cas_compare = h->cas;

	MC_STAT_INC(w, cmd_set);
	/* cluster: a moving-in key written here becomes FRESH */
	char fkey[CACHE_KEY_MAX];
	size_t fnkey = 0;
	if (__builtin_expect(st->fresh_after, 0)) {
		fnkey = it->nkey;
		memcpy(fkey, cache_item_key(it), fnkey);
	}
	enum cache_status rc = cache_store(w->ct, it, st->hash, &args, &cas);
	if (__builtin_expect(st->fresh_after, 0)) {
		st->fresh_after = false;
		mc_fwd_after_write(s, fkey, fnkey, st->hash);
	}
	if (is_cas) {
		if (rc == CACHE_OK)
			MC_STAT_INC(w, cas_hits);
		else if (rc == CACHE_EXISTS)
			MC_STAT_INC(w, cas_badval);
		else if (rc == CACHE_NOT_FOUND)
			MC_STAT_INC(w, cas_misses);
	}

	switch (rc) {
	case CACHE_OK:
		if (quiet)
			return BIN_CONTINUE;
		return bin_result(bin_ok(out, h, NULL, 0, cas));
	case CACHE_EXISTS:
		return bin_result(bin_error(out, h, MC_BIN_KEY_EEXISTS, NULL));
	case CACHE_NOT_FOUND:
		return bin_result(bin_error(out, h, MC_BIN_KEY_ENOENT, NULL));
	case CACHE_INVALID:
		return bin_result(bin_error(out, h, MC_BIN_EINVAL, NULL));
	default:
		/* NOT_STORED, TOO_LARGE, NO_MEMORY: memcached words them by
		 * the command, not by the cause. */
		if (args.mode == CACHE_ADD)
			return bin_result(bin_error(out, h, MC_BIN_KEY_EEXISTS, NULL));
		if (args.mode == CACHE_REPLACE)
			return bin_result(bin_error(out, h, MC_BIN_KEY_ENOENT, NULL));
		return bin_result(bin_error(out, h, MC_BIN_NOT_STORED, NULL));
	}
}

/*
 * SET/ADD/REPLACE/APPEND/PREPEND: allocates the item and switches to the
 * VALUE phase. A value that cannot be stored is answered now and its bytes
 * swallowed.
 */
static int bin_store_start(struct bin_req *r)
{
	struct mc_bin_state *st = &r->s->bin;
	size_t nkey = r->h->keylen;
	uint32_t vlen = r->h->bodylen - r->h->keylen - r->h->extlen;
	uint32_t flags = 0, exptime = 0;
	enum cache_status err = CACHE_TOO_LARGE;
	struct cache_item *it = NULL;

	if (r->h->extlen == MC_BIN_STORE_EXTLEN) {
		flags = get_be32(r->ext);
		exptime = cache_exptime_from_wire(get_be32(r->ext + 4));
	}
	st->hash = cache_hash(r->key, nkey);
	/* Don't even try to allocate what can never fit. */
	if (vlen <= r->w->server->cfg.item_size_max)
		it = cache_item_alloc(r->w->ct, r->key, nkey, flags, exptime, vlen, &err);
	if (it == NULL) {
		int rc;
		if (err == CACHE_TOO_LARGE) {
			MC_STAT_INC(r->w, store_too_large);
			rc = bin_error(r->out, r->h, MC_BIN_E2BIG, NULL);
		} else if (err == CACHE_NO_MEMORY) {
			MC_STAT_INC(r->w, store_no_memory);
			rc = bin_error(r->out, r->h, MC_BIN_ENOMEM,
				       "Out of memory allocating item");
		} else {
			rc = bin_error(r->out, r->h, MC_BIN_EINVAL, NULL);
		}
		/* A failed SET must not leave the old value behind. */
		if (r->base == MC_BIN_SET)
			(void)cache_delete(r->w->ct, r->key, nkey, st->hash, 0);
		bin_swallow(st, vlen);
		return bin_result(rc);
	}

	st->item = it;
	st->value_off = 0;
	st->left = vlen;
	st->phase = MC_BIN_PHASE_VALUE;
	if (vlen == 0)
		return bin_store_complete(r->s, r->out);
	return BIN_CONTINUE;
}

/* ---- cluster ------------------------------------------------------------- */

static bool bin_keyed(uint8_t base)
{
	switch (base) {
	case MC_BIN_GET: case MC_BIN_GETK: case MC_BIN_TOUCH: case MC_BIN_GAT:
	case MC_BIN_GATK: case MC_BIN_SET: case MC_BIN_ADD: case MC_BIN_REPLACE:
	case MC_BIN_APPEND: case MC_BIN_PREPEND: case MC_BIN_DELETE:
	case MC_BIN_INCREMENT: case MC_BIN_DECREMENT:
		return true;
	default:
		return false;
	}
}

static bool bin_is_store(uint8_t base)
{
	return base == MC_BIN_SET || base == MC_BIN_ADD || base == MC_BIN_REPLACE ||
	       base == MC_BIN_APPEND || base == MC_BIN_PREPEND;
}

/* " <flag><number>" into a meta request; false = no memory. */
static bool req_num(struct mc_buf *b, char flag, int64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), " %c%lld", flag, (long long)v);
	return mc_buf_append(b, tmp, (size_t)n) == 0;
}

static bool req_u64(struct mc_buf *b, char flag, uint64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), " %c%llu", flag, (unsigned long long)v);
	return mc_buf_append(b, tmp, (size_t)n) == 0;
}

/* A binary expiration as a meta T/N value. Local requests pass the u32 to
 * cache_exptime_from_wire; meta reads a signed 32-bit number, so values
 * past INT32_MAX (absolute times after 2038) are capped. */
static int64_t bin_wire_exptime(uint32_t v)
{
	return v > INT32_MAX ? INT32_MAX : (int64_t)v;
}

/* The meta request for a forwarded binary request (a store's line only). */
static bool bin_build_request(struct bin_req *r, struct mc_fwd *f)
{
	struct mc_buf *b = &f->req_buf;
	const struct mc_bin_header *h = r->h;
	const char *cmd;
	bool b64;

	switch (r->base) {
	case MC_BIN_GET: case MC_BIN_GETK: case MC_BIN_TOUCH:
	case MC_BIN_GAT: case MC_BIN_GATK:
		cmd = "mg ";
		break;
	case MC_BIN_DELETE:
		cmd = "md ";
		break;
	case MC_BIN_INCREMENT: case MC_BIN_DECREMENT:
		cmd = "ma ";
		break;
	default:
		cmd = "ms ";
		break;
	}
	/* For ms the data length must follow the key, before any flag (' b'
	 * is added after it below); mg/md/ma take flags right away. */
	bool is_ms = cmd[1] == 's';
	if (mc_buf_append(b, cmd, 3) != 0 ||
	    mc_fwd_put_key(b, r->key, h->keylen, &b64) != 0 ||
	    (b64 && !is_ms && mc_buf_append(b, " b", 2) != 0))
		return false;

	bool ok = true;
	switch (r->base) {
	case MC_BIN_GET: case MC_BIN_GETK:
		ok = mc_buf_append(b, " v f c", 6) == 0;
		break;
	case MC_BIN_GAT: case MC_BIN_GATK:
		ok = mc_buf_append(b, " v f c", 6) == 0 &&
		     req_num(b, 'T', bin_wire_exptime(get_be32(r->ext)));
		break;
	case MC_BIN_TOUCH:
		ok = mc_buf_append(b, " f c", 4) == 0 &&
		     req_num(b, 'T', bin_wire_exptime(get_be32(r->ext)));
		break;
	case MC_BIN_DELETE:
		ok = h->cas == 0 || req_u64(b, 'C', h->cas);
		break;
	case MC_BIN_INCREMENT: case MC_BIN_DECREMENT: {
		uint32_t exp = get_be32(r->ext + 16);
		ok = req_u64(b, 'D', get_be64(r->ext)) &&
		     mc_buf_append(b, r->base == MC_BIN_INCREMENT ? " MI v c" : " MD v c",
				   7) == 0 &&
		     (exp == MC_BIN_INCR_NO_CREATE ||
		      (req_num(b, 'N', bin_wire_exptime(exp)) &&
		       req_u64(b, 'J', get_be64(r->ext + 8)))) &&
		     (h->cas == 0 || req_u64(b, 'C', h->cas));
		break;
	}
	default: {
		/* stores: the mode as bin_store_complete picks it */
		uint32_t vlen = h->bodylen - h->keylen - h->extlen;
		bool is_cas = h->cas != 0 && r->base != MC_BIN_APPEND &&
			      r->base != MC_BIN_PREPEND;
		char mode;
		switch (r->base) {
		case MC_BIN_ADD: mode = 'E'; f->bin_mode = CACHE_ADD; break;
		case MC_BIN_REPLACE: mode = 'R'; f->bin_mode = CACHE_REPLACE; break;
		case MC_BIN_APPEND: mode = 'A'; f->bin_mode = CACHE_APPEND; break;
		case MC_BIN_PREPEND: mode = 'P'; f->bin_mode = CACHE_PREPEND; break;
		default: mode = 'S'; f->bin_mode = CACHE_SET; break;
		}
		if (is_cas) {
			mode = 'S';
			f->bin_mode = CACHE_CAS;
		}
		char m[3] = { ' ', 'M', mode };
		char tmp[16];
		int n = snprintf(tmp, sizeof(tmp), " %u", vlen);
		ok = mc_buf_append(b, tmp, (size_t)n) == 0 &&
		     (!b64 || mc_buf_append(b, " b", 2) == 0) &&
		     /* the new CAS comes back, as memcached returns it */
		     mc_buf_append(b, " c", 2) == 0;
		if (ok && h->extlen == MC_BIN_STORE_EXTLEN)
			ok = req_u64(b, 'F', get_be32(r->ext)) &&
			     req_num(b, 'T', bin_wire_exptime(get_be32(r->ext + 4)));
		ok = ok && mc_buf_append(b, m, sizeof(m)) == 0 &&
		     (h->cas == 0 || req_u64(b, 'C', h->cas));
		break;
	}
	}
	return ok && mc_buf_append(b, "\r\n", 2) == 0;
}

/*
 * Cluster: where a keyed request goes. -1 = run it here (*fresh: mark the
 * key FRESH after a write; a store whose value goes to the owner has
 * st->fwd_store set and runs its receiving part here); else BIN_CONTINUE or
 * BIN_CLOSE (refused, or a forward that failed at once: the reply is
 * written), BIN_WAIT (forwarded) or BIN_REDO (pulling).
 */
static __attribute__((noinline)) int bin_route(struct bin_req *r, bool *fresh)
{
	struct mc_bin_state *st = &r->s->bin;
	const struct mc_bin_header *h = r->h;
	size_t nkey = h->keylen;
	uint64_t hash = cache_hash(r->key, nkey);
	bool store = bin_is_store(r->base);
	struct cluster_route cr;
	enum cluster_op op = CLUSTER_OP_WRITE;

	*fresh = false;
	st->fwd_store = false;
	st->fresh_after = false;
	if (r->base == MC_BIN_GET || r->base == MC_BIN_GETK)
		op = CLUSTER_OP_READ;
	else if (r->base == MC_BIN_GAT || r->base == MC_BIN_GATK ||
		 r->base == MC_BIN_TOUCH)
		op = CLUSTER_OP_TOUCH;
	else if (r->base == MC_BIN_SET && h->cas == 0)
		op = CLUSTER_OP_SET;

	switch (mc_fwd_route(r->s, r->key, nkey, hash, op, &cr)) {
	case MC_ROUTE_LOCAL:
		*fresh = cr.moving_in &&
			 (op == CLUSTER_OP_SET || op == CLUSTER_OP_WRITE ||
			  r->base == MC_BIN_TOUCH);
		st->fresh_after = *fresh && store;
		return -1;
	case MC_ROUTE_REFUSED: {
		int rc = bin_result(bin_error(r->out, h, MC_BIN_ETMPFAIL,
						 "key not served by this node"));
		if (store)
			bin_swallow(st, (uint64_t)h->bodylen - h->extlen - h->keylen);
		return rc;
	}
	case MC_ROUTE_PULL:
		if (mc_fwd_pull(r->s, &cr, r->key, nkey, hash))
			return BIN_REDO;
		/* failed at once: runs here */
		*fresh = cr.moving_in &&
			 (op == CLUSTER_OP_SET || op == CLUSTER_OP_WRITE ||
			  r->base == MC_BIN_TOUCH);
		st->fresh_after = *fresh && store;
		return -1;
	default:
		break;
	}

	struct mc_fwd *f = r->s->fwd;
	f->kind = MC_FWD_BINARY;
	f->bin = *h;
	f->bin_base = r->base;
	f->quiet = r->quiet;
	f->nkey = (uint8_t)nkey;
	memcpy(f->key, r->key, nkey);
	if (!bin_build_request(r, f))
		return BIN_CLOSE;
	if (store) {
		st->fwd_store = true;
		return -1;
	}
	return mc_fwd_start(r->s, r->out) ? BIN_WAIT : BIN_CONTINUE;
}

/* ---- dispatch ------------------------------------------------------------ */

static int bin_dispatch(struct bin_req *r)
{
	switch (r->base) {
	case MC_BIN_GET:
	case MC_BIN_GETK:
	case MC_BIN_TOUCH:
	case MC_BIN_GAT:
	case MC_BIN_GATK:
		return bin_get(r);
	case MC_BIN_SET:
	case MC_BIN_ADD:
	case MC_BIN_REPLACE:
	case MC_BIN_APPEND:
	case MC_BIN_PREPEND:
		return bin_store_start(r);
	case MC_BIN_DELETE:
		return bin_delete(r);
	case MC_BIN_INCREMENT:
	case MC_BIN_DECREMENT:
		return bin_arith(r);
	case MC_BIN_FLUSH:
		return bin_flush(r);
	case MC_BIN_STAT:
		return bin_stat(r);
	case MC_BIN_NOOP:
		return bin_result(bin_ok(r->out, r->h, NULL, 0, 0));
	case MC_BIN_VERSION:
		/* The text side's string, "1.6.18-dpcache-x.y.z": libmemcached
		 * refuses a major version of 0 over binary. */
		return bin_result(bin_ok(r->out, r->h, MC_VERSION_STRING,
					 (uint32_t)strlen(MC_VERSION_STRING), 0));
	case MC_BIN_QUIT:
		if (!r->quiet)
			(void)bin_ok(r->out, r->h, NULL, 0, 0);
		return BIN_CLOSE;
	default:
		/* Unknown opcodes, and SASL: memcached without SASL configured
		 * answers UNKNOWN_COMMAND to all three SASL opcodes. */
		return bin_result(bin_error(r->out, r->h, MC_BIN_UNKNOWN_COMMAND, NULL));
	}
}

/*
 * Parses one request at 'in'. Sets *used to the bytes taken (0 = the
 * header, extras and key have not all arrived). Returns BIN_CONTINUE or
 * BIN_CLOSE.
 */
static int bin_request(struct mc_session *s, const char *in, size_t len,
		       size_t *used, struct mc_buf *out)
{
	struct mc_bin_state *st = &s->bin;
	struct mc_bin_header *h = &st->req;

	*used = 0;
	if (len < MC_BIN_HEADER_SIZE)
		return BIN_CONTINUE;
	bin_parse_header(in, h);

	if (h->magic != MC_BIN_REQ_MAGIC) {
		/* memcached closes without a word. */
		MC_STAT_INC(s->w, protocol_errors);
		*used = len;
		return BIN_CLOSE;
	}
	if ((uint32_t)h->keylen + h->extlen > h->bodylen) {
		MC_STAT_INC(s->w, protocol_errors);
		*used = len;
		(void)bin_error(out, h, MC_BIN_UNKNOWN_COMMAND, NULL);
		return BIN_CLOSE;
	}
	bool quiet;
	uint8_t base = bin_base_opcode(h->opcode, &quiet);
	if (h->keylen > CACHE_KEY_MAX || !bin_lengths_ok(base, h)) {
		MC_STAT_INC(s->w, protocol_errors);
		*used = len;
		(void)bin_error(out, h, MC_BIN_EINVAL, NULL);
		return BIN_CLOSE;
	}

	size_t head = MC_BIN_HEADER_SIZE + (size_t)h->extlen + h->keylen;
	if (len < head)
		return BIN_CONTINUE;
	*used = head;

	struct bin_req r = {
		.s = s,
		.w = s->w,
		.h = h,
		.base = base,
		.quiet = quiet,
		.ext = (const unsigned char *)in + MC_BIN_HEADER_SIZE,
		.key = in + MC_BIN_HEADER_SIZE + h->extlen,
		.out = out,
	};
	st->phase = MC_BIN_PHASE_HEADER;
	int rc;
	if (__builtin_expect(s->w->cluster != NULL, 0) && bin_keyed(base)) {
		bool fresh;
		rc = bin_route(&r, &fresh);
		if (rc == BIN_REDO) {
			*used = 0;          /* runs again once the key is pulled */
			return BIN_WAIT;
		}
		if (rc < 0) {
			rc = bin_dispatch(&r);
			/* stores mark it when they complete (fresh_after) */
			if (fresh && !bin_is_store(base))
				mc_fwd_after_write(s, r.key, h->keylen,
						  cache_hash(r.key, h->keylen));
		}
	} else {
		rc = bin_dispatch(&r);
	}
	/* Whatever body the handler did not take (unknown opcodes, SASL,
	 * surplus bytes after STAT/TOUCH/GAT) is dropped. */
	if ((rc == BIN_CONTINUE || rc == BIN_WAIT) && st->phase == MC_BIN_PHASE_HEADER)
		bin_swallow(st, (uint64_t)h->bodylen - h->extlen - h->keylen);
	return rc;
}

/* Copies value bytes into the item being received; 'n' bytes are there. */
static size_t bin_value_bytes(struct mc_bin_state *st, const char *in, size_t n)
{
	size_t take = n < st->left ? n : (size_t)st->left;

	memcpy(cache_item_value(st->item) + st->value_off, in, take);
	st->value_off += (uint32_t)take;
	st->left -= take;
	return take;
}

int mc_binary_feed(struct mc_session *s, const char *in, size_t len,
		   size_t *consumed, struct mc_buf *out)
{
	struct mc_bin_state *st = &s->bin;
	size_t high_water = s->w->server->cfg.out_high_water;
	size_t pos = 0;
	int rc = MC_FEED_MORE;

	for (;;) {
		if (st->phase == MC_BIN_PHASE_VALUE) {
			pos += bin_value_bytes(st, in + pos, len - pos);
			if (st->left > 0)
				break;                 /* wait for the rest */
			int c = bin_store_complete(s, out);
			if (c == BIN_CLOSE) {
				rc = MC_FEED_CLOSE;
				break;
			}
			if (c == BIN_WAIT) {
				rc = MC_FEED_WAIT;
				break;
			}
			continue;
		}
		if (st->phase == MC_BIN_PHASE_SWALLOW) {
			size_t n = len - pos < st->left ? len - pos : (size_t)st->left;
			pos += n;
			st->left -= n;
			if (st->left > 0)
				break;
			st->phase = MC_BIN_PHASE_HEADER;
			continue;
		}
		if (pos == len)
			break;
		/* Between requests: let the transport drain a full buffer
		 * (a long run of quiet gets, a big STAT). */
		if (out->len >= high_water) {
			rc = MC_FEED_PAUSE;
			break;
		}
		size_t used = 0;
		int r = bin_request(s, in + pos, len - pos, &used, out);
		pos += used;
		if (r == BIN_CLOSE) {
			rc = MC_FEED_CLOSE;
			break;
		}
		if (r == BIN_WAIT) {
			rc = MC_FEED_WAIT;
			break;
		}
		if (used == 0)
			break;                         /* incomplete header or key */
	}
	*consumed = pos;
	return rc;
}

void mc_binary_reset(struct mc_session *s)
{
	struct mc_bin_state *st = &s->bin;

	cache_item_abort(s->w->ct, &st->item);
	memset(st, 0, sizeof(*st));
}

int mc_binary_run_buffer(struct mc_worker *w, const char *req, size_t len,
			 struct mc_buf *out)
{
	struct mc_session s;
	size_t consumed = 0;

	memset(&s, 0, sizeof(s));
	s.w = w;
	s.proto = MC_PROTO_BINARY;
	int rc = mc_binary_feed(&s, req, len, &consumed, out);
	/* Complete: all bytes taken and no value or swallow pending. A close
	 * (quit, framing error) still has its reply to send. */
	bool complete = consumed == len && s.bin.phase == MC_BIN_PHASE_HEADER &&
			rc != MC_FEED_PAUSE;
	mc_binary_reset(&s);
	return complete ? 0 : -EINVAL;
}
