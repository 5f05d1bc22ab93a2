/* The IEEE 488.2 / SCPI-99 program message model: a parser for program
 * messages, header patterns as a script writes them, and a canonical
 * printer. Pure: no I/O, no clock, no global state; thread-safe on distinct
 * objects.
 *
 *     dw_scpi_parser p;
 *     dw_scpi_unit u;
 *     dw_scpi_parser_init(&p, msg, len);        // msg borrowed, terminator removed
 *     while ((rc = dw_scpi_parser_next(&p, &u)) == 1)
 *         ...                                  // u: one program message unit
 *     // rc == 0: end of message; rc < 0: a SCPI error code (-102, ...)
 *     dw_scpi_parser_free(&p);
 *
 * Headers follow the SCPI path rule: after "SOUR:FREQ 1e6;POW -10" the
 * second unit's header is SOUR:POW; a leading ':' returns to the root;
 * common commands ("*RST") leave the path alone. A unit's nodes are that
 * absolute header, upper-cased, each with its numeric suffix as written
 * ("OUTP2" stays "OUTP2"; matching a pattern splits it). */
#ifndef DW_SCPI_PARSE_H
#define DW_SCPI_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/buf.h>

/* SCPI-99's standard error codes (SCPI-99 vol. 2, 21.8), and their messages. */
#define DW_SCPI_ERROR_MAP(X)                                                                       \
    X(-100, COMMAND, "Command error")                                                              \
    X(-101, INVALID_CHAR, "Invalid character")                                                     \
    X(-102, SYNTAX, "Syntax error")                                                                \
    X(-103, SEPARATOR, "Invalid separator")                                                        \
    X(-104, DATA_TYPE, "Data type error")                                                          \
    X(-105, GET_NOT_ALLOWED, "GET not allowed")                                                    \
    X(-108, PARAM_NOT_ALLOWED, "Parameter not allowed")                                            \
    X(-109, MISSING_PARAM, "Missing parameter")                                                    \
    X(-110, HEADER, "Command header error")                                                        \
    X(-111, HEADER_SEPARATOR, "Header separator error")                                            \
    X(-112, MNEMONIC_TOO_LONG, "Program mnemonic too long")                                        \
    X(-113, UNDEFINED_HEADER, "Undefined header")                                                  \
    X(-114, SUFFIX_RANGE, "Header suffix out of range")                                            \
    X(-115, PARAM_COUNT, "Unexpected number of parameters")                                        \
    X(-120, NUMERIC_DATA, "Numeric data error")                                                    \
    X(-121, NUMBER_CHAR, "Invalid character in number")                                            \
    X(-123, EXPONENT, "Exponent too large")                                                        \
    X(-124, TOO_MANY_DIGITS, "Too many digits")                                                    \
    X(-128, NUMERIC_NOT_ALLOWED, "Numeric data not allowed")                                       \
    X(-130, SUFFIX, "Suffix error")                                                                \
    X(-131, INVALID_SUFFIX, "Invalid suffix")                                                      \
    X(-134, SUFFIX_TOO_LONG, "Suffix too long")                                                    \
    X(-138, SUFFIX_NOT_ALLOWED, "Suffix not allowed")                                              \
    X(-140, CHAR_DATA_ERROR, "Character data error")                                               \
    X(-141, CHAR_DATA, "Invalid character data")                                                   \
    X(-144, CHAR_DATA_TOO_LONG, "Character data too long")                                         \
    X(-148, CHAR_DATA_NOT_ALLOWED, "Character data not allowed")                                   \
    X(-150, STRING_DATA_ERROR, "String data error")                                                \
    X(-151, STRING_DATA, "Invalid string data")                                                    \
    X(-158, STRING_NOT_ALLOWED, "String data not allowed")                                         \
    X(-160, BLOCK_DATA_ERROR, "Block data error")                                                  \
    X(-161, BLOCK_DATA, "Invalid block data")                                                      \
    X(-168, BLOCK_NOT_ALLOWED, "Block data not allowed")                                           \
    X(-170, EXPRESSION, "Expression error")                                                        \
    X(-200, EXECUTION, "Execution error")                                                          \
    X(-201, INVALID_IN_LOCAL, "Invalid while in local")                                            \
    X(-203, PROTECTED, "Command protected")                                                        \
    X(-210, TRIGGER, "Trigger error")                                                              \
    X(-211, TRIGGER_IGNORED, "Trigger ignored")                                                    \
    X(-212, ARM_IGNORED, "Arm ignored")                                                            \
    X(-213, INIT_IGNORED, "Init ignored")                                                          \
    X(-214, TRIGGER_DEADLOCK, "Trigger deadlock")                                                  \
    X(-215, ARM_DEADLOCK, "Arm deadlock")                                                          \
    X(-220, PARAMETER, "Parameter error")                                                          \
    X(-221, SETTINGS_CONFLICT, "Settings conflict")                                                \
    X(-222, OUT_OF_RANGE, "Data out of range")                                                     \
    X(-223, TOO_MUCH_DATA, "Too much data")                                                        \
    X(-224, ILLEGAL_VALUE, "Illegal parameter value")                                              \
    X(-225, OUT_OF_MEMORY, "Out of memory")                                                        \
    X(-230, DATA_STALE, "Data corrupt or stale")                                                   \
    X(-231, DATA_QUESTIONABLE, "Data questionable")                                                \
    X(-240, HARDWARE, "Hardware error")                                                            \
    X(-241, HARDWARE_MISSING, "Hardware missing")                                                  \
    X(-300, DEVICE_SPECIFIC, "Device-specific error")                                              \
    X(-310, SYSTEM, "System error")                                                                \
    X(-321, DEVICE_OUT_OF_MEMORY, "Out of memory")                                                 \
    X(-330, SELF_TEST, "Self-test failed")                                                         \
    X(-340, CALIBRATION, "Calibration failed")                                                     \
    X(-350, QUEUE_OVERFLOW, "Queue overflow")                                                      \
    X(-360, COMMUNICATION, "Communication error")                                                  \
    X(-363, INPUT_OVERRUN, "Input buffer overrun")                                                 \
    X(-400, QUERY, "Query error")                                                                  \
    X(-410, QUERY_INTERRUPTED, "Query INTERRUPTED")                                                \
    X(-420, QUERY_UNTERMINATED, "Query UNTERMINATED")                                              \
    X(-430, QUERY_DEADLOCKED, "Query DEADLOCKED")                                                  \
    X(-440, QUERY_AFTER_INDEFINITE, "Query UNTERMINATED after indefinite response")

