/*
 * dataplane/memcache/meta.c - memcached's meta protocol (mg ms md ma mn me),
 * as memcached 1.6.18 speaks it.
 *
 * Every command parses its flags once (meta_preparse: duplicates, unknown
 * flags and bad numbers are errors), then runs the cache operation, then
 * writes the return flags in the order the request gave them. Replies are
 * written straight into the output buffer; an error found while writing
 * (an opaque over 32 bytes) truncates what was written and sends only the
 * error, as memcached does.
 *
 * Quiet mode (q) follows memcached's code, not its docs: mg hides only EN,
 * ms and md and ma hide only HD; errors are never hidden.
 *
 * Known difference: memcached remembers per item that its key came in
 * base64 ('b') and re-encodes it on output; dpcache's item has no such bit,
 * so 'k' output follows the request's own 'b' flag.
 *
 * Cluster: mg ms md ma route on the (decoded) key once their flags parsed;
 * one another node owns is sent there as the same command without its q
 * flag (forward.c applies q to the answer). mn and me are always local.
 */
#include <errno.h>
#include <string.h>

#include "cache/clock.h"
#include "dataplane/memcache/mc_text_impl.h"

#define META_MAX_TOKENS 20   /* memcached's MFLAG_MAX_OPT_LENGTH */
#define META_MAX_OPAQUE 32   /* MFLAG_MAX_OPAQUE_LENGTH, 'O' included */

static const char bad_format[] = "CLIENT_ERROR bad command line format";

/*
 * memcached refuses a key token over 250 characters before it decodes
 * base64, so a binary key of 188..250 bytes cannot be written through meta
 * at all. Clients get exactly that. On a node-to-node connection (a peer
 * session: forwarding, pulls, migration) a token with the 'b' flag may be
 * base64 of up to CACHE_KEY_MAX bytes, 336 characters: binary-protocol
 * clients' keys travel between nodes that way.
 */
#define META_KEY_TOKEN_MAX 336
#define META_KEYBUF (CACHE_KEY_MAX + 3)   /* 336 characters decode to 252 */

/* Whether flag token 'b' appears in tok[first..ntok-1). */
static bool meta_has_b(const struct mc_tok *tok, size_t ntok, size_t first)
{
	for (size_t i = first; i + 1 < ntok; i++)
		if (tok[i].len == 1 && tok[i].p[0] == 'b')
			return true;
	return false;
}

/* The key token's length is acceptable (see META_KEY_TOKEN_MAX). */
static bool meta_key_token_ok(const struct mc_session *s,
			      const struct mc_tok *tok, size_t ntok,
			      size_t first)
{
	if (tok[1].len <= CACHE_KEY_MAX)
		return true;
	return s->fwd != NULL && s->fwd->peer_role != MC_PEER_NONE &&
	       tok[1].len <= META_KEY_TOKEN_MAX && meta_has_b(tok, ntok, first);
}

/* ---- base64 (RFC 4648, with padding) ------------------------------------ */

static const char b64_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes into out (room for n*3/4 bytes). Returns the length, 0 if bad. */
size_t mc_b64_decode(const char *in, size_t n, char *out)
{
	size_t o = 0;

	if (n == 0 || n % 4 != 0)
		return 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		int pad = 0;
		for (int j = 0; j < 4; j++) {
			unsigned char c = (unsigned char)in[i + j];
			if (c == '=' && i + 4 == n && j >= 2) {
				v[j] = 0;
				pad++;
			} else if (pad > 0 || (v[j] = b64_value(c)) < 0) {
				return 0;
			}
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
			     (uint32_t)v[2] << 6 | (uint32_t)v[3];
		out[o++] = (char)(w >> 16);
		if (pad < 2)
			out[o++] = (char)(w >> 8);
		if (pad < 1)
			out[o++] = (char)w;
	}
	return o;
}

/* Encodes n bytes at p; needs 4*((n+2)/3) bytes. Returns the end. */
char *mc_b64_encode(const char *in, size_t n, char *p)
{
	size_t i;
	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t w = (uint32_t)(unsigned char)in[i] << 16 |
			     (uint32_t)(unsigned char)in[i + 1] << 8 |
			     (uint32_t)(unsigned char)in[i + 2];
		*p++ = b64_chars[w >> 18 & 63];
		*p++ = b64_chars[w >> 12 & 63];
		*p++ = b64_chars[w >> 6 & 63];
		*p++ = b64_chars[w & 63];
	}
	if (i < n) {
		uint32_t w = (uint32_t)(unsigned char)in[i] << 16;
		if (i + 1 < n)
			w |= (uint32_t)(unsigned char)in[i + 1] << 8;
		*p++ = b64_chars[w >> 18 & 63];
		*p++ = b64_chars[w >> 12 & 63];
		*p++ = i + 1 < n ? b64_chars[w >> 6 & 63] : '=';
		*p++ = '=';
	}
	return p;
}

/* ---- flags ---------------------------------------------------------------- */

