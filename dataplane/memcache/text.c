/*
 * dataplane/memcache/text.c - memcached's classic text protocol.
 *
 * Design note. The input buffer belongs to the transport and is const: a
 * command line is parsed in place (tokens carry lengths) and is consumed only
 * once it has been fully executed. A storage command's value is not kept in
 * the input: its item is allocated when the command line arrives and the
 * value bytes are copied into it as they come (DATA phase), so a partial
 * value is always consumed. A multi-get whose replies pass the output
 * high-water mark pauses between two keys; the line stays unconsumed and
 * st->get_resume remembers where the next key starts.
 *
 * Replies are byte-for-byte memcached 1.6.18's, including its quirks: the
 * tokenizer splits on ' ' only, a NUL ends the line, numbers follow
 * safe_strtoul/safe_strtol (64-bit parse, then truncated to 32 bits), a
 * rejected store swallows exactly <bytes>+2 bytes, and a value not followed
 * by "\r\n" gets "CLIENT_ERROR bad data chunk" after exactly <bytes>+2 bytes.
 *
 * Cluster (w->cluster set): every keyed command asks mc_fwd_route first,
 * out of line so that a single node pays one predictable branch. A key
 * another node owns is sent there as a meta request (forward.c) and the
 * session waits: a forwarded get key leaves its line unconsumed with
 * get_resume at the next key, like a high-water pause; a pull leaves the
 * whole request unconsumed and it runs again once the key is installed. A
 * forwarded store still receives its value into a local item (the same
 * DATA phase); when the value is complete its bytes are copied into the
 * meta request and the item is freed, so a forwarded value is held here
 * until it has been handed to the forwarder.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/clock.h"
#include "dataplane/memcache/mc_text_impl.h"

/* ---- small helpers ------------------------------------------------------ */

size_t mc_tokenize(const char *line, size_t len, struct mc_tok *tok,
		   size_t max_tokens)
{
	const char *p = line;
	const char *end = line + len;
	size_t n = 0;

	/* tokens are short: a plain byte loop beats a memchr call per token */
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		const char *start = p;
		while (p < end && *p != ' ')
			p++;
		tok[n].p = start;
		tok[n].len = (size_t)(p - start);
		n++;
		if (n == max_tokens - 1) {
			/* the rest stays unsplit, as in memcached: it starts one
			 * byte after the last token */
			if (p < end)
				p++;
			break;
		}
	}
	tok[n].p = p < end ? p : NULL;
	tok[n].len = 0;
	return n + 1;
}

/* Copies a span into a NUL-terminated buffer for strto*(); false if it
 * cannot be a number we accept. */
static bool span_cstr(const char *p, size_t n, char *buf, size_t cap)
{
	if (n == 0 || n >= cap)
		return false;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return true;
}

/* The tail test memcached applies after strto*(): only whitespace (or the
 * end) may follow the digits. */
static bool num_end_ok(const char *buf, const char *endptr)
{
	return endptr != buf && (*endptr == '\0' || isspace((unsigned char)*endptr));
}

bool mc_parse_span_u64(const char *p, size_t n, uint64_t *out)
{
	char buf[64];
	char *endptr;

	*out = 0;
	if (!span_cstr(p, n, buf, sizeof(buf)))
		return false;
	errno = 0;
	unsigned long long v = strtoull(buf, &endptr, 10);
	if (errno == ERANGE || !num_end_ok(buf, endptr))
		return false;
	/* strtoull accepts "-1" as 2^64-1; memcached refuses a minus sign on
	 * numbers that look negative. */
	if ((long long)v < 0 && memchr(buf, '-', (size_t)(endptr - buf)) != NULL)
		return false;
	*out = v;
	return true;
}

bool mc_parse_span_u32(const char *p, size_t n, uint32_t *out)
{
	uint64_t v;

	*out = 0;
	if (!mc_parse_span_u64(p, n, &v))
		return false;
	*out = (uint32_t)v; /* memcached truncates: 2^32 is accepted as 0 */
	return true;
}

bool mc_parse_span_i32(const char *p, size_t n, int32_t *out)
{
	char buf[64];
	char *endptr;

	*out = 0;
	if (!span_cstr(p, n, buf, sizeof(buf)))
		return false;
	errno = 0;
	long v = strtol(buf, &endptr, 10);
	if (errno == ERANGE || !num_end_ok(buf, endptr))
		return false;
	*out = (int32_t)(uint32_t)(unsigned long)v; /* truncated, as memcached */
	return true;
}

bool mc_parse_u32(const struct mc_tok *t, uint32_t *out)
{
	return t->p != NULL && mc_parse_span_u32(t->p, t->len, out);
}

bool mc_parse_i32(const struct mc_tok *t, int32_t *out)
{
	return t->p != NULL && mc_parse_span_i32(t->p, t->len, out);
}

bool mc_parse_u64(const struct mc_tok *t, uint64_t *out)
{
	return t->p != NULL && mc_parse_span_u64(t->p, t->len, out);
}

/* The out-of-line copy, for lengths known only at run time. */
int mc_out_line(struct mc_buf *out, const char *s, size_t n)
{
	return mc_out_lit(out, s, n);
}

/* A reply line, unless the command asked for noreply. */
static int reply(struct mc_buf *out, bool noreply, const char *s, size_t n)
{
	if (noreply)
		return MC_LINE_DONE;
	return mc_out_line(out, s, n) == 0 ? MC_LINE_DONE : MC_LINE_CLOSE;
}
#define REPLY(out, noreply, lit) reply((out), (noreply), (lit), sizeof(lit) - 1)

/* memcached's set_noreply_maybe: "noreply" as the last token. */
static bool noreply_maybe(const struct mc_tok *tok, size_t ntok)
{
	const struct mc_tok *t = &tok[ntok - 2];
	return t->len != 0 && MC_TOK_IS(t, "noreply");
}

static const char bad_format[] = "CLIENT_ERROR bad command line format";

/* ---- retrieval ---------------------------------------------------------- */

struct get_mode {
	bool cas;
	bool touch;
	uint32_t exptime;
	int32_t wire_exptime;   /* gat/gats: as the client sent it (forwarding) */
};

/* get_one's results besides MC_LINE_DONE / MC_LINE_CLOSE / MC_LINE_WAIT (a
 * forwarded key: resume after it): */
#define GET_PULL  (MC_LINE_WAIT_DONE + 1)   /* pulling: resume at this key */
#define GET_ABORT (MC_LINE_WAIT_DONE + 2)   /* error written: end the line, no END */

