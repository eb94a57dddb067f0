/* STUB: replaced by the fault injector (fault.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "dataplane/net/fault.h"
struct fault { struct fault_counters c; };
int fault_config_parse(struct fault_config *cfg, const char *spec) { memset(cfg, 0, sizeof(*cfg)); return 0; }
bool fault_config_active(const struct fault_config *cfg) { return false; }
struct fault *fault_create(const struct fault_config *cfg, const struct fault_ops *ops, void *arg, unsigned max_held)
{ return calloc(1, sizeof(struct fault)); }
void fault_destroy(struct fault **f) { if (f) { free(*f); *f = NULL; } }
unsigned fault_apply(struct fault *f, void **pkts, unsigned n, unsigned cap, uint64_t now_us) { return n; }
const struct fault_counters *fault_counters(const struct fault *f) { return &f->c; }