struct meta_flags {
	bool no_update;      /* u */
	bool vivify;         /* N */
	bool value;          /* v */
	bool set_stale;      /* I */
	bool no_reply;       /* q */
	bool has_cas;        /* C */
	bool new_ttl;        /* T */
	bool key_binary;     /* b */
	bool has_recache;    /* R */
	char mode;           /* M */
	uint32_t exptime;    /* T, absolute */
	uint32_t autoviv_exptime; /* N, absolute */
	uint32_t recache_time;    /* R, absolute */
	uint32_t client_flags;    /* F */
	uint64_t req_cas_id;      /* C */
	uint64_t delta;           /* D */
	uint64_t initial;         /* J */
	/* the key, base64-decoded into keybuf (the caller's) when 'b' was given */
	const char *key;
	size_t nkey;
	char *keybuf;
};

/* memcached's EXPTIME_TO_POSITIVE_TIME + realtime(): see cache_exptime_from_wire. */
static bool flag_exptime(const struct mc_tok *t, uint32_t *out)
{
	int32_t v;
	if (!mc_parse_span_i32(t->p + 1, t->len - 1, &v))
		return false;
	*out = cache_exptime_from_wire(v);
	return true;
}

/*
 * Parses the flags tok[start .. ntok-2]. Returns 0, or -1 with *errstr set.
 * A duplicate or unknown flag stops at once; other errors are remembered and
 * parsing goes on (so ms still learns enough to swallow its data).
 */
static int meta_preparse(const struct mc_tok *tok, size_t ntok, size_t start,
			 struct meta_flags *of, const char **errstr)
{
	uint64_t seen[2] = { 0, 0 };   /* one bit per ASCII flag char */
	bool has_error = false;

	of->key = tok[1].p;
	of->nkey = tok[1].len;
	for (size_t i = start; i < ntok - 1; i++) {
		const struct mc_tok *t = &tok[i];
		uint8_t o = (uint8_t)t->p[0];

		if (o >= 127 || (seen[o >> 6] & (1ull << (o & 63)))) {
			*errstr = "CLIENT_ERROR duplicate flag";
			return -1;
		}
		seen[o >> 6] |= 1ull << (o & 63);
		switch (o) {
		case 'b': {
			size_t n = tok[1].len <= META_KEY_TOKEN_MAX ?
					   mc_b64_decode(tok[1].p, tok[1].len, of->keybuf) : 0;
			if (n == 0 || n > CACHE_KEY_MAX) {
				*errstr = "CLIENT_ERROR error decoding key";
				has_error = true;
			}
			of->key = of->keybuf;
			of->nkey = n;
			of->key_binary = true;
			break;
		}
		case 'N':
			of->vivify = true;
			if (!flag_exptime(t, &of->autoviv_exptime)) {
				*errstr = "CLIENT_ERROR bad token in command line format";
				has_error = true;
			}
			break;
		case 'T':
			if (!flag_exptime(t, &of->exptime)) {
				*errstr = "CLIENT_ERROR bad token in command line format";
				has_error = true;
			} else {
				of->new_ttl = true;
			}
			break;
		case 'R':
			if (!flag_exptime(t, &of->recache_time)) {
				*errstr = "CLIENT_ERROR bad token in command line format";
				has_error = true;
			} else {
				of->has_recache = true;
			}
			break;
		case 'l': case 'O': case 'P': case 'L': case 'k': case 's':
		case 't': case 'c': case 'f': case 'h':
			break;
		case 'v':
			of->value = true;
			break;
		case 'u':
			of->no_update = true;
			break;
		case 'q':
			of->no_reply = true;
			break;
		case 'F':
			if (!mc_parse_span_u32(t->p + 1, t->len - 1, &of->client_flags))
				has_error = true;
			break;
		case 'C':
			if (!mc_parse_span_u64(t->p + 1, t->len - 1, &of->req_cas_id)) {
				*errstr = "CLIENT_ERROR bad token in command line format";
				has_error = true;
			} else {
				of->has_cas = true;
			}
			break;
		case 'M':
			if (t->len != 2) {
				*errstr = "CLIENT_ERROR incorrect length for M token";
				has_error = true;
			} else {
				of->mode = t->p[1];
			}
			break;
		case 'J':
			if (!mc_parse_span_u64(t->p + 1, t->len - 1, &of->initial)) {
				*errstr = "CLIENT_ERROR invalid numeric initial value";
				has_error = true;
			}
			break;
		case 'D':
			if (!mc_parse_span_u64(t->p + 1, t->len - 1, &of->delta)) {
				*errstr = "CLIENT_ERROR invalid numeric delta value";
				has_error = true;
			}
			break;
		case 'I':
			of->set_stale = true;
			break;
		default:
			*errstr = "CLIENT_ERROR invalid flag";
			return -1;
		}
	}
	return has_error ? -1 : 0;
}

/* ---- output helpers ------------------------------------------------------ */

static int out_err(struct mc_buf *out, const char *s)
{
	return mc_out_line(out, s, strlen(s)) == 0 ? MC_LINE_DONE : MC_LINE_CLOSE;
}