/* Appends the pieces of a meta request; false = no memory. */
static bool req_add(struct mc_buf *b, const char *p, size_t n)
{
	return mc_buf_append(b, p, n) == 0;
}
#define REQ_LIT(b, lit) req_add((b), (lit), sizeof(lit) - 1)

/* "<cmd> <key>[ b]" */
static bool req_head(struct mc_buf *b, const char *cmd, const char *key,
		     size_t nkey)
{
	bool b64;
	return req_add(b, cmd, strlen(cmd)) &&
	       mc_fwd_put_key(b, key, nkey, &b64) == 0 &&
	       (!b64 || REQ_LIT(b, " b"));
}

/* " <flag><number>" ("<number>" alone when flag is 0) */
static bool req_num(struct mc_buf *b, char flag, int64_t v)
{
	char tmp[32];
	int n = flag != 0 ? snprintf(tmp, sizeof(tmp), " %c%lld", flag, (long long)v)
			  : snprintf(tmp, sizeof(tmp), " %lld", (long long)v);
	return req_add(b, tmp, (size_t)n);
}

static bool req_u64(struct mc_buf *b, char flag, uint64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), " %c%llu", flag, (unsigned long long)v);
	return req_add(b, tmp, (size_t)n);
}

/*
 * Cluster: where one key of a get goes. -1 = run it here; else get_one's
 * result. Out of line: the single-node get path only tests w->cluster.
 */
static __attribute__((noinline)) int
get_route(struct mc_session *s, const char *key, size_t nkey, uint64_t hash,
	  const struct get_mode *m, struct mc_buf *out)
{
	struct cluster_route r;

	switch (mc_fwd_route(s, key, nkey, hash,
			     m->touch ? CLUSTER_OP_TOUCH : CLUSTER_OP_READ, &r)) {
	case MC_ROUTE_LOCAL:
		return -1;
	case MC_ROUTE_REFUSED:
		return MC_OUT_LIT(out, MC_FWD_REFUSED_TEXT) == 0 ? GET_ABORT : MC_LINE_CLOSE;
	case MC_ROUTE_PULL:
		return mc_fwd_pull(s, &r, key, nkey, hash) ? GET_PULL : -1;
	default:
		break;
	}

	struct mc_fwd *f = s->fwd;
	f->kind = MC_FWD_TEXT_GET;
	f->quiet = false;
	f->cas = m->cas;
	f->nkey = (uint8_t)nkey;
	memcpy(f->key, key, nkey);
	bool ok = req_head(&f->req_buf, "mg ", key, nkey) &&
		  REQ_LIT(&f->req_buf, " v f") &&
		  (!m->cas || REQ_LIT(&f->req_buf, " c")) &&
		  (!m->touch || req_num(&f->req_buf, 'T', m->wire_exptime)) &&
		  REQ_LIT(&f->req_buf, "\r\n");
	if (!ok)
		return MC_LINE_CLOSE;
	return mc_fwd_start(s, out) ? MC_LINE_WAIT : GET_ABORT;
}

/* One key of get/gets/gat/gats. Returns MC_LINE_DONE or MC_LINE_CLOSE. */
static int get_one(struct mc_session *s, const char *key, size_t nkey,
		   const struct get_mode *m, struct mc_buf *out)
{
	struct mc_worker *w = s->w;
	struct cache_read_opts opts = { .touch = m->touch, .new_exptime = m->exptime };
	uint64_t hash = cache_hash(key, nkey);
	if (__builtin_expect(w->cluster != NULL, 0)) {
		int g = get_route(s, key, nkey, hash, m, out);
		if (g >= 0)
			return g;
	}
	const struct cache_item *it = cache_get(w->ct, key, nkey, hash,
						m->touch ? &opts : NULL, NULL);

	if (m->touch)
		MC_STAT_INC(w, cmd_touch);
	else
		MC_STAT_INC(w, cmd_get);
	if (it == NULL) {
		if (m->touch)
			MC_STAT_INC(w, touch_misses);
		else
			MC_STAT_INC(w, get_misses);
		return MC_LINE_DONE;
	}
	if (m->touch)
		MC_STAT_INC(w, touch_hits);
	else
		MC_STAT_INC(w, get_hits);

	/* "VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n" */
	size_t need = 6 + it->nkey + 1 + 10 + 1 + 10 + 1 + 20 + 2 + it->nbytes + 2;
	char *p = mc_out_reserve(out, need);
	if (p == NULL)
		return MC_LINE_CLOSE;
	char *start = p;
	memcpy(p, "VALUE ", 6);
	p += 6;
	memcpy(p, cache_item_key(it), it->nkey);
	p += it->nkey;
	*p++ = ' ';
	p = mc_u64toa(it->client_flags, p);
	*p++ = ' ';
	p = mc_u64toa(it->nbytes, p);
	if (m->cas) {
		*p++ = ' ';
		p = mc_u64toa(it->cas, p);
	}
	*p++ = '\r';
	*p++ = '\n';
	memcpy(p, cache_item_value_const(it), it->nbytes);
	p += it->nbytes;
	*p++ = '\r';
	*p++ = '\n';
	out->len += (size_t)(p - start);
	return MC_LINE_DONE;
}

static size_t skip_spaces(const char *line, size_t len, size_t pos)
{
	while (pos < len && line[pos] == ' ')
		pos++;
	return pos;
}

/* End of the key that starts at pos: the next ' ' or the end of line. */
static size_t word_end(const char *line, size_t len, size_t pos)
{
	const char *sp = memchr(line + pos, ' ', len - pos);
	return sp != NULL ? (size_t)(sp - line) : len;
}

#define GET_BATCH 24

struct key_span {
	size_t off;
	size_t len;
};

/*
 * A key of a get did not run here (cluster): where the line goes on. The
 * key spans [off, end) of the line.
 */
static __attribute__((noinline)) int
get_stop(struct mc_session *s, const char *line, size_t len, size_t off,
	 size_t end, int g)
{
	switch (g) {
	case MC_LINE_WAIT:     /* resume after the key (len: only END is left) */
		s->text.get_resume = skip_spaces(line, len, end);
		return MC_LINE_WAIT;
	case GET_PULL:         /* run the key again once it is pulled */
		s->text.get_resume = off;
		return MC_LINE_WAIT;
	case GET_ABORT:
		s->text.get_resume = 0;
		return MC_LINE_DONE;
	default:
		return MC_LINE_CLOSE;
	}
}

