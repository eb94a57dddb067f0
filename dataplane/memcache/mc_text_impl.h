/*
 * dataplane/memcache/mc_text_impl.h - helpers shared by text.c, meta.c and
 * stats.c (private to the text side).
 *
 * Tokens point into the connection's input buffer, which is const: the
 * parser never writes a NUL into it (unlike memcached), so every token
 * carries its length and number parsing copies the token first.
 *
 * Context: everything here runs on the session's worker thread, online
 * (urcu-qsbr reader); item pointers obtained here never outlive the call.
 */
#ifndef DPCACHE_MC_TEXT_IMPL_H
#define DPCACHE_MC_TEXT_IMPL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dataplane/memcache/mc_internal.h"

/* memcached's MAX_TOKENS: the last slot is the terminal token, whose 'p' is
 * NULL when the line was fully tokenized, else the unprocessed rest. */
#define MC_MAX_TOKENS 24

/* Lines without "\n" longer than this close the connection unless they are
 * a get/gets (memcached's try_read_command_ascii rule). */
#define MC_TEXT_LINE_MAX 2048
/* Even a multi-get line must fit in this many bytes (memcached has no bound;
 * ours keeps a client from making the transport buffer grow forever). */
#define MC_TEXT_GET_LINE_MAX (2u * 1024u * 1024u)

struct mc_tok {
	const char *p;
	size_t len;
};

/* What processing one line did. */
enum mc_line_rc {
	MC_LINE_DONE = 0,    /* line consumed (a store may now be in DATA phase) */
	MC_LINE_PAUSE,       /* multi-get paused; keep the line, call again */
	MC_LINE_CLOSE,       /* close the connection after 'out' */
	MC_LINE_WAIT,        /* cluster: a request is out; keep the line (a pull
	                        runs it again, a multi-get resumes at get_resume) */
	MC_LINE_WAIT_DONE,   /* cluster: a request is out; the line is done */
};

size_t mc_tokenize(const char *line, size_t len, struct mc_tok *tok,
		   size_t max_tokens);

static inline bool mc_tok_is(const struct mc_tok *t, const char *s, size_t n)
{
	return t->len == n && memcmp(t->p, s, n) == 0;
}
#define MC_TOK_IS(t, lit) mc_tok_is((t), (lit), sizeof(lit) - 1)

/* memcached's safe_strtoul / safe_strtol / safe_strtoull on a token. */
bool mc_parse_u32(const struct mc_tok *t, uint32_t *out);
bool mc_parse_i32(const struct mc_tok *t, int32_t *out);
bool mc_parse_u64(const struct mc_tok *t, uint64_t *out);
/* Same rules on a NUL-less span (meta flag values after the flag char). */
bool mc_parse_span_u32(const char *p, size_t n, uint32_t *out);
bool mc_parse_span_i32(const char *p, size_t n, int32_t *out);
bool mc_parse_span_u64(const char *p, size_t n, uint64_t *out);

/* Decimal digits of v at p; returns the end. p needs 20 bytes. */
static inline char *mc_u64toa(uint64_t v, char *p)
{
	char tmp[20];
	int n = 0;

	/* flags and small lengths are the common case */
	if (v < 10) {
		*p = (char)('0' + v);
		return p + 1;
	}
	if (v < 100) {
		p[0] = (char)('0' + v / 10);
		p[1] = (char)('0' + v % 10);
		return p + 2;
	}
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

/* mc_buf_reserve with the no-growth case inlined (the GET path). */
static inline char *mc_out_reserve(struct mc_buf *out, size_t n)
{
	if (out->data != NULL && out->cap - out->len >= n)
		return out->data + out->len;
	return mc_buf_reserve(out, n);
}

/* Appends s and "\r\n". Returns 0 or -ENOMEM. */
int mc_out_line(struct mc_buf *out, const char *s, size_t n);

/* Appends s[0..n) and CRLF. Inline so that for a literal, whose length is a
 * constant, the copy is a few stores rather than a memcpy call ("END" ends
 * every get); mc_out_line is the out-of-line copy. */
static inline int mc_out_lit(struct mc_buf *out, const char *s, size_t n)
{
	char *p = mc_out_reserve(out, n + 2);
	if (p == NULL)
		return -ENOMEM;
	memcpy(p, s, n);
	p[n] = '\r';
	p[n + 1] = '\n';
	out->len += n + 2;
	return 0;
}
#define MC_OUT_LIT(out, lit) mc_out_lit((out), (lit), sizeof(lit) - 1)

/* Is the connection's output over its high-water mark? */
static inline bool mc_out_full(const struct mc_session *s,
			       const struct mc_buf *out)
{
	return !s->text.no_pause &&
	       out->len >= s->w->server->cfg.out_high_water;
}

/* ---- stores shared by the classic commands and ms ---------------------- */

/*
 * Starts receiving a value: allocates the item and switches the session to
 * DATA phase, or, when the item cannot be had, writes the error (unless
 * quiet) and switches to SWALLOW for nbytes+2 bytes. The caller set
 * st->noreply, st->meta, st->store_mode, st->cas_compare, ... before.
 * Returns MC_LINE_DONE or MC_LINE_CLOSE (no memory for output).
 */
int mc_text_store_begin(struct mc_session *s, const char *key, size_t nkey,
			uint32_t flags, uint32_t exptime, size_t nbytes,
			struct mc_buf *out);

/* meta.c: the reply of a finished ms ("HD ...", "NS ...") from the stash. */
int mc_meta_store_reply(struct mc_session *s, enum cache_status st,
			uint64_t cas, struct mc_buf *out);

/* meta.c: base64 of n bytes at p (needs 4*((n+2)/3) bytes); returns the end. */
char *mc_b64_encode(const char *in, size_t n, char *p);
/* Decodes base64 (with padding) into out (room for n*3/4 bytes). Returns
 * the length, 0 if the input is not base64. */
size_t mc_b64_decode(const char *in, size_t n, char *out);

/* meta.c: runs one meta command line (mg ms md ma mn me). */
int mc_meta_process(struct mc_session *s, struct mc_tok *tok, size_t ntok,
		    struct mc_buf *out);

/* stats.c: 'stats ...' for the text protocol. */
int mc_text_stats(struct mc_session *s, struct mc_tok *tok, size_t ntok,
		  struct mc_buf *out);

#endif
