/*
 * control/metrics.c - the admin HTTP endpoint: Prometheus text exposition
 * (format 0.0.4) of whatever the collect callback emits, and a liveness probe.
 *
 * Design note
 * -----------
 * Threads. libmicrohttpd runs one internal polling thread
 * (MHD_USE_INTERNAL_POLLING_THREAD, no thread pool), so requests, and hence
 * calls to 'collect', are serialised: the callback never runs twice at once
 * and needs no locking of its own against itself. Concurrent scrapes are
 * queued by the polling loop, each gets a complete page.
 *
 * A scrape is two passes. Pass one calls collect and turns every emitted
 * (group, name, value) into a sample {family, labels, value}; pass two sorts
 * the samples by family and writes them out. Sorting is what the format
 * needs: every sample of a family must follow its one '# TYPE' line, and a
 * family appears exactly once, so no name can carry two TYPEs.
 *
 * Naming (g = group, n = name as in memcached's stats, split on ':'):
 *   "x"                 -> dpcache_[g_]x               (g "stats" adds no prefix)
 *   "core0:x", "port1:x"-> dpcache_[g_]x{core="0"}      (a word, then digits)
 *   "peer:n2:x"         -> dpcache_[g_]x{peer="n2"}     (word : value : name)
 *   "total:x"           -> dpcache_[g_]x_all
 *   group "hotkeys" (control/hotctl.h, hotctl_stats) adds no prefix either,
 *   and its "hotkey:<i>" lines, value "<key> reads=<r> writes=<w>
 *   owner=<id|-> replicas=<a,b|->", become two samples each:
 *     dpcache_hotkey_reads_per_second{key="<key>",owner="<id>",replicated="yes"} <r>
 *     dpcache_hotkey_writes_per_second{...same labels...} <w>
 *   (owner "-" -> owner=""; replicated="yes" when the line names an owner
 *   and replicas). A hotkey line that does not have exactly that shape is
 *   reported like any other non-numeric value (an info sample), never
 *   half-parsed.
 *   "x" when family x has labelled samples, in this scrape or in any
 *       earlier scrape of this server
 *                       -> dpcache_[g_]x_all (so sum() over x never counts the
 *                          aggregate twice). The memory makes the name stable
 *                          once a peer or core has shown up; an emitter that
 *                          wants it stable from the first scrape emits its
 *                          aggregate as "total:x".
 *   anything else: every character outside [A-Za-z0-9_] becomes '_'.
 * A value that is not a plain decimal number becomes an info sample:
 *   dpcache_info{group="g",key="n",value="<value>"} 1
 * Label values are escaped (\\, \", \n); label names and metric names only
 * ever contain [A-Za-z0-9_] and start with a letter or '_'. Two samples with
 * the same family and labels: the first emitted wins, later ones are dropped.
 *
 * TYPE: a family is a counter when its base name x (before any "_all") is one
 * of memcached's cumulative statistics - it starts with "cmd_" or "total_",
 * ends with "_hits", "_misses", "_errors", "_drops", "_dropped", "_frames",
 * "_packets", "_sent" or "_received", or is in counter_names[] below -
 * and a gauge otherwise (curr_items, bytes, limit_maxbytes, map_epoch,
 * hot_set_version, hot_set_keys, the hot-key rates, ...). A new cumulative
 * statistic whose name the suffix rules miss must be added to
 * counter_names[]: a counter typed as a gauge breaks rate() in queries.
 * The type depends on x alone, and x is the same for every sample of a
 * family, so a family never gets two types.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "control/metrics.h"

/* Families ever seen with labels; bounds the memory a buggy emitter with
 * ever-new names can take. */
#define METRICS_FAMILIES_MAX 4096

struct metrics_server {
	struct MHD_Daemon *daemon;
	metrics_collect_fn collect;
	void *arg;
	unsigned port;
	/* Touched only by the polling thread (scrapes are serialised). */
	char **labelled;
	unsigned nlabelled;
};

/* One sample of a scrape. 'base' is the name before the group prefix and
 * the "_all" suffix; it decides the TYPE. */
