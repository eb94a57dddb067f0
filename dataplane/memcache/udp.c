/*
 * dataplane/memcache/udp.c - memcached's UDP frame.
 *
 * Every datagram starts with an 8-byte frame header, four big-endian 16-bit
 * fields: request id, sequence number, total datagrams, reserved (0).
 *
 * Requests. One request per datagram, in one datagram: like memcached we
 * drop a request whose header says it spans several datagrams (total != 1)
 * and, stricter than memcached, one whose sequence number is not 0. The
 * payload must hold exactly one complete request: a text command line (plus
 * its data block for a storage command) or one binary packet. Anything
 * else (partial, several requests, trailing bytes) is dropped. Every drop is
 * counted in udp_dropped and answered with nothing.
 *
 * Replies. The reply is cut into datagrams of at most MC_UDP_MAX_PAYLOAD
 * bytes, header included, numbered 0..n-1, each carrying the request id and
 * the total n. A request with no reply (a quiet binary miss, noreply) sends
 * nothing (memcached sends an empty datagram there).
 *
 * Amplification bound. UDP source addresses can be forged, so a small
 * request must not buy a large reply aimed at someone else:
 *   - 'stats', 'flush_all' and 'shutdown' (and binary STAT, FLUSH, FLUSHQ)
 *     are refused over UDP with "SERVER_ERROR command not allowed over
 *     UDP\r\n" (binary: status NOT_SUPPORTED), which is short;
 *   - the reply to anything that is not a get-style read (get, gets, bget,
 *     gat, gats, mg; binary GET*, GAT*) may be at most MC_UDP_AMP_FACTOR times
 *     the request datagram's size; a larger one is dropped and counted;
 *   - get-style reads return what is stored, as memcached does: their size
 *     is bounded by item_size_max per key and 65535 datagrams per reply. UDP
 *     is off unless the operator enables it.
 *
 * Cost (the request path of a UDP get): the request is looked at here only
 * as far as the rules above need (its command word, and its line end; a
 * datagram starting "get " takes a short path), then parsed once by the
 * text or binary side; a single text line goes to mc_text_run_line with
 * the line end found here, so the text parser does not search for it
 * again. The reply is written straight into the caller's buffer (kept
 * between datagrams) and framed in place: a text reply is written past
 * room for its first header, so one that fits a datagram is never moved
 * (a binary one is moved up by its header). No allocation per datagram.
 *
 * Threads: the worker's thread, online; nothing is kept between datagrams.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "dataplane/memcache/mc_internal.h"

/* Largest reply to a non-read request, as a multiple of the request. */
#define MC_UDP_AMP_FACTOR 10u
#define MC_UDP_MAX_DATAGRAMS 65535u
#define MC_UDP_CHUNK (MC_UDP_MAX_PAYLOAD - MC_UDP_HEADER_SIZE)

static const char udp_refused_text[] = "SERVER_ERROR command not allowed over UDP\r\n";

/* What the request is, for the amplification rules. */
enum udp_kind {
	UDP_DROP = 0,     /* malformed: drop */
	UDP_READ,         /* get-style read: reply unbounded */
	UDP_OTHER,        /* reply bounded by MC_UDP_AMP_FACTOR */
	UDP_REFUSED,      /* not allowed over UDP */
};

/* ---- text requests ------------------------------------------------------- */

/* One space-separated token of a command line. */
struct udp_token {
	const char *p;
	size_t n;
};

/* Splits 'line' (without its line end) into up to 'max' tokens; runs of
 * spaces separate tokens as in memcached's tokenizer. Returns the count. */
static size_t udp_tokenize(const char *line, size_t len, struct udp_token *tok,
			   size_t max)
{
	size_t n = 0, i = 0;

	while (i < len && n < max) {
		while (i < len && line[i] == ' ')
			i++;
		if (i == len)
			break;
		size_t start = i;
		while (i < len && line[i] != ' ')
			i++;
		tok[n].p = line + start;
		tok[n].n = i - start;
		n++;
	}
	return n;
}

