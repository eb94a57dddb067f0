/*
 * dataplane/dp_log.h - the backends' log lines, off the hot path.
 *
 * Each backend (kernel.c, dpdk.c) includes this once: it gets its own
 * dp_verbosity (set from -v at create time) and DP_LOG(level, fmt, ...),
 * which prints "dpcached: [DP_LOG_PREFIX]function: message" on stderr when
 * -v was given at least 'level' times (1: errors and warnings, 2:
 * connection events). Define DP_LOG_PREFIX (e.g. "dpdk: ") before the
 * include for a module prefix.
 */
#ifndef DPCACHE_DP_LOG_H
#define DPCACHE_DP_LOG_H

#include <stdarg.h>
#include <stdio.h>

#ifndef DP_LOG_PREFIX
#define DP_LOG_PREFIX ""
#endif

static int dp_verbosity;

static void dp_log(const char *func, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), unused));

static void dp_log(const char *func, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "dpcached: " DP_LOG_PREFIX "%s: %s\n", func, line);
}

#define DP_LOG(level, ...) do { \
	if (dp_verbosity >= (level)) \
		dp_log(__func__, __VA_ARGS__); \
} while (0)

#endif /* DPCACHE_DP_LOG_H */
