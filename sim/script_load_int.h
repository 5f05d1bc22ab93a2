/* devwire-sim internal: the script loader's helpers, for the modules that
 * parse a part of a script on its behalf (netfault_load.c). Errors come out
 * as every loader error does: FILE:LINE:COL: PATH: message. */
#ifndef DW_SIM_SCRIPT_LOAD_INT_H
#define DW_SIM_SCRIPT_LOAD_INT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "netfault.h"
#include "script.h"

struct ctx; /* one load under way */

/* Fail at node's value (at_key 0) or at its key (at_key 1): DW_ESCRIPT. */
int dw__sim_ld_fail(struct ctx *c, const cJSON *node, int at_key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int dw__sim_ld_oom(struct ctx *c);
/* The JSON path: push a key (returns what pop restores). */
size_t dw__sim_ld_push_key(struct ctx *c, const char *key);
void dw__sim_ld_pop(struct ctx *c, size_t old);
/* obj's members against keys[0..n) (unknown and repeated keys fail). */
int dw__sim_ld_members(struct ctx *c, const cJSON *obj, const char *const *keys, size_t n,
                       const cJSON **vals);
int dw__sim_ld_uint(struct ctx *c, const cJSON *v, uint64_t min, uint64_t max, uint64_t *out);
int dw__sim_ld_enum(struct ctx *c, const cJSON *v, const char *const *names, size_t n, int *out);

/* netfault_load.c: the script's "network" object; a rule's "direction",
 * "probability" and "delay" (vals[0..3), any may be NULL; *out stays NULL
 * when all are). `has_fault`: the rule has a "fault" (probability needs
 * one). */
int dw__sim_parse_network(struct ctx *c, const cJSON *v, dw_sim_netfaults **out);
int dw__sim_parse_rule_net(struct ctx *c, const cJSON *const *vals, int has_fault,
                           dw_sim_rule_net **out);

#endif