/* Worst case of one meta reply line without the value: key in base64 (~336),
 * 19 flags with numbers, opaque. */
#define META_LINE_MAX 1024

/* " k<key>" (base64 + " b" for binary keys). */
static char *put_key(char *p, const char *key, size_t nkey, bool binary)
{
	*p++ = ' ';
	*p++ = 'k';
	if (!binary) {
		memcpy(p, key, nkey);
		return p + nkey;
	}
	p = mc_b64_encode(key, nkey, p);
	*p++ = ' ';
	*p++ = 'b';
	return p;
}

static char *put_flag_u64(char *p, char flag, uint64_t v)
{
	*p++ = ' ';
	*p++ = flag;
	return mc_u64toa(v, p);
}

static char *put_ttl(char *p, uint32_t exptime)
{
	int64_t ttl = cache_ttl_remaining(exptime);
	*p++ = ' ';
	*p++ = 't';
	if (ttl < 0) {
		*p++ = '-';
		*p++ = '1';
		return p;
	}
	return mc_u64toa((uint64_t)ttl, p);
}

/* " O..." and " k..." only (miss and error-status lines). Returns NULL if an
 * opaque is too long. */
static char *put_opaque_key(char *p, const struct mc_tok *tok, size_t ntok,
			    size_t start, const struct meta_flags *of)
{
	for (size_t i = start; i < ntok - 1; i++) {
		if (tok[i].p[0] == 'O') {
			if (tok[i].len > META_MAX_OPAQUE)
				return NULL;
			*p++ = ' ';
			memcpy(p, tok[i].p, tok[i].len);
			p += tok[i].len;
		} else if (tok[i].p[0] == 'k') {
			p = put_key(p, of->key, of->nkey, of->key_binary);
		}
	}
	return p;
}

/* Checks the common head of mg/md/ma. Returns -1 (reply written) or 0. */
static int meta_head(const struct mc_session *s, const struct mc_tok *tok,
		     size_t ntok, struct mc_buf *out,
		     int *rc, const char *too_many)
{
	if (ntok < 3) {
		*rc = out_err(out, "ERROR");
		return -1;
	}
	if (!meta_key_token_ok(s, tok, ntok, 2)) {
		*rc = out_err(out, bad_format);
		return -1;
	}
	if (ntok > META_MAX_TOKENS) {
		*rc = out_err(out, too_many);
		return -1;
	}
	return 0;
}

/* ---- cluster ------------------------------------------------------------- */

/* meta_route's answer for an ms whose value must go to the owner. */
#define META_FWD_STORE 100

/*
 * Cluster: where mg/ms/md/ma goes. -1 = run here (*fresh: a moving-in key,
 * mark it FRESH after a write); META_FWD_STORE = ms for the owner (its line
 * is in fwd->req_buf, the value follows); else the line result.
 */
static __attribute__((noinline)) int
meta_route(struct mc_session *s, const struct mc_tok *tok, size_t ntok,
	   size_t start, const struct meta_flags *of, char cmd,
	   enum cluster_op op, bool *fresh, struct mc_buf *out)
{
	struct cluster_route r;
	uint64_t hash = cache_hash(of->key, of->nkey);

	*fresh = false;
	switch (mc_fwd_route(s, of->key, of->nkey, hash, op, &r)) {
	case MC_ROUTE_LOCAL:
		*fresh = r.moving_in;
		return -1;
	case MC_ROUTE_REFUSED:
		return out_err(out, MC_FWD_REFUSED_TEXT);
	case MC_ROUTE_PULL:
		if (mc_fwd_pull(s, &r, of->key, of->nkey, hash))
			return MC_LINE_WAIT;
		*fresh = r.moving_in;     /* failed at once: runs here */
		return -1;
	default:
		break;
	}

	/* the same command, without q (one answer per forwarded request) */
	struct mc_fwd *f = s->fwd;
	struct mc_buf *b = &f->req_buf;
	f->kind = MC_FWD_META;
	f->meta_cmd = cmd;
	f->quiet = of->no_reply;
	for (size_t i = 0; i < ntok - 1; i++) {
		/* any flag token starting with q is q (as meta_preparse
		 * reads it): forwarded, it would silence the owner and shift
		 * every answer after it on the shared link */
		if (i >= start && tok[i].len > 0 && tok[i].p[0] == 'q')
			continue;
		if ((i > 0 && mc_buf_append(b, " ", 1) != 0) ||
		    mc_buf_append(b, tok[i].p, tok[i].len) != 0)
			return MC_LINE_CLOSE;
	}
	if (mc_buf_append(b, "\r\n", 2) != 0)
		return MC_LINE_CLOSE;
	if (cmd == 's')
		return META_FWD_STORE;
	return mc_fwd_start(s, out) ? MC_LINE_WAIT_DONE : MC_LINE_DONE;
}

/* ---- mg ------------------------------------------------------------------ */

static int meta_get(struct mc_session *s, struct mc_tok *tok, size_t ntok,
		    struct mc_buf *out)
{
	struct mc_worker *w = s->w;
	char keybuf[META_KEYBUF];
	struct meta_flags of = { .keybuf = keybuf };
	const char *errstr = bad_format;
	int rc;

