/* devwire-sim: the in-memory form of a script, as the loader builds it and
 * the engine serves it. A script is immutable once loaded (SIGHUP builds a
 * new one and swaps it in), so connection threads share it without locks. */
#ifndef DW_SIM_SCRIPT_H
#define DW_SIM_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/devwire.h>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include "model/props.h"
#include "model/scpi_parse.h"
#include "model/netfault.h"

typedef struct dw_sim_bytes {
    uint8_t *data; /* owned; may hold NUL and 0xFF */
    size_t len;
} dw_sim_bytes;

/* A reply or state template: literal bytes and placeholders, in order.
 * Text "${freq}" is a state variable or a property, "$1".."$9" a regex capture, "$0" or
 * "${request}" the whole request; "$$" is a literal '$' (any other '$' is a
 * load error). Binary literals ({"hex": ...} / {"base64": ...}) are one
 * literal segment, but a template's {"hex": ...} may hold placeholders
 * between byte pairs ({"hex": "aa 81 ${r1} 55"}); {"json": value} is the
 * value's compact JSON text, itself a template, where a string that is one
 * placeholder alone ("${on}", "$1") is printed unquoted, as JSON text; {"lua": expression} (rules
 * and steps only) is one DW_SIM_SEG_LUA segment. Adjacent literal text is one segment, an empty
 * template has no segments. The loader guarantees that every VAR index is < nvars, every PROP
 * index < the number of properties, and that every capture is possible where the template is used
 * (a capture group the regex does not have, or a capture with no request, is a load error), so the
 * engine need not check. */
typedef enum dw_sim_seg_kind {
    DW_SIM_SEG_LITERAL,
    DW_SIM_SEG_VAR,          /* var: index into script->vars */
    DW_SIM_SEG_CAPTURE,      /* capture: 0 = whole request, 1..9 = group */
    DW_SIM_SEG_PROP,         /* var: index of a property ("${freq}"), printed as a query
                              * answers it (a string without quotes) */
    DW_SIM_SEG_LUA,          /* lua: a computed value ({"lua": ...}), the template's only segment */
    DW_SIM_SEG_CHANNEL,      /* "${channel}": the channel of a rule or step with "channels" */
    DW_SIM_SEG_PROP_CHANNEL, /* "${freq[channel]}": by_channel[k] is the property of the
                              * rule's or step's kth channel */
} dw_sim_seg_kind;

/* A chunk of Lua (checked by model/lua_check.h, run by engine/lua_sandbox.h): an expression
 * ("if", a {"lua": ...} reply frame or set value) or statements (a "lua" action). Its syntax is
 * checked at load; each engine compiles it again in its own sandbox. */
typedef struct dw_sim_lua_chunk {
    char *source;   /* as written */
    char *where;    /* its JSON path ("rules[3].if"): its name in Lua's messages */
    int statements; /* 1: a "lua" action */
    size_t id;      /* its index in script->lua */
} dw_sim_lua_chunk;

typedef struct dw_sim_seg {
    dw_sim_seg_kind kind;
    dw_sim_bytes literal;
    size_t var;
    unsigned capture;
    const dw_sim_lua_chunk *lua; /* borrowed from script->lua */
    size_t *by_channel;          /* PROP_CHANNEL (owned): a property a channel of the match */
} dw_sim_seg;

typedef struct dw_sim_template {
    dw_sim_seg *segs;
    size_t nsegs;
} dw_sim_template;

