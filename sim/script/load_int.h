/* devwire-sim internal: the script loader's own header, for its files split
 * by concern. Each file uses only the files below it in this list (the order
 * of the sections below, top first), never one above, so there is no circle:
 *
 *   load.c          the document: top keys, rules, steps, state, periodic
 *   load_bench.c    bench files (a list of devices)
 *   load_action.c   what a rule, step or "unmatched" does
 *   load_match.c    "when" / "expect", SCPI header patterns
 *   load_templates.c  templates and frames
 *   load_lua.c      chunks of Lua, syntax-checked at load
 *   load_status.c   "status" (bits bound to conditions) and "busy_ms"
 *   load_framing.c  "framing"
 *   load_props.c    "properties"
 *   load_channels.c "channels" of properties, rules and steps
 *   load_network.c  "network", "tcp" and a rule's network keys
 *   load_vxi11.c    "vxi11" (device names, maxRecvSize)
 *   load_values.c   the loading context: errors at FILE:LINE:COL, the JSON
 *                   path, object members, numbers, names, bytes, the document
 *
 * and under them script.c (freeing what was built), json_pos.c (where each
 * node is) and common/json_bytes.c (bytes written in JSON). Errors read
 * FILE:LINE:COL: PATH: message, as everywhere in the loader. */
#ifndef DW_SIM_LOAD_INT_H
#define DW_SIM_LOAD_INT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "model/netfault.h"
#include "script/json_pos.h"
#include "script/script.h"

#define DW__LOAD_MAX_CAPTURE  9
#define DW__LOAD_MAX_DELAY_MS 3600000u /* delays: at most an hour */
/* Capture context of a template: which of $0..$9 make sense. CAP_NONE: no
 * request (banner, periodic sends); 0: $0 only; n: $0..$n. */
#define DW__LOAD_CAP_NONE     (-1)
#define DW__LOAD_MAX_CHANNELS 64 /* "channels": at most this many */

struct dw__load_var {
    const char *name;
    size_t idx;
};

struct dw_sim_lua_checker;

/* Everything one load needs, from the text to the script being built. */
typedef struct dw__load {
    const char *name; /* the file, as messages name it */
    const char *text;
    size_t len;
    dw__json_pos *pos;
    dw_error *err;
    char path[256]; /* the JSON path of what is being read ("rules[2].when") */
    size_t plen;
    dw_sim_script *s;
    struct dw__load_var *var_order; /* s->vars sorted by name */
    size_t *var_mark;               /* duplicate detection in "set" objects */
    size_t mark_gen;
    dw_marshaller *req_m, *resp_m;  /* literal requests and replies are checked with these */
    struct dw_sim_lua_checker *lua; /* made at the first chunk of Lua (load_lua.c) */
    size_t lua_cap;                 /* room in s->lua */
    int no_lua;                     /* parsing a place where Lua may not run */
    unsigned channel;               /* the channel of the property being read, or 0 */
    const unsigned *chans;          /* the channels of the rule or step being read (its match's) */
    size_t nchans;                  /* 0: it has none */
} dw__load;

/* ---- load_action.c ------------------------------------------------------- */

/* The keys of an action, in the order of av[] below. */
enum {
    DW__ACTION_REPLY,
    DW__ACTION_AFTER_LAST,
    DW__ACTION_SET,
    DW__ACTION_DELAY,
    DW__ACTION_SPLIT,
    DW__ACTION_SPLIT_DELAY,
    DW__ACTION_FAULT,
    DW__ACTION_FAULT_ON,
    DW__ACTION_GARBAGE,
    DW__ACTION_LUA,
    DW__ACTION_ERROR,
    DW__ACTION_THEN,
    DW__ACTION_BUSY,
    DW__ACTION_N
};
#define DW__ACTION_KEYS                                                                            \
    "reply", "after_last", "set", "delay_ms", "split", "split_delay_ms", "fault", "fault_on",      \
        "garbage", "lua", "error", "then", "busy_ms"

/* The action keys of a rule, step, "unmatched" or "on_error", already
 * separated by dw__load_members: av[DW__ACTION_...], each may be NULL. `cap`:
 * the captures the templates may use. */
int dw__load_action(dw__load *c, const cJSON *const *av, int cap, dw_sim_action *a);

/* ---- load_match.c -------------------------------------------------------- */

/* "when" / "expect". *cap gets the number of capture groups usable in
 * templates (0 unless a regex or a SCPI header). */