static int bad_key_reply(struct mc_buf *out)
{
	return mc_out_line(out, bad_format, sizeof(bad_format) - 1) == 0 ?
		       MC_LINE_DONE : MC_LINE_CLOSE;
}

/*
 * get/gets/gat/gats. 'keys_at' is the offset of the first key in the line.
 * memcached answers a key over 250 bytes with nothing but CLIENT_ERROR, so
 * every key is checked before the first reply is written. One pass finds
 * (and checks) up to GET_BATCH keys; only longer lines are scanned twice.
 */
static int process_get(struct mc_session *s, const char *line, size_t len,
		       size_t keys_at, const struct get_mode *m,
		       struct mc_buf *out)
{
	struct mc_text_state *st = &s->text;
	struct key_span ks[GET_BATCH];
	size_t nks = 0;
	bool resumed = st->get_resume != 0;
	size_t pos = skip_spaces(line, len, resumed ? st->get_resume : keys_at);

	if (resumed && st->get_abort) {
		/* a forwarded key failed: its error replaced the rest */
		st->get_abort = false;
		st->get_resume = 0;
		return MC_LINE_DONE;
	}
	st->get_resume = 0;
	while (pos < len && nks < GET_BATCH) {
		size_t e = word_end(line, len, pos);
		if (e - pos > CACHE_KEY_MAX && !resumed)
			return bad_key_reply(out);
		if (nks == 0 && e == len) {
			/* One key (left), the common get: its reply and END,
			 * as the batch below would write them, without it. */
			int g = get_one(s, line + pos, e - pos, m, out);
			if (g != MC_LINE_DONE)
				return get_stop(s, line, len, pos, e, g);
			return MC_OUT_LIT(out, "END") == 0 ? MC_LINE_DONE : MC_LINE_CLOSE;
		}
		ks[nks].off = pos;
		ks[nks].len = e - pos;
		nks++;
		pos = skip_spaces(line, len, e);
	}
	if (!resumed) {
		for (size_t p = pos; p < len;) {
			size_t e = word_end(line, len, p);
			if (e - p > CACHE_KEY_MAX)
				return bad_key_reply(out);
			p = skip_spaces(line, len, e);
		}
	}

	for (size_t i = 0; i < nks; i++) {
		int g = get_one(s, line + ks[i].off, ks[i].len, m, out);
		if (g != MC_LINE_DONE)
			return get_stop(s, line, len, ks[i].off,
					ks[i].off + ks[i].len, g);
		bool more = i + 1 < nks || pos < len;
		if (more && mc_out_full(s, out)) {
			st->get_resume = i + 1 < nks ? ks[i + 1].off : pos;
			return MC_LINE_PAUSE;
		}
	}
	while (pos < len) {
		size_t e = word_end(line, len, pos);
		int g = get_one(s, line + pos, e - pos, m, out);
		if (g != MC_LINE_DONE)
			return get_stop(s, line, len, pos, e, g);
		pos = skip_spaces(line, len, e);
		if (pos < len && mc_out_full(s, out)) {
			st->get_resume = pos;
			return MC_LINE_PAUSE;
		}
	}
	return MC_OUT_LIT(out, "END") == 0 ? MC_LINE_DONE : MC_LINE_CLOSE;
}

/* ---- storage ------------------------------------------------------------ */

int mc_text_store_begin(struct mc_session *s, const char *key, size_t nkey,
			uint32_t flags, uint32_t exptime, size_t nbytes,
			struct mc_buf *out)
{
	struct mc_text_state *st = &s->text;
	struct mc_worker *w = s->w;
	enum cache_status err = CACHE_INVALID;

	st->hash = cache_hash(key, nkey);
	st->item = cache_item_alloc(w->ct, key, nkey, flags, exptime, nbytes, &err);
	if (st->item != NULL) {
		st->phase = MC_TEXT_DATA;
		st->data_off = 0;
		st->left = nbytes + 2;
		return MC_LINE_DONE;
	}

	/* Rejected: swallow the data block so the stream stays in sync. */
	st->phase = MC_TEXT_SWALLOW;
	st->left = nbytes + 2;

	/* A failed set must not leave the old value readable (memcached
	 * unlinks it; for ms in every mode). */
	if (st->meta || st->store_mode == CACHE_SET)
		(void)cache_delete(w->ct, key, nkey, st->hash, 0);

	/* Meta errors are never quiet (memcached's out_errstring). */
	bool quiet = st->noreply && !st->meta;
	if (err == CACHE_TOO_LARGE) {
		MC_STAT_INC(w, store_too_large);
		return REPLY(out, quiet, "SERVER_ERROR object too large for cache");
	}
	if (err == CACHE_NO_MEMORY) {
		MC_STAT_INC(w, store_no_memory);
		return REPLY(out, quiet, "SERVER_ERROR out of memory storing object");
	}
	return reply(out, quiet, bad_format, sizeof(bad_format) - 1);
}

/* A forwarded store's value is complete: it goes to the owner in the meta
 * request begun when its line was parsed; the local item is dropped. */
static __attribute__((noinline)) int store_forward(struct mc_session *s,
						    struct mc_buf *out)
{
	struct mc_text_state *st = &s->text;
	struct mc_fwd *f = s->fwd;
	struct cache_item *it = st->item;

	st->item = NULL;
	st->fwd_store = false;
	bool ok = req_add(&f->req_buf, cache_item_value_const(it), it->nbytes) &&
		  REQ_LIT(&f->req_buf, "\r\n");
	cache_item_abort(s->w->ct, &it);
	if (!ok)
		return MC_LINE_CLOSE;
	return mc_fwd_start(s, out) ? MC_LINE_WAIT_DONE : MC_LINE_DONE;
}

