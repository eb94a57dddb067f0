/*
 * tests/control/test_metrics.c - the admin endpoint over a real socket:
 * the Prometheus page (naming, labels, escaping, one TYPE per family, every
 * family contiguous), /healthz, 404 and 405, bad addresses, and scrapes
 * from many threads at once (collect never runs twice at the same time).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "control/metrics.h"

struct collector {
	atomic_int calls;
	atomic_int inside;
	atomic_int overlaps;
	bool slow;            /* sleep inside collect, to provoke overlaps */
};

static void collect(void *arg, metrics_emit_fn emit, void *ctx)
{
	struct collector *c = arg;

	if (atomic_fetch_add(&c->inside, 1) != 0)
		atomic_fetch_add(&c->overlaps, 1);
	atomic_fetch_add(&c->calls, 1);
	emit(ctx, "stats", "get_hits", "12");
	emit(ctx, "stats", "curr_items", "7");
	emit(ctx, "stats", "cmd_get", "30");
	emit(ctx, "stats", "rusage_user", "0.123456");
	emit(ctx, "stats", "version", "1.6.18-dpcache-0.1.0");
	emit(ctx, "stats", "odd\"name\\x", "quote \" back \\ nl \n end");
	emit(ctx, "dataplane", "core0:rx_frames", "5");
	emit(ctx, "dataplane", "core1:rx_frames", "6");
	emit(ctx, "dataplane", "total:rx_frames", "11");
	emit(ctx, "dataplane", "port0:ipackets", "9");
	emit(ctx, "cluster", "peer:n2:forwarded", "4");
	emit(ctx, "cluster", "peer:n\"3:forwarded", "5");
	emit(ctx, "cluster", "forwarded", "9");
	emit(ctx, "cluster", "map_epoch", "7");
	emit(ctx, "cluster", "local", "100");
	emit(ctx, "cluster", "bad-name.x", "1");
	emit(ctx, "cluster", "map_epoch", "8");          /* duplicate: dropped */
	emit(ctx, "cluster", "", "1");                   /* empty name: dropped */
	if (c->slow)
		usleep(2000);
	atomic_fetch_sub(&c->inside, 1);
}

/* Peers come and go: 'peers' says whether the per-peer lines are there. */
static void collect_peers(void *arg, metrics_emit_fn emit, void *ctx)
{
	atomic_bool *peers = arg;

	emit(ctx, "cluster", "forwarded", "9");
	if (atomic_load(peers))
		emit(ctx, "cluster", "peer:n2:forwarded", "9");
}

/* dpcached's 'stats hotkeys' group (control/hotctl.h) and the replica
 * counters of 'stats cluster'. */