int dw__load_match(dw__load *c, const cJSON *v, dw_sim_match *m, int *cap);

/* ---- load_templates.c ---------------------------------------------------- */

/* A template string (v is a string node). */
int dw__load_template(dw__load *c, const cJSON *v, int cap, dw_sim_template *t);
/* A value: a template string, a binary object, a number or a boolean (as
 * its JSON text), or {"lua": ...}. Used by "set" and the banner. */
int dw__load_value_template(dw__load *c, const cJSON *v, int cap, dw_sim_template *t);
/* One frame: a template string, {"hex": ...}, {"base64": ...},
 * {"json": value} or {"lua": expression}. */
int dw__load_frame(dw__load *c, const cJSON *v, int cap, dw_sim_template *t);
/* A literal frame must fit the response framing. */
int dw__load_check_frame(dw__load *c, const cJSON *v, const dw_sim_template *t);

/* ---- load_lua.c ---------------------------------------------------------- */

/* A chunk of Lua at v (the current path): an expression, or statements;
 * its syntax is checked now and it is added to the script's chunks. */
int dw__load_lua(dw__load *c, const cJSON *v, int statements, const dw_sim_lua_chunk **out);
/* Free what checking Lua needed (c->lua); the chunks stay with the script. */
void dw__load_lua_done(dw__load *c);

/* ---- load_framing.c ------------------------------------------------------ */

/* Sentinel "\n", the default framing. */
int dw__load_framing_default(dw__load *c, dw_sim_framing *f);
/* "framing": one spec for both directions, or {"request", "response"}. */
int dw__load_framing(dw__load *c, const cJSON *v);

/* ---- load_status.c ------------------------------------------------------- */

/* "status" (after "state", "profile" and "properties"): fills
 * script->status. */
int dw__load_status(dw__load *c, const cJSON *v);
/* "busy_ms" of a rule, step or property (the SCPI profile only). */
int dw__load_busy(dw__load *c, const cJSON *v, unsigned *out);

/* ---- load_props.c -------------------------------------------------------- */

/* "properties" (after "state" and "profile"): fills script->props. */
int dw__load_properties(dw__load *c, const cJSON *v);

/* ---- load_channels.c ----------------------------------------------------- */

/* "channels": [1, 2] at v: 1 to DW__LOAD_MAX_CHANNELS distinct numbers from 1
 * to 999 into chans[0..*n). */
int dw__load_channels(dw__load *c, const cJSON *v, unsigned *chans, size_t *n);
/* A SCPI header at string node v, its '#' made the suffix of `channel`
 * ("[1]" for 1, so that no suffix means it, the number otherwise; 0: the
 * header has no '#'), compiled into *out. `who` names the owner in
 * messages ("property"). */
int dw__load_channel_header(dw__load *c, const cJSON *v, unsigned channel, const char *who,
                            dw_scpi_pattern **out);
/* A rule's or step's SCPI header (string node `pattern`) and its
 * "channels" (v, or NULL): m->scpi, or m->channels and one header a
 * channel in m->chan_scpi. */
int dw__load_match_channels(dw__load *c, const cJSON *pattern, const cJSON *v, dw_sim_match *m);
/* 1 if name[0..len) is "NAME[channel]". */
int dw__load_channel_ref(const char *name, size_t len);
/* "NAME[channel]" (name[0..len), written at `off`) in a rule or step with
 * channels (c->chans): *by_channel (caller frees) gets property NAME[N] for
 * each of its channels N, in order. */
int dw__load_channel_props(dw__load *c, size_t off, const char *name, size_t len,
                           size_t **by_channel);

/* ---- load_network.c ------------------------------------------------------ */

/* The script's "network" object; a rule's "direction", "probability" and
 * "delay" (vals[0..3), any may be NULL; *out stays NULL when all are).
 * `has_fault`: the rule has a "fault" (probability needs one). */
int dw__load_network(dw__load *c, const cJSON *v, dw_sim_netfaults **out);
/* The script's "tcp" object: {"quickack": true or false}. */
int dw__load_tcp(dw__load *c, const cJSON *v, dw_sim_tcp_ack *out);
/* load_telnet.c: "telnet": {"will": [...], "do": [...]}. */
int dw__load_telnet(dw__load *c, const cJSON *v, dw_sim_telnet_opts *out);
/* load_vxi11.c: "vxi11": {"devices": [...], "max_recv_size": N}. */
int dw__load_vxi11(dw__load *c, const cJSON *v);
/* A "fuzz" fault's keys (load_fuzz.c), in the order: mutations,
 * frame_probability, every, after_frames, frames, connection,
 * split_delay_ms (NULL when absent). */
