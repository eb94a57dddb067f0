/*
 * tests/memcache/test_forward.c - a cluster node's protocol side
 * (dataplane/memcache/forward.c and its hooks in text.c, meta.c, binary.c):
 * which meta request a client request becomes when another node owns its
 * key, and which bytes the client gets back for the owner's answer.
 *
 * No cluster.c here: the cluster_* functions the protocol calls are defined
 * below as a scripted router, and cluster_forward() only records what it is
 * given. A test then completes a recorded request by calling its done()
 * with a canned meta answer (or an error), as fwd_poll() would.
 *
 * The router: a key starting with 'r' is owned by node n2 (FORWARD, unless
 * the session is a peer); 'p' is moving in and absent (PULL from n3 until
 * the request has pulled it, or once it is here; never for a plain set);
 * 'm' is moving in and present (LOCAL, moving_in); anything else is local.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/memcache/mc_test_util.h"

#include "cache/cache.h"
#include "dataplane/memcache/mc_internal.h"

/* ---- the scripted cluster ------------------------------------------------ */

#define MAX_SUBS 16

struct sub {
	char *req;
	size_t len;
	char peer[64];
	fwd_done_fn done;
	void *arg;
	bool cancelled;
	bool completed;
};

static struct {
	struct mc_fixture *mf;
	struct sub subs[MAX_SUBS];
	int nsubs;
	int fail_next;          /* cluster_forward returns this once (then 0) */
	enum cluster_from last_from;  /* of the last cluster_route */
	bool last_final_hop;    /* of the last cluster_forward */
	bool undo_next;         /* cluster_undo_if_fresh undoes the next add */
	int routes;
	bool last_pulled;
	bool last_peer;
	int fresh_marks;
	char fresh_key[256];
	bool fresh_answer;      /* cluster_is_fresh() */
	int installs;
	int udp_refused;
	int woke;
	/* hot keys */
	int pull_dones;
	enum cluster_pull last_pull_kind;
	uint64_t last_pull_gen;
	int last_pull_err;
	int invalidations;
	bool last_inval_block;
	char inval_key[256];
	size_t inval_nkey;
} T;

/* Any non-NULL pointer: the protocol only passes it back to us. */
static int fake_cw_storage;
#define FAKE_CW ((struct cluster_worker *)&fake_cw_storage)

/* cluster_route looks a moving-in key up without bumping it. */
static bool present(const char *key, size_t nkey, uint64_t hash)
{
	struct cache_read_opts o = { .no_bump = true };
	return cache_get(mc_worker_cache_thread(T.mf->worker), key, nkey, hash,
			 &o, NULL) != NULL;
}

void cluster_route(struct cluster_worker *cw, const char *key, size_t nkey,
		   uint64_t hash, enum cluster_op op, enum cluster_from from,
		   bool pulled, struct cluster_route *r)
{
	bool peer_session = from != CLUSTER_FROM_CLIENT;

	assert_ptr_equal(cw, FAKE_CW);
	T.last_from = from;
	assert_true(hash == cache_hash(key, nkey));
	memset(r, 0, sizeof(*r));
	T.routes++;
	T.last_pulled = pulled;
	T.last_peer = peer_session;
	if (nkey > 0 && key[0] == 'r' && !peer_session) {
		r->action = CLUSTER_FORWARD;
		strcpy(r->peer, "127.0.0.1:1");
		strcpy(r->peer_id, "n2");
	} else if (nkey > 0 && key[0] == 's' && from == CLUSTER_FROM_PEER) {
		/* our map is newer than the sender's: one more hop */
		r->action = CLUSTER_FORWARD;
		r->final_hop = true;
		strcpy(r->peer, "127.0.0.1:4");
		strcpy(r->peer_id, "n4");
	} else if (nkey > 0 && key[0] == 'h' && !peer_session && !pulled &&
		   op == CLUSTER_OP_READ) {
		/* a replica without a valid copy: fill it from the owner */
		r->action = CLUSTER_PULL;
		r->pull_kind = CLUSTER_PULL_FILL;
		r->pull_gen = 77;
		r->final_hop = true;
		strcpy(r->peer, "127.0.0.1:5");
		strcpy(r->peer_id, "n5");
	} else if (nkey > 0 && key[0] == 'w' && !peer_session &&
		   op != CLUSTER_OP_READ) {
		/* sync mode at the owner: block the replicas, then write */
		r->hot_owner = true;
		if (!pulled) {
			r->action = CLUSTER_PULL;
			r->pull_kind = CLUSTER_PULL_BLOCK;
			r->final_hop = true;
			strcpy(r->peer, "127.0.0.1:6");
			strcpy(r->peer_id, "n6");
		}
	} else if (nkey > 0 && key[0] == 'p' && !pulled && op != CLUSTER_OP_SET &&
		   !present(key, nkey, hash)) {
		r->action = CLUSTER_PULL;
		r->moving_in = true;
		r->final_hop = true;
		strcpy(r->peer, "127.0.0.1:2");
		strcpy(r->peer_id, "n3");
	} else {
		r->action = CLUSTER_LOCAL;
		r->moving_in = nkey > 0 && (key[0] == 'p' || key[0] == 'm');
	}
}

int cluster_forward(struct cluster_worker *cw, const char *peer,
		    bool final_hop, const void *req, size_t len,
		    fwd_done_fn done, void *arg, struct fwd_req **handle)
{
	assert_ptr_equal(cw, FAKE_CW);
	T.last_final_hop = final_hop;
	if (T.fail_next != 0) {
		int rc = T.fail_next;
		T.fail_next = 0;
		return rc;
	}
	assert_true(T.nsubs < MAX_SUBS);
	struct sub *s = &T.subs[T.nsubs];
	memset(s, 0, sizeof(*s));
	s->req = malloc(len + 1);
	assert_non_null(s->req);
	memcpy(s->req, req, len);
	s->req[len] = '\0';
	s->len = len;
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	s->done = done;
	s->arg = arg;
	if (handle != NULL)
		*handle = (struct fwd_req *)s;
	T.nsubs++;
	return 0;
}

void fwd_cancel(struct fwd_req *h)
{
	struct sub *s = (struct sub *)h;
	assert_false(s->completed);
	s->cancelled = true;
}

void cluster_after_write(struct cluster_worker *cw, const char *key,
			 size_t nkey, uint64_t hash)
{
	assert_ptr_equal(cw, FAKE_CW);
	assert_true(hash == cache_hash(key, nkey));
	T.fresh_marks++;
	snprintf(T.fresh_key, sizeof(T.fresh_key), "%.*s", (int)nkey, key);
}

bool cluster_is_fresh(struct cluster_worker *cw, uint64_t hash)
{
	(void)hash;
	assert_ptr_equal(cw, FAKE_CW);
	return T.fresh_answer;
}

bool cluster_accepts_migrated(struct cluster_worker *cw, const char *key,
			      size_t nkey, uint64_t hash)
{
	assert_ptr_equal(cw, FAKE_CW);
	assert_true(hash == cache_hash(key, nkey));
	return !T.fresh_answer;
}

/* A local write overtaking the stream's add between its check and its
 * store: the test sets undo_next, the add is undone (NS). */
bool cluster_undo_if_fresh(struct cluster_worker *cw, const char *key,
			   size_t nkey, uint64_t hash, uint64_t cas)
{
	assert_ptr_equal(cw, FAKE_CW);
	if (!T.undo_next)
		return false;
	T.undo_next = false;
	(void)cache_delete(mc_worker_cache_thread(T.mf->worker), key, nkey,
			   hash, cas);
	return true;
}

/* Installs 'VA <n> f<flags> ...' + data with add semantics, like the real
 * one (without TTL or CAS, which these tests do not look at). */
int cluster_install_pulled(struct cluster_worker *cw, const char *key,
			   size_t nkey, uint64_t hash, const char *reply,
			   size_t len)
{
	assert_ptr_equal(cw, FAKE_CW);
	T.installs++;
	if (len >= 2 && memcmp(reply, "EN", 2) == 0)
		return 0;
	unsigned n = 0, flags = 0;
	if (sscanf(reply, "VA %u f%u", &n, &flags) != 2)
		return -EPROTO;
	const char *data = memchr(reply, '\n', len);
	assert_non_null(data);
	data++;
	struct cache_thread *ct = mc_worker_cache_thread(T.mf->worker);
	enum cache_status err;
	struct cache_item *it = cache_item_alloc(ct, key, nkey, flags, 0, n, &err);
	assert_non_null(it);
	memcpy(cache_item_value(it), data, n);
	struct cache_store_args a = { .mode = CACHE_ADD };
	(void)cache_store(ct, it, hash, &a, NULL);
	return 0;
}

int cluster_pull_done(struct cluster_worker *cw, enum cluster_pull kind,
		      const char *key, size_t nkey, uint64_t hash,
		      uint64_t gen, int err, const char *reply, size_t len)
{
	assert_ptr_equal(cw, FAKE_CW);
	assert_true(hash == cache_hash(key, nkey));
	T.pull_dones++;
	T.last_pull_kind = kind;
	T.last_pull_gen = gen;
	T.last_pull_err = err;
	if (err != 0)
		return err;
	/* Installed like a migration pull would be (the fake ignores CAS). */
	return cluster_install_pulled(cw, key, nkey, hash, reply, len);
}