	if (meta_head(s, tok, ntok, out, &rc, "CLIENT_ERROR options flags are too long") != 0)
		return rc;
	if (meta_preparse(tok, ntok, 2, &of, &errstr) != 0)
		return out_err(out, errstr);
	if (__builtin_expect(w->cluster != NULL, 0)) {
		bool fresh;
		rc = meta_route(s, tok, ntok, 2, &of, 'g',
				of.new_ttl ? CLUSTER_OP_TOUCH : CLUSTER_OP_READ,
				&fresh, out);
		if (rc >= 0)
			return rc;
	}

	uint64_t hash = cache_hash(of.key, of.nkey);
	/* T is applied below, in flag order, so a 't' before it reports the
	 * old TTL, as in memcached. */
	struct cache_read_opts opts = { .no_bump = of.no_update };
	struct cache_read_info info = { 0, false };
	const struct cache_item *it = cache_get(w->ct, of.key, of.nkey, hash,
						&opts, &info);
	bool created = false;
	bool won = false;

	if (it == NULL && of.vivify) {
		/* Miss with N: link an empty item so this client alone
		 * recaches it (it gets W, later ones Z). */
		enum cache_status err;
		struct cache_item *nit = cache_item_alloc(w->ct, of.key, of.nkey, 0,
							  of.autoviv_exptime, 0, &err);
		if (nit != NULL) {
			struct cache_store_args a = { .mode = CACHE_ADD };
			if (cache_store(w->ct, nit, hash, &a, NULL) == CACHE_OK) {
				it = nit;
				created = true;
			} else {
				it = cache_get(w->ct, of.key, of.nkey, hash, &opts, &info);
			}
		}
	}

	size_t mark = out->len;
	if (it == NULL) {
		if (of.new_ttl) {
			MC_STAT_INC(w, cmd_touch);
			MC_STAT_INC(w, touch_misses);
		} else {
			MC_STAT_INC(w, get_misses);
			MC_STAT_INC(w, cmd_get);
		}
		char *p = mc_buf_reserve(out, META_LINE_MAX);
		if (p == NULL)
			return MC_LINE_CLOSE;
		char *start = p;
		memcpy(p, "EN", 2);
		p = put_opaque_key(p + 2, tok, ntok, 2, &of);
		if (p == NULL)
			return out_err(out, "CLIENT_ERROR opaque token too long");
		if (of.no_reply)
			return MC_LINE_DONE;
		*p++ = '\r';
		*p++ = '\n';
		out->len += (size_t)(p - start);
		return MC_LINE_DONE;
	}

	uint8_t state = cache_item_state(it);
	size_t need = META_LINE_MAX + (of.value ? it->nbytes + 2 : 0);
	char *p = mc_out_reserve(out, need);
	if (p == NULL)
		return MC_LINE_CLOSE;
	char *start = p;
	/* The TTL as memcached's flag loop sees it: a vivified item starts
	 * immortal until its N flag; T and N change it where they appear. */
	uint32_t exptime = created ? 0 : cache_item_exptime(it);
	bool set_exptime = false;

	if (of.value) {
		memcpy(p, "VA ", 3);
		p = mc_u64toa(it->nbytes, p + 3);
	} else {
		memcpy(p, "HD", 2);
		p += 2;
	}
	for (size_t i = 2; i < ntok - 1; i++) {
		const struct mc_tok *t = &tok[i];
		switch (t->p[0]) {
		case 'T':
			exptime = of.exptime;
			set_exptime = true;
			break;
		case 'N':
			if (created) {
				exptime = of.autoviv_exptime;
				set_exptime = true;
				won = true;
			}
			break;
		case 'R':
			if (!(state & CACHE_ITEM_WIN_SENT) && !created &&
			    exptime != 0 && exptime < of.recache_time)
				won = true;
			break;
		case 's':
			p = put_flag_u64(p, 's', it->nbytes);
			break;
		case 't':
			p = put_ttl(p, exptime);
			break;
		case 'c':
			p = put_flag_u64(p, 'c', it->cas);
			break;
		case 'f':
			p = put_flag_u64(p, 'f', it->client_flags);
			break;
		case 'l': {
			uint32_t now = cache_clock_now();
			uint32_t at = created ? now : info.prev_atime;
			p = put_flag_u64(p, 'l', now >= at ? now - at : 0);
			break;
		}
		case 'h':
			*p++ = ' ';
			*p++ = 'h';
			*p++ = (!created && info.prev_fetched) ? '1' : '0';
			break;
		case 'O':
			if (t->len > META_MAX_OPAQUE) {
				out->len = mark;
				return out_err(out, "CLIENT_ERROR opaque token too long");
			}
			*p++ = ' ';
			memcpy(p, t->p, t->len);
			p += t->len;
			break;
		case 'k':
			p = put_key(p, cache_item_key(it), it->nkey, of.key_binary);
			break;
		default:
			break;
		}
	}