/* The value and its "\r\n" have all arrived: store and reply. */
static int store_finish(struct mc_session *s, struct mc_buf *out)
{
	struct mc_text_state *st = &s->text;
	struct mc_worker *w = s->w;
	bool noreply = st->noreply;

	st->phase = MC_TEXT_LINE;
	MC_STAT_INC(w, cmd_set);
	if (st->crlf[0] != '\r' || st->crlf[1] != '\n') {
		st->fwd_store = false;
		cache_item_abort(w->ct, &st->item);
		return REPLY(out, noreply && !st->meta, "CLIENT_ERROR bad data chunk");
	}
	if (__builtin_expect(st->fwd_store, 0))
		return store_forward(s, out);

	struct cache_store_args args = {
		.mode = (enum cache_store_mode)st->store_mode,
		.cas_compare = st->cas_compare,
		.vivify = st->vivify,
		.invalidate = st->invalidate,
	};
	uint64_t cas = 0;
	struct cache_item *it = st->item;
	st->item = NULL;
	/* cluster: a moving-in key written here becomes FRESH (the item, and
	 * so its key, belongs to the cache once stored) */
	char fkey[CACHE_KEY_MAX];
	size_t fnkey = 0;
	if (__builtin_expect(st->fresh_after || st->migrated, 0)) {
		fnkey = it->nkey;
		memcpy(fkey, cache_item_key(it), fnkey);
	}
	enum cache_status rc = cache_store(w->ct, it, st->hash, &args, &cas);
	if (__builtin_expect(st->fresh_after, 0)) {
		st->fresh_after = false;
		mc_fwd_after_write(s, fkey, fnkey, st->hash);
	}
	if (__builtin_expect(st->migrated, 0)) {
		/* A migration stream's add that a local write overtook. */
		st->migrated = false;
		if (rc == CACHE_OK &&
		    cluster_undo_if_fresh(w->cluster, fkey, fnkey, st->hash, cas))
			rc = CACHE_NOT_STORED;
	}

	if (args.mode == CACHE_CAS) {
		if (rc == CACHE_OK)
			MC_STAT_INC(w, cas_hits);
		else if (rc == CACHE_EXISTS)
			MC_STAT_INC(w, cas_badval);
		else if (rc == CACHE_NOT_FOUND)
			MC_STAT_INC(w, cas_misses);
	}
	if (st->meta)
		return mc_meta_store_reply(s, rc, cas, out);

	switch (rc) {
	case CACHE_OK:
		return REPLY(out, noreply, "STORED");
	case CACHE_EXISTS:
		return REPLY(out, noreply, "EXISTS");
	case CACHE_NOT_FOUND:
		return REPLY(out, noreply, "NOT_FOUND");
	case CACHE_NOT_STORED:
		return REPLY(out, noreply, "NOT_STORED");
	case CACHE_TOO_LARGE:
		/* append/prepend result too big: memcached says NOT_STORED */
		if (args.mode == CACHE_APPEND || args.mode == CACHE_PREPEND)
			return REPLY(out, noreply, "NOT_STORED");
		return REPLY(out, noreply, "SERVER_ERROR object too large for cache");
	case CACHE_NO_MEMORY:
		if (args.mode == CACHE_APPEND || args.mode == CACHE_PREPEND)
			return REPLY(out, noreply, "NOT_STORED");
		return REPLY(out, noreply, "SERVER_ERROR out of memory storing object");
	default:
		return REPLY(out, noreply, "SERVER_ERROR Unhandled storage type.");
	}
}

/*
 * Cluster: where a classic store goes. -1 = receive the value (here, or
 * for the owner when st->fwd_store is set); else the line result.
 */
static __attribute__((noinline)) int
update_route(struct mc_session *s, const struct mc_tok *tok,
	     enum cache_store_mode mode, uint32_t flags, int32_t exptime,
	     int32_t vlen, uint64_t cas, bool noreply, struct mc_buf *out)
{
	static const char mode_char[] = {
		[CACHE_SET] = 'S', [CACHE_ADD] = 'E', [CACHE_REPLACE] = 'R',
		[CACHE_APPEND] = 'A', [CACHE_PREPEND] = 'P', [CACHE_CAS] = 'S',
	};
	struct mc_text_state *st = &s->text;
	struct cluster_route r;
	uint64_t hash = cache_hash(tok[1].p, tok[1].len);

	st->fwd_store = false;
	st->fresh_after = false;
	switch (mc_fwd_route(s, tok[1].p, tok[1].len, hash,
			     mode == CACHE_SET ? CLUSTER_OP_SET : CLUSTER_OP_WRITE, &r)) {
	case MC_ROUTE_LOCAL:
		st->fresh_after = r.moving_in;
		return -1;
	case MC_ROUTE_REFUSED:
		st->phase = MC_TEXT_SWALLOW;
		st->left = (size_t)vlen + 2;
		return REPLY(out, noreply, MC_FWD_REFUSED_TEXT);
	case MC_ROUTE_PULL:
		if (mc_fwd_pull(s, &r, tok[1].p, tok[1].len, hash))
			return MC_LINE_WAIT;
		st->fresh_after = r.moving_in;   /* failed at once: runs here */
		return -1;
	default:
		break;
	}

	struct mc_fwd *f = s->fwd;
	struct mc_buf *b = &f->req_buf;
	char m[3] = { ' ', 'M', mode_char[mode] };
	f->kind = MC_FWD_TEXT_STORE;
	f->quiet = noreply;
	/* "ms <key> <datalen> [b] ...": the data length must follow the
	 * key; a flag before it would be read as the length and the value
	 * run as commands on the owner. */
	bool b64;
	bool ok = req_add(b, "ms ", 3) &&
		  mc_fwd_put_key(b, tok[1].p, tok[1].len, &b64) == 0 &&
		  req_num(b, 0, vlen) && (!b64 || REQ_LIT(b, " b")) &&
		  req_num(b, 'F', flags) &&
		  req_num(b, 'T', exptime) && req_add(b, m, sizeof(m)) &&
		  (mode != CACHE_CAS || req_u64(b, 'C', cas)) &&
		  REQ_LIT(b, "\r\n");
	if (!ok)
		return MC_LINE_CLOSE;
	st->fwd_store = true;
	return -1;
}

/* set/add/replace/append/prepend/cas <key> <flags> <exptime> <bytes> [<cas>] [noreply] */
static int process_update(struct mc_session *s, struct mc_tok *tok,
			  size_t ntok, enum cache_store_mode mode,
			  struct mc_buf *out)
{
	struct mc_text_state *st = &s->text;
	bool noreply = noreply_maybe(tok, ntok);
	uint32_t flags;
	int32_t exptime;
	int32_t vlen;
	uint64_t cas = 0;

	if (tok[1].len > CACHE_KEY_MAX)
		return reply(out, noreply, bad_format, sizeof(bad_format) - 1);
	if (!mc_parse_u32(&tok[2], &flags) || !mc_parse_i32(&tok[3], &exptime) ||
	    !mc_parse_i32(&tok[4], &vlen))
		return reply(out, noreply, bad_format, sizeof(bad_format) - 1);
	if (mode == CACHE_CAS && !mc_parse_u64(&tok[5], &cas))
		return reply(out, noreply, bad_format, sizeof(bad_format) - 1);
	if (vlen < 0 || vlen > INT_MAX - 2)
		return reply(out, noreply, bad_format, sizeof(bad_format) - 1);

