/*
 * dataplane/memcache/forward.c - a cluster node's protocol side: routing a
 * request's key, sending what another node owns there as a meta request,
 * and turning the meta answer into exactly what that owner would have
 * answered this client in its own protocol (text, meta or binary).
 *
 * Design note. A session has at most one request out. While it is out the
 * session parses nothing (mc_session_feed answers MC_FEED_WAIT), so the
 * answer, translated in the forwarder's callback into fwd->reply, is simply
 * the next thing written to the client: replies keep the order of requests
 * without any matching here, and quiet requests (text noreply, meta q,
 * binary quiet opcodes) are sent without q and made quiet on the way back
 * (forward.h: every forwarded request gets exactly one response).
 *
 * A pull (a moving-in key absent here) is the same machinery with a
 * different end: the answer is installed with cluster_install_pulled() and
 * the request, whose bytes were left unconsumed, runs again, now locally.
 *
 * Every path of a forward ends in exactly one reply: the owner's answer,
 * or 'SERVER_ERROR forwarding to <id> failed: <reason>' (binary: status
 * 0x86, temporary failure) when the forwarder reports an error or the
 * answer cannot be read. A dead owner never hangs a client: the forwarder
 * times every request out.
 *
 * Threads: everything runs on the session's worker thread; the callback
 * comes from fwd_poll() on that thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/memcache/mc_text_impl.h"

struct mc_fwd *mc_fwd_new(void)
{
	struct mc_fwd *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	mc_buf_init(&f->req_buf);
	mc_buf_init(&f->reply);
	return f;
}

void mc_fwd_free(struct mc_fwd **fp)
{
	if (fp == NULL || *fp == NULL)
		return;
	struct mc_fwd *f = *fp;
	if (f->waiting && f->req != NULL)
		fwd_cancel(f->req);
	mc_buf_deinit(&f->req_buf);
	mc_buf_deinit(&f->reply);
	free(f);
	*fp = NULL;
}

/* ---- routing ------------------------------------------------------------- */

enum mc_route mc_fwd_route(struct mc_session *s, const char *key, size_t nkey,
			   uint64_t hash, enum cluster_op op,
			   struct cluster_route *r)
{
	struct mc_fwd *f = s->fwd;
	bool pulled = false;

	memset(r, 0, sizeof(*r));
	if (f != NULL) {
		if (f->peer_role == MC_PEER_MIGRATE)
			return MC_ROUTE_LOCAL;
		pulled = f->pulled;
		f->pulled = false;
	}
	enum cluster_from from = CLUSTER_FROM_CLIENT;
	if (f != NULL && f->peer_role == MC_PEER_FWD)
		from = CLUSTER_FROM_PEER;
	else if (f != NULL && f->peer_role == MC_PEER_FINAL)
		from = CLUSTER_FROM_PEER_FINAL;
	cluster_route(s->w->cluster, key, nkey, hash, op, from, pulled, r);
	/* One post-write hook for both reasons (mc_fwd_after_write). */
	r->moving_in = r->moving_in || r->hot_owner;
	switch (r->action) {
	case CLUSTER_FORWARD:
		if (f == NULL) {
			cluster_count_udp_refused(s->w->cluster);
			return MC_ROUTE_REFUSED;
		}
		memcpy(f->peer, r->peer, sizeof(f->peer));
		memcpy(f->peer_id, r->peer_id, sizeof(f->peer_id));
		f->final_hop = r->final_hop;
		f->peer[sizeof(f->peer) - 1] = '\0';
		f->peer_id[sizeof(f->peer_id) - 1] = '\0';
		f->req_buf.len = 0;
		return MC_ROUTE_FORWARD;
	case CLUSTER_PULL:
		if (f != NULL)
			return MC_ROUTE_PULL;
		/* A datagram cannot wait. A moving-in key or an owner's hot
		 * key reads what is here; a replica without a valid copy, or
		 * a sync write that must block the replicas first, is
		 * refused like any key owned elsewhere. */
		if (r->pull_kind == CLUSTER_PULL_FILL ||
		    r->pull_kind == CLUSTER_PULL_BLOCK) {
			cluster_count_udp_refused(s->w->cluster);
			return MC_ROUTE_REFUSED;
		}
		return MC_ROUTE_LOCAL;
	case CLUSTER_REFUSE:
		return MC_ROUTE_REFUSED;
	default:
		return MC_ROUTE_LOCAL;
	}
}