void cluster_fill_not_sent(struct cluster_worker *cw, const char *key,
			   size_t nkey, uint64_t hash)
{
	assert_ptr_equal(cw, FAKE_CW);
	assert_true(hash == cache_hash(key, nkey));
	T.pull_dones++;
	T.last_pull_err = -ENOBUFS;
}

/* Two replicas for every 'w' key: 127.0.0.1:6 (n6) and :7 (n7). */
bool cluster_replica_peer(struct cluster_worker *cw, const char *key,
			  size_t nkey, uint64_t hash, unsigned idx,
			  char peer[MAP_ADDR_MAX], char peer_id[MAP_ID_MAX])
{
	assert_ptr_equal(cw, FAKE_CW);
	assert_true(hash == cache_hash(key, nkey));
	if (idx > 1)
		return false;
	snprintf(peer, MAP_ADDR_MAX, "127.0.0.1:%u", 6 + idx);
	snprintf(peer_id, MAP_ID_MAX, "n%u", 6 + idx);
	return true;
}

size_t cluster_format_inval(char *buf, size_t cap, const char *key,
			    size_t nkey, bool block)
{
	int n = snprintf(buf, cap, "dpc_inv %.*s %s\r\n", (int)nkey, key,
			 block ? "block" : "done");
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

void cluster_invalidate(struct cluster_worker *cw, const char *key,
			size_t nkey, uint64_t hash, bool block)
{
	assert_ptr_equal(cw, FAKE_CW);
	assert_true(hash == cache_hash(key, nkey));
	T.invalidations++;
	T.last_inval_block = block;
	memcpy(T.inval_key, key, nkey);
	T.inval_nkey = nkey;
}

void cluster_count_udp_refused(struct cluster_worker *cw)
{
	assert_ptr_equal(cw, FAKE_CW);
	T.udp_refused++;
}

/* ---- a transport --------------------------------------------------------- */

static void waker(void *arg)
{
	assert_ptr_equal(arg, &T);
	T.woke++;
}

static int setup(void **state)
{
	memset(&T, 0, sizeof(T));
	T.mf = mc_fixture_create(NULL);
	mc_worker_set_cluster(T.mf->worker, FAKE_CW);
	mc_fixture_reconnect(T.mf);       /* a session of a cluster worker */
	mc_session_set_waker(T.mf->session, waker, &T);
	*state = T.mf;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	mc_fixture_destroy(&T.mf);
	for (int i = 0; i < T.nsubs; i++)
		free(T.subs[i].req);
	return 0;
}

/* Like mc_push, but a wait is an answer too: returns the last MC_FEED_*
 * (MORE, WAIT or CLOSE). */
static int push(const char *in, size_t len)
{
	struct mc_fixture *f = T.mf;

	f->pending = realloc(f->pending, f->npending + len + 1);
	assert_non_null(f->pending);
	memcpy(f->pending + f->npending, in, len);
	f->npending += len;
	for (;;) {
		size_t used = 0;
		int rc = mc_session_feed(f->session, f->pending, f->npending,
					 &used, &f->out);
		assert_true(used <= f->npending);
		memmove(f->pending, f->pending + used, f->npending - used);
		f->npending -= used;
		if (rc != MC_FEED_PAUSE)
			return rc;
	}
}

#define PUSH(s) push((s), strlen(s))

/* The reply bytes so far must be exactly 'expect' (then cleared). */
static void expect_out_n(const char *expect, size_t n)
{
	struct mc_buf *out = &T.mf->out;
	bool same = out->len == n && (n == 0 || memcmp(out->data, expect, n) == 0);
	if (!same)
		fprintf(stderr, "expected (%zu): '%.*s'\ngot (%zu): '%.*s'\n", n,
			(int)n, expect, out->len, (int)out->len,
			out->data ? out->data : "");
	assert_true(same);
	out->len = 0;
}
#define EXPECT_OUT(s) expect_out_n((s), strlen(s))

/* Submission i went to 'peer' and was exactly 'req'. */
static void expect_sub_n(int i, const char *peer, const char *req, size_t n)
{
	assert_true(i < T.nsubs);
	if (T.subs[i].len != n || memcmp(T.subs[i].req, req, n) != 0)
		fprintf(stderr, "expected request '%.*s', got '%.*s'\n", (int)n, req,
			(int)T.subs[i].len, T.subs[i].req);
	assert_int_equal(T.subs[i].len, n);
	assert_memory_equal(T.subs[i].req, req, n);
	assert_string_equal(T.subs[i].peer, peer);
}
#define EXPECT_SUB(i, peer, s) expect_sub_n((i), (peer), (s), strlen(s))

/* fwd_poll's side: complete submission i, then feed like a woken transport. */
static int answer_n(int i, int err, const char *reply, size_t n)
{
	assert_true(i < T.nsubs);
	struct sub *s = &T.subs[i];
	assert_false(s->completed);
	assert_false(s->cancelled);
	int woke = T.woke;
	s->completed = true;
	s->done(s->arg, err, reply, n);
	assert_int_equal(T.woke, woke + 1);
	return push("", 0);
}
#define ANSWER(i, s) answer_n((i), 0, (s), strlen(s))

/* Completes submission i when the session is to go on waiting (it sent
 * its next request from the callback): no wake-up. */
static void answer_no_wake(int i, int err, const char *reply)
{
	assert_true(i < T.nsubs);
	struct sub *s = &T.subs[i];
	int woke = T.woke;
	s->completed = true;
	s->done(s->arg, err, reply, reply ? strlen(reply) : 0);
	assert_int_equal(T.woke, woke);
}
#define FAIL(i, err) answer_n((i), (err), NULL, 0)

/* ---- text ----------------------------------------------------------------- */

static void test_text_get_forwarded(void **state)
{
	(void)state;
	assert_int_equal(PUSH("get rk\r\n"), MC_FEED_WAIT);
	EXPECT_OUT("");
	EXPECT_SUB(0, "127.0.0.1:1", "mg rk v f\r\n");
	assert_int_equal(ANSWER(0, "VA 5 f7\r\nhello\r\n"), MC_FEED_MORE);
	EXPECT_OUT("VALUE rk 7 5\r\nhello\r\nEND\r\n");

	/* gets asks for the cas; a miss is just END */
	assert_int_equal(PUSH("gets rk\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(1, "127.0.0.1:1", "mg rk v f c\r\n");
	assert_int_equal(ANSWER(1, "VA 2 f0 c99\r\nhi\r\n"), MC_FEED_MORE);
	EXPECT_OUT("VALUE rk 0 2 99\r\nhi\r\nEND\r\n");
	assert_int_equal(PUSH("get rk\r\n"), MC_FEED_WAIT);
	assert_int_equal(ANSWER(2, "EN\r\n"), MC_FEED_MORE);
	EXPECT_OUT("END\r\n");

	/* gat passes the client's exptime through */
	assert_int_equal(PUSH("gats -1 rk\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(3, "127.0.0.1:1", "mg rk v f c T-1\r\n");
	assert_int_equal(ANSWER(3, "VA 1 f3 c5\r\nx\r\n"), MC_FEED_MORE);
	EXPECT_OUT("VALUE rk 3 1 5\r\nx\r\nEND\r\n");
	assert_int_equal(T.mf->session->w->stats.cmd_forward_text, 4);
}

static void test_text_multiget_mixed(void **state)
{
	(void)state;
	assert_int_equal(PUSH("set a 1 0 2\r\nAA\r\nset c 2 0 2\r\nCC\r\n"), MC_FEED_MORE);
	EXPECT_OUT("STORED\r\nSTORED\r\n");

	/* local a, remote rb (miss), local c, remote rd, local x (miss) */
	assert_int_equal(PUSH("get a rb c rd x\r\n"), MC_FEED_WAIT);
	EXPECT_OUT("VALUE a 1 2\r\nAA\r\n");
	EXPECT_SUB(0, "127.0.0.1:1", "mg rb v f\r\n");
	/* still waiting: nothing is taken, nothing is written */
	assert_int_equal(PUSH("get c\r\n"), MC_FEED_WAIT);
	EXPECT_OUT("");
	assert_int_equal(T.nsubs, 1);

	assert_int_equal(ANSWER(0, "EN\r\n"), MC_FEED_WAIT);
	EXPECT_OUT("VALUE c 2 2\r\nCC\r\n");
	EXPECT_SUB(1, "127.0.0.1:1", "mg rd v f\r\n");
	/* END once, after the last key; then the pipelined get runs */
	assert_int_equal(ANSWER(1, "VA 3 f4\r\nDDD\r\n"), MC_FEED_MORE);
	EXPECT_OUT("VALUE rd 4 3\r\nDDD\r\nEND\r\nVALUE c 2 2\r\nCC\r\nEND\r\n");
	assert_int_equal(T.mf->npending, 0);
}

static void test_text_store_forwarded(void **state)
{
	(void)state;
	assert_int_equal(PUSH("set rk 5 0 3\r\nabc\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(0, "127.0.0.1:1", "ms rk 3 F5 T0 MS\r\nabc\r\n");
	assert_int_equal(ANSWER(0, "HD\r\n"), MC_FEED_MORE);
	EXPECT_OUT("STORED\r\n");
	/* the value was not kept here */
	struct cache_thread *ct = mc_worker_cache_thread(T.mf->worker);
	assert_null(cache_get(ct, "rk", 2, cache_hash("rk", 2), NULL, NULL));

	/* the value may arrive in pieces */
	assert_int_equal(PUSH("cas rk 0 100 2 77\r\nx"), MC_FEED_MORE);
	assert_int_equal(T.nsubs, 1);
	assert_int_equal(PUSH("y\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(1, "127.0.0.1:1", "ms rk 2 F0 T100 MS C77\r\nxy\r\n");
	assert_int_equal(ANSWER(1, "EX\r\n"), MC_FEED_MORE);
	EXPECT_OUT("EXISTS\r\n");

	const struct { const char *req, *meta, *ans, *out; } cases[] = {
		{ "add rk 1 -1 1\r\nx\r\n", "ms rk 1 F1 T-1 ME\r\nx\r\n", "NS\r\n", "NOT_STORED\r\n" },
		{ "replace rk 0 0 1\r\nx\r\n", "ms rk 1 F0 T0 MR\r\nx\r\n", "NS\r\n", "NOT_STORED\r\n" },
		{ "append rk 0 0 1\r\nx\r\n", "ms rk 1 F0 T0 MA\r\nx\r\n", "HD\r\n", "STORED\r\n" },
		{ "prepend rk 0 0 1\r\nx\r\n", "ms rk 1 F0 T0 MP\r\nx\r\n", "NS\r\n", "NOT_STORED\r\n" },
		{ "cas rk 0 0 1 5\r\nx\r\n", "ms rk 1 F0 T0 MS C5\r\nx\r\n", "NF\r\n", "NOT_FOUND\r\n" },
		{ "set rk 0 0 1\r\nx\r\n", "ms rk 1 F0 T0 MS\r\nx\r\n",
		  "SERVER_ERROR out of memory storing object\r\n",
		  "SERVER_ERROR out of memory storing object\r\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = T.nsubs;
		assert_int_equal(PUSH(cases[i].req), MC_FEED_WAIT);
		EXPECT_SUB(n, "127.0.0.1:1", cases[i].meta);
		assert_int_equal(ANSWER(n, cases[i].ans), MC_FEED_MORE);
		EXPECT_OUT(cases[i].out);
	}
}

/* A text key with a control byte goes base64: the data length right after
 * the key, 'b' after it; a request line the owner could not read whole is
 * refused here instead of closing the shared link. */
static void test_text_store_b64_and_long_line(void **state)
{
	(void)state;
	assert_int_equal(PUSH("set r\tk 3 0 9\r\nflush_all\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(0, "127.0.0.1:1", "ms cglr 9 b F3 T0 MS\r\nflush_all\r\n");
	assert_int_equal(ANSWER(0, "HD\r\n"), MC_FEED_MORE);
	EXPECT_OUT("STORED\r\n");

	char line[4096];
	int n = snprintf(line, sizeof(line), "mg rk v k");
	while (n < 3000)
		line[n++] = 'z';
	memcpy(line + n, "\r\n", 3);
	assert_int_equal(PUSH(line), MC_FEED_MORE);
	EXPECT_OUT("SERVER_ERROR forwarding to n2 failed: request line too long\r\n");
	assert_int_equal(T.nsubs, 1);
}

static void test_text_noreply(void **state)
{
	(void)state;
	/* forwarded anyway; the answer is dropped; the next request waits
	 * for it so replies stay in order */
	assert_int_equal(PUSH("set rk 0 0 1 noreply\r\nx\r\nget a\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(0, "127.0.0.1:1", "ms rk 1 F0 T0 MS\r\nx\r\n");
	EXPECT_OUT("");
	assert_int_equal(ANSWER(0, "NS\r\n"), MC_FEED_MORE);
	EXPECT_OUT("END\r\n");

	assert_int_equal(PUSH("delete rk noreply\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(1, "127.0.0.1:1", "md rk\r\n");
	assert_int_equal(ANSWER(1, "NF\r\n"), MC_FEED_MORE);
	EXPECT_OUT("");
	/* a failure is silent too (text noreply hides errors) */
	assert_int_equal(PUSH("incr rk 1 noreply\r\n"), MC_FEED_WAIT);
	assert_int_equal(FAIL(2, -ETIMEDOUT), MC_FEED_MORE);
	EXPECT_OUT("");
}

static void test_text_other_commands(void **state)
{
	(void)state;
	const struct { const char *req, *meta, *ans, *out; } cases[] = {
		{ "delete rk\r\n", "md rk\r\n", "HD\r\n", "DELETED\r\n" },
		{ "delete rk 0\r\n", "md rk\r\n", "NF\r\n", "NOT_FOUND\r\n" },
		{ "incr rk 5\r\n", "ma rk D5 MI v\r\n", "VA 2\r\n15\r\n", "15\r\n" },
		{ "decr rk 18446744073709551615\r\n", "ma rk D18446744073709551615 MD v\r\n",
		  "NF\r\n", "NOT_FOUND\r\n" },
		{ "incr rk 1\r\n", "ma rk D1 MI v\r\n",
		  "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
		  "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n" },
		{ "touch rk 10\r\n", "mg rk T10\r\n", "HD\r\n", "TOUCHED\r\n" },
		{ "touch rk 10\r\n", "mg rk T10\r\n", "EN\r\n", "NOT_FOUND\r\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = T.nsubs;
		assert_int_equal(PUSH(cases[i].req), MC_FEED_WAIT);
		EXPECT_SUB(n, "127.0.0.1:1", cases[i].meta);
		assert_int_equal(ANSWER(n, cases[i].ans), MC_FEED_MORE);
		EXPECT_OUT(cases[i].out);
	}
	/* not keyed, or a bad request: answered here, nothing forwarded */
	int n = T.nsubs;
	assert_int_equal(PUSH("incr rk x\r\nversion\r\nflush_all\r\n"), MC_FEED_MORE);
	EXPECT_OUT("CLIENT_ERROR invalid numeric delta argument\r\nVERSION "
		   MC_VERSION_STRING "\r\nOK\r\n");
	assert_int_equal(T.nsubs, n);
}

static void test_text_errors(void **state)
{
	(void)state;
	/* the owner does not answer */
	assert_int_equal(PUSH("get rk\r\n"), MC_FEED_WAIT);
	assert_int_equal(FAIL(0, -ETIMEDOUT), MC_FEED_MORE);
	EXPECT_OUT("SERVER_ERROR forwarding to n2 failed: timeout\r\n");

	/* refused at once: answered without waiting */
	T.fail_next = -ENOBUFS;
	assert_int_equal(PUSH("delete rk\r\n"), MC_FEED_MORE);
	EXPECT_OUT("SERVER_ERROR forwarding to n2 failed: too many requests queued\r\n");

	/* a multi-get ends at the failed key: its error instead of the rest
	 * and END; the connection goes on */
	assert_int_equal(PUSH("set a 0 0 1\r\n1\r\n"), MC_FEED_MORE);
	EXPECT_OUT("STORED\r\n");
	assert_int_equal(PUSH("get a rb a\r\nget a\r\n"), MC_FEED_WAIT);
	EXPECT_OUT("VALUE a 0 1\r\n1\r\n");
	assert_int_equal(FAIL(1, -ECONNREFUSED), MC_FEED_MORE);
	EXPECT_OUT("SERVER_ERROR forwarding to n2 failed: connection refused\r\n"
		   "VALUE a 0 1\r\n1\r\nEND\r\n");

	/* an answer that does not fit the request is an error, not a relay */
	assert_int_equal(PUSH("get rk\r\n"), MC_FEED_WAIT);
	assert_int_equal(ANSWER(2, "HD\r\n"), MC_FEED_MORE);
	EXPECT_OUT("SERVER_ERROR forwarding to n2 failed: bad reply\r\n");
	assert_int_equal(PUSH("set rk 0 0 1\r\nx\r\n"), MC_FEED_WAIT);
	assert_int_equal(ANSWER(3, "VA 9\r\nshort\r\n"), MC_FEED_MORE);
	EXPECT_OUT("SERVER_ERROR forwarding to n2 failed: bad reply\r\n");
	assert_int_equal(T.mf->session->w->stats.forward_errors, 5);
}

static void test_text_pull(void **state)
{
	(void)state;
	/* moving in, absent: pulled from n3, nothing consumed meanwhile */
	assert_int_equal(PUSH("get pk\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(0, "127.0.0.1:2", "mg pk v f t c\r\n");
	assert_int_equal(T.mf->npending, 8);
	EXPECT_OUT("");
	assert_int_equal(ANSWER(0, "VA 3 f4 t0 c5\r\nxyz\r\n"), MC_FEED_MORE);
	assert_int_equal(T.installs, 1);
	assert_true(T.last_pulled);       /* the rerun told the router */
	EXPECT_OUT("VALUE pk 4 3\r\nxyz\r\nEND\r\n");
	assert_int_equal(T.mf->npending, 0);
	assert_int_equal(T.fresh_marks, 0);   /* a read makes nothing fresh */

	/* a failed pull is a miss; a pull inside a multi-get resumes there */
	assert_int_equal(PUSH("get a pq\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(1, "127.0.0.1:2", "mg pq v f t c\r\n");
	assert_int_equal(FAIL(1, -ECONNREFUSED), MC_FEED_MORE);
	EXPECT_OUT("END\r\n");
	assert_int_equal(T.mf->session->w->stats.pull_errors, 1);

	/* a write pulls first, then runs here and marks the key fresh */
	assert_int_equal(PUSH("append pz 0 0 1\r\nZ\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(2, "127.0.0.1:2", "mg pz v f t c\r\n");
	assert_int_equal(ANSWER(2, "VA 2 f0 t0 c1\r\nAB\r\n"), MC_FEED_MORE);
	EXPECT_OUT("STORED\r\n");
	assert_int_equal(T.fresh_marks, 1);
	assert_string_equal(T.fresh_key, "pz");
	assert_int_equal(PUSH("get pz\r\n"), MC_FEED_MORE);   /* present now */
	EXPECT_OUT("VALUE pz 0 3\r\nABZ\r\nEND\r\n");

	/* a plain set never pulls; delete and incr of moving-in keys mark */
	assert_int_equal(PUSH("set py 0 0 1\r\nQ\r\ndelete mk\r\nincr mk 1\r\n"),
			 MC_FEED_MORE);
	EXPECT_OUT("STORED\r\nNOT_FOUND\r\nNOT_FOUND\r\n");
	assert_int_equal(T.nsubs, 3);
	assert_int_equal(T.fresh_marks, 4);
	assert_string_equal(T.fresh_key, "mk");
}

static void test_text_wait_and_destroy(void **state)
{
	(void)state;
	assert_int_equal(PUSH("get rk\r\n"), MC_FEED_WAIT);
	/* feeding a waiting session takes nothing, writes nothing */
	size_t used = 99;
	struct mc_buf out;
	mc_buf_init(&out);
	assert_int_equal(mc_session_feed(T.mf->session, "get a\r\n", 7, &used, &out),
			 MC_FEED_WAIT);
	assert_int_equal(used, 0);
	assert_int_equal(out.len, 0);
	mc_buf_deinit(&out);
	/* the connection closes while the request is out: cancelled */
	mc_session_destroy(&T.mf->session);
	assert_true(T.subs[0].cancelled);
	assert_null(T.mf->session);
	T.mf->session = mc_session_create(T.mf->worker);
	assert_non_null(T.mf->session);
}

static void test_peer_sessions(void **state)
{
	(void)state;
	assert_int_equal(PUSH("dpc_peer n1 fwd\r\n"), MC_FEED_MORE);
	EXPECT_OUT("HD\r\n");
	/* never forwarded: the owner-to-be answers from what it has */
	assert_int_equal(PUSH("get rk\r\nset rk 0 0 1\r\nx\r\nmg rk v\r\n"), MC_FEED_MORE);
	EXPECT_OUT("END\r\nSTORED\r\nVA 1\r\nx\r\n");
	assert_int_equal(T.nsubs, 0);
	assert_true(T.last_peer);
	/* but still pulls */
	assert_int_equal(PUSH("get pk\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(0, "127.0.0.1:2", "mg pk v f t c\r\n");
	assert_int_equal(ANSWER(0, "EN\r\n"), MC_FEED_MORE);
	EXPECT_OUT("END\r\n");
	assert_int_equal(T.last_from, CLUSTER_FROM_PEER);
	assert_true(T.last_final_hop);     /* pulls go on 'final' links */
	/* a 'fwd' peer's request may go one hop further, on a final link */
	assert_int_equal(PUSH("get sk\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(1, "127.0.0.1:4", "mg sk v f\r\n");
	assert_true(T.last_final_hop);
	assert_int_equal(ANSWER(1, "VA 1 f0\r\nz\r\n"), MC_FEED_MORE);
	EXPECT_OUT("VALUE sk 0 1\r\nz\r\nEND\r\n");

	assert_int_equal(PUSH("dpc_peer n1\r\ndpc_peer n1 other\r\n"), MC_FEED_MORE);
	EXPECT_OUT("CLIENT_ERROR bad command line format\r\n"
		   "CLIENT_ERROR bad command line format\r\n");
	assert_int_equal(T.mf->session->w->stats.peer_hellos, 1);
}

/* A 250-byte binary key is 336 base64 characters: a client's session
 * refuses tokens over 250 as memcached does, a peer session (binary keys
 * travel between nodes that way) takes them; a decoded key over 250 bytes
 * is refused there, the value swallowed so the link stays in sync. */
static void test_peer_long_base64_keys(void **state)
{
	(void)state;
	static const char k250[] = "ICcuNTxDSlFYX2ZtdHuCiZCXnqWss7rByM/W3eTr8vkABw4VHCMqMTg/Rk1UW2JpcHd+hYyTmqGor7a9xMvS2eDn7vX8AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dzj6vH4/wYNFBsiKTA3PkVMU1phaG92fYSLkpmgp661vMPK0djf5u30+wIJEBceJSwzOkFIT1ZdZGtyeYCHjpWco6qxuL/GzdTb4unw9/4FDBMaISgvNj1ES1JZYGdudXyDipGYn6attLvCydDX3uXs8/oBCA8WHSQrMjlAR05VXGNqcXh/ho2Um6KpsLe+xczT2uHo7w==";
	static const char k251[] = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";
	char req[2048];

	snprintf(req, sizeof(req), "mg %s b v\r\n", k250);
	assert_int_equal(PUSH(req), MC_FEED_MORE);
	EXPECT_OUT("CLIENT_ERROR bad command line format\r\n");
	assert_int_equal(PUSH("dpc_peer n1 final\r\n"), MC_FEED_MORE);
	EXPECT_OUT("HD\r\n");
	snprintf(req, sizeof(req),
		 "ms %s 2 b\r\nhi\r\nmg %s b v\r\nmd %s b q\r\nmn\r\n",
		 k250, k250, k250);
	assert_int_equal(PUSH(req), MC_FEED_MORE);
	EXPECT_OUT("HD\r\nVA 2\r\nhi\r\nMN\r\n");
	snprintf(req, sizeof(req), "ms %s 7 b\r\nversion\r\nmn\r\n", k251);
	assert_int_equal(PUSH(req), MC_FEED_MORE);
	EXPECT_OUT("CLIENT_ERROR error decoding key\r\nMN\r\n");
}

/* A 'final' peer session: the router hears it, and a client's request
 * forwarded from a plain session goes out on a 'fwd' link. */
static void test_final_role(void **state)
{
	(void)state;
	assert_int_equal(PUSH("get rk\r\n"), MC_FEED_WAIT);
	assert_false(T.last_final_hop);
	assert_int_equal(T.last_from, CLUSTER_FROM_CLIENT);
	assert_int_equal(ANSWER(0, "EN\r\n"), MC_FEED_MORE);
	EXPECT_OUT("END\r\n");
	assert_int_equal(PUSH("dpc_peer n1 final\r\n"), MC_FEED_MORE);
	EXPECT_OUT("HD\r\n");
	assert_int_equal(PUSH("get sk\r\n"), MC_FEED_MORE);
	EXPECT_OUT("END\r\n");
	assert_int_equal(T.last_from, CLUSTER_FROM_PEER_FINAL);
}

static void test_migrate_role(void **state)
{
	(void)state;
	assert_int_equal(PUSH("dpc_peer n1 migrate\r\n"), MC_FEED_MORE);
	EXPECT_OUT("HD\r\n");
	int routes = T.routes;

	/* FRESH here: the stream's add is refused without storing */
	T.fresh_answer = true;
	assert_int_equal(PUSH("ms mk 2 ME O7\r\nhi\r\nmg mk v\r\n"), MC_FEED_MORE);
	EXPECT_OUT("NS O7\r\nEN\r\n");
	/* not fresh: stored; a set is not an add and is never refused */
	T.fresh_answer = false;
	assert_int_equal(PUSH("ms mk 2 ME\r\nhi\r\nmg mk v\r\n"), MC_FEED_MORE);
	EXPECT_OUT("HD\r\nVA 2\r\nhi\r\n");
	T.fresh_answer = true;
	assert_int_equal(PUSH("ms mk 2 MS\r\nho\r\n"), MC_FEED_MORE);
	EXPECT_OUT("HD\r\n");
	/* an add overtaken by a local write between check and store: undone */
	T.fresh_answer = false;
	T.undo_next = true;
	assert_int_equal(PUSH("ms mu 2 ME\r\nhi\r\nmg mu v\r\n"), MC_FEED_MORE);
	EXPECT_OUT("NS\r\nEN\r\n");
	T.fresh_answer = true;
	/* a migrate session is not routed: no pull, no fresh marks */
	T.fresh_answer = false;
	assert_int_equal(PUSH("ms pk 1 ME\r\nv\r\n"), MC_FEED_MORE);
	EXPECT_OUT("HD\r\n");
	assert_int_equal(T.routes, routes);
	assert_int_equal(T.nsubs, 0);
	assert_int_equal(T.fresh_marks, 0);
}

static void test_single_node_unchanged(void **state)
{
	(void)state;
	/* a worker without a cluster: no hello, no routing */
	mc_worker_set_cluster(T.mf->worker, NULL);
	mc_fixture_reconnect(T.mf);
	assert_null(T.mf->session->fwd);
	assert_int_equal(PUSH("dpc_peer n1 fwd\r\nget rk\r\n"), MC_FEED_MORE);
	EXPECT_OUT("ERROR\r\nEND\r\n");
	assert_int_equal(T.routes, 0);
	mc_worker_set_cluster(T.mf->worker, FAKE_CW);
}

/* ---- meta ------------------------------------------------------------------ */

static void test_meta_forwarded(void **state)
{
	(void)state;
	/* q is not sent; the answer is relayed as is */
	assert_int_equal(PUSH("mg rk v k q O123 t\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(0, "127.0.0.1:1", "mg rk v k O123 t\r\n");
	assert_int_equal(ANSWER(0, "VA 2 krk O123 t-1\r\nhi\r\n"), MC_FEED_MORE);
	EXPECT_OUT("VA 2 krk O123 t-1\r\nhi\r\n");
	/* q hides EN for mg */
	assert_int_equal(PUSH("mg rk v q\r\nmn\r\n"), MC_FEED_WAIT);
	assert_int_equal(ANSWER(1, "EN\r\n"), MC_FEED_MORE);
	EXPECT_OUT("MN\r\n");

	/* ms: value forwarded with its line; q hides HD only */
	assert_int_equal(PUSH("ms rk 2 T0 F3 q\r\nhi\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(2, "127.0.0.1:1", "ms rk 2 T0 F3\r\nhi\r\n");
	assert_int_equal(ANSWER(2, "HD\r\n"), MC_FEED_MORE);
	EXPECT_OUT("");
	assert_int_equal(PUSH("ms rk 2 q MS C9\r\nhi\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(3, "127.0.0.1:1", "ms rk 2 MS C9\r\nhi\r\n");
	assert_int_equal(ANSWER(3, "EX\r\n"), MC_FEED_MORE);
	EXPECT_OUT("EX\r\n");

	/* md, ma */
	assert_int_equal(PUSH("md rk q\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(4, "127.0.0.1:1", "md rk\r\n");
	assert_int_equal(ANSWER(4, "HD\r\n"), MC_FEED_MORE);
	EXPECT_OUT("");
	assert_int_equal(PUSH("md rk q O1\r\n"), MC_FEED_WAIT);
	assert_int_equal(ANSWER(5, "NF O1\r\n"), MC_FEED_MORE);
	EXPECT_OUT("NF O1\r\n");
	assert_int_equal(PUSH("ma rk v D3 q\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(6, "127.0.0.1:1", "ma rk v D3\r\n");
	assert_int_equal(ANSWER(6, "VA 1\r\n3\r\n"), MC_FEED_MORE);
	EXPECT_OUT("");
	assert_int_equal(PUSH("ma rk\r\n"), MC_FEED_WAIT);
	assert_int_equal(ANSWER(7, "NF\r\n"), MC_FEED_MORE);
	EXPECT_OUT("NF\r\n");

	/* base64 keys route on the decoded key: "cms=" is "rk", "YQ==" is "a" */
	assert_int_equal(PUSH("mg cms= b v\r\nmg YQ== b v\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(8, "127.0.0.1:1", "mg cms= b v\r\n");
	assert_int_equal(ANSWER(8, "EN\r\n"), MC_FEED_MORE);
	EXPECT_OUT("EN\r\nEN\r\n");
	assert_int_equal(T.nsubs, 9);

	/* errors are never quiet in meta */
	assert_int_equal(PUSH("md rk q\r\n"), MC_FEED_WAIT);
	assert_int_equal(FAIL(9, -ETIMEDOUT), MC_FEED_MORE);
	EXPECT_OUT("SERVER_ERROR forwarding to n2 failed: timeout\r\n");
	/* parse errors stay local; mn and me are never forwarded */
	assert_int_equal(PUSH("mg rk zz\r\nme rk\r\n"), MC_FEED_MORE);
	EXPECT_OUT("CLIENT_ERROR invalid flag\r\nEN\r\n");
	assert_int_equal(T.nsubs, 10);
	assert_int_equal(T.mf->session->w->stats.cmd_forward_meta, 10);
}

static void test_meta_pull(void **state)
{
	(void)state;
	assert_int_equal(PUSH("mg pk v f\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(0, "127.0.0.1:2", "mg pk v f t c\r\n");
	assert_int_equal(ANSWER(0, "VA 1 f2 t0 c3\r\nQ\r\n"), MC_FEED_MORE);
	EXPECT_OUT("VA 1 f2\r\nQ\r\n");
	/* an ms add on a moving-in key: pull (absent), then NS here */
	assert_int_equal(PUSH("ms px 1 ME\r\nA\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(1, "127.0.0.1:2", "mg px v f t c\r\n");
	assert_int_equal(ANSWER(1, "VA 1 f0 t0 c3\r\nB\r\n"), MC_FEED_MORE);
	EXPECT_OUT("NS\r\n");
	assert_int_equal(T.fresh_marks, 1);
	assert_string_equal(T.fresh_key, "px");
}

/* ---- binary ---------------------------------------------------------------- */

/* A binary request: header, extras, key, value. Returns its length. */
static size_t bin_req(unsigned char *buf, uint8_t op, const void *ext,
		      uint8_t extlen, const char *key, const char *val,
		      uint32_t opaque, uint64_t cas)
{
	size_t nkey = strlen(key), nval = val ? strlen(val) : 0;
	uint32_t body = (uint32_t)(extlen + nkey + nval);
	memset(buf, 0, 24);
	buf[0] = 0x80;
	buf[1] = op;
	buf[2] = (unsigned char)(nkey >> 8);
	buf[3] = (unsigned char)nkey;
	buf[4] = extlen;
	for (int i = 0; i < 4; i++) {
		buf[8 + i] = (unsigned char)(body >> (24 - 8 * i));
		buf[12 + i] = (unsigned char)(opaque >> (24 - 8 * i));
	}
	for (int i = 0; i < 8; i++)
		buf[16 + i] = (unsigned char)(cas >> (56 - 8 * i));
	if (extlen)
		memcpy(buf + 24, ext, extlen);
	memcpy(buf + 24 + extlen, key, nkey);
	if (nval)
		memcpy(buf + 24 + extlen + nkey, val, nval);
	return 24 + body;
}

/* Checks the response at out[*at]: its header fields and body; advances. */
static void expect_bin(size_t *at, uint8_t op, uint16_t status, uint8_t extlen,
		       const char *key, const void *body, size_t nbody,
		       uint32_t opaque, uint64_t cas)
{
	const unsigned char *p = (const unsigned char *)T.mf->out.data + *at;
	size_t nkey = key ? strlen(key) : 0;
	assert_true(T.mf->out.len >= *at + 24);
	assert_int_equal(p[0], 0x81);
	assert_int_equal(p[1], op);
	assert_int_equal((p[2] << 8) | p[3], nkey);
	assert_int_equal(p[4], extlen);
	assert_int_equal((p[6] << 8) | p[7], status);
	uint32_t bl = (uint32_t)p[8] << 24 | p[9] << 16 | p[10] << 8 | p[11];
	assert_int_equal(bl, extlen + nkey + nbody);
	uint32_t op_ = (uint32_t)p[12] << 24 | p[13] << 16 | p[14] << 8 | p[15];
	assert_int_equal(op_, opaque);
	uint64_t c = 0;
	for (int i = 0; i < 8; i++)
		c = c << 8 | p[16 + i];
	assert_true(c == cas);
	assert_true(T.mf->out.len >= *at + 24 + bl);
	if (nkey)
		assert_memory_equal(p + 24 + extlen, key, nkey);
	if (nbody)
		assert_memory_equal(p + 24 + extlen + nkey, body, nbody);
	*at += 24 + bl;
}

static void expect_bin_end(size_t at)
{
	assert_int_equal(T.mf->out.len, at);
	T.mf->out.len = 0;
}

static void test_binary_get(void **state)
{
	(void)state;
	unsigned char b[512];
	size_t n, at = 0;
	const unsigned char flags9[4] = { 0, 0, 0, 9 };

	n = bin_req(b, MC_BIN_GET, NULL, 0, "rk", NULL, 0x11223344, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	EXPECT_SUB(0, "127.0.0.1:1", "mg rk v f c\r\n");
	assert_int_equal(ANSWER(0, "VA 3 f9 c42\r\nabc\r\n"), MC_FEED_MORE);
	expect_bin(&at, MC_BIN_GET, 0, 4, NULL, "abc", 3, 0x11223344, 42);
	assert_memory_equal(T.mf->out.data + 24, flags9, 4);
	expect_bin_end(at);

	/* GETK carries the key, on a hit and on a miss */
	at = 0;
	n = bin_req(b, MC_BIN_GETK, NULL, 0, "rk", NULL, 7, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	assert_int_equal(ANSWER(1, "VA 3 f9 c42\r\nabc\r\n"), MC_FEED_MORE);
	expect_bin(&at, MC_BIN_GETK, 0, 4, "rk", "abc", 3, 7, 42);
	n = bin_req(b, MC_BIN_GETK, NULL, 0, "rk", NULL, 8, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	assert_int_equal(ANSWER(2, "EN\r\n"), MC_FEED_MORE);
	expect_bin(&at, MC_BIN_GETK, MC_BIN_KEY_ENOENT, 0, "rk", NULL, 0, 8, 0);
	n = bin_req(b, MC_BIN_GET, NULL, 0, "rk", NULL, 9, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	assert_int_equal(ANSWER(3, "EN\r\n"), MC_FEED_MORE);
	expect_bin(&at, MC_BIN_GET, MC_BIN_KEY_ENOENT, 0, NULL, "Not found", 9, 9, 0);
	expect_bin_end(at);

	/* GETQ: a miss says nothing; NOOP after it answers */
	at = 0;
	n = bin_req(b, MC_BIN_GETQ, NULL, 0, "rk", NULL, 10, 0);
	n += bin_req(b + n, MC_BIN_NOOP, NULL, 0, "", NULL, 11, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	assert_int_equal(ANSWER(4, "EN\r\n"), MC_FEED_MORE);
	expect_bin(&at, MC_BIN_NOOP, 0, 0, NULL, NULL, 0, 11, 0);
	expect_bin_end(at);

	/* GAT: exptime through T; TOUCH: flags and cas, no value */
	at = 0;
	const unsigned char exp100[4] = { 0, 0, 0, 100 };
	n = bin_req(b, MC_BIN_GATK, exp100, 4, "rk", NULL, 12, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	EXPECT_SUB(5, "127.0.0.1:1", "mg rk v f c T100\r\n");
	assert_int_equal(ANSWER(5, "VA 1 f9 c5\r\nz\r\n"), MC_FEED_MORE);
	expect_bin(&at, MC_BIN_GATK, 0, 4, "rk", "z", 1, 12, 5);
	n = bin_req(b, MC_BIN_TOUCH, exp100, 4, "rk", NULL, 13, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	EXPECT_SUB(6, "127.0.0.1:1", "mg rk f c T100\r\n");
	assert_int_equal(ANSWER(6, "HD f9 c6\r\n"), MC_FEED_MORE);
	expect_bin(&at, MC_BIN_TOUCH, 0, 4, NULL, NULL, 0, 13, 6);
	assert_memory_equal(T.mf->out.data + at - 4, flags9, 4);
	expect_bin_end(at);

	/* a key a meta token cannot carry goes in base64 */
	n = bin_req(b, MC_BIN_GET, NULL, 0, "r k", NULL, 14, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	EXPECT_SUB(7, "127.0.0.1:1", "mg ciBr b v f c\r\n");
	assert_int_equal(ANSWER(7, "EN\r\n"), MC_FEED_MORE);
	T.mf->out.len = 0;
	assert_int_equal(T.mf->session->w->stats.cmd_forward_binary, 8);
}

static void test_binary_store(void **state)
{
	(void)state;
	unsigned char b[512];
	size_t n, at = 0;
	const unsigned char ext[8] = { 0, 0, 0, 1, 0, 0, 0, 0 };

	n = bin_req(b, MC_BIN_SET, ext, 8, "rk", "xy", 21, 0);
	/* in two pieces: the value streams in */
	assert_int_equal(push((char *)b, n - 1), MC_FEED_MORE);
	assert_int_equal(T.nsubs, 0);
	assert_int_equal(push((char *)b + n - 1, 1), MC_FEED_WAIT);
	EXPECT_SUB(0, "127.0.0.1:1", "ms rk 2 c F1 T0 MS\r\nxy\r\n");
	assert_int_equal(ANSWER(0, "HD c7\r\n"), MC_FEED_MORE);
	expect_bin(&at, MC_BIN_SET, 0, 0, NULL, NULL, 0, 21, 7);
	expect_bin_end(at);

	/* SETQ: success is silent; ADD that fails is EEXISTS; a CAS */
	at = 0;
	n = bin_req(b, MC_BIN_SETQ, ext, 8, "rk", "q", 22, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	assert_int_equal(ANSWER(1, "HD c8\r\n"), MC_FEED_MORE);
	n = bin_req(b, MC_BIN_ADD, ext, 8, "rk", "q", 23, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	EXPECT_SUB(2, "127.0.0.1:1", "ms rk 1 c F1 T0 ME\r\nq\r\n");
	assert_int_equal(ANSWER(2, "NS\r\n"), MC_FEED_MORE);
	expect_bin(&at, MC_BIN_ADD, MC_BIN_KEY_EEXISTS, 0, NULL,
		   "Data exists for key.", 20, 23, 0);
	n = bin_req(b, MC_BIN_REPLACE, ext, 8, "rk", "q", 24, 55);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	EXPECT_SUB(3, "127.0.0.1:1", "ms rk 1 c F1 T0 MS C55\r\nq\r\n");
	assert_int_equal(ANSWER(3, "EX\r\n"), MC_FEED_MORE);
	expect_bin(&at, MC_BIN_REPLACE, MC_BIN_KEY_EEXISTS, 0, NULL,
		   "Data exists for key.", 20, 24, 0);
	n = bin_req(b, MC_BIN_APPENDQ, NULL, 0, "rk", "zz", 25, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	EXPECT_SUB(4, "127.0.0.1:1", "ms rk 2 c MA\r\nzz\r\n");
	assert_int_equal(ANSWER(4, "NS\r\n"), MC_FEED_MORE);
	expect_bin(&at, MC_BIN_APPENDQ, MC_BIN_NOT_STORED, 0, NULL,
		   "Not stored.", 11, 25, 0);
	expect_bin_end(at);

	/* A key meta cannot carry as text goes base64, and 'b' comes after
	 * the data length ("ms <key> <datalen> <flags>"): before it, the owner
	 * would read 'b' as the length and run the value as commands. */
	at = 0;
	n = bin_req(b, MC_BIN_SET, ext, 8, "r k", "flush_all", 26, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	EXPECT_SUB(5, "127.0.0.1:1", "ms ciBr 9 b c F1 T0 MS\r\nflush_all\r\n");
	assert_int_equal(ANSWER(5, "HD c9\r\n"), MC_FEED_MORE);
	expect_bin(&at, MC_BIN_SET, 0, 0, NULL, NULL, 0, 26, 9);
	expect_bin_end(at);
}

static void test_binary_delete_arith(void **state)
{
	(void)state;
	unsigned char b[512];
	size_t n, at = 0;

	n = bin_req(b, MC_BIN_DELETE, NULL, 0, "rk", NULL, 31, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	EXPECT_SUB(0, "127.0.0.1:1", "md rk\r\n");
	assert_int_equal(ANSWER(0, "NF\r\n"), MC_FEED_MORE);
	expect_bin(&at, MC_BIN_DELETE, MC_BIN_KEY_ENOENT, 0, NULL, "Not found", 9, 31, 0);
	n = bin_req(b, MC_BIN_DELETEQ, NULL, 0, "rk", NULL, 32, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	assert_int_equal(ANSWER(1, "HD\r\n"), MC_FEED_MORE);
	expect_bin_end(at);

	/* incr with create: N and J; the 8-byte value and the cas back */
	unsigned char ext[20] = { 0 };
	ext[7] = 5;          /* delta */
	ext[15] = 10;        /* initial */
	n = bin_req(b, MC_BIN_INCREMENT, ext, 20, "rk", NULL, 33, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	EXPECT_SUB(2, "127.0.0.1:1", "ma rk D5 MI v c N0 J10\r\n");
	assert_int_equal(ANSWER(2, "VA 2 c3\r\n15\r\n"), MC_FEED_MORE);
	at = 0;
	const unsigned char v15[8] = { 0, 0, 0, 0, 0, 0, 0, 15 };
	expect_bin(&at, MC_BIN_INCREMENT, 0, 0, NULL, v15, 8, 33, 3);
	expect_bin_end(at);
	/* 0xffffffff: no create */
	memset(ext + 16, 0xff, 4);
	n = bin_req(b, MC_BIN_DECREMENT, ext, 20, "rk", NULL, 34, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	EXPECT_SUB(3, "127.0.0.1:1", "ma rk D5 MD v c\r\n");
	assert_int_equal(ANSWER(3, "CLIENT_ERROR cannot increment or decrement "
				   "non-numeric value\r\n"), MC_FEED_MORE);
	at = 0;
	expect_bin(&at, MC_BIN_DECREMENT, MC_BIN_DELTA_BADVAL, 0, NULL,
		   "Non-numeric server-side value for incr or decr", 46, 34, 0);
	expect_bin_end(at);

	/* the owner is down: temporary failure, also for a quiet opcode */
	n = bin_req(b, MC_BIN_INCREMENTQ, ext, 20, "rk", NULL, 35, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	assert_int_equal(FAIL(4, -ECONNREFUSED), MC_FEED_MORE);
	at = 0;
	static const char msg[] = "forwarding to n2 failed: connection refused";
	expect_bin(&at, MC_BIN_INCREMENTQ, MC_BIN_ETMPFAIL, 0, NULL, msg,
		   sizeof(msg) - 1, 35, 0);
	expect_bin_end(at);
}

static void test_binary_pull_and_cancel(void **state)
{
	(void)state;
	unsigned char b[512];
	size_t n, at = 0;

	n = bin_req(b, MC_BIN_GET, NULL, 0, "pk", NULL, 41, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	EXPECT_SUB(0, "127.0.0.1:2", "mg pk v f t c\r\n");
	assert_int_equal(T.mf->npending, n);
	assert_int_equal(ANSWER(0, "VA 2 f1 t0 c9\r\nPP\r\n"), MC_FEED_MORE);
	const unsigned char *p = (const unsigned char *)T.mf->out.data;
	assert_true(T.mf->out.len == 30);
	uint64_t cas = 0;
	for (int i = 0; i < 8; i++)
		cas = cas << 8 | p[16 + i];
	expect_bin(&at, MC_BIN_GET, 0, 4, NULL, "PP", 2, 41, cas);
	assert_int_equal(p[27], 1);      /* flags */
	expect_bin_end(at);

	/* waiting, then the connection goes away */
	n = bin_req(b, MC_BIN_DELETE, NULL, 0, "rk", NULL, 42, 0);
	assert_int_equal(push((char *)b, n), MC_FEED_WAIT);
	mc_session_destroy(&T.mf->session);
	assert_true(T.subs[1].cancelled);
	T.mf->session = mc_session_create(T.mf->worker);
	assert_non_null(T.mf->session);
}

/* ---- UDP ------------------------------------------------------------------- */

static void test_udp_refused(void **state)
{
	(void)state;
	struct mc_buf out;
	mc_buf_init(&out);

	static const char refused[] = "SERVER_ERROR key not served by this node\r\n";
	assert_int_equal(mc_text_run_buffer(T.mf->worker, "get rk\r\n", 8, &out), 0);
	assert_int_equal(out.len, sizeof(refused) - 1);
	assert_memory_equal(out.data, refused, out.len);
	out.len = 0;
	assert_int_equal(mc_text_run_buffer(T.mf->worker, "set rk 0 0 1\r\nx\r\n",
					    17, &out), 0);
	assert_memory_equal(out.data, refused, out.len);
	out.len = 0;
	/* a pull cannot wait on UDP: the key is read here */
	assert_int_equal(mc_text_run_buffer(T.mf->worker, "get pk\r\n", 8, &out), 0);
	assert_int_equal(out.len, 5);
	assert_memory_equal(out.data, "END\r\n", 5);
	out.len = 0;

	unsigned char b[128];
	size_t n = bin_req(b, MC_BIN_GET, NULL, 0, "rk", NULL, 1, 0);
	assert_int_equal(mc_binary_run_buffer(T.mf->worker, (char *)b, n, &out), 0);
	assert_true(out.len > 24);
	assert_int_equal(((unsigned char *)out.data)[7], MC_BIN_ETMPFAIL);
	mc_buf_deinit(&out);
	assert_int_equal(T.udp_refused, 3);
	assert_int_equal(T.nsubs, 0);
}

/* ---- hot keys --------------------------------------------------------------- */

/* A replica without a valid copy fills it from the owner (the router's
 * generation travels with the pull), then serves it here; a fill that
 * cannot reach the owner is reported with its error, and the read runs. */
static void test_hot_fill(void **state)
{
	(void)state;
	assert_int_equal(PUSH("get hk\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(0, "127.0.0.1:5", "mg hk v f t c\r\n");
	assert_true(T.last_final_hop);
	assert_int_equal(ANSWER(0, "VA 2 f3 t-1 c99\r\nhi\r\n"), MC_FEED_MORE);
	assert_int_equal(T.pull_dones, 1);
	assert_int_equal(T.last_pull_kind, CLUSTER_PULL_FILL);
	assert_int_equal(T.last_pull_gen, 77);
	assert_true(T.last_pulled);
	EXPECT_OUT("VALUE hk 3 2\r\nhi\r\nEND\r\n");

	/* meta and binary reads fill the same way */
	assert_int_equal(PUSH("mg hm v\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(1, "127.0.0.1:5", "mg hm v f t c\r\n");
	assert_int_equal(FAIL(1, -ECONNREFUSED), MC_FEED_MORE);
	assert_int_equal(T.last_pull_err, -ECONNREFUSED);
	EXPECT_OUT("EN\r\n");
	assert_int_equal(T.pull_dones, 2);
	assert_int_equal(T.fresh_marks, 0);     /* reads call no write hook */
}

/* Sync mode at the owner: every replica is blocked in turn, then the write
 * runs, then the write hook (which sends the 'done' invalidations). A
 * replica that fails does not stop the write. */
static void test_hot_sync_block(void **state)
{
	(void)state;
	assert_int_equal(PUSH("set wk 0 0 1\r\nv\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(0, "127.0.0.1:6", "dpc_inv wk block\r\n");
	EXPECT_OUT("");
	answer_no_wake(0, 0, "HD\r\n");
	EXPECT_SUB(1, "127.0.0.1:7", "dpc_inv wk block\r\n");
	assert_int_equal(T.fresh_marks, 0);     /* not written yet */
	EXPECT_OUT("");
	assert_int_equal(ANSWER(1, "HD\r\n"), MC_FEED_MORE);
	EXPECT_OUT("STORED\r\n");
	assert_int_equal(T.fresh_marks, 1);
	assert_string_equal(T.fresh_key, "wk");

	/* a delete, the first replica unreachable */
	assert_int_equal(PUSH("delete wk\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(2, "127.0.0.1:6", "dpc_inv wk block\r\n");
	answer_no_wake(2, -ETIMEDOUT, NULL);
	EXPECT_SUB(3, "127.0.0.1:7", "dpc_inv wk block\r\n");
	assert_int_equal(ANSWER(3, "HD\r\n"), MC_FEED_MORE);
	EXPECT_OUT("DELETED\r\n");
	assert_int_equal(T.fresh_marks, 2);
	assert_int_equal(T.nsubs, 4);

	/* the first send failing at once: on to the next replica */
	T.fail_next = -ENOBUFS;
	assert_int_equal(PUSH("ms wk 1\r\nz\r\n"), MC_FEED_WAIT);
	EXPECT_SUB(4, "127.0.0.1:7", "dpc_inv wk block\r\n");
	assert_int_equal(ANSWER(4, "HD\r\n"), MC_FEED_MORE);
	EXPECT_OUT("HD\r\n");
	assert_int_equal(T.fresh_marks, 3);
}

/* 'dpc_inv' is a peer command: a client gets ERROR; a peer gets HD, with
 * the key decoded from base64 when it says so, and bad lines refused. */
static void test_hot_inval_command(void **state)
{
	(void)state;
	assert_int_equal(PUSH("dpc_inv k1 done\r\n"), MC_FEED_MORE);
	EXPECT_OUT("ERROR\r\n");
	assert_int_equal(T.invalidations, 0);

	assert_int_equal(PUSH("dpc_peer n1 final\r\n"), MC_FEED_MORE);
	EXPECT_OUT("HD\r\n");
	assert_int_equal(PUSH("dpc_inv k1 done\r\n"), MC_FEED_MORE);
	EXPECT_OUT("HD\r\n");
	assert_int_equal(T.invalidations, 1);
	assert_false(T.last_inval_block);
	assert_int_equal(T.inval_nkey, 2);
	assert_memory_equal(T.inval_key, "k1", 2);
	/* "a b\n" in base64 */
	assert_int_equal(PUSH("dpc_inv YSBiCg== block b\r\n"), MC_FEED_MORE);
	EXPECT_OUT("HD\r\n");
	assert_true(T.last_inval_block);
	assert_int_equal(T.inval_nkey, 4);
	assert_memory_equal(T.inval_key, "a b\n", 4);

	assert_int_equal(PUSH("dpc_inv k1 later\r\ndpc_inv k1\r\n"
			      "dpc_inv !!!! done b\r\n"), MC_FEED_MORE);
	EXPECT_OUT("CLIENT_ERROR bad command line format\r\n"
		   "CLIENT_ERROR bad command line format\r\n"
		   "CLIENT_ERROR bad command line format\r\n");
	assert_int_equal(T.invalidations, 2);
}

/* UDP cannot wait: a fill or a sync block is refused like a key owned
 * elsewhere. */
static void test_hot_udp(void **state)
{
	(void)state;
	struct mc_buf out;
	mc_buf_init(&out);
	static const char refused[] = "SERVER_ERROR key not served by this node\r\n";
	assert_int_equal(mc_text_run_buffer(T.mf->worker, "get hk\r\n", 8, &out), 0);
	assert_int_equal(out.len, sizeof(refused) - 1);
	assert_memory_equal(out.data, refused, out.len);
	out.len = 0;
	assert_int_equal(mc_text_run_buffer(T.mf->worker, "set wk 0 0 1\r\nx\r\n",
					    17, &out), 0);
	assert_memory_equal(out.data, refused, out.len);
	mc_buf_deinit(&out);
	assert_int_equal(T.udp_refused, 2);
	assert_int_equal(T.nsubs, 0);
}

static void test_stats_counters(void **state)
{
	(void)state;
	assert_int_equal(PUSH("get rk\r\n"), MC_FEED_WAIT);
	assert_int_equal(ANSWER(0, "EN\r\n"), MC_FEED_MORE);
	T.mf->out.len = 0;
	assert_int_equal(PUSH("stats\r\n"), MC_FEED_MORE);
	char *s = strndup(T.mf->out.data, T.mf->out.len);
	assert_non_null(strstr(s, "STAT cmd_forward_text 1\r\n"));
	assert_non_null(strstr(s, "STAT forward_errors 0\r\n"));
	free(s);
	T.mf->out.len = 0;
}

/* ---- random requests and answers ------------------------------------------ */

/*
 * Random pipelines of requests (text, meta or binary; keys owned here, by
 * n2, or moving in; good and bad lines) split at random points, each wait
 * ended by a random answer (right, wrong for the request, garbage, or a
 * forwarding error), sessions sometimes closed while they wait. Nothing may
 * crash or leak (run it under ASan), and a session waits only while exactly
 * one of its requests is out.
 */
static uint32_t rnd_state = 12345;

static uint32_t rnd(uint32_t n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % n;
}

static const char *const text_reqs[] = {
	"get rk\r\n", "get a rb pc rd\r\n", "gets rk pk\r\n", "gat 10 rk a\r\n",
	"set rk 1 0 3\r\nabc\r\n", "add pk 0 0 1 noreply\r\nx\r\n",
	"cas rk 0 0 1 9\r\nx\r\n", "append mk 0 0 2\r\nxy\r\n",
	"set rk 0 0 2\r\nxyz\r\n", "delete rk\r\n", "delete pk noreply\r\n",
	"incr rk 1\r\n", "decr pk 3\r\n", "touch rk 5\r\n", "touch pk 5\r\n",
	"mg rk v k O1 q\r\n", "mg pk v\r\n", "ms rk 2 T0 q\r\nhi\r\n",
	"ms pk 2 ME\r\nhi\r\n", "md rk q\r\n", "ma rk v\r\n", "ma pk N0 J5\r\n",
	"mn\r\n", "mg cms= b v\r\n", "dpc_peer n9 fwd\r\n", "get\r\n",
	"set rk 0 0 -1\r\n", "bogus\r\n", "get rk\r", "mg rk v zz\r\n",
};

static const char *const answers[] = {
	"HD\r\n", "EN\r\n", "NS\r\n", "EX\r\n", "NF\r\n", "VA 3 f1 c2\r\nabc\r\n",
	"VA 2\r\n12\r\n", "VA 1 f0 t0 c1\r\nQ\r\n", "SERVER_ERROR x\r\n",
	"CLIENT_ERROR y\r\n", "ZZ\r\n", "VA 99\r\nab\r\n", "VA x\r\n", "\r\n",
	"HD f1 c2 O1 krk\r\n", "VA 2 fzz\r\nab\r\n", "VA 2 f1\r\nab\r\n",
};

static const int errs[] = { -ETIMEDOUT, -ECONNREFUSED, -EPROTO, -ECONNRESET };

/* The request out, if any: exactly one while a session waits. */
static struct sub *outstanding(void)
{
	struct sub *found = NULL;
	for (int i = 0; i < T.nsubs; i++) {
		if (!T.subs[i].completed && !T.subs[i].cancelled) {
			assert_null(found);
			found = &T.subs[i];
		}
	}
	return found;
}

/* Completed submissions' slots are reused so the run can go on forever
 * (only between requests: none is out then, so no handle moves). */
static void compact_subs(void)
{
	int j = 0;
	for (int i = 0; i < T.nsubs; i++) {
		if (!T.subs[i].completed && !T.subs[i].cancelled)
			T.subs[j++] = T.subs[i];
		else
			free(T.subs[i].req);
	}
	T.nsubs = j;
}

static size_t random_binary(unsigned char *b)
{
	static const uint8_t ops[] = {
		MC_BIN_GET, MC_BIN_GETQ, MC_BIN_GETK, MC_BIN_GETKQ, MC_BIN_SET,
		MC_BIN_SETQ, MC_BIN_ADD, MC_BIN_REPLACE, MC_BIN_APPEND,
		MC_BIN_PREPENDQ, MC_BIN_DELETE, MC_BIN_DELETEQ, MC_BIN_INCREMENT,
		MC_BIN_DECREMENTQ, MC_BIN_TOUCH, MC_BIN_GAT, MC_BIN_GATKQ, MC_BIN_NOOP,
	};
	static const char *const keys[] = { "rk", "pk", "mk", "a", "r k" };
	uint8_t op = ops[rnd(sizeof(ops))];
	const char *key = op == MC_BIN_NOOP ? "" : keys[rnd(5)];
	unsigned char ext[20] = { 0 };
	uint8_t extlen = 0;
	const char *val = NULL;

	for (int i = 0; i < 20; i++)
		ext[i] = (unsigned char)rnd(4);
	switch (op) {
	case MC_BIN_SET: case MC_BIN_SETQ: case MC_BIN_ADD: case MC_BIN_REPLACE:
		extlen = 8;
		val = "value";
		break;
	case MC_BIN_APPEND: case MC_BIN_PREPENDQ:
		val = "tail";
		break;
	case MC_BIN_INCREMENT: case MC_BIN_DECREMENTQ:
		extlen = 20;
		break;
	case MC_BIN_TOUCH: case MC_BIN_GAT: case MC_BIN_GATKQ:
		extlen = 4;
		break;
	default:
		break;
	}
	return bin_req(b, op, ext, extlen, key, val, rnd(1000), rnd(3));
}

static void test_random(void **state)
{
	(void)state;
	unsigned char buf[4096];

	for (int round = 0; round < 400; round++) {
		mc_fixture_reconnect(T.mf);
		mc_session_set_waker(T.mf->session, waker, &T);
		T.mf->out.len = 0;
		bool binary = rnd(3) == 0;
		for (int r = 0; r < 12 && !T.mf->closed; r++) {
			size_t n;
			if (binary) {
				n = random_binary(buf);
			} else {
				const char *t = text_reqs[rnd(sizeof(text_reqs) / sizeof(text_reqs[0]))];
				n = strlen(t);
				memcpy(buf, t, n);
			}
			/* sometimes in two pieces */
			size_t cut = rnd(2) ? n : rnd((uint32_t)n + 1);
			int rc = push((char *)buf, cut);
			for (;;) {
				if (rc == MC_FEED_CLOSE) {
					T.mf->closed = true;
					break;
				}
				struct sub *o = outstanding();
				if (rc != MC_FEED_WAIT) {
					assert_null(o);
					if (cut == n)
						break;
					rc = push((char *)buf + cut, n - cut);
					cut = n;
					continue;
				}
				assert_non_null(o);
				if (rnd(40) == 0) {
					/* the client goes away while it waits */
					mc_session_destroy(&T.mf->session);
					assert_true(o->cancelled);
					T.mf->session = mc_session_create(T.mf->worker);
					assert_non_null(T.mf->session);
					T.mf->closed = true;
					break;
				}
				o->completed = true;
				int woke = T.woke;
				if (rnd(5) == 0) {
					o->done(o->arg, errs[rnd(4)], NULL, 0);
				} else {
					const char *a = answers[rnd(sizeof(answers) / sizeof(answers[0]))];
					o->done(o->arg, 0, a, strlen(a));
				}
				assert_int_equal(T.woke, woke + 1);
				rc = push("", 0);
			}
			T.mf->out.len = 0;
			compact_subs();
		}
		T.mf->closed = false;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T_(test_text_get_forwarded),
		T_(test_text_multiget_mixed),
		T_(test_text_store_forwarded),
		T_(test_text_noreply),
		T_(test_text_other_commands),
		T_(test_text_errors),
		T_(test_text_pull),
		T_(test_text_wait_and_destroy),
		T_(test_peer_sessions),
		T_(test_final_role),
		T_(test_peer_long_base64_keys),
		T_(test_text_store_b64_and_long_line),
		T_(test_migrate_role),
		T_(test_single_node_unchanged),
		T_(test_meta_forwarded),
		T_(test_meta_pull),
		T_(test_binary_get),
		T_(test_binary_store),
		T_(test_binary_delete_arith),
		T_(test_binary_pull_and_cancel),
		T_(test_udp_refused),
		T_(test_hot_fill),
		T_(test_hot_sync_block),
		T_(test_hot_inval_command),
		T_(test_hot_udp),
		T_(test_stats_counters),
		T_(test_random),
#undef T_
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
