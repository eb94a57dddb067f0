/*
 * bench_proto.c - request composer and reply checker.
 *
 * Grammar facts used here (memcached doc/protocol.txt, 1.6):
 *  text:   "get <key>" -> "VALUE <key> <flags> <bytes>[ <cas>]" data "END"
 *          "set <key> <flags> <exptime> <bytes>" data -> "STORED"
 *  meta:   "mg <key> v" -> "VA <bytes> <flags>*" data | "EN"
 *          "ms <key> <bytes>" data -> "HD" | "NS"
 *  binary: 24-byte header, request magic 0x80, response magic 0x81,
 *          GET 0x00 (response extras: 4-byte flags), SET 0x01 (request
 *          extras: flags + exptime), status 0 ok, 1 not found.
 * Any line may also be ERROR, CLIENT_ERROR ... or SERVER_ERROR ...
 */
#include "bench_proto.h"

#include <errno.h>
#include <string.h>

#define LINE_MAX_LEN 512 /* a reply line longer than this is malformed */
#define BIN_HDR 24

static const char *const proto_names[] = {
	[BENCH_PROTO_TEXT] = "text",
	[BENCH_PROTO_META] = "meta",
	[BENCH_PROTO_BINARY] = "binary",
};

const char *bench_proto_name(enum bench_proto p)
{
	return proto_names[p];
}

int bench_proto_parse(const char *name, enum bench_proto *out)
{
	for (unsigned i = 0; i < sizeof(proto_names) / sizeof(proto_names[0]); i++) {
		if (strcmp(name, proto_names[i]) == 0) {
			*out = (enum bench_proto)i;
			return 0;
		}
	}
	return -EINVAL;
}

int bench_key_fits(uint64_t max_idx, size_t key_size)
{
	size_t digits = 1;

	while (max_idx >= 10) {
		max_idx /= 10;
		digits++;
	}
	return key_size >= digits + 1 && key_size <= BENCH_KEY_MAX;
}

void bench_key_name(uint64_t idx, size_t key_size, char *out)
{
	out[0] = 'k';
	for (size_t i = key_size - 1; i >= 1; i--) {
		out[i] = (char)('0' + idx % 10);
		idx /= 10;
	}
}

size_t bench_req_max_len(size_t key_size, size_t value_size)
{
	/* "set " key " 0 0 " 20 digits "\r\n" value "\r\n", with slack;
	 * the binary form is shorter. */
	return 64 + key_size + value_size;
}

/* Write n in decimal; returns the digits written. */
static size_t put_u64(char *out, uint64_t n)
{
	char tmp[24];
	size_t len = 0;

	do {
		tmp[len++] = (char)('0' + n % 10);
		n /= 10;
	} while (n != 0);
	for (size_t i = 0; i < len; i++)
		out[i] = tmp[len - 1 - i];
	return len;
}

static size_t put_str(char *out, const char *s)
{
	size_t len = strlen(s);

	memcpy(out, s, len);
	return len;
}

static void put_be16(char *out, uint16_t v)
{
	out[0] = (char)(v >> 8);
	out[1] = (char)v;
}

static void put_be32(char *out, uint32_t v)
{
	out[0] = (char)(v >> 24);
	out[1] = (char)(v >> 16);
	out[2] = (char)(v >> 8);
	out[3] = (char)v;
}

static uint16_t get_be16(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint16_t)((u[0] << 8) | u[1]);
}

static uint32_t get_be32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) |
	       ((uint32_t)u[2] << 8) | u[3];
}

static size_t compose_text(const struct bench_req *r, size_t key_size,
			   size_t value_size, char *out, int meta)
{
	size_t n = 0;

	if (r->op == BENCH_OP_GET)
		n += put_str(out, meta ? "mg " : "get ");
	else
		n += put_str(out, meta ? "ms " : "set ");
	bench_key_name(r->key, key_size, out + n);
	n += key_size;
	if (r->op == BENCH_OP_GET) {
		n += put_str(out + n, meta ? " v\r\n" : "\r\n");
		return n;
	}
	n += put_str(out + n, meta ? " " : " 0 0 ");
	n += put_u64(out + n, value_size);
	n += put_str(out + n, "\r\n");
	memset(out + n, bench_value_byte(r->key), value_size);
	n += value_size;
	n += put_str(out + n, "\r\n");
	return n;
}

