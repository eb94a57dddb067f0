/*
 * dataplane/memcache/session.c - one TCP connection's protocol state.
 *
 * The protocol is chosen once, from the first byte: 0x80 is the binary
 * request magic, anything else is text (memcached does the same). The
 * session also keeps the bytes_read / bytes_written counters for both
 * protocols, so neither side has to.
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
	return s;
}

void mc_session_destroy(struct mc_session **sp)
{
	if (sp == NULL || *sp == NULL)
		return;
	struct mc_session *s = *sp;
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