/* A decimal token as a byte count; false if it is not one (or absurd). */
static bool udp_token_size(const struct udp_token *t, size_t *out)
{
	size_t v = 0;

	if (t->n == 0 || t->n > 10)
		return false;
	for (size_t i = 0; i < t->n; i++) {
		if (t->p[i] < '0' || t->p[i] > '9')
			return false;
		v = v * 10 + (size_t)(t->p[i] - '0');
	}
	*out = v;
	return true;
}

/* What a text command word means here (the text parser re-reads it). */
enum udp_cmd {
	UDP_CMD_OTHER = 0,
	UDP_CMD_READ,             /* get, gets, bget, gat, gats, mg */
	UDP_CMD_STORE,            /* set, add, replace, append, prepend, cas */
	UDP_CMD_MS,               /* ms: its data length is token 2, not 4 */
	UDP_CMD_REFUSED,          /* stats, flush_all, shutdown */
};

#define UDP_WORD_IS(w, n, lit) \
	((n) == sizeof(lit) - 1 && memcmp((w), (lit), sizeof(lit) - 1) == 0)

/* Classifies a command word by its length first: a handful of fixed-size
 * compares instead of a strlen + memcmp per candidate. */
static enum udp_cmd udp_cmd_of(const char *w, size_t n)
{
	switch (n) {
	case 2:
		if (UDP_WORD_IS(w, n, "mg"))
			return UDP_CMD_READ;
		if (UDP_WORD_IS(w, n, "ms"))
			return UDP_CMD_MS;
		break;
	case 3:
		if (UDP_WORD_IS(w, n, "get") || UDP_WORD_IS(w, n, "gat"))
			return UDP_CMD_READ;
		if (UDP_WORD_IS(w, n, "set") || UDP_WORD_IS(w, n, "add") ||
		    UDP_WORD_IS(w, n, "cas"))
			return UDP_CMD_STORE;
		break;
	case 4:
		if (UDP_WORD_IS(w, n, "gets") || UDP_WORD_IS(w, n, "bget") ||
		    UDP_WORD_IS(w, n, "gats"))
			return UDP_CMD_READ;
		break;
	case 5:
		if (UDP_WORD_IS(w, n, "stats"))
			return UDP_CMD_REFUSED;
		break;
	case 6:
		if (UDP_WORD_IS(w, n, "append"))
			return UDP_CMD_STORE;
		break;
	case 7:
		if (UDP_WORD_IS(w, n, "replace") || UDP_WORD_IS(w, n, "prepend"))
			return UDP_CMD_STORE;
		break;
	case 8:
		if (UDP_WORD_IS(w, n, "shutdown"))
			return UDP_CMD_REFUSED;
		break;
	case 9:
		if (UDP_WORD_IS(w, n, "flush_all"))
			return UDP_CMD_REFUSED;
		break;
	}
	return UDP_CMD_OTHER;
}

/* The first token of a line, as udp_tokenize splits it: its length (0 when
 * the line has none) and, in *w, where it starts. */
static size_t udp_first_word(const char *line, size_t len, const char **w)
{
	size_t i = 0, start;

	while (i < len && line[i] == ' ')
		i++;
	start = i;
	while (i < len && line[i] != ' ')
		i++;
	*w = line + start;
	return i - start;
}

/*
 * Whether a line of a storage command's data block starts with a command
 * refused over UDP. A storage line the text parser rejects (bad flags, say)
 * is answered without swallowing its data block, as memcached does, so the
 * data is then run as commands: "set k x 0 11\r\nflush_all\r\n\r\n" must
 * not flush. A value that merely contains such a line is refused too; that
 * is the price of not parsing here what the text parser parses.
 */
static bool udp_data_refused(const char *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		const char *nl = memchr(p + off, '\n', len - off);
		size_t end = nl != NULL ? (size_t)(nl - p) : len;
		size_t n = end - off;
		if (n > 0 && p[off + n - 1] == '\r')
			n--;
		const char *w;
		size_t wn = udp_first_word(p + off, n, &w);
		if (wn > 0 && udp_cmd_of(w, wn) == UDP_CMD_REFUSED)
			return true;
		off = end + 1;
	}
	return false;
}