static void collect_hot(void *arg, metrics_emit_fn emit, void *ctx)
{
	(void)arg;
	emit(ctx, "hotkeys", "hot_interval_ms", "1000");
	emit(ctx, "hotkeys", "hot_received_per_s", "1234.5");
	emit(ctx, "hotkeys", "hot_executed_per_s", "2345");
	emit(ctx, "hotkeys", "hot_set_version", "7");
	emit(ctx, "hotkeys", "hot_set_keys", "12");
	emit(ctx, "hotkeys", "hot_reports_written", "40");
	emit(ctx, "hotkeys", "hot_sets_published", "3");
	emit(ctx, "hotkeys", "hot_zk_errors", "1");
	emit(ctx, "hotkeys", "hotkey:0",
	     "user:1 reads=5000.5 writes=1.5 owner=n1 replicas=n2,n3");
	/* printable odd characters: escaped in the label, never in the key */
	emit(ctx, "hotkeys", "hotkey:1",
	     "odd\"k\\ey reads=10 writes=0 owner=- replicas=-");
	emit(ctx, "hotkeys", "hotkey:2",
	     "b64:AAEC/w== reads=3e2 writes=0.25 owner=n2 replicas=-");
	/* the same key again: the first line wins */
	emit(ctx, "hotkeys", "hotkey:3",
	     "user:1 reads=1 writes=1 owner=n1 replicas=n2,n3");
	/* malformed: each becomes an info sample, nothing half-parsed */
	emit(ctx, "hotkeys", "hotkey:4", "bad1 reads=x writes=1 owner=- replicas=-");
	emit(ctx, "hotkeys", "hotkey:5", "bad2 reads=1 writes=1 owner=-");
	emit(ctx, "hotkeys", "hotkey:6", "bad3  reads=1 writes=1 owner=- replicas=-");
	emit(ctx, "hotkeys", "hotkey:7", "bad4 writes=1 reads=1 owner=- replicas=-");
	emit(ctx, "hotkeys", "hotkey:8",
	     "bad5 reads=1 writes=1 owner=- replicas=- extra");
	emit(ctx, "hotkeys", "hotkey:x", "bad6 reads=1 writes=1 owner=- replicas=-");
	emit(ctx, "hotkeys", "hotkey:9", "");
	emit(ctx, "hotkeys", "hotkey:10", " reads=1 writes=1 owner=- replicas=-");
	/* the hotkey rule belongs to the hotkeys group only */
	emit(ctx, "cluster", "hotkey:0", "k reads=1 writes=1 owner=- replicas=-");
	emit(ctx, "cluster", "replica_hits", "11");
	emit(ctx, "cluster", "replica_fills", "12");
	emit(ctx, "cluster", "replica_fill_rejected", "13");
	emit(ctx, "cluster", "replica_forwards", "14");
	emit(ctx, "cluster", "invalidations_sent", "15");
	emit(ctx, "cluster", "invalidations_received", "16");
	emit(ctx, "cluster", "invalidation_errors", "17");
	emit(ctx, "cluster", "sketch_skipped", "18");
	emit(ctx, "cluster", "hot_set_version", "7");
	emit(ctx, "cluster", "hot_set_keys", "12");
}

struct http_reply {
	int status;
	char *headers;
	char *body;
};

static void reply_free(struct http_reply *r)
{
	free(r->headers);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* One HTTP/1.0 request over a fresh connection (the server closes it after
 * the reply). 0 or -errno. */
static int http_request(unsigned port, const char *method, const char *path,
			struct http_reply *r)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port) };
	char req[256], *buf = NULL, *sep;
	size_t len = 0, cap = 0;
	int fd, n;

	memset(r, 0, sizeof(*r));
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: t\r\n\r\n",
		     method, path);
	if (write(fd, req, (size_t)n) != n) {
		close(fd);
		return -EIO;
	}
	for (;;) {
		ssize_t got;

		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			if (!buf) {
				close(fd);
				return -ENOMEM;
			}
		}
		got = read(fd, buf + len, cap - len - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	if (!buf)
		return -EIO;
	buf[len] = '\0';
	sep = strstr(buf, "\r\n\r\n");
	if (!sep || sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
		free(buf);
		return -EPROTO;
	}
	*sep = '\0';
	r->headers = strdup(buf);
	r->body = strdup(sep + 4);
	free(buf);
	return 0;
}

/* True when 'line' is a whole line of body. */
static bool has_line(const char *body, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = body; (p = strstr(p, line)); p++)
		if ((p == body || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static bool valid_name(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  c == '_' || c == ':' || (i > 0 && c >= '0' && c <= '9');

		if (!ok)
			return false;
	}
	return true;
}

/* The page obeys the exposition format's structure: every sample's name is
 * valid, is declared by exactly one earlier '# TYPE' line, and the samples
 * of one family are contiguous (after its TYPE line, before the next). */
static void check_structure(const char *body)
{
	char *copy = strdup(body), *save = NULL, *line;
	char types[64][128];
	unsigned ntypes = 0;
	char current[128] = "";

	assert_non_null(copy);
	for (line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# TYPE ", 7) == 0) {
			char name[128], type[32];

			assert_int_equal(sscanf(line + 7, "%127s %31s", name, type), 2);
			assert_true(strcmp(type, "counter") == 0 ||
				    strcmp(type, "gauge") == 0);
			for (unsigned i = 0; i < ntypes; i++)
				assert_string_not_equal(types[i], name);
			assert_true(ntypes < 64);
			strcpy(types[ntypes++], name);
			strcpy(current, name);
			continue;
		}
		assert_true(line[0] != '#');
		{
			size_t n = strcspn(line, "{ ");

			assert_true(valid_name(line, n));
			/* a sample belongs to the family declared last */
			assert_int_equal(n, strlen(current));
			assert_memory_equal(line, current, n);
		}
	}
	free(copy);
}

