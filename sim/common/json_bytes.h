/* devwire-sim: bytes written in JSON, decoded once for the whole simulator.
 *
 * Scripts, bench files and the control API's bodies write bytes the same
 * three ways: a plain string (its bytes as they are), {"hex": "0a ff"} (hex
 * digits in pairs, white space between pairs) or {"base64": "Cv8="}
 * (standard base64, RFC 4648 section 4, with its '=' padding; white space
 * anywhere is ignored). These are pure functions: no I/O, no global state,
 * thread-safe.
 *
 * An error says what is wrong and where, in terms a caller can turn into its
 * own kind of position: the JSON node it is about, whether it is about the
 * node's key, and the byte of the node's string value where decoding
 * stopped. The script loader maps that to FILE:LINE:COL; the control API can
 * name the field. */
#ifndef DW_SIM_JSON_BYTES_H
#define DW_SIM_JSON_BYTES_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <devwire/devwire.h>

/* dw_sim_json_bytes_error.offset when the error is about the node as a
 * whole (a wrong type, a missing key, an odd number of hex digits) rather
 * than one byte of its string. */
#define DW_SIM_JSON_BYTES_WHOLE SIZE_MAX

typedef struct dw_sim_json_bytes_error {
    const cJSON *node; /* what it is about: the value given or one of its members
                        * (borrowed from the caller's tree); NULL from the text
                        * decoders, which see no tree */
    int key;           /* 1: about node's key (a member's name), not its value */
    size_t offset;     /* the byte of node's string value (or of the text) where
                        * decoding stopped, or DW_SIM_JSON_BYTES_WHOLE */
    char message[96];  /* "invalid hex digit 'x'", "misplaced '=' in base64", ... */
} dw_sim_json_bytes_error;

/* How a string node is read by dw_sim_json_bytes_decode_as. */
typedef enum dw_sim_json_bytes_form {
    DW_SIM_JSON_BYTES_TEXT,   /* the string's bytes as they are */
    DW_SIM_JSON_BYTES_HEX,    /* hex digits */
    DW_SIM_JSON_BYTES_BASE64, /* base64 */
} dw_sim_json_bytes_form;

/* Bytes from a JSON value: a string, or an object with exactly one member,
 * "hex" or "base64", whose value is a string. DW_OK with the bytes appended
 * to `out` (the caller owns `out`); DW_EINVAL with `e` filled (any key other
 * than "hex" and "base64" is an "unknown key", a repeated one a "duplicate
 * key": a caller that wants to suggest a key checks the members first), and
 * `out` as it was; DW_ENOMEM. `e` may be NULL. */
int dw_sim_json_bytes_decode(const cJSON *v, dw_buf *out, dw_sim_json_bytes_error *e);

/* The string node v read as `form` ("expected string" when it is not a
 * string): the value of a "hex" or "base64" key that sits among other keys.
 * Results as dw_sim_json_bytes_decode's. */
int dw_sim_json_bytes_decode_as(const cJSON *v, dw_sim_json_bytes_form form, dw_buf *out,
                                dw_sim_json_bytes_error *e);

/* Decode text[0..len) (need not be NUL-terminated): hex digits in pairs,
 * white space (space, tab, CR, LF) between pairs; or base64 with padding,
 * white space ignored. Results as above, e->node NULL and e->offset an
 * index into text. The one error about the text as a whole
 * (DW_SIM_JSON_BYTES_WHOLE) is its end: an odd number of hex digits, a
 * base64 length that is not a multiple of 4. */
int dw_sim_hex_decode(const char *text, size_t len, dw_buf *out, dw_sim_json_bytes_error *e);
int dw_sim_base64_decode(const char *text, size_t len, dw_buf *out, dw_sim_json_bytes_error *e);

/* The value of hex digit ch (0..15), or -1. */
int dw_sim_hex_digit(int ch);
/* 1 for the white space allowed between hex pairs and inside base64. */
int dw_sim_json_bytes_space(int ch);
/* ch itself when it prints as one visible ASCII character, else '?': for
 * messages that quote a bad character. */
int dw_sim_json_bytes_printable(int ch);

/* ---- the other way: bytes shown in JSON ------------------------------------ */

/* 1 when p[0..n) reads as text: printable ASCII, and tab, CR and LF too when
 * `controls` (the journal and the transcript show a line with its CR LF as
 * text; the control API's variables do not). */
int dw_sim_bytes_are_text(const uint8_t *p, size_t n, int controls);

/* p[0..n) as lower-case hex digits, no spaces, NUL-terminated: a string the
 * caller frees, or NULL when out of memory. */
char *dw_sim_bytes_hex(const uint8_t *p, size_t n);

/* ---- UTF-8: what JSON text may hold ------------------------------------------ */

/* The length of the well-formed UTF-8 sequence at p[0..n) (1 to 4: no
 * overlong form, no surrogate, nothing above U+10FFFF), or 0 when p[0]
 * starts none (n > 0). */
size_t dw_sim_utf8_sequence(const uint8_t *p, size_t n);

/* 1 when p[0..n) is well-formed UTF-8. */
int dw_sim_utf8_valid(const uint8_t *p, size_t n);

/* Make `b` well-formed UTF-8 in place: every byte that starts no
 * well-formed sequence becomes U+FFFD (EF BF BD), one for each such byte;
 * the rest is left as it was. DW_OK (nothing to do is the usual case and
 * costs one pass), or DW_ENOMEM with `b` unchanged. */
int dw_sim_utf8_repair(dw_buf *b);

#endif
