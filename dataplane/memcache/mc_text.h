/* dataplane/memcache/mc_text.h - text + meta parser state (owned by the text side). */
#ifndef DPCACHE_MC_TEXT_H
#define DPCACHE_MC_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mc_text_state {
	int placeholder; /* replaced by the text side */
};

#endif