static void test_page(void **state)
{
	struct collector c = { 0 };
	struct metrics_server *m;
	struct http_reply r;
	char err[128] = "";

	(void)state;
	m = metrics_start("127.0.0.1:0", collect, &c, err, sizeof(err));
	assert_non_null(m);
	assert_true(metrics_port(m) > 0);
	assert_int_equal(http_request(metrics_port(m), "GET", "/metrics", &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.headers, "text/plain; version=0.0.4"));
	assert_int_equal(atomic_load(&c.calls), 1);

	assert_true(has_line(r.body, "# TYPE dpcache_get_hits counter"));
	assert_true(has_line(r.body, "dpcache_get_hits 12"));
	assert_true(has_line(r.body, "# TYPE dpcache_curr_items gauge"));
	assert_true(has_line(r.body, "dpcache_curr_items 7"));
	assert_true(has_line(r.body, "# TYPE dpcache_cmd_get counter"));
	assert_true(has_line(r.body, "dpcache_rusage_user 0.123456"));
	assert_true(has_line(r.body,
		"dpcache_info{group=\"stats\",key=\"version\",value=\"1.6.18-dpcache-0.1.0\"} 1"));
	/* label values escaped, a bad character in a name becomes '_' */
	assert_true(has_line(r.body,
		"dpcache_info{group=\"stats\",key=\"odd\\\"name\\\\x\","
		"value=\"quote \\\" back \\\\ nl \\n end\"} 1"));
	assert_true(has_line(r.body, "dpcache_dataplane_rx_frames{core=\"0\"} 5"));
	assert_true(has_line(r.body, "dpcache_dataplane_rx_frames{core=\"1\"} 6"));
	assert_true(has_line(r.body, "# TYPE dpcache_dataplane_rx_frames counter"));
	assert_true(has_line(r.body, "dpcache_dataplane_rx_frames_all 11"));
	assert_true(has_line(r.body, "# TYPE dpcache_dataplane_rx_frames_all counter"));
	assert_true(has_line(r.body, "dpcache_dataplane_ipackets{port=\"0\"} 9"));
	assert_true(has_line(r.body, "dpcache_cluster_forwarded{peer=\"n2\"} 4"));
	assert_true(has_line(r.body, "dpcache_cluster_forwarded{peer=\"n\\\"3\"} 5"));
	/* the unlabelled aggregate of a labelled family is renamed */
	assert_true(has_line(r.body, "dpcache_cluster_forwarded_all 9"));
	assert_null(strstr(r.body, "dpcache_cluster_forwarded 9"));
	assert_true(has_line(r.body, "# TYPE dpcache_cluster_map_epoch gauge"));
	assert_true(has_line(r.body, "dpcache_cluster_map_epoch 7"));
	assert_null(strstr(r.body, "dpcache_cluster_map_epoch 8"));
	assert_true(has_line(r.body, "# TYPE dpcache_cluster_local counter"));
	assert_true(has_line(r.body, "dpcache_cluster_bad_name_x 1"));
	check_structure(r.body);
	reply_free(&r);
	metrics_stop(&m);
	assert_null(m);
}

/* The number of lines of body that start with prefix. */
static unsigned count_prefix(const char *body, const char *prefix)
{
	size_t n = strlen(prefix);
	unsigned k = 0;

	for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (strncmp(p, prefix, n) == 0)
			k++;
	return k;
}

