/*
 * tests/replication/ring_owner.c - prints which server our ketama ring gives
 * each key, for comparison with a real libmemcached client
 * (tests/cluster/test_ketama_compat.py).
 *
 *   ring_owner HOST:PORT[:WEIGHT] ... < keys
 *
 * Reads one key per line on stdin (the trailing "\n" or "\r\n" is not part
 * of the key) and prints "<key> <index>" per line, index being the position
 * of the owning server in the argument list (-1 when no server has points).
 * Exit status 2 on a bad argument.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replication/ring.h"

/* Splits off a trailing ":WEIGHT" when the spec has host, port and weight. */
static int parse_spec(char *spec, struct ring_server *s)
{
	char *last = strrchr(spec, ':');
	char *first = strchr(spec, ':');
	char *end;
	unsigned long w;

	s->addr = spec;
	s->weight = 1;
	if (spec[0] == '[') {
		/* [v6]:port or [v6]:port:weight */
		char *close = strchr(spec, ']');

		if (close == NULL)
			return -1;
		first = strchr(close, ':');
	}
	if (first == NULL || first == last)
		return 0;
	w = strtoul(last + 1, &end, 10);
	if (*end != '\0' || last[1] == '\0' || w == 0 || w > 1000000)
		return -1;
	*last = '\0';
	s->weight = (uint32_t)w;
	return 0;
}

int main(int argc, char **argv)
{
	struct ring_server *servers;
	struct ring *r;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: %s HOST:PORT[:WEIGHT] ... < keys\n",
			argv[0]);
		return 2;
	}
	servers = calloc((size_t)argc, sizeof(*servers));
	if (servers == NULL)
		return 1;
	for (i = 1; i < argc; i++) {
		if (parse_spec(argv[i], &servers[i - 1]) != 0) {
			fprintf(stderr, "bad server spec: %s\n", argv[i]);
			return 2;
		}
	}
	r = ring_build(servers, (unsigned)(argc - 1));
	if (r == NULL) {
		fprintf(stderr, "cannot build the ring (bad address?)\n");
		return 2;
	}
	while ((len = getline(&line, &cap, stdin)) >= 0) {
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		printf("%s %d\n", line,
		       ring_lookup(r, ring_hash(line, (size_t)len)));
	}
	free(line);
	ring_free(r);
	free(servers);
	return fflush(stdout) == 0 ? 0 : 1;
}
