/*
 * dataplane/memcache/buf.c - the growable output buffer of a connection.
 *
 * Growth doubles the capacity so appends are amortised O(1); consume()
 * moves the unsent tail to the front, which is cheap because the transport
 * drains the buffer often and it stays near out_high_water.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/memcache/mc.h"

#define MC_BUF_MIN_CAP 4096u

void mc_buf_init(struct mc_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void mc_buf_deinit(struct mc_buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	mc_buf_init(b);
}

char *mc_buf_reserve(struct mc_buf *b, size_t extra)
{
	if (extra > SIZE_MAX / 2 - b->len)
		return NULL;
	size_t need = b->len + extra;
	if (need <= b->cap && b->data != NULL)
		return b->data + b->len;

	size_t cap = b->cap ? b->cap : MC_BUF_MIN_CAP;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (p == NULL)
		return NULL;
	b->data = p;
	b->cap = cap;
	return b->data + b->len;
}

int mc_buf_append(struct mc_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	char *dst = mc_buf_reserve(b, n);
	if (dst == NULL)
		return -ENOMEM;
	if (n > 0)
		memcpy(dst, p, n);
	b->len += n;
	return 0;
}

void mc_buf_consume(struct mc_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}