	if (__builtin_expect(s->w->cluster != NULL, 0)) {
		int rc = update_route(s, tok, mode, flags, exptime, vlen, cas,
				      noreply, out);
		if (rc >= 0)
			return rc;
	}
	st->noreply = noreply;
	st->meta = false;
	st->store_mode = (uint8_t)mode;
	st->cas_compare = cas;
	st->vivify = false;
	st->invalidate = false;
	return mc_text_store_begin(s, tok[1].p, tok[1].len, flags,
				   cache_exptime_from_wire(exptime),
				   (size_t)vlen, out);
}

/* ---- other commands ----------------------------------------------------- */

/*
 * Cluster: where delete, touch, incr or decr goes. The meta request is
 * '<cmd><key>[ b]<tail>'. -1 = run here (*fresh: mark the key FRESH
 * after); else the line result.
 */
static __attribute__((noinline)) int
simple_route(struct mc_session *s, const char *cmd, const struct mc_tok *key,
	     uint64_t hash, enum mc_fwd_kind kind, const char *tail,
	     bool noreply, bool *fresh, struct mc_buf *out)
{
	struct cluster_route r;
	enum cluster_op op = kind == MC_FWD_TEXT_TOUCH ? CLUSTER_OP_TOUCH :
							 CLUSTER_OP_WRITE;

	*fresh = false;
	switch (mc_fwd_route(s, key->p, key->len, hash, op, &r)) {
	case MC_ROUTE_LOCAL:
		*fresh = r.moving_in;
		return -1;
	case MC_ROUTE_REFUSED:
		return REPLY(out, noreply, MC_FWD_REFUSED_TEXT);
	case MC_ROUTE_PULL:
		if (mc_fwd_pull(s, &r, key->p, key->len, hash))
			return MC_LINE_WAIT;
		*fresh = r.moving_in;     /* failed at once: runs here */
		return -1;
	default:
		break;
	}
	struct mc_fwd *f = s->fwd;
	f->kind = (uint8_t)kind;
	f->quiet = noreply;
	if (!req_head(&f->req_buf, cmd, key->p, key->len) ||
	    !req_add(&f->req_buf, tail, strlen(tail)) ||
	    !REQ_LIT(&f->req_buf, "\r\n"))
		return MC_LINE_CLOSE;
	return mc_fwd_start(s, out) ? MC_LINE_WAIT_DONE : MC_LINE_DONE;
}

static int process_arith(struct mc_session *s, struct mc_tok *tok,
			 size_t ntok, bool incr, struct mc_buf *out)
{
	struct mc_worker *w = s->w;
	bool noreply = noreply_maybe(tok, ntok);
	struct cache_arith_args args = { .incr = incr };
	uint64_t value = 0;

	if (tok[1].len > CACHE_KEY_MAX)
		return reply(out, noreply, bad_format, sizeof(bad_format) - 1);
	if (!mc_parse_u64(&tok[2], &args.delta))
		return REPLY(out, noreply, "CLIENT_ERROR invalid numeric delta argument");

	uint64_t hash = cache_hash(tok[1].p, tok[1].len);
	if (__builtin_expect(w->cluster != NULL, 0)) {
		char tail[40];
		bool fresh;
		snprintf(tail, sizeof(tail), " D%llu M%c v",
			 (unsigned long long)args.delta, incr ? 'I' : 'D');
		int rc = simple_route(s, "ma ", &tok[1], hash, MC_FWD_TEXT_ARITH,
				      tail, noreply, &fresh, out);
		if (rc >= 0)
			return rc;
		if (fresh)
			mc_fwd_after_write(s, tok[1].p, tok[1].len, hash);
	}
	switch (cache_arith(w->ct, tok[1].p, tok[1].len, hash, &args, &value, NULL)) {
	case CACHE_OK: {
		char num[24];
		char *e = mc_u64toa(value, num);
		if (incr)
			MC_STAT_INC(w, incr_hits);
		else
			MC_STAT_INC(w, decr_hits);
		return reply(out, noreply, num, (size_t)(e - num));
	}
	case CACHE_NON_NUMERIC:
		return REPLY(out, noreply,
			     "CLIENT_ERROR cannot increment or decrement non-numeric value");
	case CACHE_NOT_FOUND:
		if (incr)
			MC_STAT_INC(w, incr_misses);
		else
			MC_STAT_INC(w, decr_misses);
		return REPLY(out, noreply, "NOT_FOUND");
	default:
		return REPLY(out, noreply, "SERVER_ERROR out of memory");
	}
}

static int process_touch(struct mc_session *s, struct mc_tok *tok,
			 size_t ntok, struct mc_buf *out)
{
	struct mc_worker *w = s->w;
	bool noreply = noreply_maybe(tok, ntok);
	int32_t exptime;

	if (tok[1].len > CACHE_KEY_MAX)
		return reply(out, noreply, bad_format, sizeof(bad_format) - 1);
	if (!mc_parse_i32(&tok[2], &exptime))
		return REPLY(out, noreply, "CLIENT_ERROR invalid exptime argument");

	uint64_t hash = cache_hash(tok[1].p, tok[1].len);
	if (__builtin_expect(w->cluster != NULL, 0)) {
		char tail[24];
		bool fresh;
		snprintf(tail, sizeof(tail), " T%d", (int)exptime);
		int rc = simple_route(s, "mg ", &tok[1], hash, MC_FWD_TEXT_TOUCH,
				      tail, noreply, &fresh, out);
		if (rc >= 0)
			return rc;
		if (fresh)
			mc_fwd_after_write(s, tok[1].p, tok[1].len, hash);
	}
	MC_STAT_INC(w, cmd_touch);
	if (cache_touch(w->ct, tok[1].p, tok[1].len, hash,
			cache_exptime_from_wire(exptime)) == CACHE_OK) {
		MC_STAT_INC(w, touch_hits);
		return REPLY(out, noreply, "TOUCHED");
	}
	MC_STAT_INC(w, touch_misses);
	return REPLY(out, noreply, "NOT_FOUND");
}