enum {
#define DW_SCPI_ENUM(code, name, text) DW_SCPI_E_##name = code,
    DW_SCPI_ERROR_MAP(DW_SCPI_ENUM)
#undef DW_SCPI_ENUM
};

/* The standard message of a SCPI error code ("Undefined header"), or
 * "Unknown error" for a code outside the map. */
const char *dw_scpi_strerror(int code);
/* 1 if `code` is one of SCPI-99's standard codes (the map above), else 0. */
int dw_scpi_error_standard(int code);

/* Of two reasons a unit was refused (0: no header fitted), the more
 * specific: the one that got further into the unit. From least to most
 * specific: no header (0), a header but for its numeric suffix (-114), a
 * header with the wrong number of parameters (-109, -108), a parameter of
 * the wrong type or form (the other -1xx: -104, -131, ...), a parameter of
 * the right type with a value refused (-2xx: -222, -224). On a tie the
 * first (`kept`) stays, so candidates tried in order keep the first one's
 * reason. */
int dw_scpi_refusal_pick(int kept, int code);

#define DW_SCPI_MNEMONIC_LIMIT 12 /* a longer program mnemonic: -112 (IEEE 488.2 7.6.1.4.1) */
#define DW_SCPI_MAX_MNEMONIC   31 /* room for a mnemonic; longer character data: -141 */
#define DW_SCPI_MAX_NODES      16 /* deeper headers: -102 */