	if (set_exptime)
		cache_item_set_exptime(cache_item_mut(it), exptime);

	/* Z before W so a client never sees both for one fetch. */
	if (state & CACHE_ITEM_WIN_SENT) {
		*p++ = ' ';
		*p++ = 'Z';
	}
	if (state & CACHE_ITEM_STALE) {
		*p++ = ' ';
		*p++ = 'X';
		if (!(state & CACHE_ITEM_WIN_SENT))
			won = true;
	}
	if (won) {
		/* test-and-set: of two racing clients only one gets W */
		uint8_t prev = cache_item_set_state(cache_item_mut(it), CACHE_ITEM_WIN_SENT);
		if (!(prev & CACHE_ITEM_WIN_SENT) || created) {
			*p++ = ' ';
			*p++ = 'W';
		}
	}
	*p++ = '\r';
	*p++ = '\n';
	if (of.value) {
		memcpy(p, cache_item_value_const(it), it->nbytes);
		p += it->nbytes;
		*p++ = '\r';
		*p++ = '\n';
	}
	out->len += (size_t)(p - start);

	if (of.new_ttl) {
		MC_STAT_INC(w, cmd_touch);
		MC_STAT_INC(w, touch_hits);
	} else {
		MC_STAT_INC(w, get_hits);
		MC_STAT_INC(w, cmd_get);
	}
	return MC_LINE_DONE;
}

/* ---- ms ------------------------------------------------------------------ */

/*
 * Cluster: an ms whose flags and mode are known. A migrate-role peer's add
 * on a key written here during the migration answers NS without storing
 * (the stream never overwrites a FRESH key). -1 = receive the value (here,
 * or for the owner when st->fwd_store is set); else the line result.
 */
static __attribute__((noinline)) int
meta_set_route(struct mc_session *s, const struct mc_tok *tok, size_t ntok,
	       const struct meta_flags *of, enum cache_store_mode mode,
	       size_t vlen, struct mc_buf *out)
{
	struct mc_text_state *st = &s->text;
	bool fresh;

	st->fwd_store = false;
	st->fresh_after = false;
	st->migrated = false;
	if (s->fwd != NULL && s->fwd->peer_role == MC_PEER_MIGRATE &&
	    mode == CACHE_ADD) {
		/* The stream's add: only for a key moving in to us in the
		 * migration in flight, not written here since; checked again
		 * once stored (a write may overtake it meanwhile). */
		if (!cluster_accepts_migrated(s->w->cluster, of->key, of->nkey,
					      cache_hash(of->key, of->nkey))) {
			st->phase = MC_TEXT_SWALLOW;
			st->left = vlen + 2;
			return mc_meta_store_reply(s, CACHE_NOT_STORED, 0, out);
		}
		st->migrated = true;
	}
	enum cluster_op op = mode == CACHE_SET && !of->set_stale ?
				     CLUSTER_OP_SET : CLUSTER_OP_WRITE;
	int rc = meta_route(s, tok, ntok, 3, of, 's', op, &fresh, out);
	if (rc == META_FWD_STORE) {
		st->fwd_store = true;
		return -1;
	}
	if (rc < 0) {
		st->fresh_after = fresh;
		return -1;
	}
	if (rc != MC_LINE_WAIT) {
		/* refused: the value is dropped (a pull keeps it for the rerun) */
		st->phase = MC_TEXT_SWALLOW;
		st->left = vlen + 2;
	}
	return rc;
}

static int meta_set(struct mc_session *s, struct mc_tok *tok, size_t ntok,
		    struct mc_buf *out)
{
	struct mc_text_state *st = &s->text;
	char keybuf[META_KEYBUF];
	struct meta_flags of = { .keybuf = keybuf };
	const char *errstr = bad_format;
	int32_t vlen;

	if (ntok < 3)
		return out_err(out, "ERROR");
	if (!meta_key_token_ok(s, tok, ntok, 3) || ntok == 3)
		return out_err(out, bad_format);
	if (ntok > META_MAX_TOKENS)
		return out_err(out, "CLIENT_ERROR options flags too long");
	if (!mc_parse_i32(&tok[2], &vlen) || vlen < 0 || vlen > INT32_MAX - 2)
		return out_err(out, bad_format);

	if (meta_preparse(tok, ntok, 3, &of, &errstr) != 0)
		goto error;

	/* Stash the flags that can only be written after the store. */
	st->stash_len = 0;
	for (size_t i = 3; i < ntok - 1; i++) {
		const struct mc_tok *t = &tok[i];
		char f = t->p[0];
		if (f == 'O') {
			if (t->len > META_MAX_OPAQUE) {
				errstr = "CLIENT_ERROR opaque token too long";
				goto error;
			}
			memcpy(st->stash + st->stash_len, t->p, t->len);
			st->stash_len += (uint8_t)t->len;
			st->stash[st->stash_len++] = ' ';
		} else if (f == 'k' || f == 'c') {
			/* one O (32) + k + c fit: flags are never repeated */
			st->stash[st->stash_len++] = f;
			st->stash[st->stash_len++] = ' ';
		}
	}
	memcpy(st->stash_key, of.key, of.nkey);
	st->stash_nkey = (uint8_t)of.nkey;

