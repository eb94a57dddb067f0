/* STUB: replaced by the stack implementation (stack.h). */
#include <errno.h>
#include <stdlib.h>
#include "dataplane/net/stack.h"
struct net_stack { struct net_counters c; struct tcp_stack *tcp; };
struct net_stack *net_stack_create(const struct net_stack_config *cfg, const struct net_port *port_ops, void *port,
				   const struct net_app *app, void *app_arg, uint64_t now_us)
{ return calloc(1, sizeof(struct net_stack)); }
void net_stack_destroy(struct net_stack **st) { if (st) { free(*st); *st = NULL; } }
void net_stack_tick(struct net_stack *st, uint64_t now_us) {}
void net_stack_input(struct net_stack *st, const uint8_t *frame, size_t len, unsigned rx_flags) {}
void net_stack_flush(struct net_stack *st) {}
int net_udp_send(struct net_stack *st, const struct net_udp_peer *peer, const void *data, size_t len) { return -ENOBUFS; }
const struct net_counters *net_stack_counters(const struct net_stack *st) { return &st->c; }
struct tcp_stack *net_stack_tcp(struct net_stack *st) { return st->tcp; }
int net_flow_owner(const uint8_t *frame, size_t len, unsigned ncores) { return 0; }
uint16_t net_cksum_partial(const void *data, size_t len, uint32_t sum) { return 0; }