/* delete <key> [0] [noreply]: the "0" is a relic memcached still accepts. */
static int process_delete(struct mc_session *s, struct mc_tok *tok,
			  size_t ntok, struct mc_buf *out)
{
	struct mc_worker *w = s->w;
	bool noreply = false;

	if (ntok > 3) {
		bool hold_is_zero = MC_TOK_IS(&tok[2], "0");
		noreply = noreply_maybe(tok, ntok);
		bool valid = (ntok == 4 && (hold_is_zero || noreply)) ||
			     (ntok == 5 && hold_is_zero && noreply);
		if (!valid)
			return REPLY(out, noreply,
				     "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
	}
	if (tok[1].len > CACHE_KEY_MAX)
		return reply(out, noreply, bad_format, sizeof(bad_format) - 1);

	uint64_t hash = cache_hash(tok[1].p, tok[1].len);
	if (__builtin_expect(w->cluster != NULL, 0)) {
		bool fresh;
		int rc = simple_route(s, "md ", &tok[1], hash, MC_FWD_TEXT_DELETE,
				      "", noreply, &fresh, out);
		if (rc >= 0)
			return rc;
		if (fresh)
			mc_fwd_after_write(s, tok[1].p, tok[1].len, hash);
	}
	if (cache_delete(w->ct, tok[1].p, tok[1].len, hash, 0) == CACHE_OK) {
		MC_STAT_INC(w, delete_hits);
		return REPLY(out, noreply, "DELETED");
	}
	MC_STAT_INC(w, delete_misses);
	return REPLY(out, noreply, "NOT_FOUND");
}

static int process_flush_all(struct mc_session *s, struct mc_tok *tok,
			     size_t ntok, struct mc_buf *out)
{
	struct mc_worker *w = s->w;
	bool noreply = noreply_maybe(tok, ntok);
	int32_t exptime = 0;
	uint32_t delay = 0;

	MC_STAT_INC(w, cmd_flush);
	if (ntok != (noreply ? 3u : 2u)) {
		if (!mc_parse_i32(&tok[1], &exptime))
			return REPLY(out, noreply, "CLIENT_ERROR invalid exptime argument");
	}
	/* memcached's realtime(): above 30 days the number is a Unix time. */
	if (exptime > 0) {
		if ((uint32_t)exptime > CACHE_REALTIME_MAXDELTA) {
			uint32_t now = cache_clock_now();
			delay = (uint32_t)exptime > now ? (uint32_t)exptime - now : 0;
		} else {
			delay = (uint32_t)exptime;
		}
	}
	cache_flush(w->ct, delay);
	return REPLY(out, noreply, "OK");
}

static int process_verbosity(struct mc_session *s, struct mc_tok *tok,
			     size_t ntok, struct mc_buf *out)
{
	bool noreply = noreply_maybe(tok, ntok);
	uint32_t level;

	if (!mc_parse_u32(&tok[1], &level))
		return reply(out, noreply, bad_format, sizeof(bad_format) - 1);
	__atomic_store_n(&s->w->server->verbosity, level > 2 ? 2 : level,
			 __ATOMIC_RELAXED);
	return REPLY(out, noreply, "OK");
}

/*
 * 'dpc_peer <node-id> <fwd|final|migrate>': the first line of a node-to-node
 * connection (cluster only). Marks the session PEER: a 'fwd' request is
 * passed on at most once more (when our map is newer than the sender's), a
 * 'final' one runs here, a migrate-role session is not routed at all.
 */
static __attribute__((noinline)) int
process_peer_hello(struct mc_session *s, struct mc_tok *tok, size_t ntok,
		   struct mc_buf *out)
{
	struct mc_fwd *f = s->fwd;

	if (f == NULL || ntok != 4 || tok[1].len == 0 || tok[1].len >= MAP_ID_MAX)
		return reply(out, false, bad_format, sizeof(bad_format) - 1);
	if (MC_TOK_IS(&tok[2], "fwd"))
		f->peer_role = MC_PEER_FWD;
	else if (MC_TOK_IS(&tok[2], "final"))
		f->peer_role = MC_PEER_FINAL;
	else if (MC_TOK_IS(&tok[2], "migrate"))
		f->peer_role = MC_PEER_MIGRATE;
	else
		return reply(out, false, bad_format, sizeof(bad_format) - 1);
	MC_STAT_INC(s->w, peer_hellos);
	return REPLY(out, false, "HD");
}

/*
 * 'dpc_inv <key> <block|done> [b]': a hot key's owner tells this replica
 * that the key is about to change (block: install no fill until 'done' or
 * a lease) or changed (done): the copy here is dropped. Peer sessions only;
 * a client gets ERROR, as for any unknown command. Answers HD.
 */
static __attribute__((noinline)) int
process_peer_inval(struct mc_session *s, struct mc_tok *tok, size_t ntok,
		   struct mc_buf *out)
{
	struct mc_fwd *f = s->fwd;
	char key[CACHE_KEY_MAX + 3];
	size_t nkey = tok[1].len;

	if (f == NULL || f->peer_role == MC_PEER_NONE)
		return REPLY(out, false, "ERROR");
	if (ntok != 4 && !(ntok == 5 && MC_TOK_IS(&tok[3], "b")))
		return reply(out, false, bad_format, sizeof(bad_format) - 1);
	bool block = MC_TOK_IS(&tok[2], "block");
	if (!block && !MC_TOK_IS(&tok[2], "done"))
		return reply(out, false, bad_format, sizeof(bad_format) - 1);
	if (ntok == 5) {
		if (nkey > 4 * ((CACHE_KEY_MAX + 2) / 3))
			return reply(out, false, bad_format,
				     sizeof(bad_format) - 1);
		nkey = mc_b64_decode(tok[1].p, tok[1].len, key);
	} else if (nkey <= CACHE_KEY_MAX) {
		memcpy(key, tok[1].p, nkey);
	}
	if (!mc_key_len_ok(nkey))
		return reply(out, false, bad_format, sizeof(bad_format) - 1);
	cluster_invalidate(s->w->cluster, key, nkey, cache_hash(key, nkey),
			   block);
	return REPLY(out, false, "HD");
}

static int process_shutdown(struct mc_session *s, struct mc_tok *tok,
			    size_t ntok, struct mc_buf *out)
{
	struct mc_server *srv = s->w->server;

	if (!srv->cfg.shutdown_enabled)
		return REPLY(out, false, "ERROR: shutdown not enabled");
	if (ntok == 2 || (ntok == 3 && MC_TOK_IS(&tok[1], "graceful"))) {
		if (srv->cfg.on_shutdown != NULL)
			srv->cfg.on_shutdown(srv->cfg.transport_arg);
		return MC_LINE_CLOSE;
	}
	return REPLY(out, false, "CLIENT_ERROR invalid shutdown mode");
}

/* ---- dispatch ----------------------------------------------------------- */

#define WANT_TOKENS(cond) \
	do { \
		if (!(cond)) \
			return REPLY(out, false, "ERROR"); \
	} while (0)

/* Offset of the token after tok[i] in the line (where get keys start). */
static size_t tok_after(const char *line, const struct mc_tok *t)
{
	return (size_t)(t->p - line) + t->len;
}

/*
 * One complete command line, without its "\n" (and the "\r" before it).
 * Returns enum mc_line_rc.
 *
 * Split in two so that the common line, a get, pays neither the
 * tokenizer's stack frame nor its register saves: process_line cuts the
 * line at a NUL and takes "get"/"gets" itself; process_command, out of
 * line, tokenizes everything else.
 */
static int process_command(struct mc_session *s, const char *line, size_t len,
			   struct mc_buf *out);

static inline int process_line(struct mc_session *s, const char *line,
			       size_t len, struct mc_buf *out)
{
	/* memcached parses the line as a C string: a NUL ends it. */
	const char *nul = memchr(line, '\0', len);
	if (nul != NULL)
		len = (size_t)(nul - line);

	/* Fast path: "get <keys>" / "gets <keys>" need no tokenizing; the
	 * key scan gives the same words memcached's tokenizer would. */
	if (len >= 5 && line[0] == 'g' && line[1] == 'e' && line[2] == 't') {
		size_t at = line[3] == ' ' ? 4 : (line[3] == 's' && line[4] == ' ') ? 5 : 0;
		if (at != 0) {
			struct get_mode gm = { at == 5, false, 0, 0 };
			if (s->text.get_resume == 0 && skip_spaces(line, len, at) == len)
				return REPLY(out, false, "ERROR");
			return process_get(s, line, len, at, &gm, out);
		}
	}
	return process_command(s, line, len, out);
}

/* process_line for every line but a get/gets (already cut at a NUL). */
static __attribute__((noinline)) int
process_command(struct mc_session *s, const char *line, size_t len,
		struct mc_buf *out)
{
	struct mc_tok tok[MC_MAX_TOKENS];
	struct get_mode gm = { false, false, 0, 0 };
	size_t ntok;

	ntok = mc_tokenize(line, len, tok, MC_MAX_TOKENS);
	if (ntok < 2 || tok[0].len < 2)
		return REPLY(out, false, "ERROR");

	const struct mc_tok *cmd = &tok[0];
	switch (cmd->p[0]) {
	case 'g':
		WANT_TOKENS(ntok >= 3);
		if (MC_TOK_IS(cmd, "get")) {
		} else if (MC_TOK_IS(cmd, "gets")) {
			gm.cas = true;
		} else if (MC_TOK_IS(cmd, "gat") || MC_TOK_IS(cmd, "gats")) {
			int32_t exptime;
			gm.cas = cmd->len == 4;
			gm.touch = true;
			if (!mc_parse_i32(&tok[1], &exptime))
				return REPLY(out, false, "CLIENT_ERROR invalid exptime argument");
			gm.exptime = cache_exptime_from_wire(exptime);
			gm.wire_exptime = exptime;
			return process_get(s, line, len, tok_after(line, &tok[1]), &gm, out);
		} else {
			return REPLY(out, false, "ERROR");
		}
		return process_get(s, line, len, tok_after(line, cmd), &gm, out);
	case 'm':
		if (cmd->len == 2)
			return mc_meta_process(s, tok, ntok, out);
		break;
	case 's':
		if (MC_TOK_IS(cmd, "set")) {
			WANT_TOKENS(ntok == 6 || ntok == 7);
			return process_update(s, tok, ntok, CACHE_SET, out);
		}
		if (MC_TOK_IS(cmd, "stats"))
			return mc_text_stats(s, tok, ntok, out);
		if (MC_TOK_IS(cmd, "shutdown"))
			return process_shutdown(s, tok, ntok, out);
		break;
	case 'a':
		if (MC_TOK_IS(cmd, "add")) {
			WANT_TOKENS(ntok == 6 || ntok == 7);
			return process_update(s, tok, ntok, CACHE_ADD, out);
		}
		if (MC_TOK_IS(cmd, "append")) {
			WANT_TOKENS(ntok == 6 || ntok == 7);
			return process_update(s, tok, ntok, CACHE_APPEND, out);
		}
		break;
	case 'c':
		if (MC_TOK_IS(cmd, "cas")) {
			WANT_TOKENS(ntok == 7 || ntok == 8);
			return process_update(s, tok, ntok, CACHE_CAS, out);
		}
		break;
	case 'i':
		if (MC_TOK_IS(cmd, "incr")) {
			WANT_TOKENS(ntok == 4 || ntok == 5);
			return process_arith(s, tok, ntok, true, out);
		}
		break;
	case 'd':
		if (MC_TOK_IS(cmd, "delete")) {
			WANT_TOKENS(ntok >= 3 && ntok <= 5);
			return process_delete(s, tok, ntok, out);
		}
		if (MC_TOK_IS(cmd, "decr")) {
			WANT_TOKENS(ntok == 4 || ntok == 5);
			return process_arith(s, tok, ntok, false, out);
		}
		if (s->w->cluster != NULL && MC_TOK_IS(cmd, "dpc_peer"))
			return process_peer_hello(s, tok, ntok, out);
		if (s->w->cluster != NULL && MC_TOK_IS(cmd, "dpc_inv"))
			return process_peer_inval(s, tok, ntok, out);
		break;
	case 't':
		if (MC_TOK_IS(cmd, "touch")) {
			WANT_TOKENS(ntok == 4 || ntok == 5);
			return process_touch(s, tok, ntok, out);
		}
		break;
	case 'r':
		if (MC_TOK_IS(cmd, "replace")) {
			WANT_TOKENS(ntok == 6 || ntok == 7);
			return process_update(s, tok, ntok, CACHE_REPLACE, out);
		}
		break;
	case 'p':
		if (MC_TOK_IS(cmd, "prepend")) {
			WANT_TOKENS(ntok == 6 || ntok == 7);
			return process_update(s, tok, ntok, CACHE_PREPEND, out);
		}
		break;
	case 'b':
		if (MC_TOK_IS(cmd, "bget")) {
			WANT_TOKENS(ntok >= 3);
			return process_get(s, line, len, tok_after(line, cmd), &gm, out);
		}
		break;
	case 'f':
		if (MC_TOK_IS(cmd, "flush_all")) {
			WANT_TOKENS(ntok >= 2 && ntok <= 4);
			return process_flush_all(s, tok, ntok, out);
		}
		break;
	case 'v':
		if (MC_TOK_IS(cmd, "version")) {
			static const char v[] = "VERSION " MC_VERSION_STRING;
			return reply(out, false, v, sizeof(v) - 1);
		}
		if (MC_TOK_IS(cmd, "verbosity")) {
			WANT_TOKENS(ntok == 3 || ntok == 4);
			return process_verbosity(s, tok, ntok, out);
		}
		break;
	case 'q':
		if (MC_TOK_IS(cmd, "quit"))
			return MC_LINE_CLOSE;
		break;
	default:
		break;
	}
	return REPLY(out, false, "ERROR");
}

/* memcached lets only get/gets lines run past MC_TEXT_LINE_MAX bytes. */
static bool long_line_allowed(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && p[i] == ' ')
		i++;
	if (i > 100)
		return false;
	return (n - i >= 4 && memcmp(p + i, "get ", 4) == 0) ||
	       (n - i >= 5 && memcmp(p + i, "gets ", 5) == 0);
}

