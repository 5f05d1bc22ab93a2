/* devwire-sim internal: where each value of a JSON text is.
 *
 * cJSON builds a tree but keeps no positions, and the script loader reports
 * every error as FILE:LINE:COL. This module checks the text against the
 * strict JSON grammar (RFC 8259: UTF-8, no control characters in strings,
 * no leading zeros...) and records where every value and every object key
 * starts, in document order; dw__json_pos_bind then pairs those records
 * with the nodes of the cJSON tree parsed from the same text, so that the
 * loader can ask "where is this node?". Not thread-safe per map; separate
 * maps are independent. */
#ifndef DW_SIM_JSON_POS_H
#define DW_SIM_JSON_POS_H

#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct dw__json_pos dw__json_pos;

/* A syntax error: byte offset, the JSON path where it happened ("" at the
 * top) and what is wrong. */
typedef struct dw__json_syntax {
    size_t offset;
    char path[200];
    char message[160];
} dw__json_syntax;

/* Scan text[0..len). DW_OK and a new map in *out (free with
 * dw__json_pos_free); DW_ESCRIPT and *syn filled when the text is not one
 * strict JSON document (a leading UTF-8 byte order mark is skipped, as cJSON
 * does); DW_ENOMEM. Never reads outside text[0..len). */
int dw__json_pos_scan(const char *text, size_t len, dw__json_pos **out, dw__json_syntax *syn);

/* Pair the recorded values with the cJSON tree `root` parsed from the same
 * text. DW_OK; DW_EINVAL when the tree does not have the shape of the text
 * (then lookups fall back to offset 0); DW_ENOMEM. `root` must outlive the
 * lookups. */
int dw__json_pos_bind(dw__json_pos *p, const cJSON *root);

/* Byte offset where `node`'s value starts, or where its key starts (the
 * opening quote) when `key` is non-zero and the node is an object member.
 * 0 for an unknown node. */
size_t dw__json_pos_of(const dw__json_pos *p, const cJSON *node, int key);

void dw__json_pos_free(dw__json_pos *p);

/* 1-based line and column of byte `offset` in text[0..len). Columns count
 * characters (UTF-8 sequences), a tab counts one. */
void dw__json_line_col(const char *text, size_t len, size_t offset, size_t *line, size_t *col);

/* For a string token starting at text[str_offset] (its opening quote): the
 * byte offset in the text of the character that produced byte `index` of
 * the decoded string (the closing quote when index is the decoded length).
 * Falls back to str_offset when the text is not such a string. */
size_t dw__json_string_offset(const char *text, size_t len, size_t str_offset, size_t index);

#endif