typedef enum dw_scpi_kind {
    DW_SCPI_NUMERIC, /* NR1/NR2/NR3 or #H/#Q/#B: value (multiplier applied), unit */
    DW_SCPI_CHARS,   /* character data: text upper-cased (ON, MIN, IMM) */
    DW_SCPI_STRING,  /* '..' or "..": text without quotes, doubled quotes undone */
    DW_SCPI_BLOCK,   /* #<d><len><bytes> (or #0 up to the end): text = the bytes */
    DW_SCPI_EXPR,    /* ( ... ): text = the whole expression with its parentheses */
} dw_scpi_kind;

typedef struct dw_scpi_param {
    dw_scpi_kind kind;
    double value; /* NUMERIC: in the base unit ("1 kHz" is 1000, unit HZ) */
    char unit[8]; /* NUMERIC: base unit upper-cased ("HZ", "V"), "" if none */
    size_t off;   /* text: unit->text + off, len bytes (may hold any byte) */
    size_t len;
    size_t at; /* where the parameter starts in the unit as written (unit->raw) */
} dw_scpi_param;

typedef struct dw_scpi_unit {
    int common; /* "*IDN?": nodes[0] is "IDN" */
    int query;
    char nodes[DW_SCPI_MAX_NODES][DW_SCPI_MAX_MNEMONIC + 1];
    size_t nnodes;
    size_t inherited;      /* the first nodes, taken from the path (0: a rooted or common header) */
    dw_scpi_param *params; /* owned by the parser, valid until the next call */
    size_t nparams;
    const uint8_t *text; /* the parameters' texts (owned by the parser) */
    const uint8_t *raw;  /* the unit as written, spaces trimmed (in the message) */
    size_t raw_len;
} dw_scpi_unit;

typedef struct dw_scpi_parser {
    const uint8_t *msg;
    size_t len, pos;
    int done;
    char path[DW_SCPI_MAX_NODES][DW_SCPI_MAX_MNEMONIC + 1];
    size_t npath;
    dw_scpi_param *params;
    size_t cap;
    dw_buf text;
} dw_scpi_parser;

/* Start parsing msg[0..len) (borrowed; may hold any byte; white space
 * around units, such as a '\r' before the '\n' terminator, is ignored,
 * but an indefinite block #0 takes every byte to the end). */
void dw_scpi_parser_init(dw_scpi_parser *p, const uint8_t *msg, size_t len);
/* The next program message unit: 1 and *u filled (valid until the next
 * call), 0 at the end of the message, or a negative SCPI error code (the
 * rest of the message is then discarded: every later call returns 0), or
 * DW_SCPI_NOMEM. */
#define DW_SCPI_NOMEM (-100000)
int dw_scpi_parser_next(dw_scpi_parser *p, dw_scpi_unit *u);
void dw_scpi_parser_free(dw_scpi_parser *p);

/* Non-standard (a lenient client's path rule): unit u read from the root,
 * as though written with a leading ':'. 1 and *out (its params and texts
 * still the parser's), or 0 if u took no node from the path. */
int dw_scpi_unit_from_root(const dw_scpi_unit *u, dw_scpi_unit *out);
/* The path after unit u, as though u was the last unit parsed: the
 * parser goes on from there (after a unit taken from the root). */
void dw_scpi_parser_path_after(dw_scpi_parser *p, const dw_scpi_unit *u);

/* A parameter's text, and its canonical form appended to `out`: a number
 * shortest-exact in %g style with its unit ("1000000HZ"), character data
 * upper-cased, a string in double quotes (inner ones doubled), a block in
 * definite form, an expression as written. DW_OK or DW_ENOMEM. */
int dw_scpi_param_print(const dw_scpi_unit *u, const dw_scpi_param *p, dw_buf *out);
/* The number alone, shortest exact ("2500000", "0.001"). */
int dw_scpi_number_print(double v, dw_buf *out);
/* A unit in canonical form: ":SOUR:FREQ? MIN" or "*ESE 32" (absolute, so
 * the path rule cannot change it); units of a message join with ';'. */