	enum cache_store_mode mode;
	switch (of.mode) {
	case 0:
	case 'S':
		mode = CACHE_SET;
		break;
	case 'E':
		mode = CACHE_ADD;
		break;
	case 'A':
		mode = CACHE_APPEND;
		break;
	case 'P':
		mode = CACHE_PREPEND;
		break;
	case 'R':
		mode = CACHE_REPLACE;
		break;
	default:
		errstr = "CLIENT_ERROR invalid mode for ms M token";
		goto error;
	}
	/* A CAS turns set and replace into cas; add/append/prepend check it. */
	if (of.has_cas && (mode == CACHE_SET || mode == CACHE_REPLACE))
		mode = CACHE_CAS;

	st->noreply = of.no_reply;
	st->meta = true;
	st->meta_key_binary = of.key_binary;
	st->store_mode = (uint8_t)mode;
	st->cas_compare = of.has_cas ? of.req_cas_id : 0;
	st->invalidate = of.set_stale && mode == CACHE_CAS;
	st->vivify = false;
	if (__builtin_expect(s->w->cluster != NULL, 0)) {
		int rc = meta_set_route(s, tok, ntok, &of, mode, (size_t)vlen, out);
		if (rc >= 0)
			return rc;
	}
	return mc_text_store_begin(s, of.key, of.nkey, of.client_flags,
				   of.exptime, (size_t)vlen, out);
error:
	st->phase = MC_TEXT_SWALLOW;
	st->left = (size_t)vlen + 2;
	return out_err(out, errstr);
}

int mc_meta_store_reply(struct mc_session *s, enum cache_status rc,
			uint64_t cas, struct mc_buf *out)
{
	struct mc_text_state *st = &s->text;
	const char *code;

	switch (rc) {
	case CACHE_OK:
		if (st->noreply)
			return MC_LINE_DONE;
		code = "HD";
		break;
	case CACHE_EXISTS:
		code = "EX";
		break;
	case CACHE_NOT_FOUND:
		code = "NF";
		break;
	case CACHE_NOT_STORED:
		code = "NS";
		break;
	case CACHE_TOO_LARGE:
	case CACHE_NO_MEMORY:
		if (st->store_mode == CACHE_APPEND || st->store_mode == CACHE_PREPEND) {
			code = "NS";
			break;
		}
		return out_err(out, "SERVER_ERROR out of memory storing object");
	default:
		return out_err(out, "SERVER_ERROR Unhandled storage type.");
	}

	char *p = mc_buf_reserve(out, META_LINE_MAX);
	if (p == NULL)
		return MC_LINE_CLOSE;
	char *start = p;
	memcpy(p, code, 2);
	p += 2;
	for (size_t i = 0; i < st->stash_len;) {
		char f = st->stash[i];
		size_t e = i;
		while (e < st->stash_len && st->stash[e] != ' ')
			e++;
		if (f == 'O') {
			*p++ = ' ';
			memcpy(p, st->stash + i, e - i);
			p += e - i;
		} else if (f == 'k') {
			/* the key is in the stored item only; remembered below */
			p = put_key(p, st->stash_key, st->stash_nkey, st->meta_key_binary);
		} else if (f == 'c') {
			p = put_flag_u64(p, 'c', rc == CACHE_OK ? cas : 0);
		}
		i = e + 1;
	}
	*p++ = '\r';
	*p++ = '\n';
	out->len += (size_t)(p - start);
	return MC_LINE_DONE;
}

/* ---- md ------------------------------------------------------------------ */

static int meta_delete(struct mc_session *s, struct mc_tok *tok, size_t ntok,
		       struct mc_buf *out)
{
	struct mc_worker *w = s->w;
	char keybuf[META_KEYBUF];
	struct meta_flags of = { .keybuf = keybuf };
	const char *errstr = bad_format;
	int rc;

	if (meta_head(s, tok, ntok, out, &rc, "CLIENT_ERROR options flags too long") != 0)
		return rc;
	if (meta_preparse(tok, ntok, 2, &of, &errstr) != 0)
		return out_err(out, "CLIENT_ERROR invalid or duplicate flag");
	bool fresh = false;
	if (__builtin_expect(w->cluster != NULL, 0)) {
		rc = meta_route(s, tok, ntok, 2, &of, 'd', CLUSTER_OP_WRITE, &fresh, out);
		if (rc >= 0)
			return rc;
	}

	char *p = mc_buf_reserve(out, META_LINE_MAX);
	if (p == NULL)
		return MC_LINE_CLOSE;
	char *start = p;
	char *end = put_opaque_key(p + 2, tok, ntok, 2, &of);
	if (end == NULL)
		return out_err(out, "CLIENT_ERROR opaque token too long");