/* Bytes a meta token cannot carry: the separators and control bytes. */
static bool key_needs_b64(const char *key, size_t nkey)
{
	for (size_t i = 0; i < nkey; i++) {
		unsigned char c = (unsigned char)key[i];
		if (c <= ' ' || c == 0x7f)
			return true;
	}
	return false;
}

int mc_fwd_put_key(struct mc_buf *b, const char *key, size_t nkey, bool *b64)
{
	*b64 = key_needs_b64(key, nkey);
	if (!*b64)
		return mc_buf_append(b, key, nkey);
	char *p = mc_buf_reserve(b, 4 * ((nkey + 2) / 3));
	if (p == NULL)
		return -ENOMEM;
	b->len += (size_t)(mc_b64_encode(key, nkey, p) - p);
	return 0;
}

/* ---- errors -------------------------------------------------------------- */

static const char *err_reason(int err)
{
	switch (err) {
	case -ETIMEDOUT: return "timeout";
	case -ECONNREFUSED: return "connection refused";
	case -ECONNRESET: return "connection reset";
	case -EHOSTUNREACH: return "host unreachable";
	case -EPIPE: return "connection closed";
	case -EPROTO: return "bad reply";
	case -ENOBUFS: return "too many requests queued";
	case -ENOMEM: return "out of memory";
	case -EINVAL: return "bad peer address";
	case -EMSGSIZE: return "request line too long";
	default: return strerror(-err);
	}
}

/* "forwarding to <id> failed: <reason>" into buf. */
static int err_text(char *buf, size_t cap, const char *peer_id, int err)
{
	int n = snprintf(buf, cap, "forwarding to %s failed: %s",
			 peer_id[0] != '\0' ? peer_id : "owner", err_reason(err));
	return n < 0 ? 0 : (size_t)n >= cap ? (int)cap - 1 : n;
}

int mc_fwd_error_line(struct mc_buf *out, const char *peer_id, int err)
{
	char buf[200];
	int n;

	memcpy(buf, "SERVER_ERROR ", 13);
	n = err_text(buf + 13, sizeof(buf) - 13, peer_id, err);
	return mc_out_line(out, buf, 13 + (size_t)n);
}

/* ---- reading a meta answer ----------------------------------------------- */

struct meta_answer {
	char code[2];            /* "VA" "HD" "EN" "NS" ... */
	const char *line;        /* the first line, "\r\n" included */
	size_t nline;
	bool has_flags, has_cas;
	uint32_t flags;          /* f */
	uint64_t cas;            /* c */
	const char *data;        /* VA: the value */
	size_t ndata;
};

static bool starts_with(const char *p, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	return n >= l && memcmp(p, lit, l) == 0;
}

/* An error line the owner wrote (relayed unchanged to text and meta). */
static bool is_error_line(const struct meta_answer *a)
{
	return starts_with(a->line, a->nline, "CLIENT_ERROR") ||
	       starts_with(a->line, a->nline, "SERVER_ERROR") ||
	       starts_with(a->line, a->nline, "ERROR");
}

/*
 * Splits one complete meta response (forward.h guarantees completeness; the
 * contents are still checked: the peer is another process). false = not a
 * response we can read.
 */
