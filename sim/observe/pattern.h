/* devwire-sim's control API: which requests a fault, a wait or a
 * verification is about.
 *
 * A pattern is written in JSON as a string (the name of the rule or step
 * that answered, or else the request's exact bytes: "OUTP ON" matches the
 * request "OUTP ON" and the rule named "OUTP ON"), or as an object with one
 * of "rule" (the name only), "request" (the exact bytes only; a string, or
 * {"hex": ...}), "prefix", "regex" (PCRE2, matched anywhere unless
 * anchored). A query string says the same with match=, rule=, request=,
 * prefix= or regex=. A pattern is used by one thread at a time.
 *
 * A regex runs under the rules' limits (common/regex_limits.h): a match
 * that hits one counts as no match and is counted in `limited`, so an API
 * caller's pattern can never hold up its thread (or, for a fault's match,
 * the device's loop) for long. */
#ifndef DW_SIM_OBSERVE_PATTERN_H
#define DW_SIM_OBSERVE_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include <devwire/devwire.h>

typedef enum dw_sim_pattern_kind {
    DW_SIM_PATTERN_ANY,     /* no pattern: everything matches */
    DW_SIM_PATTERN_EITHER,  /* the rule's name or the exact request */
    DW_SIM_PATTERN_RULE,    /* the name of what answered */
    DW_SIM_PATTERN_REQUEST, /* the exact request */
    DW_SIM_PATTERN_PREFIX,
    DW_SIM_PATTERN_REGEX,
} dw_sim_pattern_kind;

typedef struct dw_sim_pattern {
    dw_sim_pattern_kind kind;
    uint8_t *bytes; /* the text or bytes (NUL-terminated too) */
    size_t len;
    pcre2_code *re;
    pcre2_match_data *md;
    pcre2_match_context *mc; /* the limits */
    int anchored;            /* the regex can start only at byte 0 */
    uint64_t limited;        /* matches that hit a limit (counted as no match) */
} dw_sim_pattern;

/* One pattern from a kind's name ("match", "rule", "request", "prefix",
 * "regex") and its text. DW_OK, or DW_EINVAL with `err` saying why (an
 * unknown kind, a regex that does not compile: "regex: missing closing
 * parenthesis at 3"), or DW_ENOMEM. */
int dw_sim_pattern_make(dw_sim_pattern *p, const char *kind, const uint8_t *text, size_t len,
                        dw_error *err);
/* From JSON as described above. */
int dw_sim_pattern_from_json(dw_sim_pattern *p, const cJSON *v, dw_error *err);
/* 1 when the request req[0..n), answered by `name` (may be NULL), matches;
 * 0 when not, or when the regex hit a limit (then p->limited grows). */
int dw_sim_pattern_match(dw_sim_pattern *p, const uint8_t *req, size_t n, const char *name);
/* The pattern as JSON ("OUTP ON", {"regex": "^FREQ"}), its bytes as
 * {"hex": ...} when they are not UTF-8 text or hold a NUL ({"match": {"hex":
 * "ff"}}, {"request": {"hex": "4100"}}): what dw_sim_pattern_from_json reads
 * back as the same pattern. NULL when out of memory. */
cJSON *dw_sim_pattern_json(const dw_sim_pattern *p);
void dw_sim_pattern_free(dw_sim_pattern *p);

/* Bytes from JSON, as a script writes them (common/json_bytes.h): a
 * string, {"hex": "0a ff"} or {"base64": "Cv8="}: DW_OK and appended to
 * `out`, or DW_EINVAL with `err` saying why ("hex: invalid hex digit 'x' at
 * 3"). */
int dw_sim_json_bytes(const cJSON *v, dw_buf *out, dw_error *err);

#endif