	uint64_t hash = cache_hash(of.key, of.nkey);
	uint64_t cas = of.has_cas ? of.req_cas_id : 0;
	enum cache_status st;
	if (of.set_stale)
		st = cache_invalidate(w->ct, of.key, of.nkey, hash, cas,
				      of.new_ttl, of.exptime);
	else
		st = cache_delete(w->ct, of.key, of.nkey, hash, cas);
	if (__builtin_expect(fresh, 0))
		mc_fwd_after_write(s, of.key, of.nkey, hash);

	switch (st) {
	case CACHE_OK:
		if (!of.set_stale)
			MC_STAT_INC(w, delete_hits);
		if (of.no_reply)
			return MC_LINE_DONE;
		memcpy(start, "HD", 2);
		break;
	case CACHE_EXISTS:
		MC_STAT_INC(w, delete_misses);
		memcpy(start, "EX", 2);
		break;
	default:
		MC_STAT_INC(w, delete_misses);
		memcpy(start, "NF", 2);
		break;
	}
	*end++ = '\r';
	*end++ = '\n';
	out->len += (size_t)(end - start);
	return MC_LINE_DONE;
}

/* ---- ma ------------------------------------------------------------------ */

static int meta_arith(struct mc_session *s, struct mc_tok *tok, size_t ntok,
		      struct mc_buf *out)
{
	struct mc_worker *w = s->w;
	char keybuf[META_KEYBUF];
	struct meta_flags of = { .keybuf = keybuf };
	const char *errstr = bad_format;
	int rc;

	of.delta = 1;
	if (meta_head(s, tok, ntok, out, &rc, "CLIENT_ERROR options flags too long") != 0)
		return rc;
	if (meta_preparse(tok, ntok, 2, &of, &errstr) != 0)
		return out_err(out, "CLIENT_ERROR invalid or duplicate flag");
	bool fresh = false;
	if (__builtin_expect(w->cluster != NULL, 0)) {
		rc = meta_route(s, tok, ntok, 2, &of, 'a', CLUSTER_OP_WRITE, &fresh, out);
		if (rc >= 0)
			return rc;
	}

	bool incr = true;
	switch (of.mode) {
	/* memcached 1.6.18 takes only upper-case modes here (unlike ms). */
	case 0: case 'I': case '+':
		break;
	case 'D': case '-':
		incr = false;
		break;
	default:
		return out_err(out, "CLIENT_ERROR invalid mode for ma M token");
	}

	struct cache_arith_args args = {
		.incr = incr,
		.delta = of.delta,
		.cas_compare = of.has_cas ? of.req_cas_id : 0,
		.vivify = of.vivify,
		.initial = of.initial,
		.vivify_exptime = of.autoviv_exptime,
		.touch = of.new_ttl,
		.new_exptime = of.exptime,
	};
	/* On a vivified item memcached applies N and T in request order, so
	 * the later one sets its TTL. */
	for (size_t i = 2; of.vivify && of.new_ttl && i < ntok - 1; i++) {
		if (tok[i].p[0] == 'N')
			args.vivify_exptime = of.autoviv_exptime;
		else if (tok[i].p[0] == 'T')
			args.vivify_exptime = of.exptime;
	}
	uint64_t hash = cache_hash(of.key, of.nkey);
	/* memcached's q hides HD only for an existing item, not a vivified
	 * one: find out which it will be. */
	bool existed = true;
	if (of.vivify && of.no_reply) {
		struct cache_read_opts o = { .no_bump = true };
		existed = cache_get(w->ct, of.key, of.nkey, hash, &o, NULL) != NULL;
	}
	uint64_t value = 0;
	uint64_t cas = 0;
	enum cache_status st = cache_arith(w->ct, of.key, of.nkey, hash, &args,
					   &value, &cas);
	if (__builtin_expect(fresh, 0))
		mc_fwd_after_write(s, of.key, of.nkey, hash);

	char *p = mc_buf_reserve(out, META_LINE_MAX);
	if (p == NULL)
		return MC_LINE_CLOSE;
	char *start = p;

	switch (st) {
	case CACHE_OK:
		break;
	case CACHE_NON_NUMERIC:
		return out_err(out, "CLIENT_ERROR cannot increment or decrement non-numeric value");
	case CACHE_NOT_FOUND:
	case CACHE_EXISTS:
		if (st == CACHE_NOT_FOUND) {
			if (incr)
				MC_STAT_INC(w, incr_misses);
			else
				MC_STAT_INC(w, decr_misses);
		}
		memcpy(p, st == CACHE_NOT_FOUND ? "NF" : "EX", 2);
		p = put_opaque_key(p + 2, tok, ntok, 2, &of);
		if (p == NULL)
			return out_err(out, "CLIENT_ERROR opaque token too long");
		*p++ = '\r';
		*p++ = '\n';
		out->len += (size_t)(p - start);
		return MC_LINE_DONE;
	default:
		return out_err(out, "SERVER_ERROR out of memory");
	}

	if (incr)
		MC_STAT_INC(w, incr_hits);
	else
		MC_STAT_INC(w, decr_hits);