static bool parse_answer(const char *reply, size_t len, struct meta_answer *a)
{
	memset(a, 0, sizeof(*a));
	const char *nl = memchr(reply, '\n', len);
	if (len < 4 || nl == NULL || nl == reply || nl[-1] != '\r')
		return false;
	a->line = reply;
	a->nline = (size_t)(nl - reply) + 1;
	a->code[0] = reply[0];
	a->code[1] = reply[1];

	/* flags after the code (and after VA's length) */
	const char *p = reply + 2;
	const char *end = nl - 1;           /* the '\r' */
	uint64_t vlen = 0;
	bool is_va = a->code[0] == 'V' && a->code[1] == 'A';
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		const char *t = p;
		while (p < end && *p != ' ')
			p++;
		size_t n = (size_t)(p - t);
		if (n == 0)
			break;
		if (is_va && t == reply + 3) {
			if (!mc_parse_span_u64(t, n, &vlen))
				return false;
		} else if (t[0] == 'f' && n > 1) {
			a->has_flags = mc_parse_span_u32(t + 1, n - 1, &a->flags);
		} else if (t[0] == 'c' && n > 1) {
			a->has_cas = mc_parse_span_u64(t + 1, n - 1, &a->cas);
		}
	}
	if (is_va) {
		size_t rest = len - a->nline;
		if (vlen + 2 > rest || reply[a->nline + vlen] != '\r' ||
		    reply[a->nline + vlen + 1] != '\n')
			return false;
		a->data = reply + a->nline;
		a->ndata = (size_t)vlen;
	}
	return true;
}

static bool code_is(const struct meta_answer *a, const char *c)
{
	return a->code[0] == c[0] && a->code[1] == c[1];
}

/* ---- translation: text --------------------------------------------------- */

#define OUT_LIT(out, lit) mc_out_line((out), (lit), sizeof(lit) - 1)

/* Returns 0, or -EPROTO when the answer does not fit the request. */
static int text_answer(struct mc_session *s, const struct meta_answer *a,
		       struct mc_buf *out)
{
	struct mc_fwd *f = s->fwd;

	if (is_error_line(a))
		return f->quiet ? 0 : mc_buf_append(out, a->line, a->nline);

	switch (f->kind) {
	case MC_FWD_TEXT_GET:
		if (code_is(a, "EN"))
			return 0;
		if (!code_is(a, "VA") || !a->has_flags || (f->cas && !a->has_cas))
			return -EPROTO;
		{
			/* "VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n" */
			char *p = mc_buf_reserve(out, 6 + f->nkey + 64 + a->ndata + 2);
			if (p == NULL)
				return -ENOMEM;
			char *start = p;
			memcpy(p, "VALUE ", 6);
			memcpy(p + 6, f->key, f->nkey);
			p += 6 + f->nkey;
			*p++ = ' ';
			p = mc_u64toa(a->flags, p);
			*p++ = ' ';
			p = mc_u64toa(a->ndata, p);
			if (f->cas) {
				*p++ = ' ';
				p = mc_u64toa(a->cas, p);
			}
			*p++ = '\r';
			*p++ = '\n';
			memcpy(p, a->data, a->ndata);
			p += a->ndata;
			*p++ = '\r';
			*p++ = '\n';
			out->len += (size_t)(p - start);
			return 0;
		}
	case MC_FWD_TEXT_TOUCH:
		if (code_is(a, "HD"))
			return f->quiet ? 0 : OUT_LIT(out, "TOUCHED");
		if (code_is(a, "EN"))
			return f->quiet ? 0 : OUT_LIT(out, "NOT_FOUND");
		return -EPROTO;
	case MC_FWD_TEXT_STORE:
		if (f->quiet && (code_is(a, "HD") || code_is(a, "NS") ||
				 code_is(a, "EX") || code_is(a, "NF")))
			return 0;
		if (code_is(a, "HD"))
			return OUT_LIT(out, "STORED");
		if (code_is(a, "NS"))
			return OUT_LIT(out, "NOT_STORED");
		if (code_is(a, "EX"))
			return OUT_LIT(out, "EXISTS");
		if (code_is(a, "NF"))
			return OUT_LIT(out, "NOT_FOUND");
		return -EPROTO;
	case MC_FWD_TEXT_DELETE:
		if (code_is(a, "HD"))
			return f->quiet ? 0 : OUT_LIT(out, "DELETED");
		if (code_is(a, "NF"))
			return f->quiet ? 0 : OUT_LIT(out, "NOT_FOUND");
		return -EPROTO;
	case MC_FWD_TEXT_ARITH:
		if (code_is(a, "NF"))
			return f->quiet ? 0 : OUT_LIT(out, "NOT_FOUND");
		if (!code_is(a, "VA"))
			return -EPROTO;
		return f->quiet ? 0 : mc_out_line(out, a->data, a->ndata);
	default:
		return -EPROTO;
	}
}

