/* devwire error codes: one table for the whole library.
 *
 * Every function that can fail returns an int: DW_OK (0) on success, DW_EOF
 * (positive) for a clean end of stream where that is meaningful, DW_MORE
 * (positive) for a push decoder that needs more bytes, and a negative code
 * for an error. System errors keep their errno (DW_ETIMEDOUT is -ETIMEDOUT);
 * devwire's own codes live in the -4000 range. */
#ifndef DEVWIRE_ERROR_H
#define DEVWIRE_ERROR_H

#include <errno.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* XX(name, value, description) */
#define DW_ERRNO_MAP(XX)                                                                           \
    XX(EINVAL, -EINVAL, "invalid argument")                                                        \
    XX(ENOMEM, -ENOMEM, "out of memory")                                                           \
    XX(EIO, -EIO, "input/output error")                                                            \
    XX(ETIMEDOUT, -ETIMEDOUT, "timed out")                                                         \
    XX(ECONNREFUSED, -ECONNREFUSED, "connection refused")                                          \
    XX(ECONNRESET, -ECONNRESET, "connection reset by peer")                                        \
    XX(EPIPE, -EPIPE, "broken pipe")                                                               \
    XX(EHOSTUNREACH, -EHOSTUNREACH, "host is unreachable")                                         \
    XX(EADDRINUSE, -EADDRINUSE, "address already in use")                                          \
    XX(ENOENT, -ENOENT, "no such file or directory")                                               \
    XX(EPROTO, -EPROTO, "protocol error: malformed frame")                                         \
    XX(ETOOBIG, -EMSGSIZE, "frame exceeds the maximum frame size")                                 \
    XX(ETRUNCATED, -4001, "stream ended inside a frame")                                           \
    XX(ECLOSED, -4002, "session is closed")                                                        \
    XX(ENOTFOUND, -4003, "host name not found")                                                    \
    XX(ESCRIPT, -4004, "invalid script")                                                           \
    XX(EHANDLER, -4005, "handler failed")                                                          \
    XX(ELIMIT, -4006, "connection limit reached")                                                  \
    XX(ECANCELED, -ECANCELED, "operation canceled")

enum {
    DW_OK = 0,
    DW_EOF = 1,  /* clean end of stream: the peer closed between frames */
    DW_MORE = 2, /* not complete yet: feed more bytes (dw_decoder_feed) */
#define DW_ERR_ENUM(name, value, text) DW_##name = (value),
    DW_ERRNO_MAP(DW_ERR_ENUM)
#undef DW_ERR_ENUM
};

/* A static, human-readable description of `code` (any value: unknown
 * negative values fall back to strerror(-code)). Thread-safe. */
const char *dw_strerror(int code);

/* The symbolic name of `code` ("DW_ETIMEDOUT"), or "DW_UNKNOWN". Thread-safe. */
const char *dw_err_name(int code);

/* Details an error code cannot carry: what failed and where
 * ("connect 127.0.0.1:5025: Connection refused",
 *  "sg.json:14:9: rules[2].when: expected string or object").
 * Caller-owned; functions that take a `dw_error *` accept NULL. */
typedef struct dw_error {
    int code;
    char message[512];
} dw_error;

/* Empty `err` (code DW_OK, message ""). Accepts NULL. */
void dw_error_clear(dw_error *err);

/* Set `err` to `code` with a printf-style message, and return `code` so that
 * callers can write `return dw_error_set(err, DW_EPROTO, "...")`. The
 * arguments may include err->message itself, to add context:
 * dw_error_set(err, err->code, "session 3: %s", err->message).
 * Accepts a NULL `err` (then only returns `code`). */
int dw_error_set(dw_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The message if one was set, else dw_strerror(code). */
const char *dw_error_message(const dw_error *err);

#ifdef __cplusplus
}
#endif
#endif