struct metrics_sample {
	char *family;
	char *base;
	char *labels;      /* rendered 'k="v",k2="v2"' or "" */
	char *value;
	bool info;
	bool all;          /* unlabelled aggregate: may need the "_all" suffix */
	unsigned seq;      /* emit order, so the first duplicate wins */
};

struct metrics_scrape {
	struct metrics_sample *s;
	unsigned n, cap;
	bool oom;
};

/* A growing output buffer; 'oom' sticks once an allocation failed. */
struct metrics_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void buf_add(struct metrics_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct metrics_buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* Appends s with every character outside [A-Za-z0-9_] replaced by '_'. */
static void buf_sanitized(struct metrics_buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_';

		buf_add(b, ok ? &c : "_", 1);
	}
}

/* Appends a label value in the exposition format's escaping. */
static void buf_escaped(struct metrics_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			buf_str(b, "\\\\");
		else if (*s == '"')
			buf_str(b, "\\\"");
		else if (*s == '\n')
			buf_str(b, "\\n");
		else
			buf_add(b, s, 1);
	}
}

/* Takes ownership of b's string ("" when empty); NULL after an OOM. */
static char *buf_take(struct metrics_buf *b)
{
	char *p;

	if (b->oom) {
		free(b->p);
		return NULL;
	}
	p = b->p ? b->p : strdup("");
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

/* A plain decimal number: [-+]?digits[.digits][(e|E)[-+]?digits], or with
 * the digits only after the point. Anything else is reported as info. */
static bool metrics_is_number(const char *v)
{
	bool digits = false;

	if (*v == '-' || *v == '+')
		v++;
	while (*v >= '0' && *v <= '9') {
		v++;
		digits = true;
	}
	if (*v == '.') {
		v++;
		while (*v >= '0' && *v <= '9') {
			v++;
			digits = true;
		}
	}
	if (!digits)
		return false;
	if (*v == 'e' || *v == 'E') {
		v++;
		if (*v == '-' || *v == '+')
			v++;
		if (!(*v >= '0' && *v <= '9'))
			return false;
		while (*v >= '0' && *v <= '9')
			v++;
	}
	return *v == '\0';
}

static const char *const counter_names[] = {
	"bytes_read", "bytes_written", "evictions", "reclaimed", "expired",
	"expired_unfetched", "evicted_unfetched", "evicted_active",
	"rejected_connections", "conn_yields", "listen_disabled_num",
	"rusage_user", "rusage_system", "auth_cmds", "auth_errors",
	"local", "forwarded", "pulls", "udp_not_owner", "maps_applied",
	"zk_reconnects", "session_expiries", "cas_conflicts",
	"ipackets", "opackets", "ibytes", "obytes", "imissed", "rx_nombuf",
	"keys_sent", "bytes_sent",
	/* hot-key replication: 'stats cluster' (replica_hits,
	 * invalidations_sent/_received, invalidation_errors are caught by the
	 * suffixes) and 'stats hotkeys' (hot_zk_errors likewise) */
	"replica_fills", "replica_fill_rejected", "replica_forwards",
	"sketch_skipped", "hot_reports_written", "hot_sets_published",
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool metrics_is_counter(const char *base)
{
	static const char *const suffixes[] = {
		"_hits", "_misses", "_errors", "_drops", "_dropped", "_frames",
		"_packets", "_sent", "_received",
	};

	if (strncmp(base, "cmd_", 4) == 0 || strncmp(base, "total_", 6) == 0)
		return true;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
		if (ends_with(base, suffixes[i]))
			return true;
	for (size_t i = 0; i < sizeof(counter_names) / sizeof(counter_names[0]); i++)
		if (strcmp(base, counter_names[i]) == 0)
			return true;
	return false;
}

/* "core0" -> word "core", digits "0"; false unless word then digits. */
static bool split_word_digits(const char *s, size_t n, size_t *wlen)
{
	size_t i = 0;

	while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
		i++;
	if (i == 0 || i == n)
		return false;
	for (size_t j = i; j < n; j++)
		if (s[j] < '0' || s[j] > '9')
			return false;
	*wlen = i;
	return true;
}

static void scrape_push(struct metrics_scrape *sc, struct metrics_sample *smp)
{
	if (!smp->family || !smp->base || !smp->labels || !smp->value)
		goto fail;
	if (sc->n == sc->cap) {
		unsigned cap = sc->cap ? sc->cap * 2 : 64;
		struct metrics_sample *s = realloc(sc->s, cap * sizeof(*s));

		if (!s)
			goto fail;
		sc->s = s;
		sc->cap = cap;
	}
	smp->seq = sc->n;
	sc->s[sc->n++] = *smp;
	return;
fail:
	sc->oom = true;
	free(smp->family);
	free(smp->base);
	free(smp->labels);
	free(smp->value);
}

/* Groups whose families carry no group prefix. */
static bool group_unprefixed(const char *group)
{
	return strcmp(group, "stats") == 0 || strcmp(group, "hotkeys") == 0;
}

/* "hotkey:<digits>" */
static bool is_hotkey_name(const char *name)
{
	const char *d = name + 7;

	if (strncmp(name, "hotkey:", 7) != 0 || !*d)
		return false;
	for (; *d; d++)
		if (*d < '0' || *d > '9')
			return false;
	return true;
}

/* Copies the token of v that starts after 'prefix' (the token must begin
 * with it) up to the next ' ' or the end into out. Returns the position
 * after the token (at ' ' or '\0'), or NULL when the token does not start
 * with prefix, is empty or does not fit. */
static const char *hotkey_token(const char *v, const char *prefix, char *out,
				size_t n)
{
	size_t p = strlen(prefix), len;

	if (strncmp(v, prefix, p) != 0)
		return NULL;
	v += p;
	len = strcspn(v, " ");
	if (len == 0 || len >= n)
		return NULL;
	memcpy(out, v, len);
	out[len] = '\0';
	return v + len;
}

/*
 * One 'stats hotkeys' "hotkey:<i>" value, "<key> reads=<r> writes=<w>
 * owner=<id|-> replicas=<a,b|->" (single spaces, that order), into a reads
 * and a writes sample. False, with nothing pushed, when the value has any
 * other shape: the caller then reports it as an info sample.
 */
static bool metrics_emit_hotkey(struct metrics_scrape *sc, const char *value)
{
	/* a key is at most 250 bytes, "b64:" + its base64 at most 4 + 336 */
	char key[512], reads[64], writes[64], owner[256], replicas[8192];
	struct metrics_sample smp = { 0 };
	struct metrics_buf lab = { 0 };
	const char *v = value;
	bool replicated;
	char *labels;

	if (!(v = hotkey_token(v, "", key, sizeof(key))) || *v++ != ' ' ||
	    !(v = hotkey_token(v, "reads=", reads, sizeof(reads))) || *v++ != ' ' ||
	    !(v = hotkey_token(v, "writes=", writes, sizeof(writes))) || *v++ != ' ' ||
	    !(v = hotkey_token(v, "owner=", owner, sizeof(owner))) || *v++ != ' ' ||
	    !(v = hotkey_token(v, "replicas=", replicas, sizeof(replicas))) ||
	    *v != '\0')
		return false;
	if (!metrics_is_number(reads) || !metrics_is_number(writes))
		return false;
	replicated = strcmp(owner, "-") != 0 && strcmp(replicas, "-") != 0;
	buf_str(&lab, "key=\"");
	buf_escaped(&lab, key);
	buf_str(&lab, "\",owner=\"");
	buf_escaped(&lab, strcmp(owner, "-") == 0 ? "" : owner);
	buf_str(&lab, replicated ? "\",replicated=\"yes\"" :
				   "\",replicated=\"no\"");
	labels = buf_take(&lab);
	if (!labels) {
		sc->oom = true;
		return true;
	}
	smp.family = strdup("dpcache_hotkey_reads_per_second");
	smp.base = strdup("hotkey_reads_per_second");
	smp.labels = strdup(labels);
	smp.value = strdup(reads);
	scrape_push(sc, &smp);
	memset(&smp, 0, sizeof(smp));
	smp.family = strdup("dpcache_hotkey_writes_per_second");
	smp.base = strdup("hotkey_writes_per_second");
	smp.labels = labels;
	smp.value = strdup(writes);
	scrape_push(sc, &smp);
	return true;
}

/* The emit callback handed to collect: one (group, name, value) -> one
 * sample (two for a hot key), by the naming rules of the design note. */
static void metrics_emit(void *ctx, const char *group, const char *name,
			 const char *value)
{
	struct metrics_scrape *sc = ctx;
	struct metrics_sample smp = { 0 };
	struct metrics_buf fam = { 0 }, base = { 0 }, lab = { 0 };
	const char *c1, *c2, *x;
	size_t wlen;

	if (!group || !name || !value || !*name)
		return;
	if (strcmp(group, "hotkeys") == 0 && is_hotkey_name(name) &&
	    metrics_emit_hotkey(sc, value))
		return;
	if (!metrics_is_number(value)) {
		buf_str(&lab, "group=\"");
		buf_escaped(&lab, group);
		buf_str(&lab, "\",key=\"");
		buf_escaped(&lab, name);
		buf_str(&lab, "\",value=\"");
		buf_escaped(&lab, value);
		buf_str(&lab, "\"");
		smp.family = strdup("dpcache_info");
		smp.base = strdup("info");
		smp.labels = buf_take(&lab);
		smp.value = strdup("1");
		smp.info = true;
		scrape_push(sc, &smp);
		return;
	}

	c1 = strchr(name, ':');
	c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	x = name;
	if (c1 && !c2 && c1 > name && c1[1] &&
	    (size_t)(c1 - name) == 5 && strncmp(name, "total", 5) == 0) {
		x = c1 + 1;                               /* total:x */
		smp.all = true;
	} else if (c1 && !c2 && c1[1] &&
		   split_word_digits(name, (size_t)(c1 - name), &wlen)) {
		x = c1 + 1;                               /* core0:x */
		buf_sanitized(&lab, name, wlen);
		buf_str(&lab, "=\"");
		buf_add(&lab, name + wlen, (size_t)(c1 - name) - wlen);
		buf_str(&lab, "\"");
	} else if (c1 && c2 && !strchr(c2 + 1, ':') && c1 > name &&
		   c2 > c1 + 1 && c2[1]) {
		x = c2 + 1;                               /* peer:n2:x */
		buf_sanitized(&lab, name, (size_t)(c1 - name));
		buf_str(&lab, "=\"");
		{
			char v[256];
			size_t vn = (size_t)(c2 - c1 - 1);

			if (vn >= sizeof(v))
				vn = sizeof(v) - 1;
			memcpy(v, c1 + 1, vn);
			v[vn] = '\0';
			buf_escaped(&lab, v);
		}
		buf_str(&lab, "\"");
	}
	/* A label name must not start with a digit: "peer" etc. never do, but
	 * a sanitised odd prefix could; prefix it then. */
	if (lab.p && lab.p[0] >= '0' && lab.p[0] <= '9') {
		struct metrics_buf fixed = { 0 };

		buf_str(&fixed, "_");
		buf_str(&fixed, lab.p);
		free(lab.p);
		lab = fixed;
	}

	buf_sanitized(&base, x, strlen(x));
	buf_str(&fam, "dpcache_");
	if (!group_unprefixed(group)) {
		buf_sanitized(&fam, group, strlen(group));
		buf_str(&fam, "_");
	}
	buf_sanitized(&fam, x, strlen(x));
	smp.family = buf_take(&fam);
	smp.base = buf_take(&base);
	smp.labels = buf_take(&lab);
	smp.value = strdup(value);
	scrape_push(sc, &smp);
}

static int cmp_family(const void *a, const void *b)
{
	const struct metrics_sample *x = a, *y = b;
	int r = strcmp(x->family, y->family);

	if (r)
		return r;
	r = strcmp(x->labels, y->labels);
	if (r)
		return r;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool families_has(const struct metrics_server *m, const char *f)
{
	for (unsigned i = 0; i < m->nlabelled; i++)
		if (strcmp(m->labelled[i], f) == 0)
			return true;
	return false;
}

/* Remembers that family f has had labelled samples. -ENOMEM or 0. */
static int families_add(struct metrics_server *m, const char *f)
{
	char **l, *copy;

	if (families_has(m, f))
		return 0;
	if (m->nlabelled >= METRICS_FAMILIES_MAX)
		return 0;             /* bounded; later families may flip once */
	copy = strdup(f);
	l = realloc(m->labelled, sizeof(*l) * (m->nlabelled + 1));
	if (!copy || !l) {
		free(copy);
		if (l)
			m->labelled = l;
		return -ENOMEM;
	}
	m->labelled = l;
	m->labelled[m->nlabelled++] = copy;
	return 0;
}

/* Unlabelled samples of a family that has labelled ones, in this scrape or
 * any earlier one of this server, get "_all"; so do "total:x" ones. */
static int scrape_rename_aggregates(struct metrics_server *m,
				    struct metrics_scrape *sc)
{
	for (unsigned i = 0; i < sc->n; i++)
		if (!sc->s[i].info && sc->s[i].labels[0] &&
		    families_add(m, sc->s[i].family) < 0)
			return -ENOMEM;
	for (unsigned i = 0; i < sc->n; i++) {
		struct metrics_sample *smp = &sc->s[i];
		char *f;

		if (smp->info || smp->labels[0])
			continue;
		if (!smp->all && !families_has(m, smp->family))
			continue;
		f = malloc(strlen(smp->family) + 5);
		if (!f)
			return -ENOMEM;
		strcpy(f, smp->family);
		strcat(f, "_all");
		free(smp->family);
		smp->family = f;
	}
	qsort(sc->s, sc->n, sizeof(*sc->s), cmp_family);
	return 0;
}

static void scrape_free(struct metrics_scrape *sc)
{
	for (unsigned i = 0; i < sc->n; i++) {
		free(sc->s[i].family);
		free(sc->s[i].base);
		free(sc->s[i].labels);
		free(sc->s[i].value);
	}
	free(sc->s);
}

/* The whole page, malloc'd; NULL on no memory. */
static char *metrics_render(struct metrics_server *m, size_t *len)
{
	struct metrics_scrape sc = { 0 };
	struct metrics_buf out = { 0 };
	const char *family = NULL;

	m->collect(m->arg, metrics_emit, &sc);
	if (sc.oom || scrape_rename_aggregates(m, &sc) < 0) {
		scrape_free(&sc);
		return NULL;
	}
	for (unsigned i = 0; i < sc.n; i++) {
		struct metrics_sample *smp = &sc.s[i];

		if (family && strcmp(family, smp->family) == 0) {
			/* same family and labels as the previous: a duplicate */
			if (strcmp(sc.s[i - 1].labels, smp->labels) == 0)
				continue;
		} else {
			buf_str(&out, "# TYPE ");
			buf_str(&out, smp->family);
			buf_str(&out, !smp->info && metrics_is_counter(smp->base) ?
				" counter\n" : " gauge\n");
			family = smp->family;
		}
		buf_str(&out, smp->family);
		if (smp->labels[0]) {
			buf_str(&out, "{");
			buf_str(&out, smp->labels);
			buf_str(&out, "}");
		}
		buf_str(&out, " ");
		buf_str(&out, smp->value);
		buf_str(&out, "\n");
	}
	scrape_free(&sc);
	*len = out.len;
	return buf_take(&out);
}

static enum MHD_Result metrics_reply(struct MHD_Connection *conn,
				     unsigned code, const char *type,
				     char *body, size_t len, bool owned)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, owned ?
			MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!r) {
		if (owned)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result metrics_handler(void *cls, struct MHD_Connection *conn,
				       const char *url, const char *method,
				       const char *version, const char *upload,
				       size_t *upload_len, void **req_ctx)
{
	static const char text[] = "text/plain; charset=utf-8";
	static char not_found[] = "not found\n";
	static char bad_method[] = "method not allowed\n";
	static char ok[] = "ok\n";
	struct metrics_server *m = cls;
	bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
	bool head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

	(void)version;
	(void)upload;
	/* The first call only announces the request (headers read); answer
	 * on the second, and swallow any upload body unread. */
	if (!*req_ctx) {
		*req_ctx = m;
		return MHD_YES;
	}
	if (*upload_len) {
		*upload_len = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/metrics") != 0 && strcmp(url, "/healthz") != 0)
		return metrics_reply(conn, MHD_HTTP_NOT_FOUND, text, not_found,
				     strlen(not_found), false);
	if (!get && !head)
		return metrics_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text,
				     bad_method, strlen(bad_method), false);
	if (strcmp(url, "/healthz") == 0)
		return metrics_reply(conn, MHD_HTTP_OK, text, ok, strlen(ok),
				     false);
	{
		size_t len = 0;
		char *page = metrics_render(m, &len);
		static char oom[] = "out of memory\n";

		if (!page)
			return metrics_reply(conn,
					     MHD_HTTP_INTERNAL_SERVER_ERROR,
					     text, oom, strlen(oom), false);
		return metrics_reply(conn, MHD_HTTP_OK,
				     "text/plain; version=0.0.4; charset=utf-8",
				     page, len, true);
	}
}

/* "host:port", "[v6]:port"; host may be a name. 0 or -EINVAL. */
static int metrics_resolve(const char *addr, struct sockaddr_storage *ss,
			   socklen_t *sslen, char *err, size_t errlen)
{
	char host[256];
	const char *colon, *h = addr;
	size_t hn;
	struct addrinfo hints = { 0 }, *res = NULL;
	int rc;

	colon = strrchr(addr, ':');
	if (!colon || !colon[1]) {
		snprintf(err, errlen, "bad admin address '%s' (want HOST:PORT)",
			 addr);
		return -EINVAL;
	}
	hn = (size_t)(colon - addr);
	if (hn >= 2 && addr[0] == '[' && addr[hn - 1] == ']') {
		h = addr + 1;
		hn -= 2;
	}
	if (hn == 0 || hn >= sizeof(host)) {
		snprintf(err, errlen, "bad admin address '%s' (want HOST:PORT)",
			 addr);
		return -EINVAL;
	}
	memcpy(host, h, hn);
	host[hn] = '\0';
	for (const char *p = colon + 1; *p; p++)
		if (*p < '0' || *p > '9' || p - colon > 5) {
			snprintf(err, errlen, "bad port in admin address '%s'",
				 addr);
			return -EINVAL;
		}
	if (atoi(colon + 1) > 65535) {
		snprintf(err, errlen, "bad port in admin address '%s'", addr);
		return -EINVAL;
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "admin address '%s': %s", addr,
			 gai_strerror(rc));
		return -EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

struct metrics_server *metrics_start(const char *addr,
				     metrics_collect_fn collect, void *arg,
				     char *err, size_t errlen)
{
	struct metrics_server *m;
	struct sockaddr_storage ss;
	socklen_t sslen;
	const union MHD_DaemonInfo *info;
	/* AUTO: epoll or poll, never select(), whose FD_SETSIZE a dpcached
	 * with thousands of client sockets would exceed. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;

	if (!addr || !collect) {
		snprintf(err, errlen, "metrics: no address or collector");
		return NULL;
	}
	if (metrics_resolve(addr, &ss, &sslen, err, errlen) < 0)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "metrics: out of memory");
		return NULL;
	}
	m->collect = collect;
	m->arg = arg;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	m->daemon = MHD_start_daemon(flags, 0, NULL, NULL,
				     metrics_handler, m,
				     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				     MHD_OPTION_CONNECTION_TIMEOUT, 10u,
				     MHD_OPTION_CONNECTION_LIMIT, 64u,
				     MHD_OPTION_END);
	if (!m->daemon) {
		/* libmicrohttpd reports no reason; a bind failure is by far
		 * the usual one. */
		snprintf(err, errlen,
			 "metrics: cannot listen on %s (address in use or not local?)",
			 addr);
		free(m);
		return NULL;
	}
	info = MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT);
	m->port = info ? info->port : 0;
	return m;
}

unsigned metrics_port(const struct metrics_server *m)
{
	return m ? m->port : 0;
}

void metrics_stop(struct metrics_server **pm)
{
	struct metrics_server *m;

	if (!pm || !*pm)
		return;
	m = *pm;
	MHD_stop_daemon(m->daemon);
	for (unsigned i = 0; i < m->nlabelled; i++)
		free(m->labelled[i]);
	free(m->labelled);
	free(m);
	*pm = NULL;
}
