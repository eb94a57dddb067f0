/* STUB: replaced by the TCP implementation (tcp.h). */
#include <stdlib.h>
#include "dataplane/net/tcp.h"
struct tcp_stack { struct tcp_counters c; };
struct tcp_stack *tcp_stack_create(const struct tcp_config *cfg, const struct tcp_io *io_ops, void *io,
				   const struct tcp_app *app_ops, void *app_arg, uint64_t now_us)
{ return calloc(1, sizeof(struct tcp_stack)); }
void tcp_stack_destroy(struct tcp_stack **st) { if (st) { free(*st); *st = NULL; } }
void tcp_stack_tick(struct tcp_stack *st, uint64_t now_us) {}
void tcp_input(struct tcp_stack *st, uint32_t remote_ip, uint32_t local_ip, const uint8_t *seg, size_t len) {}
void tcp_stack_flush(struct tcp_stack *st) {}
const struct tcp_counters *tcp_stack_counters(const struct tcp_stack *st) { return &st->c; }
size_t tcp_recv_peek(struct tcp_conn *c, const uint8_t **data) { *data = NULL; return 0; }
void tcp_recv_consume(struct tcp_conn *c, size_t n) {}
bool tcp_conn_peer_closed(const struct tcp_conn *c) { return false; }
size_t tcp_send_space(const struct tcp_conn *c) { return 0; }
size_t tcp_send(struct tcp_conn *c, const void *data, size_t n) { return 0; }
size_t tcp_send_queued(const struct tcp_conn *c) { return 0; }
void tcp_close(struct tcp_conn *c) {}
void tcp_abort(struct tcp_conn *c) {}
enum tcp_state tcp_conn_state(const struct tcp_conn *c) { return TCP_CLOSED; }
void tcp_conn_addrs(const struct tcp_conn *c, uint32_t *ri, uint16_t *rp, uint32_t *li, uint16_t *lp) {}
