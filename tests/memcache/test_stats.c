/*
 * tests/memcache/test_stats.c - 'stats' and its groups: memcached's names
 * and order, counters, the transport's extras, reset.
 */
#include <errno.h>

#include "tests/memcache/mc_test_util.h"

#include "dataplane/memcache/mc_internal.h"

static int setup(void **state)
{
	cache_clock_set_manual(1700000000u);
	return mc_fixture_setup(state);
}

static int teardown(void **state)
{
	mc_fixture_teardown(state);
	cache_clock_set_real();
	return 0;
}

/* Value of "STAT name " in a stats reply, or NULL. */
static const char *stat_value(const char *r, const char *name, char *buf, size_t cap)
{
	char key[128];
	snprintf(key, sizeof(key), "STAT %s ", name);
	const char *p = strstr(r, key);
	if (p == NULL)
		return NULL;
	p += strlen(key);
	size_t n = strcspn(p, "\r");
	if (n >= cap)
		n = cap - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

static char *stats(struct mc_fixture *f, const char *req)
{
	mc_push(f, req, strlen(req));
	return mc_take(f, NULL);
}

static void test_general_order_and_counters(void **state)
{
	struct mc_fixture *f = *state;
	char v[64];

	mc_expect(f, "set a 0 0 1\r\n1\r\nget a b\r\nincr a 1\r\ndecr x 1\r\ndelete a\r\n"
		     "touch a 1\r\nflush_all\r\nmn\r\n",
		  "STORED\r\nVALUE a 0 1\r\n1\r\nEND\r\n2\r\nNOT_FOUND\r\nDELETED\r\n"
		  "NOT_FOUND\r\nOK\r\nMN\r\n");
	mc_server_conn_opened(f->server);
	mc_server_conn_rejected(f->server);
	char *r = stats(f, "stats\r\n");

	/* memcached's order for the names both have */
	const char *order[] = {
		"pid", "uptime", "time", "version", "pointer_size", "rusage_user",
		"rusage_system", "max_connections", "curr_connections",
		"total_connections", "rejected_connections", "connection_structures",
		"cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "cmd_meta",
		"get_hits", "get_misses", "get_expired", "get_flushed",
		"delete_misses", "delete_hits", "incr_misses", "incr_hits",
		"decr_misses", "decr_hits", "cas_misses", "cas_hits", "cas_badval",
		"touch_hits", "touch_misses", "store_too_large", "store_no_memory",
		"auth_cmds", "auth_errors", "bytes_read", "bytes_written",
		"limit_maxbytes", "threads", "bytes", "curr_items", "total_items",
		"expired_unfetched", "evicted_unfetched", "evictions", "reclaimed",
	};
	const char *last = r;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		char key[64];
		snprintf(key, sizeof(key), "STAT %s ", order[i]);
		const char *p = strstr(r, key);
		if (p == NULL || p < last)
			fail_msg("stat %s missing or out of order", order[i]);
		last = p;
	}
	assert_string_equal(stat_value(r, "time", v, sizeof(v)), "1700000000");
	assert_string_equal(stat_value(r, "pointer_size", v, sizeof(v)), "64");
	assert_string_equal(stat_value(r, "cmd_get", v, sizeof(v)), "2");
	assert_string_equal(stat_value(r, "get_hits", v, sizeof(v)), "1");
	assert_string_equal(stat_value(r, "get_misses", v, sizeof(v)), "1");
	assert_string_equal(stat_value(r, "cmd_set", v, sizeof(v)), "1");
	assert_string_equal(stat_value(r, "cmd_flush", v, sizeof(v)), "1");
	assert_string_equal(stat_value(r, "cmd_touch", v, sizeof(v)), "1");
	assert_string_equal(stat_value(r, "touch_misses", v, sizeof(v)), "1");
	assert_string_equal(stat_value(r, "incr_hits", v, sizeof(v)), "1");
	assert_string_equal(stat_value(r, "decr_misses", v, sizeof(v)), "1");
	assert_string_equal(stat_value(r, "delete_hits", v, sizeof(v)), "1");
	assert_string_equal(stat_value(r, "curr_connections", v, sizeof(v)), "1");
	assert_string_equal(stat_value(r, "rejected_connections", v, sizeof(v)), "1");
	assert_string_equal(stat_value(r, "limit_maxbytes", v, sizeof(v)), "67108864");
	size_t n = strlen(r);
	assert_true(n > 5 && strcmp(r + n - 5, "END\r\n") == 0);
	assert_true(strncmp(r, "STAT pid ", 9) == 0);
	free(r);

	mc_expect(f, "stats reset\r\n", "RESET\r\n");
	r = stats(f, "stats\r\n");
	assert_string_equal(stat_value(r, "cmd_get", v, sizeof(v)), "0");
	assert_string_equal(stat_value(r, "total_connections", v, sizeof(v)), "0");
	free(r);
}

static int transport_stats(void *arg, const char *group, mc_stat_fn emit, void *emit_arg)
{
	(void)arg;
	if (group == NULL) {
		emit(emit_arg, "dp_rx_packets", "42");
		return 0;
	}
	if (strcmp(group, "settings") == 0) {
		emit(emit_arg, "tcpport", "11211");
		return 0;
	}
	if (strcmp(group, "conns") == 0) {
		emit(emit_arg, "7:state", "conn_parse_cmd");
		return 0;
	}
	return -ENOENT;
}

static void test_groups(void **state)
{
	struct mc_fixture *f = *state;
	f->server->cfg.transport_stats = transport_stats;
	char v[64];

	char *r = stats(f, "stats settings\r\n");
	assert_string_equal(stat_value(r, "maxbytes", v, sizeof(v)), "67108864");
	assert_string_equal(stat_value(r, "item_size_max", v, sizeof(v)), "1048576");
	assert_string_equal(stat_value(r, "evictions", v, sizeof(v)), "on");
	assert_string_equal(stat_value(r, "tcpport", v, sizeof(v)), "11211");
	free(r);

	r = stats(f, "stats\r\n");
	assert_string_equal(stat_value(r, "dp_rx_packets", v, sizeof(v)), "42");
	free(r);

	mc_expect(f, "stats conns\r\n", "STAT 7:state conn_parse_cmd\r\nEND\r\n");
	mc_expect(f, "stats items\r\n", "END\r\n");
	mc_expect(f, "stats sizes\r\n", "STAT sizes_status disabled\r\nEND\r\n");
	mc_expect(f, "stats bogus\r\n", "ERROR\r\n");
	mc_expect(f, "set a 0 0 1\r\n1\r\n", "STORED\r\n");
	r = stats(f, "stats items\r\n");
	assert_string_equal(stat_value(r, "items:1:number", v, sizeof(v)), "1");
	free(r);
	r = stats(f, "stats slabs\r\n");
	assert_string_equal(stat_value(r, "active_slabs", v, sizeof(v)), "1");
	free(r);
}

struct collect {
	int n;
	bool saw_version;
};

static void collect(void *arg, const char *name, const char *value)
{
	struct collect *c = arg;
	c->n++;
	if (strcmp(name, "version") == 0 && strlen(value) > 0)
		c->saw_version = true;
}

/* mc_stats_emit is what the binary STAT opcode uses. */
static void test_emit_api(void **state)
{
	struct mc_fixture *f = *state;
	struct collect c = { 0, false };
	assert_int_equal(mc_stats_emit(f->worker, NULL, collect, &c), 0);
	assert_true(c.n > 40);
	assert_true(c.saw_version);
	assert_int_equal(mc_stats_emit(f->worker, "nope", collect, &c), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_general_order_and_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_groups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emit_api, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
