/*
 * dataplane/memcache/mc_text.h - text + meta parser state (owned by the text
 * side). Lives inside struct mc_session's union; one per connection.
 *
 * The parser is a small state machine over the byte stream:
 *   LINE    - waiting for a complete command line ("...\n").
 *   DATA    - a storage command's value is arriving; bytes are copied straight
 *             into 'item' (allocated when the command line was parsed), so the
 *             transport never has to hold a whole value.
 *   SWALLOW - a rejected store: drop 'left' bytes (<bytes>+2) so the
 *             connection stays in sync, as memcached does.
 */
#ifndef DPCACHE_MC_TEXT_H
#define DPCACHE_MC_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cache_item;

enum mc_text_phase {
	MC_TEXT_LINE = 0,
	MC_TEXT_DATA,
	MC_TEXT_SWALLOW,
};

/* Room for the reply flags of a meta set (ms) that can only be written once
 * the value has arrived: opaque (<= 32 bytes), k, c and b markers. */
#define MC_TEXT_META_STASH 48

/*
 * Field order matters: a transient session (mc_text_run_buffer, one per UDP
 * datagram) clears only the fields before 'stash_len'. The arrays after it
 * are written by a meta set before anything reads them, and read only up to
 * their lengths, which the same command sets.
 */
struct mc_text_state {
	uint8_t phase;              /* enum mc_text_phase */
	bool noreply;               /* classic 'noreply' / meta 'q' of the pending store */
	bool meta;                  /* pending store is an 'ms' (meta reply form) */
	bool meta_key_binary;       /* ms 'b': key was base64 */
	uint8_t store_mode;         /* enum cache_store_mode */
	bool invalidate;            /* ms I */
	bool vivify;                /* ms N (append/prepend vivify) */
	bool no_pause;              /* never pause on high water (UDP: one reply per datagram) */
	struct cache_item *item;    /* value being received (DATA), owned */
	uint64_t hash;              /* of item's key */
	uint64_t cas_compare;
	size_t data_off;            /* value bytes already copied */
	size_t left;                /* DATA: value+CRLF bytes still due; SWALLOW: bytes to drop */
	size_t get_resume;          /* multi-get paused: offset in the line of the next key, 0 = none */
	bool fwd_store;             /* cluster: the value goes to the owner (fwd->req_buf) */
	bool fresh_after;           /* cluster: a moving-in key, mark it FRESH once stored */
	bool migrated;              /* pending ms is a migration stream add (cluster) */
	bool get_abort;             /* cluster: a forwarded get key failed: drop the rest of the line */
	char crlf[2];               /* the two bytes after the value */
	/* ---- set by a meta set before use (not cleared per datagram) ---- */
	uint8_t stash_len;
	uint8_t stash_nkey;         /* ms 'k': the key, echoed after the store */
	char stash[MC_TEXT_META_STASH]; /* ms reply flags, in request order */
	char stash_key[250];        /* CACHE_KEY_MAX */
};

#endif