/* meta: relayed unchanged; q applied as meta.c applies it (memcached's
 * code): mg hides EN, ms and md hide HD, ma hides its success (HD or VA).
 * Known difference: a local ma with q and N still shows a vivified item's
 * success; a forwarded one cannot tell and hides it. */
static int meta_answer(struct mc_session *s, const struct meta_answer *a,
		       const char *reply, size_t len, struct mc_buf *out)
{
	struct mc_fwd *f = s->fwd;

	if (f->quiet) {
		switch (f->meta_cmd) {
		case 'g':
			if (code_is(a, "EN"))
				return 0;
			break;
		case 's':
		case 'd':
			if (code_is(a, "HD"))
				return 0;
			break;
		case 'a':
			if (code_is(a, "HD") || code_is(a, "VA"))
				return 0;
			break;
		default:
			break;
		}
	}
	return mc_buf_append(out, reply, len);
}

/* ---- translation: binary ------------------------------------------------- */

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* ENOENT as memcached writes it: k-variants carry the key, no text. */
static int bin_not_found(struct mc_fwd *f, struct mc_buf *out, bool with_key)
{
	if (!with_key)
		return mc_bin_error(out, &f->bin, MC_BIN_KEY_ENOENT, NULL);
	unsigned char *p = mc_bin_reply(out, &f->bin, MC_BIN_KEY_ENOENT, 0,
					f->nkey, f->nkey, 0);
	if (p == NULL)
		return -ENOMEM;
	memcpy(p, f->key, f->nkey);
	return 0;
}

/* The owner's error line, in binary words. */
static int bin_error_line(struct mc_fwd *f, const struct meta_answer *a,
			  struct mc_buf *out)
{
	if (starts_with(a->line, a->nline, "CLIENT_ERROR cannot increment"))
		return mc_bin_error(out, &f->bin, MC_BIN_DELTA_BADVAL, NULL);
	if (starts_with(a->line, a->nline, "SERVER_ERROR object too large"))
		return mc_bin_error(out, &f->bin, MC_BIN_E2BIG, NULL);
	if (starts_with(a->line, a->nline, "SERVER_ERROR out of memory"))
		return mc_bin_error(out, &f->bin, MC_BIN_ENOMEM, NULL);
	return mc_bin_error(out, &f->bin, MC_BIN_EINVAL, NULL);
}

static int binary_answer(struct mc_session *s, const struct meta_answer *a,
			 struct mc_buf *out)
{
	struct mc_fwd *f = s->fwd;
	uint8_t base = f->bin_base;
	bool quiet = f->quiet;

	if (is_error_line(a))
		return bin_error_line(f, a, out);

