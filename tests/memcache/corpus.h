/*
 * tests/memcache/corpus.h - request/reply pairs recorded from memcached
 * 1.6.18 (see corpus_text.h, corpus_meta.h). Each pair is checked whole by
 * its protocol's test and split at every byte boundary by test_split.c.
 * An expected reply ending in "<CLOSED>" means the server closes after it.
 */
#ifndef DPCACHE_TESTS_MC_CORPUS_H
#define DPCACHE_TESTS_MC_CORPUS_H

#include <stddef.h>

#define S(lit) lit, sizeof(lit) - 1

struct mc_pair {
	const char *req;
	size_t nreq;
	const char *exp;
	size_t nexp;
};

#define MC_NPAIRS(a) (sizeof(a) / sizeof((a)[0]))

#endif