/* Length of a line of 'total' bytes, "\n" included, as mc_text_feed cuts
 * it: without the "\n", and without a "\r" before it unless that "\r" is
 * all the line holds. mc_text_run_line wants exactly this length. */
static size_t udp_line_len(const char *p, size_t total)
{
	size_t n = total - 1;

	if (n > 1 && p[n - 1] == '\r')
		n--;
	return n;
}

/*
 * Classifies a text payload and checks that it is exactly one request: a
 * command line, plus "<bytes>\r\n" of data for a storage command. The text
 * parser itself still validates the request; this only frames it, so it
 * looks at no more than it must: the command word, and for a storage
 * command (rare over UDP) the line's tokens up to its length and the lines
 * of its data block. A get is one memchr and one word.
 *
 * When the payload is that one line and nothing else, *one_line is set to
 * its length (udp_line_len) so that the text parser, run by
 * mc_text_run_line, need not search for the line end again; else it is
 * SIZE_MAX and the payload goes to mc_text_run_buffer.
 */
static enum udp_kind udp_text_kind(const char *p, size_t len, size_t *one_line)
{
	*one_line = SIZE_MAX;

	/*
	 * Short path for the common datagram, "get <keys>\r\n": the first
	 * word is "get" (a read) with no leading space, so it is one request
	 * iff its first "\n" is its last byte (the general path below reaches
	 * the same verdict: expect == line_total for a read).
	 */
	if (len > 4 && memcmp(p, "get ", 4) == 0) {
		if (memchr(p + 4, '\n', len - 4) != p + len - 1)
			return UDP_DROP;
		*one_line = udp_line_len(p, len);
		return UDP_READ;
	}

	const char *nl = memchr(p, '\n', len);
	if (nl == NULL)
		return UDP_DROP;
	size_t line_total = (size_t)(nl - p) + 1;
	/* mc_text_feed's rule; for a lone "\r\n" the first word is then
	 * "\r", another UDP_OTHER single line, as an empty line would be */
	size_t line_len = udp_line_len(p, line_total);

	const char *w;
	size_t wn = udp_first_word(p, line_len, &w);
	if (wn == 0) {                          /* no token: an empty line */
		if (line_total != len)
			return UDP_DROP;
		*one_line = line_len;
		return UDP_OTHER;
	}
	enum udp_cmd cmd = udp_cmd_of(w, wn);

	size_t expect = line_total;
	if (cmd == UDP_CMD_STORE || cmd == UDP_CMD_MS) {
		/* Where a storage command says its data length is. */
		size_t bytes_tok = cmd == UDP_CMD_MS ? 2 : 4;
		struct udp_token tok[6];
		size_t ntok = udp_tokenize(p, line_len, tok, 6);
		size_t nbytes;
		/* A malformed storage line is a single line: the text
		 * parser answers it with an error. */
		if (ntok > bytes_tok && udp_token_size(&tok[bytes_tok], &nbytes))
			expect += nbytes + 2;
	}
	if (expect != len)
		return UDP_DROP;

	/* Every line's first token, the first line's included, for refused
	 * commands: a data block is all that may follow the first line. */
	if (cmd == UDP_CMD_REFUSED ||
	    (len > line_total && udp_data_refused(p + line_total, len - line_total)))
		return UDP_REFUSED;
	if (len == line_total)
		*one_line = line_len;
	return cmd == UDP_CMD_READ ? UDP_READ : UDP_OTHER;
}

/* ---- binary requests ----------------------------------------------------- */

static enum udp_kind udp_binary_kind(const char *p, size_t len)
{
	const unsigned char *u = (const unsigned char *)p;

	if (len < MC_BIN_HEADER_SIZE)
		return UDP_DROP;
	uint32_t bodylen = ((uint32_t)u[8] << 24) | ((uint32_t)u[9] << 16) |
			   ((uint32_t)u[10] << 8) | u[11];
	if ((uint64_t)MC_BIN_HEADER_SIZE + bodylen != len)
		return UDP_DROP;

