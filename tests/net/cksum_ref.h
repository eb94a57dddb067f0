/*
 * tests/net/cksum_ref.h - the obvious RFC 1071 internet checksum, byte by
 * byte, as the reference the stack's fast checksum is checked against
 * (tests/net/test_stack.c, tests/fuzz/fuzz_stack.c).
 */
#ifndef DPCACHE_TESTS_NET_CKSUM_REF_H
#define DPCACHE_TESTS_NET_CKSUM_REF_H

#include <stddef.h>
#include <stdint.h>

/* One's-complement sum of p[0..len) folded to 16 bits, not inverted, in
 * host order, starting from 'sum'. */
static inline uint16_t ref_sum(const uint8_t *p, size_t len, uint32_t sum)
{
	uint64_t s = sum;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

#endif /* DPCACHE_TESTS_NET_CKSUM_REF_H */