int dw_scpi_unit_print(const dw_scpi_unit *u, dw_buf *out);

/* A boolean parameter: ON/OFF or a number (rounded; non-zero is 1).
 * 0 or 1, or -104 (a string, block or expression) / -224 (other chars). */
int dw_scpi_param_bool(const dw_scpi_unit *u, const dw_scpi_param *p);
/* A string parameter's text: 1 and *text / *len for a string, and, when
 * `bare` (non-standard: unquoted strings), for character data as written
 * (not upper-cased); else -104. */
int dw_scpi_param_string(const dw_scpi_unit *u, const dw_scpi_param *p, int bare,
                         const uint8_t **text, size_t *len);
/* SCPI-99's special numbers, written as character data: INF (9.9E37),
 * NINF (-9.9E37) and NAN (9.91E37). 1 and *value, or 0 (another
 * parameter). */
#define DW_SCPI_INF 9.9e37
#define DW_SCPI_NAN 9.91e37
int dw_scpi_param_special(const dw_scpi_unit *u, const dw_scpi_param *p, double *value);
/* Character data against choices written "IMMediate|BUS|EXTernal" (long
 * and short forms): the index of the choice, or -104 / -224. */
int dw_scpi_param_choice(const dw_scpi_unit *u, const dw_scpi_param *p, const char *choices);

/* ---- header patterns (scpi_pattern.c) ------------------------------------ */

/* A header as a script writes it: "[SOURce:]FREQuency[:CW]?", "OUTPut[1-4]:STATe",
 * "OUTPut<n>", "*IDN?". Upper case is the short form, the whole mnemonic the
 * long form; [..] holds optional nodes; a numeric suffix is [lo-hi], <n>
 * (1 and up) or digits written after the mnemonic (exactly that suffix); a
 * trailing '?' makes it a query. Immutable once compiled: share freely. */
typedef struct dw_scpi_pattern dw_scpi_pattern;

/* Compile `text`: DW_OK and *out, DW_ENOMEM, or DW_EINVAL with *where the
 * byte offset of the fault and *why what is wrong (static text). */
int dw_scpi_pattern_compile(const char *text, dw_scpi_pattern **out, size_t *where,
                            const char **why);
void dw_scpi_pattern_free(dw_scpi_pattern *p);
/* 1 if unit u's header fits, 0 if not, -114 if it fits but for a numeric
 * suffix out of range. */
int dw_scpi_pattern_match(const dw_scpi_pattern *p, const dw_scpi_unit *u);
/* As dw_scpi_pattern_match for the first of p[0..n) that fits u: 1 and
 * *which its index; else -114 if one fits but for a numeric suffix, else
 * 0. A header declared for several channels is one pattern a channel. */
int dw_scpi_pattern_match_any(dw_scpi_pattern *const *p, size_t n, const dw_scpi_unit *u,
                              size_t *which);
/* 1 if the pattern is a query. */
int dw_scpi_pattern_query(const dw_scpi_pattern *p);
/* As dw_scpi_pattern_match, whether or not either is a query (one header
 * serves a property's set and query forms). */
int dw_scpi_pattern_match_header(const dw_scpi_pattern *p, const dw_scpi_unit *u);
/* The words the last node of a fitting unit can be, numeric suffix taken
 * off: the short and long forms, upper case, of every node from the last
 * required one on (of every node if none is required). fn(arg, word) is
 * called for each; the first non-zero return stops and is returned, else
 * 0. An index keyed on a unit's last node finds every pattern that may
 * fit it. */
int dw_scpi_pattern_last_words(const dw_scpi_pattern *p, int (*fn)(void *arg, const char *word),
                               void *arg);
/* A unit's last node without its numeric suffix, into out (at least
 * DW_SCPI_MAX_MNEMONIC + 1 bytes). */
void dw_scpi_unit_last_word(const dw_scpi_unit *u, char *out);

#endif