	switch (u[1]) {
	case MC_BIN_STAT:
	case MC_BIN_FLUSH:
	case MC_BIN_FLUSHQ:
		return UDP_REFUSED;
	case MC_BIN_GET:
	case MC_BIN_GETQ:
	case MC_BIN_GETK:
	case MC_BIN_GETKQ:
	case MC_BIN_GAT:
	case MC_BIN_GATQ:
	case MC_BIN_GATK:
	case MC_BIN_GATKQ:
		return UDP_READ;
	default:
		return UDP_OTHER;
	}
}

/* A short refusal in the request's own protocol. */
static int udp_refuse(const char *p, bool binary, struct mc_buf *reply)
{
	if (!binary)
		return mc_buf_append(reply, udp_refused_text, sizeof(udp_refused_text) - 1);

	static const char text[] = "Not supported over UDP";
	unsigned char h[MC_BIN_HEADER_SIZE];
	size_t n = sizeof(text) - 1;

	memset(h, 0, sizeof(h));
	h[0] = MC_BIN_RES_MAGIC;
	h[1] = (unsigned char)p[1];
	h[6] = (unsigned char)(MC_BIN_NOT_SUPPORTED >> 8);
	h[7] = (unsigned char)MC_BIN_NOT_SUPPORTED;
	h[11] = (unsigned char)n;
	memcpy(h + 12, p + 12, 4);            /* opaque, echoed as is */
	if (mc_buf_append(reply, h, sizeof(h)) < 0)
		return -ENOMEM;
	return mc_buf_append(reply, text, n);
}

/* ---- framing ------------------------------------------------------------- */

/*
 * Frames the reply that lies at out->data[start + room..len) in place,
 * where room is 0 or MC_UDP_HEADER_SIZE bytes already set aside at 'start'
 * for the first datagram's header: a reply that fits one datagram, the
 * common case, then needs no move at all. Datagram i is the header then
 * chunk i, so chunk i moves up by (i + 1) headers, less room. Moving the
 * last chunk first never overwrites bytes not yet moved (chunk i's new
 * place begins past chunk i - 1's old end, as room <= one header). Returns
 * the datagram count, 0 if there is nothing to frame or no memory (then
 * out->len is back to start, room given back).
 */
static unsigned udp_frame(uint16_t request_id, struct mc_buf *out, size_t start,
			  size_t room)
{
	size_t rlen = out->len - start - room;
	size_t n = (rlen + MC_UDP_CHUNK - 1) / MC_UDP_CHUNK;
	size_t grow = n * MC_UDP_HEADER_SIZE - room;
	unsigned char h[MC_UDP_HEADER_SIZE];

	if (n == 0) {
		out->len = start;
		return 0;
	}
	if (n == 1 && room == MC_UDP_HEADER_SIZE) {
		/* one datagram, already in place: just its header */
		unsigned char *d = (unsigned char *)out->data + start;
		d[0] = (unsigned char)(request_id >> 8);
		d[1] = (unsigned char)request_id;
		memset(d + 2, 0, 6);                /* seq 0, reserved 0 */
		d[5] = 1;                           /* total 1 */
		return 1;
	}
	/* mc_buf_reserve is out of line: call it only when 'out' must grow */
	if (out->cap - out->len < grow && mc_buf_reserve(out, grow) == NULL) {
		out->len = start;
		return 0;
	}
	h[0] = (unsigned char)(request_id >> 8);
	h[1] = (unsigned char)request_id;
	h[4] = (unsigned char)(n >> 8);
	h[5] = (unsigned char)n;
	h[6] = 0;
	h[7] = 0;
	char *base = out->data + start;
	for (size_t i = n; i-- > 0;) {
		size_t off = i * MC_UDP_CHUNK;
		size_t chunk = rlen - off < MC_UDP_CHUNK ? rlen - off : MC_UDP_CHUNK;
		char *d = base + i * MC_UDP_MAX_PAYLOAD;
		const char *src = base + room + off;

		if (src != d + MC_UDP_HEADER_SIZE)
			memmove(d + MC_UDP_HEADER_SIZE, src, chunk);
		h[2] = (unsigned char)(i >> 8);
		h[3] = (unsigned char)i;
		memcpy(d, h, MC_UDP_HEADER_SIZE);
	}
	out->len += grow;
	return (unsigned)n;
}