/* How a request is matched ("when" of a rule, "expect" of a step). */
typedef enum dw_sim_match_kind {
    DW_SIM_MATCH_EXACT,  /* "text", {"exact": text or binary}, {"hex": ...}, {"base64": ...} */
    DW_SIM_MATCH_PREFIX, /* {"prefix": text or binary} */
    DW_SIM_MATCH_REGEX,  /* {"regex": "...", "icase": bool}: PCRE2 (Perl-compatible)
                          * syntax on bytes (no UTF), compiled at load with
                          * PCRE2_DOTALL and PCRE2_DOLLAR_ENDONLY ('.' matches any
                          * byte, NUL and newline included; '$' only at the very
                          * end), PCRE2_CASELESS with icase, JIT-compiled where
                          * the platform has it; it matches anywhere in the
                          * request unless anchored with ^ and $ */
    DW_SIM_MATCH_SCPI,   /* {"scpi": "[SOURce:]FREQuency[:CW]?", "params": [...]}: a SCPI
                          * header pattern, matched against each program message unit
                          * (the SCPI profile only) */
} dw_sim_match_kind;

/* What a SCPI rule accepts as its nth parameter ("params"). */
typedef enum dw_sim_scpi_type {
    DW_SIM_SCPI_ANY,     /* "any" */
    DW_SIM_SCPI_NUMERIC, /* "numeric": a number (any unit), MIN, MAX or DEF */
    DW_SIM_SCPI_BOOL,    /* "bool": ON, OFF or a number; $n is 1 or 0 */
    DW_SIM_SCPI_STRING,  /* "string" */
    DW_SIM_SCPI_BLOCK,   /* "block" */
    DW_SIM_SCPI_CHOICE,  /* "IMMediate|BUS|EXTernal": $n is the short form (IMM) */
} dw_sim_scpi_type;

typedef struct dw_sim_scpi_param {
    dw_sim_scpi_type type;
    char *choices; /* CHOICE: as written */
} dw_sim_scpi_param;

typedef struct dw_sim_match {
    dw_sim_match_kind kind;
    dw_sim_bytes bytes;        /* exact / prefix */
    pcre2_code *re;            /* regex (compiled; NULL unless kind is REGEX) */
    uint32_t groups;           /* regex: its capture groups (all of them, even past $9) */
    int anchored;              /* regex: can match only at the start of a request */
    int jit;                   /* regex: JIT-compiled */
    char *source;              /* for reports: the text or pattern as written, or the
                                * compact JSON of a binary form ({"hex":"a001"}) */
    dw_scpi_pattern *scpi;     /* SCPI: the header pattern */
    dw_sim_scpi_param *params; /* SCPI with "params": exactly nparams of these */
    size_t nparams;
    int has_params;
    /* SCPI with "channels": the channel numbers, and the header once a
     * channel (its '#' made that channel's suffix, as a property's is),
     * tried in order; scpi is then NULL. nchannels == 0: none. */
    unsigned *channels;
    dw_scpi_pattern **chan_scpi;
    size_t nchannels;
} dw_sim_match;

typedef enum dw_sim_fault {
    DW_SIM_FAULT_NONE,
    DW_SIM_FAULT_CLOSE,     /* close the connection (FIN) */
    DW_SIM_FAULT_RESET,     /* reset it (RST) */
    DW_SIM_FAULT_HANG,      /* read the request, never answer */
    DW_SIM_FAULT_GARBAGE,   /* write `garbage` instead of the reply */
    DW_SIM_FAULT_DROP,      /* read the request, give no reply to it (and go on) */
    DW_SIM_FAULT_DUPLICATE, /* write the reply twice */
} dw_sim_fault;

/* What a rule, a step or "unmatched" does after its reply ("then"): keep
 * the connection, or end it cleanly (FIN) or with a reset (RST) once the
 * reply is out. */
typedef enum dw_sim_then { DW_SIM_THEN_NONE, DW_SIM_THEN_CLOSE, DW_SIM_THEN_RESET } dw_sim_then;

/* What happens after the last of a list of replies. */
typedef enum dw_sim_after_last {
    DW_SIM_REPEAT_LAST, /* default: keep giving the last one */
    DW_SIM_CYCLE,       /* start again from the first */
    DW_SIM_SILENT,      /* no reply any more */
} dw_sim_after_last;