/* DATA phase: copies value bytes into the item. Returns bytes used. */
static size_t take_data(struct mc_text_state *st, const char *in, size_t n)
{
	size_t used = 0;
	size_t nbytes = st->item->nbytes;

	if (n > st->left)
		n = st->left;
	if (st->data_off < nbytes) {
		size_t v = nbytes - st->data_off;
		if (v > n)
			v = n;
		memcpy(cache_item_value(st->item) + st->data_off, in, v);
		st->data_off += v;
		st->left -= v;
		used = v;
	}
	while (used < n) {
		st->crlf[2 - st->left] = in[used];
		st->left--;
		used++;
	}
	return used;
}

int mc_text_feed(struct mc_session *s, const char *in, size_t len,
		 size_t *consumed, struct mc_buf *out)
{
	struct mc_text_state *st = &s->text;
	size_t pos = 0;
	int rc = MC_FEED_MORE;

	while (pos < len) {
		if (st->phase == MC_TEXT_DATA) {
			pos += take_data(st, in + pos, len - pos);
			if (st->left == 0) {
				int frc = store_finish(s, out);
				if (frc == MC_LINE_CLOSE) {
					rc = MC_FEED_CLOSE;
					break;
				}
				if (frc == MC_LINE_WAIT_DONE) {
					rc = MC_FEED_WAIT;
					break;
				}
			}
			continue;
		}
		if (st->phase == MC_TEXT_SWALLOW) {
			size_t n = len - pos < st->left ? len - pos : st->left;
			pos += n;
			st->left -= n;
			if (st->left == 0)
				st->phase = MC_TEXT_LINE;
			continue;
		}

		if (mc_out_full(s, out)) {
			rc = MC_FEED_PAUSE;
			break;
		}
		const char *line = in + pos;
		size_t avail = len - pos;
		const char *nl = memchr(line, '\n', avail);
		if (nl == NULL) {
			if (avail > MC_TEXT_LINE_MAX &&
			    (!long_line_allowed(line, avail) || avail > MC_TEXT_GET_LINE_MAX)) {
				MC_STAT_INC(s->w, protocol_errors);
				rc = MC_FEED_CLOSE;
			}
			break;
		}
		size_t full = (size_t)(nl - line) + 1;
		size_t llen = full - 1;
		if (llen > 1 && line[llen - 1] == '\r')
			llen--;

		int lrc = process_line(s, line, llen, out);
		if (__builtin_expect(lrc != MC_LINE_DONE, 0)) {
			/* PAUSE and WAIT keep the line; CLOSE, WAIT_DONE end it */
			if (lrc == MC_LINE_PAUSE) {
				rc = MC_FEED_PAUSE;
				break;
			}
			if (lrc == MC_LINE_WAIT) {
				rc = MC_FEED_WAIT;
				break;
			}
			pos += full;
			rc = lrc == MC_LINE_CLOSE ? MC_FEED_CLOSE : MC_FEED_WAIT;
			break;
		}
		pos += full;
	}
	*consumed = pos;
	return rc;
}