/*
 * The reply is built straight into 'out' and framed there, so a datagram
 * costs no allocation: 'out' is the caller's buffer, kept between datagrams.
 * One exception keeps the protocol's view exact: the binary side pauses
 * between requests once its output is past out_high_water, and a request
 * must see an empty buffer as it would alone; so a binary request appended
 * after other replies (the kernel backend batches datagrams) gets a
 * temporary buffer of its own, copied over afterwards.
 */
unsigned mc_udp_handle(struct mc_worker *w, const char *dgram, size_t len,
		       struct mc_buf *out)
{
	const unsigned char *u = (const unsigned char *)dgram;
	size_t before = out->len;
	struct mc_buf tmp = { 0 };          /* used by binary after others only */
	struct mc_buf *dst = out;
	unsigned ndgrams;
	int rc = -EINVAL;

	if (len <= MC_UDP_HEADER_SIZE)
		goto drop;
	uint16_t request_id = (uint16_t)((u[0] << 8) | u[1]);
	uint16_t seq = (uint16_t)((u[2] << 8) | u[3]);
	uint16_t total = (uint16_t)((u[4] << 8) | u[5]);
	if (seq != 0 || total != 1)
		goto drop;
	MC_STAT_ADD(w, bytes_read, len);

	const char *p = dgram + MC_UDP_HEADER_SIZE;
	size_t plen = len - MC_UDP_HEADER_SIZE;
	bool binary = u[MC_UDP_HEADER_SIZE] == MC_BIN_REQ_MAGIC;
	size_t one_line = SIZE_MAX;
	enum udp_kind kind = binary ? udp_binary_kind(p, plen)
				    : udp_text_kind(p, plen, &one_line);

	if (kind == UDP_DROP)
		goto drop;
	/*
	 * A text reply is written past room for its first datagram's header,
	 * so that udp_frame need not move it. Only text: the text side never
	 * pauses here (no_pause), so the bytes already in 'out' do not matter
	 * to it; the binary side's high-water pause does look at out->len.
	 */
	size_t room = 0;
	if (binary) {
		if (before > 0)
			dst = &tmp;
	} else {
		if (out->cap - out->len < MC_UDP_HEADER_SIZE &&
		    mc_buf_reserve(out, MC_UDP_HEADER_SIZE) == NULL)
			goto drop;
		room = MC_UDP_HEADER_SIZE;
		out->len += room;
	}
	if (kind == UDP_REFUSED)
		rc = udp_refuse(p, binary, dst);
	else if (binary)
		rc = mc_binary_run_buffer(w, p, plen, dst);
	else if (one_line != SIZE_MAX)          /* line end already found */
		rc = mc_text_run_line(w, p, one_line, dst);
	else
		rc = mc_text_run_buffer(w, p, plen, dst);
	if (rc < 0)
		goto drop;
	if (dst == &tmp && mc_buf_append(out, tmp.data, tmp.len) < 0)
		goto drop;
	size_t rlen = out->len - before - room;
	if (kind != UDP_READ && rlen > MC_UDP_AMP_FACTOR * len)
		goto drop;
	if (rlen > (size_t)MC_UDP_MAX_DATAGRAMS * MC_UDP_CHUNK)
		goto drop;

	ndgrams = udp_frame(request_id, out, before, room);
	if (ndgrams == 0 && rlen > 0)
		goto drop;                             /* no memory */
	MC_STAT_ADD(w, bytes_written, out->len - before);
	if (tmp.data != NULL)
		mc_buf_deinit(&tmp);
	return ndgrams;

drop:
	out->len = before;      /* nothing of a dropped request is sent */
	MC_STAT_INC(w, udp_dropped);
	if (tmp.data != NULL)
		mc_buf_deinit(&tmp);
	return 0;
}
