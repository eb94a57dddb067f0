/* dataplane/memcache/mc_binary.h - binary protocol parser state (owned by the binary side). */
#ifndef DPCACHE_MC_BINARY_H
#define DPCACHE_MC_BINARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mc_bin_state {
	int placeholder; /* replaced by the binary side */
};

#endif
