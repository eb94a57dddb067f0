/*
 * dataplane/options.h - dpcached's command line, memcached-compatible.
 *
 * Every flag is declared once, in the table in options.c (name, short flag,
 * type, default, help); the same table drives parsing (getopt_long) and
 * --help. Flags of stock memcached that dpcached does not implement are in
 * the table too, so they get a clear "not supported" error instead of
 * "unknown option".
 *
 * Parsing never prints and never exits: it fills a struct dp_settings or
 * returns an error message, and main() decides what to print and the exit
 * code (2 for a bad command line). So the unit tests can drive it.
 */
#ifndef DPCACHE_DATAPLANE_OPTIONS_H
#define DPCACHE_DATAPLANE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define DP_ADDR_MAX 64          /* longest -l value, NUL included */
#define DP_USER_MAX 64          /* longest -u value, NUL included */

/* The settings of one dpcached process, after defaults and validation. */
struct dp_settings {
	unsigned tcp_port;          /* -p; 0 = no TCP */
	unsigned udp_port;          /* -U; 0 = no UDP */
	char listen_addr[DP_ADDR_MAX]; /* -l: one IPv4/IPv6 literal or host name */
	unsigned memory_mb;         /* -m, megabytes */
	unsigned max_conns;         /* -c */
	unsigned threads;           /* -t; default: online CPUs, at most MC_MAX_WORKERS */
	size_t item_size_max;       /* -I, bytes */
	unsigned backlog;           /* -b, listen() backlog */
	int verbose;                /* -v count */
	bool no_evict;              /* -M */
	bool enable_shutdown;       /* -A */
	char user[DP_USER_MAX];     /* -u: run as this user (root only); "" = stay */
	bool help;                  /* -h: print usage, exit 0 */
	bool version;               /* -V: print version, exit 0 */
};

/*
 * Parses argv into *s (defaults first, then the flags, then cross checks
 * such as -I against -m). Returns 0, or -EINVAL with a one-line message
 * (no trailing newline) in err[0..errlen). argv may be permuted (GNU
 * getopt). Not thread-safe: uses getopt's globals. Any thread.
 */
int dp_options_parse(struct dp_settings *s, int argc, char **argv,
		     char *err, size_t errlen);

/* Fills *s with the defaults alone. */
void dp_options_defaults(struct dp_settings *s);

/* Prints --help, generated from the option table. */
void dp_options_usage(FILE *f, const char *prog);

#endif /* DPCACHE_DATAPLANE_OPTIONS_H */