typedef struct dw_sim_set {
    size_t var; /* index into script->vars, or of a property when prop is 1 */
    int prop;   /* a property: the rendered text is set as dw_sim_prop_set_text
                 * does; a value it refuses leaves the property unchanged */
    dw_sim_template value;
    size_t *by_channel; /* "freq[channel]" (owned): the property a channel of the match, by
                         * the channel's place in its list (var is by_channel[0]); or NULL */
} dw_sim_set;

/* What a rule, a step or the unmatched case does with a request. */
typedef struct dw_sim_action {
    /* "reply": a single reply, or a list given in turn. Each reply is one or
     * more frames (a reply written as {"frames": [...]}). nreplies == 0: no
     * reply. */
    dw_sim_template **replies; /* replies[i] is an array of nframes[i] frames */
    size_t *nframes;
    size_t nreplies;
    dw_sim_after_last after_last;
    dw_sim_set *sets; /* "set": {"name": template, ...}, applied before replying */
    size_t nsets;
    const dw_sim_lua_chunk *lua; /* "lua": statements run after the sets, before
                                  * the reply; NULL: none (borrowed from script->lua) */
    unsigned delay_ms;           /* before the reply */
    size_t *split;               /* write the reply bytes in pieces of these sizes
                                  * (the last size repeats) */
    size_t nsplit;
    unsigned split_delay_ms; /* between pieces */
    dw_sim_fault fault;
    unsigned fault_on; /* 0 = every match; N = only the Nth match (1-based) */
    /* Limits the loader enforces: delay_ms and split_delay_ms <= 3600000,
     * split sizes >= 1, garbage non-empty and only with FAULT_GARBAGE,
     * after_last only with a list of replies. A literal reply frame (no
     * placeholders) is checked against the response framing at load. */
    dw_sim_bytes garbage;       /* for DW_SIM_FAULT_GARBAGE */
    dw_sim_then then;           /* "then": end the connection after the reply;
                                 * not with faults close, reset, hang and drop */
    const dw_sim_rule_net *net; /* a rule's network keys (owned by the rule), or NULL */
    int scpi_error;             /* SCPI profile: the error the action queues (-32768..32767, not
                                 * 0), or 0: none */
    char *scpi_error_text;      /* its description, or NULL: the standard one */
    unsigned busy_ms;           /* SCPI profile: an overlapped command, pending this long
                                 * (0 .. 3600000); 0: completes at once */
} dw_sim_action;

/* "if": a rule whose condition is false is skipped (matching goes on with
 * the next rule); a step whose condition is false does not match. */
typedef struct dw_sim_rule {
    char *name; /* "rules[3]" or the rule's "name" */
    dw_sim_match when;
    const dw_sim_lua_chunk *cond; /* "if", or NULL (borrowed from script->lua) */
    dw_sim_action action;
    dw_sim_rule_net *net; /* "direction", "probability", "delay"; NULL: none (netfault.h) */
} dw_sim_rule;

typedef struct dw_sim_step {
    char *name; /* "steps[0]" or its "name" */
    dw_sim_match expect;
    const dw_sim_lua_chunk *cond; /* "if", or NULL */
    dw_sim_action action;
} dw_sim_step;

typedef enum dw_sim_framing_type {
    DW_SIM_FRAMING_SENTINEL,
    DW_SIM_FRAMING_FIXED,
    DW_SIM_FRAMING_LENGTH_PREFIXED,
    DW_SIM_FRAMING_SCPI,
    DW_SIM_FRAMING_JSON_LINES,
} dw_sim_framing_type;

/* Absent "framing": sentinel "\n" both ways. One spec applies to both
 * directions; {"request": spec, "response": spec} sets each. */
typedef struct dw_sim_framing {
    dw_sim_framing_type type;
    dw_sim_bytes sentinel; /* sentinel, scpi ("\n" by default); empty for the others */
    size_t length;         /* fixed */
    unsigned header_size;  /* length-prefixed: 1, 2, 4 */
    dw_endian endian;      /* length-prefixed */
    size_t max_frame;      /* DW_DEFAULT_MAX_FRAME by default */
} dw_sim_framing;