	char num[24];
	size_t nnum = (size_t)(mc_u64toa(value, num) - num);
	if (of.value) {
		memcpy(p, "VA ", 3);
		p = mc_u64toa(nnum, p + 3);
	} else {
		memcpy(p, "HD", 2);
		p += 2;
	}
	for (size_t i = 2; i < ntok - 1; i++) {
		const struct mc_tok *t = &tok[i];
		switch (t->p[0]) {
		case 'c':
			p = put_flag_u64(p, 'c', cas);
			break;
		case 't': {
			/* the TTL is not returned by cache_arith: look it up */
			struct cache_read_opts o = { .no_bump = true };
			const struct cache_item *it = cache_get(w->ct, of.key, of.nkey,
								hash, &o, NULL);
			p = put_ttl(p, it != NULL ? cache_item_exptime(it) : 0);
			break;
		}
		case 'O':
			if (t->len > META_MAX_OPAQUE)
				return out_err(out, "CLIENT_ERROR opaque token too long");
			*p++ = ' ';
			memcpy(p, t->p, t->len);
			p += t->len;
			break;
		case 'k':
			p = put_key(p, of.key, of.nkey, of.key_binary);
			break;
		default:
			break;
		}
	}
	if (of.no_reply && existed)
		return MC_LINE_DONE;
	*p++ = '\r';
	*p++ = '\n';
	if (of.value) {
		memcpy(p, num, nnum);
		p += nnum;
		*p++ = '\r';
		*p++ = '\n';
	}
	out->len += (size_t)(p - start);
	return MC_LINE_DONE;
}

/* ---- me (debug) ---------------------------------------------------------- */

static int meta_debug(struct mc_session *s, struct mc_tok *tok, size_t ntok,
		      struct mc_buf *out)
{
	struct mc_worker *w = s->w;
	char keybuf[META_KEYBUF];
	const char *key = tok[1].p;
	size_t nkey = tok[1].len;
	if (ntok < 3 || tok[1].len > CACHE_KEY_MAX)
		return out_err(out, bad_format);
	if (ntok >= 4 && MC_TOK_IS(&tok[2], "b")) {
		nkey = mc_b64_decode(tok[1].p, tok[1].len, keybuf);
		if (nkey == 0)
			return out_err(out, bad_format);
		key = keybuf;
	}
	MC_STAT_INC(w, cmd_meta);

	struct cache_read_opts o = { .no_bump = true };
	const struct cache_item *it = cache_get(w->ct, key, nkey,
						cache_hash(key, nkey), &o, NULL);
	if (it == NULL)
		return out_err(out, "EN");

	char *p = mc_buf_reserve(out, META_LINE_MAX);
	if (p == NULL)
		return MC_LINE_CLOSE;
	char *start = p;
	uint32_t now = cache_clock_now();
	uint32_t exptime = cache_item_exptime(it);
	uint32_t atime = cache_item_atime(it);

	/* memcached prints the key as stored, decoded even when it came in
	 * base64 ('b'). */
	memcpy(p, "ME ", 3);
	p += 3;
	memcpy(p, cache_item_key(it), it->nkey);
	p += it->nkey;
	/* exp= is memcached's (now - exptime): negative while alive. */
	memcpy(p, " exp=", 5);
	p += 5;
	if (exptime == 0) {
		memcpy(p, "-1", 2);
		p += 2;
	} else if (exptime > now) {
		*p++ = '-';
		p = mc_u64toa(exptime - now, p);
	} else {
		p = mc_u64toa(now - exptime, p);
	}
	memcpy(p, " la=", 4);
	p = mc_u64toa(now >= atime ? now - atime : 0, p + 4);
	memcpy(p, " cas=", 5);
	p = mc_u64toa(it->cas, p + 5);
	if (cache_item_state(it) & CACHE_ITEM_FETCHED) {
		memcpy(p, " fetch=yes", 10);
		p += 10;
	} else {
		memcpy(p, " fetch=no", 9);
		p += 9;
	}
	/* dpcache has no slab classes: one pseudo-class, 1 */
	memcpy(p, " cls=1 size=", 12);
	p = mc_u64toa(cache_item_footprint(it->nkey, it->nbytes), p + 12);
	*p++ = '\r';
	*p++ = '\n';
	out->len += (size_t)(p - start);
	return MC_LINE_DONE;
}

int mc_meta_process(struct mc_session *s, struct mc_tok *tok, size_t ntok,
		    struct mc_buf *out)
{
	switch (tok[0].p[1]) {
	case 'g':
		return meta_get(s, tok, ntok, out);
	case 's':
		return meta_set(s, tok, ntok, out);
	case 'd':
		return meta_delete(s, tok, ntok, out);
	case 'a':
		return meta_arith(s, tok, ntok, out);
	case 'n':
		return MC_OUT_LIT(out, "MN") == 0 ? MC_LINE_DONE : MC_LINE_CLOSE;
	case 'e':
		return meta_debug(s, tok, ntok, out);
	default:
		return MC_OUT_LIT(out, "ERROR") == 0 ? MC_LINE_DONE : MC_LINE_CLOSE;
	}
}