void mc_text_reset(struct mc_session *s)
{
	struct mc_text_state *st = &s->text;

	if (st->item != NULL)
		cache_item_abort(s->w->ct, &st->item);
	memset(st, 0, sizeof(*st));
}

/*
 * A session per datagram, on the stack: clearing all of it (~400 bytes, the
 * meta stash arrays included) and again on the way out cost more than the
 * GET itself. Only the scalar prefix of mc_text_state is cleared (see
 * mc_text.h for why the arrays need not be), and on the way out only a
 * half-received item is released: the session dies there, so nothing else
 * needs resetting. No high-water pauses for a datagram: the whole reply is
 * built at once, then cut into frames by the caller.
 */
static inline void run_session_init(struct mc_session *s, struct mc_worker *w)
{
	s->w = w;
	s->proto = MC_PROTO_TEXT;
	s->fwd = NULL;          /* a datagram cannot wait: never forwarded */
	s->wake = NULL;
	memset(&s->text, 0, offsetof(struct mc_text_state, stash_len));
	s->text.no_pause = true;
}

int mc_text_run_buffer(struct mc_worker *w, const char *req, size_t len,
		       struct mc_buf *out)
{
	struct mc_session s;
	size_t done = 0;
	int rc = MC_FEED_MORE;

	run_session_init(&s, w);
	/* no_pause: a pause cannot happen; loop anyway in case */
	while (done < len) {
		size_t used = 0;
		rc = mc_text_feed(&s, req + done, len - done, &used, out);
		done += used;
		if (rc != MC_FEED_PAUSE || used == 0)
			break;
	}
	bool complete = done == len && s.text.phase == MC_TEXT_LINE;
	if (s.text.item != NULL)
		cache_item_abort(w->ct, &s.text.item);
	return complete ? 0 : -EINVAL;
}

/*
 * mc_text_run_buffer on a buffer that is one line, minus the work the
 * caller already did: mc_text_feed's phase checks, its high-water check
 * (never true with no_pause) and its memchr for the line end. What
 * mc_text_feed would then do is exactly this: process_line once; the
 * request is complete unless the line left the session in DATA or SWALLOW
 * (a storage line whose data is missing) or paused (cannot happen here).
 */
int mc_text_run_line(struct mc_worker *w, const char *line, size_t len,
		     struct mc_buf *out)
{
	struct mc_session s;

	run_session_init(&s, w);
	int lrc = process_line(&s, line, len, out);
	bool complete = lrc != MC_LINE_PAUSE && s.text.phase == MC_TEXT_LINE;
	if (s.text.item != NULL)
		cache_item_abort(w->ct, &s.text.item);
	return complete ? 0 : -EINVAL;
}