static size_t compose_binary(const struct bench_req *r, size_t key_size,
			     size_t value_size, char *out)
{
	int set = r->op == BENCH_OP_SET;
	size_t extras = set ? 8 : 0;
	size_t body = extras + key_size + (set ? value_size : 0);

	memset(out, 0, BIN_HDR);
	out[0] = (char)0x80;
	out[1] = set ? 0x01 : 0x00;
	put_be16(out + 2, (uint16_t)key_size);
	out[4] = (char)extras;
	put_be32(out + 8, (uint32_t)body);
	put_be32(out + 12, r->opaque);
	/* extras for SET: flags 0, exptime 0, already zero */
	memset(out + BIN_HDR, 0, extras);
	bench_key_name(r->key, key_size, out + BIN_HDR + extras);
	if (set)
		memset(out + BIN_HDR + extras + key_size,
		       bench_value_byte(r->key), value_size);
	return BIN_HDR + body;
}

size_t bench_compose(enum bench_proto p, const struct bench_req *r,
		     size_t key_size, size_t value_size, char *out)
{
	switch (p) {
	case BENCH_PROTO_TEXT:
		return compose_text(r, key_size, value_size, out, 0);
	case BENCH_PROTO_META:
		return compose_text(r, key_size, value_size, out, 1);
	case BENCH_PROTO_BINARY:
		return compose_binary(r, key_size, value_size, out);
	}
	return 0;
}

/* True when every byte of a value belongs to key idx. */
static int value_ok(const char *data, size_t len, uint64_t idx)
{
	char want = bench_value_byte(idx);

	for (size_t i = 0; i < len; i++) {
		if (data[i] != want)
			return 0;
	}
	return 1;
}

/* Length of the first line including "\r\n"; 0 if it has not arrived;
 * -1 if it is too long or not ended by "\r\n". */
static ssize_t line_len(const char *buf, size_t len)
{
	size_t scan = len < LINE_MAX_LEN ? len : LINE_MAX_LEN;
	const char *nl = memchr(buf, '\n', scan);

	if (nl == NULL)
		return len < LINE_MAX_LEN ? 0 : -1;
	if (nl == buf || nl[-1] != '\r')
		return -1;
	return nl - buf + 1;
}

static int starts_with(const char *line, size_t len, const char *word)
{
	size_t wl = strlen(word);

	return len >= wl && memcmp(line, word, wl) == 0;
}

/* Parse a decimal number at *p (advancing it); -1 if there is none. */
static int parse_u64(const char **p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;

	if (s >= end || *s < '0' || *s > '9')
		return -1;
	while (s < end && *s >= '0' && *s <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
	}
	*p = s;
	*out = v;
	return 0;
}

/* A data block of n bytes, then "\r\n", starting at buf[off]; then, for
 * text, "END\r\n". Returns total bytes, 0 if incomplete, -1 if bad. */
static ssize_t data_block(const struct bench_req *r, const char *buf,
			  size_t len, size_t off, uint64_t n, const char *tail)
{
	size_t tail_len = strlen(tail);
	size_t need;

	if (n > (1u << 30))
		return -1;
	need = off + n + 2 + tail_len;
	if (len < need)
		return 0;
	if (buf[off + n] != '\r' || buf[off + n + 1] != '\n')
		return -1;
	if (memcmp(buf + off + n + 2, tail, tail_len) != 0)
		return -1;
	if (!value_ok(buf + off, n, r->key))
		return -1;
	return (ssize_t)need;
}

/* Error lines are shared by text and meta. Returns 1 if line is one. */
static int is_error_line(const char *line, size_t ll)
{
	return starts_with(line, ll, "ERROR") ||
	       starts_with(line, ll, "CLIENT_ERROR") ||
	       starts_with(line, ll, "SERVER_ERROR");
}