typedef struct dw_sim_var {
    char *name;
    dw_sim_bytes initial;
} dw_sim_var;

typedef struct dw_sim_periodic {
    unsigned every_ms;    /* 1 .. 86400000 */
    dw_sim_template send; /* framed with the response framing */
} dw_sim_periodic;

/* "status": a bit of a SCPI status register that follows a condition. */
typedef enum dw_sim_status_reg {
    DW_SIM_STATUS_OPER, /* "operation": STATus:OPERation, bits 0..14 */
    DW_SIM_STATUS_QUES, /* "questionable": STATus:QUEStionable, bits 0..14 */
    DW_SIM_STATUS_STB,  /* "stb": the status byte, bits 0, 1 and 7 */
} dw_sim_status_reg;

typedef enum dw_sim_cond_kind {
    DW_SIM_COND_LUA,   /* {"lua": expression} */
    DW_SIM_COND_BUSY,  /* {"busy": true}: an overlapped command is pending */
    DW_SIM_COND_STATE, /* {"state": name, ...}: a variable or property */
} dw_sim_cond_kind;

/* How a "state" condition compares. */
typedef enum dw_sim_cond_cmp {
    DW_SIM_CMP_TRUE,   /* no comparison: the value is true (a bool, a non-zero
                        * number, a variable "true" or "ON") */
    DW_SIM_CMP_ABOVE,  /* "above": N */
    DW_SIM_CMP_BELOW,  /* "below": N */
    DW_SIM_CMP_EQUALS, /* "equals": a number, bool or string */
} dw_sim_cond_cmp;

typedef struct dw_sim_status_bit {
    dw_sim_status_reg reg;
    unsigned bit;
    char *name; /* "name", or "status.questionable[0]" */
    dw_sim_cond_kind kind;
    const dw_sim_lua_chunk *lua; /* LUA (borrowed from script->lua) */
    size_t var;                  /* STATE: a variable's index, or a property's when prop */
    int prop;
    dw_sim_cond_cmp cmp;
    double num; /* ABOVE, BELOW, EQUALS with a number or bool */
    char *text; /* EQUALS with a string (or NULL) */
} dw_sim_status_bit;

/* In the order of their names in scripts: "tcp", "telnet", "udp", "serial",
 * "vxi11". */
typedef enum dw_sim_transport {
    DW_SIM_TCP,
    DW_SIM_TELNET,
    DW_SIM_UDP,
    DW_SIM_SERIAL,
    DW_SIM_VXI11
} dw_sim_transport;

/* "vxi11": maxRecvSize by default, and its bounds. */
#define DW_SIM_VXI11_MAX_RECV     4096u
#define DW_SIM_VXI11_MAX_RECV_MIN 64u
#define DW_SIM_VXI11_MAX_RECV_MAX (16u * 1024 * 1024)

/* "baud": a serial line's rate, bits per second. */
#define DW_SIM_BAUD_MIN 50
#define DW_SIM_BAUD_MAX 4000000
typedef enum dw_sim_scope { DW_SIM_SCOPE_SHARED, DW_SIM_SCOPE_CONNECTION } dw_sim_scope;
/* "tcp": {"quickack": ...}: how a TCP or Telnet device acknowledges what it
 * reads. A quick ACK after each read keeps a client with Nagle's algorithm
 * on from holding its next request until the device's delayed ACK (about
 * 40 ms on Linux) when the request before got no reply. */
typedef enum dw_sim_tcp_ack {
    DW_SIM_TCP_ACK_DEFAULT, /* not said: quick unless --delayed-ack */
    DW_SIM_TCP_ACK_QUICK,   /* "quickack": true */
    DW_SIM_TCP_ACK_DELAYED, /* "quickack": false: the kernel's delayed ACKs */
} dw_sim_tcp_ack;
/* "telnet": {"will": [...], "do": [...]}: the options a Telnet device
 * agrees to, each way, and offers (WILL) or asks for (DO) on connect.
 * Bit n (dw_telnet_option_isset) is option n. Without the key: WILL SGA
 * offered, SGA and BINARY agreed to both ways, the rest refused. */