	switch (base) {
	case MC_BIN_GET:
	case MC_BIN_GETK:
	case MC_BIN_GAT:
	case MC_BIN_GATK:
	case MC_BIN_TOUCH: {
		bool with_key = base == MC_BIN_GETK || base == MC_BIN_GATK;
		if (code_is(a, "EN"))
			return quiet ? 0 : bin_not_found(f, out, with_key);
		bool is_touch = base == MC_BIN_TOUCH;
		if (!(is_touch ? code_is(a, "HD") : code_is(a, "VA")) || !a->has_flags)
			return -EPROTO;
		uint16_t keylen = with_key ? f->nkey : 0;
		size_t nval = is_touch ? 0 : a->ndata;
		if (nval > UINT32_MAX - 4 - keylen)
			return -EPROTO;
		unsigned char *p = mc_bin_reply(out, &f->bin, MC_BIN_OK, 4, keylen,
						(uint32_t)(4 + keylen + nval), a->cas);
		if (p == NULL)
			return -ENOMEM;
		put_be32(p, a->flags);
		memcpy(p + 4, f->key, keylen);
		if (nval > 0)          /* TOUCH: no value, a->data is NULL */
			memcpy(p + 4 + keylen, a->data, nval);
		return 0;
	}
	case MC_BIN_SET:
	case MC_BIN_ADD:
	case MC_BIN_REPLACE:
	case MC_BIN_APPEND:
	case MC_BIN_PREPEND:
		if (code_is(a, "HD")) {
			if (quiet)
				return 0;
			return mc_bin_reply(out, &f->bin, MC_BIN_OK, 0, 0, 0, a->cas) ?
				       0 : -ENOMEM;
		}
		if (code_is(a, "EX"))
			return mc_bin_error(out, &f->bin, MC_BIN_KEY_EEXISTS, NULL);
		if (code_is(a, "NF"))
			return mc_bin_error(out, &f->bin, MC_BIN_KEY_ENOENT, NULL);
		if (code_is(a, "NS")) {
			/* as binary.c words NOT_STORED: by the command */
			if (f->bin_mode == CACHE_ADD)
				return mc_bin_error(out, &f->bin, MC_BIN_KEY_EEXISTS, NULL);
			if (f->bin_mode == CACHE_REPLACE)
				return mc_bin_error(out, &f->bin, MC_BIN_KEY_ENOENT, NULL);
			return mc_bin_error(out, &f->bin, MC_BIN_NOT_STORED, NULL);
		}
		return -EPROTO;
	case MC_BIN_DELETE:
		if (code_is(a, "HD")) {
			if (quiet)
				return 0;
			return mc_bin_reply(out, &f->bin, MC_BIN_OK, 0, 0, 0, 0) ?
				       0 : -ENOMEM;
		}
		if (code_is(a, "NF"))
			return mc_bin_error(out, &f->bin, MC_BIN_KEY_ENOENT, NULL);
		if (code_is(a, "EX"))
			return mc_bin_error(out, &f->bin, MC_BIN_KEY_EEXISTS, NULL);
		return -EPROTO;
	case MC_BIN_INCREMENT:
	case MC_BIN_DECREMENT: {
		if (code_is(a, "NF"))
			return mc_bin_error(out, &f->bin, MC_BIN_KEY_ENOENT, NULL);
		if (code_is(a, "EX"))
			return mc_bin_error(out, &f->bin, MC_BIN_KEY_EEXISTS, NULL);
		if (code_is(a, "NS"))
			return mc_bin_error(out, &f->bin, MC_BIN_NOT_STORED, NULL);
		uint64_t v;
		if (!code_is(a, "VA") || !mc_parse_span_u64(a->data, a->ndata, &v))
			return -EPROTO;
		if (quiet)
			return 0;
		unsigned char *p = mc_bin_reply(out, &f->bin, MC_BIN_OK, 0, 0, 8, a->cas);
		if (p == NULL)
			return -ENOMEM;
		put_be32(p, (uint32_t)(v >> 32));
		put_be32(p + 4, (uint32_t)v);
		return 0;
	}
	default:
		return -EPROTO;
	}
}

/* ---- completion ---------------------------------------------------------- */

/*
 * Writes the client's reply for a forward that ended with 'err' (0: the
 * owner's answer in reply/len) to 'out'. Returns true when the request
 * failed (an error reply, or nothing for a quiet text request).
 */