static ssize_t parse_text(const struct bench_req *r, size_t key_size,
			  const char *buf, size_t len, enum bench_result *res)
{
	ssize_t ll = line_len(buf, len);
	char key[BENCH_KEY_MAX];
	const char *p, *end;
	uint64_t flags = 0, bytes = 0;

	if (ll <= 0)
		return ll;
	end = buf + ll - 2;
	if (is_error_line(buf, (size_t)ll)) {
		*res = BENCH_R_SERVER_ERROR;
		return ll;
	}
	if (r->op == BENCH_OP_SET) {
		if (ll == 8 && memcmp(buf, "STORED\r\n", 8) == 0)
			*res = BENCH_R_STORED;
		else if (ll == 12 && memcmp(buf, "NOT_STORED\r\n", 12) == 0)
			*res = BENCH_R_NOT_STORED;
		else
			return -1;
		return ll;
	}
	if (ll == 5 && memcmp(buf, "END\r\n", 5) == 0) {
		*res = BENCH_R_MISS;
		return ll;
	}
	if (!starts_with(buf, (size_t)ll, "VALUE "))
		return -1;
	/* "VALUE <key> <flags> <bytes>[ <cas>]" */
	p = buf + 6;
	bench_key_name(r->key, key_size, key);
	if (end - p < (ptrdiff_t)key_size + 1 || memcmp(p, key, key_size) != 0 ||
	    p[key_size] != ' ')
		return -1;
	p += key_size + 1;
	if (parse_u64(&p, end, &flags) < 0 || p >= end || *p++ != ' ' ||
	    parse_u64(&p, end, &bytes) < 0)
		return -1;
	*res = BENCH_R_HIT;
	return data_block(r, buf, len, (size_t)ll, bytes, "END\r\n");
}

static ssize_t parse_meta(const struct bench_req *r, const char *buf,
			  size_t len, enum bench_result *res)
{
	ssize_t ll = line_len(buf, len);
	const char *p, *end;
	uint64_t bytes = 0;

	if (ll <= 0)
		return ll;
	end = buf + ll - 2;
	if (is_error_line(buf, (size_t)ll)) {
		*res = BENCH_R_SERVER_ERROR;
		return ll;
	}
	if (r->op == BENCH_OP_SET) {
		if (starts_with(buf, (size_t)ll, "HD") && (ll == 4 || buf[2] == ' '))
			*res = BENCH_R_STORED;
		else if (starts_with(buf, (size_t)ll, "NS") && (ll == 4 || buf[2] == ' '))
			*res = BENCH_R_NOT_STORED;
		else
			return -1;
		return ll;
	}
	if (starts_with(buf, (size_t)ll, "EN") && (ll == 4 || buf[2] == ' ')) {
		*res = BENCH_R_MISS;
		return ll;
	}
	if (!starts_with(buf, (size_t)ll, "VA "))
		return -1;
	p = buf + 3;
	if (parse_u64(&p, end, &bytes) < 0 || (p < end && *p != ' '))
		return -1;
	*res = BENCH_R_HIT;
	return data_block(r, buf, len, (size_t)ll, bytes, "");
}

static ssize_t parse_binary(const struct bench_req *r, const char *buf,
			    size_t len, enum bench_result *res)
{
	uint32_t body, value_len;
	uint16_t status, key_len;
	uint8_t extras;

	if (len < BIN_HDR)
		return 0;
	if ((unsigned char)buf[0] != 0x81)
		return -1;
	key_len = get_be16(buf + 2);
	extras = (uint8_t)buf[4];
	status = get_be16(buf + 6);
	body = get_be32(buf + 8);
	if (body > (1u << 30) || (uint32_t)key_len + extras > body)
		return -1;
	if ((unsigned char)buf[1] != (r->op == BENCH_OP_SET ? 0x01 : 0x00) ||
	    get_be32(buf + 12) != r->opaque)
		return -1;
	if (len < BIN_HDR + (size_t)body)
		return 0;
	value_len = body - key_len - extras;
	if (status == 0) {
		if (r->op == BENCH_OP_SET) {
			*res = BENCH_R_STORED;
		} else {
			if (extras != 4 || key_len != 0)
				return -1;
			if (!value_ok(buf + BIN_HDR + extras, value_len, r->key))
				return -1;
			*res = BENCH_R_HIT;
		}
	} else if (status == 1 && r->op == BENCH_OP_GET) {
		*res = BENCH_R_MISS;
	} else if (status == 5 && r->op == BENCH_OP_SET) {
		*res = BENCH_R_NOT_STORED;
	} else {
		*res = BENCH_R_SERVER_ERROR; /* e.g. 0x82 out of memory */
	}
	return BIN_HDR + (ssize_t)body;
}

ssize_t bench_parse(enum bench_proto p, const struct bench_req *r,
		    size_t key_size, const char *buf, size_t len,
		    enum bench_result *res)
{
	switch (p) {
	case BENCH_PROTO_TEXT:
		return parse_text(r, key_size, buf, len, res);
	case BENCH_PROTO_META:
		return parse_meta(r, buf, len, res);
	case BENCH_PROTO_BINARY:
		return parse_binary(r, buf, len, res);
	}
	return -1;
}