typedef struct dw_sim_telnet_opts {
    int set;          /* the key was given: will and ask are the whole table */
    uint8_t will[32]; /* "will" */
    uint8_t ask[32];  /* "do" */
} dw_sim_telnet_opts;
typedef enum dw_sim_profile { DW_SIM_PROFILE_NONE, DW_SIM_PROFILE_SCPI } dw_sim_profile;

typedef struct dw_sim_script {
    char *path; /* as given to the loader */
    char *name; /* "name", or the file's base name */
    dw_sim_transport transport;
    uint32_t baud;                   /* "baud" (serial only): pace writes at the line rate,
                                      * 10 bits a byte; 0 = as fast as the line takes them */
    dw_sim_framing request_framing;  /* "framing" or "framing.request" */
    dw_sim_framing response_framing; /* "framing" or "framing.response" */
    dw_sim_template banner;          /* nsegs == 0: none; sent raw, not framed;
                                      * variables only (no request) */
    dw_sim_bytes prompt;             /* len == 0: none; sent raw after each reply;
                                      * literal (no placeholders) */
    dw_sim_scope scope;
    dw_sim_var *vars; /* in document order; names are unique, match
                       * [A-Za-z_][A-Za-z0-9_.-]* and are never "request" */
    size_t nvars;
    dw_sim_step *steps;
    size_t nsteps;
    dw_sim_rule *rules;
    size_t nrules;
    dw_sim_action unmatched; /* default: no reply; "$0"/"${request}" allowed;
                              * {"close": true} is its "then": "close" */
    dw_sim_periodic *periodic;
    size_t nperiodic;
    /* "profile": "scpi" or {"type": "scpi", "error_queue": N}: requests are
     * SCPI program messages, dispatched unit by unit (see engine.h); no
     * "unmatched" then (an undefined header queues -113). */
    dw_sim_profile profile;
    size_t error_queue;        /* SCPI: the error queue's depth (2 .. 1000, default 20) */
    char *idn;                 /* "idn": the *IDN? answer (default: the name) */
    char *scpi_version;        /* "profile": {"version": ...}: SYSTem:VERSion? (NULL: 1999.0) */
    int scpi_bare_strings;     /* "strings": "bare" (non-standard): character data is a string */
    int scpi_lenient_path;     /* "path": "lenient" (non-standard): -113 tried from the root */
    dw_sim_status_bit *status; /* "status": bits bound to conditions, in document order */
    size_t nstatus;
    int has_busy;              /* some rule, step or property has "busy_ms" */
    dw_sim_netfaults *network; /* "network": faults of the link (netfault.h); NULL: none */
    dw_sim_tcp_ack tcp_ack;    /* "tcp": {"quickack": ...} */
    dw_sim_telnet_opts telnet; /* "telnet": its options */
    /* Every chunk of Lua, in document order (owned); nlua == 0: the script
     * has no Lua, and its engine makes no Lua state. Lua appears only in
     * rules and steps (not in the banner, periodic sends or "unmatched"). */
    dw_sim_lua_chunk **lua;
    size_t nlua;
    /* "properties": typed values (model/props.h), or NULL. They share the
     * variables' namespace: no property has a variable's name. */
    dw_sim_props *props;
    /* "on_error" (not with the SCPI profile): what a property's command
     * does with a value it refuses ("SP abc"); $0 is the request. Without
     * it, such a request gets the unmatched behaviour. */
    dw_sim_action on_error;
    int has_on_error;
    /* "vxi11" (transport "vxi11"): the device names create_link accepts
     * ("inst0", "gpib0,5"; nvxi11_devices == 0: any name) and the
     * maxRecvSize create_link announces. */
    char **vxi11_devices;
    size_t nvxi11_devices;
    uint32_t vxi11_max_recv;
} dw_sim_script;