struct dw_sim_fuzz;
int dw__load_fuzz(dw__load *c, const cJSON *obj, const cJSON **p, struct dw_sim_fuzz *f);
int dw__load_rule_net(dw__load *c, const cJSON *const *vals, int has_fault, dw_sim_rule_net **out);

/* ---- load_values.c ------------------------------------------------------- */

/* Errors: each sets c->err to FILE:LINE:COL: PATH: message and returns
 * DW_ESCRIPT. About node's value (key == 0) or its key (key != 0): */
int dw__load_fail(dw__load *c, const cJSON *node, int key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* At byte offset `off` of the text: */
int dw__load_fail_at(dw__load *c, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* At byte i of string node's value: */
int dw__load_fail_in(dw__load *c, const cJSON *node, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* DW_ENOMEM, "out of memory loading the script". */
int dw__load_oom(dw__load *c);
/* The position in the text of byte i of string node v's value. */
size_t dw__load_str_pos(dw__load *c, const cJSON *v, size_t i);

/* Path segments: push returns the old length for pop. */
size_t dw__load_push(dw__load *c, const char *key);
size_t dw__load_push_index(dw__load *c, size_t i);
void dw__load_pop(dw__load *c, size_t old);

/* " (did you mean "x"?)" for word among cands[0..n), or "" (in buf). */
const char *dw__load_near(const char *word, const char *const *cands, size_t n, char *buf,
                          size_t cap);
/* Check obj's keys against keys[0..n): an unknown key (with "did you mean")
 * or a repeated one fails, at the key. vals[i] is the member for keys[i] or
 * NULL. */
int dw__load_members(dw__load *c, const cJSON *obj, const char *const *keys, size_t n,
                     const cJSON **vals);

/* v must be an integer in min..max. */
int dw__load_uint(dw__load *c, const cJSON *v, uint64_t min, uint64_t max, uint64_t *out);
/* A serial line's rate in bits per second. */
int dw__load_baud(dw__load *c, const cJSON *v, uint32_t *out);
/* A string, copied into *out (its old value freed). */
int dw__load_string(dw__load *c, const cJSON *v, char **out);
/* v must be one of names[0..n): *out is its index. */
int dw__load_enum(dw__load *c, const cJSON *v, const char *const *names, size_t n, int *out);
/* The names of the transports, in dw_sim_transport's order. */
#define DW__LOAD_NTRANSPORTS 5
extern const char *const dw__load_transports[DW__LOAD_NTRANSPORTS];

/* Bytes (b's old data freed). */
int dw__load_bytes_set(dw__load *c, dw_sim_bytes *b, const void *data, size_t len);
/* A string or a binary object ({"hex": ...} or {"base64": ...}). */
int dw__load_bytes(dw__load *c, const cJSON *v, dw_sim_bytes *out);
/* String node v's hex digits, or its base64. */
int dw__load_hex(dw__load *c, const cJSON *v, dw_sim_bytes *out);
int dw__load_base64(dw__load *c, const cJSON *v, dw_sim_bytes *out);

/* 1 if n is a good variable (or property) name: [A-Za-z_][A-Za-z0-9_.-]*. */
int dw__load_name_ok(const char *n);
/* The variable named name[0..len), or SIZE_MAX. */
size_t dw__load_find_var(const dw__load *c, const char *name, size_t len);
/* An unknown variable or property at `off`, "did you mean" among both;
 * in_template: written "${name}". */
int dw__load_unknown_var(dw__load *c, size_t off, const char *name, size_t len, int in_template);

/* Start a load: scan text[0..len) strictly and parse it. DW_OK with the
 * tree in *root and the positions in c->pos (the caller frees both, with
 * dw__load_close), or a located error. */
int dw__load_open(dw__load *c, const char *name, const char *text, size_t len, dw_error *err,
                  cJSON **root);
/* Free what dw__load_open and the loading made, except the script. */
void dw__load_close(dw__load *c, cJSON *root);
/* The whole file (at most 64 MiB) into b. DW_OK, DW_ENOENT, DW_ESCRIPT (too
 * large) or DW_ENOMEM, with err set. */
int dw__load_read_file(const char *path, dw_buf *b, dw_error *err);

#endif
