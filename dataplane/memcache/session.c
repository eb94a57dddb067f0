/*
 * dataplane/memcache/session.c - one TCP connection's protocol state.
 *
 * The protocol is chosen once, from the first byte: 0x80 is the binary
 * request magic, anything else is text (memcached does the same). The
 * session also keeps the bytes_read / bytes_written counters for both
 * protocols, so neither side has to.
 *
 * Cluster: while a forwarded request is out (s->fwd->waiting) the session
 * takes no input; its answer, stored by the forwarder's callback, is the
 * first thing the next feed writes, so replies stay in request order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/memcache/mc_internal.h"

#define MC_BINARY_REQ_MAGIC 0x80

struct mc_session *mc_session_create(struct mc_worker *w)
{
	struct mc_session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->w = w;
	s->proto = MC_PROTO_UNKNOWN;
	if (w->cluster != NULL) {
		s->fwd = mc_fwd_new();
		if (s->fwd == NULL) {
			free(s);
			return NULL;
		}
	}
	return s;
}

void mc_session_set_waker(struct mc_session *s, void (*wake)(void *arg),
			  void *arg)
{
	s->wake = wake;
	s->wake_arg = arg;
	/* a session created before the worker joined the cluster */
	if (s->fwd == NULL && s->w->cluster != NULL)
		s->fwd = mc_fwd_new();
}

void mc_session_destroy(struct mc_session **sp)
{
	if (sp == NULL || *sp == NULL)
		return;
	struct mc_session *s = *sp;
	mc_fwd_free(&s->fwd);    /* cancels a request still out */
	if (s->proto == MC_PROTO_TEXT)
		mc_text_reset(s);
	else if (s->proto == MC_PROTO_BINARY)
		mc_binary_reset(s);
	free(s);
	*sp = NULL;
}

int mc_session_feed(struct mc_session *s, const char *in, size_t len,
		    size_t *consumed, struct mc_buf *out)
{
	size_t out_before = out->len;
	int rc;

	*consumed = 0;
	if (__builtin_expect(s->fwd != NULL, 0) && (s->fwd->waiting || s->fwd->ready)) {
		struct mc_fwd *f = s->fwd;
		if (f->waiting)
			return MC_FEED_WAIT;
		if (f->reply.len > 0 &&
		    mc_buf_append(out, f->reply.data, f->reply.len) != 0)
			return MC_FEED_CLOSE;
		f->reply.len = 0;
		f->ready = false;
		/* One big forwarded value must not stay allocated (outside -m)
		 * for the life of an idle connection. */
		if (f->reply.cap > MC_FWD_BUF_KEEP) {
			mc_buf_deinit(&f->reply);
			mc_buf_init(&f->reply);
		}
		MC_STAT_ADD(s->w, bytes_written, out->len - out_before);
		out_before = out->len;
	}
	if (s->proto == MC_PROTO_UNKNOWN) {
		if (len == 0)
			return MC_FEED_MORE;
		s->proto = (unsigned char)in[0] == MC_BINARY_REQ_MAGIC ?
				   MC_PROTO_BINARY : MC_PROTO_TEXT;
	}
	if (s->proto == MC_PROTO_TEXT)
		rc = mc_text_feed(s, in, len, consumed, out);
	else
		rc = mc_binary_feed(s, in, len, consumed, out);

	MC_STAT_ADD(s->w, bytes_read, *consumed);
	if (out->len > out_before)
		MC_STAT_ADD(s->w, bytes_written, out->len - out_before);
	return rc;
}