static void test_hotkeys_group(void **state)
{
	struct metrics_server *m;
	struct http_reply r;
	char err[128] = "";

	(void)state;
	m = metrics_start("127.0.0.1:0", collect_hot, NULL, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(http_request(metrics_port(m), "GET", "/metrics", &r), 0);
	assert_int_equal(r.status, 200);
	check_structure(r.body);

	/* numeric lines: no group prefix, typed by name */
	assert_true(has_line(r.body, "# TYPE dpcache_hot_interval_ms gauge"));
	assert_true(has_line(r.body, "dpcache_hot_interval_ms 1000"));
	assert_true(has_line(r.body, "# TYPE dpcache_hot_received_per_s gauge"));
	assert_true(has_line(r.body, "dpcache_hot_received_per_s 1234.5"));
	assert_true(has_line(r.body, "# TYPE dpcache_hot_executed_per_s gauge"));
	assert_true(has_line(r.body, "# TYPE dpcache_hot_set_version gauge"));
	assert_true(has_line(r.body, "# TYPE dpcache_hot_set_keys gauge"));
	assert_true(has_line(r.body, "dpcache_hot_set_keys 12"));
	assert_true(has_line(r.body, "# TYPE dpcache_hot_reports_written counter"));
	assert_true(has_line(r.body, "dpcache_hot_reports_written 40"));
	assert_true(has_line(r.body, "# TYPE dpcache_hot_sets_published counter"));
	assert_true(has_line(r.body, "# TYPE dpcache_hot_zk_errors counter"));
	assert_null(strstr(r.body, "dpcache_hotkeys_"));

	/* a hot key: two gauges with key, owner, replicated */
	assert_true(has_line(r.body, "# TYPE dpcache_hotkey_reads_per_second gauge"));
	assert_true(has_line(r.body, "# TYPE dpcache_hotkey_writes_per_second gauge"));
	assert_true(has_line(r.body, "dpcache_hotkey_reads_per_second"
		"{key=\"user:1\",owner=\"n1\",replicated=\"yes\"} 5000.5"));
	assert_true(has_line(r.body, "dpcache_hotkey_writes_per_second"
		"{key=\"user:1\",owner=\"n1\",replicated=\"yes\"} 1.5"));
	/* the duplicate line of user:1 was dropped */
	assert_int_equal(count_prefix(r.body,
		"dpcache_hotkey_reads_per_second{key=\"user:1\""), 1);
	/* escaping; owner '-' is an empty label */
	assert_true(has_line(r.body, "dpcache_hotkey_reads_per_second"
		"{key=\"odd\\\"k\\\\ey\",owner=\"\",replicated=\"no\"} 10"));
	assert_true(has_line(r.body, "dpcache_hotkey_writes_per_second"
		"{key=\"odd\\\"k\\\\ey\",owner=\"\",replicated=\"no\"} 0"));
	/* an owner without replicas is not replicated */
	assert_true(has_line(r.body, "dpcache_hotkey_reads_per_second"
		"{key=\"b64:AAEC/w==\",owner=\"n2\",replicated=\"no\"} 3e2"));
	assert_true(has_line(r.body, "dpcache_hotkey_writes_per_second"
		"{key=\"b64:AAEC/w==\",owner=\"n2\",replicated=\"no\"} 0.25"));
	/* three good keys, nothing from the malformed lines below */
	assert_int_equal(count_prefix(r.body, "dpcache_hotkey_reads_per_second{"), 3);
	assert_int_equal(count_prefix(r.body, "dpcache_hotkey_writes_per_second{"), 3);

	/* malformed hot-key lines: info samples, no rate series */
	assert_true(has_line(r.body, "dpcache_info{group=\"hotkeys\","
		"key=\"hotkey:4\",value=\"bad1 reads=x writes=1 owner=- replicas=-\"} 1"));
	assert_non_null(strstr(r.body, "value=\"bad2 reads=1 writes=1 owner=-\""));
	assert_non_null(strstr(r.body, "value=\"bad3  reads=1"));
	assert_non_null(strstr(r.body, "value=\"bad4 writes=1"));
	assert_non_null(strstr(r.body, "value=\"bad5 reads=1"));
	assert_non_null(strstr(r.body, "key=\"hotkey:x\",value=\"bad6"));
	assert_non_null(strstr(r.body, "key=\"hotkey:9\",value=\"\"} 1"));
	assert_non_null(strstr(r.body, "key=\"hotkey:10\",value=\" reads=1"));
	assert_true(has_line(r.body, "dpcache_info{group=\"cluster\","
		"key=\"hotkey:0\",value=\"k reads=1 writes=1 owner=- replicas=-\"} 1"));

	/* the replica counters of 'stats cluster' */
	assert_true(has_line(r.body, "# TYPE dpcache_cluster_replica_hits counter"));
	assert_true(has_line(r.body, "dpcache_cluster_replica_hits 11"));
	assert_true(has_line(r.body, "# TYPE dpcache_cluster_replica_fills counter"));
	assert_true(has_line(r.body, "# TYPE dpcache_cluster_replica_fill_rejected counter"));
	assert_true(has_line(r.body, "# TYPE dpcache_cluster_replica_forwards counter"));
	assert_true(has_line(r.body, "# TYPE dpcache_cluster_invalidations_sent counter"));
	assert_true(has_line(r.body, "# TYPE dpcache_cluster_invalidations_received counter"));
	assert_true(has_line(r.body, "# TYPE dpcache_cluster_invalidation_errors counter"));
	assert_true(has_line(r.body, "# TYPE dpcache_cluster_sketch_skipped counter"));
	assert_true(has_line(r.body, "dpcache_cluster_sketch_skipped 18"));
	assert_true(has_line(r.body, "# TYPE dpcache_cluster_hot_set_version gauge"));
	assert_true(has_line(r.body, "# TYPE dpcache_cluster_hot_set_keys gauge"));
	assert_true(has_line(r.body, "dpcache_cluster_hot_set_keys 12"));
	reply_free(&r);
	metrics_stop(&m);
}

static void test_healthz_404_405(void **state)
{
	struct collector c = { 0 };
	struct metrics_server *m;
	struct http_reply r;
	char err[128] = "";

	(void)state;
	m = metrics_start("127.0.0.1:0", collect, &c, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(http_request(metrics_port(m), "GET", "/healthz", &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ok\n");
	reply_free(&r);
	assert_int_equal(http_request(metrics_port(m), "GET", "/", &r), 0);
	assert_int_equal(r.status, 404);
	reply_free(&r);
	assert_int_equal(http_request(metrics_port(m), "GET", "/metrics/x", &r), 0);
	assert_int_equal(r.status, 404);
	reply_free(&r);
	assert_int_equal(http_request(metrics_port(m), "POST", "/metrics", &r), 0);
	assert_int_equal(r.status, 405);
	reply_free(&r);
	/* none of these scraped */
	assert_int_equal(atomic_load(&c.calls), 0);
	metrics_stop(&m);
}

static void test_bad_address(void **state)
{
	struct collector c = { 0 };
	struct metrics_server *m, *m2;
	char err[128] = "", addr[64];

	(void)state;
	assert_null(metrics_start("127.0.0.1", collect, &c, err, sizeof(err)));
	assert_non_null(strstr(err, "HOST:PORT"));
	err[0] = '\0';
	assert_null(metrics_start("127.0.0.1:99999", collect, &c, err, sizeof(err)));
	assert_non_null(strstr(err, "port"));
	err[0] = '\0';
	assert_null(metrics_start("127.0.0.1:12x", collect, &c, err, sizeof(err)));
	assert_true(err[0] != '\0');
	err[0] = '\0';
	assert_null(metrics_start(":80", collect, &c, err, sizeof(err)));
	assert_true(err[0] != '\0');
	/* a port already taken */
	m = metrics_start("127.0.0.1:0", collect, &c, err, sizeof(err));
	assert_non_null(m);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", metrics_port(m));
	err[0] = '\0';
	m2 = metrics_start(addr, collect, &c, err, sizeof(err));
	assert_null(m2);
	assert_non_null(strstr(err, "cannot listen"));
	metrics_stop(&m);
	metrics_stop(&m);     /* NULL: no-op */
	metrics_stop(NULL);
}

/* The aggregate's name depends on whether its family ever had labels, not
 * on this scrape alone: once renamed, it stays renamed. */
static void test_aggregate_name_sticky(void **state)
{
	atomic_bool peers = false;
	struct metrics_server *m;
	struct http_reply r;
	char err[128] = "";

	(void)state;
	m = metrics_start("127.0.0.1:0", collect_peers, &peers, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(http_request(metrics_port(m), "GET", "/metrics", &r), 0);
	assert_true(has_line(r.body, "dpcache_cluster_forwarded 9"));
	check_structure(r.body);
	reply_free(&r);
	atomic_store(&peers, true);
	assert_int_equal(http_request(metrics_port(m), "GET", "/metrics", &r), 0);
	assert_true(has_line(r.body, "dpcache_cluster_forwarded_all 9"));
	assert_true(has_line(r.body, "dpcache_cluster_forwarded{peer=\"n2\"} 9"));
	check_structure(r.body);
	reply_free(&r);
	atomic_store(&peers, false);
	assert_int_equal(http_request(metrics_port(m), "GET", "/metrics", &r), 0);
	assert_true(has_line(r.body, "dpcache_cluster_forwarded_all 9"));
	assert_null(strstr(r.body, "dpcache_cluster_forwarded 9"));
	reply_free(&r);
	metrics_stop(&m);
}

/* dpcached may hold thousands of sockets, so the endpoint's listening
 * socket can be above select()'s FD_SETSIZE (1024): it must still serve. */
static void test_listen_fd_above_fd_setsize(void **state)
{
	struct collector c = { 0 };
	struct metrics_server *m;
	struct http_reply r;
	struct rlimit rl, old;
	char err[128] = "";
	int fds[1100], n = 0;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	rl = old;
	if (rl.rlim_cur < 2048) {
		rl.rlim_cur = rl.rlim_max < 2048 ? rl.rlim_max : 2048;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	assert_true(rl.rlim_cur >= 1200);      /* else this test proves nothing */
	while (n < 1100) {
		fds[n] = open("/dev/null", O_RDONLY);
		assert_true(fds[n] >= 0);
		if (fds[n++] > 1100)
			break;
	}
	m = metrics_start("127.0.0.1:0", collect, &c, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(http_request(metrics_port(m), "GET", "/metrics", &r), 0);
	assert_int_equal(r.status, 200);
	assert_true(has_line(r.body, "dpcache_get_hits 12"));
	reply_free(&r);
	metrics_stop(&m);
	while (n > 0)
		close(fds[--n]);
	setrlimit(RLIMIT_NOFILE, &old);
}

#define SCRAPERS 8
#define SCRAPES 25

struct scraper {
	unsigned port;
	int ok;
	char *first;
	bool same;
};

static void *scrape_loop(void *arg)
{
	struct scraper *s = arg;

	s->same = true;
	for (int i = 0; i < SCRAPES; i++) {
		struct http_reply r;

		if (http_request(s->port, "GET", "/metrics", &r) != 0)
			continue;
		if (r.status == 200)
			s->ok++;
		if (!s->first)
			s->first = strdup(r.body);
		else if (strcmp(s->first, r.body) != 0)
			s->same = false;
		reply_free(&r);
	}
	return NULL;
}

static void test_concurrent_scrapes(void **state)
{
	struct collector c = { .slow = true };
	struct metrics_server *m;
	struct scraper s[SCRAPERS] = { 0 };
	pthread_t th[SCRAPERS];
	char err[128] = "";

	(void)state;
	m = metrics_start("127.0.0.1:0", collect, &c, err, sizeof(err));
	assert_non_null(m);
	for (int i = 0; i < SCRAPERS; i++) {
		s[i].port = metrics_port(m);
		assert_int_equal(pthread_create(&th[i], NULL, scrape_loop, &s[i]), 0);
	}
	for (int i = 0; i < SCRAPERS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(s[i].ok, SCRAPES);
		assert_true(s[i].same);
		assert_non_null(s[i].first);
		/* every thread saw the same, complete page */
		assert_string_equal(s[i].first, s[0].first);
		assert_true(has_line(s[i].first, "dpcache_cluster_local 100"));
	}
	for (int i = 0; i < SCRAPERS; i++)
		free(s[i].first);
	assert_int_equal(atomic_load(&c.calls), SCRAPERS * SCRAPES);
	assert_int_equal(atomic_load(&c.overlaps), 0);
	metrics_stop(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_page),
		cmocka_unit_test(test_hotkeys_group),
		cmocka_unit_test(test_healthz_404_405),
		cmocka_unit_test(test_bad_address),
		cmocka_unit_test(test_aggregate_name_sticky),
		cmocka_unit_test(test_listen_fd_above_fd_setsize),
		cmocka_unit_test(test_concurrent_scrapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