/* Freeing parts of a script (script.c), for the loader's failures half-way:
 * a template's segments (t is left empty), and one chunk of Lua (accepts
 * NULL). */
void dw__sim_template_free(dw_sim_template *t);
void dw__sim_lua_chunk_free(dw_sim_lua_chunk *ch);

/* Load and check a script (the loader, load.c). On DW_OK *out is a new script (free with
 * dw_sim_script_free). On failure *out is NULL, nothing is half-loaded, and
 * err->message reads "FILE:LINE:COL: JSON.PATH: what is wrong"
 * ("sg.json:14:9: rules[2].when: expected string or object"). Returns
 * DW_ENOENT (cannot read the file) or DW_ESCRIPT. */
int dw_sim_script_load_file(const char *path, dw_sim_script **out, dw_error *err);
/* The same from memory; `name` is used in messages in place of the file
 * (NULL: "<script>"). text[0..len) need not be NUL-terminated and is never
 * read beyond len: this is the fuzzing entry point. Messages without a JSON
 * path (the document itself, JSON syntax at the top) read
 * "FILE:LINE:COL: message"; syntax errors read
 * "FILE:LINE:COL: PATH: JSON syntax error: what". Lines and columns are
 * 1-based, columns count characters. Thread-safe (no global state). */
int dw_sim_script_load_buffer(const char *name, const char *text, size_t len, dw_sim_script **out,
                              dw_error *err);
/* Free a script (script.c); accepts NULL. */
void dw_sim_script_free(dw_sim_script *s);

/* One device of a bench file (--bench): a JSON list of
 * {"name", "script", "listen", "transport", "link", "baud"} objects. */
typedef struct dw_sim_device_spec {
    char *name;   /* "name", required, unique within the bench */
    char *script; /* "script", required: relative to the bench file's directory */
    char *host;   /* "listen" ("HOST:PORT", default "127.0.0.1:0") */
    uint16_t port;
    int transport; /* "transport": a dw_sim_transport that overrides the script's,
                    * or -1 (the script's own) */
    char *link;    /* "link" (serial): a symbolic link to the line's terminal, or NULL */
    uint32_t baud; /* "baud" (serial): overrides the script's; 0 = the script's */
} dw_sim_device_spec;

typedef struct dw_sim_bench {
    dw_sim_device_spec *devices;
    size_t ndevices; /* at least 1 */
} dw_sim_bench;

/* Load and check a bench file (load_bench.c); errors as dw_sim_script_load_file's
 * ("bench.json:3:5: [1].lisen: unknown key (did you mean "listen"?)"). The
 * scripts are not loaded here. Free with dw_sim_bench_free (accepts NULL). */
int dw_sim_bench_load_file(const char *path, dw_sim_bench **out, dw_error *err);
int dw_sim_bench_load_buffer(const char *name, const char *text, size_t len, dw_sim_bench **out,
                             dw_error *err);
void dw_sim_bench_free(dw_sim_bench *b);

/* A marshaller for a framing (script.c), its max_frame set (caller frees with
 * dw_marshaller_free); NULL when out of memory. */
dw_marshaller *dw_sim_framing_marshaller(const dw_sim_framing *f);

/* The largest max_frame (and fixed length) a script may give: 1 GiB. */
#define DW_SIM_MAX_FRAME_LIMIT ((size_t)1 << 30)

/* Cap both framings' max_frame at `max` (devwire-sim --max-frame): each
 * becomes the smaller of its own and `max`; 0 changes nothing. A fixed
 * framing longer than `max` could never pass: DW_ESCRIPT, `err` naming the
 * script and the framing, and the script is left unchanged. */
int dw_sim_script_cap_frames(dw_sim_script *s, size_t max, dw_error *err);

#endif