static bool translate(struct mc_session *s, int err, const char *reply,
		      size_t len, struct mc_buf *out)
{
	struct mc_fwd *f = s->fwd;
	struct meta_answer a;
	size_t mark = out->len;
	int rc = err;

	if (rc == 0 && !parse_answer(reply, len, &a))
		rc = -EPROTO;
	if (rc == 0) {
		if (f->kind == MC_FWD_META)
			rc = meta_answer(s, &a, reply, len, out);
		else if (f->kind == MC_FWD_BINARY)
			rc = binary_answer(s, &a, out);
		else
			rc = text_answer(s, &a, out);
		if (rc == 0)
			return f->kind == MC_FWD_TEXT_GET && is_error_line(&a);
		out->len = mark;   /* a half-written reply never goes out */
	}

	MC_STAT_INC(s->w, forward_errors);
	if (f->kind == MC_FWD_BINARY) {
		char text[200];
		int n = err_text(text, sizeof(text), f->peer_id, rc);
		unsigned char *p = mc_bin_reply(out, &f->bin, MC_BIN_ETMPFAIL, 0, 0,
						(uint32_t)n, 0);
		if (p != NULL)
			memcpy(p, text, (size_t)n);
	} else if (!(f->quiet && f->kind != MC_FWD_META)) {
		/* text noreply hides everything; meta errors are never quiet */
		(void)mc_fwd_error_line(out, f->peer_id, rc);
	}
	return true;
}

static void fwd_done(void *arg, int err, const char *reply, size_t len);

/* MC_FWD_BLOCK: sends 'dpc_inv <key> block' to the replica after the one
 * that answered. true: it is out (keep waiting); false: none left. */
static bool block_next(struct mc_session *s)
{
	struct mc_fwd *f = s->fwd;
	char req[CACHE_KEY_MAX * 2 + 32];

	while (cluster_replica_peer(s->w->cluster, f->key, f->nkey, f->hash,
				    ++f->block_idx, f->peer, f->peer_id)) {
		size_t n = cluster_format_inval(req, sizeof(req), f->key,
						f->nkey, true);
		if (n != 0 && cluster_forward(s->w->cluster, f->peer, true, req,
					      n, fwd_done, s, &f->req) == 0) {
			f->waiting = true;
			return true;
		}
		MC_STAT_INC(s->w, pull_errors);
	}
	return false;
}

static void fwd_done(void *arg, int err, const char *reply, size_t len)
{
	struct mc_session *s = arg;
	struct mc_fwd *f = s->fwd;

	f->req = NULL;
	f->waiting = false;
	/* The request is out (the forwarder copied it): drop a big buffer. */
	if (f->req_buf.cap > MC_FWD_BUF_KEEP) {
		mc_buf_deinit(&f->req_buf);
		mc_buf_init(&f->req_buf);
	}
	if (f->kind == MC_FWD_BLOCK) {
		/* A replica that cannot be reached blocks nothing: its copy
		 * lives out its lease. On to the next one, then the write. */
		if (err != 0 || len < 2 || memcmp(reply, "HD", 2) != 0)
			MC_STAT_INC(s->w, pull_errors);
		if (block_next(s))
			return;
		f->pulled = true;
	} else if (f->kind == MC_FWD_PULL) {
		/* A failed pull is a miss: the request runs here either way. */
		int rc = f->pull_kind == CLUSTER_PULL_MIGRATE ?
			 (err != 0 ? err :
			  cluster_install_pulled(s->w->cluster, f->key,
						 f->nkey, f->hash, reply, len)) :
			 cluster_pull_done(s->w->cluster, f->pull_kind, f->key,
					   f->nkey, f->hash, f->pull_gen, err,
					   reply, len);
		if (rc != 0)
			MC_STAT_INC(s->w, pull_errors);
		f->pulled = true;
	} else {
		f->reply.len = 0;
		/* a multi-get stops at a key that failed, without its END */
		if (translate(s, err, reply, len, &f->reply) &&
		    f->kind == MC_FWD_TEXT_GET)
			s->text.get_abort = true;
	}
	f->ready = true;
	if (s->wake != NULL)
		s->wake(s->wake_arg);
}

