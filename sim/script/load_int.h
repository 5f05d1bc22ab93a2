/* devwire-sim internal: the script loader's helpers, for the loader files
 * split by concern (script_load.c the document, script_props.c the
 * properties, netfault_load.c the network faults). Errors read FILE:LINE:COL: PATH: message, as
 * everywhere in the loader. */
#ifndef DW_SIM_SCRIPT_INT_H
#define DW_SIM_SCRIPT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "model/netfault.h"
#include "script/script.h"

typedef struct dw__load dw__load;

/* The script being built. */
dw_sim_script *dw__load_script(dw__load *c);
/* An error about node's value (key == 0) or its key (key != 0): sets the
 * error and returns DW_ESCRIPT. */
int dw__load_fail(dw__load *c, const cJSON *node, int key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An error at byte i of string node's text. */
int dw__load_fail_in(dw__load *c, const cJSON *node, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int dw__load_oom(dw__load *c);
/* Path segments: push returns the old length for pop. */
size_t dw__load_push(dw__load *c, const char *key);
size_t dw__load_push_index(dw__load *c, size_t i);
void dw__load_pop(dw__load *c, size_t old);
/* Check obj's keys against keys[0..n) (unknown keys with "did you mean");
 * vals[i] is the member for keys[i] or NULL. */
int dw__load_members(dw__load *c, const cJSON *obj, const char *const *keys, size_t n,
                     const cJSON **vals);
/* v must be an integer in min..max. */
int dw__load_uint(dw__load *c, const cJSON *v, uint64_t min, uint64_t max, uint64_t *out);
/* v must be one of names[0..n): *out is its index. */
int dw__load_enum(dw__load *c, const cJSON *v, const char *const *names, size_t n, int *out);
/* 1 if n is a good variable (or property) name: [A-Za-z_][A-Za-z0-9_.-]*. */
int dw__load_name_ok(const char *n);
/* The variable named name[0..len), or SIZE_MAX. */
size_t dw__load_find_var(dw__load *c, const char *name, size_t len);
/* " (did you mean "x"?)" for word among cands[0..n), or "" (in buf). */
const char *dw__load_near(const char *word, const char *const *cands, size_t n, char *buf,
                          size_t cap);

/* script_props.c: "properties" (after "state" and "profile"): fills
 * script->props. */
int dw__load_properties(dw__load *c, const cJSON *v);

/* netfault_load.c: the script's "network" object; a rule's "direction",
 * "probability" and "delay" (vals[0..3), any may be NULL; *out stays NULL
 * when all are). `has_fault`: the rule has a "fault" (probability needs
 * one). */
int dw__load_network(dw__load *c, const cJSON *v, dw_sim_netfaults **out);
int dw__load_rule_net(dw__load *c, const cJSON *const *vals, int has_fault, dw_sim_rule_net **out);

#endif