static void count_forward(struct mc_session *s)
{
	switch (s->fwd->kind) {
	case MC_FWD_META:
		MC_STAT_INC(s->w, cmd_forward_meta);
		break;
	case MC_FWD_BINARY:
		MC_STAT_INC(s->w, cmd_forward_binary);
		break;
	default:
		MC_STAT_INC(s->w, cmd_forward_text);
		break;
	}
}

bool mc_fwd_start(struct mc_session *s, struct mc_buf *out)
{
	struct mc_fwd *f = s->fwd;

	count_forward(s);
	/* The owner's peer session reads lines of at most MC_TEXT_LINE_MAX
	 * bytes and closes a link that sends a longer one: that would fail
	 * every other request on it. Refuse such a request here instead. */
	const char *eol = memchr(f->req_buf.data, '\n', f->req_buf.len);
	int rc = eol == NULL ||
		 (size_t)(eol - f->req_buf.data) + 1 > MC_TEXT_LINE_MAX ?
		 -EMSGSIZE :
		 cluster_forward(s->w->cluster, f->peer, f->final_hop,
				 f->req_buf.data, f->req_buf.len, fwd_done, s,
				 &f->req);
	if (rc == 0) {
		f->waiting = true;
		return true;
	}
	f->req = NULL;
	(void)translate(s, rc, NULL, 0, out);
	return false;
}

bool mc_fwd_pull(struct mc_session *s, const struct cluster_route *r,
		 const char *key, size_t nkey, uint64_t hash)
{
	struct mc_fwd *f = s->fwd;
	bool b64;

	memcpy(f->peer, r->peer, sizeof(f->peer));
	memcpy(f->peer_id, r->peer_id, sizeof(f->peer_id));
	f->peer[sizeof(f->peer) - 1] = '\0';
	f->peer_id[sizeof(f->peer_id) - 1] = '\0';
	f->kind = r->pull_kind == CLUSTER_PULL_BLOCK ? MC_FWD_BLOCK
						      : MC_FWD_PULL;
	f->pull_kind = r->pull_kind;
	f->pull_gen = r->pull_gen;
	f->block_idx = 0;
	f->nkey = (uint8_t)nkey;
	memcpy(f->key, key, nkey);
	f->hash = hash;
	f->req_buf.len = 0;

	MC_STAT_INC(s->w, cmd_pull);
	if (f->kind == MC_FWD_BLOCK) {
		char req[CACHE_KEY_MAX * 2 + 32];
		size_t n = cluster_format_inval(req, sizeof(req), key, nkey,
						true);
		if (n != 0 && cluster_forward(s->w->cluster, f->peer, true,
					      req, n, fwd_done, s,
					      &f->req) == 0) {
			f->waiting = true;
			return true;
		}
		/* The first replica failed at once: try the others. */
		MC_STAT_INC(s->w, pull_errors);
		if (block_next(s))
			return true;
		f->req = NULL;
		return false;
	}
	int rc = mc_buf_append(&f->req_buf, "mg ", 3);
	if (rc == 0)
		rc = mc_fwd_put_key(&f->req_buf, key, nkey, &b64);
	if (rc == 0 && b64)
		rc = mc_buf_append(&f->req_buf, " b", 2);
	if (rc == 0)
		rc = mc_buf_append(&f->req_buf, " v f t c\r\n", 10);
	if (rc == 0)
		rc = cluster_forward(s->w->cluster, f->peer, true,
				     f->req_buf.data, f->req_buf.len, fwd_done,
				     s, &f->req);
	if (rc != 0) {
		MC_STAT_INC(s->w, pull_errors);
		f->req = NULL;
		if (f->pull_kind == CLUSTER_PULL_FILL)
			cluster_fill_not_sent(s->w->cluster, key, nkey, hash);
		return false;
	}
	f->waiting = true;
	return true;
}
